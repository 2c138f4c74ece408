/* builtin.h - the vtables of the passes compiled into the worker (private to worker/passes/).
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

#endif
