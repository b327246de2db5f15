/*
 * Normal operation: requests and batches at the primary, PREPARE /
 * PREPARE_OK / COMMIT / ROLLBACK, execution in the host and application of
 * committed ops (vr.h describes the protocol; internal.h the invariants).
 */
#include <assert.h>
#include <stdlib.h>

#include "replication/internal.h"

static size_t batch_bytes_max(const struct evr_vr *r)
{
    return r->cfg.body_max / (2 * r->cfg.depth_max);
}

/* ------------------------------------------------------------ queue */

int vr_queue_init(struct evr_vr *r)
{
    r->queue_cap = r->cfg.queue_max / r->cfg.batch_size_max + 2;
    r->queue = calloc(r->queue_cap, sizeof *r->queue);
    return r->queue != NULL ? 0 : EVR_ENOMEM;
}

void vr_queue_free(struct evr_vr *r)
{
    for (uint32_t i = 0; r->queue != NULL && i < r->queue_cap; i++) {
        evr_buf_free(&r->queue[i].reqs);
    }
    free(r->queue);
    r->queue = NULL;
}

static struct vr_queued *queue_at(struct evr_vr *r, uint32_t i)
{
    return &r->queue[(r->queue_head + i) % r->queue_cap];
}

/* The batch a request of len bytes joins; NULL when the queue is full. */
static struct vr_queued *queue_slot(struct evr_vr *r, uint32_t len)
{
    if (r->queued_reqs >= r->cfg.queue_max) {
        return NULL;
    }
    if (r->queue_len > 0) {
        struct vr_queued *q = queue_at(r, r->queue_len - 1);
        if (q->n < r->cfg.batch_size_max &&
            q->reqs.len + 20 + len + 20 <= batch_bytes_max(r)) {
            return q;
        }
    }
    if (r->queue_len == r->queue_cap) {
        return NULL;
    }
    struct vr_queued *q = queue_at(r, r->queue_len++);
    if (q->reqs.data == NULL) {
        evr_buf_init(&q->reqs, batch_bytes_max(r));
    }
    evr_buf_reset(&q->reqs);
    q->n = 0;
    q->first_ms = r->now_ms;
    return q;
}

void vr_drop_queue(struct evr_vr *r)
{
    r->queue_len = 0;
    r->queued_reqs = 0;
}

/* ------------------------------------------------------------ replies */

static void send_reply(struct evr_vr *r, uint64_t client, uint64_t request_no,
                       uint64_t op, int32_t status, const void *body,
                       uint32_t len)
{
    evr_buf_reset(&r->out);
    struct evr_frame_hdr h = {
        .type = EVR_MSG_REPLY,
        .cluster = r->cfg.cluster,
        .sender = r->cfg.self,
        .view = r->view,
    };
    int rc;
    size_t start = evr_frame_begin(&r->out, &h, &rc);
    if (rc == 0) {
        uint8_t x[28];
        evr_store_u64(x, client);
        evr_store_u64(x + 8, request_no);
        evr_store_u64(x + 16, op);
        evr_store_u32(x + 24, (uint32_t)status);
        rc = evr_buf_put(&r->out, x, sizeof x);
    }
    if (rc == 0) {
        rc = evr_msg_put_bytes32(&r->out, body, len);
    }
    if (rc == 0) {
        rc = evr_frame_end(&r->out, start);
    }
    if (rc != 0) {
        vr_log(r, 1, "reply to client %llu not sent: %s",
               (unsigned long long)client, evr_strerror(rc));
        return;
    }
    r->stats.replies++;
    r->io.reply(r->io.data, client, r->out.data + start, r->out.len - start);
}

void vr_on_request(struct evr_vr *r, const struct evr_msg *m)
{
    uint64_t client = m->u.request.client;
    uint64_t no = m->u.request.request_no;
    if (r->status != EVR_VR_NORMAL || !vr_is_primary(r) || client == 0 ||
        no == 0) {
        r->stats.requests_dropped++;
        return;
    }
    struct vr_client *c = vr_client_admit(r, client);
    if (c == NULL) {
        r->stats.requests_dropped++; /* clients_max clients in flight */
        return;
    }
    if (no == c->request_no) {
        send_reply(r, client, no, c->op, c->status, c->reply.data,
                   (uint32_t)c->reply.len);
        return;
    }
    struct vr_queued *q = NULL;
    if (no > c->pending_no) {
        q = queue_slot(r, m->u.request.len);
    }
    if (q == NULL ||
        evr_msg_put_req(&q->reqs, client, no, m->u.request.data,
                        m->u.request.len) != 0) {
        r->stats.requests_dropped++; /* stale, in flight, or queue full */
        return;
    }
    q->n++;
    r->queued_reqs++;
    c->pending_no = no;
    r->stats.requests++;
    if (q->n == r->cfg.batch_size_max) {
        vr_primary_tick(r);
    }
}

