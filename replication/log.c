/*
 * The log: a ring of entries base..op (internal.h states its invariants).
 * Entries at or below applied are kept (log_retain of them) for peers that
 * fall behind; everything above applied is the replica's working set.
 */
#include <assert.h>
#include <stdlib.h>

#include "replication/internal.h"

struct vr_entry *vr_entry(struct evr_vr *r, uint64_t op)
{
    if (op < r->base || op > r->op || op == 0) {
        return NULL;
    }
    struct vr_entry *e = &r->ring[op & (r->cap - 1)];
    assert(e->op == op);
    return e;
}

void vr_entry_free(struct vr_entry *e)
{
    evr_buf_free(&e->batch);
    evr_buf_free(&e->resp);
    free(e->req);
    memset(e, 0, sizeof *e);
}

bool vr_log_room(const struct evr_vr *r, uint64_t op)
{
    uint64_t low = r->base > r->applied + 1 ? r->base : r->applied + 1;
    return op < low + r->cap;
}

/* Drops applied entries from the bottom until op fits. */
static void make_room(struct evr_vr *r, uint64_t op)
{
    while (r->base <= r->op && r->base <= r->applied && op >= r->base + r->cap) {
        vr_entry_free(&r->ring[r->base & (r->cap - 1)]);
        r->base++;
    }
}

static int parse_batch(struct vr_entry *e)
{
    struct evr_msg_batch b;
    if (evr_msg_batch_parse(e->batch.data, e->batch.len, &b, NULL) != 0) {
        return EVR_ECORRUPT;
    }
    e->timestamp_us = b.timestamp_us;
    e->seed = b.seed;
    e->nreq = b.n;
    e->req = calloc(b.n ? b.n : 1, sizeof *e->req);
    if (e->req == NULL) {
        return EVR_ENOMEM;
    }
    struct evr_msg_iter it;
    struct evr_msg_req q;
    evr_msg_reqs_iter(&b, &it);
    for (uint32_t i = 0; evr_msg_reqs_next(&it, &q); i++) {
        e->req[i] = (struct evr_vr_req){q.client, q.request_no, q.len, q.data};
    }
    return 0;
}

static struct vr_entry *fill(struct evr_vr *r, uint64_t op, uint64_t view,
                             const void *batch, size_t len)
{
    struct vr_entry *e = &r->ring[op & (r->cap - 1)];
    assert(e->op == 0);
    evr_buf_init(&e->batch, len + 1);
    evr_buf_init(&e->resp, SIZE_MAX);
    if (evr_buf_put(&e->batch, batch, len) != 0 || parse_batch(e) != 0) {
        vr_entry_free(e);
        return NULL;
    }
    e->op = op;
    e->view = view;
    return e;
}

struct vr_entry *vr_append(struct evr_vr *r, uint64_t op, uint64_t view,
                           const void *batch, size_t len)
{
    if (op != r->op + 1) {
        /* A gap: only over entries the host already applied. */
        assert(op > r->op + 1);
        assert(r->op <= r->applied);
        vr_truncate_after(r, r->applied < r->base ? r->base - 1 : r->applied);
        while (r->base <= r->op) {
            vr_entry_free(&r->ring[r->base & (r->cap - 1)]);
            r->base++;
        }
        r->base = op;
        r->op = op - 1;
    }
    make_room(r, op);
    if (op >= r->base + r->cap) {
        return NULL;
    }
    struct vr_entry *e = fill(r, op, view, batch, len);
    if (e == NULL) {
        return NULL;
    }
    if (r->base > r->op) {
        r->base = op;
    }
    r->op = op;
    return e;
}

void vr_truncate_after(struct evr_vr *r, uint64_t op)
{
    assert(op >= r->applied || r->op <= r->applied);
    while (r->op > op && r->op >= r->base) {
        vr_entry_free(&r->ring[r->op & (r->cap - 1)]);
        r->op--;
    }
    if (r->op > op) {
        r->op = op;
    }
    if (r->base > r->op + 1) {
        r->base = r->op + 1;
    }
}

void vr_trim(struct evr_vr *r)
{
    while (r->base <= r->applied && r->base <= r->op &&
           r->applied - r->base >= r->cfg.log_retain) {
        vr_entry_free(&r->ring[r->base & (r->cap - 1)]);
        r->base++;
    }
}

void vr_set_committed(struct evr_vr *r, struct vr_entry *e, evr_h128 token,
                      uint32_t holders)
{
    bool agree = r->cfg.mode == EVR_VR_AGREE_EXECUTE;
    if (agree && e->committed) {
        token = e->ctoken; /* order commits carry no token (vr.h) */
    }
    if (e->committed && e->ctoken_known && !evr_h128_eq(e->ctoken, token)) {
        struct evr_err err;
        evr_err_set(&err, EVR_ESTATE, "op %llu committed with two tokens",
                    (unsigned long long)e->op);
        vr_fail(r, &err, "safety");
        return;
    }
    e->committed = true;
    e->ctoken_known = true;
    e->ctoken = token;
    e->holders |= holders;
    vr_advance_commit(r);
}

