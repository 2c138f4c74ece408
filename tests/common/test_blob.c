/* test_blob.c - the blob store and transfer protocol: a multi-piece upload and fetch through a
 * real server over tcp loopback, unknown blobs, cancellation, timeouts, and commit dedupe. */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
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
#include <zmq.h>

#include "blob.h"
#include "codec.h"
#include "rftime.h"

typedef struct fixture {
    char root[64];          /* temp folder for everything */
    char blob_dir[PATH_MAX];
    void *ctx;
    rf_blob_server_t *server;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/rf_test_blob_XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->blob_dir, sizeof f->blob_dir, "%s/blobs", f->root);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    rf_err_t err = {0};
    assert_int_equal(rf_blob_server_new(f->ctx, "tcp://127.0.0.1:*", f->blob_dir, &f->server, &err), 0);
    assert_non_null(f->server);
    assert_non_null(strstr(rf_blob_server_endpoint(f->server), "tcp://127.0.0.1:"));
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    rf_blob_server_destroy(&f->server);
    assert_null(f->server);
    rf_blob_server_destroy(&f->server); /* idempotent */
    zmq_ctx_term(f->ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static unsigned char *s_random_file(const char *path, size_t len, unsigned seed)
{
    unsigned char *buf = malloc(len > 0 ? len : 1);
    assert_non_null(buf);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    return buf;
}

static unsigned char *s_read_file(const char *path, size_t *len)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

static int s_count_tmp_files(const fixture_t *f)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "ls -A '%s/tmp' | wc -l", f->blob_dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* Upload then fetch back, for sizes around the piece size and the credit window. */
static void test_upload_fetch_round_trip(void **state)
{
    fixture_t *f = *state;
    static const size_t sizes[] = {
        3 * 1024 * 1024 + 512 * 1024, /* 3.5 MiB: several pieces */
        0,
        1,
        RF_BLOB_PIECE,
        RF_BLOB_PIECE + 1,
        (RF_BLOB_CREDITS + 3) * (size_t)RF_BLOB_PIECE + 77, /* more pieces than credits */
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char src[PATH_MAX], dest[PATH_MAX], stored[PATH_MAX];
        snprintf(src, sizeof src, "%s/src-%zu", f->root, i);
        snprintf(dest, sizeof dest, "%s/dest-%zu", f->root, i);
        unsigned char *data = s_random_file(src, sizes[i], (unsigned)i + 1);

        char sha[RF_SHA256_HEX_LEN + 1];
        uint64_t size = 99;
        rf_err_t err = {0};
        int rc = rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, &size, 10000, NULL, NULL, &err);
        if (rc != 0)
            print_error("upload: %s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(size, sizes[i]);
        uint8_t expect[RF_SHA256_LEN];
        char expect_hex[RF_SHA256_HEX_LEN + 1];
        rf_sha256(data, sizes[i], expect);
        assert_string_equal(sha, rf_hex(expect, sizeof expect, expect_hex));

        /* Durable under its name in the store, no temp file left behind. */
        assert_int_equal(rf_blob_path(f->blob_dir, sha, stored, sizeof stored), 0);
        struct stat st;
        assert_int_equal(stat(stored, &st), 0);
        assert_int_equal((size_t)st.st_size, sizes[i]);
        assert_int_equal(s_count_tmp_files(f), 0);

        rc = rf_blob_fetch(f->ctx, rf_blob_server_endpoint(f->server), sha, size, dest, 10000, NULL, NULL, &err);
        if (rc != 0)
            print_error("fetch: %s\n", err.msg);
        assert_int_equal(rc, 0);
        size_t got_len = 0;
        unsigned char *got = s_read_file(dest, &got_len);
        assert_int_equal(got_len, sizes[i]);
        if (got_len > 0)
            assert_memory_equal(got, data, got_len);
        free(got);

        /* Uploading the same bytes again is answered from the store. */
        rc = rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, &size, 10000, NULL, NULL, &err);
        assert_int_equal(rc, 0);
        assert_int_equal(s_count_tmp_files(f), 0);
        free(data);
    }
}

