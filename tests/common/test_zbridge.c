/* test_zbridge.c - the zmq <-> libuv bridge against the two failure modes in
 * notes/zmq-uv-deploy.md §1 (messages left behind by one recv per wakeup, and an incoming message
 * stranded by a send from a timer), plus closing from inside the callback without leaking a handle,
 * an idle loop that does not spin, and rf_zsock_drain from a timer. A ROUTER and a DEALER over tcp loopback share one loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>
#include <zmq.h>

#include "error.h"
#include "codec.h"
#include "zbridge.h"

#define DEALER_ID "dealer-1"

typedef struct fixture {
    uv_loop_t loop;
    void *ctx;
    void *router;
    void *dealer;
    rf_zsock_t *zr;
    rf_zsock_t *zd;
    uv_timer_t deadline; /* fails the test instead of hanging it */
    uv_timer_t kick;
    uv_prepare_t turn;   /* runs once per loop iteration */
    int deadline_hit;
    int router_msgs;
    int dealer_msgs;
    int per_turn;        /* messages delivered in the current loop turn */
    int max_per_turn;
    int turns;
    int order_ok;
    int got_waiting;
    int close_in_cb;
} fixture_t;

static void s_setup_sockets(fixture_t *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->ctx = zmq_ctx_new();
    assert_non_null(f->ctx);
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    f->dealer = zmq_socket(f->ctx, ZMQ_DEALER);
    assert_int_equal(rf_zsock_setup(f->router, ZMQ_ROUTER, RF_CONTROL_MAX_FRAME), 0);
    assert_int_equal(rf_zsock_setup(f->dealer, ZMQ_DEALER, RF_CONTROL_MAX_FRAME), 0);
    assert_int_equal(zmq_setsockopt(f->dealer, ZMQ_ROUTING_ID, DEALER_ID, strlen(DEALER_ID)), 0);
    assert_int_equal(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    char endpoint[256];
    size_t len = sizeof endpoint;
    assert_int_equal(zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, endpoint, &len), 0);
    assert_int_equal(zmq_connect(f->dealer, endpoint), 0);
    f->order_ok = 1;
}

static void s_close_all(fixture_t *f)
{
    rf_zsock_close(f->zr);
    rf_zsock_close(f->zd);
    f->zr = NULL;
    f->zd = NULL;
    if (!uv_is_closing((uv_handle_t *)&f->deadline))
        uv_close((uv_handle_t *)&f->deadline, NULL);
    if (!uv_is_closing((uv_handle_t *)&f->kick))
        uv_close((uv_handle_t *)&f->kick, NULL);
    if (!uv_is_closing((uv_handle_t *)&f->turn))
        uv_close((uv_handle_t *)&f->turn, NULL);
}

static void s_on_deadline(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->deadline_hit = 1;
    s_close_all(f);
}

static void s_on_turn(uv_prepare_t *p)
{
    fixture_t *f = p->data;
    f->per_turn = 0;
    f->turns++;
}

static void s_start_timers(fixture_t *f, uint64_t deadline_ms)
{
    uv_timer_init(&f->loop, &f->deadline);
    uv_timer_init(&f->loop, &f->kick);
    uv_prepare_init(&f->loop, &f->turn);
    f->deadline.data = f;
    f->kick.data = f;
    f->turn.data = f;
    uv_timer_start(&f->deadline, s_on_deadline, deadline_ms, 0);
    uv_prepare_start(&f->turn, s_on_turn);
}

/* Runs the loop until every handle is closed, then checks none leaked. */
static void s_finish(fixture_t *f)
{
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    /* The bridges closed their sockets; whatever was never bridged is ours. */
    if (f->router != NULL)
        zmq_close(f->router);
    if (f->dealer != NULL)
        zmq_close(f->dealer);
    assert_int_equal(zmq_ctx_term(f->ctx), 0);
}

static void s_on_dealer(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    fixture_t *f = arg;
    f->dealer_msgs++;
}

/* --- (1) many messages queued before the loop runs ------------------------------------------ */

#define QUEUED 5000

static void s_on_router_count(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    fixture_t *f = arg;
    f->per_turn++;
    if (f->per_turn > f->max_per_turn)
        f->max_per_turn = f->per_turn;
    int index = -1;
    if (msg->count != 2 || msg->size[0] != strlen(DEALER_ID) || memcmp(msg->data[0], DEALER_ID, msg->size[0]) != 0 ||
        msg->size[1] != sizeof index)
        f->order_ok = 0;
    else
        memcpy(&index, msg->data[1], sizeof index);
    if (index != f->router_msgs)
        f->order_ok = 0;
    f->router_msgs++;
    if (f->router_msgs == QUEUED)
        s_close_all(f);
}

