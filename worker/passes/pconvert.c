/* pconvert.c - decoded frames <-> pipeline frames (planar RGB fp32, full range, 0..1).
 *
 * Three paths, chosen once per converter from the pixel format:
 *
 *   YUV and gray (the common case): swscale only resamples chroma and changes layout - source to
 *     YUV444P16 and back, which it does by plain bit shifts (8-bit 235 <-> 60160) with no colour
 *     maths - and the matrix is applied here in float. swscale's own YUV -> RGB16/float output
 *     (FFmpeg 5.1) scales full scale to 65280/65535: white came out as 0.9962 and every value 0.4%
 *     dark, which a round trip hides but every pass would see.
 *       range:  AVCOL_RANGE_JPEG (or a yuvj* format) is full range, anything else limited;
 *       matrix: from color_space; unspecified means BT.709 for HD (wider than 1024 or taller than
 *               576) and BT.601 for SD, as players guess. BT.2020 constant luminance is treated
 *               as non-constant (same coefficients, the difference is small and rare).
 *     Samples from outside the RGB cube (super-whites, out-of-gamut chroma) are clamped to 0..1,
 *     as a player would show them.
 *   Integer RGB (rgb24, bgra, gbrp10, rgb48, ...): no swscale at all - read and written component
 *     by component with av_read/write_image_line2, exactly v / (2^depth - 1). swscale widens 8-bit
 *     RGB by shifting, so 255 would come out as 0.996 there too.
 *   Anything else swscale handles (pal8, float formats): swscale straight to and from
 *     AV_PIX_FMT_GBRPF32, with its 255/256 scale error; these formats are rare as sources.
 *
 * GBR planar formats keep planes in G, B, R order (data[0] = G, data[1] = B, data[2] = R) while
 * rf_pframe_t holds R, G, B, so plane pointers are permuted on that path.
 *
 * Flags: SWS_BITEXACT | SWS_ACCURATE_RND so every worker, whatever its CPU's SIMD, produces the
 * same samples - chunks from different machines are stitched into one video, and a re-run chunk
 * must match its first run. Bilinear chroma resampling. Going from 16 bits back to the source's
 * depth swscale applies an ordered dither, a fixed function of the pixel position, so
 * deterministic.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/frame.h>
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "media.h"
#include "passes.h"

#define RF_PCONVERT_MAX_DIM 16384 /* per side; larger frames are refused before allocating */
#define RF_PCONVERT_PAD_FLOATS RF_PFRAME_PAD_FLOATS /* passes.h: plane slack, shared with scale */
#define RF_PCONVERT_FLAGS                                                                          \
    (SWS_BILINEAR | SWS_BITEXACT | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP)

/* How a converter gets from its pixel format to RGB float (see the top of the file). */
typedef enum s_path {
    S_PATH_YUV, /* swscale to/from YUV444P16, matrix here */
    S_PATH_RGB, /* integer RGB, component by component */
    S_PATH_SWS, /* swscale to/from GBRPF32 */
} s_path_t;

struct rf_pconvert {
    int width, height;
    enum AVPixelFormat pix_fmt;
    const AVPixFmtDescriptor *desc;
    s_path_t path;
    enum AVColorRange range;     /* what the YUV side is read and written as */
    enum AVColorSpace space;     /* the matrix used (RGB for RGB formats), never UNSPECIFIED */
    struct SwsContext *to_rgb;   /* pix_fmt -> YUV444P16 or GBRPF32 (NULL on the RGB path) */
    struct SwsContext *from_rgb; /* YUV444P16 or GBRPF32 -> pix_fmt (NULL on the RGB path) */
    AVFrame *yuv16;              /* the YUV444P16 frame between swscale and the matrix */
    uint32_t *row;               /* one row of one component, for the RGB path */
    /* YUV path: the 16-bit code of black and the span of full scale, for luma and chroma, so
     * that y = (code - y_off) / y_span and c = (code - c_off) / c_span (both in 16-bit units). */
    float y_off, y_span, c_off, c_span;
    float kr, kb; /* the matrix's luma weights for R and B */
};

