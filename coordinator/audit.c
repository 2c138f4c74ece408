/* audit.c - the hash-chained, checkpoint-signed audit log and the state folder's secret keys
 * (audit.h has the format and what it proves). */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "rftime.h"

#define S_HASH_HEX (2 * crypto_hash_sha256_BYTES)
#define S_FIELDS 8
#define S_CHECKPOINT_LABEL "reelfarm audit checkpoint v1"

struct rf_audit {
    int fd;
    char path[4200];
    uint64_t seq;                 /* of the last record */
    char prev[S_HASH_HEX + 1];    /* its hash */
    uint64_t since_checkpoint;    /* records appended after the last checkpoint */
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    char line[RF_AUDIT_LINE_MAX];  /* the record being written */
};

/* ---- secret key files -------------------------------------------------------------------------- */

int rf_secret_key_file(const char *path, uint8_t *key, size_t len, rf_err_t *err)
{
    char tmp[4200];
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd >= 0) {
        ssize_t n;
        if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
            close(fd);
            return rf_err_set(err, RF_EPERM, "key file '%s': readable by group or others (chmod 600 it)",
                              path);
        }
        if (st.st_size != (off_t)len) {
            close(fd);
            return rf_err_set(err, RF_EINVAL, "key file '%s': %lld bytes, expected %zu", path,
                              (long long)st.st_size, len);
        }
        n = read(fd, key, len);
        close(fd);
        if (n != (ssize_t)len)
            return rf_err_set(err, RF_EIO, "key file '%s': short read", path);
        return 0;
    }
    if (errno != ENOENT)
        return rf_err_set(err, RF_EIO, "key file '%s': %s", path, strerror(errno));
    snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return rf_err_set(err, RF_EIO, "key file '%s': %s", tmp, strerror(errno));
    randombytes_buf(key, len);
    if (write(fd, key, len) != (ssize_t)len || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        return rf_err_set(err, RF_EIO, "key file '%s': %s", tmp, strerror(errno));
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return rf_err_set(err, RF_EIO, "key file '%s': %s", path, strerror(errno));
    }
    return 0;
}

/* ---- records ----------------------------------------------------------------------------------- */

/* Appends field to buf at *used with \t \n \\ escaped and other control characters as '?'. */
static void s_field(char *buf, size_t size, size_t *used, const char *field)
{
    size_t n = 0;
    for (const char *p = field ? field : ""; *p && n < RF_AUDIT_FIELD_MAX && *used + 3 < size; p++, n++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\t' || ch == '\n' || ch == '\\') {
            buf[(*used)++] = '\\';
            buf[(*used)++] = ch == '\t' ? 't' : ch == '\n' ? 'n' : '\\';
        } else {
            buf[(*used)++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
        }
    }
    buf[*used] = '\0';
}

static void s_hash_hex(const char *data, size_t len, char out[S_HASH_HEX + 1])
{
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)data, len);
    sodium_bin2hex(out, S_HASH_HEX + 1, h, sizeof(h));
}

static void s_checkpoint_message(uint64_t seq, const char *prev, uint8_t *msg, size_t *len)
{
    int n = snprintf((char *)msg, 128, "%s", S_CHECKPOINT_LABEL);
    size_t used = (size_t)n + 1; /* keep the NUL */
    used += (size_t)snprintf((char *)msg + used, 32, "%" PRIu64, seq) + 1;
    memcpy(msg + used, prev, S_HASH_HEX);
    *len = used + S_HASH_HEX;
}

static int s_write_record(rf_audit_t *a, const char *type, const char *actor, const char *job,
                          const char *detail, rf_err_t *err)
{
    char *line = a->line;
    char num[64], hash[S_HASH_HEX + 1];
    size_t used = 0;
    uint64_t seq = a->seq + 1;

    snprintf(num, sizeof(num), "%" PRIu64 "\t%" PRIu64 "\t", seq, (uint64_t)rf_wall_ms());
    used = (size_t)snprintf(line, RF_AUDIT_LINE_MAX, "%s", num);
    const char *fields[] = {type, actor, job, detail};
    for (int i = 0; i < 4; i++) {
        s_field(line, RF_AUDIT_LINE_MAX - S_HASH_HEX * 2 - 4, &used, fields[i]);
        line[used++] = '\t';
    }
    memcpy(line + used, a->prev, S_HASH_HEX);
    used += S_HASH_HEX;
    line[used++] = '\t';
    s_hash_hex(line, used, hash);
    memcpy(line + used, hash, S_HASH_HEX);
    used += S_HASH_HEX;
    line[used++] = '\n';
    if (write(a->fd, line, used) != (ssize_t)used || fsync(a->fd) != 0)
        return rf_err_set(err, RF_EIO, "audit log '%s': %s", a->path, strerror(errno));
    a->seq = seq;
    memcpy(a->prev, hash, sizeof(hash));
    return 0;
}

