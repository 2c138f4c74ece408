/* manifest.c - the C2PA manifest store: JUMBF superboxes, the assertions, the claim v2 (CBOR) and
 * its COSE_Sign1 signature (C2PA 2.x §11-§14, notes provenance.md §1).
 *
 * Layout (every superbox is a "jumb" whose first child is a "jumd" description: type UUID,
 * toggles 0x03 = requestable + label, the label):
 *
 *   c2pa (manifest store)
 *     urn:c2pa:<uuid> (c2ma, the manifest)
 *       c2pa.assertions (c2as): one cbor superbox per assertion
 *       c2pa.claim.v2 (c2cl): cbor box holding the claim
 *       c2pa.signature (c2cs): cbor box holding the COSE_Sign1_Tagged
 *
 * A claim's hashed URI to an assertion carries the SHA-256 of the assertion superbox's contents
 * (its jumd and cbor boxes, without the jumb header). The COSE signature has a detached payload:
 * the claim's CBOR bytes.
 */
#include <cbor.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "prov_internal.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif

/* C2PA JUMBF type UUIDs: a four-character code then 0011-0010-8000-00AA00389B71. */
static void s_jumbf_uuid(uint8_t out[16], const char fourcc[4])
{
    static const uint8_t tail[12] = {0x00, 0x11, 0x00, 0x10, 0x80, 0x00,
                                     0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    memcpy(out, fourcc, 4);
    memcpy(out + 4, tail, 12);
}

static void s_jumd(prov_buf_t *b, const char fourcc[4], const char *label)
{
    uint8_t uuid[16];
    s_jumbf_uuid(uuid, fourcc);
    size_t start = prov_box_begin(b, "jumd");
    prov_buf_put(b, uuid, 16);
    prov_buf_u8(b, 0x03);
    prov_buf_put(b, label, strlen(label) + 1);
    prov_box_end(b, start);
}

void prov_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = 0;
}

