/* scene.c - the planner's scene-cut detector (DESIGN §5): one cheap decode of the source, each
 * frame's luma boxed down to a thumbnail of at most 64 pixels on the long side, and a cut wherever
 * the mean difference between consecutive thumbnails jumps well above both a fixed threshold and
 * the recent motion. The exact rule is in media.h. Thumbnails make the cost per frame tiny next to
 * the decode, so the decoder is told to be quick instead of exact: frame threads and no loop
 * filter (the deblocked and undeblocked thumbnails differ by far less than any sane threshold).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "media_internal.h"

/* Everything one detection run owns; released by s_scan_release. */
typedef struct s_scan {
    const rf_media_info_t *info;
    AVFormatContext *fmt;
    AVCodecContext *ctx;
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    struct SwsContext *sws; /* for formats whose plane 0 is not luma (RGB, palettes, ...) */
    int sws_w, sws_h, sws_fmt; /* what sws was made for */
    uint8_t *gray;          /* sws output, tw x th */
    int tw, th;             /* thumbnail size */
    int block;              /* source pixels per thumbnail pixel, each way */
    int frame_w, frame_h;   /* the frame size the thumbnail geometry was computed for */
    float *thumb[2];        /* previous and current thumbnail, 0..1 */
    bool have_prev;
    int64_t decoded;        /* frames decoded so far, for messages and missing timestamps */
    int64_t last_index;     /* global index of the previous frame */

    /* the rule's state */
    double threshold;
    double hist[RF_SCENE_WINDOW]; /* the differences before the candidate, a ring */
    size_t nhist, hist_next;
    int64_t cand;           /* frame whose difference waits for its successor's, or -1 */
    double cand_diff;
    double cand_median;     /* median of hist when cand was seen */
    int64_t last_cut;       /* 0 before the first cut */
    int64_t *cuts;
    size_t ncuts, cap;

    /* colour statistics per frame (rf_media_scenes' colors), when asked for */
    rf_color_stats_t *colors;
    struct SwsContext *csws;   /* point-samples the frame down to cw x ch, same format family */
    int csws_w, csws_h, csws_fmt;
    AVFrame *small;            /* its output: YUV444P16 (or GBRPF32 for other formats) */
    float *rgb[3];             /* cw * ch floats each: R, G, B */
    int cw, ch;
} s_scan_t;

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_hist_median(const s_scan_t *s)
{
    if (s->nhist == 0)
        return 0;
    double v[RF_SCENE_WINDOW];
    memcpy(v, s->hist, s->nhist * sizeof(v[0]));
    qsort(v, s->nhist, sizeof(v[0]), s_cmp_double);
    return s->nhist % 2 ? v[s->nhist / 2] : (v[s->nhist / 2 - 1] + v[s->nhist / 2]) / 2;
}

static void s_hist_push(s_scan_t *s, double d)
{
    s->hist[s->hist_next] = d;
    s->hist_next = (s->hist_next + 1) % RF_SCENE_WINDOW;
    if (s->nhist < RF_SCENE_WINDOW)
        s->nhist++;
}

static int s_add_cut(s_scan_t *s, int64_t index, rf_err_t *err)
{
    if (s->ncuts == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        int64_t *grown = realloc(s->cuts, cap * sizeof(*grown));
        if (!grown)
            return rf_err_set(err, RF_ENOMEM, "'%s': out of memory listing scene cuts",
                              s->info->path);
        s->cuts = grown;
        s->cap = cap;
    }
    s->cuts[s->ncuts++] = index;
    s->last_cut = index;
    return 0;
}

/* Settles the candidate now that the difference after it (next, or -1 at the end) is known. */
static int s_settle(s_scan_t *s, double next, rf_err_t *err)
{
    if (s->cand < 0)
        return 0;
    int64_t i = s->cand;
    double d = s->cand_diff;
    s->cand = -1;
    if (d >= s->threshold && d > RF_SCENE_PEAK_FACTOR * s->cand_median && d >= next &&
        i - s->last_cut >= RF_SCENE_MIN_FRAMES)
        return s_add_cut(s, i, err);
    return 0;
}

/* Feeds d = d(index): settles the previous candidate and makes this frame the next one. */
static int s_feed(s_scan_t *s, int64_t index, double d, rf_err_t *err)
{
    int ret = s_settle(s, d, err);
    if (ret)
        return ret;
    s->cand = index;
    s->cand_diff = d;
    s->cand_median = s_hist_median(s);
    s_hist_push(s, d);
    return 0;
}

