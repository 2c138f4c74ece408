/* http.c - the coordinator's HTTP server on its own thread and libuv loop (see http.h).
 *
 * Lifecycle: rf_http_server_new binds on the caller's thread (so a bad address is an error the
 * daemon reports before it starts), then the thread runs the loop until destroy sends stop_async;
 * the stop callback closes the listener, every connection and the timers, and the loop ends when
 * the last close callback and the last thumbnail job have run.
 */
#include "http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "blob.h"
#include "log.h"
#include "rftime.h"
#include "thumb.h"

#define COMP "http"
#define S_THUMB_WIDTH 320
#define S_FRAME_WIDTH 640
#define S_EVENTS_MAX 500
#define S_LINGER_MS 2000 /* after an error answer, unread input is drained this long at most */

/* ---- rf_buf ---------------------------------------------------------------------------------- */

static bool s_buf_reserve(rf_buf_t *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t ncap = b->cap ? b->cap : 1024;
    while (ncap < b->len + extra + 1)
        ncap *= 2;
    char *grown = realloc(b->data, ncap);
    if (!grown) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = ncap;
    return true;
}

void rf_buf_append(rf_buf_t *b, const char *s, size_t n)
{
    if (!s_buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rf_buf_printf(rf_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !s_buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void rf_buf_json_string(rf_buf_t *b, const char *s)
{
    rf_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        switch (*p) {
        case '"':
            rf_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rf_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rf_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rf_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rf_buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                rf_buf_printf(b, "\\u%04x", *p);
            else
                rf_buf_append(b, (const char *)p, 1);
        }
    }
    rf_buf_append(b, "\"", 1);
}

void rf_buf_label(rf_buf_t *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\')
            rf_buf_append(b, "\\\\", 2);
        else if (*p == '"')
            rf_buf_append(b, "\\\"", 2);
        else if (*p == '\n')
            rf_buf_append(b, "\\n", 2);
        else
            rf_buf_append(b, p, 1);
    }
}

char *rf_buf_take(rf_buf_t *b, size_t *len)
{
    char *out = NULL;
    if (!b->failed && s_buf_reserve(b, 0)) {
        out = b->data;
        *len = b->len;
        b->data = NULL;
    }
    rf_buf_release(b);
    return out;
}

void rf_buf_release(rf_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- parsing --------------------------------------------------------------------------------- */

static int s_hex(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes src[0..n) into out (size bytes); false when malformed, too long or it would
 * hold a NUL. plus_space: '+' means ' ' (query strings). */
static bool s_unescape(const char *src, size_t n, char *out, size_t size, bool plus_space)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)src[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return false;
            int h = s_hex((unsigned char)src[i + 1]), l = s_hex((unsigned char)src[i + 2]);
            if (h < 0 || l < 0)
                return false;
            ch = h * 16 + l;
            i += 2;
            if (ch == 0)
                return false;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (k + 1 >= size)
            return false;
        out[k++] = (char)ch;
    }
    out[k] = '\0';
    return true;
}

bool rf_http_query_get(const char *query, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);
    const char *p = query;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > klen && !strncmp(p, key, klen) && p[klen] == '=')
            return s_unescape(p + klen + 1, n - klen - 1, out, size, true);
        if (n == klen && !strncmp(p, key, klen))
            return s_unescape("", 0, out, size, true);
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* Case-insensitive header name compare over [name, name+n). */
static bool s_name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && !strncasecmp(name, want, n);
}

int rf_http_parse(const char *buf, size_t len, rf_http_request_t *req)
{
    memset(req, 0, sizeof(*req));
    /* The end of the headers: CRLF CRLF (a bare LF LF is accepted too, as most servers do). */
    size_t end = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n') {
            end = i + 2;
            break;
        }
        if (i + 3 < len && buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' &&
            buf[i + 3] == '\n') {
            end = i + 4;
            break;
        }
    }
    if (!end) {
        /* Fail early on a request line that is already too long or not HTTP at all. */
        const char *nl = memchr(buf, '\n', len);
        size_t line = nl ? (size_t)(nl - buf) : len;
        if (line > RF_HTTP_MAX_TARGET + 32)
            return 414;
        if (len >= RF_HTTP_MAX_REQUEST)
            return 431;
        return RF_EAGAIN;
    }
    if (end > RF_HTTP_MAX_REQUEST)
        return 431;
    for (size_t i = 0; i < end; i++)
        if (buf[i] == '\0')
            return 400;

    /* Request line: METHOD SP TARGET SP HTTP/1.x */
    const char *line_end = memchr(buf, '\n', end);
    size_t line_len = (size_t)(line_end - buf);
    if (line_len && buf[line_len - 1] == '\r')
        line_len--;
    const char *sp1 = memchr(buf, ' ', line_len);
    if (!sp1 || sp1 == buf)
        return 400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', line_len - (size_t)(target - buf));
    if (!sp2 || sp2 == target)
        return 400;
    const char *version = sp2 + 1;
    size_t vlen = line_len - (size_t)(version - buf);
    size_t mlen = (size_t)(sp1 - buf);
    for (size_t i = 0; i < mlen; i++)
        if (!isupper((unsigned char)buf[i]))
            return 400;
    if (vlen != 8 || strncmp(version, "HTTP/1.", 7) != 0) {
        if (vlen >= 5 && !strncmp(version, "HTTP/", 5))
            return 505;
        return 400;
    }
    if (version[7] != '0' && version[7] != '1')
        return 505;
    req->keep_alive = version[7] == '1';
    size_t tlen = (size_t)(sp2 - target);
    if (tlen > RF_HTTP_MAX_TARGET)
        return 414;
    if (target[0] != '/')
        return 400;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7f)
            return 400;
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    if (!s_unescape(target, plen, req->path, sizeof(req->path), false))
        return 400;
    if (q) {
        memcpy(req->query, q + 1, tlen - plen - 1);
        req->query[tlen - plen - 1] = '\0';
    }

    /* Headers. */
    bool get = mlen == 3 && !strncmp(buf, "GET", 3);
    bool head = mlen == 4 && !strncmp(buf, "HEAD", 4);
    int nheaders = 0;
    const char *p = line_end + 1;
    while (p < buf + end) {
        const char *nl = memchr(p, '\n', (size_t)(buf + end - p));
        size_t n = (size_t)(nl - p);
        if (n && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        if (++nheaders > RF_HTTP_MAX_HEADERS)
            return 431;
        if (*p == ' ' || *p == '\t')
            return 400; /* obsolete line folding (RFC 9112 §5.2) */
        const char *colon = memchr(p, ':', n);
        if (!colon || colon == p)
            return 400;
        size_t name_len = (size_t)(colon - p);
        for (size_t i = 0; i < name_len; i++)
            if (isspace((unsigned char)p[i]) || (unsigned char)p[i] < 0x21)
                return 400;
        const char *v = colon + 1;
        const char *vend = p + n;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        size_t value_len = (size_t)(vend - v);
        if (s_name_is(p, name_len, "Content-Length")) {
            for (size_t i = 0; i < value_len; i++)
                if (!isdigit((unsigned char)v[i]))
                    return 400;
            if (value_len == 0)
                return 400;
            bool zero = true;
            for (size_t i = 0; i < value_len; i++)
                zero &= v[i] == '0';
            if (!zero)
                return 413; /* a read-only API takes no body */
        } else if (s_name_is(p, name_len, "Transfer-Encoding")) {
            return 413;
        } else if (s_name_is(p, name_len, "Connection")) {
            if (value_len == 5 && !strncasecmp(v, "close", 5))
                req->keep_alive = false;
            else if (value_len == 10 && !strncasecmp(v, "keep-alive", 10))
                req->keep_alive = true;
        } else if (s_name_is(p, name_len, "Authorization")) {
            if (value_len > 7 && !strncasecmp(v, "Bearer ", 7)) {
                size_t tl = value_len - 7;
                if (tl >= sizeof(req->token))
                    return 400;
                memcpy(req->token, v + 7, tl);
                req->token[tl] = '\0';
            }
        }
        p = nl + 1;
    }
    if (!get && !head)
        return 405;
    req->head = head;
    req->length = end;
    return 0;
}

