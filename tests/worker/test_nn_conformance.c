/* test_nn_conformance.c - ONNX's own node tests (Debian's libonnx-testdata) through the CPU
 * executor, and the project's model fixtures (tests/fixtures/nn/<name>/, same layout).
 *
 * The package's pytorch-converted/ and pytorch-operator/ cases run the same way (listed as
 * "DIR/NAME"). A node test is run when every op of its model is in the executor's set (the 21 ops
 * of DESIGN section 6 and the shape glue exporters put around them); the ops are read from the
 * model with the protobuf code (not from the folder's name). Every such case must match its
 * output_*.pb (float: |got - want| <= 1e-7 + 1e-3 * |want|, ONNX's backend-test tolerance; other
 * types exactly), except the cases listed in tests/worker/nn-refused.txt, which must be refused
 * with a message (a listed case that runs, or fails in another way, fails the test: the list and
 * docs/models.md must stay true). Fixtures must match within max abs error 1e-4.
 */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "nn.h"
#include "onnx-subset.pb-c.h"

#define DATA_DIR_DEFAULT "/usr/share/libonnx-testdata/data"
#define NODE_DIR_DEFAULT DATA_DIR_DEFAULT "/node"
#define MAX_CASES 2048
#define MAX_IO 16

static const char *const s_ops[] = {
    "Conv", "ConvTranspose", "BatchNormalization", "InstanceNormalization", "Relu", "LeakyRelu",
    "PRelu", "Sigmoid", "Tanh", "Clip", "Add", "Sub", "Mul", "Div", "Concat", "Pad", "Resize",
    "DepthToSpace", "SpaceToDepth", "Constant", "Identity",
    /* shape glue that exporters emit around them */
    "Shape", "ConstantOfShape", "Reshape", "Slice", "Transpose", "Cast", "Gather", "Unsqueeze",
    "Squeeze", NULL};

typedef struct refused {
    char name[128];
    bool seen;
} refused_t;

/* snprintf through a function: long paths are truncated, as intended, without -Wformat-truncation.
 */
static void s_fmt(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static refused_t s_refused[256];
static int s_nrefused;

static const char *s_source_dir(void)
{
    const char *d = getenv("RF_SOURCE_DIR");
    return d ? d : ".";
}

static void s_load_refused(void)
{
    char path[1024];
    s_fmt(path, sizeof(path), "%s/tests/worker/nn-refused.txt", s_source_dir());
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (RF_SOURCE_DIR set?)", path);
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char name[128];
        if (sscanf(line, "%127s", name) == 1 && s_nrefused < 256) {
            s_fmt(s_refused[s_nrefused].name, sizeof(s_refused[0].name), "%s", name);
            s_refused[s_nrefused++].seen = false;
        }
    }
    fclose(f);
}

static refused_t *s_find_refused(const char *name)
{
    for (int i = 0; i < s_nrefused; i++)
        if (!strcmp(s_refused[i].name, name))
            return &s_refused[i];
    return NULL;
}

static uint8_t *s_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n > 0 ? (size_t)n : 0;
    return buf;
}

/* True when every node of the model is an op of the set (read independently of the executor). */
static bool s_in_set(const char *model_path)
{
    size_t len;
    uint8_t *buf = s_slurp(model_path, &len);
    if (!buf)
        return false;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, buf);
    free(buf);
    if (!m)
        return false;
    bool ok = m->graph && m->graph->n_node > 0;
    for (size_t i = 0; ok && i < m->graph->n_node; i++) {
        bool found = false;
        for (int k = 0; s_ops[k]; k++)
            if (!strcmp(s_ops[k], m->graph->node[i]->op_type))
                found = true;
        ok = found;
    }
    onnx__model_proto__free_unpacked(m, NULL);
    return ok;
}

static int s_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of dir whose names start with prefix; caller frees. */
static int s_list(const char *dir, const char *prefix, char **names, int max)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max)
        if (!strncmp(e->d_name, prefix, strlen(prefix)))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), s_cmp_names);
    return n;
}

static void s_free_list(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
}

