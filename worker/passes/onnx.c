/* onnx.c - the "onnx" pass: runs an ONNX model on every frame with reelfarm's own executor
 * (worker/nn, nn.h). One pass for generators (role generate) and refiners (role refine): the
 * model decides what it does; the pass binds its inputs, maps value ranges, tiles large frames
 * and hands the model's first output on as the frame - at a new size when the model changes it
 * (pass ABI 2, output_size, like scale).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   model      path (required)   the .onnx file (loaded and compiled once per chunk)
 *   device     cpu|gpu|auto      auto: the GPU backend when this worker has one, else the CPU
 *   precision  fp16|fp32         GPU only; the CPU reference is always fp32
 *   input_min, input_max         the model's input range: a pipeline value v in [0, 1] is fed as
 *                                input_min + v * (input_max - input_min)     (default 0, 1)
 *   output_min, output_max       the model's output range, mapped back the same way, then
 *                                clamped to [0, 1]                           (default 0, 1)
 *   tile       0..16384          largest tile side in input pixels; 0 = the whole frame
 *   overlap    0..1024           input pixels shared by neighbouring tiles
 *   inputs     "NAME=SOURCE,..." binds the model's inputs; "" binds a single-input model to the
 *                                frame. SOURCE is one of
 *                                  frame      the current frame
 *                                  frame-K    the frame K (1..8) before it (temporal models;
 *                                             the pass asks the planner for K context frames)
 *                                  asset      the image file of parameter `asset`, resized to the
 *                                             frame size (Lanczos) - an identity portrait, a mask
 *                                  noise      N(0, 1) samples, a function of (job seed, global
 *                                             frame index, channel, pixel) only
 *   asset      path or ""        the image bound by `asset` (PNG, JPEG, ... anything FFmpeg reads)
 *
 * Model inputs are NCHW float: N = 1; C = 3 (RGB), or 1 (Rec.709 luma of the frame/asset), or
 * any count for noise; H and W concrete (the model then runs on tiles of exactly that size) or
 * symbolic (-1: sized to the frame, or to `tile`). Output 0 is [1, 3 or 1, H*s, W*s] for a
 * whole number s >= 1, the same on both axes (1-channel outputs become grey frames).
 *
 * Tiling (frames too large for one run, or models with a fixed input size). Tiles have one size,
 * start every (tile - overlap) pixels, the last one flush with the frame's edge. Each tile's output
 * is weighted, per axis, by a ramp across its inner edges (not at the frame's edges):
 *     w(d) = clamp((d - overlap/4) / (overlap/2), 0, 1),  d = distance from the edge in input pixels
 * and the frame is sum(w * tile) / sum(w). Two tiles overlapping by exactly `overlap` have weights
 * summing to 1 with each pixel near a tile's inner edge (d < overlap/4) taken from the other tile
 * alone, so a model whose receptive field reaches at most overlap/4 pixels gives the same frame as
 * an untiled run (to float rounding), and larger ones get a linear crossfade instead of seams.
 *
 * Temporal inputs keep copies of the last K frames as this pass received them. The first frames of
 * a job, without K predecessors, use the oldest frame there is (the current one at frame 0); in a
 * chunk, the planner's context frames fill the history first, so chunking cannot show.
 *
 * Cost: the executor's, per tile, plus one copy of each frame per bound temporal input.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/mem.h>

#include "builtin.h"
#include "log.h"
#include "media.h"
#include "nn.h"

#define S_MAX_INPUTS 8         /* model inputs the pass binds */
#define S_MAX_BACK 8           /* frame-K: K at most this */
#define S_MAX_OUTPUTS 16       /* model outputs (only the first is used; the rest are computed) */
#define S_BINDINGS_MAX 1024    /* length of the `inputs` text */

typedef enum s_source { S_FRAME, S_PREV, S_ASSET, S_NOISE } s_source_t;

typedef struct s_binding {
    char name[RF_NN_NAME_MAX]; /* the model input's name */
    s_source_t source;
    int back;                  /* S_PREV: frames back, 1..S_MAX_BACK */
} s_binding_t;

