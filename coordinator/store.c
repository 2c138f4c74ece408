/* store.c - SQLite state for the coordinator. See store.h for what is durable and why. */
#include "store.h"

#include <ctype.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rftime.h"

#define RF_STORE_STMT_CACHE 32

struct rf_store {
    sqlite3 *db;
    /* Prepared statements of s_run, keyed by the (static) SQL text's address: the hot writes -
     * one attempt per assignment - are prepared once, not once per call. */
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } cache[RF_STORE_STMT_CACHE];
    bool batching; /* writes join one transaction until rf_store_flush (group commit) */
    bool in_txn;   /* that transaction is open */
    /* A write or a commit failed for want of space or I/O (rf_store_broken): SQLite rolled the
     * batch back, so the state in memory is ahead of the file. Later writes are refused, so the
     * file stays a consistent past state (as after a kill -9) until the coordinator reloads it. */
    bool broken;
    char broken_why[256];
};

/* Forward-only migrations: entry i takes the schema from version i to i + 1. */
static const char *const s_migrations[] = {
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL, spec_yaml TEXT NOT NULL, spec_source TEXT NOT NULL,"
    "  base_dir TEXT NOT NULL, state TEXT NOT NULL, priority INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, frames_total INTEGER NOT NULL DEFAULT 0,"
    "  output TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE chunks ("
    "  job_id TEXT NOT NULL REFERENCES jobs(id), idx INTEGER NOT NULL,"
    "  frame_start INTEGER NOT NULL, frame_end INTEGER NOT NULL, context_frames INTEGER NOT NULL,"
    "  ctx_pts INTEGER NOT NULL, start_pts INTEGER NOT NULL, end_pts INTEGER NOT NULL,"
    "  input_blob TEXT NOT NULL, input_size INTEGER NOT NULL, state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0, result_blob TEXT NOT NULL DEFAULT '',"
    "  result_size INTEGER NOT NULL DEFAULT 0, worker TEXT NOT NULL DEFAULT '',"
    "  failed_on TEXT NOT NULL DEFAULT '', PRIMARY KEY (job_id, idx));"
    "CREATE TABLE attempts ("
    "  job_id TEXT NOT NULL, idx INTEGER NOT NULL, attempt INTEGER NOT NULL, worker TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL, ended_ms INTEGER, outcome TEXT, message TEXT,"
    "  PRIMARY KEY (job_id, idx, attempt));"
    "CREATE TABLE workers ("
    "  name TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL,"
    "  caps TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, ts_ms INTEGER NOT NULL,"
    "  level TEXT NOT NULL, message TEXT NOT NULL);"
    "CREATE INDEX events_job ON events(job_id, id);"
    "CREATE INDEX jobs_state ON jobs(state);",
    /* 2: results are recorded when they arrive, so a restart re-verifies instead of re-rendering. */
    "ALTER TABLE chunks ADD COLUMN result_digest TEXT NOT NULL DEFAULT '';",
    /* 3: pausing a job survives a restart. */
    "ALTER TABLE jobs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;",
    /* 4: seam overlaps (planned per chunk, their side parts recorded with the result) and each
     * chunk's scene colour reference. */
    "ALTER TABLE chunks ADD COLUMN head_overlap INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunks ADD COLUMN tail_overlap INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunks ADD COLUMN tail_end_pts INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE chunks ADD COLUMN seam_head TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE chunks ADD COLUMN seam_tail TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE chunks ADD COLUMN color_ref TEXT NOT NULL DEFAULT '';",
    /* 5: who submitted a job ("client:NAME" from its CURVE key, "" without keys), so a client key
     * sees and controls only its own jobs (docs/SECURITY.md). */
    "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';",
    /* 6: each job's watermark tag, so a copy stripped of its metadata leads back to its job
     * (docs/PROVENANCE.md); older jobs get theirs from the coordinator on its next start. */
    "ALTER TABLE jobs ADD COLUMN wm_tag TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX jobs_wm_tag ON jobs(wm_tag);",
};

