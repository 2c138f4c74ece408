/* passes.c - the registry of built-in passes and the per-chunk pass chain (DESIGN §6).
 *
 * The registry is a constant table of vtables: adding a built-in pass means one line here and one
 * vtable in its own file (declared in builtin.h). A chain creates every pass of the job's pipeline
 * through that registry, in spec order, and runs each frame through them in that order.
 *
 * Every error a pass reports leaves the chain prefixed with the pass's name and, for frames, the
 * global frame index, so a failed chunk tells the user which pass broke on which frame:
 *   "pass 'deflicker' at frame 812: frames out of order: got frame 812 after 700"
 *
 * A vtable must provide create, run and destroy; plan (no context wanted) and flush (nothing to
 * finish) may be NULL, and so may output_size (ABI 2; the size does not change).
 *
 * Frame size: each pass is created for the size the passes before it hand on, and the chain
 * checks after every run() that the frame has the size the pass announced, so a pass that
 * resizes wrongly is caught at its first frame, not as a corrupt encode later.
 */
#include "passes.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

/* One line per pass, so adding one is a one-line diff. */
/* clang-format off */
static const rf_pass_vtable_t *const s_builtin[] = {
    &rf_pass_colormatch,
    &rf_pass_deflicker,
    &rf_pass_grade,
    &rf_pass_onnx,
    &rf_pass_label,
    &rf_pass_scale,
    &rf_pass_sharpen,
    &rf_pass_watermark,
};
/* clang-format on */

const rf_pass_vtable_t *rf_pass_builtin_only(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof s_builtin / sizeof s_builtin[0]; i++) {
        if (strcmp(s_builtin[i]->name, name) == 0)
            return s_builtin[i];
    }
    return NULL;
}

const rf_pass_vtable_t *rf_pass_lookup(const char *name)
{
    const rf_pass_vtable_t *vt = rf_pass_builtin_only(name);
    return vt ? vt : rf_pass_plugin_find(name);
}

const rf_pass_vtable_t *rf_pass_builtin(const char *name)
{
    return rf_pass_lookup(name);
}

int rf_pass_param_double(const rf_pass_spec_t *spec, const char *key, double def, double min,
                         double max, double *out, rf_err_t *err)
{
    const char *text = rf_pass_spec_param(spec, key);
    if (!text) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < min || v > max)
        return rf_err_set(err, RF_ECONFIG, "parameter '%s': expected a number in %g..%g, got '%s'",
                          key, min, max, text);
    *out = v;
    return 0;
}

int rf_pass_param_int(const rf_pass_spec_t *spec, const char *key, int def, int min, int max,
                      int *out, rf_err_t *err)
{
    const char *text = rf_pass_spec_param(spec, key);
    if (!text) {
        *out = def;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max)
        return rf_err_set(err, RF_ECONFIG,
                          "parameter '%s': expected an integer in %d..%d, got '%s'", key, min, max,
                          text);
    *out = (int)v;
    return 0;
}

/* One created pass of a chain. */
typedef struct s_stage {
    const rf_pass_vtable_t *vt;
    void *state;               /* what vt->create made; vt->destroy frees it */
    int out_width, out_height; /* the size its run() hands on */
} s_stage_t;

struct rf_pass_chain {
    s_stage_t *stages;
    size_t nstages;    /* stages created so far (all of them once rf_pass_chain_new succeeded) */
    int width, height; /* of the frames given to the chain */
    int out_width, out_height; /* of the frames it hands on */
    int context; /* the largest plan() of the chain, cached: plan() is for the planner, not hot */
};

/* A pass that failed without a message still gets one, so the user never sees a bare prefix. */
static void s_fill_message(rf_err_t *local, int rc)
{
    if (local->code == 0 || local->msg[0] == '\0')
        rf_err_set(local, rc, "%s", rf_strerror(rc));
}

/* Copies the pass's error into the caller's err, with "pass 'NAME'<where>: " in front. */
static int s_report(rf_err_t *err, rf_err_t *local, int rc, const char *name, const char *where)
{
    s_fill_message(local, rc);
    return rf_err_set(err, rc, "pass '%s'%s: %s", name, where, local->msg);
}

