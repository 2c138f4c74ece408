/* x264enc.c - libx264 driven directly, for the one thing FFmpeg 5.1's wrapper cannot give: the
 * encoder's reconstructed frames.
 *
 * With b_full_recon, every picture x264 returns carries its reconstruction - deblocked, exactly
 * what any conforming H.264 decoder produces from the packet (the standard fixes the decoding
 * process bit for bit). Hashing those instead of decoding the output again is what makes the
 * worker's per-frame checksums nearly free (docs/PERFORMANCE.md); the coordinator still checks
 * them against its own decode of the uploaded file, so a reconstruction that ever differed from
 * the bitstream would fail verification, never pass silently (tests/media/test_encode.c compares
 * them with rf_media_checksum over B-frames, GOP boundaries and odd sizes).
 *
 * Settings follow FFmpeg's libx264 wrapper (preset/tune first, then the job's crf, bitrate, GOP,
 * colour description, closed GOPs, Annex B packets with SPS/PPS as global headers), so a job's
 * chunks look like what `ffmpeg -c:v libx264` with the same options makes. One difference: x264's
 * version/options SEI is not written (it lists the thread count, which differs between workers).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "media_internal.h"

#ifdef RF_HAVE_X264

#include <x264.h>

struct rf_x264 {
    x264_t *enc;
    x264_param_t param;
    int width, height;
    AVBufferPool *pool[3];     /* recon planes: reused, so no fresh pages to fault in per frame */
    int linesize[3];
    struct SwsContext *nv12;   /* NV12 -> yuv420p: libswscale's SIMD deinterleave, exact copy */
};

/* The encoder options the direct path understands; anything else goes through FFmpeg. */
static const char *const s_known[] = {"x264-params", "tune", "profile"};

static const char *s_opt(const rf_encode_params_t *p, const char *key)
{
    for (size_t k = 0; k < p->nopts; k++)
        if (p->opt_keys[k] && strcmp(p->opt_keys[k], key) == 0)
            return p->opt_values[k];
    return NULL;
}

bool rf_x264_usable(const rf_encode_params_t *p)
{
    if (!p->codec || strcmp(p->codec, "libx264") != 0 || p->pix_fmt != AV_PIX_FMT_YUV420P)
        return false;
    if (getenv("RF_X264_VIA_FFMPEG")) /* benchmarks compare both paths */
        return false;
    for (size_t k = 0; k < p->nopts; k++) {
        bool known = false;
        for (size_t i = 0; i < sizeof(s_known) / sizeof(s_known[0]); i++)
            known |= p->opt_keys[k] && strcmp(p->opt_keys[k], s_known[i]) == 0;
        if (!known)
            return false;
    }
    return true;
}

static void s_log(void *priv, int level, const char *fmt, va_list ap)
{
    (void)priv;
    int lvl = level == X264_LOG_ERROR ? AV_LOG_ERROR
            : level == X264_LOG_WARNING ? AV_LOG_WARNING
            : level == X264_LOG_INFO ? AV_LOG_INFO : AV_LOG_DEBUG;
    av_vlog(NULL, lvl, fmt, ap);
}

/* "key=value:key=value" into x264_param_parse, as FFmpeg's x264-params does. */
static int s_parse_params(x264_param_t *param, const char *list, rf_err_t *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
        return rf_err_set(err, RF_ETOOBIG, "encoder 'libx264': x264-params is too long");
    for (char *kv = buf; kv && *kv;) {
        char *next = strchr(kv, ':');
        if (next)
            *next++ = '\0';
        char *eq = strchr(kv, '=');
        const char *value = "1";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        int rc = *kv ? x264_param_parse(param, kv, value) : 0;
        if (rc == X264_PARAM_BAD_NAME)
            return rf_err_set(err, RF_EINVAL, "encoder 'libx264': x264-params: unknown option '%s'",
                              kv);
        if (rc == X264_PARAM_BAD_VALUE)
            return rf_err_set(err, RF_EINVAL,
                              "encoder 'libx264': x264-params: bad value '%s' for '%s'", value, kv);
        kv = next;
    }
    return 0;
}

