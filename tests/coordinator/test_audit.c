/* test_audit.c - the audit log (coordinator/audit.h): a written log verifies, with its
 * checkpoints; editing, deleting or reordering a record, or a checkpoint from another key, fails
 * with that record's number; a reopened log continues the chain and a broken one is not extended;
 * secret key files are made 0600 and refused when others can read them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"

static char s_dir[64];

static void s_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", s_dir, name);
}

/* Reads the log's lines into lines[] (max 512); returns the count. */
static int s_read_lines(const char *path, char **lines)
{
    FILE *f = fopen(path, "r");
    char buf[40000];
    int n = 0;
    assert_non_null(f);
    while (n < 512 && fgets(buf, sizeof(buf), f))
        lines[n++] = strdup(buf);
    fclose(f);
    return n;
}

static void s_write_lines(const char *path, char **lines, int n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++)
        fputs(lines[i], f);
    fclose(f);
}

static void s_expect(const char *path, const uint8_t *pk, const char *msg, uint64_t bad)
{
    rf_audit_report_t rep;
    rf_err_t err = {0};
    int rc = rf_audit_verify_file(path, pk, &rep, &err);
    assert_int_equal(rc, RF_EVERIFY);
    if (!strstr(err.msg, msg))
        print_error("expected '%s' in '%s'\n", msg, err.msg);
    assert_non_null(strstr(err.msg, msg));
    assert_int_equal(rep.bad_record, bad);
}

static void test_chain(void **state)
{
    rf_audit_t *a = NULL;
    rf_err_t err = {0};
    char log[128], pub[128], key[128], bad[128], *lines[512];
    rf_audit_report_t rep;
    uint8_t pk[32];
    struct stat st;

    (void)state;
    assert_int_equal(rf_audit_open(s_dir, &a, &err), 0);
    for (int i = 1; i <= 150; i++) {
        char detail[64];
        snprintf(detail, sizeof(detail), "chunk %d\twith a tab\nand a newline \\", i);
        assert_int_equal(rf_audit_append(a, i % 2 ? "render" : "submit", "w1", "j-1", detail, &err), 0);
    }
    rf_audit_close(&a);
    assert_null(a);
    s_path(log, sizeof(log), "audit.log");
    s_path(pub, sizeof(pub), "audit.pub");
    s_path(key, sizeof(key), "audit.key");
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);

    /* 150 records + a checkpoint after every 64 (records 65 and 130) + one at close = 153 */
    FILE *f = fopen(pub, "r");
    char hex[80] = "";
    assert_non_null(fgets(hex, sizeof(hex), f));
    fclose(f);
    assert_int_equal(sodium_hex2bin(pk, 32, hex, 64, NULL, NULL, NULL), 0);
    assert_int_equal(rf_audit_verify_file(log, pk, &rep, &err), 0);
    assert_int_equal(rep.records, 153);
    assert_int_equal(rep.checkpoints, 3);
    assert_int_equal(rep.unsigned_tail, 0);
    assert_int_equal(rep.bad_record, 0);

    int n = s_read_lines(log, lines);
    assert_int_equal(n, 153);
    assert_non_null(strstr(lines[64], "\tcheckpoint\t"));  /* record 65 */
    assert_non_null(strstr(lines[0], "chunk 1\\twith a tab\\nand a newline \\\\"));
    s_path(bad, sizeof(bad), "bad.log");

    /* edit record 10: one character of its detail */
    char *saved = lines[9];
    lines[9] = strdup(saved);
    *strstr(lines[9], "chunk 10") = 'C';
    s_write_lines(bad, lines, n);
    s_expect(bad, pk, "record 10: hash mismatch", 10);
    free(lines[9]);
    lines[9] = saved;

    /* delete record 10 */
    s_write_lines(bad, lines, 9);
    FILE *g = fopen(bad, "a");
    for (int i = 10; i < n; i++)
        fputs(lines[i], g);
    fclose(g);
    s_expect(bad, pk, "record 10: sequence number 11, expected 10", 10);

    /* swap records 20 and 21 */
    char *t = lines[19];
    lines[19] = lines[20];
    lines[20] = t;
    s_write_lines(bad, lines, n);
    s_expect(bad, pk, "record 20: sequence number 21, expected 20", 20);
    lines[20] = lines[19];
    lines[19] = t;

    /* a record whose stored hash was changed */
    {
        char *l = strdup(lines[29]);
        l[strlen(l) - 3] = l[strlen(l) - 3] == 'a' ? 'b' : 'a'; /* a different hash */
        char *keep = lines[29];
        lines[29] = l;
        s_write_lines(bad, lines, n);
        s_expect(bad, pk, "record 30: hash mismatch", 30);
        lines[29] = keep;
        free(l);
    }

    /* the right chain checked against another key */
    uint8_t other[32];
    memcpy(other, pk, 32);
    other[0] ^= 1;
    s_expect(log, other, "record 65: checkpoint signed by another key", 65);

    /* a cut-off last line */
    s_write_lines(bad, lines, n);
    g = fopen(bad, "a");
    fputs("154\t1\tsubmit", g);
    fclose(g);
    s_expect(bad, pk, "record 154: incomplete line", 154);

    /* reopening continues the chain; a tampered log is not extended */
    assert_int_equal(rf_audit_open(s_dir, &a, &err), 0);
    assert_int_equal(rf_audit_append(a, "fetch", "client", "j-1", "output", &err), 0);
    rf_audit_close(&a);
    assert_int_equal(rf_audit_verify_file(log, pk, &rep, &err), 0);
    assert_int_equal(rep.records, 155); /* + the record + the closing checkpoint */
    lines[5][strlen(lines[5]) - 10] ^= 1;
    s_write_lines(log, lines, n);
    assert_int_equal(rf_audit_open(s_dir, &a, &err), RF_EVERIFY);
    assert_non_null(strstr(err.msg, "refusing to extend it"));
    assert_null(a);
    for (int i = 0; i < n; i++)
        free(lines[i]);
    unlink(bad);
    unlink(log);
    unlink(pub);
    unlink(key);
}

static void test_key_file(void **state)
{
    char path[128];
    uint8_t k1[32], k2[32];
    rf_err_t err = {0};
    struct stat st;

    (void)state;
    s_path(path, sizeof(path), "watermark.key");
    assert_int_equal(rf_secret_key_file(path, k1, sizeof(k1), &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rf_secret_key_file(path, k2, sizeof(k2), &err), 0);
    assert_memory_equal(k1, k2, 32); /* read back, not made again */
    chmod(path, 0644);
    assert_int_equal(rf_secret_key_file(path, k2, sizeof(k2), &err), RF_EPERM);
    assert_non_null(strstr(err.msg, "watermark.key"));
    chmod(path, 0600);
    assert_int_equal(rf_secret_key_file(path, k2, 16, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "32 bytes, expected 16"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),
        cmocka_unit_test(test_key_file),
    };
    snprintf(s_dir, sizeof(s_dir), "/tmp/rf-audit-XXXXXX");
    if (!mkdtemp(s_dir) || sodium_init() < 0)
        return 1;
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(s_dir);
    return rc;
}
