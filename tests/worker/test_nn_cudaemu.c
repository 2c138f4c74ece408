/* test_nn_cudaemu.c - the ONNX executor's GPU backend (worker/nn/nn_gpu.c) over an emulated device
 * (nncudaemu.h: nn_gpu_kern.h on the CPU with nn_gpu_math.h's functions as the kernel bodies), on
 * any machine.
 *
 * nn_gpu.c is compiled into this test (included below), so its device calls reach the emulation:
 * the whole plan logic runs - the compile step's GPU-only fusion, the constants' upload, the
 * device arena at the CPU layout's offsets, the launch list, fp16 storage and conversion - and
 * every fixture of tests/fixtures/nn must match the CPU reference (nn_gpu_fixture.h: fp32 within
 * 1e-4, fp16 at PSNR >= 45 dB). test_nn_gpu.c runs the same checks on a real device; what only a
 * device shows (thread indexing, shared-memory tiling, cuDNN, CUDA graphs) is left to it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/nncudaemu.h"

#include "nn_gpu.c"

#include "worker/nn_gpu_fixture.h"

static const char *s_src(void)
{
    const char *d = getenv("RF_SOURCE_DIR");
    return d ? d : ".";
}

static void test_fixtures_match_cpu(void **state)
{
    (void)state;
    int ran;
    bool unavailable;
    s_nn_launches = 0;
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &unavailable);
    assert_false(unavailable); /* the emulated device 0 is always there */
    assert_true(ran >= 150);   /* every fixture the CPU runs */
    assert_true(s_nn_launches > 0);
    assert_int_equal(bad, 0);
    assert_int_equal(s_nn_live, 0); /* every plan gave its device memory back */
}

/* The same through the plan's cuDNN branch (an emulated cuDNN convolution, then the separate
 * epilogue; fused Pads through a padded copy, fused DepthToSpace through a buffer of its own). */
static void test_fixtures_match_cpu_cudnn_branch(void **state)
{
    (void)state;
    int ran;
    bool unavailable;
    s_nn_dnn_convs = 0;
    setenv("RF_NN_EMU_CUDNN", "1", 1);
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &unavailable);
    unsetenv("RF_NN_EMU_CUDNN");
    assert_false(unavailable);
    assert_true(ran >= 150);
    assert_true(s_nn_dnn_convs > 0);
    assert_int_equal(bad, 0);
    assert_int_equal(s_nn_live, 0);
}

/* The NHWC layout with channels padded to 8 (RF_NN_LAYOUT=nhwc; fp16 plans with cuDNN take it
 * by default): every kernel through its layouts, pad channels zeroed (device memory starts as NaN
 * in the emulation, and the emulated cuDNN reads pad channels); own kernels, then the cuDNN
 * branch with KRSC weights for Conv and ConvTranspose. */
static void test_fixtures_match_cpu_nhwc(void **state)
{
    (void)state;
    int ran;
    bool unavailable;
    setenv("RF_NN_LAYOUT", "nhwc", 1);
    int bad = t_nn_gpu_fixtures(s_src(), &ran, &unavailable);
    assert_false(unavailable);
    assert_true(ran >= 150);
    assert_int_equal(bad, 0);
    s_nn_dnn_nhwc = s_nn_dnn_transposed = 0;
    setenv("RF_NN_EMU_CUDNN", "1", 1);
    bad = t_nn_gpu_fixtures(s_src(), &ran, &unavailable);
    unsetenv("RF_NN_EMU_CUDNN");
    unsetenv("RF_NN_LAYOUT");
    assert_true(ran >= 150);
    assert_true(s_nn_dnn_nhwc > 0);
    assert_true(s_nn_dnn_transposed > 0);
    assert_int_equal(bad, 0);
    assert_int_equal(s_nn_live, 0);
}

/* ONNX's own node tests (Debian's libonnx-testdata) and its small PyTorch exports, where the CPU
 * runs them: every one the GPU plan accepts must match the CPU (float cases; integer ones are
 * refused on the GPU, as documented). */
