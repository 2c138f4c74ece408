/* planner.h - turns a probed source and a job spec into chunks (DESIGN §5).
 *
 * Chunks are global frame ranges [start, end) of about target_seconds, never over max_seconds,
 * ending at a source keyframe where one lies in the allowed window (so a worker's decode pre-roll
 * is short) and otherwise cut at the target length: the worker decodes from the keyframe before
 * the chunk and drops what it does not need, so any frame can start a chunk. Each chunk also
 * carries context_frames before its start for temporal passes. The planner runs off the loop: it
 * also writes each chunk's input slice into the blob store.
 */
#ifndef RF_PLANNER_H
#define RF_PLANNER_H

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
} rf_plan_range_t;

/* Computes the ranges only (pure: no I/O). *ranges is malloc'd. Returns 0 or RF_EINVAL when the
 * source has no frames or no frame rate. */
int rf_plan_ranges(const rf_job_spec_t *spec, const rf_media_info_t *info, rf_plan_range_t **ranges,
                   size_t *n, rf_err_t *err);

/* Plans the job and writes every chunk's input slice into blob_dir. *chunks is malloc'd (free with
 * rf_store_chunks_free). */
int rf_plan_job(const rf_job_spec_t *spec, const rf_media_info_t *info, const char *blob_dir,
                rf_store_chunk_t **chunks, size_t *n, rf_err_t *err);

#endif