/* ------------------------------------------------------------ prepare */

static int put_prepare(struct evr_vr *r, const struct vr_entry *e,
                       size_t *start)
{
    int rc;
    *start = vr_begin(r, EVR_MSG_PREPARE, &rc);
    uint8_t x[21];
    evr_store_u64(x, e->op);
    evr_store_u32(x + 8, e->attempt);
    x[12] = e->sequential ? 1 : 0;
    evr_store_u64(x + 13, r->commit);
    if (rc == 0) {
        rc = evr_buf_put(&r->out, x, sizeof x);
    }
    return rc != 0 ? rc : evr_buf_put(&r->out, e->batch.data, e->batch.len);
}

void vr_reset_votes(struct evr_vr *r, struct vr_entry *e, uint32_t attempt)
{
    evr_votes_init(&e->votes, r->cfg.replicas);
    e->attempt = attempt;
    e->attempt_ms = r->now_ms;
}

static void own_vote(struct evr_vr *r, struct vr_entry *e)
{
    evr_h128 zero = {0, 0};
    evr_h128 t = r->cfg.mode == EVR_VR_EVE ? e->token : zero;
    if (evr_votes_add(&e->votes, r->cfg.self, t) != 0) {
        vr_log(r, 1, "op %llu: own vote changed within attempt %u",
               (unsigned long long)e->op, e->attempt);
    }
}

static void prepare(struct evr_vr *r, struct vr_queued *q, struct evr_buf *b)
{
    int64_t ts = r->io.time_us(r->io.data);
    if (ts <= r->last_timestamp_us) {
        ts = r->last_timestamp_us + 1;
    }
    evr_buf_reset(b);
    int rc = evr_msg_put_batch_head(b, ts, r->io.random(r->io.data), q->n);
    if (rc == 0) {
        rc = evr_buf_put(b, q->reqs.data, q->reqs.len);
    }
    struct vr_entry *e =
        rc == 0 ? vr_append(r, r->op + 1, r->view, b->data, b->len) : NULL;
    if (e == NULL) {
        vr_log(r, 0, "batch of %u requests dropped: log append failed", q->n);
        return;
    }
    r->last_timestamp_us = ts;
    vr_reset_votes(r, e, r->attempts);
    e->sent_ms = r->now_ms;
    r->stats.batches_prepared++;
    size_t start;
    rc = put_prepare(r, e, &start);
    vr_send_all(r, start, rc);
    if (r->cfg.mode == EVR_VR_AGREE_EXECUTE) {
        own_vote(r, e);
    }
}

/* Cuts queued batches into the log while the pipeline has room. */
static void cut_batches(struct evr_vr *r)
{
    if (r->draining) {
        return;
    }
    struct evr_buf b;
    evr_buf_init(&b, batch_bytes_max(r) + 64);
    while (r->queue_len > 0) {
        struct vr_queued *q = queue_at(r, 0);
        bool ready = q->n == r->cfg.batch_size_max || r->queue_len > 1 ||
                     r->now_ms - q->first_ms >= r->cfg.batch_delay_ms;
        if (!ready || r->op - r->commit >= r->cfg.depth_max ||
            !vr_log_room(r, r->op + 1)) {
            break;
        }
        prepare(r, q, &b);
        r->queued_reqs -= q->n;
        r->queue_head = (r->queue_head + 1) % r->queue_cap;
        r->queue_len--;
    }
    evr_buf_free(&b);
}

