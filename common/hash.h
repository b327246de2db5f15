/*
 * 128-bit hashes and sums.
 *
 * evr_h128 is the value type of every digest evr computes: row hashes,
 * bucket sums, table roots, state roots, response digests and tokens. All
 * are XXH3-128 (libxxhash). Bucket sums add row hashes modulo 2^128, which is
 * what makes the state digest independent of the order rows were written.
 *
 * Byte form (for hashing a hash, for files and messages): 16 bytes, `lo`
 * little-endian then `hi` little-endian. Text form: 32 lower-case hex digits,
 * `hi` first, so the text reads as one 128-bit number.
 */
#ifndef EVR_COMMON_HASH_H
#define EVR_COMMON_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t lo;
    uint64_t hi;
} evr_h128;

#define EVR_H128_HEX_LEN 32

static inline evr_h128 evr_h128_add(evr_h128 a, evr_h128 b)
{
    evr_h128 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}

static inline evr_h128 evr_h128_sub(evr_h128 a, evr_h128 b)
{
    evr_h128 r;
    r.lo = a.lo - b.lo;
    r.hi = a.hi - b.hi - (a.lo < b.lo);
    return r;
}

static inline bool evr_h128_eq(evr_h128 a, evr_h128 b)
{
    return a.lo == b.lo && a.hi == b.hi;
}

static inline bool evr_h128_is_zero(evr_h128 a)
{
    return a.lo == 0 && a.hi == 0;
}

/* XXH3-128 of bytes with a 64-bit seed. */
evr_h128 evr_hash128(const void *p, size_t n, uint64_t seed);

/* XXH3-64 of bytes with a seed. */
uint64_t evr_hash64(const void *p, size_t n, uint64_t seed);

/* 16-byte form (see above). */
void evr_h128_to_bytes(evr_h128 h, uint8_t out[16]);
evr_h128 evr_h128_from_bytes(const uint8_t in[16]);

/* Writes 32 hex digits and a NUL into out (33 bytes). */
void evr_h128_to_hex(evr_h128 h, char out[EVR_H128_HEX_LEN + 1]);

/* Parses exactly 32 hex digits. Returns false on anything else. */
bool evr_h128_from_hex(const char *s, evr_h128 *out);

/*
 * Streaming XXH3-128, for digests over sequences (responses in batch order,
 * table roots over buckets). Opaque state, owned by the caller.
 */
struct evr_hasher;
struct evr_hasher *evr_hasher_new(uint64_t seed); /* NULL on ENOMEM */
void evr_hasher_free(struct evr_hasher *h);
void evr_hasher_reset(struct evr_hasher *h, uint64_t seed);
void evr_hasher_update(struct evr_hasher *h, const void *p, size_t n);
void evr_hasher_update_u64(struct evr_hasher *h, uint64_t v);
void evr_hasher_update_h128(struct evr_hasher *h, evr_h128 v);
evr_h128 evr_hasher_digest(const struct evr_hasher *h);

#endif