static int s_fail(rf_store_t *s, rf_err_t *err, const char *what)
{
    return rf_err_set(err, RF_EDB, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static void s_check_break(rf_store_t *s, int rc, const char *what);

static int s_exec(rf_store_t *s, const char *sql, rf_err_t *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rf_err_set(err, RF_EDB, "state database: %s", msg ? msg : "error");
        sqlite3_free(msg);
        s_check_break(s, rc, sql);
        return RF_EDB;
    }
    return 0;
}

static void s_break(rf_store_t *s, const char *what)
{
    if (s->broken)
        return;
    s->broken = true;
    snprintf(s->broken_why, sizeof(s->broken_why), "%s: %s", what, sqlite3_errmsg(s->db));
    RF_ERROR("store", "state database: %s; no more writes until the state is reloaded",
             s->broken_why);
    if (s->in_txn || !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL); /* may already be rolled back */
    s->in_txn = false;
}

/* SQLITE_FULL and I/O errors can roll the whole transaction back (sqlite.org/lang_transaction). */
static void s_check_break(rf_store_t *s, int rc, const char *what)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL || primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN ||
        primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ||
        (s->in_txn && sqlite3_get_autocommit(s->db)))
        s_break(s, what);
}

bool rf_store_broken(const rf_store_t *s)
{
    return s->broken;
}

/* With batching on, the first write after a flush opens the transaction the next writes join. */
static int s_batch_open(rf_store_t *s, rf_err_t *err)
{
    if (s->broken)
        return rf_err_set(err, RF_EDB, "state database: not written since a write failed (%s)",
                          s->broken_why);
    if (!s->batching || s->in_txn)
        return 0;
    int rc = s_exec(s, "BEGIN IMMEDIATE", err);
    if (!rc)
        s->in_txn = true;
    return rc;
}

/* A group of writes that must land together: a savepoint, inside the batch when there is one. */
static int s_group_begin(rf_store_t *s, rf_err_t *err)
{
    int rc = s_batch_open(s, err);
    return rc ? rc : s_exec(s, "SAVEPOINT rf_group", err);
}

static int s_group_end(rf_store_t *s, int rc, rf_err_t *err)
{
    if (rc) {
        s_exec(s, "ROLLBACK TO rf_group", NULL);
        s_exec(s, "RELEASE rf_group", NULL);
        return rc;
    }
    return s_exec(s, "RELEASE rf_group", err);
}

void rf_store_batch(rf_store_t *s, bool on)
{
    if (!on)
        rf_store_flush(s, NULL);
    s->batching = on;
}

int rf_store_flush(rf_store_t *s, rf_err_t *err)
{
    if (!s->in_txn)
        return 0; /* nothing batched (and nothing is, while broken) */
    int rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        s_break(s, "commit");
        return rf_err_set(err, RF_EDB, "state database: %s", s->broken_why);
    }
    s->in_txn = false;
    return 0;
}

static int s_migrate(rf_store_t *s, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return s_fail(s, err, "reading schema version");
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int latest = (int)(sizeof(s_migrations) / sizeof(s_migrations[0]));
    if (version > latest)
        return rf_err_set(err, RF_EDB,
                          "state database has schema version %d, newer than this build's %d; "
                          "use a newer reelfarm-coordinator",
                          version, latest);
    for (int v = version; v < latest; v++) {
        char sql[64];
        int rc = s_exec(s, "BEGIN IMMEDIATE", err);
        if (rc)
            return rc;
        rc = s_exec(s, s_migrations[v], err);
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if (!rc)
            rc = s_exec(s, sql, err);
        if (rc) {
            s_exec(s, "ROLLBACK", NULL);
            return rc;
        }
        rc = s_exec(s, "COMMIT", err);
        if (rc)
            return rc;
    }
    return 0;
}