int rf_x264_open(const rf_encode_params_t *p, const char *x264_params, AVCodecParameters *par,
                 rf_x264_t **out, rf_err_t *err)
{
    *out = NULL;
    rf_x264_t *x = calloc(1, sizeof(*x));
    if (!x)
        return rf_err_set(err, RF_ENOMEM, "encoder 'libx264': out of memory");
    x264_param_t *q = &x->param;
    int ret;
    const char *tune = s_opt(p, "tune"), *profile = s_opt(p, "profile");
    x264_param_default(q);
    if ((p->preset || tune) && x264_param_default_preset(q, p->preset, tune) < 0) {
        ret = rf_err_set(err, RF_EINVAL, "encoder 'libx264' failed to open: unknown preset '%s' "
                         "or tune '%s'", p->preset ? p->preset : "", tune ? tune : "");
        goto fail;
    }
    q->pf_log = s_log;
    q->i_log_level = X264_LOG_WARNING;
    q->i_csp = X264_CSP_I420;
    q->i_bitdepth = 8;
    q->i_width = p->width;
    q->i_height = p->height;
    q->i_fps_num = (uint32_t)p->frame_rate.num;
    q->i_fps_den = (uint32_t)p->frame_rate.den;
    q->i_timebase_num = (uint32_t)p->frame_rate.den;
    q->i_timebase_den = (uint32_t)p->frame_rate.num;
    if (p->sample_aspect_ratio.num > 0 && p->sample_aspect_ratio.den > 0) {
        q->vui.i_sar_width = p->sample_aspect_ratio.num;
        q->vui.i_sar_height = p->sample_aspect_ratio.den;
    }
    q->vui.b_fullrange = p->color_range == AVCOL_RANGE_JPEG;
    if (p->color_primaries != AVCOL_PRI_UNSPECIFIED && p->color_primaries > 0)
        q->vui.i_colorprim = p->color_primaries;
    if (p->color_trc != AVCOL_TRC_UNSPECIFIED && p->color_trc > 0)
        q->vui.i_transfer = p->color_trc;
    if (p->color_space != AVCOL_SPC_UNSPECIFIED && p->color_space > 0)
        q->vui.i_colmatrix = p->color_space;
    if (p->chroma_location > AVCHROMA_LOC_UNSPECIFIED && p->chroma_location < AVCHROMA_LOC_NB)
        q->vui.i_chroma_loc = p->chroma_location - 1;
    if (p->crf >= 0) {
        q->rc.i_rc_method = X264_RC_CRF;
        q->rc.f_rf_constant = (float)p->crf;
    }
    if (p->bitrate > 0) {
        q->rc.i_rc_method = X264_RC_ABR;
        q->rc.i_bitrate = (int)(p->bitrate / 1000);
    }
    if (p->gop > 0)
        q->i_keyint_max = p->gop;
    q->b_open_gop = 0;
    q->b_annexb = 1;
    q->b_repeat_headers = 0; /* SPS/PPS are the global headers (extradata) */
    q->i_threads = p->threads > 0 ? p->threads : X264_THREADS_AUTO;
    q->b_full_recon = 1;
    if (x264_params && (ret = s_parse_params(q, x264_params, err)) < 0)
        goto fail;
    if (profile && x264_param_apply_profile(q, profile) < 0) {
        ret = rf_err_set(err, RF_EINVAL, "encoder 'libx264' failed to open: profile '%s' does not "
                         "fit these settings", profile);
        goto fail;
    }
    x->enc = x264_encoder_open(q);
    if (!x->enc) {
        ret = rf_err_set(err, RF_EMEDIA, "encoder 'libx264' failed to open (x264 refused the "
                         "settings; its log says why)");
        goto fail;
    }
    x264_encoder_parameters(x->enc, q);
    x->width = p->width;
    x->height = p->height;

    /* Extradata: SPS and PPS, Annex B, as FFmpeg's wrapper stores them. */
    x264_nal_t *nals = NULL;
    int nnal = 0;
    if (x264_encoder_headers(x->enc, &nals, &nnal) < 0) {
        ret = rf_err_set(err, RF_EMEDIA, "encoder 'libx264': cannot make the stream headers");
        goto fail;
    }
    size_t size = 0;
    for (int i = 0; i < nnal; i++)
        if (nals[i].i_type != NAL_SEI)
            size += (size_t)nals[i].i_payload;
    par->extradata = av_mallocz(size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!par->extradata) {
        ret = rf_err_set(err, RF_ENOMEM, "encoder 'libx264': out of memory");
        goto fail;
    }
    size_t at = 0;
    int profile_idc = FF_PROFILE_UNKNOWN;
    for (int i = 0; i < nnal; i++) {
        if (nals[i].i_type == NAL_SEI)
            continue;
        if (nals[i].i_type == NAL_SPS && nals[i].i_payload > 5)
            profile_idc = nals[i].p_payload[4 + (nals[i].p_payload[2] == 0)]; /* after the start code */
        memcpy(par->extradata + at, nals[i].p_payload, (size_t)nals[i].i_payload);
        at += (size_t)nals[i].i_payload;
    }
    par->extradata_size = (int)size;
    par->codec_type = AVMEDIA_TYPE_VIDEO;
    par->codec_id = AV_CODEC_ID_H264;
    par->format = AV_PIX_FMT_YUV420P;
    par->width = p->width;
    par->height = p->height;
    par->sample_aspect_ratio = p->sample_aspect_ratio.num > 0 ? p->sample_aspect_ratio
                                                              : (AVRational){0, 1};
    par->color_range = p->color_range;
    par->color_primaries = p->color_primaries;
    par->color_trc = p->color_trc;
    par->color_space = p->color_space;
    par->chroma_location = p->chroma_location;
    par->profile = profile_idc;
    par->level = q->i_level_idc;
    par->video_delay = q->i_bframe ? (q->i_bframe_pyramid ? 2 : 1) : 0;
    *out = x;
    return 0;
fail:
    rf_x264_close(&x);
    return ret;
}

