/* jobspec.c - loads and validates a job spec (DESIGN §4) into an rf_job_spec_t.
 *
 * The spec is the one thing a user writes by hand, so every key is checked for its type, range
 * and spelling, defaults are filled in, and relative paths are made absolute here: nothing
 * downstream (coordinator, worker) ever sees a half-valid spec or has to know where it came from.
 * Messages follow yamlread.h: "<source>:<line>: key '<path>': <what is wrong>".
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "yamlread.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_NAME_MAX 128     /* job and subject names */
#define S_TEXT_MAX 4096    /* free-text values: release references, string params, options */
#define S_WORD_MAX 32      /* codec presets and pixel formats */
#define S_BITRATE_MAX 1e10 /* 10 Gbit/s: beyond any encoder we drive */

#define S_CODECS "libx264|libx265|libsvtav1|ffv1|prores_ks|h264_nvenc|hevc_nvenc"

typedef struct s_loader {
    rf_yctx_t c;
    const char *base_dir; /* absolute, normalized */
    rf_job_spec_t *spec;
} s_loader_t;

/* ---- paths ---------------------------------------------------------------------------------- */

/* Same file: same text after normalization, or (when both exist) the same inode, which catches
 * symlinks and hard links. */
static bool s_same_file(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!strcmp(a, b))
        return true;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ---- small helpers -------------------------------------------------------------------------- */

static char *s_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p)
        memcpy(p, s, n);
    return p;
}

/* Shortest text that reads back as the same double: "0.6", not "0.59999999999999998". */
static void s_format_double(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.15g", v);
    if (strtod(buf, NULL) != v)
        snprintf(buf, size, "%.17g", v);
}

static bool s_is_word(const char *s, const char *extra)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && !strchr(extra, *s))
            return false;
    return true;
}

/* ---- pipeline ------------------------------------------------------------------------------- */

/* Canonical text for a parameter given in the spec (node) or taken from the catalogue (node
 * NULL: def->def is trusted, a bad default is our bug). */
static int s_param_value(s_loader_t *l, const rf_param_def_t *def, struct fy_node *node, int line,
                         const char *path, char **out)
{
    char buf[64];
    int64_t iv = 0;
    double fv = 0;
    bool bv = false;
    char *text = NULL;
    int rc = 0;

    switch (def->type) {
    case RF_PARAM_FLOAT:
        if (node) {
            rc = rf_yaml_float(&l->c, node, line, path, def->min, false, def->max, &fv);
        } else {
            bool ok = rf_yaml_parse_float(def->def, &fv);
            assert(ok);
            (void)ok;
        }
        if (rc == 0) {
            s_format_double(buf, sizeof(buf), fv);
            text = s_strdup(buf);
        }
        break;
    case RF_PARAM_INT:
        if (node) {
            rc = rf_yaml_int(&l->c, node, line, path, (int64_t)def->min, (int64_t)def->max, &iv);
        } else {
            bool ok = rf_yaml_parse_int(def->def, &iv);
            assert(ok);
            (void)ok;
        }
        if (rc == 0) {
            snprintf(buf, sizeof(buf), "%lld", (long long)iv);
            text = s_strdup(buf);
        }
        break;
    case RF_PARAM_BOOL:
        if (node)
            rc = rf_yaml_bool(&l->c, node, line, path, &bv);
        else
            bv = !strcmp(def->def, "true");
        if (rc == 0)
            text = s_strdup(bv ? "true" : "false");
        break;
    case RF_PARAM_ENUM:
        if (node)
            return rf_yaml_enum(&l->c, node, line, path, def->choices, out);
        text = s_strdup(def->def);
        break;
    case RF_PARAM_STRING:
        if (node)
            return rf_yaml_string(&l->c, node, line, path, true, S_TEXT_MAX, out);
        text = s_strdup(def->def);
        break;
    case RF_PARAM_PATH: {
        char *raw = NULL;
        if (node) {
            rc = rf_yaml_string(&l->c, node, line, path, false, PATH_MAX, &raw);
            if (rc)
                return rc;
        }
        /* An empty default means "no file" (onnx's asset) and stays empty. */
        if (!raw && def->def && !*def->def)
            text = s_strdup("");
        else
            text = rf_yaml_path_resolve(l->base_dir, raw ? raw : def->def);
        free(raw);
        break;
    }
    }
    if (rc)
        return rc;
    if (!text)
        return rf_yaml_nomem(&l->c);
    *out = text;
    return 0;
}

/* "a, b, c" from "a|b|c", for messages. */
static void s_choices_list(char *buf, size_t size, const char *choices)
{
    size_t i, j = 0;

    for (i = 0; choices[i] && j + 3 < size; i++) {
        if (choices[i] == '|') {
            buf[j++] = ',';
            buf[j++] = ' ';
        } else {
            buf[j++] = choices[i];
        }
    }
    buf[j] = '\0';
}

/* A plugin pass ({pass: NAME, plugin: true, role?, any: params}): the coordinator cannot know
 * its parameters, so every other key is kept as the text written and the worker's plugin
 * validates it in create() (a bad one fails the chunk for good, naming the pass). */