static int s_checkpoint(rf_audit_t *a, rf_err_t *err)
{
    uint8_t msg[256], sig[crypto_sign_BYTES];
    char detail[300], pkhex[65], sighex[2 * crypto_sign_BYTES + 1];
    size_t len;

    s_checkpoint_message(a->seq + 1, a->prev, msg, &len);
    crypto_sign_detached(sig, NULL, msg, len, a->sk);
    sodium_bin2hex(pkhex, sizeof(pkhex), a->pk, sizeof(a->pk));
    sodium_bin2hex(sighex, sizeof(sighex), sig, sizeof(sig));
    snprintf(detail, sizeof(detail), "ed25519=%s;sig=%s", pkhex, sighex);
    int rc = s_write_record(a, "checkpoint", "coordinator", "", detail, err);
    if (!rc)
        a->since_checkpoint = 0;
    return rc;
}

int rf_audit_append(rf_audit_t *a, const char *type, const char *actor, const char *job,
                    const char *detail, rf_err_t *err)
{
    int rc = s_write_record(a, type, actor, job, detail, err);
    if (rc)
        return rc;
    if (++a->since_checkpoint >= RF_AUDIT_CHECKPOINT_EVERY)
        rc = s_checkpoint(a, err);
    return rc;
}

/* ---- verify ------------------------------------------------------------------------------------ */

static int s_verify(const char *path, const uint8_t *pubkey, rf_audit_report_t *rep, char *last_hash,
                    rf_err_t *err)
{
    FILE *f = fopen(path, "r");
    char *line = malloc(RF_AUDIT_LINE_MAX + 2);
    char prev[S_HASH_HEX + 1], hash[S_HASH_HEX + 1];
    bool have_key = pubkey != NULL;
    int rc = 0;

    memset(rep, 0, sizeof(*rep));
    memset(prev, '0', S_HASH_HEX);
    prev[S_HASH_HEX] = '\0';
    if (pubkey)
        memcpy(rep->pubkey, pubkey, 32);
    if (!line) {
        if (f)
            fclose(f);
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    }
    if (!f) {
        free(line);
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "audit log '%s': %s", path,
                          strerror(errno));
    }
    for (uint64_t n = 1; fgets(line, RF_AUDIT_LINE_MAX + 2, f); n++) {
        char *field[S_FIELDS];
        size_t len = strlen(line), nf = 0;
        char *end = NULL;
        rep->bad_record = n;
        if (len == 0 || line[len - 1] != '\n') {
            rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": %s", n,
                            len > RF_AUDIT_LINE_MAX ? "line too long" : "incomplete line (cut off?)");
            goto out;
        }
        line[--len] = '\0';
        /* the hash covers everything up to and including the tab before it */
        char *last_tab = strrchr(line, '\t');
        for (char *p = line; p && nf < S_FIELDS; nf++) {
            field[nf] = p;
            p = strchr(p, '\t');
            if (p)
                *p++ = '\0';
            else
                break;
        }
        if (nf != S_FIELDS - 1 || !last_tab) {
            rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": expected %d tab-separated fields", n,
                            S_FIELDS);
            goto out;
        }
        errno = 0;
        uint64_t seq = strtoull(field[0], &end, 10);
        if (errno || end == field[0] || *end) {
            rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": bad sequence number '%s'", n, field[0]);
            goto out;
        }
        if (seq != n) {
            rc = rf_err_set(err, RF_EVERIFY,
                            "record %" PRIu64 ": sequence number %" PRIu64 ", expected %" PRIu64
                            " (a record was deleted, inserted or moved)",
                            n, seq, n);
            goto out;
        }
        if (strcmp(field[6], prev) != 0) {
            rc = rf_err_set(err, RF_EVERIFY,
                            "record %" PRIu64 ": previous hash does not match record %" PRIu64
                            " (a record was edited, deleted or moved)",
                            n, n - 1);
            goto out;
        }
        /* restore the tabs of the hashed part to hash the bytes as written */
        for (size_t i = 0; i < S_FIELDS - 1; i++)
            field[i][strlen(field[i])] = '\t';
        s_hash_hex(line, (size_t)(field[7] - line), hash);
        for (size_t i = 0; i < S_FIELDS - 1; i++)
            *(field[i + 1] - 1) = '\0';
        if (strcmp(hash, field[7]) != 0) {
            rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": hash mismatch (the record was edited)", n);
            goto out;
        }
        if (!strcmp(field[2], "checkpoint")) {
            uint8_t pk[32], sig[crypto_sign_BYTES], msg[256];
            size_t mlen;
            const char *d = field[5];
            if (strncmp(d, "ed25519=", 8) || strlen(d) != 8 + 64 + 5 + 128 || strncmp(d + 72, ";sig=", 5) ||
                sodium_hex2bin(pk, 32, d + 8, 64, NULL, NULL, NULL) ||
                sodium_hex2bin(sig, sizeof(sig), d + 77, 128, NULL, NULL, NULL)) {
                rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": malformed checkpoint", n);
                goto out;
            }
            if (!have_key) {
                memcpy(rep->pubkey, pk, 32);
                have_key = true;
            } else if (memcmp(pk, rep->pubkey, 32) != 0) {
                rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": checkpoint signed by another key", n);
                goto out;
            }
            s_checkpoint_message(seq, prev, msg, &mlen);
            if (crypto_sign_verify_detached(sig, msg, mlen, rep->pubkey) != 0) {
                rc = rf_err_set(err, RF_EVERIFY, "record %" PRIu64 ": checkpoint signature does not verify",
                                n);
                goto out;
            }
            rep->checkpoints++;
            rep->unsigned_tail = 0;
        } else {
            rep->unsigned_tail++;
        }
        memcpy(prev, hash, sizeof(prev));
        rep->records = n;
    }
    if (ferror(f)) {
        rc = rf_err_set(err, RF_EIO, "audit log '%s': read error", path);
        goto out;
    }
    rep->bad_record = 0;
    if (last_hash)
        memcpy(last_hash, prev, sizeof(prev));
