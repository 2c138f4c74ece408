/* store.h - the coordinator's durable state: one SQLite file in WAL mode (DESIGN §7).
 *
 * What is written here survives kill -9 at any moment: state changes run in transactions with
 * synchronous=FULL. Leases are deliberately not stored (they die with the process and are re-made
 * on restart); results are, and a chunk is marked done only after its result blob is durable and
 * verified. The schema is versioned (PRAGMA user_version) and migrated forward on open.
 *
 * The store is used from the coordinator's loop thread only; calls are short (indexed lookups and
 * single-row writes), never scans of media.
 */
#ifndef RF_STORE_H
#define RF_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_STORE_SCHEMA_VERSION 6

typedef struct rf_store rf_store_t;

#define RF_STORE_WM_TAG_LEN 16 /* hex digits of a watermark tag (a 64-bit payload) */

/* Job states: planning -> running -> stitching -> done | failed | cancelled. */
typedef struct rf_store_job {
    char id[40];
    char *name;
    char *spec_yaml;
    char *spec_source;
    char *base_dir;
    char state[16];
    int priority;
    int64_t created_ms;
    int64_t frames_total;
    char *output;
    char *message;
    bool paused;              /* no new chunks start while set */
    char owner[96];           /* "client:NAME" / "admin:NAME" of the submitting key; "" without keys */
    /* The payload of the invisible watermark the job's frames carry, 16 lowercase hex digits (key
     * id, then the job tag: docs/PROVENANCE.md), so a stripped copy leads back to the job; "" for
     * a job stored before it was recorded until the coordinator fills it in on start. */
    char wm_tag[RF_STORE_WM_TAG_LEN + 1];
} rf_store_job_t;

/* A lossless side part of a chunk's result (seam overlap frames), blob "" when none. */
typedef struct rf_store_seam {
    char blob[65];
    uint64_t size;
    uint64_t frames;
    char digest[65];                   /* hex SHA-256 over its per-frame SHA-256s */
} rf_store_seam_t;

/* Chunk states: queued | verifying (a result arrived and is being checked) | done | failed.
 * Leases live in memory only. */
typedef struct rf_store_chunk {
    uint32_t index;
    int64_t frame_start, frame_end;   /* global frame range [start, end) */
    uint32_t context_frames;
    int64_t ctx_pts, start_pts, end_pts;
    char input_blob[65];
    uint64_t input_size;
    char state[16];
    uint32_t attempts;
    char result_blob[65];
    uint64_t result_size;
    char result_digest[65];            /* hex SHA-256 over the result's per-frame SHA-256s */
    char worker[64];                   /* worker whose result was kept */
    char *failed_on;                   /* space-separated worker names that failed it */
    bool attempt_open;                 /* its latest attempt never ended: it was running when the
                                          coordinator stopped (loaded only, never stored) */
    /* Seam overlap (DESIGN §5): frames [frame_start, frame_start + head_overlap) are also
     * rendered by the previous chunk, [frame_end, frame_end + tail_overlap) by the next one. */
    uint32_t head_overlap, tail_overlap;
    int64_t tail_end_pts;              /* source PTS of frame_end + tail_overlap (INT64_MAX: end) */
    rf_store_seam_t seam_head, seam_tail; /* side parts of the recorded result */
    /* The colour references of the scenes the chunk touches (context and tail overlap included),
     * "FIRST:L,a,b,Ls,as,bs;FIRST:..." with FIRST a scene's first global frame and the Oklab
     * means and deviations of the whole scene in the source (media.h rf_color_stats_format);
     * malloc'd, "" or NULL when the job has no pass that asks for them. */
    char *color_ref;
} rf_store_chunk_t;

int rf_store_open(const char *path, rf_store_t **out, rf_err_t *err);
/* Flushes what is batched, then closes. */
void rf_store_close(rf_store_t **s);

/* Group commit. With batching on, every write joins one open transaction that rf_store_flush
 * commits (one fsync for many state changes). The coordinator flushes once per loop turn and
 * before anything that depends on durability (a reply naming a new job). Off by default. */
void rf_store_batch(rf_store_t *s, bool on);
int rf_store_flush(rf_store_t *s, rf_err_t *err);

/* True once a write or commit failed for want of space or I/O (disk full): SQLite rolled that
 * batch back, so every later write is refused (RF_EDB) and the file keeps a consistent past state,
 * as after a kill -9. The coordinator then reloads from it once space returns. */
bool rf_store_broken(const rf_store_t *s);

int rf_store_job_insert(rf_store_t *s, const rf_store_job_t *job, rf_err_t *err);
int rf_store_job_set_state(rf_store_t *s, const char *job_id, const char *state, const char *message,
                           rf_err_t *err);
int rf_store_job_set_frames(rf_store_t *s, const char *job_id, int64_t frames_total, rf_err_t *err);
/* Records a job's watermark tag (16 hex digits, stored lowercase), for jobs stored before tags
 * were; RF_EINVAL for anything else. */
