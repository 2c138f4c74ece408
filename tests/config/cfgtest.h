/* cfgtest.h - what the tests/config executables share: their temporary folder, made before their
 * tests (s_tmp_make from the group setup) and removed after them (s_tmp_teardown as the group
 * teardown), s_write to put a file in it, the path of a shipped example config, and a load that
 * must succeed. Included by one test file per executable. */
#ifndef RF_TEST_CFGTEST_H
#define RF_TEST_CFGTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "config.h"

static char s_tmp[256];

static inline void s_write(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Makes s_tmp from a mkdtemp pattern ("/tmp/rf-NAME-XXXXXX"); 0, or -1 when it cannot. */
static inline int s_tmp_make(const char *pattern)
{
    snprintf(s_tmp, sizeof(s_tmp), "%s", pattern);
    return mkdtemp(s_tmp) ? 0 : -1;
}

static inline int s_tmp_teardown(void **state)
{
    char cmd[512];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* config/examples/name under RF_SOURCE_DIR (else the current folder), in a static buffer. */
static inline const char *s_example(const char *name)
{
    static char path[4096];
    const char *src = getenv("RF_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/config/examples/%s", src ? src : ".", name);
    return path;
}

/* A load's rc that must be 0: fails the test with err's message otherwise. */
static inline void s_assert_loaded(int rc, const rf_err_t *err)
{
    if (rc != 0) {
        print_error("%s\n", err->msg);
        fail();
    }
}

#endif