static int s_plugin_pass(s_loader_t *l, struct fy_node *node, int line, const char *path,
                         rf_pass_spec_t *pass)
{
    char kpath[RF_YAML_PATH_MAX];
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t n = (size_t)fy_node_mapping_item_count(node);
    int rc;

    if (rf_pass_find(pass->name))
        return rf_yaml_error(&l->c, line, rf_yaml_path(kpath, sizeof(kpath), path, "plugin"),
                             "pass '%s' is built in, not a plugin: drop 'plugin: true'",
                             pass->name);
    if (!s_is_word(pass->name, "_-") || strlen(pass->name) > 63)
        return rf_yaml_error(&l->c, line, rf_yaml_path(kpath, sizeof(kpath), path, "pass"),
                             "plugin pass names are 1..63 lowercase letters, digits, '_' and '-', "
                             "got '%s'",
                             pass->name);
    pass->params = calloc(n ? n : 1, sizeof(*pass->params));
    if (!pass->params)
        return rf_yaml_nomem(&l->c);
    while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
        struct fy_node *knode = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        int kline = rf_yaml_node_line(knode, line);
        char *key = NULL;

        rc = rf_yaml_string(&l->c, knode, kline, path, false, 64, &key);
        if (rc)
            return rc;
        rf_yaml_path(kpath, sizeof(kpath), path, key);
        if (!strcmp(key, "pass") || !strcmp(key, "plugin")) {
            free(key);
            continue;
        }
        if (!strcmp(key, "role")) {
            free(key);
            rc = rf_yaml_enum(&l->c, v, kline, kpath, "refine|generate", &pass->role);
            if (rc)
                return rc;
            continue;
        }
        rf_param_t *param = &pass->params[pass->nparams++];
        param->key = key;
        if (!s_is_word(key, "_-"))
            return rf_yaml_error(&l->c, kline, kpath,
                                 "parameter names are lowercase letters, digits, '_' and '-'");
        if (v && fy_node_get_type(v) != FYNT_SCALAR)
            return rf_yaml_error(&l->c, kline, kpath, "expected a single value, got a %s",
                                 fy_node_get_type(v) == FYNT_MAPPING ? "mapping" : "sequence");
        rc = rf_yaml_string(&l->c, v, kline, kpath, true, S_TEXT_MAX, &param->value);
        if (rc)
            return rc;
    }
    if (!pass->role && !(pass->role = s_strdup("refine")))
        return rf_yaml_nomem(&l->c);
    return 0;
}

static int s_pass(s_loader_t *l, struct fy_node *node, int line, const char *path,
                  rf_pass_spec_t *pass)
{
    char kpath[RF_YAML_PATH_MAX], known[512], allowed[256], why[512];
    rf_yfield_t fields[3 + RF_SPEC_MAX_PARAMS];
    const rf_pass_def_t *def;
    const rf_pass_def_t *catalog;
    size_t ncatalog = 0, i, used = 0;
    char *name = NULL;
    bool plugin = false;
    int rc;

    line = rf_yaml_node_line(node, line);
    /* The pass decides which keys are valid, so read "pass" and "plugin" before the rest. */
    rc = rf_yaml_free_mapping(&l->c, node, path, line, RF_SPEC_MAX_PARAMS + 3);
    if (rc)
        return rc;
    {
        struct fy_node *pnode = fy_node_mapping_lookup_by_string(node, "pass", 4);
        if (!pnode)
            return rf_yaml_missing(&l->c, path, "pass", line);
        rc = rf_yaml_string(&l->c, pnode, line, rf_yaml_path(kpath, sizeof(kpath), path, "pass"),
                            false, S_NAME_MAX, &name);
        if (rc)
            return rc;
        struct fy_node *gnode = fy_node_mapping_lookup_by_string(node, "plugin", 6);
        if (gnode) {
            rc = rf_yaml_bool(&l->c, gnode, line,
                              rf_yaml_path(kpath, sizeof(kpath), path, "plugin"), &plugin);
            if (rc) {
                free(name);
                return rc;
            }
        }
    }
    if (plugin) {
        pass->name = name;
        return s_plugin_pass(l, node, line, path, pass);
    }
    def = rf_pass_find(name);
    if (!def) {
        catalog = rf_pass_catalog(&ncatalog);
        known[0] = '\0';
        for (i = 0; i < ncatalog && used < sizeof(known); i++)
            if (!catalog[i].automatic) /* a spec may not name those */
                used += (size_t)snprintf(known + used, sizeof(known) - used, "%s%s",
                                         used ? ", " : "", catalog[i].name);
        struct fy_node *pnode = fy_node_mapping_lookup_by_string(node, "pass", 4);
        rc = rf_yaml_error(&l->c, rf_yaml_node_line(pnode, line), kpath,
                           "unknown pass '%s' (known: %s; a pass from a worker plugin needs "
                           "'plugin: true')",
                           name, known);
        free(name);
        return rc;
    }
    if (def->automatic) {
        struct fy_node *pnode = fy_node_mapping_lookup_by_string(node, "pass", 4);
        rc = rf_yaml_error(&l->c, rf_yaml_node_line(pnode, line), kpath,
                           "pass '%s' is added by the coordinator to every job that needs it "
                           "(provenance); remove it from the pipeline",
                           name);
        free(name);
        return rc;
    }
    pass->name = name;
    assert(def->nparams <= RF_SPEC_MAX_PARAMS);

    fields[0].key = "pass";
    fields[1].key = "role";
    fields[2].key = "plugin";
    for (i = 0; i < def->nparams; i++)
        fields[3 + i].key = def->params[i].key;
    rc = rf_yaml_mapping(&l->c, node, path, line, fields, 3 + def->nparams);
    if (rc)
        return rc;

    if (fields[1].node) {
        rf_yaml_path(kpath, sizeof(kpath), path, "role");
        rc = rf_yaml_string(&l->c, fields[1].node, fields[1].line, kpath, false, S_NAME_MAX,
                            &pass->role);
        if (rc)
            return rc;
        if (!rf_yaml_choice_has(def->roles, pass->role)) {
            s_choices_list(allowed, sizeof(allowed), def->roles);
            return rf_yaml_error(&l->c, rf_yaml_node_line(fields[1].node, fields[1].line), kpath,
                                 "pass '%s' cannot take role '%s' (allowed: %s)", def->name,
                                 pass->role, allowed);
        }
    } else {
        size_t n = strcspn(def->roles, "|");
        pass->role = malloc(n + 1);
        if (!pass->role)
            return rf_yaml_nomem(&l->c);
        memcpy(pass->role, def->roles, n);
        pass->role[n] = '\0';
    }

    pass->params = calloc(def->nparams ? def->nparams : 1, sizeof(*pass->params));
    if (!pass->params)
        return rf_yaml_nomem(&l->c);
    for (i = 0; i < def->nparams; i++) {
        const rf_param_def_t *pdef = &def->params[i];
        rf_yfield_t *f = &fields[3 + i];

        rf_yaml_path(kpath, sizeof(kpath), path, pdef->key);
        if (pdef->internal) {
            /* The coordinator adds it when it assigns a chunk; a user's value would be trusted
             * by the worker as if the coordinator had computed it. */
            if (f->node)
                return rf_yaml_error(&l->c, f->line, kpath,
                                     "set by the coordinator for pass '%s', not in a job spec",
                                     def->name);
            continue;
        }
        if (!f->node && !pdef->def)
            return rf_yaml_missing(&l->c, path, pdef->key, line);
        rf_param_t *param = &pass->params[pass->nparams];
        param->key = s_strdup(pdef->key);
        pass->nparams++;
        if (!param->key)
            return rf_yaml_nomem(&l->c);
        rc = s_param_value(l, pdef, f->node, f->line, kpath, &param->value);
        if (rc)
            return rc;
    }
    if (def->check && def->check(pass, why, sizeof(why)) != 0)
        return rf_yaml_error(&l->c, line, path, "pass '%s': %s", def->name, why);
    return 0;
}