static void send_commit(struct evr_vr *r, uint64_t newly)
{
    uint64_t k = newly + 8;
    if (k > EVR_MSG_TOKENS_MAX) {
        k = EVR_MSG_TOKENS_MAX;
    }
    uint64_t from = r->commit >= k ? r->commit - k + 1 : 1;
    if (from < r->base) {
        from = r->base;
    }
    for (uint64_t op = r->commit; op >= from && op > 0; op--) {
        struct vr_entry *e = vr_entry(r, op);
        if (!e->ctoken_known) {
            from = op + 1;
            break;
        }
    }
    int rc;
    size_t start = vr_begin(r, EVR_MSG_COMMIT, &rc);
    uint32_t count = r->commit >= from ? (uint32_t)(r->commit - from + 1) : 0;
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->commit);
    }
    if (rc == 0) {
        rc = evr_buf_put_u32(&r->out, count);
    }
    for (uint64_t op = from; rc == 0 && op <= r->commit; op++) {
        struct vr_entry *e = vr_entry(r, op);
        rc = evr_buf_put_u64(&r->out, op);
        if (rc == 0) {
            rc = evr_msg_put_h128(&r->out, e->ctoken);
        }
        if (rc == 0) {
            rc = evr_buf_put_u32(&r->out, e->holders);
        }
    }
    vr_send_all(r, start, rc);
    r->commit_sent = r->commit;
    r->heartbeat_ms = r->now_ms;
}

static void order_rollback(struct evr_vr *r, uint64_t op)
{
    if (vr_entry(r, op)->sequential) {
        /* Sequential execution did not settle it: votes are missing, not
         * diverging. Peers may know op committed (or be past it). */
        vr_request_state(r, r->cfg.self);
    }
    r->attempts++;
    for (uint64_t o = op; o <= r->op; o++) {
        struct vr_entry *e = vr_entry(r, o);
        vr_reset_votes(r, e, r->attempts);
        e->sequential = o == op;
    }
    r->stats.rollbacks++;
    vr_log(r, 2, "rollback of op %llu, attempt %u", (unsigned long long)op,
           r->attempts);
    int rc;
    size_t start = vr_begin(r, EVR_MSG_ROLLBACK, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, op);
    }
    if (rc == 0) {
        rc = evr_buf_put_u32(&r->out, r->attempts);
    }
    vr_send_all(r, start, rc);
    vr_undo_from(r, op);
}

void vr_decide(struct evr_vr *r)
{
    if (r->status != EVR_VR_NORMAL || !vr_is_primary(r)) {
        return;
    }
    uint64_t before = r->commit;
    while (r->commit < r->op && r->failure.code == 0) {
        struct vr_entry *e = vr_entry(r, r->commit + 1);
        bool timed_out = r->cfg.mode == EVR_VR_EVE &&
                         r->now_ms - e->attempt_ms >= r->cfg.verify_timeout_ms;
        evr_h128 t;
        uint32_t holders;
        enum evr_verdict v = evr_votes_decide(&e->votes, timed_out, &t,
                                              &holders);
        if (v == EVR_VERDICT_COMMIT) {
            vr_set_committed(r, e, t, holders);
            continue;
        }
        if (v == EVR_VERDICT_ROLLBACK) {
            order_rollback(r, e->op);
        }
        break;
    }
    if (r->commit > before) {
        send_commit(r, r->commit - before);
    }
}

void vr_primary_tick(struct evr_vr *r)
{
    cut_batches(r);
    for (uint64_t op = r->commit + 1; op <= r->op; op++) {
        struct vr_entry *e = vr_entry(r, op);
        if (r->now_ms - e->sent_ms < r->cfg.retry_ms) {
            continue;
        }
        e->sent_ms = r->now_ms;
        size_t start;
        int rc = put_prepare(r, e, &start);
        vr_send_mask(r, ~e->votes.voted, start, rc);
    }
    vr_decide(r);
    if (r->now_ms - r->heartbeat_ms >= r->cfg.heartbeat_ms) {
        send_commit(r, 0);
    }
}

/* ------------------------------------------------------------ backups */

/* Accepts a normal-case message of view v from its primary; joins a later
 * view first if it must. */
static bool from_primary(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status == EVR_VR_RECOVERING || m->h.view < r->view) {
        return false;
    }
    if (m->h.sender != vr_primary_of(r, m->h.view)) {
        return false;
    }
    if (m->h.view > r->view || r->status == EVR_VR_VIEW_CHANGE) {
        vr_join_view(r, m->h.view);
    }
    r->primary_ms = r->now_ms;
    return true;
}

