/* test_onnx_spec.c - the onnx pass in job specs (config/catalog.c): the model path resolves against
 * the spec's folder, the asset stays empty unless given, bindings and ranges are checked at load
 * with the file, line and key, and frame-K inputs ask the planner for K context frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define S_BASE "/srv/jobs"
#define S_HEAD "version: 1\ninput: in.mov\noutput: out.mp4\npipeline:\n"

static rf_job_spec_t *s_load(const char *yaml, rf_err_t *err)
{
    rf_job_spec_t *spec = NULL;
    memset(err, 0, sizeof *err);
    if (rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", S_BASE, &spec, err) != 0)
        return NULL;
    return spec;
}

static void test_defaults_and_paths(void **state)
{
    (void)state;
    rf_err_t err;
    rf_job_spec_t *spec = s_load(S_HEAD "  - {pass: onnx, role: generate, model: m/sr.onnx}\n", &err);
    if (!spec)
        fail_msg("%s", err.msg);
    const rf_pass_spec_t *p = &spec->pipeline[0];
    assert_string_equal(p->role, "generate");
    assert_string_equal(rf_pass_spec_param(p, "model"), S_BASE "/m/sr.onnx");
    assert_string_equal(rf_pass_spec_param(p, "asset"), ""); /* not given: no file */
    assert_string_equal(rf_pass_spec_param(p, "device"), "auto");
    assert_string_equal(rf_pass_spec_param(p, "precision"), "fp16");
    assert_string_equal(rf_pass_spec_param(p, "inputs"), "");
    assert_string_equal(rf_pass_spec_param(p, "tile"), "0");
    assert_string_equal(rf_pass_spec_param(p, "overlap"), "16");
    assert_int_equal(rf_pass_context(p), 0);
    assert_int_equal(rf_job_spec_context(spec), 0);
    rf_job_spec_destroy(&spec);

    spec = s_load(S_HEAD "  - pass: onnx\n    model: /abs/t.onnx\n    inputs: 'x=frame, a=frame-3, "
                         "b=frame-1, f=asset'\n    asset: faces/ada.png\n",
                  &err);
    if (!spec)
        fail_msg("%s", err.msg);
    p = &spec->pipeline[0];
    assert_string_equal(rf_pass_spec_param(p, "model"), "/abs/t.onnx");
    assert_string_equal(rf_pass_spec_param(p, "asset"), S_BASE "/faces/ada.png");
    assert_int_equal(rf_pass_context(p), 3);
    assert_true(rf_job_spec_context(spec) >= 3);
    rf_job_spec_destroy(&spec);
}

static void s_refused(const char *pass_yaml, const char *want)
{
    char yaml[1024];
    rf_err_t err;
    snprintf(yaml, sizeof yaml, S_HEAD "%s", pass_yaml);
    rf_job_spec_t *spec = s_load(yaml, &err);
    if (spec) {
        rf_job_spec_destroy(&spec);
        fail_msg("loaded: %s", pass_yaml);
    }
    assert_int_equal(err.code, RF_ECONFIG);
    if (!strstr(err.msg, want))
        fail_msg("expected '%s' in: %s", want, err.msg);
    assert_non_null(strstr(err.msg, "job.yaml:5"));
}

static void test_refusals(void **state)
{
    (void)state;
    s_refused("  - {pass: onnx}\n", "'pipeline[0].model': required key missing");
    s_refused("  - {pass: onnx, model: a.onnx, inputs: 'x=frame-9'}\n", "frame-K needs K in 1..8");
    s_refused("  - {pass: onnx, model: a.onnx, inputs: 'x=frame+1'}\n", "unknown source 'frame+1'");
    s_refused("  - {pass: onnx, model: a.onnx, inputs: 'x'}\n", "is not NAME=SOURCE");
    s_refused("  - {pass: onnx, model: a.onnx, inputs: 'x=frame, m=asset'}\n",
              "an input is bound to 'asset', give the image file");
    s_refused("  - {pass: onnx, model: a.onnx, output_min: 2, output_max: 2}\n",
              "the range is empty");
    s_refused("  - {pass: onnx, model: a.onnx, tile: 64, overlap: 64}\n",
              "'overlap': 64 must be smaller than 'tile' (64)");
    s_refused("  - {pass: onnx, model: a.onnx, device: tpu}\n", "device");
    s_refused("  - {pass: onnx, model: a.onnx, role: critic}\n", "role");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_paths),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
