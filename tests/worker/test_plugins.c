/* test_plugins.c - passes from shared objects (worker/passes/plugin.c): the example plugin
 * (plugin_invert.c, v' = v + amount (1 - 2 v)) loads, runs in a chain and validates its own
 * parameters; broken copies of it are refused, each with a message naming the file and the reason.
 * RF_TEST_PLUGINS is the folder tests/CMakeLists.txt builds them into.
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

#define W 5
#define H 3

#include "worker/pass_fixture.h"

#define T_GOOD RF_TEST_PLUGINS "/good"

static int t_unload(void **state)
{
    (void)state;
    rf_pass_plugins_unload();
    return 0;
}

static void t_expect_refusal(const char *path, int code, const char *want)
{
    rf_err_t err = {0};
    int rc = rf_pass_plugin_load(path, &err);
    if (rc != code)
        fail_msg("'%s': got %d (%s), want %d", path, rc, err.msg, code);
    if (!strstr(err.msg, want) || !strstr(err.msg, path))
        fail_msg("'%s': message '%s' lacks '%s' or the path", path, err.msg, want);
    assert_int_equal(rf_pass_plugin_count(), 0);
    assert_null(rf_pass_lookup("invert"));
}

static int t_chain_one(const char *name, rf_param_t *params, size_t n, rf_pass_chain_t **chain,
                       rf_err_t *err)
{
    rf_pass_spec_t spec = {
        .name = (char *)name, .role = (char *)"refine", .params = params, .nparams = n};
    return rf_pass_chain_new(&spec, 1, 7, W, H, (AVRational){25, 1}, chain, err);
}

/* Runs pass name with amount (NULL: the plugin's default) on a ramp and checks
 * v + a (1 - 2 v). */
static void t_run_invert(const char *name, const char *amount, double a)
{
    rf_param_t params[1] = {{.key = (char *)"amount", .value = (char *)amount}};
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    assert_int_equal(t_chain_one(name, params, amount ? 1 : 0, &chain, &err), 0);
    rf_pframe_t f;
    t_frame_init(&f, 0);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < N; i++)
            f.plane[p][i] = (float)(i + p) / (float)(N + 2);
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), 0);
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < N; i++) {
            const double v = (double)(i + p) / (N + 2), want = v + a * (1 - 2 * v);
            if (fabs(f.plane[p][i] - want) > 1e-6)
                fail_msg("%s amount %s: plane %d sample %zu is %.7f, want %.7f", name,
                         amount ? amount : "(default)", p, i, f.plane[p][i], want);
        }
    t_frame_free(&f);
    rf_pass_chain_destroy(&chain);
}

static void test_load_and_run(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_null(rf_pass_lookup("invert"));
    assert_int_equal(rf_pass_plugin_load(T_GOOD "/invert.so", &err), 0);
    assert_int_equal(rf_pass_plugin_count(), 1);
    assert_string_equal(rf_pass_plugin_name(0), "invert");
    assert_null(rf_pass_plugin_name(1));
    assert_non_null(rf_pass_lookup("invert"));
    /* The worker's "has this pass" check (slot.c) goes through rf_pass_builtin: it must see it. */
    assert_ptr_equal(rf_pass_builtin("invert"), rf_pass_lookup("invert"));
    assert_ptr_equal(rf_pass_lookup("grade"), rf_pass_builtin("grade"));
    t_run_invert("invert", "0.25", 0.25);
    t_run_invert("invert", NULL, 1.0);
    t_run_invert("invert", "0", 0.0);
}

/* The coordinator passes plugin parameters through: the plugin's create() is the check, and the
 * chain names the pass in front of its message. */
