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
 * Cost: per pixel one sRGB -> Oklab -> sRGB round trip plus the statistics' conversion of the
 * sampled pixels. The definition (media/color.c, double, pow and cbrt) would cost about 1,600
 * instructions per pixel; the pass computes it with the fast path below (tables, vectorized),
 * within RF_COLORMATCH_FAST_TOLERANCE of the definition per sample, and uses the definition
 * itself for any block holding a sample outside 0..1. strength 0 costs nothing (frames are not
 * touched, bit-exact).
 */
#include <assert.h>
#include <math.h>
#include <stdint.h>
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

/* ---- the fast path -------------------------------------------------------------------------
 *
 * The definition (media/color.c's rf_color_srgb_to_oklab and rf_color_oklab_to_srgb: double,
 * pow and cbrt per channel, s_match_exact below) costs about 1,600 instructions per pixel at
 * 1080p, the fast path about 100 (AVX2) or 200 (SSE2) (docs/PERFORMANCE.md). The fast path computes
 * the same function RF_COLORMATCH_BLOCK pixels at a time, in fixed-length loops over local arrays
 * that GCC vectorizes at -O2 (no libm call per pixel):
 *   - sRGB EOTF (float): a table of RF_COLORMATCH_EOTF_STEPS intervals over 0..1 with linear
 *     interpolation; error <= h^2 / 8 * max|f''| = 2.3e-8 in linear light (the toe is linear,
 *     so exact there), plus float rounding of the nodes;
 *   - LMS and its cube root (double): a guess from the float's bits (within about 5 %), two
 *     Halley steps in float, one in double;
 *   - the match is affine per Oklab channel (lab k + o, k = 1 + strength (gain - 1),
 *     o = strength (mu_ref - mu gain)), so Oklab -> match -> LMS' is one 3x3 matrix and an
 *     offset per frame (s_affine, A = M2^-1 diag(k) M2), then the cube and M1^-1 (double): the
 *     out-of-gamut cases cancel terms of size 5 into results of size 0.01, too much for float;
 *   - inverse EOTF (float): linear light is clamped to 0..1 first (the curve is increasing and
 *     maps 0..1 onto 0..1, so that equals clamping its result), then the toe (12.92 x) or a table
 *     indexed by the float's exponent and top RF_COLORMATCH_OETF_BITS mantissa bits,
 *     interpolated: relative steps of 2^-8, error <= 1.055 p (1 - p) / 8 * 2^-16 = 4.9e-7
 *     (p = 1 / 2.4), the largest term for references in Oklab's real range.
 * Every output sample is within RF_COLORMATCH_FAST_TOLERANCE of the definition:
 * tests/worker/test_colormatch.c (test_fast_path_sweep) checks 7.8 million of them. A block
 * holding any sample outside 0..1 or NaN, and a frame whose transform is not tame, take the
 * definition, so the mirrored curve and the NaN rule stay exactly the definition's. The
 * statistics (step 1) use the same forward conversion, with rf_color_stats' samples and sums.
 * Determinism: C17 (no FP contraction), no reassociation, tables built from libm: the same input
 * gives the same bits, so chunking does not change the output.
 */
#define RF_COLORMATCH_FAST_TOLERANCE 1e-5 /* largest difference from the definition per sample */
#define RF_COLORMATCH_BLOCK 256           /* pixels per fixed-length loop */
#define RF_COLORMATCH_EOTF_STEPS 4096     /* intervals of the EOTF table over 0..1 */
#define RF_COLORMATCH_OETF_BITS 8         /* mantissa bits indexing the inverse-EOTF table */
#define RF_COLORMATCH_OETF_SHIFT (23 - RF_COLORMATCH_OETF_BITS)
#define RF_COLORMATCH_OETF_LOW 118 /* biased exponent of 2^-9, below the toe's end 0.0031308 */
/* Nodes from 2^-9 up to 1.0 itself (exponent 127, mantissa 0). */
#define RF_COLORMATCH_OETF_NODES (((127 - RF_COLORMATCH_OETF_LOW) << RF_COLORMATCH_OETF_BITS) + 1)
#define RF_COLORMATCH_CBRT_MIN 1e-30f /* smaller LMS (black: 0) take its root: no denormals */
/* A frame transform with a larger coefficient (a NaN, an absurd reference mean) takes the
 * definition. */
#define RF_COLORMATCH_AFFINE_MAX 1e3

