/* planner.c - chunk ranges and input slices. See planner.h. */
#include "planner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blob.h"
#include "log.h"

/* The keyframe in (lo, hi] closest to ideal, or -1. keyframes is ascending. */
static int64_t s_keyframe_near(const rf_media_info_t *info, int64_t lo, int64_t hi, int64_t ideal)
{
    int64_t best = -1;
    for (size_t i = 0; i < info->nkeyframes; i++) {
        int64_t k = info->keyframes[i];
        if (k <= lo)
            continue;
        if (k > hi)
            break;
        if (best < 0 || llabs(k - ideal) < llabs(best - ideal))
            best = k;
    }
    return best;
}

int rf_plan_ranges(const rf_job_spec_t *spec, const rf_media_info_t *info, rf_plan_range_t **out,
                   size_t *n, rf_err_t *err)
{
    if (info->nb_frames <= 0)
        return rf_err_set(err, RF_EINVAL, "'%s': no video frames", info->path);
    double fps = av_q2d(info->frame_rate);
    if (!(fps > 0) || !isfinite(fps))
        return rf_err_set(err, RF_EINVAL, "'%s': unknown frame rate", info->path);
    int64_t total = info->nb_frames;
    int64_t target = (int64_t)llround(spec->chunking.target_seconds * fps);
    int64_t max = (int64_t)floor(spec->chunking.max_seconds * fps);
    if (max < 1)
        max = 1;
    if (target > max)
        target = max; /* rounding to whole frames must never take a chunk over max_seconds */
    if (target < 1)
        target = 1;
    size_t cap = (size_t)(total / target) + 2;
    rf_plan_range_t *r = calloc(cap, sizeof(*r));
    if (!r)
        return rf_err_set(err, RF_ENOMEM, "out of memory planning %lld frames", (long long)total);
    size_t count = 0;
    int64_t start = 0;
    while (start < total) {
        int64_t end;
        if (total - start <= max && total - start < target + target / 2) {
            end = total; /* the remainder fits in one chunk: no runt chunk at the end */
        } else {
            /* Prefer a keyframe within half a target of the ideal cut, never past max. */
            /* Never cut later than last_cut: what follows must not be a runt either. */
            int64_t ideal = start + target, last_cut = total - target / 2;
            int64_t lo = start + target / 2, hi = start + max;
            if (hi > last_cut)
                hi = last_cut;
            int64_t k = s_keyframe_near(info, lo, hi, ideal);
            end = k > 0 ? k : (ideal < last_cut ? ideal : last_cut);
        }
        if (count == cap) {
            rf_plan_range_t *grown = realloc(r, (cap *= 2) * sizeof(*r));
            if (!grown) {
                free(r);
                return rf_err_set(err, RF_ENOMEM, "out of memory planning chunks");
            }
            r = grown;
        }
        r[count].start = start;
        r[count].end = end;
        int64_t ctx = start - spec->chunking.context_frames;
        r[count].ctx_start = ctx > 0 ? ctx : 0;
        count++;
        start = end;
    }
    *out = r;
    *n = count;
    return 0;
}

int rf_plan_job(const rf_job_spec_t *spec, const rf_media_info_t *info, const char *blob_dir,
                rf_store_chunk_t **out, size_t *n, rf_err_t *err)
{
    rf_plan_range_t *ranges = NULL;
    size_t count = 0;
    int rc = rf_plan_ranges(spec, info, &ranges, &count, err);
    if (rc)
        return rc;
    rf_store_chunk_t *chunks = calloc(count, sizeof(*chunks));
    if (!chunks) {
        free(ranges);
        return rf_err_set(err, RF_ENOMEM, "out of memory planning chunks");
    }
    for (size_t i = 0; i < count; i++) {
        rf_store_chunk_t *c = &chunks[i];
        const rf_plan_range_t *r = &ranges[i];
        c->index = (uint32_t)i;
        c->frame_start = r->start;
        c->frame_end = r->end;
        c->context_frames = (uint32_t)(r->start - r->ctx_start);
        c->ctx_pts = info->pts[r->ctx_start];
        c->start_pts = info->pts[r->start];
        c->end_pts = r->end < info->nb_frames ? info->pts[r->end] : INT64_MAX;
        snprintf(c->state, sizeof(c->state), "queued");
        char tmp[4096];
        rc = rf_blob_tmp_path(blob_dir, "slice", tmp, sizeof(tmp));
        if (rc) {
            rf_err_set(err, rc, "'%s': cannot make a temp file for chunk %zu", blob_dir, i);
            goto out;
        }
        /* rf_media_slice picks the NUT muxer from the name; the temp name has no extension. */
        char named[4200];
        snprintf(named, sizeof(named), "%s.nut", tmp);
        rc = rf_media_slice(info, r->ctx_start, r->end, named, err);
        if (!rc)
            rc = rf_blob_commit(blob_dir, named, c->input_blob, &c->input_size, err);
        if (rc) {
            unlink(named);
            rf_err_prefix(err, "chunk %zu (frames %lld-%lld): ", i, (long long)r->start,
                          (long long)r->end - 1);
            goto out;
        }
    }
out:
    free(ranges);
    if (rc) {
        free(chunks);
        return rc;
    }
    *out = chunks;
    *n = count;
    return 0;
}
