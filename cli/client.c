/* client.c - a blocking client for the coordinator's client socket, and job following.
 *
 * The CLI is a short-lived process, so plain zmq_poll with timeouts is the right tool here (no
 * event loop). A call that times out throws its socket away: a late reply must never be read as
 * the answer to the next request.
 *
 * Unreachable versus slow: the socket has ZMQ_IMMEDIATE, so it becomes writable (POLLOUT) only once
 * a connection to the coordinator is up (TCP and the ZeroMQ handshake). No connection within
 * RF_CLIENT_CONNECT_MS, with nothing accepting TCP connections there, is "cannot reach" (exit 3);
 * a listener that is merely slow to finish the handshake (a loaded machine) gets the request's
 * whole timeout. Once connected, a request waits up to its own timeout for the reply. Host names
 * are resolved here, within the same 2 s (s_resolve).
 *
 * Nothing here can wait forever: every wait goes through s_poll, which reads the clock once per
 * slice and never passes zmq_poll a negative (infinite) timeout. (An earlier version computed
 * `until - rf_now_ms()` after checking `rf_now_ms() < until`; when the millisecond ticked in
 * between, the unsigned difference wrapped, became -1 as a long, and zmq_poll waited forever for a
 * connection that never came: the hang seen in CI.) Sends use ZMQ_DONTWAIT, and LINGER is 0, so
 * zmq_close and zmq_ctx_term do not wait for undelivered requests.
 */
#include "cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "rftime.h"
#include "zbridge.h"

#define S_POLL_SLICE_MS 100 /* longest single zmq_poll: deadlines are re-checked at least this often */

struct rf_client {
    void *zctx;
    void *sock;
    bool connected; /* POLLOUT was seen on this socket: a connection to the coordinator was up */
    char endpoint[512];   /* as given, for messages */
    char connect_ep[600]; /* with the host resolved to an address; "" until the first call */
    rf_zsec_t sec;        /* CURVE client keys; off = plaintext */
    void *mon;            /* PAIR reading the socket's handshake events (CURVE only), or NULL */
    int mon_seq;          /* makes each monitor endpoint unique within the context */
};

/* Milliseconds left until deadline, 0 when it has passed; one clock read. */
static long s_left_ms(uint64_t deadline)
{
    uint64_t now = rf_now_ms();
    return now >= deadline ? 0 : (long)(deadline - now);
}

/* Polls for events until one of them is set or the deadline passes, in slices of at most
 * S_POLL_SLICE_MS. Returns 1 (ready), 0 (deadline), or RF_ECANCELED when a signal interrupted it
 * and stop_on_signal is set. */
static int s_poll(void *sock, short events, uint64_t deadline, bool stop_on_signal)
{
    for (;;) {
        long left = s_left_ms(deadline);
        if (left <= 0)
            return 0;
        zmq_pollitem_t item = {.socket = sock, .events = events};
        int n = zmq_poll(&item, 1, left < S_POLL_SLICE_MS ? left : S_POLL_SLICE_MS);
        if (n > 0 && (item.revents & events))
            return 1;
        if (n < 0 && errno == EINTR && stop_on_signal)
            return RF_ECANCELED;
    }
}

/* The endpoint with its host name replaced by an address, resolved here within the deadline
 * (getaddrinfo_a), never by libzmq: its I/O thread resolves names with a blocking getaddrinfo
 * that zmq_ctx_term then waits for, so a slow DNS server would hold the command well past its
 * 2 s. Endpoints that are not tcp://HOST:PORT, and numeric hosts, are used as they are. */
