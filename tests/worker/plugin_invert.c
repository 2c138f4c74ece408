/* plugin_invert.c - the example pass plugin (docs/passes.md): "invert" blends every sample towards
 * its negative, v' = v + amount * (1 - 2 v), so amount 1 is 1 - v and 0 leaves frames alone.
 *
 * Built by tests/CMakeLists.txt as a MODULE library (a shared object loaded with dlopen), and the
 * way a third-party pass would be built: it includes passes.h for the types and calls nothing in
 * the worker - the worker exports no symbols, so a plugin fills rf_err_t itself and reads its
 * parameters from spec->params directly.
 *
 * The same file builds the broken plugins the tests must refuse (compile-time switches):
 *   RF_TEST_PLUGIN_ABI=N      the vtable claims pass ABI N
 *   RF_TEST_PLUGIN_NEEDS=N    the entry refuses hosts speaking an ABI below N (returns NULL)
 *   RF_TEST_PLUGIN_NO_ENTRY   the entry symbol has another name
 *   RF_TEST_PLUGIN_NAME="x"   the pass is called x (clashes with a built-in, or a second copy)
 *   RF_TEST_PLUGIN_BAD_SIZE   announces (ABI 2 output_size) a size 2 wider than it hands on
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

#ifndef RF_TEST_PLUGIN_ABI
#define RF_TEST_PLUGIN_ABI RF_PASS_ABI
#endif
#ifndef RF_TEST_PLUGIN_NEEDS
#define RF_TEST_PLUGIN_NEEDS RF_PASS_ABI_MIN
#endif
#ifndef RF_TEST_PLUGIN_NAME
#define RF_TEST_PLUGIN_NAME "invert"
#endif

typedef struct invert {
    float amount;
} invert_t;

/* rf_err_set lives in the worker; a plugin writes the struct (passes.h: rf_err_t is ABI). */
static int set_error(rf_err_t *err, int code, const char *key, const char *value, const char *want)
{
    if (err) {
        err->code = code;
        snprintf(err->msg, sizeof err->msg, "parameter '%s': expected %s, got '%s'", key, want,
                 value);
    }
    return code;
}

static int invert_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    double amount = 1.0;
    for (size_t i = 0; i < setup->spec->nparams; i++) {
        const rf_param_t *p = &setup->spec->params[i];
        if (strcmp(p->key, "amount") == 0) {
            char *end = NULL;
            errno = 0;
            amount = strtod(p->value, &end);
            if (errno || end == p->value || *end || !(amount >= 0 && amount <= 1))
                return set_error(err, RF_ECONFIG, p->key, p->value, "a number in 0..1");
        } else {
            /* The coordinator passes plugin parameters through unchecked: this is the check. */
            return set_error(err, RF_ECONFIG, p->key, p->value,
                             "no such parameter (known: amount)");
        }
    }
    invert_t *inv = malloc(sizeof *inv);
    if (!inv) {
        err->code = RF_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return RF_ENOMEM;
    }
    inv->amount = (float)amount;
    *state = inv;
    return 0;
}

static int invert_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    const invert_t *inv = state;
    (void)err;
    const size_t n = (size_t)frame->width * (size_t)frame->height;
    for (int p = 0; p < 3; p++)
        for (size_t i = 0; i < n; i++)
            frame->plane[p][i] += inv->amount * (1.0f - 2.0f * frame->plane[p][i]);
    return 0;
}

static void invert_destroy(void *state)
{
    free(state);
}

#ifdef RF_TEST_PLUGIN_BAD_SIZE
static int invert_output_size(void *state, int *width, int *height)
{
    (void)state;
    (void)height;
    *width += 2; /* but run() never resizes: the chain must notice */
    return 0;
}
#endif

static const rf_pass_vtable_t invert_vtable = {
    .name = RF_TEST_PLUGIN_NAME,
    .abi = RF_TEST_PLUGIN_ABI,
    .create = invert_create,
    .plan = NULL,
    .run = invert_run,
    .flush = NULL,
    .destroy = invert_destroy,
#if defined(RF_TEST_PLUGIN_BAD_SIZE)
    .output_size = invert_output_size,
#elif RF_TEST_PLUGIN_ABI >= 2
    .output_size = NULL,
#endif
};

#ifdef RF_TEST_PLUGIN_NO_ENTRY
#define ENTRY rf_pass_plugin_entry_misspelt
#else
#define ENTRY rf_pass_plugin_entry
#endif

/* The one symbol a plugin exports. host_abi is the ABI the worker speaks: a plugin that needs
 * something newer says no with NULL, and the worker checks .abi the other way. */
__attribute__((visibility("default"))) const rf_pass_vtable_t *ENTRY(int host_abi)
{
    if (host_abi < RF_TEST_PLUGIN_NEEDS)
        return NULL;
    return &invert_vtable;
}