int rf_store_open(const char *path, rf_store_t **out, rf_err_t *err)
{
    rf_store_t *s = calloc(1, sizeof(*s));
    if (!s)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = rf_err_set(err, RF_EDB, "'%s': cannot open state database: %s", path,
                        s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL: readers never block the writer; FULL: a committed state change survives power loss. */
    rc = s_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err);
    if (!rc)
        rc = s_migrate(s, err);
    if (rc)
        rf_err_prefix(err, "'%s': ", path);
out:
    if (rc) {
        rf_store_close(&s);
        return rc;
    }
    *out = s;
    return 0;
}

void rf_store_close(rf_store_t **sp)
{
    if (!sp || !*sp)
        return;
    rf_store_flush(*sp, NULL);
    for (size_t i = 0; i < RF_STORE_STMT_CACHE; i++)
        sqlite3_finalize((*sp)->cache[i].st);
    sqlite3_close((*sp)->db);
    free(*sp);
    *sp = NULL;
}

/* Binds arguments described by types: 't' text, 'i' int64, 'n' NULL. */
static int s_bind(sqlite3_stmt *st, const char *types, va_list ap)
{
    for (int i = 0; types[i]; i++) {
        int ok = SQLITE_OK;
        if (types[i] == 't') {
            const char *v = va_arg(ap, const char *);
            ok = sqlite3_bind_text(st, i + 1, v ? v : "", -1, SQLITE_TRANSIENT);
        } else if (types[i] == 'i') {
            ok = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
        } else {
            ok = sqlite3_bind_null(st, i + 1);
        }
        if (ok != SQLITE_OK)
            return -1;
    }
    return 0;
}

/* The cached statement for sql (a string literal), prepared on first use. */
static sqlite3_stmt *s_cached(rf_store_t *s, const char *sql)
{
    size_t free_slot = RF_STORE_STMT_CACHE;
    for (size_t i = 0; i < RF_STORE_STMT_CACHE; i++) {
        if (s->cache[i].sql == sql)
            return s->cache[i].st;
        if (!s->cache[i].sql && free_slot == RF_STORE_STMT_CACHE)
            free_slot = i;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
        return NULL;
    if (free_slot < RF_STORE_STMT_CACHE) {
        s->cache[free_slot].sql = sql;
        s->cache[free_slot].st = st;
    }
    return st;
}

/* Runs one statement that returns no rows. sql must be a string literal (it keys the cache). */
static int s_run(rf_store_t *s, rf_err_t *err, const char *what, const char *sql, const char *types,
                 ...)
{
    int brc = s_batch_open(s, err);
    if (brc)
        return brc;
    sqlite3_stmt *st = s_cached(s, sql);
    if (!st)
        return s_fail(s, err, what);
    bool cached = false;
    for (size_t i = 0; i < RF_STORE_STMT_CACHE && !cached; i++)
        cached = s->cache[i].st == st;
    va_list ap;
    va_start(ap, types);
    int bound = s_bind(st, types, ap);
    va_end(ap);
    int rc = bound == 0 ? sqlite3_step(st) : SQLITE_ERROR;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!cached)
        sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        int frc = s_fail(s, err, what);
        s_check_break(s, rc, what);
        return frc;
    }
    return 0;
}

static char *s_col_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return strdup(v ? (const char *)v : "");
}

static void s_col_copy(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    snprintf(dst, size, "%s", v ? (const char *)v : "");
}

int rf_store_job_insert(rf_store_t *s, const rf_store_job_t *j, rf_err_t *err)
{
    int64_t now = rf_wall_ms();
    return s_run(s, err, "inserting job",
                 "INSERT INTO jobs(id, name, spec_yaml, spec_source, base_dir, state, priority,"
                 " created_ms, updated_ms, output, message, owner, wm_tag)"
                 " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,lower(?))",
                 "ttttttiiitttt", j->id, j->name, j->spec_yaml, j->spec_source, j->base_dir,
                 j->state, (int64_t)j->priority, now, now, j->output, j->message, j->owner,
                 j->wm_tag);
}

