/* test_cmdtable.c - the command table and the parser generated from it: the table's invariants
 * (unique names, letters and flags; every command has a runner and a summary), and table-driven
 * parses: flags by long name and letter, operands, repeated --param, and each kind of usage error
 * (exit 2) with the message naming the flag or operand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"

static void test_table_invariants(void **state)
{
    (void)state;
    size_t n = 0;
    const rf_cli_command_t *cmds = rf_cli_commands(&n);
    assert_true(n >= 19);
    for (size_t i = 0; i < n; i++) {
        const rf_cli_command_t *c = &cmds[i];
        assert_non_null(c->run);
        assert_true(c->summary && *c->summary && c->doc && *c->doc);
        assert_true(c->min_operands <= c->max_operands && c->max_operands <= RF_CLI_MAX_OPERANDS);
        assert_ptr_equal(rf_cli_command_find(c->name), c);
        for (size_t j = i + 1; j < n; j++)
            assert_string_not_equal(c->name, cmds[j].name);
        for (size_t k = 0; k < RF_CLI_MAX_FLAGS && c->flags[k].name; k++) {
            const rf_cli_flag_t *f = &c->flags[k];
            assert_true(f->doc && *f->doc);
            assert_string_not_equal(f->name, "help"); /* added to every command */
            assert_int_not_equal(f->letter, 'h');
            for (size_t m = k + 1; m < RF_CLI_MAX_FLAGS && c->flags[m].name; m++) {
                assert_string_not_equal(f->name, c->flags[m].name);
                if (f->letter)
                    assert_int_not_equal(f->letter, c->flags[m].letter);
            }
        }
    }
    assert_null(rf_cli_command_find("frobnicate"));
}

static const struct {
    const char *argv;  /* space-separated, argv[0] first */
    int rc;            /* 0 or RF_EXIT_USAGE */
    const char *flag;  /* a flag to look up after a successful parse */
    const char *value; /* its expected value (NULL: absent) */
    int noperands;
} s_cases[] = {
    {"status j-1", 0, "json", NULL, 1},
    {"status j-1 --json", 0, "json", "", 1},
    {"status -j j-1", 0, "json", "", 1},
    {"status j-1 --coordinator tcp://h:1", 0, "coordinator", "tcp://h:1", 1},
    {"status j-1 -c tcp://h:2", 0, "coordinator", "tcp://h:2", 1},
    {"status j-1 --coordinator=tcp://h:3", 0, "coordinator", "tcp://h:3", 1},
    {"render job.yaml -w 3 --quiet", 0, "workers", "3", 1},
    {"submit --openjd t.yaml --param A=1 --param B=2", 0, "param", "B=2", 0},
    {"fetch j-1 -o out.mkv", 0, "output", "out.mkv", 1},
    {"verify out.mkv --source in.mp4 --lossless", 0, "lossless", "", 1},
    {"jobs", 0, "json", NULL, 0},
    {"status", RF_EXIT_USAGE, NULL, NULL, 0},                    /* missing JOB_ID */
    {"status a b", RF_EXIT_USAGE, NULL, NULL, 0},                /* unexpected argument */
    {"status j-1 --bogus", RF_EXIT_USAGE, NULL, NULL, 0},        /* unknown flag */
    {"jobs -x", RF_EXIT_USAGE, NULL, NULL, 0},                   /* unknown letter */
    {"watch j-1 --json", RF_EXIT_USAGE, NULL, NULL, 0},          /* a flag of other commands */
    {"render job.yaml --workers", RF_EXIT_USAGE, NULL, NULL, 0}, /* missing value */
    {"jobs --json --json", RF_EXIT_USAGE, NULL, NULL, 0},        /* given twice */
};

static int s_parse(const char *line, rf_cli_args_t *args, char *buf, size_t size)
{
    char *argv[32];
    int argc = 0;
    snprintf(buf, size, "%s", line);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;
    const rf_cli_command_t *cmd = rf_cli_command_find(argv[0]);
    assert_non_null(cmd);
    return rf_cli_parse(cmd, argc, argv, args);
}

static void test_parse_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        rf_cli_args_t args;
        char buf[256];
        /* Usage errors go to stderr: keep the test log readable. */
        FILE *saved = stderr;
        stderr = fopen("/dev/null", "w");
        int rc = s_parse(s_cases[i].argv, &args, buf, sizeof(buf));
        fclose(stderr);
        stderr = saved;
        if (rc != s_cases[i].rc)
            fail_msg("'%s': rc %d, expected %d", s_cases[i].argv, rc, s_cases[i].rc);
        if (rc)
            continue;
        assert_int_equal(args.noperands, s_cases[i].noperands);
        const char *v = rf_cli_arg(&args, s_cases[i].flag);
        if (s_cases[i].value)
            assert_string_equal(v, s_cases[i].value);
        else
            assert_null(v);
    }
}

static void test_repeated_param_keeps_all(void **state)
{
    (void)state;
    rf_cli_args_t args;
    char buf[256];
    assert_int_equal(
        s_parse("submit --openjd t.yaml -p A=1 --param B=2 -p A=3", &args, buf, sizeof(buf)), 0);
    const char *seen[4];
    int n = 0;
    for (int i = 0; i < args.nvalues; i++)
        if (!strcmp(args.values[i].flag, "param"))
            seen[n++] = args.values[i].value;
    assert_int_equal(n, 3);
    assert_string_equal(seen[0], "A=1");
    assert_string_equal(seen[1], "B=2");
    assert_string_equal(seen[2], "A=3");
}

static void test_usage_line(void **state)
{
    (void)state;
    char line[512];
    rf_cli_usage_line(rf_cli_command_find("status"), line, sizeof(line));
    assert_string_equal(line, "usage: reelfarm status JOB_ID [--json] [--coordinator EP]");
    rf_cli_usage_line(rf_cli_command_find("submit"), line, sizeof(line));
    assert_non_null(strstr(line, "[--param K=V]..."));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_invariants),
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_repeated_param_keeps_all),
        cmocka_unit_test(test_usage_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
