/* test_planner.c - chunk planning (coordinator/planner.h): rf_plan_ranges on hand-built sources
 * (contiguous cover, max length, keyframe cuts, no runt at the end, context frames, bad input),
 * rf_plan_ranges_scenes on hand-made cut lists (cuts become boundaries, short scenes collate, a
 * forced boundary leaves room for the next cut; a seeded random sweep of the same invariants),
 * and rf_plan_job on real fixtures (every chunk's input slice is a blob that decodes to the
 * chunk's frames and its context; on the `scenes` fixture every known cut starts a chunk).
 */
#include <math.h>
#include <sys/stat.h>

#include "media/fixture.h"
#include "planner.h"

#define MAXK 64

/* One hand-built source and chunking setup. Keyframes: every kf_every frames from 0 (0 = none
 * at all, not even frame 0), or the explicit list kf (nkf entries) when nkf > 0. */
typedef struct t_case {
    const char *name;
    int64_t frames;
    AVRational fps;
    double target_s, max_s;
    int context;
    int64_t kf_every;
    int64_t kf[MAXK];
    size_t nkf;
    int64_t want[MAXK]; /* expected chunk ends, 0-terminated; empty = only the invariants */
} t_case_t;

static const t_case_t s_cases[] = {
    {"gop48: cuts on the keyframe nearest the target", 300, {25, 1}, 2, 4, 0, 48, {0}, 0,
     {48, 96, 144, 192, 240, 300}},
    {"no keyframes: cuts at the target length", 300, {25, 1}, 2, 4, 0, 0, {0}, 0,
     {50, 100, 150, 200, 250, 300}},
    {"no keyframes: a short remainder joins the last chunk", 310, {25, 1}, 2, 4, 0, 0, {0}, 0,
     {50, 100, 150, 200, 250, 310}},
    {"no keyframes: a long remainder is its own chunk", 330, {25, 1}, 2, 4, 0, 0, {0}, 0,
     {50, 100, 150, 200, 250, 300, 330}},
    {"a keyframe outside the window is ignored", 200, {25, 1}, 2, 3, 0, 0, {0, 20, 140}, 3,
     {50, 100, 140, 200}},
    {"sparse keyframes must not leave a runt", 210, {25, 1}, 2, 4, 0, 0, {0, 100, 200}, 3, {0}},
    {"target == max must not leave a runt", 310, {25, 1}, 2, 2, 0, 0, {0}, 0, {0}},
    {"target == max with keyframes", 1001, {24000, 1001}, 2, 2, 0, 48, {0}, 0, {0}},
    {"ntsc rate, max never exceeded", 1001, {30000, 1001}, 2, 2, 0, 0, {0}, 0, {0}},
    {"ntsc rate, gop 30", 1001, {30000, 1001}, 6, 20, 12, 30, {0}, 0, {0}},
    {"odd target length", 137, {25, 1}, 1, 3, 0, 0, {0}, 0, {0}},
    {"context frames clamp at 0", 300, {25, 1}, 2, 4, 8, 48, {0}, 0,
     {48, 96, 144, 192, 240, 300}},
    {"context larger than a chunk", 300, {25, 1}, 1, 2, 60, 0, {0}, 0, {0}},
    {"short source: one chunk", 30, {25, 1}, 2, 4, 4, 12, {0}, 0, {30}},
    {"one frame", 1, {25, 1}, 6, 20, 4, 1, {0}, 0, {1}},
    {"exactly one and a half targets is split", 75, {25, 1}, 2, 4, 0, 0, {0}, 0, {50, 75}},
    {"just under one and a half targets is one chunk", 74, {25, 1}, 2, 4, 0, 0, {0}, 0, {74}},
    {"long source, default chunking", 43200, {24, 1}, 6, 20, 2, 240, {0}, 0, {0}},
};

