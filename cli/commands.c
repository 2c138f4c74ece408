/* commands.c - the subcommands that talk to a running coordinator: submit, status, jobs (and the
 * watermark lookup `verify` shares), cancel.
 * The endpoint comes from rf_cli_resolve_endpoint (flag > environment > cli.yaml > default). */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "rftime.h"

static volatile int s_interrupted;

static void s_on_signal(int sig)
{
    (void)sig;
    s_interrupted = 1;
}

int rf_cli_submit(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    bool wait = rf_cli_has(a, "wait"), quiet = rf_cli_has(a, "quiet");
    const char *openjd = rf_cli_arg(a, "openjd");
    const char *params[RF_CLI_MAX_VALUES];
    size_t nparams = 0;
    for (int i = 0; i < a->nvalues; i++)
        if (!strcmp(a->values[i].flag, "param"))
            params[nparams++] = a->values[i].value;
    if (openjd && a->noperands)
        return rf_cli_usage_error(a->cmd, "give JOB.yaml or '--openjd TEMPLATE.yaml', not both");
    if (!openjd && a->noperands != 1)
        return rf_cli_usage_error(a->cmd, "missing JOB.yaml (or '--openjd TEMPLATE.yaml')");
    if (!openjd && nparams)
        return rf_cli_usage_error(a->cmd, "flag '--param' is only for --openjd templates");
    rf_err_t err = {0};
    char *job_yaml = NULL, base_dir[PATH_MAX];
    const char *path = openjd ? openjd : a->operands[0];
    if (openjd) {
        int rc = rf_openjd_import(openjd, params, nparams, &job_yaml, base_dir, sizeof(base_dir), &err);
        if (rc) {
            fprintf(stderr, "reelfarm: %s\n", err.msg);
            return RF_EXIT_USAGE;
        }
    } else {
        rf_job_spec_t *spec = NULL;
        if (rf_job_spec_load_file(path, &spec, &err)) {
            fprintf(stderr, "reelfarm: %s\n", err.msg);
            return RF_EXIT_USAGE;
        }
        rf_job_spec_destroy(&spec);
    }
    rf_client_t *c = NULL;
    char endpoint[512];
    if (rf_cli_resolve_endpoint(ep, endpoint, sizeof(endpoint), &err) ||
        rf_client_new(endpoint, &c, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        free(job_yaml);
        return RF_EXIT_USAGE;
    }
    char job_id[64];
    int rc = job_yaml ? rf_client_submit_yaml(c, job_yaml, path, base_dir, job_id, sizeof(job_id), &err)
                      : rf_client_submit(c, path, job_id, sizeof(job_id), &err);
    free(job_yaml);
    if (rc) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        rf_client_destroy(&c);
        return rf_cli_exit_for(rc);
    }
    printf("%s\n", job_id);
    fflush(stdout);
    int code = RF_EXIT_OK;
    if (wait) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = s_on_signal;
        sigaction(SIGINT, &sa, NULL);
        code = rf_cli_follow(c, job_id, quiet, false, RF_CLIENT_OUTAGE_MS, &s_interrupted);
    }
    rf_client_destroy(&c);
    return code;
}

/* Connects to the coordinator and makes one call; on failure prints the error and returns the
 * exit code (0 with *reply set on success). */