bool rf_store_wm_tag_valid(const char *text)
{
    size_t n = 0;
    while (text && n <= RF_STORE_WM_TAG_LEN && isxdigit((unsigned char)text[n]))
        n++;
    return text && n == RF_STORE_WM_TAG_LEN && text[n] == '\0';
}

int rf_store_job_set_wm_tag(rf_store_t *s, const char *job_id, const char *tag, rf_err_t *err)
{
    if (!rf_store_wm_tag_valid(tag))
        return rf_err_set(err, RF_EINVAL, "job %s: watermark tag '%.40s' is not %d hex digits",
                          job_id, tag ? tag : "", RF_STORE_WM_TAG_LEN);
    return s_run(s, err, "recording a watermark tag",
                 "UPDATE jobs SET wm_tag = lower(?) WHERE id = ?", "tt", tag, job_id);
}

int rf_store_job_set_state(rf_store_t *s, const char *job_id, const char *state, const char *message,
                           rf_err_t *err)
{
    return s_run(s, err, "updating job state",
                 "UPDATE jobs SET state = ?, message = ?, updated_ms = ? WHERE id = ?", "ttit", state,
                 message ? message : "", rf_wall_ms(), job_id);
}

int rf_store_job_set_frames(rf_store_t *s, const char *job_id, int64_t frames_total, rf_err_t *err)
{
    return s_run(s, err, "updating job", "UPDATE jobs SET frames_total = ? WHERE id = ?", "it",
                 frames_total, job_id);
}

int rf_store_chunks_insert(rf_store_t *s, const char *job_id, const rf_store_chunk_t *c, size_t n,
                           rf_err_t *err)
{
    int rc = s_group_begin(s, err);
    if (rc)
        return rc;
    /* A re-plan after a crash during planning starts from nothing: no chunk was leased yet. */
    rc = s_run(s, err, "clearing chunks", "DELETE FROM chunks WHERE job_id = ?", "t", job_id);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = s_run(s, err, "inserting chunk",
                   "INSERT INTO chunks(job_id, idx, frame_start, frame_end, context_frames, ctx_pts,"
                   " start_pts, end_pts, input_blob, input_size, state, head_overlap, tail_overlap,"
                   " tail_end_pts, color_ref)"
                   " VALUES (?,?,?,?,?,?,?,?,?,?,'queued',?,?,?,?)",
                   "tiiiiiiitiiiit", job_id, (int64_t)c[i].index, c[i].frame_start, c[i].frame_end,
                   (int64_t)c[i].context_frames, c[i].ctx_pts, c[i].start_pts, c[i].end_pts,
                   c[i].input_blob, (int64_t)c[i].input_size, (int64_t)c[i].head_overlap,
                   (int64_t)c[i].tail_overlap, c[i].tail_end_pts,
                   c[i].color_ref ? c[i].color_ref : "");
    }
    if (!rc)
        rc = s_run(s, err, "updating job", "UPDATE jobs SET state = 'running', updated_ms = ? WHERE id = ?",
                   "it", rf_wall_ms(), job_id);
    return s_group_end(s, rc, err);
}

int rf_store_attempt_begin(rf_store_t *s, const char *job_id, uint32_t idx, uint32_t attempt,
                           const char *worker, rf_err_t *err)
{
    int rc = s_group_begin(s, err);
    if (rc)
        return rc;
    /* One row per assignment, the hottest write there is: chunks.attempts is not updated here
     * (rf_store_chunks_load takes the highest attempt number from this table). */
    rc = s_run(s, err, "recording attempt",
               "INSERT OR REPLACE INTO attempts(job_id, idx, attempt, worker, started_ms)"
               " VALUES (?,?,?,?,?)",
               "tiiti", job_id, (int64_t)idx, (int64_t)attempt, worker, rf_wall_ms());
    return s_group_end(s, rc, err);
}

