/* nn_gpu.c - the GPU backend of the ONNX executor: the plan logic (plain C, every build).
 *
 * rf_nn_plan_create compiles a model as for the CPU (nn_plan.c: static shapes, constant folding,
 * BatchNorm folded into Conv, bias before InstanceNorm dropped, activations and, for GPU plans,
 * residual adds fused into the convolution's epilogue, one arena laid out from the values'
 * lifetimes), then nn_gpu_create:
 *   - refuses (RF_EUNAVAIL, naming the step) a plan with a step the device does not run: values
 *     at run time must be float (shape glue on integers is folded at plan time or refused here);
 *   - opens cuDNN by dlopen for the 2-D convolutions and transposed convolutions (nn_gk_dnn_*; the
 *     algorithm of each shape is cached in options.cache_dir), our own kernels for the rest and
 *     whenever cuDNN is absent or refuses a shape (logged once per plan);
 *   - chooses the layout: fp16 plans with cuDNN keep every 4-D value NHWC with its channels padded
 *     to a multiple of 8 (zero there), the layout cuDNN's tensor-core kernels run on; other plans
 *     keep every value dense (NCHW); RF_NN_LAYOUT=nhwc|nchw overrides;
 *   - opens the device, uploads every constant a step reads once (fp16 bits in fp16 mode, else
 *     fp32; a cuDNN NHWC convolution's weights in padded KRSC order), lays out one device arena
 *     from the values' lifetimes and their stored sizes, and makes one stream;
 *   - builds the launch list: one entry per kernel.
 * nn_gpu_run copies the inputs in (host fp32 NCHW; converted on the device to the storage type
 * and layout unless both are fp32 and dense), runs the launch list on the stream (the first run
 * directly; the second captures it as a CUDA graph, which later runs replay), and copies the
 * outputs out.
 *
 * The device calls (nn_gpu_kern.h) come from nn_gpu.cu, nn_gpu_none.c without nvcc, or the tests'
 * emulation (tests/worker/nncudaemu.h, which includes this file).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nn_gpu_kern.h"
#include "nn_internal.h"

enum {
    L_CONV,
    L_DNN_CONV,
    L_NORM,
    L_UNARY,
    L_BINARY,
    L_PAD,
    L_RESIZE,
    L_D2S,
    L_STRIDED,
    L_CONCAT,
    L_COPY
};

typedef struct nn_glaunch {
    int kind, step;
    const void *x, *w, *bias, *res, *scale, *nbias, *mean, *var;
    void *y;
    void *src;    /* a cuDNN convolution's output before its epilogue (y, or a buffer of its own) */
    bool zpad;    /* after the kernel: zero y's pad channels (it scatters and leaves them) */
    nn_glay_t zl; /* y's layout */
    int64_t zn;   /* y's storage elements */
    nn_glay_t xl, yl;
    void *padded; /* a cuDNN convolution's input with a fused Pad applied (NULL: none) */
    int64_t pad_n;
    const float *slope;
    float *ab;
    double *sums; /* InstanceNormalization of an NHWC value: one pass's sums */
    int64_t n, N, C, P, ck_inner, ctot_inner, off_inner;
    int op, instance;
    float a, b;
    double eps;
    nn_gconv_t conv;
    nn_gnorm_epi_t epi;
    nn_gbcast_t bc;
    nn_gpad_t pad;
    nn_gresize_t rz;
    const int64_t *rz_idx;
    const float *rz_w;
    const uint8_t *rz_nlive, *rz_outside;
    nn_gd2s_t d2s;
    nn_gstrided_t sd;
    void *dnn_conv;
} nn_glaunch_t;

struct nn_gpu {
    int device;
    int half;
    int nhwc;  /* 4-D values NHWC with padded channels */
    size_t es; /* bytes per stored element: 2 or 4 */
    void *stream;
    uint8_t *arena;
    size_t arena_bytes;
    size_t *voff; /* per plan value: its place in the device arena */
    bool *dense;  /* per plan value: kept dense whatever the layout (a convolution's weights) */
    void **cdev;  /* per plan value: its constant on the device, or NULL */
    void **allocs;
    int nallocs, cap_allocs;
    void *dnn;
    void *workspace;
    size_t ws_bytes;
    nn_glaunch_t *l;
    int nl, cap_l;
    void *graph;
    bool graph_off; /* capture failed once: run the list directly from then on */
    int runs;
    void *staging; /* device fp32 buffer for the inputs and outputs that need converting */
    void **host;   /* pinned host buffers: ninputs, then noutputs (rf_nn_plan_host_buffer) */
};

#define NN_GPU_LOG "nn"

static int s_fail(rf_err_t *err, const char *what, const char *why)
{
    return rf_err_set(err, RF_EUNAVAIL, "device gpu: %s: %s", what, why);
}

static const char *s_alloc(struct nn_gpu *g, void **ptr, size_t bytes)
{
    if (g->nallocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 32;
        void **a = realloc(g->allocs, (size_t)cap * sizeof(void *));
        if (!a)
            return "out of host memory";
        g->allocs = a;
        g->cap_allocs = cap;
    }
    const char *why = nn_gk_malloc(ptr, bytes ? bytes : 1);
    if (!why)
        g->allocs[g->nallocs++] = *ptr;
    return why;
}

