/* gpu_math.h - the per-sample arithmetic of the CUDA kernels, as plain inline functions.
 *
 * Every kernel in gpu_kern.cu is a loop body from this file run once per thread. The same header
 * compiles as C (RF_HD is "static inline"), so the tests run these exact functions on the CPU and
 * compare them with the CPU passes and pconvert.c on machines without a GPU; the GPU tests then
 * compare the device's results with the same CPU reference. Arithmetic mirrors the CPU code
 * statement for statement (double where it uses double, the same summation order), and the CUDA
 * files are compiled with --fmad=false so nvcc does not contract a*b+c into an FMA the CPU does
 * not do: what is left between the two is the last bit of pow/cbrt/exp (CUDA's are within 1-2 ulp
 * of glibc's), which a float result rarely shows.
 *
 * Colour conversion (pconvert.c's YUV path, which the GPU reproduces):
 *   to RGB:   a code v of depth d becomes v << (16 - d) (swscale's YUV444P16 widening); chroma of a
 *             subsampled format is interpolated bilinearly at the luma sample's centre (chroma
 *             sited at the centre of its 2x2 block, swscale's default), edges repeated, and rounded
 *             to a 16-bit code as swscale stores it; then the matrix in float as pconvert.c does.
 *   from RGB: the matrix to 16-bit codes (rounded, clamped) at full resolution; subsampled chroma
 *             is the 2:1 triangle filter swscale's bilinear scaler uses (weights 1/8 3/8 3/8 1/8
 * per axis, edges repeated); 16-bit codes go to depth d by rounding. swscale adds an ordered dither
 * there, which is the one systematic difference (at most one code).
 */
#ifndef RF_GPU_MATH_H
#define RF_GPU_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define RF_HD static __host__ __device__ __forceinline__
#else
#define RF_HD static inline
#endif

/* ---- layouts -------------------------------------------------------------------------------- */

/* Where the Y, Cb and Cr samples of a YUV frame are: planar (yuv420p, yuv444p, yuv420p10le) and
 * semi-planar (nv12, p010le, p016le) formats, little-endian, 8 to 16 bits. Built from FFmpeg's
 * pixel format descriptor (rf_gpu_yuv_layout). */
typedef struct rf_gyuv {
    int width, height;    /* luma size */
    int depth;            /* bits per component, 8..16 */
    int cw_log2, ch_log2; /* chroma subsampling: 0 or 1 */
    int bytes;            /* bytes per component word: 1 or 2 */
    int plane[3];         /* plane index of Y, Cb, Cr */
    int step[3];          /* bytes from one sample to the next in a row */
    int offset[3];        /* bytes before a row's first sample */
    int shift[3];         /* bits the value sits above the word's bit 0 (P010: 6) */
} rf_gyuv_t;

/* The pointers and pitches of one frame in that layout (device memory on the GPU). */
typedef struct rf_gyuv_planes {
    uint8_t *data[3];
    int linesize[3];
} rf_gyuv_planes_t;

/* pconvert.c's scaling and matrix: y = (code16 - y_off) / y_span, c = (code16 - c_off) / c_span;
 * kr, kb the luma weights of the source's matrix. */
typedef struct rf_gmatrix {
    float y_off, y_span, c_off, c_span;
    float kr, kb;
} rf_gmatrix_t;

/* ---- colour conversion ---------------------------------------------------------------------- */

RF_HD float rf_gm_clamp01f(float v)
{
    /* NaN fails both comparisons and becomes 0, as in the CPU code. */
    if (v > 1.0f)
        return 1.0f;
    if (v >= 0.0f)
        return v;
    return 0.0f;
}

RF_HD float rf_gm_clamp01d(double v)
{
    if (v > 1.0)
        return 1.0f;
    if (v >= 0.0)
        return (float)v;
    return 0.0f;
}