static int s_resolve(rf_client_t *c, uint64_t deadline, rf_err_t *err)
{
    const char *host = strncmp(c->endpoint, "tcp://", 6) ? NULL : c->endpoint + 6;
    const char *colon = host ? strrchr(host, ':') : NULL;
    char name[256];
    if (!colon || colon == host || (size_t)(colon - host) >= sizeof(name)) {
        snprintf(c->connect_ep, sizeof(c->connect_ep), "%s", c->endpoint);
        return 0; /* not tcp://HOST:PORT: zmq_connect judges it */
    }
    snprintf(name, sizeof(name), "%.*s", (int)(colon - host), host);
    unsigned char probe[sizeof(struct in6_addr)];
    if (!strcmp(name, "*") || name[0] == '[' || inet_pton(AF_INET, name, probe) == 1) {
        snprintf(c->connect_ep, sizeof(c->connect_ep), "%s", c->endpoint);
        return 0;
    }
    /* Heap, not stack: a lookup that outlives the deadline still writes here (see below). */
    struct gaicb *req = calloc(1, sizeof(*req));
    struct addrinfo *hints = calloc(1, sizeof(*hints));
    char *node = strdup(name);
    if (!req || !hints || !node) {
        free(req), free(hints), free(node);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    hints->ai_family = AF_UNSPEC;
    hints->ai_socktype = SOCK_STREAM;
    req->ar_name = node;
    req->ar_request = hints;
    struct gaicb *list[1] = {req};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    /* gai_suspend returns on completion, timeout, a signal, or EAI_ALLDONE when the lookup had
     * already finished: only gai_error says where the lookup is. */
    while (!rc && gai_error(req) == EAI_INPROGRESS) {
        long left = s_left_ms(deadline);
        if (left <= 0)
            break;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L};
        gai_suspend((const struct gaicb *const *)list, 1, &ts);
    }
    if (!rc)
        rc = gai_error(req);
    if (rc == EAI_INPROGRESS) {
        /* Out of time. A lookup that cannot be cancelled keeps req, hints and node: they are
         * left allocated (this process ends soon) rather than freed under a running lookup. */
        if (gai_cancel(req) == EAI_CANCELED) {
            free(req), free(hints), free(node);
        }
        return rf_err_set(err, RF_EUNAVAIL,
                          "cannot reach the coordinator at '%s' (no address for '%s' within %d s)",
                          c->endpoint, name, RF_CLIENT_CONNECT_MS / 1000);
    }
    int ret = 0;
    char addr[INET6_ADDRSTRLEN] = "";
    /* IPv4 first, as libzmq does by default ("localhost" is often ::1 first, and daemons bind
     * 127.0.0.1). */
    for (int pass = 0; pass < 2 && !addr[0]; pass++) {
        for (const struct addrinfo *ai = rc ? NULL : req->ar_result; ai && !addr[0]; ai = ai->ai_next) {
            if (pass == 0 && ai->ai_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)ai->ai_addr)->sin_addr, addr,
                          sizeof(addr));
            else if (pass == 1 && ai->ai_family == AF_INET6 &&
                     inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
                               addr + 1, sizeof(addr) - 2)) {
                addr[0] = '[';
                size_t len = strlen(addr); /* at most sizeof(addr) - 2: room for "]" */
                addr[len] = ']';
                addr[len + 1] = '\0';
            }
        }
    }
    if (!addr[0])
        ret = rf_err_set(err, RF_EUNAVAIL, "cannot reach the coordinator at '%s' (cannot resolve '%s': %s)",
                         c->endpoint, name, rc ? gai_strerror(rc) : "no IPv4 or IPv6 address");
    else
        snprintf(c->connect_ep, sizeof(c->connect_ep), "tcp://%s%s", addr, colon);
    if (req->ar_result)
        freeaddrinfo(req->ar_result);
    free(req), free(hints), free(node);
    return ret;
}

static int s_open(rf_client_t *c, uint64_t deadline, rf_err_t *err)
{
    if (!c->connect_ep[0]) {
        int rc = s_resolve(c, deadline, err);
        if (rc)
            return rc;
    }
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!c->sock)
        return rf_err_set(err, RF_EIO, "cannot create a socket: %s", zmq_strerror(errno));
    rf_zsock_setup(c->sock, ZMQ_DEALER, RF_CONTROL_MAX_FRAME);
    if (rf_zsec_apply(c->sock, &c->sec, NULL)) {
        zmq_close(c->sock);
        c->sock = NULL;
        return rf_err_set(err, RF_EIO, "cannot set the CURVE keys: %s", zmq_strerror(errno));
    }
    int one = 1;
    zmq_setsockopt(c->sock, ZMQ_IMMEDIATE, &one, sizeof(one));
    if (strstr(c->connect_ep, "://["))
        zmq_setsockopt(c->sock, ZMQ_IPV6, &one, sizeof(one));
    c->connected = false;
    /* Handshake events tell a refused key from an unreachable coordinator (s_handshake_verdict). */
    char mon_ep[64];
    snprintf(mon_ep, sizeof(mon_ep), "inproc://rf-client-monitor-%d", ++c->mon_seq);
    if (zmq_socket_monitor(c->sock, mon_ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) == 0) {
        c->mon = zmq_socket(c->zctx, ZMQ_PAIR);
        int zero = 0;
        if (c->mon && (zmq_setsockopt(c->mon, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
                       zmq_connect(c->mon, mon_ep) != 0)) {
            zmq_close(c->mon);
            c->mon = NULL;
        }
    }
    if (zmq_connect(c->sock, c->connect_ep) != 0) {
        int e = errno;
        if (c->mon)
            zmq_close(c->mon);
        c->mon = NULL;
        zmq_close(c->sock);
        c->sock = NULL;
        return rf_err_set(err, RF_EINVAL, "bad coordinator endpoint '%s': %s", c->endpoint,
                          zmq_strerror(e));
    }
    return 0;
}

