/* test_checksum.c - rf_frame_sha256 equals the stock CLI's `-f framehash -hash sha256`. */
#include <libavformat/avformat.h>

#include "media.h"
#include "media/fixture.h"

typedef struct s_cli {
    FILE *p;
    int64_t checked;
} s_cli_t;

static void s_compare(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_cli_t *cli = arg;
    char line[512], hex[RF_SHA256_HEX_LEN + 1];
    do {
        if (!fgets(line, sizeof(line), cli->p))
            fail_msg("framehash ended before frame %lld", (long long)index);
    } while (line[0] == '#');
    line[strcspn(line, "\n")] = '\0';
    const char *last = strrchr(line, ',');
    assert_non_null(last);
    while (*++last == ' ')
        ;
    rf_hex(sha, RF_SHA256_LEN, hex);
    if (strcmp(last, hex) != 0)
        fail_msg("frame %lld: ours %s, ffmpeg %s", (long long)index, hex, last);
    cli->checked++;
}

static void s_check(const char *fixture, int64_t expect)
{
    char src[512], cmd[1200];
    rf_fixture(fixture, src, sizeof(src));
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -i '%s' -map 0:v:0 -f framehash -hash sha256 -", src);
    s_cli_t cli = {popen(cmd, "r"), 0};
    assert_non_null(cli.p);
    uint64_t frames = 0;
    uint8_t digest[RF_SHA256_LEN], again[RF_SHA256_LEN];
    rf_err_t err = {0};
    assert_int_equal(rf_media_checksum(src, &frames, digest, s_compare, &cli, &err), 0);
    assert_int_equal(pclose(cli.p), 0);
    assert_int_equal(frames, (uint64_t)expect);
    assert_int_equal(cli.checked, expect);
    assert_int_equal(rf_media_checksum(src, &frames, again, NULL, NULL, &err), 0);
    assert_memory_equal(digest, again, RF_SHA256_LEN);
}

static void test_matches_cli_420(void **state)
{
    s_check("h264-aac-300", 300);
}

static void test_matches_cli_vfr(void **state)
{
    s_check("vfr-h264", 120);
}

static void test_missing_file(void **state)
{
    uint64_t frames = 1;
    uint8_t digest[RF_SHA256_LEN];
    rf_err_t err = {0};
    assert_int_equal(rf_media_checksum("/nonexistent.mkv", &frames, digest, NULL, NULL, &err),
                     RF_ENOENT);
    assert_int_equal(frames, 0);
    assert_non_null(strstr(err.msg, "/nonexistent.mkv"));
}

/* rf_frame_hasher fed a file's packets one by one (as the worker feeds it its encoder's) gives the
 * same count, per-frame hashes and digest as rf_media_checksum of the file. */
typedef struct s_seen {
    uint8_t (*sha)[RF_SHA256_LEN];
    int64_t cap, count, mismatches;
} s_seen_t;

static void s_record(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_seen_t *s = arg;
    if (index < s->cap)
        memcpy(s->sha[index], sha, RF_SHA256_LEN);
    s->count = index + 1;
}

static void s_match(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_seen_t *s = arg;
    if (index >= s->count || memcmp(s->sha[index], sha, RF_SHA256_LEN) != 0)
        s->mismatches++;
}

static void test_hasher_on_packets_equals_file_checksum(void **state)
{
    static const struct {
        const char *fixture;
        int64_t frames;
    } cases[] = {{"h264-aac-300", 300}, {"vfr-h264", 120}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char src[512];
        rf_fixture(cases[i].fixture, src, sizeof(src));
        uint8_t(*sha)[RF_SHA256_LEN] = calloc((size_t)cases[i].frames, RF_SHA256_LEN);
        assert_non_null(sha);
        s_seen_t seen = {.sha = sha, .cap = cases[i].frames};
        uint64_t frames = 0;
        uint8_t want[RF_SHA256_LEN], got[RF_SHA256_LEN];
        rf_err_t err = {0};
        assert_int_equal(rf_media_checksum(src, &frames, want, s_record, &seen, &err), 0);
        assert_int_equal(seen.count, cases[i].frames);

        AVFormatContext *fmt = NULL;
        assert_int_equal(avformat_open_input(&fmt, src, NULL, NULL), 0);
        assert_true(avformat_find_stream_info(fmt, NULL) >= 0);
        int v = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        assert_true(v >= 0);
        rf_frame_hasher_t *h = NULL;
        s_seen_t check = {.sha = sha, .cap = cases[i].frames, .count = cases[i].frames};
        assert_int_equal(rf_frame_hasher_new(fmt->streams[v]->codecpar, fmt->streams[v]->time_base,
                                             s_match, &check, &h, &err), 0);
        AVPacket *pkt = av_packet_alloc();
        while (av_read_frame(fmt, pkt) >= 0) {
            if (pkt->stream_index == v && rf_frame_hasher_send(h, pkt, &err) != 0)
                fail_msg("%s: %s", cases[i].fixture, err.msg);
            av_packet_unref(pkt);
        }
        assert_int_equal(rf_frame_hasher_send(h, NULL, &err), 0);
        assert_int_equal(rf_frame_hasher_frames(h), (uint64_t)cases[i].frames);
        assert_int_equal(check.mismatches, 0);
        rf_frame_hasher_digest(h, got);
        assert_memory_equal(got, want, RF_SHA256_LEN);
        /* the stream has ended: more packets are a caller bug, reported, not decoded */
        assert_int_equal(rf_frame_hasher_send(h, pkt, &err), RF_EINVAL);
        av_packet_free(&pkt);
        rf_frame_hasher_destroy(&h);
        assert_null(h);
        avformat_close_input(&fmt);
        free(sha);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_cli_420),
        cmocka_unit_test(test_matches_cli_vfr),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_hasher_on_packets_equals_file_checksum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
