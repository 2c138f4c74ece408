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

int main(void)
{
    av_log_set_level(AV_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffv1),
        cmocka_unit_test(test_x264),
        cmocka_unit_test(test_headers_independent_of_threads),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