static void s_drop_socket(rf_client_t *c)
{
    if (c->mon)
        zmq_close(c->mon);
    c->mon = NULL;
    if (c->sock)
        zmq_close(c->sock);
    c->sock = NULL;
    c->connected = false;
}

/* With CURVE, a refused key looks to the socket like a connection that never completes (libzmq
 * retries quietly). The socket's monitor says why: HANDSHAKE_FAILED_AUTH carries the ZAP status
 * (400 = refused by the allow-list), HANDSHAKE_FAILED_* a mechanism or key mismatch. Returns 0
 * when nothing conclusive happened, else an error naming the keys. */
static int s_handshake_verdict(rf_client_t *c, rf_err_t *err)
{
    while (c->mon) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, c->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return 0;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), 2);
            memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, 4);
        }
        bool more = zmq_msg_more(&ev);
        zmq_msg_close(&ev);
        if (more) {
            zmq_msg_init(&addr);
            zmq_msg_recv(&addr, c->mon, 0);
            zmq_msg_close(&addr);
        }
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            return rf_err_set(err, RF_EPERM,
                              "the coordinator at '%s' refused this client's CURVE key (public key %s, "
                              "ZAP status %u): it is not on the coordinator's allow-list, or its role "
                              "may not use this socket (docs/SECURITY.md)",
                              c->endpoint, c->sec.public_key, value);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            return rf_err_set(err, RF_EPERM,
                              "the CURVE handshake with the coordinator at '%s' failed: %s "
                              "(docs/SECURITY.md)",
                              c->endpoint,
                              c->sec.on ? "is coordinator.pub in the keys folder the coordinator's "
                                          "current public key?"
                                        : "it requires CURVE keys and this client has none (put "
                                          "coordinator.pub and client.key in the keys folder, or "
                                          "set REELFARM_KEYS)");
    }
    return 0;
}

/* Whether something accepts TCP connections at the resolved endpoint, asked with a plain
 * non-blocking connect() that gives up after wait_ms. Only for telling "nothing listens" from
 * "a listener that is slow to finish the ZeroMQ handshake" (a coordinator starved of CPU). */
