/* bmff.c - ISO BMFF (MP4/MOV) for provenance: the top-level box walk, the C2PA bmff file hash,
 * and the moov rewrite that keeps chunk offsets right when boxes are inserted before mdat.
 *
 * Only what signing and verifying need: top-level boxes are listed, never parsed beyond their
 * headers, except moov, which is loaded (PROV_MAX_MOOV) to patch stco/co64 tables.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "prov_internal.h"

const uint8_t prov_uuid_c2pa[16] = {0xD8, 0xFE, 0xC3, 0xD6, 0x1B, 0x0E, 0x48, 0x3C,
                                    0x92, 0x97, 0x58, 0x28, 0x87, 0x7E, 0xC4, 0x81};
const uint8_t prov_uuid_xmp[16] = {0xBE, 0x7A, 0xCF, 0xCB, 0x97, 0xA9, 0x42, 0xE8,
                                   0x9C, 0x71, 0x99, 0x94, 0x91, 0xE3, 0xAF, 0xAC};

/* ---- byte buffer ----------------------------------------------------------------------------- */

static bool s_reserve(prov_buf_t *b, size_t more)
{
    if (b->oom)
        return false;
    if (more > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void prov_buf_put(prov_buf_t *b, const void *data, size_t len)
{
    if (!len || !s_reserve(b, len))
        return;
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void prov_buf_zero(prov_buf_t *b, size_t len)
{
    if (!len || !s_reserve(b, len))
        return;
    memset(b->p + b->len, 0, len);
    b->len += len;
}

void prov_buf_u8(prov_buf_t *b, uint8_t v) { prov_buf_put(b, &v, 1); }

void prov_buf_be32(prov_buf_t *b, uint32_t v)
{
    uint8_t x[4];
    prov_wr32(x, v);
    prov_buf_put(b, x, 4);
}

void prov_buf_be64(prov_buf_t *b, uint64_t v)
{
    uint8_t x[8];
    prov_wr64(x, v);
    prov_buf_put(b, x, 8);
}

size_t prov_box_begin(prov_buf_t *b, const char type[4])
{
    size_t start = b->len;
    prov_buf_be32(b, 0);
    prov_buf_put(b, type, 4);
    return start;
}

void prov_box_end(prov_buf_t *b, size_t start)
{
    if (!b->oom)
        prov_wr32(b->p + start, (uint32_t)(b->len - start));
}

void prov_buf_free(prov_buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

uint32_t prov_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t prov_rd64(const uint8_t *p) { return (uint64_t)prov_rd32(p) << 32 | prov_rd32(p + 4); }

void prov_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void prov_wr64(uint8_t *p, uint64_t v)
{
    prov_wr32(p, (uint32_t)(v >> 32));
    prov_wr32(p + 4, (uint32_t)v);
}

/* ---- file access ----------------------------------------------------------------------------- */

int prov_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, rf_err_t *err)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return rf_err_set(err, RF_EIO, "'%s': read at offset %" PRIu64 " failed: %s", name,
                              off, strerror(errno));
        if (n == 0)
            return rf_err_set(err, RF_EMEDIA, "'%s': unexpected end of file at offset %" PRIu64,
                              name, off);
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int prov_sha256_fd(int fd, uint64_t off, uint64_t len, const char *name, EVP_MD_CTX *ctx,
                   rf_err_t *err)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return rf_err_set(err, RF_ENOMEM, "out of memory hashing '%s'", name);
    int rc = 0;
    while (len && !rc) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        rc = prov_pread_all(fd, buf, n, off, name, err);
        if (!rc && EVP_DigestUpdate(ctx, buf, n) != 1)
            rc = rf_err_set(err, RF_EIO, "SHA-256 failed on '%s'", name);
        off += n;
        len -= n;
    }
    free(buf);
    return rc;
}

int prov_sha256_file(const char *path, uint8_t out[32], rf_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "'%s': cannot open: %s", path,
                          strerror(errno));
    int rc = 0;
    off_t end = lseek(fd, 0, SEEK_END);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (end < 0 || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        rc = rf_err_set(err, RF_EIO, "'%s': cannot hash", path);
    if (!rc)
        rc = prov_sha256_fd(fd, 0, (uint64_t)end, path, ctx, err);
    if (!rc && EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        rc = rf_err_set(err, RF_EIO, "'%s': cannot hash", path);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}

/* ---- top-level boxes ------------------------------------------------------------------------- */

int prov_bmff_scan(int fd, uint64_t size, const char *name, prov_box_t **boxes, size_t *nboxes,
                   rf_err_t *err)
{
    *boxes = NULL;
    *nboxes = 0;
    prov_box_t *list = NULL;
    size_t n = 0, cap = 0;
    uint64_t off = 0;
    int rc = 0;
    while (off < size && !rc) {
        uint8_t h[32];
        if (size - off < 8) {
            rc = rf_err_set(err, RF_EMEDIA, "'%s': %" PRIu64 " stray bytes at the end (offset %" PRIu64 ")",
                            name, size - off, off);
            break;
        }
        size_t want = size - off < sizeof(h) ? (size_t)(size - off) : sizeof(h);
        if ((rc = prov_pread_all(fd, h, want, off, name, err)))
            break;
        prov_box_t b;
        memset(&b, 0, sizeof(b));
        b.off = off;
        memcpy(b.type, h + 4, 4);
        uint64_t bsize = prov_rd32(h);
        b.hdr = 8;
        if (bsize == 1) {
            if (want < 16) {
                rc = rf_err_set(err, RF_EMEDIA, "'%s': truncated box header at offset %" PRIu64, name, off);
                break;
            }
            bsize = prov_rd64(h + 8);
            b.hdr = 16;
        } else if (bsize == 0) {
            bsize = size - off; /* to the end of the file */
        }
        if (!memcmp(b.type, "uuid", 4)) {
            if (want < b.hdr + 16) {
                rc = rf_err_set(err, RF_EMEDIA, "'%s': truncated uuid box at offset %" PRIu64, name, off);
                break;
            }
            memcpy(b.uuid, h + b.hdr, 16);
            b.hdr += 16;
        }
        for (int i = 0; i < 4; i++)
            if (b.type[i] < 0x20 || b.type[i] > 0x7e)
                b.type[i] = '?';
        if (bsize < b.hdr || bsize > size - off) {
            rc = rf_err_set(err, RF_EMEDIA,
                            "'%s': box '%s' at offset %" PRIu64 " has size %" PRIu64
                            " (the file has %" PRIu64 " bytes): not an ISO BMFF (MP4/MOV) file or truncated",
                            name, b.type, off, bsize, size);
            break;
        }
        b.size = bsize;
        if (n == cap) {
            if (n == PROV_MAX_BOXES) {
                rc = rf_err_set(err, RF_ETOOBIG, "'%s': more than %d top-level boxes", name,
                                PROV_MAX_BOXES);
                break;
            }
            size_t ncap = cap ? cap * 2 : 16;
            prov_box_t *g = realloc(list, ncap * sizeof(*list));
            if (!g) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", name);
                break;
            }
            list = g;
            cap = ncap;
        }
        list[n++] = b;
        off += bsize;
    }
    if (rc) {
        free(list);
        return rc;
    }
    *boxes = list;
    *nboxes = n;
    return 0;
}

static bool s_excluded(int fd, const prov_box_t *b, const prov_exclusion_t *ex, size_t nex)
{
    for (size_t i = 0; i < nex; i++) {
        if (memcmp(b->type, ex[i].type, 4))
            continue;
        if (!ex[i].data_len)
            return true;
        if (ex[i].data_off + ex[i].data_len > b->size)
            continue;
        uint8_t got[64];
        if (pread(fd, got, ex[i].data_len, (off_t)(b->off + ex[i].data_off)) !=
            (ssize_t)ex[i].data_len)
            continue;
        if (!memcmp(got, ex[i].data, ex[i].data_len))
            return true;
    }
    return false;
}

int prov_bmff_hash(int fd, const char *name, const prov_box_t *boxes, size_t nboxes,
                   const prov_exclusion_t *ex, size_t nex, uint8_t out[32], rf_err_t *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        rc = rf_err_set(err, RF_ENOMEM, "cannot start SHA-256");
    for (size_t i = 0; i < nboxes && !rc; i++) {
        if (s_excluded(fd, &boxes[i], ex, nex))
            continue;
        uint8_t off[8];
        prov_wr64(off, boxes[i].off);
        if (EVP_DigestUpdate(ctx, off, 8) != 1)
            rc = rf_err_set(err, RF_EIO, "SHA-256 failed");
        if (!rc)
            rc = prov_sha256_fd(fd, boxes[i].off, boxes[i].size, name, ctx, err);
    }
    if (!rc && EVP_DigestFinal_ex(ctx, out, NULL) != 1)
        rc = rf_err_set(err, RF_EIO, "SHA-256 failed");
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- moov rewrite ---------------------------------------------------------------------------- */

/* Boxes on the way from moov to the chunk offset tables. */
static bool s_container(const uint8_t *type)
{
    static const char *const kinds[] = {"trak", "mdia", "minf", "stbl"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (!memcmp(type, kinds[i], 4))
            return true;
    return false;
}

typedef struct s_patch {
    prov_remap_fn remap;
    void *arg;
    rf_err_t *err;
    int tables;
} s_patch_t;

static int s_patch_children(uint8_t *p, size_t len, s_patch_t *ps, int depth)
{
    size_t off = 0;
    while (off + 8 <= len) {
        uint64_t size = prov_rd32(p + off);
        size_t hdr = 8;
        if (size == 1) {
            if (off + 16 > len)
                break;
            size = prov_rd64(p + off + 8);
            hdr = 16;
        } else if (size == 0) {
            size = len - off;
        }
        if (size < hdr || size > len - off)
            return rf_err_set(ps->err, RF_EMEDIA,
                              "moov: box '%.4s' at moov offset %zu overruns its parent", p + off + 4,
                              off);
        uint8_t *body = p + off + hdr;
        size_t blen = (size_t)size - hdr;
        const uint8_t *type = p + off + 4;
        if (depth < 8 && s_container(type)) {
            int rc = s_patch_children(body, blen, ps, depth + 1);
            if (rc)
                return rc;
        } else if (!memcmp(type, "stco", 4) || !memcmp(type, "co64", 4)) {
            bool wide = type[0] == 'c';
            size_t esize = wide ? 8 : 4;
            if (blen < 8)
                return rf_err_set(ps->err, RF_EMEDIA, "moov: truncated '%.4s' box", type);
            uint32_t count = prov_rd32(body + 4);
            if ((uint64_t)count * esize > blen - 8)
                return rf_err_set(ps->err, RF_EMEDIA,
                                  "moov: '%.4s' lists %" PRIu32 " offsets but holds %zu bytes",
                                  type, count, blen - 8);
            for (uint32_t i = 0; i < count; i++) {
                uint8_t *e = body + 8 + (size_t)i * esize;
                uint64_t old = wide ? prov_rd64(e) : prov_rd32(e), now;
                int rc = ps->remap(ps->arg, old, &now);
                if (rc)
                    return rf_err_set(ps->err, rc,
                                      "moov: chunk offset %" PRIu64 " (entry %" PRIu32
                                      " of a '%.4s') points outside every box of the file",
                                      old, i, type);
                if (!wide && now > UINT32_MAX)
                    return rf_err_set(ps->err, RF_ETOOBIG,
                                      "moov: chunk offset %" PRIu64 " no longer fits a 32-bit "
                                      "'stco' after inserting the provenance boxes; remux the "
                                      "file with 64-bit offsets (co64)", now);
                if (wide)
                    prov_wr64(e, now);
                else
                    prov_wr32(e, (uint32_t)now);
            }
            ps->tables++;
        }
        off += (size_t)size;
    }
    return 0;
}

/* A QuickTime user-data text atom: size, type, 16-bit length, 16-bit language (0x55C4 = "und"),
 * the text. FFmpeg's mov demuxer reads ©cmt as "comment" and desc as "description". */
static void s_udta_text(prov_buf_t *b, const char *type, const char *text)
{
    size_t start = prov_box_begin(b, type);
    size_t n = strlen(text);
    uint8_t h[4] = {(uint8_t)(n >> 8), (uint8_t)n, 0x55, 0xC4};
    prov_buf_put(b, h, 4);
    prov_buf_put(b, text, n);
    prov_box_end(b, start);
}

size_t prov_moov_growth(const char *comment, const char *description)
{
    return 8 + (12 + strlen(comment)) + (12 + strlen(description));
}

int prov_moov_rewrite(const uint8_t *moov, size_t len, prov_remap_fn remap, void *arg,
                      const char *comment, const char *description, prov_buf_t *out,
                      rf_err_t *err)
{
    if (strlen(comment) > 0xffff || strlen(description) > 0xffff)
        return rf_err_set(err, RF_EINVAL, "metadata text over 65535 bytes");
    size_t hdr = prov_rd32(moov) == 1 ? 16 : 8;
    prov_buf_put(out, moov, len);
    if (out->oom)
        return rf_err_set(err, RF_ENOMEM, "out of memory copying moov");
    s_patch_t ps = {.remap = remap, .arg = arg, .err = err};
    int rc = s_patch_children(out->p + hdr, len - hdr, &ps, 0);
    if (rc)
        return rc;
    size_t start = prov_box_begin(out, "udta");
    s_udta_text(out, "\xa9" "cmt", comment);
    s_udta_text(out, "desc", description);
    prov_box_end(out, start);
    if (out->oom)
        return rf_err_set(err, RF_ENOMEM, "out of memory rewriting moov");
    if (hdr == 16)
        prov_wr64(out->p + 8, out->len);
    else if (out->len > UINT32_MAX)
        return rf_err_set(err, RF_ETOOBIG, "moov over 4 GiB");
    else
        prov_wr32(out->p, (uint32_t)out->len);
    return 0;
}
