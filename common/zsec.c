/* zsec.c - CURVE key files and socket options, ZAP roles (see zsec.h). */
#include "zsec.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sodium.h>
#include <zmq.h>

/* A Z85 CURVE key: 40 characters that decode to 32 bytes. */
static bool s_z85_valid(const char *text)
{
    uint8_t raw[32];
    if (strlen(text) != RF_ZSEC_KEY_LEN)
        return false;
    return zmq_z85_decode(raw, text) != NULL;
}

/* Trims spaces at both ends, in place. */
static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int rf_zsec_read_key(const char *path, char pub[RF_ZSEC_KEY_LEN + 1], char sec[RF_ZSEC_KEY_LEN + 1],
                     rf_err_t *err)
{
    char text[RF_ZSEC_FILE_MAX + 1];
    char got_pub[RF_ZSEC_KEY_LEN + 1] = "", got_sec[RF_ZSEC_KEY_LEN + 1] = "";
    int rc = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "key file '%s': %s", path,
                          strerror(errno));
    struct stat st;
    if (sec && fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        /* Like ssh with a private key: a secret others can read is no longer a secret. */
        fclose(f);
        return rf_err_set(err, RF_EPERM,
                          "key file '%s': mode %03o lets other users read or change the secret key; "
                          "chmod 600 it (on Kubernetes mount the Secret with defaultMode 0400)",
                          path, (unsigned)(st.st_mode & 0777));
    }
    size_t len = fread(text, 1, sizeof(text), f);
    bool bad = ferror(f);
    fclose(f);
    if (bad)
        return rf_err_set(err, RF_EIO, "key file '%s': cannot read it", path);
    if (len > RF_ZSEC_FILE_MAX)
        return rf_err_set(err, RF_ECONFIG, "key file '%s': larger than %d bytes", path,
                          RF_ZSEC_FILE_MAX);
    text[len] = '\0';
    if (memchr(text, '\0', len))
        return rf_err_set(err, RF_ECONFIG, "key file '%s': not a text file", path);

    int line = 0;
    char *save = text;
    while (save && *save) {
        char *l = save;
        char *nl = strchr(l, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = '\0';
        line++;
        l = s_trim(l);
        /* Z85 uses '#' and '=' too, so a comment is a whole line, and a value is either quoted
         * (anything may follow the closing quote's '#') or the rest of the line. */
        if (!*l || *l == '#')
            continue;
        char *key = "public", *value = l;
        size_t klen = strspn(l, "abcdefghijklmnopqrstuvwxyz_");
        char *after = l + klen;
        while (*after == ' ' || *after == '\t')
            after++;
        if (klen > 0 && *after == '=' && !s_z85_valid(l)) { /* a bare key may hold "abc=" too */
            l[klen] = '\0';
            key = l;
            value = s_trim(after + 1);
            if (*value == '"') {
                char *close = strchr(value + 1, '"');
                if (!close) {
                    rc = rf_err_set(err, RF_ECONFIG, "key file '%s':%d: '%s': no closing quote",
                                    path, line, key);
                    goto out;
                }
                *close = '\0';
                value++;
            }
        }
        char *slot = !strcmp(key, "public") ? got_pub : !strcmp(key, "secret") ? got_sec : NULL;
        if (!slot) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "key file '%s':%d: unknown key '%.40s' (expected public or secret)", path,
                            line, key);
            goto out;
        }
        if (!s_z85_valid(value)) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "key file '%s':%d: '%s' is not a 40-character Z85 CURVE key", path, line,
                            key);
            goto out;
        }
        if (*slot) {
            rc = rf_err_set(err, RF_ECONFIG, "key file '%s':%d: '%s' given twice", path, line, key);
            goto out;
        }
        memcpy(slot, value, RF_ZSEC_KEY_LEN + 1);
    }
    if (sec) {
        if (!*got_sec) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "key file '%s': no secret key in it (a NAME.key from reelfarm keygen is "
                            "needed here, not a .pub)",
                            path);
            goto out;
        }
        char derived[RF_ZSEC_KEY_LEN + 1];
        if (zmq_curve_public(derived, got_sec) != 0) {
            rc = rf_err_set(err, RF_ECONFIG, "key file '%s': cannot derive the public key: %s", path,
                            zmq_strerror(errno));
            goto out;
        }
        if (*got_pub && strcmp(derived, got_pub) != 0) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "key file '%s': its public key does not belong to its secret key", path);
            goto out;
        }
        memcpy(got_pub, derived, sizeof(got_pub));
        memcpy(sec, got_sec, RF_ZSEC_KEY_LEN + 1);
    } else if (!*got_pub) {
        rc = rf_err_set(err, RF_ECONFIG, "key file '%s': no public key in it", path);
        goto out;
    }
    memcpy(pub, got_pub, RF_ZSEC_KEY_LEN + 1);