/* Sets the thumbnail geometry for a w x h frame. */
static int s_geometry(s_scan_t *s, int w, int h, rf_err_t *err)
{
    if (w <= 0 || h <= 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': decoded a %dx%d frame", s->info->path, w, h);
    int side = w > h ? w : h;
    s->block = (side + RF_SCENE_MAX_SIDE - 1) / RF_SCENE_MAX_SIDE;
    s->tw = (w + s->block - 1) / s->block;
    s->th = (h + s->block - 1) / s->block;
    s->frame_w = w;
    s->frame_h = h;
    s->have_prev = false; /* a size change is not comparable pixel for pixel */
    for (int k = 0; k < 2; k++) {
        free(s->thumb[k]);
        s->thumb[k] = calloc((size_t)s->tw * (size_t)s->th, sizeof(float));
        if (!s->thumb[k])
            return rf_err_set(err, RF_ENOMEM, "'%s': out of memory", s->info->path);
    }
    return 0;
}

/* True when plane 0 of fmt is the luma (or gray) we can box-average directly. */
static bool s_plane0_is_luma(const AVPixFmtDescriptor *desc)
{
    if (!desc || (desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL |
                                 AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL |
                                 AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER)))
        return false;
    const AVComponentDescriptor *c = &desc->comp[0];
    if (c->plane != 0 || c->depth < 1 || c->depth > 16)
        return false;
    bool big_endian = desc->flags & AV_PIX_FMT_FLAG_BE;
    if (c->depth > 8 && big_endian != (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__))
        return false; /* samples in the other byte order: swscale reads them */
    int bytes = c->depth > 8 ? 2 : 1;
    return c->step >= bytes && c->step % bytes == 0 && c->offset % bytes == 0;
}

/* Box-averages plane 0 of f into out (tw x th, 0..1). */
static void s_thumb_luma(const s_scan_t *s, const AVFrame *f, const AVPixFmtDescriptor *desc,
                         float *out)
{
    const AVComponentDescriptor *c = &desc->comp[0];
    int wide = c->depth > 8;
    double scale = 1.0 / (double)((1 << c->depth) - 1);
    int step = wide ? c->step / 2 : c->step, offset = wide ? c->offset / 2 : c->offset;
    unsigned mask = (1u << c->depth) - 1;
    for (int ty = 0; ty < s->th; ty++) {
        int y0 = ty * s->block, y1 = y0 + s->block < s->frame_h ? y0 + s->block : s->frame_h;
        for (int tx = 0; tx < s->tw; tx++) {
            int x0 = tx * s->block, x1 = x0 + s->block < s->frame_w ? x0 + s->block : s->frame_w;
            uint64_t sum = 0;
            for (int y = y0; y < y1; y++) {
                const uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
                if (wide) {
                    const uint16_t *r16 = (const uint16_t *)row + offset;
                    for (int x = x0; x < x1; x++)
                        sum += (r16[x * step] >> c->shift) & mask;
                } else {
                    const uint8_t *r8 = row + offset;
                    for (int x = x0; x < x1; x++)
                        sum += (r8[x * step] >> c->shift) & mask;
                }
            }
            uint64_t n = (uint64_t)(y1 - y0) * (uint64_t)(x1 - x0);
            out[ty * s->tw + tx] = (float)((double)sum / (double)n * scale);
        }
    }
}

/* Converts f to 8-bit gray at the thumbnail size with swscale's area filter. */
static int s_thumb_sws(s_scan_t *s, const AVFrame *f, float *out, rf_err_t *err)
{
    if (!s->sws || s->sws_w != f->width || s->sws_h != f->height || s->sws_fmt != f->format) {
        sws_freeContext(s->sws);
        s->sws = sws_getContext(f->width, f->height, f->format, s->tw, s->th, AV_PIX_FMT_GRAY8,
                                SWS_AREA, NULL, NULL, NULL);
        if (!s->sws)
            return rf_err_set(err, RF_EMEDIA, "'%s': cannot convert %s frames to gray",
                              s->info->path, av_get_pix_fmt_name(f->format));
        s->sws_w = f->width;
        s->sws_h = f->height;
        s->sws_fmt = f->format;
        free(s->gray);
        s->gray = malloc((size_t)s->tw * (size_t)s->th);
        if (!s->gray)
            return rf_err_set(err, RF_ENOMEM, "'%s': out of memory", s->info->path);
    }
    uint8_t *dst[4] = {s->gray, NULL, NULL, NULL};
    int dst_stride[4] = {s->tw, 0, 0, 0};
    int ret = sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst,
                        dst_stride);
    if (ret <= 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': gray conversion failed at frame %" PRId64,
                          s->info->path, s->decoded);
    for (int i = 0; i < s->tw * s->th; i++)
        out[i] = (float)(s->gray[i] / 255.0);
    return 0;
}

