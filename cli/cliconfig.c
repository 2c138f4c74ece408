/* cliconfig.c - the `reelfarm` command's own settings file, cli.yaml, and the precedence rules for
 * the coordinator endpoint and the keys folder.
 *
 * The file lives at $XDG_CONFIG_HOME/reelfarm/cli.yaml (or ~/.config/reelfarm/cli.yaml):
 *
 *   version: 1
 *   coordinator: tcp://render-head:7601
 *   keys: /home/me/.config/reelfarm/keys     # optional; relative paths are against the file's
 * folder
 *
 * It is read only when a setting is not given by a flag or the environment, so a broken file never
 * stands in the way of `--coordinator`. A missing file is not an error; anything else wrong with it
 * is one line naming the file, the line and the key (RF_ECONFIG, exit 2). libfyaml is used
 * directly: config/yamlread.h is private to config/.
 */
#include "cli.h"

#include <errno.h>
#include <libfyaml.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define S_CONFIG_MAX_BYTES (64 * 1024) /* a cli.yaml larger than this is refused */

static void s_diag_silent(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    (void)diag;
    (void)user;
    (void)buf;
    (void)len;
}

/* $XDG_CONFIG_HOME/reelfarm (an absolute XDG_CONFIG_HOME only, as XDG says), else
 * $HOME/.config/reelfarm. */
int rf_cli_config_dir(char *out, size_t size, rf_err_t *err)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, size, "%s/reelfarm", xdg);
    else if (home && *home)
        n = snprintf(out, size, "%s/.config/reelfarm", home);
    else
        return rf_err_set(err, RF_ECONFIG,
                          "neither XDG_CONFIG_HOME nor HOME is set: cannot find the reelfarm "
                          "configuration folder");
    if (n < 0 || (size_t)n >= size)
        return rf_err_set(err, RF_ECONFIG, "the configuration folder path is too long");
    return 0;
}

/* The 1-based line of a scalar (keys are scalars); 1 for anything else: libfyaml 0.7 records no
 * start mark for collections. */
static int s_line(struct fy_node *node)
{
    struct fy_token *tok =
        node && fy_node_get_type(node) == FYNT_SCALAR ? fy_node_get_scalar_token(node) : NULL;
    const struct fy_mark *m = tok ? fy_token_start_mark(tok) : NULL;
    return m ? m->line + 1 : 1;
}

/* A plain or quoted scalar's text, NUL-terminated into out. */
static int s_scalar(const char *path, struct fy_node *v, int line, const char *key, char *out,
                    size_t size, rf_err_t *err)
{
    size_t len = 0;
    const char *text = NULL;
    if (v && fy_node_get_type(v) == FYNT_SCALAR && fy_node_get_style(v) != FYNS_ALIAS)
        text = fy_node_get_scalar(v, &len);
    if (!text || len == 0)
        return rf_err_set(err, RF_ECONFIG, "%s:%d: key '%s': expected a non-empty string", path,
                          line, key);
    if (len >= size)
        return rf_err_set(err, RF_ECONFIG, "%s:%d: key '%s': longer than %zu bytes", path, line,
                          key, size - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20)
            return rf_err_set(err, RF_ECONFIG, "%s:%d: key '%s': control characters in the value",
                              path, line, key);
    memcpy(out, text, len);
    out[len] = '\0';
    return 0;
}