/* Builds info for c: pts = index * 512 (a 1/12800 time base), keyframes as the case says. */
static void t_info(const t_case_t *c, rf_media_info_t *info, int64_t **pts, int64_t **kf)
{
    memset(info, 0, sizeof(*info));
    info->path = (char *)"hand-built.mp4";
    info->frame_rate = c->fps;
    info->time_base = (AVRational){1, 12800};
    info->nb_frames = c->frames;
    *pts = calloc((size_t)(c->frames > 0 ? c->frames : 1), sizeof(**pts));
    assert_non_null(*pts);
    for (int64_t i = 0; i < c->frames; i++)
        (*pts)[i] = i * 512;
    info->pts = *pts;
    size_t nkf = 0;
    *kf = calloc((size_t)(c->frames > 0 ? c->frames : 1) + MAXK, sizeof(**kf));
    assert_non_null(*kf);
    if (c->nkf) {
        for (size_t i = 0; i < c->nkf; i++)
            (*kf)[nkf++] = c->kf[i];
    } else if (c->kf_every) {
        for (int64_t i = 0; i < c->frames; i += c->kf_every)
            (*kf)[nkf++] = i;
    }
    info->keyframes = *kf;
    info->nkeyframes = nkf;
}

static void t_spec(const t_case_t *c, rf_job_spec_t *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->chunking.target_seconds = c->target_s;
    spec->chunking.max_seconds = c->max_s;
    spec->chunking.context_frames = c->context;
}

static bool t_is_keyframe(const rf_media_info_t *info, int64_t f)
{
    for (size_t i = 0; i < info->nkeyframes; i++)
        if (info->keyframes[i] == f)
            return true;
    return false;
}

static void test_ranges_invariants(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof(s_cases) / sizeof(s_cases[0]); ci++) {
        const t_case_t *c = &s_cases[ci];
        rf_media_info_t info;
        int64_t *pts = NULL, *kf = NULL;
        t_info(c, &info, &pts, &kf);
        rf_job_spec_t spec;
        t_spec(c, &spec);
        rf_plan_range_t *r = NULL;
        size_t n = 0;
        rf_err_t err = {0};
        if (rf_plan_ranges(&spec, &info, &r, &n, &err) != 0)
            fail_msg("case '%s': %s", c->name, err.msg);
        assert_non_null(r);
        assert_true(n >= 1);

        double fps = av_q2d(c->fps);
        int64_t max_frames = (int64_t)floor(c->max_s * fps + 1e-9);
        int64_t target = (int64_t)llround(c->target_s * fps);
        /* whole frames: the planner's target is the rounded target, never over max */
        if (target > max_frames)
            target = max_frames;
        if (target < 1)
            target = 1;
        int64_t half = target / 2; /* a last chunk this long or longer is not a runt */
        for (size_t i = 0; i < n; i++) {
            int64_t s = r[i].start, e = r[i].end, len = e - s;
            /* contiguous cover of [0, N): no gap, no overlap */
            if (s != (i ? r[i - 1].end : 0) || len <= 0)
                fail_msg("case '%s': chunk %zu is [%lld, %lld)", c->name, i, (long long)s,
                         (long long)e);
            if (len > max_frames)
                fail_msg("case '%s': chunk %zu has %lld frames, over max %.3f s (%lld frames)",
                         c->name, i, (long long)len, c->max_s, (long long)max_frames);
            int64_t want_ctx = s - c->context > 0 ? s - c->context : 0;
            if (r[i].ctx_start != want_ctx)
                fail_msg("case '%s': chunk %zu ctx_start %lld, want %lld", c->name, i,
                         (long long)r[i].ctx_start, (long long)want_ctx);
            if (i + 1 < n) {
                /* a keyframe in the window (over half a target, within max, leaving no runt)
                 * is where the cut must be */
                int64_t hi = s + max_frames;
                if (hi > c->frames - half)
                    hi = c->frames - half;
                bool any = false;
                for (size_t k = 0; k < info.nkeyframes; k++)
                    if (info.keyframes[k] > s + target / 2 && info.keyframes[k] <= hi)
                        any = true;
                if (any && !t_is_keyframe(&info, e))
                    fail_msg("case '%s': chunk %zu ends at %lld, not on a keyframe in its window",
                             c->name, i, (long long)e);
            }
        }
        assert_int_equal(r[n - 1].end, c->frames);
        int64_t last = r[n - 1].end - r[n - 1].start;
        if (n > 1 && last < half)
            fail_msg("case '%s': last chunk is a runt of %lld frames (target %lld)", c->name,
                     (long long)last, (long long)target);
        if (c->frames <= max_frames && c->frames < target + target / 2 && n != 1)
            fail_msg("case '%s': a short source gave %zu chunks", c->name, n);

        if (c->want[0]) {
            size_t nwant = 0;
            while (nwant < MAXK && c->want[nwant])
                nwant++;
            if (n != nwant)
                fail_msg("case '%s': %zu chunks, want %zu", c->name, n, nwant);
            for (size_t i = 0; i < n; i++)
                if (r[i].end != c->want[i])
                    fail_msg("case '%s': chunk %zu ends at %lld, want %lld", c->name, i,
                             (long long)r[i].end, (long long)c->want[i]);
        }
        free(r);
        free(pts);
        free(kf);
    }
}

