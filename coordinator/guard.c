/* guard.c - listen policy, media roots, refused-message metrics (see guard.h). */
#include "guard.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "zsec.h"

#define COMP "coordinator"

static const char *const s_reasons[RF_BAD_NREASONS] = {"parts",   "too_big", "malformed", "unexpected",
                                                       "refused", "handshake"};
static const char *const s_sockets[3] = {"workers", "clients", "blobs"};

const char *rf_guard_reason_name(rf_guard_reason_t r)
{
    return r < RF_BAD_NREASONS ? s_reasons[r] : "unknown";
}

int rf_guard_listen_policy(const rf_coordinator_config_t *cfg, bool secure, rf_err_t *err)
{
    const struct {
        const char *key, *ep;
    } eps[] = {{"listen.workers", cfg->listen_workers},
               {"listen.clients", cfg->listen_clients},
               {"listen.blobs", cfg->listen_blobs}};
    if (secure) {
        RF_INFO(COMP, "CURVE on the worker, client and blob sockets; keys allow-listed from '%s'",
                cfg->authorized_keys);
        return 0;
    }
    bool all_local = true;
    for (size_t i = 0; i < 3; i++) {
        if (rf_zsec_endpoint_local(eps[i].ep))
            continue;
        all_local = false;
        if (!cfg->insecure)
            return rf_err_set(err, RF_EPERM,
                              "%s '%s' is not a loopback address and no CURVE key is configured: "
                              "anyone who can reach it could submit jobs, read outputs or pose as "
                              "a worker. Set security.key and security.authorized_keys "
                              "(docs/SECURITY.md), or pass --insecure to listen in plaintext anyway",
                              eps[i].key, eps[i].ep);
        RF_WARN(COMP, "INSECURE: %s '%s' is reachable from other machines in plaintext, with no "
                      "authentication (--insecure)",
                eps[i].key, eps[i].ep);
    }
    if (all_local)
        RF_INFO(COMP, "no CURVE keys configured (security.key): listening on loopback only, "
                      "plaintext; every local process is trusted");
    return 0;
}

/* Is real (a resolved path) root or inside it? */
static bool s_under(const char *real, const char *root)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return true;
    return !strncmp(real, root, n) && (real[n] == '\0' || real[n] == '/');
}

