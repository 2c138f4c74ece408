/* encode.c - the chunk encoder: frames in, a NUT file of packets out, with settings that make
 * every chunk of a job stream-copyable into one output (DESIGN §5): global headers (identical
 * extradata in every chunk, checked by the stitcher), closed GOPs, keyframes only at GOP multiples
 * (no scene-cut keyframes), the first frame an IDR, time base 1/frame_rate and frame->pts the
 * chunk-local index so the stitcher can map every packet back to a global frame index.
 */
#include <stdlib.h>
#include <string.h>

#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>

#include "media_internal.h"

#define RF_ENCODER_OPT_MAX 4096 /* longest merged x264/x265/svtav1 params string */

struct rf_encoder {
    char codec[64];           /* encoder name, for messages */
    char *path;
    AVCodecContext *ctx;      /* FFmpeg's encoder; NULL when x264 is driven directly */
    rf_x264_t *x264;          /* libx264 driven directly (x264enc.c); NULL otherwise */
    AVFrame *recon;           /* x264's reconstruction of the last packet's picture */
    rf_encoder_recon_fn on_recon;
    void *on_recon_arg;
    int width, height, pix_fmt;
    AVRational time_base;     /* of the packets the encoder makes: 1/frame_rate */
    AVFormatContext *fmt;
    AVStream *st;
    AVPacket *pkt;
    AVFrame *frame;           /* our reference to the caller's frame, with our pts and type */
    int64_t next_pts;         /* local index the next frame must carry */
    rf_encoder_packet_fn on_packet; /* sees every packet before the muxer takes it (may be NULL) */
    void *on_packet_arg;
    bool header_written;
    bool finished;
};

/* Settings that keep keyframes where the GOP puts them and every GOP closed, per encoder. The
 * user's own "<name>-params" value is appended, so it can add to but is told what we rely on. */
typedef struct s_params_default {
    const char *option;   /* private AVOption holding a key=value:... string */
    const char *value;
} s_params_default_t;

static const s_params_default_t s_params_defaults[] = {
    {"x264-params", "scenecut=0:open-gop=0"},
    /* info=0: x265's informational SEI, part of the global headers, lists the thread and pool
     * counts, so workers with different core counts would make different extradata and their
     * chunks could not be stitched. */
    {"x265-params", "scenecut=0:open-gop=0:repeat-headers=0:info=0:log-level=error"},
    {"svtav1-params", "scd=0"},
};

static bool s_has_opt(const AVCodecContext *ctx, const char *name)
{
    return ctx->priv_data &&
           av_opt_find((void *)ctx->priv_data, name, NULL, 0, AV_OPT_SEARCH_CHILDREN) != NULL;
}

static bool s_supports_pix_fmt(const AVCodec *codec, int pix_fmt)
{
    if (!codec->pix_fmts)
        return true; /* the encoder does not say; avcodec_open2 will refuse if it must */
    for (const enum AVPixelFormat *f = codec->pix_fmts; *f != AV_PIX_FMT_NONE; f++)
        if (*f == pix_fmt)
            return true;
    return false;
}

/* Hands e->pkt (timestamps in e->time_base) to the packet hook, then to the muxer. */
static int s_mux(rf_encoder_t *e, rf_err_t *err)
{
    e->pkt->stream_index = e->st->index;
    av_packet_rescale_ts(e->pkt, e->time_base, e->st->time_base);
    if (e->on_packet) {
        int ret = e->on_packet(e->on_packet_arg, e->pkt, err);
        if (ret < 0) {
            av_packet_unref(e->pkt);
            return ret;
        }
    }
    int ret = av_interleaved_write_frame(e->fmt, e->pkt);
    if (ret < 0)
        return rf_err_set(err, RF_EIO, "'%s': writing a %s packet failed (%s)", e->path,
                          e->codec, av_err2str(ret));
    return 0;
}

static int s_write_packets(rf_encoder_t *e, rf_err_t *err)
{
    for (;;) {
        int ret = avcodec_receive_packet(e->ctx, e->pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "encoder '%s' failed (%s)", e->codec,
                              av_err2str(ret));
        if ((ret = s_mux(e, err)) < 0)
            return ret;
    }
}

