/* nn_gpu.cu - the ONNX executor's device code: nn_gpu_kern.h with CUDA, and cuDNN by dlopen.
 *
 * Each kernel runs one nn_gpu_math.h function per output element (grid-stride loops), except:
 *   - the direct convolution, tiled: a block computes a 16x16 tile of output pixels for up to 8
 *     output channels of one group, staging each input channel's patch in shared memory (the
 *     per-element kernel takes ConvTranspose, 3-D convolutions and patches over 32 KiB);
 *   - InstanceNormalization's statistics: one block per (n, c) plane, a two-pass reduction in
 *     double in shared memory.
 * cuDNN (libcudnn.so.9, else .so.8) is opened at run time; its few types and enum values are
 * declared here from cuDNN's public headers (cudnn_graph.h, cudnn_cnn.h; values unchanged from 7
 * to 9), so no cuDNN header or library is needed to build. Legacy API: descriptors (NCHW, or NHWC
 * with padded channels), cudnnFindConvolution{Forward,BackwardData}Algorithm once per shape
 * (cached in a text file), then cudnnConvolutionForward (Conv) or cudnnConvolutionBackwardData
 * (ConvTranspose); the epilogue follows as our own kernel.
 */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_gpu_kern.h"

#define S_THREADS 256
#define S_TILE 16
#define S_MB 8
#define S_SMEM_MAX (32 << 10)

static const char *s_cuda(cudaError_t e)
{
    return e == cudaSuccess ? NULL : cudaGetErrorString(e);
}

/* Forgets an error an earlier call left (cuDNN's search, a failed capture), so that s_launched
 * reports the launch it follows. */
static void s_clear(void)
{
    (void)cudaGetLastError();
}

static const char *s_launched(void)
{
    return s_cuda(cudaGetLastError());
}

static unsigned s_blocks(int64_t n)
{
    int64_t b = (n + S_THREADS - 1) / S_THREADS;
    if (b < 1)
        b = 1;
    return (unsigned)(b > 65535 * 16 ? 65535 * 16 : b);
}

#define S_EACH(i, n)                                                                               \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- device, memory, streams, graphs ------------------------------------------------------- */

extern "C" const char *nn_gk_device_open(int device)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return cudaGetErrorString(e);
    if (device < 0 || device >= n)
        return "no such CUDA device";
    return s_cuda(cudaSetDevice(device));
}

extern "C" const char *nn_gk_malloc(void **ptr, size_t bytes)
{
    return s_cuda(cudaMalloc(ptr, bytes ? bytes : 1));
}

extern "C" void nn_gk_free(void *ptr)
{
    if (ptr)
        cudaFree(ptr);
}

extern "C" const char *nn_gk_stream_new(void **stream)
{
    cudaStream_t s;
    const char *why = s_cuda(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    *stream = why ? NULL : (void *)s;
    return why;
}

extern "C" void nn_gk_stream_destroy(void *stream)
{
    cudaStreamDestroy((cudaStream_t)stream);
}

extern "C" const char *nn_gk_stream_sync(void *stream)
{
    return s_cuda(cudaStreamSynchronize((cudaStream_t)stream));
}

extern "C" const char *nn_gk_upload(void *dst, const void *host_src, size_t bytes, void *stream)
{
    return s_cuda(
        cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, (cudaStream_t)stream));
}

extern "C" const char *nn_gk_download(void *host_dst, const void *src, size_t bytes, void *stream)
{
    return s_cuda(
        cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, (cudaStream_t)stream));
}

extern "C" const char *nn_gk_copy(void *dst, const void *src, size_t bytes, void *stream)
{
    return s_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, (cudaStream_t)stream));
}

extern "C" const char *nn_gk_host_alloc(void **ptr, size_t bytes)
{
    const char *why = s_cuda(cudaHostAlloc(ptr, bytes ? bytes : 1, cudaHostAllocDefault));
    if (why) {
        *ptr = NULL;
        s_clear();
    }
    return why;
}

extern "C" void nn_gk_host_free(void *ptr)
{
    if (ptr)
        cudaFreeHost(ptr);
}

extern "C" const char *nn_gk_graph_begin(void *stream)
{
    const char *why =
        s_cuda(cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal));
    if (why)
        s_clear();
    return why;
}

extern "C" const char *nn_gk_graph_end(void *stream, void **exec)
{
    cudaGraph_t graph = NULL;
    *exec = NULL;
    const char *why = s_cuda(cudaStreamEndCapture((cudaStream_t)stream, &graph));
    if (why) {
        s_clear();
        return why;
    }
    cudaGraphExec_t ge = NULL;
    why = s_cuda(cudaGraphInstantiate(&ge, graph, 0));
    cudaGraphDestroy(graph);
    if (why)
        s_clear();
    else
        *exec = (void *)ge;
    return why;
}

extern "C" const char *nn_gk_graph_launch(void *exec, void *stream)
{
    return s_cuda(cudaGraphLaunch((cudaGraphExec_t)exec, (cudaStream_t)stream));
}

