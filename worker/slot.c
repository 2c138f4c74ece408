/* slot.c - one chunk, start to finish. See slot.h. */
#include "slot.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/pixdesc.h>
#include <stdarg.h>
#include <libswscale/swscale.h>

#include <libavutil/hwcontext.h>

#include "blob.h"
#include "critic.h"
#include "gpu_pipe.h"
#include "log.h"
#include "media.h"
#include "passes.h"
#include "rftime.h"

#define COMP "slot"
#define RF_TRANSFER_TIMEOUT_MS 60000

/* ---- assignment ------------------------------------------------------------------------------- */

static char *s_dup(const char *s)
{
    return strdup(s ? s : "");
}

static int s_params_copy(Reelfarm__Param *const *src, size_t n, rf_param_t **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (n == 0)
        return 0;
    if (n > RF_SPEC_MAX_PARAMS)
        return RF_ETOOBIG;
    rf_param_t *p = calloc(n, sizeof(*p));
    if (!p)
        return RF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        p[i].key = s_dup(src[i]->key);
        p[i].value = s_dup(src[i]->value);
    }
    *out = p;
    *nout = n;
    return 0;
}

/* Sets (adds or replaces) one parameter of a pass. */
static int s_param_set(rf_pass_spec_t *pass, const char *key, const char *value)
{
    for (size_t i = 0; i < pass->nparams; i++)
        if (!strcmp(pass->params[i].key, key)) {
            char *v = strdup(value);
            if (!v)
                return RF_ENOMEM;
            free(pass->params[i].value);
            pass->params[i].value = v;
            return 0;
        }
    rf_param_t *grown = realloc(pass->params, (pass->nparams + 1) * sizeof(*grown));
    if (!grown)
        return RF_ENOMEM;
    pass->params = grown;
    grown[pass->nparams].key = strdup(key);
    grown[pass->nparams].value = strdup(value);
    pass->nparams++;
    return grown[pass->nparams - 1].key && grown[pass->nparams - 1].value ? 0 : RF_ENOMEM;
}

static void s_params_free(rf_param_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
    free(p);
}

void rf_assignment_destroy(rf_assignment_t **ap)
{
    if (!ap || !*ap)
        return;
    rf_assignment_t *a = *ap;
    for (size_t i = 0; i < a->npasses; i++) {
        free(a->pipeline[i].name);
        free(a->pipeline[i].role);
        s_params_free(a->pipeline[i].params, a->pipeline[i].nparams);
    }
    free(a->pipeline);
    free(a->codec);
    free(a->preset);
    free(a->pix_fmt);
    s_params_free(a->options, a->noptions);
    free(a->input_path);
    free(a->critic.model);
    free(a->files);
    free(a);
    *ap = NULL;
}

static int s_file_add(rf_assignment_t *a, const rf_slot_file_t *f, rf_err_t *err)
{
    rf_slot_file_t *grown = realloc(a->files, (a->nfiles + 1) * sizeof(*grown));
    if (!grown)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    a->files = grown;
    a->files[a->nfiles++] = *f;
    return 0;
}

/* The extension of name (".png"), when it is short and plain (letters and digits), else "". */
static void s_file_ext(const char *name, char *ext, size_t size)
{
    ext[0] = '\0';
    const char *dot = name ? strrchr(name, '.') : NULL;
    if (!dot || strchr(dot, '/') || strlen(dot) < 2 || strlen(dot) >= size)
        return;
    for (const char *p = dot + 1; *p; p++)
        if (!isalnum((unsigned char)*p))
            return;
    snprintf(ext, size, "%s", dot);
}

static void s_file_path(const char *cache_dir, const rf_slot_file_t *f, char *path, size_t size)
{
    snprintf(path, size, "%s/files/%s%s", cache_dir, f->sha, f->ext);
}

int rf_assignment_files_at(rf_assignment_t *a, const char *cache_dir, rf_err_t *err)
{
    char path[4400];
    for (size_t i = 0; i < a->nfiles; i++) {
        const rf_slot_file_t *f = &a->files[i];
        s_file_path(cache_dir, f, path, sizeof(path));
        int rc = 0;
        if (f->pass == RF_SLOT_FILE_CRITIC) {
            char *dup = s_dup(path);
            if (dup) {
                free(a->critic.model);
                a->critic.model = dup;
            } else {
                rc = RF_ENOMEM;
            }
        } else {
            rc = s_param_set(&a->pipeline[f->pass], f->key, path);
        }
        if (rc)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    return 0;
}

int rf_assignment_from_msg(const Reelfarm__Assign *m, rf_assignment_t **out, rf_err_t *err)
{
    if (!m->job_id || strlen(m->job_id) >= 64 || !m->encode || !m->encode->codec || !*m->encode->codec)
        return rf_err_set(err, RF_EPROTO, "assignment without a job id or an encoder");
    if (m->frame_start < 0 || m->frame_end <= m->frame_start ||
        m->frame_end - m->frame_start > RF_MEDIA_MAX_FRAMES || m->context_before > 100000)
        return rf_err_set(err, RF_EPROTO, "assignment with a bad frame range %" PRId64 "-%" PRId64,
                          m->frame_start, m->frame_end);
    if (m->tb_num <= 0 || m->tb_den <= 0 || m->fps_num <= 0 || m->fps_den <= 0)
        return rf_err_set(err, RF_EPROTO, "assignment with a bad time base or frame rate");
    bool has_blob = m->input_blob && *m->input_blob;
    if (has_blob ? !rf_sha256_hex_valid(m->input_blob) : !(m->input_path && *m->input_path))
        return rf_err_set(err, RF_EPROTO, "assignment with a bad input blob name");
    if (m->n_pipeline > RF_SPEC_MAX_PASSES)
        return rf_err_set(err, RF_EPROTO, "assignment with %zu passes (at most %d)", m->n_pipeline,
                          RF_SPEC_MAX_PASSES);
    rf_assignment_t *a = calloc(1, sizeof(*a));
    if (!a)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    a->lease = m->lease;
    snprintf(a->job_id, sizeof(a->job_id), "%s", m->job_id);
    a->chunk = m->chunk;
    a->attempt = m->attempt;
    a->slot = m->slot;
    a->frame_start = m->frame_start;
    a->frame_end = m->frame_end;
    a->context_before = m->context_before;
    a->ctx_pts = m->ctx_pts;
    a->start_pts = m->start_pts;
    a->end_pts = m->end_pts;
    a->time_base = (AVRational){m->tb_num, m->tb_den};
    a->frame_rate = (AVRational){m->fps_num, m->fps_den};
    a->codec = s_dup(m->encode->codec);
    a->preset = s_dup(m->encode->preset);
    a->pix_fmt = s_dup(m->encode->pix_fmt);
    a->crf = m->encode->crf;
    a->bitrate = m->encode->bitrate;
    a->gop = (int)m->encode->gop;
    snprintf(a->input_blob, sizeof(a->input_blob), "%s", has_blob ? m->input_blob : "");
    a->input_size = m->input_size;
    a->input_path = s_dup(m->input_path);
    a->seed = m->seed;
    a->head_overlap = m->head_overlap;
    a->tail_overlap = m->tail_overlap;
    a->tail_end_pts = m->tail_end_pts;
    if (a->head_overlap >= (uint64_t)(a->frame_end - a->frame_start) || a->tail_overlap > 4096 ||
        (a->tail_overlap && a->tail_end_pts <= a->end_pts)) {
        rc = rf_err_set(err, RF_EPROTO, "assignment with a bad seam overlap (head %u, tail %u)",
                        a->head_overlap, a->tail_overlap);
        goto out;
    }
    if (m->critic && m->critic->model && *m->critic->model) {
        const Reelfarm__CriticSpec *cs = m->critic;
        const char *dev = cs->device && *cs->device ? cs->device : "auto";
        if (cs->max_rerenders > RF_SLOT_MAX_RERENDERS || !isfinite(cs->threshold) ||
            !isfinite(cs->input_min) || !isfinite(cs->input_max) || cs->input_min == cs->input_max ||
            (strcmp(dev, "auto") && strcmp(dev, "cpu") && strcmp(dev, "gpu"))) {
            rc = rf_err_set(err, RF_EPROTO,
                            "assignment with a bad critic (max_rerenders %u, at most %d; device '%s')",
                            cs->max_rerenders, RF_SLOT_MAX_RERENDERS, dev);
            goto out;
        }
        if (!(a->critic.model = s_dup(cs->model))) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto out;
        }
        if (cs->model_sha256 && *cs->model_sha256) {
            if (!rf_sha256_hex_valid(cs->model_sha256)) {
                rc = rf_err_set(err, RF_EPROTO, "assignment with a bad critic model blob name");
                goto out;
            }
            rf_slot_file_t f = {.pass = RF_SLOT_FILE_CRITIC, .size = cs->model_size};
            snprintf(f.key, sizeof(f.key), "model");
            snprintf(f.sha, sizeof(f.sha), "%s", cs->model_sha256);
            snprintf(f.ext, sizeof(f.ext), ".onnx");
            if ((rc = s_file_add(a, &f, err)) != 0)
                goto out;
        }
        a->critic.threshold = cs->threshold;
        a->critic.max_rerenders = cs->max_rerenders;
        a->critic.input_min = cs->input_min;
        a->critic.input_max = cs->input_max;
        snprintf(a->critic.device, sizeof(a->critic.device), "%s", dev);
    }
    if (s_params_copy(m->encode->options, m->encode->n_options, &a->options, &a->noptions)) {
        rc = rf_err_set(err, RF_EPROTO, "assignment with too many encoder options");
        goto out;
    }
    if (m->n_pipeline) {
        a->pipeline = calloc(m->n_pipeline, sizeof(*a->pipeline));
        if (!a->pipeline) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto out;
        }
        a->npasses = m->n_pipeline;
        for (size_t i = 0; i < m->n_pipeline; i++) {
            const Reelfarm__PassSpec *p = m->pipeline[i];
            if (!p->name || !rf_pass_builtin(p->name)) {
                rc = rf_err_set(err, RF_EINVAL, "this worker has no pass '%s'",
                                p->name ? p->name : "");
                goto out;
            }
            a->pipeline[i].name = s_dup(p->name);
            a->pipeline[i].role = s_dup(p->role);
            if (s_params_copy(p->params, p->n_params, &a->pipeline[i].params,
                              &a->pipeline[i].nparams)) {
                rc = rf_err_set(err, RF_EPROTO, "pass '%s' has too many parameters", p->name);
                goto out;
            }
            /* The scenes' colour references travel once per Assign; color-match reads them as
             * its internal scene_ref parameter. */
            if (!strcmp(p->name, "color-match") && m->color_ref && *m->color_ref &&
                (rc = s_param_set(&a->pipeline[i], "scene_ref", m->color_ref)) != 0) {
                rc = rf_err_set(err, rc, "out of memory");
                goto out;
            }
        }
    }
    if (m->n_files > RF_SLOT_MAX_FILES) {
        rc = rf_err_set(err, RF_EPROTO, "assignment with %zu files (at most %d)", m->n_files,
                        RF_SLOT_MAX_FILES);
        goto out;
    }
    for (size_t i = 0; i < m->n_files; i++) {
        const Reelfarm__FileRef *fr = m->files[i];
        if (fr->pass >= a->npasses || !fr->key || !*fr->key || strlen(fr->key) >= 32 ||
            !fr->sha256 || !rf_sha256_hex_valid(fr->sha256) ||
            !rf_pass_spec_param(&a->pipeline[fr->pass], fr->key)) {
            rc = rf_err_set(err, RF_EPROTO, "assignment with a bad file reference %zu", i);
            goto out;
        }
        rf_slot_file_t f = {.pass = fr->pass, .size = fr->size};
        snprintf(f.key, sizeof(f.key), "%s", fr->key);
        snprintf(f.sha, sizeof(f.sha), "%s", fr->sha256);
        s_file_ext(fr->name, f.ext, sizeof(f.ext));
        if ((rc = s_file_add(a, &f, err)) != 0)
            goto out;
    }
    if (!a->codec || !a->preset || !a->pix_fmt || !a->input_path)
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
out:
    if (rc) {
        rf_assignment_destroy(&a);
        return rc;
    }
    *out = a;
    return 0;
}

