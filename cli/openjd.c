/* openjd.c - `reelfarm submit --openjd TEMPLATE.yaml [--param K=V]...`: imports an Open Job
 * Description job template (specification 'jobtemplate-2023-09' with the TASK_CHUNKING extension)
 * for the subset that maps onto one reelfarm job, and refuses everything else with one message
 * naming the key, the file and the line.
 *
 * The mapping (docs/CLI.md, "OpenJD templates"):
 *   name                       -> the job's name (after {{Param.X}} substitution)
 *   parameterDefinitions       -> STRING / INT / FLOAT / PATH with default, --param overrides,
 *                                 allowedValues, minValue/maxValue, minLength/maxLength
 *   steps (exactly one)        -> the job
 *     parameterSpace           -> exactly one CHUNK[INT] task parameter, rangeConstraint
 *                                 CONTIGUOUS: its range must be the input's whole frame range
 *                                 (1-N or 0-N-1: reelfarm renders whole inputs) and
 *                                 defaultTaskCount frames per chunk becomes chunking.target_seconds
 *     script                   -> onRun `reelfarm render {{Task.File.NAME}}` and an embedded TEXT
 *                                 file NAME holding a reelfarm job spec (JOB.yaml)
 *     hostRequirements         -> amount.worker.gpu min >= 1 -> requirements.gpu: true,
 *                                 amount.worker.gpu.memory min (MiB) -> requirements.vram_mib
 *                                 (the scheduler places the job on workers that reported a GPU
 *                                 with that much free memory), attr.worker.os.family including
 *                                 linux
 * The template itself is never run: reelfarm renders the embedded job with its own workers.
 */
#include <errno.h>
#include <libfyaml.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "config.h"
#include "media.h"

#define S_TEMPLATE_MAX_BYTES (1024 * 1024) /* a larger template is refused */
#define S_MAX_PARAMS 64
#define S_VALUE_MAX 4096

typedef struct s_param {
    char name[128];
    char type[8]; /* STRING, INT, FLOAT, PATH */
    char *value;  /* the default or the --param value */
    int line;
} s_param_t;

typedef struct s_ctx {
    const char *path;
    rf_err_t *err;
    s_param_t params[S_MAX_PARAMS];
    size_t nparams;
} s_ctx_t;

static void s_diag_silent(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag, (void)user, (void)buf, (void)len;
}

/* The 1-based line of a scalar; 0 for anything else (libfyaml 0.7 records no start mark for
 * collections: callers pass the line of the collection's key instead). */
static int s_line(struct fy_node *node)
{
    struct fy_token *tok =
        node && fy_node_get_type(node) == FYNT_SCALAR ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *m = tok ? fy_token_start_mark(tok) : NULL;
    return m ? m->line + 1 : 0;
}

