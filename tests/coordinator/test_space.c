/* test_space.c - the state folder's free-space check (coordinator/space.h): the number it reads
 * agrees with df's (an independent reading of statvfs), and a refusal names the folder, the free
 * space and the need. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "space.h"

static void test_free_matches_df(void **state)
{
    (void)state;
    int64_t ours = rf_space_free("/tmp");
    assert_true(ours >= 0);
    FILE *p = popen("df -B1 --output=avail /tmp | tail -1", "r");
    assert_non_null(p);
    long long df = -1;
    assert_int_equal(fscanf(p, "%lld", &df), 1);
    pclose(p);
    /* Other processes write to /tmp between the two readings: agree within 64 MiB. */
    long long diff = (long long)ours - df;
    assert_true(diff < 64LL * 1024 * 1024 && diff > -64LL * 1024 * 1024);
}

static void test_check(void **state)
{
    (void)state;
    rf_err_t err = {0};
    assert_int_equal(rf_space_check("/tmp", 0, &err), 0);
    /* More than any disk has: refused, with the folder and the numbers in the message. */
    assert_int_equal(rf_space_check("/tmp", UINT64_MAX / 2, &err), RF_EIO);
    assert_non_null(strstr(err.msg, "disk is full"));
    assert_non_null(strstr(err.msg, "'/tmp'"));
    assert_non_null(strstr(err.msg, "MiB free"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(rf_space_check("/nonexistent/state", 0, &err), RF_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/state"));
    assert_int_equal(rf_space_free("/nonexistent/state"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_matches_df),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
