/* test_log.c - the logger's JSON and text forms, escaping, level filtering, environment, threads;
 * and error.h's message helpers, which log records are made of. */
#include <fcntl.h>
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

#include "error.h"
#include "log.h"
#include "rftime.h"

/* A temp file the logger writes to; read back whole. */
static int s_open_tmp(char *path, size_t size)
{
    snprintf(path, size, "/tmp/rf_test_log_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

static char *s_read_all(int fd, size_t *len_out)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    char *buf = malloc((size_t)end + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
    buf[end] = '\0';
    if (len_out != NULL)
        *len_out = (size_t)end;
    return buf;
}

static void test_json_escaping(void **state)
{
    (void)state;
    char path[64];
    int fd = s_open_tmp(path, sizeof path);
    rf_log_setup(RF_LOG_DEBUG, RF_LOG_JSON, fd);

    static const struct {
        const char *msg;
        const char *escaped;
    } cases[] = {
        {"plain", "\"msg\":\"plain\"}\n"},
        {"say \"hi\"", "\"msg\":\"say \\\"hi\\\"\"}\n"},
        {"line1\nline2\r\n", "\"msg\":\"line1\\nline2\\r\\n\"}\n"},
        {"tab\there back\\slash", "\"msg\":\"tab\\there back\\\\slash\"}\n"},
        {"ctl\x01\x1f end", "\"msg\":\"ctl\\u0001\\u001f end\"}\n"},
        {"utf8 caf\xc3\xa9", "\"msg\":\"utf8 caf\xc3\xa9\"}\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(ftruncate(fd, 0), 0);
        lseek(fd, 0, SEEK_SET);
        RF_INFO("comp \"x\"", "%s", cases[i].msg);
        size_t len = 0;
        char *out = s_read_all(fd, &len);
        assert_true(len > 0);
        assert_int_equal(out[0], '{');
        assert_int_equal(strchr(out, '\n') - out, (ptrdiff_t)len - 1); /* one line */
        assert_non_null(strstr(out, "\"level\":\"info\",\"component\":\"comp \\\"x\\\"\","));
        size_t elen = strlen(cases[i].escaped);
        assert_true(len >= elen);
        assert_string_equal(out + len - elen, cases[i].escaped);
        /* "ts":"YYYY-MM-DDTHH:MM:SS.mmmZ" */
        assert_memory_equal(out, "{\"ts\":\"", 7);
        assert_int_equal(out[7 + 10], 'T');
        assert_int_equal(out[7 + 23], 'Z');
        free(out);
    }
    close(fd);
}

static void test_text_form_and_levels(void **state)
{
    (void)state;
    char path[64];
    int fd = s_open_tmp(path, sizeof path);
    rf_log_setup(RF_LOG_WARN, RF_LOG_TEXT, fd);
    assert_int_equal(rf_log_level(), RF_LOG_WARN);
    assert_false(rf_log_enabled(RF_LOG_INFO));
    assert_true(rf_log_enabled(RF_LOG_ERROR));
    RF_DEBUG("coordinator", "dropped %d", 1);
    RF_INFO("coordinator", "dropped %d", 2);
    RF_WARN("coordinator", "job '%s' planned %d chunks", "scene-12", 14);
    char *out = s_read_all(fd, NULL);
    const char *want = " WARN  coordinator: job 'scene-12' planned 14 chunks\n";
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "dropped"));
    assert_int_equal(strlen(out), 24 + strlen(want));
    free(out);

    rf_log_setup(RF_LOG_OFF, RF_LOG_TEXT, fd);
    RF_ERROR("x", "never");
    out = s_read_all(fd, NULL);
    assert_null(strstr(out, "never"));
    free(out);
    close(fd);
}

/* rf_log_ctx: each field present only when set, in both forms, escaped in JSON. */
static void test_context_fields(void **state)
{
    (void)state;
    char path[64];
    int fd = s_open_tmp(path, sizeof path);
    static const struct {
        rf_log_ctx_t ctx;
        const char *json, *text;
    } cases[] = {
        {{"j-1", 12, 2, "gpu-07"},
         "\"component\":\"coordinator\",\"job\":\"j-1\",\"chunk\":12,\"attempt\":2,\"worker\":\"gpu-07\",\"msg\":\"m\"}\n",
         "coordinator: [job=j-1 chunk=12 attempt=2 worker=gpu-07] m\n"},
        {{"j-1", -1, -1, NULL}, "\"component\":\"coordinator\",\"job\":\"j-1\",\"msg\":\"m\"}\n",
         "coordinator: [job=j-1] m\n"},
        {{NULL, 0, -1, NULL}, "\"component\":\"coordinator\",\"chunk\":0,\"msg\":\"m\"}\n",
         "coordinator: [chunk=0] m\n"},
        {{NULL, -1, -1, "w\"x"}, "\"component\":\"coordinator\",\"worker\":\"w\\\"x\",\"msg\":\"m\"}\n",
         "coordinator: [worker=w\"x] m\n"},
        {{NULL, -1, -1, NULL}, "\"component\":\"coordinator\",\"msg\":\"m\"}\n", "coordinator: m\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int json = 0; json < 2; json++) {
            rf_log_setup(RF_LOG_DEBUG, json ? RF_LOG_JSON : RF_LOG_TEXT, fd);
            assert_int_equal(ftruncate(fd, 0), 0);
            lseek(fd, 0, SEEK_SET);
            rf_log_ctx(RF_LOG_INFO, "coordinator", &cases[i].ctx, "%s", "m");
            size_t len = 0;
            char *out = s_read_all(fd, &len);
            const char *want = json ? cases[i].json : cases[i].text;
            size_t wlen = strlen(want);
            if (len < wlen || strcmp(out + len - wlen, want) != 0)
                fail_msg("case %zu (%s): got '%s', want it to end in '%s'", i, json ? "json" : "text",
                         out, want);
            free(out);
        }
    }
    rf_log_setup(RF_LOG_WARN, RF_LOG_JSON, fd);
    assert_int_equal(ftruncate(fd, 0), 0);
    rf_log_ctx(RF_LOG_INFO, "c", RF_LOG_CTX("j", 1, 1, "w"), "below the level");
    char *out = s_read_all(fd, NULL);
    assert_string_equal(out, "");
    free(out);
    close(fd);
}

static void test_level_parse(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int level;
    } cases[] = {
        {"debug", RF_LOG_DEBUG}, {"info", RF_LOG_INFO}, {"warn", RF_LOG_WARN}, {"error", RF_LOG_ERROR},
        {"off", RF_LOG_OFF},     {"INFO", RF_LOG_INFO}, {"verbose", -1},       {"", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(rf_log_level_parse(cases[i].name), cases[i].level);
    assert_int_equal(rf_log_level_parse(NULL), -1);
}

static void test_environment(void **state)
{
    (void)state;
    char path[64];
    int fd = s_open_tmp(path, sizeof path);
    setenv("REELFARM_LOG_LEVEL", "error", 1);
    setenv("REELFARM_LOG_FORMAT", "json", 1);
    rf_log_setup(RF_LOG_DEBUG, RF_LOG_AUTO, fd);
    assert_int_equal(rf_log_level(), RF_LOG_ERROR);
    RF_WARN("env", "hidden");
    RF_ERROR("env", "shown");
    char *out = s_read_all(fd, NULL);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, "\"level\":\"error\",\"component\":\"env\",\"msg\":\"shown\"}\n"));
    free(out);
    unsetenv("REELFARM_LOG_LEVEL");
    unsetenv("REELFARM_LOG_FORMAT");

    /* AUTO on a file that is not a TTY means JSON. */
    assert_int_equal(ftruncate(fd, 0), 0);
    lseek(fd, 0, SEEK_SET);
    rf_log_setup(RF_LOG_INFO, RF_LOG_AUTO, fd);
    RF_INFO("auto", "x");
    out = s_read_all(fd, NULL);
    assert_int_equal(out[0], '{');
    free(out);
    close(fd);
}