typedef struct s_tables {
    float eotf[RF_COLORMATCH_EOTF_STEPS][2]; /* EOTF(k / steps), then the step to the next node */
    float oetf[RF_COLORMATCH_OETF_NODES][2]; /* the inverse's curve part at node k, step to next */
} s_tables_t;

/* The per-frame transform of the fast path: LMS' (cube roots) -> matched LMS' = a[i][0..2] . x
 * + a[i][3]. */
typedef struct s_affine {
    double a[3][4];
} s_affine_t;

/* Oklab's matrices, as media/color.c has them (Ottosson's published values). */
static const double s_m2[3][3] = {{0.2104542553, 0.7936177850, -0.0040720468},
                                  {1.9779984951, -2.4285922050, 0.4505937099},
                                  {0.0259040371, 0.7827717662, -0.8086757660}};
static const double s_m2_inverse[3][3] = {{1, 0.3963377774, 0.2158037573},
                                          {1, -0.1055613458, -0.0638541728},
                                          {1, -0.0894841775, -1.2914855480}};

static void s_tables_init(s_tables_t *t)
{
    for (int k = 0; k < RF_COLORMATCH_EOTF_STEPS; k++) {
        double lin[2];
        for (int j = 0; j < 2; j++) {
            const double v = (double)(k + j) / RF_COLORMATCH_EOTF_STEPS;
            lin[j] = v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
        }
        t->eotf[k][0] = (float)lin[0];
        t->eotf[k][1] = (float)(lin[1] - lin[0]);
    }
    /* The nodes are the floats whose low RF_COLORMATCH_OETF_SHIFT mantissa bits are 0; the curve
     * part 1.055 x^(1/2.4) - 0.055 is tabulated even below the toe's end, which s_oetf selects by
     * value. */
    for (int k = 0; k < RF_COLORMATCH_OETF_NODES; k++) {
        double v[2];
        for (int j = 0; j < 2; j++) {
            const int node = k + j, per = 1 << RF_COLORMATCH_OETF_BITS;
            const double x =
                ldexp(1.0 + (double)(node % per) / per, node / per + RF_COLORMATCH_OETF_LOW - 127);
            v[j] = 1.055 * pow(x, 1.0 / 2.4) - 0.055;
        }
        t->oetf[k][0] = (float)v[0];
        t->oetf[k][1] = (float)(v[1] - v[0]);
    }
}

/* EOTF of n = RF_COLORMATCH_BLOCK samples in 0..1. */
static inline void s_eotf(const s_tables_t *restrict t, const float *restrict v,
                          float *restrict out)
{
    int at[RF_COLORMATCH_BLOCK];
    float frac[RF_COLORMATCH_BLOCK];
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++) {
        const float x = v[i] * (float)RF_COLORMATCH_EOTF_STEPS; /* exact: a power of 2 */
        int k = (int)x;
        k = k < RF_COLORMATCH_EOTF_STEPS - 1 ? k : RF_COLORMATCH_EOTF_STEPS - 1;
        at[i] = k;
        frac[i] = x - (float)k;
    }
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++)
        out[i] = t->eotf[at[i]][0] + frac[i] * t->eotf[at[i]][1];
}

/* Selections below work on the float's bits: with the default -ftrapping-math GCC will not
 * if-convert a float comparison or move a float operation under one (it might raise a flag the
 * scalar code would not), so `x < c ? a : b` on floats keeps the loop scalar. On floats >= 0 the
 * bits order like the values, and a negative float's bits are a negative int32_t. */