extern "C" void nn_gk_graph_destroy(void *exec)
{
    if (exec)
        cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

/* ---- convolution ---------------------------------------------------------------------------- */

__global__ void k_conv(nn_gconv_t p, const void *x, const void *w, const void *bias,
                       const float *slope, const void *res, void *y, int64_t n)
{
    S_EACH(o, n)
    nn_gm_conv_out(&p, nn_gm_conv_sum(&p, x, w, o), nn_gm_conv_channel(&p, o), bias, slope, res, y,
                   o);
}

/* Tiled 2-D convolution: grid (tiles_x, tiles_y, N * G * mchunks), block S_TILE x S_TILE. The
 * patch of one input channel that the tile reads (ph x pw) sits in shared memory; each thread
 * sums up to S_MB output channels of its pixel, in nn_gm_conv_sum's order (channel, kh, kw). */
__global__ void k_conv_tiled(nn_gconv_t p, const void *x, const void *w, const void *bias,
                             const float *slope, const void *res, void *y, int64_t mchunks, int ph,
                             int pw)
{
    extern __shared__ float patch[];
    const int64_t OH = p.osp[1], OW = p.osp[2], IH = p.isp[1], IW = p.isp[2];
    const int64_t cg = p.C / p.G, mg = p.M / p.G;
    const int64_t z = blockIdx.z;
    const int64_t chunk = z % mchunks, g = (z / mchunks) % p.G, n = z / (mchunks * p.G);
    const int64_t m0 = g * mg + chunk * S_MB;
    const int mcount = (int)(mg - chunk * S_MB < S_MB ? mg - chunk * S_MB : S_MB);
    const int64_t ox0 = (int64_t)blockIdx.x * S_TILE, oy0 = (int64_t)blockIdx.y * S_TILE;
    const int64_t ix0 = ox0 * p.st[2] - p.pb[2], iy0 = oy0 * p.st[1] - p.pb[1];
    const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * S_TILE + tx;
    const int64_t ow = ox0 + tx, oh = oy0 + ty;
    const int64_t K = p.k[1] * p.k[2];
    float acc[S_MB];
    for (int j = 0; j < S_MB; j++)
        acc[j] = 0.0f;
    for (int64_t c = 0; c < cg; c++) {
        const int64_t xbase = (n * p.C + g * cg + c) * p.xsp[1] * p.xsp[2];
        __syncthreads();
        for (int q = tid; q < ph * pw; q += S_TILE * S_TILE) {
            const int64_t iy = iy0 + q / pw, ix = ix0 + q % pw;
            patch[q] = iy >= 0 && iy < IH && ix >= 0 && ix < IW
                           ? nn_gm_conv_in(&p, x, xbase, 0, iy, ix)
                           : 0.0f;
        }
        __syncthreads();
        if (ow >= OW || oh >= OH)
            continue;
        for (int64_t kh = 0; kh < p.k[1]; kh++)
            for (int64_t kw = 0; kw < p.k[2]; kw++) {
                const int64_t py = ty * p.st[1] + kh * p.dil[1], px = tx * p.st[2] + kw * p.dil[2];
                const int64_t iy = iy0 + py, ix = ix0 + px;
                if (iy < 0 || iy >= IH || ix < 0 || ix >= IW)
                    continue; /* as nn_gm_conv_sum: padding adds nothing */
                const float v = patch[py * pw + px];
                for (int j = 0; j < mcount; j++)
                    acc[j] += v * nn_gm_ld(w, ((m0 + j) * cg + c) * K + kh * p.k[2] + kw, p.half);
            }
    }
    if (ow >= OW || oh >= OH)
        return;
    for (int j = 0; j < mcount; j++) {
        const int64_t m = m0 + j;
        nn_gm_conv_out(&p, acc[j], m, bias, slope, res, y, ((n * p.M + m) * OH + oh) * OW + ow);
    }
}

extern "C" const char *nn_gk_conv(const nn_gconv_t *p, const void *x, const void *w,
                                  const void *bias, const float *slope, const void *res, void *y,
                                  void *stream)
{
    s_clear();
    const int64_t n = p->N * p->M * p->osp[0] * p->osp[1] * p->osp[2];
    if (!n)
        return NULL;
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t ph = (S_TILE - 1) * p->st[1] + (p->k[1] - 1) * p->dil[1] + 1;
    const int64_t pw = (S_TILE - 1) * p->st[2] + (p->k[2] - 1) * p->dil[2] + 1;
    const size_t smem = (size_t)(ph * pw) * sizeof(float);
    const int64_t mchunks = (p->M / p->G + S_MB - 1) / S_MB;
    const int64_t z = p->N * p->G * mchunks;
    if (!p->transpose && p->isp[0] == 1 && p->osp[0] == 1 && p->k[0] == 1 && smem <= S_SMEM_MAX &&
        z <= 65535) {
        dim3 grid((unsigned)((p->osp[2] + S_TILE - 1) / S_TILE),
                  (unsigned)((p->osp[1] + S_TILE - 1) / S_TILE), (unsigned)z);
        dim3 block(S_TILE, S_TILE);
        if (grid.y <= 65535) {
            k_conv_tiled<<<grid, block, smem, s>>>(*p, x, w, bias, slope, res, y, mchunks, (int)ph,
                                                   (int)pw);
            return s_launched();
        }
    }
    k_conv<<<s_blocks(n), S_THREADS, 0, s>>>(*p, x, w, bias, slope, res, y, n);
    return s_launched();
}

__global__ void k_epilogue(nn_gconv_t p, const void *bias, const float *slope, const void *res,
                           const void *src, void *y, int64_t n)
{
    S_EACH(o, n)
    nn_gm_conv_out(&p, nn_gm_ld(src, nn_gm_at(&p.sl, o), p.half), nn_gm_conv_channel(&p, o), bias,
                   slope, res, y, o);
}

extern "C" const char *nn_gk_epilogue(const nn_gconv_t *p, const void *bias, const float *slope,
                                      const void *res, const void *src, void *y, void *stream)
{
    s_clear();
    const int64_t n = p->N * p->M * p->osp[0] * p->osp[1] * p->osp[2];
    if (!n || (src == y && !bias && !res && p->act == NN_GA_NONE))
        return NULL;
    k_epilogue<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, bias, slope, res, src, y,
                                                                    n);
    return s_launched();
}

