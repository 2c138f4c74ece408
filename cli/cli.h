/* cli.h - the `reelfarm` command: its subcommands and the client side of the client API.
 *
 * Exit codes (stable, documented in docs/CLI.md):
 *   0 ok, 1 the job failed or was cancelled, 2 usage or invalid spec/input, 3 cannot reach the
 *   coordinator, 4 refused by the coordinator (auth), 130 interrupted.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>

#include "codec.h"
#include "error.h"
#include "zsec.h"

enum {
    RF_EXIT_OK = 0,
    RF_EXIT_FAILED = 1,
    RF_EXIT_USAGE = 2,
    RF_EXIT_UNREACHABLE = 3,
    RF_EXIT_REFUSED = 4,
    RF_EXIT_INTERRUPTED = 130,
};

#define RF_DEFAULT_CLIENT_ENDPOINT "tcp://127.0.0.1:7601"
#define RF_CLIENT_CONNECT_MS 2000  /* no connection this long: the coordinator is unreachable (exit 3) */
#define RF_CLIENT_TIMEOUT_MS 10000 /* connected, but no reply this long: give up on the request (exit 3) */
#define RF_CLIENT_OUTAGE_MS 15000  /* watch, submit --wait: a coordinator that answered may be away this long */

/* ---- client ----------------------------------------------------------------------------------- */

typedef struct rf_client rf_client_t;

/* A client of the coordinator at endpoint, with CURVE when the keys folder says so
 * (rf_cli_curve); a bad key file is an error here. */
int rf_client_new(const char *endpoint, rf_client_t **out, rf_err_t *err);
/* The same with explicit keys (NULL: plaintext), for `render`'s private coordinator. */
int rf_client_new_sec(const char *endpoint, const rf_zsec_t *sec, rf_client_t **out, rf_err_t *err);
/* Sends req and waits for the reply. RF_EUNAVAIL when no connection is up within
 * min(RF_CLIENT_CONNECT_MS, timeout_ms) or no reply comes within timeout_ms; RF_ECANCELED when a
 * signal interrupts the wait; an ErrorReply becomes its code and message in err. Never blocks
 * longer than connect + timeout. */
int rf_client_call(rf_client_t *c, Reelfarm__Envelope *req, rf_msg_t **reply, int timeout_ms,
                   rf_err_t *err);
void rf_client_destroy(rf_client_t **c);

/* Submits the spec file at path. job_id gets the id (64 bytes). */
int rf_client_submit(rf_client_t *c, const char *path, char *job_id, size_t size, rf_err_t *err);

/* Submits a spec held in memory: source names it in messages, base_dir (absolute) resolves its
 * relative paths. */
int rf_client_submit_yaml(rf_client_t *c, const char *yaml, const char *source,
                          const char *base_dir, char *job_id, size_t size, rf_err_t *err);

/* ---- OpenJD import (openjd.c) ------------------------------------------------------------------ */

/* Turns the Open Job Description template at path (the 2023-09 subset in docs/CLI.md) into a
 * reelfarm job spec: *job_yaml (malloc'd) is checked with the job spec loader, base_dir gets the
 * template's absolute folder. params are "NAME=VALUE" overrides. Anything outside the subset is
 * RF_ECONFIG "<file>:<line>: <what>" naming it; a bad --param is RF_EINVAL. */
int rf_openjd_import(const char *path, const char *const *params, size_t nparams, char **job_yaml,
                     char *base_dir, size_t base_size, rf_err_t *err);

/* Follows a job until it ends, drawing progress on stderr (a bar on a TTY, lines otherwise, nothing
 * when quiet). Returns an RF_EXIT_* code; on success prints the output path to stdout when
 * print_output. *interrupt (may be NULL) non-zero cancels the job and returns 130. A coordinator
 * that answered before and stops answering is asked again for outage_ms (RF_CLIENT_OUTAGE_MS for a
 * remote one; UINT64_MAX for render's own, which runs in this process and can be slow under load
 * but never away). */
int rf_cli_follow(rf_client_t *c, const char *job_id, bool quiet, bool print_output,
                  uint64_t outage_ms, const volatile int *interrupt);

/* ---- the command table (cmdtable.c) ----------------------------------------------------------
 *
 * One table describes every subcommand: its operands, its flags (long name, short letter, value
 * name, meaning) and the function that runs it. getopt_long's option array, the usage lines,
 * `--help`, `reelfarm completion bash|zsh` and `reelfarm man` are all generated from it, so they
 * cannot drift apart. */

