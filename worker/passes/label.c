/* label.c - the "label" pass: a small visible "AI-GENERATED" label in the bottom-right corner.
 *
 * Added by the coordinator (config/marks.c) before the watermark when a job depicts real people
 * (always, then) or asks for it (provenance.label). Drawn with our own 5x7 bitmap font - no
 * FreeType, no fonts on the workers - in white on a darkened box, at an integer scale of the
 * frame height (a glyph is 7 * scale pixels tall, scale = max(1, height / 240): 21 px at 720p,
 * 3% of the picture). Position and size depend on the frame size only, so every chunk draws it in
 * the same place.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"

#define S_GLYPH_W 5
#define S_GLYPH_H 7
#define S_ADVANCE 6          /* glyph width plus one column of spacing */
#define S_TEXT_MAX 32
#define S_BOX_DIM 0.35f      /* the box behind the text keeps this much of the picture */

/* Rows top to bottom, bit 4 = leftmost column (the HD44780 5x7 shapes). */
static const struct {
    char c;
    uint8_t rows[S_GLYPH_H];
} s_font[] = {
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}}, {' ', {0, 0, 0, 0, 0, 0, 0}},
};

typedef struct s_label {
    const uint8_t *glyph[S_TEXT_MAX]; /* rows of each character */
    int n;
    int scale;            /* pixels per font pixel */
    int x0, y0, x1, y1;   /* the box, [x0, x1) x [y0, y1), inside the frame */
    int tx, ty;           /* top-left of the first glyph */
} s_label_t;

static const uint8_t *s_glyph(char c)
{
    for (size_t i = 0; i < sizeof(s_font) / sizeof(s_font[0]); i++)
        if (s_font[i].c == c)
            return s_font[i].rows;
    return NULL;
}

static int s_create(const rf_pass_setup_t *setup, void **state, rf_err_t *err)
{
    const char *text = rf_pass_spec_param(setup->spec, "text");
    s_label_t *l;
    int w = setup->width, h = setup->height;

    assert(setup && state);
    if (!text || !*text || strlen(text) > S_TEXT_MAX)
        return rf_err_set(err, RF_ECONFIG, "parameter 'text': expected 1..%d characters", S_TEXT_MAX);
    l = calloc(1, sizeof(*l));
    if (!l)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    for (const char *p = text; *p; p++) {
        if (!(l->glyph[l->n++] = s_glyph(*p))) {
            free(l);
            return rf_err_set(err, RF_ECONFIG, "parameter 'text': character '%c' not in the label "
                                               "font (A-Z, 0-9, space, -)", *p);
        }
    }
    l->scale = h / 240 > 1 ? h / 240 : 1;
    int pad = 2 * l->scale, margin = h / 50 > 2 ? h / 50 : 2;
    int tw = (l->n * S_ADVANCE - 1) * l->scale, th = S_GLYPH_H * l->scale;
    /* Shrink for frames too small to hold the label at scale 1: draw what fits, from the left. */
    l->x1 = w - margin;
    l->y1 = h - margin;
    l->x0 = l->x1 - tw - 2 * pad;
    l->y0 = l->y1 - th - 2 * pad;
    if (l->x0 < 0)
        l->x0 = 0;
    if (l->y0 < 0)
        l->y0 = 0;
    l->tx = l->x0 + pad;
    l->ty = l->y0 + pad;
    *state = l;
    return 0;
}

static int s_plan(void *state)
{
    (void)state;
    return 0;
}

static int s_run(void *state, rf_pframe_t *frame, rf_err_t *err)
{
    const s_label_t *l = state;
    int w = frame->width;
    (void)err;
    for (int y = l->y0; y < l->y1 && y < frame->height; y++)
        for (int x = l->x0; x < l->x1 && x < w; x++) {
            int gx = (x - l->tx) / l->scale, gy = (y - l->ty) / l->scale, ch = gx / S_ADVANCE;
            bool on = x >= l->tx && y >= l->ty && gy < S_GLYPH_H && ch < l->n && gx % S_ADVANCE < S_GLYPH_W &&
                      (l->glyph[ch][gy] >> (S_GLYPH_W - 1 - gx % S_ADVANCE) & 1);
            for (int c = 0; c < 3; c++) {
                float *v = &frame->plane[c][(size_t)y * w + x];
                *v = on ? 1.0f : *v * S_BOX_DIM;
            }
        }
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
    free(state);
}

const rf_pass_vtable_t rf_pass_label = {
    .name = "label",
    .abi = RF_PASS_ABI,
    .create = s_create,
    .plan = s_plan,
    .run = s_run,
    .flush = s_flush,
    .destroy = s_destroy,
};
