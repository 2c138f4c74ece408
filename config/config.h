/* config.h - job specs and daemon configs, loaded from YAML (libfyaml) and validated key by key.
 *
 * Every problem is reported as one line naming the file, the line and the key:
 *   "job.yaml:14: key 'encode.crf': expected an integer in 0..63, got 'high'"
 * Unknown keys, wrong types, values out of range and missing required keys are all errors. The
 * loaders never print; they fill an rf_err_t (code RF_ECONFIG, or RF_ENOENT/RF_EIO for the file).
 *
 * Schema: DESIGN §4 for jobs; config/examples/ holds commented ready files for all three kinds.
 */
#ifndef RF_CONFIG_H
#define RF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_SPEC_MAX_BYTES (1024 * 1024) /* a job spec or config file larger than this is refused */
#define RF_SPEC_MAX_PASSES 32
#define RF_SPEC_MAX_PARAMS 64            /* per pass, and encode options */
#define RF_SPEC_MAX_SUBJECTS 256
#define RF_SPEC_MAX_RERENDERS 16         /* critic.max_rerenders at most */

/* ---- passes known to this build (the catalogue the spec loader validates against) ---------- */

typedef enum rf_param_type {
    RF_PARAM_FLOAT,
    RF_PARAM_INT,
    RF_PARAM_BOOL,
    RF_PARAM_ENUM,   /* one of choices, '|'-separated: "source|first-frame" */
    RF_PARAM_STRING, /* free text (e.g. a model path, resolved against the spec's folder) */
    RF_PARAM_PATH,   /* a file path, resolved against the spec's folder */
} rf_param_type_t;

typedef struct rf_param_def {
    const char *key;
    rf_param_type_t type;
    double min, max;     /* for FLOAT and INT */
    const char *choices; /* for ENUM */
    const char *def;     /* default as YAML text; NULL means the key is required */
    const char *doc;     /* one line for `reelfarm passes` and docs */
    bool internal;       /* set by the coordinator when it assigns a chunk (color-match's
                            scene_ref), never by users: the spec loader refuses the key and fills
                            no default; the worker-side pass reads it like any other */
} rf_param_def_t;

struct rf_pass_spec;

typedef struct rf_pass_def {
    const char *name;
    const char *roles;  /* allowed roles, '|'-separated: "refine" or "generate|refine" */
    bool temporal;      /* uses context frames */
    bool gpu;           /* runs only on a worker with a CUDA device */
    int64_t vram_mib;   /* free VRAM it needs on that device, 0 if it does not say */
    const rf_param_def_t *params;
    size_t nparams;
    const char *doc;
    /* Checks that need more than one parameter, or a parameter's text beyond its type (scale:
     * width and height not both 0; color-match: reference is "source" or six numbers). NULL =
     * none. Returns 0, or -1 with a message for the user in why. */
    int (*check)(const struct rf_pass_spec *pass, char *why, size_t size);
    /* Added by the coordinator to every job that needs it (watermark, label: docs/PROVENANCE.md);
     * a job spec may not name it, so no spec can drop, move or mistune it. */
    bool automatic;
} rf_pass_def_t;

/* The built-in catalogue (config/catalog.c). Plugin passes (docs/passes.md) are not in it: a job
 * spec names one with `plugin: true`, and its parameters go to the worker unvalidated. */
const rf_pass_def_t *rf_pass_catalog(size_t *count);
const rf_pass_def_t *rf_pass_find(const char *name);

/* ---- job spec (DESIGN §4) ------------------------------------------------------------------- */

typedef struct rf_param {
    char *key;
    char *value; /* canonical text: defaults filled in, paths made absolute */
} rf_param_t;

/* Part of the pass plugin ABI (worker/passes/passes.h): plugins read name, role and params. */
typedef struct rf_pass_spec {
    char *name;
    char *role;         /* generate | refine */
    rf_param_t *params; /* built-in: every non-internal parameter of the pass's definition,
                           defaults filled in (plus, on the worker, the coordinator's internal
                           ones); plugin: the keys the spec gave, as written */
    size_t nparams;
} rf_pass_spec_t;

