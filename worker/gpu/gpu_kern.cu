/* gpu_kern.cu - the CUDA side of gpu_kern.h: memory, streams, events and the kernels.
 *
 * Each kernel runs one function of gpu_math.h per thread (per sample, per row for the sums), so
 * the arithmetic is the CPU reference's; this file only maps threads to samples. Compiled with
 * --fmad=false (worker/CMakeLists.txt) for the reason gpu_math.h gives.
 */
#include <cuda_runtime.h>

#include "gpu_kern.h"

#define RF_GK_BLOCK 256
#define RF_GK_TILE 16

static const char *s_err(cudaError_t e)
{
    return e == cudaSuccess ? NULL : cudaGetErrorString(e);
}

/* The launch's own error (bad configuration), without waiting for the kernel. */
static const char *s_launched(void)
{
    return s_err(cudaGetLastError());
}

static unsigned s_blocks(size_t n)
{
    return (unsigned)((n + RF_GK_BLOCK - 1) / RF_GK_BLOCK);
}

static dim3 s_grid(int w, int h)
{
    return dim3((unsigned)((w + RF_GK_TILE - 1) / RF_GK_TILE),
                (unsigned)((h + RF_GK_TILE - 1) / RF_GK_TILE));
}

extern "C" {

void rf_gk_blocking_sync(int device)
{
    /* FFmpeg retains the primary context for NVDEC only with CU_CTX_SCHED_BLOCKING_SYNC and
     * refuses ("Primary context already active with incompatible flags") when the runtime
     * activated it with other flags first; waiting threads also sleep instead of spinning, which
     * leaves the cores to the encoders. Fails harmlessly once the context is active. */
    if (cudaSetDevice(device) == cudaSuccess)
        cudaSetDeviceFlags(cudaDeviceScheduleBlockingSync);
    cudaGetLastError();
}

const char *rf_gk_device_open(int device)
{
    rf_gk_blocking_sync(device);
    const char *e = s_err(cudaSetDevice(device));
    if (!e)
        e = s_err(cudaFree(0)); /* creates (or retains) the primary context now */
    return e;
}

const char *rf_gk_mem_info(uint64_t *free_bytes, uint64_t *total_bytes)
{
    size_t f = 0, t = 0;
    const char *e = s_err(cudaMemGetInfo(&f, &t));
    *free_bytes = f;
    *total_bytes = t;
    return e;
}

const char *rf_gk_malloc(void **ptr, size_t bytes)
{
    *ptr = NULL;
    return s_err(cudaMalloc(ptr, bytes ? bytes : 1));
}

void rf_gk_free(void *ptr)
{
    if (ptr)
        cudaFree(ptr);
}

const char *rf_gk_host_alloc(void **ptr, size_t bytes)
{
    *ptr = NULL;
    return s_err(cudaHostAlloc(ptr, bytes ? bytes : 1, cudaHostAllocDefault));
}

void rf_gk_host_free(void *ptr)
{
    if (ptr)
        cudaFreeHost(ptr);
}

const char *rf_gk_stream_new(void **stream)
{
    cudaStream_t s = NULL;
    const char *e = s_err(cudaStreamCreate(&s));
    *stream = e ? NULL : (void *)s;
    return e;
}

void rf_gk_stream_destroy(void *stream)
{
    if (stream)
        cudaStreamDestroy((cudaStream_t)stream);
}

const char *rf_gk_stream_sync(void *stream)
{
    return s_err(cudaStreamSynchronize((cudaStream_t)stream));
}

const char *rf_gk_event_new(void **event)
{
    cudaEvent_t ev = NULL;
    const char *e = s_err(cudaEventCreate(&ev));
    *event = e ? NULL : (void *)ev;
    return e;
}

void rf_gk_event_destroy(void *event)
{
    if (event)
        cudaEventDestroy((cudaEvent_t)event);
}

const char *rf_gk_event_record(void *event, void *stream)
{
    return s_err(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream));
}

const char *rf_gk_event_sync(void *event)
{
    return s_err(cudaEventSynchronize((cudaEvent_t)event));
}

const char *rf_gk_event_elapsed(void *start, void *end, float *ms)
{
    return s_err(cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end));
}

const char *rf_gk_stream_wait(void *stream, void *event)
{
    return s_err(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)event, 0));
}

const char *rf_gk_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                         size_t width_bytes, size_t rows, int kind, void *stream)
{
    const cudaMemcpyKind k = kind == 1   ? cudaMemcpyHostToDevice
                             : kind == 2 ? cudaMemcpyDeviceToHost
                                         : cudaMemcpyDeviceToDevice;
    if (rows == 1) /* a 2-D copy wants pitches >= the width even for one row */
        return s_err(cudaMemcpyAsync(dst, src, width_bytes, k, (cudaStream_t)stream));
    return s_err(
        cudaMemcpy2DAsync(dst, dpitch, src, spitch, width_bytes, rows, k, (cudaStream_t)stream));
}

} /* extern "C" */

/* ---- colour conversion ------------------------------------------------------------------------
 */

