/* worker.c - the worker's session loop and slot threads. See worker.h. */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#include <sodium.h>
#include <zmq.h>

#include <libavutil/log.h>

#include "blob.h"
#include "codec.h"
#include "gpu.h"
#include "nn.h"
#include "gpu_pipe.h"
#include "hash.h"
#include "log.h"
#include "media.h"
#include "passes.h"
#include "rftime.h"
#include "slot.h"
#include "zbridge.h"

#define COMP "worker"
#define RF_TICK_MS 100
#define RF_WORKER_ADVERTISED 64 /* cached files named in Hello and Heartbeat (proto: at most 64) */
#define RF_PROGRESS_MS 1000
#define RF_BACKOFF_MIN_MS 1000
#define RF_BACKOFF_MAX_MS 32000

const char *const rf_worker_encoders[] = {"libx264", "libx265",  "libsvtav1",  "ffv1",
                                          "prores_ks", "h264_nvenc", "hevc_nvenc", NULL};

typedef enum { SLOT_IDLE, SLOT_RUNNING, SLOT_FINISHED } w_slot_state_t;

typedef struct w_slot {
    rf_worker_t *w;
    uint32_t index;
    w_slot_state_t state;        /* loop thread only */
    atomic_bool thread_done;     /* set by the slot thread as its last act */
    pthread_t thread;
    rf_assignment_t *a;
    atomic_int cancel;
    _Atomic uint64_t frames_done;
    uint64_t started_ms;
    rf_slot_env_t env;           /* the worker's env, with the test fault if it applies to this chunk */
    rf_slot_result_t res;
} w_slot_t;

struct rf_worker {
    uv_loop_t loop;
    uv_async_t wake;             /* a slot finished, or stop was asked */
    uv_timer_t tick;
    void *zctx;
    rf_zsock_t *sock;
    char endpoint[512];
    char blob_endpoint[512];
    char name[64];
    char instance[33];
    char cache_dir[4096];
    char shared_blobs[4096];     /* config shared_blobs; "" = none */
    int drain_grace_s;
    uint32_t nslots;
    w_slot_t slots[RF_WORKER_MAX_SLOTS];
    rf_slot_env_t env;
    rf_zsec_t sec;               /* CURVE client keys (security.key); off = plaintext */
    rf_slot_fault_t fault;       /* test fault asked for (--test-fault); kind NONE = behave */
    uint32_t fault_chunks;       /* chunks the test fault was applied to so far (loop thread) */
    /* session */
    bool welcomed;
    uint32_t heartbeat_ms, liveness;
    uint64_t last_heard_ms, last_sent_ms, hello_ms, progress_ms;
    uint64_t last_tick_ms; /* when the tick last ran (a late one means this process stalled) */
    uint64_t backoff_ms;
    uint64_t seq;
    /* capabilities */
    char *encoders[16];
    size_t nencoders;
    char *passes[64];
    size_t npasses;
    char gpu_model[128];         /* first working device's name, "" on CPU nodes */
    uint64_t vram_bytes;         /* most free memory on any working device, less what this
                                  * worker's slots reserve on it (gpu_pipe.h rf_gpu_plan_slots) */
    int ngpus;                   /* devices that passed the self-test */
    int gpu_index[RF_GPU_MAX_DEVICES]; /* their CUDA ordinals; slot i uses gpu_index[i % ngpus] */
    /* stopping */
    atomic_int stop_request;     /* 0 none, 1 drain, 2 now */
    bool draining;
    uint64_t drain_deadline_ms;
    bool closing;
};

static int s_send(rf_worker_t *w, Reelfarm__Envelope *env)
{
    if (!w->sock)
        return RF_EUNAVAIL;
    uint8_t *buf = NULL;
    size_t len = 0;
    env->seq = ++w->seq;
    int rc = rf_msg_pack(env, RF_CONTROL_MAX_FRAME, &buf, &len);
    if (rc)
        return rc;
    rf_zparts_t parts = {.count = 1, .data = {buf}, .size = {len}};
    rc = rf_zsock_send(w->sock, &parts);
    free(buf);
    if (!rc)
        w->last_sent_ms = rf_now_ms();
    return rc;
}

static void s_send_ready(rf_worker_t *w, uint32_t slot)
{
    Reelfarm__Ready r = REELFARM__READY__INIT;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    r.slot = slot;
    env.body_case = REELFARM__ENVELOPE__BODY_READY;
    env.ready = &r;
    s_send(w, &env);
}

