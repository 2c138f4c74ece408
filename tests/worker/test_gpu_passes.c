/* test_gpu_passes.c - the CUDA passes, colour conversion and frame ring against the CPU reference
 * on a real device (ctest label "gpu"; exits 77, a skip, without a device or without CUDA in the
 * build). The checks are gpu_fixture.h's, which test_cudaemu.c also runs over an emulated device
 * on every machine; here they run the kernels themselves. Tolerances: docs/passes.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gpu.h"
#include "gpu_kern.h"
#include "gpu_pipe.h"
#include "passes.h"

#include "gpu_fixture.h"

int main(void)
{
    rf_gpu_info_t info;
    rf_gpu_probe(&info);
    if (!info.built_with_cuda || info.ndevices == 0 || !info.devices[0].kernel_ok) {
        printf("skip: %s\n", info.ndevices ? "device 0 failed the self-test" : info.note);
        return 77;
    }
    printf("device 0: %s\n", info.devices[0].name);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_passes_vs_cpu),
        cmocka_unit_test(t_errors_like_cpu),
        cmocka_unit_test(t_convert_vs_cpu),
        cmocka_unit_test(t_stage_vs_cpu), cmocka_unit_test(t_nhwc16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
