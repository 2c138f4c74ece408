/* prov_internal.h - what the provenance module's files share; not part of its interface. */
#ifndef RF_PROV_INTERNAL_H
#define RF_PROV_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provenance.h"

/* Limits on what we read from a file we are asked to verify or sign. */
#define PROV_MAX_BOXES 4096                   /* top-level boxes in one file */
#define PROV_MAX_MOOV (256u * 1024 * 1024)   /* bytes of moov we load to patch */
#define PROV_MAX_MANIFEST (16u * 1024 * 1024) /* bytes of a manifest store */
#define PROV_MAX_XMP (1024u * 1024)

/* COSE algorithm ids (RFC 9053). */
#define PROV_COSE_ES256 (-7)
#define PROV_COSE_EDDSA (-8)

/* The C2PA manifest box's extended type, D8FEC3D6-1B0E-483C-9297-5828877EC481 (C2PA A.5). */
extern const uint8_t prov_uuid_c2pa[16];
/* The XMP box's extended type, BE7ACFCB-97A9-42E8-9C71-999491E3AFAC. */
extern const uint8_t prov_uuid_xmp[16];

/* ---- growable byte buffer: a failed allocation is sticky (oom) and checked once at the end -- */
typedef struct prov_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} prov_buf_t;

void prov_buf_put(prov_buf_t *b, const void *data, size_t len);
void prov_buf_u8(prov_buf_t *b, uint8_t v);
void prov_buf_be32(prov_buf_t *b, uint32_t v);
void prov_buf_be64(prov_buf_t *b, uint64_t v);
void prov_buf_zero(prov_buf_t *b, size_t len);
size_t prov_box_begin(prov_buf_t *b, const char type[4]); /* returns the box's start */
void prov_box_end(prov_buf_t *b, size_t start);            /* fills in the 32-bit size */
void prov_buf_free(prov_buf_t *b);

uint32_t prov_rd32(const uint8_t *p);
uint64_t prov_rd64(const uint8_t *p);
void prov_wr32(uint8_t *p, uint32_t v);
void prov_wr64(uint8_t *p, uint64_t v);

/* ---- ISO BMFF top-level boxes ---------------------------------------------------------------- */
typedef struct prov_box {
    uint64_t off;      /* absolute offset of the box header */
    uint64_t size;     /* whole box, header included */
    uint32_t hdr;      /* header bytes: 8, 16 (largesize), plus 16 for a uuid's extended type */
    char type[5];
    uint8_t uuid[16];  /* extended type when type is "uuid" */
} prov_box_t;

/* Lists the top-level boxes of the file open on fd (size bytes). Fails (RF_EMEDIA, naming the
 * offset) on a box that overruns the file or is smaller than its header. */
int prov_bmff_scan(int fd, uint64_t size, const char *name, prov_box_t **boxes, size_t *nboxes,
                   rf_err_t *err);

/* One bmff hash exclusion: a top-level box type, optionally only when data equals the bytes at
 * data_off from the box's start. */
typedef struct prov_exclusion {
    char type[5];
    uint32_t data_off;
    uint8_t data[64];
    size_t data_len; /* 0: no data condition */
} prov_exclusion_t;

/* The C2PA bmff.v2/v3 file hash (SHA-256): for every top-level box not excluded, its 8-byte
 * big-endian offset, then its bytes. */
int prov_bmff_hash(int fd, const char *name, const prov_box_t *boxes, size_t nboxes,
                   const prov_exclusion_t *ex, size_t nex, uint8_t out[32], rf_err_t *err);

/* SHA-256 of a byte range of fd ([off, off+len)), or of a whole file by path. */
int prov_sha256_fd(int fd, uint64_t off, uint64_t len, const char *name, EVP_MD_CTX *ctx,
                   rf_err_t *err);
int prov_sha256_file(const char *path, uint8_t out[32], rf_err_t *err);

/* Reads exactly len bytes at off. */
int prov_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *name, rf_err_t *err);

/* Patches every stco/co64 entry of the moov box in buf (whole box, header included) by
 * remap(old offset) and appends a udta box with QuickTime comment/description strings. Returns
 * the new moov in *out. */
typedef int (*prov_remap_fn)(void *arg, uint64_t old_off, uint64_t *new_off);
int prov_moov_rewrite(const uint8_t *moov, size_t len, prov_remap_fn remap, void *arg,
                      const char *comment, const char *description, prov_buf_t *out,
                      rf_err_t *err);
/* The size prov_moov_rewrite's output will have (the udta it adds). */
size_t prov_moov_growth(const char *comment, const char *description);

/* ---- the signer (keys.c) --------------------------------------------------------------------- */
struct rf_prov_signer {
    EVP_PKEY *key;
    int alg;                 /* PROV_COSE_ES256 or PROV_COSE_EDDSA */
    X509 *leaf;
    STACK_OF(X509) *chain;   /* intermediates for the x5chain (self-signed roots left out) */
};

/* Signs data with the signer's key; ES256 signatures come out raw r||s (64 bytes), as COSE
 * wants, not DER. */
int prov_sign(const rf_prov_signer_t *s, const uint8_t *data, size_t len, uint8_t sig[64],
              rf_err_t *err);
/* Verifies a COSE signature (raw r||s for ES256) with the key of cert. */
bool prov_verify_sig(X509 *cert, int alg, const uint8_t *data, size_t len, const uint8_t *sig,
                     size_t siglen);

/* ---- manifest (manifest.c) ------------------------------------------------------------------- */
typedef struct prov_manifest_in {
    const rf_prov_job_t *job;
    char manifest_label[64];  /* urn:c2pa:<uuid> */
    char instance_id[64];     /* xmp:iid:<uuid> */
    char when[32];            /* ISO 8601 UTC */
    const char *source_type;  /* RF_PROV_DST_* */
    bool bmff;                /* c2pa.hash.bmff.v3, else c2pa.hash.data over the whole file */
    uint8_t hash[32];         /* the hard binding's value */
    bool have_source;
    char source_title[256];
    char source_format[64];
    uint8_t source_sha[32];
    uint8_t spec_sha[32];
    uint8_t model_sha[RF_PROV_MAX_LIST][32];
    bool model_ok[RF_PROV_MAX_LIST];
} prov_manifest_in_t;

/* Builds the whole manifest store (JUMBF, superbox "c2pa") and signs its claim. Its size depends
 * only on the inputs' lengths, never on the hash or signature values. */
int prov_manifest_build(const rf_prov_signer_t *s, const prov_manifest_in_t *in, prov_buf_t *out,
                        rf_err_t *err);

void prov_uuid_v4(char out[37]);
void prov_hex(const uint8_t *p, size_t n, char *out); /* out: 2n+1 bytes */

#endif
