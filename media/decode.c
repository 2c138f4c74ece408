/* decode.c - a decoder for the best video stream of a file: packets in, frames out in
 * presentation order with best-effort timestamps, drained at the end so no trailing frames are lost
 * (a known way to lose the last frames of every chunk). Workers use it on slices, the checksum and
 * verification code on whole files - those always on the CPU (rf_decoder_open).
 *
 * NVDEC (rf_decoder_open_mode, media.h): FFmpeg's CUDA hwaccel, as in its hw_decode.c example:
 * a CUDA device context on the device's primary context, the decoder's hw config for CUDA with
 * the HW_DEVICE_CTX method, and a get_format that picks AV_PIX_FMT_CUDA when offered. When the
 * hwaccel fails to initialise for a stream, FFmpeg calls get_format again without CUDA in the list
 * and we take the software format: that is the per-stream fallback (AV1 on Hopper and the like).
 * Without a device, av_hwdevice_ctx_create fails (FFmpeg loads libcuda at run time) and auto mode
 * decodes on the CPU from the start. Hardware frames are decoded with one thread (the hwaccel
 * serialises anyway); CPU frames with automatic threads as before.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>

#include "log.h"
#include "media_internal.h"

#define COMP "decode"
/* libavutil/hwcontext_cuda.h's AV_CUDA_USE_PRIMARY_CONTEXT; that header needs CUDA's cuda.h,
 * which media/ does not depend on. */
#define RF_AV_CUDA_USE_PRIMARY_CONTEXT (1 << 0)

struct rf_decoder {
    char *path;             /* for messages */
    AVFormatContext *fmt;
    AVCodecContext *ctx;
    AVPacket *pkt;
    int stream;             /* video stream index */
    bool input_done;        /* the demuxer hit EOF and the decoder was sent the flush packet */
    int64_t frames;         /* frames returned so far, for messages */
    AVBufferRef *hw_device; /* the CUDA device context, NULL on the CPU */
    bool hw;                /* frames come from NVDEC (until get_format says otherwise) */
    char hw_note[256];      /* why not NVDEC */
};

int rf_decode_mode_parse(const char *text, rf_decode_mode_t *out, rf_err_t *err)
{
    static const char *const names[] = {"cpu", "auto", "nvdec"};
    for (int i = 0; i < 3; i++)
        if (text && !strcmp(text, names[i])) {
            *out = (rf_decode_mode_t)i;
            return 0;
        }
    return rf_err_set(err, RF_ECONFIG, "decode '%s': expected auto, cpu or nvdec",
                      text ? text : "");
}

const char *rf_decode_mode_name(rf_decode_mode_t mode)
{
    return mode == RF_DECODE_NVDEC ? "nvdec" : mode == RF_DECODE_AUTO ? "auto" : "cpu";
}

/* CUDA when the decoder offers it and the hwaccel has not failed, else the first software
 * format (FFmpeg's list is ordered by preference). */
static enum AVPixelFormat s_get_format(AVCodecContext *ctx, const enum AVPixelFormat *fmts)
{
    rf_decoder_t *d = ctx->opaque;
    for (const enum AVPixelFormat *p = fmts; *p != AV_PIX_FMT_NONE; p++)
        if (*p == AV_PIX_FMT_CUDA && d->hw)
            return *p;
    if (d->hw) {
        d->hw = false;
        snprintf(d->hw_note, sizeof d->hw_note,
                 "NVDEC cannot decode this %s stream (%s, %dx%d); decoding on the CPU",
                 avcodec_get_name(ctx->codec_id),
                 av_get_pix_fmt_name(ctx->sw_pix_fmt) ? av_get_pix_fmt_name(ctx->sw_pix_fmt) : "?",
                 ctx->coded_width, ctx->coded_height);
        RF_INFO(COMP, "'%s': %s", d->path, d->hw_note);
    }
    for (const enum AVPixelFormat *p = fmts; *p != AV_PIX_FMT_NONE; p++) {
        const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(*p);
        if (desc && !(desc->flags & AV_PIX_FMT_FLAG_HWACCEL))
            return *p;
    }
    return AV_PIX_FMT_NONE;
}

/* Sets up ctx for NVDEC, or says in d->hw_note why not (and returns false). */
static bool s_hw_setup(rf_decoder_t *d, const AVCodec *codec, int device)
{
    const AVCodecHWConfig *cfg = NULL;
    for (int i = 0; (cfg = avcodec_get_hw_config(codec, i)) != NULL; i++)
        if (cfg->device_type == AV_HWDEVICE_TYPE_CUDA &&
            (cfg->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX))
            break;
    if (!cfg) {
        snprintf(d->hw_note, sizeof d->hw_note, "the %s decoder has no CUDA hwaccel",
                 codec->name);
        return false;
    }
    char name[16];
    snprintf(name, sizeof name, "%d", device);
    int ret = av_hwdevice_ctx_create(&d->hw_device, AV_HWDEVICE_TYPE_CUDA, name, NULL,
                                     RF_AV_CUDA_USE_PRIMARY_CONTEXT);
    if (ret < 0) {
        snprintf(d->hw_note, sizeof d->hw_note, "no CUDA device %d (%s)", device, av_err2str(ret));
        return false;
    }
    d->ctx->hw_device_ctx = av_buffer_ref(d->hw_device);
    if (!d->ctx->hw_device_ctx) {
        snprintf(d->hw_note, sizeof d->hw_note, "out of memory");
        return false;
    }
    d->ctx->opaque = d;
    d->ctx->get_format = s_get_format;
    d->ctx->extra_hw_frames = RF_DECODE_EXTRA_HW_FRAMES;
    d->hw = true;
    return true;
}

