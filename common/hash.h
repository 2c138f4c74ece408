/* hash.h - SHA-256 (libsodium) for blob names, result verification and frame checksums. */
#ifndef RF_HASH_H
#define RF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define RF_SHA256_LEN 32
#define RF_SHA256_HEX_LEN 64 /* without the terminating NUL */

/* Streaming hash. Embedded by value: rf_sha256_init, any number of _update, one _final. */
typedef struct rf_sha256 {
    unsigned char state[128] __attribute__((aligned(16))); /* crypto_hash_sha256_state, opaque */
} rf_sha256_t;

void rf_sha256_init(rf_sha256_t *h);
void rf_sha256_update(rf_sha256_t *h, const void *data, size_t len);
void rf_sha256_final(rf_sha256_t *h, uint8_t out[RF_SHA256_LEN]);

/* One-shot hash of a buffer. */
void rf_sha256(const void *data, size_t len, uint8_t out[RF_SHA256_LEN]);

/* Hashes a whole file, reading it in 1 MiB pieces. Returns 0, RF_ENOENT or RF_EIO. *size gets the
 * file size when size is not NULL. */
int rf_sha256_file(const char *path, uint8_t out[RF_SHA256_LEN], uint64_t *size);

/* Lowercase hex, NUL-terminated: hex must hold RF_SHA256_HEX_LEN + 1 bytes. Returns hex. */
char *rf_hex(const uint8_t *bytes, size_t len, char *hex);

/* Parses exactly 64 hex digits into out. Returns 0 or RF_EINVAL. */
int rf_sha256_from_hex(const char *hex, uint8_t out[RF_SHA256_LEN]);

/* True when s is exactly 64 lowercase hex digits: the only blob names accepted from peers. */
int rf_sha256_hex_valid(const char *s);

#endif
