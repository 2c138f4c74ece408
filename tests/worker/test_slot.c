/* test_slot.c - one chunk end to end through rf_slot_render (worker/slot.h): the input slice is
 * fetched from a real blob server, decoded, encoded losslessly (ffv1) and uploaded; the result must
 * decode to exactly the chunk's frames, pixel for pixel the source's at the same global indices.
 * Also: a temporal pass with context frames, cancellation, an unknown encoder, and the checks of
 * rf_assignment_from_msg.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "blob.h"
#include "media.h"
#include "media/fixture.h"
#include "rftime.h"
#include "slot.h"

#define SRC_FRAMES 300

typedef struct t_env {
    char src[512];
    char dir[512];
    char blob_dir[600];
    char cache_dir[600];
    rf_media_info_t *info;
    uint8_t src_sha[SRC_FRAMES][RF_SHA256_LEN];
    void *zctx;
    rf_blob_server_t *server;
    uint64_t next_lease;
} t_env_t;

/* Per-frame hashes of a decode, into an array of expected capacity. */
typedef struct t_hashes {
    uint8_t (*sha)[RF_SHA256_LEN];
    int64_t cap, count;
} t_hashes_t;

static void t_collect(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    t_hashes_t *h = arg;
    if (index < h->cap)
        memcpy(h->sha[index], sha, RF_SHA256_LEN);
    h->count = index + 1;
}

static int t_group_setup(void **state)
{
    t_env_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    rf_fixture("h264-aac-300", e->src, sizeof(e->src));
    rf_tmpdir(e->dir, sizeof(e->dir));
    snprintf(e->blob_dir, sizeof(e->blob_dir), "%s/blobs", e->dir);
    snprintf(e->cache_dir, sizeof(e->cache_dir), "%s/cache", e->dir);
    assert_int_equal(mkdir(e->blob_dir, 0700), 0);
    rf_err_t err = {0};
    if (rf_media_probe(e->src, &e->info, &err) != 0)
        fail_msg("probe: %s", err.msg);
    assert_int_equal(e->info->nb_frames, SRC_FRAMES);
    t_hashes_t h = {.sha = e->src_sha, .cap = SRC_FRAMES};
    uint64_t n = 0;
    uint8_t digest[RF_SHA256_LEN];
    assert_int_equal(rf_media_checksum(e->src, &n, digest, t_collect, &h, &err), 0);
    assert_int_equal(n, SRC_FRAMES);
    e->zctx = zmq_ctx_new();
    assert_non_null(e->zctx);
    if (rf_blob_server_new(e->zctx, "tcp://127.0.0.1:*", e->blob_dir, &e->server, &err) != 0)
        fail_msg("blob server: %s", err.msg);
    e->next_lease = 1000;
    *state = e;
    return 0;
}

static int t_group_teardown(void **state)
{
    t_env_t *e = *state;
    rf_blob_server_destroy(&e->server);
    zmq_ctx_term(e->zctx);
    rf_media_info_destroy(&e->info);
    /* a render leaves no work folder behind */
    char work[700];
    snprintf(work, sizeof(work), "%s/leases", e->cache_dir);
    struct stat st;
    bool leftovers = false;
    if (stat(work, &st) == 0) {
        char cmd[800], line[64];
        snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", work);
        rf_shell_line(cmd, line, sizeof(line));
        leftovers = atoi(line) != 0;
    }
    rf_tmpdir_remove(e->dir);
    free(e);
    return leftovers ? -1 : 0;
}

/* Slices frames [ctx_start, end) of the source into the blob store; sha/size name the blob. */
static void t_slice(t_env_t *e, int64_t ctx_start, int64_t end, char sha[RF_SHA256_HEX_LEN + 1],
                    uint64_t *size)
{
    char tmp[1024], named[1100];
    rf_err_t err = {0};
    assert_int_equal(rf_blob_tmp_path(e->blob_dir, "slice", tmp, sizeof(tmp)), 0);
    snprintf(named, sizeof(named), "%s.nut", tmp); /* the muxer is chosen by the extension */
    if (rf_media_slice(e->info, ctx_start, end, named, &err) != 0)
        fail_msg("slice [%lld, %lld): %s", (long long)ctx_start, (long long)end, err.msg);
    if (rf_blob_commit(e->blob_dir, named, sha, size, &err) != 0)
        fail_msg("commit: %s", err.msg);
}

