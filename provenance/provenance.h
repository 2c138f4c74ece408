/* provenance.h - signed C2PA Content Credentials, XMP and plain metadata tags for every output.
 *
 * Every file the farm writes says it is synthetic and a farm key vouches for it (DESIGN §8, notes
 * provenance.md). This module writes, with our own C code (OpenSSL 3 for the crypto, libcbor for
 * CBOR), a C2PA 2.x manifest store into non-fragmented MP4/MOV:
 *
 *   ftyp | uuid(C2PA manifest store) | uuid(XMP) | the file's other boxes, moov patched
 *
 * - the manifest: assertions c2pa.actions.v2 (first action c2pa.created with an IPTC
 *   digitalSourceType), c2pa.ingredient.v3 (the job's source), com.reelfarm.render (job id, spec
 *   hash, pipeline, model hashes, seed, consent bases as hashes) and the hard binding
 *   c2pa.hash.bmff.v3; a claim v2; a COSE_Sign1 (ES256, P-256) claim signature with the x5chain;
 * - an XMP packet (Iptc4xmpExt:DigitalSourceType, dc:description, xmpMM:InstanceID) in MP4's XMP
 *   uuid box, for tools that read no C2PA;
 * - QuickTime user-data strings comment/description in moov/udta (ffprobe shows them);
 * - a copy of the manifest store beside the file (OUTPUT minus extension + ".c2pa").
 *
 * Inserting boxes before mdat moves the media data: every stco/co64 chunk offset is rewritten.
 * The BMFF hash (bmff.v3: each top-level box hashed as its 8-byte offset then its bytes, ftyp,
 * mfra and the C2PA box excluded) is computed over the written file and the manifest is then
 * written into the space reserved for it, so its size never changes.
 *
 * Files in other containers (MKV, NUT, ...) cannot embed C2PA: they get the .c2pa sidecar only,
 * bound by c2pa.hash.data over the whole file.
 *
 * Verification (rf_prov_verify_file) checks in the spec's order: one C2PA box, the JUMBF
 * structure, the active manifest's claim, the COSE signature, the certificate profile and chain
 * against trust anchors, every hashed assertion URI, and the hard binding over the file; then it
 * compares the XMP digital source type with the manifest's.
 */
#ifndef RF_PROVENANCE_H
#define RF_PROVENANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* IPTC digital source types we write (https://cv.iptc.org/newscodes/digitalsourcetype/). */
#define RF_PROV_DST_TRAINED "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#define RF_PROV_DST_COMPOSITE \
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"

/* The plain-language sentence of the XMP dc:description and the comment/description tags. */
#define RF_PROV_DISCLOSURE \
    "AI-generated or AI-altered video (synthetic media) rendered by reelfarm; " \
    "see its C2PA Content Credentials"

#define RF_PROV_MAX_LIST 64 /* models and subjects recorded per output */

/* A real person depicted, recorded as hashes only: no name leaves the farm in a file. */
typedef struct rf_prov_subject {
    const char *name;    /* hashed (SHA-256 of name NUL basis NUL release), never written */
    const char *basis;   /* consent | public-domain-historical | licensed | fictional: written */
    const char *release; /* hashed with the name; may be "" */
} rf_prov_subject_t;

/* What the manifest says about the job that made the file. Strings are borrowed. */
typedef struct rf_prov_job {
    const char *job_id;        /* farm job id */
    const char *job_name;      /* dc:title of the output */
    const char *spec_text;     /* the job spec as submitted: its SHA-256 is recorded */
    size_t spec_len;
    const char *pipeline;      /* pass names in order, "grade,deflicker" */
    const char *models[RF_PROV_MAX_LIST]; /* model files used: their SHA-256 is recorded */
    size_t nmodels;
    uint64_t seed;
    rf_prov_subject_t subjects[RF_PROV_MAX_LIST];
    size_t nsubjects;
    bool altered_footage;      /* true: compositeWithTrainedAlgorithmicMedia, else trained... */
    const char *source_path;   /* the job's input: the ingredient (title, format, SHA-256); may be NULL */
} rf_prov_job_t;

/* A loaded signing key with its certificate chain (leaf first; the root may be left out). */
typedef struct rf_prov_signer rf_prov_signer_t;

