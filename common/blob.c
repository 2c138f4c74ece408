/* blob.c - the content-addressed blob store and the blob transfer protocol (see blob.h).
 *
 * Server: one thread owns a ROUTER socket and answers with zmq_poll (100 ms timeout, so a stop
 * request is seen quickly). Downloads are stateless: each BlobGet is answered from the file with
 * one pread. Uploads are stateful: pieces must arrive in order, are written to a partial file and
 * hashed as they come, and the last piece commits the blob. A resumable upload (upload_id set) is
 * keyed by (sha, upload_id), whatever connection its pieces come on, and its partial file lives in
 * <blob_dir>/partial/<sha>.<upload_id>, outside tmp/ (which the coordinator empties at start), so
 * it survives a server restart: the first probe after one re-hashes what the file holds and the
 * upload continues from there. A partial nobody touched for RF_BLOB_PARTIAL_KEEP_S is deleted.
 * An upload without upload_id (an older client) is keyed by (peer routing id, sha) as before.
 *
 * Clients: a blocking call with its own DEALER socket. Credit-based flow control after zguide's
 * fileio3: at most RF_BLOB_CREDITS requests (downloads) or pieces (uploads) are outstanding, and
 * each reply returns one credit. One connection delivers in order, so a lost piece means a lost
 * connection (the server restarted, the network dropped): after RF_BLOB_STALL_MS without a reply
 * the client drops its socket, opens a fresh one and resumes from what is verified - a download
 * from the bytes it has written, an upload from what the server says it holds - until timeout_ms
 * passes without progress (RF_ETIMEDOUT). A download that gives up keeps its partial file and
 * verified offset beside the destination, so the next fetch of the same destination resumes it.
 */
#include "blob.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "codec.h"
#include "log.h"
#include "rftime.h"
#include "zbridge.h"
#include "zsec.h"

#define RF_BLOB_POLL_MS 100                /* server: how often the stop flag is checked */
#define RF_BLOB_CLIENT_POLL_MS 50          /* client: how often cancel and the timeout are checked */
#define RF_BLOB_STALE_MS (120 * 1000)      /* a partial upload without a piece for this long goes */
#define RF_BLOB_ROUTING_ID_MAX 255         /* libzmq's own limit on routing ids */
#define RF_BLOB_TAG_MAX 64                 /* bytes of a temp-file tag kept */
#define RF_BLOB_UPLOAD_ID_LEN 32           /* hex digits of an upload id */
#define RF_BLOB_PARTIAL_SWEEP_MS (60 * 1000) /* how often the server looks for old partials */

/* ---------------------------------------------------------------------------------------------
 * Store helpers
 */

int rf_blob_path(const char *blob_dir, const char *sha_hex, char *path, size_t size)
{
    if (!rf_sha256_hex_valid(sha_hex))
        return RF_EINVAL; /* never build a path from a name that is not a hash */
    int n = snprintf(path, size, "%s/%s", blob_dir, sha_hex);
    if (n < 0 || (size_t)n >= size)
        return RF_ETOOBIG;
    return 0;
}

static int s_mkdir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    return RF_EIO;
}

int rf_blob_tmp_path(const char *blob_dir, const char *tag, char *path, size_t size)
{
    char dir[PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/tmp", blob_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return RF_ETOOBIG;
    if (s_mkdir(blob_dir) != 0 || s_mkdir(dir) != 0)
        return RF_EIO;

    /* The tag only helps a human reading the folder; keep it short and harmless in a file name. */
    char safe[RF_BLOB_TAG_MAX + 1];
    size_t len = 0;
    for (const char *p = tag != NULL ? tag : ""; *p != '\0' && len < RF_BLOB_TAG_MAX; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        safe[len++] = ok ? c : '_';
    }
    safe[len] = '\0';

    if (sodium_init() < 0)
        return RF_EIO;
    uint8_t rnd[8];
    char rnd_hex[2 * sizeof rnd + 1];
    randombytes_buf(rnd, sizeof rnd);
    rf_hex(rnd, sizeof rnd, rnd_hex);
    n = snprintf(path, size, "%s/%s.%s.part", dir, len > 0 ? safe : "blob", rnd_hex);
    if (n < 0 || (size_t)n >= size)
        return RF_ETOOBIG;
    return 0;
}

static int s_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RF_EIO;
    int rc = fsync(fd) == 0 ? 0 : RF_EIO;
    close(fd);
    return rc;
}

static int s_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RF_ENOENT : RF_EIO;
    int rc = fsync(fd) == 0 ? 0 : RF_EIO;
    close(fd);
    return rc;
}

/* The second half of a commit, shared by rf_blob_commit and the upload server: the temp file is
 * durable and known to hash to sha_hex; give it its real name, or drop it when that name exists. */
static int s_install(const char *blob_dir, const char *tmp_path, const char *sha_hex, rf_err_t *err)
{
    char dest[PATH_MAX];
    if (rf_blob_path(blob_dir, sha_hex, dest, sizeof dest) != 0)
        return rf_err_set(err, RF_ETOOBIG, "blob folder '%s': path too long", blob_dir);
    struct stat st;
    if (stat(dest, &st) == 0 && S_ISREG(st.st_mode)) {
        unlink(tmp_path); /* same name, same bytes: keep the one already there */
        return 0;
    }
    if (rename(tmp_path, dest) != 0)
        return rf_err_set(err, RF_EIO, "blob '%s': rename from '%s' failed: %s", sha_hex, tmp_path,
                          strerror(errno));
    if (s_fsync_dir(blob_dir) != 0)
        return rf_err_set(err, RF_EIO, "blob folder '%s': fsync failed: %s", blob_dir, strerror(errno));
    return 0;
}

int rf_blob_commit(const char *blob_dir, const char *tmp_path, char sha_hex[RF_SHA256_HEX_LEN + 1],
                   uint64_t *size, rf_err_t *err)
{
    uint8_t digest[RF_SHA256_LEN];
    uint64_t bytes = 0;
    int rc = s_fsync_path(tmp_path);
    if (rc != 0)
        return rf_err_set(err, rc, "blob temp file '%s': cannot open for fsync: %s", tmp_path, strerror(errno));
    rc = rf_sha256_file(tmp_path, digest, &bytes);
    if (rc != 0)
        return rf_err_set(err, rc, "blob temp file '%s': cannot hash: %s", tmp_path, rf_strerror(rc));
    rf_hex(digest, sizeof digest, sha_hex);
    rc = s_install(blob_dir, tmp_path, sha_hex, err);
    if (rc != 0)
        return rc;
    if (size != NULL)
        *size = bytes;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Shared storage (blob.h)
 */

static int s_write_all(int fd, const void *data, size_t len);

static bool s_store_id_valid(const char *id)
{
    if (strlen(id) != RF_BLOB_STORE_ID_LEN)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return false;
    return true;
}

static int s_read_store_id(const char *path, char id[RF_BLOB_STORE_ID_LEN + 1], rf_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? rf_err_set(err, RF_ENOENT, "'%s': no such file", path)
                               : rf_err_set(err, RF_EIO, "'%s': %s", path, strerror(errno));
    char line[80] = "";
    bool ok = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || !s_store_id_valid(line))
        return rf_err_set(err, RF_EINVAL, "'%s': not a store id (expected %d hex digits)", path,
                          RF_BLOB_STORE_ID_LEN);
    memcpy(id, line, RF_BLOB_STORE_ID_LEN + 1);
    return 0;
}

int rf_blob_store_id(const char *blob_dir, bool create, char id[RF_BLOB_STORE_ID_LEN + 1],
                     rf_err_t *err)
{
    char path[4200], tmp[4300];
    if (snprintf(path, sizeof(path), "%s/store-id", blob_dir) >= (int)sizeof(path))
        return rf_err_set(err, RF_ETOOBIG, "blob folder '%s': path too long", blob_dir);
    int rc = s_read_store_id(path, id, err);
    if (rc != RF_ENOENT || !create)
        return rc;
    uint8_t raw[RF_BLOB_STORE_ID_LEN / 2];
    randombytes_buf(raw, sizeof(raw));
    rf_hex(raw, sizeof(raw), id);
    snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return rf_err_set(err, RF_EIO, "'%s': %s", tmp, strerror(errno));
    bool ok = fprintf(f, "%s\n", id) > 0;
    ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok &= fclose(f) == 0;
    /* link, not rename: when two coordinators race on a new store, the first id stays */
    if (!ok || (link(tmp, path) != 0 && errno != EEXIST)) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot write the store id: %s", path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    unlink(tmp);
    return s_read_store_id(path, id, err);
}