/* The component c (0 Y, 1 Cb, 2 Cr) code at sample (x, y) of its own plane. */
RF_HD unsigned rf_gm_read(const rf_gyuv_t *l, const rf_gyuv_planes_t *f, int c, int x, int y)
{
    const int p = l->plane[c];
    const uint8_t *s = f->data[p] + (long)y * f->linesize[p] + (long)x * l->step[c] + l->offset[c];
    unsigned v = l->bytes == 1 ? s[0] : (unsigned)s[0] | ((unsigned)s[1] << 8);
    return (v >> l->shift[c]) & ((1u << l->depth) - 1u);
}

RF_HD void rf_gm_write(const rf_gyuv_t *l, rf_gyuv_planes_t *f, int c, int x, int y, unsigned v)
{
    const int p = l->plane[c];
    uint8_t *s = f->data[p] + (long)y * f->linesize[p] + (long)x * l->step[c] + l->offset[c];
    v <<= l->shift[c];
    s[0] = (uint8_t)(v & 0xff);
    if (l->bytes == 2)
        s[1] = (uint8_t)(v >> 8);
}

RF_HD int rf_gm_clampi(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* The 16-bit code of chroma component c at luma sample (x, y): bilinear between the chroma
 * samples around the luma sample's centre, rounded to an integer code. */
RF_HD float rf_gm_chroma16(const rf_gyuv_t *l, const rf_gyuv_planes_t *f, int c, int x, int y)
{
    const float up = (float)(1 << (16 - l->depth));
    if (!l->cw_log2 && !l->ch_log2)
        return (float)rf_gm_read(l, f, c, x, y) * up;
    const int cw = (l->width + (1 << l->cw_log2) - 1) >> l->cw_log2;
    const int ch = (l->height + (1 << l->ch_log2) - 1) >> l->ch_log2;
    const float fx = l->cw_log2 ? ((float)x + 0.5f) * 0.5f - 0.5f : (float)x;
    const float fy = l->ch_log2 ? ((float)y + 0.5f) * 0.5f - 0.5f : (float)y;
    const int x0 = (int)floorf(fx), y0 = (int)floorf(fy);
    const float tx = fx - (float)x0, ty = fy - (float)y0;
    const int xa = rf_gm_clampi(x0, 0, cw - 1), xb = rf_gm_clampi(x0 + 1, 0, cw - 1);
    const int ya = rf_gm_clampi(y0, 0, ch - 1), yb = rf_gm_clampi(y0 + 1, 0, ch - 1);
    const float v00 = (float)rf_gm_read(l, f, c, xa, ya), v10 = (float)rf_gm_read(l, f, c, xb, ya);
    const float v01 = (float)rf_gm_read(l, f, c, xa, yb), v11 = (float)rf_gm_read(l, f, c, xb, yb);
    const float top = v00 + (v10 - v00) * tx, bottom = v01 + (v11 - v01) * tx;
    return rintf((top + (bottom - top) * ty) * up);
}

/* One pixel of a YUV frame to RGB 0..1 (pconvert.c s_matrix_to_rgb). */
RF_HD void rf_gm_yuv_to_rgb(const rf_gyuv_t *l, const rf_gyuv_planes_t *f, const rf_gmatrix_t *m,
                            int x, int y, float rgb[3])
{
    const float kr = m->kr, kb = m->kb, kg = 1.0f - kr - kb;
    const float rv = 2.0f * (1.0f - kr), bu = 2.0f * (1.0f - kb);
    const float y16 = (float)(rf_gm_read(l, f, 0, x, y) << (16 - l->depth));
    const float yy = (y16 - m->y_off) / m->y_span;
    const float cb = (rf_gm_chroma16(l, f, 1, x, y) - m->c_off) / m->c_span;
    const float cr = (rf_gm_chroma16(l, f, 2, x, y) - m->c_off) / m->c_span;
    const float rr = yy + rv * cr, bb = yy + bu * cb;
    rgb[0] = rf_gm_clamp01f(rr);
    rgb[1] = rf_gm_clamp01f((yy - kr * rr - kb * bb) / kg);
    rgb[2] = rf_gm_clamp01f(bb);
}

/* pconvert.c s_code16: a value in 16-bit units to a code, rounded and clamped. */
RF_HD uint16_t rf_gm_code16(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 65535.0f)
        return 65535;
    return (uint16_t)rintf(v);
}

