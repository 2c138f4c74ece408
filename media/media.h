/* media.h - FFmpeg wrappers: probe and frame index, input slices, decode, encode, frame checksums,
 * the stitcher (our own libavformat remux) and output verification. DESIGN §5, notes/chunked-video.md.
 *
 * Frame identity: the global frame index of a frame is its position in the source's presentation
 * order (the sorted PTS table of the video stream). Everything downstream - chunk ranges, seeds,
 * stitched timestamps - is a function of that index, never of a chunk-local count.
 */
#ifndef RF_MEDIA_H
#define RF_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/rational.h>

#include "error.h"
#include "hash.h"

#define RF_MEDIA_MAX_FRAMES (50 * 1000 * 1000) /* refuse sources with more video frames */

/* Routes FFmpeg's log lines into rf_log at debug level (call once, early in main). */
void rf_media_log_init(void);

/* ---- probe --------------------------------------------------------------------------------- */

typedef struct rf_media_info {
    char *path;
    char format_name[64];   /* demuxer, e.g. "mov,mp4,m4a,3gp,3g2,mj2" */
    int video_index;        /* stream index of the video stream */
    char codec_name[32];    /* e.g. "h264" */
    int width, height;
    int pix_fmt;            /* enum AVPixelFormat of the decoded frames */
    AVRational time_base;   /* of the video stream */
    AVRational frame_rate;  /* nominal (avg_frame_rate, else r_frame_rate) */
    AVRational sample_aspect_ratio;
    int color_range, color_primaries, color_trc, color_space, chroma_location; /* AVCodecParameters */
    int64_t nb_frames;      /* video packets = frames */
    int64_t *pts;           /* [nb_frames] presentation-ordered PTS table (time_base), strictly increasing */
    int64_t *keyframes;     /* global frame indices of keyframes, ascending */
    size_t nkeyframes;
    bool vfr;               /* frame durations differ by more than 1 tick */
    bool open_gop;          /* some packet after a keyframe (decode order) shows before it */
    int64_t frame_duration; /* nominal duration of one frame in time_base */
    double duration_s;      /* (last pts + frame_duration - first pts) in seconds */
    int naudio;             /* audio streams */
    int64_t audio_packets;  /* packets in all audio streams */
    double rotation;        /* degrees from the display matrix, 0 if none */
} rf_media_info_t;

/* Opens path, indexes every video packet without decoding (and checks it decodes one frame).
 * Errors name the file: "'x.mp4': no video stream", "'notes.txt': not a media file (Invalid data
 * found when processing input)". */
int rf_media_probe(const char *path, rf_media_info_t **out, rf_err_t *err);
void rf_media_info_destroy(rf_media_info_t **info);

/* Global index of the keyframe at or before frame (0 if none). */
int64_t rf_media_keyframe_before(const rf_media_info_t *info, int64_t frame);

/* ---- input slices ---------------------------------------------------------------------------- */

/* Writes the video packets needed to decode presentation frames [from, to) to out_path (NUT, the
 * source's time base and PTS kept, stream copy, no audio): from the keyframe at or before `from`
 * (one keyframe earlier when the source has open GOPs) to the last packet in decode order that
 * any frame in [from, to) needs. NUT may store the timestamps in a finer multiple of the source's
 * time base (1/24000 becomes 1/48000): they are the same instants, compare them through
 * rf_decoder_time_base. */
int rf_media_slice(const rf_media_info_t *info, int64_t from, int64_t to, const char *out_path,
                   rf_err_t *err);

/* ---- decode ---------------------------------------------------------------------------------- */

typedef struct rf_decoder rf_decoder_t;

/* Opens the best video stream of path for decoding (CPU; threads chosen automatically). */
int rf_decoder_open(const char *path, rf_decoder_t **out, rf_err_t *err);

/* Decodes the next frame in presentation order into frame (unref'd first). frame->pts is the
 * best-effort timestamp in rf_decoder_time_base. Returns 1 for a frame, 0 at the end (after
 * draining the decoder), or a negative code with err set. */
