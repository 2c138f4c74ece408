/* probe.c - opens a source once and builds the frame index everything else works from: the sorted
 * PTS table (global frame index -> timestamp), the keyframes, and the hazards that change how a
 * source may be cut (open GOPs, variable frame rate, rotation). Only packets are read; one frame is
 * decoded to learn the real pixel format and prove the stream decodes at all.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/display.h>
#include <libavutil/pixdesc.h>

#include "media_internal.h"

/* One video packet in decode order, as the index pass sees it. */
typedef struct s_packet {
    int64_t pts;
    bool key;
} s_packet_t;

int rf_media_open_input(const char *path, AVFormatContext **out, rf_err_t *err)
{
    AVFormatContext *fmt = NULL;
    int ret = avformat_open_input(&fmt, path, NULL, NULL);
    if (ret == AVERROR(ENOENT))
        return rf_err_set(err, RF_ENOENT, "'%s': no such file", path);
    if (ret < 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': not a media file (%s)", path, av_err2str(ret));
    ret = avformat_find_stream_info(fmt, NULL);
    if (ret < 0) {
        avformat_close_input(&fmt);
        return rf_err_set(err, RF_EMEDIA, "'%s': cannot read stream info (%s)", path,
                          av_err2str(ret));
    }
    *out = fmt;
    return 0;
}

int rf_media_find_video(AVFormatContext *fmt, const char *path, rf_err_t *err)
{
    int idx = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (idx < 0)
        return rf_err_set(err, RF_EMEDIA, "'%s': no video stream", path);
    return idx;
}

int64_t rf_media_pts_index(const rf_media_info_t *info, int64_t pts)
{
    int64_t lo = 0, hi = info->nb_frames - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (info->pts[mid] == pts)
            return mid;
        if (info->pts[mid] < pts)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Feeds one packet to the decoder and tries to take a frame: sets *decoded once one comes out.
 * pkt NULL drains. Decoder errors on early packets are not fatal (a stream may start with
 * undecodable leading pictures); only "no frame at all" is. */
static void s_try_decode(AVCodecContext *dec, const AVPacket *pkt, AVFrame *frame, int *pix_fmt,
                         bool *decoded, int *last_error)
{
    int ret = avcodec_send_packet(dec, pkt);
    if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
        *last_error = ret;
    while (!*decoded) {
        ret = avcodec_receive_frame(dec, frame);
        if (ret < 0) {
            if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
                *last_error = ret;
            break;
        }
        *pix_fmt = frame->format;
        *decoded = true;
        av_frame_unref(frame);
    }
}

static int s_grow(s_packet_t **packets, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 4096;
    while (ncap < need)
        ncap *= 2;
    s_packet_t *p = realloc(*packets, ncap * sizeof(*p));
    if (!p)
        return RF_ENOMEM;
    *packets = p;
    *cap = ncap;
    return 0;
}

int rf_media_probe(const char *path, rf_media_info_t **out, rf_err_t *err)
{
    AVFormatContext *fmt = NULL;
    AVCodecContext *dec = NULL;
    AVPacket *pkt = NULL;
    AVFrame *frame = NULL;
    rf_media_info_t *info = NULL;
    s_packet_t *packets = NULL;
    size_t npackets = 0, cap = 0;
    int ret;

    *out = NULL;
    ret = rf_media_open_input(path, &fmt, err);
    if (ret < 0)
        goto out;
    ret = rf_media_find_video(fmt, path, err);
    if (ret < 0)
        goto out;
    int vidx = ret;
    AVStream *st = fmt->streams[vidx];
    AVCodecParameters *par = st->codecpar;

    info = calloc(1, sizeof(*info));
    if (!info || !(info->path = strdup(path))) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    snprintf(info->format_name, sizeof(info->format_name), "%s", fmt->iformat->name);
    snprintf(info->codec_name, sizeof(info->codec_name), "%s", avcodec_get_name(par->codec_id));
    info->video_index = vidx;
    info->width = par->width;
    info->height = par->height;
    info->pix_fmt = par->format;
    info->time_base = st->time_base;
    info->frame_rate = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0
                           ? st->avg_frame_rate
                           : st->r_frame_rate;
    info->sample_aspect_ratio = par->sample_aspect_ratio;
    info->color_range = par->color_range;
    info->color_primaries = par->color_primaries;
    info->color_trc = par->color_trc;
    info->color_space = par->color_space;
    info->chroma_location = par->chroma_location;
    if (info->width <= 0 || info->height <= 0 || info->time_base.num <= 0 ||
        info->time_base.den <= 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': video stream has no size or time base", path);
        goto out;
    }

    size_t dm_size = 0;
    const uint8_t *dm = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &dm_size);
    if (dm && dm_size >= 9 * sizeof(int32_t)) {
        double r = av_display_rotation_get((const int32_t *)dm);
        info->rotation = isnan(r) || r == 0.0 ? 0.0 : r;
    }

    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': no decoder for codec '%s'", path,
                         info->codec_name);
        goto out;
    }
    dec = avcodec_alloc_context3(codec);
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!dec || !pkt || !frame) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    ret = avcodec_parameters_to_context(dec, par);
    if (ret >= 0) {
        dec->pkt_timebase = st->time_base;
        ret = avcodec_open2(dec, codec, NULL);
    }
    if (ret < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot open the %s decoder (%s)", path,
                         info->codec_name, av_err2str(ret));
        goto out;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            info->naudio++;

    bool decoded = false;
    int decode_error = 0;
    for (;;) {
        ret = av_read_frame(fmt, pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0) {
            ret = rf_err_set(err, RF_EMEDIA, "'%s': read error after %zu video packets (%s)",
                             path, npackets, av_err2str(ret));
            goto out;
        }
        AVStream *pst = fmt->streams[pkt->stream_index];
        if (pst->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            info->audio_packets++;
        if (pkt->stream_index != vidx) {
            av_packet_unref(pkt);
            continue;
        }
        if (pkt->pts == AV_NOPTS_VALUE) {
            ret = rf_err_set(err, RF_EMEDIA,
                             "'%s': video packet %zu has no presentation timestamp; remux the "
                             "source into MKV or MP4 first",
                             path, npackets);
            goto out;
        }
        if (npackets >= RF_MEDIA_MAX_FRAMES) {
            ret = rf_err_set(err, RF_ETOOBIG, "'%s': more than %d video frames", path,
                             RF_MEDIA_MAX_FRAMES);
            goto out;
        }
        if (s_grow(&packets, &cap, npackets + 1) < 0) {
            ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory indexing packets", path);
            goto out;
        }
        packets[npackets].pts = pkt->pts;
        packets[npackets].key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        npackets++;
        if (!decoded)
            s_try_decode(dec, pkt, frame, &info->pix_fmt, &decoded, &decode_error);
        av_packet_unref(pkt);
    }
    if (!decoded)
        s_try_decode(dec, NULL, frame, &info->pix_fmt, &decoded, &decode_error);
    if (npackets == 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': the video stream has no frames", path);
        goto out;
    }
    if (!decoded) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': the %s video stream does not decode (%s)", path,
                         info->codec_name,
                         decode_error ? av_err2str(decode_error) : "no frame came out");
        goto out;
    }

    info->nb_frames = (int64_t)npackets;
    info->pts = malloc(npackets * sizeof(int64_t));
    info->keyframes = malloc(npackets * sizeof(int64_t));
    if (!info->pts || !info->keyframes) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
        goto out;
    }
    for (size_t i = 0; i < npackets; i++)
        info->pts[i] = packets[i].pts;
    qsort(info->pts, npackets, sizeof(int64_t), s_cmp_i64);
    for (size_t i = 1; i < npackets; i++) {
        if (info->pts[i] == info->pts[i - 1]) {
            ret = rf_err_set(err, RF_EMEDIA,
                             "'%s': two video frames share the timestamp %" PRId64 " (frame %zu)",
                             path, info->pts[i], i);
            goto out;
        }
    }

    /* Keyframes by presentation index; open GOP when a later packet in decode order (before the
     * next keyframe) shows before its keyframe, i.e. leading pictures that may need the previous
     * GOP. */
    int64_t last_key_pts = AV_NOPTS_VALUE;
    for (size_t i = 0; i < npackets; i++) {
        if (packets[i].key) {
            info->keyframes[info->nkeyframes++] = rf_media_pts_index(info, packets[i].pts);
            last_key_pts = packets[i].pts;
        } else if (last_key_pts != AV_NOPTS_VALUE && packets[i].pts < last_key_pts) {
            info->open_gop = true;
        }
    }
    if (info->nkeyframes == 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': the video stream has no keyframe", path);
        goto out;
    }
    qsort(info->keyframes, info->nkeyframes, sizeof(int64_t), s_cmp_i64);

    AVRational tb = info->time_base;
    if (info->frame_rate.num > 0 && info->frame_rate.den > 0)
        info->frame_duration = av_rescale_q(1, av_inv_q(info->frame_rate), tb);
    else if (npackets > 1)
        info->frame_duration = (info->pts[npackets - 1] - info->pts[0]) / (int64_t)(npackets - 1);
    if (info->frame_duration <= 0)
        info->frame_duration = 1;
    if (npackets > 2) {
        int64_t dmin = INT64_MAX, dmax = 0;
        for (size_t i = 1; i < npackets; i++) {
            int64_t d = info->pts[i] - info->pts[i - 1];
            dmin = d < dmin ? d : dmin;
            dmax = d > dmax ? d : dmax;
        }
        info->vfr = dmax - dmin > 1;
    }
    info->duration_s =
        (double)(info->pts[npackets - 1] + info->frame_duration - info->pts[0]) * av_q2d(tb);

    *out = info;
    info = NULL;
    ret = 0;
out:
    free(packets);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    avformat_close_input(&fmt);
    rf_media_info_destroy(&info);
    return ret;
}

void rf_media_info_destroy(rf_media_info_t **info)
{
    if (!info || !*info)
        return;
    free((*info)->path);
    free((*info)->pts);
    free((*info)->keyframes);
    free(*info);
    *info = NULL;
}

int64_t rf_media_keyframe_before(const rf_media_info_t *info, int64_t frame)
{
    int64_t best = 0;
    size_t lo = 0, hi = info->nkeyframes;
    /* last keyframe <= frame */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (info->keyframes[mid] <= frame) {
            best = info->keyframes[mid];
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return best;
}
