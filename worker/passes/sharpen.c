/* sharpen.c - the "sharpen" pass: an unsharp mask (CPU).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   amount     float 0..5, default 0.5    how much of the detail (v - blur) is added back: 0 leaves
 *                                         frames untouched, 1 doubles the detail
 *   radius     float 0.1..10, default 1   the blur's Gaussian sigma, in pixels: the size of the
 *                                         detail that is sharpened
 *   threshold  float 0..1, default 0      a sample whose detail |v - blur| is not above this is
 *                                         left alone, so flat noise and grain are not boosted
 *
 * Per plane (R, G, B each on its own):
 *   w[k]  = exp(-k^2 / (2 sigma^2)) for k = -h..h, h = ceil(3 sigma), divided by their sum
 *   blur  = the kernel run along rows, then along columns (separable, so the 2-D weight of an
 *           offset (i, j) is w[i] w[j]); a tap beyond the frame reads the nearest edge sample
 *           (replicate), so borders neither darken nor brighten
 *   d     = v - blur
 *   v'    = v + amount * d    where |d| > threshold, else v; then clamped to [0, 1] (every
 *           sample, boosted or not, so the output is always in range)
 *
 * The sums are taken in double in a fixed order and the blur is rounded to float before d is
 * formed: a flat area then blurs to exactly its own value (the weights sum to 1 within double
 * rounding, far below a float's), so d is exactly 0 and a flat frame comes out bit-identical for
 * any amount. amount 0 skips the frame altogether (bit-exact, no clamp).
 *
 * No state between frames: a frame's output depends only on it, so chunking cannot show and no
 * context is asked for. The row-blurred intermediate lives in a buffer allocated once at create
 * for the frame size the chain was set up with.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "builtin.h"

#define RF_SHARPEN_AMOUNT_DEFAULT 0.5
#define RF_SHARPEN_AMOUNT_MAX 5.0
#define RF_SHARPEN_RADIUS_DEFAULT 1.0
#define RF_SHARPEN_RADIUS_MIN 0.1
#define RF_SHARPEN_RADIUS_MAX 10.0
#define RF_SHARPEN_HALF_MAX 30 /* ceil(3 * RF_SHARPEN_RADIUS_MAX) */

typedef struct s_sharpen {
    double amount;                          /* share of the detail added back */
    double radius;                          /* Gaussian sigma, pixels */
    double threshold;                       /* |v - blur| must exceed this to be boosted */
    int half;                               /* kernel half-width, ceil(3 sigma) */
    double weight[RF_SHARPEN_HALF_MAX + 1]; /* w[0..half]; w[-k] = w[k]; they sum to 1 */
    int width, height;                      /* the frame size tmp was made for */
    float *tmp;                             /* width*height: one plane blurred along rows */
} s_sharpen_t;

static void s_destroy(void *state)
{
    s_sharpen_t *s = state;
    if (!s)
        return;
    free(s->tmp);
    free(s);
}

/* The normalised Gaussian weights w[0..half], summed from -half to half in that order. */
static void s_kernel(s_sharpen_t *s)
{
    const double two_var = 2.0 * s->radius * s->radius;
    double sum = 0.0;
    for (int k = 0; k <= s->half; k++)
        s->weight[k] = exp(-(double)(k * k) / two_var);
    for (int k = -s->half; k <= s->half; k++)
        sum += s->weight[abs(k)];
    for (int k = 0; k <= s->half; k++)
        s->weight[k] /= sum;
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_sharpen_t *s = NULL;

    assert(setup && setup->spec && state);
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = rf_pass_param_double(setup->spec, "amount", RF_SHARPEN_AMOUNT_DEFAULT, 0.0,
                              RF_SHARPEN_AMOUNT_MAX, &s->amount, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "radius", RF_SHARPEN_RADIUS_DEFAULT,
                              RF_SHARPEN_RADIUS_MIN, RF_SHARPEN_RADIUS_MAX, &s->radius, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "threshold", 0.0, 0.0, 1.0, &s->threshold, err);
    if (rc < 0)
        goto cleanup;
    if (setup->width <= 0 || setup->height <= 0) {
        rc = rf_err_set(err, RF_EINVAL, "invalid frame size %dx%d", setup->width, setup->height);
        goto cleanup;
    }
    s->half = (int)ceil(3.0 * s->radius);
    assert(s->half >= 1 && s->half <= RF_SHARPEN_HALF_MAX);
    s_kernel(s);
    s->width = setup->width;
    s->height = setup->height;
    s->tmp = malloc((size_t)s->width * (size_t)s->height * sizeof *s->tmp);
    if (!s->tmp) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d blur buffer", s->width,
                        s->height);
        goto cleanup;
    }
    *state = s;
    s = NULL;

cleanup:
    s_destroy(s);
    return rc;
}

static inline int s_clamp_index(int i, int n)
{
    if (i < 0)
        return 0;
    if (i >= n)
        return n - 1;
    return i;
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

/* Blurs px along rows into s->tmp. */
static void s_blur_rows(const s_sharpen_t *s, const float *px)
{
    const int w = s->width, h = s->height, half = s->half;
    for (int y = 0; y < h; y++) {
        const float *row = px + (size_t)y * (size_t)w;
        float *out = s->tmp + (size_t)y * (size_t)w;
        for (int x = 0; x < w; x++) {
            double sum = 0.0;
            for (int k = -half; k <= half; k++)
                sum += s->weight[abs(k)] * row[s_clamp_index(x + k, w)];
            out[x] = (float)sum;
        }
    }
}

/* Blurs s->tmp along columns and applies the unsharp mask to px in place. Only tmp is read for
 * the blur, so writing px as we go is safe. */
static void s_mask_columns(const s_sharpen_t *s, float *px)
{
    const int w = s->width, h = s->height, half = s->half;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double sum = 0.0;
            for (int k = -half; k <= half; k++) {
                const size_t row = (size_t)s_clamp_index(y + k, h);
                sum += s->weight[abs(k)] * s->tmp[row * (size_t)w + (size_t)x];
            }
            const size_t i = (size_t)y * (size_t)w + (size_t)x;
            const double v = px[i];
            const double d = v - (double)(float)sum;
            px[i] = s_clamp01(fabs(d) > s->threshold ? v + s->amount * d : v);
        }
    }
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    const s_sharpen_t *s = state;

    if (frame->width != s->width || frame->height != s->height)
        return rf_err_set(err, RF_EINVAL, "frame is %dx%d, the pass was made for %dx%d",
                          frame->width, frame->height, s->width, s->height);
    if (s->amount == 0.0)
        return 0; /* identity: leave the samples bit-exact */
    for (int p = 0; p < 3; p++) {
        s_blur_rows(s, frame->plane[p]);
        s_mask_columns(s, frame->plane[p]);
    }
    return 0;
}

/* No plan (no context wanted) and no flush (nothing held between frames). */
const rf_pass_vtable_t rf_pass_sharpen = {
    .name = "sharpen",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = NULL,
    .run = s_run,
    .flush = NULL,
    .destroy = s_destroy,
};

bool rf_sharpen_params(const void *state, int *width, int *height, double *amount,
                       double *threshold, int *half, const double **weight)
{
    const s_sharpen_t *s = state;
    *width = s->width;
    *height = s->height;
    *amount = s->amount;
    *threshold = s->threshold;
    *half = s->half;
    *weight = s->weight;
    return s->amount != 0.0;
}
