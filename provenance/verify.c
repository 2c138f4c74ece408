/* verify.c - checks a C2PA manifest in the order of the spec's validation (C2PA §15): locate
 * exactly one manifest store, parse its JUMBF, take the active (last) manifest, decode the claim,
 * verify the COSE claim signature, the signing certificate's profile and its chain to the trust
 * anchors, every hashed assertion URI of the claim, then the one hard binding over the file's
 * bytes. Findings carry the spec's status codes so a report reads like a C2PA reader's.
 *
 * What we support is what we write, plus close relatives: claim v1 or v2, ES256 or EdDSA,
 * c2pa.hash.bmff.v2/v3 with top-level exclusions, c2pa.hash.data. Anything else is reported as a
 * failure naming what is unsupported, never as valid.
 */
#include <cbor.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prov_internal.h"

#define S_PATH_MAX 4096
#define S_MAX_JUMBF_CHILDREN 256
#define S_MAX_DEPTH 8

static void s_status(rf_prov_report_t *r, bool failure, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_status(rf_prov_report_t *r, bool failure, const char *code, const char *fmt, ...)
{
    if (r->nstatus == RF_PROV_MAX_STATUS) {
        if (failure) /* never lose the fact of a failure, even past the list's end */
            r->status[RF_PROV_MAX_STATUS - 1].failure = true;
        return;
    }
    rf_prov_status_t *s = &r->status[r->nstatus++];
    snprintf(s->code, sizeof(s->code), "%s", code);
    s->failure = failure;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
    va_end(ap);
}

static bool s_failed(const rf_prov_report_t *r)
{
    for (int i = 0; i < r->nstatus; i++)
        if (r->status[i].failure)
            return true;
    return false;
}

/* ---- JUMBF ----------------------------------------------------------------------------------- */

/* A superbox: its description and its content boxes. */
typedef struct s_jbox {
    const uint8_t *start;   /* the jumb box header */
    size_t size;            /* whole jumb box */
    uint8_t type[16];       /* jumd type UUID */
    char label[128];
    const uint8_t *content; /* first box after the jumd */
    size_t content_len;
} s_jbox_t;

/* Reads one box header at p (len bytes left): its size and type. */
static bool s_box(const uint8_t *p, size_t len, size_t *size, const uint8_t **type, size_t *hdr)
{
    if (len < 8)
        return false;
    uint64_t s = prov_rd32(p);
    *hdr = 8;
    if (s == 1) {
        if (len < 16)
            return false;
        s = prov_rd64(p + 8);
        *hdr = 16;
    } else if (s == 0) {
        s = len;
    }
    if (s < *hdr || s > len)
        return false;
    *size = (size_t)s;
    *type = p + 4;
    return true;
}

static bool s_jumb(const uint8_t *p, size_t len, s_jbox_t *out)
{
    size_t size, hdr, dsize, dhdr;
    const uint8_t *type, *dtype;
    if (!s_box(p, len, &size, &type, &hdr) || memcmp(type, "jumb", 4))
        return false;
    const uint8_t *d = p + hdr;
    if (!s_box(d, size - hdr, &dsize, &dtype, &dhdr) || memcmp(dtype, "jumd", 4) ||
        dsize < dhdr + 17)
        return false;
    memset(out, 0, sizeof(*out));
    out->start = p;
    out->size = size;
    memcpy(out->type, d + dhdr, 16);
    uint8_t toggles = d[dhdr + 16];
    if (toggles & 0x02) {
        const uint8_t *l = d + dhdr + 17, *end = d + dsize;
        size_t n = 0;
        while (l + n < end && l[n])
            n++;
        if (l + n == end)
            return false; /* label without its terminating NUL */
        snprintf(out->label, sizeof(out->label), "%.*s", (int)n, (const char *)l);
    }
    out->content = d + dsize;
    out->content_len = size - hdr - dsize;
    return true;
}

/* The children superboxes of a superbox's content. Returns the count, or -1 on a malformed box. */
static int s_children(const s_jbox_t *parent, s_jbox_t *kids, int max)
{
    const uint8_t *p = parent->content;
    size_t left = parent->content_len;
    int n = 0;
    while (left >= 8) {
        size_t size, hdr;
        const uint8_t *type;
        if (!s_box(p, left, &size, &type, &hdr))
            return -1;
        if (!memcmp(type, "jumb", 4)) {
            if (n == max || !s_jumb(p, left, &kids[n]))
                return -1;
            n++;
        }
        p += size;
        left -= size;
    }
    return n;
}

/* The payload of the first box of the given type in a superbox's content. */
static bool s_content(const s_jbox_t *j, const char *type, const uint8_t **data, size_t *len)
{
    const uint8_t *p = j->content;
    size_t left = j->content_len;
    while (left >= 8) {
        size_t size, hdr;
        const uint8_t *t;
        if (!s_box(p, left, &size, &t, &hdr))
            return false;
        if (!memcmp(t, type, 4)) {
            *data = p + hdr;
            *len = size - hdr;
            return true;
        }
        p += size;
        left -= size;
    }
    return false;
}

/* A C2PA JUMBF type: the four-character code then 0011-0010-8000-00AA00389B71, all 16 bytes. */
static bool s_is_type(const s_jbox_t *j, const char fourcc[4])
{
    static const uint8_t tail[12] = {0x00, 0x11, 0x00, 0x10, 0x80, 0x00,
                                     0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    return !memcmp(j->type, fourcc, 4) && !memcmp(j->type + 4, tail, 12);
}

/* ---- CBOR reading ---------------------------------------------------------------------------- */

static bool s_str_eq(const cbor_item_t *it, const char *s)
{
    return it && cbor_isa_string(it) && cbor_string_is_definite(it) &&
           cbor_string_length(it) == strlen(s) && !memcmp(cbor_string_handle(it), s, strlen(s));
}

static cbor_item_t *s_get(const cbor_item_t *map, const char *key)
{
    if (!map || !cbor_isa_map(map) || !cbor_map_is_definite(map))
        return NULL;
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++)
        if (s_str_eq(p[i].key, key))
            return p[i].value;
    return NULL;
}

static cbor_item_t *s_get_int(const cbor_item_t *map, int key)
{
    if (!map || !cbor_isa_map(map) || !cbor_map_is_definite(map))
        return NULL;
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        cbor_item_t *k = p[i].key;
        if (key >= 0 && cbor_isa_uint(k) && cbor_get_int(k) == (uint64_t)key)
            return p[i].value;
        if (key < 0 && cbor_isa_negint(k) && cbor_get_int(k) == (uint64_t)(-1 - key))
            return p[i].value;
    }
    return NULL;
}

