/* nn_ops.c - every op the executor knows: load-time checks (attributes, dtypes), static shape
 * inference with the op's parameters, and the CPU reference kernels (NCHW, exact ONNX semantics;
 * Conv and ConvTranspose through im2col/col2im and OpenBLAS sgemm, tiled so the column buffer
 * stays small). Resize follows the ONNX 1.12 reference implementation (onnx/backend/test/case/
 * node/resize.py) that generated the conformance data, including its use of scale * input size
 * as the output length in align_corners and its edge-clamped neighbour windows.
 */
#include <cblas.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

#define NN_COL_TILE_FLOATS ((size_t)4 << 20) /* im2col columns per tile: at most 16 MiB */

/* ---- attributes ----------------------------------------------------------------------------- */

typedef struct s_ctx {
    const nn_node_t *n;
    char desc[RF_NN_NAME_MAX + 64];
    rf_err_t *err;
} s_ctx_t;

static void s_ctx_init(s_ctx_t *c, const nn_node_t *n, rf_err_t *err)
{
    c->n = n;
    c->err = err;
    nn_node_desc(n, c->desc, sizeof(c->desc));
}

#define FAIL(c, code, ...) s_fail((c), (code), __VA_ARGS__)
__attribute__((format(printf, 3, 4))) static int s_fail(s_ctx_t *c, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rf_err_set(c->err, code, "%s: %s", c->desc, msg);
}

/* An attribute of the given type, or NULL when absent; *rc gets an error for a wrong type. */
static const nn_attr_t *s_attr(s_ctx_t *c, const char *name, int type, int *rc)
{
    const nn_attr_t *a = nn_attr_find(c->n, name);
    if (a && a->type != type) {
        static const char *names[] = {"undefined", "float", "int",    "string",
                                      "tensor",    "graph", "floats", "ints"};
        *rc = FAIL(c, RF_EINVAL, "attribute '%s' must be of type %s (got type %d)", name,
                   type < 8 ? names[type] : "?", a->type);
        return NULL;
    }
    return a;
}

static int s_attr_int(s_ctx_t *c, const char *name, int64_t def, int64_t *out)
{
    int rc = 0;
    const nn_attr_t *a = s_attr(c, name, NN_ATTR_INT, &rc);
    *out = a ? a->i : def;
    return rc;
}

static int s_attr_float(s_ctx_t *c, const char *name, float def, float *out)
{
    int rc = 0;
    const nn_attr_t *a = s_attr(c, name, NN_ATTR_FLOAT, &rc);
    *out = a ? a->f : def;
    return rc;
}

static int s_attr_str(s_ctx_t *c, const char *name, const char *def, const char **out)
{
    int rc = 0;
    const nn_attr_t *a = s_attr(c, name, NN_ATTR_STRING, &rc);
    *out = a ? a->s : def;
    return rc;
}

/* An INTS attribute: *n gets its length (0 when absent). */
static int s_attr_ints(s_ctx_t *c, const char *name, const int64_t **v, size_t *n)
{
    int rc = 0;
    const nn_attr_t *a = s_attr(c, name, NN_ATTR_INTS, &rc);
    *v = a ? a->ints : NULL;
    *n = a ? a->n : 0;
    return rc;
}

/* Refuses attributes the op does not define (they might change its meaning). allowed ends with
 * NULL. */
static int s_only_attrs(s_ctx_t *c, const char *const *allowed)
{
    for (int i = 0; i < c->n->nattrs; i++) {
        bool ok = false;
        for (int k = 0; allowed[k]; k++)
            if (!strcmp(allowed[k], c->n->attrs[i].name))
                ok = true;
        if (!ok)
            return FAIL(c, RF_EINVAL, "attribute '%s' is not known for this op (version %d)",
                        c->n->attrs[i].name, c->n->version);
    }
    return 0;
}

/* ---- load-time checks --------------------------------------------------------------------- */

static int s_dtype_of(const rf_nn_model_t *m, const nn_node_t *n, int k)
{
    return k < n->nin && n->in[k] >= 0 ? (int)m->values[n->in[k]].t.dtype : 0;
}

static bool s_numeric(int dt)
{
    return dt == RF_NN_FLOAT || dt == RF_NN_DOUBLE || dt == RF_NN_INT32 || dt == RF_NN_INT64 ||
           dt == RF_NN_UINT8 || dt == RF_NN_INT8;
}

/* Input k must have dtype want (when known). */
static int s_want(s_ctx_t *c, const rf_nn_model_t *m, int k, int want, const char *what)
{
    int dt = s_dtype_of(m, c->n, k);
    if (dt && dt != want)
        return FAIL(c, RF_EINVAL, "input %d (%s, '%s') must be %s, got %s", k, what,
                    m->values[c->n->in[k]].t.name, nn_dtype_name(want), nn_dtype_name(dt));
    return 0;
}

static int s_count_io(s_ctx_t *c, int min_in, int max_in, int max_out)
{
    const nn_node_t *n = c->n;
    int present = n->nin;
    while (present > 0 && n->in[present - 1] < 0)
        present--;
    if (present < min_in || n->nin > max_in)
        return FAIL(c, RF_EINVAL, "takes %d to %d inputs, has %d", min_in, max_in, n->nin);
    for (int k = 0; k < min_in; k++)
        if (n->in[k] < 0)
            return FAIL(c, RF_EINVAL, "input %d is required but left empty", k);
    if (n->nout < 1 || n->nout > max_out || n->out[0] < 0)
        return FAIL(c, RF_EINVAL, "has %d outputs (%d supported)%s", n->nout, max_out,
                    n->op == NN_BATCH_NORM ? ": training-mode BatchNormalization is not supported"
                                           : "");
    for (int k = 1; k < n->nout; k++)
        if (n->out[k] >= 0)
            return FAIL(c, RF_EINVAL, "output %d is not supported", k);
    return 0;
}

static const char *const s_attrs_conv[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                           "pads",     "strides",   NULL};
static const char *const s_attrs_convt[] = {"auto_pad",     "dilations",      "group",
                                            "kernel_shape", "output_padding", "output_shape",
                                            "pads",         "strides",        NULL};

static int s_check_conv_attrs(s_ctx_t *c)
{
    int rc = s_only_attrs(c, c->n->op == NN_CONV ? s_attrs_conv : s_attrs_convt);
    int64_t group;
    const char *ap;
    if (!rc)
        rc = s_attr_int(c, "group", 1, &group);
    if (!rc && group < 1)
        rc = FAIL(c, RF_EINVAL, "attribute 'group' = %" PRId64 " must be >= 1", group);
    if (!rc)
        rc = s_attr_str(c, "auto_pad", "NOTSET", &ap);
    if (!rc && strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") &&
        strcmp(ap, "VALID"))
        rc = FAIL(c, RF_EINVAL,
                  "attribute 'auto_pad' = '%s' (expected NOTSET, SAME_UPPER, SAME_LOWER or VALID)",
                  ap);
    const char *lists[] = {"dilations", "strides",        "kernel_shape",
                           "pads",      "output_padding", "output_shape"};
    for (int i = 0; !rc && i < 6; i++) {
        const int64_t *v;
        size_t nv;
        rc = s_attr_ints(c, lists[i], &v, &nv);
        for (size_t k = 0; !rc && k < nv; k++) {
            bool positive = i < 3;
            if ((positive && v[k] < 1) || (!positive && v[k] < 0) || v[k] > NN_MAX_ELEMENTS)
                rc = FAIL(c, RF_EINVAL, "attribute '%s'[%zu] = %" PRId64 " must be %s", lists[i], k,
                          v[k], positive ? "in 1..2^31" : "in 0..2^31");
        }
    }
    return rc;
}