static void s_send_result(rf_worker_t *w, w_slot_t *s)
{
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    Reelfarm__ChunkDone d = REELFARM__CHUNK_DONE__INIT;
    Reelfarm__ChunkFailed f = REELFARM__CHUNK_FAILED__INIT;
    Reelfarm__SeamPart seams[2] = {REELFARM__SEAM_PART__INIT, REELFARM__SEAM_PART__INIT};
    Reelfarm__CriticScore scores[RF_SLOT_MAX_RERENDERS + 1];
    Reelfarm__CriticScore *score_ptrs[RF_SLOT_MAX_RERENDERS + 1];
    if (s->res.rc == 0) {
        for (uint32_t i = 0; i < s->res.ncritic && i <= RF_SLOT_MAX_RERENDERS; i++) {
            reelfarm__critic_score__init(&scores[i]);
            scores[i].seed = s->res.critic[i].seed;
            scores[i].score = s->res.critic[i].score;
            scores[i].mean = s->res.critic[i].mean;
            scores[i].frames = s->res.critic[i].frames;
            score_ptrs[i] = &scores[i];
        }
        d.n_critic = s->res.ncritic;
        d.critic = score_ptrs;
        d.critic_kept = s->res.critic_kept;
        for (int i = 0; i < 2; i++) {
            if (!s->res.seam[i].blob[0])
                continue;
            seams[i].blob = s->res.seam[i].blob;
            seams[i].size = s->res.seam[i].size;
            seams[i].frame_count = s->res.seam[i].frames;
            seams[i].checksums_digest.data = s->res.seam[i].digest;
            seams[i].checksums_digest.len = RF_SHA256_LEN;
        }
        if (s->res.frame_list) {
            d.frame_checksums.data = s->res.frame_list;
            d.frame_checksums.len = (size_t)s->res.frame_list_frames * RF_SHA256_LEN;
        }
        d.seam_head = s->res.seam[0].blob[0] ? &seams[0] : NULL;
        d.seam_tail = s->res.seam[1].blob[0] ? &seams[1] : NULL;
        d.lease = s->a->lease;
        d.result_blob = s->res.result_blob;
        d.result_size = s->res.result_size;
        d.frame_count = s->res.frames;
        d.checksums_digest.data = s->res.digest;
        d.checksums_digest.len = RF_SHA256_LEN;
        d.fps = s->res.fps;
        env.body_case = REELFARM__ENVELOPE__BODY_CHUNK_DONE;
        env.chunk_done = &d;
        rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(s->a->job_id, s->a->chunk, s->a->attempt, w->name),
                   "chunk %u of job %s done: %" PRIu64 " frames at %.1f fps", s->a->chunk,
                   s->a->job_id, s->res.frames, s->res.fps);
    } else {
        f.lease = s->a->lease;
        f.error_class = s->res.error_class;
        f.message = s->res.message;
        f.retryable = s->res.retryable;
        env.body_case = REELFARM__ENVELOPE__BODY_CHUNK_FAILED;
        env.chunk_failed = &f;
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(s->a->job_id, s->a->chunk, s->a->attempt, w->name),
                   "chunk %u of job %s failed (%s): %s", s->a->chunk, s->a->job_id,
                   s->res.error_class, s->res.message);
    }
    s_send(w, &env);
    rf_slot_result_release(&s->res);
}

/* ---- slots ------------------------------------------------------------------------------------ */

static void *s_slot_main(void *arg)
{
    w_slot_t *s = arg;
    rf_slot_render(s->a, &s->env, &s->cancel, &s->frames_done, &s->res);
    atomic_store(&s->thread_done, true);
    uv_async_send(&s->w->wake);
    return NULL;
}

static void s_slot_start(rf_worker_t *w, rf_assignment_t *a)
{
    w_slot_t *s = &w->slots[a->slot];
    s->a = a;
    atomic_store(&s->cancel, 0);
    atomic_store(&s->frames_done, 0);
    atomic_store(&s->thread_done, false);
    memset(&s->res, 0, sizeof(s->res));
    s->env = w->env;
    memset(&s->env.fault, 0, sizeof(s->env.fault));
    s->env.gpu = w->ngpus > 0;
    s->env.gpu_device = w->ngpus > 0 ? w->gpu_index[s->index % (uint32_t)w->ngpus] : -1;
    if (w->fault.kind != RF_SLOT_FAULT_NONE &&
        (w->fault.limit == 0 || w->fault_chunks < w->fault.limit)) {
        s->env.fault = w->fault;
        w->fault_chunks++;
        RF_WARN(COMP, "slot %u: test fault '%s' applies to chunk %u of job %s (%u so far)", a->slot,
                w->fault.spec, a->chunk, a->job_id, w->fault_chunks);
    }
    s->started_ms = rf_now_ms();
    s->state = SLOT_RUNNING;
    if (pthread_create(&s->thread, NULL, s_slot_main, s) != 0) {
        s->res.rc = RF_EIO;
        snprintf(s->res.error_class, sizeof(s->res.error_class), "internal");
        snprintf(s->res.message, sizeof(s->res.message), "cannot start a slot thread");
        s->res.retryable = true;
        s->state = SLOT_FINISHED;
        atomic_store(&s->thread_done, true);
        s->thread = 0;
        uv_async_send(&w->wake);
        return;
    }
    rf_log_ctx(RF_LOG_INFO, COMP, RF_LOG_CTX(a->job_id, a->chunk, a->attempt, w->name),
               "slot %u: chunk %u of job %s, frames %" PRId64 "-%" PRId64 " (attempt %u)", a->slot,
               a->chunk, a->job_id, a->frame_start, a->frame_end - 1, a->attempt);
}