/* ---- normalization -------------------------------------------------------------------------- */

__global__ void k_instnorm_stats(const void *x, nn_glay_t xl, int64_t C, int64_t P,
                                 const void *scale, const void *bias, double eps, int half,
                                 float *ab)
{
    __shared__ double red[S_THREADS];
    const int64_t q = blockIdx.x, c = q % C;
    double sum = 0;
    for (int64_t i = threadIdx.x; i < P; i += blockDim.x)
        sum += nn_gm_ld(x, nn_gm_at(&xl, q * P + i), half);
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    const double mean = P ? red[0] / (double)P : 0;
    __syncthreads();
    double sq = 0;
    for (int64_t i = threadIdx.x; i < P; i += blockDim.x) {
        double d = nn_gm_ld(x, nn_gm_at(&xl, q * P + i), half) - mean;
        sq += d * d;
    }
    red[threadIdx.x] = sq;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double var = P ? red[0] / (double)P : 0;
        const float a = (float)((double)nn_gm_ld(scale, c, half) / sqrt(var + eps));
        ab[2 * q] = a;
        ab[2 * q + 1] = (float)((double)nn_gm_ld(bias, c, half) - mean * (double)a);
    }
}

/* InstanceNormalization's statistics over an NHWC x in one coalesced pass: grid (chunks, N), each
 * block reads a run of whole pixels (consecutive storage elements; channel = element % cp) and
 * adds each real channel's sum and sum of squares in shared memory (in registers first when every
 * thread meets one channel only: cp divides the block), then into sums (2 per plane, zeroed
 * before). */
__global__ void k_instnorm_sums_nhwc(const void *x, nn_glay_t xl, int64_t P, int64_t chunk,
                                     int half, double *sums)
{
    extern __shared__ double acc[]; /* 2 * xl.cp */
    const int64_t cp = xl.cp, C = xl.c, n = blockIdx.y;
    for (int64_t c = threadIdx.x; c < 2 * cp; c += blockDim.x)
        acc[c] = 0;
    __syncthreads();
    const int64_t p0 = (int64_t)blockIdx.x * chunk, p1 = p0 + chunk < P ? p0 + chunk : P;
    const int64_t e0 = (n * P + p0) * cp, e1 = (n * P + p1) * cp;
    if (blockDim.x % cp == 0) {
        const int64_t c = (int64_t)threadIdx.x % cp;
        double sum = 0, sq = 0;
        for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
            const double v = nn_gm_ld(x, e, half);
            sum += v;
            sq += v * v;
        }
        if (c < C) {
            atomicAdd(&acc[2 * c], sum);
            atomicAdd(&acc[2 * c + 1], sq);
        }
    } else {
        for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) {
            const int64_t c = e % cp;
            if (c >= C)
                continue;
            const double v = nn_gm_ld(x, e, half);
            atomicAdd(&acc[2 * c], v);
            atomicAdd(&acc[2 * c + 1], v * v);
        }
    }
    __syncthreads();
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        atomicAdd(&sums[2 * (n * C + c)], acc[2 * c]);
        atomicAdd(&sums[2 * (n * C + c) + 1], acc[2 * c + 1]);
    }
}

__global__ void k_instnorm_finish(int64_t planes, int64_t C, int64_t P, const void *scale,
                                  const void *bias, double eps, int half, const double *sums,
                                  float *ab)
{
    S_EACH(q, planes)
    {
        const int64_t c = q % C;
        nn_gm_instnorm_finish(sums[2 * q], sums[2 * q + 1], P, nn_gm_ld(scale, c, half),
                              nn_gm_ld(bias, c, half), eps, ab + 2 * q);
    }
}

