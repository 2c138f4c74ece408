/* cudaemu.h - an emulated CUDA device for tests: gpu_kern.h implemented on the CPU.
 *
 * "Device memory" is host memory, copies are memcpy, streams and events are markers, and each
 * kernel is the loop of gpu_kern.cu with the same gpu_math.h function as its body. A test includes
 * this header (it defines the functions, so exactly one file per test executable), then
 * gpu_pipe.c itself, so gpu_pipe.c's calls reach the emulation instead of CUDA and the archive's
 * CUDA objects are never linked in. Device 0 exists; any other does not.
 */
#ifndef RF_TEST_CUDAEMU_H
#define RF_TEST_CUDAEMU_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_kern.h"

/* ---- the emulated device ------------------------------------------------------------------------
 */

static int s_marker;    /* streams and events are its address */
static uint64_t s_live; /* allocations not yet freed */

void rf_gk_blocking_sync(int device)
{
    (void)device;
}

const char *rf_gk_device_open(int device)
{
    return device == 0 ? NULL : "no such device (emulation has device 0 only)";
}

const char *rf_gk_mem_info(uint64_t *free_bytes, uint64_t *total_bytes)
{
    *free_bytes = 8ULL << 30;
    *total_bytes = 16ULL << 30;
    return NULL;
}

const char *rf_gk_malloc(void **ptr, size_t bytes)
{
    *ptr = calloc(1, bytes ? bytes : 1);
    s_live += *ptr != NULL;
    return *ptr ? NULL : "out of memory";
}

void rf_gk_free(void *ptr)
{
    s_live -= ptr != NULL;
    free(ptr);
}

const char *rf_gk_host_alloc(void **ptr, size_t bytes)
{
    return rf_gk_malloc(ptr, bytes);
}

void rf_gk_host_free(void *ptr)
{
    rf_gk_free(ptr);
}

const char *rf_gk_stream_new(void **stream)
{
    *stream = &s_marker;
    return NULL;
}

void rf_gk_stream_destroy(void *stream)
{
    (void)stream;
}

const char *rf_gk_stream_sync(void *stream)
{
    (void)stream;
    return NULL;
}

const char *rf_gk_event_new(void **event)
{
    *event = &s_marker;
    return NULL;
}

void rf_gk_event_destroy(void *event)
{
    (void)event;
}

const char *rf_gk_event_record(void *event, void *stream)
{
    (void)event;
    (void)stream;
    return NULL;
}

const char *rf_gk_event_sync(void *event)
{
    (void)event;
    return NULL;
}

const char *rf_gk_event_elapsed(void *start, void *end, float *ms)
{
    (void)start;
    (void)end;
    *ms = 0.25f;
    return NULL;
}

const char *rf_gk_stream_wait(void *stream, void *event)
{
    (void)stream;
    (void)event;
    return NULL;
}

const char *rf_gk_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                         size_t width_bytes, size_t rows, int kind, void *stream)
{
    (void)kind;
    (void)stream;
    if (rows > 1 && (dpitch < width_bytes || spitch < width_bytes))
        return "invalid pitch argument"; /* what CUDA answers */
    for (size_t r = 0; r < rows; r++)
        memcpy((uint8_t *)dst + r * dpitch, (const uint8_t *)src + r * spitch, width_bytes);
    return NULL;
}

const char *rf_gk_yuv_to_rgb(const rf_gyuv_t *l, const rf_gyuv_planes_t *frame,
                             const rf_gmatrix_t *m, float *const rgb[3], void *stream)
{
    (void)stream;
    for (int y = 0; y < l->height; y++)
        for (int x = 0; x < l->width; x++) {
            float v[3];
            rf_gm_yuv_to_rgb(l, frame, m, x, y, v);
            for (int c = 0; c < 3; c++)
                rgb[c][(long)y * l->width + x] = v[c];
        }
    return NULL;
}

const char *rf_gk_rgb_to_yuv(const rf_gyuv_t *l, const rf_gmatrix_t *m, const float *const rgb[3],
                             uint16_t *const yuv16[3], rf_gyuv_planes_t *frame, void *stream)
{
    (void)stream;
    const long n = (long)l->width * l->height;
    for (long i = 0; i < n; i++) {
        uint16_t out[3];
        rf_gm_rgb_to_yuv16(m, rgb[0][i], rgb[1][i], rgb[2][i], out);
        for (int c = 0; c < 3; c++)
            yuv16[c][i] = out[c];
    }
    for (int c = 0; c < 3; c++) {
        const int cw = c ? (l->width + (1 << l->cw_log2) - 1) >> l->cw_log2 : l->width;
        const int ch = c ? (l->height + (1 << l->ch_log2) - 1) >> l->ch_log2 : l->height;
        for (int y = 0; y < ch; y++)
            for (int x = 0; x < cw; x++)
                rf_gm_write(l, frame, c, x, y,
                            rf_gm_out_code(l, (const uint16_t *const *)yuv16, c, x, y));
    }
    return NULL;
}