typedef enum rf_split { RF_SPLIT_SCENE, RF_SPLIT_KEYFRAME } rf_split_t;
typedef enum rf_audio_mode { RF_AUDIO_COPY, RF_AUDIO_NONE } rf_audio_mode_t;

/* Why a person may be depicted (provenance.subjects[].basis). */
typedef enum rf_consent_basis {
    RF_BASIS_CONSENT,                  /* the person signed a release: release names it */
    RF_BASIS_PUBLIC_DOMAIN_HISTORICAL, /* a historical figure whose likeness is public domain */
    RF_BASIS_LICENSED,                 /* licensed footage/likeness: release names the licence */
    RF_BASIS_FICTIONAL,                /* not a real person */
} rf_consent_basis_t;

#define RF_SUBJECT_DIGEST_LEN 32

typedef struct rf_subject {
    char *name;
    char *basis;   /* consent | public-domain-historical | licensed | fictional */
    char *release; /* reference to the release/licence document; "" only for
                      public-domain-historical and fictional */
    rf_consent_basis_t basis_kind; /* basis as an enum */
    /* SHA-256 of "reelfarm subject v1" NUL name NUL basis NUL release: what provenance records
     * (the C2PA manifest, the audit log's consent record) instead of the name. It is not
     * anonymous - anyone who guesses the name and the release reference can check a guess -
     * it only keeps names out of output files. */
    uint8_t digest[RF_SUBJECT_DIGEST_LEN];
} rf_subject_t;

typedef struct rf_job_spec {
    int version;          /* 1 */
    char *source;         /* where the spec came from, for messages ("job.yaml") */
    char *base_dir;       /* folder relative paths were resolved against (absolute) */
    char *name;           /* default: the input file's base name without extension */
    char *input;          /* absolute path */
    char *output;         /* absolute path */
    uint64_t seed;        /* default 0 */
    int priority;         /* 0..100, default 50 */
    struct {
        rf_split_t split;       /* default scene */
        double target_seconds;  /* default 6, > 0 */
        double max_seconds;     /* default 20, >= target_seconds */
        int context_frames;     /* default 0, 0..256 */
        int seam_overlap;       /* default 0, 0..64 */
        double scene_threshold; /* default 0.1, 0..1: mean luma step (64 px thumbnails) that can be a cut */
    } chunking;
    rf_pass_spec_t *pipeline;
    size_t npasses;
    struct {
        char *codec;          /* libx264 | libx265 | libsvtav1 | ffv1 | prores_ks | h264_nvenc | hevc_nvenc */
        int crf;              /* -1 = encoder default; range checked per codec */
        char *preset;         /* NULL = encoder default */
        char *pix_fmt;        /* NULL = the source's */
        int64_t bitrate;      /* bits/s, 0 = unset; "8M"/"800k" accepted */
        int gop;              /* 0 = encoder default */
        rf_param_t *options;  /* extra encoder AVOptions (key: value) */
        size_t noptions;
    } encode;
    rf_audio_mode_t audio;    /* default copy */
    struct {
        rf_subject_t *subjects;
        size_t nsubjects;
        bool watermark;       /* always true: `watermark: false` is refused (every output is marked) */
        /* provenance.depicts: real-people | no-real-people. Real people when the spec says so or
         * any subject's basis is not fictional; such a job must name every person with a basis
         * (consent and licensed with a release reference), or it is refused at load. */
        bool depicts_real_people;
        /* provenance.label: the visible "AI-GENERATED" label. Default: on when the job depicts
         * real people; `label: false` is refused for such a job. */
        bool label;
    } provenance;
    /* critic: the critic gate (docs/models.md). model NULL = none. Every rendered frame is scored
     * by the model; a chunk whose lowest frame score is under threshold is rendered again with
     * the next seed (seed + 1, ...), at most max_rerenders times, and the best render is kept. */
    struct {
        char *model;          /* absolute path of the .onnx file; NULL = no gate */
        double threshold;     /* required with model */
        int max_rerenders;    /* default 2, 0..RF_SPEC_MAX_RERENDERS */
        double input_min, input_max; /* the model's input for pipeline values 0 and 1 (0, 1) */
        char *device;         /* auto (default) | cpu | gpu */
    } critic;
    struct {
        bool gpu;             /* default false; a pass that needs a GPU implies it */
        int64_t vram_mib;     /* default 0; free VRAM a worker must report, implies gpu */
    } requirements;
} rf_job_spec_t;

