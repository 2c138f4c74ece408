/* cmdtable.c - the one table of `reelfarm` subcommands and everything generated from it: the
 * getopt_long option arrays that parse each command line, the usage lines and --help, the overview
 * of `reelfarm help`, shell completion (`reelfarm completion bash|zsh`) and the man page
 * (`reelfarm man`, roff on stdout). A flag added to the table is parsed, completed and documented
 * at once; nothing else lists flags.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef RF_VERSION
#define RF_VERSION "0.1.0"
#endif

/* The table reads best one command per block, one flag per line: not reflowed. */
/* clang-format off */
#define S_COORD {"coordinator", 'c', "EP", false, "the coordinator's client endpoint (tcp://HOST:7601)"}
#define S_JSON {"json", 'j', NULL, false, "print JSON (schema in docs/CLI.md)"}
#define S_END {NULL, 0, NULL, false, NULL}

static const rf_cli_command_t s_commands[] = {
    {"render", "JOB.yaml", 1, 1, "render a job on a private farm on this machine",
     "Checks the spec, starts a private coordinator and N workers on threads of this process "
     "(real ZeroMQ sockets on loopback), follows the job with a progress bar on stderr and prints "
     "the output path. Ctrl-C cancels the job.",
     rf_cli_render,
     {{"workers", 'w', "N", false, "local workers to start (1..64, default 2)"},
      {"keep-state", 'k', NULL, false, "keep the private state folder"},
      {"verbose", 'v', NULL, false, "show the embedded daemons' logs"},
      {"quiet", 'q', NULL, false, "no progress on stderr"},
      {"verify", 0, "full|sample", false, "how the coordinator checks each chunk (default full)"},
      {"signing-dir", 0, "DIR", false, "farm CA and C2PA signing key (default ~/.config/reelfarm/c2pa; made on first use)"},
      S_END}},
    {"submit", "[JOB.yaml]", 0, 1, "send a job to a running coordinator; prints its id",
     "Checks the spec locally (errors name the file and line) and sends it. With --openjd, "
     "imports an Open Job Description template (2023-09 subset, see docs/CLI.md) instead of a "
     "JOB.yaml. --wait follows the job and exits with its outcome.",
     rf_cli_submit,
     {{"openjd", 0, "TEMPLATE.yaml", false, "import an Open Job Description job template"},
      {"param", 'p', "K=V", true, "set a template parameter (with --openjd; repeatable)"},
      {"wait", 'w', NULL, false, "follow the job to its end; exit with its outcome"},
      {"quiet", 'q', NULL, false, "with --wait: no progress on stderr"},
      S_COORD,
      S_END}},
    {"status", "JOB_ID", 1, 1, "a job's state and chunks", "Shows a job and its chunks.",
     rf_cli_status, {S_JSON, S_COORD, S_END}},
    {"jobs", "", 0, 0, "every job the coordinator knows",
     "Lists the last 1000 jobs. With --watermark-tag, shows the job whose output carries that "
     "invisible watermark tag (from `reelfarm verify`): id, name, owner, submit time, output; "
     "exit 1 when no job has it.",
     rf_cli_jobs,
     {{"watermark-tag", 0, "TAG", false, "only the job whose frames carry this watermark tag (16 hex digits)"},
      S_JSON, S_COORD, S_END}},
    {"cancel", "JOB_ID", 1, 1, "cancel a job (a failed one: give it up, free its data)",
     "Cancels a job; its running chunks are told to stop at once.", rf_cli_cancel,
     {S_JSON, S_COORD, S_END}},
    {"pause", "JOB_ID", 1, 1, "stop starting new chunks of a job",
     "Running chunks finish; survives a coordinator restart.", rf_cli_pause,
     {S_JSON, S_COORD, S_END}},
    {"resume", "JOB_ID", 1, 1, "let a paused job's chunks start again", "Undoes pause.",
     rf_cli_resume, {S_JSON, S_COORD, S_END}},
    {"retry", "JOB_ID", 1, 1, "run a failed job's unfinished chunks again",
     "Each unfinished chunk gets a fresh set of attempts; done chunks are kept.", rf_cli_retry,
     {S_JSON, S_COORD, S_END}},
    {"workers", "", 0, 0, "the workers, their slots, failures and GPUs",
     "Lists every worker the coordinator has seen since it started.", rf_cli_workers,
     {S_JSON, S_COORD, S_END}},
    {"logs", "JOB_ID", 1, 1, "a job's events",
     "Prints a job's events: planning, failed assignments, retries, rejected results, the "
     "outcome.",
     rf_cli_logs,
     {{"follow", 'f', NULL, false, "keep printing until the job ends"}, S_JSON, S_COORD, S_END}},
    {"watch", "JOB_ID", 1, 1, "follow a job and its running chunks",
     "Redraws a block of progress bars on a terminal, prints one plain line per change "
     "otherwise. Ctrl-C only stops watching; the job goes on.",
     rf_cli_watch, {S_COORD, S_END}},
    {"fetch", "JOB_ID", 1, 1, "download a finished job's output from the coordinator",
     "Asks the coordinator to expose the output as a blob, downloads it over the blob socket "
     "(SHA-256 verified) and writes it atomically.",
     rf_cli_fetch,
     {{"output", 'o', "FILE", false, "where to write it (default: the output's file name)"},
      {"blobs", 'b', "EP", false, "the coordinator's blob endpoint (tcp://HOST:7602)"},
      S_JSON,
      S_COORD,
      S_END}},
    {"verify", "FILE", 1, 1, "check a file's provenance (C2PA, XMP, watermark) and media",
     "Checks the C2PA manifest in the spec's order (structure, claim signature, certificate "
     "chain against --trust, hard-binding hash), compares it with the XMP, and with --source "
     "checks frames, duration, audio and timestamps (--lossless: every decoded frame). Exit 0 "
     "trusted, 10 unknown signer, 20 tampered, 30 metadata stripped but watermark found, 40 "
     "nothing found, 1 media mismatch, 2 usage or I/O error. With --coordinator, a watermark "
     "found is looked up there and its job named. Finding no mark is no proof that a video is "
     "authentic.",
     rf_cli_verify,
     {{"trust", 't', "CA.pem", false, "trust anchors (PEM) the signer must chain to"},
      {"sidecar", 0, "FILE.c2pa", false, "a manifest sidecar (default: FILE with .c2pa beside it)"},
      {"watermark-key", 0, "FILE", false,
       "the farm's watermark.key (default: the one reelfarm render keeps beside its signing keys)"},
      {"source", 's', "SRC", false, "the job's input (required for the media checks)"},
      {"lossless", 'l', NULL, false, "also compare every decoded frame's checksum"},
      S_JSON,
      {"coordinator", 'c', "EP", false, "look the watermark's job up on this coordinator (tcp://HOST:7601)"},
      S_END}},
    {"audit", "verify FILE", 2, 2, "check a coordinator's audit log",
     "Checks <state>/audit.log record by record: sequence numbers, the SHA-256 hash chain and "
     "every checkpoint's Ed25519 signature. An edited, deleted or moved record fails with its "
     "record number (exit 1). Without --key the checkpoints are checked against the key the log "
     "names, which proves nothing about who wrote it: pass the farm's audit.pub.",
     rf_cli_audit,
     {{"key", 'k', "PUB", false, "the coordinator's audit.pub file, or its 64 hex digits"},
      S_JSON,
      S_END}},
    {"passes", "", 0, 0, "the built-in passes and their parameters",
     "Lists the passes this build knows, with each parameter's type, range and default.",
     rf_cli_passes, {S_JSON, S_END}},
    {"model", "run MODEL.onnx", 2, 2, "run an ONNX model on TensorProto files (CPU or GPU executor)",
     "Loads MODEL.onnx with the worker's executor, binds one --input TensorProto file to each "
     "graph input in order, runs it and writes DIR/output_N.pb (TensorProto) with one line per "
     "output on stdout. Refused models and inputs exit 2 with the node or file named; --device "
     "gpu runs the CUDA backend (fp32, or fp16 with --fp16) and exits 3 where there is no CUDA "
     "device. See docs/models.md.",
     rf_cli_model,
     {{"input", 'i', "FILE.pb", true, "a TensorProto file for the next graph input (repeatable)"},
      {"output", 'o', "DIR", false, "where output_N.pb are written (created if missing)"},
      {"device", 'd', "cpu|gpu", false, "the executor backend (default cpu)"},
      {"fp16", 0, NULL, false, "with --device gpu: fp16 tensors, fp32 accumulation"},
      S_END}},
    {"keygen", "", 0, 0, "make a CURVE key pair (NAME.key, NAME.pub)",
     "Writes DIR/NAME.key (mode 0600) and DIR/NAME.pub and prints the public key.", rf_cli_keygen,
     {{"out", 'o', "DIR", false, "the keys folder (default: keys: in cli.yaml, else ~/.config/reelfarm/keys)"},
      {"name", 'n', "NAME", false, "the key pair's name (default client)"},
      {"force", 'f', NULL, false, "replace an existing pair"},
      {"ca", 0, "DIR", false, "instead: make a farm CA and a C2PA signing certificate in DIR"},
      {"org", 0, "NAME", false, "with --ca: the organisation in the certificates (default reelfarm)"},
      S_END}},
    {"doctor", "", 0, 0, "check this machine and the coordinator",
     "One line per check (ok, warn, fail) with what to do.", rf_cli_doctor,
     {S_JSON, S_COORD, S_END}},
    {"completion", "SHELL", 1, 1, "print shell completion for bash or zsh",
     "Prints a completion script generated from this table: "
     "`source <(reelfarm completion bash)`, or save the zsh one as _reelfarm in $fpath.",
     rf_cli_completion, {S_END}},
    {"man", "", 0, 0, "print the man page (roff)", "Prints reelfarm(1): `reelfarm man | man -l -`.",
     rf_cli_man, {S_END}},
    {"version", "", 0, 0, "print the version", "Prints `reelfarm VERSION`.", rf_cli_version,
     {S_END}},
};

