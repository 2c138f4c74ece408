/* keys.c - the farm's signing keys: a farm CA and a signing certificate with the profile C2PA
 * validators accept (notes provenance.md, appendix), loading them, and COSE signatures.
 *
 * Why our own CA: the C2PA trust list admits CAs by application; until the farm has such a
 * certificate its manifests show as "valid, unknown signer" in public viewers and as trusted
 * where the farm CA is configured as a trust anchor (`reelfarm verify --trust ca.pem`).
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prov_internal.h"

#define S_PATH_MAX 4096
#define S_CA_DAYS (10 * 365)
#define S_SIGNER_DAYS (2 * 365)
/* c2pa-kp-claimSigning, then id-kp-documentSigning for validators that predate the C2PA EKU. */
#define S_SIGNER_EKU "1.3.6.1.4.1.62558.2.1,1.3.6.1.5.5.7.3.36"

static const char *s_ssl_error(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "no detail from OpenSSL";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

/* ---- loading --------------------------------------------------------------------------------- */

static int s_read_pem_certs(const char *path, STACK_OF(X509) *into, rf_err_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "'%s': cannot open: %s", path,
                          strerror(errno));
    int n = 0;
    X509 *c;
    while ((c = PEM_read_X509(f, NULL, NULL, NULL))) {
        if (!sk_X509_push(into, c)) {
            X509_free(c);
            fclose(f);
            return rf_err_set(err, RF_ENOMEM, "out of memory reading '%s'", path);
        }
        n++;
    }
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    fclose(f);
    if (!n)
        return rf_err_set(err, RF_EINVAL, "'%s': no PEM certificate in it", path);
    return 0;
}

void rf_prov_signer_destroy(rf_prov_signer_t **signer)
{
    if (!signer || !*signer)
        return;
    rf_prov_signer_t *s = *signer;
    EVP_PKEY_free(s->key);
    X509_free(s->leaf);
    sk_X509_pop_free(s->chain, X509_free);
    free(s);
    *signer = NULL;
}

static bool s_self_signed(X509 *c)
{
    return X509_check_issued(c, c) == X509_V_OK;
}

int rf_prov_signer_load(const char *key_path, const char *cert_path, const char *chain_path,
                        rf_prov_signer_t **out, rf_err_t *err)
{
    *out = NULL;
    rf_prov_signer_t *s = calloc(1, sizeof(*s));
    STACK_OF(X509) *certs = sk_X509_new_null();
    int rc = 0;
    if (!s || !certs) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory loading the signing key");
        goto done;
    }
    FILE *f = fopen(key_path, "r");
    if (!f) {
        rc = rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO,
                        "signing key '%s': cannot open: %s", key_path, strerror(errno));
        goto done;
    }
    s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!s->key) {
        rc = rf_err_set(err, RF_EINVAL, "signing key '%s': not a PEM private key (%s)", key_path,
                        s_ssl_error());
        goto done;
    }
    if (EVP_PKEY_is_a(s->key, "ED25519")) {
        s->alg = PROV_COSE_EDDSA;
    } else if (EVP_PKEY_is_a(s->key, "EC")) {
        char group[64] = "";
        EVP_PKEY_get_utf8_string_param(s->key, "group", group, sizeof(group), NULL);
        if (strcmp(group, "prime256v1") && strcmp(group, "P-256")) {
            rc = rf_err_set(err, RF_EINVAL,
                            "signing key '%s': EC curve '%s'; C2PA ES256 needs P-256", key_path,
                            group);
            goto done;
        }
        s->alg = PROV_COSE_ES256;
    } else {
        rc = rf_err_set(err, RF_EINVAL,
                        "signing key '%s': neither an EC P-256 nor an Ed25519 key", key_path);
        goto done;
    }
    if ((rc = s_read_pem_certs(cert_path, certs, err)))
        goto done;
    if (chain_path && *chain_path && (rc = s_read_pem_certs(chain_path, certs, err)))
        goto done;
    s->leaf = sk_X509_shift(certs);
    if (X509_check_private_key(s->leaf, s->key) != 1) {
        rc = rf_err_set(err, RF_EINVAL,
                        "signing certificate '%s' does not belong to the key '%s'", cert_path,
                        key_path);
        goto done;
    }
    if (s_self_signed(s->leaf)) {
        rc = rf_err_set(err, RF_EINVAL,
                        "signing certificate '%s' is self-signed; C2PA validators reject that "
                        "(make one with `reelfarm keygen --ca DIR`)", cert_path);
        goto done;
    }
    s->chain = sk_X509_new_null();
    if (!s->chain) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto done;
    }
    /* x5chain: the issuer path from the leaf up, without the self-signed root; certificates of
     * the files that are not on the path (an old leaf in a chain file) are left out. */
    for (X509 *cur = s->leaf; sk_X509_num(s->chain) < 8;) {
        X509 *issuer = NULL;
        for (int i = 0; i < sk_X509_num(certs) && !issuer; i++) {
            X509 *c = sk_X509_value(certs, i);
            if (X509_cmp(c, cur) && X509_check_issued(c, cur) == X509_V_OK)
                issuer = c;
        }
        if (!issuer || s_self_signed(issuer))
            break;
        (void)sk_X509_delete_ptr(certs, issuer);
        if (!sk_X509_push(s->chain, issuer)) {
            X509_free(issuer);
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto done;
        }
        cur = issuer;
    }
    *out = s;
    s = NULL;
