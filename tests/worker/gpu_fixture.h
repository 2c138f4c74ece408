/* gpu_fixture.h - the device-vs-CPU checks shared by test_gpu_passes.c (a real CUDA device) and
 * test_cudaemu.c (the same gpu_pipe.c over an emulated device that runs gpu_math.h's kernel bodies
 * on the CPU, so every check also runs on machines without a GPU).
 *
 * Each check runs one pipeline twice on generated frames - through the CPU passes (the reference)
 * and through rf_gpu_chain_t / rf_gpu_stage_t on device T_DEVICE - and compares every sample
 * against the tolerance docs/passes.md states for that pass. The including file includes cmocka,
 * passes.h and gpu_pipe.h first.
 */
#ifndef RF_TEST_GPU_FIXTURE_H
#define RF_TEST_GPU_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>

#define T_DEVICE 0

/* A deterministic hash in 0..1 of (x, y, seed): texture the frames so sharpen and scale see
 * detail, not only gradients. */
static float t_hash(int x, int y, int seed)
{
    uint32_t h = (uint32_t)x * 73856093u ^ (uint32_t)y * 19349663u ^ (uint32_t)seed * 83492791u;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return (float)(h & 0xffff) / 65535.0f;
}

/* Frame index: gradients, texture, a hard edge and a brightness that flickers with the index (so
 * deflicker and color-match have something to correct). */
static void t_rgb(rf_pframe_t *f, int w, int h, int64_t index)
{
    memset(f, 0, sizeof *f);
    f->index = index;
    f->pts = index;
    f->width = w;
    f->height = h;
    const float flicker = 1.0f + 0.08f * (float)((index * 7) % 5 - 2) / 2.0f;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = av_malloc_array((size_t)w * h + RF_PFRAME_PAD_FLOATS, sizeof(float));
        assert_non_null(f->plane[p]);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = 0.15f + 0.5f * (float)(x + p * 7) / (float)w * (float)(y + 3) / (float)h;
                v += 0.1f * t_hash(x, y, p + 3 * (int)index);
                if (x > w / 2 && y < h / 3)
                    v = 0.9f - 0.2f * (float)p; /* a hard edge: rings under scale and sharpen */
                v *= flicker;
                f->plane[p][(size_t)y * w + x] = v > 1.0f ? 1.0f : v;
            }
    }
}

static void t_rgb_copy(rf_pframe_t *dst, const rf_pframe_t *src)
{
    *dst = *src;
    for (int p = 0; p < 3; p++) {
        dst->plane[p] =
            av_malloc_array((size_t)src->width * src->height + RF_PFRAME_PAD_FLOATS, sizeof(float));
        assert_non_null(dst->plane[p]);
        memcpy(dst->plane[p], src->plane[p], (size_t)src->width * src->height * sizeof(float));
    }
}

static double t_max_diff(const rf_pframe_t *a, const rf_pframe_t *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    double worst = 0;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < (size_t)a->width * a->height; i++) {
            const double d = fabs((double)a->plane[p][i] - (double)b->plane[p][i]);
            if (!(d <= worst)) /* NaN counts as the worst */
                worst = isnan(d) ? INFINITY : d;
        }
    return worst;
}

/* One pass per case: its parameters, the frame size, frames to run, the tolerance of
 * docs/passes.md. */
typedef struct t_case {
    const char *name;
    rf_param_t params[4];
    size_t nparams;
    int w, h, frames;
    double tolerance;
} t_case_t;