/* Uploads host bytes (converted to storage type when float and conv is set) to a new buffer. */
static const char *s_upload(struct nn_gpu *g, const void *host, int64_t count, size_t es_host,
                            bool to_storage, void **out)
{
    size_t bytes = (size_t)count * (to_storage ? g->es : es_host);
    const char *why = s_alloc(g, out, bytes);
    if (why || !bytes)
        return why;
    if (to_storage && g->half) {
        uint16_t *tmp = malloc(bytes);
        if (!tmp)
            return "out of host memory";
        for (int64_t i = 0; i < count; i++)
            tmp[i] = nn_gm_half_bits(((const float *)host)[i]);
        why = nn_gk_upload(*out, tmp, bytes, g->stream);
        if (!why)
            why = nn_gk_stream_sync(g->stream);
        free(tmp);
        return why;
    }
    why = nn_gk_upload(*out, host, bytes, g->stream);
    return why ? why : nn_gk_stream_sync(g->stream);
}

/* The device pointer of plan value v (NULL for -1); constants are uploaded on first use. */
static const char *s_dev(rf_nn_plan_t *p, int v, const void **out)
{
    struct nn_gpu *g = p->gpu;
    *out = NULL;
    if (v < 0)
        return NULL;
    pval_t *pv = &p->v[v];
    if (pv->in_arena) {
        *out = g->arena + g->voff[v];
        return NULL;
    }
    if (!pv->is_const)
        return "a value is neither in the arena nor constant";
    if (pv->t.dtype != RF_NN_FLOAT)
        return "a constant the device reads is not float";
    if (!g->cdev[v]) {
        const char *why =
            s_upload(g, pv->t.data, rf_nn_tensor_count(&pv->t), sizeof(float), true, &g->cdev[v]);
        if (why)
            return why;
    }
    *out = g->cdev[v];
    return NULL;
}

/* The layout of plan value v on the device (dense for -1 and constants). */
static nn_glay_t s_lay(const rf_nn_plan_t *p, int v)
{
    nn_glay_t l = {0};
    if (v < 0 || !p->gpu->nhwc)
        return l;
    const pval_t *pv = &p->v[v];
    if (!pv->in_arena || pv->t.dtype != RF_NN_FLOAT || pv->t.ndim != 4 || p->gpu->dense[v])
        return l;
    l.nhwc = 1;
    l.c = pv->t.dims[1];
    l.h = pv->t.dims[2];
    l.w = pv->t.dims[3];
    l.cp = (l.c + 7) / 8 * 8;
    return l;
}

/* Elements stored for count logical elements in layout l (pad channels included). */
static int64_t s_stored(const nn_glay_t *l, int64_t count)
{
    return l->nhwc && l->c ? count / l->c * l->cp : count;
}

/* Zeroing of y's pad channels after launch l, where y has some. */
static void s_zpad_after(nn_glaunch_t *l, const nn_glay_t *yl, int64_t count)
{
    if (!yl->nhwc || yl->c == yl->cp)
        return;
    l->zpad = true;
    l->zl = *yl;
    l->zn = s_stored(yl, count);
}

static nn_glaunch_t *s_launch(struct nn_gpu *g, int kind, int step)
{
    if (g->nl == g->cap_l) {
        int cap = g->cap_l ? 2 * g->cap_l : 64;
        nn_glaunch_t *l = realloc(g->l, (size_t)cap * sizeof(*l));
        if (!l)
            return NULL;
        g->l = l;
        g->cap_l = cap;
    }
    nn_glaunch_t *l = &g->l[g->nl++];
    memset(l, 0, sizeof(*l));
    l->kind = kind;
    l->step = step;
    return l;
}

/* A float read from a constant scalar input (Clip's bounds, Pad's value), or def. */
static int s_host_scalar(const rf_nn_plan_t *p, const nn_step_t *s, int k, float def, float *out)
{
    *out = def;
    if (s->nin <= k || s->in[k] < 0)
        return 0;
    const pval_t *v = &p->v[s->in[k]];
    if (!v->is_const || v->t.dtype != RF_NN_FLOAT || rf_nn_tensor_count(&v->t) < 1)
        return -1;
    *out = *(const float *)v->t.data;
    return 0;
}

/* Broadcasting strides, B first given trailing 1s (opset-6 broadcasting). */
static void s_bcast(nn_gbcast_t *bc, const rf_nn_tensor_t *a, const rf_nn_tensor_t *b0,
                    const rf_nn_tensor_t *o, int trailing_ones)
{
    rf_nn_tensor_t bv = *b0;
    for (int i = 0; i < trailing_ones && bv.ndim < RF_NN_MAX_DIMS; i++)
        bv.dims[bv.ndim++] = 1;
    nn_bcast_strides(a, &bv, o, &bc->r, bc->d, bc->sa, bc->sb);
}

/* The algorithm cache's path under cache_dir, else $RF_NN_CACHE_DIR ("" when neither). */
static void s_cache_path(const rf_nn_plan_options_t *opt, char *buf, size_t size)
{
    buf[0] = '\0';
    const char *dir =
        opt && opt->cache_dir && opt->cache_dir[0] ? opt->cache_dir : getenv("RF_NN_CACHE_DIR");
    if (dir && dir[0])
        snprintf(buf, size, "%s/nn-cudnn-algos.txt", dir);
}

/* The weights of a cuDNN convolution in the NHWC layout: KRSC order, channel counts padded with
 * zeros ([sl.cp][kh][kw][xl.cp] for Conv from ONNX's [M][C][kh][kw]; [xl.cp][kh][kw][sl.cp] for
 * ConvTranspose from [C][M][kh][kw]; one group), in storage type. */
