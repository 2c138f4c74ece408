/* test_daemon.c - coordinator and worker configs: defaults, every error path with its exact
 * file:line:key, parsed values, derived blob endpoint, rf_config_set_string, the examples load. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "cfgtest.h"

#define S_COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef enum { S_COORD, S_WORKER } s_kind_t;

typedef struct s_case {
    const char *what;
    s_kind_t kind;
    const char *yaml;
    int code;
    const char *msg; /* after the file name; ends in "..." to match only the start */
} s_case_t;

static const s_case_t s_errors[] = {
    /* both */
    {"coord missing version", S_COORD, "state_dir: /x\n", RF_ECONFIG,
     ":1: key 'version': required key missing"},
    {"worker missing version", S_WORKER, "\nname: w\n", RF_ECONFIG,
     ":2: key 'version': required key missing"},
    {"coord version 2", S_COORD, "version: 2\n", RF_ECONFIG,
     ":1: key 'version': unsupported version 2 (this build reads version 1)"},
    {"coord version word", S_COORD, "version: one\n", RF_ECONFIG,
     ":1: key 'version': expected an integer in 0..2147483647, got 'one'"},
    {"coord http listen no port", S_COORD, "version: 1\nhttp: {listen: '127.0.0.1'}\n", RF_ECONFIG,
     ":2: key 'http.listen': expected HOST:PORT such as 127.0.0.1:7603 (\"\" disables http), got '127.0.0.1'"},
    {"coord http listen big port", S_COORD, "version: 1\nhttp: {listen: 'h:99999'}\n", RF_ECONFIG,
     ":2: key 'http.listen': expected HOST:PORT such as 127.0.0.1:7603 (\"\" disables http), got 'h:99999'"},
    {"coord http unknown key", S_COORD, "version: 1\nhttp: {port: 1}\n", RF_ECONFIG,
     ":2: key 'http.port': unknown key (expected one of: listen, token_file, web_dir)"},
    {"coord unknown key", S_COORD, "version: 1\nlistn: {}\n", RF_ECONFIG,
     ":2: key 'listn': unknown key (expected one of: version, state_dir, listen, heartbeat_ms, "
     "liveness, task_timeout_s, max_attempts, media_roots, log_level, verify, http, shared_blobs, "
     "signing, security, limits)"},
    {"coord signing key alone", S_COORD, "version: 1\nsigning: {key: /k.pem}\n", RF_ECONFIG,
     ":2: key 'signing': 'key' and 'cert' go together: give both, or neither to let the "
     "coordinator make a farm CA in signing.dir"},
    {"coord signing unknown", S_COORD, "version: 1\nsigning: {keys: /k.pem}\n", RF_ECONFIG,
     ":2: key 'signing.keys': unknown key (expected one of: key, cert, chain, dir)"},
    {"worker unknown key", S_WORKER, "version: 1\nslot: 2\n", RF_ECONFIG,
     ":2: key 'slot': unknown key (expected one of: version, coordinator, blobs, name, slots, "
     "cache_dir, drain_grace_s, log_level, pass_dirs, shared_blobs, security, decode)"},
    {"worker shared blobs mapping", S_WORKER, "version: 1\nshared_blobs: {a: 1}\n", RF_ECONFIG,
     ":2: key 'shared_blobs': expected a string, got a mapping"},
    {"coord shared blobs list", S_COORD, "version: 1\nshared_blobs: [a]\n", RF_ECONFIG,
     ":2: key 'shared_blobs': expected a string, got a sequence"},
    {"coord security unknown key", S_COORD, "version: 1\nsecurity: {keys: a}\n", RF_ECONFIG,
     ":2: key 'security.keys': unknown key (expected one of: key, authorized_keys, insecure)"},
    {"coord security insecure word", S_COORD, "version: 1\nsecurity: {insecure: maybe}\n", RF_ECONFIG,
     ":2: key 'security.insecure': expected true or false, got 'maybe'"},
    {"coord limits unknown key", S_COORD, "version: 1\nlimits: {chunks: 5}\n", RF_ECONFIG,
     ":2: key 'limits.chunks': unknown key (expected one of: message_bytes, spec_bytes, "
     "chunks_per_job, jobs_per_client, blob_bytes, blob_uploads)"},
    {"coord limits chunks 0", S_COORD, "version: 1\nlimits:\n  chunks_per_job: 0\n", RF_ECONFIG,
     ":3: key 'limits.chunks_per_job': expected an integer in 1..1000000, got '0'"},
    {"coord limits message tiny", S_COORD, "version: 1\nlimits: {message_bytes: 100}\n", RF_ECONFIG,
     ":2: key 'limits.message_bytes': expected an integer in 65536..67108864, got '100'"},
    {"coord limits uploads 257", S_COORD, "version: 1\nlimits: {blob_uploads: 257}\n", RF_ECONFIG,
     ":2: key 'limits.blob_uploads': expected an integer in 1..256, got '257'"},
    {"coord limits spec over cap", S_COORD, "version: 1\nlimits: {spec_bytes: 2000000}\n", RF_ECONFIG,
     ":2: key 'limits.spec_bytes': expected an integer in 1024..1048576, got '2000000'"},
    {"worker security one key", S_WORKER, "version: 1\nsecurity: {key: w.key}\n", RF_ECONFIG,
     ":2: key 'security': give both key and coordinator_key, or neither"},
    {"worker decode", S_WORKER, "version: 1\ndecode: gpu\n", RF_ECONFIG,
     ":2: key 'decode': expected one of auto|cpu|nvdec, got 'gpu'"},
    {"pass dirs not a list", S_WORKER, "version: 1\npass_dirs: /opt/passes\n", RF_ECONFIG,
     ":2: key 'pass_dirs': expected a sequence, got '/opt/passes'"},
    {"coord duplicate", S_COORD, "version: 1\nliveness: 3\nliveness: 4\n", RF_ECONFIG,
     ":3: key 'liveness': duplicate key (first given on line 2)"},
    {"worker duplicate", S_WORKER, "version: 1\nslots: 1\nversion: 1\n", RF_ECONFIG,
     ":3: key 'version': duplicate key (first given on line 1)"},
    {"coord syntax", S_COORD, "version: 1\nlisten: {workers: tcp://a:1\n", RF_ECONFIG,
     ":3: invalid YAML: ..."},
    {"worker top sequence", S_WORKER, "- version: 1\n", RF_ECONFIG,
     ":1: expected a mapping of keys at the top (starting with 'version: 1'), got a sequence"},
    {"coord empty", S_COORD, "", RF_ECONFIG,
     ":1: expected a mapping of keys at the top (starting with 'version: 1'), got nothing"},
    /* coordinator */
    {"listen scalar", S_COORD, "version: 1\nlisten: tcp://*:7600\n", RF_ECONFIG,
     ":2: key 'listen': expected a mapping, got 'tcp://*:7600'"},
    {"listen unknown", S_COORD, "version: 1\nlisten:\n  worker: tcp://*:7600\n", RF_ECONFIG,
     ":3: key 'listen.worker': unknown key (expected one of: workers, clients, blobs)"},
    {"listen scheme", S_COORD, "version: 1\nlisten:\n  clients: http://x:80\n", RF_ECONFIG,
     ":3: key 'listen.clients': expected an endpoint such as tcp://127.0.0.1:7600 or "
     "ipc:///run/reelfarm/workers.sock, got 'http://x:80'"},
    {"listen no port", S_COORD, "version: 1\nlisten: {blobs: \"tcp://10.0.0.1\"}\n", RF_ECONFIG,
     ":2: key 'listen.blobs': expected an endpoint such as ..."},
    {"listen port range", S_COORD, "version: 1\nlisten: {blobs: \"tcp://*:70000\"}\n", RF_ECONFIG,
     ":2: key 'listen.blobs': expected an endpoint such as ..."},
    {"listen sequence", S_COORD, "version: 1\nlisten: {workers: [a]}\n", RF_ECONFIG,
     ":2: key 'listen.workers': expected a string, got a sequence"},
    {"heartbeat low", S_COORD, "version: 1\nheartbeat_ms: 50\n", RF_ECONFIG,
     ":2: key 'heartbeat_ms': expected an integer in 100..60000, got '50'"},
    {"heartbeat quoted", S_COORD, "version: 1\nheartbeat_ms: \"500\"\n", RF_ECONFIG,
     ":2: key 'heartbeat_ms': expected an integer in 100..60000, got the quoted string '500' "
     "(numbers and booleans take no quotes)"},
    {"liveness low", S_COORD, "version: 1\nliveness: 1\n", RF_ECONFIG,
     ":2: key 'liveness': expected an integer in 2..100, got '1'"},
    {"task timeout", S_COORD, "version: 1\ntask_timeout_s: 5\n", RF_ECONFIG,
     ":2: key 'task_timeout_s': expected an integer in 10..86400, got '5'"},
    {"verify mode", S_COORD, "version: 1\nverify: some\n", RF_ECONFIG,
     ":2: key 'verify': ..."},
    {"max attempts", S_COORD, "version: 1\nmax_attempts: 0\n", RF_ECONFIG,
     ":2: key 'max_attempts': expected an integer in 1..20, got '0'"},
    {"media roots scalar", S_COORD, "version: 1\nmedia_roots: /srv\n", RF_ECONFIG,
     ":2: key 'media_roots': expected a sequence, got '/srv'"},
    {"media root relative", S_COORD, "version: 1\nmedia_roots:\n  - /srv\n  - media\n", RF_ECONFIG,
     ":4: key 'media_roots[1]': expected an absolute path, got 'media'"},
    {"media root mapping", S_COORD, "version: 1\nmedia_roots:\n  - {a: b}\n", RF_ECONFIG,
     ":3: key 'media_roots[0]': expected a string, got a mapping"},
    {"state dir empty", S_COORD, "version: 1\nstate_dir: ''\n", RF_ECONFIG,
     ":2: key 'state_dir': must not be empty"},
    {"log level", S_COORD, "version: 1\nlog_level: verbose\n", RF_ECONFIG,
     ":2: key 'log_level': expected one of debug|info|warn|error, got 'verbose'"},
    /* worker */
    {"coordinator bad", S_WORKER, "version: 1\ncoordinator: 10.0.0.5:7600\n", RF_ECONFIG,
     ":2: key 'coordinator': expected an endpoint such as ..."},
    {"blobs bad", S_WORKER, "version: 1\nblobs: tcp://a:b\n", RF_ECONFIG,
     ":2: key 'blobs': expected an endpoint such as ..."},
    {"blobs needed", S_WORKER, "version: 1\ncoordinator: ipc:///run/rf.sock\n", RF_ECONFIG,
     ":2: key 'blobs': required when coordinator is not a tcp:// endpoint (it is "
     "'ipc:///run/rf.sock')"},
    {"slots negative", S_WORKER, "version: 1\nslots: -1\n", RF_ECONFIG,
     ":2: key 'slots': expected an integer in 0..1024, got '-1'"},
    {"slots float", S_WORKER, "version: 1\nslots: 1.0\n", RF_ECONFIG,
     ":2: key 'slots': expected an integer in 0..1024, got '1.0'"},
    {"drain grace", S_WORKER, "version: 1\ndrain_grace_s: 100000\n", RF_ECONFIG,
     ":2: key 'drain_grace_s': expected an integer in 0..86400, got '100000'"},
    {"name empty", S_WORKER, "version: 1\nname:\n", RF_ECONFIG,
     ":2: key 'name': expected a string, got nothing"},
    {"cache dir mapping", S_WORKER, "version: 1\ncache_dir: {a: 1}\n", RF_ECONFIG,
     ":2: key 'cache_dir': expected a string, got a mapping"},
    {"worker log level", S_WORKER, "version: 1\nlog_level: 3\n", RF_ECONFIG,
     ":2: key 'log_level': expected one of debug|info|warn|error, got '3'"},
};

