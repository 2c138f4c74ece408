/* nn_gpu_fixture.h - the GPU backend of the ONNX executor against its CPU reference, on every model
 * of tests/fixtures/nn: shared by test_nn_cudaemu.c (emulated device) and test_nn_gpu.c (a real
 * one).
 *
 * Per fixture, the input of test_data_set_0 goes through a CPU plan and through GPU plans in fp32
 * and fp16, three runs each (the second run captures a CUDA graph, the third replays it, where
 * the device has graphs); every run of a plan must give the same bits. fp32 must match the CPU
 * within max abs error 1e-4; fp16 must reach PSNR >= 45 dB, with the peak taken as the range of
 * the CPU output (max - min, 1 when the output is constant). A fixture the CPU refuses is skipped
 * (test_nn_conformance.c owns those); a fixture the GPU refuses fails.
 */
#ifndef RF_TEST_NN_GPU_FIXTURE_H
#define RF_TEST_NN_GPU_FIXTURE_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn.h"

#define T_NN_MAX_IO 8
#define T_NN_PSNR_MIN 45.0
#define T_NN_FP32_MAX_ABS 1e-4

static int t_nn_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Max abs error and PSNR of got against ref (float tensors of the same count). */
static void t_nn_compare(const rf_nn_tensor_t *ref, const rf_nn_tensor_t *got, double *max_abs,
                         double *psnr)
{
    int64_t n = rf_nn_tensor_count(ref);
    const float *r = ref->data, *g = got->data;
    double lo = INFINITY, hi = -INFINITY, se = 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = r[i] < lo ? r[i] : lo;
        hi = r[i] > hi ? r[i] : hi;
        double d = fabs((double)g[i] - (double)r[i]);
        if (!(d <= worst)) /* NaN counts as worst */
            worst = isnan(d) ? INFINITY : d;
        se += d * d;
    }
    double peak = n && hi > lo ? hi - lo : 1.0;
    *max_abs = worst;
    *psnr = !n || se == 0 ? INFINITY : 10.0 * log10(peak * peak / (se / (double)n));
    if (isnan(se))
        *psnr = -INFINITY;
}

/* Runs one plan three times on in; out gets the first run's outputs. Returns 0, or 1 with why. */
static int t_nn_run3(rf_nn_plan_t *plan, rf_nn_tensor_t *in, int nin, rf_nn_tensor_t *out, int nout,
                     char *why, size_t size)
{
    rf_err_t err = {0};
    for (int run = 0; run < 3; run++) {
        rf_nn_tensor_t o[T_NN_MAX_IO];
        memset(o, 0, sizeof(o));
        if (rf_nn_plan_run(plan, in, nin, run ? o : out, nout, &err)) {
            snprintf(why, size, "run %d: %s", run + 1, err.msg);
            return 1;
        }
        if (!run)
            continue;
        for (int k = 0; k < nout; k++) {
            bool same = o[k].bytes == out[k].bytes && !memcmp(o[k].data, out[k].data, o[k].bytes);
            rf_nn_tensor_release(&o[k]);
            if (!same) {
                snprintf(why, size, "run %d differs from run 1 (output %d)", run + 1, k);
                return 1;
            }
        }
    }
    return 0;
}

/* Returns how many fixtures failed; *ran counts those compared. *unavailable is set when the
 * GPU plan was refused with RF_EUNAVAIL for lack of a device (then nothing else is tried). */
