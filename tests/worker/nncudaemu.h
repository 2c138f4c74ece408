/* nncudaemu.h - an emulated CUDA device for the ONNX executor's GPU backend: nn_gpu_kern.h on the
 * CPU.
 *
 * "Device memory" is host memory, copies are memcpy, the stream is a marker, and every kernel is
 * the loop of nn_gpu.cu with the same nn_gpu_math.h function as its body. Stream capture is not
 * emulated (nn_gk_graph_begin fails), so plans take their "launch one by one" path; cuDNN is
 * absent unless RF_NN_EMU_CUDNN=1 (below). A test includes this header (exactly one file per test
 * executable), then worker/nn/nn_gpu.c itself, so the plan logic's device calls reach the
 * emulation. Device 0 exists; any other does not. s_nn_live counts allocations not yet freed.
 */
#ifndef RF_TEST_NNCUDAEMU_H
#define RF_TEST_NNCUDAEMU_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn_gpu_kern.h"

static int s_nn_marker;
static int64_t s_nn_live;
static int s_nn_launches; /* kernels run (tests check that work reached the device) */

const char *nn_gk_device_open(int device)
{
    return device == 0 ? NULL : "no such device (emulation has device 0 only)";
}

/* Device memory starts as NaN (all bits set, in fp32 and fp16): a kernel that reads what nothing
 * wrote, a pad channel left unset included, shows in the results. */
const char *nn_gk_malloc(void **ptr, size_t bytes)
{
    *ptr = malloc(bytes ? bytes : 1);
    if (*ptr)
        memset(*ptr, 0xff, bytes ? bytes : 1);
    s_nn_live += *ptr != NULL;
    return *ptr ? NULL : "out of memory";
}

void nn_gk_free(void *ptr)
{
    s_nn_live -= ptr != NULL;
    free(ptr);
}

const char *nn_gk_stream_new(void **stream)
{
    *stream = &s_nn_marker;
    return NULL;
}

void nn_gk_stream_destroy(void *stream)
{
    (void)stream;
}

const char *nn_gk_stream_sync(void *stream)
{
    (void)stream;
    return NULL;
}

const char *nn_gk_upload(void *dst, const void *host_src, size_t bytes, void *stream)
{
    (void)stream;
    memcpy(dst, host_src, bytes);
    return NULL;
}

const char *nn_gk_download(void *host_dst, const void *src, size_t bytes, void *stream)
{
    (void)stream;
    memcpy(host_dst, src, bytes);
    return NULL;
}

const char *nn_gk_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    (void)stream;
    memmove(dst, src, bytes);
    return NULL;
}

static int64_t s_nn_host_live; /* pinned host buffers not yet freed */

const char *nn_gk_host_alloc(void **ptr, size_t bytes)
{
    *ptr = malloc(bytes ? bytes : 1);
    s_nn_host_live += *ptr != NULL;
    return *ptr ? NULL : "out of memory";
}

void nn_gk_host_free(void *ptr)
{
    s_nn_host_live -= ptr != NULL;
    free(ptr);
}

const char *nn_gk_graph_begin(void *stream)
{
    (void)stream;
    return "stream capture is not emulated";
}

const char *nn_gk_graph_end(void *stream, void **exec)
{
    (void)stream;
    *exec = NULL;
    return "stream capture is not emulated";
}

const char *nn_gk_graph_launch(void *exec, void *stream)
{
    (void)exec;
    (void)stream;
    return "stream capture is not emulated";
}

void nn_gk_graph_destroy(void *exec)
{
    (void)exec;
}

const char *nn_gk_conv(const nn_gconv_t *p, const void *x, const void *w, const void *bias,
                       const float *slope, const void *res, void *y, void *stream)
{
    (void)stream;
    s_nn_launches++;
    const int64_t n = p->N * p->M * p->osp[0] * p->osp[1] * p->osp[2];
    for (int64_t o = 0; o < n; o++)
        nn_gm_conv_out(p, nn_gm_conv_sum(p, x, w, o), nn_gm_conv_channel(p, o), bias, slope, res, y,
                       o);
    return NULL;
}

const char *nn_gk_epilogue(const nn_gconv_t *p, const void *bias, const float *slope,
                           const void *res, const void *src, void *y, void *stream)
{
    (void)stream;
    s_nn_launches++;
    const int64_t n = p->N * p->M * p->osp[0] * p->osp[1] * p->osp[2];
    for (int64_t o = 0; o < n; o++)
        nn_gm_conv_out(p, nn_gm_ld(src, nn_gm_at(&p->sl, o), p->half), nn_gm_conv_channel(p, o),
                       bias, slope, res, y, o);
    return NULL;
}

