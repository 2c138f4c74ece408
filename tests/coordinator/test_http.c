/* test_http.c - the coordinator's HTTP server (coordinator/http.h): the request parser and its
 * limits (table-driven), query and address helpers, JSON/label escaping, and the server itself on
 * a real loopback socket: snapshots, keep-alive and pipelining, 4xx answers, a stalled client
 * that does not block others, static files without traversal, tokens and bind rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <unistd.h>

#include <cmocka.h>

#include "http.h"
#include "log.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- parser table --------------------------------------------------------------------------- */

typedef struct s_parse_case {
    const char *what;
    const char *req;
    int want;         /* 0, RF_EAGAIN or an HTTP status */
    const char *path; /* when want == 0 */
    const char *query;
    bool head, keep_alive;
    const char *token;
} s_parse_case_t;

static const s_parse_case_t s_parse_cases[] = {
    {"plain GET", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 0, "/metrics", "", false, true, ""},
    {"HEAD", "HEAD /healthz HTTP/1.1\r\n\r\n", 0, "/healthz", "", true, true, ""},
    {"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", 0, "/", "", false, false, ""},
    {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, "/", "", false, true,
     ""},
    {"1.1 close", "GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", 0, "/", "", false, false, ""},
    {"query kept raw", "GET /a/b?x=1&token=t%20u HTTP/1.1\r\n\r\n", 0, "/a/b", "x=1&token=t%20u",
     false, true, ""},
    {"path decoded", "GET /api/jobs/j%2D1 HTTP/1.1\r\n\r\n", 0, "/api/jobs/j-1", "", false, true,
     ""},
    {"bearer", "GET / HTTP/1.1\r\nAuthorization: Bearer abc.DEF-123\r\n\r\n", 0, "/", "", false,
     true, "abc.DEF-123"},
    {"bare LF", "GET /x HTTP/1.1\nHost: y\n\n", 0, "/x", "", false, true, ""},
    {"zero body ok", "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, "/", "", false, true, ""},
    {"incomplete", "GET /metrics HTTP/1.1\r\nHost: x\r\n", RF_EAGAIN, NULL, NULL, false, false,
     NULL},
    {"empty", "", RF_EAGAIN, NULL, NULL, false, false, NULL},
    {"POST", "POST /metrics HTTP/1.1\r\n\r\n", 405, NULL, NULL, false, false, NULL},
    {"DELETE", "DELETE /api/jobs/x HTTP/1.1\r\n\r\n", 405, NULL, NULL, false, false, NULL},
    {"lowercase method", "get / HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"no target", "GET HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"relative target", "GET metrics HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"not http", "GARBAGE\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"http/2", "GET / HTTP/2.0\r\n\r\n", 505, NULL, NULL, false, false, NULL},
    {"http/1.2", "GET / HTTP/1.2\r\n\r\n", 505, NULL, NULL, false, false, NULL},
    {"bad escape", "GET /%zz HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"short escape", "GET /a% HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"NUL escape", "GET /a%00 HTTP/1.1\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"body", "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413, NULL, NULL, false, false,
     NULL},
    {"chunked", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 413, NULL, NULL, false,
     false, NULL},
    {"bad length", "GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, NULL, NULL, false, false,
     NULL},
    {"header no colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, NULL, NULL, false, false, NULL},
    {"header space name", "GET / HTTP/1.1\r\nHo st: x\r\n\r\n", 400, NULL, NULL, false, false,
     NULL},
    {"folded header", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, NULL, NULL, false, false, NULL},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < S_COUNT(s_parse_cases); i++) {
        const s_parse_case_t *c = &s_parse_cases[i];
        rf_http_request_t req;
        int rc = rf_http_parse(c->req, strlen(c->req), &req);
        if (rc != c->want)
            fail_msg("case '%s': got %d, want %d", c->what, rc, c->want);
        if (c->want != 0)
            continue;
        if (strcmp(req.path, c->path) || strcmp(req.query, c->query) || req.head != c->head ||
            req.keep_alive != c->keep_alive || strcmp(req.token, c->token))
            fail_msg("case '%s': path '%s' query '%s' head %d keep_alive %d token '%s'", c->what,
                     req.path, req.query, req.head, req.keep_alive, req.token);
        if (req.length != strlen(c->req) - (strstr(c->req, "hello") ? 5 : 0))
            fail_msg("case '%s': length %zu of %zu", c->what, req.length, strlen(c->req));
    }
}

/* Builds "GET /<target> HTTP/1.1\r\n<headers>\r\n" with generated parts. */
static char *s_make(size_t target_len, size_t nheaders, size_t header_len, bool complete)
{
    size_t cap = target_len + nheaders * (header_len + 16) + 64;
    char *r = malloc(cap);
    assert_non_null(r);
    size_t n = (size_t)snprintf(r, cap, "GET /");
    memset(r + n, 'a', target_len);
    n += target_len;
    n += (size_t)snprintf(r + n, cap - n, " HTTP/1.1\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        n += (size_t)snprintf(r + n, cap - n, "X-%zu: ", i);
        memset(r + n, 'v', header_len);
        n += header_len;
        n += (size_t)snprintf(r + n, cap - n, "\r\n");
    }
    if (complete)
        snprintf(r + n, cap - n, "\r\n");
    return r;
}

static void test_parse_limits(void **state)
{
    (void)state;
    struct {
        const char *what;
        size_t target, nheaders, header_len;
        bool complete;
        int want;
    } cases[] = {
        {"target at the limit", RF_HTTP_MAX_TARGET - 1, 0, 0, true, 0},
        {"target over the limit", RF_HTTP_MAX_TARGET + 1, 0, 0, true, 414},
        {"target over the limit, still coming", RF_HTTP_MAX_TARGET + 100, 0, 0, false, 414},
        {"headers at the count limit", 1, RF_HTTP_MAX_HEADERS, 4, true, 0},
        {"one header too many", 1, RF_HTTP_MAX_HEADERS + 1, 4, true, 431},
        {"request too large", 1, 2, RF_HTTP_MAX_REQUEST / 2, true, 431},
        {"too large and incomplete", 1, 2, RF_HTTP_MAX_REQUEST / 2, false, 431},
        {"small and incomplete", 1, 2, 10, false, RF_EAGAIN},
    };
    for (size_t i = 0; i < S_COUNT(cases); i++) {
        char *r =
            s_make(cases[i].target, cases[i].nheaders, cases[i].header_len, cases[i].complete);
        size_t len = strlen(r);
        /* The server never hands the parser more than its buffer holds. */
        if (len > RF_HTTP_MAX_REQUEST)
            len = RF_HTTP_MAX_REQUEST;
        rf_http_request_t req;
        int rc = rf_http_parse(r, len, &req);
        free(r);
        if (rc != cases[i].want)
            fail_msg("case '%s': got %d, want %d", cases[i].what, rc, cases[i].want);
    }
}

static void test_pipelined_length(void **state)
{
    (void)state;
    const char *two = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
    rf_http_request_t req;
    assert_int_equal(rf_http_parse(two, strlen(two), &req), 0);
    assert_string_equal(req.path, "/a");
    assert_int_equal(req.length, strlen("GET /a HTTP/1.1\r\n\r\n"));
    assert_int_equal(rf_http_parse(two + req.length, strlen(two) - req.length, &req), 0);
    assert_string_equal(req.path, "/b");
    const char *nul = "GET /a HTTP/1.1\r\nX: a\0b\r\n\r\n";
    assert_int_equal(rf_http_parse(nul, 27, &req), 400);
}

static void test_query_and_addresses(void **state)
{
    (void)state;
    char v[32];
    assert_true(rf_http_query_get("a=1&token=x%2By+z&b", "token", v, sizeof(v)));
    assert_string_equal(v, "x+y z");
    assert_true(rf_http_query_get("a=1&b", "b", v, sizeof(v)));
    assert_string_equal(v, "");
    assert_false(rf_http_query_get("tok=1&tokenx=2", "token", v, sizeof(v)));
    assert_false(rf_http_query_get("token=%zz", "token", v, sizeof(v)));
    assert_false(rf_http_query_get("token=0123456789", "token", v, 5));
    assert_false(rf_http_query_get("", "token", v, sizeof(v)));

    const struct {
        const char *host;
        bool loop;
    } hosts[] = {{"127.0.0.1", true}, {"127.9.8.7", true},  {"::1", true},
                 {"localhost", true}, {"0.0.0.0", false},   {"10.0.0.5", false},
                 {"::", false},       {"128.0.0.1", false}, {"example.org", false}};
    for (size_t i = 0; i < S_COUNT(hosts); i++)
        if (rf_http_host_is_loopback(hosts[i].host) != hosts[i].loop)
            fail_msg("host '%s': loopback should be %d", hosts[i].host, hosts[i].loop);

    const struct {
        const char *listen, *host;
        int port, rc;
    } ls[] = {{"127.0.0.1:7603", "127.0.0.1", 7603, 0},
              {"[::1]:80", "::1", 80, 0},
              {"0.0.0.0:0", "0.0.0.0", 0, 0},
              {"127.0.0.1", NULL, 0, RF_EINVAL},
              {":80", NULL, 0, RF_EINVAL},
              {"h:70000", NULL, 0, RF_EINVAL},
              {"h:-1", NULL, 0, RF_EINVAL},
              {"::1:80", NULL, 0, RF_EINVAL},
              {"[::1]80", NULL, 0, RF_EINVAL},
              {"h:8x", NULL, 0, RF_EINVAL},
              {"", NULL, 0, RF_EINVAL}};
    for (size_t i = 0; i < S_COUNT(ls); i++) {
        char host[64];
        int port = -1;
        rf_err_t err = {0};
        int rc = rf_http_split_listen(ls[i].listen, host, sizeof(host), &port, &err);
        if (rc != ls[i].rc)
            fail_msg("listen '%s': got %d, want %d", ls[i].listen, rc, ls[i].rc);
        if (rc == 0 && (strcmp(host, ls[i].host) || port != ls[i].port))
            fail_msg("listen '%s': host '%s' port %d", ls[i].listen, host, port);
        if (rc && !strstr(err.msg, "http listen address"))
            fail_msg("listen '%s': unclear message '%s'", ls[i].listen, err.msg);
    }
}

static void test_buf_escaping(void **state)
{
    (void)state;
    rf_buf_t b = {0};
    rf_buf_json_string(&b, "a\"b\\c\nd\x01\x7f\xc3\xa9");
    rf_buf_append(&b, " ", 1);
    rf_buf_label(&b, "w\"1\\\n");
    rf_buf_printf(&b, " %d", 42);
    size_t len = 0;
    char *s = rf_buf_take(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "\"a\\\"b\\\\c\\nd\\u0001\\u007f\xc3\xa9\" w\\\"1\\\\\\n 42");
    assert_int_equal(len, strlen(s));
    free(s);
    assert_null(b.data);
}

/* ---- the server on a real socket ------------------------------------------------------------- */

typedef struct s_fixture {
    char dir[64];
    rf_http_server_t *srv;
    int port;
} s_fixture_t;

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void s_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        data += n;
        len -= (size_t)n;
    }
}

