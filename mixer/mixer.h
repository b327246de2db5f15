/*
 * mixer — turns a batch into ordered sub-batches of requests that do not
 * conflict, from each request's conflict set alone.
 *
 * A conflict set lists the tables a request reads and writes, optionally
 * narrowed to keys (64-bit, e.g. a hash of the key bytes: a collision only
 * adds a false conflict). Two requests conflict when one writes what the other
 * reads or writes: the same table, and the same key unless either entry covers
 * the whole table.
 *
 * Plan. Request i goes to sub-batch
 *
 *     level(i) = 1 + max { level(j) : j < i and j conflicts with i }   (or 0)
 *
 * so every pair of conflicting requests runs in batch order, in different
 * sub-batches. Running the sub-batches one after another is therefore
 * conflict-equivalent to running the batch sequentially in batch order:
 * when the conflict sets are right, parallel execution reaches exactly the
 * state and responses of sequential execution. No plan with that property
 * has fewer sub-batches (each request sits at the earliest level its
 * conflicts allow). Inside a sub-batch, requests are listed by index.
 *
 * The plan is a function of the conflict sets only, so every replica
 * computes the same one. A conflict set is a hint: a wrong one makes the
 * plan wrong, never makes the mixer fail. A set that overflows its entries,
 * or names a table id out of range, makes its request a barrier that
 * conflicts with every other request.
 */
#ifndef EVR_MIXER_H
#define EVR_MIXER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"

#define EVR_CSET_ENTRIES_MAX 32
#define EVR_MIXER_TABLES_MAX 64
#define EVR_BATCH_SIZE_MAX 65536

enum evr_access { EVR_READ = 1, EVR_WRITE = 2 };

struct evr_conflict {
    uint16_t table; /* application's table id, < EVR_MIXER_TABLES_MAX */
    uint8_t mode;   /* EVR_READ or EVR_WRITE */
    uint8_t keyed;  /* 0: the whole table */
    uint64_t key;
};

struct evr_cset {
    uint32_t n;
    bool overflow; /* more entries than fit: conflicts with everything */
    struct evr_conflict e[EVR_CSET_ENTRIES_MAX];
};

static inline void evr_cset_clear(struct evr_cset *cs)
{
    cs->n = 0;
    cs->overflow = false;
}

/* Adds an entry; on overflow marks the set (never fails). */
void evr_cset_add(struct evr_cset *cs, uint16_t table, enum evr_access mode,
                  bool keyed, uint64_t key);

static inline void evr_cset_read_table(struct evr_cset *cs, uint16_t t)
{
    evr_cset_add(cs, t, EVR_READ, false, 0);
}
static inline void evr_cset_write_table(struct evr_cset *cs, uint16_t t)
{
    evr_cset_add(cs, t, EVR_WRITE, false, 0);
}
static inline void evr_cset_read_key(struct evr_cset *cs, uint16_t t,
                                     uint64_t key)
{
    evr_cset_add(cs, t, EVR_READ, true, key);
}
static inline void evr_cset_write_key(struct evr_cset *cs, uint16_t t,
                                      uint64_t key)
{
    evr_cset_add(cs, t, EVR_WRITE, true, key);
}

/* True when the set writes anything (or overflowed). */
bool evr_cset_writes(const struct evr_cset *cs);

/* True when requests with sets a and b conflict (the rule above). */
bool evr_cset_conflict(const struct evr_cset *a, const struct evr_cset *b);

/*
 * A plan: sub-batch s holds order[sub_start[s] .. sub_start[s+1]-1], request
 * indices ascending. Owned by the mixer that made it; valid until its next
 * plan or its free.
 */
struct evr_plan {
    uint32_t n;
    uint32_t nsub;
    const uint32_t *order;
    const uint32_t *sub_start; /* nsub + 1 entries */
};

static inline double evr_plan_mean_width(const struct evr_plan *p)
{
    return p->nsub ? (double)p->n / p->nsub : 0.0;
}

struct evr_mixer;

/* Scratch for batches of up to batch_size_max requests. */
int evr_mixer_new(uint32_t batch_size_max, struct evr_mixer **out,
                  struct evr_err *err);
void evr_mixer_free(struct evr_mixer *m);

int evr_mixer_plan(struct evr_mixer *m, const struct evr_cset *csets,
                   uint32_t n, struct evr_plan *plan, struct evr_err *err);

#endif
