/* test_lease_owner.c - a worker may fail only the chunks it holds. A real coordinator (its loop on a
 * thread, TCP on loopback) with a bench job; two simulated workers A and B (DEALERs speaking the
 * protocol). A is assigned a chunk; B sends ChunkFailed naming A's lease: the chunk must still be
 * running on A. Then A itself fails it, and it is no longer running on A - so the check is not
 * passing merely because failures were never processed. */
#include <pthread.h>
#include <stdbool.h>
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

#include "codec.h"
#include "config.h"
#include "coordinator.h"
#include "zpeer.h"

static char s_dir[] = "/tmp/rf-test-lease-owner-XXXXXX";

static void *s_worker(void *ctx, const char *ep, const char *name)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    char rid[64];
    int n = snprintf(rid, sizeof(rid), "%s/inst", name);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_ROUTING_ID, rid, (size_t)n);
    assert_int_equal(zmq_connect(sock, ep), 0);
    char *encoders[] = {"ffv1"};
    Reelfarm__Capabilities caps = REELFARM__CAPABILITIES__INIT;
    caps.n_encoders = 1;
    caps.encoders = encoders;
    caps.cpu_cores = 1;
    char *passes[] = {"watermark", "label"}; /* what the coordinator adds to every job */
    caps.n_passes = 2;
    caps.passes = passes;
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    h.name = (char *)name;
    h.slots = 1;
    h.caps = &caps;
    h.instance = "inst";
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    s_send(sock, &env);
    rf_msg_t *w = s_recv(sock, REELFARM__ENVELOPE__BODY_WELCOME);
    rf_msg_destroy(&w);
    return sock;
}

static void s_fail(void *sock, uint64_t lease)
{
    Reelfarm__ChunkFailed f = REELFARM__CHUNK_FAILED__INIT;
    f.lease = lease;
    f.error_class = "decode";
    f.message = "test";
    f.retryable = false;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_CHUNK_FAILED;
    env.chunk_failed = &f;
    s_send(sock, &env);
}

/* The chunk's state and worker as the client API reports them. */
static void s_chunk(void *client, const char *job_id, uint32_t index, char *state, char *worker)
{
    Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
    q.job_id = (char *)job_id;
    q.with_chunks = true;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_QUERY;
    env.job_query = &q;
    s_send(client, &env);
    rf_msg_t *m = s_recv(client, REELFARM__ENVELOPE__BODY_JOB_STATUS);
    const Reelfarm__JobStatus *st = rf_msg_env(m)->job_status;
    assert_true(index < st->n_chunks);
    snprintf(state, 64, "%s", st->chunks[index]->state); /* callers pass 64-byte buffers */
    snprintf(worker, 64, "%s", st->chunks[index]->worker ? st->chunks[index]->worker : "");
    rf_msg_destroy(&m);
}

static void *s_run(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

static void test_only_holder_fails(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(s_dir));
    rf_coordinator_config_t *cfg = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_coordinator_config_load(NULL, &cfg, &err), 0);
    assert_int_equal(rf_config_set_string(&cfg->state_dir, s_dir), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_workers, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_clients, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_blobs, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->http_listen, ""), 0);
    rf_coordinator_t *c = NULL;
    assert_int_equal(rf_coordinator_new(cfg, &c, &err), 0);
    rf_coordinator_config_destroy(&cfg);
    char job_id[64];
    assert_int_equal(rf_coordinator_bench_job(c, 2, 10, job_id, &err), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_run, c), 0);

    void *ctx = zmq_ctx_new();
    void *a = s_worker(ctx, rf_coordinator_endpoint(c, RF_EP_WORKERS), "a");
    void *b = s_worker(ctx, rf_coordinator_endpoint(c, RF_EP_WORKERS), "b");
    void *client = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(client, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(client, rf_coordinator_endpoint(c, RF_EP_CLIENTS)), 0);

    Reelfarm__Ready r = REELFARM__READY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_READY;
    env.ready = &r;
    s_send(a, &env);
    rf_msg_t *m = s_recv(a, REELFARM__ENVELOPE__BODY_ASSIGN);
    uint64_t lease = rf_msg_env(m)->assign->lease;
    uint32_t index = rf_msg_env(m)->assign->chunk;
    rf_msg_destroy(&m);

    char st[64], who[64];
    s_chunk(client, job_id, index, st, who);
    assert_string_equal(st, "running");
    assert_string_equal(who, "a");

    /* B names A's lease, then asks for work: its Assign proves its failure was handled first
     * (one socket's messages are handled in order). */
    s_fail(b, lease);
    s_send(b, &env);
    m = s_recv(b, REELFARM__ENVELOPE__BODY_ASSIGN);
    rf_msg_destroy(&m);
    s_chunk(client, job_id, index, st, who);
    assert_string_equal(st, "running");
    assert_string_equal(who, "a");

    s_fail(a, lease); /* the holder may */
    bool ended = false;
    for (int i = 0; i < 300 && !ended; i++) {
        s_chunk(client, job_id, index, st, who);
        ended = strcmp(st, "running") != 0 || strcmp(who, "a") != 0;
        if (!ended)
            usleep(10000);
    }
    assert_true(ended);

    zmq_close(a);
    zmq_close(b);
    zmq_close(client);
    zmq_ctx_term(ctx);
    rf_coordinator_stop(c);
    pthread_join(thread, NULL);
    rf_coordinator_destroy(&c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_only_holder_fails)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
