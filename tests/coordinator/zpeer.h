/* zpeer.h - a fake peer's two moves for the coordinator tests that talk to a real coordinator over
 * ZeroMQ: send one envelope, and wait for the next message of one type. Included by one test file
 * per executable (the functions are static). */
#ifndef RF_TEST_ZPEER_H
#define RF_TEST_ZPEER_H

#include <stdint.h>
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

#endif