static void test_ranges_reject_empty_or_rateless_sources(void **state)
{
    (void)state;
    static const struct {
        int64_t frames;
        AVRational fps;
        const char *msg;
    } cases[] = {
        {0, {25, 1}, "no video frames"},
        {-1, {25, 1}, "no video frames"},
        {100, {0, 1}, "unknown frame rate"},
        {100, {0, 0}, "unknown frame rate"},
        {100, {-25, 1}, "unknown frame rate"},
        {100, {25, 0}, "unknown frame rate"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_case_t c = {.name = "bad", .frames = cases[i].frames, .fps = cases[i].fps,
                      .target_s = 2, .max_s = 4};
        rf_media_info_t info;
        int64_t *pts = NULL, *kf = NULL;
        t_info(&c, &info, &pts, &kf);
        rf_job_spec_t spec;
        t_spec(&c, &spec);
        rf_plan_range_t *r = NULL;
        size_t n = 0;
        rf_err_t err = {0};
        assert_int_equal(rf_plan_ranges(&spec, &info, &r, &n, &err), RF_EINVAL);
        assert_null(r);
        assert_non_null(strstr(err.msg, "'hand-built.mp4'"));
        assert_non_null(strstr(err.msg, cases[i].msg));
        free(pts);
        free(kf);
    }
}

/* ---- scene-aware planning ------------------------------------------------------------------- */

/* Keyframes as in t_case_t; cuts (0-terminated) are handed to rf_plan_ranges_scenes as they are. */
typedef struct t_scene_case {
    const char *name;
    int64_t frames;
    double target_s, max_s; /* at 24 fps */
    int64_t kf_every;
    int64_t cuts[MAXK];
    size_t ncuts;
    int64_t want[MAXK];     /* expected chunk ends, 0-terminated */
    const char *starts;     /* per chunk: 'S' starts a scene, 'F' is a forced boundary */
} t_scene_case_t;

/* At 24 fps, target 2 s / max 4 s: T = 48, M = 96, H = 24. */
static const t_scene_case_t s_scene_cases[] = {
    {"the scenes fixture: every cut is a boundary, a long scene gets a keyframe", 366, 2, 4, 48,
     {60, 146, 198, 308}, 4, {60, 146, 198, 240, 308, 366}, "SSSSFS"},
    {"short scenes are collated into the chunk after the last boundary", 240, 2, 4, 0,
     {10, 30, 40, 100, 110}, 5, {30, 100, 148, 196, 240}, "SSSFF"},
    {"a cut that would leave a runt at the end is not a boundary", 200, 2, 4, 0, {100, 190}, 2,
     {48, 100, 148, 200}, "SFSF"},
    {"a forced boundary leaves the next cut half a target in", 400, 2, 4, 0, {130}, 1,
     {48, 130, 178, 226, 274, 322, 370, 400}, "SFSFFFFF"},
    {"a forced boundary moves before the ideal to make room", 400, 2, 4, 0, {120}, 1,
     {48, 120, 168, 216, 264, 312, 360, 400}, "SFSFFFFF"},
    {"out-of-range and unordered cuts are ignored", 300, 2, 4, 0, {0, -5, 500, 60, 50}, 5,
     {60, 108, 156, 204, 252, 300}, "SSFFFF"},
    {"a scene exactly max long is one chunk", 300, 2, 4, 0, {96, 192}, 2, {96, 192, 240, 300},
     "SSSF"},
    {"a cut wins over a keyframe nearer the target", 300, 2, 4, 48, {70}, 1,
     {70, 96, 144, 192, 240, 300}, "SSFFFF"},
    {"no cuts: keyframe planning", 300, 2, 4, 48, {0}, 0, {48, 96, 144, 192, 240, 300}, "SFFFFF"},
};

static void t_check_scene_invariants(const char *name, const rf_plan_range_t *r, size_t n,
                                     int64_t frames, int64_t target, int64_t max,
                                     const int64_t *cuts, size_t ncuts)
{
    int64_t half = target / 2 > 0 ? target / 2 : 1;
    for (size_t i = 0; i < n; i++) {
        int64_t s = r[i].start, e = r[i].end;
        if (s != (i ? r[i - 1].end : 0) || e <= s)
            fail_msg("case '%s': chunk %zu is [%lld, %lld)", name, i, (long long)s, (long long)e);
        if (e - s > max)
            fail_msg("case '%s': chunk %zu has %lld frames, over max %lld", name, i,
                     (long long)(e - s), (long long)max);
        bool is_cut = s == 0;
        for (size_t k = 0; k < ncuts; k++)
            if (cuts[k] == s)
                is_cut = true;
        if (r[i].scene_start != is_cut)
            fail_msg("case '%s': chunk %zu at %lld: scene_start %d, want %d", name, i,
                     (long long)s, r[i].scene_start, is_cut);
    }
    if (r[n - 1].end != frames)
        fail_msg("case '%s': the chunks end at %lld, not %lld", name, (long long)r[n - 1].end,
                 (long long)frames);
    /* every cut at least H after the previous one and H before the end starts a chunk */
    int64_t prev = 0;
    for (size_t k = 0; k < ncuts; k++) {
        int64_t c = cuts[k];
        if (c - prev >= half && frames - c >= half) {
            bool found = false;
            for (size_t i = 0; i < n; i++)
                if (r[i].start == c)
                    found = true;
            if (!found)
                fail_msg("case '%s': cut %lld (%lld after the previous) starts no chunk", name,
                         (long long)c, (long long)(c - prev));
        }
        prev = c;
    }
}

static void test_ranges_scenes_table(void **state)
{
    (void)state;
    for (size_t ci = 0; ci < sizeof(s_scene_cases) / sizeof(s_scene_cases[0]); ci++) {
        const t_scene_case_t *sc = &s_scene_cases[ci];
        t_case_t c = {.name = sc->name, .frames = sc->frames, .fps = {24, 1},
                      .target_s = sc->target_s, .max_s = sc->max_s, .kf_every = sc->kf_every};
        rf_media_info_t info;
        int64_t *pts = NULL, *kf = NULL;
        t_info(&c, &info, &pts, &kf);
        rf_job_spec_t spec;
        t_spec(&c, &spec);
        rf_plan_range_t *r = NULL;
        size_t n = 0;
        rf_err_t err = {0};
        if (rf_plan_ranges_scenes(&spec, &info, sc->cuts, sc->ncuts, &r, &n, &err) != 0)
            fail_msg("case '%s': %s", sc->name, err.msg);
        size_t nwant = 0;
        while (nwant < MAXK && sc->want[nwant])
            nwant++;
        if (n != nwant)
            fail_msg("case '%s': %zu chunks, want %zu", sc->name, n, nwant);
        for (size_t i = 0; i < n; i++) {
            if (r[i].end != sc->want[i])
                fail_msg("case '%s': chunk %zu ends at %lld, want %lld", sc->name, i,
                         (long long)r[i].end, (long long)sc->want[i]);
            if (r[i].scene_start != (sc->starts[i] == 'S'))
                fail_msg("case '%s': chunk %zu scene_start %d, want %c", sc->name, i,
                         r[i].scene_start, sc->starts[i]);
        }
        /* the valid cuts only: ascending, inside the source */
        int64_t valid[MAXK];
        size_t nvalid = 0;
        for (size_t k = 0; k < sc->ncuts; k++)
            if (sc->cuts[k] > 0 && sc->cuts[k] < sc->frames &&
                (nvalid == 0 || sc->cuts[k] > valid[nvalid - 1]))
                valid[nvalid++] = sc->cuts[k];
        t_check_scene_invariants(sc->name, r, n, sc->frames, (int64_t)llround(sc->target_s * 24),
                                 (int64_t)floor(sc->max_s * 24), valid, nvalid);
        free(r);
        free(pts);
        free(kf);
    }
}

/* Seeded random sources, cut lists and chunk lengths: the invariants hold for all of them. */
static void test_ranges_scenes_random(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 2000; round++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        uint64_t x = seed >> 16;
        int64_t frames = 1 + (int64_t)(x % 3000);
        int64_t target = 1 + (int64_t)((x >> 12) % 200);
        int64_t max = target + (int64_t)((x >> 20) % 300);
        int64_t kf_every = (int64_t)((x >> 30) % 120);
        int64_t cuts[MAXK];
        size_t ncuts = 0;
        int64_t at = 0;
        while (ncuts < MAXK) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            at += 1 + (int64_t)((seed >> 33) % (uint64_t)(2 * max + 1));
            if (at >= frames)
                break;
            cuts[ncuts++] = at;
        }
        char name[128];
        snprintf(name, sizeof(name), "random %d: %lld frames, T %lld, M %lld, gop %lld, %zu cuts",
                 round, (long long)frames, (long long)target, (long long)max, (long long)kf_every,
                 ncuts);
        t_case_t c = {.name = name, .frames = frames, .fps = {1, 1}, .target_s = (double)target,
                      .max_s = (double)max, .kf_every = kf_every};
        rf_media_info_t info;
        int64_t *pts = NULL, *kf = NULL;
        t_info(&c, &info, &pts, &kf);
        rf_job_spec_t spec;
        t_spec(&c, &spec);
        rf_plan_range_t *r = NULL;
        size_t n = 0;
        rf_err_t err = {0};
        if (rf_plan_ranges_scenes(&spec, &info, cuts, ncuts, &r, &n, &err) != 0)
            fail_msg("case '%s': %s", name, err.msg);
        t_check_scene_invariants(name, r, n, frames, target, max, cuts, ncuts);
        free(r);
        free(pts);
        free(kf);
    }
}