static const char *s_upload_krsc(struct nn_gpu *g, const pval_t *wv, const nn_gconv_t *c,
                                 const void **out)
{
    if (!wv->is_const || wv->t.dtype != RF_NN_FLOAT)
        return "the convolution's weights are not a float constant";
    const int64_t K = c->k[1] * c->k[2], xcp = c->xl.cp, ycp = c->sl.cp;
    const int64_t count = xcp * ycp * K;
    float *tmp = calloc((size_t)count + 1, sizeof(float));
    if (!tmp)
        return "out of host memory";
    const float *w = wv->t.data;
    for (int64_t a = 0; a < c->C; a++)     /* input channel */
        for (int64_t m = 0; m < c->M; m++) /* output channel */
            for (int64_t r = 0; r < K; r++)
                tmp[c->transpose ? (a * K + r) * ycp + m : (m * K + r) * xcp + a] =
                    w[c->transpose ? (a * c->M + m) * K + r : (m * c->C + a) * K + r];
    void *d;
    const char *why = s_upload(g, tmp, count, sizeof(float), true, &d);
    free(tmp);
    *out = d;
    return why;
}

/* Adds the launches of step i. Returns NULL, or why the device cannot run it. */
static const char *s_build_step(rf_nn_plan_t *p, int i, const char *cache_path, bool *dnn_warned)
{
    struct nn_gpu *g = p->gpu;
    nn_step_t *s = &p->steps[i];
    const rf_nn_tensor_t *y = &p->v[s->out[0]].t;
    const rf_nn_tensor_t *x = s->nin && s->in[0] >= 0 ? &p->v[s->in[0]].t : NULL;
    const void *dx = NULL, *dy = NULL;
    const char *why = NULL;
    if (y->dtype != RF_NN_FLOAT)
        return "its output is not float (only float tensors run on the device)";
    if (x && x->dtype != RF_NN_FLOAT)
        return "its input is not float (only float tensors run on the device)";
    if ((why = s_dev(p, s->out[0], &dy)) || (x && (why = s_dev(p, s->in[0], &dx))))
        return why;
    const int64_t n = rf_nn_tensor_count(y);
    const nn_glay_t xl = s_lay(p, x ? s->in[0] : -1), yl = s_lay(p, s->out[0]);
    const int64_t ns = s_stored(&yl, n); /* y's storage elements */
    nn_glaunch_t *l = NULL;
    switch (s->op) {
    case NN_CONV:
    case NN_CONV_TRANSPOSE: {
        const void *bias, *res = NULL;
        if ((why = s_dev(p, s->nin > 2 ? s->in[2] : -1, &bias)))
            return why;
        if (s->residual && (why = s_dev(p, s->in[s->nin - 1], &res)))
            return why;
        nn_gconv_t c = {0};
        c.N = x->dims[0];
        c.C = x->dims[1];
        for (int k = 0; k < 3; k++) {
            int axis = 2 + k - (3 - s->nsp);
            c.xsp[k] = axis >= 2 ? x->dims[axis] : 1; /* the padded dims without a fused Pad */
        }
        c.pre = s->prepad;
        c.pre_mode = s->prepad_mode;
        c.pre_value = s->prepad_value;
        for (int k = 0; k < 3; k++)
            c.pre_b[k] = s->prepad_b[k];
        c.d2s_block = s->d2s_block;
        c.d2s_crd = s->d2s_crd;
        c.M = y->dims[1] * (s->d2s_block ? s->d2s_block * s->d2s_block : 1);
        c.G = s->group;
        for (int k = 0; k < 3; k++) {
            c.isp[k] = s->isp[k];
            c.osp[k] = s->osp[k];
            c.k[k] = s->k[k];
            c.st[k] = s->st[k];
            c.dil[k] = s->dil[k];
            c.pb[k] = s->pb[k];
        }
        c.transpose = s->op == NN_CONV_TRANSPOSE;
        c.act = (int)s->act;
        c.act_a = s->act_a;
        c.act_b = s->act_b;
        c.slope_n = s->act_slope_n;
        c.half = g->half;
        c.xl = xl;
        c.yl = yl;
        c.rl = s_lay(p, s->residual ? s->in[s->nin - 1] : -1);
        /* cuDNN's output before the epilogue: y itself, or (a fused DepthToSpace) a buffer in the
         * convolution's own shape */
        c.sl = c.yl;
        if (c.d2s_block && c.yl.nhwc)
            c.sl = (nn_glay_t){1, c.M, c.osp[1], c.osp[2], (c.M + 7) / 8 * 8};
        const float *slope = NULL;
        if (s->act == NN_ACT_PRELU) {
            void *d;
            if ((why = s_upload(g, s->act_slope, s->act_slope_n, sizeof(float), false, &d)))
                return why;
            slope = d;
        }
        void *dc = NULL;
        size_t ws = 0;
        /* cuDNN in NHWC reads weights we reorder, so they must be constants */
        const bool nhwc = c.xl.nhwc && c.sl.nhwc && p->v[s->in[1]].is_const;
        if (g->dnn && s->nsp == 2 && n && (nhwc || (!c.xl.nhwc && !c.sl.nhwc))) {
            const char *dwhy = nn_gk_dnn_conv_new(g->dnn, &c, cache_path, &dc, &ws);
            if (dwhy) {
                dc = NULL;
                if (!*dnn_warned)
                    RF_INFO(NN_GPU_LOG, "cuDNN refused %s ('%s'): %s; own kernels for it",
                            nn_op_name(s->op), s->node->name, dwhy);
                *dnn_warned = true;
            }
        }
        if (!(l = s_launch(g, dc ? L_DNN_CONV : L_CONV, i))) {
            nn_gk_dnn_conv_free(dc);
            return "out of host memory";
        }
        l->dnn_conv = dc;
        const void *w;
        if (dc && nhwc)
            why = s_upload_krsc(g, &p->v[s->in[1]], &c, &w);
        else
            why = s_dev(p, s->in[1], &w);
        if (why)
            return why;
        l->conv = c;
        l->x = dx;
        l->w = w;
        l->bias = bias;
        l->slope = slope;
        l->res = res;
        l->y = (void *)dy;
        l->n = n;
        l->src = l->y;
        if (!dc || c.d2s_block) /* our kernels store real channels only */
            s_zpad_after(l, &c.yl, n);
        if (dc && c.pre) { /* cuDNN reads a padded copy: the Pad runs before it */
            int r = 2 + s->nsp;
            l->pad.r = r;
            l->pad.mode = c.pre_mode;
            l->pad.value = c.pre_value;
            l->pad.xd[0] = l->pad.yd[0] = c.N;
            l->pad.xd[1] = l->pad.yd[1] = c.C;
            for (int k = 0; k < s->nsp; k++) {
                l->pad.xd[2 + k] = c.xsp[3 - s->nsp + k];
                l->pad.yd[2 + k] = c.isp[3 - s->nsp + k];
                l->pad.pb[2 + k] = c.pre_b[3 - s->nsp + k];
            }
            l->pad.xl = c.xl;
            l->pad.yl = c.xl;
            l->pad.yl.h = c.isp[1];
            l->pad.yl.w = c.isp[2];
            l->pad_n = s_stored(&l->pad.yl, c.N * c.C * c.isp[0] * c.isp[1] * c.isp[2]);
            void *tmp;
            if ((why = s_alloc(g, &tmp, (size_t)l->pad_n * g->es)))
                return why;
            l->padded = tmp;
        }
        if (dc && c.d2s_block) { /* cuDNN writes its layout; the epilogue moves it into place */
            void *tmp;
            if ((why = s_alloc(g, &tmp, (size_t)s_stored(&c.sl, n) * g->es)))
                return why;
            l->src = tmp;
        }
        if (ws > g->ws_bytes)
            g->ws_bytes = ws;
        return NULL;
    }
    case NN_BATCH_NORM:
    case NN_INSTANCE_NORM: {
        if (!(l = s_launch(g, L_NORM, i)))
            return "out of host memory";
        l->instance = s->op == NN_INSTANCE_NORM;
        if ((why = s_dev(p, s->in[1], &l->scale)) || (why = s_dev(p, s->in[2], &l->nbias)))
            return why;
        if (!l->instance &&
            ((why = s_dev(p, s->in[3], &l->mean)) || (why = s_dev(p, s->in[4], &l->var))))
            return why;
        l->N = x->dims[0];
        l->C = x->ndim > 1 ? x->dims[1] : 1;
        l->P = 1;
        for (int k = 2; k < x->ndim; k++)
            l->P *= x->dims[k];
        void *ab;
        if ((why = s_alloc(g, &ab, (size_t)(2 * l->N * l->C) * sizeof(float))))
            return why;
        l->ab = ab;
        if (l->instance && xl.nhwc) {
            void *sums;
            if ((why = s_alloc(g, &sums, (size_t)(2 * l->N * l->C) * sizeof(double))))
                return why;
            l->sums = sums;
        }
        l->eps = s->eps;
        l->epi.act = (int)s->act;
        l->epi.a = s->act_a;
        l->epi.b = s->act_b;
        l->epi.xl = xl;
        l->epi.yl = yl;
        if (s->residual) {
            if ((why = s_dev(p, s->in[s->nin - 1], &l->epi.res)))
                return why;
            l->epi.rl = s_lay(p, s->in[s->nin - 1]);
        }
        l->x = dx;
        l->y = (void *)dy;
        return NULL;
    }
    case NN_RELU:
    case NN_LEAKY_RELU:
    case NN_SIGMOID:
    case NN_TANH:
    case NN_CLIP: {
        if (!(l = s_launch(g, L_UNARY, i)))
            return "out of host memory";
        l->op = s->op == NN_RELU         ? NN_GA_RELU
                : s->op == NN_LEAKY_RELU ? NN_GA_LEAKY
                : s->op == NN_SIGMOID    ? NN_GA_SIGMOID
                : s->op == NN_TANH       ? NN_GA_TANH
                                         : NN_GA_CLIP;
        l->a = s->alpha;
        if (s->op == NN_CLIP) {
            if (s->node->version == 6) {
                l->a = s->alpha;
                l->b = s->beta;
            } else if (s_host_scalar(p, s, 1, -INFINITY, &l->a) ||
                       s_host_scalar(p, s, 2, INFINITY, &l->b)) {
                return "Clip's min and max must be constants";
            }
        }
        l->x = dx;
        l->y = (void *)dy;
        l->xl = xl;
        l->yl = yl;
        l->n = ns;
        return NULL;
    }
    case NN_PRELU:
    case NN_ADD:
    case NN_SUB:
    case NN_MUL:
    case NN_DIV: {
        const rf_nn_tensor_t *b = &p->v[s->in[1]].t;
        if (b->dtype != RF_NN_FLOAT)
            return "its second input is not float";
        if (!(l = s_launch(g, L_BINARY, i)))
            return "out of host memory";
        if ((why = s_dev(p, s->in[1], &l->w)))
            return why;
        s_bcast(&l->bc, x, b, y, s->b_trailing_ones);
        l->bc.op = s->op == NN_ADD   ? NN_GB_ADD
                   : s->op == NN_SUB ? NN_GB_SUB
                   : s->op == NN_MUL ? NN_GB_MUL
                   : s->op == NN_DIV ? NN_GB_DIV
                                     : NN_GB_PRELU;
        l->bc.half = g->half;
        l->bc.al = xl;
        l->bc.bl = s_lay(p, s->in[1]);
        l->bc.yl = yl;
        l->bc.flat = !s->b_trailing_ones && x->ndim == y->ndim && b->ndim == y->ndim &&
                     !memcmp(x->dims, y->dims, (size_t)y->ndim * sizeof(y->dims[0])) &&
                     !memcmp(b->dims, y->dims, (size_t)y->ndim * sizeof(y->dims[0])) &&
                     nn_gm_same(&xl, &yl) && nn_gm_same(&l->bc.bl, &yl);
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        return NULL;
    }
    case NN_CONCAT: {
        int64_t inner = 1, off = 0;
        for (int k = (int)s->axis + 1; k < y->ndim; k++)
            inner *= y->dims[k];
        for (int k = 0; k < s->nin; k++) {
            const rf_nn_tensor_t *xk = &p->v[s->in[k]].t;
            if (xk->dtype != RF_NN_FLOAT)
                return "an input is not float";
            if (!(l = s_launch(g, L_CONCAT, i)))
                return "out of host memory";
            if ((why = s_dev(p, s->in[k], &l->x)))
                return why;
            l->y = (void *)dy;
            l->xl = s_lay(p, s->in[k]);
            l->yl = yl;
            l->n = rf_nn_tensor_count(xk);
            l->ck_inner = xk->dims[s->axis] * inner;
            l->ctot_inner = y->dims[s->axis] * inner;
            l->off_inner = off * inner;
            off += xk->dims[s->axis];
        }
        if (s->nin)
            s_zpad_after(l, &yl, n); /* after the last input's copy */
        return NULL;
    }
    case NN_PAD: {
        if (!(l = s_launch(g, L_PAD, i)))
            return "out of host memory";
        l->pad.r = x->ndim;
        l->pad.mode = s->mode;
        for (int k = 0; k < x->ndim; k++) {
            l->pad.xd[k] = x->dims[k];
            l->pad.yd[k] = y->dims[k];
            l->pad.pb[k] = s->pads[k];
        }
        if (s->node->version == 2)
            l->pad.value = s->pad_value;
        else if (s_host_scalar(p, s, 2, 0.0f, &l->pad.value))
            return "Pad's constant value must be a constant";
        l->pad.xl = xl;
        l->pad.yl = yl;
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        return x->ndim ? NULL : "Pad of a scalar";
    }
    case NN_RESIZE: {
        if (!(l = s_launch(g, L_RESIZE, i)))
            return "out of host memory";
        int r = x->ndim;
        int64_t taps = 0, outs = 0;
        l->rz.r = r;
        l->rz.half = g->half;
        l->rz.extrapolation = s->extrapolation;
        for (int a = 0; a < r; a++) {
            l->rz.xd[a] = x->dims[a];
            l->rz.yd[a] = y->dims[a];
            l->rz.ntap[a] = s->rz[a].ntap;
            l->rz.off[a] = taps;
            l->rz.out_off[a] = outs;
            taps += s->rz[a].out * s->rz[a].ntap;
            outs += s->rz[a].out;
        }
        int64_t *idx = malloc((size_t)(taps + 1) * sizeof(int64_t));
        float *w = malloc((size_t)(taps + 1) * sizeof(float));
        uint8_t *nlive = malloc((size_t)(outs + 1)), *outside = malloc((size_t)(outs + 1));
        if (!idx || !w || !nlive || !outside) {
            free(idx);
            free(w);
            free(nlive);
            free(outside);
            return "out of host memory";
        }
        for (int a = 0; a < r; a++) {
            int64_t t = s->rz[a].out * s->rz[a].ntap;
            memcpy(idx + l->rz.off[a], s->rz[a].idx, (size_t)t * sizeof(int64_t));
            memcpy(w + l->rz.off[a], s->rz[a].w, (size_t)t * sizeof(float));
            memcpy(nlive + l->rz.out_off[a], s->rz[a].nlive, (size_t)s->rz[a].out);
            if (s->rz[a].outside)
                memcpy(outside + l->rz.out_off[a], s->rz[a].outside, (size_t)s->rz[a].out);
            else
                memset(outside + l->rz.out_off[a], 0, (size_t)s->rz[a].out);
        }
        void *d[4];
        why = s_upload(g, idx, taps, sizeof(int64_t), false, &d[0]);
        if (!why)
            why = s_upload(g, w, taps, sizeof(float), false, &d[1]);
        if (!why)
            why = s_upload(g, nlive, outs, 1, false, &d[2]);
        if (!why)
            why = s_upload(g, outside, outs, 1, false, &d[3]);
        free(idx);
        free(w);
        free(nlive);
        free(outside);
        if (why)
            return why;
        l->rz_idx = d[0];
        l->rz_w = d[1];
        l->rz_nlive = d[2];
        l->rz_outside = d[3];
        l->rz.xl = xl;
        l->rz.yl = yl;
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        return r ? NULL : "Resize of a scalar";
    }
    case NN_DEPTH_TO_SPACE:
    case NN_SPACE_TO_DEPTH: {
        if (!(l = s_launch(g, L_D2S, i)))
            return "out of host memory";
        const bool d2s = s->op == NN_DEPTH_TO_SPACE;
        const rf_nn_tensor_t *depth = d2s ? x : y;
        l->d2s = (nn_gd2s_t){depth->dims[0],
                             depth->dims[1],
                             depth->dims[2],
                             depth->dims[3],
                             s->block,
                             d2s,
                             d2s && s->mode == 1,
                             xl,
                             yl};
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        return NULL;
    }
    case NN_IDENTITY:
    case NN_RESHAPE:
    case NN_UNSQUEEZE:
    case NN_SQUEEZE:
    case NN_CAST: {
        const bool same = nn_gm_same(&xl, &yl);
        if (!(l = s_launch(g, same ? L_COPY : L_STRIDED, i)))
            return "out of host memory";
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        if (!same) { /* the same logical order in another layout */
            l->sd =
                (nn_gstrided_t){.r = 1, .half = g->half, .d = {n}, .s = {1}, .xl = xl, .yl = yl};
        }
        return NULL;
    }
    case NN_SLICE:
    case NN_TRANSPOSE: {
        if (!(l = s_launch(g, L_STRIDED, i)))
            return "out of host memory";
        int r = x->ndim;
        int64_t xs[RF_NN_MAX_DIMS];
        if (r)
            xs[r - 1] = 1;
        for (int k = r - 2; k >= 0; k--)
            xs[k] = xs[k + 1] * x->dims[k + 1];
        l->sd.r = r;
        l->sd.half = g->half;
        for (int k = 0; k < r; k++) {
            l->sd.d[k] = y->dims[k];
            if (s->op == NN_SLICE) {
                l->sd.s[k] = xs[k] * s->pads[r + k];
                l->sd.base += s->pads[k] * xs[k];
            } else {
                l->sd.s[k] = xs[s->perm[k]];
            }
        }
        l->sd.xl = xl;
        l->sd.yl = yl;
        l->x = dx;
        l->y = (void *)dy;
        l->n = ns;
        return r ? NULL : "a scalar";
    }
    default:
        return "the op has no device kernel";
    }
}