int nn_node_check(const rf_nn_model_t *m, nn_node_t *n, rf_err_t *err)
{
    s_ctx_t c;
    s_ctx_init(&c, n, err);
    int rc = 0, out_dt = s_dtype_of(m, n, 0);
    int dt0 = out_dt;
    switch (n->op) {
    case NN_CONV:
    case NN_CONV_TRANSPOSE:
        rc = s_count_io(&c, 2, 3, 1);
        for (int k = 0; !rc && k < n->nin; k++)
            rc = s_want(&c, m, k, RF_NN_FLOAT, k ? (k == 1 ? "W" : "B") : "X");
        if (!rc)
            rc = s_check_conv_attrs(&c);
        break;
    case NN_BATCH_NORM: {
        static const char *const a6[] = {"epsilon", "is_test", "momentum", "spatial", NULL};
        static const char *const a7[] = {"epsilon", "momentum", "spatial", NULL};
        static const char *const a9[] = {"epsilon", "momentum", "training_mode", NULL};
        rc = s_count_io(&c, 5, 5, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version == 6 ? a6 : n->version == 7 ? a7 : a9);
        int64_t v;
        if (!rc && n->version == 6 && !(rc = s_attr_int(&c, "is_test", 0, &v)) && v != 1)
            rc = FAIL(&c, RF_EINVAL,
                      "is_test = %" PRId64 " (training mode) is not supported (inference only)", v);
        if (!rc && n->version <= 7 && !(rc = s_attr_int(&c, "spatial", 1, &v)) && v != 1)
            rc = FAIL(&c, RF_EINVAL, "attribute 'spatial' = %" PRId64 " (only 1 is supported)", v);
        if (!rc && n->version >= 14 && !(rc = s_attr_int(&c, "training_mode", 0, &v)) && v != 0)
            rc = FAIL(&c, RF_EINVAL,
                      "training_mode = %" PRId64 " is not supported (inference only)", v);
        for (int k = 0; !rc && k < 5; k++)
            rc = s_want(&c, m, k, RF_NN_FLOAT, k ? "parameter" : "X");
        break;
    }
    case NN_INSTANCE_NORM: {
        static const char *const a[] = {"epsilon", NULL};
        rc = s_count_io(&c, 3, 3, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        for (int k = 0; !rc && k < 3; k++)
            rc = s_want(&c, m, k, RF_NN_FLOAT, k ? "parameter" : "input");
        break;
    }
    case NN_RELU:
    case NN_SIGMOID:
    case NN_TANH:
    case NN_LEAKY_RELU: {
        static const char *const none[] = {NULL};
        static const char *const leaky[] = {"alpha", NULL};
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->op == NN_LEAKY_RELU ? leaky : none);
        if (!rc)
            rc = s_want(&c, m, 0, RF_NN_FLOAT, "X");
        break;
    }
    case NN_PRELU: {
        static const char *const none[] = {NULL};
        rc = s_count_io(&c, 2, 2, 1);
        if (!rc)
            rc = s_only_attrs(&c, none);
        for (int k = 0; !rc && k < 2; k++)
            rc = s_want(&c, m, k, RF_NN_FLOAT, k ? "slope" : "X");
        break;
    }
    case NN_CLIP: {
        static const char *const a6[] = {"min", "max", NULL};
        static const char *const none[] = {NULL};
        rc = n->version == 6 ? s_count_io(&c, 1, 1, 1) : s_count_io(&c, 1, 3, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version == 6 ? a6 : none);
        if (!rc && dt0 && (n->version < 12 ? dt0 != RF_NN_FLOAT : !s_numeric(dt0)))
            rc = FAIL(&c, RF_EINVAL, "input type %s is not supported", nn_dtype_name(dt0));
        for (int k = 1; !rc && k < n->nin; k++)
            if (dt0)
                rc = s_want(&c, m, k, dt0, k == 1 ? "min" : "max");
        break;
    }
    case NN_ADD:
    case NN_SUB:
    case NN_MUL:
    case NN_DIV: {
        static const char *const none[] = {NULL};
        static const char *const a6[] = {"axis", "broadcast", NULL};
        rc = s_count_io(&c, 2, 2, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version == 6 ? a6 : none);
        int64_t v;
        if (!rc && n->version == 6)
            rc = s_attr_int(&c, "axis", 0, &v);
        if (!rc && n->version == 6)
            rc = s_attr_int(&c, "broadcast", 0, &v);
        if (!rc && dt0 && !s_numeric(dt0))
            rc = FAIL(&c, RF_EINVAL, "input type %s is not supported", nn_dtype_name(dt0));
        if (!rc && dt0)
            rc = s_want(&c, m, 1, dt0, "B");
        break;
    }
    case NN_CONCAT: {
        static const char *const a[] = {"axis", NULL};
        rc = s_count_io(&c, 1, NN_MAX_NODE_IO, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc && !nn_attr_find(n, "axis"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'axis' is required");
        int64_t axis;
        if (!rc)
            rc = s_attr_int(&c, "axis", 0, &axis);
        for (int k = 0; !rc && k < n->nin; k++) {
            if (n->in[k] < 0)
                rc = FAIL(&c, RF_EINVAL, "input %d is empty", k);
            else if (dt0 && s_dtype_of(m, n, k))
                rc = s_want(&c, m, k, dt0, "input");
        }
        break;
    }
    case NN_PAD: {
        static const char *const a2[] = {"mode", "pads", "value", NULL};
        static const char *const a11[] = {"mode", NULL};
        const char *mode;
        rc = n->version == 2 ? s_count_io(&c, 1, 1, 1)
                             : s_count_io(&c, 2, n->version >= 18 ? 4 : 3, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version == 2 ? a2 : a11);
        if (!rc)
            rc = s_attr_str(&c, "mode", "constant", &mode);
        if (!rc && strcmp(mode, "constant") && strcmp(mode, "reflect") && strcmp(mode, "edge") &&
            (n->version < 19 || strcmp(mode, "wrap")))
            rc = FAIL(&c, RF_EINVAL, "attribute 'mode' = '%s' is not supported", mode);
        if (!rc && n->version == 2 && !nn_attr_find(n, "pads"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'pads' is required");
        if (!rc && dt0 && (n->version == 2 ? dt0 != RF_NN_FLOAT : !s_numeric(dt0)))
            rc = FAIL(&c, RF_EINVAL, "input type %s is not supported", nn_dtype_name(dt0));
        if (!rc && n->version > 2)
            rc = s_want(&c, m, 1, RF_NN_INT64, "pads");
        if (!rc && n->version > 2 && dt0)
            rc = s_want(&c, m, 2, dt0, "constant_value");
        if (!rc && n->version >= 18)
            rc = s_want(&c, m, 3, RF_NN_INT64, "axes");
        break;
    }
    case NN_RESIZE: {
        static const char *const a[] = {"coordinate_transformation_mode",
                                        "cubic_coeff_a",
                                        "exclude_outside",
                                        "extrapolation_value",
                                        "mode",
                                        "nearest_mode",
                                        NULL};
        const char *mode, *ct, *nm;
        rc = n->version == 11 ? s_count_io(&c, 3, 4, 1) : s_count_io(&c, 1, 4, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc)
            rc = s_attr_str(&c, "mode", "nearest", &mode);
        if (!rc && strcmp(mode, "nearest") && strcmp(mode, "linear") && strcmp(mode, "cubic"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'mode' = '%s' is not supported", mode);
        if (!rc)
            rc = s_attr_str(&c, "coordinate_transformation_mode", "half_pixel", &ct);
        if (!rc && strcmp(ct, "half_pixel") && strcmp(ct, "pytorch_half_pixel") &&
            strcmp(ct, "align_corners") && strcmp(ct, "asymmetric") &&
            strcmp(ct, "tf_half_pixel_for_nn") && strcmp(ct, "tf_crop_and_resize"))
            rc = FAIL(&c, RF_EINVAL,
                      "attribute 'coordinate_transformation_mode' = '%s' is not supported", ct);
        if (!rc)
            rc = s_attr_str(&c, "nearest_mode", "round_prefer_floor", &nm);
        if (!rc && strcmp(nm, "round_prefer_floor") && strcmp(nm, "round_prefer_ceil") &&
            strcmp(nm, "floor") && strcmp(nm, "ceil"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'nearest_mode' = '%s' is not supported", nm);
        float f;
        int64_t i;
        if (!rc)
            rc = s_attr_float(&c, "cubic_coeff_a", -0.75f, &f);
        if (!rc)
            rc = s_attr_float(&c, "extrapolation_value", 0.0f, &f);
        if (!rc)
            rc = s_attr_int(&c, "exclude_outside", 0, &i);
        if (!rc)
            rc = s_want(&c, m, 0, RF_NN_FLOAT, "X");
        if (!rc)
            rc = s_want(&c, m, 1, RF_NN_FLOAT, "roi");
        if (!rc)
            rc = s_want(&c, m, 2, RF_NN_FLOAT, "scales");
        if (!rc)
            rc = s_want(&c, m, 3, RF_NN_INT64, "sizes");
        break;
    }
    case NN_DEPTH_TO_SPACE:
    case NN_SPACE_TO_DEPTH: {
        static const char *const d2s[] = {"blocksize", "mode", NULL};
        static const char *const s2d[] = {"blocksize", NULL};
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->op == NN_DEPTH_TO_SPACE && n->version >= 11 ? d2s : s2d);
        int64_t bs;
        if (!rc && !nn_attr_find(n, "blocksize"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'blocksize' is required");
        if (!rc)
            rc = s_attr_int(&c, "blocksize", 0, &bs);
        if (!rc && (bs < 1 || bs > 4096))
            rc = FAIL(&c, RF_EINVAL, "attribute 'blocksize' = %" PRId64 " must be 1..4096", bs);
        const char *mode;
        if (!rc)
            rc = s_attr_str(&c, "mode", "DCR", &mode);
        if (!rc && strcmp(mode, "DCR") && strcmp(mode, "CRD"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'mode' = '%s' (expected DCR or CRD)", mode);
        break;
    }
    case NN_CONSTANT: {
        rc = s_count_io(&c, 0, 0, 1);
        if (!rc && n->nattrs != 1)
            rc = FAIL(&c, RF_EINVAL, "needs exactly one value attribute, has %d", n->nattrs);
        if (rc)
            break;
        const nn_attr_t *a = &n->attrs[0];
        if (!strcmp(a->name, "value") && a->type == NN_ATTR_TENSOR)
            out_dt = a->t->dtype;
        else if ((!strcmp(a->name, "value_float") && a->type == NN_ATTR_FLOAT) ||
                 (!strcmp(a->name, "value_floats") && a->type == NN_ATTR_FLOATS))
            out_dt = RF_NN_FLOAT;
        else if ((!strcmp(a->name, "value_int") && a->type == NN_ATTR_INT) ||
                 (!strcmp(a->name, "value_ints") && a->type == NN_ATTR_INTS))
            out_dt = RF_NN_INT64;
        else
            rc = FAIL(&c, RF_EINVAL, "attribute '%s' (type %d) is not supported", a->name, a->type);
        break;
    }
    case NN_IDENTITY: {
        static const char *const none[] = {NULL};
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, none);
        break;
    }
    case NN_SHAPE: {
        static const char *const a1[] = {NULL};
        static const char *const a15[] = {"start", "end", NULL};
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version >= 15 ? a15 : a1);
        int64_t v;
        if (!rc)
            rc = s_attr_int(&c, "start", 0, &v);
        if (!rc)
            rc = s_attr_int(&c, "end", 0, &v);
        out_dt = RF_NN_INT64;
        break;
    }
    case NN_CONSTANT_OF_SHAPE: {
        static const char *const a[] = {"value", NULL};
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc)
            rc = s_want(&c, m, 0, RF_NN_INT64, "shape");
        int r2 = 0;
        const nn_attr_t *v = rc ? NULL : s_attr(&c, "value", NN_ATTR_TENSOR, &r2);
        rc = rc ? rc : r2;
        if (!rc && v && rf_nn_tensor_count(v->t) != 1)
            rc = FAIL(&c, RF_EINVAL, "attribute 'value' must hold one element");
        out_dt = v ? (int)v->t->dtype : RF_NN_FLOAT;
        break;
    }
    case NN_RESHAPE: {
        static const char *const a5[] = {NULL};
        static const char *const a14[] = {"allowzero", NULL};
        rc = s_count_io(&c, 2, 2, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version >= 14 ? a14 : a5);
        if (!rc)
            rc = s_want(&c, m, 1, RF_NN_INT64, "shape");
        break;
    }
    case NN_SLICE: {
        static const char *const none[] = {NULL};
        rc = s_count_io(&c, 3, 5, 1);
        if (!rc)
            rc = s_only_attrs(&c, none);
        for (int k = 1; !rc && k < n->nin; k++) {
            int dt = s_dtype_of(m, n, k);
            if (dt && dt != RF_NN_INT64 && dt != RF_NN_INT32)
                rc = FAIL(&c, RF_EINVAL, "input %d must be int32 or int64, got %s", k,
                          nn_dtype_name(dt));
        }
        break;
    }
    case NN_TRANSPOSE: {
        static const char *const a[] = {"perm", NULL};
        const int64_t *perm;
        size_t np;
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc)
            rc = s_attr_ints(&c, "perm", &perm, &np);
        break;
    }
    case NN_CAST: {
        static const char *const a[] = {"to", NULL};
        int64_t to;
        rc = s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc && !nn_attr_find(n, "to"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'to' is required");
        if (!rc)
            rc = s_attr_int(&c, "to", 0, &to);
        if (!rc && (to < 0 || to > 64 || !nn_dtype_size((int)to)))
            rc = FAIL(&c, RF_EINVAL, "attribute 'to' = %d (%s) is not a supported type", (int)to,
                      nn_dtype_name((int)to));
        if (!rc)
            out_dt = (int)to;
        break;
    }
    case NN_GATHER: {
        static const char *const a[] = {"axis", NULL};
        int64_t axis;
        rc = s_count_io(&c, 2, 2, 1);
        if (!rc)
            rc = s_only_attrs(&c, a);
        if (!rc)
            rc = s_attr_int(&c, "axis", 0, &axis);
        int dt = s_dtype_of(m, n, 1);
        if (!rc && dt && dt != RF_NN_INT64 && dt != RF_NN_INT32)
            rc = FAIL(&c, RF_EINVAL, "indices must be int32 or int64, got %s", nn_dtype_name(dt));
        break;
    }
    case NN_UNSQUEEZE:
    case NN_SQUEEZE: {
        static const char *const a[] = {"axes", NULL};
        static const char *const none[] = {NULL};
        rc = n->version >= 13 ? s_count_io(&c, n->op == NN_SQUEEZE ? 1 : 2, 2, 1)
                              : s_count_io(&c, 1, 1, 1);
        if (!rc)
            rc = s_only_attrs(&c, n->version >= 13 ? none : a);
        if (!rc && n->op == NN_UNSQUEEZE && n->version < 13 && !nn_attr_find(n, "axes"))
            rc = FAIL(&c, RF_EINVAL, "attribute 'axes' is required");
        if (!rc && n->version >= 13)
            rc = s_want(&c, m, 1, RF_NN_INT64, "axes");
        break;
    }
    default:
        rc = FAIL(&c, RF_EINVAL, "op not implemented");
    }
    if (!rc)
        m->values[n->out[0]].t.dtype = (rf_nn_dtype_t)out_dt;
    return rc;
}

bool nn_input_fixes_shapes(const nn_node_t *n, int k)
{
    switch (n->op) {
    case NN_PAD:
        return n->version >= 11 && (k == 1 || k == 3);
    case NN_RESIZE:
    case NN_SLICE:
        return k >= 1;
    case NN_RESHAPE:
        return k == 1;
    case NN_CONSTANT_OF_SHAPE:
        return k == 0;
    case NN_UNSQUEEZE:
    case NN_SQUEEZE:
        return n->version >= 13 && k == 1;
    default:
        return false;
    }
}

/* ---- shape inference ------------------------------------------------------------------------ */

static int s_out_shape(rf_nn_tensor_t *o, int dtype, int ndim, const int64_t *dims)
{
    o->dtype = (rf_nn_dtype_t)dtype;
    o->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        o->dims[i] = dims[i];
    return 0;
}

static int s_check_count(s_ctx_t *c, const rf_nn_tensor_t *o)
{
    int64_t n = 1;
    for (int i = 0; i < o->ndim; i++) {
        if (o->dims[i] < 0)
            return FAIL(c, RF_EINVAL, "output dim %d would be negative (%" PRId64 ")", i,
                        o->dims[i]);
        if (o->dims[i] && n > NN_MAX_ELEMENTS / o->dims[i])
            return FAIL(c, RF_ETOOBIG, "output shape too large");
        n *= o->dims[i];
    }
    return 0;
}

/* Values of a plan-time-known int64 or float tensor as int64 or double. */
static int s_known(s_ctx_t *c, const rf_nn_tensor_t *t, const char *what)
{
    if (!t->data)
        return FAIL(c, RF_EINVAL,
                    "input '%s' (%s) must be known when the plan is made: make it an initializer "
                    "or a Constant, or pass its values with the input shapes",
                    t->name, what);
    return 0;
}

static int s_infer_conv(s_ctx_t *c, nn_step_t *s, rf_nn_tensor_t *const *in,
                        rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0], *w = in[1], *b = s->nin > 2 ? in[2] : NULL;
    bool tr = s->op == NN_CONV_TRANSPOSE;
    int r = x->ndim;
    if (r < 3 || r > 5)
        return FAIL(c, RF_EINVAL, "input X has rank %d (1-D, 2-D and 3-D convolutions: rank 3..5)",
                    r);
    if (w->ndim != r)
        return FAIL(c, RF_EINVAL, "weight W has rank %d, X has rank %d", w->ndim, r);
    int nsp = r - 2;
    s->nsp = nsp;
    int64_t group;
    const char *ap;
    const int64_t *ks, *st, *dl, *pads, *op, *os;
    size_t nks, nst, ndl, npads, nop, nos;
    s_attr_int(c, "group", 1, &group);
    s_attr_str(c, "auto_pad", "NOTSET", &ap);
    s_attr_ints(c, "kernel_shape", &ks, &nks);
    s_attr_ints(c, "strides", &st, &nst);
    s_attr_ints(c, "dilations", &dl, &ndl);
    s_attr_ints(c, "pads", &pads, &npads);
    s_attr_ints(c, "output_padding", &op, &nop);
    s_attr_ints(c, "output_shape", &os, &nos);
    if ((nks && nks != (size_t)nsp) || (nst && nst != (size_t)nsp) || (ndl && ndl != (size_t)nsp) ||
        (npads && npads != 2 * (size_t)nsp) || (nop && nop != (size_t)nsp) ||
        (nos && nos != (size_t)nsp && nos != (size_t)r))
        return FAIL(c, RF_EINVAL,
                    "kernel_shape/strides/dilations/output_padding need %d entries and pads %d "
                    "for a %d-D convolution",
                    nsp, 2 * nsp, nsp);
    for (int i = 0; i < nsp; i++)
        if (nks && ks[i] != w->dims[2 + i])
            return FAIL(c, RF_EINVAL,
                        "kernel_shape[%d] = %" PRId64 " does not match W's dim %d (%" PRId64 ")", i,
                        ks[i], 2 + i, w->dims[2 + i]);
    int64_t N = x->dims[0], C = x->dims[1], M;
    s->group = group;
    if (!tr) {
        M = w->dims[0];
        if (C != w->dims[1] * group || M % group)
            return FAIL(c, RF_EINVAL,
                        "X has %" PRId64 " channels but W is %" PRId64 "x%" PRId64
                        " with group %" PRId64,
                        C, w->dims[0], w->dims[1], group);
    } else {
        M = w->dims[1] * group;
        if (C != w->dims[0] || C % group)
            return FAIL(c, RF_EINVAL,
                        "X has %" PRId64 " channels but W's first dim is %" PRId64
                        " (group %" PRId64 ")",
                        C, w->dims[0], group);
    }
    if (b && (b->ndim != 1 || b->dims[0] != M))
        return FAIL(c, RF_EINVAL, "bias B must have %" PRId64 " values", M);
    int64_t od[5] = {N, M, 1, 1, 1};
    for (int i = 0; i < 3; i++) {
        s->k[i] = s->st[i] = s->dil[i] = s->isp[i] = s->osp[i] = 1;
        s->pb[i] = s->pe[i] = 0;
    }
    for (int i = 0; i < nsp; i++) {
        int j = 3 - nsp + i; /* into the padded D, H, W */
        int64_t isz = x->dims[2 + i], k = w->dims[2 + i];
        int64_t s_ = nst ? st[i] : 1, d = ndl ? dl[i] : 1;
        int64_t ek = (k - 1) * d + 1, pb = npads ? pads[i] : 0, pe = npads ? pads[nsp + i] : 0;
        int64_t opad = nop ? op[i] : 0, o;
        if (k < 1 || isz < 1)
            return FAIL(c, RF_EINVAL,
                        "empty spatial dim %d (input %" PRId64 ", kernel %" PRId64 ")", i, isz, k);
        if (!tr) {
            if (!strcmp(ap, "VALID")) {
                pb = pe = 0;
                o = (isz - ek) / s_ + 1;
            } else if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
                o = (isz + s_ - 1) / s_;
                int64_t total = (o - 1) * s_ + ek - isz;
                if (total < 0)
                    total = 0;
                if (!strcmp(ap, "SAME_UPPER")) {
                    pb = total / 2;
                    pe = total - pb;
                } else {
                    pe = total / 2;
                    pb = total - pe;
                }
            } else {
                if (isz + pb + pe < ek)
                    return FAIL(c, RF_EINVAL,
                                "spatial dim %d: input %" PRId64 " plus pads is smaller than the "
                                "dilated kernel %" PRId64,
                                i, isz, ek);
                o = (isz + pb + pe - ek) / s_ + 1;
            }
        } else {
            if (opad >= s_ && opad >= d)
                return FAIL(c, RF_EINVAL,
                            "output_padding[%d] = %" PRId64 " must be less than stride or dilation",
                            i, opad);
            bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER");
            if (nos || same) {
                o = nos ? os[nos == (size_t)r ? 2 + i : i] : isz * s_;
                int64_t total = s_ * (isz - 1) + opad + ek - o;
                if (total < 0)
                    total = 0; /* a larger requested output is zero-extended at the end */
                if (!strcmp(ap, "SAME_UPPER")) {
                    pb = total / 2;
                    pe = total - total / 2;
                } else {
                    pb = total - total / 2;
                    pe = total / 2;
                }
            } else {
                if (!strcmp(ap, "VALID"))
                    pb = pe = 0;
                o = s_ * (isz - 1) + opad + ek - pb - pe;
            }
        }
        if (o < 1)
            return FAIL(c, RF_EINVAL, "spatial dim %d: output size %" PRId64 " < 1", i, o);
        s->k[j] = k;
        s->st[j] = s_;
        s->dil[j] = d;
        s->pb[j] = pb;
        s->pe[j] = pe;
        s->isp[j] = isz;
        s->osp[j] = o;
        od[2 + i] = o;
    }
    s_out_shape(out[0], RF_NN_FLOAT, r, od);
    int rc = s_check_count(c, out[0]);
    if (rc)
        return rc;
    /* Scratch: the column buffer of one tile. */
    int64_t K = s->k[0] * s->k[1] * s->k[2];
    int64_t rows = tr ? (M / group) * K : (C / group) * K;
    int64_t P = tr ? s->isp[0] * s->isp[1] * s->isp[2] : s->osp[0] * s->osp[1] * s->osp[2];
    int64_t tile = (int64_t)(NN_COL_TILE_FLOATS / (size_t)(rows ? rows : 1));
    if (tile < 64)
        tile = 64;
    if (tile > P)
        tile = P;
    bool direct = !tr && K == 1 && s->st[0] * s->st[1] * s->st[2] == 1 &&
                  !(s->pb[0] | s->pb[1] | s->pb[2] | s->pe[0] | s->pe[1] | s->pe[2]);
    s->scratch_bytes = direct ? 0 : (size_t)(rows * tile) * sizeof(float);
    return 0;
}

/* numpy broadcasting of a and b into o (the dtype is a's). unidirectional: b must broadcast to
 * a's shape (PRelu). */
static int s_infer_broadcast(s_ctx_t *c, const rf_nn_tensor_t *a, const rf_nn_tensor_t *b,
                             rf_nn_tensor_t *o, bool unidirectional)
{
    int r = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t d[RF_NN_MAX_DIMS];
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return FAIL(c, RF_EINVAL, "shapes do not broadcast: dim %d is %" PRId64 " vs %" PRId64,
                        i, da, db);
        d[i] = da == 1 ? db : da;
        if (unidirectional && d[i] != da)
            return FAIL(c, RF_EINVAL, "slope does not broadcast to X's shape (dim %d)", i);
    }
    if (unidirectional && r != a->ndim)
        return FAIL(c, RF_EINVAL, "slope has more dims than X");
    s_out_shape(o, a->dtype, r, d);
    return 0;
}

static double s_cubic(double x, double A)
{
    x = fabs(x);
    if (x <= 1)
        return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2)
        return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0;
}

static int s_infer_resize(s_ctx_t *c, nn_step_t *s, rf_nn_tensor_t *const *in,
                          rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0];
    const rf_nn_tensor_t *roi = s->nin > 1 ? in[1] : NULL, *sc = s->nin > 2 ? in[2] : NULL,
                         *sz = s->nin > 3 ? in[3] : NULL;
    int r = x->ndim, rc;
    const char *mode, *ct, *nm;
    float A, extra;
    int64_t exclude;
    s_attr_str(c, "mode", "nearest", &mode);
    s_attr_str(c, "coordinate_transformation_mode", "half_pixel", &ct);
    s_attr_str(c, "nearest_mode", "round_prefer_floor", &nm);
    s_attr_float(c, "cubic_coeff_a", -0.75f, &A);
    s_attr_float(c, "extrapolation_value", 0.0f, &extra);
    s_attr_int(c, "exclude_outside", 0, &exclude);
    s->extrapolation = extra;
    if (sc && rf_nn_tensor_count(sc) == 0)
        sc = NULL;
    if (sz && rf_nn_tensor_count(sz) == 0)
        sz = NULL;
    if (!!sc == !!sz)
        return FAIL(c, RF_EINVAL, "exactly one of 'scales' and 'sizes' must be given");
    double scale[RF_NN_MAX_DIMS];
    int64_t osz[RF_NN_MAX_DIMS];
    bool crop = !strcmp(ct, "tf_crop_and_resize");
    double roiv[2 * RF_NN_MAX_DIMS];
    for (int i = 0; i < r; i++) {
        roiv[i] = 0;
        roiv[r + i] = 1;
    }
    if (crop) {
        if (!roi || (rc = s_known(c, roi, "roi")))
            return roi ? rc : FAIL(c, RF_EINVAL, "tf_crop_and_resize needs the 'roi' input");
        if (rf_nn_tensor_count(roi) != 2 * r)
            return FAIL(c, RF_EINVAL, "roi has %" PRId64 " values, expected %d",
                        rf_nn_tensor_count(roi), 2 * r);
        for (int i = 0; i < 2 * r; i++)
            roiv[i] = ((const float *)roi->data)[i];
    }
    if (sc) {
        if ((rc = s_known(c, sc, "scales")))
            return rc;
        if (rf_nn_tensor_count(sc) != r)
            return FAIL(c, RF_EINVAL, "scales has %" PRId64 " values, X has rank %d",
                        rf_nn_tensor_count(sc), r);
        for (int i = 0; i < r; i++) {
            float f = ((const float *)sc->data)[i];
            if (!(f > 0) || f > 1e6f)
                return FAIL(c, RF_EINVAL, "scales[%d] = %g must be positive", i, (double)f);
            scale[i] = f;
            double len = crop ? (double)x->dims[i] * (roiv[r + i] - roiv[i]) : (double)x->dims[i];
            osz[i] = (int64_t)floor(len * (double)f);
        }
    } else {
        if ((rc = s_known(c, sz, "sizes")))
            return rc;
        if (rf_nn_tensor_count(sz) != r)
            return FAIL(c, RF_EINVAL, "sizes has %" PRId64 " values, X has rank %d",
                        rf_nn_tensor_count(sz), r);
        for (int i = 0; i < r; i++) {
            osz[i] = ((const int64_t *)sz->data)[i];
            if (osz[i] < 1 || osz[i] > NN_MAX_ELEMENTS)
                return FAIL(c, RF_EINVAL, "sizes[%d] = %" PRId64 " is out of range", i, osz[i]);
            if (x->dims[i] < 1)
                return FAIL(c, RF_EINVAL, "input dim %d is empty", i);
            scale[i] = (double)osz[i] / (double)x->dims[i];
        }
    }
    s_out_shape(out[0], RF_NN_FLOAT, r, osz);
    if ((rc = s_check_count(c, out[0])))
        return rc;
    int mode_id = !strcmp(mode, "nearest") ? 0 : !strcmp(mode, "linear") ? 1 : 2;
    int ntap = mode_id == 0 ? 2 : mode_id == 1 ? 2 : 4;
    for (int a = 0; a < r; a++) {
        nn_resize_axis_t *ax = &s->rz[a];
        int64_t O = osz[a], IN = x->dims[a];
        if (IN < 1)
            return FAIL(c, RF_EINVAL, "input dim %d is empty", a);
        ax->out = O;
        ax->ntap = ntap;
        ax->idx = malloc((size_t)(O * ntap) * sizeof(int64_t));
        ax->w = malloc((size_t)(O * ntap) * sizeof(float));
        ax->outside = calloc((size_t)O, 1);
        ax->nlive = calloc((size_t)O, 1);
        if (!ax->idx || !ax->w || !ax->outside || !ax->nlive)
            return FAIL(c, RF_ENOMEM, "out of memory");
        double sf = scale[a], owidth = sf * (double)IN;
        for (int64_t o = 0; o < O; o++) {
            double xo = (double)o, xi;
            if (!strcmp(ct, "align_corners"))
                xi = owidth == 1 ? 0 : xo * (double)(IN - 1) / (owidth - 1);
            else if (!strcmp(ct, "asymmetric"))
                xi = xo / sf;
            else if (crop) {
                if (owidth == 1)
                    xi = (roiv[r + a] - roiv[a]) * (double)(IN - 1) / 2;
                else
                    xi = xo * (roiv[r + a] - roiv[a]) * (double)(IN - 1) / (owidth - 1);
                xi += roiv[a] * (double)(IN - 1);
                if (xi < 0 || xi > (double)(IN - 1))
                    ax->outside[o] = 1;
            } else if (!strcmp(ct, "pytorch_half_pixel"))
                xi = owidth == 1 ? -0.5 : (xo + 0.5) / sf - 0.5;
            else if (!strcmp(ct, "tf_half_pixel_for_nn"))
                xi = (xo + 0.5) / sf;
            else
                xi = (xo + 0.5) / sf - 0.5;
            /* The reference's neighbour window: base and ratio in (0, 1]. */
            double fl = floor(xi);
            int64_t base = (int64_t)fl;
            double ratio = xi - fl;
            if (ratio == 0) {
                base -= 1;
                ratio = 1;
            }
            double coef[4];
            if (mode_id == 0) {
                bool hi;
                if (ratio == 1)
                    hi = true;
                else if (!strcmp(nm, "round_prefer_floor"))
                    hi = ratio > 0.5;
                else if (!strcmp(nm, "round_prefer_ceil"))
                    hi = ratio >= 0.5;
                else if (!strcmp(nm, "floor"))
                    hi = false;
                else
                    hi = true;
                coef[0] = hi ? 0 : 1;
                coef[1] = hi ? 1 : 0;
            } else if (mode_id == 1) {
                coef[0] = 1 - ratio;
                coef[1] = ratio;
            } else {
                coef[0] = s_cubic(ratio + 1, A);
                coef[1] = s_cubic(ratio, A);
                coef[2] = s_cubic(1 - ratio, A);
                coef[3] = s_cubic(2 - ratio, A);
            }
            /* Window start in the edge-padded input, kept inside the padding. */
            int64_t pad = (ntap + 1) / 2;
            int64_t start = base - ntap / 2 + 1;
            if (start < -pad)
                start = -pad;
            if (start > IN + pad - ntap)
                start = IN + pad - ntap;
            double sum = 0;
            for (int t = 0; t < ntap; t++) {
                int64_t idx = start + t;
                if (exclude && (idx < 0 || idx >= IN))
                    coef[t] = 0;
                sum += coef[t];
            }
            /* Live (non-zero) taps first, in order: nearest keeps one, linear at most two. */
            int live = 0;
            for (int pass = 0; pass < 2; pass++)
                for (int t = 0; t < ntap; t++) {
                    float wt = (float)(exclude && sum != 0 ? coef[t] / sum : coef[t]);
                    if ((wt != 0) != (pass == 0))
                        continue;
                    int64_t idx = start + t;
                    idx = idx < 0 ? 0 : idx >= IN ? IN - 1 : idx;
                    ax->idx[o * ntap + live] = idx;
                    ax->w[o * ntap + live] = wt;
                    live++;
                }
            for (int t = 0; t < ntap; t++)
                ax->nlive[o] += ax->w[o * ntap + t] != 0;
        }
    }
    return 0;
}

static int64_t s_int_at(const rf_nn_tensor_t *t, int64_t i)
{
    return t->dtype == RF_NN_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

/* Axes from an attribute (older versions) or a plan-time-known input; normalized against rank r
 * and checked for repeats. *n = -1 when none are given. */
static int s_axes(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in, int r, int64_t *axes,
                  int *n)
{
    *n = -1;
    if (s->node->version < 13) {
        const int64_t *v;
        size_t nv;
        s_attr_ints(c, "axes", &v, &nv);
        if (!nn_attr_find(s->node, "axes"))
            return 0;
        if (nv > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "too many axes");
        for (size_t i = 0; i < nv; i++)
            axes[i] = v[i];
        *n = (int)nv;
    } else if (s->nin > 1 && in[1]) {
        int rc = s_known(c, in[1], "axes");
        if (rc)
            return rc;
        int64_t nv = rf_nn_tensor_count(in[1]);
        if (nv > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "too many axes");
        for (int64_t i = 0; i < nv; i++)
            axes[i] = s_int_at(in[1], i);
        *n = (int)nv;
    } else {
        return 0;
    }
    for (int i = 0; i < *n; i++) {
        if (axes[i] < -r || axes[i] >= r)
            return FAIL(c, RF_EINVAL, "axis %" PRId64 " is out of range for rank %d", axes[i], r);
        if (axes[i] < 0)
            axes[i] += r;
        for (int k = 0; k < i; k++)
            if (axes[k] == axes[i])
                return FAIL(c, RF_EINVAL, "axis %" PRId64 " is given twice", axes[i]);
    }
    return 0;
}

static int s_infer_glue(s_ctx_t *c, nn_step_t *s, rf_nn_tensor_t *const *in,
                        rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0];
    int r = x->ndim, rc;
    int64_t d[RF_NN_MAX_DIMS];
    switch (s->op) {
    case NN_SHAPE: {
        int64_t start = 0, end = r;
        s_attr_int(c, "start", 0, &start);
        if (nn_attr_find(s->node, "end"))
            s_attr_int(c, "end", r, &end);
        start = start < 0 ? start + r : start;
        end = end < 0 ? end + r : end;
        start = start < 0 ? 0 : start > r ? r : start;
        end = end < 0 ? 0 : end > r ? r : end;
        s->axis = start;
        d[0] = end > start ? end - start : 0;
        return s_out_shape(out[0], RF_NN_INT64, 1, d);
    }
    case NN_CONSTANT_OF_SHAPE: {
        if ((rc = s_known(c, x, "shape")))
            return rc;
        int64_t n = rf_nn_tensor_count(x);
        if (x->ndim != 1 || n > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "'shape' must be a vector of at most %d dims",
                        RF_NN_MAX_DIMS);
        for (int64_t i = 0; i < n; i++) {
            d[i] = ((const int64_t *)x->data)[i];
            if (d[i] < 0)
                return FAIL(c, RF_EINVAL, "shape[%" PRId64 "] = %" PRId64 " is negative", i, d[i]);
        }
        const nn_attr_t *v = nn_attr_find(s->node, "value");
        s->fill = 0;
        if (v)
            memcpy(&s->fill, v->t->data, nn_dtype_size(v->t->dtype));
        return s_out_shape(out[0], v ? (int)v->t->dtype : RF_NN_FLOAT, (int)n, d);
    }
    case NN_RESHAPE: {
        const rf_nn_tensor_t *sh = in[1];
        if ((rc = s_known(c, sh, "shape")))
            return rc;
        int64_t n = rf_nn_tensor_count(sh), allowzero = 0, prod = 1, neg = -1;
        s_attr_int(c, "allowzero", 0, &allowzero);
        if (sh->ndim != 1 || n > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "'shape' must be a vector of at most %d dims",
                        RF_NN_MAX_DIMS);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = ((const int64_t *)sh->data)[i];
            if (v == 0 && !allowzero) {
                if (i >= r)
                    return FAIL(c, RF_EINVAL, "shape[%" PRId64 "] = 0 copies a dim X lacks", i);
                v = x->dims[i];
            }
            if (v == -1) {
                if (neg >= 0)
                    return FAIL(c, RF_EINVAL, "'shape' has more than one -1");
                neg = i;
                continue;
            }
            if (v < 0)
                return FAIL(c, RF_EINVAL, "shape[%" PRId64 "] = %" PRId64 " is invalid", i, v);
            d[i] = v;
            if (v && prod > NN_MAX_ELEMENTS / v)
                return FAIL(c, RF_ETOOBIG, "shape too large");
            prod *= v;
        }
        int64_t total = rf_nn_tensor_count(x);
        if (neg >= 0) {
            if (prod == 0 || total % prod)
                return FAIL(c, RF_EINVAL,
                            "cannot infer the -1 dim: %" PRId64 " elements into blocks of %" PRId64,
                            total, prod);
            d[neg] = total / prod;
        } else if (prod != total) {
            return FAIL(c, RF_EINVAL, "'shape' has %" PRId64 " elements, X has %" PRId64, prod,
                        total);
        }
        return s_out_shape(out[0], x->dtype, (int)n, d);
    }
    case NN_SLICE: {
        const rf_nn_tensor_t *st = in[1], *en = in[2];
        const rf_nn_tensor_t *ax = s->nin > 3 ? in[3] : NULL, *sp = s->nin > 4 ? in[4] : NULL;
        const rf_nn_tensor_t *known[] = {st, en, ax, sp};
        static const char *const what[] = {"starts", "ends", "axes", "steps"};
        for (int k = 0; k < 4; k++)
            if (known[k] && (rc = s_known(c, known[k], what[k])))
                return rc;
        int64_t n = rf_nn_tensor_count(st);
        if (rf_nn_tensor_count(en) != n || (ax && rf_nn_tensor_count(ax) != n) ||
            (sp && rf_nn_tensor_count(sp) != n) || n > r)
            return FAIL(c, RF_EINVAL,
                        "starts, ends, axes and steps must have the same length "
                        "(at most the rank)");
        bool seen[RF_NN_MAX_DIMS] = {false};
        for (int i = 0; i < r; i++) {
            s->pads[i] = 0;
            s->pads[r + i] = 1;
            d[i] = x->dims[i];
        }
        for (int64_t k = 0; k < n; k++) {
            int64_t a = ax ? s_int_at(ax, k) : k;
            if (a < -r || a >= r)
                return FAIL(c, RF_EINVAL, "axes[%" PRId64 "] = %" PRId64 " is out of range", k, a);
            a = a < 0 ? a + r : a;
            if (seen[a])
                return FAIL(c, RF_EINVAL, "axis %" PRId64 " is sliced twice", a);
            seen[a] = true;
            int64_t step = sp ? s_int_at(sp, k) : 1, dim = x->dims[a];
            int64_t b = s_int_at(st, k), e = s_int_at(en, k), len;
            if (step == 0 || step == INT64_MIN)
                return FAIL(c, RF_EINVAL, "steps[%" PRId64 "] = %" PRId64 " is invalid", k, step);
            if (b < 0)
                b = b < -dim ? 0 : b + dim;
            if (e < 0)
                e = e < -dim ? -1 : e + dim;
            if (step > 0) {
                b = b > dim ? dim : b;
                e = e < 0 ? 0 : e > dim ? dim : e;
                len = e > b ? (e - b - 1) / step + 1 : 0;
            } else {
                b = b > dim - 1 ? dim - 1 : b;
                e = e > dim - 1 ? dim - 1 : e;
                len = b > e ? (b - e - 1) / (-step) + 1 : 0;
            }
            if (dim == 0)
                len = 0;
            s->pads[a] = b;
            s->pads[r + a] = step;
            d[a] = len;
        }
        return s_out_shape(out[0], x->dtype, r, d);
    }
    case NN_TRANSPOSE: {
        const int64_t *perm;
        size_t np;
        s_attr_ints(c, "perm", &perm, &np);
        if (nn_attr_find(s->node, "perm") && np != (size_t)r)
            return FAIL(c, RF_EINVAL, "'perm' has %zu entries, X has rank %d", np, r);
        bool seen[RF_NN_MAX_DIMS] = {false};
        for (int i = 0; i < r; i++) {
            int64_t p = np ? perm[i] : r - 1 - i;
            if (p < 0 || p >= r || seen[p])
                return FAIL(c, RF_EINVAL, "'perm' is not a permutation of 0..%d", r - 1);
            seen[p] = true;
            s->perm[i] = p;
            d[i] = x->dims[p];
        }
        return s_out_shape(out[0], x->dtype, r, d);
    }
    case NN_CAST: {
        int64_t to;
        s_attr_int(c, "to", 1, &to);
        if (!nn_dtype_size(x->dtype))
            return FAIL(c, RF_EINVAL, "input type %s is not supported", nn_dtype_name(x->dtype));
        return s_out_shape(out[0], (int)to, r, x->dims);
    }
    case NN_GATHER: {
        const rf_nn_tensor_t *ix = in[1];
        int64_t axis;
        s_attr_int(c, "axis", 0, &axis);
        if (r < 1 || axis < -r || axis >= r)
            return FAIL(c, RF_EINVAL, "axis %" PRId64 " is out of range for rank %d", axis, r);
        axis = axis < 0 ? axis + r : axis;
        s->axis = axis;
        int q = ix->ndim, k = 0;
        if (r - 1 + q > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "the output would have more than %d dims", RF_NN_MAX_DIMS);
        for (int i = 0; i < axis; i++)
            d[k++] = x->dims[i];
        for (int i = 0; i < q; i++)
            d[k++] = ix->dims[i];
        for (int i = (int)axis + 1; i < r; i++)
            d[k++] = x->dims[i];
        return s_out_shape(out[0], x->dtype, k, d);
    }
    case NN_UNSQUEEZE: {
        int64_t axes[RF_NN_MAX_DIMS];
        int n, ro;
        const rf_nn_tensor_t *ax = s->node->version >= 13 ? in[1] : NULL;
        n = s->node->version >= 13
                ? (int)rf_nn_tensor_count(ax)
                : (int)(nn_attr_find(s->node, "axes") ? nn_attr_find(s->node, "axes")->n : 0);
        ro = r + n;
        if (ro > RF_NN_MAX_DIMS)
            return FAIL(c, RF_EINVAL, "the output would have more than %d dims", RF_NN_MAX_DIMS);
        if ((rc = s_axes(c, s, in, ro, axes, &n)))
            return rc;
        bool ins[RF_NN_MAX_DIMS] = {false};
        for (int i = 0; i < n; i++)
            ins[axes[i]] = true;
        for (int i = 0, k = 0; i < ro; i++)
            d[i] = ins[i] ? 1 : x->dims[k++];
        return s_out_shape(out[0], x->dtype, ro, d);
    }
    case NN_SQUEEZE: {
        int64_t axes[RF_NN_MAX_DIMS];
        int n, k = 0;
        if ((rc = s_axes(c, s, in, r, axes, &n)))
            return rc;
        bool drop[RF_NN_MAX_DIMS] = {false};
        if (n < 0) {
            for (int i = 0; i < r; i++)
                drop[i] = x->dims[i] == 1;
        } else {
            for (int i = 0; i < n; i++) {
                if (x->dims[axes[i]] != 1)
                    return FAIL(c, RF_EINVAL, "axis %" PRId64 " has size %" PRId64 ", not 1",
                                axes[i], x->dims[axes[i]]);
                drop[axes[i]] = true;
            }
        }
        for (int i = 0; i < r; i++)
            if (!drop[i])
                d[k++] = x->dims[i];
        return s_out_shape(out[0], x->dtype, k, d);
    }
    default:
        return FAIL(c, RF_EINVAL, "op not implemented");
    }
}

int nn_infer(nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out, rf_err_t *err)
{
    s_ctx_t c;
    s_ctx_init(&c, s->node, err);
    const rf_nn_tensor_t *x = s->nin ? in[0] : NULL;
    int rc = 0;
    s->scratch_bytes = 0;
    for (int k = 0; k < s->nin; k++)
        if (in[k] && in[k]->ndim < 0)
            return FAIL(&c, RF_EINVAL, "input %d ('%s') has no known shape", k, in[k]->name);
    switch (s->op) {
    case NN_CONV:
    case NN_CONV_TRANSPOSE:
        return s_infer_conv(&c, s, in, out);
    case NN_BATCH_NORM:
    case NN_INSTANCE_NORM: {
        float eps;
        s_attr_float(&c, "epsilon", 1e-5f, &eps);
        s->eps = eps;
        if (x->ndim < 2)
            return FAIL(&c, RF_EINVAL, "input must have rank >= 2 (N, C, ...)");
        int np = s->op == NN_BATCH_NORM ? 5 : 3;
        for (int k = 1; k < np; k++)
            if (in[k]->ndim != 1 || in[k]->dims[0] != x->dims[1])
                return FAIL(&c, RF_EINVAL,
                            "input %d ('%s') must be a vector of %" PRId64 " values (one per "
                            "channel)",
                            k, in[k]->name, x->dims[1]);
        return s_out_shape(out[0], x->dtype, x->ndim, x->dims);
    }
    case NN_LEAKY_RELU:
        s_attr_float(&c, "alpha", 0.01f, &s->alpha);
        return s_out_shape(out[0], x->dtype, x->ndim, x->dims);
    case NN_RELU:
    case NN_SIGMOID:
    case NN_TANH:
    case NN_IDENTITY:
        return s_out_shape(out[0], x->dtype, x->ndim, x->dims);
    case NN_CLIP:
        if (s->node->version == 6) {
            s_attr_float(&c, "min", -FLT_MAX, &s->alpha);
            s_attr_float(&c, "max", FLT_MAX, &s->beta);
        }
        for (int k = 1; k < s->nin; k++)
            if (in[k] && rf_nn_tensor_count(in[k]) != 1)
                return FAIL(&c, RF_EINVAL, "'%s' must be a scalar", k == 1 ? "min" : "max");
        return s_out_shape(out[0], x->dtype, x->ndim, x->dims);
    case NN_PRELU:
    case NN_ADD:
    case NN_SUB:
    case NN_MUL:
    case NN_DIV: {
        /* Opset 6 broadcast B into A from an axis (Add-6 family: broadcast=1, axis; PRelu-6: a
         * vector slope of C values is per channel): append 1s to B's dims, then the numpy rule
         * applies one way. */
        rf_nn_tensor_t b = *in[1];
        const rf_nn_tensor_t *a = in[0];
        bool legacy = s->node->version == 6;
        s->b_trailing_ones = 0;
        if (legacy && s->op == NN_PRELU) {
            if (b.ndim == 1 && a->ndim > 2 && b.dims[0] > 1 && b.dims[0] == a->dims[1])
                s->b_trailing_ones = a->ndim - 2;
        } else if (legacy) {
            int64_t bc, axis;
            s_attr_int(&c, "broadcast", 0, &bc);
            s_attr_int(&c, "axis", a->ndim - b.ndim, &axis);
            if (!bc) {
                if (a->ndim != b.ndim || memcmp(a->dims, b.dims, sizeof(int64_t) * (size_t)a->ndim))
                    return FAIL(&c, RF_EINVAL, "shapes differ and broadcast is 0");
            } else {
                axis = axis < 0 ? axis + a->ndim : axis;
                if (axis < 0 || axis > a->ndim - b.ndim)
                    return FAIL(&c, RF_EINVAL,
                                "B (rank %d) does not fit into A (rank %d) at axis %" PRId64,
                                b.ndim, a->ndim, axis);
                s->b_trailing_ones = (int)(a->ndim - axis - b.ndim);
            }
        }
        for (int i = 0; i < s->b_trailing_ones; i++)
            b.dims[b.ndim++] = 1;
        if ((rc = s_infer_broadcast(&c, a, &b, out[0], s->op == NN_PRELU || legacy)))
            return rc;
        return s_check_count(&c, out[0]);
    }
    case NN_CONCAT: {
        int64_t axis;
        s_attr_int(&c, "axis", 0, &axis);
        int r = x->ndim;
        if (axis < -r || axis >= r)
            return FAIL(&c, RF_EINVAL, "axis %" PRId64 " is out of range for rank %d", axis, r);
        if (axis < 0)
            axis += r;
        s->axis = axis;
        int64_t d[RF_NN_MAX_DIMS];
        memcpy(d, x->dims, sizeof(d));
        d[axis] = 0;
        for (int k = 0; k < s->nin; k++) {
            if (in[k]->ndim != r || in[k]->dtype != x->dtype)
                return FAIL(&c, RF_EINVAL, "input %d ('%s') differs in rank or type", k,
                            in[k]->name);
            for (int i = 0; i < r; i++)
                if (i != axis && in[k]->dims[i] != x->dims[i])
                    return FAIL(&c, RF_EINVAL,
                                "input %d ('%s') has dim %d = %" PRId64 ", expected %" PRId64, k,
                                in[k]->name, i, in[k]->dims[i], x->dims[i]);
            d[axis] += in[k]->dims[axis];
        }
        s_out_shape(out[0], x->dtype, r, d);
        return s_check_count(&c, out[0]);
    }
    case NN_PAD: {
        const char *mode;
        s_attr_str(&c, "mode", "constant", &mode);
        s->mode = !strcmp(mode, "constant")  ? 0
                  : !strcmp(mode, "reflect") ? 1
                  : !strcmp(mode, "edge")    ? 2
                                             : 3;
        int r = x->ndim;
        int64_t pads[2 * RF_NN_MAX_DIMS] = {0};
        if (s->node->version == 2) {
            const int64_t *p;
            size_t np;
            s_attr_ints(&c, "pads", &p, &np);
            if (np != 2 * (size_t)r)
                return FAIL(&c, RF_EINVAL, "'pads' has %zu values, expected %d", np, 2 * r);
            memcpy(pads, p, np * sizeof(int64_t));
            s_attr_float(&c, "value", 0.0f, &s->pad_value);
        } else {
            const rf_nn_tensor_t *p = in[1];
            if ((rc = s_known(&c, p, "pads")))
                return rc;
            int64_t np = rf_nn_tensor_count(p);
            const rf_nn_tensor_t *axes = s->nin > 3 ? in[3] : NULL;
            int64_t axv[RF_NN_MAX_DIMS];
            int nax = r;
            for (int i = 0; i < r; i++)
                axv[i] = i;
            if (axes) {
                if ((rc = s_known(&c, axes, "axes")))
                    return rc;
                if (rf_nn_tensor_count(axes) > r)
                    return FAIL(&c, RF_EINVAL, "too many axes");
                nax = (int)rf_nn_tensor_count(axes);
                for (int i = 0; i < nax; i++) {
                    int64_t a = ((const int64_t *)axes->data)[i];
                    if (a < -r || a >= r)
                        return FAIL(&c, RF_EINVAL, "axes[%d] = %" PRId64 " is out of range", i, a);
                    axv[i] = a < 0 ? a + r : a;
                }
            }
            if (np != 2 * nax)
                return FAIL(&c, RF_EINVAL, "'pads' has %" PRId64 " values, expected %d", np,
                            2 * nax);
            for (int i = 0; i < nax; i++) {
                pads[axv[i]] = ((const int64_t *)p->data)[i];
                pads[r + axv[i]] = ((const int64_t *)p->data)[nax + i];
            }
            if (s->nin > 2 && in[2] && rf_nn_tensor_count(in[2]) != 1)
                return FAIL(&c, RF_EINVAL, "'constant_value' must be a scalar");
        }
        int64_t d[RF_NN_MAX_DIMS];
        for (int i = 0; i < r; i++) {
            if (pads[i] > NN_MAX_ELEMENTS || pads[r + i] > NN_MAX_ELEMENTS ||
                pads[i] < -NN_MAX_ELEMENTS || pads[r + i] < -NN_MAX_ELEMENTS)
                return FAIL(&c, RF_EINVAL, "pads for axis %d are out of range", i);
            d[i] = x->dims[i] + pads[i] + pads[r + i];
            if (s->mode && x->dims[i] == 0 && d[i] > 0)
                return FAIL(&c, RF_EINVAL, "mode '%s' cannot pad the empty axis %d", mode, i);
        }
        memcpy(s->pads, pads, sizeof(pads));
        s_out_shape(out[0], x->dtype, r, d);
        return s_check_count(&c, out[0]);
    }
    case NN_RESIZE:
        return s_infer_resize(&c, s, in, out);
    case NN_DEPTH_TO_SPACE:
    case NN_SPACE_TO_DEPTH: {
        const char *mode;
        s_attr_int(&c, "blocksize", 1, &s->block);
        s_attr_str(&c, "mode", "DCR", &mode);
        s->mode = !strcmp(mode, "CRD");
        if (x->ndim != 4)
            return FAIL(&c, RF_EINVAL, "input must be 4-D (N, C, H, W), has rank %d", x->ndim);
        int64_t b = s->block, d[4] = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
        if (s->op == NN_DEPTH_TO_SPACE) {
            if (d[1] % (b * b))
                return FAIL(&c, RF_EINVAL,
                            "%" PRId64 " channels are not divisible by blocksize^2 = %" PRId64,
                            d[1], b * b);
            d[1] /= b * b;
            d[2] *= b;
            d[3] *= b;
        } else {
            if (d[2] % b || d[3] % b)
                return FAIL(&c, RF_EINVAL,
                            "height %" PRId64 " and width %" PRId64
                            " must be divisible by blocksize %" PRId64,
                            d[2], d[3], b);
            d[1] *= b * b;
            d[2] /= b;
            d[3] /= b;
        }
        s_out_shape(out[0], x->dtype, 4, d);
        return s_check_count(&c, out[0]);
    }
    case NN_SHAPE:
    case NN_CONSTANT_OF_SHAPE:
    case NN_RESHAPE:
    case NN_SLICE:
    case NN_TRANSPOSE:
    case NN_CAST:
    case NN_GATHER:
    case NN_UNSQUEEZE:
    case NN_SQUEEZE:
        if ((rc = s_infer_glue(&c, s, in, out)))
            return rc;
        return s_check_count(&c, out[0]);
    case NN_CONSTANT: {
        const nn_attr_t *a = &s->node->attrs[0];
        if (a->type == NN_ATTR_TENSOR)
            return s_out_shape(out[0], a->t->dtype, a->t->ndim, a->t->dims);
        int64_t n = (int64_t)a->n;
        if (a->type == NN_ATTR_FLOAT || a->type == NN_ATTR_INT)
            return s_out_shape(out[0], a->type == NN_ATTR_FLOAT ? RF_NN_FLOAT : RF_NN_INT64, 0,
                               NULL);
        return s_out_shape(out[0], a->type == NN_ATTR_FLOATS ? RF_NN_FLOAT : RF_NN_INT64, 1, &n);
    }
    default:
        return FAIL(&c, RF_EINVAL, "op not implemented");
    }
}

void nn_step_release(nn_step_t *s)
{
    for (int a = 0; a < RF_NN_MAX_DIMS; a++) {
        free(s->rz[a].idx);
        free(s->rz[a].w);
        free(s->rz[a].outside);
        free(s->rz[a].nlive);
        memset(&s->rz[a], 0, sizeof(s->rz[a]));
    }
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* Bias and activation over one output channel's plane. */
static void s_epilogue(const nn_step_t *s, float *y, int64_t n, float bias, int64_t channel)
{
    switch (s->act) {
    case NN_ACT_NONE:
        if (bias != 0)
            for (int64_t i = 0; i < n; i++)
                y[i] += bias;
        break;
    case NN_ACT_RELU:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + bias;
            y[i] = v > 0 ? v : 0;
        }
        break;
    case NN_ACT_LEAKY:
    case NN_ACT_PRELU: {
        float a =
            s->act == NN_ACT_LEAKY ? s->act_a : s->act_slope[s->act_slope_n == 1 ? 0 : channel];
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + bias;
            y[i] = v < 0 ? v * a : v;
        }
        break;
    }
    case NN_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-(y[i] + bias)));
        break;
    case NN_ACT_TANH:
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(y[i] + bias);
        break;
    case NN_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + bias;
            y[i] = v < s->act_a ? s->act_a : v > s->act_b ? s->act_b : v;
        }
        break;
    }
}

