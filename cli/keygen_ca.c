/* keygen_ca.c - `reelfarm keygen --ca DIR [--org NAME]`: the farm CA and the C2PA signing
 * certificate every output is signed with (docs/PROVENANCE.md). The key code is in provenance/
 * (rf_prov_keygen_ca); this is the command line around it.
 */
#include <stdio.h>

#include "cli.h"
#include "provenance.h"

int rf_cli_keygen_ca(const rf_cli_args_t *a)
{
    const char *dir = rf_cli_arg(a, "ca"), *org = rf_cli_arg(a, "org");
    if (!*dir)
        return rf_cli_usage_error(a->cmd, "flag '--ca' needs a folder");
    if (org && !*org)
        return rf_cli_usage_error(a->cmd, "flag '--org' needs a name");
    static const char *const curve_only[] = {"out", "name", "force"};
    for (size_t i = 0; i < sizeof(curve_only) / sizeof(curve_only[0]); i++)
        if (rf_cli_has(a, curve_only[i]))
            return rf_cli_usage_error(a->cmd,
                                      "flag '--%s' is for CURVE key pairs, not with '--ca' (a farm "
                                      "CA is never replaced: choose another folder)",
                                      curve_only[i]);
    rf_err_t err = {0};
    int rc = rf_prov_keygen_ca(dir, org, &err);
    if (rc) {
        fprintf(stderr, "reelfarm: keygen: %s\n", err.msg);
        return rc == RF_EEXIST || rc == RF_EINVAL ? RF_EXIT_USAGE : RF_EXIT_FAILED;
    }
    printf("%s/ca.pem\tthe farm CA: give it to `reelfarm verify --trust`\n", dir);
    printf("%s/ca.key\tthe CA's private key (0600): keep it offline\n", dir);
    printf("%s/signer.pem\tthe C2PA signing certificate (EKU c2pa-kp-claimSigning, documentSigning)\n", dir);
    printf("%s/signer.key\tits private key (0600)\n", dir);
    printf("%s/chain.pem\tsigner then CA: the coordinator's `signing: {key, cert, chain}`\n", dir);
    return RF_EXIT_OK;
}
