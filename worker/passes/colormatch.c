/* colormatch.c - the "color-match" pass: moves each frame's colour statistics in Oklab to a
 * reference (CPU).
 *
 * Parameters (config/catalog.c declares them; the spec arrives with defaults filled in):
 *   reference  text, default "source"  "source": the scene's reference statistics, which the
 *                                      coordinator computes from the source at plan time and
 *                                      hands over as the internal parameter scene_ref; or six
 *                                      numbers "L,a,b,Lstd,astd,bstd" (Oklab means then standard
 *                                      deviations, media.h's text form) for fixed statistics
 *   strength   float 0..1, default 1   fraction of the correction applied; 0 leaves frames alone
 *   smoothing  float 0..30, default 4  time constant tau in frames of the smoothing of the frame
 *                                      statistics; 0 uses each frame's own statistics
 *   scene_ref  internal (not allowed in job specs): the references for reference "source",
 *              one per scene the chunk touches, "FIRST:L,a,b,Ls,as,bs;FIRST:..." (FIRST = the
 *              scene's first global frame; coordinator/store.h color_ref), or six numbers for
 *              one reference throughout; required then, and a missing one fails the chunk for
 *              good (a coordinator that did not compute it will not on a retry either)
 *
 * Scenes: each frame is matched to the reference of the scene it belongs to (the last entry whose
 * FIRST is at or before its global index), and the smoothing history starts afresh at a scene's
 * first frame - a cut is a change by intent, the previous shot's colours must not leak into the
 * next one. Both depend only on the global frame index, so chunking does not change the output.
 *
 * Per frame (channel c in L, a, b; Oklab and the sRGB EOTF as media.h's colour section says):
 *   1. the frame's statistics mu_f, sigma_f (rf_color_stats; every pixel up to 2^18 pixels, else
 *      every step-th pixel in x and y, step = ceil(sqrt(pixels / 2^18)))
 *   2. smoothing: the statistics of this frame and the window-1 before it (window = ceil(3 tau)
 *      + 1; 1 when tau is 0) are pooled with weights exp(-k / tau), k = 0 for this frame:
 *        mu = sum(w mu_k) / sum(w),  sigma^2 = sum(w (sigma_k^2 + mu_k^2)) / sum(w) - mu^2
 *      i.e. the mean and variance of the weighted mixture of those frames, so one odd frame (a
 *      flash) moves the correction by its weight only and the correction does not flicker
 *   3. gain_c = sigma_ref / sigma, clamped to [0.25, 4] (1 when sigma < 1e-6: a flat channel has
 *      no spread to scale); the clamp keeps a nearly grey frame from being painted with colour
 *      it never had
 *   4. per pixel: x' = (x - mu) * gain + mu_ref (Reinhard et al. 2001, in Oklab), then
 *      x = x + strength * (x' - x), back to sRGB, clamped to [0, 1]
 *
 * Chunk invariance: as in deflicker, the history holds the statistics of the *input* frames and
 * the pooled value is recomputed from it oldest first every frame, so a frame's output depends
 * only on it and the window-1 frames before it; plan() asks for exactly those as context.
 *
 * Cost: per pixel one sRGB -> Oklab -> sRGB round trip (3 pow, 3 cbrt, 3 pow) plus the
 * statistics' conversion of the sampled pixels: about 2 conversions per pixel; strength 0 costs
 * nothing (frames are not touched, bit-exact).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "media.h"

#define RF_COLORMATCH_SMOOTHING_DEFAULT 4.0
#define RF_COLORMATCH_SMOOTHING_MAX 30.0
#define RF_COLORMATCH_WINDOW_MAX 91 /* ceil(3 * 30) + 1 */
#define RF_COLORMATCH_GAIN_MIN 0.25
#define RF_COLORMATCH_GAIN_MAX 4.0
#define RF_COLORMATCH_FLAT 1e-6             /* a deviation below this is a flat channel */
#define RF_COLORMATCH_SAMPLES_MAX (1 << 18) /* pixels read for the statistics, about */

typedef struct s_ref {
    int64_t first; /* the scene's first global frame (INT64_MIN: every frame) */
    rf_color_stats_t stats;
} s_ref_t;

#define RF_COLORMATCH_SCENES_MAX 4096 /* references one chunk may list */

typedef struct s_colormatch {
    rf_color_stats_t ref; /* target statistics of the current frame's scene */
    s_ref_t *refs;        /* every scene's, by first frame ascending */
    size_t nrefs;
    size_t cur;           /* refs[cur] is the current frame's; SIZE_MAX before the first frame */
    double strength;
    double tau;                                      /* smoothing time constant, frames; 0 = none */
    int window;                                      /* frames pooled */
    double weight[RF_COLORMATCH_WINDOW_MAX];         /* exp(-k / tau), k = age in frames */
    rf_color_stats_t hist[RF_COLORMATCH_WINDOW_MAX]; /* ring of input statistics */
    int head;                                        /* where the next statistics go */
    int count;                                       /* held, at most window */
    int step; /* statistics subsampling for this frame size */
    int64_t last_index;
    bool started;
} s_colormatch_t;

