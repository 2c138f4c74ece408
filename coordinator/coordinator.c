/* coordinator.c - the coordinator's loop: worker sessions, scheduling, results, client API.
 * See coordinator.h for the threading rules and DESIGN §3/§5/§7 for the contracts.
 */
#include "coordinator.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include <sodium.h>
#include <zmq.h>

#include "auth.h"
#include "blob.h"
#include "codec.h"
#include "guard.h"
#include "hash.h"
#include "http.h"
#include "log.h"
#include "media.h"
#include "audit.h"
#include "planner.h"
#include "rftime.h"
#include "signing.h"
#include "space.h"
#include "store.h"
#include "zbridge.h"
#include "zsec.h"

#define COMP "coordinator"
#define RF_MAX_WORKERS 4096
#define RF_WORKER_MAX_SLOTS 256
#define RF_ROUTING_ID_MAX 255
#define RF_BLOB_GRACE_MS 30000           /* a released blob is deleted this much later */
#define RF_BACKUP_DONE_PERMILLE 900      /* backup runs start when a job is 90% done */
#define RF_WORKER_BUCKETS 4096           /* routing-id hash buckets */
#define RF_QUARANTINE_JOBS 2             /* failing chunks of this many distinct jobs ... */
#define RF_QUARANTINE_WINDOW_MS 600000   /* ... within 10 minutes quarantines a worker */
#define RF_OBS_PUBLISH_MS 300            /* the HTTP snapshot is rebuilt this often ... */
#define RF_OBS_IDLE_MS 30000             /* ... while a dashboard read the API this recently, else ... */
#define RF_OBS_IDLE_PUBLISH_MS 5000      /* ... this often (a Prometheus scrape sees <= 5 s old data) */

typedef struct c_worker c_worker_t;

/* A file the job's passes (or its critic) read, stored as a blob at planning (proto FileRef). */
#define C_FILE_CRITIC UINT32_MAX /* c_file_t.pass of the critic's model */
#define C_WORKER_MODELS 64       /* blobs a worker's advertised list holds at most */
typedef struct c_file {
    uint32_t pass;               /* index in the pipeline, or C_FILE_CRITIC */
    char key[32];                /* the parameter ("model", "asset") */
    char sha[RF_SHA256_HEX_LEN + 1];
    uint64_t size;
    char name[128];              /* base name of the file on this host */
    bool model;                  /* a model (key "model"): workers holding it are preferred */
} c_file_t;

/* One render of a chunk as the worker's critic scored it (proto CriticScore). */
#define C_CRITIC_MAX 17          /* renders of one chunk: 1 + critic.max_rerenders (<= 16) */
#define C_STATUS_RENDERS 16384   /* critic renders one status reply lists at most (then: the kept) */
typedef struct c_critic {
    uint64_t seed;
    float score, mean;
    uint64_t frames;
} c_critic_t;

/* A chunk as the scheduler sees it: the durable row plus the in-memory lease. */
typedef struct c_job c_job_t;

typedef struct c_chunk {
    rf_store_chunk_t row;
    c_job_t *job;            /* owner */
    bool returned;           /* in job->returned: queued again after leaving the queue order */
    uint64_t lease;          /* current lease, 0 when none */
    uint64_t old_lease;      /* the last superseded lease: its late result may still be kept */
    c_worker_t *worker;      /* holder of the current lease */
    uint64_t progress_ms;    /* monotonic time of the last progress (task timeout) */
    uint64_t frames_done;
    float fps;
    bool verifying;          /* a result is being verified off the loop */
    uint64_t hold_until_ms;  /* after a restart: keep it for the worker that ran it to re-announce */
    uint32_t attempt_base;   /* attempts before the last `retry`: the limit counts from here */
    uint32_t lease_attempt;  /* attempt number of the current lease */
    uint64_t backup_lease;   /* a backup run of this chunk on another worker, 0 when none */
    c_worker_t *backup_worker;
    uint32_t backup_attempt;
    c_critic_t *critic;      /* the kept result's renders (critic gate), NULL when none; in
                                memory only: the job's events keep them across restarts */
    uint8_t ncritic, critic_kept;
} c_chunk_t;

struct c_job {
    rf_store_job_t row;
    rf_job_spec_t *spec;
    rf_media_info_t *info;   /* set once probed (planning or recovery) */
    c_chunk_t *chunks;
    size_t nchunks;
    size_t ndone;
    int busy;                /* work requests in flight that use this job */
    bool paused;             /* no new chunks start; running ones finish */
    bool stitch_in_flight;   /* a stitch work request is queued or running */
    uint32_t holding;        /* chunks with hold_until_ms set (after a restart) */
    /* The parts of every Assign that are the same for all its chunks (pipeline, encoder), made
     * once on the first assignment instead of once per assignment. */
    Reelfarm__PassSpec *pb_passes, **pb_pass_ptrs;
    Reelfarm__Param *pb_params, **pb_param_ptrs;
    Reelfarm__EncodeSpec pb_encode;
    bool pb_ready;
    bool needs_gpu;          /* rf_job_spec_requirements: only workers with a CUDA device */
    int64_t needs_vram_mib;  /* ... reporting at least this much free VRAM */
    uint32_t running;        /* chunks with a lease (fair share reads this) */
    /* Dispatch order: every chunk, longest first, and a cursor past those that left the queue.
     * A chunk queued again (failed, lost, rejected, retried) goes to `returned`, checked first.
     * Picking is O(jobs), not O(chunks). */
    uint32_t *order;
    size_t cursor;
    uint32_t *returned;
    size_t nreturned, returned_cap;
    uint64_t stitch_start_ms; /* monotonic start of the running stitch (metrics) */
    c_file_t *files;         /* its passes' files as blobs (set by the plan, before any Assign) */
    size_t nfiles;
    size_t nmodels;          /* of which models */
    struct c_job *next;
};

struct c_worker {
    uint8_t rid[RF_ROUTING_ID_MAX]; /* ZeroMQ routing id of its DEALER */
    size_t rid_len;
    char name[64];
    char instance[40];
    uint32_t slots;
    uint32_t idle[RF_WORKER_MAX_SLOTS]; /* slot numbers that asked for work */
    uint32_t nidle;
    uint64_t last_seen_ms;
    bool live;
    char caps[1024];         /* " enc1 enc2 ... | pass1 pass2 " as announced, for matching */
    char gpu_model[128];
    uint64_t vram_bytes;
    /* Quarantine: a worker whose chunks fail in several jobs is the likely culprit. */
    char failed_jobs[RF_QUARANTINE_JOBS][40]; /* distinct jobs it failed chunks of, recently */
    uint64_t failed_ms[RF_QUARANTINE_JOBS];
    bool quarantined;
    uint32_t chunks_done, chunks_failed;
    char (*models)[RF_SHA256_HEX_LEN + 1]; /* blobs in its file cache (Hello, Heartbeat) */
    uint32_t nmodels;
    c_worker_t *next;
    c_worker_t *bucket_next; /* chain in rf_coordinator.worker_buckets */
};

/* Open-addressing hash map from lease id to chunk (linear probing, backward-shift deletion). */
typedef struct c_leaseslot {
    uint64_t key;            /* 0 = empty (lease ids are never 0) */
    c_chunk_t *chunk;
} c_leaseslot_t;

typedef struct c_leasemap {
    c_leaseslot_t *slots;
    size_t cap, n;           /* cap is a power of two, n <= cap / 2 */
} c_leasemap_t;

/* A blob waiting to be deleted. */
typedef struct c_doomed {
    char sha[RF_SHA256_HEX_LEN + 1];
    uint64_t due_ms;
} c_doomed_t;

struct rf_coordinator {
    uv_loop_t loop;
    uv_async_t stop_async;
    uv_timer_t tick;
    uint64_t last_tick_ms;   /* when the tick last ran (a late one means this process stalled) */
    uv_prepare_t flush;      /* commits the turn's batched state changes before the loop waits */
    void *zctx;
    rf_zsock_t *wsock;       /* ROUTER for workers */
    rf_zsock_t *csock;       /* ROUTER for clients */
    rf_zsock_t *monitors[2]; /* PAIRs with failed handshakes on wsock, csock (guard.h: handshake) */
    rf_blob_server_t *blobs;
    rf_auth_t *auth;         /* the ZAP handler; NULL without keys (guard.h, auth.h) */
    rf_guard_counts_t bad;   /* refused messages by socket and reason, for /metrics */
    int64_t max_frame;       /* limits.message_bytes: an incoming control frame */
    int64_t max_spec, max_chunks, max_client_jobs; /* limits.spec_bytes, chunks_per_job, jobs_per_client */
    char **media_roots;      /* paths in specs must resolve under one of these (none: anywhere) */
    size_t nmedia_roots;
    char endpoints[3][256];
    char state_dir[4096];
    char blob_dir[4200];
    char store_id[RF_BLOB_STORE_ID_LEN + 1]; /* the shared blob store's id; "" = not shared */
    int lock_fd;             /* <state>/lock, flock()ed for the coordinator's lifetime; -1 none */
    rf_store_t *store;
    rf_prov_signer_t *signer; /* signs every output (signing.c); read-only after start */
    rf_audit_t *audit;       /* <state>/audit.log (audit.h) */
    uint8_t wm_key[RF_WM_KEY_LEN]; /* watermark.key in signing.dir when set, else the state
                                    * folder: the farm key, never sent anywhere */
    int heartbeat_ms, liveness, task_timeout_s, max_attempts;
    bool verify_sample;      /* config verify: sample */
    c_job_t *jobs;
    c_worker_t *workers;
    c_worker_t *worker_buckets[RF_WORKER_BUCKETS];
    size_t nworkers;
    c_leasemap_t leases;     /* lease id -> chunk, for current and superseded leases */
    c_doomed_t *doomed;      /* blobs to delete once their grace period is over */
    size_t ndoomed, doomed_cap;
    uint64_t next_lease;
    uint64_t seq;
    int pending_work;
    bool stopping;
    bool restart;            /* stopped to reload state.db once space returned (rf_coordinator_run) */
    /* Observability (coordinator/http.h): counters bumped on the loop thread, read by
     * s_obs_publish, which hands the HTTP thread an immutable snapshot every RF_OBS_PUBLISH_MS. */
    rf_http_server_t *http;
    uv_timer_t obs_timer;
    struct {
        uint64_t assignments, backups;          /* leases granted (primary, backup runs) */
        uint64_t retries[4];                    /* requeues by outcome: failed, lost, timed out, cancelled */
        uint64_t lease_expiries;                /* leases lost to a silent worker or a task timeout */
        uint64_t rejected;                      /* malformed or unexpected messages dropped */
        uint64_t result_bytes;                  /* bytes of verified chunk results */
        uint64_t chunks_verified, verify_failures;
        uint64_t stitches;
        double stitch_seconds;
        uint64_t jobs_submitted;
        uint64_t published_ms;                  /* when the last snapshot was published */
    } obs;
};

typedef enum { W_PLAN, W_VERIFY, W_STITCH } c_work_kind_t;

typedef struct c_work {
    uv_work_t req;
    rf_coordinator_t *c;
    c_work_kind_t kind;
    c_job_t *job;
    /* plan */
    bool need_chunks;
    rf_media_info_t *info;
    rf_store_chunk_t *chunks;
    size_t nchunks;
    c_file_t *files;         /* the passes' files, stored as blobs */
    size_t nfiles;
    /* verify */
    uint32_t chunk;
    uint64_t lease;
    uint32_t attempt;        /* attempt number of the lease that produced the result */
    char blob[RF_SHA256_HEX_LEN + 1];
    uint64_t blob_size;
    uint64_t expect_frames;
    uint8_t digest[RF_SHA256_LEN];
    char worker[64];
    rf_store_seam_t seam_head, seam_tail; /* side parts of the result (blob "" when none) */
    uint8_t *frame_list;     /* the worker's per-frame SHA-256s (sampled verification), or NULL */
    uint32_t gops_checked;   /* sampled verification: GOPs decoded (0: every frame was)*/
    uint32_t head_overlap, tail_overlap;  /* frames each side part must hold */
    c_critic_t critic[C_CRITIC_MAX];      /* the result's critic scores (ChunkDone.critic) */
    uint32_t ncritic, critic_kept;
    /* stitch */
    rf_stitch_chunk_t *parts;  /* up to 2 per chunk: its seam, then its own result */
    char (*paths)[4400];
    rf_store_chunk_t *rows;    /* the chunks' rows, copied for the pool thread */
    bool *seam;                /* parts[i] is a cross-faded seam (a temp file) */
    size_t nparts, nseams;
    rf_verify_report_t report;
    int rc;
    rf_err_t err;
} c_work_t;

static void s_dispatch(rf_coordinator_t *c);
static void s_on_stop(uv_async_t *a);
static void s_obs_publish(rf_coordinator_t *c);
static bool s_failed_on(const c_chunk_t *ch, const char *worker);

static void s_job_pb_free(c_job_t *job)
{
    free(job->pb_passes);
    free(job->pb_pass_ptrs);
    free(job->pb_params);
    free(job->pb_param_ptrs);
    job->pb_passes = NULL;
    job->pb_pass_ptrs = NULL;
    job->pb_params = NULL;
    job->pb_param_ptrs = NULL;
    job->pb_ready = false;
}
static void s_job_fail(rf_coordinator_t *c, c_job_t *job, const char *message);
static void s_job_release_blobs(rf_coordinator_t *c, c_job_t *job);
static void s_job_release_files(rf_coordinator_t *c, c_job_t *job);
static void s_worker_failed(rf_coordinator_t *c, const char *name, const c_job_t *job);

/* ---- small helpers ---------------------------------------------------------------------------- */

static void s_event_v(rf_coordinator_t *c, c_job_t *job, const rf_log_ctx_t *ctx, const char *level,
                      const char *fmt, va_list ap)
{
    char msg[1200];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    rf_store_event(c->store, job->row.id, level, msg);
    rf_log_level_t lvl = strcmp(level, "error") == 0 ? RF_LOG_ERROR
                         : strcmp(level, "warn") == 0 ? RF_LOG_WARN
                                                      : RF_LOG_INFO;
    rf_log_ctx(lvl, COMP, ctx, "job %s ('%s'): %s", job->row.id, job->row.name, msg);
}

static void s_event(rf_coordinator_t *c, c_job_t *job, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_event(rf_coordinator_t *c, c_job_t *job, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_event_v(c, job, RF_LOG_CTX(job->row.id, -1, -1, NULL), level, fmt, ap);
    va_end(ap);
}

/* An event about one chunk's attempt: its log line carries chunk, attempt and worker fields. */
static void s_event_at(rf_coordinator_t *c, c_job_t *job, uint32_t chunk, uint32_t attempt,
                       const char *worker, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void s_event_at(rf_coordinator_t *c, c_job_t *job, uint32_t chunk, uint32_t attempt,
                       const char *worker, const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_event_v(c, job, RF_LOG_CTX(job->row.id, chunk, attempt, worker && *worker ? worker : NULL),
              level, fmt, ap);
    va_end(ap);
}

static bool s_job_terminal(const c_job_t *job)
{
    return !strcmp(job->row.state, "done") || !strcmp(job->row.state, "failed") ||
           !strcmp(job->row.state, "cancelled");
}

static void s_set_state(c_job_t *job, const char *state)
{
    snprintf(job->row.state, sizeof(job->row.state), "%s", state);
}

static c_job_t *s_job_find(rf_coordinator_t *c, const char *id)
{
    for (c_job_t *j = c->jobs; j; j = j->next)
        if (!strcmp(j->row.id, id))
            return j;
    return NULL;
}

static size_t s_rid_bucket(const void *rid, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const uint8_t *)rid)[i]) * 1099511628211ULL;
    return (size_t)(h % RF_WORKER_BUCKETS);
}

/* The worker with this routing id: a hash lookup, every worker message needs one. */
static c_worker_t *s_worker_by_rid(rf_coordinator_t *c, const void *rid, size_t len)
{
    for (c_worker_t *w = c->worker_buckets[s_rid_bucket(rid, len)]; w; w = w->bucket_next)
        if (w->rid_len == len && memcmp(w->rid, rid, len) == 0)
            return w;
    return NULL;
}

static int s_send(rf_coordinator_t *c, rf_zsock_t *sock, const void *rid, size_t rid_len,
                  Reelfarm__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    env->seq = ++c->seq;
    int rc = rf_msg_pack(env, RF_CONTROL_MAX_FRAME, &buf, &len);
    if (rc) {
        RF_ERROR(COMP, "cannot pack '%s' message: %s", rf_msg_body_name(env), rf_strerror(rc));
        return rc;
    }
    rf_zparts_t parts = {.count = 2, .data = {rid, buf}, .size = {rid_len, len}};
    rc = rf_zsock_send(sock, &parts);
    free(buf);
    return rc;
}

static int s_send_worker(rf_coordinator_t *c, c_worker_t *w, Reelfarm__Envelope *env)
{
    return s_send(c, c->wsock, w->rid, w->rid_len, env);
}

/* Tells a live worker to stop a lease (it answers with ChunkFailed "cancelled" or nothing). */
static void s_send_cancel(rf_coordinator_t *c, c_worker_t *w, uint64_t lease, const char *reason)
{
    if (!w || !w->live)
        return;
    Reelfarm__Cancel cancel = REELFARM__CANCEL__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    cancel.lease = lease;
    cancel.reason = (char *)reason;
    env.body_case = REELFARM__ENVELOPE__BODY_CANCEL;
    env.cancel = &cancel;
    s_send_worker(c, w, &env);
}

/* Whether an unfinished job's passes read blob sha (c_job_t.files). */
static bool s_file_in_use(rf_coordinator_t *c, const char *sha)
{
    for (c_job_t *j = c->jobs; j; j = j->next)
        if (!s_job_terminal(j))
            for (size_t i = 0; i < j->nfiles; i++)
                if (!strcmp(j->files[i].sha, sha))
                    return true;
    return false;
}

/* Deletes a blob unless an unfinished job still names it. */
static bool s_blob_drop_now(rf_coordinator_t *c, const char *sha)
{
    bool in_use = true;
    char path[4400];
    if (!rf_sha256_hex_valid(sha) || s_file_in_use(c, sha) ||
        rf_store_blob_in_use(c->store, sha, &in_use, NULL) || in_use ||
        rf_blob_path(c->blob_dir, sha, path, sizeof(path)))
        return false;
    return unlink(path) == 0;
}

/* Schedules a blob for deletion RF_BLOB_GRACE_MS from now. Not at once: blobs are content-
 * addressed, so another job's identical result may have just been uploaded (the blob server
 * answers "already stored") with its ChunkDone still on the way; by the deadline that chunk is
 * recorded and the blob counts as in use. */
static bool s_blob_drop(rf_coordinator_t *c, const char *sha)
{
    if (!rf_sha256_hex_valid(sha))
        return false;
    if (c->ndoomed == c->doomed_cap) {
        size_t ncap = c->doomed_cap ? c->doomed_cap * 2 : 64;
        c_doomed_t *grown = realloc(c->doomed, ncap * sizeof(*grown));
        if (!grown)
            return false;
        c->doomed = grown;
        c->doomed_cap = ncap;
    }
    snprintf(c->doomed[c->ndoomed].sha, sizeof(c->doomed[0].sha), "%s", sha);
    c->doomed[c->ndoomed].due_ms = rf_now_ms() + RF_BLOB_GRACE_MS;
    c->ndoomed++;
    return true;
}

/* Deletes the scheduled blobs whose time has come (called every tick). */
static void s_blob_reap(rf_coordinator_t *c, bool all)
{
    uint64_t now = rf_now_ms();
    size_t kept = 0, removed = 0;
    for (size_t i = 0; i < c->ndoomed; i++) {
        if (all || now >= c->doomed[i].due_ms)
            removed += s_blob_drop_now(c, c->doomed[i].sha);
        else
            c->doomed[kept++] = c->doomed[i];
    }
    c->ndoomed = kept;
    if (removed)
        RF_INFO(COMP, "removed %zu blobs no job needs", removed);
}

/* ---- leases and the dispatch order ------------------------------------------------------------ */

static size_t s_lm_index(uint64_t key, size_t cap)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

static c_chunk_t *s_lm_get(const c_leasemap_t *m, uint64_t key)
{
    if (!key || !m->cap)
        return NULL;
    for (size_t i = s_lm_index(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].chunk;
        if (!m->slots[i].key)
            return NULL;
    }
}

static int s_lm_put(c_leasemap_t *m, uint64_t key, c_chunk_t *chunk)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        c_leaseslot_t *grown = calloc(ncap, sizeof(*grown));
        if (!grown)
            return RF_ENOMEM;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].key)
                continue;
            size_t k = s_lm_index(m->slots[i].key, ncap);
            while (grown[k].key)
                k = (k + 1) & (ncap - 1);
            grown[k] = m->slots[i];
        }
        free(m->slots);
        m->slots = grown;
        m->cap = ncap;
    }
    size_t i = s_lm_index(key, m->cap);
    while (m->slots[i].key && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key)
        m->n++;
    m->slots[i].key = key;
    m->slots[i].chunk = chunk;
    return 0;
}

static void s_lm_del(c_leasemap_t *m, uint64_t key)
{
    if (!key || !m->cap)
        return;
    size_t i = s_lm_index(key, m->cap);
    while (m->slots[i].key != key) {
        if (!m->slots[i].key)
            return;
        i = (i + 1) & (m->cap - 1);
    }
    /* Backward shift: move later entries of the probe run into the hole. */
    for (size_t j = (i + 1) & (m->cap - 1); m->slots[j].key; j = (j + 1) & (m->cap - 1)) {
        size_t home = s_lm_index(m->slots[j].key, m->cap);
        if (((j - home) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
            m->slots[i] = m->slots[j];
            i = j;
        }
    }
    m->slots[i].key = 0;
    m->slots[i].chunk = NULL;
    m->n--;
}

/* Gives ch a lease held by w. */
/* A copy of the lease map's entries (current, backup and superseded leases): what the scans of
 * live leases walk - O(leases), never O(all chunks) - and safe to act on while the map changes
 * (each entry is re-checked against its chunk before use). *out is malloc'd; 0 or RF_ENOMEM. */
static int s_leases_snapshot(const c_leasemap_t *m, c_leaseslot_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!m->n)
        return 0;
    c_leaseslot_t *copy = malloc(m->n * sizeof(*copy));
    if (!copy)
        return RF_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < m->cap && k < m->n; i++)
        if (m->slots[i].key)
            copy[k++] = m->slots[i];
    *out = copy;
    *n = k;
    return 0;
}

static void s_lease_set(rf_coordinator_t *c, c_chunk_t *ch, uint64_t lease, c_worker_t *w)
{
    if (!ch->lease)
        ch->job->running++;
    else
        s_lm_del(&c->leases, ch->lease);
    ch->lease = lease;
    ch->worker = w;
    if (s_lm_put(&c->leases, lease, ch))
        RF_ERROR(COMP, "out of memory recording lease %" PRIu64, lease);
}

/* Ends ch's lease. keep_old: remember it as superseded (a late result may still count). */
static void s_lease_clear(rf_coordinator_t *c, c_chunk_t *ch, bool keep_old)
{
    if (ch->old_lease && (ch->old_lease != ch->lease || !keep_old))
        s_lm_del(&c->leases, ch->old_lease);
    ch->old_lease = 0;
    if (ch->lease) {
        ch->job->running--;
        if (keep_old)
            ch->old_lease = ch->lease;
        else
            s_lm_del(&c->leases, ch->lease);
    }
    ch->lease = 0;
    ch->worker = NULL;
}

