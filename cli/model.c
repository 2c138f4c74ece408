/* model.c - `reelfarm model run MODEL.onnx --input FILE.pb... --output DIR [--device cpu|gpu]`:
 * runs an ONNX model through the worker's executor (worker/nn) on TensorProto files, for users
 * debugging a model and for ONNX's own node tests. Inputs bind to the model's graph inputs in
 * order; outputs go to DIR/output_N.pb with one summary line per output on stdout.
 *
 * Every input's values are given to the plan (rf_nn_plan_create), so models whose shapes depend on
 * an input's values (Pad's pads, Resize's scales or sizes as graph inputs) run as they are.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "nn.h"

#define S_MAX_IO 64

/* Exit code for an executor error: a refused model or input is the user's to fix (2). */
static int s_exit_for(int rc)
{
    if (rc == RF_EINVAL || rc == RF_ETOOBIG || rc == RF_ENOENT)
        return RF_EXIT_USAGE;
    if (rc == RF_EUNAVAIL)
        return RF_EXIT_UNREACHABLE;
    return RF_EXIT_FAILED;
}

static void s_summary(const char *file, const rf_nn_tensor_t *t)
{
    char dims[256];
    size_t len = 0;
    dims[0] = '\0';
    for (int i = 0; i < t->ndim && len < sizeof(dims); i++) {
        int n = snprintf(dims + len, sizeof(dims) - len, "%s%" PRId64, i ? "," : "", t->dims[i]);
        len += n > 0 ? (size_t)n : 0;
    }
    static const char *names[] = {
        [RF_NN_FLOAT] = "float",     [RF_NN_UINT8] = "uint8",  [RF_NN_INT8] = "int8",
        [RF_NN_INT32] = "int32",     [RF_NN_INT64] = "int64",  [RF_NN_BOOL] = "bool",
        [RF_NN_FLOAT16] = "float16", [RF_NN_DOUBLE] = "double"};
    const char *type =
        (unsigned)t->dtype <= RF_NN_DOUBLE && names[t->dtype] ? names[t->dtype] : "?";
    int64_t n = rf_nn_tensor_count(t);
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v;
        switch (t->dtype) {
        case RF_NN_FLOAT:
            v = ((const float *)t->data)[i];
            break;
        case RF_NN_DOUBLE:
            v = ((const double *)t->data)[i];
            break;
        case RF_NN_INT64:
            v = (double)((const int64_t *)t->data)[i];
            break;
        case RF_NN_INT32:
            v = ((const int32_t *)t->data)[i];
            break;
        case RF_NN_INT8:
            v = ((const int8_t *)t->data)[i];
            break;
        case RF_NN_UINT8:
        case RF_NN_BOOL:
            v = ((const uint8_t *)t->data)[i];
            break;
        default:
            v = NAN;
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    if (n && t->dtype != RF_NN_FLOAT16)
        printf("%s  %s  %s  [%s]  min %.6g max %.6g mean %.6g\n", file, t->name, type, dims, lo, hi,
               sum / (double)n);
    else
        printf("%s  %s  %s  [%s]\n", file, t->name, type, dims);
}

int rf_cli_model(const rf_cli_args_t *a)
{
    const rf_cli_command_t *cmd = a->cmd;
    if (strcmp(a->operands[0], "run"))
        return rf_cli_usage_error(cmd, "unknown model command '%s' (expected 'run')",
                                  a->operands[0]);
    const char *model_path = a->operands[1];
    const char *out_dir = rf_cli_arg(a, "output");
    const char *device = rf_cli_arg(a, "device");
    if (!out_dir)
        return rf_cli_usage_error(cmd, "missing --output DIR");
    rf_nn_plan_options_t opt = {.device = RF_NN_CPU};
    if (device && !strcmp(device, "gpu"))
        opt.device = RF_NN_GPU;
    else if (device && strcmp(device, "cpu"))
        return rf_cli_usage_error(cmd, "flag '--device': expected cpu or gpu, got '%s'", device);
    opt.fp16 = rf_cli_has(a, "fp16");
    if (opt.fp16 && opt.device != RF_NN_GPU)
        return rf_cli_usage_error(cmd, "flag '--fp16' needs --device gpu (the CPU runs fp32)");
    const char *input_paths[S_MAX_IO];
    int nin = 0;
    for (int i = 0; i < a->nvalues; i++)
        if (!strcmp(a->values[i].flag, "input")) {
            if (nin == S_MAX_IO)
                return rf_cli_usage_error(cmd, "more than %d inputs", S_MAX_IO);
            input_paths[nin++] = a->values[i].value;
        }
    rf_err_t err = {0};
    rf_nn_model_t *m = NULL;
    rf_nn_plan_t *plan = NULL;
    rf_nn_tensor_t in[S_MAX_IO], out[S_MAX_IO];
    memset(in, 0, sizeof(in));
    memset(out, 0, sizeof(out));
    int code = RF_EXIT_OK, rc, nout = 0;
    if ((rc = rf_nn_model_load_file(model_path, &m, &err))) {
        fprintf(stderr, "reelfarm: %s\n", err.msg);
        return s_exit_for(rc);
    }
    int want = rf_nn_model_inputs(m);
    nout = rf_nn_model_outputs(m);
    if (nin != want || nout > S_MAX_IO) {
        fprintf(stderr, "reelfarm: %s: the model has %d input%s (", model_path, want,
                want == 1 ? "" : "s");
        for (int i = 0; i < want; i++)
            fprintf(stderr, "%s'%s'", i ? ", " : "", rf_nn_model_input(m, i)->name);
        fprintf(stderr, "), %d --input given\n", nin);
        code = RF_EXIT_USAGE;
        goto out;
    }
    for (int i = 0; i < nin; i++) {
        if ((rc = rf_nn_tensor_read(input_paths[i], &in[i], &err))) {
            fprintf(stderr, "reelfarm: %s\n", err.msg);
            code = s_exit_for(rc);
            goto out;
        }
        /* Bound by position: the file's own tensor name need not match the graph's. */
        snprintf(in[i].name, sizeof(in[i].name), "%s", rf_nn_model_input(m, i)->name);
    }
    if ((rc = rf_nn_plan_create(m, in, nin, &opt, &plan, &err)) ||
        (rc = rf_nn_plan_run(plan, in, nin, out, nout, &err))) {
        fprintf(stderr, "reelfarm: %s: %s\n", model_path, err.msg);
        code = s_exit_for(rc);
        goto out;
    }
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "reelfarm: %s: cannot create the output folder: %s\n", out_dir,
                strerror(errno));
        code = RF_EXIT_FAILED;
        goto out;
    }
    for (int i = 0; i < nout; i++) {
        char path[4096], file[64];
        snprintf(file, sizeof(file), "output_%d.pb", i);
        snprintf(path, sizeof(path), "%s/%s", out_dir, file);
        if ((rc = rf_nn_tensor_write(path, &out[i], &err))) {
            fprintf(stderr, "reelfarm: %s\n", err.msg);
            code = RF_EXIT_FAILED;
            goto out;
        }
        s_summary(file, &out[i]);
    }
out:
    for (int i = 0; i < S_MAX_IO; i++) {
        rf_nn_tensor_release(&in[i]);
        rf_nn_tensor_release(&out[i]);
    }
    rf_nn_plan_free(plan);
    rf_nn_model_free(m);
    return code;
}