/* PREPARE_OK(op, attempt, token) to the primary; none while our log is
 * not the view's yet (lnv_pending: see vr_join_view). */
static void send_vote(struct evr_vr *r, uint64_t op, uint32_t attempt,
                      evr_h128 token)
{
    evr_h128 zero = {0, 0};
    if (r->lnv_pending) {
        return;
    }
    int rc;
    size_t start = vr_begin(r, EVR_MSG_PREPARE_OK, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, op);
    }
    if (rc == 0) {
        rc = evr_buf_put_u32(&r->out, attempt);
    }
    if (rc == 0) {
        rc = evr_msg_put_h128(&r->out,
                              r->cfg.mode == EVR_VR_EVE ? token : zero);
    }
    vr_send_to(r, vr_primary_of(r, r->view), start, rc);
}

void vr_send_prepare_ok(struct evr_vr *r, const struct vr_entry *e)
{
    if (r->cfg.mode == EVR_VR_EVE &&
        (!e->executed || e->exec_attempt != e->attempt)) {
        return;
    }
    send_vote(r, e->op, e->attempt, e->token);
}

/* A newer attempt for op and everything after it (ROLLBACK, or a PREPARE
 * that says so). */
static void new_attempt(struct evr_vr *r, uint64_t op, uint32_t attempt,
                        bool sequential)
{
    struct vr_entry *e = vr_entry(r, op);
    if (e == NULL || e->attempt >= attempt || op <= r->applied) {
        return;
    }
    for (uint64_t o = op; o <= r->op; o++) {
        struct vr_entry *x = vr_entry(r, o);
        if (x->attempt < attempt) {
            x->attempt = attempt;
            x->sequential = false;
        }
    }
    e->sequential = sequential;
    vr_undo_from(r, op);
}

void vr_on_prepare(struct evr_vr *r, const struct evr_msg *m)
{
    if (!from_primary(r, m) || vr_is_primary(r)) {
        return;
    }
    uint64_t op = m->u.prepare.op;
    const struct evr_msg_batch *b = &m->u.prepare.batch;
    struct vr_entry *e = vr_entry(r, op);
    if (e != NULL && !vr_same_batch(e, b)) {
        if (op <= r->commit) {
            return;
        }
        vr_undo_from(r, op);
        vr_truncate_after(r, op - 1);
        e = NULL;
    }
    if (e == NULL && r->draining) {
        return; /* no new promise: let the ops in flight settle */
    }
    if (e == NULL && op == r->op + 1 && op > r->applied &&
        vr_log_room(r, op)) {
        e = vr_append(r, op, m->h.view, b->bytes, b->bytes_len);
        if (e != NULL) {
            e->attempt = m->u.prepare.attempt;
            e->sequential = m->u.prepare.sequential;
        }
    } else if (e == NULL && op > r->op + 1) {
        vr_request_state(r, m->h.sender);
    }
    if (e != NULL && op <= r->applied) {
        /* A new primary may not know that an op it prepares again was
         * committed (its view-change quorum had not heard): having applied
         * it, we vote with the committed token, the one we reached. */
        send_vote(r, op, m->u.prepare.attempt, e->ctoken);
        return;
    }
    if (e == NULL || op <= r->applied) {
        return;
    }
    new_attempt(r, op, m->u.prepare.attempt, m->u.prepare.sequential);
    if (e->attempt == m->u.prepare.attempt) {
        vr_send_prepare_ok(r, e);
    }
}

void vr_on_prepare_ok(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status != EVR_VR_NORMAL || !vr_is_primary(r) ||
        m->h.view != r->view) {
        return;
    }
    struct vr_entry *e = vr_entry(r, m->u.prepare_ok.op);
    if (e == NULL || e->op <= r->commit ||
        e->attempt != m->u.prepare_ok.attempt) {
        return;
    }
    if (evr_votes_add(&e->votes, m->h.sender, m->u.prepare_ok.token) != 0) {
        vr_log(r, 1, "op %llu: replica %u changed its vote in attempt %u",
               (unsigned long long)e->op, m->h.sender, e->attempt);
    }
    vr_decide(r);
}

