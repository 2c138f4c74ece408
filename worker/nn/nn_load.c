/* nn_load.c - ONNX files into the executor's graph (nn_internal.h), and TensorProto files.
 *
 * The file is parsed with protobuf-c (proto/onnx-subset.proto, ONNX's own field numbers), then
 * copied into plain structs and the protobuf tree freed. Everything the executor cannot honour is
 * refused here, with a message naming the node or tensor: external data, sparse tensors, other
 * op domains, ops outside the set, op versions whose semantics differ from the ones implemented,
 * non-tensor values, cycles, undefined names, negative or huge dims, wrong dtypes.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hash.h"
#include "nn_internal.h"
#include "onnx-subset.pb-c.h"

#define NN_MAX_FILE_BYTES ((size_t)2 << 30) /* protobuf's own 2 GiB limit */

/* ---- op table ----------------------------------------------------------------------------------
 * history: every version ONNX defined for the op (the "since_version"s), so the model's opset
 * resolves to one of them; supported: those whose semantics nn_ops.c implements. */

typedef struct nn_op_info {
    const char *name;
    int history[8];
    int supported[8];
} nn_op_info_t;

static const nn_op_info_t s_ops[NN_OP_COUNT] = {
    [NN_CONV] = {"Conv", {1, 11}, {1, 11}},
    [NN_CONV_TRANSPOSE] = {"ConvTranspose", {1, 11}, {1, 11}},
    [NN_BATCH_NORM] = {"BatchNormalization", {1, 6, 7, 9, 14, 15}, {6, 7, 9, 14, 15}},
    [NN_INSTANCE_NORM] = {"InstanceNormalization", {1, 6}, {6}},
    [NN_RELU] = {"Relu", {1, 6, 13, 14}, {6, 13, 14}},
    [NN_LEAKY_RELU] = {"LeakyRelu", {1, 6, 16}, {6, 16}},
    [NN_PRELU] = {"PRelu", {1, 6, 7, 9, 16}, {6, 7, 9, 16}},
    [NN_SIGMOID] = {"Sigmoid", {1, 6, 13}, {6, 13}},
    [NN_TANH] = {"Tanh", {1, 6, 13}, {6, 13}},
    [NN_CLIP] = {"Clip", {1, 6, 11, 12, 13}, {6, 11, 12, 13}},
    [NN_ADD] = {"Add", {1, 6, 7, 13, 14}, {6, 7, 13, 14}},
    [NN_SUB] = {"Sub", {1, 6, 7, 13, 14}, {6, 7, 13, 14}},
    [NN_MUL] = {"Mul", {1, 6, 7, 13, 14}, {6, 7, 13, 14}},
    [NN_DIV] = {"Div", {1, 6, 7, 13, 14}, {6, 7, 13, 14}},
    [NN_CONCAT] = {"Concat", {1, 4, 11, 13}, {4, 11, 13}},
    [NN_PAD] = {"Pad", {1, 2, 11, 13, 18, 19}, {2, 11, 13, 18, 19}},
    [NN_RESIZE] = {"Resize", {10, 11, 13, 18, 19}, {11, 13}},
    [NN_DEPTH_TO_SPACE] = {"DepthToSpace", {1, 11, 13}, {1, 11, 13}},
    [NN_SPACE_TO_DEPTH] = {"SpaceToDepth", {1, 13}, {1, 13}},
    [NN_CONSTANT] = {"Constant", {1, 9, 11, 12, 13, 19}, {1, 9, 11, 12, 13, 19}},
    [NN_IDENTITY] = {"Identity", {1, 13, 14, 16, 19}, {1, 13, 14, 16, 19}},
    [NN_SHAPE] = {"Shape", {1, 13, 15, 19}, {1, 13, 15, 19}},
    [NN_CONSTANT_OF_SHAPE] = {"ConstantOfShape", {9}, {9}},
    [NN_RESHAPE] = {"Reshape", {1, 5, 13, 14, 19}, {5, 13, 14, 19}},
    [NN_SLICE] = {"Slice", {1, 10, 11, 13}, {10, 11, 13}},
    [NN_TRANSPOSE] = {"Transpose", {1, 13}, {1, 13}},
    [NN_CAST] = {"Cast", {1, 6, 9, 13, 19}, {6, 9, 13}},
    [NN_GATHER] = {"Gather", {1, 11, 13}, {1, 11, 13}},
    [NN_UNSQUEEZE] = {"Unsqueeze", {1, 11, 13}, {1, 11, 13}},
    [NN_SQUEEZE] = {"Squeeze", {1, 11, 13}, {1, 11, 13}},
};

const char *nn_op_name(nn_op_t op)
{
    return op < NN_OP_COUNT ? s_ops[op].name : "?";
}

const char *nn_node_desc(const nn_node_t *n, char *buf, size_t size)
{
    snprintf(buf, size, "node %d '%s' (%s)", n->index, n->name, nn_op_name(n->op));
    return buf;
}