static void s_copy_str(const cbor_item_t *it, char *out, size_t size)
{
    out[0] = 0;
    if (it && cbor_isa_string(it) && cbor_string_is_definite(it))
        snprintf(out, size, "%.*s", (int)cbor_string_length(it),
                 (const char *)cbor_string_handle(it));
}

static bool s_bytes(const cbor_item_t *it, const uint8_t **p, size_t *n)
{
    if (!it || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
        return false;
    *p = cbor_bytestring_handle(it);
    *n = cbor_bytestring_length(it);
    return true;
}

static cbor_item_t *s_load(const uint8_t *p, size_t n)
{
    struct cbor_load_result res;
    cbor_item_t *it = cbor_load(p, n, &res);
    if (it && (res.error.code != CBOR_ERR_NONE || res.read != n)) {
        cbor_decref(&it);
        return NULL;
    }
    return it;
}

/* ---- the checks ------------------------------------------------------------------------------ */

typedef struct s_ctx {
    rf_prov_report_t *r;
    const char *path;
    int fd;                  /* the asset */
    uint64_t size;
    bool bmff;
    prov_box_t *boxes;
    size_t nboxes;
    const char *trust_pem;
    s_jbox_t assertions[S_MAX_JUMBF_CHILDREN];
    int nassertions;
} s_ctx_t;

static const s_jbox_t *s_find_assertion(const s_ctx_t *c, const char *label)
{
    for (int i = 0; i < c->nassertions; i++)
        if (!strcmp(c->assertions[i].label, label))
            return &c->assertions[i];
    return NULL;
}

/* The assertion label a claim URL names: "self#jumbf=c2pa.assertions/L" or
 * "self#jumbf=/c2pa/<manifest>/c2pa.assertions/L". */
static const char *s_url_label(const char *url, const char *manifest_label)
{
    static const char rel[] = "self#jumbf=c2pa.assertions/";
    if (!strncmp(url, rel, sizeof(rel) - 1))
        return url + sizeof(rel) - 1;
    char abs[256];
    snprintf(abs, sizeof(abs), "self#jumbf=/c2pa/%s/c2pa.assertions/", manifest_label);
    if (!strncmp(url, abs, strlen(abs)))
        return url + strlen(abs);
    return NULL;
}

static void s_check_certificate(s_ctx_t *c, X509 *leaf, STACK_OF(X509) *chain)
{
    rf_prov_report_t *r = c->r;
    X509_NAME_oneline(X509_get_subject_name(leaf), r->signer_subject, sizeof(r->signer_subject));
    bool ok = X509_get_version(leaf) == X509_VERSION_3;
    uint32_t ku = X509_get_key_usage(leaf), xku = X509_get_extended_key_usage(leaf);
    (void)xku;
    if (!ok)
        s_status(r, true, "signingCredential.invalid", "the signing certificate is not X.509 v3");
    if (!(ku & KU_DIGITAL_SIGNATURE)) {
        ok = false;
        s_status(r, true, "signingCredential.invalid",
                 "the signing certificate lacks the digitalSignature key usage");
    }
    if (X509_check_ca(leaf)) {
        ok = false;
        s_status(r, true, "signingCredential.invalid", "the signing certificate is a CA");
    }
    /* EKU: the C2PA claim-signing purpose, or documentSigning / emailProtection (C2PA §14.5.1). */
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
    bool eku_ok = false;
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
        char oid[64];
        OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_OBJECT_value(eku, i), 1);
        if (!strcmp(oid, "2.5.29.37.0")) { /* anyExtendedKeyUsage is forbidden */
            eku_ok = false;
            break;
        }
        if (!strcmp(oid, "1.3.6.1.4.1.62558.2.1") || !strcmp(oid, "1.3.6.1.5.5.7.3.36") ||
            !strcmp(oid, "1.3.6.1.5.5.7.3.4"))
            eku_ok = true;
    }
    EXTENDED_KEY_USAGE_free(eku);
    if (!eku_ok) {
        ok = false;
        s_status(r, true, "signingCredential.invalid",
                 "the signing certificate's extended key usage allows no C2PA claim signing");
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0 ||
        X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
        ok = false;
        s_status(r, true, "signingCredential.expired",
                 "the signing certificate is not valid now (and the claim has no time-stamp)");
    }
    if (!ok)
        return;
    if (!c->trust_pem) {
        s_status(r, false, "signingCredential.untrusted",
                 "no trust anchors given (--trust CA.pem): the signer is unknown");
        return;
    }
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!store || !ctx || X509_STORE_load_file(store, c->trust_pem) != 1) {
        s_status(r, true, "signingCredential.untrusted", "cannot load trust anchors from '%s'",
                 c->trust_pem);
    } else if (X509_STORE_CTX_init(ctx, store, leaf, chain) != 1) {
        s_status(r, true, "signingCredential.untrusted", "cannot start the chain check");
    } else if (X509_verify_cert(ctx) == 1) {
        s_status(r, false, "signingCredential.trusted",
                 "the signing certificate chains to a trust anchor in '%s'", c->trust_pem);
    } else {
        s_status(r, false, "signingCredential.untrusted",
                 "the signing certificate does not chain to a trust anchor in '%s': %s",
                 c->trust_pem, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    }
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
}

