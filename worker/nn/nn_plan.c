/* nn_plan.c - compiling a loaded model for fixed input shapes, and running the result.
 *
 * rf_nn_plan_create walks the nodes in topological order: infers every value's shape (nn_infer),
 * folds nodes whose inputs are all constant by running them once, then fuses BatchNormalization
 * into the Conv before it (new weights and bias), drops a convolution's bias before an
 * InstanceNormalization (which cancels it), fuses an activation after a Conv/ConvTranspose into
 * its epilogue, and lays out every remaining value and each step's scratch in one arena, from the
 * values' lifetimes (greedy first fit, largest first). The plan owns copies of everything it reads
 * at run time, so the model may be freed once the plan exists.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_internal.h"

static size_t s_bytes(const rf_nn_tensor_t *t)
{
    return (size_t)rf_nn_tensor_count(t) * nn_dtype_size(t->dtype);
}

static size_t s_align(size_t n)
{
    return (n + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN;
}

void rf_nn_plan_free(rf_nn_plan_t *p)
{
    if (!p)
        return;
    nn_gpu_free(p);
    for (int i = 0; i < p->nv; i++) {
        if (p->v[i].is_const)
            free(p->v[i].t.data);
        free(p->v[i].pinned);
    }
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_release(&p->steps[i]);
        free(p->steps[i].in);
    }
    free(p->v);
    free(p->steps);
    free(p->nodes);
    free(p->inputs);
    free(p->outputs);
    free(p->out_desc);
    free(p->arena);
    free(p->ptrs);
    free(p);
}

const rf_nn_tensor_t *rf_nn_plan_output(const rf_nn_plan_t *p, int i)
{
    return i >= 0 && i < p->noutputs ? &p->out_desc[i] : NULL;
}

int nn_output_bind(const pval_t *v, rf_nn_tensor_t *o, size_t *need, rf_err_t *err)
{
    *need = s_bytes(&v->t);
    if (o->data && o->bytes < *need)
        return rf_err_set(err, RF_EINVAL, "output '%s': buffer of %zu bytes, %zu needed",
                          v->t.name, o->bytes, *need);
    if (!o->data) {
        o->data = malloc(*need ? *need : 1);
        if (!o->data)
            return rf_err_set(err, RF_ENOMEM, "output '%s': out of memory", v->t.name);
        o->bytes = *need;
    }
    memcpy(o->name, v->t.name, sizeof(o->name));
    o->dtype = v->t.dtype;
    o->ndim = v->t.ndim;
    memcpy(o->dims, v->t.dims, sizeof(o->dims));
    return 0;
}

void *rf_nn_plan_host_buffer(rf_nn_plan_t *p, bool output, int i, size_t *bytes)
{
    if (bytes)
        *bytes = 0;
    if (!p || !p->gpu || i < 0 || i >= (output ? p->noutputs : p->ninputs))
        return NULL;
    const pval_t *v = &p->v[output ? p->outputs[i] : p->inputs[i]];
    if (v->t.dtype != RF_NN_FLOAT)
        return NULL;
    size_t b = (size_t)rf_nn_tensor_count(&v->t) * sizeof(float);
    void *buf = nn_gpu_host_buffer(p, output, i, b);
    if (buf && bytes)
        *bytes = b;
    return buf;
}

void rf_nn_plan_stats(const rf_nn_plan_t *p, int *steps, size_t *arena_bytes)
{
    int n = 0;
    for (int i = 0; i < p->nsteps; i++)
        n += !p->steps[i].dead;
    if (steps)
        *steps = n;
    if (arena_bytes)
        *arena_bytes = p->gpu ? nn_gpu_arena_bytes(p) : p->arena_bytes;
}

/* A new constant value owned by the plan (BatchNorm-folded weights). */
static int s_new_const(rf_nn_plan_t *p, const rf_nn_tensor_t *like, const char *suffix)
{
    if (p->nv == p->cap)
        return -1;
    int id = p->nv++;
    pval_t *v = &p->v[id];
    memset(v, 0, sizeof(*v));
    v->t = *like;
    snprintf(v->t.name, sizeof(v->t.name), "%.200s%s", like->name, suffix);
    v->t.bytes = s_bytes(like);
    v->t.data = malloc(v->t.bytes ? v->t.bytes : 1);
    if (!v->t.data) {
        p->nv--;
        return -1;
    }
    v->is_const = true;
    v->producer = -1;
    return id;
}