/* Writes text to a fresh file in the temp folder and returns its path (static buffer). */
static const char *s_file(const char *text)
{
    static char path[400];
    static int n;

    snprintf(path, sizeof(path), "%s/cfg%d.yaml", s_tmp, n++);
    s_write(path, text, strlen(text));
    return path;
}

static int s_load(s_kind_t kind, const char *path, rf_err_t *err)
{
    int rc;

    if (kind == S_COORD) {
        rf_coordinator_config_t *cfg = NULL;
        rc = rf_coordinator_config_load(path, &cfg, err);
        assert_true(rc == 0 ? cfg != NULL : cfg == NULL);
        rf_coordinator_config_destroy(&cfg);
    } else {
        rf_worker_config_t *cfg = NULL;
        rc = rf_worker_config_load(path, &cfg, err);
        assert_true(rc == 0 ? cfg != NULL : cfg == NULL);
        rf_worker_config_destroy(&cfg);
    }
    return rc;
}

static void test_errors(void **state)
{
    size_t failed = 0;

    (void)state;
    for (size_t i = 0; i < S_COUNT(s_errors); i++) {
        const s_case_t *c = &s_errors[i];
        const char *path = s_file(c->yaml);
        char want[1024];
        size_t n;
        rf_err_t err = {0};
        int rc = s_load(c->kind, path, &err);
        bool prefix;

        snprintf(want, sizeof(want), "%s%s", path, c->msg);
        n = strlen(want);
        prefix = !strcmp(want + n - 3, "...");
        if (rc != c->code || err.code != c->code ||
            (prefix ? strncmp(err.msg, want, n - 3) : strcmp(err.msg, want))) {
            print_error("case '%s':\n  want %d '%s'\n  got  %d '%s'\n", c->what, c->code, want, rc,
                        err.msg);
            failed++;
        }
    }
    assert_int_equal(failed, 0); /* every mismatch was printed above */
}