/* The NHWC statistics: about four blocks per multiprocessor over the whole batch. */
static const char *s_instnorm_nhwc(const void *x, const nn_glay_t *xl, int64_t N, int64_t C,
                                   int64_t P, const void *scale, const void *bias, double eps,
                                   int half, float *ab, double *sums, cudaStream_t s)
{
    int dev = 0, sms = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || sms < 1)
        sms = 1;
    int64_t per_image = (4 * (int64_t)sms + N - 1) / N;
    if (per_image < 1)
        per_image = 1;
    const int64_t chunk = (P + per_image - 1) / per_image;
    const int64_t chunks = (P + chunk - 1) / chunk;
    const char *why = s_cuda(cudaMemsetAsync(sums, 0, (size_t)(2 * N * C) * sizeof(double), s));
    if (why)
        return why;
    dim3 grid((unsigned)chunks, (unsigned)N);
    k_instnorm_sums_nhwc<<<grid, S_THREADS, (size_t)(2 * xl->cp) * sizeof(double), s>>>(
        x, *xl, P, chunk, half, sums);
    if ((why = s_launched()))
        return why;
    k_instnorm_finish<<<s_blocks(N * C), S_THREADS, 0, s>>>(N * C, C, P, scale, bias, eps, half,
                                                            sums, ab);
    return s_launched();
}

__global__ void k_batchnorm_ab(int64_t planes, int64_t C, const void *scale, const void *bias,
                               const void *mean, const void *var, double eps, int half, float *ab)
{
    S_EACH(q, planes)
    {
        const int64_t c = q % C;
        nn_gm_batchnorm_ab(nn_gm_ld(scale, c, half), nn_gm_ld(bias, c, half),
                           nn_gm_ld(mean, c, half), nn_gm_ld(var, c, half), eps, ab + 2 * q);
    }
}

__global__ void k_norm_apply(const void *x, void *y, int64_t n, int64_t P, const float *ab,
                             nn_gnorm_epi_t e, int half)
{
    S_EACH(s, n)
    nn_gm_norm_el(x, &e.xl, y, &e.yl, P, ab, e.act, e.a, e.b, e.res, &e.rl, s, half);
}

extern "C" const char *nn_gk_norm(int instance, const void *x, void *y, int64_t N, int64_t C,
                                  int64_t P, const void *scale, const void *bias, const void *mean,
                                  const void *var, double eps, int half, float *ab, double *sums,
                                  const nn_gnorm_epi_t *epi, void *stream)
{
    s_clear();
    cudaStream_t s = (cudaStream_t)stream;
    const int64_t planes = N * C;
    if (!planes || !P)
        return NULL;
    const bool one_pass = instance && epi->xl.nhwc && sums && epi->xl.cp <= 2048;
    const char *why;
    if (one_pass) {
        why = s_instnorm_nhwc(x, &epi->xl, N, C, P, scale, bias, eps, half, ab, sums, s);
    } else if (instance) {
        k_instnorm_stats<<<(unsigned)planes, S_THREADS, 0, s>>>(x, epi->xl, C, P, scale, bias, eps,
                                                                half, ab);
        why = s_launched();
    } else {
        k_batchnorm_ab<<<s_blocks(planes), S_THREADS, 0, s>>>(planes, C, scale, bias, mean, var,
                                                              eps, half, ab);
        why = s_launched();
    }
    if (why)
        return why;
    const int64_t n = epi->yl.nhwc ? N * epi->yl.cp * P : planes * P;
    k_norm_apply<<<s_blocks(n), S_THREADS, 0, s>>>(x, y, n, P, ab, *epi, half);
    return s_launched();
}

/* ---- element-wise and data movement --------------------------------------------------------- */

__global__ void k_unary(int op, const void *x, nn_glay_t xl, void *y, nn_glay_t yl, int64_t n,
                        float a, float b, int half)
{
    S_EACH(s, n) nn_gm_unary_el(op, x, &xl, y, &yl, s, a, b, half);
}

extern "C" const char *nn_gk_unary(int op, const void *x, const nn_glay_t *xl, void *y,
                                   const nn_glay_t *yl, int64_t n, float a, float b, int half,
                                   void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_unary<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(op, x, *xl, y, *yl, n, a, b, half);
    return s_launched();
}

__global__ void k_binary(nn_gbcast_t p, const void *a, const void *b, void *y, int64_t n)
{
    S_EACH(s, n) nn_gm_binary_el(&p, a, b, y, s);
}

extern "C" const char *nn_gk_binary(const nn_gbcast_t *p, const void *a, const void *b, void *y,
                                    int64_t n, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_binary<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, a, b, y, n);
    return s_launched();
}

__global__ void k_pad(nn_gpad_t p, const void *x, void *y, int64_t n, int half)
{
    S_EACH(s, n) nn_gm_pad_el(&p, x, y, s, half);
}

extern "C" const char *nn_gk_pad(const nn_gpad_t *p, const void *x, void *y, int64_t n, int half,
                                 void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_pad<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, x, y, n, half);
    return s_launched();
}

__global__ void k_resize(nn_gresize_t p, const int64_t *idx, const float *w, const uint8_t *nlive,
                         const uint8_t *outside, const void *x, void *y, int64_t n)
{
    S_EACH(s, n) nn_gm_resize_el(&p, idx, w, nlive, outside, x, y, s);
}