static void test_fetch_errors(void **state)
{
    fixture_t *f = *state;
    char dest[PATH_MAX];
    snprintf(dest, sizeof dest, "%s/never", f->root);
    rf_err_t err = {0};
    const char *endpoint = rf_blob_server_endpoint(f->server);

    /* Unknown blob. */
    const char *unknown = "0000000000000000000000000000000000000000000000000000000000000000";
    assert_int_equal(rf_blob_fetch(f->ctx, endpoint, unknown, 10, dest, 5000, NULL, NULL, &err), RF_ENOENT);
    assert_int_equal(err.code, RF_ENOENT);
    assert_int_equal(access(dest, F_OK), -1);
    char part[PATH_MAX + 8];
    snprintf(part, sizeof part, "%s.part", dest);
    assert_int_equal(access(part, F_OK), -1);

    /* Names that are not hashes never reach the server or the file system. */
    static const char *bad[] = {"../../etc/passwd", "abc", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rf_blob_fetch(f->ctx, endpoint, bad[i], 10, dest, 1000, NULL, NULL, &err), RF_EINVAL);

    /* A known blob fetched with the wrong expected size fails verification. */
    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1];
    snprintf(src, sizeof src, "%s/small", f->root);
    free(s_random_file(src, 1000, 42));
    assert_int_equal(rf_blob_upload(f->ctx, endpoint, src, sha, NULL, 5000, NULL, NULL, &err), 0);
    assert_int_equal(rf_blob_fetch(f->ctx, endpoint, sha, 999, dest, 5000, NULL, NULL, &err), RF_EVERIFY);
    assert_int_equal(access(dest, F_OK), -1);
}

/* A server that never answers: nothing listens on this endpoint. */
static const char *s_dead_endpoint = "tcp://127.0.0.1:9";

static void *s_cancel_later(void *arg)
{
    rf_sleep_ms(150);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

static void test_cancel_and_timeout(void **state)
{
    fixture_t *f = *state;
    char dest[PATH_MAX];
    snprintf(dest, sizeof dest, "%s/cancelled", f->root);
    const char *sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    rf_err_t err = {0};

    /* Already cancelled. */
    atomic_int cancel = 1;
    assert_int_equal(rf_blob_fetch(f->ctx, s_dead_endpoint, sha, 3, dest, 10000, &cancel, NULL, &err), RF_ECANCELED);

    /* Cancelled while waiting: returns long before the 10 s timeout. */
    atomic_store(&cancel, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_cancel_later, &cancel), 0);
    uint64_t start = rf_now_ms();
    assert_int_equal(rf_blob_fetch(f->ctx, s_dead_endpoint, sha, 3, dest, 10000, &cancel, NULL, &err), RF_ECANCELED);
    uint64_t took = rf_now_ms() - start;
    pthread_join(t, NULL);
    assert_true(took >= 100 && took < 2000);

    /* Upload, cancelled the same way. */
    char src[PATH_MAX], out_sha[RF_SHA256_HEX_LEN + 1];
    snprintf(src, sizeof src, "%s/upload-src", f->root);
    free(s_random_file(src, 100, 7));
    assert_int_equal(rf_blob_upload(f->ctx, s_dead_endpoint, src, out_sha, NULL, 10000, &cancel, NULL, &err), RF_ECANCELED);

    /* No progress at all: a timeout. */
    start = rf_now_ms();
    assert_int_equal(rf_blob_fetch(f->ctx, s_dead_endpoint, sha, 3, dest, 300, NULL, NULL, &err), RF_ETIMEDOUT);
    took = rf_now_ms() - start;
    assert_true(took >= 250 && took < 2000);
    assert_int_equal(access(dest, F_OK), -1);
}

/* ---- resuming after the server goes away mid-transfer ----------------------------------------- */

#define RESUME_SIZE (24 * (size_t)RF_BLOB_PIECE + 4321) /* many credit windows */
#define RESUME_CUT (6 * (uint64_t)RF_BLOB_PIECE)        /* the server dies once this much is done */
#define RESUME_DOWN_MS (RF_BLOB_STALL_MS + 500)         /* and is back after the client stalled */

typedef struct s_cut {
    fixture_t *f;
    char endpoint[256];
    int cut;           /* the server was stopped */
    int restart;       /* bring it back RESUME_DOWN_MS later (else leave it down) */
    int amnesia;       /* bring it back at once, its partial uploads lost */
    pthread_t restarter;
} s_cut_t;

