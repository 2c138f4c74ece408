/* seam.c - cross-fading the overlap frames at a forced chunk boundary (DESIGN §5).
 *
 * Both neighbours of a forced boundary render the same k frames; each sends them as a lossless
 * side part. The stitcher blends them - the earlier chunk's rendering fading out, the later one's
 * fading in - and encodes only those k frames with the job's encoder settings, as a short chunk of
 * its own (closed GOP, IDR first), which then takes its place between the two.
 */
#include <inttypes.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>

#include "media_internal.h"

/* Whether the format is one the blend understands: planar, 8 to 16 bits per sample, one sample
 * per component (no packed or bitstream formats, no floats, no palettes). */
static bool s_blendable(const AVPixFmtDescriptor *d)
{
    if (!d || !(d->flags & AV_PIX_FMT_FLAG_PLANAR) ||
        (d->flags & (AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_FLOAT)))
        return false;
    for (int i = 0; i < d->nb_components; i++) {
        const AVComponentDescriptor *c = &d->comp[i];
        if (c->depth < 8 || c->depth > 16 || c->shift != 0 || c->step != (c->depth > 8 ? 2 : 1))
            return false;
    }
    return true;
}

int rf_frame_crossfade(const AVFrame *a, const AVFrame *b, int num, int den, AVFrame *out,
                       rf_err_t *err)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(a->format);
    if (a->format != b->format || a->width != b->width || a->height != b->height)
        return rf_err_set(err, RF_EINVAL, "cannot cross-fade a %dx%d %s frame with a %dx%d %s frame",
                          a->width, a->height, av_get_pix_fmt_name(a->format), b->width, b->height,
                          av_get_pix_fmt_name(b->format));
    if (!s_blendable(d))
        return rf_err_set(err, RF_EINVAL, "cannot cross-fade pixel format %s",
                          av_get_pix_fmt_name(a->format));
    if (den <= 0 || num < 0 || num > den)
        return rf_err_set(err, RF_EINVAL, "cross-fade weight %d/%d is outside 0..1", num, den);
    av_frame_unref(out);
    out->format = a->format;
    out->width = a->width;
    out->height = a->height;
    int ret = av_frame_get_buffer(out, 0);
    if (ret < 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory for a %dx%d frame", a->width, a->height);
    ret = av_frame_copy_props(out, b);
    if (ret < 0)
        return rf_err_set(err, RF_ENOMEM, "out of memory copying frame properties");
    int64_t wa = den - num, wb = num, half = den / 2;
    int planes = av_pix_fmt_count_planes(a->format);
    bool wide = d->comp[0].depth > 8;
    for (int p = 0; p < planes; p++) {
        int w = a->width, h = a->height;
        if (p == 1 || p == 2) {
            w = AV_CEIL_RSHIFT(w, d->log2_chroma_w);
            h = AV_CEIL_RSHIFT(h, d->log2_chroma_h);
        }
        for (int y = 0; y < h; y++) {
            const uint8_t *ra = a->data[p] + (ptrdiff_t)y * a->linesize[p];
            const uint8_t *rb = b->data[p] + (ptrdiff_t)y * b->linesize[p];
            uint8_t *ro = out->data[p] + (ptrdiff_t)y * out->linesize[p];
            if (wide) {
                const uint16_t *pa = (const uint16_t *)ra, *pb = (const uint16_t *)rb;
                uint16_t *po = (uint16_t *)ro;
                for (int x = 0; x < w; x++)
                    po[x] = (uint16_t)((pa[x] * wa + pb[x] * wb + half) / den);
            } else {
                for (int x = 0; x < w; x++)
                    ro[x] = (uint8_t)((ra[x] * wa + rb[x] * wb + half) / den);
            }
        }
    }
    return 0;
}

int rf_media_seam_encode(const char *outgoing, const char *incoming, int64_t count,
                         const rf_encode_params_t *params, const char *out_path, rf_err_t *err)
{
    rf_decoder_t *da = NULL, *db = NULL;
    rf_encoder_t *enc = NULL;
    AVFrame *fa = av_frame_alloc(), *fb = av_frame_alloc(), *mix = av_frame_alloc();
    int64_t n = 0;
    int rc = 0;

    if (!fa || !fb || !mix) {
        rc = rf_err_set(err, RF_ENOMEM, "out of memory cross-fading a seam");
        goto out;
    }
    if (count <= 0 || count > INT32_MAX - 1) {
        rc = rf_err_set(err, RF_EINVAL, "seam of %" PRId64 " frames", count);
        goto out;
    }
    if ((rc = rf_decoder_open(outgoing, &da, err)) || (rc = rf_decoder_open(incoming, &db, err)))
        goto out;
    for (;;) {
        int ra = rf_decoder_next(da, fa, err);
        if (ra < 0) {
            rc = ra;
            goto out;
        }
        int rb = rf_decoder_next(db, fb, err);
        if (rb < 0) {
            rc = rb;
            goto out;
        }
        if (!ra && !rb)
            break;
        if (!ra || !rb || n >= count) {
            rc = rf_err_set(err, RF_EVERIFY, "seam parts '%s' and '%s' do not both hold %" PRId64
                            " frames", outgoing, incoming, count);
            goto out;
        }
        /* Frame j of k: the incoming rendering weighs (j + 1) / (k + 1). */
        rc = rf_frame_crossfade(fa, fb, (int)(n + 1), (int)(count + 1), mix, err);
        if (rc)
            goto out;
        if (!enc) {
            rf_encode_params_t p = *params;
            p.width = mix->width;
            p.height = mix->height;
            p.pix_fmt = mix->format;
            if ((rc = rf_encoder_open(&p, out_path, &enc, err)))
                goto out;
        }
        mix->pts = n;
        mix->pict_type = AV_PICTURE_TYPE_NONE;
        if ((rc = rf_encoder_write(enc, mix, err))) {
            rf_err_prefix(err, "seam frame %" PRId64 ": ", n);
            goto out;
        }
        n++;
    }
    if (n != count) {
        rc = rf_err_set(err, RF_EVERIFY, "seam parts '%s' and '%s' hold %" PRId64 " frames, expected %"
                        PRId64, outgoing, incoming, n, count);
        goto out;
    }
    rc = rf_encoder_finish(enc, err);
out:
    rf_encoder_destroy(&enc);
    rf_decoder_destroy(&da);
    rf_decoder_destroy(&db);
    av_frame_free(&fa);
    av_frame_free(&fb);
    av_frame_free(&mix);
    return rc;
}