/* floor(a / b) for b > 0. */
static int64_t s_floordiv(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* Columns [p0, p0 + pc) of the im2col matrix of one group's channels. x points at the group's
 * first channel; rows are (c, kd, kh, kw). Each row is filled one output row (od, oh) at a time:
 * zeros where the input row is padding, else the run of output columns whose input column lies
 * inside the input (a memcpy at stride 1) between the zeros of the left and right padding. */
static void s_im2col(const nn_step_t *s, const float *x, int64_t cg, int64_t p0, int64_t pc,
                     float *col)
{
    const int64_t ID = s->isp[0], IH = s->isp[1], IW = s->isp[2];
    const int64_t OH = s->osp[1], OW = s->osp[2], st = s->st[2];
    int64_t row = 0;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kd = 0; kd < s->k[0]; kd++)
            for (int64_t kh = 0; kh < s->k[1]; kh++)
                for (int64_t kw = 0; kw < s->k[2]; kw++, row++) {
                    float *dst = col + row * pc;
                    const float *src = x + c * ID * IH * IW;
                    const int64_t off = kw * s->dil[2] - s->pb[2]; /* iw = ow * st + off */
                    /* output columns whose iw lies in [0, IW) */
                    const int64_t lo = -s_floordiv(off, st), hi = s_floordiv(IW - 1 - off, st);
                    for (int64_t j = 0; j < pc;) {
                        const int64_t p = p0 + j, ow0 = p % OW, oh = (p / OW) % OH,
                                      od = p / (OH * OW);
                        const int64_t len = OW - ow0 < pc - j ? OW - ow0 : pc - j;
                        const int64_t id = od * s->st[0] - s->pb[0] + kd * s->dil[0];
                        const int64_t ih = oh * s->st[1] - s->pb[1] + kh * s->dil[1];
                        float *d = dst + j;
                        if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                            memset(d, 0, (size_t)len * sizeof(float));
                        } else {
                            /* inside: output columns [a, b) of this segment [ow0, ow0 + len) */
                            const float *srow = src + (id * IH + ih) * IW;
                            const int64_t e = ow0 + len;
                            int64_t a = lo > ow0 ? lo : ow0, b = hi + 1 < e ? hi + 1 : e;
                            if (b < a)
                                a = b = e;
                            memset(d, 0, (size_t)(a - ow0) * sizeof(float));
                            if (st == 1 && b > a)
                                memcpy(d + (a - ow0), srow + a + off,
                                       (size_t)(b - a) * sizeof(float));
                            else
                                for (int64_t ow = a; ow < b; ow++)
                                    d[ow - ow0] = srow[ow * st + off];
                            memset(d + (b - ow0), 0, (size_t)(e - b) * sizeof(float));
                        }
                        j += len;
                    }
                }
}