static const char *s_enqueue_one(struct nn_gpu *g, const nn_glaunch_t *l)
{
    const int h = g->half;
    switch (l->kind) {
    case L_CONV:
        return l->n ? nn_gk_conv(&l->conv, l->x, l->w, l->bias, l->slope, l->res, l->y, g->stream)
                    : NULL;
    case L_DNN_CONV: {
        const char *why =
            l->padded ? nn_gk_pad(&l->pad, l->x, l->padded, l->pad_n, h, g->stream) : NULL;
        if (!why)
            why = nn_gk_dnn_conv_run(g->dnn, l->dnn_conv, l->padded ? l->padded : l->x, l->w,
                                     l->src, g->workspace, g->stream);
        return why ? why
                   : nn_gk_epilogue(&l->conv, l->bias, l->slope, l->res, l->src, l->y, g->stream);
    }
    case L_NORM:
        return nn_gk_norm(l->instance, l->x, l->y, l->N, l->C, l->P, l->scale, l->nbias, l->mean,
                          l->var, l->eps, h, l->ab, l->sums, &l->epi, g->stream);
    case L_UNARY:
        return nn_gk_unary(l->op, l->x, &l->xl, l->y, &l->yl, l->n, l->a, l->b, h, g->stream);
    case L_BINARY:
        return nn_gk_binary(&l->bc, l->x, l->w, l->y, l->n, g->stream);
    case L_PAD:
        return nn_gk_pad(&l->pad, l->x, l->y, l->n, h, g->stream);
    case L_RESIZE:
        return nn_gk_resize(&l->rz, l->rz_idx, l->rz_w, l->rz_nlive, l->rz_outside, l->x, l->y,
                            l->n, g->stream);
    case L_D2S:
        return nn_gk_depth_space(&l->d2s, l->x, l->y, l->n, h, g->stream);
    case L_STRIDED:
        return nn_gk_strided(&l->sd, l->x, l->y, l->n, g->stream);
    case L_CONCAT:
        return nn_gk_concat(l->x, &l->xl, l->y, &l->yl, l->n, l->ck_inner, l->ctot_inner,
                            l->off_inner, h, g->stream);
    default:
        return l->n && l->x != l->y ? nn_gk_copy(l->y, l->x, (size_t)l->n * g->es, g->stream)
                                    : NULL;
    }
}

