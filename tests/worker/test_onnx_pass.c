/* test_onnx_pass.c - the onnx pass (worker/passes/onnx.c) on the CPU executor, with models from
 * tests/fixtures/onnx-pass/ (made by tests/fixtures/nn/make-nn-fixtures.py) whose outputs are
 * computed here by hand from the weights that script writes: a 1x1 convolution (a 3x3 colour
 * matrix plus bias), a x2 upscaler (1x1 conv to 12 channels + DepthToSpace CRD), a 3x3 blur,
 * a two-input frame difference, a mask multiply, and the seeded noise source. Also: tiling gives
 * the untiled frame, the chain reports the new size, and bad parameters or models are refused with
 * a message naming what is wrong.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <libavutil/mem.h>

#include "passes.h"

/* The weights make-nn-fixtures.py writes (PASS_W, PASS_B, PASS_GAIN, PASS_BLUR). */
static const double t_w[3][3] = {{0.5, 0.25, 0.0}, {0.0, 1.0, 0.0}, {0.2, 0.2, 0.2}};
static const double t_b[3] = {0.1, -0.05, 0.0};
static const double t_gain[2][2] = {{1.0, 0.5}, {0.25, 0.75}};
static const double t_blur[3] = {0.25, 0.5, 0.25}; /* [1 2 1]/4 per axis = [1 2 1; 2 4 2; 1 2 1]/16 */

static char t_model_dir[4096];

static const char *t_model(const char *name)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", t_model_dir, name);
    return path;
}

static void t_frame_alloc(rf_pframe_t *f, int w, int h, int64_t index)
{
    memset(f, 0, sizeof *f);
    f->index = index;
    f->width = w;
    f->height = h;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = av_malloc_array((size_t)w * h + RF_PFRAME_PAD_FLOATS, sizeof(float));
        assert_non_null(f->plane[p]);
    }
}

static double t_pattern(int p, int x, int y, int64_t t)
{
    return 0.5 + 0.3 * sin(0.7 * x + 1.3 * p + 0.2 * (double)t) * cos(0.45 * y - 0.4 * p) +
           0.15 * sin(0.31 * (x + 2 * y));
}

static void t_fill(rf_pframe_t *f)
{
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < f->height; y++)
            for (int x = 0; x < f->width; x++)
                f->plane[p][(size_t)y * f->width + x] = (float)t_pattern(p, x, y, f->index);
}

static double t_clamp(double v)
{
    return v < 0 ? 0 : (v > 1 ? 1 : v);
}

/* Two w x h frames with the same pattern: f goes through a pass, ref keeps the input. */
static void t_frame_pair(rf_pframe_t *f, rf_pframe_t *ref, int w, int h, int64_t index)
{
    t_frame_alloc(f, w, h, index);
    t_frame_alloc(ref, w, h, index);
    t_fill(f);
    t_fill(ref);
}

static void t_frame_pair_release(rf_pframe_t *f, rf_pframe_t *ref)
{
    rf_pframe_release(f);
    rf_pframe_release(ref);
}

/* The largest difference between out and conv1x1.onnx (t_w, t_b) applied by hand to ref, for a
 * model whose range is [lo, hi]: the input v is fed as lo + (hi - lo) v and the output o is mapped
 * back as (o - lo) / (hi - lo), then clamped to [0, 1]. */
static double t_conv1x1_maxerr(const rf_pframe_t *out, const rf_pframe_t *ref, double lo, double hi)
{
    double maxerr = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < ref->width * ref->height; i++) {
            double o = t_b[c];
            for (int k = 0; k < 3; k++)
                o += t_w[c][k] * (lo + (hi - lo) * ref->plane[k][i]);
            maxerr = fmax(maxerr, fabs(t_clamp((o - lo) / (hi - lo)) - out->plane[c][i]));
        }
    return maxerr;
}

static double t_frames_diff(const rf_pframe_t *a, const rf_pframe_t *b)
{
    double d = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < a->width * a->height; i++)
            d = fmax(d, fabs((double)a->plane[c][i] - b->plane[c][i]));
    return d;
}

/* Reads "key", "value" pairs up to a NULL key into params (16 at most); returns how many. */
static size_t t_params(rf_param_t params[16], va_list ap)
{
    size_t n = 0;
    for (;;) {
        char *k = va_arg(ap, char *);
        if (!k)
            break;
        assert_true(n < 16);
        params[n].key = k;
        params[n].value = va_arg(ap, char *);
        n++;
    }
    return n;
}