/* clang-format on */

#define S_NCOMMANDS (sizeof(s_commands) / sizeof(s_commands[0]))

const rf_cli_command_t *rf_cli_commands(size_t *count)
{
    *count = S_NCOMMANDS;
    return s_commands;
}

const rf_cli_command_t *rf_cli_command_find(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (!strcmp(s_commands[i].name, name))
            return &s_commands[i];
    return NULL;
}

static size_t s_nflags(const rf_cli_command_t *cmd)
{
    size_t n = 0;
    while (n < RF_CLI_MAX_FLAGS && cmd->flags[n].name)
        n++;
    return n;
}

void rf_cli_usage_line(const rf_cli_command_t *cmd, char *out, size_t size)
{
    size_t len = 0;
    int n = snprintf(out, size, "usage: reelfarm %s%s%s", cmd->name, *cmd->operands ? " " : "",
                     cmd->operands);
    len = n > 0 ? (size_t)n : 0;
    for (size_t i = 0; i < s_nflags(cmd) && len < size; i++) {
        const rf_cli_flag_t *f = &cmd->flags[i];
        n = snprintf(out + len, size - len, " [--%s%s%s]%s", f->name, f->value ? " " : "",
                     f->value ? f->value : "", f->repeat ? "..." : "");
        len += n > 0 ? (size_t)n : 0;
    }
}

