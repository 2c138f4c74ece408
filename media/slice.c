/* slice.c - cuts the packets a worker needs for a frame range out of the source, by stream copy
 * (no decoding): from a keyframe the decoder can start at, to the last packet in decode order that
 * a frame of the range needs. The NUT file keeps the source's time base and timestamps, so the
 * worker selects frames by source PTS exactly as it would on the whole file.
 */
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

/* Scans video packets of in (already positioned) and writes from the start keyframe on.
 * Returns 1 when done, 0 when the start keyframe was not found (the seek overshot), < 0 on error. */
static int s_copy(const rf_media_info_t *info, AVFormatContext *in, AVFormatContext *outf,
                  AVPacket *pkt, int64_t start_pts, int64_t first_pts, int64_t last_pts,
                  int64_t need, rf_err_t *err)
{
    bool started = false;
    int64_t have = 0;
    AVRational in_tb = in->streams[info->video_index]->time_base;
    AVRational out_tb = outf->streams[0]->time_base;

    for (;;) {
        int ret = av_read_frame(in, pkt);
        if (ret == AVERROR_EOF)
            break;
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "'%s': read error while slicing (%s)", info->path,
                              av_err2str(ret));
        if (pkt->stream_index != info->video_index) {
            av_packet_unref(pkt);
            continue;
        }
        bool key = (pkt->flags & AV_PKT_FLAG_KEY) != 0;
        if (!started) {
            if (key && pkt->pts == start_pts) {
                started = true;
            } else if (key && pkt->pts != AV_NOPTS_VALUE && pkt->pts > start_pts) {
                av_packet_unref(pkt);
                return 0;
            } else {
                av_packet_unref(pkt);
                continue;
            }
        }
        if (pkt->pts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            return rf_err_set(err, RF_EMEDIA, "'%s': video packet without timestamp", info->path);
        }
        if (pkt->pts >= first_pts && pkt->pts <= last_pts)
            have++;
        pkt->stream_index = 0;
        pkt->pos = -1;
        av_packet_rescale_ts(pkt, in_tb, out_tb);
        ret = av_interleaved_write_frame(outf, pkt);
        av_packet_unref(pkt);
        if (ret < 0)
            return rf_err_set(err, RF_EIO, "writing the slice failed (%s)", av_err2str(ret));
        if (have == need)
            return 1;
    }
    if (!started)
        return 0;
    return rf_err_set(err, RF_EMEDIA,
                      "'%s': the file ended with %" PRId64 " of %" PRId64 " slice frames found",
                      info->path, have, need);
}

int rf_media_slice(const rf_media_info_t *info, int64_t from, int64_t to, const char *out_path,
                   rf_err_t *err)
{
    AVFormatContext *in = NULL, *outf = NULL;
    AVPacket *pkt = NULL;
    int ret;

    if (from < 0 || to <= from || to > info->nb_frames)
        return rf_err_set(err, RF_EINVAL, "'%s': slice [%" PRId64 ", %" PRId64 ") outside the "
                          "%" PRId64 " frames",
                          info->path, from, to, info->nb_frames);
    int64_t kf = rf_media_keyframe_before(info, from);
    if (info->open_gop && kf > 0)
        kf = rf_media_keyframe_before(info, kf - 1); /* leading pictures may need the GOP before */
    int64_t start_pts = info->pts[kf];

    pkt = av_packet_alloc();
    if (!pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    ret = rf_media_open_input(info->path, &in, err);
    if (ret < 0)
        goto out;
    if (info->video_index >= (int)in->nb_streams ||
        in->streams[info->video_index]->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': changed since it was probed", info->path);
        goto out;
    }
    AVStream *ist = in->streams[info->video_index];

    ret = avformat_alloc_output_context2(&outf, NULL, "nut", out_path);
    if (ret < 0 || !outf) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot create a NUT muxer (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }
    AVStream *ost = avformat_new_stream(outf, NULL);
    if (!ost || avcodec_parameters_copy(ost->codecpar, ist->codecpar) < 0) {
        ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", out_path);
        goto out;
    }
    ost->codecpar->codec_tag = 0; /* an MP4 'avc1' tag means nothing to NUT */
    ost->time_base = ist->time_base;
    ost->avg_frame_rate = ist->avg_frame_rate;
    ost->r_frame_rate = ist->r_frame_rate;
    ost->sample_aspect_ratio = ist->sample_aspect_ratio;
    outf->flags |= AVFMT_FLAG_BITEXACT;
    outf->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED; /* keep the source's timestamps */
    ret = avio_open(&outf->pb, out_path, AVIO_FLAG_WRITE);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': cannot create (%s)", out_path, av_err2str(ret));
        goto out;
    }
    ret = avformat_write_header(outf, NULL);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': cannot write the NUT header (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }

    /* Seek near the keyframe; if the demuxer lands past it (its index may be by DTS), read the
     * file from the start instead. */
    ret = av_seek_frame(in, info->video_index, start_pts, AVSEEK_FLAG_BACKWARD);
    if (ret >= 0)
        ret = s_copy(info, in, outf, pkt, start_pts, info->pts[from], info->pts[to - 1],
                     to - from, err);
    else
        ret = 0;
    if (ret == 0) {
        avformat_close_input(&in);
        ret = rf_media_open_input(info->path, &in, err);
        if (ret < 0)
            goto out;
        ret = s_copy(info, in, outf, pkt, start_pts, info->pts[from], info->pts[to - 1],
                     to - from, err);
        if (ret == 0)
            ret = rf_err_set(err, RF_EMEDIA, "'%s': keyframe %" PRId64 " (pts %" PRId64
                             ") not found; the file changed since it was probed",
                             info->path, kf, start_pts);
    }
    if (ret < 0)
        goto out;
    ret = av_write_trailer(outf);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': writing the trailer failed (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }
    ret = avio_closep(&outf->pb);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': close failed (%s)", out_path, av_err2str(ret));
        goto out;
    }
    ret = 0;
out:
    if (outf) {
        avio_closep(&outf->pb);
        avformat_free_context(outf);
    }
    avformat_close_input(&in);
    av_packet_free(&pkt);
    return ret;
}
