/* test_sharpen.c - the sharpen pass (unsharp mask) against values computed here from the Gaussian
 * kernel, never from the pass's own helpers (worker/passes/sharpen.c):
 *   w[k] = exp(-k^2 / (2 sigma^2)), k = -h..h, h = ceil(3 sigma), normalised to sum 1;
 *   blur = sum over (i, j) of w[i] w[j] v(x+i, y+j), coordinates clamped to the frame;
 *   d = v - blur; v' = v + amount d where |d| > threshold, else v; clamped to [0, 1].
 * The reference here convolves in 2-D directly (not separably), in double.
 */
#include <math.h>
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
#define T_HALF_MAX 30

/* ---- helpers ------------------------------------------------------------------------------- */

static int t_pass_new_size(const char *amount, const char *radius, const char *threshold, int width,
                           int height, t_pass_t *p, rf_err_t *err)
{
    rf_param_t params[3] = {
        {.key = (char *)"amount", .value = (char *)amount},
        {.key = (char *)"radius", .value = (char *)radius},
        {.key = (char *)"threshold", .value = (char *)threshold},
    };
    return t_pass_create("sharpen", params, 3, width, height, p, err);
}

static int t_pass_new(const char *amount, const char *radius, const char *threshold, t_pass_t *p,
                      rf_err_t *err)
{
    return t_pass_new_size(amount, radius, threshold, W, H, p, err);
}

static void t_frame_copy(rf_pframe_t *dst, const rf_pframe_t *src)
{
    for (int p = 0; p < 3; p++)
        memcpy(dst->plane[p], src->plane[p], N * sizeof(float));
}

/* A step: lo where the coordinate across the edge is below at, hi from there on. vertical: the edge
 * runs up and down (the step is along x); otherwise along y. Same in all three planes. */
static void t_frame_step(rf_pframe_t *f, bool vertical, int at, float lo, float hi)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int p = 0; p < 3; p++)
                f->plane[p][(size_t)y * W + (size_t)x] = (vertical ? x : y) < at ? lo : hi;
}

/* Deterministic pseudo-random samples in lo..hi, a different pattern per plane. */
static void t_frame_noise(rf_pframe_t *f, uint32_t seed, float lo, float hi)
{
    uint32_t s = seed * 2654435761u + 7u;
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < N; i++) {
            s = s * 1664525u + 1013904223u;
            f->plane[p][i] = lo + (hi - lo) * (float)((s >> 8) % 10000) / 10000.0f;
        }
    }
}

/* The normalised Gaussian kernel w[0..half] (w[-k] = w[k]); returns half. */
static int t_kernel(double sigma, double w[T_HALF_MAX + 1])
{
    const int half = (int)ceil(3.0 * sigma);
    assert_true(half <= T_HALF_MAX);
    double sum = 0.0;
    for (int k = 0; k <= half; k++) {
        w[k] = exp(-(double)(k * k) / (2.0 * sigma * sigma));
        sum += k == 0 ? w[k] : 2.0 * w[k];
    }
    for (int k = 0; k <= half; k++)
        w[k] /= sum;
    return half;
}

static int t_clampi(int i, int n)
{
    return i < 0 ? 0 : i >= n ? n - 1 : i;
}

static double t_clamp01(double v)
{
    return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v;
}

/* The 2-D blur of one plane at (x, y), directly over the (2h+1)^2 neighbourhood. */
static double t_blur_at(const float *px, int x, int y, const double *w, int half)
{
    double sum = 0.0;
    for (int j = -half; j <= half; j++)
        for (int i = -half; i <= half; i++)
            sum += w[abs(i)] * w[abs(j)] *
                   px[(size_t)t_clampi(y + j, H) * W + (size_t)t_clampi(x + i, W)];
    return sum;
}

/* The expected output of the whole frame, in double. */
static void t_reference(const rf_pframe_t *in, double amount, double sigma, double threshold,
                        double *out[3])
{
    double w[T_HALF_MAX + 1];
    const int half = t_kernel(sigma, w);
    for (int p = 0; p < 3; p++) {
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                const size_t i = (size_t)y * W + (size_t)x;
                const double v = in->plane[p][i];
                const double d = v - t_blur_at(in->plane[p], x, y, w, half);
                out[p][i] = t_clamp01(fabs(d) > threshold ? v + amount * d : v);
            }
        }
    }
}

/* ---- tests --------------------------------------------------------------------------------- */