/* ---- test faults ------------------------------------------------------------------------------ */

/* Parses a whole decimal number in [min, max]; false when s is anything else. */
static bool s_parse_u32(const char *s, size_t len, uint32_t min, uint32_t max, uint32_t *out)
{
    if (len == 0 || len > 9)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

int rf_slot_fault_parse(const char *spec, rf_slot_fault_t *out, rf_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!spec || !*spec)
        return 0;
    static const char usage[] = "expected bad-checksum, wrong-count, hang or slow:MS, "
                                "optionally followed by @N (the first N chunks only)";
    size_t len = strlen(spec);
    if (len >= sizeof(out->spec))
        return rf_err_set(err, RF_EINVAL, "test fault '%.40s...' is too long: %s", spec, usage);
    const char *at = strchr(spec, '@');
    size_t kind_len = at ? (size_t)(at - spec) : len;
    rf_slot_fault_t f = {0};
    if (at && !s_parse_u32(at + 1, strlen(at + 1), 1, 1000000, &f.limit))
        return rf_err_set(err, RF_EINVAL, "test fault '%s': '@%s' is not a chunk count 1..1000000",
                          spec, at + 1);
    static const char slow[] = "slow:";
    if (kind_len == 12 && !strncmp(spec, "bad-checksum", kind_len)) {
        f.kind = RF_SLOT_FAULT_BAD_CHECKSUM;
    } else if (kind_len == 11 && !strncmp(spec, "wrong-count", kind_len)) {
        f.kind = RF_SLOT_FAULT_WRONG_COUNT;
    } else if (kind_len == 4 && !strncmp(spec, "hang", kind_len)) {
        f.kind = RF_SLOT_FAULT_HANG;
    } else if (kind_len >= sizeof(slow) - 1 && !strncmp(spec, slow, sizeof(slow) - 1)) {
        const char *ms = spec + sizeof(slow) - 1;
        if (!s_parse_u32(ms, kind_len - (sizeof(slow) - 1), 1, RF_SLOT_FAULT_MAX_SLOW_MS,
                         &f.slow_ms))
            return rf_err_set(err, RF_EINVAL, "test fault '%s': slow needs milliseconds 1..%d",
                              spec, RF_SLOT_FAULT_MAX_SLOW_MS);
        f.kind = RF_SLOT_FAULT_SLOW;
    } else {
        return rf_err_set(err, RF_EINVAL, "unknown test fault '%s': %s", spec, usage);
    }
    snprintf(f.spec, sizeof(f.spec), "%s", spec);
    *out = f;
    return 0;
}

/* Sleeps ms, waking every RF_SLOT_FAULT_POLL_MS to look at the cancel flag. Returns false when
 * cancelled. */
static bool s_fault_sleep(uint64_t ms, const atomic_int *cancel)
{
    while (ms > 0) {
        if (cancel && atomic_load(cancel))
            return false;
        uint64_t step = ms < RF_SLOT_FAULT_POLL_MS ? ms : RF_SLOT_FAULT_POLL_MS;
        rf_sleep_ms(step);
        ms -= step;
    }
    return !(cancel && atomic_load(cancel));
}

/* ---- render ------------------------------------------------------------------------------------ */

static int s_fail(rf_slot_result_t *res, int rc, const char *klass, bool retryable, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

static int s_fail(rf_slot_result_t *res, int rc, const char *klass, bool retryable, const char *fmt,
                  ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof(res->message), fmt, ap);
    va_end(ap);
    res->rc = rc;
    snprintf(res->error_class, sizeof(res->error_class), "%s",
             rc == RF_ECANCELED ? "cancelled" : klass);
    res->retryable = retryable;
    return rc;
}

static int s_mkdirs(const char *path)
{
    char buf[4400];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return RF_EIO;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return RF_EIO;
    return 0;
}

/* Fetches the input slice and leaves it in this lease's own work folder (a slice is used once).
 * The download goes through <cache>/partial/<sha>: a fetch cut short (the coordinator restarted,
 * the network dropped, the lease was cancelled) leaves its verified bytes there, and the next
 * attempt at the same slice on this worker - a retry, another lease - resumes them instead of
 * starting over. When another slot is fetching the same slice at this moment, this one fetches
 * into its own folder instead of waiting. With shared storage (input_path) nothing is copied. */
/* Deletes partial downloads nobody resumed for RF_SLOT_PARTIAL_KEEP_S: their chunk went to another
 * worker, or the job ended. A fetch in progress writes its file, so its mtime is fresh. */
static void s_sweep_partials(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char path[4200 + 256 + 2]; /* dir (see s_input) + a name */
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > RF_SLOT_PARTIAL_KEEP_S)
            unlink(path);
    }
    closedir(d);
}

/* Makes sure every file of a is in the file cache: a copy there of the right size is used as it
 * is (its hash was checked when it was fetched; its mtime is refreshed, for the advertised list);
 * one that is missing is fetched (verified) into the lease's folder and renamed into the cache,
 * so a concurrent fetch of the same file by another slot costs a duplicate download, never a
 * torn file. */
static int s_files(const rf_assignment_t *a, const rf_slot_env_t *env, const char *workdir,
                   const atomic_int *cancel, rf_slot_result_t *res)
{
    char dir[4300], path[4400], staged[4400];
    snprintf(dir, sizeof(dir), "%s/files", env->cache_dir);
    if (a->nfiles && s_mkdirs(dir))
        return s_fail(res, RF_EIO, "internal", true, "cannot create '%s': %s", dir, strerror(errno));
    for (size_t i = 0; i < a->nfiles; i++) {
        const rf_slot_file_t *f = &a->files[i];
        s_file_path(env->cache_dir, f, path, sizeof(path));
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == f->size) {
            utimensat(AT_FDCWD, path, NULL, 0);
            continue;
        }
        snprintf(staged, sizeof(staged), "%s/file-%s%s", workdir, f->sha, f->ext);
        rf_err_t err = {0};
        rf_blob_xfer_t xfer = {.sec = env->sec};
        int rc = rf_blob_fetch(env->zctx, env->blob_endpoint, f->sha, f->size, staged,
                               RF_TRANSFER_TIMEOUT_MS, cancel, &xfer, &err);
        if (!rc && rename(staged, path) != 0)
            rc = rf_err_set(&err, RF_EIO, "cannot move it into '%s': %s", dir, strerror(errno));
        if (rc) {
            unlink(staged);
            return s_fail(res, rc, "transfer", true, "fetching %s '%s' (%.12s): %s",
                          f->pass == RF_SLOT_FILE_CRITIC ? "the critic's" : "a pass's", f->key,
                          f->sha, err.msg);
        }
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: fetched file %.12s (%" PRIu64 " bytes) into the cache",
                   a->chunk, a->job_id, f->sha, f->size);
    }
    return 0;
}