/* Ends a backup run; cancel_reason non-NULL tells its worker to stop. */
static void s_backup_clear(rf_coordinator_t *c, c_chunk_t *ch, const char *cancel_reason)
{
    if (!ch->backup_lease)
        return;
    if (cancel_reason)
        s_send_cancel(c, ch->backup_worker, ch->backup_lease, cancel_reason);
    s_lm_del(&c->leases, ch->backup_lease);
    ch->backup_lease = 0;
    ch->backup_worker = NULL;
}

static bool s_dispatchable(const c_chunk_t *ch)
{
    return !strcmp(ch->row.state, "queued") && !ch->lease && !ch->verifying && !ch->hold_until_ms;
}

/* ch is queued again after having left the dispatch order. */
static void s_chunk_returned(c_chunk_t *ch)
{
    c_job_t *j = ch->job;
    if (ch->returned || !j->order)
        return;
    if (j->nreturned == j->returned_cap) {
        size_t ncap = j->returned_cap ? j->returned_cap * 2 : 16;
        uint32_t *grown = realloc(j->returned, ncap * sizeof(*grown));
        if (!grown)
            return; /* the chunk stays behind the cursor: s_order_rebuild on the next plan/load */
        j->returned = grown;
        j->returned_cap = ncap;
    }
    j->returned[j->nreturned++] = ch->row.index;
    ch->returned = true;
}

static int s_order_cmp(const void *a, const void *b, void *arg)
{
    const c_job_t *j = arg;
    const c_chunk_t *x = &j->chunks[*(const uint32_t *)a], *y = &j->chunks[*(const uint32_t *)b];
    int64_t lx = x->row.frame_end - x->row.frame_start, ly = y->row.frame_end - y->row.frame_start;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x->row.index < y->row.index ? -1 : 1;
}

/* Builds the longest-first dispatch order once the job's chunks are known. */
static void s_order_build(c_job_t *j)
{
    free(j->order);
    j->order = calloc(j->nchunks + 1, sizeof(*j->order));
    j->cursor = 0;
    j->nreturned = 0;
    if (!j->order)
        return;
    for (size_t i = 0; i < j->nchunks; i++) {
        j->order[i] = (uint32_t)i;
        j->chunks[i].job = j;
        j->chunks[i].returned = false;
    }
    qsort_r(j->order, j->nchunks, sizeof(*j->order), s_order_cmp, j);
}

/* The chunk of j that worker w should run next, or NULL. Returned chunks first (they are few),
 * then the order from the cursor, which skips for good what left the queue. */
static c_chunk_t *s_job_next(c_job_t *j, const c_worker_t *w)
{
    c_chunk_t *best = NULL;
    for (size_t i = 0; i < j->nreturned; i++) {
        c_chunk_t *ch = &j->chunks[j->returned[i]];
        if (!s_dispatchable(ch) || s_failed_on(ch, w->name))
            continue;
        if (!best || ch->row.frame_end - ch->row.frame_start > best->row.frame_end - best->row.frame_start)
            best = ch;
    }
    if (best)
        return best;
    while (j->cursor < j->nchunks && !s_dispatchable(&j->chunks[j->order[j->cursor]]))
        j->cursor++;
    /* Chunks past the cursor are fresh (nobody failed them) unless a retry returned them; look
     * further only when w failed the one at the cursor. */
    for (size_t k = j->cursor; k < j->nchunks; k++) {
        c_chunk_t *ch = &j->chunks[j->order[k]];
        if (s_dispatchable(ch) && !s_failed_on(ch, w->name))
            return ch;
    }
    return NULL;
}

/* ch got a lease: drop it from the returned list if it was there. */
static void s_chunk_taken(c_chunk_t *ch)
{
    c_job_t *j = ch->job;
    if (!ch->returned)
        return;
    for (size_t i = 0; i < j->nreturned; i++) {
        if (j->returned[i] == ch->row.index) {
            j->returned[i] = j->returned[--j->nreturned];
            break;
        }
    }
    ch->returned = false;
}

/* Finds the chunk holding lease (current or superseded). */
static c_chunk_t *s_chunk_by_lease(rf_coordinator_t *c, uint64_t lease, c_job_t **job_out)
{
    c_chunk_t *ch = s_lm_get(&c->leases, lease);
    if (ch)
        *job_out = ch->job;
    return ch;
}

/* ---- work off the loop ------------------------------------------------------------------------ */

/* Checks a seam side part of a result like the result itself: present exactly when the chunk
 * has that overlap, the right size, frame count and frame checksums. */
static int s_verify_seam(c_work_t *wk, const char *which, const rf_store_seam_t *seam, uint32_t expect)
{
    if (!expect && !*seam->blob)
        return 0;
    if (!expect || !*seam->blob)
        return rf_err_set(&wk->err, RF_EVERIFY, "seam %s part %s, expected %s", which,
                          *seam->blob ? "sent" : "missing", expect ? "one" : "none");
    char path[4400];
    struct stat st;
    uint64_t frames = 0;
    uint8_t digest[RF_SHA256_LEN], want[RF_SHA256_LEN];
    int rc = rf_blob_path(wk->c->blob_dir, seam->blob, path, sizeof(path));
    if (!rc && (stat(path, &st) != 0 || (uint64_t)st.st_size != seam->size))
        rc = rf_err_set(&wk->err, RF_EVERIFY, "seam %s part %.12s is missing or has the wrong size",
                        which, seam->blob);
    if (!rc && rf_sha256_from_hex(seam->digest, want) != 0)
        rc = rf_err_set(&wk->err, RF_EVERIFY, "seam %s part: malformed checksum digest", which);
    if (!rc)
        rc = rf_media_checksum(path, &frames, digest, NULL, NULL, &wk->err);
    if (!rc && frames != expect)
        rc = rf_err_set(&wk->err, RF_EVERIFY, "seam %s part has %" PRIu64 " frames, expected %u",
                        which, frames, expect);
    if (!rc && memcmp(digest, want, RF_SHA256_LEN) != 0)
        rc = rf_err_set(&wk->err, RF_EVERIFY,
                        "frame checksums of the seam %s part differ from those the worker reported",
                        which);
    return rc;
}

/* Encodes the cross-faded seams of a job and lists every part the stitcher joins, in frame
 * order: a chunk with a head overlap k contributes the seam (k frames, cross-faded from the
 * previous chunk's tail part and its own head part) and then its own result (the rest). */
static int s_stitch_prepare(c_work_t *wk)
{
    c_job_t *job = wk->job;
    const rf_job_spec_t *spec = job->spec;
    const char *opt_keys[RF_SPEC_MAX_PARAMS], *opt_values[RF_SPEC_MAX_PARAMS];
    size_t nopts = spec->encode.noptions < RF_SPEC_MAX_PARAMS ? spec->encode.noptions : RF_SPEC_MAX_PARAMS;
    for (size_t i = 0; i < nopts; i++) {
        opt_keys[i] = spec->encode.options[i].key;
        opt_values[i] = spec->encode.options[i].value;
    }
    /* The settings every worker encodes with (worker/slot.c): the same job spec, the source's
     * frame rate, aspect ratio and colour description. */
    rf_encode_params_t p = {
        .codec = spec->encode.codec,
        .crf = spec->encode.crf,
        .preset = spec->encode.preset,
        .bitrate = spec->encode.bitrate,
        .gop = spec->encode.gop,
        .opt_keys = opt_keys,
        .opt_values = opt_values,
        .nopts = nopts,
        .frame_rate = wk->info->frame_rate,
        .sample_aspect_ratio = wk->info->sample_aspect_ratio,
        .color_range = wk->info->color_range,
        .color_primaries = wk->info->color_primaries,
        .color_trc = wk->info->color_trc,
        .color_space = wk->info->color_space,
        .chroma_location = wk->info->chroma_location,
    };
    size_t n = 0;
    for (size_t i = 0; i < wk->nchunks; i++) {
        const rf_store_chunk_t *r = &wk->rows[i];
        int64_t head = r->head_overlap;
        if (head > 0) {
            const rf_store_chunk_t *prev = &wk->rows[i - 1];
            char tail_path[4400], head_path[4400];
            /* Under blobs/tmp/: a crash mid-stitch leaves nothing the next start does not sweep. */
            char tmp[4300];
            int rc = rf_blob_tmp_path(wk->c->blob_dir, "seam", tmp, sizeof(tmp));
            if (rc)
                return rf_err_set(&wk->err, rc, "'%s': cannot make a temp file for a seam",
                                  wk->c->blob_dir);
            snprintf(wk->paths[n], sizeof(wk->paths[n]), "%s.nut", tmp); /* the muxer goes by it */
            wk->seam[n] = true;
            if (!rc)
                rc = rf_blob_path(wk->c->blob_dir, prev->seam_tail.blob, tail_path, sizeof(tail_path));
            if (!rc)
                rc = rf_blob_path(wk->c->blob_dir, r->seam_head.blob, head_path, sizeof(head_path));
            if (rc)
                return rf_err_set(&wk->err, RF_EVERIFY, "chunk %zu: a seam part is missing", i);
            rc = rf_media_seam_encode(tail_path, head_path, head, &p, wk->paths[n], &wk->err);
            if (rc) {
                unlink(wk->paths[n]);
                rf_err_prefix(&wk->err, "seam before chunk %zu (frames %" PRId64 "-%" PRId64 "): ", i,
                              r->frame_start, r->frame_start + head - 1);
                return rc;
            }
            wk->parts[n].path = wk->paths[n];
            wk->parts[n].frame_start = r->frame_start;
            wk->parts[n].frame_count = head;
            wk->nseams++;
            n++;
        }
        rf_blob_path(wk->c->blob_dir, r->result_blob, wk->paths[n], sizeof(wk->paths[n]));
        wk->parts[n].path = wk->paths[n];
        wk->parts[n].frame_start = r->frame_start + head;
        wk->parts[n].frame_count = r->frame_end - r->frame_start - head;
        n++;
    }
    wk->nparts = n;
    return 0;
}

/* Results are content-addressed: a stored result whose bytes no longer hash to its name was
 * damaged at rest (a disk error, a stray write). Before a stitch uses them, every result and seam
 * part is hashed again; each chunk with a damaged or missing one gets the state "damaged" in the
 * pool thread's copy of its row, and the stitch fails with RF_EVERIFY (s_stitch_done renders
 * those chunks again). Without this a damaged chunk went into a "done" output unnoticed (found
 * by tests/faults, fault "bitrot"). */
static int s_stitch_check_blobs(c_work_t *wk)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < wk->nchunks; i++) {
        rf_store_chunk_t *r = &wk->rows[i];
        const char *blobs[3] = {r->result_blob, r->seam_head.blob, r->seam_tail.blob};
        for (size_t k = 0; k < 3; k++) {
            if (!*blobs[k])
                continue;
            char path[4400], hex[RF_SHA256_HEX_LEN + 1] = "";
            uint8_t d[RF_SHA256_LEN];
            if (rf_blob_path(wk->c->blob_dir, blobs[k], path, sizeof(path)) == 0 &&
                rf_sha256_file(path, d, NULL) == 0)
                rf_hex(d, sizeof(d), hex);
            if (strcmp(hex, blobs[k]) != 0) {
                snprintf(r->state, sizeof(r->state), "damaged");
                if (!bad++)
                    first = i;
                break;
            }
        }
    }
    if (bad)
        return rf_err_set(&wk->err, RF_EVERIFY,
                          "%zu stored chunk result(s) damaged or missing (first: chunk %zu)", bad,
                          first);
    return 0;
}

static int s_file_add(c_file_t **files, size_t *n, uint32_t pass, const char *key, const char *path,
                      const char *blob_dir, rf_err_t *err)
{
    c_file_t f = {.pass = pass, .model = !strcmp(key, "model")};
    snprintf(f.key, sizeof(f.key), "%s", key);
    const char *base = strrchr(path, '/');
    snprintf(f.name, sizeof(f.name), "%s", base ? base + 1 : path);
    rf_err_t local = {0};
    struct stat st;
    int rc = 0;
    if (stat(path, &st) != 0)
        rc = rf_err_set(&local, errno == ENOENT ? RF_ENOENT : RF_EIO, "%s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = rf_err_set(&local, RF_EINVAL, "not a regular file");
    else
        rc = rf_blob_put_local(blob_dir, path, f.sha, &f.size, &local);
    if (rc) {
        if (pass == C_FILE_CRITIC)
            return rf_err_set(err, rc, "critic.model '%s': %s", path, local.msg);
        return rf_err_set(err, rc, "pipeline[%u].%s '%s': %s", pass, key, path, local.msg);
    }
    c_file_t *grown = realloc(*files, (*n + 1) * sizeof(*grown));
    if (!grown)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    *files = grown;
    (*files)[(*n)++] = f;
    return 0;
}

/* Stores every file the spec's built-in passes name (their path parameters: onnx's model and
 * asset) and its critic's model in the blob store, so workers fetch them by hash (pool thread). */
static int s_files_import(rf_coordinator_t *c, const rf_job_spec_t *spec, c_file_t **files,
                          size_t *n, rf_err_t *err)
{
    int rc = 0;
    *files = NULL;
    *n = 0;
    for (size_t p = 0; !rc && p < spec->npasses; p++) {
        const rf_pass_spec_t *ps = &spec->pipeline[p];
        const rf_pass_def_t *def = rf_pass_find(ps->name);
        for (size_t d = 0; def && !rc && d < def->nparams; d++) {
            if (def->params[d].type != RF_PARAM_PATH || def->params[d].internal)
                continue;
            const char *v = rf_pass_spec_param(ps, def->params[d].key);
            if (v && *v)
                rc = s_file_add(files, n, (uint32_t)p, def->params[d].key, v, c->blob_dir, err);
        }
    }
    if (!rc && spec->critic.model)
        rc = s_file_add(files, n, C_FILE_CRITIC, "model", spec->critic.model, c->blob_dir, err);
    if (rc) {
        free(*files);
        *files = NULL;
        *n = 0;
    }
    return rc;
}

static void s_work_run(uv_work_t *req)
{
    c_work_t *wk = req->data;
    c_job_t *job = wk->job;
    switch (wk->kind) {
    case W_PLAN:
        wk->rc = s_files_import(wk->c, job->spec, &wk->files, &wk->nfiles, &wk->err);
        if (!wk->rc)
            wk->rc = rf_media_probe(job->spec->input, &wk->info, &wk->err);
        if (!wk->rc && wk->need_chunks)
            wk->rc = rf_plan_job(job->spec, wk->info, wk->c->blob_dir, &wk->chunks, &wk->nchunks,
                                 &wk->err);
        break;
    case W_VERIFY: {
        char path[4400];
        struct stat st;
        uint64_t frames = 0;
        uint8_t digest[RF_SHA256_LEN];
        wk->rc = rf_blob_path(wk->c->blob_dir, wk->blob, path, sizeof(path));
        if (!wk->rc && (stat(path, &st) != 0 || (uint64_t)st.st_size != wk->blob_size))
            wk->rc = rf_err_set(&wk->err, RF_EVERIFY, "result blob %.12s is missing or has the wrong size",
                                wk->blob);
        if (!wk->rc && wk->frame_list) {
            /* verify: sample - the list's own digest, every packet counted, three GOPs decoded */
            wk->rc = rf_media_checksum_sample(path, wk->frame_list, wk->expect_frames, wk->digest,
                                              wk->lease ^ wk->attempt, &wk->gops_checked, &wk->err);
            if (!wk->rc)
                wk->rc = s_verify_seam(wk, "head", &wk->seam_head, wk->head_overlap);
            if (!wk->rc)
                wk->rc = s_verify_seam(wk, "tail", &wk->seam_tail, wk->tail_overlap);
            break;
        }
        if (!wk->rc)
            wk->rc = rf_media_checksum(path, &frames, digest, NULL, NULL, &wk->err);
        if (!wk->rc && frames != wk->expect_frames)
            wk->rc = rf_err_set(&wk->err, RF_EVERIFY, "result has %" PRIu64 " frames, expected %" PRIu64,
                                frames, wk->expect_frames);
        if (!wk->rc && memcmp(digest, wk->digest, RF_SHA256_LEN) != 0)
            wk->rc = rf_err_set(&wk->err, RF_EVERIFY,
                                "frame checksums of the result differ from those the worker reported");
        if (!wk->rc)
            wk->rc = s_verify_seam(wk, "head", &wk->seam_head, wk->head_overlap);
        if (!wk->rc)
            wk->rc = s_verify_seam(wk, "tail", &wk->seam_tail, wk->tail_overlap);
        break;
    }
    case W_STITCH: {
        wk->rc = 0;
        if (!wk->info)
            wk->rc = rf_media_probe(job->spec->input, &wk->info, &wk->err);
        bool audio = job->spec->audio == RF_AUDIO_COPY && wk->info && wk->info->naudio > 0;
        if (!wk->rc)
            wk->rc = s_stitch_check_blobs(wk);
        if (!wk->rc)
            wk->rc = s_stitch_prepare(wk);
        if (!wk->rc)
            wk->rc = rf_media_stitch(wk->info, wk->parts, wk->nparts, audio, job->spec->output,
                                     &wk->err);
        /* The cross-faded seams are parts of this stitch only. */
        for (size_t i = 0; i < wk->nparts; i++)
            if (wk->seam[i])
                unlink(wk->paths[i]);
        if (!wk->rc)
            wk->rc = rf_media_verify_output(wk->info, job->spec->output, audio, &wk->report,
                                            &wk->err);
        /* Provenance (DESIGN §8): sign, then check the signed file again (boxes were inserted). */
        if (!wk->rc)
            wk->rc = rf_coord_sign_output(wk->c->signer, &job->row, job->spec, &wk->err);
        if (!wk->rc)
            wk->rc = rf_media_verify_output(wk->info, job->spec->output, audio, &wk->report,
                                            &wk->err);
        break;
    }
    }
}

static void s_work_done(uv_work_t *req, int status);

static int s_work_start(rf_coordinator_t *c, c_work_t *wk)
{
    wk->req.data = wk;
    wk->c = c;
    int rc = uv_queue_work(&c->loop, &wk->req, s_work_run, s_work_done);
    if (rc) {
        RF_ERROR(COMP, "cannot queue work: %s", uv_strerror(rc));
        free(wk);
        return RF_EIO;
    }
    c->pending_work++;
    wk->job->busy++;
    return 0;
}

static void s_plan_start(rf_coordinator_t *c, c_job_t *job, bool need_chunks)
{
    c_work_t *wk = calloc(1, sizeof(*wk));
    if (!wk) {
        s_job_fail(c, job, "out of memory planning the job");
        return;
    }
    wk->kind = W_PLAN;
    wk->job = job;
    wk->need_chunks = need_chunks;
    s_work_start(c, wk);
}

static void s_stitch_start(rf_coordinator_t *c, c_job_t *job)
{
    /* After a restart the re-verified last result and the re-probe can both find every chunk
     * done: one stitch per job (two would race for the same temp file and rename). */
    if (job->stitch_in_flight)
        return;
    c_work_t *wk = calloc(1, sizeof(*wk));
    if (wk) {
        wk->parts = calloc(2 * job->nchunks, sizeof(*wk->parts));
        wk->paths = calloc(2 * job->nchunks, sizeof(*wk->paths));
        wk->rows = calloc(job->nchunks, sizeof(*wk->rows));
        wk->seam = calloc(2 * job->nchunks, sizeof(*wk->seam));
    }
    if (!wk || !wk->parts || !wk->paths || !wk->rows || !wk->seam) {
        if (wk) {
            free(wk->seam);
            free(wk->parts);
            free(wk->paths);
            free(wk->rows);
        }
        free(wk);
        s_job_fail(c, job, "out of memory starting the stitch");
        return;
    }
    wk->kind = W_STITCH;
    wk->job = job;
    wk->nchunks = job->nchunks;
    for (size_t i = 0; i < job->nchunks; i++) {
        wk->rows[i] = job->chunks[i].row;
        wk->rows[i].failed_on = NULL; /* the copy must not share the loop's strings */
        wk->rows[i].color_ref = NULL;
    }
    s_set_state(job, "stitching");
    rf_store_job_set_state(c->store, job->row.id, "stitching", "", NULL);
    job->stitch_start_ms = rf_now_ms();
    s_event(c, job, "info", "all %zu chunks done; stitching '%s'", job->nchunks, job->spec->output);
    job->stitch_in_flight = s_work_start(c, wk) == 0;
}

static void s_chunks_adopt(c_job_t *job, rf_store_chunk_t *rows, size_t n, uint64_t hold_ms)
{
    job->chunks = calloc(n, sizeof(*job->chunks));
    if (!job->chunks)
        return;
    job->nchunks = n;
    job->ndone = 0;
    for (size_t i = 0; i < n; i++) {
        job->chunks[i].job = job;
        job->chunks[i].row = rows[i];
        if (!strcmp(rows[i].state, "done"))
            job->ndone++;
        else if (!strcmp(rows[i].state, "queued") && rows[i].attempt_open && hold_ms) {
            job->chunks[i].hold_until_ms = rf_now_ms() + hold_ms;
            job->holding++;
        }
    }
    free(rows); /* the strings it pointed to now belong to job->chunks */
    s_order_build(job);
}

static bool s_worker_can(const c_worker_t *w, const c_job_t *j);

/* Says in the job's events when no live worker can run it now (it waits for one to join). */
static void s_requirements_note(rf_coordinator_t *c, c_job_t *job)
{
    for (c_worker_t *w = c->workers; w; w = w->next)
        if (w->live && !w->quarantined && s_worker_can(w, job))
            return;
    char need[160];
    snprintf(need, sizeof(need), "encoder '%s'%s%s", job->spec->encode.codec,
             job->needs_gpu ? ", a GPU" : "", job->needs_vram_mib ? " with free VRAM" : "");
    if (job->needs_vram_mib)
        snprintf(need + strlen(need), sizeof(need) - strlen(need), " >= %" PRId64 " MiB",
                 job->needs_vram_mib);
    size_t listed = 0;
    for (size_t i = 0; i < job->spec->npasses; i++) {
        const rf_pass_def_t *def = rf_pass_find(job->spec->pipeline[i].name);
        if (def && def->automatic)
            continue; /* label, watermark: built into every worker */
        snprintf(need + strlen(need), sizeof(need) - strlen(need), "%s '%s'",
                 listed++ ? "," : "; passes", job->spec->pipeline[i].name);
    }
    s_event(c, job, "warn", "waiting: no live worker has what this job needs (%s)", need);
}

static void s_plan_done(rf_coordinator_t *c, c_work_t *wk)
{
    c_job_t *job = wk->job;
    if (wk->rc) {
        rf_media_info_destroy(&wk->info);
        s_job_fail(c, job, wk->err.msg);
        for (size_t i = 0; i < wk->nfiles; i++)
            s_blob_drop(c, wk->files[i].sha);
        return;
    }
    job->info = wk->info;
    wk->info = NULL;
    free(job->files);
    job->files = wk->files;
    job->nfiles = wk->nfiles;
    wk->files = NULL;
    job->nmodels = 0;
    for (size_t i = 0; i < job->nfiles; i++)
        job->nmodels += job->files[i].model;
    if (s_job_terminal(job)) { /* cancelled while planning */
        s_job_release_files(c, job);
        return;
    }
    if (wk->need_chunks && (int64_t)wk->nchunks > c->max_chunks) {
        char m[300];
        snprintf(m, sizeof(m),
                 "planned %zu chunks, over limits.chunks_per_job (%" PRId64 "): raise "
                 "chunking.target_seconds in the spec, or the limit",
                 wk->nchunks, c->max_chunks);
        rf_store_chunks_free(wk->chunks, wk->nchunks);
        wk->chunks = NULL;
        s_job_fail(c, job, m);
        return;
    }
    if (wk->need_chunks) {
        rf_err_t err = {0};
        if (rf_store_chunks_insert(c->store, job->row.id, wk->chunks, wk->nchunks, &err)) {
            rf_store_chunks_free(wk->chunks, wk->nchunks);
            wk->chunks = NULL;
            s_job_fail(c, job, err.msg);
            return;
        }
        rf_store_job_set_frames(c->store, job->row.id, job->info->nb_frames, NULL);
        job->row.frames_total = job->info->nb_frames;
        s_chunks_adopt(job, wk->chunks, wk->nchunks, 0);
        wk->chunks = NULL;
        if (!job->chunks) {
            s_job_fail(c, job, "out of memory loading chunks");
            return;
        }
        s_set_state(job, "running");
        s_event(c, job, "info", "planned %zu chunks over %" PRId64 " frames (%.3f fps, %s)",
                job->nchunks, job->info->nb_frames, av_q2d(job->info->frame_rate),
                job->info->codec_name);
        s_requirements_note(c, job);
    }
    if (job->ndone == job->nchunks && !strcmp(job->row.state, "running"))
        s_stitch_start(c, job);
    else if (!strcmp(job->row.state, "stitching"))
        s_stitch_start(c, job);
    s_dispatch(c);
}

static void s_chunk_requeue(rf_coordinator_t *c, c_job_t *job, c_chunk_t *ch, const char *outcome,
                            const char *message, const char *blame);

/* Schedules a rejected result's blobs for deletion. */
static void s_result_drop(rf_coordinator_t *c, const c_work_t *wk)
{
    s_blob_drop(c, wk->blob);
    if (*wk->seam_head.blob)
        s_blob_drop(c, wk->seam_head.blob);
    if (*wk->seam_tail.blob)
        s_blob_drop(c, wk->seam_tail.blob);
}

static void s_audit(rf_coordinator_t *c, const char *type, const char *actor, const char *job,
                    const char *detail);

/* The critic gate's scores of a verified result: kept with the chunk (status) and told as one
 * event, "chunk 3: critic 0.41 (seed 7), 0.62 (seed 8); kept seed 8 (0.62, threshold 0.5)". */
static void s_critic_keep(rf_coordinator_t *c, c_job_t *job, c_chunk_t *ch, const c_work_t *wk)
{
    free(ch->critic);
    ch->critic = NULL;
    ch->ncritic = ch->critic_kept = 0;
    if (!wk->ncritic)
        return;
    if ((ch->critic = malloc(wk->ncritic * sizeof(*ch->critic))) != NULL) {
        memcpy(ch->critic, wk->critic, wk->ncritic * sizeof(*ch->critic));
        ch->ncritic = (uint8_t)wk->ncritic;
        ch->critic_kept = (uint8_t)wk->critic_kept;
    }
    char list[900] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < wk->ncritic && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%.4g (seed %" PRIu64 ")", i ? ", " : "",
                         (double)wk->critic[i].score, wk->critic[i].seed);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    const c_critic_t *kept = &wk->critic[wk->critic_kept];
    double threshold = job->spec ? job->spec->critic.threshold : 0;
    bool passed = kept->score >= threshold;
    s_event_at(c, job, ch->row.index, wk->attempt, wk->worker, passed ? "info" : "warn",
               "chunk %u: critic %s; kept seed %" PRIu64 " (%.4g, threshold %.4g%s)", ch->row.index,
               list, kept->seed, (double)kept->score, threshold,
               passed ? "" : ", below it: no re-render left, the best was kept");
}