int rf_decoder_next(rf_decoder_t *d, AVFrame *frame, rf_err_t *err);

AVRational rf_decoder_time_base(const rf_decoder_t *d);
const AVCodecParameters *rf_decoder_params(const rf_decoder_t *d);
void rf_decoder_destroy(rf_decoder_t **d);

/* Decoding on NVDEC (the worker's `decode` setting, docs/deploy.md):
 *   cpu    always the CPU decoder (rf_decoder_open)
 *   auto   NVDEC when the codec has a CUDA hwaccel and a CUDA device opens, else the CPU decoder,
 *          the reason in rf_decoder_hw_note
 *   nvdec  NVDEC or RF_EUNAVAIL naming the reason
 * On NVDEC, frames come as AV_PIX_FMT_CUDA (device memory, sw_format NV12 or P010/P016, in
 * FFmpeg's CUDA context, which is the device's primary context so our kernels share it). A stream
 * NVDEC turns down at its first frame (AV1 on Hopper, a profile it lacks, 4:4:4 on older chips)
 * is decoded on the CPU from there on in every mode: FFmpeg falls back by itself, frames come in a
 * software format, and rf_decoder_hw_note says so. */
typedef enum rf_decode_mode { RF_DECODE_CPU = 0, RF_DECODE_AUTO, RF_DECODE_NVDEC } rf_decode_mode_t;

/* NVDEC's decode surfaces FFmpeg adds to the stream's DPB (+2) for frames we hold at once: the
 * worker's decoded-frame queue (8), the frame its decode and pass threads each hold (2) and the
 * GPU ring (3) (worker/slot.h, worker/gpu/gpu_pipe.h). H.264/HEVC DPBs are at most 16:
 * 16 + 2 + 13 = 31, within the 32 surfaces NVDEC allows. */
#define RF_DECODE_EXTRA_HW_FRAMES 13

/* "auto", "cpu" or "nvdec"; RF_ECONFIG naming the text otherwise. */
int rf_decode_mode_parse(const char *text, rf_decode_mode_t *out, rf_err_t *err);
const char *rf_decode_mode_name(rf_decode_mode_t mode);
/* rf_decoder_open with the mode above, on CUDA device `device`. */
int rf_decoder_open_mode(const char *path, rf_decode_mode_t mode, int device, rf_decoder_t **out,
                         rf_err_t *err);
/* True while the decoder hands out NVDEC frames (false from the first software frame on). */
bool rf_decoder_hw(const rf_decoder_t *d);
/* Why the decoder is on the CPU ("" when it is on NVDEC, or was opened with rf_decoder_open). */
const char *rf_decoder_hw_note(const rf_decoder_t *d);

/* ---- encode ---------------------------------------------------------------------------------- */

typedef struct rf_encode_params {
    const char *codec;        /* encoder name, e.g. "libx264", "ffv1" */
    int crf;                  /* -1: default */
    const char *preset;       /* NULL: default */
    int pix_fmt;              /* enum AVPixelFormat of the frames passed in and of the output */
    int64_t bitrate;          /* 0: unset */
    int gop;                  /* 0: default */
    const char *const *opt_keys; /* extra AVOptions for the encoder */
    const char *const *opt_values;
    size_t nopts;
    int width, height;
    AVRational frame_rate;    /* the encoder's time base is its inverse; frame->pts = local index */
    AVRational sample_aspect_ratio;
    int color_range, color_primaries, color_trc, color_space, chroma_location;
    int threads;              /* 0: automatic */
} rf_encode_params_t;

typedef struct rf_encoder rf_encoder_t;

/* Opens the encoder and a NUT muxer at out_path. Every chunk of a job gets identical settings:
 * closed GOP, no scene-cut keyframes beyond the GOP, global headers, the first frame an IDR/intra
 * frame. Error names the codec: "encoder 'libx265' failed to open: ...". */