static void test_many_queued(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    /* One message with too many parts first: dropped and counted, the rest unaffected. */
    for (int p = 0; p < RF_ZSOCK_MAX_PARTS; p++)
        assert_int_equal(zmq_send(f.dealer, "x", 1, p + 1 < RF_ZSOCK_MAX_PARTS ? ZMQ_SNDMORE : 0), 1);
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(zmq_send(f.dealer, &i, sizeof i, 0), (int)sizeof i);
    /* Let them all cross the connection, so their edge has fired long before the bridge exists. */
    usleep(300 * 1000);

    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_count, &f);
    assert_non_null(f.zr);
    f.router = NULL; /* the bridge owns it */
    s_start_timers(&f, 10000);
    uv_run(&f.loop, UV_RUN_DEFAULT);

    assert_false(f.deadline_hit);
    assert_int_equal(f.router_msgs, QUEUED);
    assert_true(f.order_ok);
    assert_true(f.max_per_turn <= RF_ZSOCK_DRAIN_BUDGET);
    assert_true(f.turns >= QUEUED / RF_ZSOCK_DRAIN_BUDGET);
    s_finish(&f);
}

static void s_on_router_dropped(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    fixture_t *f = arg;
    f->router_msgs++;
    if (msg->count == 2 && msg->size[1] == 4 && memcmp(msg->data[1], "last", 4) == 0) {
        assert_int_equal(rf_zsock_dropped(s), 1);
        s_close_all(f);
    }
}

static void test_too_many_parts_dropped(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    /* ROUTER sees routing id + these parts: MAX_PARTS + 1 frames. */
    for (int p = 0; p < RF_ZSOCK_MAX_PARTS; p++)
        assert_int_equal(zmq_send(f.dealer, "x", 1, p + 1 < RF_ZSOCK_MAX_PARTS ? ZMQ_SNDMORE : 0), 1);
    assert_int_equal(zmq_send(f.dealer, "last", 4, 0), 4);
    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_dropped, &f);
    assert_non_null(f.zr);
    f.router = NULL;
    s_start_timers(&f, 5000);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_false(f.deadline_hit);
    assert_int_equal(f.router_msgs, 1);
    s_finish(&f);
}

/* --- (2) a send from a timer must not strand a waiting message ------------------------------ */

static void s_on_kick(uv_timer_t *t)
{
    fixture_t *f = t->data;
    /* The DEALER's message reaches the ROUTER's queue and signals its ZMQ_FD... */
    static const char waiting[] = "waiting";
    rf_zparts_t w = {.count = 1, .data = {waiting}, .size = {sizeof waiting - 1}};
    assert_int_equal(rf_zsock_send(f->zd, &w), 0);
    usleep(200 * 1000);
    /* ...and this send on the ROUTER processes libzmq's commands, eating that edge. A bridge
     * that only reacts to the fd never hears of "waiting" again. */
    static const char reply[] = "reply";
    rf_zparts_t r = {.count = 2, .data = {DEALER_ID, reply}, .size = {strlen(DEALER_ID), sizeof reply - 1}};
    assert_int_equal(rf_zsock_send(f->zr, &r), 0);
}

static void s_on_router_waiting(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    fixture_t *f = arg;
    f->router_msgs++;
    if (msg->count == 2 && msg->size[1] == 5 && memcmp(msg->data[1], "hello", 5) == 0) {
        uv_timer_start(&f->kick, s_on_kick, 10, 0);
        return;
    }
    if (msg->count == 2 && msg->size[1] == 7 && memcmp(msg->data[1], "waiting", 7) == 0) {
        f->got_waiting = 1;
        s_close_all(f);
    }
}

static void test_send_from_timer_does_not_strand(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_waiting, &f);
    f.zd = rf_zsock_new(&f.loop, f.dealer, s_on_dealer, &f);
    assert_non_null(f.zr);
    assert_non_null(f.zd);
    f.router = NULL;
    f.dealer = NULL;
    s_start_timers(&f, 3000);
    static const char hello[] = "hello";
    rf_zparts_t h = {.count = 1, .data = {hello}, .size = {sizeof hello - 1}};
    assert_int_equal(rf_zsock_send(f.zd, &h), 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_false(f.deadline_hit);
    assert_true(f.got_waiting);
    s_finish(&f);
}

/* --- (3) closing from inside the callback ------------------------------------------------- */