extern "C" const char *nn_gk_resize(const nn_gresize_t *p, const int64_t *idx, const float *w,
                                    const uint8_t *nlive, const uint8_t *outside, const void *x,
                                    void *y, int64_t n, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_resize<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, idx, w, nlive, outside, x, y,
                                                                  n);
    return s_launched();
}

__global__ void k_depth_space(nn_gd2s_t p, const void *x, void *y, int64_t n, int half)
{
    S_EACH(s, n) nn_gm_d2s_el(&p, x, y, s, half);
}

extern "C" const char *nn_gk_depth_space(const nn_gd2s_t *p, const void *x, void *y, int64_t n,
                                         int half, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_depth_space<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, x, y, n, half);
    return s_launched();
}

__global__ void k_strided(nn_gstrided_t p, const void *x, void *y, int64_t n)
{
    S_EACH(s, n) nn_gm_strided_el(&p, x, y, s);
}

extern "C" const char *nn_gk_strided(const nn_gstrided_t *p, const void *x, void *y, int64_t n,
                                     void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_strided<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*p, x, y, n);
    return s_launched();
}

__global__ void k_concat(const void *x, nn_glay_t xl, void *y, nn_glay_t yl, int64_t n, int64_t ck,
                         int64_t ct, int64_t off, int half)
{
    S_EACH(i, n) nn_gm_concat_el(x, &xl, y, &yl, i, ck, ct, off, half);
}

extern "C" const char *nn_gk_concat(const void *x, const nn_glay_t *xl, void *y,
                                    const nn_glay_t *yl, int64_t n, int64_t ck_inner,
                                    int64_t ctot_inner, int64_t off_inner, int half, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_concat<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(x, *xl, y, *yl, n, ck_inner,
                                                                  ctot_inner, off_inner, half);
    return s_launched();
}

__global__ void k_zpad(nn_glay_t yl, void *y, int64_t n, int half)
{
    S_EACH(s, n) nn_gm_zpad_el(&yl, y, s, half);
}

extern "C" const char *nn_gk_zpad(const nn_glay_t *yl, void *y, int64_t n, int half, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_zpad<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(*yl, y, n, half);
    return s_launched();
}

__global__ void k_convert(const void *x, int xh, nn_glay_t xl, void *y, int yh, nn_glay_t yl,
                          int64_t n)
{
    S_EACH(s, n) nn_gm_convert_el(x, xh, &xl, y, yh, &yl, s);
}

extern "C" const char *nn_gk_convert(const void *x, int x_half, const nn_glay_t *xl, void *y,
                                     int y_half, const nn_glay_t *yl, int64_t n, void *stream)
{
    s_clear();
    if (!n)
        return NULL;
    k_convert<<<s_blocks(n), S_THREADS, 0, (cudaStream_t)stream>>>(x, x_half, *xl, y, y_half, *yl,
                                                                   n);
    return s_launched();
}

/* ---- cuDNN by dlopen ------------------------------------------------------------------------ */

/* From cuDNN's public headers (cudnn_graph.h / cudnn_ops.h / cudnn_cnn.h of 9.x; the same values
 * in 8.x): status 0 = CUDNN_STATUS_SUCCESS; cudnnDataType_t FLOAT 0, HALF 2; cudnnTensorFormat_t
 * NCHW 0, NHWC 1; cudnnConvolutionMode_t CROSS_CORRELATION 1; cudnnMathType_t TENSOR_OP_MATH 1,
 * FMA_MATH 3 (no TF32, so fp32 plans keep fp32 accuracy). */
typedef int s_dnn_status;
typedef void *s_dnn_handle;
typedef void *s_dnn_desc;
enum { S_DNN_FLOAT = 0, S_DNN_HALF = 2, S_DNN_NCHW = 0, S_DNN_NHWC = 1, S_DNN_XCORR = 1 };
enum { S_DNN_TENSOR_OP_MATH = 1, S_DNN_FMA_MATH = 3 };
/* The last algorithm that keeps fp32's accuracy (no FFT or Winograd transforms):
 * cudnnConvolutionFwdAlgo_t IMPLICIT_GEMM 0, IMPLICIT_PRECOMP_GEMM 1, GEMM 2, DIRECT 3, FFT 4,
 * FFT_TILING 5, WINOGRAD 6, WINOGRAD_NONFUSED 7; cudnnConvolutionBwdDataAlgo_t ALGO_0 0, ALGO_1 1,
 * FFT 2, FFT_TILING 3, WINOGRAD 4, WINOGRAD_NONFUSED 5. */
enum { S_DNN_FWD_EXACT_MAX = 3, S_DNN_BWD_EXACT_MAX = 1 };

/* cudnnConvolutionFwdAlgoPerf_t, and cudnnConvolutionBwdDataAlgoPerf_t (the same members). */
typedef struct s_dnn_perf {
    int algo;
    s_dnn_status status;
    float time;
    size_t memory;
    int determinism;
    int math_type;
    int reserved[3];
} s_dnn_perf_t;

#define S_DNN_WS_MAX ((size_t)256 << 20) /* the research notes' cap: enough for every shape */