static const t_case_t t_cases[] = {
    {"deflicker", {{"strength", "0.8"}, {"window", "5"}}, 2, 96, 54, 8, 1e-6},
    {"color-match",
     {{"reference", "0.6,0.01,0.02,0.15,0.04,0.05"}, {"smoothing", "2"}, {"strength", "0.9"}},
     3,
     96,
     54,
     6,
     1e-5},
    /* above 2^18 pixels: the statistics are subsampled (step 2) */
    {"color-match",
     {{"reference", "0.5,0,0,0.2,0.03,0.03"}, {"smoothing", "0"}},
     2,
     640,
     480,
     2,
     1e-5},
    {"grade",
     {{"exposure", "0.5"}, {"contrast", "1.2"}, {"saturation", "1.3"}, {"gamma", "1.1"}},
     4,
     96,
     54,
     2,
     1e-5},
    {"sharpen", {{"amount", "1.5"}, {"radius", "2"}, {"threshold", "0.01"}}, 3, 96, 54, 2, 1e-6},
    {"scale", {{"width", "61"}, {"height", "37"}}, 2, 96, 54, 2, 1e-6},
    {"scale", {{"width", "150"}, {"filter", "bicubic"}}, 2, 96, 54, 2, 1e-6},
    {"scale", {{"height", "30"}}, 1, 96, 54, 1, 1e-6}, /* width follows: 54 -> 30, 96 -> 54 */
};

/* Every case: the CPU chain and the device chain on the same frames. */
static void t_passes_vs_cpu(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof t_cases / sizeof t_cases[0]; k++) {
        const t_case_t *tc = &t_cases[k];
        rf_pass_spec_t spec = {.name = (char *)tc->name,
                               .role = (char *)"refine",
                               .params = (rf_param_t *)tc->params,
                               .nparams = tc->nparams};
        rf_pass_chain_t *cpu = NULL;
        rf_gpu_chain_t *dev = NULL;
        rf_err_t err = {0};
        assert_int_equal(
            rf_pass_chain_new(&spec, 1, 1, tc->w, tc->h, (AVRational){25, 1}, &cpu, &err), 0);
        int rc = rf_gpu_chain_new(T_DEVICE, &spec, 1, 1, tc->w, tc->h, (AVRational){25, 1}, false,
                                  &dev, &err);
        if (rc)
            fail_msg("%s: %s", tc->name, err.msg);
        assert_int_equal(rf_gpu_chain_on_device(dev), 1);
        double worst = 0;
        for (int i = 0; i < tc->frames; i++) {
            rf_pframe_t a, b;
            t_rgb(&a, tc->w, tc->h, 100 + i);
            t_rgb_copy(&b, &a);
            assert_int_equal(rf_pass_chain_run(cpu, &a, &err), 0);
            rc = rf_gpu_chain_run_host(dev, &b, &err);
            if (rc)
                fail_msg("%s frame %d: %s", tc->name, i, err.msg);
            const double d = t_max_diff(&a, &b);
            worst = d > worst ? d : worst;
            rf_pframe_release(&a);
            rf_pframe_release(&b);
        }
        printf("%-12s %dx%d, %d frames: max |device - CPU| = %.3g (tolerance %.0e)\n", tc->name,
               tc->w, tc->h, tc->frames, worst, tc->tolerance);
        assert_true(worst <= tc->tolerance);
        assert_int_equal(rf_gpu_chain_flush(dev, &err), 0);
        rf_gpu_chain_destroy(&dev);
        rf_pass_chain_destroy(&cpu);
    }
}

/* Errors the CPU chain reports come out of the device chain the same way. */
static void t_errors_like_cpu(void **state)
{
    (void)state;
    rf_param_t bad = {"strength", "7"};
    rf_pass_spec_t spec = {.name = (char *)"deflicker", .params = &bad, .nparams = 1};
    rf_gpu_chain_t *dev = NULL;
    rf_err_t err = {0};
    assert_int_equal(
        rf_gpu_chain_new(T_DEVICE, &spec, 1, 1, 32, 16, (AVRational){25, 1}, false, &dev, &err),
        RF_ECONFIG);
    assert_non_null(strstr(err.msg, "pass 'deflicker': parameter 'strength'"));
    /* frames out of order */
    rf_pass_spec_t ok = {.name = (char *)"deflicker"};
    assert_int_equal(
        rf_gpu_chain_new(T_DEVICE, &ok, 1, 1, 32, 16, (AVRational){25, 1}, false, &dev, &err), 0);
    rf_pframe_t f;
    t_rgb(&f, 32, 16, 5);
    assert_int_equal(rf_gpu_chain_run_host(dev, &f, &err), 0);
    f.index = 9;
    assert_int_equal(rf_gpu_chain_run_host(dev, &f, &err), RF_EINVAL);
    assert_string_equal(err.msg, "pass 'deflicker' at frame 9: frames out of order: got frame 9 "
                                 "after 5");
    rf_pframe_release(&f);
    rf_gpu_chain_destroy(&dev);
}

