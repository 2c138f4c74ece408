/* watermark.c - the invisible watermark: payload coding, the keyed tile, embedding, detection.
 *
 * The contract and the design are in media.h ("invisible watermark") and docs/PROVENANCE.md; the
 * numbers behind the choices are in bench/watermark-robustness.sh. In short: a tile of 32 x 32
 * chips (chip = height / 64 pixels) repeats over the frame; half its chips are a keyed sync
 * pattern, half carry 172 coded bits (80 information bits - payload and CRC-16 - through a K=7
 * rate-1/2 convolutional code) three chips each. The detector integrates the high-passed luma of
 * all frames, and for each candidate chip size folds it onto a grid of 64 x 64 half chips (one
 * tile), correlates that with the sync pattern at every cyclic offset through a 64-point 2-D FFT,
 * and decodes the payload at the best alignments with a soft Viterbi decoder.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <sodium.h>

#include "media_internal.h"

#define S_CHIPS (RF_WM_TILE * RF_WM_TILE)        /* 1024 chips per tile */
#define S_INFO_BITS 80                           /* 64 payload + 16 CRC */
#define S_K 7                                    /* constraint length */
#define S_STATES (1 << (S_K - 1))                /* 64 */
#define S_STEPS (S_INFO_BITS + S_K - 1)          /* with the zero tail that ends in state 0 */
#define S_CODED (2 * S_STEPS)                    /* 172 coded bits */
#define S_CHIPS_PER_BIT 4
#define S_PAYLOAD_CHIPS (S_CODED * S_CHIPS_PER_BIT) /* 688; the other 336 chips are sync */
#define S_GRID (2 * RF_WM_TILE)                  /* half chips per folded tile side: 64 */
#define S_LOG_GRID 6
#define S_SCALE_STEP 0.0025                      /* relative step of the chip-size search */
#define S_CLIP 3.0                               /* high-passed luma clipped at this many MADs */

/* ---- keys and payload ---------------------------------------------------------------------- */

static void s_keyed_hash(const uint8_t key[RF_WM_KEY_LEN], const char *label, const void *msg,
                         size_t len, uint8_t *out, size_t outlen)
{
    crypto_generichash_state st;

    crypto_generichash_init(&st, key, RF_WM_KEY_LEN, outlen);
    crypto_generichash_update(&st, (const unsigned char *)label, strlen(label) + 1);
    if (len)
        crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, outlen);
}

void rf_media_wm_derive(const uint8_t k_wm[RF_WM_KEY_LEN], uint8_t k_pattern[RF_WM_KEY_LEN],
                        uint8_t k_tag[RF_WM_KEY_LEN])
{
    s_keyed_hash(k_wm, "reelfarm watermark pattern v1", NULL, 0, k_pattern, RF_WM_KEY_LEN);
    s_keyed_hash(k_wm, "reelfarm watermark tag v1", NULL, 0, k_tag, RF_WM_KEY_LEN);
}

uint16_t rf_media_wm_key_id(const uint8_t k_pattern[RF_WM_KEY_LEN])
{
    uint8_t h[16];

    s_keyed_hash(k_pattern, "reelfarm watermark key id v1", NULL, 0, h, sizeof(h));
    return (uint16_t)(h[0] << 8 | h[1]);
}