typedef struct s_dnn {
    void *lib;
    s_dnn_handle h;
    size_t (*GetVersion)(void);
    const char *(*GetErrorString)(s_dnn_status);
    s_dnn_status (*Create)(s_dnn_handle *);
    s_dnn_status (*Destroy)(s_dnn_handle);
    s_dnn_status (*SetStream)(s_dnn_handle, cudaStream_t);
    s_dnn_status (*CreateTensorDescriptor)(s_dnn_desc *);
    s_dnn_status (*SetTensor4dDescriptor)(s_dnn_desc, int, int, int, int, int, int);
    s_dnn_status (*DestroyTensorDescriptor)(s_dnn_desc);
    s_dnn_status (*CreateFilterDescriptor)(s_dnn_desc *);
    s_dnn_status (*SetFilter4dDescriptor)(s_dnn_desc, int, int, int, int, int, int);
    s_dnn_status (*DestroyFilterDescriptor)(s_dnn_desc);
    s_dnn_status (*CreateConvolutionDescriptor)(s_dnn_desc *);
    s_dnn_status (*SetConvolution2dDescriptor)(s_dnn_desc, int, int, int, int, int, int, int, int);
    s_dnn_status (*SetConvolutionGroupCount)(s_dnn_desc, int);
    s_dnn_status (*SetConvolutionMathType)(s_dnn_desc, int);
    s_dnn_status (*DestroyConvolutionDescriptor)(s_dnn_desc);
    s_dnn_status (*GetConvolution2dForwardOutputDim)(s_dnn_desc, s_dnn_desc, s_dnn_desc, int *,
                                                     int *, int *, int *);
    s_dnn_status (*FindConvolutionForwardAlgorithm)(s_dnn_handle, s_dnn_desc, s_dnn_desc,
                                                    s_dnn_desc, s_dnn_desc, int, int *,
                                                    s_dnn_perf_t *);
    s_dnn_status (*GetConvolutionForwardWorkspaceSize)(s_dnn_handle, s_dnn_desc, s_dnn_desc,
                                                       s_dnn_desc, s_dnn_desc, int, size_t *);
    s_dnn_status (*ConvolutionForward)(s_dnn_handle, const void *, s_dnn_desc, const void *,
                                       s_dnn_desc, const void *, s_dnn_desc, int, void *, size_t,
                                       const void *, s_dnn_desc, void *);
    /* ConvTranspose: (handle, w, dy, conv, dx, ...) */
    s_dnn_status (*FindConvolutionBackwardDataAlgorithm)(s_dnn_handle, s_dnn_desc, s_dnn_desc,
                                                         s_dnn_desc, s_dnn_desc, int, int *,
                                                         s_dnn_perf_t *);
    s_dnn_status (*GetConvolutionBackwardDataWorkspaceSize)(s_dnn_handle, s_dnn_desc, s_dnn_desc,
                                                            s_dnn_desc, s_dnn_desc, int, size_t *);
    s_dnn_status (*ConvolutionBackwardData)(s_dnn_handle, const void *, s_dnn_desc, const void *,
                                            s_dnn_desc, const void *, s_dnn_desc, int, void *,
                                            size_t, const void *, s_dnn_desc, void *);
} s_dnn_t;

/* One convolution: x its input, y its output (for ConvTranspose, cuDNN's dy and dx). */
typedef struct s_dnn_conv {
    s_dnn_t *d; /* descriptors are destroyed through the library that made them */
    s_dnn_desc x, w, y, conv;
    int transpose;
    int algo;
    size_t ws;
} s_dnn_conv_t;