typedef struct s_onnx {
    rf_nn_model_t *model;
    rf_nn_plan_t *plan;
    uint64_t seed;
    double in_min, in_scale;   /* model input = in_min + v * in_scale */
    double out_min, out_range; /* v = (model output - out_min) / out_range */
    int in_w, in_h;            /* frames received */
    int out_w, out_h;          /* frames handed on */
    int scale;                 /* out / in, per axis */
    int tile_w, tile_h;        /* the model's input size per run */
    int overlap;
    int ntx, nty;              /* tiles across, down */
    int *tx, *ty;              /* tile origins (input pixels) */
    s_binding_t bind[S_MAX_INPUTS]; /* in model input order */
    int ninputs;
    int channels[S_MAX_INPUTS];     /* C of each model input */
    rf_nn_tensor_t in[S_MAX_INPUTS];   /* one tile per model input: data owned here, or the
                                          plan's pinned buffer (in_pinned) */
    rf_nn_tensor_t out[S_MAX_OUTPUTS]; /* the plan's pinned buffers, else the executor allocates
                                          them on the first run */
    bool in_pinned[S_MAX_INPUTS], out_pinned[S_MAX_OUTPUTS];
    int noutputs;
    int out_channels;          /* C of output 0: 3 or 1 */
    float *asset[3];           /* the asset at in_w x in_h, or NULL */
    int max_back;              /* largest K of the frame-K bindings */
    float *hist[S_MAX_BACK][3]; /* hist[k]: the frame k+1 back (in_w x in_h planes) */
    int nhist;                 /* valid entries of hist */
    int64_t last_index;        /* index of the frame last received, for the history */
    float *acc[3];             /* tiled: weighted sums, out_w x out_h */
    float *wsum;               /* tiled: sum of weights, out_w x out_h */
    float *wx, *wy;            /* tiled: per-axis weights of one tile's output */
} s_onnx_t;

/* ---- parameters ---------------------------------------------------------------------------- */

static int s_parse_source(const char *text, s_binding_t *b, rf_err_t *err)
{
    if (!strcmp(text, "frame")) {
        b->source = S_FRAME;
    } else if (!strcmp(text, "asset")) {
        b->source = S_ASSET;
    } else if (!strcmp(text, "noise")) {
        b->source = S_NOISE;
    } else if (!strncmp(text, "frame-", 6)) {
        char *end = NULL;
        long k = strtol(text + 6, &end, 10);
        if (end == text + 6 || *end != '\0' || k < 1 || k > S_MAX_BACK)
            return rf_err_set(err, RF_ECONFIG,
                              "parameter 'inputs': '%s' for input '%s': frame-K needs K in 1..%d",
                              text, b->name, S_MAX_BACK);
        b->source = S_PREV;
        b->back = (int)k;
    } else {
        return rf_err_set(err, RF_ECONFIG,
                          "parameter 'inputs': unknown source '%s' for input '%s' (expected frame, "
                          "frame-K, asset or noise)",
                          text, b->name);
    }
    return 0;
}

