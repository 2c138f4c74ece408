/* avlog.c - FFmpeg's log routed into reelfarm's logger.
 *
 * Every failure FFmpeg reports also comes back to our code as an error code, and we report it
 * with context (file, chunk, frame). FFmpeg's own lines ("moov atom not found") therefore go to
 * debug: visible with --log-level debug, never a second, context-free error line for users.
 */
#include <stdio.h>
#include <string.h>

#include <libavutil/log.h>

#include "log.h"
#include "media.h"

static void s_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level > AV_LOG_VERBOSE || !rf_log_enabled(RF_LOG_DEBUG))
        return;
    char line[1024];
    int prefix = 1;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line), &prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        rf_log(RF_LOG_DEBUG, "ffmpeg", "%s", line);
}

void rf_media_log_init(void)
{
    av_log_set_callback(s_callback);
}