extern "C" void *nn_gk_dnn_open(const char **why)
{
    *why = NULL;
    const char *env = getenv("RF_NN_CUDNN");
    if (env && !strcmp(env, "off")) {
        *why = "turned off (RF_NN_CUDNN=off)";
        return NULL;
    }
    void *lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        lib = dlopen("libcudnn.so.8", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        *why = "libcudnn.so.9 and libcudnn.so.8 not found";
        return NULL;
    }
    s_dnn_t *d = (s_dnn_t *)calloc(1, sizeof(*d));
    if (!d) {
        dlclose(lib);
        *why = "out of memory";
        return NULL;
    }
    d->lib = lib;
    bool ok = true;
#define S_SYM(name)                                                                                \
    do {                                                                                           \
        *(void **)&d->name = dlsym(lib, "cudnn" #name);                                            \
        ok = ok && d->name;                                                                        \
    } while (0)
    S_SYM(GetVersion);
    S_SYM(GetErrorString);
    S_SYM(Create);
    S_SYM(Destroy);
    S_SYM(SetStream);
    S_SYM(CreateTensorDescriptor);
    S_SYM(SetTensor4dDescriptor);
    S_SYM(DestroyTensorDescriptor);
    S_SYM(CreateFilterDescriptor);
    S_SYM(SetFilter4dDescriptor);
    S_SYM(DestroyFilterDescriptor);
    S_SYM(CreateConvolutionDescriptor);
    S_SYM(SetConvolution2dDescriptor);
    S_SYM(SetConvolutionGroupCount);
    S_SYM(SetConvolutionMathType);
    S_SYM(DestroyConvolutionDescriptor);
    S_SYM(GetConvolution2dForwardOutputDim);
    S_SYM(FindConvolutionForwardAlgorithm);
    S_SYM(GetConvolutionForwardWorkspaceSize);
    S_SYM(ConvolutionForward);
    S_SYM(FindConvolutionBackwardDataAlgorithm);
    S_SYM(GetConvolutionBackwardDataWorkspaceSize);
    S_SYM(ConvolutionBackwardData);
#undef S_SYM
    if (!ok) {
        *why = "a legacy convolution symbol is missing from libcudnn";
    } else if (d->GetVersion() < 8000) {
        *why = "cuDNN older than 8.0";
        ok = false;
    } else if (d->Create(&d->h) != 0) {
        *why = "cudnnCreate failed (no device, or a CUDA version cuDNN does not support)";
        ok = false;
    }
    if (!ok) {
        dlclose(lib);
        free(d);
        return NULL;
    }
    return d;
}

extern "C" void nn_gk_dnn_close(void *dnn)
{
    s_dnn_t *d = (s_dnn_t *)dnn;
    if (!d)
        return;
    d->Destroy(d->h);
    dlclose(d->lib);
    free(d);
}

extern "C" void nn_gk_dnn_conv_free(void *conv)
{
    s_dnn_conv_t *c = (s_dnn_conv_t *)conv;
    if (!c)
        return;
    s_dnn_t *d = c->d;
    if (d) {
        if (c->x)
            d->DestroyTensorDescriptor(c->x);
        if (c->y)
            d->DestroyTensorDescriptor(c->y);
        if (c->w)
            d->DestroyFilterDescriptor(c->w);
        if (c->conv)
            d->DestroyConvolutionDescriptor(c->conv);
    }
    free(c);
}

/* The cache's key of a shape: the device's compute capability, cuDNN's version and every number
 * of the shape the algorithm choice depends on. */
static void s_dnn_key(const s_dnn_t *d, const nn_gconv_t *p, char *buf, size_t size)
{
    int dev = 0, major = 0, minor = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    int n = snprintf(buf, size, "sm%d%d cudnn%zu ", major, minor, d->GetVersion());
    if (n < 0 || (size_t)n >= size)
        return;
    buf += n;
    size -= (size_t)n;
    snprintf(buf, size,
             "%s n%lld c%lld h%lld w%lld m%lld k%lldx%lld s%lldx%lld p%lldx%lld "
             "d%lldx%lld g%lld o%lldx%lld %s %s",
             p->transpose ? "convT2d" : "conv2d", (long long)p->N, (long long)p->C,
             (long long)p->isp[1], (long long)p->isp[2], (long long)p->M, (long long)p->k[1],
             (long long)p->k[2], (long long)p->st[1], (long long)p->st[2], (long long)p->pb[1],
             (long long)p->pb[2], (long long)p->dil[1], (long long)p->dil[2], (long long)p->G,
             (long long)p->osp[1], (long long)p->osp[2], p->xl.nhwc ? "nhwc8" : "nchw",
             p->half ? "fp16" : "fp32");
}

static int s_dnn_cache_find(const char *path, const char *key)
{
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return -1;
    char line[512];
    int algo = -1;
    const size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ' ')
            algo = atoi(line + kl + 1);
    fclose(f);
    return algo;
}

static void s_dnn_cache_add(const char *path, const char *key, int algo)
{
    FILE *f = path ? fopen(path, "a") : NULL;
    if (!f)
        return;
    fprintf(f, "%s %d\n", key, algo);
    fclose(f);
}

/* The descriptors of p: x (N, C, isp) and y (N, M, osp), dense or NHWC with padded channels; the
 * filter in ONNX's order (Conv: M x C/G, ConvTranspose: C x M/G) or padded KRSC. */
