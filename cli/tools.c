/* tools.c - the subcommands that need no job: `passes` (the pass catalogue), `keygen` (a CURVE key
 * pair for the farm's sockets) and `doctor` (is this machine ready to render, and what to fix).
 *
 * doctor's rule for fail versus warn: a check fails only when it stops `reelfarm render` on this
 * machine (no encoder opens, no writable $TMPDIR, libraries other than the ones built against, a
 * broken cli.yaml) or when the coordinator refuses us; everything a local render can do without
 * (a coordinator, a GPU, keys, CURVE) is a warning with what to do about it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libfyaml.h>
#include <sodium.h>
#include <sqlite3.h>
#include <uv.h>
#include <zmq.h>

#include "cli.h"
#include "config.h"
#include "gpu.h"
#include "media.h"
#include "worker.h"

#define S_DOCTOR_TIMEOUT_MS 2000 /* how long doctor waits for the coordinator */
#define S_DETAIL_MAX 512

/* ---- passes -----------------------------------------------------------------------------------
 */

static const char *s_type_name(rf_param_type_t t)
{
    switch (t) {
    case RF_PARAM_FLOAT:
        return "float";
    case RF_PARAM_INT:
        return "int";
    case RF_PARAM_BOOL:
        return "bool";
    case RF_PARAM_ENUM:
        return "enum";
    case RF_PARAM_STRING:
        return "string";
    case RF_PARAM_PATH:
        return "path";
    }
    return "?";
}

/* "0..1", "1..120", "a|b" or "" into buf. */
static const char *s_range(const rf_param_def_t *p, char *buf, size_t size)
{
    if (p->type == RF_PARAM_FLOAT || p->type == RF_PARAM_INT)
        snprintf(buf, size, "%g..%g", p->min, p->max);
    else if (p->type == RF_PARAM_ENUM && p->choices)
        snprintf(buf, size, "%s", p->choices);
    else
        snprintf(buf, size, "-");
    return buf;
}

static void s_passes_json(const rf_pass_def_t *cat, size_t n)
{
    printf("[");
    for (size_t i = 0; i < n; i++) {
        const rf_pass_def_t *d = &cat[i];
        printf("%s{\"name\":", i ? "," : "");
        rf_cli_json_string(stdout, d->name);
        printf(",\"roles\":[");
        /* roles is '|'-separated: "generate|refine" */
        const char *r = d->roles ? d->roles : "";
        for (bool first = true; *r;) {
            size_t len = strcspn(r, "|");
            printf("%s\"%.*s\"", first ? "" : ",", (int)len, r);
            first = false;
            r += len + (r[len] == '|');
        }
        printf("],\"temporal\":%s,\"doc\":", d->temporal ? "true" : "false");
        rf_cli_json_string(stdout, d->doc);
        printf(",\"params\":[");
        for (size_t k = 0; k < d->nparams; k++) {
            const rf_param_def_t *p = &d->params[k];
            printf("%s{\"key\":", k ? "," : "");
            rf_cli_json_string(stdout, p->key);
            printf(",\"type\":\"%s\"", s_type_name(p->type));
            if (p->type == RF_PARAM_FLOAT || p->type == RF_PARAM_INT)
                printf(",\"min\":%.17g,\"max\":%.17g", p->min, p->max);
            if (p->type == RF_PARAM_ENUM) {
                printf(",\"choices\":[");
                const char *c = p->choices ? p->choices : "";
                for (bool first = true; *c;) {
                    size_t len = strcspn(c, "|");
                    printf("%s\"%.*s\"", first ? "" : ",", (int)len, c);
                    first = false;
                    c += len + (c[len] == '|');
                }
                printf("]");
            }
            printf(",\"internal\":%s,\"required\":%s,\"default\":",
                   p->internal ? "true" : "false", p->def || p->internal ? "false" : "true");
            if (p->def)
                rf_cli_json_string(stdout, p->def);
            else
                printf("null");
            printf(",\"doc\":");
            rf_cli_json_string(stdout, p->doc);
            printf("}");
        }
        printf("]}");
    }
    printf("]\n");
}

