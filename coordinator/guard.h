/* guard.h - what the coordinator checks at its doors (DESIGN §9, docs/SECURITY.md): where it may
 * listen without keys, which paths a job spec may name, and the account of every message it
 * refused, by socket and reason, for /metrics.
 *
 * The checks are plain functions over the config and the spec so they can be tested without a
 * running coordinator; coordinator.c calls them where input enters.
 */
#ifndef RF_GUARD_H
#define RF_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "blob.h"
#include "config.h"
#include "error.h"
#include "http.h"

typedef enum rf_guard_socket {
    RF_GUARD_WORKERS = 0,
    RF_GUARD_CLIENTS = 1,
    RF_GUARD_NSOCKETS = 2,
} rf_guard_socket_t;

typedef enum rf_guard_reason {
    RF_BAD_PARTS = 0,     /* not [routing id, one envelope frame] */
    RF_BAD_TOO_BIG,       /* a frame over limits.message_bytes */
    RF_BAD_MALFORMED,     /* did not unpack (protobuf, version, no body, over the unpack budget) */
    RF_BAD_UNEXPECTED,    /* a message type this socket does not take */
    RF_BAD_REFUSED,       /* the peer's role may not send it */
    RF_BAD_HANDSHAKE,     /* a connection whose ZMTP handshake failed: not ZeroMQ, cut short */
    RF_BAD_NREASONS,
} rf_guard_reason_t;

/* Refused messages, counted on the loop thread. */
typedef struct rf_guard_counts {
    uint64_t bad[RF_GUARD_NSOCKETS][RF_BAD_NREASONS];
} rf_guard_counts_t;

/* The listen policy (DESIGN §9): with keys (secure) anything goes. Without, every endpoint must be
 * loopback (rf_zsec_endpoint_local) unless cfg->insecure, in which case a warning names each
 * non-loopback one. Logs which it is. RF_EPERM naming the first offending endpoint otherwise. */
int rf_guard_listen_policy(const rf_coordinator_config_t *cfg, bool secure, rf_err_t *err);

/* Checks that every path a job spec names (input, output's folder, and path parameters of its
 * passes that exist) resolves - symlinks and ".." included - under one of roots (which are
 * resolved too). nroots 0: no restriction. RF_EPERM with a message naming the spec key, the path,
 * what it resolves to and the roots. */
int rf_guard_spec_paths(const rf_job_spec_t *spec, char *const *roots, size_t nroots, rf_err_t *err);

/* Appends the security metrics to m: reelfarm_bad_messages_total{socket,reason} (the blob
 * socket's from blob, the HTTP port's from http_bad (rf_http_bad_requests); zmq_dropped[s] are the
 * bridge's over-long messages, counted as "parts"),
 * reelfarm_auth_total{socket,result} and reelfarm_auth_keys (only when auth is not NULL). */
void rf_guard_metrics(rf_buf_t *m, const rf_guard_counts_t *counts, const unsigned long zmq_dropped[2],
                      const rf_blob_server_stats_t *blob, const uint64_t http_bad[3],
                      const rf_auth_stats_t *auth);

const char *rf_guard_reason_name(rf_guard_reason_t r);

#endif