/* The pieces of one Assign message; filled by t_assign, pointers into itself. */
typedef struct t_msg {
    Reelfarm__Assign m;
    Reelfarm__EncodeSpec enc;
    Reelfarm__PassSpec pass;
    Reelfarm__PassSpec *passes[1];
    char sha[RF_SHA256_HEX_LEN + 1];
} t_msg_t;

/* An Assign for frames [start, end) with `context` frames before, its slice committed. */
static void t_assign(t_env_t *e, t_msg_t *t, int64_t start, int64_t end, uint32_t context,
                     const char *codec, const char *pass)
{
    const rf_media_info_t *info = e->info;
    int64_t ctx_start = start - context;
    assert_true(ctx_start >= 0 && end <= info->nb_frames);
    reelfarm__assign__init(&t->m);
    reelfarm__encode_spec__init(&t->enc);
    reelfarm__pass_spec__init(&t->pass);
    uint64_t size = 0;
    t_slice(e, ctx_start, end, t->sha, &size);
    t->m.lease = e->next_lease++;
    t->m.job_id = (char *)"job-slot-test";
    t->m.chunk = 0;
    t->m.attempt = 1;
    t->m.frame_start = start;
    t->m.frame_end = end;
    t->m.context_before = context;
    t->m.ctx_pts = info->pts[ctx_start];
    t->m.start_pts = info->pts[start];
    t->m.end_pts = end < info->nb_frames ? info->pts[end] : INT64_MAX;
    t->m.tb_num = info->time_base.num;
    t->m.tb_den = info->time_base.den;
    t->m.fps_num = info->frame_rate.num;
    t->m.fps_den = info->frame_rate.den;
    t->enc.codec = (char *)codec;
    t->enc.crf = -1;
    t->m.encode = &t->enc;
    t->m.input_blob = t->sha;
    t->m.input_size = size;
    t->m.seed = 7;
    if (pass) {
        t->pass.name = (char *)pass;
        t->pass.role = (char *)"refine";
        t->passes[0] = &t->pass;
        t->m.pipeline = t->passes;
        t->m.n_pipeline = 1;
    }
}

static rf_assignment_t *t_from_msg(const t_msg_t *t)
{
    rf_assignment_t *a = NULL;
    rf_err_t err = {0};
    if (rf_assignment_from_msg(&t->m, &a, &err) != 0)
        fail_msg("rf_assignment_from_msg: %s", err.msg);
    assert_non_null(a);
    return a;
}

static rf_slot_env_t t_slot_env(const t_env_t *e)
{
    rf_slot_env_t env = {.zctx = e->zctx,
                         .blob_endpoint = rf_blob_server_endpoint(e->server),
                         .cache_dir = e->cache_dir};
    return env;
}

/* Decodes the result blob of res and returns its per-frame hashes (count in h->count). */
static void t_result_hashes(const t_env_t *e, const rf_slot_result_t *res, t_hashes_t *h)
{
    char path[1024];
    assert_int_equal(rf_blob_path(e->blob_dir, res->result_blob, path, sizeof(path)), 0);
    struct stat st;
    if (stat(path, &st) != 0)
        fail_msg("result blob %s is not on the server", res->result_blob);
    assert_int_equal((uint64_t)st.st_size, res->result_size);
    uint64_t n = 0;
    uint8_t digest[RF_SHA256_LEN];
    rf_err_t err = {0};
    if (rf_media_checksum(path, &n, digest, t_collect, h, &err) != 0)
        fail_msg("checksum of the result: %s", err.msg);
    assert_int_equal((int64_t)n, h->count);
    /* the digest the worker reports is over what the coordinator will decode */
    assert_memory_equal(digest, res->digest, RF_SHA256_LEN);
}

/* ---- lossless renders ------------------------------------------------------------------------ */

