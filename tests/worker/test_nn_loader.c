/* test_nn_loader.c - worker/nn's loader and compile step on models built here with the
 * generated protobuf-c code (proto/onnx-subset.proto):
 *   - a small valid model (Conv with pads, a Constant node, BatchNormalization, Relu; weights in
 *     float_data and raw_data) computes what a naive convolution written here computes, with
 *     BatchNorm and Relu fused into the Conv (one step left) and without fusion when the Conv's
 *     output is also a graph output;
 *   - hostile mutations of it (truncated at every length, huge and negative dims, a cycle, wrong
 *     types, external data, sparse initializers, unknown ops, attributes and domains, unsupported
 *     op versions, a subgraph attribute) are refused with a message naming the problem;
 *   - TensorProto files round-trip; the GPU device is RF_EUNAVAIL.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"
#include "nn.h"
#include "onnx-subset.pb-c.h"

/* ---- a model builder over static storage -------------------------------------------------- */

#define B_MAX 8

typedef struct b_model {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__NodeProto nodes[B_MAX], *node_ptrs[B_MAX];
    char *node_in[B_MAX][6], *node_out[B_MAX][2];
    Onnx__AttributeProto attrs[B_MAX][4], *attr_ptrs[B_MAX][4];
    Onnx__TensorProto inits[B_MAX], *init_ptrs[B_MAX];
    Onnx__SparseTensorProto sparse, *sparse_ptrs[1];
    Onnx__StringStringEntryProto ext, *ext_ptrs[1];
    Onnx__ValueInfoProto vis[4], *in_ptrs[2], *out_ptrs[2];
    Onnx__TypeProto types[4];
    Onnx__TypeProto__Tensor tts[4];
    Onnx__TensorShapeProto shapes[4];
    Onnx__TensorShapeProto__Dimension dims[4][4], *dim_ptrs[4][4];
    Onnx__TensorProto attr_tensor;
    Onnx__GraphProto subgraph;
    int64_t tdims[B_MAX][4], pads[4], cdims[1];
    float w[9], scale[1], bnb[1], mean[1], var[1], cval[1];
    float b_raw[1];
} b_model_t;