static void s_passes_human(const rf_pass_def_t *cat, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rf_pass_def_t *d = &cat[i];
        printf("%s%s  (roles: %s%s)\n    %s\n", i ? "\n" : "", d->name, d->roles,
               d->temporal ? "; temporal: uses context frames" : "", d->doc ? d->doc : "");
        if (d->nparams)
            printf("    %-16s %-7s %-16s %-10s %s\n", "PARAMETER", "TYPE", "RANGE", "DEFAULT",
                   "DESCRIPTION");
        for (size_t k = 0; k < d->nparams; k++) {
            const rf_param_def_t *p = &d->params[k];
            char range[256];
            if (p->internal)
                continue; /* set by the coordinator, not something a user can write */
            printf("    %-16s %-7s %-16s %-10s %s\n", p->key, s_type_name(p->type),
                   s_range(p, range, sizeof(range)), p->def ? p->def : "(required)",
                   p->doc ? p->doc : "");
        }
    }
}

int rf_cli_passes(const rf_cli_args_t *a)
{
    bool json = rf_cli_has(a, "json");
    size_t n = 0;
    const rf_pass_def_t *cat = rf_pass_catalog(&n);
    if (json)
        s_passes_json(cat, n);
    else
        s_passes_human(cat, n);
    return RF_EXIT_OK;
}

/* ---- keygen -----------------------------------------------------------------------------------
 */

/* mkdir -p with mode for the folders it creates. */
static int s_mkdirs(const char *path, mode_t mode, rf_err_t *err)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof(buf), "%s", path);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return rf_err_set(err, RF_EINVAL, "'%s': path too long", path);
    for (char *p = buf + 1;; p++) {
        bool end = *p == '\0';
        if (*p == '/' || end) {
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return rf_err_set(err, RF_EIO, "cannot create folder '%s': %s", buf,
                                  strerror(errno));
            if (end)
                break;
            *p = '/';
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return rf_err_set(err, RF_EIO, "'%s' is not a folder", path);
    return 0;
}

/* Writes text to path with mode, through a temporary file and rename, so a reader never sees half
 * a key and the mode is right from the first byte. */
static int s_write_file(const char *path, const char *text, mode_t mode, rf_err_t *err)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return rf_err_set(err, RF_EINVAL, "'%s': path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return rf_err_set(err, RF_EIO, "cannot write '%s': %s", tmp, strerror(errno));
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return rf_err_set(err, RF_EIO, "cannot write '%s': %s", path, strerror(e));
    }
    return 0;
}

