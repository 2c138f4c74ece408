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
#include <stddef.h>

#include "codec.h"
#include "error.h"

enum {
    RF_EXIT_OK = 0,
    RF_EXIT_FAILED = 1,
    RF_EXIT_USAGE = 2,
    RF_EXIT_UNREACHABLE = 3,
    RF_EXIT_REFUSED = 4,
    RF_EXIT_INTERRUPTED = 130,
};

#define RF_DEFAULT_CLIENT_ENDPOINT "tcp://127.0.0.1:7601"
#define RF_CLIENT_TIMEOUT_MS 5000

/* ---- client ----------------------------------------------------------------------------------- */

typedef struct rf_client rf_client_t;

int rf_client_new(const char *endpoint, rf_client_t **out, rf_err_t *err);
/* Sends req and waits for the reply. RF_EUNAVAIL when nothing answers within timeout_ms; an
 * ErrorReply becomes its code and message in err. */
int rf_client_call(rf_client_t *c, Reelfarm__Envelope *req, rf_msg_t **reply, int timeout_ms,
                   rf_err_t *err);
void rf_client_destroy(rf_client_t **c);

/* Submits the spec file at path. job_id gets the id (64 bytes). */
int rf_client_submit(rf_client_t *c, const char *path, char *job_id, size_t size, rf_err_t *err);

/* Follows a job until it ends, drawing progress on stderr (a bar on a TTY, lines otherwise, nothing
 * when quiet). Returns an RF_EXIT_* code; on success prints the output path to stdout when
 * print_output. *interrupt (may be NULL) non-zero cancels the job and returns 130. */
int rf_cli_follow(rf_client_t *c, const char *job_id, bool quiet, bool print_output,
                  const volatile int *interrupt);

/* ---- subcommands (argv[0] is the subcommand) --------------------------------------------------- */

int rf_cli_render(int argc, char **argv);
int rf_cli_submit(int argc, char **argv);
int rf_cli_status(int argc, char **argv);
int rf_cli_jobs(int argc, char **argv);
int rf_cli_cancel(int argc, char **argv);
int rf_cli_pause(int argc, char **argv);
int rf_cli_resume(int argc, char **argv);
int rf_cli_retry(int argc, char **argv);
int rf_cli_workers(int argc, char **argv);
int rf_cli_logs(int argc, char **argv);
int rf_cli_watch(int argc, char **argv);   /* watch.c */
int rf_cli_passes(int argc, char **argv);  /* tools.c */
int rf_cli_keygen(int argc, char **argv);  /* tools.c */
int rf_cli_doctor(int argc, char **argv);  /* tools.c */

/* ---- settings (cliconfig.c) ------------------------------------------------------------------ */

/* cli.yaml: `version: 1`, `coordinator: EP`, `keys: DIR` (docs/CLI.md). */
typedef struct rf_cli_config {
    char path[PATH_MAX];   /* the file that was read; "" when there is none */
    char coordinator[512]; /* "" when the file does not set it */
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

/* The keys folder: cli.yaml's `keys:`, else rf_cli_config_dir()/keys. */
int rf_cli_keys_dir(char *out, size_t size, rf_err_t *err);

#endif