/* ---- rf_plan_job on a real source ----------------------------------------------------------- */

/* Seam overlap: only forced boundaries get one, clamped to the later chunk's length minus one,
 * and each chunk's tail equals the next one's head. */
static void test_ranges_seam_overlap(void **state)
{
    (void)state;
    /* 24 fps, target 2 s, max 4 s, no keyframes: a cut at 100 is a boundary, the rest forced. */
    t_case_t c = {.name = "seams", .frames = 300, .fps = {24, 1}, .target_s = 2, .max_s = 4};
    rf_media_info_t info;
    int64_t *pts = NULL, *kf = NULL;
    t_info(&c, &info, &pts, &kf);
    rf_job_spec_t spec;
    t_spec(&c, &spec);
    const int64_t cuts[] = {100};
    for (int k = 0; k <= 64; k += 8) {
        spec.chunking.seam_overlap = k;
        rf_plan_range_t *r = NULL;
        size_t n = 0;
        rf_err_t err = {0};
        assert_int_equal(rf_plan_ranges_scenes(&spec, &info, cuts, 1, &r, &n, &err), 0);
        assert_true(n >= 3);
        for (size_t i = 0; i < n; i++) {
            int64_t len = r[i].end - r[i].start;
            uint32_t want = 0;
            if (i > 0 && !r[i].scene_start)
                want = (uint32_t)(k < len - 1 ? k : len - 1);
            if (r[i].head_overlap != want)
                fail_msg("k=%d chunk %zu [%lld,%lld) scene_start %d: head %u, want %u", k, i,
                         (long long)r[i].start, (long long)r[i].end, r[i].scene_start,
                         r[i].head_overlap, want);
            uint32_t tail = i + 1 < n ? r[i + 1].head_overlap : 0;
            assert_int_equal(r[i].tail_overlap, tail);
            if (r[i].start == 100)
                assert_int_equal(r[i].head_overlap, 0); /* a scene cut is never cross-faded */
        }
        /* with an overlap asked for, the forced boundaries of this plan get one */
        size_t forced = 0;
        for (size_t i = 1; i < n; i++)
            forced += !r[i].scene_start;
        assert_true(forced >= 1);
        if (k > 0)
            for (size_t i = 1; i < n; i++)
                if (!r[i].scene_start)
                    assert_true(r[i].head_overlap > 0);
        free(r);
    }
    free(pts);
    free(kf);
}