/* Runs one step at plan time on constant inputs; its output becomes a constant. */
static int s_fold(rf_nn_plan_t *p, nn_step_t *s, rf_nn_tensor_t **in, rf_nn_tensor_t **out,
                  rf_err_t *err)
{
    pval_t *o = &p->v[s->out[0]];
    o->t.bytes = s_bytes(&o->t);
    p->const_bytes += o->t.bytes;
    if (p->const_bytes > NN_MAX_ARENA_BYTES) {
        char desc[RF_NN_NAME_MAX + 64];
        return rf_err_set(err, RF_ETOOBIG, "%s: folded constants would take over %zu MiB",
                          nn_node_desc(s->node, desc, sizeof(desc)), NN_MAX_ARENA_BYTES >> 20);
    }
    o->t.data = malloc(o->t.bytes ? o->t.bytes : 1);
    void *scratch = s->scratch_bytes ? malloc(s->scratch_bytes) : NULL;
    if (!o->t.data || (s->scratch_bytes && !scratch)) {
        free(scratch);
        return rf_err_set(err, RF_ENOMEM, "out of memory folding constants");
    }
    o->is_const = true;
    int rc = nn_kernel(s, in, out, scratch, err);
    free(scratch);
    s->dead = true;
    return rc;
}

/* Conv -> BatchNormalization: W'[m] = W[m] * a[m], B'[m] = (B[m] - mean[m]) * a[m] + beta[m],
 * a = scale / sqrt(var + eps). */
static void s_fuse_batchnorm(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *bn = &p->steps[i];
        if (bn->dead || bn->op != NN_BATCH_NORM)
            continue;
        int x = bn->in[0];
        int pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *cv = &p->steps[pi];
        if (cv->dead || cv->op != NN_CONV || cv->act != NN_ACT_NONE || p->v[x].uses != 1 ||
            p->v[x].is_output || !p->v[cv->in[1]].is_const ||
            (cv->nin > 2 && cv->in[2] >= 0 && !p->v[cv->in[2]].is_const))
            continue;
        bool params = true;
        for (int k = 1; k < 5; k++)
            params &= p->v[bn->in[k]].is_const;
        if (!params)
            continue;
        const rf_nn_tensor_t *w = &p->v[cv->in[1]].t;
        int64_t M = w->dims[0], per = rf_nn_tensor_count(w) / (M ? M : 1);
        rf_nn_tensor_t bshape = {0};
        snprintf(bshape.name, sizeof(bshape.name), "%s", w->name);
        bshape.dtype = RF_NN_FLOAT;
        bshape.ndim = 1;
        bshape.dims[0] = M;
        if (cv->nin < 3) {
            int *in = realloc(cv->in, 3 * sizeof(int));
            if (!in)
                continue;
            cv->in = in;
            cv->in[2] = -1;
            cv->nin = 3;
        }
        int wn = s_new_const(p, w, "+bn");
        if (wn < 0)
            continue;
        int bnn = s_new_const(p, &bshape, "+bn_bias");
        if (bnn < 0)
            continue;
        w = &p->v[cv->in[1]].t; /* p->v did not move: its capacity was reserved */
        const float *wd = w->data, *bd = cv->in[2] >= 0 ? p->v[cv->in[2]].t.data : NULL;
        const float *sc = p->v[bn->in[1]].t.data, *be = p->v[bn->in[2]].t.data,
                    *mean = p->v[bn->in[3]].t.data, *var = p->v[bn->in[4]].t.data;
        float *nw = p->v[wn].t.data, *nb = p->v[bnn].t.data;
        for (int64_t m = 0; m < M; m++) {
            double a = (double)sc[m] / sqrt((double)var[m] + bn->eps);
            for (int64_t j = 0; j < per; j++)
                nw[m * per + j] = (float)((double)wd[m * per + j] * a);
            nb[m] = (float)(((bd ? (double)bd[m] : 0.0) - (double)mean[m]) * a + (double)be[m]);
        }
        cv->in[1] = wn;
        cv->in[2] = bnn;
        cv->out[0] = bn->out[0];
        p->v[bn->out[0]].producer = pi;
        bn->dead = true;
    }
}

/* Conv/ConvTranspose -> InstanceNormalization: the normalization subtracts each channel's mean,
 * so a per-channel bias added before it cancels; the convolution skips it. */
