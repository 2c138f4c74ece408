/* daemon.c - coordinator and worker configs: defaults, then an optional YAML file on top.
 *
 * Same rules as job specs (yamlread.h): `version: 1` is required in a file, unknown keys, wrong
 * types and out-of-range values are errors naming file, line and key. Command-line flags are laid
 * over the result by each main.c with rf_config_set_string and plain assignments.
 */
#include "config.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yamlread.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define S_MAX_MEDIA_ROOTS 64
#define S_MAX_PASS_DIRS 16
#define S_ENDPOINT_MAX 512
#define S_NAME_MAX 128
#define S_BLOB_PORT "7602" /* DESIGN §3: the coordinator's blob socket */
#define S_LOG_LEVELS "debug|info|warn|error"
#define S_DECODE_MODES "auto|cpu|nvdec" /* media.h rf_decode_mode_parse */

/* What a loader needs besides the message context: the folder relative paths resolve against. */
typedef struct s_file {
    rf_yctx_t c;
    char *text;
    size_t len;
    char *base_dir; /* realpath of the file's folder */
    rf_ydoc_t doc;
} s_file_t;

int rf_config_set_string(char **field, const char *value)
{
    char *copy = NULL;

    assert(field);
    if (value) {
        copy = strdup(value);
        if (!copy)
            return RF_ENOMEM;
    }
    free(*field);
    *field = copy;
    return 0;
}

/* ---- shared pieces -------------------------------------------------------------------------- */

/* Reads and parses path, checks `version: 1`, and fills fields from the root mapping. */
static int s_file_open(s_file_t *f, const char *path, rf_err_t *err, rf_yfield_t *fields,
                       size_t nfields)
{
    const char *slash;
    char *folder = NULL;
    rf_yfield_t *version;
    int64_t v = 0;
    size_t n;
    int line, rc;

    memset(f, 0, sizeof(*f));
    f->c.source = path;
    f->c.err = err;
    rc = rf_yaml_read_file(path, &f->text, &f->len, err);
    if (rc)
        goto cleanup;
    slash = strrchr(path, '/');
    n = slash ? (size_t)(slash - path) : 0;
    folder = slash ? strndup(path, n ? n : 1) : strdup(".");
    if (!folder) {
        rc = rf_yaml_nomem(&f->c);
        goto cleanup;
    }
    f->base_dir = realpath(folder, NULL);
    if (!f->base_dir) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot resolve its folder", path);
        goto cleanup;
    }
    rc = rf_yaml_parse(&f->c, f->text, f->len, &f->doc);
    if (rc)
        goto cleanup;
    line = rf_yaml_node_line(f->doc.root, 1);
    rc = rf_yaml_mapping(&f->c, f->doc.root, "", line, fields, nfields);
    if (rc)
        goto cleanup;
    version = rf_yaml_field(fields, nfields, "version");
    assert(version);
    if (!version->node) {
        rc = rf_yaml_missing(&f->c, "", "version", line);
        goto cleanup;
    }
    rc = rf_yaml_int(&f->c, version->node, version->line, "version", 0, INT_MAX, &v);
    if (rc)
        goto cleanup;
    if (v != 1)
        rc = rf_yaml_error(&f->c, rf_yaml_node_line(version->node, version->line), "version",
                           "unsupported version %lld (this build reads version 1)", (long long)v);
cleanup:
    free(folder);
    return rc;
}

static void s_file_close(s_file_t *f)
{
    rf_yaml_release(&f->doc);
    free(f->text);
    free(f->base_dir);
    memset(f, 0, sizeof(*f));
}