typedef struct s_cached {
    char sha[RF_SHA256_HEX_LEN + 1];
    int64_t mtime_ns;
} s_cached_t;

static int s_cached_cmp(const void *x, const void *y)
{
    const s_cached_t *a = x, *b = y;
    return a->mtime_ns < b->mtime_ns ? 1 : a->mtime_ns > b->mtime_ns ? -1 : strcmp(a->sha, b->sha);
}

size_t rf_slot_cached_files(const char *cache_dir, char (*sha)[RF_SHA256_HEX_LEN + 1], size_t max)
{
    char dir[4300], path[4600];
    snprintf(dir, sizeof(dir), "%s/files", cache_dir);
    DIR *d = opendir(dir);
    if (!d || !max) {
        if (d)
            closedir(d);
        return 0;
    }
    s_cached_t *all = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char name[RF_SHA256_HEX_LEN + 1];
        struct stat st;
        if (strlen(e->d_name) < RF_SHA256_HEX_LEN)
            continue;
        memcpy(name, e->d_name, RF_SHA256_HEX_LEN);
        name[RF_SHA256_HEX_LEN] = '\0';
        const char *rest = e->d_name + RF_SHA256_HEX_LEN;
        if (!rf_sha256_hex_valid(name) || (*rest && *rest != '.'))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 32;
            s_cached_t *grown = realloc(all, ncap * sizeof(*grown));
            if (!grown)
                break;
            all = grown;
            cap = ncap;
        }
        memcpy(all[n].sha, name, sizeof(name));
        all[n].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        n++;
    }
    closedir(d);
    if (n)
        qsort(all, n, sizeof(*all), s_cached_cmp);
    size_t out = 0;
    for (size_t i = 0; i < n && out < max; i++) {
        bool seen = false; /* the same blob under two extensions */
        for (size_t k = 0; k < out && !seen; k++)
            seen = !strcmp(sha[k], all[i].sha);
        if (!seen)
            memcpy(sha[out++], all[i].sha, RF_SHA256_HEX_LEN + 1);
    }
    free(all);
    return out;
}

static int s_input(const rf_assignment_t *a, const rf_slot_env_t *env, const char *workdir,
                   const atomic_int *cancel, char *path, size_t size, bool *shared,
                   rf_slot_result_t *res)
{
    *shared = false;
    if (!*a->input_blob) {
        snprintf(path, size, "%s", a->input_path);
        return 0;
    }
    if (env->shared_blobs) { /* read in place: verified (size, SHA-256), never written */
        rf_err_t serr = {0};
        if (rf_blob_get_local(env->shared_blobs, a->input_blob, a->input_size, path, size, &serr) == 0) {
            *shared = true;
            return 0;
        }
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: input %.12s not usable in the shared store (%s): fetching it "
                   "over the blob socket", a->chunk, a->job_id, a->input_blob, serr.msg);
    }
    char partial_dir[4200], staged[4400];
    snprintf(path, size, "%s/input.nut", workdir);
    snprintf(partial_dir, sizeof(partial_dir), "%s/partial", env->cache_dir);
    snprintf(staged, sizeof(staged), "%s/%s", partial_dir, a->input_blob);
    rf_err_t err = {0};
    rf_blob_xfer_t xfer = {.sec = env->sec};
    int rc = s_mkdirs(partial_dir);
    s_sweep_partials(partial_dir);
    if (!rc)
        rc = rf_blob_fetch(env->zctx, env->blob_endpoint, a->input_blob, a->input_size, staged,
                           RF_TRANSFER_TIMEOUT_MS, cancel, &xfer, &err);
    if (!rc && rename(staged, path) != 0)
        rc = rf_err_set(&err, RF_EIO, "cannot move '%s' to '%s': %s", staged, path, strerror(errno));
    if (rc == RF_EAGAIN || rc == RF_EIO) /* busy, or the cache cannot hold it: fetch privately */
        rc = rf_blob_fetch(env->zctx, env->blob_endpoint, a->input_blob, a->input_size, path,
                           RF_TRANSFER_TIMEOUT_MS, cancel, &xfer, &err);
    if (rc)
        return s_fail(res, rc, "transfer", true, "fetching input %.12s: %s", a->input_blob, err.msg);
    if (xfer.resumed_from || xfer.reconnects)
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: input %.12s resumed at %" PRIu64 " bytes, %" PRIu64
                   " bytes fetched after that, %u reconnects",
                   a->chunk, a->job_id, a->input_blob, xfer.resumed_from, xfer.bytes_after_resume,
                   xfer.reconnects);
    return 0;
}

/* A result (or seam part) into the coordinator's blob store: committed into the shared store when
 * there is one, else (or when that fails) uploaded over the blob socket. */
static int s_put(const rf_assignment_t *a, const rf_slot_env_t *env, const char *path,
                 const atomic_int *cancel, char sha[RF_SHA256_HEX_LEN + 1], uint64_t *size,
                 rf_blob_xfer_t *xfer, rf_err_t *err)
{
    if (env->shared_blobs) {
        rf_err_t serr = {0};
        if (rf_blob_put_local(env->shared_blobs, path, sha, size, &serr) == 0)
            return 0;
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: cannot commit '%s' into the shared store (%s): uploading it "
                   "over the blob socket", a->chunk, a->job_id, path, serr.msg);
    }
    return rf_blob_upload(env->zctx, env->blob_endpoint, path, sha, size, RF_TRANSFER_TIMEOUT_MS,
                          cancel, xfer, err);
}

static const char *s_opt(const char *s)
{
    return s && *s ? s : NULL;
}

/* Converts f (any format) to pix_fmt with swscale, reusing *sws. */
static int s_convert(struct SwsContext **sws, const AVFrame *f, int pix_fmt, AVFrame *dst)
{
    *sws = sws_getCachedContext(*sws, f->width, f->height, f->format, f->width, f->height, pix_fmt,
                                SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!*sws)
        return RF_EMEDIA;
    av_frame_unref(dst);
    dst->width = f->width;
    dst->height = f->height;
    dst->format = pix_fmt;
    if (av_frame_get_buffer(dst, 0) < 0)
        return RF_ENOMEM;
    sws_scale(*sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst->data,
              dst->linesize);
    av_frame_copy_props(dst, f);
    return 0;
}

/* ---- the pipeline: stages, bounded queues, the first error -------------------------------------
 *
 *   decode thread --frames--> pass thread --encode--> encode+mux thread --packets--> verify thread
 *
 * With an empty pipeline there is no pass thread: the decode thread feeds the encode queue, and
 * frames reach the encoder untouched, in their own pixel format. Every stage owns what it holds;
 * queues hand ownership over. The first stage to fail records why (stage, frame, message) and
 * aborts every queue, which wakes every stage blocked on a full or empty queue; each then returns
 * without touching the others. Waits are timed so that a stage blocked on a queue still sees the
 * cancel flag within RF_SLOT_WAIT_MS.
 */



enum { S_DECODE, S_PASSES, S_ENCODE, S_VERIFY, S_NSTAGES };
static const char *const s_stage_names[S_NSTAGES] = {"decode", "passes", "encode", "verify"};

/* Where a stage's wall time went, for the per-chunk timing line. */
typedef struct s_stage_time {
    uint64_t started_ns, ended_ns;
    uint64_t wait_in_ns;  /* blocked on an empty input queue */
    uint64_t wait_out_ns; /* blocked on a full output queue */
} s_stage_time_t;

typedef struct s_queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    void **items;
    size_t cap, head, count;
    bool closed;  /* the producer is done: pop returns NULL once empty */
    bool aborted; /* the pipeline stopped: push and pop fail at once */
    void (*free_item)(void **item);
} s_queue_t;

typedef struct s_pipe s_pipe_t;