/* One step of the direct x264 encoder (frame NULL: drain): its packet to the muxer, its
 * reconstruction to the hook. */
static int s_x264_step(rf_encoder_t *e, const AVFrame *frame, rf_err_t *err)
{
    int ret = rf_x264_encode(e->x264, frame, e->pkt, e->on_recon ? e->recon : NULL, err);
    if (ret <= 0)
        return ret;
    if (e->on_recon) {
        ret = e->on_recon(e->on_recon_arg, e->recon, err);
        av_frame_unref(e->recon);
        if (ret < 0) {
            av_packet_unref(e->pkt);
            return ret;
        }
    }
    return s_mux(e, err);
}

/* Our defaults for option d followed by the user's own value of it, ':'-joined, into merged. */
static int s_merge_params(const rf_encode_params_t *p, const s_params_default_t *d, char *merged,
                          size_t size, rf_err_t *err)
{
    const char *user = NULL;
    for (size_t k = 0; k < p->nopts; k++)
        if (p->opt_keys[k] && strcmp(p->opt_keys[k], d->option) == 0)
            user = p->opt_values[k];
    int n = snprintf(merged, size, "%s%s%s", d->value, user && *user ? ":" : "", user ? user : "");
    if (n < 0 || (size_t)n >= size)
        return rf_err_set(err, RF_ETOOBIG, "encoder '%s': option '%s' is too long", p->codec,
                          d->option);
    return 0;
}

/* Builds the options for avcodec_open2 from p. */
static int s_options(const rf_encode_params_t *p, AVCodecContext *ctx, AVDictionary **opts,
                     rf_err_t *err)
{
    char buf[32];
    if (p->crf >= 0) {
        snprintf(buf, sizeof(buf), "%d", p->crf);
        av_dict_set(opts, "crf", buf, 0);
    }
    if (p->preset)
        av_dict_set(opts, "preset", p->preset, 0);
    for (size_t i = 0; i < sizeof(s_params_defaults) / sizeof(s_params_defaults[0]); i++) {
        const s_params_default_t *d = &s_params_defaults[i];
        if (!s_has_opt(ctx, d->option))
            continue;
        char merged[RF_ENCODER_OPT_MAX];
        int rc = s_merge_params(p, d, merged, sizeof(merged), err);
        if (rc < 0)
            return rc;
        av_dict_set(opts, d->option, merged, 0);
    }
    if (s_has_opt(ctx, "sc_detection"))
        av_dict_set(opts, "sc_detection", "0", 0); /* libsvtav1's own switch */
    for (size_t k = 0; k < p->nopts; k++) {
        if (!p->opt_keys[k] || !p->opt_values[k])
            return rf_err_set(err, RF_EINVAL, "encoder '%s': option %zu has no name or value",
                              p->codec, k);
        if (av_dict_get(*opts, p->opt_keys[k], NULL, 0) &&
            strstr(p->opt_keys[k], "-params") != NULL)
            continue; /* merged above */
        av_dict_set(opts, p->opt_keys[k], p->opt_values[k], 0);
    }
    return 0;
}

