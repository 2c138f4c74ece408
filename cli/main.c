/* reelfarm: the command farm users type. The subcommands, their flags and usage come from the
 * command table in cli/cmdtable.c; exit codes are in cli/cli.h and docs/CLI.md. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "media.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        rf_cli_print_overview(stderr);
        return RF_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        rf_cli_print_overview(stdout);
        return RF_EXIT_OK;
    }
    if (!strcmp(name, "--version"))
        name = "version";
    const rf_cli_command_t *cmd = rf_cli_command_find(name);
    if (!cmd) {
        fprintf(stderr, "reelfarm: unknown command '%s'\n\n", name);
        rf_cli_print_overview(stderr);
        return RF_EXIT_USAGE;
    }
    rf_cli_args_t args;
    int rc = rf_cli_parse(cmd, argc - 1, argv + 1, &args);
    if (rc)
        return rc < 0 ? RF_EXIT_OK : rc;
    rf_media_log_init();
    return cmd->run(&args);
}