static void test_file_errors(void **state)
{
    char path[400], want[600];
    size_t big = RF_SPEC_MAX_BYTES + 1;
    char *text;
    rf_err_t err = {0};

    (void)state;
    snprintf(path, sizeof(path), "%s/none.yaml", s_tmp);
    assert_int_equal(s_load(S_COORD, path, &err), RF_ENOENT);
    snprintf(want, sizeof(want), "'%s': no such file", path);
    assert_string_equal(err.msg, want);
    assert_int_equal(s_load(S_WORKER, path, &err), RF_ENOENT);
    assert_string_equal(err.msg, want);

    snprintf(path, sizeof(path), "%s/big.yaml", s_tmp);
    text = malloc(big);
    assert_non_null(text);
    memset(text, '#', big);
    s_write(path, text, big);
    free(text);
    assert_int_equal(s_load(S_COORD, path, &err), RF_ETOOBIG);
    assert_int_equal(s_load(S_WORKER, path, &err), RF_ETOOBIG);
}

static void test_coordinator_defaults(void **state)
{
    rf_coordinator_config_t *cfg = NULL;
    rf_err_t err = {0};

    (void)state;
    assert_int_equal(rf_coordinator_config_load(NULL, &cfg, &err), 0);
    assert_string_equal(cfg->source, "");
    assert_null(cfg->state_dir);
    assert_string_equal(cfg->listen_workers, "tcp://127.0.0.1:7600");
    assert_string_equal(cfg->listen_clients, "tcp://127.0.0.1:7601");
    assert_string_equal(cfg->listen_blobs, "tcp://127.0.0.1:7602");
    assert_int_equal(cfg->heartbeat_ms, 1000);
    assert_int_equal(cfg->liveness, 5);
    assert_int_equal(cfg->task_timeout_s, 600);
    assert_int_equal(cfg->max_attempts, 3);
    assert_int_equal(cfg->nmedia_roots, 0);
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->http_listen, "127.0.0.1:7603");
    assert_null(cfg->http_token_file);
    assert_null(cfg->http_web_dir);
    assert_null(cfg->security_key);
    assert_null(cfg->authorized_keys);
    assert_false(cfg->insecure);
    assert_int_equal(cfg->limits.message_bytes, 1024 * 1024);
    assert_int_equal(cfg->limits.spec_bytes, RF_SPEC_MAX_BYTES);
    assert_int_equal(cfg->limits.chunks_per_job, 10000);
    assert_int_equal(cfg->limits.jobs_per_client, 100);
    assert_int_equal(cfg->limits.blob_bytes, 64LL << 30);
    assert_int_equal(cfg->limits.blob_uploads, 256);
    rf_coordinator_config_destroy(&cfg);
    assert_null(cfg);
    rf_coordinator_config_destroy(&cfg);
}

