/* gpu_pipe.c - the passes on a CUDA device (see gpu_pipe.h): placement, formats, VRAM arithmetic,
 * the device chain and the slot's frame ring. All CUDA calls go through gpu_kern.h.
 */
#include "gpu_pipe.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/hwcontext.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>

#include "builtin.h"
#include "gpu_kern.h"
#include "media.h"

#define RF_GPU_RING_MAX 8
#define S_H2D 1
#define S_D2H 2

/* ---- what runs where ------------------------------------------------------------------------- */

static const char *const s_cuda_passes[] = {"color-match", "deflicker", "grade", "scale",
                                            "sharpen"};

bool rf_gpu_pass_has_cuda(const char *name)
{
    if (!name || !rf_pass_builtin_only(name))
        return false;
    for (size_t i = 0; i < sizeof s_cuda_passes / sizeof s_cuda_passes[0]; i++)
        if (!strcmp(s_cuda_passes[i], name))
            return true;
    return false;
}

size_t rf_gpu_pass_placement(const rf_pass_spec_t *passes, size_t n, bool device, bool *on_cuda)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        on_cuda[i] = device && rf_gpu_pass_has_cuda(passes[i].name);
        count += on_cuda[i];
    }
    return count;
}

/* ---- formats -----------------------------------------------------------------------------------
 */

int rf_gpu_yuv_layout(int pix_fmt, int width, int height, rf_gyuv_t *out, rf_err_t *err)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)pix_fmt);
    if (!d)
        return rf_err_set(err, RF_EUNAVAIL, "unknown pixel format %d", pix_fmt);
    const uint64_t refused = AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM |
                             AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_HWACCEL |
                             AV_PIX_FMT_FLAG_ALPHA;
    if ((d->flags & refused) || d->nb_components != 3)
        return rf_err_set(err, RF_EUNAVAIL,
                          "pixel format '%s' is not three-component little-endian YUV", d->name);
    if (d->log2_chroma_w > 1 || d->log2_chroma_h > 1)
        return rf_err_set(err, RF_EUNAVAIL, "pixel format '%s': chroma subsampled more than 2:1",
                          d->name);
    const int depth = d->comp[0].depth;
    const int bytes = depth > 8 ? 2 : 1;
    if (depth < 8 || depth > 16 || width <= 0 || height <= 0)
        return rf_err_set(err, RF_EUNAVAIL, "pixel format '%s' at %dx%d: not 8..16 bits", d->name,
                          width, height);
    memset(out, 0, sizeof *out);
    out->width = width;
    out->height = height;
    out->depth = depth;
    out->cw_log2 = d->log2_chroma_w;
    out->ch_log2 = d->log2_chroma_h;
    out->bytes = bytes;
    for (int c = 0; c < 3; c++) {
        const AVComponentDescriptor *cd = &d->comp[c];
        if (cd->depth != depth || cd->shift + depth > 8 * bytes ||
            (cd->step != bytes && cd->step != 2 * bytes) || cd->plane > 2)
            return rf_err_set(err, RF_EUNAVAIL, "pixel format '%s': unusual component layout",
                              d->name);
        out->plane[c] = cd->plane;
        out->step[c] = cd->step;
        out->offset[c] = cd->offset;
        out->shift[c] = cd->shift;
    }
    return 0;
}

size_t rf_gpu_packed_size(const rf_gyuv_t *l, size_t offset[3], int pitch[3])
{
    size_t total = 0;
    int rows[3] = {0, 0, 0};
    for (int p = 0; p < 3; p++)
        pitch[p] = 0;
    for (int c = 0; c < 3; c++) {
        const int p = l->plane[c];
        const int w = c ? (l->width + (1 << l->cw_log2) - 1) >> l->cw_log2 : l->width;
        const int h = c ? (l->height + (1 << l->ch_log2) - 1) >> l->ch_log2 : l->height;
        const int bytes = w * l->step[c];
        if (bytes > pitch[p])
            pitch[p] = bytes;
        rows[p] = h;
    }
    for (int p = 0; p < 3; p++) {
        offset[p] = total;
        total += (size_t)pitch[p] * (size_t)rows[p];
    }
    return total;
}

/* ---- VRAM --------------------------------------------------------------------------------------
 */

uint64_t rf_gpu_slot_vram(int in_w, int in_h, int out_w, int out_h, int ring, bool nvdec)
{
    const uint64_t in_px = (uint64_t)in_w * (uint64_t)in_h;
    const uint64_t out_px = (uint64_t)out_w * (uint64_t)out_h;
    const uint64_t big_px = in_px > out_px ? in_px : out_px;
    /* per ring slot: raw input (16-bit 4:4:4 at worst), RGB fp32 in, raw output (16-bit 4:4:4) */
    const uint64_t per_frame = in_px * 6 + in_px * 12 + out_px * 6;
    /* chain: RGB fp32 out (scale), 16-bit 4:4:4 out, one fp32 scratch plane */
    const uint64_t chain = out_px * 12 + out_px * 6 + big_px * 4;
    /* NVDEC's pool, NV12 stored at 16 bits per sample (P010 and NV12 alike, at worst) */
    const uint64_t surfaces = nvdec ? (uint64_t)RF_GPU_NVDEC_SURFACES * in_px * 3 : 0;
    const uint64_t total = (uint64_t)ring * per_frame + chain + surfaces;
    const uint64_t mib = 1ULL << 20;
    return (total + mib - 1) / mib * mib;
}

int rf_gpu_plan_slots(int ngpus, long cores, uint64_t free_vram, uint64_t per_slot, int requested,
                      uint64_t *advertised)
{
    const int feedable = cores / 4 > 0 ? (int)(cores / 4) : 1;
    const uint64_t usable = free_vram > RF_GPU_CONTEXT_BYTES ? free_vram - RF_GPU_CONTEXT_BYTES : 0;
    int slots;
    if (requested > 0) {
        slots = requested;
    } else if (ngpus > 0) {
        /* cores / 4 encoders in all, spread over the GPUs, at least one slot per GPU */
        const uint64_t fit = per_slot ? usable / per_slot : 1;
        const int want = (feedable + ngpus - 1) / ngpus;
        const int per_gpu = (uint64_t)want < fit ? want : (int)fit;
        slots = ngpus * (per_gpu > 0 ? per_gpu : 1);
    } else {
        slots = feedable;
    }
    *advertised = 0;
    if (ngpus > 0) {
        /* Slots spread over the GPUs round-robin: the busiest one holds ceil(slots / ngpus). */
        const uint64_t on_one = (uint64_t)((slots + ngpus - 1) / ngpus);
        const uint64_t held = on_one * per_slot;
        *advertised = usable > held ? usable - held : 0;
    }
    return slots;
}

