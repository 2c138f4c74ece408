/* verify.c - `reelfarm verify FILE [--trust CA.pem] [--sidecar F.c2pa] [--watermark-key FILE]
 * [--source SRC] [--lossless] [--json] [--coordinator EP]`: what a file says about where it came
 * from, and (with --source) whether it matches the job's input.
 *
 * Provenance (docs/PROVENANCE.md): the C2PA manifest checked in the spec's order
 * (rf_prov_verify_file: structure, claim signature, certificate chain against --trust, hashed
 * assertions, the hard binding over the file's bytes), compared with the XMP; the watermark is one
 * more input (s_watermark): found, its tag is printed, and with --coordinator looked up there
 * (s_watermark_lookup) to name the job that made the file, the point of the mark once the
 * metadata is gone. The lookup never changes the exit code, which says what was found
 * (s_exit_code):
 *   0 valid, signed by a trusted farm key; 10 valid, unknown signer; 20 tampered; 30 metadata
 *   stripped but watermark found; 40 nothing found; 1 a media check against --source failed;
 *   2 usage or I/O error.
 * Every run says that finding no mark is no proof a video is authentic.
 *
 * Media checks, with the code the coordinator runs after stitching (rf_media_verify_output):
 * frame count equal to the source's, duration within half a frame, audio packets byte-identical,
 * timestamps strictly increasing; with --lossless also every decoded frame's SHA-256 equal to the
 * source's - of the chroma planes, since every farm output carries the watermark in its luma
 * (rf_media_checksum_chroma on both).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "media.h"
#include "provenance.h"

#define S_DETAIL_MAX 512
#define S_MAX_CHECKS 48

typedef struct s_check {
    const char *name;   /* media, frames, duration, audio, timestamps, lossless, c2pa, xmp, watermark */
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


/* The sentence every run prints: marks prove origin when present, never authenticity when absent. */
#define S_NOTICE                                                                                  \
    "finding no mark is no proof that a video is authentic: marks can be stripped or never added"

/* Exit codes of the provenance verdict (docs/CLI.md). */
enum {
    S_EXIT_TRUSTED = 0,
    S_EXIT_UNTRUSTED = 10,
    S_EXIT_TAMPERED = 20,
    S_EXIT_WATERMARK_ONLY = 30,
    S_EXIT_NOTHING = 40,
};

/* The watermark layer's finding: one input of the verdict. */
typedef struct s_watermark {
    bool checked;         /* a detector ran on the file */
    bool found;           /* it found the farm's watermark with a valid payload */
    char detail[256];
    char tag[RF_CLI_WM_TAG_LEN + 1]; /* found: the payload as 16 hex digits (key id, job tag) */
    /* With --coordinator: the lookup's reply (a JobList, owned) or why there is none. */
    bool looked_up;   /* a lookup was asked for (--coordinator and a mark found) */
    rf_msg_t *lookup; /* the reply; NULL when the lookup failed */
    char lookup_detail[600];
} s_watermark_t;

/* Reads a farm watermark key: the coordinator's watermark.key file (32 bytes), or 64 hex digits. */
static int s_read_wm_key(const char *path, uint8_t key[RF_WM_KEY_LEN], rf_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return rf_err_set(err, errno == ENOENT ? RF_ENOENT : RF_EIO, "watermark key '%s': %s",
                          path, strerror(errno));
    uint8_t buf[2 * RF_WM_KEY_LEN + 2];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n == RF_WM_KEY_LEN) {
        memcpy(key, buf, RF_WM_KEY_LEN);
        return 0;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 2 * RF_WM_KEY_LEN) {
        bool ok = true;
        for (size_t i = 0; i < RF_WM_KEY_LEN && ok; i++) {
            unsigned v = 0;
            ok = sscanf((const char *)buf + 2 * i, "%2x", &v) == 1;
            key[i] = (uint8_t)v;
        }
        if (ok)
            return 0;
    }
    return rf_err_set(err, RF_EINVAL, "watermark key '%s': expected the 32-byte watermark.key of a "
                      "coordinator (or 64 hex digits)", path);
}

