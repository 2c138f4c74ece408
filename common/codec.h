/* codec.h - the message codec: one protobuf Envelope per ZeroMQ frame (DESIGN §3).
 *
 * Unpacking never trusts the peer: the frame size is capped before protobuf-c sees it, and every
 * allocation protobuf-c makes while unpacking comes from an arena with a byte budget, so a hostile
 * frame cannot make us allocate more than the budget. A frame that fails to unpack, or whose
 * envelope has the wrong version or no body, is rejected with RF_EPROTO and never crashes.
 */
#ifndef RF_CODEC_H
#define RF_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "reelfarm.pb-c.h"

#define RF_PROTOCOL_VERSION 1

/* Frame limits (ZMQ_MAXMSGSIZE is set to these plus CURVE overhead on the sockets). */
#define RF_CONTROL_MAX_FRAME (1024 * 1024)    /* control sockets :7600, :7601 */
#define RF_BLOB_MAX_FRAME (2 * 1024 * 1024)   /* blob socket :7602 */
#define RF_BLOB_PIECE (1024 * 1024)           /* data bytes per BlobPiece */
/* Unpack budget: protobuf-c's unpacked form of a frame of n bytes needs at most a small multiple
 * of n (each repeated/bytes field is copied once, plus per-message structs). */
#define RF_CODEC_BUDGET(frame_len) ((size_t)(frame_len) * 4 + 64 * 1024)

/* An unpacked message: the envelope and the arena it lives in. */
typedef struct rf_msg rf_msg_t;

/* Unpacks one frame. len over max_frame -> RF_ETOOBIG; allocations over budget -> RF_ENOMEM;
 * malformed protobuf, version != RF_PROTOCOL_VERSION or no body -> RF_EPROTO.
 * On success *out owns the message (free with rf_msg_destroy). */
int rf_msg_unpack(const void *data, size_t len, size_t max_frame, size_t budget, rf_msg_t **out);

/* The envelope inside; valid until rf_msg_destroy. */
const Reelfarm__Envelope *rf_msg_env(const rf_msg_t *m);

/* Frees the message and its arena; sets *m to NULL; idempotent. */
void rf_msg_destroy(rf_msg_t **m);

/* Packs env into a new malloc'd buffer (*out, *len). Sets env->version = RF_PROTOCOL_VERSION.
 * Returns 0, RF_ENOMEM, or RF_ETOOBIG when the packed size is over max_frame. */
int rf_msg_pack(Reelfarm__Envelope *env, size_t max_frame, uint8_t **out, size_t *len);

/* The body's short name ("hello", "assign", ...) for logs; "none" when unset. */
const char *rf_msg_body_name(const Reelfarm__Envelope *env);

#endif