/* Native-endian formats for the colour sampler's output. */
#if AV_HAVE_BIGENDIAN
#define S_YUV16 AV_PIX_FMT_YUV444P16BE
#define S_RGBF AV_PIX_FMT_GBRPF32BE
#else
#define S_YUV16 AV_PIX_FMT_YUV444P16LE
#define S_RGBF AV_PIX_FMT_GBRPF32LE
#endif

static float s_clamp01(double v)
{
    return v < 0 ? 0.0f : v > 1 ? 1.0f : (float)v;
}

/* The frame's Oklab statistics into s->colors[index] (see rf_media_scenes in media.h). */
static int s_color(s_scan_t *s, const AVFrame *f, int64_t index, rf_err_t *err)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    bool yuv = d && !(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_FLOAT |
                                  AV_PIX_FMT_FLAG_BAYER | AV_PIX_FMT_FLAG_HWACCEL));
    if (!s->csws || s->csws_w != f->width || s->csws_h != f->height || s->csws_fmt != f->format) {
        int side = f->width > f->height ? f->width : f->height;
        int k = (side + RF_SCENE_COLOR_SIDE - 1) / RF_SCENE_COLOR_SIDE;
        s->cw = (f->width + k - 1) / k;
        s->ch = (f->height + k - 1) / k;
        sws_freeContext(s->csws);
        /* The yuvj* names are yuv* plus full range for swscale; the range is read below. */
        enum AVPixelFormat src = f->format;
        if (src == AV_PIX_FMT_YUVJ420P || src == AV_PIX_FMT_YUVJ422P || src == AV_PIX_FMT_YUVJ444P)
            src = src == AV_PIX_FMT_YUVJ420P ? AV_PIX_FMT_YUV420P
                  : src == AV_PIX_FMT_YUVJ422P ? AV_PIX_FMT_YUV422P : AV_PIX_FMT_YUV444P;
        s->csws = sws_getContext(f->width, f->height, src, s->cw, s->ch, yuv ? S_YUV16 : S_RGBF,
                                 SWS_POINT | SWS_BITEXACT, NULL, NULL, NULL);
        if (!s->csws)
            return rf_err_set(err, RF_EMEDIA, "'%s': cannot sample colours of %s frames",
                              s->info->path, av_get_pix_fmt_name(f->format));
        if (yuv) { /* YUV to YUV: keep the codes as they are (no range conversion) */
            const int *coefs = sws_getCoefficients(SWS_CS_DEFAULT);
            (void)sws_setColorspaceDetails(s->csws, coefs, 0, coefs, 0, 0, 1 << 16, 1 << 16);
        }
        av_frame_free(&s->small);
        s->small = av_frame_alloc();
        for (int p = 0; p < 3; p++) {
            free(s->rgb[p]);
            s->rgb[p] = malloc((size_t)s->cw * (size_t)s->ch * sizeof(float));
        }
        if (!s->small || !s->rgb[0] || !s->rgb[1] || !s->rgb[2])
            return rf_err_set(err, RF_ENOMEM, "'%s': out of memory", s->info->path);
        s->small->format = yuv ? S_YUV16 : S_RGBF;
        s->small->width = s->cw;
        s->small->height = s->ch;
        if (av_frame_get_buffer(s->small, 0) < 0)
            return rf_err_set(err, RF_ENOMEM, "'%s': out of memory", s->info->path);
        s->csws_w = f->width;
        s->csws_h = f->height;
        s->csws_fmt = f->format;
    }
    if (sws_scale(s->csws, (const uint8_t *const *)f->data, f->linesize, 0, f->height,
                  s->small->data, s->small->linesize) <= 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': colour sampling failed at frame %" PRId64,
                          s->info->path, index);
    for (int y = 0; y < s->ch; y++) {
        float *r = s->rgb[0] + (size_t)y * s->cw, *g = s->rgb[1] + (size_t)y * s->cw,
              *b = s->rgb[2] + (size_t)y * s->cw;
        if (!yuv) { /* GBR planes: G, B, R */
            const float *pg = (const float *)(s->small->data[0] + (ptrdiff_t)y * s->small->linesize[0]);
            const float *pb = (const float *)(s->small->data[1] + (ptrdiff_t)y * s->small->linesize[1]);
            const float *pr = (const float *)(s->small->data[2] + (ptrdiff_t)y * s->small->linesize[2]);
            for (int x = 0; x < s->cw; x++) {
                r[x] = s_clamp01(pr[x]);
                g[x] = s_clamp01(pg[x]);
                b[x] = s_clamp01(pb[x]);
            }
            continue;
        }
        /* The worker's conversion (worker/passes/pconvert.c): a d-bit code v is v << (16 - d)
         * here; limited range is 16..235 (chroma 16..240) in 8-bit units, full range 0..2^d-1. */
        int depth = d->comp[0].depth;
        bool full = f->color_range == AVCOL_RANGE_JPEG || f->format == AV_PIX_FMT_YUVJ420P ||
                    f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P;
        double to16 = (double)(1 << (16 - depth)), max = (double)((1 << depth) - 1);
        double y_off = full ? 0 : 16 * 256.0, y_span = full ? max * to16 : 219 * 256.0;
        double c_off = full ? (double)(1 << (depth - 1)) * to16 : 128 * 256.0;
        double c_span = full ? max * to16 : 224 * 256.0;
        double kr, kb;
        rf_color_yuv_weights(f->colorspace, f->width, f->height, &kr, &kb);
        double kg = 1 - kr - kb;
        const uint16_t *py = (const uint16_t *)(s->small->data[0] + (ptrdiff_t)y * s->small->linesize[0]);
        const uint16_t *pu = (const uint16_t *)(s->small->data[1] + (ptrdiff_t)y * s->small->linesize[1]);
        const uint16_t *pv = (const uint16_t *)(s->small->data[2] + (ptrdiff_t)y * s->small->linesize[2]);
        bool gray = d->nb_components < 3;
        for (int x = 0; x < s->cw; x++) {
            double yy = (py[x] - y_off) / y_span;
            double cb = gray ? 0 : (pu[x] - c_off) / c_span, cr = gray ? 0 : (pv[x] - c_off) / c_span;
            double rr = yy + 2 * (1 - kr) * cr, bb = yy + 2 * (1 - kb) * cb;
            r[x] = s_clamp01(rr);
            b[x] = s_clamp01(bb);
            g[x] = s_clamp01((yy - kr * rr - kb * bb) / kg);
        }
    }
    const float *const planes[3] = {s->rgb[0], s->rgb[1], s->rgb[2]};
    return rf_color_stats(planes, s->cw, s->ch, 1, &s->colors[index], err);
}

