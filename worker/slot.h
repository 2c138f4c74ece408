/* slot.h - renders one leased chunk: fetch the input slice, decode, run the passes, encode exactly
 * the chunk's frame range, checksum the result and upload it (DESIGN §5, §6).
 *
 * rf_slot_render blocks; the worker runs it on the slot's own thread and talks to it only through
 * the atomics it passes (cancel in, frames_done out), so the control loop never waits on media.
 * Inside, the chunk flows through a pipeline of threads joined by bounded queues, so the stages
 * overlap and memory stays bounded whatever the chunk length:
 *
 *   demux+decode -> passes -> encode+mux -> verify (decode the encoder's packets, hash each frame)
 *
 * Seam overlap: the head_overlap first frames and the tail_overlap frames after the chunk go to
 * two small lossless (ffv1) side parts instead of the main encoder; each is checksummed (decoded
 * again: a few frames) and uploaded like the result, for the stitcher to cross-fade.
 *
 * Files the passes read (models, assets) arrive as blobs (rf_slot_file_t) and are fetched into the
 * worker's file cache first. With a critic gate (critic.h) the encode stage scores every frame, and
 * a chunk scoring under the threshold is rendered again, whole, with the next seed (at most
 * max_rerenders times); the best render is the one checksummed and uploaded.
 *
 * With an empty pipeline there is no pass stage and frames reach the encoder untouched, in their
 * own pixel format. The verify stage computes the per-frame SHA-256s the coordinator checks while
 * the encoder runs, from the packets it produces, instead of decoding the finished file again.
 * The first stage to fail stops the others (its error, naming the frame, is the chunk's); every
 * stage sees the cancel flag within RF_SLOT_WAIT_MS even while blocked on a queue.
 */
#ifndef RF_SLOT_H
#define RF_SLOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <libavutil/rational.h>

#include "config.h"
#include "error.h"
#include "hash.h"
#include "reelfarm.pb-c.h"
#include "zsec.h"

/* Queue sizes. A frame queue holds frames in the source's format (a 1080p yuv420p frame is 3 MiB,
 * so 8 + 8 frames are ~48 MiB per slot); enough to ride out per-frame jitter between stages, not
 * more: a deeper queue only adds memory, since the slowest stage sets the pace. Packets are small
 * and bursty (an encoder's lookahead flushes many at once at the end). */
#define RF_SLOT_QUEUE_DECODED 8   /* decoded frames waiting for the pass stage */
#define RF_SLOT_QUEUE_TO_ENCODE 8 /* frames waiting for the encoder (from passes, or decode) */
#define RF_SLOT_QUEUE_PACKETS 64  /* encoded packets waiting for the verify stage */
#define RF_SLOT_PARTIAL_KEEP_S 3600 /* an input download nobody resumed is deleted after this */
#define RF_SLOT_WAIT_MS 100       /* longest a queue wait goes without looking at the cancel flag */
#define RF_SLOT_MAX_RERENDERS 16  /* critic gate: re-renders of one chunk at most (config/jobspec.c) */

#define RF_SLOT_MAX_FILES 64      /* FileRefs in one Assign */
#define RF_SLOT_FILE_CRITIC UINT32_MAX /* rf_slot_file_t.pass of the critic's model */

/* A file a pass (or the critic) reads, as a blob (proto FileRef): fetched into the worker's file
 * cache, <cache_dir>/files/<sha256><ext>, once, and used from there by every chunk and job. */
typedef struct rf_slot_file {
    uint32_t pass;                    /* index in pipeline, or RF_SLOT_FILE_CRITIC */
    char key[32];                     /* the parameter it fills ("model", "asset") */
    char sha[RF_SHA256_HEX_LEN + 1];
    uint64_t size;
    char ext[12];                     /* the original name's extension (".onnx", ".png"), or "" */
} rf_slot_file_t;