static bool s_valid_name(const char *name)
{
    if (!*name || strlen(name) > 64 || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

int rf_cli_keygen(const rf_cli_args_t *a)
{
    if (rf_cli_has(a, "ca"))
        return rf_cli_keygen_ca(a);
    const char *out = rf_cli_arg(a, "out"), *name = rf_cli_arg(a, "name");
    bool force = rf_cli_has(a, "force");
    if (!name)
        name = "client";
    if (out && !*out)
        return rf_cli_usage_error(a->cmd, "flag '--out' needs a folder");
    if (!s_valid_name(name))
        return rf_cli_usage_error(a->cmd,
                                  "flag '--name': '%s' is not 1..64 letters, digits, '-', '_' or '.' "
                                  "(not starting with '.')",
                                  name);
    rf_err_t err = {0};
    char dir[PATH_MAX];
    if (out) {
        snprintf(dir, sizeof(dir), "%s", out);
    } else if (rf_cli_keys_dir(dir, sizeof(dir), &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    char key_path[PATH_MAX], pub_path[PATH_MAX];
    int n1 = snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name);
    int n2 = snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, name);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof(key_path) || (size_t)n2 >= sizeof(pub_path)) {
        fprintf(stderr, "reelfarm: keygen: '%s': path too long\n", dir);
        return RF_EXIT_USAGE;
    }
    if (!force) {
        const char *paths[] = {key_path, pub_path};
        for (size_t i = 0; i < 2; i++) {
            if (access(paths[i], F_OK) == 0) {
                fprintf(stderr,
                        "reelfarm: keygen: '%s' already exists; not overwriting it (pass --force "
                        "to replace the key pair, or --name to make another)\n",
                        paths[i]);
                return RF_EXIT_USAGE;
            }
        }
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "reelfarm: keygen: this libzmq was built without CURVE support "
                        "(install a libzmq built with libsodium)\n");
        return RF_EXIT_FAILED;
    }
    char public_key[41], secret_key[41];
    if (zmq_curve_keypair(public_key, secret_key) != 0) {
        fprintf(stderr, "reelfarm: keygen: zmq_curve_keypair failed: %s\n", zmq_strerror(errno));
        return RF_EXIT_FAILED;
    }
    if (s_mkdirs(dir, 0700, &err)) {
        fprintf(stderr, "reelfarm: keygen: %s\n", err.msg);
        return RF_EXIT_FAILED;
    }
    char key_text[256], pub_text[160];
    snprintf(key_text, sizeof(key_text),
             "# reelfarm CURVE key pair '%s' (Z85). Keep this file secret: mode 0600.\n"
             "public = \"%s\"\n"
             "secret = \"%s\"\n",
             name, public_key, secret_key);
    snprintf(pub_text, sizeof(pub_text),
             "# reelfarm CURVE public key '%s' (Z85). Safe to share.\n"
             "public = \"%s\"\n",
             name, public_key);
    int rc = s_write_file(key_path, key_text, 0600, &err);
    if (!rc)
        rc = s_write_file(pub_path, pub_text, 0644, &err);
    /* The secret does not linger in this process's memory longer than needed. */
    sodium_memzero(secret_key, sizeof(secret_key));
    sodium_memzero(key_text, sizeof(key_text));
    if (rc) {
        fprintf(stderr, "reelfarm: keygen: %s\n", err.msg);
        return RF_EXIT_FAILED;
    }
    fprintf(stderr, "reelfarm: wrote %s (secret, 0600) and %s (public, 0644)\n", key_path,
            pub_path);
    printf("%s\n", public_key);
    return RF_EXIT_OK;
}

/* ---- doctor -----------------------------------------------------------------------------------
 */

typedef enum { S_OK, S_WARN, S_FAIL } s_level_t;

typedef struct s_doctor {
    bool json;
    int count;   /* checks reported so far (for JSON commas) */
    bool failed; /* any check failed */
} s_doctor_t;

