/* nn_gpu_math.h - the per-element arithmetic of the ONNX executor's CUDA kernels (nn_gpu.cu).
 *
 * Every kernel of nn_gpu.cu runs one of these functions per thread (one output element, or one
 * (image, channel) plane for InstanceNormalization's statistics). The header also compiles as C
 * (NN_HD is "static inline"), so the tests run the same functions on the CPU through an emulated
 * device (tests/worker/nncudaemu.h) and compare the GPU backend's plan with the CPU reference on
 * machines without a GPU, as worker/gpu/gpu_math.h does for the classic passes.
 *
 * Tensors are stored as fp32 or as fp16 bits (half != 0); arithmetic is fp32 with double for
 * InstanceNormalization's statistics and Resize's tap sums, as the CPU reference does. Each
 * function works on logical indices (dense row-major, NCHW for images, as at nn.h's boundary) and
 * reaches memory through a tensor's layout (nn_glay_t): dense, or NHWC with the channels padded
 * to a multiple of 8 (the layout tensor cores want); kernels that iterate over a tensor's storage
 * write zeros into its pad channels.
 */
#ifndef RF_NN_GPU_MATH_H
#define RF_NN_GPU_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define NN_HD static __host__ __device__ __forceinline__
#else
#define NN_HD static inline
#endif

#define NN_G_MAX_DIMS 8 /* RF_NN_MAX_DIMS */

/* ---- storage -------------------------------------------------------------------------------- */