typedef enum { R_PASS, R_REFUSED, R_FAIL } result_t;

/* Compares got with want; *worst gets the largest absolute error. */
static bool s_compare(const rf_nn_tensor_t *got, const rf_nn_tensor_t *want, bool abs_only,
                      double tol_abs, char *why, size_t size)
{
    if (got->dtype != want->dtype || got->ndim != want->ndim) {
        s_fmt(why, size, "output '%s': dtype/rank %d/%d, expected %d/%d", want->name, got->dtype,
              got->ndim, want->dtype, want->ndim);
        return false;
    }
    for (int i = 0; i < got->ndim; i++)
        if (got->dims[i] != want->dims[i]) {
            s_fmt(why, size, "output '%s': dim %d is %lld, expected %lld", want->name, i,
                  (long long)got->dims[i], (long long)want->dims[i]);
            return false;
        }
    int64_t n = rf_nn_tensor_count(want);
    for (int64_t i = 0; i < n; i++) {
        double g, w;
        switch (want->dtype) {
        case RF_NN_FLOAT:
            g = ((const float *)got->data)[i];
            w = ((const float *)want->data)[i];
            break;
        case RF_NN_DOUBLE:
            g = ((const double *)got->data)[i];
            w = ((const double *)want->data)[i];
            break;
        default: {
            size_t es = got->bytes / (size_t)(n ? n : 1);
            if (memcmp((const char *)got->data + (size_t)i * es,
                       (const char *)want->data + (size_t)i * es, es)) {
                s_fmt(why, size, "output '%s': element %lld differs (exact type)", want->name,
                      (long long)i);
                return false;
            }
            continue;
        }
        }
        if (isnan(w) && isnan(g))
            continue;
        double tol = abs_only ? tol_abs : 1e-7 + 1e-3 * fabs(w);
        if (!(fabs(g - w) <= tol)) {
            s_fmt(why, size, "output '%s': element %lld is %.9g, expected %.9g", want->name,
                  (long long)i, g, w);
            return false;
        }
    }
    return true;
}

/* Runs one case (every test_data_set_*). why gets the refusal or failure. */
static result_t s_run_case(const char *dir, bool fixture, char *why, size_t size)
{
    char path[2048];
    s_fmt(path, sizeof(path), "%s/model.onnx", dir);
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    if (rf_nn_model_load_file(path, &m, &err)) {
        s_fmt(why, size, "%s", err.msg);
        return err.msg[0] ? R_REFUSED : R_FAIL;
    }
    char *sets[64];
    int nsets = s_list(dir, "test_data_set_", sets, 64);
    result_t res = R_PASS;
    if (nsets <= 0) {
        s_fmt(why, size, "no test_data_set_* folder");
        res = R_FAIL;
    }
    for (int si = 0; si < nsets && res == R_PASS; si++) {
        rf_nn_tensor_t in[MAX_IO], out[MAX_IO], want[MAX_IO];
        memset(in, 0, sizeof(in));
        memset(out, 0, sizeof(out));
        memset(want, 0, sizeof(want));
        int nin = rf_nn_model_inputs(m), nout = rf_nn_model_outputs(m);
        rf_nn_plan_t *plan = NULL;
        if (nin > MAX_IO || nout > MAX_IO) {
            s_fmt(why, size, "too many inputs/outputs for the runner");
            res = R_FAIL;
            goto next;
        }
        for (int i = 0; i < nin; i++) {
            s_fmt(path, sizeof(path), "%s/%s/input_%d.pb", dir, sets[si], i);
            if (rf_nn_tensor_read(path, &in[i], &err)) {
                s_fmt(why, size, "%s", err.msg);
                res = R_FAIL;
                goto next;
            }
            /* ONNX's test files name tensors inconsistently; bind by position. */
            s_fmt(in[i].name, sizeof(in[i].name), "%s", rf_nn_model_input(m, i)->name);
        }
        for (int i = 0; i < nout; i++) {
            s_fmt(path, sizeof(path), "%s/%s/output_%d.pb", dir, sets[si], i);
            if (rf_nn_tensor_read(path, &want[i], &err)) {
                s_fmt(why, size, "%s", err.msg);
                res = R_FAIL;
                goto next;
            }
        }
        rf_nn_plan_options_t opt = {.device = RF_NN_CPU};
        if (rf_nn_plan_create(m, in, nin, &opt, &plan, &err)) {
            s_fmt(why, size, "%s", err.msg);
            res = err.msg[0] ? R_REFUSED : R_FAIL;
            goto next;
        }
        if (rf_nn_plan_run(plan, in, nin, out, nout, &err)) {
            s_fmt(why, size, "run: %s", err.msg);
            res = R_FAIL;
            goto next;
        }
        for (int i = 0; i < nout && res == R_PASS; i++)
            if (!s_compare(&out[i], &want[i], fixture, 1e-4, why, size))
                res = R_FAIL;
    next:
        rf_nn_plan_free(plan);
        for (int i = 0; i < MAX_IO; i++) {
            rf_nn_tensor_release(&in[i]);
            rf_nn_tensor_release(&out[i]);
            rf_nn_tensor_release(&want[i]);
        }
    }
    s_free_list(sets, nsets > 0 ? nsets : 0);
    rf_nn_model_free(m);
    return res;
}