/* Joins finished slot threads and reports their results. */
static void s_slots_reap(rf_worker_t *w)
{
    for (uint32_t i = 0; i < w->nslots; i++) {
        w_slot_t *s = &w->slots[i];
        if (s->state == SLOT_RUNNING && atomic_load(&s->thread_done)) {
            if (s->thread)
                pthread_join(s->thread, NULL);
            s->thread = 0;
            s->state = SLOT_FINISHED;
        }
        if (s->state == SLOT_FINISHED && w->welcomed) {
            s_send_result(w, s);
            rf_assignment_destroy(&s->a);
            s->state = SLOT_IDLE;
            if (!w->draining && !w->closing)
                s_send_ready(w, i);
        }
    }
}

static bool s_slots_idle(const rf_worker_t *w)
{
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->slots[i].state != SLOT_IDLE)
            return false;
    return true;
}

static void s_slots_cancel(rf_worker_t *w)
{
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_RUNNING)
            atomic_store(&w->slots[i].cancel, 1);
}

/* ---- session ---------------------------------------------------------------------------------- */

static void s_on_msg(rf_zsock_t *sock, const rf_zparts_t *msg, void *arg);

/* The files in the cache (models, assets), most recently used first: what Hello and Heartbeat
 * advertise, so the coordinator can prefer this worker for jobs that use them. */
static size_t s_models(const rf_worker_t *w, char (*sha)[RF_SHA256_HEX_LEN + 1], char **ptrs)
{
    size_t n = rf_slot_cached_files(w->cache_dir, sha, RF_WORKER_ADVERTISED);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = sha[i];
    return n;
}

static void s_send_hello(rf_worker_t *w)
{
    Reelfarm__Capabilities caps = REELFARM__CAPABILITIES__INIT;
    caps.n_encoders = w->nencoders;
    caps.encoders = w->encoders;
    caps.n_passes = w->npasses;
    caps.passes = w->passes;
    caps.cpu_cores = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    caps.gpu_model = w->gpu_model;
    caps.vram_bytes = w->vram_bytes;
    char models[RF_WORKER_ADVERTISED][RF_SHA256_HEX_LEN + 1];
    char *model_ptrs[RF_WORKER_ADVERTISED];
    caps.n_models = s_models(w, models, model_ptrs);
    caps.models = model_ptrs;
    Reelfarm__LeaseRef refs[RF_WORKER_MAX_SLOTS], *ref_ptrs[RF_WORKER_MAX_SLOTS];
    size_t nrefs = 0;
    for (uint32_t i = 0; i < w->nslots; i++) {
        w_slot_t *s = &w->slots[i];
        if (s->state == SLOT_IDLE)
            continue;
        reelfarm__lease_ref__init(&refs[nrefs]);
        refs[nrefs].lease = s->a->lease;
        refs[nrefs].job_id = s->a->job_id;
        refs[nrefs].chunk = s->a->chunk;
        refs[nrefs].attempt = s->a->attempt;
        ref_ptrs[nrefs] = &refs[nrefs];
        nrefs++;
    }
    Reelfarm__Hello h = REELFARM__HELLO__INIT;
    h.name = w->name;
    h.slots = w->nslots;
    h.caps = &caps;
    h.n_running = nrefs;
    h.running = ref_ptrs;
    h.instance = w->instance;
    Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
    env.body_case = REELFARM__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    s_send(w, &env);
    w->hello_ms = rf_now_ms();
}