const nn_attr_t *nn_attr_find(const nn_node_t *n, const char *name)
{
    for (int i = 0; i < n->nattrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

size_t nn_dtype_size(int dtype)
{
    switch (dtype) {
    case RF_NN_FLOAT:
    case RF_NN_INT32:
        return 4;
    case RF_NN_UINT8:
    case RF_NN_INT8:
    case RF_NN_BOOL:
        return 1;
    case RF_NN_INT64:
    case RF_NN_DOUBLE:
        return 8;
    case RF_NN_FLOAT16:
        return 2;
    default:
        return 0;
    }
}

const char *nn_dtype_name(int dtype)
{
    switch (dtype) {
    case RF_NN_FLOAT:
        return "float";
    case RF_NN_UINT8:
        return "uint8";
    case RF_NN_INT8:
        return "int8";
    case RF_NN_INT32:
        return "int32";
    case RF_NN_INT64:
        return "int64";
    case RF_NN_BOOL:
        return "bool";
    case RF_NN_FLOAT16:
        return "float16";
    case RF_NN_DOUBLE:
        return "double";
    case 4:
        return "uint16";
    case 5:
        return "int16";
    case 8:
        return "string";
    case 12:
        return "uint32";
    case 13:
        return "uint64";
    case 14:
        return "complex64";
    case 15:
        return "complex128";
    case 16:
        return "bfloat16";
    default:
        return "unknown";
    }
}

/* ---- tensors ------------------------------------------------------------------------------- */

int64_t rf_nn_tensor_count(const rf_nn_tensor_t *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->dims[i];
    return n;
}

void rf_nn_tensor_release(rf_nn_tensor_t *t)
{
    if (!t)
        return;
    free(t->data);
    t->data = NULL;
    t->bytes = 0;
}

/* Checks dims (count, sign, element limit); *count gets the product. */
static int s_check_dims(const int64_t *dims, size_t ndim, const char *what, int64_t *count,
                        rf_err_t *err)
{
    if (ndim > RF_NN_MAX_DIMS)
        return rf_err_set(err, RF_EINVAL, "%s: %zu dims (at most %d supported)", what, ndim,
                          RF_NN_MAX_DIMS);
    int64_t n = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return rf_err_set(err, RF_EINVAL, "%s: dim %zu is negative (%" PRId64 ")", what, i,
                              dims[i]);
        if (dims[i] > NN_MAX_ELEMENTS || (dims[i] && n > NN_MAX_ELEMENTS / dims[i]))
            return rf_err_set(err, RF_ETOOBIG,
                              "%s: shape too large (dim %zu = %" PRId64 "; at most %" PRId64
                              " elements per tensor)",
                              what, i, dims[i], NN_MAX_ELEMENTS);
        n *= dims[i];
    }
    *count = n;
    return 0;
}

int nn_tensor_from_proto(const void *proto, rf_nn_tensor_t *t, const char *what, rf_err_t *err)
{
    const Onnx__TensorProto *p = proto;
    memset(t, 0, sizeof(*t));
    if (p->name)
        snprintf(t->name, sizeof(t->name), "%s", p->name);
    if (p->n_external_data ||
        (p->has_data_location && p->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return rf_err_set(err, RF_EINVAL,
                          "%s: tensor data stored in an external file is not supported (save the "
                          "model with its weights inside the .onnx file)",
                          what);
    int dtype = p->has_data_type ? p->data_type : 0;
    size_t esize = nn_dtype_size(dtype);
    if (!esize)
        return rf_err_set(err, RF_EINVAL, "%s: element type %d (%s) is not supported", what, dtype,
                          nn_dtype_name(dtype));
    int64_t count = 0;
    int rc = s_check_dims(p->dims, p->n_dims, what, &count, err);
    if (rc)
        return rc;
    t->dtype = (rf_nn_dtype_t)dtype;
    t->ndim = (int)p->n_dims;
    for (size_t i = 0; i < p->n_dims; i++)
        t->dims[i] = p->dims[i];
    size_t bytes = (size_t)count * esize;
    t->data = malloc(bytes ? bytes : 1);
    if (!t->data)
        return rf_err_set(err, RF_ENOMEM, "%s: out of memory for %zu bytes", what, bytes);
    t->bytes = bytes;
    size_t have = 0;
    const char *field = "raw_data";
    if (p->has_raw_data) {
        have = p->raw_data.len / esize;
        if (p->raw_data.len != bytes)
            goto mismatch_raw;
        if (bytes) /* little-endian on every target we build */
            memcpy(t->data, p->raw_data.data, bytes);
        return 0;
    }
    switch (dtype) {
    case RF_NN_FLOAT:
        field = "float_data";
        have = p->n_float_data;
        if (have == (size_t)count && bytes)
            memcpy(t->data, p->float_data, bytes);
        break;
    case RF_NN_DOUBLE:
        field = "double_data";
        have = p->n_double_data;
        if (have == (size_t)count && bytes)
            memcpy(t->data, p->double_data, bytes);
        break;
    case RF_NN_INT64:
        field = "int64_data";
        have = p->n_int64_data;
        if (have == (size_t)count && bytes)
            memcpy(t->data, p->int64_data, bytes);
        break;
    case RF_NN_INT32:
        field = "int32_data";
        have = p->n_int32_data;
        if (have == (size_t)count && bytes)
            memcpy(t->data, p->int32_data, bytes);
        break;
    default: /* uint8, int8, bool, float16: one int32_data entry per element */
        field = "int32_data";
        have = p->n_int32_data;
        if (have == (size_t)count)
            for (int64_t i = 0; i < count; i++) {
                if (esize == 1)
                    ((uint8_t *)t->data)[i] = (uint8_t)p->int32_data[i];
                else
                    ((uint16_t *)t->data)[i] = (uint16_t)p->int32_data[i];
            }
        break;
    }
    if (have == (size_t)count)
        return 0;
    rf_err_set(err, RF_EINVAL, "%s: shape has %" PRId64 " elements but %s holds %zu", what, count,
               field, have);
    rf_nn_tensor_release(t);
    return err ? err->code : RF_EINVAL;
mismatch_raw:
    rf_err_set(err, RF_EINVAL,
               "%s: shape has %" PRId64 " elements (%zu bytes) but raw_data holds %zu bytes", what,
               count, bytes, p->raw_data.len);
    (void)have;
    rf_nn_tensor_release(t);
    return err ? err->code : RF_EINVAL;
}

/* Reads a whole file (at most limit bytes). */
static int s_read_file(const char *path, size_t limit, uint8_t **out, size_t *len, rf_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return rf_err_set(err, RF_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > limit) {
        fclose(f);
        return rf_err_set(err, RF_ETOOBIG, "%s: %lld bytes (at most %zu)", path,
                          (long long)st.st_size, limit);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return rf_err_set(err, RF_ENOMEM, "%s: out of memory", path);
    }
    size_t got = size ? fread(buf, 1, size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (got != size || bad) {
        free(buf);
        return rf_err_set(err, RF_EIO, "%s: read failed", path);
    }
    *out = buf;
    *len = size;
    return 0;
}

int rf_nn_tensor_read(const char *path, rf_nn_tensor_t *out, rf_err_t *err)
{
    uint8_t *buf;
    size_t len;
    memset(out, 0, sizeof(*out));
    int rc = s_read_file(path, NN_MAX_FILE_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    Onnx__TensorProto *p = onnx__tensor_proto__unpack(NULL, len, buf);
    free(buf);
    if (!p)
        return rf_err_set(err, RF_EINVAL, "%s: not an ONNX TensorProto (protobuf parse failed)",
                          path);
    char what[512];
    snprintf(what, sizeof(what), "%s", path);
    rc = nn_tensor_from_proto(p, out, what, err);
    onnx__tensor_proto__free_unpacked(p, NULL);
    return rc;
}

int rf_nn_tensor_write(const char *path, const rf_nn_tensor_t *t, rf_err_t *err)
{
    size_t esize = nn_dtype_size(t->dtype);
    if (!esize || t->ndim < 0 || t->ndim > RF_NN_MAX_DIMS)
        return rf_err_set(err, RF_EINVAL, "%s: tensor '%s' has an unsupported dtype or rank", path,
                          t->name);
    size_t bytes = (size_t)rf_nn_tensor_count(t) * esize;
    if (t->bytes < bytes || (bytes && !t->data))
        return rf_err_set(err, RF_EINVAL, "%s: tensor '%s' holds %zu bytes, its shape needs %zu",
                          path, t->name, t->bytes, bytes);
    Onnx__TensorProto p = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[RF_NN_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++)
        dims[i] = t->dims[i];
    p.n_dims = (size_t)t->ndim;
    p.dims = dims;
    p.has_data_type = 1;
    p.data_type = t->dtype;
    p.name = (char *)t->name;
    p.has_raw_data = 1;
    p.raw_data.len = bytes;
    p.raw_data.data = t->data;
    size_t size = onnx__tensor_proto__get_packed_size(&p);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return rf_err_set(err, RF_ENOMEM, "%s: out of memory", path);
    onnx__tensor_proto__pack(&p, buf);
    /* Written to a temporary name and renamed: a reader never sees half a tensor. */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        free(buf);
        return rf_err_set(err, RF_EIO, "%s: %s", tmp, strerror(e));
    }
    size_t put = size ? fwrite(buf, 1, size, f) : 0;
    free(buf);
    int bad = fclose(f);
    if (put != size || bad || rename(tmp, path)) {
        int e = errno;
        remove(tmp);
        return rf_err_set(err, RF_EIO, "%s: write failed: %s", path, strerror(e));
    }
    return 0;
}

/* ---- model ------------------------------------------------------------------------------------
 */

void rf_nn_model_free(rf_nn_model_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->nvalues; i++)
        free(m->values[i].t.data);
    for (int i = 0; i < m->nnodes; i++) {
        nn_node_t *n = &m->nodes[i];
        for (int a = 0; a < n->nattrs; a++) {
            free(n->attrs[a].name);
            free(n->attrs[a].s);
            free(n->attrs[a].floats);
            free(n->attrs[a].ints);
            if (n->attrs[a].t) {
                free(n->attrs[a].t->data);
                free(n->attrs[a].t);
            }
        }
        free(n->attrs);
        free(n->in);
        free(n->out);
    }
    free(m->values);
    free(m->nodes);
    free(m->inputs);
    free(m->outputs);
    free(m->in_desc);
    free(m->out_desc);
    free(m);
}

int rf_nn_model_inputs(const rf_nn_model_t *m)
{
    return m->ninputs;
}

int rf_nn_model_outputs(const rf_nn_model_t *m)
{
    return m->noutputs;
}

const rf_nn_tensor_t *rf_nn_model_input(const rf_nn_model_t *m, int i)
{
    return i >= 0 && i < m->ninputs ? &m->in_desc[i] : NULL;
}

const rf_nn_tensor_t *rf_nn_model_output(const rf_nn_model_t *m, int i)
{
    return i >= 0 && i < m->noutputs ? &m->out_desc[i] : NULL;
}

const char *rf_nn_model_sha256(const rf_nn_model_t *m)
{
    return m->sha256;
}

/* Value lookup by name: linear probing over a power-of-two table of indices. */
typedef struct s_names {
    int *slot;
    size_t mask;
    const nn_value_t *values;
} s_names_t;

static uint64_t s_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int s_names_find(const s_names_t *t, const char *name)
{
    for (size_t i = s_hash(name) & t->mask;; i = (i + 1) & t->mask) {
        if (t->slot[i] < 0)
            return -1;
        if (!strcmp(t->values[t->slot[i]].t.name, name))
            return t->slot[i];
    }
}

static void s_names_add(s_names_t *t, const char *name, int v)
{
    size_t i = s_hash(name) & t->mask;
    while (t->slot[i] >= 0)
        i = (i + 1) & t->mask;
    t->slot[i] = v;
}

/* Fills t's dtype and dims from a ValueInfoProto; what names it. */
static int s_value_info(const Onnx__ValueInfoProto *vi, rf_nn_tensor_t *t, const char *what,
                        rf_err_t *err)
{
    const Onnx__TypeProto *type = vi->type;
    if (!type || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !type->tensor_type)
        return rf_err_set(err, RF_EINVAL,
                          "%s '%s': not a tensor (sequences, maps and optional values are not "
                          "supported)",
                          what, t->name);
    const Onnx__TypeProto__Tensor *tt = type->tensor_type;
    int dtype = tt->has_elem_type ? tt->elem_type : 0;
    if (!nn_dtype_size(dtype))
        return rf_err_set(err, RF_EINVAL, "%s '%s': element type %d (%s) is not supported", what,
                          t->name, dtype, nn_dtype_name(dtype));
    t->dtype = (rf_nn_dtype_t)dtype;
    if (!tt->shape) {
        t->ndim = -1;
        return 0;
    }
    if (tt->shape->n_dim > RF_NN_MAX_DIMS)
        return rf_err_set(err, RF_EINVAL, "%s '%s': %zu dims (at most %d supported)", what, t->name,
                          tt->shape->n_dim, RF_NN_MAX_DIMS);
    t->ndim = (int)tt->shape->n_dim;
    for (int i = 0; i < t->ndim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0 || d->dim_value > NN_MAX_ELEMENTS)
                return rf_err_set(err, RF_EINVAL, "%s '%s': dim %d = %" PRId64 " is out of range",
                                  what, t->name, i, d->dim_value);
            t->dims[i] = d->dim_value;
        } else {
            t->dims[i] = -1;
        }
    }
    return 0;
}

static int s_op_lookup(const char *op_type)
{
    for (int i = 0; i < NN_OP_COUNT; i++)
        if (!strcmp(s_ops[i].name, op_type))
            return i;
    return -1;
}

/* The op version that the model's opset selects, or an error naming the node. */
static int s_op_version(nn_node_t *n, int opset, rf_err_t *err)
{
    const nn_op_info_t *info = &s_ops[n->op];
    int v = 0;
    for (int i = 0; i < 8 && info->history[i]; i++)
        if (info->history[i] <= opset)
            v = info->history[i];
    char desc[RF_NN_NAME_MAX + 64];
    nn_node_desc(n, desc, sizeof(desc));
    if (!v)
        return rf_err_set(err, RF_EINVAL, "%s: %s does not exist in opset %d", desc, info->name,
                          opset);
    for (int i = 0; i < 8 && info->supported[i]; i++)
        if (info->supported[i] == v) {
            n->version = v;
            return 0;
        }
    char list[128];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; i < 8 && info->supported[i] && len < sizeof(list); i++) {
        int k = snprintf(list + len, sizeof(list) - len, "%s%d", i ? ", " : "", info->supported[i]);
        len += k > 0 ? (size_t)k : 0;
    }
    return rf_err_set(err, RF_EINVAL,
                      "%s: version %d of %s (selected by opset %d) is not supported (supported "
                      "versions: %s)",
                      desc, v, info->name, opset, list);
}