static int s_open(const char *path, rf_decode_mode_t mode, int device, rf_decoder_t **out,
                  rf_err_t *err);

int rf_decoder_open(const char *path, rf_decoder_t **out, rf_err_t *err)
{
    return s_open(path, RF_DECODE_CPU, 0, out, err);
}

int rf_decoder_open_mode(const char *path, rf_decode_mode_t mode, int device, rf_decoder_t **out,
                         rf_err_t *err)
{
    return s_open(path, mode, device, out, err);
}

bool rf_decoder_hw(const rf_decoder_t *d)
{
    return d->hw;
}

const char *rf_decoder_hw_note(const rf_decoder_t *d)
{
    return d->hw_note;
}

static int s_open(const char *path, rf_decode_mode_t mode, int device, rf_decoder_t **out,
                  rf_err_t *err)
{
    rf_decoder_t *d = calloc(1, sizeof(*d));
    int ret;

    *out = NULL;
    if (!d || !(d->path = strdup(path)) || !(d->pkt = av_packet_alloc())) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    ret = rf_media_open_input(path, &d->fmt, err);
    if (ret < 0)
        goto out;
    ret = rf_media_find_video(d->fmt, path, err);
    if (ret < 0)
        goto out;
    d->stream = ret;
    AVStream *st = d->fmt->streams[d->stream];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': no decoder for codec '%s'", path,
                         avcodec_get_name(st->codecpar->codec_id));
        goto out;
    }
    d->ctx = avcodec_alloc_context3(codec);
    if (!d->ctx) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    ret = avcodec_parameters_to_context(d->ctx, st->codecpar);
    if (ret >= 0) {
        d->ctx->pkt_timebase = st->time_base;
        d->ctx->thread_count = 0; /* automatic; decoded pixels do not depend on it */
        if (mode != RF_DECODE_CPU) {
            if (s_hw_setup(d, codec, device)) {
                d->ctx->thread_count = 1;
            } else if (mode == RF_DECODE_NVDEC) {
                ret = rf_err_set(err, RF_EUNAVAIL, "'%s': decode 'nvdec': %s", path, d->hw_note);
                goto out;
            } else {
                RF_INFO(COMP, "'%s': decoding on the CPU: %s", path, d->hw_note);
            }
        }
        /* A damaged bitstream is an error, not something to conceal: a farm must not render (or
         * accept) frames the decoder made up. The error names the frame that failed. */
        d->ctx->err_recognition |= AV_EF_EXPLODE;
        ret = avcodec_open2(d->ctx, codec, NULL);
    }
    if (ret < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot open the %s decoder (%s)", path,
                         codec->name, av_err2str(ret));
        goto out;
    }
    /* Only the video stream is read; the demuxer can skip the rest cheaply. */
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if ((int)i != d->stream)
            d->fmt->streams[i]->discard = AVDISCARD_ALL;
    *out = d;
    d = NULL;
    ret = 0;
out:
    rf_decoder_destroy(&d);
    return ret;
}

int rf_decoder_next(rf_decoder_t *d, AVFrame *frame, rf_err_t *err)
{
    av_frame_unref(frame);
    for (;;) {
        int ret = avcodec_receive_frame(d->ctx, frame);
        if (ret == 0) {
            frame->pts = frame->best_effort_timestamp;
            d->frames++;
            return 1;
        }
        if (ret == AVERROR_EOF)
            return 0;
        if (ret != AVERROR(EAGAIN))
            return rf_err_set(err, RF_EMEDIA, "'%s': decoder failed after frame %" PRId64 " (%s)",
                              d->path, d->frames, av_err2str(ret));
        if (d->input_done)
            return 0; /* cannot happen after a flush; be safe rather than spin */

        ret = av_read_frame(d->fmt, d->pkt);
        if (ret == AVERROR_EOF) {
            d->input_done = true;
            ret = avcodec_send_packet(d->ctx, NULL);
        } else if (ret < 0) {
            return rf_err_set(err, RF_EMEDIA, "'%s': read error after frame %" PRId64 " (%s)",
                              d->path, d->frames, av_err2str(ret));
        } else if (d->pkt->stream_index != d->stream) {
            av_packet_unref(d->pkt);
            continue;
        } else {
            ret = avcodec_send_packet(d->ctx, d->pkt);
            av_packet_unref(d->pkt);
        }
        if (ret < 0 && ret != AVERROR_EOF)
            return rf_err_set(err, RF_EMEDIA, "'%s': decoder failed after frame %" PRId64 " (%s)",
                              d->path, d->frames, av_err2str(ret));
    }
}

AVRational rf_decoder_time_base(const rf_decoder_t *d)
{
    return d->fmt->streams[d->stream]->time_base;
}

const AVCodecParameters *rf_decoder_params(const rf_decoder_t *d)
{
    return d->fmt->streams[d->stream]->codecpar;
}

void rf_decoder_destroy(rf_decoder_t **d)
{
    if (!d || !*d)
        return;
    avcodec_free_context(&(*d)->ctx);
    av_buffer_unref(&(*d)->hw_device);
    avformat_close_input(&(*d)->fmt);
    av_packet_free(&(*d)->pkt);
    free((*d)->path);
    free(*d);
    *d = NULL;
}
