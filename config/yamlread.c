/* yamlread.c - private to config/: libfyaml wrapped into checked, typed reads with messages that
 * name the file, the line and the key. See yamlread.h.
 *
 * Why our own checks rather than libfyaml's: libfyaml reports syntax, but it knows nothing about
 * what a key means, and its duplicate-key error has no key path. So we parse with duplicates
 * allowed and find them ourselves, and treat every scalar's style as part of its type: a quoted
 * "5" is a string, never an integer.
 */
#include "yamlread.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define S_GOT_MAX 48 /* how much of a bad value a message quotes */

/* ---- files and documents -------------------------------------------------------------------- */

int rf_yaml_read_file(const char *path, char **text, size_t *len, rf_err_t *err)
{
    int rc = 0;
    int fd = -1;
    char *buf = NULL;
    size_t used = 0;
    struct stat st;

    *text = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = rf_err_set(err, RF_ENOENT, "'%s': no such file", path);
        else
            rc = rf_err_set(err, RF_EIO, "'%s': cannot open: %s", path, strerror(errno));
        goto cleanup;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = rf_err_set(err, RF_EIO, "'%s': not a regular file", path);
        goto cleanup;
    }
    if (st.st_size > RF_SPEC_MAX_BYTES) {
        rc = rf_err_set(err, RF_ETOOBIG, "'%s': %lld bytes, over the limit of %d bytes", path,
                        (long long)st.st_size, RF_SPEC_MAX_BYTES);
        goto cleanup;
    }
    /* Read up to one byte past the limit: the file may grow between fstat and read. */
    buf = malloc((size_t)RF_SPEC_MAX_BYTES + 2);
    if (!buf) {
        rc = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto cleanup;
    }
    for (;;) {
        ssize_t n = read(fd, buf + used, (size_t)RF_SPEC_MAX_BYTES + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = rf_err_set(err, RF_EIO, "'%s': read failed: %s", path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > RF_SPEC_MAX_BYTES) {
            rc = rf_err_set(err, RF_ETOOBIG, "'%s': over the limit of %d bytes", path,
                            RF_SPEC_MAX_BYTES);
            goto cleanup;
        }
    }
    buf[used] = '\0';
    *text = buf;
    *len = used;
    buf = NULL;
cleanup:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* libfyaml must never print: the loaders' contract is that they only fill an rf_err_t. */
static void s_diag_silent(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

static const char *s_kind(struct fy_node *node)
{
    if (!node)
        return "nothing";
    if (fy_node_get_style(node) == FYNS_ALIAS)
        return "an alias";
    switch (fy_node_get_type(node)) {
    case FYNT_MAPPING:
        return "a mapping";
    case FYNT_SEQUENCE:
        return "a sequence";
    default:
        return "a scalar";
    }
}

int rf_yaml_parse(const rf_yctx_t *c, const char *text, size_t len, rf_ydoc_t *d)
{
    int rc = 0;
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg;
    struct fy_document *extra = NULL;

    memset(d, 0, sizeof(*d));
    if (len > RF_SPEC_MAX_BYTES)
        return rf_err_set(c->err, RF_ETOOBIG, "%s: %zu bytes, over the limit of %d bytes",
                          c->source, len, RF_SPEC_MAX_BYTES);

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = s_diag_silent;
    dcfg.colorize = false;
    d->diag = fy_diag_create(&dcfg);
    if (!d->diag) {
        rc = rf_yaml_nomem(c);
        goto cleanup;
    }
    fy_diag_set_collect_errors(d->diag, true);

    memset(&pcfg, 0, sizeof(pcfg));
    /* Duplicates are found by rf_yaml_mapping, which can name the key path. No document
     * resolution: aliases stay aliases and are refused, so no alias bomb can expand. */
    pcfg.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS | FYPCF_DEFAULT_VERSION_1_2;
    pcfg.diag = d->diag;
    d->parser = fy_parser_create(&pcfg);
    if (!d->parser || fy_parser_set_string(d->parser, text, len) != 0) {
        rc = rf_yaml_nomem(c);
        goto cleanup;
    }
    d->doc = fy_parse_load_document(d->parser);
    if (d->doc && !fy_diag_got_error(d->diag)) {
        /* A second document would be silently ignored; say so instead. */
        extra = fy_parse_load_document(d->parser);
        if (extra) {
            int line = rf_yaml_node_line(fy_document_root(extra), 0);
            fy_parse_document_destroy(d->parser, extra);
            rc = rf_err_set(c->err, RF_ECONFIG,
                            "%s:%d: invalid YAML: more than one document (one '---' section only)",
                            c->source, line > 0 ? line : 1);
            goto cleanup;
        }
    }
    if (fy_diag_got_error(d->diag) || fy_parser_get_stream_error(d->parser)) {
        void *iter = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(d->diag, &iter);
        rc = rf_err_set(c->err, RF_ECONFIG, "%s:%d: invalid YAML: %s", c->source,
                        e && e->line > 0 ? e->line : 1, e && e->msg ? e->msg : "parse error");
        goto cleanup;
    }
    d->root = d->doc ? fy_document_root(d->doc) : NULL;
    if (!d->root || fy_node_get_type(d->root) != FYNT_MAPPING ||
        fy_node_get_style(d->root) == FYNS_ALIAS) {
        rc = rf_err_set(c->err, RF_ECONFIG,
                        "%s:%d: expected a mapping of keys at the top (starting with "
                        "'version: 1'), got %s",
                        c->source, rf_yaml_node_line(d->root, 1), s_kind(d->root));
        goto cleanup;
    }
cleanup:
    return rc;
}

void rf_yaml_release(rf_ydoc_t *d)
{
    if (d->doc)
        fy_parse_document_destroy(d->parser, d->doc);
    if (d->parser)
        fy_parser_destroy(d->parser);
    if (d->diag)
        fy_diag_destroy(d->diag);
    memset(d, 0, sizeof(*d));
}

/* ---- file paths ----------------------------------------------------------------------------- */

/* Lexically normalizes an absolute path in place: no "//", ".", or ".." segments, no trailing
 * '/'. Lexical on purpose: the output need not exist yet, so realpath cannot be used. */
void rf_yaml_path_normalize(char *path)
{
    char *out = path; /* write position; path[0] is '/' */
    const char *in = path;

    assert(path[0] == '/');
    while (*in) {
        const char *seg;
        size_t n;

        while (*in == '/')
            in++;
        seg = in;
        while (*in && *in != '/')
            in++;
        n = (size_t)(in - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > path && *(out - 1) != '/')
                out--;
            if (out > path)
                out--; /* drop the '/' before the removed segment */
            continue;
        }
        *out++ = '/';
        memmove(out, seg, n);
        out += n;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

/* An absolute, normalized copy of path (relative ones join base_dir). */
char *rf_yaml_path_resolve(const char *base_dir, const char *path)
{
    size_t blen = strlen(base_dir), plen = strlen(path);
    char *out = malloc(blen + plen + 2);

    if (!out)
        return NULL;
    if (path[0] == '/') {
        memcpy(out, path, plen + 1);
    } else {
        memcpy(out, base_dir, blen);
        out[blen] = '/';
        memcpy(out + blen + 1, path, plen + 1);
    }
    rf_yaml_path_normalize(out);
    return out;
}

/* ---- lines, paths, messages ----------------------------------------------------------------- */

int rf_yaml_node_line(struct fy_node *node, int fallback)
{
    struct fy_token *tok;
    const struct fy_mark *mark;
    void *iter = NULL;

    if (!node)
        return fallback;
    switch (fy_node_get_type(node)) {
    case FYNT_SCALAR:
        tok = fy_node_get_scalar_token(node);
        mark = tok ? fy_token_start_mark(tok) : NULL;
        return mark ? mark->line + 1 : fallback;
    case FYNT_MAPPING: {
        /* libfyaml 0.7 has no start mark for collections; the first key is the next best. */
        struct fy_node_pair *pair = fy_node_mapping_iterate(node, &iter);
        return pair ? rf_yaml_node_line(fy_node_pair_key(pair), fallback) : fallback;
    }
    case FYNT_SEQUENCE:
        return rf_yaml_node_line(fy_node_sequence_iterate(node, &iter), fallback);
    }
    return fallback;
}

int rf_yaml_error(const rf_yctx_t *c, int line, const char *path, const char *fmt, ...)
{
    char what[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return rf_err_set(c->err, RF_ECONFIG, "%s:%d: key '%s': %s", c->source, line > 0 ? line : 1,
                      path, what);
}

int rf_yaml_nomem(const rf_yctx_t *c)
{
    return rf_err_set(c->err, RF_ENOMEM, "%s: out of memory", c->source);
}

const char *rf_yaml_path(char *buf, size_t size, const char *prefix, const char *key)
{
    if (!prefix || !prefix[0])
        snprintf(buf, size, "%s", key);
    else
        snprintf(buf, size, "%s.%s", prefix, key);
    return buf;
}

const char *rf_yaml_path_index(char *buf, size_t size, const char *prefix, size_t index)
{
    snprintf(buf, size, "%s[%zu]", prefix, index);
    return buf;
}

/* The scalar's text, or NULL for a non-scalar or an alias. */
static const char *s_scalar(struct fy_node *node, size_t *len)
{
    if (!node || fy_node_get_type(node) != FYNT_SCALAR || fy_node_get_style(node) == FYNS_ALIAS)
        return NULL;
    return fy_node_get_scalar(node, len);
}

/* YAML's plain null: empty, ~, null. "key:" with nothing after it reads as this. */
static bool s_is_null(struct fy_node *node)
{
    size_t len = 0;
    const char *s = s_scalar(node, &len);

    if (!node)
        return true;
    if (!s || fy_node_get_style(node) != FYNS_PLAIN)
        return false;
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

/* "'high'", "the quoted string '5'", "a mapping", "nothing": what a message says it got. */
static const char *s_got(struct fy_node *node, char *buf, size_t size)
{
    size_t len = 0, shown;
    const char *s;
    enum fy_node_style style;

    if (s_is_null(node))
        return "nothing";
    s = s_scalar(node, &len);
    if (!s) {
        snprintf(buf, size, "%s", s_kind(node));
        return buf;
    }
    shown = len > S_GOT_MAX ? S_GOT_MAX : len;
    style = fy_node_get_style(node);
    if (style == FYNS_SINGLE_QUOTED || style == FYNS_DOUBLE_QUOTED)
        snprintf(buf, size, "the quoted string '%.*s%s' (numbers and booleans take no quotes)",
                 (int)shown, s, shown < len ? "..." : "");
    else
        snprintf(buf, size, "'%.*s%s'", (int)shown, s, shown < len ? "..." : "");
    return buf;
}

/* Refuses what we never accept anywhere: aliases and explicit tags. */
static int s_check_plain_yaml(const rf_yctx_t *c, struct fy_node *node, int line, const char *path)
{
    size_t taglen = 0;

    if (!node)
        return 0;
    if (fy_node_get_style(node) == FYNS_ALIAS)
        return rf_yaml_error(c, line, path, "aliases (*name) are not supported; write the value");
    if (fy_node_get_tag(node, &taglen) && taglen > 0)
        return rf_yaml_error(c, line, path, "tags (!tag) are not supported; write the value");
    return 0;
}

/* ---- collections ---------------------------------------------------------------------------- */

static int s_check_mapping(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                           size_t max)
{
    char got[128];
    int rc;

    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    if (!node || fy_node_get_type(node) != FYNT_MAPPING)
        return rf_yaml_error(c, line, path, "expected a mapping, got %s",
                             s_got(node, got, sizeof(got)));
    if ((size_t)fy_node_mapping_item_count(node) > max)
        return rf_yaml_error(c, line, path, "more than %zu keys", max);
    return 0;
}

/* The key's text, checking it is a plain-enough scalar. */
static int s_key(const rf_yctx_t *c, struct fy_node_pair *pair, const char *path, int line,
                 const char **key, size_t *keylen, int *keyline)
{
    struct fy_node *knode = fy_node_pair_key(pair);
    const char *s = s_scalar(knode, keylen);

    *keyline = rf_yaml_node_line(knode, line);
    if (!s || s_is_null(knode) || memchr(s, '\0', *keylen))
        return rf_yaml_error(c, *keyline, path, "every key must be a plain name, got %s",
                             s_kind(knode));
    *key = s;
    return 0;
}

int rf_yaml_mapping(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                    rf_yfield_t *fields, size_t nfields)
{
    char kpath[RF_YAML_PATH_MAX];
    char expected[512];
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t i, used = 0;
    int rc;

    for (i = 0; i < nfields; i++) {
        fields[i].node = NULL;
        fields[i].line = 0;
    }
    /* A schema never has more keys than nfields, so more pairs means an unknown or repeated key:
     * the walk below reports which. The cap only bounds the walk itself. */
    rc = s_check_mapping(c, node, path, line, RF_SPEC_MAX_BYTES);
    if (rc)
        return rc;
    while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
        const char *key = NULL;
        size_t keylen = 0;
        int keyline = 0;
        rf_yfield_t *f = NULL;

        rc = s_key(c, pair, path, line, &key, &keylen, &keyline);
        if (rc)
            return rc;
        for (i = 0; i < nfields; i++) {
            if (strlen(fields[i].key) == keylen && !memcmp(fields[i].key, key, keylen)) {
                f = &fields[i];
                break;
            }
        }
        snprintf(kpath, sizeof(kpath), "%s%s%.*s", path[0] ? path : "", path[0] ? "." : "",
                 (int)(keylen > 64 ? 64 : keylen), key);
        if (!f) {
            used = 0;
            expected[0] = '\0';
            for (i = 0; i < nfields && used < sizeof(expected); i++)
                used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s%s",
                                         i ? ", " : "", fields[i].key);
            return rf_yaml_error(c, keyline, kpath, "unknown key (expected one of: %s)", expected);
        }
        if (f->line)
            return rf_yaml_error(c, keyline, kpath, "duplicate key (first given on line %d)",
                                 f->line);
        f->node = fy_node_pair_value(pair);
        f->line = keyline;
    }
    return 0;
}

int rf_yaml_free_mapping(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                         size_t max)
{
    char kpath[RF_YAML_PATH_MAX];
    struct fy_node_pair *pair, *prev;
    void *iter = NULL, *iter2;
    int rc;

    rc = s_check_mapping(c, node, path, line, max);
    if (rc)
        return rc;
    /* Quadratic, but max is small (RF_SPEC_MAX_PARAMS). */
    while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
        const char *key = NULL;
        size_t keylen = 0;
        int keyline = 0;

        rc = s_key(c, pair, path, line, &key, &keylen, &keyline);
        if (rc)
            return rc;
        iter2 = NULL;
        while ((prev = fy_node_mapping_iterate(node, &iter2)) != pair) {
            size_t plen = 0;
            const char *pkey = s_scalar(fy_node_pair_key(prev), &plen);
            if (pkey && plen == keylen && !memcmp(pkey, key, keylen)) {
                snprintf(kpath, sizeof(kpath), "%s.%.*s", path, (int)(keylen > 64 ? 64 : keylen),
                         key);
                return rf_yaml_error(c, keyline, kpath, "duplicate key (first given on line %d)",
                                     rf_yaml_node_line(fy_node_pair_key(prev), line));
            }
        }
    }
    return 0;
}

int rf_yaml_sequence(const rf_yctx_t *c, struct fy_node *node, const char *path, int line,
                     size_t max)
{
    char got[128];
    int rc;

    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    if (!node || fy_node_get_type(node) != FYNT_SEQUENCE)
        return rf_yaml_error(c, line, path, "expected a sequence, got %s",
                             s_got(node, got, sizeof(got)));
    if ((size_t)fy_node_sequence_item_count(node) > max)
        return rf_yaml_error(c, line, path, "more than %zu items", max);
    return 0;
}

rf_yfield_t *rf_yaml_field(rf_yfield_t *fields, size_t nfields, const char *key)
{
    size_t i;

    for (i = 0; i < nfields; i++)
        if (!strcmp(fields[i].key, key))
            return &fields[i];
    return NULL;
}

int rf_yaml_missing(const rf_yctx_t *c, const char *map_path, const char *key, int map_line)
{
    char path[RF_YAML_PATH_MAX];

    return rf_yaml_error(c, map_line, rf_yaml_path(path, sizeof(path), map_path, key),
                         "required key missing");
}

/* ---- scalars -------------------------------------------------------------------------------- */

bool rf_yaml_parse_int(const char *text, int64_t *out)
{
    char *end = NULL;
    long long v;

    /* Base 10 only, no sign but '-', no leading zeros that YAML 1.1 would read as octal. */
    if (!text[0] || isspace((unsigned char)text[0]) || text[0] == '+')
        return false;
    if (text[0] == '0' && text[1] != '\0')
        return false;
    if (text[0] == '-' && (text[1] == '0' || text[1] == '\0'))
        return false;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

bool rf_yaml_parse_float(const char *text, double *out)
{
    char *end = NULL;
    double v;
    const char *p;

    /* Decimal digits, '.', sign and exponent only: strtod would also take "nan", "inf", hex. */
    if (!text[0])
        return false;
    for (p = text; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr(".-+eE", *p))
            return false;
    errno = 0;
    v = strtod(text, &end);
    if (errno || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* The node's text when it is a plain scalar (what numbers and bools must be), else NULL. Copies
 * into buf because libfyaml's text is not NUL-terminated. */
static const char *s_plain_text(struct fy_node *node, char *buf, size_t size)
{
    size_t len = 0;
    const char *s = s_scalar(node, &len);

    if (!s || fy_node_get_style(node) != FYNS_PLAIN || len >= size || s_is_null(node))
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

int rf_yaml_int(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, int64_t min,
                int64_t max, int64_t *out)
{
    char text[64], got[160];
    int64_t v = 0;
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    if (!s_plain_text(node, text, sizeof(text)) || !rf_yaml_parse_int(text, &v) || v < min ||
        v > max)
        return rf_yaml_error(c, line, path, "expected an integer in %lld..%lld, got %s",
                             (long long)min, (long long)max, s_got(node, got, sizeof(got)));
    *out = v;
    return 0;
}

int rf_yaml_uint64(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                   uint64_t *out)
{
    char text[64], got[160];
    char *end = NULL;
    unsigned long long v = 0;
    int rc;
    bool ok;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    ok = s_plain_text(node, text, sizeof(text)) != NULL && isdigit((unsigned char)text[0]) &&
         !(text[0] == '0' && text[1] != '\0');
    if (ok) {
        errno = 0;
        v = strtoull(text, &end, 10);
        ok = errno == 0 && *end == '\0';
    }
    if (!ok)
        return rf_yaml_error(c, line, path, "expected a non-negative integer up to %llu, got %s",
                             (unsigned long long)UINT64_MAX, s_got(node, got, sizeof(got)));
    *out = (uint64_t)v;
    return 0;
}

int rf_yaml_float(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, double min,
                  bool min_open, double max, double *out)
{
    char text[64], got[160];
    double v = 0;
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    if (!s_plain_text(node, text, sizeof(text)) || !rf_yaml_parse_float(text, &v) ||
        (min_open ? v <= min : v < min) || v > max) {
        if (min_open)
            return rf_yaml_error(c, line, path,
                                 "expected a number greater than %g and at most %g, got %s", min,
                                 max, s_got(node, got, sizeof(got)));
        return rf_yaml_error(c, line, path, "expected a number in %g..%g, got %s", min, max,
                             s_got(node, got, sizeof(got)));
    }
    *out = v;
    return 0;
}

int rf_yaml_bool(const rf_yctx_t *c, struct fy_node *node, int line, const char *path, bool *out)
{
    char text[16], got[160];
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    /* true/false only: YAML 1.1's yes/no/on/off surprise people ("no" as a country code). */
    if (s_plain_text(node, text, sizeof(text)) && !strcmp(text, "true")) {
        *out = true;
        return 0;
    }
    if (s_plain_text(node, text, sizeof(text)) && !strcmp(text, "false")) {
        *out = false;
        return 0;
    }
    return rf_yaml_error(c, line, path, "expected true or false, got %s",
                         s_got(node, got, sizeof(got)));
}

int rf_yaml_string(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                   bool allow_empty, size_t maxlen, char **out)
{
    char got[160];
    size_t len = 0, i;
    const char *s;
    char *copy;
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    s = s_scalar(node, &len);
    if (!s || s_is_null(node))
        return rf_yaml_error(c, line, path, "expected a string, got %s",
                             s_got(node, got, sizeof(got)));
    if (len == 0 && !allow_empty)
        return rf_yaml_error(c, line, path, "must not be empty");
    if (len > maxlen)
        return rf_yaml_error(c, line, path, "longer than %zu bytes", maxlen);
    for (i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return rf_yaml_error(c, line, path, "control character (byte 0x%02x) in the value",
                                 (unsigned)(unsigned char)s[i]);
    copy = malloc(len + 1);
    if (!copy)
        return rf_yaml_nomem(c);
    memcpy(copy, s, len);
    copy[len] = '\0';
    *out = copy;
    return 0;
}

bool rf_yaml_choice_has(const char *choices, const char *word)
{
    size_t wlen = strlen(word);
    const char *p = choices;

    while (*p) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == wlen && !memcmp(p, word, n))
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

int rf_yaml_enum(const rf_yctx_t *c, struct fy_node *node, int line, const char *path,
                 const char *choices, char **out)
{
    char got[160];
    char *text = NULL;
    size_t len = 0;
    int rc;

    line = rf_yaml_node_line(node, line);
    rc = s_check_plain_yaml(c, node, line, path);
    if (rc)
        return rc;
    if (!s_scalar(node, &len) || s_is_null(node))
        return rf_yaml_error(c, line, path, "expected one of %s, got %s", choices,
                             s_got(node, got, sizeof(got)));
    rc = rf_yaml_string(c, node, line, path, true, 256, &text);
    if (rc)
        return rc;
    if (!rf_yaml_choice_has(choices, text)) {
        /* Quoting a choice is fine, so say only what it was. */
        rc = rf_yaml_error(c, line, path, "expected one of %s, got '%.*s%s'", choices, S_GOT_MAX,
                           text, strlen(text) > S_GOT_MAX ? "..." : "");
        free(text);
        return rc;
    }
    *out = text;
    return 0;
}