static inline int32_t s_bits(float x)
{
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static inline float s_float(int32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* c ? a : b without a branch. */
static inline float s_select(bool c, float a, float b)
{
    const int32_t mask = -(int32_t)c;
    return s_float((s_bits(a) & mask) | (s_bits(b) & ~mask));
}

#define RF_COLORMATCH_ONE_BITS 0x3f800000 /* 1.0f */

/* Inverse EOTF of RF_COLORMATCH_BLOCK linear values, clamped to 0..1 first (negative to 0; a
 * NaN cannot arrive: s_run takes the definition when the frame's transform is not tame). */
static inline void s_oetf(const s_tables_t *restrict t, const float *restrict lin,
                          float *restrict out)
{
    const int32_t toe_end = s_bits(0.0031308f);
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++) {
        int32_t bits = s_bits(lin[i]);
        bits = bits > 0 ? bits : 0;
        bits = bits < RF_COLORMATCH_ONE_BITS ? bits : RF_COLORMATCH_ONE_BITS;
        int k = (bits >> RF_COLORMATCH_OETF_SHIFT) -
                (RF_COLORMATCH_OETF_LOW << RF_COLORMATCH_OETF_BITS);
        k = k > 0 ? k : 0; /* below 2^-9 the toe is taken */
        const float frac = (float)(bits & ((1 << RF_COLORMATCH_OETF_SHIFT) - 1)) *
                           (1.0f / (float)(1 << RF_COLORMATCH_OETF_SHIFT));
        const float curve = t->oetf[k][0] + frac * t->oetf[k][1];
        const float v = s_select(bits <= toe_end, 12.92f * s_float(bits), curve);
        out[i] = s_select(s_bits(v) < RF_COLORMATCH_ONE_BITS, v, 1.0f); /* v >= 0 */
    }
}

/* Cube root of x >= 0 (x < 2^127), to double precision. */
static inline double s_cbrt(double x)
{
    const float xf = (float)x;
    const int32_t low = s_bits(RF_COLORMATCH_CBRT_MIN);
    int32_t bits = s_bits(xf);
    bits = bits > low ? bits : low;
    const float xl = s_float(bits);
    /* A third of the bits (exponent and mantissa as one number; in float: exact enough for a
     * guess), re-biased: within about 5 % of the root. */
    float y = s_float((int32_t)((float)bits * (1.0f / 3.0f)) + 0x2a5137a0);
    /* Halley, y (y^3 + 2x) / (2 y^3 + x), cubes the relative error: twice in float (1e-4, then
     * float's own 2e-7), once in double (1e-16: float's limit cubed). */
    for (int k = 0; k < 2; k++) {
        const float y3 = y * y * y;
        y = y * (y3 + 2.0f * xl) / (2.0f * y3 + xl);
    }
    const double yd = y, yd3 = yd * yd * yd;
    return yd * (yd3 + 2.0 * x) / (2.0 * yd3 + x);
}

/* The three block kernels are compiled twice on x86-64, for AVX2 (8 floats a vector, hardware
 * gathers for the tables) and for the baseline (SSE2), the loader picking one for the CPU. Both
 * give the same bits: IEEE operations round the same at any width, and without FP contraction
 * (C17, and no FMA in either target) the operations are the ones written. */
#ifndef RF_COLORMATCH_CLONES /* -DRF_COLORMATCH_CLONES= builds the baseline only */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define RF_COLORMATCH_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RF_COLORMATCH_CLONES
#endif
#endif

/* Gamma-encoded r, g, b (each in 0..1) -> Oklab's l', m', s' (the cube roots of LMS). */
RF_COLORMATCH_CLONES static void s_fast_lms(const s_tables_t *restrict t, const float *restrict r,
                                            const float *restrict g, const float *restrict b,
                                            double *restrict l, double *restrict m,
                                            double *restrict s)
{
    float lr[RF_COLORMATCH_BLOCK], lg[RF_COLORMATCH_BLOCK], lb[RF_COLORMATCH_BLOCK];
    s_eotf(t, r, lr);
    s_eotf(t, g, lg);
    s_eotf(t, b, lb);
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++) {
        const double rr = lr[i], gg = lg[i], bb = lb[i];
        l[i] = s_cbrt(0.4122214708 * rr + 0.5363325363 * gg + 0.0514459929 * bb);
        m[i] = s_cbrt(0.2119034982 * rr + 0.6806995451 * gg + 0.1073969566 * bb);
        s[i] = s_cbrt(0.0883024619 * rr + 0.2817188376 * gg + 0.6299787005 * bb);
    }
}