/* Copies x264's reconstruction (NV12 or I420, 8-bit) into recon as yuv420p. */
static int s_recon(rf_x264_t *x, const x264_picture_t *pic, AVFrame *recon, rf_err_t *err)
{
    int csp = pic->img.i_csp & X264_CSP_MASK;
    if ((pic->img.i_csp & X264_CSP_HIGH_DEPTH) || (csp != X264_CSP_NV12 && csp != X264_CSP_I420))
        return rf_err_set(err, RF_EMEDIA, "encoder 'libx264': reconstruction in colourspace %#x, "
                          "expected 8-bit 4:2:0", pic->img.i_csp);
    int cw = (x->width + 1) / 2, ch = (x->height + 1) / 2;
    av_frame_unref(recon);
    recon->format = AV_PIX_FMT_YUV420P;
    recon->width = x->width;
    recon->height = x->height;
    for (int i = 0; i < 3; i++) {
        if (!x->pool[i]) {
            x->linesize[i] = FFALIGN(i ? cw : x->width, 64);
            x->pool[i] = av_buffer_pool_init((size_t)x->linesize[i] * (size_t)(i ? ch : x->height),
                                             av_buffer_allocz);
        }
        recon->buf[i] = x->pool[i] ? av_buffer_pool_get(x->pool[i]) : NULL;
        if (!recon->buf[i])
            return rf_err_set(err, RF_ENOMEM, "encoder 'libx264': out of memory");
        recon->data[i] = recon->buf[i]->data;
        recon->linesize[i] = x->linesize[i];
    }
    if (csp == X264_CSP_I420) {
        av_image_copy_plane(recon->data[0], recon->linesize[0], pic->img.plane[0],
                            pic->img.i_stride[0], x->width, x->height);
        for (int c = 1; c <= 2; c++)
            av_image_copy_plane(recon->data[c], recon->linesize[c], pic->img.plane[c],
                                pic->img.i_stride[c], cw, ch);
    } else {
        if (!x->nv12)
            x->nv12 = sws_getContext(x->width, x->height, AV_PIX_FMT_NV12, x->width, x->height,
                                     AV_PIX_FMT_YUV420P, SWS_POINT, NULL, NULL, NULL);
        if (!x->nv12)
            return rf_err_set(err, RF_ENOMEM, "encoder 'libx264': cannot set up NV12 conversion");
        /* swscale's unscaled NV12 path: luma copied, chroma deinterleaved, bit for bit */
        const uint8_t *src[4] = {pic->img.plane[0], pic->img.plane[1], NULL, NULL};
        int src_stride[4] = {pic->img.i_stride[0], pic->img.i_stride[1], 0, 0};
        sws_scale(x->nv12, src, src_stride, 0, x->height, recon->data, recon->linesize);
    }
    recon->pts = pic->i_pts;
    recon->key_frame = pic->b_keyframe;
    return 0;
}