/* COSE_Sign1_Tagged over the claim bytes (detached payload); fills certificate findings. */
static void s_check_signature(s_ctx_t *c, const uint8_t *sig, size_t sig_len,
                              const uint8_t *claim, size_t claim_len)
{
    rf_prov_report_t *r = c->r;
    cbor_item_t *arr = NULL, *ph = NULL, *tbs = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    uint8_t *tbs_bytes = NULL;
    /* The tag is read by hand: Debian 12's libcbor 0.8 rejects a tagged array as malformed. Tag
     * 18 is the byte 0xd2 (or 0xd8 0x12 when not minimally encoded). */
    size_t skip = sig_len >= 1 && sig[0] == 0xd2 ? 1 : sig_len >= 2 && sig[0] == 0xd8 && sig[1] == 18 ? 2 : 0;
    if (!skip) {
        s_status(r, true, "claimSignature.missing", "the signature box holds no COSE_Sign1_Tagged");
        goto done;
    }
    arr = s_load(sig + skip, sig_len - skip);
    if (!arr || !cbor_isa_array(arr) || cbor_array_size(arr) != 4) {
        s_status(r, true, "claimSignature.mismatch", "COSE_Sign1 is not a 4-element array");
        goto done;
    }
    cbor_item_t **e = cbor_array_handle(arr);
    const uint8_t *prot, *sv;
    size_t prot_len, sv_len;
    /* The payload is detached (C2PA §13.2): nil here, the claim's bytes in the Sig_structure. */
    if (!cbor_is_null(e[2])) {
        s_status(r, true, "claimSignature.mismatch", "COSE_Sign1 payload is not nil (detached)");
        goto done;
    }
    if (!s_bytes(e[0], &prot, &prot_len) || !s_bytes(e[3], &sv, &sv_len) ||
        !cbor_isa_map(e[1]) || !(ph = s_load(prot, prot_len))) {
        s_status(r, true, "claimSignature.mismatch", "malformed COSE_Sign1 headers or signature");
        goto done;
    }
    cbor_item_t *alg_it = s_get_int(ph, 1), *x5 = s_get_int(ph, 33);
    if (!x5)
        x5 = s_get_int(e[1], 33); /* older signers put x5chain in the unprotected header */
    int alg = 0;
    if (alg_it && cbor_isa_negint(alg_it))
        alg = -1 - (int)cbor_get_int(alg_it);
    if (alg != PROV_COSE_ES256 && alg != PROV_COSE_EDDSA) {
        s_status(r, true, "algorithm.unsupported",
                 "COSE algorithm %d is not one we check (ES256 = -7, EdDSA = -8)", alg);
        goto done;
    }
    cbor_item_t *certs[16];
    size_t ncerts = 0;
    if (x5 && cbor_isa_bytestring(x5)) {
        certs[ncerts++] = x5;
    } else if (x5 && cbor_isa_array(x5)) {
        for (size_t i = 0; i < cbor_array_size(x5) && ncerts < 16; i++)
            certs[ncerts++] = cbor_array_handle(x5)[i];
    }
    for (size_t i = 0; i < ncerts; i++) {
        const uint8_t *der;
        size_t der_len;
        X509 *x = NULL;
        if (s_bytes(certs[i], &der, &der_len))
            x = d2i_X509(NULL, &der, (long)der_len);
        if (!x) {
            s_status(r, true, "signingCredential.invalid", "x5chain entry %zu is no certificate", i);
            goto done;
        }
        if (!leaf)
            leaf = x;
        else if (!sk_X509_push(chain, x))
            X509_free(x);
    }
    if (!leaf) {
        s_status(r, true, "claimSignature.missing", "no x5chain in the COSE headers");
        goto done;
    }
    /* Sig_structure = ["Signature1", protected, h'', claim]. */
    tbs = cbor_new_definite_array(4);
    cbor_item_t *parts[4] = {cbor_build_string("Signature1"), cbor_build_bytestring(prot, prot_len),
                             cbor_build_bytestring((const uint8_t *)"", 0),
                             cbor_build_bytestring(claim, claim_len)};
    bool built = tbs != NULL;
    for (int i = 0; i < 4; i++) {
        if (parts[i] && built)
            built = cbor_array_push(tbs, parts[i]);
        else
            built = false;
        if (parts[i])
            cbor_decref(&parts[i]);
    }
    size_t cap = 0, tlen = built ? cbor_serialize_alloc(tbs, &tbs_bytes, &cap) : 0;
    if (!tlen) {
        s_status(r, true, "claimSignature.mismatch", "out of memory checking the signature");
        goto done;
    }
    if (!prov_verify_sig(leaf, alg, tbs_bytes, tlen, sv, sv_len)) {
        s_status(r, true, "claimSignature.mismatch",
                 "the claim signature does not verify with the signing certificate's key");
        goto done;
    }
    s_status(r, false, "claimSignature.validated", "%s claim signature verified",
             alg == PROV_COSE_ES256 ? "ES256" : "EdDSA");
    s_check_certificate(c, leaf, chain);
done:
    free(tbs_bytes);
    if (tbs)
        cbor_decref(&tbs);
    if (ph)
        cbor_decref(&ph);
    if (arr)
        cbor_decref(&arr);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
}

