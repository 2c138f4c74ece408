/* test_critic.c - the critic gate (worker/critic.h, docs/models.md): the scorer's arithmetic on
 * known frames, its refusals, and whole chunks through rf_slot_render with a gate - re-rendered
 * with the next seed while the score stays under the threshold, the best render kept, every
 * render's scores reported.
 *
 * Models (tests/fixtures/onnx-pass, made by tests/fixtures/nn/make-nn-fixtures.py):
 *   noise.onnx   y = z (Identity): as a critic, a frame's score is its mean value; as a generator
 *                (inputs 'z=noise') it draws frames from the seeded noise, so each seed renders
 *                a different chunk with a different score
 *   conv1x1_fixed_8x6.onnx   a fixed 8x6 input: the frame is resampled to it
 *   diff.onnx    two inputs: refused as a critic
 *   critic-luma.onnx   a 1x1 conv to one channel (make-critic-fixture.py): a score map whose mean
 *                is the frame's Rec.709 luma
 * Also the passes' files as blobs (proto FileRef): fetched into the worker's file cache once,
 * reused without the coordinator's copy, fetched again when the cached copy is torn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include <libavutil/mem.h>

#include "critic.h"

/* test_slot.c's fixtures (a blob server, the source, Assign messages); its tests run there. */
#define T_SLOT_NO_MAIN
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "worker/test_slot.c"
#pragma GCC diagnostic pop

static const char *t_model(const char *name)
{
    static char path[4096];
    const char *dir = getenv("RF_FIXTURES");
    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/onnx-pass/%s", dir, name);
    return path;
}

/* A w x h frame of constant RGB. */
static void t_frame(rf_pframe_t *f, int w, int h, float r, float g, float b)
{
    memset(f, 0, sizeof(*f));
    f->width = w;
    f->height = h;
    const float v[3] = {r, g, b};
    for (int c = 0; c < 3; c++) {
        f->plane[c] = av_malloc((size_t)w * (size_t)h * sizeof(float));
        assert_non_null(f->plane[c]);
        for (int i = 0; i < w * h; i++)
            f->plane[c][i] = v[c];
    }
}