struct s_pipe {
    const rf_assignment_t *a;
    const rf_slot_env_t *env;
    const atomic_int *cancel;
    _Atomic uint64_t *frames_done;
    uint64_t seed;                  /* the passes' seed: the job's, + k on the critic's k-th re-render */
    char out_path[4400];            /* this render's main part */
    /* The critic gate (critic.h): scores of every frame the encode stage gets, NULL = no gate */
    rf_critic_t *critic;
    rf_pconvert_t *critic_conv;
    AVFrame *critic_soft;           /* host copy of a device frame being scored */
    int critic_fmt;
    rf_pframe_t critic_pf;
    rf_critic_tally_t tally;
    int target_fmt;                 /* the encoder's pixel format; AV_PIX_FMT_NONE = the frame's */
    rf_decoder_t *dec;              /* used by the decode stage only */
    rf_pass_chain_t *chain;         /* used by the pass stage only; NULL = empty pipeline */
    rf_media_wm_pattern_t *luma_mark; /* the watermark pass, applied to the encoder's frames' luma
                                         by the encode stage (NULL: it runs in the chain, on RGB) */
    s_queue_t frames;               /* decode -> passes */
    s_queue_t encode;               /* passes (or decode) -> encode */
    s_queue_t packets;              /* encode -> verify: packets, or reconstructed frames (recon) */
    bool recon;                     /* the encoder hands out its reconstructions: hash those */
    rf_encoder_t *enc;              /* opened by the encode stage on its first frame */
    rf_encoder_t *side[2];          /* seam head / tail parts (ffv1), opened on their first frame */
    char side_path[2][4400];
    uint64_t side_frames[2];
    rf_frame_hasher_t *hasher;      /* made with the encoder; used by the verify stage only */
    s_stage_time_t time[S_NSTAGES];
    /* results, each written by one stage and read after the joins */
    uint64_t encoded, dropped;
    uint64_t hashed;
    uint8_t digest[RF_SHA256_LEN];
    uint8_t *list;                  /* every hashed frame's SHA-256, in order (verify stage) */
    size_t list_cap;
    bool list_failed;               /* out of memory growing it: the result goes without a list */
    /* the first error */
    pthread_mutex_t lock;
    atomic_bool failed;
    int rc;
    char error_class[16];
    bool retryable;
    char message[1024];
};

static void s_free_frame(void **item)
{
    av_frame_free((AVFrame **)item);
}

static void s_free_packet(void **item)
{
    av_packet_free((AVPacket **)item);
}

static int s_q_init(s_queue_t *q, size_t cap, void (*free_item)(void **))
{
    memset(q, 0, sizeof(*q));
    q->items = calloc(cap, sizeof(*q->items));
    if (!q->items)
        return RF_ENOMEM;
    q->cap = cap;
    q->free_item = free_item;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    return 0;
}

/* Frees what is still queued; the queue must have no users left. */
static void s_q_release(s_queue_t *q)
{
    if (!q->items)
        return;
    while (q->count) {
        q->free_item(&q->items[q->head]);
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    free(q->items);
    q->items = NULL;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->changed);
}