static int s_copy_attr(const Onnx__AttributeProto *a, nn_attr_t *out, const char *desc,
                       rf_err_t *err)
{
    out->name = strdup(a->name ? a->name : "");
    if (!out->name)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (a->ref_attr_name && *a->ref_attr_name)
        return rf_err_set(err, RF_EINVAL,
                          "%s: attribute '%s' refers to a function attribute (not supported)", desc,
                          out->name);
    int type = a->has_type ? (int)a->type : 0;
    out->type = type;
    switch (type) {
    case NN_ATTR_FLOAT:
        out->f = a->f;
        return 0;
    case NN_ATTR_INT:
        out->i = a->i;
        return 0;
    case NN_ATTR_STRING:
        out->s = malloc(a->s.len + 1);
        if (!out->s)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        if (a->s.len)
            memcpy(out->s, a->s.data, a->s.len);
        out->s[a->s.len] = '\0';
        return 0;
    case NN_ATTR_FLOATS:
    case NN_ATTR_INTS: {
        size_t n = type == NN_ATTR_FLOATS ? a->n_floats : a->n_ints;
        if (n > NN_MAX_ATTR_LIST)
            return rf_err_set(err, RF_EINVAL, "%s: attribute '%s' has %zu entries (at most %d)",
                              desc, out->name, n, NN_MAX_ATTR_LIST);
        out->n = n;
        if (type == NN_ATTR_FLOATS) {
            out->floats = malloc(n ? n * sizeof(float) : 1);
            if (!out->floats)
                return rf_err_set(err, RF_ENOMEM, "out of memory");
            if (n)
                memcpy(out->floats, a->floats, n * sizeof(float));
        } else {
            out->ints = malloc(n ? n * sizeof(int64_t) : 1);
            if (!out->ints)
                return rf_err_set(err, RF_ENOMEM, "out of memory");
            if (n)
                memcpy(out->ints, a->ints, n * sizeof(int64_t));
        }
        return 0;
    }
    case NN_ATTR_TENSOR: {
        if (!a->t)
            return rf_err_set(err, RF_EINVAL, "%s: attribute '%s' has no tensor", desc, out->name);
        out->t = calloc(1, sizeof(*out->t));
        if (!out->t)
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        char what[RF_NN_NAME_MAX + 128];
        snprintf(what, sizeof(what), "%s: attribute '%s'", desc, out->name);
        return nn_tensor_from_proto(a->t, out->t, what, err);
    }
    case 5:
    case 10:
        return rf_err_set(err, RF_EINVAL, "%s: attribute '%s' is a subgraph (not supported)", desc,
                          out->name);
    case 11:
    case 12:
        return rf_err_set(err, RF_EINVAL,
                          "%s: attribute '%s' is a sparse tensor (sparse tensors are not "
                          "supported)",
                          desc, out->name);
    default:
        return rf_err_set(err, RF_EINVAL, "%s: attribute '%s' has type %d, which is not supported",
                          desc, out->name, type);
    }
}

