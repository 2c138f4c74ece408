/* test_grade.c - the grade pass against values worked out by hand or from the closed-form
 * formulas (worker/passes/grade.c), never from the pass's own helpers:
 *   exposure (stops, in linear light through the exact sRGB curve), then contrast around 0.5,
 *   then saturation around Rec.709 luma, then gamma (v^(1/gamma)), then a clamp to [0, 1];
 *   parameters at their identity values leave the frame bit-identical.
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

#define W 8
#define H 4

#include "worker/pass_fixture.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* The four parameters as the spec loader would hand them over (defaults filled in). */
typedef struct t_grade_params {
    const char *exposure, *contrast, *saturation, *gamma;
} t_grade_params_t;

static const t_grade_params_t t_defaults = {"0", "1", "1", "1"};

static int t_pass_new(t_grade_params_t gp, t_pass_t *p, rf_err_t *err)
{
    rf_param_t params[4] = {
        {.key = (char *)"exposure", .value = (char *)gp.exposure},
        {.key = (char *)"contrast", .value = (char *)gp.contrast},
        {.key = (char *)"saturation", .value = (char *)gp.saturation},
        {.key = (char *)"gamma", .value = (char *)gp.gamma},
    };
    return t_pass_create("grade", params, 4, W, H, p, err);
}

static void t_frame_fill_rgb(rf_pframe_t *f, float r, float g, float b)
{
    for (size_t i = 0; i < N; i++) {
        f->plane[0][i] = r;
        f->plane[1][i] = g;
        f->plane[2][i] = b;
    }
}

/* Runs one flat grey frame of value in through a grade and returns the output (all samples of all
 * planes must agree). */
static double t_grade_grey(t_grade_params_t gp, float in)
{
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(t_pass_new(gp, &p, &err), 0);
    t_frame_init(&f, 0);
    t_frame_fill_rgb(&f, in, in, in);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    const float out = f.plane[0][0];
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < N; i++)
            assert_memory_equal(&f.plane[c][i], &out, sizeof out);
    t_frame_free(&f);
    t_pass_free(&p);
    return out;
}

/* The sRGB transfer (IEC 61966-2-1), written out here from the standard. */
static double t_srgb_decode(double v)
{
    return v <= 0.04045 ? v / 12.92 : pow((v + 0.055) / 1.055, 2.4);
}

static double t_srgb_encode(double l)
{
    return l <= 0.0031308 ? 12.92 * l : 1.055 * pow(l, 1.0 / 2.4) - 0.055;
}

/* Deterministic pseudo-random samples, some outside 0..1 on purpose (a pass must leave even those
 * alone when it is the identity). */
static void t_frame_noise(rf_pframe_t *f, uint32_t seed)
{
    uint32_t s = seed * 2654435761u + 7u;
    for (int p = 0; p < 3; p++) {
        for (size_t i = 0; i < N; i++) {
            s = s * 1664525u + 1013904223u;
            f->plane[p][i] = -0.1f + 1.2f * (float)((s >> 8) % 10000) / 10000.0f;
        }
    }
}

/* ---- tests --------------------------------------------------------------------------------- */

/* Defaults (given explicitly, as the loader fills them in, or absent) change no bit, not even of
 * samples outside 0..1 (no clamp either). */
