/* critic.c - the critic gate's scorer. See critic.h. */
#include "critic.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"

#define S_MAX_OUTPUTS 16 /* model outputs (only the first is read; the others are computed) */

struct rf_critic {
    rf_nn_model_t *model;
    rf_nn_plan_t *plan;
    char device[8]; /* "auto" | "cpu" | "gpu" as asked */
    char ran_on[8]; /* "cpu" | "gpu" once planned */
    int gpu_index;
    double in_min, in_scale; /* model input = in_min + v * in_scale */
    int channels;            /* C of the input: 3 or 1 */
    int fixed_w, fixed_h;    /* the model's own input size, or -1 when symbolic */
    int frame_w, frame_h;    /* the frame size the plan was made for */
    int w, h;                /* the input tensor's size */
    int *x0, *x1, *y0, *y1;  /* per model pixel: the frame pixels [x0, x1) x [y0, y1) it covers */
    rf_nn_tensor_t in;
    rf_nn_tensor_t out[S_MAX_OUTPUTS];
    int noutputs;
};

void rf_critic_tally_init(rf_critic_tally_t *t)
{
    t->frames = 0;
    t->sum = 0;
    t->min = INFINITY;
}

void rf_critic_tally_add(rf_critic_tally_t *t, float score)
{
    t->frames++;
    t->sum += score;
    if (score < t->min)
        t->min = score;
}

float rf_critic_tally_mean(const rf_critic_tally_t *t)
{
    return t->frames ? (float)(t->sum / (double)t->frames) : 0.0f;
}

static void s_release_plan(rf_critic_t *c)
{
    rf_nn_plan_free(c->plan);
    c->plan = NULL;
    for (int i = 0; i < c->noutputs; i++)
        rf_nn_tensor_release(&c->out[i]);
    free(c->in.data);
    c->in.data = NULL;
    free(c->x0);
    free(c->x1);
    free(c->y0);
    free(c->y1);
    c->x0 = c->x1 = c->y0 = c->y1 = NULL;
    c->frame_w = c->frame_h = 0;
}

void rf_critic_destroy(rf_critic_t **cp)
{
    if (!cp || !*cp)
        return;
    rf_critic_t *c = *cp;
    s_release_plan(c);
    rf_nn_model_free(c->model);
    free(c);
    *cp = NULL;
}

int rf_critic_new(const rf_critic_opts_t *opts, rf_critic_t **out, rf_err_t *err)
{
    assert(opts && out);
    *out = NULL;
    const char *device = opts->device && *opts->device ? opts->device : "auto";
    if (!opts->model || !*opts->model)
        return rf_err_set(err, RF_ECONFIG, "critic: no model given");
    if (strcmp(device, "auto") && strcmp(device, "cpu") && strcmp(device, "gpu"))
        return rf_err_set(err, RF_ECONFIG, "critic.device: expected auto, cpu or gpu, got '%s'",
                          device);
    if (!(opts->input_max != opts->input_min) || !isfinite(opts->input_min) ||
        !isfinite(opts->input_max))
        return rf_err_set(err, RF_ECONFIG,
                          "critic: input_min and input_max (%g, %g) make an empty range",
                          opts->input_min, opts->input_max);
    rf_critic_t *c = calloc(1, sizeof(*c));
    if (!c)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    snprintf(c->device, sizeof(c->device), "%s", device);
    c->gpu_index = opts->gpu_index;
    c->in_min = opts->input_min;
    c->in_scale = opts->input_max - opts->input_min;
    rf_err_t local = {0};
    int rc = rf_nn_model_load_file(opts->model, &c->model, &local);
    if (rc < 0) {
        rc = rf_err_set(err, rc, "critic model: %s", local.msg);
        goto fail;
    }
    if (rf_nn_model_inputs(c->model) != 1) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "critic model '%s': %d inputs, the critic takes one (the frame)",
                        opts->model, rf_nn_model_inputs(c->model));
        goto fail;
    }
    c->noutputs = rf_nn_model_outputs(c->model);
    if (c->noutputs < 1 || c->noutputs > S_MAX_OUTPUTS) {
        rc = rf_err_set(err, RF_ECONFIG, "critic model '%s': %d outputs, expected 1..%d",
                        opts->model, c->noutputs, S_MAX_OUTPUTS);
        goto fail;
    }
    const rf_nn_tensor_t *d = rf_nn_model_input(c->model, 0);
    if (d->dtype != RF_NN_FLOAT || d->ndim != 4 || (d->dims[0] != 1 && d->dims[0] != -1) ||
        (d->dims[1] != 3 && d->dims[1] != 1)) {
        rc = rf_err_set(err, RF_ECONFIG,
                        "critic model '%s': input '%s' must be float [1, 3 or 1, H, W]",
                        opts->model, d->name);
        goto fail;
    }
    c->channels = (int)d->dims[1];
    c->fixed_h = d->dims[2] > 0 ? (int)d->dims[2] : -1;
    c->fixed_w = d->dims[3] > 0 ? (int)d->dims[3] : -1;
    if (c->fixed_w > RF_PASS_MAX_DIM || c->fixed_h > RF_PASS_MAX_DIM) {
        rc = rf_err_set(err, RF_ECONFIG, "critic model '%s': input %dx%d, at most %d per side",
                        opts->model, c->fixed_w, c->fixed_h, RF_PASS_MAX_DIM);
        goto fail;
    }
    *out = c;
    return 0;