int rf_encoder_open(const rf_encode_params_t *p, const char *out_path, rf_encoder_t **out,
                    rf_err_t *err);

/* Encodes one frame; frame->pts must be the chunk-local index 0, 1, 2, ... */
int rf_encoder_write(rf_encoder_t *e, const AVFrame *frame, rf_err_t *err);

/* Called with every packet the encoder produces, in the order it is muxed, before the muxer takes
 * it (the packet is the encoder's: av_packet_ref it to keep it; timestamps in
 * rf_encoder_time_base). Returning a negative code (err set) stops the encode with that error.
 * This is how the worker checksums its output while it encodes (rf_frame_hasher below). */
typedef int (*rf_encoder_packet_fn)(void *arg, const AVPacket *pkt, rf_err_t *err);
void rf_encoder_on_packet(rf_encoder_t *e, rf_encoder_packet_fn fn, void *arg);

/* Reconstructed frames: when the encoder can give them (libx264 driven directly: 8-bit 4:2:0 and
 * only the options x264-params, tune, profile), fn sees every picture exactly as a decoder of the
 * packets will produce it - yuv420p, pts = its local index - in coding order, right before its
 * packet goes to the muxer (the frame is the encoder's until fn returns: av_frame_ref or clone it to
 * keep it). Hashing these is rf_media_checksum's definition without decoding the output again.
 * Returns RF_EUNAVAIL (and changes nothing) when this encoder cannot. */
typedef int (*rf_encoder_recon_fn)(void *arg, const AVFrame *frame, rf_err_t *err);
int rf_encoder_on_recon(rf_encoder_t *e, rf_encoder_recon_fn fn, void *arg);

/* The output stream's parameters (extradata included): what a demuxer of the file would report. */
const AVCodecParameters *rf_encoder_params(const rf_encoder_t *e);
AVRational rf_encoder_time_base(const rf_encoder_t *e);

/* Drains the encoder and writes the trailer. */
int rf_encoder_finish(rf_encoder_t *e, rf_err_t *err);
void rf_encoder_destroy(rf_encoder_t **e);

/* 0 when the named encoder exists in this libavcodec and opens with a small test frame;
 * RF_EUNAVAIL otherwise (err says why: "no such encoder", "unsupported device"). */
int rf_encoder_probe(const char *codec, rf_err_t *err);

/* ---- frame checksums ------------------------------------------------------------------------- */

/* SHA-256 of the frame's pixels packed with no padding (av_image_copy_to_buffer, align 1): equal to
 * `ffmpeg -i X -f framehash -hash sha256` for the same decoded frame. */
void rf_frame_sha256(const AVFrame *frame, uint8_t out[RF_SHA256_LEN]);

/* Decodes every frame of path; *frames gets the count and digest the SHA-256 over the concatenated
 * per-frame SHA-256s. per_frame (may be NULL) is called for each frame's hash in order. */
int rf_media_checksum(const char *path, uint64_t *frames, uint8_t digest[RF_SHA256_LEN],
                      void (*per_frame)(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN]),
                      void *arg, rf_err_t *err);

/* Per-frame checksums of a packet stream as it is produced: a decoder fed packet by packet (the
 * encoder's, through rf_encoder_on_packet), so verifying an encode overlaps the encode instead of
 * reading the file again afterwards. Same definition as rf_media_checksum: for the packets of a
 * file, the frame count, the per-frame SHA-256s and the digest equal rf_media_checksum's of that
 * file (and so `ffmpeg -f framehash -hash sha256`). Single-threaded decoder: it runs beside an
 * encoder that already uses the cores. */
typedef struct rf_frame_hasher rf_frame_hasher_t;

typedef void (*rf_frame_hash_fn)(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN]);

/* par: the stream's parameters (rf_encoder_params); per_frame may be NULL. */
int rf_frame_hasher_new(const AVCodecParameters *par, AVRational time_base,
                        rf_frame_hash_fn per_frame, void *arg, rf_frame_hasher_t **out,
                        rf_err_t *err);