/* One RGB pixel to 16-bit Y, Cb, Cr codes at full resolution (pconvert.c s_matrix_from_rgb). */
RF_HD void rf_gm_rgb_to_yuv16(const rf_gmatrix_t *m, float r, float g, float b, uint16_t out[3])
{
    const float kr = m->kr, kb = m->kb, kg = 1.0f - kr - kb;
    const float rv = 2.0f * (1.0f - kr), bu = 2.0f * (1.0f - kb);
    const float rr = rf_gm_clamp01f(r), gg = rf_gm_clamp01f(g), bb = rf_gm_clamp01f(b);
    const float yy = kr * rr + kg * gg + kb * bb;
    out[0] = rf_gm_code16(m->y_off + yy * m->y_span);
    out[1] = rf_gm_code16(m->c_off + (bb - yy) / bu * m->c_span);
    out[2] = rf_gm_code16(m->c_off + (rr - yy) / rv * m->c_span);
}

/* A 16-bit code to depth d, rounded. */
RF_HD unsigned rf_gm_to_depth(float v16, int depth)
{
    if (depth >= 16)
        return (unsigned)rf_gm_clampi((int)rintf(v16), 0, 65535);
    const float scale = (float)(1 << (16 - depth));
    return (unsigned)rf_gm_clampi((int)rintf(v16 / scale), 0, (1 << depth) - 1);
}

/* The output code of component c at its own sample (x, y), from full-resolution 16-bit planes
 * yuv16[c] (width x height, rows contiguous): luma as is, subsampled chroma through the 2:1
 * triangle filter per subsampled axis. */
RF_HD unsigned rf_gm_out_code(const rf_gyuv_t *l, const uint16_t *const yuv16[3], int c, int x,
                              int y)
{
    const uint16_t *p = yuv16[c];
    const int w = l->width, h = l->height;
    if (c == 0 || (!l->cw_log2 && !l->ch_log2))
        return rf_gm_to_depth((float)p[(long)y * w + x], l->depth);
    const float wt[4] = {0.125f, 0.375f, 0.375f, 0.125f};
    float sum = 0.0f;
    const int ny = l->ch_log2 ? 4 : 1, nx = l->cw_log2 ? 4 : 1;
    for (int j = 0; j < ny; j++) {
        const int sy = l->ch_log2 ? rf_gm_clampi(2 * y - 1 + j, 0, h - 1) : y;
        const float wy = l->ch_log2 ? wt[j] : 1.0f;
        float row = 0.0f;
        for (int i = 0; i < nx; i++) {
            const int sx = l->cw_log2 ? rf_gm_clampi(2 * x - 1 + i, 0, w - 1) : x;
            const float wx = l->cw_log2 ? wt[i] : 1.0f;
            row += wx * (float)p[(long)sy * w + sx];
        }
        sum += wy * row;
    }
    return rf_gm_to_depth(sum, l->depth);
}

/* ---- sRGB and Oklab (media/color.c, same constants, same order) ------------------------------ */

RF_HD double rf_gm_eotf(double v)
{
    const double a = fabs(v);
    const double l = a <= 0.04045 ? a / 12.92 : pow((a + 0.055) / 1.055, 2.4);
    return v < 0 ? -l : l;
}

RF_HD double rf_gm_inverse_eotf(double l)
{
    const double a = fabs(l);
    const double v = a <= 0.0031308 ? 12.92 * a : 1.055 * pow(a, 1.0 / 2.4) - 0.055;
    return l < 0 ? -v : v;
}

RF_HD void rf_gm_srgb_to_oklab(const double rgb[3], double lab[3])
{
    const double r = rf_gm_eotf(rgb[0]), g = rf_gm_eotf(rgb[1]), b = rf_gm_eotf(rgb[2]);
    const double l = cbrt(0.4122214708 * r + 0.5363325363 * g + 0.0514459929 * b);
    const double m = cbrt(0.2119034982 * r + 0.6806995451 * g + 0.1073969566 * b);
    const double s = cbrt(0.0883024619 * r + 0.2817188376 * g + 0.6299787005 * b);
    lab[0] = 0.2104542553 * l + 0.7936177850 * m - 0.0040720468 * s;
    lab[1] = 1.9779984951 * l - 2.4285922050 * m + 0.4505937099 * s;
    lab[2] = 0.0259040371 * l + 0.7827717662 * m - 0.8086757660 * s;
}