/* Looks for the farm's invisible watermark with the farm key (`--watermark-key`, default the one
 * `reelfarm render` keeps beside its signing keys). Without a key nothing is checked, which never
 * counts as found: a file without metadata then exits 40, not 30. */
static void s_watermark(const char *path, const char *key_path, s_watermark_t *wm)
{
    char fallback[PATH_MAX + 32];
    rf_err_t err = {0};
    memset(wm, 0, sizeof(*wm));
    if (!key_path) {
        char dir[PATH_MAX];
        if (rf_cli_config_dir(dir, sizeof(dir), &err) == 0) {
            snprintf(fallback, sizeof(fallback), "%s/c2pa/watermark.key", dir);
            if (access(fallback, R_OK) == 0)
                key_path = fallback;
        }
    }
    if (!key_path) {
        snprintf(wm->detail, sizeof(wm->detail),
                 "not checked: no farm watermark key (--watermark-key <state>/watermark.key)");
        return;
    }
    uint8_t key[RF_WM_KEY_LEN];
    rf_media_wm_result_t res;
    if (s_read_wm_key(key_path, key, &err) ||
        rf_media_watermark_detect_file(path, key, &res, &err)) {
        snprintf(wm->detail, sizeof(wm->detail), "not checked: %.200s", err.msg);
        return;
    }
    sodium_memzero(key, sizeof(key));
    wm->checked = true;
    wm->found = res.found;
    if (res.found)
        snprintf(wm->tag, sizeof(wm->tag), "%016" PRIx64, res.payload);
    if (res.found)
        snprintf(wm->detail, sizeof(wm->detail),
                 "found: key id %04x, job tag %012" PRIx64 ", %" PRId64 " frames read, sync %.1f "
                 "sigma, %.0f%% of coded bits agree",
                 res.key_id, res.tag, res.frames, res.sync_score, 100.0 * res.confidence);
    else
        snprintf(wm->detail, sizeof(wm->detail),
                 "not found with this farm key (%" PRId64 " frames read, best sync %.1f sigma)",
                 res.frames, res.sync_score);
}

/* Asks the coordinator at ep which job made the file, by the watermark's tag. A failure is
 * reported (a check line, stderr), never fatal: the verdict stands without the job's name. */
static void s_watermark_lookup(const char *ep, s_watermark_t *wm)
{
    rf_err_t err = {0};
    char endpoint[512];
    wm->looked_up = true;
    if (rf_cli_resolve_endpoint(ep, endpoint, sizeof(endpoint), &err) ||
        rf_cli_wm_lookup(endpoint, wm->tag, &wm->lookup, &err)) {
        snprintf(wm->lookup_detail, sizeof(wm->lookup_detail),
                 "watermark tag %s not looked up: %.500s", wm->tag, err.msg);
        return;
    }
    const Reelfarm__JobList *list = rf_msg_env(wm->lookup)->job_list;
    if (list->n_jobs == 0)
        snprintf(wm->lookup_detail, sizeof(wm->lookup_detail),
                 "watermark tag %s: no job of the coordinator at %.300s has it (another farm with "
                 "the same key, or not a job of this client key)",
                 wm->tag, endpoint);
    else
        snprintf(wm->lookup_detail, sizeof(wm->lookup_detail),
                 "watermark tag %s: job %s ('%.200s') on %.200s", wm->tag, list->jobs[0]->job_id,
                 list->jobs[0]->name, endpoint);
}

/* The lookup's jobs (normally one), or NULL when there was no answer. */
static const Reelfarm__JobList *s_lookup_jobs(const s_watermark_t *wm)
{
    return wm->lookup ? rf_msg_env(wm->lookup)->job_list : NULL;
}

/* The verdict from the manifest and the watermark: a manifest decides when there is one (a
 * broken manifest is tampering even when a watermark is present); a watermark alone says the
 * metadata was stripped. */
static int s_exit_code(rf_prov_verdict_t verdict, const s_watermark_t *wm)
{
    switch (verdict) {
    case RF_PROV_TRUSTED:
        return S_EXIT_TRUSTED;
    case RF_PROV_UNTRUSTED:
        return S_EXIT_UNTRUSTED;
    case RF_PROV_TAMPERED:
        return S_EXIT_TAMPERED;
    case RF_PROV_NONE:
        break;
    }
    return wm->checked && wm->found ? S_EXIT_WATERMARK_ONLY : S_EXIT_NOTHING;
}

