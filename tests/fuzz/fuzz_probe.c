/* fuzz_probe.c - libFuzzer target for the media probe (media/media.h): rf_media_probe opens a
 * source, indexes every video packet and decodes one frame; a job's input is whatever file a user
 * names, so it must refuse anything broken with an error and never crash. The bytes are given as a
 * memory file (memfd), which FFmpeg opens like any other path.
 *
 * Properties beyond "no crash, no leak, no UB": a refusal says why; an accepted source has a sane
 * index (frames > 0, a strictly increasing PTS table, keyframes ascending and in range). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <libavutil/log.h>

#include "error.h"
#include "media.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    av_log_set_level(AV_LOG_QUIET);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-media", 0);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return 0;
        }
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rf_media_info_t *info = NULL;
    rf_err_t err = {0};
    if (rf_media_probe(path, &info, &err) == 0) {
        if (!info || info->nb_frames <= 0 || info->nb_frames > RF_MEDIA_MAX_FRAMES || !info->pts)
            abort();
        for (int64_t i = 1; i < info->nb_frames; i++)
            if (info->pts[i] <= info->pts[i - 1])
                abort();
        for (size_t k = 0; k < info->nkeyframes; k++)
            if (info->keyframes[k] < 0 || info->keyframes[k] >= info->nb_frames ||
                (k > 0 && info->keyframes[k] <= info->keyframes[k - 1]))
                abort();
        (void)rf_media_keyframe_before(info, info->nb_frames - 1);
        rf_media_info_destroy(&info);
    } else if (info || !err.msg[0]) {
        abort();
    }
    close(fd);
    return 0;
}