/* amount 0 changes no bit, not even of samples outside 0..1, whatever the radius and threshold. */
static void test_amount_zero_identity(void **state)
{
    (void)state;
    const char *radii[] = {"0.1", "1", "10"};
    for (size_t k = 0; k < 3; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        rf_pframe_t f, ref;
        assert_int_equal(t_pass_new("0", radii[k], "0", &p, &err), 0);
        t_frame_init(&f, 0);
        t_frame_init(&ref, 0);
        t_frame_noise(&f, (uint32_t)k, -0.2f, 1.2f);
        t_frame_copy(&ref, &f);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (int c = 0; c < 3; c++)
            assert_memory_equal(f.plane[c], ref.plane[c], N * sizeof(float));
        t_frame_free(&f);
        t_frame_free(&ref);
        t_pass_free(&p);
    }
}

/* A flat frame has no detail: bit-identical for any amount and radius (a radius of 10 reaches far
 * past the 16x8 frame's edges). */
static void test_flat_unchanged(void **state)
{
    (void)state;
    const char *amounts[] = {"0.5", "1", "5"};
    const char *radii[] = {"0.1", "0.7", "1", "3.3", "10"};
    const float values[] = {0.0f, 0.1f, 0.333f, 0.5f, 0.9876f, 1.0f};
    for (size_t a = 0; a < 3; a++) {
        for (size_t r = 0; r < 5; r++) {
            t_pass_t p;
            rf_err_t err = {0};
            assert_int_equal(t_pass_new(amounts[a], radii[r], "0", &p, &err), 0);
            for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
                rf_pframe_t f;
                t_frame_init(&f, (int64_t)v);
                for (int c = 0; c < 3; c++)
                    for (size_t i = 0; i < N; i++)
                        f.plane[c][i] = values[v];
                assert_int_equal(p.vt->run(p.state, &f, &err), 0);
                for (int c = 0; c < 3; c++)
                    for (size_t i = 0; i < N; i++)
                        assert_memory_equal(&f.plane[c][i], &values[v], sizeof(float));
                t_frame_free(&f);
            }
            t_pass_free(&p);
        }
    }
}

/* A step 0.25 | 0.75 at x = 8 (and, transposed, at y = 4), amount 1, sigma 1 (h = 3):
 *   w = (0.39905, 0.24204, 0.05401, 0.00443) after normalising (not quite the continuous
 *   Gaussian's 0.39894, 0.24197, ...: the discrete taps sum to 1)
 *   blur(7) = 0.25 + 0.5 (w1 + w2 + w3) = 0.40024 -> 0.25 + (0.25 - 0.40024) = 0.09976 (undershoot)
 *   blur(8) = 0.75 - 0.5 (w1 + w2 + w3) = 0.59976 -> 0.75 + (0.75 - 0.59976) = 0.90024 (overshoot)
 * Samples more than h from the edge are untouched. */
static void test_step_edge_overshoot(void **state)
{
    (void)state;
    double w[T_HALF_MAX + 1];
    const int half = t_kernel(1.0, w);
    assert_int_equal(half, 3);
    const double tail = w[1] + w[2] + w[3];
    assert_float_equal(w[0], 0.39905, 1e-5);
    assert_float_equal(w[1], 0.24204, 1e-5);

    for (int vertical = 0; vertical <= 1; vertical++) {
        const int at = vertical ? 8 : 4, len = vertical ? W : H;
        t_pass_t p;
        rf_err_t err = {0};
        rf_pframe_t f;
        assert_int_equal(t_pass_new("1", "1", "0", &p, &err), 0);
        t_frame_init(&f, 0);
        t_frame_step(&f, vertical, at, 0.25f, 0.75f);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);

        /* Across the edge: the blur of position u sums the weights of the taps on the far side. */
        for (int u = 0; u < len; u++) {
            double blur = 0.0;
            for (int k = -half; k <= half; k++)
                blur += w[abs(k)] * (t_clampi(u + k, len) < at ? 0.25 : 0.75);
            const double v = u < at ? 0.25 : 0.75;
            const double want = t_clamp01(v + 1.0 * (v - blur));
            for (int along = 0; along < (vertical ? H : W); along++) {
                const int x = vertical ? u : along, y = vertical ? along : u;
                for (int c = 0; c < 3; c++)
                    assert_float_equal(f.plane[c][(size_t)y * W + (size_t)x], want, 1e-6);
            }
            if (u < at - half || u >= at + half)
                assert_float_equal(want, v, 0.0);
        }
        const size_t before = vertical ? (size_t)(at - 1) : (size_t)(at - 1) * W;
        const size_t after = vertical ? (size_t)at : (size_t)at * W;
        assert_float_equal(f.plane[0][before], 0.25 - 0.5 * tail, 1e-6);
        assert_float_equal(f.plane[0][after], 0.75 + 0.5 * tail, 1e-6);
        assert_float_equal(f.plane[1][before], 0.09976, 1e-5);
        assert_float_equal(f.plane[2][after], 0.90024, 1e-5);
        t_frame_free(&f);
        t_pass_free(&p);
    }
}