/* "name=source, name2=source2" into bind[]; returns the count or a negative code. */
static int s_parse_bindings(const char *text, s_binding_t *bind, rf_err_t *err)
{
    char buf[S_BINDINGS_MAX + 1];
    int n = 0;
    if (strlen(text) > S_BINDINGS_MAX)
        return rf_err_set(err, RF_ECONFIG, "parameter 'inputs': longer than %d characters",
                          S_BINDINGS_MAX);
    snprintf(buf, sizeof buf, "%s", text);
    char *p = buf;
    while (*p) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        /* trim */
        while (*p == ' ' || *p == '\t')
            p++;
        char *e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            *--e = '\0';
        char *eq = strchr(p, '=');
        if (!eq || eq == p || eq[1] == '\0')
            return rf_err_set(err, RF_ECONFIG,
                              "parameter 'inputs': '%s' is not NAME=SOURCE (e.g. 'x=frame, "
                              "prev=frame-1')",
                              p);
        *eq = '\0';
        char *name_end = eq;
        while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            *--name_end = '\0';
        char *src = eq + 1;
        while (*src == ' ' || *src == '\t')
            src++;
        if (n == S_MAX_INPUTS)
            return rf_err_set(err, RF_ECONFIG, "parameter 'inputs': more than %d bindings",
                              S_MAX_INPUTS);
        if (strlen(p) >= RF_NN_NAME_MAX)
            return rf_err_set(err, RF_ECONFIG, "parameter 'inputs': input name '%.40s...' too long",
                              p);
        for (int i = 0; i < n; i++)
            if (!strcmp(bind[i].name, p))
                return rf_err_set(err, RF_ECONFIG, "parameter 'inputs': input '%s' bound twice",
                                  p);
        memset(&bind[n], 0, sizeof bind[n]);
        memcpy(bind[n].name, p, strlen(p) + 1); /* shorter than the field: checked above */
        int rc = s_parse_source(src, &bind[n], err);
        if (rc < 0)
            return rc;
        n++;
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

/* ---- frames and tensors -------------------------------------------------------------------- */

static uint64_t s_mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A standard normal sample that depends only on its arguments (Box-Muller on two hashed
 * uniforms), so tiles, chunks and workers all draw the same noise for a pixel. */
static float s_noise(uint64_t seed, int64_t frame, int channel, int y, int x)
{
    uint64_t h = s_mix(seed ^ s_mix((uint64_t)frame ^ s_mix(((uint64_t)(uint32_t)channel << 48) ^
                                                            ((uint64_t)(uint32_t)y << 24) ^
                                                            (uint64_t)(uint32_t)x)));
    uint64_t h2 = s_mix(h);
    double u1 = ((double)(h >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    double u2 = (double)(h2 >> 11) / 9007199254740992.0;       /* [0, 1) */
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

static void s_free_planes(float *p[3])
{
    for (int c = 0; c < 3; c++) {
        av_free(p[c]);
        p[c] = NULL;
    }
}

static int s_alloc_planes(float *p[3], int w, int h)
{
    const size_t n = (size_t)w * (size_t)h + RF_PFRAME_PAD_FLOATS;
    for (int c = 0; c < 3; c++) {
        p[c] = av_malloc_array(n, sizeof(float));
        if (!p[c]) {
            s_free_planes(p);
            return RF_ENOMEM;
        }
    }
    return 0;
}

/* Fills model input i's tile at (x0, y0) from planes (in_w wide), mapped to the model's range. */
static void s_fill_image(s_onnx_t *s, int i, float *const planes[3], int x0, int y0)
{
    float *dst = s->in[i].data;
    const size_t area = (size_t)s->tile_w * (size_t)s->tile_h;
    const float a = (float)s->in_min, b = (float)s->in_scale;
    for (int y = 0; y < s->tile_h; y++) {
        const size_t row = (size_t)(y0 + y) * (size_t)s->in_w + (size_t)x0;
        float *d = dst + (size_t)y * (size_t)s->tile_w;
        if (s->channels[i] == 1) {
            for (int x = 0; x < s->tile_w; x++) {
                float luma = 0.2126f * planes[0][row + x] + 0.7152f * planes[1][row + x] +
                             0.0722f * planes[2][row + x];
                d[x] = a + luma * b;
            }
        } else {
            for (int c = 0; c < 3; c++) {
                const float *src = planes[c] + row;
                float *dc = d + (size_t)c * area;
                for (int x = 0; x < s->tile_w; x++)
                    dc[x] = a + src[x] * b;
            }
        }
    }
}

static void s_fill_noise(s_onnx_t *s, int i, int64_t frame, int x0, int y0)
{
    float *dst = s->in[i].data;
    for (int c = 0; c < s->channels[i]; c++)
        for (int y = 0; y < s->tile_h; y++)
            for (int x = 0; x < s->tile_w; x++)
                *dst++ = s_noise(s->seed, frame, c, y0 + y, x0 + x);
}

static int s_fill_inputs(s_onnx_t *s, const rf_pframe_t *frame, int x0, int y0)
{
    for (int i = 0; i < s->ninputs; i++) {
        const s_binding_t *b = &s->bind[i];
        switch (b->source) {
        case S_FRAME:
            s_fill_image(s, i, frame->plane, x0, y0);
            break;
        case S_PREV: {
            /* The frame K back, or the oldest one held (the current one when none is). */
            int k = b->back <= s->nhist ? b->back : s->nhist;
            s_fill_image(s, i, k > 0 ? s->hist[k - 1] : frame->plane, x0, y0);
            break;
        }
        case S_ASSET:
            s_fill_image(s, i, s->asset, x0, y0);
            break;
        case S_NOISE:
            s_fill_noise(s, i, frame->index, x0, y0);
            break;
        }
    }
    return 0;
}

static inline float s_to_pipeline(const s_onnx_t *s, float v)
{
    double r = ((double)v - s->out_min) / s->out_range;
    /* NaN compares false both ways and ends up 0: a broken sample must not reach the encoder. */
    if (r > 1.0)
        return 1.0f;
    if (r >= 0.0)
        return (float)r;
    return 0.0f;
}

/* Ramp weight at distance d (input pixels) from a tile's inner edge. */
static double s_ramp(double d, int overlap)
{
    if (overlap <= 0)
        return 1.0;
    double w = (d - overlap / 4.0) / (overlap / 2.0);
    return w < 0 ? 0 : (w > 1 ? 1 : w);
}

/* Per-axis weights of a tile at origin o (size t, frame size n) for its t*scale outputs. */
static void s_axis_weights(float *w, int o, int t, int n, int scale, int overlap)
{
    for (int i = 0; i < t * scale; i++) {
        double d = (i + 0.5) / scale; /* input pixels from the tile's first edge */
        double v = 1.0;
        if (o > 0)
            v *= s_ramp(d, overlap);
        if (o + t < n)
            v *= s_ramp(t - d, overlap);
        w[i] = (float)v;
    }
}

/* Tile origins along one axis: every stride, the last one flush with the edge. */
static int s_origins(int n, int t, int overlap, int **out)
{
    int count = 1;
    if (n > t) {
        const int stride = t - overlap;
        count = 1 + (n - t + stride - 1) / stride;
    }
    int *o = malloc((size_t)count * sizeof *o);
    if (!o)
        return RF_ENOMEM;
    for (int i = 0; i < count; i++) {
        long v = (long)i * (t - overlap);
        o[i] = v > n - t ? n - t : (int)v;
    }
    *out = o;
    return count;
}

/* ---- assets -------------------------------------------------------------------------------- */

/* Decodes the first picture of path and resizes it to w x h into planes (Lanczos, the scale
 * pass's own filter). */
static int s_load_asset(const char *path, int w, int h, float *planes[3], rf_err_t *err)
{
    int rc = 0;
    rf_decoder_t *dec = NULL;
    AVFrame *f = av_frame_alloc();
    rf_pconvert_t *conv = NULL;
    rf_pframe_t pf = {0};
    void *scale_state = NULL;
    rf_err_t local = {0};

    if (!f)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    rc = rf_decoder_open(path, &dec, &local);
    if (rc < 0) {
        rc = rf_err_set(err, rc, "parameter 'asset': %s", local.msg);
        goto cleanup;
    }
    rc = rf_decoder_next(dec, f, &local);
    if (rc <= 0) {
        rc = rf_err_set(err, rc < 0 ? rc : RF_EINVAL, "parameter 'asset': '%s': %s", path,
                        rc < 0 ? local.msg : "no picture in the file");
        goto cleanup;
    }
    rc = rf_pconvert_new(f->width, f->height, f->format, f->color_range, f->colorspace, &conv,
                         &local);
    if (rc == 0)
        rc = rf_pconvert_to_rgb(conv, f, &pf, &local);
    if (rc < 0) {
        rc = rf_err_set(err, rc, "parameter 'asset': '%s': %s", path, local.msg);
        goto cleanup;
    }
    pf.width = f->width;
    pf.height = f->height;
    if (pf.width != w || pf.height != h) {
        char ws[16], hs[16];
        snprintf(ws, sizeof ws, "%d", w);
        snprintf(hs, sizeof hs, "%d", h);
        rf_param_t params[3] = {{"width", ws}, {"height", hs}, {"filter", "lanczos"}};
        rf_pass_spec_t spec = {.name = "scale", .role = "refine", .params = params, .nparams = 3};
        rf_pass_setup_t setup = {.spec = &spec, .width = pf.width, .height = pf.height};
        rc = rf_pass_scale.create(&setup, &scale_state, &local);
        if (rc == 0)
            rc = rf_pass_scale.run(scale_state, &pf, &local);
        if (rc < 0) {
            rc = rf_err_set(err, rc, "parameter 'asset': resizing '%s' to %dx%d: %s", path, w, h,
                            local.msg);
            goto cleanup;
        }
    }
    for (int c = 0; c < 3; c++) {
        planes[c] = pf.plane[c];
        pf.plane[c] = NULL;
    }
    rc = 0;

cleanup:
    if (scale_state)
        rf_pass_scale.destroy(scale_state);
    rf_pframe_release(&pf);
    rf_pconvert_destroy(&conv);
    rf_decoder_destroy(&dec);
    av_frame_free(&f);
    return rc;
}

/* ---- create -------------------------------------------------------------------------------- */

static void s_destroy(void *state)
{
    s_onnx_t *s = state;
    if (!s)
        return;
    rf_nn_plan_free(s->plan);
    rf_nn_model_free(s->model);
    for (int i = 0; i < S_MAX_INPUTS; i++)
        if (!s->in_pinned[i])
            free(s->in[i].data);
    for (int i = 0; i < S_MAX_OUTPUTS; i++)
        if (!s->out_pinned[i])
            rf_nn_tensor_release(&s->out[i]);
    s_free_planes(s->asset);
    for (int k = 0; k < S_MAX_BACK; k++)
        s_free_planes(s->hist[k]);
    for (int c = 0; c < 3; c++)
        free(s->acc[c]);
    free(s->wsum);
    free(s->wx);
    free(s->wy);
    free(s->tx);
    free(s->ty);
    free(s);
}

/* Binds the model's inputs: explicit bindings by name, or the only input to the frame. */
static int s_bind(s_onnx_t *s, const char *text, rf_err_t *err)
{
    s_binding_t parsed[S_MAX_INPUTS];
    const int nm = rf_nn_model_inputs(s->model);
    int n = s_parse_bindings(text, parsed, err);
    if (n < 0)
        return n;
    if (nm < 1 || nm > S_MAX_INPUTS)
        return rf_err_set(err, RF_EUNAVAIL, "the model has %d inputs; this pass binds 1..%d", nm,
                          S_MAX_INPUTS);
    if (n == 0) {
        if (nm != 1)
            return rf_err_set(err, RF_ECONFIG,
                              "the model has %d inputs: bind each with parameter 'inputs' "
                              "(e.g. '%s=frame, %s=frame-1')",
                              nm, rf_nn_model_input(s->model, 0)->name,
                              rf_nn_model_input(s->model, 1)->name);
        snprintf(parsed[0].name, sizeof parsed[0].name, "%s", rf_nn_model_input(s->model, 0)->name);
        parsed[0].source = S_FRAME;
        parsed[0].back = 0;
        n = 1;
    }
    for (int j = 0; j < n; j++) {
        int found = -1;
        for (int i = 0; i < nm; i++)
            if (!strcmp(rf_nn_model_input(s->model, i)->name, parsed[j].name))
                found = i;
        if (found < 0)
            return rf_err_set(err, RF_ECONFIG,
                              "parameter 'inputs': the model has no input '%s' (its inputs: '%s'%s)",
                              parsed[j].name, rf_nn_model_input(s->model, 0)->name,
                              nm > 1 ? ", ..." : "");
        s->bind[found] = parsed[j];
    }
    for (int i = 0; i < nm; i++)
        if (s->bind[i].name[0] == '\0')
            return rf_err_set(err, RF_ECONFIG, "parameter 'inputs': model input '%s' is not bound",
                              rf_nn_model_input(s->model, i)->name);
    s->ninputs = nm;
    for (int i = 0; i < nm; i++)
        if (s->bind[i].source == S_PREV && s->bind[i].back > s->max_back)
            s->max_back = s->bind[i].back;
    return 0;
}

/* Checks the inputs' shapes and picks the tile size: a model's fixed H, W win over `tile`. */
static int s_shapes(s_onnx_t *s, int tile, rf_err_t *err)
{
    int fixed_h = -1, fixed_w = -1;
    for (int i = 0; i < s->ninputs; i++) {
        const rf_nn_tensor_t *d = rf_nn_model_input(s->model, i);
        if (d->dtype != RF_NN_FLOAT || d->ndim != 4 || (d->dims[0] != 1 && d->dims[0] != -1))
            return rf_err_set(err, RF_EUNAVAIL,
                              "model input '%s' must be float [1, C, H, W] (an image), it is "
                              "%dD of type %d",
                              d->name, d->ndim, (int)d->dtype);
        int c = d->dims[1] > 0 ? (int)d->dims[1] : 3;
        if (s->bind[i].source != S_NOISE && c != 3 && c != 1)
            return rf_err_set(err, RF_EUNAVAIL,
                              "model input '%s' has %d channels; an image binding needs 3 (RGB) "
                              "or 1 (luma)",
                              d->name, c);
        if (c > 64)
            return rf_err_set(err, RF_EUNAVAIL, "model input '%s': %d noise channels, at most 64",
                              d->name, c);
        s->channels[i] = c;
        for (int k = 2; k < 4; k++) {
            int64_t v = d->dims[k];
            int *fixed = k == 2 ? &fixed_h : &fixed_w;
            if (v <= 0)
                continue;
            if (v > RF_PASS_MAX_DIM)
                return rf_err_set(err, RF_EUNAVAIL, "model input '%s': dimension %lld too large",
                                  d->name, (long long)v);
            if (*fixed > 0 && *fixed != (int)v)
                return rf_err_set(err, RF_EUNAVAIL,
                                  "the model's inputs disagree on their %s (%d and %lld)",
                                  k == 2 ? "height" : "width", *fixed, (long long)v);
            *fixed = (int)v;
        }
    }
    s->tile_w = fixed_w > 0 ? fixed_w : (tile > 0 && tile < s->in_w ? tile : s->in_w);
    s->tile_h = fixed_h > 0 ? fixed_h : (tile > 0 && tile < s->in_h ? tile : s->in_h);
    if (s->tile_w > s->in_w || s->tile_h > s->in_h)
        return rf_err_set(err, RF_EUNAVAIL,
                          "the model takes %dx%d inputs, larger than the %dx%d frames", s->tile_w,
                          s->tile_h, s->in_w, s->in_h);
    if ((s->tile_w < s->in_w && s->overlap >= s->tile_w) ||
        (s->tile_h < s->in_h && s->overlap >= s->tile_h))
        return rf_err_set(err, RF_ECONFIG,
                          "parameter 'overlap': %d must be smaller than the %dx%d tiles",
                          s->overlap, s->tile_w, s->tile_h);
    return 0;
}

static int s_plan(s_onnx_t *s, const char *device, const char *precision, rf_err_t *err)
{
    rf_nn_tensor_t shapes[S_MAX_INPUTS];
    memset(shapes, 0, sizeof shapes);
    for (int i = 0; i < s->ninputs; i++) {
        const rf_nn_tensor_t *d = rf_nn_model_input(s->model, i);
        rf_nn_tensor_t *t = &s->in[i];
        snprintf(t->name, sizeof t->name, "%s", d->name);
        t->dtype = RF_NN_FLOAT;
        t->ndim = 4;
        t->dims[0] = 1;
        t->dims[1] = s->channels[i];
        t->dims[2] = s->tile_h;
        t->dims[3] = s->tile_w;
        t->bytes = (size_t)s->channels[i] * (size_t)s->tile_w * (size_t)s->tile_h * sizeof(float);
        t->data = calloc(1, t->bytes);
        if (!t->data)
            return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d tile", s->tile_w,
                              s->tile_h);
        shapes[i] = *t;
        shapes[i].data = NULL;
        shapes[i].bytes = 0;
    }
    rf_nn_plan_options_t opt = {.device = RF_NN_GPU, .fp16 = !strcmp(precision, "fp16")};
    int rc = RF_EUNAVAIL;
    rf_err_t local = {0};
    if (strcmp(device, "cpu") != 0) {
        rc = rf_nn_plan_create(s->model, shapes, s->ninputs, &opt, &s->plan, &local);
        if (rc < 0 && (rc != RF_EUNAVAIL || !strcmp(device, "gpu")))
            return rf_err_set(err, rc, "device %s: %s", device, local.msg);
    }
    if (rc < 0 && strcmp(device, "cpu") != 0)
        RF_INFO("onnx", "device auto: no GPU plan (%s): running the model on the CPU", local.msg);
    if (rc < 0) { /* cpu, or auto without a usable GPU */
        opt.device = RF_NN_CPU;
        opt.fp16 = false;
        rc = rf_nn_plan_create(s->model, shapes, s->ninputs, &opt, &s->plan, &local);
        if (rc < 0)
            return rf_err_set(err, rc, "%s", local.msg);
    }
    return 0;
}

/* GPU plans: the tiles move through the plan's pinned host buffers (rf_nn_plan_host_buffer), so
 * the copies to and from the device skip the driver's staging copy. */
static void s_pin(s_onnx_t *s)
{
    for (int i = 0; i < s->ninputs; i++) {
        size_t bytes;
        void *buf = rf_nn_plan_host_buffer(s->plan, false, i, &bytes);
        if (!buf || bytes != s->in[i].bytes)
            continue;
        memcpy(buf, s->in[i].data, bytes);
        free(s->in[i].data);
        s->in[i].data = buf;
        s->in_pinned[i] = true;
    }
    for (int i = 0; i < s->noutputs; i++) {
        size_t bytes;
        void *buf = rf_nn_plan_host_buffer(s->plan, true, i, &bytes);
        if (!buf)
            continue;
        s->out[i].data = buf;
        s->out[i].bytes = bytes;
        s->out_pinned[i] = true;
    }
}

/* Output 0 must be [1, 3|1, tile_h*s, tile_w*s]. */
static int s_output_shape(s_onnx_t *s, rf_err_t *err)
{
    s->noutputs = rf_nn_model_outputs(s->model);
    if (s->noutputs < 1 || s->noutputs > S_MAX_OUTPUTS)
        return rf_err_set(err, RF_EUNAVAIL, "the model has %d outputs; this pass takes 1..%d",
                          s->noutputs, S_MAX_OUTPUTS);
    const rf_nn_tensor_t *o = rf_nn_plan_output(s->plan, 0);
    if (o->ndim != 4 || o->dims[0] != 1 || (o->dims[1] != 3 && o->dims[1] != 1) ||
        o->dims[2] % s->tile_h != 0 || o->dims[3] % s->tile_w != 0 ||
        o->dims[2] / s->tile_h != o->dims[3] / s->tile_w || o->dims[2] < s->tile_h) {
        return rf_err_set(err, RF_EUNAVAIL,
                          "model output '%s' is [%lld, %lld, %lld, %lld] for a %dx%d input: this "
                          "pass needs [1, 3 or 1, H*s, W*s] with one whole s >= 1",
                          o->name, (long long)o->dims[0], (long long)(o->ndim > 1 ? o->dims[1] : 0),
                          (long long)(o->ndim > 2 ? o->dims[2] : 0),
                          (long long)(o->ndim > 3 ? o->dims[3] : 0), s->tile_w, s->tile_h);
    }
    if (o->dtype != RF_NN_FLOAT)
        return rf_err_set(err, RF_EUNAVAIL, "model output '%s' is not float", o->name);
    s->out_channels = (int)o->dims[1];
    s->scale = (int)(o->dims[2] / s->tile_h);
    long ow = (long)s->in_w * s->scale, oh = (long)s->in_h * s->scale;
    if (ow > RF_PASS_MAX_DIM || oh > RF_PASS_MAX_DIM)
        return rf_err_set(err, RF_EUNAVAIL, "the model makes %ldx%ld frames, at most %d per side",
                          ow, oh, RF_PASS_MAX_DIM);
    s->out_w = (int)ow;
    s->out_h = (int)oh;
    return 0;
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_onnx_t *s = NULL;
    int tile = 0;
    double imin = 0, imax = 1, omin = 0, omax = 1;

    assert(setup && setup->spec && state);
    if (setup->width <= 0 || setup->height <= 0)
        return rf_err_set(err, RF_EINVAL, "invalid input size %dx%d", setup->width, setup->height);
    s = calloc(1, sizeof *s);
    if (!s)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    s->seed = setup->seed;
    s->in_w = setup->width;
    s->in_h = setup->height;
    s->last_index = -2;

    const rf_pass_spec_t *spec = setup->spec;
    const char *model = rf_pass_spec_param(spec, "model");
    const char *device = rf_pass_spec_param(spec, "device");
    const char *precision = rf_pass_spec_param(spec, "precision");
    const char *inputs = rf_pass_spec_param(spec, "inputs");
    const char *asset = rf_pass_spec_param(spec, "asset");
    device = device ? device : "auto";
    precision = precision ? precision : "fp16";
    if (!model || !*model) {
        rc = rf_err_set(err, RF_ECONFIG, "parameter 'model': missing (the .onnx file to run)");
        goto cleanup;
    }
    if (strcmp(device, "cpu") && strcmp(device, "gpu") && strcmp(device, "auto")) {
        rc = rf_err_set(err, RF_ECONFIG, "parameter 'device': expected cpu, gpu or auto, got '%s'",
                        device);
        goto cleanup;
    }
    if (strcmp(precision, "fp16") && strcmp(precision, "fp32")) {
        rc = rf_err_set(err, RF_ECONFIG, "parameter 'precision': expected fp16 or fp32, got '%s'",
                        precision);
        goto cleanup;
    }
    if ((rc = rf_pass_param_double(spec, "input_min", 0, -1e6, 1e6, &imin, err)) < 0 ||
        (rc = rf_pass_param_double(spec, "input_max", 1, -1e6, 1e6, &imax, err)) < 0 ||
        (rc = rf_pass_param_double(spec, "output_min", 0, -1e6, 1e6, &omin, err)) < 0 ||
        (rc = rf_pass_param_double(spec, "output_max", 1, -1e6, 1e6, &omax, err)) < 0 ||
        (rc = rf_pass_param_int(spec, "tile", 0, 0, RF_PASS_MAX_DIM, &tile, err)) < 0 ||
        (rc = rf_pass_param_int(spec, "overlap", 16, 0, 1024, &s->overlap, err)) < 0)
        goto cleanup;
    if (imax == imin || omax == omin) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "parameters '%s': minimum and maximum are equal (%g), the range is empty",
                        imax == imin ? "input_min/input_max" : "output_min/output_max",
                        imax == imin ? imin : omin);
        goto cleanup;
    }
    s->in_min = imin;
    s->in_scale = imax - imin;
    s->out_min = omin;
    s->out_range = omax - omin;

    rf_err_t local = {0};
    rc = rf_nn_model_load_file(model, &s->model, &local);
    if (rc < 0) {
        rc = rf_err_set(err, rc, "parameter 'model': %s", local.msg);
        goto cleanup;
    }
    if ((rc = s_bind(s, inputs ? inputs : "", err)) < 0)
        goto cleanup;
    bool wants_asset = false;
    for (int i = 0; i < s->ninputs; i++)
        wants_asset |= s->bind[i].source == S_ASSET;
    if (wants_asset && (!asset || !*asset)) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "parameter 'asset': an input is bound to 'asset' but no asset file is given");
        goto cleanup;
    }
    if ((rc = s_shapes(s, tile, err)) < 0 || (rc = s_plan(s, device, precision, err)) < 0 ||
        (rc = s_output_shape(s, err)) < 0)
        goto cleanup;
    s_pin(s);
    if (wants_asset && (rc = s_load_asset(asset, s->in_w, s->in_h, s->asset, err)) < 0)
        goto cleanup;
    for (int k = 0; k < s->max_back; k++) {
        if (s_alloc_planes(s->hist[k], s->in_w, s->in_h) < 0) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory for %d frames of history", s->max_back);
            goto cleanup;
        }
    }
    if ((rc = s_origins(s->in_w, s->tile_w, s->overlap, &s->tx)) < 0)
        goto nomem;
    s->ntx = rc;
    if ((rc = s_origins(s->in_h, s->tile_h, s->overlap, &s->ty)) < 0)
        goto nomem;
    s->nty = rc;
    rc = 0;
    if (s->ntx * s->nty > 1) {
        const size_t n = (size_t)s->out_w * (size_t)s->out_h;
        for (int c = 0; c < 3; c++)
            if (!(s->acc[c] = malloc(n * sizeof(float))))
                goto nomem;
        s->wsum = malloc(n * sizeof(float));
        s->wx = malloc((size_t)s->tile_w * (size_t)s->scale * sizeof(float));
        s->wy = malloc((size_t)s->tile_h * (size_t)s->scale * sizeof(float));
        if (!s->wsum || !s->wx || !s->wy)
            goto nomem;
    }
    *state = s;
    return 0;