static void test_scores(void **state)
{
    (void)state;
    rf_err_t err = {0};
    rf_critic_t *c = NULL;
    rf_pframe_t f;
    float score = 0;

    /* identity, whole frame: the mean of the three planes */
    rf_critic_opts_t o = {.model = t_model("noise.onnx"), .device = "cpu", .input_max = 1};
    if (rf_critic_new(&o, &c, &err) != 0)
        fail_msg("%s", err.msg);
    t_frame(&f, 10, 6, 0.2f, 0.4f, 0.9f);
    assert_int_equal(rf_critic_score(c, &f, &score, &err), 0);
    assert_float_equal(score, 0.5f, 1e-6);
    assert_string_equal(rf_critic_device(c), "cpu");
    rf_pframe_release(&f);
    /* another size: a new plan */
    t_frame(&f, 4, 4, 0.1f, 0.1f, 0.1f);
    assert_int_equal(rf_critic_score(c, &f, &score, &err), 0);
    assert_float_equal(score, 0.1f, 1e-6);
    rf_pframe_release(&f);
    rf_critic_destroy(&c);
    assert_null(c);

    /* the luma critic (a 1-channel score map): the mean Rec.709 luma */
    rf_critic_opts_t lo = {.model = t_model("critic-luma.onnx"), .device = "cpu", .input_max = 1};
    rf_critic_t *luma = NULL;
    if (rf_critic_new(&lo, &luma, &err) != 0)
        fail_msg("%s", err.msg);
    t_frame(&f, 7, 5, 0.2f, 0.4f, 0.9f);
    assert_int_equal(rf_critic_score(luma, &f, &score, &err), 0);
    assert_float_equal(score, 0.2126f * 0.2f + 0.7152f * 0.4f + 0.0722f * 0.9f, 1e-6);
    rf_pframe_release(&f);
    rf_critic_destroy(&luma);

    /* input range [-1, 1]: v = 0.3 is fed as -0.4 */
    o.input_min = -1;
    assert_int_equal(rf_critic_new(&o, &c, &err), 0);
    t_frame(&f, 5, 3, 0.3f, 0.3f, 0.3f);
    assert_int_equal(rf_critic_score(c, &f, &score, &err), 0);
    assert_float_equal(score, -0.4f, 1e-6);
    rf_pframe_release(&f);
    rf_critic_destroy(&c);

    /* a fixed 8x6 model on a 20x9 frame whose left half is 0.2 and right half 0.6 (per pixel
     * column): resampled by averaging, the conv1x1 gives per channel 0.75v + 0.1, v - 0.05 and
     * 0.6v, so the score is (2.35 m + 0.05) / 3 with m the frame's mean, 0.4 */
    o = (rf_critic_opts_t){
        .model = t_model("conv1x1_fixed_8x6.onnx"), .device = "auto", .input_max = 1};
    assert_int_equal(rf_critic_new(&o, &c, &err), 0);
    t_frame(&f, 20, 9, 0, 0, 0);
    for (int c2 = 0; c2 < 3; c2++)
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 20; x++)
                f.plane[c2][y * 20 + x] = x < 10 ? 0.2f : 0.6f;
    assert_int_equal(rf_critic_score(c, &f, &score, &err), 0);
    assert_float_equal(score, (2.35f * 0.4f + 0.05f) / 3.0f, 1e-5);
    rf_pframe_release(&f);
    rf_critic_destroy(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    rf_err_t err = {0};
    rf_critic_t *c = NULL;
    rf_critic_opts_t o = {.model = t_model("diff.onnx"), .device = "cpu", .input_max = 1};
    assert_int_equal(rf_critic_new(&o, &c, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "2 inputs"));
    assert_null(c);
    o.model = t_model("noise.onnx");
    o.device = "tpu";
    assert_int_equal(rf_critic_new(&o, &c, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "critic.device"));
    o.device = "cpu";
    o.input_max = 0;
    assert_int_equal(rf_critic_new(&o, &c, &err), RF_ECONFIG);
    o.input_max = 1;
    o.model = t_model("no-such-model.onnx");
    assert_true(rf_critic_new(&o, &c, &err) < 0);
    assert_non_null(strstr(err.msg, "critic model"));

    rf_critic_tally_t t;
    rf_critic_tally_init(&t);
    rf_critic_tally_add(&t, 0.5f);
    rf_critic_tally_add(&t, 0.25f);
    rf_critic_tally_add(&t, 0.75f);
    assert_float_equal(t.min, 0.25f, 0);
    assert_float_equal(rf_critic_tally_mean(&t), 0.5f, 1e-7);
}

/* ---- whole chunks ------------------------------------------------------------------------------
 */

#define T_START 100
#define T_END 106
#define T_SEED 7

typedef struct t_gate {
    t_msg_t t;
    Reelfarm__Param params[3];
    Reelfarm__Param *param_ptrs[3];
    Reelfarm__CriticSpec critic;
} t_gate_t;

/* A chunk whose frames the onnx pass draws from the seeded noise, gated by the identity critic
 * (threshold, max_rerenders) or not gated (max_rerenders < 0); passes seeded with `seed`. */
static void t_gate_assign(t_env_t *e, t_gate_t *g, double threshold, int max_rerenders,
                          uint64_t seed)
{
    static char model[4096];
    snprintf(model, sizeof(model), "%s", t_model("noise.onnx"));
    t_assign(e, &g->t, T_START, T_END, 0, "ffv1", "onnx");
    static const char *const kv[3][2] = {{"model", NULL}, {"device", "cpu"}, {"inputs", "z=noise"}};
    for (int i = 0; i < 3; i++) {
        reelfarm__param__init(&g->params[i]);
        g->params[i].key = (char *)kv[i][0];
        g->params[i].value = i == 0 ? model : (char *)kv[i][1];
        g->param_ptrs[i] = &g->params[i];
    }
    g->t.pass.role = (char *)"generate";
    g->t.pass.params = g->param_ptrs;
    g->t.pass.n_params = 3;
    g->t.m.seed = seed;
    if (max_rerenders >= 0) {
        reelfarm__critic_spec__init(&g->critic);
        g->critic.model = model;
        g->critic.threshold = (float)threshold;
        g->critic.max_rerenders = (uint32_t)max_rerenders;
        g->critic.input_min = 0;
        g->critic.input_max = 1;
        g->critic.device = (char *)"cpu";
        g->t.m.critic = &g->critic;
    }
}