static int s_call(const char *ep, Reelfarm__Envelope *env, rf_msg_t **reply)
{
    rf_err_t err = {0};
    rf_client_t *c = NULL;
    char endpoint[512];
    if (rf_cli_resolve_endpoint(ep, endpoint, sizeof(endpoint), &err) ||
        rf_client_new(endpoint, &c, &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    int rc = rf_client_call(c, env, reply, RF_CLIENT_TIMEOUT_MS, &err);
    rf_client_destroy(&c);
    if (rc) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return rf_cli_exit_for(rc);
    }
    return RF_EXIT_OK;
}

void rf_cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void s_print_status(const Reelfarm__JobStatus *st, bool json)
{
    if (json) {
        printf("{\"id\":");
        rf_cli_json_string(stdout, st->job_id);
        printf(",\"name\":");
        rf_cli_json_string(stdout, st->name);
        printf(",\"state\":");
        rf_cli_json_string(stdout, st->state);
        printf(",\"chunks_total\":%u,\"chunks_done\":%u,\"chunks_failed\":%u,\"frames_total\":%" PRIu64
               ",\"frames_done\":%" PRIu64 ",\"fps\":%.2f,\"output\":",
               st->chunks_total, st->chunks_done, st->chunks_failed, st->frames_total, st->frames_done,
               st->fps);
        rf_cli_json_string(stdout, st->output);
        printf(",\"message\":");
        rf_cli_json_string(stdout, st->message);
        printf(",\"chunks\":[");
        for (size_t i = 0; i < st->n_chunks; i++) {
            const Reelfarm__ChunkStatus *c = st->chunks[i];
            printf("%s{\"index\":%u,\"state\":", i ? "," : "", c->index);
            rf_cli_json_string(stdout, c->state);
            printf(",\"frame_start\":%" PRId64 ",\"frame_end\":%" PRId64 ",\"attempts\":%u,\"worker\":",
                   c->frame_start, c->frame_end, c->attempts);
            rf_cli_json_string(stdout, c->worker);
            printf(",\"frames_done\":%" PRIu64 ",\"fps\":%.2f", c->frames_done, c->fps);
            if (c->n_critic) {
                printf(",\"critic\":{\"kept\":%u,\"renders\":[", c->critic_kept);
                for (size_t k = 0; k < c->n_critic; k++)
                    printf("%s{\"seed\":%" PRIu64 ",\"score\":%.6g,\"mean\":%.6g,\"frames\":%" PRIu64 "}",
                           k ? "," : "", c->critic[k]->seed, (double)c->critic[k]->score,
                           (double)c->critic[k]->mean, c->critic[k]->frames);
                printf("]}");
            }
            printf("}");
        }
        printf("]}\n");
        return;
    }
    printf("%s  %-10s %-24s chunks %u/%u  frames %" PRIu64 "/%" PRIu64 "  %.1f fps\n", st->job_id,
           st->state, st->name, st->chunks_done, st->chunks_total, st->frames_done, st->frames_total,
           st->fps);
    if (st->message && *st->message)
        printf("  %s\n", st->message);
    for (size_t i = 0; i < st->n_chunks; i++) {
        const Reelfarm__ChunkStatus *c = st->chunks[i];
        printf("  chunk %-4u %-8s frames %" PRId64 "-%" PRId64 "  attempts %u  %s", c->index,
               c->state, c->frame_start, c->frame_end - 1, c->attempts, c->worker);
        if (c->n_critic && c->critic_kept < c->n_critic)
            printf("  critic %.4g (seed %" PRIu64 ", render %u of %zu)",
                   (double)c->critic[c->critic_kept]->score, c->critic[c->critic_kept]->seed,
                   c->critic_kept + 1, c->n_critic);
        printf("\n");
    }
}

static int s_job_request(const rf_cli_args_t *args, const char *action)
{
    const char *ep = rf_cli_arg(args, "coordinator");
    bool json = rf_cli_has(args, "json");
    const char *job = args->operands[0];
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
    Reelfarm__JobAction a = REELFARM__JOB_ACTION__INIT;
    if (action) {
        a.job_id = (char *)job;
        a.action = (char *)action;
        env.body_case = REELFARM__ENVELOPE__BODY_JOB_ACTION;
        env.job_action = &a;
    } else {
        q.job_id = (char *)job;
        q.with_chunks = true;
        env.body_case = REELFARM__ENVELOPE__BODY_JOB_QUERY;
        env.job_query = &q;
    }
    rf_msg_t *reply = NULL;
    int code = s_call(ep, &env, &reply);
    if (code)
        return code;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case == REELFARM__ENVELOPE__BODY_JOB_STATUS)
        s_print_status(r->job_status, json);
    else
        code = RF_EXIT_FAILED;
    rf_msg_destroy(&reply);
    return code;
}

int rf_cli_status(const rf_cli_args_t *a)
{
    return s_job_request(a, NULL);
}

int rf_cli_cancel(const rf_cli_args_t *a)
{
    return s_job_request(a, "cancel");
}

int rf_cli_pause(const rf_cli_args_t *a)
{
    return s_job_request(a, "pause");
}

int rf_cli_resume(const rf_cli_args_t *a)
{
    return s_job_request(a, "resume");
}

int rf_cli_retry(const rf_cli_args_t *a)
{
    return s_job_request(a, "retry");
}