/* The NHWC statistics as nn_gpu.cu's kernel makes them: each image's pixels in chunks (three
 * here), every storage element of a chunk added to its channel's sums, pad channels skipped. */
static void s_nn_instnorm_nhwc(const void *x, const nn_glay_t *xl, int64_t N, int64_t C, int64_t P,
                               int half, double *sums)
{
    const int64_t chunk = (P + 2) / 3;
    for (int64_t q = 0; q < 2 * N * C; q++)
        sums[q] = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t p0 = 0; p0 < P; p0 += chunk) {
            const int64_t p1 = p0 + chunk < P ? p0 + chunk : P;
            for (int64_t e = (n * P + p0) * xl->cp; e < (n * P + p1) * xl->cp; e++) {
                const int64_t c = e % xl->cp;
                if (c >= C)
                    continue;
                const double v = nn_gm_ld(x, e, half);
                sums[2 * (n * C + c)] += v;
                sums[2 * (n * C + c) + 1] += v * v;
            }
        }
}

const char *nn_gk_norm(int instance, const void *x, void *y, int64_t N, int64_t C, int64_t P,
                       const void *scale, const void *bias, const void *mean, const void *var,
                       double eps, int half, float *ab, double *sums, const nn_gnorm_epi_t *epi,
                       void *stream)
{
    (void)stream;
    s_nn_launches++;
    const bool one_pass = instance && epi->xl.nhwc && sums;
    if (one_pass)
        s_nn_instnorm_nhwc(x, &epi->xl, N, C, P, half, sums);
    for (int64_t q = 0; q < N * C; q++) {
        const int64_t c = q % C;
        if (one_pass)
            nn_gm_instnorm_finish(sums[2 * q], sums[2 * q + 1], P, nn_gm_ld(scale, c, half),
                                  nn_gm_ld(bias, c, half), eps, ab + 2 * q);
        else if (instance)
            nn_gm_instnorm_plane(x, &epi->xl, q, P, nn_gm_ld(scale, c, half),
                                 nn_gm_ld(bias, c, half), eps, half, ab + 2 * q);
        else
            nn_gm_batchnorm_ab(nn_gm_ld(scale, c, half), nn_gm_ld(bias, c, half),
                               nn_gm_ld(mean, c, half), nn_gm_ld(var, c, half), eps, ab + 2 * q);
    }
    const int64_t n = epi->yl.nhwc ? N * epi->yl.cp * P : N * C * P;
    for (int64_t s = 0; s < n; s++)
        nn_gm_norm_el(x, &epi->xl, y, &epi->yl, P, ab, epi->act, epi->a, epi->b, epi->res, &epi->rl,
                      s, half);
    return NULL;
}

const char *nn_gk_unary(int op, const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                        int64_t n, float a, float b, int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_unary_el(op, x, xl, y, yl, s, a, b, half);
    return NULL;
}

const char *nn_gk_binary(const nn_gbcast_t *p, const void *a, const void *b, void *y, int64_t n,
                         void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_binary_el(p, a, b, y, s);
    return NULL;
}

const char *nn_gk_pad(const nn_gpad_t *p, const void *x, void *y, int64_t n, int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_pad_el(p, x, y, s, half);
    return NULL;
}

const char *nn_gk_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                         const uint8_t *nlive, const uint8_t *outside, const void *x, void *y,
                         int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_resize_el(p, idx, w, nlive, outside, x, y, s);
    return NULL;
}

const char *nn_gk_depth_space(const nn_gd2s_t *p, const void *x, void *y, int64_t n, int half,
                              void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_d2s_el(p, x, y, s, half);
    return NULL;
}

const char *nn_gk_strided(const nn_gstrided_t *p, const void *x, void *y, int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_strided_el(p, x, y, s);
    return NULL;
}

const char *nn_gk_concat(const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                         int64_t n, int64_t ck_inner, int64_t ctot_inner, int64_t off_inner,
                         int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_concat_el(x, xl, y, yl, i, ck_inner, ctot_inner, off_inner, half);
    return NULL;
}

const char *nn_gk_zpad(const nn_glay_t *yl, void *y, int64_t n, int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_zpad_el(yl, y, s, half);
    return NULL;
}

const char *nn_gk_convert(const void *x, int x_half, const nn_glay_t *xl, void *y, int y_half,
                          const nn_glay_t *yl, int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t s = 0; s < n; s++)
        nn_gm_convert_el(x, x_half, xl, y, y_half, yl, s);
    return NULL;
}

