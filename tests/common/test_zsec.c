/* test_zsec.c - CURVE key files, ZAP roles, loopback endpoints.
 *
 * Expected keys are independent of our code: the fixed pairs in libzmq's zmq_curve(7) man page, and
 * a pair made with pyzmq's zmq.curve_keypair() whose public key holds '#' and '=' (both are Z85
 * characters, and both mean something in a key file). The public key of a secret is checked
 * against the man page, not against zmq_curve_public's own output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "error.h"
#include "zsec.h"

/* zmq_curve(7) */
#define S_CLIENT_PUB "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"
#define S_CLIENT_SEC "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs"
#define S_SERVER_PUB "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
/* pyzmq zmq.curve_keypair() */
#define S_ODD_PUB "LrPlNn=?1dsNjG!v+$&*N>/z247e6$@=$VI]A^n#"
#define S_ODD_SEC "fmu<?p{x?]TT+YqnKPusCzJh{i}YY0EW9(Hd<p-7"

static char s_dir[] = "/tmp/rf-test-zsec-XXXXXX";

static const char *s_write(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

typedef struct s_keycase {
    const char *what;
    const char *text;
    bool want_secret;
    int code;             /* 0 or the error */
    const char *pub;      /* expected public key */
    const char *sec;      /* expected secret key (want_secret) */
    const char *msg;      /* a part of the error message */
} s_keycase_t;

static const s_keycase_t s_keys[] = {
    {"keygen pair", "# reelfarm CURVE key pair 'x'\npublic = \"" S_CLIENT_PUB "\"\nsecret = \"" S_CLIENT_SEC "\"\n",
     true, 0, S_CLIENT_PUB, S_CLIENT_SEC, NULL},
    {"secret only derives public", "secret = \"" S_CLIENT_SEC "\"\n", true, 0, S_CLIENT_PUB, S_CLIENT_SEC, NULL},
    {"unquoted values", "public=" S_CLIENT_PUB "\nsecret =  " S_CLIENT_SEC "  \n", true, 0, S_CLIENT_PUB,
     S_CLIENT_SEC, NULL},
    {"keygen pub", "# public\npublic = \"" S_SERVER_PUB "\"\n", false, 0, S_SERVER_PUB, NULL, NULL},
    {"bare line", "\n  " S_SERVER_PUB "\n", false, 0, S_SERVER_PUB, NULL, NULL},
    {"'#' and '=' inside", "public = \"" S_ODD_PUB "\"  # trailing comment\n", false, 0, S_ODD_PUB, NULL, NULL},
    {"'#' and '=' bare", S_ODD_PUB "\n", false, 0, S_ODD_PUB, NULL, NULL},
    {"odd pair", "public = \"" S_ODD_PUB "\"\nsecret = \"" S_ODD_SEC "\"\n", true, 0, S_ODD_PUB, S_ODD_SEC, NULL},
    {"pub where a pair is needed", "public = \"" S_SERVER_PUB "\"\n", true, RF_ECONFIG, NULL, NULL,
     "no secret key in it"},
    {"mismatched pair", "public = \"" S_SERVER_PUB "\"\nsecret = \"" S_CLIENT_SEC "\"\n", true, RF_ECONFIG, NULL,
     NULL, "does not belong to its secret key"},
    {"short key", "public = \"abc\"\n", false, RF_ECONFIG, NULL, NULL, ":1: 'public' is not a 40-character Z85"},
    {"bad character", "public = \"" "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hI~" "\"\n", false, RF_ECONFIG, NULL, NULL,
     "not a 40-character Z85"},
    {"unknown key", "# x\nprivate = \"" S_CLIENT_SEC "\"\n", false, RF_ECONFIG, NULL, NULL,
     ":2: unknown key 'private'"},
    {"twice", "public = \"" S_CLIENT_PUB "\"\npublic = \"" S_CLIENT_PUB "\"\n", false, RF_ECONFIG, NULL, NULL,
     ":2: 'public' given twice"},
    {"no closing quote", "public = \"" S_CLIENT_PUB "\n", false, RF_ECONFIG, NULL, NULL, "no closing quote"},
    {"empty", "# nothing\n", false, RF_ECONFIG, NULL, NULL, "no public key in it"},
};

static void test_read_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_keys) / sizeof(s_keys[0]); i++) {
        const s_keycase_t *k = &s_keys[i];
        const char *path = s_write("k", k->text);
        char pub[RF_ZSEC_KEY_LEN + 1] = "", sec[RF_ZSEC_KEY_LEN + 1] = "";
        rf_err_t err = {0};
        int rc = rf_zsec_read_key(path, pub, k->want_secret ? sec : NULL, &err);
        if (rc != k->code) {
            print_error("case '%s': rc %d (%s), expected %d\n", k->what, rc, err.msg, k->code);
            fail();
        }
        if (rc == 0) {
            assert_string_equal(pub, k->pub);
            if (k->want_secret)
                assert_string_equal(sec, k->sec);
        } else if (!strstr(err.msg, k->msg) || !strstr(err.msg, path)) {
            print_error("case '%s': message '%s' lacks '%s' or the path\n", k->what, err.msg, k->msg);
            fail();
        }
    }
}