static int s_pipeline(s_loader_t *l, struct fy_node *node, int line)
{
    char path[RF_YAML_PATH_MAX];
    rf_job_spec_t *spec = l->spec;
    size_t n, i;
    void *iter = NULL;
    int rc;

    rc = rf_yaml_sequence(&l->c, node, "pipeline", line, RF_SPEC_MAX_PASSES);
    if (rc)
        return rc;
    n = (size_t)fy_node_sequence_item_count(node);
    spec->pipeline = calloc(n ? n : 1, sizeof(*spec->pipeline));
    if (!spec->pipeline)
        return rf_yaml_nomem(&l->c);
    for (i = 0; i < n; i++) {
        struct fy_node *item = fy_node_sequence_iterate(node, &iter);

        rf_yaml_path_index(path, sizeof(path), "pipeline", i);
        spec->npasses = i + 1; /* counted before filling, so destroy frees a partial entry */
        rc = s_pass(l, item, line, path, &spec->pipeline[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- chunking, encode, provenance ----------------------------------------------------------- */

static int s_chunking(s_loader_t *l, struct fy_node *node, int line)
{
    rf_yfield_t f[] = {{.key = "split"},        {.key = "target_seconds"},
                       {.key = "max_seconds"},  {.key = "context_frames"},
                       {.key = "seam_overlap"}, {.key = "scene_threshold"}};
    rf_job_spec_t *spec = l->spec;
    char *split = NULL;
    int64_t iv = 0;
    int rc;

    rc = rf_yaml_mapping(&l->c, node, "chunking", line, f, S_COUNT(f));
    if (rc)
        return rc;
    if (f[0].node) {
        rc = rf_yaml_enum(&l->c, f[0].node, f[0].line, "chunking.split", "scene|keyframe", &split);
        if (rc)
            return rc;
        spec->chunking.split = !strcmp(split, "scene") ? RF_SPLIT_SCENE : RF_SPLIT_KEYFRAME;
        free(split);
    }
    if (f[1].node) {
        rc = rf_yaml_float(&l->c, f[1].node, f[1].line, "chunking.target_seconds", 0, true, 3600,
                           &spec->chunking.target_seconds);
        if (rc)
            return rc;
    }
    if (f[2].node) {
        rc = rf_yaml_float(&l->c, f[2].node, f[2].line, "chunking.max_seconds", 0, true, 3600,
                           &spec->chunking.max_seconds);
        if (rc)
            return rc;
    }
    if (spec->chunking.max_seconds < spec->chunking.target_seconds) {
        char t[32], m[32];
        s_format_double(t, sizeof(t), spec->chunking.target_seconds);
        s_format_double(m, sizeof(m), spec->chunking.max_seconds);
        return rf_yaml_error(&l->c, f[2].node ? rf_yaml_node_line(f[2].node, f[2].line) : f[1].line,
                             "chunking.max_seconds",
                             "must be at least target_seconds (%s), got %s%s", t, m,
                             f[2].node ? "" : " (the default; set max_seconds)");
    }
    if (f[3].node) {
        rc = rf_yaml_int(&l->c, f[3].node, f[3].line, "chunking.context_frames", 0, 256, &iv);
        if (rc)
            return rc;
        spec->chunking.context_frames = (int)iv;
    }
    if (f[4].node) {
        rc = rf_yaml_int(&l->c, f[4].node, f[4].line, "chunking.seam_overlap", 0, 64, &iv);
        if (rc)
            return rc;
        spec->chunking.seam_overlap = (int)iv;
    }
    if (f[5].node) {
        rc = rf_yaml_float(&l->c, f[5].node, f[5].line, "chunking.scene_threshold", 0, false, 1,
                           &spec->chunking.scene_threshold);
        if (rc)
            return rc;
    }
    return 0;
}

/* requirements: what a worker must have to get this job's chunks (on top of its encoder and
 * passes, which are always matched). */
static int s_requirements(s_loader_t *l, struct fy_node *node, int line)
{
    rf_yfield_t f[] = {{.key = "gpu"}, {.key = "vram_mib"}};
    int64_t iv = 0;
    int rc = rf_yaml_mapping(&l->c, node, "requirements", line, f, S_COUNT(f));
    if (rc)
        return rc;
    if (f[0].node) {
        rc = rf_yaml_bool(&l->c, f[0].node, f[0].line, "requirements.gpu", &l->spec->requirements.gpu);
        if (rc)
            return rc;
    }
    if (f[1].node) {
        rc = rf_yaml_int(&l->c, f[1].node, f[1].line, "requirements.vram_mib", 0, 16 * 1024 * 1024, &iv);
        if (rc)
            return rc;
        l->spec->requirements.vram_mib = iv;
        if (iv > 0)
            l->spec->requirements.gpu = true; /* VRAM only exists on a GPU */
    }
    return 0;
}

static int s_path_field(s_loader_t *l, rf_yfield_t *f, const char *key, char **out);

/* critic: {model: PATH, threshold: T, max_rerenders: N, input_min, input_max, device}. */
static int s_critic(s_loader_t *l, struct fy_node *node, int line)
{
    rf_yfield_t f[] = {{.key = "model"},     {.key = "threshold"}, {.key = "max_rerenders"},
                       {.key = "input_min"}, {.key = "input_max"}, {.key = "device"}};
    int64_t iv = 0;
    int rc = rf_yaml_mapping(&l->c, node, "critic", line, f, S_COUNT(f));
    if (rc)
        return rc;
    if (!f[0].node)
        return rf_yaml_missing(&l->c, "critic", "model", line);
    if (!f[1].node)
        return rf_yaml_missing(&l->c, "critic", "threshold", line);
    if ((rc = s_path_field(l, &f[0], "critic.model", &l->spec->critic.model)) != 0)
        return rc;
    rc = rf_yaml_float(&l->c, f[1].node, f[1].line, "critic.threshold", -1e6, false, 1e6,
                       &l->spec->critic.threshold);
    if (rc)
        return rc;
    if (f[2].node) {
        rc = rf_yaml_int(&l->c, f[2].node, f[2].line, "critic.max_rerenders", 0,
                         RF_SPEC_MAX_RERENDERS, &iv);
        if (rc)
            return rc;
        l->spec->critic.max_rerenders = (int)iv;
    }
    if (f[3].node && (rc = rf_yaml_float(&l->c, f[3].node, f[3].line, "critic.input_min", -1e6, false,
                                         1e6, &l->spec->critic.input_min)) != 0)
        return rc;
    if (f[4].node && (rc = rf_yaml_float(&l->c, f[4].node, f[4].line, "critic.input_max", -1e6, false,
                                         1e6, &l->spec->critic.input_max)) != 0)
        return rc;
    if (l->spec->critic.input_min == l->spec->critic.input_max)
        return rf_yaml_error(&l->c, f[4].node ? rf_yaml_node_line(f[4].node, f[4].line) : line,
                             "critic.input_max", "equals input_min: the input range is empty");
    if (f[5].node) {
        free(l->spec->critic.device);
        l->spec->critic.device = NULL;
        rc = rf_yaml_enum(&l->c, f[5].node, f[5].line, "critic.device", "auto|cpu|gpu",
                          &l->spec->critic.device);
        if (rc)
            return rc;
    }
    return 0;
}

/* "8000000", "8M", "800k", "2.5M" -> bits/s. */
static bool s_parse_bitrate(const char *text, int64_t *out)
{
    char *end = NULL;
    double v, mult = 1;

    if (!isdigit((unsigned char)text[0]))
        return false;
    v = strtod(text, &end);
    if (end == text)
        return false;
    if (*end == 'k' || *end == 'K')
        mult = 1e3;
    else if (*end == 'M')
        mult = 1e6;
    else if (*end == 'G')
        mult = 1e9;
    if (mult != 1)
        end++;
    if (*end != '\0')
        return false;
    v *= mult;
    if (!(v >= 1 && v <= S_BITRATE_MAX) || v != (double)(int64_t)v)
        return false;
    *out = (int64_t)v;
    return true;
}

static int s_encode_options(s_loader_t *l, struct fy_node *node, int line)
{
    char path[RF_YAML_PATH_MAX];
    rf_job_spec_t *spec = l->spec;
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t n;
    int rc;

    rc = rf_yaml_free_mapping(&l->c, node, "encode.options", line, RF_SPEC_MAX_PARAMS);
    if (rc)
        return rc;
    n = (size_t)fy_node_mapping_item_count(node);
    spec->encode.options = calloc(n ? n : 1, sizeof(*spec->encode.options));
    if (!spec->encode.options)
        return rf_yaml_nomem(&l->c);
    while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
        struct fy_node *knode = fy_node_pair_key(pair);
        rf_param_t *opt = &spec->encode.options[spec->encode.noptions++];
        int kline = rf_yaml_node_line(knode, line);
        char *key = NULL;

        rc = rf_yaml_string(&l->c, knode, kline, "encode.options", false, 64, &key);
        if (rc)
            return rc;
        opt->key = key;
        rf_yaml_path(path, sizeof(path), "encode.options", key);
        /* AVOption names: lowercase words with '_' or '-' ("x264-params", "tune"). */
        if (!s_is_word(key, "_-"))
            return rf_yaml_error(&l->c, kline, path,
                                 "option names are lowercase letters, digits, '_' and '-'");
        {
            struct fy_node *v = fy_node_pair_value(pair);
            if (v && fy_node_get_type(v) != FYNT_SCALAR)
                return rf_yaml_error(&l->c, kline, path, "expected a single value, got a %s",
                                     fy_node_get_type(v) == FYNT_MAPPING ? "mapping" : "sequence");
            rc = rf_yaml_string(&l->c, v, kline, path, false, S_TEXT_MAX, &opt->value);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int s_encode(s_loader_t *l, struct fy_node *node, int line)
{
    rf_yfield_t f[] = {{.key = "codec"},   {.key = "crf"}, {.key = "preset"}, {.key = "pix_fmt"},
                       {.key = "bitrate"}, {.key = "gop"}, {.key = "options"}};
    rf_job_spec_t *spec = l->spec;
    const char *codec;
    int64_t iv = 0;
    int rc;

    rc = rf_yaml_mapping(&l->c, node, "encode", line, f, S_COUNT(f));
    if (rc)
        return rc;
    /* Given an encode section, the user chose the encoder; its own defaults apply. */
    free(spec->encode.codec);
    free(spec->encode.preset);
    spec->encode.codec = NULL;
    spec->encode.preset = NULL;
    spec->encode.crf = -1;

    if (!f[0].node)
        return rf_yaml_missing(&l->c, "encode", "codec", line);
    rc = rf_yaml_enum(&l->c, f[0].node, f[0].line, "encode.codec", S_CODECS, &spec->encode.codec);
    if (rc)
        return rc;
    codec = spec->encode.codec;

    if (f[1].node) {
        int64_t max = -1;
        if (!strcmp(codec, "libx264") || !strcmp(codec, "libx265"))
            max = 51;
        else if (!strcmp(codec, "libsvtav1"))
            max = 63;
        if (max < 0)
            return rf_yaml_error(&l->c, rf_yaml_node_line(f[1].node, f[1].line), "encode.crf",
                                 "codec '%s' takes no crf (%s)", codec,
                                 !strcmp(codec, "ffv1") ? "it is lossless"
                                                        : "set bitrate or options instead");
        rc = rf_yaml_int(&l->c, f[1].node, f[1].line, "encode.crf", 0, max, &iv);
        if (rc)
            return rc;
        spec->encode.crf = (int)iv;
    }
    if (f[2].node) {
        rc = rf_yaml_string(&l->c, f[2].node, f[2].line, "encode.preset", false, S_WORD_MAX,
                            &spec->encode.preset);
        if (rc)
            return rc;
        if (!s_is_word(spec->encode.preset, "_-"))
            return rf_yaml_error(&l->c, rf_yaml_node_line(f[2].node, f[2].line), "encode.preset",
                                 "expected a preset name such as 'medium' or 'p4', got '%s'",
                                 spec->encode.preset);
    }
    if (f[3].node) {
        /* Names only: the worker checks them against its libavutil (config links no FFmpeg). */
        rc = rf_yaml_string(&l->c, f[3].node, f[3].line, "encode.pix_fmt", false, S_WORD_MAX,
                            &spec->encode.pix_fmt);
        if (rc)
            return rc;
        if (!s_is_word(spec->encode.pix_fmt, ""))
            return rf_yaml_error(&l->c, rf_yaml_node_line(f[3].node, f[3].line), "encode.pix_fmt",
                                 "expected a pixel format name such as 'yuv420p', got '%s'",
                                 spec->encode.pix_fmt);
    }
    if (f[4].node) {
        char *text = NULL;
        int bline = rf_yaml_node_line(f[4].node, f[4].line);
        rc =
            rf_yaml_string(&l->c, f[4].node, f[4].line, "encode.bitrate", false, S_WORD_MAX, &text);
        if (rc)
            return rc;
        if (!s_parse_bitrate(text, &spec->encode.bitrate))
            rc = rf_yaml_error(&l->c, bline, "encode.bitrate",
                               "expected bits per second such as 8000000, '8M' or '800k' "
                               "(1 to 10G), got '%s'",
                               text);
        free(text);
        if (rc)
            return rc;
    }
    if (f[5].node) {
        rc = rf_yaml_int(&l->c, f[5].node, f[5].line, "encode.gop", 0, 10000, &iv);
        if (rc)
            return rc;
        spec->encode.gop = (int)iv;
    }
    if (f[6].node) {
        rc = s_encode_options(l, f[6].node, f[6].line);
        if (rc)
            return rc;
    }
    return 0;
}

static int s_subject(s_loader_t *l, struct fy_node *node, int line, const char *path,
                     rf_subject_t *subject)
{
    rf_yfield_t f[] = {{.key = "name"}, {.key = "basis"}, {.key = "release"}};
    char kpath[RF_YAML_PATH_MAX];
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = rf_yaml_mapping(&l->c, node, path, line, f, S_COUNT(f));
    if (rc)
        return rc;
    if (!f[0].node)
        return rf_yaml_missing(&l->c, path, "name", line);
    rc = rf_yaml_string(&l->c, f[0].node, f[0].line,
                        rf_yaml_path(kpath, sizeof(kpath), path, "name"), false, S_NAME_MAX,
                        &subject->name);
    if (rc)
        return rc;
    if (!f[1].node)
        return rf_yaml_missing(&l->c, path, "basis", line);
    rc =
        rf_yaml_enum(&l->c, f[1].node, f[1].line, rf_yaml_path(kpath, sizeof(kpath), path, "basis"),
                     "consent|public-domain-historical|licensed|fictional", &subject->basis);
    if (rc)
        return rc;
    subject->basis_kind = !strcmp(subject->basis, "consent")    ? RF_BASIS_CONSENT
                          : !strcmp(subject->basis, "licensed") ? RF_BASIS_LICENSED
                          : !strcmp(subject->basis, "fictional")
                              ? RF_BASIS_FICTIONAL
                              : RF_BASIS_PUBLIC_DOMAIN_HISTORICAL;
    if (f[2].node)
        rc = rf_yaml_string(&l->c, f[2].node, f[2].line,
                            rf_yaml_path(kpath, sizeof(kpath), path, "release"), true, S_TEXT_MAX,
                            &subject->release);
    else
        rc = (subject->release = s_strdup("")) ? 0 : rf_yaml_nomem(&l->c);
    if (rc)
        return rc;
    /* A release for a living person's consent, a licence for licensed footage: without the
     * document's reference nobody can later check the basis the job claims. */
    if ((subject->basis_kind == RF_BASIS_CONSENT || subject->basis_kind == RF_BASIS_LICENSED) &&
        !subject->release[0])
        return rf_yaml_error(&l->c, f[2].node ? f[2].line : line,
                             rf_yaml_path(kpath, sizeof(kpath), path, "release"),
                             "subject '%s' has basis '%s' but no release reference: add release: "
                             "<the signed %s's id or file>",
                             subject->name, subject->basis,
                             subject->basis_kind == RF_BASIS_CONSENT ? "release" : "licence");
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)"reelfarm subject v1", 20);
    crypto_hash_sha256_update(&st, (const unsigned char *)subject->name, strlen(subject->name) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)subject->basis, strlen(subject->basis) + 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)subject->release, strlen(subject->release));
    crypto_hash_sha256_final(&st, subject->digest);
    return 0;
}

static int s_provenance(s_loader_t *l, struct fy_node *node, int line)
{
    rf_yfield_t f[] = {{.key = "subjects"}, {.key = "watermark"}, {.key = "depicts"}, {.key = "label"}};
    char path[RF_YAML_PATH_MAX];
    rf_job_spec_t *spec = l->spec;
    void *iter = NULL;
    char *depicts = NULL;
    bool said_real = false, label = false;
    size_t n, i;
    int rc;

    rc = rf_yaml_mapping(&l->c, node, "provenance", line, f, S_COUNT(f));
    if (rc)
        return rc;
    if (f[0].node) {
        rc = rf_yaml_sequence(&l->c, f[0].node, "provenance.subjects", f[0].line,
                              RF_SPEC_MAX_SUBJECTS);
        if (rc)
            return rc;
        n = (size_t)fy_node_sequence_item_count(f[0].node);
        spec->provenance.subjects = calloc(n ? n : 1, sizeof(*spec->provenance.subjects));
        if (!spec->provenance.subjects)
            return rf_yaml_nomem(&l->c);
        for (i = 0; i < n; i++) {
            struct fy_node *item = fy_node_sequence_iterate(f[0].node, &iter);
            rf_yaml_path_index(path, sizeof(path), "provenance.subjects", i);
            spec->provenance.nsubjects = i + 1;
            rc = s_subject(l, item, f[0].line, path, &spec->provenance.subjects[i]);
            if (rc)
                return rc;
        }
    }
    if (f[1].node) {
        rc = rf_yaml_bool(&l->c, f[1].node, f[1].line, "provenance.watermark",
                          &spec->provenance.watermark);
        if (rc)
            return rc;
        if (!spec->provenance.watermark)
            return rf_yaml_error(&l->c, f[1].line, "provenance.watermark",
                                 "the invisible watermark cannot be turned off (every output of "
                                 "the farm is marked as synthetic): remove the key");
    }
    if (f[2].node) {
        rc = rf_yaml_enum(&l->c, f[2].node, f[2].line, "provenance.depicts",
                          "real-people|no-real-people", &depicts);
        if (rc)
            return rc;
        said_real = !strcmp(depicts, "real-people");
    }
    /* Consent (docs/jobspec.md "Provenance and consent"): a subject with a basis other than
     * fictional is a real person, whatever depicts says; a job that depicts real people names
     * every one of them. */
    for (i = 0; i < spec->provenance.nsubjects; i++) {
        const rf_subject_t *sj = &spec->provenance.subjects[i];
        if (sj->basis_kind == RF_BASIS_FICTIONAL)
            continue;
        if (depicts && !said_real) {
            rc = rf_yaml_error(&l->c, f[2].line, "provenance.depicts",
                               "'no-real-people' but subject '%s' has basis '%s' (a real person): "
                               "set depicts: real-people, or give the subject basis: fictional",
                               sj->name, sj->basis);
            free(depicts);
            return rc;
        }
        spec->provenance.depicts_real_people = true;
    }
    free(depicts);
    if (said_real && !spec->provenance.depicts_real_people)
        return rf_yaml_error(
            &l->c, f[0].node ? f[0].line : f[2].line, "provenance.subjects",
            "the job depicts real people but names %s: add each person under provenance.subjects "
            "as {name: ..., basis: consent|public-domain-historical|licensed, release: ...} "
            "(consent and licensed need the release or licence reference)",
            spec->provenance.nsubjects ? "only fictional subjects" : "no subject");
    spec->provenance.label = spec->provenance.depicts_real_people;
    if (f[3].node) {
        rc = rf_yaml_bool(&l->c, f[3].node, f[3].line, "provenance.label", &label);
        if (rc)
            return rc;
        if (!label && spec->provenance.depicts_real_people)
            return rf_yaml_error(&l->c, f[3].line, "provenance.label",
                                 "the visible AI-generated label cannot be turned off for a job "
                                 "that depicts real people");
        spec->provenance.label = label;
    }
    return 0;
}

/* ---- the whole spec ------------------------------------------------------------------------- */

static int s_defaults(rf_job_spec_t *spec)
{
    spec->version = 1;
    spec->priority = 50;
    spec->chunking.split = RF_SPLIT_SCENE;
    spec->chunking.target_seconds = 6;
    spec->chunking.max_seconds = 20;
    spec->chunking.scene_threshold = 0.1;
    spec->encode.codec = s_strdup("libx264");
    spec->encode.crf = 18;
    spec->encode.preset = s_strdup("medium");
    spec->audio = RF_AUDIO_COPY;
    spec->provenance.watermark = true;
    spec->critic.max_rerenders = 2;
    spec->critic.input_max = 1;
    spec->critic.device = s_strdup("auto");
    return spec->encode.codec && spec->encode.preset && spec->critic.device ? 0 : RF_ENOMEM;
}

/* The input's base name without its extension: "plates/scene12.mov" -> "scene12". */
static char *s_default_name(const char *input)
{
    const char *base = strrchr(input, '/');
    const char *dot;
    size_t n;
    char *name;

    base = base ? base + 1 : input;
    dot = strrchr(base, '.');
    n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n > S_NAME_MAX)
        n = S_NAME_MAX;
    name = malloc(n + 1);
    if (name) {
        memcpy(name, base, n);
        name[n] = '\0';
    }
    return name;
}

static int s_path_field(s_loader_t *l, rf_yfield_t *f, const char *key, char **out)
{
    char *raw = NULL;
    int rc;

    rc = rf_yaml_string(&l->c, f->node, f->line, key, false, PATH_MAX, &raw);
    if (rc)
        return rc;
    *out = rf_yaml_path_resolve(l->base_dir, raw);
    free(raw);
    return *out ? 0 : rf_yaml_nomem(&l->c);
}

static int s_load(s_loader_t *l, const char *yaml, size_t len)
{
    rf_yfield_t f[] = {{.key = "version"},  {.key = "name"},      {.key = "input"},
                       {.key = "output"},   {.key = "seed"},      {.key = "priority"},
                       {.key = "chunking"}, {.key = "pipeline"},  {.key = "encode"},
                       {.key = "audio"},    {.key = "provenance"}, {.key = "requirements"},
                       {.key = "critic"}};
    rf_job_spec_t *spec = l->spec;
    rf_ydoc_t doc;
    int64_t iv = 0;
    int root_line;
    char *audio = NULL;
    int rc;

    rc = rf_yaml_parse(&l->c, yaml, len, &doc);
    if (rc)
        goto cleanup;
    root_line = rf_yaml_node_line(doc.root, 1);
    rc = rf_yaml_mapping(&l->c, doc.root, "", root_line, f, S_COUNT(f));
    if (rc)
        goto cleanup;

    /* version first: a spec from a newer reelfarm should say so, not fail on a new key. */
    if (!f[0].node) {
        rc = rf_yaml_missing(&l->c, "", "version", root_line);
        goto cleanup;
    }
    rc = rf_yaml_int(&l->c, f[0].node, f[0].line, "version", 0, INT_MAX, &iv);
    if (rc)
        goto cleanup;
    if (iv != 1) {
        rc = rf_yaml_error(&l->c, rf_yaml_node_line(f[0].node, f[0].line), "version",
                           "unsupported version %lld (this build reads version 1)", (long long)iv);
        goto cleanup;
    }
    if (!f[2].node) {
        rc = rf_yaml_missing(&l->c, "", "input", root_line);
        goto cleanup;
    }
    rc = s_path_field(l, &f[2], "input", &spec->input);
    if (rc)
        goto cleanup;
    if (!f[3].node) {
        rc = rf_yaml_missing(&l->c, "", "output", root_line);
        goto cleanup;
    }
    rc = s_path_field(l, &f[3], "output", &spec->output);
    if (rc)
        goto cleanup;
    if (s_same_file(spec->input, spec->output)) {
        rc = rf_yaml_error(&l->c, rf_yaml_node_line(f[3].node, f[3].line), "output",
                           "is the same file as input ('%s'); the render would overwrite its "
                           "own source",
                           spec->output);
        goto cleanup;
    }
    if (f[1].node) {
        rc = rf_yaml_string(&l->c, f[1].node, f[1].line, "name", false, S_NAME_MAX, &spec->name);
        if (rc)
            goto cleanup;
    } else {
        spec->name = s_default_name(spec->input);
        if (!spec->name) {
            rc = rf_yaml_nomem(&l->c);
            goto cleanup;
        }
    }
    if (f[4].node) {
        rc = rf_yaml_uint64(&l->c, f[4].node, f[4].line, "seed", &spec->seed);
        if (rc)
            goto cleanup;
    }
    if (f[5].node) {
        rc = rf_yaml_int(&l->c, f[5].node, f[5].line, "priority", 0, 100, &iv);
        if (rc)
            goto cleanup;
        spec->priority = (int)iv;
    }
    if (f[6].node) {
        rc = s_chunking(l, f[6].node, f[6].line);
        if (rc)
            goto cleanup;
    }
    if (f[7].node) {
        rc = s_pipeline(l, f[7].node, f[7].line);
        if (rc)
            goto cleanup;
    }
    if (f[8].node) {
        rc = s_encode(l, f[8].node, f[8].line);
        if (rc)
            goto cleanup;
    }
    if (f[9].node) {
        rc = rf_yaml_enum(&l->c, f[9].node, f[9].line, "audio", "copy|none", &audio);
        if (rc)
            goto cleanup;
        spec->audio = !strcmp(audio, "copy") ? RF_AUDIO_COPY : RF_AUDIO_NONE;
    }
    if (f[10].node) {
        rc = s_provenance(l, f[10].node, f[10].line);
        if (rc)
            goto cleanup;
    }
    if (f[11].node) {
        rc = s_requirements(l, f[11].node, f[11].line);
        if (rc)
            goto cleanup;
    }
    if (f[12].node) {
        rc = s_critic(l, f[12].node, f[12].line);
        if (rc)
            goto cleanup;
    }
cleanup:
    free(audio);
    rf_yaml_release(&doc);
    return rc;
}

int rf_job_spec_load_string(const char *yaml, size_t len, const char *source, const char *base_dir,
                            rf_job_spec_t **out, rf_err_t *err)
{
    s_loader_t l;
    rf_job_spec_t *spec = NULL;
    char *base = NULL;
    int rc = 0;

    assert(yaml && out);
    *out = NULL;
    if (!source)
        source = "<string>";
    if (!base_dir || base_dir[0] != '/') {
        rc = rf_err_set(err, RF_EINVAL, "%s: the folder for relative paths must be absolute",
                        source);
        goto cleanup;
    }
    spec = calloc(1, sizeof(*spec));
    base = rf_yaml_path_resolve(base_dir, ".");
    if (!spec || !base || s_defaults(spec) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "%s: out of memory", source);
        goto cleanup;
    }
    spec->source = s_strdup(source);
    spec->base_dir = base;
    base = NULL;
    if (!spec->source) {
        rc = rf_err_set(err, RF_ENOMEM, "%s: out of memory", source);
        goto cleanup;
    }
    l.c.source = source;
    l.c.err = err;
    l.base_dir = spec->base_dir;
    l.spec = spec;
    rc = s_load(&l, yaml, len);
    if (rc)
        goto cleanup;
    *out = spec;
    spec = NULL;
cleanup:
    free(base);
    rf_job_spec_destroy(&spec);
    return rc;
}