static const char *s_enqueue(struct nn_gpu *g, const nn_glaunch_t *l)
{
    const char *why = s_enqueue_one(g, l);
    return why || !l->zpad ? why : nn_gk_zpad(&l->zl, l->y, l->zn, g->half, g->stream);
}

/* Lays out the device arena: every value the CPU plan keeps in its arena, at its stored size
 * (storage type, layout), alive over the same steps; allocates it. */
static const char *s_place(rf_nn_plan_t *p)
{
    struct nn_gpu *g = p->gpu;
    nn_block_t *blocks = calloc((size_t)p->nv + 1, sizeof(nn_block_t));
    if (!blocks)
        return "out of host memory";
    int nb = 0;
    for (int v = 0; v < p->nv; v++) {
        const pval_t *pv = &p->v[v];
        if (!pv->in_arena)
            continue;
        const nn_glay_t l = s_lay(p, v);
        const int64_t count = rf_nn_tensor_count(&pv->t);
        const size_t es = pv->t.dtype == RF_NN_FLOAT ? g->es : nn_dtype_size(pv->t.dtype);
        const size_t bytes = (size_t)s_stored(&l, count) * es;
        blocks[nb++] = (nn_block_t){(bytes + NN_ALIGN - 1) / NN_ALIGN * NN_ALIGN, &g->voff[v],
                                    pv->first, pv->last};
    }
    g->arena_bytes = nn_arena_fit(blocks, nb);
    free(blocks);
    void *arena;
    const char *why = s_alloc(g, &arena, g->arena_bytes);
    g->arena = arena;
    return why;
}