uint64_t rf_media_wm_payload(const uint8_t k_wm[RF_WM_KEY_LEN], const char *job_id)
{
    uint8_t k_pattern[RF_WM_KEY_LEN], k_tag[RF_WM_KEY_LEN], h[16];
    uint64_t tag = 0;

    rf_media_wm_derive(k_wm, k_pattern, k_tag);
    s_keyed_hash(k_tag, "reelfarm watermark job tag v1", job_id, strlen(job_id), h, sizeof(h));
    for (int i = 0; i < 6; i++)
        tag = tag << 8 | h[i];
    uint64_t payload = (uint64_t)rf_media_wm_key_id(k_pattern) << 48 | tag;
    sodium_memzero(k_tag, sizeof(k_tag));
    return payload;
}

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over the payload's 8 big-endian bytes. */
static uint16_t s_crc16(uint64_t payload)
{
    uint16_t crc = 0xFFFF;

    for (int i = 7; i >= 0; i--) {
        crc ^= (uint16_t)(((payload >> (8 * i)) & 0xFF) << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

/* ---- convolutional code (K=7, generators 133 and 171 octal) ---------------------------------- */

static int s_parity(unsigned v)
{
    return __builtin_parity(v);
}

/* info: S_INFO_BITS bits (0/1) -> coded: S_CODED bits. */
static void s_conv_encode(const uint8_t *info, uint8_t *coded)
{
    unsigned sr = 0;

    for (int t = 0; t < S_STEPS; t++) {
        unsigned u = t < S_INFO_BITS ? info[t] : 0;
        sr = ((sr << 1) | u) & 0x7F;
        coded[2 * t] = (uint8_t)s_parity(sr & 0133);
        coded[2 * t + 1] = (uint8_t)s_parity(sr & 0171);
    }
}

/* Soft Viterbi: soft[i] > 0 means coded bit i is more likely 0. Writes S_INFO_BITS bits. */
static void s_viterbi(const double *soft, uint8_t *info)
{
    double metric[S_STATES], next[S_STATES];
    static const double minus_inf = -1e300;
    uint8_t (*from)[S_STATES] = malloc(sizeof(uint8_t[S_STEPS][S_STATES]));
    int state = 0;

    if (!from) {
        memset(info, 0, S_INFO_BITS);
        return;
    }
    for (int s = 0; s < S_STATES; s++)
        metric[s] = s == 0 ? 0 : minus_inf;
    for (int t = 0; t < S_STEPS; t++) {
        for (int n = 0; n < S_STATES; n++) {
            unsigned u = (unsigned)n & 1;
            double best = minus_inf;
            int arg = 0;
            if (t >= S_INFO_BITS && u) {
                next[n] = minus_inf; /* the tail only shifts zeros in */
                from[t][n] = 0;
                continue;
            }
            for (int b = 0; b < 2; b++) {
                int s = (n >> 1) | (b << (S_K - 2));
                if (metric[s] <= minus_inf)
                    continue;
                unsigned sr = (((unsigned)s << 1) | u) & 0x7F;
                double m = metric[s] + (s_parity(sr & 0133) ? -soft[2 * t] : soft[2 * t]) +
                           (s_parity(sr & 0171) ? -soft[2 * t + 1] : soft[2 * t + 1]);
                if (m > best) {
                    best = m;
                    arg = b;
                }
            }
            next[n] = best;
            from[t][n] = (uint8_t)arg;
        }
        memcpy(metric, next, sizeof(metric));
    }
    for (int t = S_STEPS - 1; t >= 0; t--) {
        if (t < S_INFO_BITS)
            info[t] = (uint8_t)(state & 1);
        state = (state >> 1) | (from[t][state] << (S_K - 2));
    }
    free(from);
}

static void s_info_bits(uint64_t payload, uint8_t *info)
{
    uint16_t crc = s_crc16(payload);

    for (int i = 0; i < 64; i++)
        info[i] = (uint8_t)((payload >> (63 - i)) & 1);
    for (int i = 0; i < 16; i++)
        info[64 + i] = (uint8_t)((crc >> (15 - i)) & 1);
}

/* ---- the keyed layout ------------------------------------------------------------------------ */

/* Which chip carries what, from k_pattern alone (the payload does not move chips). */
typedef struct s_layout {
    int16_t role[S_CHIPS]; /* -1: sync; else the coded bit the chip carries */
    int8_t sign[S_CHIPS];  /* keyed +-1 */
} s_layout_t;

static void s_layout(const uint8_t k_pattern[RF_WM_KEY_LEN], s_layout_t *l)
{
    static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {'r', 'f', 'w', 'm', 'l', 'a', 'y', '1'};
    uint32_t rnd[S_CHIPS];
    uint8_t signs[S_CHIPS / 8];
    int perm[S_CHIPS];

    crypto_stream_chacha20((unsigned char *)rnd, sizeof(rnd), nonce, k_pattern);
    crypto_stream_chacha20_xor_ic(signs, (const unsigned char[S_CHIPS / 8]){0}, sizeof(signs), nonce,
                                  (uint64_t)sizeof(rnd) / 64, k_pattern);
    for (int i = 0; i < S_CHIPS; i++)
        perm[i] = i;
    for (int i = S_CHIPS - 1; i > 0; i--) { /* Fisher-Yates; the modulo bias is below 2^-22 */
        int j = (int)(rnd[i] % (uint32_t)(i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int i = 0; i < S_CHIPS; i++) {
        int c = perm[i];
        l->role[c] = (int16_t)(i < S_PAYLOAD_CHIPS ? i % S_CODED : -1);
        l->sign[c] = (int8_t)((signs[c / 8] >> (c % 8)) & 1 ? 1 : -1);
    }
    sodium_memzero(rnd, sizeof(rnd));
}

/* ---- the pattern ----------------------------------------------------------------------------- */

struct rf_media_wm_pattern {
    int8_t chips[S_CHIPS];
};

int rf_media_wm_pattern_new(const uint8_t k_pattern[RF_WM_KEY_LEN], uint64_t payload,
                            rf_media_wm_pattern_t **out, rf_err_t *err)
{
    rf_media_wm_pattern_t *p = calloc(1, sizeof(*p));
    s_layout_t l;
    uint8_t info[S_INFO_BITS], coded[S_CODED];

    *out = NULL;
    if (!p)
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
    s_layout(k_pattern, &l);
    s_info_bits(payload, info);
    s_conv_encode(info, coded);
    for (int c = 0; c < S_CHIPS; c++)
        p->chips[c] = (int8_t)(l.role[c] < 0 ? l.sign[c] : (coded[l.role[c]] ? -l.sign[c] : l.sign[c]));
    *out = p;
    return 0;
}

void rf_media_wm_pattern_destroy(rf_media_wm_pattern_t **p)
{
    if (p && *p) {
        free(*p);
        *p = NULL;
    }
}

const int8_t *rf_media_wm_pattern_chips(const rf_media_wm_pattern_t *p)
{
    return p->chips;
}

int rf_media_wm_chip_at(const rf_media_wm_pattern_t *p, int x, int y, int height)
{
    int cx = (int)(((int64_t)x * RF_WM_ROWS / height) % RF_WM_TILE);
    int cy = (int)(((int64_t)y * RF_WM_ROWS / height) % RF_WM_TILE);
    return p->chips[cy * RF_WM_TILE + cx];
}

/* The chip column of every x, so the per-sample work is a table look-up and a multiply-add. */
static int s_chip_columns(int width, int height, int *col)
{
    for (int x = 0; x < width; x++)
        col[x] = (int)(((int64_t)x * RF_WM_ROWS / height) % RF_WM_TILE);
    return 0;
}

void rf_media_wm_embed_float(const rf_media_wm_pattern_t *p, float *plane, int width, int height,
                             ptrdiff_t stride, float amplitude)
{
    int *col = malloc(sizeof(int) * (size_t)(width > 0 ? width : 1));

    if (!col || width <= 0 || height <= 0) {
        free(col);
        return;
    }
    s_chip_columns(width, height, col);
    for (int y = 0; y < height; y++) {
        const int8_t *row = p->chips + ((int64_t)y * RF_WM_ROWS / height % RF_WM_TILE) * RF_WM_TILE;
        float *dst = plane + y * stride;
        for (int x = 0; x < width; x++)
            dst[x] += amplitude * (float)row[col[x]];
    }
    free(col);
}

/* The ordered dither at (x, y): frac(x a + y b) (the R2 low-discrepancy sequence), in double as
 * fmod(x a + y b, 1.0) - which for this non-negative sum is exactly t - trunc(t) = t - floor(t):
 * no libm call per sample, and the same value bit for bit. */
#define S_DITHER_A 0.7548776662466927
#define S_DITHER_B 0.5698402909980532

/* floorf(v) clamped to 0..maxv, without a libm call (v is a sample plus a few codes). */
static inline int s_floor_clamp(float v, int maxv)
{
    int i = (int)v;
    i -= (float)i > v;
    return i < 0 ? 0 : i > maxv ? maxv : i;
}

/* What marking a frame of one size needs, made once per frame so that a row is loads, adds and a
 * floor: delta[r * w + x] = amplitude * chip (tile row r, column x), and dx[x] = x a (the
 * dither's column term, the same double the formula computes). */
typedef struct s_embed_tab {
    float *delta;
    double *dx;
} s_embed_tab_t;

static int s_embed_tab_make(const rf_media_wm_pattern_t *p, int width, int height, float amplitude,
                            s_embed_tab_t *t)
{
    t->delta = malloc(sizeof(float) * (size_t)width * RF_WM_TILE);
    t->dx = malloc(sizeof(double) * (size_t)width);
    int *col = malloc(sizeof(int) * (size_t)width);
    if (!t->delta || !t->dx || !col) {
        free(t->delta);
        free(t->dx);
        free(col);
        return RF_ENOMEM;
    }
    s_chip_columns(width, height, col);
    for (int r = 0; r < RF_WM_TILE; r++)
        for (int x = 0; x < width; x++)
            t->delta[(size_t)r * (size_t)width + (size_t)x] =
                amplitude * (float)p->chips[r * RF_WM_TILE + col[x]];
    for (int x = 0; x < width; x++)
        t->dx[x] = x * S_DITHER_A;
    free(col);
    return 0;
}

static void s_embed_tab_free(s_embed_tab_t *t)
{
    free(t->delta);
    free(t->dx);
}

static inline float s_dither_at(const double *dx, double yb, int x)
{
    double t = dx[x] + yb;
    return (float)(t - (double)(int64_t)t);
}

/* One row: v = floor((float)v + delta + dither), clamped to 0..maxv. Ordered dither (the R2
 * sequence) instead of rounding: on integer input plain rounding would turn every amplitude in
 * 1.5..2.5 into exactly 2; a pipeline frame's luma is fractional before its conversion, so this is
 * what the worker's marked frames look like too. */
static void s_row_u8_c(uint8_t *line, const float *delta, const double *dx, double yb, int x0, int w)
{
    for (int x = x0; x < w; x++)
        line[x] = (uint8_t)s_floor_clamp((float)line[x] + delta[x] + s_dither_at(dx, yb, x), 255);
}

static void s_row_u16_c(uint16_t *line, const float *delta, const double *dx, double yb, int x0,
                        int w, int maxv)
{
    for (int x = x0; x < w; x++)
        line[x] = (uint16_t)s_floor_clamp((float)line[x] + delta[x] + s_dither_at(dx, yb, x), maxv);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define S_HAVE_AVX2_PATH 1

/* Eight samples of the row formula with AVX2, operation for operation the scalar one: the dither
 * in double (add, floor, subtract, round to float), then two float adds in the same order and a
 * floor. Same bits as s_row_*_c (tests/media/test_watermark.c compares them). */
__attribute__((target("avx2"))) static inline __m256i s_row8_avx2(__m256 v, const float *delta,
                                                                   const double *dx, double yb,
                                                                   int maxv)
{
    __m256d ybv = _mm256_set1_pd(yb);
    __m256d t0 = _mm256_add_pd(_mm256_loadu_pd(dx), ybv);
    __m256d t1 = _mm256_add_pd(_mm256_loadu_pd(dx + 4), ybv);
    __m128 d0 = _mm256_cvtpd_ps(_mm256_sub_pd(t0, _mm256_floor_pd(t0)));
    __m128 d1 = _mm256_cvtpd_ps(_mm256_sub_pd(t1, _mm256_floor_pd(t1)));
    __m256 d = _mm256_insertf128_ps(_mm256_castps128_ps256(d0), d1, 1);
    v = _mm256_add_ps(_mm256_add_ps(v, _mm256_loadu_ps(delta)), d);
    __m256i i = _mm256_cvttps_epi32(_mm256_floor_ps(v));
    return _mm256_min_epi32(_mm256_max_epi32(i, _mm256_setzero_si256()), _mm256_set1_epi32(maxv));
}

__attribute__((target("avx2"))) static void s_row_u8_avx2(uint8_t *line, const float *delta,
                                                          const double *dx, double yb, int w)
{
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256i px = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(line + x)));
        __m256i i = s_row8_avx2(_mm256_cvtepi32_ps(px), delta + x, dx + x, yb, 255);
        __m128i lo = _mm256_castsi256_si128(i), hi = _mm256_extracti128_si256(i, 1);
        __m128i w16 = _mm_packus_epi32(lo, hi);
        _mm_storel_epi64((__m128i *)(line + x), _mm_packus_epi16(w16, w16));
    }
    s_row_u8_c(line, delta, dx, yb, x, w);
}

__attribute__((target("avx2"))) static void s_row_u16_avx2(uint16_t *line, const float *delta,
                                                           const double *dx, double yb, int w,
                                                           int maxv)
{
    int x = 0;
    for (; x + 8 <= w; x += 8) {
        __m256i px = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(line + x)));
        __m256i i = s_row8_avx2(_mm256_cvtepi32_ps(px), delta + x, dx + x, yb, maxv);
        __m128i lo = _mm256_castsi256_si128(i), hi = _mm256_extracti128_si256(i, 1);
        _mm_storeu_si128((__m128i *)(line + x), _mm_packus_epi32(lo, hi));
    }
    s_row_u16_c(line, delta, dx, yb, x, w, maxv);
}
#endif

/* RF_WM_SCALAR=1 in the environment forces the scalar rows (tests and benchmarks compare them). */
static bool s_use_avx2(void)
{
#ifdef S_HAVE_AVX2_PATH
    static int use = -1;
    if (use < 0) {
        const char *e = getenv("RF_WM_SCALAR");
        __builtin_cpu_init();
        use = __builtin_cpu_supports("avx2") && !(e && *e == '1');
    }
    return use;
#else
    return false;
#endif
}

/* Marks a luma plane of 8-bit (bytes == 1) or 9..16-bit samples. */
static int s_embed_plane(const rf_media_wm_pattern_t *p, uint8_t *plane, int width, int height,
                         ptrdiff_t stride, int bytes, int maxv, float amplitude)
{
    s_embed_tab_t t;
    if (s_embed_tab_make(p, width, height, amplitude, &t))
        return RF_ENOMEM;
    bool avx2 = s_use_avx2();
    for (int y = 0; y < height; y++) {
        const float *delta = t.delta + (size_t)((int64_t)y * RF_WM_ROWS / height % RF_WM_TILE) * (size_t)width;
        uint8_t *line = plane + (ptrdiff_t)y * stride;
        const double yb = y * S_DITHER_B;
#ifdef S_HAVE_AVX2_PATH
        if (avx2) {
            if (bytes == 1)
                s_row_u8_avx2(line, delta, t.dx, yb, width);
            else
                s_row_u16_avx2((uint16_t *)line, delta, t.dx, yb, width, maxv);
            continue;
        }
#endif
        (void)avx2;
        if (bytes == 1)
            s_row_u8_c(line, delta, t.dx, yb, 0, width);
        else
            s_row_u16_c((uint16_t *)line, delta, t.dx, yb, 0, width, maxv);
    }
    s_embed_tab_free(&t);
    return 0;
}

void rf_media_wm_embed_u8(const rf_media_wm_pattern_t *p, uint8_t *plane, int width, int height,
                          ptrdiff_t stride, float amplitude)
{
    if (width > 0 && height > 0)
        s_embed_plane(p, plane, width, height, stride, 1, 255, amplitude);
}

bool rf_media_wm_frame_format_ok(int pix_fmt)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(pix_fmt);
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_FLOAT |
                           AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BE)))
        return false;
    if (!(d->flags & AV_PIX_FMT_FLAG_PLANAR) && d->nb_components > 2)
        return false; /* packed YUV (yuyv422, ...) */
    int bytes = d->comp[0].depth > 8 ? 2 : 1;
    return d->comp[0].plane == 0 && d->comp[0].offset == 0 && d->comp[0].shift == 0 &&
           d->comp[0].step == bytes && d->comp[0].depth >= 8 && d->comp[0].depth <= 16;
}