static void b_value_info(b_model_t *b, int k, const char *name, const int64_t *d, int nd)
{
    onnx__value_info_proto__init(&b->vis[k]);
    onnx__type_proto__init(&b->types[k]);
    onnx__type_proto__tensor__init(&b->tts[k]);
    onnx__tensor_shape_proto__init(&b->shapes[k]);
    b->vis[k].name = (char *)name;
    b->vis[k].type = &b->types[k];
    b->types[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    b->types[k].tensor_type = &b->tts[k];
    b->tts[k].has_elem_type = 1;
    b->tts[k].elem_type = 1;
    b->tts[k].shape = &b->shapes[k];
    for (int i = 0; i < nd; i++) {
        onnx__tensor_shape_proto__dimension__init(&b->dims[k][i]);
        b->dims[k][i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        b->dims[k][i].dim_value = d[i];
        b->dim_ptrs[k][i] = &b->dims[k][i];
    }
    b->shapes[k].n_dim = (size_t)nd;
    b->shapes[k].dim = b->dim_ptrs[k];
}

static Onnx__TensorProto *b_init(b_model_t *b, int k, const char *name, float *data, int n,
                                 const int64_t *d, int nd)
{
    Onnx__TensorProto *t = &b->inits[k];
    onnx__tensor_proto__init(t);
    t->name = (char *)name;
    t->has_data_type = 1;
    t->data_type = 1;
    for (int i = 0; i < nd; i++)
        b->tdims[k][i] = d[i];
    t->n_dims = (size_t)nd;
    t->dims = b->tdims[k];
    t->n_float_data = (size_t)n;
    t->float_data = data;
    b->init_ptrs[k] = t;
    return t;
}

static Onnx__NodeProto *b_node(b_model_t *b, int k, const char *op, const char *name,
                               const char *const *in, int nin, const char *out)
{
    Onnx__NodeProto *n = &b->nodes[k];
    onnx__node_proto__init(n);
    n->op_type = (char *)op;
    n->name = (char *)name;
    for (int i = 0; i < nin; i++)
        b->node_in[k][i] = (char *)in[i];
    n->n_input = (size_t)nin;
    n->input = b->node_in[k];
    b->node_out[k][0] = (char *)out;
    n->n_output = 1;
    n->output = b->node_out[k];
    n->attribute = b->attr_ptrs[k];
    b->node_ptrs[k] = n;
    return n;
}

static Onnx__AttributeProto *b_attr(b_model_t *b, int node, const char *name, int type)
{
    Onnx__NodeProto *n = &b->nodes[node];
    Onnx__AttributeProto *a = &b->attrs[node][n->n_attribute];
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = (Onnx__AttributeProto__AttributeType)type;
    b->attr_ptrs[node][n->n_attribute++] = a;
    return a;
}

/* X[1,1,4,4] -> Conv(W 3x3, B, pads 1) -> C -> BatchNormalization(scale from a Constant node,
 * bias, mean, var) -> D -> Relu -> Y. */
static void b_base(b_model_t *b)
{
    memset(b, 0, sizeof(*b));
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = 13;
    b->opsets[0] = &b->opset;
    b->model.has_ir_version = 1;
    b->model.ir_version = 7;
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    b->graph.name = "test";
    static const int64_t xd[] = {1, 1, 4, 4}, wd[] = {1, 1, 3, 3}, one[] = {1};
    b_value_info(b, 0, "X", xd, 4);
    b_value_info(b, 1, "Y", xd, 4);
    b->in_ptrs[0] = &b->vis[0];
    b->out_ptrs[0] = &b->vis[1];
    b->graph.n_input = 1;
    b->graph.input = b->in_ptrs;
    b->graph.n_output = 1;
    b->graph.output = b->out_ptrs;
    for (int i = 0; i < 9; i++)
        b->w[i] = (float)(i % 3) - 0.5f * (float)(i / 3); /* rows: 0 1 2, -.5 .5 1.5, -1 0 1 */
    b->b_raw[0] = 0.25f;
    b->bnb[0] = -0.5f;
    b->mean[0] = 0.75f;
    b->var[0] = 3.0f;
    b->cval[0] = 2.0f;
    b_init(b, 0, "W", b->w, 9, wd, 4);
    Onnx__TensorProto *bias = b_init(b, 1, "B", NULL, 0, one, 1);
    bias->has_raw_data = 1; /* the bias as raw_data, the rest as float_data */
    bias->raw_data.data = (uint8_t *)b->b_raw;
    bias->raw_data.len = sizeof(float);
    b_init(b, 2, "bn_bias", b->bnb, 1, one, 1);
    b_init(b, 3, "bn_mean", b->mean, 1, one, 1);
    b_init(b, 4, "bn_var", b->var, 1, one, 1);
    b->graph.n_initializer = 5;
    b->graph.initializer = b->init_ptrs;
    /* The BatchNorm scale comes from a Constant node. */
    static const char *const none[] = {NULL};
    b_node(b, 0, "Constant", "scale_const", none, 0, "bn_scale");
    Onnx__AttributeProto *v = b_attr(b, 0, "value", 4);
    onnx__tensor_proto__init(&b->attr_tensor);
    b->attr_tensor.has_data_type = 1;
    b->attr_tensor.data_type = 1;
    b->cdims[0] = 1;
    b->attr_tensor.n_dims = 1;
    b->attr_tensor.dims = b->cdims;
    b->attr_tensor.n_float_data = 1;
    b->attr_tensor.float_data = b->cval;
    v->t = &b->attr_tensor;
    static const char *const conv_in[] = {"X", "W", "B"};
    b_node(b, 1, "Conv", "conv1", conv_in, 3, "C");
    Onnx__AttributeProto *pads = b_attr(b, 1, "pads", 7);
    for (int i = 0; i < 4; i++)
        b->pads[i] = 1;
    pads->n_ints = 4;
    pads->ints = b->pads;
    static const char *const bn_in[] = {"C", "bn_scale", "bn_bias", "bn_mean", "bn_var"};
    b_node(b, 2, "BatchNormalization", "bn1", bn_in, 5, "D");
    static const char *const relu_in[] = {"D"};
    b_node(b, 3, "Relu", "relu1", relu_in, 1, "Y");
    b->graph.n_node = 4;
    b->graph.node = b->node_ptrs;
}

static uint8_t *b_pack(b_model_t *b, size_t *len)
{
    *len = onnx__model_proto__get_packed_size(&b->model);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    onnx__model_proto__pack(&b->model, buf);
    return buf;
}

/* Loads b; returns the rc and leaves the message in err. */
static int b_load(b_model_t *b, rf_err_t *err)
{
    size_t len;
    uint8_t *buf = b_pack(b, &len);
    rf_nn_model_t *m = NULL;
    rf_err_clear(err);
    int rc = rf_nn_model_load_buffer(buf, len, &m, err);
    free(buf);
    rf_nn_model_free(m);
    return rc;
}

static void expect_refused(b_model_t *b, const char *text)
{
    rf_err_t err = {0};
    int rc = b_load(b, &err);
    if (rc == 0 || !strstr(err.msg, text))
        fail_msg("expected a refusal naming '%s', got rc %d: '%s'", text, rc, err.msg);
    assert_true(rc < 0);
}

/* Loads b, which must load. */
static rf_nn_model_t *t_load(b_model_t *b)
{
    size_t len;
    uint8_t *buf = b_pack(b, &len);
    rf_nn_model_t *m = NULL;
    rf_err_t err = {0};
    if (rf_nn_model_load_buffer(buf, len, &m, &err))
        fail_msg("load: %s", err.msg);
    free(buf);
    return m;
}

/* The graph input X: 1x1x4x4 floats from x. */
static rf_nn_tensor_t t_input_x(float x[16])
{
    rf_nn_tensor_t in = {.name = "X",
                         .dtype = RF_NN_FLOAT,
                         .ndim = 4,
                         .dims = {1, 1, 4, 4},
                         .data = x,
                         .bytes = 16 * sizeof(float)};
    return in;
}

/* A CPU plan of m for the one input in, which must be made. */
static rf_nn_plan_t *t_plan_cpu(rf_nn_model_t *m, const rf_nn_tensor_t *in)
{
    rf_nn_plan_options_t opt = {.device = RF_NN_CPU};
    rf_nn_plan_t *p = NULL;
    rf_err_t err = {0};
    if (rf_nn_plan_create(m, in, 1, &opt, &p, &err))
        fail_msg("plan: %s", err.msg);
    return p;
}

/* Makes the Conv's output C a graph output too (so it cannot be fused away). */
static void t_conv_output_too(b_model_t *b)
{
    static const int64_t xd[] = {1, 1, 4, 4};
    b_value_info(b, 2, "C", xd, 4);
    b->out_ptrs[1] = &b->vis[2];
    b->graph.n_output = 2;
}

/* ---- reference computation, written here ---------------------------------------------------- */

static void reference(const float *x, const b_model_t *b, float *y)
{
    float a = b->cval[0] / sqrtf(b->var[0] + 1e-5f);
    for (int oh = 0; oh < 4; oh++)
        for (int ow = 0; ow < 4; ow++) {
            double acc = b->b_raw[0];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    int ih = oh - 1 + kh, iw = ow - 1 + kw;
                    if (ih >= 0 && ih < 4 && iw >= 0 && iw < 4)
                        acc += (double)x[ih * 4 + iw] * b->w[kh * 3 + kw];
                }
            float v = ((float)acc - b->mean[0]) * a + b->bnb[0];
            y[oh * 4 + ow] = v > 0 ? v : 0;
        }
}

static void run_and_check(b_model_t *b, int want_steps, int noutputs)
{
    size_t len;
    uint8_t *buf = b_pack(b, &len);
    rf_nn_model_t *m = NULL;
    rf_err_t err = {0};
    int rc = rf_nn_model_load_buffer(buf, len, &m, &err);
    if (rc)
        fail_msg("load: %s", err.msg);
    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256(buf, len, digest);
    assert_string_equal(rf_nn_model_sha256(m), rf_hex(digest, sizeof(digest), hex));
    free(buf);
    assert_int_equal(rf_nn_model_inputs(m), 1);
    assert_int_equal(rf_nn_model_outputs(m), noutputs);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)((i * 7) % 11) - 4.0f;
    rf_nn_tensor_t in = t_input_x(x);
    rf_nn_plan_t *p = t_plan_cpu(m, &in);
    int steps;
    size_t arena;
    rf_nn_plan_stats(p, &steps, &arena);
    assert_int_equal(steps, want_steps);
    assert_true(arena >= 2 * 16 * sizeof(float)); /* at least X and Y */
    rf_nn_tensor_t out[2];
    memset(out, 0, sizeof(out));
    /* A plan runs again on other values: X's data given at plan time does not pin it (only an
     * input that fixes shapes is pinned). */
    for (int round = 0; round < 2; round++) {
        if (round)
            for (int i = 0; i < 16; i++)
                x[i] = 3.0f - 0.5f * (float)i;
        rc = rf_nn_plan_run(p, &in, 1, out, noutputs, &err);
        if (rc)
            fail_msg("run: %s", err.msg);
        float want[16];
        reference(x, b, want);
        assert_string_equal(out[0].name, "Y");
        assert_int_equal(out[0].ndim, 4);
        for (int i = 0; i < 16; i++)
            if (fabsf(((float *)out[0].data)[i] - want[i]) > 1e-5f)
                fail_msg("Y[%d] = %g, expected %g", i, ((float *)out[0].data)[i], want[i]);
    }
    rf_nn_tensor_release(&out[0]);
    rf_nn_tensor_release(&out[1]);
    rf_nn_plan_free(p);
    /* The GPU device is not in this build: a clear RF_EUNAVAIL. */
    rf_nn_plan_options_t opt = {.device = RF_NN_GPU};
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &opt, &p, &err), RF_EUNAVAIL);
    assert_non_null(strstr(err.msg, "device gpu"));
    /* Wrong input shape: named. */
    opt.device = RF_NN_CPU;
    in.dims[3] = 5;
    assert_int_equal(rf_nn_plan_create(m, &in, 1, &opt, &p, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "input 'X': dim 3 is 5"));
    rf_nn_model_free(m);
}