/* agree-execute: ops up to commit are committed in order (no token). */
void vr_commit_agree(struct evr_vr *r, uint64_t commit)
{
    evr_h128 zero = {0, 0};
    for (uint64_t op = r->commit + 1; op <= commit && op <= r->op; op++) {
        struct vr_entry *e = vr_entry(r, op);
        if (!e->committed) {
            vr_set_committed(r, e, zero, 0);
        }
    }
}

void vr_on_commit(struct evr_vr *r, const struct evr_msg *m)
{
    if (!from_primary(r, m) || vr_is_primary(r)) {
        return;
    }
    if (r->cfg.mode == EVR_VR_AGREE_EXECUTE) {
        vr_commit_agree(r, m->u.commit.commit);
    } else {
        struct evr_msg_iter it;
        struct evr_msg_token t;
        evr_msg_tokens_iter(m, &it);
        while (evr_msg_tokens_next(&it, &t) && r->failure.code == 0) {
            struct vr_entry *e = vr_entry(r, t.op);
            if (t.op > r->applied && e != NULL) {
                vr_set_committed(r, e, t.token, t.holders);
            }
        }
    }
    if (m->u.commit.commit > r->commit) {
        vr_request_state(r, m->h.sender);
    }
}

void vr_on_rollback(struct evr_vr *r, const struct evr_msg *m)
{
    if (!from_primary(r, m) || vr_is_primary(r)) {
        return;
    }
    new_attempt(r, m->u.rollback.op, m->u.rollback.attempt, true);
}

/* ------------------------------------------------------------ execution */

void vr_undo_from(struct evr_vr *r, uint64_t op)
{
    assert(op > r->applied);
    for (uint64_t o = op; o <= r->op; o++) {
        struct vr_entry *e = vr_entry(r, o);
        if (e != NULL) {
            e->executed = false;
        }
    }
    if (r->executing && r->exec_op >= op) {
        if (r->rollback_pending == 0 || op < r->rollback_pending) {
            r->rollback_pending = op;
        }
        return;
    }
    if (r->executed < op || r->failure.code != 0) {
        return;
    }
    struct evr_err err;
    int rc = r->host.rollback(r->host.data, op, &err);
    if (rc != 0) {
        vr_fail(r, &err, "rollback");
        return;
    }
    r->executed = op - 1;
    r->stats.rollbacks_done++;
}

static bool may_execute(const struct evr_vr *r, const struct vr_entry *e)
{
    if (r->executing || r->repair_op != 0 || r->st_active ||
        r->status != EVR_VR_NORMAL || e == NULL) {
        return false;
    }
    if (r->cfg.mode == EVR_VR_AGREE_EXECUTE) {
        return e->op <= r->commit;
    }
    return e->op - r->applied <= r->cfg.depth_max;
}

static void schedule(struct evr_vr *r)
{
    struct vr_entry *e = vr_entry(r, r->executed + 1);
    if (!may_execute(r, e)) {
        return;
    }
    struct evr_vr_batch b = {
        .op = e->op,
        .timestamp_us = e->timestamp_us,
        .seed = e->seed,
        .n = e->nreq,
        .req = e->req,
    };
    bool sequential = e->sequential || r->cfg.mode == EVR_VR_AGREE_EXECUTE;
    r->executing = true;
    r->exec_op = e->op;
    r->exec_attempt = e->attempt;
    struct evr_err err;
    if (r->host.execute(r->host.data, &b, sequential, &err) != 0) {
        r->executing = false;
        vr_fail(r, &err, "execute");
    }
}

static int store_responses(struct evr_vr *r, struct vr_entry *e,
                           const struct evr_vr_response *resp, uint32_t n)
{
    evr_buf_reset(&e->resp);
    evr_hasher_reset(r->hasher, 0);
    int rc = evr_buf_put_u32(&e->resp, n);
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        evr_response_digest_add(r->hasher, resp[i].status, resp[i].data,
                                resp[i].len);
        rc = evr_buf_put_u32(&e->resp, (uint32_t)resp[i].status);
        if (rc == 0) {
            rc = evr_msg_put_bytes32(&e->resp, resp[i].data, resp[i].len);
        }
    }
    e->resp_digest = evr_hasher_digest(r->hasher);
    return rc;
}