static void s_verify_done(rf_coordinator_t *c, c_work_t *wk)
{
    c_job_t *job = wk->job;
    c_chunk_t *ch = &job->chunks[wk->chunk];
    ch->verifying = false;
    if (s_job_terminal(job) || !strcmp(ch->row.state, "done"))
        return;
    if (wk->rc) {
        char msg[1200];
        c->obs.verify_failures++;
        snprintf(msg, sizeof(msg), "result from '%s' failed verification: %s", wk->worker, wk->err.msg);
        if (wk->lease && wk->lease == ch->backup_lease) {
            s_event_at(c, job, ch->row.index, wk->attempt, wk->worker, "warn", "chunk %u: backup %s",
                       ch->row.index, msg);
            rf_store_attempt_end(c->store, job->row.id, ch->row.index, wk->attempt, "failed", msg, NULL);
            s_backup_clear(c, ch, NULL);
            s_worker_failed(c, wk->worker, job);
            s_result_drop(c, wk);
        } else if (ch->lease == wk->lease || ch->lease == 0) {
            rf_store_chunk_requeued(c->store, job->row.id, ch->row.index, NULL);
            s_result_drop(c, wk);
            s_chunk_requeue(c, job, ch, "failed", msg, wk->worker);
        } else {
            s_event_at(c, job, ch->row.index, wk->attempt, wk->worker, "warn", "chunk %u: late %s",
                       ch->row.index, msg);
        }
        s_dispatch(c);
        return;
    }
    rf_err_t err = {0};
    /* Durable before it counts: the blob was fsynced by the blob server; this commit makes the
     * chunk done. */
    if (rf_store_chunk_done(c->store, job->row.id, ch->row.index, wk->blob, wk->blob_size, wk->worker,
                            &err)) {
        s_job_fail(c, job, err.msg);
        return;
    }
    rf_store_chunk_seams(c->store, job->row.id, ch->row.index, &wk->seam_head, &wk->seam_tail, NULL);
    rf_store_attempt_end(c->store, job->row.id, ch->row.index, wk->attempt, "done", "", NULL);
    snprintf(ch->row.state, sizeof(ch->row.state), "done");
    ch->row.seam_head = wk->seam_head;
    ch->row.seam_tail = wk->seam_tail;
    snprintf(ch->row.result_blob, sizeof(ch->row.result_blob), "%s", wk->blob);
    ch->row.result_size = wk->blob_size;
    snprintf(ch->row.worker, sizeof(ch->row.worker), "%s", wk->worker);
    ch->frames_done = (uint64_t)(ch->row.frame_end - ch->row.frame_start);
    s_critic_keep(c, job, ch, wk);
    /* A superseded holder, if any, is told to stop: the first verified result wins. */
    if (ch->lease && ch->lease != wk->lease) {
        s_send_cancel(c, ch->worker, ch->lease, "another attempt's result was kept");
        rf_store_attempt_end(c->store, job->row.id, ch->row.index, ch->lease_attempt, "superseded",
                             "another attempt's result was kept", NULL);
    }
    s_backup_clear(c, ch, wk->lease == ch->backup_lease ? NULL : "another attempt's result was kept");
    s_lease_clear(c, ch, false);
    job->ndone++;
    c->obs.chunks_verified++;
    {
        char detail[300];
        snprintf(detail, sizeof(detail), "chunk %u frames %" PRId64 "..%" PRId64 " result %s", ch->row.index,
                 ch->row.frame_start, ch->row.frame_end, wk->blob);
        s_audit(c, "render", wk->worker, job->row.id, detail);
    }
    c->obs.result_bytes += wk->blob_size;
    if (wk->gops_checked)
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(job->row.id, ch->row.index, wk->attempt, wk->worker),
                   "job %s: chunk %u done by %s (%zu/%zu; sampled check: %u GOPs decoded)",
                   job->row.id, ch->row.index, wk->worker, job->ndone, job->nchunks,
                   wk->gops_checked);
    else
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(job->row.id, ch->row.index, wk->attempt, wk->worker),
                   "job %s: chunk %u done by %s (%zu/%zu; every frame checked)", job->row.id,
                   ch->row.index, wk->worker, job->ndone, job->nchunks);
    for (c_worker_t *x = c->workers; x; x = x->next)
        if (!strcmp(x->name, wk->worker))
            x->chunks_done++;
    if (job->ndone == job->nchunks)
        s_stitch_start(c, job);
    else
        s_dispatch(c); /* more done may make a backup run worthwhile for an idle worker */
}

/* After s_stitch_check_blobs found damaged results: those chunks are queued again (their limit
 * of attempts counts afresh: they had succeeded), the damaged files deleted at once (an upload of
 * the same name must not find them "already stored"), and the job runs again. Returns how many. */
static size_t s_stitch_requeue_damaged(rf_coordinator_t *c, c_job_t *job, const c_work_t *wk)
{
    size_t n = 0;
    for (size_t i = 0; i < wk->nchunks && i < job->nchunks; i++) {
        c_chunk_t *ch = &job->chunks[i];
        if (strcmp(wk->rows[i].state, "damaged") || strcmp(ch->row.state, "done"))
            continue;
        s_event_at(c, job, ch->row.index, ch->row.attempts, ch->row.worker, "warn",
                   "chunk %u: its stored result %.12s... is damaged or missing (its bytes no longer "
                   "hash to its name); rendering it again", ch->row.index, ch->row.result_blob);
        const char *blobs[3] = {ch->row.result_blob, ch->row.seam_head.blob, ch->row.seam_tail.blob};
        for (size_t k = 0; k < 3; k++) {
            char path[4400];
            if (*blobs[k] && rf_blob_path(c->blob_dir, blobs[k], path, sizeof(path)) == 0)
                unlink(path);
        }
        rf_store_chunk_requeued(c->store, job->row.id, ch->row.index, NULL);
        snprintf(ch->row.state, sizeof(ch->row.state), "queued");
        ch->row.result_blob[0] = ch->row.result_digest[0] = ch->row.worker[0] = '\0';
        ch->row.result_size = 0;
        memset(&ch->row.seam_head, 0, sizeof(ch->row.seam_head));
        memset(&ch->row.seam_tail, 0, sizeof(ch->row.seam_tail));
        ch->attempt_base = ch->row.attempts;
        ch->frames_done = 0;
        job->ndone--;
        s_chunk_returned(ch);
        n++;
    }
    if (n) {
        s_set_state(job, "running");
        rf_store_job_set_state(c->store, job->row.id, "running", "", NULL);
        s_dispatch(c);
    }
    return n;
}

static void s_stitch_done(rf_coordinator_t *c, c_work_t *wk)
{
    c_job_t *job = wk->job;
    job->stitch_in_flight = false;
    if (!job->info && wk->info) {
        job->info = wk->info;
        wk->info = NULL;
    }
    rf_media_info_destroy(&wk->info);
    if (job->stitch_start_ms) {
        c->obs.stitches++;
        c->obs.stitch_seconds += (double)(rf_now_ms() - job->stitch_start_ms) / 1000.0;
        job->stitch_start_ms = 0;
    }
    if (s_job_terminal(job))
        return;
    if (wk->rc) {
        if (wk->rc == RF_EVERIFY && s_stitch_requeue_damaged(c, job, wk))
            return;
        s_job_fail(c, job, wk->err.msg);
        return;
    }
    s_set_state(job, "done");
    rf_store_job_set_state(c->store, job->row.id, "done", "", NULL);
    s_audit(c, "done", "coordinator", job->row.id, job->spec->output);
    s_event(c, job, "info",
            "done: '%s' written, verified and signed (C2PA) (%" PRId64 " frames, %.3f s, %" PRId64
            " audio packets%s, %zu cross-faded seams)",
            job->spec->output, wk->report.frames, wk->report.duration_s, wk->report.audio_packets,
            wk->report.audio_packets ? " identical to the source's" : "", wk->nseams);
    s_job_release_blobs(c, job);
}

static void s_work_done(uv_work_t *req, int status)
{
    c_work_t *wk = req->data;
    rf_coordinator_t *c = wk->c;
    c->pending_work--;
    wk->job->busy--;
    if (status == UV_ECANCELED || c->stopping) {
        rf_media_info_destroy(&wk->info);
        if (wk->chunks)
            rf_store_chunks_free(wk->chunks, wk->nchunks);
    } else if (wk->kind == W_PLAN) {
        s_plan_done(c, wk);
    } else if (wk->kind == W_VERIFY) {
        s_verify_done(c, wk);
    } else {
        s_stitch_done(c, wk);
    }
    free(wk->parts);
    free(wk->paths);
    free(wk->rows);
    free(wk->seam);
    free(wk->frame_list);
    free(wk->files);
    free(wk);
}

/* ---- scheduling ------------------------------------------------------------------------------- */

static bool s_failed_on(const c_chunk_t *ch, const char *worker)
{
    const char *list = ch->row.failed_on ? ch->row.failed_on : "";
    size_t n = strlen(worker);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, worker, n))
            return true;
        if (!end)
            break;
        p = end + 1;
    }
    return false;
}

/* Whether worker w announced `what` (an encoder or a pass name) in its capabilities. */
static bool s_worker_has(const c_worker_t *w, const char *what)
{
    char needle[80];
    snprintf(needle, sizeof(needle), " %s ", what);
    return strstr(w->caps, needle) != NULL;
}

/* Takes a worker's advertised file list (Hello's Capabilities.models, Heartbeat.models). */
static void s_worker_models(c_worker_t *w, char *const *models, size_t n)
{
    if (n > C_WORKER_MODELS)
        n = C_WORKER_MODELS;
    if (!w->models && n && !(w->models = malloc(C_WORKER_MODELS * sizeof(*w->models))))
        return;
    w->nmodels = 0;
    for (size_t i = 0; i < n; i++)
        if (models[i] && rf_sha256_hex_valid(models[i]))
            memcpy(w->models[w->nmodels++], models[i], RF_SHA256_HEX_LEN + 1);
}

/* Whether w holds every model of job j in its file cache (false for a job without models). */
static bool s_worker_holds(const c_worker_t *w, const c_job_t *j)
{
    if (!j->nmodels || !w->nmodels)
        return false;
    for (size_t i = 0; i < j->nfiles; i++) {
        if (!j->files[i].model)
            continue;
        bool found = false;
        for (uint32_t k = 0; k < w->nmodels && !found; k++)
            found = !strcmp(w->models[k], j->files[i].sha);
        if (!found)
            return false;
    }
    return true;
}

/* Capability matching: the job's encoder opened on w, and w has every pass of the pipeline. */
static bool s_worker_can(const c_worker_t *w, const c_job_t *j)
{
    if (!j->spec)
        return false; /* a finished job loaded without its spec */
    if (!s_worker_has(w, j->spec->encode.codec))
        return false;
    if (j->needs_gpu && !*w->gpu_model)
        return false;
    if (j->needs_vram_mib > 0 && w->vram_bytes < (uint64_t)j->needs_vram_mib * 1024 * 1024)
        return false;
    for (size_t i = 0; i < j->spec->npasses; i++)
        if (!s_worker_has(w, j->spec->pipeline[i].name))
            return false;
    return true;
}

/* The chunk for worker w. Jobs share the slots in proportion to their priority (weight =
 * priority + 1): the job with the fewest running chunks per unit of weight goes next, so a
 * priority-80 job runs about four chunks for each one of a priority-20 job, and no running job
 * starves. Within a job the longest queued chunk goes first (so a job's tail is made of short
 * chunks), never one w already failed, and only if w has the job's encoder and passes. */
static c_chunk_t *s_pick(rf_coordinator_t *c, c_worker_t *w, c_job_t **job_out)
{
    c_chunk_t *best = NULL;
    c_job_t *best_job = NULL;
    for (c_job_t *j = c->jobs; j; j = j->next) {
        if (strcmp(j->row.state, "running") || !j->info || j->paused || !j->order ||
            !s_worker_can(w, j))
            continue;
        /* (running + 1) / weight, compared by cross-multiplication before looking for a chunk
         * (the cheap test first); ties: higher priority, then the older job (list order). */
        if (best_job) {
            uint64_t key = ((uint64_t)j->running + 1) * (uint64_t)(best_job->row.priority + 1);
            uint64_t best_key = ((uint64_t)best_job->running + 1) * (uint64_t)(j->row.priority + 1);
            if (key > best_key || (key == best_key && j->row.priority <= best_job->row.priority))
                continue;
        }
        c_chunk_t *cand = s_job_next(j, w);
        if (cand) {
            best = cand;
            best_job = j;
        }
    }
    *job_out = best_job;
    return best;
}

static void s_params_fill(Reelfarm__Param *storage, Reelfarm__Param **ptrs, const rf_param_t *src,
                          size_t n)
{
    for (size_t i = 0; i < n; i++) {
        reelfarm__param__init(&storage[i]);
        storage[i].key = src[i].key;
        storage[i].value = src[i].value;
        ptrs[i] = &storage[i];
    }
}

/* Builds job->pb_* (once): the Assign's pipeline and encoder, pointing into the job's spec. */
static int s_job_pb(c_job_t *job)
{
    if (job->pb_ready)
        return 0;
    const rf_job_spec_t *spec = job->spec;
    size_t nparams = 0;
    for (size_t i = 0; i < spec->npasses; i++)
        nparams += spec->pipeline[i].nparams;
    job->pb_passes = calloc(spec->npasses + 1, sizeof(*job->pb_passes));
    job->pb_pass_ptrs = calloc(spec->npasses + 1, sizeof(*job->pb_pass_ptrs));
    job->pb_params = calloc(nparams + spec->encode.noptions + 1, sizeof(*job->pb_params));
    job->pb_param_ptrs = calloc(nparams + spec->encode.noptions + 1, sizeof(*job->pb_param_ptrs));
    if (!job->pb_passes || !job->pb_pass_ptrs || !job->pb_params || !job->pb_param_ptrs) {
        s_job_pb_free(job);
        return RF_ENOMEM;
    }
    size_t used = 0;
    for (size_t i = 0; i < spec->npasses; i++) {
        const rf_pass_spec_t *p = &spec->pipeline[i];
        Reelfarm__PassSpec *ps = &job->pb_passes[i];
        reelfarm__pass_spec__init(ps);
        ps->name = p->name;
        ps->role = p->role;
        ps->n_params = p->nparams;
        ps->params = &job->pb_param_ptrs[used];
        s_params_fill(&job->pb_params[used], &job->pb_param_ptrs[used], p->params, p->nparams);
        used += p->nparams;
        job->pb_pass_ptrs[i] = ps;
    }
    Reelfarm__EncodeSpec *enc = &job->pb_encode;
    reelfarm__encode_spec__init(enc);
    enc->codec = spec->encode.codec;
    enc->crf = spec->encode.crf;
    enc->preset = spec->encode.preset ? spec->encode.preset : "";
    enc->pix_fmt = spec->encode.pix_fmt ? spec->encode.pix_fmt : "";
    enc->bitrate = spec->encode.bitrate;
    enc->gop = (uint32_t)spec->encode.gop;
    enc->n_options = spec->encode.noptions;
    enc->options = &job->pb_param_ptrs[used];
    s_params_fill(&job->pb_params[used], &job->pb_param_ptrs[used], spec->encode.options,
                  spec->encode.noptions);
    job->pb_ready = true;
    return 0;
}

static int s_assign(rf_coordinator_t *c, c_worker_t *w, uint32_t slot, c_job_t *job, c_chunk_t *ch,
                    bool backup)
{
    const rf_job_spec_t *spec = job->spec;
    uint64_t lease = ++c->next_lease;
    uint32_t attempt = ch->row.attempts + 1;
    rf_err_t err = {0};
    if (rf_store_attempt_begin(c->store, job->row.id, ch->row.index, attempt, w->name, &err)) {
        RF_ERROR(COMP, "%s", err.msg);
        return RF_EDB;
    }
    ch->row.attempts = attempt;
    int rc = s_job_pb(job);
    if (rc)
        return rc;

    Reelfarm__Assign a = REELFARM__ASSIGN__INIT;
    a.lease = lease;
    a.job_id = job->row.id;
    a.chunk = ch->row.index;
    a.attempt = attempt;
    a.slot = slot;
    a.frame_start = ch->row.frame_start;
    a.frame_end = ch->row.frame_end;
    a.context_before = ch->row.context_frames;
    a.ctx_pts = ch->row.ctx_pts;
    a.start_pts = ch->row.start_pts;
    a.end_pts = ch->row.end_pts;
    a.tb_num = job->info->time_base.num;
    a.tb_den = job->info->time_base.den;
    a.fps_num = job->info->frame_rate.num;
    a.fps_den = job->info->frame_rate.den;
    a.n_pipeline = spec->npasses;
    a.pipeline = job->pb_pass_ptrs;
    a.encode = &job->pb_encode;
    a.input_blob = ch->row.input_blob;
    a.input_size = ch->row.input_size;
    a.input_path = "";
    a.seed = spec->seed;
    a.heartbeat_ms = (uint32_t)c->heartbeat_ms;
    a.head_overlap = ch->row.head_overlap;
    a.tail_overlap = ch->row.tail_overlap;
    a.tail_end_pts = ch->row.tail_end_pts;
    a.color_ref = ch->row.color_ref ? ch->row.color_ref : "";
    Reelfarm__CriticSpec critic = REELFARM__CRITIC_SPEC__INIT;
    if (spec->critic.model) {
        critic.model = spec->critic.model;
        critic.threshold = (float)spec->critic.threshold;
        critic.max_rerenders = (uint32_t)spec->critic.max_rerenders;
        critic.input_min = (float)spec->critic.input_min;
        critic.input_max = (float)spec->critic.input_max;
        critic.device = spec->critic.device ? spec->critic.device : "auto";
        a.critic = &critic;
    }
    Reelfarm__FileRef *refs = job->nfiles ? calloc(job->nfiles, sizeof(*refs)) : NULL;
    Reelfarm__FileRef **ref_ptrs = job->nfiles ? calloc(job->nfiles, sizeof(*ref_ptrs)) : NULL;
    if (job->nfiles && (!refs || !ref_ptrs)) {
        free(refs);
        free(ref_ptrs);
        rf_store_attempt_end(c->store, job->row.id, ch->row.index, attempt, "lost", "out of memory",
                             NULL);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < job->nfiles; i++) {
        const c_file_t *f = &job->files[i];
        if (f->pass == C_FILE_CRITIC) {
            critic.model_sha256 = (char *)f->sha;
            critic.model_size = f->size;
            continue;
        }
        reelfarm__file_ref__init(&refs[a.n_files]);
        refs[a.n_files].pass = f->pass;
        refs[a.n_files].key = (char *)f->key;
        refs[a.n_files].sha256 = (char *)f->sha;
        refs[a.n_files].size = f->size;
        refs[a.n_files].name = (char *)f->name;
        ref_ptrs[a.n_files] = &refs[a.n_files];
        a.n_files++;
    }
    a.files = ref_ptrs;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_ASSIGN;
    env.assign = &a;
    rc = s_send_worker(c, w, &env);
    free(refs);
    free(ref_ptrs);
    if (rc) {
        rf_store_attempt_end(c->store, job->row.id, ch->row.index, attempt, "lost",
                             "could not send the assignment", NULL);
        goto out;
    }
    if (backup) {
        ch->backup_lease = lease;
        ch->backup_worker = w;
        ch->backup_attempt = attempt;
        if (s_lm_put(&c->leases, lease, ch))
            RF_ERROR(COMP, "out of memory recording lease %" PRIu64, lease);
        c->obs.backups++;
        s_event_at(c, job, ch->row.index, attempt, w->name, "info",
                   "backup run of chunk %u on '%s' (attempt %u): '%s' is the slowest",
                ch->row.index, w->name, attempt, ch->worker ? ch->worker->name : "?");
        goto out;
    }
    s_lease_set(c, ch, lease, w);
    s_chunk_taken(ch);
    ch->lease_attempt = attempt;
    ch->progress_ms = rf_now_ms();
    ch->frames_done = 0;
    ch->fps = 0;
    c->obs.assignments++;
    rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(job->row.id, ch->row.index, attempt, w->name),
               "job %s: chunk %u (frames %" PRId64 "-%" PRId64 ") -> %s slot %u, attempt %u",
               job->row.id, ch->row.index, ch->row.frame_start, ch->row.frame_end - 1, w->name, slot,
               attempt);
