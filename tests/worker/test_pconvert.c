/* test_pconvert.c - decoded frames <-> planar RGB fp32 (worker/passes/pconvert.c): round trips,
 * the G/B/R plane order, colour range and matrix, and refused inputs.
 *
 * Expected colours are computed here from the BT.601/BT.709 definitions, not taken from swscale:
 *   limited-range red under BT.601: Y = 16 + 219*0.299 = 81.48, Cb = 128 - 112*0.299/0.886 = 90.2,
 *   Cr = 128 + 112 = 240.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <libavutil/frame.h>
#include <libavutil/pixfmt.h>

#include "passes.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static AVFrame *t_frame(int w, int h, enum AVPixelFormat fmt)
{
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    f->width = w;
    f->height = h;
    f->format = fmt;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    return f;
}

/* Fills a planar 8-bit YUV frame (chroma subsampled by sx, sy) with constant Y, U, V. */
static void t_fill_yuv(AVFrame *f, int sx, int sy, uint8_t y, uint8_t u, uint8_t v)
{
    for (int r = 0; r < f->height; r++)
        memset(f->data[0] + (size_t)r * f->linesize[0], y, (size_t)f->width);
    for (int r = 0; r < f->height / sy; r++) {
        memset(f->data[1] + (size_t)r * f->linesize[1], u, (size_t)(f->width / sx));
        memset(f->data[2] + (size_t)r * f->linesize[2], v, (size_t)(f->width / sx));
    }
}

/* A smooth gradient that stays inside the RGB gamut (no clipping on the way), so a round trip
 * can only lose rounding. */
static void t_fill_gradient(AVFrame *f, int sx, int sy)
{
    const int w = f->width, h = f->height;
    for (int r = 0; r < h; r++)
        for (int x = 0; x < w; x++)
            f->data[0][(size_t)r * f->linesize[0] + x] = (uint8_t)(60 + (x + r) * 120 / (w + h));
    for (int r = 0; r < h / sy; r++) {
        for (int x = 0; x < w / sx; x++) {
            f->data[1][(size_t)r * f->linesize[1] + x] = (uint8_t)(118 + x * 20 / (w / sx));
            f->data[2][(size_t)r * f->linesize[2] + x] = (uint8_t)(118 + r * 20 / (h / sy));
        }
    }
}

static int t_max_diff(const AVFrame *a, const AVFrame *b, int plane, int w, int h)
{
    int worst = 0;
    for (int r = 0; r < h; r++) {
        for (int x = 0; x < w; x++) {
            int d = a->data[plane][(size_t)r * a->linesize[plane] + x] -
                    b->data[plane][(size_t)r * b->linesize[plane] + x];
            if (abs(d) > worst)
                worst = abs(d);
        }
    }
    return worst;
}

