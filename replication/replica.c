/* A replica's life cycle, frame dispatch, timers and sending (vr.h). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "replication/internal.h"

const char *evr_vr_mode_name(enum evr_vr_mode m)
{
    return m == EVR_VR_EVE ? "eve" : "agree-execute";
}

const char *evr_vr_status_name(enum evr_vr_status s)
{
    switch (s) {
    case EVR_VR_NORMAL:
        return "normal";
    case EVR_VR_VIEW_CHANGE:
        return "view-change";
    case EVR_VR_RECOVERING:
        return "recovering";
    }
    return "?";
}

void evr_vr_config_default(struct evr_vr_config *c, uint32_t replicas,
                           uint32_t self)
{
    *c = (struct evr_vr_config){
        .cluster = 0x657672,
        .replicas = replicas,
        .self = self,
        .mode = EVR_VR_EVE,
        .batch_size_max = 128,
        .batch_delay_ms = 1,
        .queue_max = 65536,
        .depth_max = 8,
        .log_retain = 256,
        .clients_max = 65536,
        .body_max = 64u << 20,
        .chunk_bytes = 1u << 20,
        .heartbeat_ms = 20,
        .view_timeout_ms = 200,
        .verify_timeout_ms = 100,
        .retry_ms = 50,
    };
}

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            return evr_err_set(err, EVR_EINVAL, __VA_ARGS__);                 \
        }                                                                     \
    } while (0)

int evr_vr_config_check(const struct evr_vr_config *c, struct evr_err *err)
{
    CHECK(c->replicas >= 1 && c->replicas <= EVR_REPLICAS_MAX &&
              c->replicas % 2 == 1,
          "replicas %u: must be odd and at most %d", c->replicas,
          EVR_REPLICAS_MAX);
    CHECK(c->self < c->replicas, "replica %u of %u", c->self, c->replicas);
    CHECK(c->batch_size_max >= 1 && c->batch_size_max <= 65536,
          "batch size %u: must be 1..65536", c->batch_size_max);
    CHECK(c->queue_max >= c->batch_size_max,
          "queue of %u is smaller than a batch", c->queue_max);
    CHECK(c->depth_max >= 1 && c->depth_max <= 1024,
          "pipeline depth %u: must be 1..1024", c->depth_max);
    CHECK(c->log_retain <= 1u << 20, "log retain %u: at most 2^20",
          c->log_retain);
    CHECK(c->clients_max >= 1 && c->clients_max <= 1u << 24,
          "clients %u: must be 1..2^24", c->clients_max);
    CHECK(c->body_max >= (size_t)4 * EVR_REQUEST_BYTES_MAX,
          "message limit %zu: at least 4 MiB", c->body_max);
    CHECK(c->body_max / (2 * c->depth_max) >= EVR_REQUEST_BYTES_MAX + 64,
          "message limit %zu too small for %u batches of 1 MiB requests in "
          "flight", c->body_max, c->depth_max);
    CHECK(c->chunk_bytes >= 64 && c->chunk_bytes <= c->body_max / 2,
          "snapshot chunk %zu: 64 bytes to half the message limit",
          c->chunk_bytes);
    CHECK(c->heartbeat_ms >= 1 && c->retry_ms >= 1,
          "heartbeat and retry must be at least 1 ms");
    CHECK(c->view_timeout_ms > c->heartbeat_ms,
          "view timeout %u ms must exceed the heartbeat %u ms",
          c->view_timeout_ms, c->heartbeat_ms);
    CHECK(c->verify_timeout_ms >= 1, "verify timeout must be at least 1 ms");
    return 0;
}

void vr_log(struct evr_vr *r, int level, const char *fmt, ...)
{
    if (r->io.log == NULL) {
        return;
    }
    char line[600];
    int n = snprintf(line, sizeof line, "replica %u view %llu: ", r->cfg.self,
                     (unsigned long long)r->view);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    r->io.log(r->io.data, level, line);
}

void vr_fail(struct evr_vr *r, const struct evr_err *err, const char *what)
{
    if (r->failure.code != 0) {
        return;
    }
    r->failure.code = err->code != 0 ? err->code : EVR_ESTATE;
    snprintf(r->failure.msg, sizeof r->failure.msg, "%.40s: %.400s", what,
             err->msg);
    vr_log(r, 0, "stopped: %s", r->failure.msg);
}

int evr_vr_failed(const struct evr_vr *r, struct evr_err *err)
{
    if (r->failure.code != 0 && err != NULL) {
        *err = r->failure;
    }
    return r->failure.code;
}

/* ------------------------------------------------------------ sending */