/* Native-endian planar float GBR. */
#if AV_HAVE_BIGENDIAN
#define RF_PIX_FMT_GBRPF32 AV_PIX_FMT_GBRPF32BE
#else
#define RF_PIX_FMT_GBRPF32 AV_PIX_FMT_GBRPF32LE
#endif

/* The same choice in swscale's terms, for the fallback path. */
static int s_sws_matrix(enum AVColorSpace space)
{
    switch (space) {
    case AVCOL_SPC_BT709:
        return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
        return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
        return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
        return SWS_CS_BT2020;
    default:
        return SWS_CS_ITU601;
    }
}

static bool s_is_jpeg_format(enum AVPixelFormat f)
{
    return f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUVJ422P || f == AV_PIX_FMT_YUVJ444P ||
           f == AV_PIX_FMT_YUVJ440P || f == AV_PIX_FMT_YUVJ411P;
}

/* The yuvj* formats are yuv* with full range; swscale wants the yuv* name plus the range (it
 * warns about the deprecated ones). */
static enum AVPixelFormat s_sws_format(enum AVPixelFormat f)
{
    switch (f) {
    case AV_PIX_FMT_YUVJ420P:
        return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P:
        return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P:
        return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P:
        return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P:
        return AV_PIX_FMT_YUV411P;
    default:
        return f;
    }
}

static s_path_t s_choose_path(const AVPixFmtDescriptor *d)
{
    const uint64_t not_plain = AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_PAL |
                               AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BAYER;
    if (d->flags & not_plain)
        return S_PATH_SWS;
    for (int i = 0; i < d->nb_components; i++)
        if (d->comp[i].depth > 16)
            return S_PATH_SWS;
    if (d->flags & AV_PIX_FMT_FLAG_RGB)
        return d->nb_components >= 3 ? S_PATH_RGB : S_PATH_SWS;
    /* YUV, gray (one component) and YUV/gray with alpha (alpha is dropped, then opaque). */
    return S_PATH_YUV;
}

/* A context from src to dst, same size, with our range and matrix set where there is a YUV side. */
static struct SwsContext *s_context(const rf_pconvert_t *c, enum AVPixelFormat src,
                                    enum AVPixelFormat dst)
{
    struct SwsContext *ctx =
        sws_getContext(c->width, c->height, s_sws_format(src), c->width, c->height,
                       s_sws_format(dst), RF_PCONVERT_FLAGS, NULL, NULL, NULL);
    if (!ctx)
        return NULL;
    const int *coefs = sws_getCoefficients(s_sws_matrix(c->space));
    const int full = c->range == AVCOL_RANGE_JPEG;
    /* Same range both sides: between two YUV formats that means no range conversion at all.
     * Between two RGB formats swscale has no matrix and refuses the call, which is fine, so the
     * result is deliberately not checked. */
    (void)sws_setColorspaceDetails(ctx, coefs, full, coefs, full, 0, 1 << 16, 1 << 16);
    return ctx;
}

/* The YUV path's code scaling, from the source depth d: swscale puts an d-bit code v at
 * v << (16 - d) in YUV444P16. Limited range is 16..235 (chroma 16..240) times 2^(d-8); full
 * range is 0..2^d-1 with chroma centred on 2^(d-1). */
static void s_yuv_scaling(int depth, enum AVColorRange range, rf_pconvert_yuv_t *y)
{
    const int d = depth;
    const float to16 = (float)(1 << (16 - d)); /* d-bit code -> 16-bit code */
    if (range == AVCOL_RANGE_JPEG) {
        const float max = (float)((1 << d) - 1);
        y->y_off = 0.0f;
        y->y_span = max * to16;
        y->c_off = (float)(1 << (d - 1)) * to16;
        y->c_span = max * to16;
    } else {
        const float unit = 256.0f; /* one 8-bit code in 16-bit units, whatever the depth */
        y->y_off = 16.0f * unit;
        y->y_span = 219.0f * unit;
        y->c_off = 128.0f * unit;
        y->c_span = 224.0f * unit;
    }
}