/* A validated copy of an Assign message; owns all its strings. */
typedef struct rf_assignment {
    uint64_t lease;
    char job_id[64];
    uint32_t chunk, attempt, slot;
    int64_t frame_start, frame_end;
    uint32_t context_before;
    int64_t ctx_pts, start_pts, end_pts;
    AVRational time_base, frame_rate;
    rf_pass_spec_t *pipeline;
    size_t npasses;
    char *codec, *preset, *pix_fmt; /* preset/pix_fmt "" = default/source */
    int crf;
    int64_t bitrate;
    int gop;
    rf_param_t *options;
    size_t noptions;
    char input_blob[RF_SHA256_HEX_LEN + 1];
    uint64_t input_size;
    char *input_path;
    uint64_t seed;
    /* Seam overlap (proto Assign): frames [frame_start, frame_start + head_overlap) and
     * [frame_end, frame_end + tail_overlap) are rendered into lossless side parts, the main
     * result holds [frame_start + head_overlap, frame_end). */
    uint32_t head_overlap, tail_overlap;
    int64_t tail_end_pts;
    /* The critic gate (proto CriticSpec, critic.h); model NULL = no gate. */
    struct {
        char *model;
        float threshold;
        uint32_t max_rerenders; /* at most RF_SLOT_MAX_RERENDERS */
        double input_min, input_max;
        char device[8];         /* auto | cpu | gpu */
    } critic;
    rf_slot_file_t *files;      /* FileRefs (and the critic's model blob): the parameters they
                                   fill are rewritten by rf_assignment_files_at */
    size_t nfiles;
} rf_assignment_t;

/* Checks and copies an Assign (ranges, blob name, known passes, sizes). err says what is wrong. */
int rf_assignment_from_msg(const Reelfarm__Assign *msg, rf_assignment_t **out, rf_err_t *err);
void rf_assignment_destroy(rf_assignment_t **a);

/* Points every parameter a file fills (and the critic's model) at the file's place in the cache,
 * <cache_dir>/files/<sha256><ext>, where rf_slot_render fetches it when it is not there yet. */
int rf_assignment_files_at(rf_assignment_t *a, const char *cache_dir, rf_err_t *err);

/* The SHA-256s of the files in <cache_dir>/files, most recently used first, at most max (what
 * the worker advertises: proto Capabilities.models, Heartbeat.models). Returns the count. */
size_t rf_slot_cached_files(const char *cache_dir, char (*sha)[RF_SHA256_HEX_LEN + 1], size_t max);

/* Test-only fault injection (`reelfarm-worker --test-fault KIND[@N]`): makes a real worker
 * misbehave on purpose so that multi-process tests can check how the coordinator copes with a
 * corrupt result, a hung slot or a slow one. Off (RF_SLOT_FAULT_NONE) unless asked for. */
typedef enum rf_slot_fault_kind {
    RF_SLOT_FAULT_NONE = 0,
    RF_SLOT_FAULT_BAD_CHECKSUM, /* report the digest with one bit flipped */
    RF_SLOT_FAULT_WRONG_COUNT,  /* encode one frame less, report the expected count anyway */
    RF_SLOT_FAULT_HANG,         /* after the first frame, wait (checking cancel) until cancelled */
    RF_SLOT_FAULT_SLOW,         /* sleep slow_ms after every encoded frame */
} rf_slot_fault_kind_t;

#define RF_SLOT_FAULT_MAX_SLOW_MS 60000 /* slow:MS accepts 1..this */
#define RF_SLOT_FAULT_POLL_MS 50        /* hang and slow check the cancel flag this often */

typedef struct rf_slot_fault {
    rf_slot_fault_kind_t kind;
    uint32_t slow_ms; /* RF_SLOT_FAULT_SLOW: delay per encoded frame */
    uint32_t limit;   /* only the first `limit` chunks a worker renders misbehave; 0 = all */
    char spec[64];    /* the spec as given, for logs */
} rf_slot_fault_t;