static void test_fused_model_computes_reference(void **state)
{
    (void)state;
    b_model_t *b = malloc(sizeof(*b));
    b_base(b);
    run_and_check(b, 1, 1); /* Constant folded; BatchNorm and Relu fused into the Conv */
    free(b);
}

static void test_unfused_when_conv_output_is_graph_output(void **state)
{
    (void)state;
    b_model_t *b = malloc(sizeof(*b));
    b_base(b);
    t_conv_output_too(b);
    run_and_check(b, 3, 2); /* Conv, BatchNormalization, Relu each run */
    free(b);
}

/* Runs b on a fixed input; y gets output 0 (16 floats), *steps the plan's step count. */
static void run_plan(b_model_t *b, int noutputs, float *y, int *steps)
{
    rf_nn_model_t *m = t_load(b);
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)((i * 5) % 9) - 4.5f;
    rf_nn_tensor_t in = t_input_x(x);
    rf_nn_plan_t *p = t_plan_cpu(m, &in);
    rf_nn_plan_stats(p, steps, NULL);
    rf_err_t err = {0};
    rf_nn_tensor_t out[2];
    memset(out, 0, sizeof(out));
    if (rf_nn_plan_run(p, &in, 1, out, noutputs, &err))
        fail_msg("run: %s", err.msg);
    assert_int_equal(rf_nn_tensor_count(&out[0]), 16);
    memcpy(y, out[0].data, 16 * sizeof(float));
    rf_nn_tensor_release(&out[0]);
    rf_nn_tensor_release(&out[1]);
    rf_nn_plan_free(p);
    rf_nn_model_free(m);
}