/* ---- device buffers ----------------------------------------------------------------------------
 */

/* A device allocation counted in *total. */
static const char *s_dalloc(void **ptr, size_t bytes, uint64_t *total)
{
    const char *e = rf_gk_malloc(ptr, bytes);
    if (!e)
        *total += bytes;
    return e;
}

static int s_cuda_fail(rf_err_t *err, const char *what, const char *cuda)
{
    return rf_err_set(err, RF_EIO, "%s: CUDA: %s", what, cuda);
}

/* ---- the chain on the device -------------------------------------------------------------------
 */

typedef enum s_kind { S_CPU, S_COLORMATCH, S_DEFLICKER, S_GRADE, S_SCALE, S_SHARPEN } s_kind_t;

typedef struct s_gframe {
    int64_t index;
    int64_t pts;
    bool context;
    int width, height;
    float *plane[3]; /* device */
} s_gframe_t;

typedef struct s_gstage {
    const rf_pass_vtable_t *vt;
    void *state; /* the CPU pass's state (the chain's) */
    s_kind_t kind;
    int in_w, in_h, out_w, out_h;
    float *out[3];         /* device planes for a size change (scale, a resizing CPU pass) */
    float *tmp;            /* scratch plane (sharpen, scale) */
    double *dsums, *hsums; /* per-row sums, device and pinned host */
    float *hpixel;         /* pinned: one pixel (color-match's shift) */
    double *dweight;       /* sharpen's weights */
    int *dindex[2];        /* scale's filters, x and y */
    double *dfilter[2];
} s_gstage_t;

struct rf_gpu_chain {
    rf_pass_chain_t *cpu; /* made by rf_pass_chain_new: the states, the sizes, the flush */
    s_gstage_t *st;
    size_t n, on_device;
    int width, height, out_width, out_height;
    void *stream; /* the compute stream (the chain's own, or the stage's) */
    bool own_stream;
    rf_pframe_t host; /* frames visiting a CPU pass */
    float *in[3];     /* device input planes for rf_gpu_chain_run_host */
    uint64_t vram;
};

static s_kind_t s_kind_of(const char *name)
{
    if (!strcmp(name, "color-match"))
        return S_COLORMATCH;
    if (!strcmp(name, "deflicker"))
        return S_DEFLICKER;
    if (!strcmp(name, "grade"))
        return S_GRADE;
    if (!strcmp(name, "scale"))
        return S_SCALE;
    if (!strcmp(name, "sharpen"))
        return S_SHARPEN;
    return S_CPU;
}

static const char *s_planes_alloc(float *p[3], size_t n, uint64_t *total)
{
    const char *e = NULL;
    for (int i = 0; i < 3 && !e; i++)
        e = s_dalloc((void **)&p[i], n * sizeof(float), total);
    return e;
}

/* Device resources of stage s (its CPU state already made). */
static const char *s_stage_setup(rf_gpu_chain_t *c, s_gstage_t *s)
{
    const char *e = NULL;
    uint64_t *t = &c->vram;
    const size_t in_px = (size_t)s->in_w * (size_t)s->in_h;
    const size_t out_px = (size_t)s->out_w * (size_t)s->out_h;
    switch (s->kind) {
    case S_DEFLICKER:
    case S_COLORMATCH: {
        const size_t n = 6 * (size_t)s->in_h;
        e = s_dalloc((void **)&s->dsums, n * sizeof(double), t);
        if (!e)
            e = rf_gk_host_alloc((void **)&s->hsums, n * sizeof(double));
        if (!e)
            e = rf_gk_host_alloc((void **)&s->hpixel, 3 * sizeof(float));
        break;
    }
    case S_SHARPEN: {
        int w, h, half;
        double amount, threshold;
        const double *weight;
        rf_sharpen_params(s->state, &w, &h, &amount, &threshold, &half, &weight);
        e = s_dalloc((void **)&s->tmp, in_px * sizeof(float), t);
        if (!e)
            e = s_dalloc((void **)&s->dweight, (size_t)(half + 1) * sizeof(double), t);
        if (!e)
            e = rf_gk_copy2d(s->dweight, 0, weight, 0, (size_t)(half + 1) * sizeof(double), 1,
                             S_H2D, c->stream);
        break;
    }
    case S_SCALE: {
        int in_w, in_h;
        rf_scale_axis_t ax[2];
        rf_scale_params(s->state, &in_w, &in_h, &ax[0], &ax[1]);
        e = s_dalloc((void **)&s->tmp, (size_t)s->out_w * (size_t)s->in_h * sizeof(float), t);
        for (int a = 0; a < 2 && !e; a++) {
            const size_t n = (size_t)ax[a].out * (size_t)ax[a].taps;
            e = s_dalloc((void **)&s->dindex[a], n * sizeof(int), t);
            if (!e)
                e = s_dalloc((void **)&s->dfilter[a], n * sizeof(double), t);
            if (!e)
                e = rf_gk_copy2d(s->dindex[a], 0, ax[a].index, 0, n * sizeof(int), 1, S_H2D,
                                 c->stream);
            if (!e)
                e = rf_gk_copy2d(s->dfilter[a], 0, ax[a].weight, 0, n * sizeof(double), 1, S_H2D,
                                 c->stream);
        }
        break;
    }
    case S_GRADE:
        break;
    case S_CPU:
        break;
    }
    if (!e && (s->out_w != s->in_w || s->out_h != s->in_h))
        e = s_planes_alloc(s->out, out_px, t);
    if (!e)
        e = rf_gk_stream_sync(c->stream); /* the weights' host arrays stay the state's */
    return e;
}

static void s_stage_release(s_gstage_t *s)
{
    for (int p = 0; p < 3; p++)
        rf_gk_free(s->out[p]);
    rf_gk_free(s->tmp);
    rf_gk_free(s->dsums);
    rf_gk_host_free(s->hsums);
    rf_gk_host_free(s->hpixel);
    rf_gk_free(s->dweight);
    for (int a = 0; a < 2; a++) {
        rf_gk_free(s->dindex[a]);
        rf_gk_free(s->dfilter[a]);
    }
}