int rf_store_attempt_end(rf_store_t *s, const char *job_id, uint32_t idx, uint32_t attempt,
                         const char *outcome, const char *message, rf_err_t *err)
{
    return s_run(s, err, "ending attempt",
                 "UPDATE attempts SET ended_ms = ?, outcome = ?, message = ?"
                 " WHERE job_id = ? AND idx = ? AND attempt = ?",
                 "itttii", rf_wall_ms(), outcome, message ? message : "", job_id, (int64_t)idx,
                 (int64_t)attempt);
}

int rf_store_chunk_done(rf_store_t *s, const char *job_id, uint32_t idx, const char *result_blob,
                        uint64_t result_size, const char *worker, rf_err_t *err)
{
    return s_run(s, err, "marking chunk done",
                 "UPDATE chunks SET state = 'done', result_blob = ?, result_size = ?, worker = ?"
                 " WHERE job_id = ? AND idx = ?",
                 "titti", result_blob, (int64_t)result_size, worker, job_id, (int64_t)idx);
}

int rf_store_chunk_verifying(rf_store_t *s, const char *job_id, uint32_t idx, const char *result_blob,
                             uint64_t result_size, const char *digest_hex, const char *worker,
                             rf_err_t *err)
{
    return s_run(s, err, "recording a result",
                 "UPDATE chunks SET state = 'verifying', result_blob = ?, result_size = ?,"
                 " result_digest = ?, worker = ? WHERE job_id = ? AND idx = ?",
                 "tittti", result_blob, (int64_t)result_size, digest_hex, worker, job_id, (int64_t)idx);
}

void rf_store_seam_format(const rf_store_seam_t *seam, char *out, size_t size)
{
    if (!seam || !*seam->blob)
        snprintf(out, size, "%s", "");
    else
        snprintf(out, size, "%s %" PRIu64 " %" PRIu64 " %s", seam->blob, seam->size, seam->frames,
                 seam->digest);
}

bool rf_store_seam_parse(const char *text, rf_store_seam_t *seam)
{
    memset(seam, 0, sizeof(*seam));
    if (!text || !*text)
        return true;
    char blob[65], digest[65];
    unsigned long long size, frames;
    if (sscanf(text, "%64s %llu %llu %64s", blob, &size, &frames, digest) != 4) {
        return false;
    }
    snprintf(seam->blob, sizeof(seam->blob), "%s", blob);
    snprintf(seam->digest, sizeof(seam->digest), "%s", digest);
    seam->size = size;
    seam->frames = frames;
    return true;
}

int rf_store_chunk_seams(rf_store_t *s, const char *job_id, uint32_t idx, const rf_store_seam_t *head,
                         const rf_store_seam_t *tail, rf_err_t *err)
{
    char h[200], t[200];
    rf_store_seam_format(head, h, sizeof(h));
    rf_store_seam_format(tail, t, sizeof(t));
    return s_run(s, err, "recording seam parts",
                 "UPDATE chunks SET seam_head = ?, seam_tail = ? WHERE job_id = ? AND idx = ?", "ttti",
                 h, t, job_id, (int64_t)idx);
}

int rf_store_chunk_requeued(rf_store_t *s, const char *job_id, uint32_t idx, rf_err_t *err)
{
    return s_run(s, err, "requeueing a chunk",
                 "UPDATE chunks SET state = 'queued', result_blob = '', result_size = 0,"
                 " result_digest = '', worker = '', seam_head = '', seam_tail = ''"
                 " WHERE job_id = ? AND idx = ?",
                 "ti", job_id, (int64_t)idx);
}

int rf_store_chunk_failed(rf_store_t *s, const char *job_id, uint32_t idx, const char *failed_on,
                          const char *state, rf_err_t *err)
{
    return s_run(s, err, "recording chunk failure",
                 "UPDATE chunks SET failed_on = ?, state = ? WHERE job_id = ? AND idx = ?", "ttti",
                 failed_on, state, job_id, (int64_t)idx);
}