static void test_plugin_validates_parameters(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_plugin_load(T_GOOD "/invert.so", &err), 0);
    static const struct {
        const char *key, *value, *want;
    } table[] = {
        {"amount", "2", "pass 'invert': parameter 'amount': expected a number in 0..1, got '2'"},
        {"amount", "lots",
         "pass 'invert': parameter 'amount': expected a number in 0..1, got 'lots'"},
        {"gain", "1",
         "pass 'invert': parameter 'gain': expected no such parameter (known: amount), "
         "got '1'"},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        rf_param_t params[1] = {{.key = (char *)table[k].key, .value = (char *)table[k].value}};
        rf_pass_chain_t *chain = NULL;
        assert_int_equal(t_chain_one("invert", params, 1, &chain, &err), RF_ECONFIG);
        assert_null(chain);
        if (!strstr(err.msg, table[k].want))
            fail_msg("'%s' lacks '%s'", err.msg, table[k].want);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    t_expect_refusal(RF_TEST_PLUGINS "/abi99/invert_abi99.so", RF_EUNAVAIL,
                     "pass ABI 99, this worker loads 1..2");
    t_expect_refusal(RF_TEST_PLUGINS "/needs99/invert_needs99.so", RF_EUNAVAIL,
                     "refuses this worker's pass ABI 2");
    t_expect_refusal(RF_TEST_PLUGINS "/noentry/invert_noentry.so", RF_EUNAVAIL,
                     "no symbol 'rf_pass_plugin_entry'");
    t_expect_refusal(RF_TEST_PLUGINS "/clash/invert_grade.so", RF_EEXIST,
                     "pass 'grade' is a built-in pass of this worker");
    t_expect_refusal(RF_TEST_PLUGINS "/nowhere.so", RF_EUNAVAIL, "cannot load");
}

static void test_second_copy_refused(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_plugin_load(T_GOOD "/invert.so", &err), 0);
    assert_int_equal(rf_pass_plugin_load(RF_TEST_PLUGINS "/copy/invert_copy.so", &err), RF_EEXIST);
    assert_non_null(strstr(err.msg, "pass 'invert' is already loaded from another plugin"));
    assert_int_equal(rf_pass_plugin_count(), 1);
    t_run_invert("invert", "0.5", 0.5); /* the first one still works */
}

/* A pass folder loads every .so in name order; an ABI 1 plugin (no output_size) still loads. */
static void test_load_dir(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_plugins_load_dir(T_GOOD, &err), 0);
    assert_int_equal(rf_pass_plugin_count(), 2);
    assert_string_equal(rf_pass_plugin_name(0), "invert");      /* invert.so */
    assert_string_equal(rf_pass_plugin_name(1), "invert-abi1"); /* invert_abi1.so */
    t_run_invert("invert-abi1", "0.75", 0.75);

    rf_pass_plugins_unload();
    assert_int_equal(rf_pass_plugin_count(), 0);
    assert_null(rf_pass_lookup("invert"));
    assert_int_equal(rf_pass_plugins_load_dir(RF_TEST_PLUGINS "/abi99", &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "invert_abi99.so': pass ABI 99"));
    assert_int_equal(rf_pass_plugins_load_dir(RF_TEST_PLUGINS "/missing-dir", &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, "pass folder '" RF_TEST_PLUGINS "/missing-dir': cannot open"));
}

/* A pass that announces one size and hands on another is caught at its first frame. */
static void test_wrong_size_caught(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_pass_plugin_load(RF_TEST_PLUGINS "/badsize/invert_badsize.so", &err), 0);
    rf_pass_chain_t *chain = NULL;
    assert_int_equal(t_chain_one("invert-badsize", NULL, 0, &chain, &err), 0);
    int w = 0, h = 0;
    rf_pass_chain_output_size(chain, &w, &h);
    assert_int_equal(w, W + 2);
    assert_int_equal(h, H);
    rf_pframe_t f;
    t_frame_init(&f, 9);
    assert_int_equal(rf_pass_chain_run(chain, &f, &err), RF_EINVAL);
    assert_non_null(strstr(
        err.msg, "pass 'invert-badsize' at frame 9: handed on a 5x3 frame, it announced 7x3"));
    t_frame_free(&f);
    rf_pass_chain_destroy(&chain);
}

/* A pipeline naming a plugin the worker does not have fails with a message saying so. */
static void test_unknown_pass(void **state)
{
    (void)state;
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    assert_int_equal(t_chain_one("invert", NULL, 0, &chain, &err), RF_EUNAVAIL);
    assert_non_null(
        strstr(err.msg, "unknown pass 'invert' (not built into this worker, nor a loaded plugin)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_load_and_run, t_unload),
        cmocka_unit_test_teardown(test_plugin_validates_parameters, t_unload),
        cmocka_unit_test_teardown(test_refusals, t_unload),
        cmocka_unit_test_teardown(test_second_copy_refused, t_unload),
        cmocka_unit_test_teardown(test_load_dir, t_unload),
        cmocka_unit_test_teardown(test_unknown_pass, t_unload),
        cmocka_unit_test_teardown(test_wrong_size_caught, t_unload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