static int s_conv(const nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out,
                  float *col)
{
    const float *x = in[0]->data, *w = in[1]->data;
    const float *b = s->nin > 2 && in[2] ? in[2]->data : NULL;
    float *y = out[0]->data;
    const int64_t N = in[0]->dims[0], C = in[0]->dims[1], M = out[0]->dims[1], G = s->group;
    const int64_t cg = C / G, mg = M / G, K = s->k[0] * s->k[1] * s->k[2], rows = cg * K;
    const int64_t IP = s->isp[0] * s->isp[1] * s->isp[2], P = s->osp[0] * s->osp[1] * s->osp[2];
    const bool direct = !s->scratch_bytes;
    const int64_t tile = direct ? P : (int64_t)(s->scratch_bytes / sizeof(float) / (size_t)rows);
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (n * C + g * cg) * IP;
            const float *wg = w + g * mg * rows;
            float *yg = y + (n * M + g * mg) * P;
            for (int64_t p0 = 0; p0 < P; p0 += tile) {
                int64_t pc = P - p0 < tile ? P - p0 : tile;
                const float *B = xg + p0;
                int ldb = (int)P;
                if (!direct) {
                    s_im2col(s, xg, cg, p0, pc, col);
                    B = col;
                    ldb = (int)pc;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)pc, (int)rows,
                            1.0f, wg, (int)rows, B, ldb, 0.0f, yg + p0, (int)P);
            }
            for (int64_t m = 0; m < mg; m++)
                s_epilogue(s, yg + m * P, P, b ? b[g * mg + m] : 0.0f, g * mg + m);
        }
    return 0;
}