static void s_check_bmff_hash(s_ctx_t *c, const cbor_item_t *a)
{
    rf_prov_report_t *r = c->r;
    if (!c->bmff) {
        s_status(r, true, "assertion.bmffHash.mismatch", "a BMFF hash on a file that is no MP4/MOV");
        return;
    }
    const cbor_item_t *ex = s_get(a, "exclusions"), *alg = s_get(a, "alg");
    const uint8_t *want;
    size_t want_len;
    if (alg && !s_str_eq(alg, "sha256")) {
        s_status(r, true, "algorithm.unsupported", "BMFF hash algorithm other than sha256");
        return;
    }
    if (!s_bytes(s_get(a, "hash"), &want, &want_len) || want_len != 32 || s_get(a, "merkle")) {
        s_status(r, true, "assertion.bmffHash.mismatch",
                 "the BMFF hash assertion has no 32-byte file hash (Merkle trees are not checked)");
        return;
    }
    prov_exclusion_t list[16];
    size_t n = 0;
    memset(list, 0, sizeof(list));
    for (size_t i = 0; ex && cbor_isa_array(ex) && i < cbor_array_size(ex); i++) {
        const cbor_item_t *e = cbor_array_handle(ex)[i], *xp = s_get(e, "xpath");
        char xpath[64];
        s_copy_str(xp, xpath, sizeof(xpath));
        if (n == 16 || strlen(xpath) != 5 || xpath[0] != '/' || s_get(e, "subset") ||
            s_get(e, "length") || s_get(e, "version") || s_get(e, "flags")) {
            s_status(r, true, "assertion.bmffHash.mismatch",
                     "unsupported BMFF hash exclusion '%s' (only whole top-level boxes)", xpath);
            return;
        }
        memcpy(list[n].type, xpath + 1, 4);
        const cbor_item_t *data = s_get(e, "data");
        if (data) {
            const cbor_item_t *dm = cbor_isa_array(data) && cbor_array_size(data) == 1
                                        ? cbor_array_handle(data)[0] : NULL;
            const cbor_item_t *off = s_get(dm, "offset");
            const uint8_t *v;
            size_t vlen;
            if (!off || !cbor_isa_uint(off) || !s_bytes(s_get(dm, "value"), &v, &vlen) ||
                vlen > sizeof(list[n].data) || cbor_get_int(off) > UINT32_MAX) {
                s_status(r, true, "assertion.bmffHash.mismatch",
                         "unsupported data condition in exclusion '%s'", xpath);
                return;
            }
            list[n].data_off = (uint32_t)cbor_get_int(off);
            memcpy(list[n].data, v, vlen);
            list[n].data_len = vlen;
        }
        n++;
    }
    uint8_t got[32];
    rf_err_t err = {0};
    if (prov_bmff_hash(c->fd, c->path, c->boxes, c->nboxes, list, n, got, &err)) {
        s_status(r, true, "assertion.bmffHash.mismatch", "cannot hash the file: %s", err.msg);
    } else if (memcmp(got, want, 32)) {
        s_status(r, true, "assertion.bmffHash.mismatch",
                 "the file's bytes differ from those signed (media data, metadata or layout "
                 "changed)");
    } else {
        s_status(r, false, "assertion.bmffHash.match", "the file's bytes are those signed");
    }
}

