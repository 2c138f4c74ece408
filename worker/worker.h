/* worker.h - a render node: the session with the coordinator and the slots that render chunks
 * (DESIGN §1, §3, §6).
 *
 * One libuv loop owns the DEALER socket to the coordinator. It never blocks: chunks render on slot
 * threads (worker/slot.h) that report back through uv_async_send, so heartbeats and progress flow
 * while a chunk renders. The session says Hello with its probed capabilities, heartbeats as the
 * coordinator's Welcome dictates, and when the coordinator falls silent for `liveness` heartbeats
 * it reconnects on a new socket with backoff 1 s -> 32 s, re-announcing the chunks it still runs.
 *
 * It runs standalone (reelfarm-worker) or embedded in `reelfarm render` on a thread of its own.
 */
#ifndef RF_WORKER_H
#define RF_WORKER_H

#include <stdbool.h>

#include "config.h"
#include "error.h"

#define RF_WORKER_MAX_SLOTS 64

typedef struct rf_worker rf_worker_t;

/* Probes capabilities and prepares the session; connects when run. cfg is copied. */
int rf_worker_new(const rf_worker_config_t *cfg, rf_worker_t **out, rf_err_t *err);

/* For tests only: makes this worker misbehave on purpose, so multi-process tests can check how
 * the coordinator copes with bad workers. spec is "bad-checksum" (a digest with one bit flipped),
 * "wrong-count" (the last frame dropped, the expected count reported), "hang" (the slot stops after
 * its first frame until cancelled) or "slow:MS" (MS ms per frame), optionally "@N": only the first
 * N chunks this worker renders. NULL or "" turns it off. Call before rf_worker_run. Returns
 * RF_EINVAL (err says why) for an unknown spec. */
int rf_worker_set_test_fault(rf_worker_t *w, const char *spec, rf_err_t *err);

/* Runs until stopped. Returns 0. */
int rf_worker_run(rf_worker_t *w);

/* Stops the worker; safe from any thread. drain: finish (or, after the grace period, hand back)
 * running chunks first and ask for no new work; otherwise cancel them now. */
void rf_worker_stop(rf_worker_t *w, bool drain);

void rf_worker_destroy(rf_worker_t **w);

/* Encoders this build can try, in the order they are probed. */
extern const char *const rf_worker_encoders[];

#endif
