/* decode.c - a CPU decoder for the best video stream of a file: packets in, frames out in
 * presentation order with best-effort timestamps, drained at the end so no trailing frames are lost
 * (a known way to lose the last frames of every chunk). Workers use it on slices, the checksum and
 * verification code on whole files.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

struct rf_decoder {
    char *path;             /* for messages */
    AVFormatContext *fmt;
    AVCodecContext *ctx;
    AVPacket *pkt;
    int stream;             /* video stream index */
    bool input_done;        /* the demuxer hit EOF and the decoder was sent the flush packet */
    int64_t frames;         /* frames returned so far, for messages */
};

int rf_decoder_open(const char *path, rf_decoder_t **out, rf_err_t *err)
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
    avformat_close_input(&(*d)->fmt);
    av_packet_free(&(*d)->pkt);
    free((*d)->path);
    free(*d);
    *d = NULL;
}
