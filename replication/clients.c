/*
 * The core's client table: per client, the last committed request number and
 * reply (to answer a retry without a batch) and the highest request number
 * queued or in the log (to keep a retry out of a second batch). The
 * authoritative at-most-once table is the host's, inside the replicated
 * state (vr.h); this one is a cache of it and may forget: at clients_max
 * entries the least recently used one goes. A new request only pushes out
 * a client with nothing in flight (vr_client_admit): forgetting one whose
 * request is queued would let every retry of it into the queue again, and
 * with more clients than clients_max the queue then grew faster than
 * batches drained it (the simulator found this, seed 4616 of the run with
 * clean stops).
 *
 * Open addressing with linear probing over a power-of-two array of at least
 * twice clients_max slots; deletion by backward shift keeps probes short.
 */
#include <assert.h>
#include <stdlib.h>

#include "replication/internal.h"

static uint64_t slot_of(const struct evr_vr *r, uint64_t client)
{
    return evr_hash64(&client, sizeof client, 0) & (r->clients_cap - 1);
}

int vr_clients_init(struct evr_vr *r)
{
    uint64_t cap = 16;
    while (cap < 2ull * r->cfg.clients_max) {
        cap *= 2;
    }
    r->clients = calloc(cap, sizeof *r->clients);
    r->clients_cap = cap;
    return r->clients != NULL ? 0 : EVR_ENOMEM;
}

void vr_clients_free(struct evr_vr *r)
{
    for (uint64_t i = 0; r->clients != NULL && i < r->clients_cap; i++) {
        evr_buf_free(&r->clients[i].reply);
    }
    free(r->clients);
    r->clients = NULL;
}

static void remove_at(struct evr_vr *r, uint64_t i)
{
    uint64_t mask = r->clients_cap - 1;
    evr_buf_free(&r->clients[i].reply);
    memset(&r->clients[i], 0, sizeof r->clients[i]);
    for (uint64_t j = (i + 1) & mask; r->clients[j].client != 0;
         j = (j + 1) & mask) {
        uint64_t home = slot_of(r, r->clients[j].client);
        /* j's entry may move to i if i lies cyclically in [home, j) */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            r->clients[i] = r->clients[j];
            memset(&r->clients[j], 0, sizeof r->clients[j]);
            i = j;
        }
    }
    r->clients_len--;
}

/* Removes the least recently used entry (with idle_only, of those with
 * nothing in flight); false if there is none. */
static bool evict_oldest(struct evr_vr *r, bool idle_only)
{
    uint64_t oldest = UINT64_MAX, at = 0;
    for (uint64_t i = 0; i < r->clients_cap; i++) {
        const struct vr_client *c = &r->clients[i];
        if (c->client != 0 && c->used < oldest &&
            (!idle_only || c->pending_no <= c->request_no)) {
            oldest = c->used;
            at = i;
        }
    }
    if (oldest == UINT64_MAX) {
        return false;
    }
    remove_at(r, at);
    return true;
}

struct vr_client *vr_client_admit(struct evr_vr *r, uint64_t client)
{
    struct vr_client *c = vr_client_get(r, client, false);
    if (c != NULL) {
        return c;
    }
    if (r->clients_len >= r->cfg.clients_max && !evict_oldest(r, true)) {
        return NULL;
    }
    return vr_client_get(r, client, true);
}

struct vr_client *vr_client_get(struct evr_vr *r, uint64_t client,
                                bool create)
{
    assert(client != 0);
    uint64_t mask = r->clients_cap - 1;
    uint64_t i = slot_of(r, client);
    for (; r->clients[i].client != 0; i = (i + 1) & mask) {
        if (r->clients[i].client == client) {
            r->clients[i].used = ++r->clients_clock;
            return &r->clients[i];
        }
    }
    if (!create) {
        return NULL;
    }
    if (r->clients_len >= r->cfg.clients_max) {
        /* an idle client first; one in flight only when all are */
        bool evicted = evict_oldest(r, true) || evict_oldest(r, false);
        assert(evicted);
        (void)evicted;
        return vr_client_get(r, client, true);
    }
    struct vr_client *c = &r->clients[i];
    c->client = client;
    c->used = ++r->clients_clock;
    evr_buf_init(&c->reply, EVR_REQUEST_BYTES_MAX * 16ull);
    r->clients_len++;
    return c;
}

static void note(struct evr_vr *r, uint64_t client, uint64_t request_no)
{
    if (client == 0) {
        return;
    }
    struct vr_client *c = vr_client_get(r, client, true);
    if (c->pending_no < request_no) {
        c->pending_no = request_no;
    }
}

/* After a view change or a snapshot the requests in flight are those of
 * the uncommitted log and the queue, nothing else: a request that was in a
 * batch this replica skipped must be accepted again when retried (the
 * host's table answers it without executing it twice). */
void vr_clients_rebuild_pending(struct evr_vr *r)
{
    for (uint64_t i = 0; i < r->clients_cap; i++) {
        r->clients[i].pending_no = r->clients[i].request_no;
    }
    for (uint64_t op = r->commit + 1; op <= r->op; op++) {
        const struct vr_entry *e = vr_entry(r, op);
        for (uint32_t i = 0; e != NULL && i < e->nreq; i++) {
            note(r, e->req[i].client, e->req[i].request_no);
        }
    }
    for (uint32_t q = 0; q < r->queue_len; q++) {
        const struct vr_queued *b = &r->queue[(r->queue_head + q) %
                                               r->queue_cap];
        struct evr_msg_batch mb = {.n = b->n, .reqs = b->reqs.data,
                                   .reqs_len = b->reqs.len};
        struct evr_msg_iter it;
        struct evr_msg_req req;
        evr_msg_reqs_iter(&mb, &it);
        while (evr_msg_reqs_next(&it, &req)) {
            note(r, req.client, req.request_no);
        }
    }
}
