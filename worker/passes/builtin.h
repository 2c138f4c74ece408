/* builtin.h - the vtables of the passes compiled into the worker (private to worker/passes/).
 *
 * passes.c lists them in its registry; each pass file defines its own. Callers outside this folder
 * look passes up by name with rf_pass_builtin() (passes.h) and never see these symbols.
 */
#ifndef RF_PASSES_BUILTIN_H
#define RF_PASSES_BUILTIN_H

#include "passes.h"

extern const rf_pass_vtable_t rf_pass_deflicker; /* deflicker.c */

#endif