static void t_onnx_node_tests(void)
{
    const char *root = getenv("RF_ONNX_NODE_TESTS");
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", root ? root : "/usr/share/libonnx-testdata/data/node");
    struct stat st;
    if (stat(dir, &st))
        skip();
    int ran, refused, bad = 0, total = 0;
    bool unavailable;
    bad += t_nn_gpu_dir(dir, true, &ran, &refused, &unavailable);
    total += ran - refused;
    static const char *const more[] = {"pytorch-converted", "pytorch-operator"};
    for (int i = 0; i < 2; i++) {
        char sub[1200];
        snprintf(sub, sizeof(sub), "%s/../%s", dir, more[i]);
        if (!stat(sub, &st)) {
            bad += t_nn_gpu_dir(sub, true, &ran, &refused, &unavailable);
            total += ran - refused;
        }
    }
    assert_false(unavailable);
    assert_true(total >= 140); /* 155 with ONNX 1.12's data */
    assert_int_equal(bad, 0);
    assert_int_equal(s_nn_live, 0);
}

static void test_onnx_node_tests_match_cpu(void **state)
{
    (void)state;
    t_onnx_node_tests();
}

/* The same in the NHWC layout, through the emulated cuDNN. */
static void test_onnx_node_tests_match_cpu_nhwc(void **state)
{
    (void)state;
    setenv("RF_NN_LAYOUT", "nhwc", 1);
    setenv("RF_NN_EMU_CUDNN", "1", 1);
    t_onnx_node_tests();
    unsetenv("RF_NN_EMU_CUDNN");
    unsetenv("RF_NN_LAYOUT");
}

/* A fixture of tests/fixtures/nn: its model and its first input, bound to the model's input. */
static void t_load_fixture(const char *name, rf_nn_model_t **m, rf_nn_tensor_t *in)
{
    char model[1100], input[1100];
    snprintf(model, sizeof(model), "%s/tests/fixtures/nn/%s/model.onnx", s_src(), name);
    snprintf(input, sizeof(input), "%s/tests/fixtures/nn/%s/test_data_set_0/input_0.pb", s_src(),
             name);
    rf_err_t err = {0};
    assert_int_equal(rf_nn_model_load_file(model, m, &err), 0);
    assert_int_equal(rf_nn_tensor_read(input, in, &err), 0);
    snprintf(in->name, sizeof(in->name), "%s", rf_nn_model_input(*m, 0)->name);
}

/* The plan's pinned host buffers: one per input and output of a GPU plan (none for CPU plans);
 * a run through them gives the bits a run through ordinary buffers gives; the device arena of an
 * fp16 plan is half an fp32 plan's (the values at their stored size). */
static void test_pinned_host_buffers(void **state)
{
    (void)state;
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    rf_nn_tensor_t in = {0};
    t_load_fixture("srvgg_x4_f8_c2_op13", &m, &in);
    rf_nn_plan_options_t copt = {.device = RF_NN_CPU}, gopt = {.device = RF_NN_GPU},
                         hopt = {.device = RF_NN_GPU, .fp16 = true};
    rf_nn_plan_t *cpu = NULL, *gpu = NULL, *half = NULL;
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &copt, &cpu, &err), 0);
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &gopt, &gpu, &err), 0);
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &hopt, &half, &err), 0);
    size_t bytes = 1;
    assert_null(rf_nn_plan_host_buffer(cpu, false, 0, &bytes));
    assert_int_equal(bytes, 0);
    assert_null(rf_nn_plan_host_buffer(gpu, false, 1, NULL)); /* one input only */
    void *hin = rf_nn_plan_host_buffer(gpu, false, 0, &bytes);
    assert_non_null(hin);
    assert_int_equal(bytes, in.bytes);
    assert_ptr_equal(rf_nn_plan_host_buffer(gpu, false, 0, NULL), hin); /* made once */
    size_t obytes;
    void *hout = rf_nn_plan_host_buffer(gpu, true, 0, &obytes);
    assert_non_null(hout);
    assert_int_equal(obytes, (size_t)rf_nn_tensor_count(rf_nn_plan_output(gpu, 0)) * 4);
    assert_int_equal(s_nn_host_live, 2);
    memcpy(hin, in.data, bytes);
    rf_nn_tensor_t pinned_in = in, plain = {0}, pinned = {.data = hout, .bytes = obytes};
    pinned_in.data = hin;
    assert_int_equal(rf_nn_plan_run(gpu, &in, 1, &plain, 1, &err), 0);
    assert_int_equal(rf_nn_plan_run(gpu, &pinned_in, 1, &pinned, 1, &err), 0);
    assert_ptr_equal(pinned.data, hout);
    assert_memory_equal(pinned.data, plain.data, obytes);
    size_t a32, a16;
    rf_nn_plan_stats(gpu, NULL, &a32);
    rf_nn_plan_stats(half, NULL, &a16);
    assert_true(a16 > 0 && a16 * 2 <= a32 + 64 * 8); /* alignment aside */
    rf_nn_tensor_release(&plain);
    rf_nn_plan_free(cpu);
    rf_nn_plan_free(gpu);
    rf_nn_plan_free(half);
    assert_int_equal(s_nn_host_live, 0);
    assert_int_equal(s_nn_live, 0);
    rf_nn_tensor_release(&in);
    rf_nn_model_free(m);
}