bool rf_http_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcasecmp(host, "localhost"))
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return false;
}

int rf_http_split_listen(const char *listen, char *host, size_t host_size, int *port, rf_err_t *err)
{
    const char *colon;
    size_t hlen;
    const char *hstart = listen;
    if (!listen || !*listen)
        return rf_err_set(err, RF_EINVAL, "http listen address is empty");
    if (listen[0] == '[') {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return rf_err_set(err, RF_EINVAL, "http listen address '%s': expected [V6ADDRESS]:PORT",
                              listen);
        hstart = listen + 1;
        hlen = (size_t)(close - hstart);
        colon = close + 1;
    } else {
        colon = strrchr(listen, ':');
        if (!colon || colon == listen || memchr(listen, ':', (size_t)(colon - listen)))
            return rf_err_set(err, RF_EINVAL,
                              "http listen address '%s': expected HOST:PORT such as 127.0.0.1:7603",
                              listen);
        hlen = (size_t)(colon - listen);
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535 || !isdigit((unsigned char)colon[1]))
        return rf_err_set(err, RF_EINVAL, "http listen address '%s': port must be 0..65535",
                          listen);
    if (hlen == 0 || hlen >= host_size)
        return rf_err_set(err, RF_EINVAL, "http listen address '%s': bad host", listen);
    memcpy(host, hstart, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}

/* ---- snapshots ------------------------------------------------------------------------------- */

const char *const rf_http_chunk_state_names[RF_HTTP_CHUNK_NSTATES] = {
    "queued", "retrying", "running", "verifying", "done", "failed"};

char *rf_http_job_json(const rf_http_job_doc_t *doc, size_t *len)
{
    rf_buf_t b = {0};
    rf_buf_printf(&b, "{\"id\":");
    rf_buf_json_string(&b, doc->id);
    rf_buf_printf(&b, ",\"chunks\":[");
    for (size_t i = 0; i < doc->nchunks && !b.failed; i++) {
        const rf_http_chunk_ref_t *ch = &doc->chunks[i];
        uint8_t st = ch->state < RF_HTTP_CHUNK_NSTATES ? ch->state : RF_HTTP_CHUNK_QUEUED;
        rf_buf_printf(&b,
                      "%s{\"index\":%u,\"state\":\"%s\",\"frame_start\":%" PRId64
                      ",\"frame_end\":%" PRId64 ",\"frames\":%" PRId64 ",\"frames_done\":%" PRIu64
                      ",\"attempts\":%u,\"fps\":%.2f,\"backup\":%s,\"thumb\":%s,\"worker\":",
                      i ? "," : "", ch->index, rf_http_chunk_state_names[st], ch->frame_start,
                      ch->frame_end, ch->frame_end - ch->frame_start, ch->frames_done, ch->attempts,
                      (double)ch->fps, ch->backup ? "true" : "false",
                      ch->result_blob[0] ? "true" : "false");
        rf_buf_json_string(&b, ch->worker);
        rf_buf_printf(&b, ",\"failed_on\":");
        rf_buf_json_string(&b, ch->failed_on ? ch->failed_on : "");
        rf_buf_printf(&b, "}");
    }
    rf_buf_printf(&b, "]%s%s}\n", doc->summary && *doc->summary ? "," : "",
                  doc->summary ? doc->summary : "");
    return rf_buf_take(&b, len);
}

rf_http_snapshot_t *rf_http_snapshot_new(void)
{
    return calloc(1, sizeof(rf_http_snapshot_t));
}

void rf_http_snapshot_destroy(rf_http_snapshot_t **snapp)
{
    if (!snapp || !*snapp)
        return;
    rf_http_snapshot_t *s = *snapp;
    free(s->metrics);
    free(s->jobs_json);
    free(s->workers_json);
    for (size_t i = 0; i < s->njobs; i++) {
        free(s->jobs[i].json);
        free(s->jobs[i].summary);
        for (size_t k = 0; s->jobs[i].chunks && k < s->jobs[i].nchunks; k++)
            free(s->jobs[i].chunks[k].failed_on);
        free(s->jobs[i].input);
        free(s->jobs[i].output);
        free(s->jobs[i].chunks);
    }
    free(s->jobs);
    free(s);
    *snapp = NULL;
}

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct s_conn s_conn_t;

struct rf_http_server {
    pthread_t thread;
    bool thread_started;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    char url[300];
    char *token;
    char *web_dir;
    char *state_dir;
    sqlite3 *db;              /* read-only, opened on first use, HTTP thread only */
    pthread_mutex_t lock;     /* guards snap, unready */
    rf_http_snapshot_t *snap; /* latest published, NULL before the first */
    bool unready;
    atomic_uint_fast64_t last_read_ms; /* see rf_http_last_read_ms */
    atomic_uint_fast64_t bad[3];       /* see rf_http_bad_requests */
    s_conn_t *conns;                   /* HTTP thread only */
    int nconns;
    int thumb_jobs;                          /* on the thread pool */
    struct s_thumb *queue_head, *queue_tail; /* waiting for a thread, FIFO */
    int queued;
    bool stopping;
};

struct s_conn {
    uv_tcp_t tcp;
    uv_timer_t idle;
    rf_http_server_t *srv;
    char buf[RF_HTTP_MAX_REQUEST];
    size_t len;
    int closes_pending; /* close callbacks still to come (tcp, idle) */
    bool closing;
    bool waiting; /* a thumbnail job answers this connection */
    bool keep_alive;
    bool draining; /* answered and shut down for writing: reading the rest, discarded */
    uv_shutdown_t shutdown;
    s_conn_t *prev, *next;
};

typedef struct s_write {
    uv_write_t req;
    s_conn_t *conn;
    char *head;              /* status line and headers */
    char *body;              /* owned body, or NULL */
    rf_http_snapshot_t *ref; /* body borrowed from this snapshot, or NULL */
    bool close_after;
} s_write_t;

typedef struct s_thumb {
    uv_work_t work;
    struct s_thumb *next; /* in the server's queue */
    s_conn_t *conn;
    bool head;
    char media[4400]; /* file to decode */
    int64_t index;
    int width;
    char cache[4400]; /* where the JPEG is kept */
    uint8_t *jpeg;
    size_t len;
    int rc;
    rf_err_t err;
} s_thumb_t;

static rf_http_snapshot_t *s_snap_get(rf_http_server_t *s)
{
    pthread_mutex_lock(&s->lock);
    rf_http_snapshot_t *snap = s->snap;
    if (snap)
        snap->refs++;
    pthread_mutex_unlock(&s->lock);
    return snap;
}

static void s_snap_put(rf_http_server_t *s, rf_http_snapshot_t *snap)
{
    if (!snap)
        return;
    pthread_mutex_lock(&s->lock);
    bool last = --snap->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last)
        rf_http_snapshot_destroy(&snap);
}

