/* signing.h - the coordinator's C2PA signing of every stitched output (provenance.h). Internal to
 * the coordinator module. */
#ifndef RF_COORD_SIGNING_H
#define RF_COORD_SIGNING_H

#include "config.h"
#include "provenance.h"
#include "store.h"

/* Loads the signer named by cfg's signing: section, or (without one) the farm CA's signer in
 * signing.dir, default <state_dir>/signing, made on first start (logged with its path). */
int rf_coord_signer_open(const rf_coordinator_config_t *cfg, const char *state_dir,
                         rf_prov_signer_t **out, rf_err_t *err);

/* Signs a finished job's output in place (embedded manifest for MP4/MOV, sidecar for all), with
 * the job's id, spec hash, pipeline, seed, subjects' consent bases (hashed) and its input as the
 * ingredient. Safe on a worker thread: reads only immutable job data. */
int rf_coord_sign_output(const rf_prov_signer_t *signer, const rf_store_job_t *row,
                         const rf_job_spec_t *spec, rf_err_t *err);

#endif
