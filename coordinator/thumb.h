/* thumb.h - a JPEG of one frame of a media file, for the dashboard (coordinator/http.c).
 *
 * Blocking (it decodes from the start of the file up to the frame): call it off any event loop,
 * on a thread pool. Chunk results are a few hundred frames, so this costs well under a second;
 * for a whole source or output file it is bounded by RF_THUMB_MAX_DECODE frames.
 */
#ifndef RF_THUMB_H
#define RF_THUMB_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define RF_THUMB_MAX_DECODE 20000  /* frames decoded at most to reach the one asked for */
#define RF_THUMB_MAX_WIDTH 1920

/* Decodes frame `index` (0-based, presentation order) of path, scales it to `width` pixels wide
 * (height keeps the display aspect, even), and encodes it with FFmpeg's mjpeg encoder.
 * *jpeg (malloc'd) and *len get the bytes. A file with fewer frames gives its last frame. */
int rf_thumb_jpeg(const char *path, int64_t index, int width, uint8_t **jpeg, size_t *len,
                  rf_err_t *err);

#endif
