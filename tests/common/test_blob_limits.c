/* test_blob_limits.c - the blob server's configurable limits (rf_blob_server_opts_t,
 * docs/SECURITY.md): an upload over max_blob is refused with a message naming limits.blob_bytes;
 * with max_uploads 1 and one upload left half-done by a raw peer, a second upload is refused naming
 * limits.blob_uploads, and goes through once the first finishes; refused and malformed input is
 * counted (rf_blob_server_stats). */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "blob.h"
#include "codec.h"
#include "hash.h"

typedef struct fixture {
    char root[64];
    char blob_dir[PATH_MAX];
    void *ctx;
    rf_blob_server_t *server;
} fixture_t;

static int s_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->root, sizeof f->root, "/tmp/rf_test_blob_limits_XXXXXX");
    assert_non_null(mkdtemp(f->root));
    snprintf(f->blob_dir, sizeof f->blob_dir, "%s/blobs", f->root);
    f->ctx = zmq_ctx_new();
    rf_blob_server_opts_t o = {.max_blob = 3000, .max_uploads = 1};
    rf_err_t err = {0};
    assert_int_equal(rf_blob_server_new_opts(f->ctx, "tcp://127.0.0.1:*", f->blob_dir, &o, &f->server, &err), 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    rf_blob_server_destroy(&f->server);
    zmq_ctx_term(f->ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void s_file(const char *path, size_t len, unsigned char fill)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    unsigned char *buf = malloc(len);
    memset(buf, fill, len);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    free(buf);
    close(fd);
}

static void test_blob_bytes(void **state)
{
    fixture_t *f = *state;
    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1];
    rf_err_t err = {0};
    snprintf(src, sizeof src, "%s/big", f->root);
    s_file(src, 3001, 'a');
    int rc = rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, NULL, 5000, NULL, NULL, &err);
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, "blob of 3001 bytes over limits.blob_bytes (3000)")) {
        print_error("%s\n", err.msg);
        fail();
    }
    s_file(src, 3000, 'a'); /* at the limit: fine */
    assert_int_equal(rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, NULL, 5000, NULL, NULL, &err),
                     0);
    rf_blob_server_stats_t st;
    rf_blob_server_stats(f->server, &st);
    assert_true(st.over_limit >= 1);
}

/* A raw peer sends the first 1000 bytes of a 2000-byte blob and stops: one upload in progress. */
static void *s_half_upload(fixture_t *f)
{
    void *sock = zmq_socket(f->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(sock, rf_blob_server_endpoint(f->server)), 0);
    uint8_t data[1000];
    memset(data, 'h', sizeof data);
    Reelfarm__BlobPiece p = REELFARM__BLOB_PIECE__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    p.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    p.offset = 0;
    p.total_size = 2000;
    p.data.data = data;
    p.data.len = sizeof data;
    env.body_case = REELFARM__ENVELOPE__BODY_BLOB_PIECE;
    env.blob_piece = &p;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(rf_msg_pack(&env, RF_BLOB_MAX_FRAME, &buf, &len), 0);
    assert_int_equal(zmq_send(sock, buf, len, 0), (int)len);
    free(buf);
    /* its ack says the server holds the piece, so the upload is open */
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&item, 1, 5000), 1);
    zmq_msg_t m;
    zmq_msg_init(&m);
    assert_true(zmq_msg_recv(&m, sock, 0) > 0);
    rf_msg_t *reply = NULL;
    assert_int_equal(rf_msg_unpack(zmq_msg_data(&m), zmq_msg_size(&m), RF_BLOB_MAX_FRAME, 1 << 20, &reply), 0);
    assert_int_equal(rf_msg_env(reply)->body_case, REELFARM__ENVELOPE__BODY_BLOB_ACK);
    assert_int_equal(rf_msg_env(reply)->blob_ack->offset, 1000);
    rf_msg_destroy(&reply);
    zmq_msg_close(&m);
    return sock;
}

static void test_blob_uploads(void **state)
{
    fixture_t *f = *state;
    void *half = s_half_upload(f);
    char src[PATH_MAX], sha[RF_SHA256_HEX_LEN + 1];
    rf_err_t err = {0};
    snprintf(src, sizeof src, "%s/small", f->root);
    s_file(src, 100, 'b');
    int rc = rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, NULL, 3000, NULL, NULL, &err);
    assert_int_not_equal(rc, 0);
    if (!strstr(err.msg, "too many uploads in progress (limits.blob_uploads: 1)")) {
        print_error("%s\n", err.msg);
        fail();
    }
    zmq_close(half); /* the half upload is dropped as stale later; a fresh server has room at once */
    rf_blob_server_destroy(&f->server);
    rf_blob_server_opts_t o = {.max_blob = 3000, .max_uploads = 1};
    assert_int_equal(rf_blob_server_new_opts(f->ctx, "tcp://127.0.0.1:*", f->blob_dir, &o, &f->server, &err), 0);
    assert_int_equal(rf_blob_upload(f->ctx, rf_blob_server_endpoint(f->server), src, sha, NULL, 5000, NULL, NULL, &err),
                     0);
}

static void test_garbage_counted(void **state)
{
    fixture_t *f = *state;
    void *sock = zmq_socket(f->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_connect(sock, rf_blob_server_endpoint(f->server)), 0);
    zmq_send(sock, "\x08\x01\x52\xff", 4, 0);          /* truncated envelope */
    zmq_send(sock, "a", 1, ZMQ_SNDMORE);                /* two frames after the routing id */
    zmq_send(sock, "b", 1, ZMQ_SNDMORE);
    zmq_send(sock, "c", 1, 0);                          /* three */
    rf_blob_server_stats_t st = {0};
    for (int i = 0; i < 100 && (st.bad_frame < 1 || st.bad_parts < 1); i++) {
        usleep(20000);
        rf_blob_server_stats(f->server, &st);
    }
    assert_true(st.bad_frame >= 1);
    assert_true(st.bad_parts >= 1);
    zmq_close(sock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_blob_bytes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_blob_uploads, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_garbage_counted, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
