/* nn_internal.h - what the executor's files (nn_load.c, nn_plan.c, nn_ops.c) share. Not part of
 * the module's interface: users include nn.h only.
 *
 * A loaded model is a list of values (graph inputs, initializers, node outputs; each one a
 * tensor, with data for initializers and Constant outputs) and a list of nodes in topological
 * order that name their inputs and outputs by value index (-1 for an omitted optional input).
 */
#ifndef RF_NN_INTERNAL_H
#define RF_NN_INTERNAL_H

#include "nn.h"

/* Limits on what a file may ask for, checked before allocating. */
#define NN_MAX_ELEMENTS ((int64_t)1 << 31) /* per tensor */
#define NN_MAX_NODES 100000
#define NN_MAX_NODE_IO 4096                   /* inputs or outputs of one node (Concat) */
#define NN_MAX_ATTR_LIST 4096                 /* ints/floats in one attribute */
#define NN_MAX_OPSET 19                       /* newest default-domain opset understood at all */
#define NN_MAX_ARENA_BYTES ((size_t)16 << 30) /* a plan's working memory (values and scratch) */

typedef enum nn_op {
    NN_CONV,
    NN_CONV_TRANSPOSE,
    NN_BATCH_NORM,
    NN_INSTANCE_NORM,
    NN_RELU,
    NN_LEAKY_RELU,
    NN_PRELU,
    NN_SIGMOID,
    NN_TANH,
    NN_CLIP,
    NN_ADD,
    NN_SUB,
    NN_MUL,
    NN_DIV,
    NN_CONCAT,
    NN_PAD,
    NN_RESIZE,
    NN_DEPTH_TO_SPACE,
    NN_SPACE_TO_DEPTH,
    NN_CONSTANT,
    NN_IDENTITY,
    /* Shape glue that exporters emit around the ops above (PyTorch's ReflectionPad2d, Upsample to
     * a size): mostly folded at plan time, but each also runs as an ordinary op. */
    NN_SHAPE,
    NN_CONSTANT_OF_SHAPE,
    NN_RESHAPE,
    NN_SLICE,
    NN_TRANSPOSE,
    NN_CAST,
    NN_GATHER,
    NN_UNSQUEEZE,
    NN_SQUEEZE,
    NN_OP_COUNT
} nn_op_t;

/* ONNX AttributeProto.AttributeType values used here. */
enum {
    NN_ATTR_FLOAT = 1,
    NN_ATTR_INT = 2,
    NN_ATTR_STRING = 3,
    NN_ATTR_TENSOR = 4,
    NN_ATTR_FLOATS = 6,
    NN_ATTR_INTS = 7
};

typedef struct nn_attr {
    char *name;
    int type; /* NN_ATTR_* */
    float f;
    int64_t i;
    char *s; /* NUL-terminated copy of the bytes */
    float *floats;
    int64_t *ints;
    size_t n;          /* entries in floats or ints */
    rf_nn_tensor_t *t; /* TENSOR attribute (Constant's value), owned */
} nn_attr_t;

typedef struct nn_node {
    char name[RF_NN_NAME_MAX]; /* the node's name, or its op type when the file has none */
    int index;                 /* position in the file (messages say "node 12") */
    nn_op_t op;
    int version; /* the op's version under the model's opset (e.g. Resize 13) */
    int nin, nout;
    int *in, *out; /* value indices; -1 = optional input left out */
    nn_attr_t *attrs;
    int nattrs;
} nn_node_t;

typedef struct nn_value {
    rf_nn_tensor_t t; /* name, dtype (0 = not known yet), ndim (-1 = unknown), dims, data */
    int producer;     /* index into nodes, -1 for graph inputs and initializers */
    bool is_input;
    bool is_init; /* initializer: t.data holds it */
} nn_value_t;

struct rf_nn_model {
    nn_value_t *values;
    int nvalues;
    nn_node_t *nodes; /* topological order */
    int nnodes;
    int *inputs, *outputs; /* value indices */
    int ninputs, noutputs;
    rf_nn_tensor_t *in_desc, *out_desc;
    int opset; /* default domain */
    char sha256[65];
};