/* The roots, resolved; a root that does not exist stays as written (nothing can be under it). */
static void s_roots_text(char *const *roots, size_t nroots, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < nroots && used < size; i++) {
        int k = snprintf(out + used, size - used, "%s'%s'", i ? ", " : "", roots[i]);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* Resolves path (or, when it does not exist and may_be_new, its folder) and checks it. */
static int s_check(const char *key, const char *path, bool may_be_new, char *const *roots,
                   size_t nroots, rf_err_t *err)
{
    char real[PATH_MAX], shown[PATH_MAX + 8];
    if (!realpath(path, real)) {
        if (!may_be_new || errno != ENOENT)
            return rf_err_set(err, RF_ENOENT, "key '%s': '%s': %s", key, path, strerror(errno));
        /* A new output file: its folder must exist and be inside a root. */
        char folder[PATH_MAX];
        snprintf(folder, sizeof(folder), "%s", path);
        char *slash = strrchr(folder, '/');
        if (!slash)
            snprintf(folder, sizeof(folder), ".");
        else
            *(slash == folder ? slash + 1 : slash) = '\0';
        if (!realpath(folder, real))
            return rf_err_set(err, RF_ENOENT, "key '%s': folder '%s': %s", key, folder,
                              strerror(errno));
    }
    for (size_t i = 0; i < nroots; i++) {
        char root[PATH_MAX];
        if (realpath(roots[i], root) && s_under(real, root))
            return 0;
    }
    char list[2048];
    s_roots_text(roots, nroots, list, sizeof(list));
    snprintf(shown, sizeof(shown), "%s", real);
    return rf_err_set(err, RF_EPERM,
                      "key '%s': '%s' resolves to '%s', which is outside the coordinator's media "
                      "roots (%s)",
                      key, path, shown, list);
}

int rf_guard_spec_paths(const rf_job_spec_t *spec, char *const *roots, size_t nroots, rf_err_t *err)
{
    if (nroots == 0)
        return 0;
    int rc = s_check("input", spec->input, false, roots, nroots, err);
    if (!rc)
        rc = s_check("output", spec->output, true, roots, nroots, err);
    for (size_t p = 0; !rc && p < spec->npasses; p++) {
        const rf_pass_spec_t *ps = &spec->pipeline[p];
        const rf_pass_def_t *def = rf_pass_find(ps->name);
        for (size_t i = 0; def && !rc && i < ps->nparams; i++) {
            for (size_t d = 0; d < def->nparams; d++) {
                if (def->params[d].type != RF_PARAM_PATH || strcmp(def->params[d].key, ps->params[i].key))
                    continue;
                const char *v = ps->params[i].value;
                if (!v || !*v)
                    continue;
                char key[256];
                snprintf(key, sizeof(key), "pipeline[%zu].%s", p, ps->params[i].key);
                rc = s_check(key, v, false, roots, nroots, err);
            }
        }
    }
    if (!rc && spec->critic.model)
        rc = s_check("critic.model", spec->critic.model, false, roots, nroots, err);
    return rc;
}

void rf_guard_metrics(rf_buf_t *m, const rf_guard_counts_t *counts, const unsigned long zmq_dropped[2],
                      const rf_blob_server_stats_t *blob, const uint64_t http_bad[3],
                      const rf_auth_stats_t *auth)
{
    rf_buf_printf(m, "# HELP reelfarm_bad_messages_total Messages refused where they entered, by "
                     "socket and reason (docs/SECURITY.md).\n"
                     "# TYPE reelfarm_bad_messages_total counter\n");
    for (int s = 0; s < RF_GUARD_NSOCKETS; s++)
        for (int r = 0; r < RF_BAD_NREASONS; r++)
            rf_buf_printf(m, "reelfarm_bad_messages_total{socket=\"%s\",reason=\"%s\"} %" PRIu64 "\n",
                          s_sockets[s], s_reasons[r],
                          counts->bad[s][r] + (r == RF_BAD_PARTS ? (uint64_t)zmq_dropped[s] : 0));
    unsigned long long bv[RF_BAD_NREASONS] = {blob->bad_parts, blob->over_limit, blob->bad_frame, 0,
                                              blob->refused,    blob->handshake};
    for (int r = 0; r < RF_BAD_NREASONS; r++)
        if (r != RF_BAD_UNEXPECTED) /* the blob server counts those as malformed */
            rf_buf_printf(m, "reelfarm_bad_messages_total{socket=\"blobs\",reason=\"%s\"} %llu\n",
                          s_reasons[r], bv[r]);
    static const char *const http_reasons[3] = {"malformed", "too_big", "refused"};
    for (int r = 0; r < 3; r++)
        rf_buf_printf(m, "reelfarm_bad_messages_total{socket=\"http\",reason=\"%s\"} %" PRIu64 "\n",
                      http_reasons[r], http_bad[r]);
    if (!auth)
        return;
    rf_buf_printf(m, "# HELP reelfarm_auth_total CURVE handshakes the ZAP handler answered, by "
                     "socket and result.\n# TYPE reelfarm_auth_total counter\n");
    for (int s = 0; s < 3; s++) {
        rf_buf_printf(m, "reelfarm_auth_total{socket=\"%s\",result=\"allowed\"} %" PRIu64 "\n",
                      s_sockets[s], auth->allowed[s]);
        rf_buf_printf(m, "reelfarm_auth_total{socket=\"%s\",result=\"denied\"} %" PRIu64 "\n",
                      s_sockets[s], auth->denied[s]);
    }
    rf_buf_printf(m, "# HELP reelfarm_auth_keys Public keys on the allow-list.\n"
                     "# TYPE reelfarm_auth_keys gauge\nreelfarm_auth_keys %" PRIu64 "\n"
                     "# HELP reelfarm_auth_reloads_total Times the allow-list was read.\n"
                     "# TYPE reelfarm_auth_reloads_total counter\nreelfarm_auth_reloads_total %" PRIu64
                     "\n",
                  auth->keys, auth->reloads);
}
