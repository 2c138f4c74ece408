/* test_thumb.c - rf_thumb_jpeg: the frame asked for (red-gray fixture: 20 red frames, then 20
 * gray), scaled to the width asked for with the aspect kept, as a JPEG FFmpeg decodes back;
 * past the end gives the last frame; bad input gets one clear error. */
#include <stdint.h>

#include "../media/fixture.h"
#include "log.h"
#include "media.h"
#include "thumb.h"

/* Writes the JPEG, decodes it back, returns the mean of the first plane and the size. */
static double s_decode_mean(const uint8_t *jpeg, size_t len, int *w, int *h, const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/t.jpg", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(jpeg, 1, len, f), len);
    fclose(f);
    rf_decoder_t *d = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_decoder_open(path, &d, &err), 0);
    assert_string_equal(avcodec_get_name(rf_decoder_params(d)->codec_id), "mjpeg");
    AVFrame *fr = av_frame_alloc();
    assert_int_equal(rf_decoder_next(d, fr, &err), 1);
    *w = fr->width;
    *h = fr->height;
    double sum = 0;
    for (int y = 0; y < fr->height; y++)
        for (int x = 0; x < fr->width; x++)
            sum += fr->data[0][y * fr->linesize[0] + x];
    av_frame_free(&fr);
    rf_decoder_destroy(&d);
    unlink(path);
    return sum / ((double)*w * *h);
}

static void test_frames_and_sizes(void **state)
{
    (void)state;
    char src[512], dir[512];
    rf_fixture("red-gray", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    const struct {
        int64_t index;
        int width, want_h;
        double lo, hi; /* luma mean of the JPEG (full range) */
    } cases[] = {
        {5, 320, 180, 40, 100}, /* red: Y' about 54 (BT.709) to 76 (BT.601) */
        {0, 160, 90, 40, 100},   {30, 320, 180, 115, 140},  /* mid gray: about 128 */
        {39, 64, 36, 115, 140},  {500, 320, 180, 115, 140}, /* past the end: the last frame */
        {-3, 320, 180, 40, 100},                            /* before the start: the first */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *jpeg = NULL;
        size_t len = 0;
        rf_err_t err = {0};
        int rc = rf_thumb_jpeg(src, cases[i].index, cases[i].width, &jpeg, &len, &err);
        if (rc)
            fail_msg("frame %lld: %s", (long long)cases[i].index, err.msg);
        assert_true(len > 100);
        assert_int_equal(jpeg[0], 0xFF);
        assert_int_equal(jpeg[1], 0xD8); /* JPEG SOI */
        int w = 0, h = 0;
        double mean = s_decode_mean(jpeg, len, &w, &h, dir);
        free(jpeg);
        if (w != cases[i].width || h != cases[i].want_h || mean < cases[i].lo || mean > cases[i].hi)
            fail_msg("frame %lld at %d px: got %dx%d, luma mean %.1f (want %dx%d, %.0f..%.0f)",
                     (long long)cases[i].index, cases[i].width, w, h, mean, cases[i].width,
                     cases[i].want_h, cases[i].lo, cases[i].hi);
    }
    rmdir(dir);
}

static void test_errors(void **state)
{
    (void)state;
    char src[512], notvideo[512];
    rf_fixture("red-gray", src, sizeof(src));
    rf_fixture("not-video", notvideo, sizeof(notvideo));
    const struct {
        const char *path;
        int64_t index;
        int width, code;
        const char *msg;
    } cases[] = {
        {"/nonexistent/x.mkv", 0, 320, RF_EIO, "/nonexistent/x.mkv"},
        {NULL, 0, 8, RF_EINVAL, "thumbnail width 8 is outside 16..1920"},
        {NULL, 0, 4000, RF_EINVAL, "outside 16..1920"},
        {NULL, RF_THUMB_MAX_DECODE, 320, RF_ETOOBIG, "past the 20000 frames a preview decodes"},
        {"NOTVIDEO", 0, 320, RF_EMEDIA, "not-video.mp4"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = !cases[i].path                       ? src
                           : !strcmp(cases[i].path, "NOTVIDEO") ? notvideo
                                                                : cases[i].path;
        uint8_t *jpeg = (uint8_t *)1;
        size_t len = 7;
        rf_err_t err = {0};
        int rc = rf_thumb_jpeg(path, cases[i].index, cases[i].width, &jpeg, &len, &err);
        if (rc == 0 || !strstr(err.msg, cases[i].msg) ||
            (cases[i].code != RF_EIO && rc != cases[i].code))
            fail_msg("case %zu: rc %d '%s' (want %d, '...%s...')", i, rc, err.msg, cases[i].code,
                     cases[i].msg);
        assert_null(jpeg);
        assert_int_equal(len, 0);
    }
}

int main(void)
{
    rf_log_setup(RF_LOG_ERROR, RF_LOG_AUTO, 2);
    rf_media_log_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_and_sizes),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
