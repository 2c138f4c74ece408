/* test_seam.c - seam cross-fades (media/seam.c): rf_frame_crossfade against values computed in
 * double precision here (8- and 10-bit, every plane, with chroma subsampling), identity when both
 * frames are equal, clear errors for mismatched frames and weights; rf_media_seam_encode on two
 * lossless side parts made here, decoded back frame by frame, and its refusal of parts of the
 * wrong length. */
#include <math.h>

#include <libavutil/pixdesc.h>

#include "media.h"
#include "media/fixture.h"

/* A frame of format fmt whose plane p sample (x, y) is f(p, x, y). */
static AVFrame *t_frame(int fmt, int w, int h, int (*f)(int p, int x, int y, int arg), int arg)
{
    AVFrame *fr = av_frame_alloc();
    assert_non_null(fr);
    fr->format = fmt;
    fr->width = w;
    fr->height = h;
    assert_int_equal(av_frame_get_buffer(fr, 0), 0);
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    bool wide = d->comp[0].depth > 8;
    for (int p = 0; p < 3; p++) {
        int pw = p ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w;
        int ph = p ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                uint8_t *row = fr->data[p] + (ptrdiff_t)y * fr->linesize[p];
                if (wide)
                    ((uint16_t *)row)[x] = (uint16_t)f(p, x, y, arg);
                else
                    row[x] = (uint8_t)f(p, x, y, arg);
            }
    }
    return fr;
}

static int t_sample(const AVFrame *fr, int p, int x, int y)
{
    const uint8_t *row = fr->data[p] + (ptrdiff_t)y * fr->linesize[p];
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fr->format);
    return d->comp[0].depth > 8 ? ((const uint16_t *)row)[x] : row[x];
}

static int t_ramp(int p, int x, int y, int max)
{
    return (x * 7 + y * 13 + p * 29) % (max + 1);
}

static int t_ramp_rev(int p, int x, int y, int max)
{
    return max - (x * 3 + y * 5 + p * 11) % (max + 1);
}

static void t_check_blend(int fmt, int max)
{
    const int w = 34, h = 18; /* odd chroma size when halved: 17x9 */
    AVFrame *a = t_frame(fmt, w, h, t_ramp, max), *b = t_frame(fmt, w, h, t_ramp_rev, max);
    AVFrame *out = av_frame_alloc();
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    rf_err_t err = {0};
    const int weights[][2] = {{0, 5}, {1, 5}, {2, 5}, {5, 5}, {1, 2}, {3, 9}, {7, 65}};
    for (size_t k = 0; k < sizeof(weights) / sizeof(weights[0]); k++) {
        int num = weights[k][0], den = weights[k][1];
        assert_int_equal(rf_frame_crossfade(a, b, num, den, out, &err), 0);
        assert_int_equal(out->format, fmt);
        for (int p = 0; p < 3; p++) {
            int pw = p ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w;
            int ph = p ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h;
            for (int y = 0; y < ph; y++)
                for (int x = 0; x < pw; x++) {
                    double va = t_ramp(p, x, y, max), vb = t_ramp_rev(p, x, y, max);
                    double t = (double)num / den;
                    int want = (int)floor(va + (vb - va) * t + 0.5 + 1e-9);
                    int got = t_sample(out, p, x, y);
                    if (got != want)
                        fail_msg("%s weight %d/%d plane %d (%d,%d): got %d, want %d",
                                 av_get_pix_fmt_name(fmt), num, den, p, x, y, got, want);
                }
        }
    }
    /* equal frames: the blend is exact, whatever the weight */
    assert_int_equal(rf_frame_crossfade(a, a, 3, 7, out, &err), 0);
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < (p ? AV_CEIL_RSHIFT(h, d->log2_chroma_h) : h); y++)
            for (int x = 0; x < (p ? AV_CEIL_RSHIFT(w, d->log2_chroma_w) : w); x++)
                assert_int_equal(t_sample(out, p, x, y), t_sample(a, p, x, y));
    av_frame_free(&a);
    av_frame_free(&b);
    av_frame_free(&out);
}

static void test_crossfade_values(void **state)
{
    (void)state;
    t_check_blend(AV_PIX_FMT_YUV420P, 255);
    t_check_blend(AV_PIX_FMT_YUV444P, 255);
    t_check_blend(AV_PIX_FMT_YUV420P10LE, 1023);
}

