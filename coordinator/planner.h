/* planner.h - turns a probed source and a job spec into chunks (DESIGN §5).
 *
 * Chunks are global frame ranges [start, end) of about target_seconds, never over max_seconds.
 * With split: scene a chunk ends at a scene cut (rf_media_scenes) whenever one is usable, so most
 * chunks are whole scenes or runs of short scenes; otherwise, and always with split: keyframe, it
 * ends at a source keyframe where one lies in the allowed window (so a worker's decode pre-roll
 * is short) and otherwise at the target length: the worker decodes from the keyframe before the
 * chunk and drops what it does not need, so any frame can start a chunk. Each chunk also carries
 * context_frames before its start for temporal passes. The planner runs off the loop: it also
 * runs the scene detector and writes each chunk's input slice into the blob store.
 *
 * The rule, in whole frames: T = target (rounded, at most max), M = max, H = max(1, T / 2). From a
 * chunk's start s:
 *   1. Scene cut: the first cut c with c - s >= H, c - s <= M and total - c >= H ends the chunk.
 *      Cuts less than H after s are not boundaries: short scenes are collated into one chunk.
 *   2. Else, when the rest of the source fits (total - s <= M and total - s < T + T / 2), it is
 *      the last chunk: no runt at the end.
 *   3. Else a forced boundary: the keyframe in (s + H, s + M] nearest s + T, else s + T; never
 *      past total - H (no runt after it) nor past c' - H where c' is the first cut after s + H
 *      (so that cut still gets rule 1 in the next chunk).
 * Seam overlap: at a forced boundary b (not a scene cut) with seam_overlap k > 0, frames
 * [b, b + min(k, next chunk's length - 1)) are rendered by both neighbours - the earlier one past
 * its end - and cross-faded by the stitcher; scene cuts never get an overlap (a cut is a hard
 * change by intent).
 * So every cut at least H after the previous cut (frame 0 counts as one) and at least H before
 * the end is a chunk boundary; forced boundaries appear only inside scenes longer than M (or where
 * a short scene was collated into a chunk that then reached M).
 */
#ifndef RF_PLANNER_H
#define RF_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "media.h"
#include "store.h"

/* A chunk's frame range before it has an input slice. */
typedef struct rf_plan_range {
    int64_t start, end;   /* [start, end) */
    int64_t ctx_start;    /* first context frame (start - context_frames, clamped at 0) */
    bool scene_start;     /* start is frame 0 or a scene cut; false: a forced boundary inside a
                           * scene, where seam_overlap cross-fades belong */
    uint32_t head_overlap; /* frames from start also rendered by the previous chunk (seam_overlap
                            * at a forced boundary, at most end - start - 1; 0 at scene starts) */
    uint32_t tail_overlap; /* frames from end this chunk also renders (the next one's head) */
} rf_plan_range_t;

/* Computes the ranges only (pure: no I/O), on keyframes alone (split: keyframe). *ranges is
 * malloc'd. Returns 0 or RF_EINVAL when the source has no frames or no frame rate. */
int rf_plan_ranges(const rf_job_spec_t *spec, const rf_media_info_t *info, rf_plan_range_t **ranges,
                   size_t *n, rf_err_t *err);

/* As rf_plan_ranges, also cutting at scene cuts (split: scene): cuts holds ncuts global frame
 * indices (from rf_media_scenes; ascending; out-of-range or unordered entries are ignored). */
int rf_plan_ranges_scenes(const rf_job_spec_t *spec, const rf_media_info_t *info,
                          const int64_t *cuts, size_t ncuts, rf_plan_range_t **ranges, size_t *n,
                          rf_err_t *err);

/* Whether the job's pipeline needs per-scene colour references (color-match, reference: source). */
bool rf_plan_wants_colors(const rf_job_spec_t *spec);

/* One colour reference per scene: the scenes are [0, cut 1), [cut 1, cut 2), ..., [last, total);
 * each scene's reference pools its frames' statistics (colors, one per frame, NAN means skipped:
 * means averaged, variances from the averaged second moments). refs[i] (malloc'd) gets the
 * references of the scenes range i touches, from its first context frame to its tail overlap:
 * "FIRST:L,a,b,Ls,as,bs;..." in frame order (store.h color_ref). */
int rf_plan_color_refs(const rf_media_info_t *info, const rf_color_stats_t *colors,
                       const int64_t *cuts, size_t ncuts, rf_plan_range_t *ranges, size_t n,
                       char **refs, rf_err_t *err);

/* Plans the job (running rf_media_scenes first when spec->chunking.split is RF_SPLIT_SCENE, with
 * spec->chunking.scene_threshold) and writes every chunk's input slice into blob_dir. *chunks is malloc'd (free with
 * rf_store_chunks_free). */
int rf_plan_job(const rf_job_spec_t *spec, const rf_media_info_t *info, const char *blob_dir,
                rf_store_chunk_t **chunks, size_t *n, rf_err_t *err);

#endif