int rf_pconvert_yuv_params(int width, int height, int pix_fmt, int color_range, int color_space,
                           rf_pconvert_yuv_t *out, rf_err_t *err)
{
    const enum AVPixelFormat fmt = (enum AVPixelFormat)pix_fmt;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);
    if (!desc || s_choose_path(desc) != S_PATH_YUV)
        return rf_err_set(err, RF_EINVAL, "pixel format '%s' is not a YUV format",
                          desc ? desc->name : "?");
    memset(out, 0, sizeof *out);
    out->range = (color_range == AVCOL_RANGE_JPEG || s_is_jpeg_format(fmt)) ? AVCOL_RANGE_JPEG
                                                                             : AVCOL_RANGE_MPEG;
    double kr, kb; /* the matrix's weights, shared with the planner's scene colours (media.h) */
    out->space = rf_color_yuv_weights(color_space, width, height, &kr, &kb);
    out->kr = (float)kr;
    out->kb = (float)kb;
    s_yuv_scaling(desc->comp[0].depth, (enum AVColorRange)out->range, out);
    return 0;
}

int rf_pconvert_new(int width, int height, int pix_fmt, int color_range, int color_space,
                    rf_pconvert_t **out, rf_err_t *err)
{
    int rc = 0;
    rf_pconvert_t *c = NULL;
    const enum AVPixelFormat fmt = (enum AVPixelFormat)pix_fmt;
    const char *fmt_name = av_get_pix_fmt_name(fmt);

    assert(out);
    *out = NULL;
    if (width <= 0 || height <= 0 || width > RF_PCONVERT_MAX_DIM || height > RF_PCONVERT_MAX_DIM) {
        rc = rf_err_set(err, RF_EMEDIA, "frame size %dx%d out of range (1..%d per side)", width,
                        height, RF_PCONVERT_MAX_DIM);
        goto cleanup;
    }
    if (!fmt_name) {
        rc = rf_err_set(err, RF_EMEDIA, "unknown pixel format %d", pix_fmt);
        goto cleanup;
    }
    if (!sws_isSupportedInput(s_sws_format(fmt)) || !sws_isSupportedOutput(s_sws_format(fmt))) {
        rc = rf_err_set(err, RF_EMEDIA, "pixel format '%s' cannot be converted to and from RGB",
                        fmt_name);
        goto cleanup;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto cleanup;
    }
    c->width = width;
    c->height = height;
    c->pix_fmt = fmt;
    c->desc = av_pix_fmt_desc_get(fmt);
    c->path = s_choose_path(c->desc);
    if (c->desc->flags & AV_PIX_FMT_FLAG_RGB) {
        /* Already RGB: no matrix, always full range. */
        c->range = AVCOL_RANGE_JPEG;
        c->space = AVCOL_SPC_RGB;
    } else {
        c->range = (color_range == AVCOL_RANGE_JPEG || s_is_jpeg_format(fmt)) ? AVCOL_RANGE_JPEG
                                                                              : AVCOL_RANGE_MPEG;
        double kr, kb;
        c->space = (enum AVColorSpace)rf_color_yuv_weights(color_space, width, height, &kr, &kb);
    }

    switch (c->path) {
    case S_PATH_RGB:
        c->row = calloc((size_t)width, sizeof *c->row);
        if (!c->row) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto cleanup;
        }
        break;
    case S_PATH_YUV: {
        rf_pconvert_yuv_t y;
        rc = rf_pconvert_yuv_params(width, height, pix_fmt, color_range, color_space, &y, err);
        if (rc < 0)
            goto cleanup;
        c->y_off = y.y_off;
        c->y_span = y.y_span;
        c->c_off = y.c_off;
        c->c_span = y.c_span;
        c->kr = y.kr;
        c->kb = y.kb;
        c->yuv16 = av_frame_alloc();
        if (!c->yuv16) {
            rc = rf_err_set(err, RF_ENOMEM, "out of memory");
            goto cleanup;
        }
        c->yuv16->width = width;
        c->yuv16->height = height;
        c->yuv16->format = AV_PIX_FMT_YUV444P16;
        if (av_frame_get_buffer(c->yuv16, 0) < 0) {
            rc =
                rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d 16-bit frame", width, height);
            goto cleanup;
        }
        c->to_rgb = s_context(c, fmt, AV_PIX_FMT_YUV444P16);
        c->from_rgb = s_context(c, AV_PIX_FMT_YUV444P16, fmt);
        break;
    }
    case S_PATH_SWS:
        c->to_rgb = s_context(c, fmt, RF_PIX_FMT_GBRPF32);
        c->from_rgb = s_context(c, RF_PIX_FMT_GBRPF32, fmt);
        break;
    }
    if (c->path != S_PATH_RGB && (!c->to_rgb || !c->from_rgb)) {
        rc = rf_err_set(err, RF_EMEDIA, "swscale cannot convert %dx%d '%s' to and from RGB", width,
                        height, fmt_name);
        goto cleanup;
    }
    *out = c;
    c = NULL;