const char *rf_gk_luma_rows(const float *const rgb[3], int width, int height, double *row_sums,
                            void *stream)
{
    (void)stream;
    for (int y = 0; y < height; y++) {
        const long o = (long)y * width;
        row_sums[y] = rf_gm_luma_row(rgb[0] + o, rgb[1] + o, rgb[2] + o, width);
    }
    return NULL;
}

const char *rf_gk_gain(float *const rgb[3], size_t n, float gain, void *stream)
{
    (void)stream;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++)
            rgb[c][i] = rf_gm_clamp01f(rgb[c][i] * gain);
    return NULL;
}

const char *rf_gk_lab_rows(const float *const rgb[3], int width, int height, int step,
                           const double shift[3], double *sums, void *stream)
{
    (void)stream;
    const int nrows = (height + step - 1) / step;
    for (int k = 0; k < nrows; k++) {
        const long o = (long)k * step * width;
        rf_gm_lab_row(rgb[0] + o, rgb[1] + o, rgb[2] + o, width, step, shift, sums + 6 * k);
    }
    return NULL;
}

const char *rf_gk_colormatch(float *const rgb[3], size_t n, const rf_gcolormatch_t *k, void *stream)
{
    (void)stream;
    for (size_t i = 0; i < n; i++)
        rf_gm_colormatch(k, &rgb[0][i], &rgb[1][i], &rgb[2][i]);
    return NULL;
}

const char *rf_gk_grade(float *const rgb[3], size_t n, const rf_ggrade_t *k, void *stream)
{
    (void)stream;
    for (size_t i = 0; i < n; i++)
        rf_gm_grade(k, &rgb[0][i], &rgb[1][i], &rgb[2][i]);
    return NULL;
}

const char *rf_gk_sharpen(float *px, float *tmp, int width, int height, const double *weight,
                          int half, double amount, double threshold, void *stream)
{
    (void)stream;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            tmp[(long)y * width + x] = rf_gm_blur_row(px, width, x, y, weight, half);
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
            const long i = (long)y * width + x;
            px[i] = rf_gm_mask(tmp, width, height, x, y, px[i], weight, half, amount, threshold);
        }
    return NULL;
}

const char *rf_gk_filter_rows(const float *in, float *out, int in_w, int out_w, int rows,
                              const int *index, const double *weight, int taps, void *stream)
{
    (void)stream;
    for (int y = 0; y < rows; y++)
        for (int o = 0; o < out_w; o++)
            out[(long)y * out_w + o] = rf_gm_filter(in + (long)y * in_w, 1, index + (long)o * taps,
                                                    weight + (long)o * taps, taps);
    return NULL;
}

const char *rf_gk_filter_cols(const float *in, float *out, int cols, int out_h, const int *index,
                              const double *weight, int taps, void *stream)
{
    (void)stream;
    for (int o = 0; o < out_h; o++)
        for (int x = 0; x < cols; x++)
            out[(long)o * cols + x] =
                rf_gm_filter(in + x, cols, index + (long)o * taps, weight + (long)o * taps, taps);
    return NULL;
}

const char *rf_gk_to_nhwc16(const float *const rgb[3], int width, int height, int cpad,
                            uint16_t *out, void *stream)
{
    (void)stream;
    const size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++) {
        uint16_t *px = out + i * (size_t)cpad;
        for (int c = 0; c < 3; c++)
            px[c] = rf_gm_half_bits(rgb[c][i]);
        for (int c = 3; c < cpad; c++)
            px[c] = 0;
    }
    return NULL;
}

const char *rf_gk_from_nhwc16(const uint16_t *in, int width, int height, int cpad,
                              float *const rgb[3], void *stream)
{
    (void)stream;
    const size_t n = (size_t)width * (size_t)height;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++)
            rgb[c][i] = rf_gm_half_value(in[i * (size_t)cpad + c]);
    return NULL;
}

#endif