done:
    sk_X509_pop_free(certs, X509_free);
    rf_prov_signer_destroy(&s);
    return rc;
}

/* ---- signatures ------------------------------------------------------------------------------ */

int prov_sign(const rf_prov_signer_t *s, const uint8_t *data, size_t len, uint8_t sig[64],
              rf_err_t *err)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    uint8_t der[128];
    size_t derlen = sizeof(der);
    int rc = 0;
    const EVP_MD *md = s->alg == PROV_COSE_ES256 ? EVP_sha256() : NULL;
    if (!ctx || EVP_DigestSignInit(ctx, NULL, md, NULL, s->key) != 1 ||
        EVP_DigestSign(ctx, der, &derlen, data, len) != 1) {
        rc = rf_err_set(err, RF_EIO, "signing the claim failed: %s", s_ssl_error());
        goto done;
    }
    if (s->alg == PROV_COSE_EDDSA) {
        if (derlen != 64) {
            rc = rf_err_set(err, RF_EIO, "Ed25519 signature of %zu bytes", derlen);
            goto done;
        }
        memcpy(sig, der, 64);
        goto done;
    }
    /* COSE wants ECDSA signatures as r||s, each padded to the curve size (RFC 9053 §2.1). */
    const uint8_t *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
    if (!es) {
        rc = rf_err_set(err, RF_EIO, "cannot decode the ECDSA signature");
        goto done;
    }
    const BIGNUM *r, *sv;
    ECDSA_SIG_get0(es, &r, &sv);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(sv, sig + 32, 32) != 32)
        rc = rf_err_set(err, RF_EIO, "ECDSA signature values too large");
    ECDSA_SIG_free(es);
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

bool prov_verify_sig(X509 *cert, int alg, const uint8_t *data, size_t len, const uint8_t *sig,
                     size_t siglen)
{
    EVP_PKEY *key = X509_get0_pubkey(cert);
    if (!key || siglen != 64)
        return false;
    uint8_t der[128];
    size_t derlen = 64;
    const uint8_t *use = sig;
    if (alg == PROV_COSE_ES256) {
        if (!EVP_PKEY_is_a(key, "EC"))
            return false;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
        if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            return false;
        }
        uint8_t *p = der;
        int n = i2d_ECDSA_SIG(es, &p);
        ECDSA_SIG_free(es);
        if (n <= 0)
            return false;
        derlen = (size_t)n;
        use = der;
    } else if (alg != PROV_COSE_EDDSA || !EVP_PKEY_is_a(key, "ED25519")) {
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx &&
              EVP_DigestVerifyInit(ctx, NULL, alg == PROV_COSE_ES256 ? EVP_sha256() : NULL, NULL,
                                   key) == 1 &&
              EVP_DigestVerify(ctx, use, derlen, data, len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* ---- key generation -------------------------------------------------------------------------- */

static int s_write_file(const char *dir, const char *name, mode_t mode, int (*emit)(FILE *, void *),
                        void *arg, rf_err_t *err)
{
    char path[S_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return rf_err_set(err, RF_EIO, "'%s': cannot create: %s", path, strerror(errno));
    fchmod(fd, mode); /* O_CREAT's mode is masked by the umask and ignored for existing files */
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return rf_err_set(err, RF_EIO, "'%s': cannot write", path);
    }
    int ok = emit(f, arg);
    if (fflush(f) || fsync(fileno(f)))
        ok = 0;
    if (fclose(f))
        ok = 0;
    if (!ok)
        return rf_err_set(err, RF_EIO, "'%s': write failed (%s)", path, s_ssl_error());
    return 0;
}

static int s_emit_key(FILE *f, void *key)
{
    return PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
}

static int s_emit_cert(FILE *f, void *cert) { return PEM_write_X509(f, cert); }

typedef struct s_pair {
    X509 *a, *b;
} s_pair_t;

static int s_emit_chain(FILE *f, void *arg)
{
    s_pair_t *p = arg;
    return PEM_write_X509(f, p->a) && PEM_write_X509(f, p->b);
}

static bool s_add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

/* A v3 certificate for key, with a random 127-bit serial, valid from an hour ago (clock skew) for
 * days. issuer NULL: self-signed. */
static X509 *s_make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const char *org,
                         const char *cn, int days)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();
    BIGNUM *serial = BN_new();
    bool ok = c && name && serial;
    uint8_t rnd[16];
    ok = ok && RAND_bytes(rnd, sizeof(rnd)) == 1;
    if (ok) {
        rnd[0] &= 0x7f;
        ok = BN_bin2bn(rnd, sizeof(rnd), serial) && BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(c));
    }
    ok = ok && X509_set_version(c, X509_VERSION_3) == 1;
    ok = ok && X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const uint8_t *)"US", -1, -1, 0);
    ok = ok && X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const uint8_t *)org, -1, -1, 0);
    ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)cn, -1, -1, 0);
    ok = ok && X509_set_subject_name(c, name) == 1;
    ok = ok && X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name) == 1;
    ok = ok && X509_gmtime_adj(X509_getm_notBefore(c), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(c), (long)days * 86400);
    ok = ok && X509_set_pubkey(c, key) == 1;
    X509 *iss = issuer ? issuer : c;
    if (ok && !issuer) {
        ok = s_add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") &&
             s_add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             s_add_ext(c, iss, NID_subject_key_identifier, "hash") &&
             s_add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
    } else if (ok) {
        ok = s_add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") &&
             s_add_ext(c, iss, NID_key_usage, "critical,digitalSignature") &&
             s_add_ext(c, iss, NID_ext_key_usage, S_SIGNER_EKU) &&
             s_add_ext(c, iss, NID_subject_key_identifier, "hash") &&
             s_add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
    }
    ok = ok && X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    BN_free(serial);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* mkdir -p with mode 0700 for what it creates. */
