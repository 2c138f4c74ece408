/* test_checksum.c - rf_frame_sha256 equals the stock CLI's `-f framehash -hash sha256`. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_cli_420),
        cmocka_unit_test(test_matches_cli_vfr),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