static void s_q_close(s_queue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

static void s_q_abort(s_queue_t *q)
{
    if (!q->items)
        return;
    pthread_mutex_lock(&q->lock);
    q->aborted = true;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

/* Records the pipeline's first error and stops every stage; later errors are consequences and
 * are dropped. */
static void s_pipe_fail(s_pipe_t *p, int rc, const char *klass, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void s_pipe_fail(s_pipe_t *p, int rc, const char *klass, bool retryable, const char *fmt, ...)
{
    pthread_mutex_lock(&p->lock);
    if (!atomic_load(&p->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->message, sizeof(p->message), fmt, ap);
        va_end(ap);
        p->rc = rc;
        snprintf(p->error_class, sizeof(p->error_class), "%s",
                 rc == RF_ECANCELED ? "cancelled" : klass);
        p->retryable = retryable;
        atomic_store(&p->failed, true);
    }
    pthread_mutex_unlock(&p->lock);
    s_q_abort(&p->frames);
    s_q_abort(&p->encode);
    s_q_abort(&p->packets);
}

/* True when the pipeline must stop: failed, or cancelled (recorded as the error). */
static bool s_pipe_stopped(s_pipe_t *p)
{
    if (atomic_load(&p->failed))
        return true;
    if (p->cancel && atomic_load(p->cancel)) {
        s_pipe_fail(p, RF_ECANCELED, "cancelled", true, "cancelled");
        return true;
    }
    return false;
}

/* Waits on q's condition for at most RF_SLOT_WAIT_MS (q->lock held), adding the wait to *waited. */
static void s_q_wait(s_queue_t *q, uint64_t *waited)
{
    uint64_t t0 = rf_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += RF_SLOT_WAIT_MS * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&q->changed, &q->lock, &ts);
    *waited += rf_now_ns() - t0;
}

/* Hands *item to the next stage. False (the item still ours) when the pipeline stopped. */
static bool s_q_push(s_pipe_t *p, s_queue_t *q, void **item, uint64_t *waited)
{
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->aborted)
            break;
        if (q->count < q->cap) {
            q->items[(q->head + q->count) % q->cap] = *item;
            q->count++;
            *item = NULL;
            pthread_cond_broadcast(&q->changed);
            break;
        }
        s_q_wait(q, waited);
        if (p->cancel && atomic_load(p->cancel)) {
            pthread_mutex_unlock(&q->lock);
            s_pipe_stopped(p); /* records the cancel and aborts q */
            pthread_mutex_lock(&q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return *item == NULL;
}

/* The next item, or NULL at the end (closed and empty) or when the pipeline stopped. */
static void *s_q_pop(s_pipe_t *p, s_queue_t *q, uint64_t *waited)
{
    void *item = NULL;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->aborted)
            break;
        if (q->count) {
            item = q->items[q->head];
            q->head = (q->head + 1) % q->cap;
            q->count--;
            pthread_cond_broadcast(&q->changed);
            break;
        }
        if (q->closed)
            break;
        s_q_wait(q, waited);
        if (p->cancel && atomic_load(p->cancel)) {
            pthread_mutex_unlock(&q->lock);
            s_pipe_stopped(p);
            pthread_mutex_lock(&q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

/* ---- stage 1: demux + decode ------------------------------------------------------------------- */

/* Decodes the slice and queues the frames of [ctx_pts, end_pts) - frames before start_pts only
 * when passes want context - with pts rescaled to the job's time base. */
static void *s_decode_main(void *arg)
{
    s_pipe_t *p = arg;
    const rf_assignment_t *a = p->a;
    s_stage_time_t *t = &p->time[S_DECODE];
    s_queue_t *out = p->chain ? &p->frames : &p->encode;
    rf_err_t err = {0};
    AVRational tb = rf_decoder_time_base(p->dec);
    int64_t low = p->chain ? a->ctx_pts : a->start_pts;
    int64_t next_index = p->chain ? a->frame_start - (int64_t)a->context_before : a->frame_start;
    AVFrame *f = av_frame_alloc();

    t->started_ns = rf_now_ns();
    if (!f) {
        s_pipe_fail(p, RF_ENOMEM, "internal", true, "decode: out of memory");
        goto out;
    }
    while (!s_pipe_stopped(p)) {
        int rc = rf_decoder_next(p->dec, f, &err);
        if (rc == 0)
            break;
        if (rc < 0) {
            s_pipe_fail(p, rc, "decode", true, "decoding frame %" PRId64 ": %s", next_index, err.msg);
            break;
        }
        if (f->pts == AV_NOPTS_VALUE) {
            s_pipe_fail(p, RF_EMEDIA, "decode", true,
                        "decoding frame %" PRId64 ": a frame without a timestamp", next_index);
            break;
        }
        int64_t pts = av_rescale_q(f->pts, tb, a->time_base);
        if (pts < low)
            continue;
        if (pts >= (a->tail_overlap ? a->tail_end_pts : a->end_pts))
            break; /* presentation order: nothing later belongs to this chunk */
        f->pts = pts;
        AVFrame *owned = av_frame_clone(f);
        if (!owned) {
            s_pipe_fail(p, RF_ENOMEM, "internal", true, "decode: out of memory");
            break;
        }
        if (!s_q_push(p, out, (void **)&owned, &t->wait_out_ns)) {
            av_frame_free(&owned);
            break;
        }
        next_index++;
    }
out:
    av_frame_free(&f);
    s_q_close(out); /* after any s_pipe_fail: the next stage sees the error before the end */
    t->ended_ns = rf_now_ns();
    return NULL;
}

/* ---- stage 2: passes (planar RGB fp32 in, the encoder's pixel format out) ---------------------- */

/* The CPU pass stage's converters and frame, made on the first frame. */
typedef struct s_cpu_pass {
    rf_pconvert_t *conv_in, *conv_out;
    rf_pframe_t pf;
} s_cpu_pass_t;

static void s_cpu_pass_release(s_cpu_pass_t *c)
{
    rf_pframe_release(&c->pf);
    rf_pconvert_destroy(&c->conv_in);
    rf_pconvert_destroy(&c->conv_out);
}

/* One frame through the CPU passes and on to the encode queue, in out_fmt (AV_PIX_FMT_NONE: the
 * job's format, else the frame's). False when the pipeline stops (the failure, if any,
 * recorded). */
static bool s_cpu_pass_frame(s_pipe_t *p, s_cpu_pass_t *c, const AVFrame *f, int64_t index,
                             int out_fmt)
{
    const rf_assignment_t *a = p->a;
    s_stage_time_t *t = &p->time[S_PASSES];
    rf_err_t err = {0};
    AVFrame *out = NULL;
    int rc;
    int fmt = out_fmt != AV_PIX_FMT_NONE          ? out_fmt
              : p->target_fmt != AV_PIX_FMT_NONE ? p->target_fmt
                                                 : f->format;
    if (!c->conv_in && (rc = rf_pconvert_new(f->width, f->height, f->format, f->color_range,
                                             f->colorspace, &c->conv_in, &err)) != 0) {
        s_pipe_fail(p, rc, "pass", false, "frame %" PRId64 ": %s", index, err.msg);
        return false;
    }
    /* The frames leave the passes at the chain's output size (a scale pass changes it). */
    int out_w = f->width, out_h = f->height;
    rf_pass_chain_output_size(p->chain, &out_w, &out_h);
    if (!c->conv_out && (rc = rf_pconvert_new(out_w, out_h, fmt, f->color_range, f->colorspace,
                                              &c->conv_out, &err)) != 0) {
        s_pipe_fail(p, rc, "pass", false, "frame %" PRId64 ": %s", index, err.msg);
        return false;
    }
    rc = rf_pconvert_to_rgb(c->conv_in, f, &c->pf, &err);
    if (!rc) {
        c->pf.index = index;
        c->pf.pts = f->pts;
        c->pf.context = f->pts < a->start_pts;
        rc = rf_pass_chain_run(p->chain, &c->pf, &err);
    }
    if (rc) {
        s_pipe_fail(p, rc, "pass", true, "frame %" PRId64 ": %s", index, err.msg);
        return false;
    }
    if (c->pf.context)
        return true; /* handed to the passes for their state, never encoded */
    if (!(out = av_frame_alloc())) {
        s_pipe_fail(p, RF_ENOMEM, "internal", true, "passes: out of memory");
        return false;
    }
    rc = rf_pconvert_from_rgb(c->conv_out, &c->pf, out, &err);
    if (rc) {
        s_pipe_fail(p, rc, "pass", true, "frame %" PRId64 ": %s", index, err.msg);
        av_frame_free(&out);
        return false;
    }
    av_frame_copy_props(out, f);
    if (!s_q_push(p, &p->encode, (void **)&out, &t->wait_out_ns)) {
        av_frame_free(&out);
        return false;
    }
    return true;
}

static void *s_passes_main(void *arg)
{
    s_pipe_t *p = arg;
    const rf_assignment_t *a = p->a;
    s_stage_time_t *t = &p->time[S_PASSES];
    s_cpu_pass_t cpu = {0};
    rf_err_t err = {0};
    AVFrame *f = NULL;
    /* Frames arrive contiguous from the first context frame. */
    int64_t index = a->frame_start - (int64_t)a->context_before;
    int rc;

    t->started_ns = rf_now_ns();
    for (;; index++) {
        av_frame_free(&f);
        f = s_q_pop(p, &p->frames, &t->wait_in_ns);
        if (!f || s_pipe_stopped(p))
            break;
        if (!s_cpu_pass_frame(p, &cpu, f, index, AV_PIX_FMT_NONE))
            break;
    }
    if (!atomic_load(&p->failed) && (rc = rf_pass_chain_flush(p->chain, &err)) != 0)
        s_pipe_fail(p, rc, "pass", true, "%s", err.msg);
    av_frame_free(&f);
    s_cpu_pass_release(&cpu);
    s_q_close(&p->encode);
    t->ended_ns = rf_now_ns();
    return NULL;
}

/* ---- stage 2 on a GPU (worker/gpu/gpu_pipe.h) --------------------------------------------------
 *
 * The same frames in, the same frames out, through the device's frame ring: decoded frames (NVDEC
 * surfaces or host frames) go up, through the passes (CUDA where a pass has a CUDA version) and
 * come back in the encoder's format, a few frames behind. When the device cannot take this chunk
 * (a pixel format the GPU conversion lacks, the device gone), the chunk's passes run on the CPU
 * instead, NVDEC frames downloaded first; the reason is logged. */

/* Moves every finished frame from the ring to the encode queue. */
static bool s_gpu_drain(s_pipe_t *p, rf_gpu_stage_t *st)
{
    rf_err_t err = {0};
    AVFrame *out = NULL;
    int rc;
    while ((rc = rf_gpu_stage_pop(st, &out, &err)) == 1)
        if (!s_q_push(p, &p->encode, (void **)&out, &p->time[S_PASSES].wait_out_ns)) {
            av_frame_free(&out);
            return false;
        }
    if (rc < 0) {
        s_pipe_fail(p, rc, "pass", true, "GPU: %s", err.msg);
        return false;
    }
    return true;
}

/* The format the encoder gets: the job's, else what the CPU decoder gives for this stream (NVDEC
 * hands NV12 for yuv420p), so a chunk encodes the same on a GPU worker as on a CPU one. */
static int s_gpu_out_format(const s_pipe_t *p, const AVFrame *f)
{
    if (p->target_fmt != AV_PIX_FMT_NONE)
        return p->target_fmt;
    if (f->format == AV_PIX_FMT_CUDA)
        return rf_decoder_params(p->dec)->format;
    return f->format;
}

static void *s_passes_gpu_main(void *arg)
{
    s_pipe_t *p = arg;
    const rf_assignment_t *a = p->a;
    s_stage_time_t *t = &p->time[S_PASSES];
    s_cpu_pass_t cpu = {0};
    rf_gpu_stage_t *st = NULL;
    bool on_cpu = false; /* the device turned this chunk down: CPU passes */
    int cpu_fmt = AV_PIX_FMT_NONE; /* ... into the format a CPU slot would encode */
    rf_err_t err = {0};
    AVFrame *f = NULL, *soft = av_frame_alloc();
    int64_t index = a->frame_start - (int64_t)a->context_before;
    int rc;

    t->started_ns = rf_now_ns();
    if (!soft) {
        s_pipe_fail(p, RF_ENOMEM, "internal", true, "passes: out of memory");
        goto out;
    }
    for (;; index++) {
        av_frame_free(&f);
        f = s_q_pop(p, &p->frames, &t->wait_in_ns);
        if (!f || s_pipe_stopped(p))
            break;
        if (!st && !on_cpu) {
            int sw = f->format;
            if (f->format == AV_PIX_FMT_CUDA && f->hw_frames_ctx)
                sw = ((AVHWFramesContext *)(void *)f->hw_frames_ctx->data)->sw_format;
            rf_gpu_stage_cfg_t cfg = {
                .device = p->env->gpu_device, .width = f->width, .height = f->height,
                .pix_fmt = sw, .color_range = f->color_range, .color_space = f->colorspace,
                .out_pix_fmt = s_gpu_out_format(p, f), .passes = a->pipeline,
                .npasses = a->npasses, .seed = p->seed, .frame_rate = a->frame_rate};
            rc = rf_gpu_stage_new(&cfg, &st, &err);
            if (rc) {
                /* The pass specs were checked when the CPU chain was made, so this is the
                 * device: a format it lacks (RF_EUNAVAIL, expected), or out of memory, or a CUDA
                 * error. The CPU does the chunk either way. */
                rf_log_ctx(rc == RF_EUNAVAIL ? RF_LOG_INFO : RF_LOG_WARN, COMP,
                           RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                           "chunk %u of job %s: passes on the CPU: %s", a->chunk, a->job_id,
                           err.msg);
                on_cpu = true;
                cpu_fmt = s_gpu_out_format(p, f);
            } else {
                rf_log_ctx(RF_LOG_DEBUG, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                           "chunk %u of job %s: %zu of %zu passes on GPU %d, %" PRIu64
                           " MiB of device memory",
                           a->chunk, a->job_id, rf_gpu_stage_on_device(st), a->npasses,
                           p->env->gpu_device, rf_gpu_stage_vram(st) >> 20);
            }
        }
        if (on_cpu) {
            const AVFrame *in = f;
            if (f->format == AV_PIX_FMT_CUDA) {
                av_frame_unref(soft);
                if ((rc = av_hwframe_transfer_data(soft, f, 0)) < 0 ||
                    (rc = av_frame_copy_props(soft, f)) < 0) {
                    s_pipe_fail(p, RF_EMEDIA, "decode", true,
                                "frame %" PRId64 ": downloading an NVDEC frame: %s", index,
                                av_err2str(rc));
                    break;
                }
                in = soft;
            }
            if (!s_cpu_pass_frame(p, &cpu, in, index, cpu_fmt))
                break;
            continue;
        }
        rc = rf_gpu_stage_push(st, f, index, f->pts < a->start_pts, &err);
        if (rc) {
            s_pipe_fail(p, rc, "pass", true, "frame %" PRId64 ": %s", index, err.msg);
            break;
        }
        if (!s_gpu_drain(p, st))
            break;
    }
    if (!atomic_load(&p->failed)) {
        rc = st ? rf_gpu_stage_finish(st, &err) : rf_pass_chain_flush(p->chain, &err);
        if (rc)
            s_pipe_fail(p, rc, "pass", true, "%s", err.msg);
        else if (st)
            s_gpu_drain(p, st);
    }
    if (st) {
        double ms = 0;
        uint64_t n = 0;
        rf_gpu_stage_device_ms(st, &ms, &n);
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: GPU %d ran %zu of %zu passes; device time %.1f ms for %"
                   PRIu64 " frames (upload + passes + download, per stream)",
                   a->chunk, a->job_id, p->env->gpu_device, rf_gpu_stage_on_device(st),
                   a->npasses, ms, n);
    }
out:
    av_frame_free(&f);
    av_frame_free(&soft);
    rf_gpu_stage_destroy(&st);
    s_cpu_pass_release(&cpu);
    s_q_close(&p->encode);
    t->ended_ns = rf_now_ns();
    return NULL;
}

/* ---- stage 3: encode + mux ---------------------------------------------------------------------- */

/* The encoder's packet hook: a reference to every packet goes to the verify stage. */
static int s_on_packet(void *arg, const AVPacket *pkt, rf_err_t *err)
{
    s_pipe_t *p = arg;
    AVPacket *copy = av_packet_clone(pkt);
    if (!copy)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (!s_q_push(p, &p->packets, (void **)&copy, &p->time[S_ENCODE].wait_out_ns)) {
        av_packet_free(&copy);
        return rf_err_set(err, RF_ECANCELED, "the pipeline stopped");
    }
    return 0;
}

/* The encoder's reconstruction hook (libx264 driven directly): a reference to every picture, as a
 * decoder of the chunk will see it, goes to the verify stage - no decode of our own output. */
static int s_on_recon(void *arg, const AVFrame *frame, rf_err_t *err)
{
    s_pipe_t *p = arg;
    AVFrame *copy = av_frame_clone(frame);
    if (!copy)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (!s_q_push(p, &p->packets, (void **)&copy, &p->time[S_ENCODE].wait_out_ns)) {
        av_frame_free(&copy);
        return rf_err_set(err, RF_ECANCELED, "the pipeline stopped");
    }
    return 0;
}

/* The hasher's per-frame hook (verify stage): keeps the list the coordinator can sample. */
static void s_on_hash(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_pipe_t *p = arg;
    size_t need = ((size_t)index + 1) * RF_SHA256_LEN;
    if (p->list_failed)
        return;
    if (need > p->list_cap) {
        size_t cap = p->list_cap ? p->list_cap * 2 : 256 * RF_SHA256_LEN;
        while (cap < need)
            cap *= 2;
        uint8_t *grown = realloc(p->list, cap);
        if (!grown) {
            p->list_failed = true;
            return;
        }
        p->list = grown;
        p->list_cap = cap;
    }
    memcpy(p->list + (size_t)index * RF_SHA256_LEN, sha, RF_SHA256_LEN);
}

/* Opens the encoder for the first frame's size and format, so a pass that changes either needs
 * nothing here, and the verify stage's decoder for the stream it will produce. */
static int s_encoder_open(s_pipe_t *p, const AVFrame *f, rf_err_t *err)
{
    const rf_assignment_t *a = p->a;
    const AVCodecParameters *par = rf_decoder_params(p->dec);
    const char *opt_keys[RF_SPEC_MAX_PARAMS], *opt_values[RF_SPEC_MAX_PARAMS];
    size_t nopts = a->noptions < RF_SPEC_MAX_PARAMS ? a->noptions : RF_SPEC_MAX_PARAMS;
    for (size_t i = 0; i < nopts; i++) {
        opt_keys[i] = a->options[i].key;
        opt_values[i] = a->options[i].value;
    }
    rf_encode_params_t ep = {
        .codec = a->codec,
        .crf = a->crf,
        .preset = s_opt(a->preset),
        .pix_fmt = f->format,
        .bitrate = a->bitrate,
        .gop = a->gop,
        .opt_keys = opt_keys,
        .opt_values = opt_values,
        .nopts = nopts,
        .width = f->width,
        .height = f->height,
        .frame_rate = a->frame_rate,
        .sample_aspect_ratio = par->sample_aspect_ratio,
        .color_range = par->color_range,
        .color_primaries = par->color_primaries,
        .color_trc = par->color_trc,
        .color_space = par->color_space,
        .chroma_location = par->chroma_location,
    };
    int rc = rf_encoder_open(&ep, p->out_path, &p->enc, err);
    if (rc)
        return rc;
    /* Nothing is queued yet: the verify stage learns the item type with the first item. */
    if (rf_encoder_on_recon(p->enc, s_on_recon, p) == 0) {
        p->recon = true;
        p->packets.free_item = s_free_frame;
        return rf_frame_hasher_new_frames(s_on_hash, p, &p->hasher, err);
    }
    rc = rf_frame_hasher_new(rf_encoder_params(p->enc), rf_encoder_time_base(p->enc), s_on_hash, p,
                             &p->hasher, err);
    if (rc)
        return rc;
    rf_encoder_on_packet(p->enc, s_on_packet, p);
    return 0;
}

/* A seam side part: the frames exactly as the main encoder would get them, losslessly. */
static int s_side_write(s_pipe_t *p, int which, AVFrame *w, rf_err_t *err)
{
    if (!p->side[which]) {
        const AVCodecParameters *par = rf_decoder_params(p->dec);
        rf_encode_params_t ep = {
            .codec = "ffv1",
            .crf = -1,
            .pix_fmt = w->format,
            .width = w->width,
            .height = w->height,
            .frame_rate = p->a->frame_rate,
            .sample_aspect_ratio = par->sample_aspect_ratio,
            .color_range = par->color_range,
            .color_primaries = par->color_primaries,
            .color_trc = par->color_trc,
            .color_space = par->color_space,
            .chroma_location = par->chroma_location,
        };
        int rc = rf_encoder_open(&ep, p->side_path[which], &p->side[which], err);
        if (rc)
            return rc;
    }
    w->pts = (int64_t)p->side_frames[which];
    int rc = rf_encoder_write(p->side[which], w, err);
    if (!rc)
        p->side_frames[which]++;
    return rc;
}

/* Scores frame f (the encoder's) with the critic, into p->tally. */
static int s_critic_frame(s_pipe_t *p, const AVFrame *f, rf_err_t *err)
{
    int rc;
    if (f->format == AV_PIX_FMT_CUDA) { /* a device frame for NVENC: scored from a host copy */
        if (!p->critic_soft && !(p->critic_soft = av_frame_alloc()))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        av_frame_unref(p->critic_soft);
        if ((rc = av_hwframe_transfer_data(p->critic_soft, f, 0)) < 0)
            return rf_err_set(err, RF_EMEDIA, "downloading the frame: %s", av_err2str(rc));
        p->critic_soft->color_range = f->color_range;
        p->critic_soft->colorspace = f->colorspace;
        f = p->critic_soft;
    }
    if (p->critic_conv && (p->critic_pf.width != f->width || p->critic_pf.height != f->height ||
                           p->critic_fmt != f->format)) {
        rf_pconvert_destroy(&p->critic_conv);
        rf_pframe_release(&p->critic_pf);
    }
    if (!p->critic_conv) {
        if ((rc = rf_pconvert_new(f->width, f->height, f->format, f->color_range, f->colorspace,
                                  &p->critic_conv, err)) != 0)
            return rc;
        p->critic_fmt = f->format;
    }
    if ((rc = rf_pconvert_to_rgb(p->critic_conv, f, &p->critic_pf, err)) != 0)
        return rc;
    float score = 0;
    if ((rc = rf_critic_score(p->critic, &p->critic_pf, &score, err)) != 0)
        return rc;
    rf_critic_tally_add(&p->tally, score);
    return 0;
}

static void *s_encode_main(void *arg)
{
    s_pipe_t *p = arg;
    const rf_assignment_t *a = p->a;
    s_stage_time_t *t = &p->time[S_ENCODE];
    rf_slot_fault_kind_t fault = p->env->fault.kind;
    uint64_t expected = (uint64_t)(a->frame_end - a->frame_start) - a->head_overlap;
    uint64_t head_left = a->head_overlap; /* the first frames go to the head part */
    struct SwsContext *sws = NULL;
    AVFrame *f = NULL, *conv = av_frame_alloc();
    rf_err_t err = {0};
    int rc;

    t->started_ns = rf_now_ns();
    if (!conv) {
        s_pipe_fail(p, RF_ENOMEM, "internal", true, "encode: out of memory");
        goto out;
    }
    for (;;) {
        av_frame_free(&f);
        f = s_q_pop(p, &p->encode, &t->wait_in_ns);
        if (!f || s_pipe_stopped(p))
            break;
        int64_t index = a->frame_start + (int64_t)(a->head_overlap - head_left) +
                        (int64_t)(p->encoded + p->dropped + p->side_frames[1]);
        AVFrame *w = f;
        if (!p->chain && p->target_fmt != AV_PIX_FMT_NONE && p->target_fmt != f->format) {
            if (s_convert(&sws, f, p->target_fmt, conv) != 0) {
                s_pipe_fail(p, RF_EMEDIA, "encode", false, "frame %" PRId64 ": cannot convert %s to %s",
                            index, av_get_pix_fmt_name(f->format), a->pix_fmt);
                break;
            }
            w = conv;
        }
        /* The critic gate scores the frame as it goes to the encoder, before the invisible
         * watermark (critic.h). */
        if (p->critic && (rc = s_critic_frame(p, w, &err)) != 0) {
            s_pipe_fail(p, rc, "pass", true, "critic at frame %" PRId64 ": %s", index, err.msg);
            break;
        }
        /* The watermark, the last pass of every job, on the luma of the frame the encoder gets:
         * the chroma stays exactly what the passes (or the source) made. */
        if (p->luma_mark) {
            if (w == f && av_frame_make_writable(f) < 0) {
                s_pipe_fail(p, RF_ENOMEM, "encode", true, "frame %" PRId64 ": out of memory", index);
                break;
            }
            if ((rc = rf_media_wm_embed_frame(p->luma_mark, w, &err)) != 0) {
                s_pipe_fail(p, rc, "pass", false, "pass 'watermark' at frame %" PRId64 ": %s", index,
                            err.msg);
                break;
            }
        }
        int side = head_left ? 0 : index >= a->frame_end ? 1 : -1;
        if (side >= 0) {
            if ((rc = s_side_write(p, side, w, &err)) != 0) {
                s_pipe_fail(p, rc, "encode", true, "frame %" PRId64 " (seam %s part): %s", index,
                            side ? "tail" : "head", err.msg);
                break;
            }
            if (side == 0)
                head_left--;
            continue;
        }
        if (!p->enc && (rc = s_encoder_open(p, w, &err)) != 0) {
            /* Another worker may have this encoder: retryable elsewhere. */
            s_pipe_fail(p, rc, "encode", true, "%s", err.msg);
            break;
        }
        if (fault == RF_SLOT_FAULT_WRONG_COUNT && expected > 1 &&
            p->encoded + p->dropped == expected - 1) {
            p->dropped++; /* test fault: the chunk's last frame never reaches the encoder */
            continue;
        }
        /* The encoder's clock is the chunk-local frame index (DESIGN §5). */
        w->pts = (int64_t)p->encoded;
        rc = rf_encoder_write(p->enc, w, &err);
        if (rc) {
            s_pipe_fail(p, rc, "encode", true, "frame %" PRId64 ": %s", index, err.msg);
            break;
        }
        p->encoded++;
        if (p->frames_done)
            atomic_store(p->frames_done, p->encoded);
        if (fault == RF_SLOT_FAULT_SLOW && !s_fault_sleep(p->env->fault.slow_ms, p->cancel)) {
            s_pipe_stopped(p);
            break;
        }
        if (fault == RF_SLOT_FAULT_HANG && p->cancel) {
            rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                       "chunk %u of job %s: test fault 'hang': stopping after frame %" PRId64
                       " until cancelled",
                       a->chunk, a->job_id, index);
            while (s_fault_sleep(RF_SLOT_FAULT_POLL_MS, p->cancel))
                ;
            s_pipe_stopped(p);
            break;
        }
    }
    if (atomic_load(&p->failed))
        goto out;
    if (p->encoded + p->dropped != expected || head_left || p->side_frames[1] != a->tail_overlap) {
        s_pipe_fail(p, RF_EMEDIA, "decode", true,
                    "decoded %" PRIu64 " frames for frames %" PRId64 "-%" PRId64 ", expected %" PRIu64,
                    p->encoded + p->dropped + (a->head_overlap - head_left) + p->side_frames[1],
                    a->frame_start, a->frame_end + (int64_t)a->tail_overlap - 1,
                    expected + a->head_overlap + a->tail_overlap);
        goto out;
    }
    for (int s = 0; s < 2; s++)
        if (p->side[s] && (rc = rf_encoder_finish(p->side[s], &err)) != 0) {
            s_pipe_fail(p, rc, "encode", true, "seam %s part: %s", s ? "tail" : "head", err.msg);
            goto out;
        }
    if (!p->enc) {
        s_pipe_fail(p, RF_EMEDIA, "decode", true, "no frame to encode");
        goto out;
    }
    rc = rf_encoder_finish(p->enc, &err); /* drains: the last packets go to the verify stage */
    if (rc)
        s_pipe_fail(p, rc, "encode", true, "%s", err.msg);
out:
    av_frame_free(&f);
    av_frame_free(&conv);
    sws_freeContext(sws);
    s_q_close(&p->packets);
    t->ended_ns = rf_now_ns();
    return NULL;
}

/* ---- stage 4: verify (hash every frame of the output: the encoder's reconstructions, or the ----
 * ---- encoder's packets decoded as they come) ------------------------------------------------- */

static void *s_verify_main(void *arg)
{
    s_pipe_t *p = arg;
    s_stage_time_t *t = &p->time[S_VERIFY];
    rf_err_t err = {0};
    void *item = NULL;
    int rc;

    t->started_ns = rf_now_ns();
    for (;;) {
        item = s_q_pop(p, &p->packets, &t->wait_in_ns);
        if (!item || s_pipe_stopped(p))
            break;
        /* the encode stage made the hasher (and set recon) before it pushed the first item */
        if (p->recon) {
            rc = rf_frame_hasher_send_frame(p->hasher, item, &err);
            av_frame_free((AVFrame **)&item);
        } else {
            rc = rf_frame_hasher_send(p->hasher, item, &err);
            av_packet_free((AVPacket **)&item);
        }
        if (rc) {
            s_pipe_fail(p, rc, "encode", true, "checking the encoded chunk: %s", err.msg);
            break;
        }
    }
    if (item)
        p->packets.free_item(&item);
    if (!atomic_load(&p->failed) && p->hasher) {
        rc = rf_frame_hasher_send(p->hasher, NULL, &err);
        if (rc) {
            s_pipe_fail(p, rc, "encode", true, "checking the encoded chunk: %s", err.msg);
        } else {
            p->hashed = rf_frame_hasher_frames(p->hasher);
            rf_frame_hasher_digest(p->hasher, p->digest);
        }
    }
    t->ended_ns = rf_now_ns();
    return NULL;
}

/* Logs where the chunk's wall time went, stage by stage: busy = alive and not blocked on a queue.
 * The stage with the highest busy share is the one to make faster. */
static void s_log_times(const s_pipe_t *p, uint64_t t0_ns)
{
    char line[512];
    size_t used = 0;
    double wall = (double)(rf_now_ns() - t0_ns) / 1e9;
    for (int i = 0; i < S_NSTAGES && used < sizeof(line); i++) {
        const s_stage_time_t *t = &p->time[i];
        if (!t->started_ns)
            continue;
        uint64_t alive = t->ended_ns > t->started_ns ? t->ended_ns - t->started_ns : 0;
        uint64_t waits = t->wait_in_ns + t->wait_out_ns;
        double busy = (double)(alive > waits ? alive - waits : 0) / 1e9;
        int n = snprintf(line + used, sizeof(line) - used,
                         "%s%s busy %.2f s (waited %.2f s for input, %.2f s for room)",
                         used ? "; " : "", s_stage_names[i], busy, (double)t->wait_in_ns / 1e9,
                         (double)t->wait_out_ns / 1e9);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(p->a->job_id, p->a->chunk, p->a->attempt, NULL),
               "chunk %u of job %s: %" PRIu64 " frames in %.2f s; %s", p->a->chunk, p->a->job_id,
               p->encoded, wall, line);
}

/* Frees one render's pipe and deletes its files. */
static void s_pipe_free(s_pipe_t *p)
{
    if (!p)
        return;
    s_q_release(&p->frames);
    s_q_release(&p->encode);
    s_q_release(&p->packets);
    rf_frame_hasher_destroy(&p->hasher);
    rf_encoder_destroy(&p->enc);
    for (int s = 0; s < 2; s++) {
        rf_encoder_destroy(&p->side[s]);
        if (*p->side_path[s])
            unlink(p->side_path[s]);
    }
    rf_pass_chain_destroy(&p->chain);
    rf_media_wm_pattern_destroy(&p->luma_mark);
    rf_decoder_destroy(&p->dec);
    rf_pconvert_destroy(&p->critic_conv);
    av_frame_free(&p->critic_soft);
    rf_pframe_release(&p->critic_pf);
    free(p->list);
    if (*p->out_path)
        unlink(p->out_path);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* One render of the chunk from the input file, the passes seeded with `seed`, into files of
 * workdir numbered `render`. On success *out is the finished render (files closed, frames hashed
 * and counted, critic scores in its tally); on failure res says why. */
static int s_render_once(const rf_assignment_t *a, const rf_slot_env_t *env,
                         const atomic_int *cancel, _Atomic uint64_t *frames_done, const char *input,
                         const char *workdir, uint64_t seed, unsigned render, rf_critic_t *critic,
                         s_pipe_t **out, rf_slot_result_t *res)
{
    rf_err_t err = {0};
    pthread_t threads[S_NSTAGES];
    bool started[S_NSTAGES] = {false};
    void *(*mains[S_NSTAGES])(void *) = {s_decode_main, s_passes_main, s_encode_main,
                                         s_verify_main};
    int rc = 0;
    uint64_t expected = (uint64_t)(a->frame_end - a->frame_start) - a->head_overlap; /* main part */
    uint64_t t0 = rf_now_ns();
    s_pipe_t *p = calloc(1, sizeof(*p));

    *out = NULL;
    if (!p)
        return s_fail(res, RF_ENOMEM, "internal", true, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    snprintf(p->out_path, sizeof(p->out_path), "%s/chunk-%u.nut", workdir, render);
    snprintf(p->side_path[0], sizeof(p->side_path[0]), "%s/seam-head-%u.nut", workdir, render);
    snprintf(p->side_path[1], sizeof(p->side_path[1]), "%s/seam-tail-%u.nut", workdir, render);
    p->a = a;
    p->env = env;
    p->cancel = cancel;
    p->frames_done = frames_done;
    p->seed = seed;
    p->critic = critic;
    rf_critic_tally_init(&p->tally);
    p->target_fmt = *a->pix_fmt ? av_get_pix_fmt(a->pix_fmt) : AV_PIX_FMT_NONE;
    if (*a->pix_fmt && p->target_fmt == AV_PIX_FMT_NONE) {
        rc = s_fail(res, RF_EINVAL, "encode", false, "unknown pixel format '%s'", a->pix_fmt);
        goto out;
    }
    if (s_q_init(&p->frames, RF_SLOT_QUEUE_DECODED, s_free_frame) ||
        s_q_init(&p->encode, RF_SLOT_QUEUE_TO_ENCODE, s_free_frame) ||
        s_q_init(&p->packets, RF_SLOT_QUEUE_PACKETS, s_free_packet)) {
        rc = s_fail(res, RF_ENOMEM, "internal", true, "out of memory");
        goto out;
    }
    /* A device and passes: decode as the worker's decode setting says (NVDEC frames stay on the
     * device for the GPU pass stage). Otherwise the CPU decoder, as always. */
    if (env->gpu && a->npasses) {
        mains[S_PASSES] = s_passes_gpu_main;
        rc = rf_decoder_open_mode(input, (rf_decode_mode_t)env->decode, env->gpu_device, &p->dec,
                                  &err);
    } else {
        rc = rf_decoder_open(input, &p->dec, &err);
    }
    if (rc) {
        rc = s_fail(res, rc, "decode", true, "%s", err.msg);
        goto out;
    }
    size_t npasses = a->npasses;
    const AVCodecParameters *par = rf_decoder_params(p->dec);
    /* The coordinator puts the watermark last in every pipeline (config/marks.c). When the
     * encoder's pixel format has planar luma, the encode stage marks it there instead of the
     * chain marking RGB: a job with no other pass then never leaves its pixel format. */
    if (npasses && !strcmp(a->pipeline[npasses - 1].name, "watermark") &&
        rf_media_wm_frame_format_ok(p->target_fmt != AV_PIX_FMT_NONE ? p->target_fmt : par->format)) {
        rc = rf_pass_watermark_pattern(&a->pipeline[npasses - 1], &p->luma_mark, &err);
        if (rc) {
            rc = s_fail(res, rc, "pass", false, "pass 'watermark': %s", err.msg);
            goto out;
        }
        npasses--;
    }
    if (npasses) {
        rc = rf_pass_chain_new(a->pipeline, npasses, seed, par->width, par->height, a->frame_rate,
                               &p->chain, &err);
        if (rc) {
            rc = s_fail(res, rc, "pass", false, "%s", err.msg);
            goto out;
        }
    }
    for (int i = 0; i < S_NSTAGES; i++) {
        if (i == S_PASSES && !p->chain)
            continue; /* empty pipeline: decoded frames go straight to the encoder */
        if (pthread_create(&threads[i], NULL, mains[i], p) != 0) {
            s_pipe_fail(p, RF_EIO, "internal", true, "cannot start the %s thread", s_stage_names[i]);
            break;
        }
        started[i] = true;
    }
    for (int i = 0; i < S_NSTAGES; i++)
        if (started[i])
            pthread_join(threads[i], NULL);
    if (atomic_load(&p->failed)) {
        rc = s_fail(res, p->rc, p->error_class, p->retryable, "%s", p->message);
        goto out;
    }
    s_log_times(p, t0);
    if (p->hashed + p->dropped != expected) {
        rc = s_fail(res, RF_EVERIFY, "encode", true,
                    "the encoded chunk decodes to %" PRIu64 " frames, expected %" PRIu64, p->hashed,
                    expected);
        goto out;
    }
out:
    if (rc) {
        s_pipe_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int rf_slot_render(const rf_assignment_t *a, const rf_slot_env_t *env, const atomic_int *cancel,
                   _Atomic uint64_t *frames_done, rf_slot_result_t *res)
{
    memset(res, 0, sizeof(*res));
    char input[4400] = "", workdir[4200];
    bool input_shared = false; /* input is a blob of the shared store: never deleted here */
    rf_err_t err = {0};
    s_pipe_t *p = NULL;        /* the render kept */
    rf_critic_t *critic = NULL;
    int rc = 0;
    uint64_t t0 = rf_now_ns();
    rf_slot_fault_kind_t fault = env->fault.kind;

    snprintf(workdir, sizeof(workdir), "%s/leases/%" PRIu64, env->cache_dir, a->lease);
    if (s_mkdirs(workdir)) {
        rc = s_fail(res, RF_EIO, "internal", true, "cannot create '%s': %s", workdir, strerror(errno));
        goto out;
    }
    rc = s_input(a, env, workdir, cancel, input, sizeof(input), &input_shared, res);
    if (rc)
        goto out;
    if ((rc = s_files(a, env, workdir, cancel, res)) != 0)
        goto out;
    if (a->critic.model) {
        rf_critic_opts_t co = {.model = a->critic.model, .device = a->critic.device,
                               .gpu_index = env->gpu ? env->gpu_device : 0,
                               .input_min = a->critic.input_min, .input_max = a->critic.input_max};
        if (!env->gpu && !strcmp(co.device, "auto"))
            co.device = "cpu";
        rc = rf_critic_new(&co, &critic, &err);
        if (rc) {
            rc = s_fail(res, rc, "pass", rc != RF_ECONFIG, "%s", err.msg);
            goto out;
        }
    }
    /* Without a critic one render; with one, renders with seeds seed, seed + 1, ... until one
     * scores at least the threshold or max_rerenders re-renders are spent; the best is kept (the
     * first of equals). */
    float best = 0;
    for (uint32_t k = 0; k <= (critic ? a->critic.max_rerenders : 0); k++) {
        s_pipe_t *r = NULL;
        if (k && frames_done)
            atomic_store(frames_done, 0);
        rc = s_render_once(a, env, cancel, frames_done, input, workdir, a->seed + k, k, critic, &r,
                           res);
        if (rc)
            goto out;
        if (!critic) {
            p = r;
            break;
        }
        rf_slot_critic_t *sc = &res->critic[k];
        sc->seed = a->seed + k;
        sc->score = r->tally.frames ? r->tally.min : 0.0f;
        sc->mean = rf_critic_tally_mean(&r->tally);
        sc->frames = r->tally.frames;
        res->ncritic = k + 1;
        if (!p || sc->score > best) {
            s_pipe_free(p);
            p = r;
            best = sc->score;
            res->critic_kept = k;
        } else {
            s_pipe_free(r);
        }
        bool passed = sc->score >= a->critic.threshold;
        rf_log_ctx(passed ? RF_LOG_INFO : RF_LOG_WARN, COMP,
                   RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: critic score %.4f (mean %.4f over %" PRIu64
                   " frames, seed %" PRIu64 ", %s) %s threshold %.4f%s",
                   a->chunk, a->job_id, sc->score, sc->mean, sc->frames, sc->seed,
                   rf_critic_device(critic), passed ? ">=" : "<", a->critic.threshold,
                   passed                           ? ""
                   : k < a->critic.max_rerenders    ? ": rendering again with the next seed"
                                                    : ": no re-render left, keeping the best");
        if (passed)
            break;
    }
    res->fps = (float)((double)p->encoded / ((double)(rf_now_ns() - t0) / 1e9));
    /* Checksums of what the coordinator will decode, not of what we fed the encoder. */
    res->frames = p->hashed;
    memcpy(res->digest, p->digest, sizeof(res->digest));
    if (!p->list_failed && p->list) {
        res->frame_list = p->list;
        res->frame_list_frames = p->hashed;
        p->list = NULL;
    }
    if (fault == RF_SLOT_FAULT_WRONG_COUNT) {
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: test fault 'wrong-count': dropped %" PRIu64
                   " frame, reporting %" PRIu64 " frames for %" PRIu64,
                   a->chunk, a->job_id, p->dropped, res->frames + p->dropped, res->frames);
        res->frames += p->dropped; /* the digest stays that of what was encoded */
    } else if (fault == RF_SLOT_FAULT_BAD_CHECKSUM) {
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, NULL),
                   "chunk %u of job %s: test fault 'bad-checksum': reporting a corrupt digest",
                   a->chunk, a->job_id);
        res->digest[0] ^= 0x01;
    }
    rf_blob_xfer_t up = {.sec = env->sec};
    rc = s_put(a, env, p->out_path, cancel, res->result_blob, &res->result_size, &up, &err);
    if (rc) {
        rc = s_fail(res, rc, "transfer", true, "uploading the result: %s", err.msg);
        goto out;
    }
    for (int s = 0; s < 2; s++) {
        if (!p->side[s])
            continue;
        const char *which = s ? "tail" : "head";
        rc = rf_media_checksum(p->side_path[s], &res->seam[s].frames, res->seam[s].digest, NULL,
                               NULL, &err);
        if (!rc && res->seam[s].frames != p->side_frames[s])
            rc = rf_err_set(&err, RF_EVERIFY, "decodes to %" PRIu64 " frames, expected %" PRIu64,
                            res->seam[s].frames, p->side_frames[s]);
        if (rc) {
            rc = s_fail(res, rc, "encode", true, "checking the seam %s part: %s", which, err.msg);
            goto out;
        }
        rc = s_put(a, env, p->side_path[s], cancel, res->seam[s].blob, &res->seam[s].size, &up,
                   &err);
        if (rc) {
            rc = s_fail(res, rc, "transfer", true, "uploading the seam %s part: %s", which, err.msg);
            goto out;
        }
    }
out:
    s_pipe_free(p);
    rf_critic_destroy(&critic);
    if (*a->input_blob && *input && !input_shared)
        unlink(input);
    rmdir(workdir);
    if (rc) {
        res->result_blob[0] = '\0';
        rf_slot_result_release(res);
    }
    res->rc = rc;
    return rc;
}

void rf_slot_result_release(rf_slot_result_t *res)
{
    free(res->frame_list);
    res->frame_list = NULL;
    res->frame_list_frames = 0;
}