int rf_pass_vtable_check(const rf_pass_vtable_t *vt, const char *name, rf_err_t *err)
{
    if (vt->abi < RF_PASS_ABI_MIN || vt->abi > RF_PASS_ABI)
        return rf_err_set(err, RF_EUNAVAIL,
                          "pass '%s' was built for pass ABI %d, this worker loads ABI %d..%d", name,
                          vt->abi, RF_PASS_ABI_MIN, RF_PASS_ABI);
    if (!vt->create || !vt->run || !vt->destroy)
        return rf_err_set(err, RF_EUNAVAIL, "pass '%s' lacks create, run or destroy", name);
    return 0;
}

/* The size stage st hands on for input width x height: output_size exists from ABI 2 only. */
static int s_stage_size(s_stage_t *st, int width, int height, rf_err_t *err)
{
    st->out_width = width;
    st->out_height = height;
    if (st->vt->abi < 2 || !st->vt->output_size)
        return 0;
    rf_err_t local = {0};
    int rc = st->vt->output_size(st->state, &st->out_width, &st->out_height);
    if (rc < 0)
        return s_report(err, &local, rc, st->vt->name, "");
    if (st->out_width <= 0 || st->out_height <= 0 || st->out_width > RF_PASS_MAX_DIM ||
        st->out_height > RF_PASS_MAX_DIM)
        return rf_err_set(err, RF_EINVAL,
                          "pass '%s': output size %dx%d out of range (1..%d per side)",
                          st->vt->name, st->out_width, st->out_height, RF_PASS_MAX_DIM);
    return 0;
}

int rf_pass_chain_new(const rf_pass_spec_t *passes, size_t npasses, uint64_t seed, int width,
                      int height, AVRational frame_rate, rf_pass_chain_t **out, rf_err_t *err)
{
    int rc = 0;
    rf_pass_chain_t *c = NULL;

    assert(out);
    *out = NULL;
    if (npasses > RF_SPEC_MAX_PASSES) {
        rc = rf_err_set(err, RF_ETOOBIG, "%zu passes in the pipeline, at most %d allowed", npasses,
                        RF_SPEC_MAX_PASSES);
        goto cleanup;
    }
    if (npasses > 0 && !passes) {
        rc = rf_err_set(err, RF_EINVAL, "pipeline of %zu passes given without the passes", npasses);
        goto cleanup;
    }
    if (width <= 0 || height <= 0) {
        rc = rf_err_set(err, RF_EINVAL, "invalid frame size %dx%d for the pass chain", width,
                        height);
        goto cleanup;
    }
    c = calloc(1, sizeof *c);
    if (!c || (npasses > 0 && !(c->stages = calloc(npasses, sizeof *c->stages)))) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory creating a chain of %zu passes", npasses);
        goto cleanup;
    }
    c->width = width;
    c->height = height;
    c->out_width = width;
    c->out_height = height;

    for (size_t i = 0; i < npasses; i++) {
        const rf_pass_spec_t *spec = &passes[i];
        const char *name = spec->name ? spec->name : "";
        const rf_pass_vtable_t *vt = rf_pass_lookup(name);
        rf_err_t local = {0};
        rf_pass_setup_t setup = {
            .spec = spec,
            .seed = seed,
            .width = c->out_width, /* what the passes before this one hand on */
            .height = c->out_height,
            .frame_rate = frame_rate,
        };
        void *state = NULL;

        if (!vt) {
            rc = rf_err_set(err, RF_EUNAVAIL,
                            "unknown pass '%s' (not built into this worker, nor a loaded plugin)",
                            name);
            goto cleanup;
        }
        rc = rf_pass_vtable_check(vt, name, err);
        if (rc < 0)
            goto cleanup;
        rc = vt->create(&setup, &state, &local);
        if (rc < 0) {
            s_report(err, &local, rc, name, "");
            goto cleanup;
        }
        s_stage_t *st = &c->stages[c->nstages];
        st->vt = vt;
        st->state = state;
        c->nstages++;
        rc = s_stage_size(st, c->out_width, c->out_height, err);
        if (rc < 0)
            goto cleanup;
        c->out_width = st->out_width;
        c->out_height = st->out_height;

        int want = vt->plan ? vt->plan(state) : 0;
        if (want > c->context)
            c->context = want;
    }
    *out = c;
    c = NULL;
    rc = 0;