void rf_http_publish(rf_http_server_t *s, rf_http_snapshot_t **snapp)
{
    if (!s || !snapp || !*snapp)
        return;
    rf_http_snapshot_t *snap = *snapp, *old;
    *snapp = NULL;
    snap->refs = 1;
    pthread_mutex_lock(&s->lock);
    if (s->unready)
        snap->ready = false;
    old = s->snap;
    s->snap = snap;
    pthread_mutex_unlock(&s->lock);
    s_snap_put(s, old);
}

void rf_http_set_unready(rf_http_server_t *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->unready = true;
    pthread_mutex_unlock(&s->lock);
}

void rf_http_bad_requests(const rf_http_server_t *s, uint64_t out[3])
{
    for (int i = 0; i < 3; i++)
        out[i] = s ? atomic_load(&((rf_http_server_t *)s)->bad[i]) : 0;
}

uint64_t rf_http_last_read_ms(const rf_http_server_t *s)
{
    return atomic_load(&((rf_http_server_t *)s)->last_read_ms);
}

const char *rf_http_server_url(const rf_http_server_t *s)
{
    return s->url;
}

/* ---- connections ----------------------------------------------------------------------------- */

static void s_conn_closed(uv_handle_t *h)
{
    s_conn_t *c = h->data;
    if (--c->closes_pending > 0)
        return;
    rf_http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    free(c);
}

static void s_conn_close(s_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->waiting)
        return; /* closed when the thumbnail job ends (s_thumb_done) */
    c->closes_pending = 2;
    uv_close((uv_handle_t *)&c->tcp, s_conn_closed);
    uv_close((uv_handle_t *)&c->idle, s_conn_closed);
}

static void s_on_idle(uv_timer_t *t)
{
    s_conn_close(t->data);
}

static void s_process(s_conn_t *c);

static void s_shutdown_done(uv_shutdown_t *req, int status)
{
    s_conn_t *c = req->data;
    if (status < 0)
        s_conn_close(c);
}

/* Closing a socket with unread input makes the kernel send a reset, which can destroy the answer
 * before the client reads it (a 431 to a client still sending its huge headers). So: shut down
 * our side, read and discard what still comes, and close on EOF or after S_LINGER_MS. */
static void s_linger(s_conn_t *c)
{
    c->draining = true;
    c->len = 0;
    c->shutdown.data = c;
    uv_timer_start(&c->idle, s_on_idle, S_LINGER_MS, 0);
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, s_shutdown_done) != 0)
        s_conn_close(c);
}

static void s_written(uv_write_t *req, int status)
{
    s_write_t *w = (s_write_t *)req;
    s_conn_t *c = w->conn;
    bool close_after = w->close_after || status < 0;
    free(w->head);
    free(w->body);
    s_snap_put(c->srv, w->ref);
    free(w);
    if (c->closing)
        return;
    if (close_after) {
        if (status < 0)
            s_conn_close(c);
        else
            s_linger(c);
        return;
    }
    s_process(c); /* a pipelined request may already be in the buffer */
}

static const char *s_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Sends one response. body is either owned (freed after the write) or borrowed from ref. */
static void s_respond(s_conn_t *c, int status, const char *type, const char *extra_headers,
                      char *owned, const char *borrowed, size_t len, rf_http_snapshot_t *ref,
                      bool head_only, bool close_after)
{
    s_write_t *w = calloc(1, sizeof(*w));
    char head[1024];
    /* Requests refused for their form, for the metrics (rf_http_bad_requests). */
    int bad = status == 400 || status == 405 || status == 505   ? 0
              : status == 413 || status == 414 || status == 431 ? 1
              : status == 401                                   ? 2
                                                                : -1;
    if (bad >= 0)
        atomic_fetch_add(&c->srv->bad[bad], 1);
    if (!close_after && !c->keep_alive)
        close_after = true;
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                     status, s_reason(status), type, len, extra_headers ? extra_headers : "",
                     close_after ? "Connection: close\r\n" : "");
    if (!w || n < 0 || (size_t)n >= sizeof(head) || !(w->head = strdup(head))) {
        free(w);
        free(owned);
        s_snap_put(c->srv, ref);
        s_conn_close(c);
        return;
    }
    w->conn = c;
    w->body = owned;
    w->ref = ref;
    w->close_after = close_after;
    uv_buf_t bufs[2] = {uv_buf_init(w->head, (unsigned)strlen(w->head)),
                        uv_buf_init((char *)(owned ? owned : borrowed), (unsigned)len)};
    int nbufs = head_only || len == 0 ? 1 : 2;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, (unsigned)nbufs, s_written) < 0) {
        free(w->head);
        free(w->body);
        s_snap_put(c->srv, ref);
        free(w);
        s_conn_close(c);
    }
}