static void test_long_message_cut(void **state)
{
    (void)state;
    char path[64];
    int fd = s_open_tmp(path, sizeof path);
    rf_log_setup(RF_LOG_INFO, RF_LOG_JSON, fd);
    size_t n = 20000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (i % 3 == 0) ? '\n' : '"'; /* every byte needs an escape */
    big[n] = '\0';
    RF_INFO("big", "%s", big);
    size_t len = 0;
    char *out = s_read_all(fd, &len);
    assert_true(len > 100 && len <= 16384);
    assert_memory_equal(out + len - 3, "\"}\n", 3);
    assert_ptr_equal(strchr(out, '\n'), out + len - 1);
    free(out);
    free(big);
    close(fd);
}

#define THREADS 8
#define RECORDS 300

static void *s_logger_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < RECORDS; i++)
        RF_INFO("thread", "thread %d record %d padding padding padding padding padding", id, i);
    return NULL;
}

static void test_threads_do_not_interleave(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/rf_test_log_XXXXXX");
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    int fd = open(path, O_WRONLY | O_APPEND);
    unlink(path);
    rf_log_setup(RF_LOG_INFO, RF_LOG_JSON, fd);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, s_logger_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *out = s_read_all(tmp, NULL);
    int lines = 0;
    for (char *line = out; *line != '\0';) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_int_equal(line[0], '{');
        assert_int_equal(nl[-1], '}');
        assert_null(memchr(line + 1, '{', (size_t)(nl - line - 1)));
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, THREADS * RECORDS);
    free(out);
    close(fd);
    close(tmp);
}

static void test_err_helpers(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_err_set(&err, RF_ECONFIG, "key '%s': expected an integer", "encode.crf"), RF_ECONFIG);
    assert_int_equal(err.code, RF_ECONFIG);
    assert_int_equal(rf_err_prefix(&err, "job.yaml:%d: ", 12), RF_ECONFIG);
    assert_string_equal(err.msg, "job.yaml:12: key 'encode.crf': expected an integer");
    rf_err_set(&err, RF_EIO, "two\nlines");
    assert_string_equal(err.msg, "two lines");
    rf_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    assert_int_equal(rf_err_set(NULL, RF_EIO, "x"), RF_EIO);
    for (int code = RF_EPERM; code <= 0; code++)
        assert_string_not_equal(rf_strerror(code), "unknown error");
    assert_string_equal(rf_strerror(-999), "unknown error");

    char buf[32];
    assert_string_equal(rf_wall_format(1795773600123LL, buf, sizeof buf), "2026-11-27T10:00:00.123Z");
    uint64_t a = rf_now_ms();
    rf_sleep_ms(20);
    assert_true(rf_now_ms() - a >= 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escaping),    cmocka_unit_test(test_text_form_and_levels),
        cmocka_unit_test(test_level_parse),      cmocka_unit_test(test_environment),
        cmocka_unit_test(test_long_message_cut), cmocka_unit_test(test_threads_do_not_interleave),
        cmocka_unit_test(test_err_helpers),      cmocka_unit_test(test_context_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