/* Kahn's algorithm over the file's nodes; order gets file indices in topological order. A node
 * left over sits on a cycle (or depends on one). */
static int s_toposort(const Onnx__GraphProto *g, const int **node_in, const int *nin,
                      const int *producer_file, int *order, rf_err_t *err)
{
    int n = (int)g->n_node;
    int *pending = calloc((size_t)n + 1, sizeof(int));
    int *users_count = calloc((size_t)n + 1, sizeof(int));
    int *users_start = calloc((size_t)n + 2, sizeof(int));
    int total = 0;
    for (int i = 0; i < n; i++)
        total += nin[i];
    int *users = calloc((size_t)total + 1, sizeof(int));
    int *fill = calloc((size_t)n + 1, sizeof(int));
    int rc = 0;
    if (!pending || !users_count || !users_start || !users || !fill) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nin[i]; k++) {
            int p = node_in[i][k] >= 0 ? producer_file[node_in[i][k]] : -1;
            if (p >= 0) {
                pending[i]++;
                users_count[p]++;
            }
        }
    for (int i = 0; i < n; i++)
        users_start[i + 1] = users_start[i] + users_count[i];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nin[i]; k++) {
            int p = node_in[i][k] >= 0 ? producer_file[node_in[i][k]] : -1;
            if (p >= 0)
                users[users_start[p] + fill[p]++] = i;
        }
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++)
        if (!pending[i])
            order[tail++] = i;
    while (head < tail) {
        int v = order[head++];
        for (int u = users_start[v]; u < users_start[v + 1]; u++)
            if (--pending[users[u]] == 0)
                order[tail++] = users[u];
    }
    if (tail < n) {
        for (int i = 0; i < n; i++)
            if (pending[i]) {
                const Onnx__NodeProto *np = g->node[i];
                rc = rf_err_set(err, RF_EINVAL,
                                "the graph has a cycle: node %d '%s' (%s) depends on its own "
                                "output",
                                i, np->name && *np->name ? np->name : "", np->op_type);
                break;
            }
    }