/* One decoded frame: its thumbnail, its difference to the previous one, the rule. */
static int s_frame(s_scan_t *s, const AVFrame *f, rf_err_t *err)
{
    int ret;
    if (f->width != s->frame_w || f->height != s->frame_h) {
        ret = s_geometry(s, f->width, f->height, err);
        if (ret)
            return ret;
    }
    int64_t index = -1;
    if (f->best_effort_timestamp != AV_NOPTS_VALUE)
        index = rf_media_pts_index(s->info, f->best_effort_timestamp);
    if (index < 0 || index <= s->last_index)
        index = s->last_index + 1; /* no usable timestamp: the next frame in order */
    s->last_index = index;
    s->decoded++;
    if (s->colors && index < s->info->nb_frames) {
        ret = s_color(s, f, index, err);
        if (ret)
            return ret;
    }

    float *cur = s->thumb[1];
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(f->format);
    if (s_plane0_is_luma(desc)) {
        s_thumb_luma(s, f, desc, cur);
    } else {
        ret = s_thumb_sws(s, f, cur, err);
        if (ret)
            return ret;
    }
    if (s->have_prev) {
        size_t n = (size_t)s->tw * (size_t)s->th;
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += fabsf(cur[i] - s->thumb[0][i]);
        ret = s_feed(s, index, sum / (double)n, err);
        if (ret)
            return ret;
    }
    s->thumb[1] = s->thumb[0];
    s->thumb[0] = cur;
    s->have_prev = true;
    return 0;
}