void rf_gpu_chain_destroy(rf_gpu_chain_t **cp)
{
    if (!cp || !*cp)
        return;
    rf_gpu_chain_t *c = *cp;
    if (c->stream)
        rf_gk_stream_sync(c->stream);
    for (size_t i = 0; i < c->n; i++)
        s_stage_release(&c->st[i]);
    free(c->st);
    for (int p = 0; p < 3; p++)
        rf_gk_free(c->in[p]);
    rf_pframe_release(&c->host);
    if (c->own_stream)
        rf_gk_stream_destroy(c->stream);
    rf_pass_chain_destroy(&c->cpu);
    free(c);
    *cp = NULL;
}

/* The chain, on `stream` (NULL: its own). */
static int s_chain_new(int device, const rf_pass_spec_t *passes, size_t npasses, uint64_t seed,
                       int width, int height, AVRational frame_rate, bool cpu_only, void *stream,
                       rf_gpu_chain_t **out, rf_err_t *err)
{
    int rc = 0;
    const char *e = NULL;
    rf_gpu_chain_t *c = NULL;

    *out = NULL;
    if ((e = rf_gk_device_open(device)) != NULL)
        return rf_err_set(err, RF_EUNAVAIL, "GPU %d: %s", device, e);
    c = calloc(1, sizeof *c);
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    rc = rf_pass_chain_new(passes, npasses, seed, width, height, frame_rate, &c->cpu, err);
    if (rc < 0)
        goto cleanup;
    c->width = width;
    c->height = height;
    rf_pass_chain_output_size(c->cpu, &c->out_width, &c->out_height);
    if (stream) {
        c->stream = stream;
    } else if ((e = rf_gk_stream_new(&c->stream)) != NULL) {
        rc = s_cuda_fail(err, "creating a stream", e);
        goto cleanup;
    } else {
        c->own_stream = true;
    }
    c->n = rf_pass_chain_length(c->cpu);
    c->st = calloc(c->n ? c->n : 1, sizeof *c->st);
    if (!c->st) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    int w = width, h = height;
    for (size_t i = 0; i < c->n; i++) {
        s_gstage_t *s = &c->st[i];
        rf_pass_chain_stage(c->cpu, i, &s->vt, &s->state, &s->out_w, &s->out_h);
        s->in_w = w;
        s->in_h = h;
        s->kind = !cpu_only && rf_gpu_pass_has_cuda(s->vt->name) &&
                          s->vt == rf_pass_builtin_only(s->vt->name)
                      ? s_kind_of(s->vt->name)
                      : S_CPU;
        c->on_device += s->kind != S_CPU;
        if ((e = s_stage_setup(c, s)) != NULL) {
            rc = s_cuda_fail(err, "allocating the passes' device memory", e);
            goto cleanup;
        }
        w = s->out_w;
        h = s->out_h;
    }
    *out = c;
    c = NULL;
cleanup:
    rf_gpu_chain_destroy(&c);
    return rc;
}

int rf_gpu_chain_new(int device, const rf_pass_spec_t *passes, size_t npasses, uint64_t seed,
                     int width, int height, AVRational frame_rate, bool cpu_only,
                     rf_gpu_chain_t **out, rf_err_t *err)
{
    return s_chain_new(device, passes, npasses, seed, width, height, frame_rate, cpu_only, NULL,
                       out, err);
}

/* The pass's error with "pass 'NAME' at frame N: " in front, as passes.c words it. */
static int s_pass_error(rf_err_t *err, rf_err_t *local, int rc, const char *name, int64_t index)
{
    if (local->code == 0 || local->msg[0] == '\0')
        rf_err_set(local, rc, "%s", rf_strerror(rc));
    return rf_err_set(err, rc, "pass '%s' at frame %lld: %s", name, (long long)index, local->msg);
}

static int s_pass_cuda(rf_err_t *err, const char *name, int64_t index, const char *cuda)
{
    return rf_err_set(err, RF_EIO, "pass '%s' at frame %lld: CUDA: %s", name, (long long)index,
                      cuda);
}

static int s_run_deflicker(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    rf_err_t local = {0};
    int rc = rf_deflicker_begin(s->state, f->index, &local);
    if (rc < 0)
        return s_pass_error(err, &local, rc, s->vt->name, f->index);
    const char *e =
        rf_gk_luma_rows((const float *const *)f->plane, f->width, f->height, s->dsums, c->stream);
    if (!e)
        e = rf_gk_copy2d(s->hsums, 0, s->dsums, 0, (size_t)f->height * sizeof(double), 1, S_D2H,
                         c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream);
    if (e)
        return s_pass_cuda(err, s->vt->name, f->index, e);
    double total = 0.0; /* rows in order, as deflicker.c sums them */
    for (int y = 0; y < f->height; y++)
        total += s->hsums[y];
    const double n = (double)f->width * (double)f->height;
    const double gain = rf_deflicker_gain(s->state, n > 0 ? total / n : 0.0);
    if (gain == 1.0)
        return 0;
    e = rf_gk_gain(f->plane, (size_t)f->width * (size_t)f->height, (float)gain, c->stream);
    return e ? s_pass_cuda(err, s->vt->name, f->index, e) : 0;
}

static int s_run_colormatch(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    rf_err_t local = {0};
    int step = 1;
    int rc = rf_colormatch_begin(s->state, f->index, &step, &local);
    if (rc < 0)
        return s_pass_error(err, &local, rc, s->vt->name, f->index);
    if (rc == 0)
        return 0;
    /* The shift of color.c's one-pass variance: the first sample's Oklab, computed on the host by
     * the same function. */
    const char *e = NULL;
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(&s->hpixel[p], 0, f->plane[p], 0, sizeof(float), 1, S_D2H, c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream);
    if (e)
        return s_pass_cuda(err, s->vt->name, f->index, e);
    const double first[3] = {s->hpixel[0], s->hpixel[1], s->hpixel[2]};
    double shift[3];
    rf_color_srgb_to_oklab(first, shift);
    const int nrows = (f->height + step - 1) / step, ncols = (f->width + step - 1) / step;
    e = rf_gk_lab_rows((const float *const *)f->plane, f->width, f->height, step, shift, s->dsums,
                       c->stream);
    if (!e)
        e = rf_gk_copy2d(s->hsums, 0, s->dsums, 0, 6 * (size_t)nrows * sizeof(double), 1, S_D2H,
                         c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream);
    if (e)
        return s_pass_cuda(err, s->vt->name, f->index, e);
    double sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0};
    for (int r = 0; r < nrows; r++)
        for (int k = 0; k < 3; k++) {
            sum[k] += s->hsums[6 * r + k];
            sq[k] += s->hsums[6 * r + 3 + k];
        }
    const double n = (double)nrows * (double)ncols;
    rf_color_stats_t now;
    for (int k = 0; k < 3; k++) {
        const double mean = sum[k] / n;
        const double var = sq[k] / n - mean * mean;
        now.mean[k] = shift[k] + mean;
        now.std[k] = var > 0 ? sqrt(var) : 0.0;
    }
    rf_gcolormatch_t kc;
    rf_colormatch_correction(s->state, &now, kc.mean, kc.gain, kc.ref_mean, &kc.strength);
    e = rf_gk_colormatch(f->plane, (size_t)f->width * (size_t)f->height, &kc, c->stream);
    return e ? s_pass_cuda(err, s->vt->name, f->index, e) : 0;
}