#define RF_CLI_MAX_FLAGS 10    /* flags per command (besides --help) */
#define RF_CLI_MAX_OPERANDS 4  /* operands per command */
#define RF_CLI_MAX_VALUES 64   /* flag occurrences per command line (--param K=V repeats) */

typedef struct rf_cli_flag {
    const char *name;  /* long name without "--"; NULL ends the list */
    char letter;       /* short option, 0 for none */
    const char *value; /* the value's name in usage ("EP", "FILE"), NULL for a switch */
    bool repeat;       /* may be given more than once (all values are kept) */
    const char *doc;   /* one line: what it does */
} rf_cli_flag_t;

typedef struct rf_cli_args rf_cli_args_t;

typedef struct rf_cli_command {
    const char *name;      /* "status" */
    const char *operands;  /* operands as shown in usage ("JOB_ID"), "" for none */
    int min_operands, max_operands;
    const char *summary;   /* one line for `reelfarm help` and the man page's NAME-like list */
    const char *doc;       /* a paragraph for the man page */
    int (*run)(const rf_cli_args_t *a);
    rf_cli_flag_t flags[RF_CLI_MAX_FLAGS + 1];
} rf_cli_command_t;

/* One parsed command line: the operands in order and every flag occurrence in order. */
struct rf_cli_args {
    const rf_cli_command_t *cmd;
    const char *operands[RF_CLI_MAX_OPERANDS];
    int noperands;
    struct {
        const char *flag;  /* long name */
        const char *value; /* "" for a switch */
    } values[RF_CLI_MAX_VALUES];
    int nvalues;
};

/* The table, in the order commands are listed. */
const rf_cli_command_t *rf_cli_commands(size_t *count);
const rf_cli_command_t *rf_cli_command_find(const char *name);

/* Parses argv (argv[0] is the subcommand) against cmd. Returns 0, or RF_EXIT_USAGE after printing
 * one line naming the bad flag or operand and the command's usage line on stderr, or -1 after
 * printing --help on stdout (the caller exits 0). */
int rf_cli_parse(const rf_cli_command_t *cmd, int argc, char **argv, rf_cli_args_t *out);

/* The last value of a flag ("" for a switch that was given), or NULL when it was not given. */
const char *rf_cli_arg(const rf_cli_args_t *a, const char *flag);
static inline bool rf_cli_has(const rf_cli_args_t *a, const char *flag)
{
    return rf_cli_arg(a, flag) != NULL;
}

/* Writes s as a JSON string literal (quotes, escapes) to f. */
void rf_cli_json_string(FILE *f, const char *s);

/* "usage: reelfarm status JOB_ID [--json] [--coordinator EP]" (no newline) into out. */
void rf_cli_usage_line(const rf_cli_command_t *cmd, char *out, size_t size);