/* Appends the provenance passes that go into every job (config/marks.c): `label` (the visible
 * AI-GENERATED label) when spec->provenance.label, then `watermark` - always, and always last -
 * with the pattern key (hex, 64 digits) and the 64-bit payload (hex, 16 digits) as its internal
 * parameters. The coordinator calls it on every spec it loads (submit and restart), so the stored
 * spec stays what the user wrote. RF_EEXIST if the spec already has them. */
int rf_job_spec_add_marks(rf_job_spec_t *spec, const char *pattern_key_hex, const char *payload_hex,
                          rf_err_t *err);

/* Loads a spec file. Relative paths resolve against the file's folder. */
int rf_job_spec_load_file(const char *path, rf_job_spec_t **out, rf_err_t *err);

/* Loads a spec from memory. source names it in messages; base_dir (absolute) resolves relative
 * paths. */
int rf_job_spec_load_string(const char *yaml, size_t len, const char *source, const char *base_dir,
                            rf_job_spec_t **out, rf_err_t *err);

void rf_job_spec_destroy(rf_job_spec_t **spec);

/* What a worker must have for this job: the spec's requirements joined with those of every pass
 * of its pipeline (a GPU if any needs one, the most VRAM any asks for). */
void rf_job_spec_requirements(const rf_job_spec_t *spec, bool *gpu, int64_t *vram_mib);

/* Frames of history a built-in temporal pass needs before a frame to render it exactly as an
 * unchunked run would (deflicker: window - 1; color-match: the smoothing window - 1); 0 for
 * others. Must agree with the pass's plan() in worker/passes/. */
int rf_pass_context(const rf_pass_spec_t *pass);

/* Context frames a job's chunks get: the spec's context_frames, or more when its temporal passes
 * need it. Passes run in a chain, so their needs add up: a pass's history is made of frames the
 * passes before it rendered with their own full history. */
int rf_job_spec_context(const rf_job_spec_t *spec);

/* The value of a pass parameter (defaults already filled in), or NULL. */
const char *rf_pass_spec_param(const rf_pass_spec_t *pass, const char *key);

/* ---- daemon configs ------------------------------------------------------------------------- */