/* A new socket every time (zguide's Paranoid Pirate): a stale one may hold a dead connection. */
static int s_connect(rf_worker_t *w)
{
    if (w->sock) {
        rf_zsock_close(w->sock);
        w->sock = NULL;
    }
    w->welcomed = false;
    void *z = zmq_socket(w->zctx, ZMQ_DEALER);
    if (!z)
        return RF_EIO;
    char rid[128];
    int n = snprintf(rid, sizeof(rid), "%s/%s", w->name, w->instance);
    if (rf_zsock_setup(z, ZMQ_DEALER, RF_CONTROL_MAX_FRAME) || rf_zsec_apply(z, &w->sec, NULL) ||
        zmq_setsockopt(z, ZMQ_ROUTING_ID, rid, (size_t)n) != 0 || zmq_connect(z, w->endpoint) != 0) {
        RF_ERROR(COMP, "cannot connect to '%s': %s", w->endpoint, zmq_strerror(errno));
        zmq_close(z);
        return RF_EIO;
    }
    w->sock = rf_zsock_new(&w->loop, z, s_on_msg, w);
    if (!w->sock) {
        zmq_close(z);
        return RF_EIO;
    }
    s_send_hello(w);
    return 0;
}

/* Uses the shared blob store when this host's shared_blobs folder is the coordinator's store
 * (same store id); otherwise says why not and moves bytes over the blob socket. Slots copy the
 * env when they start, so a reconnect to another coordinator changes only later chunks. */
static void s_shared_blobs(rf_worker_t *w, const char *coordinator_id)
{
    bool was = w->env.shared_blobs != NULL;
    w->env.shared_blobs = NULL;
    if (!*w->shared_blobs)
        return;
    if (!coordinator_id || !*coordinator_id) {
        RF_WARN(COMP, "shared_blobs '%s': the coordinator keeps its blob store to itself (no "
                "shared_blobs there): using the blob socket", w->shared_blobs);
        return;
    }
    char id[RF_BLOB_STORE_ID_LEN + 1];
    rf_err_t err = {0};
    if (rf_blob_store_id(w->shared_blobs, false, id, &err) != 0) {
        RF_WARN(COMP, "shared_blobs '%s' is not the coordinator's store (%s; is it mounted?): using "
                "the blob socket", w->shared_blobs, err.msg);
        return;
    }
    if (strcmp(id, coordinator_id) != 0) {
        RF_WARN(COMP, "shared_blobs '%s' holds store %s, the coordinator's is %s: using the blob "
                "socket", w->shared_blobs, id, coordinator_id);
        return;
    }
    w->env.shared_blobs = w->shared_blobs;
    if (!was)
        RF_INFO(COMP, "shared_blobs '%s' is the coordinator's store %s: inputs and results go "
                "through it", w->shared_blobs, id);
}

static void s_on_welcome(rf_worker_t *w, const Reelfarm__Welcome *wel)
{
    w->welcomed = true;
    w->backoff_ms = RF_BACKOFF_MIN_MS;
    w->heartbeat_ms = wel->heartbeat_ms >= 100 && wel->heartbeat_ms <= 60000 ? wel->heartbeat_ms : 1000;
    w->liveness = wel->liveness >= 2 && wel->liveness <= 100 ? wel->liveness : 5;
    for (size_t i = 0; i < wel->n_drop_leases; i++) {
        for (uint32_t k = 0; k < w->nslots; k++) {
            w_slot_t *s = &w->slots[k];
            if (s->state != SLOT_IDLE && s->a->lease == wel->drop_leases[i]) {
                RF_INFO(COMP, "slot %u: the coordinator no longer wants chunk %u: stopping", k,
                        s->a->chunk);
                atomic_store(&s->cancel, 1);
            }
        }
    }
    RF_INFO(COMP, "connected to %s as '%s' (heartbeat %u ms)", w->endpoint, w->name, w->heartbeat_ms);
    s_shared_blobs(w, wel->blob_store_id);
    s_slots_reap(w); /* results finished while disconnected go out now */
    if (w->draining || w->closing)
        return;
    for (uint32_t i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_IDLE)
            s_send_ready(w, i);
}

static void s_on_assign(rf_worker_t *w, const Reelfarm__Assign *m)
{
    rf_err_t err = {0};
    rf_assignment_t *a = NULL;
    const char *why = NULL;
    if (m->slot >= w->nslots || w->slots[m->slot].state != SLOT_IDLE)
        why = "slot is not free";
    else if (w->draining || w->closing)
        why = "worker is stopping";
    else if (rf_assignment_from_msg(m, &a, &err) || rf_assignment_files_at(a, w->cache_dir, &err))
        why = err.msg;
    if (why) {
        rf_assignment_destroy(&a);
        Reelfarm__ChunkFailed f = REELFARM__CHUNK_FAILED__INIT;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        f.lease = m->lease;
        f.error_class = "input";
        f.message = (char *)why;
        f.retryable = true;
        env.body_case = REELFARM__ENVELOPE__BODY_CHUNK_FAILED;
        env.chunk_failed = &f;
        s_send(w, &env);
        rf_log_ctx(RF_LOG_WARN, COMP, RF_LOG_CTX(m->job_id, m->chunk, m->attempt, w->name),
                   "refused chunk %u of job %s: %s", m->chunk, m->job_id ? m->job_id : "?", why);
        return;
    }
    s_slot_start(w, a);
}

