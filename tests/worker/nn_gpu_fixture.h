/* nn_gpu_fixture.h - the GPU backend of the ONNX executor against its CPU reference, on every model
 * of tests/fixtures/nn: shared by test_nn_cudaemu.c (emulated device) and test_nn_gpu.c (a real
 * one).
 *
 * Per fixture, the input of test_data_set_0 goes through a CPU plan and through GPU plans in fp32
 * and fp16, three runs each (the second run captures a CUDA graph, the third replays it, where
 * the device has graphs); every run of a plan must give the same bits. fp32 must match the CPU
 * within max abs error 1e-4; fp16 must reach PSNR >= 45 dB, with the peak taken as the range of
 * the CPU output (max - min, 1 when the output is constant). A fixture the CPU refuses is skipped
 * (test_nn_conformance.c owns those); a fixture the GPU refuses fails.
 *
 * t_nn_residual_check builds a Conv -> PRelu -> Add(residual) model in memory: the GPU plan fuses
 * all three into one step (the CPU plan keeps the Add), with the same tolerances.
 */
#ifndef RF_TEST_NN_GPU_FIXTURE_H
#define RF_TEST_NN_GPU_FIXTURE_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn.h"
#include "onnx-subset.pb-c.h"

#define T_NN_MAX_IO 8
#define T_NN_PSNR_MIN 45.0
#define T_NN_FP32_MAX_ABS 1e-4

static int t_nn_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Max abs error and PSNR of got against ref (float tensors of the same count). */
static void t_nn_compare(const rf_nn_tensor_t *ref, const rf_nn_tensor_t *got, double *max_abs,
                         double *psnr)
{
    int64_t n = rf_nn_tensor_count(ref);
    const float *r = ref->data, *g = got->data;
    double lo = INFINITY, hi = -INFINITY, se = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = r[i] < lo ? r[i] : lo;
        hi = r[i] > hi ? r[i] : hi;
        double d = fabs((double)g[i] - (double)r[i]);
        if (!(d <= worst)) /* NaN counts as worst */
            worst = isnan(d) ? INFINITY : d;
        se += d * d;
    }
    double peak = n && hi > lo ? hi - lo : 1.0;
    *max_abs = worst;
    *psnr = !n || se == 0 ? INFINITY : 10.0 * log10(peak * peak / (se / (double)n));
    if (isnan(se))
        *psnr = -INFINITY;
}

/* Runs one plan three times on in; out gets the first run's outputs. Returns 0, or 1 with why. */
static int t_nn_run3(rf_nn_plan_t *plan, rf_nn_tensor_t *in, int nin, rf_nn_tensor_t *out, int nout,
                     char *why, size_t size)
{
    rf_err_t err = {0};
    for (int run = 0; run < 3; run++) {
        rf_nn_tensor_t o[T_NN_MAX_IO];
        memset(o, 0, sizeof(o));
        if (rf_nn_plan_run(plan, in, nin, run ? o : out, nout, &err)) {
            snprintf(why, size, "run %d: %s", run + 1, err.msg);
            return 1;
        }
        if (!run)
            continue;
        for (int k = 0; k < nout; k++) {
            bool same = o[k].bytes == out[k].bytes && !memcmp(o[k].data, out[k].data, o[k].bytes);
            rf_nn_tensor_release(&o[k]);
            if (!same) {
                snprintf(why, size, "run %d differs from run 1 (output %d)", run + 1, k);
                return 1;
            }
        }
    }
    return 0;
}

/* Returns how many fixtures failed; *ran counts those compared. *unavailable is set when the
 * GPU plan was refused with RF_EUNAVAIL for lack of a device (then nothing else is tried). */
static int t_nn_gpu_dir(const char *root, bool allow_refusal, int *ran, int *refused,
                        bool *unavailable);

static int t_nn_gpu_fixtures(const char *source_dir, int *ran, bool *unavailable)
{
    char root[1024];
    int refused;
    snprintf(root, sizeof(root), "%s/tests/fixtures/nn", source_dir);
    return t_nn_gpu_dir(root, false, ran, &refused, unavailable);
}

/* Every case folder under root (model.onnx, test_data_set_0/input_N.pb). allow_refusal: a GPU
 * plan refused with RF_EUNAVAIL for a step (integer tensors, ...) counts in *refused instead of
 * failing. */