int rf_job_spec_load_file(const char *path, rf_job_spec_t **out, rf_err_t *err)
{
    char *text = NULL, *folder = NULL, *real = NULL;
    const char *slash;
    size_t len = 0, n;
    int rc;

    assert(path && out);
    *out = NULL;
    rc = rf_yaml_read_file(path, &text, &len, err);
    if (rc)
        goto cleanup;
    /* The folder, made absolute with realpath so "../job.yaml" from anywhere resolves alike. */
    slash = strrchr(path, '/');
    n = slash ? (size_t)(slash - path) : 0;
    folder = malloc(n + 2);
    if (!folder) {
        rc = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto cleanup;
    }
    if (!slash) {
        memcpy(folder, ".", 2);
    } else if (n == 0) {
        memcpy(folder, "/", 2);
    } else {
        memcpy(folder, path, n);
        folder[n] = '\0';
    }
    real = realpath(folder, NULL);
    if (!real) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot resolve its folder", path);
        goto cleanup;
    }
    rc = rf_job_spec_load_string(text, len, path, real, out, err);
cleanup:
    free(real);
    free(folder);
    free(text);
    return rc;
}

static void s_free_pass(rf_pass_spec_t *pass)
{
    size_t i;

    for (i = 0; i < pass->nparams; i++) {
        free(pass->params[i].key);
        free(pass->params[i].value);
    }
    free(pass->params);
    free(pass->name);
    free(pass->role);
}

