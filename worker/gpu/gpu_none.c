/* gpu_none.c - gpu.h for builds without nvcc: this binary has no CUDA code, so no device. */
#include <stdio.h>
#include <string.h>

#include "gpu.h"

void rf_gpu_probe(rf_gpu_info_t *info)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->note, sizeof(info->note), "built without CUDA (nvcc was not found)");
}
