/* test_scale.c - the scale pass against a direct two-dimensional resampling written here in double
 * precision from the definitions (worker/passes/scale.c's header), never from the pass's tables:
 *   centre x = (o + 0.5) * in / out - 0.5, kernel stretched by max(1, in / out), Lanczos a = 3
 *   (sinc(t) sinc(t / 3)) or Keys bicubic a = -0.5, weights normalised per axis, edges repeated;
 * plus the size rules (keep aspect, even rounding, refusals) through a real pass chain.
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

#include <libavutil/mem.h>

#include "passes.h"

#define W 16
#define H 8

/* ---- frames with planes the way the pipeline allocates them (av_malloc, padded) ------------ */

static void t_frame_alloc(rf_pframe_t *f, int w, int h)
{
    memset(f, 0, sizeof *f);
    f->width = w;
    f->height = h;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = av_malloc_array((size_t)w * h + RF_PFRAME_PAD_FLOATS, sizeof(float));
        assert_non_null(f->plane[p]);
    }
}

/* A smooth pattern in 0.25..0.75 (no ringing past 0..1), different per plane. */
static double t_pattern(int p, int x, int y)
{
    return 0.5 + 0.15 * sin(0.7 * x + 1.3 * p) * cos(0.9 * y - 0.4 * p) + 0.1 * sin(0.3 * (x + y));
}

static void t_fill_pattern(rf_pframe_t *f)
{
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < f->height; y++)
            for (int x = 0; x < f->width; x++)
                f->plane[p][(size_t)y * f->width + x] = (float)t_pattern(p, x, y);
}

/* ---- the reference ------------------------------------------------------------------------ */

static double t_kernel(bool bicubic, double t)
{
    t = fabs(t);
    if (bicubic) {
        /* Keys (1981) with a = -0.5, written from the paper's piecewise form. */
        if (t < 1)
            return 1.5 * t * t * t - 2.5 * t * t + 1;
        if (t < 2)
            return -0.5 * t * t * t + 2.5 * t * t - 4 * t + 2;
        return 0;
    }
    if (t >= 3)
        return 0;
    if (t == 0)
        return 1;
    return 3 * sin(M_PI * t) * sin(M_PI * t / 3) / (M_PI * M_PI * t * t);
}

/* The normalised weight input sample j has for output o, along an axis in -> out. Samples past
 * the edge are folded onto it (edge repetition). */
static double t_weight(bool bicubic, int in, int out, int o, int j)
{
    const double s = (double)in / out, f = s > 1 ? s : 1, x = (o + 0.5) * s - 0.5;
    const double radius = (bicubic ? 2 : 3) * f;
    double sum = 0, mine = 0;
    for (int k = (int)floor(x - radius) - 1; k <= (int)ceil(x + radius) + 1; k++) {
        const double w = t_kernel(bicubic, (x - k) / f);
        sum += w;
        const int clamped = k < 0 ? 0 : (k >= in ? in - 1 : k);
        if (clamped == j)
            mine += w;
    }
    return mine / sum;
}