/* One colour reference per scene, pooled over its frames, listed for every chunk that touches
 * the scene (its context and tail overlap included). */
static void test_color_refs(void **state)
{
    (void)state;
    rf_media_info_t info = {.path = (char *)"hand-built.mp4", .nb_frames = 100};
    rf_color_stats_t colors[100];
    for (int f = 0; f < 100; f++) {
        for (int c = 0; c < 3; c++) {
            /* scene 0 (0-39): means alternate 0.4 / 0.6 with no spread -> pooled 0.5 +- 0.1;
             * scene 1 (40-99): 0.2 +- 0.05 everywhere */
            colors[f].mean[c] = f < 40 ? (f % 2 ? 0.6 : 0.4) - 0.1 * c : 0.2;
            colors[f].std[c] = f < 40 ? 0 : 0.05;
        }
    }
    colors[50].mean[0] = NAN; /* a frame that did not decode is left out */
    colors[50].mean[1] = 99;
    const int64_t cuts[] = {40};
    rf_plan_range_t r[3] = {{.start = 0, .end = 30, .ctx_start = 0},
                            {.start = 30, .end = 70, .ctx_start = 25, .tail_overlap = 0},
                            {.start = 70, .end = 100, .ctx_start = 65}};
    char *refs[3] = {0};
    rf_err_t err = {0};
    assert_int_equal(rf_plan_color_refs(&info, colors, cuts, 1, r, 3, refs, &err), 0);
    assert_string_equal(refs[0], "0:0.5,0.4,0.3,0.1,0.1,0.1");
    assert_string_equal(refs[1], "0:0.5,0.4,0.3,0.1,0.1,0.1;40:0.2,0.2,0.2,0.05,0.05,0.05");
    assert_string_equal(refs[2], "40:0.2,0.2,0.2,0.05,0.05,0.05");
    for (int i = 0; i < 3; i++)
        free(refs[i]);
    /* a tail overlap reaching into the next scene lists it too */
    r[0].end = 40;
    r[0].tail_overlap = 4;
    assert_int_equal(rf_plan_color_refs(&info, colors, cuts, 1, r, 1, refs, &err), 0);
    assert_non_null(strstr(refs[0], ";40:"));
    free(refs[0]);
    /* a scene with no decoded frame cannot have a reference */
    for (int f = 40; f < 100; f++)
        colors[f].mean[0] = NAN;
    assert_int_equal(rf_plan_color_refs(&info, colors, cuts, 1, r, 3, refs, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "frames 40-99"));
    assert_null(refs[0]);
}