static int s_run_grade(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    bool steps[4];
    rf_ggrade_t k;
    if (!rf_grade_params(s->state, steps, &k.gain, &k.contrast, &k.saturation, &k.inv_gamma))
        return 0;
    k.do_exposure = steps[0];
    k.do_contrast = steps[1];
    k.do_saturation = steps[2];
    k.do_gamma = steps[3];
    const char *e = rf_gk_grade(f->plane, (size_t)f->width * (size_t)f->height, &k, c->stream);
    return e ? s_pass_cuda(err, s->vt->name, f->index, e) : 0;
}

static int s_run_sharpen(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    int w, h, half;
    double amount, threshold;
    const double *weight;
    const bool active = rf_sharpen_params(s->state, &w, &h, &amount, &threshold, &half, &weight);
    if (f->width != w || f->height != h)
        return rf_err_set(err, RF_EINVAL,
                          "pass '%s' at frame %lld: frame is %dx%d, the pass was made for %dx%d",
                          s->vt->name, (long long)f->index, f->width, f->height, w, h);
    if (!active)
        return 0;
    const char *e = NULL;
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_sharpen(f->plane[p], s->tmp, w, h, s->dweight, half, amount, threshold,
                          c->stream);
    return e ? s_pass_cuda(err, s->vt->name, f->index, e) : 0;
}

static int s_run_scale(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    int in_w, in_h;
    rf_scale_axis_t ax, ay;
    if (!rf_scale_params(s->state, &in_w, &in_h, &ax, &ay))
        return 0;
    const bool do_x = ax.out != ax.in, do_y = ay.out != ay.in;
    const char *e = NULL;
    for (int p = 0; p < 3 && !e; p++) {
        if (!do_y) {
            e = rf_gk_filter_rows(f->plane[p], s->out[p], in_w, ax.out, in_h, s->dindex[0],
                                  s->dfilter[0], ax.taps, c->stream);
        } else if (!do_x) {
            e = rf_gk_filter_cols(f->plane[p], s->out[p], in_w, ay.out, s->dindex[1], s->dfilter[1],
                                  ay.taps, c->stream);
        } else {
            e = rf_gk_filter_rows(f->plane[p], s->tmp, in_w, ax.out, in_h, s->dindex[0],
                                  s->dfilter[0], ax.taps, c->stream);
            if (!e)
                e = rf_gk_filter_cols(s->tmp, s->out[p], ax.out, ay.out, s->dindex[1],
                                      s->dfilter[1], ay.taps, c->stream);
        }
    }
    if (e)
        return s_pass_cuda(err, s->vt->name, f->index, e);
    for (int p = 0; p < 3; p++)
        f->plane[p] = s->out[p];
    f->width = ax.out;
    f->height = ay.out;
    return 0;
}

/* A pass without a CUDA version: the frame goes down, through the CPU pass and back up. */
static int s_run_cpu(rf_gpu_chain_t *c, s_gstage_t *s, s_gframe_t *f, rf_err_t *err)
{
    rf_pframe_t *pf = &c->host;
    const size_t n = (size_t)f->width * (size_t)f->height;
    if (!pf->plane[0] || pf->width != f->width || pf->height != f->height) {
        rf_pframe_release(pf);
        for (int p = 0; p < 3; p++)
            if (!(pf->plane[p] = av_malloc_array(n + RF_PFRAME_PAD_FLOATS, sizeof(float))))
                return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d RGB frame", f->width,
                                  f->height);
    }
    pf->width = f->width;
    pf->height = f->height;
    pf->index = f->index;
    pf->pts = f->pts;
    pf->context = f->context;
    const char *e = NULL;
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(pf->plane[p], 0, f->plane[p], 0, n * sizeof(float), 1, S_D2H, c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream);
    if (e)
        return s_pass_cuda(err, s->vt->name, f->index, e);
    rf_err_t local = {0};
    int rc = s->vt->run(s->state, pf, &local);
    if (rc < 0)
        return s_pass_error(err, &local, rc, s->vt->name, f->index);
    if (pf->width != s->out_w || pf->height != s->out_h || !pf->plane[0] || !pf->plane[1] ||
        !pf->plane[2])
        return rf_err_set(
            err, RF_EINVAL, "pass '%s' at frame %lld: handed on a %dx%d frame, it announced %dx%d",
            s->vt->name, (long long)f->index, pf->width, pf->height, s->out_w, s->out_h);
    if (s->out[0]) {
        for (int p = 0; p < 3; p++)
            f->plane[p] = s->out[p];
        f->width = s->out_w;
        f->height = s->out_h;
    }
    const size_t m = (size_t)f->width * (size_t)f->height;
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(f->plane[p], 0, pf->plane[p], 0, m * sizeof(float), 1, S_H2D, c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream); /* pf is reused by the next frame */
    return e ? s_pass_cuda(err, s->vt->name, f->index, e) : 0;
}

/* Runs every pass on f (device planes of the chain's input size), on the chain's stream. */
static int s_chain_run(rf_gpu_chain_t *c, s_gframe_t *f, rf_err_t *err)
{
    if (f->width != c->width || f->height != c->height)
        return rf_err_set(err, RF_EINVAL, "frame %lld is %dx%d, the pass chain was made for %dx%d",
                          (long long)f->index, f->width, f->height, c->width, c->height);
    for (size_t i = 0; i < c->n; i++) {
        s_gstage_t *s = &c->st[i];
        int rc = 0;
        switch (s->kind) {
        case S_DEFLICKER:
            rc = s_run_deflicker(c, s, f, err);
            break;
        case S_COLORMATCH:
            rc = s_run_colormatch(c, s, f, err);
            break;
        case S_GRADE:
            rc = s_run_grade(c, s, f, err);
            break;
        case S_SHARPEN:
            rc = s_run_sharpen(c, s, f, err);
            break;
        case S_SCALE:
            rc = s_run_scale(c, s, f, err);
            break;
        case S_CPU:
            rc = s_run_cpu(c, s, f, err);
            break;
        }
        if (rc < 0)
            return rc;
        assert(f->width == s->out_w && f->height == s->out_h);
    }
    return 0;
}

