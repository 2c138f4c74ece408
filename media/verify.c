/* verify.c - checks a stitched output against its source without decoding (DESIGN §5): the frame
 * count, the duration within half a frame, strictly increasing timestamps, and the audio packets
 * byte-identical and in the same order as the source's. Pixel checks are rf_media_checksum's job.
 */
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

#define RF_VERIFY_MAX_AUDIO_STREAMS 64 /* audio streams compared; more is refused */

/* One audio packet's identity: its size and the SHA-256 of its bytes. */
typedef struct s_audio_id {
    int64_t size;
    uint8_t sha[RF_SHA256_LEN];
} s_audio_id_t;

typedef struct s_audio_list {
    s_audio_id_t *ids;
    size_t n, cap;
} s_audio_list_t;

static int s_audio_push(s_audio_list_t *l, const AVPacket *pkt)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        s_audio_id_t *p = realloc(l->ids, ncap * sizeof(*p));
        if (!p)
            return RF_ENOMEM;
        l->ids = p;
        l->cap = ncap;
    }
    l->ids[l->n].size = pkt->size;
    rf_sha256(pkt->data, (size_t)pkt->size, l->ids[l->n].sha);
    l->n++;
    return 0;
}

/* Reads every audio packet of path into lists[audio stream ordinal]. */
static int s_read_audio(const char *path, s_audio_list_t *lists, int *naudio, rf_err_t *err)
{
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    int ordinal[RF_VERIFY_MAX_AUDIO_STREAMS] = {0};
    int ret;

    *naudio = 0;
    if (!pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    ret = rf_media_open_input(path, &fmt, err);
    if (ret < 0)
        goto out;
    if (fmt->nb_streams > RF_VERIFY_MAX_AUDIO_STREAMS) {
        ret = rf_err_set(err, RF_ETOOBIG, "'%s': more than %d streams", path,
                         RF_VERIFY_MAX_AUDIO_STREAMS);
        goto out;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        ordinal[i] = -1;
        if (fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
            ordinal[i] = (*naudio)++;
        else
            fmt->streams[i]->discard = AVDISCARD_ALL;
    }
    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        int o = ordinal[pkt->stream_index];
        if (o >= 0 && s_audio_push(&lists[o], pkt) < 0) {
            av_packet_unref(pkt);
            ret = rf_err_set(err, RF_ENOMEM, "'%s': out of memory", path);
            goto out;
        }
        av_packet_unref(pkt);
    }
    if (ret != AVERROR_EOF) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': read error (%s)", path, av_err2str(ret));
        goto out;
    }
    ret = 0;
out:
    avformat_close_input(&fmt);
    av_packet_free(&pkt);
    return ret;
}

