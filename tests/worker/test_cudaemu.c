/* test_cudaemu.c - worker/gpu/gpu_pipe.c over an emulated device, on any machine.
 *
 * The emulated device (cudaemu.h) implements gpu_kern.h on the CPU with gpu_math.h's functions as
 * the kernel bodies. gpu_pipe.c is compiled into this test (included below), so its calls reach
 * the emulation instead of CUDA. This runs all of gpu_fixture.h's device-vs-CPU checks
 * without a GPU - the pass logic, the conversion arithmetic and its tolerances, the ring's
 * ordering and context frames - and test_gpu_passes.c runs the same checks on a real device.
 * What only a device can show (the kernels' thread indexing, CUDA's pow/cbrt, stream ordering) is
 * left to that test.
 *
 * Also here, pure arithmetic: pass placement, pixel format layouts, the VRAM budget and the slot
 * plan, and that without CUDA everything reports RF_EUNAVAIL (that part uses the real library in
 * test_gpu_passes.c's skip path and worker tests; here the emulation is always "present").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker/cudaemu.h"

/* gpu_pipe.c itself, calling the functions above. */
#include "gpu_pipe.c"

#include "gpu_fixture.h"

/* ---- arithmetic -------------------------------------------------------------------------------
 */

static void test_placement(void **state)
{
    (void)state;
    const rf_pass_spec_t passes[] = {{.name = (char *)"deflicker"},
                                     {.name = (char *)"invert"},
                                     {.name = (char *)"scale"},
                                     {.name = (char *)"color-match"}};
    bool on[4];
    assert_int_equal(rf_gpu_pass_placement(passes, 4, true, on), 3);
    assert_true(on[0] && !on[1] && on[2] && on[3]);
    assert_int_equal(rf_gpu_pass_placement(passes, 4, false, on), 0);
    assert_true(!on[0] && !on[1] && !on[2] && !on[3]);
    assert_true(rf_gpu_pass_has_cuda("grade"));
    assert_true(rf_gpu_pass_has_cuda("sharpen"));
    assert_false(rf_gpu_pass_has_cuda("onnx"));
    assert_false(rf_gpu_pass_has_cuda(NULL));
}

static void test_layouts(void **state)
{
    (void)state;
    rf_gyuv_t l;
    rf_err_t err = {0};
    assert_int_equal(rf_gpu_yuv_layout(AV_PIX_FMT_NV12, 64, 36, &l, &err), 0);
    assert_int_equal(l.depth, 8);
    assert_int_equal(l.plane[1], 1);
    assert_int_equal(l.plane[2], 1);
    assert_int_equal(l.step[1], 2);
    assert_int_equal(l.offset[2], 1);
    size_t off[3];
    int pitch[3];
    /* NV12 64x36: Y 64x36, UV 64 bytes x 18 rows */
    assert_int_equal(rf_gpu_packed_size(&l, off, pitch), 64 * 36 + 64 * 18);
    assert_int_equal(pitch[1], 64);
    assert_int_equal(off[1], 64 * 36);
    assert_int_equal(rf_gpu_yuv_layout(AV_PIX_FMT_P010LE, 64, 36, &l, &err), 0);
    assert_int_equal(l.depth, 10);
    assert_int_equal(l.shift[0], 6);
    assert_int_equal(l.bytes, 2);
    assert_int_equal(rf_gpu_packed_size(&l, off, pitch), 2 * (64 * 36 + 64 * 18));
    /* yuv420p 65x37 (odd): chroma 33x19 */
    assert_int_equal(rf_gpu_yuv_layout(AV_PIX_FMT_YUV420P, 65, 37, &l, &err), 0);
    assert_int_equal(rf_gpu_packed_size(&l, off, pitch), 65 * 37 + 2 * 33 * 19);
    static const enum AVPixelFormat refused[] = {AV_PIX_FMT_RGB24,       AV_PIX_FMT_GRAY8,
                                                 AV_PIX_FMT_YUV420P10BE, AV_PIX_FMT_YUVA420P,
                                                 AV_PIX_FMT_YUV411P,     AV_PIX_FMT_CUDA};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(rf_gpu_yuv_layout(refused[i], 64, 36, &l, &err), RF_EUNAVAIL);
        assert_non_null(strstr(err.msg, av_get_pix_fmt_name(refused[i])));
    }
}