/* Decodes pkt and hashes every frame it completes; pkt NULL = end of stream (drains). */
int rf_frame_hasher_send(rf_frame_hasher_t *h, const AVPacket *pkt, rf_err_t *err);

/* A hasher of already decoded frames (an encoder's reconstructions, rf_encoder_on_recon): no
 * decoder. rf_frame_hasher_send_frame takes them in coding order with pts = local index and hashes
 * them in presentation order; rf_frame_hasher_send(h, NULL) ends the stream and fails if a local
 * index is missing. */
int rf_frame_hasher_new_frames(rf_frame_hash_fn per_frame, void *arg, rf_frame_hasher_t **out,
                               rf_err_t *err);
int rf_frame_hasher_send_frame(rf_frame_hasher_t *h, const AVFrame *frame, rf_err_t *err);
/* Frames hashed so far; after the drain, the digest over their SHA-256s (rf_media_checksum's). */
uint64_t rf_frame_hasher_frames(const rf_frame_hasher_t *h);
void rf_frame_hasher_digest(rf_frame_hasher_t *h, uint8_t digest[RF_SHA256_LEN]);
void rf_frame_hasher_destroy(rf_frame_hasher_t **h);

/* Sampled check of an encoded chunk (media/sample.c): list holds the worker's nframes per-frame
 * SHA-256s, which must hash to digest; the file must hold exactly nframes video packets starting
 * with a keyframe; its first GOP, last GOP and GOP number (seed mod GOPs) are decoded, each on its
 * own (closed GOPs), and every frame's SHA-256 must equal the list's. RF_EVERIFY names the first
 * failure (count, frame); *gops_checked says how many GOPs were decoded. */
int rf_media_checksum_sample(const char *path, const uint8_t *list, uint64_t nframes,
                             const uint8_t digest[RF_SHA256_LEN], uint64_t seed,
                             uint32_t *gops_checked, rf_err_t *err);

/* ---- scene cuts ----------------------------------------------------------------------------- */

#define RF_SCENE_MAX_SIDE 64     /* the luma thumbnail's long side, in pixels, at most */
#define RF_SCENE_WINDOW 8        /* previous differences whose median measures ordinary motion */
#define RF_SCENE_PEAK_FACTOR 2.0 /* a cut's difference must exceed this many times that median */
#define RF_SCENE_MIN_FRAMES 12   /* shortest scene: a cut closer than this to the last is dropped */

/* Finds hard cuts in the video of info->path (which info describes). Every frame is decoded (frame
 * threads, loop filter skipped: the thumbnails only need to be close to the real pixels) and its
 * luma is box-averaged down to at most RF_SCENE_MAX_SIDE pixels on the long side: plane 0 for YUV
 * and gray formats of any depth, swscale's gray conversion for RGB and anything else. d(i) is the
 * mean absolute difference between the thumbnails of frames i-1 and i, as a fraction of the full
 * sample range (0..1). Frame i starts a new scene when all of these hold:
 *   - d(i) >= threshold;
 *   - d(i) > RF_SCENE_PEAK_FACTOR x the median of the up to RF_SCENE_WINDOW differences before it
 *     (fast motion or noise makes every difference large; a cut stands out from its neighbours);
 *   - d(i) >= d(i+1) (a cut smeared over two frames is placed on its larger step);
 *   - i is at least RF_SCENE_MIN_FRAMES after the previous cut (frame 0 counts as one).
 * *cuts (malloc'd, may be NULL when *ncuts is 0) gets the global frame indices of those frames,
 * ascending, never 0. threshold outside 0..1 is RF_EINVAL; decode failures are RF_EMEDIA and name
 * the file and frame. Costs one full decode of the source: call it off the event loop. */
struct rf_color_stats;
int rf_media_scenes(const rf_media_info_t *info, double threshold, int64_t **cuts, size_t *ncuts,
                    struct rf_color_stats *colors, rf_err_t *err);