int rf_blob_get_local(const char *blob_dir, const char *sha_hex, uint64_t size, char *path,
                      size_t path_size, rf_err_t *err)
{
    if (!rf_sha256_hex_valid(sha_hex))
        return rf_err_set(err, RF_EINVAL, "blob name '%.80s' is not a SHA-256", sha_hex);
    if (rf_blob_path(blob_dir, sha_hex, path, path_size) != 0)
        return rf_err_set(err, RF_ETOOBIG, "blob folder '%s': path too long", blob_dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "shared blob '%s': %s", path,
                          strerror(errno));
    if ((uint64_t)st.st_size != size)
        return rf_err_set(err, RF_EVERIFY, "shared blob '%s' has %lld bytes, expected %" PRIu64,
                          path, (long long)st.st_size, size);
    uint8_t want[RF_SHA256_LEN], got[RF_SHA256_LEN];
    uint64_t bytes = 0;
    rf_sha256_from_hex(sha_hex, want);
    int rc = rf_sha256_file(path, got, &bytes);
    if (rc != 0)
        return rf_err_set(err, rc, "shared blob '%s': cannot read: %s", path, rf_strerror(rc));
    if (memcmp(want, got, sizeof(want)) != 0)
        return rf_err_set(err, RF_EVERIFY, "shared blob '%s' does not hash to its name", path);
    return 0;
}

int rf_blob_put_local(const char *blob_dir, const char *src_path,
                      char sha_hex[RF_SHA256_HEX_LEN + 1], uint64_t *size, rf_err_t *err)
{
    char tmp[4400];
    int rc = rf_blob_tmp_path(blob_dir, "put", tmp, sizeof(tmp));
    if (rc != 0)
        return rf_err_set(err, rc, "shared blob folder '%s': cannot make a temp file", blob_dir);
    if (link(src_path, tmp) != 0) { /* another filesystem (EXDEV) or no links: copy */
        int in = open(src_path, O_RDONLY | O_CLOEXEC);
        int out = in < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        char *buf = out < 0 ? NULL : malloc(RF_BLOB_PIECE);
        ssize_t n = 0;
        rc = buf ? 0 : RF_EIO;
        while (!rc && (n = read(in, buf, RF_BLOB_PIECE)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            rc = n < 0 ? RF_EIO : s_write_all(out, buf, (size_t)n);
        }
        int saved = errno;
        free(buf);
        if (out >= 0 && close(out) != 0 && !rc)
            rc = RF_EIO;
        if (in >= 0)
            close(in);
        if (rc) {
            unlink(tmp);
            return rf_err_set(err, RF_EIO, "copying '%s' into the shared store '%s': %s", src_path,
                              blob_dir, strerror(saved));
        }
    }
    rc = rf_blob_commit(blob_dir, tmp, sha_hex, size, err);
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Wire helpers, shared by server and clients
 */

static int s_write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return RF_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_pwrite_all(int fd, const void *data, size_t len, uint64_t offset)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return RF_EIO;
        }
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* Hashes the first `len` bytes of fd into h. Returns 0 or RF_EIO (the file is shorter). */
static int s_hash_prefix(int fd, uint64_t len, rf_sha256_t *h)
{
    uint8_t *buf = malloc(RF_BLOB_PIECE);
    if (buf == NULL)
        return RF_ENOMEM;
    int rc = 0;
    for (uint64_t at = 0; at < len && rc == 0;) {
        size_t want = len - at < RF_BLOB_PIECE ? (size_t)(len - at) : RF_BLOB_PIECE;
        ssize_t n = pread(fd, buf, want, (off_t)at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = RF_EIO;
            break;
        }
        rf_sha256_update(h, buf, (size_t)n);
        at += (uint64_t)n;
    }
    free(buf);
    return rc;
}

static int s_upload_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != RF_BLOB_UPLOAD_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* Packs env and sends it, prefixed by a routing id when id is not NULL (server side). Never
 * blocks: a peer that vanished or is at its high-water mark loses the reply, which its own
 * timeout then reports. */
static int s_send_env(void *sock, const void *id, size_t id_len, Reelfarm__Envelope *env)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = rf_msg_pack(env, RF_BLOB_MAX_FRAME, &buf, &len);
    if (rc != 0)
        return rc;
    if (id != NULL && zmq_send(sock, id, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        rc = errno == EHOSTUNREACH ? RF_EUNAVAIL : errno == EAGAIN ? RF_EAGAIN : RF_EIO;
        goto cleanup;
    }
    if (zmq_send(sock, buf, len, ZMQ_DONTWAIT) < 0)
        rc = errno == EAGAIN ? RF_EAGAIN : RF_EIO;

cleanup:
    free(buf);
    return rc;
}

/* Receives one message of up to `want` parts into parts[] (initialised here; the caller closes
 * exactly `*got` of them). Extra parts are read and dropped, and *got is set to want + 1 so the
 * caller can tell. Returns 0, RF_EAGAIN when nothing is waiting, or RF_EIO. */
static int s_recv_parts(void *sock, zmq_msg_t *parts, int want, int *got)
{
    int n = 0;
    int more = 1;
    int over = 0;
    *got = 0;
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < want ? &parts[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(m);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            return e == EAGAIN && n == 0 && !over ? RF_EAGAIN : RF_EIO;
        }
        more = zmq_msg_more(m);
        if (m == &scratch) {
            zmq_msg_close(m);
            over = 1;
        } else {
            n++;
        }
    }
    *got = over ? want + 1 : n;
    if (over) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&parts[i]);
    }
    return 0;
}

