/* passes.h - the pass interface (DESIGN §6) and the built-in passes' registry.
 *
 * A pass is a C vtable, built in or loaded from a plugin (docs/passes.md). Frames reach a pass in
 * presentation order, one at a time, as planar RGB fp32 (values nominally 0..1, full range, the
 * source's primaries), and the pass changes them in place - or, for a pass that changes the frame
 * size (ABI 2, output_size: scale), replaces their planes; every later pass is created for the new
 * size and rf_pass_chain_output_size() says what the encoder gets. Context frames (before the
 * chunk's first frame) are run through every pass too, so temporal passes warm their state up
 * exactly as if the chunk had started earlier; they are not encoded. Anything random must be a
 * function of (job seed, global frame index) - never of the chunk, the worker or the time - so
 * re-running a chunk, or chunking differently, gives the same frames.
 *
 * Every pass has a CPU implementation; a CUDA one, where it pays, is tested against it.
 */
#ifndef RF_PASSES_H
#define RF_PASSES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "config.h"
#include "error.h"

/* The pass ABI this worker speaks, and the oldest it still loads. A vtable says which one it was
 * built for in .abi; the host reads only the fields that version has.
 *   1: name, abi, create, plan, run, flush, destroy.
 *   2: adds output_size at the end (passes that change the frame size, like scale).
 * A plugin built for ABI 1 keeps loading: its vtable is shorter and output_size is never read.
 * The structs below (rf_pframe_t, rf_pass_setup_t, rf_pass_spec_t, rf_param_t, rf_err_t) are part
 * of the ABI: changing their layout means a new RF_PASS_ABI and RF_PASS_ABI_MIN raised to it. */
#define RF_PASS_ABI 2
#define RF_PASS_ABI_MIN 1

#define RF_PASS_MAX_DIM 16384   /* a pass may not make frames wider or taller than this */
#define RF_PFRAME_PAD_FLOATS 64 /* slack after each plane for SIMD writers that overrun a row */

/* One frame inside the pipeline.
 *
 * Ownership: the planes belong to the frame. Each is av_malloc'd (libavutil) with room for
 * width*height + RF_PFRAME_PAD_FLOATS floats and freed by rf_pframe_release (av_free). A pass that
 * changes the frame size (ABI 2, output_size) replaces them in run(): it allocates the new planes
 * the same way, av_frees the old ones and sets width and height; every other pass changes samples
 * in place and never touches the pointers. */
typedef struct rf_pframe {
    int64_t index;    /* global frame index */
    int64_t pts;      /* source PTS (input time base) */
    bool context;     /* a context frame: processed, not encoded */
    int width, height;
    float *plane[3];  /* R, G, B; each width*height floats, rows contiguous (stride = width) */
} rf_pframe_t;

/* What a pass learns when it is created. */
typedef struct rf_pass_setup {
    const rf_pass_spec_t *spec; /* name, role, parameters with defaults filled in */
    uint64_t seed;              /* job seed */
    int width, height;          /* of the frames this pass receives (after earlier passes) */
    AVRational frame_rate;
} rf_pass_setup_t;

typedef struct rf_pass_vtable {
    const char *name;
    int abi;            /* the RF_PASS_ABI it was built for (RF_PASS_ABI_MIN..RF_PASS_ABI) */
    /* Parses parameters and allocates state. */
    int (*create)(const rf_pass_setup_t *setup, void **state, rf_err_t *err);
    /* Context frames this pass wants before the chunk's first frame (for the planner). */
    int (*plan)(void *state);
    /* Processes one frame in place. */
    int (*run)(void *state, rf_pframe_t *frame, rf_err_t *err);
    /* End of the chunk. */
    int (*flush)(void *state, rf_err_t *err);
    void (*destroy)(void *state);
    /* ---- ABI 2 ---- */
    /* The size of the frames run() hands on, given the setup's size (called once, after
     * create). NULL, or an ABI 1 vtable: the same size. */
    int (*output_size)(void *state, int *width, int *height);
} rf_pass_vtable_t;

/* The pass a pipeline names: a built-in one, else a loaded plugin, else NULL. (Not called
 * rf_pass_find: config.h has that name for the catalogue of built-ins.) */
const rf_pass_vtable_t *rf_pass_lookup(const char *name);
/* The same as rf_pass_lookup, under its older name: callers that check "does this worker have
 * pass X" before a chunk (slot.c) must see plugins too. */
const rf_pass_vtable_t *rf_pass_builtin(const char *name);