int rf_media_wm_embed_frame(const rf_media_wm_pattern_t *p, AVFrame *f, rf_err_t *err)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
    int w = f->width, h = f->height;

    if (!rf_media_wm_frame_format_ok(f->format))
        return rf_err_set(err, RF_EINVAL, "watermark: pixel format %s has no planar luma to mark",
                          d ? d->name : "?");
    int depth = d->comp[0].depth, maxv = (1 << depth) - 1;
    bool full = f->color_range == AVCOL_RANGE_JPEG || d->nb_components <= 2; /* gray: full range */
    float amp = (float)(RF_WM_AMPLITUDE * (full ? 255.0 : 219.0) * (double)(1 << (depth - 8)));
    if (s_embed_plane(p, f->data[0], w, h, f->linesize[0], depth > 8 ? 2 : 1, maxv, amp))
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
    return 0;
}

/* ---- FFT (64 x 64, radix 2) ------------------------------------------------------------------ */

/* Twiddle factors exp(-2 pi i k / 64), k < 32: made once per 2-D transform, not per butterfly. */
typedef struct s_twiddle {
    float c[S_GRID / 2], s[S_GRID / 2];
} s_twiddle_t;

static void s_twiddles(s_twiddle_t *t)
{
    for (int k = 0; k < S_GRID / 2; k++) {
        t->c[k] = (float)cos(2 * M_PI * k / S_GRID);
        t->s[k] = (float)-sin(2 * M_PI * k / S_GRID);
    }
}

