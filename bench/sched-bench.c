/* sched-bench.c - scheduler throughput: W simulated workers that answer at once, N chunks.
 *
 * An in-process coordinator (its own thread, real ZeroMQ over loopback, its SQLite store in a
 * mkdtemp folder) gets one running bench job of N chunks (rf_coordinator_bench_job: encoder ffv1,
 * inputs that do not exist). The main thread plays W workers, one ZMQ_DEALER each with routing id
 * "sim-N/inst": Hello{slots 1, encoders [ffv1]}, wait for every Welcome, then every worker sends
 * Ready{slot 0} at once. Whenever a worker receives an Assign the latency (receipt - its Ready's
 * send time) is recorded and the worker sends its next Ready at once, as if the chunk had been
 * rendered in no time (the coordinator keeps the old lease, which is fine here: every chunk is
 * assigned once). The run ends when N chunks have been assigned.
 *
 * It is a closed loop: every worker always has exactly one Ready outstanding, so by Little's law
 * the mean Ready->Assign latency is about W / throughput. The latency therefore says how long a
 * worker waits in a farm of W idle workers, not the coordinator's service time per message.
 *
 * Not a test (STYLE item 9): results go to docs/PERFORMANCE.md with the command, machine and date.
 *
 *   reelfarm-sched-bench [--workers W] [--chunks N] [--frames-per-chunk F] [--sweep]
 *                        [--log-level LEVEL] [--timeout S] [--progress]
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "codec.h"
#include "config.h"
#include "coordinator.h"
#include "log.h"
#include "rftime.h"

#define SB_MAX_WORKERS 4000 /* the coordinator knows at most 4096 workers */
#define SB_HEARTBEAT_NS (1000ull * 1000 * 1000)

static bool s_inproc; /* --transport inproc */

typedef struct sb_sim {
    void *sock;
    uint64_t ready_ns; /* send time of the outstanding Ready, 0 when none */
    uint64_t sent_ns;  /* last message sent, for our own heartbeats */
    bool welcomed;
} sb_sim_t;

typedef struct sb_result {
    int workers;
    size_t chunks;
    int frames_per_chunk;
    size_t assigned;
    size_t duplicates;  /* chunk indices assigned twice (should be 0) */
    size_t reconnects;  /* Disconnects answered with a new Hello (should be 0) */
    double hello_s;     /* connect + Hello -> every Welcome */
    double elapsed_s;   /* first Ready -> last Assign */
    double rate;        /* assigned / elapsed_s */
    double steady_rate; /* after the first wave (the first W assignments) */
    double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
    double wave_p99_ms, wave_max_ms; /* the first wave alone */
    double steady_p99_ms;            /* everything after the first wave */
    double coord_cpu_s, sim_cpu_s;   /* CPU time of the coordinator thread and of this thread */
    bool timed_out;
} sb_result_t;

static void *s_coord_main(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

static int s_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

static double s_thread_cpu_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts))
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double s_pct_ms(const uint64_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted[rank - 1] / 1e6;
}

static int s_send_env(sb_sim_t *w, Reelfarm__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (rf_msg_pack(env, RF_CONTROL_MAX_FRAME, &buf, &len))
        return -1;
    int rc = zmq_send(w->sock, buf, len, ZMQ_DONTWAIT);
    free(buf);
    w->sent_ns = rf_now_ns();
    return rc < 0 ? -1 : 0;
}

static int s_send_hello(sb_sim_t *w, int i)
{
    char name[32];
    snprintf(name, sizeof(name), "sim-%d", i);
    char *encoders[] = {"ffv1"};
    Reelfarm__Capabilities caps = REELFARM__CAPABILITIES__INIT;
    caps.n_encoders = 1;
    caps.encoders = encoders;
    caps.cpu_cores = 1;
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    h.name = name;
    h.slots = 1;
    h.caps = &caps;
    h.instance = "inst";
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    return s_send_env(w, &env);
}