int rf_gpu_chain_run_host(rf_gpu_chain_t *c, rf_pframe_t *pf, rf_err_t *err)
{
    if (pf->width != c->width || pf->height != c->height || !pf->plane[0] || !pf->plane[1] ||
        !pf->plane[2])
        return rf_err_set(err, RF_EINVAL, "frame %lld is %dx%d, the pass chain was made for %dx%d",
                          (long long)pf->index, pf->width, pf->height, c->width, c->height);
    const size_t n = (size_t)c->width * (size_t)c->height;
    const char *e = c->in[0] ? NULL : s_planes_alloc(c->in, n, &c->vram);
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(c->in[p], 0, pf->plane[p], 0, n * sizeof(float), 1, S_H2D, c->stream);
    if (e)
        return s_cuda_fail(err, "uploading a frame", e);
    s_gframe_t f = {.index = pf->index,
                    .pts = pf->pts,
                    .context = pf->context,
                    .width = c->width,
                    .height = c->height,
                    .plane = {c->in[0], c->in[1], c->in[2]}};
    int rc = s_chain_run(c, &f, err);
    if (rc < 0)
        return rc;
    const size_t m = (size_t)f.width * (size_t)f.height;
    if (f.width != pf->width || f.height != pf->height) {
        float *planes[3] = {NULL, NULL, NULL};
        for (int p = 0; p < 3; p++)
            if (!(planes[p] = av_malloc_array(m + RF_PFRAME_PAD_FLOATS, sizeof(float)))) {
                for (int q = 0; q < p; q++)
                    av_free(planes[q]);
                return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d frame", f.width,
                                  f.height);
            }
        for (int p = 0; p < 3; p++) {
            av_free(pf->plane[p]);
            pf->plane[p] = planes[p];
        }
        pf->width = f.width;
        pf->height = f.height;
    }
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(pf->plane[p], 0, f.plane[p], 0, m * sizeof(float), 1, S_D2H, c->stream);
    if (!e)
        e = rf_gk_stream_sync(c->stream);
    return e ? s_cuda_fail(err, "downloading a frame", e) : 0;
}

int rf_gpu_chain_flush(rf_gpu_chain_t *c, rf_err_t *err)
{
    return rf_pass_chain_flush(c->cpu, err);
}

void rf_gpu_chain_output_size(const rf_gpu_chain_t *c, int *width, int *height)
{
    *width = c->out_width;
    *height = c->out_height;
}

size_t rf_gpu_chain_on_device(const rf_gpu_chain_t *c)
{
    return c->on_device;
}

/* ---- conversion helpers ------------------------------------------------------------------------
 */

/* Copies frame planes (layout l) into a packed buffer laid out as rf_gpu_packed_size says, or the
 * other way round. */
static void s_pack(const rf_gyuv_t *l, uint8_t *const data[], const int linesize[], uint8_t *packed,
                   bool to_packed)
{
    size_t offset[3];
    int pitch[3];
    rf_gpu_packed_size(l, offset, pitch);
    const int chroma_rows = (l->height + (1 << l->ch_log2) - 1) >> l->ch_log2;
    for (int p = 0; p < 3; p++) {
        if (!pitch[p])
            continue;
        const int rows = p == l->plane[0] ? l->height : chroma_rows;
        for (int y = 0; y < rows; y++) {
            uint8_t *a = packed + offset[p] + (size_t)y * (size_t)pitch[p];
            uint8_t *b = data[p] + (size_t)y * (size_t)linesize[p];
            if (to_packed)
                memcpy(a, b, (size_t)pitch[p]);
            else
                memcpy(b, a, (size_t)pitch[p]);
        }
    }
}

static void s_planes_at(const rf_gyuv_t *l, uint8_t *base, rf_gyuv_planes_t *out)
{
    size_t offset[3];
    int pitch[3];
    rf_gpu_packed_size(l, offset, pitch);
    for (int p = 0; p < 3; p++) {
        out->data[p] = base + offset[p];
        out->linesize[p] = pitch[p];
    }
}

static int s_matrix(int width, int height, int pix_fmt, int range, int space, rf_gmatrix_t *m,
                    rf_pconvert_yuv_t *y, rf_err_t *err)
{
    int rc = rf_pconvert_yuv_params(width, height, pix_fmt, range, space, y, err);
    if (rc < 0)
        return rc;
    *m = (rf_gmatrix_t){y->y_off, y->y_span, y->c_off, y->c_span, y->kr, y->kb};
    return 0;
}

int rf_gpu_convert_to_rgb(int device, const AVFrame *src, rf_pframe_t *pf, rf_err_t *err)
{
    rf_gyuv_t l;
    rf_gmatrix_t m;
    rf_pconvert_yuv_t y;
    int rc = rf_gpu_yuv_layout(src->format, src->width, src->height, &l, err);
    if (rc < 0)
        return rc;
    rc = s_matrix(src->width, src->height, src->format, src->color_range, src->colorspace, &m, &y,
                  err);
    if (rc < 0)
        return rc;
    const char *e = rf_gk_device_open(device);
    if (e)
        return rf_err_set(err, RF_EUNAVAIL, "GPU %d: %s", device, e);
    size_t offset[3];
    int pitch[3];
    const size_t bytes = rf_gpu_packed_size(&l, offset, pitch);
    const size_t n = (size_t)src->width * (size_t)src->height;
    uint8_t *host = malloc(bytes);
    void *dev = NULL;
    float *rgb[3] = {NULL, NULL, NULL};
    uint64_t total = 0;
    rf_pframe_release(pf);
    for (int p = 0; p < 3; p++)
        pf->plane[p] = av_malloc_array(n + RF_PFRAME_PAD_FLOATS, sizeof(float));
    if (!host || !pf->plane[0] || !pf->plane[1] || !pf->plane[2]) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    pf->width = src->width;
    pf->height = src->height;
    s_pack(&l, (uint8_t *const *)src->data, src->linesize, host, true);
    e = s_dalloc(&dev, bytes, &total);
    if (!e)
        e = s_planes_alloc(rgb, n, &total);
    if (!e)
        e = rf_gk_copy2d(dev, 0, host, 0, bytes, 1, S_H2D, NULL);
    rf_gyuv_planes_t planes;
    s_planes_at(&l, dev, &planes);
    if (!e)
        e = rf_gk_yuv_to_rgb(&l, &planes, &m, rgb, NULL);
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(pf->plane[p], 0, rgb[p], 0, n * sizeof(float), 1, S_D2H, NULL);
    if (!e)
        e = rf_gk_stream_sync(NULL);
    if (e)
        rc = s_cuda_fail(err, "converting a frame to RGB", e);
    pf->pts = src->pts;
cleanup:
    free(host);
    rf_gk_free(dev);
    for (int p = 0; p < 3; p++)
        rf_gk_free(rgb[p]);
    return rc;
}