RF_HD void rf_gm_oklab_to_srgb(const double lab[3], double rgb[3])
{
    const double L = lab[0], A = lab[1], B = lab[2];
    const double l1 = L + 0.3963377774 * A + 0.2158037573 * B;
    const double m1 = L - 0.1055613458 * A - 0.0638541728 * B;
    const double s1 = L - 0.0894841775 * A - 1.2914855480 * B;
    const double l = l1 * l1 * l1, m = m1 * m1 * m1, s = s1 * s1 * s1;
    rgb[0] = rf_gm_inverse_eotf(4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s);
    rgb[1] = rf_gm_inverse_eotf(-1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s);
    rgb[2] = rf_gm_inverse_eotf(-0.0041960863 * l - 0.7034186147 * m + 1.7076147010 * s);
}

/* ---- the passes' per-sample work ---------------------------------------------------------------
 */

/* deflicker: the sum of one row's Rec.709 luma, left to right in double (deflicker.c). */
RF_HD double rf_gm_luma_row(const float *r, const float *g, const float *b, int width)
{
    double row = 0.0;
    for (int x = 0; x < width; x++)
        row += 0.2126 * r[x] + 0.7152 * g[x] + 0.0722 * b[x];
    return row;
}

/* color-match: the sums of (lab - shift) and its square over one sampled row (color.c
 * rf_color_stats), out[0..2] sums, out[3..5] squares. */
RF_HD void rf_gm_lab_row(const float *r, const float *g, const float *b, int width, int step,
                         const double shift[3], double out[6])
{
    for (int c = 0; c < 6; c++)
        out[c] = 0.0;
    for (int x = 0; x < width; x += step) {
        const double rgb[3] = {r[x], g[x], b[x]};
        double lab[3];
        rf_gm_srgb_to_oklab(rgb, lab);
        for (int c = 0; c < 3; c++) {
            const double d = lab[c] - shift[c];
            out[c] += d;
            out[3 + c] += d * d;
        }
    }
}

/* color-match's correction of one frame (colormatch.c). */
typedef struct rf_gcolormatch {
    double mean[3];     /* the pooled frame statistics' means */
    double gain[3];     /* clamped sigma_ref / sigma */
    double ref_mean[3]; /* the reference's means */
    double strength;
} rf_gcolormatch_t;

RF_HD void rf_gm_colormatch(const rf_gcolormatch_t *k, float *r, float *g, float *b)
{
    double v[3] = {*r, *g, *b}, lab[3];
    rf_gm_srgb_to_oklab(v, lab);
    for (int c = 0; c < 3; c++) {
        const double matched = (lab[c] - k->mean[c]) * k->gain[c] + k->ref_mean[c];
        lab[c] += k->strength * (matched - lab[c]);
    }
    rf_gm_oklab_to_srgb(lab, v);
    *r = rf_gm_clamp01d(v[0]);
    *g = rf_gm_clamp01d(v[1]);
    *b = rf_gm_clamp01d(v[2]);
}

/* grade (grade.c): the steps whose flag is set, in its order. */
typedef struct rf_ggrade {
    int do_exposure, do_contrast, do_saturation, do_gamma;
    double gain, contrast, saturation, inv_gamma;
} rf_ggrade_t;

RF_HD double rf_gm_srgb_to_linear(double v)
{
    if (v <= 0.04045)
        return v / 12.92;
    return pow((v + 0.055) / 1.055, 2.4);
}

RF_HD double rf_gm_linear_to_srgb(double l)
{
    if (l <= 0.0031308)
        return 12.92 * l;
    return 1.055 * pow(l, 1.0 / 2.4) - 0.055;
}

