/* slot.c - one chunk, start to finish. See slot.h. */
#include "slot.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "blob.h"
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
    free(a);
    *ap = NULL;
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
        }
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

/* ---- bounded frame queue between the decode thread and the encode side ---------------------- */

typedef struct s_fqueue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    AVFrame *items[RF_SLOT_QUEUE_FRAMES];
    size_t head, count;
    bool closed;    /* the producer finished (rc says how) */
    bool aborted;   /* the consumer gave up: the producer must stop */
    int rc;
    rf_err_t err;
} s_fqueue_t;

/* Takes ownership of *f on success. Returns false when the consumer aborted. */
static bool s_fq_push(s_fqueue_t *q, AVFrame **f)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == RF_SLOT_QUEUE_FRAMES && !q->aborted)
        pthread_cond_wait(&q->changed, &q->lock);
    bool ok = !q->aborted;
    if (ok) {
        q->items[(q->head + q->count) % RF_SLOT_QUEUE_FRAMES] = *f;
        q->count++;
        *f = NULL;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

/* Returns a frame, or NULL at the end (q->rc tells whether the producer failed). */
static AVFrame *s_fq_pop(s_fqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    while (q->count == 0 && !q->closed)
        pthread_cond_wait(&q->changed, &q->lock);
    AVFrame *f = NULL;
    if (q->count) {
        f = q->items[q->head];
        q->head = (q->head + 1) % RF_SLOT_QUEUE_FRAMES;
        q->count--;
        pthread_cond_broadcast(&q->changed);
    }
    pthread_mutex_unlock(&q->lock);
    return f;
}

static void s_fq_finish(s_fqueue_t *q, int rc, const rf_err_t *err)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    q->rc = rc;
    if (err)
        q->err = *err;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

static void s_fq_abort(s_fqueue_t *q)
{
    pthread_mutex_lock(&q->lock);
    q->aborted = true;
    while (q->count) {
        av_frame_free(&q->items[q->head]);
        q->head = (q->head + 1) % RF_SLOT_QUEUE_FRAMES;
        q->count--;
    }
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
}

/* ---- decode thread ---------------------------------------------------------------------------- */

typedef struct s_decode_job {
    const rf_assignment_t *a;
    const char *input;
    const atomic_int *cancel;
    rf_decoder_t *dec;
    s_fqueue_t *q;
    bool want_context; /* context frames are needed only when there are passes */
} s_decode_job_t;

/* Decodes the slice and pushes the frames of [ctx_pts, end_pts) - frames before start_pts only
 * when passes want context - with pts rescaled to the job's time base. */
static void *s_decode_main(void *arg)
{
    s_decode_job_t *dj = arg;
    const rf_assignment_t *a = dj->a;
    rf_err_t err = {0};
    int rc = 0;
    AVRational tb = rf_decoder_time_base(dj->dec);
    AVFrame *f = av_frame_alloc();
    if (!f) {
        rc = rf_err_set(&err, RF_ENOMEM, "out of memory");
        goto out;
    }
    int64_t low = dj->want_context ? a->ctx_pts : a->start_pts;
    for (;;) {
        if (dj->cancel && atomic_load(dj->cancel)) {
            rc = rf_err_set(&err, RF_ECANCELED, "cancelled");
            break;
        }
        rc = rf_decoder_next(dj->dec, f, &err);
        if (rc <= 0)
            break;
        if (f->pts == AV_NOPTS_VALUE) {
            rc = rf_err_set(&err, RF_EMEDIA, "decoded a frame without a timestamp");
            break;
        }
        int64_t pts = av_rescale_q(f->pts, tb, a->time_base);
        if (pts < low)
            continue;
        if (pts >= a->end_pts) {
            rc = 0; /* presentation order: nothing later belongs to this chunk */
            break;
        }
        f->pts = pts;
        AVFrame *owned = av_frame_clone(f);
        if (!owned) {
            rc = rf_err_set(&err, RF_ENOMEM, "out of memory");
            break;
        }
        if (!s_fq_push(dj->q, &owned)) {
            av_frame_free(&owned);
            rc = 0;
            break;
        }
    }
    if (rc > 0)
        rc = 0;
out:
    av_frame_free(&f);
    s_fq_finish(dj->q, rc, &err);
    return NULL;
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

/* Where the input slice is: fetched into the cache (kept: a retry or a backup run reuses it). */
/* Fetches the input slice into this lease's own work folder. Not a shared cache: several slots
 * may want the same blob at once (jobs on one input share slices), and a slice is used once. */
static int s_input(const rf_assignment_t *a, const rf_slot_env_t *env, const char *workdir,
                   const atomic_int *cancel, char *path, size_t size, rf_slot_result_t *res)
{
    if (!*a->input_blob) {
        snprintf(path, size, "%s", a->input_path);
        return 0;
    }
    snprintf(path, size, "%s/input.nut", workdir);
    rf_err_t err = {0};
    int rc = rf_blob_fetch(env->zctx, env->blob_endpoint, a->input_blob, a->input_size, path,
                           RF_TRANSFER_TIMEOUT_MS, cancel, &err);
    if (rc)
        return s_fail(res, rc, "transfer", true, "fetching input %.12s: %s", a->input_blob, err.msg);
    return 0;
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

int rf_slot_render(const rf_assignment_t *a, const rf_slot_env_t *env, const atomic_int *cancel,
                   _Atomic uint64_t *frames_done, rf_slot_result_t *res)
{
    memset(res, 0, sizeof(*res));
    char input[4400] = "", workdir[4200], out_path[4400];
    rf_err_t err = {0};
    rf_decoder_t *dec = NULL;
    rf_encoder_t *enc = NULL;
    rf_pass_chain_t *chain = NULL;
    rf_pconvert_t *conv_in = NULL, *conv_out = NULL;
    struct SwsContext *sws = NULL;
    rf_pframe_t pf = {0};
    AVFrame *frame = NULL, *conv = av_frame_alloc();
    s_fqueue_t q;
    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.changed, NULL);
    pthread_t decoder;
    bool decoding = false;
    int rc = 0;
    uint64_t expected = (uint64_t)(a->frame_end - a->frame_start);
    uint64_t encoded = 0, t0 = rf_now_ms();
    uint64_t dropped = 0; /* frames the wrong-count test fault kept from the encoder */
    rf_slot_fault_kind_t fault = env->fault.kind;
    /* Frames arrive contiguous from the first one the queue carries: with passes the first
     * context frame, without them the chunk's first frame. */
    int64_t next_index = a->npasses ? a->frame_start - (int64_t)a->context_before : a->frame_start;
    const char *opt_keys[RF_SPEC_MAX_PARAMS], *opt_values[RF_SPEC_MAX_PARAMS];

    snprintf(workdir, sizeof(workdir), "%s/leases/%" PRIu64, env->cache_dir, a->lease);
    snprintf(out_path, sizeof(out_path), "%s/chunk.nut", workdir);
    if (!conv) {
        rc = s_fail(res, RF_ENOMEM, "internal", true, "out of memory");
        goto out;
    }
    if (s_mkdirs(workdir)) {
        rc = s_fail(res, RF_EIO, "internal", true, "cannot create '%s': %s", workdir, strerror(errno));
        goto out;
    }
    rc = s_input(a, env, workdir, cancel, input, sizeof(input), res);
    if (rc)
        goto out;
    rc = rf_decoder_open(input, &dec, &err);
    if (rc) {
        rc = s_fail(res, rc, "decode", true, "%s", err.msg);
        goto out;
    }
    const AVCodecParameters *par = rf_decoder_params(dec);
    if (a->npasses) {
        rc = rf_pass_chain_new(a->pipeline, a->npasses, a->seed, par->width, par->height,
                               a->frame_rate, &chain, &err);
        if (rc) {
            rc = s_fail(res, rc, "pass", false, "%s", err.msg);
            goto out;
        }
    }
    s_decode_job_t dj = {.a = a, .input = input, .cancel = cancel, .dec = dec, .q = &q,
                         .want_context = a->npasses > 0};
    if (pthread_create(&decoder, NULL, s_decode_main, &dj) != 0) {
        rc = s_fail(res, RF_EIO, "internal", true, "cannot start the decode thread");
        goto out;
    }
    decoding = true;

    for (;;) {
        av_frame_free(&frame);
        frame = s_fq_pop(&q);
        if (!frame)
            break;
        if (cancel && atomic_load(cancel)) {
            rc = s_fail(res, RF_ECANCELED, "cancelled", true, "cancelled");
            goto out;
        }
        bool context = frame->pts < a->start_pts;
        int64_t index = next_index++;
        const AVFrame *out = frame;
        int target_fmt = *a->pix_fmt ? av_get_pix_fmt(a->pix_fmt) : frame->format;
        if (target_fmt == AV_PIX_FMT_NONE) {
            rc = s_fail(res, RF_EINVAL, "encode", false, "unknown pixel format '%s'", a->pix_fmt);
            goto out;
        }
        if (chain) {
            if (!conv_in &&
                (rc = rf_pconvert_new(frame->width, frame->height, frame->format, frame->color_range,
                                      frame->colorspace, &conv_in, &err)) != 0) {
                rc = s_fail(res, rc, "pass", false, "%s", err.msg);
                goto out;
            }
            if (!conv_out &&
                (rc = rf_pconvert_new(frame->width, frame->height, target_fmt, frame->color_range,
                                      frame->colorspace, &conv_out, &err)) != 0) {
                rc = s_fail(res, rc, "pass", false, "%s", err.msg);
                goto out;
            }
            rc = rf_pconvert_to_rgb(conv_in, frame, &pf, &err);
            if (!rc) {
                pf.index = index;
                pf.pts = frame->pts;
                pf.context = context;
                rc = rf_pass_chain_run(chain, &pf, &err);
            }
            if (rc) {
                rc = s_fail(res, rc, "pass", true, "%s", err.msg);
                goto out;
            }
            if (context)
                continue;
            rc = rf_pconvert_from_rgb(conv_out, &pf, conv, &err);
            if (rc) {
                rc = s_fail(res, rc, "pass", true, "%s", err.msg);
                goto out;
            }
            av_frame_copy_props(conv, frame);
            out = conv;
        } else if (target_fmt != frame->format) {
            rc = s_convert(&sws, frame, target_fmt, conv);
            if (rc) {
                rc = s_fail(res, rc, "encode", false, "cannot convert %s to %s",
                            av_get_pix_fmt_name(frame->format), a->pix_fmt);
                goto out;
            }
            out = conv;
        }
        if (context)
            continue; /* without passes, context frames are not even decoded into the queue */
        if (!enc) {
            for (size_t i = 0; i < a->noptions && i < RF_SPEC_MAX_PARAMS; i++) {
                opt_keys[i] = a->options[i].key;
                opt_values[i] = a->options[i].value;
            }
            rf_encode_params_t p = {
                .codec = a->codec,
                .crf = a->crf,
                .preset = s_opt(a->preset),
                .pix_fmt = out->format,
                .bitrate = a->bitrate,
                .gop = a->gop,
                .opt_keys = opt_keys,
                .opt_values = opt_values,
                .nopts = a->noptions,
                .width = out->width,
                .height = out->height,
                .frame_rate = a->frame_rate,
                .sample_aspect_ratio = par->sample_aspect_ratio,
                .color_range = par->color_range,
                .color_primaries = par->color_primaries,
                .color_trc = par->color_trc,
                .color_space = par->color_space,
                .chroma_location = par->chroma_location,
            };
            rc = rf_encoder_open(&p, out_path, &enc, &err);
            if (rc) {
                /* Another worker may have this encoder: retryable elsewhere. */
                rc = s_fail(res, rc, "encode", true, "%s", err.msg);
                goto out;
            }
        }
        if (fault == RF_SLOT_FAULT_WRONG_COUNT && expected > 1 && encoded + dropped == expected - 1) {
            dropped++; /* test fault: the chunk's last frame never reaches the encoder */
            continue;
        }
        /* The encoder's clock is the chunk-local frame index (DESIGN §5). */
        AVFrame *w = (AVFrame *)out;
        int64_t src_pts = w->pts;
        w->pts = (int64_t)encoded;
        rc = rf_encoder_write(enc, w, &err);
        w->pts = src_pts;
        if (rc) {
            rc = s_fail(res, rc, "encode", true, "frame %" PRId64 ": %s",
                        a->frame_start + (int64_t)encoded, err.msg);
            goto out;
        }
        encoded++;
        if (frames_done)
            atomic_store(frames_done, encoded);
        if (fault == RF_SLOT_FAULT_SLOW && !s_fault_sleep(env->fault.slow_ms, cancel)) {
            rc = s_fail(res, RF_ECANCELED, "cancelled", true, "cancelled");
            goto out;
        }
        if (fault == RF_SLOT_FAULT_HANG && cancel) {
            RF_WARN(COMP, "chunk %u of job %s: test fault 'hang': stopping after frame %" PRId64
                    " until cancelled", a->chunk, a->job_id, a->frame_start);
            while (s_fault_sleep(RF_SLOT_FAULT_POLL_MS, cancel))
                ;
            rc = s_fail(res, RF_ECANCELED, "cancelled", true, "cancelled");
            goto out;
        }
    }
    pthread_join(decoder, NULL);
    decoding = false;
    if (q.rc) {
        rc = s_fail(res, q.rc, "decode", q.rc != RF_ECANCELED, "%s", q.err.msg);
        goto out;
    }
    if (chain && (rc = rf_pass_chain_flush(chain, &err)) != 0) {
        rc = s_fail(res, rc, "pass", true, "%s", err.msg);
        goto out;
    }
    if (encoded + dropped != expected) {
        rc = s_fail(res, RF_EMEDIA, "decode", true,
                    "decoded %" PRIu64 " frames for frames %" PRId64 "-%" PRId64 ", expected %" PRIu64,
                    encoded, a->frame_start, a->frame_end - 1, expected);
        goto out;
    }
    rc = rf_encoder_finish(enc, &err);
    if (rc) {
        rc = s_fail(res, rc, "encode", true, "%s", err.msg);
        goto out;
    }
    rf_encoder_destroy(&enc);
    double secs = (double)(rf_now_ms() - t0) / 1000.0;
    res->fps = secs > 0 ? (float)((double)encoded / secs) : 0;
    /* Checksums of what the coordinator will decode, not of what we fed the encoder. */
    rc = rf_media_checksum(out_path, &res->frames, res->digest, NULL, NULL, &err);
    if (rc) {
        rc = s_fail(res, rc, "encode", true, "checking the encoded chunk: %s", err.msg);
        goto out;
    }
    if (res->frames + dropped != expected) {
        rc = s_fail(res, RF_EVERIFY, "encode", true,
                    "the encoded chunk decodes to %" PRIu64 " frames, expected %" PRIu64, res->frames,
                    expected);
        goto out;
    }
    if (fault == RF_SLOT_FAULT_WRONG_COUNT) {
        RF_WARN(COMP, "chunk %u of job %s: test fault 'wrong-count': dropped %" PRIu64
                " frame, reporting %" PRIu64 " frames for %" PRIu64, a->chunk, a->job_id, dropped,
                expected, res->frames);
        res->frames = expected; /* the digest stays that of what was encoded */
    } else if (fault == RF_SLOT_FAULT_BAD_CHECKSUM) {
        RF_WARN(COMP, "chunk %u of job %s: test fault 'bad-checksum': reporting a corrupt digest",
                a->chunk, a->job_id);
        res->digest[0] ^= 0x01;
    }
    rc = rf_blob_upload(env->zctx, env->blob_endpoint, out_path, res->result_blob, &res->result_size,
                        RF_TRANSFER_TIMEOUT_MS, cancel, &err);
    if (rc) {
        rc = s_fail(res, rc, "transfer", true, "uploading the result: %s", err.msg);
        goto out;
    }
out:
    if (decoding) {
        s_fq_abort(&q);
        pthread_join(decoder, NULL);
    }
    s_fq_abort(&q);
    av_frame_free(&frame);
    av_frame_free(&conv);
    rf_pframe_release(&pf);
    rf_pconvert_destroy(&conv_in);
    rf_pconvert_destroy(&conv_out);
    sws_freeContext(sws);
    rf_pass_chain_destroy(&chain);
    rf_encoder_destroy(&enc);
    rf_decoder_destroy(&dec);
    pthread_mutex_destroy(&q.lock);
    pthread_cond_destroy(&q.changed);
    unlink(out_path);
    if (*a->input_blob && *input)
        unlink(input);
    rmdir(workdir);
    res->rc = rc;
    return rc;
}