static void test_coordinator_file(void **state)
{
    const char *path = s_file("version: 1\n"
                              "state_dir: state/../state2\n"
                              "listen: {workers: 'tcp://*:9000', blobs: ipc:///run/rf-blobs}\n"
                              "heartbeat_ms: 100\n"
                              "liveness: 100\n"
                              "task_timeout_s: 86400\n"
                              "max_attempts: 20\n"
                              "media_roots: [/srv//media/, /mnt/plates]\n"
                              "log_level: debug\n"
                              "verify: sample\n"
                              "http: {listen: '0.0.0.0:8080', token_file: tok, web_dir: /srv/web}\n"
                              "shared_blobs: farm/blobs\n"
                              "signing: {key: keys/s.key, cert: /etc/rf/s.pem, chain: c.pem}\n"
                              "security: {key: k/coordinator.key, authorized_keys: /etc/allow, insecure: true}\n"
                              "limits: {message_bytes: 65536, spec_bytes: 1024, chunks_per_job: 7,\n"
                              "         jobs_per_client: 2, blob_bytes: 1000, blob_uploads: 3}\n");
    rf_coordinator_config_t *cfg = NULL;
    rf_err_t err = {0};
    char *real = realpath(s_tmp, NULL);
    char want[512];

    (void)state;
    assert_non_null(real);
    assert_int_equal(rf_coordinator_config_load(path, &cfg, &err), 0);
    assert_string_equal(cfg->source, path);
    snprintf(want, sizeof(want), "%s/state2", real);
    assert_string_equal(cfg->state_dir, want);
    assert_string_equal(cfg->listen_workers, "tcp://*:9000");
    assert_string_equal(cfg->listen_clients, "tcp://127.0.0.1:7601"); /* default kept */
    assert_string_equal(cfg->listen_blobs, "ipc:///run/rf-blobs");
    assert_int_equal(cfg->heartbeat_ms, 100);
    assert_int_equal(cfg->liveness, 100);
    assert_int_equal(cfg->task_timeout_s, 86400);
    assert_int_equal(cfg->max_attempts, 20);
    assert_int_equal(cfg->nmedia_roots, 2);
    assert_string_equal(cfg->media_roots[0], "/srv/media");
    assert_string_equal(cfg->media_roots[1], "/mnt/plates");
    assert_string_equal(cfg->log_level, "debug");
    assert_true(cfg->verify_sample);
    assert_string_equal(cfg->http_listen, "0.0.0.0:8080");
    snprintf(want, sizeof(want), "%s/tok", real);
    assert_string_equal(cfg->http_token_file, want); /* relative to the config's folder */
    assert_string_equal(cfg->http_web_dir, "/srv/web");
    snprintf(want, sizeof(want), "%s/farm/blobs", real);
    assert_string_equal(cfg->shared_blobs, want); /* relative to the config's folder */
    snprintf(want, sizeof(want), "%s/keys/s.key", real);
    assert_string_equal(cfg->signing_key, want);
    assert_string_equal(cfg->signing_cert, "/etc/rf/s.pem");
    snprintf(want, sizeof(want), "%s/c.pem", real);
    assert_string_equal(cfg->signing_chain, want);
    assert_null(cfg->signing_dir);
    snprintf(want, sizeof(want), "%s/k/coordinator.key", real);
    assert_string_equal(cfg->security_key, want);
    assert_string_equal(cfg->authorized_keys, "/etc/allow");
    assert_true(cfg->insecure);
    assert_int_equal(cfg->limits.message_bytes, 65536);
    assert_int_equal(cfg->limits.spec_bytes, 1024);
    assert_int_equal(cfg->limits.chunks_per_job, 7);
    assert_int_equal(cfg->limits.jobs_per_client, 2);
    assert_int_equal(cfg->limits.blob_bytes, 1000);
    assert_int_equal(cfg->limits.blob_uploads, 3);
    rf_coordinator_config_destroy(&cfg);
    free(real);
}

