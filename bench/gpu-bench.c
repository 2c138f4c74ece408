/* gpu-bench.c - the GPU pipeline's throughput, one stage at a time (docs/PERFORMANCE.md,
 * bench/gpu-bench.sh drives it).
 *
 *   reelfarm-gpu-bench decode FILE auto|cpu|nvdec [FRAMES]
 *       decodes FILE (the first FRAMES frames, default all) and prints frames/s and where it
 *       decoded; NVDEC frames stay on the device (no download), as in the worker
 *   reelfarm-gpu-bench passes FILE gpu|cpu [FRAMES]
 *       deflicker + color-match (the pipeline) on FILE's frames, output in the source's
 *       format: gpu = NVDEC (auto) -> the slot's GPU stage (frame ring, three streams); cpu = the
 *       CPU decoder -> pconvert -> CPU passes -> pconvert, as a CPU slot does. Prints the
 *       frames/s of the whole loop (decode included, one thread), of the pass stage alone, and
 *       for gpu the device stream time per frame from CUDA events
 *   reelfarm-gpu-bench encode FILE CODEC PRESET [FRAMES]
 *       the encoder's own throughput: FRAMES frames (default 60) decoded into memory first, then
 *       encoded to a temporary NUT file (CRF default), so only encoding is timed
 *
 * Output lines are "key: value" for the script to pick up. A GPU mode on a machine without a
 * device prints "skipped: REASON" and exits 0 (the script reports it as skipped). Not a test:
 * numbers depend on the machine and its load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/frame.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>

#include "gpu.h"
#include "gpu_pipe.h"
#include "media.h"
#include "passes.h"

#define P(k, v)                                                                                    \
    {                                                                                              \
        .key = (char *)(k), .value = (char *)(v)                                                   \
    }

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int s_usage(void)
{
    fprintf(stderr, "usage: reelfarm-gpu-bench decode FILE auto|cpu|nvdec [FRAMES]\n"
                    "       reelfarm-gpu-bench passes FILE gpu|cpu [FRAMES]\n"
                    "       reelfarm-gpu-bench encode FILE CODEC PRESET [FRAMES]\n");
    return 2;
}

static long s_frames_arg(int argc, char **argv, int i, long def)
{
    if (argc <= i)
        return def;
    char *end = NULL;
    long v = strtol(argv[i], &end, 10);
    return end && !*end && v > 0 ? v : -1;
}

/* A device for the GPU modes, or the reason there is none. */
static bool s_device(char *why, size_t size)
{
    rf_gpu_info_t info;
    rf_gpu_probe(&info);
    if (!info.built_with_cuda || info.ndevices == 0 || !info.devices[0].kernel_ok) {
        snprintf(why, size, "%s", info.ndevices ? "device 0 failed the self-test" : info.note);
        return false;
    }
    snprintf(why, size, "%s", info.devices[0].name);
    return true;
}

