/* audit.h - the coordinator's audit log: who submitted, rendered and fetched what (DESIGN §8,
 * docs/PROVENANCE.md "Audit log"), and the secret keys the coordinator keeps in its state folder.
 *
 * <state>/audit.log is append-only text, one record per line, tab-separated:
 *
 *     SEQ  TIME_MS  TYPE  ACTOR  JOB  DETAIL  PREV  HASH
 *
 * SEQ counts from 1 with no gap; PREV is the HASH of the record before (64 zeros for record 1);
 * HASH = hex SHA-256 of the line's bytes up to and including the tab before HASH, so it covers
 * PREV and chains every record to all before it. Fields never hold tabs, newlines or backslashes
 * (they are escaped as \t \n \\). Every RF_AUDIT_CHECKPOINT_EVERY records, and when the log is
 * closed, a `checkpoint` record is appended whose DETAIL is
 *     ed25519=<public key hex>;sig=<signature hex>
 * the Ed25519 signature (libsodium) of "reelfarm audit checkpoint v1" NUL SEQ-as-decimal NUL PREV
 * with the key in <state>/audit.key (mode 0600, made on first start). The public key is also
 * written to <state>/audit.pub for verifiers, who should keep their own copy: a checkpoint only
 * proves something to someone who knows the key from elsewhere.
 *
 * What the chain shows: editing a record changes its hash (the next record's PREV no longer
 * matches); deleting or reordering records breaks SEQ and PREV; rewriting the whole tail after a
 * record needs the signing key for every later checkpoint. Records after the last checkpoint can
 * be cut off unnoticed: the verifier says how many there are.
 *
 * Personal data (subject names, release references) goes only into this log, never into outputs;
 * outputs carry the subjects' digests.
 */
#ifndef RF_AUDIT_H
#define RF_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_AUDIT_CHECKPOINT_EVERY 64
#define RF_AUDIT_FIELD_MAX 4096    /* a field longer than this is cut (and says so) */
#define RF_AUDIT_LINE_MAX 32768    /* a verifier refuses longer lines */

/* Reads a secret key file of len bytes, or creates it (random bytes, mode 0600, written to a temp
 * name, fsynced and renamed) when it does not exist. A file of another size, or readable by group
 * or others, is an error naming the file. Used for <state>/watermark.key and <state>/audit.key. */
int rf_secret_key_file(const char *path, uint8_t *key, size_t len, rf_err_t *err);

typedef struct rf_audit rf_audit_t;

/* Opens <state_dir>/audit.log for appending (creating it, and the signing key, when needed). The
 * existing log is read to find the last SEQ and HASH; one that does not verify is an error: the
 * coordinator will not chain new records to a broken log. */
int rf_audit_open(const char *state_dir, rf_audit_t **out, rf_err_t *err);

/* Appends one record (and a checkpoint when one is due), then fsyncs. type: a word such as
 * submit, refuse, render, done, fetch; actor: who (a worker's name, "client"); job: a job id or
 * ""; detail: free text. */
int rf_audit_append(rf_audit_t *a, const char *type, const char *actor, const char *job,
                    const char *detail, rf_err_t *err);

/* Writes a checkpoint if records were appended since the last one, and closes. */
void rf_audit_close(rf_audit_t **a);

typedef struct rf_audit_report {
    uint64_t records;          /* lines that verified */
    uint64_t checkpoints;      /* signatures that verified */
    uint64_t unsigned_tail;    /* records after the last checkpoint */
    uint64_t bad_record;       /* SEQ (line number) of the first problem, 0 when none */
    uint8_t pubkey[32];        /* the checkpoints' key */
} rf_audit_report_t;

/* Verifies a log file: every line parses, SEQ = line number, PREV = the previous HASH, HASH
 * matches, every checkpoint's signature verifies with pubkey (when given) or else with the key
 * the first checkpoint names (and every checkpoint must name the same key). RF_EVERIFY with err
 * naming the record ("record 12: hash mismatch (edited?)"); RF_EIO/RF_ENOENT for the file. */
int rf_audit_verify_file(const char *path, const uint8_t *pubkey, rf_audit_report_t *rep,
                         rf_err_t *err);

#endif