size_t vr_begin(struct evr_vr *r, enum evr_msg_type type, int *rc)
{
    evr_buf_reset(&r->out);
    struct evr_frame_hdr h = {
        .type = (uint16_t)type,
        .cluster = r->cfg.cluster,
        .sender = r->cfg.self,
        .view = r->view,
    };
    return evr_frame_begin(&r->out, &h, rc);
}

static bool finish(struct evr_vr *r, size_t start, int rc)
{
    if (rc == 0) {
        rc = evr_frame_end(&r->out, start);
    }
    if (rc != 0) {
        /* Only a body over the limit gets here: the sizes that feed it are
         * bounded by the configuration check, so this is a bug. */
        vr_log(r, 0, "frame not sent: %s", evr_strerror(rc));
        return false;
    }
    return true;
}

/* Finishes the frame once and sends it to every replica in the bit set
 * `to` but this one. */
void vr_send_mask(struct evr_vr *r, uint32_t to, size_t start, int rc)
{
    to &= ~(1u << r->cfg.self);
    if (to == 0 || !finish(r, start, rc)) {
        return;
    }
    for (uint32_t i = 0; i < r->cfg.replicas; i++) {
        if (to & (1u << i)) {
            r->stats.frames_out++;
            r->io.send(r->io.data, i, r->out.data + start,
                       r->out.len - start);
        }
    }
}

void vr_send_to(struct evr_vr *r, uint32_t to, size_t start, int rc)
{
    assert(to < r->cfg.replicas);
    vr_send_mask(r, 1u << to, start, rc);
}

void vr_send_all(struct evr_vr *r, size_t start, int rc)
{
    vr_send_mask(r, (1u << r->cfg.replicas) - 1, start, rc);
}

/* ------------------------------------------------------------ life cycle */

static int alloc_state(struct evr_vr *r)
{
    uint64_t need = (uint64_t)r->cfg.log_retain + 8ull * r->cfg.depth_max +
                    64;
    r->cap = 64;
    while (r->cap < need) {
        r->cap *= 2;
    }
    r->ring = calloc(r->cap, sizeof *r->ring);
    r->dvc = calloc(r->cfg.replicas, sizeof *r->dvc);
    r->rr = calloc(r->cfg.replicas, sizeof *r->rr);
    r->hasher = evr_hasher_new(0);
    evr_buf_init(&r->out, r->cfg.body_max + EVR_FRAME_HEADER_SIZE);
    evr_buf_init(&r->st_buf, SIZE_MAX);
    evr_buf_init(&r->sv_buf, SIZE_MAX);
    if (r->ring == NULL || r->dvc == NULL || r->rr == NULL ||
        r->hasher == NULL) {
        return EVR_ENOMEM;
    }
    int rc = vr_clients_init(r);
    return rc != 0 ? rc : vr_queue_init(r);
}

/* Back in the view of a quiet stop (vr.h). Its primary would hand out
 * attempt numbers that view already used, so it moves on instead. */
static void resume(struct evr_vr *r, uint64_t view)
{
    assert(r->op == r->applied);
    r->view = r->last_normal_view = view;
    vr_log(r, 2, "resuming in view %llu at op %llu", (unsigned long long)view,
           (unsigned long long)r->applied);
    if (vr_primary_of(r, view) == r->cfg.self) {
        vr_start_view_change(r, view + 1);
    }
}

