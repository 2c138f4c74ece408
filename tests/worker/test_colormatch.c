/* test_colormatch.c - the color-match pass against a double-precision reference written here from
 * the published definitions, never from the pass's own helpers or media/color.c:
 *   sRGB EOTF (IEC 61966-2-1) -> Ottosson's Oklab matrices -> per-channel mean and population
 *   deviation -> x' = (x - mu_f) * clamp(sd_ref / sd_f, 0.25, 4) + mu_ref -> x + s (x' - x) ->
 *   back to sRGB -> clamp to [0, 1]; smoothing pools the statistics of the frames before with
 *   weights exp(-age / tau).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "passes.h"

#define W 4
#define H 3

#include "worker/pass_fixture.h"

/* ---- the reference ------------------------------------------------------------------------ */

static double t_eotf(double v)
{
    const double a = fabs(v), l = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0 ? -l : l;
}

static double t_oetf(double l)
{
    const double a = fabs(l), v = a <= 0.0031308 ? 12.92 * a : 1.055 * pow(a, 1 / 2.4) - 0.055;
    return l < 0 ? -v : v;
}

static void t_to_lab(const double rgb[3], double lab[3])
{
    static const double m1[3][3] = {{0.4122214708, 0.5363325363, 0.0514459929},
                                    {0.2119034982, 0.6806995451, 0.1073969566},
                                    {0.0883024619, 0.2817188376, 0.6299787005}};
    static const double m2[3][3] = {{0.2104542553, 0.7936177850, -0.0040720468},
                                    {1.9779984951, -2.4285922050, 0.4505937099},
                                    {0.0259040371, 0.7827717662, -0.8086757660}};
    double lin[3], lms[3];
    for (int c = 0; c < 3; c++)
        lin[c] = t_eotf(rgb[c]);
    for (int i = 0; i < 3; i++)
        lms[i] = cbrt(m1[i][0] * lin[0] + m1[i][1] * lin[1] + m1[i][2] * lin[2]);
    for (int i = 0; i < 3; i++)
        lab[i] = m2[i][0] * lms[0] + m2[i][1] * lms[1] + m2[i][2] * lms[2];
}

static void t_to_rgb(const double lab[3], double rgb[3])
{
    static const double i2[3][3] = {{1, 0.3963377774, 0.2158037573},
                                    {1, -0.1055613458, -0.0638541728},
                                    {1, -0.0894841775, -1.2914855480}};
    static const double i1[3][3] = {{4.0767416621, -3.3077115913, 0.2309699292},
                                    {-1.2684380046, 2.6097574011, -0.3413193965},
                                    {-0.0041960863, -0.7034186147, 1.7076147010}};
    double lms[3];
    for (int i = 0; i < 3; i++) {
        const double v = i2[i][0] * lab[0] + i2[i][1] * lab[1] + i2[i][2] * lab[2];
        lms[i] = v * v * v;
    }
    for (int i = 0; i < 3; i++)
        rgb[i] = t_oetf(i1[i][0] * lms[0] + i1[i][1] * lms[1] + i1[i][2] * lms[2]);
}

typedef struct t_stats {
    double mean[3], sd[3];
} t_stats_t;

