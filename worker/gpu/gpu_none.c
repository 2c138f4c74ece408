/* gpu_none.c - gpu.h and gpu_kern.h for builds without nvcc: this binary has no CUDA code, so no
 * device. rf_gk_device_open fails, so gpu_pipe.c never gets further; the other calls answer the
 * same way in case one is reached anyway. */
#include <stdio.h>
#include <string.h>

#include "gpu.h"
#include "gpu_kern.h"

#define S_NO_CUDA "built without CUDA (nvcc was not found)"

void rf_gpu_probe(rf_gpu_info_t *info)
{
    memset(info, 0, sizeof(*info));
    snprintf(info->note, sizeof(info->note), "%s", S_NO_CUDA);
}

void rf_gk_blocking_sync(int device)
{
    (void)device;
}

const char *rf_gk_device_open(int device)
{
    (void)device;
    return S_NO_CUDA;
}

const char *rf_gk_mem_info(uint64_t *free_bytes, uint64_t *total_bytes)
{
    *free_bytes = 0;
    *total_bytes = 0;
    return S_NO_CUDA;
}

const char *rf_gk_malloc(void **ptr, size_t bytes)
{
    (void)bytes;
    *ptr = NULL;
    return S_NO_CUDA;
}

void rf_gk_free(void *ptr)
{
    (void)ptr;
}

const char *rf_gk_host_alloc(void **ptr, size_t bytes)
{
    (void)bytes;
    *ptr = NULL;
    return S_NO_CUDA;
}

void rf_gk_host_free(void *ptr)
{
    (void)ptr;
}

const char *rf_gk_stream_new(void **stream)
{
    *stream = NULL;
    return S_NO_CUDA;
}

void rf_gk_stream_destroy(void *stream)
{
    (void)stream;
}

const char *rf_gk_stream_sync(void *stream)
{
    (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_event_new(void **event)
{
    *event = NULL;
    return S_NO_CUDA;
}

void rf_gk_event_destroy(void *event)
{
    (void)event;
}

const char *rf_gk_event_record(void *event, void *stream)
{
    (void)event;
    (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_event_sync(void *event)
{
    (void)event;
    return S_NO_CUDA;
}

const char *rf_gk_event_elapsed(void *start, void *end, float *ms)
{
    (void)start;
    (void)end;
    *ms = 0;
    return S_NO_CUDA;
}

const char *rf_gk_stream_wait(void *stream, void *event)
{
    (void)stream;
    (void)event;
    return S_NO_CUDA;
}

const char *rf_gk_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                         size_t width_bytes, size_t rows, int kind, void *stream)
{
    (void)dst, (void)dpitch, (void)src, (void)spitch, (void)width_bytes, (void)rows, (void)kind;
    (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_yuv_to_rgb(const rf_gyuv_t *l, const rf_gyuv_planes_t *frame,
                             const rf_gmatrix_t *m, float *const rgb[3], void *stream)
{
    (void)l, (void)frame, (void)m, (void)rgb, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_rgb_to_yuv(const rf_gyuv_t *l, const rf_gmatrix_t *m, const float *const rgb[3],
                             uint16_t *const yuv16[3], rf_gyuv_planes_t *frame, void *stream)
{
    (void)l, (void)m, (void)rgb, (void)yuv16, (void)frame, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_luma_rows(const float *const rgb[3], int width, int height, double *row_sums,
                            void *stream)
{
    (void)rgb, (void)width, (void)height, (void)row_sums, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_gain(float *const rgb[3], size_t n, float gain, void *stream)
{
    (void)rgb, (void)n, (void)gain, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_lab_rows(const float *const rgb[3], int width, int height, int step,
                           const double shift[3], double *sums, void *stream)
{
    (void)rgb, (void)width, (void)height, (void)step, (void)shift, (void)sums, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_colormatch(float *const rgb[3], size_t n, const rf_gcolormatch_t *k, void *stream)
{
    (void)rgb, (void)n, (void)k, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_grade(float *const rgb[3], size_t n, const rf_ggrade_t *k, void *stream)
{
    (void)rgb, (void)n, (void)k, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_sharpen(float *px, float *tmp, int width, int height, const double *weight,
                          int half, double amount, double threshold, void *stream)
{
    (void)px, (void)tmp, (void)width, (void)height, (void)weight, (void)half, (void)amount;
    (void)threshold, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_filter_rows(const float *in, float *out, int in_w, int out_w, int rows,
                              const int *index, const double *weight, int taps, void *stream)
{
    (void)in, (void)out, (void)in_w, (void)out_w, (void)rows, (void)index, (void)weight;
    (void)taps, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_filter_cols(const float *in, float *out, int cols, int out_h, const int *index,
                              const double *weight, int taps, void *stream)
{
    (void)in, (void)out, (void)cols, (void)out_h, (void)index, (void)weight, (void)taps;
    (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_to_nhwc16(const float *const rgb[3], int width, int height, int cpad,
                            uint16_t *out, void *stream)
{
    (void)rgb, (void)width, (void)height, (void)cpad, (void)out, (void)stream;
    return S_NO_CUDA;
}

const char *rf_gk_from_nhwc16(const uint16_t *in, int width, int height, int cpad,
                              float *const rgb[3], void *stream)
{
    (void)in, (void)width, (void)height, (void)cpad, (void)rgb, (void)stream;
    return S_NO_CUDA;
}
