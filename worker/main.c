/* reelfarm-worker: the standalone render node.
 *
 *   reelfarm-worker [--coordinator tcp://HOST:7600] [--blobs tcp://HOST:7602] [--slots N]
 *                   [--name NAME] [--cache DIR] [--config FILE] [--log-level LEVEL]
 *                   [--pass-dir DIR]...
 *                   [--test-fault KIND[@N]]
 *
 * --test-fault (or REELFARM_TEST_FAULT) is for tests only: the worker misbehaves on purpose
 * (see rf_worker_set_test_fault in worker.h).
 *
 * SIGTERM drains (finish or, after the grace period, hand back running chunks); SIGINT stops now.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "media.h"
#include "passes.h"
#include "worker.h"

static rf_worker_t *s_worker;

static void s_on_signal(int sig)
{
    if (s_worker)
        rf_worker_stop(s_worker, sig == SIGTERM); /* uv_async_send is async-signal-safe */
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: reelfarm-worker [--coordinator tcp://HOST:7600] [--blobs tcp://HOST:7602]\n"
               "                       [--slots N] [--name NAME] [--cache DIR] [--config FILE]\n"
               "                       [--log-level debug|info|warn|error] [--pass-dir DIR]...\n"
               "                       [--shared-blobs DIR]\n"
               "                       [--key NAME.key --coordinator-key coordinator.pub]\n"
               "                       [--decode auto|cpu|nvdec]\n"
               "                       [--test-fault bad-checksum|wrong-count|hang|slow:MS[@N]]"
               " (tests only)\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"coordinator", required_argument, NULL, 'c'},
        {"blobs", required_argument, NULL, 'b'},
        {"slots", required_argument, NULL, 's'},
        {"name", required_argument, NULL, 'n'},
        {"cache", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'f'},
        {"log-level", required_argument, NULL, 'v'},
        {"test-fault", required_argument, NULL, 't'},
        {"pass-dir", required_argument, NULL, 'p'},
        {"shared-blobs", required_argument, NULL, 'S'},
        {"key", required_argument, NULL, 'K'},
        {"coordinator-key", required_argument, NULL, 'C'},
        {"decode", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *coord = NULL, *blobs = NULL, *name = NULL, *cache = NULL, *config = NULL;
    const char *level = NULL, *fault = getenv("REELFARM_TEST_FAULT"), *shared = NULL;
    const char *key = NULL, *coord_key = NULL, *decode = NULL;
    const char *pass_dirs[16];
    size_t npass_dirs = 0;
    long slots = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'c': coord = optarg; break;
        case 'b': blobs = optarg; break;
        case 'n': name = optarg; break;
        case 'd': cache = optarg; break;
        case 'f': config = optarg; break;
        case 'K': key = optarg; break;
        case 'C': coord_key = optarg; break;
        case 'v': level = optarg; break;
        case 't': fault = optarg; break;
        case 'S': shared = optarg; break;
        case 'D': decode = optarg; break;
        case 'p':
            if (npass_dirs == sizeof pass_dirs / sizeof pass_dirs[0]) {
                fprintf(stderr, "reelfarm-worker: --pass-dir: at most %zu folders\n",
                        sizeof pass_dirs / sizeof pass_dirs[0]);
                return 2;
            }
            pass_dirs[npass_dirs++] = optarg;
            break;
        case 's':
            slots = strtol(optarg, &end, 10);
            if (!end || *end || slots < 1 || slots > RF_WORKER_MAX_SLOTS) {
                fprintf(stderr, "reelfarm-worker: --slots: expected 1..%d, got '%s'\n",
                        RF_WORKER_MAX_SLOTS, optarg);
                return 2;
            }
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "reelfarm-worker: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    rf_err_t err = {0};
    rf_worker_config_t *cfg = NULL;
    if (rf_worker_config_load(config, &cfg, &err)) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        return 2;
    }
    if (coord && rf_config_set_string(&cfg->coordinator, coord))
        return 1;
    if (blobs && rf_config_set_string(&cfg->blobs, blobs))
        return 1;
    if (coord && !blobs) {
        /* Same host as the coordinator, blob port 7602 unless the port was explicit. */
        const char *colon = strrchr(coord, ':');
        char derived[600];
        if (colon && colon > coord + 6) {
            snprintf(derived, sizeof(derived), "%.*s:7602", (int)(colon - coord), coord);
            if (rf_config_set_string(&cfg->blobs, derived))
                return 1;
        }
    }
    if ((name && rf_config_set_string(&cfg->name, name)) ||
        (cache && rf_config_set_string(&cfg->cache_dir, cache)) ||
        (level && rf_config_set_string(&cfg->log_level, level)) ||
        (shared && rf_config_set_string(&cfg->shared_blobs, shared)) ||
        (key && rf_config_set_string(&cfg->security_key, key)) ||
        (coord_key && rf_config_set_string(&cfg->coordinator_key, coord_key)) ||
        (decode && rf_config_set_string(&cfg->decode, decode)))
        return 1;
    if (slots > 0)
        cfg->slots = (int)slots;
    if (!cfg->security_key != !cfg->coordinator_key) {
        fprintf(stderr, "reelfarm-worker: CURVE needs both the worker's key (--key NAME.key) and the "
                        "coordinator's public key (--coordinator-key coordinator.pub)\n");
        rf_worker_config_destroy(&cfg);
        return 2;
    }
    for (size_t i = 0; i < npass_dirs; i++) {
        if (rf_worker_config_add_pass_dir(cfg, pass_dirs[i]) != 0) {
            fprintf(stderr, "reelfarm-worker: --pass-dir '%s': at most 16 pass folders in all\n",
                    pass_dirs[i]);
            rf_worker_config_destroy(&cfg);
            return 2;
        }
    }
    int lvl = rf_log_level_parse(cfg->log_level ? cfg->log_level : "info");
    if (lvl < 0) {
        fprintf(stderr, "reelfarm-worker: unknown log level '%s' (debug|info|warn|error|off)\n",
                cfg->log_level);
        return 2;
    }
    rf_log_setup((rf_log_level_t)lvl, RF_LOG_AUTO, 2);
    signal(SIGPIPE, SIG_IGN);
    rf_media_log_init();
    /* Plugins load before rf_worker_new, which advertises every pass it can look up, and before
     * any slot thread exists (the registry is read-only afterwards). A broken plugin stops the
     * worker: running without a pass the operator asked for would only fail chunks later. */
    for (size_t i = 0; i < cfg->npass_dirs; i++) {
        if (rf_pass_plugins_load_dir(cfg->pass_dirs[i], &err)) {
            fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
            rf_pass_plugins_unload();
            rf_worker_config_destroy(&cfg);
            return 2;
        }
    }
    for (size_t i = 0; i < rf_pass_plugin_count(); i++)
        RF_INFO("worker", "pass plugin '%s' loaded", rf_pass_plugin_name(i));
    /* The ONNX executor's cuDNN algorithm cache (nn.h: options.cache_dir, else this variable)
     * lives in the worker's cache folder unless the operator chose another place; set here,
     * while this process has one thread. */
    if (!getenv("RF_NN_CACHE_DIR") && cfg->cache_dir && *cfg->cache_dir)
        setenv("RF_NN_CACHE_DIR", cfg->cache_dir, 0);
    if (rf_worker_new(cfg, &s_worker, &err)) {
        fprintf(stderr, "reelfarm-worker: %s\n", err.msg);
        rf_worker_config_destroy(&cfg);
        rf_pass_plugins_unload();
        return 1;
    }
    rf_worker_config_destroy(&cfg);
    if (rf_worker_set_test_fault(s_worker, fault, &err)) {
        fprintf(stderr, "reelfarm-worker: --test-fault: %s\n", err.msg);
        rf_worker_destroy(&s_worker);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rf_worker_run(s_worker);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    rf_worker_destroy(&s_worker);
    rf_pass_plugins_unload();
    return 0;
}