void rf_job_spec_destroy(rf_job_spec_t **specp)
{
    rf_job_spec_t *spec;
    size_t i;

    if (!specp || !*specp)
        return;
    spec = *specp;
    for (i = 0; i < spec->npasses; i++)
        s_free_pass(&spec->pipeline[i]);
    free(spec->pipeline);
    for (i = 0; i < spec->encode.noptions; i++) {
        free(spec->encode.options[i].key);
        free(spec->encode.options[i].value);
    }
    free(spec->encode.options);
    free(spec->encode.codec);
    free(spec->encode.preset);
    free(spec->encode.pix_fmt);
    free(spec->critic.model);
    free(spec->critic.device);
    for (i = 0; i < spec->provenance.nsubjects; i++) {
        free(spec->provenance.subjects[i].name);
        free(spec->provenance.subjects[i].basis);
        free(spec->provenance.subjects[i].release);
    }
    free(spec->provenance.subjects);
    free(spec->source);
    free(spec->base_dir);
    free(spec->name);
    free(spec->input);
    free(spec->output);
    free(spec);
    *specp = NULL;
}

const char *rf_pass_spec_param(const rf_pass_spec_t *pass, const char *key)
{
    size_t i;

    if (!pass || !key)
        return NULL;
    for (i = 0; i < pass->nparams; i++)
        if (!strcmp(pass->params[i].key, key))
            return pass->params[i].value;
    return NULL;
}

void rf_job_spec_requirements(const rf_job_spec_t *spec, bool *gpu, int64_t *vram_mib)
{
    *gpu = spec->requirements.gpu;
    *vram_mib = spec->requirements.vram_mib;
    for (size_t i = 0; i < spec->npasses; i++) {
        const rf_pass_def_t *def = rf_pass_find(spec->pipeline[i].name);
        if (!def)
            continue;
        *gpu = *gpu || def->gpu;
        if (def->vram_mib > *vram_mib)
            *vram_mib = def->vram_mib;
    }
    if (*vram_mib > 0)
        *gpu = true;
}

int rf_job_spec_context(const rf_job_spec_t *spec)
{
    int need = 0;
    for (size_t i = 0; i < spec->npasses; i++)
        need += rf_pass_context(&spec->pipeline[i]);
    return need > spec->chunking.context_frames ? need : spec->chunking.context_frames;
}