static void s_drop_bias_before_instancenorm(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        const nn_step_t *in = &p->steps[i];
        if (in->dead || in->op != NN_INSTANCE_NORM)
            continue;
        int x = in->in[0], pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *cv = &p->steps[pi];
        if (cv->dead || (cv->op != NN_CONV && cv->op != NN_CONV_TRANSPOSE) ||
            cv->act != NN_ACT_NONE || p->v[x].uses != 1 || p->v[x].is_output || cv->nin < 3)
            continue;
        cv->in[2] = -1;
    }
}

/* Conv/ConvTranspose -> activation: the activation runs in the convolution's epilogue. */
static void s_fuse_activation(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *a = &p->steps[i];
        if (a->dead)
            continue;
        nn_act_t act;
        switch (a->op) {
        case NN_RELU:
            act = NN_ACT_RELU;
            break;
        case NN_LEAKY_RELU:
            act = NN_ACT_LEAKY;
            break;
        case NN_SIGMOID:
            act = NN_ACT_SIGMOID;
            break;
        case NN_TANH:
            act = NN_ACT_TANH;
            break;
        case NN_CLIP:
            act = NN_ACT_CLIP;
            break;
        case NN_PRELU:
            act = NN_ACT_PRELU;
            break;
        default:
            continue;
        }
        int x = a->in[0];
        int pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *cv = &p->steps[pi];
        if (cv->dead || (cv->op != NN_CONV && cv->op != NN_CONV_TRANSPOSE) ||
            cv->act != NN_ACT_NONE || p->v[x].uses != 1 || p->v[x].is_output)
            continue;
        float lo = -INFINITY, hi = INFINITY;
        const float *slope = NULL;
        int64_t slope_n = 0;
        if (act == NN_ACT_CLIP) {
            if (p->v[x].t.dtype != RF_NN_FLOAT)
                continue;
            if (a->node->version == 6) {
                lo = a->alpha;
                hi = a->beta;
            } else {
                bool ok = true;
                for (int k = 1; k < a->nin; k++)
                    if (a->in[k] >= 0 && !p->v[a->in[k]].is_const)
                        ok = false;
                if (!ok)
                    continue;
                if (a->nin > 1 && a->in[1] >= 0)
                    lo = *(const float *)p->v[a->in[1]].t.data;
                if (a->nin > 2 && a->in[2] >= 0)
                    hi = *(const float *)p->v[a->in[2]].t.data;
            }
        }
        if (act == NN_ACT_PRELU) {
            const pval_t *sv = &p->v[a->in[1]];
            const rf_nn_tensor_t *y = &p->v[x].t;
            if (!sv->is_const)
                continue;
            int64_t cnt = rf_nn_tensor_count(&sv->t), M = y->dims[1];
            bool per_channel = true;
            for (int j = 0; j < sv->t.ndim; j++) {
                int axis = y->ndim - (sv->t.ndim + a->b_trailing_ones) + j;
                if (sv->t.dims[j] != 1 && axis != 1)
                    per_channel = false;
            }
            if (!per_channel || (cnt != 1 && cnt != M))
                continue;
            slope = sv->t.data;
            slope_n = cnt;
        }
        cv->act = act;
        cv->act_a = act == NN_ACT_LEAKY ? a->alpha : lo;
        cv->act_b = hi;
        cv->act_slope = slope;
        cv->act_slope_n = slope_n;
        cv->out[0] = a->out[0];
        p->v[a->out[0]].producer = pi;
        a->dead = true;
    }
}

/* GPU plans: Pad (constant, reflect or edge; spatial axes only, no cropping) -> Conv: the
 * convolution reads the Pad's input through the pad's index map (nn_gm_pad_map), so the padded
 * tensor is never written. */