static void s_check_data_hash(s_ctx_t *c, const cbor_item_t *a)
{
    rf_prov_report_t *r = c->r;
    const uint8_t *want;
    size_t want_len;
    const cbor_item_t *ex = s_get(a, "exclusions");
    if (!s_bytes(s_get(a, "hash"), &want, &want_len) || want_len != 32) {
        s_status(r, true, "assertion.dataHash.mismatch", "the data hash has no 32-byte value");
        return;
    }
    /* Exclusions: sorted, non-overlapping {start, length} ranges. */
    uint64_t pos = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    rf_err_t err = {0};
    int rc = !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1;
    for (size_t i = 0; !rc && ex && cbor_isa_array(ex) && i < cbor_array_size(ex); i++) {
        const cbor_item_t *e = cbor_array_handle(ex)[i];
        const cbor_item_t *st = s_get(e, "start"), *ln = s_get(e, "length");
        if (!st || !ln || !cbor_isa_uint(st) || !cbor_isa_uint(ln) || cbor_get_int(st) < pos ||
            cbor_get_int(st) + cbor_get_int(ln) > c->size) {
            rc = 1;
            break;
        }
        rc = prov_sha256_fd(c->fd, pos, cbor_get_int(st) - pos, c->path, ctx, &err);
        pos = cbor_get_int(st) + cbor_get_int(ln);
    }
    uint8_t got[32];
    if (!rc)
        rc = prov_sha256_fd(c->fd, pos, c->size - pos, c->path, ctx, &err);
    if (!rc)
        rc = EVP_DigestFinal_ex(ctx, got, NULL) != 1;
    EVP_MD_CTX_free(ctx);
    if (rc)
        s_status(r, true, "assertion.dataHash.mismatch", "cannot hash the file with its exclusions");
    else if (memcmp(got, want, 32))
        s_status(r, true, "assertion.dataHash.mismatch", "the file's bytes differ from those signed");
    else
        s_status(r, false, "assertion.dataHash.match", "the file's bytes are those signed");
}

static void s_read_assertions(s_ctx_t *c)
{
    rf_prov_report_t *r = c->r;
    const s_jbox_t *a = s_find_assertion(c, "c2pa.actions.v2");
    if (!a)
        a = s_find_assertion(c, "c2pa.actions");
    const uint8_t *data;
    size_t len;
    cbor_item_t *it = a && s_content(a, "cbor", &data, &len) ? s_load(data, len) : NULL;
    const cbor_item_t *acts = s_get(it, "actions");
    const cbor_item_t *first = acts && cbor_isa_array(acts) && cbor_array_size(acts)
                                   ? cbor_array_handle(acts)[0] : NULL;
    if (!first) {
        s_status(r, true, "assertion.action.malformed", "no actions assertion with an action");
    } else {
        char action[64];
        s_copy_str(s_get(first, "action"), action, sizeof(action));
        s_copy_str(s_get(first, "digitalSourceType"), r->digital_source_type,
                   sizeof(r->digital_source_type));
        if (!strcmp(action, "c2pa.created") || !strcmp(action, "c2pa.opened"))
            s_status(r, false, "assertion.action.first", "first action %s, digitalSourceType %s",
                     action, r->digital_source_type[0] ? r->digital_source_type : "(none)");
        else
            s_status(r, true, "assertion.action.malformed",
                     "the first action is '%s', not c2pa.created or c2pa.opened", action);
    }
    if (it)
        cbor_decref(&it);
    const s_jbox_t *rf = s_find_assertion(c, "com.reelfarm.render");
    it = rf && s_content(rf, "cbor", &data, &len) ? s_load(data, len) : NULL;
    s_copy_str(s_get(it, "job_id"), r->job_id, sizeof(r->job_id));
    if (it)
        cbor_decref(&it);
}