static void s_on_msg(rf_zsock_t *sock, const rf_zparts_t *msg, void *arg)
{
    rf_worker_t *w = arg;
    if (sock != w->sock || msg->count != 1)
        return;
    rf_msg_t *m = NULL;
    int rc = rf_msg_unpack(msg->data[0], msg->size[0], RF_CONTROL_MAX_FRAME,
                           RF_CODEC_BUDGET(msg->size[0]), &m);
    if (rc) {
        RF_WARN(COMP, "dropped a malformed message from the coordinator: %s", rf_strerror(rc));
        return;
    }
    w->last_heard_ms = rf_now_ms();
    const Reelfarm__Envelope *env = rf_msg_env(m);
    switch (env->body_case) {
    case REELFARM__ENVELOPE__BODY_WELCOME:
        s_on_welcome(w, env->welcome);
        break;
    case REELFARM__ENVELOPE__BODY_ASSIGN:
        if (w->welcomed)
            s_on_assign(w, env->assign);
        break;
    case REELFARM__ENVELOPE__BODY_CANCEL:
        for (uint32_t i = 0; i < w->nslots; i++) {
            w_slot_t *s = &w->slots[i];
            if (s->state == SLOT_RUNNING && s->a->lease == env->cancel->lease) {
                rf_log_ctx(RF_LOG_INFO, COMP,
                           RF_LOG_CTX(s->a->job_id, s->a->chunk, s->a->attempt, w->name),
                           "slot %u: cancel chunk %u: %s", i, s->a->chunk,
                           env->cancel->reason ? env->cancel->reason : "");
                atomic_store(&s->cancel, 1);
            }
        }
        break;
    case REELFARM__ENVELOPE__BODY_HEARTBEAT:
        break;
    case REELFARM__ENVELOPE__BODY_DISCONNECT:
        RF_INFO(COMP, "coordinator asks to reconnect: %s",
                env->disconnect->reason ? env->disconnect->reason : "");
        rf_msg_destroy(&m);
        if (!w->closing)
            s_connect(w);
        return;
    default:
        RF_WARN(COMP, "unexpected '%s' message from the coordinator", rf_msg_body_name(env));
        break;
    }
    rf_msg_destroy(&m);
}

/* ---- timers and stopping ---------------------------------------------------------------------- */

static void s_close_cb(uv_handle_t *h)
{
    (void)h;
}

static void s_finish(rf_worker_t *w)
{
    if (w->closing && w->sock == NULL)
        return;
    w->closing = true;
    if (w->welcomed) {
        Reelfarm__Disconnect d = REELFARM__DISCONNECT__INIT;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        d.reason = "worker stopping";
        env.body_case = REELFARM__ENVELOPE__BODY_DISCONNECT;
        env.disconnect = &d;
        s_send(w, &env);
    }
    rf_zsock_close(w->sock);
    w->sock = NULL;
    uv_timer_stop(&w->tick);
    uv_close((uv_handle_t *)&w->tick, s_close_cb);
    uv_close((uv_handle_t *)&w->wake, s_close_cb);
}

static void s_check_stop(rf_worker_t *w)
{
    int req = atomic_load(&w->stop_request);
    if (req == 0 || (w->closing && !w->sock))
        return;
    uint64_t now = rf_now_ms();
    if (req == 2 && !w->closing) {
        w->closing = true;
        s_slots_cancel(w);
    } else if (req == 1 && !w->draining && !w->closing) {
        w->draining = true;
        w->drain_deadline_ms = now + (uint64_t)w->drain_grace_s * 1000;
        RF_INFO(COMP, "draining: finishing running chunks (grace %d s)", w->drain_grace_s);
    }
    if (w->draining && !w->closing && now >= w->drain_deadline_ms) {
        RF_INFO(COMP, "drain grace period over: handing back running chunks");
        w->closing = true;
        s_slots_cancel(w);
    }
    /* Results (including "cancelled", which hands the chunk back) go out before we leave. */
    for (uint32_t i = 0; i < w->nslots; i++) {
        w_slot_t *s = &w->slots[i];
        if (s->state == SLOT_RUNNING && atomic_load(&s->thread_done)) {
            pthread_join(s->thread, NULL);
            s->thread = 0;
            s->state = SLOT_FINISHED;
        }
        if (s->state == SLOT_FINISHED) {
            if (w->welcomed)
                s_send_result(w, s);
            rf_assignment_destroy(&s->a);
            s->state = SLOT_IDLE;
        }
    }
    if (s_slots_idle(w)) {
        w->closing = true;
        s_finish(w);
    }
}

