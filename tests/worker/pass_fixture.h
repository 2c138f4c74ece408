/* pass_fixture.h - scaffolding shared by the pass tests: create a built-in pass from parameters,
 * free it, and allocate W x H pipeline frames. The including test defines W and H (frame size)
 * and includes cmocka and passes.h first. A test may use only some helpers (hence "unused"). */
#ifndef RF_TEST_PASS_FIXTURE_H
#define RF_TEST_PASS_FIXTURE_H

#include <stdlib.h>
#include <string.h>

#define N ((size_t)W * H)

typedef struct t_pass {
    const rf_pass_vtable_t *vt;
    void *state;
} t_pass_t;

/* Creates built-in pass `name` (role refine, seed 1, 25 fps) for width x height frames. */
__attribute__((unused)) static int t_pass_create(const char *name, rf_param_t *params, size_t nparams, int width, int height,
                         t_pass_t *p, rf_err_t *err)
{
    rf_pass_spec_t spec = {
        .name = (char *)name, .role = (char *)"refine", .params = params, .nparams = nparams};
    rf_pass_setup_t setup = {
        .spec = &spec, .seed = 1, .width = width, .height = height, .frame_rate = {25, 1}};
    p->vt = rf_pass_builtin(name);
    assert_non_null(p->vt);
    p->state = NULL;
    return p->vt->create(&setup, &p->state, err);
}

__attribute__((unused)) static void t_pass_free(t_pass_t *p)
{
    if (p->state)
        p->vt->destroy(p->state);
    p->state = NULL;
}

__attribute__((unused)) static void t_frame_init(rf_pframe_t *f, int64_t index)
{
    memset(f, 0, sizeof *f);
    f->index = index;
    f->width = W;
    f->height = H;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = calloc(N, sizeof(float));
        assert_non_null(f->plane[p]);
    }
}

__attribute__((unused)) static void t_frame_free(rf_pframe_t *f)
{
    for (int p = 0; p < 3; p++)
        free(f->plane[p]);
    memset(f, 0, sizeof *f);
}

#endif