/* IEEE binary16 bits of f, round to nearest even (subnormals kept, overflow to infinity). */
NN_HD uint16_t nn_gm_half_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    const uint32_t sign = (v.u >> 16) & 0x8000u;
    const uint32_t abs = v.u & 0x7fffffffu;
    if (abs > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {
        if (abs < 0x33000000u)
            return (uint16_t)sign;
        const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        const int shift = 126 - (int)(abs >> 23);
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((abs >> 13) - (112u << 10)) & 0xffffu;
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++;
    return (uint16_t)(sign | h);
}

/* The float value of binary16 bits (exact). */
NN_HD float nn_gm_half_value(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    union {
        uint32_t u;
        float f;
    } v;
    if (exp == 0) {
        v.f = (float)mant * (1.0f / 16777216.0f);
        v.u |= sign;
        return v.f;
    }
    if (exp == 31)
        v.u = sign | 0x7f800000u | (mant << 13);
    else
        v.u = sign | ((exp + 112u) << 23) | (mant << 13);
    return v.f;
}

/* Loads and stores in storage type. On the device the hardware conversions (the same
 * round-to-nearest-even, the same values; a NaN may get other payload bits). */
NN_HD float nn_gm_ld(const void *p, int64_t i, int half)
{
#ifdef __CUDA_ARCH__
    if (half)
        return __half2float(((const __half *)p)[i]);
#else
    if (half)
        return nn_gm_half_value(((const uint16_t *)p)[i]);
#endif
    return ((const float *)p)[i];
}

NN_HD void nn_gm_st(void *p, int64_t i, float v, int half)
{
#ifdef __CUDA_ARCH__
    if (half) {
        ((__half *)p)[i] = __float2half_rn(v);
        return;
    }
#else
    if (half) {
        ((uint16_t *)p)[i] = nn_gm_half_bits(v);
        return;
    }
#endif
    ((float *)p)[i] = v;
}

/* ---- layouts -------------------------------------------------------------------------------- */

/* Where a tensor's elements lie: dense in logical order (nhwc == 0), or, for a 4-D tensor
 * (N, c, h, w), NHWC with cp >= c channels per pixel, channels c..cp-1 zero. */
typedef struct nn_glay {
    int nhwc;
    int64_t c, h, w, cp;
} nn_glay_t;

/* The storage index of logical element i. */
NN_HD int64_t nn_gm_at(const nn_glay_t *l, int64_t i)
{
    if (!l->nhwc)
        return i;
    const int64_t hw = l->h * l->w, q = i / hw; /* q = n * c + channel */
    return ((q / l->c) * hw + i % hw) * l->cp + q % l->c;
}

/* The logical element at storage index s, or -1 for a pad channel. */
NN_HD int64_t nn_gm_logical(const nn_glay_t *l, int64_t s)
{
    if (!l->nhwc)
        return s;
    const int64_t ch = s % l->cp;
    if (ch >= l->c)
        return -1;
    const int64_t r = s / l->cp, hw = l->h * l->w; /* r = n * hw + pixel */
    return ((r / hw) * l->c + ch) * hw + r % hw;
}

/* Whether two layouts place every element alike, so one storage index serves both. */
NN_HD int nn_gm_same(const nn_glay_t *a, const nn_glay_t *b)
{
    return a->nhwc == b->nhwc &&
           (!a->nhwc || (a->c == b->c && a->h == b->h && a->w == b->w && a->cp == b->cp));
}

/* Whether storage index s of l is a pad channel. */
NN_HD int nn_gm_is_pad(const nn_glay_t *l, int64_t s)
{
    return l->nhwc && s % l->cp >= l->c;
}

/* Pad's index map along one axis: mode 0 constant (-1), 1 reflect (repeated beyond the axis,
 * numpy's rule), 2 edge, 3 wrap. */
NN_HD int64_t nn_gm_pad_map(int mode, int64_t o, int64_t pb, int64_t n)
{
    int64_t i = o - pb;
    if (i >= 0 && i < n)
        return i;
    if (mode == 1) {
        if (n == 1)
            return 0;
        int64_t period = 2 * (n - 1);
        i %= period;
        if (i < 0)
            i += period;
        return i >= n ? period - i : i;
    }
    if (mode == 2)
        return i < 0 ? 0 : n - 1;
    if (mode == 3) {
        i %= n;
        return i < 0 ? i + n : i;
    }
    return -1;
}

/* ---- depth and space ----------------------------------------------------------------------- */

/* DepthToSpace (DCR or CRD) and SpaceToDepth: the depth-layout element that output o reads (or
 * for SpaceToDepth, that output o is). Depth layout (N, C, H, W), block b. */
typedef struct nn_gd2s {
    int64_t N, C, H, W, b;
    int d2s, crd;
    nn_glay_t xl, yl;
} nn_gd2s_t;

/* For element ci, h, w, n of the depth layout: its position in the space layout. */
NN_HD int64_t nn_gm_d2s_space(const nn_gd2s_t *p, int64_t dpos)
{
    const int64_t b = p->b, oc = p->C / (b * b);
    const int64_t w = dpos % p->W, h = (dpos / p->W) % p->H, ci = (dpos / (p->W * p->H)) % p->C,
                  n = dpos / (p->W * p->H * p->C);
    int64_t co, i, j;
    if (!p->crd) {
        i = ci / (b * oc);
        j = (ci / oc) % b;
        co = ci % oc;
    } else {
        co = ci / (b * b);
        i = (ci / b) % b;
        j = ci % b;
    }
    return ((n * oc + co) * p->H * b + h * b + i) * p->W * b + w * b + j;
}

/* ---- convolution ---------------------------------------------------------------------------- */

/* Activations of a convolution's epilogue (nn_internal.h's nn_act_t, same order). */
enum { NN_GA_NONE, NN_GA_RELU, NN_GA_LEAKY, NN_GA_SIGMOID, NN_GA_TANH, NN_GA_CLIP, NN_GA_PRELU };

/* Activation act (NN_GA_*) of v: a is LeakyRelu's alpha, PRelu's slope or Clip's min, b Clip's
 * max. Every kernel's activation (a convolution's or a normalization's epilogue, the element-wise
 * ops) runs through it. */
NN_HD float nn_gm_act(int act, float v, float a, float b)
{
    switch (act) {
    case NN_GA_RELU:
        return v > 0 ? v : 0.0f;
    case NN_GA_LEAKY:
    case NN_GA_PRELU:
        return v < 0 ? v * a : v;
    case NN_GA_SIGMOID:
        return 1.0f / (1.0f + expf(-v));
    case NN_GA_TANH:
        return tanhf(v);
    case NN_GA_CLIP:
        return v < a ? a : v > b ? b : v;
    default:
        return v;
    }
}

/* One Conv or ConvTranspose step: spatial dims padded to 3 (D, H, W) with leading 1s, as the
 * CPU plan's nn_step_t has them. */
typedef struct nn_gconv {
    int64_t N, C, M, G;
    int64_t isp[3], osp[3], k[3], st[3], dil[3], pb[3];
    int transpose;
    int act;
    float act_a, act_b; /* LeakyRelu alpha; Clip min, max */
    int64_t slope_n;    /* PRelu: 1 or M slopes */
    int half;
    int64_t d2s_block; /* a fused DepthToSpace: where element o is stored (0 = at o) */
    int d2s_crd;
    /* A fused Pad before a Conv: isp are the padded dims the convolution sees, xsp the input's own
     * (equal without one); padded position i reads the input at nn_gm_pad_map(pre_mode, i,
     * pre_b, xsp), or pre_value. */
    int pre;
    int pre_mode;
    int64_t pre_b[3], xsp[3];
    float pre_value;
    /* Layouts: the input x (its own dims, xsp), the output y (after a fused DepthToSpace), the
     * residual, and the convolution's own output before its epilogue (cuDNN's buffer). */
    nn_glay_t xl, yl, rl, sl;
} nn_gconv_t;

/* The convolution sum (no bias) at output element o = ((n * M + m) * OD + od) * OH * OW + ...;
 * weights W[M][C/G][kd][kh][kw] for Conv, W[C][M/G][kd][kh][kw] for ConvTranspose (which is
 * computed as a gather: the input positions whose scatter reaches this output). */
/* The input value at padded position (id, ih, iw) of input plane xbase (positions inside the
 * padded dims; a fused Pad maps them to the input or its constant). */
NN_HD float nn_gm_conv_in(const nn_gconv_t *p, const void *x, int64_t xbase, int64_t id, int64_t ih,
                          int64_t iw)
{
    if (p->pre) {
        id = nn_gm_pad_map(p->pre_mode, id, p->pre_b[0], p->xsp[0]);
        ih = nn_gm_pad_map(p->pre_mode, ih, p->pre_b[1], p->xsp[1]);
        iw = nn_gm_pad_map(p->pre_mode, iw, p->pre_b[2], p->xsp[2]);
        if (id < 0 || ih < 0 || iw < 0)
            return p->pre_value;
    }
    return nn_gm_ld(x, nn_gm_at(&p->xl, xbase + (id * p->xsp[1] + ih) * p->xsp[2] + iw), p->half);
}

NN_HD float nn_gm_conv_sum(const nn_gconv_t *p, const void *x, const void *w, int64_t o)
{
    const int64_t OD = p->osp[0], OH = p->osp[1], OW = p->osp[2];
    const int64_t ID = p->isp[0], IH = p->isp[1], IW = p->isp[2];
    const int64_t ow = o % OW, oh = (o / OW) % OH, od = (o / (OW * OH)) % OD;
    const int64_t m = (o / (OW * OH * OD)) % p->M, n = o / (OW * OH * OD * p->M);
    const int64_t cg = p->C / p->G, mg = p->M / p->G, g = m / mg;
    const int64_t K = p->k[0] * p->k[1] * p->k[2];
    float acc = 0.0f;
    for (int64_t c = 0; c < cg; c++) {
        const int64_t ci = g * cg + c;
        const int64_t xbase = (n * p->C + ci) * p->xsp[0] * p->xsp[1] * p->xsp[2];
        const int64_t wbase = p->transpose ? (ci * mg + (m - g * mg)) * K : (m * cg + c) * K;
        for (int64_t kd = 0; kd < p->k[0]; kd++)
            for (int64_t kh = 0; kh < p->k[1]; kh++)
                for (int64_t kw = 0; kw < p->k[2]; kw++) {
                    int64_t id, ih, iw;
                    if (!p->transpose) {
                        id = od * p->st[0] - p->pb[0] + kd * p->dil[0];
                        ih = oh * p->st[1] - p->pb[1] + kh * p->dil[1];
                        iw = ow * p->st[2] - p->pb[2] + kw * p->dil[2];
                    } else {
                        /* o = i * st - pb + k * dil  =>  i = (o + pb - k * dil) / st */
                        int64_t td = od + p->pb[0] - kd * p->dil[0];
                        int64_t th = oh + p->pb[1] - kh * p->dil[1];
                        int64_t tw = ow + p->pb[2] - kw * p->dil[2];
                        if (td < 0 || th < 0 || tw < 0 || td % p->st[0] || th % p->st[1] ||
                            tw % p->st[2])
                            continue;
                        id = td / p->st[0];
                        ih = th / p->st[1];
                        iw = tw / p->st[2];
                    }
                    if (id < 0 || id >= ID || ih < 0 || ih >= IH || iw < 0 || iw >= IW)
                        continue;
                    acc += nn_gm_conv_in(p, x, xbase, id, ih, iw) *
                           nn_gm_ld(w, wbase + (kd * p->k[1] + kh) * p->k[2] + kw, p->half);
                }
    }
    return acc;
}

/* Where the convolution's output element o is stored: o itself, or with a fused DepthToSpace its
 * place in that op's output (nn_gm_d2s_space, the convolution's output as the depth layout). */
NN_HD int64_t nn_gm_conv_store(const nn_gconv_t *p, int64_t o)
{
    if (!p->d2s_block)
        return o;
    nn_gd2s_t d;
    d.N = p->N;
    d.C = p->M;
    d.H = p->osp[1];
    d.W = p->osp[2];
    d.b = p->d2s_block;
    d.d2s = 1;
    d.crd = p->d2s_crd;
    return nn_gm_d2s_space(&d, o);
}

/* The epilogue: bias, activation, then the residual (an Add after the activation, fused), read at
 * o, the element's logical store index (nn_gm_conv_store). */
NN_HD float nn_gm_epilogue(const nn_gconv_t *p, float v, int64_t m, const void *bias,
                           const float *slope, const void *res, int64_t o)
{
    if (bias)
        v += nn_gm_ld(bias, m, p->half);
    v = nn_gm_act(p->act, v, p->act == NN_GA_PRELU ? slope[p->slope_n == 1 ? 0 : m] : p->act_a,
                  p->act_b);
    if (res)
        v += nn_gm_ld(res, nn_gm_at(&p->rl, o), p->half);
    return v;
}

/* The output channel of element o. */
NN_HD int64_t nn_gm_conv_channel(const nn_gconv_t *p, int64_t o)
{
    return (o / (p->osp[0] * p->osp[1] * p->osp[2])) % p->M;
}

/* ---- normalization -------------------------------------------------------------------------- */

/* InstanceNormalization's statistics of one plane of P elements (two passes in double, as the
 * CPU reference), folded with scale and bias into y = x * ab[0] + ab[1]. */
NN_HD void nn_gm_instnorm_plane(const void *x, const nn_glay_t *xl, int64_t plane, int64_t P,
                                float scale, float bias, double eps, int half, float *ab)
{
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < P; i++)
        sum += nn_gm_ld(x, nn_gm_at(xl, plane * P + i), half);
    double mean = P ? sum / (double)P : 0;
    for (int64_t i = 0; i < P; i++) {
        double d = nn_gm_ld(x, nn_gm_at(xl, plane * P + i), half) - mean;
        sq += d * d;
    }
    double var = P ? sq / (double)P : 0;
    float a = (float)((double)scale / sqrt(var + eps));
    ab[0] = a;
    ab[1] = (float)((double)bias - mean * (double)a);
}