/* tcp://HOST:PORT (HOST a name, an address, [v6] or *) or ipc://PATH. */
static bool s_endpoint_valid(const char *ep)
{
    const char *host, *colon, *p;
    long port;

    if (!strncmp(ep, "ipc://", 6))
        return ep[6] != '\0';
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    host = ep + 6;
    colon = strrchr(host, ':');
    if (!colon || colon == host)
        return false;
    for (p = host; p < colon; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_*[]:", *p))
            return false;
    if (!colon[1] || strlen(colon + 1) > 5)
        return false;
    for (p = colon + 1; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    port = strtol(colon + 1, NULL, 10);
    return port >= 1 && port <= 65535;
}

static int s_endpoint(s_file_t *f, rf_yfield_t *field, const char *path, char **out)
{
    char *text = NULL;
    int rc;

    rc = rf_yaml_string(&f->c, field->node, field->line, path, false, S_ENDPOINT_MAX, &text);
    if (rc)
        return rc;
    if (!s_endpoint_valid(text)) {
        rc = rf_yaml_error(&f->c, rf_yaml_node_line(field->node, field->line), path,
                           "expected an endpoint such as tcp://127.0.0.1:7600 or "
                           "ipc:///run/reelfarm/workers.sock, got '%s'",
                           text);
        free(text);
        return rc;
    }
    free(*out);
    *out = text;
    return 0;
}

/* A folder: relative ones resolve against the config file's folder. */
static int s_folder(s_file_t *f, rf_yfield_t *field, const char *path, char **out)
{
    char *raw = NULL, *abs;
    int rc;

    rc = rf_yaml_string(&f->c, field->node, field->line, path, false, PATH_MAX, &raw);
    if (rc)
        return rc;
    abs = rf_yaml_path_resolve(f->base_dir, raw);
    free(raw);
    if (!abs)
        return rf_yaml_nomem(&f->c);
    free(*out);
    *out = abs;
    return 0;
}

static int s_int_field(s_file_t *f, rf_yfield_t *field, const char *path, int64_t min, int64_t max,
                       int *out)
{
    int64_t v = 0;
    int rc;

    if (!field->node)
        return 0;
    rc = rf_yaml_int(&f->c, field->node, field->line, path, min, max, &v);
    if (rc == 0)
        *out = (int)v;
    return rc;
}

static int s_log_level(s_file_t *f, rf_yfield_t *field, char **out)
{
    char *level = NULL;
    int rc;

    if (!field->node)
        return 0;
    rc = rf_yaml_enum(&f->c, field->node, field->line, "log_level", S_LOG_LEVELS, &level);
    if (rc)
        return rc;
    free(*out);
    *out = level;
    return 0;
}

/* ---- coordinator ---------------------------------------------------------------------------- */

static int s_coordinator_defaults(rf_coordinator_config_t *cfg)
{
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 5;
    cfg->task_timeout_s = 600;
    cfg->max_attempts = 3;
    cfg->limits.message_bytes = 1024 * 1024;
    cfg->limits.spec_bytes = RF_SPEC_MAX_BYTES;
    cfg->limits.chunks_per_job = 10000;
    cfg->limits.jobs_per_client = 100;
    cfg->limits.blob_bytes = 64LL << 30;
    cfg->limits.blob_uploads = 256;
    if (rf_config_set_string(&cfg->source, "") ||
        rf_config_set_string(&cfg->listen_workers, "tcp://127.0.0.1:7600") ||
        rf_config_set_string(&cfg->listen_clients, "tcp://127.0.0.1:7601") ||
        rf_config_set_string(&cfg->listen_blobs, "tcp://127.0.0.1:7602") ||
        rf_config_set_string(&cfg->log_level, "info") ||
        rf_config_set_string(&cfg->http_listen, "127.0.0.1:7603"))
        return RF_ENOMEM;
    return 0;
}

/* http: {listen: HOST:PORT, token_file: PATH, web_dir: PATH}. The address is checked for form
 * here; whether it is loopback (and so needs no token) is checked when the server binds. */
static int s_http(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    rf_yfield_t h[] = {{.key = "listen"}, {.key = "token_file"}, {.key = "web_dir"}};
    char *text = NULL;
    int rc;

    rc = rf_yaml_mapping(&f->c, field->node, "http", field->line, h, S_COUNT(h));
    if (rc == 0 && h[0].node) {
        rc = rf_yaml_string(&f->c, h[0].node, h[0].line, "http.listen", true, S_ENDPOINT_MAX,
                            &text);
        if (rc == 0 && *text) {
            const char *colon = strrchr(text, ':');
            const char *p = colon ? colon + 1 : NULL;
            bool ok = colon && colon != text && *p && strlen(p) <= 5;
            for (; ok && *p; p++)
                ok = isdigit((unsigned char)*p);
            if (!ok || strtol(colon + 1, NULL, 10) > 65535) {
                rc = rf_yaml_error(&f->c, rf_yaml_node_line(h[0].node, h[0].line), "http.listen",
                                   "expected HOST:PORT such as 127.0.0.1:7603 (\"\" disables "
                                   "http), got '%s'",
                                   text);
            }
        }
        if (rc == 0) {
            free(cfg->http_listen);
            cfg->http_listen = text;
            text = NULL;
        }
        free(text);
    }
    if (rc == 0 && h[1].node)
        rc = s_folder(f, &h[1], "http.token_file", &cfg->http_token_file);
    if (rc == 0 && h[2].node)
        rc = s_folder(f, &h[2], "http.web_dir", &cfg->http_web_dir);
    return rc;
}

/* signing: {key, cert, chain, dir}: C2PA signing (docs/PROVENANCE.md). key and cert go together. */
static int s_signing(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    rf_yfield_t g[] = {{.key = "key"}, {.key = "cert"}, {.key = "chain"}, {.key = "dir"}};
    char **targets[] = {&cfg->signing_key, &cfg->signing_cert, &cfg->signing_chain,
                        &cfg->signing_dir};
    char path[RF_YAML_PATH_MAX];
    int rc = rf_yaml_mapping(&f->c, field->node, "signing", field->line, g, S_COUNT(g));
    for (size_t i = 0; rc == 0 && i < S_COUNT(g); i++)
        if (g[i].node)
            rc = s_folder(f, &g[i], rf_yaml_path(path, sizeof(path), "signing", g[i].key),
                          targets[i]);
    if (rc == 0 && !g[0].node != !g[1].node)
        rc = rf_yaml_error(&f->c, field->line, "signing",
                           "'key' and 'cert' go together: give both, or neither to let the "
                           "coordinator make a farm CA in signing.dir");
    return rc;
}

/* security: {key: PATH, authorized_keys: DIR, insecure: BOOL} (docs/SECURITY.md). Paths resolve
 * against the config file's folder; whether the files are good is checked when they are read. */
static int s_security(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    rf_yfield_t k[] = {{.key = "key"}, {.key = "authorized_keys"}, {.key = "insecure"}};
    int rc = rf_yaml_mapping(&f->c, field->node, "security", field->line, k, S_COUNT(k));
    if (rc == 0 && k[0].node)
        rc = s_folder(f, &k[0], "security.key", &cfg->security_key);
    if (rc == 0 && k[1].node)
        rc = s_folder(f, &k[1], "security.authorized_keys", &cfg->authorized_keys);
    if (rc == 0 && k[2].node)
        rc = rf_yaml_bool(&f->c, k[2].node, k[2].line, "security.insecure", &cfg->insecure);
    return rc;
}

/* limits: each a positive integer within a sane range (docs/SECURITY.md). */
static int s_limits(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    rf_yfield_t l[] = {{.key = "message_bytes"},   {.key = "spec_bytes"},
                       {.key = "chunks_per_job"},  {.key = "jobs_per_client"},
                       {.key = "blob_bytes"},      {.key = "blob_uploads"}};
    int64_t *targets[] = {&cfg->limits.message_bytes,   &cfg->limits.spec_bytes,
                          &cfg->limits.chunks_per_job,  &cfg->limits.jobs_per_client,
                          &cfg->limits.blob_bytes,      &cfg->limits.blob_uploads};
    /* message_bytes: big enough for a 1000-job list; at most 64 MiB (CURVE copies a frame twice).
     * spec_bytes: at most the loader's own cap. blob_uploads: the server's table size. */
    const int64_t mins[] = {64 * 1024, 1024, 1, 1, 1, 1};
    const int64_t maxs[] = {64LL << 20, RF_SPEC_MAX_BYTES, 1000000, 1000000, 64LL << 30, 256};
    char path[RF_YAML_PATH_MAX];
    int rc = rf_yaml_mapping(&f->c, field->node, "limits", field->line, l, S_COUNT(l));
    for (size_t i = 0; rc == 0 && i < S_COUNT(l); i++)
        if (l[i].node)
            rc = rf_yaml_int(&f->c, l[i].node, l[i].line, rf_yaml_path(path, sizeof(path), "limits", l[i].key),
                             mins[i], maxs[i], targets[i]);
    return rc;
}

static int s_listen(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    rf_yfield_t l[] = {{.key = "workers"}, {.key = "clients"}, {.key = "blobs"}};
    char **targets[] = {&cfg->listen_workers, &cfg->listen_clients, &cfg->listen_blobs};
    char path[RF_YAML_PATH_MAX];
    size_t i;
    int rc;

    rc = rf_yaml_mapping(&f->c, field->node, "listen", field->line, l, S_COUNT(l));
    for (i = 0; rc == 0 && i < S_COUNT(l); i++)
        if (l[i].node)
            rc = s_endpoint(f, &l[i], rf_yaml_path(path, sizeof(path), "listen", l[i].key),
                            targets[i]);
    return rc;
}

static int s_media_roots(s_file_t *f, rf_yfield_t *field, rf_coordinator_config_t *cfg)
{
    char path[RF_YAML_PATH_MAX];
    void *iter = NULL;
    size_t n, i;
    int rc;

    rc = rf_yaml_sequence(&f->c, field->node, "media_roots", field->line, S_MAX_MEDIA_ROOTS);
    if (rc)
        return rc;
    n = (size_t)fy_node_sequence_item_count(field->node);
    cfg->media_roots = calloc(n ? n : 1, sizeof(*cfg->media_roots));
    if (!cfg->media_roots)
        return rf_yaml_nomem(&f->c);
    for (i = 0; i < n; i++) {
        struct fy_node *item = fy_node_sequence_iterate(field->node, &iter);
        char *root = NULL;

        rf_yaml_path_index(path, sizeof(path), "media_roots", i);
        rc = rf_yaml_string(&f->c, item, field->line, path, false, PATH_MAX, &root);
        if (rc)
            return rc;
        cfg->media_roots[cfg->nmedia_roots++] = root;
        /* Absolute only: a root is a security boundary (DESIGN §9), so it must not depend on the
         * folder the coordinator happens to start in. */
        if (root[0] != '/')
            return rf_yaml_error(&f->c, rf_yaml_node_line(item, field->line), path,
                                 "expected an absolute path, got '%s'", root);
        rf_yaml_path_normalize(root);
    }
    return 0;
}

int rf_coordinator_config_load(const char *path, rf_coordinator_config_t **out, rf_err_t *err)
{
    rf_yfield_t f[] = {{.key = "version"},      {.key = "state_dir"},   {.key = "listen"},
                       {.key = "heartbeat_ms"}, {.key = "liveness"},    {.key = "task_timeout_s"},
                       {.key = "max_attempts"}, {.key = "media_roots"}, {.key = "log_level"},
                       {.key = "verify"}, {.key = "http"}, {.key = "shared_blobs"},
                       {.key = "signing"}, {.key = "security"}, {.key = "limits"}};
    rf_coordinator_config_t *cfg = NULL;
    s_file_t file;
    int rc = 0;

    assert(out);
    *out = NULL;
    memset(&file, 0, sizeof(file));
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || s_coordinator_defaults(cfg) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "coordinator config: out of memory");
        goto cleanup;
    }
    if (!path)
        goto done;
    rc = s_file_open(&file, path, err, f, S_COUNT(f));
    if (rc)
        goto cleanup;
    if (rf_config_set_string(&cfg->source, path)) {
        rc = rf_yaml_nomem(&file.c);
        goto cleanup;
    }
    if (f[1].node && (rc = s_folder(&file, &f[1], "state_dir", &cfg->state_dir)) != 0)
        goto cleanup;
    if (f[2].node && (rc = s_listen(&file, &f[2], cfg)) != 0)
        goto cleanup;
    rc = s_int_field(&file, &f[3], "heartbeat_ms", 100, 60000, &cfg->heartbeat_ms);
    if (rc == 0)
        rc = s_int_field(&file, &f[4], "liveness", 2, 100, &cfg->liveness);
    if (rc == 0)
        rc = s_int_field(&file, &f[5], "task_timeout_s", 10, 86400, &cfg->task_timeout_s);
    if (rc == 0)
        rc = s_int_field(&file, &f[6], "max_attempts", 1, 20, &cfg->max_attempts);
    if (rc == 0 && f[7].node)
        rc = s_media_roots(&file, &f[7], cfg);
    if (rc == 0)
        rc = s_log_level(&file, &f[8], &cfg->log_level);
    if (rc == 0 && f[9].node) {
        char *mode = NULL;
        rc = rf_yaml_enum(&file.c, f[9].node, f[9].line, "verify", "full|sample", &mode);
        if (rc == 0)
            cfg->verify_sample = !strcmp(mode, "sample");
        free(mode);
    }
    if (rc == 0 && f[10].node)
        rc = s_http(&file, &f[10], cfg);
    if (rc == 0 && f[11].node)
        rc = s_folder(&file, &f[11], "shared_blobs", &cfg->shared_blobs);
    if (rc == 0 && f[12].node)
        rc = s_signing(&file, &f[12], cfg);
    if (rc == 0 && f[13].node)
        rc = s_security(&file, &f[13], cfg);
    if (rc == 0 && f[14].node)
        rc = s_limits(&file, &f[14], cfg);
    if (rc)
        goto cleanup;
done:
    *out = cfg;
    cfg = NULL;
cleanup:
    s_file_close(&file);
    rf_coordinator_config_destroy(&cfg);
    return rc;
}