int rf_cli_usage_error(const rf_cli_command_t *cmd, const char *fmt, ...)
{
    char usage[1024];
    va_list ap;
    fprintf(stderr, "reelfarm %s: ", cmd->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    rf_cli_usage_line(cmd, usage, sizeof(usage));
    fprintf(stderr, "\n%s\n", usage);
    return RF_EXIT_USAGE;
}

static void s_help(const rf_cli_command_t *cmd)
{
    char usage[1024];
    rf_cli_usage_line(cmd, usage, sizeof(usage));
    printf("%s\n  %s\n", usage, cmd->doc);
    size_t n = s_nflags(cmd);
    if (n)
        printf("\n");
    for (size_t i = 0; i < n; i++) {
        const rf_cli_flag_t *f = &cmd->flags[i];
        char left[64];
        if (f->letter)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", f->letter, f->name, f->value ? " " : "",
                     f->value ? f->value : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", f->name, f->value ? " " : "",
                     f->value ? f->value : "");
        printf("  %-28s %s\n", left, f->doc);
    }
}

void rf_cli_print_overview(FILE *f)
{
    fprintf(f, "usage: reelfarm COMMAND [ARGS]\n\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s %s", s_commands[i].name, s_commands[i].operands);
        fprintf(f, "  %-22s %s\n", left, s_commands[i].summary);
    }
    fprintf(f, "\n`reelfarm COMMAND --help` shows a command's flags. Coordinator: --coordinator "
               "tcp://HOST:7601,\nelse REELFARM_COORDINATOR, else 'coordinator:' in "
               "$XDG_CONFIG_HOME/reelfarm/cli.yaml,\nelse tcp://127.0.0.1:7601.\n");
}

