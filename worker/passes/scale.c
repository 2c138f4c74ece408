/* scale.c - the "scale" pass: resizes frames with a separable Lanczos (a = 3) or bicubic filter
 * (CPU). The only built-in pass that changes the frame size (pass ABI 2, output_size).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   width   int 0..16384, default 0   output width; 0 = from height, keeping the aspect ratio
 *   height  int 0..16384, default 0   output height; 0 = from width, keeping the aspect ratio
 *   filter  lanczos|bicubic, default lanczos
 * At least one of width and height must be given. The computed side is
 *   round(other * in_side / in_other / 2) * 2, at least 2
 * (even, because 4:2:0 encoders need even sizes; the sample aspect ratio is taken as square).
 * A size given explicitly is used as is.
 *
 * Filter, per axis, for output coordinate o with in/out ratio s = in / out:
 *   centre  x = (o + 0.5) * s - 0.5             (pixel centres line up, as in swscale/Pillow)
 *   stretch f = max(1, s)                        (a downscale widens the kernel: anti-aliasing)
 *   weight  w_j = K((x - j) / f) for input samples j with |x - j| < R * f, normalised to sum 1
 *   K       Lanczos: sinc(t) sinc(t / 3) for |t| < 3 (R = 3); bicubic: Keys with a = -0.5 (R = 2)
 * Samples outside the frame repeat the edge. The horizontal pass runs first, into a scratch
 * buffer of out_width x in_height, then the vertical one; sums are in double, results are clamped
 * to [0, 1] (the filters' negative lobes ring past the range at hard edges). An axis whose size
 * does not change is not filtered at all, and a scale to the input size leaves frames bit-exact.
 *
 * Cost: per output sample about 2 R f multiply-adds per axis (Lanczos 1:1 = 6 + 6; a 2x
 * downscale 12 + 12), plus one new set of planes per frame.
 *
 * Planes: run() allocates the output planes (av_malloc, width*height + RF_PFRAME_PAD_FLOATS
 * floats), frees the frame's old ones and installs the new ones with the new size (passes.h).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/mem.h>

#include "builtin.h"

#define RF_SCALE_LANCZOS_A 3

/* Weights of one axis: output o reads taps samples from first[o] (edges already replicated into
 * index[]). */
typedef struct s_axis {
    int in, out;    /* sizes */
    int taps;       /* per output sample */
    int *index;     /* [out * taps] input sample for each tap */
    double *weight; /* [out * taps] normalised weights */
} s_axis_t;

typedef struct s_scale {
    bool bicubic;
    int in_w, in_h, out_w, out_h;
    s_axis_t x, y;
    float *scratch; /* out_w * in_h: the horizontally filtered planes, one at a time */
} s_scale_t;

static double s_sinc(double t)
{
    if (t == 0.0)
        return 1.0;
    const double p = M_PI * t;
    return sin(p) / p;
}

static double s_kernel(bool bicubic, double t)
{
    t = fabs(t);
    if (bicubic) {
        const double a = -0.5;
        if (t < 1)
            return ((a + 2) * t - (a + 3)) * t * t + 1;
        if (t < 2)
            return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
        return 0;
    }
    return t < RF_SCALE_LANCZOS_A ? s_sinc(t) * s_sinc(t / RF_SCALE_LANCZOS_A) : 0.0;
}

static void s_axis_free(s_axis_t *a)
{
    free(a->index);
    free(a->weight);
    memset(a, 0, sizeof *a);
}