/* l', m', s' -> matched (f) -> gamma-encoded r, g, b in 0..1. */
RF_COLORMATCH_CLONES static void s_fast_back(const s_tables_t *restrict t,
                                             const s_affine_t *restrict f, const double *restrict l,
                                             const double *restrict m, const double *restrict s,
                                             float *restrict r, float *restrict g,
                                             float *restrict b)
{
    float lr[RF_COLORMATCH_BLOCK], lg[RF_COLORMATCH_BLOCK], lb[RF_COLORMATCH_BLOCK];
    const double a00 = f->a[0][0], a01 = f->a[0][1], a02 = f->a[0][2], a03 = f->a[0][3];
    const double a10 = f->a[1][0], a11 = f->a[1][1], a12 = f->a[1][2], a13 = f->a[1][3];
    const double a20 = f->a[2][0], a21 = f->a[2][1], a22 = f->a[2][2], a23 = f->a[2][3];
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++) {
        const double l1 = a00 * l[i] + a01 * m[i] + a02 * s[i] + a03;
        const double m1 = a10 * l[i] + a11 * m[i] + a12 * s[i] + a13;
        const double s1 = a20 * l[i] + a21 * m[i] + a22 * s[i] + a23;
        const double l3 = l1 * l1 * l1, m3 = m1 * m1 * m1, s3 = s1 * s1 * s1;
        /* To float after the matrix: s_oetf clamps to 0..1 first, where float has 6e-8. With
         * |a| < RF_COLORMATCH_AFFINE_MAX and l', m', s' <= 1.02 these are far inside its range. */
        lr[i] = (float)(4.0767416621 * l3 - 3.3077115913 * m3 + 0.2309699292 * s3);
        lg[i] = (float)(-1.2684380046 * l3 + 2.6097574011 * m3 - 0.3413193965 * s3);
        lb[i] = (float)(-0.0041960863 * l3 - 0.7034186147 * m3 + 1.7076147010 * s3);
    }
    s_oetf(t, lr, r);
    s_oetf(t, lg, g);
    s_oetf(t, lb, b);
}

/* Whether every sample of the block is in 0..1 (NaN is not). */
RF_COLORMATCH_CLONES static bool s_in_range(const float *restrict r, const float *restrict g,
                                            const float *restrict b)
{
    int ok = 1;
    for (int i = 0; i < RF_COLORMATCH_BLOCK; i++)
        ok &= (r[i] >= 0.0f) & (r[i] <= 1.0f) & (g[i] >= 0.0f) & (g[i] <= 1.0f) & (b[i] >= 0.0f) &
              (b[i] <= 1.0f);
    return ok != 0;
}

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
    s_tables_t tables; /* the fast path's */
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

    s_tables_init(&m->tables);
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

/* Step 1: rf_color_stats' statistics (same samples, same shifted sums in the same order), the
 * samples converted by the fast path, or by the definition in a block with one outside 0..1. */
static void s_stats(const s_colormatch_t *m, const rf_pframe_t *frame, rf_color_stats_t *out)
{
    enum { B = RF_COLORMATCH_BLOCK };
    float r[B], g[B], b[B];
    double l[B], mm[B], s[B];
    double shift[3] = {0, 0, 0}, sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0};
    size_t n = 0;
    int held = 0;
    const int step = m->step;
    int y = 0, x = 0;
    const int w = frame->width, h = frame->height;

    while (y < h) {
        /* Gather up to B samples, in rf_color_stats' order. */
        held = 0;
        while (held < B && y < h) {
            const size_t i = (size_t)y * (size_t)w + (size_t)x;
            r[held] = frame->plane[0][i];
            g[held] = frame->plane[1][i];
            b[held] = frame->plane[2][i];
            held++;
            x += step;
            if (x >= w) {
                x = 0;
                y += step;
            }
        }
        for (int i = held; i < B; i++)
            r[i] = g[i] = b[i] = 0.0f;
        const bool fast = s_in_range(r, g, b);
        if (fast)
            s_fast_lms(&m->tables, r, g, b, l, mm, s);
        for (int i = 0; i < held; i++) {
            double lab[3];
            if (fast) {
                for (int c = 0; c < 3; c++)
                    lab[c] = s_m2[c][0] * l[i] + s_m2[c][1] * mm[i] + s_m2[c][2] * s[i];
            } else {
                const double rgb[3] = {r[i], g[i], b[i]};
                rf_color_srgb_to_oklab(rgb, lab);
            }
            if (n == 0)
                memcpy(shift, lab, sizeof shift);
            for (int c = 0; c < 3; c++) {
                const double d = lab[c] - shift[c];
                sum[c] += d;
                sq[c] += d * d;
            }
            n++;
        }
    }
    for (int c = 0; c < 3; c++) {
        const double mean = sum[c] / (double)n;
        const double var = sq[c] / (double)n - mean * mean;
        out->mean[c] = shift[c] + mean;
        out->std[c] = var > 0 ? sqrt(var) : 0.0;
    }
}