static const char *s_verdict_name(int code)
{
    switch (code) {
    case S_EXIT_TRUSTED:
        return "trusted";
    case S_EXIT_UNTRUSTED:
        return "untrusted";
    case S_EXIT_TAMPERED:
        return "tampered";
    case S_EXIT_WATERMARK_ONLY:
        return "watermark-only";
    default:
        return "none";
    }
}

static const char *s_verdict_text(int code)
{
    switch (code) {
    case S_EXIT_TRUSTED:
        return "valid C2PA manifest signed by a trusted farm key";
    case S_EXIT_UNTRUSTED:
        return "valid C2PA manifest, but the signer is unknown (no --trust anchor it chains to)";
    case S_EXIT_TAMPERED:
        return "TAMPERED: the file or its manifest changed after signing";
    case S_EXIT_WATERMARK_ONLY:
        return "metadata stripped, but the farm's watermark is present: synthetic media";
    default:
        return "no provenance mark found";
    }
}

static void s_check_media(s_verify_t *v, const char *out, const rf_media_info_t *src_info,
                          bool lossless, const char *src)
{
    rf_err_t err = {0};
    rf_media_info_t *out_info = NULL;
    if (rf_media_probe(out, &out_info, &err)) {
        s_add(v, "media", "fail", "%s", err.msg);
        return;
    }
    /* Without a source the output is compared with itself: only its timestamps say anything. */
    const rf_media_info_t *ref = src_info ? src_info : out_info;
    bool audio = ref->naudio > 0;
    rf_verify_report_t rep;
    memset(&rep, 0, sizeof(rep));
    rf_err_t verr = {0};
    rf_media_verify_output(ref, out, audio, &rep, &verr);
    s_add(v, "media", "ok", "%s video %dx%d, %" PRId64 " frames, %d audio stream(s)",
          out_info->codec_name, out_info->width, out_info->height, out_info->nb_frames,
          out_info->naudio);
    if (src_info) {
        double frame_s = (double)src_info->frame_duration * av_q2d(src_info->time_base);
        double diff = rep.duration_s - src_info->duration_s;
        if (rep.frames == src_info->nb_frames)
            s_add(v, "frames", "ok", "%" PRId64 " video frames, as the source", rep.frames);
        else
            s_add(v, "frames", "fail", "%" PRId64 " video frames, the source has %" PRId64,
                  rep.frames, src_info->nb_frames);
        if (diff <= frame_s / 2 && diff >= -frame_s / 2)
            s_add(v, "duration", "ok", "%.6f s (source %.6f s)", rep.duration_s,
                  src_info->duration_s);
        else
            s_add(v, "duration", "fail", "%.6f s, the source %.6f s (more than half a frame off)",
                  rep.duration_s, src_info->duration_s);
        if (!audio)
            s_add(v, "audio", "skip", "the source has no audio");
        else if (rep.audio_identical)
            s_add(v, "audio", "ok", "%" PRId64 " audio packets identical to the source's",
                  rep.audio_packets);
        else
            s_add(v, "audio", "fail",
                  "audio packets differ from the source's (%" PRId64 " in the output, %" PRId64
                  " in the source)",
                  rep.audio_packets, src_info->audio_packets);
    } else {
        s_add(v, "frames", "skip", "no --source to compare with");
    }
    if (rep.timestamps_increasing)
        s_add(v, "timestamps", "ok", "video PTS and DTS strictly increasing");
    else
        s_add(v, "timestamps", "fail", "%s", verr.msg[0] ? verr.msg : "not strictly increasing");
    if (lossless)
        s_check_lossless(v, src, out);
    rf_media_info_destroy(&out_info);
}

static void s_json_opt(const char *s)
{
    if (s && *s)
        rf_cli_json_string(stdout, s);
    else
        printf("null");
}

