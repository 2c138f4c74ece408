/* test_color.c - sRGB <-> Oklab and the Oklab statistics (media/color.c) against published values
 * and closed forms:
 *   - white is L = 1, a = b = 0 and black is 0, 0, 0 (Oklab's normalisation);
 *   - pure sRGB red, green and blue have the Oklab values Björn Ottosson's reference
 *     implementation gives (as published, e.g. in CSS Color 4's sample conversions);
 *   - a round trip returns the input;
 *   - the statistics of images made of known colours have closed-form means and deviations;
 *   - the text form is exactly 6 numbers and anything else is refused with a message.
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

#include "media.h"

#define T_EPS_PUBLISHED 2e-6 /* the published values have 6 decimals */

static void t_expect_lab(const double rgb[3], const double want[3], double eps)
{
    double lab[3];
    rf_color_srgb_to_oklab(rgb, lab);
    for (int c = 0; c < 3; c++) {
        if (fabs(lab[c] - want[c]) > eps)
            fail_msg("rgb (%g, %g, %g) channel %d: got %.9f, want %.9f", rgb[0], rgb[1], rgb[2], c,
                     lab[c], want[c]);
    }
}

static void test_white_black_grey(void **state)
{
    (void)state;
    t_expect_lab((double[3]){1, 1, 1}, (double[3]){1, 0, 0}, 1e-7);
    t_expect_lab((double[3]){0, 0, 0}, (double[3]){0, 0, 0}, 1e-12);
    /* Any grey is achromatic, and its L is the cube root of its linear light (Y^(1/3)): sRGB 0.5
     * decodes to ((0.5 + 0.055) / 1.055)^2.4. */
    const double y = pow((0.5 + 0.055) / 1.055, 2.4);
    t_expect_lab((double[3]){0.5, 0.5, 0.5}, (double[3]){cbrt(y), 0, 0}, 1e-7);
}