static void s_check_file(const char *path, const unsigned char *data);

static void *s_restart_later(void *arg)
{
    s_cut_t *c = arg;
    rf_sleep_ms(RESUME_DOWN_MS);
    rf_err_t err = {0};
    if (rf_blob_server_new(c->f->ctx, c->endpoint, c->f->blob_dir, &c->f->server, &err) != 0)
        print_error("restart: %s\n", err.msg);
    return NULL;
}

/* The progress hook: the first time RESUME_CUT bytes are done, the server stops (its in-flight
 * requests and replies are lost with it), like a coordinator restart. */
static void s_cut_at(void *arg, uint64_t done, uint64_t total)
{
    s_cut_t *c = arg;
    (void)total;
    if (c->cut || done < RESUME_CUT)
        return;
    c->cut = 1;
    snprintf(c->endpoint, sizeof c->endpoint, "%s", rf_blob_server_endpoint(c->f->server));
    rf_blob_server_destroy(&c->f->server);
    if (c->restart)
        assert_int_equal(pthread_create(&c->restarter, NULL, s_restart_later, c), 0);
    if (c->amnesia) {
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof cmd, "rm -rf '%s/partial'", c->f->blob_dir);
        assert_int_equal(system(cmd), 0);
        rf_err_t err = {0};
        assert_int_equal(rf_blob_server_new(c->f->ctx, c->endpoint, c->f->blob_dir, &c->f->server, &err), 0);
    }
}

/* A server that comes back without the partial upload (its disk was wiped): acks go back to 0,
 * and the uploader starts over rather than failing or trusting a wrong offset. */
static void test_upload_survives_a_server_that_forgot(void **state)
{
    fixture_t *f = *state;
    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1], stored[PATH_MAX], endpoint[256];
    snprintf(src, sizeof src, "%s/big-forgot", f->root);
    unsigned char *data = s_random_file(src, RESUME_SIZE, 15);
    s_cut_t cut = {.f = f, .amnesia = 1};
    rf_blob_xfer_t x = {.on_progress = s_cut_at, .arg = &cut};
    rf_err_t err = {0};
    snprintf(endpoint, sizeof endpoint, "%s", rf_blob_server_endpoint(f->server));
    if (rf_blob_upload(f->ctx, endpoint, src, sha, NULL, 20000, NULL, &x, &err) != 0)
        fail_msg("upload: %s", err.msg);
    assert_true(cut.cut);
    assert_true(x.bytes > RESUME_SIZE); /* what the server forgot was sent again */
    assert_int_equal(rf_blob_path(f->blob_dir, sha, stored, sizeof stored), 0);
    s_check_file(stored, data);
    free(data);
}

static void test_upload_resumes_after_server_restart(void **state)
{
    fixture_t *f = *state;
    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1], stored[PATH_MAX];
    snprintf(src, sizeof src, "%s/big-up", f->root);
    unsigned char *data = s_random_file(src, RESUME_SIZE, 11);
    s_cut_t cut = {.f = f, .restart = 1};
    rf_blob_xfer_t x = {.on_progress = s_cut_at, .arg = &cut};
    rf_err_t err = {0};
    uint64_t size = 0;
    char endpoint[256]; /* the server's own string goes with it */
    snprintf(endpoint, sizeof endpoint, "%s", rf_blob_server_endpoint(f->server));
    int rc = rf_blob_upload(f->ctx, endpoint, src, sha, &size, 10000, NULL, &x, &err);
    if (cut.cut)
        pthread_join(cut.restarter, NULL);
    if (rc != 0)
        fail_msg("upload: %s", err.msg);
    assert_true(cut.cut);
    assert_int_equal(size, RESUME_SIZE);
    /* it went on from what the restarted server found on disk, not from 0 */
    assert_true(x.reconnects >= 1);
    assert_true(x.resumed_from >= RESUME_CUT && x.resumed_from < RESUME_SIZE);
    assert_int_equal(x.bytes_after_resume, RESUME_SIZE - x.resumed_from);
    assert_true(x.bytes_after_resume < RESUME_SIZE);
    /* and the stored blob is exactly the file */
    assert_int_equal(rf_blob_path(f->blob_dir, sha, stored, sizeof stored), 0);
    size_t len = 0;
    unsigned char *got = s_read_file(stored, &len);
    assert_int_equal(len, RESUME_SIZE);
    assert_memory_equal(got, data, len);
    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256(data, RESUME_SIZE, digest);
    assert_string_equal(sha, rf_hex(digest, sizeof digest, hex));
    free(got);
    free(data);
}