static void test_crossfade_errors(void **state)
{
    (void)state;
    AVFrame *a = t_frame(AV_PIX_FMT_YUV420P, 16, 16, t_ramp, 255);
    AVFrame *b = t_frame(AV_PIX_FMT_YUV420P, 18, 16, t_ramp, 255);
    AVFrame *c = t_frame(AV_PIX_FMT_YUV444P, 16, 16, t_ramp, 255);
    AVFrame *out = av_frame_alloc();
    rf_err_t err = {0};
    assert_int_equal(rf_frame_crossfade(a, b, 1, 2, out, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "16x16 yuv420p"));
    assert_non_null(strstr(err.msg, "18x16 yuv420p"));
    assert_int_equal(rf_frame_crossfade(a, c, 1, 2, out, &err), RF_EINVAL);
    assert_int_equal(rf_frame_crossfade(a, a, 3, 2, out, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "3/2"));
    assert_int_equal(rf_frame_crossfade(a, a, 1, 0, out, &err), RF_EINVAL);
    av_frame_free(&a);
    av_frame_free(&b);
    av_frame_free(&c);
    av_frame_free(&out);
}

static int t_flat(int p, int x, int y, int v)
{
    (void)x;
    (void)y;
    return p ? 128 : v;
}

/* Writes n flat frames (luma v + 2 * i for frame i) as a lossless ffv1 part. */
static void t_part(const char *path, int n, int v)
{
    rf_encode_params_t p = {.codec = "ffv1", .crf = -1, .pix_fmt = AV_PIX_FMT_YUV420P, .width = 32,
                            .height = 16, .frame_rate = {25, 1}, .sample_aspect_ratio = {1, 1}};
    rf_encoder_t *enc = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_encoder_open(&p, path, &enc, &err), 0);
    for (int i = 0; i < n; i++) {
        AVFrame *f = t_frame(AV_PIX_FMT_YUV420P, 32, 16, t_flat, v + 2 * i);
        f->pts = i;
        assert_int_equal(rf_encoder_write(enc, f, &err), 0);
        av_frame_free(&f);
    }
    assert_int_equal(rf_encoder_finish(enc, &err), 0);
    rf_encoder_destroy(&enc);
}

static void test_seam_encode(void **state)
{
    (void)state;
    char dir[512], a[600], b[600], s3[600], out[600];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(a, sizeof(a), "%s/tail.nut", dir);
    snprintf(b, sizeof(b), "%s/head.nut", dir);
    snprintf(s3, sizeof(s3), "%s/short.nut", dir);
    snprintf(out, sizeof(out), "%s/seam.nut", dir);
    const int k = 6;
    t_part(a, k, 40);  /* the earlier chunk's rendering: 40, 42, ... */
    t_part(b, k, 160); /* the later one's: 160, 162, ... */
    t_part(s3, 3, 0);
    rf_encode_params_t p = {.codec = "ffv1", .crf = -1, .frame_rate = {25, 1},
                            .sample_aspect_ratio = {1, 1}};
    rf_err_t err = {0};
    assert_int_equal(rf_media_seam_encode(a, b, k, &p, out, &err), 0);
    rf_decoder_t *d = NULL;
    assert_int_equal(rf_decoder_open(out, &d, &err), 0);
    AVFrame *f = av_frame_alloc();
    int n = 0;
    while (rf_decoder_next(d, f, &err) == 1) {
        double va = 40 + 2 * n, vb = 160 + 2 * n, t = (double)(n + 1) / (k + 1);
        int want = (int)floor(va + (vb - va) * t + 0.5 + 1e-9);
        assert_int_equal(t_sample(f, 0, 5, 3), want);
        assert_int_equal(t_sample(f, 1, 2, 2), 128);
        n++;
    }
    assert_int_equal(n, k);
    av_frame_free(&f);
    rf_decoder_destroy(&d);
    /* parts of different lengths, or not the expected length: refused, naming the parts */
    assert_int_equal(rf_media_seam_encode(a, s3, k, &p, out, &err), RF_EVERIFY);
    assert_non_null(strstr(err.msg, "short.nut"));
    assert_int_equal(rf_media_seam_encode(a, b, k + 1, &p, out, &err), RF_EVERIFY);
    assert_non_null(strstr(err.msg, "expected 7"));
    rf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crossfade_values),
        cmocka_unit_test(test_crossfade_errors),
        cmocka_unit_test(test_seam_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
