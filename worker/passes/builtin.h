/* builtin.h - the vtables of the passes compiled into the worker (private to worker/passes/).
 *
 * passes.c lists them in its registry; each pass file defines its own. Callers outside this folder
 * look passes up by name with rf_pass_builtin() (passes.h) and never see these symbols.
 */
#ifndef RF_PASSES_BUILTIN_H
#define RF_PASSES_BUILTIN_H

#include "passes.h"

extern const rf_pass_vtable_t rf_pass_deflicker; /* deflicker.c */
extern const rf_pass_vtable_t rf_pass_grade;     /* grade.c */
extern const rf_pass_vtable_t rf_pass_sharpen;   /* sharpen.c */

/* Reads the number parameter key of spec into *out: absent gives def; text that is not a finite
 * number in min..max is RF_ECONFIG with "parameter 'KEY': expected a number in MIN..MAX, got
 * 'TEXT'". The spec loader has validated it already, but a pass never trusts a spec it did not
 * parse itself. (passes.c) */
int rf_pass_param_double(const rf_pass_spec_t *spec, const char *key, double def, double min,
                         double max, double *out, rf_err_t *err);

#endif