/* Loads a PEM private key (PKCS#8 or traditional, P-256 or Ed25519), the PEM signing certificate
 * and optionally a PEM file of intermediates/CA (chain_path may be NULL; a self-signed root in it
 * is not put in the x5chain). Checks the key matches the certificate. */
int rf_prov_signer_load(const char *key_path, const char *cert_path, const char *chain_path,
                        rf_prov_signer_t **out, rf_err_t *err);
void rf_prov_signer_destroy(rf_prov_signer_t **signer);

/* Makes a farm CA (ca.pem, ca.key) and a signing certificate issued by it (signer.pem,
 * signer.key, chain.pem = signer then CA) in dir, creating dir and its parents (0700). Keys are
 * EC P-256, PKCS#8 PEM, mode 0600. Holds dir/.keygen.lock (flock) while it works, so processes
 * starting together make one CA. The signing certificate has the profile C2PA validators require: v3, CA:FALSE, critical
 * digitalSignature, subject and authority key ids, EKU c2pa-kp-claimSigning and
 * id-kp-documentSigning. Refuses to overwrite an existing ca.key (RF_EEXIST). org names the farm
 * in the subjects ("reelfarm" when NULL). */
int rf_prov_keygen_ca(const char *dir, const char *org, rf_err_t *err);

/* The coordinator's default: when dir/ca.key is missing, makes the keys as rf_prov_keygen_ca does
 * (under the same lock). Sets *created when it made them. */
int rf_prov_ensure_keys(const char *dir, bool *created, rf_err_t *err);

/* Signs path in place: MP4/MOV get XMP, tags and an embedded manifest (written to a temp file
 * beside it, fsynced and renamed over it); every file gets the sidecar. The media data is not
 * re-encoded. Refuses fragmented MP4 with a clear error. If manifest_sha256 is not NULL it gets
 * the SHA-256 of the manifest store (for the audit log). */
int rf_prov_sign_file(const rf_prov_signer_t *signer, const char *path, const rf_prov_job_t *job,
                      uint8_t manifest_sha256[32], rf_err_t *err);

/* The sidecar path for an output: path with its extension replaced by ".c2pa". */
int rf_prov_sidecar_path(const char *path, char *out, size_t size);

/* ---- verification ---------------------------------------------------------------------------- */

typedef enum rf_prov_verdict {
    RF_PROV_NONE = 0,      /* no manifest found (embedded or sidecar) */
    RF_PROV_TRUSTED,       /* valid, signed by a certificate that chains to a trust anchor */
    RF_PROV_UNTRUSTED,     /* valid, but the signer chains to no trust anchor given */
    RF_PROV_TAMPERED,      /* a manifest exists and a check failed (signature, hash, structure) */
} rf_prov_verdict_t;

#define RF_PROV_MAX_STATUS 32

/* One finding, named with the C2PA status code where the spec has one
 * ("claimSignature.validated", "assertion.bmffHash.mismatch", ...). */
typedef struct rf_prov_status {
    char code[64];
    bool failure;
    char detail[256];
} rf_prov_status_t;

typedef struct rf_prov_report {
    rf_prov_verdict_t verdict;
    bool embedded;             /* the manifest came from the file (else from the sidecar) */
    char manifest_label[128];  /* urn:c2pa:... */
    char claim_generator[128];
    char signer_subject[256];  /* the signing certificate's subject, one line */
    char digital_source_type[160]; /* from the first c2pa.created action */
    char xmp_source_type[160]; /* from the XMP packet, "" without one */
    bool xmp_found;
    bool xmp_agrees;           /* XMP digital source type equals the manifest's */
    char job_id[96];           /* from com.reelfarm.render */
    rf_prov_status_t status[RF_PROV_MAX_STATUS];
    int nstatus;
} rf_prov_report_t;

/* Verifies path's C2PA manifest (embedded, else the sidecar beside it, else sidecar_path when not
 * NULL). trust_pem: a PEM file of trust anchors, or NULL (then every valid signer is untrusted).
 * Returns 0 when the file was read (whatever the verdict, in rep), or a negative code when it
 * cannot be read at all (err says why). */
int rf_prov_verify_file(const char *path, const char *sidecar_path, const char *trust_pem,
                        rf_prov_report_t *rep, rf_err_t *err);

#endif