int rf_encoder_open(const rf_encode_params_t *p, const char *out_path, rf_encoder_t **out,
                    rf_err_t *err)
{
    rf_encoder_t *e = NULL;
    AVDictionary *opts = NULL;
    int ret;

    *out = NULL;
    const AVCodec *codec = avcodec_find_encoder_by_name(p->codec);
    if (!codec) {
        ret = rf_err_set(err, RF_EUNAVAIL, "encoder '%s' failed to open: no such encoder",
                         p->codec);
        goto out;
    }
    const char *pix_name = av_get_pix_fmt_name(p->pix_fmt);
    if (!pix_name) {
        ret = rf_err_set(err, RF_EINVAL, "encoder '%s': invalid pixel format %d", p->codec,
                         p->pix_fmt);
        goto out;
    }
    if (!s_supports_pix_fmt(codec, p->pix_fmt)) {
        ret = rf_err_set(err, RF_EMEDIA,
                         "encoder '%s' does not support pixel format '%s' (frames are encoded in "
                         "their own format, without conversion)",
                         p->codec, pix_name);
        goto out;
    }
    if (p->width <= 0 || p->height <= 0 || p->frame_rate.num <= 0 || p->frame_rate.den <= 0) {
        ret = rf_err_set(err, RF_EINVAL, "encoder '%s': size %dx%d or frame rate %d/%d invalid",
                         p->codec, p->width, p->height, p->frame_rate.num, p->frame_rate.den);
        goto out;
    }

    e = calloc(1, sizeof(*e));
    if (!e || !(e->path = strdup(out_path)) || !(e->pkt = av_packet_alloc()) ||
        !(e->frame = av_frame_alloc())) {
        ret = rf_err_set(err, RF_ENOMEM, "encoder '%s': out of memory", p->codec);
        goto out;
    }
    snprintf(e->codec, sizeof(e->codec), "%s", p->codec);
    e->width = p->width;
    e->height = p->height;
    e->pix_fmt = p->pix_fmt;
    e->time_base = av_inv_q(p->frame_rate);

    ret = avformat_alloc_output_context2(&e->fmt, NULL, "nut", out_path);
    if (ret < 0 || !e->fmt) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot create a NUT muxer (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }
    e->st = avformat_new_stream(e->fmt, NULL);
    if (!e->st) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", out_path);
        goto out;
    }

    if (rf_x264_usable(p)) {
        char merged[RF_ENCODER_OPT_MAX];
        ret = s_merge_params(p, &s_params_defaults[0], merged, sizeof(merged), err);
        if (ret < 0 || (ret = rf_x264_open(p, merged, e->st->codecpar, &e->x264, err)) < 0)
            goto out;
        e->st->sample_aspect_ratio = e->st->codecpar->sample_aspect_ratio;
    } else {
        if (!(e->ctx = avcodec_alloc_context3(codec))) {
            ret = rf_err_set(err, RF_ENOMEM, "encoder '%s': out of memory", p->codec);
            goto out;
        }
        AVCodecContext *c = e->ctx;
        c->width = p->width;
        c->height = p->height;
        c->pix_fmt = p->pix_fmt;
        c->time_base = e->time_base;
        c->framerate = p->frame_rate;
        if (p->sample_aspect_ratio.num > 0 && p->sample_aspect_ratio.den > 0)
            c->sample_aspect_ratio = p->sample_aspect_ratio;
        c->color_range = p->color_range;
        c->color_primaries = p->color_primaries;
        c->color_trc = p->color_trc;
        c->colorspace = p->color_space;
        c->chroma_sample_location = p->chroma_location;
        if (p->gop > 0)
            c->gop_size = p->gop;
        if (p->bitrate > 0)
            c->bit_rate = p->bitrate;
        c->thread_count = p->threads;
        c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER | AV_CODEC_FLAG_CLOSED_GOP;

        ret = s_options(p, c, &opts, err);
        if (ret < 0)
            goto out;
        ret = avcodec_open2(c, codec, &opts);
        if (ret < 0) {
            ret = rf_err_set(err, RF_EMEDIA, "encoder '%s' failed to open: %s", p->codec,
                             av_err2str(ret));
            goto out;
        }
        const AVDictionaryEntry *left = av_dict_get(opts, "", NULL, AV_DICT_IGNORE_SUFFIX);
        if (left) {
            ret = rf_err_set(err, RF_EINVAL, "encoder '%s' has no option '%s'", p->codec,
                             left->key);
            goto out;
        }
        ret = avcodec_parameters_from_context(e->st->codecpar, c);
        if (ret < 0) {
            ret = rf_err_set(err, RF_EMEDIA, "'%s': %s", out_path, av_err2str(ret));
            goto out;
        }
        e->st->sample_aspect_ratio = c->sample_aspect_ratio;
    }
    e->st->time_base = e->time_base;
    e->st->avg_frame_rate = p->frame_rate;
    e->st->r_frame_rate = p->frame_rate;
    ret = avio_open(&e->fmt->pb, out_path, AVIO_FLAG_WRITE);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': cannot create (%s)", out_path, av_err2str(ret));
        goto out;
    }
    /* bitexact keeps the libavformat version string out of the file: chunks written by workers
     * with different builds stay byte-comparable. */
    e->fmt->flags |= AVFMT_FLAG_BITEXACT;
    /* Left on "auto", the muxer would shift every timestamp by the B-frame delay (negative first
     * DTS) and local pts 0 would no longer mean local frame 0. */
    e->fmt->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    ret = avformat_write_header(e->fmt, NULL);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': cannot write the NUT header (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }
    e->header_written = true;
    *out = e;
    e = NULL;
    ret = 0;
