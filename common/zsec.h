/* zsec.h - CURVE keys on the farm's ZeroMQ sockets, and the roles ZAP gives their peers (DESIGN §9).
 *
 * Key files are the ones `reelfarm keygen` writes (docs/SECURITY.md): one `KEY = "VALUE"` per line,
 * `#` starts a comment; NAME.key holds `public` and `secret`, NAME.pub only `public`; values are
 * 40-character Z85 (RFC 32). A file holding one bare 40-character Z85 line is read as a public key,
 * so a key pasted from `reelfarm keygen`'s stdout works too.
 *
 * Who is what: the coordinator's three ROUTERs are CURVE servers (its secret key); workers and the
 * CLI are CURVE clients (their own pair plus the coordinator's public key). The coordinator's ZAP
 * handler (coordinator/auth.h) allow-lists client keys and answers each with a user id
 * "ROLE:NAME", which libzmq attaches to every message from that peer ("User-Id" metadata); the
 * receiving code reads it back with rf_zsec_role. With no keys configured nothing is set, every
 * message has no user id, and the role is RF_ROLE_OPEN: loopback-only plaintext, where every
 * local process is trusted as before.
 */
#ifndef RF_ZSEC_H
#define RF_ZSEC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

#define RF_ZSEC_KEY_LEN 40 /* Z85 text of a 32-byte CURVE key */
#define RF_ZSEC_NAME_MAX 64 /* a key's name: letters, digits, '-', '_', '.' */
#define RF_ZSEC_FILE_MAX 4096 /* a key file larger than this is refused */

/* One socket's CURVE settings. on = false: plaintext. */
typedef struct rf_zsec {
    bool on;
    char public_key[RF_ZSEC_KEY_LEN + 1];
    char secret_key[RF_ZSEC_KEY_LEN + 1];
    char server_key[RF_ZSEC_KEY_LEN + 1]; /* clients: the coordinator's public key; "" on servers */
} rf_zsec_t;

typedef enum rf_role {
    RF_ROLE_OPEN = 0, /* no CURVE: loopback only, everything allowed (the pre-keys behaviour) */
    RF_ROLE_WORKER,   /* renders: the worker socket, fetch inputs and upload results */
    RF_ROLE_CLIENT,   /* submits, reads and controls its own jobs only */
    RF_ROLE_ADMIN,    /* everything */
    RF_ROLE_NONE,     /* an authenticated peer with a user id we do not know: allowed nothing */
} rf_role_t;

/* Reads a key file. pub gets the public key; sec (may be NULL) the secret one, which the file
 * must then hold (the public one is derived from it when the file has none, and must match it
 * when it has), and which other users must not be able to read or write (mode & 077: RF_EPERM).
 * Errors name the file and line: RF_ENOENT, RF_EIO, RF_ECONFIG, RF_EPERM. */
int rf_zsec_read_key(const char *path, char pub[RF_ZSEC_KEY_LEN + 1], char sec[RF_ZSEC_KEY_LEN + 1],
                     rf_err_t *err);

/* A CURVE client: its own pair from key_path (NAME.key), the server's public key from
 * server_pub_path (coordinator.pub). */
int rf_zsec_client_load(rf_zsec_t *z, const char *key_path, const char *server_pub_path, rf_err_t *err);

/* A CURVE server: its pair from key_path. */
int rf_zsec_server_load(rf_zsec_t *z, const char *key_path, rf_err_t *err);

/* Sets the CURVE options on sock before it binds or connects: a server (z->server_key empty) gets
 * CURVE_SERVER, its secret key and zap_domain (the ZAP handler tells the sockets apart by it); a
 * client gets its pair and the server key. z NULL or !z->on: nothing (plaintext). 0 or RF_EIO. */
int rf_zsec_apply(void *sock, const rf_zsec_t *z, const char *zap_domain);

/* Wipes the secret from memory. */
void rf_zsec_clear(rf_zsec_t *z);

/* The role in a ZAP user id ("worker:gpu-07"); user_id NULL (no CURVE) -> RF_ROLE_OPEN. name (may
 * be NULL) gets the part after the colon ("" for RF_ROLE_OPEN). */
rf_role_t rf_zsec_role(const char *user_id, char *name, size_t size);

/* "worker", "client", "admin", "open", "none". */
const char *rf_zsec_role_name(rf_role_t role);

/* True when a tcp:// endpoint's host is a loopback address (127.0.0.0/8, ::1, localhost), or the
 * endpoint is ipc:// or inproc:// (not reachable from another machine). "*" and 0.0.0.0 are not. */
bool rf_zsec_endpoint_local(const char *endpoint);

/* Watches sock for peers whose ZMTP handshake failed (bytes that are not ZeroMQ, a cut greeting, a
 * mechanism mismatch: ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL and _NO_DETAIL; a key the ZAP handler
 * refused is counted there, not here). Returns a PAIR socket in zctx that receives one
 * [6-byte event, address] message per failure, or NULL. Close it before sock's context ends. */
void *rf_zsec_monitor_failures(void *zctx, void *sock);

/* A key name from a file name: "gpu-07.pub" -> "gpu-07". False when it is not a valid name. */
bool rf_zsec_name_valid(const char *name);

#endif