static void test_render_ffv1_equals_source_frames(void **state)
{
    t_env_t *e = *state;
    static const struct {
        int64_t start, end;
    } cases[] = {
        {0, 50},    /* from the first keyframe, ends inside the second GOP */
        {100, 130}, /* starts inside a GOP: pre-roll decoded and dropped */
        {48, 49},   /* a single frame on a keyframe */
        {250, 300}, /* the last chunk: end_pts is INT64_MAX */
    };
    rf_slot_env_t env = t_slot_env(e);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t start = cases[i].start, end = cases[i].end;
        t_msg_t t;
        t_assign(e, &t, start, end, 0, "ffv1", NULL);
        if (end == SRC_FRAMES)
            assert_int_equal(t.m.end_pts, INT64_MAX);
        rf_assignment_t *a = t_from_msg(&t);
        atomic_int cancel = 0;
        _Atomic uint64_t done = 0;
        rf_slot_result_t res;
        int rc = rf_slot_render(a, &env, &cancel, &done, &res);
        if (rc != 0)
            fail_msg("case %zu [%lld, %lld): %s: %s", i, (long long)start, (long long)end,
                     res.error_class, res.message);
        assert_int_equal(res.rc, 0);
        assert_int_equal(res.frames, (uint64_t)(end - start));
        assert_int_equal(atomic_load(&done), (uint64_t)(end - start));
        assert_true(rf_sha256_hex_valid(res.result_blob));

        uint8_t(*got)[RF_SHA256_LEN] = calloc(SRC_FRAMES, RF_SHA256_LEN);
        assert_non_null(got);
        t_hashes_t h = {.sha = got, .cap = SRC_FRAMES};
        t_result_hashes(e, &res, &h);
        if (h.count != end - start)
            fail_msg("case %zu: result has %lld frames, want %lld", i, (long long)h.count,
                     (long long)(end - start));
        for (int64_t k = 0; k < h.count; k++)
            if (memcmp(got[k], e->src_sha[start + k], RF_SHA256_LEN) != 0)
                fail_msg("case %zu: result frame %lld differs from source frame %lld", i,
                         (long long)k, (long long)(start + k));
        free(got);
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
        assert_null(a);
    }
}

static void test_render_with_deflicker_and_context(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    static const struct {
        int64_t start, end;
        uint32_t context;
    } cases[] = {
        {100, 130, 4}, /* context inside the chunk's GOP */
        {50, 75, 4},   /* context crosses the keyframe at 48 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_msg_t t;
        t_assign(e, &t, cases[i].start, cases[i].end, cases[i].context, "ffv1", "deflicker");
        rf_assignment_t *a = t_from_msg(&t);
        assert_int_equal(a->npasses, 1);
        atomic_int cancel = 0;
        _Atomic uint64_t done = 0;
        rf_slot_result_t res;
        if (rf_slot_render(a, &env, &cancel, &done, &res) != 0)
            fail_msg("case %zu: %s: %s", i, res.error_class, res.message);
        int64_t want = cases[i].end - cases[i].start;
        assert_int_equal(res.frames, (uint64_t)want);
        assert_int_equal(atomic_load(&done), (uint64_t)want);
        uint8_t(*got)[RF_SHA256_LEN] = calloc(SRC_FRAMES, RF_SHA256_LEN);
        assert_non_null(got);
        t_hashes_t h = {.sha = got, .cap = SRC_FRAMES};
        t_result_hashes(e, &res, &h);
        assert_int_equal(h.count, want); /* context frames are not encoded */
        free(got);
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
}

/* The largest difference, in codes, between the frames of two results (same count, size and
 * 8-bit format). */
static int t_result_max_diff(const t_env_t *e, const rf_slot_result_t *x, const rf_slot_result_t *y)
{
    char px[1024], py[1024];
    assert_int_equal(rf_blob_path(e->blob_dir, x->result_blob, px, sizeof(px)), 0);
    assert_int_equal(rf_blob_path(e->blob_dir, y->result_blob, py, sizeof(py)), 0);
    rf_decoder_t *dx = NULL, *dy = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_decoder_open(px, &dx, &err), 0);
    assert_int_equal(rf_decoder_open(py, &dy, &err), 0);
    AVFrame *fx = av_frame_alloc(), *fy = av_frame_alloc();
    int worst = 0, rx, ry;
    while ((rx = rf_decoder_next(dx, fx, &err)) == 1) {
        ry = rf_decoder_next(dy, fy, &err);
        assert_int_equal(ry, 1);
        assert_int_equal(fx->format, fy->format);
        assert_int_equal(fx->width, fy->width);
        for (int p = 0; p < 3; p++) {
            const int w = p ? fx->width / 2 : fx->width, h = p ? fx->height / 2 : fx->height;
            for (int r = 0; r < h; r++)
                for (int c = 0; c < w; c++) {
                    int d = abs((int)fx->data[p][r * fx->linesize[p] + c] -
                                (int)fy->data[p][r * fy->linesize[p] + c]);
                    worst = d > worst ? d : worst;
                }
        }
    }
    assert_int_equal(rx, 0);
    assert_int_equal(rf_decoder_next(dy, fy, &err), 0);
    av_frame_free(&fx);
    av_frame_free(&fy);
    rf_decoder_destroy(&dx);
    rf_decoder_destroy(&dy);
    return worst;
}