static void s_on_router_close(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    fixture_t *f = arg;
    f->router_msgs++;
    rf_zsock_close(s);
    f->zr = NULL;
    /* A closing bridge refuses sends rather than touching a socket about to go. */
    rf_zparts_t r = {.count = 2, .data = {DEALER_ID, "x"}, .size = {strlen(DEALER_ID), 1}};
    assert_int_equal(rf_zsock_send(s, &r), RF_EINVAL);
    uv_timer_start(&f->kick, (uv_timer_cb)s_on_deadline, 200, 0); /* give more messages a chance */
    f->close_in_cb = 1;
}

static void test_close_in_callback(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    for (int i = 0; i < 10; i++)
        assert_int_equal(zmq_send(f.dealer, "m", 1, 0), 1);
    usleep(100 * 1000);
    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_close, &f);
    assert_non_null(f.zr);
    f.router = NULL;
    s_start_timers(&f, 5000);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_true(f.close_in_cb);
    assert_int_equal(f.router_msgs, 1); /* nothing delivered after the close */
    s_finish(&f);
}

/* --- sends: errors mapped, and an idle loop does not spin ----------------------------------- */

static void s_on_idle_done(uv_timer_t *t)
{
    s_close_all(t->data);
}

static void test_send_errors_and_no_spin(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_count, &f);
    f.zd = rf_zsock_new(&f.loop, f.dealer, s_on_dealer, &f);
    assert_non_null(f.zr);
    assert_ptr_equal(rf_zsock_handle(f.zr), f.router);
    f.router = NULL;
    f.dealer = NULL;

    rf_zparts_t nobody = {.count = 2, .data = {"nobody", "x"}, .size = {6, 1}};
    assert_int_equal(rf_zsock_send(f.zr, &nobody), RF_EUNAVAIL);
    rf_zparts_t none = {.count = 0};
    assert_int_equal(rf_zsock_send(f.zr, &none), RF_EINVAL);
    rf_zparts_t too_many = {.count = RF_ZSOCK_MAX_PARTS + 1};
    assert_int_equal(rf_zsock_send(f.zr, &too_many), RF_EINVAL);
    assert_null(rf_zsock_new(&f.loop, NULL, s_on_dealer, &f));

    s_start_timers(&f, 5000);
    uv_timer_start(&f.kick, s_on_idle_done, 300, 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_false(f.deadline_hit);
    /* 300 ms with nothing to do: a handful of turns (connection setup, timers), not thousands. */
    print_message("idle loop turns in 300 ms: %d\n", f.turns);
    assert_true(f.turns < 50);
    s_finish(&f);
}

/* --- (6) a timer drains everything at once (liveness checks after a stall) ------------------- */

#define STALLED 300

static void s_on_router_plain(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    (void)s;
    (void)msg;
    fixture_t *f = arg;
    f->router_msgs++;
}

/* Timers run before libuv's I/O phase: at the first tick nothing has been delivered yet, and
 * rf_zsock_drain hands over all of it at once, beyond the per-turn budget. */
static void s_on_drain_timer(uv_timer_t *t)
{
    fixture_t *f = t->data;
    f->got_waiting = f->router_msgs; /* delivered before the drain */
    f->per_turn = (int)rf_zsock_drain(f->zr);
    s_close_all(f);
}

static void test_drain_from_timer(void **state)
{
    (void)state;
    fixture_t f;
    s_setup_sockets(&f);
    for (int i = 0; i < STALLED; i++)
        assert_int_equal(zmq_send(f.dealer, &i, sizeof i, 0), (int)sizeof i);
    usleep(300 * 1000); /* all across before the bridge exists */
    f.zr = rf_zsock_new(&f.loop, f.router, s_on_router_plain, &f);
    assert_non_null(f.zr);
    f.router = NULL;
    s_start_timers(&f, 10000);
    uv_timer_start(&f.kick, s_on_drain_timer, 0, 0);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_false(f.deadline_hit);
    assert_int_equal(f.got_waiting, 0);
    assert_int_equal(f.per_turn, STALLED);
    assert_int_equal(f.router_msgs, STALLED);
    assert_int_equal(rf_zsock_drain(NULL), 0);
    s_finish(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_queued),
        cmocka_unit_test(test_too_many_parts_dropped),
        cmocka_unit_test(test_send_from_timer_does_not_strand),
        cmocka_unit_test(test_close_in_callback),
        cmocka_unit_test(test_send_errors_and_no_spin),
        cmocka_unit_test(test_drain_from_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