static double t_expected(const rf_pframe_t *src, int p, bool bicubic, int ow, int oh, int ox,
                         int oy)
{
    double v = 0;
    for (int y = 0; y < src->height; y++) {
        const double wy = t_weight(bicubic, src->height, oh, oy, y);
        if (wy == 0)
            continue;
        for (int x = 0; x < src->width; x++)
            v += wy * t_weight(bicubic, src->width, ow, ox, x) *
                 src->plane[p][(size_t)y * src->width + x];
    }
    return v;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static int t_chain(const char *width, const char *height, const char *filter, int in_w, int in_h,
                   rf_pass_chain_t **chain, rf_err_t *err)
{
    rf_param_t params[3];
    size_t n = 0;
    if (width)
        params[n++] = (rf_param_t){.key = (char *)"width", .value = (char *)width};
    if (height)
        params[n++] = (rf_param_t){.key = (char *)"height", .value = (char *)height};
    if (filter)
        params[n++] = (rf_param_t){.key = (char *)"filter", .value = (char *)filter};
    rf_pass_spec_t spec = {
        .name = (char *)"scale", .role = (char *)"refine", .params = params, .nparams = n};
    return rf_pass_chain_new(&spec, 1, 1, in_w, in_h, (AVRational){25, 1}, chain, err);
}

/* Scales a W x H frame to ow x oh with filter and checks every sample against the reference. */
static void t_check_against_reference(const char *filter, int ow, int oh, double eps)
{
    char ws[16], hs[16];
    snprintf(ws, sizeof ws, "%d", ow);
    snprintf(hs, sizeof hs, "%d", oh);
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    assert_int_equal(t_chain(ws, hs, filter, W, H, &chain, &err), 0);
    rf_pframe_t src, f;
    t_frame_alloc(&src, W, H);
    t_frame_alloc(&f, W, H);
    t_fill_pattern(&src);
    t_fill_pattern(&f);
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), 0);
    assert_int_equal(f.width, ow);
    assert_int_equal(f.height, oh);
    const bool bicubic = filter && !strcmp(filter, "bicubic");
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                const double want = t_expected(&src, p, bicubic, ow, oh, x, y);
                const float got = f.plane[p][(size_t)y * ow + x];
                if (fabs(got - want) > eps)
                    fail_msg("%s %dx%d plane %d (%d, %d): got %.7f, want %.7f",
                             filter ? filter : "lanczos", ow, oh, p, x, y, got, want);
            }
    rf_pframe_release(&src);
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&chain);
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_constant_stays_constant(void **state)
{
    (void)state;
    static const struct {
        const char *filter;
        int w, h;
    } table[] = {{"lanczos", 8, 4},  {"lanczos", 24, 12}, {"lanczos", 5, 3},
                 {"bicubic", 7, 13}, {"lanczos", 16, 3},  {"bicubic", 3, 8}};
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        char ws[16], hs[16];
        snprintf(ws, sizeof ws, "%d", table[k].w);
        snprintf(hs, sizeof hs, "%d", table[k].h);
        rf_pass_chain_t *chain = NULL;
        rf_err_t err = {0};
        assert_int_equal(t_chain(ws, hs, table[k].filter, W, H, &chain, &err), 0);
        rf_pframe_t f;
        t_frame_alloc(&f, W, H);
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < (size_t)W * H; i++)
                f.plane[p][i] = 0.25f * (float)(p + 1);
        assert_int_equal(rf_pass_chain_run(chain, &f, &err), 0);
        assert_int_equal(f.width, table[k].w);
        assert_int_equal(f.height, table[k].h);
        for (int p = 0; p < 3; p++)
            for (size_t i = 0; i < (size_t)f.width * f.height; i++)
                if (fabs(f.plane[p][i] - 0.25 * (p + 1)) > 1e-6)
                    fail_msg("%s %dx%d: plane %d sample %zu is %.8f", table[k].filter, f.width,
                             f.height, p, i, f.plane[p][i]);
        rf_pframe_release(&f);
        rf_pass_chain_destroy(&chain);
    }
}

static void test_scale_by_one_is_identity(void **state)
{
    (void)state;
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    assert_int_equal(t_chain("16", "8", NULL, W, H, &chain, &err), 0);
    rf_pframe_t f, g;
    t_frame_alloc(&f, W, H);
    t_frame_alloc(&g, W, H);
    t_fill_pattern(&f);
    t_fill_pattern(&g);
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), 0);
    assert_int_equal(f.width, W);
    for (int p = 0; p < 3; p++)
        assert_memory_equal(f.plane[p], g.plane[p], (size_t)W * H * sizeof(float));
    rf_pframe_release(&f);
    rf_pframe_release(&g);
    rf_pass_chain_destroy(&chain);
}

static void test_against_reference(void **state)
{
    (void)state;
    t_check_against_reference("lanczos", 8, 4, 1e-5); /* 2x down: kernel stretched to 6 taps */
    t_check_against_reference("bicubic", 8, 4, 1e-5);
    t_check_against_reference("lanczos", 24, 12, 1e-5); /* 1.5x up */
    t_check_against_reference("lanczos", 16, 3, 1e-5);  /* one axis only */
    t_check_against_reference("bicubic", 5, 8, 1e-5);
}