static int s_open(s_scan_t *s, rf_err_t *err)
{
    const char *path = s->info->path;
    int ret = rf_media_open_input(path, &s->fmt, err);
    if (ret < 0)
        return ret;
    ret = rf_media_find_video(s->fmt, path, err);
    if (ret < 0)
        return ret;
    s->stream = ret;
    AVStream *st = s->fmt->streams[s->stream];
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        if ((int)i != s->stream)
            s->fmt->streams[i]->discard = AVDISCARD_ALL;
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec)
        return rf_err_set(err, RF_EMEDIA, "'%s': no decoder for codec '%s'", path,
                          avcodec_get_name(st->codecpar->codec_id));
    s->ctx = avcodec_alloc_context3(codec);
    if (!s->ctx)
        return rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
    ret = avcodec_parameters_to_context(s->ctx, st->codecpar);
    if (ret >= 0) {
        s->ctx->pkt_timebase = st->time_base;
        s->ctx->thread_count = 0;                /* one per core */
        s->ctx->thread_type = FF_THREAD_FRAME;   /* throughput, not latency */
        s->ctx->skip_loop_filter = AVDISCARD_ALL; /* see the top of the file */
        s->ctx->flags2 |= AV_CODEC_FLAG2_FAST;
        ret = avcodec_open2(s->ctx, codec, NULL);
    }
    if (ret < 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': cannot open the %s decoder (%s)", path,
                          codec->name, av_err2str(ret));
    return 0;
}

static int s_receive_all(s_scan_t *s, rf_err_t *err)
{
    for (;;) {
        int ret = avcodec_receive_frame(s->ctx, s->frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "'%s': decoder failed after frame %" PRId64 " (%s)",
                              s->info->path, s->decoded, av_err2str(ret));
        ret = s_frame(s, s->frame, err);
        av_frame_unref(s->frame);
        if (ret)
            return ret;
    }
}

static int s_decode(s_scan_t *s, rf_err_t *err)
{
    int ret;
    for (;;) {
        ret = av_read_frame(s->fmt, s->pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "'%s': read error after frame %" PRId64 " (%s)",
                              s->info->path, s->decoded, av_err2str(ret));
        if (s->pkt->stream_index != s->stream) {
            av_packet_unref(s->pkt);
            continue;
        }
        ret = avcodec_send_packet(s->ctx, s->pkt);
        av_packet_unref(s->pkt);
        if (ret < 0 && ret != AVERROR(EAGAIN))
            return rf_err_set(err, RF_EMEDIA, "'%s': decoder failed after frame %" PRId64 " (%s)",
                              s->info->path, s->decoded, av_err2str(ret));
        ret = s_receive_all(s, err);
        if (ret)
            return ret;
    }
    ret = avcodec_send_packet(s->ctx, NULL);
    if (ret < 0 && ret != AVERROR_EOF)
        return rf_err_set(err, RF_EMEDIA, "'%s': cannot drain the decoder (%s)", s->info->path,
                          av_err2str(ret));
    ret = s_receive_all(s, err);
    if (ret)
        return ret;
    return s_settle(s, -1, err); /* the last frame has no successor */
}

static void s_scan_release(s_scan_t *s)
{
    avcodec_free_context(&s->ctx);
    avformat_close_input(&s->fmt);
    av_packet_free(&s->pkt);
    av_frame_free(&s->frame);
    sws_freeContext(s->sws);
    free(s->gray);
    free(s->thumb[0]);
    free(s->thumb[1]);
    free(s->cuts);
    sws_freeContext(s->csws);
    av_frame_free(&s->small);
    for (int p = 0; p < 3; p++)
        free(s->rgb[p]);
}

int rf_media_scenes(const rf_media_info_t *info, double threshold, int64_t **cuts, size_t *ncuts,
                    rf_color_stats_t *colors, rf_err_t *err)
{
    *cuts = NULL;
    *ncuts = 0;
    if (!(threshold >= 0 && threshold <= 1))
        return rf_err_set(err, RF_EINVAL, "scene threshold %g is outside 0..1", threshold);
    s_scan_t s = {.info = info, .threshold = threshold, .cand = -1, .last_index = -1,
                  .colors = colors};
    for (int64_t i = 0; colors && i < info->nb_frames; i++)
        colors[i].mean[0] = NAN;
    int ret;
    if (!(s.pkt = av_packet_alloc()) || !(s.frame = av_frame_alloc())) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", info->path);
        goto out;
    }
    ret = s_open(&s, err);
    if (ret)
        goto out;
    ret = s_decode(&s, err);
    if (ret)
        goto out;
    *cuts = s.cuts;
    *ncuts = s.ncuts;
    s.cuts = NULL;
out:
    s_scan_release(&s);
    return ret;
}