static int t_vcreate(int w, int h, uint64_t seed, void **state, rf_err_t *err, va_list ap)
{
    rf_param_t params[16];
    size_t n = t_params(params, ap);
    rf_pass_spec_t spec = {.name = "onnx", .role = "refine", .params = params, .nparams = n};
    rf_pass_setup_t setup = {
        .spec = &spec, .seed = seed, .width = w, .height = h, .frame_rate = {25, 1}};
    const rf_pass_vtable_t *vt = rf_pass_builtin("onnx");
    assert_non_null(vt);
    assert_int_equal(vt->abi, 2);
    *state = NULL;
    return vt->create(&setup, state, err);
}

/* Creates the onnx pass for w x h frames with "key", "value" pairs (NULL-terminated). */
static int t_create(int w, int h, uint64_t seed, void **state, rf_err_t *err, ...)
{
    va_list ap;
    va_start(ap, err);
    int rc = t_vcreate(w, h, seed, state, err, ap);
    va_end(ap);
    return rc;
}

/* t_create that must succeed: returns the pass state, fails the test with the error if not. */
static void *t_open(int w, int h, uint64_t seed, ...)
{
    rf_err_t err = {0};
    void *st = NULL;
    va_list ap;
    va_start(ap, seed);
    int rc = t_vcreate(w, h, seed, &st, &err, ap);
    va_end(ap);
    if (rc)
        fail_msg("create: %s", err.msg);
    return st;
}

/* t_create (seed 1) that must be refused with a message containing want. */
static void t_create_refused(int w, int h, const char *want, ...)
{
    rf_err_t err = {0};
    void *st = NULL;
    va_list ap;
    va_start(ap, want);
    int rc = t_vcreate(w, h, 1, &st, &err, ap);
    va_end(ap);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(err.msg, want));
}

static void t_run(void *state, rf_pframe_t *f)
{
    rf_err_t err = {0};
    int rc = rf_pass_builtin("onnx")->run(state, f, &err);
    if (rc != 0)
        fail_msg("run: %s", err.msg);
}

static void t_destroy(void *state)
{
    rf_pass_builtin("onnx")->destroy(state);
}

/* ref: a w x h pattern frame; f: the same frame run through the pass st. */
static void t_run_pair(void *st, rf_pframe_t *f, rf_pframe_t *ref, int w, int h, int64_t index)
{
    t_frame_pair(f, ref, w, h, index);
    t_run(st, f);
}

/* ---- values computed by hand ---------------------------------------------------------------- */

static void test_conv1x1_by_hand(void **unused)
{
    (void)unused;
    const int w = 13, h = 7;
    void *st = t_open(w, h, 1, "model", t_model("conv1x1.onnx"), "device", "cpu", NULL);
    int ow = 0, oh = 0;
    rf_pass_builtin("onnx")->output_size(st, &ow, &oh);
    assert_int_equal(ow, w);
    assert_int_equal(oh, h);
    assert_int_equal(rf_pass_builtin("onnx")->plan(st), 0);

    rf_pframe_t f, ref;
    t_run_pair(st, &f, &ref, w, h, 3);
    assert_true(t_conv1x1_maxerr(&f, &ref, 0, 1) <= 1e-5);
    t_frame_pair_release(&f, &ref);
    t_destroy(st);
}

/* A [-1, 1] model: input 2v - 1, output o mapped back as (o + 1) / 2. */
static void test_value_ranges(void **unused)
{
    (void)unused;
    const int w = 9, h = 5;
    void *st = t_open(w, h, 1, "model", t_model("conv1x1.onnx"), "device", "cpu", "input_min",
                      "-1", "input_max", "1", "output_min", "-1", "output_max", "1", NULL);
    rf_pframe_t f, ref;
    t_run_pair(st, &f, &ref, w, h, 0);
    assert_true(t_conv1x1_maxerr(&f, &ref, -1, 1) <= 1e-5);
    t_frame_pair_release(&f, &ref);
    t_destroy(st);
}