int rf_cli_workers(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    bool json = rf_cli_has(a, "json");
    Reelfarm__WorkerList req = REELFARM__WORKER_LIST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_WORKER_LIST;
    env.worker_list = &req;
    rf_msg_t *reply = NULL;
    int code = s_call(ep, &env, &reply);
    if (code)
        return code;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case != REELFARM__ENVELOPE__BODY_WORKER_LIST) {
        rf_msg_destroy(&reply);
        return RF_EXIT_FAILED;
    }
    const Reelfarm__WorkerList *l = r->worker_list;
    if (json)
        printf("[");
    else
        printf("%-24s %-12s %5s %5s %6s %6s %8s  %s\n", "NAME", "STATE", "SLOTS", "BUSY", "DONE",
               "FAILED", "SEEN", "GPU");
    for (size_t i = 0; i < l->n_workers; i++) {
        const Reelfarm__WorkerInfo *w = l->workers[i];
        const char *state = !w->live ? "gone" : w->quarantined ? "quarantined" : "ready";
        if (json) {
            printf("%s{\"name\":", i ? "," : "");
            rf_cli_json_string(stdout, w->name);
            printf(",\"state\":\"%s\",\"slots\":%u,\"busy\":%u,\"chunks_done\":%u,"
                   "\"chunks_failed\":%u,\"last_seen_ms_ago\":%" PRIu64 ",\"vram_bytes\":%" PRIu64
                   ",\"gpu_model\":",
                   state, w->slots, w->busy, w->chunks_done, w->chunks_failed, w->last_seen_ms_ago,
                   w->vram_bytes);
            rf_cli_json_string(stdout, w->gpu_model);
            printf(",\"capabilities\":");
            rf_cli_json_string(stdout, w->capabilities);
            printf("}");
        } else {
            printf("%-24s %-12s %5u %5u %6u %6u %7.1fs  %s\n", w->name, state, w->slots, w->busy,
                   w->chunks_done, w->chunks_failed, (double)w->last_seen_ms_ago / 1000.0,
                   w->gpu_model && *w->gpu_model ? w->gpu_model : "-");
        }
    }
    if (json)
        printf("]\n");
    rf_msg_destroy(&reply);
    return RF_EXIT_OK;
}

/* Fetches events after *after; prints them; returns an exit code. */
static int s_events_round(const char *ep, const char *job, int64_t *after, bool json)
{
    Reelfarm__EventQuery q = REELFARM__EVENT_QUERY__INIT;
    q.job_id = (char *)job;
    q.after_id = *after;
    q.limit = 500;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_EVENT_QUERY;
    env.event_query = &q;
    rf_msg_t *reply = NULL;
    int code = s_call(ep, &env, &reply);
    if (code)
        return code;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case == REELFARM__ENVELOPE__BODY_EVENT_LIST) {
        for (size_t i = 0; i < r->event_list->n_events; i++) {
            const Reelfarm__Event *e = r->event_list->events[i];
            char ts[32];
            rf_wall_format(e->ts_ms, ts, sizeof(ts));
            if (json) {
                printf("{\"id\":%" PRId64 ",\"ts\":\"%s\",\"level\":", e->id, ts);
                rf_cli_json_string(stdout, e->level);
                printf(",\"message\":");
                rf_cli_json_string(stdout, e->message);
                printf("}\n");
            } else {
                printf("%s %-5s %s\n", ts, e->level, e->message);
            }
            *after = e->id;
        }
        fflush(stdout);
    }
    rf_msg_destroy(&reply);
    return RF_EXIT_OK;
}

static bool s_job_ended(const char *ep, const char *job)
{
    Reelfarm__JobQuery q = REELFARM__JOB_QUERY__INIT;
    q.job_id = (char *)job;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_QUERY;
    env.job_query = &q;
    rf_msg_t *reply = NULL;
    if (s_call(ep, &env, &reply))
        return true;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    bool ended = r->body_case != REELFARM__ENVELOPE__BODY_JOB_STATUS ||
                 !strcmp(r->job_status->state, "done") || !strcmp(r->job_status->state, "failed") ||
                 !strcmp(r->job_status->state, "cancelled");
    rf_msg_destroy(&reply);
    return ended;
}

int rf_cli_logs(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    bool json = rf_cli_has(a, "json"), follow = rf_cli_has(a, "follow");
    const char *job = a->operands[0];
    int64_t after = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigaction(SIGINT, &sa, NULL);
    for (;;) {
        int code = s_events_round(ep, job, &after, json);
        if (code || !follow)
            return code;
        if (s_job_ended(ep, job)) /* one more round: events written as it ended */
            return s_events_round(ep, job, &after, json);
        for (int i = 0; i < 5 && !s_interrupted; i++)
            rf_sleep_ms(100);
        if (s_interrupted)
            return RF_EXIT_INTERRUPTED;
    }
}

bool rf_cli_wm_tag_valid(const char *text)
{
    size_t n = 0;
    while (text && n <= RF_CLI_WM_TAG_LEN && isxdigit((unsigned char)text[n]))
        n++;
    return text && n == RF_CLI_WM_TAG_LEN && text[n] == '\0';
}

