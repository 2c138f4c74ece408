/* http.h - the coordinator's read-only HTTP server: /metrics, /healthz, /readyz, a JSON API and the
 * dashboard's static files (docs/OBSERVABILITY.md).
 *
 * It runs on its own thread with its own libuv loop, so a slow or hostile HTTP client can never
 * delay a heartbeat. It never touches the scheduler's state: the coordinator loop publishes an
 * immutable snapshot (rf_http_snapshot_t: the Prometheus text and the JSON documents, already
 * rendered) every few hundred milliseconds with rf_http_publish, and requests are answered from
 * the latest one, held by reference count so publishing never waits for a slow reader. The only
 * other things it reads are the state database (events and attempts, through its own read-only
 * SQLite connection; WAL readers never block the writer), result blobs and media files (for
 * JPEG thumbnails, made on the HTTP loop's thread pool and cached under <state>/thumbs), and the
 * web folder.
 *
 * HTTP/1.1, GET and HEAD only, one request per connection read at a time (keep-alive supported),
 * every limit named below; a bad request gets one clear 4xx answer and the connection is closed.
 * Bind rules: loopback unless configured; any other address needs a token (Bearer header or
 * ?token=), checked in constant time on every path but /healthz and /readyz.
 */
#ifndef RF_HTTP_H
#define RF_HTTP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_HTTP_MAX_REQUEST 8192       /* request line + headers; more is 431 (or 413 with a body) */
#define RF_HTTP_MAX_TARGET 2048        /* request target; longer is 414 */
#define RF_HTTP_MAX_HEADERS 64         /* header lines; more is 431 */
#define RF_HTTP_MAX_CONNECTIONS 256    /* open connections; more are closed at once */
#define RF_HTTP_IDLE_TIMEOUT_MS 15000  /* a connection silent this long is closed */
#define RF_HTTP_THUMB_THREADS 2        /* JPEGs made at once (libuv's thread pool is shared with
                                          the coordinator's verify and stitch work: leave it room) */
#define RF_HTTP_MAX_THUMB_QUEUE 128    /* JPEGs waiting for a thread; more get 503 + Retry-After */
#define RF_HTTP_THUMB_MAX_AGE_S (7 * 86400) /* cached previews unused this long go at start */
#define RF_HTTP_MAX_STATIC_BYTES (8 * 1024 * 1024) /* a web file larger than this is not served */

/* ---- growable text buffer (used to render the snapshot documents) --------------------------- */

typedef struct rf_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len;
    size_t cap;
    bool failed; /* an allocation failed: the text is incomplete and must not be published */
} rf_buf_t;