/* Reads until `responses` complete responses (by Content-Length) arrived or the peer closed, 5 s
 * at most. Returns the bytes (malloc'd). */
static char *s_read_responses(int fd, int responses)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = calloc(1, cap + 1);
    assert_non_null(buf);
    for (;;) {
        int got = 0;
        const char *p = buf;
        while (got < responses) {
            const char *end = strstr(p, "\r\n\r\n");
            const char *cl = strstr(p, "Content-Length: ");
            if (!end || !cl || cl > end)
                break;
            size_t body = strtoul(cl + 16, NULL, 10);
            const char *next = end + 4;
            if ((size_t)(buf + len - next) < body)
                break; /* (a HEAD answer has no body: those requests say Connection: close) */
            p = next + ((size_t)(buf + len - next) >= body ? body : 0);
            got++;
        }
        if (got >= responses)
            return buf;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            return buf;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            return buf;
        len += (size_t)n;
        buf[len] = '\0';
    }
}

/* One request on a fresh connection; returns the whole response. */
static char *s_request(int port, const char *req)
{
    int fd = s_connect(port);
    s_send_all(fd, req, strlen(req));
    char *r = s_read_responses(fd, 1);
    close(fd);
    return r;
}

static int s_status(const char *resp)
{
    int st = 0;
    if (sscanf(resp, "HTTP/1.1 %d", &st) != 1)
        return -1;
    return st;
}

