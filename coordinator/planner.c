/* planner.c - chunk ranges and input slices. See planner.h. */
#include "planner.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

/* Index of the first cut >= from, or ncuts. */
static size_t s_cut_at_or_after(const int64_t *cuts, size_t ncuts, int64_t from)
{
    size_t lo = 0, hi = ncuts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cuts[mid] < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Copies the usable cuts (inside (0, total), strictly ascending) so the rule can trust them. */
static int s_clean_cuts(const int64_t *cuts, size_t ncuts, int64_t total, int64_t **out,
                        size_t *nout, rf_err_t *err)
{
    *out = NULL;
    *nout = 0;
    if (ncuts == 0)
        return 0;
    int64_t *c = malloc(ncuts * sizeof(*c));
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory planning %zu scene cuts", ncuts);
    size_t n = 0;
    for (size_t i = 0; i < ncuts; i++)
        if (cuts[i] > 0 && cuts[i] < total && (n == 0 || cuts[i] > c[n - 1]))
            c[n++] = cuts[i];
    *out = c;
    *nout = n;
    return 0;
}

/* Seam overlap at forced boundaries: chunk i (not a scene start) shares its first k frames with
 * chunk i - 1, which renders them past its end. k is at most the chunk's length minus one, so the
 * chunk's own encoded part is never empty. */
static void s_plan_overlaps(rf_plan_range_t *r, size_t n, int seam_overlap)
{
    for (size_t i = 0; i < n; i++) {
        int64_t k = 0;
        if (i > 0 && !r[i].scene_start && seam_overlap > 0) {
            k = seam_overlap;
            if (k > r[i].end - r[i].start - 1)
                k = r[i].end - r[i].start - 1;
        }
        r[i].head_overlap = (uint32_t)k;
        r[i].tail_overlap = 0;
        if (i > 0)
            r[i - 1].tail_overlap = (uint32_t)k;
    }
}

int rf_plan_ranges_scenes(const rf_job_spec_t *spec, const rf_media_info_t *info,
                          const int64_t *scene_cuts, size_t nscene_cuts, rf_plan_range_t **out,
                          size_t *n, rf_err_t *err)
{
    *out = NULL;
    *n = 0;
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
    int64_t half = target / 2 > 0 ? target / 2 : 1; /* a chunk this long is not a runt */
    int64_t *cuts = NULL;
    size_t ncuts = 0;
    int rc = s_clean_cuts(scene_cuts, nscene_cuts, total, &cuts, &ncuts, err);
    if (rc)
        return rc;
    size_t cap = (size_t)(total / target) + ncuts + 2;
    rf_plan_range_t *r = calloc(cap, sizeof(*r));
    if (!r) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory planning %lld frames", (long long)total);
        goto out;
    }
    size_t count = 0;
    int64_t start = 0;
    bool scene_start = true; /* frame 0 starts the first scene */
    while (start < total) {
        int64_t end = -1;
        bool at_cut = false;
        /* Never cut later than last_cut: what follows must not be a runt either. */
        int64_t last_cut = total - half;
        /* 1. the first cut at least half a target in, within max, leaving no runt */
        size_t ci = s_cut_at_or_after(cuts, ncuts, start + half);
        int64_t next_cut = ci < ncuts ? cuts[ci] : -1;
        if (next_cut > 0 && next_cut - start <= max && next_cut <= last_cut) {
            end = next_cut;
            at_cut = true;
        } else if (total - start <= max && total - start < target + target / 2) {
            end = total; /* 2. the remainder fits in one chunk: no runt chunk at the end */
        } else {
            /* 3. forced: prefer a keyframe within half a target of the ideal cut, never past
             * max, and leave the next scene cut at least half a target into the next chunk. */
            int64_t ideal = start + target, lo = start + target / 2, hi = start + max;
            int64_t limit = last_cut;
            if (next_cut > 0 && next_cut <= last_cut && next_cut - half < limit)
                limit = next_cut - half;
            if (hi > limit)
                hi = limit;
            int64_t k = s_keyframe_near(info, lo, hi, ideal);
            end = k > 0 ? k : (ideal < limit ? ideal : limit);
            if (end <= start)
                end = start + 1; /* cannot happen with max >= target; never loop forever */
        }
        r[count].start = start;
        r[count].end = end;
        int64_t ctx = start - rf_job_spec_context(spec);
        r[count].ctx_start = ctx > 0 ? ctx : 0;
        r[count].scene_start = scene_start;
        count++;
        if (count == cap && end < total) {
            rf_plan_range_t *grown = realloc(r, (cap *= 2) * sizeof(*r));
            if (!grown) {
                rc = rf_err_set(err, RF_ENOMEM, "out of memory planning chunks");
                goto out;
            }
            r = grown;
        }
        start = end;
        scene_start = at_cut;
    }
    s_plan_overlaps(r, count, spec->chunking.seam_overlap);
    *out = r;
    *n = count;
    r = NULL;
out:
    free(r);
    free(cuts);
    return rc;
}

