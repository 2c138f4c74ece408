/* test_keys.c - the farm CA and signing certificate: files and modes, the certificate profile C2PA
 * validators require (read back with OpenSSL, not with our code), the chain verifying, refusal to
 * replace a CA, the signer loader's errors, and an Ed25519 signer (certificate made by the openssl
 * command) signing a file that then verifies.
 */
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "media/fixture.h"
#include "provenance.h"

static char s_dir[512];

static int s_setup(void **state)
{
    (void)state;
    rf_tmpdir(s_dir, sizeof(s_dir));
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    rf_tmpdir_remove(s_dir);
    return 0;
}

static X509 *s_cert(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *c = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(c);
    return c;
}

static int s_mode(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

static bool s_has_eku(X509 *c, const char *oid)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(c, NID_ext_key_usage, NULL, NULL);
    bool found = false;
    for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku); i++) {
        char txt[64];
        OBJ_obj2txt(txt, sizeof(txt), sk_ASN1_OBJECT_value(eku, i), 1);
        found = found || !strcmp(txt, oid);
    }
    EXTENDED_KEY_USAGE_free(eku);
    return found;
}

static bool s_critical(X509 *c, int nid)
{
    int i = X509_get_ext_by_NID(c, nid, -1);
    return i >= 0 && X509_EXTENSION_get_critical(X509_get_ext(c, i));
}

static void test_keygen_profile(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/farm/keys", s_dir); /* parents made too */
    rf_err_t err = {0};
    assert_int_equal(rf_prov_keygen_ca(dir, "Example Studio", &err), 0);
    assert_int_equal(s_mode(dir, "ca.key"), 0600);
    assert_int_equal(s_mode(dir, "signer.key"), 0600);
    assert_int_equal(s_mode(dir, "signer.pem"), 0644);

    X509 *ca = s_cert(dir, "ca.pem"), *leaf = s_cert(dir, "signer.pem");
    /* CA: v3, CA:TRUE, critical keyCertSign|cRLSign, subject key id. */
    assert_int_equal(X509_get_version(ca), X509_VERSION_3);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_true(s_critical(ca, NID_key_usage) && s_critical(ca, NID_basic_constraints));
    assert_true((X509_get_key_usage(ca) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
                (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    assert_non_null(X509_get0_subject_key_id(ca));
    /* Leaf: v3, not a CA, critical digitalSignature, both key ids, the two EKUs, none "any". */
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_true(s_critical(leaf, NID_key_usage));
    assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    assert_non_null(X509_get0_subject_key_id(leaf));
    assert_non_null(X509_get0_authority_key_id(leaf));
    assert_true(s_has_eku(leaf, "1.3.6.1.4.1.62558.2.1"));
    assert_true(s_has_eku(leaf, "1.3.6.1.5.5.7.3.36"));
    assert_false(s_has_eku(leaf, "2.5.29.37.0"));
    assert_int_not_equal(X509_check_issued(leaf, leaf), X509_V_OK); /* not self-signed */
    char subject[256];
    X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof(subject));
    assert_non_null(strstr(subject, "O=Example Studio"));
    /* The chain verifies with OpenSSL's own path validation. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, ca);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, leaf, NULL);
    assert_int_equal(X509_verify_cert(ctx), 1);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(ca);
    X509_free(leaf);

    /* A second keygen in the same folder refuses, leaving the CA alone. */
    assert_int_equal(rf_prov_keygen_ca(dir, NULL, &err), RF_EEXIST);
    assert_non_null(strstr(err.msg, "refusing to replace a farm CA"));
    bool created = true;
    assert_int_equal(rf_prov_ensure_keys(dir, &created, &err), 0);
    assert_false(created);
}

static void test_signer_errors(void **state)
{
    (void)state;
    char a[600], b[600];
    snprintf(a, sizeof(a), "%s/a", s_dir);
    snprintf(b, sizeof(b), "%s/b", s_dir);
    rf_err_t err = {0};
    bool created = false;
    assert_int_equal(rf_prov_ensure_keys(a, &created, &err), 0);
    assert_true(created);
    assert_int_equal(rf_prov_keygen_ca(b, NULL, &err), 0);
    char key_a[700], cert_b[700], ca_a[700], cakey_a[700], missing[700];
    snprintf(key_a, sizeof(key_a), "%s/signer.key", a);
    snprintf(cert_b, sizeof(cert_b), "%s/signer.pem", b);
    snprintf(ca_a, sizeof(ca_a), "%s/ca.pem", a);
    snprintf(cakey_a, sizeof(cakey_a), "%s/ca.key", a);
    snprintf(missing, sizeof(missing), "%s/nope.key", a);
    rf_prov_signer_t *s = NULL;
    assert_int_equal(rf_prov_signer_load(key_a, cert_b, NULL, &s, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "does not belong to the key"));
    assert_int_equal(rf_prov_signer_load(cakey_a, ca_a, NULL, &s, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "self-signed"));
    assert_int_equal(rf_prov_signer_load(missing, cert_b, NULL, &s, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, missing));
    assert_int_equal(rf_prov_signer_load(ca_a, ca_a, NULL, &s, &err), RF_EINVAL); /* no key */
    assert_non_null(strstr(err.msg, "not a PEM private key"));
    assert_null(s);
}

/* An Ed25519 signing certificate issued by our CA with the openssl command, then a signed file. */
static void test_ed25519(void **state)
{
    (void)state;
    char dir[600], cmd[8192], src[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/ed", s_dir);
    rf_err_t err = {0};
    assert_int_equal(rf_prov_keygen_ca(dir, NULL, &err), 0);
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && openssl genpkey -algorithm ed25519 -out ed.key 2>/dev/null && "
             "openssl req -new -key ed.key -subj '/O=reelfarm/CN=ed25519 signer' -out ed.csr && "
             "printf 'basicConstraints=critical,CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
             "extendedKeyUsage=1.3.6.1.4.1.62558.2.1,1.3.6.1.5.5.7.3.36\\n"
             "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid:always\\n' > ext.cnf && "
             "openssl x509 -req -in ed.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 "
             "-extfile ext.cnf -out ed.pem 2>/dev/null",
             dir);
    assert_int_equal(system(cmd), 0);
    char key[700], cert[700], ca[700];
    snprintf(key, sizeof(key), "%s/ed.key", dir);
    snprintf(cert, sizeof(cert), "%s/ed.pem", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    rf_prov_signer_t *s = NULL;
    assert_int_equal(rf_prov_signer_load(key, cert, ca, &s, &err), 0);
    rf_fixture("h264-aac-300", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/ed.mp4", s_dir);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, path);
    assert_int_equal(system(cmd), 0);
    rf_prov_job_t job;
    memset(&job, 0, sizeof(job));
    job.job_id = "j-ed";
    job.altered_footage = true;
    assert_int_equal(rf_prov_sign_file(s, path, &job, NULL, &err), 0);
    rf_prov_signer_destroy(&s);
    rf_prov_report_t r;
    assert_int_equal(rf_prov_verify_file(path, NULL, ca, &r, &err), 0);
    bool eddsa = false;
    for (int i = 0; i < r.nstatus; i++)
        eddsa = eddsa || (!strcmp(r.status[i].code, "claimSignature.validated") &&
                          strstr(r.status[i].detail, "EdDSA"));
    assert_true(eddsa);
    assert_int_equal(r.verdict, RF_PROV_TRUSTED);
    assert_string_equal(r.digital_source_type, RF_PROV_DST_COMPOSITE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keygen_profile),
        cmocka_unit_test(test_signer_errors),
        cmocka_unit_test(test_ed25519),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
