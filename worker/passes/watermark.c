/* watermark.c - the "watermark" pass: the invisible mark of media.h, added to every frame.
 *
 * The coordinator appends this pass, last, to every job (config/marks.c) with two internal
 * parameters: `key`, the farm's pattern key (derived from the farm key, which stays on the
 * coordinator), and `payload`, the job's 64-bit payload (key id and job tag, computed by the
 * coordinator with the tag key workers never see). The pass adds RF_WM_AMPLITUDE times the keyed
 * +-1 chip pattern to R, G and B alike - a pure luma change that leaves Cb and Cr as they were -
 * so the mark is a function of the frame size and the job only: every chunk, every worker and
 * every re-run gives the same marked frames.
 *
 * The worker's slot runs this pass on RGB only when the encoder's pixel format has no planar luma;
 * otherwise it marks the luma of the frames it encodes with the same pattern (media.h,
 * rf_media_wm_embed_frame) so chroma is untouched and a job with no other pass never converts
 * to RGB.
 *
 * The CUDA version of the embed (worker/gpu/watermark.cu) is the same multiply-add on device
 * planes; tests/worker/test_watermark_gpu.c checks it against this one sample for sample.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "media.h"

typedef struct s_watermark {
    rf_media_wm_pattern_t *pattern;
} s_watermark_t;

static int s_unhex(const char *text, uint8_t *out, size_t len)
{
    if (!text || strlen(text) != 2 * len)
        return -1;
    for (size_t i = 0; i < 2 * len; i++) {
        char c = text[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] | v : v << 4);
    }
    return 0;
}

int rf_pass_watermark_pattern(const rf_pass_spec_t *spec, rf_media_wm_pattern_t **out, rf_err_t *err)
{
    uint8_t key[RF_WM_KEY_LEN], pay[8];
    uint64_t payload = 0;
    int rc;

    *out = NULL;
    if (s_unhex(rf_pass_spec_param(spec, "key"), key, sizeof(key)))
        return rf_err_set(err, RF_ECONFIG, "parameter 'key': expected 64 lowercase hex digits (set "
                                           "by the coordinator)");
    if (s_unhex(rf_pass_spec_param(spec, "payload"), pay, sizeof(pay)))
        return rf_err_set(err, RF_ECONFIG, "parameter 'payload': expected 16 lowercase hex digits "
                                           "(set by the coordinator)");
    for (int i = 0; i < 8; i++)
        payload = payload << 8 | pay[i];
    rc = rf_media_wm_pattern_new(key, payload, out, err);
    memset(key, 0, sizeof(key));
    return rc;
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    s_watermark_t *w;
    int rc;

    assert(setup && setup->spec && state);
    w = calloc(1, sizeof(*w));
    if (!w)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    rc = rf_pass_watermark_pattern(setup->spec, &w->pattern, err);
    if (rc) {
        free(w);
        return rc;
    }
    *state = w;
    return 0;
}

static int s_plan(void *state)
{
    (void)state;
    return 0; /* not temporal */
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    const s_watermark_t *w = state;
    (void)err;
    for (int c = 0; c < 3; c++)
        rf_media_wm_embed_float(w->pattern, frame->plane[c], frame->width, frame->height, frame->width,
                                (float)RF_WM_AMPLITUDE);
    return 0;
}

static int s_flush(void *state, rf_err_t *err)
{
    (void)state;
    (void)err;
    return 0;
}

static void s_destroy(void *state)
{
    s_watermark_t *w = state;
    if (!w)
        return;
    rf_media_wm_pattern_destroy(&w->pattern);
    free(w);
}

const rf_pass_vtable_t rf_pass_watermark = {
    .name = "watermark",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = s_plan,
    .run = s_run,
    .flush = s_flush,
    .destroy = s_destroy,
};