static void s_fft64(float *re, float *im, ptrdiff_t step, int inverse, const s_twiddle_t *tw)
{
    float r[S_GRID], i_[S_GRID];

    for (int k = 0; k < S_GRID; k++) { /* bit-reversed copy */
        int rev = 0;
        for (int b = 0; b < S_LOG_GRID; b++)
            rev |= ((k >> b) & 1) << (S_LOG_GRID - 1 - b);
        r[rev] = re[k * step];
        i_[rev] = im[k * step];
    }
    for (int len = 2; len <= S_GRID; len <<= 1) {
        int stride = S_GRID / len; /* exp(-2 pi i k / len) = twiddle[k * stride] */
        for (int s = 0; s < S_GRID; s += len) {
            for (int k = 0; k < len / 2; k++) {
                float wr = tw->c[k * stride], wi = inverse ? -tw->s[k * stride] : tw->s[k * stride];
                int a = s + k, b = s + k + len / 2;
                float tr = r[b] * wr - i_[b] * wi, ti = r[b] * wi + i_[b] * wr;
                r[b] = r[a] - tr;
                i_[b] = i_[a] - ti;
                r[a] += tr;
                i_[a] += ti;
            }
        }
    }
    for (int k = 0; k < S_GRID; k++) {
        re[k * step] = r[k];
        im[k * step] = i_[k];
    }
}

