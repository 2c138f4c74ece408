/* stitch.c - joins encoded chunks into the final file by our own remux (DESIGN §5): never the
 * concat demuxer, which derives each file's start from the previous file's duration and drifts.
 *
 * Every video packet is mapped back to its global frame index (chunk start + local PTS index) and
 * restamped from the source's PTS table, so CFR and VFR outputs carry exactly the source's
 * timestamps. DTS come from the same table at the packet's local DTS index, extended linearly below
 * frame 0, so the encoder's reorder delay survives and DTS stay strictly increasing across chunk
 * boundaries. Audio packets are copied from the source untouched and interleaved by time.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "media_internal.h"

#define RF_STITCH_PATH_MAX 4096 /* longest output path we build a temp name for */

/* Stream side data worth carrying from the source's video stream to the output. Codec-level
 * entries (CPB properties, Dolby Vision configuration) describe the source's encode, not ours. */
static const enum AVPacketSideDataType s_carried_side_data[] = {
    AV_PKT_DATA_DISPLAYMATRIX,
    AV_PKT_DATA_MASTERING_DISPLAY_METADATA,
    AV_PKT_DATA_CONTENT_LIGHT_LEVEL,
    AV_PKT_DATA_STEREO3D,
    AV_PKT_DATA_SPHERICAL,
};

/* Walks the chunks' video packets in order, one chunk file open at a time. */
typedef struct s_video_reader {
    const rf_media_info_t *src;
    const rf_stitch_chunk_t *chunks;
    size_t nchunks;
    size_t cur;                /* chunk being read */
    AVFormatContext *fmt;      /* open chunk, NULL between chunks */
    int stream;                /* its video stream */
    AVCodecParameters *ref;    /* chunk 0's parameters: every chunk must match them */
    int64_t count;             /* packets read from the current chunk */
    int64_t delay;             /* the current chunk's reorder delay in frames (DTS = n - delay) */
    int64_t last_dts;          /* global DTS index of the last packet, across chunks */
    int64_t offset;            /* local index of the chunk's first packet (a muxer shift) */
    uint8_t *seen;             /* [frame_count] local indices already delivered */
    AVRational frame_tb;       /* 1/frame_rate: the unit of local indices */
} s_video_reader_t;

/* The source's PTS at global index i; linear beyond the table so DTS below frame 0 (B-frame
 * delay) and durations past the last frame are defined. */
static int64_t s_table(const rf_media_info_t *src, int64_t i)
{
    if (i < 0)
        return src->pts[0] + i * src->frame_duration;
    if (i >= src->nb_frames)
        return src->pts[src->nb_frames - 1] + (i - src->nb_frames + 1) * src->frame_duration;
    return src->pts[i];
}

static bool s_extradata_equal(const AVCodecParameters *a, const AVCodecParameters *b)
{
    if (a->extradata_size != b->extradata_size)
        return false;
    return a->extradata_size == 0 || memcmp(a->extradata, b->extradata, a->extradata_size) == 0;
}

/* The reorder delay of the open chunk: packet n in decode order has DTS index n - delay (what
 * x264, x265, SVT-AV1 and intra codecs produce for CFR input). NUT stores no DTS, so libavformat
 * guesses them and leaves the first `delay` unset; the first packet with a DTS tells the delay.
 * Reads a few packets, then reopens the chunk at its start. */
static int s_find_delay(s_video_reader_t *r, rf_err_t *err)
{
    const rf_stitch_chunk_t *c = &r->chunks[r->cur];
    AVRational tb = r->fmt->streams[r->stream]->time_base;
    AVPacket *pkt = av_packet_alloc();
    int64_t first = INT64_MIN, n = 0;
    int ret = 0;

    if (!pkt)
        return rf_err_set(err, RF_ENOMEM, "chunk %zu: out of memory", r->cur);
    r->delay = r->fmt->streams[r->stream]->codecpar->video_delay;
    while (n < 64 && (ret = av_read_frame(r->fmt, pkt)) >= 0) {
        if (pkt->stream_index != r->stream || pkt->pts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            continue;
        }
        int64_t p = av_rescale_q_rnd(pkt->pts, tb, r->frame_tb, AV_ROUND_NEAR_INF);
        if (first == INT64_MIN)
            first = p;
        if (pkt->dts != AV_NOPTS_VALUE) {
            int64_t d = av_rescale_q_rnd(pkt->dts, tb, r->frame_tb, AV_ROUND_NEAR_INF) - first;
            r->delay = n - d;
            av_packet_unref(pkt);
            break;
        }
        av_packet_unref(pkt);
        n++;
    }
    av_packet_free(&pkt);
    if (ret < 0 && ret != AVERROR_EOF)
        return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): read error (%s)", r->cur, c->path,
                          av_err2str(ret));
    if (r->delay < 0 || r->delay > 64)
        return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): implausible reorder delay %" PRId64,
                          r->cur, c->path, r->delay);
    avformat_close_input(&r->fmt);
    ret = rf_media_open_input(c->path, &r->fmt, err);
    if (ret < 0)
        return rf_err_prefix(err, "chunk %zu: ", r->cur);
    return 0;
}