size_t nn_gpu_arena_bytes(const rf_nn_plan_t *p)
{
    return p->gpu->arena_bytes;
}

void *nn_gpu_host_buffer(rf_nn_plan_t *p, bool output, int i, size_t bytes)
{
    struct nn_gpu *g = p->gpu;
    if (!g->host && !(g->host = calloc((size_t)(p->ninputs + p->noutputs), sizeof(void *))))
        return NULL;
    void **slot = &g->host[output ? p->ninputs + i : i];
    if (!*slot) {
        const char *why = nn_gk_host_alloc(slot, bytes);
        if (why) {
            RF_INFO(NN_GPU_LOG, "pinned host buffer of %zu bytes refused (%s): pageable copies",
                    bytes, why);
            *slot = NULL;
        }
    }
    return *slot;
}

void nn_gpu_free(rf_nn_plan_t *p)
{
    struct nn_gpu *g = p->gpu;
    if (!g)
        return;
    if (g->stream)
        nn_gk_stream_sync(g->stream);
    if (g->graph)
        nn_gk_graph_destroy(g->graph);
    for (int i = 0; i < g->nl; i++)
        if (g->l[i].dnn_conv)
            nn_gk_dnn_conv_free(g->l[i].dnn_conv);
    for (int i = 0; i < g->nallocs; i++)
        nn_gk_free(g->allocs[i]);
    if (g->dnn)
        nn_gk_dnn_close(g->dnn);
    if (g->stream)
        nn_gk_stream_destroy(g->stream);
    if (g->host)
        for (int i = 0; i < p->ninputs + p->noutputs; i++)
            nn_gk_host_free(g->host[i]);
    free(g->host);
    free(g->allocs);
    free(g->cdev);
    free(g->voff);
    free(g->dense);
    free(g->l);
    free(g);
    p->gpu = NULL;
}

