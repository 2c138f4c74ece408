/* sign.c - signing an output in place: XMP, metadata tags and the embedded C2PA manifest for
 * MP4/MOV, the .c2pa sidecar for every file.
 *
 * Recipe (C2PA §18.6.2, "reserve then fill"): the manifest's size does not depend on the hash or
 * the signature values (fixed-length fields), so we build it once with a zero hash to learn its
 * size, write the new file with a zero-filled manifest box of exactly that size (chunk offsets
 * already moved), hash the written file, build the real manifest and write it over the zeros.
 * Nothing of the original is touched until the finished file is renamed over it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "prov_internal.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif

#define S_PATH_MAX 4096
#define S_PURPOSE "manifest"
/* uuid box header (8) + extended type (16) + FullBox version/flags (4) + "manifest\0" (9) +
 * the 8-byte offset of the first merkle box (0: none). */
#define S_C2PA_HDR (8 + 16 + 4 + 9 + 8)

int rf_prov_sidecar_path(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - path) : strlen(path);
    int n = snprintf(out, size, "%.*s.c2pa", (int)stem, path);
    return n < 0 || (size_t)n >= size ? RF_EINVAL : 0;
}

static const char *s_mime(const char *path)
{
    const char *dot = strrchr(path, '.');
    static const struct {
        const char *ext, *mime;
    } types[] = {{".mp4", "video/mp4"},        {".m4v", "video/mp4"},
                 {".mov", "video/quicktime"},  {".mkv", "video/x-matroska"},
                 {".webm", "video/webm"},      {".avi", "video/x-msvideo"},
                 {".mxf", "application/mxf"},  {".nut", "video/x-nut"}};
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcasecmp(dot, types[i].ext))
            return types[i].mime;
    return "application/octet-stream";
}

static void s_xmp(prov_buf_t *b, const prov_manifest_in_t *in)
{
    char pkt[4096];
    int n = snprintf(
        pkt, sizeof(pkt),
        "<?xpacket begin=\"\xEF\xBB\xBF\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n"
        "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\">\n"
        " <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n"
        "  <rdf:Description rdf:about=\"\"\n"
        "    xmlns:Iptc4xmpExt=\"http://iptc.org/std/Iptc4xmpExt/2008-02-29/\"\n"
        "    xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n"
        "    xmlns:xmp=\"http://ns.adobe.com/xap/1.0/\"\n"
        "    xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\"\n"
        "    Iptc4xmpExt:DigitalSourceType=\"%s\"\n"
        "    xmpMM:InstanceID=\"%s\"\n"
        "    xmp:CreatorTool=\"reelfarm %s\"\n"
        "    xmp:CreateDate=\"%s\">\n"
        "   <dc:description><rdf:Alt><rdf:li xml:lang=\"x-default\">%s</rdf:li></rdf:Alt></dc:description>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        "<?xpacket end=\"w\"?>",
        in->source_type, in->instance_id, RF_VERSION, in->when, RF_PROV_DISCLOSURE);
    size_t start = prov_box_begin(b, "uuid");
    prov_buf_put(b, prov_uuid_xmp, 16);
    prov_buf_put(b, pkt, n > 0 && (size_t)n < sizeof(pkt) ? (size_t)n : 0);
    prov_box_end(b, start);
}