static void t_render(t_env_t *e, double threshold, int max_rerenders, uint64_t seed,
                     rf_slot_result_t *res)
{
    t_gate_t g;
    t_gate_assign(e, &g, threshold, max_rerenders, seed);
    rf_assignment_t *a = t_from_msg(&g.t);
    rf_slot_env_t env = t_slot_env(e);
    atomic_int cancel = 0;
    _Atomic uint64_t done = 0;
    if (rf_slot_render(a, &env, &cancel, &done, res) != 0)
        fail_msg("%s: %s", res->error_class, res->message);
    assert_int_equal(res->frames, T_END - T_START);
    rf_assignment_destroy(&a);
}

static void test_gate_rerenders_until_the_threshold(void **state)
{
    t_env_t *e = *state;
    rf_slot_result_t res;

    /* An unreachable threshold: 1 + 3 renders, seeds 7..10, the best kept. */
    t_render(e, 2.0, 3, T_SEED, &res);
    assert_int_equal(res.ncritic, 4);
    float s[4];
    uint32_t best = 0;
    for (uint32_t k = 0; k < 4; k++) {
        assert_int_equal(res.critic[k].seed, T_SEED + k);
        assert_int_equal(res.critic[k].frames, T_END - T_START);
        assert_true(res.critic[k].score <= res.critic[k].mean);
        assert_true(res.critic[k].score > 0.0f && res.critic[k].score < 1.0f);
        s[k] = res.critic[k].score;
        if (s[k] > s[best])
            best = k;
    }
    assert_int_equal(res.critic_kept, best);
    assert_true(s[0] != s[1] || s[1] != s[2] || s[2] != s[3]); /* the seed changed the frames */
    /* The kept result is the render with that seed: the same frames as an ungated render. */
    uint8_t kept_digest[RF_SHA256_LEN];
    memcpy(kept_digest, res.digest, RF_SHA256_LEN);
    rf_slot_result_release(&res);
    t_render(e, 0, -1, T_SEED + best, &res);
    assert_int_equal(res.ncritic, 0);
    assert_memory_equal(res.digest, kept_digest, RF_SHA256_LEN);
    rf_slot_result_release(&res);

    /* A threshold the first render meets: one render. */
    t_render(e, s[0] - 0.01, 3, T_SEED, &res);
    assert_int_equal(res.ncritic, 1);
    assert_int_equal(res.critic_kept, 0);
    assert_float_equal(res.critic[0].score, s[0], 0);
    rf_slot_result_release(&res);

    /* A threshold between the first score and the first higher one: exactly the renders up to
     * that one, which is kept. (When the first render scores best, max_rerenders 0 shows the
     * limit instead: one render, under the threshold, kept.) */
    uint32_t k = 1;
    while (k < 4 && s[k] <= s[0])
        k++;
    if (k < 4) {
        t_render(e, (s[0] + s[k]) / 2, 3, T_SEED, &res);
        assert_int_equal(res.ncritic, k + 1);
        assert_int_equal(res.critic_kept, k);
    } else {
        t_render(e, 2.0, 0, T_SEED, &res);
        assert_int_equal(res.ncritic, 1);
        assert_int_equal(res.critic_kept, 0);
    }
    rf_slot_result_release(&res);
}

