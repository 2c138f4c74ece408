/* builtin.h - the vtables of the passes compiled into the worker (private to worker/passes/, and
 * to worker/gpu/, which runs the same passes on the device).
 *
 * passes.c lists them in its registry; each pass file defines its own. Callers outside this folder
 * look passes up by name with rf_pass_builtin() (passes.h) and never see these symbols.
 */
#ifndef RF_PASSES_BUILTIN_H
#define RF_PASSES_BUILTIN_H

#include "passes.h"

extern const rf_pass_vtable_t rf_pass_colormatch; /* colormatch.c */
extern const rf_pass_vtable_t rf_pass_deflicker;  /* deflicker.c */
extern const rf_pass_vtable_t rf_pass_grade;      /* grade.c */
extern const rf_pass_vtable_t rf_pass_onnx;       /* onnx.c */
extern const rf_pass_vtable_t rf_pass_label;      /* label.c */
extern const rf_pass_vtable_t rf_pass_scale;      /* scale.c */
extern const rf_pass_vtable_t rf_pass_sharpen;    /* sharpen.c */
extern const rf_pass_vtable_t rf_pass_watermark;  /* watermark.c */

/* The pass compiled into the worker with this name, plugins not considered, or NULL (passes.c). */
const rf_pass_vtable_t *rf_pass_builtin_only(const char *name);

/* The loaded plugin with this name, or NULL (plugin.c). */
const rf_pass_vtable_t *rf_pass_plugin_find(const char *name);

/* RF_EUNAVAIL unless vt's abi is in RF_PASS_ABI_MIN..RF_PASS_ABI and it has create, run and
 * destroy; the message names the pass. Used for built-ins and plugins alike. (passes.c) */
int rf_pass_vtable_check(const rf_pass_vtable_t *vt, const char *name, rf_err_t *err);

/* Reads the number parameter key of spec into *out: absent gives def; text that is not a finite
 * number in min..max is RF_ECONFIG with "parameter 'KEY': expected a number in MIN..MAX, got
 * 'TEXT'". The spec loader has validated it already, but a pass never trusts a spec it did not
 * parse itself. (passes.c) */
int rf_pass_param_double(const rf_pass_spec_t *spec, const char *key, double def, double min,
                         double max, double *out, rf_err_t *err);

/* Reads the integer parameter key like rf_pass_param_double ("expected an integer in MIN..MAX").
 * (passes.c) */
int rf_pass_param_int(const rf_pass_spec_t *spec, const char *key, int def, int min, int max,
                      int *out, rf_err_t *err);

/* passes.c: stage i of a chain (0..rf_pass_chain_length-1): its vtable, its state and the size
 * it hands on. worker/gpu runs a chain's passes on the device this way, through the very states
 * rf_pass_chain_new made (same parameters, same errors). */
size_t rf_pass_chain_length(const rf_pass_chain_t *c);
void rf_pass_chain_stage(const rf_pass_chain_t *c, size_t i, const rf_pass_vtable_t **vt,
                         void **state, int *out_width, int *out_height);

/* ---- what the CUDA versions (worker/gpu/gpu_passes.c) reuse of the CPU passes ------------------
 * A CUDA pass is created by its CPU vtable's create (same parameters, same errors, same state) and
 * takes from that state everything that is not per-sample work, so the two cannot drift apart. */

/* deflicker.c: checks that index follows the previous frame (RF_EINVAL otherwise) ... */
int rf_deflicker_begin(void *state, int64_t index, rf_err_t *err);
/* ... then records the frame's mean luma and returns its gain (1.0: leave the frame alone). */
double rf_deflicker_gain(void *state, double mean);

/* colormatch.c: checks the order and picks the frame's scene; 1 with *step (the statistics'
 * subsampling) when the frame is to be corrected, 0 when strength is 0 (leave it alone). ... */
int rf_colormatch_begin(void *state, int64_t index, int *step, rf_err_t *err);
/* ... then records the frame's statistics and returns its correction (rf_color_stats of it). */
struct rf_color_stats;
void rf_colormatch_correction(void *state, const struct rf_color_stats *now, double mean[3],
                              double gain[3], double ref_mean[3], double *strength);

/* grade.c: which of exposure, contrast, saturation, gamma apply, and their values; false when
 * none does (the frame is left alone). */
bool rf_grade_params(const void *state, bool steps[4], double *gain, double *contrast,
                     double *saturation, double *inv_gamma);

/* sharpen.c: the frame size it was made for, amount, threshold and the normalised weights
 * w[0..half]; false when amount is 0 (the frame is left alone). */
bool rf_sharpen_params(const void *state, int *width, int *height, double *amount,
                       double *threshold, int *half, const double **weight);

/* scale.c: one axis's filter (output o reads index[o*taps + k] with weight[o*taps + k]). */
typedef struct rf_scale_axis {
    int in, out, taps;
    const int *index;
    const double *weight;
} rf_scale_axis_t;
/* The input size and both axes; false when the size does not change (frames left alone). */
bool rf_scale_params(const void *state, int *in_w, int *in_h, rf_scale_axis_t *x,
                     rf_scale_axis_t *y);

#endif