static void test_output_size_rules(void **state)
{
    (void)state;
    static const struct {
        const char *width, *height;
        int in_w, in_h, want_w, want_h;
    } table[] = {
        {"1280", "0", 1920, 1080, 1280, 720},
        {"0", "720", 1920, 1080, 1280, 720},
        {"0", "481", 1920, 1080, 856, 481}, /* 855.1 -> 856 (even) */
        {"641", "0", 1920, 1080, 641, 360}, /* 360.56 -> 360 */
        {"1", "0", 16, 8, 1, 2},            /* 0.5 -> at least 2 */
        {"101", "33", 16, 8, 101, 33},      /* given sizes are used as given */
        {"8", "0", 16, 9, 8, 4},            /* 4.5 -> 4 (round half of 2.25 = 2) */
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        rf_pass_chain_t *chain = NULL;
        rf_err_t err = {0};
        assert_int_equal(t_chain(table[k].width, table[k].height, NULL, table[k].in_w,
                                 table[k].in_h, &chain, &err),
                         0);
        int w = 0, h = 0;
        rf_pass_chain_output_size(chain, &w, &h);
        if (w != table[k].want_w || h != table[k].want_h)
            fail_msg("case %zu: %dx%d, want %dx%d", k, w, h, table[k].want_w, table[k].want_h);
        rf_pass_chain_destroy(&chain);
    }
}

/* The passes after scale are created for the scaled size, and the chain checks sizes. */
static void test_chain_hands_on_size(void **state)
{
    (void)state;
    rf_param_t sp[2] = {{.key = (char *)"width", .value = (char *)"8"},
                        {.key = (char *)"height", .value = (char *)"0"}};
    rf_param_t gp[1] = {{.key = (char *)"contrast", .value = (char *)"2"}};
    rf_pass_spec_t specs[3] = {
        {.name = (char *)"scale", .role = (char *)"refine", .params = sp, .nparams = 2},
        {.name = (char *)"grade", .role = (char *)"refine", .params = gp, .nparams = 1},
        {.name = (char *)"scale", .role = (char *)"refine", .params = sp, .nparams = 1},
    };
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    /* scale 16x8 -> 8x4, grade, then width 8 again: 8x4 stays 8x4 (created for 8x4). */
    assert_int_equal(rf_pass_chain_new(specs, 3, 1, W, H, (AVRational){25, 1}, &chain, &err), 0);
    int w, h;
    rf_pass_chain_output_size(chain, &w, &h);
    assert_int_equal(w, 8);
    assert_int_equal(h, 4);
    rf_pframe_t f;
    t_frame_alloc(&f, W, H);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < (size_t)W * H; i++)
            f.plane[p][i] = 0.6f;
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), 0);
    assert_int_equal(f.width, 8);
    assert_int_equal(f.height, 4);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < 32; i++)
            assert_true(fabs(f.plane[p][i] - 0.7) < 1e-6); /* (0.6 - 0.5) * 2 + 0.5 */
    /* That frame is 8x4 now: the chain was made for 16x8 and says so. */
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "is 8x4, the pass chain was made for 16x8"));
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&chain);
}

static void test_bad_parameters(void **state)
{
    (void)state;
    static const struct {
        const char *width, *height, *filter, *want;
    } table[] = {
        {"0", "0", NULL, "pass 'scale': parameters 'width' and 'height': both 0"},
        {NULL, NULL, NULL, "pass 'scale': parameters 'width' and 'height': both 0"},
        {"-2", "0", NULL,
         "pass 'scale': parameter 'width': expected an integer in 0..16384, got '-2'"},
        {"640", "20000", NULL,
         "pass 'scale': parameter 'height': expected an integer in 0..16384, got '20000'"},
        {"6.5", "0", NULL,
         "pass 'scale': parameter 'width': expected an integer in 0..16384, got '6.5'"},
        {"640", "0", "nearest",
         "pass 'scale': parameter 'filter': expected lanczos or bicubic, got 'nearest'"},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        rf_pass_chain_t *chain = NULL;
        rf_err_t err = {0};
        if (t_chain(table[k].width, table[k].height, table[k].filter, W, H, &chain, &err) !=
            RF_ECONFIG)
            fail_msg("case %zu accepted", k);
        assert_null(chain);
        if (!strstr(err.msg, table[k].want))
            fail_msg("case %zu: '%s' lacks '%s'", k, err.msg, table[k].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_stays_constant),
        cmocka_unit_test(test_scale_by_one_is_identity),
        cmocka_unit_test(test_against_reference),
        cmocka_unit_test(test_output_size_rules),
        cmocka_unit_test(test_chain_hands_on_size),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