/* Converts src to RGB, checks the centre pixel against r, g, b (tolerance tol). */
static void t_expect_rgb(rf_pconvert_t *c, const AVFrame *src, double r, double g, double b,
                         double tol)
{
    rf_pframe_t pf = {0};
    rf_err_t err = {0};
    assert_int_equal(rf_pconvert_to_rgb(c, src, &pf, &err), 0);
    size_t mid = (size_t)(src->height / 2) * (size_t)src->width + (size_t)src->width / 2;
    assert_float_equal(pf.plane[0][mid], r, tol);
    assert_float_equal(pf.plane[1][mid], g, tol);
    assert_float_equal(pf.plane[2][mid], b, tol);
    rf_pframe_release(&pf);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void t_roundtrip(enum AVPixelFormat fmt, int sx, int sy, int tol)
{
    const int w = 64, h = 48;
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t pf = {0};
    AVFrame *src = t_frame(w, h, fmt);
    AVFrame *back = av_frame_alloc();
    assert_non_null(back);
    t_fill_gradient(src, sx, sy);

    assert_int_equal(rf_pconvert_new(w, h, fmt, AVCOL_RANGE_MPEG, AVCOL_SPC_UNSPECIFIED, &c, &err),
                     0);
    assert_int_equal(rf_pconvert_to_rgb(c, src, &pf, &err), 0);
    assert_int_equal(pf.width, w);
    assert_int_equal(pf.height, h);
    assert_int_equal(rf_pconvert_from_rgb(c, &pf, back, &err), 0);
    assert_int_equal(back->format, fmt);
    assert_int_equal(back->width, w);
    assert_int_equal(back->height, h);
    assert_int_equal(back->color_range, AVCOL_RANGE_MPEG);
    assert_int_equal(back->colorspace, AVCOL_SPC_SMPTE170M); /* SD, unspecified: BT.601 */
    assert_in_range(t_max_diff(src, back, 0, w, h), 0, tol);
    assert_in_range(t_max_diff(src, back, 1, w / sx, h / sy), 0, tol);
    assert_in_range(t_max_diff(src, back, 2, w / sx, h / sy), 0, tol);

    rf_pframe_release(&pf);
    av_frame_free(&src);
    av_frame_free(&back);
    rf_pconvert_destroy(&c);
    assert_null(c);
}

static void test_yuv420p_roundtrip(void **state)
{
    (void)state;
    t_roundtrip(AV_PIX_FMT_YUV420P, 2, 2, 2);
}

static void test_yuv444p_roundtrip(void **state)
{
    (void)state;
    t_roundtrip(AV_PIX_FMT_YUV444P, 1, 1, 1);
}

/* Red must land in plane[0] (R), not in FFmpeg's GBR order. */
static void test_red_plane_mapping(void **state)
{
    (void)state;
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};

    AVFrame *yuv = t_frame(64, 48, AV_PIX_FMT_YUV420P);
    t_fill_yuv(yuv, 2, 2, 81, 90, 240);
    assert_int_equal(
        rf_pconvert_new(64, 48, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, AVCOL_SPC_BT470BG, &c, &err),
        0);
    /* R = 65/219 + 1.402 * 112/224 = 0.9978; G and B come out just below 0 and are clamped. */
    t_expect_rgb(c, yuv, 0.9978, 0.0, 0.0, 0.001);

    /* And back: RGB red gives the BT.601 limited-range red. */
    rf_pframe_t pf = {0};
    AVFrame *out = av_frame_alloc();
    assert_int_equal(rf_pconvert_to_rgb(c, yuv, &pf, &err), 0);
    for (size_t i = 0; i < 64 * 48; i++) {
        pf.plane[0][i] = 1.0f;
        pf.plane[1][i] = 0.0f;
        pf.plane[2][i] = 0.0f;
    }
    assert_int_equal(rf_pconvert_from_rgb(c, &pf, out, &err), 0);
    assert_in_range(out->data[0][24 * out->linesize[0] + 32], 81, 82);
    assert_in_range(out->data[1][12 * out->linesize[1] + 16], 89, 91);
    assert_in_range(out->data[2][12 * out->linesize[2] + 16], 239, 240);
    assert_int_equal(out->colorspace, AVCOL_SPC_BT470BG);
    rf_pframe_release(&pf);
    assert_null(pf.plane[0]);
    av_frame_free(&out);
    av_frame_free(&yuv);
    rf_pconvert_destroy(&c);

    /* rgb24 red: exact. */
    AVFrame *rgb = t_frame(16, 8, AV_PIX_FMT_RGB24);
    for (int r = 0; r < 8; r++)
        for (int x = 0; x < 16; x++) {
            uint8_t *p = rgb->data[0] + (size_t)r * rgb->linesize[0] + 3 * x;
            p[0] = 255;
            p[1] = 0;
            p[2] = 0;
        }
    assert_int_equal(rf_pconvert_new(16, 8, AV_PIX_FMT_RGB24, AVCOL_RANGE_UNSPECIFIED,
                                     AVCOL_SPC_UNSPECIFIED, &c, &err),
                     0);
    t_expect_rgb(c, rgb, 1.0, 0.0, 0.0, 1e-3);
    av_frame_free(&rgb);
    rf_pconvert_destroy(&c);
}

static void test_rgb24_roundtrip(void **state)
{
    (void)state;
    const int w = 24, h = 10;
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t pf = {0};
    AVFrame *src = t_frame(w, h, AV_PIX_FMT_RGB24);
    AVFrame *back = av_frame_alloc();
    for (int r = 0; r < h; r++)
        for (int x = 0; x < 3 * w; x++)
            src->data[0][(size_t)r * src->linesize[0] + x] = (uint8_t)((x * 7 + r * 31) & 0xff);

    assert_int_equal(rf_pconvert_new(w, h, AV_PIX_FMT_RGB24, AVCOL_RANGE_UNSPECIFIED,
                                     AVCOL_SPC_UNSPECIFIED, &c, &err),
                     0);
    assert_int_equal(rf_pconvert_to_rgb(c, src, &pf, &err), 0);
    /* Pixel (1, 0) is bytes 3, 4, 5: R = 21, G = 28, B = 35. */
    assert_float_equal(pf.plane[0][1], 21.0 / 255, 1e-3);
    assert_float_equal(pf.plane[1][1], 28.0 / 255, 1e-3);
    assert_float_equal(pf.plane[2][1], 35.0 / 255, 1e-3);
    assert_int_equal(rf_pconvert_from_rgb(c, &pf, back, &err), 0);
    int worst = 0;
    for (int r = 0; r < h; r++)
        for (int x = 0; x < 3 * w; x++) {
            int d = abs(src->data[0][(size_t)r * src->linesize[0] + x] -
                        back->data[0][(size_t)r * back->linesize[0] + x]);
            worst = d > worst ? d : worst;
        }
    assert_in_range(worst, 0, 1);
    assert_int_equal(back->colorspace, AVCOL_SPC_RGB);
    rf_pframe_release(&pf);
    av_frame_free(&src);
    av_frame_free(&back);
    rf_pconvert_destroy(&c);
}