nomem:
    rc = rf_err_set(err, RF_ENOMEM, "out of memory for %dx%d tiling", s->out_w, s->out_h);
cleanup:
    s_destroy(s);
    return rc;
}

static int s_plan_context(void *state)
{
    const s_onnx_t *s = state;
    return s->max_back;
}

static int s_output_size(void *state, int *width, int *height)
{
    const s_onnx_t *s = state;
    *width = s->out_w;
    *height = s->out_h;
    return 0;
}

/* ---- run ----------------------------------------------------------------------------------- */

static int s_run_tile(s_onnx_t *s, const rf_pframe_t *frame, int x0, int y0, rf_err_t *err)
{
    rf_err_t local = {0};
    s_fill_inputs(s, frame, x0, y0);
    int rc = rf_nn_plan_run(s->plan, s->in, s->ninputs, s->out, s->noutputs, &local);
    if (rc < 0)
        return rf_err_set(err, rc, "model at tile (%d, %d): %s", x0, y0, local.msg);
    return 0;
}

/* Output channel c of the last tile run (a 1-channel output feeds all three). */
static const float *s_tile_out(const s_onnx_t *s, int c)
{
    const size_t area = (size_t)s->tile_w * (size_t)s->scale * (size_t)s->tile_h * (size_t)s->scale;
    return (const float *)s->out[0].data + (s->out_channels == 1 ? 0 : (size_t)c * area);
}