/* With colors (an array of info->nb_frames, else NULL), rf_media_scenes also measures every
 * frame's colour for the planner's per-scene references: the frame is point-sampled down to at
 * most RF_SCENE_COLOR_SIDE pixels on the long side (no averaging, so the spread of colours is
 * kept), converted to RGB with rf_color_yuv_weights' matrix and the frame's range (clamped to
 * 0..1, as the worker's frame conversion does) and its Oklab statistics stored at the frame's
 * global index. Frames that did not decode keep mean[0] = NAN. */
#define RF_SCENE_COLOR_SIDE 160

/* ---- seams ---------------------------------------------------------------------------------- */

/* out = (a x (den - num) + b x num + den / 2) / den for every sample, out allocated here with a's
 * size and format and b's properties. Planar formats of 8-16 bits per sample only (YUV, RGB, gray,
 * with or without alpha); others are RF_EINVAL. With a == b the result equals a exactly. */
int rf_frame_crossfade(const AVFrame *a, const AVFrame *b, int num, int den, AVFrame *out,
                       rf_err_t *err);

/* Cross-fades a seam: `outgoing` and `incoming` (lossless side parts from the two neighbours of a
 * forced boundary) must each decode to exactly count frames of one size and format; frame j of the
 * result is rf_frame_crossfade(outgoing j, incoming j, j + 1, count + 1) - the later chunk fades
 * in - encoded with params (size and pixel format taken from the frames) into out_path (NUT). */
int rf_media_seam_encode(const char *outgoing, const char *incoming, int64_t count,
                         const rf_encode_params_t *params, const char *out_path, rf_err_t *err);

/* ---- stitch ---------------------------------------------------------------------------------- */

typedef struct rf_stitch_chunk {
    const char *path;     /* an encoded chunk (NUT from rf_encoder) */
    int64_t frame_start;  /* global index of its first frame */
    int64_t frame_count;  /* frames it must hold */
} rf_stitch_chunk_t;

/* Remuxes chunks (in frame order, contiguous, covering the whole source) into out_path, with the
 * container chosen by out_path's extension. Video PTS come from the source's PTS table at each
 * global frame index (so CFR and VFR timestamps equal the source's); DTS follow the encoder's
 * reorder delay. With copy_audio every audio packet of the source is copied untouched. Rotation,
 * colour metadata and HDR side data are carried over. Every chunk's codec parameters and extradata
 * must equal chunk 0's. Writes to a temp file beside out_path and renames it over out_path only
 * when complete. */
int rf_media_stitch(const rf_media_info_t *src, const rf_stitch_chunk_t *chunks, size_t nchunks,
                    bool copy_audio, const char *out_path, rf_err_t *err);

/* ---- verify an output ------------------------------------------------------------------------ */

typedef struct rf_verify_report {
    int64_t frames;           /* video packets in the output */
    double duration_s;        /* output video duration */
    double src_duration_s;
    int64_t audio_packets;    /* audio packets in the output */
    bool audio_identical;     /* every audio packet's bytes equal the source's, in order */
    bool timestamps_increasing; /* video PTS (presentation order) and DTS strictly increase */
} rf_verify_report_t;

/* Checks out_path against src without decoding: frame count equal, duration within half a frame,
 * (when check_audio) audio packets identical, timestamps strictly increasing. Returns 0 when all
 * hold, RF_EVERIFY with err naming the first failure otherwise; report is filled either way. */
int rf_media_verify_output(const rf_media_info_t *src, const char *out_path, bool check_audio,
                           rf_verify_report_t *report, rf_err_t *err);

