/* test_auth.c - the ZAP handler spoken to directly (RFC 27 frames over a REQ at
 * inproc://zeromq.zap.01 in the handler's context), so every answer is checked frame by frame:
 * allowed keys get 200 and user id ROLE:NAME where their role may go and 400 elsewhere; unknown
 * keys, unknown domains, other mechanisms get 400; a malformed request gets 500 and the handler
 * keeps answering. The folder's bad files (bad name, not a key, a duplicate key or name) are
 * skipped; SIGHUP's reload adds and removes keys, and keeps the old list when the folder is gone.
 * Keys come from zmq_curve_keypair; what each should get follows from the folder layout. */
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

#include "auth.h"

static char s_dir[] = "/tmp/rf-test-auth-XXXXXX";

typedef struct s_pair {
    char pub[41], sec[41];
} s_pair_t;

static void s_put(const char *rel, const char *text)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", s_dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void s_put_pub(const char *rel, const s_pair_t *k)
{
    char text[128];
    snprintf(text, sizeof(text), "public = \"%s\"\n", k->pub);
    s_put(rel, text);
}

/* One ZAP request; fills status and user_id from the reply. */
static void s_ask(void *req, const char *domain, const char *mechanism, const s_pair_t *k, char *status,
                  char *user_id)
{
    uint8_t raw[32];
    assert_non_null(zmq_z85_decode(raw, k->pub));
    const char *f[] = {"1.0", "42", domain, "127.0.0.1", "", mechanism};
    for (size_t i = 0; i < 6; i++)
        assert_true(zmq_send(req, f[i], strlen(f[i]), ZMQ_SNDMORE) >= 0);
    assert_int_equal(zmq_send(req, raw, 32, 0), 32);
    char frames[6][128];
    for (int i = 0; i < 6; i++) {
        int n = zmq_recv(req, frames[i], sizeof(frames[i]) - 1, 0);
        assert_true(n >= 0);
        frames[i][n] = '\0';
        int more = 0;
        size_t len = sizeof(more);
        zmq_getsockopt(req, ZMQ_RCVMORE, &more, &len);
        assert_int_equal(more, i < 5);
    }
    assert_string_equal(frames[0], "1.0");
    assert_string_equal(frames[1], "42"); /* the request id is echoed */
    snprintf(status, 128, "%s", frames[2]); /* callers pass 128-byte buffers */
    snprintf(user_id, 128, "%s", frames[4]);
}

static void s_expect(void *req, const char *domain, const s_pair_t *k, const char *status, const char *user_id)
{
    char st[128], uid[128];
    s_ask(req, domain, "CURVE", k, st, uid);
    if (strcmp(st, status) || strcmp(uid, user_id)) {
        print_error("%s on '%s': got %s '%s', expected %s '%s'\n", k->pub, domain, st, uid, status, user_id);
        fail();
    }
}

static void s_wait_reloads(rf_auth_t *a, uint64_t n)
{
    rf_auth_stats_t st;
    for (int i = 0; i < 100; i++) {
        rf_auth_stats(a, &st);
        if (st.reloads >= n)
            return;
        usleep(20000);
    }
    fail_msg("no reload");
}