static void s_respond_text(s_conn_t *c, int status, const char *extra, bool head_only,
                           bool close_after, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void s_respond_text(s_conn_t *c, int status, const char *extra, bool head_only,
                           bool close_after, const char *fmt, ...)
{
    char *body = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    if (n < 0) {
        s_conn_close(c);
        return;
    }
    s_respond(c, status, "text/plain; charset=utf-8", extra, body, NULL, (size_t)n, NULL, head_only,
              close_after);
}

static void s_respond_json(s_conn_t *c, int status, bool head_only, rf_buf_t *b)
{
    size_t len = 0;
    char *body = rf_buf_take(b, &len);
    if (!body) {
        s_respond_text(c, 500, NULL, head_only, false, "out of memory\n");
        return;
    }
    s_respond(c, status, "application/json", NULL, body, NULL, len, NULL, head_only, false);
}

static void s_error_json(s_conn_t *c, int status, bool head_only, const char *msg)
{
    rf_buf_t b = {0};
    rf_buf_append(&b, "{\"error\":", 9);
    rf_buf_json_string(&b, msg);
    rf_buf_append(&b, "}\n", 2);
    size_t len = 0;
    char *body = rf_buf_take(&b, &len);
    if (!body) {
        s_conn_close(c);
        return;
    }
    s_respond(c, status, "application/json", NULL, body, NULL, len, NULL, head_only, false);
}

/* ---- static files ---------------------------------------------------------------------------- */

static const char *s_mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"},
                 {".jpg", "image/jpeg"},
                 {".ico", "image/x-icon"},
                 {".json", "application/json"}};
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

/* Reads a whole small file; RF_ENOENT, RF_ETOOBIG or RF_EIO. Blocking, but the web files are a
 * few kilobytes in the page cache: cheaper than a thread-pool hop. */
static int s_read_file(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? RF_ENOENT : RF_EIO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RF_ENOENT;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        return RF_ETOOBIG;
    }
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (data && got < (size_t)st.st_size) {
        ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!data || got != (size_t)st.st_size) {
        free(data);
        return RF_EIO;
    }
    *out = data;
    *len = got;
    return 0;
}

static void s_serve_static(s_conn_t *c, const rf_http_request_t *req)
{
    rf_http_server_t *s = c->srv;
    const char *rel = !strcmp(req->path, "/") ? "/index.html" : req->path;
    /* Only plain names: letters, digits, '-', '_', '.', '/' and no ".." or hidden files. */
    bool safe = s->web_dir != NULL && strlen(rel) < 256;
    for (const char *p = rel; safe && *p; p++)
        safe = isalnum((unsigned char)*p) || strchr("-_./", *p);
    if (safe && (strstr(rel, "..") || strstr(rel, "/.")))
        safe = false;
    if (!safe) {
        s_respond_text(c, 404, NULL, req->head, false, "not found: '%s'\n", req->path);
        return;
    }
    char path[4400];
    snprintf(path, sizeof(path), "%s%s", s->web_dir, rel);
    char *data = NULL;
    size_t len = 0;
    int rc = s_read_file(path, RF_HTTP_MAX_STATIC_BYTES, &data, &len);
    if (rc == RF_ENOENT) {
        s_respond_text(c, 404, NULL, req->head, false, "not found: '%s'\n", req->path);
        return;
    }
    if (rc) {
        s_respond_text(c, 500, NULL, req->head, false, "cannot read '%s': %s\n", rel,
                       rf_strerror(rc));
        return;
    }
    s_respond(c, 200, s_mime(rel), NULL, data, NULL, len, NULL, req->head, false);
}

/* ---- events (read-only SQLite) --------------------------------------------------------------- */

static int s_db(rf_http_server_t *s)
{
    if (s->db)
        return 0;
    char uri[4400];
    snprintf(uri, sizeof(uri), "file:%s/state.db?mode=ro", s->state_dir);
    if (sqlite3_open_v2(uri, &s->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) != SQLITE_OK) {
        RF_WARN(COMP, "cannot open '%s' read-only: %s", uri, sqlite3_errmsg(s->db));
        sqlite3_close(s->db);
        s->db = NULL;
        return RF_EDB;
    }
    sqlite3_busy_timeout(s->db, 500);
    return 0;
}

