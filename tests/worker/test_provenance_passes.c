/* test_provenance_passes.c - the passes added to every job (docs/PROVENANCE.md): `label` draws the
 * AI-GENERATED label where the layout rule puts it, glyph pixels from the font table; `watermark`
 * adds exactly amplitude * chip to R, G and B; rf_media_wm_embed_frame marks a YUV frame's luma and
 * leaves its chroma bit for bit; bad parameters are refused with the parameter's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libavutil/frame.h>

#include "media.h"
#include "passes.h"

#define W 1280
#define H 720
#include "pass_fixture.h"

#define S_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static float *s_plane(float v)
{
    float *p = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++)
        p[i] = v;
    return p;
}

static void test_label(void **state)
{
    rf_param_t params[] = {{.key = (char *)"text", .value = (char *)"AI-GENERATED"}};
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f = {.width = W, .height = H};

    (void)state;
    assert_int_equal(t_pass_create("label", params, 1, W, H, &p, &err), 0);
    for (int c = 0; c < 3; c++)
        f.plane[c] = s_plane(0.5f);
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    /* Layout by hand for 1280x720: scale = 720/240 = 3, margin = 720/50 = 14, padding 2*3 = 6;
     * text 12 glyphs of 6 columns less one: 71 * 3 = 213 px wide, 7 * 3 = 21 px tall; box
     * [1266-213-12, 1266) x [706-21-12, 706) = [1041, 1266) x [673, 706); text at (1047, 679).
     * 'A' row 0 is 01110: font columns 1..3 lit. */
    float *r = f.plane[0];
    assert_true(r[679 * W + 1047] == 0.5f * 0.35f); /* column 0 of 'A', top row: dark box */
    assert_true(r[679 * W + 1050] == 1.0f);         /* column 1 */
    assert_true(r[681 * W + 1058] == 1.0f);         /* column 3, still in the 3x3 font pixel */
    assert_true(r[679 * W + 1059] == 0.5f * 0.35f); /* column 4 */
    assert_true(r[(679 + 9) * W + 1047] == 1.0f);   /* 'A' row 3 is 11111 */
    assert_true(r[672 * W + 1100] == 0.5f);         /* just above the box: untouched */
    assert_true(r[700 * W + 1040] == 0.5f);         /* just left of it */
    assert_true(r[700 * W + 1266] == 0.5f);         /* just right of it */
    assert_true(r[706 * W + 1100] == 0.5f);         /* just below it */
    assert_true(r[100 * W + 100] == 0.5f);
    size_t lit = 0;
    for (size_t i = 0; i < N; i++)
        lit += r[i] == 1.0f;
    /* lit font pixels of A I - G E N E R A T E D (count of 1 bits in their rows), 9 px each */
    assert_int_equal(lit, (size_t)(18 + 11 + 5 + 18 + 18 + 17 + 18 + 18 + 18 + 11 + 18 + 16) * 9);
    for (int c = 0; c < 3; c++)
        assert_true(f.plane[c][679 * W + 1050] == 1.0f && f.plane[c][679 * W + 1047] == 0.5f * 0.35f);
    p.vt->destroy(p.state);
    rf_pframe_release(&f);

    rf_param_t bad[] = {{.key = (char *)"text", .value = (char *)"ai"}};
    assert_int_equal(t_pass_create("label", bad, 1, W, H, &p, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "parameter 'text': character 'a' not in the label font"));
}