typedef struct rf_coordinator_config {
    char *source;           /* file it came from, or "" for defaults */
    char *state_dir;        /* required (or --state) */
    char *listen_workers;   /* default tcp://127.0.0.1:7600 */
    char *listen_clients;   /* default tcp://127.0.0.1:7601 */
    char *listen_blobs;     /* default tcp://127.0.0.1:7602 */
    int heartbeat_ms;       /* default 1000, 100..60000 */
    int liveness;           /* default 5, 2..100 */
    int task_timeout_s;     /* default 600, 10..86400: no progress this long fails the attempt */
    int max_attempts;       /* default 3, 1..20 */
    bool verify_sample;     /* verify: full (default: decode every frame of every result) |
                             * sample (count every packet, decode the first, last and one random
                             * GOP against the worker's per-frame checksum list) */
    char **media_roots;     /* folders inputs/outputs must stay under; none = anywhere */
    size_t nmedia_roots;
    char *log_level;        /* default info */
    /* HTTP (metrics, health, dashboard; docs/OBSERVABILITY.md), key `http:` */
    char *http_listen;      /* default 127.0.0.1:7603; "" disables; HOST:PORT, port 0 = any */
    char *http_token_file;  /* file holding the token; required when http_listen is not loopback */
    char *http_web_dir;     /* dashboard files; default: found next to the binary */
    char *shared_blobs;     /* blob store on storage the workers mount too; default: the state
                             * folder's blobs/ (workers get every byte over the blob socket) */
    /* C2PA signing of every output (docs/PROVENANCE.md), key `signing:`. Without key and cert
     * the coordinator makes a farm CA and signing key in <dir> (default <state_dir>/signing). */
    char *signing_key;      /* PEM private key (P-256 or Ed25519) */
    char *signing_cert;     /* PEM signing certificate */
    char *signing_chain;    /* PEM intermediates/CA; optional */
    char *signing_dir;      /* where made keys live when key/cert are not given */
    /* Security (docs/SECURITY.md), key `security:`. No key: plaintext, loopback only. */
    char *security_key;     /* security.key: the coordinator's NAME.key (CURVE server) */
    char *authorized_keys;  /* security.authorized_keys: folder with workers/ clients/ admins/ */
    bool insecure;          /* security.insecure: allow non-loopback listen without keys */
    /* Input limits (docs/SECURITY.md), key `limits:`. */
    struct {
        int64_t message_bytes;   /* one control frame (workers, clients); default 1 MiB */
        int64_t spec_bytes;      /* a submitted job spec; default 1 MiB */
        int64_t chunks_per_job;  /* chunks one job may be planned into; default 10000 */
        int64_t jobs_per_client; /* unfinished jobs one client key may have; default 100 */
        int64_t blob_bytes;      /* one uploaded blob; default 64 GiB */
        int64_t blob_uploads;    /* uploads in progress at once; default 256 */
    } limits;
} rf_coordinator_config_t;

typedef struct rf_worker_config {
    char *source;
    char *coordinator;      /* default tcp://127.0.0.1:7600 */
    char *blobs;            /* default: the coordinator's host with port 7602 */
    char *name;             /* default: host name */
    int slots;              /* default 0 = automatic (one per GPU, or cores/4 on CPU, at least 1) */
    char *cache_dir;        /* default $XDG_CACHE_HOME/reelfarm or /tmp/reelfarm-<uid> */
    int drain_grace_s;      /* default 60, 0..86400 */
    char *log_level;
    char **pass_dirs;       /* folders of pass plugins (*.so) loaded at start; default none */
    size_t npass_dirs;      /* at most 16 */
    char *shared_blobs;     /* this host's mount of the coordinator's shared blob store; used when
                             * its store id matches the coordinator's (common/blob.h) */
    /* CURVE (docs/SECURITY.md), key `security:`; both or neither. */
    char *security_key;     /* security.key: the worker's NAME.key */
    char *coordinator_key;  /* security.coordinator_key: the coordinator's NAME.pub */
    char *decode;           /* auto (default) | cpu | nvdec: where slots decode (media.h) */
} rf_worker_config_t;

/* Defaults, then the file (when path is not NULL). Command-line flags are applied by main.c. */
int rf_coordinator_config_load(const char *path, rf_coordinator_config_t **out, rf_err_t *err);
void rf_coordinator_config_destroy(rf_coordinator_config_t **cfg);
int rf_worker_config_load(const char *path, rf_worker_config_t **out, rf_err_t *err);
void rf_worker_config_destroy(rf_worker_config_t **cfg);
/* Appends a plugin folder (--pass-dir). RF_ETOOBIG past 16, RF_ENOMEM. */
int rf_worker_config_add_pass_dir(rf_worker_config_t *cfg, const char *dir);

/* Replaces a string field (frees the old one). Returns 0 or RF_ENOMEM. */
int rf_config_set_string(char **field, const char *value);

#endif