int rf_plan_ranges(const rf_job_spec_t *spec, const rf_media_info_t *info, rf_plan_range_t **out,
                   size_t *n, rf_err_t *err)
{
    return rf_plan_ranges_scenes(spec, info, NULL, 0, out, n, err);
}

bool rf_plan_wants_colors(const rf_job_spec_t *spec)
{
    for (size_t i = 0; i < spec->npasses; i++) {
        const char *ref = rf_pass_spec_param(&spec->pipeline[i], "reference");
        if (!strcmp(spec->pipeline[i].name, "color-match") && ref && !strcmp(ref, "source"))
            return true;
    }
    return false;
}

int rf_plan_color_refs(const rf_media_info_t *info, const rf_color_stats_t *colors,
                       const int64_t *cuts, size_t ncuts, rf_plan_range_t *ranges, size_t n,
                       char **refs, rf_err_t *err)
{
    for (size_t i = 0; i < n; i++)
        refs[i] = NULL;
    /* Scenes: [0, cut 1), [cut 1, cut 2), ... [last cut, total), pooled over their frames. */
    size_t nscenes = ncuts + 1;
    int64_t *first = malloc(nscenes * sizeof(*first));
    char (*text)[RF_COLOR_STATS_TEXT_MAX] = malloc(nscenes * sizeof(*text));
    int rc = 0;
    if (!first || !text) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory pooling scene colours");
        goto out;
    }
    size_t k = 0;
    first[k++] = 0;
    for (size_t i = 0; i < ncuts; i++)
        if (cuts[i] > first[k - 1] && cuts[i] < info->nb_frames)
            first[k++] = cuts[i];
    nscenes = k;
    for (size_t sc = 0; sc < nscenes; sc++) {
        int64_t a = first[sc], b = sc + 1 < nscenes ? first[sc + 1] : info->nb_frames;
        double sum[3] = {0}, sq[3] = {0};
        int64_t count = 0;
        for (int64_t f = a; f < b; f++) {
            const rf_color_stats_t *c = &colors[f];
            if (isnan(c->mean[0]))
                continue;
            for (int ch = 0; ch < 3; ch++) {
                sum[ch] += c->mean[ch];
                sq[ch] += c->std[ch] * c->std[ch] + c->mean[ch] * c->mean[ch];
            }
            count++;
        }
        if (!count) {
            rc = rf_err_set(err, RF_EMEDIA, "'%s': no frame of the scene at frames %" PRId64 "-%" PRId64
                            " decoded for its colour reference", info->path, a, b - 1);
            goto out;
        }
        /* Equal sample counts per frame: the scene's moments are the frames' moments averaged. */
        rf_color_stats_t pooled;
        for (int ch = 0; ch < 3; ch++) {
            pooled.mean[ch] = sum[ch] / (double)count;
            double var = sq[ch] / (double)count - pooled.mean[ch] * pooled.mean[ch];
            pooled.std[ch] = var > 0 ? sqrt(var) : 0;
        }
        rf_color_stats_format(&pooled, text[sc], sizeof(text[sc]));
    }
    for (size_t i = 0; i < n; i++) {
        int64_t lo = ranges[i].ctx_start, hi = ranges[i].end + ranges[i].tail_overlap;
        size_t len = 0, cap = 256;
        char *s = malloc(cap);
        if (!s) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory listing scene colours");
            goto out;
        }
        s[0] = '\0';
        for (size_t sc = 0; sc < nscenes; sc++) {
            int64_t a = first[sc], b = sc + 1 < nscenes ? first[sc + 1] : info->nb_frames;
            if (b <= lo || a >= hi)
                continue;
            char entry[RF_COLOR_STATS_TEXT_MAX + 32];
            int m = snprintf(entry, sizeof(entry), "%s%" PRId64 ":%s", len ? ";" : "", a, text[sc]);
            if (len + (size_t)m + 1 > cap) {
                cap = (len + (size_t)m + 1) * 2;
                char *grown = realloc(s, cap);
                if (!grown) {
                    free(s);
                    rc = rf_err_set(err, RF_ENOMEM, "out of memory listing scene colours");
                    goto out;
                }
                s = grown;
            }
            memcpy(s + len, entry, (size_t)m + 1);
            len += (size_t)m;
        }
        refs[i] = s;
    }
