/* test_stitch.c - the end-to-end property the farm rests on: a source split into chunks at
 * keyframes, each chunk decoded and re-encoded on its own, then stitched, gives back exactly the
 * source's frames (lossless: bit-identical pixels) with the source's audio and timing. */
#include "media.h"
#include "media/worker_sim.h"

typedef struct s_hashes {
    int64_t n;
    uint8_t (*sha)[RF_SHA256_LEN];
} s_hashes_t;

static void s_collect(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_hashes_t *h = arg;
    if (index < h->n)
        memcpy(h->sha[index], sha, RF_SHA256_LEN);
}

static void s_checksums(const char *path, int64_t n, s_hashes_t *h)
{
    h->n = n;
    h->sha = calloc((size_t)n, RF_SHA256_LEN);
    assert_non_null(h->sha);
    uint64_t frames = 0;
    uint8_t digest[RF_SHA256_LEN];
    rf_err_t err = {0};
    if (rf_media_checksum(path, &frames, digest, s_collect, h, &err) != 0)
        fail_msg("checksum: %s", err.msg);
    assert_int_equal(frames, (uint64_t)n);
}

/* Three uneven chunks, boundaries on source keyframes (every 48 frames). */
static const int64_t s_bounds[] = {0, 336, 480, 1001};
#define NCHUNKS 3

static void s_stitch(const char *codec, const char *ext, rf_media_info_t *info, char *dir,
                     char *out, size_t out_size)
{
    char paths[NCHUNKS][1100];
    rf_stitch_chunk_t chunks[NCHUNKS];
    for (int i = 0; i < NCHUNKS; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/chunk-%d.nut", dir, i);
        rf_test_encode_range(info, s_bounds[i], s_bounds[i + 1], codec, dir, paths[i]);
        chunks[i] = (rf_stitch_chunk_t){paths[i], s_bounds[i], s_bounds[i + 1] - s_bounds[i]};
    }
    snprintf(out, out_size, "%s/out.%s", dir, ext);
    rf_err_t err = {0};
    if (rf_media_stitch(info, chunks, NCHUNKS, true, out, &err) != 0)
        fail_msg("stitch: %s", err.msg);
}

