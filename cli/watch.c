/* watch.c - `reelfarm watch JOB_ID`: follows a job and its running chunks until it ends.
 *
 * On a terminal it redraws one block in place every 0.5 s (the job line, then a bar per running
 * chunk) with ANSI cursor-up and clear-line; otherwise it prints plain lines only when something
 * changed, so a log stays short. Unlike `submit --wait`, Ctrl-C only stops watching: the job goes
 * on (exit 130). The exit code is the job's outcome, as for `submit --wait`.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "rftime.h"

#define S_WATCH_PERIOD_MS 500     /* redraw / poll period */
#define S_WATCH_LINE_MAX 512      /* longest line drawn */
#define S_WATCH_HEARTBEAT_MS 5000 /* not a TTY: the job line at least this often while it runs */
#define S_WATCH_BAR 30            /* widest bar, in characters */
#define S_WATCH_BAR_MIN 5         /* narrower than this, the bar is left out */

static volatile sig_atomic_t s_stop;

static void s_on_sigint(int sig)
{
    (void)sig;
    s_stop = 1;
}

/* What a non-TTY watch printed last, to print only changes. */
typedef struct s_seen {
    char state[32];
    uint32_t chunks_done;
    uint64_t last_job_line_ms;
    uint64_t *chunk_frames; /* per chunk index: frames_done last printed, UINT64_MAX never */
    size_t nchunks;
} s_seen_t;

static void s_bar(char *out, int width, double frac)
{
    int fill = (int)(frac * width);
    for (int i = 0; i < width; i++)
        out[i] = i < fill ? '#' : '.';
    out[width] = '\0';
}

static double s_frac(uint64_t done, uint64_t total)
{
    double f = total ? (double)done / (double)total : 0;
    return f > 1 ? 1 : f;
}

/* "PREFIX [bar] SUFFIX" in at most cols columns: the bar takes what the text leaves, up to
 * S_WATCH_BAR, and is left out when fewer than S_WATCH_BAR_MIN columns remain; only then, when the
 * text alone is too wide, does the caller's cut at cols shorten it. */
static void s_with_bar(char *out, size_t size, int cols, const char *prefix, double frac,
                       const char *suffix)
{
    int room = cols - (int)strlen(prefix) - (int)strlen(suffix) - 3; /* " [" and "]" */
    if (room > S_WATCH_BAR)
        room = S_WATCH_BAR;
    if (room < S_WATCH_BAR_MIN) {
        snprintf(out, size, "%s %s", prefix, suffix);
        return;
    }
    char bar[S_WATCH_BAR + 1];
    s_bar(bar, room, frac);
    snprintf(out, size, "%s [%s]%s", prefix, bar, suffix);
}

static void s_job_line(const Reelfarm__JobStatus *st, bool tty, int cols, char *out, size_t size)
{
    double frac = s_frac(st->frames_done, st->frames_total);
    if (tty) {
        char prefix[128], suffix[160];
        snprintf(prefix, sizeof(prefix), "%s %-9s", st->job_id, st->state);
        snprintf(suffix, sizeof(suffix), " %3.0f%% %" PRIu64 "/%" PRIu64 " frames  chunks %u/%u  %.1f fps",
                 frac * 100, st->frames_done, st->frames_total, st->chunks_done, st->chunks_total,
                 st->fps);
        s_with_bar(out, size, cols, prefix, frac, suffix);
    } else {
        snprintf(out, size, "%s %s: %.0f%% %" PRIu64 "/%" PRIu64 " frames, chunks %u/%u, %.1f fps",
                 st->job_id, st->state, frac * 100, st->frames_done, st->frames_total,
                 st->chunks_done, st->chunks_total, st->fps);
    }
}

static void s_chunk_line(const Reelfarm__ChunkStatus *c, bool tty, int cols, char *out, size_t size)
{
    uint64_t total = c->frame_end > c->frame_start ? (uint64_t)(c->frame_end - c->frame_start) : 0;
    double frac = s_frac(c->frames_done, total);
    const char *worker = c->worker && *c->worker ? c->worker : "-";
    if (tty) {
        char prefix[64], suffix[256];
        snprintf(prefix, sizeof(prefix), "  chunk %-4u", c->index);
        snprintf(suffix, sizeof(suffix),
                 " %" PRIu64 "/%" PRIu64 " frames %" PRId64 "-%" PRId64 "  %.1f fps  %.64s",
                 c->frames_done, total, c->frame_start, c->frame_end - 1, c->fps, worker);
        s_with_bar(out, size, cols, prefix, frac, suffix);
    } else {
        snprintf(out, size,
                 "  chunk %u %s: %" PRIu64 "/%" PRIu64 " frames (%" PRId64 "-%" PRId64
                 "), %.1f fps, worker %s",
                 c->index, c->state, c->frames_done, total, c->frame_start, c->frame_end - 1,
                 c->fps, worker);
    }
}

static bool s_chunk_active(const Reelfarm__ChunkStatus *c)
{
    return !strcmp(c->state, "running") || !strcmp(c->state, "verifying");
}

/* Redraws the block in place: up over the lines drawn last time, each line cleared, then the rest
 * of the screen cleared (the block may have shrunk). Lines are cut to the terminal's width so that
 * none wraps and the cursor-up count stays right. */