static int s_axis_init(s_axis_t *a, int in, int out, bool bicubic, rf_err_t *err)
{
    const double s = (double)in / (double)out;
    const double f = s > 1 ? s : 1;
    const double radius = (bicubic ? 2 : RF_SCALE_LANCZOS_A) * f;

    a->in = in;
    a->out = out;
    a->taps = (int)ceil(2 * radius) + 1;
    a->index = malloc((size_t)out * (size_t)a->taps * sizeof *a->index);
    a->weight = malloc((size_t)out * (size_t)a->taps * sizeof *a->weight);
    if (!a->index || !a->weight)
        return rf_err_set(err, RF_ENOMEM, "out of memory for the %d -> %d filter", in, out);
    for (int o = 0; o < out; o++) {
        const double x = (o + 0.5) * s - 0.5;
        const int first = (int)floor(x - radius) + 1;
        int *idx = &a->index[(size_t)o * (size_t)a->taps];
        double *w = &a->weight[(size_t)o * (size_t)a->taps];
        double sum = 0;
        for (int k = 0; k < a->taps; k++) {
            const int j = first + k;
            w[k] = s_kernel(bicubic, (x - j) / f);
            idx[k] = j < 0 ? 0 : (j >= in ? in - 1 : j);
            sum += w[k];
        }
        /* sum > 0: the tap nearest x has weight near 1 and the far lobes are small. */
        for (int k = 0; k < a->taps; k++)
            w[k] /= sum;
    }
    return 0;
}

/* The side computed from the other one: round(other * num / den / 2) * 2, at least 2. */
static int s_keep_aspect(int other, int num, int den)
{
    const long v = lround((double)other * (double)num / (double)den / 2.0) * 2;
    return v < 2 ? 2 : (v > RF_PASS_MAX_DIM ? RF_PASS_MAX_DIM : (int)v);
}

static void s_destroy(void *state)
{
    s_scale_t *sc = state;
    if (!sc)
        return;
    s_axis_free(&sc->x);
    s_axis_free(&sc->y);
    free(sc->scratch);
    free(sc);
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_scale_t *sc = NULL;
    int w = 0, h = 0;

    assert(setup && setup->spec && state);
    sc = calloc(1, sizeof *sc);
    if (!sc) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = rf_pass_param_int(setup->spec, "width", 0, 0, RF_PASS_MAX_DIM, &w, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_int(setup->spec, "height", 0, 0, RF_PASS_MAX_DIM, &h, err);
    if (rc < 0)
        goto cleanup;
    const char *filter = rf_pass_spec_param(setup->spec, "filter");
    if (filter && strcmp(filter, "lanczos") != 0 && strcmp(filter, "bicubic") != 0) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "parameter 'filter': expected lanczos or bicubic, got '%s'", filter);
        goto cleanup;
    }
    sc->bicubic = filter && strcmp(filter, "bicubic") == 0;
    if (w == 0 && h == 0) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "parameters 'width' and 'height': both 0, give at least one (the other "
                        "0 keeps the aspect ratio)");
        goto cleanup;
    }
    if (setup->width <= 0 || setup->height <= 0) {
        rc = rf_err_set(err, RF_EINVAL, "invalid input size %dx%d", setup->width, setup->height);
        goto cleanup;
    }
    sc->in_w = setup->width;
    sc->in_h = setup->height;
    sc->out_w = w ? w : s_keep_aspect(h, setup->width, setup->height);
    sc->out_h = h ? h : s_keep_aspect(w, setup->height, setup->width);

    rc = s_axis_init(&sc->x, sc->in_w, sc->out_w, sc->bicubic, err);
    if (rc < 0)
        goto cleanup;
    rc = s_axis_init(&sc->y, sc->in_h, sc->out_h, sc->bicubic, err);
    if (rc < 0)
        goto cleanup;
    sc->scratch = malloc((size_t)sc->out_w * (size_t)sc->in_h * sizeof *sc->scratch);
    if (!sc->scratch) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d scratch plane", sc->out_w,
                        sc->in_h);
        goto cleanup;
    }
    *state = sc;
    sc = NULL;

cleanup:
    s_destroy(sc);
    return rc;
}

static int s_output_size(void *state, int *width, int *height)
{
    const s_scale_t *sc = state;
    *width = sc->out_w;
    *height = sc->out_h;
    return 0;
}