static int s_open_chunk(s_video_reader_t *r, rf_err_t *err)
{
    const rf_stitch_chunk_t *c = &r->chunks[r->cur];
    int ret = rf_media_open_input(c->path, &r->fmt, err);
    if (ret < 0)
        return rf_err_prefix(err, "chunk %zu: ", r->cur);
    ret = rf_media_find_video(r->fmt, c->path, err);
    if (ret < 0)
        return rf_err_prefix(err, "chunk %zu: ", r->cur);
    r->stream = ret;
    const AVCodecParameters *par = r->fmt->streams[r->stream]->codecpar;
    if (r->cur == 0) {
        r->ref = avcodec_parameters_alloc();
        if (!r->ref || avcodec_parameters_copy(r->ref, par) < 0)
            return rf_err_set(err, RF_ENOMEM, "chunk 0 ('%s'): out of memory", c->path);
    } else if (par->codec_id != r->ref->codec_id) {
        return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): codec %s differs from chunk 0's %s",
                          r->cur, c->path, avcodec_get_name(par->codec_id),
                          avcodec_get_name(r->ref->codec_id));
    } else if (par->width != r->ref->width || par->height != r->ref->height) {
        return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): size %dx%d differs from chunk 0's %dx%d",
                          r->cur, c->path, par->width, par->height, r->ref->width,
                          r->ref->height);
    } else if (!s_extradata_equal(par, r->ref)) {
        return rf_err_set(err, RF_EMEDIA,
                          "chunk %zu ('%s'): codec extradata (%d bytes) differs from chunk 0's "
                          "(%d bytes); every chunk must be encoded with identical settings",
                          r->cur, c->path, par->extradata_size, r->ref->extradata_size);
    }
    ret = s_find_delay(r, err);
    if (ret < 0)
        return ret;
    for (unsigned i = 0; i < r->fmt->nb_streams; i++)
        if ((int)i != r->stream)
            r->fmt->streams[i]->discard = AVDISCARD_ALL;
    free(r->seen);
    r->seen = calloc((size_t)c->frame_count, 1);
    if (!r->seen)
        return rf_err_set(err, RF_ENOMEM, "chunk %zu: out of memory", r->cur);
    r->count = 0;
    r->offset = INT64_MIN;
    return 0;
}

