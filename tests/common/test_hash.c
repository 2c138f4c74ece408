/* test_hash.c - SHA-256 known vectors, streaming equals one-shot, hex round trips, file hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "hash.h"

static const struct {
    const char *input;
    const char *hex;
} s_vectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    {"The quick brown fox jumps over the lazy dog",
     "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"},
};

static void test_known_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof s_vectors / sizeof s_vectors[0]; i++) {
        uint8_t out[RF_SHA256_LEN];
        char hex[RF_SHA256_HEX_LEN + 1];
        rf_sha256(s_vectors[i].input, strlen(s_vectors[i].input), out);
        assert_string_equal(rf_hex(out, sizeof out, hex), s_vectors[i].hex);

        /* Streaming, one byte at a time, must give the same digest. */
        rf_sha256_t h;
        rf_sha256_init(&h);
        for (size_t j = 0; j < strlen(s_vectors[i].input); j++)
            rf_sha256_update(&h, s_vectors[i].input + j, 1);
        uint8_t out2[RF_SHA256_LEN];
        rf_sha256_final(&h, out2);
        assert_memory_equal(out, out2, sizeof out);
    }
}

static void test_million_a(void **state)
{
    (void)state;
    char block[1000];
    memset(block, 'a', sizeof block);
    rf_sha256_t h;
    rf_sha256_init(&h);
    for (int i = 0; i < 1000; i++)
        rf_sha256_update(&h, block, sizeof block);
    uint8_t out[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256_final(&h, out);
    assert_string_equal(rf_hex(out, sizeof out, hex),
                        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    uint8_t bytes[RF_SHA256_LEN];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 37 + 11);
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_hex(bytes, sizeof bytes, hex);
    assert_int_equal(strlen(hex), RF_SHA256_HEX_LEN);
    assert_true(rf_sha256_hex_valid(hex));
    uint8_t back[RF_SHA256_LEN];
    assert_int_equal(rf_sha256_from_hex(hex, back), 0);
    assert_memory_equal(bytes, back, sizeof bytes);

    /* Uppercase parses but is not a valid peer-supplied name. */
    char upper[RF_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i <= RF_SHA256_HEX_LEN; i++)
        upper[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
    assert_int_equal(rf_sha256_from_hex(upper, back), 0);
    assert_memory_equal(bytes, back, sizeof bytes);
}

static void test_hex_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "abc",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",   /* 63 */
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555", /* 65 */
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        "../../etc/passwd",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
    };
    uint8_t out[RF_SHA256_LEN];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(rf_sha256_hex_valid(bad[i]));
        if (i < 6)
            assert_int_equal(rf_sha256_from_hex(bad[i], out), RF_EINVAL);
    }
    assert_false(rf_sha256_hex_valid(NULL));
    assert_int_equal(rf_sha256_from_hex(NULL, out), RF_EINVAL);
}

static void test_file(void **state)
{
    (void)state;
    char path[] = "/tmp/rf_test_hash_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* Over one read piece, so the loop runs more than once. */
    size_t len = 3 * 1024 * 1024 + 17;
    unsigned char *buf = malloc(len);
    assert_non_null(buf);
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + (i >> 11));
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);

    uint8_t expect[RF_SHA256_LEN], got[RF_SHA256_LEN];
    uint64_t size = 0;
    rf_sha256(buf, len, expect);
    assert_int_equal(rf_sha256_file(path, got, &size), 0);
    assert_memory_equal(expect, got, sizeof got);
    assert_int_equal(size, len);
    unlink(path);
    free(buf);
    assert_int_equal(rf_sha256_file(path, got, NULL), RF_ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_vectors), cmocka_unit_test(test_million_a),
        cmocka_unit_test(test_hex_round_trip), cmocka_unit_test(test_hex_invalid),
        cmocka_unit_test(test_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