static int s_conv_transpose(const nn_step_t *s, rf_nn_tensor_t *const *in,
                            rf_nn_tensor_t *const *out, float *col)
{
    const float *x = in[0]->data, *w = in[1]->data;
    const float *b = s->nin > 2 && in[2] ? in[2]->data : NULL;
    float *y = out[0]->data;
    const int64_t N = in[0]->dims[0], C = in[0]->dims[1], M = out[0]->dims[1], G = s->group;
    const int64_t cg = C / G, mg = M / G, K = s->k[0] * s->k[1] * s->k[2], rows = mg * K;
    const int64_t ID = s->isp[0], IH = s->isp[1], IW = s->isp[2], IP = ID * IH * IW;
    const int64_t OD = s->osp[0], OH = s->osp[1], OW = s->osp[2], P = OD * OH * OW;
    const int64_t tile = (int64_t)(s->scratch_bytes / sizeof(float) / (size_t)rows);
    memset(y, 0, (size_t)(N * M * P) * sizeof(float));
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            const float *xg = x + (n * C + g * cg) * IP;
            const float *wg = w + g * cg * rows;
            float *yg = y + (n * M + g * mg) * P;
            for (int64_t p0 = 0; p0 < IP; p0 += tile) {
                int64_t pc = IP - p0 < tile ? IP - p0 : tile;
                /* col (rows x pc) = W_g^T (rows x cg) * X_g (cg x pc) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)pc, (int)cg,
                            1.0f, wg, (int)rows, xg + p0, (int)IP, 0.0f, col, (int)pc);
                /* col2im: scatter-add every column entry into the output. */
                int64_t row = 0;
                for (int64_t m = 0; m < mg; m++)
                    for (int64_t kd = 0; kd < s->k[0]; kd++)
                        for (int64_t kh = 0; kh < s->k[1]; kh++)
                            for (int64_t kw = 0; kw < s->k[2]; kw++, row++) {
                                const float *src = col + row * pc;
                                float *dst = yg + m * P;
                                int64_t p = p0;
                                int64_t id = p / (IH * IW), ih = (p / IW) % IH, iw = p % IW;
                                for (int64_t j = 0; j < pc; j++) {
                                    int64_t od = id * s->st[0] - s->pb[0] + kd * s->dil[0];
                                    int64_t oh = ih * s->st[1] - s->pb[1] + kh * s->dil[1];
                                    int64_t ow = iw * s->st[2] - s->pb[2] + kw * s->dil[2];
                                    if (od >= 0 && od < OD && oh >= 0 && oh < OH && ow >= 0 &&
                                        ow < OW)
                                        dst[(od * OH + oh) * OW + ow] += src[j];
                                    if (++iw == IW) {
                                        iw = 0;
                                        if (++ih == IH) {
                                            ih = 0;
                                            id++;
                                        }
                                    }
                                }
                            }
            }
            for (int64_t m = 0; m < mg; m++)
                s_epilogue(s, yg + m * P, P, b ? b[g * mg + m] : 0.0f, g * mg + m);
        }
    return 0;
}

