/* test_passes.c - the built-in registry and the pass chain (worker/passes/passes.c): creation
 * from a spec, context, running in order, and error messages that name the pass and the frame.
 */
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
#define N ((size_t)W * H)

static const AVRational t_fps = {25, 1};

static rf_pass_spec_t t_deflicker(rf_param_t params[2], const char *strength, const char *window)
{
    params[0].key = (char *)"strength";
    params[0].value = (char *)strength;
    params[1].key = (char *)"window";
    params[1].value = (char *)window;
    rf_pass_spec_t spec = {
        .name = (char *)"deflicker", .role = (char *)"refine", .params = params, .nparams = 2};
    return spec;
}

static void t_frame_init(rf_pframe_t *f, int64_t index, float v)
{
    memset(f, 0, sizeof *f);
    f->index = index;
    f->width = W;
    f->height = H;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = malloc(N * sizeof(float));
        assert_non_null(f->plane[p]);
        for (size_t i = 0; i < N; i++)
            f->plane[p][i] = v;
    }
}

static void test_builtin_registry(void **state)
{
    (void)state;
    const rf_pass_vtable_t *vt = rf_pass_builtin("deflicker");
    assert_non_null(vt);
    assert_string_equal(vt->name, "deflicker");
    assert_int_equal(vt->abi, RF_PASS_ABI);
    assert_non_null(vt->create);
    assert_non_null(vt->run);
    assert_non_null(vt->destroy);
    assert_null(rf_pass_builtin("emboss"));
    assert_null(rf_pass_builtin(""));
    assert_null(rf_pass_builtin(NULL));
    assert_null(rf_pass_builtin("Deflicker"));
}

/* Every pass the catalogue declares is built in (the spec loader accepts nothing else). */
static void test_catalogue_is_built_in(void **state)
{
    (void)state;
    size_t n = 0;
    const rf_pass_def_t *defs = rf_pass_catalog(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_non_null(rf_pass_builtin(defs[i].name));
}

/* A chain with two deflickers: context is the larger plan(), and frames go through both in
 * order. window 2, strength 1 on 0.4 then 0.6: the first pass makes frame 1 0.5 (the average);
 * the second then sees 0.4, 0.5 and makes it 0.45. */
static void test_chain_runs_in_order(void **state)
{
    (void)state;
    rf_param_t p1[2], p2[2];
    rf_pass_spec_t specs[2] = {t_deflicker(p1, "1", "2"), t_deflicker(p2, "1", "5")};
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_chain_new(specs, 2, 7, W, H, t_fps, &c, &err), 0);
    assert_int_equal(rf_pass_chain_context(c), 4);

    rf_pframe_t f;
    t_frame_init(&f, 0, 0.4f);
    assert_int_equal(rf_pass_chain_run(c, &f, &err), 0);
    assert_float_equal(f.plane[0][0], 0.4, 1e-6);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < N; i++)
            f.plane[p][i] = 0.6f;
    f.index = 1;
    assert_int_equal(rf_pass_chain_run(c, &f, &err), 0);
    for (int p = 0; p < 3; p++)
        assert_float_equal(f.plane[p][N - 1], 0.45, 1e-6);
    assert_int_equal(rf_pass_chain_flush(c, &err), 0);
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&c);
    assert_null(c);
    rf_pass_chain_destroy(&c); /* idempotent */
}

/* An empty pipeline is the identity and wants no context. */
static void test_empty_chain(void **state)
{
    (void)state;
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(rf_pass_chain_new(NULL, 0, 0, W, H, t_fps, &c, &err), 0);
    assert_int_equal(rf_pass_chain_context(c), 0);
    t_frame_init(&f, 3, 0.25f);
    assert_int_equal(rf_pass_chain_run(c, &f, &err), 0);
    assert_float_equal(f.plane[2][5], 0.25, 0.0);
    assert_int_equal(rf_pass_chain_flush(c, &err), 0);
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&c);
}

static void test_unknown_pass(void **state)
{
    (void)state;
    rf_param_t p1[2];
    rf_pass_spec_t specs[2] = {t_deflicker(p1, "0.5", "4"),
                               {.name = (char *)"emboss", .role = (char *)"refine"}};
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_chain_new(specs, 2, 0, W, H, t_fps, &c, &err), RF_EUNAVAIL);
    assert_null(c);
    assert_int_equal(err.code, RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "unknown pass 'emboss'"));
}

/* A pass's own creation error keeps its text, behind the pass's name. */
static void test_create_error_names_pass(void **state)
{
    (void)state;
    rf_param_t p1[2];
    rf_pass_spec_t spec = t_deflicker(p1, "3", "4");
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, W, H, t_fps, &c, &err), RF_ECONFIG);
    assert_null(c);
    assert_string_equal(
        err.msg, "pass 'deflicker': parameter 'strength': expected a number in 0..1, got '3'");
}