static int s_mkdirs(const char *dir, rf_err_t *err)
{
    char p[S_PATH_MAX];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p))
        return rf_err_set(err, RF_EINVAL, "key folder path too long");
    for (char *c = p + 1; ; c++) {
        if (*c != '/' && *c)
            continue;
        char keep = *c;
        *c = 0;
        if (mkdir(p, 0700) && errno != EEXIST)
            return rf_err_set(err, RF_EIO, "'%s': cannot create the folder: %s", p,
                              strerror(errno));
        *c = keep;
        if (!keep)
            break;
    }
    return 0;
}

/* Holds DIR/.keygen.lock: two processes starting at once (parallel renders) must not both make
 * a CA and mix their files. Returns the locked fd or -1. */
static int s_lock(const char *dir, rf_err_t *err)
{
    char path[S_PATH_MAX];
    snprintf(path, sizeof(path), "%s/.keygen.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        rf_err_set(err, RF_EIO, "'%s': cannot create: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX)) {
        rf_err_set(err, RF_EIO, "'%s': cannot lock: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int s_keygen_locked(const char *dir, const char *org, rf_err_t *err)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *sign_key = EVP_EC_gen("P-256");
    char cn[256];
    snprintf(cn, sizeof(cn), "%s farm CA", org);
    X509 *ca = ca_key ? s_make_cert(ca_key, NULL, NULL, org, cn, S_CA_DAYS) : NULL;
    snprintf(cn, sizeof(cn), "%s C2PA signer", org);
    X509 *leaf = ca && sign_key ? s_make_cert(sign_key, ca, ca_key, org, cn, S_SIGNER_DAYS) : NULL;
    int rc = 0;
    if (!leaf) {
        rc = rf_err_set(err, RF_EIO, "cannot make the farm CA and signing certificate: %s",
                        s_ssl_error());
    } else {
        s_pair_t chain = {leaf, ca};
        /* Certificates first, the CA key last: its presence marks a finished folder. */
        if (!(rc = s_write_file(dir, "signer.key", 0600, s_emit_key, sign_key, err)) &&
            !(rc = s_write_file(dir, "signer.pem", 0644, s_emit_cert, leaf, err)) &&
            !(rc = s_write_file(dir, "ca.pem", 0644, s_emit_cert, ca, err)) &&
            !(rc = s_write_file(dir, "chain.pem", 0644, s_emit_chain, &chain, err)))
            rc = s_write_file(dir, "ca.key", 0600, s_emit_key, ca_key, err);
    }
    X509_free(ca);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(sign_key);
    return rc;
}

static int s_keygen(const char *dir, const char *org, bool existing_ok, bool *created,
                    rf_err_t *err)
{
    if (!org || !*org)
        org = "reelfarm";
    char path[S_PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/ca.key", dir) >= (int)sizeof(path))
        return rf_err_set(err, RF_EINVAL, "key folder path too long");
    int rc = s_mkdirs(dir, err);
    if (rc)
        return rc;
    int lock = s_lock(dir, err);
    if (lock < 0)
        return err ? err->code : RF_EIO;
    if (!access(path, F_OK)) {
        if (!existing_ok)
            rc = rf_err_set(err, RF_EEXIST,
                            "'%s' exists: refusing to replace a farm CA (files signed with it "
                            "would no longer verify as trusted); choose another folder", path);
    } else {
        rc = s_keygen_locked(dir, org, err);
        if (!rc)
            *created = true;
    }
    close(lock);
    return rc;
}

int rf_prov_keygen_ca(const char *dir, const char *org, rf_err_t *err)
{
    bool created = false;
    return s_keygen(dir, org, false, &created, err);
}

int rf_prov_ensure_keys(const char *dir, bool *created, rf_err_t *err)
{
    *created = false;
    return s_keygen(dir, NULL, true, created, err);
}