static rf_http_snapshot_t *s_snapshot(const char *metrics)
{
    rf_http_snapshot_t *s = rf_http_snapshot_new();
    assert_non_null(s);
    s->metrics = strdup(metrics);
    s->metrics_len = strlen(metrics);
    s->jobs_json = strdup("{\"jobs\":[{\"id\":\"j-1\"}]}");
    s->jobs_json_len = strlen(s->jobs_json);
    s->workers_json = strdup("{\"workers\":[]}");
    s->workers_json_len = strlen(s->workers_json);
    s->jobs = calloc(1, sizeof(*s->jobs));
    s->njobs = 1;
    snprintf(s->jobs[0].id, sizeof(s->jobs[0].id), "j-1");
    s->jobs[0].summary = strdup("\"name\":\"n\"");
    s->jobs[0].chunks = calloc(2, sizeof(*s->jobs[0].chunks));
    s->jobs[0].nchunks = 2;
    s->jobs[0].chunks[0].frame_end = 10;
    s->jobs[0].chunks[1] = (rf_http_chunk_ref_t){.index = 1,
                                                 .state = RF_HTTP_CHUNK_RUNNING,
                                                 .attempts = 2,
                                                 .frame_start = 10,
                                                 .frame_end = 30,
                                                 .frames_done = 5,
                                                 .fps = 12.5f,
                                                 .worker = "w\"1"};
    s->jobs[0].chunks[1].failed_on = strdup("w0");
    s->ready = true;
    return s;
}

