/* test_watermark.c - the invisible watermark (media.h): key derivation against Python's hashlib,
 * the pattern's layout, embed + detect round trips in memory (plain, 50% downscale, 10% crop),
 * noise the error correction must absorb, unmarked frames and wrong keys that must not be found,
 * and detection from a real encoded file. The full robustness measurement is
 * bench/watermark-robustness.c; a short run of it is tests/e2e/watermark_robustness.sh. */
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
#include <libavutil/frame.h>
#include <sodium.h>

#include "media.h"

#define S_W 640
#define S_H 360
#define S_FRAMES 48

static uint64_t s_state = 88172645463325252u;
static uint32_t s_rand(void)
{
    s_state ^= s_state << 13;
    s_state ^= s_state >> 7;
    s_state ^= s_state << 17;
    return (uint32_t)(s_state >> 32);
}

/* A textured picture that moves: smooth blobs (sum of a few drifting sinusoids) plus fine random
 * texture that moves with it (a fixed noise field, shifted 3 px right and 1 down per frame). */
static void s_frame(uint8_t *y, int w, int h, int t, const float *noise, int nw)
{
    for (int j = 0; j < h; j++)
        for (int i = 0; i < w; i++) {
            double v = 110 + 50 * sin((i + 3.0 * t) * 0.021) * cos((j + t) * 0.017) +
                       30 * sin((i * 0.7 + j * 0.3 - 2.0 * t) * 0.05) +
                       noise[((j + t) % nw) * nw + (i + 3 * t) % nw];
            y[j * w + i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static float *s_noise(int nw, float amp)
{
    float *n = malloc(sizeof(float) * (size_t)nw * nw);
    for (int i = 0; i < nw * nw; i++)
        n[i] = amp * (((float)(s_rand() % 2001) / 1000.0f) - 1.0f);
    return n;
}

/* Bilinear-ish 2:1 reduction (2x2 average), as a downscale to 50% does. */
static void s_half(const uint8_t *src, int w, int h, uint8_t *dst)
{
    for (int j = 0; j < h / 2; j++)
        for (int i = 0; i < w / 2; i++)
            dst[j * (w / 2) + i] = (uint8_t)((src[2 * j * w + 2 * i] + src[2 * j * w + 2 * i + 1] +
                                              src[(2 * j + 1) * w + 2 * i] + src[(2 * j + 1) * w + 2 * i + 1] + 2) /
                                             4);
}

static void test_keys(void **state)
{
    uint8_t k_wm[32], k_pattern[32], k_tag[32];
    char hex[65];

    (void)state;
    for (int i = 0; i < 32; i++)
        k_wm[i] = (uint8_t)i;
    rf_media_wm_derive(k_wm, k_pattern, k_tag);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", k_pattern[i]);
    /* Expected values from Python: hashlib.blake2b(label + b'\0' + msg, key=..., digest_size=...) */
    assert_string_equal(hex, "0b48f20e0bb91b929948a654aed0ac095b11bd865c0f278ee1740f1177eb0f1a");
    assert_int_equal(rf_media_wm_key_id(k_pattern), 0xc5d0);
    assert_true(rf_media_wm_payload(k_wm, "j-0123456789ab") == UINT64_C(0xc5d01f67897576e8));
    assert_true(rf_media_wm_payload(k_wm, "j-0123456789ac") != UINT64_C(0xc5d01f67897576e8));
    assert_true(memcmp(k_pattern, k_tag, 32) != 0);
}

static void test_pattern(void **state)
{
    uint8_t key[32] = {1, 2, 3};
    rf_media_wm_pattern_t *a = NULL, *b = NULL, *c = NULL;
    rf_err_t err = {0};
    int differ_payload = 0, differ_key = 0, plus = 0;

    (void)state;
    assert_int_equal(rf_media_wm_pattern_new(key, 0x1234, &a, &err), 0);
    assert_int_equal(rf_media_wm_pattern_new(key, 0x1235, &b, &err), 0);
    key[0] = 9;
    assert_int_equal(rf_media_wm_pattern_new(key, 0x1234, &c, &err), 0);
    const int8_t *ca = rf_media_wm_pattern_chips(a), *cb = rf_media_wm_pattern_chips(b),
                 *cc = rf_media_wm_pattern_chips(c);
    for (int i = 0; i < RF_WM_TILE * RF_WM_TILE; i++) {
        assert_true(ca[i] == 1 || ca[i] == -1);
        plus += ca[i] == 1;
        differ_payload += ca[i] != cb[i];
        differ_key += ca[i] != cc[i];
    }
    /* Another payload changes coded bits - each carried by exactly 4 chips - and no sync chip
     * (a third of the tile); another key reshuffles everything (about half the chips differ). */
    assert_true(differ_payload >= 40 && differ_payload <= 688 && differ_payload % 4 == 0);
    assert_true(differ_key > 400 && differ_key < 624);
    assert_true(plus > 430 && plus < 594);
    /* chip_at is the tile repeated at height / RF_WM_ROWS pixels per chip */
    assert_int_equal(rf_media_wm_chip_at(a, 0, 0, 640), ca[0]);
    assert_int_equal(rf_media_wm_chip_at(a, 9, 9, 640), ca[0]);            /* chip = 10 px */
    assert_int_equal(rf_media_wm_chip_at(a, 10, 0, 640), ca[1]);
    assert_int_equal(rf_media_wm_chip_at(a, 0, 10, 640), ca[RF_WM_TILE]);
    assert_int_equal(rf_media_wm_chip_at(a, 320, 325, 640), ca[0]);        /* next tile */
    /* embed_float adds amplitude * chip, nothing else */
    float *plane = calloc(64 * 48, sizeof(float));
    rf_media_wm_embed_float(a, plane, 64, 48, 64, 0.5f);
    for (int y = 0; y < 48; y++)
        for (int x = 0; x < 64; x++)
            assert_true(plane[y * 64 + x] == 0.5f * (float)rf_media_wm_chip_at(a, x, y, 48));
    free(plane);
    rf_media_wm_pattern_destroy(&a);
    rf_media_wm_pattern_destroy(&b);
    rf_media_wm_pattern_destroy(&c);
    assert_null(a);
}

typedef enum { S_PLAIN, S_HALF, S_CROP } s_attack_t;

/* Marks S_FRAMES frames (or not), attacks them in memory, accumulates and detects with key. */
static void s_roundtrip(s_attack_t attack, bool marked, const uint8_t *embed_key, const uint8_t *detect_key,
                        double noise_sd, uint64_t payload, rf_media_wm_result_t *res)
{
    rf_media_wm_pattern_t *p = NULL;
    rf_media_wm_acc_t *acc = NULL;
    rf_err_t err = {0};
    uint8_t *y = malloc(S_W * S_H), *half = malloc(S_W * S_H / 4);
    float *tex = s_noise(256, 25);
    int cw = S_W * 9 / 10, ch = S_H * 9 / 10, cx = 37, cy = 11;
    int aw = attack == S_HALF ? S_W / 2 : attack == S_CROP ? cw : S_W;
    int ah = attack == S_HALF ? S_H / 2 : attack == S_CROP ? ch : S_H;

    assert_int_equal(rf_media_wm_pattern_new(embed_key, payload, &p, &err), 0);
    assert_int_equal(rf_media_wm_acc_new(aw, ah, &acc, &err), 0);
    for (int t = 0; t < S_FRAMES; t++) {
        s_frame(y, S_W, S_H, t, tex, 256);
        if (marked)
            rf_media_wm_embed_u8(p, y, S_W, S_H, S_W, (float)(RF_WM_AMPLITUDE * 219));
        if (noise_sd > 0) /* what a lossy encoder leaves: independent noise per frame */
            for (int i = 0; i < S_W * S_H; i++) {
                double u1 = (s_rand() + 1.0) / 4294967297.0, u2 = s_rand() / 4294967296.0;
                double v = y[i] + noise_sd * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
                y[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lrint(v));
            }
        if (attack == S_HALF) {
            s_half(y, S_W, S_H, half);
            rf_media_wm_acc_add_u8(acc, half, S_W / 2);
        } else if (attack == S_CROP) {
            rf_media_wm_acc_add_u8(acc, y + cy * S_W + cx, S_W);
        } else {
            rf_media_wm_acc_add_u8(acc, y, S_W);
        }
    }
    assert_int_equal(rf_media_wm_acc_frames(acc), S_FRAMES);
    assert_int_equal(rf_media_wm_acc_detect(acc, detect_key, res, &err), 0);
    rf_media_wm_acc_destroy(&acc);
    rf_media_wm_pattern_destroy(&p);
    free(y);
    free(half);
    free(tex);
}

/* The embed against the formula written out here, sample by sample: floor((float)v + amp * chip +
 * (float)frac(x a + y b)) clamped, a and b the R2 sequence's constants. The library runs it eight
 * samples at a time (AVX2) where the CPU has it: the bits must be the same, tails (widths that are
 * not multiples of 8), clamping at both ends and 10-bit frames included. */
static int s_ref_sample(int v, int chip, float amp, int x, int y, int maxv)
{
    double t = x * 0.7548776662466927 + y * 0.5698402909980532;
    float f = (float)v + amp * (float)chip + (float)(t - floor(t));
    int i = (int)floorf(f);
    return i < 0 ? 0 : i > maxv ? maxv : i;
}

static void test_embed_exact(void **state)
{
    (void)state;
    uint8_t key[32] = {7};
    rf_media_wm_pattern_t *p = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_wm_pattern_new(key, 0xfeedu, &p, &err), 0);
    const int sizes[][2] = {{61, 37}, {640, 360}, {1923, 17}, {7, 5}};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        int w = sizes[k][0], h = sizes[k][1];
        ptrdiff_t stride = w + 13;
        uint8_t *plane = malloc((size_t)stride * (size_t)h), *orig = malloc((size_t)stride * (size_t)h);
        for (ptrdiff_t i = 0; i < stride * h; i++) /* both ends of the range, to see the clamps */
            orig[i] = (uint8_t)(i % 5 == 0 ? 0 : i % 5 == 1 ? 255 : s_rand() & 0xff);
        memcpy(plane, orig, (size_t)stride * (size_t)h);
        float amp = 2.75f * 219.0f / 255.0f;
        rf_media_wm_embed_u8(p, plane, w, h, stride, amp);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < stride; x++) {
                int want = x < w ? s_ref_sample(orig[y * stride + x], rf_media_wm_chip_at(p, x, y, h),
                                                 amp, x, y, 255)
                                 : orig[y * stride + x]; /* padding untouched */
                if (plane[y * stride + x] != want)
                    fail_msg("%dx%d: (%d, %d) is %d, the formula says %d", w, h, x, y,
                             plane[y * stride + x], want);
            }
        free(plane);
        free(orig);

        /* 10-bit limited range through embed_frame */
        AVFrame *f = av_frame_alloc();
        f->format = AV_PIX_FMT_YUV420P10LE;
        f->width = w;
        f->height = h;
        f->color_range = AVCOL_RANGE_MPEG;
        assert_int_equal(av_frame_get_buffer(f, 0), 0);
        uint16_t *ref = malloc(sizeof(uint16_t) * (size_t)w * (size_t)h);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint16_t v = (uint16_t)((x + y) % 7 == 0 ? 1023 : (x + y) % 7 == 1 ? 0 : s_rand() % 1024);
                ((uint16_t *)(f->data[0] + y * f->linesize[0]))[x] = v;
                ref[y * w + x] = v;
            }
        assert_int_equal(rf_media_wm_embed_frame(p, f, &err), 0);
        float amp10 = (float)(RF_WM_AMPLITUDE * 219.0 * 4.0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int got = ((uint16_t *)(f->data[0] + y * f->linesize[0]))[x];
                int want = s_ref_sample(ref[y * w + x], rf_media_wm_chip_at(p, x, y, h), amp10, x, y, 1023);
                if (got != want)
                    fail_msg("10-bit %dx%d: (%d, %d) is %d, the formula says %d", w, h, x, y, got, want);
            }
        free(ref);
        av_frame_free(&f);
    }
    rf_media_wm_pattern_destroy(&p);
}

