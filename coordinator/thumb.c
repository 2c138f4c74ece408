/* thumb.c - one frame of a file as a JPEG (see thumb.h). */
#include "thumb.h"

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "media.h"

/* Scales frame to width x (aspect-kept) height in yuvj420p and encodes it as one JPEG. */
static int s_encode(const AVFrame *src, int width, uint8_t **jpeg, size_t *len, rf_err_t *err)
{
    AVCodecContext *ctx = NULL;
    struct SwsContext *sws = NULL;
    AVFrame *dst = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    int ret;

    AVRational sar =
        src->sample_aspect_ratio.num > 0 ? src->sample_aspect_ratio : (AVRational){1, 1};
    double display_w = (double)src->width * sar.num / sar.den;
    int height = (int)((double)width * src->height / display_w + 0.5);
    height += height & 1;
    if (height < 2)
        height = 2;
    if (!dst || !pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory making a thumbnail");
        goto out;
    }
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    if (!codec || !(ctx = avcodec_alloc_context3(codec))) {
        ret = rf_err_set(err, RF_EMEDIA, "no mjpeg encoder in this FFmpeg build");
        goto out;
    }
    ctx->width = width;
    ctx->height = height;
    ctx->pix_fmt = AV_PIX_FMT_YUVJ420P;
    ctx->time_base = (AVRational){1, 25};
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 4; /* good quality at thumbnail sizes */
    ret = avcodec_open2(ctx, codec, NULL);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "cannot open the mjpeg encoder (%s)", av_err2str(ret));
        goto out;
    }
    dst->format = AV_PIX_FMT_YUVJ420P;
    dst->width = width;
    dst->height = height;
    if ((ret = av_frame_get_buffer(dst, 0)) < 0) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory making a thumbnail");
        goto out;
    }
    sws = sws_getContext(src->width, src->height, src->format, width, height, AV_PIX_FMT_YUVJ420P,
                         SWS_BICUBIC, NULL, NULL, NULL);
    if (!sws) {
        ret = rf_err_set(err, RF_EMEDIA, "cannot scale %s frames to a thumbnail",
                         av_get_pix_fmt_name(src->format) ? av_get_pix_fmt_name(src->format) : "?");
        goto out;
    }
    sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
              dst->linesize);
    dst->pts = 0;
    ret = avcodec_send_frame(ctx, dst);
    if (ret >= 0)
        ret = avcodec_send_frame(ctx, NULL);
    if (ret >= 0)
        ret = avcodec_receive_packet(ctx, pkt);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "mjpeg encoding failed (%s)", av_err2str(ret));
        goto out;
    }
    *jpeg = malloc((size_t)pkt->size);
    if (!*jpeg) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory making a thumbnail");
        goto out;
    }
    memcpy(*jpeg, pkt->data, (size_t)pkt->size);
    *len = (size_t)pkt->size;
    ret = 0;
out:
    sws_freeContext(sws);
    avcodec_free_context(&ctx);
    av_frame_free(&dst);
    av_packet_free(&pkt);
    return ret;
}

int rf_thumb_jpeg(const char *path, int64_t index, int width, uint8_t **jpeg, size_t *len,
                  rf_err_t *err)
{
    rf_decoder_t *dec = NULL;
    AVFrame *frame = av_frame_alloc(), *last = av_frame_alloc();
    int64_t n = 0;
    int ret;

    *jpeg = NULL;
    *len = 0;
    if (index < 0)
        index = 0;
    if (width < 16 || width > RF_THUMB_MAX_WIDTH) {
        ret = rf_err_set(err, RF_EINVAL, "thumbnail width %d is outside 16..%d", width,
                         RF_THUMB_MAX_WIDTH);
        goto out;
    }
    if (index >= RF_THUMB_MAX_DECODE) {
        ret = rf_err_set(err, RF_ETOOBIG, "frame %lld is past the %d frames a preview decodes",
                         (long long)index, RF_THUMB_MAX_DECODE);
        goto out;
    }
    if (!frame || !last) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory making a thumbnail");
        goto out;
    }
    ret = rf_decoder_open(path, &dec, err);
    if (ret < 0)
        goto out;
    /* Keep the latest decoded frame so a file shorter than index still gives its last one. */
    while ((ret = rf_decoder_next(dec, frame, err)) == 1) {
        av_frame_unref(last);
        av_frame_move_ref(last, frame);
        if (n++ == index)
            break;
    }
    if (ret < 0)
        goto out;
    if (n == 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s' has no video frame", path);
        goto out;
    }
    ret = s_encode(last, width, jpeg, len, err);
out:
    rf_decoder_destroy(&dec);
    av_frame_free(&frame);
    av_frame_free(&last);
    return ret;
}