/* Prints "reelfarm CMD: <message>" and the usage line on stderr; returns RF_EXIT_USAGE. */
int rf_cli_usage_error(const rf_cli_command_t *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The overview `reelfarm help` prints. */
void rf_cli_print_overview(FILE *f);

/* ---- subcommands (cmdtable.c lists them) -------------------------------------------------------- */

int rf_cli_render(const rf_cli_args_t *a);
int rf_cli_submit(const rf_cli_args_t *a);
int rf_cli_status(const rf_cli_args_t *a);
int rf_cli_jobs(const rf_cli_args_t *a);
int rf_cli_cancel(const rf_cli_args_t *a);
int rf_cli_pause(const rf_cli_args_t *a);
int rf_cli_resume(const rf_cli_args_t *a);
int rf_cli_retry(const rf_cli_args_t *a);
int rf_cli_workers(const rf_cli_args_t *a);
int rf_cli_logs(const rf_cli_args_t *a);
int rf_cli_watch(const rf_cli_args_t *a);      /* watch.c */
int rf_cli_fetch(const rf_cli_args_t *a);      /* fetch.c */
int rf_cli_verify(const rf_cli_args_t *a);     /* verify.c */
int rf_cli_audit(const rf_cli_args_t *a);      /* audit.c */
int rf_cli_passes(const rf_cli_args_t *a);     /* tools.c */
int rf_cli_model(const rf_cli_args_t *a);      /* model.c */
int rf_cli_keygen(const rf_cli_args_t *a);     /* tools.c */
int rf_cli_keygen_ca(const rf_cli_args_t *a);  /* keygen_ca.c: keygen --ca */
int rf_cli_doctor(const rf_cli_args_t *a);     /* tools.c */
int rf_cli_version(const rf_cli_args_t *a);    /* cmdtable.c */
int rf_cli_completion(const rf_cli_args_t *a); /* cmdtable.c */
int rf_cli_man(const rf_cli_args_t *a);        /* cmdtable.c */

/* ---- watermark lookup (commands.c; docs/PROVENANCE.md "Watermark") ----------------------------
 * A farm output's invisible watermark carries a tag of its job; the coordinator records each job's
 * tag, so `verify --coordinator` and `jobs --watermark-tag` find the job of a stripped copy. */

/* Hex digits of a watermark tag: the mark's 64-bit payload, key id (4) then job tag (12). */
#define RF_CLI_WM_TAG_LEN 16

/* True when text is a watermark tag as `verify` prints it: exactly 16 hex digits. */
bool rf_cli_wm_tag_valid(const char *text);

/* Asks the coordinator at endpoint (already resolved) which jobs carry the watermark tag; on
 * success *reply holds its JobList (empty when no job, or none of this client key's, has it).
 * Errors as rf_client_call. */
int rf_cli_wm_lookup(const char *endpoint, const char *tag, rf_msg_t **reply, rf_err_t *err);

/* Prints one job of a lookup's reply on f: text "watermark: job ID ('NAME')" then "  owner: ",
 * "  submitted: ", "  state: " and "  output: " lines, each starting with indent; json: one object
 * {"id","name","owner","submitted","state","output","watermark_tag"} without a newline. */
void rf_cli_wm_job_print(FILE *f, const Reelfarm__JobStatus *st, bool json, const char *indent);

/* The exit code for an RF_E* code from a client call (EUNAVAIL 3, EPERM 4, bad input 2, else 1). */
int rf_cli_exit_for(int rc);

/* ---- settings (cliconfig.c) ------------------------------------------------------------------ */

/* cli.yaml: `version: 1`, `coordinator: EP`, `blobs: EP`, `keys: DIR` (docs/CLI.md). */
typedef struct rf_cli_config {
    char path[PATH_MAX];   /* the file that was read; "" when there is none */
    char coordinator[512]; /* "" when the file does not set it */
    char blobs[512];       /* the blob endpoint for fetch; "" when not set */
    char keys[PATH_MAX];   /* absolute or relative to the file's folder; "" when not set */
} rf_cli_config_t;

/* $XDG_CONFIG_HOME/reelfarm, else ~/.config/reelfarm. RF_ECONFIG when neither can be found. */
int rf_cli_config_dir(char *out, size_t size, rf_err_t *err);

/* Reads cli.yaml from rf_cli_config_dir. A missing file is fine (everything ""); a bad one is
 * RF_ECONFIG "<file>:<line>: key '<key>': <what is wrong>". */
int rf_cli_config_load(rf_cli_config_t *cfg, rf_err_t *err);

/* The coordinator's client endpoint: the flag, else $REELFARM_COORDINATOR, else cli.yaml's
 * `coordinator:`, else RF_DEFAULT_CLIENT_ENDPOINT. The file is read only when it is needed, so a
 * broken one fails (RF_ECONFIG) only when neither the flag nor the environment is set. */
int rf_cli_resolve_endpoint(const char *flag, char *out, size_t size, rf_err_t *err);

/* The blob endpoint for fetch: the flag, else $REELFARM_BLOBS, else cli.yaml's `blobs:`, else ""
 * (then fetch uses the endpoint the coordinator names, see docs/CLI.md). */
int rf_cli_resolve_blobs(const char *flag, char *out, size_t size, rf_err_t *err);

/* The keys folder: cli.yaml's `keys:`, else rf_cli_config_dir()/keys. */
int rf_cli_keys_dir(char *out, size_t size, rf_err_t *err);

/* The CLI's CURVE keys (docs/SECURITY.md): in the keys folder ($REELFARM_KEYS, else rf_cli_keys_dir),
 * when coordinator.pub is there, the pair NAME.key ($REELFARM_KEY_NAME, default "client") and that
 * server key; otherwise z->on is false (plaintext). Errors name the file. */
int rf_cli_curve(rf_zsec_t *z, rf_err_t *err);

#endif
