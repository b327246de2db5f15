/*
 * Catching up: repair of one op by a peer's delta (GET_DELTA / DELTA),
 * missing log entries and commit tokens (GET_STATE / NEW_STATE, VR §5.2),
 * and whole-state transfer in checksummed chunks (GET_SNAPSHOT /
 * SNAPSHOT_CHUNK) when no log reaches back far enough.
 */
#include <assert.h>

#include "replication/internal.h"

#define REPAIR_ROUNDS_MAX 3 /* rounds over the holders before a snapshot */

/* ------------------------------------------------------------ repair */

static uint32_t peers_mask(const struct evr_vr *r)
{
    return ((1u << r->cfg.replicas) - 1) & ~(1u << r->cfg.self);
}

static void ask_delta(struct evr_vr *r)
{
    struct vr_entry *e = vr_entry(r, r->repair_op);
    assert(e != NULL);
    uint32_t holders = e->holders & peers_mask(r);
    if (holders == 0) {
        holders = peers_mask(r);
    }
    uint32_t round = r->repair_tried >> 16;
    uint32_t left = holders & ~(r->repair_tried & 0xffff);
    if (left == 0) {
        round++;
        r->repair_tried = round << 16;
        left = holders;
        if (round >= REPAIR_ROUNDS_MAX) {
            uint32_t source = (uint32_t)__builtin_ctz(holders);
            r->repair_op = 0;
            vr_start_snapshot(r, source);
            return;
        }
    }
    uint32_t to = (uint32_t)__builtin_ctz(left);
    r->repair_tried |= 1u << to;
    r->repair_ms = r->now_ms;
    int rc;
    size_t start = vr_begin(r, EVR_MSG_GET_DELTA, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, e->op);
    }
    if (rc == 0) {
        rc = evr_msg_put_h128(&r->out, e->ctoken);
    }
    vr_send_to(r, to, start, rc);
}

void vr_start_repair(struct evr_vr *r, uint64_t op)
{
    assert(!r->executing);
    vr_log(r, 2, "op %llu diverged from its committed token: repairing",
           (unsigned long long)op);
    vr_undo_from(r, op);
    r->repair_op = op;
    r->repair_tried = 0;
    ask_delta(r);
}

/* Our result for op has token t: it is op's committed token, or the token
 * we reported for the current execution. */
static bool holds(struct evr_vr *r, uint64_t op, evr_h128 t)
{
    struct vr_entry *e = vr_entry(r, op);
    if (e == NULL) {
        return false;
    }
    if (op <= r->applied) {
        return e->ctoken_known && evr_h128_eq(e->ctoken, t);
    }
    return op <= r->executed && e->executed && r->rollback_pending == 0 &&
           evr_h128_eq(e->token, t);
}

void vr_on_get_delta(struct evr_vr *r, const struct evr_msg *m)
{
    uint64_t op = m->u.get_delta.op;
    struct evr_buf delta;
    evr_buf_init(&delta, r->cfg.body_max / 2);
    bool ok = holds(r, op, m->u.get_delta.token);
    if (ok) {
        struct evr_err err;
        int rc = r->host.delta_export(r->host.data, op, &delta, &err);
        if (rc != 0 && rc != EVR_ENOENT && rc != EVR_ELIMIT) {
            vr_fail(r, &err, "delta export");
        }
        ok = rc == 0;
    }
    int rc;
    size_t start = vr_begin(r, EVR_MSG_DELTA, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, op);
    }
    if (rc == 0) {
        rc = evr_msg_put_h128(&r->out, m->u.get_delta.token);
    }
    if (rc == 0) {
        rc = evr_buf_put_u8(&r->out, ok ? 1 : 0);
    }
    if (rc == 0 && ok) {
        struct vr_entry *e = vr_entry(r, op);
        rc = evr_buf_put(&r->out, e->resp.data, e->resp.len);
        if (rc == 0) {
            rc = evr_msg_put_bytes32(&r->out, delta.data, (uint32_t)delta.len);
        }
    }
    evr_buf_free(&delta);
    vr_send_to(r, m->h.sender, start, rc);
}

static evr_h128 digest_responses(struct evr_vr *r,
                                 const struct evr_msg_responses *rs)
{
    struct evr_msg_iter it;
    evr_msg_resp_iter(rs, &it);
    evr_hasher_reset(r->hasher, 0);
    int32_t status;
    const uint8_t *body;
    uint32_t len;
    while (evr_msg_resp_next(&it, &status, &body, &len)) {
        evr_response_digest_add(r->hasher, status, body, len);
    }
    return evr_hasher_digest(r->hasher);
}

