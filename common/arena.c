#include "common/arena.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK_MIN (64 * 1024)

struct evr_arena_chunk {
    struct evr_arena_chunk *next;
    size_t size; /* usable bytes in data */
    size_t used;
    _Alignas(16) unsigned char data[];
};

void evr_arena_init(struct evr_arena *a, size_t bytes_max)
{
    a->head = NULL;
    a->bytes_used = 0;
    a->bytes_max = bytes_max;
    a->limit_hit = false;
}

static void free_chain(struct evr_arena_chunk *c)
{
    while (c != NULL) {
        struct evr_arena_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void evr_arena_free(struct evr_arena *a)
{
    free_chain(a->head);
    a->head = NULL;
    a->bytes_used = 0;
    a->limit_hit = false;
}

void evr_arena_reset(struct evr_arena *a)
{
    if (a->head == NULL) {
        return;
    }
    /* Keep the newest (largest) chunk: a steady stream of similar batches
     * then allocates nothing. */
    struct evr_arena_chunk *keep = a->head;
    free_chain(keep->next);
    keep->next = NULL;
    keep->used = 0;
    a->head = keep;
    a->bytes_used = keep->size;
    a->limit_hit = false;
}

void *evr_arena_alloc(struct evr_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    assert(need >= n);
    struct evr_arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < need) {
        size_t size = need > ARENA_CHUNK_MIN ? need : ARENA_CHUNK_MIN;
        if (c != NULL && c->size * 2 > size && c->size < 16 * ARENA_CHUNK_MIN) {
            size = c->size * 2;
        }
        if (a->bytes_used + size > a->bytes_max) {
            a->limit_hit = true;
            return NULL;
        }
        struct evr_arena_chunk *nc = malloc(sizeof *nc + size);
        if (nc == NULL) {
            return NULL;
        }
        nc->next = c;
        nc->size = size;
        nc->used = 0;
        a->head = nc;
        a->bytes_used += size;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

void *evr_arena_dup(struct evr_arena *a, const void *p, size_t n)
{
    void *q = evr_arena_alloc(a, n);
    if (q != NULL && n > 0) {
        memcpy(q, p, n);
    }
    return q;
}