static void test_worker_defaults(void **state)
{
    rf_worker_config_t *cfg = NULL;
    rf_err_t err = {0};
    char host[256] = {0}, want[300];

    (void)state;
    assert_int_equal(setenv("XDG_CACHE_HOME", "/home/u/.cache", 1), 0);
    assert_int_equal(rf_worker_config_load(NULL, &cfg, &err), 0);
    assert_string_equal(cfg->source, "");
    assert_string_equal(cfg->coordinator, "tcp://127.0.0.1:7600");
    assert_string_equal(cfg->blobs, "tcp://127.0.0.1:7602");
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    assert_string_equal(cfg->name, host);
    assert_int_equal(cfg->slots, 0);
    assert_string_equal(cfg->cache_dir, "/home/u/.cache/reelfarm");
    assert_int_equal(cfg->drain_grace_s, 60);
    assert_string_equal(cfg->log_level, "info");
    assert_string_equal(cfg->decode, "auto");
    rf_worker_config_destroy(&cfg);

    /* A relative XDG_CACHE_HOME is invalid by the XDG spec and ignored; so is none. */
    assert_int_equal(setenv("XDG_CACHE_HOME", "rel/cache", 1), 0);
    assert_int_equal(rf_worker_config_load(NULL, &cfg, &err), 0);
    snprintf(want, sizeof(want), "/tmp/reelfarm-%u", (unsigned)getuid());
    assert_string_equal(cfg->cache_dir, want);
    rf_worker_config_destroy(&cfg);
    assert_int_equal(unsetenv("XDG_CACHE_HOME"), 0);
    assert_int_equal(rf_worker_config_load(NULL, &cfg, &err), 0);
    assert_string_equal(cfg->cache_dir, want);
    rf_worker_config_destroy(&cfg);
    rf_worker_config_destroy(&cfg);
}