/* Applies a delta for the op under repair; false if it does not check. */
static bool apply_delta(struct evr_vr *r, struct vr_entry *e,
                        const struct evr_msg *m)
{
    const struct evr_msg_responses *rs = &m->u.delta.resp;
    if (rs->n != e->nreq) {
        return false;
    }
    struct evr_err err;
    evr_h128 root;
    int rc = r->host.delta_apply(r->host.data, e->op, m->u.delta.data,
                                 m->u.delta.len, &root, &err);
    if (rc == EVR_EMISMATCH || rc == EVR_ECORRUPT) {
        vr_log(r, 1, "delta of op %llu refused: %s",
               (unsigned long long)e->op, err.msg);
        return false;
    }
    if (rc != 0) {
        vr_fail(r, &err, "delta apply");
        return false;
    }
    evr_h128 rd = digest_responses(r, rs);
    if (!evr_h128_eq(evr_token(e->op, root, rd), e->ctoken)) {
        vr_log(r, 1, "delta of op %llu does not give its committed token",
               (unsigned long long)e->op);
        r->executed = e->op;
        vr_undo_from(r, e->op);
        return false;
    }
    evr_buf_reset(&e->resp);
    if (evr_buf_put(&e->resp, rs->p, rs->len) != 0) {
        return false;
    }
    e->root = root;
    e->resp_digest = rd;
    e->token = e->ctoken;
    e->executed = true;
    e->exec_attempt = e->attempt;
    r->executed = e->op;
    return true;
}

void vr_on_delta(struct evr_vr *r, const struct evr_msg *m)
{
    uint64_t op = m->u.delta.op;
    struct vr_entry *e = vr_entry(r, op);
    if (r->repair_op == 0 || op != r->repair_op || e == NULL ||
        !evr_h128_eq(m->u.delta.token, e->ctoken)) {
        return;
    }
    assert(!r->executing);
    assert(r->executed == op - 1);
    if (!m->u.delta.ok || !apply_delta(r, e, m)) {
        if (r->failure.code == 0) {
            ask_delta(r);
        }
        return;
    }
    r->repair_op = 0;
    r->stats.repairs++;
    vr_log(r, 2, "op %llu repaired from replica %u", (unsigned long long)op,
           m->h.sender);
}

/* ------------------------------------------------------------ log catch-up */

/* The first op we lack: a missing entry, or one not known committed with
 * its token (a peer further on tells us which of ours are committed). */
static uint64_t first_missing(struct evr_vr *r)
{
    for (uint64_t op = r->applied + 1; op <= r->op; op++) {
        struct vr_entry *e = vr_entry(r, op);
        if (e == NULL || !e->committed || !e->ctoken_known) {
            return op;
        }
    }
    return r->op + 1;
}

void vr_request_state(struct evr_vr *r, uint32_t to)
{
    if (r->status != EVR_VR_NORMAL || r->st_active ||
        r->now_ms - r->get_state_ms < r->cfg.retry_ms) {
        return;
    }
    r->get_state_ms = r->now_ms;
    if (to == r->cfg.self) {
        to = (uint32_t)((r->cfg.self + 1 + r->now_ms / r->cfg.retry_ms) %
                        r->cfg.replicas);
        if (to == r->cfg.self) {
            return;
        }
    }
    int rc;
    size_t start = vr_begin(r, EVR_MSG_GET_STATE, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, first_missing(r));
    }
    vr_send_to(r, to, start, rc);
}

/* Last op of a NEW_STATE that starts at from and fits half a message. */
static uint64_t state_until(struct evr_vr *r, uint64_t from)
{
    size_t bytes = 0;
    uint64_t op = from;
    for (; op <= r->op; op++) {
        bytes += vr_entry(r, op)->batch.len + 64;
        if (bytes > r->cfg.body_max / 2 && op > from) {
            return op - 1;
        }
    }
    return r->op;
}

