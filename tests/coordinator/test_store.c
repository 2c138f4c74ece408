/* test_store.c - the coordinator's SQLite state (coordinator/store.h): schema version and WAL on
 * open, idempotent reopen, refusal of a newer schema, round trips of jobs, chunks and attempts,
 * and that what the API wrote is there after close and reopen (API durability, not power loss).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SHA_R "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

typedef struct t_ctx {
    char dir[256];
    char db[320];
} t_ctx_t;

static int t_setup(void **state)
{
    t_ctx_t *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof(c->dir), "%s/rf-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->dir)) {
        free(c);
        return -1;
    }
    snprintf(c->db, sizeof(c->db), "%s/state.db", c->dir);
    *state = c;
    return 0;
}

static int t_teardown(void **state)
{
    t_ctx_t *c = *state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->dir);
    int rc = system(cmd);
    free(c);
    return rc == 0 ? 0 : -1;
}

/* Runs a one-value query on path with plain sqlite3 and returns the text of the first column. */
static void t_query(const char *path, const char *sql, char *out, size_t size)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *v = sqlite3_column_text(st, 0);
    snprintf(out, size, "%s", v ? (const char *)v : "");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void t_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static rf_store_t *t_open(const char *path)
{
    rf_store_t *s = NULL;
    rf_err_t err = {0};
    if (rf_store_open(path, &s, &err) != 0)
        fail_msg("rf_store_open: %s", err.msg);
    assert_non_null(s);
    return s;
}

static void t_job(rf_store_job_t *j, const char *id, const char *state)
{
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->name = (char *)"scene-12";
    j->spec_yaml = (char *)"version: 1\ninput: in.mp4\n";
    j->spec_source = (char *)"job.yaml";
    j->base_dir = (char *)"/jobs/scene-12";
    snprintf(j->state, sizeof(j->state), "%s", state);
    j->priority = 70;
    j->output = (char *)"/out/scene-12.mkv";
    j->message = (char *)"";
}

static void t_chunks(rf_store_chunk_t c[3])
{
    memset(c, 0, 3 * sizeof(*c));
    for (uint32_t i = 0; i < 3; i++) {
        c[i].index = i;
        c[i].frame_start = 100 * i;
        c[i].frame_end = 100 * (i + 1);
        c[i].context_frames = i ? 4 : 0;
        c[i].ctx_pts = 512 * (100 * (int64_t)i - c[i].context_frames);
        c[i].start_pts = 512 * 100 * (int64_t)i;
        c[i].end_pts = i == 2 ? INT64_MAX : 512 * 100 * (int64_t)(i + 1);
        snprintf(c[i].input_blob, sizeof(c[i].input_blob), "%s", i % 2 ? SHA_B : SHA_A);
        c[i].input_size = 1000000 + i;
        c[i].head_overlap = i == 2 ? 5 : 0; /* a forced boundary before chunk 2 */
        c[i].tail_overlap = i == 1 ? 5 : 0;
        c[i].tail_end_pts = i == 1 ? 512 * 205 : c[i].end_pts;
        static const char *const refs[3] = {"0:0.5,0.01,-0.02,0.1,0.05,0.04", "",
                                            "180:0.7,0,0,0.2,0.01,0.01;240:0.3,0,0,0.1,0,0"};
        c[i].color_ref = (char *)refs[i];
    }
}

/* ---- schema --------------------------------------------------------------------------------- */

static void test_open_creates_latest_schema_in_wal(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    char v[64];
    /* checked from a second connection while the store is open, and again after close */
    t_query(c->db, "PRAGMA journal_mode", v, sizeof(v));
    assert_string_equal(v, "wal");
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_int_equal(atoi(v), RF_STORE_SCHEMA_VERSION);
    rf_store_close(&s);
    assert_null(s);
    rf_store_close(&s); /* idempotent */
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_int_equal(atoi(v), RF_STORE_SCHEMA_VERSION);
    t_query(c->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN"
                   " ('jobs', 'chunks', 'attempts', 'workers', 'events')",
            v, sizeof(v));
    assert_string_equal(v, "5");
}

