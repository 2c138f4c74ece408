/* gpu_pipe.h - the passes on a CUDA device: colour conversion, the pass chain, the frame ring, and
 * the arithmetic that decides what runs where and how much device memory a slot takes.
 *
 * Plain C, compiled in every build. Without nvcc (gpu_none.c) or without a device, opening
 * anything that needs the device fails with RF_EUNAVAIL and a reason, and the slot renders on the
 * CPU exactly as before; the placement and VRAM functions work everywhere.
 *
 * What runs on the device: the built-in passes that have a CUDA version (rf_gpu_pass_has_cuda:
 * color-match, deflicker, grade, scale, sharpen) when the worker has a device. A chain may mix
 * them with CPU-only passes (plugins): the frame goes down to the host for those and back up, so a
 * chain is never refused for lack of a CUDA version. A CUDA pass is created by its CPU vtable and
 * keeps its CPU state (parameters, histories, filter weights); only the per-sample work and the
 * frame statistics run on the device (gpu_math.h), so the two versions compute the same thing and
 * docs/passes.md states how closely.
 *
 * Frames on the device are planar RGB fp32, like the CPU pipeline's (DESIGN §6 names fp16 NHWC for
 * the neural passes; the classic passes keep fp32 so they compare with the CPU reference).
 *
 * The stage (rf_gpu_stage_t) is the slot's pass stage on the device. A ring of `ring` frame slots,
 * each with pinned host buffers, device buffers and events, and three streams:
 *   upload   host frame -> pinned staging -> device (or an NVDEC surface, already there) -> RGB
 *   compute  the pass chain, then RGB -> the encoder's format
 *   download device -> pinned ring buffer
 * so frame N's upload, frame N-1's passes and frame N-2's download overlap on the device while
 * the decode and encode threads run on the CPU. A frame leaves the ring (rf_gpu_stage_pop) as an
 * ordinary AVFrame in the encoder's format, copied out of the pinned buffer (encoders keep frames
 * for their lookahead; a pinned buffer handed to them would stall the ring).
 */
#ifndef RF_GPU_PIPE_H
#define RF_GPU_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "config.h"
#include "error.h"
#include "gpu_math.h"
#include "passes.h"

/* ---- what runs where ----------------------------------------------------------------------------
 */

/* True when the built-in pass name has a CUDA version (a plugin never has). */
bool rf_gpu_pass_has_cuda(const char *name);

/* For each of the n passes: on_cuda[i] = device && rf_gpu_pass_has_cuda(name). Returns how many
 * run on the device. */
size_t rf_gpu_pass_placement(const rf_pass_spec_t *passes, size_t n, bool device, bool *on_cuda);

/* ---- formats
 * ------------------------------------------------------------------------------------- */

/* The layout of pix_fmt for the GPU conversion: little-endian YUV with three components, 8 to 16
 * bits, chroma full or halved per axis (yuv420p, yuv422p, yuv444p, nv12, nv21, p010le, p016le,
 * yuv420p10le, ...). RF_EUNAVAIL (with the reason) for anything else: RGB, gray, big-endian,
 * 4:1:1, bitstream formats; those slots convert on the CPU. */
int rf_gpu_yuv_layout(int pix_fmt, int width, int height, rf_gyuv_t *out, rf_err_t *err);

/* Bytes of one frame in layout l packed plane after plane with rows of exactly the plane's width
 * (the upload and download staging layout), and each plane's offset and pitch in it. */
size_t rf_gpu_packed_size(const rf_gyuv_t *l, size_t offset[3], int pitch[3]);

/* ---- device memory --------------------------------------------------------------------------- */

#define RF_GPU_RING_DEFAULT 3 /* frames in flight per slot: upload, passes, download */
#define RF_GPU_CONTEXT_BYTES                                                                       \
    (512ULL << 20)               /* the CUDA context and FFmpeg's own, once per process */
#define RF_GPU_BUDGET_WIDTH 3840 /* a slot's budget is reserved for frames this large */
#define RF_GPU_BUDGET_HEIGHT 2160
#define RF_GPU_NVDEC_SURFACES 31 /* NVDEC's pool: DPB (16) + 2 + RF_DECODE_EXTRA_HW_FRAMES (13) */

/* Device bytes a slot needs for frames of in_w x in_h in and out_w x out_h out (after a scale),
 * with ring frames in flight: per ring slot the raw input (16-bit 4:4:4 at worst), three fp32
 * input planes and the raw output; once the chain's scratch (three fp32 output planes, 16-bit
 * 4:4:4 output, one fp32 plane of filter scratch the size of the larger frame) and, when NVDEC
 * decodes for it, its surface pool (NV12 at 16 bits). Rounded up to MiB. */
uint64_t rf_gpu_slot_vram(int in_w, int in_h, int out_w, int out_h, int ring, bool nvdec);

/* How many slots a node runs and how much free VRAM it advertises. requested > 0 is the config's
 * slots (kept as is). Otherwise on a GPU node: as many slots as the CPU can feed encoders for
 * (cores / 4: encoding is the bottleneck, DESIGN §6), spread evenly over the GPUs (rounded up),
 * each GPU taking at most what its free memory holds, (free - RF_GPU_CONTEXT_BYTES) / per_slot,
 * and at least 1; on a CPU node cores / 4, at least 1.
 * *advertised = free - context - slots on that GPU * per_slot (0 when that is negative): what a
 * job's vram_mib can still count on while every slot renders. */
