/* reelfarm-coordinator: the standalone coordinator daemon.
 *
 *   reelfarm-coordinator --state DIR [--config FILE] [--listen-workers EP] [--listen-clients EP]
 *                        [--listen-blobs EP] [--listen-http HOST:PORT] [--log-level LEVEL]
 *                        [--key FILE --authorized-keys DIR] [--insecure]
 *
 * Flags override the config file, which overrides the defaults (loopback ports 7600-7602, HTTP
 * on 127.0.0.1:7603; `--listen-http ""` turns HTTP off).
 * SIGINT/SIGTERM stop it cleanly; kill -9 loses nothing durable (DESIGN §7). SIGHUP reads the CURVE
 * allow-list folder again (docs/SECURITY.md).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "coordinator.h"
#include "log.h"
#include "media.h"

static rf_coordinator_t *s_coordinator;

static void s_on_signal(int sig)
{
    (void)sig;
    if (s_coordinator)
        rf_coordinator_stop(s_coordinator); /* uv_async_send is async-signal-safe */
}

static void s_on_hup(int sig)
{
    (void)sig;
    if (s_coordinator)
        rf_coordinator_reload_keys(s_coordinator); /* an atomic store */
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: reelfarm-coordinator --state DIR [--config FILE] [--listen-workers EP]\n"
               "                            [--listen-clients EP] [--listen-blobs EP]\n"
               "                            [--listen-http HOST:PORT] [--log-level LEVEL]\n"
               "                            [--verify full|sample] [--shared-blobs DIR]\n"
               "                            [--key FILE --authorized-keys DIR] [--insecure]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state", required_argument, NULL, 's'},
        {"config", required_argument, NULL, 'c'},
        {"listen-workers", required_argument, NULL, 'w'},
        {"listen-clients", required_argument, NULL, 'l'},
        {"listen-blobs", required_argument, NULL, 'b'},
        {"listen-http", required_argument, NULL, 'H'},
        {"log-level", required_argument, NULL, 'v'},
        {"verify", required_argument, NULL, 'V'},
        {"shared-blobs", required_argument, NULL, 'S'},
        {"key", required_argument, NULL, 'k'},
        {"authorized-keys", required_argument, NULL, 'a'},
        {"insecure", no_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *state = NULL, *config = NULL, *lw = NULL, *lc = NULL, *lb = NULL, *level = NULL;
    const char *verify = NULL, *lh = NULL, *shared = NULL, *key = NULL, *authorized = NULL;
    int insecure = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': state = optarg; break;
        case 'c': config = optarg; break;
        case 'w': lw = optarg; break;
        case 'l': lc = optarg; break;
        case 'b': lb = optarg; break;
        case 'H': lh = optarg; break;
        case 'S': shared = optarg; break;
        case 'v': level = optarg; break;
        case 'V':
            if (strcmp(optarg, "full") && strcmp(optarg, "sample")) {
                fprintf(stderr, "reelfarm-coordinator: --verify: expected full or sample, got '%s'\n",
                        optarg);
                s_usage(stderr);
                return 2;
            }
            verify = optarg;
            break;
        case 'k': key = optarg; break;
        case 'a': authorized = optarg; break;
        case 'i': insecure = 1; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "reelfarm-coordinator: unexpected argument '%s'\n", argv[optind]);
        s_usage(stderr);
        return 2;
    }
    rf_err_t err = {0};
    rf_coordinator_config_t *cfg = NULL;
    if (rf_coordinator_config_load(config, &cfg, &err)) {
        fprintf(stderr, "reelfarm-coordinator: %s\n", err.msg);
        return 2;
    }
    if ((state && rf_config_set_string(&cfg->state_dir, state)) ||
        (lw && rf_config_set_string(&cfg->listen_workers, lw)) ||
        (lc && rf_config_set_string(&cfg->listen_clients, lc)) ||
        (lb && rf_config_set_string(&cfg->listen_blobs, lb)) ||
        (lh && rf_config_set_string(&cfg->http_listen, lh)) ||
        (shared && rf_config_set_string(&cfg->shared_blobs, shared)) ||
        (level && rf_config_set_string(&cfg->log_level, level)) ||
        (key && rf_config_set_string(&cfg->security_key, key)) ||
        (authorized && rf_config_set_string(&cfg->authorized_keys, authorized))) {
        fprintf(stderr, "reelfarm-coordinator: out of memory\n");
        return 1;
    }
    if (verify)
        cfg->verify_sample = !strcmp(verify, "sample");
    if (insecure)
        cfg->insecure = true;
    if (!cfg->state_dir || !*cfg->state_dir) {
        fprintf(stderr, "reelfarm-coordinator: no state folder: pass --state DIR or set state_dir in "
                        "the config\n");
        s_usage(stderr);
        rf_coordinator_config_destroy(&cfg);
        return 2;
    }
    int lvl = rf_log_level_parse(cfg->log_level ? cfg->log_level : "info");
    if (lvl < 0) {
        fprintf(stderr, "reelfarm-coordinator: unknown log level '%s' (debug|info|warn|error|off)\n",
                cfg->log_level);
        rf_coordinator_config_destroy(&cfg);
        return 2;
    }
    rf_log_setup((rf_log_level_t)lvl, RF_LOG_AUTO, 2);
    signal(SIGPIPE, SIG_IGN);
    rf_media_log_init();
    if (rf_coordinator_new(cfg, &s_coordinator, &err)) {
        fprintf(stderr, "reelfarm-coordinator: %s\n", err.msg);
        rf_coordinator_config_destroy(&cfg);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = s_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    /* RF_EAGAIN: state.db could not be written (disk full) and space is back: reload from it. */
    while (rf_coordinator_run(s_coordinator) == RF_EAGAIN) {
        rf_coordinator_destroy(&s_coordinator);
        if (rf_coordinator_new(cfg, &s_coordinator, &err)) {
            fprintf(stderr, "reelfarm-coordinator: reloading the state: %s\n", err.msg);
            rf_coordinator_config_destroy(&cfg);
            return 1;
        }
    }
    rf_coordinator_config_destroy(&cfg);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    rf_coordinator_destroy(&s_coordinator);
    return 0;
}
