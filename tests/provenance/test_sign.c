/* test_sign.c - signing MP4/MOV in place and verifying: the media survives (every packet's
 * bytes and timestamps read back identical through the moved chunk offsets, FFmpeg decodes it),
 * the layout is ftyp, C2PA box, XMP box, ...; the verifier trusts it with the farm CA, calls it
 * untrusted without, and calls any flipped byte (media, moov, manifest) tampering. Files no C2PA
 * container holds get the sidecar bound by a whole-file hash. The independent check of the
 * manifest format is tests/e2e/c2pa_wasm.sh (the reference reader).
 */
#include <fcntl.h>
#include <libavformat/avformat.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include "media/fixture.h"
#include "provenance.h"

static char s_dir[512], s_keys[600], s_ca[700];
static rf_prov_signer_t *s_signer;

static int s_setup(void **state)
{
    (void)state;
    rf_tmpdir(s_dir, sizeof(s_dir));
    snprintf(s_keys, sizeof(s_keys), "%s/keys", s_dir);
    snprintf(s_ca, sizeof(s_ca), "%s/ca.pem", s_keys);
    rf_err_t err = {0};
    if (rf_prov_keygen_ca(s_keys, "test farm", &err))
        return -1;
    char key[700], cert[700], chain[700];
    snprintf(key, sizeof(key), "%s/signer.key", s_keys);
    snprintf(cert, sizeof(cert), "%s/signer.pem", s_keys);
    snprintf(chain, sizeof(chain), "%s/chain.pem", s_keys);
    return rf_prov_signer_load(key, cert, chain, &s_signer, &err) ? -1 : 0;
}

static int s_teardown(void **state)
{
    (void)state;
    rf_prov_signer_destroy(&s_signer);
    rf_tmpdir_remove(s_dir);
    return 0;
}

/* SHA-256 over every packet in file order: stream, pts, dts, flags, bytes. Counts packets. */
static void s_packets(const char *path, uint8_t out[32], int *count)
{
    AVFormatContext *f = NULL;
    assert_int_equal(avformat_open_input(&f, path, NULL, NULL), 0);
    assert_true(avformat_find_stream_info(f, NULL) >= 0);
    AVPacket *pkt = av_packet_alloc();
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    *count = 0;
    while (av_read_frame(f, pkt) >= 0) {
        int64_t meta[4] = {pkt->stream_index, pkt->pts, pkt->dts, pkt->flags};
        EVP_DigestUpdate(ctx, meta, sizeof(meta));
        EVP_DigestUpdate(ctx, pkt->data, (size_t)pkt->size);
        (*count)++;
        av_packet_unref(pkt);
    }
    EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    av_packet_free(&pkt);
    avformat_close_input(&f);
}

/* The top-level box types of a file, space-separated ("ftyp uuid uuid free mdat moov"), with a
 * "/c" or "/x" suffix for C2PA and XMP uuid boxes. */
static void s_layout(const char *path, char *out, size_t size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    out[0] = 0;
    uint8_t h[24];
    long off = 0;
    while (fseek(f, off, SEEK_SET) == 0 && fread(h, 1, 24, f) >= 8) {
        uint64_t bs = (uint64_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
        if (bs == 1) {
            bs = 0;
            for (int i = 8; i < 16; i++)
                bs = bs << 8 | h[i];
        }
        assert_true(bs >= 8);
        size_t n = strlen(out);
        snprintf(out + n, size - n, "%s%.4s%s", n ? " " : "", (const char *)h + 4,
                 memcmp(h + 4, "uuid", 4) ? "" : h[8] == 0xD8 ? "/c" : h[8] == 0xBE ? "/x" : "/?");
        off += (long)bs;
    }
    fclose(f);
}

static void s_copy(const char *from, const char *to)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
    assert_int_equal(system(cmd), 0);
}