/* Two-pass mean and population deviation of the frame in Oklab. */
static t_stats_t t_stats(const rf_pframe_t *f)
{
    double lab[N][3];
    t_stats_t s = {{0, 0, 0}, {0, 0, 0}};
    for (size_t i = 0; i < N; i++) {
        const double rgb[3] = {f->plane[0][i], f->plane[1][i], f->plane[2][i]};
        t_to_lab(rgb, lab[i]);
        for (int c = 0; c < 3; c++)
            s.mean[c] += lab[i][c] / (double)N;
    }
    for (size_t i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            s.sd[c] += (lab[i][c] - s.mean[c]) * (lab[i][c] - s.mean[c]) / (double)N;
    for (int c = 0; c < 3; c++)
        s.sd[c] = sqrt(s.sd[c]);
    return s;
}

/* The expected output of frame f matched from statistics from to ref with strength s. */
static void t_expect(const rf_pframe_t *f, t_stats_t from, t_stats_t ref, double strength,
                     double out[3][N])
{
    double gain[3];
    for (int c = 0; c < 3; c++) {
        gain[c] = from.sd[c] < 1e-6 ? 1 : ref.sd[c] / from.sd[c];
        gain[c] = gain[c] < 0.25 ? 0.25 : (gain[c] > 4 ? 4 : gain[c]);
    }
    for (size_t i = 0; i < N; i++) {
        const double rgb[3] = {f->plane[0][i], f->plane[1][i], f->plane[2][i]};
        double lab[3], back[3];
        t_to_lab(rgb, lab);
        for (int c = 0; c < 3; c++)
            lab[c] += strength * ((lab[c] - from.mean[c]) * gain[c] + ref.mean[c] - lab[c]);
        t_to_rgb(lab, back);
        for (int c = 0; c < 3; c++)
            out[c][i] = back[c] < 0 ? 0 : (back[c] > 1 ? 1 : back[c]);
    }
}

/* ---- helpers ------------------------------------------------------------------------------- */

static void t_format(t_stats_t s, char *buf, size_t size)
{
    snprintf(buf, size, "%.17g,%.17g,%.17g,%.17g,%.17g,%.17g", s.mean[0], s.mean[1], s.mean[2],
             s.sd[0], s.sd[1], s.sd[2]);
}

static int t_new(const char *reference, const char *strength, const char *smoothing,
                 const char *scene_ref, t_pass_t *p, rf_err_t *err)
{
    rf_param_t params[4];
    size_t n = 0;
    if (reference)
        params[n++] = (rf_param_t){.key = (char *)"reference", .value = (char *)reference};
    if (strength)
        params[n++] = (rf_param_t){.key = (char *)"strength", .value = (char *)strength};
    if (smoothing)
        params[n++] = (rf_param_t){.key = (char *)"smoothing", .value = (char *)smoothing};
    if (scene_ref)
        params[n++] = (rf_param_t){.key = (char *)"scene_ref", .value = (char *)scene_ref};
    return t_pass_create("color-match", params, n, W, H, p, err);
}

/* A colourful frame inside the gamut's middle, so matching moves nothing out of 0..1. variant
 * shifts it (a different frame of the same shot). */
static void t_fill(rf_pframe_t *f, int variant)
{
    for (size_t i = 0; i < N; i++) {
        f->plane[0][i] = (float)(0.35 + 0.3 * (double)((i * 7 + (size_t)variant) % N) / N);
        f->plane[1][i] = (float)(0.40 + 0.2 * (double)((i * 5 + 3) % N) / N + 0.02 * variant);
        f->plane[2][i] = (float)(0.30 + 0.25 * (double)((i * 11 + 1) % N) / N);
    }
}

static void t_compare(const rf_pframe_t *f, double want[3][N], double eps)
{
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++)
            if (fabs(f->plane[c][i] - want[c][i]) > eps)
                fail_msg("plane %d sample %zu: got %.7f, want %.7f", c, i, f->plane[c][i],
                         want[c][i]);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* A frame whose statistics already are the reference comes out unchanged. */
static void test_already_matched(void **state)
{
    (void)state;
    rf_pframe_t f;
    t_frame_init(&f, 0);
    t_fill(&f, 0);
    char ref[256];
    t_format(t_stats(&f), ref, sizeof ref);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new(ref, "1", "0", NULL, &p, &err), 0);
    double want[3][N];
    for (size_t i = 0; i < N; i++)
        for (int c = 0; c < 3; c++)
            want[c][i] = f.plane[c][i];
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_compare(&f, want, 1e-5);
    t_pass_free(&p);
    t_frame_free(&f);
}

/* After matching at strength 1, the frame's statistics are the reference's. */
static void test_stats_reach_reference(void **state)
{
    (void)state;
    rf_pframe_t f;
    t_frame_init(&f, 0);
    t_fill(&f, 0);
    t_stats_t in = t_stats(&f), ref = in;
    ref.mean[0] += 0.03;
    ref.mean[1] += 0.01;
    ref.mean[2] -= 0.008;
    ref.sd[0] *= 1.2;
    ref.sd[1] *= 0.8;
    ref.sd[2] *= 1.1;
    char text[256];
    t_format(ref, text, sizeof text);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new(text, NULL, "0", NULL, &p, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++)
            assert_true(f.plane[c][i] > 0 && f.plane[c][i] < 1); /* no clamp bent the result */
    t_stats_t out = t_stats(&f);
    for (int c = 0; c < 3; c++) {
        if (fabs(out.mean[c] - ref.mean[c]) > 2e-6 || fabs(out.sd[c] - ref.sd[c]) > 2e-6)
            fail_msg("channel %d: got %.7f +- %.7f, want %.7f +- %.7f", c, out.mean[c], out.sd[c],
                     ref.mean[c], ref.sd[c]);
    }
    t_pass_free(&p);
    t_frame_free(&f);
}

