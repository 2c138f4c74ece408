/* test_watermark_gpu.c - the CUDA watermark embed (worker/gpu/watermark.cu) against the CPU one
 * (media/watermark.c), sample for sample, on frames of several sizes including odd ones. ctest
 * label "gpu"; exits 77 (skip) when the build has no CUDA code or the machine no device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gpu.h"
#include "media.h"

#ifdef RF_HAVE_CUDA
static void test_gpu_equals_cpu(void **state)
{
    static const int sizes[][2] = {{1280, 720}, {641, 359}, {1920, 1080}, {33, 17}};
    uint8_t key[32];
    rf_media_wm_pattern_t *p = NULL;
    rf_err_t err = {0};

    (void)state;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(7 * i + 1);
    assert_int_equal(rf_media_wm_pattern_new(key, UINT64_C(0x1234567890abcdef), &p, &err), 0);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s][0], h = sizes[s][1];
        size_t n = (size_t)w * h;
        float *cpu[3], *gpu[3];
        char why[256];
        for (int c = 0; c < 3; c++) {
            cpu[c] = malloc(n * sizeof(float));
            gpu[c] = malloc(n * sizeof(float));
            for (size_t k = 0; k < n; k++)
                cpu[c][k] = gpu[c][k] = (float)((k * 2654435761u + (size_t)c * 97) % 1000) / 999.0f;
            rf_media_wm_embed_float(p, cpu[c], w, h, w, (float)RF_WM_AMPLITUDE);
        }
        assert_int_equal(rf_gpu_wm_embed_host(gpu, 3, w, h, rf_media_wm_pattern_chips(p), RF_WM_TILE,
                                              RF_WM_ROWS, (float)RF_WM_AMPLITUDE, why, sizeof(why)),
                         0);
        for (int c = 0; c < 3; c++) {
            assert_memory_equal(cpu[c], gpu[c], n * sizeof(float));
            free(cpu[c]);
            free(gpu[c]);
        }
        printf("%dx%d: GPU embed equals the CPU one in all %zu samples of 3 planes\n", w, h, n);
    }
    rf_media_wm_pattern_destroy(&p);
}
#endif

int main(void)
{
#ifndef RF_HAVE_CUDA
    printf("built without CUDA: skipped\n");
    return 77;
#else
    rf_gpu_info_t info;
    rf_gpu_probe(&info);
    if (info.ndevices == 0) {
        printf("no CUDA device (%s): skipped\n", info.note);
        return 77;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_gpu_equals_cpu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
#endif
}