cleanup:
    rf_pass_chain_destroy(&c);
    return rc;
}

int rf_pass_chain_run(rf_pass_chain_t *c, rf_pframe_t *frame, rf_err_t *err)
{
    assert(c && frame);
    if (frame->width != c->width || frame->height != c->height) {
        return rf_err_set(err, RF_EINVAL, "frame %lld is %dx%d, the pass chain was made for %dx%d",
                          (long long)frame->index, frame->width, frame->height, c->width,
                          c->height);
    }
    if (!frame->plane[0] || !frame->plane[1] || !frame->plane[2])
        return rf_err_set(err, RF_EINVAL, "frame %lld has no pixels", (long long)frame->index);

    for (size_t i = 0; i < c->nstages; i++) {
        const s_stage_t *st = &c->stages[i];
        rf_err_t local = {0};
        int rc = st->vt->run(st->state, frame, &local);
        if (rc < 0) {
            char where[64];
            snprintf(where, sizeof where, " at frame %lld", (long long)frame->index);
            return s_report(err, &local, rc, st->vt->name, where);
        }
        if (frame->width != st->out_width || frame->height != st->out_height || !frame->plane[0] ||
            !frame->plane[1] || !frame->plane[2]) {
            return rf_err_set(
                err, RF_EINVAL,
                "pass '%s' at frame %lld: handed on a %dx%d frame%s, it announced "
                "%dx%d",
                st->vt->name, (long long)frame->index, frame->width, frame->height,
                frame->plane[0] && frame->plane[1] && frame->plane[2] ? "" : " without pixels",
                st->out_width, st->out_height);
        }
    }
    return 0;
}

int rf_pass_chain_flush(rf_pass_chain_t *c, rf_err_t *err)
{
    assert(c);
    /* Every pass is flushed even after one fails, so none is left half-finished; the first
     * failure is the one reported. */
    int first = 0;
    for (size_t i = 0; i < c->nstages; i++) {
        const s_stage_t *st = &c->stages[i];
        rf_err_t local = {0};
        if (!st->vt->flush)
            continue;
        int rc = st->vt->flush(st->state, &local);
        if (rc < 0 && first == 0)
            first = s_report(err, &local, rc, st->vt->name, " at the end of the chunk");
    }
    return first;
}

int rf_pass_chain_context(const rf_pass_chain_t *c)
{
    assert(c);
    return c->context;
}

void rf_pass_chain_output_size(const rf_pass_chain_t *c, int *width, int *height)
{
    assert(c && width && height);
    *width = c->out_width;
    *height = c->out_height;
}

size_t rf_pass_chain_length(const rf_pass_chain_t *c)
{
    assert(c);
    return c->nstages;
}

void rf_pass_chain_stage(const rf_pass_chain_t *c, size_t i, const rf_pass_vtable_t **vt,
                         void **state, int *out_width, int *out_height)
{
    assert(c && i < c->nstages);
    *vt = c->stages[i].vt;
    *state = c->stages[i].state;
    *out_width = c->stages[i].out_width;
    *out_height = c->stages[i].out_height;
}

void rf_pass_chain_destroy(rf_pass_chain_t **cp)
{
    if (!cp || !*cp)
        return;
    rf_pass_chain_t *c = *cp;
    /* Reverse order, like unwinding: a later pass may in future borrow from an earlier one. */
    for (size_t i = c->nstages; i > 0; i--)
        c->stages[i - 1].vt->destroy(c->stages[i - 1].state);
    free(c->stages);
    free(c);
    *cp = NULL;
}