void vr_on_get_state(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status != EVR_VR_NORMAL || m->h.view != r->view) {
        return;
    }
    uint64_t from = m->u.get_state.op_from;
    bool ok = from > r->op || vr_entry(r, from) != NULL;
    uint64_t to = ok && from <= r->op ? state_until(r, from) : 0;
    int rc;
    size_t start = vr_begin(r, EVR_MSG_NEW_STATE, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u8(&r->out, ok ? 1 : 0);
    }
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->op);
    }
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->commit);
    }
    if (rc == 0) {
        rc = to != 0 ? vr_put_log(r, from, to) : evr_buf_put_u32(&r->out, 0);
    }
    vr_send_to(r, m->h.sender, start, rc);
}

void vr_on_new_state(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status != EVR_VR_NORMAL || m->h.view != r->view) {
        return;
    }
    if (!m->u.new_state.ok) {
        vr_start_snapshot(r, m->h.sender);
        return;
    }
    int rc = vr_merge_log(r, &m->u.new_state.log);
    if (m->h.sender == vr_primary_of(r, r->view) &&
        r->op >= m->u.new_state.op) {
        vr_log_in_view(r); /* we hold the primary's whole log now */
    }
    if (rc != 0 && rc != EVR_ESTATE) {
        vr_log(r, 1, "log from replica %u not taken: %s", m->h.sender,
               evr_strerror(rc));
    }
    if (r->cfg.mode == EVR_VR_AGREE_EXECUTE) {
        vr_commit_agree(r, m->u.new_state.commit);
    }
    if (m->u.new_state.op > r->op ||
        (r->commit < m->u.new_state.commit && first_missing(r) <= r->op)) {
        r->get_state_ms = 0; /* more to fetch: ask again at once */
        vr_request_state(r, m->h.sender);
    }
    if (vr_is_primary(r)) {
        vr_decide(r);
    }
}

/* ------------------------------------------------------------ snapshots */

static void ask_chunk(struct evr_vr *r)
{
    r->st_ms = r->now_ms;
    int rc;
    size_t start = vr_begin(r, EVR_MSG_GET_SNAPSHOT, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->st_op);
    }
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->st_buf.len);
    }
    vr_send_to(r, r->st_source, start, rc);
}

void vr_start_snapshot(struct evr_vr *r, uint32_t source)
{
    if (r->st_active || source == r->cfg.self) {
        return;
    }
    vr_log(r, 2, "state transfer from replica %u", source);
    if (r->executed > r->applied || r->executing) {
        vr_undo_from(r, r->applied + 1);
    }
    r->repair_op = 0;
    r->st_active = true;
    r->st_source = source;
    r->st_tried = 0;
    r->st_op = 0;
    r->st_total = 0;
    evr_buf_reset(&r->st_buf);
    ask_chunk(r);
}

void vr_on_get_snapshot(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->applied == 0) {
        return; /* nothing committed to give */
    }
    /* A peer part-way through the cached snapshot keeps getting it even if
     * applied moved on: re-exporting would restart its transfer, and under
     * load it would never finish. */
    uint64_t want = m->u.get_snapshot.snap_op;
    if (r->sv_op != r->applied && (want == 0 || want != r->sv_op)) {
        struct evr_err err;
        evr_h128 root;
        evr_buf_reset(&r->sv_buf);
        if (r->host.snapshot_export(r->host.data, &r->sv_buf, &root,
                                    &err) != 0) {
            vr_log(r, 1, "snapshot export: %s", err.msg);
            return;
        }
        r->sv_op = r->applied;
        r->sv_root = root;
        r->sv_resp = r->applied_resp;
        r->sv_hash = evr_hash128(r->sv_buf.data, r->sv_buf.len, 0);
    }
    uint64_t offset = m->u.get_snapshot.snap_op == r->sv_op
                          ? m->u.get_snapshot.offset
                          : 0;
    if (offset > r->sv_buf.len) {
        offset = 0;
    }
    uint64_t len = r->sv_buf.len - offset;
    if (len > r->cfg.chunk_bytes) {
        len = r->cfg.chunk_bytes;
    }
    int rc;
    size_t start = vr_begin(r, EVR_MSG_SNAPSHOT_CHUNK, &rc);
    evr_h128 fields[4] = {evr_token(r->sv_op, r->sv_root, r->sv_resp),
                          r->sv_root, r->sv_resp, r->sv_hash};
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->sv_op);
    }
    for (int i = 0; rc == 0 && i < 4; i++) {
        rc = evr_msg_put_h128(&r->out, fields[i]);
    }
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->sv_buf.len);
    }
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, offset);
    }
    if (rc == 0) {
        rc = evr_msg_put_bytes32(&r->out, r->sv_buf.data + offset,
                                 (uint32_t)len);
    }
    vr_send_to(r, m->h.sender, start, rc);
}

