/* auth.c - the ZAP handler (see auth.h; ZAP is RFC 27: zeromq/rfc content/docs/rfcs/27).
 *
 * Request frames: "1.0", request id, domain, address, routing id, mechanism, credentials (for
 * CURVE one 32-byte public key). Reply: "1.0", the request id, status code, status text, user id,
 * metadata (empty). The thread owns the socket and the key table; only the counters are shared.
 */
#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "log.h"
#include "zsec.h"

#define COMP "auth"
#define S_POLL_MS 100
#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_FRAMES 7

typedef struct s_key {
    uint8_t key[32];
    rf_role_t role;
    char name[RF_ZSEC_NAME_MAX + 1];
} s_key_t;

struct rf_auth {
    void *sock;            /* REP, owned by the thread while it runs */
    char dir[4096];
    pthread_t thread;
    atomic_int stop;
    atomic_int reload;
    s_key_t *keys;         /* the thread's alone */
    size_t nkeys;
    atomic_ullong allowed[3], denied[3], nkeys_pub, reloads;
};

static const char *const s_domains[3] = {"workers", "clients", "blobs"};
static const struct {
    const char *folder;
    rf_role_t role;
} s_folders[] = {{"workers", RF_ROLE_WORKER}, {"clients", RF_ROLE_CLIENT}, {"admins", RF_ROLE_ADMIN}};

/* Which roles each domain admits: the worker socket workers and admins, the client socket
 * clients and admins, the blob socket all three. */
static bool s_admits(int domain, rf_role_t role)
{
    switch (domain) {
    case 0: return role == RF_ROLE_WORKER || role == RF_ROLE_ADMIN;
    case 1: return role == RF_ROLE_CLIENT || role == RF_ROLE_ADMIN;
    case 2: return role == RF_ROLE_WORKER || role == RF_ROLE_CLIENT || role == RF_ROLE_ADMIN;
    default: return false;
    }
}

/* Reads one role folder into *keys. A missing folder is an empty role. */
static int s_load_folder(const char *dir, const char *folder, rf_role_t role, s_key_t **keys,
                         size_t *n, size_t *cap)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, folder);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pub") != 0)
            continue;
        char name[RF_ZSEC_NAME_MAX + 8], file[4800];
        snprintf(name, sizeof(name), "%.*s", (int)(len - 4), e->d_name);
        snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
        if (len - 4 > RF_ZSEC_NAME_MAX || !rf_zsec_name_valid(name)) {
            RF_WARN(COMP, "allow-list: skipped '%s': the name is not 1..64 letters, digits, '-', "
                          "'_' or '.'", file);
            continue;
        }
        char pub[RF_ZSEC_KEY_LEN + 1];
        rf_err_t err = {0};
        if (rf_zsec_read_key(file, pub, NULL, &err)) {
            RF_WARN(COMP, "allow-list: skipped it: %s", err.msg);
            continue;
        }
        if (*n >= RF_AUTH_MAX_KEYS) {
            RF_WARN(COMP, "allow-list: more than %d keys; skipped '%s'", RF_AUTH_MAX_KEYS, file);
            continue;
        }
        if (*n == *cap) {
            size_t ncap = *cap ? *cap * 2 : 64;
            s_key_t *grown = realloc(*keys, ncap * sizeof(**keys));
            if (!grown) {
                closedir(d);
                return -1;
            }
            *keys = grown;
            *cap = ncap;
        }
        s_key_t *k = &(*keys)[*n];
        zmq_z85_decode(k->key, pub);
        k->role = role;
        snprintf(k->name, sizeof(k->name), "%.64s", name);
        bool dup = false;
        for (size_t i = 0; i < *n && !dup; i++) {
            if (!memcmp((*keys)[i].key, k->key, 32) || !strcmp((*keys)[i].name, k->name)) {
                RF_WARN(COMP, "allow-list: skipped '%s': its key or name is already listed as %s "
                              "'%s' (a key has one role, a name one key)",
                        file, rf_zsec_role_name((*keys)[i].role), (*keys)[i].name);
                dup = true;
            }
        }
        if (!dup)
            (*n)++;
    }
    closedir(d);
    return 0;
}