/* The same chunk on a slot with a GPU (env.gpu) and on a CPU slot. Without a device the GPU slot
 * falls back to CPU decoding and CPU passes: the outputs are identical. With one (the GPU run),
 * NVDEC, the CUDA passes and the GPU conversion give frames within one code of the CPU's (the
 * conversion's tolerance, docs/passes.md). */
static void test_gpu_slot_matches_cpu_slot(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t cpu_env = t_slot_env(e), gpu_env = t_slot_env(e);
    gpu_env.gpu = true;
    gpu_env.gpu_device = 0;
    gpu_env.decode = RF_DECODE_AUTO;
    static const char *const passes[] = {"deflicker", "color-match", "grade"};
    for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) {
        rf_slot_result_t res[2];
        for (int k = 0; k < 2; k++) {
            t_msg_t t;
            t_assign(e, &t, 100, 130, 4, "ffv1", passes[i]);
            /* color-match needs a reference, grade is the identity by default; deflicker's
             * defaults do something */
            Reelfarm__Param ref = REELFARM__PARAM__INIT, *refs[1] = {&ref};
            ref.key = (char *)(strcmp(passes[i], "grade") ? "reference" : "contrast");
            ref.value = (char *)(strcmp(passes[i], "grade") ? "0.6,0.01,0.02,0.15,0.04,0.05"
                                                            : "1.3");
            if (strcmp(passes[i], "deflicker")) {
                t.pass.params = refs;
                t.pass.n_params = 1;
            }
            rf_assignment_t *a = t_from_msg(&t);
            atomic_int cancel = 0;
            _Atomic uint64_t done = 0;
            if (rf_slot_render(a, k ? &gpu_env : &cpu_env, &cancel, &done, &res[k]) != 0)
                fail_msg("%s on the %s slot: %s: %s", passes[i], k ? "GPU" : "CPU",
                         res[k].error_class, res[k].message);
            assert_int_equal(res[k].frames, 30);
            rf_assignment_destroy(&a);
        }
        const int diff = t_result_max_diff(e, &res[0], &res[1]);
        printf("%s: GPU slot vs CPU slot: max %d codes\n", passes[i], diff);
        assert_true(diff <= 1);
        for (int k = 0; k < 2; k++)
            rf_slot_result_release(&res[k]);
    }
}

/* The digest the worker reports, recomputed from the stock CLI's framehash of the uploaded result:
 * SHA-256 over the per-frame SHA-256s (in output order) that `ffmpeg -f framehash -hash sha256`
 * prints. The worker computes its digest from the encoder's packets while it encodes (a pipelined
 * decoder), so this is what proves it equals a decode of the file it uploads. */
static void t_framehash_digest(const t_env_t *e, const rf_slot_result_t *res, uint64_t *frames,
                               uint8_t digest[RF_SHA256_LEN])
{
    char path[1024], cmd[1400], line[512];
    assert_int_equal(rf_blob_path(e->blob_dir, res->result_blob, path, sizeof(path)), 0);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -i '%s' -map 0:v:0 -f framehash -hash sha256 -", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    rf_sha256_t all;
    rf_sha256_init(&all);
    *frames = 0;
    while (fgets(line, sizeof(line), f)) {
        if (line[0] == '#')
            continue;
        line[strcspn(line, "\n")] = '\0';
        const char *hex = strrchr(line, ',');
        assert_non_null(hex);
        while (*++hex == ' ')
            ;
        uint8_t sha[RF_SHA256_LEN];
        if (rf_sha256_from_hex(hex, sha) != 0)
            fail_msg("framehash line without a SHA-256: %s", line);
        rf_sha256_update(&all, sha, sizeof(sha));
        (*frames)++;
    }
    assert_int_equal(pclose(f), 0);
    rf_sha256_final(&all, digest);
}