int evr_vr_new(const struct evr_vr_config *cfg, const struct evr_vr_io *io,
               const struct evr_vr_host *host,
               const struct evr_vr_applied *applied, bool recovering,
               uint64_t now_ms, struct evr_vr **out, struct evr_err *err)
{
    *out = NULL;
    int rc = evr_vr_config_check(cfg, err);
    if (rc != 0) {
        return rc;
    }
    struct evr_vr *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "replica state");
    }
    r->cfg = *cfg;
    r->io = *io;
    r->host = *host;
    r->f = cfg->replicas / 2;
    r->now_ms = now_ms;
    if ((rc = alloc_state(r)) != 0) {
        evr_vr_free(r);
        return evr_err_set(err, rc, "replica state: %s", evr_strerror(rc));
    }
    r->op = r->commit = r->applied = r->executed = applied->op;
    r->base = applied->op + 1;
    r->applied_root = applied->root;
    r->applied_resp = applied->resp_digest;
    r->primary_ms = r->heartbeat_ms = now_ms;
    r->status = EVR_VR_NORMAL;
    assert(applied->resume || applied->view == 0);
    if (recovering) {
        vr_start_recovery(r);
    } else if (applied->resume) {
        resume(r, applied->view);
    }
    *out = r;
    return 0;
}

void evr_vr_free(struct evr_vr *r)
{
    if (r == NULL) {
        return;
    }
    for (uint64_t i = 0; r->ring != NULL && i < r->cap; i++) {
        vr_entry_free(&r->ring[i]);
    }
    free(r->ring);
    if (r->dvc != NULL) {
        vr_dvc_clear(r->dvc, r->cfg.replicas);
    }
    if (r->rr != NULL) {
        vr_dvc_clear(r->rr, r->cfg.replicas);
    }
    free(r->dvc);
    free(r->rr);
    vr_queue_free(r);
    vr_clients_free(r);
    evr_hasher_free(r->hasher);
    evr_buf_free(&r->out);
    evr_buf_free(&r->st_buf);
    evr_buf_free(&r->sv_buf);
    free(r);
}

/* ------------------------------------------------------------ events */

static void dispatch(struct evr_vr *r, const struct evr_msg *m,
                     const void *frame, size_t len)
{
    switch ((enum evr_msg_type)m->h.type) {
    case EVR_MSG_REQUEST:
        vr_on_request(r, m);
        break;
    case EVR_MSG_REPLY:
        break; /* replicas never take replies */
    case EVR_MSG_PREPARE:
        vr_on_prepare(r, m);
        break;
    case EVR_MSG_PREPARE_OK:
        vr_on_prepare_ok(r, m);
        break;
    case EVR_MSG_COMMIT:
        vr_on_commit(r, m);
        break;
    case EVR_MSG_ROLLBACK:
        vr_on_rollback(r, m);
        break;
    case EVR_MSG_GET_DELTA:
        vr_on_get_delta(r, m);
        break;
    case EVR_MSG_DELTA:
        vr_on_delta(r, m);
        break;
    case EVR_MSG_START_VIEW_CHANGE:
        vr_on_start_view_change(r, m);
        break;
    case EVR_MSG_DO_VIEW_CHANGE:
        vr_on_do_view_change(r, m, frame, len);
        break;
    case EVR_MSG_START_VIEW:
        vr_on_start_view(r, m);
        break;
    case EVR_MSG_RECOVERY:
        vr_on_recovery(r, m);
        break;
    case EVR_MSG_RECOVERY_RESPONSE:
        vr_on_recovery_response(r, m, frame, len);
        break;
    case EVR_MSG_GET_STATE:
        vr_on_get_state(r, m);
        break;
    case EVR_MSG_NEW_STATE:
        vr_on_new_state(r, m);
        break;
    case EVR_MSG_GET_SNAPSHOT:
        vr_on_get_snapshot(r, m);
        break;
    case EVR_MSG_SNAPSHOT_CHUNK:
        vr_on_snapshot_chunk(r, m);
        break;
    case EVR_MSG_STATUS:
    case EVR_MSG_STATUS_REPLY: /* the server's business (msg.h) */
    case EVR_MSG_TYPE_END:
        break;
    }
}