/* Remembers frame's planes (as received) as the newest history entry. */
static void s_push_history(s_onnx_t *s, const rf_pframe_t *frame)
{
    if (s->max_back == 0)
        return;
    float *oldest[3];
    memcpy(oldest, s->hist[s->max_back - 1], sizeof oldest);
    memmove(&s->hist[1], &s->hist[0], (size_t)(s->max_back - 1) * sizeof s->hist[0]);
    memcpy(s->hist[0], oldest, sizeof oldest);
    const size_t n = (size_t)s->in_w * (size_t)s->in_h;
    for (int c = 0; c < 3; c++)
        memcpy(s->hist[0][c], frame->plane[c], n * sizeof(float));
    if (s->nhist < s->max_back)
        s->nhist++;
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    s_onnx_t *s = state;
    int rc = 0;
    float *out[3] = {NULL, NULL, NULL};
    const size_t ow = (size_t)s->out_w, oh = (size_t)s->out_h;
    const size_t tw = (size_t)s->tile_w * (size_t)s->scale, th = (size_t)s->tile_h * (size_t)s->scale;

    /* A gap in the frame indices (a new run of frames) starts the history afresh. */
    if (frame->index != s->last_index + 1)
        s->nhist = 0;
    s->last_index = frame->index;

    if (s_alloc_planes(out, s->out_w, s->out_h) < 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d frame", s->out_w, s->out_h);

    if (s->ntx * s->nty == 1) {
        if ((rc = s_run_tile(s, frame, 0, 0, err)) < 0)
            goto cleanup;
        for (int c = 0; c < 3; c++) {
            const float *src = s_tile_out(s, c);
            for (size_t i = 0; i < ow * oh; i++)
                out[c][i] = s_to_pipeline(s, src[i]);
        }
    } else {
        for (int c = 0; c < 3; c++)
            memset(s->acc[c], 0, ow * oh * sizeof(float));
        memset(s->wsum, 0, ow * oh * sizeof(float));
        for (int j = 0; j < s->nty; j++) {
            s_axis_weights(s->wy, s->ty[j], s->tile_h, s->in_h, s->scale, s->overlap);
            for (int i = 0; i < s->ntx; i++) {
                s_axis_weights(s->wx, s->tx[i], s->tile_w, s->in_w, s->scale, s->overlap);
                if ((rc = s_run_tile(s, frame, s->tx[i], s->ty[j], err)) < 0)
                    goto cleanup;
                const size_t ox = (size_t)s->tx[i] * (size_t)s->scale;
                const size_t oy = (size_t)s->ty[j] * (size_t)s->scale;
                for (size_t y = 0; y < th; y++) {
                    if (s->wy[y] == 0.0f)
                        continue;
                    float *ws = s->wsum + (oy + y) * ow + ox;
                    for (size_t x = 0; x < tw; x++)
                        ws[x] += s->wy[y] * s->wx[x];
                    for (int c = 0; c < 3; c++) {
                        const float *src = s_tile_out(s, c) + y * tw;
                        float *a = s->acc[c] + (oy + y) * ow + ox;
                        for (size_t x = 0; x < tw; x++)
                            a[x] += s->wy[y] * s->wx[x] * s_to_pipeline(s, src[x]);
                    }
                }
            }
        }
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < ow * oh; i++)
                out[c][i] = s->wsum[i] > 0 ? s->acc[c][i] / s->wsum[i] : 0.0f;
    }
    s_push_history(s, frame);
    for (int c = 0; c < 3; c++) {
        av_free(frame->plane[c]);
        frame->plane[c] = out[c];
        out[c] = NULL;
    }
    frame->width = s->out_w;
    frame->height = s->out_h;

cleanup:
    s_free_planes(out);
    return rc;
}

/* No flush: nothing is held back; the history only feeds later frames of the same chunk. */
const rf_pass_vtable_t rf_pass_onnx = {
    .name = "onnx",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = s_plan_context,
    .run = s_run,
    .flush = NULL,
    .destroy = s_destroy,
    .output_size = s_output_size,
};