/* Puts RESUME_SIZE random bytes in the store directly; returns them. */
static unsigned char *s_stored_blob(fixture_t *f, unsigned seed, char sha[RF_SHA256_HEX_LEN + 1])
{
    char tmp[PATH_MAX];
    rf_err_t err = {0};
    assert_int_equal(rf_blob_tmp_path(f->blob_dir, "big", tmp, sizeof tmp), 0);
    unsigned char *data = s_random_file(tmp, RESUME_SIZE, seed);
    assert_int_equal(rf_blob_commit(f->blob_dir, tmp, sha, NULL, &err), 0);
    return data;
}

static void s_check_file(const char *path, const unsigned char *data)
{
    size_t len = 0;
    unsigned char *got = s_read_file(path, &len);
    assert_int_equal(len, RESUME_SIZE);
    assert_memory_equal(got, data, len);
    free(got);
}

static void test_fetch_resumes_after_server_restart(void **state)
{
    fixture_t *f = *state;
    char sha[RF_SHA256_HEX_LEN + 1], dest[PATH_MAX];
    unsigned char *data = s_stored_blob(f, 12, sha);
    snprintf(dest, sizeof dest, "%s/big-down", f->root);
    s_cut_t cut = {.f = f, .restart = 1};
    rf_blob_xfer_t x = {.on_progress = s_cut_at, .arg = &cut};
    rf_err_t err = {0};
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", rf_blob_server_endpoint(f->server));
    int rc = rf_blob_fetch(f->ctx, endpoint, sha, RESUME_SIZE, dest, 10000, NULL, &x, &err);
    if (cut.cut)
        pthread_join(cut.restarter, NULL);
    if (rc != 0)
        fail_msg("fetch: %s", err.msg);
    assert_true(x.reconnects >= 1);
    assert_true(x.resumed_from >= RESUME_CUT);
    assert_int_equal(x.bytes_after_resume, RESUME_SIZE - x.resumed_from);
    assert_int_equal(x.bytes, RESUME_SIZE); /* nothing fetched twice */
    s_check_file(dest, data);
    free(data);
}

/* A fetch that gives up while the server is down keeps its verified bytes; the next fetch to the
 * same destination, once the server is back, fetches only the rest. */
static void test_fetch_resumes_a_kept_partial(void **state)
{
    fixture_t *f = *state;
    char sha[RF_SHA256_HEX_LEN + 1], dest[PATH_MAX], part[PATH_MAX + 8];
    unsigned char *data = s_stored_blob(f, 13, sha);
    snprintf(dest, sizeof dest, "%s/big-kept", f->root);
    snprintf(part, sizeof part, "%s.part", dest);
    s_cut_t cut = {.f = f, .restart = 0};
    rf_blob_xfer_t x = {.on_progress = s_cut_at, .arg = &cut};
    rf_err_t err = {0};
    char endpoint[256];
    snprintf(endpoint, sizeof endpoint, "%s", rf_blob_server_endpoint(f->server));
    int rc = rf_blob_fetch(f->ctx, endpoint, sha, RESUME_SIZE, dest, RF_BLOB_STALL_MS + 1000, NULL, &x, &err);
    assert_int_equal(rc, RF_ETIMEDOUT);
    assert_true(cut.cut);
    assert_true(x.reconnects >= 1); /* it tried a fresh connection before giving up */
    assert_int_equal(access(dest, F_OK), -1);
    struct stat st;
    assert_int_equal(stat(part, &st), 0);
    assert_true((uint64_t)st.st_size >= RESUME_CUT);

    /* The server comes back. */
    rf_err_t serr = {0};
    assert_int_equal(rf_blob_server_new(f->ctx, cut.endpoint, f->blob_dir, &f->server, &serr), 0);
    rf_blob_xfer_t again = {0};
    rc = rf_blob_fetch(f->ctx, rf_blob_server_endpoint(f->server), sha, RESUME_SIZE, dest, 10000, NULL, &again, &err);
    if (rc != 0)
        fail_msg("fetch after restart: %s", err.msg);
    assert_true(again.resumed_from >= RESUME_CUT);
    assert_int_equal(again.bytes, RESUME_SIZE - again.resumed_from);
    assert_true(again.bytes < RESUME_SIZE);
    assert_int_equal(again.reconnects, 0);
    s_check_file(dest, data);
    assert_int_equal(access(part, F_OK), -1); /* no leftovers once done */
    free(data);
}

