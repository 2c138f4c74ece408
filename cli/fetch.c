/* fetch.c - `reelfarm fetch JOB_ID [-o FILE]`: downloads a done job's output, and its C2PA
 * sidecar, from the coordinator.
 *
 * Two steps: FetchOutput on the client socket asks the coordinator to expose the output as a blob
 * (it hashes the file off its loop and links it into the blob store; the reply names the blob, its
 * size and the blob server's endpoint), then rf_blob_fetch downloads it over the blob socket in
 * 1 MiB credit-based pieces, verifies the SHA-256 and renames FILE.part to FILE, so FILE is never
 * seen half-written. The size is checked once more against the reply before success is reported.
 * The output's sidecar (OUTPUT-without-extension.c2pa, the only manifest an MKV output has) is a
 * second blob in the same reply, downloaded the same way beside FILE under FILE's base name
 * (rf_prov_sidecar_path), so `reelfarm verify FILE` finds it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "blob.h"
#include "cli.h"
#include "provenance.h"

#define S_FETCH_EXPOSE_MS (10 * 60 * 1000) /* the coordinator hashes the whole output first */
#define S_FETCH_STALL_MS 30000 /* the download gives up after this long without progress */

static atomic_int s_cancel;

static void s_on_sigint(int sig)
{
    (void)sig;
    atomic_store(&s_cancel, 1);
}

/* "tcp://HOST:PORT" -> host and port (host without IPv6 brackets kept as written). */
static bool s_split_endpoint(const char *ep, char *host, size_t hsize, char *port, size_t psize)
{
    const char *p = strstr(ep, "://");
    if (!p)
        return false;
    p += 3;
    const char *colon = strrchr(p, ':');
    if (!colon || colon == p || !colon[1])
        return false;
    int n = snprintf(host, hsize, "%.*s", (int)(colon - p), p);
    int m = snprintf(port, psize, "%s", colon + 1);
    return n > 0 && (size_t)n < hsize && m > 0 && (size_t)m < psize;
}

/* The blob endpoint to use: the one configured, else the one the coordinator bound, with a
 * wildcard host (0.0.0.0, *, [::]) replaced by the host the coordinator was reached at. */
static int s_blob_endpoint(const char *configured, const char *bound, const char *coordinator,
                           char *out, size_t size, rf_err_t *err)
{
    if (*configured) {
        snprintf(out, size, "%s", configured);
        return 0;
    }
    char bhost[256], bport[32], chost[256], cport[32];
    if (!bound || !s_split_endpoint(bound, bhost, sizeof(bhost), bport, sizeof(bport)))
        return rf_err_set(err, RF_EPROTO,
                          "the coordinator named no usable blob endpoint ('%s'); "
                          "give one with --blobs or REELFARM_BLOBS",
                          bound ? bound : "");
    bool wildcard = !strcmp(bhost, "0.0.0.0") || !strcmp(bhost, "*") || !strcmp(bhost, "[::]") ||
                    !strcmp(bhost, "::");
    if (wildcard && s_split_endpoint(coordinator, chost, sizeof(chost), cport, sizeof(cport)))
        snprintf(out, size, "tcp://%s:%s", chost, bport);
    else
        snprintf(out, size, "%s", bound);
    return 0;
}

/* After a download: rc as it was, or an error when path is not the size the coordinator named. */
static int s_check_size(int rc, const char *path, uint64_t size, const char *what, rf_err_t *err)
{
    struct stat st;
    if (rc)
        return rc;
    if (stat(path, &st) != 0)
        return rf_err_set(err, RF_EIO, "'%s': %s", path, strerror(errno));
    if ((uint64_t)st.st_size != size)
        return rf_err_set(err, RF_EVERIFY, "'%s' has %lld bytes, the coordinator's %s %" PRIu64,
                          path, (long long)st.st_size, what, size);
    return 0;
}