static void s_report(s_doctor_t *d, s_level_t level, const char *check, const char *fix,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* One check's line: "ok    libzmq       4.3.5", with "  -> fix" after warnings and failures. */
static void s_report(s_doctor_t *d, s_level_t level, const char *check, const char *fix,
                     const char *fmt, ...)
{
    static const char *const names[] = {"ok", "warn", "fail"};
    char detail[S_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    if (level == S_FAIL)
        d->failed = true;
    if (d->json) {
        printf("%s{\"check\":", d->count ? "," : "");
        rf_cli_json_string(stdout, check);
        printf(",\"status\":\"%s\",\"detail\":", names[level]);
        rf_cli_json_string(stdout, detail);
        printf(",\"fix\":");
        rf_cli_json_string(stdout, level == S_OK || !fix ? "" : fix);
        printf("}");
    } else {
        printf("%-5s %-12s %s", names[level], check, detail);
        if (level != S_OK && fix && *fix)
            printf("  -> %s", fix);
        printf("\n");
    }
    d->count++;
    fflush(stdout);
}

static void s_check_ffmpeg(s_doctor_t *d, const char *name, unsigned runtime, unsigned built)
{
    if (AV_VERSION_MAJOR(runtime) != AV_VERSION_MAJOR(built))
        s_report(d, S_FAIL, name, "rebuild reelfarm against the installed FFmpeg",
                 "running %u.%u.%u, built against %u.%u.%u", AV_VERSION_MAJOR(runtime),
                 AV_VERSION_MINOR(runtime), AV_VERSION_MICRO(runtime), AV_VERSION_MAJOR(built),
                 AV_VERSION_MINOR(built), AV_VERSION_MICRO(built));
    else
        s_report(d, S_OK, name, NULL, "%u.%u.%u", AV_VERSION_MAJOR(runtime),
                 AV_VERSION_MINOR(runtime), AV_VERSION_MICRO(runtime));
}

static void s_check_libraries(s_doctor_t *d)
{
    s_check_ffmpeg(d, "libavformat", avformat_version(), LIBAVFORMAT_VERSION_INT);
    s_check_ffmpeg(d, "libavcodec", avcodec_version(), LIBAVCODEC_VERSION_INT);
    int major = 0, minor = 0, patch = 0;
    zmq_version(&major, &minor, &patch);
    if (major != ZMQ_VERSION_MAJOR)
        s_report(d, S_FAIL, "libzmq", "rebuild reelfarm against the installed libzmq",
                 "running %d.%d.%d, built against %d.x", major, minor, patch, ZMQ_VERSION_MAJOR);
    else
        s_report(d, S_OK, "libzmq", NULL, "%d.%d.%d", major, minor, patch);
    s_report(d, S_OK, "libuv", NULL, "%s", uv_version_string());
    s_report(d, S_OK, "sqlite", NULL, "%s", sqlite3_libversion());
    s_report(d, S_OK, "libsodium", NULL, "%s", sodium_version_string());
    s_report(d, S_OK, "libfyaml", NULL, "%s", fy_library_version());
    if (zmq_has("curve"))
        s_report(d, S_OK, "curve", NULL, "libzmq supports CURVE encryption");
    else
        s_report(d, S_WARN, "curve", "install a libzmq built with libsodium",
                 "libzmq has no CURVE support: no keygen, no encrypted sockets");
}

static void s_check_encoders(s_doctor_t *d)
{
    int opened = 0;
    /* SVT-AV1 prints its banner straight to stderr when it opens; errors only, unless the user
     * asked for more. */
    setenv("SVT_LOG", "1", 0);
    for (size_t i = 0; rf_worker_encoders[i]; i++) {
        rf_err_t err = {0};
        if (rf_encoder_probe(rf_worker_encoders[i], &err) == 0) {
            s_report(d, S_OK, "encoder", NULL, "%s opens", rf_worker_encoders[i]);
            opened++;
        } else {
            s_report(d, S_WARN, "encoder",
                     "jobs with this codec will not run here; install an FFmpeg that has it (and "
                     "the device it needs)",
                     "%s does not open: %s", rf_worker_encoders[i], err.msg);
        }
    }
    if (!opened)
        s_report(d, S_FAIL, "encoders", "install an FFmpeg with libx264 or ffv1",
                 "no encoder opens: nothing can be rendered");
}

static void s_check_gpu(s_doctor_t *d)
{
    rf_gpu_info_t info;
    memset(&info, 0, sizeof(info));
    rf_gpu_probe(&info);
    if (info.ndevices == 0) {
        s_report(d, S_WARN, "gpu",
                 info.built_with_cuda ? "install the NVIDIA driver on a machine with a GPU to run "
                                        "GPU passes here"
                                      : "rebuild with the CUDA toolkit (nvcc) for GPU passes",
                 "no usable GPU: %s", info.note[0] ? info.note : "none found");
        return;
    }
    for (int i = 0; i < info.ndevices && i < RF_GPU_MAX_DEVICES; i++) {
        const rf_gpu_device_t *g = &info.devices[i];
        double gib = (double)g->total_bytes / (1024.0 * 1024.0 * 1024.0);
        if (g->kernel_ok)
            s_report(d, S_OK, "gpu", NULL, "%d: %s, %.1f GiB, compute %d.%d", g->index, g->name,
                     gib, g->cc_major, g->cc_minor);
        else
            s_report(d, S_WARN, "gpu", "rebuild reelfarm for this GPU's architecture",
                     "%d: %s, %.1f GiB, compute %d.%d: reelfarm's self-test kernel did not run",
                     g->index, g->name, gib, g->cc_major, g->cc_minor);
    }
}

static void s_check_coordinator(s_doctor_t *d, const char *flag)
{
    char endpoint[512];
    rf_err_t err = {0};
    if (rf_cli_resolve_endpoint(flag, endpoint, sizeof(endpoint), &err)) {
        s_report(d, S_FAIL, "config", "fix or remove the file", "%s", err.msg);
        return;
    }
    rf_client_t *c = NULL;
    if (rf_client_new(endpoint, &c, &err)) {
        s_report(d, S_FAIL, "coordinator", "give an endpoint like tcp://HOST:7601", "%s", err.msg);
        return;
    }
    Reelfarm__JobList list = REELFARM__JOB_LIST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_LIST;
    env.job_list = &list;
    rf_msg_t *reply = NULL;
    int rc = rf_client_call(c, &env, &reply, S_DOCTOR_TIMEOUT_MS, &err);
    rf_client_destroy(&c);
    if (rc == RF_EUNAVAIL) {
        s_report(d, S_WARN, "coordinator",
                 "start reelfarm-coordinator or set --coordinator/REELFARM_COORDINATOR "
                 "(`reelfarm render` needs none)",
                 "cannot reach %s (no answer in %d s)", endpoint, S_DOCTOR_TIMEOUT_MS / 1000);
        return;
    }
    if (rc) {
        s_report(d, rc == RF_EPERM ? S_FAIL : S_WARN, "coordinator",
                 rc == RF_EPERM ? "check this machine's keys against the coordinator's" : NULL,
                 "%s answered with an error: %s", endpoint, err.msg);
        return;
    }
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case == REELFARM__ENVELOPE__BODY_JOB_LIST)
        s_report(d, S_OK, "coordinator", NULL, "%s answers: %zu jobs", endpoint,
                 r->job_list->n_jobs);
    else
        s_report(d, S_WARN, "coordinator", "check that the endpoint is a coordinator's client port",
                 "%s gave an unexpected reply", endpoint);
    rf_msg_destroy(&reply);
}

static void s_check_keys(s_doctor_t *d)
{
    char dir[PATH_MAX];
    rf_err_t err = {0};
    if (rf_cli_keys_dir(dir, sizeof(dir), &err)) {
        s_report(d, S_FAIL, "config", "fix or remove the file", "%s", err.msg);
        return;
    }
    DIR *dh = opendir(dir);
    int pairs = 0, loose = 0;
    char first_loose[256] = "";
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len <= 4 || strcmp(e->d_name + len - 4, ".key"))
                continue;
            char path[PATH_MAX];
            struct stat st;
            int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            pairs++;
            if (st.st_mode & 077) {
                if (!loose++)
                    snprintf(first_loose, sizeof(first_loose), "%s", e->d_name);
            }
        }
        closedir(dh);
    }
    if (!pairs)
        s_report(d, S_WARN, "keys", "run reelfarm keygen", "no key pair in %s", dir);
    else if (loose)
        s_report(d, S_WARN, "keys", "chmod 600 the .key files",
                 "%d key pair(s) in %s; %d readable by others (%s)", pairs, dir, loose,
                 first_loose);
    else
        s_report(d, S_OK, "keys", NULL, "%d key pair(s) in %s", pairs, dir);
}

