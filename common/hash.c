/* hash.c - SHA-256 through libsodium (see hash.h). */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"

/* rf_sha256_t keeps libsodium's state opaque in the header; make sure it really fits. */
_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((rf_sha256_t *)0)->state),
               "rf_sha256_t.state is too small for crypto_hash_sha256_state");
_Static_assert(_Alignof(crypto_hash_sha256_state) <= 16, "rf_sha256_t.state is under-aligned");
_Static_assert(crypto_hash_sha256_BYTES == RF_SHA256_LEN, "SHA-256 length");

#define RF_HASH_READ_PIECE (1024 * 1024)

static crypto_hash_sha256_state *s_state(rf_sha256_t *h)
{
    return (crypto_hash_sha256_state *)(void *)h->state;
}

void rf_sha256_init(rf_sha256_t *h)
{
    crypto_hash_sha256_init(s_state(h));
}

void rf_sha256_update(rf_sha256_t *h, const void *data, size_t len)
{
    if (len > 0)
        crypto_hash_sha256_update(s_state(h), data, len);
}

void rf_sha256_final(rf_sha256_t *h, uint8_t out[RF_SHA256_LEN])
{
    crypto_hash_sha256_final(s_state(h), out);
}

void rf_sha256(const void *data, size_t len, uint8_t out[RF_SHA256_LEN])
{
    rf_sha256_t h;
    rf_sha256_init(&h);
    rf_sha256_update(&h, data, len);
    rf_sha256_final(&h, out);
}

int rf_sha256_file(const char *path, uint8_t out[RF_SHA256_LEN], uint64_t *size)
{
    int rc = 0;
    int fd = -1;
    unsigned char *buf = NULL;
    uint64_t total = 0;
    rf_sha256_t h;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errno == ENOENT ? RF_ENOENT : RF_EIO;
        goto cleanup;
    }
    buf = malloc(RF_HASH_READ_PIECE);
    if (buf == NULL) {
        rc = RF_ENOMEM;
        goto cleanup;
    }
    rf_sha256_init(&h);
    for (;;) {
        ssize_t n = read(fd, buf, RF_HASH_READ_PIECE);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = RF_EIO;
            goto cleanup;
        }
        if (n == 0)
            break;
        rf_sha256_update(&h, buf, (size_t)n);
        total += (uint64_t)n;
    }
    rf_sha256_final(&h, out);
    if (size != NULL)
        *size = total;

cleanup:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

char *rf_hex(const uint8_t *bytes, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    hex[2 * len] = '\0';
    return hex;
}

static int s_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int rf_sha256_from_hex(const char *hex, uint8_t out[RF_SHA256_LEN])
{
    if (hex == NULL)
        return RF_EINVAL;
    for (size_t i = 0; i < RF_SHA256_HEX_LEN; i++)
        if (s_hex_digit(hex[i]) < 0) /* also stops at the NUL of a short string */
            return RF_EINVAL;
    if (hex[RF_SHA256_HEX_LEN] != '\0')
        return RF_EINVAL;
    for (size_t i = 0; i < RF_SHA256_LEN; i++)
        out[i] = (uint8_t)(s_hex_digit(hex[2 * i]) << 4 | s_hex_digit(hex[2 * i + 1]));
    return 0;
}

int rf_sha256_hex_valid(const char *s)
{
    if (s == NULL)
        return 0;
    for (size_t i = 0; i < RF_SHA256_HEX_LEN; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return s[RF_SHA256_HEX_LEN] == '\0';
}
