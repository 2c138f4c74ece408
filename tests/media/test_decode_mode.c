/* test_decode_mode.c - the decode setting (auto|cpu|nvdec, media.h rf_decoder_open_mode).
 *
 * Runs on every machine. Without a CUDA device (or driver), auto must decode on the CPU and give
 * exactly the frames rf_decoder_open gives, with the reason in rf_decoder_hw_note, and nvdec must
 * refuse with that reason. With a device (the lead's GPU run), auto decodes on NVDEC and the
 * frames, downloaded, must equal the CPU decoder's sample for sample (H.264 decoding is exact:
 * NV12's interleaved chroma is compared with yuv420p's planes). A codec without a CUDA hwaccel
 * (ffv1) decodes on the CPU in every mode but nvdec.
 */
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>

#include "media/fixture.h"

#include "media.h"

static void test_parse(void **state)
{
    (void)state;
    rf_decode_mode_t m;
    rf_err_t err = {0};
    assert_int_equal(rf_decode_mode_parse("auto", &m, &err), 0);
    assert_int_equal(m, RF_DECODE_AUTO);
    assert_int_equal(rf_decode_mode_parse("cpu", &m, &err), 0);
    assert_int_equal(m, RF_DECODE_CPU);
    assert_int_equal(rf_decode_mode_parse("nvdec", &m, &err), 0);
    assert_int_equal(m, RF_DECODE_NVDEC);
    assert_string_equal(rf_decode_mode_name(RF_DECODE_NVDEC), "nvdec");
    assert_int_equal(rf_decode_mode_parse("cuda", &m, &err), RF_ECONFIG);
    assert_string_equal(err.msg, "decode 'cuda': expected auto, cpu or nvdec");
    assert_int_equal(rf_decode_mode_parse(NULL, &m, &err), RF_ECONFIG);
}

/* Frame f as a software frame (downloaded when it is on the device). */
static AVFrame *s_soft(const AVFrame *f)
{
    AVFrame *s = av_frame_alloc();
    assert_non_null(s);
    if (f->format == AV_PIX_FMT_CUDA)
        assert_int_equal(av_hwframe_transfer_data(s, f, 0), 0);
    else
        assert_int_equal(av_frame_ref(s, f), 0);
    return s;
}

/* Component c's sample (x, y) of a software frame, whatever its layout. */
static unsigned s_sample(const AVFrame *f, int c, int x, int y)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)f->format);
    uint16_t v = 0;
    av_read_image_line(&v, (const uint8_t **)f->data, f->linesize, d, x, y, c, 1, 0);
    return v;
}

static void s_same_frames(const char *path, rf_decode_mode_t mode, bool expect_hw)
{
    rf_decoder_t *ref = NULL, *d = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_decoder_open(path, &ref, &err), 0);
    assert_false(rf_decoder_hw(ref));
    assert_int_equal(rf_decoder_open_mode(path, mode, 0, &d, &err), 0);
    AVFrame *a = av_frame_alloc(), *b = av_frame_alloc();
    int64_t n = 0;
    for (;;) {
        int ra = rf_decoder_next(ref, a, &err);
        int rb = rf_decoder_next(d, b, &err);
        assert_true(ra >= 0 && rb >= 0);
        assert_int_equal(ra, rb);
        if (ra == 0)
            break;
        assert_int_equal(a->pts, b->pts);
        assert_int_equal(b->format == AV_PIX_FMT_CUDA, expect_hw);
        AVFrame *sb = s_soft(b);
        assert_int_equal(a->width, sb->width);
        assert_int_equal(a->height, sb->height);
        const AVPixFmtDescriptor *da = av_pix_fmt_desc_get((enum AVPixelFormat)a->format);
        for (int c = 0; c < 3; c++) {
            const int cw = c ? AV_CEIL_RSHIFT(a->width, da->log2_chroma_w) : a->width;
            const int ch = c ? AV_CEIL_RSHIFT(a->height, da->log2_chroma_h) : a->height;
            for (int y = 0; y < ch; y += 7)
                for (int x = 0; x < cw; x += 5)
                    if (s_sample(a, c, x, y) != s_sample(sb, c, x, y))
                        fail_msg("frame %lld component %d (%d,%d): %u vs %u", (long long)n, c, x, y,
                                 s_sample(a, c, x, y), s_sample(sb, c, x, y));
        }
        av_frame_free(&sb);
        n++;
    }
    assert_true(n > 0);
    assert_int_equal(rf_decoder_hw(d), expect_hw);
    if (!expect_hw)
        assert_true(rf_decoder_hw_note(d)[0] != '\0' || mode == RF_DECODE_CPU);
    printf("%s, %s: %lld frames, %s%s\n", strrchr(path, '/') + 1, rf_decode_mode_name(mode),
           (long long)n, expect_hw ? "NVDEC" : "CPU", expect_hw ? "" : "");
    if (!expect_hw && mode != RF_DECODE_CPU)
        printf("  why not NVDEC: %s\n", rf_decoder_hw_note(d));
    av_frame_free(&a);
    av_frame_free(&b);
    rf_decoder_destroy(&d);
    rf_decoder_destroy(&ref);
}

/* Is there a CUDA device FFmpeg can open? (Decides what the other tests expect.) */
static bool s_have_cuda(void)
{
    AVBufferRef *dev = NULL;
    if (av_hwdevice_ctx_create(&dev, AV_HWDEVICE_TYPE_CUDA, "0", NULL, 0) < 0)
        return false;
    av_buffer_unref(&dev);
    return true;
}

static void test_auto(void **state)
{
    (void)state;
    char src[1024];
    rf_fixture("h264-aac-300", src, sizeof(src));
    s_same_frames(src, RF_DECODE_CPU, false);
    s_same_frames(src, RF_DECODE_AUTO, s_have_cuda());
}

static void test_nvdec(void **state)
{
    (void)state;
    char src[1024];
    rf_fixture("h264-aac-300", src, sizeof(src));
    rf_decoder_t *d = NULL;
    rf_err_t err = {0};
    int rc = rf_decoder_open_mode(src, RF_DECODE_NVDEC, 0, &d, &err);
    if (s_have_cuda()) {
        assert_int_equal(rc, 0);
        assert_true(rf_decoder_hw(d));
        rf_decoder_destroy(&d);
        s_same_frames(src, RF_DECODE_NVDEC, true);
    } else {
        assert_int_equal(rc, RF_EUNAVAIL);
        assert_null(d);
        assert_non_null(strstr(err.msg, "decode 'nvdec': no CUDA device 0"));
        printf("nvdec without a device: %s\n", err.msg);
    }
}

/* ffv1 has no CUDA hwaccel: auto decodes it on the CPU, nvdec refuses it, on any machine. */
static void test_no_hwaccel(void **state)
{
    (void)state;
    char src[1024];
    rf_fixture("red-gray", src, sizeof(src));
    s_same_frames(src, RF_DECODE_AUTO, false);
    rf_decoder_t *d = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_decoder_open_mode(src, RF_DECODE_AUTO, 0, &d, &err), 0);
    assert_string_equal(rf_decoder_hw_note(d), "the ffv1 decoder has no CUDA hwaccel");
    rf_decoder_destroy(&d);
    assert_int_equal(rf_decoder_open_mode(src, RF_DECODE_NVDEC, 0, &d, &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "decode 'nvdec': the ffv1 decoder has no CUDA hwaccel"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_nvdec),
        cmocka_unit_test(test_no_hwaccel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