static void test_plan_job_writes_decodable_slices(void **state)
{
    (void)state;
    char src[512], dir[512], blobdir[600];
    rf_fixture("h264-aac-300", src, sizeof(src));
    rf_tmpdir(dir, sizeof(dir));
    snprintf(blobdir, sizeof(blobdir), "%s/blobs", dir);
    assert_int_equal(mkdir(blobdir, 0700), 0);
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    if (rf_media_probe(src, &info, &err) != 0)
        fail_msg("probe: %s", err.msg);
    assert_int_equal(info->nb_frames, 300);

    rf_job_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.chunking.target_seconds = 2;
    spec.chunking.max_seconds = 4;
    spec.chunking.context_frames = 3;
    spec.chunking.split = RF_SPLIT_KEYFRAME;
    rf_store_chunk_t *chunks = NULL;
    size_t n = 0;
    if (rf_plan_job(&spec, info, blobdir, &chunks, &n, &err) != 0)
        fail_msg("plan: %s", err.msg);
    assert_true(n >= 4);

    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        const rf_store_chunk_t *c = &chunks[i];
        assert_int_equal(c->index, i);
        assert_int_equal(c->frame_start, i ? chunks[i - 1].frame_end : 0);
        assert_true(c->frame_end > c->frame_start);
        assert_string_equal(c->state, "queued");
        int64_t ctx_start = c->frame_start - (int64_t)c->context_frames;
        assert_int_equal(c->context_frames, c->frame_start >= 3 ? 3 : c->frame_start);
        assert_int_equal(c->ctx_pts, info->pts[ctx_start]);
        assert_int_equal(c->start_pts, info->pts[c->frame_start]);
        if (i + 1 < n)
            assert_int_equal(c->end_pts, info->pts[c->frame_end]);
        else
            assert_int_equal(c->end_pts, INT64_MAX);

        /* the blob is <blobdir>/<sha> with the recorded size */
        assert_int_equal(strlen(c->input_blob), RF_SHA256_HEX_LEN);
        char path[800];
        snprintf(path, sizeof(path), "%s/%s", blobdir, c->input_blob);
        struct stat st;
        if (stat(path, &st) != 0)
            fail_msg("chunk %zu: no blob %s", i, path);
        assert_int_equal((uint64_t)st.st_size, c->input_size);
        assert_true(c->input_size > 0);

        /* it decodes to exactly the frames of [ctx_pts, end_pts), in order, none missing */
        rf_decoder_t *d = NULL;
        if (rf_decoder_open(path, &d, &err) != 0)
            fail_msg("chunk %zu: %s", i, err.msg);
        AVRational tb = rf_decoder_time_base(d);
        int64_t next = ctx_start;
        int ret;
        while ((ret = rf_decoder_next(d, f, &err)) == 1) {
            int64_t p = av_rescale_q(f->pts, tb, info->time_base);
            if (p < c->ctx_pts || p >= c->end_pts)
                continue; /* pre-roll or trailing frames the slice needed for decoding */
            if (next >= c->frame_end || p != info->pts[next])
                fail_msg("chunk %zu: decoded pts %lld, want frame %lld (pts %lld)", i,
                         (long long)p, (long long)next,
                         (long long)(next < info->nb_frames ? info->pts[next] : -1));
            next++;
        }
        if (ret != 0)
            fail_msg("chunk %zu: %s", i, err.msg);
        if (next != c->frame_end)
            fail_msg("chunk %zu: decoded up to frame %lld, want %lld", i, (long long)next,
                     (long long)c->frame_end);
        rf_decoder_destroy(&d);
    }
    assert_int_equal(chunks[n - 1].frame_end, 300);
    av_frame_free(&f);
    rf_store_chunks_free(chunks, n);
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