static void *s_dealer(void *zctx, const char *endpoint, const rf_zsec_t *sec, rf_err_t *err)
{
    void *sock = zmq_socket(zctx, ZMQ_DEALER);
    if (sock == NULL) {
        rf_err_set(err, RF_EIO, "blob socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (rf_zsock_setup(sock, ZMQ_DEALER, RF_BLOB_MAX_FRAME) != 0 || rf_zsec_apply(sock, sec, NULL) != 0 ||
        zmq_connect(sock, endpoint) != 0) {
        rf_err_set(err, RF_EUNAVAIL, "blob server '%s': cannot connect: %s", endpoint, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* ---------------------------------------------------------------------------------------------
 * Server
 */

typedef struct s_upload {
    uint8_t peer[RF_BLOB_ROUTING_ID_MAX];
    size_t peer_len;
    char sha[RF_SHA256_HEX_LEN + 1];
    char upload_id[RF_BLOB_UPLOAD_ID_LEN + 1]; /* "" = tied to its connection, not resumable */
    char tmp_path[PATH_MAX];   /* tmp/... or, when resumable, partial/<sha>.<upload_id> */
    int fd;
    uint64_t total;     /* size the peer announced in the first piece */
    uint64_t received;  /* bytes written so far: the next piece must start here */
    rf_sha256_t hash;   /* over the bytes received, so the last piece needs no re-read */
    uint64_t last_ms;   /* monotonic time of the last piece, for stale removal */
} s_upload_t;

struct rf_blob_server {
    void *sock;                                 /* ROUTER, owned by the thread while it runs */
    char endpoint[256];
    char blob_dir[PATH_MAX];
    pthread_t thread;
    atomic_int stop;
    s_upload_t *uploads[RF_BLOB_MAX_UPLOADS];   /* partial uploads, NULL slots free */
    uint64_t last_partial_sweep;                /* monotonic ms of the last partial/ sweep */
    /* Refused input, by reason (rf_blob_server_stats); written by the thread, read by anyone. */
    atomic_ullong bad_parts, bad_frame, refused, over_limit, handshake;
    void *monitor;           /* PAIR with the socket's failed handshakes (rf_zsec_monitor_failures) */
    pthread_mutex_t grants_lock;                 /* guards grants: the coordinator's thread adds */
    struct {
        char sha[RF_SHA256_HEX_LEN + 1];
        char user[RF_ZSEC_NAME_MAX + 16];
        uint64_t until_ms;
    } grants[RF_BLOB_MAX_GRANTS];                /* ring; until_ms 0 = free */
    size_t next_grant;
    uint64_t max_blob;       /* bytes in one upload (rf_blob_server_opts_t) */
    int max_uploads;         /* uploads at once, <= RF_BLOB_MAX_UPLOADS */
};

/* Deletes partial/ files untouched for RF_BLOB_PARTIAL_KEEP_S (an uploader that never came back). */
static void s_sweep_partials(rf_blob_server_t *s)
{
    char dir[PATH_MAX + 16], path[PATH_MAX + 300];
    snprintf(dir, sizeof dir, "%s/partial", s->blob_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    time_t now = time(NULL);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > RF_BLOB_PARTIAL_KEEP_S) {
            RF_INFO("blob", "removed partial upload '%s', untouched for %d s", e->d_name, RF_BLOB_PARTIAL_KEEP_S);
            unlink(path);
        }
    }
    closedir(d);
}

/* Forgets an upload. Its file goes too, unless keep_partial and it is resumable: then it stays in
 * partial/ for the uploader to resume (after a stall, or after this server restarts). */
static void s_upload_drop(rf_blob_server_t *s, int i, int keep_partial)
{
    s_upload_t *u = s->uploads[i];
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (!(keep_partial && u->upload_id[0] != '\0'))
        unlink(u->tmp_path);
    free(u);
    s->uploads[i] = NULL;
}

/* A resumable upload is found by (sha, upload_id) from any connection; another by (peer, sha). */
static int s_upload_find(rf_blob_server_t *s, const void *peer, size_t peer_len, const char *sha,
                         const char *upload_id)
{
    for (int i = 0; i < RF_BLOB_MAX_UPLOADS; i++) {
        s_upload_t *u = s->uploads[i];
        if (u == NULL || strcmp(u->sha, sha) != 0 || strcmp(u->upload_id, upload_id) != 0)
            continue;
        if (upload_id[0] != '\0' ||
            (u->peer_len == peer_len && memcmp(u->peer, peer, peer_len) == 0))
            return i;
    }
    return -1;
}

static void s_reply_error(rf_blob_server_t *s, const void *peer, size_t peer_len, const char *sha,
                          const char *msg)
{
    Reelfarm__BlobError be = REELFARM__BLOB_ERROR__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    be.sha256 = (char *)sha;
    be.message = (char *)msg;
    env.body_case = REELFARM__ENVELOPE__BODY_BLOB_ERROR;
    env.blob_error = &be;
    s_send_env(s->sock, peer, peer_len, &env);
}

/* upload_id "" for a connection-bound upload; resume: this ack answers a probe. */
static void s_reply_ack(rf_blob_server_t *s, const void *peer, size_t peer_len, const char *sha,
                        const char *upload_id, uint64_t offset, int complete, int resume)
{
    Reelfarm__BlobAck ack = REELFARM__BLOB_ACK__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    ack.sha256 = (char *)sha;
    ack.offset = offset;
    ack.complete = complete != 0;
    ack.upload_id = (char *)upload_id;
    ack.resume = resume != 0;
    env.body_case = REELFARM__ENVELOPE__BODY_BLOB_ACK;
    env.blob_ack = &ack;
    s_send_env(s->sock, peer, peer_len, &env);
}

static void s_serve_get(rf_blob_server_t *s, const void *peer, size_t peer_len, const Reelfarm__BlobGet *get)
{
    int fd = -1;
    uint8_t *buf = NULL;
    char path[PATH_MAX];

    if (!rf_sha256_hex_valid(get->sha256)) {
        s_reply_error(s, peer, peer_len, "", "invalid blob name");
        goto cleanup;
    }
    if (rf_blob_path(s->blob_dir, get->sha256, path, sizeof path) != 0) {
        s_reply_error(s, peer, peer_len, get->sha256, "blob path too long");
        goto cleanup;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s_reply_error(s, peer, peer_len, get->sha256, "no such blob");
        goto cleanup;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (get->offset > size) {
        s_reply_error(s, peer, peer_len, get->sha256, "offset past the end of the blob");
        goto cleanup;
    }
    size_t want = get->length < RF_BLOB_PIECE ? get->length : RF_BLOB_PIECE;
    if (want > size - get->offset)
        want = (size_t)(size - get->offset);
    buf = malloc(want > 0 ? want : 1);
    if (buf == NULL) {
        s_reply_error(s, peer, peer_len, get->sha256, "server out of memory");
        goto cleanup;
    }
    size_t have = 0;
    while (have < want) {
        ssize_t n = pread(fd, buf + have, want - have, (off_t)(get->offset + have));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    if (have != want) {
        s_reply_error(s, peer, peer_len, get->sha256, "read failed");
        goto cleanup;
    }

    Reelfarm__BlobPiece piece = REELFARM__BLOB_PIECE__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    piece.sha256 = get->sha256;
    piece.offset = get->offset;
    piece.total_size = size;
    piece.data.data = buf;
    piece.data.len = want;
    env.body_case = REELFARM__ENVELOPE__BODY_BLOB_PIECE;
    env.blob_piece = &piece;
    s_send_env(s->sock, peer, peer_len, &env);

cleanup:
    free(buf);
    if (fd >= 0)
        close(fd);
}

/* Starts an upload, or - for a resumable one whose partial file survived (a restart of this
 * server, or an upload forgotten as stale) - takes it up again: what the file holds is re-hashed
 * and the upload continues from its end. Returns its slot, or -1 after replying an error. */
static int s_upload_start(rf_blob_server_t *s, const void *peer, size_t peer_len, const Reelfarm__BlobPiece *p)
{
    int slot = -1, busy = 0;
    for (int i = 0; i < RF_BLOB_MAX_UPLOADS; i++) {
        if (s->uploads[i] == NULL && slot < 0)
            slot = i;
        busy += s->uploads[i] != NULL;
    }
    if (slot < 0 || busy >= s->max_uploads) {
        char msg[160];
        atomic_fetch_add(&s->over_limit, 1);
        snprintf(msg, sizeof msg, "too many uploads in progress (limits.blob_uploads: %d), try again later",
                 s->max_uploads);
        s_reply_error(s, peer, peer_len, p->sha256, msg);
        return -1;
    }
    s_upload_t *u = calloc(1, sizeof *u);
    if (u == NULL) {
        s_reply_error(s, peer, peer_len, p->sha256, "server out of memory");
        return -1;
    }
    u->fd = -1;
    memcpy(u->peer, peer, peer_len);
    u->peer_len = peer_len;
    snprintf(u->sha, sizeof u->sha, "%s", p->sha256);
    snprintf(u->upload_id, sizeof u->upload_id, "%s", p->upload_id != NULL ? p->upload_id : "");
    u->total = p->total_size;
    u->last_ms = rf_now_ms();
    rf_sha256_init(&u->hash);
    if (u->upload_id[0] == '\0') {
        if (rf_blob_tmp_path(s->blob_dir, p->sha256, u->tmp_path, sizeof u->tmp_path) == 0)
            u->fd = open(u->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    } else {
        char dir[PATH_MAX];
        int n = snprintf(dir, sizeof dir, "%s/partial", s->blob_dir);
        int m = snprintf(u->tmp_path, sizeof u->tmp_path, "%s/%s.%s", dir, u->sha, u->upload_id);
        if (n > 0 && (size_t)n < sizeof dir && m > 0 && (size_t)m < sizeof u->tmp_path && s_mkdir(dir) == 0)
            u->fd = open(u->tmp_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        struct stat st;
        if (u->fd >= 0 && fstat(u->fd, &st) == 0 && st.st_size > 0) {
            uint64_t held = (uint64_t)st.st_size;
            if (held > u->total || s_hash_prefix(u->fd, held, &u->hash) != 0) {
                held = 0; /* not this blob's prefix after all: start over */
                rf_sha256_init(&u->hash);
                if (ftruncate(u->fd, 0) != 0) {
                    close(u->fd);
                    u->fd = -1;
                }
            }
            u->received = held;
            if (held > 0)
                RF_INFO("blob", "upload of '%s' resumed at %llu of %llu bytes", u->sha,
                        (unsigned long long)held, (unsigned long long)u->total);
        }
    }
    if (u->fd < 0) {
        RF_WARN("blob", "upload of '%s': cannot create temp file '%s': %s", u->sha, u->tmp_path, strerror(errno));
        s_reply_error(s, peer, peer_len, p->sha256, "server cannot create a temp file");
        free(u);
        return -1;
    }
    s->uploads[slot] = u;
    return slot;
}

/* Fsyncs, verifies and installs a fully received upload, then answers it. */
static void s_upload_finish(rf_blob_server_t *s, int slot)
{
    s_upload_t *u = s->uploads[slot];
    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_err_t err = {0};

    if (fsync(u->fd) != 0) {
        s_reply_error(s, u->peer, u->peer_len, u->sha, "server cannot fsync the blob");
        goto cleanup;
    }
    close(u->fd);
    u->fd = -1;
    rf_sha256_final(&u->hash, digest);
    rf_hex(digest, sizeof digest, hex);
    if (strcmp(hex, u->sha) != 0) {
        RF_WARN("blob", "upload of '%s': bytes hash to '%s', rejected", u->sha, hex);
        s_reply_error(s, u->peer, u->peer_len, u->sha, "bytes do not hash to the blob name");
        goto cleanup;
    }
    if (s_install(s->blob_dir, u->tmp_path, u->sha, &err) != 0) {
        RF_ERROR("blob", "%s", err.msg);
        s_reply_error(s, u->peer, u->peer_len, u->sha, "server cannot store the blob");
        goto cleanup;
    }
    s_reply_ack(s, u->peer, u->peer_len, u->sha, u->upload_id, u->received, 1, 0);

cleanup:
    s_upload_drop(s, slot, 0); /* the temp file is gone already when it was installed */
}

/* True (after answering complete) when the blob is already stored with that size. */
static int s_already_stored(rf_blob_server_t *s, const void *peer, size_t peer_len, const Reelfarm__BlobPiece *p,
                            const char *upload_id, int resume)
{
    char path[PATH_MAX];
    struct stat st;
    if (rf_blob_path(s->blob_dir, p->sha256, path, sizeof path) == 0 && stat(path, &st) == 0 &&
        S_ISREG(st.st_mode) && (uint64_t)st.st_size == p->total_size) {
        s_reply_ack(s, peer, peer_len, p->sha256, upload_id, p->total_size, 1, resume);
        return 1;
    }
    return 0;
}

static void s_serve_piece(rf_blob_server_t *s, const void *peer, size_t peer_len, const Reelfarm__BlobPiece *p)
{
    const char *upload_id = p->upload_id != NULL ? p->upload_id : "";
    if (!rf_sha256_hex_valid(p->sha256)) {
        s_reply_error(s, peer, peer_len, "", "invalid blob name");
        return;
    }
    if ((upload_id[0] != '\0' || p->resume) && !s_upload_id_valid(upload_id)) {
        s_reply_error(s, peer, peer_len, p->sha256, "invalid upload id");
        return;
    }
    int slot = s_upload_find(s, peer, peer_len, p->sha256, upload_id);
    if (p->total_size > s->max_blob || p->data.len > RF_BLOB_PIECE) {
        char msg[200];
        atomic_fetch_add(&s->over_limit, 1);
        if (p->data.len > RF_BLOB_PIECE)
            snprintf(msg, sizeof msg, "piece of %zu bytes over the %d-byte piece size", p->data.len, RF_BLOB_PIECE);
        else
            snprintf(msg, sizeof msg, "blob of %llu bytes over limits.blob_bytes (%llu)",
                     (unsigned long long)p->total_size, (unsigned long long)s->max_blob);
        s_reply_error(s, peer, peer_len, p->sha256, msg);
        if (slot >= 0)
            s_upload_drop(s, slot, 0);
        return;
    }
    if (p->resume) {
        /* A probe: say how much we hold (0 for an upload we never saw), or that we have it all. */
        if (s_already_stored(s, peer, peer_len, p, upload_id, 1))
            return;
        if (slot < 0 && (slot = s_upload_start(s, peer, peer_len, p)) < 0)
            return;
        s_upload_t *u = s->uploads[slot];
        if (u->total != p->total_size) {
            s_reply_error(s, peer, peer_len, p->sha256, "upload resumed with another size");
            s_upload_drop(s, slot, 0);
            return;
        }
        memcpy(u->peer, peer, peer_len); /* later acks go to the connection that probed */
        u->peer_len = peer_len;
        u->last_ms = rf_now_ms();
        s_reply_ack(s, peer, peer_len, u->sha, u->upload_id, u->received, 0, 1);
        return;
    }
    if (slot < 0) {
        if (s_already_stored(s, peer, peer_len, p, upload_id, 0))
            return;
        if (p->offset != 0 && upload_id[0] == '\0') {
            s_reply_error(s, peer, peer_len, p->sha256, "piece out of order: no upload in progress");
            return;
        }
        slot = s_upload_start(s, peer, peer_len, p);
        if (slot < 0)
            return;
    }
    s_upload_t *u = s->uploads[slot];
    if (p->total_size != u->total) {
        s_reply_error(s, peer, peer_len, p->sha256, "piece past the announced size");
        s_upload_drop(s, slot, 0);
        return;
    }
    if (u->upload_id[0] != '\0' && p->offset != u->received) {
        /* Resumable: a piece sent before a reconnect that arrived late (or a duplicate). The bytes
         * come from the same file; ignore it and say where we are, which returns its credit. */
        s_reply_ack(s, peer, peer_len, u->sha, u->upload_id, u->received, 0, 0);
        return;
    }
    if (p->offset != u->received || p->data.len > u->total - u->received) {
        s_reply_error(s, peer, peer_len, p->sha256, "piece out of order or past the announced size");
        s_upload_drop(s, slot, 0);
        return;
    }
    if (s_pwrite_all(u->fd, p->data.data, p->data.len, u->received) != 0) {
        RF_WARN("blob", "upload of '%s': write to '%s' failed: %s", u->sha, u->tmp_path, strerror(errno));
        s_reply_error(s, peer, peer_len, p->sha256, "server cannot write the blob");
        s_upload_drop(s, slot, 0);
        return;
    }
    rf_sha256_update(&u->hash, p->data.data, p->data.len);
    u->received += p->data.len;
    u->last_ms = rf_now_ms();
    memcpy(u->peer, peer, peer_len);
    u->peer_len = peer_len;
    if (u->received == u->total)
        s_upload_finish(s, slot);
    else
        s_reply_ack(s, peer, peer_len, u->sha, u->upload_id, u->received, 0, 0);
}

static int s_granted(rf_blob_server_t *s, const char *sha_hex, const char *user_id);

static void s_serve_one(rf_blob_server_t *s, const zmq_msg_t *id, const zmq_msg_t *frame)
{
    const void *peer = zmq_msg_data((zmq_msg_t *)id);
    size_t peer_len = zmq_msg_size((zmq_msg_t *)id);
    size_t len = zmq_msg_size((zmq_msg_t *)frame);
    rf_msg_t *m = NULL;

    if (peer_len == 0 || peer_len > RF_BLOB_ROUTING_ID_MAX)
        return;
    int rc = rf_msg_unpack(zmq_msg_data((zmq_msg_t *)frame), len, RF_BLOB_MAX_FRAME, RF_CODEC_BUDGET(len), &m);
    if (rc != 0) {
        atomic_fetch_add(&s->bad_frame, 1);
        RF_WARN("blob", "dropped a %zu-byte frame: %s", len, rf_strerror(rc));
        return;
    }
    const Reelfarm__Envelope *env = rf_msg_env(m);
    /* Roles (zsec.h): workers and admins move blobs both ways; a client key may only download
     * (its job's output, `reelfarm fetch`); a key ZAP gave no known role may do nothing. */
    char who[RF_ZSEC_NAME_MAX + 1];
    const char *user_id = zmq_msg_gets((zmq_msg_t *)frame, "User-Id");
    rf_role_t role = rf_zsec_role(user_id, who, sizeof who);
    if (role == RF_ROLE_CLIENT && env->body_case == REELFARM__ENVELOPE__BODY_BLOB_GET &&
        !s_granted(s, env->blob_get->sha256 ? env->blob_get->sha256 : "", user_id)) {
        atomic_fetch_add(&s->refused, 1);
        RF_WARN("blob", "refused blob %.12s to client key '%s': not the output of one of its jobs", 
                env->blob_get->sha256 ? env->blob_get->sha256 : "", who);
        s_reply_error(s, peer, peer_len, env->blob_get->sha256 ? env->blob_get->sha256 : "",
                      "this client key may download only its own jobs' outputs (reelfarm fetch)");
        rf_msg_destroy(&m);
        return;
    }
    if (role == RF_ROLE_NONE ||
        (role == RF_ROLE_CLIENT && env->body_case != REELFARM__ENVELOPE__BODY_BLOB_GET)) {
        atomic_fetch_add(&s->refused, 1);
        RF_WARN("blob", "refused a '%s' message from %s key '%s': not allowed for its role",
                rf_msg_body_name(env), rf_zsec_role_name(role), who);
        rf_msg_destroy(&m);
        return;
    }
    switch (env->body_case) {
    case REELFARM__ENVELOPE__BODY_BLOB_GET:
        s_serve_get(s, peer, peer_len, env->blob_get);
        break;
    case REELFARM__ENVELOPE__BODY_BLOB_PIECE:
        s_serve_piece(s, peer, peer_len, env->blob_piece);
        break;
    default:
        atomic_fetch_add(&s->bad_frame, 1);
        RF_WARN("blob", "dropped an unexpected '%s' message", rf_msg_body_name(env));
        break;
    }
    rf_msg_destroy(&m);
}

static void s_drop_stale(rf_blob_server_t *s)
{
    uint64_t now = rf_now_ms();
    for (int i = 0; i < RF_BLOB_MAX_UPLOADS; i++) {
        s_upload_t *u = s->uploads[i];
        if (u != NULL && now - u->last_ms > RF_BLOB_STALE_MS) {
            RF_WARN("blob", "upload of '%s': no piece for %d s, %s", u->sha, RF_BLOB_STALE_MS / 1000,
                    u->upload_id[0] ? "set aside (resumable)" : "removed");
            s_upload_drop(s, i, 1);
        }
    }
}

static void *s_server_main(void *arg)
{
    rf_blob_server_t *s = arg;
    uint64_t last_sweep = rf_now_ms();
    while (!atomic_load(&s->stop)) {
        zmq_pollitem_t items[2] = {{.socket = s->sock, .events = ZMQ_POLLIN},
                                   {.socket = s->monitor, .events = ZMQ_POLLIN}};
        int n = zmq_poll(items, s->monitor ? 2 : 1, RF_BLOB_POLL_MS);
        while (s->monitor && (items[1].revents & ZMQ_POLLIN)) {
            zmq_msg_t ev;
            zmq_msg_init(&ev);
            if (zmq_msg_recv(&ev, s->monitor, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&ev);
                break;
            }
            if (!zmq_msg_more(&ev))
                atomic_fetch_add(&s->handshake, 1); /* the last frame of one event */
            zmq_msg_close(&ev);
        }
        if (n < 0 && errno != EINTR)
            break; /* context terminated under us */
        /* Drain what is waiting, but look at the stop flag between messages. */
        while (!atomic_load(&s->stop)) {
            zmq_msg_t parts[2];
            int got = 0;
            if (s_recv_parts(s->sock, parts, 2, &got) != 0)
                break;
            if (got == 2)
                s_serve_one(s, &parts[0], &parts[1]);
            else
                atomic_fetch_add(&s->bad_parts, 1); /* not [routing id, envelope] */
            /* got > 2: s_recv_parts closed them already */
            for (int i = 0; i < got && got <= 2; i++)
                zmq_msg_close(&parts[i]);
        }
        if (rf_now_ms() - last_sweep >= 1000) {
            s_drop_stale(s);
            last_sweep = rf_now_ms();
        }
        if (rf_now_ms() - s->last_partial_sweep >= RF_BLOB_PARTIAL_SWEEP_MS) {
            s_sweep_partials(s);
            s->last_partial_sweep = rf_now_ms();
        }
    }
    return NULL;
}

int rf_blob_server_new(void *zctx, const char *endpoint, const char *blob_dir, rf_blob_server_t **out,
                       rf_err_t *err)
{
    return rf_blob_server_new_secure(zctx, endpoint, blob_dir, NULL, out, err);
}

void rf_blob_server_grant(rf_blob_server_t *s, const char *sha_hex, const char *user_id)
{
    if (s == NULL || sha_hex == NULL || user_id == NULL)
        return;
    pthread_mutex_lock(&s->grants_lock);
    size_t i = s->next_grant;
    s->next_grant = (s->next_grant + 1) % RF_BLOB_MAX_GRANTS;
    snprintf(s->grants[i].sha, sizeof s->grants[i].sha, "%s", sha_hex);
    snprintf(s->grants[i].user, sizeof s->grants[i].user, "%s", user_id);
    s->grants[i].until_ms = rf_now_ms() + RF_BLOB_GRANT_S * 1000ULL;
    pthread_mutex_unlock(&s->grants_lock);
}

static int s_granted(rf_blob_server_t *s, const char *sha_hex, const char *user_id)
{
    int ok = 0;
    uint64_t now = rf_now_ms();
    pthread_mutex_lock(&s->grants_lock);
    for (size_t i = 0; i < RF_BLOB_MAX_GRANTS && !ok; i++)
        ok = s->grants[i].until_ms > now && !strcmp(s->grants[i].sha, sha_hex) &&
             !strcmp(s->grants[i].user, user_id);
    pthread_mutex_unlock(&s->grants_lock);
    return ok;
}

void rf_blob_server_stats(const rf_blob_server_t *s, rf_blob_server_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!s)
        return;
    out->bad_parts = atomic_load(&((rf_blob_server_t *)s)->bad_parts);
    out->bad_frame = atomic_load(&((rf_blob_server_t *)s)->bad_frame);
    out->refused = atomic_load(&((rf_blob_server_t *)s)->refused);
    out->over_limit = atomic_load(&((rf_blob_server_t *)s)->over_limit);
    out->handshake = atomic_load(&((rf_blob_server_t *)s)->handshake);
}

int rf_blob_server_new_secure(void *zctx, const char *endpoint, const char *blob_dir, const rf_zsec_t *sec,
                              rf_blob_server_t **out, rf_err_t *err)
{
    rf_blob_server_opts_t o = {.sec = sec};
    return rf_blob_server_new_opts(zctx, endpoint, blob_dir, &o, out, err);
}

int rf_blob_server_new_opts(void *zctx, const char *endpoint, const char *blob_dir, const rf_blob_server_opts_t *opts,
                            rf_blob_server_t **out, rf_err_t *err)
{
    const rf_zsec_t *sec = opts != NULL ? opts->sec : NULL;
    int rc = 0;
    rf_blob_server_t *s = NULL;
    char tmp_dir[PATH_MAX];

    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return rf_err_set(err, RF_ENOMEM, "blob server: out of memory");
    int n = snprintf(s->blob_dir, sizeof s->blob_dir, "%s", blob_dir);
    int m = snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", blob_dir);
    if (n < 0 || (size_t)n >= sizeof s->blob_dir || m < 0 || (size_t)m >= sizeof tmp_dir) {
        rc = rf_err_set(err, RF_ETOOBIG, "blob folder '%.64s...': path too long", blob_dir);
        goto cleanup;
    }
    if (s_mkdir(blob_dir) != 0 || s_mkdir(tmp_dir) != 0) {
        rc = rf_err_set(err, RF_EIO, "blob folder '%s': cannot create: %s", blob_dir, strerror(errno));
        goto cleanup;
    }
    s->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (s->sock == NULL) {
        rc = rf_err_set(err, RF_EIO, "blob server: cannot create a socket: %s", zmq_strerror(errno));
        goto cleanup;
    }
    if (rf_zsock_setup(s->sock, ZMQ_ROUTER, RF_BLOB_MAX_FRAME) != 0 || rf_zsec_apply(s->sock, sec, "blobs") != 0 ||
        zmq_bind(s->sock, endpoint) != 0) {
        rc = rf_err_set(err, RF_EIO, "blob server: cannot bind '%s': %s", endpoint, zmq_strerror(errno));
        goto cleanup;
    }
    size_t elen = sizeof s->endpoint;
    if (zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, s->endpoint, &elen) != 0)
        snprintf(s->endpoint, sizeof s->endpoint, "%s", endpoint);
    atomic_init(&s->stop, 0);
    pthread_mutex_init(&s->grants_lock, NULL);
    s->monitor = rf_zsec_monitor_failures(zctx, s->sock); /* NULL: handshakes go uncounted */
    s->max_blob = opts != NULL && opts->max_blob > 0 && opts->max_blob < RF_BLOB_MAX_SIZE ? opts->max_blob
                                                                                      : RF_BLOB_MAX_SIZE;
    s->max_uploads = opts != NULL && opts->max_uploads > 0 && opts->max_uploads < RF_BLOB_MAX_UPLOADS
                         ? opts->max_uploads
                         : RF_BLOB_MAX_UPLOADS;
    s_sweep_partials(s);
    s->last_partial_sweep = rf_now_ms();
    /* The socket moves to the new thread; pthread_create is the full barrier libzmq asks for. */
    if (pthread_create(&s->thread, NULL, s_server_main, s) != 0) {
        rc = rf_err_set(err, RF_EIO, "blob server: cannot start its thread");
        goto cleanup;
    }
    *out = s;
    s = NULL;

cleanup:
    if (s != NULL) {
        if (s->monitor != NULL)
            zmq_close(s->monitor);
        if (s->sock != NULL)
            zmq_close(s->sock);
        free(s);
    }
    return rc;
}

const char *rf_blob_server_endpoint(const rf_blob_server_t *s)
{
    return s != NULL ? s->endpoint : "";
}

void rf_blob_server_destroy(rf_blob_server_t **sp)
{
    if (sp == NULL || *sp == NULL)
        return;
    rf_blob_server_t *s = *sp;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL); /* at most one poll timeout */
    if (s->monitor != NULL)
        zmq_close(s->monitor);
    zmq_close(s->sock);
    pthread_mutex_destroy(&s->grants_lock);
    for (int i = 0; i < RF_BLOB_MAX_UPLOADS; i++)
        s_upload_drop(s, i, 1); /* resumable partials stay for the uploader's next connection */
    free(s);
    *sp = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Clients
 */

/* Waits up to RF_BLOB_CLIENT_POLL_MS for one reply and unpacks it into *m (NULL when none came).
 * Returns 0, RF_ECANCELED, RF_ETIMEDOUT (no progress since *last_progress for timeout_ms),
 * RF_EPROTO for an unreadable reply, or RF_EIO. */
static int s_client_wait(void *sock, int timeout_ms, uint64_t last_progress, const atomic_int *cancel,
                         rf_msg_t **m, rf_err_t *err)
{
    *m = NULL;
    if (cancel != NULL && atomic_load(cancel) != 0)
        return rf_err_set(err, RF_ECANCELED, "blob transfer cancelled");
    uint64_t now = rf_now_ms();
    if (now - last_progress >= (uint64_t)timeout_ms)
        return rf_err_set(err, RF_ETIMEDOUT, "blob transfer: no progress for %d ms", timeout_ms);
    uint64_t left = (uint64_t)timeout_ms - (now - last_progress);
    zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
    int n = zmq_poll(&item, 1, left < RF_BLOB_CLIENT_POLL_MS ? (long)left : RF_BLOB_CLIENT_POLL_MS);
    if (n < 0)
        return errno == EINTR ? 0 : rf_err_set(err, RF_EIO, "blob transfer: poll failed: %s", zmq_strerror(errno));
    if (n == 0)
        return 0;

    zmq_msg_t part;
    int got = 0;
    int rc = s_recv_parts(sock, &part, 1, &got);
    if (rc == RF_EAGAIN)
        return 0;
    if (rc != 0)
        return rf_err_set(err, RF_EIO, "blob transfer: receive failed: %s", zmq_strerror(errno));
    if (got != 1)
        return rf_err_set(err, RF_EPROTO, "blob transfer: reply with too many frames");
    size_t len = zmq_msg_size(&part);
    rc = rf_msg_unpack(zmq_msg_data(&part), len, RF_BLOB_MAX_FRAME, RF_CODEC_BUDGET(len), m);
    zmq_msg_close(&part);
    if (rc != 0)
        return rf_err_set(err, RF_EPROTO, "blob transfer: unreadable reply: %s", rf_strerror(rc));
    return 0;
}

/* A download's partial state beside its destination: dest.part (the bytes) and dest.part.offset
 * (how many of them are fsynced and count: the verified offset a later fetch resumes from). */
typedef struct s_partial {
    char part[PATH_MAX];
    char offset[PATH_MAX + 16];
    int fd;
} s_partial_t;

/* Records `bytes` as the resume point: data first (fdatasync), then the offset file (temp +
 * rename), so the recorded offset never covers bytes a crash could lose. */
static void s_partial_checkpoint(const s_partial_t *pt, uint64_t bytes)
{
    char tmp[PATH_MAX + 32], text[32];
    if (fdatasync(pt->fd) != 0)
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp", pt->offset);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    int n = snprintf(text, sizeof text, "%llu\n", (unsigned long long)bytes);
    int ok = s_write_all(fd, text, (size_t)n) == 0;
    close(fd);
    if (!ok || rename(tmp, pt->offset) != 0)
        unlink(tmp);
}

/* Opens (and locks) dest.part; when a verified offset was kept, re-hashes those bytes into *hash
 * and returns the offset in *from. RF_EAGAIN when another fetch holds the lock. */
static int s_partial_open(s_partial_t *pt, uint64_t size, rf_sha256_t *hash, uint64_t *from)
{
    *from = 0;
    rf_sha256_init(hash);
    pt->fd = open(pt->part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (pt->fd < 0)
        return RF_EIO;
    if (flock(pt->fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        close(pt->fd);
        pt->fd = -1;
        return busy ? RF_EAGAIN : RF_EIO;
    }
    uint64_t kept = 0;
    FILE *f = fopen(pt->offset, "r");
    if (f != NULL) {
        unsigned long long v = 0;
        if (fscanf(f, "%llu", &v) == 1)
            kept = v;
        fclose(f);
    }
    struct stat st;
    if (kept > size || fstat(pt->fd, &st) != 0 || (uint64_t)st.st_size < kept ||
        (kept > 0 && s_hash_prefix(pt->fd, kept, hash) != 0)) {
        kept = 0;
        rf_sha256_init(hash);
    }
    if (ftruncate(pt->fd, (off_t)kept) != 0 || lseek(pt->fd, (off_t)kept, SEEK_SET) != (off_t)kept)
        return RF_EIO; /* writes go on at the end of the kept bytes */
    *from = kept;
    return 0;
}

/* Closes the partial; keeps it (checkpointed at `bytes`) when there is something to resume. */
static void s_partial_close(s_partial_t *pt, uint64_t bytes, int keep)
{
    if (pt->fd < 0)
        return;
    if (keep && bytes > 0) {
        s_partial_checkpoint(pt, bytes);
    } else {
        unlink(pt->part);
        unlink(pt->offset);
    }
    close(pt->fd); /* releases the lock */
    pt->fd = -1;
}

/* Errors after which a partial transfer is worth keeping: the bytes so far are still good. */
static int s_resumable_error(int rc)
{
    return rc == RF_ETIMEDOUT || rc == RF_ECANCELED || rc == RF_EIO || rc == RF_EUNAVAIL;
}

static void s_xfer_reset(rf_blob_xfer_t *x)
{
    if (x == NULL)
        return;
    x->resumed_from = 0;
    x->bytes = 0;
    x->bytes_after_resume = 0;
    x->reconnects = 0;
}

/* Drops sock and opens a fresh one: a restarted server or a broken connection loses what was in
 * flight, and a new connection is the only way to know the old one's replies will not come. */
static int s_reconnect(void *zctx, const char *endpoint, void **sock, rf_blob_xfer_t *x, rf_err_t *err)
{
    zmq_close(*sock);
    *sock = s_dealer(zctx, endpoint, x != NULL ? x->sec : NULL, err);
    if (*sock == NULL)
        return err != NULL ? err->code : RF_EUNAVAIL;
    if (x != NULL)
        x->reconnects++;
    return 0;
}

int rf_blob_fetch(void *zctx, const char *endpoint, const char *sha_hex, uint64_t size, const char *dest_path,
                  int timeout_ms, const atomic_int *cancel, rf_blob_xfer_t *xfer, rf_err_t *err)
{
    int rc = 0;
    void *sock = NULL;
    rf_msg_t *m = NULL;
    s_partial_t pt = {.fd = -1};
    rf_sha256_t hash;
    uint64_t requested = 0; /* bytes asked for so far */
    uint64_t received = 0;  /* bytes written so far; replies come back in request order */
    uint64_t since_checkpoint = 0;
    int in_flight = 0;
    int requested_empty = 0;

    s_xfer_reset(xfer);
    if (!rf_sha256_hex_valid(sha_hex))
        return rf_err_set(err, RF_EINVAL, "blob fetch: invalid blob name");
    if (size > RF_BLOB_MAX_SIZE)
        return rf_err_set(err, RF_ETOOBIG, "blob '%s': size %llu over the limit", sha_hex, (unsigned long long)size);
    int n = snprintf(pt.part, sizeof pt.part, "%s.part", dest_path);
    int o = snprintf(pt.offset, sizeof pt.offset, "%s.part.offset", dest_path);
    if (n < 0 || (size_t)n >= sizeof pt.part || o < 0 || (size_t)o >= sizeof pt.offset)
        return rf_err_set(err, RF_ETOOBIG, "blob fetch: destination path too long");
    if (timeout_ms <= 0)
        timeout_ms = 1;

    rc = s_partial_open(&pt, size, &hash, &received);
    if (rc == RF_EAGAIN)
        return rf_err_set(err, RF_EAGAIN, "blob '%s': another transfer is writing '%s'", sha_hex, pt.part);
    if (rc != 0) {
        rc = rf_err_set(err, RF_EIO, "blob '%s': cannot create '%s': %s", sha_hex, pt.part, strerror(errno));
        goto cleanup;
    }
    requested = received;
    if (received > 0) {
        RF_INFO("blob", "blob '%.12s': resuming a download at %llu of %llu bytes", sha_hex,
                (unsigned long long)received, (unsigned long long)size);
        if (xfer != NULL)
            xfer->resumed_from = received;
    }
    sock = s_dealer(zctx, endpoint, xfer != NULL ? xfer->sec : NULL, err);
    if (sock == NULL) {
        rc = err != NULL ? err->code : RF_EUNAVAIL;
        goto cleanup;
    }
    uint64_t last_progress = rf_now_ms();
    uint64_t last_reply = last_progress; /* the stall clock: reset by replies and reconnects */

    /* An empty blob still takes one request: it is how we learn the server has it. */
    while (received < size || (size == 0 && !requested_empty) || in_flight > 0) {
        while (in_flight < RF_BLOB_CREDITS && (requested < size || (size == 0 && !requested_empty))) {
            uint64_t piece = size - requested < RF_BLOB_PIECE ? size - requested : RF_BLOB_PIECE;
            Reelfarm__BlobGet get = REELFARM__BLOB_GET__INIT;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            get.sha256 = (char *)sha_hex;
            get.offset = requested;
            get.length = (uint32_t)piece;
            env.body_case = REELFARM__ENVELOPE__BODY_BLOB_GET;
            env.blob_get = &get;
            rc = s_send_env(sock, NULL, 0, &env);
            if (rc != 0) {
                rf_err_set(err, RF_EIO, "blob '%s': cannot send a request: %s", sha_hex, rf_strerror(rc));
                rc = RF_EIO;
                goto cleanup;
            }
            requested += piece;
            requested_empty = 1;
            in_flight++;
        }

        rc = s_client_wait(sock, timeout_ms, last_progress, cancel, &m, err);
        if (rc != 0)
            goto cleanup;
        if (m == NULL) {
            if (in_flight == 0 || rf_now_ms() - last_reply < RF_BLOB_STALL_MS)
                continue;
            /* Stalled: ask again, from what we have, on a fresh connection. */
            rc = s_reconnect(zctx, endpoint, &sock, xfer, err);
            if (rc != 0)
                goto cleanup;
            requested = received;
            requested_empty = 0;
            in_flight = 0;
            if (xfer != NULL) {
                xfer->resumed_from = received;
                xfer->bytes_after_resume = 0;
            }
            RF_INFO("blob", "blob '%.12s': no reply for %d ms, reconnected, resuming at %llu", sha_hex,
                    RF_BLOB_STALL_MS, (unsigned long long)received);
            last_reply = rf_now_ms(); /* timeout_ms still counts from the last piece */
            continue;
        }
        const Reelfarm__Envelope *env = rf_msg_env(m);
        if (env->body_case == REELFARM__ENVELOPE__BODY_BLOB_ERROR) {
            rc = rf_err_set(err, RF_ENOENT, "blob '%s' on '%s': %.200s", sha_hex, endpoint, env->blob_error->message);
            goto cleanup;
        }
        if (env->body_case != REELFARM__ENVELOPE__BODY_BLOB_PIECE) {
            rc = rf_err_set(err, RF_EPROTO, "blob '%s': unexpected '%s' reply", sha_hex, rf_msg_body_name(env));
            goto cleanup;
        }
        const Reelfarm__BlobPiece *p = env->blob_piece;
        uint64_t expect = size - received < RF_BLOB_PIECE ? size - received : RF_BLOB_PIECE;
        if (strcmp(p->sha256, sha_hex) != 0 || p->offset != received) {
            rc = rf_err_set(err, RF_EPROTO, "blob '%s': piece for another blob or out of order", sha_hex);
            goto cleanup;
        }
        if (p->total_size != size || p->data.len != expect) {
            rc = rf_err_set(err, RF_EVERIFY, "blob '%s': server has %llu bytes, expected %llu", sha_hex,
                            (unsigned long long)p->total_size, (unsigned long long)size);
            goto cleanup;
        }
        if (s_write_all(pt.fd, p->data.data, p->data.len) != 0) {
            rc = rf_err_set(err, RF_EIO, "blob '%s': write to '%s' failed: %s", sha_hex, pt.part, strerror(errno));
            goto cleanup;
        }
        rf_sha256_update(&hash, p->data.data, p->data.len);
        received += p->data.len;
        in_flight--;
        last_progress = last_reply = rf_now_ms();
        if (xfer != NULL) {
            xfer->bytes += p->data.len;
            xfer->bytes_after_resume += p->data.len;
        }
        rf_msg_destroy(&m); /* p points into it */
        if (++since_checkpoint >= RF_BLOB_CHECKPOINT_PIECES) {
            s_partial_checkpoint(&pt, received);
            since_checkpoint = 0;
        }
        if (xfer != NULL && xfer->on_progress != NULL)
            xfer->on_progress(xfer->arg, received, size);
    }

    uint8_t digest[RF_SHA256_LEN];
    char hex[RF_SHA256_HEX_LEN + 1];
    rf_sha256_final(&hash, digest);
    rf_hex(digest, sizeof digest, hex);
    if (strcmp(hex, sha_hex) != 0) {
        rc = rf_err_set(err, RF_EVERIFY, "blob '%s': received bytes hash to '%s'", sha_hex, hex);
        goto cleanup;
    }
    if (fsync(pt.fd) != 0) {
        rc = rf_err_set(err, RF_EIO, "blob '%s': cannot flush '%s': %s", sha_hex, pt.part, strerror(errno));
        goto cleanup;
    }
    if (rename(pt.part, dest_path) != 0) {
        rc = rf_err_set(err, RF_EIO, "blob '%s': cannot rename to '%s': %s", sha_hex, dest_path, strerror(errno));
        goto cleanup;
    }
    unlink(pt.offset);
    close(pt.fd);
    pt.fd = -1;

cleanup:
    rf_msg_destroy(&m);
    if (sock != NULL)
        zmq_close(sock); /* LINGER 0: unanswered requests go with it */
    s_partial_close(&pt, received, rc != 0 && s_resumable_error(rc));
    return rc;
}

int rf_blob_upload(void *zctx, const char *endpoint, const char *src_path, char sha_hex[RF_SHA256_HEX_LEN + 1],
                   uint64_t *size, int timeout_ms, const atomic_int *cancel, rf_blob_xfer_t *xfer, rf_err_t *err)
{
    int rc = 0;
    void *sock = NULL;
    int fd = -1;
    uint8_t *buf = NULL;
    rf_msg_t *m = NULL;
    uint8_t digest[RF_SHA256_LEN];
    char upload_id[RF_BLOB_UPLOAD_ID_LEN + 1];
    uint64_t total = 0;
    uint64_t sent = 0;   /* bytes sent in pieces so far */
    uint64_t acked = 0;  /* bytes the server said it stored */
    int sent_any = 0;
    int in_flight = 0;
    int probing = 0;     /* a resume probe is out: send nothing until it is answered */
    int resync = 0;      /* the server's state went back: reconnect and probe at once */
    int complete = 0;

    s_xfer_reset(xfer);
    if (timeout_ms <= 0)
        timeout_ms = 1;
    /* The name comes first: the server files the pieces under it and checks it at the end. */
    rc = rf_sha256_file(src_path, digest, &total);
    if (rc != 0)
        return rf_err_set(err, rc, "blob upload: cannot read '%s': %s", src_path, rf_strerror(rc));
    rf_hex(digest, sizeof digest, sha_hex);
    if (total > RF_BLOB_MAX_SIZE)
        return rf_err_set(err, RF_ETOOBIG, "blob upload: '%s' is over the blob size limit", src_path);
    if (sodium_init() < 0)
        return rf_err_set(err, RF_EIO, "blob upload: libsodium failed to initialise");
    uint8_t rnd[RF_BLOB_UPLOAD_ID_LEN / 2];
    randombytes_buf(rnd, sizeof rnd);
    rf_hex(rnd, sizeof rnd, upload_id);

    fd = open(src_path, O_RDONLY | O_CLOEXEC);
    buf = malloc(RF_BLOB_PIECE);
    if (fd < 0 || buf == NULL) {
        rc = rf_err_set(err, fd < 0 ? RF_EIO : RF_ENOMEM, "blob upload: cannot open '%s'", src_path);
        goto cleanup;
    }
    sock = s_dealer(zctx, endpoint, xfer != NULL ? xfer->sec : NULL, err);
    if (sock == NULL) {
        rc = err != NULL ? err->code : RF_EUNAVAIL;
        goto cleanup;
    }
    uint64_t last_progress = rf_now_ms();
    uint64_t last_reply = last_progress;

    while (!complete) {
        while (!probing && !resync && in_flight < RF_BLOB_CREDITS && (sent < total || !sent_any)) {
            size_t piece = total - sent < RF_BLOB_PIECE ? (size_t)(total - sent) : RF_BLOB_PIECE;
            size_t have = 0;
            while (have < piece) {
                ssize_t r = pread(fd, buf + have, piece - have, (off_t)(sent + have));
                if (r < 0 && errno == EINTR)
                    continue;
                if (r <= 0)
                    break;
                have += (size_t)r;
            }
            if (have != piece) {
                rc = rf_err_set(err, RF_EIO, "blob upload: '%s' changed or became unreadable while sending", src_path);
                goto cleanup;
            }
            Reelfarm__BlobPiece p = REELFARM__BLOB_PIECE__INIT;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            p.sha256 = sha_hex;
            p.offset = sent;
            p.total_size = total;
            p.data.data = buf;
            p.data.len = piece;
            p.upload_id = upload_id;
            env.body_case = REELFARM__ENVELOPE__BODY_BLOB_PIECE;
            env.blob_piece = &p;
            rc = s_send_env(sock, NULL, 0, &env);
            if (rc != 0) {
                rf_err_set(err, RF_EIO, "blob '%s': cannot send a piece: %s", sha_hex, rf_strerror(rc));
                rc = RF_EIO;
                goto cleanup;
            }
            if (in_flight == 0)
                last_reply = rf_now_ms(); /* the stall clock runs only while something is out */
            sent += piece;
            sent_any = 1;
            in_flight++;
            if (xfer != NULL) {
                xfer->bytes += piece;
                xfer->bytes_after_resume += piece;
            }
        }

        rc = s_client_wait(sock, timeout_ms, last_progress, cancel, &m, err);
        if (rc != 0)
            goto cleanup;
        if (m == NULL) {
            if (!resync && ((in_flight == 0 && !probing) || rf_now_ms() - last_reply < RF_BLOB_STALL_MS))
                continue;
            resync = 0;
            /* Stalled: on a fresh connection, ask the server how much it holds, go on from there. */
            rc = s_reconnect(zctx, endpoint, &sock, xfer, err);
            if (rc != 0)
                goto cleanup;
            Reelfarm__BlobPiece p = REELFARM__BLOB_PIECE__INIT;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            p.sha256 = sha_hex;
            p.total_size = total;
            p.upload_id = upload_id;
            p.resume = 1;
            env.body_case = REELFARM__ENVELOPE__BODY_BLOB_PIECE;
            env.blob_piece = &p;
            rc = s_send_env(sock, NULL, 0, &env);
            if (rc != 0) {
                rf_err_set(err, RF_EIO, "blob '%s': cannot send a resume probe: %s", sha_hex, rf_strerror(rc));
                rc = RF_EIO;
                goto cleanup;
            }
            probing = 1;
            in_flight = 0;
            last_reply = rf_now_ms();
            RF_INFO("blob", "blob '%.12s': no reply for %d ms, reconnected, asking how much the server holds",
                    sha_hex, RF_BLOB_STALL_MS);
            continue;
        }
        last_reply = rf_now_ms();
        const Reelfarm__Envelope *env = rf_msg_env(m);
        if (env->body_case == REELFARM__ENVELOPE__BODY_BLOB_ERROR) {
            rc = rf_err_set(err, RF_EIO, "blob '%s': server '%s' refused the upload: %.200s", sha_hex, endpoint,
                            env->blob_error->message);
            goto cleanup;
        }
        if (env->body_case != REELFARM__ENVELOPE__BODY_BLOB_ACK || strcmp(env->blob_ack->sha256, sha_hex) != 0 ||
            env->blob_ack->offset > total) {
            rc = rf_err_set(err, RF_EPROTO, "blob '%s': unexpected '%s' reply", sha_hex, rf_msg_body_name(env));
            goto cleanup;
        }
        const Reelfarm__BlobAck *ack = env->blob_ack;
        if (probing) {
            /* The answer to the probe: what the server holds is where we go on. A server that
             * does not know probes treats it as an empty first piece and answers 0: same thing. */
            probing = 0;
            sent = acked = ack->offset;
            sent_any = sent > 0;
            if (xfer != NULL) {
                xfer->resumed_from = acked;
                xfer->bytes_after_resume = 0;
            }
            RF_INFO("blob", "blob '%.12s': upload resumes at %llu of %llu bytes", sha_hex,
                    (unsigned long long)acked, (unsigned long long)total);
        } else {
            in_flight--;
            if (ack->offset < acked) {
                /* The server lost what it held (restarted without its partial file): resync. */
                RF_WARN("blob", "blob '%.12s': the server went back to %llu bytes, resyncing", sha_hex,
                        (unsigned long long)ack->offset);
                resync = 1;
            } else {
                acked = ack->offset;
            }
        }
        /* The server may answer complete early when it already has the blob. */
        complete = ack->complete && ack->offset == total;
        last_progress = rf_now_ms();
        rf_msg_destroy(&m);
        if (xfer != NULL && xfer->on_progress != NULL)
            xfer->on_progress(xfer->arg, acked, total);
    }
    if (size != NULL)
        *size = total;

cleanup:
    rf_msg_destroy(&m);
    if (sock != NULL)
        zmq_close(sock);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}