static void s_fft2(float *re, float *im, int inverse, const s_twiddle_t *tw)
{
    for (int y = 0; y < S_GRID; y++)
        s_fft64(re + y * S_GRID, im + y * S_GRID, 1, inverse, tw);
    for (int x = 0; x < S_GRID; x++)
        s_fft64(re + x, im + x, S_GRID, inverse, tw);
}

/* ---- accumulation and detection -------------------------------------------------------------- */

typedef struct s_fold {
    double scale;                 /* chip size relative to height / RF_WM_ROWS */
    float g[S_GRID * S_GRID];     /* chip-sized window sums at every half-chip offset of the tile */
    float fre[S_GRID * S_GRID];   /* their 2-D FFT */
    float fim[S_GRID * S_GRID];
} s_fold_t;

struct rf_media_wm_acc {
    int in_width, in_height; /* of the frames added */
    int factor;        /* 2: frames are averaged 2x2 first (chips of 8 px and more lose nothing) */
    int width, height; /* of the accumulation: in_width / factor, in_height / factor */
    float *lum;        /* width x height scratch: the (reduced) luma of the frame being added */
    int64_t frames;
    double *sum;       /* width x height: sum over frames of the normalised high-passed luma */
    double *integral;  /* (width+1) x (height+1) scratch */
    float *hp;         /* width x height scratch */
    s_fold_t *folds;   /* cache for detection, built on the first detect after the last add */
    int nfolds;
};

int rf_media_wm_acc_new(int width, int height, rf_media_wm_acc_t **out, rf_err_t *err)
{
    rf_media_wm_acc_t *a;

    *out = NULL;
    if (width < 16 || height < 16 || width > 16384 || height > 16384)
        return rf_err_set(err, RF_EINVAL, "watermark: frame size %dx%d out of range (16..16384)", width,
                          height);
    a = calloc(1, sizeof(*a));
    if (!a)
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
    a->in_width = width;
    a->in_height = height;
    a->factor = height / RF_WM_ROWS >= 8 ? 2 : 1;
    width /= a->factor;
    height /= a->factor;
    a->width = width;
    a->height = height;
    a->lum = calloc((size_t)width * height, sizeof(float));
    a->sum = calloc((size_t)width * height, sizeof(double));
    a->integral = calloc((size_t)(width + 1) * (height + 1), sizeof(double));
    a->hp = calloc((size_t)width * height, sizeof(float));
    if (!a->lum || !a->sum || !a->integral || !a->hp) {
        rf_media_wm_acc_destroy(&a);
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory for a %dx%d accumulator", width,
                          height);
    }
    *out = a;
    return 0;
}

void rf_media_wm_acc_destroy(rf_media_wm_acc_t **a)
{
    if (!a || !*a)
        return;
    free((*a)->lum);
    free((*a)->sum);
    free((*a)->integral);
    free((*a)->hp);
    free((*a)->folds);
    free(*a);
    *a = NULL;
}

int64_t rf_media_wm_acc_frames(const rf_media_wm_acc_t *a)
{
    return a->frames;
}

/* integral[(y)*(w+1)+x] = sum of src over [0,x) x [0,y). */
static void s_integral_f32(const float *src, int w, int h, double *integral)
{
    memset(integral, 0, sizeof(double) * (size_t)(w + 1));
    for (int y = 0; y < h; y++) {
        double run = 0;
        double *row = integral + (size_t)(y + 1) * (w + 1), *above = row - (w + 1);
        row[0] = 0;
        for (int x = 0; x < w; x++) {
            run += src[(size_t)y * w + x];
            row[x + 1] = above[x + 1] + run;
        }
    }
}

static void s_integral_f64(const double *src, int w, int h, double *integral)
{
    memset(integral, 0, sizeof(double) * (size_t)(w + 1));
    for (int y = 0; y < h; y++) {
        double run = 0;
        double *row = integral + (size_t)(y + 1) * (w + 1), *above = row - (w + 1);
        row[0] = 0;
        for (int x = 0; x < w; x++) {
            run += src[(size_t)y * w + x];
            row[x + 1] = above[x + 1] + run;
        }
    }
}