static void test_primaries_published(void **state)
{
    (void)state;
    static const struct {
        double rgb[3], lab[3];
    } table[] = {
        {{1, 0, 0}, {0.627955, 0.224863, 0.125846}},
        {{0, 1, 0}, {0.866440, -0.233888, 0.179498}},
        {{0, 0, 1}, {0.452014, -0.032457, -0.311528}},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        t_expect_lab(table[i].rgb, table[i].lab, T_EPS_PUBLISHED);
}

static void test_round_trip(void **state)
{
    (void)state;
    /* A grid over the cube, including values outside 0..1 (the mirrored curve must invert too). */
    for (double r = -0.2; r <= 1.2; r += 0.1) {
        for (double g = -0.2; g <= 1.2; g += 0.1) {
            for (double b = -0.2; b <= 1.2; b += 0.1) {
                double rgb[3] = {r, g, b}, lab[3], back[3];
                rf_color_srgb_to_oklab(rgb, lab);
                rf_color_oklab_to_srgb(lab, back);
                for (int c = 0; c < 3; c++) {
                    /* The published inverse matrices carry 10 decimals, and the sRGB curve's
                     * linear toe multiplies their ~1e-7 residue by 12.92: 5e-6 is a thousandth
                     * of an 8-bit code value. */
                    if (fabs(back[c] - rgb[c]) > 5e-6)
                        fail_msg("(%g, %g, %g) channel %d came back as %.9f", r, g, b, c, back[c]);
                }
            }
        }
    }
}

#define W 6
#define H 4

static void t_fill(float *plane[3], int i, const double rgb[3])
{
    for (int c = 0; c < 3; c++)
        plane[c][i] = (float)rgb[c];
}

static void test_stats_closed_form(void **state)
{
    (void)state;
    static float r[W * H], g[W * H], b[W * H];
    float *plane[3] = {r, g, b};
    const double red[3] = {1, 0, 0}, blue[3] = {0, 0, 1};
    const double red_lab[3] = {0.627955, 0.224863, 0.125846};
    const double blue_lab[3] = {0.452014, -0.032457, -0.311528};

    /* Uniform: mean is the colour, deviation 0. */
    for (int i = 0; i < W * H; i++)
        t_fill(plane, i, red);
    rf_color_stats_t s;
    rf_err_t err = {0};
    assert_int_equal(rf_color_stats((const float *const *)plane, W, H, 1, &s, &err), 0);
    for (int c = 0; c < 3; c++) {
        assert_true(fabs(s.mean[c] - red_lab[c]) < T_EPS_PUBLISHED);
        assert_true(s.std[c] < 1e-7);
    }

    /* Half red, half blue (columns alternate): mean = midpoint, population deviation = half the
     * distance. */
    for (int i = 0; i < W * H; i++)
        t_fill(plane, i, (i % W) % 2 == 0 ? red : blue);
    assert_int_equal(rf_color_stats((const float *const *)plane, W, H, 1, &s, &err), 0);
    for (int c = 0; c < 3; c++) {
        const double mean = (red_lab[c] + blue_lab[c]) / 2, sd = fabs(red_lab[c] - blue_lab[c]) / 2;
        if (fabs(s.mean[c] - mean) > T_EPS_PUBLISHED || fabs(s.std[c] - sd) > T_EPS_PUBLISHED)
            fail_msg("channel %d: got %.7f +- %.7f, want %.7f +- %.7f", c, s.mean[c], s.std[c],
                     mean, sd);
    }

    /* One red pixel in four (every other column) blue elsewhere: mean 1/4 red + 3/4 blue,
     * deviation sqrt(p (1 - p)) |red - blue| with p = 1/4. */
    for (int i = 0; i < W * H; i++)
        t_fill(plane, i, ((i % W) % 2 == 0 && (i / W) % 2 == 0) ? red : blue);
    assert_int_equal(rf_color_stats((const float *const *)plane, W, H, 1, &s, &err), 0);
    for (int c = 0; c < 3; c++) {
        const double mean = 0.25 * red_lab[c] + 0.75 * blue_lab[c];
        const double sd = sqrt(0.25 * 0.75) * fabs(red_lab[c] - blue_lab[c]);
        assert_true(fabs(s.mean[c] - mean) < T_EPS_PUBLISHED);
        assert_true(fabs(s.std[c] - sd) < T_EPS_PUBLISHED);
    }

    /* Step 2 reads exactly the red pixels of that pattern. */
    assert_int_equal(rf_color_stats((const float *const *)plane, W, H, 2, &s, &err), 0);
    for (int c = 0; c < 3; c++) {
        assert_true(fabs(s.mean[c] - red_lab[c]) < T_EPS_PUBLISHED);
        assert_true(s.std[c] < 1e-7);
    }
}

static void test_stats_bad_input(void **state)
{
    (void)state;
    static float r[4], g[4], b[4];
    const float *plane[3] = {r, g, b};
    const float *missing[3] = {r, NULL, b};
    rf_color_stats_t s;
    rf_err_t err = {0};
    assert_int_equal(rf_color_stats(plane, 2, 2, 0, &s, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "step 0"));
    assert_int_equal(rf_color_stats(plane, 0, 2, 1, &s, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "0x2"));
    assert_int_equal(rf_color_stats(missing, 2, 2, 1, &s, &err), RF_EINVAL);
}

static void test_text_round_trip(void **state)
{
    (void)state;
    rf_color_stats_t s = {{0.5, -0.0123456789, 0.25}, {0.1, 0.02, 3e-5}}, back;
    char buf[RF_COLOR_STATS_TEXT_MAX];
    int n = rf_color_stats_format(&s, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_string_equal(buf, "0.5,-0.0123457,0.25,0.1,0.02,3e-05");
    rf_err_t err = {0};
    assert_int_equal(rf_color_stats_parse(buf, &back, &err), 0);
    assert_true(back.mean[0] == 0.5 && back.mean[2] == 0.25 && back.std[1] == 0.02);
    assert_true(fabs(back.mean[1] - -0.0123457) < 1e-12 && back.std[2] == 3e-5);
    /* Blanks around the numbers are fine (users type them). */
    assert_int_equal(rf_color_stats_parse(" 0.6, 0.01 ,-0.02,0.2,0.03, 0.04", &back, &err), 0);
    assert_true(back.mean[0] == 0.6 && back.mean[2] == -0.02 && back.std[2] == 0.04);
}

static void test_text_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text, *why;
    } table[] = {
        {"", "number 1"},
        {"1,2,3", "got 3"},
        {"1,2,3,4,5,6,7", "more after the sixth"},
        {"1,2,3,4,5,6 x", "more after the sixth"},
        {"a,0,0,0,0,0", "number 1 (L mean)"},
        {"0.5,,0,0,0,0", "number 2 (a mean)"},
        {"0.5;0;0;0;0;0", "got 1"},
        {"0.5,0,0,-0.1,0,0", "L deviation must not be negative"},
        {"0.5,0,0,0.1,0,nan", "number 6 (b deviation)"},
        {"0.5,0,inf,0.1,0,0", "number 3 (b mean)"},
        {"0.5,0,0,0.1,0,1e999", "number 6"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        rf_color_stats_t s;
        rf_err_t err = {0};
        if (rf_color_stats_parse(table[i].text, &s, &err) != RF_EINVAL)
            fail_msg("'%s' was accepted", table[i].text);
        if (!strstr(err.msg, table[i].why) || !strstr(err.msg, table[i].text))
            fail_msg("'%s': message '%s' lacks '%s'", table[i].text, err.msg, table[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_white_black_grey), cmocka_unit_test(test_primaries_published),
        cmocka_unit_test(test_round_trip),       cmocka_unit_test(test_stats_closed_form),
        cmocka_unit_test(test_stats_bad_input),  cmocka_unit_test(test_text_round_trip),
        cmocka_unit_test(test_text_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