out:
    return rc;
}

/* The straggler worth a backup run on idle worker w: in a job at least 90% done, the running
 * chunk (without a backup yet, not held by w, not failed on w) with the most estimated time left.
 * Whichever run's result is verified first wins; the other is cancelled. */
static c_chunk_t *s_pick_backup(rf_coordinator_t *c, c_worker_t *w, c_job_t **job_out)
{
    c_chunk_t *best = NULL;
    double best_left = 0;
    uint64_t now = rf_now_ms();
    for (c_job_t *j = c->jobs; j; j = j->next) {
        if (strcmp(j->row.state, "running") || j->paused || !j->order || !s_worker_can(w, j) ||
            j->ndone * 1000 < j->nchunks * RF_BACKUP_DONE_PERMILLE)
            continue;
        for (size_t i = 0; i < j->nchunks; i++) {
            c_chunk_t *ch = &j->chunks[i];
            if (!ch->lease || ch->verifying || ch->backup_lease || ch->worker == w ||
                s_failed_on(ch, w->name))
                continue;
            /* Estimated seconds left at its current rate; a chunk with no progress report yet
             * counts as having everything left at one frame per second of its age. */
            double frames_left = (double)(ch->row.frame_end - ch->row.frame_start) - (double)ch->frames_done;
            double fps = ch->fps > 0 ? ch->fps : 1.0;
            double left = frames_left / fps;
            if (now - ch->progress_ms < 2000 && ch->fps <= 0)
                continue; /* just started: give it a moment to report */
            if (!best || left > best_left) {
                best = ch;
                best_left = left;
                *job_out = j;
            }
        }
    }
    return best;
}

/* Dispatch's tie-breaker (docs/ARCHITECTURE.md): when idle worker w lacks job's models, another
 * idle worker that holds them all and could run ch (live, not quarantined, has the job's encoder,
 * passes and requirements, never failed ch) - or NULL. */
static c_worker_t *s_model_holder(rf_coordinator_t *c, const c_worker_t *w, const c_job_t *job,
                                  const c_chunk_t *ch)
{
    if (!job->nmodels || s_worker_holds(w, job))
        return NULL;
    for (c_worker_t *h = c->workers; h; h = h->next)
        if (h != w && h->live && !h->quarantined && h->nidle > 0 && s_worker_holds(h, job) &&
            s_worker_can(h, job) && !s_failed_on(ch, h->name))
            return h;
    return NULL;
}

/* Fills worker w's idle slots. */
static void s_dispatch_worker(rf_coordinator_t *c, c_worker_t *w)
{
    while (!c->stopping && w->live && !w->quarantined && w->nidle > 0) {
        c_job_t *job = NULL;
        c_chunk_t *ch = s_pick(c, w, &job);
        bool backup = false;
        if (!ch) {
            ch = s_pick_backup(c, w, &job);
            backup = true;
        }
        if (!ch)
            break;
        /* The chunk the fair share picked goes to an idle worker that already holds the job's
         * models when w does not; w then picks again. */
        c_worker_t *to = backup ? NULL : s_model_holder(c, w, job, ch);
        if (!to)
            to = w;
        uint32_t slot = to->idle[to->nidle - 1];
        int rc = s_assign(c, to, slot, job, ch, backup);
        if (rc == RF_EUNAVAIL || rc == RF_EIO) {
            to->live = false; /* it went away; its Hello will bring it back */
            if (to == w)
                break;
            continue;
        }
        if (rc)
            break;
        to->nidle--;
    }
}

/* Fills every idle slot: after something made work available (a plan, a requeue, a resume). A
 * Ready only needs its own worker filled (s_dispatch_worker), which keeps the cost of a Ready
 * independent of the number of workers. */
static void s_dispatch(rf_coordinator_t *c)
{
    if (rf_store_broken(c->store))
        return; /* nothing new is assigned while state changes cannot be recorded */
    for (c_worker_t *w = c->workers; w && !c->stopping; w = w->next)
        if (w->nidle)
            s_dispatch_worker(c, w);
}

/* Every live worker has failed this chunk: nobody left to try it now. */
/* Whether every live worker that could run the chunk has failed it (workers that lack its
 * encoder, passes or requirements would never be offered it, so they do not count). */
static bool s_failed_everywhere(rf_coordinator_t *c, const c_chunk_t *ch)
{
    bool any = false;
    for (c_worker_t *w = c->workers; w; w = w->next) {
        if (!w->live || w->quarantined || !s_worker_can(w, ch->job))
            continue;
        any = true;
        if (!s_failed_on(ch, w->name))
            return false;
    }
    return any;
}

static void s_chunk_fail_job(rf_coordinator_t *c, c_job_t *job, c_chunk_t *ch)
{
    char *reasons = rf_store_attempt_reasons(c->store, job->row.id, ch->row.index);
    char msg[2048];
    snprintf(msg, sizeof(msg), "chunk %u (frames %" PRId64 "-%" PRId64 ") failed: %s", ch->row.index,
             ch->row.frame_start, ch->row.frame_end - 1, reasons && *reasons ? reasons : "no reason");
    free(reasons);
    snprintf(ch->row.state, sizeof(ch->row.state), "failed");
    rf_store_chunk_failed(c->store, job->row.id, ch->row.index, ch->row.failed_on, "failed", NULL);
    s_job_fail(c, job, msg);
}

/* Counts a failure against worker `name`; failures in RF_QUARANTINE_JOBS distinct jobs within the
 * window quarantine it (no more work until it restarts: a new instance starts clean). */
static void s_worker_failed(rf_coordinator_t *c, const char *name, const c_job_t *job)
{
    c_worker_t *w = NULL;
    for (c_worker_t *x = c->workers; x && !w; x = x->next)
        if (!strcmp(x->name, name))
            w = x;
    if (!w)
        return;
    w->chunks_failed++;
    uint64_t now = rf_now_ms();
    size_t slot = 0, distinct = 0;
    bool found = false;
    for (size_t i = 0; i < RF_QUARANTINE_JOBS && !found; i++)
        if (!strcmp(w->failed_jobs[i], job->row.id))
            slot = i, found = true; /* this job again: refresh its entry */
    for (size_t i = 1; i < RF_QUARANTINE_JOBS && !found; i++)
        if (w->failed_ms[i] < w->failed_ms[slot])
            slot = i; /* a new job: replace the oldest entry */
    snprintf(w->failed_jobs[slot], sizeof(w->failed_jobs[slot]), "%s", job->row.id);
    w->failed_ms[slot] = now;
    for (size_t i = 0; i < RF_QUARANTINE_JOBS; i++)
        distinct += w->failed_jobs[i][0] && now - w->failed_ms[i] <= RF_QUARANTINE_WINDOW_MS;
    if (distinct >= RF_QUARANTINE_JOBS && !w->quarantined) {
        w->quarantined = true;
        w->nidle = 0;
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(NULL, -1, -1, w->name),
                   "worker '%s' quarantined: it failed chunks of %d different jobs within %d min",
                   w->name, RF_QUARANTINE_JOBS, RF_QUARANTINE_WINDOW_MS / 60000);
    }
}

/* Ends the current attempt of ch and puts the chunk back in the queue, or fails the job when the
 * chunk has used its attempts or nobody is left to try it. blame names the worker at fault (it
 * will not get this chunk again), or is NULL when no worker is (lost, cancelled). */
static void s_chunk_requeue(rf_coordinator_t *c, c_job_t *job, c_chunk_t *ch, const char *outcome,
                            const char *message, const char *blame)
{
    bool blame_worker = blame != NULL;
    const char *wname = blame ? blame : ch->worker ? ch->worker->name : "";
    rf_store_attempt_end(c->store, job->row.id, ch->row.index, ch->lease ? ch->lease_attempt : ch->row.attempts,
                         outcome, message, NULL);
    if (blame_worker && *wname)
        s_worker_failed(c, wname, job);
    if (blame_worker && *wname && !s_failed_on(ch, wname)) {
        size_t old = ch->row.failed_on ? strlen(ch->row.failed_on) : 0;
        char *grown = realloc(ch->row.failed_on, old + strlen(wname) + 2);
        if (grown) {
            snprintf(grown + old, strlen(wname) + 2, "%s%s", old ? " " : "", wname);
            ch->row.failed_on = grown;
        }
        rf_store_chunk_failed(c->store, job->row.id, ch->row.index, ch->row.failed_on, "queued", NULL);
    }
    s_event_at(c, job, ch->row.index, ch->row.attempts, wname, "warn",
               "chunk %u attempt %u on '%s' %s: %s", ch->row.index, ch->row.attempts,
               *wname ? wname : "?", outcome, message);
    s_lease_clear(c, ch, true);
    s_chunk_returned(ch);
    ch->frames_done = 0;
    ch->fps = 0;
    c->obs.retries[!strcmp(outcome, "lost") ? 1 : !strcmp(outcome, "timed out") ? 2
                   : !strcmp(outcome, "handed back")  ? 3 : 0]++;
    c->obs.lease_expiries += !strcmp(outcome, "lost") || !strcmp(outcome, "timed out");
    if ((int)(ch->row.attempts - ch->attempt_base) >= c->max_attempts ||
        (blame_worker && s_failed_everywhere(c, ch)))
        s_chunk_fail_job(c, job, ch);
}

static void s_cancel_leases(rf_coordinator_t *c, c_job_t *job, const char *reason)
{
    for (size_t i = 0; i < job->nchunks; i++) {
        c_chunk_t *ch = &job->chunks[i];
        if (!ch->lease)
            continue;
        s_send_cancel(c, ch->worker, ch->lease, reason);
        rf_store_attempt_end(c->store, job->row.id, ch->row.index, ch->lease_attempt, "cancelled",
                             reason, NULL);
        if (ch->backup_lease)
            rf_store_attempt_end(c->store, job->row.id, ch->row.index, ch->backup_attempt,
                                 "cancelled", reason, NULL);
        s_backup_clear(c, ch, reason);
        s_lease_clear(c, ch, false);
    }
}

static void s_job_fail(rf_coordinator_t *c, c_job_t *job, const char *message)
{
    if (s_job_terminal(job))
        return;
    if (rf_store_broken(c->store)) {
        /* Nothing final is decided while state.db cannot record it: the state is reloaded from
         * the file once space returns, and the job goes on from what it recorded. */
        RF_WARN(COMP, "job %s: not failed for now (%s): the state database cannot be written; "
                      "the job goes on when disk space returns", job->row.id, message);
        return;
    }
    s_cancel_leases(c, job, "job failed");
    s_set_state(job, "failed");
    free(job->row.message);
    job->row.message = strdup(message);
    rf_store_job_set_state(c->store, job->row.id, "failed", message, NULL);
    s_event(c, job, "error", "failed: %s", message);
    /* Blobs stay: `retry` continues from the chunks already done; `cancel` releases them. */
}

/* A done or cancelled job's input slices and chunk results are deleted unless an unfinished job still
 * names them (blobs are content-addressed, so two jobs on the same input share slices). The
 * output file is the product; the state keeps the job's record and events. */
/* The job's files (models, assets) leave the blob store once no unfinished job reads them. */
static void s_job_release_files(rf_coordinator_t *c, c_job_t *job)
{
    for (size_t i = 0; i < job->nfiles; i++)
        s_blob_drop(c, job->files[i].sha);
}

static void s_job_release_blobs(rf_coordinator_t *c, c_job_t *job)
{
    size_t removed = 0;
    s_job_release_files(c, job);
    for (size_t i = 0; i < job->nchunks; i++) {
        removed += s_blob_drop(c, job->chunks[i].row.input_blob);
        removed += s_blob_drop(c, job->chunks[i].row.result_blob);
        if (*job->chunks[i].row.seam_head.blob)
            removed += s_blob_drop(c, job->chunks[i].row.seam_head.blob);
        if (*job->chunks[i].row.seam_tail.blob)
            removed += s_blob_drop(c, job->chunks[i].row.seam_tail.blob);
    }
    if (removed)
        rf_log_ctx(RF_LOG_DEBUG, COMP, RF_LOG_CTX(job->row.id, -1, -1, NULL),
                   "job %s: %zu blobs scheduled for deletion", job->row.id, removed);
}

/* ---- worker messages -------------------------------------------------------------------------- */

static void s_worker_expire(rf_coordinator_t *c, c_worker_t *w, const char *why)
{
    if (!w->live)
        return;
    w->live = false;
    w->nidle = 0;
    c_leaseslot_t *leases = NULL;
    size_t n = 0, held = 0;
    if (s_leases_snapshot(&c->leases, &leases, &n)) {
        RF_ERROR(COMP, "out of memory expiring worker '%s'", w->name);
        return;
    }
    for (size_t i = 0; i < n; i++)
        held += leases[i].key == leases[i].chunk->lease && leases[i].chunk->worker == w;
    if (held)
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(NULL, -1, -1, w->name),
                   "worker '%s' %s; its %zu chunk(s) go back to the queue", w->name, why, held);
    else
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(NULL, -1, -1, w->name), "worker '%s' %s", w->name,
                   why);
    for (size_t i = 0; i < n; i++) {
        c_chunk_t *ch = leases[i].chunk;
        c_job_t *j = ch->job;
        if (leases[i].key == ch->backup_lease && ch->backup_worker == w) {
            rf_store_attempt_end(c->store, j->row.id, ch->row.index, ch->backup_attempt, "lost", why,
                                 NULL);
            s_backup_clear(c, ch, NULL);
        }
        if (leases[i].key == ch->lease && ch->worker == w && !s_job_terminal(j))
            s_chunk_requeue(c, j, ch, "lost", why, NULL);
    }
    free(leases);
}

static void s_on_hello(rf_coordinator_t *c, const void *rid, size_t rid_len, const Reelfarm__Hello *h)
{
    if (rid_len > RF_ROUTING_ID_MAX || !h->name || !*h->name || strlen(h->name) >= 64) {
        c->obs.rejected++;
        RF_WARN(COMP, "dropping Hello with a bad name or routing id");
        return;
    }
    c_worker_t *w = s_worker_by_rid(c, rid, rid_len);
    if (!w) {
        if (c->nworkers >= RF_MAX_WORKERS) {
            rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(NULL, -1, -1, h->name),
                       "refusing worker '%s': %d workers already known", h->name, RF_MAX_WORKERS);
            return;
        }
        w = calloc(1, sizeof(*w));
        if (!w)
            return;
        memcpy(w->rid, rid, rid_len);
        w->rid_len = rid_len;
        w->next = c->workers;
        c->workers = w;
        size_t b = s_rid_bucket(rid, rid_len);
        w->bucket_next = c->worker_buckets[b];
        c->worker_buckets[b] = w;
        c->nworkers++;
    } else if (w->live) {
        /* A reconnect (new socket, same id): leases it does not re-announce are lost. */
        bool restarted = h->instance && strcmp(w->instance, h->instance) != 0;
        if (restarted)
            s_worker_expire(c, w, "restarted");
    }
    if (strcmp(w->instance, h->instance ? h->instance : "") != 0) {
        /* A new process: whatever made the old one fail may be gone. */
        w->quarantined = false;
        memset(w->failed_jobs, 0, sizeof(w->failed_jobs));
        memset(w->failed_ms, 0, sizeof(w->failed_ms));
    }
    snprintf(w->name, sizeof(w->name), "%s", h->name);
    snprintf(w->instance, sizeof(w->instance), "%s", h->instance ? h->instance : "");
    size_t used = 0;
    w->caps[0] = '\0';
    w->gpu_model[0] = '\0';
    w->vram_bytes = 0;
    if (h->caps) {
        used += (size_t)snprintf(w->caps, sizeof(w->caps), " ");
        for (size_t i = 0; i < h->caps->n_encoders && used < sizeof(w->caps); i++)
            if (h->caps->encoders[i] && strlen(h->caps->encoders[i]) < 64 && !strchr(h->caps->encoders[i], ' '))
                used += (size_t)snprintf(w->caps + used, sizeof(w->caps) - used, "%s ", h->caps->encoders[i]);
        for (size_t i = 0; i < h->caps->n_passes && used < sizeof(w->caps); i++)
            if (h->caps->passes[i] && strlen(h->caps->passes[i]) < 64 && !strchr(h->caps->passes[i], ' '))
                used += (size_t)snprintf(w->caps + used, sizeof(w->caps) - used, "%s ", h->caps->passes[i]);
        snprintf(w->gpu_model, sizeof(w->gpu_model), "%s", h->caps->gpu_model ? h->caps->gpu_model : "");
        w->vram_bytes = h->caps->vram_bytes;
    }
    s_worker_models(w, h->caps ? h->caps->models : NULL, h->caps ? h->caps->n_models : 0);
    w->slots = h->slots > RF_WORKER_MAX_SLOTS ? RF_WORKER_MAX_SLOTS : h->slots;
    w->nidle = 0;
    w->live = true;
    w->last_seen_ms = rf_now_ms();

    /* Adopt the chunks it still runs; tell it to drop the rest. */
    uint64_t drop[64];
    size_t ndrop = 0;
    for (size_t i = 0; i < h->n_running && i < 1024; i++) {
        const Reelfarm__LeaseRef *r = h->running[i];
        c_job_t *job = r->job_id ? s_job_find(c, r->job_id) : NULL;
        c_chunk_t *ch = job && r->chunk < job->nchunks ? &job->chunks[r->chunk] : NULL;
        bool adopt = ch && !s_job_terminal(job) && !strcmp(ch->row.state, "queued") &&
                     (ch->lease == r->lease || (ch->lease == 0 && r->attempt == ch->row.attempts));
        if (adopt) {
            if (ch->hold_until_ms)
                job->holding--;
            ch->hold_until_ms = 0;
            s_lease_set(c, ch, r->lease, w);
            s_chunk_taken(ch);
            ch->lease_attempt = r->attempt;
            ch->progress_ms = rf_now_ms();
            if (c->next_lease < r->lease)
                c->next_lease = r->lease;
            rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(job->row.id, r->chunk, r->attempt, w->name),
                       "worker '%s' still runs chunk %u of job %s: adopted", w->name, r->chunk,
                       job->row.id);
        } else if (ndrop < 64) {
            drop[ndrop++] = r->lease;
        }
    }
    Reelfarm__Welcome wel = REELFARM__WELCOME__INIT;
    wel.heartbeat_ms = (uint32_t)c->heartbeat_ms;
    wel.liveness = (uint32_t)c->liveness;
    wel.worker_id = w->name;
    wel.n_drop_leases = ndrop;
    wel.drop_leases = drop;
    wel.blob_store_id = c->store_id;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_WELCOME;
    env.welcome = &wel;
    s_send_worker(c, w, &env);
    rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(NULL, -1, -1, w->name),
               "worker '%s' joined: %u slots, %zu encoders, %s", w->name, w->slots,
            h->caps ? h->caps->n_encoders : 0,
            h->caps && h->caps->gpu_model && *h->caps->gpu_model ? h->caps->gpu_model : "no GPU");
}

/* Verifies a result off the loop. The result is recorded first (state 'verifying'), so a
 * coordinator that dies meanwhile verifies it again on restart instead of rendering it again. */
static void s_verify_start(rf_coordinator_t *c, c_job_t *job, c_chunk_t *ch, uint64_t lease,
                           const char *blob, uint64_t size, const uint8_t digest[RF_SHA256_LEN],
                           const rf_store_seam_t *head, const rf_store_seam_t *tail,
                           const uint8_t *frame_list, size_t frame_list_len, const char *worker,
                           bool record, const Reelfarm__ChunkDone *d)
{
    char digest_hex[RF_SHA256_HEX_LEN + 1];
    rf_hex(digest, RF_SHA256_LEN, digest_hex);
    if (record) {
        rf_store_chunk_verifying(c->store, job->row.id, ch->row.index, blob, size, digest_hex, worker,
                                 NULL);
        rf_store_chunk_seams(c->store, job->row.id, ch->row.index, head, tail, NULL);
    }
    c_work_t *wk = calloc(1, sizeof(*wk));
    if (!wk)
        return;
    wk->kind = W_VERIFY;
    wk->job = job;
    wk->chunk = ch->row.index;
    wk->lease = lease;
    wk->attempt = lease && lease == ch->backup_lease ? ch->backup_attempt
                  : lease && lease == ch->lease     ? ch->lease_attempt
                                                    : ch->row.attempts;
    snprintf(wk->blob, sizeof(wk->blob), "%s", blob);
    wk->blob_size = size;
    /* The result's own stream starts after the head overlap (that part is a side part). */
    wk->expect_frames = (uint64_t)(ch->row.frame_end - ch->row.frame_start - ch->row.head_overlap);
    memcpy(wk->digest, digest, RF_SHA256_LEN);
    snprintf(wk->worker, sizeof(wk->worker), "%s", worker);
    wk->seam_head = *head;
    wk->seam_tail = *tail;
    wk->head_overlap = ch->row.head_overlap;
    wk->tail_overlap = ch->row.tail_overlap;
    /* Sampled verification needs the worker's list for exactly the frames expected; without it
     * (an older worker, or a result re-verified after a restart) the check is the full one. */
    if (c->verify_sample && frame_list && frame_list_len == wk->expect_frames * RF_SHA256_LEN &&
        (wk->frame_list = malloc(frame_list_len)) != NULL)
        memcpy(wk->frame_list, frame_list, frame_list_len);
    for (size_t i = 0; d && i < d->n_critic && i < C_CRITIC_MAX; i++) {
        wk->critic[i] = (c_critic_t){.seed = d->critic[i]->seed, .score = d->critic[i]->score,
                                     .mean = d->critic[i]->mean, .frames = d->critic[i]->frames};
        wk->ncritic = (uint32_t)i + 1;
    }
    wk->critic_kept = d && d->critic_kept < wk->ncritic ? d->critic_kept : 0;
    ch->verifying = true;
    if (s_work_start(c, wk))
        ch->verifying = false;
}

/* A seam part as the worker reported it; false when it is malformed. */
static bool s_seam_from_msg(const Reelfarm__SeamPart *m, rf_store_seam_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!m || !m->blob || !*m->blob)
        return true;
    if (!rf_sha256_hex_valid(m->blob) || m->checksums_digest.len != RF_SHA256_LEN)
        return false;
    snprintf(out->blob, sizeof(out->blob), "%s", m->blob);
    out->size = m->size;
    out->frames = m->frame_count;
    rf_hex(m->checksums_digest.data, RF_SHA256_LEN, out->digest);
    return true;
}

