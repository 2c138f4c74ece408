/* zfarm.h - a real coordinator for the tests that talk to one over ZeroMQ: its loop on a thread,
 * every endpoint on loopback TCP (no HTTP), state in a folder the test made, and a bench job of
 * two chunks; a client socket for it; and the teardown that stops it and removes the folder. */
#ifndef RF_TEST_ZFARM_H
#define RF_TEST_ZFARM_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <zmq.h>

#include "config.h"
#include "coordinator.h"

static inline void *s_farm_loop(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

/* Starts a coordinator with its state in dir and a bench job (id in job_id, 64 bytes) of two
 * chunks that uses the model with SHA-256 model_sha (none when NULL); its loop runs on *thread. */
static inline rf_coordinator_t *s_farm_start(const char *dir, const char *model_sha, char *job_id,
                                             pthread_t *thread)
{
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
    assert_int_equal(rf_coordinator_bench_job(c, 2, 10, job_id, &err), 0);
    if (model_sha)
        assert_int_equal(rf_coordinator_bench_job_model(c, job_id, model_sha, &err), 0);
    assert_int_equal(pthread_create(thread, NULL, s_farm_loop, c), 0);
    return c;
}

/* A client DEALER connected to c's client endpoint. */
static inline void *s_farm_client(void *ctx, rf_coordinator_t *c)
{
    void *client = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(client, ZMQ_LINGER, &zero, sizeof(zero));
    assert_int_equal(zmq_connect(client, rf_coordinator_endpoint(c, RF_EP_CLIENTS)), 0);
    return client;
}

/* Stops c's loop, joins *thread, destroys c and removes dir. */
static inline void s_farm_stop(rf_coordinator_t **c, pthread_t thread, const char *dir)
{
    rf_coordinator_stop(*c);
    pthread_join(thread, NULL);
    rf_coordinator_destroy(c);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#endif