/* ---- plugins: passes from shared objects (docs/passes.md) ------------------------------------
 *
 * A plugin is a shared object exporting
 *     const rf_pass_vtable_t *rf_pass_plugin_entry(int host_abi);
 * which returns its vtable, or NULL when it cannot work with a host speaking host_abi. The host
 * refuses a vtable whose abi is outside RF_PASS_ABI_MIN..RF_PASS_ABI, one without create, run or
 * destroy, one with a bad name ([a-z0-9_-], 1..63 characters) and one whose name is a built-in or
 * an already loaded plugin. The registry is process-wide: loaded once at start, before any slot
 * thread runs, and only read afterwards (so lookups need no lock); rf_pass_plugins_unload is for
 * tests and the end of main. */
#define RF_PASS_PLUGIN_ENTRY "rf_pass_plugin_entry"
#define RF_PASS_PLUGINS_MAX 64

typedef const rf_pass_vtable_t *(*rf_pass_plugin_entry_fn)(int host_abi);

/* Loads one shared object. Errors name the file and the reason ("plugin '/x/p.so': pass ABI 9,
 * this worker loads 1..2"). */
int rf_pass_plugin_load(const char *path, rf_err_t *err);
/* Loads every *.so directly in dir, in name order; stops at the first failure. */
int rf_pass_plugins_load_dir(const char *dir, rf_err_t *err);
size_t rf_pass_plugin_count(void);
/* The name of loaded plugin i (0..count-1). */
const char *rf_pass_plugin_name(size_t i);
/* Forgets every plugin and dlcloses them. No chain may be alive. */
void rf_pass_plugins_unload(void);

/* A chain of passes for one chunk, in spec order. */
typedef struct rf_pass_chain rf_pass_chain_t;

int rf_pass_chain_new(const rf_pass_spec_t *passes, size_t npasses, uint64_t seed, int width,
                      int height, AVRational frame_rate, rf_pass_chain_t **out, rf_err_t *err);
/* Runs every pass on frame; err names the pass and the frame ("pass 'deflicker' at frame 812: ..."). */
int rf_pass_chain_run(rf_pass_chain_t *c, rf_pframe_t *frame, rf_err_t *err);
int rf_pass_chain_flush(rf_pass_chain_t *c, rf_err_t *err);
/* The largest context any pass of the chain asks for. */
int rf_pass_chain_context(const rf_pass_chain_t *c);
/* The size of the frames the chain hands on (what the encoder must be opened at): the input size
 * unless a pass (scale) changes it. */
void rf_pass_chain_output_size(const rf_pass_chain_t *c, int *width, int *height);
void rf_pass_chain_destroy(rf_pass_chain_t **c);

/* ---- the watermark pass's pattern (watermark.c) ------------------------------------------------ */

struct rf_media_wm_pattern;
/* The pattern the `watermark` pass's parameters (key, payload: set by the coordinator) describe:
 * for a slot that marks the encoder's luma itself instead of running the pass on RGB. */
int rf_pass_watermark_pattern(const rf_pass_spec_t *spec, struct rf_media_wm_pattern **out,
                              rf_err_t *err);

/* ---- conversion between decoded frames and pipeline frames (swscale) -------------------------- */

typedef struct rf_pconvert rf_pconvert_t;

/* A converter for frames of width x height in pix_fmt (with the given colour range/space), to
 * planar RGB fp32 and back. */
int rf_pconvert_new(int width, int height, int pix_fmt, int color_range, int color_space,
                    rf_pconvert_t **out, rf_err_t *err);
/* Allocates pf's planes on first use (rf_pframe_release frees them). */
int rf_pconvert_to_rgb(rf_pconvert_t *c, const AVFrame *src, rf_pframe_t *pf, rf_err_t *err);
/* Writes pf into dst (dst gets width/height/format set and its buffers allocated). */
int rf_pconvert_from_rgb(rf_pconvert_t *c, const rf_pframe_t *pf, AVFrame *dst, rf_err_t *err);
void rf_pconvert_destroy(rf_pconvert_t **c);

/* The numbers the YUV path converts with, for the GPU's conversion to use the same ones
 * (worker/gpu): 16-bit code scaling y = (code16 - y_off) / y_span, c = (code16 - c_off) / c_span
 * (code16 = code << (16 - depth)), the matrix's luma weights kr, kb, and the range and matrix
 * (enum AVColorRange / AVColorSpace, never unspecified) the frames are read and written as.
 * RF_EINVAL for formats that are not YUV (RGB, gray, float). */
typedef struct rf_pconvert_yuv {
    float y_off, y_span, c_off, c_span;
    float kr, kb;
    int range, space;
} rf_pconvert_yuv_t;
int rf_pconvert_yuv_params(int width, int height, int pix_fmt, int color_range, int color_space,
                           rf_pconvert_yuv_t *out, rf_err_t *err);
void rf_pframe_release(rf_pframe_t *pf);

#endif