static void s_on_done(rf_coordinator_t *c, c_worker_t *w, const Reelfarm__ChunkDone *d)
{
    c_job_t *job = NULL;
    c_chunk_t *ch = s_chunk_by_lease(c, d->lease, &job);
    if (!ch || s_job_terminal(job) || strcmp(ch->row.state, "queued") || ch->verifying) {
        rf_log_ctx(RF_LOG_DEBUG, COMP,
                   RF_LOG_CTX(job ? job->row.id : NULL, ch ? (int64_t)ch->row.index : -1, -1, w->name),
                   "ignoring result for lease %" PRIu64 " from '%s'", d->lease, w->name);
        return;
    }
    rf_store_seam_t head, tail;
    if (!d->result_blob || !rf_sha256_hex_valid(d->result_blob) ||
        d->checksums_digest.len != RF_SHA256_LEN || !s_seam_from_msg(d->seam_head, &head) ||
        !s_seam_from_msg(d->seam_tail, &tail)) {
        s_chunk_requeue(c, job, ch, "failed", "malformed ChunkDone", w->name);
        return;
    }
    s_verify_start(c, job, ch, d->lease, d->result_blob, d->result_size, d->checksums_digest.data,
                   &head, &tail, d->frame_checksums.data, d->frame_checksums.len, w->name, true, d);
}

static void s_on_failed(rf_coordinator_t *c, c_worker_t *w, const Reelfarm__ChunkFailed *f)
{
    c_job_t *job = NULL;
    c_chunk_t *ch = s_chunk_by_lease(c, f->lease, &job);
    if (ch && f->lease == ch->backup_lease) {
        /* A backup run that failed costs nothing but its attempt: the primary still runs. */
        bool cancelled = f->error_class && !strcmp(f->error_class, "cancelled");
        rf_store_attempt_end(c->store, job->row.id, ch->row.index, ch->backup_attempt,
                             cancelled ? "cancelled" : "failed", f->message ? f->message : "", NULL);
        s_backup_clear(c, ch, NULL);
        if (!cancelled && (!f->error_class || strcmp(f->error_class, "transfer")))
            s_worker_failed(c, w->name, job);
        return;
    }
    /* Only the lease's holder may fail it: with keys, any worker key could otherwise end another
     * worker's chunk by naming its lease. */
    if (!ch || ch->lease != f->lease || s_job_terminal(job) || ch->worker != w)
        return;
    char msg[1200];
    snprintf(msg, sizeof(msg), "%s error: %s", f->error_class ? f->error_class : "unknown",
             f->message ? f->message : "");
    if (f->error_class && !strcmp(f->error_class, "cancelled")) {
        /* The worker gave the chunk back (draining on SIGTERM: scale-in, a Slurm time limit):
         * nothing failed, so the attempt does not count towards max_attempts. Cancels the
         * coordinator sends end the lease first and never get here. */
        ch->attempt_base++;
        s_chunk_requeue(c, job, ch, "handed back", msg, NULL);
    } else if (!f->retryable) {
        s_chunk_requeue(c, job, ch, "failed", msg, w->name);
        if (!s_job_terminal(job))
            s_chunk_fail_job(c, job, ch); /* the same input fails the same way everywhere */
    } else if (f->error_class && !strcmp(f->error_class, "transfer")) {
        /* Moving bytes failed (network, blob server): not the worker's rendering at fault. It
         * costs an attempt but does not bar the worker from the chunk. */
        s_chunk_requeue(c, job, ch, "failed", msg, NULL);
    } else {
        s_chunk_requeue(c, job, ch, "failed", msg, w->name);
    }
}

static void s_bad(rf_coordinator_t *c, rf_guard_socket_t sock, rf_guard_reason_t why)
{
    c->bad.bad[sock][why]++;
    c->obs.rejected++;
}

/* Unpacks [routing id, envelope] from a ROUTER; NULL (logged and counted by reason) when it is not
 * one, too big (limits.message_bytes) or malformed. */
static rf_msg_t *s_unpack(rf_coordinator_t *c, const rf_zparts_t *msg, rf_guard_socket_t sock)
{
    const char *from = sock == RF_GUARD_WORKERS ? "worker" : "client";
    rf_msg_t *m = NULL;
    if (msg->count != 2) {
        s_bad(c, sock, RF_BAD_PARTS);
        RF_WARN(COMP, "dropped a %s message of %d frames (expected an envelope)", from,
                msg->count - 1);
        return NULL;
    }
    int rc = rf_msg_unpack(msg->data[1], msg->size[1], (size_t)c->max_frame,
                           RF_CODEC_BUDGET(msg->size[1]), &m);
    if (rc) {
        s_bad(c, sock, rc == RF_ETOOBIG ? RF_BAD_TOO_BIG : RF_BAD_MALFORMED);
        if (rc == RF_ETOOBIG)
            RF_WARN(COMP, "dropped a %s message of %zu bytes: over limits.message_bytes (%" PRId64 ")",
                    from, msg->size[1], c->max_frame);
        else
            RF_WARN(COMP, "dropped a malformed %s message (%zu bytes): %s", from, msg->size[1],
                    rf_strerror(rc));
    }
    return m;
}

static void s_on_worker_msg(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    rf_coordinator_t *c = arg;
    /* The ZAP handler admits only worker and admin keys here; checked again per message so a
     * mistake in one place cannot let a client key render (or read assignments). */
    char who[RF_ZSEC_NAME_MAX + 1];
    rf_role_t role = rf_zsec_role(msg->user_id, who, sizeof(who));
    if (role != RF_ROLE_OPEN && role != RF_ROLE_WORKER && role != RF_ROLE_ADMIN) {
        s_bad(c, RF_GUARD_WORKERS, RF_BAD_REFUSED);
        RF_WARN(COMP, "refused a message on the worker socket from %s key '%s'",
                rf_zsec_role_name(role), who);
        return;
    }
    rf_msg_t *m = s_unpack(c, msg, RF_GUARD_WORKERS);
    if (!m)
        return;
    const Reelfarm__Envelope *env = rf_msg_env(m);
    c_worker_t *w = s_worker_by_rid(c, msg->data[0], msg->size[0]);
    if (env->body_case == REELFARM__ENVELOPE__BODY_HELLO) {
        s_on_hello(c, msg->data[0], msg->size[0], env->hello);
        goto out;
    }
    if (!w || !w->live) {
        /* Unknown (we restarted, or it was expired): ask it to say Hello again. */
        Reelfarm__Disconnect d = REELFARM__DISCONNECT__INIT;
        Reelfarm__Envelope out = REELFARM__ENVELOPE__INIT;
        d.reason = "unknown worker: send Hello";
        out.body_case = REELFARM__ENVELOPE__BODY_DISCONNECT;
        out.disconnect = &d;
        s_send(c, c->wsock, msg->data[0], msg->size[0], &out);
        goto out;
    }
    w->last_seen_ms = rf_now_ms();
    switch (env->body_case) {
    case REELFARM__ENVELOPE__BODY_READY:
        if (env->ready->slot < w->slots && w->nidle < w->slots) {
            bool dup = false;
            for (uint32_t i = 0; i < w->nidle; i++)
                dup |= w->idle[i] == env->ready->slot;
            if (!dup)
                w->idle[w->nidle++] = env->ready->slot;
        }
        s_dispatch_worker(c, w);
        break;
    case REELFARM__ENVELOPE__BODY_PROGRESS: {
        c_job_t *job = NULL;
        c_chunk_t *ch = s_chunk_by_lease(c, env->progress->lease, &job);
        if (ch && ch->lease == env->progress->lease && ch->worker == w) {
            /* The task timeout measures progress, not liveness: a Progress that reports no new
             * frame does not renew it (workers send one every second whatever happens). */
            if (env->progress->frames_done > ch->frames_done)
                ch->progress_ms = rf_now_ms();
            ch->frames_done = env->progress->frames_done;
            ch->fps = env->progress->fps;
        }
        break;
    }
    case REELFARM__ENVELOPE__BODY_CHUNK_DONE:
        s_on_done(c, w, env->chunk_done);
        s_dispatch(c);
        break;
    case REELFARM__ENVELOPE__BODY_CHUNK_FAILED:
        s_on_failed(c, w, env->chunk_failed);
        s_dispatch(c);
        break;
    case REELFARM__ENVELOPE__BODY_HEARTBEAT:
        s_worker_models(w, env->heartbeat->models, env->heartbeat->n_models);
        break;
    case REELFARM__ENVELOPE__BODY_DISCONNECT:
        s_worker_expire(c, w, "disconnected");
        s_dispatch(c);
        break;
    default:
        s_bad(c, RF_GUARD_WORKERS, RF_BAD_UNEXPECTED);
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(NULL, -1, -1, w->name),
                   "worker '%s' sent an unexpected '%s' message", w->name, rf_msg_body_name(env));
        break;
    }
out:
    rf_msg_destroy(&m);
}

/* ---- client API ------------------------------------------------------------------------------- */

static void s_reply_error(rf_coordinator_t *c, const rf_zparts_t *req, int code, const char *message)
{
    Reelfarm__ErrorReply e = REELFARM__ERROR_REPLY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    e.code = code;
    e.message = (char *)message;
    env.body_case = REELFARM__ENVELOPE__BODY_ERROR;
    env.error = &e;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
}

static void s_new_job_id(char *id, size_t size)
{
    uint8_t rnd[6];
    char hex[13];
    randombytes_buf(rnd, sizeof(rnd));
    rf_hex(rnd, sizeof(rnd), hex);
    snprintf(id, size, "j-%s", hex);
}

/* Appends the label and watermark passes (config/marks.c) to a job's parsed spec: workers get the
 * pattern key and the job's payload, never the farm key or the tag key (docs/PROVENANCE.md). */
static int s_job_marks(rf_coordinator_t *c, const char *job_id, rf_job_spec_t *spec)
{
    uint8_t k_pattern[RF_WM_KEY_LEN], k_tag[RF_WM_KEY_LEN];
    char key_hex[2 * RF_WM_KEY_LEN + 1], payload_hex[17];
    rf_err_t err = {0};

    rf_media_wm_derive(c->wm_key, k_pattern, k_tag);
    sodium_memzero(k_tag, sizeof(k_tag));
    rf_hex(k_pattern, sizeof(k_pattern), key_hex);
    snprintf(payload_hex, sizeof(payload_hex), "%016" PRIx64, rf_media_wm_payload(c->wm_key, job_id));
    int rc = rf_job_spec_add_marks(spec, key_hex, payload_hex, &err);
    if (rc)
        RF_ERROR(COMP, "job %s: %s", job_id, err.msg);
    return rc;
}

/* The watermark tag a job's frames carry (the payload s_job_marks hands the workers), as the 16
 * hex digits the store records and `reelfarm verify` prints. */
static void s_job_wm_tag(const rf_coordinator_t *c, const char *job_id,
                         char tag[RF_STORE_WM_TAG_LEN + 1])
{
    snprintf(tag, RF_STORE_WM_TAG_LEN + 1, "%016" PRIx64, rf_media_wm_payload(c->wm_key, job_id));
}

/* Appends an audit record; a failure is logged, never fatal (the job's own state is in SQLite). */
static void s_audit(rf_coordinator_t *c, const char *type, const char *actor, const char *job,
                    const char *detail)
{
    rf_err_t err = {0};
    if (c->audit && rf_audit_append(c->audit, type, actor, job, detail, &err))
        RF_ERROR(COMP, "audit: %s", err.msg);
}

static c_job_t *s_job_add(rf_coordinator_t *c, rf_store_job_t *row, rf_job_spec_t *spec)
{
    c_job_t *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->row = *row;
    job->spec = spec;
    if (spec && s_job_marks(c, job->row.id, spec) != 0) {
        free(job);
        return NULL;
    }
    if (spec) /* finished jobs are loaded without their spec */
        rf_job_spec_requirements(spec, &job->needs_gpu, &job->needs_vram_mib);
    /* Keep submission order: append. */
    c_job_t **tail = &c->jobs;
    while (*tail)
        tail = &(*tail)->next;
    *tail = job;
    return job;
}

