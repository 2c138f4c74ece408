/* catalog.c - the passes this build knows, with their parameters, for validating job specs.
 *
 * The spec loader checks every pipeline entry against this table (names, roles, parameter types,
 * ranges, defaults), and `reelfarm passes` prints it. The worker's pass registry must agree with
 * it; a pass added to worker/passes/ gets its row here in the same change.
 *
 * To add a pass: write its rf_param_def_t array, then one S_PASS(...) line in s_catalog.
 */
#include "config.h"

#include <string.h>

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_PASS(name_, roles_, temporal_, params_, doc_)                                            \
    {                                                                                              \
        .name = (name_), .roles = (roles_), .temporal = (temporal_), .params = (params_),          \
        .nparams = S_COUNT(params_), .doc = (doc_)                                                 \
    }

/* deflicker: evens out frame-to-frame brightness by pulling each frame's mean luma towards a
 * moving average. Temporal, so the frames before a chunk (context) feed the average and chunk
 * boundaries do not show. */
static const rf_param_def_t s_deflicker_params[] = {
    {.key = "strength",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 1,
     .def = "0.6",
     .doc = "how much of the brightness flicker to remove"},
    {.key = "window",
     .type = RF_PARAM_INT,
     .min = 1,
     .max = 120,
     .def = "8",
     .doc = "frames in the moving average of brightness (context frames before the chunk feed "
            "it)"},
};

static const rf_pass_def_t s_catalog[] = {
    S_PASS("deflicker", "refine", true, s_deflicker_params,
           "removes brightness flicker with a moving average of frame brightness"),
};

const rf_pass_def_t *rf_pass_catalog(size_t *count)
{
    if (count)
        *count = S_COUNT(s_catalog);
    return s_catalog;
}

const rf_pass_def_t *rf_pass_find(const char *name)
{
    size_t i;

    if (!name)
        return NULL;
    for (i = 0; i < S_COUNT(s_catalog); i++)
        if (!strcmp(s_catalog[i].name, name))
            return &s_catalog[i];
    return NULL;
}
