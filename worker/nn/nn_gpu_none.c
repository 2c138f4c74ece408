/* nn_gpu_none.c - nn_gpu_kern.h in builds without nvcc: no device, so every GPU plan is refused
 * with RF_EUNAVAIL (nn_gpu.c) and "auto" falls back to the CPU. */
#include <stddef.h>

#include "nn_gpu_kern.h"

#define S_NO_CUDA "this build has no CUDA (nvcc was not found when it was configured)"

const char *nn_gk_device_open(int device)
{
    (void)device;
    return S_NO_CUDA;
}

const char *nn_gk_malloc(void **ptr, size_t bytes)
{
    (void)ptr;
    (void)bytes;
    return S_NO_CUDA;
}

void nn_gk_free(void *ptr)
{
    (void)ptr;
}

const char *nn_gk_stream_new(void **stream)
{
    (void)stream;
    return S_NO_CUDA;
}

void nn_gk_stream_destroy(void *stream)
{
    (void)stream;
}

const char *nn_gk_stream_sync(void *stream)
{
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_upload(void *dst, const void *host_src, size_t bytes, void *stream)
{
    (void)dst;
    (void)host_src;
    (void)bytes;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_download(void *host_dst, const void *src, size_t bytes, void *stream)
{
    (void)host_dst;
    (void)src;
    (void)bytes;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    (void)dst;
    (void)src;
    (void)bytes;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_graph_begin(void *stream)
{
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_graph_end(void *stream, void **exec)
{
    (void)stream;
    (void)exec;
    return S_NO_CUDA;
}

const char *nn_gk_graph_launch(void *exec, void *stream)
{
    (void)exec;
    (void)stream;
    return S_NO_CUDA;
}

void nn_gk_graph_destroy(void *exec)
{
    (void)exec;
}

const char *nn_gk_conv(const nn_gconv_t *p, const void *x, const void *w, const void *bias,
                       const float *slope, const void *res, void *y, void *stream)
{
    (void)p;
    (void)x;
    (void)w;
    (void)bias;
    (void)slope;
    (void)res;
    (void)y;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_epilogue(const nn_gconv_t *p, const void *bias, const float *slope,
                           const void *res, const void *src, void *y, void *stream)
{
    (void)src;
    (void)p;
    (void)bias;
    (void)slope;
    (void)res;
    (void)y;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_norm(int instance, const void *x, void *y, int64_t N, int64_t C, int64_t P,
                       const void *scale, const void *bias, const void *mean, const void *var,
                       double eps, int half, float *ab, double *sums, const nn_gnorm_epi_t *epi,
                       void *stream)
{
    (void)epi;
    (void)instance;
    (void)x;
    (void)y;
    (void)N;
    (void)C;
    (void)P;
    (void)scale;
    (void)bias;
    (void)mean;
    (void)var;
    (void)eps;
    (void)half;
    (void)ab;
    (void)sums;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_unary(int op, const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                        int64_t n, float a, float b, int half, void *stream)
{
    (void)op;
    (void)x;
    (void)xl;
    (void)y;
    (void)yl;
    (void)n;
    (void)a;
    (void)b;
    (void)half;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_binary(const nn_gbcast_t *p, const void *a, const void *b, void *y, int64_t n,
                         void *stream)
{
    (void)p;
    (void)a;
    (void)b;
    (void)y;
    (void)n;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_pad(const nn_gpad_t *p, const void *x, void *y, int64_t n, int half, void *stream)
{
    (void)p;
    (void)x;
    (void)y;
    (void)n;
    (void)half;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                         const uint8_t *nlive, const uint8_t *outside, const void *x, void *y,
                         int64_t n, void *stream)
{
    (void)p;
    (void)idx;
    (void)w;
    (void)nlive;
    (void)outside;
    (void)x;
    (void)y;
    (void)n;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_depth_space(const nn_gd2s_t *p, const void *x, void *y, int64_t n, int half,
                              void *stream)
{
    (void)p;
    (void)x;
    (void)y;
    (void)n;
    (void)half;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_strided(const nn_gstrided_t *p, const void *x, void *y, int64_t n, void *stream)
{
    (void)p;
    (void)x;
    (void)y;
    (void)n;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_concat(const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                         int64_t n, int64_t ck_inner, int64_t ctot_inner, int64_t off_inner,
                         int half, void *stream)
{
    (void)x;
    (void)xl;
    (void)y;
    (void)yl;
    (void)n;
    (void)ck_inner;
    (void)ctot_inner;
    (void)off_inner;
    (void)half;
    (void)stream;
    return S_NO_CUDA;
}

void *nn_gk_dnn_open(const char **why)
{
    *why = S_NO_CUDA;
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
    (void)p;
    (void)cache_path;
    (void)conv;
    (void)workspace_bytes;
    *conv = NULL;
    *workspace_bytes = 0;
    return S_NO_CUDA;
}

void nn_gk_dnn_conv_free(void *conv)
{
    (void)conv;
}

const char *nn_gk_dnn_conv_run(void *dnn, void *conv, const void *x, const void *w, void *y,
                               void *workspace, void *stream)
{
    (void)dnn;
    (void)conv;
    (void)x;
    (void)w;
    (void)y;
    (void)workspace;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_host_alloc(void **ptr, size_t bytes)
{
    (void)bytes;
    *ptr = NULL;
    return S_NO_CUDA;
}

void nn_gk_host_free(void *ptr)
{
    (void)ptr;
}

const char *nn_gk_convert(const void *x, int x_half, const nn_glay_t *xl, void *y, int y_half,
                          const nn_glay_t *yl, int64_t n, void *stream)
{
    (void)x;
    (void)x_half;
    (void)xl;
    (void)y;
    (void)y_half;
    (void)yl;
    (void)n;
    (void)stream;
    return S_NO_CUDA;
}

const char *nn_gk_zpad(const nn_glay_t *yl, void *y, int64_t n, int half, void *stream)
{
    (void)yl;
    (void)y;
    (void)n;
    (void)half;
    (void)stream;
    return S_NO_CUDA;
}