static void test_worker_blobs_derived(void **state)
{
    static const struct {
        const char *yaml;
        const char *coordinator, *blobs;
    } cases[] = {
        {"version: 1\ncoordinator: tcp://10.0.0.5:7600\n", "tcp://10.0.0.5:7600",
         "tcp://10.0.0.5:7602"},
        {"version: 1\ncoordinator: tcp://farm.example:9000\n", "tcp://farm.example:9000",
         "tcp://farm.example:7602"},
        {"version: 1\ncoordinator: 'tcp://[::1]:7600'\n", "tcp://[::1]:7600", "tcp://[::1]:7602"},
        {"version: 1\ncoordinator: tcp://10.0.0.5:7600\nblobs: tcp://10.0.0.6:8000\n",
         "tcp://10.0.0.5:7600", "tcp://10.0.0.6:8000"},
        {"version: 1\ncoordinator: ipc:///run/rf.sock\nblobs: ipc:///run/rf-blobs.sock\n",
         "ipc:///run/rf.sock", "ipc:///run/rf-blobs.sock"},
    };

    (void)state;
    for (size_t i = 0; i < S_COUNT(cases); i++) {
        rf_worker_config_t *cfg = NULL;
        rf_err_t err = {0};
        if (rf_worker_config_load(s_file(cases[i].yaml), &cfg, &err) != 0) {
            print_error("case %zu: %s\n", i, err.msg);
            fail();
        }
        assert_string_equal(cfg->coordinator, cases[i].coordinator);
        assert_string_equal(cfg->blobs, cases[i].blobs);
        rf_worker_config_destroy(&cfg);
    }
}

