/* codec.c - Envelope packing and budgeted unpacking (see codec.h).
 *
 * protobuf-c lets the caller supply the allocator used while unpacking. Ours is an arena: blocks are
 * malloc'd lazily as protobuf-c asks for memory, every request is charged against a byte budget,
 * and a request over the budget returns NULL, which protobuf-c turns into a clean unpack failure.
 * free is a no-op; the whole arena goes at once in rf_msg_destroy, so we never walk the message.
 */
#include "codec.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#define RF_ARENA_FIRST_BLOCK (4 * 1024)      /* most control messages fit in the first block */
#define RF_ARENA_MAX_BLOCK (1024 * 1024)     /* blocks grow by doubling up to this */

typedef struct s_block {
    struct s_block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    alignas(max_align_t) unsigned char data[];
} s_block_t;

typedef struct s_arena {
    s_block_t *head;   /* current block first; older blocks follow */
    size_t budget;     /* bytes protobuf-c may be handed in total */
    size_t charged;    /* bytes handed out so far, alignment padding included */
    size_t next_block; /* size of the next block to allocate */
    int over_budget;   /* set when a request was refused, to tell ENOMEM from EPROTO */
} s_arena_t;

struct rf_msg {
    s_arena_t arena;
    Reelfarm__Envelope *env;
};

static size_t s_align(size_t n)
{
    const size_t a = alignof(max_align_t);
    return (n + a - 1) & ~(a - 1);
}

static void *s_arena_alloc(void *opaque, size_t size)
{
    s_arena_t *a = opaque;
    if (size == 0)
        size = 1;
    if (size > a->budget) { /* also keeps s_align from overflowing */
        a->over_budget = 1;
        return NULL;
    }
    size_t need = s_align(size);
    if (need > a->budget - a->charged) {
        a->over_budget = 1;
        return NULL;
    }
    s_block_t *b = a->head;
    if (b == NULL || b->size - b->used < need) {
        size_t bsize = a->next_block;
        if (bsize < need)
            bsize = need; /* a big field gets a block of its own size */
        b = malloc(sizeof *b + bsize);
        if (b == NULL)
            return NULL;
        b->size = bsize;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        if (a->next_block < RF_ARENA_MAX_BLOCK)
            a->next_block *= 2;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->charged += need;
    return p;
}

static void s_arena_free(void *opaque, void *ptr)
{
    (void)opaque;
    (void)ptr; /* everything goes at once with the arena */
}

static void s_arena_release(s_arena_t *a)
{
    s_block_t *b = a->head;
    while (b != NULL) {
        s_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* True when msg, or any message inside it, holds an unknown field with field number 0.
 * protobuf-c 1.4.1 refuses a tag whose first byte says field 0, but reads the number from every
 * byte of the varint: a non-canonical tag (0x81 0x00) smuggles field 0, which protobuf forbids,
 * into unknown_fields, and packing the message again gives a frame protobuf-c itself refuses.
 * Found by tests/fuzz/fuzz_codec (regression: tests/fuzz/corpus/codec/regress-field-zero.bin). The
 * schema is not recursive, so depth is bounded by it; the limit only guards a future change. */
static bool s_has_field_zero(const ProtobufCMessage *msg, int depth)
{
    if (depth > 16)
        return true;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
            ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);
            for (size_t k = 0; k < n; k++)
                if (arr[k] && s_has_field_zero(arr[k], depth + 1))
                    return true;
            continue;
        }
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + fd->quantifier_offset) != fd->id)
            continue; /* another arm of the oneof is set: this pointer is not ours to read */
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(const void *)(base + fd->offset);
        if (sub && s_has_field_zero(sub, depth + 1))
            return true;
    }
    return false;
}

int rf_msg_unpack(const void *data, size_t len, size_t max_frame, size_t budget, rf_msg_t **out)
{
    int rc = 0;
    rf_msg_t *m = NULL;

    *out = NULL;
    if (len > max_frame)
        return RF_ETOOBIG;
    if (len == 0 || data == NULL)
        return RF_EPROTO; /* an empty envelope has no body */

    m = calloc(1, sizeof *m);
    if (m == NULL)
        return RF_ENOMEM;
    m->arena.budget = budget;
    m->arena.next_block = RF_ARENA_FIRST_BLOCK;

    ProtobufCAllocator allocator = {
        .alloc = s_arena_alloc,
        .free = s_arena_free,
        .allocator_data = &m->arena,
    };
    m->env = reelfarm__envelope__unpack(&allocator, len, data);
    if (m->env == NULL) {
        rc = m->arena.over_budget ? RF_ENOMEM : RF_EPROTO;
        goto cleanup;
    }
    if (m->env->version != RF_PROTOCOL_VERSION || m->env->body_case == REELFARM__ENVELOPE__BODY__NOT_SET ||
        s_has_field_zero(&m->env->base, 0)) {
        rc = RF_EPROTO;
        goto cleanup;
    }
    *out = m;
    m = NULL;

cleanup:
    rf_msg_destroy(&m);
    return rc;
}

const Reelfarm__Envelope *rf_msg_env(const rf_msg_t *m)
{
    return m != NULL ? m->env : NULL;
}

void rf_msg_destroy(rf_msg_t **m)
{
    if (m == NULL || *m == NULL)
        return;
    s_arena_release(&(*m)->arena);
    free(*m);
    *m = NULL;
}

int rf_msg_pack(Reelfarm__Envelope *env, size_t max_frame, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    env->version = RF_PROTOCOL_VERSION;
    size_t size = reelfarm__envelope__get_packed_size(env);
    if (size > max_frame)
        return RF_ETOOBIG;
    uint8_t *buf = malloc(size > 0 ? size : 1);
    if (buf == NULL)
        return RF_ENOMEM;
    size_t packed = reelfarm__envelope__pack(env, buf);
    if (packed != size) { /* protobuf-c's own invariant; a mismatch means a corrupted message */
        free(buf);
        return RF_EPROTO;
    }
    *out = buf;
    *len = size;
    return 0;
}

const char *rf_msg_body_name(const Reelfarm__Envelope *env)
{
    if (env == NULL || env->body_case == REELFARM__ENVELOPE__BODY__NOT_SET)
        return "none";
    /* The oneof's field names in the .proto are the snake_case names we want in logs. */
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&reelfarm__envelope__descriptor, (unsigned)env->body_case);
    return f != NULL ? f->name : "unknown";
}