static void s_fuse_pad(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *cv = &p->steps[i];
        if (cv->dead || cv->op != NN_CONV || cv->prepad)
            continue;
        int x = cv->in[0], pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *pd = &p->steps[pi];
        const rf_nn_tensor_t *xt = &p->v[x].t;
        if (pd->dead || pd->op != NN_PAD || pd->mode > 2 || p->v[x].uses != 1 ||
            p->v[x].is_output || xt->dtype != RF_NN_FLOAT || xt->ndim != cv->nsp + 2 || cv->nsp > 3)
            continue;
        int r = xt->ndim;
        bool ok = pd->pads[0] == 0 && pd->pads[1] == 0 && pd->pads[r] == 0 && pd->pads[r + 1] == 0;
        for (int k = 2; k < r; k++)
            ok &= pd->pads[k] >= 0 && pd->pads[r + k] >= 0;
        float value = 0;
        if (pd->node->version == 2) {
            value = pd->pad_value;
        } else if (pd->nin > 2 && pd->in[2] >= 0) {
            const pval_t *cvv = &p->v[pd->in[2]];
            if (!cvv->is_const || cvv->t.dtype != RF_NN_FLOAT)
                ok = false;
            else
                value = *(const float *)cvv->t.data;
        }
        if (!ok)
            continue;
        cv->prepad = true;
        cv->prepad_mode = pd->mode;
        cv->prepad_value = value;
        for (int k = 0; k < 3; k++) {
            int axis = 2 + k - (3 - cv->nsp);
            cv->prepad_b[k] = axis >= 2 ? pd->pads[axis] : 0;
        }
        cv->in[0] = pd->in[0];
        pd->dead = true;
    }
}

/* GPU plans: Conv/ConvTranspose (with its fused activation) -> DepthToSpace (PixelShuffle): the
 * convolution's epilogue stores each element at its place in the DepthToSpace output. */
static void s_fuse_depth_to_space(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *d = &p->steps[i];
        if (d->dead || d->op != NN_DEPTH_TO_SPACE)
            continue;
        int x = d->in[0], pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *cv = &p->steps[pi];
        if (cv->dead || (cv->op != NN_CONV && cv->op != NN_CONV_TRANSPOSE) || cv->residual ||
            cv->d2s_block || p->v[x].uses != 1 || p->v[x].is_output ||
            p->v[x].t.dtype != RF_NN_FLOAT || p->v[x].t.ndim != 4)
            continue;
        cv->d2s_block = d->block;
        cv->d2s_crd = d->mode == 1;
        cv->out[0] = d->out[0];
        p->v[d->out[0]].producer = pi;
        d->dead = true;
    }
}

/* GPU plans: InstanceNormalization/BatchNormalization -> Relu, LeakyRelu, Sigmoid, Tanh or Clip
 * (constant bounds): the activation runs in the normalization's apply kernel. */
static void s_fuse_norm_activation(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *a = &p->steps[i];
        if (a->dead || a->nin < 1)
            continue;
        nn_act_t act = a->op == NN_RELU         ? NN_ACT_RELU
                       : a->op == NN_LEAKY_RELU ? NN_ACT_LEAKY
                       : a->op == NN_SIGMOID    ? NN_ACT_SIGMOID
                       : a->op == NN_TANH       ? NN_ACT_TANH
                       : a->op == NN_CLIP       ? NN_ACT_CLIP
                                                : NN_ACT_NONE;
        if (act == NN_ACT_NONE)
            continue;
        int x = a->in[0], pi = p->v[x].producer;
        if (pi < 0)
            continue;
        nn_step_t *nm = &p->steps[pi];
        if (nm->dead || (nm->op != NN_INSTANCE_NORM && nm->op != NN_BATCH_NORM) ||
            nm->act != NN_ACT_NONE || nm->residual || p->v[x].uses != 1 || p->v[x].is_output ||
            p->v[x].t.dtype != RF_NN_FLOAT)
            continue;
        float lo = -INFINITY, hi = INFINITY;
        if (act == NN_ACT_CLIP) {
            if (a->node->version == 6) {
                lo = a->alpha;
                hi = a->beta;
            } else {
                bool ok = true;
                for (int k = 1; k < a->nin; k++)
                    if (a->in[k] >= 0 &&
                        (!p->v[a->in[k]].is_const || p->v[a->in[k]].t.dtype != RF_NN_FLOAT))
                        ok = false;
                if (!ok)
                    continue;
                if (a->nin > 1 && a->in[1] >= 0)
                    lo = *(const float *)p->v[a->in[1]].t.data;
                if (a->nin > 2 && a->in[2] >= 0)
                    hi = *(const float *)p->v[a->in[2]].t.data;
            }
        }
        nm->act = act;
        nm->act_a = act == NN_ACT_LEAKY ? a->alpha : lo;
        nm->act_b = hi;
        nm->out[0] = a->out[0];
        p->v[a->out[0]].producer = pi;
        a->dead = true;
    }
}

/* GPU plans: Conv/ConvTranspose or InstanceNormalization/BatchNormalization (with its fused
 * activation) -> Add of a value of the same shape computed before it: the add runs in the step's
 * epilogue (its last input). The CPU reference keeps the Add (its results stay what they were). */
