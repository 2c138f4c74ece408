/* test_encode.c - the chunk encoder: lossless round trip, identical extradata across instances,
 * a keyframe first, clear errors for formats and codecs it cannot take. */
#include <libavformat/avformat.h>

#include "media.h"
#include "media/worker_sim.h"

/* Reads path's video stream: first packet's key flag, packet count, extradata copy. */
static void s_inspect(const char *path, bool *first_key, int64_t *packets, uint8_t **extra,
                      int *extra_size, AVRational *tb)
{
    AVFormatContext *fmt = NULL;
    assert_int_equal(avformat_open_input(&fmt, path, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
    AVCodecParameters *par = fmt->streams[0]->codecpar;
    *extra_size = par->extradata_size;
    *extra = malloc((size_t)par->extradata_size + 1);
    memcpy(*extra, par->extradata, (size_t)par->extradata_size);
    *tb = fmt->streams[0]->time_base;
    AVPacket *pkt = av_packet_alloc();
    *packets = 0;
    while (av_read_frame(fmt, pkt) >= 0) {
        if (*packets == 0)
            *first_key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        (*packets)++;
        av_packet_unref(pkt);
    }
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
}

static void s_round_trip(const char *codec, bool lossless)
{
    char src[512], dir[512], a[1100], b[1100];
    rf_fixture("h264-aac-300", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(src, &info, &err), 0);
    snprintf(a, sizeof(a), "%s/a.nut", dir);
    snprintf(b, sizeof(b), "%s/b.nut", dir);
    /* two chunks, two encoder instances, different content */
    rf_test_encode_range(info, 0, 60, codec, dir, a);
    rf_test_encode_range(info, 100, 137, codec, dir, b);

    bool ka = false, kb = false;
    int64_t na = 0, nb = 0;
    uint8_t *ea = NULL, *eb = NULL;
    int sa = 0, sb = 0;
    AVRational ta, tbb;
    s_inspect(a, &ka, &na, &ea, &sa, &ta);
    s_inspect(b, &kb, &nb, &eb, &sb, &tbb);
    assert_true(ka && kb);
    assert_int_equal(na, 60);
    assert_int_equal(nb, 37);
    assert_int_equal(sa, sb);
    assert_memory_equal(ea, eb, (size_t)sa);
    if (strcmp(codec, "libx264") == 0)
        assert_true(sa > 0); /* global header: SPS/PPS in extradata */
    free(ea);
    free(eb);

    if (lossless) {
        /* decoded chunk frames are the source's frames 100..136 */
        uint8_t want[37][RF_SHA256_LEN];
        rf_decoder_t *d = NULL;
        AVFrame *f = av_frame_alloc();
        assert_int_equal(rf_decoder_open(src, &d, &err), 0);
        int64_t i = 0;
        while (rf_decoder_next(d, f, &err) == 1) {
            if (i >= 100 && i < 137)
                rf_frame_sha256(f, want[i - 100]);
            i++;
        }
        rf_decoder_destroy(&d);
        assert_int_equal(rf_decoder_open(b, &d, &err), 0);
        i = 0;
        while (rf_decoder_next(d, f, &err) == 1) {
            uint8_t got[RF_SHA256_LEN];
            rf_frame_sha256(f, got);
            assert_true(i < 37);
            assert_memory_equal(got, want[i], RF_SHA256_LEN);
            i++;
        }
        assert_int_equal(i, 37);
        rf_decoder_destroy(&d);
        av_frame_free(&f);
    }
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

static void test_ffv1(void **state)
{
    s_round_trip("ffv1", true);
}

static void test_x264(void **state)
{
    s_round_trip("libx264", false);
}

/* Encodes 4 synthetic frames with `threads` encoder threads; returns the extradata (malloc'd). */
static uint8_t *s_extradata_with_threads(const char *codec, int threads, const char *path, int *size)
{
    rf_encode_params_t p = {.codec = codec, .crf = -1, .pix_fmt = AV_PIX_FMT_YUV420P, .width = 128,
                            .height = 96, .frame_rate = {25, 1}, .sample_aspect_ratio = {1, 1},
                            .threads = threads};
    rf_encoder_t *enc = NULL;
    rf_err_t err = {0};
    if (rf_encoder_open(&p, path, &enc, &err))
        fail_msg("%s: %s", codec, err.msg);
    for (int i = 0; i < 4; i++) {
        AVFrame *f = av_frame_alloc();
        f->format = AV_PIX_FMT_YUV420P;
        f->width = 128;
        f->height = 96;
        assert_int_equal(av_frame_get_buffer(f, 0), 0);
        for (int pl = 0; pl < 3; pl++)
            memset(f->data[pl], 40 * i + 20 * pl, (size_t)f->linesize[pl] * (pl ? 48 : 96));
        f->pts = i;
        assert_int_equal(rf_encoder_write(enc, f, &err), 0);
        av_frame_free(&f);
    }
    assert_int_equal(rf_encoder_finish(enc, &err), 0);
    rf_encoder_destroy(&enc);
    bool key = false;
    int64_t packets = 0;
    uint8_t *extra = NULL;
    AVRational tb;
    s_inspect(path, &key, &packets, &extra, size, &tb);
    assert_int_equal(packets, 4);
    return extra;
}

/* Workers differ in core counts: the headers every chunk must share may not depend on the
 * encoder's thread count (x265 writes its thread and pool counts into an SEI unless told not to). */
static void test_headers_independent_of_threads(void **state)
{
    (void)state;
    const char *codecs[] = {"libx264", "libx265", "ffv1"};
    char dir[512], a[700], b[700];
    rf_tmpdir(dir, sizeof(dir));
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++) {
        rf_err_t err = {0};
        if (rf_encoder_probe(codecs[i], &err) != 0)
            continue; /* not in this libavcodec */
        snprintf(a, sizeof(a), "%s/%s-1.nut", dir, codecs[i]);
        snprintf(b, sizeof(b), "%s/%s-4.nut", dir, codecs[i]);
        int sa = 0, sb = 0;
        uint8_t *ea = s_extradata_with_threads(codecs[i], 1, a, &sa);
        uint8_t *eb = s_extradata_with_threads(codecs[i], 4, b, &sb);
        if (sa != sb || memcmp(ea, eb, (size_t)sa) != 0)
            fail_msg("%s: extradata differs between 1 and 4 threads (%d and %d bytes)", codecs[i], sa, sb);
        free(ea);
        free(eb);
    }
    rf_tmpdir_remove(dir);
}

static void test_errors(void **state)
{
    rf_err_t err = {0};
    rf_encoder_t *e = NULL;
    rf_encode_params_t p = {.codec = "no-such-codec", .crf = -1, .pix_fmt = AV_PIX_FMT_YUV420P,
                            .width = 64, .height = 64, .frame_rate = {25, 1}};
    assert_int_equal(rf_encoder_open(&p, "/tmp/x.nut", &e, &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "no-such-codec"));
    p.codec = "libx264";
    p.pix_fmt = AV_PIX_FMT_RGB48LE;
    assert_int_equal(rf_encoder_open(&p, "/tmp/x.nut", &e, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "libx264"));
    assert_non_null(strstr(err.msg, "rgb48le"));
    assert_null(e);

    assert_int_equal(rf_encoder_probe("ffv1", &err), 0);
    assert_int_equal(rf_encoder_probe("libx264", &err), 0);
    assert_int_equal(rf_encoder_probe("no-such-codec", &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "no such encoder"));
}

/* ---- libx264's reconstructed frames (rf_encoder_on_recon) ---- */

typedef struct s_list {
    uint8_t sha[400][RF_SHA256_LEN];
    int64_t n;
} s_list_t;

static void s_collect(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_list_t *l = arg;
    assert_int_equal(index, l->n);
    assert_true(l->n < 400);
    memcpy(l->sha[l->n++], sha, RF_SHA256_LEN);
}

static int s_to_hasher(void *arg, const AVFrame *frame, rf_err_t *err)
{
    return rf_frame_hasher_send_frame(arg, frame, err);
}

/* Encodes n frames of a moving, textured w x h picture with the given x264 settings, hashing the
 * encoder's reconstructions; then decodes the file with FFmpeg and wants the same per-frame
 * SHA-256s and digest (rf_media_checksum: what the coordinator checks). */
static void s_recon_matches_decode(int w, int h, int n, int gop, const char *preset, int crf,
                                   const char *x264_params)
{
    char dir[512], path[1100];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/recon.nut", dir);
    const char *keys[] = {"x264-params"}, *values[] = {x264_params};
    rf_encode_params_t p = {.codec = "libx264", .crf = crf, .preset = preset,
                            .pix_fmt = AV_PIX_FMT_YUV420P, .width = w, .height = h,
                            .frame_rate = {25, 1}, .sample_aspect_ratio = {1, 1}, .gop = gop,
                            .opt_keys = keys, .opt_values = values, .nopts = x264_params ? 1 : 0};
    rf_encoder_t *enc = NULL;
    rf_frame_hasher_t *hasher = NULL;
    rf_err_t err = {0};
    static s_list_t mine, theirs;
    memset(&mine, 0, sizeof(mine));
    memset(&theirs, 0, sizeof(theirs));
    if (rf_encoder_open(&p, path, &enc, &err))
        fail_msg("open: %s", err.msg);
    assert_int_equal(rf_frame_hasher_new_frames(s_collect, &mine, &hasher, &err), 0);
    assert_int_equal(rf_encoder_on_recon(enc, s_to_hasher, hasher), 0);
    uint32_t seed = 12345;
    for (int i = 0; i < n; i++) {
        AVFrame *f = av_frame_alloc();
        f->format = AV_PIX_FMT_YUV420P;
        f->width = w;
        f->height = h;
        assert_int_equal(av_frame_get_buffer(f, 0), 0);
        for (int pl = 0; pl < 3; pl++) {
            int pw = pl ? (w + 1) / 2 : w, ph = pl ? (h + 1) / 2 : h;
            for (int y = 0; y < ph; y++)
                for (int x = 0; x < pw; x++) {
                    seed = seed * 1664525u + 1013904223u; /* grain, so B-frames have residuals */
                    int v = ((x + 3 * i) ^ (y + 2 * i)) * (pl + 1) + (int)(seed >> 28);
                    f->data[pl][y * f->linesize[pl] + x] = (uint8_t)(v & 0xff);
                }
        }
        f->pts = i;
        if (rf_encoder_write(enc, f, &err))
            fail_msg("write %d: %s", i, err.msg);
        av_frame_free(&f);
    }
    if (rf_encoder_finish(enc, &err))
        fail_msg("finish: %s", err.msg);
    assert_int_equal(rf_frame_hasher_send(hasher, NULL, &err), 0);
    uint8_t d_mine[RF_SHA256_LEN], d_theirs[RF_SHA256_LEN];
    rf_frame_hasher_digest(hasher, d_mine);
    assert_int_equal(rf_frame_hasher_frames(hasher), n);
    rf_frame_hasher_destroy(&hasher);
    rf_encoder_destroy(&enc);

    uint64_t frames = 0;
    if (rf_media_checksum(path, &frames, d_theirs, s_collect, &theirs, &err))
        fail_msg("checksum: %s", err.msg);
    assert_int_equal(frames, n);
    assert_int_equal(mine.n, n);
    for (int i = 0; i < n; i++)
        if (memcmp(mine.sha[i], theirs.sha[i], RF_SHA256_LEN) != 0)
            fail_msg("%dx%d %s: frame %d: reconstruction differs from the decoded frame", w, h,
                     preset, i);
    assert_memory_equal(d_mine, d_theirs, RF_SHA256_LEN);
    rf_tmpdir_remove(dir);
}

static void test_x264_recon(void **state)
{
    (void)state;
    rf_encoder_t *enc = NULL;
    rf_err_t err = {0};
    rf_encode_params_t p = {.codec = "libx264", .crf = -1, .pix_fmt = AV_PIX_FMT_YUV420P,
                            .width = 64, .height = 64, .frame_rate = {25, 1}};
    char dir[512], path[1100];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/probe.nut", dir);
    assert_int_equal(rf_encoder_open(&p, path, &enc, &err), 0);
    int direct = rf_encoder_on_recon(enc, s_to_hasher, NULL);
    rf_encoder_destroy(&enc);
    rf_tmpdir_remove(dir);
    if (direct == RF_EUNAVAIL)
        skip(); /* built without libx264's headers: the FFmpeg path, tested above */
    assert_int_equal(direct, 0);
    /* B-pyramid reordering, several GOPs, a size that is no multiple of 16 (cropped SPS) */
    s_recon_matches_decode(202, 118, 75, 24, "veryfast", 30, NULL);
    /* slower analysis: more references, weighted prediction, CABAC, trellis */
    s_recon_matches_decode(160, 96, 40, 0, "medium", 20, NULL);
    /* no deblocking and intra-only: other paths through reconstruction */
    s_recon_matches_decode(96, 64, 20, 1, "ultrafast", 35, "no-deblock=1");
}

/* Options the direct path does not map go through FFmpeg's wrapper, which has no reconstruction:
 * the caller is told so and decodes instead. */
static void test_x264_recon_unavailable(void **state)
{
    (void)state;
    char dir[512], path[1100];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/ffmpeg.nut", dir);
    const char *keys[] = {"a53cc"}, *values[] = {"0"};
    rf_encode_params_t p = {.codec = "libx264", .crf = -1, .pix_fmt = AV_PIX_FMT_YUV420P,
                            .width = 64, .height = 64, .frame_rate = {25, 1},
                            .opt_keys = keys, .opt_values = values, .nopts = 1};
    rf_encoder_t *enc = NULL;
    rf_err_t err = {0};
    if (rf_encoder_open(&p, path, &enc, &err))
        fail_msg("open: %s", err.msg);
    assert_int_equal(rf_encoder_on_recon(enc, s_to_hasher, NULL), RF_EUNAVAIL);
    rf_encoder_destroy(&enc);
    rf_tmpdir_remove(dir);
}

int main(void)
{
    av_log_set_level(AV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffv1),
        cmocka_unit_test(test_x264),
        cmocka_unit_test(test_x264_recon),
        cmocka_unit_test(test_x264_recon_unavailable),
        cmocka_unit_test(test_headers_independent_of_threads),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
