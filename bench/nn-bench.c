/* nn-bench.c - ms per frame of the ONNX executor (worker/nn) on one model and input shape.
 *
 *   reelfarm-nn-bench MODEL.onnx N C H W [RUNS] [CONFIGS]
 *
 * Binds a [N, C, H, W] float input (deterministic values in [0, 1]) to the model's only input and
 * times each configuration: plan creation once, three warm-up runs (the second captures the CUDA
 * graph), then RUNS timed runs (default 20), host copies in and out included, as the onnx pass
 * pays them. CONFIGS is a comma list of gpu-fp16, gpu-fp32, own-fp16, own-fp32 (own = cuDNN off,
 * our kernels), each optionally followed by -nhwc or -nchw to force the device layout (default:
 * NHWC with padded channels for fp16 with cuDNN, else NCHW), and cpu (default:
 * gpu-fp16,gpu-fp16-nchw,gpu-fp32,own-fp16,own-fp32). Prints "key: value" lines
 * (config, plan_ms, ms_per_frame, steps, arena_mib); a configuration that fails prints its error
 * and the run goes on. Exit 0 when at least one configuration ran.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "nn.h"

static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int s_config(const rf_nn_model_t *m, rf_nn_tensor_t *in, const char *name, int runs)
{
    rf_nn_plan_options_t opt = {.device = RF_NN_GPU, .cache_dir = getenv("RF_NN_CACHE_DIR")};
    char base[32];
    snprintf(base, sizeof(base), "%s", name);
    size_t bl = strlen(base);
    unsetenv("RF_NN_LAYOUT");
    if (bl > 5 && (!strcmp(base + bl - 5, "-nhwc") || !strcmp(base + bl - 5, "-nchw"))) {
        setenv("RF_NN_LAYOUT", base + bl - 4, 1);
        base[bl - 5] = '\0';
    }
    if (!strcmp(base, "cpu"))
        opt.device = RF_NN_CPU;
    else if (!strcmp(base, "gpu-fp16") || !strcmp(base, "own-fp16"))
        opt.fp16 = true;
    else if (strcmp(base, "gpu-fp32") && strcmp(base, "own-fp32")) {
        printf("%s: error: unknown configuration\n", name);
        return -1;
    }
    setenv("RF_NN_CUDNN", !strncmp(base, "own", 3) ? "off" : "on", 1);
    rf_err_t err = {0};
    rf_nn_plan_t *p = NULL;
    double t0 = s_now_ms();
    if (rf_nn_plan_create(m, in, 1, &opt, &p, &err)) {
        printf("%s: error: %s\n", name, err.msg);
        return -1;
    }
    double plan_ms = s_now_ms() - t0;
    int nout = rf_nn_model_outputs(m);
    rf_nn_tensor_t out[8];
    memset(out, 0, sizeof(out));
    if (nout > 8) {
        printf("%s: error: more than 8 outputs\n", name);
        rf_nn_plan_free(p);
        return -1;
    }
    /* the copies in and out through the plan's pinned buffers, as the onnx pass makes them */
    rf_nn_tensor_t bound = *in;
    size_t hb_bytes;
    void *hb = rf_nn_plan_host_buffer(p, false, 0, &hb_bytes);
    if (hb && hb_bytes == in->bytes) {
        memcpy(hb, in->data, hb_bytes);
        bound.data = hb;
    }
    for (int i = 0; i < nout; i++)
        out[i].data = rf_nn_plan_host_buffer(p, true, i, &out[i].bytes);
    int rc = 0;
    double t1 = 0;
    for (int r = 0; r < runs + 3 && !rc; r++) {
        if (r == 3)
            t1 = s_now_ms();
        rc = rf_nn_plan_run(p, &bound, 1, out, nout, &err);
    }
    if (rc) {
        printf("%s: error: %s\n", name, err.msg);
    } else {
        double ms = (s_now_ms() - t1) / runs;
        int steps;
        size_t arena;
        rf_nn_plan_stats(p, &steps, &arena);
        printf("config: %s\nplan_ms: %.1f\nms_per_frame: %.3f\nsteps: %d\narena_mib: %.1f\n"
               "pinned: %s\n",
               name, plan_ms, ms, steps, (double)arena / (1 << 20), hb ? "yes" : "no");
    }
    for (int i = 0; i < nout; i++)
        if (out[i].data != rf_nn_plan_host_buffer(p, true, i, NULL))
            rf_nn_tensor_release(&out[i]);
    rf_nn_plan_free(p);
    return rc ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL.onnx N C H W [RUNS] [CONFIGS]\n", argv[0]);
        return 2;
    }
    rf_log_setup(RF_LOG_INFO, RF_LOG_TEXT, 2);
    int runs = argc > 6 ? atoi(argv[6]) : 20;
    const char *configs = argc > 7 ? argv[7] : "gpu-fp16,gpu-fp16-nchw,gpu-fp32,own-fp16,own-fp32";
    if (runs < 1)
        runs = 1;
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    if (rf_nn_model_load_file(argv[1], &m, &err)) {
        fprintf(stderr, "nn-bench: %s\n", err.msg);
        return 1;
    }
    if (rf_nn_model_inputs(m) != 1) {
        fprintf(stderr, "nn-bench: %s: the model has %d inputs, the benchmark binds one\n", argv[1],
                rf_nn_model_inputs(m));
        rf_nn_model_free(m);
        return 1;
    }
    rf_nn_tensor_t in = *rf_nn_model_input(m, 0);
    in.dtype = RF_NN_FLOAT;
    in.ndim = 4;
    for (int i = 0; i < 4; i++)
        in.dims[i] = atoll(argv[2 + i]);
    int64_t n = rf_nn_tensor_count(&in);
    in.bytes = (size_t)n * sizeof(float);
    in.data = malloc(in.bytes ? in.bytes : 1);
    if (!in.data) {
        rf_nn_model_free(m);
        return 1;
    }
    for (int64_t i = 0; i < n; i++)
        ((float *)in.data)[i] = (float)((i * 2654435761u) % 1000) / 999.0f;
    printf("model: %s\nshape: %sx%sx%sx%s\nruns: %d\n", argv[1], argv[2], argv[3], argv[4], argv[5],
           runs);
    int ok = 0;
    char list[256];
    snprintf(list, sizeof(list), "%s", configs);
    char *save = NULL;
    for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
        ok += s_config(m, &in, c, runs) == 0;
    rf_nn_tensor_release(&in);
    rf_nn_model_free(m);
    return ok ? 0 : 1;
}
