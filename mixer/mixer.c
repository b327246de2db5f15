/*
 * The mixer's level assignment (rule in mixer.h), in one pass over the batch.
 *
 * Per table it keeps the highest level so far of: any write, any read,
 * whole-table writes, whole-table reads; per (table, key) the highest level
 * of keyed writes and keyed reads. A new entry's lower bound follows:
 *
 *   keyed read k     > max(whole writes, writes of k)
 *   keyed write k    > max(whole writes, whole reads, writes of k, reads of k)
 *   whole read       > max(any write)
 *   whole write      > max(any write, any read)
 *
 * All levels start at -1. Work is O(entries) per batch; the key table is
 * cleared in O(keys used).
 */
#include "mixer/mixer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void evr_cset_add(struct evr_cset *cs, uint16_t table, enum evr_access mode,
                  bool keyed, uint64_t key)
{
    if (cs->n == EVR_CSET_ENTRIES_MAX) {
        cs->overflow = true;
        return;
    }
    struct evr_conflict *e = &cs->e[cs->n++];
    e->table = table;
    e->mode = (uint8_t)mode;
    e->keyed = keyed ? 1 : 0;
    e->key = keyed ? key : 0;
}

bool evr_cset_writes(const struct evr_cset *cs)
{
    if (cs->overflow) {
        return true;
    }
    for (uint32_t i = 0; i < cs->n; i++) {
        if (cs->e[i].mode == EVR_WRITE) {
            return true;
        }
    }
    return false;
}

static bool entries_conflict(const struct evr_conflict *x,
                             const struct evr_conflict *y)
{
    if (x->table != y->table) {
        return false;
    }
    if (x->mode != EVR_WRITE && y->mode != EVR_WRITE) {
        return false;
    }
    return !x->keyed || !y->keyed || x->key == y->key;
}

static bool set_is_barrier(const struct evr_cset *cs)
{
    if (cs->overflow || cs->n > EVR_CSET_ENTRIES_MAX) {
        return true;
    }
    for (uint32_t i = 0; i < cs->n; i++) {
        if (cs->e[i].table >= EVR_MIXER_TABLES_MAX ||
            (cs->e[i].mode != EVR_READ && cs->e[i].mode != EVR_WRITE)) {
            return true;
        }
    }
    return false;
}

bool evr_cset_conflict(const struct evr_cset *a, const struct evr_cset *b)
{
    if (set_is_barrier(a) || set_is_barrier(b)) {
        return true;
    }
    for (uint32_t i = 0; i < a->n; i++) {
        for (uint32_t j = 0; j < b->n; j++) {
            if (entries_conflict(&a->e[i], &b->e[j])) {
                return true;
            }
        }
    }
    return false;
}

struct table_levels {
    int32_t w_all, r_all, w_whole, r_whole;
};

struct key_slot {
    uint64_t key;
    uint16_t table;
    bool used;
    int32_t w, r;
};

struct evr_mixer {
    uint32_t n_max;
    struct table_levels tables[EVR_MIXER_TABLES_MAX];
    struct key_slot *keys; /* open addressing, keys_mask + 1 slots */
    uint32_t keys_mask;
    uint32_t *used;        /* slots in use, for clearing */
    uint32_t nused;
    int32_t *level;        /* per request */
    uint32_t *order;
    uint32_t *sub_start;
    uint32_t *count;       /* per level */
};

int evr_mixer_new(uint32_t batch_size_max, struct evr_mixer **out,
                  struct evr_err *err)
{
    *out = NULL;
    if (batch_size_max == 0 || batch_size_max > EVR_BATCH_SIZE_MAX) {
        return evr_err_set(err, EVR_EINVAL,
                           "batch size limit must be 1..%d, not %u",
                           EVR_BATCH_SIZE_MAX, batch_size_max);
    }
    struct evr_mixer *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    m->n_max = batch_size_max;
    uint32_t cap = 1024; /* grows while planning, kept under half full */
    m->keys_mask = cap - 1;
    m->keys = calloc(cap, sizeof *m->keys);
    m->used = calloc(cap, sizeof *m->used);
    m->level = calloc(batch_size_max, sizeof *m->level);
    m->order = calloc(batch_size_max, sizeof *m->order);
    m->sub_start = calloc(batch_size_max + 2, sizeof *m->sub_start);
    m->count = calloc(batch_size_max + 1, sizeof *m->count);
    if (!m->keys || !m->used || !m->level || !m->order || !m->sub_start ||
        !m->count) {
        evr_mixer_free(m);
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    *out = m;
    return 0;
}

void evr_mixer_free(struct evr_mixer *m)
{
    if (m == NULL) {
        return;
    }
    free(m->keys);
    free(m->used);
    free(m->level);
    free(m->order);
    free(m->sub_start);
    free(m->count);
    free(m);
}

static void reset(struct evr_mixer *m)
{
    for (int t = 0; t < EVR_MIXER_TABLES_MAX; t++) {
        m->tables[t] = (struct table_levels){-1, -1, -1, -1};
    }
    for (uint32_t i = 0; i < m->nused; i++) {
        m->keys[m->used[i]].used = false;
    }
    m->nused = 0;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb93c185ec4cbULL;
    return x ^ (x >> 33);
}

static uint32_t home_slot(const struct evr_mixer *m, uint16_t table,
                          uint64_t key)
{
    return (uint32_t)mix64(key ^ ((uint64_t)table << 48)) & m->keys_mask;
}

/* Doubles the key table. On ENOMEM keeps the old one: it is then allowed
 * to fill beyond half, which only makes probing slower. */
static void grow_keys(struct evr_mixer *m)
{
    uint32_t cap = 2 * (m->keys_mask + 1);
    struct key_slot *keys = calloc(cap, sizeof *keys);
    uint32_t *used = calloc(cap, sizeof *used);
    if (keys == NULL || used == NULL) {
        free(keys);
        free(used);
        return;
    }
    struct key_slot *old = m->keys;
    uint32_t *old_used = m->used;
    m->keys = keys;
    m->used = used;
    m->keys_mask = cap - 1;
    uint32_t n = m->nused;
    m->nused = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct key_slot *k = &old[old_used[i]];
        uint32_t s = home_slot(m, k->table, k->key);
        while (m->keys[s].used) {
            s = (s + 1) & m->keys_mask;
        }
        m->keys[s] = *k;
        m->used[m->nused++] = s;
    }
    free(old);
    free(old_used);
}