/* A kept partial that does not belong to the blob (corrupted, or another blob's) fails the
 * SHA-256 check and is deleted: resuming can fail a transfer, never pass bad bytes. */
static void test_fetch_rejects_a_bad_partial(void **state)
{
    fixture_t *f = *state;
    char sha[RF_SHA256_HEX_LEN + 1], dest[PATH_MAX], part[PATH_MAX + 8], offset[PATH_MAX + 16];
    unsigned char *data = s_stored_blob(f, 14, sha);
    snprintf(dest, sizeof dest, "%s/big-bad", f->root);
    snprintf(part, sizeof part, "%s.part", dest);
    snprintf(offset, sizeof offset, "%s.part.offset", dest);
    free(s_random_file(part, 3 * RF_BLOB_PIECE, 99)); /* other bytes */
    FILE *o = fopen(offset, "w");
    assert_non_null(o);
    fprintf(o, "%d\n", 3 * RF_BLOB_PIECE);
    fclose(o);
    rf_err_t err = {0};
    rf_blob_xfer_t x = {0};
    const char *endpoint = rf_blob_server_endpoint(f->server);
    assert_int_equal(rf_blob_fetch(f->ctx, endpoint, sha, RESUME_SIZE, dest, 10000, NULL, &x, &err), RF_EVERIFY);
    assert_int_equal(x.resumed_from, 3 * RF_BLOB_PIECE);
    assert_int_equal(access(part, F_OK), -1);
    assert_int_equal(access(offset, F_OK), -1);
    /* the retry starts from 0 and succeeds */
    assert_int_equal(rf_blob_fetch(f->ctx, endpoint, sha, RESUME_SIZE, dest, 10000, NULL, &x, &err), 0);
    assert_int_equal(x.resumed_from, 0);
    s_check_file(dest, data);
    free(data);
}