static int t_nn_gpu_dir(const char *root, bool allow_refusal, int *ran, int *refused,
                        bool *unavailable)
{
    *refused = 0;
    *ran = 0;
    *unavailable = false;
    DIR *d = opendir(root);
    if (!d) {
        printf("FAIL cannot open %s\n", root);
        return 1;
    }
    char *names[2048];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 2048)
        if (e->d_name[0] != '.')
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof(char *), t_nn_cmp);
    int bad = 0;
    double worst_psnr = INFINITY, worst_abs = 0;
    for (int f = 0; f < nn && !*unavailable; f++) {
        char path[2048], why[1200] = "";
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s/model.onnx", root, names[f]);
        if (stat(path, &st))
            continue;
        rf_err_t err = {0};
        rf_nn_model_t *m = NULL;
        if (rf_nn_model_load_file(path, &m, &err))
            continue; /* the conformance test owns refusals */
        int nin = rf_nn_model_inputs(m), nout = rf_nn_model_outputs(m);
        rf_nn_tensor_t in[T_NN_MAX_IO], ref[T_NN_MAX_IO], got[2][T_NN_MAX_IO];
        memset(in, 0, sizeof(in));
        memset(ref, 0, sizeof(ref));
        memset(got, 0, sizeof(got));
        rf_nn_plan_t *cpu = NULL, *gpu[2] = {NULL, NULL};
        bool ok = nin <= T_NN_MAX_IO && nout <= T_NN_MAX_IO;
        for (int i = 0; ok && i < nin; i++) {
            snprintf(path, sizeof(path), "%s/%s/test_data_set_0/input_%d.pb", root, names[f], i);
            ok = !rf_nn_tensor_read(path, &in[i], &err);
            if (ok)
                snprintf(in[i].name, sizeof(in[i].name), "%s", rf_nn_model_input(m, i)->name);
        }
        rf_nn_plan_options_t copt = {.device = RF_NN_CPU};
        ok = ok && !rf_nn_plan_create(m, in, nin, &copt, &cpu, &err) &&
             !rf_nn_plan_run(cpu, in, nin, ref, nout, &err);
        if (!ok)
            goto next; /* not the GPU's business */
        (*ran)++;
        for (int h = 0; h < 2 && !why[0]; h++) {
            rf_nn_plan_options_t gopt = {.device = RF_NN_GPU, .fp16 = h == 1, .gpu_index = 0};
            int rc = rf_nn_plan_create(m, in, nin, &gopt, &gpu[h], &err);
            if (rc == RF_EUNAVAIL && strstr(err.msg, "device 0")) {
                printf("no device: %s\n", err.msg);
                *unavailable = true;
                goto next;
            }
            if (rc == RF_EUNAVAIL && allow_refusal) {
                (*refused)++;
                break;
            }
            if (rc) {
                snprintf(why, sizeof(why), "%s plan: %s", h ? "fp16" : "fp32", err.msg);
                break;
            }
            if (t_nn_run3(gpu[h], in, nin, got[h], nout, why, sizeof(why)))
                break;
            for (int k = 0; k < nout && !why[0]; k++) {
                if (ref[k].dtype != got[h][k].dtype ||
                    rf_nn_tensor_count(&ref[k]) != rf_nn_tensor_count(&got[h][k])) {
                    snprintf(why, sizeof(why), "output %d: type or shape differs", k);
                    break;
                }
                if (ref[k].dtype != RF_NN_FLOAT) { /* a folded constant: the same bytes */
                    if (ref[k].bytes != got[h][k].bytes ||
                        memcmp(ref[k].data, got[h][k].data, ref[k].bytes))
                        snprintf(why, sizeof(why), "output %d: constant differs", k);
                    continue;
                }
                double max_abs, psnr;
                t_nn_compare(&ref[k], &got[h][k], &max_abs, &psnr);
                if (h == 0) {
                    worst_abs = max_abs > worst_abs ? max_abs : worst_abs;
                    if (!(max_abs <= T_NN_FP32_MAX_ABS))
                        snprintf(why, sizeof(why), "fp32 output %d: max abs error %.3g > %.0e", k,
                                 max_abs, T_NN_FP32_MAX_ABS);
                } else {
                    worst_psnr = psnr < worst_psnr ? psnr : worst_psnr;
                    if (!(psnr >= T_NN_PSNR_MIN))
                        snprintf(why, sizeof(why), "fp16 output %d: PSNR %.2f dB < %.0f dB", k,
                                 psnr, T_NN_PSNR_MIN);
                }
            }
        }
        if (why[0]) {
            printf("FAIL %s: %s\n", names[f], why);
            bad++;
        }
    next:
        rf_nn_plan_free(cpu);
        for (int h = 0; h < 2; h++)
            rf_nn_plan_free(gpu[h]);
        for (int i = 0; i < T_NN_MAX_IO; i++) {
            rf_nn_tensor_release(&in[i]);
            rf_nn_tensor_release(&ref[i]);
            rf_nn_tensor_release(&got[0][i]);
            rf_nn_tensor_release(&got[1][i]);
        }
        rf_nn_model_free(m);
    }
    for (int f = 0; f < nn; f++)
        free(names[f]);
    printf("%s: %d cases on the GPU backend, %d refused there, %d failures; worst fp32 max abs "
           "error %.3g, worst fp16 PSNR %.2f dB\n",
           root, *ran, *refused, bad, worst_abs, worst_psnr);
    return bad;
}

