/* test_probe.c - the frame index: counts, rates, keyframes, hazards and error messages. */
#include <libavutil/pixfmt.h>

#include "media.h"
#include "media/fixture.h"

static void test_h264_1001(void **state)
{
    char path[512];
    rf_fixture("h264-aac-1001", path, sizeof(path));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(path, &info, &err), 0);
    assert_int_equal(info->nb_frames, 1001);
    assert_int_equal(info->frame_rate.num, 24000);
    assert_int_equal(info->frame_rate.den, 1001);
    assert_int_equal(info->width, 320);
    assert_int_equal(info->height, 180);
    assert_int_equal(info->pix_fmt, AV_PIX_FMT_YUV420P);
    assert_string_equal(info->codec_name, "h264");
    assert_false(info->vfr);
    assert_false(info->open_gop);
    assert_int_equal(info->naudio, 1);
    assert_true(info->audio_packets > 1900);
    /* keyint 48 without scene cuts: keyframes every 48 frames */
    assert_int_equal(info->nkeyframes, (1001 + 47) / 48);
    for (size_t i = 0; i < info->nkeyframes; i++)
        assert_int_equal(info->keyframes[i], (int64_t)i * 48);
    assert_int_equal(rf_media_keyframe_before(info, 0), 0);
    assert_int_equal(rf_media_keyframe_before(info, 47), 0);
    assert_int_equal(rf_media_keyframe_before(info, 48), 48);
    assert_int_equal(rf_media_keyframe_before(info, 1000), 960);
    /* PTS table strictly increasing, frame n at n*duration */
    int64_t d = info->frame_duration;
    assert_true(d > 0);
    for (int64_t i = 1; i < info->nb_frames; i++)
        assert_int_equal(info->pts[i] - info->pts[i - 1], d);
    assert_true(info->duration_s > 41.70 && info->duration_s < 41.80);
    assert_true(info->rotation == 0.0);
    rf_media_info_destroy(&info);
    assert_null(info);
    rf_media_info_destroy(&info); /* idempotent */
}

static void test_vfr(void **state)
{
    char path[512];
    rf_fixture("vfr-h264", path, sizeof(path));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(path, &info, &err), 0);
    assert_int_equal(info->nb_frames, 120);
    assert_true(info->vfr);
    rf_media_info_destroy(&info);
}

static void test_not_video(void **state)
{
    char path[512];
    rf_fixture("not-video", path, sizeof(path));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(path, &info, &err), RF_EMEDIA);
    assert_null(info);
    assert_non_null(strstr(err.msg, "not-video.mp4"));
    assert_non_null(strstr(err.msg, "not a media file"));
    assert_null(strchr(err.msg, '\n'));
}

static void test_missing(void **state)
{
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe("/nonexistent/x.mp4", &info, &err), RF_ENOENT);
    assert_null(info);
    assert_string_equal(err.msg, "'/nonexistent/x.mp4': no such file");
}

static void test_short_25fps(void **state)
{
    char path[512];
    rf_fixture("h264-aac-300", path, sizeof(path));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(path, &info, &err), 0);
    assert_int_equal(info->nb_frames, 300);
    assert_int_equal(info->frame_rate.num, 25);
    assert_int_equal(info->frame_rate.den, 1);
    rf_media_info_destroy(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_h264_1001), cmocka_unit_test(test_vfr),
        cmocka_unit_test(test_not_video), cmocka_unit_test(test_missing),
        cmocka_unit_test(test_short_25fps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