static void test_roundtrip(void **state)
{
    uint8_t key[32], other[32];
    rf_media_wm_result_t res;

    (void)state;
    randombytes_buf(key, sizeof(key));
    randombytes_buf(other, sizeof(other));
    uint64_t payload = (uint64_t)rf_media_wm_key_id(key) << 48 | UINT64_C(0xa1b2c3d4e5f6);

    s_roundtrip(S_PLAIN, true, key, key, 0, payload, &res);
    assert_true(res.found);
    assert_true(res.payload == payload);
    assert_int_equal(res.key_id, rf_media_wm_key_id(key));
    assert_true(res.tag == UINT64_C(0xa1b2c3d4e5f6));
    assert_true(fabs(res.scale - 1.0) < 0.01);

    s_roundtrip(S_HALF, true, key, key, 0, payload, &res);
    assert_true(res.found);
    assert_true(res.payload == payload);
    assert_true(fabs(res.scale - 1.0) < 0.01);

    s_roundtrip(S_CROP, true, key, key, 0, payload, &res);
    assert_true(res.found);
    assert_true(res.payload == payload);
    assert_true(fabs(res.scale - 1 / 0.9) < 0.01); /* chips look 11% larger in the cropped frame */

    /* Noise of sd 6 code values per frame (2.5x the mark's amplitude) raises the raw bit error
     * rate; the code and the integration over frames must still recover the payload. */
    s_roundtrip(S_PLAIN, true, key, key, 6.0, payload, &res);
    assert_true(res.found);
    assert_true(res.payload == payload);
    assert_true(res.confidence > 0.5);

    /* The wrong key finds nothing in marked frames, the right key nothing in unmarked ones. */
    s_roundtrip(S_PLAIN, true, key, other, 0, payload, &res);
    assert_false(res.found);
    assert_true(res.sync_score < 7);
    s_roundtrip(S_PLAIN, false, key, key, 0, payload, &res);
    assert_false(res.found);
    assert_true(res.sync_score < 7);
}