static void test_reported_digest_equals_ffmpeg_framehash(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    static const struct {
        int64_t start, end;
        const char *codec, *pass;
    } cases[] = {
        {100, 160, "libx264", NULL},        /* B-frames: decode order differs from output order */
        {40, 100, "libx264", "deflicker"},  /* through the pass stage */
        {0, 25, "ffv1", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_msg_t t;
        t_assign(e, &t, cases[i].start, cases[i].end, cases[i].pass ? 4 : 0, cases[i].codec,
                 cases[i].pass);
        rf_assignment_t *a = t_from_msg(&t);
        atomic_int cancel = 0;
        rf_slot_result_t res;
        if (rf_slot_render(a, &env, &cancel, NULL, &res) != 0)
            fail_msg("case %zu: %s: %s", i, res.error_class, res.message);
        uint64_t frames = 0;
        uint8_t digest[RF_SHA256_LEN];
        t_framehash_digest(e, &res, &frames, digest);
        assert_int_equal(frames, (uint64_t)(cases[i].end - cases[i].start));
        assert_int_equal(res.frames, frames);
        if (memcmp(digest, res.digest, RF_SHA256_LEN) != 0)
            fail_msg("case %zu: the reported digest differs from ffmpeg's framehash", i);
        /* the per-frame list (for the coordinator's sampled check) is what the digest is made of */
        assert_non_null(res.frame_list);
        assert_int_equal(res.frame_list_frames, frames);
        rf_sha256_t all;
        uint8_t from_list[RF_SHA256_LEN];
        rf_sha256_init(&all);
        rf_sha256_update(&all, res.frame_list, (size_t)frames * RF_SHA256_LEN);
        rf_sha256_final(&all, from_list);
        assert_memory_equal(from_list, res.digest, RF_SHA256_LEN);
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
}

/* ---- failures -------------------------------------------------------------------------------- */

/* A stage that fails while the others block on full queues: the whole chunk (300 frames, far more
 * than the queues hold) must end with the failing stage's error, not hang. */
static void test_stage_failure_stops_the_pipeline(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    static const struct {
        const char *codec, *pass, *pix_fmt, *klass, *msg;
    } cases[] = {
        /* encode fails on its first frame: decode blocks on the full encode queue */
        {"nosuchcodec", NULL, "", "encode", "nosuchcodec"},
        /* the same behind the pass stage: decode and passes both block */
        {"nosuchcodec", "grade", "", "encode", "nosuchcodec"},
        /* a format the encoder refuses: the frame's own format reaches it */
        {"ffv1", NULL, "yuyv422", "encode", "does not support pixel format"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_msg_t t;
        t_assign(e, &t, 0, SRC_FRAMES, 0, cases[i].codec, cases[i].pass);
        t.enc.pix_fmt = (char *)cases[i].pix_fmt;
        rf_assignment_t *a = t_from_msg(&t);
        atomic_int cancel = 0;
        _Atomic uint64_t done = 0;
        rf_slot_result_t res;
        int rc = rf_slot_render(a, &env, &cancel, &done, &res);
        if (rc == 0)
            fail_msg("case %zu: rendered, expected a failure", i);
        assert_int_equal(res.rc, rc);
        if (strcmp(res.error_class, cases[i].klass) != 0 || !strstr(res.message, cases[i].msg))
            fail_msg("case %zu: %s: '%s', want %s: '...%s...'", i, res.error_class, res.message,
                     cases[i].klass, cases[i].msg);
        assert_string_equal(res.result_blob, "");
        assert_int_equal(atomic_load(&done), 0);
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
}

/* Cancelling mid-chunk: every stage is running or blocked on a queue; all must stop. */
typedef struct t_canceller {
    _Atomic uint64_t *done;
    atomic_int *cancel;
    uint64_t after;
} t_canceller_t;

static void *t_cancel_main(void *arg)
{
    t_canceller_t *c = arg;
    while (atomic_load(c->done) < c->after)
        rf_sleep_ms(1);
    atomic_store(c->cancel, 1);
    return NULL;
}

static void test_cancel_mid_chunk(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    static const char *const passes[] = {NULL, "deflicker"};
    for (size_t i = 0; i < 2; i++) {
        t_msg_t t;
        t_assign(e, &t, 10, SRC_FRAMES, passes[i] ? 4 : 0, "libx264", passes[i]);
        rf_assignment_t *a = t_from_msg(&t);
        /* 20 ms per frame keeps the chunk from finishing before the cancel lands (6 s in all) */
        rf_err_t ferr = {0};
        assert_int_equal(rf_slot_fault_parse("slow:20", &env.fault, &ferr), 0);
        atomic_int cancel = 0;
        _Atomic uint64_t done = 0;
        t_canceller_t c = {.done = &done, .cancel = &cancel, .after = 5};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, t_cancel_main, &c), 0);
        rf_slot_result_t res;
        int rc = rf_slot_render(a, &env, &cancel, &done, &res);
        pthread_join(th, NULL);
        assert_int_equal(rc, RF_ECANCELED);
        assert_string_equal(res.error_class, "cancelled");
        assert_true(atomic_load(&done) >= 5 && atomic_load(&done) < SRC_FRAMES - 10);
        assert_string_equal(res.result_blob, "");
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
    env.fault.kind = RF_SLOT_FAULT_NONE;
}

/* A slice that holds fewer frames than the chunk (shared storage: no blob hash to catch it): the
 * decode stage ends early, the encode stage reports the shortfall. */
static void test_short_input_fails_as_decode(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    char path[700], err_path[800];
    snprintf(path, sizeof(path), "%s/short.nut", e->dir);
    rf_err_t err = {0};
    if (rf_media_slice(e->info, 0, 40, path, &err) != 0)
        fail_msg("slice: %s", err.msg);
    t_msg_t t;
    t_assign(e, &t, 0, 80, 0, "ffv1", NULL);
    t.m.input_blob = (char *)"";
    t.m.input_path = path;
    rf_assignment_t *a = t_from_msg(&t);
    atomic_int cancel = 0;
    rf_slot_result_t res;
    assert_true(rf_slot_render(a, &env, &cancel, NULL, &res) < 0);
    assert_string_equal(res.error_class, "decode");
    snprintf(err_path, sizeof(err_path), "expected 80");
    if (!strstr(res.message, err_path))
        fail_msg("message: %s", res.message);
    rf_slot_result_release(&res);
    rf_assignment_destroy(&a);
}

/* A slice damaged in the middle (shared storage again): the decoder does not conceal it; the
 * chunk fails as a decode error that names the frame and the decoder's reason. */
static void test_corrupt_input_names_the_frame(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    char path[700];
    snprintf(path, sizeof(path), "%s/corrupt.nut", e->dir);
    rf_err_t err = {0};
    if (rf_media_slice(e->info, 0, 80, path, &err) != 0)
        fail_msg("slice: %s", err.msg);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size > 20000);
    /* 4 KiB of bytes inverted in the middle of the packet data */
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    unsigned char buf[4096];
    assert_int_equal(fread(buf, 1, sizeof(buf), f), sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] ^= 0xA5;
    assert_int_equal(fseek(f, size / 2, SEEK_SET), 0);
    assert_int_equal(fwrite(buf, 1, sizeof(buf), f), sizeof(buf));
    fclose(f);
    t_msg_t t;
    t_assign(e, &t, 0, 80, 0, "ffv1", NULL);
    t.m.input_blob = (char *)"";
    t.m.input_path = path;
    rf_assignment_t *a = t_from_msg(&t);
    atomic_int cancel = 0;
    rf_slot_result_t res;
    assert_true(rf_slot_render(a, &env, &cancel, NULL, &res) < 0);
    assert_string_equal(res.error_class, "decode");
    long frame = -1;
    if (sscanf(res.message, "decoding frame %ld:", &frame) != 1 || frame < 0 || frame >= 80 ||
        strlen(strchr(res.message, ':')) < 4)
        fail_msg("the message should name the frame and the reason: %s", res.message);
    print_message("corrupt slice: %s\n", res.message);
    rf_slot_result_release(&res);
    rf_assignment_destroy(&a);
}

static void test_cancel_before_start(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    /* once with the input not yet cached (cancel stops the fetch), once cached (the decode) */
    for (int round = 0; round < 2; round++) {
        t_msg_t t;
        t_assign(e, &t, 150, 190, 0, "ffv1", NULL);
        rf_assignment_t *a = t_from_msg(&t);
        if (round == 1) {
            atomic_int go = 0;
            rf_slot_result_t warm;
            assert_int_equal(rf_slot_render(a, &env, &go, NULL, &warm), 0);
            rf_slot_result_release(&warm);
        }
        atomic_int cancel = 1;
        _Atomic uint64_t done = 0;
        rf_slot_result_t res;
        assert_int_equal(rf_slot_render(a, &env, &cancel, &done, &res), RF_ECANCELED);
        assert_int_equal(res.rc, RF_ECANCELED);
        assert_string_equal(res.error_class, "cancelled");
        assert_int_equal(atomic_load(&done), 0);
        assert_string_equal(res.result_blob, "");
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
}

static void test_unknown_encoder_fails_as_encode(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    t_msg_t t;
    t_assign(e, &t, 0, 10, 0, "nosuchcodec", NULL);
    rf_assignment_t *a = t_from_msg(&t);
    atomic_int cancel = 0;
    rf_slot_result_t res;
    int rc = rf_slot_render(a, &env, &cancel, NULL, &res);
    assert_true(rc < 0);
    assert_int_equal(res.rc, rc);
    assert_string_equal(res.error_class, "encode");
    if (!strstr(res.message, "nosuchcodec"))
        fail_msg("message does not name the encoder: %s", res.message);
    assert_string_equal(res.result_blob, "");
    rf_slot_result_release(&res);
    rf_assignment_destroy(&a);
}

static void test_assignment_from_msg_rejects(void **state)
{
    t_env_t *e = *state;
    t_msg_t good;
    t_assign(e, &good, 0, 10, 0, "ffv1", NULL);
    enum { RANGE_EMPTY, RANGE_BACKWARDS, RANGE_NEGATIVE, BAD_BLOB, SHORT_BLOB, NO_INPUT, BAD_TB,
           BAD_FPS, NO_CODEC, UNKNOWN_PASS };
    static const struct {
        int what, rc;
        const char *msg;
    } cases[] = {
        {RANGE_EMPTY, RF_EPROTO, "bad frame range 10-10"},
        {RANGE_BACKWARDS, RF_EPROTO, "bad frame range 10-5"},
        {RANGE_NEGATIVE, RF_EPROTO, "bad frame range -1-10"},
        {BAD_BLOB, RF_EPROTO, "bad input blob name"},
        {SHORT_BLOB, RF_EPROTO, "bad input blob name"},
        {NO_INPUT, RF_EPROTO, "bad input blob name"},
        {BAD_TB, RF_EPROTO, "bad time base or frame rate"},
        {BAD_FPS, RF_EPROTO, "bad time base or frame rate"},
        {NO_CODEC, RF_EPROTO, "without a job id or an encoder"},
        {UNKNOWN_PASS, RF_EINVAL, "this worker has no pass 'nosuchpass'"},
    };
    char upper[RF_SHA256_HEX_LEN + 1];
    for (size_t i = 0; i < RF_SHA256_HEX_LEN; i++)
        upper[i] = 'G';
    upper[RF_SHA256_HEX_LEN] = '\0';
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t_msg_t t = good;
        t.m.encode = &t.enc;
        switch (cases[i].what) {
        case RANGE_EMPTY: t.m.frame_start = 10; t.m.frame_end = 10; break;
        case RANGE_BACKWARDS: t.m.frame_start = 10; t.m.frame_end = 5; break;
        case RANGE_NEGATIVE: t.m.frame_start = -1; t.m.frame_end = 10; break;
        case BAD_BLOB: t.m.input_blob = upper; break;
        case SHORT_BLOB: t.m.input_blob = (char *)"abc123"; break;
        case NO_INPUT: t.m.input_blob = (char *)""; t.m.input_path = (char *)""; break;
        case BAD_TB: t.m.tb_den = 0; break;
        case BAD_FPS: t.m.fps_num = -25; break;
        case NO_CODEC: t.enc.codec = (char *)""; break;
        case UNKNOWN_PASS:
            t.pass.name = (char *)"nosuchpass";
            t.passes[0] = &t.pass;
            t.m.pipeline = t.passes;
            t.m.n_pipeline = 1;
            break;
        }
        rf_assignment_t *a = NULL;
        rf_err_t err = {0};
        int rc = rf_assignment_from_msg(&t.m, &a, &err);
        if (rc != cases[i].rc || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: rc %d '%s', want %d '%s'", i, rc, err.msg, cases[i].rc,
                     cases[i].msg);
        assert_null(a);
    }
    /* and the good one passes, copying what it was given */
    rf_assignment_t *a = t_from_msg(&good);
    assert_string_equal(a->input_blob, good.sha);
    assert_string_equal(a->codec, "ffv1");
    assert_int_equal(a->time_base.den, e->info->time_base.den);
    assert_int_equal(a->frame_end, 10);
    rf_assignment_destroy(&a);
}

/* Input downloads go through <cache>/partial/<sha>: a partial left there by an attempt that was cut
 * short is resumed (its bytes kept, the rest fetched, the whole checked against the blob's
 * SHA-256), and a partial that does not belong to the blob fails the fetch and is thrown away, so
 * the next attempt starts clean. */
static void test_input_resumes_a_kept_partial(void **state)
{
    t_env_t *e = *state;
    rf_slot_env_t env = t_slot_env(e);
    for (int bad = 0; bad < 2; bad++) {
        t_msg_t t;
        t_assign(e, &t, 60, 110, 0, "ffv1", NULL);
        rf_assignment_t *a = t_from_msg(&t);
        char blob[700], dir[700], part[900], offset[900];
        assert_int_equal(rf_blob_path(e->blob_dir, a->input_blob, blob, sizeof(blob)), 0);
        snprintf(dir, sizeof(dir), "%s/partial", e->cache_dir);
        snprintf(part, sizeof(part), "%s/%s.part", dir, a->input_blob);
        snprintf(offset, sizeof(offset), "%s/%s.part.offset", dir, a->input_blob);
        mkdir(e->cache_dir, 0700);
        mkdir(dir, 0700);
        /* the first half of the slice as an earlier attempt would have left it (or, when bad,
         * other bytes of that length) */
        uint64_t half = a->input_size / 2;
        assert_true(half > 0);
        FILE *in = fopen(blob, "rb"), *out = fopen(part, "wb");
        assert_non_null(in);
        assert_non_null(out);
        for (uint64_t i = 0; i < half; i++) {
            int c = fgetc(in);
            fputc(bad ? c ^ 0x5a : c, out);
        }
        fclose(in);
        fclose(out);
        FILE *o = fopen(offset, "w");
        assert_non_null(o);
        fprintf(o, "%llu\n", (unsigned long long)half);
        fclose(o);

        atomic_int cancel = 0;
        rf_slot_result_t res;
        int rc = rf_slot_render(a, &env, &cancel, NULL, &res);
        if (!bad && rc != 0)
            fail_msg("render with a kept partial: %s: %s", res.error_class, res.message);
        if (bad) {
            assert_int_equal(rc, RF_EVERIFY);
            assert_string_equal(res.error_class, "transfer");
            assert_true(res.retryable);
            /* the next attempt starts clean and succeeds */
            assert_int_equal(rf_slot_render(a, &env, &cancel, NULL, &res), 0);
        }
        assert_int_equal(res.frames, 50);
        assert_int_equal(access(part, F_OK), -1);
        assert_int_equal(access(offset, F_OK), -1);
        rf_slot_result_release(&res);
        rf_assignment_destroy(&a);
    }
}

#ifndef T_SLOT_NO_MAIN /* test_slot_cudaemu.c reuses the fixtures above with its own main */
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_ffv1_equals_source_frames),
        cmocka_unit_test(test_render_with_deflicker_and_context),
        cmocka_unit_test(test_gpu_slot_matches_cpu_slot),
        cmocka_unit_test(test_reported_digest_equals_ffmpeg_framehash),
        cmocka_unit_test(test_stage_failure_stops_the_pipeline),
        cmocka_unit_test(test_cancel_mid_chunk),
        cmocka_unit_test(test_short_input_fails_as_decode),
        cmocka_unit_test(test_corrupt_input_names_the_frame),
        cmocka_unit_test(test_input_resumes_a_kept_partial),
        cmocka_unit_test(test_cancel_before_start),
        cmocka_unit_test(test_unknown_encoder_fails_as_encode),
        cmocka_unit_test(test_assignment_from_msg_rejects),
    };
    return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
#endif