/* Next video packet, restamped in the source's video time base. 1: a packet, 0: all chunks done. */
static int s_video_next(s_video_reader_t *r, AVPacket *pkt, rf_err_t *err)
{
    for (;;) {
        if (!r->fmt) {
            if (r->cur == r->nchunks)
                return 0;
            int ret = s_open_chunk(r, err);
            if (ret < 0)
                return ret;
        }
        const rf_stitch_chunk_t *c = &r->chunks[r->cur];
        int ret = av_read_frame(r->fmt, pkt);
        if (ret == AVERROR_EOF) {
            if (r->count != c->frame_count)
                return rf_err_set(err, RF_EVERIFY,
                                  "chunk %zu ('%s'): holds %" PRId64 " frames, expected %" PRId64,
                                  r->cur, c->path, r->count, c->frame_count);
            avformat_close_input(&r->fmt);
            r->cur++;
            continue;
        }
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): read error at packet %" PRId64
                              " (%s)",
                              r->cur, c->path, r->count, av_err2str(ret));
        if (pkt->stream_index != r->stream) {
            av_packet_unref(pkt);
            continue;
        }
        AVRational tb = r->fmt->streams[r->stream]->time_base;
        if (pkt->pts == AV_NOPTS_VALUE) {
            av_packet_unref(pkt);
            return rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): packet %" PRId64 " has no PTS",
                              r->cur, c->path, r->count);
        }
        enum AVRounding rnd = AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX;
        int64_t p = av_rescale_q_rnd(pkt->pts, tb, r->frame_tb, rnd);
        /* The first packet in decode order is the chunk's IDR, local frame 0; a muxer that
         * shifted the timestamps to avoid negative DTS moved it, and we move it back. */
        if (r->offset == INT64_MIN)
            r->offset = p;
        p -= r->offset;
        int64_t d = r->count - r->delay;
        if (p < 0 || p >= c->frame_count || r->seen[p] || d > p) {
            av_packet_unref(pkt);
            return rf_err_set(err, RF_EVERIFY,
                              "chunk %zu ('%s'): packet %" PRId64 " has local pts index %" PRId64
                              " (dts %" PRId64 "): outside 0..%" PRId64 ", repeated or after its "
                              "dts",
                              r->cur, c->path, r->count, p, d, c->frame_count - 1);
        }
        if (c->frame_start + d <= r->last_dts) {
            av_packet_unref(pkt);
            return rf_err_set(err, RF_EVERIFY,
                              "chunk %zu ('%s'): reorder delay %" PRId64 " is larger than the "
                              "previous chunk's; DTS would go back at its start",
                              r->cur, c->path, r->delay);
        }
        r->last_dts = c->frame_start + d;
        r->seen[p] = 1;
        r->count++;
        int64_t g = c->frame_start + p;
        pkt->pts = s_table(r->src, g);
        pkt->dts = s_table(r->src, c->frame_start + d);
        pkt->duration = s_table(r->src, g + 1) - pkt->pts;
        pkt->pos = -1;
        return 1;
    }
}

static void s_video_reader_close(s_video_reader_t *r)
{
    avformat_close_input(&r->fmt);
    avcodec_parameters_free(&r->ref);
    free(r->seen);
    r->seen = NULL;
}