out:
    fclose(f);
    free(line);
    return rc;
}

int rf_audit_verify_file(const char *path, const uint8_t *pubkey, rf_audit_report_t *rep,
                         rf_err_t *err)
{
    return s_verify(path, pubkey, rep, NULL, err);
}

int rf_audit_open(const char *state_dir, rf_audit_t **out, rf_err_t *err)
{
    rf_audit_t *a = calloc(1, sizeof(*a));
    uint8_t seed[crypto_sign_SEEDBYTES];
    char path[4200], pkhex[65];
    rf_audit_report_t rep;
    int rc;

    *out = NULL;
    if (!a)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    a->fd = -1;
    snprintf(path, sizeof(path), "%s/audit.key", state_dir);
    if ((rc = rf_secret_key_file(path, seed, sizeof(seed), err)) != 0)
        goto fail;
    crypto_sign_seed_keypair(a->pk, a->sk, seed);
    sodium_memzero(seed, sizeof(seed));
    snprintf(path, sizeof(path), "%s/audit.pub", state_dir);
    sodium_bin2hex(pkhex, sizeof(pkhex), a->pk, sizeof(a->pk));
    FILE *pf = fopen(path, "w");
    if (!pf || fprintf(pf, "%s\n", pkhex) < 0 || fclose(pf) != 0) {
        rc = rf_err_set(err, RF_EIO, "'%s': %s", path, strerror(errno));
        goto fail;
    }
    snprintf(a->path, sizeof(a->path), "%s/audit.log", state_dir);
    memset(a->prev, '0', S_HASH_HEX);
    if (access(a->path, F_OK) == 0) {
        rc = s_verify(a->path, a->pk, &rep, a->prev, err);
        if (rc) {
            rf_err_prefix(err, "audit log '%s' does not verify, refusing to extend it: ", a->path);
            goto fail;
        }
        a->seq = rep.records;
        a->since_checkpoint = rep.unsigned_tail;
    }
    a->fd = open(a->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (a->fd < 0) {
        rc = rf_err_set(err, RF_EIO, "audit log '%s': %s", a->path, strerror(errno));
        goto fail;
    }
    *out = a;
    return 0;
fail:
    sodium_memzero(a->sk, sizeof(a->sk));
    free(a);
    return rc;
}

void rf_audit_close(rf_audit_t **ap)
{
    rf_audit_t *a = ap ? *ap : NULL;
    if (!a)
        return;
    if (a->since_checkpoint && a->fd >= 0)
        s_checkpoint(a, NULL);
    if (a->fd >= 0)
        close(a->fd);
    sodium_memzero(a->sk, sizeof(a->sk));
    free(a);
    *ap = NULL;
}