cleanup:
    rf_pconvert_destroy(&c);
    return rc;
}

/* Gives pf planes for width x height, keeping ones it already has of that size. */
static int s_pframe_alloc(rf_pframe_t *pf, int width, int height, rf_err_t *err)
{
    if (pf->plane[0] && pf->plane[1] && pf->plane[2] && pf->width == width && pf->height == height)
        return 0;
    rf_pframe_release(pf);
    const size_t n = (size_t)width * (size_t)height + RF_PCONVERT_PAD_FLOATS;
    for (int p = 0; p < 3; p++) {
        pf->plane[p] = av_malloc_array(n, sizeof(float));
        if (!pf->plane[p]) {
            rf_pframe_release(pf);
            return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d RGB frame", width, height);
        }
    }
    pf->width = width;
    pf->height = height;
    return 0;
}

static inline float s_clamp01(float v)
{
    /* NaN fails both comparisons and becomes 0: a broken sample must not reach the encoder. */
    if (v > 1.0f)
        return 1.0f;
    if (v >= 0.0f)
        return v;
    return 0.0f;
}

/* 16-bit code from a value already scaled to 16-bit units, rounded and clamped. */
static inline uint16_t s_code16(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 65535.0f)
        return 65535;
    return (uint16_t)lrintf(v);
}

/* YUV444P16 (c->yuv16) -> RGB with the matrix: R = Y + 2(1-Kr) Cr, B = Y + 2(1-Kb) Cb,
 * G = (Y - Kr R - Kb B) / Kg. */
static void s_matrix_to_rgb(const rf_pconvert_t *c, rf_pframe_t *pf)
{
    const AVFrame *f = c->yuv16;
    const float kr = c->kr, kb = c->kb, kg = 1.0f - kr - kb;
    const float rv = 2.0f * (1.0f - kr), bu = 2.0f * (1.0f - kb);
    for (int y = 0; y < c->height; y++) {
        const uint16_t *ly = (const uint16_t *)(f->data[0] + (size_t)y * f->linesize[0]);
        const uint16_t *lu = (const uint16_t *)(f->data[1] + (size_t)y * f->linesize[1]);
        const uint16_t *lv = (const uint16_t *)(f->data[2] + (size_t)y * f->linesize[2]);
        const size_t row = (size_t)y * (size_t)c->width;
        float *r = pf->plane[0] + row, *g = pf->plane[1] + row, *b = pf->plane[2] + row;
        for (int x = 0; x < c->width; x++) {
            const float yy = ((float)ly[x] - c->y_off) / c->y_span;
            const float cb = ((float)lu[x] - c->c_off) / c->c_span;
            const float cr = ((float)lv[x] - c->c_off) / c->c_span;
            const float rr = yy + rv * cr, bb = yy + bu * cb;
            r[x] = s_clamp01(rr);
            g[x] = s_clamp01((yy - kr * rr - kb * bb) / kg);
            b[x] = s_clamp01(bb);
        }
    }
}

/* RGB -> YUV444P16 (c->yuv16): Y = Kr R + Kg G + Kb B, Cb = (B - Y) / 2(1-Kb),
 * Cr = (R - Y) / 2(1-Kr). */