static void test_watermark_pass(void **state)
{
    rf_param_t params[] = {{.key = (char *)"key", .value = (char *)S_KEY},
                           {.key = (char *)"payload", .value = (char *)"c5d01f67897576e8"}};
    t_pass_t p;
    rf_err_t err = {0};
    rf_pframe_t f = {.width = W, .height = H};
    uint8_t key[32];
    rf_media_wm_pattern_t *pat = NULL;

    (void)state;
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    assert_int_equal(rf_media_wm_pattern_new(key, UINT64_C(0xc5d01f67897576e8), &pat, &err), 0);
    assert_int_equal(t_pass_create("watermark", params, 2, W, H, &p, &err), 0);
    for (int c = 0; c < 3; c++)
        f.plane[c] = s_plane(0.25f * (float)(c + 1));
    assert_int_equal(p.vt->run(p.state, &f, &err), 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y += 7)
            for (int x = 0; x < W; x += 5)
                assert_true(f.plane[c][y * W + x] ==
                            0.25f * (float)(c + 1) + (float)RF_WM_AMPLITUDE * (float)rf_media_wm_chip_at(pat, x, y, H));
    p.vt->destroy(p.state);
    rf_pframe_release(&f);
    rf_media_wm_pattern_destroy(&pat);

    rf_param_t nokey[] = {{.key = (char *)"payload", .value = (char *)"c5d01f67897576e8"}};
    assert_int_equal(t_pass_create("watermark", nokey, 1, W, H, &p, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "parameter 'key': expected 64 lowercase hex digits"));
    rf_param_t badpay[] = {{.key = (char *)"key", .value = (char *)S_KEY},
                           {.key = (char *)"payload", .value = (char *)"XYZ"}};
    assert_int_equal(t_pass_create("watermark", badpay, 2, W, H, &p, &err), RF_ECONFIG);
    assert_non_null(strstr(err.msg, "parameter 'payload'"));
}

static void test_embed_frame(void **state)
{
    uint8_t key[32] = {5};
    rf_media_wm_pattern_t *pat = NULL;
    rf_err_t err = {0};
    AVFrame *f = av_frame_alloc();

    (void)state;
    assert_int_equal(rf_media_wm_pattern_new(key, 42, &pat, &err), 0);
    f->width = 320;
    f->height = 180;
    f->format = AV_PIX_FMT_YUV420P;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int pl = 0; pl < 3; pl++)
        for (int y = 0; y < (pl ? 90 : 180); y++)
            memset(f->data[pl] + y * f->linesize[pl], 100 + 20 * pl, (size_t)(pl ? 160 : 320));
    assert_int_equal(rf_media_wm_embed_frame(pat, f, &err), 0);
    double sum = 0;
    for (int y = 0; y < 180; y++)
        for (int x = 0; x < 320; x++) {
            int d = f->data[0][y * f->linesize[0] + x] - 100;
            int chip = rf_media_wm_chip_at(pat, x, y, 180);
            /* amplitude 2.75/255 * 219 = 2.36 code values, dithered: 2 or 3 with the chip's sign */
            assert_true(d == 2 * chip || d == 3 * chip);
            sum += d * chip;
        }
    double mean = sum / (320 * 180);
    assert_true(mean > 2.30 && mean < 2.42);
    for (int pl = 1; pl < 3; pl++)
        for (int y = 0; y < 90; y++)
            for (int x = 0; x < 160; x++)
                assert_int_equal(f->data[pl][y * f->linesize[pl] + x], 100 + 20 * pl);
    av_frame_free(&f);

    assert_true(rf_media_wm_frame_format_ok(AV_PIX_FMT_YUV420P10LE));
    assert_true(rf_media_wm_frame_format_ok(AV_PIX_FMT_GRAY8));
    assert_false(rf_media_wm_frame_format_ok(AV_PIX_FMT_RGB24));
    assert_false(rf_media_wm_frame_format_ok(AV_PIX_FMT_YUYV422));
    f = av_frame_alloc();
    f->width = 64;
    f->height = 64;
    f->format = AV_PIX_FMT_RGB24;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    assert_int_equal(rf_media_wm_embed_frame(pat, f, &err), RF_EINVAL);
    assert_non_null(strstr(err.msg, "rgb24"));
    av_frame_free(&f);
    rf_media_wm_pattern_destroy(&pat);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label),
        cmocka_unit_test(test_watermark_pass),
        cmocka_unit_test(test_embed_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