static const char *s_dnn_descs(s_dnn_t *d, s_dnn_conv_t *c, const nn_gconv_t *p)
{
    const int dt = p->half ? S_DNN_HALF : S_DNN_FLOAT;
    const int nhwc = p->xl.nhwc;
    const int fmt = nhwc ? S_DNN_NHWC : S_DNN_NCHW;
    const int xc = (int)(nhwc ? p->xl.cp : p->C), yc = (int)(nhwc ? p->sl.cp : p->M);
    /* The filter's (k, c): the forward convolution's output and input channels per group. */
    const int fk = p->transpose ? xc : yc;
    const int fc = p->transpose ? (int)(nhwc ? yc : p->M / p->G) : (int)(nhwc ? xc : p->C / p->G);
    if (d->CreateTensorDescriptor(&c->x) || d->CreateTensorDescriptor(&c->y) ||
        d->CreateFilterDescriptor(&c->w) || d->CreateConvolutionDescriptor(&c->conv))
        return "creating descriptors failed";
    if (d->SetTensor4dDescriptor(c->x, fmt, dt, (int)p->N, xc, (int)p->isp[1], (int)p->isp[2]) ||
        d->SetTensor4dDescriptor(c->y, fmt, dt, (int)p->N, yc, (int)p->osp[1], (int)p->osp[2]) ||
        d->SetFilter4dDescriptor(c->w, dt, fmt, fk, fc, (int)p->k[1], (int)p->k[2]) ||
        d->SetConvolution2dDescriptor(c->conv, (int)p->pb[1], (int)p->pb[2], (int)p->st[1],
                                      (int)p->st[2], (int)p->dil[1], (int)p->dil[2], S_DNN_XCORR,
                                      S_DNN_FLOAT) ||
        d->SetConvolutionGroupCount(c->conv, (int)p->G) ||
        d->SetConvolutionMathType(c->conv, p->half ? S_DNN_TENSOR_OP_MATH : S_DNN_FMA_MATH))
        return "the shape does not fit cuDNN's descriptors";
    /* The forward convolution of cuDNN's output must give back its input (ConvTranspose: of dx,
     * dy): padding that is not symmetric, or output padding cuDNN cannot express, fails here. */
    int on, oc, oh, ow;
    const s_dnn_desc fin = p->transpose ? c->y : c->x;
    const int want_c = p->transpose ? xc : yc;
    const int64_t *want = p->transpose ? p->isp : p->osp;
    if (d->GetConvolution2dForwardOutputDim(c->conv, fin, c->w, &on, &oc, &oh, &ow) || on != p->N ||
        oc != want_c || oh != want[1] || ow != want[2])
        return "its padding is asymmetric in a way cuDNN cannot express";
    return NULL;
}

extern "C" const char *nn_gk_dnn_conv_new(void *dnn, const nn_gconv_t *p, const char *cache_path,
                                          void **conv, size_t *workspace_bytes)
{
    s_dnn_t *d = (s_dnn_t *)dnn;
    *conv = NULL;
    *workspace_bytes = 0;
    if (p->isp[0] != 1 || p->osp[0] != 1 || p->k[0] != 1)
        return "only 2-D convolutions";
    if (p->xl.nhwc && p->G != 1)
        return "a grouped convolution in the NHWC layout";
    s_dnn_conv_t *c = (s_dnn_conv_t *)calloc(1, sizeof(*c));
    if (!c)
        return "out of memory";
    c->d = d;
    c->transpose = p->transpose;
    const char *why = s_dnn_descs(d, c, p);
    if (!why) {
        char key[320];
        s_dnn_key(d, p, key, sizeof(key));
        c->algo = s_dnn_cache_find(cache_path, key);
        if (c->algo < 0) {
            s_dnn_perf_t perf[16];
            int got = 0;
            s_dnn_status st = p->transpose ? d->FindConvolutionBackwardDataAlgorithm(
                                                 d->h, c->w, c->x, c->conv, c->y, 16, &got, perf)
                                           : d->FindConvolutionForwardAlgorithm(
                                                 d->h, c->x, c->w, c->conv, c->y, 16, &got, perf);
            if (st) {
                why = "cuDNN's algorithm search failed";
            } else {
                /* fp32 plans keep fp32's accuracy: no FFT or Winograd, whose transforms lose
                 * bits; fp16 takes the fastest. */
                const int exact = p->transpose ? S_DNN_BWD_EXACT_MAX : S_DNN_FWD_EXACT_MAX;
                for (int i = 0; i < got && c->algo < 0; i++)
                    if (perf[i].status == 0 && perf[i].memory <= S_DNN_WS_MAX &&
                        (p->half || perf[i].algo <= exact))
                        c->algo = perf[i].algo;
                if (c->algo < 0)
                    why = "no algorithm within the 256 MiB workspace";
                else
                    s_dnn_cache_add(cache_path, key, c->algo);
            }
        }
    }
    if (!why && (p->transpose ? d->GetConvolutionBackwardDataWorkspaceSize(
                                    d->h, c->w, c->x, c->conv, c->y, c->algo, &c->ws)
                              : d->GetConvolutionForwardWorkspaceSize(d->h, c->x, c->w, c->conv,
                                                                      c->y, c->algo, &c->ws)))
        why = "the cached algorithm does not run this shape";
    if (why) {
        nn_gk_dnn_conv_free(c);
        return why;
    }
    *conv = c;
    *workspace_bytes = c->ws;
    return NULL;
}

extern "C" const char *nn_gk_dnn_conv_run(void *dnn, void *conv, const void *x, const void *w,
                                          void *y, void *workspace, void *stream)
{
    s_dnn_t *d = (s_dnn_t *)dnn;
    s_dnn_conv_t *c = (s_dnn_conv_t *)conv;
    const float one = 1.0f, zero = 0.0f;
    s_dnn_status st = d->SetStream(d->h, (cudaStream_t)stream);
    if (!st)
        st = c->transpose ? d->ConvolutionBackwardData(d->h, &one, c->w, w, c->x, x, c->conv,
                                                       c->algo, workspace, c->ws, &zero, c->y, y)
                          : d->ConvolutionForward(d->h, &one, c->x, x, c->w, w, c->conv, c->algo,
                                                  workspace, c->ws, &zero, c->y, y);
    return st ? d->GetErrorString(st) : NULL;
}