/* Checks the active manifest of a manifest store. */
static void s_check_store(s_ctx_t *c, const uint8_t *store, size_t len)
{
    rf_prov_report_t *r = c->r;
    s_jbox_t top, *kids = calloc(S_MAX_JUMBF_CHILDREN, sizeof(*kids));
    cbor_item_t *claim = NULL;
    if (!kids) {
        s_status(r, true, "general.error", "out of memory");
        return;
    }
    int nk;
    if (!s_jumb(store, len, &top) || !s_is_type(&top, "c2pa") || strcmp(top.label, "c2pa") ||
        (nk = s_children(&top, kids, S_MAX_JUMBF_CHILDREN)) < 1) {
        s_status(r, true, "manifest.missing", "no well-formed C2PA manifest store (JUMBF)");
        goto done;
    }
    s_jbox_t m = kids[nk - 1]; /* the active manifest is the last one */
    if (!s_is_type(&m, "c2ma") && !s_is_type(&m, "c2um")) {
        s_status(r, true, "manifest.missing", "the store's last box is no manifest");
        goto done;
    }
    snprintf(r->manifest_label, sizeof(r->manifest_label), "%s", m.label);
    int nm = s_children(&m, kids, S_MAX_JUMBF_CHILDREN);
    const s_jbox_t *as = NULL, *cl = NULL, *sg = NULL;
    s_jbox_t mk[8];
    int nmk = 0;
    for (int i = 0; i < nm && nmk < 8; i++)
        mk[nmk++] = kids[i];
    /* Found by type and standard label (the labels are what readers resolve URIs with). */
    for (int i = 0; i < nmk; i++) {
        if (s_is_type(&mk[i], "c2as") && !strcmp(mk[i].label, "c2pa.assertions"))
            as = &mk[i];
        else if (s_is_type(&mk[i], "c2cl") &&
                 (!strcmp(mk[i].label, "c2pa.claim.v2") || !strcmp(mk[i].label, "c2pa.claim")))
            cl = &mk[i];
        else if (s_is_type(&mk[i], "c2cs") && !strcmp(mk[i].label, "c2pa.signature"))
            sg = &mk[i];
    }
    if (nm < 0 || !as || !cl || !sg) {
        s_status(r, true, "claim.missing", "manifest '%s' lacks its %s", m.label,
                 !as ? "assertion store" : !cl ? "claim" : "signature");
        goto done;
    }
    c->nassertions = s_children(as, c->assertions, S_MAX_JUMBF_CHILDREN);
    if (c->nassertions < 0) {
        s_status(r, true, "assertion.missing", "malformed assertion store");
        goto done;
    }
    const uint8_t *claim_bytes, *sig_bytes;
    size_t claim_len, sig_len;
    if (!s_content(cl, "cbor", &claim_bytes, &claim_len) || !(claim = s_load(claim_bytes, claim_len)) ||
        !cbor_isa_map(claim)) {
        s_status(r, true, "claim.cbor.invalid", "the claim is not valid CBOR");
        goto done;
    }
    const cbor_item_t *gen = s_get(claim, "claim_generator_info");
    if (gen && cbor_isa_array(gen) && cbor_array_size(gen))
        gen = cbor_array_handle(gen)[0];
    s_copy_str(s_get(gen, "name"), r->claim_generator, sizeof(r->claim_generator));
    if (!r->claim_generator[0])
        s_copy_str(s_get(claim, "claim_generator"), r->claim_generator, sizeof(r->claim_generator));
    const cbor_item_t *list = s_get(claim, "created_assertions");
    if (!list)
        list = s_get(claim, "assertions"); /* claim v1 */
    if (!s_get(claim, "instanceID") || !s_get(claim, "signature") || !list ||
        !cbor_isa_array(list)) {
        s_status(r, true, "claim.malformed",
                 "the claim lacks instanceID, signature or its assertion list");
        goto done;
    }
    s_status(r, false, "claim.wellFormed", "manifest '%s', claim by '%s'", m.label,
             r->claim_generator);
    if (!s_content(sg, "cbor", &sig_bytes, &sig_len)) {
        s_status(r, true, "claimSignature.missing", "the signature box is empty");
        goto done;
    }
    s_check_signature(c, sig_bytes, sig_len, claim_bytes, claim_len);

    /* Every hashed URI of the claim. */
    int bindings = 0;
    const s_jbox_t *binding = NULL;
    bool uris_ok = true;
    for (size_t i = 0; i < cbor_array_size(list); i++) {
        const cbor_item_t *h = cbor_array_handle(list)[i];
        char url[256];
        s_copy_str(s_get(h, "url"), url, sizeof(url));
        const char *label = s_url_label(url, m.label);
        const s_jbox_t *a = label ? s_find_assertion(c, label) : NULL;
        const uint8_t *want;
        size_t want_len;
        uint8_t got[32];
        if (!a) {
            s_status(r, true, "assertion.missing", "the claim names '%s', which is not there", url);
            uris_ok = false;
            continue;
        }
        if (!s_bytes(s_get(h, "hash"), &want, &want_len) || want_len != 32 ||
            !EVP_Digest(a->start + 8, a->size - 8, got, NULL, EVP_sha256(), NULL) ||
            memcmp(got, want, 32)) {
            s_status(r, true, "assertion.hashedURI.mismatch",
                     "assertion '%s' differs from what the claim signed", label);
            uris_ok = false;
            continue;
        }
        if (!strncmp(label, "c2pa.hash.bmff", 14) || !strcmp(label, "c2pa.hash.data")) {
            bindings++;
            binding = a;
        }
    }
    if (uris_ok)
        s_status(r, false, "assertion.hashedURI.match", "all %zu assertions match the claim",
                 cbor_array_size(list));
    if (bindings != 1) {
        s_status(r, true, "claim.hardBindings.missing",
                 "%d hard-binding assertions (exactly one required)", bindings);
        goto done;
    }
    const uint8_t *bd;
    size_t bl;
    cbor_item_t *b = s_content(binding, "cbor", &bd, &bl) ? s_load(bd, bl) : NULL;
    if (!b)
        s_status(r, true, "assertion.cbor.invalid", "the hard binding is not valid CBOR");
    else if (!strcmp(binding->label, "c2pa.hash.data"))
        s_check_data_hash(c, b);
    else if (!strcmp(binding->label, "c2pa.hash.bmff.v2") ||
             !strcmp(binding->label, "c2pa.hash.bmff.v3"))
        s_check_bmff_hash(c, b);
    else
        s_status(r, true, "algorithm.unsupported", "hard binding '%s' is not checked (bmff v1)",
                 binding->label);
    if (b)
        cbor_decref(&b);
    s_read_assertions(c);
done:
    if (claim)
        cbor_decref(&claim);
    free(kids);
}