static struct key_slot *key_slot(struct evr_mixer *m, uint16_t table,
                                 uint64_t key)
{
    uint32_t s = home_slot(m, table, key);
    while (m->keys[s].used) {
        if (m->keys[s].key == key && m->keys[s].table == table) {
            return &m->keys[s];
        }
        s = (s + 1) & m->keys_mask;
    }
    if (2 * (m->nused + 1) > m->keys_mask + 1) {
        uint32_t before = m->keys_mask;
        grow_keys(m);
        if (m->keys_mask != before) {
            return key_slot(m, table, key);
        }
        if (m->nused + 1 >= m->keys_mask) {
            return NULL; /* full and out of memory */
        }
    }
    m->keys[s] = (struct key_slot){key, table, true, -1, -1};
    m->used[m->nused++] = s;
    return &m->keys[s];
}

static int32_t max2(int32_t a, int32_t b)
{
    return a > b ? a : b;
}

/* Without memory for the key, a keyed entry is treated as covering its whole
 * table: more conflicts, never fewer. */
static int32_t lower_bound(struct evr_mixer *m, const struct evr_conflict *e)
{
    struct table_levels *t = &m->tables[e->table];
    struct key_slot *k = e->keyed ? key_slot(m, e->table, e->key) : NULL;
    if (k == NULL) {
        return e->mode == EVR_WRITE ? max2(t->w_all, t->r_all) : t->w_all;
    }
    if (e->mode == EVR_WRITE) {
        return max2(max2(t->w_whole, t->r_whole), max2(k->w, k->r));
    }
    return max2(t->w_whole, k->w);
}

static void record(struct evr_mixer *m, const struct evr_conflict *e,
                   int32_t level)
{
    struct table_levels *t = &m->tables[e->table];
    struct key_slot *k = e->keyed ? key_slot(m, e->table, e->key) : NULL;
    if (e->mode == EVR_WRITE) {
        t->w_all = max2(t->w_all, level);
        if (k != NULL) {
            k->w = max2(k->w, level);
        } else {
            t->w_whole = max2(t->w_whole, level);
        }
    } else {
        t->r_all = max2(t->r_all, level);
        if (k != NULL) {
            k->r = max2(k->r, level);
        } else {
            t->r_whole = max2(t->r_whole, level);
        }
    }
}

/* Levels of all requests; returns the number of levels. */
static uint32_t assign_levels(struct evr_mixer *m, const struct evr_cset *cs,
                              uint32_t n)
{
    int32_t top = -1;     /* highest level so far */
    int32_t barrier = -1; /* level of the last barrier request */
    for (uint32_t i = 0; i < n; i++) {
        int32_t level;
        if (set_is_barrier(&cs[i])) {
            level = barrier = top + 1;
        } else {
            int32_t lb = barrier;
            for (uint32_t j = 0; j < cs[i].n; j++) {
                lb = max2(lb, lower_bound(m, &cs[i].e[j]));
            }
            level = lb + 1;
            for (uint32_t j = 0; j < cs[i].n; j++) {
                record(m, &cs[i].e[j], level);
            }
        }
        m->level[i] = level;
        top = max2(top, level);
    }
    return (uint32_t)(top + 1);
}

int evr_mixer_plan(struct evr_mixer *m, const struct evr_cset *csets,
                   uint32_t n, struct evr_plan *plan, struct evr_err *err)
{
    if (n > m->n_max) {
        return evr_err_set(err, EVR_ELIMIT,
                           "batch of %u requests exceeds the mixer's %u", n,
                           m->n_max);
    }
    reset(m);
    uint32_t nsub = assign_levels(m, csets, n);
    assert(nsub <= n);
    /* Counting sort by level; stable, so indices ascend in a sub-batch. */
    memset(m->count, 0, (nsub + 1) * sizeof *m->count);
    for (uint32_t i = 0; i < n; i++) {
        m->count[m->level[i]]++;
    }
    m->sub_start[0] = 0;
    for (uint32_t s = 0; s < nsub; s++) {
        m->sub_start[s + 1] = m->sub_start[s] + m->count[s];
        m->count[s] = m->sub_start[s];
    }
    for (uint32_t i = 0; i < n; i++) {
        m->order[m->count[m->level[i]]++] = i;
    }
    plan->n = n;
    plan->nsub = nsub;
    plan->order = m->order;
    plan->sub_start = m->sub_start;
    return 0;
}