int rf_store_blob_in_use(rf_store_t *s, const char *sha, bool *in_use, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT 1 FROM chunks c JOIN jobs j ON j.id = c.job_id"
                           " WHERE j.state NOT IN ('done', 'failed', 'cancelled')"
                           " AND (c.input_blob = ?1 OR c.result_blob = ?1"
                           " OR substr(c.seam_head, 1, 64) = ?1 OR substr(c.seam_tail, 1, 64) = ?1)"
                           " LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return s_fail(s, err, "checking blob use");
    sqlite3_bind_text(st, 1, sha, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return s_fail(s, err, "checking blob use");
    *in_use = rc == SQLITE_ROW;
    return 0;
}

int rf_store_job_set_paused(rf_store_t *s, const char *job_id, bool paused, rf_err_t *err)
{
    return s_run(s, err, "pausing job", "UPDATE jobs SET paused = ?, updated_ms = ? WHERE id = ?", "iit",
                 (int64_t)paused, rf_wall_ms(), job_id);
}

int rf_store_events_load(rf_store_t *s, const char *job_id, int64_t after_id, size_t max,
                         rf_store_event_t **events, size_t *n, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT id, ts_ms, level, message FROM events WHERE job_id = ? AND id > ?"
                           " ORDER BY id LIMIT ?",
                           -1, &st, NULL) != SQLITE_OK)
        return s_fail(s, err, "loading events");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, (int64_t)max);
    rf_store_event_t *list = calloc(max ? max : 1, sizeof(*list));
    size_t count = 0;
    if (!list) {
        sqlite3_finalize(st);
        return rf_err_set(err, RF_ENOMEM, "out of memory loading events");
    }
    while (count < max && sqlite3_step(st) == SQLITE_ROW) {
        list[count].id = sqlite3_column_int64(st, 0);
        list[count].ts_ms = sqlite3_column_int64(st, 1);
        s_col_copy(st, 2, list[count].level, sizeof(list[count].level));
        s_col_copy(st, 3, list[count].message, sizeof(list[count].message));
        count++;
    }
    sqlite3_finalize(st);
    *events = list;
    *n = count;
    return 0;
}

int rf_store_event(rf_store_t *s, const char *job_id, const char *level, const char *message)
{
    int rc = s_run(s, NULL, "event", "INSERT INTO events(job_id, ts_ms, level, message) VALUES (?,?,?,?)",
                   "titt", job_id, rf_wall_ms(), level, message);
    if (rc)
        RF_WARN("store", "could not record event for job %s: %s", job_id, sqlite3_errmsg(s->db));
    return rc;
}

char *rf_store_attempt_reasons(rf_store_t *s, const char *job_id, uint32_t idx)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT attempt, worker, COALESCE(outcome, 'running'), COALESCE(message, '')"
                           " FROM attempts WHERE job_id = ? AND idx = ? ORDER BY attempt",
                           -1, &st, NULL) != SQLITE_OK)
        return strdup("");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, idx);
    size_t cap = 1024, len = 0;
    char *out = calloc(1, cap);
    while (out && sqlite3_step(st) == SQLITE_ROW) {
        char line[1200];
        int n = snprintf(line, sizeof(line), "%sattempt %d on %s: %s%s%s", len ? "; " : "",
                         sqlite3_column_int(st, 0), sqlite3_column_text(st, 1),
                         sqlite3_column_text(st, 2), *sqlite3_column_text(st, 3) ? ": " : "",
                         sqlite3_column_text(st, 3));
        if (n < 0)
            break;
        if ((size_t)n >= sizeof(line))
            n = sizeof(line) - 1;
        if (len + (size_t)n + 1 > cap) {
            char *grown = realloc(out, (cap = (len + (size_t)n + 1) * 2));
            if (!grown)
                break;
            out = grown;
        }
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    sqlite3_finalize(st);
    return out ? out : strdup("");
}

static const char *s_job_cols =
    "id, name, spec_yaml, spec_source, base_dir, state, priority, created_ms,"
    " frames_total, output, message, paused, owner, wm_tag";

