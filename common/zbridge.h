/* zbridge.h - a ZeroMQ socket inside a libuv loop.
 *
 * ZMQ_FD is edge-triggered and any zmq call may consume the edge (notes/zmq-uv-deploy.md §1), so a
 * bare uv_poll strands messages. Each bridged socket has one uv_poll on ZMQ_FD (a wakeup hint only),
 * one uv_check that re-reads ZMQ_EVENTS every loop turn, and a uv_idle that keeps the loop from
 * blocking while messages remain. Every send through rf_zsock_send re-reads ZMQ_EVENTS afterwards,
 * so a send from a timer callback never strands an incoming message. Incoming messages are drained
 * with a budget (RF_ZSOCK_DRAIN_BUDGET per loop turn) so one busy socket cannot starve the loop.
 *
 * Lifecycle (libuv style): rf_zsock_new starts watching; rf_zsock_close stops it, closes the uv
 * handles and, from their close callbacks, closes the zmq socket and frees the bridge. The bridge
 * takes ownership of the zmq socket.
 */
#ifndef RF_ZBRIDGE_H
#define RF_ZBRIDGE_H

#include <stddef.h>
#include <uv.h>

#define RF_ZSOCK_MAX_PARTS 4        /* frames per message; more -> dropped and counted */
#define RF_ZSOCK_DRAIN_BUDGET 64    /* messages handled per socket per loop turn */
#define RF_ZSOCK_DRAIN_ALL 65536    /* cap of rf_zsock_drain */

typedef struct rf_zsock rf_zsock_t;

/* One received message: parts[i] points into storage owned by the bridge, valid only during the
 * callback. For a ROUTER, parts[0] is the peer's routing id. */
typedef struct rf_zparts {
    int count;
    const void *data[RF_ZSOCK_MAX_PARTS];
    size_t size[RF_ZSOCK_MAX_PARTS];
    const char *user_id; /* received: the ZAP user id libzmq attached ("client:alice", zsec.h);
                            NULL without CURVE. Ignored by rf_zsock_send. */
} rf_zparts_t;

typedef void (*rf_zsock_recv_cb)(rf_zsock_t *s, const rf_zparts_t *msg, void *arg);

/* Bridges zsock (a libzmq socket, already bound or connected) into loop. Returns NULL on failure
 * (and the caller keeps zsock). */
rf_zsock_t *rf_zsock_new(uv_loop_t *loop, void *zsock, rf_zsock_recv_cb cb, void *arg);

/* Sends one multi-part message without blocking (ZMQ_DONTWAIT), then re-reads ZMQ_EVENTS.
 * Returns 0, RF_EAGAIN (peer at high-water mark), RF_EUNAVAIL (ROUTER_MANDATORY: no such peer) or
 * RF_EIO. A partially sent message is never left behind. */
int rf_zsock_send(rf_zsock_t *s, const rf_zparts_t *msg);

/* Delivers, now, every message the socket already holds (at most RF_ZSOCK_DRAIN_ALL of them) and
 * returns how many. For timers that judge a peer's liveness: after the process stalled, libuv runs
 * timers before its I/O phase, so heartbeats that arrived during the stall would otherwise be read
 * only after the peer was declared silent. Callable from any loop callback except this socket's
 * own receive callback. */
size_t rf_zsock_drain(rf_zsock_t *s);

/* The underlying zmq socket (for setsockopt/getsockopt only; never recv through it). */
void *rf_zsock_handle(rf_zsock_t *s);

/* Messages dropped because they had more than RF_ZSOCK_MAX_PARTS frames. */
unsigned long rf_zsock_dropped(const rf_zsock_t *s);

/* Stops delivery at once and closes asynchronously (see above). NULL is ignored. */
void rf_zsock_close(rf_zsock_t *s);

/* Applies reelfarm's socket options: LINGER 0, MAXMSGSIZE max_frame (+ 64 B for CURVE),
 * and for ROUTERs ROUTER_MANDATORY and ROUTER_HANDOVER. Returns 0 or RF_EIO. */
int rf_zsock_setup(void *zsock, int type, size_t max_frame);

#endif