/* The Ready frame is the same for every worker and every time: packed once. */
static bool s_progress; /* --progress: one line a second on stderr */
static uint8_t *s_ready_buf;
static size_t s_ready_len;

static int s_send_ready(sb_sim_t *w)
{
    w->ready_ns = rf_now_ns();
    w->sent_ns = w->ready_ns;
    return zmq_send(w->sock, s_ready_buf, s_ready_len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

static void s_send_heartbeat(sb_sim_t *w)
{
    Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    s_send_env(w, &env);
}

/* One measurement with a fresh coordinator. Returns 0, or -1 when it could not run at all. */
static int s_run_one(int nworkers, size_t nchunks, int fpc, double timeout_s, sb_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->workers = nworkers;
    r->chunks = nchunks;
    r->frames_per_chunk = fpc;

    const char *tmp = getenv("TMPDIR");
    char state[PATH_MAX];
    snprintf(state, sizeof(state), "%s/reelfarm-sched-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(state)) {
        fprintf(stderr, "sched-bench: cannot create a state folder: %s\n", strerror(errno));
        return -1;
    }
    int ret = -1;
    rf_err_t err = {0};
    rf_coordinator_config_t *cfg = NULL;
    rf_coordinator_t *coord = NULL;
    pthread_t thread;
    bool running = false;
    void *ctx = NULL;
    sb_sim_t *sims = calloc((size_t)nworkers, sizeof(*sims));
    zmq_pollitem_t *items = calloc((size_t)nworkers, sizeof(*items));
    uint64_t *lat = calloc(nchunks, sizeof(*lat));
    uint8_t *seen = calloc(nchunks, 1);
    if (!sims || !items || !lat || !seen) {
        fprintf(stderr, "sched-bench: out of memory\n");
        goto out;
    }

    if (rf_coordinator_config_load(NULL, &cfg, &err) || rf_config_set_string(&cfg->state_dir, state) ||
        rf_config_set_string(&cfg->listen_workers,
                             s_inproc ? "inproc://rf-sched-bench-workers" : "tcp://127.0.0.1:*") ||
        rf_config_set_string(&cfg->listen_clients, "tcp://127.0.0.1:*") ||
        rf_config_set_string(&cfg->listen_blobs, "tcp://127.0.0.1:*") ||
        rf_config_set_string(&cfg->http_listen, "")) {
        fprintf(stderr, "sched-bench: %s\n", err.code ? err.msg : "out of memory");
        goto out;
    }
    if (rf_coordinator_new(cfg, &coord, &err)) {
        fprintf(stderr, "sched-bench: cannot start the coordinator: %s\n", err.msg);
        goto out;
    }
    char job_id[64];
    if (rf_coordinator_bench_job(coord, nchunks, fpc, job_id, &err)) {
        fprintf(stderr, "sched-bench: cannot add the bench job: %s\n", err.msg);
        goto out;
    }
    if (pthread_create(&thread, NULL, s_coord_main, coord) != 0) {
        fprintf(stderr, "sched-bench: cannot start the coordinator thread\n");
        goto out;
    }
    running = true;
    clockid_t coord_clock;
    if (pthread_getcpuclockid(thread, &coord_clock))
        coord_clock = CLOCK_PROCESS_CPUTIME_ID;
    const char *ep = rf_coordinator_endpoint(coord, RF_EP_WORKERS);

    /* inproc: the simulated workers share the coordinator's context (no TCP, no I/O threads). */
    ctx = s_inproc ? rf_coordinator_zmq_context(coord) : zmq_ctx_new();
    if (!ctx || zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, nworkers + 64)) {
        fprintf(stderr, "sched-bench: zmq context: %s\n", zmq_strerror(errno));
        goto out;
    }

    /* Connect everybody and say Hello. */
    uint64_t t0 = rf_now_ns();
    for (int i = 0; i < nworkers; i++) {
        char rid[48];
        int len = snprintf(rid, sizeof(rid), "sim-%d/inst", i);
        int zero = 0;
        sims[i].sock = zmq_socket(ctx, ZMQ_DEALER);
        if (!sims[i].sock || zmq_setsockopt(sims[i].sock, ZMQ_ROUTING_ID, rid, (size_t)len) ||
            zmq_setsockopt(sims[i].sock, ZMQ_LINGER, &zero, sizeof(zero)) || zmq_connect(sims[i].sock, ep)) {
            fprintf(stderr, "sched-bench: worker %d: %s\n", i, zmq_strerror(errno));
            goto out;
        }
        items[i].socket = sims[i].sock;
        items[i].events = ZMQ_POLLIN;
        if (s_send_hello(&sims[i], i)) {
            fprintf(stderr, "sched-bench: worker %d: cannot send Hello: %s\n", i, zmq_strerror(errno));
            goto out;
        }
    }
    int welcomed = 0;
    while (welcomed < nworkers) {
        if ((double)(rf_now_ns() - t0) / 1e9 > timeout_s) {
            fprintf(stderr, "sched-bench: only %d of %d workers welcomed\n", welcomed, nworkers);
            goto out;
        }
        int n = zmq_poll(items, nworkers, 100);
        if (n < 0 && errno != EINTR)
            goto out;
        for (int i = 0; i < nworkers && n > 0; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            while (zmq_msg_recv(&msg, sims[i].sock, ZMQ_DONTWAIT) >= 0) {
                rf_msg_t *m = NULL;
                size_t len = zmq_msg_size(&msg);
                if (!rf_msg_unpack(zmq_msg_data(&msg), len, RF_CONTROL_MAX_FRAME, RF_CODEC_BUDGET(len), &m)) {
                    if (rf_msg_env(m)->body_case == REELFARM__ENVELOPE__BODY_WELCOME && !sims[i].welcomed) {
                        sims[i].welcomed = true;
                        welcomed++;
                    }
                    rf_msg_destroy(&m);
                }
            }
            zmq_msg_close(&msg);
        }
    }
    r->hello_s = (double)(rf_now_ns() - t0) / 1e9;

    /* All at once: every worker is Ready. */
    double coord_cpu0 = s_thread_cpu_s(coord_clock);
    double sim_cpu0 = s_thread_cpu_s(CLOCK_THREAD_CPUTIME_ID);
    uint64_t start = rf_now_ns();
    for (int i = 0; i < nworkers; i++)
        if (s_send_ready(&sims[i])) {
            fprintf(stderr, "sched-bench: worker %d: cannot send Ready: %s\n", i, zmq_strerror(errno));
            goto out;
        }
    uint64_t last_assign = start, wave_end = 0, last_hb_check = start, last_report = start;
    size_t last_count = 0;
    size_t wave = (size_t)nworkers < nchunks ? (size_t)nworkers : nchunks;
    while (r->assigned < nchunks) {
        uint64_t now = rf_now_ns();
        if ((double)(now - last_assign) / 1e9 > timeout_s) {
            fprintf(stderr, "sched-bench: no Assign for %.0f s, giving up at %zu of %zu\n", timeout_s,
                    r->assigned, nchunks);
            r->timed_out = true;
            break;
        }
        if (now - last_hb_check > SB_HEARTBEAT_NS / 4) {
            /* A real worker says something every heartbeat; a slow run must not expire ours. */
            last_hb_check = now;
            for (int i = 0; i < nworkers; i++)
                if (now - sims[i].sent_ns > SB_HEARTBEAT_NS)
                    s_send_heartbeat(&sims[i]);
        }
        if (s_progress && now - last_report >= SB_HEARTBEAT_NS) {
            fprintf(stderr, "sched-bench: %6.1f s  %zu assigned  %.0f/s over the last %.1f s\n",
                    (double)(now - start) / 1e9, r->assigned,
                    (double)(r->assigned - last_count) / ((double)(now - last_report) / 1e9),
                    (double)(now - last_report) / 1e9);
            last_report = now;
            last_count = r->assigned;
        }
        int n = zmq_poll(items, nworkers, 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "sched-bench: zmq_poll: %s\n", zmq_strerror(errno));
            goto out;
        }
        for (int i = 0; i < nworkers && n > 0 && r->assigned < nchunks; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            while (r->assigned < nchunks && zmq_msg_recv(&msg, sims[i].sock, ZMQ_DONTWAIT) >= 0) {
                uint64_t got = rf_now_ns();
                rf_msg_t *m = NULL;
                size_t len = zmq_msg_size(&msg);
                if (rf_msg_unpack(zmq_msg_data(&msg), len, RF_CONTROL_MAX_FRAME, RF_CODEC_BUDGET(len), &m))
                    continue;
                const Reelfarm__Envelope *env = rf_msg_env(m);
                if (env->body_case == REELFARM__ENVELOPE__BODY_ASSIGN) {
                    uint32_t idx = env->assign->chunk;
                    if (idx < nchunks) {
                        if (seen[idx])
                            r->duplicates++;
                        seen[idx] = 1;
                    }
                    lat[r->assigned++] = sims[i].ready_ns ? got - sims[i].ready_ns : 0;
                    last_assign = got;
                    if (r->assigned == wave)
                        wave_end = got;
                    if (r->assigned < nchunks)
                        s_send_ready(&sims[i]);
                } else if (env->body_case == REELFARM__ENVELOPE__BODY_DISCONNECT) {
                    /* It forgot us (expired): say Hello again and be Ready again. */
                    r->reconnects++;
                    s_send_hello(&sims[i], i);
                    s_send_ready(&sims[i]);
                }
                /* Heartbeat and Welcome: nothing to do. */
                rf_msg_destroy(&m);
            }
            zmq_msg_close(&msg);
        }
    }
    r->coord_cpu_s = s_thread_cpu_s(coord_clock) - coord_cpu0;
    r->sim_cpu_s = s_thread_cpu_s(CLOCK_THREAD_CPUTIME_ID) - sim_cpu0;
    r->elapsed_s = (double)(last_assign - start) / 1e9;
    r->rate = r->elapsed_s > 0 ? (double)r->assigned / r->elapsed_s : 0;
    if (wave_end && r->assigned > wave && last_assign > wave_end)
        r->steady_rate = (double)(r->assigned - wave) / ((double)(last_assign - wave_end) / 1e9);

    /* Percentiles: the first wave, the rest, and all together. */
    size_t nw = r->assigned < wave ? r->assigned : wave;
    qsort(lat, nw, sizeof(*lat), s_cmp_u64);
    r->wave_p99_ms = s_pct_ms(lat, nw, 99);
    r->wave_max_ms = nw ? (double)lat[nw - 1] / 1e6 : 0;
    qsort(lat + nw, r->assigned - nw, sizeof(*lat), s_cmp_u64);
    r->steady_p99_ms = s_pct_ms(lat + nw, r->assigned - nw, 99);
    qsort(lat, r->assigned, sizeof(*lat), s_cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < r->assigned; i++)
        sum += (double)lat[i];
    r->mean_ms = r->assigned ? sum / (double)r->assigned / 1e6 : 0;
    r->p50_ms = s_pct_ms(lat, r->assigned, 50);
    r->p90_ms = s_pct_ms(lat, r->assigned, 90);
    r->p99_ms = s_pct_ms(lat, r->assigned, 99);
    r->max_ms = r->assigned ? (double)lat[r->assigned - 1] / 1e6 : 0;
    ret = r->timed_out ? -1 : 0;
out:
    if (running) {
        rf_coordinator_stop(coord);
        pthread_join(thread, NULL);
    }
    /* Our sockets first: over inproc they live in the coordinator's context, which its destroy
     * terminates (and that waits for every socket of the context to be closed). */
    if (sims)
        for (int i = 0; i < nworkers; i++)
            if (sims[i].sock)
                zmq_close(sims[i].sock);
    rf_coordinator_destroy(&coord);
    rf_coordinator_config_destroy(&cfg);
    if (ctx && !s_inproc)
        zmq_ctx_term(ctx);
    nftw(state, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(sims);
    free(items);
    free(lat);
    free(seen);
    return ret;
}

static void s_print_result(const sb_result_t *r)
{
    printf("workers %d, chunks %zu (%d frames each)%s\n", r->workers, r->chunks, r->frames_per_chunk,
           r->timed_out ? "  ** TIMED OUT: partial result **" : "");
    printf("  hello phase:   %d workers welcomed in %.3f s\n", r->workers, r->hello_s);
    printf("  assigned:      %zu in %.3f s (first Ready -> last Assign) = %.0f assignments/s\n", r->assigned,
           r->elapsed_s, r->rate);
    printf("  steady:        %.0f assignments/s after the first wave of %d\n", r->steady_rate,
           r->workers < (int)r->chunks ? r->workers : (int)r->chunks);
    printf("  Ready->Assign: mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms\n", r->mean_ms, r->p50_ms,
           r->p90_ms, r->p99_ms, r->max_ms);
    printf("  first wave:    p99 %.3f  max %.3f ms (all %d Readys arrive at once); after it: p99 %.3f ms\n",
           r->wave_p99_ms, r->wave_max_ms, r->workers, r->steady_p99_ms);
    printf("  Little's law:  rate x mean latency = %.0f outstanding Readys (workers: %d)\n",
           r->rate * r->mean_ms / 1000.0, r->workers);
    printf("  CPU:           coordinator thread %.2f s (%.0f%% of wall, %.1f us/assignment), simulator %.2f s\n",
           r->coord_cpu_s, r->elapsed_s > 0 ? 100.0 * r->coord_cpu_s / r->elapsed_s : 0,
           r->assigned ? 1e6 * r->coord_cpu_s / (double)r->assigned : 0, r->sim_cpu_s);
    printf("  checks:        %zu duplicate assignments, %zu reconnects\n", r->duplicates, r->reconnects);
}

static void s_cpu_model(char *buf, size_t size)
{
    snprintf(buf, size, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                p[strcspn(p, "\n")] = '\0';
                snprintf(buf, size, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

static void s_usage(FILE *f)
{
    fprintf(f, "usage: reelfarm-sched-bench [--workers W] [--chunks N] [--frames-per-chunk F] [--sweep]\n"
               "                            [--transport tcp|inproc] [--log-level debug|info|warn|error|off]\n"
               "                            [--timeout S] [--progress]\n"
               "  --workers W           simulated workers, one slot each (default 1000, at most %d)\n"
               "  --chunks N            chunks in the bench job (default 100000)\n"
               "  --frames-per-chunk F  frames per chunk (default 24)\n"
               "  --sweep               also run with 100 and 10 workers (fresh coordinator each)\n"
               "  --transport T         tcp (default: loopback TCP, as a farm) or inproc (the workers'\n"
               "                        sockets in the coordinator's ZeroMQ context: no kernel, no I/O\n"
               "                        threads - the scheduler's own cost)\n"
               "  --log-level L         the coordinator's log level (default warn: an INFO line per\n"
               "                        assignment would measure stderr)\n"
               "  --timeout S           give up after S s without an Assign (default 30)\n"
               "  --progress            print the assignment rate every second on stderr\n",
            SB_MAX_WORKERS);
}

int main(int argc, char **argv)
{
    int nworkers = 1000, fpc = 24, level = RF_LOG_WARN;
    long long nchunks = 100000;
    double timeout_s = 30;
    bool sweep = false;
    static const struct option opts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"chunks", required_argument, NULL, 'n'},
        {"frames-per-chunk", required_argument, NULL, 'f'},
        {"sweep", no_argument, NULL, 's'},
        {"log-level", required_argument, NULL, 'l'},
        {"timeout", required_argument, NULL, 't'},
        {"progress", no_argument, NULL, 'p'},
        {"transport", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "w:n:f:sl:t:ph", opts, NULL)) != -1) {
        switch (o) {
        case 'w': nworkers = atoi(optarg); break;
        case 'n': nchunks = atoll(optarg); break;
        case 'f': fpc = atoi(optarg); break;
        case 's': sweep = true; break;
        case 'l': level = rf_log_level_parse(optarg); break;
        case 't': timeout_s = atof(optarg); break;
        case 'p': s_progress = true; break;
        case 'T':
            if (strcmp(optarg, "tcp") && strcmp(optarg, "inproc")) {
                fprintf(stderr, "reelfarm-sched-bench: --transport: expected tcp or inproc, got '%s'\n", optarg);
                return 2;
            }
            s_inproc = !strcmp(optarg, "inproc");
            break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (optind != argc || nworkers < 1 || nworkers > SB_MAX_WORKERS || nchunks < 1 || nchunks > 100000000 ||
        fpc < 1 || level < 0 || timeout_s <= 0) {
        s_usage(stderr);
        return 2;
    }
    rf_log_setup((rf_log_level_t)level, RF_LOG_AUTO, 2);

    /* Each simulated worker holds a mailbox fd and a TCP connection; the coordinator holds the
     * other end of each connection: about 3 fds per worker in this one process. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)nworkers * 3 + 256)
        fprintf(stderr, "sched-bench: warning: fd limit %llu may be too low for %d workers\n",
                (unsigned long long)rl.rlim_cur, nworkers);

    Reelfarm__Ready ready = REELFARM__READY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_READY;
    env.ready = &ready;
    if (rf_msg_pack(&env, RF_CONTROL_MAX_FRAME, &s_ready_buf, &s_ready_len))
        return 1;

    char cpu[256], date[32];
    struct utsname un;
    s_cpu_model(cpu, sizeof(cpu));
    rf_wall_format(rf_wall_ms(), date, sizeof(date));
    if (uname(&un))
        snprintf(un.release, sizeof(un.release), "?");
    printf("reelfarm scheduler benchmark, %s\n", date);
    printf("machine: %ld cores (nproc), %s, Linux %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu, un.release);
    printf("transport: %s\n", s_inproc ? "inproc (one ZeroMQ context, no TCP)" : "tcp (loopback)");
    printf("coordinator log level: %s\n\n", level == RF_LOG_DEBUG  ? "debug"
                                            : level == RF_LOG_INFO ? "info"
                                            : level == RF_LOG_WARN ? "warn"
                                            : level == RF_LOG_ERROR ? "error"
                                                                    : "off");

    int loads[3] = {nworkers, 100, 10};
    int nloads = sweep ? 3 : 1;
    sb_result_t res[3];
    int failed = 0;
    for (int k = 0; k < nloads; k++) {
        bool dup = false;
        for (int j = 0; j < k; j++)
            dup |= loads[j] == loads[k];
        if (dup) {
            loads[k] = 0;
            continue;
        }
        if (s_run_one(loads[k], (size_t)nchunks, fpc, timeout_s, &res[k]))
            failed = 1;
        if (res[k].assigned)
            s_print_result(&res[k]);
        printf("\n");
        fflush(stdout);
    }
    printf("Note: the whole run is measured, warm-up included. The first wave (all W Readys at once)\n"
           "queues behind itself, so its latencies are reported apart; the loop is closed, so the mean\n"
           "latency is about W / rate (Little's law) whatever the coordinator's per-message cost.\n\n");
    printf("| Workers | Chunks | Assigned | Seconds | Assign/s | Steady assign/s | p50 ms | p90 ms | p99 ms "
           "| Max ms | Coord. CPU us/assign |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < nloads; k++) {
        if (!loads[k] || !res[k].assigned)
            continue;
        const sb_result_t *r = &res[k];
        printf("| %d | %zu | %zu%s | %.2f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f |\n", r->workers,
               r->chunks, r->assigned, r->timed_out ? " (timed out)" : "", r->elapsed_s, r->rate,
               r->steady_rate, r->p50_ms, r->p90_ms, r->p99_ms, r->max_ms,
               1e6 * r->coord_cpu_s / (double)r->assigned);
    }
    free(s_ready_buf);
    return failed;
}