/* Next audio packet of the source that has an output stream. 1: a packet, 0: end. */
static int s_audio_next(AVFormatContext *in, const int *map, AVPacket *pkt, rf_err_t *err)
{
    for (;;) {
        int ret = av_read_frame(in, pkt);
        if (ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return rf_err_set(err, RF_EMEDIA, "'%s': audio read error (%s)", in->url,
                              av_err2str(ret));
        if (map[pkt->stream_index] >= 0)
            return 1;
        av_packet_unref(pkt);
    }
}

/* "dir/name.ext" -> "dir/name.partial-PID.ext": same folder (rename stays atomic), same extension
 * (the muxer is chosen by it). */
static int s_temp_path(const char *out_path, char *tmp, size_t size)
{
    const char *slash = strrchr(out_path, '/');
    const char *dot = strrchr(out_path, '.');
    if (!dot || (slash && dot < slash))
        dot = out_path + strlen(out_path);
    int n = snprintf(tmp, size, "%.*s.partial-%ld%s", (int)(dot - out_path), out_path,
                     (long)getpid(), dot);
    return n < 0 || (size_t)n >= size ? RF_ETOOBIG : 0;
}

static int s_check_chunks(const rf_media_info_t *src, const rf_stitch_chunk_t *chunks,
                          size_t nchunks, rf_err_t *err)
{
    if (nchunks == 0)
        return rf_err_set(err, RF_EINVAL, "stitch: no chunks");
    int64_t next = 0;
    for (size_t i = 0; i < nchunks; i++) {
        if (!chunks[i].path)
            return rf_err_set(err, RF_EINVAL, "stitch: chunk %zu has no path", i);
        if (chunks[i].frame_start != next || chunks[i].frame_count <= 0)
            return rf_err_set(err, RF_EINVAL,
                              "stitch: chunk %zu covers frames [%" PRId64 ", +%" PRId64
                              "), expected to start at %" PRId64,
                              i, chunks[i].frame_start, chunks[i].frame_count, next);
        next += chunks[i].frame_count;
    }
    if (next != src->nb_frames)
        return rf_err_set(err, RF_EINVAL,
                          "stitch: chunks cover %" PRId64 " frames, the source '%s' has %" PRId64,
                          next, src->path, src->nb_frames);
    return 0;
}

int rf_media_stitch(const rf_media_info_t *src, const rf_stitch_chunk_t *chunks, size_t nchunks,
                    bool copy_audio, const char *out_path, rf_err_t *err)
{
    s_video_reader_t vr = {.src = src, .chunks = chunks, .nchunks = nchunks,
                           .last_dts = INT64_MIN};
    AVFormatContext *in = NULL, *outf = NULL;
    AVPacket *vpkt = NULL, *apkt = NULL;
    int *map = NULL;
    char tmp[RF_STITCH_PATH_MAX];
    bool tmp_created = false;
    int ret;

    ret = s_check_chunks(src, chunks, nchunks, err);
    if (ret < 0)
        goto out;
    if (s_temp_path(out_path, tmp, sizeof(tmp)) < 0) {
        ret = rf_err_set(err, RF_ETOOBIG, "'%s': path too long", out_path);
        goto out;
    }
    const AVOutputFormat *ofmt = av_guess_format(NULL, out_path, NULL);
    if (!ofmt) {
        ret = rf_err_set(err, RF_EINVAL, "'%s': no container known for this file extension",
                         out_path);
        goto out;
    }
    vr.frame_tb = av_inv_q(src->frame_rate);
    if (vr.frame_tb.num <= 0 || vr.frame_tb.den <= 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': the source has no frame rate", src->path);
        goto out;
    }
    vpkt = av_packet_alloc();
    apkt = av_packet_alloc();
    if (!vpkt || !apkt) {
        ret = rf_err_set(err, RF_ENOMEM, "stitch: out of memory");
        goto out;
    }

    /* The source: its side data for the video stream, its audio packets. */
    ret = rf_media_open_input(src->path, &in, err);
    if (ret < 0)
        goto out;
    if (src->video_index >= (int)in->nb_streams) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': changed since it was probed", src->path);
        goto out;
    }
    map = malloc(in->nb_streams * sizeof(int));
    if (!map) {
        ret = rf_err_set(err, RF_ENOMEM, "stitch: out of memory");
        goto out;
    }

    /* Chunk 0 gives the codec parameters; opening it now also checks it. */
    ret = s_open_chunk(&vr, err);
    if (ret < 0)
        goto out;

    ret = avformat_alloc_output_context2(&outf, ofmt, NULL, tmp);
    if (ret < 0 || !outf) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot create a %s muxer (%s)", out_path,
                         ofmt->name, av_err2str(ret));
        goto out;
    }
    AVStream *vst = avformat_new_stream(outf, NULL);
    if (!vst || avcodec_parameters_copy(vst->codecpar, vr.ref) < 0) {
        ret = rf_err_set(err, RF_ENOMEM, "stitch: out of memory");
        goto out;
    }
    AVCodecParameters *vpar = vst->codecpar;
    vpar->codec_tag = 0; /* NUT's tag may mean nothing to the output container */
    vpar->color_range = src->color_range;
    vpar->color_primaries = src->color_primaries;
    vpar->color_trc = src->color_trc;
    vpar->color_space = src->color_space;
    vpar->chroma_location = src->chroma_location;
    if (src->sample_aspect_ratio.num > 0 && src->sample_aspect_ratio.den > 0) {
        vpar->sample_aspect_ratio = src->sample_aspect_ratio;
        vst->sample_aspect_ratio = src->sample_aspect_ratio;
    }
    vst->time_base = src->time_base;
    if (!src->vfr) {
        vst->avg_frame_rate = src->frame_rate;
        vst->r_frame_rate = src->frame_rate;
    }
    const AVStream *ivst = in->streams[src->video_index];
    for (size_t i = 0; i < sizeof(s_carried_side_data) / sizeof(s_carried_side_data[0]); i++) {
        size_t size = 0;
        const uint8_t *sd = av_stream_get_side_data(ivst, s_carried_side_data[i], &size);
        if (!sd || size == 0)
            continue;
        uint8_t *copy = av_malloc(size);
        if (!copy) {
            ret = rf_err_set(err, RF_ENOMEM, "stitch: out of memory");
            goto out;
        }
        memcpy(copy, sd, size);
        ret = av_stream_add_side_data(vst, s_carried_side_data[i], copy, size);
        if (ret < 0) {
            av_free(copy);
            ret = rf_err_set(err, RF_ENOMEM, "stitch: side data: %s", av_err2str(ret));
            goto out;
        }
    }

    for (unsigned i = 0; i < in->nb_streams; i++) {
        map[i] = -1;
        AVStream *ist = in->streams[i];
        if (!copy_audio || ist->codecpar->codec_type != AVMEDIA_TYPE_AUDIO) {
            ist->discard = AVDISCARD_ALL;
            continue;
        }
        AVStream *ast = avformat_new_stream(outf, NULL);
        if (!ast || avcodec_parameters_copy(ast->codecpar, ist->codecpar) < 0) {
            ret = rf_err_set(err, RF_ENOMEM, "stitch: out of memory");
            goto out;
        }
        ast->codecpar->codec_tag = 0;
        ast->time_base = ist->time_base;
        ast->disposition = ist->disposition;
        av_dict_copy(&ast->metadata, ist->metadata, 0);
        map[i] = ast->index;
    }

    /* Matroska can store slightly negative times (AAC priming at -21 ms, B-frame DTS); left on
     * "auto" the muxer would shift the whole timeline instead and no PTS would equal the
     * source's. MP4 handles its negative DTS with an edit list either way. */
    if (strcmp(ofmt->name, "matroska") == 0 || strcmp(ofmt->name, "webm") == 0)
        outf->avoid_negative_ts = AVFMT_AVOID_NEG_TS_DISABLED;
    ret = avio_open(&outf->pb, tmp, AVIO_FLAG_WRITE);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': cannot create (%s)", tmp, av_err2str(ret));
        goto out;
    }
    tmp_created = true;
    ret = avformat_write_header(outf, NULL);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': cannot write the %s header (%s)", out_path,
                         ofmt->name, av_err2str(ret));
        goto out;
    }

    /* Merge the two packet sequences by DTS so the interleaver only ever holds a few packets. */
    int have_v = s_video_next(&vr, vpkt, err);
    int have_a = copy_audio ? s_audio_next(in, map, apkt, err) : 0;
    while (have_v > 0 || have_a > 0) {
        bool take_video = have_v > 0;
        if (have_v > 0 && have_a > 0) {
            int64_t ats = apkt->dts != AV_NOPTS_VALUE ? apkt->dts : apkt->pts;
            take_video = ats != AV_NOPTS_VALUE &&
                         av_compare_ts(vpkt->dts, src->time_base, ats,
                                       in->streams[apkt->stream_index]->time_base) <= 0;
        }
        if (take_video) {
            size_t chunk = vr.cur;
            av_packet_rescale_ts(vpkt, src->time_base, vst->time_base);
            vpkt->stream_index = vst->index;
            ret = av_interleaved_write_frame(outf, vpkt);
            if (ret < 0) {
                ret = rf_err_set(err, RF_EMEDIA, "chunk %zu ('%s'): writing to '%s' failed (%s)",
                                 chunk, chunks[chunk].path, out_path, av_err2str(ret));
                goto out;
            }
            have_v = s_video_next(&vr, vpkt, err);
        } else {
            const AVStream *ist = in->streams[apkt->stream_index];
            AVStream *ost = outf->streams[map[apkt->stream_index]];
            av_packet_rescale_ts(apkt, ist->time_base, ost->time_base);
            apkt->stream_index = ost->index;
            apkt->pos = -1;
            ret = av_interleaved_write_frame(outf, apkt);
            if (ret < 0) {
                ret = rf_err_set(err, RF_EMEDIA, "'%s': writing audio failed (%s)", out_path,
                                 av_err2str(ret));
                goto out;
            }
            have_a = s_audio_next(in, map, apkt, err);
        }
    }
    if (have_v < 0 || have_a < 0) {
        ret = have_v < 0 ? have_v : have_a;
        goto out;
    }
    ret = av_write_trailer(outf);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': writing the trailer failed (%s)", out_path,
                         av_err2str(ret));
        goto out;
    }
    ret = avio_closep(&outf->pb);
    if (ret < 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': close failed (%s)", tmp, av_err2str(ret));
        goto out;
    }
    if (rename(tmp, out_path) != 0) {
        ret = rf_err_set(err, RF_EIO, "'%s': rename from '%s' failed (%s)", out_path, tmp,
                         strerror(errno));
        goto out;
    }
    tmp_created = false;
    ret = 0;
out:
    if (outf) {
        avio_closep(&outf->pb);
        avformat_free_context(outf);
    }
    if (tmp_created)
        unlink(tmp);
    s_video_reader_close(&vr);
    avformat_close_input(&in);
    av_packet_free(&vpkt);
    av_packet_free(&apkt);
    free(map);
    return ret;
}