out:
    sodium_memzero(got_sec, sizeof(got_sec));
    sodium_memzero(text, sizeof(text));
    return rc;
}

int rf_zsec_client_load(rf_zsec_t *z, const char *key_path, const char *server_pub_path, rf_err_t *err)
{
    memset(z, 0, sizeof(*z));
    int rc = rf_zsec_read_key(key_path, z->public_key, z->secret_key, err);
    if (!rc)
        rc = rf_zsec_read_key(server_pub_path, z->server_key, NULL, err);
    if (rc) {
        rf_zsec_clear(z);
        return rc;
    }
    z->on = true;
    return 0;
}

int rf_zsec_server_load(rf_zsec_t *z, const char *key_path, rf_err_t *err)
{
    memset(z, 0, sizeof(*z));
    int rc = rf_zsec_read_key(key_path, z->public_key, z->secret_key, err);
    if (rc) {
        rf_zsec_clear(z);
        return rc;
    }
    z->on = true;
    return 0;
}

int rf_zsec_apply(void *sock, const rf_zsec_t *z, const char *zap_domain)
{
    if (!z || !z->on)
        return 0;
    if (!*z->server_key) {
        int one = 1;
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->secret_key, RF_ZSEC_KEY_LEN) != 0 ||
            (zap_domain && zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) != 0))
            return RF_EIO;
        return 0;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, z->server_key, RF_ZSEC_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, z->public_key, RF_ZSEC_KEY_LEN) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->secret_key, RF_ZSEC_KEY_LEN) != 0)
        return RF_EIO;
    return 0;
}

void rf_zsec_clear(rf_zsec_t *z)
{
    if (z)
        sodium_memzero(z, sizeof(*z));
}

rf_role_t rf_zsec_role(const char *user_id, char *name, size_t size)
{
    if (name && size)
        name[0] = '\0';
    if (!user_id)
        return RF_ROLE_OPEN;
    const char *colon = strchr(user_id, ':');
    size_t n = colon ? (size_t)(colon - user_id) : strlen(user_id);
    rf_role_t role = RF_ROLE_NONE;
    if (n == 6 && !strncmp(user_id, "worker", 6))
        role = RF_ROLE_WORKER;
    else if (n == 6 && !strncmp(user_id, "client", 6))
        role = RF_ROLE_CLIENT;
    else if (n == 5 && !strncmp(user_id, "admin", 5))
        role = RF_ROLE_ADMIN;
    if (name && size)
        snprintf(name, size, "%s", colon ? colon + 1 : "");
    return role;
}

const char *rf_zsec_role_name(rf_role_t role)
{
    switch (role) {
    case RF_ROLE_OPEN: return "open";
    case RF_ROLE_WORKER: return "worker";
    case RF_ROLE_CLIENT: return "client";
    case RF_ROLE_ADMIN: return "admin";
    default: return "none";
    }
}

bool rf_zsec_endpoint_local(const char *ep)
{
    if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
        return true;
    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    const char *host = ep + 6;
    const char *colon = strrchr(host, ':');
    size_t n = colon ? (size_t)(colon - host) : strlen(host);
    /* tcp://eth0;127.0.0.1:7600 (source;destination) is a connect form, never ours to bind. */
    if (n == 9 && !strncmp(host, "localhost", 9))
        return true;
    if (n == 5 && !strncmp(host, "[::1]", 5))
        return true;
    if (n >= 4 && !strncmp(host, "127.", 4)) {
        for (size_t i = 4; i < n; i++)
            if (!isdigit((unsigned char)host[i]) && host[i] != '.')
                return false;
        return true;
    }
    return false;
}

void *rf_zsec_monitor_failures(void *zctx, void *sock)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://rf-handshake-monitor-%p", sock);
    if (zmq_socket_monitor(sock, ep, ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                         ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    void *pair = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    if (pair && (zmq_setsockopt(pair, ZMQ_LINGER, &zero, sizeof(zero)) != 0 || zmq_connect(pair, ep) != 0)) {
        zmq_close(pair);
        pair = NULL;
    }
    if (!pair)
        zmq_socket_monitor(sock, NULL, 0);
    return pair;
}

bool rf_zsec_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > RF_ZSEC_NAME_MAX || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return false;
    return true;
}