static int s_write_all(int fd, const void *p, size_t len, const char *name, rf_err_t *err)
{
    const uint8_t *c = p;
    while (len) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return rf_err_set(err, RF_EIO, "'%s': write failed: %s", name, strerror(errno));
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_copy_range(int in, int out, uint64_t off, uint64_t len, const char *name,
                        const char *outname, rf_err_t *err)
{
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return rf_err_set(err, RF_ENOMEM, "out of memory copying '%s'", name);
    int rc = 0;
    while (len && !rc) {
        size_t n = len < CHUNK ? (size_t)len : CHUNK;
        rc = prov_pread_all(in, buf, n, off, name, err);
        if (!rc)
            rc = s_write_all(out, buf, n, outname, err);
        off += n;
        len -= n;
    }
    free(buf);
    return rc;
}

/* Writes data to path through a temp file, fsynced and renamed. */
static int s_write_atomic(const char *path, const uint8_t *data, size_t len, rf_err_t *err)
{
    char tmp[S_PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp))
        return rf_err_set(err, RF_EINVAL, "'%s': path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return rf_err_set(err, RF_EIO, "'%s': cannot create: %s", tmp, strerror(errno));
    int rc = s_write_all(fd, data, len, tmp, err);
    if (!rc && (fchmod(fd, 0644) || fsync(fd)))
        rc = rf_err_set(err, RF_EIO, "'%s': cannot sync: %s", tmp, strerror(errno));
    close(fd);
    if (!rc && rename(tmp, path))
        rc = rf_err_set(err, RF_EIO, "'%s': cannot rename into place: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- the new layout -------------------------------------------------------------------------- */

typedef struct s_layout {
    const prov_box_t *old;
    size_t nold;
    bool *kept;        /* old box i is written again */
    uint64_t *new_off; /* where old box i lands */
} s_layout_t;

static int s_remap(void *arg, uint64_t old, uint64_t *now)
{
    const s_layout_t *l = arg;
    for (size_t i = 0; i < l->nold; i++) {
        const prov_box_t *b = &l->old[i];
        if (l->kept[i] && old >= b->off && old - b->off < b->size) {
            *now = old - b->off + l->new_off[i];
            return 0;
        }
    }
    return RF_EMEDIA;
}

static bool s_is_ours(const prov_box_t *b)
{
    return !memcmp(b->type, "uuid", 4) &&
           (!memcmp(b->uuid, prov_uuid_c2pa, 16) || !memcmp(b->uuid, prov_uuid_xmp, 16));
}

/* Fills what the manifest says besides the hash. */
static int s_prepare(const char *path, const rf_prov_job_t *job, prov_manifest_in_t *in,
                     rf_err_t *err)
{
    char id[37];
    prov_uuid_v4(id);
    snprintf(in->manifest_label, sizeof(in->manifest_label), "urn:c2pa:%s", id);
    prov_uuid_v4(id);
    snprintf(in->instance_id, sizeof(in->instance_id), "xmp:iid:%s", id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(in->when, sizeof(in->when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    in->job = job;
    in->source_type = job->altered_footage ? RF_PROV_DST_COMPOSITE : RF_PROV_DST_TRAINED;
    if (job->spec_text)
        EVP_Digest(job->spec_text, job->spec_len, in->spec_sha, NULL, EVP_sha256(), NULL);
    if (job->nmodels > RF_PROV_MAX_LIST || job->nsubjects > RF_PROV_MAX_LIST)
        return rf_err_set(err, RF_ETOOBIG, "'%s': more than %d models or subjects to record",
                          path, RF_PROV_MAX_LIST);
    for (size_t i = 0; i < job->nmodels; i++) {
        rf_err_t ignored = {0};
        in->model_ok[i] = prov_sha256_file(job->models[i], in->model_sha[i], &ignored) == 0;
    }
    if (job->source_path) {
        int rc = prov_sha256_file(job->source_path, in->source_sha, err);
        if (rc)
            return rf_err_prefix(err, "ingredient: ");
        in->have_source = true;
        const char *base = strrchr(job->source_path, '/');
        snprintf(in->source_title, sizeof(in->source_title), "%s",
                 base ? base + 1 : job->source_path);
        snprintf(in->source_format, sizeof(in->source_format), "%s", s_mime(job->source_path));
    }
    return 0;
}

/* MP4/MOV: write the boxes and the manifest into a new file, then rename it over path. */
static int s_sign_bmff(const rf_prov_signer_t *signer, const char *path, int fd,
                       const prov_box_t *boxes, size_t nboxes, prov_manifest_in_t *in,
                       prov_buf_t *manifest, rf_err_t *err)
{
    int rc = 0, out = -1;
    char tmp[S_PATH_MAX] = "";
    prov_buf_t xmp = {0}, moov = {0}, trial = {0};
    prov_box_t *nb = NULL;
    size_t nnb = 0, imoov = SIZE_MAX;
    s_layout_t l = {.old = boxes, .nold = nboxes};
    l.kept = calloc(nboxes, sizeof(*l.kept));
    l.new_off = calloc(nboxes, sizeof(*l.new_off));
    uint8_t *moov_in = NULL;
    if (!l.kept || !l.new_off) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory signing '%s'", path);
        goto done;
    }
    for (size_t i = 0; i < nboxes; i++) {
        if (!memcmp(boxes[i].type, "moof", 4) || !memcmp(boxes[i].type, "sidx", 4)) {
            rc = rf_err_set(err, RF_EMEDIA,
                            "'%s': fragmented MP4 (a '%s' box at offset %" PRIu64
                            "): C2PA signing supports non-fragmented MP4/MOV only; write the "
                            "output without movflags frag_*", path, boxes[i].type, boxes[i].off);
            goto done;
        }
        if (!memcmp(boxes[i].type, "moov", 4)) {
            if (imoov != SIZE_MAX) {
                rc = rf_err_set(err, RF_EMEDIA, "'%s': two moov boxes", path);
                goto done;
            }
            imoov = i;
        }
    }
    if (imoov == SIZE_MAX) {
        rc = rf_err_set(err, RF_EMEDIA, "'%s': no moov box (not a finished MP4/MOV)", path);
        goto done;
    }
    if (boxes[imoov].size > PROV_MAX_MOOV) {
        rc = rf_err_set(err, RF_ETOOBIG, "'%s': moov of %" PRIu64 " bytes is over %u", path,
                        boxes[imoov].size, PROV_MAX_MOOV);
        goto done;
    }

    /* The manifest's size, from a trial build with a zero hash. */
    if ((rc = prov_manifest_build(signer, in, &trial, err)))
        goto done;
    s_xmp(&xmp, in);
    if (xmp.oom) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t c2pa_size = S_C2PA_HDR + trial.len;
    size_t growth = prov_moov_growth(RF_PROV_DISCLOSURE, RF_PROV_DISCLOSURE);

    /* Layout: ftyp, C2PA box, XMP box, then every other box in its order. */
    uint64_t pos = boxes[0].size + c2pa_size + xmp.len;
    l.kept[0] = true;
    l.new_off[0] = 0;
    for (size_t i = 1; i < nboxes; i++) {
        if (s_is_ours(&boxes[i]))
            continue;
        l.kept[i] = true;
        l.new_off[i] = pos;
        pos += boxes[i].size + (i == imoov ? growth : 0);
    }
    moov_in = malloc(boxes[imoov].size);
    if (!moov_in) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory reading moov of '%s'", path);
        goto done;
    }
    if ((rc = prov_pread_all(fd, moov_in, boxes[imoov].size, boxes[imoov].off, path, err)) ||
        (rc = prov_moov_rewrite(moov_in, boxes[imoov].size, s_remap, &l, RF_PROV_DISCLOSURE,
                                RF_PROV_DISCLOSURE, &moov, err)))
        goto done;
    if (moov.len != boxes[imoov].size + growth) {
        rc = rf_err_set(err, RF_EMEDIA, "'%s': moov rewrite size mismatch", path);
        goto done;
    }

    if (snprintf(tmp, sizeof(tmp), "%s.c2pa-XXXXXX", path) >= (int)sizeof(tmp)) {
        rc = rf_err_set(err, RF_EINVAL, "'%s': path too long", path);
        goto done;
    }
    out = mkstemp(tmp);
    if (out < 0) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot create: %s", tmp, strerror(errno));
        tmp[0] = 0;
        goto done;
    }
    prov_buf_t hdr = {0};
    size_t hstart = prov_box_begin(&hdr, "uuid");
    prov_buf_put(&hdr, prov_uuid_c2pa, 16);
    prov_buf_be32(&hdr, 0); /* FullBox version 0, flags 0 */
    prov_buf_put(&hdr, S_PURPOSE, sizeof(S_PURPOSE));
    prov_buf_be64(&hdr, 0); /* no merkle boxes */
    prov_buf_zero(&hdr, trial.len);
    prov_box_end(&hdr, hstart);
    if (hdr.oom) {
        prov_buf_free(&hdr);
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    rc = s_copy_range(fd, out, 0, boxes[0].size, path, tmp, err);
    if (!rc)
        rc = s_write_all(out, hdr.p, hdr.len, tmp, err);
    prov_buf_free(&hdr);
    if (!rc)
        rc = s_write_all(out, xmp.p, xmp.len, tmp, err);
    for (size_t i = 1; i < nboxes && !rc; i++) {
        if (!l.kept[i])
            continue;
        if (i == imoov)
            rc = s_write_all(out, moov.p, moov.len, tmp, err);
        else
            rc = s_copy_range(fd, out, boxes[i].off, boxes[i].size, path, tmp, err);
    }
    if (rc)
        goto done;
    if (fsync(out)) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot sync: %s", tmp, strerror(errno));
        goto done;
    }

    /* Hash what was written, with the exclusions the manifest lists. */
    if ((rc = prov_bmff_scan(out, pos, tmp, &nb, &nnb, err)))
        goto done;
    prov_exclusion_t ex[3];
    memset(ex, 0, sizeof(ex));
    memcpy(ex[0].type, "uuid", 4);
    ex[0].data_off = 8;
    memcpy(ex[0].data, prov_uuid_c2pa, 16);
    ex[0].data_len = 16;
    memcpy(ex[1].type, "ftyp", 4);
    memcpy(ex[2].type, "mfra", 4);
    if ((rc = prov_bmff_hash(out, tmp, nb, nnb, ex, 3, in->hash, err)))
        goto done;
    if ((rc = prov_manifest_build(signer, in, manifest, err)))
        goto done;
    if (manifest->len != trial.len) {
        rc = rf_err_set(err, RF_EMEDIA,
                        "'%s': the signed manifest (%zu bytes) does not fit the %zu reserved",
                        path, manifest->len, trial.len);
        goto done;
    }
    if (pwrite(out, manifest->p, manifest->len, (off_t)(boxes[0].size + S_C2PA_HDR)) !=
            (ssize_t)manifest->len ||
        fchmod(out, 0644) || fsync(out)) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot write the manifest: %s", tmp, strerror(errno));
        goto done;
    }
    close(out);
    out = -1;
    if (rename(tmp, path)) {
        rc = rf_err_set(err, RF_EIO, "'%s': cannot rename the signed file into place: %s", path,
                        strerror(errno));
        goto done;
    }
    tmp[0] = 0;
done:
    if (out >= 0)
        close(out);
    if (tmp[0])
        unlink(tmp);
    free(l.kept);
    free(l.new_off);
    free(moov_in);
    free(nb);
    prov_buf_free(&xmp);
    prov_buf_free(&moov);
    prov_buf_free(&trial);
    return rc;
}

int rf_prov_sign_file(const rf_prov_signer_t *signer, const char *path, const rf_prov_job_t *job,
                      uint8_t manifest_sha256[32], rf_err_t *err)
{
    if (!signer || !path || !job)
        return rf_err_set(err, RF_EINVAL, "provenance: missing signer, path or job");
    prov_manifest_in_t *in = calloc(1, sizeof(*in));
    prov_buf_t manifest = {0};
    prov_box_t *boxes = NULL;
    size_t nboxes = 0;
    char sidecar[S_PATH_MAX];
    int rc = 0, fd = -1;
    if (!in)
        return rf_err_set(err, RF_ENOMEM, "out of memory signing '%s'", path);
    if (rf_prov_sidecar_path(path, sidecar, sizeof(sidecar))) {
        rc = rf_err_set(err, RF_EINVAL, "'%s': path too long", path);
        goto done;
    }
    if ((rc = s_prepare(path, job, in, err)))
        goto done;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        rc = rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "'%s': cannot open: %s", path,
                        strerror(errno));
        goto done;
    }
    rf_err_t scan_err = {0};
    bool bmff = prov_bmff_scan(fd, (uint64_t)st.st_size, path, &boxes, &nboxes, &scan_err) == 0 &&
                nboxes > 0 && !memcmp(boxes[0].type, "ftyp", 4);
    if (bmff) {
        in->bmff = true;
        rc = s_sign_bmff(signer, path, fd, boxes, nboxes, in, &manifest, err);
    } else {
        /* No container we can embed in: the sidecar alone, bound to every byte of the file. */
        in->bmff = false;
        rc = prov_sha256_file(path, in->hash, err);
        if (!rc)
            rc = prov_manifest_build(signer, in, &manifest, err);
    }
    if (!rc)
        rc = s_write_atomic(sidecar, manifest.p, manifest.len, err);
    if (!rc && manifest_sha256)
        EVP_Digest(manifest.p, manifest.len, manifest_sha256, NULL, EVP_sha256(), NULL);
done:
    if (fd >= 0)
        close(fd);
    free(boxes);
    free(in);
    prov_buf_free(&manifest);
    return rc;
}