static void test_strength_zero_is_bit_exact(void **state)
{
    (void)state;
    rf_pframe_t f, g;
    t_frame_init(&f, 0);
    t_frame_init(&g, 0);
    t_fill(&f, 1);
    t_fill(&g, 1);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new("0.2,0.1,-0.1,0.3,0.05,0.05", "0", NULL, NULL, &p, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++)
        assert_memory_equal(f.plane[c], g.plane[c], N * sizeof(float));
    t_pass_free(&p);
    t_frame_free(&f);
    t_frame_free(&g);
}

/* Expected samples, from the reference above, for strengths and references including ones
 * whose gains hit the clamp (a grey-ish frame asked for a lot of colour). */
static void test_expected_values(void **state)
{
    (void)state;
    static const struct {
        const char *reference, *strength;
        double grey; /* 0: the colourful frame; else a nearly grey one */
    } table[] = {
        {"0.7,0.02,-0.03,0.05,0.02,0.03", "1", 0},
        {"0.7,0.02,-0.03,0.05,0.02,0.03", "0.5", 0},
        {"0.5,0,0,0.2,0.2,0.2", "1", 0}, /* spreads up: gains near 4 (clamped in a,b) */
        {"0.6,0.05,0.05,0.001,0.0001,0.0001", "1", 0}, /* spreads down: gains clamped at 0.25 */
        {"0.55,0.01,0.01,0.05,0.08,0.08", "0.8", 0.02},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        rf_pframe_t f;
        t_frame_init(&f, 0);
        t_fill(&f, 0);
        if (table[k].grey > 0) {
            for (size_t i = 0; i < N; i++) {
                const float y = f.plane[1][i];
                f.plane[0][i] = y + (float)(table[k].grey * (f.plane[0][i] - y));
                f.plane[2][i] = y + (float)(table[k].grey * (f.plane[2][i] - y));
            }
        }
        t_stats_t ref;
        assert_int_equal(sscanf(table[k].reference, "%lf,%lf,%lf,%lf,%lf,%lf", &ref.mean[0],
                                &ref.mean[1], &ref.mean[2], &ref.sd[0], &ref.sd[1], &ref.sd[2]),
                         6);
        double want[3][N];
        t_expect(&f, t_stats(&f), ref, atof(table[k].strength), want);
        t_pass_t p;
        rf_err_t err = {0};
        assert_int_equal(t_new(table[k].reference, table[k].strength, "0", NULL, &p, &err), 0);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        t_compare(&f, want, 1e-5);
        t_pass_free(&p);
        t_frame_free(&f);
    }
}

/* smoothing tau pools the statistics of this frame and the ones before with weights
 * exp(-age / tau) over ceil(3 tau) + 1 frames; plan() asks for those as context. */