void rf_coordinator_config_destroy(rf_coordinator_config_t **cfgp)
{
    rf_coordinator_config_t *cfg;
    size_t i;

    if (!cfgp || !*cfgp)
        return;
    cfg = *cfgp;
    free(cfg->source);
    free(cfg->state_dir);
    free(cfg->listen_workers);
    free(cfg->listen_clients);
    free(cfg->listen_blobs);
    free(cfg->http_listen);
    free(cfg->http_token_file);
    free(cfg->http_web_dir);
    free(cfg->shared_blobs);
    free(cfg->signing_key);
    free(cfg->signing_cert);
    free(cfg->signing_chain);
    free(cfg->signing_dir);
    free(cfg->security_key);
    free(cfg->authorized_keys);
    for (i = 0; i < cfg->nmedia_roots; i++)
        free(cfg->media_roots[i]);
    free(cfg->media_roots);
    free(cfg->log_level);
    free(cfg);
    *cfgp = NULL;
}

/* ---- worker --------------------------------------------------------------------------------- */

/* tcp://10.0.0.5:7600 -> tcp://10.0.0.5:7602: the coordinator serves blobs on the next socket
 * of the same host. NULL for an endpoint with no host and port to reuse (ipc://). */
static char *s_blobs_from_coordinator(const char *coordinator)
{
    const char *colon;
    size_t n;
    char *out;

    if (strncmp(coordinator, "tcp://", 6) != 0)
        return NULL;
    colon = strrchr(coordinator + 6, ':');
    if (!colon)
        return NULL;
    n = (size_t)(colon - coordinator) + 1;
    out = malloc(n + sizeof(S_BLOB_PORT));
    if (out) {
        memcpy(out, coordinator, n);
        memcpy(out + n, S_BLOB_PORT, sizeof(S_BLOB_PORT));
    }
    return out;
}