void rf_buf_printf(rf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rf_buf_append(rf_buf_t *b, const char *s, size_t n);
/* Appends s as a JSON string, quotes included (RFC 8259 escaping; bytes >= 0x80 pass through). */
void rf_buf_json_string(rf_buf_t *b, const char *s);
/* Appends s escaped as a Prometheus label value (backslash, quote, newline). */
void rf_buf_label(rf_buf_t *b, const char *s);
/* Hands the text over (the buffer is reset); NULL when an append failed. */
char *rf_buf_take(rf_buf_t *b, size_t *len);
void rf_buf_release(rf_buf_t *b);

/* ---- request parsing (exposed for tests/coordinator/test_http.c) ---------------------------- */

typedef struct rf_http_request {
    bool head;                           /* HEAD, else GET */
    char path[RF_HTTP_MAX_TARGET + 1];   /* decoded path, no query */
    char query[RF_HTTP_MAX_TARGET + 1];  /* raw query (after '?'), "" when none */
    char token[256];                     /* from "Authorization: Bearer ...", "" when none */
    bool keep_alive;                     /* HTTP/1.1 without "Connection: close" */
    size_t length;                       /* bytes the request took in the buffer */
} rf_http_request_t;

/* Parses one request from buf[0..len). Returns 0 with req filled, RF_EAGAIN when the headers are
 * not complete yet (and len is under RF_HTTP_MAX_REQUEST), or an HTTP status >= 400 to answer
 * before closing: 400 malformed, 405 not GET/HEAD, 413 a body was announced, 414 target too
 * long, 431 headers too large or too many, 505 not HTTP/1.x. */
int rf_http_parse(const char *buf, size_t len, rf_http_request_t *req);

/* The value of key in a raw query string ("a=1&token=x"), percent-decoded into out. false when
 * absent or longer than size - 1. */
bool rf_http_query_get(const char *query, const char *key, char *out, size_t size);

/* true for 127.0.0.0/8, ::1 and "localhost". */
bool rf_http_host_is_loopback(const char *host);

/* Splits "HOST:PORT" or "[V6]:PORT" (port 0 = any free port). RF_EINVAL with err set when bad. */
int rf_http_split_listen(const char *listen, char *host, size_t host_size, int *port, rf_err_t *err);

/* ---- the snapshot ------------------------------------------------------------------------------ */

/* A chunk as the dashboard shows it (coordinator.c maps its states onto these). */
typedef enum rf_http_chunk_state {
    RF_HTTP_CHUNK_QUEUED,    /* never tried */
    RF_HTTP_CHUNK_RETRYING,  /* queued again after an attempt ended without a result */
    RF_HTTP_CHUNK_RUNNING,   /* leased to a worker */
    RF_HTTP_CHUNK_VERIFYING, /* its result is being checked */
    RF_HTTP_CHUNK_DONE,
    RF_HTTP_CHUNK_FAILED,
    RF_HTTP_CHUNK_NSTATES,
} rf_http_chunk_state_t;

/* "queued", "retrying", ... indexed by rf_http_chunk_state_t. */
extern const char *const rf_http_chunk_state_names[RF_HTTP_CHUNK_NSTATES];

/* One chunk in a snapshot: plain values copied by the coordinator loop (cheap: no formatting
 * there), rendered to JSON by the HTTP thread when asked. */
typedef struct rf_http_chunk_ref {
    uint32_t index;
    uint8_t state;                      /* rf_http_chunk_state_t */
    bool backup;                        /* a backup run of it is going on */
    uint32_t attempts;
    int64_t frame_start, frame_end;     /* [start, end) in the source */
    uint64_t frames_done;
    float fps;                          /* while running */
    uint32_t head_overlap;              /* the result's own frames start after these */
    char worker[64];                    /* running it, or whose result was kept; "" */
    char *failed_on;                    /* malloc'd "w1 w2" or NULL */
    char result_blob[65];               /* verified result, "" until done */
} rf_http_chunk_ref_t;

typedef struct rf_http_job_doc {
    char id[40];
    char *summary;                      /* JSON members ("name":...,"state":...) for both the list
                                           and the job document, without braces */
    char *input, *output;               /* media paths, for source/result frames */
    bool done;                          /* output written and verified */
    rf_http_chunk_ref_t *chunks;
    size_t nchunks;
    char *json;                         /* GET /api/jobs/ID: rendered by the HTTP thread on the
                                           first request (only it touches this); NULL before */
    size_t json_len;
} rf_http_job_doc_t;

/* Renders a job document: {"id":...,"chunks":[...],<summary>}. NULL when out of memory. */
char *rf_http_job_json(const rf_http_job_doc_t *doc, size_t *len);

/* One published state of the farm. Immutable once published; freed with its last reference. */
typedef struct rf_http_snapshot {
    char *metrics;                      /* Prometheus text format 0.0.4 */
    size_t metrics_len;
    char *jobs_json;                    /* GET /api/jobs */
    size_t jobs_json_len;
    char *workers_json;                 /* GET /api/workers */
    size_t workers_json_len;
    rf_http_job_doc_t *jobs;
    size_t njobs;
    bool ready;                         /* store open, sockets bound, not stopping */
    int refs;                           /* owned by http.c */
} rf_http_snapshot_t;

/* An empty snapshot to fill (everything NULL/0). */
rf_http_snapshot_t *rf_http_snapshot_new(void);
/* Frees a snapshot that was never published. */
void rf_http_snapshot_destroy(rf_http_snapshot_t **snap);

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct rf_http_server rf_http_server_t;

typedef struct rf_http_config {
    const char *listen;     /* "127.0.0.1:7603"; "" or NULL disables the server */
    const char *token_file; /* one line, the token; required for a non-loopback listen */
    const char *web_dir;    /* dashboard files; NULL = look next to the binary (see
                               rf_http_find_web_dir), none found = API only */
    const char *state_dir;  /* for state.db (events, attempts) and blobs/, thumbs/ */
} rf_http_config_t;

/* The dashboard folder for a binary at exe_dir: exe_dir/../share/reelfarm/web (installed),
 * then exe_dir/../../web (build/bin in a source tree). Writes it to out and returns true when
 * it holds index.html. */
bool rf_http_find_web_dir(const char *exe_dir, char *out, size_t size);

/* Reads a token file: the first line, surrounding whitespace removed, 16..255 printable bytes. */
int rf_http_read_token(const char *path, char *out, size_t size, rf_err_t *err);

/* Binds and starts the server thread. Refuses a non-loopback address without a token, naming
 * both. On error nothing is left running. */
int rf_http_server_new(const rf_http_config_t *cfg, rf_http_server_t **out, rf_err_t *err);

/* "http://127.0.0.1:7603": the address actually bound. */
const char *rf_http_server_url(const rf_http_server_t *s);

/* Replaces the served snapshot (takes ownership of *snap, sets it NULL). Any thread. */
void rf_http_publish(rf_http_server_t *s, rf_http_snapshot_t **snap);

/* Monotonic ms (rf_now_ms) of the last /api/ request, 0 when none yet: the coordinator
 * publishes less often while no dashboard is open. Any thread. */
uint64_t rf_http_last_read_ms(const rf_http_server_t *s);

/* Requests answered with an error for their form since start: out[0] malformed (400, 405, 505),
 * out[1] too big (413, 414, 431), out[2] refused (401, no or a wrong token). Any thread. */
void rf_http_bad_requests(const rf_http_server_t *s, uint64_t out[3]);

/* /readyz answers 503 from now on (the coordinator is stopping). Any thread. */
void rf_http_set_unready(rf_http_server_t *s);

/* Stops the thread, closes every connection, frees everything. Idempotent; nulls *s. */
void rf_http_server_destroy(rf_http_server_t **s);

#endif