int rf_gpu_convert_from_rgb(int device, const rf_pframe_t *pf, int pix_fmt, int color_range,
                            int color_space, AVFrame *dst, rf_err_t *err)
{
    rf_gyuv_t l;
    rf_gmatrix_t m;
    rf_pconvert_yuv_t y;
    int rc = rf_gpu_yuv_layout(pix_fmt, pf->width, pf->height, &l, err);
    if (rc < 0)
        return rc;
    rc = s_matrix(pf->width, pf->height, pix_fmt, color_range, color_space, &m, &y, err);
    if (rc < 0)
        return rc;
    const char *e = rf_gk_device_open(device);
    if (e)
        return rf_err_set(err, RF_EUNAVAIL, "GPU %d: %s", device, e);
    size_t offset[3];
    int pitch[3];
    const size_t bytes = rf_gpu_packed_size(&l, offset, pitch);
    const size_t n = (size_t)pf->width * (size_t)pf->height;
    uint8_t *host = malloc(bytes);
    void *dev = NULL;
    float *rgb[3] = {NULL, NULL, NULL};
    uint16_t *yuv16[3] = {NULL, NULL, NULL};
    uint64_t total = 0;
    av_frame_unref(dst);
    dst->width = pf->width;
    dst->height = pf->height;
    dst->format = pix_fmt;
    if (!host || av_frame_get_buffer(dst, 0) < 0) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    e = s_dalloc(&dev, bytes, &total);
    if (!e)
        e = s_planes_alloc(rgb, n, &total);
    for (int p = 0; p < 3 && !e; p++)
        e = s_dalloc((void **)&yuv16[p], n * sizeof(uint16_t), &total);
    for (int p = 0; p < 3 && !e; p++)
        e = rf_gk_copy2d(rgb[p], 0, pf->plane[p], 0, n * sizeof(float), 1, S_H2D, NULL);
    rf_gyuv_planes_t planes;
    s_planes_at(&l, dev, &planes);
    if (!e)
        e = rf_gk_rgb_to_yuv(&l, &m, (const float *const *)rgb, yuv16, &planes, NULL);
    if (!e)
        e = rf_gk_copy2d(host, 0, dev, 0, bytes, 1, S_D2H, NULL);
    if (!e)
        e = rf_gk_stream_sync(NULL);
    if (e) {
        rc = s_cuda_fail(err, "converting a frame from RGB", e);
        goto cleanup;
    }
    s_pack(&l, dst->data, dst->linesize, host, false);
    dst->color_range = y.range;
    dst->colorspace = y.space;
    dst->pts = pf->pts;
cleanup:
    free(host);
    rf_gk_free(dev);
    for (int p = 0; p < 3; p++) {
        rf_gk_free(rgb[p]);
        rf_gk_free(yuv16[p]);
    }
    return rc;
}

/* ---- fp16 NHWC
 * ----------------------------------------------------------------------------------- */

static int s_nhwc_check(int width, int height, int cpad, rf_err_t *err)
{
    if (cpad < 3 || cpad > RF_GPU_NHWC_MAX_CHANNELS)
        return rf_err_set(err, RF_EINVAL, "NHWC tensor with %d channels, expected 3..%d", cpad,
                          RF_GPU_NHWC_MAX_CHANNELS);
    if (width <= 0 || height <= 0 || width > RF_PASS_MAX_DIM || height > RF_PASS_MAX_DIM)
        return rf_err_set(err, RF_EINVAL, "NHWC tensor of %dx%d pixels", width, height);
    return 0;
}

int rf_gpu_to_nhwc16(const float *const rgb[3], int width, int height, int cpad, uint16_t *out,
                     void *stream, rf_err_t *err)
{
    int rc = s_nhwc_check(width, height, cpad, err);
    if (rc < 0)
        return rc;
    const char *e = rf_gk_to_nhwc16(rgb, width, height, cpad, out, stream);
    return e ? s_cuda_fail(err, "converting a frame to fp16 NHWC", e) : 0;
}

int rf_gpu_from_nhwc16(const uint16_t *in, int width, int height, int cpad, float *const rgb[3],
                       void *stream, rf_err_t *err)
{
    int rc = s_nhwc_check(width, height, cpad, err);
    if (rc < 0)
        return rc;
    const char *e = rf_gk_from_nhwc16(in, width, height, cpad, rgb, stream);
    return e ? s_cuda_fail(err, "converting a frame from fp16 NHWC", e) : 0;
}

/* ---- the stage ---------------------------------------------------------------------------------
 */

typedef struct s_ring {
    uint8_t *pin_in, *pin_out; /* pinned host staging: packed input and output frames */
    void *dev_in, *dev_out;    /* the same on the device */
    float *rgb[3];             /* the frame in RGB fp32, input size */
    void *ev[6];               /* upload start/end, compute start/end, download start/end */
    AVFrame *hold;             /* the decoded frame (an NVDEC surface stays ours until used) */
    AVFrame *props;            /* the decoded frame's properties, for the output */
    int64_t index;
    bool context, busy;
} s_ring_t;

enum { S_EV_UP0, S_EV_UP1, S_EV_C0, S_EV_C1, S_EV_D0, S_EV_D1 };

struct rf_gpu_stage {
    rf_gpu_stage_cfg_t cfg;
    rf_gyuv_t lin, lout;
    rf_gmatrix_t min, mout;
    size_t in_bytes, out_bytes;
    rf_gpu_chain_t *chain;
    void *up, *comp, *down; /* streams */
    s_ring_t ring[RF_GPU_RING_MAX];
    int nring;
    uint16_t *yuv16[3]; /* full-resolution 16-bit output, the compute stream's */
    uint64_t submitted, completed;
    AVFrame *ready[RF_GPU_RING_MAX + 1];
    size_t ready_head, ready_count;
    uint64_t vram;
    double device_ms;
    uint64_t timed;
};