int rf_cli_parse(const rf_cli_command_t *cmd, int argc, char **argv, rf_cli_args_t *out)
{
    struct option opts[RF_CLI_MAX_FLAGS + 2];
    char shorts[3 * RF_CLI_MAX_FLAGS + 4] = ":h"; /* ':' first: a missing value returns ':' */
    size_t n = s_nflags(cmd), slen = 2;
    memset(out, 0, sizeof(*out));
    out->cmd = cmd;
    for (size_t i = 0; i < n; i++) {
        const rf_cli_flag_t *f = &cmd->flags[i];
        opts[i] = (struct option){f->name, f->value ? required_argument : no_argument, NULL,
                                  (int)(256 + i)};
        if (f->letter) {
            shorts[slen++] = f->letter;
            if (f->value)
                shorts[slen++] = ':';
        }
    }
    shorts[slen] = '\0';
    opts[n] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n + 1] = (struct option){NULL, 0, NULL, 0};
    opterr = 0;
    optind = 0; /* glibc: 0 also resets the argument permutation state of an earlier parse */
    int opt, index = -1;
    while ((index = -1, opt = getopt_long(argc, argv, shorts, opts, &index)) != -1) {
        const char *seen = argv[optind - 1];
        if (opt == 'h') {
            s_help(cmd);
            return -1;
        }
        if (opt == '?') {
            if (optopt && optopt < 256)
                return rf_cli_usage_error(cmd, "unknown flag '-%c'", optopt);
            return rf_cli_usage_error(cmd, "unknown flag '%s'", seen);
        }
        if (opt == ':') {
            /* The flag that lacks its value: by letter (optopt) or the long name given. */
            for (size_t i = 0; i < n; i++)
                if ((optopt && optopt == cmd->flags[i].letter) || optopt == (int)(256 + i))
                    return rf_cli_usage_error(cmd, "flag '--%s' needs a value (%s)",
                                              cmd->flags[i].name, cmd->flags[i].value);
            return rf_cli_usage_error(cmd, "flag '%s' needs a value", seen);
        }
        size_t fi = n;
        if (opt >= 256)
            fi = (size_t)(opt - 256);
        else
            for (size_t i = 0; i < n; i++)
                if (cmd->flags[i].letter == opt)
                    fi = i;
        if (fi >= n)
            return rf_cli_usage_error(cmd, "unknown flag '%s'", seen);
        const rf_cli_flag_t *f = &cmd->flags[fi];
        if (!f->repeat && rf_cli_arg(out, f->name))
            return rf_cli_usage_error(cmd, "flag '--%s' given twice", f->name);
        if (out->nvalues == RF_CLI_MAX_VALUES)
            return rf_cli_usage_error(cmd, "more than %d flags", RF_CLI_MAX_VALUES);
        out->values[out->nvalues].flag = f->name;
        out->values[out->nvalues].value = f->value ? optarg : "";
        out->nvalues++;
    }
    int count = argc - optind;
    if (count < cmd->min_operands)
        return rf_cli_usage_error(cmd, "missing %s", cmd->operands);
    if (count > cmd->max_operands)
        return rf_cli_usage_error(cmd, "unexpected argument '%s'",
                                  argv[optind + cmd->max_operands]);
    for (int i = 0; i < count; i++)
        out->operands[out->noperands++] = argv[optind + i];
    return 0;
}

const char *rf_cli_arg(const rf_cli_args_t *a, const char *flag)
{
    const char *v = NULL;
    for (int i = 0; i < a->nvalues; i++)
        if (!strcmp(a->values[i].flag, flag))
            v = a->values[i].value;
    return v;
}

int rf_cli_exit_for(int rc)
{
    switch (rc) {
    case RF_EUNAVAIL:
        return RF_EXIT_UNREACHABLE;
    case RF_EPERM:
        return RF_EXIT_REFUSED;
    case RF_ECONFIG:
    case RF_ENOENT:
    case RF_EINVAL:
        return RF_EXIT_USAGE;
    default:
        return RF_EXIT_FAILED;
    }
}

int rf_cli_version(const rf_cli_args_t *a)
{
    (void)a;
    printf("reelfarm %s\n", RF_VERSION);
    return RF_EXIT_OK;
}

/* ---- completion --------------------------------------------------------------------------------
 * Values named FILE, DIR or *.yaml complete as paths; other values (EP, N, K=V) complete as
 * nothing. Operands: SHELL completes bash/zsh, the rest as paths. */

static bool s_value_is_path(const char *value)
{
    return value && (strstr(value, "FILE") || strstr(value, "DIR") || strstr(value, ".yaml") ||
                     !strcmp(value, "SRC"));
}