/* Drops log entries at or below op and moves applied to op. */
static void adopt_snapshot(struct evr_vr *r, evr_h128 root)
{
    uint64_t op = r->st_op;
    while (r->base <= r->op && r->base <= op) {
        vr_entry_free(&r->ring[r->base & (r->cap - 1)]);
        r->base++;
    }
    if (r->op < op) {
        r->op = op;
        r->base = op + 1;
    }
    r->applied = r->executed = op;
    if (r->commit < op) {
        r->commit = op;
    }
    vr_advance_commit(r);
    r->applied_root = root;
    r->applied_resp = r->st_resp;
    r->st_active = false;
    r->stats.state_transfers++;
    vr_clients_rebuild_pending(r);
    vr_log(r, 2, "state transfer done at op %llu", (unsigned long long)op);
}

static void finish_snapshot(struct evr_vr *r)
{
    if (r->executing || r->rollback_pending != 0) {
        return; /* the tick tries again when the host is idle */
    }
    struct evr_err err;
    evr_h128 root;
    if (!evr_h128_eq(evr_hash128(r->st_buf.data, r->st_buf.len, 0),
                     r->st_hash) ||
        !evr_h128_eq(evr_token(r->st_op, r->st_root, r->st_resp),
                     r->st_token)) {
        vr_log(r, 1, "snapshot of op %llu does not check; starting over",
               (unsigned long long)r->st_op);
        r->st_op = 0;
        evr_buf_reset(&r->st_buf);
        ask_chunk(r);
        return;
    }
    int rc = r->host.snapshot_import(r->host.data, r->st_op, r->st_buf.data,
                                     r->st_buf.len, &root, &err);
    if (rc == 0 && !evr_h128_eq(root, r->st_root)) {
        rc = evr_err_set(&err, EVR_EMISMATCH, "snapshot root differs");
    }
    if (rc != 0) {
        vr_fail(r, &err, "snapshot import");
        return;
    }
    evr_buf_reset(&r->st_buf);
    adopt_snapshot(r, root);
}

void vr_on_snapshot_chunk(struct evr_vr *r, const struct evr_msg *m)
{
    if (!r->st_active || m->h.sender != r->st_source) {
        return;
    }
    const __typeof__(m->u.snapshot_chunk) *c = &m->u.snapshot_chunk;
    if (c->offset == 0 && c->snap_op != r->st_op) {
        if (c->snap_op <= r->applied) {
            r->st_active = false; /* the peer is no further than we are */
            return;
        }
        r->st_op = c->snap_op;
        r->st_total = c->total;
        r->st_token = c->token;
        r->st_root = c->root;
        r->st_resp = c->resp_digest;
        r->st_hash = c->hash;
        evr_buf_reset(&r->st_buf);
    }
    if (c->snap_op != r->st_op || c->offset != r->st_buf.len ||
        c->total != r->st_total) {
        return;
    }
    if (evr_buf_put(&r->st_buf, c->data, c->len) != 0) {
        struct evr_err err;
        evr_err_set(&err, EVR_ENOMEM, "snapshot of %llu bytes",
                    (unsigned long long)c->total);
        vr_fail(r, &err, "state transfer");
        return;
    }
    r->st_tried = 0;
    if (r->st_buf.len == r->st_total) {
        finish_snapshot(r);
    } else {
        ask_chunk(r);
    }
}

void vr_catchup_tick(struct evr_vr *r)
{
    if (r->lnv_pending) {
        vr_request_state(r, vr_primary_of(r, r->view));
    }
    if (r->repair_op != 0 && r->now_ms - r->repair_ms >= r->cfg.retry_ms) {
        ask_delta(r);
    }
    if (!r->st_active || r->now_ms - r->st_ms < r->cfg.retry_ms) {
        return;
    }
    if (r->st_total != 0 && r->st_buf.len == r->st_total) {
        finish_snapshot(r);
        return;
    }
    if (++r->st_tried % 4 == 0) {
        r->st_source = (r->st_source + 1) % r->cfg.replicas;
        if (r->st_source == r->cfg.self) {
            r->st_source = (r->st_source + 1) % r->cfg.replicas;
        }
        r->st_op = 0;
        evr_buf_reset(&r->st_buf);
    }
    ask_chunk(r);
}
