/* zbridge.c - a ZeroMQ socket inside a libuv loop (see zbridge.h for the design).
 *
 * Who does what in one loop turn:
 *   uv_poll  (ZMQ_FD readable)  a hint that libzmq has commands pending: read ZMQ_EVENTS (which
 *                               processes them and clears the edge) and start the idle if POLLIN.
 *   uv_check (every turn)       drain up to RF_ZSOCK_DRAIN_BUDGET messages, then re-read ZMQ_EVENTS.
 *   uv_idle  (only while POLLIN) a no-op whose only job is to make the loop poll with timeout 0,
 *                               so the check runs again next turn instead of blocking on a fd
 *                               whose edge was already consumed.
 * Every rf_zsock_send also re-reads ZMQ_EVENTS, because a send processes commands too and can eat
 * the edge that announced an incoming message (notes/zmq-uv-deploy.md §1).
 */
#include "zbridge.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <zmq.h>

#include "error.h"

#define RF_ZSOCK_HWM 10000 /* messages; liveness and credits bound real queues far below this */

struct rf_zsock {
    uv_poll_t poll;          /* ZMQ_FD, readable only: a hint */
    uv_check_t check;        /* drains once per loop turn */
    uv_idle_t idle;          /* active only while ZMQ_EVENTS says POLLIN */
    void *zsock;             /* owned once rf_zsock_new succeeded */
    rf_zsock_recv_cb cb;
    void *arg;
    zmq_msg_t parts[RF_ZSOCK_MAX_PARTS]; /* storage behind rf_zparts_t during a callback */
    unsigned long dropped;   /* messages with too many parts */
    int closing;             /* rf_zsock_close was called: deliver nothing more */
    int keep_zsock;          /* rf_zsock_new failed half-way: the caller keeps the zmq socket */
    int open_handles;        /* uv handles not yet through their close callback */
};

/* ZMQ_EVENTS, or 0 when the socket cannot tell (being closed, or context terminated). */
static int s_events(rf_zsock_t *s)
{
    int events = 0;
    size_t len = sizeof events;
    if (zmq_getsockopt(s->zsock, ZMQ_EVENTS, &events, &len) != 0)
        return 0;
    return events;
}

static void s_on_idle(uv_idle_t *h)
{
    (void)h; /* the work happens in the check; an active idle only stops the loop from blocking */
}

/* Re-reads ZMQ_EVENTS and keeps the idle running exactly while messages are waiting, so the loop
 * neither spins when there is nothing to read nor blocks when something is. */
static void s_update(rf_zsock_t *s)
{
    if (s->closing)
        return;
    if (s_events(s) & ZMQ_POLLIN) {
        if (!uv_is_active((uv_handle_t *)&s->idle))
            uv_idle_start(&s->idle, s_on_idle);
    } else {
        uv_idle_stop(&s->idle);
    }
}

static void s_close_parts(rf_zsock_t *s, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&s->parts[i]);
}

/* Receives one whole message without blocking. Returns 1 when one was delivered or dropped, 0 when
 * none is waiting (or the socket failed). Parts of a multi-part message arrive atomically in
 * libzmq, so once the first is here the rest are too. */
static int s_recv_one(rf_zsock_t *s)
{
    int kept = 0;
    int total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = kept < RF_ZSOCK_MAX_PARTS ? &s->parts[kept] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, s->zsock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            s_close_parts(s, kept);
            /* EAGAIN before the first part: nothing waiting. Anything else (ETERM, EINTR
             * mid-message) cannot be handled better here than by stopping this drain. */
            return 0;
        }
        more = zmq_msg_more(m);
        total++;
        if (m == &scratch)
            zmq_msg_close(m); /* over the part limit: read and throw away the rest */
        else
            kept++;
    }

    if (total > RF_ZSOCK_MAX_PARTS) {
        s->dropped++;
        s_close_parts(s, kept);
        return 1;
    }
    rf_zparts_t msg = {.count = kept};
    for (int i = 0; i < kept; i++) {
        msg.data[i] = zmq_msg_data(&s->parts[i]);
        msg.size[i] = zmq_msg_size(&s->parts[i]);
    }
    /* A ROUTER makes the routing-id frame itself, without the connection's metadata; the frames
     * that came over the wire carry it, and the last one always did. */
    if (kept > 0)
        msg.user_id = zmq_msg_gets(&s->parts[kept - 1], "User-Id");
    s->cb(s, &msg, s->arg);
    /* The callback may have called rf_zsock_close: the bridge lives until the close callbacks, so
     * releasing the parts here is still safe. */
    s_close_parts(s, kept);
    return 1;
}

static size_t s_drain(rf_zsock_t *s, size_t budget)
{
    size_t n = 0;
    while (n < budget && !s->closing) {
        if (!(s_events(s) & ZMQ_POLLIN))
            break;
        if (!s_recv_one(s))
            break;
        n++;
    }
    s_update(s); /* budget spent with messages left -> the idle keeps the next turn non-blocking */
    return n;
}

