/* blob.h - content-addressed blobs and their transfer over the blob socket (DESIGN §3).
 *
 * A blob is a file named by the lowercase hex SHA-256 of its bytes, stored as <blob_dir>/<sha256>.
 * Blobs become visible only whole: written to a temp name, fsynced, hashed, renamed, and the folder
 * fsynced, so a crash never leaves a partial blob under a real name.
 *
 * Transfer: 1 MiB pieces (RF_BLOB_PIECE), credit-based (at most `credits` pieces in flight, after
 * zguide's fileio3), each piece an Envelope on the blob socket. Downloads are BlobGet -> BlobPiece;
 * uploads are BlobPiece -> BlobAck (the ack returns the credit; the last ack says the blob is
 * durable and verified). Both ends verify the SHA-256 of the whole blob.
 *
 * Resuming: a transfer whose connection drops (server restart, network blip) shows as no reply for
 * RF_BLOB_STALL_MS; the client then opens a fresh socket and continues from the last verified
 * offset instead of starting over - a download from the bytes it has written (re-requested by
 * offset), an upload from what the server says it holds (a BlobPiece probe with `resume`, answered
 * by a BlobAck with `resume`; uploads carry a random `upload_id` so the server can find them from
 * any connection, and it keeps their partial files in <blob_dir>/partial/ across restarts). A
 * download that gives up (timeout, cancel) keeps dest.part and its verified offset in
 * dest.part.offset; the next fetch to the same dest resumes them. The SHA-256 is still checked over
 * the whole blob at the end, so a bad partial can only fail the transfer, never pass it.
 *
 * The server runs on its own thread with its own ROUTER socket, so file I/O and hashing never block
 * the coordinator's loop. The client functions are blocking: a worker's slot thread calls them.
 */
#ifndef RF_BLOB_H
#define RF_BLOB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "hash.h"
#include "zsec.h"

#define RF_BLOB_CREDITS 8                      /* default pieces in flight */
#define RF_BLOB_MAX_SIZE (64ULL << 30)          /* largest blob accepted: 64 GiB */
#define RF_BLOB_MAX_UPLOADS 256                 /* concurrent partial uploads on one server */
#define RF_BLOB_STALL_MS 2000                   /* no reply with requests out: reconnect and resume */
#define RF_BLOB_CHECKPOINT_PIECES 16            /* a download records its verified offset this often */
#define RF_BLOB_PARTIAL_KEEP_S (15 * 60)        /* an untouched resumable partial upload is kept this long */
#define RF_BLOB_GRANT_S (24 * 3600)             /* a client's download grant lasts this long */
#define RF_BLOB_MAX_GRANTS 1024                 /* grants kept; the oldest go first */

/* Path of a blob inside blob_dir. Returns 0 or RF_ETOOBIG when it does not fit in size. */
int rf_blob_path(const char *blob_dir, const char *sha_hex, char *path, size_t size);

/* Moves a finished temp file (in the same filesystem as blob_dir) into the store: fsync, hash,
 * rename to <blob_dir>/<sha>, fsync the folder. sha_hex (65 bytes) and size (may be NULL) are set.
 * When the blob already exists the temp file is removed. */
int rf_blob_commit(const char *blob_dir, const char *tmp_path, char sha_hex[RF_SHA256_HEX_LEN + 1],
                   uint64_t *size, rf_err_t *err);

/* Creates a unique temp file path inside <blob_dir>/tmp/ (the folder is created). */
int rf_blob_tmp_path(const char *blob_dir, const char *tag, char *path, size_t size);

/* ---- shared storage: a blob store that the coordinator and workers all mount ------------------
 *
 * With `shared_blobs: DIR` the coordinator keeps its blob store in DIR and names it with a random
 * id in DIR/store-id; it tells workers the id in Welcome. A worker whose own `shared_blobs` folder
 * holds the same id reads input slices from the store and commits its results into it, instead of
 * moving the bytes over the blob socket; the coordinator then finds them by hash as if uploaded. A
 * worker whose folder holds another id (or none: not mounted) says so and uses the socket. */
#define RF_BLOB_STORE_ID_LEN 32

/* Reads <blob_dir>/store-id into id (32 lowercase hex + NUL). With create, a store without one
 * gets a new random id first (written to a temp file, fsynced, renamed). RF_ENOENT when there is
 * none and create is false. */
int rf_blob_store_id(const char *blob_dir, bool create, char id[RF_BLOB_STORE_ID_LEN + 1],
                     rf_err_t *err);

/* The path of blob sha_hex in a shared store, after checking it is there with `size` bytes and
 * hashes to sha_hex (RF_ENOENT when missing, RF_EVERIFY when its size or hash is wrong). */
int rf_blob_get_local(const char *blob_dir, const char *sha_hex, uint64_t size, char *path,
                      size_t path_size, rf_err_t *err);

/* Puts a copy of src_path into a shared store (hard link when the store is on the same filesystem,
 * else a copy to the store's tmp/ folder), committed like an upload (rf_blob_commit): fsynced,
 * hashed, renamed to its hash. sha_hex and size (may be NULL) are set. */