static inline float s_clamp01(double v)
{
    /* NaN compares false both ways and ends up 0: a broken sample must not reach the encoder. */
    if (v > 1.0)
        return 1.0f;
    if (v >= 0.0)
        return (float)v;
    return 0.0f;
}

/* Rows of src (in_w wide, rows of them) filtered horizontally into dst (out_w wide). */
static void s_filter_rows(const s_axis_t *a, const float *src, float *dst, int rows)
{
    for (int y = 0; y < rows; y++) {
        const float *in = src + (size_t)y * (size_t)a->in;
        float *out = dst + (size_t)y * (size_t)a->out;
        for (int o = 0; o < a->out; o++) {
            const int *idx = &a->index[(size_t)o * (size_t)a->taps];
            const double *w = &a->weight[(size_t)o * (size_t)a->taps];
            double sum = 0;
            for (int k = 0; k < a->taps; k++)
                sum += w[k] * in[idx[k]];
            out[o] = s_clamp01(sum);
        }
    }
}

/* Columns of src (cols wide, a->in rows) filtered vertically into dst (a->out rows). */
static void s_filter_cols(const s_axis_t *a, const float *src, float *dst, int cols)
{
    for (int o = 0; o < a->out; o++) {
        const int *idx = &a->index[(size_t)o * (size_t)a->taps];
        const double *w = &a->weight[(size_t)o * (size_t)a->taps];
        float *out = dst + (size_t)o * (size_t)cols;
        for (int x = 0; x < cols; x++) {
            double sum = 0;
            for (int k = 0; k < a->taps; k++)
                sum += w[k] * src[(size_t)idx[k] * (size_t)cols + (size_t)x];
            out[x] = s_clamp01(sum);
        }
    }
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    s_scale_t *sc = state;
    if (sc->out_w == sc->in_w && sc->out_h == sc->in_h)
        return 0; /* nothing to do: bit-exact */

    const bool do_x = sc->out_w != sc->in_w, do_y = sc->out_h != sc->in_h;
    const size_t n = (size_t)sc->out_w * (size_t)sc->out_h + RF_PFRAME_PAD_FLOATS;
    float *out[3] = {NULL, NULL, NULL};
    for (int p = 0; p < 3; p++) {
        out[p] = av_malloc_array(n, sizeof(float));
        if (!out[p]) {
            for (int q = 0; q < p; q++)
                av_free(out[q]);
            return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d frame", sc->out_w,
                              sc->out_h);
        }
    }
    for (int p = 0; p < 3; p++) {
        if (!do_y) {
            s_filter_rows(&sc->x, frame->plane[p], out[p], sc->in_h);
        } else if (!do_x) {
            s_filter_cols(&sc->y, frame->plane[p], out[p], sc->in_w);
        } else {
            s_filter_rows(&sc->x, frame->plane[p], sc->scratch, sc->in_h);
            s_filter_cols(&sc->y, sc->scratch, out[p], sc->out_w);
        }
        av_free(frame->plane[p]);
        frame->plane[p] = out[p];
    }
    frame->width = sc->out_w;
    frame->height = sc->out_h;
    return 0;
}

/* No plan (no context wanted) and no flush (nothing held between frames). */
const rf_pass_vtable_t rf_pass_scale = {
    .name = "scale",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = NULL,
    .run = s_run,
    .flush = NULL,
    .destroy = s_destroy,
    .output_size = s_output_size,
};

bool rf_scale_params(const void *state, int *in_w, int *in_h, rf_scale_axis_t *x,
                     rf_scale_axis_t *y)
{
    const s_scale_t *sc = state;
    *in_w = sc->in_w;
    *in_h = sc->in_h;
    *x = (rf_scale_axis_t){sc->x.in, sc->x.out, sc->x.taps, sc->x.index, sc->x.weight};
    *y = (rf_scale_axis_t){sc->y.in, sc->y.out, sc->y.taps, sc->y.index, sc->y.weight};
    return sc->out_w != sc->in_w || sc->out_h != sc->in_h;
}