/* Every activation fused into a Conv or ConvTranspose epilogue computes what the separate op
 * computes (the separate ops are checked against ONNX's node tests), and so does a convolution
 * whose bias is dropped before an InstanceNormalization. The op replaces the BatchNorm node:
 * X -> Conv|ConvTranspose (bias 0.25) -> C -> op -> Y. */
static void test_epilogue_fusion_matches_separate_ops(void **state)
{
    (void)state;
    static const struct {
        const char *conv, *act;
        int steps_fused; /* InstanceNormalization is not fused: the conv drops its bias instead */
    } cases[] = {
        {"Conv", "Relu", 1},
        {"Conv", "LeakyRelu", 1},
        {"Conv", "Sigmoid", 1},
        {"Conv", "Tanh", 1},
        {"Conv", "Clip", 1},
        {"Conv", "PRelu", 1},
        {"ConvTranspose", "Relu", 1},
        {"ConvTranspose", "PRelu", 1},
        {"ConvTranspose", "Clip", 1},
        {"Conv", "InstanceNormalization", 2},
        {"ConvTranspose", "InstanceNormalization", 2},
    };
    static float in_scale[1] = {1.5f}, in_bias[1] = {-0.25f};
    static float lo[1] = {-0.5f}, hi[1] = {1.5f}, slope[1] = {0.3f};
    static const int64_t slope_dims[] = {1, 1, 1};
    b_model_t *b = malloc(sizeof(*b));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        float fused[16], separate[16];
        int steps_fused, steps_separate;
        for (int variant = 0; variant < 2; variant++) {
            b_base(b);
            b->nodes[1].op_type = (char *)cases[i].conv;
            static const char *act_in[] = {"C", NULL, NULL};
            int nin = 1;
            if (!strcmp(cases[i].act, "Clip")) {
                b_init(b, 5, "lo", lo, 1, NULL, 0);
                b_init(b, 6, "hi", hi, 1, NULL, 0);
                b->graph.n_initializer = 7;
                act_in[1] = "lo";
                act_in[2] = "hi";
                nin = 3;
            } else if (!strcmp(cases[i].act, "InstanceNormalization")) {
                static const int64_t one[] = {1};
                b_init(b, 5, "in_scale", in_scale, 1, one, 1);
                b_init(b, 6, "in_bias", in_bias, 1, one, 1);
                b->graph.n_initializer = 7;
                act_in[1] = "in_scale";
                act_in[2] = "in_bias";
                nin = 3;
            } else if (!strcmp(cases[i].act, "PRelu")) {
                b_init(b, 5, "slope", slope, 1, slope_dims, 3);
                b->graph.n_initializer = 6;
                act_in[1] = "slope";
                nin = 2;
            }
            b_node(b, 2, cases[i].act, "act", act_in, nin, "Y");
            if (!strcmp(cases[i].act, "LeakyRelu")) {
                Onnx__AttributeProto *a = b_attr(b, 2, "alpha", 1);
                a->has_f = 1;
                a->f = 0.2f;
            }
            b->graph.n_node = 3;
            if (variant == 1) /* C is also a graph output: no fusion */
                t_conv_output_too(b);
            run_plan(b, variant + 1, variant ? separate : fused,
                     variant ? &steps_separate : &steps_fused);
        }
        assert_int_equal(steps_fused, cases[i].steps_fused);
        assert_int_equal(steps_separate, 2);
        for (int k = 0; k < 16; k++)
            if (fabsf(fused[k] - separate[k]) > 1e-5f)
                fail_msg("%s+%s: Y[%d] fused %g, separate %g", cases[i].conv, cases[i].act, k,
                         fused[k], separate[k]);
    }
    free(b);
}