/* A run error says which pass and which global frame. */
static void test_run_error_names_pass_and_frame(void **state)
{
    (void)state;
    rf_param_t p1[2];
    rf_pass_spec_t spec = t_deflicker(p1, "0.5", "4");
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    rf_pframe_t f;
    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, W, H, t_fps, &c, &err), 0);
    t_frame_init(&f, 811, 0.5f);
    assert_int_equal(rf_pass_chain_run(c, &f, &err), 0);
    f.index = 900;
    assert_int_equal(rf_pass_chain_run(c, &f, &err), RF_EINVAL);
    assert_string_equal(
        err.msg, "pass 'deflicker' at frame 900: frames out of order: got frame 900 after 811");
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&c);
}

static void test_bad_frames_and_sizes(void **state)
{
    (void)state;
    rf_pass_chain_t *c = NULL;
    rf_err_t err = {0};
    rf_param_t p1[2];
    rf_pass_spec_t spec = t_deflicker(p1, "0.5", "4");
    rf_pass_spec_t many[RF_SPEC_MAX_PASSES + 1];
    for (size_t i = 0; i < RF_SPEC_MAX_PASSES + 1; i++)
        many[i] = spec;

    assert_int_equal(rf_pass_chain_new(many, RF_SPEC_MAX_PASSES + 1, 0, W, H, t_fps, &c, &err),
                     RF_ETOOBIG);
    assert_int_equal(rf_pass_chain_new(many, RF_SPEC_MAX_PASSES, 0, W, H, t_fps, &c, &err), 0);
    assert_int_equal(rf_pass_chain_context(c), 3);
    rf_pass_chain_destroy(&c);
    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, 0, H, t_fps, &c, &err), RF_EINVAL);

    assert_int_equal(rf_pass_chain_new(&spec, 1, 0, W, H, t_fps, &c, &err), 0);
    rf_pframe_t f;
    t_frame_init(&f, 0, 0.5f);
    f.width = W + 1;
    assert_int_equal(rf_pass_chain_run(c, &f, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "frame 0 is 9x4"));
    f.width = W;
    float *keep = f.plane[1];
    f.plane[1] = NULL;
    assert_int_equal(rf_pass_chain_run(c, &f, &err), RF_EINVAL);
    f.plane[1] = keep;
    rf_pframe_release(&f);
    rf_pass_chain_destroy(&c);
}

/* The coordinator plans context from the catalogue (rf_pass_context, config/catalog.c); the
 * worker's passes say what they need in plan(). The two must agree, parameter by parameter. */
static void test_catalogue_context_matches_plan(void **state)
{
    (void)state;
    struct {
        const char *pass, *key, *value, *key2, *value2;
    } cases[] = {
        {"deflicker", "window", "1", NULL, NULL},   {"deflicker", "window", "8", NULL, NULL},
        {"deflicker", "window", "120", NULL, NULL}, {"color-match", "smoothing", "0", NULL, NULL},
        {"color-match", "smoothing", "0.5", NULL, NULL},
        {"color-match", "smoothing", "4", NULL, NULL},
        {"color-match", "smoothing", "30", NULL, NULL},
        {"grade", "exposure", "0.5", NULL, NULL},   {"sharpen", "amount", "1", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rf_param_t params[3] = {{(char *)cases[i].key, (char *)cases[i].value},
                                {(char *)"reference", (char *)"0.5,0,0,0.1,0.01,0.01"}};
        size_t np = strcmp(cases[i].pass, "color-match") ? 1 : 2;
        rf_pass_spec_t spec = {.name = (char *)cases[i].pass, .role = (char *)"refine",
                               .params = params, .nparams = np};
        rf_pass_chain_t *chain = NULL;
        rf_err_t err = {0};
        if (rf_pass_chain_new(&spec, 1, 1, W, H, (AVRational){25, 1}, &chain, &err) != 0)
            fail_msg("%s %s=%s: %s", cases[i].pass, cases[i].key, cases[i].value, err.msg);
        if (rf_pass_chain_context(chain) != rf_pass_context(&spec))
            fail_msg("%s %s=%s: plan() wants %d frames, the catalogue says %d", cases[i].pass,
                     cases[i].key, cases[i].value, rf_pass_chain_context(chain), rf_pass_context(&spec));
        rf_pass_chain_destroy(&chain);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_registry),
        cmocka_unit_test(test_catalogue_context_matches_plan),
        cmocka_unit_test(test_catalogue_is_built_in),
        cmocka_unit_test(test_chain_runs_in_order),
        cmocka_unit_test(test_empty_chain),
        cmocka_unit_test(test_unknown_pass),
        cmocka_unit_test(test_create_error_names_pass),
        cmocka_unit_test(test_run_error_names_pass_and_frame),
        cmocka_unit_test(test_bad_frames_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