RF_HD void rf_gm_grade(const rf_ggrade_t *k, float *r, float *g, float *b)
{
    double v[3] = {*r, *g, *b};
    if (k->do_exposure)
        for (int c = 0; c < 3; c++)
            v[c] = rf_gm_linear_to_srgb(rf_gm_srgb_to_linear(v[c]) * k->gain);
    if (k->do_contrast)
        for (int c = 0; c < 3; c++)
            v[c] = (v[c] - 0.5) * k->contrast + 0.5;
    if (k->do_saturation) {
        const double y = 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2];
        for (int c = 0; c < 3; c++)
            v[c] = y + (v[c] - y) * k->saturation;
    }
    if (k->do_gamma)
        for (int c = 0; c < 3; c++)
            if (v[c] > 0.0)
                v[c] = pow(v[c], k->inv_gamma);
    *r = rf_gm_clamp01d(v[0]);
    *g = rf_gm_clamp01d(v[1]);
    *b = rf_gm_clamp01d(v[2]);
}

/* sharpen (sharpen.c): the row blur of sample (x, y), taps -half..half, edges repeated. */
RF_HD float rf_gm_blur_row(const float *px, int w, int x, int y, const double *weight, int half)
{
    const float *row = px + (long)y * w;
    double sum = 0.0;
    for (int k = -half; k <= half; k++)
        sum += weight[k < 0 ? -k : k] * row[rf_gm_clampi(x + k, 0, w - 1)];
    return (float)sum;
}

/* sharpen: the column blur of tmp at (x, y) and the unsharp mask of v. */
RF_HD float rf_gm_mask(const float *tmp, int w, int h, int x, int y, float v, const double *weight,
                       int half, double amount, double threshold)
{
    double sum = 0.0;
    for (int k = -half; k <= half; k++)
        sum += weight[k < 0 ? -k : k] * tmp[(long)rf_gm_clampi(y + k, 0, h - 1) * w + x];
    const double d = (double)v - (double)(float)sum;
    return rf_gm_clamp01d(fabs(d) > threshold ? (double)v + amount * d : (double)v);
}

/* scale (scale.c): one output sample of a separable filter, taps from index/weight rows;
 * stride is the distance between successive input samples along the axis. */
RF_HD float rf_gm_filter(const float *in, long stride, const int *index, const double *weight,
                         int taps)
{
    double sum = 0;
    for (int k = 0; k < taps; k++)
        sum += weight[k] * in[(long)index[k] * stride];
    return rf_gm_clamp01d(sum);
}

/* ---- fp16 NHWC for the neural passes (DESIGN §6) ----------------------------------------------
 */

/* IEEE 754 binary16 bits of f, rounded to nearest even (subnormals kept, overflow to infinity,
 * NaN stays NaN). Portable integer code, so host and device give the same bits. */
RF_HD uint16_t rf_gm_half_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v = {f};
    const uint32_t sign = (v.u >> 16) & 0x8000u;
    const uint32_t abs = v.u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: keep it a quiet NaN */
        return (uint16_t)(sign | 0x7e00u);
    if (abs >= 0x477ff000u) /* rounds to 65536 or more: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {   /* below 2^-14: subnormal half (or zero) */
        if (abs < 0x33000000u) /* below half the smallest subnormal: zero */
            return (uint16_t)sign;
        const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
        const int shift = 126 - (int)(abs >> 23); /* 14..24 */
        uint32_t h = mant >> shift;
        const uint32_t rest = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (h & 1u)))
            h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((abs >> 13) - (112u << 10)) & 0xffffu; /* rebias 127 -> 15 */
    const uint32_t rest = abs & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u)))
        h++; /* may carry into the exponent, which is right */
    return (uint16_t)(sign | h);
}

/* The float value of binary16 bits (exact). */
RF_HD float rf_gm_half_value(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    union {
        uint32_t u;
        float f;
    } v;
    if (exp == 0) {
        /* subnormal or zero: mant * 2^-24 */
        v.f = (float)mant * (1.0f / 16777216.0f);
        v.u |= sign;
        return v.f;
    }
    if (exp == 31)
        v.u = sign | 0x7f800000u | (mant << 13);
    else
        v.u = sign | ((exp + 112u) << 23) | (mant << 13);
    return v.f;
}

#endif