size_t rf_zsock_drain(rf_zsock_t *s)
{
    return s && !s->closing ? s_drain(s, RF_ZSOCK_DRAIN_ALL) : 0;
}

static void s_on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    /* Reading ZMQ_EVENTS processes libzmq's pending commands and so clears the fd; without it the
     * fd stays readable and the loop spins. Delivery itself waits for the check in this turn. */
    s_update(h->data);
}

static void s_on_check(uv_check_t *h)
{
    rf_zsock_t *s = h->data;
    if (!s->closing)
        s_drain(s, RF_ZSOCK_DRAIN_BUDGET);
}

static void s_on_close(uv_handle_t *h)
{
    rf_zsock_t *s = h->data;
    if (--s->open_handles > 0)
        return;
    /* Only now: libuv must stop polling ZMQ_FD before libzmq closes it. */
    if (!s->keep_zsock)
        zmq_close(s->zsock);
    free(s);
}

static void s_close_handles(rf_zsock_t *s)
{
    s->closing = 1;
    uv_poll_stop(&s->poll);
    uv_idle_stop(&s->idle);
    uv_check_stop(&s->check);
    s->open_handles = 3;
    uv_close((uv_handle_t *)&s->poll, s_on_close);
    uv_close((uv_handle_t *)&s->check, s_on_close);
    uv_close((uv_handle_t *)&s->idle, s_on_close);
}

rf_zsock_t *rf_zsock_new(uv_loop_t *loop, void *zsock, rf_zsock_recv_cb cb, void *arg)
{
    if (loop == NULL || zsock == NULL || cb == NULL)
        return NULL;
    int fd = -1;
    size_t len = sizeof fd;
    if (zmq_getsockopt(zsock, ZMQ_FD, &fd, &len) != 0)
        return NULL;

    rf_zsock_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->zsock = zsock;
    s->cb = cb;
    s->arg = arg;
    if (uv_poll_init_socket(loop, &s->poll, fd) != 0) {
        free(s); /* no handle initialised yet: nothing to close */
        return NULL;
    }
    uv_check_init(loop, &s->check);
    uv_idle_init(loop, &s->idle);
    s->poll.data = s;
    s->check.data = s;
    s->idle.data = s;

    if (uv_poll_start(&s->poll, UV_READABLE, s_on_poll) != 0 || uv_check_start(&s->check, s_on_check) != 0) {
        /* The handles are initialised, so they must go through uv_close; the caller keeps zsock. */
        s->keep_zsock = 1;
        s_close_handles(s);
        return NULL;
    }
    s_update(s); /* messages may already be queued: their edge fired before we watched */
    return s;
}

static int s_send_errno(int e)
{
    switch (e) {
    case EHOSTUNREACH: return RF_EUNAVAIL;
    case EAGAIN: return RF_EAGAIN;
    default: return RF_EIO;
    }
}

int rf_zsock_send(rf_zsock_t *s, const rf_zparts_t *msg)
{
    int rc = 0;
    if (s == NULL || s->closing || msg == NULL || msg->count < 1 || msg->count > RF_ZSOCK_MAX_PARTS)
        return RF_EINVAL;
    for (int i = 0; i < msg->count; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < msg->count ? ZMQ_SNDMORE : 0);
        if (zmq_send(s->zsock, msg->data[i], msg->size[i], flags) < 0) {
            /* libzmq checks the high-water mark and, on a ROUTER, the peer at the first part; once
             * that is accepted the later parts of the same message are not refused for either
             * reason, so a failure can only be on part 0 and nothing is left half-sent. */
            rc = s_send_errno(errno);
            break;
        }
    }
    s_update(s); /* the send processed libzmq's commands and may have eaten an incoming edge */
    return rc;
}

void *rf_zsock_handle(rf_zsock_t *s)
{
    return s != NULL ? s->zsock : NULL;
}

unsigned long rf_zsock_dropped(const rf_zsock_t *s)
{
    return s != NULL ? s->dropped : 0;
}

void rf_zsock_close(rf_zsock_t *s)
{
    if (s == NULL || s->closing)
        return;
    s_close_handles(s);
}

int rf_zsock_setup(void *zsock, int type, size_t max_frame)
{
    int zero = 0;
    int one = 1;
    int hwm = RF_ZSOCK_HWM;
    int64_t maxmsg = (int64_t)max_frame + 64; /* CURVE adds 33 bytes per frame on the wire */

    if (zmq_setsockopt(zsock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(zsock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0 ||
        zmq_setsockopt(zsock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0 ||
        zmq_setsockopt(zsock, ZMQ_RCVHWM, &hwm, sizeof hwm) != 0)
        return RF_EIO;
    if (type == ZMQ_ROUTER) {
        if (zmq_setsockopt(zsock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) != 0 ||
            zmq_setsockopt(zsock, ZMQ_ROUTER_HANDOVER, &one, sizeof one) != 0)
            return RF_EIO;
    }
    return 0;
}
