/* media_internal.h - helpers shared by the files of media/; not part of the media.h contract. */
#ifndef RF_MEDIA_INTERNAL_H
#define RF_MEDIA_INTERNAL_H

#include <stdbool.h>

#include <libavformat/avformat.h>

#include "media.h"

/* Opens path for demuxing and reads the stream info. Errors name the file and say whether it is
 * missing ("'x.mp4': no such file") or not media ("'x.mp4': not a media file (...)"). */
int rf_media_open_input(const char *path, AVFormatContext **out, rf_err_t *err);

/* Index of the best video stream of fmt, or RF_EMEDIA with "'path': no video stream". */
int rf_media_find_video(AVFormatContext *fmt, const char *path, rf_err_t *err);

/* Position of pts in the sorted table, or -1. */
int64_t rf_media_pts_index(const rf_media_info_t *info, int64_t pts);

/* libx264 driven directly (x264enc.c), so the encoder can hand out its reconstructed frames.
 * rf_x264_usable: codec libx264, yuv420p, only options the direct path maps (x264-params, tune,
 * profile), the library's headers present at build time, and RF_X264_VIA_FFMPEG unset.
 * rf_x264_open fills par (extradata = SPS + PPS, Annex B). rf_x264_encode: frame NULL drains one
 * step; returns 1 with pkt (timestamps in 1/frame_rate) and, when recon is not NULL, the packet's
 * picture as decoded (yuv420p, pts = its local index); 0 when nothing came out. */
typedef struct rf_x264 rf_x264_t;
bool rf_x264_usable(const rf_encode_params_t *p);
int rf_x264_open(const rf_encode_params_t *p, const char *x264_params, AVCodecParameters *par,
                 rf_x264_t **out, rf_err_t *err);
int rf_x264_encode(rf_x264_t *x, const AVFrame *frame, AVPacket *pkt, AVFrame *recon,
                   rf_err_t *err);
int rf_x264_delayed(rf_x264_t *x);
void rf_x264_close(rf_x264_t **x);

#endif
