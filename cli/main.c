/* reelfarm: the command farm users type. See cli/cli.h for exit codes and docs/CLI.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "media.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif

static void s_usage(FILE *f)
{
    fprintf(f,
            "usage: reelfarm COMMAND [ARGS]\n"
            "\n"
            "  render JOB.yaml [--workers N]    render a job on a private farm on this machine\n"
            "  submit JOB.yaml [--wait]         send a job to a running coordinator; prints its id\n"
            "  status JOB_ID [--json]           a job's state and chunks\n"
            "  jobs [--json]                    every job the coordinator knows\n"
            "  cancel JOB_ID                    cancel a job (a failed one: give it up, free its data)\n"
            "  pause JOB_ID / resume JOB_ID     stop starting new chunks of a job / start again\n"
            "  retry JOB_ID                     run a failed job's failed chunks again\n"
            "  workers [--json]                 the workers, their slots, failures and GPUs\n"
            "  logs JOB_ID [--follow] [--json]  a job's events\n"
            "  watch JOB_ID                     follow a job and its running chunks (Ctrl-C stops\n"
            "                                   watching; the job goes on)\n"
            "  passes [--json]                  the built-in passes and their parameters\n"
            "  keygen [--out DIR] [--name N]    make a CURVE key pair (N.key, N.pub)\n"
            "  doctor [--json]                  check this machine and the coordinator\n"
            "  version                          print the version\n"
            "\n"
            "Coordinator: --coordinator tcp://HOST:7601, else REELFARM_COORDINATOR, else\n"
            "'coordinator:' in $XDG_CONFIG_HOME/reelfarm/cli.yaml, else tcp://127.0.0.1:7601.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return RF_EXIT_USAGE;
    }
    rf_media_log_init();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "render"))
        return rf_cli_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "submit"))
        return rf_cli_submit(argc - 1, argv + 1);
    if (!strcmp(cmd, "status"))
        return rf_cli_status(argc - 1, argv + 1);
    if (!strcmp(cmd, "jobs"))
        return rf_cli_jobs(argc - 1, argv + 1);
    if (!strcmp(cmd, "cancel"))
        return rf_cli_cancel(argc - 1, argv + 1);
    if (!strcmp(cmd, "pause"))
        return rf_cli_pause(argc - 1, argv + 1);
    if (!strcmp(cmd, "resume"))
        return rf_cli_resume(argc - 1, argv + 1);
    if (!strcmp(cmd, "retry"))
        return rf_cli_retry(argc - 1, argv + 1);
    if (!strcmp(cmd, "workers"))
        return rf_cli_workers(argc - 1, argv + 1);
    if (!strcmp(cmd, "logs"))
        return rf_cli_logs(argc - 1, argv + 1);
    if (!strcmp(cmd, "watch"))
        return rf_cli_watch(argc - 1, argv + 1);
    if (!strcmp(cmd, "passes"))
        return rf_cli_passes(argc - 1, argv + 1);
    if (!strcmp(cmd, "keygen"))
        return rf_cli_keygen(argc - 1, argv + 1);
    if (!strcmp(cmd, "doctor"))
        return rf_cli_doctor(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("reelfarm %s\n", RF_VERSION);
        return RF_EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        s_usage(stdout);
        return RF_EXIT_OK;
    }
    fprintf(stderr, "reelfarm: unknown command '%s'\n\n", cmd);
    s_usage(stderr);
    return RF_EXIT_USAGE;
}