static void test_defaults_identity(void **state)
{
    (void)state;
    const t_grade_params_t absent = {NULL, NULL, NULL, NULL};
    const t_grade_params_t cases[] = {t_defaults, absent, {"0.0", "1.0", "1", "1.000"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        rf_pframe_t f, ref;
        assert_int_equal(t_pass_new(cases[k], &p, &err), 0);
        t_frame_init(&f, 3);
        t_frame_init(&ref, 3);
        t_frame_noise(&f, (uint32_t)k);
        t_frame_noise(&ref, (uint32_t)k);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (int c = 0; c < 3; c++)
            assert_memory_equal(f.plane[c], ref.plane[c], N * sizeof(float));
        t_frame_free(&f);
        t_frame_free(&ref);
        t_pass_free(&p);
    }
}

/* Exposure +1 doubles linear light, -1 halves it, through the exact sRGB curve: 0.01 sits on the
 * linear toe (0.01/12.92 linear), 0.2 and 0.5 on the power segment. Worked values:
 *   0.5 -> linear 0.214041 -> 0.428081 -> 0.685836;  0.1 -> 0.151900;  0.01 -> 0.02 (the toe is
 *   linear). */
static void test_exposure_doubles_linear_light(void **state)
{
    (void)state;
    const t_grade_params_t up = {"1", "1", "1", "1"}, down = {"-1", "1", "1", "1"};
    const float ins[] = {0.01f, 0.02f, 0.2f, 0.5f, 0.7f};
    for (size_t k = 0; k < sizeof ins / sizeof ins[0]; k++) {
        const double in = ins[k];
        const double out_up = t_grade_grey(up, ins[k]);
        const double out_down = t_grade_grey(down, ins[k]);
        assert_float_equal(t_srgb_decode(out_up), 2.0 * t_srgb_decode(in), 1e-6);
        assert_float_equal(t_srgb_decode(out_down), 0.5 * t_srgb_decode(in), 1e-6);
        assert_float_equal(out_up, t_srgb_encode(2.0 * t_srgb_decode(in)), 1e-6);
    }
    /* Hand-checked anchors, so the test does not only agree with its own transcription. */
    assert_float_equal(t_grade_grey(up, 0.5f), 0.685836, 1e-5);
    assert_float_equal(t_grade_grey(up, 0.1f), 0.151900, 1e-5);
    assert_float_equal(t_grade_grey(up, 0.01f), 0.02, 1e-6);
    /* Not a pure 2.2 power, which would give 0.1 * 2^(1/2.2) = 0.137035. */
    assert_true(fabs(t_grade_grey(up, 0.1f) - 0.137035) > 1e-2);
    /* Two stops up from 0.8 is past white: clamped to 1. */
    assert_float_equal(t_grade_grey((t_grade_params_t){"2", "1", "1", "1"}, 0.8f), 1.0, 0.0);
}

/* Contrast 2 around 0.5: 0.25 -> 0, 0.75 -> 1, 0.5 stays, 0.1 -> -0.3 -> clamped 0,
 * 0.4 -> 0.3; contrast 0 makes everything 0.5. */
static void test_contrast(void **state)
{
    (void)state;
    const t_grade_params_t two = {"0", "2", "1", "1"}, zero = {"0", "0", "1", "1"};
    assert_float_equal(t_grade_grey(two, 0.25f), 0.0, 0.0);
    assert_float_equal(t_grade_grey(two, 0.75f), 1.0, 0.0);
    assert_float_equal(t_grade_grey(two, 0.5f), 0.5, 0.0);
    assert_float_equal(t_grade_grey(two, 0.1f), 0.0, 0.0);
    assert_float_equal(t_grade_grey(two, 0.4f), 0.3, 1e-6);
    assert_float_equal(t_grade_grey(zero, 0.9f), 0.5, 0.0);
}

/* Saturation on (0.8, 0.4, 0.2): Y = 0.2126*0.8 + 0.7152*0.4 + 0.0722*0.2 = 0.4706.
 *   0   -> (0.4706, 0.4706, 0.4706)
 *   0.5 -> (0.6353, 0.4353, 0.3353)
 *   2   -> (1.1294 -> 1, 0.3294, -0.0706 -> 0) */
static void test_saturation(void **state)
{
    (void)state;
    const struct {
        const char *saturation;
        double r, g, b;
    } cases[] = {
        {"0", 0.4706, 0.4706, 0.4706},
        {"0.5", 0.6353, 0.4353, 0.3353},
        {"2", 1.0, 0.3294, 0.0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        rf_pframe_t f;
        assert_int_equal(
            t_pass_new((t_grade_params_t){"0", "1", cases[k].saturation, "1"}, &p, &err), 0);
        t_frame_init(&f, 0);
        t_frame_fill_rgb(&f, 0.8f, 0.4f, 0.2f);
        assert_int_equal(p.vt->run(p.state, &f, &err), 0);
        for (size_t i = 0; i < N; i += N - 1) {
            assert_float_equal(f.plane[0][i], cases[k].r, 1e-5);
            assert_float_equal(f.plane[1][i], cases[k].g, 1e-5);
            assert_float_equal(f.plane[2][i], cases[k].b, 1e-5);
        }
        t_frame_free(&f);
        t_pass_free(&p);
    }
}

/* Gamma: v^(1/gamma). 2 on 0.25 -> 0.5; 0.5 on 0.5 -> 0.25; 0 and 1 are fixed points. */
static void test_gamma(void **state)
{
    (void)state;
    const t_grade_params_t two = {"0", "1", "1", "2"}, half = {"0", "1", "1", "0.5"};
    assert_float_equal(t_grade_grey(two, 0.25f), 0.5, 1e-7);
    assert_float_equal(t_grade_grey(half, 0.5f), 0.25, 1e-7);
    assert_float_equal(t_grade_grey(two, 0.0f), 0.0, 0.0);
    assert_float_equal(t_grade_grey(two, 1.0f), 1.0, 0.0);
}

/* The order is exposure, contrast, saturation, gamma:
 *   contrast 2 then gamma 2 on 0.375: 0.25 -> 0.5 (gamma first would give 0.7247);
 *   exposure +1 then contrast 2 on 0.5: 0.685836 -> 0.871672 (contrast first: 0.5 -> 0.685836). */
static void test_fixed_order(void **state)
{
    (void)state;
    assert_float_equal(t_grade_grey((t_grade_params_t){"0", "2", "1", "2"}, 0.375f), 0.5, 1e-6);
    assert_float_equal(t_grade_grey((t_grade_params_t){"1", "2", "1", "1"}, 0.5f), 0.871672, 1e-5);
}

/* Every output is clamped to [0, 1], also samples that came in out of range, once any step runs
 * (gamma on a negative sample leaves it for the clamp rather than making a NaN). */
static void test_clamped(void **state)
{
    (void)state;
    const t_grade_params_t g = {"0", "1", "1", "2"};
    assert_float_equal(t_grade_grey(g, -0.2f), 0.0, 0.0);
    assert_float_equal(t_grade_grey(g, 1.44f), 1.0, 0.0);
    assert_float_equal(t_grade_grey((t_grade_params_t){"4", "4", "4", "0.1"}, 0.3f), 1.0, 0.0);
    assert_float_equal(t_grade_grey((t_grade_params_t){"-4", "4", "1", "10"}, 0.3f), 0.0, 0.0);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    const struct {
        t_grade_params_t gp;
        const char *want;
    } cases[] = {
        {{"4.5", "1", "1", "1"}, "parameter 'exposure': expected a number in -4..4, got '4.5'"},
        {{"-5", "1", "1", "1"}, "parameter 'exposure': expected a number in -4..4, got '-5'"},
        {{"bright", "1", "1", "1"}, "parameter 'exposure': expected a number in -4..4"},
        {{"nan", "1", "1", "1"}, "parameter 'exposure'"},
        {{"0", "-0.1", "1", "1"}, "parameter 'contrast': expected a number in 0..4, got '-0.1'"},
        {{"0", "inf", "1", "1"}, "parameter 'contrast'"},
        {{"0", "1", "4.01", "1"}, "parameter 'saturation': expected a number in 0..4"},
        {{"0", "1", "", "1"}, "parameter 'saturation'"},
        {{"0", "1", "1", "0"}, "parameter 'gamma': expected a number in 0.1..10, got '0'"},
        {{"0", "1", "1", "0.05"}, "parameter 'gamma'"},
        {{"0", "1", "1", "11"}, "parameter 'gamma'"},
        {{"0", "1", "1", "2x"}, "parameter 'gamma'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        t_pass_t p;
        rf_err_t err = {0};
        assert_int_equal(t_pass_new(cases[k].gp, &p, &err), RF_ECONFIG);
        assert_int_equal(err.code, RF_ECONFIG);
        assert_non_null(strstr(err.msg, cases[k].want));
        assert_null(p.state);
    }
}

/* Through the chain: the pass is found by name, needs no context, and its errors carry its name. */
static void test_in_chain(void **state)
{
    (void)state;
    rf_param_t params[1] = {{.key = (char *)"gamma", .value = (char *)"0"}};
    rf_pass_spec_t spec = {
        .name = (char *)"grade", .role = (char *)"refine", .params = params, .nparams = 1};
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, W, H, (AVRational){25, 1}, &c, &err),
                     RF_ECONFIG);
    assert_null(c);
    assert_string_equal(err.msg,
                        "pass 'grade': parameter 'gamma': expected a number in 0.1..10, got '0'");

    params[0].value = (char *)"2";
    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, W, H, (AVRational){25, 1}, &c, &err), 0);
    assert_int_equal(rf_pass_chain_context(c), 0);
    rf_pframe_t f;
    t_frame_init(&f, 41);
    t_frame_fill_rgb(&f, 0.25f, 0.25f, 0.25f);
    assert_int_equal(rf_pass_chain_run(c, &f, &err), 0);
    assert_float_equal(f.plane[1][5], 0.5, 1e-7);
    assert_int_equal(rf_pass_chain_flush(c, &err), 0);
    t_frame_free(&f);
    rf_pass_chain_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_identity),
        cmocka_unit_test(test_exposure_doubles_linear_light),
        cmocka_unit_test(test_contrast),
        cmocka_unit_test(test_saturation),
        cmocka_unit_test(test_gamma),
        cmocka_unit_test(test_fixed_order),
        cmocka_unit_test(test_clamped),
        cmocka_unit_test(test_bad_parameters),
        cmocka_unit_test(test_in_chain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