__global__ void k_yuv_to_rgb(rf_gyuv_t l, rf_gyuv_planes_t f, rf_gmatrix_t m, float *r, float *g,
                             float *b)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= l.width || y >= l.height)
        return;
    float rgb[3];
    rf_gm_yuv_to_rgb(&l, &f, &m, x, y, rgb);
    const long i = (long)y * l.width + x;
    r[i] = rgb[0];
    g[i] = rgb[1];
    b[i] = rgb[2];
}

__global__ void k_rgb_to_yuv16(int w, int h, rf_gmatrix_t m, const float *r, const float *g,
                               const float *b, uint16_t *y16, uint16_t *u16, uint16_t *v16)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h)
        return;
    const long i = (long)y * w + x;
    uint16_t out[3];
    rf_gm_rgb_to_yuv16(&m, r[i], g[i], b[i], out);
    y16[i] = out[0];
    u16[i] = out[1];
    v16[i] = out[2];
}

/* Component c of the output frame, one thread per sample of that component's plane. */
__global__ void k_yuv16_out(rf_gyuv_t l, const uint16_t *y16, const uint16_t *u16,
                            const uint16_t *v16, rf_gyuv_planes_t f, int c, int cw, int ch)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= cw || y >= ch)
        return;
    const uint16_t *const planes[3] = {y16, u16, v16};
    rf_gm_write(&l, &f, c, x, y, rf_gm_out_code(&l, planes, c, x, y));
}

/* ---- passes ------------------------------------------------------------------------------------
 */

__global__ void k_luma_rows(const float *r, const float *g, const float *b, int w, int h,
                            double *rows)
{
    const int y = blockIdx.x * blockDim.x + threadIdx.x;
    if (y >= h)
        return;
    const long o = (long)y * w;
    rows[y] = rf_gm_luma_row(r + o, g + o, b + o, w);
}

__global__ void k_gain(float *r, float *g, float *b, size_t n, float gain)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    r[i] = rf_gm_clamp01f(r[i] * gain);
    g[i] = rf_gm_clamp01f(g[i] * gain);
    b[i] = rf_gm_clamp01f(b[i] * gain);
}

__global__ void k_lab_rows(const float *r, const float *g, const float *b, int w, int nrows,
                           int step, double s0, double s1, double s2, double *sums)
{
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= nrows)
        return;
    const long o = (long)k * step * w;
    const double shift[3] = {s0, s1, s2};
    rf_gm_lab_row(r + o, g + o, b + o, w, step, shift, sums + 6 * (long)k);
}

__global__ void k_colormatch(float *r, float *g, float *b, size_t n, rf_gcolormatch_t k)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        rf_gm_colormatch(&k, &r[i], &g[i], &b[i]);
}

__global__ void k_grade(float *r, float *g, float *b, size_t n, rf_ggrade_t k)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        rf_gm_grade(&k, &r[i], &g[i], &b[i]);
}

__global__ void k_blur_rows(const float *px, float *tmp, int w, int h, const double *weight,
                            int half)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x < w && y < h)
        tmp[(long)y * w + x] = rf_gm_blur_row(px, w, x, y, weight, half);
}

__global__ void k_mask(float *px, const float *tmp, int w, int h, const double *weight, int half,
                       double amount, double threshold)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h)
        return;
    const long i = (long)y * w + x;
    px[i] = rf_gm_mask(tmp, w, h, x, y, px[i], weight, half, amount, threshold);
}

__global__ void k_filter_rows(const float *in, float *out, int in_w, int out_w, int rows,
                              const int *index, const double *weight, int taps)
{
    const int o = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (o >= out_w || y >= rows)
        return;
    out[(long)y * out_w + o] =
        rf_gm_filter(in + (long)y * in_w, 1, index + (long)o * taps, weight + (long)o * taps, taps);
}

__global__ void k_filter_cols(const float *in, float *out, int cols, int out_h, const int *index,
                              const double *weight, int taps)
{
    const int x = blockIdx.x * blockDim.x + threadIdx.x, o = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= cols || o >= out_h)
        return;
    out[(long)o * cols + x] =
        rf_gm_filter(in + x, cols, index + (long)o * taps, weight + (long)o * taps, taps);
}

__global__ void k_to_nhwc16(const float *r, const float *g, const float *b, size_t n, int cpad,
                            uint16_t *out)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    uint16_t *px = out + i * (size_t)cpad;
    px[0] = rf_gm_half_bits(r[i]);
    px[1] = rf_gm_half_bits(g[i]);
    px[2] = rf_gm_half_bits(b[i]);
    for (int c = 3; c < cpad; c++)
        px[c] = 0;
}

__global__ void k_from_nhwc16(const uint16_t *in, size_t n, int cpad, float *r, float *g, float *b)
{
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const uint16_t *px = in + i * (size_t)cpad;
    r[i] = rf_gm_half_value(px[0]);
    g[i] = rf_gm_half_value(px[1]);
    b[i] = rf_gm_half_value(px[2]);
}