/* ==== colour statistics in Oklab (media/color.c) ==============================================
 *
 * Shared by the coordinator (each scene's reference statistics, computed from the source at plan
 * time) and the worker's color-match pass (each frame's statistics). Oklab (Björn Ottosson, 2020)
 * is a perceptual space: L is lightness 0 (black) .. 1 (white), a is green(-)..red(+), b is
 * blue(-)..yellow(+); equal distances look roughly equally different, so matching means and
 * spreads there moves colours the way a colourist would, not the way code values happen to lie.
 *
 * Input RGB is gamma-encoded 0..1 and is decoded with the sRGB EOTF (IEC 61966-2-1, the exact
 * piecewise curve: v/12.92 up to 0.04045, ((v+0.055)/1.055)^2.4 above), whatever the source's
 * real transfer: BT.709 video on a display is close to it, and the pipeline's frames carry no
 * transfer tag to do better. Primaries are taken as BT.709/sRGB. Values outside 0..1 are decoded
 * with the curve mirrored about 0 (sign(v) * eotf(|v|)), so the conversion is a bijection on all
 * reals and a round trip never clamps.
 */

/* Per-channel statistics of an image in Oklab: channel 0 = L, 1 = a, 2 = b. std is the population
 * standard deviation (divided by the number of pixels, not n - 1). */
typedef struct rf_color_stats {
    double mean[3];
    double std[3];
} rf_color_stats_t;

#define RF_COLOR_STATS_TEXT_MAX 128 /* rf_color_stats_format's buffer; 6 x %.6g fits easily */

/* The YUV -> RGB matrix of a colour space, as Kr and Kb (Kg = 1 - Kr - Kb): BT.709, FCC,
 * SMPTE 240M, BT.2020 as tagged; BT.601 for BT470BG/SMPTE170M; untagged (or anything else)
 * guessed from the size like players do: BT.709 above 1024x576, BT.601 otherwise. Returns the
 * colour space it used. Shared by the worker's frame conversion and the planner's scene colours,
 * so both read the same RGB from the same YUV. */
int rf_color_yuv_weights(int color_space, int width, int height, double *kr, double *kb);

/* Gamma-encoded sRGB (0..1 nominal) to Oklab, and back. In place is allowed (in == out). */
void rf_color_srgb_to_oklab(const double rgb[3], double lab[3]);
void rf_color_oklab_to_srgb(const double lab[3], double rgb[3]);

/* Mean and standard deviation of L, a, b over a planar float RGB image (plane[0..2] = R, G, B,
 * each width*height floats, rows contiguous). step >= 1 subsamples: only pixels whose x and y
 * are multiples of step are read (step 1 = every pixel; step 4 reads 1/16 of them). Sums are in
 * double in a fixed order, so the result is deterministic. RF_EINVAL (message says why) for a
 * missing plane, a size <= 0 or a step < 1. */
int rf_color_stats(const float *const plane[3], int width, int height, int step,
                   rf_color_stats_t *out, rf_err_t *err);

/* "Lmean,amean,bmean,Lstd,astd,bstd": 6 numbers with %.6g, no spaces. Returns the length written
 * (snprintf's), at most RF_COLOR_STATS_TEXT_MAX - 1 when size is that large. */
int rf_color_stats_format(const rf_color_stats_t *s, char *buf, size_t size);

/* Parses that text: exactly 6 comma-separated finite numbers (blanks around them allowed), the
 * last three >= 0. Anything else is RF_EINVAL with a message quoting the text and saying what is
 * wrong ("colour statistics 'x': expected 6 comma-separated numbers (L,a,b means then standard
 * deviations), got 2"). */
int rf_color_stats_parse(const char *text, rf_color_stats_t *out, rf_err_t *err);