/* rf_plan_job with split: scene on the `scenes` fixture: every known cut starts a chunk. */
static void test_plan_job_cuts_at_scene_changes(void **state)
{
    (void)state;
    char src[512], dir[512], blobdir[600], cuts_path[600];
    rf_fixture("scenes", src, sizeof(src));
    snprintf(cuts_path, sizeof(cuts_path), "%s/scenes.cuts", getenv("RF_FIXTURE_DIR"));
    FILE *fp = fopen(cuts_path, "r");
    assert_non_null(fp);
    long long want[MAXK];
    size_t nwant = 0;
    while (nwant < MAXK && fscanf(fp, "%lld", &want[nwant]) == 1)
        nwant++;
    fclose(fp);
    assert_true(nwant >= 3);

    rf_tmpdir(dir, sizeof(dir));
    snprintf(blobdir, sizeof(blobdir), "%s/blobs", dir);
    assert_int_equal(mkdir(blobdir, 0700), 0);
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    if (rf_media_probe(src, &info, &err) != 0)
        fail_msg("probe: %s", err.msg);
    rf_job_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.chunking.split = RF_SPLIT_SCENE;
    spec.chunking.scene_threshold = 0.1;
    spec.chunking.target_seconds = 2;
    spec.chunking.max_seconds = 4;
    rf_store_chunk_t *chunks = NULL;
    size_t n = 0;
    if (rf_plan_job(&spec, info, blobdir, &chunks, &n, &err) != 0)
        fail_msg("plan: %s", err.msg);
    int64_t max = (int64_t)floor(4 * av_q2d(info->frame_rate));
    for (size_t i = 0; i < n; i++)
        if (chunks[i].frame_end - chunks[i].frame_start > max)
            fail_msg("chunk %zu has %lld frames, over %lld", i,
                     (long long)(chunks[i].frame_end - chunks[i].frame_start), (long long)max);
    for (size_t k = 0; k < nwant; k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            if (chunks[i].frame_start == want[k])
                found = true;
        if (!found)
            fail_msg("known cut %lld starts no chunk", want[k]);
    }
    rf_store_chunks_free(chunks, n);

    /* a bad threshold is the spec's problem, reported as such */
    spec.chunking.scene_threshold = 2;
    assert_int_equal(rf_plan_job(&spec, info, blobdir, &chunks, &n, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "scene detection: "));
    rf_media_info_destroy(&info);
    rf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ranges_invariants),
        cmocka_unit_test(test_ranges_reject_empty_or_rateless_sources),
        cmocka_unit_test(test_ranges_scenes_table),
        cmocka_unit_test(test_ranges_scenes_random),
        cmocka_unit_test(test_ranges_seam_overlap),
        cmocka_unit_test(test_color_refs),
        cmocka_unit_test(test_plan_job_writes_decodable_slices),
        cmocka_unit_test(test_plan_job_cuts_at_scene_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