/* A YUV test frame of format fmt: gradients and texture in every component, inside the gamut. */
static AVFrame *t_yuv(enum AVPixelFormat fmt, int w, int h, int seed)
{
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    f->width = w;
    f->height = h;
    f->format = fmt;
    f->color_range = AVCOL_RANGE_MPEG;
    f->colorspace = AVCOL_SPC_BT709;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    const int depth = d->comp[0].depth, scale = 1 << (depth - 8);
    /* av_write_image_line2 ORs samples into place */
    for (int p = 0; p < 4 && f->buf[p]; p++)
        memset(f->buf[p]->data, 0, f->buf[p]->size);
    for (int c = 0; c < 3; c++) {
        const int cw = c ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w;
        const int ch = c ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h;
        uint32_t *row = calloc((size_t)cw, sizeof *row);
        assert_non_null(row);
        for (int y = 0; y < ch; y++) {
            for (int x = 0; x < cw; x++) {
                const float base =
                    c == 0 ? 40.0f + 150.0f * (float)(x + y) / (float)(cw + ch)
                           : 108.0f + 40.0f * (float)(c == 1 ? x : y) / (float)(c == 1 ? cw : ch);
                row[x] = (uint32_t)((base + 12.0f * t_hash(x, y, seed + c)) * (float)scale);
            }
            av_write_image_line2(row, f->data, f->linesize, d, 0, y, c, cw, sizeof *row);
        }
        free(row);
    }
    return f;
}

/* The worst difference of component planes between two frames of the same format, in codes. */
static int t_code_diff(const AVFrame *a, const AVFrame *b)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)a->format);
    int worst = 0;
    for (int c = 0; c < 3; c++) {
        const int cw = c ? AV_CEIL_RSHIFT(a->width, d->log2_chroma_w) : a->width;
        const int ch = c ? AV_CEIL_RSHIFT(a->height, d->log2_chroma_h) : a->height;
        uint32_t *ra = calloc((size_t)cw, sizeof *ra), *rb = calloc((size_t)cw, sizeof *rb);
        for (int y = 0; y < ch; y++) {
            av_read_image_line2(ra, (const uint8_t **)a->data, a->linesize, d, 0, y, c, cw, 0,
                                sizeof *ra);
            av_read_image_line2(rb, (const uint8_t **)b->data, b->linesize, d, 0, y, c, cw, 0,
                                sizeof *rb);
            for (int x = 0; x < cw; x++) {
                const int diff = abs((int)ra[x] - (int)rb[x]);
                worst = diff > worst ? diff : worst;
            }
        }
        free(ra);
        free(rb);
    }
    return worst;
}

/* Conversion tolerances (docs/passes.md, "On the GPU"): to RGB within T_TO_RGB of pconvert.c,
 * back to the format within T_CODES codes of it. */
#define T_TO_RGB 1e-5
#define T_CODES 1