static void s_bash(void)
{
    printf("# bash completion for reelfarm, generated by `reelfarm completion bash`.\n"
           "# Load with: source <(reelfarm completion bash)\n"
           "_reelfarm() {\n"
           "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
           "    local cmd=${COMP_WORDS[1]} flags='' pathflags=''\n"
           "    COMPREPLY=()\n"
           "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
           "        COMPREPLY=($(compgen -W '");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        printf("%s%s", i ? " " : "", s_commands[i].name);
    printf(" help' -- \"$cur\"))\n"
           "        return 0\n"
           "    fi\n"
           "    case $cmd in\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const rf_cli_command_t *c = &s_commands[i];
        printf("    %s) flags='", c->name);
        for (size_t k = 0; k < s_nflags(c); k++)
            printf("--%s ", c->flags[k].name);
        printf("--help'; pathflags='");
        bool first = true;
        for (size_t k = 0; k < s_nflags(c); k++) {
            if (!s_value_is_path(c->flags[k].value))
                continue;
            printf("%s--%s", first ? "" : " ", c->flags[k].name);
            if (c->flags[k].letter)
                printf(" -%c", c->flags[k].letter);
            first = false;
        }
        printf("';;\n");
    }
    printf("    *) return 0;;\n"
           "    esac\n"
           "    local f\n"
           "    for f in $pathflags; do\n"
           "        if [ \"$prev\" = \"$f\" ]; then COMPREPLY=($(compgen -f -- \"$cur\")); return "
           "0; fi\n"
           "    done\n"
           "    if [[ $cur == -* ]]; then\n"
           "        COMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n"
           "    elif [ \"$cmd\" = completion ]; then\n"
           "        COMPREPLY=($(compgen -W 'bash zsh' -- \"$cur\"))\n"
           "    else\n"
           "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
           "    fi\n"
           "    return 0\n"
           "}\n"
           "complete -o filenames -F _reelfarm reelfarm\n");
}

/* Text safe inside a zsh single-quoted _arguments spec: no quotes, brackets or colons. */
static void s_zsh_text(const char *s)
{
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", stdout);
        else if (*s == '[')
            fputc('(', stdout); /* brackets and colons delimit _arguments fields */
        else if (*s == ']')
            fputc(')', stdout);
        else if (*s == ':')
            fputc(';', stdout);
        else
            fputc(*s, stdout);
    }
}

static void s_zsh(void)
{
    printf("#compdef reelfarm\n"
           "# zsh completion for reelfarm, generated by `reelfarm completion zsh`.\n"
           "# Save as _reelfarm in a folder on $fpath.\n"
           "_reelfarm() {\n"
           "    local -a commands\n"
           "    commands=(\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        printf("        '%s:", s_commands[i].name);
        s_zsh_text(s_commands[i].summary);
        printf("'\n");
    }
    printf("    )\n"
           "    if (( CURRENT == 2 )); then\n"
           "        _describe 'command' commands\n"
           "        return\n"
           "    fi\n"
           "    local cmd=$words[2]\n"
           "    shift words\n"
           "    (( CURRENT-- ))\n"
           "    case $cmd in\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const rf_cli_command_t *c = &s_commands[i];
        printf("    %s)\n        _arguments \\\n", c->name);
        for (size_t k = 0; k < s_nflags(c); k++) {
            const rf_cli_flag_t *f = &c->flags[k];
            printf("            '%s--%s%s[", f->repeat ? "*" : "", f->name, f->value ? "=" : "");
            s_zsh_text(f->doc);
            printf("]");
            if (f->value)
                printf(":%s:%s", f->value, s_value_is_path(f->value) ? "_files" : " ");
            printf("' \\\n");
        }
        printf("            '--help[show this command'\\''s flags]' \\\n");
        if (!strcmp(c->name, "completion"))
            printf("            '1:shell:(bash zsh)'\n");
        else if (c->max_operands > 0) {
            printf("            '*:");
            s_zsh_text(c->operands);
            printf(":_files'\n");
        } else
            printf("            \n");
        printf("        ;;\n");
    }
    printf("    esac\n"
           "}\n"
           "_reelfarm \"$@\"\n");
}

int rf_cli_completion(const rf_cli_args_t *a)
{
    const char *shell = a->operands[0];
    if (!strcmp(shell, "bash"))
        s_bash();
    else if (!strcmp(shell, "zsh"))
        s_zsh();
    else
        return rf_cli_usage_error(a->cmd, "unknown shell '%s' (expected bash or zsh)", shell);
    return RF_EXIT_OK;
}