static void test_handler(void **state)
{
    (void)state;
    s_pair_t w, c, adm, stranger, dup;
    s_pair_t *all[] = {&w, &c, &adm, &stranger, &dup};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(zmq_curve_keypair(all[i]->pub, all[i]->sec), 0);
    const char *folders[] = {"workers", "clients", "admins"};
    for (size_t i = 0; i < 3; i++) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", s_dir, folders[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    s_put_pub("workers/gpu-07.pub", &w);
    s_put_pub("clients/alice.pub", &c);
    s_put_pub("admins/ops.pub", &adm);
    s_put_pub("clients/.hidden.pub", &dup);     /* bad name: skipped */
    s_put_pub("clients/alice2.pub", &w);        /* a key already listed (as gpu-07): skipped */
    s_put("clients/junk.pub", "not a key\n");   /* skipped */
    s_put_pub("clients/notes.txt", &dup);       /* not a .pub: ignored */

    void *ctx = zmq_ctx_new();
    rf_auth_t *a = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_auth_new(ctx, s_dir, &a, &err), 0);
    rf_auth_stats_t st;
    rf_auth_stats(a, &st);
    assert_int_equal(st.keys, 3);
    void *req = zmq_socket(ctx, ZMQ_REQ);
    int zero = 0;
    zmq_setsockopt(req, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);

    s_expect(req, "workers", &w, "200", "worker:gpu-07");
    s_expect(req, "blobs", &w, "200", "worker:gpu-07");
    s_expect(req, "clients", &w, "400", "");
    s_expect(req, "clients", &c, "200", "client:alice");
    s_expect(req, "blobs", &c, "200", "client:alice");
    s_expect(req, "workers", &c, "400", "");
    for (size_t i = 0; i < 3; i++)
        s_expect(req, (const char *[]){"workers", "clients", "blobs"}[i], &adm, "200", "admin:ops");
    for (size_t i = 0; i < 3; i++)
        s_expect(req, (const char *[]){"workers", "clients", "blobs"}[i], &stranger, "400", "");
    s_expect(req, "clients", &dup, "400", "");  /* its only files were skipped or ignored */
    s_expect(req, "other", &adm, "400", "");    /* a domain we did not set */
    char s1[128], u1[128];
    s_ask(req, "clients", "PLAIN", &adm, s1, u1);
    assert_string_equal(s1, "400");

    /* A malformed request: 500, and the handler still answers the next one. */
    zmq_send(req, "2.0", 3, ZMQ_SNDMORE);
    zmq_send(req, "7", 1, 0);
    char buf[6][128];
    for (int i = 0; i < 6; i++) {
        int n = zmq_recv(req, buf[i], sizeof(buf[i]) - 1, 0);
        assert_true(n >= 0);
        buf[i][n] = '\0';
    }
    assert_string_equal(buf[2], "500");
    s_expect(req, "clients", &c, "200", "client:alice");

    rf_auth_stats(a, &st);
    assert_int_equal(st.allowed[0], 2);  /* workers: w, adm */
    assert_int_equal(st.denied[1], 4);   /* clients: w, stranger, dup, and PLAIN ("other" is no socket of ours) */

    /* Reload: alice leaves, the stranger joins as a client. */
    char p[4200];
    snprintf(p, sizeof(p), "%s/clients/alice.pub", s_dir);
    unlink(p);
    s_put_pub("clients/stranger.pub", &stranger);
    rf_auth_reload(a);
    s_wait_reloads(a, 2);
    s_expect(req, "clients", &c, "400", "");
    s_expect(req, "clients", &stranger, "200", "client:stranger");

    /* The folder vanishes: the last good list stays. */
    char moved[4300];
    snprintf(moved, sizeof(moved), "%s.moved", s_dir);
    assert_int_equal(rename(s_dir, moved), 0);
    rf_auth_reload(a);
    usleep(300000); /* the reload is tried within 100 ms and fails */
    rf_auth_stats(a, &st);
    assert_int_equal(st.reloads, 2);
    assert_int_equal(st.keys, 3);
    s_expect(req, "clients", &stranger, "200", "client:stranger");
    assert_int_equal(rename(moved, s_dir), 0);

    zmq_close(req);
    rf_auth_destroy(&a);
    assert_null(a);
    rf_auth_destroy(&a);
    zmq_ctx_term(ctx);
}

static void test_missing_folder(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    rf_auth_t *a = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_auth_new(ctx, "/nonexistent/allow", &a, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, "'/nonexistent/allow'"));
    assert_null(a);
    zmq_ctx_term(ctx);
}

static int s_setup(void **state)
{
    (void)state;
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.moved'", s_dir, s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handler),
        cmocka_unit_test(test_missing_folder),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
