/* pass-bench.c - CPU time per frame of the built-in passes (docs/PERFORMANCE.md, docs/passes.md).
 *
 *   reelfarm-pass-bench [WIDTH HEIGHT [FRAMES [PASS]]]     default 1920 1080 20, every pass
 *
 * PASS (a pass name, e.g. color-match) runs only that pass's cases: what an instruction count
 * under callgrind wants (docs/PERFORMANCE.md, "color-match on the CPU").
 * Each case builds a one-pass chain for WIDTH x HEIGHT, runs FRAMES frames of a deterministic
 * colourful pattern through it (one warm-up frame first) and prints the mean wall time per frame
 * on one thread. Not a test: numbers depend on the machine and its load.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/mem.h>

#include "passes.h"

typedef struct bench_case {
    const char *label, *pass;
    rf_param_t params[4];
    size_t nparams;
} bench_case_t;

#define P(k, v) {.key = (char *)(k), .value = (char *)(v)}

static const bench_case_t cases[] = {
    {"deflicker (window 8)", "deflicker", {P("strength", "0.6"), P("window", "8")}, 2},
    {"grade (all four)", "grade",
     {P("exposure", "0.5"), P("contrast", "1.2"), P("saturation", "1.1"), P("gamma", "1.1")}, 4},
    {"sharpen (radius 1)", "sharpen", {P("amount", "0.5"), P("radius", "1"), P("threshold", "0")},
     3},
    {"color-match", "color-match", {P("reference", "0.6,0.01,0.02,0.2,0.05,0.05")}, 1},
    {"scale lanczos 1/2", "scale", {P("width", "HALF"), P("height", "0")}, 2},
    {"scale lanczos 2x", "scale", {P("width", "DOUBLE"), P("height", "0")}, 2},
    {"scale bicubic 1/2", "scale", {P("width", "HALF"), P("height", "0"), P("filter", "bicubic")},
     3},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int frame_fill(rf_pframe_t *f, int w, int h, int64_t index)
{
    rf_pframe_release(f);
    f->index = index;
    f->width = w;
    f->height = h;
    for (int p = 0; p < 3; p++) {
        f->plane[p] = av_malloc_array((size_t)w * h + RF_PFRAME_PAD_FLOATS, sizeof(float));
        if (!f->plane[p])
            return -1;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                f->plane[p][(size_t)y * w + x] =
                    (float)(0.5 + 0.4 * sin(0.01 * x * (p + 1) + 0.02 * y + 0.1 * index));
    }
    return 0;
}

int main(int argc, char **argv)
{
    int w = argc > 2 ? atoi(argv[1]) : 1920, h = argc > 2 ? atoi(argv[2]) : 1080;
    int frames = argc > 3 ? atoi(argv[3]) : 20;
    const char *only = argc > 4 ? argv[4] : NULL;
    if (w <= 0 || h <= 0 || frames <= 0 || argc > 5) {
        fprintf(stderr, "usage: reelfarm-pass-bench [WIDTH HEIGHT [FRAMES [PASS]]]\n");
        return 2;
    }
    bool known = !only;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        known = known || !strcmp(cases[k].pass, only);
    if (!known) {
        fprintf(stderr, "reelfarm-pass-bench: no case runs pass '%s'\n", only);
        return 2;
    }
    char half[16], twice[16];
    snprintf(half, sizeof half, "%d", w / 2);
    snprintf(twice, sizeof twice, "%d", w * 2);
    printf("%dx%d, %d frames, one thread\n", w, h, frames);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        if (only && strcmp(cases[k].pass, only) != 0)
            continue;
        rf_param_t params[4];
        memcpy(params, cases[k].params, sizeof params);
        for (size_t i = 0; i < cases[k].nparams; i++) {
            if (!strcmp(params[i].value, "HALF"))
                params[i].value = half;
            else if (!strcmp(params[i].value, "DOUBLE"))
                params[i].value = twice;
        }
        rf_pass_spec_t spec = {.name = (char *)cases[k].pass,
                               .role = (char *)"refine",
                               .params = params,
                               .nparams = cases[k].nparams};
        rf_pass_chain_t *chain = NULL;
        rf_err_t err = {0};
        if (rf_pass_chain_new(&spec, 1, 1, w, h, (AVRational){25, 1}, &chain, &err)) {
            fprintf(stderr, "%s: %s\n", cases[k].label, err.msg);
            return 1;
        }
        rf_pframe_t f = {0};
        double total = 0;
        for (int i = 0; i <= frames; i++) {
            if (frame_fill(&f, w, h, i)) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            const double t0 = now_s();
            if (rf_pass_chain_run(chain, &f, &err)) {
                fprintf(stderr, "%s: %s\n", cases[k].label, err.msg);
                return 1;
            }
            if (i > 0) /* frame 0 warms caches and allocators up */
                total += now_s() - t0;
        }
        printf("%-22s %8.1f ms/frame\n", cases[k].label, 1000.0 * total / frames);
        rf_pframe_release(&f);
        rf_pass_chain_destroy(&chain);
    }
    return 0;
}