static void s_fuse_residual(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nsteps; i++) {
        nn_step_t *a = &p->steps[i];
        if (a->dead || a->op != NN_ADD || a->nin != 2 || a->b_trailing_ones)
            continue;
        const rf_nn_tensor_t *y = &p->v[a->out[0]].t;
        for (int k = 0; k < 2; k++) {
            int x = a->in[k], r = a->in[1 - k];
            int pi = p->v[x].producer;
            if (pi < 0 || x == r)
                continue;
            nn_step_t *cv = &p->steps[pi];
            bool norm = cv->op == NN_INSTANCE_NORM || cv->op == NN_BATCH_NORM;
            if (cv->dead || (cv->op != NN_CONV && cv->op != NN_CONV_TRANSPOSE && !norm) ||
                cv->residual || p->v[x].uses != 1 || p->v[x].is_output || p->v[r].producer >= pi)
                continue;
            const rf_nn_tensor_t *xt = &p->v[x].t, *rt = &p->v[r].t;
            if (xt->dtype != RF_NN_FLOAT || rt->dtype != RF_NN_FLOAT || xt->ndim != y->ndim ||
                rt->ndim != y->ndim ||
                memcmp(xt->dims, y->dims, sizeof(int64_t) * (size_t)y->ndim) ||
                memcmp(rt->dims, y->dims, sizeof(int64_t) * (size_t)y->ndim))
                continue;
            /* The residual becomes the step's last input: in[3] of a convolution (after an
             * optional bias), in[3] of an InstanceNormalization, in[5] of a BatchNormalization. */
            int nin = norm ? cv->nin + 1 : 4;
            int *in = realloc(cv->in, (size_t)nin * sizeof(int));
            if (!in)
                continue;
            cv->in = in;
            for (int j = cv->nin; j < nin - 1; j++)
                cv->in[j] = -1;
            cv->in[nin - 1] = r;
            cv->nin = nin;
            cv->residual = true;
            cv->out[0] = a->out[0];
            p->v[a->out[0]].producer = pi;
            a->dead = true;
            break;
        }
    }
}

static void s_count_uses(rf_nn_plan_t *p)
{
    for (int i = 0; i < p->nv; i++)
        p->v[i].uses = 0;
    for (int i = 0; i < p->nsteps; i++) {
        if (p->steps[i].dead)
            continue;
        for (int k = 0; k < p->steps[i].nin; k++)
            if (p->steps[i].in[k] >= 0)
                p->v[p->steps[i].in[k]].uses++;
    }
}

static int s_block_cmp(const void *a, const void *b)
{
    const nn_block_t *x = a, *y = b;
    return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

size_t nn_arena_fit(nn_block_t *blocks, int nb)
{
    qsort(blocks, (size_t)nb, sizeof(nn_block_t), s_block_cmp);
    /* First fit: the lowest offset clear of every placed block alive at the same time. */
    size_t total = 0;
    for (int i = 0; i < nb; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int k = 0; k < i; k++) {
                if (blocks[k].last < blocks[i].first || blocks[i].last < blocks[k].first)
                    continue;
                size_t ko = *blocks[k].off;
                if (off < ko + blocks[k].size && ko < off + blocks[i].size) {
                    off = ko + blocks[k].size;
                    moved = true;
                }
            }
        }
        *blocks[i].off = off;
        if (off + blocks[i].size > total)
            total = off + blocks[i].size;
    }
    return total;
}