static void s_norm(const nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out)
{
    const float *x = in[0]->data, *scale = in[1]->data, *bias = in[2]->data;
    float *y = out[0]->data;
    const int64_t N = in[0]->dims[0], C = in[0]->dims[1];
    int64_t P = 1;
    for (int i = 2; i < in[0]->ndim; i++)
        P *= in[0]->dims[i];
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            const float *xp = x + (n * C + c) * P;
            float *yp = y + (n * C + c) * P;
            double mean, var;
            if (s->op == NN_BATCH_NORM) {
                mean = ((const float *)in[3]->data)[c];
                var = ((const float *)in[4]->data)[c];
            } else {
                double sum = 0, sq = 0;
                for (int64_t i = 0; i < P; i++)
                    sum += xp[i];
                mean = P ? sum / (double)P : 0;
                for (int64_t i = 0; i < P; i++) {
                    double d = xp[i] - mean;
                    sq += d * d;
                }
                var = P ? sq / (double)P : 0;
            }
            float a = (float)((double)scale[c] / sqrt(var + s->eps));
            float bb = (float)((double)bias[c] - mean * (double)a);
            for (int64_t i = 0; i < P; i++)
                yp[i] = xp[i] * a + bb;
        }
}

/* Broadcast element-wise binary ops, one instantiation per type. The innermost dim runs as a
 * tight loop with each side's stride 0 or 1. */
typedef struct s_bcast {
    int r;
    int64_t d[RF_NN_MAX_DIMS], sa[RF_NN_MAX_DIMS], sb[RF_NN_MAX_DIMS];
} s_bcast_t;