static void s_on_wake(uv_async_t *a)
{
    rf_worker_t *w = a->data;
    if (atomic_load(&w->stop_request)) {
        s_check_stop(w);
        return;
    }
    s_slots_reap(w);
}

static void s_on_tick(uv_timer_t *t)
{
    rf_worker_t *w = t->data;
    uint64_t now = rf_now_ms();
    if (atomic_load(&w->stop_request)) {
        s_check_stop(w);
        if (w->closing && !w->sock)
            return;
    }
    /* Silence is judged on what has arrived: after a stall of this process the timer runs before
     * the loop reads the socket (a Welcome or heartbeats may be waiting there), and the stall
     * itself is not the coordinator's silence. */
    uint64_t late = w->last_tick_ms && now > w->last_tick_ms + 2 * (uint64_t)w->heartbeat_ms
                        ? now - w->last_tick_ms - (uint64_t)w->heartbeat_ms
                        : 0;
    w->last_tick_ms = now;
    rf_zsock_drain(w->sock);
    if (late) {
        RF_WARN(COMP, "the worker did not run for %" PRIu64 " ms (a loaded host?): the coordinator "
                      "gets that much longer to answer", late);
        w->hello_ms = w->hello_ms + late < now ? w->hello_ms + late : now;
        w->last_heard_ms = w->last_heard_ms + late < now ? w->last_heard_ms + late : now;
    }
    if (!w->welcomed) {
        if (now - w->hello_ms >= w->backoff_ms) {
            RF_INFO(COMP, "no answer from %s; reconnecting (next try in %" PRIu64 " s)", w->endpoint,
                    (w->backoff_ms * 2 > RF_BACKOFF_MAX_MS ? RF_BACKOFF_MAX_MS : w->backoff_ms * 2) / 1000);
            w->backoff_ms = w->backoff_ms * 2 > RF_BACKOFF_MAX_MS ? RF_BACKOFF_MAX_MS : w->backoff_ms * 2;
            s_connect(w);
        }
        return;
    }
    if (now - w->last_heard_ms > (uint64_t)w->heartbeat_ms * w->liveness) {
        RF_WARN(COMP, "coordinator silent for %" PRIu64 " ms; reconnecting", now - w->last_heard_ms);
        w->backoff_ms = RF_BACKOFF_MIN_MS;
        s_connect(w);
        return;
    }
    if (now - w->progress_ms >= RF_PROGRESS_MS) {
        w->progress_ms = now;
        for (uint32_t i = 0; i < w->nslots; i++) {
            w_slot_t *s = &w->slots[i];
            if (s->state != SLOT_RUNNING)
                continue;
            Reelfarm__Progress p = REELFARM__PROGRESS__INIT;
            Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
            uint64_t done = atomic_load(&s->frames_done);
            double secs = (double)(now - s->started_ms) / 1000.0;
            p.lease = s->a->lease;
            p.frames_done = done;
            p.fps = secs > 0 ? (float)((double)done / secs) : 0;
            env.body_case = REELFARM__ENVELOPE__BODY_PROGRESS;
            env.progress = &p;
            s_send(w, &env);
        }
    }
    if (now - w->last_sent_ms >= w->heartbeat_ms) {
        Reelfarm__Heartbeat hb = REELFARM__HEARTBEAT__INIT;
        uint64_t leases[RF_WORKER_MAX_SLOTS];
        size_t n = 0;
        for (uint32_t i = 0; i < w->nslots; i++)
            if (w->slots[i].state != SLOT_IDLE)
                leases[n++] = w->slots[i].a->lease;
        hb.n_leases = n;
        hb.leases = leases;
        char models[RF_WORKER_ADVERTISED][RF_SHA256_HEX_LEN + 1];
        char *model_ptrs[RF_WORKER_ADVERTISED];
        hb.n_models = s_models(w, models, model_ptrs);
        hb.models = model_ptrs;
        Reelfarm__Envelope env = REELFARM__ENVELOPE__INIT;
        env.body_case = REELFARM__ENVELOPE__BODY_HEARTBEAT;
        env.heartbeat = &hb;
        s_send(w, &env);
    }
}

/* ---- lifecycle -------------------------------------------------------------------------------- */

/* Encoder probes open every encoder once per process: they are slow (x265, SVT-AV1 start-up) and
 * their answer does not change, so embedded farms with many workers share one probe. */
static pthread_once_t s_probe_once = PTHREAD_ONCE_INIT;
static bool s_encoder_ok[16];
static rf_gpu_info_t s_gpu;