void prov_uuid_v4(char out[37])
{
    uint8_t r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        memset(r, 0, sizeof(r)); /* only an id; the claim stays valid */
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    char hex[33];
    prov_hex(r, 16, hex);
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

/* ---- CBOR building with one sticky failure flag ---------------------------------------------- */

typedef struct s_cb {
    bool fail;
} s_cb_t;

static cbor_item_t *s_str(s_cb_t *cb, const char *s)
{
    cbor_item_t *it = cbor_build_string(s ? s : "");
    if (!it)
        cb->fail = true;
    return it;
}

static cbor_item_t *s_bytes(s_cb_t *cb, const uint8_t *p, size_t n)
{
    cbor_item_t *it = cbor_build_bytestring(p, n);
    if (!it)
        cb->fail = true;
    return it;
}

static cbor_item_t *s_uint(s_cb_t *cb, uint64_t v)
{
    /* The shortest encoding, as deterministic CBOR wants. */
    cbor_item_t *it = v <= UINT8_MAX    ? cbor_build_uint8((uint8_t)v)
                      : v <= UINT16_MAX ? cbor_build_uint16((uint16_t)v)
                      : v <= UINT32_MAX ? cbor_build_uint32((uint32_t)v)
                                        : cbor_build_uint64(v);
    if (!it)
        cb->fail = true;
    return it;
}

static cbor_item_t *s_map(s_cb_t *cb, size_t n)
{
    cbor_item_t *it = cbor_new_definite_map(n);
    if (!it)
        cb->fail = true;
    return it;
}

static cbor_item_t *s_array(s_cb_t *cb, size_t n)
{
    cbor_item_t *it = cbor_new_definite_array(n);
    if (!it)
        cb->fail = true;
    return it;
}

/* Adds key: value to map, taking the caller's reference to value. */
static void s_put(s_cb_t *cb, cbor_item_t *map, const char *key, cbor_item_t *value)
{
    cbor_item_t *k = s_str(cb, key);
    if (map && k && value && cbor_map_add(map, (struct cbor_pair){.key = k, .value = value})) {
        cbor_decref(&k);
        cbor_decref(&value);
        return;
    }
    cb->fail = true;
    if (k)
        cbor_decref(&k);
    if (value)
        cbor_decref(&value);
}

static void s_push(s_cb_t *cb, cbor_item_t *array, cbor_item_t *value)
{
    if (array && value && cbor_array_push(array, value)) {
        cbor_decref(&value);
        return;
    }
    cb->fail = true;
    if (value)
        cbor_decref(&value);
}

/* Serializes and drops item; NULL on failure. */
static uint8_t *s_serialize(s_cb_t *cb, cbor_item_t *item, size_t *len)
{
    uint8_t *buf = NULL;
    size_t cap = 0;
    *len = 0;
    if (item && !cb->fail)
        *len = cbor_serialize_alloc(item, &buf, &cap);
    if (item)
        cbor_decref(&item);
    if (!*len) {
        free(buf);
        cb->fail = true;
        return NULL;
    }
    return buf;
}

/* ---- assertions ------------------------------------------------------------------------------ */

typedef struct s_assertion {
    char label[64];
    uint8_t hash[32];
} s_assertion_t;

#define S_MAX_ASSERTIONS 8

typedef struct s_store {
    prov_buf_t *b;
    s_assertion_t a[S_MAX_ASSERTIONS];
    int n;
} s_store_t;

/* Appends an assertion superbox holding the CBOR of item; records its hashed URI. */
static void s_assertion(s_cb_t *cb, s_store_t *st, const char *label, cbor_item_t *item)
{
    size_t len;
    uint8_t *cbor = s_serialize(cb, item, &len);
    if (!cbor || st->n == S_MAX_ASSERTIONS) {
        free(cbor);
        cb->fail = true;
        return;
    }
    size_t start = prov_box_begin(st->b, "jumb");
    s_jumd(st->b, "cbor", label);
    size_t c = prov_box_begin(st->b, "cbor");
    prov_buf_put(st->b, cbor, len);
    prov_box_end(st->b, c);
    prov_box_end(st->b, start);
    free(cbor);
    if (st->b->oom)
        return;
    s_assertion_t *a = &st->a[st->n++];
    snprintf(a->label, sizeof(a->label), "%s", label);
    EVP_Digest(st->b->p + start + 8, st->b->len - start - 8, a->hash, NULL, EVP_sha256(), NULL);
}

static cbor_item_t *s_hashed_uri(s_cb_t *cb, const s_assertion_t *a)
{
    char url[128];
    snprintf(url, sizeof(url), "self#jumbf=c2pa.assertions/%s", a->label);
    cbor_item_t *m = s_map(cb, 2);
    s_put(cb, m, "url", s_str(cb, url));
    s_put(cb, m, "hash", s_bytes(cb, a->hash, 32));
    return m;
}

static cbor_item_t *s_generator(s_cb_t *cb)
{
    cbor_item_t *g = s_map(cb, 2);
    s_put(cb, g, "name", s_str(cb, "reelfarm"));
    s_put(cb, g, "version", s_str(cb, RF_VERSION));
    return g;
}

static const char *s_basename(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static void s_ingredient(s_cb_t *cb, s_store_t *st, const prov_manifest_in_t *in)
{
    cbor_item_t *m = s_map(cb, 4);
    s_put(cb, m, "dc:title", s_str(cb, in->source_title));
    s_put(cb, m, "dc:format", s_str(cb, in->source_format));
    /* A de-novo generation takes its source as an input; an altered recording is a component. */
    s_put(cb, m, "relationship", s_str(cb, in->job->altered_footage ? "componentOf" : "inputTo"));
    s_assertion(cb, st, "c2pa.ingredient.v3", m);
}

static void s_actions(s_cb_t *cb, s_store_t *st, const prov_manifest_in_t *in,
                      const s_assertion_t *ingredient)
{
    cbor_item_t *act = s_map(cb, 6);
    s_put(cb, act, "action", s_str(cb, "c2pa.created"));
    s_put(cb, act, "digitalSourceType", s_str(cb, in->source_type));
    s_put(cb, act, "softwareAgent", s_generator(cb));
    s_put(cb, act, "when", s_str(cb, in->when));
    s_put(cb, act, "description",
          s_str(cb, in->job->altered_footage ? "recorded footage altered by AI models"
                                             : "video generated by AI models"));
    if (ingredient) {
        cbor_item_t *params = s_map(cb, 1), *list = s_array(cb, 1);
        s_push(cb, list, s_hashed_uri(cb, ingredient));
        s_put(cb, params, "ingredients", list);
        s_put(cb, act, "parameters", params);
    }
    cbor_item_t *actions = s_array(cb, 1);
    s_push(cb, actions, act);
    cbor_item_t *m = s_map(cb, 1);
    s_put(cb, m, "actions", actions);
    s_assertion(cb, st, "c2pa.actions.v2", m);
}

static void s_render(s_cb_t *cb, s_store_t *st, const prov_manifest_in_t *in)
{
    const rf_prov_job_t *j = in->job;
    char hex[65];
    cbor_item_t *m = s_map(cb, 10);
    s_put(cb, m, "job_id", s_str(cb, j->job_id));
    prov_hex(in->spec_sha, 32, hex);
    s_put(cb, m, "spec_sha256", s_str(cb, hex));
    s_put(cb, m, "pipeline", s_str(cb, j->pipeline));
    cbor_item_t *models = s_array(cb, j->nmodels ? j->nmodels : 1);
    for (size_t i = 0; i < j->nmodels; i++) {
        cbor_item_t *mm = s_map(cb, 2);
        s_put(cb, mm, "file", s_str(cb, s_basename(j->models[i])));
        if (in->model_ok[i])
            prov_hex(in->model_sha[i], 32, hex);
        else
            snprintf(hex, sizeof(hex), "unreadable by the signer");
        s_put(cb, mm, "sha256", s_str(cb, hex));
        s_push(cb, models, mm);
    }
    s_put(cb, m, "models", models);
    s_put(cb, m, "seed", s_uint(cb, j->seed));
    cbor_item_t *subjects = s_array(cb, j->nsubjects ? j->nsubjects : 1);
    for (size_t i = 0; i < j->nsubjects; i++) {
        const rf_prov_subject_t *s = &j->subjects[i];
        /* No names in the file: the hash ties the output to the farm's consent record. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t d[32];
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, s->name ? s->name : "", strlen(s->name ? s->name : "") + 1) != 1 ||
            EVP_DigestUpdate(ctx, s->basis ? s->basis : "", strlen(s->basis ? s->basis : "") + 1) != 1 ||
            EVP_DigestUpdate(ctx, s->release ? s->release : "", strlen(s->release ? s->release : "")) != 1 ||
            EVP_DigestFinal_ex(ctx, d, NULL) != 1)
            cb->fail = true;
        EVP_MD_CTX_free(ctx);
        prov_hex(d, 32, hex);
        cbor_item_t *sm = s_map(cb, 2);
        s_put(cb, sm, "basis", s_str(cb, s->basis));
        s_put(cb, sm, "record_sha256", s_str(cb, hex));
        s_push(cb, subjects, sm);
    }
    s_put(cb, m, "subjects", subjects);
    if (in->have_source) {
        prov_hex(in->source_sha, 32, hex);
        s_put(cb, m, "input_sha256", s_str(cb, hex));
    }
    s_put(cb, m, "disclosure", s_str(cb, RF_PROV_DISCLOSURE));
    s_assertion(cb, st, "com.reelfarm.render", m);
}

static void s_hard_binding(s_cb_t *cb, s_store_t *st, const prov_manifest_in_t *in)
{
    cbor_item_t *m = s_map(cb, 5);
    if (in->bmff) {
        /* The exclusions C2PA A.5.6 requires: the manifest box itself, ftyp, mfra. */
        cbor_item_t *ex = s_array(cb, 3);
        cbor_item_t *e = s_map(cb, 2), *data = s_array(cb, 1), *dm = s_map(cb, 2);
        s_put(cb, e, "xpath", s_str(cb, "/uuid"));
        s_put(cb, dm, "offset", s_uint(cb, 8));
        s_put(cb, dm, "value", s_bytes(cb, prov_uuid_c2pa, 16));
        s_push(cb, data, dm);
        s_put(cb, e, "data", data);
        s_push(cb, ex, e);
        e = s_map(cb, 1);
        s_put(cb, e, "xpath", s_str(cb, "/ftyp"));
        s_push(cb, ex, e);
        e = s_map(cb, 1);
        s_put(cb, e, "xpath", s_str(cb, "/mfra"));
        s_push(cb, ex, e);
        s_put(cb, m, "exclusions", ex);
        s_put(cb, m, "alg", s_str(cb, "sha256"));
        s_put(cb, m, "hash", s_bytes(cb, in->hash, 32));
        s_put(cb, m, "name", s_str(cb, "jumbf manifest"));
        s_assertion(cb, st, "c2pa.hash.bmff.v3", m);
    } else {
        s_put(cb, m, "exclusions", s_array(cb, 0));
        s_put(cb, m, "name", s_str(cb, "whole file (manifest in a sidecar)"));
        s_put(cb, m, "alg", s_str(cb, "sha256"));
        s_put(cb, m, "hash", s_bytes(cb, in->hash, 32));
        s_put(cb, m, "pad", s_bytes(cb, (const uint8_t *)"", 0));
        s_assertion(cb, st, "c2pa.hash.data", m);
    }
}

/* ---- claim and signature --------------------------------------------------------------------- */

static uint8_t *s_claim(s_cb_t *cb, const s_store_t *st, const prov_manifest_in_t *in, size_t *len)
{
    cbor_item_t *c = s_map(cb, 6);
    s_put(cb, c, "instanceID", s_str(cb, in->instance_id));
    s_put(cb, c, "dc:title", s_str(cb, in->job->job_name ? in->job->job_name : "reelfarm output"));
    s_put(cb, c, "claim_generator_info", s_generator(cb));
    s_put(cb, c, "signature", s_str(cb, "self#jumbf=c2pa.signature"));
    cbor_item_t *list = s_array(cb, (size_t)st->n);
    for (int i = 0; i < st->n; i++)
        s_push(cb, list, s_hashed_uri(cb, &st->a[i]));
    s_put(cb, c, "created_assertions", list);
    s_put(cb, c, "alg", s_str(cb, "sha256"));
    return s_serialize(cb, c, len);
}

static cbor_item_t *s_cert_bytes(s_cb_t *cb, X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    if (n <= 0) {
        cb->fail = true;
        return NULL;
    }
    cbor_item_t *it = s_bytes(cb, der, (size_t)n);
    OPENSSL_free(der);
    return it;
}

/* COSE_Sign1_Tagged with a detached payload (C2PA §13.2): tag 18 [protected, {}, null, sig]. */
static uint8_t *s_cose(s_cb_t *cb, const rf_prov_signer_t *s, const uint8_t *claim,
                       size_t claim_len, size_t *len, rf_err_t *err)
{
    cbor_item_t *ph = cbor_new_definite_map(2);
    cbor_item_t *k1 = cbor_build_uint8(1), *alg = cbor_build_negint8((uint8_t)(-1 - s->alg));
    cbor_item_t *k33 = cbor_build_uint8(33), *x5;
    int nchain = sk_X509_num(s->chain);
    if (nchain == 0) {
        x5 = s_cert_bytes(cb, s->leaf);
    } else {
        x5 = s_array(cb, (size_t)nchain + 1);
        s_push(cb, x5, s_cert_bytes(cb, s->leaf));
        for (int i = 0; i < nchain; i++)
            s_push(cb, x5, s_cert_bytes(cb, sk_X509_value(s->chain, i)));
    }
    if (!ph || !k1 || !alg || !k33 || !x5 ||
        !cbor_map_add(ph, (struct cbor_pair){.key = k1, .value = alg}) ||
        !cbor_map_add(ph, (struct cbor_pair){.key = k33, .value = x5}))
        cb->fail = true;
    cbor_item_t *items[] = {k1, alg, k33, x5};
    for (size_t i = 0; i < 4; i++)
        if (items[i])
            cbor_decref(&items[i]);
    size_t plen;
    uint8_t *prot = s_serialize(cb, ph, &plen);
    if (!prot)
        return NULL;
    /* Sig_structure = ["Signature1", protected, external_aad = h'', payload] (RFC 9052 §4.4). */
    cbor_item_t *tbs = s_array(cb, 4);
    s_push(cb, tbs, s_str(cb, "Signature1"));
    s_push(cb, tbs, s_bytes(cb, prot, plen));
    s_push(cb, tbs, s_bytes(cb, (const uint8_t *)"", 0));
    s_push(cb, tbs, s_bytes(cb, claim, claim_len));
    size_t tlen;
    uint8_t *tbs_bytes = s_serialize(cb, tbs, &tlen);
    uint8_t sig[64];
    if (!tbs_bytes || prov_sign(s, tbs_bytes, tlen, sig, err)) {
        free(tbs_bytes);
        free(prot);
        cb->fail = true;
        return NULL;
    }
    free(tbs_bytes);
    cbor_item_t *arr = s_array(cb, 4);
    s_push(cb, arr, s_bytes(cb, prot, plen));
    s_push(cb, arr, s_map(cb, 0));
    cbor_item_t *null = cbor_new_null();
    if (!null)
        cb->fail = true;
    s_push(cb, arr, null);
    s_push(cb, arr, s_bytes(cb, sig, 64));
    free(prot);
    cbor_item_t *tagged = arr ? cbor_build_tag(18, arr) : NULL;
    if (arr)
        cbor_decref(&arr);
    if (!tagged)
        cb->fail = true;
    return s_serialize(cb, tagged, len);
}

int prov_manifest_build(const rf_prov_signer_t *s, const prov_manifest_in_t *in, prov_buf_t *out,
                        rf_err_t *err)
{
    s_cb_t cb = {0};
    size_t store = prov_box_begin(out, "jumb");
    s_jumd(out, "c2pa", "c2pa");
    size_t manifest = prov_box_begin(out, "jumb");
    s_jumd(out, "c2ma", in->manifest_label);
    size_t as = prov_box_begin(out, "jumb");
    s_jumd(out, "c2as", "c2pa.assertions");
    s_store_t st = {.b = out};
    const s_assertion_t *ingredient = NULL;
    if (in->have_source) {
        s_ingredient(&cb, &st, in);
        if (st.n)
            ingredient = &st.a[st.n - 1];
    }
    s_actions(&cb, &st, in, ingredient);
    s_render(&cb, &st, in);
    s_hard_binding(&cb, &st, in);
    prov_box_end(out, as);

    size_t claim_len = 0, cose_len = 0;
    uint8_t *claim = s_claim(&cb, &st, in, &claim_len);
    size_t c = prov_box_begin(out, "jumb");
    s_jumd(out, "c2cl", "c2pa.claim.v2");
    size_t cc = prov_box_begin(out, "cbor");
    prov_buf_put(out, claim, claim_len);
    prov_box_end(out, cc);
    prov_box_end(out, c);

    rf_err_t serr = {0};
    uint8_t *cose = claim ? s_cose(&cb, s, claim, claim_len, &cose_len, &serr) : NULL;
    size_t sg = prov_box_begin(out, "jumb");
    s_jumd(out, "c2cs", "c2pa.signature");
    size_t sc = prov_box_begin(out, "cbor");
    prov_buf_put(out, cose, cose_len);
    prov_box_end(out, sc);
    prov_box_end(out, sg);
    prov_box_end(out, manifest);
    prov_box_end(out, store);
    free(claim);
    free(cose);
    if (serr.code)
        return rf_err_set(err, serr.code, "%s", serr.msg);
    if (cb.fail || out->oom)
        return rf_err_set(err, RF_ENOMEM, "out of memory building the C2PA manifest");
    return 0;
}