void rf_media_wm_acc_add_u8(rf_media_wm_acc_t *a, const uint8_t *luma, ptrdiff_t stride)
{
    int w = a->width, h = a->height;
    int r = (int)lrint((double)h / RF_WM_ROWS);
    double mad = 0;

    if (r < 1)
        r = 1;
    for (int y = 0; y < h; y++) {
        float *dst = a->lum + (size_t)y * w;
        if (a->factor == 1) {
            for (int x = 0; x < w; x++)
                dst[x] = luma[y * stride + x];
        } else {
            const uint8_t *r0 = luma + 2 * y * stride, *r1 = r0 + stride;
            for (int x = 0; x < w; x++)
                dst[x] = 0.25f * (float)(r0[2 * x] + r0[2 * x + 1] + r1[2 * x] + r1[2 * x + 1]);
        }
    }
    s_integral_f32(a->lum, w, h, a->integral);
    /* High-pass: the sample minus the mean of the (2r+1)^2 window around it (clipped at the
     * borders). The picture is mostly low frequencies; the mark sits at the chip scale. */
    for (int y = 0; y < h; y++) {
        int y0 = y - r < 0 ? 0 : y - r, y1 = y + r + 1 > h ? h : y + r + 1;
        const double *top = a->integral + (size_t)y0 * (w + 1), *bot = a->integral + (size_t)y1 * (w + 1);
        for (int x = 0; x < w; x++) {
            int x0 = x - r < 0 ? 0 : x - r, x1 = x + r + 1 > w ? w : x + r + 1;
            double mean = (bot[x1] - bot[x0] - top[x1] + top[x0]) / ((double)(x1 - x0) * (y1 - y0));
            float v = (float)(a->lum[(size_t)y * w + x] - mean);
            a->hp[(size_t)y * w + x] = v;
            mad += fabsf(v);
        }
    }
    mad /= (double)w * h;
    if (mad < 1e-3) { /* a flat frame carries neither picture nor mark worth weighing */
        a->frames++;
        return;
    }
    /* Normalise each frame by its mean absolute deviation and clip outliers (edges, text), so
     * a few high-contrast frames or features do not drown the mark in the others. */
    float lim = (float)(S_CLIP * mad), inv = (float)(1.0 / mad);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        float v = a->hp[i];
        v = v > lim ? lim : v < -lim ? -lim : v;
        a->sum[i] += v * inv;
    }
    a->frames++;
    free(a->folds);
    a->folds = NULL;
    a->nfolds = 0;
}

/* Sum of the accumulation over the real rectangle [x0,x1) x [y0,y1), bilinear in the integral. */
static double s_box(const double *integral, int w, int h, double x0, double y0, double x1, double y1)
{
#define S_AT(X, Y) integral[(size_t)(Y) * (w + 1) + (X)]
    double xs[2] = {x0, x1}, ys[2] = {y0, y1}, v[2][2];
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++) {
            double x = xs[i] < 0 ? 0 : xs[i] > w ? w : xs[i];
            double y = ys[j] < 0 ? 0 : ys[j] > h ? h : ys[j];
            int xi = (int)x, yi = (int)y;
            if (xi >= w)
                xi = w - 1;
            if (yi >= h)
                yi = h - 1;
            double fx = x - xi, fy = y - yi;
            v[j][i] = (1 - fy) * ((1 - fx) * S_AT(xi, yi) + fx * S_AT(xi + 1, yi)) +
                      fy * ((1 - fx) * S_AT(xi, yi + 1) + fx * S_AT(xi + 1, yi + 1));
        }
#undef S_AT
    return v[1][1] - v[1][0] - v[0][1] + v[0][0];
}

static int s_build_folds(rf_media_wm_acc_t *a, rf_err_t *err)
{
    int w = a->width, h = a->height;
    int n = (int)floor(log(RF_WM_SCALE_MAX / RF_WM_SCALE_MIN) / log1p(S_SCALE_STEP)) + 1;
    double *f = malloc(sizeof(double) * S_GRID * S_GRID);
    s_twiddle_t tw;

    s_twiddles(&tw);
    a->folds = calloc((size_t)n, sizeof(s_fold_t));
    if (!a->folds || !f) {
        free(f);
        free(a->folds);
        a->folds = NULL;
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
    }
    s_integral_f64(a->sum, w, h, a->integral);
    for (int s = 0; s < n; s++) {
        s_fold_t *fo = &a->folds[s];
        double half = (double)h / RF_WM_ROWS * RF_WM_SCALE_MIN * pow(1 + S_SCALE_STEP, s) / 2;
        int nx = (int)(w / half), ny = (int)(h / half);

        fo->scale = RF_WM_SCALE_MIN * pow(1 + S_SCALE_STEP, s);
        memset(f, 0, sizeof(double) * S_GRID * S_GRID);
        for (int j = 0; j < ny; j++)
            for (int i = 0; i < nx; i++)
                f[(j % S_GRID) * S_GRID + i % S_GRID] +=
                    s_box(a->integral, w, h, i * half, j * half, (i + 1) * half, (j + 1) * half);
        for (int y = 0; y < S_GRID; y++)
            for (int x = 0; x < S_GRID; x++) {
                int x1 = (x + 1) % S_GRID, y1 = (y + 1) % S_GRID;
                float g = (float)(f[y * S_GRID + x] + f[y * S_GRID + x1] + f[y1 * S_GRID + x] +
                                  f[y1 * S_GRID + x1]);
                fo->g[y * S_GRID + x] = g;
                fo->fre[y * S_GRID + x] = g;
                fo->fim[y * S_GRID + x] = 0;
            }
        s_fft2(fo->fre, fo->fim, 0, &tw);
    }
    a->nfolds = n;
    free(f);
    return 0;
}

typedef struct s_cand {
    double z;
    int fold, sx, sy;
} s_cand_t;

static int s_cand_cmp(const void *pa, const void *pb)
{
    const s_cand_t *a = pa, *b = pb;
    return (a->z < b->z) - (a->z > b->z);
}