/* x2 through a real chain: the chain reports 26x14 and every output pixel is GAIN[i][j] * in. */
static void test_upscale2_changes_size(void **unused)
{
    (void)unused;
    const int w = 13, h = 7;
    rf_param_t params[] = {{"model", (char *)t_model("upscale2.onnx")}, {"device", "cpu"}};
    rf_pass_spec_t spec = {.name = "onnx", .role = "generate", .params = params, .nparams = 2};
    rf_pass_chain_t *chain = NULL;
    rf_err_t err = {0};
    if (rf_pass_chain_new(&spec, 1, 7, w, h, (AVRational){25, 1}, &chain, &err))
        fail_msg("chain: %s", err.msg);
    int ow = 0, oh = 0;
    rf_pass_chain_output_size(chain, &ow, &oh);
    assert_int_equal(ow, 2 * w);
    assert_int_equal(oh, 2 * h);

    rf_pframe_t f, ref;
    t_frame_pair(&f, &ref, w, h, 0);
    if (rf_pass_chain_run(chain, &f, &err))
        fail_msg("run: %s", err.msg);
    assert_int_equal(f.width, 2 * w);
    assert_int_equal(f.height, 2 * h);
    double maxerr = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 2 * h; y++)
            for (int x = 0; x < 2 * w; x++) {
                double v = t_gain[y % 2][x % 2] * ref.plane[c][(y / 2) * w + x / 2];
                maxerr = fmax(maxerr, fabs(t_clamp(v) - f.plane[c][y * 2 * w + x]));
            }
    assert_true(maxerr <= 1e-6);
    t_frame_pair_release(&f, &ref);
    rf_pass_chain_destroy(&chain);
}

/* ---- tiling -------------------------------------------------------------------------------- */

static double t_run_max_diff(const char *model, int w, int h, const char *tile, const char *overlap)
{
    void *whole = t_open(w, h, 1, "model", t_model(model), "device", "cpu", NULL);
    rf_err_t err = {0};
    void *tiled = NULL;
    if (t_create(w, h, 1, &tiled, &err, "model", t_model(model), "device", "cpu", "tile", tile,
                 "overlap", overlap, NULL))
        fail_msg("create tiled: %s", err.msg);
    rf_pframe_t a, b;
    t_frame_pair(&a, &b, w, h, 0);
    t_run(whole, &a);
    t_run(tiled, &b);
    assert_int_equal(a.width, b.width);
    assert_int_equal(a.height, b.height);
    double maxdiff = t_frames_diff(&a, &b);
    t_frame_pair_release(&a, &b);
    t_destroy(whole);
    t_destroy(tiled);
    return maxdiff;
}

static void test_tiling_matches_untiled(void **unused)
{
    (void)unused;
    /* blur3 sees 1 pixel around: overlap 8 (8/4 = 2 >= 1) must give the untiled frame. */
    double d = t_run_max_diff("blur3.onnx", 37, 23, "12", "8");
    assert_true(d <= 1e-5);
    /* The same blur with overlap 0 shows the zero padding at tile seams: tiling really ran. */
    d = t_run_max_diff("blur3.onnx", 37, 23, "12", "0");
    assert_true(d > 0.05);
    /* x2 with tiles: origins and weights scale with the output. */
    d = t_run_max_diff("upscale2.onnx", 29, 17, "8", "4");
    assert_true(d <= 1e-5);
}

/* The blur itself, by hand, on the untiled frame (zero padding at the frame's edges). */
static void test_blur_by_hand(void **unused)
{
    (void)unused;
    const int w = 11, h = 6;
    void *st = t_open(w, h, 1, "model", t_model("blur3.onnx"), "device", "cpu", "tile", "7",
                      "overlap", "4", NULL);
    rf_pframe_t f, ref;
    t_run_pair(st, &f, &ref, w, h, 0);
    double maxerr = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int yy = y + dy, xx = x + dx;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w)
                            v += t_blur[dy + 1] * t_blur[dx + 1] * ref.plane[c][yy * w + xx];
                    }
                maxerr = fmax(maxerr, fabs(t_clamp(v) - f.plane[c][y * w + x]));
            }
    assert_true(maxerr <= 1e-5);
    t_frame_pair_release(&f, &ref);
    t_destroy(st);
}

/* A model with a fixed 8x6 input runs on 20x13 frames in tiles of exactly that size. */
static void test_fixed_input_size_tiles(void **unused)
{
    (void)unused;
    const int w = 20, h = 13;
    void *st = t_open(w, h, 1, "model", t_model("conv1x1_fixed_8x6.onnx"), "device", "cpu",
                      "overlap", "2", NULL);
    rf_pframe_t f, ref;
    t_run_pair(st, &f, &ref, w, h, 0);
    assert_true(t_conv1x1_maxerr(&f, &ref, 0, 1) <= 1e-5);
    t_frame_pair_release(&f, &ref);
    t_destroy(st);
    /* Frames smaller than the model's fixed input are refused. */
    t_create_refused(6, 4, "larger than the 6x4 frames", "model",
                     t_model("conv1x1_fixed_8x6.onnx"), "device", "cpu", NULL);
}

/* ---- bindings: temporal, asset, noise ------------------------------------------------------ */