/* Pad in its two other forms: version 2 (pads, mode, value attributes; opset 10) and version 18
 * (an axes input; opset 18), neither covered by ONNX 1.12's node tests. Expected values by hand:
 * reflect along W by (1, 2) maps columns [1, 0,1,2,3, 2,1]; edge along H by (2, 0) repeats row 0.
 */
static void test_pad_versions(void **state)
{
    (void)state;
    b_model_t *b = malloc(sizeof(*b));
    float x[16];
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i * i % 13);
    static int64_t pads18[2] = {1, 2}, axes18[1] = {-1};
    static const int64_t two[] = {2}, one[] = {1};
    for (int version = 0; version < 2; version++) {
        b_base(b);
        static const int64_t yd18[] = {1, 1, 4, 7}, yd2[] = {1, 1, 6, 4};
        b_value_info(b, 1, "Y", version ? yd18 : yd2, 4);
        if (version) {
            b->opset.version = 18;
            Onnx__TensorProto *p = b_init(b, 0, "pads", NULL, 0, two, 1);
            p->data_type = 7;
            p->n_int64_data = 2;
            p->int64_data = pads18;
            Onnx__TensorProto *a = b_init(b, 1, "axes", NULL, 0, one, 1);
            a->data_type = 7;
            a->n_int64_data = 1;
            a->int64_data = axes18;
            b->graph.n_initializer = 2;
            static const char *const in[] = {"X", "pads", "", "axes"};
            b_node(b, 0, "Pad", "pad18", in, 4, "Y");
            Onnx__AttributeProto *mode = b_attr(b, 0, "mode", 3);
            mode->has_s = 1;
            mode->s.data = (uint8_t *)"reflect";
            mode->s.len = 7;
        } else {
            b->opset.version = 10;
            b->graph.n_initializer = 0;
            static const char *const in[] = {"X"};
            b_node(b, 0, "Pad", "pad2", in, 1, "Y");
            static int64_t pads2[8] = {0, 0, 2, 0, 0, 0, 0, 0};
            Onnx__AttributeProto *p = b_attr(b, 0, "pads", 7);
            p->n_ints = 8;
            p->ints = pads2;
            Onnx__AttributeProto *mode = b_attr(b, 0, "mode", 3);
            mode->has_s = 1;
            mode->s.data = (uint8_t *)"edge";
            mode->s.len = 4;
        }
        b->graph.n_node = 1;
        rf_nn_model_t *m = t_load(b);
        rf_nn_tensor_t in = t_input_x(x);
        rf_nn_plan_t *p = t_plan_cpu(m, &in);
        rf_err_t err = {0};
        rf_nn_tensor_t out;
        memset(&out, 0, sizeof(out));
        if (rf_nn_plan_run(p, &in, 1, &out, 1, &err))
            fail_msg("run: %s", err.msg);
        const float *y = out.data;
        if (version) {
            static const int cols[7] = {1, 0, 1, 2, 3, 2, 1};
            assert_int_equal(out.dims[3], 7);
            for (int r = 0; r < 4; r++)
                for (int c = 0; c < 7; c++)
                    assert_true(y[r * 7 + c] == x[r * 4 + cols[c]]);
        } else {
            assert_int_equal(out.dims[2], 6);
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 4; c++)
                    assert_true(y[r * 4 + c] == x[(r < 2 ? 0 : r - 2) * 4 + c]);
        }
        rf_nn_tensor_release(&out);
        rf_nn_plan_free(p);
        rf_nn_model_free(m);
    }
    free(b);
}