extern "C" {

const char *rf_gk_to_nhwc16(const float *const rgb[3], int width, int height, int cpad,
                            uint16_t *out, void *stream)
{
    const size_t n = (size_t)width * (size_t)height;
    k_to_nhwc16<<<s_blocks(n), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(rgb[0], rgb[1], rgb[2], n,
                                                                       cpad, out);
    return s_launched();
}

const char *rf_gk_from_nhwc16(const uint16_t *in, int width, int height, int cpad,
                              float *const rgb[3], void *stream)
{
    const size_t n = (size_t)width * (size_t)height;
    k_from_nhwc16<<<s_blocks(n), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(in, n, cpad, rgb[0],
                                                                         rgb[1], rgb[2]);
    return s_launched();
}

const char *rf_gk_yuv_to_rgb(const rf_gyuv_t *l, const rf_gyuv_planes_t *frame,
                             const rf_gmatrix_t *m, float *const rgb[3], void *stream)
{
    k_yuv_to_rgb<<<s_grid(l->width, l->height), dim3(RF_GK_TILE, RF_GK_TILE), 0,
                   (cudaStream_t)stream>>>(*l, *frame, *m, rgb[0], rgb[1], rgb[2]);
    return s_launched();
}

const char *rf_gk_rgb_to_yuv(const rf_gyuv_t *l, const rf_gmatrix_t *m, const float *const rgb[3],
                             uint16_t *const yuv16[3], rf_gyuv_planes_t *frame, void *stream)
{
    const cudaStream_t s = (cudaStream_t)stream;
    const dim3 tile(RF_GK_TILE, RF_GK_TILE);
    k_rgb_to_yuv16<<<s_grid(l->width, l->height), tile, 0, s>>>(
        l->width, l->height, *m, rgb[0], rgb[1], rgb[2], yuv16[0], yuv16[1], yuv16[2]);
    const char *e = s_launched();
    for (int c = 0; c < 3 && !e; c++) {
        const int cw = c ? (l->width + (1 << l->cw_log2) - 1) >> l->cw_log2 : l->width;
        const int ch = c ? (l->height + (1 << l->ch_log2) - 1) >> l->ch_log2 : l->height;
        k_yuv16_out<<<s_grid(cw, ch), tile, 0, s>>>(*l, yuv16[0], yuv16[1], yuv16[2], *frame, c, cw,
                                                    ch);
        e = s_launched();
    }
    return e;
}

const char *rf_gk_luma_rows(const float *const rgb[3], int width, int height, double *row_sums,
                            void *stream)
{
    k_luma_rows<<<s_blocks((size_t)height), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(
        rgb[0], rgb[1], rgb[2], width, height, row_sums);
    return s_launched();
}

const char *rf_gk_gain(float *const rgb[3], size_t n, float gain, void *stream)
{
    k_gain<<<s_blocks(n), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(rgb[0], rgb[1], rgb[2], n, gain);
    return s_launched();
}

const char *rf_gk_lab_rows(const float *const rgb[3], int width, int height, int step,
                           const double shift[3], double *sums, void *stream)
{
    const int nrows = (height + step - 1) / step;
    k_lab_rows<<<s_blocks((size_t)nrows), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(
        rgb[0], rgb[1], rgb[2], width, nrows, step, shift[0], shift[1], shift[2], sums);
    return s_launched();
}

const char *rf_gk_colormatch(float *const rgb[3], size_t n, const rf_gcolormatch_t *k, void *stream)
{
    k_colormatch<<<s_blocks(n), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(rgb[0], rgb[1], rgb[2], n,
                                                                        *k);
    return s_launched();
}

const char *rf_gk_grade(float *const rgb[3], size_t n, const rf_ggrade_t *k, void *stream)
{
    k_grade<<<s_blocks(n), RF_GK_BLOCK, 0, (cudaStream_t)stream>>>(rgb[0], rgb[1], rgb[2], n, *k);
    return s_launched();
}

const char *rf_gk_sharpen(float *px, float *tmp, int width, int height, const double *weight,
                          int half, double amount, double threshold, void *stream)
{
    const cudaStream_t s = (cudaStream_t)stream;
    const dim3 tile(RF_GK_TILE, RF_GK_TILE);
    k_blur_rows<<<s_grid(width, height), tile, 0, s>>>(px, tmp, width, height, weight, half);
    const char *e = s_launched();
    if (!e) {
        k_mask<<<s_grid(width, height), tile, 0, s>>>(px, tmp, width, height, weight, half, amount,
                                                      threshold);
        e = s_launched();
    }
    return e;
}

const char *rf_gk_filter_rows(const float *in, float *out, int in_w, int out_w, int rows,
                              const int *index, const double *weight, int taps, void *stream)
{
    k_filter_rows<<<s_grid(out_w, rows), dim3(RF_GK_TILE, RF_GK_TILE), 0, (cudaStream_t)stream>>>(
        in, out, in_w, out_w, rows, index, weight, taps);
    return s_launched();
}

const char *rf_gk_filter_cols(const float *in, float *out, int cols, int out_h, const int *index,
                              const double *weight, int taps, void *stream)
{
    k_filter_cols<<<s_grid(cols, out_h), dim3(RF_GK_TILE, RF_GK_TILE), 0, (cudaStream_t)stream>>>(
        in, out, cols, out_h, index, weight, taps);
    return s_launched();
}

} /* extern "C" */