static int s_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int rf_media_verify_output(const rf_media_info_t *src, const char *out_path, bool check_audio,
                           rf_verify_report_t *report, rf_err_t *err)
{
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    int64_t *pts = NULL;
    size_t npts = 0, cap = 0;
    s_audio_list_t src_audio[RF_VERIFY_MAX_AUDIO_STREAMS] = {0};
    s_audio_list_t out_audio[RF_VERIFY_MAX_AUDIO_STREAMS] = {0};
    int ret;

    memset(report, 0, sizeof(*report));
    report->src_duration_s = src->duration_s;
    report->timestamps_increasing = true;
    if (!pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    ret = rf_media_open_input(out_path, &fmt, err);
    if (ret < 0)
        goto out;
    ret = rf_media_find_video(fmt, out_path, err);
    if (ret < 0)
        goto out;
    int vidx = ret;
    AVRational tb = fmt->streams[vidx]->time_base;
    int64_t last_dts = AV_NOPTS_VALUE, bad_dts_at = -1;
    for (unsigned i = 0; i < fmt->nb_streams; i++)
        if ((int)i != vidx)
            fmt->streams[i]->discard = AVDISCARD_ALL;
    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index != vidx) {
            av_packet_unref(pkt);
            continue;
        }
        if (pkt->pts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            ret = rf_err_set(err, RF_EVERIFY, "'%s': video packet %zu has no PTS", out_path, npts);
            report->timestamps_increasing = false;
            goto out;
        }
        /* Containers without DTS (Matroska) leave the first ones unset; those are not compared. */
        if (pkt->dts != AV_NOPTS_VALUE) {
            if (last_dts != AV_NOPTS_VALUE && pkt->dts <= last_dts && bad_dts_at < 0)
                bad_dts_at = (int64_t)npts;
            last_dts = pkt->dts;
        }
        if (npts == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            int64_t *p = ncap <= RF_MEDIA_MAX_FRAMES ? realloc(pts, ncap * sizeof(*p)) : NULL;
            if (!p) {
                av_packet_unref(pkt);
                ret = rf_err_set(err, RF_ENOMEM, "'%s': too many video packets", out_path);
                goto out;
            }
            pts = p;
            cap = ncap;
        }
        pts[npts++] = pkt->pts;
        av_packet_unref(pkt);
    }
    if (ret != AVERROR_EOF) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': read error (%s)", out_path, av_err2str(ret));
        goto out;
    }
    report->frames = (int64_t)npts;
    qsort(pts, npts, sizeof(int64_t), s_cmp_i64);
    int64_t bad_pts_at = -1;
    for (size_t i = 1; i < npts && bad_pts_at < 0; i++)
        if (pts[i] <= pts[i - 1])
            bad_pts_at = (int64_t)i;
    report->timestamps_increasing = bad_pts_at < 0 && bad_dts_at < 0;
    double frame_s = (double)src->frame_duration * av_q2d(src->time_base);
    if (npts > 0)
        report->duration_s = (double)(pts[npts - 1] - pts[0]) * av_q2d(tb) + frame_s;

    if (check_audio) {
        int nsrc = 0, nout = 0;
        ret = s_read_audio(src->path, src_audio, &nsrc, err);
        if (ret < 0)
            goto out;
        ret = s_read_audio(out_path, out_audio, &nout, err);
        if (ret < 0)
            goto out;
        report->audio_identical = nsrc == nout;
        const char *why = nsrc == nout ? NULL : "a different number of audio streams";
        int64_t at = -1;
        int stream = 0;
        for (int s = 0; s < nout; s++)
            report->audio_packets += (int64_t)out_audio[s].n;
        for (int s = 0; s < nsrc && s < nout && !why; s++) {
            stream = s;
            if (src_audio[s].n != out_audio[s].n) {
                why = "a different number of audio packets";
                break;
            }
            for (size_t i = 0; i < src_audio[s].n; i++) {
                if (src_audio[s].ids[i].size != out_audio[s].ids[i].size ||
                    memcmp(src_audio[s].ids[i].sha, out_audio[s].ids[i].sha, RF_SHA256_LEN)) {
                    why = "different audio packet bytes";
                    at = (int64_t)i;
                    break;
                }
            }
        }
        if (why) {
            report->audio_identical = false;
            ret = rf_err_set(err, RF_EVERIFY,
                             "'%s': %s than the source '%s' (audio stream %d, packet %" PRId64 ")",
                             out_path, why, src->path, stream, at);
            goto out;
        }
    }

    if (report->frames != src->nb_frames) {
        ret = rf_err_set(err, RF_EVERIFY, "'%s': %" PRId64 " video frames, the source has %" PRId64,
                         out_path, report->frames, src->nb_frames);
        goto out;
    }
    double diff = report->duration_s - src->duration_s;
    if (diff > frame_s / 2 || diff < -frame_s / 2) {
        ret = rf_err_set(err, RF_EVERIFY,
                         "'%s': video lasts %.6f s, the source %.6f s (more than half a frame off)",
                         out_path, report->duration_s, src->duration_s);
        goto out;
    }
    if (bad_pts_at >= 0) {
        ret = rf_err_set(err, RF_EVERIFY, "'%s': two video frames share a PTS (frame %" PRId64 ")",
                         out_path, bad_pts_at);
        goto out;
    }
    if (bad_dts_at >= 0) {
        ret = rf_err_set(err, RF_EVERIFY,
                         "'%s': video DTS does not increase at packet %" PRId64, out_path,
                         bad_dts_at);
        goto out;
    }
    ret = 0;
out:
    for (int s = 0; s < RF_VERIFY_MAX_AUDIO_STREAMS; s++) {
        free(src_audio[s].ids);
        free(out_audio[s].ids);
    }
    free(pts);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    return ret;
}