static void s_probe_encoders(void)
{
    int level = av_log_get_level();
    /* A failed probe is an answer, not an error: keep FFmpeg's and SVT-AV1's chatter out of the
     * log (SVT_LOG=1: errors only; set before any SVT encoder is opened). */
    av_log_set_level(AV_LOG_QUIET);
    setenv("SVT_LOG", "1", 0);
    for (size_t i = 0; rf_worker_encoders[i] && i < 16; i++) {
        rf_err_t err = {0};
        s_encoder_ok[i] = rf_encoder_probe(rf_worker_encoders[i], &err) == 0;
        if (!s_encoder_ok[i])
            RF_DEBUG(COMP, "encoder '%s' not available: %s", rf_worker_encoders[i], err.msg);
    }
    av_log_set_level(level);
    rf_gpu_probe(&s_gpu);
}

static void s_probe(rf_worker_t *w)
{
    pthread_once(&s_probe_once, s_probe_encoders);
    for (size_t i = 0; rf_worker_encoders[i] && i < 16; i++)
        if (s_encoder_ok[i])
            w->encoders[w->nencoders++] = strdup(rf_worker_encoders[i]);
    /* Only devices where our own kernel ran count. */
    for (int i = 0; i < s_gpu.ndevices; i++) {
        const rf_gpu_device_t *d = &s_gpu.devices[i];
        if (!d->kernel_ok) {
            RF_WARN(COMP, "GPU %d (%s) failed the kernel self-test; not offered", d->index, d->name);
            continue;
        }
        w->gpu_index[w->ngpus++] = d->index;
        if (!*w->gpu_model)
            snprintf(w->gpu_model, sizeof(w->gpu_model), "%s", d->name);
        if (d->free_bytes > w->vram_bytes)
            w->vram_bytes = d->free_bytes;
    }
    if (s_gpu.ndevices == 0)
        RF_INFO(COMP, "no GPU: %s", s_gpu.note);
    size_t n = 0;
    const rf_pass_def_t *defs = rf_pass_catalog(&n);
    for (size_t i = 0; i < n && w->npasses < 64; i++)
        if (rf_pass_builtin(defs[i].name))
            w->passes[w->npasses++] = strdup(defs[i].name);
    /* Plugins the process loaded at start (main.c), which the coordinator's matching needs to
     * see like built-ins: a job naming one goes only to workers advertising it. */
    for (size_t i = 0; i < rf_pass_plugin_count() && w->npasses < 64; i++)
        w->passes[w->npasses++] = strdup(rf_pass_plugin_name(i));
}