static void s_serve_events(s_conn_t *c, const rf_http_request_t *req, const char *job_id)
{
    rf_http_server_t *s = c->srv;
    sqlite3_stmt *st = NULL;
    rf_buf_t b = {0};
    if (s_db(s)) {
        s_error_json(c, 503, req->head, "the state database cannot be read");
        return;
    }
    rf_buf_printf(&b, "{\"job\":");
    rf_buf_json_string(&b, job_id);
    rf_buf_printf(&b, ",\"events\":[");
    /* The latest S_EVENTS_MAX, oldest first. */
    const char *ev_sql = "SELECT id, ts_ms, level, message FROM (SELECT * FROM events WHERE "
                         "job_id = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id";
    const char *at_sql = "SELECT idx, attempt, worker, started_ms, COALESCE(ended_ms, 0), "
                         "COALESCE(outcome, 'running'), COALESCE(message, '') FROM attempts "
                         "WHERE job_id = ?1 ORDER BY idx, attempt";
    int rc = sqlite3_prepare_v2(s->db, ev_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, S_EVENTS_MAX);
        for (int i = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; i++) {
            rf_buf_printf(&b, "%s{\"id\":%lld,\"ts_ms\":%lld,\"level\":", i ? "," : "",
                          (long long)sqlite3_column_int64(st, 0),
                          (long long)sqlite3_column_int64(st, 1));
            rf_buf_json_string(&b, (const char *)sqlite3_column_text(st, 2));
            rf_buf_printf(&b, ",\"message\":");
            rf_buf_json_string(&b, (const char *)sqlite3_column_text(st, 3));
            rf_buf_printf(&b, "}");
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (rc == SQLITE_DONE) {
        rf_buf_printf(&b, "],\"attempts\":[");
        rc = sqlite3_prepare_v2(s->db, at_sql, -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
        for (int i = 0; (rc = sqlite3_step(st)) == SQLITE_ROW; i++) {
            rf_buf_printf(&b, "%s{\"chunk\":%d,\"attempt\":%d,\"worker\":", i ? "," : "",
                          sqlite3_column_int(st, 0), sqlite3_column_int(st, 1));
            rf_buf_json_string(&b, (const char *)sqlite3_column_text(st, 2));
            rf_buf_printf(&b, ",\"started_ms\":%lld,\"ended_ms\":%lld,\"outcome\":",
                          (long long)sqlite3_column_int64(st, 3),
                          (long long)sqlite3_column_int64(st, 4));
            rf_buf_json_string(&b, (const char *)sqlite3_column_text(st, 5));
            rf_buf_printf(&b, ",\"reason\":");
            rf_buf_json_string(&b, (const char *)sqlite3_column_text(st, 6));
            rf_buf_printf(&b, "}");
        }
        sqlite3_finalize(st);
    }
    if (rc != SQLITE_DONE) {
        RF_WARN(COMP, "reading events of job %s: %s", job_id, sqlite3_errmsg(s->db));
        rf_buf_release(&b);
        s_error_json(c, 503, req->head, "the state database cannot be read now");
        return;
    }
    rf_buf_printf(&b, "]}\n");
    s_respond_json(c, 200, req->head, &b);
}

/* ---- thumbnails ------------------------------------------------------------------------------ */

static void s_thumb_run(uv_work_t *w)
{
    s_thumb_t *t = (s_thumb_t *)w;
    char *data = NULL;
    size_t len = 0;
    if (s_read_file(t->cache, 16 * 1024 * 1024, &data, &len) == 0) {
        t->jpeg = (uint8_t *)data;
        t->len = len;
        return;
    }
    t->rc = rf_thumb_jpeg(t->media, t->index, t->width, &t->jpeg, &t->len, &t->err);
    if (t->rc)
        return;
    /* Cache it: write a temp file and rename, so a concurrent reader never sees half a JPEG. */
    char tmp[4500];
    snprintf(tmp, sizeof(tmp), "%s.%lu.tmp", t->cache, (unsigned long)uv_thread_self());
    FILE *f = fopen(tmp, "wb");
    if (f) {
        bool ok = fwrite(t->jpeg, 1, t->len, f) == t->len;
        ok &= fclose(f) == 0;
        if (!ok || rename(tmp, t->cache) != 0)
            unlink(tmp);
    }
}

static void s_thumb_done(uv_work_t *w, int status);

/* Starts queued jobs while threads are free. A job whose client left is dropped unstarted. */
static void s_thumb_pump(rf_http_server_t *s)
{
    while (s->queue_head && s->thumb_jobs < RF_HTTP_THUMB_THREADS) {
        s_thumb_t *t = s->queue_head;
        s->queue_head = t->next;
        if (!s->queue_head)
            s->queue_tail = NULL;
        s->queued--;
        if (!t->conn->closing &&
            uv_queue_work(&s->loop, &t->work, s_thumb_run, s_thumb_done) == 0) {
            s->thumb_jobs++;
            continue;
        }
        t->rc = RF_ECANCELED;
        s->thumb_jobs++; /* s_thumb_done counts it back */
        s_thumb_done(&t->work, UV_ECANCELED);
    }
}

static void s_thumb_done(uv_work_t *w, int status)
{
    s_thumb_t *t = (s_thumb_t *)w;
    s_conn_t *c = t->conn;
    rf_http_server_t *s = c->srv;
    s->thumb_jobs--;
    c->waiting = false;
    if (c->closing) {
        c->closing = false;
        s_conn_close(c);
    } else if (status < 0) {
        s_respond_text(c, 503, NULL, t->head, false, "cancelled\n");
    } else if (t->rc) {
        RF_WARN(COMP, "preview of '%s' frame %" PRId64 ": %s", t->media, t->index, t->err.msg);
        s_respond_text(c, t->rc == RF_ENOENT ? 404 : 500, NULL, t->head, false, "%s\n", t->err.msg);
    } else {
        s_respond(c, 200, "image/jpeg", "Cache-Control: max-age=3600\r\n", (char *)t->jpeg, NULL,
                  t->len, NULL, t->head, false);
        t->jpeg = NULL;
    }
    free(t->jpeg);
    free(t);
    if (!s->stopping)
        s_thumb_pump(s);
}

/* Answers with a JPEG of frame `index` of `media`, from the cache or made on the thread pool. */
static void s_serve_jpeg(s_conn_t *c, const rf_http_request_t *req, const char *media,
                         int64_t index, int width, const char *cache_key)
{
    rf_http_server_t *s = c->srv;
    char cache[4400], *data = NULL;
    size_t len = 0;
    /* A cached JPEG is a small file read: no thread needed. */
    snprintf(cache, sizeof(cache), "%s/thumbs/%s.jpg", s->state_dir, cache_key);
    if (s_read_file(cache, 16 * 1024 * 1024, &data, &len) == 0) {
        utimes(cache, NULL); /* still in use: keep it past the next expiry */
        s_respond(c, 200, "image/jpeg", "Cache-Control: max-age=3600\r\n", data, NULL, len, NULL,
                  req->head, false);
        return;
    }
    if (access(media, R_OK) != 0) {
        s_respond_text(c, 404, NULL, req->head, false, "'%s' is not available (%s)\n", media,
                       strerror(errno));
        return;
    }
    if (s->queued >= RF_HTTP_MAX_THUMB_QUEUE) {
        s_respond_text(c, 503, "Retry-After: 1\r\n", req->head, false,
                       "busy making other previews; try again\n");
        return;
    }
    s_thumb_t *t = calloc(1, sizeof(*t));
    if (!t) {
        s_respond_text(c, 500, NULL, req->head, false, "out of memory\n");
        return;
    }
    t->conn = c;
    t->head = req->head;
    snprintf(t->media, sizeof(t->media), "%s", media);
    t->index = index;
    t->width = width;
    snprintf(t->cache, sizeof(t->cache), "%s", cache);
    if (s->queue_tail)
        s->queue_tail->next = t;
    else
        s->queue_head = t;
    s->queue_tail = t;
    s->queued++;
    c->waiting = true;
    s_thumb_pump(s);
}

static const rf_http_job_doc_t *s_job_doc(const rf_http_snapshot_t *snap, const char *id)
{
    for (size_t i = 0; snap && i < snap->njobs; i++)
        if (!strcmp(snap->jobs[i].id, id))
            return &snap->jobs[i];
    return NULL;
}

/* A decimal number filling [s, s+n) completely, 0..10^12. */
static bool s_number(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 12)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static void s_serve_chunk_thumb(s_conn_t *c, const rf_http_request_t *req,
                                const rf_http_job_doc_t *job, int64_t idx)
{
    if (idx < 0 || (size_t)idx >= job->nchunks) {
        s_error_json(c, 404, req->head, "no such chunk");
        return;
    }
    const rf_http_chunk_ref_t *ch = &job->chunks[idx];
    if (!ch->result_blob[0]) {
        s_error_json(c, 404, req->head, "this chunk has no verified result yet");
        return;
    }
    char media[4400], key[200];
    snprintf(media, sizeof(media), "%s/blobs/%s", c->srv->state_dir, ch->result_blob);
    int64_t frames = ch->frame_end - ch->frame_start - ch->head_overlap;
    int64_t mid = frames > 0 ? frames / 2 : 0;
    snprintf(key, sizeof(key), "%s-mid-%d", ch->result_blob, S_THUMB_WIDTH);
    char cache[4400];
    snprintf(cache, sizeof(cache), "%s/thumbs/%s.jpg", c->srv->state_dir, key);
    if (access(media, R_OK) != 0 && access(cache, R_OK) != 0 && job->done && job->output) {
        /* A finished job's chunk results are deleted: the same frame of the output serves. */
        snprintf(key, sizeof(key), "out-%s-%" PRId64 "-%d", job->id,
                 ch->frame_start + ch->head_overlap + mid, S_THUMB_WIDTH);
        s_serve_jpeg(c, req, job->output, ch->frame_start + ch->head_overlap + mid, S_THUMB_WIDTH,
                     key);
        return;
    }
    s_serve_jpeg(c, req, media, mid, S_THUMB_WIDTH, key);
}

static void s_serve_frame(s_conn_t *c, const rf_http_request_t *req, const rf_http_job_doc_t *job,
                          int64_t frame)
{
    char from[16] = "source", media[4400], key[300];
    if (req->query[0] && rf_http_query_get(req->query, "from", from, sizeof(from)) &&
        strcmp(from, "source") && strcmp(from, "result")) {
        s_error_json(c, 400, req->head, "'from' must be 'source' or 'result'");
        return;
    }
    if (!strcmp(from, "source")) {
        snprintf(media, sizeof(media), "%s", job->input ? job->input : "");
        snprintf(key, sizeof(key), "src-%s-%" PRId64, job->id, frame);
        s_serve_jpeg(c, req, media, frame, S_FRAME_WIDTH, key);
        return;
    }
    if (job->done && job->output) {
        snprintf(key, sizeof(key), "out-%s-%" PRId64, job->id, frame);
        s_serve_jpeg(c, req, job->output, frame, S_FRAME_WIDTH, key);
        return;
    }
    for (size_t i = 0; i < job->nchunks; i++) {
        const rf_http_chunk_ref_t *ch = &job->chunks[i];
        if (frame < ch->frame_start || frame >= ch->frame_end)
            continue;
        if (!ch->result_blob[0]) {
            s_error_json(c, 404, req->head, "the chunk holding this frame has no result yet");
            return;
        }
        int64_t local = frame - ch->frame_start - ch->head_overlap;
        snprintf(media, sizeof(media), "%s/blobs/%s", c->srv->state_dir, ch->result_blob);
        snprintf(key, sizeof(key), "%s-%" PRId64 "-%d", ch->result_blob, local < 0 ? 0 : local,
                 S_FRAME_WIDTH);
        s_serve_jpeg(c, req, media, local < 0 ? 0 : local, S_FRAME_WIDTH, key);
        return;
    }
    s_error_json(c, 404, req->head, "no chunk holds this frame");
}

/* /api/jobs/ID[/events|/chunks/N/thumb.jpg|/frames/F.jpg] */
static void s_serve_job(s_conn_t *c, const rf_http_request_t *req, rf_http_snapshot_t *snap,
                        const char *rest)
{
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    char id[40];
    if (idlen == 0 || idlen >= sizeof(id)) {
        s_error_json(c, 404, req->head, "no such job");
        return;
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    const rf_http_job_doc_t *job = s_job_doc(snap, id);
    if (!job) {
        s_error_json(c, 404, req->head, "no such job");
        return;
    }
    const char *sub = slash + 1;
    if (!strcmp(sub, "events")) {
        s_serve_events(c, req, id);
        return;
    }
    int64_t n = -1;
    if (!strncmp(sub, "chunks/", 7)) {
        const char *num = sub + 7;
        const char *tail = strchr(num, '/');
        if (tail && !strcmp(tail, "/thumb.jpg") && s_number(num, (size_t)(tail - num), &n)) {
            s_serve_chunk_thumb(c, req, job, n);
            return;
        }
    } else if (!strncmp(sub, "frames/", 7)) {
        const char *num = sub + 7;
        const char *dot = strstr(num, ".jpg");
        if (dot && !dot[4] && s_number(num, (size_t)(dot - num), &n)) {
            s_serve_frame(c, req, job, n);
            return;
        }
    }
    s_error_json(c, 404, req->head, "no such resource");
}

static bool s_authorized(rf_http_server_t *s, const rf_http_request_t *req)
{
    if (!s->token)
        return true;
    char given[256] = "";
    if (req->token[0])
        snprintf(given, sizeof(given), "%s", req->token);
    else if (!rf_http_query_get(req->query, "token", given, sizeof(given)))
        return false;
    size_t n = strlen(s->token);
    return strlen(given) == n && sodium_memcmp(given, s->token, n) == 0;
}

static void s_route(s_conn_t *c, const rf_http_request_t *req)
{
    rf_http_server_t *s = c->srv;
    const char *path = req->path;
    if (!strcmp(path, "/healthz")) {
        s_respond_text(c, 200, NULL, req->head, false, "ok\n");
        return;
    }
    if (!strcmp(path, "/readyz")) {
        rf_http_snapshot_t *snap = s_snap_get(s);
        bool ready = snap && snap->ready;
        s_snap_put(s, snap);
        if (ready)
            s_respond_text(c, 200, NULL, req->head, false, "ready\n");
        else
            s_respond_text(c, 503, NULL, req->head, false, "not ready: %s\n",
                           snap ? "stopping" : "starting");
        return;
    }
    if (!s_authorized(s, req)) {
        s_respond_text(c, 401, "WWW-Authenticate: Bearer realm=\"reelfarm\"\r\n", req->head, false,
                       "a token is required: 'Authorization: Bearer TOKEN' or ?token=TOKEN\n");
        return;
    }
    bool api = !strncmp(path, "/api/", 5);
    if (strcmp(path, "/metrics") && !api) {
        s_serve_static(c, req);
        return;
    }
    if (api)
        atomic_store(&s->last_read_ms, rf_now_ms()); /* someone watches the dashboard */
    rf_http_snapshot_t *snap = s_snap_get(s);
    if (!snap) {
        s_respond_text(c, 503, "Retry-After: 1\r\n", req->head, false,
                       "the coordinator has not published its state yet\n");
        return;
    }
    if (!strcmp(path, "/metrics")) {
        s_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL, snap->metrics,
                  snap->metrics_len, snap, req->head, false);
        return;
    }
    if (!strcmp(path, "/api/jobs")) {
        s_respond(c, 200, "application/json", NULL, NULL, snap->jobs_json, snap->jobs_json_len,
                  snap, req->head, false);
        return;
    }
    if (!strcmp(path, "/api/workers")) {
        s_respond(c, 200, "application/json", NULL, NULL, snap->workers_json,
                  snap->workers_json_len, snap, req->head, false);
        return;
    }
    if (!strncmp(path, "/api/jobs/", 10)) {
        const char *rest = path + 10;
        const char *slash = strchr(rest, '/');
        size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
        char id[40];
        const rf_http_job_doc_t *job = NULL;
        if (idlen && idlen < sizeof(id)) {
            memcpy(id, rest, idlen);
            id[idlen] = '\0';
            job = s_job_doc(snap, id);
        }
        if (job && !slash) {
            /* Rendered once per snapshot by the first request that wants it and kept in it
             * (only this thread touches it); the write keeps our reference until it is sent. */
            rf_http_job_doc_t *doc = (rf_http_job_doc_t *)job;
            if (!doc->json)
                doc->json = rf_http_job_json(doc, &doc->json_len);
            if (!doc->json) {
                s_snap_put(s, snap);
                s_respond_text(c, 500, NULL, req->head, false, "out of memory\n");
                return;
            }
            s_respond(c, 200, "application/json", NULL, NULL, doc->json, doc->json_len, snap,
                      req->head, false);
            return;
        }
        if (job) {
            s_serve_job(c, req, snap, rest);
            s_snap_put(s, snap);
            return;
        }
    }
    s_snap_put(s, snap);
    s_error_json(c, 404, req->head, "no such resource");
}

/* Handles every complete request in the buffer, one at a time (pipelining answers in order). */
static void s_process(s_conn_t *c)
{
    while (!c->closing && !c->waiting && !c->draining && c->len > 0) {
        rf_http_request_t req;
        int rc = rf_http_parse(c->buf, c->len, &req);
        if (rc == RF_EAGAIN)
            return;
        if (rc > 0) {
            c->keep_alive = false;
            s_respond_text(c, rc, rc == 405 ? "Allow: GET, HEAD\r\n" : NULL, false, true,
                           "%d %s: this server answers GET and HEAD requests of at most %d bytes "
                           "without a body\n",
                           rc, s_reason(rc), RF_HTTP_MAX_REQUEST);
            c->len = 0;
            c->draining = true; /* whatever else comes is not parsed */
            return;
        }
        c->keep_alive = req.keep_alive;
        memmove(c->buf, c->buf + req.length, c->len - req.length);
        c->len -= req.length;
        uv_timer_again(&c->idle);
        s_route(c, &req);
        return; /* the next request is handled when this response is written (s_written) */
    }
}

static void s_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    s_conn_t *c = h->data;
    (void)suggested;
    size_t room = sizeof(c->buf) - c->len;
    if (room == 0) {
        /* Full buffer without a complete request: s_process answered 431; read nothing more. */
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(c->buf + c->len, (unsigned)room);
}

static void s_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
    s_conn_t *c = stream->data;
    (void)buf;
    if (n < 0) {
        s_conn_close(c);
        return;
    }
    if (c->draining) {
        c->len = 0;
        return;
    }
    c->len += (size_t)n;
    if (c->waiting)
        return; /* buffered; processed after the current response */
    s_process(c);
}

static void s_on_connection(uv_stream_t *server, int status)
{
    rf_http_server_t *s = server->data;
    if (status < 0 || s->stopping)
        return;
    s_conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = s;
    uv_tcp_init(&s->loop, &c->tcp);
    uv_timer_init(&s->loop, &c->idle);
    c->tcp.data = c->idle.data = c;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->nconns > RF_HTTP_MAX_CONNECTIONS) {
        s_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->idle, s_on_idle, RF_HTTP_IDLE_TIMEOUT_MS, RF_HTTP_IDLE_TIMEOUT_MS);
    uv_read_start((uv_stream_t *)&c->tcp, s_alloc, s_on_read);
}

