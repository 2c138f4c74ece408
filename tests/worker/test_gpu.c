/* test_gpu.c - the GPU probe on a machine with a CUDA device (ctest label "gpu"; exits 77, a
 * skip, when the machine has none or the build has no CUDA code). Every device found must report
 * a name, memory, a compute capability we built machine code or PTX for, and must run our
 * self-test kernel with the right result. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdint.h>
#include <cmocka.h>

#include "gpu.h"

static rf_gpu_info_t s_info;

static void test_devices(void **state)
{
    (void)state;
    assert_true(s_info.built_with_cuda);
    assert_true(s_info.runtime_version > 0);
    assert_true(s_info.driver_version >= s_info.runtime_version / 1000 * 1000);
    assert_true(s_info.ndevices > 0);
    for (int i = 0; i < s_info.ndevices; i++) {
        const rf_gpu_device_t *d = &s_info.devices[i];
        printf("device %d: %s, sm_%d%d, %.1f GiB (%.1f GiB free), self-test %s\n", d->index,
               d->name, d->cc_major, d->cc_minor, (double)d->total_bytes / (1 << 30),
               (double)d->free_bytes / (1 << 30), d->kernel_ok ? "passed" : "FAILED");
        assert_true(d->name[0] != '\0');
        assert_true(d->total_bytes > (1ULL << 30));
        assert_true(d->free_bytes > 0 && d->free_bytes <= d->total_bytes);
        assert_true(d->cc_major >= 8); /* sm_80 code or compute_90 PTX covers every device we accept */
        assert_true(d->kernel_ok);
    }
}

int main(void)
{
    rf_gpu_probe(&s_info);
    if (!s_info.built_with_cuda || s_info.ndevices == 0) {
        printf("skip: %s\n", s_info.note);
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_devices)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
