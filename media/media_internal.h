/* media_internal.h - helpers shared by the files of media/; not part of the media.h contract. */
#ifndef RF_MEDIA_INTERNAL_H
#define RF_MEDIA_INTERNAL_H

#include <libavformat/avformat.h>

#include "media.h"

/* Opens path for demuxing and reads the stream info. Errors name the file and say whether it is
 * missing ("'x.mp4': no such file") or not media ("'x.mp4': not a media file (...)"). */
int rf_media_open_input(const char *path, AVFormatContext **out, rf_err_t *err);

/* Index of the best video stream of fmt, or RF_EMEDIA with "'path': no video stream". */
int rf_media_find_video(AVFormatContext *fmt, const char *path, rf_err_t *err);

/* Position of pts in the sorted table, or -1. */
int64_t rf_media_pts_index(const rf_media_info_t *info, int64_t pts);

#endif