static void s_matrix_from_rgb(const rf_pconvert_t *c, const rf_pframe_t *pf)
{
    AVFrame *f = c->yuv16;
    const float kr = c->kr, kb = c->kb, kg = 1.0f - kr - kb;
    const float rv = 2.0f * (1.0f - kr), bu = 2.0f * (1.0f - kb);
    for (int y = 0; y < c->height; y++) {
        uint16_t *ly = (uint16_t *)(f->data[0] + (size_t)y * f->linesize[0]);
        uint16_t *lu = (uint16_t *)(f->data[1] + (size_t)y * f->linesize[1]);
        uint16_t *lv = (uint16_t *)(f->data[2] + (size_t)y * f->linesize[2]);
        const size_t row = (size_t)y * (size_t)c->width;
        const float *r = pf->plane[0] + row, *g = pf->plane[1] + row, *b = pf->plane[2] + row;
        for (int x = 0; x < c->width; x++) {
            const float rr = s_clamp01(r[x]), gg = s_clamp01(g[x]), bb = s_clamp01(b[x]);
            const float yy = kr * rr + kg * gg + kb * bb;
            ly[x] = s_code16(c->y_off + yy * c->y_span);
            lu[x] = s_code16(c->c_off + (bb - yy) / bu * c->c_span);
            lv[x] = s_code16(c->c_off + (rr - yy) / rv * c->c_span);
        }
    }
}

/* pixdesc lists RGB components as R, G, B(, A) whatever the memory layout, so component c is
 * pf->plane[c]. */
static void s_direct_to_rgb(rf_pconvert_t *c, const AVFrame *src, rf_pframe_t *pf)
{
    for (int comp = 0; comp < 3; comp++) {
        const float scale = 1.0f / (float)((1u << c->desc->comp[comp].depth) - 1u);
        for (int y = 0; y < c->height; y++) {
            float *out = pf->plane[comp] + (size_t)y * (size_t)c->width;
            av_read_image_line2(c->row, (const uint8_t **)src->data, src->linesize, c->desc, 0, y,
                                comp, c->width, 0, sizeof *c->row);
            for (int x = 0; x < c->width; x++)
                out[x] = (float)c->row[x] * scale;
        }
    }
}

static void s_direct_from_rgb(rf_pconvert_t *c, const rf_pframe_t *pf, AVFrame *dst)
{
    /* av_write_image_line2 ORs narrow components into place, so start from zeros. */
    for (int p = 0; p < av_pix_fmt_count_planes(c->pix_fmt); p++)
        memset(dst->data[p], 0, (size_t)dst->linesize[p] * (size_t)c->height);
    for (int comp = 0; comp < c->desc->nb_components; comp++) {
        const uint32_t max = (1u << c->desc->comp[comp].depth) - 1u;
        for (int y = 0; y < c->height; y++) {
            const float *in = comp < 3 ? pf->plane[comp] + (size_t)y * (size_t)c->width : NULL;
            for (int x = 0; x < c->width; x++) {
                /* Alpha, where the format has it, is opaque: the pipeline carries none. */
                const float v = in ? s_clamp01(in[x]) : 1.0f;
                c->row[x] = (uint32_t)lrintf(v * (float)max);
            }
            av_write_image_line2(c->row, dst->data, dst->linesize, c->desc, 0, y, comp, c->width,
                                 sizeof *c->row);
        }
    }
}

int rf_pconvert_to_rgb(rf_pconvert_t *c, const AVFrame *src, rf_pframe_t *pf, rf_err_t *err)
{
    assert(c && src && pf);
    if (src->width != c->width || src->height != c->height || src->format != c->pix_fmt ||
        !src->data[0]) {
        const char *got = av_get_pix_fmt_name((enum AVPixelFormat)src->format);
        return rf_err_set(err, RF_EMEDIA,
                          "decoded frame is %dx%d '%s', the converter was made for %dx%d '%s'",
                          src->width, src->height, got ? got : "?", c->width, c->height,
                          av_get_pix_fmt_name(c->pix_fmt));
    }
    int rc = s_pframe_alloc(pf, c->width, c->height, err);
    if (rc < 0)
        return rc;

    switch (c->path) {
    case S_PATH_RGB:
        s_direct_to_rgb(c, src, pf);
        break;
    case S_PATH_YUV:
        if (sws_scale(c->to_rgb, (const uint8_t *const *)src->data, src->linesize, 0, c->height,
                      c->yuv16->data, c->yuv16->linesize) != c->height)
            return rf_err_set(err, RF_EMEDIA, "swscale failed converting a frame to RGB");
        s_matrix_to_rgb(c, pf);
        break;
    case S_PATH_SWS: {
        uint8_t *dst[4] = {(uint8_t *)pf->plane[1], (uint8_t *)pf->plane[2],
                           (uint8_t *)pf->plane[0], NULL};
        const int stride = c->width * (int)sizeof(float);
        int dst_stride[4] = {stride, stride, stride, 0};
        if (sws_scale(c->to_rgb, (const uint8_t *const *)src->data, src->linesize, 0, c->height,
                      dst, dst_stride) != c->height)
            return rf_err_set(err, RF_EMEDIA, "swscale failed converting a frame to RGB");
        break;
    }
    }
    pf->pts = src->pts;
    return 0;
}