static void test_commit_dedupe(void **state)
{
    fixture_t *f = *state;
    char tmp1[PATH_MAX], tmp2[PATH_MAX], stored[PATH_MAX];
    assert_int_equal(rf_blob_tmp_path(f->blob_dir, "chunk-3", tmp1, sizeof tmp1), 0);
    assert_int_equal(rf_blob_tmp_path(f->blob_dir, "chunk/../3", tmp2, sizeof tmp2), 0);
    assert_string_not_equal(tmp1, tmp2);
    assert_non_null(strstr(tmp1, "/tmp/chunk-3."));
    assert_null(strstr(tmp2, "/../")); /* the tag cannot climb out of tmp/ */

    unsigned char *a = s_random_file(tmp1, 5000, 3);
    free(s_random_file(tmp2, 5000, 3)); /* same bytes */
    char sha1[RF_SHA256_HEX_LEN + 1], sha2[RF_SHA256_HEX_LEN + 1];
    uint64_t size1 = 0, size2 = 0;
    rf_err_t err = {0};
    assert_int_equal(rf_blob_commit(f->blob_dir, tmp1, sha1, &size1, &err), 0);
    assert_int_equal(size1, 5000);
    assert_int_equal(access(tmp1, F_OK), -1);
    assert_int_equal(rf_blob_path(f->blob_dir, sha1, stored, sizeof stored), 0);
    struct stat st1;
    assert_int_equal(stat(stored, &st1), 0);

    assert_int_equal(rf_blob_commit(f->blob_dir, tmp2, sha2, &size2, &err), 0);
    assert_string_equal(sha1, sha2);
    assert_int_equal(size2, 5000);
    assert_int_equal(access(tmp2, F_OK), -1); /* removed, the stored copy kept */
    struct stat st2;
    assert_int_equal(stat(stored, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);

    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256(a, 5000, digest);
    assert_string_equal(sha1, rf_hex(digest, sizeof digest, hex));
    free(a);

    assert_int_equal(rf_blob_commit(f->blob_dir, tmp1, sha1, NULL, &err), RF_ENOENT);
    char small[8];
    assert_int_equal(rf_blob_path(f->blob_dir, sha1, small, sizeof small), RF_ETOOBIG);
    assert_int_equal(rf_blob_path(f->blob_dir, "../x", stored, sizeof stored), RF_EINVAL);
}

/* Shared storage: the store id (made once, read back, refused when malformed), blobs read in place
 * only when their size and hash are right, and a put that lands under the blob's hash - with the
 * source left alone and a second put of the same bytes deduplicated. */
static void test_shared_store(void **state)
{
    fixture_t *f = *state;
    rf_err_t err = {0};
    char id[RF_BLOB_STORE_ID_LEN + 1], again[RF_BLOB_STORE_ID_LEN + 1], path[PATH_MAX + 32];
    char other[PATH_MAX];
    snprintf(other, sizeof other, "%s/elsewhere", f->root);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(rf_blob_store_id(other, false, id, &err), RF_ENOENT);
    assert_int_equal(rf_blob_store_id(f->blob_dir, true, id, &err), 0);
    assert_int_equal(strlen(id), RF_BLOB_STORE_ID_LEN);
    assert_int_equal(rf_blob_store_id(f->blob_dir, false, again, &err), 0);
    assert_string_equal(id, again);
    assert_int_equal(rf_blob_store_id(f->blob_dir, true, again, &err), 0); /* kept, not remade */
    assert_string_equal(id, again);
    assert_int_equal(rf_blob_store_id(other, true, again, &err), 0);
    assert_string_not_equal(id, again); /* random per store */
    snprintf(path, sizeof path, "%s/store-id", other);
    FILE *bad = fopen(path, "w");
    fputs("not-an-id\n", bad);
    fclose(bad);
    assert_int_equal(rf_blob_store_id(other, true, again, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "not a store id"));

    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1], sha2[RF_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    snprintf(src, sizeof src, "%s/result.nut", f->root);
    unsigned char *bytes = s_random_file(src, 300000, 9);
    assert_int_equal(rf_blob_put_local(f->blob_dir, src, sha, &size, &err), 0);
    assert_int_equal(size, 300000);
    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256(bytes, 300000, digest);
    assert_string_equal(sha, rf_hex(digest, sizeof digest, hex));
    assert_int_equal(access(src, F_OK), 0); /* the worker's own copy stays */
    assert_int_equal(rf_blob_put_local(f->blob_dir, src, sha2, NULL, &err), 0);
    assert_string_equal(sha, sha2);
    assert_int_equal(s_count_tmp_files(f), 0);

    assert_int_equal(rf_blob_get_local(f->blob_dir, sha, 300000, path, sizeof path, &err), 0);
    size_t got_len = 0;
    unsigned char *got = s_read_file(path, &got_len);
    assert_int_equal(got_len, 300000);
    assert_memory_equal(got, bytes, 300000);
    free(got);
    assert_int_equal(rf_blob_get_local(f->blob_dir, sha, 299999, path, sizeof path, &err), RF_EVERIFY);
    assert_non_null(strstr(err.msg, "expected 299999"));
    /* the store's copy changed behind our back: its hash no longer matches its name */
    assert_int_equal(unlink(src), 0); /* a hard link to the stored copy: unlink first */
    assert_int_equal(rf_blob_path(f->blob_dir, sha, path, sizeof path), 0);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 1234), 1);
    close(fd);
    assert_int_equal(rf_blob_get_local(f->blob_dir, sha, 300000, path, sizeof path, &err), RF_EVERIFY);
    assert_non_null(strstr(err.msg, "does not hash to its name"));
    memset(hex, 'a', RF_SHA256_HEX_LEN);
    assert_int_equal(rf_blob_get_local(f->blob_dir, hex, 1, path, sizeof path, &err), RF_ENOENT);
    assert_int_equal(rf_blob_get_local(f->blob_dir, "../../etc/passwd", 1, path, sizeof path, &err),
                     RF_EINVAL);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_upload_fetch_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_errors, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_commit_dedupe, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_store, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_upload_resumes_after_server_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_upload_survives_a_server_that_forgot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_resumes_after_server_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_resumes_a_kept_partial, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_fetch_rejects_a_bad_partial, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