/* Reads the allow-list folder; keeps the old list when the folder cannot be read at all. */
static int s_load(rf_auth_t *a)
{
    s_key_t *keys = NULL;
    size_t n = 0, cap = 0, per[3] = {0};
    struct stat st;
    if (stat(a->dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        RF_ERROR(COMP, "allow-list folder '%s': %s; keeping the %zu keys loaded before", a->dir,
                 errno ? strerror(errno) : "not a folder", a->nkeys);
        return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        size_t before = n;
        if (s_load_folder(a->dir, s_folders[i].folder, s_folders[i].role, &keys, &n, &cap) != 0) {
            RF_ERROR(COMP, "allow-list folder '%s/%s': %s; keeping the %zu keys loaded before",
                     a->dir, s_folders[i].folder, strerror(errno), a->nkeys);
            free(keys);
            return -1;
        }
        per[i] = n - before;
    }
    free(a->keys);
    a->keys = keys;
    a->nkeys = n;
    atomic_store(&a->nkeys_pub, n);
    atomic_fetch_add(&a->reloads, 1);
    RF_INFO(COMP, "allow-list '%s': %zu worker, %zu client, %zu admin keys", a->dir, per[0], per[1],
            per[2]);
    if (n == 0)
        RF_WARN(COMP, "allow-list '%s' is empty: every connection will be refused (put NAME.pub "
                      "files in its workers/, clients/ and admins/ folders, then send SIGHUP)",
                a->dir);
    return 0;
}

static void s_send_reply(void *sock, const zmq_msg_t *request_id, const char *status,
                         const char *text, const char *user_id)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data((zmq_msg_t *)request_id), zmq_msg_size((zmq_msg_t *)request_id),
             ZMQ_SNDMORE);
    zmq_send(sock, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user_id, strlen(user_id), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

static bool s_frame_is(zmq_msg_t *m, const char *text)
{
    size_t n = strlen(text);
    return zmq_msg_size(m) == n && !memcmp(zmq_msg_data(m), text, n);
}

/* Answers one request. A REP must answer every request, even a malformed one. */
static void s_handle(rf_auth_t *a)
{
    zmq_msg_t f[S_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < S_FRAMES ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, a->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch)
            zmq_msg_close(m);
        else
            n++;
    }
    if (n == 0)
        return;
    if (n < S_FRAMES || !s_frame_is(&f[0], "1.0")) {
        /* Not something libzmq sends: answer so the REP stays usable. */
        zmq_msg_t empty;
        zmq_msg_init(&empty);
        s_send_reply(a->sock, n > 1 ? &f[1] : &empty, "500", "malformed ZAP request", "");
        zmq_msg_close(&empty);
        goto out;
    }
    char domain[16] = "";
    size_t dlen = zmq_msg_size(&f[2]);
    if (dlen < sizeof(domain))
        memcpy(domain, zmq_msg_data(&f[2]), dlen), domain[dlen] = '\0';
    char address[64] = "";
    size_t alen = zmq_msg_size(&f[3]);
    if (alen >= sizeof(address))
        alen = sizeof(address) - 1;
    memcpy(address, zmq_msg_data(&f[3]), alen);
    address[alen] = '\0';
    int dom = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(domain, s_domains[i]))
            dom = i;
    if (!s_frame_is(&f[5], "CURVE") || zmq_msg_size(&f[6]) != 32 || dom < 0) {
        if (dom >= 0)
            atomic_fetch_add(&a->denied[dom], 1);
        RF_WARN(COMP, "refused a connection from %s to '%s': not a CURVE handshake", address,
                domain);
        s_send_reply(a->sock, &f[1], "400", "CURVE only", "");
        goto out;
    }
    const uint8_t *key = zmq_msg_data(&f[6]);
    const s_key_t *k = NULL;
    for (size_t i = 0; i < a->nkeys && !k; i++)
        if (!memcmp(a->keys[i].key, key, 32))
            k = &a->keys[i];
    char z85[RF_ZSEC_KEY_LEN + 1];
    zmq_z85_encode(z85, key, 32);
    if (!k || !s_admits(dom, k->role)) {
        atomic_fetch_add(&a->denied[dom], 1);
        if (!k)
            RF_WARN(COMP, "refused key %s from %s on the %s socket: not on the allow-list", z85,
                    address, domain);
        else
            RF_WARN(COMP, "refused %s key '%s' from %s on the %s socket: its role may not use it",
                    rf_zsec_role_name(k->role), k->name, address, domain);
        s_send_reply(a->sock, &f[1], "400", k ? "role not allowed on this socket" : "unknown key",
                     "");
        goto out;
    }
    char user_id[RF_ZSEC_NAME_MAX + 16];
    snprintf(user_id, sizeof(user_id), "%s:%s", rf_zsec_role_name(k->role), k->name);
    atomic_fetch_add(&a->allowed[dom], 1);
    RF_DEBUG(COMP, "accepted %s from %s on the %s socket", user_id, address, domain);
    s_send_reply(a->sock, &f[1], "200", "OK", user_id);