/* The same ab from one pass's sums (the NHWC statistics kernel): sum and sum of squares of the
 * plane's P values, in double. */
NN_HD void nn_gm_instnorm_finish(double sum, double sq, int64_t P, float scale, float bias,
                                 double eps, float *ab)
{
    const double mean = P ? sum / (double)P : 0;
    double var = P ? sq / (double)P - mean * mean : 0;
    if (var < 0)
        var = 0;
    const float a = (float)((double)scale / sqrt(var + eps));
    ab[0] = a;
    ab[1] = (float)((double)bias - mean * (double)a);
}

/* BatchNormalization (not folded into a Conv): the same ab from the running statistics. */
NN_HD void nn_gm_batchnorm_ab(float scale, float bias, float mean, float var, double eps, float *ab)
{
    float a = (float)((double)scale / sqrt((double)var + eps));
    ab[0] = a;
    ab[1] = (float)((double)bias - (double)mean * (double)a);
}

/* The apply of a normalization with its fused epilogue: y = act(x * ab[0] + ab[1]) + res (act one
 * of NN_GA_* except PRelu; a, b its LeakyRelu alpha or Clip bounds; res read at logical i). */
NN_HD float nn_gm_norm_apply(float x, const float *ab, int act, float a, float b, const void *res,
                             const nn_glay_t *rl, int64_t i, int half)
{
    float v = x * ab[0] + ab[1];
    v = nn_gm_act(act, v, a, b);
    if (res)
        v += nn_gm_ld(res, nn_gm_at(rl, i), half);
    return v;
}