static void test_gate_assignment_checks(void **state)
{
    t_env_t *e = *state;
    t_gate_t g;
    rf_assignment_t *a = NULL;
    rf_err_t err = {0};
    t_gate_assign(e, &g, 0.5, RF_SLOT_MAX_RERENDERS + 1, T_SEED);
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), RF_EPROTO);
    assert_non_null(strstr(err.msg, "critic"));
    assert_null(a);
    g.critic.max_rerenders = 1;
    g.critic.device = (char *)"tpu";
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), RF_EPROTO);
    g.critic.device = (char *)"";
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), 0);
    assert_string_equal(a->critic.device, "auto");
    assert_int_equal(a->critic.max_rerenders, 1);
    assert_float_equal(a->critic.threshold, 0.5f, 0);
    rf_assignment_destroy(&a);
    /* A critic model the worker cannot use fails the chunk, not retryable. */
    g.critic.model = (char *)t_model("diff.onnx");
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), 0);
    rf_slot_env_t env = t_slot_env(e);
    atomic_int cancel = 0;
    rf_slot_result_t res;
    assert_int_equal(rf_slot_render(a, &env, &cancel, NULL, &res), RF_ECONFIG);
    assert_string_equal(res.error_class, "pass");
    assert_false(res.retryable);
    assert_non_null(strstr(res.message, "critic"));
    rf_assignment_destroy(&a);
}

/* ---- models as blobs (proto FileRef) ------------------------------------------------------------
 */

static void test_files_fetched_once_and_reused(void **state)
{
    t_env_t *e = *state;
    rf_err_t err = {0};
    char sha[RF_SHA256_HEX_LEN + 1];
    uint64_t size = 0;
    /* the model in the coordinator's store, as its planning would put it */
    if (rf_blob_put_local(e->blob_dir, t_model("noise.onnx"), sha, &size, &err) != 0)
        fail_msg("%s", err.msg);
    char cached[1024], blob[1024];
    snprintf(cached, sizeof(cached), "%s/files/%s.onnx", e->cache_dir, sha);
    assert_int_equal(rf_blob_path(e->blob_dir, sha, blob, sizeof(blob)), 0);
    unlink(cached);

    for (int round = 0; round < 3; round++) {
        t_gate_t g;
        t_gate_assign(e, &g, -1, 0, T_SEED);
        /* the pass's model and the critic's come as the blob; the paths in the message are the
         * coordinator's and must not be read */
        g.params[0].value = (char *)"/nonexistent/on/this/worker/noise.onnx";
        g.critic.model = (char *)"/nonexistent/on/this/worker/critic.onnx";
        g.critic.model_sha256 = sha;
        g.critic.model_size = size;
        Reelfarm__FileRef ref = REELFARM__FILE_REF__INIT, *refs[] = {&ref};
        ref.pass = 0;
        ref.key = (char *)"model";
        ref.sha256 = sha;
        ref.size = size;
        ref.name = (char *)"noise.onnx";
        g.t.m.files = refs;
        g.t.m.n_files = 1;
        rf_assignment_t *a = t_from_msg(&g.t);
        assert_int_equal(a->nfiles, 2);
        assert_int_equal(rf_assignment_files_at(a, e->cache_dir, &err), 0);
        assert_string_equal(rf_pass_spec_param(&a->pipeline[0], "model"), cached);
        assert_string_equal(a->critic.model, cached);
        rf_slot_env_t env = t_slot_env(e);
        atomic_int cancel = 0;
        rf_slot_result_t res;
        if (rf_slot_render(a, &env, &cancel, NULL, &res) != 0)
            fail_msg("round %d: %s: %s", round, res.error_class, res.message);
        assert_int_equal(res.ncritic, 1);
        rf_slot_result_release(&res);
        struct stat st;
        assert_int_equal(stat(cached, &st), 0);
        assert_int_equal((uint64_t)st.st_size, size);
        char listed[4][RF_SHA256_HEX_LEN + 1];
        assert_int_equal(rf_slot_cached_files(e->cache_dir, listed, 4), 1);
        assert_string_equal(listed[0], sha);
        if (round == 0) {
            /* the coordinator's copy goes: the next render uses the cache alone */
            char moved[1100];
            snprintf(moved, sizeof(moved), "%s.away", blob);
            assert_int_equal(rename(blob, moved), 0);
        } else if (round == 1) {
            /* a cached copy of the wrong size is fetched again */
            char moved[1100];
            snprintf(moved, sizeof(moved), "%s.away", blob);
            assert_int_equal(rename(moved, blob), 0);
            FILE *f = fopen(cached, "ab");
            assert_non_null(f);
            fputs("torn", f);
            fclose(f);
        }
        rf_assignment_destroy(&a);
    }
    /* missing everywhere: the chunk fails as a transfer, naming the file */
    unlink(cached);
    unlink(blob);
    t_gate_t g;
    t_gate_assign(e, &g, -1, -1, T_SEED);
    Reelfarm__FileRef ref = REELFARM__FILE_REF__INIT, *refs[] = {&ref};
    ref.key = (char *)"model";
    ref.sha256 = sha;
    ref.size = size;
    ref.name = (char *)"noise.onnx";
    g.t.m.files = refs;
    g.t.m.n_files = 1;
    rf_assignment_t *a = t_from_msg(&g.t);
    assert_int_equal(rf_assignment_files_at(a, e->cache_dir, &err), 0);
    rf_slot_env_t env = t_slot_env(e);
    atomic_int cancel = 0;
    rf_slot_result_t res;
    assert_true(rf_slot_render(a, &env, &cancel, NULL, &res) < 0);
    assert_string_equal(res.error_class, "transfer");
    assert_non_null(strstr(res.message, sha));
    rf_assignment_destroy(&a);
    /* a reference to a pass that is not there, or a parameter it lacks, is refused */
    ref.pass = 1;
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), RF_EPROTO);
    ref.pass = 0;
    ref.key = (char *)"weights";
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), RF_EPROTO);
    ref.key = (char *)"model";
    ref.sha256 = (char *)"not-a-hash";
    assert_int_equal(rf_assignment_from_msg(&g.t.m, &a, &err), RF_EPROTO);
    assert_null(a);
}

