/* fuzz_codec.c - libFuzzer target for the envelope decoder (common/codec.h): every byte string a
 * peer can send to any of the coordinator's sockets goes through rf_msg_unpack first.
 *
 * Properties checked beyond "no crash, no leak, no UB": a frame that unpacks re-packs, the packed
 * form unpacks again, and packing that second message gives the same bytes (the codec is stable
 * on anything it accepted). The frame is tried against both socket limits (control and blob). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "error.h"

static void s_check_roundtrip(const rf_msg_t *m)
{
    /* Packing sets env->version; the arena is ours, so a copy of the envelope struct is enough. */
    Reelfarm__Envelope env = *rf_msg_env(m);
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    if (rf_msg_pack(&env, RF_BLOB_MAX_FRAME * 8, &a, &alen))
        abort(); /* what unpacked must pack: it is at most a few times its frame */
    rf_msg_t *again = NULL;
    if (rf_msg_unpack(a, alen, alen, RF_CODEC_BUDGET(alen) * 4, &again))
        abort(); /* our own packing of an accepted message must be accepted */
    Reelfarm__Envelope env2 = *rf_msg_env(again);
    if (rf_msg_pack(&env2, RF_BLOB_MAX_FRAME * 8, &b, &blen))
        abort();
    if (alen != blen || memcmp(a, b, alen))
        abort(); /* pack(unpack(pack(x))) == pack(x) */
    (void)rf_msg_body_name(&env2);
    rf_msg_destroy(&again);
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t limits[] = {RF_CONTROL_MAX_FRAME, RF_BLOB_MAX_FRAME};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        rf_msg_t *m = NULL;
        int rc = rf_msg_unpack(data, size, limits[i], RF_CODEC_BUDGET(size), &m);
        if (rc == 0) {
            if (!m || !rf_msg_env(m))
                abort();
            s_check_roundtrip(m);
            rf_msg_destroy(&m);
        } else if (m) {
            abort(); /* a refused frame leaves nothing behind */
        } else if (rc != RF_ETOOBIG && rc != RF_ENOMEM && rc != RF_EPROTO) {
            abort(); /* only the documented codes */
        }
    }
    return 0;
}