int rf_gpu_plan_slots(int ngpus, long cores, uint64_t free_vram, uint64_t per_slot, int requested,
                      uint64_t *advertised);

/* ---- the chain on the device (tests and the bench use it on host frames) ------------------------
 */

typedef struct rf_gpu_chain rf_gpu_chain_t;

/* The passes of a pipeline on device `device`, for frames of width x height. Same errors as
 * rf_pass_chain_new, plus RF_EUNAVAIL when there is no device ("built without CUDA", the CUDA
 * error). cpu_only forces every pass onto the CPU (a chain that only moves frames around). */
int rf_gpu_chain_new(int device, const rf_pass_spec_t *passes, size_t npasses, uint64_t seed,
                     int width, int height, AVRational frame_rate, bool cpu_only,
                     rf_gpu_chain_t **out, rf_err_t *err);
/* Uploads pf, runs every pass, downloads the result into pf (planes replaced when the size
 * changes). Synchronous. */
int rf_gpu_chain_run_host(rf_gpu_chain_t *c, rf_pframe_t *pf, rf_err_t *err);
int rf_gpu_chain_flush(rf_gpu_chain_t *c, rf_err_t *err);
void rf_gpu_chain_output_size(const rf_gpu_chain_t *c, int *width, int *height);
/* How many of its passes run on the device. */
size_t rf_gpu_chain_on_device(const rf_gpu_chain_t *c);
void rf_gpu_chain_destroy(rf_gpu_chain_t **c);

/* The colour conversion alone, synchronous, host frames in and out (tests): src (a YUV format
 * rf_gpu_yuv_layout accepts) to pf, and pf to dst in pix_fmt with the given range and matrix
 * (dst gets its buffers allocated). */
int rf_gpu_convert_to_rgb(int device, const AVFrame *src, rf_pframe_t *pf, rf_err_t *err);
int rf_gpu_convert_from_rgb(int device, const rf_pframe_t *pf, int pix_fmt, int color_range,
                            int color_space, AVFrame *dst, rf_err_t *err);

/* ---- fp16 NHWC for the neural passes (DESIGN §6)
 * --------------------------------------------------
 *
 * The classic passes keep frames planar fp32; a network wants one NHWC fp16 tensor with the
 * channels padded (to 8 for tensor cores). These convert device planes to such a tensor and back,
 * on `stream` (asynchronous), as IEEE binary16 bit patterns rounded to nearest even (the padding
 * channels are zero; on the way back they are ignored). RF_EINVAL for cpad outside 3..8 or a bad
 * size, RF_EIO for a CUDA error, RF_EUNAVAIL in builds without CUDA. */
#define RF_GPU_NHWC_MAX_CHANNELS 8
int rf_gpu_to_nhwc16(const float *const rgb[3], int width, int height, int cpad, uint16_t *out,
                     void *stream, rf_err_t *err);
int rf_gpu_from_nhwc16(const uint16_t *in, int width, int height, int cpad, float *const rgb[3],
                       void *stream, rf_err_t *err);

/* ---- the stage: a slot's passes on the device
 * ------------------------------------------------------ */

typedef struct rf_gpu_stage rf_gpu_stage_t;

typedef struct rf_gpu_stage_cfg {
    int device;
    int width, height; /* decoded frames */
    int pix_fmt;       /* their format (sw_format for NVDEC frames) */
    int color_range, color_space;
    int out_pix_fmt; /* the encoder's format */
    const rf_pass_spec_t *passes;
    size_t npasses;
    uint64_t seed;
    AVRational frame_rate;
    int ring; /* frames in flight, 2..8; 0 = RF_GPU_RING_DEFAULT */
} rf_gpu_stage_cfg_t;

/* RF_EUNAVAIL (with the reason) when this combination cannot run on the device: no device, a
 * format rf_gpu_yuv_layout refuses; the caller then uses the CPU path. Other codes are errors of
 * the passes themselves, as rf_pass_chain_new reports them. */
int rf_gpu_stage_new(const rf_gpu_stage_cfg_t *cfg, rf_gpu_stage_t **out, rf_err_t *err);
/* Queues one decoded frame (a host frame in cfg's format, or an AV_PIX_FMT_CUDA frame whose
 * sw_format is) as global frame index; context frames go through the passes and are not handed
 * on. When the ring is full this waits for the oldest frame, which pop then returns. */
int rf_gpu_stage_push(rf_gpu_stage_t *st, const AVFrame *in, int64_t index, bool context,
                      rf_err_t *err);
/* A finished frame in presentation order (1, *out owned by the caller, pts and properties of the
 * input frame, the colour tags of the encoder's format), or 0 when none is ready. */
int rf_gpu_stage_pop(rf_gpu_stage_t *st, AVFrame **out, rf_err_t *err);
/* Waits for every frame in flight (pop then returns them) and flushes the passes. */
int rf_gpu_stage_finish(rf_gpu_stage_t *st, rf_err_t *err);
void rf_gpu_stage_output_size(const rf_gpu_stage_t *st, int *width, int *height);
/* Device bytes this stage allocated. */
uint64_t rf_gpu_stage_vram(const rf_gpu_stage_t *st);
/* Device time of the finished frames' work (upload to download, summed per stream, from CUDA
 * events) in milliseconds, and the number of frames it covers. */
void rf_gpu_stage_device_ms(const rf_gpu_stage_t *st, double *ms, uint64_t *frames);
size_t rf_gpu_stage_on_device(const rf_gpu_stage_t *st);
void rf_gpu_stage_destroy(rf_gpu_stage_t **st);

#endif