/* VRAM per slot, by hand for 1920x1080 in and out, ring 3, no NVDEC:
 *   per ring frame 2073600 * (6 + 12 + 6) = 49766400; chain 2073600 * (12 + 6 + 4) = 45619200;
 *   3 * 49766400 + 45619200 = 194918400 bytes = 185.89 MiB -> 186 MiB.
 * With NVDEC: + 31 * 2073600 * 3 = 192844800 -> 387763200 = 369.80 MiB -> 370 MiB. */
static void test_vram(void **state)
{
    (void)state;
    assert_int_equal(rf_gpu_slot_vram(1920, 1080, 1920, 1080, 3, false), 186ULL << 20);
    assert_int_equal(rf_gpu_slot_vram(1920, 1080, 1920, 1080, 3, true), 370ULL << 20);
    /* 4K budget with NVDEC: 8294400 px: 3 * 8294400 * 24 + 8294400 * 22 + 31 * 8294400 * 3
     * = 597196800 + 182476800 + 771379200 = 1551052800 bytes = 1479.2 MiB -> 1480 MiB */
    assert_int_equal(rf_gpu_slot_vram(3840, 2160, 3840, 2160, 3, true), 1480ULL << 20);
    /* a 2x downscale 3840x2160 -> 1920x1080, ring 2, no NVDEC: per frame 8294400 * 18 +
     * 2073600 * 6 = 161740800; chain 2073600 * 18 + 8294400 * 4 = 70502400;
     * 2 * 161740800 + 70502400 = 393984000 bytes = 375.73 MiB -> 376 MiB */
    assert_int_equal(rf_gpu_slot_vram(3840, 2160, 1920, 1080, 2, false), 376ULL << 20);

    uint64_t adv = 0;
    const uint64_t gib = 1ULL << 30, per = 1408ULL << 20;
    /* 16 cores, one 80 GiB GPU: the CPU feeds 4 encoders, memory fits far more: 4 slots;
     * advertised = 80 GiB - 512 MiB - 4 * 1408 MiB = 81920 - 512 - 5632 = 75776 MiB */
    assert_int_equal(rf_gpu_plan_slots(1, 16, 80 * gib, per, 0, &adv), 4);
    assert_int_equal(adv, 75776ULL << 20);
    /* a 4 GiB card: (4096 - 512) / 1408 = 2 slots, advertised 3584 - 2816 = 768 MiB */
    assert_int_equal(rf_gpu_plan_slots(1, 64, 4 * gib, per, 0, &adv), 2);
    assert_int_equal(adv, 768ULL << 20);
    /* too little memory for one budget: still one slot, nothing to advertise */
    assert_int_equal(rf_gpu_plan_slots(1, 16, gib, per, 0, &adv), 1);
    assert_int_equal(adv, 0);
    /* two GPUs, 32 cores: 8 encoders, 4 per GPU; each GPU holds 4 budgets */
    assert_int_equal(rf_gpu_plan_slots(2, 32, 80 * gib, per, 0, &adv), 8);
    assert_int_equal(adv, (81920ULL - 512 - 4 * 1408) << 20);
    /* eight GPUs, 16 cores: 4 encoders, but every GPU gets a slot */
    assert_int_equal(rf_gpu_plan_slots(8, 16, 80 * gib, per, 0, &adv), 8);
    /* three GPUs, 16 cores: 4 encoders, ceil(4 / 3) = 2 per GPU */
    assert_int_equal(rf_gpu_plan_slots(3, 16, 80 * gib, per, 0, &adv), 6);
    /* the config's slots are kept; 5 slots on 2 GPUs: the busier one holds 3 */
    assert_int_equal(rf_gpu_plan_slots(2, 32, 80 * gib, per, 5, &adv), 5);
    assert_int_equal(adv, (81920ULL - 512 - 3 * 1408) << 20);
    /* CPU node: cores / 4, at least 1, nothing advertised */
    assert_int_equal(rf_gpu_plan_slots(0, 16, 0, per, 0, &adv), 4);
    assert_int_equal(adv, 0);
    assert_int_equal(rf_gpu_plan_slots(0, 2, 0, per, 0, &adv), 1);
}

