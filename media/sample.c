/* sample.c - sampled verification of an encoded chunk against its per-frame checksum list.
 *
 * A full check decodes every frame the coordinator receives: with many workers that one process
 * would have to decode the whole farm's output. Chunks are closed GOPs, each starting with a
 * keyframe, so any GOP decodes on its own: this check reads every packet (cheap: no decoding) to
 * count the frames and find the GOPs, then decodes only the first, the last and one chosen by the
 * caller's seed, and compares their frames' SHA-256s with the worker's list. The list itself must
 * hash to the digest the worker reported.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "media_internal.h"

typedef struct s_cmp {
    const uint8_t *list; /* nframes x RF_SHA256_LEN */
    uint64_t nframes;
    uint64_t offset;     /* presentation index of the GOP's first frame */
    int64_t bad;         /* first mismatching frame (global within the chunk), -1 when none */
    uint64_t seen;
} s_cmp_t;

static void s_cmp_frame(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    s_cmp_t *c = arg;
    uint64_t at = c->offset + (uint64_t)index;
    c->seen++;
    if (c->bad < 0 && (at >= c->nframes || memcmp(c->list + at * RF_SHA256_LEN, sha, RF_SHA256_LEN)))
        c->bad = (int64_t)at;
}

int rf_media_checksum_sample(const char *path, const uint8_t *list, uint64_t nframes,
                             const uint8_t digest[RF_SHA256_LEN], uint64_t seed,
                             uint32_t *gops_checked, rf_err_t *err)
{
    AVFormatContext *fmt = NULL;
    AVPacket *pkt = av_packet_alloc();
    rf_frame_hasher_t *h = NULL;
    uint64_t *keys = NULL; /* decode-order index of every keyframe packet */
    size_t nkeys = 0, cap = 0;
    int ret;

    *gops_checked = 0;
    if (!pkt) {
        ret = rf_err_set(err, RF_ENOMEM, "out of memory");
        goto out;
    }
    /* The list must be the one the digest was made from. */
    uint8_t check[RF_SHA256_LEN];
    rf_sha256_t all;
    rf_sha256_init(&all);
    rf_sha256_update(&all, list, (size_t)nframes * RF_SHA256_LEN);
    rf_sha256_final(&all, check);
    if (memcmp(check, digest, RF_SHA256_LEN) != 0) {
        ret = rf_err_set(err, RF_EVERIFY, "the frame checksum list does not match its digest");
        goto out;
    }
    /* Pass 1: count packets, find the keyframes. */
    ret = rf_media_open_input(path, &fmt, err);
    if (ret < 0)
        goto out;
    int stream = rf_media_find_video(fmt, path, err);
    if (stream < 0) {
        ret = stream;
        goto out;
    }
    uint64_t count = 0;
    while ((ret = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == stream) {
            if (pkt->flags & AV_PKT_FLAG_KEY) {
                if (nkeys == cap) {
                    cap = cap ? cap * 2 : 64;
                    uint64_t *grown = realloc(keys, cap * sizeof(*keys));
                    if (!grown) {
                        av_packet_unref(pkt);
                        ret = rf_err_set(err, RF_ENOMEM, "out of memory");
                        goto out;
                    }
                    keys = grown;
                }
                keys[nkeys++] = count;
            }
            count++;
        }
        av_packet_unref(pkt);
    }
    if (ret != AVERROR_EOF) {
        ret = rf_err_set(err, RF_EMEDIA, "'%s': read error after packet %" PRIu64 " (%s)", path,
                         count, av_err2str(ret));
        goto out;
    }
    if (count != nframes) {
        ret = rf_err_set(err, RF_EVERIFY, "result has %" PRIu64 " frames, expected %" PRIu64, count,
                         nframes);
        goto out;
    }
    if (nkeys == 0 || keys[0] != 0) {
        ret = rf_err_set(err, RF_EVERIFY, "result does not start with a keyframe");
        goto out;
    }
    /* The GOPs to decode: first, last, and one chosen by the seed. */
    size_t pick[3] = {0, nkeys - 1, (size_t)(seed % nkeys)};
    bool chosen[3] = {true, nkeys > 1, true};
    for (int i = 1; i < 3; i++)
        for (int j = 0; j < i; j++)
            if (chosen[i] && chosen[j] && pick[i] == pick[j])
                chosen[i] = false;
    /* Pass 2: decode each chosen GOP on a fresh decoder (closed GOPs stand alone). */
    for (int i = 0; i < 3; i++) {
        if (!chosen[i])
            continue;
        uint64_t lo = keys[pick[i]], hi = pick[i] + 1 < nkeys ? keys[pick[i] + 1] : count;
        avformat_close_input(&fmt); /* read again from the start: demuxing is cheap */
        if ((ret = rf_media_open_input(path, &fmt, err)) < 0)
            goto out;
        AVStream *st = fmt->streams[stream];
        s_cmp_t cmp = {.list = list, .nframes = nframes, .offset = lo, .bad = -1};
        ret = rf_frame_hasher_new(st->codecpar, st->time_base, s_cmp_frame, &cmp, &h, err);
        if (ret)
            goto out;
        uint64_t n = 0;
        while (n < hi && (ret = av_read_frame(fmt, pkt)) >= 0) {
            if (pkt->stream_index == stream) {
                if (n >= lo && (ret = rf_frame_hasher_send(h, pkt, err)) != 0) {
                    av_packet_unref(pkt);
                    rf_err_prefix(err, "result GOP at frame %" PRIu64 ": ", lo);
                    goto out;
                }
                n++;
            }
            av_packet_unref(pkt);
        }
        if ((ret = rf_frame_hasher_send(h, NULL, err)) != 0) {
            rf_err_prefix(err, "result GOP at frame %" PRIu64 ": ", lo);
            goto out;
        }
        rf_frame_hasher_destroy(&h);
        if (cmp.seen != hi - lo) {
            ret = rf_err_set(err, RF_EVERIFY, "result GOP at frame %" PRIu64 " decodes to %" PRIu64
                             " frames, expected %" PRIu64, lo, cmp.seen, hi - lo);
            goto out;
        }
        if (cmp.bad >= 0) {
            ret = rf_err_set(err, RF_EVERIFY, "frame %" PRId64 " of the result differs from the "
                             "checksum the worker reported", cmp.bad);
            goto out;
        }
        (*gops_checked)++;
    }
    ret = 0;
out:
    rf_frame_hasher_destroy(&h);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    free(keys);
    return ret;
}