out:
    av_dict_free(&opts);
    rf_encoder_destroy(&e);
    return ret;
}

int rf_encoder_write(rf_encoder_t *e, const AVFrame *frame, rf_err_t *err)
{
    if (e->finished)
        return rf_err_set(err, RF_EINVAL, "encoder '%s': write after finish", e->codec);
    if (frame->format != e->pix_fmt || frame->width != e->width || frame->height != e->height) {
        const char *got = av_get_pix_fmt_name(frame->format);
        return rf_err_set(err, RF_EINVAL,
                          "encoder '%s': frame %" PRId64 " is %dx%d %s, the encoder was opened "
                          "for %dx%d %s",
                          e->codec, e->next_pts, frame->width, frame->height, got ? got : "?",
                          e->width, e->height, av_get_pix_fmt_name(e->pix_fmt));
    }
    if (frame->pts != e->next_pts)
        return rf_err_set(err, RF_EINVAL,
                          "encoder '%s': frame pts %" PRId64 " is not the next local index %" PRId64,
                          e->codec, frame->pts, e->next_pts);
    if (e->x264) {
        int rc = s_x264_step(e, frame, err);
        if (rc < 0)
            return rf_err_prefix(err, "local frame %" PRId64 ": ", e->next_pts);
        e->next_pts++;
        return 0;
    }
    int ret = av_frame_ref(e->frame, frame);
    if (ret < 0)
        return rf_err_set(err, RF_ENOMEM, "encoder '%s': %s", e->codec, av_err2str(ret));
    /* A decoded frame carries the source's picture type, and libx264/x265 obey it as a forced
     * frame type: source keyframes would appear at source positions. The GOP decides instead. */
    e->frame->pict_type = AV_PICTURE_TYPE_NONE;
    e->frame->key_frame = 0;
    ret = avcodec_send_frame(e->ctx, e->frame);
    av_frame_unref(e->frame);
    if (ret < 0)
        return rf_err_set(err, RF_EMEDIA, "encoder '%s' failed at local frame %" PRId64 " (%s)",
                          e->codec, e->next_pts, av_err2str(ret));
    e->next_pts++;
    return s_write_packets(e, err);
}

int rf_encoder_finish(rf_encoder_t *e, rf_err_t *err)
{
    if (e->finished)
        return 0;
    e->finished = true;
    int ret;
    if (e->x264) {
        while (rf_x264_delayed(e->x264) > 0)
            if ((ret = s_x264_step(e, NULL, err)) < 0)
                return ret;
    } else {
        ret = avcodec_send_frame(e->ctx, NULL);
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "encoder '%s': flush failed (%s)", e->codec,
                              av_err2str(ret));
        ret = s_write_packets(e, err);
        if (ret < 0)
            return ret;
    }
    ret = av_write_trailer(e->fmt);
    e->header_written = false;
    if (ret < 0)
        return rf_err_set(err, RF_EIO, "'%s': writing the trailer failed (%s)", e->path,
                          av_err2str(ret));
    ret = avio_closep(&e->fmt->pb);
    if (ret < 0)
        return rf_err_set(err, RF_EIO, "'%s': close failed (%s)", e->path, av_err2str(ret));
    return 0;
}

void rf_encoder_on_packet(rf_encoder_t *e, rf_encoder_packet_fn fn, void *arg)
{
    e->on_packet = fn;
    e->on_packet_arg = arg;
}