static void test_reopen_is_idempotent(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-1", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_close(&s);
    for (int i = 0; i < 3; i++) {
        s = t_open(c->db); /* no migration re-runs (it would fail: CREATE TABLE jobs exists) */
        rf_store_job_t *jobs = NULL;
        size_t n = 0;
        assert_int_equal(rf_store_jobs_load(s, false, &jobs, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(jobs[0].id, "job-1");
        rf_store_jobs_free(jobs, n);
        rf_store_close(&s);
    }
    char v[64];
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_int_equal(atoi(v), RF_STORE_SCHEMA_VERSION);
}

/* A version-1 file (before results were recorded on arrival) is migrated forward on open, its
 * data kept. */
static void test_migrates_version_1(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-old", "running");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_close(&s);
    t_exec(c->db, "ALTER TABLE chunks DROP COLUMN result_digest");
    t_exec(c->db, "ALTER TABLE jobs DROP COLUMN paused");
    t_exec(c->db, "ALTER TABLE jobs DROP COLUMN owner");
    t_exec(c->db, "DROP INDEX jobs_wm_tag");
    t_exec(c->db, "ALTER TABLE jobs DROP COLUMN wm_tag");
    const char *v4[] = {"head_overlap", "tail_overlap", "tail_end_pts", "seam_head", "seam_tail",
                        "color_ref"};
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "ALTER TABLE chunks DROP COLUMN %s", v4[i]);
        t_exec(c->db, sql);
    }
    t_exec(c->db, "PRAGMA user_version = 1");
    s = t_open(c->db);
    char v[64];
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_int_equal(atoi(v), RF_STORE_SCHEMA_VERSION);
    t_query(c->db, "SELECT count(*) FROM pragma_table_info('chunks') WHERE name = 'result_digest'", v,
            sizeof(v));
    assert_string_equal(v, "1");
    t_query(c->db, "SELECT count(*) FROM pragma_table_info('chunks') WHERE name = 'seam_tail'", v,
            sizeof(v));
    assert_string_equal(v, "1");
    t_query(c->db, "SELECT count(*) FROM pragma_table_info('jobs') WHERE name = 'owner'", v, sizeof(v));
    assert_string_equal(v, "1");
    rf_store_job_t *jobs = NULL;
    size_t n = 0;
    assert_int_equal(rf_store_jobs_load(s, false, &jobs, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(jobs[0].id, "job-old");
    rf_store_jobs_free(jobs, n);
    rf_store_close(&s);
}

static void test_newer_schema_is_refused(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_close(&s);
    t_exec(c->db, "PRAGMA user_version = 99");
    rf_err_t err = {0};
    assert_int_equal(rf_store_open(c->db, &s, &err), RF_EDB);
    assert_null(s);
    assert_int_equal(err.code, RF_EDB);
    assert_non_null(strstr(err.msg, c->db));
    assert_non_null(strstr(err.msg, "schema version 99"));
    assert_non_null(strstr(err.msg, "newer"));
    assert_non_null(strstr(err.msg, "use a newer reelfarm-coordinator"));
    /* the refusal changed nothing */
    char v[64];
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_string_equal(v, "99");
}

static void test_open_unwritable_path_names_it(void **state)
{
    t_ctx_t *c = *state;
    char path[400];
    snprintf(path, sizeof(path), "%s/no-such-folder/state.db", c->dir);
    rf_store_t *s = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_store_open(path, &s, &err), RF_EDB);
    assert_null(s);
    assert_non_null(strstr(err.msg, path));
}

/* A version-5 file (before watermark tags were recorded) gains the column and its index; its
 * jobs load with an empty tag (the coordinator fills it in on start) and can then be found. */
static void test_migrates_version_5_wm_tag(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "j-before-tags", "done");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_close(&s);
    t_exec(c->db, "DROP INDEX jobs_wm_tag");
    t_exec(c->db, "ALTER TABLE jobs DROP COLUMN wm_tag");
    t_exec(c->db, "PRAGMA user_version = 5");
    s = t_open(c->db);
    char v[64];
    t_query(c->db, "PRAGMA user_version", v, sizeof(v));
    assert_int_equal(atoi(v), RF_STORE_SCHEMA_VERSION);
    t_query(c->db,
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_wm_tag'", v,
            sizeof(v));
    assert_string_equal(v, "1");
    rf_store_job_t *got = NULL;
    assert_int_equal(rf_store_job_load(s, "j-before-tags", &got, &err), 0);
    assert_string_equal(got->wm_tag, "");
    rf_store_jobs_free(got, 1);
    assert_int_equal(rf_store_job_set_wm_tag(s, "j-before-tags", "00AB0123456789EF", &err), 0);
    size_t n = 0;
    assert_int_equal(rf_store_jobs_by_wm_tag(s, "00ab0123456789ef", NULL, &got, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(got[0].id, "j-before-tags");
    assert_string_equal(got[0].wm_tag, "00ab0123456789ef"); /* stored lowercase */
    rf_store_jobs_free(got, n);
    rf_store_close(&s);
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void test_job_round_trip(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "01HZX-job", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    /* a second insert of the same id is a constraint error, named */
    assert_int_equal(rf_store_job_insert(s, &j, &err), RF_EDB);
    assert_non_null(strstr(err.msg, "inserting job"));

    assert_int_equal(rf_store_job_set_frames(s, "01HZX-job", 300, &err), 0);
    assert_int_equal(rf_store_job_set_state(s, "01HZX-job", "stitching", "all chunks done", &err), 0);
    rf_store_close(&s);

    s = t_open(c->db);
    rf_store_job_t *got = NULL;
    assert_int_equal(rf_store_job_load(s, "01HZX-job", &got, &err), 0);
    assert_non_null(got);
    assert_string_equal(got->id, "01HZX-job");
    assert_string_equal(got->name, j.name);
    assert_string_equal(got->spec_yaml, j.spec_yaml);
    assert_string_equal(got->spec_source, j.spec_source);
    assert_string_equal(got->base_dir, j.base_dir);
    assert_string_equal(got->state, "stitching");
    assert_int_equal(got->priority, 70);
    assert_true(got->created_ms > 0);
    assert_int_equal(got->frames_total, 300);
    assert_string_equal(got->output, j.output);
    assert_string_equal(got->message, "all chunks done");
    rf_store_jobs_free(got, 1);

    got = NULL;
    assert_int_equal(rf_store_job_load(s, "no-such-job", &got, &err), RF_ENOENT);
    assert_null(got);
    assert_non_null(strstr(err.msg, "'no-such-job'"));
    rf_store_close(&s);
}

static void test_jobs_load_unfinished_only(void **state)
{
    t_ctx_t *c = *state;
    static const struct {
        const char *id, *state;
        bool unfinished;
    } cases[] = {
        {"j-planning", "planning", true},   {"j-running", "running", true},
        {"j-stitching", "stitching", true}, {"j-done", "done", false},
        {"j-failed", "failed", false},      {"j-cancelled", "cancelled", false},
    };
    const size_t ncases = sizeof(cases) / sizeof(cases[0]);
    rf_store_t *s = t_open(c->db);
    rf_err_t err = {0};
    for (size_t i = 0; i < ncases; i++) {
        rf_store_job_t j;
        t_job(&j, cases[i].id, "planning");
        assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
        assert_int_equal(rf_store_job_set_state(s, cases[i].id, cases[i].state, NULL, &err), 0);
    }
    for (int unfinished_only = 0; unfinished_only <= 1; unfinished_only++) {
        rf_store_job_t *jobs = NULL;
        size_t n = 0;
        assert_int_equal(rf_store_jobs_load(s, unfinished_only, &jobs, &n, &err), 0);
        size_t want = 0;
        for (size_t i = 0; i < ncases; i++) {
            bool expected = !unfinished_only || cases[i].unfinished;
            bool found = false;
            for (size_t k = 0; k < n; k++) {
                if (strcmp(jobs[k].id, cases[i].id) == 0) {
                    found = true;
                    assert_string_equal(jobs[k].state, cases[i].state);
                }
            }
            if (found != expected)
                fail_msg("unfinished_only=%d: job %s (%s) %s", unfinished_only, cases[i].id,
                         cases[i].state, found ? "listed" : "missing");
            want += expected;
        }
        assert_int_equal(n, want);
        rf_store_jobs_free(jobs, n);
    }
    rf_store_close(&s);
}

/* ---- chunks and attempts -------------------------------------------------------------------- */

static void test_chunks_insert_then_load(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-c", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_chunk_t in[3];
    t_chunks(in);
    /* a re-plan replaces earlier chunks rather than failing on the primary key */
    assert_int_equal(rf_store_chunks_insert(s, "job-c", in, 2, &err), 0);
    assert_int_equal(rf_store_chunks_insert(s, "job-c", in, 3, &err), 0);

    rf_store_chunk_t *out = NULL;
    size_t n = 0;
    assert_int_equal(rf_store_chunks_load(s, "job-c", &out, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(out[i].index, in[i].index);
        assert_int_equal(out[i].frame_start, in[i].frame_start);
        assert_int_equal(out[i].frame_end, in[i].frame_end);
        assert_int_equal(out[i].context_frames, in[i].context_frames);
        assert_int_equal(out[i].ctx_pts, in[i].ctx_pts);
        assert_int_equal(out[i].start_pts, in[i].start_pts);
        assert_int_equal(out[i].end_pts, in[i].end_pts);
        assert_string_equal(out[i].input_blob, in[i].input_blob);
        assert_int_equal(out[i].input_size, in[i].input_size);
        assert_string_equal(out[i].state, "queued");
        assert_int_equal(out[i].attempts, 0);
        assert_string_equal(out[i].result_blob, "");
        assert_int_equal(out[i].result_size, 0);
        assert_string_equal(out[i].worker, "");
        assert_string_equal(out[i].failed_on, "");
        assert_int_equal(out[i].head_overlap, in[i].head_overlap);
        assert_int_equal(out[i].tail_overlap, in[i].tail_overlap);
        assert_int_equal(out[i].tail_end_pts, in[i].tail_end_pts);
        assert_string_equal(out[i].color_ref, in[i].color_ref);
        assert_string_equal(out[i].seam_head.blob, "");
    }
    assert_int_equal(out[2].end_pts, INT64_MAX);
    rf_store_chunks_free(out, n);

    /* seam parts recorded with a result come back; a requeue forgets them */
    rf_store_seam_t head = {.size = 1234, .frames = 5}, tail = {0};
    snprintf(head.blob, sizeof(head.blob), "%s", SHA_R);
    snprintf(head.digest, sizeof(head.digest), "%s", SHA_A);
    assert_int_equal(rf_store_chunk_seams(s, "job-c", 2, &head, &tail, &err), 0);
    assert_int_equal(rf_store_chunks_load(s, "job-c", &out, &n, &err), 0);
    assert_string_equal(out[2].seam_head.blob, SHA_R);
    assert_string_equal(out[2].seam_head.digest, SHA_A);
    assert_int_equal(out[2].seam_head.size, 1234);
    assert_int_equal(out[2].seam_head.frames, 5);
    assert_string_equal(out[2].seam_tail.blob, "");
    rf_store_chunks_free(out, n);
    bool in_use = false;
    assert_int_equal(rf_store_blob_in_use(s, SHA_R, &in_use, &err), 0);
    assert_true(in_use); /* a seam part is a blob the job needs */
    assert_int_equal(rf_store_chunk_requeued(s, "job-c", 2, &err), 0);
    assert_int_equal(rf_store_chunks_load(s, "job-c", &out, &n, &err), 0);
    assert_string_equal(out[2].seam_head.blob, "");
    rf_store_chunks_free(out, n);

    /* inserting the chunks set the job running */
    rf_store_job_t *got = NULL;
    assert_int_equal(rf_store_job_load(s, "job-c", &got, &err), 0);
    assert_string_equal(got->state, "running");
    rf_store_jobs_free(got, 1);

    /* another job's chunks are separate; an unknown job has none */
    out = NULL;
    n = 99;
    assert_int_equal(rf_store_chunks_load(s, "no-such-job", &out, &n, &err), 0);
    assert_int_equal(n, 0);
    rf_store_chunks_free(out, n);
    rf_store_close(&s);
}

static void test_chunks_insert_for_unknown_job_rolls_back(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_chunk_t in[3];
    t_chunks(in);
    rf_err_t err = {0};
    /* foreign_keys=ON: chunks of a job that does not exist are refused, and nothing stays */
    assert_int_equal(rf_store_chunks_insert(s, "ghost", in, 3, &err), RF_EDB);
    assert_non_null(strstr(err.msg, "inserting chunk"));
    rf_store_chunk_t *out = NULL;
    size_t n = 99;
    assert_int_equal(rf_store_chunks_load(s, "ghost", &out, &n, &err), 0);
    assert_int_equal(n, 0);
    rf_store_chunks_free(out, n);
    rf_store_close(&s);
}

static void test_attempts_and_reasons(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-a", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_chunk_t in[3];
    t_chunks(in);
    assert_int_equal(rf_store_chunks_insert(s, "job-a", in, 3, &err), 0);

    /* no attempt yet: empty text, never NULL */
    char *r = rf_store_attempt_reasons(s, "job-a", 1);
    assert_non_null(r);
    assert_string_equal(r, "");
    free(r);

    static const struct {
        uint32_t attempt;
        const char *worker, *outcome, *message;
    } cases[] = {
        {1, "w-alpha", "failed", "decode: invalid NAL unit"},
        {2, "w-beta", "lost", NULL},
        {3, "w-gamma", NULL, NULL}, /* still running */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rf_store_attempt_begin(s, "job-a", 1, cases[i].attempt, cases[i].worker, &err),
                         0);
        if (cases[i].outcome)
            assert_int_equal(rf_store_attempt_end(s, "job-a", 1, cases[i].attempt, cases[i].outcome,
                                                  cases[i].message, &err),
                             0);
    }
    r = rf_store_attempt_reasons(s, "job-a", 1);
    assert_non_null(r);
    assert_string_equal(r, "attempt 1 on w-alpha: failed: decode: invalid NAL unit; "
                           "attempt 2 on w-beta: lost; attempt 3 on w-gamma: running");
    free(r);
    /* other chunks have none */
    r = rf_store_attempt_reasons(s, "job-a", 0);
    assert_string_equal(r, "");
    free(r);

    rf_store_chunk_t *out = NULL;
    size_t n = 0;
    assert_int_equal(rf_store_chunks_load(s, "job-a", &out, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].attempts, 0);
    assert_int_equal(out[1].attempts, 3);
    assert_int_equal(out[2].attempts, 0);
    rf_store_chunks_free(out, n);
    rf_store_close(&s);
}

static void test_attempt_reasons_long_messages(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-l", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_chunk_t in[3];
    t_chunks(in);
    assert_int_equal(rf_store_chunks_insert(s, "job-l", in, 3, &err), 0);
    /* many attempts with long messages grow the buffer past its first 1 KiB */
    char msg[900];
    memset(msg, 'x', sizeof(msg) - 1);
    msg[sizeof(msg) - 1] = '\0';
    for (uint32_t a = 1; a <= 8; a++) {
        assert_int_equal(rf_store_attempt_begin(s, "job-l", 2, a, "w", &err), 0);
        assert_int_equal(rf_store_attempt_end(s, "job-l", 2, a, "failed", msg, &err), 0);
    }
    char *r = rf_store_attempt_reasons(s, "job-l", 2);
    assert_non_null(r);
    assert_true(strlen(r) > 8 * 900);
    assert_non_null(strstr(r, "attempt 8 on w: failed: xxx"));
    assert_int_equal(strncmp(r, "attempt 1 on w: failed: ", 24), 0);
    free(r);
    rf_store_close(&s);
}

static void test_chunk_done_persists_across_reopen(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-d", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_chunk_t in[3];
    t_chunks(in);
    assert_int_equal(rf_store_chunks_insert(s, "job-d", in, 3, &err), 0);
    assert_int_equal(rf_store_attempt_begin(s, "job-d", 0, 1, "w-alpha", &err), 0);
    assert_int_equal(rf_store_attempt_end(s, "job-d", 0, 1, "done", "", &err), 0);
    assert_int_equal(rf_store_chunk_done(s, "job-d", 0, SHA_R, 424242, "w-alpha", &err), 0);
    assert_int_equal(rf_store_chunk_failed(s, "job-d", 2, "w-alpha w-beta", "failed", &err), 0);
    rf_store_close(&s);

    s = t_open(c->db);
    rf_store_chunk_t *out = NULL;
    size_t n = 0;
    assert_int_equal(rf_store_chunks_load(s, "job-d", &out, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].state, "done");
    assert_string_equal(out[0].result_blob, SHA_R);
    assert_int_equal(out[0].result_size, 424242);
    assert_string_equal(out[0].worker, "w-alpha");
    assert_int_equal(out[0].attempts, 1);
    assert_string_equal(out[1].state, "queued");
    assert_string_equal(out[1].result_blob, "");
    assert_string_equal(out[2].state, "failed");
    assert_string_equal(out[2].failed_on, "w-alpha w-beta");
    assert_string_equal(out[2].result_blob, "");
    rf_store_chunks_free(out, n);
    char *r = rf_store_attempt_reasons(s, "job-d", 0);
    assert_string_equal(r, "attempt 1 on w-alpha: done");
    free(r);
    rf_store_close(&s);
}

static void test_chunk_failed_keeps_it_queued_or_fails_it(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    rf_store_job_t j;
    t_job(&j, "job-f", "planning");
    rf_err_t err = {0};
    assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    rf_store_chunk_t in[3];
    t_chunks(in);
    assert_int_equal(rf_store_chunks_insert(s, "job-f", in, 3, &err), 0);
    static const struct {
        uint32_t idx;
        const char *failed_on, *state;
    } cases[] = {
        {0, "w-alpha", "queued"}, /* retry elsewhere */
        {1, "w-alpha w-beta w-gamma", "failed"},
        {2, "", "queued"},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(
            rf_store_chunk_failed(s, "job-f", cases[i].idx, cases[i].failed_on, cases[i].state, &err), 0);
    rf_store_chunk_t *out = NULL;
    size_t n = 0;
    assert_int_equal(rf_store_chunks_load(s, "job-f", &out, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_string_equal(out[cases[i].idx].state, cases[i].state);
        assert_string_equal(out[cases[i].idx].failed_on, cases[i].failed_on);
    }
    rf_store_chunks_free(out, n);
    rf_store_close(&s);
}

/* ---- events --------------------------------------------------------------------------------- */

static void test_events_insert(void **state)
{
    t_ctx_t *c = *state;
    rf_store_t *s = t_open(c->db);
    static const struct {
        const char *level, *message;
    } cases[] = {
        {"info", "planned 6 chunks"},
        {"warn", "chunk 3: worker 'w-beta' lost, requeued"},
        {"error", "chunk 4 failed on 3 workers"},
    };
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rf_store_event(s, "job-e", cases[i].level, cases[i].message), 0);
    rf_store_close(&s);

    char v[256];
    t_query(c->db, "SELECT count(*) FROM events WHERE job_id = 'job-e'", v, sizeof(v));
    assert_string_equal(v, "3");
    for (size_t i = 0; i < 3; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT level || '|' || message || '|' || (ts_ms > 0) FROM events"
                 " WHERE job_id = 'job-e' ORDER BY id LIMIT 1 OFFSET %zu",
                 i);
        t_query(c->db, sql, v, sizeof(v));
        char want[256];
        snprintf(want, sizeof(want), "%s|%s|1", cases[i].level, cases[i].message);
        assert_string_equal(v, want);
    }
}

/* ---- watermark tags ------------------------------------------------------------------------- */

/* Jobs are found by the tag their frames carry: exactly, in either case, across a reopen, only the
 * owner's when an owner is given, never by a prefix or another tag; a malformed tag is refused
 * with the tag named; the lookup uses the index, not a scan of every job. */
static void test_jobs_by_wm_tag(void **state)
{
    t_ctx_t *c = *state;
    static const struct {
        const char *id, *owner, *tag;
    } jobs[] = {
        {"j-alice-1", "client:alice", "1a2b000000000001"},
        {"j-bob-1", "client:bob", "1a2b000000000002"},
        {"j-alice-2", "client:alice", "1a2bffffffffffff"},
        {"j-nokeys", "", "1a2b000000000003"},
    };
    rf_store_t *s = t_open(c->db);
    rf_err_t err = {0};
    for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
        rf_store_job_t j;
        t_job(&j, jobs[i].id, "done");
        snprintf(j.owner, sizeof(j.owner), "%s", jobs[i].owner);
        snprintf(j.wm_tag, sizeof(j.wm_tag), "%s", jobs[i].tag);
        assert_int_equal(rf_store_job_insert(s, &j, &err), 0);
    }
    rf_store_close(&s);
    s = t_open(c->db);
    static const struct {
        const char *tag, *owner, *want; /* want: the job id found, NULL for none */
    } cases[] = {
        {"1a2b000000000001", NULL, "j-alice-1"},
        {"1A2B000000000001", NULL, "j-alice-1"},           /* either case */
        {"1a2bffffffffffff", "client:alice", "j-alice-2"}, /* the owner's own */
        {"1a2b000000000002", "client:alice", NULL},        /* another owner's: nothing */
        {"1a2b000000000002", "client:bob", "j-bob-1"},
        {"1a2b000000000003", NULL, "j-nokeys"},
        {"1a2b000000000004", NULL, NULL}, /* no job has it */
        {"2a2b000000000001", NULL, NULL}, /* another key id */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rf_store_job_t *got = NULL;
        size_t n = 99;
        assert_int_equal(rf_store_jobs_by_wm_tag(s, cases[i].tag, cases[i].owner, &got, &n, &err),
                         0);
        if (!cases[i].want) {
            assert_int_equal(n, 0);
        } else {
            assert_int_equal(n, 1);
            assert_string_equal(got[0].id, cases[i].want);
            assert_string_equal(got[0].name, "scene-12");
            assert_string_equal(got[0].output, "/out/scene-12.mkv");
            assert_true(got[0].created_ms > 0);
        }
        rf_store_jobs_free(got, n);
    }
    static const char *const bad[] = {"",
                                      "1a2b00000000001",
                                      "1a2b0000000000011",
                                      "1a2b00000000000g",
                                      "1a2b 00000000001",
                                      "1a2b000000000001\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rf_store_job_t *got = NULL;
        size_t n = 99;
        assert_int_equal(rf_store_jobs_by_wm_tag(s, bad[i], NULL, &got, &n, &err), RF_EINVAL);
        assert_int_equal(n, 0);
        assert_null(got);
        assert_non_null(strstr(err.msg, "16 hex digits"));
        assert_int_equal(rf_store_job_set_wm_tag(s, "j-alice-1", bad[i], &err), RF_EINVAL);
    }
    assert_int_equal(
        rf_store_jobs_by_wm_tag(s, NULL, NULL, &(rf_store_job_t *){NULL}, &(size_t){0}, &err),
        RF_EINVAL);
    rf_store_close(&s);
    /* the refused updates changed nothing */
    char v[128];
    t_query(c->db, "SELECT wm_tag FROM jobs WHERE id = 'j-alice-1'", v, sizeof(v));
    assert_string_equal(v, "1a2b000000000001");
    /* an indexed lookup: the plan searches jobs_wm_tag */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE wm_tag = ?",
                                        -1, &st, NULL),
                     SQLITE_OK);
    bool indexed = false;
    while (sqlite3_step(st) == SQLITE_ROW)
        indexed = indexed || strstr((const char *)sqlite3_column_text(st, 3), "jobs_wm_tag");
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(indexed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_latest_schema_in_wal, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_reopen_is_idempotent, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_migrates_version_1, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_is_refused, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_open_unwritable_path_names_it, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_job_round_trip, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_load_unfinished_only, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_insert_then_load, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_insert_for_unknown_job_rolls_back, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_attempts_and_reasons, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_attempt_reasons_long_messages, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_chunk_done_persists_across_reopen, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_chunk_failed_keeps_it_queued_or_fails_it, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_events_insert, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_migrates_version_5_wm_tag, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_jobs_by_wm_tag, t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