/* pass_dirs: folders of pass plugins (docs/passes.md); relative ones resolve against the config
 * file's folder, like cache_dir. */
static int s_pass_dirs(s_file_t *f, rf_yfield_t *field, rf_worker_config_t *cfg)
{
    char path[RF_YAML_PATH_MAX];
    void *iter = NULL;
    size_t n, i;
    int rc;

    rc = rf_yaml_sequence(&f->c, field->node, "pass_dirs", field->line, S_MAX_PASS_DIRS);
    if (rc)
        return rc;
    n = (size_t)fy_node_sequence_item_count(field->node);
    cfg->pass_dirs = calloc(n ? n : 1, sizeof(*cfg->pass_dirs));
    if (!cfg->pass_dirs)
        return rf_yaml_nomem(&f->c);
    for (i = 0; i < n; i++) {
        rf_yfield_t item = {.key = "pass_dirs",
                            .node = fy_node_sequence_iterate(field->node, &iter),
                            .line = field->line};
        char *dir = NULL;

        rf_yaml_path_index(path, sizeof(path), "pass_dirs", i);
        rc = s_folder(f, &item, path, &dir);
        if (rc)
            return rc;
        cfg->pass_dirs[cfg->npass_dirs++] = dir;
    }
    return 0;
}

int rf_worker_config_add_pass_dir(rf_worker_config_t *cfg, const char *dir)
{
    if (cfg->npass_dirs >= S_MAX_PASS_DIRS)
        return RF_ETOOBIG;
    char **grown = realloc(cfg->pass_dirs, (cfg->npass_dirs + 1) * sizeof(*grown));
    if (!grown)
        return RF_ENOMEM;
    cfg->pass_dirs = grown;
    grown[cfg->npass_dirs] = strdup(dir);
    if (!grown[cfg->npass_dirs])
        return RF_ENOMEM;
    cfg->npass_dirs++;
    return 0;
}

