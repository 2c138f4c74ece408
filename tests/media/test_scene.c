/* test_scene.c - the scene-cut detector (media/scene.c, rf_media_scenes): exactly the known cuts
 * of the `scenes` fixture (five unrelated lavfi shots; the maker writes the cut frames to
 * scenes.cuts), found the same through the 8-bit, 10-bit and RGB thumbnail paths; no cut on a
 * single moving testsrc2 shot; none at threshold 1; bad thresholds and missing files are errors.
 */
#include <math.h>
#include <stdbool.h>

#include "fixture.h"
#include "media.h"

#define MAXCUTS 64

/* The `scenes` fixture's path and its known cuts. */
static void t_scenes_fixture(char *path, size_t size, int64_t *cuts, size_t *ncuts)
{
    rf_fixture("scenes", path, size);
    char cuts_path[600];
    snprintf(cuts_path, sizeof(cuts_path), "%s/scenes.cuts", getenv("RF_FIXTURE_DIR"));
    FILE *f = fopen(cuts_path, "r");
    if (!f)
        fail_msg("cannot read %s", cuts_path);
    long long v;
    *ncuts = 0;
    while (*ncuts < MAXCUTS && fscanf(f, "%lld", &v) == 1)
        cuts[(*ncuts)++] = v;
    fclose(f);
    assert_true(*ncuts >= 3);
}

static void t_detect(const char *path, double threshold, int64_t **cuts, size_t *n)
{
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    if (rf_media_probe(path, &info, &err) != 0)
        fail_msg("probe '%s': %s", path, err.msg);
    if (rf_media_scenes(info, threshold, cuts, n, NULL, &err) != 0)
        fail_msg("scenes '%s' at %.2f: %s", path, threshold, err.msg);
    rf_media_info_destroy(&info);
}

static void t_expect_cuts(const char *what, const int64_t *got, size_t ngot, const int64_t *want,
                          size_t nwant)
{
    char list[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < ngot && used < sizeof(list) - 24; i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, " %lld", (long long)got[i]);
    if (ngot != nwant)
        fail_msg("%s: %zu cuts (%s), want %zu", what, ngot, list, nwant);
    for (size_t i = 0; i < ngot; i++)
        if (got[i] != want[i])
            fail_msg("%s: cut %zu at %lld, want %lld (found:%s)", what, i, (long long)got[i],
                     (long long)want[i], list);
}

static void test_finds_exactly_the_known_cuts(void **state)
{
    (void)state;
    char path[512];
    int64_t want[MAXCUTS];
    size_t nwant = 0;
    t_scenes_fixture(path, sizeof(path), want, &nwant);
    int64_t *cuts = NULL;
    size_t n = 0;
    t_detect(path, 0.1, &cuts, &n);
    t_expect_cuts("scenes at 0.1", cuts, n, want, nwant);
    free(cuts);

    /* a higher threshold may miss the softer cuts but never invents one */
    t_detect(path, 0.3, &cuts, &n);
    for (size_t i = 0; i < n; i++) {
        bool known = false;
        for (size_t k = 0; k < nwant; k++)
            known = known || cuts[i] == want[k];
        if (!known)
            fail_msg("scenes at 0.3: cut at %lld is not a known cut", (long long)cuts[i]);
    }
    free(cuts);

    t_detect(path, 1.0, &cuts, &n);
    t_expect_cuts("scenes at 1.0", cuts, n, NULL, 0);
    free(cuts);
}

/* The same shots as 10-bit YUV and as RGB (swscale's gray path): the same cuts. */
static void test_same_cuts_for_other_pixel_formats(void **state)
{
    (void)state;
    static const struct {
        const char *pix_fmt;
    } formats[] = {{"yuv420p10le"}, {"bgr0"}};
    char path[512], dir[512];
    int64_t want[MAXCUTS];
    size_t nwant = 0;
    t_scenes_fixture(path, sizeof(path), want, &nwant);
    rf_tmpdir(dir, sizeof(dir));
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        char out[700], cmd[1600];
        snprintf(out, sizeof(out), "%s/%s.mkv", dir, formats[i].pix_fmt);
        snprintf(cmd, sizeof(cmd),
                 "ffmpeg -nostdin -v error -y -i '%s' -an -c:v ffv1 -pix_fmt %s '%s'", path,
                 formats[i].pix_fmt, out);
        assert_int_equal(system(cmd), 0);
        int64_t *cuts = NULL;
        size_t n = 0;
        t_detect(out, 0.1, &cuts, &n);
        t_expect_cuts(formats[i].pix_fmt, cuts, n, want, nwant);
        free(cuts);
    }
    rf_tmpdir_remove(dir);
}