/* ---- element-wise --------------------------------------------------------------------------- */

enum { NN_GB_ADD, NN_GB_SUB, NN_GB_MUL, NN_GB_DIV, NN_GB_PRELU };

/* Broadcasting: output dims d, each side's element stride per output axis (0 where it is 1). */
typedef struct nn_gbcast {
    int r, op, half;
    int flat; /* a, b and y have one shape and one layout: element s of each */
    int64_t d[NN_G_MAX_DIMS], sa[NN_G_MAX_DIMS], sb[NN_G_MAX_DIMS];
    nn_glay_t al, bl, yl;
} nn_gbcast_t;

NN_HD float nn_gm_binop(int op, float x, float y)
{
    switch (op) {
    case NN_GB_ADD:
        return x + y;
    case NN_GB_SUB:
        return x - y;
    case NN_GB_MUL:
        return x * y;
    case NN_GB_DIV:
        return x / y;
    default:
        return x < 0 ? x * y : x;
    }
}

NN_HD float nn_gm_binary(const nn_gbcast_t *p, const void *a, const void *b, int64_t o)
{
    int64_t ia = 0, ib = 0, q = o;
    for (int i = p->r - 1; i >= 0; i--) {
        int64_t c = q % p->d[i];
        q /= p->d[i];
        ia += c * p->sa[i];
        ib += c * p->sb[i];
    }
    return nn_gm_binop(p->op, nn_gm_ld(a, nn_gm_at(&p->al, ia), p->half),
                       nn_gm_ld(b, nn_gm_at(&p->bl, ib), p->half));
}