fail:
    rf_critic_destroy(&c);
    return rc;
}

const char *rf_critic_device(const rf_critic_t *c)
{
    return c->ran_on;
}

/* The frame pixels [lo[i], hi[i]) that model pixel i covers along an axis of n frame pixels. */
static int s_spans(int n, int m, int **lo, int **hi)
{
    *lo = malloc((size_t)m * sizeof(int));
    *hi = malloc((size_t)m * sizeof(int));
    if (!*lo || !*hi)
        return RF_ENOMEM;
    for (int i = 0; i < m; i++) {
        int a = (int)((int64_t)i * n / m);
        int b = (int)((int64_t)(i + 1) * n / m);
        if (b <= a)
            b = a + 1;
        (*lo)[i] = a;
        (*hi)[i] = b > n ? n : b;
    }
    return 0;
}

static int s_make_plan(rf_critic_t *c, int fw, int fh, rf_err_t *err)
{
    s_release_plan(c);
    c->w = c->fixed_w > 0 ? c->fixed_w : fw;
    c->h = c->fixed_h > 0 ? c->fixed_h : fh;
    if (s_spans(fw, c->w, &c->x0, &c->x1) || s_spans(fh, c->h, &c->y0, &c->y1))
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    rf_nn_tensor_t *t = &c->in;
    snprintf(t->name, sizeof(t->name), "%s", rf_nn_model_input(c->model, 0)->name);
    t->dtype = RF_NN_FLOAT;
    t->ndim = 4;
    t->dims[0] = 1;
    t->dims[1] = c->channels;
    t->dims[2] = c->h;
    t->dims[3] = c->w;
    t->bytes = (size_t)c->channels * (size_t)c->w * (size_t)c->h * sizeof(float);
    if (!(t->data = malloc(t->bytes)))
        return rf_err_set(err, RF_ENOMEM, "out of memory for the critic's %dx%d input", c->w, c->h);
    rf_nn_tensor_t shape = *t;
    shape.data = NULL;
    shape.bytes = 0;
    rf_nn_plan_options_t opt = {.device = RF_NN_GPU, .gpu_index = c->gpu_index};
    rf_err_t local = {0};
    int rc = RF_EUNAVAIL;
    if (strcmp(c->device, "cpu") != 0) {
        rc = rf_nn_plan_create(c->model, &shape, 1, &opt, &c->plan, &local);
        if (rc < 0 && (rc != RF_EUNAVAIL || !strcmp(c->device, "gpu")))
            return rf_err_set(err, rc, "critic model, device %s: %s", c->device, local.msg);
        snprintf(c->ran_on, sizeof(c->ran_on), "gpu");
    }
    if (rc < 0) { /* cpu, or auto without a usable GPU */
        opt.device = RF_NN_CPU;
        rc = rf_nn_plan_create(c->model, &shape, 1, &opt, &c->plan, &local);
        if (rc < 0)
            return rf_err_set(err, rc, "critic model: %s", local.msg);
        snprintf(c->ran_on, sizeof(c->ran_on), "cpu");
    }
    const rf_nn_tensor_t *o = rf_nn_plan_output(c->plan, 0);
    if (o->dtype != RF_NN_FLOAT || rf_nn_tensor_count(o) < 1)
        return rf_err_set(err, RF_ECONFIG,
                          "critic model: output '%s' must be a non-empty float tensor", o->name);
    c->frame_w = fw;
    c->frame_h = fh;
    return 0;
}

int rf_critic_score(rf_critic_t *c, const rf_pframe_t *frame, float *score, rf_err_t *err)
{
    int rc;
    if (frame->width != c->frame_w || frame->height != c->frame_h) {
        if ((rc = s_make_plan(c, frame->width, frame->height, err)) != 0) {
            s_release_plan(c);
            return rc;
        }
    }
    const size_t area = (size_t)c->w * (size_t)c->h;
    const size_t fw = (size_t)frame->width;
    float *dst = c->in.data;
    for (int y = 0; y < c->h; y++) {
        for (int x = 0; x < c->w; x++) {
            double rgb[3] = {0, 0, 0};
            int n = 0;
            for (int fy = c->y0[y]; fy < c->y1[y]; fy++)
                for (int fx = c->x0[x]; fx < c->x1[x]; fx++, n++)
                    for (int k = 0; k < 3; k++)
                        rgb[k] += frame->plane[k][(size_t)fy * fw + (size_t)fx];
            const size_t at = (size_t)y * (size_t)c->w + (size_t)x;
            if (c->channels == 1) {
                double luma = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / n;
                dst[at] = (float)(c->in_min + luma * c->in_scale);
            } else {
                for (int k = 0; k < 3; k++)
                    dst[(size_t)k * area + at] = (float)(c->in_min + rgb[k] / n * c->in_scale);
            }
        }
    }
    rf_err_t local = {0};
    rc = rf_nn_plan_run(c->plan, &c->in, 1, c->out, c->noutputs, &local);
    if (rc < 0)
        return rf_err_set(err, rc, "critic model: %s", local.msg);
    const float *o = c->out[0].data;
    const int64_t n = rf_nn_tensor_count(&c->out[0]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++)
        sum += o[i];
    *score = (float)(sum / (double)n);
    if (!isfinite(*score))
        return rf_err_set(err, RF_EINVAL, "critic model: the score is not a finite number");
    return 0;
}