static bool s_tcp_listening(const char *ep, int wait_ms)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *h = strncmp(ep, "tcp://", 6) ? NULL : ep + 6;
    const char *colon = h ? strrchr(h, ':') : NULL;
    if (!colon || (size_t)(colon - h) >= sizeof(host))
        return false;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - h), h);
    struct sockaddr_storage sa;
    memset(&sa, 0, sizeof(sa));
    socklen_t len;
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535)
        return false;
    if (host[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
        host[strlen(host) - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return false;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
            return false;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof(*s4);
    }
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool up = connect(fd, (struct sockaddr *)&sa, len) == 0;
    if (!up && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int soerr = 0;
        socklen_t slen = sizeof(soerr);
        up = poll(&pfd, 1, wait_ms) == 1 &&
             getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0;
    }
    close(fd);
    return up;
}

/* Waits until the socket has a connection up: until deadline (connect_ms after the call began)
 * when nothing is there, until longer_deadline when something accepts TCP connections but has
 * not finished the ZeroMQ handshake yet. */
static int s_wait_connected(rf_client_t *c, uint64_t deadline, uint64_t longer_deadline,
                            int connect_ms, rf_err_t *err)
{
    if (c->connected)
        return 0;
    int rc = s_poll(c->sock, ZMQ_POLLOUT, deadline, true);
    bool listening = false;
    if (rc == 0 && s_handshake_verdict(c, err)) {
        s_drop_socket(c);
        return err->code;
    }
    if (rc == 0 && (listening = s_tcp_listening(c->connect_ep, 300)))
        rc = s_poll(c->sock, ZMQ_POLLOUT, longer_deadline, true);
    if (rc == RF_ECANCELED)
        return rf_err_set(err, RF_ECANCELED, "interrupted");
    if (rc == 0) {
        if (s_handshake_verdict(c, err)) {
            s_drop_socket(c);
            return err->code;
        }
        s_drop_socket(c);
        if (listening)
            return rf_err_set(err, RF_EUNAVAIL,
                              "cannot reach the coordinator at '%s' (something accepts connections "
                              "there but did not complete a ZeroMQ handshake: another service on "
                              "that port?)",
                              c->endpoint);
        return rf_err_set(err, RF_EUNAVAIL,
                          "cannot reach the coordinator at '%s' (no connection within %d s; is "
                          "reelfarm-coordinator running there?)",
                          c->endpoint, connect_ms / 1000);
    }
    c->connected = true;
    return 0;
}

int rf_client_new(const char *endpoint, rf_client_t **out, rf_err_t *err)
{
    rf_zsec_t sec;
    int rc = rf_cli_curve(&sec, err);
    if (!rc)
        rc = rf_client_new_sec(endpoint, &sec, out, err);
    rf_zsec_clear(&sec);
    return rc;
}

int rf_client_new_sec(const char *endpoint, const rf_zsec_t *sec, rf_client_t **out, rf_err_t *err)
{
    rf_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (sec)
        c->sec = *sec;
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
    /* The socket is opened (and the name resolved) by the first call, within its deadline. */
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        free(c);
        return rf_err_set(err, RF_EIO, "cannot create a ZeroMQ context");
    }
    *out = c;
    return 0;
}

void rf_client_destroy(rf_client_t **cp)
{
    if (!cp || !*cp)
        return;
    s_drop_socket(*cp);
    zmq_ctx_term((*cp)->zctx);
    rf_zsec_clear(&(*cp)->sec);
    free(*cp);
    *cp = NULL;
}

int rf_client_call(rf_client_t *c, Reelfarm__Envelope *req, rf_msg_t **reply, int timeout_ms,
                   rf_err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = rf_msg_pack(req, RF_CONTROL_MAX_FRAME, &buf, &len);
    if (rc)
        return rf_err_set(err, rc, "request too large");
    int connect_ms = timeout_ms < RF_CLIENT_CONNECT_MS ? timeout_ms : RF_CLIENT_CONNECT_MS;
    /* Two tries: under ZMQ_IMMEDIATE a socket whose connection dropped since the last call (a
     * restarted coordinator) refuses the send with EAGAIN; a fresh socket then reconnects. Each try
     * is bounded by connect_ms. */
    for (int attempt = 0;; attempt++) {
        uint64_t connect_deadline = rf_now_ms() + (uint64_t)connect_ms;
        if (!c->sock && (rc = s_open(c, connect_deadline, err)) != 0) {
            free(buf);
            return rc;
        }
        uint64_t longer = connect_deadline - (uint64_t)connect_ms + (uint64_t)timeout_ms;
        if ((rc = s_wait_connected(c, connect_deadline, longer, connect_ms, err)) != 0) {
            free(buf);
            return rc;
        }
        if (zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) >= 0)
            break;
        int e = errno;
        s_drop_socket(c);
        if (e != EAGAIN || attempt == 1) {
            free(buf);
            return rf_err_set(err, e == EAGAIN ? RF_EUNAVAIL : RF_EIO, "sending to '%s': %s",
                              c->endpoint, zmq_strerror(e));
        }
    }
    uint64_t deadline = rf_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        rc = s_poll(c->sock, ZMQ_POLLIN, deadline, true);
        if (rc == RF_ECANCELED) {
            free(buf);
            return rf_err_set(err, RF_ECANCELED, "interrupted");
        }
        if (rc == 0) {
            free(buf);
            s_drop_socket(c);
            return rf_err_set(err, RF_EUNAVAIL,
                              "the coordinator at '%s' accepted the connection but did not answer "
                              "in %d s",
                              c->endpoint, timeout_ms / 1000);
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        /* Our own request back: a TCP connect to a closed local port can, rarely, connect to
         * itself (simultaneous open), and a DEALER talks happily to a DEALER. Nobody is there. */
        if (zmq_msg_size(&msg) == len && memcmp(zmq_msg_data(&msg), buf, len) == 0) {
            zmq_msg_close(&msg);
            free(buf);
            s_drop_socket(c);
            return rf_err_set(err, RF_EUNAVAIL, "cannot reach the coordinator at '%s' (the "
                              "connection looped back to this process)", c->endpoint);
        }
        free(buf);
        buf = NULL;
        rc = rf_msg_unpack(zmq_msg_data(&msg), zmq_msg_size(&msg), RF_CONTROL_MAX_FRAME,
                           RF_CODEC_BUDGET(zmq_msg_size(&msg)), reply);
        zmq_msg_close(&msg);
        if (rc)
            return rf_err_set(err, RF_EPROTO, "malformed reply from the coordinator");
        const Reelfarm__Envelope *env = rf_msg_env(*reply);
        if (env->body_case == REELFARM__ENVELOPE__BODY_ERROR) {
            rc = rf_err_set(err, env->error->code < 0 ? env->error->code : RF_EINVAL, "%s",
                            env->error->message ? env->error->message : "error");
            rf_msg_destroy(reply);
            return rc;
        }
        return 0;
    }
}