static void s_on_submit(rf_coordinator_t *c, const rf_zparts_t *req, const Reelfarm__SubmitJob *sj,
                        const char *owner)
{
    rf_err_t err = {0};
    rf_job_spec_t *spec = NULL;
    const char *yaml = sj->spec_yaml ? sj->spec_yaml : "";
    const char *source = sj->spec_path && *sj->spec_path ? sj->spec_path : "job.yaml";
    if (!sj->base_dir || sj->base_dir[0] != '/') {
        s_reply_error(c, req, RF_EINVAL, "submit: base_dir must be an absolute path");
        return;
    }
    if (rf_store_broken(c->store)) {
        s_reply_error(c, req, RF_EIO, "the coordinator's disk is full: its state database could "
                                      "not be written; new jobs are refused until space is freed "
                                      "(jobs already accepted are kept and go on when it is)");
        return;
    }
    if (rf_space_check(c->state_dir, RF_STATE_MIN_FREE, &err)) {
        s_reply_error(c, req, err.code, err.msg);
        return;
    }
    size_t yaml_len = strlen(yaml);
    if ((int64_t)yaml_len > c->max_spec) {
        char m[300];
        snprintf(m, sizeof(m), "%.200s: the spec is %zu bytes, over limits.spec_bytes (%" PRId64 ")",
                 source, yaml_len, c->max_spec);
        s_reply_error(c, req, RF_ETOOBIG, m);
        return;
    }
    size_t unfinished = 0;
    for (c_job_t *j = c->jobs; j; j = j->next)
        unfinished += !s_job_terminal(j) && !strcmp(j->row.owner, owner);
    if ((int64_t)unfinished >= c->max_client_jobs) {
        char m[300];
        snprintf(m, sizeof(m),
                 "submit: %s already has %zu unfinished jobs, the most limits.jobs_per_client "
                 "allows (%" PRId64 "); wait for one to end or cancel one",
                 *owner ? owner : "this farm's local user", unfinished, c->max_client_jobs);
        s_reply_error(c, req, RF_EAGAIN, m);
        return;
    }
    if (rf_job_spec_load_string(yaml, yaml_len, source, sj->base_dir, &spec, &err)) {
        /* consent refusals included */
        s_audit(c, "refuse", *owner ? owner : "client", "", err.msg);
        s_reply_error(c, req, err.code, err.msg);
        return;
    }
    if (rf_guard_spec_paths(spec, c->media_roots, c->nmedia_roots, &err)) {
        rf_err_prefix(&err, "%.200s: ", source);
        s_reply_error(c, req, err.code, err.msg);
        rf_job_spec_destroy(&spec);
        return;
    }
    /* Cheap checks now, so a user learns at submit what would otherwise fail at the end. */
    struct stat st;
    char msg[9000] = "";
    char outdir[4096];
    snprintf(outdir, sizeof(outdir), "%s", spec->output);
    char *slash = strrchr(outdir, '/');
    if (slash)
        *(slash == outdir ? slash + 1 : slash) = '\0';
    if (stat(spec->input, &st) != 0)
        snprintf(msg, sizeof(msg), "%s: input '%s': %s", source, spec->input, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(msg, sizeof(msg), "%s: input '%s': not a regular file", source, spec->input);
    else if (access(outdir, W_OK) != 0)
        snprintf(msg, sizeof(msg), "%s: output folder '%s': %s", source, outdir, strerror(errno));
    if (*msg) {
        s_reply_error(c, req, RF_ENOENT, msg);
        rf_job_spec_destroy(&spec);
        return;
    }
    rf_store_job_t row = {0};
    s_new_job_id(row.id, sizeof(row.id));
    row.name = strdup(spec->name);
    row.spec_yaml = strdup(yaml);
    row.spec_source = strdup(source);
    row.base_dir = strdup(sj->base_dir);
    snprintf(row.state, sizeof(row.state), "planning");
    row.priority = spec->priority;
    row.created_ms = rf_wall_ms();
    row.output = strdup(spec->output);
    row.message = strdup("");
    snprintf(row.owner, sizeof(row.owner), "%s", owner);
    s_job_wm_tag(c, row.id, row.wm_tag);
    if (!row.name || !row.spec_yaml || !row.spec_source || !row.base_dir || !row.output ||
        !row.message || rf_store_job_insert(c->store, &row, &err) ||
        rf_store_flush(c->store, &err)) { /* the id we hand out must survive a crash */
        char why[1400];
        if (err.code == RF_EDB && rf_store_broken(c->store))
            snprintf(why, sizeof(why), "the coordinator's disk is full: the job could not be "
                     "recorded (%.1000s); new jobs are refused until space is freed", err.msg);
        else
            snprintf(why, sizeof(why), "%s", err.code ? err.msg : "out of memory");
        s_reply_error(c, req, err.code ? err.code : RF_ENOMEM, why);
        free(row.name), free(row.spec_yaml), free(row.spec_source), free(row.base_dir);
        free(row.output), free(row.message);
        rf_job_spec_destroy(&spec);
        return;
    }
    c_job_t *job = s_job_add(c, &row, spec);
    if (!job) {
        s_reply_error(c, req, RF_ENOMEM, "out of memory");
        return;
    }
    c->obs.jobs_submitted++;
    s_event(c, job, "info", "submitted: '%s' -> '%s'", spec->input, spec->output);
    {
        /* who and what: the spec's hash, and the people depicted with their basis and release
         * (personal data stays in this log; outputs carry the subjects' digests only) */
        char detail[RF_AUDIT_FIELD_MAX], spec_hex[2 * crypto_hash_sha256_BYTES + 1];
        uint8_t sh[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(sh, (const unsigned char *)yaml, strlen(yaml));
        rf_hex(sh, sizeof(sh), spec_hex);
        size_t used = (size_t)snprintf(
            detail, sizeof(detail),
            "name=%s; spec_sha256=%s; input=%s; output=%s; depicts=%s; label=%s;"
            " watermark_tag=%s",
            spec->name, spec_hex, spec->input, spec->output,
            spec->provenance.depicts_real_people ? "real-people" : "no-real-people",
            spec->provenance.label ? "on" : "off", job->row.wm_tag);
        for (size_t i = 0; i < spec->provenance.nsubjects && used < sizeof(detail); i++) {
            char dh[2 * RF_SUBJECT_DIGEST_LEN + 1];
            const rf_subject_t *sj2 = &spec->provenance.subjects[i];
            rf_hex(sj2->digest, sizeof(sj2->digest), dh);
            used += (size_t)snprintf(detail + used, sizeof(detail) - used,
                                     "; subject=%s|%s|%s|%s", sj2->name, sj2->basis, sj2->release, dh);
        }
        s_audit(c, "submit", *owner ? owner : "client", job->row.id, detail);
    }
    Reelfarm__SubmitReply r = REELFARM__SUBMIT_REPLY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    r.job_id = job->row.id;
    env.body_case = REELFARM__ENVELOPE__BODY_SUBMIT_REPLY;
    env.submit_reply = &r;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
    s_plan_start(c, job, true);
}

static void s_status_fill(const c_job_t *job, Reelfarm__JobStatus *st)
{
    st->job_id = (char *)job->row.id;
    st->name = job->row.name;
    st->state = job->paused && !strcmp(job->row.state, "running") ? "paused" : (char *)job->row.state;
    st->chunks_total = (uint32_t)job->nchunks;
    st->chunks_done = (uint32_t)job->ndone;
    st->frames_total = (uint64_t)job->row.frames_total;
    st->output = job->row.output;
    st->message = job->row.message ? job->row.message : "";
    uint64_t frames = 0;
    float fps = 0;
    uint32_t failed = 0;
    for (size_t i = 0; i < job->nchunks; i++) {
        const c_chunk_t *ch = &job->chunks[i];
        if (!strcmp(ch->row.state, "done"))
            frames += (uint64_t)(ch->row.frame_end - ch->row.frame_start);
        else if (ch->lease)
            frames += ch->frames_done, fps += ch->fps;
        if (!strcmp(ch->row.state, "failed"))
            failed++;
    }
    st->frames_done = frames;
    st->fps = fps;
    st->chunks_failed = failed;
}

static void s_on_query(rf_coordinator_t *c, const rf_zparts_t *req, const Reelfarm__JobQuery *q)
{
    c_job_t *job = q->job_id ? s_job_find(c, q->job_id) : NULL;
    if (!job) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no job '%.64s'", q->job_id ? q->job_id : "");
        s_reply_error(c, req, RF_ENOENT, msg);
        return;
    }
    Reelfarm__JobStatus st = REELFARM__JOB_STATUS__INIT;
    s_status_fill(job, &st);
    Reelfarm__ChunkStatus *cs = NULL;
    Reelfarm__ChunkStatus **csp = NULL;
    Reelfarm__CriticScore *scores = NULL, **score_ptrs = NULL;
    size_t nscores = 0, used = 0;
    for (size_t i = 0; q->with_chunks && i < job->nchunks; i++)
        nscores += job->chunks[i].ncritic;
    /* A reply is one control frame: past C_STATUS_RENDERS renders, each chunk shows its kept one. */
    bool kept_only = nscores > C_STATUS_RENDERS;
    if (kept_only) {
        nscores = 0;
        for (size_t i = 0; i < job->nchunks; i++)
            nscores += job->chunks[i].ncritic > 0;
    }
    if (nscores) {
        scores = calloc(nscores, sizeof(*scores));
        score_ptrs = calloc(nscores, sizeof(*score_ptrs));
    }
    if (q->with_chunks && job->nchunks) {
        cs = calloc(job->nchunks, sizeof(*cs));
        csp = calloc(job->nchunks, sizeof(*csp));
        if (cs && csp) {
            for (size_t i = 0; i < job->nchunks; i++) {
                const c_chunk_t *ch = &job->chunks[i];
                reelfarm__chunk_status__init(&cs[i]);
                cs[i].index = ch->row.index;
                cs[i].state = ch->verifying ? "verifying" : ch->lease ? "running" : (char *)ch->row.state;
                cs[i].frame_start = ch->row.frame_start;
                cs[i].frame_end = ch->row.frame_end;
                cs[i].attempts = ch->row.attempts;
                cs[i].worker = ch->worker ? ch->worker->name : (char *)ch->row.worker;
                cs[i].frames_done = !strcmp(ch->row.state, "done")
                                        ? (uint64_t)(ch->row.frame_end - ch->row.frame_start)
                                        : ch->frames_done;
                cs[i].fps = ch->fps;
                if (scores && score_ptrs && ch->ncritic) {
                    size_t first = kept_only ? ch->critic_kept : 0;
                    size_t end = kept_only ? first + 1 : ch->ncritic;
                    cs[i].critic = &score_ptrs[used];
                    cs[i].n_critic = end - first;
                    cs[i].critic_kept = kept_only ? 0 : ch->critic_kept;
                    for (size_t k = first; k < end; k++, used++) {
                        reelfarm__critic_score__init(&scores[used]);
                        scores[used].seed = ch->critic[k].seed;
                        scores[used].score = ch->critic[k].score;
                        scores[used].mean = ch->critic[k].mean;
                        scores[used].frames = ch->critic[k].frames;
                        score_ptrs[used] = &scores[used];
                    }
                }
                csp[i] = &cs[i];
            }
            st.n_chunks = job->nchunks;
            st.chunks = csp;
        }
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_STATUS;
    env.job_status = &st;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
    free(cs);
    free(csp);
    free(scores);
    free(score_ptrs);
}

static void s_on_list(rf_coordinator_t *c, const rf_zparts_t *req, const char *owner)
{
    size_t n = 0;
    for (c_job_t *j = c->jobs; j; j = j->next)
        n += !owner || !strcmp(j->row.owner, owner);
    /* Newest last; a reply must fit one control frame, so list at most the last 1000 jobs. */
    size_t skip = n > 1000 ? n - 1000 : 0;
    Reelfarm__JobStatus *st = calloc(n + 1, sizeof(*st));
    Reelfarm__JobStatus **stp = calloc(n + 1, sizeof(*stp));
    Reelfarm__JobList list = REELFARM__JOB_LIST__INIT;
    if (st && stp) {
        size_t k = 0, i = 0;
        for (c_job_t *j = c->jobs; j; j = j->next) {
            if (owner && strcmp(j->row.owner, owner))
                continue; /* a client key lists its own jobs only */
            if (i++ < skip)
                continue;
            reelfarm__job_status__init(&st[k]);
            s_status_fill(j, &st[k]);
            stp[k] = &st[k];
            k++;
        }
        list.n_jobs = k;
        list.jobs = stp;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_LIST;
    env.job_list = &list;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
    free(st);
    free(stp);
}

/* Which job made a file that carries the farm's watermark (`reelfarm verify --coordinator`,
 * `reelfarm jobs --watermark-tag`): the jobs whose recorded tag it is, from the store's index, as
 * a JobList with owner, submit time and tag set. owner non-NULL (a client key): its own jobs only,
 * so a client learns nothing about another's (an empty list, as for a tag no job has). Each
 * answered lookup is an audit record: who traced which job. */
static void s_on_watermark(rf_coordinator_t *c, const rf_zparts_t *req,
                           const Reelfarm__WatermarkQuery *q, const char *owner)
{
    rf_store_job_t *rows = NULL;
    size_t n = 0;
    rf_err_t err = {0};
    if (rf_store_jobs_by_wm_tag(c->store, q->tag, owner, &rows, &n, &err)) {
        s_reply_error(c, req, err.code, err.msg);
        return;
    }
    size_t total = n;
    if (n > 1000) /* a reply must fit one control frame; 64-bit tags do not collide this much */
        n = 1000;
    Reelfarm__JobStatus *st = calloc(n + 1, sizeof(*st));
    Reelfarm__JobStatus **stp = calloc(n + 1, sizeof(*stp));
    Reelfarm__JobList list = REELFARM__JOB_LIST__INIT;
    if (st && stp) {
        for (size_t i = 0; i < n; i++) {
            const rf_store_job_t *row = &rows[i];
            const c_job_t *job = s_job_find(c, row->id);
            reelfarm__job_status__init(&st[i]);
            if (job) {
                s_status_fill(job, &st[i]);
            } else { /* every stored job is loaded at start; the row is the fallback */
                st[i].job_id = (char *)row->id;
                st[i].name = row->name;
                st[i].state = (char *)row->state;
                st[i].output = row->output;
                st[i].message = row->message;
            }
            st[i].owner = (char *)row->owner;
            st[i].submitted_ms = row->created_ms;
            st[i].watermark_tag = (char *)row->wm_tag;
            stp[i] = &st[i];
            char detail[128];
            snprintf(detail, sizeof(detail), "watermark_tag=%s", row->wm_tag);
            s_audit(c, "lookup", req->user_id && *req->user_id ? req->user_id : "client", row->id,
                    detail);
        }
        list.n_jobs = n;
        list.jobs = stp;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_LIST;
    env.job_list = &list;
    if (st && stp)
        s_send(c, c->csock, req->data[0], req->size[0], &env);
    else
        s_reply_error(c, req, RF_ENOMEM, "out of memory answering a watermark lookup");
    free(st);
    free(stp);
    rf_store_jobs_free(rows, total);
}

/* retry: a failed job continues; its failed chunks get a fresh set of attempts on every worker. */
static const char *s_job_retry(rf_coordinator_t *c, c_job_t *job)
{
    if (strcmp(job->row.state, "failed"))
        return "only a failed job can be retried";
    size_t again = 0;
    for (size_t i = 0; i < job->nchunks; i++) {
        c_chunk_t *ch = &job->chunks[i];
        if (!strcmp(ch->row.state, "done"))
            continue;
        snprintf(ch->row.state, sizeof(ch->row.state), "queued");
        free(ch->row.failed_on);
        ch->row.failed_on = NULL;
        ch->attempt_base = ch->row.attempts;
        rf_store_chunk_failed(c->store, job->row.id, ch->row.index, "", "queued", NULL);
        s_chunk_returned(ch);
        again++;
    }
    free(job->row.message);
    job->row.message = strdup("");
    bool planned = job->info && job->nchunks;
    s_set_state(job, planned ? (job->ndone == job->nchunks ? "stitching" : "running") : "planning");
    rf_store_job_set_state(c->store, job->row.id, job->row.state, "", NULL);
    s_event(c, job, "info", "retry requested: %zu chunks queued again", again);
    if (!planned)
        s_plan_start(c, job, job->nchunks == 0);
    else if (job->ndone == job->nchunks)
        s_stitch_start(c, job);
    s_dispatch(c);
    return NULL;
}

static void s_on_action(rf_coordinator_t *c, const rf_zparts_t *req, const Reelfarm__JobAction *a)
{
    c_job_t *job = a->job_id ? s_job_find(c, a->job_id) : NULL;
    const char *action = a->action ? a->action : "";
    const char *refused = NULL;
    if (!job) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no job '%.64s'", a->job_id ? a->job_id : "");
        s_reply_error(c, req, RF_ENOENT, msg);
        return;
    }
    if (!strcmp(action, "cancel")) {
        /* A failed job can be cancelled too: that gives up on a retry and frees its blobs. */
        if (!s_job_terminal(job) || !strcmp(job->row.state, "failed")) {
            s_cancel_leases(c, job, "job cancelled");
            s_set_state(job, "cancelled");
            rf_store_job_set_state(c->store, job->row.id, "cancelled", "cancelled by request", NULL);
            s_event(c, job, "info", "cancelled by request");
            if (!job->busy)
                s_job_release_blobs(c, job); /* a plan in flight writes slices: skip then */
        }
    } else if (!strcmp(action, "pause") || !strcmp(action, "resume")) {
        bool pause = !strcmp(action, "pause");
        if (s_job_terminal(job)) {
            refused = "the job has ended";
        } else if (job->paused != pause) {
            job->paused = pause;
            rf_store_job_set_paused(c->store, job->row.id, pause, NULL);
            s_event(c, job, "info", pause ? "paused: running chunks finish, no new ones start"
                                          : "resumed");
            if (!pause)
                s_dispatch(c);
        }
    } else if (!strcmp(action, "retry")) {
        refused = s_job_retry(c, job);
    } else {
        refused = "unknown action (known: cancel, pause, resume, retry)";
    }
    if (refused) {
        char msg[300];
        snprintf(msg, sizeof(msg), "job %s: cannot %s: %s", job->row.id, action, refused);
        s_reply_error(c, req, RF_EINVAL, msg);
        return;
    }
    Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
    q.job_id = job->row.id;
    s_on_query(c, req, &q);
}

static void s_on_workers(rf_coordinator_t *c, const rf_zparts_t *req)
{
    size_t n = 0;
    for (c_worker_t *w = c->workers; w; w = w->next)
        n++;
    Reelfarm__WorkerInfo *info = calloc(n + 1, sizeof(*info));
    Reelfarm__WorkerInfo **ptrs = calloc(n + 1, sizeof(*ptrs));
    Reelfarm__WorkerList list = REELFARM__WORKER_LIST__INIT;
    uint64_t now = rf_now_ms();
    if (info && ptrs) {
        size_t k = 0;
        for (c_worker_t *w = c->workers; w && k < 2000; w = w->next, k++) {
            Reelfarm__WorkerInfo *wi = &info[k];
            reelfarm__worker_info__init(wi);
            wi->name = w->name;
            wi->live = w->live;
            wi->quarantined = w->quarantined;
            wi->slots = w->slots;
            uint32_t busy = 0;
            for (c_job_t *j = c->jobs; j; j = j->next)
                for (size_t i = 0; i < j->nchunks; i++)
                    busy += j->chunks[i].lease && j->chunks[i].worker == w;
            wi->busy = busy;
            wi->gpu_model = w->gpu_model;
            wi->vram_bytes = w->vram_bytes;
            wi->capabilities = w->caps;
            wi->chunks_done = w->chunks_done;
            wi->chunks_failed = w->chunks_failed;
            wi->last_seen_ms_ago = now - w->last_seen_ms;
            ptrs[k] = wi;
            list.n_workers = k + 1;
        }
        list.workers = ptrs;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_WORKER_LIST;
    env.worker_list = &list;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
    free(info);
    free(ptrs);
}

static void s_on_events(rf_coordinator_t *c, const rf_zparts_t *req, const Reelfarm__EventQuery *q)
{
    if (!q->job_id || !s_job_find(c, q->job_id)) {
        s_reply_error(c, req, RF_ENOENT, "no such job");
        return;
    }
    size_t limit = q->limit == 0 || q->limit > 500 ? 500 : q->limit;
    rf_store_event_t *ev = NULL;
    size_t n = 0;
    rf_err_t err = {0};
    if (rf_store_events_load(c->store, q->job_id, q->after_id, limit, &ev, &n, &err)) {
        s_reply_error(c, req, err.code, err.msg);
        return;
    }
    Reelfarm__Event *items = calloc(n + 1, sizeof(*items));
    Reelfarm__Event **ptrs = calloc(n + 1, sizeof(*ptrs));
    Reelfarm__EventList list = REELFARM__EVENT_LIST__INIT;
    if (items && ptrs) {
        for (size_t i = 0; i < n; i++) {
            reelfarm__event__init(&items[i]);
            items[i].id = ev[i].id;
            items[i].ts_ms = ev[i].ts_ms;
            items[i].level = ev[i].level;
            items[i].message = ev[i].message;
            ptrs[i] = &items[i];
        }
        list.n_events = n;
        list.events = ptrs;
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_EVENT_LIST;
    env.event_list = &list;
    s_send(c, c->csock, req->data[0], req->size[0], &env);
    free(items);
    free(ptrs);
    free(ev);
}

/* ---- client API: fetch (reelfarm fetch) ------------------------------------------------------
 * Exposes a done job's output as a blob: hashed on the uv thread pool (outputs are large), hard-
 * linked into the blob store (a copy when the output is on another filesystem), then named in a
 * FetchReply; the client downloads it from the blob server like any blob. The link costs no space
 * while the output exists; the startup sweep removes it like any blob no unfinished job names. */

typedef struct c_fetch {
    uv_work_t req;
    rf_coordinator_t *c;
    uint8_t peer[256]; /* the client's routing id (at most 255 bytes) */
    size_t peer_len;
    char job_id[64];
    char output[4096];
    char sha[RF_SHA256_HEX_LEN + 1];
    uint64_t size;
    char sidecar[4096];                      /* the output's C2PA sidecar (rf_prov_sidecar_path) */
    char sidecar_sha[RF_SHA256_HEX_LEN + 1]; /* "" when there is none beside the output */
    uint64_t sidecar_size;
    char user_id[128];  /* the requester's ZAP user id; "" without keys */
    int rc;
    rf_err_t err;
} c_fetch_t;

/* Hard-links (or copies) path into the blob store and commits it: sha and size name the blob. */
static int s_fetch_expose(c_fetch_t *f, const char *what, const char *path, char *sha,
                          uint64_t *size)
{
    char tmp[4400];
    int rc = rf_blob_tmp_path(f->c->blob_dir, "fetch", tmp, sizeof(tmp));
    if (rc)
        return rf_err_set(&f->err, rc, "cannot make a temporary file in the blob store");
    if (link(path, tmp) != 0) {
        int e = errno;
        FILE *in = e == EXDEV || e == EPERM || e == EMLINK ? fopen(path, "rb") : NULL;
        FILE *out = in ? fopen(tmp, "wb") : NULL;
        if (!out) {
            if (in)
                fclose(in);
            return rf_err_set(&f->err, RF_EIO, "job %s: %s '%s': %s", f->job_id, what, path,
                              strerror(in ? errno : e));
        }
        char buf[1 << 16];
        size_t n;
        bool bad = false;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
            bad = bad || fwrite(buf, 1, n, out) != n;
        bad = bad || ferror(in);
        fclose(in);
        if (fclose(out) != 0 || bad) {
            unlink(tmp);
            return rf_err_set(&f->err, RF_EIO, "job %s: cannot copy %s '%s' into the blob store",
                              f->job_id, what, path);
        }
    }
    rc = rf_blob_commit(f->c->blob_dir, tmp, sha, size, &f->err);
    if (rc)
        unlink(tmp);
    return rc;
}

/* The output, then its C2PA sidecar when there is one (an MKV output's only manifest). */
static void s_fetch_run(uv_work_t *req)
{
    c_fetch_t *f = req->data;
    f->rc = s_fetch_expose(f, "output", f->output, f->sha, &f->size);
    if (!f->rc && access(f->sidecar, F_OK) == 0)
        f->rc = s_fetch_expose(f, "C2PA sidecar", f->sidecar, f->sidecar_sha, &f->sidecar_size);
}

static void s_fetch_done(uv_work_t *req, int status)
{
    c_fetch_t *f = req->data;
    rf_coordinator_t *c = f->c;
    rf_zparts_t peer = {.count = 1, .data = {f->peer}, .size = {f->peer_len}};
    if (status == UV_ECANCELED || c->stopping) {
        free(f);
        return;
    }
    if (f->rc) {
        RF_WARN(COMP, "fetch of job %s: %s", f->job_id, f->err.msg);
        s_reply_error(c, &peer, RF_EIO, f->err.msg);
        free(f);
        return;
    }
    Reelfarm__FetchReply fr = REELFARM__FETCH_REPLY__INIT;
    fr.job_id = f->job_id;
    fr.sha256 = f->sha;
    fr.size = f->size;
    fr.blob_endpoint = (char *)rf_blob_server_endpoint(c->blobs);
    fr.output = f->output;
    if (*f->sidecar_sha) {
        fr.sidecar_sha256 = f->sidecar_sha;
        fr.sidecar_size = f->sidecar_size;
        fr.sidecar = f->sidecar;
    }
    if (*f->user_id) { /* a client key may download these blobs now, and only blobs granted so */
        rf_blob_server_grant(c->blobs, f->sha, f->user_id);
        if (*f->sidecar_sha)
            rf_blob_server_grant(c->blobs, f->sidecar_sha, f->user_id);
    }
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_FETCH_REPLY;
    env.fetch_reply = &fr;
    s_send(c, c->csock, f->peer, f->peer_len, &env);
    {
        char detail[400];
        int used =
            snprintf(detail, sizeof(detail), "output blob %s (%" PRIu64 " bytes)", f->sha, f->size);
        if (*f->sidecar_sha && used > 0 && (size_t)used < sizeof(detail))
            snprintf(detail + used, sizeof(detail) - (size_t)used,
                     "; sidecar blob %s (%" PRIu64 " bytes)", f->sidecar_sha, f->sidecar_size);
        s_audit(c, "fetch", *f->user_id ? f->user_id : "client", f->job_id, detail);
    }
    RF_INFO(COMP, "job %s: output exposed for download as blob %.12s (%" PRIu64 " bytes)", f->job_id,
            f->sha, f->size);
    free(f);
}

static void s_on_fetch(rf_coordinator_t *c, const rf_zparts_t *req, const Reelfarm__FetchOutput *q)
{
    char msg[512];
    c_job_t *job = q->job_id ? s_job_find(c, q->job_id) : NULL;
    if (!job) {
        snprintf(msg, sizeof(msg), "no job '%.64s'", q->job_id ? q->job_id : "");
        s_reply_error(c, req, RF_ENOENT, msg);
        return;
    }
    if (strcmp(job->row.state, "done") != 0) {
        snprintf(msg, sizeof(msg), "job %s ('%.100s') is %s, not done: it has no output to fetch",
                 job->row.id, job->row.name, job->row.state);
        s_reply_error(c, req, RF_EAGAIN, msg);
        return;
    }
    c_fetch_t *f = calloc(1, sizeof(*f));
    if (!f || req->size[0] > sizeof(f->peer) ||
        snprintf(f->output, sizeof(f->output), "%s", job->row.output) >= (int)sizeof(f->output) ||
        rf_prov_sidecar_path(f->output, f->sidecar, sizeof(f->sidecar))) {
        free(f);
        s_reply_error(c, req, RF_ENOMEM, "cannot start the fetch");
        return;
    }
    memcpy(f->peer, req->data[0], req->size[0]);
    f->peer_len = req->size[0];
    snprintf(f->job_id, sizeof(f->job_id), "%s", job->row.id);
    snprintf(f->user_id, sizeof(f->user_id), "%s", req->user_id ? req->user_id : "");
    f->c = c;
    f->req.data = f;
    int rc = uv_queue_work(&c->loop, &f->req, s_fetch_run, s_fetch_done);
    if (rc) {
        free(f);
        s_reply_error(c, req, RF_EIO, "cannot queue the fetch");
    }
}

/* Roles on the client socket (docs/SECURITY.md): an admin key (or anyone, without keys) may do
 * everything; a client key submits, and reads and controls the jobs it submitted - another's job
 * is answered as if it did not exist. Returns false after replying. */
static bool s_client_allowed(rf_coordinator_t *c, const rf_zparts_t *msg, const Reelfarm__Envelope *env,
                             rf_role_t role, const char *who)
{
    if (role == RF_ROLE_OPEN || role == RF_ROLE_ADMIN)
        return true;
    char m[300];
    if (role != RF_ROLE_CLIENT) {
        snprintf(m, sizeof(m), "a %s key may not use the client socket", rf_zsec_role_name(role));
        goto refuse;
    }
    const char *job_id = NULL;
    switch (env->body_case) {
    case REELFARM__ENVELOPE__BODY_SUBMIT:
    case REELFARM__ENVELOPE__BODY_JOB_LIST:
    case REELFARM__ENVELOPE__BODY_WATERMARK_QUERY: /* the handler answers with the key's own jobs */
        return true;
    case REELFARM__ENVELOPE__BODY_JOB_QUERY: job_id = env->job_query->job_id; break;
    case REELFARM__ENVELOPE__BODY_JOB_ACTION: job_id = env->job_action->job_id; break;
    case REELFARM__ENVELOPE__BODY_EVENT_QUERY: job_id = env->event_query->job_id; break;
    case REELFARM__ENVELOPE__BODY_FETCH_OUTPUT: job_id = env->fetch_output->job_id; break;
    default:
        snprintf(m, sizeof(m), "'%s' needs an admin key (this is client key '%s')",
                 rf_msg_body_name(env), who);
        goto refuse;
    }
    c_job_t *job = job_id ? s_job_find(c, job_id) : NULL;
    if (!job || !strcmp(job->row.owner, msg->user_id))
        return true; /* unknown jobs get the handler's own "no job" reply */
    snprintf(m, sizeof(m), "no job '%.64s' among the jobs of client key '%s'", job_id, who);
    s_bad(c, RF_GUARD_CLIENTS, RF_BAD_REFUSED);
    RF_WARN(COMP, "client key '%s' asked for job %s of %s: refused", who, job->row.id, job->row.owner);
    s_reply_error(c, msg, RF_ENOENT, m);
    return false;
refuse:
    s_bad(c, RF_GUARD_CLIENTS, RF_BAD_REFUSED);
    RF_WARN(COMP, "refused a '%s' request from %s key '%s'", rf_msg_body_name(env),
            rf_zsec_role_name(role), who);
    s_reply_error(c, msg, RF_EPERM, m);
    return false;
}

/* A monitor event: a connection to the worker (arg: monitors[0]) or client socket whose ZMTP
 * handshake failed. Each event is [6-byte id and value, address]. */
static void s_on_monitor(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    rf_coordinator_t *c = arg;
    rf_guard_socket_t which = s == c->monitors[0] ? RF_GUARD_WORKERS : RF_GUARD_CLIENTS;
    if (msg->count >= 1 && msg->size[0] >= 6) {
        c->bad.bad[which][RF_BAD_HANDSHAKE]++;
        RF_DEBUG(COMP, "a connection to the %s socket failed its handshake (%.*s)",
                 which == RF_GUARD_WORKERS ? "worker" : "client",
                 msg->count > 1 ? (int)msg->size[1] : 0, msg->count > 1 ? (const char *)msg->data[1] : "");
    }
}

static void s_on_client_msg(rf_zsock_t *s, const rf_zparts_t *msg, void *arg)
{
    rf_coordinator_t *c = arg;
    rf_msg_t *m = s_unpack(c, msg, RF_GUARD_CLIENTS);
    if (!m) {
        char why[200];
        if (msg->count == 2 && (int64_t)msg->size[1] > c->max_frame) {
            snprintf(why, sizeof(why), "request of %zu bytes over limits.message_bytes (%" PRId64 ")",
                     msg->size[1], c->max_frame);
            s_reply_error(c, msg, RF_ETOOBIG, why);
        } else if (msg->count == 2) {
            s_reply_error(c, msg, RF_EPROTO, "malformed request");
        }
        return;
    }
    const Reelfarm__Envelope *env = rf_msg_env(m);
    char who[RF_ZSEC_NAME_MAX + 1];
    rf_role_t role = rf_zsec_role(msg->user_id, who, sizeof(who));
    if (!s_client_allowed(c, msg, env, role, who)) {
        rf_msg_destroy(&m);
        return;
    }
    switch (env->body_case) {
    case REELFARM__ENVELOPE__BODY_SUBMIT:
        s_on_submit(c, msg, env->submit, msg->user_id ? msg->user_id : "");
        break;
    case REELFARM__ENVELOPE__BODY_JOB_QUERY:
        s_on_query(c, msg, env->job_query);
        break;
    case REELFARM__ENVELOPE__BODY_JOB_ACTION:
        s_on_action(c, msg, env->job_action);
        break;
    case REELFARM__ENVELOPE__BODY_JOB_LIST:
        s_on_list(c, msg, role == RF_ROLE_CLIENT ? msg->user_id : NULL);
        break;
    case REELFARM__ENVELOPE__BODY_WORKER_LIST:
        s_on_workers(c, msg);
        break;
    case REELFARM__ENVELOPE__BODY_EVENT_QUERY:
        s_on_events(c, msg, env->event_query);
        break;
    case REELFARM__ENVELOPE__BODY_FETCH_OUTPUT: s_on_fetch(c, msg, env->fetch_output); break;
    case REELFARM__ENVELOPE__BODY_WATERMARK_QUERY:
        s_on_watermark(c, msg, env->watermark_query, role == RF_ROLE_CLIENT ? msg->user_id : NULL);
        break;
    default:
        s_bad(c, RF_GUARD_CLIENTS, RF_BAD_UNEXPECTED);
        s_reply_error(c, msg, RF_EPROTO, "unexpected request");
        break;
    }
    rf_msg_destroy(&m);
}

/* ---- timers, lifecycle ------------------------------------------------------------------------ */

static void s_on_tick(uv_timer_t *t)
{
    rf_coordinator_t *c = t->data;
    uint64_t now = rf_now_ms();
    uint64_t expiry = (uint64_t)c->heartbeat_ms * (uint64_t)c->liveness;
    Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    bool changed = false;
    if (rf_store_broken(c->store)) {
        /* The file holds a consistent past state (store.h): reload it once there is room. */
        rf_err_t serr = {0};
        if (!c->stopping && rf_space_check(c->state_dir, RF_STATE_MIN_FREE, &serr) == 0) {
            RF_WARN(COMP, "space is back in '%s': reloading the state from state.db (changes "
                          "since the disk filled up are redone)", c->state_dir);
            c->restart = true;
            s_on_stop(&c->stop_async);
            return;
        }
    }
    s_blob_reap(c, false);
    /* Liveness is judged on what has arrived. After a stall of this process (a loaded host, a
     * slow disk under a commit) libuv runs timers before its I/O phase: deliver what the worker
     * socket holds first, and do not count the stall itself as the workers' silence. */
    uint64_t late = c->last_tick_ms && now > c->last_tick_ms + 2 * (uint64_t)c->heartbeat_ms
                        ? now - c->last_tick_ms - (uint64_t)c->heartbeat_ms
                        : 0;
    c->last_tick_ms = now;
    rf_zsock_drain(c->wsock);
    if (late) {
        RF_WARN(COMP, "the coordinator did not run for %" PRIu64 " ms (a loaded host?): workers "
                      "get that much longer to answer", late);
        for (c_worker_t *w = c->workers; w; w = w->next)
            w->last_seen_ms = w->last_seen_ms + late < now ? w->last_seen_ms + late : now;
    }
    for (c_worker_t *w = c->workers; w; w = w->next) {
        if (!w->live)
            continue;
        if (now - w->last_seen_ms > expiry) {
            s_worker_expire(c, w, "stopped answering");
            changed = true;
            continue;
        }
        if (s_send_worker(c, w, &env) == RF_EUNAVAIL) {
            s_worker_expire(c, w, "went away");
            changed = true;
        }
    }
    /* After a restart: chunks nobody re-announced in time are rendered again. */
    for (c_job_t *j = c->jobs; j; j = j->next) {
        for (size_t i = 0; i < j->nchunks && j->holding && !s_job_terminal(j); i++) {
            c_chunk_t *ch = &j->chunks[i];
            if (ch->hold_until_ms && now >= ch->hold_until_ms) {
                ch->hold_until_ms = 0;
                j->holding--;
                s_chunk_returned(ch);
                rf_store_attempt_end(c->store, j->row.id, ch->row.index, ch->row.attempts, "lost",
                                     "its worker did not come back after the coordinator restarted",
                                     NULL);
                changed = true;
            }
        }
    }
    /* Task timeout: a lease whose holder is alive but makes no progress. */
    c_leaseslot_t *leases = NULL;
    size_t nleases = 0;
    if (s_leases_snapshot(&c->leases, &leases, &nleases))
        RF_ERROR(COMP, "out of memory checking task timeouts");
    for (size_t i = 0; i < nleases; i++) {
        c_chunk_t *ch = leases[i].chunk;
        c_job_t *j = ch->job;
        if (leases[i].key != ch->lease || s_job_terminal(j) || ch->verifying ||
            now - ch->progress_ms <= (uint64_t)c->task_timeout_s * 1000)
            continue;
        s_send_cancel(c, ch->worker, ch->lease, "no progress within the task timeout");
        char msg[128];
        snprintf(msg, sizeof(msg), "no progress for %d s", c->task_timeout_s);
        s_chunk_requeue(c, j, ch, "timed out", msg, ch->worker ? ch->worker->name : NULL);
        changed = true;
    }
    free(leases);
    if (changed)
        s_dispatch(c);
}

static void s_close_cb(uv_handle_t *h)
{
    (void)h;
}

static void s_on_flush(uv_prepare_t *p)
{
    rf_coordinator_t *c = p->data;
    rf_err_t err = {0};
    if (rf_store_flush(c->store, &err))
        RF_ERROR(COMP, "%s", err.msg);
}

static void s_on_stop(uv_async_t *a)
{
    rf_coordinator_t *c = a->data;
    if (c->stopping)
        return;
    c->stopping = true;
    RF_INFO(COMP, "stopping");
    if (c->http) {
        rf_http_set_unready(c->http);
        s_obs_publish(c); /* /readyz says 503 from now on */
        uv_timer_stop(&c->obs_timer);
        uv_close((uv_handle_t *)&c->obs_timer, s_close_cb);
    }
    uv_timer_stop(&c->tick);
    uv_close((uv_handle_t *)&c->tick, s_close_cb);
    uv_close((uv_handle_t *)&c->stop_async, s_close_cb);
    uv_prepare_stop(&c->flush);
    uv_close((uv_handle_t *)&c->flush, s_close_cb);
    rf_zsock_close(c->monitors[0]);
    rf_zsock_close(c->monitors[1]);
    c->monitors[0] = c->monitors[1] = NULL;
    rf_zsock_close(c->wsock);
    rf_zsock_close(c->csock);
    c->wsock = c->csock = NULL;
    /* In-flight work finishes on its thread and its result is discarded (s_work_done). */
}

/* A ROUTER at endpoint; CURVE server with ZAP domain `domain` when sec is on. libzmq drops (and
 * disconnects) frames over twice limits.message_bytes; those between one and two times it reach
 * s_unpack, which counts them as too_big, so an oversized message shows in the metrics. */
static int s_bind(void *zctx, int type, const char *endpoint, const rf_zsec_t *sec, const char *domain,
                  int64_t max_frame, char *bound, size_t bound_size, void **out, rf_err_t *err)
{
    void *sock = zmq_socket(zctx, type);
    if (!sock)
        return rf_err_set(err, RF_EIO, "cannot create socket: %s", zmq_strerror(errno));
    if (rf_zsock_setup(sock, type, (size_t)max_frame * 2) || rf_zsec_apply(sock, sec, domain) ||
        zmq_bind(sock, endpoint) != 0) {
        int e = errno;
        zmq_close(sock);
        return rf_err_set(err, RF_EIO, "cannot listen on '%s': %s", endpoint, zmq_strerror(e));
    }
    size_t len = bound_size;
    if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
        snprintf(bound, bound_size, "%s", endpoint);
    *out = sock;
    return 0;
}

/* Before anything can upload: partial files in blobs/tmp are from a previous life, and blobs no
 * unfinished job names (a result whose chunk never became done, a finished job's leftovers) are
 * garbage. */
static void s_sweep_blobs(rf_coordinator_t *c)
{
    char tmpdir[4300], path[8700];
    size_t removed = 0;
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", c->blob_dir);
    const char *dirs[2] = {tmpdir, c->blob_dir};
    for (int k = 0; k < 2; k++) {
        DIR *d = opendir(dirs[k]);
        if (!d)
            continue;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            bool in_use = true;
            if (e->d_name[0] == '.')
                continue;
            if (k == 1 && (!rf_sha256_hex_valid(e->d_name) ||
                           rf_store_blob_in_use(c->store, e->d_name, &in_use, NULL) || in_use))
                continue;
            snprintf(path, sizeof(path), "%s/%s", dirs[k], e->d_name);
            removed += unlink(path) == 0;
        }
        closedir(d);
    }
    if (removed)
        RF_INFO(COMP, "removed %zu leftover blob files", removed);
}

static int s_load_jobs(rf_coordinator_t *c, rf_err_t *err)
{
    rf_store_job_t *rows = NULL;
    size_t n = 0;
    size_t tagged = 0; /* jobs whose watermark tag was filled in now */
    int rc = rf_store_jobs_load(c->store, false, &rows, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rf_store_job_t *row = &rows[i];
        rf_job_spec_t *spec = NULL;
        rf_err_t serr = {0};
        bool terminal = !strcmp(row->state, "done") || !strcmp(row->state, "failed") ||
                        !strcmp(row->state, "cancelled");
        if (!terminal && rf_job_spec_load_string(row->spec_yaml, strlen(row->spec_yaml),
                                                 row->spec_source, row->base_dir, &spec, &serr)) {
            rf_log_ctx(RF_LOG_ERROR, COMP, RF_LOG_CTX(row->id, -1, -1, NULL),
                       "job %s: stored spec no longer loads: %s", row->id, serr.msg);
            rf_store_job_set_state(c->store, row->id, "failed", serr.msg, NULL);
            snprintf(row->state, sizeof(row->state), "failed");
            terminal = true;
        }
        if (!row->wm_tag[0]) {
            /* Stored before tags were recorded: its frames carry the tag of the key in use now
             * (unless watermark.key was replaced since), so a stripped copy still finds it. */
            rf_err_t terr = {0};
            s_job_wm_tag(c, row->id, row->wm_tag);
            if (rf_store_job_set_wm_tag(c->store, row->id, row->wm_tag, &terr))
                RF_WARN(COMP, "job %s: %s", row->id, terr.msg);
            else
                tagged++;
        }
        c_job_t *job = s_job_add(c, row, spec);
        if (!job) {
            rf_job_spec_destroy(&spec);
            continue;
        }
        memset(row, 0, sizeof(*row)); /* strings now belong to job->row */
        job->paused = job->row.paused;
        rf_store_chunk_t *chunks = NULL;
        size_t nchunks = 0;
        /* A chunk that was running when we stopped is held for twice the liveness window: its
         * worker reconnects, re-announces it and keeps rendering instead of starting over. */
        if (!rf_store_chunks_load(c->store, job->row.id, &chunks, &nchunks, NULL) && nchunks)
            s_chunks_adopt(job, chunks, nchunks, 2ULL * (uint64_t)c->heartbeat_ms * (uint64_t)c->liveness);
        else
            free(chunks);
        if (terminal)
            continue;
        /* Results that arrived but were not verified yet are verified now, not rendered again. */
        for (size_t k = 0; k < job->nchunks; k++) {
            c_chunk_t *ch = &job->chunks[k];
            uint8_t digest[RF_SHA256_LEN];
            if (strcmp(ch->row.state, "verifying"))
                continue;
            snprintf(ch->row.state, sizeof(ch->row.state), "queued");
            if (rf_sha256_from_hex(ch->row.result_digest, digest) == 0)
                s_verify_start(c, job, ch, 0, ch->row.result_blob, ch->row.result_size, digest,
                               &ch->row.seam_head, &ch->row.seam_tail, NULL, 0,
                               ch->row.worker, false, NULL);
            else
                rf_store_chunk_requeued(c->store, job->row.id, ch->row.index, NULL);
        }
        /* Unfinished: probe again (the media index is not stored), then continue. A job that was
         * planning starts its plan over; done chunks are never rendered again. */
        bool replan = !strcmp(job->row.state, "planning");
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(job->row.id, -1, -1, NULL),
                   "job %s ('%s'): resuming in state %s, %zu/%zu chunks done", job->row.id,
                   job->row.name, job->row.state, job->ndone, job->nchunks);
        s_plan_start(c, job, replan);
    }
    rf_store_jobs_free(rows, n);
    if (tagged)
        RF_INFO(COMP,
                "recorded the watermark tags of %zu jobs stored before tags were (with the "
                "current watermark.key), so `reelfarm jobs --watermark-tag` finds them",
                tagged);
    return 0;
}

/* ---- observability snapshot (coordinator/http.h) ------------------------------------------------ */

/* What a chunk looks like from outside (http.h rf_http_chunk_state_t). */
static rf_http_chunk_state_t s_chunk_view_state(const c_chunk_t *ch)
{
    if (!strcmp(ch->row.state, "done"))
        return RF_HTTP_CHUNK_DONE;
    if (!strcmp(ch->row.state, "failed"))
        return RF_HTTP_CHUNK_FAILED;
    if (ch->verifying || !strcmp(ch->row.state, "verifying"))
        return RF_HTTP_CHUNK_VERIFYING;
    if (ch->lease)
        return RF_HTTP_CHUNK_RUNNING;
    return ch->row.attempts > 0 ? RF_HTTP_CHUNK_RETRYING : RF_HTTP_CHUNK_QUEUED;
}

static const char *s_job_view_state(const c_job_t *j)
{
    return j->paused && !strcmp(j->row.state, "running") ? "paused" : j->row.state;
}

static int s_ptr_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(c_worker_t *const *)a, y = (uintptr_t)*(c_worker_t *const *)b;
    return x < y ? -1 : x > y;
}

/* Per-worker figures gathered in one pass over the leases. */
typedef struct s_obs_worker {
    c_worker_t *w;
    uint32_t busy;
    double fps;
    const c_chunk_t *current; /* one chunk it runs, for the dashboard */
} s_obs_worker_t;

static s_obs_worker_t *s_obs_find(s_obs_worker_t *ws, size_t n, const c_worker_t *w)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((uintptr_t)ws[mid].w < (uintptr_t)w)
            lo = mid + 1;
        else if (ws[mid].w == w)
            return &ws[mid];
        else
            hi = mid;
    }
    return NULL;
}