/* A chain mixing a CUDA pass with one that has none (forced onto the CPU): the frame goes down
 * and back up between them and the result is the CPU chain's. */
static void test_mixed_chain(void **state)
{
    (void)state;
    rf_param_t gp[] = {{"contrast", "1.3"}};
    rf_param_t sp[] = {{"width", "48"}};
    const rf_pass_spec_t passes[] = {{.name = (char *)"grade", .params = gp, .nparams = 1},
                                     {.name = (char *)"scale", .params = sp, .nparams = 1}};
    rf_err_t err = {0};
    rf_gpu_chain_t *all_cpu = NULL;
    rf_pass_chain_t *ref = NULL;
    assert_int_equal(
        rf_gpu_chain_new(0, passes, 2, 1, 96, 54, (AVRational){25, 1}, true, &all_cpu, &err), 0);
    assert_int_equal(rf_gpu_chain_on_device(all_cpu), 0);
    assert_int_equal(rf_pass_chain_new(passes, 2, 1, 96, 54, (AVRational){25, 1}, &ref, &err), 0);
    rf_pframe_t a, b;
    t_rgb(&a, 96, 54, 3);
    t_rgb_copy(&b, &a);
    assert_int_equal(rf_pass_chain_run(ref, &a, &err), 0);
    assert_int_equal(rf_gpu_chain_run_host(all_cpu, &b, &err), 0);
    assert_int_equal(b.width, 48);
    assert_int_equal(b.height, 28);         /* round(48 * 54 / 96 / 2) * 2 */
    assert_true(t_max_diff(&a, &b) == 0.0); /* the same CPU code on the same samples */
    rf_pframe_release(&a);
    rf_pframe_release(&b);
    rf_gpu_chain_destroy(&all_cpu);
    rf_pass_chain_destroy(&ref);
}

static void test_no_device(void **state)
{
    (void)state;
    rf_gpu_chain_t *c = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_gpu_chain_new(3, NULL, 0, 1, 16, 16, (AVRational){25, 1}, false, &c, &err),
                     RF_EUNAVAIL);
    assert_string_equal(err.msg, "GPU 3: no such device (emulation has device 0 only)");
    rf_gpu_stage_cfg_t cfg = {.device = 0,
                              .width = 16,
                              .height = 16,
                              .pix_fmt = AV_PIX_FMT_RGB24,
                              .out_pix_fmt = AV_PIX_FMT_YUV420P};
    rf_gpu_stage_t *st = NULL;
    assert_int_equal(rf_gpu_stage_new(&cfg, &st, &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "'rgb24'"));
}

static void test_nothing_leaks(void **state)
{
    (void)state;
    assert_int_equal(s_live, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_placement),     cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_vram),          cmocka_unit_test(test_mixed_chain),
        cmocka_unit_test(test_no_device),     cmocka_unit_test(t_passes_vs_cpu),
        cmocka_unit_test(t_errors_like_cpu),  cmocka_unit_test(t_convert_vs_cpu),
        cmocka_unit_test(t_stage_vs_cpu),     cmocka_unit_test(t_nhwc16),
        cmocka_unit_test(test_nothing_leaks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