/* Threshold 0.01 on a step 0.2 | 0.8 at x = 8, sigma 1, amount 1:
 *   x = 5: d = -0.6 w3 = -0.0027        -> at or under the threshold: unchanged
 *   x = 6: d = -0.6 (w2 + w3) = -0.0350 -> boosted
 * and a step of 0.02 (|d| at most 0.02 (w1+w2+w3) = 0.006) under threshold 0.05 is left alone. */
static void test_threshold(void **state)
{
    (void)state;
    double w[T_HALF_MAX + 1];
    t_kernel(1.0, w);
    const double d5 = -0.6 * w[3], d6 = -0.6 * (w[2] + w[3]);
    assert_true(fabs(d5) <= 0.01 && fabs(d6) > 0.01);

    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(t_pass_new("1", "1", "0.01", &p, &err), 0);
    t_frame_init(&f, 0);
    t_frame_step(&f, true, 8, 0.2f, 0.8f);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int y = 0; y < H; y++) {
        assert_float_equal(f.plane[0][(size_t)y * W + 5], 0.2f, 0.0);
        assert_float_equal(f.plane[0][(size_t)y * W + 6], 0.2 + d6, 1e-6);
        assert_float_equal(f.plane[0][(size_t)y * W + 10], 0.8f, 0.0);
        assert_float_equal(f.plane[0][(size_t)y * W + 9], 0.8 - d6, 1e-6);
    }
    t_pass_free(&p);

    rf_pframe_t ref;
    t_frame_init(&ref, 0);
    t_frame_step(&f, true, 8, 0.5f, 0.52f);
    t_frame_copy(&ref, &f);
    assert_int_equal(t_pass_new("5", "1", "0.05", &p, &err), 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++)
        assert_memory_equal(f.plane[c], ref.plane[c], N * sizeof(float));
    t_pass_free(&p);
    t_frame_free(&f);
    t_frame_free(&ref);
}

/* Textured frames against the direct 2-D reference, across radii (0.1: the kernel is all but a
 * single tap; 10: wider than the frame), amounts and thresholds, clamping included. */
static void test_texture_matches_reference(void **state)
{
    (void)state;
    const struct {
        const char *amount, *radius, *threshold;
        double a, r, t;
    } cases[] = {
        {"0.5", "1", "0", 0.5, 1.0, 0.0},     {"0.7", "1.3", "0", 0.7, 1.3, 0.0},
        {"2", "0.6", "0.02", 2.0, 0.6, 0.02}, {"5", "2.5", "0", 5.0, 2.5, 0.0},
        {"1", "10", "0.1", 1.0, 10.0, 0.1},   {"3", "0.1", "0", 3.0, 0.1, 0.0},
    };
    double *want[3];
    for (int c = 0; c < 3; c++) {
        want[c] = calloc(N, sizeof(double));
        assert_non_null(want[c]);
    }
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        rf_pframe_t f;
        assert_int_equal(t_pass_new(cases[k].amount, cases[k].radius, cases[k].threshold, &p, &err),
                         0);
        t_frame_init(&f, 0);
        t_frame_noise(&f, (uint32_t)k + 11u, 0.0f, 1.0f);
        t_reference(&f, cases[k].a, cases[k].r, cases[k].t, want);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < N; i++)
                assert_float_equal(f.plane[c][i], want[c][i], 2e-5);
        t_frame_free(&f);
        t_pass_free(&p);
    }
    for (int c = 0; c < 3; c++)
        free(want[c]);
}

/* Stateless: a frame comes out bit-identical processed alone by a fresh pass, after other frames
 * by the same pass, as a context frame, and in a chain behind an identity grade. */