static void test_missing_file(void **state)
{
    (void)state;
    char pub[RF_ZSEC_KEY_LEN + 1];
    rf_err_t err = {0};
    assert_int_equal(rf_zsec_read_key("/nonexistent/x.pub", pub, NULL, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, "'/nonexistent/x.pub'"));
    /* over the size limit */
    char *big = malloc(RF_ZSEC_FILE_MAX + 100);
    assert_non_null(big);
    memset(big, '#', RF_ZSEC_FILE_MAX + 99);
    big[RF_ZSEC_FILE_MAX + 99] = '\0';
    const char *path = s_write("big", big);
    free(big);
    assert_int_equal(rf_zsec_read_key(path, pub, NULL, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "larger than 4096 bytes"));
}

static void test_secret_mode(void **state)
{
    (void)state;
    const char *path = s_write("loose.key", "public = \"" S_CLIENT_PUB "\"\nsecret = \"" S_CLIENT_SEC "\"\n");
    char pub[RF_ZSEC_KEY_LEN + 1], sec[RF_ZSEC_KEY_LEN + 1];
    rf_err_t err = {0};
    static const mode_t bad[] = {0644, 0640, 0604, 0620};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(path, bad[i]), 0);
        assert_int_equal(rf_zsec_read_key(path, pub, sec, &err), RF_EPERM);
        assert_non_null(strstr(err.msg, "chmod 600"));
    }
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(rf_zsec_read_key(path, pub, NULL, &err), 0); /* a public read does not care */
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(rf_zsec_read_key(path, pub, sec, &err), 0);
    assert_string_equal(pub, S_CLIENT_PUB);
    unlink(path);
}

static void test_client_load(void **state)
{
    (void)state;
    char key[512], srv[512];
    snprintf(key, sizeof(key), "%s", s_write("c.key", "secret = \"" S_CLIENT_SEC "\"\n"));
    snprintf(srv, sizeof(srv), "%s", s_write("coordinator.pub", "public = \"" S_SERVER_PUB "\"\n"));
    rf_zsec_t z;
    rf_err_t err = {0};
    assert_int_equal(rf_zsec_client_load(&z, key, srv, &err), 0);
    assert_true(z.on);
    assert_string_equal(z.public_key, S_CLIENT_PUB);
    assert_string_equal(z.secret_key, S_CLIENT_SEC);
    assert_string_equal(z.server_key, S_SERVER_PUB);
    rf_zsec_clear(&z);
    assert_false(z.on);
    assert_string_equal(z.secret_key, "");
    /* the server's "public" file handed over as the client's pair: refused, nothing kept */
    assert_int_equal(rf_zsec_client_load(&z, srv, srv, &err), RF_ECONFIG);
    assert_false(z.on);
    assert_int_equal(rf_zsec_server_load(&z, key, &err), 0);
    assert_string_equal(z.server_key, "");
    rf_zsec_clear(&z);
}

static void test_roles(void **state)
{
    (void)state;
    static const struct {
        const char *user_id;
        rf_role_t role;
        const char *name;
    } cases[] = {
        {NULL, RF_ROLE_OPEN, ""},
        {"worker:gpu-07", RF_ROLE_WORKER, "gpu-07"},
        {"client:alice", RF_ROLE_CLIENT, "alice"},
        {"admin:ops", RF_ROLE_ADMIN, "ops"},
        {"admin", RF_ROLE_ADMIN, ""},
        {"", RF_ROLE_NONE, ""},
        {"clients:alice", RF_ROLE_NONE, "alice"},
        {"workerX:a", RF_ROLE_NONE, "a"},
        {"root:x", RF_ROLE_NONE, "x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[RF_ZSEC_NAME_MAX + 1];
        assert_int_equal(rf_zsec_role(cases[i].user_id, name, sizeof(name)), cases[i].role);
        assert_string_equal(name, cases[i].name);
    }
    assert_string_equal(rf_zsec_role_name(RF_ROLE_CLIENT), "client");
    assert_string_equal(rf_zsec_role_name(RF_ROLE_NONE), "none");
}

static void test_endpoint_local(void **state)
{
    (void)state;
    static const struct {
        const char *ep;
        bool local;
    } cases[] = {
        {"tcp://127.0.0.1:7600", true}, {"tcp://127.1.2.3:1", true},   {"tcp://localhost:7600", true},
        {"tcp://[::1]:7600", true},     {"ipc:///run/rf.sock", true},  {"inproc://x", true},
        {"tcp://*:7600", false},        {"tcp://0.0.0.0:7600", false}, {"tcp://10.0.0.5:7600", false},
        {"tcp://[::]:7600", false},     {"tcp://127.evil.com:1", false}, {"tcp://localhost.evil:1", false},
        {"tcp://eth0:7600", false},     {"udp://127.0.0.1:1", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (rf_zsec_endpoint_local(cases[i].ep) != cases[i].local) {
            print_error("'%s': expected %s\n", cases[i].ep, cases[i].local ? "local" : "not local");
            fail();
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_true(rf_zsec_name_valid("gpu-07"));
    assert_true(rf_zsec_name_valid("a.b_c"));
    assert_false(rf_zsec_name_valid(""));
    assert_false(rf_zsec_name_valid(".hidden"));
    assert_false(rf_zsec_name_valid("a/b"));
    assert_false(rf_zsec_name_valid("a:b")); /* ':' separates role and name in a user id */
    char long_name[RF_ZSEC_NAME_MAX + 2];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_false(rf_zsec_name_valid(long_name));
    long_name[RF_ZSEC_NAME_MAX] = '\0';
    assert_true(rf_zsec_name_valid(long_name));
}

static int s_setup(void **state)
{
    (void)state;
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_key),   cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_client_load), cmocka_unit_test(test_roles),
        cmocka_unit_test(test_secret_mode),
        cmocka_unit_test(test_endpoint_local), cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
