/* passes.h - the pass interface (DESIGN §6) and the built-in passes' registry.
 *
 * A pass is a C vtable. Frames reach a pass in presentation order, one at a time, as planar RGB
 * fp32 (values nominally 0..1, full range, the source's primaries), and the pass changes them in
 * place. Context frames (before the chunk's first frame) are run through every pass too, so
 * temporal passes warm their state up exactly as if the chunk had started earlier; they are not
 * encoded. Anything random must be a function of (job seed, global frame index) - never of the
 * chunk, the worker or the time - so re-running a chunk, or chunking differently, gives the same
 * frames.
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

#define RF_PASS_ABI 1

/* One frame inside the pipeline. */
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
    int width, height;
    AVRational frame_rate;
} rf_pass_setup_t;

typedef struct rf_pass_vtable {
    const char *name;
    int abi;            /* RF_PASS_ABI */
    /* Parses parameters and allocates state. */
    int (*create)(const rf_pass_setup_t *setup, void **state, rf_err_t *err);
    /* Context frames this pass wants before the chunk's first frame (for the planner). */
    int (*plan)(void *state);
    /* Processes one frame in place. */
    int (*run)(void *state, rf_pframe_t *frame, rf_err_t *err);
    /* End of the chunk. */
    int (*flush)(void *state, rf_err_t *err);
    void (*destroy)(void *state);
} rf_pass_vtable_t;

/* The built-in pass with this name, or NULL. */
const rf_pass_vtable_t *rf_pass_builtin(const char *name);

/* A chain of passes for one chunk, in spec order. */
typedef struct rf_pass_chain rf_pass_chain_t;

int rf_pass_chain_new(const rf_pass_spec_t *passes, size_t npasses, uint64_t seed, int width,
                      int height, AVRational frame_rate, rf_pass_chain_t **out, rf_err_t *err);
/* Runs every pass on frame; err names the pass and the frame ("pass 'deflicker' at frame 812: ..."). */
int rf_pass_chain_run(rf_pass_chain_t *c, rf_pframe_t *frame, rf_err_t *err);
int rf_pass_chain_flush(rf_pass_chain_t *c, rf_err_t *err);
/* The largest context any pass of the chain asks for. */
int rf_pass_chain_context(const rf_pass_chain_t *c);
void rf_pass_chain_destroy(rf_pass_chain_t **c);

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
void rf_pframe_release(rf_pframe_t *pf);

#endif