static void s_obs_counter(rf_buf_t *m, const char *name, const char *help, uint64_t v)
{
    rf_buf_printf(m, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

/* Renders the farm as Prometheus text and JSON documents and hands them to the HTTP thread.
 * Runs on the loop every RF_OBS_PUBLISH_MS: O(jobs x chunks + workers log workers). */
static void s_obs_publish(rf_coordinator_t *c)
{
    const char *const *chunk_states = rf_http_chunk_state_names;
    static const char *const job_states[] = {"planning", "running", "paused", "stitching", "done",
                                             "failed", "cancelled"};
    enum { NCS = RF_HTTP_CHUNK_NSTATES, NJS = 7 };
    uint64_t now = rf_now_ms();
    rf_http_snapshot_t *snap = rf_http_snapshot_new();
    rf_buf_t m = {0}, jl = {0}, wl = {0};
    size_t njobs = 0, nw = 0;
    uint64_t chunk_count[NCS] = {0}, job_count[NJS] = {0};
    double fps_total = 0;
    s_obs_worker_t *ws = calloc(c->nworkers + 1, sizeof(*ws));
    if (!snap || !ws)
        goto out;
    for (c_worker_t *w = c->workers; w; w = w->next)
        ws[nw++].w = w;
    qsort(ws, nw, sizeof(*ws), s_ptr_cmp);
    for (c_job_t *j = c->jobs; j; j = j->next)
        njobs++;
    snap->jobs = calloc(njobs + 1, sizeof(*snap->jobs));
    if (!snap->jobs)
        goto out;

    rf_buf_printf(&jl, "{\"now_ms\":%" PRId64 ",\"jobs\":[", rf_wall_ms());
    for (c_job_t *j = c->jobs; j; j = j->next) {
        rf_http_job_doc_t *doc = &snap->jobs[snap->njobs++];
        uint64_t cs[NCS] = {0}, frames_done = 0;
        double fps = 0;
        const char *jstate = s_job_view_state(j);
        for (int k = 0; k < NJS; k++)
            job_count[k] += !strcmp(jstate, job_states[k]);
        snprintf(doc->id, sizeof(doc->id), "%s", j->row.id);
        doc->input = j->spec && j->spec->input ? strdup(j->spec->input) : NULL;
        doc->output = j->spec && j->spec->output ? strdup(j->spec->output) : NULL;
        doc->done = !strcmp(j->row.state, "done");
        doc->chunks = malloc((j->nchunks + 1) * sizeof(*doc->chunks));
        if (!doc->chunks)
            goto out;
        doc->nchunks = j->nchunks;
        /* Plain copies only: the JSON is rendered by the HTTP thread when someone asks. */
        for (size_t i = 0; i < j->nchunks; i++) {
            const c_chunk_t *ch = &j->chunks[i];
            rf_http_chunk_ref_t *ref = &doc->chunks[i];
            rf_http_chunk_state_t st = s_chunk_view_state(ch);
            int64_t frames = ch->row.frame_end - ch->row.frame_start;
            bool running = st == RF_HTTP_CHUNK_RUNNING; /* not once its result is being verified */
            cs[st]++;
            ref->index = ch->row.index;
            ref->state = (uint8_t)st;
            ref->backup = ch->backup_lease != 0;
            ref->attempts = ch->row.attempts;
            ref->frame_start = ch->row.frame_start;
            ref->frame_end = ch->row.frame_end;
            ref->frames_done = st == RF_HTTP_CHUNK_DONE ? (uint64_t)frames : ch->lease ? ch->frames_done : 0;
            ref->fps = running ? ch->fps : 0.0f;
            ref->head_overlap = ch->row.head_overlap;
            const char *worker = ch->lease && ch->worker ? ch->worker->name : ch->row.worker;
            size_t wl_len = strnlen(worker, sizeof(ref->worker) - 1);
            memcpy(ref->worker, worker, wl_len);
            ref->worker[wl_len] = '\0';
            ref->failed_on = ch->row.failed_on && *ch->row.failed_on ? strdup(ch->row.failed_on) : NULL;
            if (st == RF_HTTP_CHUNK_DONE)
                memcpy(ref->result_blob, ch->row.result_blob, sizeof(ref->result_blob));
            else
                ref->result_blob[0] = '\0';
            frames_done += ref->frames_done;
            if (running) {
                fps += ch->fps;
                s_obs_worker_t *ow = ch->worker ? s_obs_find(ws, nw, ch->worker) : NULL;
                if (ow) {
                    ow->busy++;
                    ow->fps += ch->fps;
                    if (!ow->current)
                        ow->current = ch;
                }
            }
            if (ch->backup_lease && ch->backup_worker && !ch->verifying) {
                s_obs_worker_t *ow = s_obs_find(ws, nw, ch->backup_worker);
                if (ow) {
                    ow->busy++;
                    if (!ow->current)
                        ow->current = ch;
                }
            }
        }
        fps_total += fps;
        /* The summary goes into both documents: the list and, after the chunks, the job. */
        rf_buf_t sum = {0};
        rf_buf_printf(&sum, "\"name\":");
        rf_buf_json_string(&sum, j->row.name);
        rf_buf_printf(&sum, ",\"state\":\"%s\",\"priority\":%d,\"created_ms\":%" PRId64
                            ",\"frames_total\":%" PRId64 ",\"frames_done\":%" PRIu64
                            ",\"fps\":%.2f,\"chunks_total\":%zu,\"chunks_done\":%zu,\"chunk_states\":{",
                      jstate, j->row.priority, j->row.created_ms, j->row.frames_total, frames_done,
                      fps, j->nchunks, j->ndone);
        for (int k = 0; k < NCS; k++)
            rf_buf_printf(&sum, "%s\"%s\":%" PRIu64, k ? "," : "", chunk_states[k], cs[k]);
        rf_buf_printf(&sum, "},\"input\":");
        rf_buf_json_string(&sum, doc->input);
        rf_buf_printf(&sum, ",\"output\":");
        rf_buf_json_string(&sum, j->row.output);
        rf_buf_printf(&sum, ",\"message\":");
        rf_buf_json_string(&sum, j->row.message ? j->row.message : "");
        rf_buf_printf(&jl, "%s{\"id\":", snap->njobs > 1 ? "," : "");
        rf_buf_json_string(&jl, j->row.id);
        rf_buf_printf(&jl, ",%s}", sum.data ? sum.data : "");
        size_t sum_len = 0;
        doc->summary = rf_buf_take(&sum, &sum_len);
        if (!doc->summary)
            goto out;
        for (int k = 0; k < NCS; k++)
            chunk_count[k] += cs[k];
    }
    rf_buf_printf(&jl, "]}\n");

    /* Workers. */
    size_t live = 0, quarantined = 0;
    rf_buf_printf(&wl, "{\"now_ms\":%" PRId64 ",\"workers\":[", rf_wall_ms());
    size_t k = 0;
    for (c_worker_t *w = c->workers; w; w = w->next, k++) {
        s_obs_worker_t *ow = s_obs_find(ws, nw, w);
        live += w->live;
        quarantined += w->live && w->quarantined;
        rf_buf_printf(&wl, "%s{\"name\":", k ? "," : "");
        rf_buf_json_string(&wl, w->name);
        rf_buf_printf(&wl,
                      ",\"live\":%s,\"quarantined\":%s,\"slots\":%u,\"busy\":%u,\"fps\":%.2f,"
                      "\"vram_bytes\":%" PRIu64 ",\"last_seen_ms_ago\":%" PRIu64
                      ",\"chunks_done\":%u,\"chunks_failed\":%u,\"gpu_model\":",
                      w->live ? "true" : "false", w->quarantined ? "true" : "false", w->slots,
                      ow ? ow->busy : 0, ow ? ow->fps : 0.0, w->vram_bytes, now - w->last_seen_ms,
                      w->chunks_done, w->chunks_failed);
        rf_buf_json_string(&wl, w->gpu_model);
        if (ow && ow->current) {
            rf_buf_printf(&wl, ",\"current\":{\"job\":");
            rf_buf_json_string(&wl, ow->current->job->row.id);
            rf_buf_printf(&wl, ",\"chunk\":%u,\"frames_done\":%" PRIu64 ",\"frames\":%" PRId64 "}",
                          ow->current->row.index, ow->current->frames_done,
                          ow->current->row.frame_end - ow->current->row.frame_start);
        } else {
            rf_buf_printf(&wl, ",\"current\":null");
        }
        rf_buf_printf(&wl, "}");
    }
    rf_buf_printf(&wl, "]}\n");

    /* Prometheus text format 0.0.4: HELP and TYPE once per family, then its samples. */
    rf_buf_printf(&m, "# HELP reelfarm_up 1 while the coordinator runs.\n# TYPE reelfarm_up gauge\n"
                      "reelfarm_up 1\n");
    rf_buf_printf(&m, "# HELP reelfarm_ready 1 when the store is open, the sockets bound and the "
                      "coordinator not stopping.\n# TYPE reelfarm_ready gauge\nreelfarm_ready %d\n",
                  !c->stopping);
    rf_buf_printf(&m, "# HELP reelfarm_jobs Jobs known to the coordinator, by state.\n"
                      "# TYPE reelfarm_jobs gauge\n");
    for (int i = 0; i < NJS; i++)
        rf_buf_printf(&m, "reelfarm_jobs{state=\"%s\"} %" PRIu64 "\n", job_states[i], job_count[i]);
    rf_buf_printf(&m, "# HELP reelfarm_chunks Chunks of all jobs, by state (retrying: queued again "
                      "after an attempt ended without a result).\n# TYPE reelfarm_chunks gauge\n");
    for (int i = 0; i < NCS; i++)
        rf_buf_printf(&m, "reelfarm_chunks{state=\"%s\"} %" PRIu64 "\n", chunk_states[i],
                      chunk_count[i]);
    s_obs_counter(&m, "reelfarm_jobs_submitted_total", "Jobs submitted since the coordinator started.",
                  c->obs.jobs_submitted);
    s_obs_counter(&m, "reelfarm_assignments_total", "Chunk leases granted to workers (primary runs).",
                  c->obs.assignments);
    s_obs_counter(&m, "reelfarm_backup_assignments_total",
                  "Backup runs of straggler chunks granted.", c->obs.backups);
    s_obs_counter(&m, "reelfarm_lease_expiries_total",
                  "Leases lost to a silent worker or a task timeout.", c->obs.lease_expiries);
    rf_buf_printf(&m, "# HELP reelfarm_retries_total Chunks queued again, by the outcome of the "
                      "attempt that ended.\n# TYPE reelfarm_retries_total counter\n");
    static const char *const outcomes[] = {"failed", "lost", "timed_out", "handed_back"};
    for (int i = 0; i < 4; i++)
        rf_buf_printf(&m, "reelfarm_retries_total{outcome=\"%s\"} %" PRIu64 "\n", outcomes[i],
                      c->obs.retries[i]);
    s_obs_counter(&m, "reelfarm_chunks_verified_total", "Chunk results verified and kept.",
                  c->obs.chunks_verified);
    s_obs_counter(&m, "reelfarm_verify_failures_total", "Chunk results that failed verification.",
                  c->obs.verify_failures);
    s_obs_counter(&m, "reelfarm_result_blob_bytes_total", "Bytes of verified chunk results.",
                  c->obs.result_bytes);
    s_obs_counter(&m, "reelfarm_rejected_messages_total",
                  "Malformed or unexpected worker and client messages dropped.", c->obs.rejected);
    {
        unsigned long dropped[2] = {rf_zsock_dropped(c->wsock), rf_zsock_dropped(c->csock)};
        rf_blob_server_stats_t bs;
        rf_auth_stats_t as;
        rf_blob_server_stats(c->blobs, &bs);
        uint64_t hb[3];
        rf_auth_stats(c->auth, &as);
        rf_http_bad_requests(c->http, hb);
        rf_guard_metrics(&m, &c->bad, dropped, &bs, hb, c->auth ? &as : NULL);
    }
    rf_buf_printf(&m, "# HELP reelfarm_stitch_seconds Time spent stitching jobs' outputs.\n"
                      "# TYPE reelfarm_stitch_seconds summary\n"
                      "reelfarm_stitch_seconds_sum %.3f\nreelfarm_stitch_seconds_count %" PRIu64 "\n",
                  c->obs.stitch_seconds, c->obs.stitches);
    rf_buf_printf(&m, "# HELP reelfarm_frames_per_second Frames per second rendered by all running "
                      "chunks.\n# TYPE reelfarm_frames_per_second gauge\n"
                      "reelfarm_frames_per_second %.3f\n", fps_total);
    rf_buf_printf(&m, "# HELP reelfarm_workers Workers known, by liveness.\n"
                      "# TYPE reelfarm_workers gauge\nreelfarm_workers{state=\"live\"} %zu\n"
                      "reelfarm_workers{state=\"quarantined\"} %zu\nreelfarm_workers{state=\"gone\"} %zu\n",
                  live - quarantined, quarantined, c->nworkers - live);
    static const struct {
        const char *name, *help;
    } wm[] = {{"reelfarm_worker_up", "1 while the worker answers heartbeats."},
              {"reelfarm_worker_last_seen_seconds", "Seconds since the worker's last message."},
              {"reelfarm_worker_slots", "Slots (chunks at once) the worker announced."},
              {"reelfarm_worker_busy_slots", "Chunks the worker runs now."},
              {"reelfarm_worker_frames_per_second", "Frames per second of the worker's chunks."}};
    for (size_t i = 0; i < sizeof(wm) / sizeof(wm[0]); i++) {
        rf_buf_printf(&m, "# HELP %s %s\n# TYPE %s gauge\n", wm[i].name, wm[i].help, wm[i].name);
        for (c_worker_t *w = c->workers; w; w = w->next) {
            s_obs_worker_t *ow = s_obs_find(ws, nw, w);
            double v = i == 0   ? (double)w->live
                       : i == 1 ? (double)(now - w->last_seen_ms) / 1000.0
                       : i == 2 ? (double)w->slots
                       : i == 3 ? (double)(ow ? ow->busy : 0)
                                : (ow ? ow->fps : 0.0);
            rf_buf_printf(&m, "%s{worker=\"", wm[i].name);
            rf_buf_label(&m, w->name);
            rf_buf_printf(&m, "\"} %.3f\n", v);
        }
    }
    rf_buf_printf(&m, "# HELP reelfarm_job_progress_ratio Fraction of a job's frames rendered.\n"
                      "# TYPE reelfarm_job_progress_ratio gauge\n");
    for (c_job_t *j = c->jobs; j; j = j->next) {
        if (s_job_terminal(j))
            continue; /* finished jobs would grow the series without bound */
        uint64_t done = 0;
        for (size_t i = 0; i < j->nchunks; i++)
            done += !strcmp(j->chunks[i].row.state, "done")
                        ? (uint64_t)(j->chunks[i].row.frame_end - j->chunks[i].row.frame_start)
                    : j->chunks[i].lease ? j->chunks[i].frames_done
                                         : 0;
        rf_buf_printf(&m, "reelfarm_job_progress_ratio{job=\"");
        rf_buf_label(&m, j->row.id);
        rf_buf_printf(&m, "\",name=\"");
        rf_buf_label(&m, j->row.name);
        rf_buf_printf(&m, "\"} %.4f\n",
                      j->row.frames_total > 0 ? (double)done / (double)j->row.frames_total : 0.0);
    }
    snap->metrics = rf_buf_take(&m, &snap->metrics_len);
    snap->jobs_json = rf_buf_take(&jl, &snap->jobs_json_len);
    snap->workers_json = rf_buf_take(&wl, &snap->workers_json_len);
    if (!snap->metrics || !snap->jobs_json || !snap->workers_json)
        goto out;
    snap->ready = !c->stopping && c->store != NULL;
    rf_http_publish(c->http, &snap);
    c->obs.published_ms = rf_now_ms();
    if (c->obs.published_ms - now > 100)
        RF_WARN(COMP, "building the http snapshot took %" PRIu64 " ms (%zu jobs)",
                c->obs.published_ms - now, njobs);
out:
    if (snap)
        RF_DEBUG(COMP, "out of memory building the http snapshot; serving the previous one");
    rf_buf_release(&m);
    rf_buf_release(&jl);
    rf_buf_release(&wl);
    rf_http_snapshot_destroy(&snap);
    free(ws);
}

static void s_on_obs_timer(uv_timer_t *t)
{
    rf_coordinator_t *c = t->data;
    uint64_t now = rf_now_ms(), read = rf_http_last_read_ms(c->http);
    bool watched = read && now - read < RF_OBS_IDLE_MS;
    if (watched || now - c->obs.published_ms >= RF_OBS_IDLE_PUBLISH_MS)
        s_obs_publish(c);
}

/* Takes <state>/lock (flock, exclusive, non-blocking) for as long as the coordinator lives, so a
 * second coordinator on the same state folder refuses to start instead of scheduling from the same
 * state.db: two would hand the same chunks out twice and undo each other's results. The kernel
 * drops the lock when the process dies, kill -9 included, so a crash never leaves a stale lock.
 * The holder's pid is written into the file for the message. */
static int s_lock_state(rf_coordinator_t *c, rf_err_t *err)
{
    char path[4200], holder[32] = "";
    snprintf(path, sizeof(path), "%s/lock", c->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return rf_err_set(err, RF_EIO, "state lock '%s': %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return rf_err_set(err, RF_EEXIST,
                              "state folder '%s' is in use by another coordinator (pid %s holds "
                              "'%s'): two coordinators on one state.db would schedule every chunk "
                              "twice; stop the other one or use another --state",
                              c->state_dir, *holder ? holder : "?", path);
        return rf_err_set(err, RF_EIO, "state lock '%s': %s", path, strerror(e));
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        RF_WARN(COMP, "state lock '%s': cannot record our pid: %s", path, strerror(errno));
    c->lock_fd = fd;
    return 0;
}

int rf_coordinator_new(const rf_coordinator_config_t *cfg, rf_coordinator_t **out, rf_err_t *err)
{
    rf_coordinator_t *c = calloc(1, sizeof(*c));
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    void *wz = NULL, *cz = NULL;
    c->heartbeat_ms = cfg->heartbeat_ms;
    c->liveness = cfg->liveness;
    c->task_timeout_s = cfg->task_timeout_s;
    c->max_attempts = cfg->max_attempts;
    c->verify_sample = cfg->verify_sample;
    c->max_frame = cfg->limits.message_bytes > 0 ? cfg->limits.message_bytes : RF_CONTROL_MAX_FRAME;
    c->max_spec = cfg->limits.spec_bytes > 0 ? cfg->limits.spec_bytes : RF_SPEC_MAX_BYTES;
    c->max_chunks = cfg->limits.chunks_per_job > 0 ? cfg->limits.chunks_per_job : 10000;
    c->max_client_jobs = cfg->limits.jobs_per_client > 0 ? cfg->limits.jobs_per_client : 100;
    c->lock_fd = -1;
    rf_zsec_t sec = {0};
    if (cfg->nmedia_roots) {
        c->media_roots = calloc(cfg->nmedia_roots, sizeof(*c->media_roots));
        for (size_t i = 0; c->media_roots && i < cfg->nmedia_roots; i++)
            if ((c->media_roots[c->nmedia_roots] = strdup(cfg->media_roots[i])) != NULL)
                c->nmedia_roots++;
        if (!c->media_roots || c->nmedia_roots != cfg->nmedia_roots) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
    }
    c->next_lease = (uint64_t)rf_wall_ms() << 12; /* unique across restarts */
    snprintf(c->state_dir, sizeof(c->state_dir), "%s", cfg->state_dir);
    if (cfg->shared_blobs && *cfg->shared_blobs)
        snprintf(c->blob_dir, sizeof(c->blob_dir), "%s", cfg->shared_blobs);
    else
        snprintf(c->blob_dir, sizeof(c->blob_dir), "%s/blobs", c->state_dir);
    if (mkdir(c->state_dir, 0700) != 0 && errno != EEXIST) {
        rc = rf_err_set(err, RF_EIO, "state dir '%s': %s", c->state_dir, strerror(errno));
        goto fail;
    }
    /* A shared store is read and written by workers on other hosts: group-accessible. */
    if (mkdir(c->blob_dir, cfg->shared_blobs ? 0770 : 0700) != 0 && errno != EEXIST) {
        rc = rf_err_set(err, RF_EIO, "%s '%s': %s", cfg->shared_blobs ? "shared_blobs" : "blob folder",
                        c->blob_dir, strerror(errno));
        goto fail;
    }
    if (cfg->shared_blobs && *cfg->shared_blobs) {
        rc = rf_blob_store_id(c->blob_dir, true, c->store_id, err);
        if (rc) {
            rf_err_prefix(err, "shared_blobs: ");
            goto fail;
        }
        RF_INFO(COMP, "blob store on shared storage: '%s' (store id %s); workers that mount it "
                "read inputs and commit results there", c->blob_dir, c->store_id);
    }
    rc = s_lock_state(c, err);
    if (!rc)
        rc = rf_coord_signer_open(cfg, c->state_dir, &c->signer, err);
    if (rc)
        goto fail;
    {
        char kpath[4200];
        /* Beside the made signing keys when their folder is set (reelfarm render keeps it across
         * runs, so its outputs stay detectable), else in the state folder. */
        snprintf(kpath, sizeof(kpath), "%s/watermark.key",
                 cfg->signing_dir && *cfg->signing_dir ? cfg->signing_dir : c->state_dir);
        rc = rf_secret_key_file(kpath, c->wm_key, sizeof(c->wm_key), err);
        if (!rc)
            rc = rf_audit_open(c->state_dir, &c->audit, err);
        if (rc)
            goto fail;
    }
    char dbpath[4200];
    snprintf(dbpath, sizeof(dbpath), "%s/state.db", c->state_dir);
    rc = rf_store_open(dbpath, &c->store, err);
    if (rc)
        goto fail;
    /* Group commit: the state changes of one loop turn (assignments, results, events) share one
     * transaction and one fsync, flushed before the loop waits for I/O again. */
    rf_store_batch(c->store, true);
    if (uv_loop_init(&c->loop) != 0) {
        rc = rf_err_set(err, RF_EIO, "cannot create the event loop");
        goto fail;
    }
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        rc = rf_err_set(err, RF_EIO, "cannot create a ZeroMQ context");
        goto fail_loop;
    }
    /* Security first (DESIGN §9): with a key, the ZAP handler is bound before any CURVE socket
     * (a CURVE server with no handler would admit every key); without, only loopback. */
    if (cfg->security_key && *cfg->security_key) {
        if (!cfg->authorized_keys || !*cfg->authorized_keys) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "security.key is set but security.authorized_keys is not: without an "
                            "allow-list every key would be let in");
            goto fail_sockets;
        }
        rc = rf_zsec_server_load(&sec, cfg->security_key, err);
        if (!rc)
            rc = rf_auth_new(c->zctx, cfg->authorized_keys, &c->auth, err);
    }
    if (!rc)
        rc = rf_guard_listen_policy(cfg, sec.on, err);
    if (!rc)
        rc = s_bind(c->zctx, ZMQ_ROUTER, cfg->listen_workers, &sec, "workers", c->max_frame,
                    c->endpoints[RF_EP_WORKERS], sizeof(c->endpoints[0]), &wz, err);
    if (!rc)
        rc = s_bind(c->zctx, ZMQ_ROUTER, cfg->listen_clients, &sec, "clients", c->max_frame,
                    c->endpoints[RF_EP_CLIENTS], sizeof(c->endpoints[0]), &cz, err);
    if (!rc) {
        s_sweep_blobs(c);
        rf_blob_server_opts_t bo = {.sec = &sec,
                                    .max_blob = (uint64_t)cfg->limits.blob_bytes,
                                    .max_uploads = (int)cfg->limits.blob_uploads};
        rc = rf_blob_server_new_opts(c->zctx, cfg->listen_blobs, c->blob_dir, &bo, &c->blobs, err);
    }
    rf_zsec_clear(&sec); /* libzmq keeps its own copy of the secret per socket */
    if (rc)
        goto fail_sockets;
    snprintf(c->endpoints[RF_EP_BLOBS], sizeof(c->endpoints[0]), "%s",
             rf_blob_server_endpoint(c->blobs));
    /* Monitors first: they watch the ROUTERs, which the bridges own from the next lines on. */
    void *sockets[2] = {wz, cz};
    for (int i = 0; i < 2; i++) {
        void *pair = rf_zsec_monitor_failures(c->zctx, sockets[i]);
        if (pair && !(c->monitors[i] = rf_zsock_new(&c->loop, pair, s_on_monitor, c)))
            zmq_close(pair);
        if (!c->monitors[i])
            RF_WARN(COMP, "cannot watch handshakes on %s: failed ones go uncounted",
                    c->endpoints[i]);
    }
    c->wsock = rf_zsock_new(&c->loop, wz, s_on_worker_msg, c);
    if (!c->wsock) {
        rc = rf_err_set(err, RF_EIO, "cannot watch the worker socket");
        goto fail_sockets;
    }
    wz = NULL;
    c->csock = rf_zsock_new(&c->loop, cz, s_on_client_msg, c);
    if (!c->csock) {
        rc = rf_err_set(err, RF_EIO, "cannot watch the client socket");
        goto fail_sockets;
    }
    cz = NULL;
    if (cfg->http_listen && *cfg->http_listen) {
        rf_http_config_t hc = {.listen = cfg->http_listen, .token_file = cfg->http_token_file,
                               .web_dir = cfg->http_web_dir, .state_dir = c->state_dir};
        rc = rf_http_server_new(&hc, &c->http, err);
        if (rc)
            goto fail_sockets;
        uv_timer_init(&c->loop, &c->obs_timer);
        c->obs_timer.data = c;
    }
    uv_timer_init(&c->loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, s_on_tick, (uint64_t)c->heartbeat_ms, (uint64_t)c->heartbeat_ms);
    uv_async_init(&c->loop, &c->stop_async, s_on_stop);
    c->stop_async.data = c;
    uv_prepare_init(&c->loop, &c->flush);
    c->flush.data = c;
    uv_prepare_start(&c->flush, s_on_flush);
    rc = s_load_jobs(c, err);
    if (rc)
        RF_ERROR(COMP, "%s", err->msg); /* the daemon still serves what it could load */
    RF_INFO(COMP, "listening: workers %s, clients %s, blobs %s; state in '%s'",
            c->endpoints[RF_EP_WORKERS], c->endpoints[RF_EP_CLIENTS], c->endpoints[RF_EP_BLOBS],
            c->state_dir);
    if (c->http) {
        s_obs_publish(c);
        uv_timer_start(&c->obs_timer, s_on_obs_timer, RF_OBS_PUBLISH_MS, RF_OBS_PUBLISH_MS);
        RF_INFO(COMP, "http: dashboard, API and /metrics on %s/", rf_http_server_url(c->http));
    }
    *out = c;
    return 0;

fail_sockets:
    rf_zsock_close(c->monitors[0]);
    rf_zsock_close(c->monitors[1]);
    if (wz)
        zmq_close(wz);
    if (cz)
        zmq_close(cz);
    rf_zsock_close(c->wsock);
    rf_zsock_close(c->csock);
    c->wsock = c->csock = NULL;
    rf_blob_server_destroy(&c->blobs);
    if (c->http)
        uv_close((uv_handle_t *)&c->obs_timer, NULL);
    rf_http_server_destroy(&c->http);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    rf_auth_destroy(&c->auth);
    zmq_ctx_term(c->zctx);
fail_loop:
    uv_loop_close(&c->loop);
fail:
    rf_prov_signer_destroy(&c->signer);
    rf_zsec_clear(&sec);
    rf_store_close(&c->store);
    rf_audit_close(&c->audit);
    if (c->lock_fd >= 0)
        close(c->lock_fd);
    for (size_t i = 0; i < c->nmedia_roots; i++)
        free(c->media_roots[i]);
    free(c->media_roots);
    free(c);
    return rc;
}