static void s_check_tmpdir(s_doctor_t *d)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/reelfarm-doctor-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        s_report(d, S_FAIL, "tmpdir", "set TMPDIR to a shorter path", "'%s': path too long", tmp);
        return;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        s_report(d, S_FAIL, "tmpdir", "set TMPDIR to a writable folder", "cannot write in '%s': %s",
                 tmp, strerror(errno));
        return;
    }
    bool ok = write(fd, "x", 1) == 1;
    int e = errno;
    close(fd);
    unlink(path);
    if (ok)
        s_report(d, S_OK, "tmpdir", NULL, "'%s' is writable", tmp);
    else
        s_report(d, S_FAIL, "tmpdir", "free space or set TMPDIR to a writable folder",
                 "cannot write in '%s': %s", tmp, strerror(e));
}

int rf_cli_doctor(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    s_doctor_t d = {0};
    d.json = rf_cli_has(a, "json");
    if (d.json)
        printf("{\"checks\":[");
    s_check_libraries(&d);
    s_check_encoders(&d);
    s_check_gpu(&d);
    s_check_coordinator(&d, ep);
    s_check_keys(&d);
    s_check_tmpdir(&d);
    if (d.json)
        printf("],\"ok\":%s}\n", d.failed ? "false" : "true");
    else
        printf("%s\n", d.failed ? "doctor: something failed (see the lines marked fail)"
                                : "doctor: nothing failed");
    return d.failed ? RF_EXIT_FAILED : RF_EXIT_OK;
}