int nn_gpu_create(rf_nn_plan_t *p, const rf_nn_plan_options_t *opt, rf_err_t *err)
{
    const int dev = opt ? opt->gpu_index : 0;
    const char *why = nn_gk_device_open(dev);
    if (why) {
        char what[64];
        snprintf(what, sizeof(what), "device %d", dev);
        return s_fail(err, what, why);
    }
    struct nn_gpu *g = calloc(1, sizeof(*g));
    if (!g)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    p->gpu = g;
    g->device = dev;
    g->half = opt && opt->fp16;
    g->es = g->half ? 2 : 4;
    g->cdev = calloc((size_t)p->cap + 1, sizeof(void *));
    g->voff = calloc((size_t)p->cap + 1, sizeof(size_t));
    g->dense = calloc((size_t)p->cap + 1, sizeof(bool));
    if (!g->cdev || !g->voff || !g->dense)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    for (int i = 0; i < p->nsteps; i++) /* weights given as graph inputs: our kernels read them */
        if (!p->steps[i].dead &&
            (p->steps[i].op == NN_CONV || p->steps[i].op == NN_CONV_TRANSPOSE) &&
            p->steps[i].nin > 1 && p->steps[i].in[1] >= 0)
            g->dense[p->steps[i].in[1]] = true;
    if ((why = nn_gk_stream_new(&g->stream)))
        return s_fail(err, "a stream", why);
    const char *dwhy = NULL;
    g->dnn = nn_gk_dnn_open(&dwhy);
    if (g->dnn)
        RF_DEBUG(NN_GPU_LOG, "plan on device %d: cuDNN for the convolutions", dev);
    else
        RF_INFO(NN_GPU_LOG, "plan on device %d: own convolution kernels (cuDNN: %s)", dev,
                dwhy ? dwhy : "unavailable");
    const char *lay = getenv("RF_NN_LAYOUT");
    g->nhwc = lay && !strcmp(lay, "nhwc") ? 1 : lay && !strcmp(lay, "nchw") ? 0 : g->half && g->dnn;
    if ((why = s_place(p)))
        return s_fail(err, "the plan's arena", why);
    RF_DEBUG(NN_GPU_LOG, "plan on device %d: %s, %s layout, %zu-byte arena", dev,
             g->half ? "fp16" : "fp32", g->nhwc ? "NHWC (channels padded to 8)" : "NCHW",
             g->arena_bytes);
    char cache_path[1024];
    s_cache_path(opt, cache_path, sizeof(cache_path));
    bool dnn_warned = false;
    for (int i = 0; i < p->nsteps; i++) {
        if (p->steps[i].dead)
            continue;
        if ((why = s_build_step(p, i, cache_path[0] ? cache_path : NULL, &dnn_warned))) {
            char desc[RF_NN_NAME_MAX + 64];
            return s_fail(err, nn_node_desc(p->steps[i].node, desc, sizeof(desc)), why);
        }
    }
    if (g->ws_bytes && (why = s_alloc(g, &g->workspace, g->ws_bytes)))
        return s_fail(err, "cuDNN's workspace", why);
    size_t st = 0;
    for (int i = 0; i < p->ninputs; i++) {
        size_t b = (size_t)rf_nn_tensor_count(&p->v[p->inputs[i]].t) * 4;
        st = b > st ? b : st;
    }
    for (int i = 0; i < p->noutputs; i++) {
        size_t b = (size_t)rf_nn_tensor_count(&p->v[p->outputs[i]].t) * 4;
        st = b > st ? b : st;
    }
    if ((g->half || g->nhwc) && (why = s_alloc(g, &g->staging, st)))
        return s_fail(err, "the plan's staging buffer", why);
    /* Every output must be readable back: in the arena as float, or a constant on the host. */
    for (int i = 0; i < p->noutputs; i++) {
        const pval_t *v = &p->v[p->outputs[i]];
        if (!v->is_const && (!v->in_arena || v->t.dtype != RF_NN_FLOAT))
            return s_fail(err, v->t.name, "the output is not a float tensor the device computes");
    }
    /* A non-float input may only fix shapes (its values known at plan time, read on the host):
     * every step that reads one on the device was refused above. */
    for (int i = 0; i < p->ninputs; i++) {
        const pval_t *v = &p->v[p->inputs[i]];
        if (v->in_arena && v->t.dtype != RF_NN_FLOAT && !v->pinned)
            return s_fail(err, v->t.name, "the input is not float");
    }
    return 0;
}