const char *nn_op_name(nn_op_t op);
/* "node 3 'conv1' (Conv)" into buf. */
const char *nn_node_desc(const nn_node_t *n, char *buf, size_t size);
const nn_attr_t *nn_attr_find(const nn_node_t *n, const char *name);
size_t nn_dtype_size(int dtype);
const char *nn_dtype_name(int dtype);

/* Load-time checks of one node's attributes and input/output count and dtypes (nn_plan.c knows
 * every op's rules). Input dtypes that are not known yet are 0. Sets the output dtypes. */
int nn_node_check(const rf_nn_model_t *m, nn_node_t *n, rf_err_t *err);

/* ---- plan steps (nn_plan.c builds them, nn_ops.c infers shapes and runs them) ---------------- */

/* An activation applied in a convolution's epilogue (fused from the node after it). */
typedef enum nn_act {
    NN_ACT_NONE,
    NN_ACT_RELU,
    NN_ACT_LEAKY,
    NN_ACT_SIGMOID,
    NN_ACT_TANH,
    NN_ACT_CLIP,
    NN_ACT_PRELU
} nn_act_t;

/* Resize along one axis: for every output index, ntap (index, weight) pairs into the input. */
typedef struct nn_resize_axis {
    int64_t out;
    int ntap;
    int64_t *idx;     /* out * ntap input indices, clamped into the input */
    float *w;         /* out * ntap weights, the non-zero ones first */
    uint8_t *nlive;   /* per output index: how many leading taps have a non-zero weight */
    uint8_t *outside; /* tf_crop_and_resize: 1 where the output takes extrapolation_value */
} nn_resize_axis_t;

typedef struct nn_step {
    const nn_node_t *node;
    nn_op_t op;
    int nin, nout;
    int *in; /* nin plan value indices, -1 for an omitted input */
    int out[4];
    bool dead; /* fused into another step */
    /* Conv, ConvTranspose: spatial dims padded to 3 (D, H, W) with leading 1s. */
    int nsp;
    int64_t k[3], st[3], dil[3], pb[3], pe[3], isp[3], osp[3], group;
    nn_act_t act;
    float act_a, act_b;     /* LeakyRelu alpha; Clip min, max */
    const float *act_slope; /* PRelu slope: 1 or M values */
    int64_t act_slope_n;
    /* other ops */
    float alpha, beta;   /* LeakyRelu alpha; Clip-6 min, max */
    double eps;          /* BatchNormalization, InstanceNormalization */
    int64_t axis, block; /* Concat; DepthToSpace, SpaceToDepth */
    int mode;            /* DepthToSpace 0 DCR 1 CRD; Pad 0 constant 1 reflect 2 edge 3 wrap */
    int64_t pads[2 * RF_NN_MAX_DIMS]; /* Pad: begins, ends; Slice: starts, steps */
    int64_t perm[RF_NN_MAX_DIMS];     /* Transpose */
    uint64_t fill;                    /* ConstantOfShape: the value's bytes */
    int b_trailing_ones;              /* opset-6 broadcasting (Add-6 family's axis, PRelu-6's
                                         per-channel slope): 1s appended to B's dims first */
    float pad_value;                  /* Pad-2's value attribute */
    nn_resize_axis_t rz[RF_NN_MAX_DIMS];
    float extrapolation;
    size_t scratch_bytes; /* working memory the kernel needs */
    size_t scratch_off;   /* where it lies in the plan's arena */
    bool residual;        /* GPU plans: Conv/ConvTranspose add in[3] after the activation */
    int64_t d2s_block;    /* GPU plans: a DepthToSpace after the convolution, fused (0 = none) */
    int d2s_crd;          /* its mode: 0 DCR, 1 CRD */
    bool prepad;          /* GPU plans: a Pad before the Conv, fused: in[0] is the Pad's input */
    int prepad_mode;      /* the Pad's mode (as mode above) */
    int64_t prepad_b[3];  /* its begins on the spatial dims (D, H, W) */
    float prepad_value;   /* its constant */
} nn_step_t;

/* Shapes and parameters of one step: in[k] (NULL for an omitted input) has dtype and dims, and
 * data when the value is known at plan time (initializers, folded constants, inputs given with
 * their values); fills out[k]'s dtype and dims, the step's parameters and scratch_bytes. */