int rf_client_submit(rf_client_t *c, const char *path, char *job_id, size_t size, rf_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_err_set(err, RF_ENOENT, "'%s': %s", path, strerror(errno));
    char *yaml = malloc(RF_SPEC_MAX_BYTES + 1);
    size_t n = yaml ? fread(yaml, 1, RF_SPEC_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!yaml)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (n > RF_SPEC_MAX_BYTES) {
        free(yaml);
        return rf_err_set(err, RF_ETOOBIG, "'%s': larger than %d bytes", path, RF_SPEC_MAX_BYTES);
    }
    yaml[n] = '\0';
    char absdir[PATH_MAX], tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    const char *dir = slash ? (slash == tmp ? "/" : (*slash = '\0', tmp)) : ".";
    if (!realpath(dir, absdir)) {
        free(yaml);
        return rf_err_set(err, RF_ENOENT, "'%s': %s", dir, strerror(errno));
    }
    int rc = rf_client_submit_yaml(c, yaml, path, absdir, job_id, size, err);
    free(yaml);
    return rc;
}

int rf_client_submit_yaml(rf_client_t *c, const char *yaml, const char *source,
                          const char *base_dir, char *job_id, size_t size, rf_err_t *err)
{
    Reelfarm__SubmitJob sj = REELFARM__SUBMIT_JOB__INIT;
    sj.spec_yaml = (char *)yaml;
    sj.spec_path = (char *)source;
    sj.base_dir = (char *)base_dir;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_SUBMIT;
    env.submit = &sj;
    rf_msg_t *reply = NULL;
    int rc = rf_client_call(c, &env, &reply, RF_CLIENT_TIMEOUT_MS, err);
    if (rc)
        return rc;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case != REELFARM__ENVELOPE__BODY_SUBMIT_REPLY || !r->submit_reply->job_id) {
        rf_msg_destroy(&reply);
        return rf_err_set(err, RF_EPROTO, "unexpected reply to submit");
    }
    snprintf(job_id, size, "%s", r->submit_reply->job_id);
    rf_msg_destroy(&reply);
    return 0;
}

static void s_bar(const Reelfarm__JobStatus *st, bool tty)
{
    double frac = st->frames_total ? (double)st->frames_done / (double)st->frames_total : 0;
    if (frac > 1)
        frac = 1;
    if (tty) {
        char bar[31];
        int fill = (int)(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%-10s [%s] %3.0f%% %" PRIu64 "/%" PRIu64 " frames  chunks %u/%u  %.1f fps   ",
                st->state, bar, frac * 100, st->frames_done, st->frames_total, st->chunks_done,
                st->chunks_total, st->fps);
    } else {
        fprintf(stderr, "%s: %.0f%% %" PRIu64 "/%" PRIu64 " frames, chunks %u/%u, %.1f fps\n",
                st->state, frac * 100, st->frames_done, st->frames_total, st->chunks_done,
                st->chunks_total, st->fps);
    }
    fflush(stderr);
}