static void s_print_json(const char *out, const char *src, const s_verify_t *v,
                         const rf_prov_report_t *p, const s_watermark_t *wm, int prov_code,
                         int code)
{
    printf("{\"output\":");
    rf_cli_json_string(stdout, out);
    printf(",\"source\":");
    s_json_opt(src);
    printf(",\"ok\":%s,\"exit_code\":%d,\"provenance_checked\":true,\"checks\":[",
           v->failed ? "false" : "true", code);
    for (int i = 0; i < v->n; i++) {
        printf("%s{\"check\":\"%s\",\"status\":\"%s\",\"detail\":", i ? "," : "",
               v->checks[i].name, v->checks[i].status);
        rf_cli_json_string(stdout, v->checks[i].detail);
        printf("}");
    }
    printf("],\"provenance\":{\"verdict\":\"%s\",\"summary\":", s_verdict_name(prov_code));
    rf_cli_json_string(stdout, s_verdict_text(prov_code));
    printf(",\"manifest\":");
    s_json_opt(p->manifest_label);
    printf(",\"embedded\":%s,\"claim_generator\":", p->embedded ? "true" : "false");
    s_json_opt(p->claim_generator);
    printf(",\"signer\":");
    s_json_opt(p->signer_subject);
    printf(",\"digital_source_type\":");
    s_json_opt(p->digital_source_type);
    printf(",\"xmp\":{\"found\":%s,\"digital_source_type\":", p->xmp_found ? "true" : "false");
    s_json_opt(p->xmp_source_type);
    printf(",\"agrees\":%s},\"job_id\":", p->xmp_agrees ? "true" : "false");
    s_json_opt(p->job_id);
    printf(",\"status\":[");
    for (int i = 0; i < p->nstatus; i++) {
        printf("%s{\"code\":", i ? "," : "");
        rf_cli_json_string(stdout, p->status[i].code);
        printf(",\"failure\":%s,\"explanation\":", p->status[i].failure ? "true" : "false");
        rf_cli_json_string(stdout, p->status[i].detail);
        printf("}");
    }
    printf("],\"watermark\":{\"checked\":%s,\"found\":%s,\"detail\":",
           wm->checked ? "true" : "false", wm->found ? "true" : "false");
    rf_cli_json_string(stdout, wm->detail);
    printf(",\"tag\":");
    s_json_opt(wm->tag);
    printf(",\"lookup\":");
    s_json_opt(wm->looked_up ? wm->lookup_detail : NULL);
    printf(",\"jobs\":");
    const Reelfarm__JobList *jobs = s_lookup_jobs(wm);
    if (!jobs) {
        printf("null");
    } else {
        printf("[");
        for (size_t i = 0; i < jobs->n_jobs; i++) {
            printf("%s", i ? "," : "");
            rf_cli_wm_job_print(stdout, jobs->jobs[i], true, "");
        }
        printf("]");
    }
    printf("}},\"notice\":");
    rf_cli_json_string(stdout, S_NOTICE);
    printf("}\n");
}

