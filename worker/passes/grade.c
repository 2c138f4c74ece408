/* grade.c - the "grade" pass: exposure, contrast, saturation and gamma (CPU).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   exposure    float -4..4, default 0    stops: linear light is multiplied by 2^exposure
 *   contrast    float 0..4, default 1     slope around mid-grey 0.5 of the encoded values
 *   saturation  float 0..4, default 1     0 is grey (Rec.709 luma), 1 unchanged, 2 twice as vivid
 *   gamma       float 0.1..10, default 1  v^(1/gamma): above 1 brightens mid-tones, below darkens
 *
 * Per sample, in this fixed order, on every R, G, B value v:
 *   1. exposure:   L = srgb_to_linear(v); v = linear_to_srgb(L * 2^exposure)
 *   2. contrast:   v = (v - 0.5) * contrast + 0.5
 *   3. saturation: Y = 0.2126 R + 0.7152 G + 0.0722 B (of the pixel after step 2);
 *                  v = Y + (v - Y) * saturation
 *   4. gamma:      v = v^(1/gamma) for v > 0 (v <= 0 is left for the clamp)
 *   5. clamp to [0, 1]
 * Intermediate values are not clamped (a contrast that pushes a value below 0 is not undone by a
 * later step); only the result is.
 *
 * Transfer: exposure is the only step done in linear light, because a stop is a doubling of light,
 * not of code values. It uses the exact piecewise sRGB curve (IEC 61966-2-1), not a pure 2.2 power:
 *   srgb_to_linear(v) = v / 12.92                        for v <= 0.04045
 *                     = ((v + 0.055) / 1.055)^2.4        above
 *   linear_to_srgb(L) = 12.92 L                          for L <= 0.0031308
 *                     = 1.055 L^(1/2.4) - 0.055          above
 * so exposure +1 exactly doubles the linear light the sRGB decode of the output gives (before the
 * clamp). The curve is applied whatever the source's real transfer (BT.709 video is close to sRGB
 * on a display); the pipeline frames carry no transfer tag to do better. Contrast, saturation and
 * gamma work on the encoded values, as a colourist's controls do: mid-grey 0.5 is perceptual
 * mid-grey, and the luma for saturation is Y' (encoded), like deflicker's.
 *
 * Identity: a parameter at its identity value (exposure 0, contrast 1, saturation 1, gamma 1)
 * skips its step, and with all four there the frame is not touched at all - not even clamped - so
 * a default grade is bit-exact. Arithmetic is in double per sample, stored back as float.
 *
 * No state between frames: a frame's output depends only on it, so chunking cannot show.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "builtin.h"

#define RF_GRADE_EXPOSURE_MAX 4.0 /* stops either way: 16x light, more is not a grade */
#define RF_GRADE_CONTRAST_MAX 4.0
#define RF_GRADE_SATURATION_MAX 4.0
#define RF_GRADE_GAMMA_MIN 0.1
#define RF_GRADE_GAMMA_MAX 10.0

/* Rec.709 luma weights, as deflicker uses. */
#define RF_GRADE_LUMA_R 0.2126
#define RF_GRADE_LUMA_G 0.7152
#define RF_GRADE_LUMA_B 0.0722

typedef struct s_grade {
    double exposure;   /* stops */
    double gain;       /* 2^exposure, applied to linear light */
    double contrast;   /* slope around 0.5 */
    double saturation; /* 0 grey .. 1 unchanged .. */
    double gamma;      /* output = input^(1/gamma) */
    double inv_gamma;  /* 1 / gamma, computed once */
} s_grade_t;

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_grade_t *g = NULL;

    assert(setup && setup->spec && state);
    g = calloc(1, sizeof *g);
    if (!g) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = rf_pass_param_double(setup->spec, "exposure", 0.0, -RF_GRADE_EXPOSURE_MAX,
                              RF_GRADE_EXPOSURE_MAX, &g->exposure, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "contrast", 1.0, 0.0, RF_GRADE_CONTRAST_MAX,
                              &g->contrast, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "saturation", 1.0, 0.0, RF_GRADE_SATURATION_MAX,
                              &g->saturation, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "gamma", 1.0, RF_GRADE_GAMMA_MIN, RF_GRADE_GAMMA_MAX,
                              &g->gamma, err);
    if (rc < 0)
        goto cleanup;
    g->gain = exp2(g->exposure);
    g->inv_gamma = 1.0 / g->gamma;
    *state = g;
    g = NULL;

cleanup:
    free(g);
    return rc;
}

static double s_srgb_to_linear(double v)
{
    if (v <= 0.04045)
        return v / 12.92;
    return pow((v + 0.055) / 1.055, 2.4);
}

static double s_linear_to_srgb(double l)
{
    if (l <= 0.0031308)
        return 12.92 * l;
    return 1.055 * pow(l, 1.0 / 2.4) - 0.055;
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

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    const s_grade_t *g = state;
    (void)err; /* arithmetic on a frame the chain has checked cannot fail */

    const bool do_exposure = g->exposure != 0.0;
    const bool do_contrast = g->contrast != 1.0;
    const bool do_saturation = g->saturation != 1.0;
    const bool do_gamma = g->gamma != 1.0;
    if (!do_exposure && !do_contrast && !do_saturation && !do_gamma)
        return 0; /* the default grade: leave the samples bit-exact */

    float *r = frame->plane[0], *gr = frame->plane[1], *b = frame->plane[2];
    const size_t n = (size_t)frame->width * (size_t)frame->height;
    for (size_t i = 0; i < n; i++) {
        double v[3] = {r[i], gr[i], b[i]};
        if (do_exposure) {
            for (int c = 0; c < 3; c++)
                v[c] = s_linear_to_srgb(s_srgb_to_linear(v[c]) * g->gain);
        }
        if (do_contrast) {
            for (int c = 0; c < 3; c++)
                v[c] = (v[c] - 0.5) * g->contrast + 0.5;
        }
        if (do_saturation) {
            const double y =
                RF_GRADE_LUMA_R * v[0] + RF_GRADE_LUMA_G * v[1] + RF_GRADE_LUMA_B * v[2];
            for (int c = 0; c < 3; c++)
                v[c] = y + (v[c] - y) * g->saturation;
        }
        if (do_gamma) {
            for (int c = 0; c < 3; c++) {
                if (v[c] > 0.0)
                    v[c] = pow(v[c], g->inv_gamma);
            }
        }
        r[i] = s_clamp01(v[0]);
        gr[i] = s_clamp01(v[1]);
        b[i] = s_clamp01(v[2]);
    }
    return 0;
}

static void s_destroy(void *state)
{
    free(state);
}

/* No plan (no context wanted) and no flush (nothing held between frames). */
const rf_pass_vtable_t rf_pass_grade = {
    .name = "grade",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = NULL,
    .run = s_run,
    .flush = NULL,
    .destroy = s_destroy,
};

bool rf_grade_params(const void *state, bool steps[4], double *gain, double *contrast,
                     double *saturation, double *inv_gamma)
{
    const s_grade_t *g = state;
    steps[0] = g->exposure != 0.0;
    steps[1] = g->contrast != 1.0;
    steps[2] = g->saturation != 1.0;
    steps[3] = g->gamma != 1.0;
    *gain = g->gain;
    *contrast = g->contrast;
    *saturation = g->saturation;
    *inv_gamma = g->inv_gamma;
    return steps[0] || steps[1] || steps[2] || steps[3];
}