/* Parses scene_ref: six numbers, or "FIRST:six;FIRST:six;..." with FIRST ascending. */
static int s_scene_refs(const char *text, s_colormatch_t *m, rf_err_t *err)
{
    rf_err_t local = {0};
    if (!strchr(text, ':')) {
        if (!(m->refs = calloc(1, sizeof(*m->refs))))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        m->nrefs = 1;
        m->refs[0].first = INT64_MIN;
        if (rf_color_stats_parse(text, &m->refs[0].stats, &local) < 0)
            return rf_err_set(err, RF_ECONFIG, "parameter 'scene_ref': %s", local.msg);
        return 0;
    }
    size_t n = 1;
    for (const char *p = text; *p; p++)
        n += *p == ';';
    if (n > RF_COLORMATCH_SCENES_MAX)
        return rf_err_set(err, RF_ECONFIG, "parameter 'scene_ref': %zu scenes, at most %d", n,
                          RF_COLORMATCH_SCENES_MAX);
    if (!(m->refs = calloc(n, sizeof(*m->refs))))
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    const char *p = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char entry[RF_COLOR_STATS_TEXT_MAX + 32];
        char *colon = NULL, *num_end = NULL;
        if (len >= sizeof(entry))
            return rf_err_set(err, RF_ECONFIG, "parameter 'scene_ref': entry %zu is too long", i + 1);
        memcpy(entry, p, len);
        entry[len] = '\0';
        colon = strchr(entry, ':');
        long long first = colon ? strtoll(entry, &num_end, 10) : -1;
        if (!colon || num_end != colon || first < 0 ||
            (i > 0 && first <= m->refs[i - 1].first))
            return rf_err_set(err, RF_ECONFIG,
                              "parameter 'scene_ref': entry %zu '%s': expected FIRST:L,a,b,Ls,as,bs "
                              "with FIRST a frame index after the previous entry's",
                              i + 1, entry);
        m->refs[i].first = first;
        if (rf_color_stats_parse(colon + 1, &m->refs[i].stats, &local) < 0)
            return rf_err_set(err, RF_ECONFIG, "parameter 'scene_ref': entry %zu: %s", i + 1,
                              local.msg);
        m->nrefs = i + 1;
        p = end ? end + 1 : p + len;
    }
    return 0;
}

static int s_reference(const rf_pass_spec_t *spec, s_colormatch_t *m, rf_err_t *err)
{
    const char *reference = rf_pass_spec_param(spec, "reference");
    rf_err_t local = {0};

    if (!reference || strcmp(reference, "source") == 0) {
        const char *scene = rf_pass_spec_param(spec, "scene_ref");
        if (!scene || !*scene)
            return rf_err_set(err, RF_ECONFIG,
                              "parameter 'scene_ref': missing, and reference 'source' needs the "
                              "scene's reference statistics from the coordinator (give reference "
                              "as six numbers 'L,a,b,Lstd,astd,bstd' to use fixed statistics)");
        return s_scene_refs(scene, m, err);
    }
    if (!(m->refs = calloc(1, sizeof(*m->refs))))
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    m->nrefs = 1;
    m->refs[0].first = INT64_MIN;
    if (rf_color_stats_parse(reference, &m->refs[0].stats, &local) < 0)
        return rf_err_set(err, RF_ECONFIG, "parameter 'reference': expected 'source' or %s",
                          local.msg);
    return 0;
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    int rc = 0;
    s_colormatch_t *m = NULL;

    assert(setup && setup->spec && state);
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    rc = rf_pass_param_double(setup->spec, "strength", 1.0, 0.0, 1.0, &m->strength, err);
    if (rc < 0)
        goto cleanup;
    rc = rf_pass_param_double(setup->spec, "smoothing", RF_COLORMATCH_SMOOTHING_DEFAULT, 0.0,
                              RF_COLORMATCH_SMOOTHING_MAX, &m->tau, err);
    if (rc < 0)
        goto cleanup;
    rc = s_reference(setup->spec, m, err);
    if (rc < 0)
        goto cleanup;
    m->cur = SIZE_MAX;
    m->ref = m->refs[0].stats;

    m->window = m->tau > 0 ? (int)ceil(3.0 * m->tau) + 1 : 1;
    assert(m->window <= RF_COLORMATCH_WINDOW_MAX);
    for (int k = 0; k < m->window; k++)
        m->weight[k] = m->tau > 0 ? exp(-(double)k / m->tau) : 1.0;

    const double pixels = (double)setup->width * (double)setup->height;
    m->step = pixels <= RF_COLORMATCH_SAMPLES_MAX
                  ? 1
                  : (int)ceil(sqrt(pixels / RF_COLORMATCH_SAMPLES_MAX));
    *state = m;
    m = NULL;

cleanup:
    if (m)
        free(m->refs);
    free(m);
    return rc;
}

static int s_plan(void *state)
{
    const s_colormatch_t *m = state;
    return m->window - 1;
}

/* The weighted mixture of the held statistics: oldest first, so rounding is the same however
 * the history was reached. */