out:
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static void *s_main(void *arg)
{
    rf_auth_t *a = arg;
    while (!atomic_load(&a->stop)) {
        if (atomic_exchange(&a->reload, 0))
            s_load(a);
        zmq_pollitem_t item = {.socket = a->sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, S_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && (item.revents & ZMQ_POLLIN))
            s_handle(a);
    }
    return NULL;
}

int rf_auth_new(void *zctx, const char *keys_dir, rf_auth_t **out, rf_err_t *err)
{
    *out = NULL;
    rf_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    int rc = 0;
    if (snprintf(a->dir, sizeof(a->dir), "%s", keys_dir) >= (int)sizeof(a->dir)) {
        rc = rf_err_set(err, RF_ETOOBIG, "allow-list folder path too long");
        goto fail;
    }
    struct stat st;
    if (stat(keys_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = rf_err_set(err, RF_ENOENT,
                        "allow-list folder '%s' (security.authorized_keys): %s", keys_dir,
                        errno && stat(keys_dir, &st) != 0 ? strerror(errno) : "not a folder");
        goto fail;
    }
    if (s_load(a) != 0) {
        rc = rf_err_set(err, RF_EIO, "allow-list folder '%s': cannot read it", keys_dir);
        goto fail;
    }
    a->sock = zmq_socket(zctx, ZMQ_REP);
    int zero = 0;
    if (!a->sock || zmq_setsockopt(a->sock, ZMQ_LINGER, &zero, sizeof(zero)) != 0 ||
        zmq_bind(a->sock, S_ZAP_ENDPOINT) != 0) {
        rc = rf_err_set(err, RF_EIO, "ZAP handler: cannot bind %s: %s", S_ZAP_ENDPOINT,
                        zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, s_main, a) != 0) {
        rc = rf_err_set(err, RF_EIO, "ZAP handler: cannot start its thread");
        goto fail;
    }
    *out = a;
    return 0;
fail:
    if (a->sock)
        zmq_close(a->sock);
    free(a->keys);
    free(a);
    return rc;
}

void rf_auth_reload(rf_auth_t *a)
{
    if (a)
        atomic_store(&a->reload, 1);
}

void rf_auth_stats(const rf_auth_t *a, rf_auth_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!a)
        return;
    rf_auth_t *m = (rf_auth_t *)a; /* atomics only */
    for (int i = 0; i < 3; i++) {
        out->allowed[i] = atomic_load(&m->allowed[i]);
        out->denied[i] = atomic_load(&m->denied[i]);
    }
    out->keys = atomic_load(&m->nkeys_pub);
    out->reloads = atomic_load(&m->reloads);
}

void rf_auth_destroy(rf_auth_t **ap)
{
    if (!ap || !*ap)
        return;
    rf_auth_t *a = *ap;
    atomic_store(&a->stop, 1);
    pthread_join(a->thread, NULL);
    zmq_close(a->sock);
    free(a->keys);
    free(a);
    *ap = NULL;
}