void vr_advance_commit(struct evr_vr *r)
{
    while (r->commit < r->op) {
        struct vr_entry *n = vr_entry(r, r->commit + 1);
        if (n == NULL || !n->committed) {
            break;
        }
        r->commit++;
    }
}

bool vr_same_batch(const struct vr_entry *e, const struct evr_msg_batch *b)
{
    return e->batch.len == b->bytes_len &&
           memcmp(e->batch.data, b->bytes, b->bytes_len) == 0;
}

struct evr_msg_entry *vr_log_entries(const struct evr_msg_log *log)
{
    struct evr_msg_entry *all = calloc(log->count ? log->count : 1,
                                       sizeof *all);
    struct evr_msg_iter it;
    evr_msg_log_iter(log, &it);
    for (uint32_t n = 0; all != NULL && evr_msg_log_next(&it, &all[n]);) {
        n++;
    }
    return all;
}

/* Where logs sent to peers start: the sender's working set plus up to 64
 * committed entries with their tokens, fewer if they would not fit. */
uint64_t vr_log_from(const struct evr_vr *r)
{
    uint64_t from = r->commit > 64 ? r->commit - 63 : 1;
    if (r->applied + 1 < from) {
        from = r->applied + 1;
    }
    if (from < r->base) {
        from = r->base;
    }
    size_t bytes = 0;
    for (uint64_t op = r->op; op >= from && op >= r->base && op > 0; op--) {
        bytes += r->ring[op & (r->cap - 1)].batch.len + 64;
    }
    for (; bytes > r->cfg.body_max / 2 && from <= r->commit && from <= r->op;
         from++) {
        bytes -= r->ring[from & (r->cap - 1)].batch.len + 64;
    }
    return from;
}

int vr_put_log(struct evr_vr *r, uint64_t from, uint64_t to)
{
    uint32_t count = from <= to ? (uint32_t)(to - from + 1) : 0;
    int rc = evr_buf_put_u32(&r->out, count);
    for (uint64_t op = from; rc == 0 && op <= to; op++) {
        struct vr_entry *e = vr_entry(r, op);
        assert(e != NULL);
        bool committed = e->committed && e->ctoken_known;
        evr_h128 zero = {0, 0};
        rc = evr_msg_put_entry(&r->out, op, e->view, committed,
                               committed ? e->ctoken : zero, e->holders,
                               e->batch.data, e->batch.len);
    }
    return rc;
}

/* Takes one entry of a log from a peer of this view. */
static int merge_entry(struct evr_vr *r, const struct evr_msg_entry *m)
{
    struct vr_entry *e = vr_entry(r, m->op);
    if (e != NULL && !vr_same_batch(e, &m->batch)) {
        if (e->committed || m->op <= r->commit) {
            return 0; /* ours is committed: the peer's is stale */
        }
        vr_undo_from(r, m->op);
        vr_truncate_after(r, m->op - 1);
        e = NULL;
    }
    if (e == NULL) {
        if (m->op > r->op + 1 && r->op > r->applied) {
            return EVR_ESTATE; /* a gap above our working set */
        }
        if (m->op <= r->op) {
            return 0;
        }
        e = vr_append(r, m->op, m->view, m->batch.bytes, m->batch.bytes_len);
        if (e == NULL) {
            return EVR_ELIMIT;
        }
    }
    if (m->committed) {
        vr_set_committed(r, e, m->token, m->holders);
    }
    return 0;
}

/*
 * Entries below base and above applied fill the gap a log that did not reach
 * down left (view.c, settle_commit); they go in from base - 1 downwards, as
 * far as the ring has room. Returns 0 or EVR_ENOMEM.
 */
static int fill_gap(struct evr_vr *r, const struct evr_msg_log *log)
{
    if (r->base <= r->applied + 1 || log->count == 0) {
        return 0;
    }
    struct evr_msg_entry *all = vr_log_entries(log);
    if (all == NULL) {
        return EVR_ENOMEM;
    }
    uint32_t n = log->count;
    uint64_t first = all[0].op;
    while (r->base > r->applied + 1 && r->base - 1 >= first &&
           r->base - 1 - first < n && r->op - (r->base - 1) < r->cap) {
        const struct evr_msg_entry *m = &all[r->base - 1 - first];
        struct vr_entry *e = fill(r, m->op, m->view, m->batch.bytes,
                                  m->batch.bytes_len);
        if (e == NULL) {
            break;
        }
        r->base--;
        if (m->committed) {
            e->committed = true;
            e->ctoken_known = true;
            e->ctoken = m->token;
            e->holders = m->holders;
        }
    }
    free(all);
    return 0;
}

int vr_merge_log(struct evr_vr *r, const struct evr_msg_log *log)
{
    struct evr_msg_iter it;
    struct evr_msg_entry m;
    int rc = fill_gap(r, log);
    evr_msg_log_iter(log, &it);
    while (rc == 0 && evr_msg_log_next(&it, &m)) {
        if (m.op > r->applied) {
            rc = merge_entry(r, &m);
        }
    }
    return rc;
}
