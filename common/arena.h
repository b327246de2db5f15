/*
 * Bump allocator for data that lives exactly as long as one owner (a batch's
 * captured row images, a delta being decoded). Allocations are 8-byte
 * aligned and never freed one by one; evr_arena_reset keeps the first chunk
 * for reuse, evr_arena_free releases everything.
 *
 * Limit: an arena refuses to hold more than bytes_max in total (EVR_ELIMIT
 * reported as NULL with *limit_hit set), so a runaway batch cannot exhaust
 * memory.
 */
#ifndef EVR_COMMON_ARENA_H
#define EVR_COMMON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct evr_arena_chunk;

struct evr_arena {
    struct evr_arena_chunk *head; /* current chunk; older ones follow */
    size_t bytes_used;            /* sum of chunk sizes */
    size_t bytes_max;
    bool limit_hit;               /* sticky until reset */
};

void evr_arena_init(struct evr_arena *a, size_t bytes_max);
void evr_arena_free(struct evr_arena *a);
void evr_arena_reset(struct evr_arena *a);

/* NULL on ENOMEM or when bytes_max would be exceeded (limit_hit = true). */
void *evr_arena_alloc(struct evr_arena *a, size_t n);
void *evr_arena_dup(struct evr_arena *a, const void *p, size_t n);

#endif