/* One testsrc2 shot: a moving ball, a counter and a scrolling gradient are motion, not cuts. */
static void test_no_cuts_in_one_shot(void **state)
{
    (void)state;
    char path[512];
    rf_fixture("h264-aac-1001", path, sizeof(path));
    static const double thresholds[] = {0.3, 0.1, 0.02};
    for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++) {
        int64_t *cuts = NULL;
        size_t n = 0;
        t_detect(path, thresholds[i], &cuts, &n);
        char what[64];
        snprintf(what, sizeof(what), "h264-aac-1001 at %.2f", thresholds[i]);
        t_expect_cuts(what, cuts, n, NULL, 0);
        free(cuts);
    }
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    char path[512];
    int64_t want[MAXCUTS];
    size_t nwant = 0;
    t_scenes_fixture(path, sizeof(path), want, &nwant);
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    if (rf_media_probe(path, &info, &err) != 0)
        fail_msg("probe: %s", err.msg);
    int64_t *cuts = (int64_t *)1;
    size_t n = 99;
    static const double bad[] = {-0.1, 1.5, NAN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(rf_media_scenes(info, bad[i], &cuts, &n, NULL, &err), RF_EINVAL);
        assert_null(cuts);
        assert_int_equal(n, 0);
        assert_non_null(strstr(err.msg, "scene threshold"));
    }
    /* the file went away between probe and planning */
    char *saved = info->path;
    info->path = (char *)"/nonexistent/scenes.mp4";
    assert_int_equal(rf_media_scenes(info, 0.3, &cuts, &n, NULL, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, "'/nonexistent/scenes.mp4'"));
    info->path = saved;
    rf_media_info_destroy(&info);
}

/* Per-frame colours on the red-gray fixture (20 frames of pure sRGB red, 20 of 0x808080 gray,
 * BT.709 limited range, lossless): Oklab values from Björn Ottosson's published numbers for red,
 * and for gray from the sRGB curve (0x80 = 0.50196 -> linear 0.21586 -> L = cbrt = 0.59987,
 * a = b = 0). Tolerance 0.01: 8-bit YUV codes, not the exact colours. */
static void test_frame_colors(void **state)
{
    (void)state;
    char path[512];
    rf_fixture("red-gray", path, sizeof(path));
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    assert_int_equal(rf_media_probe(path, &info, &err), 0);
    assert_int_equal(info->nb_frames, 40);
    rf_color_stats_t *colors = calloc(40, sizeof(*colors));
    int64_t *cuts = NULL;
    size_t n = 0;
    if (rf_media_scenes(info, 0.1, &cuts, &n, colors, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 1);
    assert_int_equal(cuts[0], 20);
    const double red[3] = {0.627955, 0.224863, 0.125846};
    const double gray[3] = {0.599871, 0, 0};
    for (int f = 0; f < 40; f++) {
        const double *want = f < 20 ? red : gray;
        for (int c = 0; c < 3; c++) {
            if (fabs(colors[f].mean[c] - want[c]) > 0.01)
                fail_msg("frame %d channel %d: mean %.5f, want %.5f", f, c, colors[f].mean[c], want[c]);
            if (colors[f].std[c] > 0.003)
                fail_msg("frame %d channel %d: std %.5f on a flat frame", f, c, colors[f].std[c]);
        }
    }
    free(cuts);
    free(colors);
    rf_media_info_destroy(&info);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_exactly_the_known_cuts),
        cmocka_unit_test(test_same_cuts_for_other_pixel_formats),
        cmocka_unit_test(test_no_cuts_in_one_shot),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_frame_colors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