static void t_convert_vs_cpu(void **state)
{
    (void)state;
    static const enum AVPixelFormat fmts[] = {AV_PIX_FMT_YUV420P,     AV_PIX_FMT_NV12,
                                              AV_PIX_FMT_YUV444P,     AV_PIX_FMT_P010LE,
                                              AV_PIX_FMT_YUV420P10LE, AV_PIX_FMT_YUV422P};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        const int w = 66, h = 38; /* even, not a multiple of 4 or 16 */
        AVFrame *src = t_yuv(fmts[k], w, h, (int)k);
        rf_pconvert_t *conv = NULL;
        rf_err_t err = {0};
        assert_int_equal(
            rf_pconvert_new(w, h, fmts[k], src->color_range, src->colorspace, &conv, &err), 0);
        rf_pframe_t cpu = {0}, dev = {0};
        assert_int_equal(rf_pconvert_to_rgb(conv, src, &cpu, &err), 0);
        int rc = rf_gpu_convert_to_rgb(T_DEVICE, src, &dev, &err);
        if (rc)
            fail_msg("%s: %s", av_get_pix_fmt_name(fmts[k]), err.msg);
        const double to_rgb = t_max_diff(&cpu, &dev);
        /* back from the same RGB */
        AVFrame *back_cpu = av_frame_alloc(), *back_dev = av_frame_alloc();
        assert_int_equal(rf_pconvert_from_rgb(conv, &cpu, back_cpu, &err), 0);
        rc = rf_gpu_convert_from_rgb(T_DEVICE, &cpu, fmts[k], src->color_range, src->colorspace,
                                     back_dev, &err);
        if (rc)
            fail_msg("%s back: %s", av_get_pix_fmt_name(fmts[k]), err.msg);
        const int codes = t_code_diff(back_cpu, back_dev);
        const int round_trip = t_code_diff(src, back_dev);
        printf("%-12s to RGB max |device - CPU| = %.3g; back: %d codes from the CPU's, round trip "
               "%d codes\n",
               av_get_pix_fmt_name(fmts[k]), to_rgb, codes, round_trip);
        assert_true(to_rgb <= T_TO_RGB);
        assert_true(codes <= T_CODES);
        assert_int_equal(back_dev->color_range, back_cpu->color_range);
        assert_int_equal(back_dev->colorspace, back_cpu->colorspace);
        av_frame_free(&back_cpu);
        av_frame_free(&back_dev);
        rf_pframe_release(&cpu);
        rf_pframe_release(&dev);
        rf_pconvert_destroy(&conv);
        av_frame_free(&src);
    }
}

/* The slot's stage (upload, passes, download through the ring) against what the CPU pass stage
 * does with the same frames: pconvert in, the chain, pconvert out. Context frames come out of
 * neither. */
