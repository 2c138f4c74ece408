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
#include "zfarm.h"
#include "zpeer.h"

#define M_SHA "6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f64656c6d6f"
#define OTHER_SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

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

typedef enum { B_HELLO, B_HEARTBEAT, B_OTHER } s_how_t;

/* One farm: returns whether B got the first lease. Both workers must get a chunk. */
static bool s_b_first(s_how_t how)
{
    char dir[] = "/tmp/rf-test-sched-models-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char job_id[64];
    pthread_t thread;
    rf_coordinator_t *c = s_farm_start(dir, M_SHA, job_id, &thread);

    void *ctx = zmq_ctx_new();
    void *client = s_farm_client(ctx, c);
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
    s_farm_stop(&c, thread, dir);
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