static int s_worker_defaults(rf_worker_config_t *cfg)
{
    char host[256];
    char cache[PATH_MAX];
    const char *xdg = getenv("XDG_CACHE_HOME");

    cfg->slots = 0;
    cfg->drain_grace_s = 60;
    if (gethostname(host, sizeof(host)) != 0 || !host[0])
        snprintf(host, sizeof(host), "worker");
    host[sizeof(host) - 1] = '\0';
    /* XDG says a relative XDG_CACHE_HOME is invalid and must be ignored. */
    if (xdg && xdg[0] == '/' && strlen(xdg) < sizeof(cache) - 16)
        snprintf(cache, sizeof(cache), "%s/reelfarm", xdg);
    else
        snprintf(cache, sizeof(cache), "/tmp/reelfarm-%u", (unsigned)getuid());
    if (rf_config_set_string(&cfg->source, "") ||
        rf_config_set_string(&cfg->coordinator, "tcp://127.0.0.1:7600") ||
        rf_config_set_string(&cfg->name, host) || rf_config_set_string(&cfg->cache_dir, cache) ||
        rf_config_set_string(&cfg->log_level, "info") || rf_config_set_string(&cfg->decode, "auto"))
        return RF_ENOMEM;
    return 0;
}

int rf_worker_config_load(const char *path, rf_worker_config_t **out, rf_err_t *err)
{
    rf_yfield_t f[] = {{.key = "version"},       {.key = "coordinator"}, {.key = "blobs"},
                       {.key = "name"},          {.key = "slots"},       {.key = "cache_dir"},
                       {.key = "drain_grace_s"}, {.key = "log_level"},   {.key = "pass_dirs"},
                       {.key = "shared_blobs"}, {.key = "security"}, {.key = "decode"}};
    rf_worker_config_t *cfg = NULL;
    s_file_t file;
    int rc = 0;

    assert(out);
    *out = NULL;
    memset(&file, 0, sizeof(file));
    cfg = calloc(1, sizeof(*cfg));
    if (!cfg || s_worker_defaults(cfg) != 0) {
        rc = rf_err_set(err, RF_ENOMEM, "worker config: out of memory");
        goto cleanup;
    }
    if (path) {
        rc = s_file_open(&file, path, err, f, S_COUNT(f));
        if (rc)
            goto cleanup;
        if (rf_config_set_string(&cfg->source, path)) {
            rc = rf_yaml_nomem(&file.c);
            goto cleanup;
        }
        if (f[1].node && (rc = s_endpoint(&file, &f[1], "coordinator", &cfg->coordinator)) != 0)
            goto cleanup;
        if (f[2].node && (rc = s_endpoint(&file, &f[2], "blobs", &cfg->blobs)) != 0)
            goto cleanup;
        if (f[3].node) {
            char *name = NULL;
            rc = rf_yaml_string(&file.c, f[3].node, f[3].line, "name", false, S_NAME_MAX, &name);
            if (rc)
                goto cleanup;
            free(cfg->name);
            cfg->name = name;
        }
        rc = s_int_field(&file, &f[4], "slots", 0, 1024, &cfg->slots);
        if (rc == 0 && f[5].node)
            rc = s_folder(&file, &f[5], "cache_dir", &cfg->cache_dir);
        if (rc == 0)
            rc = s_int_field(&file, &f[6], "drain_grace_s", 0, 86400, &cfg->drain_grace_s);
        if (rc == 0)
            rc = s_log_level(&file, &f[7], &cfg->log_level);
        if (rc == 0 && f[8].node)
            rc = s_pass_dirs(&file, &f[8], cfg);
        if (rc == 0 && f[9].node)
            rc = s_folder(&file, &f[9], "shared_blobs", &cfg->shared_blobs);
        if (rc == 0 && f[10].node) {
            /* security: {key: NAME.key, coordinator_key: coordinator.pub}: CURVE to the coordinator */
            rf_yfield_t k[] = {{.key = "key"}, {.key = "coordinator_key"}};
            rc = rf_yaml_mapping(&file.c, f[10].node, "security", f[10].line, k, S_COUNT(k));
            if (rc == 0 && k[0].node)
                rc = s_folder(&file, &k[0], "security.key", &cfg->security_key);
            if (rc == 0 && k[1].node)
                rc = s_folder(&file, &k[1], "security.coordinator_key", &cfg->coordinator_key);
            if (rc == 0 && !k[0].node != !k[1].node)
                rc = rf_yaml_error(&file.c, f[10].line, "security",
                                   "give both key and coordinator_key, or neither");
        }
        if (rc == 0 && f[11].node) {
            char *mode = NULL;
            rc = rf_yaml_enum(&file.c, f[11].node, f[11].line, "decode", S_DECODE_MODES, &mode);
            if (rc == 0) {
                free(cfg->decode);
                cfg->decode = mode;
            }
        }
        if (rc)
            goto cleanup;
    }
    if (!cfg->blobs) {
        cfg->blobs = s_blobs_from_coordinator(cfg->coordinator);
        if (!cfg->blobs && strncmp(cfg->coordinator, "tcp://", 6) == 0) {
            rc = rf_err_set(err, RF_ENOMEM, "worker config: out of memory");
            goto cleanup;
        }
        if (!cfg->blobs) {
            rc = rf_yaml_error(&file.c, rf_yaml_node_line(f[1].node, f[1].line), "blobs",
                               "required when coordinator is not a tcp:// endpoint (it is '%s')",
                               cfg->coordinator);
            goto cleanup;
        }
    }
    *out = cfg;
    cfg = NULL;
cleanup:
    s_file_close(&file);
    rf_worker_config_destroy(&cfg);
    return rc;
}

void rf_worker_config_destroy(rf_worker_config_t **cfgp)
{
    rf_worker_config_t *cfg;

    if (!cfgp || !*cfgp)
        return;
    cfg = *cfgp;
    free(cfg->source);
    free(cfg->coordinator);
    free(cfg->blobs);
    free(cfg->name);
    free(cfg->cache_dir);
    free(cfg->log_level);
    free(cfg->shared_blobs);
    free(cfg->security_key);
    free(cfg->coordinator_key);
    free(cfg->decode);
    for (size_t i = 0; i < cfg->npass_dirs; i++)
        free(cfg->pass_dirs[i]);
    free(cfg->pass_dirs);
    free(cfg);
    *cfgp = NULL;
}