static void t_stage_vs_cpu(void **state)
{
    (void)state;
    const int w = 80, h = 48, frames = 9, context = 2;
    rf_param_t dp[] = {{"strength", "0.7"}, {"window", "3"}};
    rf_param_t cp[] = {{"reference", "0.6,0.01,0.02,0.15,0.04,0.05"}, {"smoothing", "1"}};
    rf_param_t sp[] = {{"width", "64"}, {"height", "36"}};
    const rf_pass_spec_t passes[] = {{.name = (char *)"deflicker", .params = dp, .nparams = 2},
                                     {.name = (char *)"color-match", .params = cp, .nparams = 2},
                                     {.name = (char *)"scale", .params = sp, .nparams = 2}};
    for (int ring = 2; ring <= 3; ring++) {
        rf_err_t err = {0};
        rf_gpu_stage_cfg_t cfg = {.device = T_DEVICE,
                                  .width = w,
                                  .height = h,
                                  .pix_fmt = AV_PIX_FMT_YUV420P,
                                  .color_range = AVCOL_RANGE_MPEG,
                                  .color_space = AVCOL_SPC_BT709,
                                  .out_pix_fmt = AV_PIX_FMT_YUV420P,
                                  .passes = passes,
                                  .npasses = 3,
                                  .seed = 1,
                                  .frame_rate = {25, 1},
                                  .ring = ring};
        rf_gpu_stage_t *st = NULL;
        int rc = rf_gpu_stage_new(&cfg, &st, &err);
        if (rc)
            fail_msg("stage: %s", err.msg);
        assert_int_equal(rf_gpu_stage_on_device(st), 3);
        assert_true(rf_gpu_stage_vram(st) > 0);
        int ow, oh;
        rf_gpu_stage_output_size(st, &ow, &oh);
        assert_int_equal(ow, 64);
        assert_int_equal(oh, 36);
        rf_pass_chain_t *cpu = NULL;
        rf_pconvert_t *in = NULL, *out = NULL;
        assert_int_equal(rf_pass_chain_new(passes, 3, 1, w, h, (AVRational){25, 1}, &cpu, &err), 0);
        assert_int_equal(
            rf_pconvert_new(w, h, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, AVCOL_SPC_BT709, &in, &err),
            0);
        assert_int_equal(rf_pconvert_new(64, 36, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG,
                                         AVCOL_SPC_BT709, &out, &err),
                         0);
        AVFrame *expect[16] = {NULL};
        int got = 0, worst = 0;
        for (int i = 0; i < frames; i++) {
            AVFrame *src = t_yuv(AV_PIX_FMT_YUV420P, w, h, 10 + i);
            src->pts = 1000 + i;
            const bool ctx = i < context;
            rf_pframe_t pf = {0};
            assert_int_equal(rf_pconvert_to_rgb(in, src, &pf, &err), 0);
            pf.index = 50 + i;
            pf.context = ctx;
            assert_int_equal(rf_pass_chain_run(cpu, &pf, &err), 0);
            if (!ctx) {
                expect[i - context] = av_frame_alloc();
                assert_int_equal(rf_pconvert_from_rgb(out, &pf, expect[i - context], &err), 0);
            }
            rf_pframe_release(&pf);
            rc = rf_gpu_stage_push(st, src, 50 + i, ctx, &err);
            if (rc)
                fail_msg("push %d: %s", i, err.msg);
            av_frame_free(&src);
            AVFrame *o = NULL;
            while ((rc = rf_gpu_stage_pop(st, &o, &err)) == 1) {
                assert_int_equal(o->pts, 1000 + context + got);
                const int d = t_code_diff(o, expect[got]);
                worst = d > worst ? d : worst;
                got++;
                av_frame_free(&o);
            }
            assert_int_equal(rc, 0);
            /* nothing comes out before the ring has filled */
            const int done = i + 1 - context; /* frames that can have come out by now */
            assert_true(got <= (done > 0 ? done : 0) && got >= done - ring);
        }
        assert_int_equal(rf_gpu_stage_finish(st, &err), 0);
        AVFrame *o = NULL;
        while (rf_gpu_stage_pop(st, &o, &err) == 1) {
            assert_int_equal(o->pts, 1000 + context + got);
            assert_int_equal(o->width, 64);
            assert_int_equal(o->format, AV_PIX_FMT_YUV420P);
            const int d = t_code_diff(o, expect[got]);
            worst = d > worst ? d : worst;
            got++;
            av_frame_free(&o);
        }
        printf("stage, ring %d: %d frames out of %d (%d context), max %d codes from the CPU path\n",
               ring, got, frames, context, worst);
        assert_int_equal(got, frames - context);
        assert_true(worst <= T_CODES);
        double ms = 0;
        uint64_t timed = 0;
        rf_gpu_stage_device_ms(st, &ms, &timed);
        assert_int_equal(timed, (uint64_t)frames);
        for (int i = 0; i < frames - context; i++)
            av_frame_free(&expect[i]);
        rf_pconvert_destroy(&in);
        rf_pconvert_destroy(&out);
        rf_pass_chain_destroy(&cpu);
        rf_gpu_stage_destroy(&st);
    }
}

/* fp16 NHWC: values whose binary16 bits are known by hand (IEEE 754: bias 15, 10 mantissa bits),
 * through the device and back. */
