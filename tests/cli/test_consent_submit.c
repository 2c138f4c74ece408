/* test_consent_submit.c - the coordinator itself refuses a job that depicts real people without a
 * consent basis: a real coordinator (its own thread, real ZeroMQ sockets on loopback) gets the spec
 * straight from rf_client_submit_yaml, bypassing the CLI's local check; it answers RF_ECONFIG with
 * the message that says what to add, creates no job (so no chunk can ever be rendered) and
 * records the refusal in its audit log, whose chain then verifies. A spec with the basis is
 * accepted and audited with the subject's digest. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "audit.h"
#include "cli.h"
#include "config.h"
#include "coordinator.h"
#include "store.h"

static void *s_run(void *arg)
{
    rf_coordinator_run(arg);
    return NULL;
}

static char *s_slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    static char buf[65536];
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_refused_at_submit(void **state)
{
    char dir[] = "/tmp/rf-consent-XXXXXX", path[256], job_id[64];
    rf_coordinator_config_t *cfg = NULL;
    rf_coordinator_t *coord = NULL;
    rf_client_t *cl = NULL;
    rf_err_t err = {0};
    pthread_t th;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/in.mp4", dir);
    FILE *f = fopen(path, "w"); /* the submit checks the input exists; it is never decoded here */
    fputs("x", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/state", dir);
    assert_int_equal(rf_coordinator_config_load(NULL, &cfg, &err), 0);
    assert_int_equal(rf_config_set_string(&cfg->state_dir, path), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_workers, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_clients, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->listen_blobs, "tcp://127.0.0.1:*"), 0);
    assert_int_equal(rf_config_set_string(&cfg->http_listen, ""), 0);
    assert_int_equal(rf_coordinator_new(cfg, &coord, &err), 0);
    assert_int_equal(pthread_create(&th, NULL, s_run, coord), 0);
    assert_int_equal(rf_client_new(rf_coordinator_endpoint(coord, RF_EP_CLIENTS), &cl, &err), 0);

    const char *refused = "version: 1\ninput: in.mp4\noutput: out.mkv\nprovenance:\n  depicts: real-people\n";
    int rc = rf_client_submit_yaml(cl, refused, "job.yaml", dir, job_id, sizeof(job_id), &err);
    assert_int_equal(rc, RF_ECONFIG);
    assert_non_null(strstr(err.msg, "job.yaml:5: key 'provenance.subjects': the job depicts real people "
                                    "but names no subject: add each person under provenance.subjects"));

    const char *missing_release = "version: 1\ninput: in.mp4\noutput: out.mkv\nprovenance:\n"
                                  "  subjects: [{name: Jane Roe, basis: consent}]\n";
    rc = rf_client_submit_yaml(cl, missing_release, "job.yaml", dir, job_id, sizeof(job_id), &err);
    assert_int_equal(rc, RF_ECONFIG);
    assert_non_null(strstr(err.msg, "has basis 'consent' but no release reference"));

    const char *good = "version: 1\ninput: in.mp4\noutput: out.mkv\nprovenance:\n"
                       "  subjects: [{name: Jane Roe, basis: consent, release: REL-0042}]\n";
    assert_int_equal(rf_client_submit_yaml(cl, good, "job.yaml", dir, job_id, sizeof(job_id), &err), 0);
    rf_client_destroy(&cl);
    rf_coordinator_stop(coord);
    pthread_join(th, NULL);
    rf_coordinator_destroy(&coord);
    rf_coordinator_config_destroy(&cfg);

    /* Only the accepted job exists: the refused ones never reached the store, so nothing of them
     * was planned or rendered. */
    rf_store_t *st = NULL;
    rf_store_job_t *rows = NULL;
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/state/state.db", dir);
    assert_int_equal(rf_store_open(path, &st, &err), 0);
    assert_int_equal(rf_store_jobs_load(st, false, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, job_id);
    rf_store_jobs_free(rows, n);
    rf_store_close(&st);

    /* The audit log: two refusals, the submission with the subject, all chained and signed. */
    rf_audit_report_t rep;
    snprintf(path, sizeof(path), "%s/state/audit.log", dir);
    assert_int_equal(rf_audit_verify_file(path, NULL, &rep, &err), 0);
    assert_true(rep.records >= 4 && rep.checkpoints >= 1);
    const char *log = s_slurp(path);
    assert_non_null(strstr(log, "\trefuse\tclient\t\tjob.yaml:5: key 'provenance.subjects'"));
    assert_non_null(strstr(log, "subject=Jane Roe|consent|REL-0042|"));
    assert_non_null(strstr(log, "\tsubmit\tclient\t"));
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_refused_at_submit)};
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
