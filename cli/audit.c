/* audit.c - `reelfarm audit verify FILE`: checks a coordinator's audit log (coordinator/audit.h):
 * the hash chain record by record and every checkpoint's Ed25519 signature. */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "audit.h"
#include "cli.h"

/* The public key from --key: 64 hex digits, or a file holding them (<state>/audit.pub). */
static int s_pubkey(const char *arg, uint8_t pk[32], char *why, size_t size)
{
    char text[200] = "";
    size_t len = strlen(arg);
    if (len != 64 || sodium_hex2bin(pk, 32, arg, 64, NULL, NULL, NULL) != 0) {
        FILE *f = fopen(arg, "r");
        if (!f) {
            snprintf(why, size, "--key '%s': neither 64 hex digits nor a readable file", arg);
            return -1;
        }
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[n] = '\0';
        while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
            text[--n] = '\0';
        if (n != 64 || sodium_hex2bin(pk, 32, text, 64, NULL, NULL, NULL) != 0) {
            snprintf(why, size, "--key '%s': the file does not hold 64 hex digits", arg);
            return -1;
        }
    }
    return 0;
}

int rf_cli_audit(const rf_cli_args_t *a)
{
    const char *verb = a->operands[0], *path = a->operands[1], *key = rf_cli_arg(a, "key");
    bool json = rf_cli_has(a, "json");
    uint8_t pk[32];
    char why[300], pkhex[65];
    rf_audit_report_t rep;
    rf_err_t err = {0};

    if (strcmp(verb, "verify") != 0)
        return rf_cli_usage_error(a->cmd, "unknown action '%s' (expected: verify)", verb);
    if (sodium_init() < 0)
        return RF_EXIT_FAILED;
    if (key && s_pubkey(key, pk, why, sizeof(why)) != 0)
        return rf_cli_usage_error(a->cmd, "%s", why);
    int rc = rf_audit_verify_file(path, key ? pk : NULL, &rep, &err);
    sodium_bin2hex(pkhex, sizeof(pkhex), rep.pubkey, 32);
    if (json) {
        printf("{\"file\":");
        rf_cli_json_string(stdout, path);
        printf(",\"ok\":%s,\"records\":%llu,\"checkpoints\":%llu,\"unsigned_tail\":%llu,\"bad_record\":%llu,"
               "\"key\":\"%s\",\"key_given\":%s,\"error\":",
               rc ? "false" : "true", (unsigned long long)rep.records, (unsigned long long)rep.checkpoints,
               (unsigned long long)rep.unsigned_tail, (unsigned long long)rep.bad_record,
               rep.checkpoints || key ? pkhex : "", key ? "true" : "false");
        if (rc)
            rf_cli_json_string(stdout, err.msg);
        else
            printf("null");
        printf("}\n");
    } else if (rc) {
        fprintf(stderr, "reelfarm audit: '%s': %s\n", path, err.msg);
    } else {
        printf("audit: '%s': %llu records, hash chain intact; %llu checkpoint signatures verified (key "
               "%s%s)\n",
               path, (unsigned long long)rep.records, (unsigned long long)rep.checkpoints,
               rep.checkpoints || key ? pkhex : "none",
               key ? "" : ", taken from the log itself: pass --key to check it is the farm's");
        if (rep.unsigned_tail)
            printf("audit: the last %llu records come after the last checkpoint: their deletion would "
                   "not show\n",
                   (unsigned long long)rep.unsigned_tail);
    }
    if (rc == RF_EVERIFY)
        return RF_EXIT_FAILED;
    return rc ? RF_EXIT_USAGE : RF_EXIT_OK;
}