static int s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/rf-test-http-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/web", f->dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/web/index.html", f->dir);
    s_write_file(path, "<!doctype html><title>t</title>");
    snprintf(path, sizeof(path), "%s/secret.txt", f->dir);
    s_write_file(path, "secret");
    snprintf(path, sizeof(path), "%s/web", f->dir);
    rf_http_config_t cfg = {.listen = "127.0.0.1:0", .web_dir = path, .state_dir = f->dir};
    rf_err_t err = {0};
    assert_int_equal(rf_http_server_new(&cfg, &f->srv, &err), 0);
    const char *url = rf_http_server_url(f->srv);
    assert_int_equal(strncmp(url, "http://127.0.0.1:", 17), 0);
    f->port = atoi(url + 17);
    assert_true(f->port > 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture_t *f = *state;
    rf_http_server_destroy(&f->srv);
    assert_null(f->srv);
    rf_http_server_destroy(&f->srv); /* idempotent */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void test_server_snapshots(void **state)
{
    s_fixture_t *f = *state;
    char *r = s_request(f->port, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    free(r);
    /* Nothing published yet: not ready, and the API asks to retry. */
    r = s_request(f->port, "GET /readyz HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 503);
    assert_non_null(strstr(r, "starting"));
    free(r);
    r = s_request(f->port, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 503);
    assert_non_null(strstr(r, "Retry-After: 1"));
    free(r);

    rf_http_snapshot_t *snap = s_snapshot("reelfarm_up 1\n");
    rf_http_publish(f->srv, &snap);
    assert_null(snap);
    r = s_request(f->port, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    assert_non_null(strstr(r, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(r, "\r\n\r\nreelfarm_up 1\n"));
    free(r);
    r = s_request(f->port, "GET /readyz HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    free(r);

    /* A newer snapshot replaces it; HEAD has the length but no body. */
    snap = s_snapshot("reelfarm_up 2\n");
    rf_http_publish(f->srv, &snap);
    r = s_request(f->port, "HEAD /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    assert_non_null(strstr(r, "Content-Length: 14\r\n"));
    assert_null(strstr(r, "reelfarm_up"));
    free(r);
    r = s_request(f->port, "GET /api/jobs/j-1 HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    /* Rendered by the server from the snapshot's plain chunk records. */
    assert_non_null(strstr(
        r, "{\"id\":\"j-1\",\"chunks\":[{\"index\":0,\"state\":\"queued\",\"frame_start\":0,"
           "\"frame_end\":10,\"frames\":10,\"frames_done\":0,\"attempts\":0,\"fps\":0.00,"
           "\"backup\":false,\"thumb\":false,\"worker\":\"\",\"failed_on\":\"\"},{\"index\":1,"
           "\"state\":\"running\",\"frame_start\":10,\"frame_end\":30,\"frames\":20,"
           "\"frames_done\":5,\"attempts\":2,\"fps\":12.50,\"backup\":false,\"thumb\":false,"
           "\"worker\":\"w\\\"1\",\"failed_on\":\"w0\"}],\"name\":\"n\"}\n"));
    free(r);
    const char *not_found[] = {"/api/jobs/nope",
                               "/api/jobs/j-1/chunks/5/thumb.jpg",
                               "/api/jobs/j-1/chunks/0/thumb.jpg",
                               "/api/jobs/j-1/chunks/x/thumb.jpg",
                               "/api/jobs/j-1/whatever",
                               "/api/nothing"};
    for (size_t i = 0; i < S_COUNT(not_found); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", not_found[i]);
        r = s_request(f->port, req);
        if (s_status(r) != 404)
            fail_msg("%s: %d, want 404", not_found[i], s_status(r));
        assert_non_null(strstr(r, "{\"error\":"));
        free(r);
    }
    r = s_request(f->port, "GET /api/jobs/j-1/frames/3.jpg?from=elsewhere HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 400);
    free(r);

    rf_http_set_unready(f->srv);
    snap = s_snapshot("reelfarm_up 3\n");
    rf_http_publish(f->srv, &snap);
    r = s_request(f->port, "GET /readyz HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 503);
    assert_non_null(strstr(r, "stopping"));
    free(r);
}

static void test_server_connections(void **state)
{
    s_fixture_t *f = *state;
    rf_http_snapshot_t *snap = s_snapshot("reelfarm_up 1\n");
    rf_http_publish(f->srv, &snap);

    /* Keep-alive and pipelining: three requests in one write, three answers in order. */
    int fd = s_connect(f->port);
    const char *three = "GET /healthz HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n"
                        "GET /api/workers HTTP/1.1\r\nConnection: close\r\n\r\n";
    s_send_all(fd, three, strlen(three));
    char *r = s_read_responses(fd, 3);
    const char *a = strstr(r, "ok\n"), *b = strstr(r, "reelfarm_up 1"),
               *c = strstr(r, "{\"workers\":[]}");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_true(a < b && b < c);
    assert_non_null(strstr(r, "Connection: close"));
    free(r);
    close(fd);

    /* A stalled client (half a request) does not hold up another one. */
    int stalled = s_connect(f->port);
    s_send_all(stalled, "GET /metr", 9);
    r = s_request(f->port, "GET /healthz HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    free(r);
    s_send_all(stalled, "ics HTTP/1.1\r\n\r\n", 16);
    r = s_read_responses(stalled, 1);
    assert_int_equal(s_status(r), 200);
    free(r);
    close(stalled);

    /* Bad requests: one clear answer, then the connection closes. */
    const struct {
        const char *req;
        int status;
    } bad[] = {{"POST /metrics HTTP/1.1\r\n\r\n", 405},
               {"GARBAGE\r\n\r\n", 400},
               {"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 413},
               {"GET / HTTP/3\r\n\r\n", 505}};
    for (size_t i = 0; i < S_COUNT(bad); i++) {
        r = s_request(f->port, bad[i].req);
        if (s_status(r) != bad[i].status)
            fail_msg("'%s': %d, want %d", bad[i].req, s_status(r), bad[i].status);
        assert_non_null(strstr(r, "Connection: close"));
        free(r);
    }
    r = s_request(f->port, "POST / HTTP/1.1\r\n\r\n");
    assert_non_null(strstr(r, "Allow: GET, HEAD"));
    free(r);
    /* Headers that never end: 431 once the buffer is full, even while the client keeps sending. */
    char *huge = s_make(1, 1, RF_HTTP_MAX_REQUEST * 2, false);
    fd = s_connect(f->port);
    s_send_all(fd, huge, strlen(huge));
    r = s_read_responses(fd, 1);
    assert_int_equal(s_status(r), 431);
    free(r);
    free(huge);
    close(fd);

    /* Static files: index at /, nothing outside the web folder. */
    r = s_request(f->port, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(s_status(r), 200);
    assert_non_null(strstr(r, "text/html"));
    assert_non_null(strstr(r, "<!doctype html>"));
    free(r);
    const char *refused[] = {"/../secret.txt",       "/%2e%2e/secret.txt", "/.hidden",
                             "/a//../../secret.txt", "/index.html%00",     "/missing.js"};
    for (size_t i = 0; i < S_COUNT(refused); i++) {
        char req[256];
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", refused[i]);
        r = s_request(f->port, req);
        if (s_status(r) != 404 && s_status(r) != 400)
            fail_msg("%s: %d, want 404 or 400", refused[i], s_status(r));
        assert_null(strstr(r, "secret\n"));
        assert_null(strstr(r, "\r\n\r\nsecret"));
        free(r);
    }
}

static void test_tokens_and_binding(void **state)
{
    (void)state;
    char dir[] = "/tmp/rf-test-http-tok-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char tok[128], shortf[128];
    snprintf(tok, sizeof(tok), "%s/token", dir);
    snprintf(shortf, sizeof(shortf), "%s/short", dir);
    s_write_file(tok, "  0123456789abcdef0123456789abcdef  \n second line ignored\n");
    s_write_file(shortf, "abc\n");
    rf_err_t err = {0};
    rf_http_server_t *srv = NULL;

    /* Non-loopback without a token: refused, naming the address and the fix. */
    rf_http_config_t cfg = {.listen = "0.0.0.0:0", .state_dir = dir};
    assert_int_equal(rf_http_server_new(&cfg, &srv, &err), RF_EPERM);
    assert_null(srv);
    assert_non_null(strstr(err.msg, "'0.0.0.0:0' is not loopback: set http.token_file"));
    /* A token file that is too short, or missing: refused. */
    cfg.token_file = shortf;
    assert_int_equal(rf_http_server_new(&cfg, &srv, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "16 to 255 printable"));
    cfg.token_file = "/nonexistent/token";
    assert_int_equal(rf_http_server_new(&cfg, &srv, &err), RF_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/token"));
    cfg.listen = "not-an-ip:80";
    cfg.token_file = tok;
    assert_int_equal(rf_http_server_new(&cfg, &srv, &err), RF_EINVAL);

    /* With a token (on loopback here, so the test needs no other interface). */
    cfg.listen = "127.0.0.1:0";
    assert_int_equal(rf_http_server_new(&cfg, &srv, &err), 0);
    int port = atoi(rf_http_server_url(srv) + 17);
    rf_http_snapshot_t *snap = s_snapshot("reelfarm_up 1\n");
    rf_http_publish(srv, &snap);
    const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET /metrics HTTP/1.1\r\n\r\n", 401},
        {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdeX\r\n\r\n",
         401},
        {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef\r\n\r\n", 401},
        {"GET /metrics?token=0123456789abcdef0123456789abcdef0 HTTP/1.1\r\n\r\n", 401},
        {"GET /api/jobs HTTP/1.1\r\n\r\n", 401},
        {"GET / HTTP/1.1\r\n\r\n", 401},
        {"GET /metrics HTTP/1.1\r\nAuthorization: Bearer 0123456789abcdef0123456789abcdef\r\n\r\n",
         200},
        {"GET /metrics?token=0123456789abcdef0123456789abcdef HTTP/1.1\r\n\r\n", 200},
        {"GET /healthz HTTP/1.1\r\n\r\n", 200},
        {"GET /readyz HTTP/1.1\r\n\r\n", 200},
    };
    for (size_t i = 0; i < S_COUNT(cases); i++) {
        char *r = s_request(port, cases[i].req);
        if (s_status(r) != cases[i].status)
            fail_msg("'%s': %d, want %d", cases[i].req, s_status(r), cases[i].status);
        if (cases[i].status == 401)
            assert_non_null(strstr(r, "WWW-Authenticate: Bearer"));
        free(r);
    }
    rf_http_server_destroy(&srv);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    rf_log_setup(RF_LOG_ERROR, RF_LOG_AUTO, 2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_pipelined_length),
        cmocka_unit_test(test_query_and_addresses),
        cmocka_unit_test(test_buf_escaping),
        cmocka_unit_test_setup_teardown(test_server_snapshots, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_server_connections, s_setup, s_teardown),
        cmocka_unit_test(test_tokens_and_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
