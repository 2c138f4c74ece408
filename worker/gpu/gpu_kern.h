/* gpu_kern.h - the thin CUDA layer under gpu_pipe.c (private to worker/gpu/).
 *
 * gpu_kern.cu implements these with the CUDA runtime; gpu_none.c, in builds without nvcc, answers
 * every one with "built without CUDA" (rf_gk_device_open fails first, so nothing else is reached).
 * Keeping CUDA behind these few calls leaves all the logic - formats, the pass chain, the ring,
 * the CPU fallbacks - in plain C, compiled and tested in every build.
 *
 * Each call returns NULL on success or a static message (cudaGetErrorString) on failure. Streams
 * and events are opaque pointers (cudaStream_t / cudaEvent_t). Streams are created blocking with
 * respect to the legacy default stream, which FFmpeg's NVDEC copies use when its device context
 * has no stream of its own: a surface NVDEC wrote is complete before our kernels read it.
 * Kernel calls are asynchronous on the given stream; sizes are in samples unless named bytes.
 */
#ifndef RF_GPU_KERN_H
#define RF_GPU_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "gpu_math.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- device, memory, streams, events ----------------------------------------------------------
 */

/* Asks for blocking-sync scheduling on device's primary context before anything activates it:
 * FFmpeg's CUDA hwcontext (NVDEC) shares the primary context only with those flags. The probe
 * calls it first thing; harmless later. */
void rf_gk_blocking_sync(int device);
/* Makes device the calling thread's current one (the primary context, shared with FFmpeg). */
const char *rf_gk_device_open(int device);
const char *rf_gk_mem_info(uint64_t *free_bytes, uint64_t *total_bytes);
const char *rf_gk_malloc(void **ptr, size_t bytes);
void rf_gk_free(void *ptr);
/* Page-locked host memory (fast, asynchronous copies). */
const char *rf_gk_host_alloc(void **ptr, size_t bytes);
void rf_gk_host_free(void *ptr);
const char *rf_gk_stream_new(void **stream);
void rf_gk_stream_destroy(void *stream);
const char *rf_gk_stream_sync(void *stream);
const char *rf_gk_event_new(void **event);
void rf_gk_event_destroy(void *event);
const char *rf_gk_event_record(void *event, void *stream);
const char *rf_gk_event_sync(void *event);
/* Milliseconds between two completed events. */
const char *rf_gk_event_elapsed(void *start, void *end, float *ms);
/* Work later queued on stream waits for event. */
const char *rf_gk_stream_wait(void *stream, void *event);
/* 2-D copy of rows of width_bytes; kind: 1 host->device, 2 device->host, 3 device->device.
 * With rows > 1 both pitches must be at least width_bytes (CUDA's rule); with one row they are
 * ignored. */
const char *rf_gk_copy2d(void *dst, size_t dpitch, const void *src, size_t spitch,
                         size_t width_bytes, size_t rows, int kind, void *stream);

/* ---- colour conversion ---------------------------------------------------------------------- */

/* frame (layout l, device pointers) -> planar RGB float rgb[3] (width*height each). */
const char *rf_gk_yuv_to_rgb(const rf_gyuv_t *l, const rf_gyuv_planes_t *frame,
                             const rf_gmatrix_t *m, float *const rgb[3], void *stream);
/* rgb[3] -> full-resolution 16-bit Y, Cb, Cr (yuv16[3], width*height each) -> frame in layout l. */
const char *rf_gk_rgb_to_yuv(const rf_gyuv_t *l, const rf_gmatrix_t *m, const float *const rgb[3],
                             uint16_t *const yuv16[3], rf_gyuv_planes_t *frame, void *stream);

/* ---- passes ------------------------------------------------------------------------------------
 */

/* row_sums[y] = deflicker's luma sum of row y (height rows, device memory). */
const char *rf_gk_luma_rows(const float *const rgb[3], int width, int height, double *row_sums,
                            void *stream);
/* Every sample of every plane times gain, clamped to 0..1. */
const char *rf_gk_gain(float *const rgb[3], size_t n, float gain, void *stream);
/* sums[6 * r] = color-match's sums for sampled row r (rows 0, step, 2 step, ...). */
const char *rf_gk_lab_rows(const float *const rgb[3], int width, int height, int step,
                           const double shift[3], double *sums, void *stream);
const char *rf_gk_colormatch(float *const rgb[3], size_t n, const rf_gcolormatch_t *k,
                             void *stream);
const char *rf_gk_grade(float *const rgb[3], size_t n, const rf_ggrade_t *k, void *stream);
/* One plane: rows blurred into tmp, then columns of tmp and the mask into px. weight: device
 * memory, half + 1 doubles. */
const char *rf_gk_sharpen(float *px, float *tmp, int width, int height, const double *weight,
                          int half, double amount, double threshold, void *stream);
/* One plane: out (out_w x rows) from in (in_w x rows) along rows, or along columns (cols wide,
 * in rows -> out rows). index/weight: device memory, out * taps each. */
const char *rf_gk_filter_rows(const float *in, float *out, int in_w, int out_w, int rows,
                              const int *index, const double *weight, int taps, void *stream);
const char *rf_gk_filter_cols(const float *in, float *out, int cols, int out_h, const int *index,
                              const double *weight, int taps, void *stream);

/* ---- fp16 NHWC ------------------------------------------------------------------------------ */

/* rgb[3] (width*height fp32 each) -> out[(y*width + x)*cpad + c], binary16 bits, channels 3..cpad-1
 * zero; and back (the padding channels ignored). */
const char *rf_gk_to_nhwc16(const float *const rgb[3], int width, int height, int cpad,
                            uint16_t *out, void *stream);
const char *rf_gk_from_nhwc16(const uint16_t *in, int width, int height, int cpad,
                              float *const rgb[3], void *stream);

#ifdef __cplusplus
}
#endif

#endif