static int s_fail(s_ctx_t *x, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int s_fail(s_ctx_t *x, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rf_err_set(x->err, RF_ECONFIG, "%s:%d: %s", x->path, line > 0 ? line : 1, msg);
}

static const char *s_scalar(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_SCALAR ? fy_node_get_scalar0(n) : NULL;
}

/* Why a known OpenJD key is outside the subset, or NULL for an unknown key. */
static const char *s_known_unsupported(const char *key)
{
    static const struct {
        const char *key, *why;
    } table[] = {
        {"jobEnvironments", "job environments are not supported"},
        {"stepEnvironments", "step environments are not supported"},
        {"dependencies", "step dependencies are not supported (one step only)"},
        {"combination", "task parameter combinations are not supported (one CHUNK[INT] only)"},
        {"userInterface", "parameter user interfaces are not supported"},
        {"objectType", "PATH objectType is not supported"},
        {"dataFlow", "PATH dataFlow is not supported"},
        {"targetRuntimeSeconds", "reelfarm sizes chunks by defaultTaskCount, not by runtime"},
        {"onEnter", "only onRun is supported"},
        {"onExit", "only onRun is supported"},
        {"timeout", "action timeouts are not supported (the coordinator's task timeout applies)"},
        {"cancelation", "cancelation modes are not supported (reelfarm cancels its own way)"},
        {"notifyPeriodInSeconds", "cancelation modes are not supported"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (!strcmp(table[i].key, key))
            return table[i].why;
    return NULL;
}

/* Checks that map (a mapping at line) has only keys from allowed (NULL-terminated). where names
 * the place for messages ("step 'render'"). */
static int s_keys(s_ctx_t *x, struct fy_node *map, int line, const char *where,
                  const char *const *allowed)
{
    if (!map || fy_node_get_type(map) != FYNT_MAPPING)
        return s_fail(x, line, "%s: expected a mapping", where);
    void *iter = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(map, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(p);
        const char *key = s_scalar(k);
        if (!key)
            return s_fail(x, line, "%s: expected plain keys", where);
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = !strcmp(allowed[i], key);
        if (!ok) {
            const char *why = s_known_unsupported(key);
            return s_fail(x, s_line(k), "%s: key '%s' is outside the subset reelfarm imports%s%s",
                          where, key, why ? ": " : "", why ? why : " (unknown key)");
        }
    }
    return 0;
}

static struct fy_node *s_get(struct fy_node *map, const char *key, int *line)
{
    struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(map, key, FY_NT);
    if (!p)
        return NULL;
    if (line)
        *line = s_line(fy_node_pair_key(p));
    return fy_node_pair_value(p);
}

static s_param_t *s_param_find(s_ctx_t *x, const char *name, size_t len)
{
    for (size_t i = 0; i < x->nparams; i++)
        if (strlen(x->params[i].name) == len && !strncmp(x->params[i].name, name, len))
            return &x->params[i];
    return NULL;
}

static int s_append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = (*len + n + 1) * 2;
        char *grown = realloc(*buf, ncap);
        if (!grown)
            return RF_ENOMEM;
        *buf = grown;
        *cap = ncap;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

/* Replaces {{Param.X}} and {{RawParam.X}} (spaces allowed inside the braces) in text; any other
 * expression is refused. *out is malloc'd. */
static int s_subst(s_ctx_t *x, const char *text, int line, const char *where, char **out)
{
    size_t len = 0, cap = 0;
    char *buf = NULL;
    int rc = s_append(&buf, &len, &cap, "", 0);
    for (const char *p = text; !rc && *p;) {
        const char *open = strstr(p, "{{");
        if (!open) {
            rc = s_append(&buf, &len, &cap, p, strlen(p));
            break;
        }
        rc = s_append(&buf, &len, &cap, p, (size_t)(open - p));
        for (const char *q = p; q < open; q++)
            line += *q == '\n'; /* messages name the line of the expression */
        const char *close = strstr(open, "}}");
        if (!rc && !close) {
            free(buf);
            return s_fail(x, line, "%s: '{{' without '}}'", where);
        }
        if (rc)
            break;
        const char *e = open + 2, *end = close;
        while (*e == ' ')
            e++;
        while (end > e && end[-1] == ' ')
            end--;
        const char *name = !strncmp(e, "Param.", 6)      ? e + 6
                           : !strncmp(e, "RawParam.", 9) ? e + 9
                                                         : NULL;
        s_param_t *prm = name && end > name ? s_param_find(x, name, (size_t)(end - name)) : NULL;
        int n = (int)(close + 2 - open);
        if (!prm && name) {
            free(buf);
            return s_fail(x, line, "%s: '%.*s' names no parameter in parameterDefinitions", where,
                          n, open);
        }
        if (!prm) {
            free(buf);
            return s_fail(x, line,
                          "%s: expression '%.*s' is outside the subset reelfarm imports (only "
                          "{{Param.NAME}} is substituted)",
                          where, n, open);
        }
        rc = s_append(&buf, &len, &cap, prm->value, strlen(prm->value));
        for (const char *q = open; q < close; q++)
            line += *q == '\n';
        p = close + 2;
    }
    if (rc) {
        free(buf);
        return rf_err_set(x->err, RF_ENOMEM, "out of memory");
    }
    *out = buf;
    return 0;
}

/* A scalar (after substitution) as an integer. */
static int s_int(s_ctx_t *x, struct fy_node *n, int line, const char *where, long long *out)
{
    const char *text = s_scalar(n);
    if (!text)
        return s_fail(x, line, "%s: expected an integer", where);
    char *sub = NULL;
    int rc = s_subst(x, text, s_line(n) ? s_line(n) : line, where, &sub);
    if (rc)
        return rc;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(sub, &end, 10);
    bool bad = !*sub || *end || errno;
    if (bad)
        rc = s_fail(x, s_line(n) ? s_line(n) : line, "%s: expected an integer, got '%s'", where,
                    sub);
    free(sub);
    *out = v;
    return rc;
}

/* ---- parameters -------------------------------------------------------------------------------
 */

static int s_check_value(s_ctx_t *x, s_param_t *p, struct fy_node *def, int line)
{
    char *end = NULL;
    if (!strcmp(p->type, "INT")) {
        errno = 0;
        long long v = strtoll(p->value, &end, 10);
        if (!*p->value || *end || errno)
            return s_fail(x, line, "parameter '%s' (INT): '%s' is not an integer", p->name,
                          p->value);
        (void)v;
    } else if (!strcmp(p->type, "FLOAT")) {
        double v = strtod(p->value, &end);
        if (!*p->value || *end || !isfinite(v))
            return s_fail(x, line, "parameter '%s' (FLOAT): '%s' is not a number", p->name,
                          p->value);
    }
    double num = strtod(p->value, NULL);
    struct fy_node *n;
    int kline = line;
    bool numeric = !strcmp(p->type, "INT") || !strcmp(p->type, "FLOAT");
    if (numeric && (n = s_get(def, "minValue", &kline)) && s_scalar(n) &&
        num < strtod(s_scalar(n), NULL))
        return s_fail(x, line, "parameter '%s': %s is below minValue %s", p->name, p->value,
                      s_scalar(n));
    if (numeric && (n = s_get(def, "maxValue", &kline)) && s_scalar(n) &&
        num > strtod(s_scalar(n), NULL))
        return s_fail(x, line, "parameter '%s': %s is above maxValue %s", p->name, p->value,
                      s_scalar(n));
    size_t len = strlen(p->value);
    if (!numeric && (n = s_get(def, "minLength", &kline)) && s_scalar(n) &&
        (long long)len < atoll(s_scalar(n)))
        return s_fail(x, line, "parameter '%s': shorter than minLength %s", p->name, s_scalar(n));
    if (!numeric && (n = s_get(def, "maxLength", &kline)) && s_scalar(n) &&
        (long long)len > atoll(s_scalar(n)))
        return s_fail(x, line, "parameter '%s': longer than maxLength %s", p->name, s_scalar(n));
    if ((n = s_get(def, "allowedValues", &kline)) != NULL) {
        if (fy_node_get_type(n) != FYNT_SEQUENCE)
            return s_fail(x, kline, "parameter '%s': allowedValues: expected a list", p->name);
        void *it = NULL;
        struct fy_node *v;
        bool found = false;
        while ((v = fy_node_sequence_iterate(n, &it)) != NULL && !found) {
            const char *s = s_scalar(v);
            found = s && (numeric ? strtod(s, NULL) == num : !strcmp(s, p->value));
        }
        if (!found)
            return s_fail(x, line, "parameter '%s': '%s' is not one of its allowedValues", p->name,
                          p->value);
    }
    return 0;
}

static int s_params(s_ctx_t *x, struct fy_node *defs, int line, const char *const *overrides,
                    size_t noverrides)
{
    static const char *const keys[] = {"name",          "type",     "default",  "description",
                                       "allowedValues", "minValue", "maxValue", "minLength",
                                       "maxLength",     NULL};
    if (defs && fy_node_get_type(defs) != FYNT_SEQUENCE)
        return s_fail(x, line, "parameterDefinitions: expected a list");
    void *it = NULL;
    struct fy_node *d;
    while (defs && (d = fy_node_sequence_iterate(defs, &it)) != NULL) {
        int nline = line;
        struct fy_node *name =
            fy_node_get_type(d) == FYNT_MAPPING ? s_get(d, "name", &nline) : NULL;
        const char *pname = s_scalar(name);
        if (!pname)
            return s_fail(x, line, "parameterDefinitions: every entry needs a 'name'");
        nline = s_line(name);
        char where[200];
        snprintf(where, sizeof(where), "parameter '%.100s'", pname);
        int rc = s_keys(x, d, nline, where, keys);
        if (rc)
            return rc;
        if (x->nparams == S_MAX_PARAMS)
            return s_fail(x, nline, "more than %d parameters", S_MAX_PARAMS);
        if (s_param_find(x, pname, strlen(pname)))
            return s_fail(x, nline, "parameter '%s' is defined twice", pname);
        int tline = nline;
        const char *type = s_scalar(s_get(d, "type", &tline));
        if (!type)
            return s_fail(x, nline, "%s: 'type' is required", where);
        if (strcmp(type, "STRING") && strcmp(type, "INT") && strcmp(type, "FLOAT") &&
            strcmp(type, "PATH"))
            return s_fail(
                x, tline,
                "%s: type '%s' is outside the subset reelfarm imports (STRING, INT, FLOAT, PATH)",
                where, type);
        if (strlen(pname) >= sizeof(x->params[0].name))
            return s_fail(x, nline, "%s: name too long", where);
        s_param_t *p = &x->params[x->nparams++];
        snprintf(p->name, sizeof(p->name), "%s", pname);
        snprintf(p->type, sizeof(p->type), "%s", type);
        p->line = nline;
        int dline = nline;
        struct fy_node *def = s_get(d, "default", &dline);
        const char *value = s_scalar(def);
        if (def && !value)
            return s_fail(x, dline, "%s: default: expected a scalar", where);
        /* The last --param NAME=VALUE wins. */
        for (size_t i = 0; i < noverrides; i++) {
            const char *eq = strchr(overrides[i], '=');
            if (eq && (size_t)(eq - overrides[i]) == strlen(pname) &&
                !strncmp(overrides[i], pname, strlen(pname)))
                value = eq + 1;
        }
        if (!value)
            return s_fail(x, nline, "%s has no default: give --param %s=VALUE", where, pname);
        if (strlen(value) >= S_VALUE_MAX)
            return s_fail(x, nline, "%s: value longer than %d bytes", where, S_VALUE_MAX - 1);
        /* Values are substituted into YAML text: a line break or control character would let a
         * value add keys to the embedded job spec. */
        for (const char *c = value; *c; c++)
            if ((unsigned char)*c < 0x20)
                return s_fail(x, nline, "%s: control characters (such as a line break) in its value",
                              where);
        p->value = strdup(value);
        if (!p->value)
            return rf_err_set(x->err, RF_ENOMEM, "out of memory");
        rc = s_check_value(x, p, d, nline);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < noverrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        if (!eq || eq == overrides[i])
            return rf_err_set(x->err, RF_EINVAL, "--param '%s': expected NAME=VALUE", overrides[i]);
        if (!s_param_find(x, overrides[i], (size_t)(eq - overrides[i])))
            return rf_err_set(x->err, RF_EINVAL, "--param '%.*s': %s defines no such parameter",
                              (int)(eq - overrides[i]), overrides[i], x->path);
    }
    return 0;
}

/* ---- the step ---------------------------------------------------------------------------------
 */

typedef struct s_step {
    long long first, last; /* the CHUNK[INT] range, inclusive */
    int range_line;
    long long per_chunk; /* defaultTaskCount */
    bool need_gpu;       /* amount.worker.gpu min >= 1 */
    long long vram_mib;  /* amount.worker.gpu.memory min, MiB */
    char *job_yaml;      /* the embedded job spec, substituted */
    int data_line;       /* the template line of the embedded spec's first line */
    char file_name[128]; /* the embedded file's name */
} s_step_t;

static int s_task_params(s_ctx_t *x, struct fy_node *space, int line, s_step_t *st)
{
    static const char *const space_keys[] = {"taskParameterDefinitions", NULL};
    static const char *const tp_keys[] = {"name", "type", "range", "chunks", NULL};
    static const char *const chunk_keys[] = {"defaultTaskCount", "rangeConstraint", NULL};
    int rc = s_keys(x, space, line, "parameterSpace", space_keys);
    if (rc)
        return rc;
    int dline = line;
    struct fy_node *defs = s_get(space, "taskParameterDefinitions", &dline);
    if (!defs || fy_node_get_type(defs) != FYNT_SEQUENCE || fy_node_sequence_item_count(defs) != 1)
        return s_fail(
            x, dline,
            "taskParameterDefinitions: reelfarm imports exactly one task parameter (CHUNK[INT])");
    struct fy_node *tp = fy_node_sequence_get_by_index(defs, 0);
    int tline = dline;
    const char *type =
        fy_node_get_type(tp) == FYNT_MAPPING ? s_scalar(s_get(tp, "type", &tline)) : NULL;
    if (!type || strcmp(type, "CHUNK[INT]"))
        return s_fail(
            x, tline,
            "task parameter type '%s' is outside the subset reelfarm imports (only CHUNK[INT])",
            type ? type : "(none)");
    if ((rc = s_keys(x, tp, tline, "task parameter", tp_keys)) != 0)
        return rc;
    int rline = tline;
    struct fy_node *range = s_get(tp, "range", &rline);
    const char *rtext = s_scalar(range);
    if (!rtext)
        return s_fail(x, rline, "task parameter: 'range' is required, as a string like \"1-300\"");
    char *r = NULL;
    if ((rc = s_subst(x, rtext, rline, "range", &r)) != 0)
        return rc;
    char *end = NULL;
    st->first = strtoll(r, &end, 10);
    bool ok = end != r && *end == '-';
    if (ok) {
        const char *second = end + 1;
        st->last = strtoll(second, &end, 10);
        ok = end != second && !*end && st->last >= st->first;
    }
    if (!ok)
        rc = s_fail(x, rline,
                    "range '%s' is outside the subset reelfarm imports (one contiguous range "
                    "FIRST-LAST, like \"1-300\")",
                    r);
    free(r);
    if (rc)
        return rc;
    st->range_line = rline;
    int cline = rline;
    struct fy_node *chunks = s_get(tp, "chunks", &cline);
    if (!chunks)
        return s_fail(
            x, tline,
            "task parameter: 'chunks' is required (defaultTaskCount, rangeConstraint: CONTIGUOUS)");
    if ((rc = s_keys(x, chunks, cline, "chunks", chunk_keys)) != 0)
        return rc;
    int kline = cline;
    const char *constraint = s_scalar(s_get(chunks, "rangeConstraint", &kline));
    if (!constraint || strcmp(constraint, "CONTIGUOUS"))
        return s_fail(
            x, kline,
            "rangeConstraint '%s' is outside the subset reelfarm imports (only CONTIGUOUS)",
            constraint ? constraint : "(none)");
    kline = cline;
    struct fy_node *count = s_get(chunks, "defaultTaskCount", &kline);
    if (!count)
        return s_fail(x, cline, "chunks: 'defaultTaskCount' is required");
    if ((rc = s_int(x, count, kline, "defaultTaskCount", &st->per_chunk)) != 0)
        return rc;
    if (st->per_chunk < 1)
        return s_fail(x, kline, "defaultTaskCount: expected at least 1, got %lld", st->per_chunk);
    return 0;
}

static int s_host(s_ctx_t *x, struct fy_node *host, int line, s_step_t *st)
{
    static const char *const host_keys[] = {"amounts", "attributes", NULL};
    static const char *const amount_keys[] = {"name", "min", "max", NULL};
    static const char *const attr_keys[] = {"name", "anyOf", "allOf", NULL};
    int rc = s_keys(x, host, line, "hostRequirements", host_keys);
    if (rc)
        return rc;
    int aline = line;
    struct fy_node *list = s_get(host, "amounts", &aline);
    void *it = NULL;
    struct fy_node *a;
    while (list && fy_node_get_type(list) == FYNT_SEQUENCE &&
           (a = fy_node_sequence_iterate(list, &it))) {
        int nline = aline;
        const char *name =
            fy_node_get_type(a) == FYNT_MAPPING ? s_scalar(s_get(a, "name", &nline)) : NULL;
        if (!name)
            return s_fail(x, aline, "hostRequirements amounts: every entry needs a 'name'");
        if ((rc = s_keys(x, a, nline, "hostRequirements amount", amount_keys)) != 0)
            return rc;
        int mline = nline;
        if (s_get(a, "max", &mline))
            return s_fail(x, mline,
                          "amount '%s': 'max' is outside the subset reelfarm imports (reelfarm "
                          "only knows minimums)",
                          name);
        long long min = 0;
        mline = nline;
        struct fy_node *mn = s_get(a, "min", &mline);
        if (mn && (rc = s_int(x, mn, mline, "min", &min)) != 0)
            return rc;
        if (!strcmp(name, "amount.worker.gpu")) {
            st->need_gpu = min >= 1;
        } else if (!strcmp(name, "amount.worker.gpu.memory")) {
            st->vram_mib = min;
        } else if (min > 0) {
            return s_fail(
                x, nline,
                "amount '%s' is outside the subset reelfarm imports (reelfarm schedules by "
                "amount.worker.gpu and amount.worker.gpu.memory only; it cannot require CPUs, "
                "RAM or disk)",
                name);
        }
    }
    aline = line;
    list = s_get(host, "attributes", &aline);
    it = NULL;
    while (list && fy_node_get_type(list) == FYNT_SEQUENCE &&
           (a = fy_node_sequence_iterate(list, &it))) {
        int nline = aline;
        const char *name =
            fy_node_get_type(a) == FYNT_MAPPING ? s_scalar(s_get(a, "name", &nline)) : NULL;
        if (!name)
            return s_fail(x, aline, "hostRequirements attributes: every entry needs a 'name'");
        if ((rc = s_keys(x, a, nline, "hostRequirements attribute", attr_keys)) != 0)
            return rc;
        if (strcmp(name, "attr.worker.os.family"))
            return s_fail(x, nline,
                          "attribute '%s' is outside the subset reelfarm imports (only "
                          "attr.worker.os.family)",
                          name);
        /* reelfarm workers run Linux: the requirement holds when it admits linux. */
        bool linux_ok = false;
        for (int k = 0; k < 2; k++) {
            int vline = nline;
            struct fy_node *vals = s_get(a, k ? "allOf" : "anyOf", &vline);
            void *vit = NULL;
            struct fy_node *v;
            while (vals && fy_node_get_type(vals) == FYNT_SEQUENCE &&
                   (v = fy_node_sequence_iterate(vals, &vit))) {
                const char *s = s_scalar(v);
                bool is_linux = s && !strcasecmp(s, "linux");
                if (k == 1 && !is_linux)
                    return s_fail(x, vline,
                                  "attribute '%s': allOf '%s': reelfarm workers run Linux", name,
                                  s ? s : "?");
                linux_ok = linux_ok || is_linux;
            }
        }
        if (!linux_ok)
            return s_fail(x, nline,
                          "attribute '%s' does not admit linux: reelfarm workers run Linux", name);
    }
    return 0;
}

static int s_script(s_ctx_t *x, struct fy_node *script, int line, s_step_t *st)
{
    static const char *const script_keys[] = {"actions", "embeddedFiles", NULL};
    static const char *const actions_keys[] = {"onRun", NULL};
    static const char *const run_keys[] = {"command", "args", NULL};
    static const char *const file_keys[] = {"name", "type", "data", "filename", NULL};
    int rc = s_keys(x, script, line, "script", script_keys);
    if (rc)
        return rc;
    int aline = line;
    struct fy_node *actions = s_get(script, "actions", &aline);
    if (!actions)
        return s_fail(
            x, line,
            "script: 'actions' with onRun `reelfarm render {{Task.File.NAME}}` is required");
    if ((rc = s_keys(x, actions, aline, "script actions", actions_keys)) != 0)
        return rc;
    int rline = aline;
    struct fy_node *run = s_get(actions, "onRun", &rline);
    if (!run || (rc = s_keys(x, run, rline, "onRun", run_keys)) != 0)
        return rc ? rc : s_fail(x, aline, "script actions: 'onRun' is required");
    int kline = rline;
    const char *command = s_scalar(s_get(run, "command", &kline));
    if (!command || strcmp(command, "reelfarm"))
        return s_fail(
            x, kline,
            "onRun command '%s' is outside the subset reelfarm imports (it must be `reelfarm "
            "render {{Task.File.NAME}}`: reelfarm renders the embedded job itself)",
            command ? command : "(none)");
    kline = rline;
    struct fy_node *args = s_get(run, "args", &kline);
    const char *a0 =
        args && fy_node_get_type(args) == FYNT_SEQUENCE && fy_node_sequence_item_count(args) == 2
            ? s_scalar(fy_node_sequence_get_by_index(args, 0))
            : NULL;
    const char *a1 = a0 ? s_scalar(fy_node_sequence_get_by_index(args, 1)) : NULL;
    const char *fname = a1 && !strncmp(a1, "{{Task.File.", 12) ? a1 + 12 : NULL;
    size_t flen = fname ? strcspn(fname, "}") : 0;
    if (!a0 || strcmp(a0, "render") || !fname || strcmp(fname + flen, "}}") || flen == 0 ||
        flen >= sizeof(st->file_name))
        return s_fail(
            x, kline,
            "onRun args must be [render, \"{{Task.File.NAME}}\"] naming an embedded file");
    snprintf(st->file_name, sizeof(st->file_name), "%.*s", (int)flen, fname);
    int fline = line;
    struct fy_node *files = s_get(script, "embeddedFiles", &fline);
    void *it = NULL;
    struct fy_node *f;
    while (files && fy_node_get_type(files) == FYNT_SEQUENCE &&
           (f = fy_node_sequence_iterate(files, &it))) {
        int nline = fline;
        const char *name =
            fy_node_get_type(f) == FYNT_MAPPING ? s_scalar(s_get(f, "name", &nline)) : NULL;
        if (!name)
            return s_fail(x, fline, "embeddedFiles: every entry needs a 'name'");
        if ((rc = s_keys(x, f, nline, "embedded file", file_keys)) != 0)
            return rc;
        if (strcmp(name, st->file_name))
            return s_fail(x, nline,
                          "embedded file '%s' is not the one onRun renders ('%s'): reelfarm "
                          "imports exactly one",
                          name, st->file_name);
        int tline = nline;
        const char *type = s_scalar(s_get(f, "type", &tline));
        if (!type || strcmp(type, "TEXT"))
            return s_fail(x, tline, "embedded file '%s': type must be TEXT", name);
        int dline = nline;
        struct fy_node *dnode = s_get(f, "data", &dline);
        const char *data = s_scalar(dnode);
        if (!data)
            return s_fail(x, nline,
                          "embedded file '%s': 'data' (the reelfarm job spec) is required", name);
        /* A block scalar (data: |) starts on the line after its key. */
        enum fy_node_style style = fy_node_get_style(dnode);
        st->data_line = style == FYNS_LITERAL || style == FYNS_FOLDED ? dline + 1
                        : s_line(dnode)                               ? s_line(dnode)
                                                                      : dline;
        free(st->job_yaml);
        st->job_yaml = NULL;
        if ((rc = s_subst(x, data, st->data_line, "embedded job spec", &st->job_yaml)) != 0)
            return rc;
    }
    if (!st->job_yaml)
        return s_fail(x, fline, "script: no embedded file '%s' holding the reelfarm job spec",
                      st->file_name);
    return 0;
}

/* ---- the job YAML ------------------------------------------------------------------------------
 */

/* Sets key to value in map, replacing an existing value. value is a scalar's text (copied: libfyaml
 * keeps pointers into the strings nodes are built from), or NULL for an empty mapping. */
static int s_set(struct fy_document *doc, struct fy_node *map, const char *key, const char *value)
{
    struct fy_node *v = value ? fy_node_create_scalar_copy(doc, value, FY_NT)
                              : fy_node_build_from_string(doc, "{}", FY_NT);
    if (!v)
        return RF_ENOMEM;
    struct fy_node_pair *p = fy_node_mapping_lookup_pair_by_string(map, key, FY_NT);
    if (p)
        return fy_node_pair_set_value(p, v) ? RF_ENOMEM : 0;
    struct fy_node *k = fy_node_create_scalar_copy(doc, key, FY_NT);
    return !k || fy_node_mapping_append(map, k, v) ? RF_ENOMEM : 0;
}

static int s_build_job(s_ctx_t *x, const char *name, const s_step_t *st, const char *base_dir,
                       char **out)
{
    char source[PATH_MAX + 64];
    snprintf(source, sizeof(source), "%s (embedded file '%s')", x->path, st->file_name);
    rf_job_spec_t *spec = NULL;
    int rc = rf_job_spec_load_string(st->job_yaml, strlen(st->job_yaml), source, base_dir, &spec,
                                     x->err);
    if (rc) {
        /* "SOURCE:N: what" -> "TEMPLATE:LINE: embedded job spec: what", LINE in the template. */
        size_t slen = strlen(source);
        char *end = NULL;
        long n = !strncmp(x->err->msg, source, slen) && x->err->msg[slen] == ':'
                     ? strtol(x->err->msg + slen + 1, &end, 10)
                     : 0;
        if (n > 0 && end && *end == ':') {
            char what[sizeof(x->err->msg)];
            snprintf(what, sizeof(what), "%s", end + 1 + (end[1] == ' '));
            s_fail(x, st->data_line + (int)n - 1, "embedded job spec: %s", what);
        }
        return rc;
    }
    rf_media_info_t *info = NULL;
    rc = rf_media_probe(spec->input, &info, x->err);
    double max_s = spec->chunking.max_seconds;
    rf_job_spec_destroy(&spec);
    if (rc)
        return rc;
    long long frames = info->nb_frames;
    double fps = av_q2d(info->frame_rate);
    rf_media_info_destroy(&info);
    long long count = st->last - st->first + 1;
    if (!(st->first == 0 || st->first == 1) || count != frames)
        return s_fail(x, st->range_line,
                      "range %lld-%lld: reelfarm renders whole inputs, and the input has %lld "
                      "frames: use 1-%lld (or 0-%lld)",
                      st->first, st->last, frames, frames, frames - 1);
    if (!(fps > 0))
        return s_fail(x, st->range_line,
                      "the input has no frame rate to turn defaultTaskCount into seconds");
    double target = (double)st->per_chunk / fps;
    if (max_s < target)
        max_s = target;
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2;
    struct fy_document *doc = fy_document_build_from_string(&pcfg, st->job_yaml, FY_NT);
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    char num[64];
    rc = root && fy_node_get_type(root) == FYNT_MAPPING ? 0 : RF_ENOMEM;
    if (!rc) {
        rc = s_set(doc, root, "name", name);
    }
    struct fy_node *chunking =
        root ? fy_node_mapping_lookup_by_string(root, "chunking", FY_NT) : NULL;
    if (!rc && !chunking) {
        rc = s_set(doc, root, "chunking", NULL);
        chunking = fy_node_mapping_lookup_by_string(root, "chunking", FY_NT);
    }
    if (!rc && (!chunking || fy_node_get_type(chunking) != FYNT_MAPPING))
        rc = RF_EINVAL;
    if (!rc) {
        snprintf(num, sizeof(num), "%.6f", target);
        rc = s_set(doc, chunking, "target_seconds", num);
    }
    if (!rc) {
        snprintf(num, sizeof(num), "%.6f", max_s);
        rc = s_set(doc, chunking, "max_seconds", num);
    }
    /* Host requirements become the job's requirements (merged into any the job spec has). */
    if (!rc && (st->need_gpu || st->vram_mib > 0)) {
        struct fy_node *req = fy_node_mapping_lookup_by_string(root, "requirements", FY_NT);
        if (!req) {
            rc = s_set(doc, root, "requirements", NULL);
            req = fy_node_mapping_lookup_by_string(root, "requirements", FY_NT);
        }
        if (!rc && (!req || fy_node_get_type(req) != FYNT_MAPPING))
            rc = RF_EINVAL;
        if (!rc)
            rc = s_set(doc, req, "gpu", "true");
        if (!rc && st->vram_mib > 0) {
            snprintf(num, sizeof(num), "%lld", st->vram_mib);
            rc = s_set(doc, req, "vram_mib", num);
        }
    }
    char *text = !rc ? fy_emit_document_to_string(doc, FYECF_MODE_BLOCK) : NULL;
    if (doc)
        fy_document_destroy(doc);
    if (!text)
        return rf_err_set(x->err, RF_ECONFIG, "%s: cannot rewrite the embedded job spec", source);
    /* Check the result as the coordinator will. */
    rc = rf_job_spec_load_string(text, strlen(text), source, base_dir, &spec, x->err);
    rf_job_spec_destroy(&spec);
    if (rc) {
        free(text);
        return rc;
    }
    *out = text;
    return 0;
}

int rf_openjd_import(const char *path, const char *const *params, size_t nparams, char **job_yaml,
                     char *base_dir, size_t base_size, rf_err_t *err)
{
    static const char *const top_keys[] = {
        "specificationVersion", "$schema", "extensions", "name", "description",
        "parameterDefinitions", "steps",   NULL};
    static const char *const step_keys[] = {"name",   "description",      "parameterSpace",
                                            "script", "hostRequirements", NULL};
    s_ctx_t x;
    memset(&x, 0, sizeof(x));
    x.path = path;
    x.err = err;
    s_step_t st;
    memset(&st, 0, sizeof(st));
    char *text = NULL, *name = NULL;
    struct fy_diag *diag = NULL;
    struct fy_parser *parser = NULL;
    struct fy_document *doc = NULL;
    int rc = 0;

    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_err_set(err, RF_ENOENT, "'%s': %s", path, strerror(errno));
    text = malloc(S_TEMPLATE_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, S_TEMPLATE_MAX_BYTES + 1, f) : 0;
    fclose(f);
    if (!text)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (len > S_TEMPLATE_MAX_BYTES) {
        rc = rf_err_set(err, RF_ECONFIG, "'%s': larger than %d bytes", path, S_TEMPLATE_MAX_BYTES);
        goto out;
    }
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    const char *dir = slash ? (slash == tmp ? "/" : (*slash = '\0', tmp)) : ".";
    if (!realpath(dir, base_dir) || strlen(base_dir) >= base_size) {
        rc = rf_err_set(err, RF_ENOENT, "'%s': %s", dir, strerror(errno));
        goto out;
    }

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = s_diag_silent;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_DEFAULT_VERSION_1_2;
    pcfg.diag = diag;
    parser = diag ? fy_parser_create(&pcfg) : NULL;
    if (!parser || fy_parser_set_string(parser, text, len) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    doc = fy_parse_load_document(parser);
    if (fy_diag_got_error(diag) || fy_parser_get_stream_error(parser)) {
        void *iter = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(diag, &iter);
        rc = s_fail(&x, e && e->line > 0 ? e->line : 1, "invalid YAML: %s",
                    e && e->msg ? e->msg : "parse error");
        goto out;
    }
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    if ((rc = s_keys(&x, root, 1, "template", top_keys)) != 0)
        goto out;
    int line = 1;
    const char *ver = s_scalar(s_get(root, "specificationVersion", &line));
    if (!ver || strcmp(ver, "jobtemplate-2023-09")) {
        rc = s_fail(&x, line,
                    "specificationVersion '%s' is outside the subset reelfarm imports (only "
                    "'jobtemplate-2023-09')",
                    ver ? ver : "(missing)");
        goto out;
    }
    line = 1;
    struct fy_node *ext = s_get(root, "extensions", &line);
    bool chunking_ext = false;
    void *it = NULL;
    struct fy_node *e;
    while (ext && fy_node_get_type(ext) == FYNT_SEQUENCE &&
           (e = fy_node_sequence_iterate(ext, &it))) {
        const char *s = s_scalar(e);
        if (!s || strcmp(s, "TASK_CHUNKING")) {
            rc =
                s_fail(&x, s_line(e) ? s_line(e) : line,
                       "extension '%s' is outside the subset reelfarm imports (only TASK_CHUNKING)",
                       s ? s : "?");
            goto out;
        }
        chunking_ext = true;
    }
    if (!chunking_ext) {
        rc = s_fail(
            &x, line,
            "extensions: TASK_CHUNKING is required (the step's CHUNK[INT] parameter needs it)");
        goto out;
    }
    line = 1;
    if ((rc = s_params(&x, s_get(root, "parameterDefinitions", &line), line, params, nparams)) != 0)
        goto out;
    line = 1;
    struct fy_node *jname = s_get(root, "name", &line);
    if (!s_scalar(jname)) {
        rc = s_fail(&x, 1, "template: 'name' is required");
        goto out;
    }
    if ((rc = s_subst(&x, s_scalar(jname), s_line(jname), "name", &name)) != 0)
        goto out;
    line = 1;
    struct fy_node *steps = s_get(root, "steps", &line);
    if (!steps || fy_node_get_type(steps) != FYNT_SEQUENCE ||
        fy_node_sequence_item_count(steps) < 1) {
        rc = s_fail(&x, line, "template: 'steps' with one step is required");
        goto out;
    }
    if (fy_node_sequence_item_count(steps) > 1) {
        struct fy_node *second = fy_node_sequence_get_by_index(steps, 1);
        int sline = line;
        struct fy_node *sn =
            fy_node_get_type(second) == FYNT_MAPPING ? s_get(second, "name", &sline) : NULL;
        rc =
            s_fail(&x, s_line(sn) ? s_line(sn) : line,
                   "a second step ('%s') is outside the subset reelfarm imports (exactly one step)",
                   s_scalar(sn) ? s_scalar(sn) : "?");
        goto out;
    }
    struct fy_node *step = fy_node_sequence_get_by_index(steps, 0);
    int sline = line;
    struct fy_node *sname =
        fy_node_get_type(step) == FYNT_MAPPING ? s_get(step, "name", &sline) : NULL;
    sline = s_line(sname) ? s_line(sname) : line;
    if ((rc = s_keys(&x, step, sline, "step", step_keys)) != 0)
        goto out;
    int kline = sline;
    struct fy_node *space = s_get(step, "parameterSpace", &kline);
    if (!space) {
        rc = s_fail(&x, sline,
                    "step: 'parameterSpace' with one CHUNK[INT] task parameter is required");
        goto out;
    }
    if ((rc = s_task_params(&x, space, kline, &st)) != 0)
        goto out;
    kline = sline;
    struct fy_node *host = s_get(step, "hostRequirements", &kline);
    if (host && (rc = s_host(&x, host, kline, &st)) != 0)
        goto out;
    kline = sline;
    struct fy_node *script = s_get(step, "script", &kline);
    if (!script) {
        rc = s_fail(&x, sline, "step: 'script' is required");
        goto out;
    }
    if ((rc = s_script(&x, script, kline, &st)) != 0)
        goto out;
    rc = s_build_job(&x, name, &st, base_dir, job_yaml);
out:
    for (size_t i = 0; i < x.nparams; i++)
        free(x.params[i].value);
    free(st.job_yaml);
    free(name);
    free(text);
    if (doc)
        fy_parse_document_destroy(parser, doc);
    if (parser)
        fy_parser_destroy(parser);
    if (diag)
        fy_diag_destroy(diag);
    return rc;
}
