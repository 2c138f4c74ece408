/* cli.h - the `reelfarm` command: its subcommands and the client side of the client API.
 *
 * Exit codes (stable, documented in docs/CLI.md):
 *   0 ok, 1 the job failed or was cancelled, 2 usage or invalid spec/input, 3 cannot reach the
 *   coordinator, 4 refused by the coordinator (auth), 130 interrupted.
 */
#ifndef RF_CLI_H
#define RF_CLI_H

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

/* The endpoint: --coordinator flag, else $REELFARM_COORDINATOR, else the default. */
const char *rf_cli_endpoint(const char *flag);

#endif