static void test_stateless(void **state)
{
    (void)state;
    rf_pframe_t a, b, alone;
    t_frame_init(&a, 10);
    t_frame_init(&b, 11);
    t_frame_init(&alone, 10);
    t_frame_noise(&a, 1, 0.0f, 1.0f);
    t_frame_noise(&b, 2, 0.0f, 1.0f);

    t_pass_t p;
    rf_err_t err = {0};
    assert_int_equal(t_pass_new("1.5", "1.7", "0.01", &p, &err), 0);
    t_frame_copy(&alone, &a);
    assert_int_equal(p.vt->run(p.state, &alone, &err), 0);
    t_pass_free(&p);

    rf_param_t sp[3] = {{.key = (char *)"amount", .value = (char *)"1.5"},
                        {.key = (char *)"radius", .value = (char *)"1.7"},
                        {.key = (char *)"threshold", .value = (char *)"0.01"}};
    rf_param_t gp[4] = {{.key = (char *)"exposure", .value = (char *)"0"},
                        {.key = (char *)"contrast", .value = (char *)"1"},
                        {.key = (char *)"saturation", .value = (char *)"1"},
                        {.key = (char *)"gamma", .value = (char *)"1"}};
    const rf_pass_spec_t specs[2] = {
        {.name = (char *)"grade", .role = (char *)"refine", .params = gp, .nparams = 4},
        {.name = (char *)"sharpen", .role = (char *)"refine", .params = sp, .nparams = 3},
    };
    for (size_t first = 0; first < 2; first++) {
        rf_pass_chain_t *c = NULL;
        assert_int_equal(
            rf_pass_chain_new(&specs[first], 2 - first, 0, W, H, (AVRational){25, 1}, &c, &err), 0);
        assert_int_equal(rf_pass_chain_context(c), 0);
        /* b, a (as context), b, a: every a must equal alone. */
        for (int round = 0; round < 2; round++) {
            rf_pframe_t fb, fa;
            t_frame_init(&fb, 11);
            t_frame_init(&fa, 10);
            t_frame_copy(&fb, &b);
            t_frame_copy(&fa, &a);
            fa.context = round == 0;
            assert_int_equal(rf_pass_chain_run(c, &fb, &err), 0);
            assert_int_equal(rf_pass_chain_run(c, &fa, &err), 0);
            for (int pl = 0; pl < 3; pl++)
                assert_memory_equal(fa.plane[pl], alone.plane[pl], N * sizeof(float));
            t_frame_free(&fb);
            t_frame_free(&fa);
        }
        assert_int_equal(rf_pass_chain_flush(c, &err), 0);
        rf_pass_chain_destroy(&c);
    }
    t_frame_free(&a);
    t_frame_free(&b);
    t_frame_free(&alone);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    const struct {
        const char *amount, *radius, *threshold, *want;
    } cases[] = {
        {"5.5", "1", "0", "parameter 'amount': expected a number in 0..5, got '5.5'"},
        {"-0.1", "1", "0", "parameter 'amount'"},
        {"lots", "1", "0", "parameter 'amount'"},
        {"0.5", "0.05", "0", "parameter 'radius': expected a number in 0.1..10, got '0.05'"},
        {"0.5", "11", "0", "parameter 'radius'"},
        {"0.5", "nan", "0", "parameter 'radius'"},
        {"0.5", "1", "1.5", "parameter 'threshold': expected a number in 0..1, got '1.5'"},
        {"0.5", "1", "-1", "parameter 'threshold'"},
        {"0.5", "1", "", "parameter 'threshold'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        assert_int_equal(t_pass_new(cases[k].amount, cases[k].radius, cases[k].threshold, &p, &err),
                         RF_ECONFIG);
        assert_int_equal(err.code, RF_ECONFIG);
        assert_non_null(strstr(err.msg, cases[k].want));
        assert_null(p.state);
    }
}

/* A frame of another size than the pass was made for is refused, not read past its end. */
static void test_wrong_frame_size(void **state)
{
    (void)state;
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(t_pass_new_size("1", "1", "0", W / 2, H, &p, &err), 0);
    t_frame_init(&f, 0);
    assert_int_equal(p.vt->run(p.state, &f, &err), RF_EINVAL);
    assert_string_equal(err.msg, "frame is 16x8, the pass was made for 8x8");
    t_frame_free(&f);
    t_pass_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_amount_zero_identity),
        cmocka_unit_test(test_flat_unchanged),
        cmocka_unit_test(test_step_edge_overshoot),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_texture_matches_reference),
        cmocka_unit_test(test_stateless),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_wrong_frame_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
