/* marks.c - the provenance passes the coordinator appends to every job (config.h,
 * rf_job_spec_add_marks; docs/PROVENANCE.md).
 *
 * They are appended to the parsed spec, never written into the stored YAML: the spec a user
 * submitted stays what they wrote, and a restarted coordinator appends them again when it reloads
 * the job. A spec cannot name them itself (the loader refuses automatic passes), so no job can
 * remove the watermark, put a pass after it or give it another key.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#define S_LABEL_TEXT "AI-GENERATED"

static char *s_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool s_hex(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Fills pass with name and parameters (keys[i] = values[i]); on failure frees what it made. */
static int s_make(rf_pass_spec_t *pass, const char *name, const char *const *keys,
                  const char *const *values, size_t n)
{
    memset(pass, 0, sizeof(*pass));
    pass->name = s_dup(name);
    pass->role = s_dup("refine");
    pass->params = calloc(n, sizeof(*pass->params));
    if (!pass->name || !pass->role || !pass->params)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        pass->params[i].key = s_dup(keys[i]);
        pass->params[i].value = s_dup(values[i]);
        pass->nparams = i + 1;
        if (!pass->params[i].key || !pass->params[i].value)
            goto fail;
    }
    return 0;
fail:
    for (size_t i = 0; i < pass->nparams; i++) {
        free(pass->params[i].key);
        free(pass->params[i].value);
    }
    free(pass->params);
    free(pass->name);
    free(pass->role);
    memset(pass, 0, sizeof(*pass));
    return RF_ENOMEM;
}

int rf_job_spec_add_marks(rf_job_spec_t *spec, const char *pattern_key_hex, const char *payload_hex,
                          rf_err_t *err)
{
    static const char *const wm_keys[] = {"key", "payload"};
    static const char *const label_keys[] = {"text"};
    const char *wm_values[] = {pattern_key_hex, payload_hex};
    const char *label_values[] = {S_LABEL_TEXT};
    size_t add = spec->provenance.label ? 2 : 1;
    rf_pass_spec_t *grown;

    if (!s_hex(pattern_key_hex, 64) || !s_hex(payload_hex, 16))
        return rf_err_set(err, RF_EINVAL, "watermark: pattern key must be 64 and payload 16 "
                                          "lowercase hex digits");
    for (size_t i = 0; i < spec->npasses; i++)
        if (!strcmp(spec->pipeline[i].name, "watermark") || !strcmp(spec->pipeline[i].name, "label"))
            return rf_err_set(err, RF_EEXIST, "job '%s': provenance passes already added",
                              spec->name ? spec->name : "");
    grown = realloc(spec->pipeline, (spec->npasses + add) * sizeof(*grown));
    if (!grown)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    spec->pipeline = grown;
    if (spec->provenance.label) {
        if (s_make(&spec->pipeline[spec->npasses], "label", label_keys, label_values, 1))
            return rf_err_set(err, RF_ENOMEM, "out of memory");
        spec->npasses++;
    }
    if (s_make(&spec->pipeline[spec->npasses], "watermark", wm_keys, wm_values, 2))
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    spec->npasses++;
    return 0;
}