int rf_worker_new(const rf_worker_config_t *cfg, rf_worker_t **out, rf_err_t *err)
{
    rf_decode_mode_t decode = RF_DECODE_AUTO;
    if (cfg->decode && rf_decode_mode_parse(cfg->decode, &decode, err) != 0)
        return RF_ECONFIG;
    rf_worker_t *w = calloc(1, sizeof(*w));
    if (!w)
        return rf_err_set(err, RF_ENOMEM, "out of memory");
    snprintf(w->endpoint, sizeof(w->endpoint), "%s", cfg->coordinator);
    snprintf(w->blob_endpoint, sizeof(w->blob_endpoint), "%s", cfg->blobs);
    snprintf(w->cache_dir, sizeof(w->cache_dir), "%s", cfg->cache_dir);
    snprintf(w->shared_blobs, sizeof(w->shared_blobs), "%s", cfg->shared_blobs ? cfg->shared_blobs : "");
    if (cfg->name && *cfg->name) {
        snprintf(w->name, sizeof(w->name), "%s", cfg->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof(host) - 1);
        snprintf(w->name, sizeof(w->name), "%.40s-%ld", host, (long)getpid());
    }
    w->drain_grace_s = cfg->drain_grace_s;
    /* A random instance id tells the coordinator a restart (leases lost) from a reconnect. */
    uint8_t rnd[16];
    char hex[33];
    randombytes_buf(rnd, sizeof(rnd));
    rf_hex(rnd, sizeof(rnd), hex);
    snprintf(w->instance, sizeof(w->instance), "%.32s", hex);
    w->backoff_ms = RF_BACKOFF_MIN_MS;
    w->heartbeat_ms = 1000;
    w->liveness = 5;
    w->env.blob_endpoint = w->blob_endpoint;
    w->env.cache_dir = w->cache_dir;
    if (cfg->security_key && *cfg->security_key) {
        int rc = rf_zsec_client_load(&w->sec, cfg->security_key,
                                     cfg->coordinator_key ? cfg->coordinator_key : "", err);
        if (rc) {
            free(w);
            return rc;
        }
        w->env.sec = &w->sec;
        RF_INFO(COMP, "CURVE: public key %s, coordinator %s", w->sec.public_key, w->sec.server_key);
    }
    if (uv_loop_init(&w->loop) != 0) {
        rf_zsec_clear(&w->sec);
        free(w);
        return rf_err_set(err, RF_EIO, "cannot create the event loop");
    }
    w->zctx = zmq_ctx_new();
    if (!w->zctx) {
        uv_loop_close(&w->loop);
        free(w);
        return rf_err_set(err, RF_EIO, "cannot create a ZeroMQ context");
    }
    w->env.zctx = w->zctx;
    w->env.decode = (int)decode;
    uv_async_init(&w->loop, &w->wake, s_on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->tick);
    w->tick.data = w;
    s_probe(w);
    /* CPU nodes: one slot per 4 cores (an encoder uses several). GPU nodes: per GPU as many slots
     * as the cores feed encoders and its memory holds 4K budgets - encoding is the bottleneck,
     * DESIGN §6; the VRAM advertised is what is left with every slot busy. */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const uint64_t per_slot =
        rf_gpu_slot_vram(RF_GPU_BUDGET_WIDTH, RF_GPU_BUDGET_HEIGHT, RF_GPU_BUDGET_WIDTH,
                         RF_GPU_BUDGET_HEIGHT, RF_GPU_RING_DEFAULT, decode != RF_DECODE_CPU);
    uint64_t advertised = 0;
    int slots = rf_gpu_plan_slots(w->ngpus, cores, w->vram_bytes, per_slot, cfg->slots, &advertised);
    if (w->ngpus > 0)
        w->vram_bytes = advertised;
    w->nslots = (uint32_t)(slots > RF_WORKER_MAX_SLOTS ? RF_WORKER_MAX_SLOTS : slots);
    /* onnx passes on the CPU: the slots' matrix products share the cores */
    rf_nn_set_cpu_threads((int)(cores / (long)w->nslots));
    for (uint32_t i = 0; i < w->nslots; i++) {
        w->slots[i].w = w;
        w->slots[i].index = i;
    }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < w->nencoders && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, " %s", w->encoders[i]);
    RF_INFO(COMP, "'%s': %u slots, GPU: %s, encoders:%s", w->name, w->nslots,
            w->ngpus ? w->gpu_model : "none", w->nencoders ? list : " none");
    if (w->ngpus > 0)
        RF_INFO(COMP, "'%s': %d GPU(s), %" PRIu64 " MiB reserved per slot, %" PRIu64
                " MiB VRAM advertised, decode %s",
                w->name, w->ngpus, per_slot >> 20, w->vram_bytes >> 20, rf_decode_mode_name(decode));
    *out = w;
    return 0;
}

int rf_worker_set_test_fault(rf_worker_t *w, const char *spec, rf_err_t *err)
{
    rf_slot_fault_t f;
    int rc = rf_slot_fault_parse(spec, &f, err);
    if (rc)
        return rc;
    w->fault = f;
    w->fault_chunks = 0;
    if (f.kind != RF_SLOT_FAULT_NONE)
        RF_WARN(COMP, "test fault '%s' is active: this worker misbehaves on purpose (%s)", f.spec,
                f.limit ? "for its first chunks only" : "on every chunk");
    return 0;
}

int rf_worker_run(rf_worker_t *w)
{
    s_connect(w);
    uv_timer_start(&w->tick, s_on_tick, RF_TICK_MS, RF_TICK_MS);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return 0;
}

void rf_worker_stop(rf_worker_t *w, bool drain)
{
    int want = drain ? 1 : 2;
    int cur = atomic_load(&w->stop_request);
    while (cur < want && !atomic_compare_exchange_weak(&w->stop_request, &cur, want))
        ;
    uv_async_send(&w->wake);
}

void rf_worker_destroy(rf_worker_t **wp)
{
    if (!wp || !*wp)
        return;
    rf_worker_t *w = *wp;
    for (uint32_t i = 0; i < w->nslots; i++) {
        w_slot_t *s = &w->slots[i];
        if (s->state == SLOT_RUNNING) {
            atomic_store(&s->cancel, 1);
            pthread_join(s->thread, NULL);
        }
        rf_assignment_destroy(&s->a);
    }
    if (!uv_is_closing((uv_handle_t *)&w->tick)) {
        rf_zsock_close(w->sock);
        w->sock = NULL;
        uv_close((uv_handle_t *)&w->tick, s_close_cb);
        uv_close((uv_handle_t *)&w->wake, s_close_cb);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    zmq_ctx_term(w->zctx);
    rf_zsec_clear(&w->sec);
    for (size_t i = 0; i < w->nencoders; i++)
        free(w->encoders[i]);
    for (size_t i = 0; i < w->npasses; i++)
        free(w->passes[i]);
    free(w);
    *wp = NULL;
}