void evr_vr_executed(struct evr_vr *r, uint64_t op, evr_h128 state_root,
                     const struct evr_vr_response *resp, uint32_t n)
{
    assert(r->executing);
    assert(op == r->exec_op);
    r->executing = false;
    r->executed = op;
    if (r->failure.code != 0) {
        return;
    }
    r->stats.batches_executed++;
    if (r->rollback_pending != 0) {
        uint64_t from = r->rollback_pending;
        r->rollback_pending = 0;
        vr_undo_from(r, from);
        vr_progress(r);
        return;
    }
    struct vr_entry *e = vr_entry(r, op);
    assert(e != NULL);
    assert(n == e->nreq);
    if (store_responses(r, e, resp, n) != 0) {
        struct evr_err err;
        evr_err_set(&err, EVR_ENOMEM, "responses of op %llu",
                    (unsigned long long)op);
        vr_fail(r, &err, "execute");
        return;
    }
    e->root = state_root;
    e->token = evr_token(op, state_root, e->resp_digest);
    e->executed = true;
    e->exec_attempt = r->exec_attempt;
    if (r->status == EVR_VR_NORMAL && r->cfg.mode == EVR_VR_EVE) {
        if (!vr_is_primary(r)) {
            vr_send_prepare_ok(r, e);
        } else if (e->exec_attempt == e->attempt && e->op > r->commit) {
            own_vote(r, e);
            vr_decide(r);
        }
    }
    vr_progress(r);
    vr_check(r);
}

/* Records a committed op's replies; the primary sends them. */
static void note_replies(struct evr_vr *r, const struct vr_entry *e)
{
    struct evr_msg_responses rs;
    if (evr_msg_responses_parse(e->resp.data, e->resp.len, &rs, NULL) != 0 ||
        rs.n != e->nreq) {
        return;
    }
    bool primary = r->status == EVR_VR_NORMAL && vr_is_primary(r);
    struct evr_msg_iter it;
    evr_msg_resp_iter(&rs, &it);
    for (uint32_t i = 0; i < e->nreq; i++) {
        int32_t status;
        const uint8_t *body;
        uint32_t len;
        evr_msg_resp_next(&it, &status, &body, &len);
        const struct evr_vr_req *q = &e->req[i];
        if (q->client == 0 || status == EVR_ESTATE) {
            continue; /* a stale retry: its client has its answer */
        }
        struct vr_client *c = vr_client_get(r, q->client, true);
        if (q->request_no < c->request_no) {
            continue;
        }
        c->request_no = q->request_no;
        if (c->pending_no < q->request_no) {
            c->pending_no = q->request_no;
        }
        c->op = e->op;
        c->status = status;
        evr_buf_reset(&c->reply);
        evr_buf_put(&c->reply, body, len);
        if (primary) {
            send_reply(r, q->client, q->request_no, e->op, status, body, len);
        }
    }
}

static void apply_one(struct evr_vr *r, struct vr_entry *e)
{
    struct evr_err err;
    if (r->host.commit(r->host.data, e->op, &err) != 0) {
        vr_fail(r, &err, "commit");
        return;
    }
    r->applied = e->op;
    r->applied_root = e->root;
    r->applied_resp = e->resp_digest;
    r->stats.batches_applied++;
    note_replies(r, e);
    vr_trim(r);
}

/* Applies committed ops in order as far as their results allow. */
static void apply_committed(struct evr_vr *r)
{
    while (r->applied < r->commit && r->failure.code == 0) {
        struct vr_entry *e = vr_entry(r, r->applied + 1);
        if (e == NULL || !e->ctoken_known) {
            vr_request_state(r, vr_primary_of(r, r->view));
            return;
        }
        if (!e->executed || r->rollback_pending != 0) {
            return;
        }
        if (r->cfg.mode == EVR_VR_AGREE_EXECUTE) {
            e->ctoken = e->token;
        } else if (!evr_h128_eq(e->token, e->ctoken)) {
            if (!r->executing && r->repair_op == 0 && !r->st_active) {
                vr_start_repair(r, e->op);
            }
            return;
        }
        apply_one(r, e);
    }
}

void vr_progress(struct evr_vr *r)
{
    if (r->failure.code != 0) {
        return;
    }
    apply_committed(r);
    if (r->failure.code == 0) {
        schedule(r);
    }
}
