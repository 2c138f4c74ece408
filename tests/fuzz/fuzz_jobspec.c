/* fuzz_jobspec.c - libFuzzer target for the job spec loader (config/config.h), the text a client
 * sends with `reelfarm submit`, and for the coordinator's and worker's config loaders on the same
 * bytes (read from a memory file: they take a path).
 *
 * Properties beyond "no crash, no leak, no UB": a refused spec or config always says why (a
 * non-empty, one-line message naming the source), and an accepted spec has every field the rest
 * of the farm relies on (absolute input and output paths, a codec, target <= max seconds). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "error.h"

static void s_check_refusal(const rf_err_t *err, const char *source)
{
    if (!err->msg[0] || strchr(err->msg, '\n'))
        abort(); /* one clear line */
    if (source && !strstr(err->msg, source) && err->code != RF_ENOMEM)
        abort(); /* it names what is wrong and where */
}

static void s_spec(const uint8_t *data, size_t size)
{
    rf_job_spec_t *spec = NULL;
    rf_err_t err = {0};
    int rc = rf_job_spec_load_string((const char *)data, size, "fuzz.yaml", "/nonexistent/base",
                                     &spec, &err);
    if (rc) {
        if (spec)
            abort();
        s_check_refusal(&err, "fuzz.yaml");
        return;
    }
    if (!spec || !spec->input || spec->input[0] != '/' || !spec->output || spec->output[0] != '/' ||
        !spec->encode.codec || spec->chunking.target_seconds <= 0 ||
        spec->chunking.max_seconds < spec->chunking.target_seconds)
        abort();
    bool gpu = false;
    int64_t vram = 0;
    rf_job_spec_requirements(spec, &gpu, &vram);
    (void)rf_job_spec_context(spec);
    rf_job_spec_destroy(&spec);
    if (spec)
        abort();
}

/* The daemon config loaders read a file: give them the bytes as a memory file. */
static void s_daemon_configs(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", 0);
    if (fd < 0)
        return;
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0) {
            close(fd);
            return;
        }
        off += (size_t)n;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    rf_err_t err = {0};
    rf_coordinator_config_t *cc = NULL;
    if (rf_coordinator_config_load(path, &cc, &err) == 0) {
        if (!cc || cc->heartbeat_ms < 100 || cc->liveness < 2 || cc->max_attempts < 1)
            abort();
        rf_coordinator_config_destroy(&cc);
    } else {
        s_check_refusal(&err, NULL);
    }
    rf_worker_config_t *wc = NULL;
    memset(&err, 0, sizeof(err));
    if (rf_worker_config_load(path, &wc, &err) == 0)
        rf_worker_config_destroy(&wc);
    else
        s_check_refusal(&err, NULL);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_spec(data, size);
    s_daemon_configs(data, size);
    return 0;
}