static int s_parse(const char *path, const char *text, size_t len, rf_cli_config_t *cfg,
                   rf_err_t *err)
{
    int rc = 0;
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg;
    struct fy_diag *diag = NULL;
    struct fy_parser *parser = NULL;
    struct fy_document *doc = NULL;
    bool seen_version = false, seen_coordinator = false, seen_keys = false, seen_blobs = false;

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = s_diag_silent;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (!diag) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    fy_diag_set_collect_errors(diag, true);
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET | FYPCF_ALLOW_DUPLICATE_KEYS | FYPCF_DEFAULT_VERSION_1_2;
    pcfg.diag = diag;
    parser = fy_parser_create(&pcfg);
    if (!parser || fy_parser_set_string(parser, text, len) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    doc = fy_parse_load_document(parser);
    if (fy_diag_got_error(diag) || fy_parser_get_stream_error(parser)) {
        void *iter = NULL;
        struct fy_diag_error *e = fy_diag_errors_iterate(diag, &iter);
        rc = rf_err_set(err, RF_ECONFIG, "%s:%d: invalid YAML: %s", path,
                        e && e->line > 0 ? e->line : 1, e && e->msg ? e->msg : "parse error");
        goto cleanup;
    }
    struct fy_node *root = doc ? fy_document_root(doc) : NULL;
    if (!root || fy_node_get_type(root) != FYNT_MAPPING) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "%s:%d: expected a mapping of keys starting with 'version: 1'", path,
                        s_line(root));
        goto cleanup;
    }
    void *iter = NULL;
    struct fy_node_pair *pair;
    while ((pair = fy_node_mapping_iterate(root, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        struct fy_node *v = fy_node_pair_value(pair);
        int line = s_line(k);
        const char *key = k && fy_node_get_type(k) == FYNT_SCALAR ? fy_node_get_scalar0(k) : NULL;
        if (!key) {
            rc = rf_err_set(err, RF_ECONFIG, "%s:%d: expected a plain key", path, line);
            goto cleanup;
        }
        bool *seen = !strcmp(key, "version")       ? &seen_version
                     : !strcmp(key, "coordinator") ? &seen_coordinator
                     : !strcmp(key, "keys")        ? &seen_keys
                     : !strcmp(key, "blobs")       ? &seen_blobs
                                                   : NULL;
        if (!seen) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "%s:%d: key '%s': unknown key (expected version, coordinator, blobs, keys)",
                            path, line, key);
            goto cleanup;
        }
        if (*seen) {
            rc = rf_err_set(err, RF_ECONFIG, "%s:%d: key '%s': given twice", path, line, key);
            goto cleanup;
        }
        *seen = true;
        if (seen == &seen_version) {
            const char *ver =
                v && fy_node_get_type(v) == FYNT_SCALAR && fy_node_get_style(v) == FYNS_PLAIN
                    ? fy_node_get_scalar0(v)
                    : NULL;
            if (!ver || strcmp(ver, "1")) {
                rc = rf_err_set(err, RF_ECONFIG, "%s:%d: key 'version': expected 1, got '%s'", path,
                                line, ver ? ver : "not a number");
                goto cleanup;
            }
        } else if (seen == &seen_coordinator || seen == &seen_blobs) {
            char *ep = seen == &seen_blobs ? cfg->blobs : cfg->coordinator;
            rc = s_scalar(path, v, line, key, ep, sizeof(cfg->coordinator), err);
            if (rc)
                goto cleanup;
            if (!strstr(ep, "://")) {
                rc = rf_err_set(err, RF_ECONFIG,
                                "%s:%d: key '%s': expected an endpoint like tcp://HOST:%s, got '%s'",
                                path, line, key, seen == &seen_blobs ? "7602" : "7601", ep);
                goto cleanup;
            }
        } else {
            char keys[PATH_MAX];
            rc = s_scalar(path, v, line, key, keys, sizeof(keys), err);
            if (rc)
                goto cleanup;
            /* Relative to the file's own folder, so the file means the same from any cwd. */
            int n;
            if (keys[0] == '/') {
                n = snprintf(cfg->keys, sizeof(cfg->keys), "%s", keys);
            } else {
                const char *slash = strrchr(path, '/');
                int dirlen = slash ? (int)(slash - path) : 1;
                n = snprintf(cfg->keys, sizeof(cfg->keys), "%.*s/%s", dirlen, slash ? path : ".",
                             keys);
            }
            if (n < 0 || (size_t)n >= sizeof(cfg->keys)) {
                rc = rf_err_set(err, RF_ECONFIG, "%s:%d: key 'keys': path too long", path, line);
                goto cleanup;
            }
        }
    }
    if (!seen_version)
        rc = rf_err_set(err, RF_ECONFIG,
                        "%s:1: key 'version': required key missing (add "
                        "'version: 1')",
                        path);
cleanup:
    if (doc)
        fy_parse_document_destroy(parser, doc);
    if (parser)
        fy_parser_destroy(parser);
    if (diag)
        fy_diag_destroy(diag);
    return rc;
}

int rf_cli_config_load(rf_cli_config_t *cfg, rf_err_t *err)
{
    char dir[PATH_MAX];
    memset(cfg, 0, sizeof(*cfg));
    int rc = rf_cli_config_dir(dir, sizeof(dir), err);
    if (rc)
        return rc;
    int n = snprintf(cfg->path, sizeof(cfg->path), "%s/cli.yaml", dir);
    if (n < 0 || (size_t)n >= sizeof(cfg->path))
        return rf_err_set(err, RF_ECONFIG, "the configuration file path is too long");
    FILE *f = fopen(cfg->path, "rb");
    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR) {
            cfg->path[0] = '\0'; /* no file: nothing set */
            return 0;
        }
        return rf_err_set(err, RF_ECONFIG, "'%s': cannot open: %s", cfg->path, strerror(errno));
    }
    char *text = malloc(S_CONFIG_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, S_CONFIG_MAX_BYTES + 1, f) : 0;
    bool bad_read = ferror(f);
    fclose(f);
    if (!text)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    if (bad_read)
        rc = rf_err_set(err, RF_ECONFIG, "'%s': cannot read it", cfg->path);
    else if (len > S_CONFIG_MAX_BYTES)
        rc = rf_err_set(err, RF_ECONFIG, "'%s': larger than %d bytes", cfg->path,
                        S_CONFIG_MAX_BYTES);
    else
        rc = s_parse(cfg->path, text, len, cfg, err);
    free(text);
    return rc;
}

