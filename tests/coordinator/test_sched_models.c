/* test_sched_models.c - dispatch prefers a worker that already holds the job's models
 * (docs/ARCHITECTURE.md, "Dispatch"). A real coordinator (its loop on a thread, TCP on loopback)
 * with a bench job of two chunks that uses model M; two simulated workers, one slot each: A holds
 * nothing, B advertises M - in its Hello, or later in a Heartbeat. The job is paused while both ask
 * for work, then resumed: the dispatch visits A first (the newest worker heads the list), so
 * without the preference A would get the first chunk. B must get it, and A the second one (a
 * tie-breaker, never a reason to leave a worker idle). When B advertises another file, A gets the
 * first chunk: the check can fail.
 */
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

#define M_SHA "6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f"
#define OTHER_SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A worker named name with one slot and the ffv1 encoder; models (may be NULL) in its Hello. */
static void *s_worker(void *ctx, const char *ep, const char *name, const char *model)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    char rid[64];
    int n = snprintf(rid, sizeof(rid), "%s/inst", name);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_ROUTING_ID, rid, (size_t)n);
    assert_int_equal(zmq_connect(sock, ep), 0);
    char *encoders[] = {"ffv1"};
    char *passes[] = {"watermark", "label"}; /* what the coordinator adds to every job */
    char *models[] = {(char *)model};
    Reelfarm__Capabilities caps = REELFARM__CAPABILITIES__INIT;
    caps.n_encoders = 1;
    caps.encoders = encoders;
    caps.cpu_cores = 1;
    caps.n_passes = 2;
    caps.passes = passes;
    caps.n_models = model ? 1 : 0;
    caps.models = models;
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

static void s_heartbeat(void *sock, const char *model)
{
    char *models[] = {(char *)model};
    Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
    hb.n_models = 1;
    hb.models = models;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_send(sock, &env);
}

static void s_ready(void *sock)
{
    Reelfarm__Ready r = REELFARM__READY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_READY;
    env.ready = &r;
    s_send(sock, &env);
}

static void s_action(void *client, const char *job_id, const char *action)
{
    Reelfarm__JobAction a = REELFARM__JOB_ACTION__INIT;
    a.job_id = (char *)job_id;
    a.action = (char *)action;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_ACTION;
    env.job_action = &a;
    s_send(client, &env);
    rf_msg_t *m = s_recv(client, REELFARM__ENVELOPE__BODY_JOB_STATUS);
    rf_msg_destroy(&m);
}

static void *s_run(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

typedef enum { B_HELLO, B_HEARTBEAT, B_OTHER } s_how_t;

/* One farm: returns whether B got the first lease. Both workers must get a chunk. */
static bool s_b_first(s_how_t how)
{
    char dir[] = "/tmp/rf-test-sched-models-XXXXXX";
    assert_non_null(mkdtemp(dir));
    rf_coordinator_config_t *cfg = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_coordinator_config_load(NULL, &cfg, &err), 0);
    assert_int_equal(rf_config_set_string(&cfg->state_dir, dir), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_workers, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_clients, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_blobs, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->http_listen, ""), 0);
    rf_coordinator_t *c = NULL;
    assert_int_equal(rf_coordinator_new(cfg, &c, &err), 0);
    rf_coordinator_config_destroy(&cfg);
    char job_id[64];
    assert_int_equal(rf_coordinator_bench_job(c, 2, 10, job_id, &err), 0);
    assert_int_equal(rf_coordinator_bench_job_model(c, job_id, M_SHA, &err), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_run, c), 0);

    void *ctx = zmq_ctx_new();
    void *client = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(client, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(client, rf_coordinator_endpoint(c, RF_EP_CLIENTS)), 0);
    s_action(client, job_id, "pause");
    const char *ep = rf_coordinator_endpoint(c, RF_EP_WORKERS);
    void *b = s_worker(ctx, ep, "b", how == B_HELLO ? M_SHA : NULL);
    void *a = s_worker(ctx, ep, "a", NULL); /* joined last: first in the dispatch's order */
    if (how != B_HELLO)
        s_heartbeat(b, how == B_HEARTBEAT ? M_SHA : OTHER_SHA);
    s_ready(b);
    s_ready(a);
    /* Workers' messages get no answer to wait for: give the loop time to take them (it needs
     * microseconds) before the resume arrives on the client socket. */
    usleep(300000);
    s_action(client, job_id, "resume");
    rf_msg_t *ma = s_recv(a, REELFARM__ENVELOPE__BODY_ASSIGN);
    rf_msg_t *mb = s_recv(b, REELFARM__ENVELOPE__BODY_ASSIGN);
    uint64_t la = rf_msg_env(ma)->assign->lease, lb = rf_msg_env(mb)->assign->lease;
    assert_int_not_equal(rf_msg_env(ma)->assign->chunk, rf_msg_env(mb)->assign->chunk);
    rf_msg_destroy(&ma);
    rf_msg_destroy(&mb);

    zmq_close(a);
    zmq_close(b);
    zmq_close(client);
    zmq_ctx_term(ctx);
    rf_coordinator_stop(c);
    pthread_join(thread, NULL);
    rf_coordinator_destroy(&c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return lb < la;
}

static void test_holder_preferred(void **state)
{
    (void)state;
    assert_true(s_b_first(B_HELLO));
    assert_true(s_b_first(B_HEARTBEAT));
    assert_false(s_b_first(B_OTHER));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_holder_preferred)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