/* What a worker advertises: its cached files, newest use first, each hash once, nothing else. */
static void test_cached_files_listed(void **state)
{
    (void)state;
    char dir[600], files[700], path[900];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(files, sizeof(files), "%s/files", dir);
    char none[2][RF_SHA256_HEX_LEN + 1];
    assert_int_equal(rf_slot_cached_files(dir, none, 2), 0); /* no folder yet */
    assert_int_equal(mkdir(files, 0700), 0);
    static const struct {
        const char *name;
        int age_s; /* mtime this many seconds ago */
    } made[] = {
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.onnx", 30},
        {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.png", 10},
        {"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc", 20},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.jpg", 40},
        {"not-a-hash.onnx", 0},
        {"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd-x.onnx", 0},
        {"DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD", 0},
    };
    time_t now = time(NULL);
    for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", files, made[i].name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
        struct timespec ts[2] = {{.tv_sec = now - made[i].age_s}, {.tv_sec = now - made[i].age_s}};
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    }
    char got[8][RF_SHA256_HEX_LEN + 1];
    size_t n = rf_slot_cached_files(dir, got, 8);
    assert_int_equal(n, 3);
    assert_int_equal(got[0][0], 'b');
    assert_int_equal(got[1][0], 'c');
    assert_int_equal(got[2][0], 'a');
    assert_int_equal(rf_slot_cached_files(dir, got, 2), 2); /* at most max */
    assert_int_equal(got[1][0], 'c');
    rf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_gate_rerenders_until_the_threshold),
        cmocka_unit_test(test_gate_assignment_checks),
        cmocka_unit_test(test_files_fetched_once_and_reused),
        cmocka_unit_test(test_cached_files_listed),
    };
    return cmocka_run_group_tests(tests, t_group_setup, t_group_teardown);
}
