/* test_guard.c - media roots against real files and symlinks, and the listen policy.
 *
 * The tree (made in a temp folder T):
 *   T/root/in.mp4                 a file inside the root
 *   T/root/out/                   an output folder inside
 *   T/root/link.mp4 -> ../outside/secret.mp4     a symlink out of the root
 *   T/root/escape -> ../outside                  a folder symlink out of the root
 *   T/root/out/old.mkv -> ../../outside/old.mkv  an existing output that is a symlink out
 *   T/outside/secret.mp4, T/outside/old.mkv
 *   T/rootlink -> root                           the root named through a symlink
 * Whether a path is inside is decided here by hand from this layout, not by the code under test. */
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

#include "config.h"
#include "guard.h"

static char s_tmp[] = "/tmp/rf-test-guard-XXXXXX";
static char s_real[4096]; /* realpath of s_tmp (/tmp may be a symlink) */

static void s_touch(const char *rel)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", s_tmp, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
}

static void s_link(const char *target, const char *rel)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/%s", s_tmp, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int s_setup(void **state)
{
    (void)state;
    if (!mkdtemp(s_tmp) || !realpath(s_tmp, s_real))
        return -1;
    char p[4200];
    const char *dirs[] = {"root", "root/out", "outside"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", s_tmp, dirs[i]);
        if (mkdir(p, 0700) != 0)
            return -1;
    }
    s_touch("root/in.mp4");
    s_touch("outside/secret.mp4");
    s_touch("outside/old.mkv");
    s_link("../outside/secret.mp4", "root/link.mp4");
    s_link("../outside", "root/escape");
    s_link("../../outside/old.mkv", "root/out/old.mkv");
    s_link("root", "rootlink");
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[4300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct s_case {
    const char *input, *output; /* relative to T */
    const char *root;           /* relative to T */
    int code;
    const char *key;            /* the key the error must name */
    const char *resolves;       /* relative to T: what the message must say it resolves to */
} s_case_t;

static const s_case_t s_cases[] = {
    {"root/in.mp4", "root/out/new.mkv", "root", 0, NULL, NULL},
    {"root/in.mp4", "root/new.mkv", "rootlink", 0, NULL, NULL},          /* the root is resolved too */
    {"rootlink/in.mp4", "rootlink/out/x.mkv", "root", 0, NULL, NULL},    /* so are the paths */
    {"root/link.mp4", "root/out/new.mkv", "root", RF_EPERM, "input", "outside/secret.mp4"},
    {"root/../outside/secret.mp4", "root/out/new.mkv", "root", RF_EPERM, "input", "outside/secret.mp4"},
    {"root/in.mp4", "root/escape/new.mkv", "root", RF_EPERM, "output", "outside"},
    {"root/in.mp4", "root/out/old.mkv", "root", RF_EPERM, "output", "outside/old.mkv"},
    {"root/in.mp4", "outside/new.mkv", "root", RF_EPERM, "output", "outside"},
    {"root/missing.mp4", "root/out/new.mkv", "root", RF_ENOENT, "input", NULL},
    {"root/in.mp4", "root/nofolder/new.mkv", "root", RF_ENOENT, "output", NULL},
    /* a root that does not exist: nothing is under it */
    {"root/in.mp4", "root/out/new.mkv", "roo", RF_EPERM, "input", "root/in.mp4"},
};

static void test_spec_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        const s_case_t *k = &s_cases[i];
        char yaml[9000], root[4200];
        snprintf(yaml, sizeof(yaml), "version: 1\ninput: %s/%s\noutput: %s/%s\nencode: {codec: ffv1}\n", s_tmp,
                 k->input, s_tmp, k->output);
        snprintf(root, sizeof(root), "%s/%s", s_tmp, k->root);
        rf_job_spec_t *spec = NULL;
        rf_err_t err = {0};
        assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", s_tmp, &spec, &err), 0);
        char *roots[] = {root};
        int rc = rf_guard_spec_paths(spec, roots, 1, &err);
        int want = k->code;
        if (rc != want) {
            print_error("case %zu (%s -> %s, root %s): rc %d '%s', expected %d\n", i, k->input, k->output, k->root,
                        rc, err.msg, want);
            fail();
        }
        if (rc) {
            char key[64];
            snprintf(key, sizeof(key), "key '%s'", k->key);
            assert_non_null(strstr(err.msg, key));
        }
        if (rc == RF_EPERM && k->resolves) {
            char want_path[4300];
            snprintf(want_path, sizeof(want_path), "resolves to '%s/%s'", s_real, k->resolves);
            if (!strstr(err.msg, want_path) || !strstr(err.msg, root)) {
                print_error("case %zu: '%s' lacks \"%s\" or the root\n", i, err.msg, want_path);
                fail();
            }
        }
        /* No roots: no restriction. */
        assert_int_equal(rf_guard_spec_paths(spec, NULL, 0, &err), 0);
        rf_job_spec_destroy(&spec);
    }
}

/* The critic's model is a path like the others: it must resolve under a root. */
static void test_critic_path(void **state)
{
    (void)state;
    static const struct {
        const char *model;
        int code;
    } cases[] = {{"root/in.mp4", 0}, {"root/link.mp4", RF_EPERM}, {"outside/old.mkv", RF_EPERM}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[9000], root[4200];
        snprintf(yaml, sizeof(yaml),
                 "version: 1\ninput: %s/root/in.mp4\noutput: %s/root/out/new.mkv\n"
                 "encode: {codec: ffv1}\ncritic: {model: %s/%s, threshold: 0}\n",
                 s_tmp, s_tmp, s_tmp, cases[i].model);
        snprintf(root, sizeof(root), "%s/root", s_tmp);
        rf_job_spec_t *spec = NULL;
        rf_err_t err = {0};
        assert_int_equal(rf_job_spec_load_string(yaml, strlen(yaml), "job.yaml", s_tmp, &spec, &err), 0);
        char *roots[] = {root};
        int rc = rf_guard_spec_paths(spec, roots, 1, &err);
        assert_int_equal(rc, cases[i].code);
        if (rc)
            assert_non_null(strstr(err.msg, "key 'critic.model'"));
        rf_job_spec_destroy(&spec);
    }
}

static void test_listen_policy(void **state)
{
    (void)state;
    rf_coordinator_config_t *cfg = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_coordinator_config_load(NULL, &cfg, &err), 0);
    assert_int_equal(rf_guard_listen_policy(cfg, false, &err), 0); /* the defaults are loopback */
    assert_int_equal(rf_config_set_string(&cfg->listen_blobs, "tcp://*:7602"), 0);
    assert_int_equal(rf_guard_listen_policy(cfg, false, &err), RF_EPERM);
    assert_non_null(strstr(err.msg, "listen.blobs 'tcp://*:7602' is not a loopback address"));
    assert_non_null(strstr(err.msg, "--insecure"));
    assert_int_equal(rf_guard_listen_policy(cfg, true, &err), 0); /* keys: anywhere */
    cfg->insecure = true;
    assert_int_equal(rf_guard_listen_policy(cfg, false, &err), 0);
    rf_coordinator_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_paths),
        cmocka_unit_test(test_critic_path),
        cmocka_unit_test(test_listen_policy),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