/* Step 4 for one pixel, by the definition (double, media/color.c's conversions): the reference
 * the fast path is held to, and what blocks with samples outside 0..1 take. */
static void s_match_exact(const double mean[3], const double gain[3], const double ref_mean[3],
                          double strength, float *r, float *g, float *b)
{
    double v[3] = {*r, *g, *b}, lab[3];
    rf_color_srgb_to_oklab(v, lab);
    for (int c = 0; c < 3; c++) {
        const double matched = (lab[c] - mean[c]) * gain[c] + ref_mean[c];
        lab[c] += strength * (matched - lab[c]);
    }
    rf_color_oklab_to_srgb(lab, v);
    *r = s_clamp01(v[0]);
    *g = s_clamp01(v[1]);
    *b = s_clamp01(v[2]);
}

/* Step 4 as one affine map of LMS': lab' = lab k + o per channel, so
 * LMS'' = M2^-1 (diag(k) M2 LMS' + o). */
static void s_affine(const double mean[3], const double gain[3], const double ref_mean[3],
                     double strength, s_affine_t *f)
{
    double k[3], o[3];
    for (int c = 0; c < 3; c++) {
        k[c] = 1.0 + strength * (gain[c] - 1.0);
        o[c] = strength * (ref_mean[c] - mean[c] * gain[c]);
    }
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            double a = 0;
            for (int c = 0; c < 3; c++)
                a += s_m2_inverse[i][c] * k[c] * s_m2[c][j];
            f->a[i][j] = a;
        }
        double off = 0;
        for (int c = 0; c < 3; c++)
            off += s_m2_inverse[i][c] * o[c];
        f->a[i][3] = off;
    }
}

/* Steps 2-3 for the frame at index (the CUDA pass shares them, worker/gpu/gpu_pipe.c): order
 * check, the scene's reference. Returns 1 when the frame must be matched (step gets the
 * statistics' sampling step), 0 for the identity (strength 0), or an error. */
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

/* The frame's statistics into the smoothing window; the correction to apply (step 4's inputs). */
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
    s_colormatch_t *m = state;
    int step = 1;
    int rc = rf_colormatch_begin(state, frame->index, &step, err);
    if (rc <= 0)
        return rc;
    if (!frame->plane[0] || !frame->plane[1] || !frame->plane[2])
        return rf_err_set(err, RF_EINVAL, "colour statistics: image without pixels");
    if (frame->width <= 0 || frame->height <= 0)
        return rf_err_set(err, RF_EINVAL, "colour statistics: invalid image size %dx%d",
                          frame->width, frame->height);
    rf_color_stats_t now;
    s_stats(m, frame, &now);
    double mean[3], gain[3], ref_mean[3], strength;
    rf_colormatch_correction(state, &now, mean, gain, ref_mean, &strength);

    s_affine_t affine;
    s_affine(mean, gain, ref_mean, strength, &affine);
    /* The fast path only for a tame transform: statistics poisoned by a NaN sample (every output
     * 0 by the definition) or a reference far outside Oklab take the definition. */
    bool tame = true;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            tame = tame && fabs(affine.a[i][j]) < RF_COLORMATCH_AFFINE_MAX;
    enum { B = RF_COLORMATCH_BLOCK };
    float r[B], g[B], b[B];
    double l[B], mm[B], s[B];
    const size_t n = (size_t)frame->width * (size_t)frame->height;
    for (size_t first = 0; first < n; first += B) {
        const size_t len = n - first < B ? n - first : B;
        memcpy(r, frame->plane[0] + first, len * sizeof(float));
        memcpy(g, frame->plane[1] + first, len * sizeof(float));
        memcpy(b, frame->plane[2] + first, len * sizeof(float));
        for (size_t i = len; i < B; i++)
            r[i] = g[i] = b[i] = 0.0f;
        if (tame && s_in_range(r, g, b)) {
            s_fast_lms(&m->tables, r, g, b, l, mm, s);
            s_fast_back(&m->tables, &affine, l, mm, s, r, g, b);
        } else {
            for (size_t i = 0; i < len; i++)
                s_match_exact(mean, gain, ref_mean, strength, &r[i], &g[i], &b[i]);
        }
        memcpy(frame->plane[0] + first, r, len * sizeof(float));
        memcpy(frame->plane[1] + first, g, len * sizeof(float));
        memcpy(frame->plane[2] + first, b, len * sizeof(float));
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