out:
    free(pending);
    free(users_count);
    free(users_start);
    free(users);
    free(fill);
    return rc;
}

static int s_load(const Onnx__ModelProto *mp, rf_nn_model_t *m, rf_err_t *err)
{
    const Onnx__GraphProto *g = mp->graph;
    if (!g)
        return rf_err_set(err, RF_EINVAL, "the model has no graph");
    /* Opsets: the default domain must be imported; other domains may be imported but unused. */
    m->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        const char *d = o->domain ? o->domain : "";
        if (!*d || !strcmp(d, "ai.onnx"))
            m->opset = o->has_version ? (int)o->version : 0;
    }
    if (m->opset < 0) {
        if (mp->n_opset_import)
            return rf_err_set(err, RF_EINVAL,
                              "the model imports no opset of the default ONNX "
                              "domain (only other domains)");
        m->opset = 1; /* IR version 1 files predate opset_import */
    }
    if (m->opset < 1 || m->opset > NN_MAX_OPSET)
        return rf_err_set(err, RF_EINVAL,
                          "the model's default-domain opset %d is not supported (1..%d)", m->opset,
                          NN_MAX_OPSET);
    if (g->n_sparse_initializer)
        return rf_err_set(err, RF_EINVAL,
                          "the graph has %zu sparse initializers (sparse tensors are not "
                          "supported); first: '%s'",
                          g->n_sparse_initializer,
                          g->sparse_initializer[0]->values && g->sparse_initializer[0]->values->name
                              ? g->sparse_initializer[0]->values->name
                              : "");
    if (g->n_node > NN_MAX_NODES)
        return rf_err_set(err, RF_ETOOBIG, "the graph has %zu nodes (at most %d)", g->n_node,
                          NN_MAX_NODES);
    size_t maxvalues = g->n_input + g->n_initializer;
    for (size_t i = 0; i < g->n_node; i++) {
        if (g->node[i]->n_input > NN_MAX_NODE_IO || g->node[i]->n_output > NN_MAX_NODE_IO)
            return rf_err_set(err, RF_ETOOBIG, "node %zu: %zu inputs and %zu outputs (at most %d)",
                              i, g->node[i]->n_input, g->node[i]->n_output, NN_MAX_NODE_IO);
        maxvalues += g->node[i]->n_output;
    }
    m->values = calloc(maxvalues + 1, sizeof(nn_value_t));
    size_t cap = 16;
    while (cap < 2 * maxvalues + 2)
        cap *= 2;
    s_names_t names = {calloc(cap, sizeof(int)), cap - 1, m->values};
    int *producer_file = calloc(maxvalues + 1, sizeof(int));
    int **node_in = calloc(g->n_node + 1, sizeof(int *));
    int *nin = calloc(g->n_node + 1, sizeof(int));
    int *order = calloc(g->n_node + 1, sizeof(int));
    nn_node_t *tmp_nodes = calloc(g->n_node + 1, sizeof(nn_node_t));
    int rc = 0;
    char desc[RF_NN_NAME_MAX + 64];
    if (!m->values || !names.slot || !producer_file || !node_in || !nin || !order || !tmp_nodes) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    memset(names.slot, 0xff, cap * sizeof(int));
    /* Initializers, then graph inputs (an input that is also an initializer is a default, not
     * a real input), then node outputs. */
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *tp = g->initializer[i];
        const char *name = tp->name ? tp->name : "";
        char what[RF_NN_NAME_MAX + 32];
        snprintf(what, sizeof(what), "initializer '%s'", name);
        if (!*name || strlen(name) >= RF_NN_NAME_MAX) {
            rc = rf_err_set(err, RF_EINVAL, "initializer %zu: empty or too long name", i);
            goto out;
        }
        if (s_names_find(&names, name) >= 0) {
            rc = rf_err_set(err, RF_EINVAL, "initializer '%s' is defined twice", name);
            goto out;
        }
        nn_value_t *v = &m->values[m->nvalues];
        rc = nn_tensor_from_proto(tp, &v->t, what, err);
        if (rc)
            goto out;
        v->is_init = true;
        v->producer = -1;
        producer_file[m->nvalues] = -1;
        s_names_add(&names, name, m->nvalues++);
    }
    m->inputs = calloc(g->n_input + 1, sizeof(int));
    m->outputs = calloc(g->n_output + 1, sizeof(int));
    if (!m->inputs || !m->outputs) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < g->n_input; i++) {
        const Onnx__ValueInfoProto *vi = g->input[i];
        const char *name = vi->name ? vi->name : "";
        if (!*name || strlen(name) >= RF_NN_NAME_MAX) {
            rc = rf_err_set(err, RF_EINVAL, "graph input %zu: empty or too long name", i);
            goto out;
        }
        int found = s_names_find(&names, name);
        if (found >= 0 && m->values[found].is_input) {
            rc = rf_err_set(err, RF_EINVAL, "graph input '%s' is listed twice", name);
            goto out;
        }
        if (found >= 0)
            continue; /* an initializer with a declared input: a constant here */
        nn_value_t *v = &m->values[m->nvalues];
        snprintf(v->t.name, sizeof(v->t.name), "%s", name);
        rc = s_value_info(vi, &v->t, "graph input", err);
        if (rc)
            goto out;
        if (v->t.ndim < 0) {
            rc = rf_err_set(err, RF_EINVAL,
                            "graph input '%s' has no shape (its rank must be known)", name);
            goto out;
        }
        v->is_input = true;
        v->producer = -1;
        producer_file[m->nvalues] = -1;
        m->inputs[m->ninputs++] = m->nvalues;
        s_names_add(&names, name, m->nvalues++);
    }
    /* Nodes: ops, attributes, outputs. */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *np = g->node[i];
        nn_node_t *n = &tmp_nodes[i];
        n->index = (int)i;
        const char *op_type = np->op_type ? np->op_type : "";
        snprintf(n->name, sizeof(n->name), "%s", np->name && *np->name ? np->name : op_type);
        const char *domain = np->domain ? np->domain : "";
        if (*domain && strcmp(domain, "ai.onnx")) {
            rc = rf_err_set(err, RF_EINVAL,
                            "node %zu '%s' (%s): op domain '%s' is not supported (only the default "
                            "ONNX domain)",
                            i, n->name, op_type, domain);
            goto out;
        }
        int op = s_op_lookup(op_type);
        if (op < 0) {
            rc =
                rf_err_set(err, RF_EINVAL,
                           "node %zu '%s': op '%s' is not supported (see docs/models.md for the op "
                           "set)",
                           i, n->name, op_type);
            goto out;
        }
        n->op = (nn_op_t)op;
        nn_node_desc(n, desc, sizeof(desc));
        rc = s_op_version(n, m->opset, err);
        if (rc)
            goto out;
        n->attrs = calloc(np->n_attribute + 1, sizeof(nn_attr_t));
        n->out = calloc(np->n_output + 1, sizeof(int));
        n->in = calloc(np->n_input + 1, sizeof(int));
        if (!n->attrs || !n->out || !n->in) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto out;
        }
        for (size_t a = 0; a < np->n_attribute; a++) {
            n->nattrs++;
            rc = s_copy_attr(np->attribute[a], &n->attrs[a], desc, err);
            if (rc)
                goto out;
            for (size_t b = 0; b < a; b++)
                if (!strcmp(n->attrs[b].name, n->attrs[a].name)) {
                    rc = rf_err_set(err, RF_EINVAL, "%s: attribute '%s' given twice", desc,
                                    n->attrs[a].name);
                    goto out;
                }
        }
        for (size_t k = 0; k < np->n_output; k++) {
            const char *name = np->output[k];
            n->out[n->nout++] = -1;
            if (!*name)
                continue; /* an optional output left out */
            if (strlen(name) >= RF_NN_NAME_MAX) {
                rc = rf_err_set(err, RF_EINVAL, "%s: output name too long", desc);
                goto out;
            }
            if (s_names_find(&names, name) >= 0) {
                rc = rf_err_set(err, RF_EINVAL,
                                "%s: output '%s' is already defined (by an input, initializer or "
                                "another node)",
                                desc, name);
                goto out;
            }
            nn_value_t *v = &m->values[m->nvalues];
            snprintf(v->t.name, sizeof(v->t.name), "%s", name);
            v->t.ndim = -1;
            producer_file[m->nvalues] = (int)i;
            n->out[k] = m->nvalues;
            s_names_add(&names, name, m->nvalues++);
        }
    }
    /* Inputs by name, now that every value exists. */
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *np = g->node[i];
        nn_node_t *n = &tmp_nodes[i];
        for (size_t k = 0; k < np->n_input; k++) {
            const char *name = np->input[k];
            int v = -1;
            if (*name) {
                v = s_names_find(&names, name);
                if (v < 0) {
                    rc = rf_err_set(err, RF_EINVAL,
                                    "%s: input '%s' is not a graph input, an initializer or any "
                                    "node's output",
                                    nn_node_desc(n, desc, sizeof(desc)), name);
                    goto out;
                }
            }
            n->in[n->nin++] = v;
        }
        node_in[i] = n->in;
        nin[i] = n->nin;
    }
    rc = s_toposort(g, (const int **)node_in, nin, producer_file, order, err);
    if (rc)
        goto out;
    m->nodes = calloc(g->n_node + 1, sizeof(nn_node_t));
    if (!m->nodes) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < g->n_node; i++) {
        m->nodes[i] = tmp_nodes[order[i]];
        memset(&tmp_nodes[order[i]], 0, sizeof(nn_node_t));
        m->nnodes++;
        for (int k = 0; k < m->nodes[i].nout; k++)
            if (m->nodes[i].out[k] >= 0)
                m->values[m->nodes[i].out[k]].producer = (int)i;
    }
    /* Dtype propagation and attribute checks, node by node in order. */
    for (int i = 0; i < m->nnodes; i++) {
        rc = nn_node_check(m, &m->nodes[i], err);
        if (rc)
            goto out;
    }
    /* Graph outputs. */
    if (!g->n_output) {
        rc = rf_err_set(err, RF_EINVAL, "the graph has no outputs");
        goto out;
    }
    for (size_t i = 0; i < g->n_output; i++) {
        const Onnx__ValueInfoProto *vi = g->output[i];
        const char *name = vi->name ? vi->name : "";
        int v = s_names_find(&names, name);
        if (v < 0) {
            rc = rf_err_set(err, RF_EINVAL, "graph output '%s' is not produced by any node", name);
            goto out;
        }
        rf_nn_tensor_t declared = {0};
        snprintf(declared.name, sizeof(declared.name), "%s", name);
        if (vi->type) {
            rc = s_value_info(vi, &declared, "graph output", err);
            if (rc)
                goto out;
            if (m->values[v].t.dtype && declared.dtype != m->values[v].t.dtype) {
                rc = rf_err_set(err, RF_EINVAL,
                                "graph output '%s' is declared %s but computed as %s", name,
                                nn_dtype_name(declared.dtype), nn_dtype_name(m->values[v].t.dtype));
                goto out;
            }
        }
        m->outputs[m->noutputs++] = v;
    }
    m->in_desc = calloc((size_t)m->ninputs + 1, sizeof(rf_nn_tensor_t));
    m->out_desc = calloc((size_t)m->noutputs + 1, sizeof(rf_nn_tensor_t));
    if (!m->in_desc || !m->out_desc) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < m->ninputs; i++) {
        m->in_desc[i] = m->values[m->inputs[i]].t;
        m->in_desc[i].data = NULL;
        m->in_desc[i].bytes = 0;
    }
    for (int i = 0; i < m->noutputs; i++) {
        rf_nn_tensor_t *d = &m->out_desc[i];
        *d = m->values[m->outputs[i]].t;
        d->data = NULL;
        d->bytes = 0;
        /* Shapes are known for sure only once a plan exists; the declared ones are a hint. */
        const Onnx__ValueInfoProto *vi = g->output[i];
        rf_nn_tensor_t declared = {0};
        if (vi->type && !s_value_info(vi, &declared, "graph output", NULL) && declared.ndim >= 0) {
            d->ndim = declared.ndim;
            memcpy(d->dims, declared.dims, sizeof(d->dims));
        } else if (!m->values[m->outputs[i]].is_init) {
            d->ndim = -1;
        }
    }