/* Extracts Iptc4xmpExt:DigitalSourceType from an XMP packet (attribute or element form). */
static void s_xmp_source_type(const char *xmp, size_t len, char *out, size_t size)
{
    static const char key[] = "Iptc4xmpExt:DigitalSourceType";
    out[0] = 0;
    const char *end = xmp + len, *p = memmem(xmp, len, key, sizeof(key) - 1);
    if (!p)
        return;
    p += sizeof(key) - 1;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    char close;
    if (p < end && *p == '=') {
        p++;
        if (p >= end || (*p != '"' && *p != '\''))
            return;
        close = *p++;
    } else if (p < end && *p == '>') {
        p++;
        close = '<';
    } else {
        return;
    }
    const char *q = memchr(p, close, (size_t)(end - p));
    if (q)
        snprintf(out, size, "%.*s", (int)(q - p), p);
}

static int s_read_box_body(s_ctx_t *c, const prov_box_t *b, uint8_t **out, size_t *len,
                           size_t max, rf_err_t *err)
{
    if (b->size - b->hdr > max)
        return rf_err_set(err, RF_ETOOBIG, "'%s': box at offset %" PRIu64 " over %zu bytes",
                          c->path, b->off, max);
    *len = (size_t)(b->size - b->hdr);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    return prov_pread_all(c->fd, *out, *len, b->off + b->hdr, c->path, err);
}

static int s_read_file(const char *path, uint8_t **out, size_t *len, rf_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "'%s': cannot open: %s", path,
                          strerror(errno));
    int rc = 0;
    if (fstat(fd, &st) || (uint64_t)st.st_size > PROV_MAX_MANIFEST)
        rc = rf_err_set(err, RF_ETOOBIG, "'%s': unreadable or over %u bytes", path,
                        PROV_MAX_MANIFEST);
    *len = rc ? 0 : (size_t)st.st_size;
    *out = rc ? NULL : malloc(*len ? *len : 1);
    if (!rc && !*out)
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
    if (!rc)
        rc = prov_pread_all(fd, *out, *len, 0, path, err);
    close(fd);
    return rc;
}

