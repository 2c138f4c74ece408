/* test_nn_gpu.c - the ONNX executor's GPU backend on a real device (ctest label gpu): every fixture
 * of tests/fixtures/nn through GPU plans (own kernels or cuDNN, CUDA graphs from the second run)
 * against the CPU reference, then again with cuDNN off (RF_NN_CUDNN=off: our own kernels), as
 * test_nn_cudaemu.c does on the emulated device
 * (nn_gpu_fixture.h: fp32 within 1e-4, fp16 at PSNR >= 45 dB). Exits 77 (skipped) when there is
 * no device or the build has no CUDA.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "worker/nn_gpu_fixture.h"

static const char *s_src(void)
{
    const char *d = getenv("RF_SOURCE_DIR");
    return d ? d : ".";
}

static bool s_unavailable;

static void test_fixtures_match_cpu_on_device(void **state)
{
    (void)state;
    int ran;
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &s_unavailable);
    if (s_unavailable)
        skip();
    assert_true(ran >= 150);
    assert_int_equal(bad, 0);
}

/* The same with cuDNN turned off: our own kernels (the tiled convolution) on the device. */
static void test_fixtures_match_cpu_own_kernels(void **state)
{
    (void)state;
    int ran;
    setenv("RF_NN_CUDNN", "off", 1);
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &s_unavailable);
    unsetenv("RF_NN_CUDNN");
    if (s_unavailable)
        skip();
    assert_true(ran >= 150);
    assert_int_equal(bad, 0);
}

/* Both layouts with both convolution paths: NHWC with padded channels through our kernels, and
 * dense NCHW through cuDNN (fp16 plans with cuDNN are NHWC by default, fp32 dense). */
static void test_fixtures_match_cpu_layouts(void **state)
{
    (void)state;
    int ran;
    setenv("RF_NN_LAYOUT", "nhwc", 1);
    setenv("RF_NN_CUDNN", "off", 1);
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &s_unavailable);
    unsetenv("RF_NN_CUDNN");
    if (!s_unavailable)
        bad += t_nn_gpu_fixtures(s_src(), &ran, &s_unavailable); /* cuDNN in NHWC, fp32 too */
    setenv("RF_NN_LAYOUT", "nchw", 1);
    if (!s_unavailable)
        bad += t_nn_gpu_fixtures(s_src(), &ran, &s_unavailable);
    unsetenv("RF_NN_LAYOUT");
    if (s_unavailable)
        skip();
    assert_true(ran >= 150);
    assert_int_equal(bad, 0);
}

/* ONNX's node tests and PyTorch exports (libonnx-testdata) that the CPU runs and the GPU backend
 * accepts. */
static void test_onnx_node_tests_on_device(void **state)
{
    (void)state;
    const char *root = getenv("RF_ONNX_NODE_TESTS");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", root ? root : "/usr/share/libonnx-testdata/data/node");
    struct stat st;
    if (stat(dir, &st))
        skip();
    int ran, refused, bad = 0;
    bad += t_nn_gpu_dir(dir, true, &ran, &refused, &s_unavailable);
    static const char *const more[] = {"pytorch-converted", "pytorch-operator"};
    for (int i = 0; i < 2 && !s_unavailable; i++) {
        char sub[1200];
        snprintf(sub, sizeof(sub), "%s/../%s", dir, more[i]);
        if (!stat(sub, &st))
            bad += t_nn_gpu_dir(sub, true, &ran, &refused, &s_unavailable);
    }
    if (s_unavailable)
        skip();
    assert_int_equal(bad, 0);
}

static void test_residual_fused_on_device(void **state)
{
    (void)state;
    bool unavailable;
    t_nn_residual_check(&unavailable);
    if (unavailable)
        skip();
}

int main(void)
{
    rf_log_setup(RF_LOG_INFO, RF_LOG_TEXT, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_match_cpu_on_device),
        cmocka_unit_test(test_fixtures_match_cpu_own_kernels),
        cmocka_unit_test(test_fixtures_match_cpu_layouts),
        cmocka_unit_test(test_onnx_node_tests_on_device),
        cmocka_unit_test(test_residual_fused_on_device),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    return s_unavailable ? 77 : rc;
}