static int t_nn_gpu_fixtures(const char *source_dir, int *ran, bool *unavailable)
{
    char root[1024];
    snprintf(root, sizeof(root), "%s/tests/fixtures/nn", source_dir);
    *ran = 0;
    *unavailable = false;
    DIR *d = opendir(root);
    if (!d) {
        printf("FAIL cannot open %s\n", root);
        return 1;
    }
    char *names[512];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 512)
        if (e->d_name[0] != '.')
            names[nn++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)nn, sizeof(char *), t_nn_cmp);
    int bad = 0;
    double worst_psnr = INFINITY, worst_abs = 0;
    for (int f = 0; f < nn && !*unavailable; f++) {
        char path[2048], why[1200] = "";
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s/model.onnx", root, names[f]);
        if (stat(path, &st))
            continue;
        rf_err_t err = {0};
        rf_nn_model_t *m = NULL;
        if (rf_nn_model_load_file(path, &m, &err))
            continue; /* the conformance test owns refusals */
        int nin = rf_nn_model_inputs(m), nout = rf_nn_model_outputs(m);
        rf_nn_tensor_t in[T_NN_MAX_IO], ref[T_NN_MAX_IO], got[2][T_NN_MAX_IO];
        memset(in, 0, sizeof(in));
        memset(ref, 0, sizeof(ref));
        memset(got, 0, sizeof(got));
        rf_nn_plan_t *cpu = NULL, *gpu[2] = {NULL, NULL};
        bool ok = nin <= T_NN_MAX_IO && nout <= T_NN_MAX_IO;
        for (int i = 0; ok && i < nin; i++) {
            snprintf(path, sizeof(path), "%s/%s/test_data_set_0/input_%d.pb", root, names[f], i);
            ok = !rf_nn_tensor_read(path, &in[i], &err);
            if (ok)
                snprintf(in[i].name, sizeof(in[i].name), "%s", rf_nn_model_input(m, i)->name);
        }
        rf_nn_plan_options_t copt = {.device = RF_NN_CPU};
        ok = ok && !rf_nn_plan_create(m, in, nin, &copt, &cpu, &err) &&
             !rf_nn_plan_run(cpu, in, nin, ref, nout, &err);
        if (!ok)
            goto next; /* not the GPU's business */
        (*ran)++;
        for (int h = 0; h < 2 && !why[0]; h++) {
            rf_nn_plan_options_t gopt = {.device = RF_NN_GPU, .fp16 = h == 1, .gpu_index = 0};
            int rc = rf_nn_plan_create(m, in, nin, &gopt, &gpu[h], &err);
            if (rc == RF_EUNAVAIL && strstr(err.msg, "device 0")) {
                printf("no device: %s\n", err.msg);
                *unavailable = true;
                goto next;
            }
            if (rc) {
                snprintf(why, sizeof(why), "%s plan: %s", h ? "fp16" : "fp32", err.msg);
                break;
            }
            if (t_nn_run3(gpu[h], in, nin, got[h], nout, why, sizeof(why)))
                break;
            for (int k = 0; k < nout && !why[0]; k++) {
                if (ref[k].dtype != RF_NN_FLOAT || got[h][k].dtype != RF_NN_FLOAT ||
                    rf_nn_tensor_count(&ref[k]) != rf_nn_tensor_count(&got[h][k])) {
                    snprintf(why, sizeof(why), "output %d: type or shape differs", k);
                    break;
                }
                double max_abs, psnr;
                t_nn_compare(&ref[k], &got[h][k], &max_abs, &psnr);
                if (h == 0) {
                    worst_abs = max_abs > worst_abs ? max_abs : worst_abs;
                    if (!(max_abs <= T_NN_FP32_MAX_ABS))
                        snprintf(why, sizeof(why), "fp32 output %d: max abs error %.3g > %.0e", k,
                                 max_abs, T_NN_FP32_MAX_ABS);
                } else {
                    worst_psnr = psnr < worst_psnr ? psnr : worst_psnr;
                    if (!(psnr >= T_NN_PSNR_MIN))
                        snprintf(why, sizeof(why), "fp16 output %d: PSNR %.2f dB < %.0f dB", k,
                                 psnr, T_NN_PSNR_MIN);
                }
            }
        }
        if (why[0]) {
            printf("FAIL %s: %s\n", names[f], why);
            bad++;
        }
    next:
        rf_nn_plan_free(cpu);
        for (int h = 0; h < 2; h++)
            rf_nn_plan_free(gpu[h]);
        for (int i = 0; i < T_NN_MAX_IO; i++) {
            rf_nn_tensor_release(&in[i]);
            rf_nn_tensor_release(&ref[i]);
            rf_nn_tensor_release(&got[0][i]);
            rf_nn_tensor_release(&got[1][i]);
        }
        rf_nn_model_free(m);
    }
    for (int f = 0; f < nn; f++)
        free(names[f]);
    printf("%d fixtures on the GPU backend: %d failures; worst fp32 max abs error %.3g, worst fp16 "
           "PSNR %.2f dB\n",
           *ran, bad, worst_abs, worst_psnr);
    return bad;
}

#endif
