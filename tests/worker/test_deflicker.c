/* test_deflicker.c - the deflicker pass against values worked out by hand from its formula
 * (worker/passes/deflicker.c):
 *   mean = Rec.709 luma mean; target = mean of the last `window` means; gain = 1 +
 * s*(target/mean-1) clamped to [0.5, 2] (1 below a mean of 1e-4); samples *= gain, clamped to [0,
 * 1]. A flat grey frame of value v has mean v (the weights sum to 1), which keeps the arithmetic
 * easy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "passes.h"

#define W 16
#define H 8

#include "worker/pass_fixture.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static rf_pass_spec_t t_spec(rf_param_t params[2], const char *strength, const char *window)
{
    params[0].key = (char *)"strength";
    params[0].value = (char *)strength;
    params[1].key = (char *)"window";
    params[1].value = (char *)window;
    rf_pass_spec_t spec = {
        .name = (char *)"deflicker", .role = (char *)"refine", .params = params, .nparams = 2};
    return spec;
}

static int t_pass_new(const char *strength, const char *window, t_pass_t *p, rf_err_t *err)
{
    rf_param_t params[2];
    rf_pass_spec_t spec = t_spec(params, strength, window);
    return t_pass_create(spec.name, spec.params, spec.nparams, W, H, p, err);
}

static void t_frame_fill(rf_pframe_t *f, float v)
{
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < N; i++)
            f->plane[p][i] = v;
}

/* Runs flat grey frames of the given values and checks every output sample against want. */
static void t_run_flat(const char *strength, const char *window, const float *in,
                       const double *want, size_t n)
{
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_new(strength, window, &p, &err), 0);
    for (size_t k = 0; k < n; k++) {
        rf_pframe_t f;
        t_frame_init(&f, (int64_t)k);
        t_frame_fill(&f, in[k]);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (int c = 0; c < 3; c++) {
            assert_float_equal(f.plane[c][0], want[k], 1e-5);
            assert_float_equal(f.plane[c][N - 1], want[k], 1e-5);
        }
        t_frame_free(&f);
    }
    t_pass_free(&p);
}

/* Deterministic pseudo-random samples (a 32-bit LCG): content with texture, not flat fields. */
static uint32_t t_rand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void t_frame_noise(rf_pframe_t *f, int64_t index)
{
    uint32_t s = (uint32_t)index * 2654435761u + 7u;
    /* Brightness that jumps around frame to frame, over texture. */
    float base = 0.25f + 0.5f * (float)(t_rand(&s) % 1000) / 1000.0f;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < N; i++)
            f->plane[p][i] = base * (0.6f + 0.8f * (float)(t_rand(&s) % 1000) / 1000.0f);
}

/* ---- tests --------------------------------------------------------------------------------- */

/* window 2, strength 0.5, 0.4/0.6 alternating:
 *   f0: mean 0.4, target 0.4                    -> gain 1      -> 0.4
 *   f1: mean 0.6, target 0.5, gain 1+0.5*(0.5/0.6-1) = 11/12   -> 0.55
 *   f2: mean 0.4, target 0.5, gain 1+0.5*(0.5/0.4-1) = 1.125   -> 0.45
 * and 0.55, 0.45 from then on. */
static void test_alternating_window2(void **state)
{
    (void)state;
    const float in[] = {0.4f, 0.6f, 0.4f, 0.6f, 0.4f, 0.6f};
    const double want[] = {0.4, 0.55, 0.45, 0.55, 0.45, 0.55};
    t_run_flat("0.5", "2", in, want, 6);
}

/* window 4, strength 1: every frame becomes the average of the last (up to) 4 means.
 *   f0: 0.4; f1: (0.4+0.6)/2 = 0.5; f2: 1.4/3; f3: 2.0/4 = 0.5; f4: 0.6+0.4+0.6+0.4 = 0.5 ... */
static void test_alternating_full_strength(void **state)
{
    (void)state;
    const float in[] = {0.4f, 0.6f, 0.4f, 0.6f, 0.4f, 0.6f, 0.4f};
    const double want[] = {0.4, 0.5, 1.4 / 3.0, 0.5, 0.5, 0.5, 0.5};
    t_run_flat("1", "4", in, want, 7);
}

/* window 3, strength 1:
 *   0.01, 0.01, 0.9: target 0.92/3 = 0.30667, gain 0.3407 -> clamped to 0.5 -> 0.45
 *   0.9, 0.9, 0.1:   target 1.9/3 = 0.6333,   gain 6.33   -> clamped to 2   -> 0.2 */
static void test_gain_clamped(void **state)
{
    (void)state;
    const float down[] = {0.01f, 0.01f, 0.9f};
    const double want_down[] = {0.01, 0.01, 0.45};
    t_run_flat("1", "3", down, want_down, 3);
    const float up[] = {0.9f, 0.9f, 0.1f};
    const double want_up[] = {0.9, 0.9, 0.2};
    t_run_flat("1", "3", up, want_up, 3);
}

/* A near-black frame after bright ones is left alone: there is no brightness to correct, and a
 * gain of 2 on noise would only make it visible. */
static void test_black_untouched(void **state)
{
    (void)state;
    const float in[] = {0.8f, 0.8f, 0.00005f};
    const double want[] = {0.8, 0.8, 0.00005};
    t_run_flat("1", "3", in, want, 3);
}

/* Samples are clamped to [0, 1] after the gain: half 0.9, half 0.1 (mean 0.5) after a frame of
 * mean 0.9, window 2, strength 1: target 0.7, gain 1.4 -> 0.9*1.4 = 1.26 -> 1, 0.1*1.4 = 0.14. */
