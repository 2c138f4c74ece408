/* color.c - sRGB <-> Oklab and per-channel Oklab statistics of planar float RGB images.
 *
 * media.h (the "colour statistics in Oklab" section) documents the contract. The matrices are
 * Björn Ottosson's published ones ("A perceptual color space for image processing", 2020): linear
 * sRGB -> LMS (M1), cube root, LMS' -> Lab (M2), and their inverses as he published them (not
 * inverted here), so a round trip is exact to about 1e-7 rather than to the last bit.
 *
 * Cost: per pixel three pow() (EOTF) and three cbrt(); rf_color_stats with step 1 on 1080p takes
 * tens of milliseconds, hence the step for callers that only need the statistics.
 */
#include "media.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sRGB EOTF (IEC 61966-2-1), mirrored about 0 so it is defined and invertible on every real. */
static double s_eotf(double v)
{
    const double a = fabs(v);
    const double l = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0 ? -l : l;
}

static double s_inverse_eotf(double l)
{
    const double a = fabs(l);
    const double v = a <= 0.0031308 ? 12.92 * a : 1.055 * pow(a, 1.0 / 2.4) - 0.055;
    return l < 0 ? -v : v;
}

int rf_color_yuv_weights(int color_space, int width, int height, double *kr, double *kb)
{
    enum AVColorSpace space = (enum AVColorSpace)color_space;
    switch (space) {
    case AVCOL_SPC_BT709:
    case AVCOL_SPC_FCC:
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
    case AVCOL_SPC_SMPTE240M:
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        break;
    default:
        space = (width > 1024 || height > 576) ? AVCOL_SPC_BT709 : AVCOL_SPC_SMPTE170M;
    }
    switch (space) {
    case AVCOL_SPC_BT709:
        *kr = 0.2126, *kb = 0.0722;
        break;
    case AVCOL_SPC_FCC:
        *kr = 0.30, *kb = 0.11;
        break;
    case AVCOL_SPC_SMPTE240M:
        *kr = 0.212, *kb = 0.087;
        break;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        *kr = 0.2627, *kb = 0.0593;
        break;
    default: /* BT.601: BT470BG, SMPTE170M */
        *kr = 0.299, *kb = 0.114;
        break;
    }
    return (int)space;
}

void rf_color_srgb_to_oklab(const double rgb[3], double lab[3])
{
    const double r = s_eotf(rgb[0]), g = s_eotf(rgb[1]), b = s_eotf(rgb[2]);
    const double l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    const double m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    const double s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    lab[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
    lab[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
    lab[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

void rf_color_oklab_to_srgb(const double lab[3], double rgb[3])
{
    const double L = lab[0], A = lab[1], B = lab[2];
    const double l1 = L + 0.3963377774 * A + 0.2158037573 * B;
    const double m1 = L - 0.1055613458 * A - 0.0638541728 * B;
    const double s1 = L - 0.0894841775 * A - 1.2914855480 * B;
    const double l = l1 * l1 * l1, m = m1 * m1 * m1, s = s1 * s1 * s1;
    rgb[0] = s_inverse_eotf(4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s);
    rgb[1] = s_inverse_eotf(-1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s);
    rgb[2] = s_inverse_eotf(-0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s);
}

int rf_color_stats(const float *const plane[3], int width, int height, int step,
                   rf_color_stats_t *out, rf_err_t *err)
{
    if (!plane || !plane[0] || !plane[1] || !plane[2] || !out)
        return rf_err_set(err, RF_EINVAL, "colour statistics: image without pixels");
    if (width <= 0 || height <= 0)
        return rf_err_set(err, RF_EINVAL, "colour statistics: invalid image size %dx%d", width,
                          height);
    if (step < 1)
        return rf_err_set(err, RF_EINVAL, "colour statistics: step %d, expected 1 or more", step);

    /* Sums of (x - first sample) and its square: shifting by a sample keeps the one-pass variance
     * from cancelling catastrophically when the spread is tiny next to the mean. */
    double shift[3] = {0, 0, 0}, sum[3] = {0, 0, 0}, sq[3] = {0, 0, 0};
    size_t n = 0;
    for (int y = 0; y < height; y += step) {
        const size_t row = (size_t)y * (size_t)width;
        for (int x = 0; x < width; x += step) {
            const size_t i = row + (size_t)x;
            const double rgb[3] = {plane[0][i], plane[1][i], plane[2][i]};
            double lab[3];
            rf_color_srgb_to_oklab(rgb, lab);
            if (n == 0)
                memcpy(shift, lab, sizeof shift);
            for (int c = 0; c < 3; c++) {
                const double d = lab[c] - shift[c];
                sum[c] += d;
                sq[c] += d * d;
            }
            n++;
        }
    }
    for (int c = 0; c < 3; c++) {
        const double mean = sum[c] / (double)n;
        const double var = sq[c] / (double)n - mean * mean;
        out->mean[c] = shift[c] + mean;
        out->std[c] = var > 0 ? sqrt(var) : 0.0;
    }
    return 0;
}

int rf_color_stats_format(const rf_color_stats_t *s, char *buf, size_t size)
{
    return snprintf(buf, size, "%.6g,%.6g,%.6g,%.6g,%.6g,%.6g", s->mean[0], s->mean[1], s->mean[2],
                    s->std[0], s->std[1], s->std[2]);
}

int rf_color_stats_parse(const char *text, rf_color_stats_t *out, rf_err_t *err)
{
    static const char *const what[6] = {"L mean",      "a mean",      "b mean",
                                        "L deviation", "a deviation", "b deviation"};
    double v[6];
    const char *p = text;

    if (!text)
        return rf_err_set(err, RF_EINVAL, "colour statistics: none given");
    for (int k = 0; k < 6; k++) {
        char *end = NULL;
        errno = 0;
        v[k] = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v[k]))
            return rf_err_set(err, RF_EINVAL,
                              "colour statistics '%s': expected 6 comma-separated numbers (L,a,b "
                              "means then standard deviations), number %d (%s) is not a finite "
                              "number",
                              text, k + 1, what[k]);
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (k < 5) {
            if (*p != ',')
                return rf_err_set(
                    err, RF_EINVAL,
                    "colour statistics '%s': expected 6 comma-separated numbers (L,a,b "
                    "means then standard deviations), got %d",
                    text, k + 1);
            p++;
        }
    }
    if (*p != '\0')
        return rf_err_set(err, RF_EINVAL,
                          "colour statistics '%s': expected 6 comma-separated numbers (L,a,b means "
                          "then standard deviations), found more after the sixth",
                          text);
    for (int k = 3; k < 6; k++) {
        if (v[k] < 0)
            return rf_err_set(err, RF_EINVAL,
                              "colour statistics '%s': the %s must not be negative, got %g", text,
                              what[k], v[k]);
    }
    for (int c = 0; c < 3; c++) {
        out->mean[c] = v[c];
        out->std[c] = v[3 + c];
    }
    return 0;
}