void nn_bcast_strides(const rf_nn_tensor_t *a, const rf_nn_tensor_t *b, const rf_nn_tensor_t *o,
                      int *r, int64_t *d, int64_t *sa, int64_t *sb)
{
    *r = o->ndim;
    int64_t ma = 1, mb = 1;
    for (int i = o->ndim - 1; i >= 0; i--) {
        int ia = i - (o->ndim - a->ndim), ib = i - (o->ndim - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        d[i] = o->dims[i];
        sa[i] = da == 1 ? 0 : ma;
        sb[i] = db == 1 ? 0 : mb;
        ma *= da;
        mb *= db;
    }
    if (*r == 0) { /* scalars: one element */
        *r = 1;
        d[0] = 1;
        sa[0] = sb[0] = 0;
    }
}

static void s_bcast_init(s_bcast_t *bc, const rf_nn_tensor_t *a, const rf_nn_tensor_t *b,
                         const rf_nn_tensor_t *o)
{
    nn_bcast_strides(a, b, o, &bc->r, bc->d, bc->sa, bc->sb);
}

enum { S_ADD, S_SUB, S_MUL, S_DIV, S_PRELU };

#define S_BINARY(NAME, T)                                                                          \
    static int NAME(const s_bcast_t *bc, const T *a, const T *b, T *o, int op, int integer)        \
    {                                                                                              \
        int r = bc->r;                                                                             \
        int64_t idx[RF_NN_MAX_DIMS] = {0}, n = bc->d[r - 1], sa = bc->sa[r - 1],                   \
                sb = bc->sb[r - 1];                                                                \
        int64_t outer = 1;                                                                         \
        for (int i = 0; i < r - 1; i++)                                                            \
            outer *= bc->d[i];                                                                     \
        for (int64_t q = 0; q < outer; q++) {                                                      \
            int64_t oa = 0, ob = 0;                                                                \
            for (int i = 0; i < r - 1; i++) {                                                      \
                oa += idx[i] * bc->sa[i];                                                          \
                ob += idx[i] * bc->sb[i];                                                          \
            }                                                                                      \
            const T *pa = a + oa, *pb = b + ob;                                                    \
            T *po = o + q * n;                                                                     \
            switch (op) {                                                                          \
            case S_ADD:                                                                            \
                for (int64_t j = 0; j < n; j++)                                                    \
                    po[j] = (T)(pa[j * sa] + pb[j * sb]);                                          \
                break;                                                                             \
            case S_SUB:                                                                            \
                for (int64_t j = 0; j < n; j++)                                                    \
                    po[j] = (T)(pa[j * sa] - pb[j * sb]);                                          \
                break;                                                                             \
            case S_MUL:                                                                            \
                for (int64_t j = 0; j < n; j++)                                                    \
                    po[j] = (T)(pa[j * sa] * pb[j * sb]);                                          \
                break;                                                                             \
            case S_DIV:                                                                            \
                if (integer)                                                                       \
                    for (int64_t j = 0; j < n; j++)                                                \
                        if (pb[j * sb] == 0)                                                       \
                            return -1;                                                             \
                for (int64_t j = 0; j < n; j++)                                                    \
                    po[j] = (T)(pa[j * sa] / pb[j * sb]);                                          \
                break;                                                                             \
            default:                                                                               \
                for (int64_t j = 0; j < n; j++)                                                    \
                    po[j] = pa[j * sa] < 0 ? (T)(pa[j * sa] * pb[j * sb]) : pa[j * sa];            \
            }                                                                                      \
            for (int i = r - 2; i >= 0; i--) {                                                     \
                if (++idx[i] < bc->d[i])                                                           \
                    break;                                                                         \
                idx[i] = 0;                                                                        \
            }                                                                                      \
        }                                                                                          \
        return 0;                                                                                  \
    }

S_BINARY(s_bin_f32, float)
S_BINARY(s_bin_f64, double)
S_BINARY(s_bin_i32, int32_t)
S_BINARY(s_bin_i64, int64_t)
S_BINARY(s_bin_u8, uint8_t)
S_BINARY(s_bin_i8, int8_t)

static int s_binary(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in,
                    rf_nn_tensor_t *const *out)
{
    int op = s->op == NN_ADD   ? S_ADD
             : s->op == NN_SUB ? S_SUB
             : s->op == NN_MUL ? S_MUL
             : s->op == NN_DIV ? S_DIV
                               : S_PRELU;
    const rf_nn_tensor_t *a = in[0], *o = out[0];
    rf_nn_tensor_t bview = *in[1];
    for (int i = 0; i < s->b_trailing_ones; i++)
        bview.dims[bview.ndim++] = 1;
    const rf_nn_tensor_t *b = &bview;
    int rc = 0;
    if (rf_nn_tensor_count(o) == 0)
        return 0;
    s_bcast_t bc;
    s_bcast_init(&bc, a, b, o);
    switch (a->dtype) {
    case RF_NN_FLOAT:
        rc = s_bin_f32(&bc, a->data, b->data, o->data, op, 0);
        break;
    case RF_NN_DOUBLE:
        rc = s_bin_f64(&bc, a->data, b->data, o->data, op, 0);
        break;
    case RF_NN_INT32:
        rc = s_bin_i32(&bc, a->data, b->data, o->data, op, 1);
        break;
    case RF_NN_INT64:
        rc = s_bin_i64(&bc, a->data, b->data, o->data, op, 1);
        break;
    case RF_NN_UINT8:
        rc = s_bin_u8(&bc, a->data, b->data, o->data, op, 1);
        break;
    case RF_NN_INT8:
        rc = s_bin_i8(&bc, a->data, b->data, o->data, op, 1);
        break;
    default:
        return FAIL(c, RF_EINVAL, "type %s is not supported", nn_dtype_name(a->dtype));
    }
    if (rc)
        return FAIL(c, RF_EINVAL, "integer division by zero");
    return 0;
}

#define S_CLIP(NAME, T)                                                                            \
    static void NAME(const T *x, T *y, int64_t n, const T *lo, const T *hi)                        \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = x[i];                                                                            \
            if (lo && v < *lo)                                                                     \
                v = *lo;                                                                           \
            if (hi && v > *hi)                                                                     \
                v = *hi;                                                                           \
            y[i] = v;                                                                              \
        }                                                                                          \
    }
S_CLIP(s_clip_f32, float)
S_CLIP(s_clip_f64, double)
S_CLIP(s_clip_i32, int32_t)
S_CLIP(s_clip_i64, int64_t)
S_CLIP(s_clip_u8, uint8_t)
S_CLIP(s_clip_i8, int8_t)

static int s_clip(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in,
                  rf_nn_tensor_t *const *out)
{
    int64_t n = rf_nn_tensor_count(in[0]);
    if (s->node->version == 6) {
        s_clip_f32(in[0]->data, out[0]->data, n, &s->alpha, &s->beta);
        return 0;
    }
    const void *lo = s->nin > 1 && in[1] ? in[1]->data : NULL;
    const void *hi = s->nin > 2 && in[2] ? in[2]->data : NULL;
    switch (in[0]->dtype) {
    case RF_NN_FLOAT:
        s_clip_f32(in[0]->data, out[0]->data, n, lo, hi);
        break;
    case RF_NN_DOUBLE:
        s_clip_f64(in[0]->data, out[0]->data, n, lo, hi);
        break;
    case RF_NN_INT32:
        s_clip_i32(in[0]->data, out[0]->data, n, lo, hi);
        break;
    case RF_NN_INT64:
        s_clip_i64(in[0]->data, out[0]->data, n, lo, hi);
        break;
    case RF_NN_UINT8:
        s_clip_u8(in[0]->data, out[0]->data, n, lo, hi);
        break;
    case RF_NN_INT8:
        s_clip_i8(in[0]->data, out[0]->data, n, lo, hi);
        break;
    default:
        return FAIL(c, RF_EINVAL, "type %s is not supported", nn_dtype_name(in[0]->dtype));
    }
    return 0;
}

/* Pad: every output row (innermost axis) either maps to an input row or is all constant; along
 * each axis an output index maps to an input index, or -1 (constant). */
static int64_t s_pad_map(int mode, int64_t o, int64_t pb, int64_t n)
{
    int64_t i = o - pb;
    if (i >= 0 && i < n)
        return i;
    switch (mode) {
    case 1: { /* reflect, repeated for pads wider than the axis (numpy's rule) */
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        i %= period;
        if (i < 0)
            i += period;
        return i >= n ? period - i : i;
    }
    case 2:
        return i < 0 ? 0 : n - 1;
    case 3:
        i %= n;
        return i < 0 ? i + n : i;
    default:
        return -1;
    }
}

#define S_PAD_ROW(T)                                                                               \
    do {                                                                                           \
        T *dst = (T *)yo;                                                                          \
        const T *src = (const T *)xi;                                                              \
        T cv = *(const T *)cval;                                                                   \
        if (!src) {                                                                                \
            for (int64_t j = 0; j < ow; j++)                                                       \
                dst[j] = cv;                                                                       \
        } else {                                                                                   \
            for (int64_t j = 0; j < ow; j++)                                                       \
                dst[j] = map[j] >= 0 ? src[map[j]] : cv;                                           \
        }                                                                                          \
    } while (0)

static int s_pad(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in,
                 rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0], *y = out[0];
    int r = x->ndim;
    size_t es = nn_dtype_size(x->dtype);
    uint64_t cbuf = 0;
    const void *cval = &cbuf;
    if (s->node->version == 2)
        memcpy(&cbuf, &s->pad_value, sizeof(float));
    else if (s->nin > 2 && in[2])
        memcpy(&cbuf, in[2]->data, es);
    if (rf_nn_tensor_count(y) == 0)
        return 0;
    if (r == 0) {
        memcpy(y->data, x->data, es);
        return 0;
    }
    int64_t ow = y->dims[r - 1];
    int64_t *map = malloc((size_t)ow * sizeof(int64_t));
    if (!map)
        return FAIL(c, RF_ENOMEM, "out of memory");
    for (int64_t j = 0; j < ow; j++)
        map[j] = s_pad_map(s->mode, j, s->pads[r - 1], x->dims[r - 1]);
    int64_t idx[RF_NN_MAX_DIMS] = {0}, rows = 1, xs[RF_NN_MAX_DIMS];
    for (int i = 0; i < r - 1; i++)
        rows *= y->dims[i];
    xs[r - 1] = 1;
    for (int i = r - 2; i >= 0; i--)
        xs[i] = xs[i + 1] * x->dims[i + 1];
    for (int64_t q = 0; q < rows; q++) {
        const char *xi = x->data;
        for (int i = 0; i < r - 1 && xi; i++) {
            int64_t m = s_pad_map(s->mode, idx[i], s->pads[i], x->dims[i]);
            xi = m < 0 ? NULL : xi + (size_t)(m * xs[i]) * es;
        }
        char *yo = (char *)y->data + (size_t)(q * ow) * es;
        switch (es) {
        case 1:
            S_PAD_ROW(uint8_t);
            break;
        case 2:
            S_PAD_ROW(uint16_t);
            break;
        case 4:
            S_PAD_ROW(uint32_t);
            break;
        default:
            S_PAD_ROW(uint64_t);
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < y->dims[i])
                break;
            idx[i] = 0;
        }
    }
    free(map);
    return 0;
}

static int s_resize(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in,
                    rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0], *y = out[0];
    const float *xd = x->data;
    float *yd = y->data;
    int r = x->ndim;
    int64_t xs[RF_NN_MAX_DIMS];
    xs[r - 1] = 1;
    for (int i = r - 2; i >= 0; i--)
        xs[i] = xs[i + 1] * x->dims[i + 1];
    /* Only live taps are visited: nearest has one per axis, linear at most two. */
    int64_t total = rf_nn_tensor_count(y), idx[RF_NN_MAX_DIMS] = {0};
    for (int64_t q = 0; q < total; q++) {
        bool outside = false;
        for (int a = 0; a < r; a++)
            outside |= s->rz[a].outside[idx[a]] != 0;
        if (outside) {
            yd[q] = s->extrapolation;
        } else {
            /* Odometer over every axis's taps. */
            int t[RF_NN_MAX_DIMS] = {0};
            double acc = 0;
            for (;;) {
                double w = 1;
                int64_t off = 0;
                for (int a = 0; a < r; a++) {
                    const nn_resize_axis_t *ax = &s->rz[a];
                    int64_t k = idx[a] * ax->ntap + t[a];
                    w *= ax->w[k];
                    off += ax->idx[k] * xs[a];
                }
                acc += w * xd[off];
                int a = r - 1;
                for (; a >= 0; a--) {
                    if (++t[a] < s->rz[a].nlive[idx[a]])
                        break;
                    t[a] = 0;
                }
                if (a < 0)
                    break;
            }
            yd[q] = (float)acc;
        }
        for (int a = r - 1; a >= 0; a--) {
            if (++idx[a] < y->dims[a])
                break;
            idx[a] = 0;
        }
    }
    (void)c;
    return 0;
}

/* DepthToSpace and SpaceToDepth are one index map read in opposite directions. In the depth
 * layout (N, C, H, W), block position (i, j) of output channel co is channel
 * ci = (i * b + j) * oc + co for DCR (and SpaceToDepth) and ci = co * b * b + i * b + j for CRD. */
#define S_D2S(T)                                                                                   \
    do {                                                                                           \
        const T *from = in[0]->data;                                                               \
        T *to = out[0]->data;                                                                      \
        for (int64_t n = 0; n < N; n++)                                                            \
            for (int64_t ci = 0; ci < C; ci++)                                                     \
                for (int64_t h = 0; h < H; h++)                                                    \
                    for (int64_t w = 0; w < W; w++) {                                              \
                        int64_t co, i, j;                                                          \
                        if (!crd) {                                                                \
                            i = ci / (b * oc);                                                     \
                            j = (ci / oc) % b;                                                     \
                            co = ci % oc;                                                          \
                        } else {                                                                   \
                            co = ci / (b * b);                                                     \
                            i = (ci / b) % b;                                                      \
                            j = ci % b;                                                            \
                        }                                                                          \
                        int64_t dpos = ((n * C + ci) * H + h) * W + w;                             \
                        int64_t spos = ((n * oc + co) * H * b + h * b + i) * W * b + w * b + j;    \
                        if (d2s)                                                                   \
                            to[spos] = from[dpos];                                                 \
                        else                                                                       \
                            to[dpos] = from[spos];                                                 \
                    }                                                                              \
    } while (0)

