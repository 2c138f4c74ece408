/* zpeer.h - a fake peer's moves for the coordinator tests that talk to a real coordinator over
 * ZeroMQ: send one envelope, wait for the next message of one type, and a simulated worker's
 * Hello and Ready. Included by one test file per executable (the functions are static; the ones
 * not every includer calls are static inline). */
#ifndef RF_TEST_ZPEER_H
#define RF_TEST_ZPEER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <zmq.h>

#include "codec.h"

static void s_send(void *sock, Reelfarm__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(rf_msg_pack(env, RF_CONTROL_MAX_FRAME, &buf, &len), 0);
    assert_int_equal(zmq_send(sock, buf, len, 0), (int)len);
    free(buf);
}

/* The next message of type want within 5 s (heartbeats and others skipped). */
static rf_msg_t *s_recv(void *sock, int want)
{
    for (int i = 0; i < 500; i++) {
        zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&item, 1, 10) <= 0)
            continue;
        zmq_msg_t m;
        zmq_msg_init(&m);
        assert_true(zmq_msg_recv(&m, sock, 0) >= 0);
        rf_msg_t *msg = NULL;
        int rc =
            rf_msg_unpack(zmq_msg_data(&m), zmq_msg_size(&m), RF_CONTROL_MAX_FRAME, 1 << 22, &msg);
        zmq_msg_close(&m);
        assert_int_equal(rc, 0);
        if ((int)rf_msg_env(msg)->body_case == want)
            return msg;
        rf_msg_destroy(&msg);
    }
    fail_msg("no message of type %d in 5 s", want);
    return NULL;
}


/* A simulated worker: a DEALER with routing id "name/inst" connected to ep, that has sent its
 * Hello (one slot, the ffv1 encoder, the watermark and label passes, and model when not NULL) and
 * got its Welcome. */
static inline void *s_worker(void *ctx, const char *ep, const char *name, const char *model)
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

/* A worker asks for work. */
static inline void s_ready(void *sock)
{
    Reelfarm__Ready r = REELFARM__READY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_READY;
    env.ready = &r;
    s_send(sock, &env);
}

#endif