static void s_draw_tty(const Reelfarm__JobStatus *st, int *drawn)
{
    struct winsize ws;
    int cols = ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 ? ws.ws_col - 1 : 79;
    if (cols >= S_WATCH_LINE_MAX)
        cols = S_WATCH_LINE_MAX - 1;
    char line[S_WATCH_LINE_MAX];
    if (*drawn > 0)
        printf("\033[%dA", *drawn);
    s_job_line(st, true, cols, line, sizeof(line));
    printf("\r\033[2K%.*s\n", cols, line);
    int n = 1;
    for (size_t i = 0; i < st->n_chunks; i++) {
        if (!s_chunk_active(st->chunks[i]))
            continue;
        s_chunk_line(st->chunks[i], true, cols, line, sizeof(line));
        printf("\r\033[2K%.*s\n", cols, line);
        n++;
    }
    printf("\033[J");
    fflush(stdout);
    *drawn = n;
}

static int s_print_plain(const Reelfarm__JobStatus *st, s_seen_t *seen)
{
    char line[S_WATCH_LINE_MAX];
    uint64_t now = rf_now_ms();
    if (st->n_chunks > seen->nchunks) {
        uint64_t *grown = realloc(seen->chunk_frames, st->n_chunks * sizeof(*grown));
        if (!grown)
            return RF_ENOMEM;
        for (size_t i = seen->nchunks; i < st->n_chunks; i++)
            grown[i] = UINT64_MAX;
        seen->chunk_frames = grown;
        seen->nchunks = st->n_chunks;
    }
    if (strcmp(seen->state, st->state) || seen->chunks_done != st->chunks_done ||
        now - seen->last_job_line_ms >= S_WATCH_HEARTBEAT_MS) {
        s_job_line(st, false, 0, line, sizeof(line));
        printf("%s\n", line);
        snprintf(seen->state, sizeof(seen->state), "%s", st->state);
        seen->chunks_done = st->chunks_done;
        seen->last_job_line_ms = now;
    }
    for (size_t i = 0; i < st->n_chunks; i++) {
        const Reelfarm__ChunkStatus *c = st->chunks[i];
        if (!s_chunk_active(c) || seen->chunk_frames[i] == c->frames_done)
            continue;
        s_chunk_line(c, false, 0, line, sizeof(line));
        printf("%s\n", line);
        seen->chunk_frames[i] = c->frames_done;
    }
    fflush(stdout);
    return 0;
}

static int s_watch(rf_client_t *client, const char *job_id, bool tty)
{
    s_seen_t seen = {.chunks_done = UINT32_MAX};
    int drawn = 0, code;
    uint64_t last_answer = 0; /* when the coordinator last answered; 0 never */
    for (;;) {
        if (s_stop) {
            fprintf(stderr, "reelfarm: stopped watching; job %s goes on\n", job_id);
            code = RF_EXIT_INTERRUPTED;
            break;
        }
        Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
        q.job_id = (char *)job_id;
        q.with_chunks = true;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        env.body_case = REELFARM__ENVELOPE__BODY_JOB_QUERY;
        env.job_query = &q;
        rf_msg_t *reply = NULL;
        rf_err_t err = {0};
        int rc = rf_client_call(client, &env, &reply, RF_CLIENT_TIMEOUT_MS, &err);
        if (rc == RF_ECANCELED)
            continue; /* a signal: the loop head sees the flag */
        /* A coordinator that answered before and now does not is probably restarting: keep asking
         * (each call gives up within RF_CLIENT_CONNECT_MS) for up to RF_CLIENT_OUTAGE_MS. One that
         * never answered is unreachable at once (exit 3). */
        if (rc == RF_EUNAVAIL && last_answer && rf_now_ms() - last_answer < RF_CLIENT_OUTAGE_MS) {
            for (int slept = 0; slept < S_WATCH_PERIOD_MS && !s_stop; slept += 50)
                rf_sleep_ms(50);
            continue;
        }
        if (rc) {
            fprintf(stderr, "reelfarm: %s\n", err.msg);
            code = rf_cli_exit_for(rc);
            break;
        }
        last_answer = rf_now_ms();
        const Reelfarm__Envelope *r = rf_msg_env(reply);
        if (r->body_case != REELFARM__ENVELOPE__BODY_JOB_STATUS) {
            rf_msg_destroy(&reply);
            fprintf(stderr, "reelfarm: unexpected reply from the coordinator\n");
            code = RF_EXIT_FAILED;
            break;
        }
        const Reelfarm__JobStatus *st = r->job_status;
        if (tty) {
            s_draw_tty(st, &drawn);
        } else if (s_print_plain(st, &seen)) {
            rf_msg_destroy(&reply);
            fprintf(stderr, "reelfarm: out of memory\n");
            code = RF_EXIT_FAILED;
            break;
        }
        bool done = !strcmp(st->state, "done");
        if (done || !strcmp(st->state, "failed") || !strcmp(st->state, "cancelled")) {
            if (!done)
                fprintf(stderr, "reelfarm: job %s ('%s') %s: %s\n", st->job_id, st->name, st->state,
                        st->message && *st->message ? st->message : "no reason given");
            code = done ? RF_EXIT_OK : RF_EXIT_FAILED;
            rf_msg_destroy(&reply);
            break;
        }
        rf_msg_destroy(&reply);
        for (int slept = 0; slept < S_WATCH_PERIOD_MS && !s_stop; slept += 50)
            rf_sleep_ms(50);
    }
    free(seen.chunk_frames);
    return code;
}

int rf_cli_watch(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    const char *job_id = a->operands[0];
    char endpoint[512];
    rf_err_t err = {0};
    rf_client_t *client = NULL;
    if (rf_cli_resolve_endpoint(ep, endpoint, sizeof(endpoint), &err) ||
        rf_client_new(endpoint, &client, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    /* No SA_RESTART: Ctrl-C must wake a zmq_poll in progress. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_sigint;
    sigaction(SIGINT, &sa, NULL);
    int code = s_watch(client, job_id, isatty(1) != 0);
    rf_client_destroy(&client);
    return code;
}
