/* nn_gpu_kern.h - the device calls of the ONNX executor's GPU backend (nn_gpu.c's plan logic
 * calls them; nn_gpu.cu implements them with CUDA, nn_gpu_none.c refuses them in builds without
 * nvcc, and tests/worker/nncudaemu.h runs them on the CPU).
 *
 * Every call returns NULL on success, else a static message naming what failed. Pointers are
 * device pointers unless named host_*; tensors are fp32 or fp16 bits (half) in the layouts their
 * nn_glay_t names (dense, or NHWC with padded channels). Kernels are queued on stream (a
 * cudaStream_t) and run each element through nn_gpu_math.h; n counts the storage elements of y
 * (pad channels included) unless said otherwise.
 */
#ifndef RF_NN_GPU_KERN_H
#define RF_NN_GPU_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "nn_gpu_math.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device, memory, streams, graphs ------------------------------------------------------- */

const char *nn_gk_device_open(int device);
const char *nn_gk_malloc(void **ptr, size_t bytes);
void nn_gk_free(void *ptr);
const char *nn_gk_stream_new(void **stream);
void nn_gk_stream_destroy(void *stream);
const char *nn_gk_stream_sync(void *stream);
const char *nn_gk_upload(void *dst, const void *host_src, size_t bytes, void *stream);
const char *nn_gk_download(void *host_dst, const void *src, size_t bytes, void *stream);
const char *nn_gk_copy(void *dst, const void *src, size_t bytes, void *stream);
/* Page-locked host memory (copies to and from it run asynchronously at full bus speed). */
const char *nn_gk_host_alloc(void **ptr, size_t bytes);
void nn_gk_host_free(void *ptr);

/* Stream capture of everything queued between begin and end into an executable graph. */
const char *nn_gk_graph_begin(void *stream);
const char *nn_gk_graph_end(void *stream, void **exec);
const char *nn_gk_graph_launch(void *exec, void *stream);
void nn_gk_graph_destroy(void *exec);

/* ---- kernels -------------------------------------------------------------------------------- */

/* Direct convolution (tiled through shared memory on the device) with the fused epilogue:
 * y = act(conv(x, w) + bias) + res. bias (M values, storage type), slope (fp32) and res (y's
 * shape) may be NULL. */
const char *nn_gk_conv(const nn_gconv_t *p, const void *x, const void *w, const void *bias,
                       const float *slope, const void *res, void *y, void *stream);
/* The epilogue alone (after a cuDNN convolution): src holds the convolution in its own layout
 * (p->sl); y gets every element at its store index (nn_gm_conv_store). src == y works in place
 * when the plan fused no DepthToSpace. Neither this nor nn_gk_conv writes y's pad channels. */
const char *nn_gk_epilogue(const nn_gconv_t *p, const void *bias, const float *slope,
                           const void *res, const void *src, void *y, void *stream);
/* A normalization's fused epilogue (nn_gm_norm_apply): act (NN_GA_*, not PRelu), its a and b,
 * and a residual of y's shape (NULL: none); the layouts of x, y and the residual. */
typedef struct nn_gnorm_epi {
    int act;
    float a, b;
    const void *res;
    nn_glay_t xl, yl, rl;
} nn_gnorm_epi_t;

/* InstanceNormalization (instance != 0; statistics per (n, c) plane) or BatchNormalization
 * (running mean and var) over planes = N * C planes of P elements, channel = plane % C.
 * scale, bias, mean, var: C values in storage type. ab: 2 * planes floats of scratch; sums:
 * 2 * planes doubles of scratch (InstanceNormalization of an NHWC x: its statistics in one
 * coalesced pass over the pixels, sum and sum of squares per plane). */
const char *nn_gk_norm(int instance, const void *x, void *y, int64_t N, int64_t C, int64_t P,
                       const void *scale, const void *bias, const void *mean, const void *var,
                       double eps, int half, float *ab, double *sums, const nn_gnorm_epi_t *epi,
                       void *stream);
const char *nn_gk_unary(int op, const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                        int64_t n, float a, float b, int half, void *stream);
const char *nn_gk_binary(const nn_gbcast_t *p, const void *a, const void *b, void *y, int64_t n,
                         void *stream);
const char *nn_gk_pad(const nn_gpad_t *p, const void *x, void *y, int64_t n, int half,
                      void *stream);
const char *nn_gk_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                         const uint8_t *nlive, const uint8_t *outside, const void *x, void *y,
                         int64_t n, void *stream);
const char *nn_gk_depth_space(const nn_gd2s_t *p, const void *x, void *y, int64_t n, int half,
                              void *stream);
const char *nn_gk_strided(const nn_gstrided_t *p, const void *x, void *y, int64_t n, void *stream);
/* Input x's n logical elements into their place in y (y's pad channels are left). */
const char *nn_gk_concat(const void *x, const nn_glay_t *xl, void *y, const nn_glay_t *yl,
                         int64_t n, int64_t ck_inner, int64_t ctot_inner, int64_t off_inner,
                         int half, void *stream);
/* Zeros y's pad channels (n storage elements). */
const char *nn_gk_zpad(const nn_glay_t *yl, void *y, int64_t n, int half, void *stream);

/* x to y, each side fp32 or fp16 and in its layout (the inputs and outputs of a plan). */
const char *nn_gk_convert(const void *x, int x_half, const nn_glay_t *xl, void *y, int y_half,
                          const nn_glay_t *yl, int64_t n, void *stream);

/* ---- cuDNN, loaded at run time ------------------------------------------------------------- */

/* Opens libcudnn.so.9 (else .so.8) and a handle on device; NULL with *why when absent or
 * unusable (the caller uses nn_gk_conv then). */
void *nn_gk_dnn_open(const char **why);
void nn_gk_dnn_close(void *dnn);
/* Prepares a 2-D convolution in the storage type: Conv as cuDNN's forward convolution,
 * ConvTranspose as its backward-data convolution; descriptors, the algorithm (from cache_path's
 * text cache when it names this shape, else measured once and appended there; cache_path may be
 * NULL) and the workspace it needs. Dense layouts (p->xl.nhwc == 0): groups and dilations, the
 * weights as ONNX has them. NHWC (x in p->xl, the output in p->sl): one group, x with xl.cp
 * channels, the output with sl.cp, the weights in KRSC order with both channel counts padded and
 * zero there: [sl.cp][kh][kw][xl.cp] for Conv, [xl.cp][kh][kw][sl.cp] for ConvTranspose (the plan
 * builds them: nn_gpu.c). */
const char *nn_gk_dnn_conv_new(void *dnn, const nn_gconv_t *p, const char *cache_path, void **conv,
                               size_t *workspace_bytes);
void nn_gk_dnn_conv_free(void *conv);
/* y = conv(x, w) through cuDNN (the epilogue follows with nn_gk_epilogue). */
const char *nn_gk_dnn_conv_run(void *dnn, void *conv, const void *x, const void *w, void *y,
                               void *workspace, void *stream);

#ifdef __cplusplus
}
#endif

#endif