static void test_temporal_previous_frame(void **unused)
{
    (void)unused;
    const int w = 6, h = 4;
    void *st = t_open(w, h, 1, "model", t_model("diff.onnx"), "device", "cpu", "inputs",
                      "cur=frame, prev=frame-1", "output_min", "-1", "output_max", "1", NULL);
    assert_int_equal(rf_pass_builtin("onnx")->plan(st), 1); /* one context frame wanted */
    const double level[4] = {0.2, 0.5, 0.45, 0.9};
    for (int t = 0; t < 4; t++) {
        rf_pframe_t f;
        t_frame_alloc(&f, w, h, t);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < w * h; i++)
                f.plane[c][i] = (float)(level[t] + 0.01 * c);
        t_run(st, &f);
        /* frame 0 has no predecessor: it is its own (difference 0, mapped to 0.5) */
        double d = t == 0 ? 0 : level[t] - level[t - 1];
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < w * h; i++)
                assert_true(fabs(f.plane[c][i] - (d + 1) / 2) <= 1e-6);
        rf_pframe_release(&f);
    }
    t_destroy(st);
}

/* Writes a P6 PPM: left half grey 51 (0.2), right half grey 204 (0.8). */
static void t_write_mask(const char *path, int w, int h)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fprintf(fp, "P6\n%d %d\n255\n", w, h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char v = x < w / 2 ? 51 : 204;
            unsigned char px[3] = {v, v, v};
            fwrite(px, 1, 3, fp);
        }
    fclose(fp);
}

static void test_asset_mask(void **unused)
{
    (void)unused;
    const int w = 16, h = 8;
    char path[] = "/tmp/rf-onnx-mask-XXXXXX.ppm";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    close(fd);
    t_write_mask(path, w, h);
    void *st = t_open(w, h, 1, "model", t_model("mask.onnx"), "device", "cpu", "inputs",
                      "x=frame, m=asset", "asset", path, NULL);
    rf_pframe_t f, ref;
    t_run_pair(st, &f, &ref, w, h, 0);
    double maxerr = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double m = x < w / 2 ? 51.0 / 255 : 204.0 / 255;
                maxerr = fmax(maxerr, fabs(ref.plane[c][y * w + x] * m - f.plane[c][y * w + x]));
            }
    assert_true(maxerr <= 2e-3); /* 8-bit asset, converted through swscale */
    t_frame_pair_release(&f, &ref);
    t_destroy(st);

    /* An asset binding without an asset, and an asset that is not an image, are refused. */
    t_create_refused(w, h, "parameter 'asset'", "model", t_model("mask.onnx"), "device", "cpu",
                     "inputs", "x=frame, m=asset", NULL);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("not an image", fp);
    fclose(fp);
    t_create_refused(w, h, "parameter 'asset'", "model", t_model("mask.onnx"), "device", "cpu",
                     "inputs", "x=frame, m=asset", "asset", path, NULL);
    unlink(path);
}

static void t_noise_frame(uint64_t seed, int64_t index, const char *tile, rf_pframe_t *f)
{
    const int w = 64, h = 48;
    void *st = t_open(w, h, seed, "model", t_model("noise.onnx"), "device", "cpu", "inputs",
                      "z=noise", "output_min", "-4", "output_max", "4", "tile", tile, "overlap",
                      "8", NULL);
    t_frame_alloc(f, w, h, index);
    t_fill(f);
    t_run(st, f);
    t_destroy(st);
}

/* Noise is N(0, 1) from (seed, frame index, channel, pixel): repeatable, tile-independent. */
static void test_noise_seeded(void **unused)
{
    (void)unused;
    rf_pframe_t a, b, c, d, e;
    t_noise_frame(42, 5, "0", &a);
    t_noise_frame(42, 5, "0", &b);
    t_noise_frame(42, 6, "0", &c);
    t_noise_frame(43, 5, "0", &d);
    t_noise_frame(42, 5, "24", &e);
    assert_true(t_frames_diff(&a, &b) == 0.0);
    assert_true(t_frames_diff(&a, &e) <= 1e-6);
    assert_true(t_frames_diff(&a, &c) > 0.1);
    assert_true(t_frames_diff(&a, &d) > 0.1);
    /* v = (z + 4) / 8: mean 0.5, standard deviation 1/8 */
    double sum = 0, sq = 0;
    const int n = 3 * a.width * a.height;
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < a.width * a.height; i++) {
            sum += a.plane[p][i];
            sq += (double)a.plane[p][i] * a.plane[p][i];
        }
    double mean = sum / n, sd = sqrt(sq / n - mean * mean);
    assert_true(fabs(mean - 0.5) < 0.01);
    assert_true(fabs(sd - 0.125) < 0.01);
    rf_pframe_release(&a);
    rf_pframe_release(&b);
    rf_pframe_release(&c);
    rf_pframe_release(&d);
    rf_pframe_release(&e);
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void t_refused(const char *want, ...)
{
    rf_param_t params[16];
    va_list ap;
    va_start(ap, want);
    size_t n = t_params(params, ap);
    va_end(ap);
    rf_pass_spec_t spec = {.name = "onnx", .role = "refine", .params = params, .nparams = n};
    rf_pass_setup_t setup = {.spec = &spec, .seed = 1, .width = 16, .height = 8};
    rf_err_t err = {0};
    void *st = NULL;
    int rc = rf_pass_builtin("onnx")->create(&setup, &st, &err);
    assert_true(rc < 0);
    assert_null(st);
    if (!strstr(err.msg, want))
        fail_msg("expected '%s' in: %s", want, err.msg);
}