int rf_cli_fetch(const rf_cli_args_t *a)
{
    const char *job_id = a->operands[0];
    const char *dest_arg = rf_cli_arg(a, "output");
    bool json = rf_cli_has(a, "json");
    if (dest_arg && !*dest_arg)
        return rf_cli_usage_error(a->cmd, "flag '--output' needs a file name");
    rf_err_t err = {0};
    char endpoint[512], blobs[512];
    if (rf_cli_resolve_endpoint(rf_cli_arg(a, "coordinator"), endpoint, sizeof(endpoint), &err) ||
        rf_cli_resolve_blobs(rf_cli_arg(a, "blobs"), blobs, sizeof(blobs), &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    rf_client_t *c = NULL;
    if (rf_client_new(endpoint, &c, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_sigint;
    sigaction(SIGINT, &sa, NULL);

    Reelfarm__FetchOutput fo = REELFARM__FETCH_OUTPUT__INIT;
    fo.job_id = (char *)job_id;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_FETCH_OUTPUT;
    env.fetch_output = &fo;
    rf_msg_t *reply = NULL;
    int rc = rf_client_call(c, &env, &reply, S_FETCH_EXPOSE_MS, &err);
    rf_client_destroy(&c);
    if (rc == RF_ECANCELED) {
        fprintf(stderr, "reelfarm: interrupted\n");
        return RF_EXIT_INTERRUPTED;
    }
    if (rc) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return rf_cli_exit_for(rc);
    }
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case != REELFARM__ENVELOPE__BODY_FETCH_REPLY || !r->fetch_reply->sha256 ||
        !rf_sha256_hex_valid(r->fetch_reply->sha256)) {
        rf_msg_destroy(&reply);
        fprintf(stderr, "reelfarm: unexpected reply to fetch from the coordinator\n");
        return RF_EXIT_FAILED;
    }
    const Reelfarm__FetchReply *fr = r->fetch_reply;
    char blob_ep[512], dest[PATH_MAX];
    if (s_blob_endpoint(blobs, fr->blob_endpoint, endpoint, blob_ep, sizeof(blob_ep), &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        rf_msg_destroy(&reply);
        return RF_EXIT_FAILED;
    }
    if (dest_arg) {
        snprintf(dest, sizeof(dest), "%s", dest_arg);
    } else {
        const char *base = fr->output ? strrchr(fr->output, '/') : NULL;
        base = base ? base + 1 : fr->output;
        if (!base || !*base || !strcmp(base, ".") || !strcmp(base, "..")) {
            fprintf(stderr, "reelfarm: the output's name '%s' is not a file name; give -o FILE\n",
                    fr->output ? fr->output : "");
            rf_msg_destroy(&reply);
            return RF_EXIT_USAGE;
        }
        snprintf(dest, sizeof(dest), "%s", base);
    }
    /* The sidecar goes beside FILE: FILE with its extension replaced by .c2pa. */
    char side_dest[PATH_MAX];
    bool sidecar = fr->sidecar_sha256 && *fr->sidecar_sha256;
    if (sidecar && !rf_sha256_hex_valid(fr->sidecar_sha256)) {
        rf_msg_destroy(&reply);
        fprintf(stderr, "reelfarm: unexpected reply to fetch from the coordinator (sidecar)\n");
        return RF_EXIT_FAILED;
    }
    if (sidecar &&
        (rf_prov_sidecar_path(dest, side_dest, sizeof(side_dest)) || !strcmp(side_dest, dest))) {
        fprintf(stderr,
                "reelfarm: fetch: '%s' cannot hold the output: its C2PA sidecar would be "
                "written to the same name; give -o FILE with the output's extension\n",
                dest);
        rf_msg_destroy(&reply);
        return RF_EXIT_USAGE;
    }
    void *zctx = zmq_ctx_new();
    if (!zctx) {
        fprintf(stderr, "reelfarm: cannot create a ZeroMQ context\n");
        rf_msg_destroy(&reply);
        return RF_EXIT_FAILED;
    }
    /* Written to DEST.part, verified, renamed; an interrupted fetch is resumed by the next one. */
    rf_zsec_t sec;
    rf_blob_xfer_t x = {.sec = &sec};
    rc = rf_cli_curve(&sec, &err);
    if (!rc)
        rc = rf_blob_fetch(zctx, blob_ep, fr->sha256, fr->size, dest, S_FETCH_STALL_MS, &s_cancel, &x,
                           &err);
    rc = s_check_size(rc, dest, fr->size, "output", &err);
    const char *failed = dest; /* the file a failure is about */
    if (!rc && sidecar) {
        rf_blob_xfer_t xs = {.sec = &sec};
        failed = side_dest;
        rc = rf_blob_fetch(zctx, blob_ep, fr->sidecar_sha256, fr->sidecar_size, side_dest,
                           S_FETCH_STALL_MS, &s_cancel, &xs, &err);
        rc = s_check_size(rc, side_dest, fr->sidecar_size, "C2PA sidecar", &err);
    }
    rf_zsec_clear(&sec);
    zmq_ctx_term(zctx);
    int code = RF_EXIT_OK;
    if (rc == RF_ECANCELED) {
        fprintf(stderr, "reelfarm: interrupted; '%s' not written\n", failed);
        code = RF_EXIT_INTERRUPTED;
    } else if (rc) {
        fprintf(stderr, "reelfarm: fetching job %s's %s from %s into '%s': %s\n", job_id,
                failed == dest ? "output" : "C2PA sidecar", blob_ep, failed, err.msg);
        code = rc == RF_ETIMEDOUT ? RF_EXIT_UNREACHABLE : RF_EXIT_FAILED;
    } else if (json) {
        printf("{\"id\":");
        rf_cli_json_string(stdout, job_id);
        printf(",\"output\":");
        rf_cli_json_string(stdout, fr->output);
        printf(",\"path\":");
        rf_cli_json_string(stdout, dest);
        printf(",\"size\":%" PRIu64 ",\"sha256\":\"%s\",\"sidecar\":", fr->size, fr->sha256);
        if (sidecar) {
            printf("{\"path\":");
            rf_cli_json_string(stdout, side_dest);
            printf(",\"size\":%" PRIu64 ",\"sha256\":\"%s\"}", fr->sidecar_size,
                   fr->sidecar_sha256);
        } else {
            printf("null");
        }
        printf("}\n");
    } else {
        printf("%s\n", dest);
    }
    if (!rc && !sidecar)
        fprintf(stderr,
                "reelfarm: note: the coordinator has no C2PA sidecar beside '%s' (an "
                "older coordinator, or the file was removed); only a manifest inside the output "
                "came along\n",
                fr->output);
    rf_msg_destroy(&reply);
    return code;
}