/* One accumulation of unmarked frames, 1000 random keys: the detector's false-positive path. */
static void test_no_false_positives(void **state)
{
    rf_media_wm_acc_t *acc = NULL;
    rf_err_t err = {0};
    uint8_t *y = malloc(S_W * S_H), key[32];
    float *tex = s_noise(256, 25);
    int found = 0;
    double zmax = 0;

    (void)state;
    assert_int_equal(rf_media_wm_acc_new(S_W, S_H, &acc, &err), 0);
    for (int t = 0; t < 24; t++) {
        s_frame(y, S_W, S_H, t, tex, 256);
        rf_media_wm_acc_add_u8(acc, y, S_W);
    }
    for (int k = 0; k < 1000; k++) {
        rf_media_wm_result_t res;
        randombytes_buf(key, sizeof(key));
        assert_int_equal(rf_media_wm_acc_detect(acc, key, &res, &err), 0);
        found += res.found;
        if (res.sync_score > zmax)
            zmax = res.sync_score;
    }
    print_message("1000 random keys on unmarked frames: %d found, highest sync z %.2f\n", found, zmax);
    assert_int_equal(found, 0);
    rf_media_wm_acc_destroy(&acc);
    free(y);
    free(tex);
}

/* A marked clip written by the ffmpeg CLI (libx264 CRF 23), read back by detect_file. */
static void test_file(void **state)
{
    char dir[] = "/tmp/rf-wm-XXXXXX", path[256], cmd[1024];
    uint8_t k_wm[32], k_pattern[32], k_tag[32];
    rf_media_wm_pattern_t *p = NULL;
    rf_media_wm_result_t res;
    rf_err_t err = {0};
    uint8_t *frame = malloc(S_W * S_H * 3 / 2);
    float *tex = s_noise(256, 25);

    (void)state;
    assert_non_null(mkdtemp(dir));
    randombytes_buf(k_wm, sizeof(k_wm));
    rf_media_wm_derive(k_wm, k_pattern, k_tag);
    uint64_t payload = rf_media_wm_payload(k_wm, "j-test");
    assert_int_equal(rf_media_wm_pattern_new(k_pattern, payload, &p, &err), 0);
    snprintf(path, sizeof(path), "%s/marked.mp4", dir);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -hide_banner -loglevel error -y -f rawvideo -pix_fmt yuv420p -s %dx%d -r 24 "
             "-i - -c:v libx264 -preset veryfast -crf 23 %s",
             S_W, S_H, path);
    FILE *out = popen(cmd, "w");
    assert_non_null(out);
    memset(frame + S_W * S_H, 128, S_W * S_H / 2);
    for (int t = 0; t < S_FRAMES; t++) {
        s_frame(frame, S_W, S_H, t, tex, 256);
        rf_media_wm_embed_u8(p, frame, S_W, S_H, S_W, (float)(RF_WM_AMPLITUDE * 219));
        assert_int_equal(fwrite(frame, 1, S_W * S_H * 3 / 2, out), S_W * S_H * 3 / 2);
    }
    assert_int_equal(pclose(out), 0);
    assert_int_equal(rf_media_watermark_detect_file(path, k_wm, &res, &err), 0);
    assert_true(res.found);
    assert_true(res.payload == payload);
    assert_int_equal(res.frames, S_FRAMES);
    /* the pattern key (what a worker holds) detects the same */
    assert_int_equal(rf_media_watermark_detect_file_pattern(path, k_pattern, &res, &err), 0);
    assert_true(res.found && res.payload == payload);
    /* another farm's key does not */
    k_wm[0] ^= 1;
    assert_int_equal(rf_media_watermark_detect_file(path, k_wm, &res, &err), 0);
    assert_false(res.found);

    /* unreadable input: an error naming the file */
    snprintf(path, sizeof(path), "%s/missing.mp4", dir);
    assert_true(rf_media_watermark_detect_file(path, k_wm, &res, &err) < 0);
    assert_non_null(strstr(err.msg, "missing.mp4"));
    snprintf(path, sizeof(path), "%s/marked.mp4", dir);
    unlink(path);
    rmdir(dir);
    rf_media_wm_pattern_destroy(&p);
    free(frame);
    free(tex);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_pattern),
        cmocka_unit_test(test_embed_exact),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_no_false_positives),
        cmocka_unit_test(test_file),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