int nn_infer(nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out, rf_err_t *err);
/* True when input k of the node must be known when the plan is made (it fixes shapes: Pad's
 * pads and axes, Resize's roi, scales and sizes, Reshape's shape, Slice's starts..steps,
 * ConstantOfShape's shape, Unsqueeze/Squeeze-13's axes). */
bool nn_input_fixes_shapes(const nn_node_t *n, int k);
/* Numpy broadcasting of a and b to o: o's dims d (r of them, at least 1) and each side's element
 * stride per output axis (0 where that side has 1). */
void nn_bcast_strides(const rf_nn_tensor_t *a, const rf_nn_tensor_t *b, const rf_nn_tensor_t *o,
                      int *r, int64_t *d, int64_t *sa, int64_t *sb);
/* Runs one step on bound tensors. */
int nn_kernel(const nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out,
              void *scratch, rf_err_t *err);
/* Frees what nn_infer allocated in the step (Resize tables). */
void nn_step_release(nn_step_t *s);

/* ---- plans (nn_plan.c; nn_gpu.c reads them for the GPU backend) ----------------------------- */

#define NN_ALIGN 64

/* One value of a plan. */
typedef struct pval {
    rf_nn_tensor_t t; /* shape; data = constant data, or the value's place in the arena */
    bool is_const;    /* initializer or folded: t.data is plan-owned and fixed */
    bool is_output;
    void *pinned; /* an input's values given at plan time (they fix shapes downstream) */
    size_t pinned_bytes;
    int uses;
    int producer;    /* step index, -1 */
    int first, last; /* lifetime in steps */
    size_t off;
    bool in_arena;
} pval_t;

struct rf_nn_plan {
    pval_t *v;
    int nv, cap;
    nn_step_t *steps;
    int nsteps;
    nn_node_t *nodes; /* copies of the model's nodes without attributes (names for messages) */
    int *inputs, *outputs;
    int ninputs, noutputs;
    rf_nn_tensor_t *out_desc;
    uint8_t *arena;
    size_t arena_bytes;
    size_t const_bytes;    /* made by constant folding (capped like the arena) */
    rf_nn_tensor_t **ptrs; /* per-step input and output views */
    int maxio;
    rf_nn_device_t device;
    struct nn_gpu *gpu; /* RF_NN_GPU: the device side (nn_gpu.c) */
};

/* One block of an arena: a value or a step's scratch of size bytes, alive over steps
 * [first, last]; *off receives its place. */
typedef struct nn_block {
    size_t size, *off;
    int first, last;
} nn_block_t;

/* Places the blocks (first fit, largest first; blocks alive at the same time never overlap) and
 * returns the arena's size. Reorders blocks. */
size_t nn_arena_fit(nn_block_t *blocks, int nb);

/* Readies outputs[i] for value v: its name, dtype and dims; data allocated when NULL, else
 * checked to hold *need bytes (the value's size). */
int nn_output_bind(const pval_t *v, rf_nn_tensor_t *o, size_t *need, rf_err_t *err);

/* The GPU backend (nn_gpu.c): made after the compile step (steps, fusion, arena offsets), it
 * uploads the constants, allocates the device arena and runs the steps on the device. */
int nn_gpu_create(rf_nn_plan_t *p, const rf_nn_plan_options_t *opt, rf_err_t *err);
int nn_gpu_run(rf_nn_plan_t *p, const rf_nn_tensor_t *inputs, rf_nn_tensor_t *outputs,
               rf_err_t *err);
void nn_gpu_free(rf_nn_plan_t *p);
/* The device arena's size (rf_nn_plan_stats of a GPU plan). */
size_t nn_gpu_arena_bytes(const rf_nn_plan_t *p);
/* rf_nn_plan_host_buffer of a GPU plan: count fp32 values, pinned, made on first request. */
void *nn_gpu_host_buffer(rf_nn_plan_t *p, bool output, int i, size_t bytes);

/* Converts a parsed TensorProto (onnx-subset.pb-c.h's Onnx__TensorProto, passed as void * to
 * keep protobuf-c out of this header) into t (data malloc'd). what names it in messages. */
int nn_tensor_from_proto(const void *proto, rf_nn_tensor_t *t, const char *what, rf_err_t *err);

#endif
