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

/* grade: exposure (in linear light, exact sRGB curve), contrast, saturation and gamma, applied in
 * that order, clamped to [0, 1] at the end. Defaults are the identity. Not temporal. */
static const rf_param_def_t s_grade_params[] = {
    {.key = "exposure",
     .type = RF_PARAM_FLOAT,
     .min = -4,
     .max = 4,
     .def = "0",
     .doc = "stops: linear light (sRGB curve) times 2^exposure"},
    {.key = "contrast",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 4,
     .def = "1",
     .doc = "slope around mid-grey 0.5 of the encoded values: (v - 0.5) * contrast + 0.5"},
    {.key = "saturation",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 4,
     .def = "1",
     .doc = "0 is grey (Rec.709 luma), 1 unchanged: Y + (v - Y) * saturation"},
    {.key = "gamma",
     .type = RF_PARAM_FLOAT,
     .min = 0.1,
     .max = 10,
     .def = "1",
     .doc = "v^(1/gamma): above 1 brightens the mid-tones, below 1 darkens them"},
};

/* sharpen: an unsharp mask with a separable Gaussian blur (edges replicated). Stateless, so not
 * temporal. */
static const rf_param_def_t s_sharpen_params[] = {
    {.key = "amount",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 5,
     .def = "0.5",
     .doc = "how much of the detail (v - blur) is added back; 0 leaves frames untouched"},
    {.key = "radius",
     .type = RF_PARAM_FLOAT,
     .min = 0.1,
     .max = 10,
     .def = "1",
     .doc = "Gaussian sigma of the blur in pixels (kernel half-width ceil(3 * radius))"},
    {.key = "threshold",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 1,
     .def = "0",
     .doc = "detail |v - blur| at or below this is left alone (keeps grain and noise down)"},
};

static const rf_pass_def_t s_catalog[] = {
    S_PASS("deflicker", "refine", true, s_deflicker_params,
           "removes brightness flicker with a moving average of frame brightness"),
    S_PASS("grade", "refine", false, s_grade_params,
           "colour grade: exposure, contrast, saturation and gamma, in that order"),
    S_PASS("sharpen", "refine", false, s_sharpen_params,
           "unsharp mask: adds back the difference from a Gaussian blur"),
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