/* ---- data movement -------------------------------------------------------------------------- */

/* Pad, with nn_gm_pad_map's modes. */
typedef struct nn_gpad {
    int r, mode;
    int64_t xd[NN_G_MAX_DIMS], yd[NN_G_MAX_DIMS], pb[NN_G_MAX_DIMS];
    float value;
    nn_glay_t xl, yl;
} nn_gpad_t;

/* The input element output o reads, or -1 for the constant. */
NN_HD int64_t nn_gm_pad_src(const nn_gpad_t *p, int64_t o)
{
    int64_t src = 0, stride = 1, q = o;
    for (int i = p->r - 1; i >= 0; i--) {
        int64_t c = q % p->yd[i];
        q /= p->yd[i];
        int64_t m = nn_gm_pad_map(p->mode, c, p->pb[i], p->xd[i]);
        if (m < 0)
            return -1;
        src += m * stride;
        stride *= p->xd[i];
    }
    return src;
}

/* Resize from per-axis tap tables (the CPU plan's nn_resize_axis_t, uploaded back to back:
 * axis a's entries start at off[a] in idx and w, at out_off[a] in nlive and outside). */
typedef struct nn_gresize {
    int r, half;
    int64_t xd[NN_G_MAX_DIMS], yd[NN_G_MAX_DIMS];
    int ntap[NN_G_MAX_DIMS];
    int64_t off[NN_G_MAX_DIMS], out_off[NN_G_MAX_DIMS];
    float extrapolation;
    nn_glay_t xl, yl;
} nn_gresize_t;

NN_HD float nn_gm_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                         const uint8_t *nlive, const uint8_t *outside, const void *x, int64_t o)
{
    int64_t c[NN_G_MAX_DIMS], xs[NN_G_MAX_DIMS], q = o;
    for (int a = p->r - 1; a >= 0; a--) {
        c[a] = q % p->yd[a];
        q /= p->yd[a];
    }
    xs[p->r - 1] = 1;
    for (int a = p->r - 2; a >= 0; a--)
        xs[a] = xs[a + 1] * p->xd[a + 1];
    for (int a = 0; a < p->r; a++)
        if (outside[p->out_off[a] + c[a]])
            return p->extrapolation;
    int t[NN_G_MAX_DIMS];
    for (int a = 0; a < p->r; a++)
        t[a] = 0;
    double acc = 0;
    for (;;) {
        double wt = 1;
        int64_t off = 0;
        for (int a = 0; a < p->r; a++) {
            int64_t k = p->off[a] + c[a] * p->ntap[a] + t[a];
            wt *= w[k];
            off += idx[k] * xs[a];
        }
        acc += wt * nn_gm_ld(x, nn_gm_at(&p->xl, off), p->half);
        int a = p->r - 1;
        for (; a >= 0; a--) {
            if (++t[a] < nlive[p->out_off[a] + c[a]])
                break;
            t[a] = 0;
        }
        if (a < 0)
            break;
    }
    return (float)acc;
}