int rf_encoder_on_recon(rf_encoder_t *e, rf_encoder_recon_fn fn, void *arg)
{
    if (!e->x264)
        return RF_EUNAVAIL;
    if (!e->recon && !(e->recon = av_frame_alloc()))
        return RF_ENOMEM;
    e->on_recon = fn;
    e->on_recon_arg = arg;
    return 0;
}

const AVCodecParameters *rf_encoder_params(const rf_encoder_t *e)
{
    return e->st->codecpar;
}

AVRational rf_encoder_time_base(const rf_encoder_t *e)
{
    return e->st->time_base;
}

void rf_encoder_destroy(rf_encoder_t **pe)
{
    if (!pe || !*pe)
        return;
    rf_encoder_t *e = *pe;
    if (e->fmt) {
        if (e->fmt->pb)
            avio_closep(&e->fmt->pb);
        avformat_free_context(e->fmt);
    }
    avcodec_free_context(&e->ctx);
    rf_x264_close(&e->x264);
    av_frame_free(&e->recon);
    av_packet_free(&e->pkt);
    av_frame_free(&e->frame);
    free(e->path);
    free(e);
    *pe = NULL;
}

int rf_encoder_probe(const char *codec_name, rf_err_t *err)
{
    AVCodecContext *c = NULL;
    AVFrame *frame = NULL;
    AVPacket *pkt = NULL;
    int ret;

    const AVCodec *codec = avcodec_find_encoder_by_name(codec_name);
    if (!codec) {
        ret = rf_err_set(err, RF_EUNAVAIL, "encoder '%s': no such encoder", codec_name);
        goto out;
    }
    c = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();
    pkt = av_packet_alloc();
    if (!c || !frame || !pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "encoder '%s': out of memory", codec_name);
        goto out;
    }
    /* Large enough for hardware encoders' minimum sizes, small enough to be instant. */
    c->width = 256;
    c->height = 144;
    c->pix_fmt = codec->pix_fmts ? codec->pix_fmts[0] : AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, 25};
    c->framerate = (AVRational){25, 1};
    /* One thread, no pools: a probe answers whether the encoder opens and encodes, and each
     * encoder's own thread start-up (SVT-AV1 starts dozens) is what makes probes slow on a loaded
     * host. x265 prints a banner on every open through its own logger, not av_log. */
    c->thread_count = 1;
    AVDictionary *probe_opts = NULL;
    if (s_has_opt(c, "x265-params"))
        av_dict_set(&probe_opts, "x265-params", "log-level=error:pools=none:frame-threads=1", 0);
    if (s_has_opt(c, "svtav1-params"))
        av_dict_set(&probe_opts, "svtav1-params", "lp=1", 0);
    ret = avcodec_open2(c, codec, &probe_opts);
    av_dict_free(&probe_opts);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EUNAVAIL, "encoder '%s' failed to open: %s", codec_name,
                         av_err2str(ret));
        goto out;
    }
    frame->format = c->pix_fmt;
    frame->width = c->width;
    frame->height = c->height;
    frame->pts = 0;
    ret = av_frame_get_buffer(frame, 0);
    if (ret >= 0 && !(av_pix_fmt_desc_get(c->pix_fmt)->flags & AV_PIX_FMT_FLAG_HWACCEL)) {
        for (int i = 0; i < AV_NUM_DATA_POINTERS && frame->buf[i]; i++)
            memset(frame->buf[i]->data, 0x80, frame->buf[i]->size);
    }
    if (ret >= 0)
        ret = avcodec_send_frame(c, frame);
    if (ret >= 0)
        ret = avcodec_send_frame(c, NULL);
    while (ret >= 0) {
        ret = avcodec_receive_packet(c, pkt);
        av_packet_unref(pkt);
    }
    if (ret != AVERROR_EOF) {
        ret = rf_err_set(err, RF_EUNAVAIL, "encoder '%s' failed on a test frame: %s", codec_name,
                         av_err2str(ret));
        goto out;
    }
    ret = 0;
out:
    av_packet_free(&pkt);
    av_frame_free(&frame);
    avcodec_free_context(&c);
    return ret;
}