static int s_layout(rf_nn_plan_t *p, rf_err_t *err)
{
    nn_block_t *blocks = calloc((size_t)(p->nv + p->nsteps) + 1, sizeof(nn_block_t));
    size_t *scratch_off = calloc((size_t)p->nsteps + 1, sizeof(size_t));
    if (!blocks || !scratch_off) {
        free(blocks);
        free(scratch_off);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    for (int i = 0; i < p->nv; i++) {
        p->v[i].first = p->nsteps;
        p->v[i].last = -1;
    }
    for (int i = 0; i < p->ninputs; i++) {
        p->v[p->inputs[i]].first = -1;
        p->v[p->inputs[i]].last = -1;
    }
    for (int i = 0; i < p->nsteps; i++) {
        const nn_step_t *s = &p->steps[i];
        if (s->dead)
            continue;
        for (int k = 0; k < s->nin; k++)
            if (s->in[k] >= 0 && p->v[s->in[k]].last < i)
                p->v[s->in[k]].last = i;
        if (p->v[s->out[0]].first > i)
            p->v[s->out[0]].first = i;
        if (p->v[s->out[0]].last < i)
            p->v[s->out[0]].last = i;
    }
    for (int i = 0; i < p->noutputs; i++)
        p->v[p->outputs[i]].last = p->nsteps;
    int nb = 0;
    for (int i = 0; i < p->nv; i++) {
        pval_t *v = &p->v[i];
        if (v->is_const || v->last < v->first || v->last < 0)
            continue;
        v->in_arena = true;
        blocks[nb++] = (nn_block_t){s_align(s_bytes(&v->t)), &v->off, v->first, v->last};
    }
    for (int i = 0; i < p->nsteps; i++)
        if (!p->steps[i].dead && p->steps[i].scratch_bytes)
            blocks[nb++] =
                (nn_block_t){s_align(p->steps[i].scratch_bytes), &p->steps[i].scratch_off, i, i};
    size_t total = nn_arena_fit(blocks, nb);
    free(blocks);
    free(scratch_off);
    p->arena_bytes = total;
    if (total > NN_MAX_ARENA_BYTES)
        return rf_err_set(err, RF_ETOOBIG,
                          "the plan needs %zu MiB of working memory for these input shapes (at "
                          "most %zu MiB)",
                          total >> 20, NN_MAX_ARENA_BYTES >> 20);
    if (p->device == RF_NN_GPU)
        return 0; /* the arena is on the device (nn_gpu.c) */
    p->arena = aligned_alloc(NN_ALIGN, total ? total : NN_ALIGN);
    if (!p->arena)
        return rf_err_set(err, RF_ENOMEM, "out of memory for the plan's %zu-byte arena", total);
    for (int i = 0; i < p->nv; i++)
        if (p->v[i].in_arena) {
            p->v[i].t.data = p->arena + p->v[i].off;
            p->v[i].t.bytes = s_bytes(&p->v[i].t);
        }
    return 0;
}

static int s_check_input(const rf_nn_tensor_t *want, const rf_nn_tensor_t *got, int i, bool exact,
                         rf_err_t *err)
{
    if (strcmp(want->name, got->name))
        return rf_err_set(err, RF_EINVAL, "input %d: expected '%s', got '%s'", i, want->name,
                          got->name);
    if (want->dtype != got->dtype)
        return rf_err_set(err, RF_EINVAL, "input '%s': expected %s, got %s", want->name,
                          nn_dtype_name(want->dtype), nn_dtype_name(got->dtype));
    if (want->ndim != got->ndim)
        return rf_err_set(err, RF_EINVAL, "input '%s': expected rank %d, got %d", want->name,
                          want->ndim, got->ndim);
    for (int k = 0; k < want->ndim; k++) {
        if (got->dims[k] < 0 || got->dims[k] > NN_MAX_ELEMENTS)
            return rf_err_set(err, RF_EINVAL, "input '%s': dim %d = %" PRId64 " is not concrete",
                              want->name, k, got->dims[k]);
        if ((exact || want->dims[k] >= 0) && want->dims[k] != got->dims[k])
            return rf_err_set(err, RF_EINVAL,
                              "input '%s': dim %d is %" PRId64 ", the %s has %" PRId64, want->name,
                              k, got->dims[k], exact ? "plan" : "model", want->dims[k]);
    }
    int64_t n = 1;
    for (int k = 0; k < got->ndim; k++) {
        if (got->dims[k] && n > NN_MAX_ELEMENTS / got->dims[k])
            return rf_err_set(err, RF_ETOOBIG, "input '%s': too many elements", want->name);
        n *= got->dims[k];
    }
    return 0;
}

int rf_nn_plan_create(const rf_nn_model_t *m, const rf_nn_tensor_t *input_shapes, int n_inputs,
                      const rf_nn_plan_options_t *opt, rf_nn_plan_t **out, rf_err_t *err)
{
    *out = NULL;
    if (opt && opt->device != RF_NN_CPU && opt->device != RF_NN_GPU)
        return rf_err_set(err, RF_EINVAL, "unknown device %d", (int)opt->device);
    if (n_inputs != m->ninputs)
        return rf_err_set(err, RF_EINVAL, "the model has %d inputs, %d given", m->ninputs,
                          n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        int rc = s_check_input(&m->in_desc[i], &input_shapes[i], i, false, err);
        if (rc)
            return rc;
    }
    rf_nn_plan_t *p = calloc(1, sizeof(*p));
    if (!p)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    p->device = opt ? opt->device : RF_NN_CPU;
    p->cap = m->nvalues + 2 * m->nnodes;
    p->v = calloc((size_t)p->cap + 1, sizeof(pval_t));
    p->steps = calloc((size_t)m->nnodes + 1, sizeof(nn_step_t));
    p->nodes = calloc((size_t)m->nnodes + 1, sizeof(nn_node_t));
    p->inputs = calloc((size_t)m->ninputs + 1, sizeof(int));
    p->outputs = calloc((size_t)m->noutputs + 1, sizeof(int));
    p->out_desc = calloc((size_t)m->noutputs + 1, sizeof(rf_nn_tensor_t));
    if (!p->v || !p->steps || !p->nodes || !p->inputs || !p->outputs || !p->out_desc) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    p->nv = m->nvalues;
    for (int i = 0; i < m->nvalues; i++) {
        pval_t *v = &p->v[i];
        v->t = m->values[i].t;
        v->t.data = NULL;
        v->producer = -1;
        if (m->values[i].is_init) {
            v->t.bytes = m->values[i].t.bytes;
            v->t.data = malloc(v->t.bytes ? v->t.bytes : 1);
            if (!v->t.data) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
            if (v->t.bytes)
                memcpy(v->t.data, m->values[i].t.data, v->t.bytes);
            v->is_const = true;
        }
    }
    p->ninputs = m->ninputs;
    for (int i = 0; i < m->ninputs; i++) {
        pval_t *v = &p->v[m->inputs[i]];
        p->inputs[i] = m->inputs[i];
        memcpy(v->t.dims, input_shapes[i].dims, sizeof(v->t.dims));
        /* Only an input that fixes shapes keeps its values (and must keep them at run time);
         * the data of every other input is ignored here. */
        bool fixes = false;
        for (int k = 0; k < m->nnodes; k++)
            for (int j = 0; j < m->nodes[k].nin; j++)
                if (m->nodes[k].in[j] == m->inputs[i] && nn_input_fixes_shapes(&m->nodes[k], j))
                    fixes = true;
        if (fixes && input_shapes[i].data) {
            size_t need = s_bytes(&v->t);
            if (input_shapes[i].bytes < need) {
                rc = rf_err_set(err, RF_EINVAL, "input '%s': %zu bytes given, its shape needs %zu",
                                v->t.name, input_shapes[i].bytes, need);
                goto fail;
            }
            v->pinned = malloc(need ? need : 1);
            if (!v->pinned) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory");
                goto fail;
            }
            if (need)
                memcpy(v->pinned, input_shapes[i].data, need);
            v->pinned_bytes = need;
        }
    }
    p->noutputs = m->noutputs;
    for (int i = 0; i < m->noutputs; i++) {
        p->outputs[i] = m->outputs[i];
        p->v[m->outputs[i]].is_output = true;
    }
    /* Steps, shapes, folding. */
    p->maxio = 8;
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].nin + m->nodes[i].nout > p->maxio)
            p->maxio = m->nodes[i].nin + m->nodes[i].nout;
    p->ptrs = calloc((size_t)p->maxio + 1, sizeof(rf_nn_tensor_t *));
    if (!p->ptrs) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->nnodes; i++) {
        const nn_node_t *n = &m->nodes[i];
        nn_step_t *s = &p->steps[i];
        p->nsteps++;
        p->nodes[i] = *n;
        p->nodes[i].attrs = NULL;
        p->nodes[i].nattrs = 0;
        p->nodes[i].in = p->nodes[i].out = NULL;
        s->node = n; /* the model's node (with attributes) while planning */
        s->op = n->op;
        s->nin = n->nin;
        s->nout = 1;
        s->in = calloc((size_t)n->nin + 1, sizeof(int));
        if (!s->in) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(s->in, n->in, (size_t)n->nin * sizeof(int));
        s->out[0] = n->out[0];
        rf_nn_tensor_t **in = p->ptrs, **outp = p->ptrs + s->nin;
        /* Shape reads only its input's dims, known now: it always folds. */
        bool foldable = true, dims_only = s->op == NN_SHAPE;
        for (int k = 0; k < s->nin; k++) {
            in[k] = NULL;
            if (s->in[k] < 0)
                continue;
            pval_t *v = &p->v[s->in[k]];
            in[k] = &v->t;
            if (!v->is_const) {
                foldable = dims_only;
                v->t.data = v->pinned; /* known values for shape inference, or NULL */
            }
        }
        outp[0] = &p->v[s->out[0]].t;
        p->v[s->out[0]].producer = i;
        rc = nn_infer(s, in, outp, err);
        for (int k = 0; k < s->nin; k++)
            if (s->in[k] >= 0 && !p->v[s->in[k]].is_const)
                p->v[s->in[k]].t.data = NULL;
        if (rc)
            goto fail;
        if (foldable) {
            rc = s_fold(p, s, in, outp, err);
            if (rc)
                goto fail;
        }
    }
    s_count_uses(p);
    s_fuse_batchnorm(p);
    s_count_uses(p);
    s_drop_bias_before_instancenorm(p);
    s_count_uses(p);
    s_fuse_activation(p);
    s_count_uses(p);
    if (p->device == RF_NN_GPU) {
        s_fuse_pad(p);
        s_count_uses(p);
        s_fuse_depth_to_space(p);
        s_count_uses(p);
        s_fuse_norm_activation(p);
        s_count_uses(p);
        s_fuse_residual(p);
        s_count_uses(p);
    }
    for (int i = 0; i < p->nsteps; i++) {
        p->steps[i].node = &p->nodes[i];
        if (p->device == RF_NN_GPU)
            p->steps[i].scratch_bytes = 0; /* the device kernels need no im2col buffers */
    }
    rc = s_layout(p, err);
    if (rc)
        goto fail;
    if (p->device == RF_NN_GPU) {
        rc = nn_gpu_create(p, opt, err);
        if (rc)
            goto fail;
    }
    for (int i = 0; i < p->noutputs; i++) {
        p->out_desc[i] = p->v[p->outputs[i]].t;
        p->out_desc[i].data = NULL;
        p->out_desc[i].bytes = 0;
    }
    *out = p;
    return 0;