/* X[1,8,9,11] -> Conv(W 8x8x3x3, B, pads 1) -> PRelu(slope [8,1,1]) -> Add(., X) -> Y: the GPU
 * plan runs it as one step (bias, PRelu and the residual in the convolution's epilogue), the CPU
 * plan as two (the Add stays), with the same result. residual_first puts X first in the Add. */
#define T_C 8
#define T_H 9
#define T_W 11
static void t_residual_model(bool residual_first, void **buf, size_t *len)
{
    static float w[T_C * T_C * 9], b[T_C], slope[T_C];
    static int64_t xd[] = {1, T_C, T_H, T_W}, wd[] = {T_C, T_C, 3, 3}, bd[] = {T_C},
                   sd[] = {T_C, 1, 1}, pads[] = {1, 1, 1, 1};
    for (int i = 0; i < T_C * T_C * 9; i++)
        w[i] = (float)((i * 37) % 19 - 9) / 40.0f;
    for (int i = 0; i < T_C; i++) {
        b[i] = (float)(i - 3) / 8.0f;
        slope[i] = 0.05f * (float)(i + 1);
    }
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
    Onnx__ValueInfoProto vi[2], *in_ptr[1] = {&vi[0]}, *out_ptr[1] = {&vi[1]};
    Onnx__TypeProto ty[2];
    Onnx__TypeProto__Tensor tt[2];
    Onnx__TensorShapeProto sh[2];
    Onnx__TensorShapeProto__Dimension dim[2][4], *dimp[2][4];
    Onnx__TensorProto init[3], *initp[3] = {&init[0], &init[1], &init[2]};
    Onnx__NodeProto node[3], *nodep[3] = {&node[0], &node[1], &node[2]};
    Onnx__AttributeProto pad_attr, *attrp[1] = {&pad_attr};
    onnx__model_proto__init(&model);
    onnx__graph_proto__init(&graph);
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 13;
    model.has_ir_version = 1;
    model.ir_version = 7;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.graph = &graph;
    graph.name = "residual";
    const char *vnames[2] = {"X", "Y"};
    for (int k = 0; k < 2; k++) {
        onnx__value_info_proto__init(&vi[k]);
        onnx__type_proto__init(&ty[k]);
        onnx__type_proto__tensor__init(&tt[k]);
        onnx__tensor_shape_proto__init(&sh[k]);
        vi[k].name = (char *)vnames[k];
        vi[k].type = &ty[k];
        ty[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        ty[k].tensor_type = &tt[k];
        tt[k].has_elem_type = 1;
        tt[k].elem_type = 1;
        tt[k].shape = &sh[k];
        for (int i = 0; i < 4; i++) {
            onnx__tensor_shape_proto__dimension__init(&dim[k][i]);
            dim[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[k][i].dim_value = xd[i];
            dimp[k][i] = &dim[k][i];
        }
        sh[k].n_dim = 4;
        sh[k].dim = dimp[k];
    }
    graph.n_input = 1;
    graph.input = in_ptr;
    graph.n_output = 1;
    graph.output = out_ptr;
    const char *inames[3] = {"W", "B", "S"};
    float *idata[3] = {w, b, slope};
    int64_t *idims[3] = {wd, bd, sd};
    size_t ind[3] = {4, 1, 3}, icount[3] = {T_C * T_C * 9, T_C, T_C};
    for (int k = 0; k < 3; k++) {
        onnx__tensor_proto__init(&init[k]);
        init[k].name = (char *)inames[k];
        init[k].has_data_type = 1;
        init[k].data_type = 1;
        init[k].n_dims = ind[k];
        init[k].dims = idims[k];
        init[k].n_float_data = icount[k];
        init[k].float_data = idata[k];
    }
    graph.n_initializer = 3;
    graph.initializer = initp;
    static char *conv_in[] = {"X", "W", "B"}, *conv_out[] = {"C"}, *prelu_in[] = {"C", "S"},
                *prelu_out[] = {"D"}, *add_in[2], *add_out[] = {"Y"};
    add_in[0] = residual_first ? "X" : "D";
    add_in[1] = residual_first ? "D" : "X";
    const char *ops[3] = {"Conv", "PRelu", "Add"};
    char **ins[3] = {conv_in, prelu_in, add_in}, **outs[3] = {conv_out, prelu_out, add_out};
    size_t nins[3] = {3, 2, 2};
    for (int k = 0; k < 3; k++) {
        onnx__node_proto__init(&node[k]);
        node[k].op_type = (char *)ops[k];
        node[k].name = (char *)ops[k];
        node[k].n_input = nins[k];
        node[k].input = ins[k];
        node[k].n_output = 1;
        node[k].output = outs[k];
    }
    onnx__attribute_proto__init(&pad_attr);
    pad_attr.name = "pads";
    pad_attr.has_type = 1;
    pad_attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    pad_attr.n_ints = 4;
    pad_attr.ints = pads;
    node[0].n_attribute = 1;
    node[0].attribute = attrp;
    graph.n_node = 3;
    graph.node = nodep;
    *len = onnx__model_proto__get_packed_size(&model);
    *buf = malloc(*len);
    assert_non_null(*buf);
    onnx__model_proto__pack(&model, *buf);
}

/* Runs the model both ways round; *unavailable when there is no device (nothing checked). */
static void t_nn_residual_check(bool *unavailable)
{
    *unavailable = false;
    for (int order = 0; order < 2; order++) {
        void *buf;
        size_t len;
        t_residual_model(order == 1, &buf, &len);
        rf_err_t err = {0};
        rf_nn_model_t *m = NULL;
        assert_int_equal(rf_nn_model_load_buffer(buf, len, &m, &err), 0);
        free(buf);
        rf_nn_tensor_t in = *rf_nn_model_input(m, 0);
        in.bytes = (size_t)rf_nn_tensor_count(&in) * sizeof(float);
        in.data = malloc(in.bytes);
        assert_non_null(in.data);
        for (int64_t i = 0; i < rf_nn_tensor_count(&in); i++)
            ((float *)in.data)[i] = (float)((i * 7919) % 101) / 50.0f - 1.0f;
        rf_nn_tensor_t ref = {0}, got[2];
        memset(got, 0, sizeof(got));
        rf_nn_plan_t *cpu = NULL, *gpu[2] = {NULL, NULL};
        rf_nn_plan_options_t copt = {.device = RF_NN_CPU};
        assert_int_equal(rf_nn_plan_create(m, &in, 1, &copt, &cpu, &err), 0);
        assert_int_equal(rf_nn_plan_run(cpu, &in, 1, &ref, 1, &err), 0);
        int steps;
        rf_nn_plan_stats(cpu, &steps, NULL);
        assert_int_equal(steps, 2); /* Conv+PRelu, Add */
        for (int h = 0; h < 2; h++) {
            rf_nn_plan_options_t gopt = {.device = RF_NN_GPU, .fp16 = h == 1};
            int rc = rf_nn_plan_create(m, &in, 1, &gopt, &gpu[h], &err);
            if (rc == RF_EUNAVAIL && strstr(err.msg, "device 0")) {
                *unavailable = true;
                break;
            }
            if (rc)
                fail_msg("%s", err.msg);
            rf_nn_plan_stats(gpu[h], &steps, NULL);
            assert_int_equal(steps, 1); /* Conv+PRelu+Add */
            assert_int_equal(rf_nn_plan_run(gpu[h], &in, 1, &got[h], 1, &err), 0);
            double max_abs, psnr;
            t_nn_compare(&ref, &got[h], &max_abs, &psnr);
            printf("residual (order %d) %s: max abs %.3g, PSNR %.1f dB\n", order,
                   h ? "fp16" : "fp32", max_abs, psnr);
            if (h == 0)
                assert_true(max_abs <= T_NN_FP32_MAX_ABS);
            else
                assert_true(psnr >= T_NN_PSNR_MIN);
            rf_nn_plan_free(gpu[h]);
            rf_nn_tensor_release(&got[h]);
        }
        rf_nn_plan_free(cpu);
        rf_nn_tensor_release(&ref);
        rf_nn_tensor_release(&in);
        rf_nn_model_free(m);
    }
}

#endif