static void test_hostile_models_refused(void **state)
{
    (void)state;
    b_model_t *b = malloc(sizeof(*b));
    rf_err_t err = {0};

    /* Truncated at every length: never a crash; refused with a message or a smaller valid
     * protobuf that the graph checks then refuse. Cut in half: a parse failure. */
    b_base(b);
    size_t len;
    uint8_t *buf = b_pack(b, &len);
    for (size_t cut = 0; cut < len; cut++) {
        rf_nn_model_t *m = NULL;
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        rf_err_clear(&err);
        int rc = rf_nn_model_load_buffer(copy, cut, &m, &err);
        free(copy);
        if (rc == 0)
            fail_msg("a model cut at %zu of %zu bytes was accepted", cut, len);
        assert_true(err.msg[0] != '\0');
    }
    rf_nn_model_t *m = NULL;
    assert_int_equal(rf_nn_model_load_buffer(buf, len / 2, &m, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "protobuf parse failed"));
    free(buf);

    b_base(b);
    b->tdims[0][3] = (int64_t)1 << 40;
    expect_refused(b, "initializer 'W': shape too large");
    b_base(b);
    b->tdims[0][2] = -3;
    expect_refused(b, "initializer 'W': dim 2 is negative");
    b_base(b);
    b->dims[0][2].dim_value = (int64_t)1 << 40;
    expect_refused(b, "graph input 'X': dim 2 = 1099511627776 is out of range");
    b_base(b);
    b->inits[1].raw_data.len = 2;
    expect_refused(b, "initializer 'B': shape has 1 elements (4 bytes) but raw_data holds 2 bytes");
    b_base(b);
    b->inits[0].n_float_data = 8;
    expect_refused(b, "initializer 'W': shape has 9 elements but float_data holds 8");

    /* A cycle: the Conv reads the Relu's output. */
    b_base(b);
    b->node_in[1][0] = "Y";
    expect_refused(b, "the graph has a cycle");
    b_base(b);
    b->node_in[1][0] = "nope";
    expect_refused(b, "node 1 'conv1' (Conv): input 'nope' is not a graph input");
    b_base(b);
    b->node_out[3][0] = "C";
    expect_refused(b, "node 3 'relu1' (Relu): output 'C' is already defined");

    /* Wrong types. */
    b_base(b);
    static int64_t wi[9] = {0};
    b->inits[0].data_type = 7;
    b->inits[0].n_float_data = 0;
    b->inits[0].n_int64_data = 9;
    b->inits[0].int64_data = wi;
    expect_refused(b, "node 1 'conv1' (Conv): input 1 (W, 'W') must be float, got int64");
    b_base(b);
    b->tts[0].elem_type = 16;
    expect_refused(b, "graph input 'X': element type 16 (bfloat16) is not supported");
    b_base(b);
    b->types[0].value_case = ONNX__TYPE_PROTO__VALUE__NOT_SET;
    expect_refused(b, "graph input 'X': not a tensor");

    /* External data and sparse tensors. */
    b_base(b);
    onnx__string_string_entry_proto__init(&b->ext);
    b->ext.key = "location";
    b->ext.value = "weights.bin";
    b->ext_ptrs[0] = &b->ext;
    b->inits[0].n_external_data = 1;
    b->inits[0].external_data = b->ext_ptrs;
    b->inits[0].has_data_location = 1;
    b->inits[0].data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    b->inits[0].n_float_data = 0;
    expect_refused(b, "initializer 'W': tensor data stored in an external file is not supported");
    b_base(b);
    onnx__sparse_tensor_proto__init(&b->sparse);
    b->sparse.values = &b->inits[0];
    b->sparse_ptrs[0] = &b->sparse;
    b->graph.n_sparse_initializer = 1;
    b->graph.sparse_initializer = b->sparse_ptrs;
    expect_refused(b, "sparse initializers (sparse tensors are not supported)");

    /* Ops, attributes, domains, versions. */
    b_base(b);
    b->nodes[3].op_type = "Swish";
    expect_refused(b, "node 3 'relu1': op 'Swish' is not supported");
    b_base(b);
    b->nodes[3].domain = "com.microsoft";
    expect_refused(b, "op domain 'com.microsoft' is not supported");
    b_base(b);
    Onnx__AttributeProto *g = b_attr(b, 1, "group", 2);
    g->has_i = 1;
    g->i = 0;
    expect_refused(b, "node 1 'conv1' (Conv): attribute 'group' = 0 must be >= 1");
    b_base(b);
    b_attr(b, 3, "foo", 2);
    expect_refused(b, "node 3 'relu1' (Relu): attribute 'foo' is not known");
    b_base(b);
    Onnx__AttributeProto *sg = b_attr(b, 3, "body", 5);
    onnx__graph_proto__init(&b->subgraph);
    sg->g = &b->subgraph;
    expect_refused(b, "attribute 'body' is a subgraph");
    b_base(b);
    b->opset.version = 5; /* selects BatchNormalization 1 (is_test, consumed_inputs) */
    expect_refused(b,
                   "node 2 'bn1' (BatchNormalization): version 1 of BatchNormalization "
                   "(selected by opset 5) is not supported (supported versions: 6, 7, 9, 14, 15)");
    b_base(b);
    b->opset.version = 99;
    expect_refused(b, "opset 99 is not supported");
    b_base(b);
    b->nodes[1].n_output = 2; /* Conv with a second output */
    b->node_out[1][1] = "C2";
    expect_refused(b, "node 1 'conv1' (Conv): has 2 outputs (1 supported)");

    /* Working memory over the plan's cap (16 GiB): Pad X to 1x1x40000x40000 (6.4 GB), a Sigmoid
     * of it and their sum are alive at once. Refused before anything that large is allocated. */
    b_base(b);
    static int64_t big_pads[8] = {0, 0, 0, 0, 0, 0, 39996, 39996};
    static const char *const pad_in[] = {"X"}, *const sig_in[] = {"P"},
                             *const add_in[] = {"P", "S"};
    b->opset.version = 10;
    b->graph.n_initializer = 0;
    b_node(b, 0, "Pad", "pad", pad_in, 1, "P");
    Onnx__AttributeProto *bp = b_attr(b, 0, "pads", 7);
    bp->n_ints = 8;
    bp->ints = big_pads;
    b_node(b, 1, "Sigmoid", "sig", sig_in, 1, "S");
    b_node(b, 2, "Add", "add", add_in, 2, "Y");
    b->graph.n_node = 3;
    b->dims[1][2].dim_value = b->dims[1][3].dim_value = 40000;
    buf = b_pack(b, &len);
    assert_int_equal(rf_nn_model_load_buffer(buf, len, &m, &err), 0);
    free(buf);
    {
        float x[16] = {0};
        rf_nn_tensor_t in = t_input_x(x);
        rf_nn_plan_options_t opt = {.device = RF_NN_CPU};
        rf_nn_plan_t *p = NULL;
        assert_int_equal(rf_nn_plan_create(m, &in, 1, &opt, &p, &err), RF_ETOOBIG);
        assert_non_null(strstr(err.msg, "MiB of working memory"));
        assert_null(p);
    }
    rf_nn_model_free(m);
    m = NULL;

    /* Not an ONNX file at all. */
    const char junk[] = "this is not protobuf \xff\xff\xff\xff";
    assert_int_not_equal(rf_nn_model_load_buffer(junk, sizeof(junk), &m, &err), 0);
    assert_true(err.msg[0] != '\0');
    assert_null(m);
    free(b);
}