static void test_ffv1_mkv_bit_exact(void **state)
{
    char src[512], dir[512], out[1200];
    rf_fixture("h264-aac-1001", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    s_stitch("ffv1", "mkv", info, dir, out, sizeof(out));

    rf_verify_report_t rep;
    if (rf_media_verify_output(info, out, true, &rep, &err) != 0)
        fail_msg("verify: %s", err.msg);
    assert_int_equal(rep.frames, 1001);
    assert_true(rep.audio_identical);
    assert_int_equal(rep.audio_packets, info->audio_packets);
    assert_true(rep.timestamps_increasing);

    s_hashes_t a, b;
    s_checksums(src, 1001, &a);
    s_checksums(out, 1001, &b);
    for (int64_t i = 0; i < 1001; i++)
        if (memcmp(a.sha[i], b.sha[i], RF_SHA256_LEN) != 0)
            fail_msg("frame %lld differs from the source", (long long)i);
    free(a.sha);
    free(b.sha);

    /* The output's own index: same frame count and timing as the source. */
    rf_media_info_t *o = NULL;
    assert_int_equal(rf_media_probe(out, &o, &err), 0);
    assert_int_equal(o->nb_frames, 1001);
    assert_true(o->duration_s > info->duration_s - 0.021 && o->duration_s < info->duration_s + 0.021);
    /* Matroska stores milliseconds: each frame within half a millisecond of the source's time */
    for (int64_t i = 0; i < 1001; i++) {
        double want = (double)info->pts[i] * av_q2d(info->time_base);
        double got = (double)o->pts[i] * av_q2d(o->time_base);
        if (got - want > 0.00051 || want - got > 0.00051)
            fail_msg("frame %lld at %.4f s, source %.4f s", (long long)i, got, want);
    }
    rf_media_info_destroy(&o);
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

static void test_x264_mp4(void **state)
{
    char src[512], dir[512], out[1200];
    rf_fixture("h264-aac-1001", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    s_stitch("libx264", "mp4", info, dir, out, sizeof(out));

    rf_verify_report_t rep;
    if (rf_media_verify_output(info, out, true, &rep, &err) != 0)
        fail_msg("verify: %s", err.msg);
    assert_int_equal(rep.frames, 1001);
    double frame_s = 1001.0 / 24000.0;
    assert_true(rep.duration_s > info->duration_s - frame_s / 2);
    assert_true(rep.duration_s < info->duration_s + frame_s / 2);

    /* The stock tools agree: decoded frame count and the edit-listed start. */
    char cmd[1400], line[256];
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
             "stream=nb_read_frames -of csv=p=0 '%s'", out);
    assert_int_equal(rf_shell_line(cmd, line, sizeof(line)), 0);
    assert_string_equal(line, "1001");
    snprintf(cmd, sizeof(cmd),
             "ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 "
             "-read_intervals '%%+#1' '%s'", out);
    assert_int_equal(rf_shell_line(cmd, line, sizeof(line)), 0);
    assert_true(strncmp(line, "0.000000", 8) == 0); /* side data may add a column */

    uint64_t frames = 0;
    uint8_t digest[RF_SHA256_LEN];
    assert_int_equal(rf_media_checksum(out, &frames, digest, NULL, NULL, &err), 0);
    assert_int_equal(frames, 1001);
    rf_media_info_destroy(&info);
    if (!getenv("RF_TEST_KEEP"))
        rf_tmpdir_remove(dir);
}

/* VFR: the output carries the source's own timestamps, frame by frame; chunk boundaries need
 * not be keyframes (the worker pre-rolls from the slice's keyframe). */
static void test_vfr_keeps_source_timestamps(void **state)
{
    char src[512], dir[512], p0[1100], p1[1100], out[1100];
    rf_fixture("vfr-h264", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL, *o = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    assert_true(info->vfr);
    snprintf(p0, sizeof(p0), "%s/c0.nut", dir);
    snprintf(p1, sizeof(p1), "%s/c1.nut", dir);
    snprintf(out, sizeof(out), "%s/out.mkv", dir);
    rf_test_encode_range(info, 0, 53, "ffv1", dir, p0);
    rf_test_encode_range(info, 53, 120, "ffv1", dir, p1);
    rf_stitch_chunk_t c[2] = {{p0, 0, 53}, {p1, 53, 67}};
    if (rf_media_stitch(info, c, 2, true, out, &err) != 0)
        fail_msg("stitch: %s", err.msg);
    assert_int_equal(rf_media_probe(out, &o, &err), 0);
    assert_int_equal(o->nb_frames, 120);
    assert_true(o->vfr);
    for (int64_t i = 0; i < 120; i++)
        assert_int_equal(av_rescale_q(o->pts[i], o->time_base, info->time_base), info->pts[i]);
    s_hashes_t a, b;
    s_checksums(src, 120, &a);
    s_checksums(out, 120, &b);
    assert_memory_equal(a.sha, b.sha, 120 * RF_SHA256_LEN);
    free(a.sha);
    free(b.sha);
    rf_verify_report_t rep;
    if (rf_media_verify_output(info, out, true, &rep, &err) != 0)
        fail_msg("verify: %s", err.msg);
    rf_media_info_destroy(&o);
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

static void test_rejects_bad_chunks(void **state)
{
    char src[512], dir[512], p0[1100], p1[1100], out[1100];
    rf_fixture("h264-aac-300", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    snprintf(p0, sizeof(p0), "%s/c0.nut", dir);
    snprintf(p1, sizeof(p1), "%s/c1.nut", dir);
    snprintf(out, sizeof(out), "%s/out.mkv", dir);
    rf_test_encode_range(info, 0, 144, "ffv1", dir, p0);
    rf_test_encode_range(info, 144, 300, "libx264", dir, p1);

    /* a chunk from another codec */
    rf_stitch_chunk_t c[2] = {{p0, 0, 144}, {p1, 144, 156}};
    assert_int_equal(rf_media_stitch(info, c, 2, false, out, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "chunk 1"));
    assert_non_null(strstr(err.msg, p1));
    assert_int_equal(access(out, F_OK), -1); /* nothing left behind */

    /* wrong frame count */
    rf_stitch_chunk_t d[2] = {{p0, 0, 143}, {p0, 143, 157}};
    assert_int_not_equal(rf_media_stitch(info, d, 2, false, out, &err), 0);
    assert_non_null(strstr(err.msg, "chunk 0"));

    /* not covering the source */
    rf_stitch_chunk_t e[1] = {{p0, 0, 144}};
    assert_int_equal(rf_media_stitch(info, e, 1, false, out, &err), RF_EINVAL);
    assert_int_equal(access(out, F_OK), -1);
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

int main(void)
{
    av_log_set_level(AV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffv1_mkv_bit_exact),
        cmocka_unit_test(test_x264_mp4),
        cmocka_unit_test(test_vfr_keeps_source_timestamps),
        cmocka_unit_test(test_rejects_bad_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