static void s_job_row(sqlite3_stmt *st, rf_store_job_t *j)
{
    s_col_copy(st, 0, j->id, sizeof(j->id));
    j->name = s_col_dup(st, 1);
    j->spec_yaml = s_col_dup(st, 2);
    j->spec_source = s_col_dup(st, 3);
    j->base_dir = s_col_dup(st, 4);
    s_col_copy(st, 5, j->state, sizeof(j->state));
    j->priority = sqlite3_column_int(st, 6);
    j->created_ms = sqlite3_column_int64(st, 7);
    j->frames_total = sqlite3_column_int64(st, 8);
    j->output = s_col_dup(st, 9);
    j->message = s_col_dup(st, 10);
    j->paused = sqlite3_column_int(st, 11) != 0;
    s_col_copy(st, 12, j->owner, sizeof(j->owner));
    s_col_copy(st, 13, j->wm_tag, sizeof(j->wm_tag));
}

static int s_jobs_query(rf_store_t *s, const char *where, const char *arg, const char *arg2,
                        rf_store_job_t **jobs, size_t *n, rf_err_t *err)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM jobs %s ORDER BY created_ms, id", s_job_cols, where);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return s_fail(s, err, "loading jobs");
    if (arg)
        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
    if (arg2)
        sqlite3_bind_text(st, 2, arg2, -1, SQLITE_TRANSIENT);
    size_t cap = 0, count = 0;
    rf_store_job_t *list = NULL;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            rf_store_job_t *grown = realloc(list, ncap * sizeof(*list));
            if (!grown) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory loading jobs");
                break;
            }
            list = grown;
            cap = ncap;
        }
        memset(&list[count], 0, sizeof(list[count]));
        s_job_row(st, &list[count++]);
    }
    if (!rc && step != SQLITE_DONE)
        rc = s_fail(s, err, "loading jobs");
    sqlite3_finalize(st);
    if (rc) {
        rf_store_jobs_free(list, count);
        return rc;
    }
    *jobs = list;
    *n = count;
    return 0;
}

int rf_store_jobs_load(rf_store_t *s, bool unfinished_only, rf_store_job_t **jobs, size_t *n,
                       rf_err_t *err)
{
    return s_jobs_query(s,
                        unfinished_only ? "WHERE state NOT IN ('done', 'failed', 'cancelled')" : "",
                        NULL, NULL, jobs, n, err);
}

int rf_store_job_load(rf_store_t *s, const char *job_id, rf_store_job_t **job, rf_err_t *err)
{
    size_t n = 0;
    int rc = s_jobs_query(s, "WHERE id = ?", job_id, NULL, job, &n, err);
    if (rc)
        return rc;
    if (n == 0) {
        rf_store_jobs_free(*job, 0);
        *job = NULL;
        return rf_err_set(err, RF_ENOENT, "no job '%s'", job_id);
    }
    return 0;
}

int rf_store_jobs_by_wm_tag(rf_store_t *s, const char *tag, const char *owner,
                            rf_store_job_t **jobs, size_t *n, rf_err_t *err)
{
    *jobs = NULL;
    *n = 0;
    if (!rf_store_wm_tag_valid(tag))
        return rf_err_set(err, RF_EINVAL, "watermark tag '%.40s' is not %d hex digits",
                          tag ? tag : "", RF_STORE_WM_TAG_LEN);
    char lower[RF_STORE_WM_TAG_LEN + 1];
    for (size_t i = 0; i <= RF_STORE_WM_TAG_LEN; i++)
        lower[i] = (char)tolower((unsigned char)tag[i]);
    return s_jobs_query(s, owner ? "WHERE wm_tag = ? AND owner = ?" : "WHERE wm_tag = ?", lower,
                        owner, jobs, n, err);
}