int rf_store_job_set_wm_tag(rf_store_t *s, const char *job_id, const char *tag, rf_err_t *err);
/* The jobs whose watermark tag is tag (16 hex digits, either case; an indexed lookup), oldest
 * first; with owner non-NULL only that owner's (a client key sees its own jobs only). No match
 * is 0 with *n = 0; a tag that is not 16 hex digits is RF_EINVAL. Free with rf_store_jobs_free. */
int rf_store_jobs_by_wm_tag(rf_store_t *s, const char *tag, const char *owner,
                            rf_store_job_t **jobs, size_t *n, rf_err_t *err);
/* True when text is a watermark tag: exactly RF_STORE_WM_TAG_LEN hex digits. */
bool rf_store_wm_tag_valid(const char *text);

/* Inserts all chunks of a job and sets the job running, in one transaction. */
int rf_store_chunks_insert(rf_store_t *s, const char *job_id, const rf_store_chunk_t *chunks,
                           size_t n, rf_err_t *err);

/* Records a new attempt (attempts + 1) on chunk idx by worker. */
int rf_store_attempt_begin(rf_store_t *s, const char *job_id, uint32_t idx, uint32_t attempt,
                           const char *worker, rf_err_t *err);
/* Ends an attempt: outcome "done", "failed", "lost", "cancelled", with a message. */
int rf_store_attempt_end(rf_store_t *s, const char *job_id, uint32_t idx, uint32_t attempt,
                         const char *outcome, const char *message, rf_err_t *err);

int rf_store_chunk_done(rf_store_t *s, const char *job_id, uint32_t idx, const char *result_blob,
                        uint64_t result_size, const char *worker, rf_err_t *err);
/* A result arrived: remember it (state 'verifying') until it is verified or rejected. */
int rf_store_chunk_verifying(rf_store_t *s, const char *job_id, uint32_t idx, const char *result_blob,
                             uint64_t result_size, const char *digest_hex, const char *worker,
                             rf_err_t *err);
/* Records the side parts of the result just recorded (NULL or blob "": none). */
int rf_store_chunk_seams(rf_store_t *s, const char *job_id, uint32_t idx, const rf_store_seam_t *head,
                         const rf_store_seam_t *tail, rf_err_t *err);
/* The column text of a seam part ("sha size frames digest", "" for none) and back; parse returns
 * false (and an empty part) for text it does not understand. */
void rf_store_seam_format(const rf_store_seam_t *seam, char *out, size_t size);
bool rf_store_seam_parse(const char *text, rf_store_seam_t *seam);

/* The result was rejected: back to 'queued', result forgotten. */
int rf_store_chunk_requeued(rf_store_t *s, const char *job_id, uint32_t idx, rf_err_t *err);
int rf_store_chunk_failed(rf_store_t *s, const char *job_id, uint32_t idx, const char *failed_on,
                          const char *state, rf_err_t *err);

/* Whether any chunk of a job that is not finished (done/failed/cancelled) still names blob sha
 * as its input or result: a blob nobody unfinished needs can be deleted. */
int rf_store_blob_in_use(rf_store_t *s, const char *sha, bool *in_use, rf_err_t *err);

int rf_store_job_set_paused(rf_store_t *s, const char *job_id, bool paused, rf_err_t *err);

/* One stored event. */
typedef struct rf_store_event {
    int64_t id, ts_ms;
    char level[8];
    char message[1024];
} rf_store_event_t;

/* Events of a job with id > after_id, oldest first, at most max (malloc'd array). */
int rf_store_events_load(rf_store_t *s, const char *job_id, int64_t after_id, size_t max,
                         rf_store_event_t **events, size_t *n, rf_err_t *err);

/* Appends an event to the job's log (level: info|warn|error). */
int rf_store_event(rf_store_t *s, const char *job_id, const char *level, const char *message);

/* Every attempt's message of a chunk, "worker: message; ..." (malloc'd), for a failed job's reason. */
char *rf_store_attempt_reasons(rf_store_t *s, const char *job_id, uint32_t idx);

/* Loads jobs (all, or only those not finished when unfinished_only) - caller frees with
 * rf_store_jobs_free. */
int rf_store_jobs_load(rf_store_t *s, bool unfinished_only, rf_store_job_t **jobs, size_t *n,
                       rf_err_t *err);
int rf_store_job_load(rf_store_t *s, const char *job_id, rf_store_job_t **job, rf_err_t *err);
void rf_store_jobs_free(rf_store_job_t *jobs, size_t n);

int rf_store_chunks_load(rf_store_t *s, const char *job_id, rf_store_chunk_t **chunks, size_t *n,
                         rf_err_t *err);
void rf_store_chunks_free(rf_store_chunk_t *chunks, size_t n);

#endif