void rf_gpu_stage_destroy(rf_gpu_stage_t **sp)
{
    if (!sp || !*sp)
        return;
    rf_gpu_stage_t *st = *sp;
    if (st->up)
        rf_gk_stream_sync(st->up);
    if (st->comp)
        rf_gk_stream_sync(st->comp);
    if (st->down)
        rf_gk_stream_sync(st->down);
    for (int i = 0; i < st->nring; i++) {
        s_ring_t *r = &st->ring[i];
        rf_gk_host_free(r->pin_in);
        rf_gk_host_free(r->pin_out);
        rf_gk_free(r->dev_in);
        rf_gk_free(r->dev_out);
        for (int p = 0; p < 3; p++)
            rf_gk_free(r->rgb[p]);
        for (int k = 0; k < 6; k++)
            rf_gk_event_destroy(r->ev[k]);
        av_frame_free(&r->hold);
        av_frame_free(&r->props);
    }
    for (int p = 0; p < 3; p++)
        rf_gk_free(st->yuv16[p]);
    while (st->ready_count) {
        av_frame_free(&st->ready[st->ready_head]);
        st->ready_head = (st->ready_head + 1) % (RF_GPU_RING_MAX + 1);
        st->ready_count--;
    }
    rf_gpu_chain_destroy(&st->chain);
    rf_gk_stream_destroy(st->up);
    rf_gk_stream_destroy(st->comp);
    rf_gk_stream_destroy(st->down);
    free(st);
    *sp = NULL;
}

int rf_gpu_stage_new(const rf_gpu_stage_cfg_t *cfg, rf_gpu_stage_t **out, rf_err_t *err)
{
    int rc = 0;
    const char *e = NULL;
    rf_pconvert_yuv_t y;
    rf_gpu_stage_t *st = NULL;

    *out = NULL;
    if ((e = rf_gk_device_open(cfg->device)) != NULL)
        return rf_err_set(err, RF_EUNAVAIL, "GPU %d: %s", cfg->device, e);
    st = calloc(1, sizeof *st);
    if (!st)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    st->cfg = *cfg;
    st->nring = cfg->ring ? cfg->ring : RF_GPU_RING_DEFAULT;
    if (st->nring < 2 || st->nring > RF_GPU_RING_MAX) {
        rc = rf_err_set(err, RF_EINVAL, "GPU ring of %d frames, expected 2..%d", st->nring,
                        RF_GPU_RING_MAX);
        goto cleanup;
    }
    if ((rc = rf_gpu_yuv_layout(cfg->pix_fmt, cfg->width, cfg->height, &st->lin, err)) < 0 ||
        (rc = s_matrix(cfg->width, cfg->height, cfg->pix_fmt, cfg->color_range, cfg->color_space,
                       &st->min, &y, err)) < 0)
        goto cleanup;
    if ((e = rf_gk_stream_new(&st->up)) || (e = rf_gk_stream_new(&st->comp)) ||
        (e = rf_gk_stream_new(&st->down))) {
        rc = s_cuda_fail(err, "creating streams", e);
        goto cleanup;
    }
    rc = s_chain_new(cfg->device, cfg->passes, cfg->npasses, cfg->seed, cfg->width, cfg->height,
                     cfg->frame_rate, false, st->comp, &st->chain, err);
    if (rc < 0)
        goto cleanup;
    st->vram = st->chain->vram;
    int ow, oh;
    rf_gpu_chain_output_size(st->chain, &ow, &oh);
    /* The encoder's side takes the source's tags, as the CPU path's converter does. */
    if ((rc = rf_gpu_yuv_layout(cfg->out_pix_fmt, ow, oh, &st->lout, err)) < 0 ||
        (rc = s_matrix(ow, oh, cfg->out_pix_fmt, cfg->color_range, cfg->color_space, &st->mout, &y,
                       err)) < 0)
        goto cleanup;
    size_t offset[3];
    int pitch[3];
    st->in_bytes = rf_gpu_packed_size(&st->lin, offset, pitch);
    st->out_bytes = rf_gpu_packed_size(&st->lout, offset, pitch);
    const size_t in_px = (size_t)cfg->width * (size_t)cfg->height, out_px = (size_t)ow * (size_t)oh;
    for (int p = 0; p < 3 && !e; p++)
        e = s_dalloc((void **)&st->yuv16[p], out_px * sizeof(uint16_t), &st->vram);
    for (int i = 0; i < st->nring && !e; i++) {
        s_ring_t *r = &st->ring[i];
        e = rf_gk_host_alloc((void **)&r->pin_in, st->in_bytes);
        if (!e)
            e = rf_gk_host_alloc((void **)&r->pin_out, st->out_bytes);
        if (!e)
            e = s_dalloc(&r->dev_in, st->in_bytes, &st->vram);
        if (!e)
            e = s_dalloc(&r->dev_out, st->out_bytes, &st->vram);
        if (!e)
            e = s_planes_alloc(r->rgb, in_px, &st->vram);
        for (int k = 0; k < 6 && !e; k++)
            e = rf_gk_event_new(&r->ev[k]);
    }
    if (e) {
        rc = s_cuda_fail(err, "allocating the frame ring", e);
        goto cleanup;
    }
    *out = st;
    st = NULL;
cleanup:
    rf_gpu_stage_destroy(&st);
    return rc;
}

/* Waits for ring slot r's frame and, unless it was a context frame, moves it to the ready list. */
static int s_complete(rf_gpu_stage_t *st, s_ring_t *r, rf_err_t *err)
{
    const char *e = rf_gk_event_sync(r->context ? r->ev[S_EV_C1] : r->ev[S_EV_D1]);
    if (e)
        return rf_err_set(err, RF_EIO, "frame %lld on the GPU: CUDA: %s", (long long)r->index, e);
    float up = 0, comp = 0, down = 0;
    if (!rf_gk_event_elapsed(r->ev[S_EV_UP0], r->ev[S_EV_UP1], &up) &&
        !rf_gk_event_elapsed(r->ev[S_EV_C0], r->ev[S_EV_C1], &comp) &&
        (r->context || !rf_gk_event_elapsed(r->ev[S_EV_D0], r->ev[S_EV_D1], &down))) {
        st->device_ms += (double)up + (double)comp + (double)down;
        st->timed++;
    }
    av_frame_free(&r->hold);
    int rc = 0;
    if (!r->context) {
        if (st->ready_count > RF_GPU_RING_MAX)
            return rf_err_set(err, RF_EINVAL, "GPU stage: finished frames were not popped");
        AVFrame *f = av_frame_alloc();
        if (!f)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        f->format = st->cfg.out_pix_fmt;
        f->width = st->lout.width;
        f->height = st->lout.height;
        if (av_frame_get_buffer(f, 0) < 0) {
            av_frame_free(&f);
            return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d frame", st->lout.width,
                              st->lout.height);
        }
        s_pack(&st->lout, f->data, f->linesize, r->pin_out, false);
        /* Like the CPU path: the decoded frame's properties (pts, colour tags) */
        av_frame_copy_props(f, r->props);
        st->ready[(st->ready_head + st->ready_count) % (RF_GPU_RING_MAX + 1)] = f;
        st->ready_count++;
    }
    av_frame_free(&r->props);
    r->busy = false;
    st->completed++;
    return rc;
}