/* ---- man page -----------------------------------------------------------------------------------
 */

/* Roff text: backslashes and hyphens escaped, a leading '.' or '\'' guarded. */
static void s_roff(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            fputc(*s, stdout);
    }
}

static void s_roff_flag(const rf_cli_flag_t *f)
{
    printf(".TP\n");
    if (f->letter)
        printf("\\fB\\-%c\\fR, ", f->letter);
    printf("\\fB\\-\\-");
    s_roff(f->name);
    printf("\\fR");
    if (f->value) {
        printf(" \\fI");
        s_roff(f->value);
        printf("\\fR");
    }
    printf("\n");
    s_roff(f->doc);
    printf("%s\n", f->repeat ? " May be given more than once." : "");
}

int rf_cli_man(const rf_cli_args_t *a)
{
    (void)a;
    printf(
        ".\\\" reelfarm(1), generated by `reelfarm man` from the command table (cli/cmdtable.c).\n"
        ".TH REELFARM 1 \"\" \"reelfarm %s\" \"User Commands\"\n"
        ".SH NAME\n"
        "reelfarm \\- submit and follow jobs on a reelfarm video render farm\n"
        ".SH SYNOPSIS\n",
        RF_VERSION);
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const rf_cli_command_t *c = &s_commands[i];
        printf(".B reelfarm %s\n", c->name);
        if (*c->operands) {
            printf(".I ");
            s_roff(c->operands);
            printf("\n");
        }
        for (size_t k = 0; k < s_nflags(c); k++) {
            const rf_cli_flag_t *f = &c->flags[k];
            printf("[\\fB\\-\\-");
            s_roff(f->name);
            printf("\\fR");
            if (f->value) {
                printf(" \\fI");
                s_roff(f->value);
                printf("\\fR");
            }
            printf("]%s\n", f->repeat ? "..." : "");
        }
        printf(".br\n");
    }
    printf(".SH DESCRIPTION\n"
           "\\fBreelfarm\\fR renders videos on a farm of GPU workers run by a coordinator, or on a "
           "private farm on this machine (\\fBrender\\fR).\n"
           "Every command takes \\fB\\-\\-help\\fR.\n"
           ".SH COMMANDS\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++) {
        const rf_cli_command_t *c = &s_commands[i];
        printf(".SS \"%s", c->name);
        if (*c->operands) {
            printf(" ");
            s_roff(c->operands);
        }
        printf("\"\n");
        s_roff(c->summary);
        printf(".\n");
        s_roff(c->doc);
        printf("\n");
        for (size_t k = 0; k < s_nflags(c); k++)
            s_roff_flag(&c->flags[k]);
    }
    printf(".SH EXIT STATUS\n"
           ".TP\n0\nsuccess\n"
           ".TP\n1\nthe job failed or was cancelled; \\fBverify\\fR: a check failed; "
           "\\fBfetch\\fR: the job is not done\n"
           ".TP\n2\nusage error, invalid spec or template, missing input, bad cli.yaml, "
           "unknown job\n"
           ".TP\n3\ncannot reach the coordinator\n"
           ".TP\n4\nrefused by the coordinator (authentication)\n"
           ".TP\n130\ninterrupted\n"
           ".SH ENVIRONMENT\n"
           ".TP\n.B REELFARM_COORDINATOR\nthe coordinator's client endpoint when "
           "\\fB\\-\\-coordinator\\fR is not given\n"
           ".TP\n.B REELFARM_BLOBS\nthe blob endpoint for \\fBfetch\\fR when \\fB\\-\\-blobs\\fR "
           "is not given\n"
           ".TP\n.B XDG_CONFIG_HOME\nwhere reelfarm/cli.yaml is looked for\n"
           ".SH FILES\n"
           ".TP\n.I ~/.config/reelfarm/cli.yaml\n"
           "\\fBversion: 1\\fR, \\fBcoordinator:\\fR, \\fBblobs:\\fR and \\fBkeys:\\fR; flags "
           "override the environment, which overrides this file\n"
           ".SH SEE ALSO\n"
           "\\fBreelfarm\\-coordinator \\-\\-help\\fR, \\fBreelfarm\\-worker \\-\\-help\\fR, and "
           "docs/CLI.md in the reelfarm sources (the JSON schemas, cli.yaml, OpenJD templates)\n");
    return RF_EXIT_OK;
}