const char *rf_coordinator_endpoint(const rf_coordinator_t *c, rf_coordinator_endpoint_t which)
{
    return c->endpoints[which];
}

void *rf_coordinator_zmq_context(rf_coordinator_t *c)
{
    return c->zctx;
}

int rf_coordinator_run(rf_coordinator_t *c)
{
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return c->restart ? RF_EAGAIN : 0;
}

void rf_coordinator_stop(rf_coordinator_t *c)
{
    uv_async_send(&c->stop_async);
}

void rf_coordinator_reload_keys(rf_coordinator_t *c)
{
    rf_auth_reload(c->auth);
}

void rf_coordinator_destroy(rf_coordinator_t **cp)
{
    if (!cp || !*cp)
        return;
    rf_coordinator_t *c = *cp;
    if (!c->stopping) {
        s_on_stop(&c->stop_async);
        uv_run(&c->loop, UV_RUN_DEFAULT);
    }
    rf_blob_server_destroy(&c->blobs);
    rf_http_server_destroy(&c->http);
    uv_loop_close(&c->loop);
    rf_auth_destroy(&c->auth); /* its REP is in the context: closed before the context ends */
    zmq_ctx_term(c->zctx);
    for (size_t i = 0; i < c->nmedia_roots; i++)
        free(c->media_roots[i]);
    free(c->media_roots);
    while (c->jobs) {
        c_job_t *j = c->jobs;
        c->jobs = j->next;
        for (size_t i = 0; i < j->nchunks; i++)
            free(j->chunks[i].row.failed_on), free(j->chunks[i].row.color_ref),
                free(j->chunks[i].critic);
        free(j->chunks);
        free(j->order);
        free(j->returned);
        free(j->files);
        s_job_pb_free(j);
        rf_job_spec_destroy(&j->spec);
        rf_media_info_destroy(&j->info);
        free(j->row.name), free(j->row.spec_yaml), free(j->row.spec_source);
        free(j->row.base_dir), free(j->row.output), free(j->row.message);
        free(j);
    }
    while (c->workers) {
        c_worker_t *w = c->workers;
        c->workers = w->next;
        free(w->models);
        free(w);
    }
    s_blob_reap(c, true);
    free(c->doomed);
    free(c->leases.slots);
    rf_prov_signer_destroy(&c->signer);
    rf_store_close(&c->store);
    rf_audit_close(&c->audit);
    sodium_memzero(c->wm_key, sizeof(c->wm_key));
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* after the store: the next coordinator may open state.db now */
    free(c);
    *cp = NULL;
}

int rf_coordinator_bench_job_model(rf_coordinator_t *c, const char *job_id, const char *sha_hex,
                                   rf_err_t *err)
{
    c_job_t *job = s_job_find(c, job_id);
    if (!job || !rf_sha256_hex_valid(sha_hex))
        return rf_err_set(err, RF_EINVAL, "bench job model: no job '%s' or a bad hash", job_id);
    c_file_t *grown = realloc(job->files, (job->nfiles + 1) * sizeof(*grown));
    if (!grown)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    job->files = grown;
    c_file_t f = {.pass = C_FILE_CRITIC, .model = true, .size = 1};
    snprintf(f.key, sizeof(f.key), "model");
    snprintf(f.sha, sizeof(f.sha), "%s", sha_hex);
    snprintf(f.name, sizeof(f.name), "bench.onnx");
    job->files[job->nfiles++] = f;
    job->nmodels++;
    return 0;
}

int rf_coordinator_bench_job(rf_coordinator_t *c, size_t nchunks, int frames_per_chunk, char *job_id,
                             rf_err_t *err)
{
    if (nchunks == 0 || frames_per_chunk <= 0 || nchunks * (size_t)frames_per_chunk > RF_MEDIA_MAX_FRAMES)
        return rf_err_set(err, RF_EINVAL, "bench job: bad size");
    const char *yaml = "version: 1\nname: bench\ninput: bench-input.nut\noutput: bench-output.mkv\n"
                       "encode: {codec: ffv1}\n";
    rf_job_spec_t *spec = NULL;
    int rc = rf_job_spec_load_string(yaml, strlen(yaml), "bench.yaml", c->state_dir, &spec, err);
    if (rc)
        return rc;
    rf_media_info_t *info = calloc(1, sizeof(*info));
    rf_store_chunk_t *rows = calloc(nchunks, sizeof(*rows));
    rf_store_job_t row = {0};
    if (!info || !rows) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    info->time_base = (AVRational){1, 25};
    info->frame_rate = (AVRational){25, 1};
    info->nb_frames = (int64_t)(nchunks * (size_t)frames_per_chunk);
    for (size_t i = 0; i < nchunks; i++) {
        rows[i].index = (uint32_t)i;
        rows[i].frame_start = (int64_t)i * frames_per_chunk;
        rows[i].frame_end = rows[i].frame_start + frames_per_chunk;
        rows[i].ctx_pts = rows[i].start_pts = rows[i].frame_start;
        rows[i].end_pts = rows[i].frame_end;
        memset(rows[i].input_blob, '0', RF_SHA256_HEX_LEN);
        rows[i].input_size = 1;
        snprintf(rows[i].state, sizeof(rows[i].state), "queued");
    }
    s_new_job_id(row.id, sizeof(row.id));
    row.name = strdup("bench");
    row.spec_yaml = strdup(yaml);
    row.spec_source = strdup("bench.yaml");
    row.base_dir = strdup(c->state_dir);
    snprintf(row.state, sizeof(row.state), "running");
    row.priority = 50;
    row.output = strdup(spec->output);
    row.message = strdup("");
    rc = rf_store_job_insert(c->store, &row, err);
    if (!rc)
        rc = rf_store_chunks_insert(c->store, row.id, rows, nchunks, err);
    if (rc)
        goto fail;
    c_job_t *job = s_job_add(c, &row, spec);
    if (!job) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    job->info = info;
    job->row.frames_total = info->nb_frames;
    s_chunks_adopt(job, rows, nchunks, 0);
    snprintf(job_id, 64, "%s", job->row.id);
    return 0;
fail:
    free(row.name), free(row.spec_yaml), free(row.spec_source), free(row.base_dir);
    free(row.output), free(row.message);
    free(rows);
    free(info);
    rf_job_spec_destroy(&spec);
    return rc;
}