fail:
    for (int i = 0; i < p->nsteps; i++)
        p->steps[i].node = &p->nodes[i];
    rf_nn_plan_free(p);
    return rc;
}

int rf_nn_plan_run(rf_nn_plan_t *p, const rf_nn_tensor_t *inputs, int n_inputs,
                   rf_nn_tensor_t *outputs, int n_outputs, rf_err_t *err)
{
    if (n_inputs != p->ninputs)
        return rf_err_set(err, RF_EINVAL, "the plan has %d inputs, %d given", p->ninputs, n_inputs);
    if (n_outputs != p->noutputs)
        return rf_err_set(err, RF_EINVAL, "the plan has %d outputs, %d asked for", p->noutputs,
                          n_outputs);
    for (int i = 0; i < n_inputs; i++) {
        pval_t *v = &p->v[p->inputs[i]];
        int rc = s_check_input(&v->t, &inputs[i], i, true, err);
        if (rc)
            return rc;
        size_t need = s_bytes(&v->t);
        if (inputs[i].bytes < need || (need && !inputs[i].data))
            return rf_err_set(err, RF_EINVAL, "input '%s': %zu bytes given, its shape needs %zu",
                              v->t.name, inputs[i].bytes, need);
        if (v->pinned && memcmp(v->pinned, inputs[i].data, need))
            return rf_err_set(err, RF_EINVAL,
                              "input '%s' fixes shapes in this plan: its values must be the ones "
                              "given when the plan was made",
                              v->t.name);
        if (p->device == RF_NN_CPU && v->in_arena && need)
            memcpy(v->t.data, inputs[i].data, need);
    }
    if (p->device == RF_NN_GPU)
        return nn_gpu_run(p, inputs, outputs, err);
    for (int i = 0; i < p->nsteps; i++) {
        const nn_step_t *s = &p->steps[i];
        if (s->dead)
            continue;
        rf_nn_tensor_t **in = p->ptrs, **outp = p->ptrs + s->nin;
        for (int k = 0; k < s->nin; k++)
            in[k] = s->in[k] >= 0 ? &p->v[s->in[k]].t : NULL;
        outp[0] = &p->v[s->out[0]].t;
        int rc = nn_kernel(s, in, outp, s->scratch_bytes ? p->arena + s->scratch_off : NULL, err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < n_outputs; i++) {
        const pval_t *v = &p->v[p->outputs[i]];
        size_t need;
        int rc = nn_output_bind(v, &outputs[i], &need, err);
        if (rc)
            return rc;
        if (need)
            memcpy(outputs[i].data, v->t.data, need);
    }
    return 0;
}