static const char *s_run_list(struct nn_gpu *g)
{
    for (int i = 0; i < g->nl; i++) {
        const char *why = s_enqueue(g, &g->l[i]);
        if (why)
            return why;
    }
    return NULL;
}

/* Runs the launch list: directly on the first run, captured as a graph on the second, the graph
 * replayed after that. A capture that fails turns graphs off for the plan (logged). */
static const char *s_run_steps(struct nn_gpu *g)
{
    if (g->graph)
        return nn_gk_graph_launch(g->graph, g->stream);
    if (g->runs < 1 || g->graph_off)
        return s_run_list(g);
    const char *why = nn_gk_graph_begin(g->stream);
    if (!why) {
        const char *lwhy = s_run_list(g);
        void *exec = NULL;
        why = nn_gk_graph_end(g->stream, &exec);
        if (lwhy && !why) {
            nn_gk_graph_destroy(exec);
            return lwhy;
        }
        if (!why) {
            g->graph = exec;
            return nn_gk_graph_launch(g->graph, g->stream);
        }
    }
    RF_INFO(NN_GPU_LOG, "CUDA graph capture unavailable (%s): launching the steps one by one", why);
    g->graph_off = true;
    return s_run_list(g);
}

int nn_gpu_run(rf_nn_plan_t *p, const rf_nn_tensor_t *inputs, rf_nn_tensor_t *outputs,
               rf_err_t *err)
{
    struct nn_gpu *g = p->gpu;
    const char *why = nn_gk_device_open(g->device); /* the calling thread's current device */
    if (why)
        return s_fail(err, "selecting the plan's device", why);
    for (int i = 0; i < p->ninputs; i++) {
        const pval_t *v = &p->v[p->inputs[i]];
        if (!v->in_arena || v->t.dtype != RF_NN_FLOAT)
            continue; /* not read on the device (values fixed at plan time) */
        const int64_t n = rf_nn_tensor_count(&v->t);
        void *dst = g->arena + g->voff[p->inputs[i]];
        const nn_glay_t dense = {0}, l = s_lay(p, p->inputs[i]);
        const bool conv = g->half || l.nhwc;
        if ((why = nn_gk_upload(conv ? g->staging : dst, inputs[i].data, (size_t)n * sizeof(float),
                                g->stream)) ||
            (conv && (why = nn_gk_convert(g->staging, 0, &dense, dst, g->half, &l, s_stored(&l, n),
                                          g->stream))))
            return s_fail(err, v->t.name, why);
    }
    if ((why = s_run_steps(g)))
        return s_fail(err, "running the plan", why);
    g->runs++;
    /* outputs queue one after the other on the stream (they share the staging buffer) */
    for (int i = 0; i < p->noutputs; i++) {
        const pval_t *v = &p->v[p->outputs[i]];
        rf_nn_tensor_t *o = &outputs[i];
        size_t need;
        int rc = nn_output_bind(v, o, &need, err);
        if (rc)
            return rc;
        if (!need)
            continue;
        if (v->is_const) {
            memcpy(o->data, v->t.data, need);
            continue;
        }
        const int64_t n = rf_nn_tensor_count(&v->t);
        const void *src = g->arena + g->voff[p->outputs[i]];
        const nn_glay_t dense = {0}, l = s_lay(p, p->outputs[i]);
        const bool conv = g->half || l.nhwc;
        if ((conv &&
             (why = nn_gk_convert(src, g->half, &l, g->staging, 0, &dense, n, g->stream))) ||
            (why = nn_gk_download(o->data, conv ? g->staging : src, (size_t)n * sizeof(float),
                                  g->stream)))
            return s_fail(err, v->t.name, why);
    }
    /* the outputs are there, and nothing still reads the caller's (pinned) inputs */
    if ((why = nn_gk_stream_sync(g->stream)))
        return s_fail(err, "running the plan", why);
    return 0;
}