/* ---- thread and lifecycle ------------------------------------------------------------------- */

/* The preview cache would otherwise only grow: at start, previews not made or served for
 * RF_HTTP_THUMB_MAX_AGE_S are deleted (a served one is touched, see s_serve_jpeg). */
static void s_thumbs_expire(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    time_t now = time(NULL);
    size_t removed = 0;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[4700];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > RF_HTTP_THUMB_MAX_AGE_S)
            removed += unlink(path) == 0;
    }
    closedir(d);
    if (removed)
        RF_INFO(COMP, "removed %zu previews not used for %d days", removed,
                RF_HTTP_THUMB_MAX_AGE_S / 86400);
}

static void s_noop_close(uv_handle_t *h)
{
    (void)h;
}

static void s_on_stop(uv_async_t *a)
{
    rf_http_server_t *s = a->data;
    s->stopping = true;
    while (s->queue_head) {
        s_thumb_t *t = s->queue_head;
        s->queue_head = t->next;
        t->conn->waiting = false;
        t->conn->closing = false;
        s_conn_close(t->conn);
        free(t);
    }
    s->queue_tail = NULL;
    s->queued = 0;
    uv_close((uv_handle_t *)&s->listener, s_noop_close);
    uv_close((uv_handle_t *)&s->stop_async, s_noop_close);
    for (s_conn_t *c = s->conns; c; c = c->next)
        s_conn_close(c);
}

