/* critic.h - the critic gate's scorer (docs/models.md, "The critic gate"): an ONNX model run with
 * the worker's own executor (worker/nn) on every frame a chunk renders, giving one number per
 * frame.
 *
 * The model: one input [1, C, H, W] float, C = 3 (RGB) or 1 (Rec.709 luma); H and W symbolic
 * (the frame's size) or fixed (the frame is resampled to H x W: each model pixel is the mean of
 * the frame pixels it covers, the nearest one when the model is larger than the frame). A pipeline
 * value v in [0, 1] is fed as input_min + v * (input_max - input_min). The frame's score is the
 * mean of every element of the model's first output (a single logit, a patch map: both work).
 *
 * The slot scores the frames as they reach the encoder (after every pass, the visible label
 * included; before the invisible watermark), and a chunk's score is the lowest of its frames'
 * scores: one broken frame is enough to render the chunk again. One scorer serves one slot thread.
 */
#ifndef RF_CRITIC_H
#define RF_CRITIC_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "passes.h"

typedef struct rf_critic rf_critic_t;

typedef struct rf_critic_opts {
    const char *model;  /* the .onnx file */
    const char *device; /* auto | cpu | gpu (auto: the GPU backend when there is one) */
    int gpu_index;      /* the CUDA device for gpu/auto */
    double input_min, input_max;
} rf_critic_opts_t;

/* Loads and checks the model (the plan is made on the first frame, once its size is known).
 * RF_ECONFIG names what is wrong with a model the gate cannot use. */
int rf_critic_new(const rf_critic_opts_t *opts, rf_critic_t **out, rf_err_t *err);

/* Scores one frame (planar RGB in [0, 1]). A frame of another size than the first one makes a new
 * plan. */
int rf_critic_score(rf_critic_t *c, const rf_pframe_t *frame, float *score, rf_err_t *err);

/* The device the plan runs on ("cpu" or "gpu"), "" before the first frame. */
const char *rf_critic_device(const rf_critic_t *c);

void rf_critic_destroy(rf_critic_t **c);

/* A chunk's scores over one render: folded frame by frame. */
typedef struct rf_critic_tally {
    uint64_t frames;
    double sum;
    float min; /* the chunk's score; +inf before the first frame */
} rf_critic_tally_t;

void rf_critic_tally_init(rf_critic_tally_t *t);
void rf_critic_tally_add(rf_critic_tally_t *t, float score);
float rf_critic_tally_mean(const rf_critic_tally_t *t);

#endif