/* Reads the coded bits at one alignment and decodes; returns the payload's check result. */
static bool s_decode_at(const s_fold_t *fo, const s_layout_t *l, int sx, int sy, uint16_t key_id,
                        uint64_t *payload, double *agree)
{
    double soft[S_CODED] = {0}, rms = 0;
    uint8_t info[S_INFO_BITS], coded[S_CODED];
    uint64_t p = 0;
    uint16_t crc = 0;
    int same = 0;

    for (int c = 0; c < S_CHIPS; c++) {
        if (l->role[c] < 0)
            continue;
        int cx = c % RF_WM_TILE, cy = c / RF_WM_TILE;
        int gx = (2 * cx + sx) % S_GRID, gy = (2 * cy + sy) % S_GRID;
        soft[l->role[c]] += l->sign[c] * fo->g[gy * S_GRID + gx];
    }
    for (int i = 0; i < S_CODED; i++)
        rms += soft[i] * soft[i];
    if (rms <= 0)
        return false;
    s_viterbi(soft, info);
    for (int i = 0; i < 64; i++)
        p = p << 1 | info[i];
    for (int i = 0; i < 16; i++)
        crc = (uint16_t)(crc << 1 | info[64 + i]);
    s_conv_encode(info, coded);
    for (int i = 0; i < S_CODED; i++)
        same += (soft[i] >= 0) == (coded[i] == 0);
    *payload = p;
    *agree = (double)same / S_CODED;
    return crc == s_crc16(p) && (uint16_t)(p >> 48) == key_id;
}

int rf_media_wm_acc_detect(rf_media_wm_acc_t *a, const uint8_t k_pattern[RF_WM_KEY_LEN],
                           rf_media_wm_result_t *res, rf_err_t *err)
{
    s_layout_t *l = NULL;
    float *tre = NULL, *tim = NULL, *cre = NULL, *cim = NULL;
    s_cand_t *cands = NULL;
    s_twiddle_t tw;
    uint16_t key_id = rf_media_wm_key_id(k_pattern);
    int rc = 0;

    memset(res, 0, sizeof(*res));
    res->frames = a->frames;
    if (a->frames == 0)
        return 0;
    if (!a->folds && (rc = s_build_folds(a, err)) != 0)
        return rc;
    l = malloc(sizeof(*l));
    tre = calloc(S_GRID * S_GRID, sizeof(float));
    tim = calloc(S_GRID * S_GRID, sizeof(float));
    cre = malloc(sizeof(float) * S_GRID * S_GRID);
    cim = malloc(sizeof(float) * S_GRID * S_GRID);
    cands = malloc(sizeof(s_cand_t) * (size_t)a->nfolds);
    if (!l || !tre || !tim || !cre || !cim || !cands) {
        rc = rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
        goto out;
    }
    s_layout(k_pattern, l);
    /* The sync template on the half-chip grid: chip (cx, cy) starts at half chip (2cx, 2cy). */
    for (int c = 0; c < S_CHIPS; c++)
        if (l->role[c] < 0)
            tre[(2 * (c / RF_WM_TILE)) * S_GRID + 2 * (c % RF_WM_TILE)] = l->sign[c];
    s_twiddles(&tw);
    s_fft2(tre, tim, 0, &tw);
    for (int s = 0; s < a->nfolds; s++) {
        const s_fold_t *fo = &a->folds[s];
        double mean = 0, var = 0, best = -1e300;
        int arg = 0;
        /* corr(d) = sum_p g[p + d] t[p]  <=>  G . conj(T) */
        for (int i = 0; i < S_GRID * S_GRID; i++) {
            cre[i] = fo->fre[i] * tre[i] + fo->fim[i] * tim[i];
            cim[i] = fo->fim[i] * tre[i] - fo->fre[i] * tim[i];
        }
        s_fft2(cre, cim, 1, &tw);
        for (int i = 0; i < S_GRID * S_GRID; i++) {
            mean += cre[i];
            if (cre[i] > best) {
                best = cre[i];
                arg = i;
            }
        }
        mean /= S_GRID * S_GRID;
        for (int i = 0; i < S_GRID * S_GRID; i++)
            var += (cre[i] - mean) * (cre[i] - mean);
        var /= S_GRID * S_GRID;
        cands[s].z = var > 0 ? (best - mean) / sqrt(var) : 0;
        cands[s].fold = s;
        cands[s].sx = arg % S_GRID;
        cands[s].sy = arg / S_GRID;
    }
    qsort(cands, (size_t)a->nfolds, sizeof(*cands), s_cand_cmp);
    res->sync_score = cands[0].z;
    res->scale = a->folds[cands[0].fold].scale;
    res->offset_x = cands[0].sx;
    res->offset_y = cands[0].sy;
    /* The sync peak is within a half chip of the payload's best alignment: try its neighbours. */
    for (int k = 0; k < RF_WM_CANDIDATES * 9 && k / 9 < a->nfolds && !res->found; k++) {
        uint64_t p;
        double agree;
        const s_cand_t *cd = &cands[k / 9];
        int sx = (cd->sx + (k % 3) - 1 + S_GRID) % S_GRID, sy = (cd->sy + (k % 9) / 3 - 1 + S_GRID) % S_GRID;
        if (s_decode_at(&a->folds[cd->fold], l, sx, sy, key_id, &p, &agree)) {
            res->found = true;
            res->payload = p;
            res->key_id = (uint16_t)(p >> 48);
            res->tag = p & ((UINT64_C(1) << 48) - 1);
            res->confidence = agree;
            res->sync_score = cd->z;
            res->scale = a->folds[cd->fold].scale;
            res->offset_x = sx;
            res->offset_y = sy;
        }
    }
out:
    free(l);
    free(tre);
    free(tim);
    free(cre);
    free(cim);
    free(cands);
    return rc;
}