static void test_smoothing(void **state)
{
    (void)state;
    const double tau = 1.5;
    const int window = 6; /* ceil(4.5) + 1 */
    const char *ref_text = "0.62,0.01,0.02,0.06,0.03,0.03";
    t_stats_t ref;
    sscanf(ref_text, "%lf,%lf,%lf,%lf,%lf,%lf", &ref.mean[0], &ref.mean[1], &ref.mean[2],
           &ref.sd[0], &ref.sd[1], &ref.sd[2]);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new(ref_text, "1", "1.5", NULL, &p, &err), 0);
    assert_int_equal(p.vt->plan(p.state), window - 1);

    t_stats_t hist[10];
    for (int k = 0; k < 10; k++) {
        rf_pframe_t f;
        t_frame_init(&f, 100 + k);
        t_fill(&f, k % 3 == 2 ? 7 : k); /* every third frame is odd, as a flash would be */
        hist[k] = t_stats(&f);
        /* Pooled: the weighted mixture's mean and deviation. */
        double wsum = 0, m[3] = {0, 0, 0}, m2[3] = {0, 0, 0};
        for (int age = 0; age < window && age <= k; age++) {
            const double w = exp(-age / tau);
            wsum += w;
            for (int c = 0; c < 3; c++) {
                m[c] += w * hist[k - age].mean[c];
                m2[c] += w * (hist[k - age].sd[c] * hist[k - age].sd[c] +
                              hist[k - age].mean[c] * hist[k - age].mean[c]);
            }
        }
        t_stats_t pooled;
        for (int c = 0; c < 3; c++) {
            pooled.mean[c] = m[c] / wsum;
            pooled.sd[c] = sqrt(m2[c] / wsum - pooled.mean[c] * pooled.mean[c]);
        }
        double want[3][N];
        t_expect(&f, pooled, ref, 1, want);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        t_compare(&f, want, 1e-5);
        t_frame_free(&f);
    }
    /* Out of order is refused: the history would describe other frames. */
    rf_pframe_t f;
    t_frame_init(&f, 50);
    t_fill(&f, 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "got frame 50 after 109"));
    /* flush forgets: frame 50 then starts a fresh history. */
    assert_int_equal(p.vt->flush(p.state, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_frame_free(&f);
    t_pass_free(&p);
}

/* Frames [first, end) through a fresh pass (smoothing 2); outputs of [keep, end) go to out. */
static void t_run_range(int64_t first, int64_t keep, int64_t end, float out[][3][N])
{
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new("0.6,0.01,0.0,0.08,0.03,0.04", "1", "2", NULL, &p, &err), 0);
    for (int64_t k = first; k < end; k++) {
        rf_pframe_t f;
        t_frame_init(&f, k);
        t_fill(&f, (int)(k * 5 % 11)); /* statistics change from frame to frame */
        f.context = k < keep;
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        if (k >= keep)
            for (int c = 0; c < 3; c++)
                memcpy(out[k][c], f.plane[c], N * sizeof(float));
        t_frame_free(&f);
    }
    t_pass_free(&p);
}

/* One run over 24 frames equals chunks that start with plan() context frames, bit for bit; one
 * context frame too few shows (so the comparison can fail). */
static void test_chunking_invariance(void **state)
{
    (void)state;
    enum { FRAMES = 24 };
    static float whole[FRAMES][3][N], chunked[FRAMES][3][N], short_ctx[FRAMES][3][N];
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new("0.6,0.01,0.0,0.08,0.03,0.04", "1", "2", NULL, &p, &err), 0);
    const int context = p.vt->plan(p.state);
    t_pass_free(&p);
    assert_int_equal(context, 6); /* ceil(3 * 2) */

    t_run_range(0, 0, FRAMES, whole);
    t_run_range(0, 0, 10, chunked);
    t_run_range(10 - context, 10, FRAMES, chunked);
    assert_memory_equal(whole, chunked, sizeof whole);
    t_run_range(10 - context + 1, 10, FRAMES, short_ctx);
    assert_memory_not_equal(&whole[10], &short_ctx[10], sizeof whole[10]);
}