static void test_refusals(void **unused)
{
    (void)unused;
    t_refused("parameter 'model'", "model", "/nonexistent/model.onnx", NULL);
    t_refused("parameter 'model': missing", "device", "cpu", NULL);
    t_refused("bind each with parameter 'inputs'", "model", t_model("diff.onnx"), NULL);
    t_refused("the model has no input 'nope'", "model", t_model("diff.onnx"), "inputs",
              "cur=frame, nope=frame-1", NULL);
    t_refused("model input 'prev' is not bound", "model", t_model("diff.onnx"), "inputs",
              "cur=frame", NULL);
    t_refused("frame-K needs K in 1..8", "model", t_model("diff.onnx"), "inputs",
              "cur=frame, prev=frame-9", NULL);
    t_refused("unknown source 'next'", "model", t_model("diff.onnx"), "inputs",
              "cur=frame, prev=next", NULL);
    t_refused("is not NAME=SOURCE", "model", t_model("diff.onnx"), "inputs", "cur", NULL);
    t_refused("bound twice", "model", t_model("diff.onnx"), "inputs", "cur=frame, cur=frame-1",
              NULL);
    t_refused("one whole s >= 1", "model", t_model("halve.onnx"), NULL);
    t_refused("the range is empty", "model", t_model("conv1x1.onnx"), "input_min", "1", NULL);
    t_refused("parameter 'overlap'", "model", t_model("conv1x1.onnx"), "tile", "8", "overlap", "8",
              NULL);
    t_refused("parameter 'device'", "model", t_model("conv1x1.onnx"), "device", "tpu", NULL);
    /* device gpu: runs where the executor has a GPU backend and a device, else a clear refusal. */
    rf_err_t err = {0};
    void *st = NULL;
    if (t_create(16, 8, 1, &st, &err, "model", t_model("conv1x1.onnx"), "device", "gpu", NULL) == 0)
        t_destroy(st);
    else
        assert_non_null(strstr(err.msg, "device gpu"));
}

/* ---- the shipped model --------------------------------------------------------------------- */

/* models/sr2x-compact.onnx doubles the size and keeps a flat grey frame grey. */
static void test_shipped_sr2x(void **unused)
{
    (void)unused;
    const char *src = getenv("RF_SOURCE_DIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/models/sr2x-compact.onnx", src ? src : ".");
    if (access(path, R_OK) != 0)
        fail_msg("shipped model missing: %s", path);
    const int w = 24, h = 16;
    void *st = t_open(w, h, 1, "model", path, "device", "cpu", NULL);
    rf_pframe_t f;
    t_frame_alloc(&f, w, h, 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++)
            f.plane[c][i] = 0.5f;
    t_run(st, &f);
    assert_int_equal(f.width, 2 * w);
    assert_int_equal(f.height, 2 * h);
    double maxdev = 0;
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4 * w * h; i++)
            maxdev = fmax(maxdev, fabs(f.plane[c][i] - 0.5));
    assert_true(maxdev < 0.03);
    rf_pframe_release(&f);
    t_destroy(st);
}

int main(void)
{
    const char *fx = getenv("RF_FIXTURES");
    snprintf(t_model_dir, sizeof t_model_dir, "%s/onnx-pass", fx ? fx : "tests/fixtures");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv1x1_by_hand),
        cmocka_unit_test(test_value_ranges),
        cmocka_unit_test(test_upscale2_changes_size),
        cmocka_unit_test(test_tiling_matches_untiled),
        cmocka_unit_test(test_blur_by_hand),
        cmocka_unit_test(test_fixed_input_size_tiles),
        cmocka_unit_test(test_temporal_previous_frame),
        cmocka_unit_test(test_asset_mask),
        cmocka_unit_test(test_noise_seeded),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_shipped_sr2x),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
