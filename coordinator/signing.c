/* signing.c - every output the coordinator stitches gets a signed C2PA manifest (DESIGN §8):
 * loading or making the farm's signing key, and mapping a job onto what the manifest records.
 * No option turns signing off: a coordinator that cannot load or make a key does not start.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "signing.h"

#define COMP "coordinator"
#define S_PATH_MAX 4096

int rf_coord_signer_open(const rf_coordinator_config_t *cfg, const char *state_dir,
                         rf_prov_signer_t **out, rf_err_t *err)
{
    if (cfg->signing_key && cfg->signing_cert) {
        int rc = rf_prov_signer_load(cfg->signing_key, cfg->signing_cert, cfg->signing_chain, out,
                                     err);
        if (rc)
            return rf_err_prefix(err, "config signing: ");
        RF_INFO(COMP, "C2PA signing with '%s' (certificate '%s')", cfg->signing_key,
                cfg->signing_cert);
        return 0;
    }
    char dir[S_PATH_MAX], key[S_PATH_MAX + 16], cert[S_PATH_MAX + 16], chain[S_PATH_MAX + 16];
    if (cfg->signing_dir)
        snprintf(dir, sizeof(dir), "%s", cfg->signing_dir);
    else
        snprintf(dir, sizeof(dir), "%s/signing", state_dir);
    bool created = false;
    int rc = rf_prov_ensure_keys(dir, &created, err);
    if (rc)
        return rf_err_prefix(err, "C2PA signing keys: ");
    snprintf(key, sizeof(key), "%s/signer.key", dir);
    snprintf(cert, sizeof(cert), "%s/signer.pem", dir);
    snprintf(chain, sizeof(chain), "%s/chain.pem", dir);
    if ((rc = rf_prov_signer_load(key, cert, chain, out, err)))
        return rf_err_prefix(err, "C2PA signing keys in '%s': ", dir);
    if (created)
        RF_INFO(COMP,
                "made a farm CA and a C2PA signing key in '%s' (no signing: section in the "
                "config); give '%s/ca.pem' to `reelfarm verify --trust` to verify outputs as "
                "trusted",
                dir, dir);
    else
        RF_INFO(COMP, "C2PA signing with the farm key in '%s'", dir);
    return 0;
}

static bool s_is_model_param(const char *key)
{
    size_t n = strlen(key);
    return !strcmp(key, "model") || (n > 6 && !strcmp(key + n - 6, "_model"));
}

int rf_coord_sign_output(const rf_prov_signer_t *signer, const rf_store_job_t *row,
                         const rf_job_spec_t *spec, rf_err_t *err)
{
    rf_prov_job_t job;
    memset(&job, 0, sizeof(job));
    char pipeline[1024] = "";
    size_t used = 0;
    bool generates = false;
    for (size_t i = 0; i < spec->npasses; i++) {
        const rf_pass_spec_t *p = &spec->pipeline[i];
        int n = snprintf(pipeline + used, sizeof(pipeline) - used, "%s%s", i ? "," : "", p->name);
        if (n > 0 && (size_t)n < sizeof(pipeline) - used)
            used += (size_t)n;
        if (p->role && !strcmp(p->role, "generate"))
            generates = true;
        for (size_t k = 0; k < p->nparams && job.nmodels < RF_PROV_MAX_LIST; k++)
            if (s_is_model_param(p->params[k].key) && p->params[k].value[0])
                job.models[job.nmodels++] = p->params[k].value;
    }
    if (spec->provenance.nsubjects > RF_PROV_MAX_LIST)
        return rf_err_set(err, RF_ETOOBIG, "job '%s': more than %d subjects to record", row->id,
                          RF_PROV_MAX_LIST);
    for (size_t i = 0; i < spec->provenance.nsubjects; i++) {
        const rf_subject_t *s = &spec->provenance.subjects[i];
        job.subjects[i] = (rf_prov_subject_t){s->name, s->basis, s->release};
    }
    job.nsubjects = spec->provenance.nsubjects;
    job.job_id = row->id;
    job.job_name = spec->name;
    job.spec_text = row->spec_yaml ? row->spec_yaml : "";
    job.spec_len = strlen(job.spec_text);
    job.pipeline = pipeline;
    job.seed = spec->seed;
    /* A pipeline that generates is trained-algorithmic media; one that only refines the input
     * footage alters a recording: composite with trained algorithmic media. */
    job.altered_footage = !generates;
    job.source_path = spec->input;
    int rc = rf_prov_sign_file(signer, spec->output, &job, NULL, err);
    if (rc)
        return rf_err_prefix(err, "signing the output: ");
    return 0;
}
