/* deflicker.c - the "deflicker" pass: evens out frame-to-frame brightness changes (CPU).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   strength  float 0..1, default 0.6  how far each frame is pulled towards the local average
 *                                      brightness: 0 leaves frames untouched, 1 matches it fully
 *   window    int 1..120, default 8    how many frames (this one and the window-1 before it) the
 *                                      average brightness is taken over
 *
 * Per frame:
 *   mean   = mean over all pixels of 0.2126 R + 0.7152 G + 0.0722 B (Rec.709 luma weights)
 *   target = average of the means of the last `window` frames, this one included (fewer at the
 *            very start of the video, where fewer exist)
 *   gain   = 1 + strength * (target / mean - 1), clamped to [0.5, 2]; 1 when mean < 1e-4
 *   R, G, B *= gain, each clamped to [0, 1]
 *
 * The weights are applied to the values as given - the source's transfer curve, not linear light.
 * Linearising would cost a pow() per sample and a flicker is a change of exposure, which a gain on
 * the encoded values follows closely enough for the small corrections this pass makes. The gain
 * is linear in strength (not (target/mean)^strength) so strength reads as "fraction of the
 * correction applied"; the clamp keeps a cut to or from black from being "corrected" wildly, and a
 * near-black frame has no brightness to correct.
 *
 * Chunk invariance: the history holds the means of the *input* frames, never of corrected ones,
 * and the average is recomputed from the history in frame order every time (no running sum whose
 * rounding would depend on how long the pass has been running). So a frame's output depends only
 * on it and the window-1 frames before it; plan() asks for exactly those as context, and a chunk
 * with that much context gives bit-identical frames to one long run.
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

#define RF_DEFLICKER_STRENGTH_DEFAULT 0.6
#define RF_DEFLICKER_WINDOW_DEFAULT 8
#define RF_DEFLICKER_WINDOW_MAX 120
#define RF_DEFLICKER_GAIN_MIN 0.5
#define RF_DEFLICKER_GAIN_MAX 2.0
#define RF_DEFLICKER_BLACK 1e-4 /* a mean below this is black: no gain is applied */

typedef struct s_deflicker {
    double strength;
    int window;
    double means[RF_DEFLICKER_WINDOW_MAX]; /* ring of the last `count` input means */
    int head;                              /* where the next mean goes */
    int count;                             /* means held, at most window */
    int64_t last_index;                    /* global index of the previous frame */
    bool started;                          /* a frame has been seen since create/flush */
} s_deflicker_t;

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_deflicker_t *d = NULL;

    assert(setup && setup->spec && state);
    d = calloc(1, sizeof *d);
    if (!d) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = rf_pass_param_double(setup->spec, "strength", RF_DEFLICKER_STRENGTH_DEFAULT, 0.0, 1.0,
                        &d->strength, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_int(setup->spec, "window", RF_DEFLICKER_WINDOW_DEFAULT, 1, RF_DEFLICKER_WINDOW_MAX,
                     &d->window, err);
    if (rc < 0)
        goto cleanup;
    *state = d;
    d = NULL;

cleanup:
    free(d);
    return rc;
}

static int s_plan(void *state)
{
    const s_deflicker_t *d = state;
    return d->window - 1;
}

/* Mean Rec.709 luma of the frame, summed row by row in double: fixed order, so deterministic. */
static double s_mean_luma(const rf_pframe_t *f)
{
    const size_t n = (size_t)f->width * (size_t)f->height;
    const float *r = f->plane[0], *g = f->plane[1], *b = f->plane[2];
    double total = 0.0;
    for (int y = 0; y < f->height; y++) {
        double row = 0.0;
        for (size_t i = (size_t)y * (size_t)f->width; i < (size_t)(y + 1) * (size_t)f->width; i++)
            row += 0.2126 * r[i] + 0.7152 * g[i] + 0.0722 * b[i];
        total += row;
    }
    return n > 0 ? total / (double)n : 0.0;
}

static inline float s_clamp01(float v)
{
    /* NaN compares false both ways and ends up 0: a broken sample must not reach the encoder. */
    if (v > 1.0f)
        return 1.0f;
    if (v >= 0.0f)
        return v;
    return 0.0f;
}

int rf_deflicker_begin(void *state, int64_t index, rf_err_t *err)
{
    s_deflicker_t *d = state;

    if (d->started && index != d->last_index + 1) {
        /* The history would describe frames that are not the ones before this one. */
        return rf_err_set(err, RF_EINVAL, "frames out of order: got frame %lld after %lld",
                          (long long)index, (long long)d->last_index);
    }
    d->started = true;
    d->last_index = index;
    return 0;
}

double rf_deflicker_gain(void *state, double mean)
{
    s_deflicker_t *d = state;
    d->means[d->head] = mean;
    d->head = (d->head + 1) % d->window;
    if (d->count < d->window)
        d->count++;

    /* Oldest first, so the sum's rounding is the same however the history was reached. */
    double sum = 0.0;
    int oldest = (d->head - d->count + d->window) % d->window;
    for (int k = 0; k < d->count; k++)
        sum += d->means[(oldest + k) % d->window];
    const double target = sum / d->count;

    double gain = 1.0;
    if (mean >= RF_DEFLICKER_BLACK) {
        gain = 1.0 + d->strength * (target / mean - 1.0);
        if (gain < RF_DEFLICKER_GAIN_MIN)
            gain = RF_DEFLICKER_GAIN_MIN;
        if (gain > RF_DEFLICKER_GAIN_MAX)
            gain = RF_DEFLICKER_GAIN_MAX;
    }
    return gain;
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    int rc = rf_deflicker_begin(state, frame->index, err);
    if (rc < 0)
        return rc;
    const double gain = rf_deflicker_gain(state, s_mean_luma(frame));
    if (gain == 1.0)
        return 0; /* identity (strength 0, steady brightness): leave the samples bit-exact */

    const float g = (float)gain;
    const size_t n = (size_t)frame->width * (size_t)frame->height;
    for (int p = 0; p < 3; p++) {
        float *px = frame->plane[p];
        for (size_t i = 0; i < n; i++)
            px[i] = s_clamp01(px[i] * g);
    }
    return 0;
}

/* The end of a chunk: forget the history, so a reused state starts like a fresh one. */
static int s_flush(void *state, rf_err_t *err)
{
    s_deflicker_t *d = state;
    (void)err; /* forgetting cannot fail */
    d->head = 0;
    d->count = 0;
    d->started = false;
    return 0;
}

static void s_destroy(void *state)
{
    free(state);
}

const rf_pass_vtable_t rf_pass_deflicker = {
    .name = "deflicker",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = s_plan,
    .run = s_run,
    .flush = s_flush,
    .destroy = s_destroy,
};