static void s_depth_space(const nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out)
{
    const bool d2s = s->op == NN_DEPTH_TO_SPACE;
    const rf_nn_tensor_t *depth = d2s ? in[0] : out[0];
    const int64_t b = s->block, N = depth->dims[0], C = depth->dims[1], H = depth->dims[2],
                  W = depth->dims[3], oc = C / (b * b);
    const bool crd = d2s && s->mode == 1;
    switch (nn_dtype_size(in[0]->dtype)) {
    case 1:
        S_D2S(uint8_t);
        break;
    case 2:
        S_D2S(uint16_t);
        break;
    case 4:
        S_D2S(uint32_t);
        break;
    default:
        S_D2S(uint64_t);
    }
}

/* Copies an output of dims odims from src, where output axis a advances the source by
 * istride[a] elements from base: Slice and Transpose. */
#define S_STRIDED_ROW(T)                                                                           \
    do {                                                                                           \
        const T *sp = (const T *)src + off;                                                        \
        T *dp = (T *)dst + q * inner;                                                              \
        for (int64_t j = 0; j < inner; j++)                                                        \
            dp[j] = sp[j * is];                                                                    \
    } while (0)

static void s_strided_copy(const void *src, void *dst, size_t es, int r, const int64_t *odims,
                           const int64_t *istride, int64_t base)
{
    int64_t total = 1;
    for (int i = 0; i < r; i++)
        total *= odims[i];
    if (total == 0)
        return;
    if (r == 0) {
        memcpy(dst, (const char *)src + (size_t)base * es, es);
        return;
    }
    int64_t inner = odims[r - 1], is = istride[r - 1], rows = total / inner;
    int64_t idx[RF_NN_MAX_DIMS] = {0};
    for (int64_t q = 0; q < rows; q++) {
        int64_t off = base;
        for (int i = 0; i < r - 1; i++)
            off += idx[i] * istride[i];
        switch (es) {
        case 1:
            S_STRIDED_ROW(uint8_t);
            break;
        case 2:
            S_STRIDED_ROW(uint16_t);
            break;
        case 4:
            S_STRIDED_ROW(uint32_t);
            break;
        default:
            S_STRIDED_ROW(uint64_t);
        }
        for (int i = r - 2; i >= 0; i--) {
            if (++idx[i] < odims[i])
                break;
            idx[i] = 0;
        }
    }
}

/* IEEE half <-> float, round to nearest even. */
static float s_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (!man) {
            bits = sign;
        } else { /* subnormal: normalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static uint16_t s_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof(x));
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff)
        return sign | 0x7c00 | (man ? 0x200 : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10)
            return sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, which is right */
    return sign | (uint16_t)half;
}

/* Cast: every pair of supported types. Integers convert through int64 (exact), the rest through
 * double; float to integer truncates toward zero (C's rule); bool is value != 0. */
static void s_cast(const rf_nn_tensor_t *x, rf_nn_tensor_t *y)
{
    int64_t n = rf_nn_tensor_count(x);
    bool src_int = x->dtype != RF_NN_FLOAT && x->dtype != RF_NN_DOUBLE && x->dtype != RF_NN_FLOAT16;
    for (int64_t i = 0; i < n; i++) {
        double dv = 0;
        int64_t iv = 0;
        switch (x->dtype) {
        case RF_NN_FLOAT:
            dv = ((const float *)x->data)[i];
            break;
        case RF_NN_DOUBLE:
            dv = ((const double *)x->data)[i];
            break;
        case RF_NN_FLOAT16:
            dv = s_half_to_float(((const uint16_t *)x->data)[i]);
            break;
        case RF_NN_INT64:
            iv = ((const int64_t *)x->data)[i];
            break;
        case RF_NN_INT32:
            iv = ((const int32_t *)x->data)[i];
            break;
        case RF_NN_INT8:
            iv = ((const int8_t *)x->data)[i];
            break;
        default: /* uint8, bool */
            iv = ((const uint8_t *)x->data)[i];
        }
        if (src_int)
            dv = (double)iv;
        else
            iv = isfinite(dv) && fabs(dv) < 9.2e18 ? (int64_t)dv : 0;
        switch (y->dtype) {
        case RF_NN_FLOAT:
            ((float *)y->data)[i] = (float)dv;
            break;
        case RF_NN_DOUBLE:
            ((double *)y->data)[i] = dv;
            break;
        case RF_NN_FLOAT16:
            ((uint16_t *)y->data)[i] = s_float_to_half((float)dv);
            break;
        case RF_NN_INT64:
            ((int64_t *)y->data)[i] = iv;
            break;
        case RF_NN_INT32:
            ((int32_t *)y->data)[i] = (int32_t)iv;
            break;
        case RF_NN_INT8:
            ((int8_t *)y->data)[i] = (int8_t)iv;
            break;
        case RF_NN_BOOL:
            ((uint8_t *)y->data)[i] = src_int ? iv != 0 : dv != 0;
            break;
        default:
            ((uint8_t *)y->data)[i] = (uint8_t)iv;
        }
    }
}

static int s_glue(s_ctx_t *c, const nn_step_t *s, rf_nn_tensor_t *const *in,
                  rf_nn_tensor_t *const *out)
{
    const rf_nn_tensor_t *x = in[0], *y = out[0];
    size_t es = nn_dtype_size(y->dtype);
    int64_t n = rf_nn_tensor_count(y);
    switch (s->op) {
    case NN_SHAPE:
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)y->data)[i] = x->dims[s->axis + i];
        return 0;
    case NN_CONSTANT_OF_SHAPE: {
        for (int64_t i = 0; i < n; i++)
            memcpy((char *)y->data + (size_t)i * es, &s->fill, es); /* little-endian */
        return 0;
    }
    case NN_RESHAPE:
    case NN_UNSQUEEZE:
    case NN_SQUEEZE:
        if (n && y->data != x->data)
            memcpy(y->data, x->data, (size_t)n * es);
        return 0;
    case NN_SLICE:
    case NN_TRANSPOSE: {
        int r = x->ndim;
        int64_t xs[RF_NN_MAX_DIMS], stride[RF_NN_MAX_DIMS], base = 0;
        if (r)
            xs[r - 1] = 1;
        for (int i = r - 2; i >= 0; i--)
            xs[i] = xs[i + 1] * x->dims[i + 1];
        for (int i = 0; i < r; i++) {
            if (s->op == NN_SLICE) {
                stride[i] = xs[i] * s->pads[r + i];
                base += s->pads[i] * xs[i];
            } else {
                stride[i] = xs[s->perm[i]];
            }
        }
        s_strided_copy(x->data, y->data, es, r, y->dims, stride, base);
        return 0;
    }
    case NN_CAST:
        s_cast(x, out[0]);
        return 0;
    case NN_GATHER: {
        const rf_nn_tensor_t *ix = in[1];
        int64_t outer = 1, inner = 1, N = x->dims[s->axis], nidx = rf_nn_tensor_count(ix);
        for (int i = 0; i < s->axis; i++)
            outer *= x->dims[i];
        for (int i = (int)s->axis + 1; i < x->ndim; i++)
            inner *= x->dims[i];
        size_t block = (size_t)inner * es;
        char *dst = y->data;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t k = 0; k < nidx; k++) {
                int64_t i = s_int_at(ix, k);
                if (i < -N || i >= N)
                    return FAIL(c, RF_EINVAL,
                                "index %" PRId64 " is out of range for a dim of %" PRId64, i, N);
                i = i < 0 ? i + N : i;
                if (block)
                    memcpy(dst, (const char *)x->data + (size_t)(o * N + i) * block, block);
                dst += block;
            }
        return 0;
    }
    default:
        return FAIL(c, RF_EINVAL, "op not implemented");
    }
}

int nn_kernel(const nn_step_t *s, rf_nn_tensor_t *const *in, rf_nn_tensor_t *const *out,
              void *scratch, rf_err_t *err)
{
    s_ctx_t c;
    s_ctx_init(&c, s->node, err);
    const rf_nn_tensor_t *x = s->nin ? in[0] : NULL;
    int64_t n = x ? rf_nn_tensor_count(x) : 0;
    switch (s->op) {
    case NN_CONV:
        return s_conv(s, in, out, scratch);
    case NN_CONV_TRANSPOSE:
        return s_conv_transpose(s, in, out, scratch);
    case NN_BATCH_NORM:
    case NN_INSTANCE_NORM:
        s_norm(s, in, out);
        return 0;
    case NN_RELU: {
        const float *xp = x->data;
        float *yp = out[0]->data;
        for (int64_t i = 0; i < n; i++)
            yp[i] = xp[i] > 0 ? xp[i] : 0.0f;
        return 0;
    }
    case NN_LEAKY_RELU: {
        const float *xp = x->data;
        float *yp = out[0]->data;
        for (int64_t i = 0; i < n; i++)
            yp[i] = xp[i] < 0 ? xp[i] * s->alpha : xp[i];
        return 0;
    }
    case NN_SIGMOID: {
        const float *xp = x->data;
        float *yp = out[0]->data;
        for (int64_t i = 0; i < n; i++)
            yp[i] = 1.0f / (1.0f + expf(-xp[i]));
        return 0;
    }
    case NN_TANH: {
        const float *xp = x->data;
        float *yp = out[0]->data;
        for (int64_t i = 0; i < n; i++)
            yp[i] = tanhf(xp[i]);
        return 0;
    }
    case NN_CLIP:
        return s_clip(&c, s, in, out);
    case NN_PRELU:
    case NN_ADD:
    case NN_SUB:
    case NN_MUL:
    case NN_DIV:
        return s_binary(&c, s, in, out);
    case NN_CONCAT: {
        const rf_nn_tensor_t *y = out[0];
        size_t es = nn_dtype_size(y->dtype);
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < s->axis; i++)
            outer *= y->dims[i];
        for (int i = (int)s->axis + 1; i < y->ndim; i++)
            inner *= y->dims[i];
        char *dst = y->data;
        for (int64_t o = 0; o < outer; o++)
            for (int k = 0; k < s->nin; k++) {
                size_t len = (size_t)(in[k]->dims[s->axis] * inner) * es;
                if (len)
                    memcpy(dst, (const char *)in[k]->data + (size_t)o * len, len);
                dst += len;
            }
        return 0;
    }
    case NN_PAD:
        return s_pad(&c, s, in, out);
    case NN_RESIZE:
        return s_resize(&c, s, in, out);
    case NN_DEPTH_TO_SPACE:
    case NN_SPACE_TO_DEPTH:
        s_depth_space(s, in, out);
        return 0;
    case NN_CONSTANT: {
        const nn_attr_t *a = &s->node->attrs[0];
        if (a->type == NN_ATTR_TENSOR) {
            if (a->t->bytes)
                memcpy(out[0]->data, a->t->data, a->t->bytes);
        } else if (a->type == NN_ATTR_FLOAT) {
            memcpy(out[0]->data, &a->f, sizeof(float));
        } else if (a->type == NN_ATTR_INT) {
            memcpy(out[0]->data, &a->i, sizeof(int64_t));
        } else if (a->type == NN_ATTR_FLOATS && a->n) {
            memcpy(out[0]->data, a->floats, a->n * sizeof(float));
        } else if (a->n) {
            memcpy(out[0]->data, a->ints, a->n * sizeof(int64_t));
        }
        return 0;
    }
    case NN_SHAPE:
    case NN_CONSTANT_OF_SHAPE:
    case NN_RESHAPE:
    case NN_SLICE:
    case NN_TRANSPOSE:
    case NN_CAST:
    case NN_GATHER:
    case NN_UNSQUEEZE:
    case NN_SQUEEZE:
        return s_glue(&c, s, in, out);
    case NN_IDENTITY: {
        size_t bytes = (size_t)n * nn_dtype_size(x->dtype);
        if (bytes && out[0]->data != x->data)
            memcpy(out[0]->data, x->data, bytes);
        return 0;
    }
    default:
        return FAIL(&c, RF_EINVAL, "op not implemented");
    }
}

void rf_nn_set_cpu_threads(int n)
{
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && *env)
        return;
    openblas_set_num_threads(n < 1 ? 1 : n);
}