out:
    if (rc)
        for (size_t i = 0; i < n; i++) {
            free(refs[i]);
            refs[i] = NULL;
        }
    free(first);
    free(text);
    return rc;
}

/* The scene cuts of the source (and each frame's colours when colors is not NULL) when the spec
 * asks for them (none otherwise). */
static int s_detect_scenes(const rf_job_spec_t *spec, const rf_media_info_t *info, int64_t **cuts,
                           size_t *ncuts, rf_color_stats_t *colors, rf_err_t *err)
{
    *cuts = NULL;
    *ncuts = 0;
    if (spec->chunking.split != RF_SPLIT_SCENE && !colors)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = rf_media_scenes(info, spec->chunking.scene_threshold, cuts, ncuts, colors, err);
    if (rc) {
        rf_err_prefix(err, "scene detection: ");
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    rf_log(RF_LOG_INFO, "planner", "'%s': %zu scene cuts in %lld frames (threshold %.3f, %.2f s%s)",
           info->path, *ncuts, (long long)info->nb_frames, spec->chunking.scene_threshold, s,
           colors ? ", with colours" : "");
    return 0;
}

int rf_plan_job(const rf_job_spec_t *spec, const rf_media_info_t *info, const char *blob_dir,
                rf_store_chunk_t **out, size_t *n, rf_err_t *err)
{
    rf_plan_range_t *ranges = NULL;
    size_t count = 0;
    int64_t *cuts = NULL;
    size_t ncuts = 0;
    rf_color_stats_t *colors = NULL;
    char **refs = NULL;
    rf_store_chunk_t *chunks = NULL;
    int rc = 0;
    if (rf_plan_wants_colors(spec) &&
        !(colors = malloc((size_t)(info->nb_frames > 0 ? info->nb_frames : 1) * sizeof(*colors))))
        return rf_err_set(err, RF_ENOMEM, "out of memory for %lld frames' colours",
                          (long long)info->nb_frames);
    rc = s_detect_scenes(spec, info, &cuts, &ncuts, colors, err);
    /* With split: keyframe the cuts only delimit the colour references. */
    if (!rc)
        rc = rf_plan_ranges_scenes(spec, info, spec->chunking.split == RF_SPLIT_SCENE ? cuts : NULL,
                                   spec->chunking.split == RF_SPLIT_SCENE ? ncuts : 0, &ranges,
                                   &count, err);
    if (!rc && colors) {
        refs = calloc(count, sizeof(*refs));
        rc = refs ? rf_plan_color_refs(info, colors, cuts, ncuts, ranges, count, refs, err)
                  : rf_err_set(err, RF_ENOMEM, "out of memory planning chunks");
    }
    free(cuts);
    free(colors);
    if (!rc && !(chunks = calloc(count, sizeof(*chunks))))
        rc = rf_err_set(err, RF_ENOMEM, "out of memory planning chunks");
    if (rc) {
        if (refs)
            for (size_t i = 0; i < count; i++)
                free(refs[i]);
        free(refs);
        free(ranges);
        return rc;
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
        c->color_ref = refs ? refs[i] : NULL;
        if (refs)
            refs[i] = NULL; /* the chunk owns it now */
        c->head_overlap = r->head_overlap;
        c->tail_overlap = r->tail_overlap;
        int64_t tail_end = r->end + r->tail_overlap;
        c->tail_end_pts = tail_end < info->nb_frames ? info->pts[tail_end] : INT64_MAX;
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
        rc = rf_media_slice(info, r->ctx_start, r->end + r->tail_overlap, named, err);
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
    if (refs)
        for (size_t i = 0; i < count; i++)
            free(refs[i]);
    free(refs);
    if (rc) {
        rf_store_chunks_free(chunks, count);
        return rc;
    }
    *out = chunks;
    *n = count;
    return 0;
}
