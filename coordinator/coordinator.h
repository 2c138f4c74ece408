/* coordinator.h - the farm's coordinator: one libuv loop that owns the worker and client ROUTER
 * sockets, the SQLite store, the planner, the scheduler and the stitcher (DESIGN §1, §3, §5, §7).
 *
 * Heavy work - probing and slicing, verifying a chunk's result, stitching - runs off the loop on the
 * libuv thread pool; blob data is served by its own thread (common/blob.h). The loop only moves
 * small control messages and short SQLite writes, so heartbeats are answered while a job stitches.
 *
 * It runs standalone (reelfarm-coordinator) or embedded in `reelfarm render` on a thread of its own.
 */
#ifndef RF_COORDINATOR_H
#define RF_COORDINATOR_H

#include "config.h"
#include "error.h"

typedef struct rf_coordinator rf_coordinator_t;

typedef enum rf_coordinator_endpoint {
    RF_EP_WORKERS = 0,
    RF_EP_CLIENTS = 1,
    RF_EP_BLOBS = 2,
} rf_coordinator_endpoint_t;

/* Opens (or creates) the state under cfg->state_dir, binds the three sockets, and loads unfinished
 * jobs so they continue where they stopped. cfg is copied. Holds an exclusive flock on
 * <state_dir>/lock until rf_coordinator_destroy: while another coordinator (any process, this one
 * included) holds it, this fails with RF_EEXIST naming the holder's pid. */
int rf_coordinator_new(const rf_coordinator_config_t *cfg, rf_coordinator_t **out, rf_err_t *err);

/* The endpoint actually bound (ports chosen by the system when the config said "*"). */
const char *rf_coordinator_endpoint(const rf_coordinator_t *c, rf_coordinator_endpoint_t which);

/* The coordinator's ZeroMQ context, for peers in the same process on inproc:// endpoints (the
 * scheduler benchmark). Close every socket made in it before rf_coordinator_destroy. */
void *rf_coordinator_zmq_context(rf_coordinator_t *c);

/* Runs the loop until rf_coordinator_stop. Returns 0, or RF_EAGAIN when it stopped by itself to
 * reload its state: a write to state.db failed (disk full, rf_store_broken) and space has returned.
 * The caller then destroys it and creates a new one from the same config (main.c does). */
int rf_coordinator_run(rf_coordinator_t *c);

/* Asks the loop to stop; safe from any thread and from signal handlers' loops. */
void rf_coordinator_stop(rf_coordinator_t *c);

/* Reads the CURVE allow-list folder again (security.authorized_keys; auth.h). No-op without keys.
 * Async-signal-safe (SIGHUP). */
void rf_coordinator_reload_keys(rf_coordinator_t *c);

void rf_coordinator_destroy(rf_coordinator_t **c);

/* For the scheduler benchmark (bench/): adds a running job of nchunks chunks of frames_per_chunk
 * frames each, with encoder "ffv1", no passes, and input blobs that do not exist, so that
 * simulated workers can be assigned chunks without any media. Call before rf_coordinator_run, on
 * the thread that created c. job_id (64 bytes) gets the id. */
int rf_coordinator_bench_job(rf_coordinator_t *c, size_t nchunks, int frames_per_chunk, char *job_id,
                             rf_err_t *err);

/* For tests: job job_id (a bench job) uses the model blob sha_hex, as if its spec named it, so
 * dispatch prefers workers that advertise it (proto Capabilities.models, Heartbeat.models). Call
 * before rf_coordinator_run. */
int rf_coordinator_bench_job_model(rf_coordinator_t *c, const char *job_id, const char *sha_hex,
                                   rf_err_t *err);

#endif
