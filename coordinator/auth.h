/* auth.h - the coordinator's ZAP handler: which CURVE keys may connect, and as what (DESIGN §9).
 *
 * A CURVE server with no ZAP handler accepts every client key (notes/zmq-uv-deploy.md §3), so
 * encryption alone would let anyone in. This handler is a REP socket at inproc://zeromq.zap.01 in
 * the coordinator's ZeroMQ context, on a thread of its own (it answers during handshakes, which
 * must not wait on the loop), bound before any CURVE socket binds. It fails closed: a key not on
 * the allow-list, a domain it does not know, or a mechanism other than CURVE gets 400.
 *
 * The allow-list is a folder of public key files (reelfarm keygen's NAME.pub):
 *   DIR/workers/NAME.pub   may connect to the worker and blob sockets
 *   DIR/clients/NAME.pub   may connect to the client and blob sockets (own jobs only)
 *   DIR/admins/NAME.pub    may connect to all three, and act on every job
 * The accepted peer's user id is "ROLE:NAME" (zsec.h reads it back per message). The folder is
 * read at start and again after rf_auth_reload (SIGHUP): a file that fails to parse is skipped
 * with a warning naming it, and the previous list stays in force if the folder cannot be read.
 */
#ifndef RF_AUTH_H
#define RF_AUTH_H

#include <stdint.h>

#include "error.h"

#define RF_AUTH_MAX_KEYS 4096 /* keys loaded from the allow-list folder; more are skipped */

typedef struct rf_auth rf_auth_t;

/* Counters for the metrics (per ZAP domain: workers, clients, blobs). */
typedef struct rf_auth_stats {
    uint64_t allowed[3];
    uint64_t denied[3];
    uint64_t keys;       /* keys on the list now */
    uint64_t reloads;    /* successful loads, the first included */
} rf_auth_stats_t;

/* Loads keys_dir (it must exist) and starts the handler in zctx. */
int rf_auth_new(void *zctx, const char *keys_dir, rf_auth_t **out, rf_err_t *err);

/* Asks the handler to read the folder again (within 100 ms). Async-signal-safe. */
void rf_auth_reload(rf_auth_t *a);

void rf_auth_stats(const rf_auth_t *a, rf_auth_stats_t *out);

/* Stops the thread and closes its socket; call before zmq_ctx_term. NULL ignored; sets *a NULL. */
void rf_auth_destroy(rf_auth_t **a);

#endif
