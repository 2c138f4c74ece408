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

const char *nn_gk_malloc(void **ptr, size_t bytes)
{
    *ptr = calloc(1, bytes ? bytes : 1);
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
    for (int64_t o = 0; o < n; o++) {
        const float v = nn_gm_conv_sum(p, x, w, o);
        const int64_t so = nn_gm_conv_store(p, o);
        nn_gm_st(y, so, nn_gm_epilogue(p, v, nn_gm_conv_channel(p, o), bias, slope, res, so),
                 p->half);
    }
    return NULL;
}

const char *nn_gk_epilogue(const nn_gconv_t *p, const void *bias, const float *slope,
                           const void *res, const void *src, void *y, void *stream)
{
    (void)stream;
    s_nn_launches++;
    const int64_t n = p->N * p->M * p->osp[0] * p->osp[1] * p->osp[2];
    for (int64_t o = 0; o < n; o++) {
        const int64_t so = nn_gm_conv_store(p, o);
        nn_gm_st(y, so,
                 nn_gm_epilogue(p, nn_gm_ld(src, o, p->half), nn_gm_conv_channel(p, o), bias, slope,
                                res, so),
                 p->half);
    }
    return NULL;
}

const char *nn_gk_norm(int instance, const void *x, void *y, int64_t N, int64_t C, int64_t P,
                       const void *scale, const void *bias, const void *mean, const void *var,
                       double eps, int half, float *ab, const nn_gnorm_epi_t *epi, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t q = 0; q < N * C; q++) {
        const int64_t c = q % C;
        if (instance)
            nn_gm_instnorm_plane(x, q, P, nn_gm_ld(scale, c, half), nn_gm_ld(bias, c, half), eps,
                                 half, ab + 2 * q);
        else
            nn_gm_batchnorm_ab(nn_gm_ld(scale, c, half), nn_gm_ld(bias, c, half),
                               nn_gm_ld(mean, c, half), nn_gm_ld(var, c, half), eps, ab + 2 * q);
    }
    for (int64_t i = 0; i < N * C * P; i++) {
        const int64_t q = P ? i / P : 0;
        nn_gm_st(y, i,
                 nn_gm_norm_apply(nn_gm_ld(x, i, half), ab + 2 * q, epi->act, epi->a, epi->b,
                                  epi->res, i, half),
                 half);
    }
    return NULL;
}

const char *nn_gk_unary(int op, const void *x, void *y, int64_t n, float a, float b, int half,
                        void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, i, nn_gm_unary(op, nn_gm_ld(x, i, half), a, b), half);
    return NULL;
}

const char *nn_gk_binary(const nn_gbcast_t *p, const void *a, const void *b, void *y, int64_t n,
                         void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, i, nn_gm_binary(p, a, b, i), p->half);
    return NULL;
}

const char *nn_gk_pad(const nn_gpad_t *p, const void *x, void *y, int64_t n, int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++) {
        const int64_t src = nn_gm_pad_src(p, i);
        nn_gm_st(y, i, src < 0 ? p->value : nn_gm_ld(x, src, half), half);
    }
    return NULL;
}

const char *nn_gk_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                         const uint8_t *nlive, const uint8_t *outside, const void *x, void *y,
                         int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, i, nn_gm_resize(p, idx, w, nlive, outside, x, i), p->half);
    return NULL;
}

const char *nn_gk_depth_space(const nn_gd2s_t *p, const void *x, void *y, int64_t n, int half,
                              void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t d = 0; d < n; d++) {
        const int64_t sp = nn_gm_d2s_space(p, d);
        if (p->d2s)
            nn_gm_st(y, sp, nn_gm_ld(x, d, half), half);
        else
            nn_gm_st(y, d, nn_gm_ld(x, sp, half), half);
    }
    return NULL;
}

const char *nn_gk_strided(const nn_gstrided_t *p, const void *x, void *y, int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, i, nn_gm_ld(x, nn_gm_strided_src(p, i), p->half), p->half);
    return NULL;
}

const char *nn_gk_concat(const void *x, void *y, int64_t n, int64_t ck_inner, int64_t ctot_inner,
                         int64_t off_inner, int half, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, nn_gm_concat_dst(i, ck_inner, ctot_inner, off_inner), nn_gm_ld(x, i, half),
                 half);
    return NULL;
}

const char *nn_gk_convert(const void *x, int x_half, void *y, int y_half, int64_t n, void *stream)
{
    (void)stream;
    s_nn_launches++;
    for (int64_t i = 0; i < n; i++)
        nn_gm_st(y, i, nn_gm_ld(x, i, x_half), y_half);
    return NULL;
}

/* cuDNN, emulated when RF_NN_EMU_CUDNN=1: a plain forward convolution (no epilogue, no fused Pad
 * or DepthToSpace: it reads the padded copy the plan makes and writes its own layout), so the
 * plan's cuDNN branch (workspace, padded input, the separate epilogue) runs too. Else absent. */
static int s_nn_dnn_marker, s_nn_dnn_convs;

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
    if (p->transpose || p->isp[0] != 1 || p->k[0] != 1)
        return "only 2-D forward convolutions";
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

const char *nn_gk_dnn_conv_run(void *dnn, void *conv, const void *x, const void *w, void *y,
                               void *workspace, void *stream)
{
    (void)dnn;
    (void)stream;
    if (!workspace)
        return "no workspace";
    const nn_gconv_t *c = conv;
    s_nn_dnn_convs++;
    const int64_t n = c->N * c->M * c->osp[0] * c->osp[1] * c->osp[2];
    for (int64_t o = 0; o < n; o++)
        nn_gm_st(y, o, nn_gm_conv_sum(c, x, w, o), c->half);
    return NULL;
}

#endif