/* Runs every case under root; key_prefix names them in the refused list ("" or "fixture:"). */
static int s_run_all(const char *root, const char *prefix, const char *key_prefix, bool fixture,
                     int *ran)
{
    char *names[MAX_CASES];
    int n = s_list(root, prefix, names, MAX_CASES);
    int bad = 0, pass = 0, refused = 0;
    *ran = 0;
    for (int i = 0; i < n; i++) {
        char dir[2048], model[2200], why[1100] = "", key[300];
        s_fmt(dir, sizeof(dir), "%s/%s", root, names[i]);
        s_fmt(model, sizeof(model), "%s/model.onnx", dir);
        struct stat st;
        if (stat(model, &st))
            continue;
        if (!fixture && !s_in_set(model))
            continue;
        s_fmt(key, sizeof(key), "%s%s", key_prefix, names[i]);
        (*ran)++;
        result_t r = s_run_case(dir, fixture, why, sizeof(why));
        refused_t *listed = s_find_refused(key);
        if (listed)
            listed->seen = true;
        if (r == R_PASS && !listed) {
            pass++;
        } else if (r == R_REFUSED && listed) {
            refused++;
            printf("refused (listed) %s: %s\n", key, why);
        } else if (r == R_PASS) {
            bad++;
            printf("FAIL %s: passes but is listed in nn-refused.txt (remove it there and in "
                   "docs/models.md)\n",
                   key);
        } else {
            bad++;
            printf("FAIL %s: %s: %s\n", key, r == R_REFUSED ? "refused" : "wrong result", why);
        }
    }
    printf("%s: %d cases, %d pass, %d refused as listed, %d failures\n", root, *ran, pass, refused,
           bad);
    s_free_list(names, n);
    return bad;
}

static void test_onnx_node_tests(void **state)
{
    (void)state;
    const char *root = getenv("RF_ONNX_NODE_TESTS");
    if (!root)
        root = NODE_DIR_DEFAULT;
    struct stat st;
    if (stat(root, &st)) {
        printf("%s missing (install libonnx-testdata): skipped\n", root);
        skip();
    }
    s_load_refused();
    int ran, ran_pt;
    int bad = s_run_all(root, "test_", "", false, &ran);
    /* The same package's small PyTorch-exported modules (opset 6..9), keyed "DIR/NAME". */
    static const char *const more[] = {"pytorch-converted", "pytorch-operator"};
    for (int i = 0; i < 2; i++) {
        char dir[1024], key[64];
        s_fmt(dir, sizeof(dir), "%s/../%s", root, more[i]);
        s_fmt(key, sizeof(key), "%s/", more[i]);
        if (!stat(dir, &st))
            bad += s_run_all(dir, "test_", key, false, &ran_pt);
    }
    /* Every listed node case must exist and be refused (the list stays honest). */
    for (int i = 0; i < s_nrefused; i++)
        if (!s_refused[i].seen && strncmp(s_refused[i].name, "fixture:", 8)) {
            printf("FAIL %s: listed in nn-refused.txt but no such case in the op set\n",
                   s_refused[i].name);
            bad++;
        }
    /* docs/models.md must list every refused case too. */
    char path[1024];
    s_fmt(path, sizeof(path), "%s/docs/models.md", s_source_dir());
    size_t len;
    char *doc = (char *)s_slurp(path, &len);
    assert_non_null(doc);
    doc = realloc(doc, len + 1);
    doc[len] = '\0';
    for (int i = 0; i < s_nrefused; i++)
        if (!strstr(doc, s_refused[i].name)) {
            printf("FAIL %s: refused but not named in docs/models.md\n", s_refused[i].name);
            bad++;
        }
    free(doc);
    assert_true(ran >= 170); /* the op set and its shape glue have 178 node tests in ONNX 1.12 */
    assert_int_equal(bad, 0);
}