/* Parses "bad-checksum", "wrong-count", "hang" or "slow:MS", each optionally followed by "@N"
 * (N >= 1). NULL or "" means no fault. err says what is wrong with a bad spec (RF_EINVAL). */
int rf_slot_fault_parse(const char *spec, rf_slot_fault_t *out, rf_err_t *err);

typedef struct rf_slot_env {
    void *zctx;                /* the worker's ZeroMQ context (for blob sockets) */
    const char *blob_endpoint; /* the coordinator's blob socket */
    const char *cache_dir;     /* per-lease folders (input slice, encoded chunk) live under leases/;
                                  input downloads cut short wait in partial/ to be resumed; the
                                  passes' files (models, assets) are kept in files/ */
    rf_slot_fault_t fault;     /* test fault for this chunk (the worker applies @N); zero = none */
    const char *shared_blobs;  /* the coordinator's blob store, mounted here (its store id matched
                                  Welcome's): inputs are read from it and results committed into
                                  it, not moved over the blob socket; NULL = socket only */
    const rf_zsec_t *sec;      /* CURVE keys for the blob socket; NULL = plaintext */
    /* GPU (worker/gpu/gpu_pipe.h): with gpu set and a non-empty pipeline the pass stage runs on
     * CUDA device gpu_device - the passes with a CUDA version there, the others on the CPU - and
     * decoding follows `decode`; an empty pipeline always decodes on the CPU, so its frames reach
     * the encoder untouched. A zeroed env is a CPU slot. */
    bool gpu;
    int gpu_device;
    int decode;                /* media.h rf_decode_mode_t: RF_DECODE_CPU, _AUTO or _NVDEC */
} rf_slot_env_t;

/* One render of a chunk as the critic scored it (proto CriticScore). */
typedef struct rf_slot_critic {
    uint64_t seed;             /* the passes' seed for this render */
    float score;               /* the lowest frame score: held against the threshold */
    float mean;                /* the mean frame score */
    uint64_t frames;           /* frames scored */
} rf_slot_critic_t;

typedef struct rf_slot_result {
    int rc;                    /* 0 or RF_E* */
    char error_class[16];      /* input | decode | pass | encode | transfer | internal | cancelled */
    char message[1024];
    bool retryable;
    char result_blob[RF_SHA256_HEX_LEN + 1];
    uint64_t result_size;
    uint64_t frames;
    uint8_t digest[RF_SHA256_LEN]; /* SHA-256 over the per-frame SHA-256s of the decoded result */
    float fps;
    uint8_t *frame_list;       /* the per-frame SHA-256s of the result, in order, for the
                                * coordinator's sampled check (rf_slot_result_release frees it) */
    uint64_t frame_list_frames; /* entries in frame_list */
    /* seam side parts (ffv1, frames as given to the encoder), blob "" when the chunk has none */
    struct {
        char blob[RF_SHA256_HEX_LEN + 1];
        uint64_t size, frames;
        uint8_t digest[RF_SHA256_LEN];
    } seam[2]; /* 0: head, 1: tail */
    /* critic gate: every render's scores, in order, and which render the result is */
    rf_slot_critic_t critic[RF_SLOT_MAX_RERENDERS + 1];
    uint32_t ncritic;
    uint32_t critic_kept;
} rf_slot_result_t;

/* Renders a; returns res->rc. cancel: set non-zero to stop within RF_SLOT_WAIT_MS (or one frame's
 * work); frames_done: updated as frames are encoded (read by the control loop for Progress). On
 * failure res says which stage failed and why, naming the global frame index where there is one. */
int rf_slot_render(const rf_assignment_t *a, const rf_slot_env_t *env, const atomic_int *cancel,
                   _Atomic uint64_t *frames_done, rf_slot_result_t *res);

/* Frees what a result owns (its frame list); the result can be reused. */
void rf_slot_result_release(rf_slot_result_t *res);

#endif
