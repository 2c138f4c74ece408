/* verify.c - `reelfarm verify OUTPUT [--source SRC] [--lossless] [--json]`: checks an output file
 * now, with the same code the coordinator runs after stitching (rf_media_verify_output): frame
 * count equal to the source's, duration within half a frame, audio packets byte-identical,
 * timestamps strictly increasing; with --lossless also every decoded frame's SHA-256 equal to the
 * source's - of the chroma planes, since every farm output carries the watermark in its luma
 * (rf_media_checksum_chroma on both).
 *
 * Provenance (a C2PA manifest, its signature, a watermark) is not checked: that arrives with the
 * provenance issue. The output says so on every run, in a `provenance` line with status `skip`, so
 * a pass is never mistaken for a provenance check.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "media.h"

#define S_DETAIL_MAX 512
#define S_MAX_CHECKS 8

typedef struct s_check {
    const char *name;   /* frames, duration, audio, timestamps, lossless, media, provenance */
    const char *status; /* ok, fail, skip */
    char detail[S_DETAIL_MAX];
} s_check_t;

typedef struct s_verify {
    s_check_t checks[S_MAX_CHECKS];
    int n;
    int failed;
    const char *first_failed;
} s_verify_t;

static void s_add(s_verify_t *v, const char *name, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void s_add(s_verify_t *v, const char *name, const char *status, const char *fmt, ...)
{
    if (v->n == S_MAX_CHECKS)
        return;
    s_check_t *c = &v->checks[v->n++];
    c->name = name;
    c->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
    if (!strcmp(status, "fail")) {
        if (!v->failed)
            v->first_failed = name;
        v->failed++;
    }
}

/* Per-frame hashes collected by rf_media_checksum. */
typedef struct s_hashes {
    uint8_t (*sha)[RF_SHA256_LEN];
    size_t n, cap;
    bool oom;
} s_hashes_t;

static void s_on_frame(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN])
{
    (void)index;
    s_hashes_t *h = arg;
    if (h->oom)
        return;
    if (h->n == h->cap) {
        size_t ncap = h->cap ? h->cap * 2 : 1024;
        void *grown = realloc(h->sha, ncap * sizeof(*h->sha));
        if (!grown) {
            h->oom = true;
            return;
        }
        h->sha = grown;
        h->cap = ncap;
    }
    memcpy(h->sha[h->n++], sha, RF_SHA256_LEN);
}

static void s_check_lossless(s_verify_t *v, const char *src, const char *out)
{
    s_hashes_t hs = {0}, ho = {0};
    uint64_t ns = 0, no = 0;
    uint8_t ds[RF_SHA256_LEN], dout[RF_SHA256_LEN];
    rf_err_t err = {0};
    /* Farm outputs carry the invisible watermark in luma (docs/PROVENANCE.md): compare the rest. */
    if (rf_media_checksum_chroma(src, &ns, ds, s_on_frame, &hs, &err) ||
        rf_media_checksum_chroma(out, &no, dout, s_on_frame, &ho, &err)) {
        s_add(v, "lossless", "fail", "cannot decode: %s", err.msg);
    } else if (hs.oom || ho.oom) {
        s_add(v, "lossless", "fail", "out of memory collecting frame checksums");
    } else {
        size_t first = 0, common = hs.n < ho.n ? hs.n : ho.n;
        while (first < common && !memcmp(hs.sha[first], ho.sha[first], RF_SHA256_LEN))
            first++;
        if (hs.n == ho.n && first == common)
            s_add(v, "lossless", "ok",
                  "%zu decoded frames identical to the source's but for the watermark in luma "
                  "(SHA-256 of chroma)",
                  ho.n);
        else if (first < common)
            s_add(v, "lossless", "fail",
                  "decoded frame %zu differs from the source's (%zu frames, source %zu)", first,
                  ho.n, hs.n);
        else
            s_add(v, "lossless", "fail",
                  "%zu decoded frames, the source %zu (the first %zu are identical)", ho.n, hs.n,
                  common);
    }
    free(hs.sha);
    free(ho.sha);
}