/* The inverse: for element spos of the space layout, its position in the depth layout. */
NN_HD int64_t nn_gm_d2s_depth(const nn_gd2s_t *p, int64_t spos)
{
    const int64_t b = p->b, oc = p->C / (b * b), SW = p->W * b, SH = p->H * b;
    const int64_t x = spos % SW, yy = (spos / SW) % SH, co = (spos / (SW * SH)) % oc,
                  n = spos / (SW * SH * oc);
    const int64_t i = yy % b, j = x % b;
    const int64_t ci = p->crd ? (co * b + i) * b + j : (i * b + j) * oc + co;
    return ((n * p->C + ci) * p->H + yy / b) * p->W + x / b;
}

/* Output dims d, the source's element stride per output axis, and a base: Slice, Transpose, a
 * copy between layouts (r = 1, s = 1). */
typedef struct nn_gstrided {
    int r, half;
    int64_t d[NN_G_MAX_DIMS], s[NN_G_MAX_DIMS];
    int64_t base;
    nn_glay_t xl, yl;
} nn_gstrided_t;

NN_HD int64_t nn_gm_strided_src(const nn_gstrided_t *p, int64_t o)
{
    int64_t src = p->base, q = o;
    for (int i = p->r - 1; i >= 0; i--) {
        src += (q % p->d[i]) * p->s[i];
        q /= p->d[i];
    }
    return src;
}

/* Concat: element o of input k (outer x (ck * inner)) lands at this output element. */
NN_HD int64_t nn_gm_concat_dst(int64_t o, int64_t ck_inner, int64_t ctot_inner, int64_t off_inner)
{
    return (o / ck_inner) * ctot_inner + off_inner + o % ck_inner;
}

/* ---- one storage element of each kernel's output ---------------------------------------------
 * The kernels of nn_gpu.cu (and the tests' emulation) run these once per storage index s of y:
 * the logical element there is computed from its inputs through their layouts, and a pad channel
 * gets 0. */

NN_HD void nn_gm_unary_el(int op, const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                          int64_t s, float a, float b, int half)
{
    int64_t i = s; /* x's storage index */
    if (!nn_gm_same(xl, yl)) {
        const int64_t o = nn_gm_logical(yl, s);
        i = o < 0 ? -1 : nn_gm_at(xl, o);
    } else if (nn_gm_is_pad(yl, s)) {
        i = -1;
    }
    nn_gm_st(y, s, i < 0 ? 0.0f : nn_gm_act(op, nn_gm_ld(x, i, half), a, b), half);
}

NN_HD void nn_gm_binary_el(const nn_gbcast_t *p, const void *a, const void *b, void *y, int64_t s)
{
    float v;
    if (p->flat) {
        v = nn_gm_is_pad(&p->yl, s)
                ? 0.0f
                : nn_gm_binop(p->op, nn_gm_ld(a, s, p->half), nn_gm_ld(b, s, p->half));
    } else {
        const int64_t o = nn_gm_logical(&p->yl, s);
        v = o < 0 ? 0.0f : nn_gm_binary(p, a, b, o);
    }
    nn_gm_st(y, s, v, p->half);
}

NN_HD void nn_gm_pad_el(const nn_gpad_t *p, const void *x, void *y, int64_t s, int half)
{
    const int64_t o = nn_gm_logical(&p->yl, s);
    const int64_t src = o < 0 ? -2 : nn_gm_pad_src(p, o);
    nn_gm_st(y, s,
             src == -2   ? 0.0f
             : src == -1 ? p->value
                         : nn_gm_ld(x, nn_gm_at(&p->xl, src), half),
             half);
}

