/* catalog.c - the passes this build knows, with their parameters, for validating job specs.
 *
 * The spec loader checks every pipeline entry against this table (names, roles, parameter types,
 * ranges, defaults), and `reelfarm passes` prints it. The worker's pass registry must agree with
 * it; a pass added to worker/passes/ gets its row here in the same change.
 *
 * To add a pass: write its rf_param_def_t array, then one S_PASS(...) line in s_catalog.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_PASS(name_, roles_, temporal_, params_, doc_)                                            \
    {                                                                                              \
        .name = (name_), .roles = (roles_), .temporal = (temporal_), .params = (params_),          \
        .nparams = S_COUNT(params_), .doc = (doc_)                                                 \
    }
#define S_PASS_CHECKED(name_, roles_, temporal_, params_, doc_, check_)                            \
    {                                                                                              \
        .name = (name_), .roles = (roles_), .temporal = (temporal_), .params = (params_),          \
        .nparams = S_COUNT(params_), .doc = (doc_), .check = (check_)                              \
    }

static const char *s_param(const struct rf_pass_spec *pass, const char *key)
{
    for (size_t i = 0; i < pass->nparams; i++)
        if (!strcmp(pass->params[i].key, key))
            return pass->params[i].value;
    return NULL;
}

/* color-match: reference is "source" or Oklab statistics as six numbers (media.h's text form;
 * the worker parses it again with rf_color_stats_parse, config does not link media). */
static int s_colormatch_check(const struct rf_pass_spec *pass, char *why, size_t size)
{
    const char *text = s_param(pass, "reference");
    const char *p = text;
    if (!text || !strcmp(text, "source"))
        return 0;
    for (int k = 0; k < 6; k++) {
        char *end = NULL;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || (k >= 3 && v < 0))
            goto bad;
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (k < 5 && *p++ != ',')
            goto bad;
    }
    if (*p == '\0')
        return 0;
bad:
    snprintf(why, size,
             "parameter 'reference': expected 'source' or six numbers 'L,a,b,Lstd,astd,bstd' "
             "(Oklab means then standard deviations >= 0), got '%s'",
             text);
    return -1;
}

/* scale: one of width and height may be 0 (keep the aspect ratio), not both. */
static int s_scale_check(const struct rf_pass_spec *pass, char *why, size_t size)
{
    const char *w = s_param(pass, "width"), *h = s_param(pass, "height");
    if (w && h && !strcmp(w, "0") && !strcmp(h, "0")) {
        snprintf(why, size, "parameters 'width' and 'height' are both 0: give at least one (the "
                            "other 0 keeps the aspect ratio)");
        return -1;
    }
    return 0;
}

/* color-match: moves each frame's Oklab statistics (means and spreads of L, a, b) to the scene's
 * reference, Reinhard-style. Temporal: the frame statistics are smoothed over the frames before,
 * so context feeds them. */
static const rf_param_def_t s_colormatch_params[] = {
    {.key = "reference",
     .type = RF_PARAM_STRING,
     .def = "source",
     .doc = "'source' (the scene's statistics, computed from the source at plan time) or six "
            "numbers 'L,a,b,Lstd,astd,bstd' in Oklab"},
    {.key = "strength",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 1,
     .def = "1",
     .doc = "fraction of the correction applied: x + strength * (matched - x) in Oklab"},
    {.key = "smoothing",
     .type = RF_PARAM_FLOAT,
     .min = 0,
     .max = 30,
     .def = "4",
     .doc = "time constant in frames of the smoothing of frame statistics (weights exp(-age / "
            "smoothing) over ceil(3 * smoothing) + 1 frames); 0 = none"},
    {.key = "scene_ref",
     .type = RF_PARAM_STRING,
     .def = NULL,
     .internal = true,
     .doc = "internal, set by the coordinator: the scene's statistics for reference 'source'"},
};

/* scale: Lanczos (a = 3) or bicubic resize, separable. Changes the frame size for every pass
 * after it and for the encoder. Not temporal. */
static const rf_param_def_t s_scale_params[] = {
    {.key = "width",
     .type = RF_PARAM_INT,
     .min = 0,
     .max = 16384,
     .def = "0",
     .doc = "output width in pixels; 0 = from height keeping the aspect ratio (rounded to even)"},
    {.key = "height",
     .type = RF_PARAM_INT,
     .min = 0,
     .max = 16384,
     .def = "0",
     .doc = "output height in pixels; 0 = from width keeping the aspect ratio (rounded to even)"},
    {.key = "filter",
     .type = RF_PARAM_ENUM,
     .choices = "lanczos|bicubic",
     .def = "lanczos",
     .doc = "resampling kernel: lanczos (a = 3) or bicubic (Keys, a = -0.5)"},
};

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