/* reference 'source' uses the coordinator's scene_ref, and refuses to run without it. */
static void test_scene_ref(void **state)
{
    (void)state;
    rf_pframe_t f;
    t_frame_init(&f, 0);
    t_fill(&f, 0);
    const char *scene = "0.66,0.015,-0.01,0.07,0.02,0.025";
    t_stats_t ref;
    sscanf(scene, "%lf,%lf,%lf,%lf,%lf,%lf", &ref.mean[0], &ref.mean[1], &ref.mean[2], &ref.sd[0],
           &ref.sd[1], &ref.sd[2]);
    double want[3][N];
    t_expect(&f, t_stats(&f), ref, 1, want);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new("source", "1", "0", scene, &p, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_compare(&f, want, 1e-5);
    t_pass_free(&p);
    t_frame_free(&f);

    /* Through a chain, as the worker creates it: the error names the pass and the parameter. */
    rf_param_t params[1] = {{.key = (char *)"reference", .value = (char *)"source"}};
    rf_pass_spec_t spec = {
        .name = (char *)"color-match", .role = (char *)"refine", .params = params, .nparams = 1};
    rf_pass_chain_t *chain = NULL;
    assert_int_equal(rf_pass_chain_new(&spec, 1, 1, W, H, (AVRational){25, 1}, &chain, &err),
                     RF_ECONFIG);
    assert_null(chain);
    assert_non_null(strstr(err.msg, "pass 'color-match': parameter 'scene_ref': missing"));
}

/* A chunk that spans scenes gets one reference per scene ("FIRST:stats;..."): each frame is
 * matched to its own scene's, and the smoothing starts afresh at a scene's first frame (so the
 * first frame of scene B, smoothed over 4 frames, uses only its own statistics). */
static void test_scene_list(void **state)
{
    (void)state;
    const t_stats_t ra = {{0.66, 0.015, -0.01}, {0.07, 0.02, 0.025}};
    const t_stats_t rb = {{0.52, -0.02, 0.03}, {0.05, 0.01, 0.02}};
    char a[200], b[200], list[450];
    t_format(ra, a, sizeof(a));
    t_format(rb, b, sizeof(b));
    snprintf(list, sizeof(list), "100:%s;104:%s", a, b);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new("source", "1", "4", list, &p, &err), 0);
    for (int64_t i = 101; i < 107; i++) {
        rf_pframe_t f;
        t_frame_init(&f, i);
        /* one frame per scene, repeated: smoothed statistics equal the frame's own only if the
         * history restarts at frame 104 (the frames before it differ) */
        t_fill(&f, i < 104 ? 0 : 3);
        double want[3][N];
        t_expect(&f, t_stats(&f), i < 104 ? ra : rb, 1, want);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        t_compare(&f, want, 1e-5);
        t_frame_free(&f);
    }
    t_pass_free(&p);
    /* a frame before the first scene listed, and malformed lists, are errors */
    assert_int_equal(t_new("source", "1", "4", list, &p, &err), 0);
    rf_pframe_t f;
    t_frame_init(&f, 99);
    t_fill(&f, 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "no colour reference for frame 99"));
    t_frame_free(&f);
    t_pass_free(&p);
    snprintf(list, sizeof(list), "104:%s;100:%s", a, b);
    assert_int_equal(t_new("source", "1", "4", list, &p, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "entry 2"));
    snprintf(list, sizeof(list), "x:%s", a);
    assert_int_equal(t_new("source", "1", "4", list, &p, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "entry 1"));
}

/* ---- the fast path against the definition, on dense sweeps ---------------------------------- */

/* colormatch.c computes step 4 in float with tables and an iterated cube root; every output
 * sample must be within this of the double-precision definition (t_expect). A 10-bit code value
 * is 1/1023 = 1e-3; 1e-5 is what the tests above allowed the definition itself. */
#define T_FAST_TOLERANCE 1e-5

enum { T_SWEEP_W = 4096, T_SWEEP_H = 64, T_SWEEP_N = T_SWEEP_W * T_SWEEP_H }; /* 2^18: step 1 */

/* pattern 0: the 64^3 grid over the RGB cube (k / 63: black, white, every corner and edge);
 * pattern 1: every channel through all 2^18 levels k / (2^18 - 1), in three different orders
 * (dense in each transfer curve, colours scattered over the cube). */
static void t_sweep_fill(float *plane[3], int pattern)
{
    for (uint32_t i = 0; i < T_SWEEP_N; i++) {
        if (pattern == 0) {
            plane[0][i] = (float)((i & 63u) / 63.0);
            plane[1][i] = (float)(((i >> 6) & 63u) / 63.0);
            plane[2][i] = (float)(((i >> 12) & 63u) / 63.0);
        } else {
            const uint32_t mask = T_SWEEP_N - 1;
            plane[0][i] = (float)(i / (double)mask);
            plane[1][i] = (float)(((i * 7919u) & mask) / (double)mask);
            plane[2][i] = (float)(((i * 104729u + 12345u) & mask) / (double)mask);
        }
    }
}