int rf_blob_put_local(const char *blob_dir, const char *src_path,
                      char sha_hex[RF_SHA256_HEX_LEN + 1], uint64_t *size, rf_err_t *err);

typedef struct rf_blob_server rf_blob_server_t;

/* Binds a ROUTER at endpoint in zctx ("tcp://127.0.0.1:7602", or port "*" for an ephemeral port)
 * and serves blob_dir from a new thread. Plaintext (no CURVE). */
int rf_blob_server_new(void *zctx, const char *endpoint, const char *blob_dir,
                       rf_blob_server_t **out, rf_err_t *err);

/* The same with CURVE when sec is on (a server's keys; ZAP domain "blobs", so the coordinator's
 * ZAP handler must already be bound in zctx). Roles (zsec.h): a client key may only download; a
 * key with no known role is refused everything. */
int rf_blob_server_new_secure(void *zctx, const char *endpoint, const char *blob_dir, const rf_zsec_t *sec,
                              rf_blob_server_t **out, rf_err_t *err);

/* The same with limits (docs/SECURITY.md). 0 = the compiled-in maximum. */
typedef struct rf_blob_server_opts {
    const rf_zsec_t *sec;    /* CURVE server keys, or NULL */
    uint64_t max_blob;       /* bytes in one uploaded blob (<= RF_BLOB_MAX_SIZE) */
    int max_uploads;         /* uploads in progress at once (<= RF_BLOB_MAX_UPLOADS) */
} rf_blob_server_opts_t;

int rf_blob_server_new_opts(void *zctx, const char *endpoint, const char *blob_dir, const rf_blob_server_opts_t *opts,
                            rf_blob_server_t **out, rf_err_t *err);

/* Lets the key with ZAP user id user_id ("client:alice") download blob sha_hex: a client key may
 * download only blobs granted to it (the coordinator grants a job's output to its owner when it
 * answers FetchOutput). Grants last RF_BLOB_GRANT_S; the oldest of more than RF_BLOB_MAX_GRANTS is
 * dropped. Any thread. */
void rf_blob_server_grant(rf_blob_server_t *s, const char *sha_hex, const char *user_id);

/* Messages the server refused, by reason, for the coordinator's metrics. */
typedef struct rf_blob_server_stats {
    unsigned long long bad_parts;  /* not [routing id, one envelope frame] */
    unsigned long long bad_frame;  /* the frame did not unpack, or an unexpected message type */
    unsigned long long refused;    /* the peer's role may not send it */
    unsigned long long over_limit; /* an upload over limits.blob_bytes or limits.blob_uploads */
    unsigned long long handshake;  /* connections whose ZMTP handshake failed (not ZeroMQ, cut short) */
} rf_blob_server_stats_t;

void rf_blob_server_stats(const rf_blob_server_t *s, rf_blob_server_stats_t *out);

/* The endpoint actually bound (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234". */
const char *rf_blob_server_endpoint(const rf_blob_server_t *s);

/* Stops the thread, closes the socket, removes partial uploads; sets *s to NULL; idempotent. */
void rf_blob_server_destroy(rf_blob_server_t **s);

/* What one transfer did (out), and an optional progress hook (in). May be NULL. */
typedef struct rf_blob_xfer {
    /* in: called after every piece with the bytes verified so far (tests cut connections here) */
    void (*on_progress)(void *arg, uint64_t done, uint64_t total);
    void *arg;
    const rf_zsec_t *sec;        /* in: CURVE client keys for the blob socket; NULL = plaintext */
    /* out */
    uint64_t resumed_from;       /* offset of the last resume (kept partial or reconnect); 0 = none */
    uint64_t bytes;              /* payload bytes this call moved over the socket */
    uint64_t bytes_after_resume; /* of which since the last resume */
    uint32_t reconnects;         /* fresh sockets opened after a stall */
} rf_blob_xfer_t;

/* Downloads blob sha_hex (expected size `size`) from the server at endpoint into dest_path
 * (written to dest_path.part, verified, renamed), resuming a partial left by an earlier call and
 * reconnecting after stalls (above). Gives up with RF_ETIMEDOUT after timeout_ms without progress,
 * RF_ECANCELED as soon as *cancel becomes non-zero (cancel may be NULL), RF_EVERIFY when the bytes
 * do not hash to sha_hex (the partial is deleted), RF_ENOENT when the server lacks it, RF_EAGAIN
 * when another fetch is writing dest_path.part right now. */
int rf_blob_fetch(void *zctx, const char *endpoint, const char *sha_hex, uint64_t size,
                  const char *dest_path, int timeout_ms, const atomic_int *cancel,
                  rf_blob_xfer_t *xfer, rf_err_t *err);

/* Uploads src_path to the server; sha_hex (65 bytes) gets the blob's name. Returns once the server
 * acknowledged the blob as durable and verified; resumes after stalls from what the server holds.
 * Errors as for rf_blob_fetch. */
int rf_blob_upload(void *zctx, const char *endpoint, const char *src_path,
                   char sha_hex[RF_SHA256_HEX_LEN + 1], uint64_t *size, int timeout_ms,
                   const atomic_int *cancel, rf_blob_xfer_t *xfer, rf_err_t *err);

#endif