static void s_pooled(const s_colormatch_t *m, rf_color_stats_t *out)
{
    double wsum = 0, mean[3] = {0, 0, 0}, second[3] = {0, 0, 0};
    for (int age = m->count - 1; age >= 0; age--) {
        const rf_color_stats_t *s = &m->hist[(m->head - 1 - age + 2 * m->window) % m->window];
        const double w = m->weight[age];
        wsum += w;
        for (int c = 0; c < 3; c++) {
            mean[c] += w * s->mean[c];
            second[c] += w * (s->std[c] * s->std[c] + s->mean[c] * s->mean[c]);
        }
    }
    for (int c = 0; c < 3; c++) {
        const double mu = mean[c] / wsum;
        const double var = second[c] / wsum - mu * mu;
        out->mean[c] = mu;
        out->std[c] = var > 0 ? sqrt(var) : 0.0;
    }
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

int rf_colormatch_begin(void *state, int64_t index, int *step, rf_err_t *err)
{
    s_colormatch_t *m = state;

    if (m->started && index != m->last_index + 1)
        return rf_err_set(err, RF_EINVAL, "frames out of order: got frame %lld after %lld",
                          (long long)index, (long long)m->last_index);
    m->started = true;
    m->last_index = index;
    if (m->strength == 0.0)
        return 0; /* identity: leave the samples bit-exact (and skip the statistics) */

    /* The scene this frame belongs to; a new scene starts the smoothing afresh. */
    if (index < m->refs[0].first)
        return rf_err_set(err, RF_ECONFIG, "no colour reference for frame %lld (the first scene "
                          "listed starts at frame %lld)", (long long)index,
                          (long long)m->refs[0].first);
    size_t at = m->cur == SIZE_MAX ? 0 : m->cur;
    while (at + 1 < m->nrefs && m->refs[at + 1].first <= index)
        at++;
    if (at != m->cur) {
        if (m->cur != SIZE_MAX && m->refs[at].first == index) {
            m->head = 0;
            m->count = 0;
        }
        m->cur = at;
        m->ref = m->refs[at].stats;
    }
    *step = m->step;
    return 1;
}

void rf_colormatch_correction(void *state, const rf_color_stats_t *now, double mean[3],
                              double gain[3], double ref_mean[3], double *strength)
{
    s_colormatch_t *m = state;
    m->hist[m->head] = *now;
    m->head = (m->head + 1) % m->window;
    if (m->count < m->window)
        m->count++;

    rf_color_stats_t f;
    s_pooled(m, &f);
    for (int c = 0; c < 3; c++) {
        gain[c] = f.std[c] < RF_COLORMATCH_FLAT ? 1.0 : m->ref.std[c] / f.std[c];
        if (gain[c] < RF_COLORMATCH_GAIN_MIN)
            gain[c] = RF_COLORMATCH_GAIN_MIN;
        if (gain[c] > RF_COLORMATCH_GAIN_MAX)
            gain[c] = RF_COLORMATCH_GAIN_MAX;
        mean[c] = f.mean[c];
        ref_mean[c] = m->ref.mean[c];
    }
    *strength = m->strength;
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    int step = 1;
    int rc = rf_colormatch_begin(state, frame->index, &step, err);
    if (rc <= 0)
        return rc;

    rf_color_stats_t now;
    rc = rf_color_stats((const float *const *)frame->plane, frame->width, frame->height, step,
                        &now, err);
    if (rc < 0)
        return rc;
    double mean[3], gain[3], ref_mean[3], strength;
    rf_colormatch_correction(state, &now, mean, gain, ref_mean, &strength);

    float *r = frame->plane[0], *g = frame->plane[1], *b = frame->plane[2];
    const size_t n = (size_t)frame->width * (size_t)frame->height;
    for (size_t i = 0; i < n; i++) {
        double v[3] = {r[i], g[i], b[i]}, lab[3];
        rf_color_srgb_to_oklab(v, lab);
        for (int c = 0; c < 3; c++) {
            const double matched = (lab[c] - mean[c]) * gain[c] + ref_mean[c];
            lab[c] += strength * (matched - lab[c]);
        }
        rf_color_oklab_to_srgb(lab, v);
        r[i] = s_clamp01(v[0]);
        g[i] = s_clamp01(v[1]);
        b[i] = s_clamp01(v[2]);
    }
    return 0;
}

/* The end of a chunk: forget the history, so a reused state starts like a fresh one. */
static int s_flush(void *state, rf_err_t *err)
{
    s_colormatch_t *m = state;
    (void)err; /* forgetting cannot fail */
    m->head = 0;
    m->count = 0;
    m->started = false;
    m->cur = SIZE_MAX;
    return 0;
}

static void s_destroy(void *state)
{
    s_colormatch_t *m = state;
    if (m)
        free(m->refs);
    free(m);
}

const rf_pass_vtable_t rf_pass_colormatch = {
    .name = "color-match",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = s_plan,
    .run = s_run,
    .flush = s_flush,
    .destroy = s_destroy,
    .output_size = NULL,
};