static void test_tensor_file_roundtrip(void **state)
{
    (void)state;
    char path[] = "/tmp/rf-nn-tensor-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int64_t v[6] = {1, -2, 3, (int64_t)1 << 40, 5, -6};
    rf_nn_tensor_t t = {.name = "ids",
                        .dtype = RF_NN_INT64,
                        .ndim = 2,
                        .dims = {2, 3},
                        .data = v,
                        .bytes = sizeof(v)};
    rf_err_t err = {0};
    assert_int_equal(rf_nn_tensor_write(path, &t, &err), 0);
    rf_nn_tensor_t r;
    assert_int_equal(rf_nn_tensor_read(path, &r, &err), 0);
    assert_string_equal(r.name, "ids");
    assert_int_equal(r.dtype, RF_NN_INT64);
    assert_int_equal(r.ndim, 2);
    assert_int_equal(r.dims[1], 3);
    assert_int_equal(r.bytes, sizeof(v));
    assert_memory_equal(r.data, v, sizeof(v));
    rf_nn_tensor_release(&r);
    /* A missing file: RF_ENOENT naming it. */
    remove(path);
    assert_int_equal(rf_nn_tensor_read(path, &r, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_model_computes_reference),
        cmocka_unit_test(test_unfused_when_conv_output_is_graph_output),
        cmocka_unit_test(test_epilogue_fusion_matches_separate_ops),
        cmocka_unit_test(test_pad_versions),
        cmocka_unit_test(test_hostile_models_refused),
        cmocka_unit_test(test_tensor_file_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
