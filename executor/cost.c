/*
 * Claim order inside a sub-batch: longest expected first.
 *
 * Requests of one sub-batch do not conflict (by their hints), so the order
 * in which workers claim them changes nothing in the outcome, only how well
 * the threads are balanced: the sub-batch ends when its slowest worker does,
 * and a long request claimed last leaves the other workers idle. Claiming
 * the longest first (LPT scheduling) leaves the short ones to fill in.
 *
 * Expected time of a request = a moving average (weight 1/8) of the
 * measured times of earlier requests of the same kind (the application's
 * kind() name; kinds are told apart by the name's address, which the
 * application returns from a static table). A kind never seen counts as 0,
 * so it runs after the known ones. The averages are local to this replica
 * and never reach a digest. A batch's kinds are looked up once
 * (evr__cost_kinds, before it runs) for both the claim order and learning.
 *
 * Invariant: cost.n <= EVR_COST_KINDS_MAX; kinds beyond it count as 0.
 */
#include <stdlib.h>

#include "executor/internal.h"

#define NO_SLOT 0xff
_Static_assert(EVR_COST_KINDS_MAX < NO_SLOT, "slots fit a byte");

static int kind_slot(struct evr__cost *c, const char *kind, bool add)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->kind[i] == kind) {
            return (int)i;
        }
    }
    if (!add || c->n == EVR_COST_KINDS_MAX) {
        return -1;
    }
    c->kind[c->n] = kind;
    c->mean_ns[c->n] = 0;
    return (int)c->n++;
}

void evr__cost_kinds(struct evr_executor *ex, const struct evr_batch *b)
{
    struct evr__cost *c = &ex->cost;
    for (uint32_t i = 0; i < b->n; i++) {
        const struct evr_request *r = &b->req[i];
        int s = ex->app->ops->kind == NULL
                    ? -1
                    : kind_slot(c, ex->app->ops->kind(ex->app->impl, r->data,
                                                      r->len),
                                true);
        c->slot[i] = s < 0 ? NO_SLOT : (uint8_t)s;
    }
}

void evr__cost_learn(struct evr_executor *ex, const struct evr_batch *b)
{
    struct evr__cost *c = &ex->cost;
    for (uint32_t i = 0; i < b->n; i++) {
        uint8_t s = c->slot[i];
        if (s == NO_SLOT) {
            continue;
        }
        uint64_t ns = ex->resp[i].exec_ns;
        c->mean_ns[s] = c->mean_ns[s] == 0 ? ns : (c->mean_ns[s] * 7 + ns) / 8;
    }
}

struct keyed {
    uint64_t cost_ns;
    uint32_t pos; /* in the sub-batch: ties keep the plan's order */
    uint32_t idx;
};

static int by_cost_desc(const void *pa, const void *pb)
{
    const struct keyed *a = pa;
    const struct keyed *b = pb;
    if (a->cost_ns != b->cost_ns) {
        return a->cost_ns > b->cost_ns ? -1 : 1;
    }
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

void evr__cost_order(struct evr_executor *ex, uint32_t *items, uint32_t n)
{
    if (ex->app->ops->kind == NULL || n < 2) {
        return;
    }
    struct keyed *k = ex->cost.scratch;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t s = ex->cost.slot[items[i]];
        k[i] = (struct keyed){s == NO_SLOT ? 0 : ex->cost.mean_ns[s], i,
                              items[i]};
    }
    qsort(k, n, sizeof *k, by_cost_desc);
    for (uint32_t i = 0; i < n; i++) {
        items[i] = k[i].idx;
    }
}

size_t evr__cost_scratch_size(uint32_t n_max)
{
    return (size_t)n_max * sizeof(struct keyed);
}