/* ---- invisible watermark (media/watermark.c; docs/PROVENANCE.md "Watermark") ------------------
 *
 * A 64-bit payload - a 16-bit key id and a 48-bit keyed tag of the job - with a CRC-16, coded by a
 * rate-1/2 convolutional code (K=7, 133/171, soft Viterbi), is spread over a keyed tile of
 * RF_WM_TILE x RF_WM_TILE chips of +-1 that repeats over the whole frame. A third of the tile's
 * chips carry a keyed sync pattern; the others carry the coded bits (4 chips each, keyed signs).
 * A chip is a square of H / RF_WM_ROWS pixels (H = frame height), so the mark scales with the
 * frame: a downscale leaves it where it was relative to the picture, a crop only shifts the tile
 * and changes the chip size a little. The mark is added to luma (or equally to R, G and B, which
 * is a pure luma change) with a fixed amplitude: no content-adaptive mask, so the GPU kernel is one
 * multiply-add per sample and the CPU and GPU results are identical by construction.
 *
 * The detector averages the high-passed luma of every decoded frame, then searches the chip size
 * (RF_WM_SCALE_MIN..MAX of the nominal, covering crops up to ~17%) and the tile's offset (every
 * half chip; FFT correlation of the folded tile with the sync pattern), and decodes the payload at
 * the best few alignments. Found means: the CRC holds and the key id is the key's - a 32-bit check,
 * so a chance match on unmarked video is about 1 in 2^32 per alignment tried (72 per detection).
 *
 * Keys: the farm's 32-byte watermark key k_wm never leaves the coordinator. From it derive
 * k_pattern (spreads the mark; workers get it, the detector needs it) and k_tag (makes job tags;
 * only the coordinator has it, so a worker cannot mint a tag for another job).
 */
#define RF_WM_KEY_LEN 32
#define RF_WM_TILE 32            /* chips per tile side */
#define RF_WM_ROWS 64            /* chips per frame height: chip = height / RF_WM_ROWS pixels */
#define RF_WM_AMPLITUDE (2.75 / 255.0) /* added to R, G and B (0..1 scale): PSNR-Y ~40.4 dB */
#define RF_WM_SCALE_MIN 0.97     /* chip sizes searched, relative to height / RF_WM_ROWS */
#define RF_WM_SCALE_MAX 1.20
#define RF_WM_CANDIDATES 8       /* chip sizes decoded per detection (each at 9 offsets) */
#define RF_WM_MAX_FRAMES 1800    /* frames a detection reads at most (75 s at 24 fps) */

/* k_pattern and k_tag from the farm key (keyed BLAKE2b with fixed labels). */
void rf_media_wm_derive(const uint8_t k_wm[RF_WM_KEY_LEN], uint8_t k_pattern[RF_WM_KEY_LEN],
                        uint8_t k_tag[RF_WM_KEY_LEN]);
/* The 16-bit key id of a pattern key (a hash of it, so anyone holding k_pattern computes it). */
uint16_t rf_media_wm_key_id(const uint8_t k_pattern[RF_WM_KEY_LEN]);
/* The payload for a job: key id << 48 | the first 48 bits of BLAKE2b(key = k_tag, job_id). */
uint64_t rf_media_wm_payload(const uint8_t k_wm[RF_WM_KEY_LEN], const char *job_id);

typedef struct rf_media_wm_pattern rf_media_wm_pattern_t;

/* The tile for (k_pattern, payload). */
int rf_media_wm_pattern_new(const uint8_t k_pattern[RF_WM_KEY_LEN], uint64_t payload,
                            rf_media_wm_pattern_t **out, rf_err_t *err);
void rf_media_wm_pattern_destroy(rf_media_wm_pattern_t **p);
/* The tile's chips, row-major, RF_WM_TILE^2 values of +1 or -1 (what the GPU kernel uploads). */
const int8_t *rf_media_wm_pattern_chips(const rf_media_wm_pattern_t *p);
/* The chip value at pixel (x, y) of a frame of the given height: chips[((y * RF_WM_ROWS / height)
 * % RF_WM_TILE) * RF_WM_TILE + (x * RF_WM_ROWS / height) % RF_WM_TILE], integer arithmetic. */
int rf_media_wm_chip_at(const rf_media_wm_pattern_t *p, int x, int y, int height);
/* plane[y * stride + x] += amplitude * chip, for a float plane (luma, or each of R, G, B). */
void rf_media_wm_embed_float(const rf_media_wm_pattern_t *p, float *plane, int width, int height,
                             ptrdiff_t stride, float amplitude);
/* The same on an 8-bit luma plane (amplitude in code values; RF_WM_AMPLITUDE * 219 for limited
 * range), with an ordered dither instead of rounding, clamped to 0..255. */