static void s_flip(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* Offset of the first occurrence of needle in the file, -1 when none. */
static long s_find(const char *path, const void *needle, size_t n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[8 << 20];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    uint8_t *p = memmem(buf, len, needle, n);
    return p ? (long)(p - buf) : -1;
}

static rf_prov_job_t s_job(const char *source)
{
    rf_prov_job_t j;
    memset(&j, 0, sizeof(j));
    j.job_id = "j-test";
    j.job_name = "test";
    j.spec_text = "version: 1\n";
    j.spec_len = strlen(j.spec_text);
    j.pipeline = "grade";
    j.seed = 42;
    j.subjects[0] = (rf_prov_subject_t){"Ada Lovelace", "public-domain-historical", ""};
    j.nsubjects = 1;
    j.source_path = source;
    return j;
}

static const rf_prov_status_t *s_status(const rf_prov_report_t *r, const char *code)
{
    for (int i = 0; i < r->nstatus; i++)
        if (!strcmp(r->status[i].code, code))
            return &r->status[i];
    return NULL;
}

static void s_expect(const char *path, const char *trust, rf_prov_verdict_t want,
                     const char *code)
{
    rf_prov_report_t r;
    rf_err_t err = {0};
    assert_int_equal(rf_prov_verify_file(path, NULL, trust, &r, &err), 0);
    if (r.verdict != want || (code && !s_status(&r, code))) {
        for (int i = 0; i < r.nstatus; i++)
            print_message("  %s %s: %s\n", r.status[i].failure ? "FAIL" : "ok", r.status[i].code,
                          r.status[i].detail);
        fail_msg("'%s': verdict %d, want %d with status %s", path, r.verdict, want,
                 code ? code : "-");
    }
}

/* Signs a copy of src made by ffmpeg with the given remux flags and checks everything. */
static void s_sign_case(const char *src, const char *name, const char *ffmpeg_flags)
{
    char path[1024], cmd[4096], layout[512];
    snprintf(path, sizeof(path), "%s/%s", s_dir, name);
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -y -i '%s' -map 0 -c copy %s '%s'", src,
             ffmpeg_flags, path);
    assert_int_equal(system(cmd), 0);
    uint8_t before[32], after[32];
    int n1, n2;
    s_packets(path, before, &n1);
    rf_prov_job_t job = s_job(src);
    rf_err_t err = {0};
    uint8_t msha[32];
    if (rf_prov_sign_file(s_signer, path, &job, msha, &err))
        fail_msg("sign %s: %s", name, err.msg);
    s_packets(path, after, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(before, after, 32); /* every packet read back through the new offsets */
    snprintf(cmd, sizeof(cmd), "ffmpeg -nostdin -v error -xerror -i '%s' -f null - 2>&1", path);
    char line[512];
    assert_int_equal(rf_shell_line(cmd, line, sizeof(line)), 0);
    assert_string_equal(line, "");
    s_layout(path, layout, sizeof(layout));
    assert_true(!strncmp(layout, "ftyp uuid/c uuid/x ", 19));
    assert_null(strstr(layout + 19, "uuid/c")); /* exactly one manifest box */
    char sidecar[1100];
    assert_int_equal(rf_prov_sidecar_path(path, sidecar, sizeof(sidecar)), 0);
    struct stat st;
    assert_int_equal(stat(sidecar, &st), 0);
    assert_true(st.st_size > 1000);

    s_expect(path, s_ca, RF_PROV_TRUSTED, "assertion.bmffHash.match");
    s_expect(path, NULL, RF_PROV_UNTRUSTED, "signingCredential.untrusted");
    rf_prov_report_t r;
    assert_int_equal(rf_prov_verify_file(path, NULL, s_ca, &r, &err), 0);
    assert_true(r.embedded);
    assert_true(r.xmp_found && r.xmp_agrees);
    assert_string_equal(r.digital_source_type, RF_PROV_DST_TRAINED);
    assert_string_equal(r.job_id, "j-test");
    assert_string_equal(r.claim_generator, "reelfarm");
    assert_non_null(strstr(r.signer_subject, "test farm"));
    /* No names in the file: the subject is recorded as a hash only. */
    assert_int_equal(s_find(path, "Ada Lovelace", 12), -1);

    /* One flipped byte anywhere hashed: media data, moov, an assertion. */
    long mdat = s_find(path, "mdat", 4), moov = s_find(path, "moov", 4);
    long asrt = s_find(path, "com.reelfarm.render", 19);
    assert_true(mdat > 0 && moov > 0 && asrt > 0);
    struct {
        long off;
        const char *code;
    } flips[] = {{mdat + 2000, "assertion.bmffHash.mismatch"},
                 {moov + 40, "assertion.bmffHash.mismatch"},
                 {asrt + 60, "assertion.hashedURI.mismatch"}};
    for (size_t i = 0; i < 3; i++) {
        char bad[1100];
        snprintf(bad, sizeof(bad), "%s.bad%zu.mp4", path, i);
        s_copy(path, bad);
        s_flip(bad, flips[i].off);
        s_expect(bad, s_ca, RF_PROV_TAMPERED, flips[i].code);
    }
}

static void test_sign_mp4(void **state)
{
    (void)state;
    char src[512];
    rf_fixture("h264-aac-300", src, sizeof(src));
    s_sign_case(src, "plain.mp4", ""); /* ftyp free mdat moov: chunk offsets move by the boxes */
}

static void test_sign_faststart_mov(void **state)
{
    (void)state;
    char src[512];
    rf_fixture("h264-aac-300", src, sizeof(src));
    /* moov before mdat: the offsets also move by what the moov grows (the udta tags). */
    s_sign_case(src, "fast.mov", "-movflags +faststart");
}

static void test_resign_replaces(void **state)
{
    (void)state;
    char src[512], path[1024], layout[512];
    rf_fixture("h264-aac-300", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/twice.mp4", s_dir);
    s_copy(src, path);
    rf_prov_job_t job = s_job(NULL);
    rf_err_t err = {0};
    assert_int_equal(rf_prov_sign_file(s_signer, path, &job, NULL, &err), 0);
    assert_int_equal(rf_prov_sign_file(s_signer, path, &job, NULL, &err), 0);
    s_layout(path, layout, sizeof(layout));
    assert_true(!strncmp(layout, "ftyp uuid/c uuid/x ", 19));
    assert_null(strstr(layout + 19, "uuid/"));
    s_expect(path, s_ca, RF_PROV_TRUSTED, NULL);
}

static void test_fragmented_refused(void **state)
{
    (void)state;
    char src[512], path[1024], cmd[2048];
    rf_fixture("h264-aac-300", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/frag.mp4", s_dir);
    snprintf(cmd, sizeof(cmd),
             "ffmpeg -nostdin -v error -y -i '%s' -c copy -movflags frag_keyframe+empty_moov '%s'",
             src, path);
    assert_int_equal(system(cmd), 0);
    uint8_t before[32], after[32];
    int n;
    s_packets(path, before, &n);
    rf_prov_job_t job = s_job(NULL);
    rf_err_t err = {0};
    assert_int_equal(rf_prov_sign_file(s_signer, path, &job, NULL, &err), RF_EMEDIA);
    assert_non_null(strstr(err.msg, "fragmented MP4"));
    assert_non_null(strstr(err.msg, path));
    s_packets(path, after, &n);
    assert_memory_equal(before, after, 32); /* nothing lost */
}

static void test_sidecar_only(void **state)
{
    (void)state;
    char src[512], path[1024], sidecar[1100];
    rf_fixture("not-video", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/notes.bin", s_dir);
    s_copy(src, path);
    rf_prov_job_t job = s_job(NULL);
    rf_err_t err = {0};
    assert_int_equal(rf_prov_sign_file(s_signer, path, &job, NULL, &err), 0);
    snprintf(sidecar, sizeof(sidecar), "%s/notes.c2pa", s_dir);
    struct stat st;
    assert_int_equal(stat(sidecar, &st), 0);
    s_expect(path, s_ca, RF_PROV_TRUSTED, "assertion.dataHash.match");
    s_flip(path, 3);
    s_expect(path, s_ca, RF_PROV_TAMPERED, "assertion.dataHash.mismatch");
}

static void test_nothing(void **state)
{
    (void)state;
    char src[512];
    rf_fixture("h264-aac-300", src, sizeof(src));
    rf_prov_report_t r;
    rf_err_t err = {0};
    assert_int_equal(rf_prov_verify_file(src, NULL, s_ca, &r, &err), 0);
    assert_int_equal(r.verdict, RF_PROV_NONE);
    assert_int_equal(rf_prov_verify_file("/nonexistent/x.mp4", NULL, NULL, &r, &err), RF_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/x.mp4"));
}

/* Every single-bit flip in the manifest box: the verifier never fails to answer, never calls the
 * file valid when the flip is inside the assertions (from the first one on) or the COSE signature,
 * and overall almost every flip is tampering. The few bytes C2PA signs nowhere (JUMBF toggles,
 * the manifest's label, the unused merkle offset) may flip unnoticed. */
static void test_flip_every_manifest_byte(void **state)
{
    (void)state;
    char src[512], path[1024];
    rf_fixture("h264-aac-300", src, sizeof(src));
    snprintf(path, sizeof(path), "%s/flips.mp4", s_dir);
    s_copy(src, path);
    rf_prov_job_t job = s_job(NULL);
    rf_err_t err = {0};
    assert_int_equal(rf_prov_sign_file(s_signer, path, &job, NULL, &err), 0);
    long box = s_find(path, "\xD8\xFE\xC3\xD6", 4) - 8;
    /* Labels with their NUL: the claim's URLs hold the same text without one. */
    long first = s_find(path, "c2pa.assertions", 16) + 16;        /* the first assertion's jumb */
    long claim = s_find(path, "c2pa.claim.v2", 14) - 1 - 16 - 8 - 8; /* the claim's jumb */
    long cose = s_find(path, "c2pa.signature", 15) + 15 + 8;      /* the COSE bytes */
    assert_true(box > 0 && first > box && claim > first && cose > claim);
    FILE *f = fopen(path, "rb");
    uint8_t h[4];
    assert_int_equal(fseek(f, box, SEEK_SET), 0);
    assert_int_equal(fread(h, 1, 4, f), 4);
    fclose(f);
    long size = (long)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
    int valid = 0, total = 0;
    for (long off = box; off < box + size; off++) {
        s_flip(path, off);
        rf_prov_report_t r;
        assert_int_equal(rf_prov_verify_file(path, NULL, s_ca, &r, &err), 0);
        bool ok = r.verdict == RF_PROV_TRUSTED || r.verdict == RF_PROV_UNTRUSTED;
        if (ok && ((off >= first && off < claim) || off >= cose))
            fail_msg("a flipped bit at manifest offset %ld went unnoticed (assertions %ld..%ld, cose %ld)", off - box, first - box, claim - box, cose - box);
        valid += ok;
        total++;
        s_flip(path, off);
    }
    print_message("flips in the manifest box: %d of %d unnoticed\n", valid, total);
    assert_true(valid * 100 < total * 3);
    s_expect(path, s_ca, RF_PROV_TRUSTED, NULL);
}

static void test_sidecar_path(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {{"out.mp4", "out.c2pa"},
                 {"/a/b/out.final.mov", "/a/b/out.final.c2pa"},
                 {"/a.b/out", "/a.b/out.c2pa"},
                 {"/a/.hidden", "/a/.hidden.c2pa"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        assert_int_equal(rf_prov_sidecar_path(cases[i].in, out, sizeof(out)), 0);
        assert_string_equal(out, cases[i].out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sidecar_path),     cmocka_unit_test(test_sign_mp4),
        cmocka_unit_test(test_sign_faststart_mov), cmocka_unit_test(test_resign_replaces),
        cmocka_unit_test(test_fragmented_refused), cmocka_unit_test(test_sidecar_only),
        cmocka_unit_test(test_nothing),         cmocka_unit_test(test_flip_every_manifest_byte),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