int rf_cli_verify(const rf_cli_args_t *a)
{
    const char *out = a->operands[0], *src = rf_cli_arg(a, "source");
    bool lossless = rf_cli_has(a, "lossless"), json = rf_cli_has(a, "json");
    if (src && !*src)
        return rf_cli_usage_error(a->cmd, "flag '--source' needs a file");
    if (lossless && !src)
        return rf_cli_usage_error(a->cmd, "flag '--lossless' needs '--source SRC' to compare with");
    rf_err_t err = {0};
    rf_media_info_t *src_info = NULL, *out_info = NULL;
    if (src && rf_media_probe(src, &src_info, &err)) {
        fprintf(stderr, "reelfarm: verify: source: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    s_verify_t v;
    memset(&v, 0, sizeof(v));
    if (rf_media_probe(out, &out_info, &err)) {
        s_add(&v, "media", "fail", "%s", err.msg);
    } else {
        /* Without a source the output is compared with itself: only its timestamps say anything. */
        const rf_media_info_t *ref = src_info ? src_info : out_info;
        bool audio = ref->naudio > 0;
        rf_verify_report_t rep;
        memset(&rep, 0, sizeof(rep));
        rf_err_t verr = {0};
        rf_media_verify_output(ref, out, audio, &rep, &verr);
        s_add(&v, "media", "ok", "%s video %dx%d, %" PRId64 " frames, %d audio stream(s)",
              out_info->codec_name, out_info->width, out_info->height, out_info->nb_frames,
              out_info->naudio);
        if (src_info) {
            double frame_s = (double)src_info->frame_duration * av_q2d(src_info->time_base);
            double diff = rep.duration_s - src_info->duration_s;
            if (rep.frames == src_info->nb_frames)
                s_add(&v, "frames", "ok", "%" PRId64 " video frames, as the source", rep.frames);
            else
                s_add(&v, "frames", "fail", "%" PRId64 " video frames, the source has %" PRId64,
                      rep.frames, src_info->nb_frames);
            if (diff <= frame_s / 2 && diff >= -frame_s / 2)
                s_add(&v, "duration", "ok", "%.6f s (source %.6f s)", rep.duration_s,
                      src_info->duration_s);
            else
                s_add(&v, "duration", "fail",
                      "%.6f s, the source %.6f s (more than half a frame off)", rep.duration_s,
                      src_info->duration_s);
            if (!audio)
                s_add(&v, "audio", "skip", "the source has no audio");
            else if (rep.audio_identical)
                s_add(&v, "audio", "ok", "%" PRId64 " audio packets identical to the source's",
                      rep.audio_packets);
            else
                s_add(&v, "audio", "fail",
                      "audio packets differ from the source's (%" PRId64 " in the output, %" PRId64
                      " in the source)",
                      rep.audio_packets, src_info->audio_packets);
        } else {
            s_add(&v, "frames", "skip", "no --source to compare with");
        }
        if (rep.timestamps_increasing)
            s_add(&v, "timestamps", "ok", "video PTS and DTS strictly increasing");
        else
            s_add(&v, "timestamps", "fail", "%s",
                  verr.msg[0] ? verr.msg : "not strictly increasing");
        if (lossless)
            s_check_lossless(&v, src, out);
    }
    s_add(&v, "provenance", "skip",
          "not checked: C2PA manifest, signature and watermark checks are not implemented yet");
    if (json) {
        printf("{\"output\":");
        rf_cli_json_string(stdout, out);
        printf(",\"source\":");
        if (src)
            rf_cli_json_string(stdout, src);
        else
            printf("null");
        printf(",\"ok\":%s,\"provenance_checked\":false,\"checks\":[", v.failed ? "false" : "true");
        for (int i = 0; i < v.n; i++) {
            printf("%s{\"check\":\"%s\",\"status\":\"%s\",\"detail\":", i ? "," : "",
                   v.checks[i].name, v.checks[i].status);
            rf_cli_json_string(stdout, v.checks[i].detail);
            printf("}");
        }
        printf("]}\n");
    } else {
        for (int i = 0; i < v.n; i++)
            printf("%-5s %-11s %s\n", v.checks[i].status, v.checks[i].name, v.checks[i].detail);
        printf("verify: '%s': %s (provenance not checked)\n", out,
               v.failed ? "FAILED" : "all media checks passed");
    }
    if (v.failed) {
        const s_check_t *c = NULL;
        for (int i = 0; i < v.n && !c; i++)
            if (!strcmp(v.checks[i].status, "fail"))
                c = &v.checks[i];
        fprintf(stderr, "reelfarm: '%s' failed verification: check '%s': %s\n", out, c->name,
                c->detail);
    }
    rf_media_info_destroy(&src_info);
    rf_media_info_destroy(&out_info);
    return v.failed ? RF_EXIT_FAILED : RF_EXIT_OK;
}