/* ---- files ------------------------------------------------------------------------------------ */

int rf_media_checksum_chroma(const char *path, uint64_t *frames, uint8_t digest[RF_SHA256_LEN],
                             void (*per_frame)(void *arg, int64_t index, const uint8_t sha[RF_SHA256_LEN]),
                             void *arg, rf_err_t *err)
{
    rf_decoder_t *dec = NULL;
    AVFrame *f = av_frame_alloc();
    crypto_hash_sha256_state all;
    int rc;

    *frames = 0;
    if (!f)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    crypto_hash_sha256_init(&all);
    if ((rc = rf_decoder_open(path, &dec, err)) != 0)
        goto out;
    while ((rc = rf_decoder_next(dec, f, err)) == 1) {
        uint8_t sha[RF_SHA256_LEN];
        const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
        if (rf_media_wm_frame_format_ok(f->format) && d->nb_components >= 3) {
            crypto_hash_sha256_state st;
            int bytes = d->comp[0].depth > 8 ? 2 : 1;
            crypto_hash_sha256_init(&st);
            for (int pl = 1; pl < 4 && f->data[pl]; pl++) {
                int w = AV_CEIL_RSHIFT(f->width, d->log2_chroma_w) * bytes;
                int h = AV_CEIL_RSHIFT(f->height, d->log2_chroma_h);
                if (pl == 3) { /* alpha: full size */
                    w = f->width * bytes;
                    h = f->height;
                }
                for (int y = 0; y < h; y++)
                    crypto_hash_sha256_update(&st, f->data[pl] + (ptrdiff_t)y * f->linesize[pl], (size_t)w);
            }
            crypto_hash_sha256_final(&st, sha);
        } else {
            rf_frame_sha256(f, sha);
        }
        if (per_frame)
            per_frame(arg, (int64_t)*frames, sha);
        crypto_hash_sha256_update(&all, sha, sizeof(sha));
        (*frames)++;
    }
    if (rc == 0)
        crypto_hash_sha256_final(&all, digest);
out:
    av_frame_free(&f);
    rf_decoder_destroy(&dec);
    return rc < 0 ? rc : 0;
}

/* True when plane 0 of fmt is 8-bit luma, one byte per sample. */
static bool s_plane0_is_luma8(int fmt)
{
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    return d && !(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) && d->comp[0].plane == 0 &&
           d->comp[0].depth == 8 && d->comp[0].step == 1;
}

int rf_media_watermark_detect_file_pattern(const char *path, const uint8_t k_pattern[32],
                                           rf_media_wm_result_t *res, rf_err_t *err)
{
    rf_decoder_t *dec = NULL;
    rf_media_wm_acc_t *acc = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *gray = NULL;
    AVFrame *frame = av_frame_alloc();
    int rc;

    memset(res, 0, sizeof(*res));
    if (!frame)
        return rf_err_set(err, RF_ENOMEM, "watermark: out of memory");
    if ((rc = rf_decoder_open(path, &dec, err)) != 0)
        goto out;
    while ((rc = rf_decoder_next(dec, frame, err)) == 1) {
        const uint8_t *luma = frame->data[0];
        ptrdiff_t stride = frame->linesize[0];
        if (!acc) {
            if ((rc = rf_media_wm_acc_new(frame->width, frame->height, &acc, err)) != 0) {
                rf_err_prefix(err, "'%s': ", path);
                goto out;
            }
        } else if (frame->width != acc->in_width || frame->height != acc->in_height) {
            continue; /* a size change mid-stream: keep to the first size */
        }
        if (!s_plane0_is_luma8(frame->format)) {
            if (!sws) {
                sws = sws_getContext(frame->width, frame->height, frame->format, frame->width,
                                     frame->height, AV_PIX_FMT_GRAY8, SWS_POINT, NULL, NULL, NULL);
                gray = malloc((size_t)frame->width * frame->height);
                if (!sws || !gray) {
                    rc = rf_err_set(err, RF_EMEDIA, "'%s': cannot convert %s frames to luma", path,
                                    av_get_pix_fmt_name(frame->format));
                    goto out;
                }
            }
            uint8_t *dst[4] = {gray};
            int dst_stride[4] = {frame->width};
            sws_scale(sws, (const uint8_t *const *)frame->data, frame->linesize, 0, frame->height, dst,
                      dst_stride);
            luma = gray;
            stride = frame->width;
        }
        rf_media_wm_acc_add_u8(acc, luma, stride);
        if (acc->frames >= RF_WM_MAX_FRAMES)
            break;
    }
    if (rc < 0)
        goto out;
    rc = 0;
    if (acc)
        rc = rf_media_wm_acc_detect(acc, k_pattern, res, err);
out:
    av_frame_free(&frame);
    rf_decoder_destroy(&dec);
    rf_media_wm_acc_destroy(&acc);
    sws_freeContext(sws);
    free(gray);
    return rc;
}

int rf_media_watermark_detect_file(const char *path, const uint8_t key[32], rf_media_wm_result_t *res,
                                   rf_err_t *err)
{
    uint8_t k_pattern[RF_WM_KEY_LEN], k_tag[RF_WM_KEY_LEN];
    int rc;

    rf_media_wm_derive(key, k_pattern, k_tag);
    sodium_memzero(k_tag, sizeof(k_tag));
    rc = rf_media_watermark_detect_file_pattern(path, k_pattern, res, err);
    sodium_memzero(k_pattern, sizeof(k_pattern));
    return rc;
}
