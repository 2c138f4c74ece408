/* test_sample.c - sampled verification of an encoded chunk (media/sample.c): a 50-frame x264 chunk
 * with 10-frame closed GOPs checked against its own per-frame list (from rf_media_checksum) for
 * every GOP choice; a list entry changed (and its digest made to match) is caught exactly when its
 * GOP is decoded - the first and last GOPs always, the others when the seed picks them; a wrong
 * frame count and a list that does not match its digest are refused. */
#include "media.h"
#include "media/fixture.h"

#define N 50
#define GOP 10

typedef struct t_list {
    uint8_t sha[N][RF_SHA256_LEN];
    int64_t n;
} t_list_t;

static void t_collect(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    t_list_t *l = arg;
    if (index < N)
        memcpy(l->sha[index], sha, RF_SHA256_LEN);
    l->n++;
}

static void t_digest(const t_list_t *l, uint8_t out[RF_SHA256_LEN])
{
    rf_sha256_t h;
    rf_sha256_init(&h);
    rf_sha256_update(&h, l->sha, sizeof(l->sha));
    rf_sha256_final(&h, out);
}

static void t_encode(const char *path)
{
    rf_encode_params_t p = {.codec = "libx264", .crf = 30, .preset = "veryfast",
                            .pix_fmt = AV_PIX_FMT_YUV420P, .gop = GOP, .width = 96, .height = 64,
                            .frame_rate = {25, 1}, .sample_aspect_ratio = {1, 1}};
    rf_encoder_t *enc = NULL;
    rf_err_t err = {0};
    if (rf_encoder_open(&p, path, &enc, &err))
        fail_msg("%s", err.msg);
    for (int i = 0; i < N; i++) {
        AVFrame *f = av_frame_alloc();
        f->format = AV_PIX_FMT_YUV420P;
        f->width = 96;
        f->height = 64;
        assert_int_equal(av_frame_get_buffer(f, 0), 0);
        for (int pl = 0; pl < 3; pl++)
            for (int y = 0; y < (pl ? 32 : 64); y++)
                for (int x = 0; x < (pl ? 48 : 96); x++)
                    f->data[pl][y * f->linesize[pl] + x] = (uint8_t)(x * 3 + y * 2 + i * 5 + pl * 40);
        f->pts = i;
        assert_int_equal(rf_encoder_write(enc, f, &err), 0);
        av_frame_free(&f);
    }
    assert_int_equal(rf_encoder_finish(enc, &err), 0);
    rf_encoder_destroy(&enc);
}

static void test_sampled_check(void **state)
{
    (void)state;
    char dir[512], path[700];
    rf_tmpdir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/chunk.nut", dir);
    t_encode(path);
    t_list_t list = {0};
    uint64_t frames = 0;
    uint8_t digest[RF_SHA256_LEN];
    rf_err_t err = {0};
    assert_int_equal(rf_media_checksum(path, &frames, digest, t_collect, &list, &err), 0);
    assert_int_equal(frames, N);

    /* the honest list passes whatever GOP the seed picks; first, last and the pick are decoded */
    for (uint64_t seed = 0; seed < N / GOP; seed++) {
        uint32_t gops = 0;
        if (rf_media_checksum_sample(path, &list.sha[0][0], N, digest, seed, &gops, &err) != 0)
            fail_msg("seed %llu: %s", (unsigned long long)seed, err.msg);
        assert_int_equal(gops, seed == 0 || seed == N / GOP - 1 ? 2 : 3);
    }

    /* one entry in GOP 2 (frames 20-29) is wrong, and the digest is made to match the list */
    t_list_t bad = list;
    bad.sha[25][0] ^= 1;
    uint8_t bad_digest[RF_SHA256_LEN];
    t_digest(&bad, bad_digest);
    uint32_t gops = 0;
    assert_int_equal(rf_media_checksum_sample(path, &bad.sha[0][0], N, bad_digest, 2, &gops, &err),
                     RF_EVERIFY);
    assert_non_null(strstr(err.msg, "frame 25 "));
    assert_int_equal(rf_media_checksum_sample(path, &bad.sha[0][0], N, bad_digest, 3, &gops, &err), 0);
    /* in the last GOP it is always caught */
    bad = list;
    bad.sha[N - 1][5] ^= 0x80;
    t_digest(&bad, bad_digest);
    assert_int_equal(rf_media_checksum_sample(path, &bad.sha[0][0], N, bad_digest, 1, &gops, &err),
                     RF_EVERIFY);
    assert_non_null(strstr(err.msg, "frame 49 "));

    /* the count is checked on every packet; the list must match its digest */
    assert_int_equal(rf_media_checksum_sample(path, &list.sha[0][0], N - 1, digest, 0, &gops, &err),
                     RF_EVERIFY);
    t_list_t shorter = list;
    uint8_t short_digest[RF_SHA256_LEN];
    rf_sha256_t h;
    rf_sha256_init(&h);
    rf_sha256_update(&h, shorter.sha, (N - 1) * RF_SHA256_LEN);
    rf_sha256_final(&h, short_digest);
    assert_int_equal(rf_media_checksum_sample(path, &shorter.sha[0][0], N - 1, short_digest, 0, &gops,
                                              &err),
                     RF_EVERIFY);
    assert_non_null(strstr(err.msg, "result has 50 frames, expected 49"));
    assert_int_equal(rf_media_checksum_sample(path, &list.sha[0][0], N, bad_digest, 0, &gops, &err),
                     RF_EVERIFY);
    assert_non_null(strstr(err.msg, "does not match its digest"));
    rf_tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sampled_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