out:
    if (tmp_nodes) {
        for (size_t i = 0; i < g->n_node; i++) {
            nn_node_t *n = &tmp_nodes[i];
            for (int a = 0; a < n->nattrs; a++) {
                free(n->attrs[a].name);
                free(n->attrs[a].s);
                free(n->attrs[a].floats);
                free(n->attrs[a].ints);
                if (n->attrs[a].t) {
                    free(n->attrs[a].t->data);
                    free(n->attrs[a].t);
                }
            }
            free(n->attrs);
            free(n->in);
            free(n->out);
        }
    }
    free(tmp_nodes);
    free(names.slot);
    free(producer_file);
    free(node_in);
    free(nin);
    free(order);
    return rc;
}

int rf_nn_model_load_buffer(const void *buf, size_t len, rf_nn_model_t **out, rf_err_t *err)
{
    *out = NULL;
    if (len > NN_MAX_FILE_BYTES)
        return rf_err_set(err, RF_ETOOBIG, "model is %zu bytes (at most %zu)", len,
                          NN_MAX_FILE_BYTES);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp)
        return rf_err_set(err, RF_EINVAL,
                          "not an ONNX model: protobuf parse failed (truncated or corrupt file?)");
    rf_nn_model_t *m = calloc(1, sizeof(*m));
    if (!m) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    int rc = s_load(mp, m, err);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc) {
        rf_nn_model_free(m);
        return rc;
    }
    uint8_t digest[RF_SHA256_LEN];
    rf_sha256(buf, len, digest);
    rf_hex(digest, sizeof(digest), m->sha256);
    *out = m;
    return 0;
}

int rf_nn_model_load_file(const char *path, rf_nn_model_t **out, rf_err_t *err)
{
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = s_read_file(path, NN_MAX_FILE_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    rc = rf_nn_model_load_buffer(buf, len, out, err);
    free(buf);
    if (rc)
        rf_err_prefix(err, "%s: ", path);
    return rc;
}