/* Y = 235 is white in limited range and 235/255 in full range; yuvj420p is full range. */
static void test_color_range(void **state)
{
    (void)state;
    const struct {
        enum AVPixelFormat fmt;
        int range;
        uint8_t y;
        double want;
    } cases[] = {
        {AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, 235, 1.0},
        {AV_PIX_FMT_YUV420P, AVCOL_RANGE_UNSPECIFIED, 235, 1.0},
        {AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, 16, 0.0},
        {AV_PIX_FMT_YUV420P, AVCOL_RANGE_JPEG, 235, 235.0 / 255},
        {AV_PIX_FMT_YUV420P, AVCOL_RANGE_JPEG, 16, 16.0 / 255},
        {AV_PIX_FMT_YUVJ420P, AVCOL_RANGE_UNSPECIFIED, 235, 235.0 / 255},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_pconvert_t *c = NULL;
        rf_err_t err = {0};
        AVFrame *f = t_frame(32, 16, cases[i].fmt);
        t_fill_yuv(f, 2, 2, cases[i].y, 128, 128);
        assert_int_equal(
            rf_pconvert_new(32, 16, cases[i].fmt, cases[i].range, AVCOL_SPC_BT709, &c, &err), 0);
        t_expect_rgb(c, f, cases[i].want, cases[i].want, cases[i].want, 1e-5);
        av_frame_free(&f);
        rf_pconvert_destroy(&c);
    }
}

/* G of the centre pixel for Y=126, Cb=100, Cr=180 (limited range) under a matrix. */
static float t_green(int w, int h, int space)
{
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t pf = {0};
    AVFrame *f = t_frame(w, h, AV_PIX_FMT_YUV420P);
    t_fill_yuv(f, 2, 2, 126, 100, 180);
    assert_int_equal(rf_pconvert_new(w, h, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, space, &c, &err),
                     0);
    assert_int_equal(rf_pconvert_to_rgb(c, f, &pf, &err), 0);
    float g = pf.plane[1][(size_t)(h / 2) * w + w / 2];
    rf_pframe_release(&pf);
    av_frame_free(&f);
    rf_pconvert_destroy(&c);
    return g;
}

/* G = (Y' - Cr*2*Kr*(1-Kr)/Kg - Cb*2*Kb*(1-Kb)/Kg), Y' = (126-16)/219, Cb/Cr = (c-128)/224:
 *   BT.601 (Kr .299, Kb .114): 0.50228 - 0.71414*0.23214 + 0.34414*0.125 = 0.37952
 *   BT.709 (Kr .2126, Kb .0722): 0.50228 - 0.46812*0.23214 + 0.18732*0.125 = 0.41703
 * Unspecified means BT.601 for SD and BT.709 for HD. Exact to float precision: the matrix is ours,
 * not swscale's (whose RGB output is 255/256 too dark). */
static void test_color_matrix(void **state)
{
    (void)state;
    assert_float_equal(t_green(64, 48, AVCOL_SPC_BT470BG), 0.37952, 1e-4);
    assert_float_equal(t_green(64, 48, AVCOL_SPC_SMPTE170M), 0.37952, 1e-4);
    assert_float_equal(t_green(64, 48, AVCOL_SPC_UNSPECIFIED), 0.37952, 1e-4);
    assert_float_equal(t_green(64, 48, AVCOL_SPC_BT709), 0.41703, 1e-4);
    assert_float_equal(t_green(1280, 720, AVCOL_SPC_UNSPECIFIED), 0.41703, 1e-4);
    assert_float_equal(t_green(1280, 720, AVCOL_SPC_BT470BG), 0.37952, 1e-4);
}

/* 10-bit: limited-range white is 940, full-range white 1023; both give exactly 1.0, and a flat
 * frame survives the round trip unchanged. */