static void *s_thread(void *arg)
{
    rf_http_server_t *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

static char *s_dup(const char *v)
{
    return v && *v ? strdup(v) : NULL;
}

bool rf_http_find_web_dir(const char *exe_dir, char *out, size_t size)
{
    static const char *const rel[] = {"/../share/reelfarm/web", "/../../web", "/web"};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        char probe[4400], *real;
        snprintf(probe, sizeof(probe), "%s%s/index.html", exe_dir, rel[i]);
        if (access(probe, R_OK) != 0)
            continue;
        snprintf(probe, sizeof(probe), "%s%s", exe_dir, rel[i]);
        real = realpath(probe, NULL);
        if (!real)
            continue;
        snprintf(out, size, "%s", real);
        free(real);
        return true;
    }
    return false;
}

int rf_http_read_token(const char *path, char *out, size_t size, rf_err_t *err)
{
    char line[512] = "";
    FILE *f = fopen(path, "r");
    if (!f)
        return rf_err_set(err, RF_EIO, "http token file '%s': %s", path, strerror(errno));
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    char *p = line, *end;
    while (*p == ' ' || *p == '\t')
        p++;
    end = p + strlen(p);
    while (end > p && isspace((unsigned char)end[-1]))
        *--end = '\0';
    size_t n = strlen(p);
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        printable &= isgraph((unsigned char)p[i]) != 0;
    if (!got || n < 16 || n > 255 || n >= size || !printable) {
        sodium_memzero(line, sizeof(line));
        return rf_err_set(err, RF_ECONFIG,
                          "http token file '%s': expected one line of 16 to 255 printable "
                          "characters (e.g. `openssl rand -hex 32`)",
                          path);
    }
    memcpy(out, p, n + 1);
    sodium_memzero(line, sizeof(line));
    return 0;
}