/* A device that is not there: RF_EUNAVAIL naming it, and nothing allocated. */
static void test_missing_device_refused(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/fixtures/nn/relu_op13/model.onnx", s_src());
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    assert_int_equal(rf_nn_model_load_file(path, &m, &err), 0);
    rf_nn_tensor_t in = *rf_nn_model_input(m, 0);
    in.data = NULL;
    rf_nn_plan_options_t opt = {.device = RF_NN_GPU, .gpu_index = 3};
    rf_nn_plan_t *p = NULL;
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &opt, &p, &err), RF_EUNAVAIL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "device 3"));
    assert_int_equal(s_nn_live, 0);
    rf_nn_model_free(m);
}

static void test_residual_fused_on_gpu_only(void **state)
{
    (void)state;
    bool unavailable;
    t_nn_residual_check(&unavailable);
    assert_false(unavailable);
    assert_int_equal(s_nn_live, 0);
}

/* Steps of a fixture's plan on the CPU and on the (emulated) GPU. */
static void t_steps(const char *name, int *cpu_steps, int *gpu_steps)
{
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    rf_nn_tensor_t in = {0};
    t_load_fixture(name, &m, &in);
    rf_nn_plan_options_t copt = {.device = RF_NN_CPU}, gopt = {.device = RF_NN_GPU};
    rf_nn_plan_t *cpu = NULL, *gpu = NULL;
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &copt, &cpu, &err), 0);
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &gopt, &gpu, &err), 0);
    rf_nn_plan_stats(cpu, cpu_steps, NULL);
    rf_nn_plan_stats(gpu, gpu_steps, NULL);
    printf("%s: %d steps on the CPU, %d on the GPU\n", name, *cpu_steps, *gpu_steps);
    rf_nn_plan_free(cpu);
    rf_nn_plan_free(gpu);
    rf_nn_tensor_release(&in);
    rf_nn_model_free(m);
}

/* The GPU-only fusions on the family fixtures (test_fixtures_match_cpu checks their values):
 * SRVGGNetCompact's Conv -> DepthToSpace (the epilogue stores into the PixelShuffle layout) and
 * its residual Add; the CycleGAN generator's six reflect Pads, each read through by the Conv after
 * it, and its InstanceNorms' ReLUs and residual Adds in their apply kernels. */
static void test_family_fusions(void **state)
{
    (void)state;
    int cs, gs;
    t_steps("srvgg_x4_f8_c2_op13", &cs, &gs);
    assert_int_equal(gs, cs - 2);
    t_steps("cyclegan_resnet_ngf8_b2_op13", &cs, &gs);
    assert_int_equal(gs, cs - 15); /* 6 Pads, 7 ReLUs into InstanceNorms, 2 residual Adds */
    assert_int_equal(s_nn_live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_match_cpu),
        cmocka_unit_test(test_fixtures_match_cpu_cudnn_branch),
        cmocka_unit_test(test_fixtures_match_cpu_nhwc),
        cmocka_unit_test(test_onnx_node_tests_match_cpu),
        cmocka_unit_test(test_onnx_node_tests_match_cpu_nhwc),
        cmocka_unit_test(test_pinned_host_buffers),
        cmocka_unit_test(test_missing_device_refused),
        cmocka_unit_test(test_residual_fused_on_gpu_only),
        cmocka_unit_test(test_family_fusions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