static void test_worker_file(void **state)
{
    const char *path = s_file("version: 1\nname: gpu-7\nslots: 1024\ncache_dir: cache\n"
                              "drain_grace_s: 0\nlog_level: error\n"
                              "pass_dirs: [/opt/reelfarm/passes, plugins]\ndecode: nvdec\n");
    rf_worker_config_t *cfg = NULL;
    rf_err_t err = {0};
    char *real = realpath(s_tmp, NULL);
    char want[512];

    (void)state;
    assert_non_null(real);
    assert_int_equal(rf_worker_config_load(path, &cfg, &err), 0);
    assert_string_equal(cfg->source, path);
    assert_string_equal(cfg->name, "gpu-7");
    assert_int_equal(cfg->slots, 1024);
    snprintf(want, sizeof(want), "%s/cache", real);
    assert_string_equal(cfg->cache_dir, want);
    assert_int_equal(cfg->drain_grace_s, 0);
    assert_string_equal(cfg->log_level, "error");
    assert_string_equal(cfg->decode, "nvdec");
    assert_int_equal(cfg->npass_dirs, 2);
    assert_string_equal(cfg->pass_dirs[0], "/opt/reelfarm/passes");
    snprintf(want, sizeof(want), "%s/plugins", real);
    assert_string_equal(cfg->pass_dirs[1], want);
    assert_int_equal(rf_worker_config_add_pass_dir(cfg, "/x"), 0);
    assert_int_equal(cfg->npass_dirs, 3);
    assert_string_equal(cfg->pass_dirs[2], "/x");
    rf_worker_config_destroy(&cfg);
    free(real);
}

static void test_set_string(void **state)
{
    char *field = NULL;

    (void)state;
    assert_int_equal(rf_config_set_string(&field, "a"), 0);
    assert_string_equal(field, "a");
    assert_int_equal(rf_config_set_string(&field, "bcd"), 0);
    assert_string_equal(field, "bcd");
    assert_int_equal(rf_config_set_string(&field, NULL), 0);
    assert_null(field);
}

static void test_examples_load(void **state)
{
    rf_coordinator_config_t *coord = NULL;
    rf_worker_config_t *worker = NULL;
    rf_err_t err = {0};

    (void)state;
    s_assert_loaded(rf_coordinator_config_load(s_example("coordinator.yaml"), &coord, &err), &err);
    assert_string_equal(coord->state_dir, "/var/lib/reelfarm");
    assert_int_equal(coord->nmedia_roots, 1);
    rf_coordinator_config_destroy(&coord);

    s_assert_loaded(rf_worker_config_load(s_example("worker.yaml"), &worker, &err), &err);
    assert_string_equal(worker->coordinator, "tcp://10.0.0.5:7600");
    assert_string_equal(worker->blobs, "tcp://10.0.0.5:7602");
    rf_worker_config_destroy(&worker);
}

static int s_setup(void **state)
{
    (void)state;
    return s_tmp_make("/tmp/rf-daemon-XXXXXX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_coordinator_defaults),
        cmocka_unit_test(test_coordinator_file),
        cmocka_unit_test(test_worker_defaults),
        cmocka_unit_test(test_worker_blobs_derived),
        cmocka_unit_test(test_worker_file),
        cmocka_unit_test(test_set_string),
        cmocka_unit_test(test_examples_load),
    };
    return cmocka_run_group_tests(tests, s_setup, s_tmp_teardown);
}