/* onnx: "NAME=SOURCE, ..." bindings (worker/passes/onnx.c parses them again); returns the largest
 * K of the frame-K sources, or -1 with a message in why. */
static int s_onnx_bindings(const char *text, char *why, size_t size)
{
    int back = 0, n = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[160];
        if (len >= sizeof item) {
            snprintf(why, size, "parameter 'inputs': binding '%.40s...' too long", p);
            return -1;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *eq = strchr(item, '=');
        char *src = eq ? eq + 1 : NULL;
        while (src && (*src == ' ' || *src == '\t'))
            src++;
        char *name = item;
        while (*name == ' ' || *name == '\t')
            name++;
        if (!eq || eq == name || !*src) {
            snprintf(why, size,
                     "parameter 'inputs': '%s' is not NAME=SOURCE (SOURCE: frame, frame-K, asset "
                     "or noise)",
                     item);
            return -1;
        }
        char *t = src + strlen(src);
        while (t > src && (t[-1] == ' ' || t[-1] == '\t'))
            *--t = '\0';
        if (!strncmp(src, "frame-", 6)) {
            char *e = NULL;
            long k = strtol(src + 6, &e, 10);
            if (e == src + 6 || *e || k < 1 || k > 8) {
                snprintf(why, size, "parameter 'inputs': '%s': frame-K needs K in 1..8", src);
                return -1;
            }
            if (k > back)
                back = (int)k;
        } else if (strcmp(src, "frame") && strcmp(src, "asset") && strcmp(src, "noise")) {
            snprintf(why, size,
                     "parameter 'inputs': unknown source '%s' (expected frame, frame-K, asset or "
                     "noise)",
                     src);
            return -1;
        }
        if (++n > 8) {
            snprintf(why, size, "parameter 'inputs': more than 8 bindings");
            return -1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return back;
}

/* onnx: bindings well-formed, an asset when one is bound, ranges not empty, overlap < tile. */
static int s_onnx_check(const struct rf_pass_spec *pass, char *why, size_t size)
{
    const char *inputs = s_param(pass, "inputs");
    if (s_onnx_bindings(inputs, why, size) < 0)
        return -1;
    const char *asset = s_param(pass, "asset");
    if (inputs && strstr(inputs, "asset") && (!asset || !*asset)) {
        snprintf(why, size, "parameter 'asset': an input is bound to 'asset', give the image file");
        return -1;
    }
    const char *pairs[2][2] = {{"input_min", "input_max"}, {"output_min", "output_max"}};
    for (int i = 0; i < 2; i++) {
        const char *lo = s_param(pass, pairs[i][0]), *hi = s_param(pass, pairs[i][1]);
        if (lo && hi && strtod(lo, NULL) == strtod(hi, NULL)) {
            snprintf(why, size, "parameters '%s' and '%s' are equal: the range is empty",
                     pairs[i][0], pairs[i][1]);
            return -1;
        }
    }
    const char *tile = s_param(pass, "tile"), *overlap = s_param(pass, "overlap");
    if (tile && overlap && atoi(tile) > 0 && atoi(overlap) >= atoi(tile)) {
        snprintf(why, size, "parameter 'overlap': %s must be smaller than 'tile' (%s)", overlap,
                 tile);
        return -1;
    }
    return 0;
}

/* onnx: runs an ONNX model on every frame with the worker's own executor (worker/nn). Temporal
 * only through frame-K bindings (rf_pass_context). */
static const rf_param_def_t s_onnx_params[] = {
    {.key = "model",
     .type = RF_PARAM_PATH,
     .def = NULL,
     .doc = "the .onnx file (opset 13..17, the executor's op set; docs/models.md)"},
    {.key = "device",
     .type = RF_PARAM_ENUM,
     .choices = "auto|cpu|gpu",
     .def = "auto",
     .doc = "auto: the GPU backend when the worker has one, else the CPU reference"},
    {.key = "precision",
     .type = RF_PARAM_ENUM,
     .choices = "fp16|fp32",
     .def = "fp16",
     .doc = "GPU arithmetic (fp32 accumulation either way); the CPU always runs fp32"},
    {.key = "input_min",
     .type = RF_PARAM_FLOAT,
     .min = -1e6,
     .max = 1e6,
     .def = "0",
     .doc = "model input for a pipeline value of 0 (e.g. -1 for a [-1, 1] model)"},
    {.key = "input_max",
     .type = RF_PARAM_FLOAT,
     .min = -1e6,
     .max = 1e6,
     .def = "1",
     .doc = "model input for a pipeline value of 1"},
    {.key = "output_min",
     .type = RF_PARAM_FLOAT,
     .min = -1e6,
     .max = 1e6,
     .def = "0",
     .doc = "model output that means 0 (black); results are clamped to [0, 1]"},
    {.key = "output_max",
     .type = RF_PARAM_FLOAT,
     .min = -1e6,
     .max = 1e6,
     .def = "1",
     .doc = "model output that means 1 (white)"},
    {.key = "tile",
     .type = RF_PARAM_INT,
     .min = 0,
     .max = 16384,
     .def = "0",
     .doc = "largest tile side in input pixels (0 = whole frames); tiles are blended"},
    {.key = "overlap",
     .type = RF_PARAM_INT,
     .min = 0,
     .max = 1024,
     .def = "16",
     .doc = "input pixels shared by neighbouring tiles; exact when the model sees <= overlap/4"},
    {.key = "inputs",
     .type = RF_PARAM_STRING,
     .def = "",
     .doc = "'NAME=SOURCE, ...' with SOURCE frame, frame-K (K 1..8), asset or noise; '' binds a "
            "single-input model to the frame"},
    {.key = "asset",
     .type = RF_PARAM_PATH,
     .def = "",
     .doc = "image file for an input bound to 'asset' (identity portrait, mask), resized to the "
            "frame"},
};

/* watermark: the invisible mark (media.h), added last to every job by the coordinator. Its
 * parameters are internal: the coordinator sets them per job. */
static const rf_param_def_t s_watermark_params[] = {
    {.key = "key",
     .type = RF_PARAM_STRING,
     .def = NULL,
     .internal = true,
     .doc = "internal: the farm's pattern key (64 hex digits; derived from the farm key, which "
            "never leaves the coordinator)"},
    {.key = "payload",
     .type = RF_PARAM_STRING,
     .def = NULL,
     .internal = true,
     .doc = "internal: the 64-bit payload, key id and job tag (16 hex digits)"},
};

/* label: the visible label, added by the coordinator before watermark when the job depicts real
 * people or asks for it (provenance.label). */
static const rf_param_def_t s_label_params[] = {
    {.key = "text",
     .type = RF_PARAM_STRING,
     .def = NULL,
     .internal = true,
     .doc = "internal: the label's text (A-Z, 0-9, space and -), set by the coordinator"},
};

static const rf_pass_def_t s_catalog[] = {
    S_PASS_CHECKED("color-match", "refine", true, s_colormatch_params,
                   "matches each frame's Oklab colour statistics to the scene's reference",
                   s_colormatch_check),
    S_PASS("deflicker", "refine", true, s_deflicker_params,
           "removes brightness flicker with a moving average of frame brightness"),
    S_PASS("grade", "refine", false, s_grade_params,
           "colour grade: exposure, contrast, saturation and gamma, in that order"),
    S_PASS_CHECKED("onnx", "generate|refine", true, s_onnx_params,
                   "runs an ONNX model on every frame (own executor; tiles, value ranges, "
                   "temporal and asset inputs); may change the frame size",
                   s_onnx_check),
    S_PASS_CHECKED("scale", "refine", false, s_scale_params,
                   "resizes frames (Lanczos or bicubic); later passes and the encoder get the new "
                   "size",
                   s_scale_check),
    S_PASS("sharpen", "refine", false, s_sharpen_params,
           "unsharp mask: adds back the difference from a Gaussian blur"),
    {.name = "label", .roles = "refine", .params = s_label_params, .nparams = S_COUNT(s_label_params),
     .doc = "burns a small visible AI-GENERATED label into the bottom-right corner (added by the "
            "coordinator when a job depicts real people or asks for it)",
     .automatic = true},
    {.name = "watermark", .roles = "refine", .params = s_watermark_params,
     .nparams = S_COUNT(s_watermark_params),
     .doc = "embeds the invisible watermark in luma (added by the coordinator, last, to every job)",
     .automatic = true},
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

int rf_pass_context(const rf_pass_spec_t *pass)
{
    const char *v;
    if (!strcmp(pass->name, "deflicker")) {
        v = rf_pass_spec_param(pass, "window");
        int window = v ? atoi(v) : 8;
        return window > 1 ? window - 1 : 0;
    }
    if (!strcmp(pass->name, "color-match")) {
        v = rf_pass_spec_param(pass, "strength");
        if (v && strtod(v, NULL) == 0.0)
            return 0; /* identity: no history used */
        v = rf_pass_spec_param(pass, "smoothing");
        double tau = v ? strtod(v, NULL) : 4.0;
        return tau > 0 ? (int)ceil(3.0 * tau) : 0; /* window - 1, window = ceil(3 tau) + 1 */
    }
    if (!strcmp(pass->name, "onnx")) {
        char why[256];
        int back = s_onnx_bindings(rf_pass_spec_param(pass, "inputs"), why, sizeof why);
        return back > 0 ? back : 0; /* the frames of history its frame-K inputs read */
    }
    return 0;
}