void rf_media_wm_embed_u8(const rf_media_wm_pattern_t *p, uint8_t *plane, int width, int height,
                          ptrdiff_t stride, float amplitude);

/* The same on a decoded frame's luma, in place (the frame must be writable): planar YUV and gray
 * formats of 8 to 16 bits; the amplitude is RF_WM_AMPLITUDE of the luma range (219 or 255 code
 * values at 8 bits, scaled to the depth), dithered like embed_u8. Chroma is not touched, so a
 * frame marked here has exactly the chroma it had. RF_EINVAL for other formats (RGB, packed,
 * float): the caller then marks the RGB frame (embed_float on R, G and B). */
int rf_media_wm_embed_frame(const rf_media_wm_pattern_t *p, AVFrame *frame, rf_err_t *err);
/* True when rf_media_wm_embed_frame handles frames of this pixel format. */
bool rf_media_wm_frame_format_ok(int pix_fmt);

/* rf_media_checksum for watermarked outputs: the same per-frame SHA-256 and digest, but of every
 * plane except luma for the formats rf_media_wm_embed_frame marks (the mark lives in luma only);
 * other formats hash the whole frame. So a farm output of a lossless job has the source's chroma
 * checksums frame for frame (`reelfarm verify --lossless`). */
int rf_media_checksum_chroma(const char *path, uint64_t *frames, uint8_t digest[RF_SHA256_LEN],
                             void (*per_frame)(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN]),
                             void *arg, rf_err_t *err);

typedef struct rf_media_wm_result {
    bool found;          /* CRC valid and the key id is the key's */
    uint64_t payload;    /* when found */
    uint16_t key_id;     /* payload >> 48 */
    uint64_t tag;        /* payload & (2^48 - 1) */
    double confidence;   /* 0..1: share of coded bits whose hard decision agrees with the decoded
                            codeword (0.5 is chance), 0 when not found */
    double sync_score;   /* best sync correlation peak in standard deviations above the mean */
    double scale;        /* chip size found relative to height / RF_WM_ROWS (1/0.9 after a 10% crop) */
    int offset_x, offset_y; /* the tile's offset found, in half chips */
    int64_t frames;      /* frames read */
} rf_media_wm_result_t;

/* Accumulates the high-passed luma of frames of one size, then detects. Detection caches what
 * does not depend on the key (the folded tile at every scale), so trying many keys on one
 * accumulation (the false-positive measurement) costs a few ms per key. */
typedef struct rf_media_wm_acc rf_media_wm_acc_t;

int rf_media_wm_acc_new(int width, int height, rf_media_wm_acc_t **out, rf_err_t *err);
/* Adds one frame's 8-bit luma. */
void rf_media_wm_acc_add_u8(rf_media_wm_acc_t *a, const uint8_t *luma, ptrdiff_t stride);
int64_t rf_media_wm_acc_frames(const rf_media_wm_acc_t *a);
int rf_media_wm_acc_detect(rf_media_wm_acc_t *a, const uint8_t k_pattern[RF_WM_KEY_LEN],
                           rf_media_wm_result_t *res, rf_err_t *err);
void rf_media_wm_acc_destroy(rf_media_wm_acc_t **a);

/* Decodes path's video (at most RF_WM_MAX_FRAMES frames) and looks for the mark of the farm key
 * key (k_wm; k_pattern is derived here). Returns 0 with res filled whether or not a mark was found;
 * a negative code (err names the file) when the file cannot be read. Finding no mark is no proof
 * that a video is not synthetic. */
int rf_media_watermark_detect_file(const char *path, const uint8_t key[32], rf_media_wm_result_t *res,
                                   rf_err_t *err);
/* The same with the pattern key (what a worker holds). */
int rf_media_watermark_detect_file_pattern(const char *path, const uint8_t k_pattern[32],
                                           rf_media_wm_result_t *res, rf_err_t *err);

#endif