int evr_vr_receive(struct evr_vr *r, const void *frame, size_t len,
                   struct evr_err *err)
{
    if (r->failure.code != 0) {
        return evr_err_set(err, EVR_ESTATE, "replica stopped");
    }
    struct evr_msg m;
    int rc = evr_msg_decode(frame, len, r->cfg.cluster, r->cfg.body_max, &m,
                            err);
    bool from_client = m.h.sender == EVR_SENDER_CLIENT;
    if (rc == 0 && from_client != (m.h.type == EVR_MSG_REQUEST)) {
        rc = evr_err_set(err, EVR_ECORRUPT, "%s from sender %u",
                         evr_msg_type_name(m.h.type), m.h.sender);
    }
    if (rc == 0 && !from_client &&
        (m.h.sender >= r->cfg.replicas || m.h.sender == r->cfg.self)) {
        rc = evr_err_set(err, EVR_ECORRUPT, "%s from unknown replica %u",
                         evr_msg_type_name(m.h.type), m.h.sender);
    }
    if (rc != 0) {
        r->stats.frames_bad++;
        return rc;
    }
    r->stats.frames_in++;
    dispatch(r, &m, frame, len);
    vr_progress(r);
    vr_check(r);
    return 0;
}

static bool vr_quiet(const struct evr_vr *r)
{
    return r->status == EVR_VR_NORMAL && !r->lnv_pending && !r->executing &&
           !r->st_active && r->repair_op == 0 && r->op == r->applied &&
           r->executed == r->applied;
}

void evr_vr_tick(struct evr_vr *r, uint64_t now_ms)
{
    if (r->failure.code != 0) {
        return;
    }
    if (now_ms > r->now_ms) {
        r->now_ms = now_ms;
    }
    if (r->status == EVR_VR_NORMAL && vr_is_primary(r)) {
        vr_primary_tick(r);
    }
    vr_view_tick(r);
    vr_catchup_tick(r);
    vr_progress(r);
    if (r->draining && !vr_quiet(r)) {
        r->quiet_ms = r->now_ms;
    }
    vr_check(r);
}

/* ------------------------------------------------------------ inspection */

void vr_check(const struct evr_vr *r)
{
    if (r->failure.code != 0) {
        return;
    }
    assert(r->applied <= r->commit);
    assert(r->commit <= r->op);
    assert(r->applied <= r->executed);
    assert(r->executed <= r->op || r->rollback_pending != 0);
    assert(r->base <= r->op + 1);
    assert(r->op - r->base + 1 <= r->cap || r->base > r->op);
}

void evr_vr_info(const struct evr_vr *r, struct evr_vr_info *out)
{
    *out = (struct evr_vr_info){
        .view = r->view,
        .status = r->status,
        .primary = vr_is_primary(r) && r->status == EVR_VR_NORMAL,
        .op = r->op,
        .commit = r->commit,
        .applied = r->applied,
        .executed = r->executed,
        .applied_root = r->applied_root,
        .applied_resp = r->applied_resp,
        .applied_token = evr_token(r->applied, r->applied_root,
                                   r->applied_resp),
        .executing = r->executing,
        .quiet = vr_quiet(r),
        .drained = r->draining && vr_quiet(r) &&
                   (!vr_is_primary(r) ||
                    r->now_ms - r->quiet_ms > 2 * r->cfg.heartbeat_ms),
    };
}

void evr_vr_drain(struct evr_vr *r)
{
    if (!r->draining) {
        vr_log(r, 2, "draining at op %llu, applied %llu",
               (unsigned long long)r->op, (unsigned long long)r->applied);
    }
    r->draining = true;
    r->quiet_ms = r->now_ms;
}

void evr_vr_stats(const struct evr_vr *r, struct evr_vr_stats *out)
{
    *out = r->stats;
}

bool evr_vr_entry(const struct evr_vr *r, uint64_t op, const uint8_t **batch,
                  size_t *batch_len, bool *committed, evr_h128 *token)
{
    struct vr_entry *e = vr_entry((struct evr_vr *)r, op);
    if (e == NULL) {
        return false;
    }
    *batch = e->batch.data;
    *batch_len = e->batch.len;
    *committed = e->committed && e->ctoken_known;
    *token = e->ctoken;
    return true;
}