int rf_x264_encode(rf_x264_t *x, const AVFrame *frame, AVPacket *pkt, AVFrame *recon,
                   rf_err_t *err)
{
    x264_picture_t in, out;
    x264_nal_t *nals = NULL;
    int nnal = 0;
    x264_picture_init(&in);
    x264_picture_init(&out);
    if (frame) {
        in.img.i_csp = X264_CSP_I420;
        in.img.i_plane = 3;
        for (int i = 0; i < 3; i++) {
            in.img.plane[i] = frame->data[i];
            in.img.i_stride[i] = frame->linesize[i];
        }
        in.i_pts = frame->pts;
        in.i_type = X264_TYPE_AUTO; /* the GOP decides, never the source's picture types */
    }
    int size = x264_encoder_encode(x->enc, &nals, &nnal, frame ? &in : NULL, &out);
    if (size < 0)
        return rf_err_set(err, RF_EMEDIA, "encoder 'libx264' failed%s", frame ? "" : " while draining");
    if (size == 0)
        return 0;
    /* x264 guarantees the payloads of one call are contiguous in memory. */
    int rc = av_new_packet(pkt, size);
    if (rc < 0)
        return rf_err_set(err, RF_ENOMEM, "encoder 'libx264': out of memory");
    memcpy(pkt->data, nals[0].p_payload, (size_t)size);
    pkt->pts = out.i_pts;
    pkt->dts = out.i_dts;
    if (out.b_keyframe)
        pkt->flags |= AV_PKT_FLAG_KEY;
    if (recon && (rc = s_recon(x, &out, recon, err)) < 0) {
        av_packet_unref(pkt);
        return rc;
    }
    return 1;
}

int rf_x264_delayed(rf_x264_t *x)
{
    return x264_encoder_delayed_frames(x->enc);
}

void rf_x264_close(rf_x264_t **px)
{
    if (!px || !*px)
        return;
    if ((*px)->enc)
        x264_encoder_close((*px)->enc);
    for (int i = 0; i < 3; i++)
        av_buffer_pool_uninit(&(*px)->pool[i]); /* freed once the last frame lets go */
    sws_freeContext((*px)->nv12);
    free(*px);
    *px = NULL;
}

#else /* !RF_HAVE_X264: every libx264 encode goes through FFmpeg's wrapper */

bool rf_x264_usable(const rf_encode_params_t *p)
{
    (void)p;
    return false;
}

int rf_x264_open(const rf_encode_params_t *p, const char *x264_params, AVCodecParameters *par,
                 rf_x264_t **out, rf_err_t *err)
{
    (void)p, (void)x264_params, (void)par;
    *out = NULL;
    return rf_err_set(err, RF_EUNAVAIL, "encoder 'libx264': built without libx264's headers");
}

int rf_x264_encode(rf_x264_t *x, const AVFrame *frame, AVPacket *pkt, AVFrame *recon,
                   rf_err_t *err)
{
    (void)x, (void)frame, (void)pkt, (void)recon;
    return rf_err_set(err, RF_EUNAVAIL, "encoder 'libx264': built without libx264's headers");
}

int rf_x264_delayed(rf_x264_t *x)
{
    (void)x;
    return 0;
}

void rf_x264_close(rf_x264_t **px)
{
    (void)px;
}

#endif
