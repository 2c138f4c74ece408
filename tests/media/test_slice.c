/* test_slice.c - a slice decodes to exactly the source's frames of its range, pixel for pixel,
 * with the source's timestamps, whether or not the range starts on a keyframe. */
#include "media.h"
#include "media/fixture.h"

#define MAXF 1001

static uint8_t s_src[MAXF][RF_SHA256_LEN];

static void s_collect(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    if (index < MAXF)
        memcpy(s_src[index], sha, RF_SHA256_LEN);
}

typedef struct s_case {
    int64_t from, to;
} s_case_t;

static const s_case_t s_cases[] = {
    {0, 48},    /* first GOP exactly */
    {100, 130}, /* inside a GOP: needs pre-roll from frame 96 */
    {47, 49},   /* across a keyframe */
    {950, 1001},/* the tail, odd length */
    {1000, 1001},
};

static void test_slices_decode_to_source_frames(void **state)
{
    char src[512], dir[512], out[1100];
    rf_fixture("h264-aac-1001", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    uint64_t n = 0;
    uint8_t digest[RF_SHA256_LEN];
    assert_int_equal(rf_media_checksum(src, &n, digest, s_collect, NULL, &err), 0);
    assert_int_equal(n, 1001);

    AVFrame *f = av_frame_alloc();
    for (size_t c = 0; c < sizeof(s_cases) / sizeof(s_cases[0]); c++) {
        int64_t from = s_cases[c].from, to = s_cases[c].to;
        snprintf(out, sizeof(out), "%s/slice-%zu.nut", dir, c);
        if (rf_media_slice(info, from, to, out, &err) != 0)
            fail_msg("slice [%lld, %lld): %s", (long long)from, (long long)to, err.msg);
        rf_decoder_t *d = NULL;
        assert_int_equal(rf_decoder_open(out, &d, &err), 0);
        AVRational tb = rf_decoder_time_base(d);
        int64_t got = 0, last = -1;
        int ret;
        while ((ret = rf_decoder_next(d, f, &err)) == 1) {
            /* every decoded frame, pre-roll included, is the source frame at its PTS; B-frames
             * after the range's last needed packet are legitimately absent */
            int64_t pts = av_rescale_q(f->pts, tb, info->time_base);
            int64_t idx = -1;
            for (int64_t k = 0; k < info->nb_frames; k++)
                if (info->pts[k] == pts)
                    idx = k;
            assert_true(idx > last);
            assert_true(idx >= rf_media_keyframe_before(info, from));
            last = idx;
            uint8_t sha[RF_SHA256_LEN];
            rf_frame_sha256(f, sha);
            if (memcmp(sha, s_src[idx], RF_SHA256_LEN) != 0)
                fail_msg("case %zu: frame %lld differs", c, (long long)idx);
            if (idx >= from && idx < to)
                got++;
        }
        assert_int_equal(ret, 0);
        assert_int_equal(got, to - from);
        rf_decoder_destroy(&d);
    }
    av_frame_free(&f);

    assert_int_equal(rf_media_slice(info, 10, 5, out, &err), RF_EINVAL);
    assert_int_equal(rf_media_slice(info, 0, 1002, out, &err), RF_EINVAL);
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slices_decode_to_source_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
