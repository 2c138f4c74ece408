/* render.c - `reelfarm render JOB.yaml [--workers N]`: a whole job on an embedded local farm.
 *
 * A private coordinator and N workers run on threads of this process and talk over real ZeroMQ
 * sockets on loopback (ports chosen by the system), exactly as a cluster would: the one-machine
 * default is the same code path as the farm, not a shortcut around it. Everything is torn down
 * before the command exits, so no process or socket outlives it.
 */
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "nn.h"
#include "config.h"
#include "coordinator.h"
#include "log.h"
#include "provenance.h"
#include "worker.h"

#define RF_RENDER_MAX_WORKERS 64

static volatile int s_interrupted;

static void s_on_sigint(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

static void *s_coordinator_main(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

static void *s_worker_main(void *arg)
{
    rf_worker_run(arg);
    return NULL;
}

static int s_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0; /* keep going: remove what can be removed */
}

/* Removes the private state folder (made by mkdtemp, so nobody else's files are in it). */
static void s_rmtree(const char *path)
{
    nftw(path, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int rf_cli_render(const rf_cli_args_t *a)
{
    long nworkers = 2;
    bool keep = rf_cli_has(a, "keep-state"), verbose = rf_cli_has(a, "verbose");
    bool quiet = rf_cli_has(a, "quiet");
    const char *workers_arg = rf_cli_arg(a, "workers");
    if (workers_arg) {
        char *end = NULL;
        nworkers = strtol(workers_arg, &end, 10);
        if (!*workers_arg || !end || *end || nworkers < 1 || nworkers > RF_RENDER_MAX_WORKERS)
            return rf_cli_usage_error(a->cmd, "flag '--workers': expected 1..%d, got '%s'",
                                      RF_RENDER_MAX_WORKERS, workers_arg);
    }
    const char *verify = rf_cli_arg(a, "verify");
    if (verify && strcmp(verify, "full") && strcmp(verify, "sample"))
        return rf_cli_usage_error(a->cmd, "flag '--verify': expected full or sample, got '%s'",
                                  verify);
    const char *spec_path = a->operands[0];
    rf_err_t err = {0};
    rf_job_spec_t *spec = NULL;
    /* Check the spec here first: its errors name the file and line, before anything starts. */
    if (rf_job_spec_load_file(spec_path, &spec, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    struct stat st;
    if (stat(spec->input, &st) != 0) {
        fprintf(stderr, "reelfarm: %s: input '%s': no such file\n", spec_path, spec->input);
        rf_job_spec_destroy(&spec);
        return RF_EXIT_USAGE;
    }
    rf_job_spec_destroy(&spec);
    /* The command reports the outcome itself; the embedded daemons' logs are for --verbose. */
    rf_log_setup(verbose ? RF_LOG_INFO : RF_LOG_OFF, RF_LOG_AUTO, 2);

    const char *tmp = getenv("TMPDIR");
    char state[PATH_MAX];
    snprintf(state, sizeof(state), "%s/reelfarm-render-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(state)) {
        fprintf(stderr, "reelfarm: cannot create a state folder in '%s'\n", tmp ? tmp : "/tmp");
        return RF_EXIT_FAILED;
    }
    int code = RF_EXIT_FAILED;
    char signing[PATH_MAX + 8] = "", config_dir[PATH_MAX];
    bool made_keys = false;
    rf_coordinator_t *coord = NULL;
    rf_worker_t *workers[RF_RENDER_MAX_WORKERS] = {0};
    pthread_t coord_thread, worker_threads[RF_RENDER_MAX_WORKERS];
    bool coord_running = false;
    long started = 0;
    rf_client_t *client = NULL;
    rf_coordinator_config_t *ccfg = NULL;
    rf_worker_config_t *wcfg = NULL;

    /* Coordinator and workers share this host, so the blob store is shared storage: inputs are
     * read in place and results hard-linked in, never copied over the blob socket. */
    char blobs[PATH_MAX + 16];
    snprintf(blobs, sizeof(blobs), "%s/blobs", state);
    if (rf_coordinator_config_load(NULL, &ccfg, &err) ||
        rf_config_set_string(&ccfg->state_dir, state) ||
        rf_config_set_string(&ccfg->shared_blobs, blobs) ||
        rf_config_set_string(&ccfg->listen_workers, "tcp://127.0.0.1:*") ||
        rf_config_set_string(&ccfg->listen_clients, "tcp://127.0.0.1:*") ||
        rf_config_set_string(&ccfg->listen_blobs, "tcp://127.0.0.1:*") ||
        rf_config_set_string(&ccfg->http_listen, "127.0.0.1:0")) { /* dashboard on a free port */
        fprintf(stderr, "reelfarm: %s\n", err.code ? err.msg : "out of memory");
        goto out;
    }
    ccfg->verify_sample = verify && !strcmp(verify, "sample");
    /* Every output is signed (docs/PROVENANCE.md): with the user's farm key, made once. */
    const char *signing_arg = rf_cli_arg(a, "signing-dir");
    if (signing_arg)
        snprintf(signing, sizeof(signing), "%s", signing_arg);
    else if (!rf_cli_config_dir(config_dir, sizeof(config_dir), &err))
        snprintf(signing, sizeof(signing), "%s/c2pa", config_dir);
    if (err.code || rf_prov_ensure_keys(signing, &made_keys, &err) ||
        rf_config_set_string(&ccfg->signing_dir, signing)) {
        fprintf(stderr, "reelfarm: C2PA signing keys: %s\n", err.code ? err.msg : "out of memory");
        goto out;
    }
    if (rf_coordinator_new(ccfg, &coord, &err)) {
        fprintf(stderr, "reelfarm: cannot start the local coordinator: %s\n", err.msg);
        goto out;
    }
    if (pthread_create(&coord_thread, NULL, s_coordinator_main, coord) != 0) {
        fprintf(stderr, "reelfarm: cannot start the local coordinator thread\n");
        goto out;
    }
    coord_running = true;
    for (long i = 0; i < nworkers; i++) {
        char name[32], cache[PATH_MAX + 64];
        snprintf(name, sizeof(name), "local-%ld", i + 1);
        snprintf(cache, sizeof(cache), "%s/worker-%ld", state, i + 1);
        rf_worker_config_destroy(&wcfg);
        if (rf_worker_config_load(NULL, &wcfg, &err) ||
            rf_config_set_string(&wcfg->coordinator, rf_coordinator_endpoint(coord, RF_EP_WORKERS)) ||
            rf_config_set_string(&wcfg->blobs, rf_coordinator_endpoint(coord, RF_EP_BLOBS)) ||
            rf_config_set_string(&wcfg->name, name) || rf_config_set_string(&wcfg->cache_dir, cache) ||
            rf_config_set_string(&wcfg->shared_blobs, blobs)) {
            fprintf(stderr, "reelfarm: %s\n", err.code ? err.msg : "out of memory");
            goto out;
        }
        wcfg->slots = 1;
        if (rf_worker_new(wcfg, &workers[i], &err)) {
            fprintf(stderr, "reelfarm: cannot start local worker %ld: %s\n", i + 1, err.msg);
            goto out;
        }
        if (pthread_create(&worker_threads[i], NULL, s_worker_main, workers[i]) != 0) {
            rf_worker_destroy(&workers[i]);
            fprintf(stderr, "reelfarm: cannot start local worker thread %ld\n", i + 1);
            goto out;
        }
        started++;
    }
    /* The local workers share this machine's cores (each set cores / its slots on its own): their
     * onnx passes' matrix products too. */
    rf_nn_set_cpu_threads((int)(sysconf(_SC_NPROCESSORS_ONLN) / nworkers));
    if (rf_client_new_sec(rf_coordinator_endpoint(coord, RF_EP_CLIENTS), NULL, &client, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        goto out;
    }
    char job_id[64];
    if (rf_client_submit(client, spec_path, job_id, sizeof(job_id), &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        code = err.code == RF_ECONFIG || err.code == RF_ENOENT ? RF_EXIT_USAGE : RF_EXIT_FAILED;
        goto out;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    code = rf_cli_follow(client, job_id, quiet, true, UINT64_MAX, &s_interrupted);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
out:
    rf_client_destroy(&client);
    for (long i = 0; i < started; i++)
        rf_worker_stop(workers[i], false);
    for (long i = 0; i < started; i++) {
        pthread_join(worker_threads[i], NULL);
        rf_worker_destroy(&workers[i]);
    }
    if (coord_running) {
        rf_coordinator_stop(coord);
        pthread_join(coord_thread, NULL);
    }
    rf_coordinator_destroy(&coord);
    rf_coordinator_config_destroy(&ccfg);
    rf_worker_config_destroy(&wcfg);
    if (keep)
        fprintf(stderr, "reelfarm: state kept in '%s'\n", state);
    else
        s_rmtree(state);
    /* After the outcome: a failed render keeps its one error line. */
    if (made_keys && !quiet && code == RF_EXIT_OK)
        fprintf(stderr,
                "reelfarm: made a farm CA and C2PA signing key in '%s'; verify outputs as "
                "trusted with `reelfarm verify FILE --trust %s/ca.pem`\n",
                signing, signing);
    return code;
}