int rf_prov_verify_file(const char *path, const char *sidecar_path, const char *trust_pem,
                        rf_prov_report_t *rep, rf_err_t *err)
{
    memset(rep, 0, sizeof(*rep));
    s_ctx_t *c = calloc(1, sizeof(*c));
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    c->r = rep;
    c->path = path;
    c->trust_pem = trust_pem;
    uint8_t *store = NULL;
    size_t store_len = 0;
    int rc = 0;
    c->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (c->fd < 0 || fstat(c->fd, &st)) {
        rc = rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "'%s': cannot open: %s", path,
                        strerror(errno));
        goto done;
    }
    c->size = (uint64_t)st.st_size;
    rf_err_t scan_err = {0};
    c->bmff = prov_bmff_scan(c->fd, c->size, path, &c->boxes, &c->nboxes, &scan_err) == 0 &&
              c->nboxes && !memcmp(c->boxes[0].type, "ftyp", 4);
    int nc2pa = 0;
    for (size_t i = 0; c->bmff && i < c->nboxes; i++) {
        const prov_box_t *b = &c->boxes[i];
        if (memcmp(b->type, "uuid", 4))
            continue;
        if (!memcmp(b->uuid, prov_uuid_c2pa, 16)) {
            if (nc2pa++)
                continue;
            uint8_t *body;
            size_t blen;
            if ((rc = s_read_box_body(c, b, &body, &blen, PROV_MAX_MANIFEST, err)))
                goto done;
            /* FullBox header, box_purpose C string, then (for "manifest") an 8-byte offset. */
            const uint8_t *nul = blen > 4 ? memchr(body + 4, 0, blen - 4) : NULL;
            if (nul && !memcmp(body, "\0\0\0\0", 4) && /* FullBox version 0, flags 0 */
                !strcmp((const char *)body + 4, "manifest") &&
                (size_t)(nul + 1 + 8 - body) <= blen) {
                size_t at = (size_t)(nul + 1 + 8 - body);
                store = malloc(blen - at + 1);
                if (store) {
                    memcpy(store, body + at, blen - at);
                    store_len = blen - at;
                }
                rep->embedded = true;
            } else {
                s_status(rep, true, "manifest.missing",
                         "the C2PA box at offset %" PRIu64 " holds no manifest", b->off);
            }
            free(body);
        } else if (!memcmp(b->uuid, prov_uuid_xmp, 16) && !rep->xmp_found) {
            uint8_t *body;
            size_t blen;
            if (!s_read_box_body(c, b, &body, &blen, PROV_MAX_XMP, err)) {
                rep->xmp_found = true;
                s_xmp_source_type((const char *)body, blen, rep->xmp_source_type,
                                  sizeof(rep->xmp_source_type));
                free(body);
            }
            rf_err_clear(err);
        }
    }
    if (nc2pa > 1)
        s_status(rep, true, "manifest.multipleParents",
                 "%d C2PA boxes in the file (exactly one allowed)", nc2pa);
    if (!store && !s_failed(rep)) {
        char side[S_PATH_MAX];
        const char *sp = sidecar_path;
        if (!sp && !rf_prov_sidecar_path(path, side, sizeof(side)))
            sp = side;
        if (sp && !access(sp, F_OK)) {
            if ((rc = s_read_file(sp, &store, &store_len, err)))
                goto done;
            s_status(rep, false, "manifest.sidecar", "manifest read from the sidecar '%s'", sp);
        }
    }
    if (store)
        s_check_store(c, store, store_len);
    if (!store && !rep->nstatus) {
        rep->verdict = RF_PROV_NONE;
        goto done;
    }
    if (rep->xmp_found && rep->digital_source_type[0]) {
        rep->xmp_agrees = !strcmp(rep->xmp_source_type, rep->digital_source_type);
        s_status(rep, false, rep->xmp_agrees ? "xmp.agrees" : "xmp.differs",
                 "XMP DigitalSourceType '%s'%s", rep->xmp_source_type,
                 rep->xmp_agrees ? " equals the manifest's" : " differs from the manifest's");
    }
    if (s_failed(rep))
        rep->verdict = RF_PROV_TAMPERED;
    else {
        rep->verdict = RF_PROV_UNTRUSTED;
        for (int i = 0; i < rep->nstatus; i++)
            if (!strcmp(rep->status[i].code, "signingCredential.trusted"))
                rep->verdict = RF_PROV_TRUSTED;
    }
done:
    if (c->fd >= 0)
        close(c->fd);
    free(c->boxes);
    free(c);
    free(store);
    return rc;
}