int rf_cli_verify(const rf_cli_args_t *a)
{
    const char *out = a->operands[0], *src = rf_cli_arg(a, "source");
    const char *trust = rf_cli_arg(a, "trust"), *sidecar = rf_cli_arg(a, "sidecar");
    bool lossless = rf_cli_has(a, "lossless"), json = rf_cli_has(a, "json");
    const char *coordinator = rf_cli_arg(a, "coordinator");
    if (coordinator && !*coordinator)
        return rf_cli_usage_error(a->cmd,
                                  "flag '--coordinator' needs an endpoint (tcp://HOST:7601)");
    if (src && !*src)
        return rf_cli_usage_error(a->cmd, "flag '--source' needs a file");
    if (trust && !*trust)
        return rf_cli_usage_error(a->cmd, "flag '--trust' needs a PEM file of trust anchors");
    if (sidecar && !*sidecar)
        return rf_cli_usage_error(a->cmd, "flag '--sidecar' needs a .c2pa file");
    if (lossless && !src)
        return rf_cli_usage_error(a->cmd, "flag '--lossless' needs '--source SRC' to compare with");
    const char *must[] = {out, trust, sidecar};
    const char *what[] = {"file", "trust anchors", "sidecar"};
    for (size_t i = 0; i < 3; i++) {
        if (must[i] && access(must[i], R_OK)) {
            fprintf(stderr, "reelfarm: verify: %s '%s': %s\n", what[i], must[i], strerror(errno));
            return RF_EXIT_USAGE;
        }
    }
    rf_err_t err = {0};
    rf_media_info_t *src_info = NULL;
    if (src && rf_media_probe(src, &src_info, &err)) {
        fprintf(stderr, "reelfarm: verify: source: %s\n", err.msg);
        return RF_EXIT_USAGE;
    }
    rf_prov_report_t *prov = calloc(1, sizeof(*prov));
    if (!prov) {
        rf_media_info_destroy(&src_info);
        fprintf(stderr, "reelfarm: verify: out of memory\n");
        return RF_EXIT_FAILED;
    }
    if (rf_prov_verify_file(out, sidecar, trust, prov, &err)) {
        fprintf(stderr, "reelfarm: verify: %s\n", err.msg);
        free(prov);
        rf_media_info_destroy(&src_info);
        return RF_EXIT_USAGE;
    }
    s_verify_t v;
    memset(&v, 0, sizeof(v));
    s_check_media(&v, out, src_info, lossless, src);
    bool media_failed = v.failed > 0;
    for (int i = 0; i < prov->nstatus; i++) {
        const rf_prov_status_t *st = &prov->status[i];
        const char *name = !strncmp(st->code, "xmp.", 4) ? "xmp" : "c2pa";
        s_add(&v, name, st->failure ? "fail" : "ok", "%s: %s", st->code, st->detail);
    }
    if (prov->verdict == RF_PROV_NONE)
        s_add(&v, "c2pa", "skip", "no C2PA manifest in the file and no sidecar%s",
              prov->xmp_found ? "" : "; no XMP either");
    s_watermark_t wm;
    s_watermark(out, rf_cli_arg(a, "watermark-key"), &wm);
    s_add(&v, "watermark", wm.checked ? (wm.found ? "ok" : "skip") : "skip", "%s", wm.detail);
    if (wm.found && coordinator) {
        s_watermark_lookup(coordinator, &wm);
        const Reelfarm__JobList *jobs = s_lookup_jobs(&wm);
        s_add(&v, "lookup", jobs && jobs->n_jobs ? "ok" : "skip", "%s", wm.lookup_detail);
        if (!jobs)
            fprintf(stderr, "reelfarm: verify: %s\n", wm.lookup_detail);
    }
    int prov_code = s_exit_code(prov->verdict, &wm);
    /* Tampering decides over a media mismatch; a mismatch decides over the other verdicts. */
    int code = prov_code == S_EXIT_TAMPERED || !media_failed ? prov_code : RF_EXIT_FAILED;
    if (json) {
        s_print_json(out, src, &v, prov, &wm, prov_code, code);
    } else {
        for (int i = 0; i < v.n; i++)
            printf("%-5s %-11s %s\n", v.checks[i].status, v.checks[i].name, v.checks[i].detail);
        if (prov->digital_source_type[0])
            printf("      source type: %s%s%s\n", prov->digital_source_type,
                   prov->job_id[0] ? ", farm job " : "", prov->job_id);
        if (prov->signer_subject[0])
            printf("      signer: %s\n", prov->signer_subject);
        const Reelfarm__JobList *jobs = s_lookup_jobs(&wm);
        for (size_t i = 0; jobs && i < jobs->n_jobs; i++)
            rf_cli_wm_job_print(stdout, jobs->jobs[i], false, "      ");
        if (wm.found && !wm.looked_up)
            printf("      watermark tag %s: `reelfarm jobs --watermark-tag %s` on the farm names "
                   "its job\n",
                   wm.tag, wm.tag);
        printf("verify: '%s': %s%s (exit %d)\n", out, s_verdict_text(prov_code),
               media_failed ? "; media checks FAILED" : "", code);
        printf("note: %s\n", S_NOTICE);
    }
    if (v.failed) {
        const s_check_t *c = NULL;
        for (int i = 0; i < v.n && !c; i++)
            if (!strcmp(v.checks[i].status, "fail"))
                c = &v.checks[i];
        fprintf(stderr, "reelfarm: '%s' failed verification: check '%s': %s\n", out, c->name,
                c->detail);
    }
    free(prov);
    rf_msg_destroy(&wm.lookup);
    rf_media_info_destroy(&src_info);
    return code;
}
