/* gpu.h - what CUDA devices this node has, probed, not assumed (DESIGN §3 Hello capabilities).
 *
 * Plain C: the CUDA side lives in gpu.cu (built when nvcc is found) and gpu_none.c stands in when
 * it is not, so every caller compiles and runs the same either way. The probe asks the CUDA
 * runtime for each device's name, compute capability and memory, then launches a small kernel
 * on it and checks the result: a device counts only if reelfarm's own machine code (sm_80, sm_90,
 * or JIT from PTX) actually runs there. Without a driver or a device the probe finds none; that is
 * a normal answer on CPU nodes, not an error.
 */
#ifndef RF_GPU_H
#define RF_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RF_GPU_MAX_DEVICES 16

typedef struct rf_gpu_device {
    int index;            /* CUDA device ordinal */
    char name[128];       /* e.g. "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;
    uint64_t total_bytes; /* device memory */
    uint64_t free_bytes;  /* free when probed */
    bool kernel_ok;       /* the self-test kernel ran and returned the right answer */
} rf_gpu_device_t;

typedef struct rf_gpu_info {
    bool built_with_cuda; /* this binary has CUDA code in it */
    int runtime_version;  /* cudaRuntimeGetVersion, 0 without CUDA */
    int driver_version;   /* cudaDriverGetVersion, 0 without a driver */
    int ndevices;
    rf_gpu_device_t devices[RF_GPU_MAX_DEVICES];
    char note[256];       /* why there are none, when there are none ("no CUDA driver") */
} rf_gpu_info_t;

/* Probes every device. Never fails: info->ndevices is 0 and note says why when there is none. */
void rf_gpu_probe(rf_gpu_info_t *info);

/* ---- watermark (watermark.cu; built only with nvcc: callers check RF_HAVE_CUDA) -------------------
 * The CUDA embed of media.h's invisible watermark: plane[y * stride + x] += amplitude * chip, with
 * the chip looked up as rf_media_wm_chip_at does (tile = RF_WM_TILE, rows = RF_WM_ROWS, chips =
 * rf_media_wm_pattern_chips). Bit-identical to rf_media_wm_embed_float. */
/* dev_planes and dev_chips on the device; runs on stream (NULL: the default one), no sync.
 * Returns 0, or -1 when the launch failed. */
int rf_gpu_wm_embed_planes(float *const *dev_planes, int nplanes, int width, int height, int stride,
                           const int8_t *dev_chips, int tile, int rows, float amplitude, void *stream);
/* The same for host planes (width x height, stride = width): copies them to the device, embeds,
 * copies back. Returns 0, or -1 with why filled ("watermark: CUDA: out of memory"). */
int rf_gpu_wm_embed_host(float *const *planes, int nplanes, int width, int height, const int8_t *chips,
                         int tile, int rows, float amplitude, char *why, size_t size);

#endif
