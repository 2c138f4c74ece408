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
#include "zfarm.h"
#include "zpeer.h"

static char s_dir[] = "/tmp/rf-test-lease-owner-XXXXXX";

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

static void test_only_holder_fails(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(s_dir));
    char job_id[64];
    pthread_t thread;
    rf_coordinator_t *c = s_farm_start(s_dir, NULL, job_id, &thread);

    void *ctx = zmq_ctx_new();
    void *a = s_worker(ctx, rf_coordinator_endpoint(c, RF_EP_WORKERS), "a", NULL);
    void *b = s_worker(ctx, rf_coordinator_endpoint(c, RF_EP_WORKERS), "b", NULL);
    void *client = s_farm_client(ctx, c);

    s_ready(a);
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
    s_ready(b);
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
    s_farm_stop(&c, thread, s_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_only_holder_fails)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