static bool s_is_cuda_frame(const AVFrame *f)
{
    return f->format == AV_PIX_FMT_CUDA;
}

int rf_gpu_stage_push(rf_gpu_stage_t *st, const AVFrame *in, int64_t index, bool context,
                      rf_err_t *err)
{
    s_ring_t *r = &st->ring[st->submitted % (uint64_t)st->nring];
    int rc = 0;
    if (r->busy && (rc = s_complete(st, r, err)) < 0)
        return rc;
    int sw_format = in->format;
    if (s_is_cuda_frame(in) && in->hw_frames_ctx)
        sw_format = ((const AVHWFramesContext *)(const void *)in->hw_frames_ctx->data)->sw_format;
    if (in->width != st->cfg.width || in->height != st->cfg.height || sw_format != st->cfg.pix_fmt)
        return rf_err_set(err, RF_EMEDIA,
                          "frame %lld is %dx%d '%s', the GPU stage was made for %dx%d '%s'",
                          (long long)index, in->width, in->height,
                          av_get_pix_fmt_name((enum AVPixelFormat)sw_format), st->cfg.width,
                          st->cfg.height, av_get_pix_fmt_name((enum AVPixelFormat)st->cfg.pix_fmt));
    r->props = av_frame_alloc();
    if (!r->props || av_frame_copy_props(r->props, in) < 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    r->index = index;
    r->context = context;

    /* upload stream: the frame onto the device, and to RGB */
    rf_gyuv_planes_t planes;
    const char *e = rf_gk_event_record(r->ev[S_EV_UP0], st->up);
    if (s_is_cuda_frame(in)) {
        if (!(r->hold = av_frame_clone(in)))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        for (int p = 0; p < 3; p++) {
            planes.data[p] = in->data[p];
            planes.linesize[p] = in->linesize[p];
        }
    } else {
        s_pack(&st->lin, (uint8_t *const *)in->data, in->linesize, r->pin_in, true);
        if (!e)
            e = rf_gk_copy2d(r->dev_in, 0, r->pin_in, 0, st->in_bytes, 1, S_H2D, st->up);
        s_planes_at(&st->lin, r->dev_in, &planes);
    }
    if (!e)
        e = rf_gk_yuv_to_rgb(&st->lin, &planes, &st->min, r->rgb, st->up);
    if (!e)
        e = rf_gk_event_record(r->ev[S_EV_UP1], st->up);
    /* compute stream: the passes, then the encoder's format */
    if (!e)
        e = rf_gk_stream_wait(st->comp, r->ev[S_EV_UP1]);
    if (!e)
        e = rf_gk_event_record(r->ev[S_EV_C0], st->comp);
    if (e)
        return rf_err_set(err, RF_EIO, "frame %lld to the GPU: CUDA: %s", (long long)index, e);
    s_gframe_t f = {.index = index,
                    .pts = in->pts,
                    .context = context,
                    .width = st->cfg.width,
                    .height = st->cfg.height,
                    .plane = {r->rgb[0], r->rgb[1], r->rgb[2]}};
    r->busy = true; /* from here the slot's events are recorded or the stage is failed */
    st->submitted++;
    rc = s_chain_run(st->chain, &f, err);
    if (rc < 0)
        return rc;
    if (!context) {
        s_planes_at(&st->lout, r->dev_out, &planes);
        e = rf_gk_rgb_to_yuv(&st->lout, &st->mout, (const float *const *)f.plane, st->yuv16,
                             &planes, st->comp);
    }
    if (!e)
        e = rf_gk_event_record(r->ev[S_EV_C1], st->comp);
    /* download stream: into the pinned ring buffer */
    if (!context) {
        if (!e)
            e = rf_gk_stream_wait(st->down, r->ev[S_EV_C1]);
        if (!e)
            e = rf_gk_event_record(r->ev[S_EV_D0], st->down);
        if (!e)
            e = rf_gk_copy2d(r->pin_out, 0, r->dev_out, 0, st->out_bytes, 1, S_D2H, st->down);
        if (!e)
            e = rf_gk_event_record(r->ev[S_EV_D1], st->down);
    }
    if (e)
        return rf_err_set(err, RF_EIO, "frame %lld on the GPU: CUDA: %s", (long long)index, e);
    return 0;
}

int rf_gpu_stage_pop(rf_gpu_stage_t *st, AVFrame **out, rf_err_t *err)
{
    (void)err;
    *out = NULL;
    if (!st->ready_count)
        return 0;
    *out = st->ready[st->ready_head];
    st->ready[st->ready_head] = NULL;
    st->ready_head = (st->ready_head + 1) % (RF_GPU_RING_MAX + 1);
    st->ready_count--;
    return 1;
}

int rf_gpu_stage_finish(rf_gpu_stage_t *st, rf_err_t *err)
{
    while (st->completed < st->submitted) {
        s_ring_t *r = &st->ring[st->completed % (uint64_t)st->nring];
        int rc = s_complete(st, r, err);
        if (rc < 0)
            return rc;
    }
    return rf_gpu_chain_flush(st->chain, err);
}

void rf_gpu_stage_output_size(const rf_gpu_stage_t *st, int *width, int *height)
{
    rf_gpu_chain_output_size(st->chain, width, height);
}

uint64_t rf_gpu_stage_vram(const rf_gpu_stage_t *st)
{
    return st->vram;
}

void rf_gpu_stage_device_ms(const rf_gpu_stage_t *st, double *ms, uint64_t *frames)
{
    *ms = st->device_ms;
    *frames = st->timed;
}

size_t rf_gpu_stage_on_device(const rf_gpu_stage_t *st)
{
    return rf_gpu_chain_on_device(st->chain);
}