int rf_cli_wm_lookup(const char *endpoint, const char *tag, rf_msg_t **reply, rf_err_t *err)
{
    rf_client_t *c = NULL;
    int rc = rf_client_new(endpoint, &c, err);
    if (rc)
        return rc;
    Reelfarm__WatermarkQuery q = REELFARM__WATERMARK_QUERY__INIT;
    q.tag = (char *)tag;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_WATERMARK_QUERY;
    env.watermark_query = &q;
    rc = rf_client_call(c, &env, reply, RF_CLIENT_TIMEOUT_MS, err);
    rf_client_destroy(&c);
    if (!rc && rf_msg_env(*reply)->body_case != REELFARM__ENVELOPE__BODY_JOB_LIST) {
        rf_msg_destroy(reply);
        rc = rf_err_set(err, RF_EPROTO, "unexpected reply to a watermark lookup from %s", endpoint);
    }
    return rc;
}

void rf_cli_wm_job_print(FILE *f, const Reelfarm__JobStatus *st, bool json, const char *indent)
{
    char when[32];
    rf_wall_format(st->submitted_ms, when, sizeof(when));
    if (json) {
        fprintf(f, "{\"id\":");
        rf_cli_json_string(f, st->job_id);
        fprintf(f, ",\"name\":");
        rf_cli_json_string(f, st->name);
        fprintf(f, ",\"owner\":");
        rf_cli_json_string(f, st->owner);
        fprintf(f, ",\"submitted\":\"%s\",\"state\":", when);
        rf_cli_json_string(f, st->state);
        fprintf(f, ",\"output\":");
        rf_cli_json_string(f, st->output);
        fprintf(f, ",\"watermark_tag\":");
        rf_cli_json_string(f, st->watermark_tag);
        fprintf(f, "}");
        return;
    }
    fprintf(f, "%swatermark: job %s ('%s')\n", indent, st->job_id, st->name);
    fprintf(f, "%s  owner: %s\n", indent,
            st->owner && *st->owner ? st->owner : "the farm's local user (no client keys)");
    fprintf(f, "%s  submitted: %s\n", indent, when);
    fprintf(f, "%s  state: %s\n", indent, st->state);
    fprintf(f, "%s  output: %s\n", indent, st->output);
}

/* `jobs --watermark-tag TAG`: the job(s) whose frames carry the tag; exit 1 when none does. */
static int s_jobs_by_wm_tag(const char *ep, const char *tag, bool json)
{
    rf_err_t err = {0};
    char endpoint[512];
    rf_msg_t *reply = NULL;
    if (rf_cli_resolve_endpoint(ep, endpoint, sizeof(endpoint), &err)) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    int rc = rf_cli_wm_lookup(endpoint, tag, &reply, &err);
    if (rc) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return rf_cli_exit_for(rc);
    }
    const Reelfarm__JobList *list = rf_msg_env(reply)->job_list;
    if (json)
        printf("[");
    for (size_t i = 0; i < list->n_jobs; i++) {
        if (json && i)
            printf(",");
        rf_cli_wm_job_print(stdout, list->jobs[i], json, "");
    }
    if (json)
        printf("]\n");
    int code = RF_EXIT_OK;
    if (list->n_jobs == 0) {
        fprintf(stderr,
                "reelfarm: no job of the coordinator at %s carries watermark tag %s (a client "
                "key sees only its own jobs)\n",
                endpoint, tag);
        code = RF_EXIT_FAILED;
    }
    rf_msg_destroy(&reply);
    return code;
}

int rf_cli_jobs(const rf_cli_args_t *a)
{
    const char *ep = rf_cli_arg(a, "coordinator");
    bool json = rf_cli_has(a, "json");
    const char *tag = rf_cli_arg(a, "watermark-tag");
    if (tag && !rf_cli_wm_tag_valid(tag))
        return rf_cli_usage_error(a->cmd,
                                  "flag '--watermark-tag' needs the 16 hex digits "
                                  "`reelfarm verify` prints, not '%.40s'",
                                  tag);
    if (tag)
        return s_jobs_by_wm_tag(ep, tag, json);
    Reelfarm__JobList list = REELFARM__JOB_LIST__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_JOB_LIST;
    env.job_list = &list;
    rf_msg_t *reply = NULL;
    int code = s_call(ep, &env, &reply);
    if (code)
        return code;
    const Reelfarm__Envelope *r = rf_msg_env(reply);
    if (r->body_case == REELFARM__ENVELOPE__BODY_JOB_LIST) {
        if (json)
            printf("[");
        for (size_t i = 0; i < r->job_list->n_jobs; i++) {
            if (json && i)
                printf(",");
            s_print_status(r->job_list->jobs[i], json);
        }
        if (json)
            printf("]\n");
    }
    rf_msg_destroy(&reply);
    return RF_EXIT_OK;
}