int rf_cli_resolve_endpoint(const char *flag, char *out, size_t size, rf_err_t *err)
{
    const char *env = getenv("REELFARM_COORDINATOR");
    const char *chosen = flag && *flag ? flag : env && *env ? env : NULL;
    rf_cli_config_t cfg;
    if (!chosen) {
        int rc = rf_cli_config_load(&cfg, err);
        if (rc)
            return rc;
        chosen = cfg.coordinator[0] ? cfg.coordinator : RF_DEFAULT_CLIENT_ENDPOINT;
    }
    int n = snprintf(out, size, "%s", chosen);
    if (n < 0 || (size_t)n >= size)
        return rf_err_set(err, RF_EINVAL, "coordinator endpoint longer than %zu bytes", size - 1);
    return 0;
}

int rf_cli_resolve_blobs(const char *flag, char *out, size_t size, rf_err_t *err)
{
    const char *env = getenv("REELFARM_BLOBS");
    const char *chosen = flag && *flag ? flag : env && *env ? env : NULL;
    rf_cli_config_t cfg;
    if (!chosen) {
        int rc = rf_cli_config_load(&cfg, err);
        if (rc)
            return rc;
        chosen = cfg.blobs;
    }
    int n = snprintf(out, size, "%s", chosen);
    if (n < 0 || (size_t)n >= size)
        return rf_err_set(err, RF_EINVAL, "blob endpoint longer than %zu bytes", size - 1);
    return 0;
}

int rf_cli_curve(rf_zsec_t *z, rf_err_t *err)
{
    char dir[PATH_MAX], key[PATH_MAX + 80], server[PATH_MAX + 32];
    const char *env = getenv("REELFARM_KEYS");
    const char *name = getenv("REELFARM_KEY_NAME");
    memset(z, 0, sizeof(*z));
    if (env && *env) {
        if (snprintf(dir, sizeof(dir), "%s", env) >= (int)sizeof(dir))
            return rf_err_set(err, RF_ECONFIG, "REELFARM_KEYS: path too long");
    } else if (rf_cli_keys_dir(dir, sizeof(dir), NULL) != 0) {
        /* A broken cli.yaml must not stand in the way of --coordinator (see the top): its keys:
         * is then not known, and the default folder is used. A coordinator that wants keys this
         * folder lacks refuses the handshake with a message saying so. */
        char base[PATH_MAX];
        int rc = rf_cli_config_dir(base, sizeof(base), err);
        if (rc)
            return rc;
        if (snprintf(dir, sizeof(dir), "%s/keys", base) >= (int)sizeof(dir))
            return rf_err_set(err, RF_ECONFIG, "the keys folder path is too long");
    }
    if (!name || !*name)
        name = "client";
    if (!rf_zsec_name_valid(name))
        return rf_err_set(err, RF_ECONFIG,
                          "REELFARM_KEY_NAME '%s' is not 1..64 letters, digits, '-', '_' or '.'", name);
    snprintf(server, sizeof(server), "%s/coordinator.pub", dir);
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    if (access(server, F_OK) != 0)
        return 0; /* no coordinator key: plaintext (a loopback farm without keys) */
    return rf_zsec_client_load(z, key, server, err);
}

int rf_cli_keys_dir(char *out, size_t size, rf_err_t *err)
{
    rf_cli_config_t cfg;
    int rc = rf_cli_config_load(&cfg, err);
    if (rc)
        return rc;
    int n;
    if (cfg.keys[0]) {
        n = snprintf(out, size, "%s", cfg.keys);
    } else {
        char dir[PATH_MAX];
        rc = rf_cli_config_dir(dir, sizeof(dir), err);
        if (rc)
            return rc;
        n = snprintf(out, size, "%s/keys", dir);
    }
    if (n < 0 || (size_t)n >= size)
        return rf_err_set(err, RF_ECONFIG, "the keys folder path is too long");
    return 0;
}