/* t_stats for a sweep frame: two passes, converting twice rather than holding 2^18 Lab values. */
static t_stats_t t_sweep_stats(float *const plane[3])
{
    t_stats_t s = {{0, 0, 0}, {0, 0, 0}};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < T_SWEEP_N; i++) {
            const double rgb[3] = {plane[0][i], plane[1][i], plane[2][i]};
            double lab[3];
            t_to_lab(rgb, lab);
            for (int c = 0; c < 3; c++) {
                if (pass == 0)
                    s.mean[c] += lab[c];
                else
                    s.sd[c] += (lab[c] - s.mean[c]) * (lab[c] - s.mean[c]);
            }
        }
        for (int c = 0; c < 3; c++) {
            if (pass == 0)
                s.mean[c] /= T_SWEEP_N;
            else
                s.sd[c] = sqrt(s.sd[c] / T_SWEEP_N);
        }
    }
    return s;
}

/* Runs the pass with reference ref and strength over a sweep frame and returns the largest
 * difference from the definition; *clamped counts the samples the definition clamped. */
static double t_sweep_error(int pattern, const char *ref_text, const char *strength,
                            size_t *clamped)
{
    float *plane[3], *orig[3];
    for (int c = 0; c < 3; c++) {
        plane[c] = malloc(T_SWEEP_N * sizeof(float));
        orig[c] = malloc(T_SWEEP_N * sizeof(float));
        assert_non_null(plane[c]);
        assert_non_null(orig[c]);
    }
    t_sweep_fill(plane, pattern);
    t_sweep_fill(orig, pattern);
    const t_stats_t from = t_sweep_stats(orig);
    t_stats_t ref;
    assert_int_equal(sscanf(ref_text, "%lf,%lf,%lf,%lf,%lf,%lf", &ref.mean[0], &ref.mean[1],
                            &ref.mean[2], &ref.sd[0], &ref.sd[1], &ref.sd[2]),
                     6);
    rf_param_t params[3] = {{.key = (char *)"reference", .value = (char *)ref_text},
                            {.key = (char *)"strength", .value = (char *)strength},
                            {.key = (char *)"smoothing", .value = (char *)"0"}};
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_create("color-match", params, 3, T_SWEEP_W, T_SWEEP_H, &p, &err), 0);
    rf_pframe_t f = {.index = 0, .width = T_SWEEP_W, .height = T_SWEEP_H};
    for (int c = 0; c < 3; c++)
        f.plane[c] = plane[c];
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_pass_free(&p);

    double gain[3], worst = 0;
    const double s = atof(strength);
    for (int c = 0; c < 3; c++) {
        gain[c] = from.sd[c] < 1e-6 ? 1 : ref.sd[c] / from.sd[c];
        gain[c] = gain[c] < 0.25 ? 0.25 : (gain[c] > 4 ? 4 : gain[c]);
    }
    *clamped = 0;
    for (size_t i = 0; i < T_SWEEP_N; i++) {
        const double rgb[3] = {orig[0][i], orig[1][i], orig[2][i]};
        double lab[3], back[3];
        t_to_lab(rgb, lab);
        for (int c = 0; c < 3; c++)
            lab[c] += s * ((lab[c] - from.mean[c]) * gain[c] + ref.mean[c] - lab[c]);
        t_to_rgb(lab, back);
        for (int c = 0; c < 3; c++) {
            *clamped += back[c] < 0 || back[c] > 1;
            const double want = back[c] < 0 ? 0 : (back[c] > 1 ? 1 : back[c]);
            const double e = fabs(plane[c][i] - want);
            if (e > worst)
                worst = e;
            if (e > T_FAST_TOLERANCE)
                fail_msg("pattern %d, reference %s, strength %s: sample %zu plane %d (input %.7f, "
                         "%.7f, %.7f): got %.8f, want %.8f",
                         pattern, ref_text, strength, i, c, rgb[0], rgb[1], rgb[2], plane[c][i],
                         want);
        }
    }
    for (int c = 0; c < 3; c++) {
        free(plane[c]);
        free(orig[c]);
    }
    return worst;
}

/* Every sample of both sweeps, under references that leave the frame nearly alone, shift it,
 * spread it to the gain clamp 4, squeeze it to the clamp 0.25, and push much of it out of gamut
 * (clamped), is within T_FAST_TOLERANCE of the definition. */