static int s_decode(const char *path, const char *mode_text, long limit)
{
    rf_decode_mode_t mode;
    rf_err_t err = {0};
    if (rf_decode_mode_parse(mode_text, &mode, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    rf_decoder_t *d = NULL;
    int rc = rf_decoder_open_mode(path, mode, 0, &d, &err);
    if (rc == RF_EUNAVAIL) {
        const char *why = strstr(err.msg, "decode 'nvdec': ");
        printf("skipped: %s\n", why ? why + strlen("decode 'nvdec': ") : err.msg);
        return 0;
    }
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    AVFrame *f = av_frame_alloc();
    long n = 0;
    bool hw = false;
    const double t0 = s_now();
    while (n < limit && (rc = rf_decoder_next(d, f, &err)) == 1) {
        hw = f->format == AV_PIX_FMT_CUDA;
        n++;
    }
    const double dt = s_now() - t0;
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const AVCodecParameters *par = rf_decoder_params(d);
    printf("decoder: %s%s%s\n", hw ? "NVDEC" : "CPU", hw ? "" : " ",
           hw ? "" : rf_decoder_hw_note(d));
    printf("stream: %s %dx%d\n", avcodec_get_name(par->codec_id), par->width, par->height);
    printf("frames: %ld\nseconds: %.3f\nfps: %.1f\n", n, dt, dt > 0 ? (double)n / dt : 0.0);
    av_frame_free(&f);
    rf_decoder_destroy(&d);
    return 0;
}

static int s_passes(const char *path, const char *where, long limit)
{
    const bool gpu = !strcmp(where, "gpu");
    char why[256];
    if (strcmp(where, "gpu") && strcmp(where, "cpu"))
        return s_usage();
    if (gpu && !s_device(why, sizeof why)) {
        printf("skipped: %s\n", why);
        return 0;
    }
    rf_param_t dp[] = {P("strength", "0.6"), P("window", "8")};
    rf_param_t cp[] = {P("reference", "0.6,0.01,0.02,0.2,0.05,0.05"), P("smoothing", "4")};
    const rf_pass_spec_t passes[] = {
        {.name = (char *)"deflicker", .role = (char *)"refine", .params = dp, .nparams = 2},
        {.name = (char *)"color-match", .role = (char *)"refine", .params = cp, .nparams = 2}};
    rf_err_t err = {0};
    rf_decoder_t *d = NULL;
    int rc = rf_decoder_open_mode(path, gpu ? RF_DECODE_AUTO : RF_DECODE_CPU, 0, &d, &err);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const AVCodecParameters *par = rf_decoder_params(d);
    rf_gpu_stage_t *st = NULL;
    rf_pass_chain_t *chain = NULL;
    rf_pconvert_t *in = NULL, *out = NULL;
    rf_pframe_t pf = {0};
    AVFrame *f = av_frame_alloc(), *o = NULL;
    long n = 0, emitted = 0;
    double stage_s = 0;
    const double t0 = s_now();
    while (n < limit && (rc = rf_decoder_next(d, f, &err)) == 1) {
        const double s0 = s_now();
        if (gpu) {
            if (!st) {
                int sw = f->format;
                if (f->format == AV_PIX_FMT_CUDA)
                    sw = ((AVHWFramesContext *)(void *)f->hw_frames_ctx->data)->sw_format;
                rf_gpu_stage_cfg_t cfg = {.device = 0,
                                          .width = f->width,
                                          .height = f->height,
                                          .pix_fmt = sw,
                                          .color_range = f->color_range,
                                          .color_space = f->colorspace,
                                          .out_pix_fmt = par->format,
                                          .passes = passes,
                                          .npasses = 2,
                                          .seed = 1,
                                          .frame_rate = {25, 1}};
                if ((rc = rf_gpu_stage_new(&cfg, &st, &err)) != 0)
                    break;
                printf("decoder: %s\n", f->format == AV_PIX_FMT_CUDA ? "NVDEC" : "CPU");
            }
            if ((rc = rf_gpu_stage_push(st, f, n, false, &err)) != 0)
                break;
            while (rf_gpu_stage_pop(st, &o, &err) == 1) {
                emitted++;
                av_frame_free(&o);
            }
        } else {
            if (!chain && ((rc = rf_pass_chain_new(passes, 2, 1, f->width, f->height,
                                                   (AVRational){25, 1}, &chain, &err)) != 0 ||
                           (rc = rf_pconvert_new(f->width, f->height, f->format, f->color_range,
                                                 f->colorspace, &in, &err)) != 0 ||
                           (rc = rf_pconvert_new(f->width, f->height, f->format, f->color_range,
                                                 f->colorspace, &out, &err)) != 0))
                break;
            o = av_frame_alloc();
            if ((rc = rf_pconvert_to_rgb(in, f, &pf, &err)) != 0)
                break;
            pf.index = n;
            if ((rc = rf_pass_chain_run(chain, &pf, &err)) != 0 ||
                (rc = rf_pconvert_from_rgb(out, &pf, o, &err)) != 0)
                break;
            av_frame_free(&o);
            emitted++;
        }
        stage_s += s_now() - s0;
        n++;
    }
    if (rc >= 0 && st) {
        const double s0 = s_now();
        rc = rf_gpu_stage_finish(st, &err);
        while (rc == 0 && rf_gpu_stage_pop(st, &o, &err) == 1) {
            emitted++;
            av_frame_free(&o);
        }
        stage_s += s_now() - s0;
    }
    const double dt = s_now() - t0;
    if (rc < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("stream: %s %dx%d\n", avcodec_get_name(par->codec_id), par->width, par->height);
    printf("frames: %ld\nseconds: %.3f\nfps: %.1f\n", emitted, dt,
           dt > 0 ? (double)emitted / dt : 0);
    printf("stage_fps: %.1f\n", stage_s > 0 ? (double)emitted / stage_s : 0);
    if (st) {
        double ms = 0;
        uint64_t timed = 0;
        rf_gpu_stage_device_ms(st, &ms, &timed);
        printf("device_ms_per_frame: %.3f\n", timed ? ms / (double)timed : 0);
        printf("device_busy_of_wall: %.3f\n", dt > 0 ? ms / 1000.0 / dt : 0);
        printf("vram_mib: %" PRIu64 "\n", rf_gpu_stage_vram(st) >> 20);
    }
    rf_gpu_stage_destroy(&st);
    rf_pass_chain_destroy(&chain);
    rf_pconvert_destroy(&in);
    rf_pconvert_destroy(&out);
    rf_pframe_release(&pf);
    av_frame_free(&o);
    av_frame_free(&f);
    rf_decoder_destroy(&d);
    return 0;
}

static int s_encode(const char *path, const char *codec, const char *preset, long limit)
{
    rf_err_t err = {0};
    rf_decoder_t *d = NULL;
    if (rf_decoder_open(path, &d, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    AVFrame **frames = calloc((size_t)limit, sizeof *frames);
    long n = 0;
    int rc = 0;
    while (n < limit) {
        frames[n] = av_frame_alloc();
        if ((rc = rf_decoder_next(d, frames[n], &err)) != 1)
            break;
        n++;
    }
    if (rc < 0 || n == 0) {
        fprintf(stderr, "%s\n", rc < 0 ? err.msg : "no frames");
        return 1;
    }
    const AVCodecParameters *par = rf_decoder_params(d);
    char out[] = "/tmp/reelfarm-gpu-bench-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    char nut[64];
    snprintf(nut, sizeof nut, "%s.nut", out);
    unlink(out);
    rf_encode_params_t ep = {.codec = codec,
                             .crf = -1,
                             .preset = preset,
                             .pix_fmt = frames[0]->format,
                             .width = par->width,
                             .height = par->height,
                             .frame_rate = {25, 1},
                             .sample_aspect_ratio = {1, 1},
                             .color_range = par->color_range,
                             .color_primaries = par->color_primaries,
                             .color_trc = par->color_trc,
                             .color_space = par->color_space,
                             .chroma_location = par->chroma_location};
    rf_encoder_t *e = NULL;
    const double t0 = s_now();
    rc = rf_encoder_open(&ep, nut, &e, &err);
    for (long i = 0; i < n && !rc; i++) {
        frames[i]->pts = i;
        rc = rf_encoder_write(e, frames[i], &err);
    }
    if (!rc)
        rc = rf_encoder_finish(e, &err);
    const double dt = s_now() - t0;
    rf_encoder_destroy(&e);
    unlink(nut);
    if (rc) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    printf("encoder: %s %s %dx%d\n", codec, preset, par->width, par->height);
    printf("frames: %ld\nseconds: %.3f\nfps: %.1f\n", n, dt, (double)n / dt);
    for (long i = 0; i <= n && i < limit; i++)
        av_frame_free(&frames[i]);
    free(frames);
    rf_decoder_destroy(&d);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return s_usage();
    if (!strcmp(argv[1], "decode")) {
        long n = s_frames_arg(argc, argv, 4, 1L << 30);
        return n < 0 ? s_usage() : s_decode(argv[2], argv[3], n);
    }
    if (!strcmp(argv[1], "passes")) {
        long n = s_frames_arg(argc, argv, 4, 1L << 30);
        return n < 0 ? s_usage() : s_passes(argv[2], argv[3], n);
    }
    if (!strcmp(argv[1], "encode") && argc >= 5) {
        long n = s_frames_arg(argc, argv, 5, 60);
        return n < 0 ? s_usage() : s_encode(argv[2], argv[3], argv[4], n);
    }
    return s_usage();
}