/* cuDNN, emulated when RF_NN_EMU_CUDNN=1: a plain 2-D convolution or transposed convolution (no
 * epilogue, no fused Pad or DepthToSpace: it reads the padded copy the plan makes and writes its
 * own layout), so the plan's cuDNN branch (workspace, padded input, the separate epilogue, the
 * NHWC layout with its padded KRSC weights) runs too. NHWC convolutions read every channel, pad
 * channels included, as cuDNN does: a pad channel that is not zero (device memory starts as NaN
 * here) spoils the result. Else absent. */
static int s_nn_dnn_marker, s_nn_dnn_convs, s_nn_dnn_nhwc, s_nn_dnn_transposed;

void *nn_gk_dnn_open(const char **why)
{
    const char *env = getenv("RF_NN_EMU_CUDNN");
    if (env && !strcmp(env, "1")) {
        *why = NULL;
        return &s_nn_dnn_marker;
    }
    *why = "cuDNN is not emulated";
    return NULL;
}

void nn_gk_dnn_close(void *dnn)
{
    (void)dnn;
}

const char *nn_gk_dnn_conv_new(void *dnn, const nn_gconv_t *p, const char *cache_path, void **conv,
                               size_t *workspace_bytes)
{
    (void)dnn;
    (void)cache_path;
    *conv = NULL;
    *workspace_bytes = 0;
    if (p->isp[0] != 1 || p->osp[0] != 1 || p->k[0] != 1)
        return "only 2-D convolutions";
    if (p->xl.nhwc && p->G != 1)
        return "a grouped convolution in the NHWC layout";
    nn_gconv_t *c = malloc(sizeof(*c));
    if (!c)
        return "out of memory";
    *c = *p;
    c->pre = 0; /* cuDNN sees the padded input and writes its own layout */
    for (int k = 0; k < 3; k++)
        c->xsp[k] = c->isp[k];
    c->d2s_block = 0;
    c->act = NN_GA_NONE;
    *conv = c;
    *workspace_bytes = 4096;
    return NULL;
}

void nn_gk_dnn_conv_free(void *conv)
{
    free(conv);
}

/* The NHWC convolution: x (N, IH, IW, xcp), y (N, OH, OW, ycp), KRSC weights with both channel
 * counts padded: [ycp][kh][kw][xcp] (Conv) or [xcp][kh][kw][ycp] (ConvTranspose). */
static void s_nn_dnn_nhwc_run(const nn_gconv_t *c, const void *x, const void *w, void *y)
{
    const int64_t IH = c->isp[1], IW = c->isp[2], OH = c->osp[1], OW = c->osp[2];
    const int64_t KH = c->k[1], KW = c->k[2], xcp = c->xl.cp, ycp = c->sl.cp;
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++)
                for (int64_t m = 0; m < ycp; m++) {
                    float acc = 0.0f;
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t ih, iw;
                            if (!c->transpose) {
                                ih = oh * c->st[1] - c->pb[1] + kh * c->dil[1];
                                iw = ow * c->st[2] - c->pb[2] + kw * c->dil[2];
                            } else {
                                const int64_t th = oh + c->pb[1] - kh * c->dil[1],
                                              tw = ow + c->pb[2] - kw * c->dil[2];
                                if (th < 0 || tw < 0 || th % c->st[1] || tw % c->st[2])
                                    continue;
                                ih = th / c->st[1];
                                iw = tw / c->st[2];
                            }
                            if (ih < 0 || ih >= IH || iw < 0 || iw >= IW)
                                continue;
                            for (int64_t ch = 0; ch < xcp; ch++) {
                                const int64_t wi = c->transpose
                                                       ? ((ch * KH + kh) * KW + kw) * ycp + m
                                                       : ((m * KH + kh) * KW + kw) * xcp + ch;
                                acc += nn_gm_ld(x, ((n * IH + ih) * IW + iw) * xcp + ch, c->half) *
                                       nn_gm_ld(w, wi, c->half);
                            }
                        }
                    nn_gm_st(y, ((n * OH + oh) * OW + ow) * ycp + m, acc, c->half);
                }
}

const char *nn_gk_dnn_conv_run(void *dnn, void *conv, const void *x, const void *w, void *y,
                               void *workspace, void *stream)
{
    (void)dnn;
    (void)stream;
    if (!workspace)
        return "no workspace";
    const nn_gconv_t *c = conv;
    s_nn_dnn_convs++;
    s_nn_dnn_nhwc += c->xl.nhwc != 0;
    s_nn_dnn_transposed += c->transpose != 0;
    if (c->xl.nhwc) {
        s_nn_dnn_nhwc_run(c, x, w, y);
        return NULL;
    }
    const int64_t n = c->N * c->M * c->osp[0] * c->osp[1] * c->osp[2];
    for (int64_t o = 0; o < n; o++)
        nn_gm_st(y, o, nn_gm_conv_sum(c, x, w, o), c->half);
    return NULL;
}

#endif