int rf_http_server_new(const rf_http_config_t *cfg, rf_http_server_t **out, rf_err_t *err)
{
    char host[256], token[256] = "", web[4096] = "";
    int port = 0, rc;
    struct sockaddr_storage addr;
    *out = NULL;
    rc = rf_http_split_listen(cfg->listen, host, sizeof(host), &port, err);
    if (rc)
        return rc;
    if (cfg->token_file && *cfg->token_file) {
        rc = rf_http_read_token(cfg->token_file, token, sizeof(token), err);
        if (rc)
            return rc;
    }
    if (!rf_http_host_is_loopback(host) && !token[0])
        return rf_err_set(err, RF_EPERM,
                          "http listen address '%s' is not loopback: set http.token_file so "
                          "only holders of the token can read the farm (or listen on 127.0.0.1)",
                          cfg->listen);
    if (!cfg->web_dir || !*cfg->web_dir) {
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            exe[n] = '\0';
            char *slash = strrchr(exe, '/');
            if (slash)
                *slash = '\0';
            if (!rf_http_find_web_dir(exe, web, sizeof(web)))
                web[0] = '\0';
        }
    } else {
        snprintf(web, sizeof(web), "%s", cfg->web_dir);
    }
    if (!strcasecmp(host, "localhost"))
        snprintf(host, sizeof(host), "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0)
        return rf_err_set(err, RF_EINVAL, "http listen address '%s': '%s' is not an IP address",
                          cfg->listen, host);
    rf_http_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    s->token = s_dup(token);
    s->web_dir = s_dup(web);
    sodium_memzero(token, sizeof(token));
    if (!s->web_dir)
        RF_WARN(COMP, "no dashboard files found (set http.web_dir): serving the API only");
    s->state_dir = s_dup(cfg->state_dir);
    if (uv_loop_init(&s->loop) != 0) {
        rc = rf_err_set(err, RF_EIO, "cannot create the http event loop");
        goto fail_free;
    }
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int uvrc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (uvrc == 0)
        uvrc = uv_listen((uv_stream_t *)&s->listener, 128, s_on_connection);
    if (uvrc != 0) {
        rc = rf_err_set(err, RF_EIO, "cannot listen for http on '%s': %s", cfg->listen,
                        uv_strerror(uvrc));
        goto fail_loop;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    char ip[64] = "";
    uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen);
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, ip, sizeof(ip));
        snprintf(s->url, sizeof(s->url), "http://[%s]:%d", ip,
                 ntohs(((struct sockaddr_in6 *)&bound)->sin6_port));
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, ip, sizeof(ip));
        snprintf(s->url, sizeof(s->url), "http://%s:%d", ip,
                 ntohs(((struct sockaddr_in *)&bound)->sin_port));
    }
    uv_async_init(&s->loop, &s->stop_async, s_on_stop);
    s->stop_async.data = s;
    if (s->state_dir) {
        char thumbs[4400];
        snprintf(thumbs, sizeof(thumbs), "%s/thumbs", s->state_dir);
        if (mkdir(thumbs, 0700) != 0 && errno != EEXIST)
            RF_WARN(COMP, "cannot create '%s' (%s): previews will not be cached", thumbs,
                    strerror(errno));
        else
            s_thumbs_expire(thumbs);
    }
    if (pthread_create(&s->thread, NULL, s_thread, s) != 0) {
        rc = rf_err_set(err, RF_EIO, "cannot start the http thread");
        uv_close((uv_handle_t *)&s->stop_async, NULL);
        goto fail_loop;
    }
    s->thread_started = true;
    *out = s;
    return 0;

fail_loop:
    uv_close((uv_handle_t *)&s->listener, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
fail_free:
    pthread_mutex_destroy(&s->lock);
    free(s->token);
    free(s->web_dir);
    free(s->state_dir);
    free(s);
    return rc;
}

void rf_http_server_destroy(rf_http_server_t **sp)
{
    if (!sp || !*sp)
        return;
    rf_http_server_t *s = *sp;
    if (s->thread_started) {
        uv_async_send(&s->stop_async);
        pthread_join(s->thread, NULL);
    }
    uv_loop_close(&s->loop);
    sqlite3_close(s->db);
    if (s->snap) {
        s->snap->refs = 1;
        s_snap_put(s, s->snap);
    }
    pthread_mutex_destroy(&s->lock);
    if (s->token)
        sodium_memzero(s->token, strlen(s->token));
    free(s->token);
    free(s->web_dir);
    free(s->state_dir);
    free(s);
    *sp = NULL;
}