/* Gives dst buffers of our size and format, or checks the ones it has. */
static int s_frame_prepare(const rf_pconvert_t *c, AVFrame *dst, rf_err_t *err)
{
    if (!dst->buf[0]) {
        dst->width = c->width;
        dst->height = c->height;
        dst->format = c->pix_fmt;
        if (av_frame_get_buffer(dst, 0) < 0)
            return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d '%s' frame", c->width,
                              c->height, av_get_pix_fmt_name(c->pix_fmt));
        return 0;
    }
    if (dst->width != c->width || dst->height != c->height || dst->format != c->pix_fmt)
        return rf_err_set(err, RF_EINVAL,
                          "output frame already holds %dx%d buffers of another format", dst->width,
                          dst->height);
    if (av_frame_make_writable(dst) < 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory making an output frame writable");
    return 0;
}

int rf_pconvert_from_rgb(rf_pconvert_t *c, const rf_pframe_t *pf, AVFrame *dst, rf_err_t *err)
{
    assert(c && pf && dst);
    if (pf->width != c->width || pf->height != c->height || !pf->plane[0] || !pf->plane[1] ||
        !pf->plane[2])
        return rf_err_set(err, RF_EINVAL, "frame %lld is %dx%d, the converter was made for %dx%d",
                          (long long)pf->index, pf->width, pf->height, c->width, c->height);
    int rc = s_frame_prepare(c, dst, err);
    if (rc < 0)
        return rc;

    switch (c->path) {
    case S_PATH_RGB:
        s_direct_from_rgb(c, pf, dst);
        break;
    case S_PATH_YUV:
        s_matrix_from_rgb(c, pf);
        if (sws_scale(c->from_rgb, (const uint8_t *const *)c->yuv16->data, c->yuv16->linesize, 0,
                      c->height, dst->data, dst->linesize) != c->height)
            return rf_err_set(err, RF_EMEDIA, "swscale failed converting frame %lld from RGB",
                              (long long)pf->index);
        break;
    case S_PATH_SWS: {
        const uint8_t *src[4] = {(const uint8_t *)pf->plane[1], (const uint8_t *)pf->plane[2],
                                 (const uint8_t *)pf->plane[0], NULL};
        const int stride = c->width * (int)sizeof(float);
        int src_stride[4] = {stride, stride, stride, 0};
        if (sws_scale(c->from_rgb, src, src_stride, 0, c->height, dst->data, dst->linesize) !=
            c->height)
            return rf_err_set(err, RF_EMEDIA, "swscale failed converting frame %lld from RGB",
                              (long long)pf->index);
        break;
    }
    }
    /* The encoder tags the stream from these; they are what the samples now are. */
    dst->color_range = c->range;
    dst->colorspace = c->space;
    dst->pts = pf->pts;
    return 0;
}

void rf_pconvert_destroy(rf_pconvert_t **cp)
{
    if (!cp || !*cp)
        return;
    rf_pconvert_t *c = *cp;
    sws_freeContext(c->to_rgb);
    sws_freeContext(c->from_rgb);
    av_frame_free(&c->yuv16);
    free(c->row);
    free(c);
    *cp = NULL;
}

/* Planes come from av_malloc (rf_pconvert_to_rgb) or malloc; av_free releases both on the
 * platforms we build for (av_malloc is posix_memalign there). */
void rf_pframe_release(rf_pframe_t *pf)
{
    if (!pf)
        return;
    for (int p = 0; p < 3; p++)
        av_freep(&pf->plane[p]);
    pf->width = 0;
    pf->height = 0;
}
