/* worker_sim.h - what a worker does with one chunk, for the media tests: slice the source, decode,
 * keep the frames whose PTS lies in [start, end), encode them with local indices. */
#ifndef RF_TEST_MEDIA_WORKER_SIM_H
#define RF_TEST_MEDIA_WORKER_SIM_H

#include "media.h"
#include "media/fixture.h"

static inline rf_encode_params_t rf_test_params(const rf_media_info_t *info, const char *codec)
{
    rf_encode_params_t p = {
        .codec = codec,
        .crf = -1,
        .preset = strcmp(codec, "libx264") == 0 ? "veryfast" : NULL, /* B-frames on */
        .pix_fmt = info->pix_fmt,
        .width = info->width,
        .height = info->height,
        .frame_rate = info->frame_rate,
        .sample_aspect_ratio = info->sample_aspect_ratio,
        .color_range = info->color_range,
        .color_primaries = info->color_primaries,
        .color_trc = info->color_trc,
        .color_space = info->color_space,
        .chroma_location = info->chroma_location,
    };
    return p;
}

/* Encodes global frames [from, to) of info into out_path (NUT) via a slice in dir. */
static inline void rf_test_encode_range(const rf_media_info_t *info, int64_t from, int64_t to,
                                        const char *codec, const char *dir, const char *out_path)
{
    char slice[1100];
    rf_err_t err = {0};
    snprintf(slice, sizeof(slice), "%s/slice-%lld.nut", dir, (long long)from);
    int ret = rf_media_slice(info, from, to, slice, &err);
    if (ret != 0)
        fail_msg("slice: %s", err.msg);
    rf_decoder_t *d = NULL;
    if (rf_decoder_open(slice, &d, &err) != 0)
        fail_msg("decoder: %s", err.msg);
    rf_encode_params_t p = rf_test_params(info, codec);
    rf_encoder_t *e = NULL;
    if (rf_encoder_open(&p, out_path, &e, &err) != 0)
        fail_msg("encoder: %s", err.msg);
    AVFrame *f = av_frame_alloc();
    /* NUT may store a finer multiple of the source's time base: compare in the decoder's. */
    AVRational tb = rf_decoder_time_base(d);
    int64_t start_pts = av_rescale_q(info->pts[from], info->time_base, tb);
    int64_t end_pts = to < info->nb_frames ? av_rescale_q(info->pts[to], info->time_base, tb)
                                           : INT64_MAX;
    int64_t local = 0;
    while ((ret = rf_decoder_next(d, f, &err)) == 1) {
        if (f->pts < start_pts || f->pts >= end_pts)
            continue;
        f->pts = local++;
        if (rf_encoder_write(e, f, &err) != 0)
            fail_msg("encode: %s", err.msg);
    }
    assert_int_equal(ret, 0);
    assert_int_equal(local, to - from);
    if (rf_encoder_finish(e, &err) != 0)
        fail_msg("finish: %s", err.msg);
    av_frame_free(&f);
    rf_encoder_destroy(&e);
    rf_decoder_destroy(&d);
    unlink(slice);
}

#endif