void rf_store_jobs_free(rf_store_job_t *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(jobs[i].name);
        free(jobs[i].spec_yaml);
        free(jobs[i].spec_source);
        free(jobs[i].base_dir);
        free(jobs[i].output);
        free(jobs[i].message);
    }
    free(jobs);
}

int rf_store_chunks_load(rf_store_t *s, const char *job_id, rf_store_chunk_t **chunks, size_t *n,
                         rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT idx, frame_start, frame_end, context_frames, ctx_pts, start_pts,"
                           " end_pts, input_blob, input_size, state, COALESCE(m.top, attempts),"
                           " result_blob, result_size, worker, failed_on, result_digest,"
                           " EXISTS(SELECT 1 FROM attempts a WHERE a.job_id = chunks.job_id"
                           " AND a.idx = chunks.idx AND a.attempt = COALESCE(m.top, chunks.attempts)"
                           " AND a.ended_ms IS NULL),"
                           " head_overlap, tail_overlap, tail_end_pts, seam_head, seam_tail, color_ref"
                           " FROM chunks LEFT JOIN (SELECT idx AS top_idx, MAX(attempt) AS top"
                           " FROM attempts WHERE job_id = ?1 GROUP BY idx) m ON m.top_idx = chunks.idx"
                           " WHERE job_id = ?1 ORDER BY idx",
                           -1, &st, NULL) != SQLITE_OK)
        return s_fail(s, err, "loading chunks");
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_TRANSIENT);
    size_t cap = 0, count = 0;
    rf_store_chunk_t *list = NULL;
    int rc = 0, step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            rf_store_chunk_t *grown = realloc(list, ncap * sizeof(*list));
            if (!grown) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory loading chunks");
                break;
            }
            list = grown;
            cap = ncap;
        }
        rf_store_chunk_t *c = &list[count++];
        memset(c, 0, sizeof(*c));
        c->index = (uint32_t)sqlite3_column_int64(st, 0);
        c->frame_start = sqlite3_column_int64(st, 1);
        c->frame_end = sqlite3_column_int64(st, 2);
        c->context_frames = (uint32_t)sqlite3_column_int64(st, 3);
        c->ctx_pts = sqlite3_column_int64(st, 4);
        c->start_pts = sqlite3_column_int64(st, 5);
        c->end_pts = sqlite3_column_int64(st, 6);
        s_col_copy(st, 7, c->input_blob, sizeof(c->input_blob));
        c->input_size = (uint64_t)sqlite3_column_int64(st, 8);
        s_col_copy(st, 9, c->state, sizeof(c->state));
        c->attempts = (uint32_t)sqlite3_column_int64(st, 10);
        s_col_copy(st, 11, c->result_blob, sizeof(c->result_blob));
        c->result_size = (uint64_t)sqlite3_column_int64(st, 12);
        s_col_copy(st, 13, c->worker, sizeof(c->worker));
        c->failed_on = s_col_dup(st, 14);
        s_col_copy(st, 15, c->result_digest, sizeof(c->result_digest));
        c->attempt_open = sqlite3_column_int(st, 16) != 0;
        c->head_overlap = (uint32_t)sqlite3_column_int64(st, 17);
        c->tail_overlap = (uint32_t)sqlite3_column_int64(st, 18);
        c->tail_end_pts = sqlite3_column_int64(st, 19);
        rf_store_seam_parse((const char *)sqlite3_column_text(st, 20), &c->seam_head);
        rf_store_seam_parse((const char *)sqlite3_column_text(st, 21), &c->seam_tail);
        c->color_ref = s_col_dup(st, 22);
    }
    if (!rc && step != SQLITE_DONE)
        rc = s_fail(s, err, "loading chunks");
    sqlite3_finalize(st);
    if (rc) {
        rf_store_chunks_free(list, count);
        return rc;
    }
    *chunks = list;
    *n = count;
    return 0;
}

void rf_store_chunks_free(rf_store_chunk_t *chunks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(chunks[i].failed_on);
        free(chunks[i].color_ref);
    }
    free(chunks);
}