static void test_fast_path_sweep(void **state)
{
    (void)state;
    static const struct {
        const char *reference, *strength;
    } table[] = {
        {"0.62,0.005,0.01,0.2,0.08,0.1", "1"},    /* near the sweeps' own statistics */
        {"0.7,0.02,-0.03,0.05,0.02,0.03", "1"},   /* squeezed: gains at the clamp 0.25 */
        {"0.5,0,0,1.5,0.5,0.5", "1"},             /* spread: gains at the clamp 4, clips a lot */
        {"0.3,-0.05,0.08,0.12,0.06,0.09", "0.5"}, /* a dark, tinted reference, half strength */
        {"0.95,0.1,-0.1,0.02,0.3,0.3", "0.8"},    /* bright, strong colour */
    };
    double worst = 0;
    size_t clamped = 0;
    for (int pattern = 0; pattern < 2; pattern++) {
        for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
            size_t n = 0;
            const double e = t_sweep_error(pattern, table[k].reference, table[k].strength, &n);
            worst = e > worst ? e : worst;
            clamped += n;
        }
    }
    assert_true(clamped > 0); /* the clamp was exercised */
    print_message("fast path: largest difference from the definition %.3g over %d samples "
                  "(%zu clamped by the definition)\n",
                  worst, 2 * 5 * 3 * T_SWEEP_N, clamped);
}

/* Samples outside 0..1 (a plugin pass before may leave them) take the definition, mirrored sRGB
 * curve included: every sample equals t_expect to float rounding, closer than the fast path's
 * tables get. A NaN sample poisons the statistics, and the definition then gives 0 everywhere. */
static void test_out_of_range_takes_definition(void **state)
{
    (void)state;
    rf_pframe_t f;
    t_frame_init(&f, 0);
    t_fill(&f, 2);
    f.plane[0][1] = -0.05f;
    f.plane[2][5] = 1.1f;
    f.plane[1][9] = -0.2f;
    const char *ref_text = "0.6,0.02,-0.01,0.1,0.04,0.05";
    t_stats_t ref;
    sscanf(ref_text, "%lf,%lf,%lf,%lf,%lf,%lf", &ref.mean[0], &ref.mean[1], &ref.mean[2],
           &ref.sd[0], &ref.sd[1], &ref.sd[2]);
    double want[3][N];
    t_expect(&f, t_stats(&f), ref, 0.9, want);
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_new(ref_text, "0.9", "0", NULL, &p, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_compare(&f, want, 1e-7);

    t_fill(&f, 2);
    f.plane[1][4] = NAN;
    f.index = 1;
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++)
            assert_true(f.plane[c][i] == 0.0f);
    t_pass_free(&p);
    t_frame_free(&f);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    static const struct {
        const char *reference, *strength, *smoothing, *scene_ref, *want;
    } table[] = {
        {"1,2,3", NULL, NULL, NULL,
         "parameter 'reference': expected 'source' or colour statistics "
         "'1,2,3'"},
        {"sauce", NULL, NULL, NULL,
         "parameter 'reference': expected 'source' or colour statistics "
         "'sauce'"},
        {"0.5,0,0,-0.1,0,0", NULL, NULL, NULL, "L deviation must not be negative"},
        {"source", NULL, NULL, "0.5,0,0", "parameter 'scene_ref': colour statistics '0.5,0,0'"},
        {"source", NULL, NULL, NULL, "parameter 'scene_ref': missing"},
        {NULL, "1.5", NULL, "0.5,0,0,0.1,0.1,0.1",
         "parameter 'strength': expected a number in 0..1, got '1.5'"},
        {NULL, NULL, "31", "0.5,0,0,0.1,0.1,0.1",
         "parameter 'smoothing': expected a number in 0..30, got '31'"},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        if (t_new(table[k].reference, table[k].strength, table[k].smoothing, table[k].scene_ref, &p,
                  &err) != RF_ECONFIG)
            fail_msg("case %zu accepted", k);
        assert_null(p.state);
        if (!strstr(err.msg, table[k].want))
            fail_msg("case %zu: '%s' lacks '%s'", k, err.msg, table[k].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_already_matched),
        cmocka_unit_test(test_stats_reach_reference),
        cmocka_unit_test(test_strength_zero_is_bit_exact),
        cmocka_unit_test(test_expected_values),
        cmocka_unit_test(test_smoothing),
        cmocka_unit_test(test_scene_ref),
        cmocka_unit_test(test_scene_list),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_chunking_invariance),
        cmocka_unit_test(test_fast_path_sweep),
        cmocka_unit_test(test_out_of_range_takes_definition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