int rf_cli_follow(rf_client_t *c, const char *job_id, bool quiet, bool print_output,
                  uint64_t outage_ms, const volatile int *interrupt)
{
    bool tty = isatty(2);
    uint64_t last_line = 0;
    char last_state[32] = "";
    uint32_t last_done = UINT32_MAX;
    /* When the coordinator last answered: both callers follow a job the coordinator has just
     * accepted, so a restart right after the submit is ridden out like any later one. */
    uint64_t last_answer = rf_now_ms();
    for (;;) {
        if (interrupt && *interrupt) {
            Reelfarm__JobAction act = REELFARM__JOB_ACTION__INIT;
            act.job_id = (char *)job_id;
            act.action = "cancel";
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            env.body_case = REELFARM__ENVELOPE__BODY_JOB_ACTION;
            env.job_action = &act;
            rf_msg_t *reply = NULL;
            rf_err_t err = {0};
            if (!rf_client_call(c, &env, &reply, 2000, &err))
                rf_msg_destroy(&reply);
            if (!quiet)
                fprintf(stderr, "%sreelfarm: interrupted; job %s cancelled\n", tty ? "\n" : "", job_id);
            return RF_EXIT_INTERRUPTED;
        }
        Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
        q.job_id = (char *)job_id;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        env.body_case = REELFARM__ENVELOPE__BODY_JOB_QUERY;
        env.job_query = &q;
        rf_msg_t *reply = NULL;
        rf_err_t err = {0};
        int rc = rf_client_call(c, &env, &reply, RF_CLIENT_TIMEOUT_MS, &err);
        if (rc == RF_ECANCELED)
            continue; /* a signal: the loop head sees the interrupt flag */
        /* The coordinator answered before: a restart (or a loaded host). Ask again for up to
         * outage_ms. */
        if (rc == RF_EUNAVAIL && last_answer && rf_now_ms() - last_answer < outage_ms) {
            rf_sleep_ms(500);
            continue;
        }
        if (rc) {
            fprintf(stderr, "%sreelfarm: %s\n", tty && !quiet ? "\n" : "", err.msg);
            return rc == RF_EUNAVAIL ? RF_EXIT_UNREACHABLE : RF_EXIT_FAILED;
        }
        last_answer = rf_now_ms();
        const Reelfarm__Envelope *r = rf_msg_env(reply);
        if (r->body_case != REELFARM__ENVELOPE__BODY_JOB_STATUS) {
            rf_msg_destroy(&reply);
            fprintf(stderr, "reelfarm: unexpected reply from the coordinator\n");
            return RF_EXIT_FAILED;
        }
        const Reelfarm__JobStatus *st = r->job_status;
        bool terminal = !strcmp(st->state, "done") || !strcmp(st->state, "failed") ||
                        !strcmp(st->state, "cancelled");
        uint64_t now = rf_now_ms();
        /* Lines (not a TTY) only while work is under way: a job that fails before it starts
         * leaves just its one error line. */
        bool working = !strcmp(st->state, "running") || !strcmp(st->state, "stitching") ||
                       !strcmp(st->state, "done");
        if (!quiet && working &&
            (tty || strcmp(last_state, st->state) || last_done != st->chunks_done ||
             now - last_line > 5000)) {
            s_bar(st, tty);
            last_line = now;
            snprintf(last_state, sizeof(last_state), "%s", st->state);
            last_done = st->chunks_done;
        }
        if (terminal) {
            int code = RF_EXIT_OK;
            if (tty && !quiet && last_line)
                fputc('\n', stderr);
            if (!strcmp(st->state, "done")) {
                if (print_output)
                    printf("%s\n", st->output);
            } else {
                fprintf(stderr, "reelfarm: job %s ('%s') %s: %s\n", st->job_id, st->name, st->state,
                        st->message && *st->message ? st->message : "no reason given");
                code = RF_EXIT_FAILED;
            }
            rf_msg_destroy(&reply);
            fflush(stdout);
            return code;
        }
        rf_msg_destroy(&reply);
        rf_sleep_ms(tty ? 200 : 500);
    }
}