static void test_project_fixtures(void **state)
{
    (void)state;
    char root[1024];
    s_fmt(root, sizeof(root), "%s/tests/fixtures/nn", s_source_dir());
    struct stat st;
    if (stat(root, &st)) {
        printf("%s does not exist yet: nothing to run\n", root);
        skip();
    }
    s_load_refused();
    int ran;
    int bad = s_run_all(root, "", "fixture:", true, &ran);
    assert_int_equal(bad, 0);
}

/* Pad's pads as a graph input fixes the output shape: its values are needed when the plan is
 * made, and a run with other values is refused rather than computed with stale shapes. */
static void test_shape_inputs_fixed_at_plan_time(void **state)
{
    (void)state;
    const char *root = getenv("RF_ONNX_NODE_TESTS");
    char dir[1024], path[1200];
    s_fmt(dir, sizeof(dir), "%s/test_constant_pad", root ? root : NODE_DIR_DEFAULT);
    struct stat st;
    if (stat(dir, &st))
        skip();
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    s_fmt(path, sizeof(path), "%s/model.onnx", dir);
    assert_int_equal(rf_nn_model_load_file(path, &m, &err), 0);
    assert_int_equal(rf_nn_model_inputs(m), 3); /* x, pads, value */
    rf_nn_tensor_t in[3];
    memset(in, 0, sizeof(in));
    for (int i = 0; i < 3; i++) {
        s_fmt(path, sizeof(path), "%s/test_data_set_0/input_%d.pb", dir, i);
        assert_int_equal(rf_nn_tensor_read(path, &in[i], &err), 0);
        s_fmt(in[i].name, sizeof(in[i].name), "%s", rf_nn_model_input(m, i)->name);
    }
    rf_nn_plan_options_t opt = {.device = RF_NN_CPU};
    rf_nn_plan_t *p = NULL;
    /* Shapes only: the pads are unknown, so the output shape is too. */
    rf_nn_tensor_t shapes[3];
    memcpy(shapes, in, sizeof(shapes));
    for (int i = 0; i < 3; i++)
        shapes[i].data = NULL;
    assert_int_equal(rf_nn_plan_create(m, shapes, 3, &opt, &p, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "must be known when the plan is made"));
    /* With values: the plan runs; other pads at run time are refused. */
    assert_int_equal(rf_nn_plan_create(m, in, 3, &opt, &p, &err), 0);
    rf_nn_tensor_t out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(rf_nn_plan_run(p, in, 3, &out, 1, &err), 0);
    ((int64_t *)in[1].data)[0] += 1;
    assert_int_equal(rf_nn_plan_run(p, in, 3, &out, 1, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "fixes shapes in this plan"));
    rf_nn_tensor_release(&out);
    for (int i = 0; i < 3; i++)
        rf_nn_tensor_release(&in[i]);
    rf_nn_plan_free(p);
    rf_nn_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_node_tests),
        cmocka_unit_test(test_project_fixtures),
        cmocka_unit_test(test_shape_inputs_fixed_at_plan_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