NN_HD void nn_gm_resize_el(const nn_gresize_t *p, const int64_t *idx, const float *w,
                           const uint8_t *nlive, const uint8_t *outside, const void *x, void *y,
                           int64_t s)
{
    const int64_t o = nn_gm_logical(&p->yl, s);
    nn_gm_st(y, s, o < 0 ? 0.0f : nn_gm_resize(p, idx, w, nlive, outside, x, o), p->half);
}

/* DepthToSpace (y is the space layout) and SpaceToDepth (y is the depth layout), as gathers. */
NN_HD void nn_gm_d2s_el(const nn_gd2s_t *p, const void *x, void *y, int64_t s, int half)
{
    const int64_t o = nn_gm_logical(&p->yl, s);
    if (o < 0) {
        nn_gm_st(y, s, 0.0f, half);
        return;
    }
    const int64_t src = p->d2s ? nn_gm_d2s_depth(p, o) : nn_gm_d2s_space(p, o);
    nn_gm_st(y, s, nn_gm_ld(x, nn_gm_at(&p->xl, src), half), half);
}

NN_HD void nn_gm_strided_el(const nn_gstrided_t *p, const void *x, void *y, int64_t s)
{
    const int64_t o = nn_gm_logical(&p->yl, s);
    nn_gm_st(y, s, o < 0 ? 0.0f : nn_gm_ld(x, nn_gm_at(&p->xl, nn_gm_strided_src(p, o)), p->half),
             p->half);
}

/* Concat scatters input element i (logical) into y. */
NN_HD void nn_gm_concat_el(const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                           int64_t i, int64_t ck_inner, int64_t ctot_inner, int64_t off_inner,
                           int half)
{
    nn_gm_st(y, nn_gm_at(yl, nn_gm_concat_dst(i, ck_inner, ctot_inner, off_inner)),
             nn_gm_ld(x, nn_gm_at(xl, i), half), half);
}

/* A normalization's apply (statistics in ab, two floats per (n, c) plane of P elements). */
NN_HD void nn_gm_norm_el(const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                         int64_t P, const float *ab, int act, float a, float b, const void *res,
                         const nn_glay_t *rl, int64_t s, int half)
{
    if (yl->nhwc && nn_gm_same(xl, yl) && (!res || nn_gm_same(rl, yl))) {
        /* one layout for all: the plane from the storage index alone */
        const int64_t ch = s % yl->cp;
        float v = 0.0f;
        if (ch < yl->c) {
            const float *abq = ab + 2 * ((s / (P * yl->cp)) * yl->c + ch);
            v = nn_gm_norm_apply(nn_gm_ld(x, s, half), abq, act, a, b, NULL, rl, 0, half);
            if (res)
                v += nn_gm_ld(res, s, half);
        }
        nn_gm_st(y, s, v, half);
        return;
    }
    const int64_t o = nn_gm_logical(yl, s);
    nn_gm_st(y, s,
             o < 0 ? 0.0f
                   : nn_gm_norm_apply(nn_gm_ld(x, nn_gm_at(xl, o), half), ab + 2 * (o / P), act, a,
                                      b, res, rl, o, half),
             half);
}

/* A copy between storage types and layouts (the inputs and outputs of a plan, fp32 and dense at
 * nn.h's boundary). */
NN_HD void nn_gm_convert_el(const void *x, int x_half, const nn_glay_t *xl, void *y, int y_half,
                            const nn_glay_t *yl, int64_t s)
{
    const int64_t o = nn_gm_logical(yl, s);
    nn_gm_st(y, s, o < 0 ? 0.0f : nn_gm_ld(x, nn_gm_at(xl, o), x_half), y_half);
}

/* Zero for a pad channel of y (after a kernel that scatters into y and leaves them). */
NN_HD void nn_gm_zpad_el(const nn_glay_t *yl, void *y, int64_t s, int half)
{
    if (s % yl->cp >= yl->c)
        nn_gm_st(y, s, 0.0f, half);
}

/* One output of a convolution (logical o, sum v before its epilogue), stored at its place in y. */
NN_HD void nn_gm_conv_out(const nn_gconv_t *p, float v, int64_t m, const void *bias,
                          const float *slope, const void *res, void *y, int64_t o)
{
    const int64_t so = nn_gm_conv_store(p, o);
    nn_gm_st(y, nn_gm_at(&p->yl, so), nn_gm_epilogue(p, v, m, bias, slope, res, so), p->half);
}

#endif