static void test_samples_clamped(void **state)
{
    (void)state;
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(t_pass_new("1", "2", &p, &err), 0);
    t_frame_init(&f, 0);
    t_frame_fill(&f, 0.9f);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    f.index = 1;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++)
            f.plane[c][i] = i < N / 2 ? 0.9f : 0.1f;
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++) {
        assert_float_equal(f.plane[c][0], 1.0, 0.0);
        assert_float_equal(f.plane[c][N - 1], 0.14, 1e-5);
    }
    t_frame_free(&f);
    t_pass_free(&p);
}

/* Strength 0 leaves every sample bit-identical. */
static void test_strength_zero_identity(void **state)
{
    (void)state;
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_new("0", "8", &p, &err), 0);
    for (int64_t k = 0; k < 20; k++) {
        rf_pframe_t f, ref;
        t_frame_init(&f, k);
        t_frame_init(&ref, k);
        t_frame_noise(&f, k);
        t_frame_noise(&ref, k);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (int c = 0; c < 3; c++)
            assert_memory_equal(f.plane[c], ref.plane[c], N * sizeof(float));
        t_frame_free(&f);
        t_frame_free(&ref);
    }
    t_pass_free(&p);
}

/* Runs frames [first, end) through a fresh pass, the first `context` of them as context, and
 * stores the non-context outputs in out (indexed by global frame). */
static void t_run_chunk(int64_t start, int64_t end, int context, float *out[][3])
{
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_new("0.6", "8", &p, &err), 0);
    int64_t first = start - context < 0 ? 0 : start - context;
    for (int64_t k = first; k < end; k++) {
        rf_pframe_t f;
        t_frame_init(&f, k);
        f.context = k < start;
        t_frame_noise(&f, k);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        if (!f.context) {
            for (int c = 0; c < 3; c++) {
                out[k][c] = f.plane[c];
                f.plane[c] = NULL;
            }
        }
        t_frame_free(&f);
    }
    assert_int_equal(p.vt->flush(p.state, &err), 0);
    t_pass_free(&p);
}

#define FRAMES 40

static void t_free_outputs(float *out[][3])
{
    for (int k = 0; k < FRAMES; k++)
        for (int c = 0; c < 3; c++)
            free(out[k][c]);
}

/* One run over 40 frames and three chunks with plan() context frames each give bit-identical
 * output; with too little context they do not (so the test can see a difference). */
static void test_chunking_invariance(void **state)
{
    (void)state;
    static float *whole[FRAMES][3], *chunked[FRAMES][3], *short_ctx[FRAMES][3];
    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_new("0.6", "8", &p, &err), 0);
    const int ctx = p.vt->plan(p.state);
    assert_int_equal(ctx, 7);
    t_pass_free(&p);

    t_run_chunk(0, FRAMES, 0, whole);
    const int64_t cuts[] = {0, 13, 29, FRAMES};
    for (int i = 0; i < 3; i++) {
        t_run_chunk(cuts[i], cuts[i + 1], ctx, chunked);
        t_run_chunk(cuts[i], cuts[i + 1], 2, short_ctx);
    }
    bool differs = false;
    for (int k = 0; k < FRAMES; k++) {
        for (int c = 0; c < 3; c++) {
            assert_memory_equal(whole[k][c], chunked[k][c], N * sizeof(float));
            if (memcmp(whole[k][c], short_ctx[k][c], N * sizeof(float)) != 0)
                differs = true;
        }
    }
    assert_true(differs);
    t_free_outputs(whole);
    t_free_outputs(chunked);
    t_free_outputs(short_ctx);
}

static void test_plan_is_window_minus_one(void **state)
{
    (void)state;
    const char *windows[] = {"1", "2", "8", "120"};
    const int want[] = {0, 1, 7, 119};
    for (size_t i = 0; i < 4; i++) {
        t_pass_t p;
        rf_err_t err = {0};
        assert_int_equal(t_pass_new("0.6", windows[i], &p, &err), 0);
        assert_int_equal(p.vt->plan(p.state), want[i]);
        t_pass_free(&p);
    }
}

static void test_bad_parameters(void **state)
{
    (void)state;
    const struct {
        const char *strength, *window, *key;
    } cases[] = {
        {"1.5", "8", "'strength'"}, {"-0.1", "8", "'strength'"}, {"high", "8", "'strength'"},
        {"nan", "8", "'strength'"}, {"0.5", "0", "'window'"},    {"0.5", "121", "'window'"},
        {"0.5", "8.5", "'window'"}, {"0.5", "", "'window'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t_pass_t p;
        rf_err_t err = {0};
        assert_int_equal(t_pass_new(cases[i].strength, cases[i].window, &p, &err), RF_ECONFIG);
        assert_int_equal(err.code, RF_ECONFIG);
        assert_non_null(strstr(err.msg, cases[i].key));
        assert_null(p.state);
    }
}

static void test_out_of_order(void **state)
{
    (void)state;
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(t_pass_new("0.6", "8", &p, &err), 0);
    t_frame_init(&f, 5);
    t_frame_fill(&f, 0.5f);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    f.index = 7;
    assert_int_equal(p.vt->run(p.state, &f, &err), RF_EINVAL);
    assert_string_equal(err.msg, "frames out of order: got frame 7 after 5");
    /* After a flush (end of chunk) any frame may come next. */
    assert_int_equal(p.vt->flush(p.state, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    t_frame_free(&f);
    t_pass_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alternating_window2),
        cmocka_unit_test(test_alternating_full_strength),
        cmocka_unit_test(test_gain_clamped),
        cmocka_unit_test(test_black_untouched),
        cmocka_unit_test(test_samples_clamped),
        cmocka_unit_test(test_strength_zero_identity),
        cmocka_unit_test(test_chunking_invariance),
        cmocka_unit_test(test_plan_is_window_minus_one),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_out_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