static void test_ten_bit(void **state)
{
    (void)state;
    const struct {
        int range;
        uint16_t y;
        double want;
    } cases[] = {
        {AVCOL_RANGE_MPEG, 940, 1.0},          {AVCOL_RANGE_MPEG, 64, 0.0},
        {AVCOL_RANGE_MPEG, 502, 438.0 / 876},  {AVCOL_RANGE_JPEG, 1023, 1.0},
        {AVCOL_RANGE_JPEG, 512, 512.0 / 1023},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rf_pconvert_t *c = NULL;
        rf_err_t err = {0};
        rf_pframe_t pf = {0};
        AVFrame *f = t_frame(32, 16, AV_PIX_FMT_YUV420P10);
        AVFrame *back = av_frame_alloc();
        for (int p = 0; p < 3; p++) {
            int h = p ? 8 : 16, w = p ? 16 : 32;
            for (int r = 0; r < h; r++)
                for (int x = 0; x < w; x++)
                    ((uint16_t *)(f->data[p] + (size_t)r * f->linesize[p]))[x] =
                        p ? 512 : cases[i].y;
        }
        assert_int_equal(rf_pconvert_new(32, 16, AV_PIX_FMT_YUV420P10, cases[i].range,
                                         AVCOL_SPC_BT709, &c, &err),
                         0);
        assert_int_equal(rf_pconvert_to_rgb(c, f, &pf, &err), 0);
        for (int p = 0; p < 3; p++)
            assert_float_equal(pf.plane[p][100], cases[i].want, 1e-5);
        assert_int_equal(rf_pconvert_from_rgb(c, &pf, back, &err), 0);
        for (int p = 0; p < 3; p++)
            assert_int_equal(((uint16_t *)(back->data[p] + back->linesize[p]))[3],
                             p ? 512 : cases[i].y);
        rf_pframe_release(&pf);
        av_frame_free(&f);
        av_frame_free(&back);
        rf_pconvert_destroy(&c);
    }
}

/* Planes are allocated once and reused; a frame of another size gets new ones. */
static void test_pframe_reuse(void **state)
{
    (void)state;
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t pf = {0};
    AVFrame *f = t_frame(32, 16, AV_PIX_FMT_YUV420P);
    t_fill_yuv(f, 2, 2, 100, 128, 128);
    f->pts = 4242;
    assert_int_equal(
        rf_pconvert_new(32, 16, AV_PIX_FMT_YUV420P, AVCOL_RANGE_MPEG, AVCOL_SPC_BT709, &c, &err),
        0);
    assert_int_equal(rf_pconvert_to_rgb(c, f, &pf, &err), 0);
    assert_int_equal(pf.pts, 4242);
    float *r = pf.plane[0];
    assert_int_equal(rf_pconvert_to_rgb(c, f, &pf, &err), 0);
    assert_ptr_equal(pf.plane[0], r);
    rf_pframe_release(&pf);
    for (int p = 0; p < 3; p++)
        assert_null(pf.plane[p]);
    rf_pframe_release(&pf); /* twice is harmless */
    av_frame_free(&f);
    rf_pconvert_destroy(&c);
    rf_pconvert_destroy(&c);
}

static void test_refused(void **state)
{
    (void)state;
    rf_pconvert_t *c = NULL;
    rf_err_t err = {0};

    assert_int_equal(rf_pconvert_new(0, 16, AV_PIX_FMT_YUV420P, 0, 0, &c, &err), RF_EMEDIA);
    assert_null(c);
    assert_int_equal(rf_pconvert_new(100000, 16, AV_PIX_FMT_YUV420P, 0, 0, &c, &err), RF_EMEDIA);
    assert_int_equal(rf_pconvert_new(32, 16, AV_PIX_FMT_NONE, 0, 0, &c, &err), RF_EMEDIA);
    assert_int_equal(rf_pconvert_new(32, 16, AV_PIX_FMT_CUDA, 0, 0, &c, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "'cuda'"));
    assert_null(c);

    /* A decoded frame that is not what the converter was made for. */
    rf_pframe_t pf = {0};
    AVFrame *f = t_frame(32, 16, AV_PIX_FMT_YUV444P);
    assert_int_equal(rf_pconvert_new(32, 16, AV_PIX_FMT_YUV420P, 0, 0, &c, &err), 0);
    assert_int_equal(rf_pconvert_to_rgb(c, f, &pf, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "'yuv444p'"));
    assert_null(pf.plane[0]);

    /* A pipeline frame of another size. */
    AVFrame *out = av_frame_alloc();
    rf_pframe_t small = {.index = 9, .width = 8, .height = 8};
    float px[64] = {0};
    small.plane[0] = small.plane[1] = small.plane[2] = px;
    assert_int_equal(rf_pconvert_from_rgb(c, &small, out, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "frame 9"));
    av_frame_free(&out);
    av_frame_free(&f);
    rf_pconvert_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yuv420p_roundtrip), cmocka_unit_test(test_yuv444p_roundtrip),
        cmocka_unit_test(test_red_plane_mapping), cmocka_unit_test(test_rgb24_roundtrip),
        cmocka_unit_test(test_color_range),       cmocka_unit_test(test_color_matrix),
        cmocka_unit_test(test_ten_bit),           cmocka_unit_test(test_pframe_reuse),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