static void t_nhwc16(void **state)
{
    (void)state;
    static const struct {
        float in;
        uint16_t bits;
        float back;
    } v[] = {
        {0.0f, 0x0000, 0.0f},
        {1.0f, 0x3c00, 1.0f},
        {0.5f, 0x3800, 0.5f},
        {-2.0f, 0xc000, -2.0f},
        {0.1f, 0x2e66, 0.0999755859375f},              /* 1638.4 / 16384 -> 1638 */
        {1.0f / 3.0f, 0x3555, 0.333251953125f},        /* mantissa 341.33 -> 341 */
        {65504.0f, 0x7bff, 65504.0f},                  /* the largest half */
        {70000.0f, 0x7c00, INFINITY},                  /* overflow */
        {0x1p-20f, 0x0010, 0x1p-20f},                  /* subnormal: 16 * 2^-24 */
        {0x1p-25f, 0x0000, 0.0f},                      /* halfway to 2^-24: to even, 0 */
        {1.0f + 0x1p-11f, 0x3c00, 1.0f},               /* halfway: to even (down) */
        {1.0f + 3 * 0x1p-11f, 0x3c02, 1.0f + 0x1p-9f}, /* halfway: to even (up) */
    };
    const int n = (int)(sizeof v / sizeof v[0]), cpad = 8;
    float host[3][16];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < n; i++)
            host[c][i] = c == 1 ? -v[i].in : v[i].in; /* G negated: the sign bit per channel */
    float *dev[3] = {NULL, NULL, NULL}, *back[3] = {NULL, NULL, NULL};
    uint16_t *tensor = NULL, out[16 * 8];
    rf_err_t err = {0};
    assert_null(rf_gk_device_open(T_DEVICE));
    for (int c = 0; c < 3; c++) {
        assert_null(rf_gk_malloc((void **)&dev[c], sizeof host[c]));
        assert_null(rf_gk_malloc((void **)&back[c], sizeof host[c]));
        assert_null(rf_gk_copy2d(dev[c], 0, host[c], 0, (size_t)n * sizeof(float), 1, 1, NULL));
    }
    assert_null(rf_gk_malloc((void **)&tensor, sizeof out));
    assert_int_equal(rf_gpu_to_nhwc16((const float *const *)dev, n, 1, cpad, tensor, NULL, &err),
                     0);
    assert_int_equal(rf_gpu_from_nhwc16(tensor, n, 1, cpad, back, NULL, &err), 0);
    assert_null(rf_gk_copy2d(out, 0, tensor, 0, (size_t)n * cpad * sizeof(uint16_t), 1, 2, NULL));
    float got[3][16];
    for (int c = 0; c < 3; c++)
        assert_null(rf_gk_copy2d(got[c], 0, back[c], 0, (size_t)n * sizeof(float), 1, 2, NULL));
    assert_null(rf_gk_stream_sync(NULL));
    for (int i = 0; i < n; i++) {
        const uint16_t want = v[i].bits;
        if (out[i * cpad] != want || out[i * cpad + 2] != want ||
            out[i * cpad + 1] != (uint16_t)(want ^ 0x8000u))
            fail_msg("%g: bits %04x %04x %04x, want %04x", (double)v[i].in, out[i * cpad],
                     out[i * cpad + 1], out[i * cpad + 2], want);
        for (int c = 3; c < cpad; c++)
            assert_int_equal(out[i * cpad + c], 0);
        assert_true(got[0][i] == v[i].back && got[2][i] == v[i].back);
        assert_true(got[1][i] == -v[i].back);
    }
    assert_int_equal(rf_gpu_to_nhwc16((const float *const *)dev, n, 1, 9, tensor, NULL, &err),
                     RF_EINVAL);
    assert_string_equal(err.msg, "NHWC tensor with 9 channels, expected 3..8");
    for (int c = 0; c < 3; c++) {
        rf_gk_free(dev[c]);
        rf_gk_free(back[c]);
    }
    rf_gk_free(tensor);
}

#endif
