/* fixture.h - shared by the media tests: fixtures from tests/fixtures/make-media, temp paths. */
#ifndef RF_TEST_MEDIA_FIXTURE_H
#define RF_TEST_MEDIA_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Runs "$RF_FIXTURES/make-media NAME" and copies the printed path into path. Fails the test when
 * the environment is not set up (ctest sets it; for manual runs export both variables). */
static inline void rf_fixture(const char *name, char *path, size_t size)
{
    const char *dir = getenv("RF_FIXTURES");
    if (!dir || !getenv("RF_FIXTURE_DIR"))
        fail_msg("RF_FIXTURES and RF_FIXTURE_DIR must be set (ctest sets them)");
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s/make-media' '%s'", dir, name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    if (!fgets(path, (int)size, p))
        path[0] = '\0';
    int rc = pclose(p);
    path[strcspn(path, "\n")] = '\0';
    if (rc != 0 || path[0] == '\0')
        fail_msg("make-media %s failed", name);
}

/* A fresh temp directory for this test process, removed by rf_tmpdir_remove. */
static inline void rf_tmpdir(char *dir, size_t size)
{
    const char *base = getenv("RF_FIXTURE_DIR");
    snprintf(dir, size, "%s/tmp-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static inline void rf_tmpdir_remove(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* Runs a shell command and reads its first output line into out. Returns the exit status. */
static inline int rf_shell_line(const char *cmd, char *out, size_t size)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    out[0] = '\0';
    if (!fgets(out, (int)size, p))
        out[0] = '\0';
    char drain[256];
    while (fgets(drain, sizeof(drain), p))
        ;
    out[strcspn(out, "\n")] = '\0';
    return pclose(p);
}

#endif
