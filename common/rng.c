#include "common/rng.h"

#include <assert.h>

uint64_t evr_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void evr_rng_seed(struct evr_rng *r, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = evr_splitmix64(&st);
    }
    /* xoshiro must not start from all zeroes; splitmix64 never yields four. */
    assert(r->s[0] | r->s[1] | r->s[2] | r->s[3]);
}

void evr_rng_seed2(struct evr_rng *r, uint64_t a, uint64_t b)
{
    uint64_t st = a;
    uint64_t mixed = evr_splitmix64(&st) ^ b;
    evr_rng_seed(r, evr_splitmix64(&mixed));
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t evr_rng_next(struct evr_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t evr_rng_below(struct evr_rng *r, uint64_t n)
{
    assert(n >= 1);
    /* Reject the top partial range so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = evr_rng_next(r);
    } while (x >= limit);
    return x % n;
}

int64_t evr_rng_range(struct evr_rng *r, int64_t lo, int64_t hi)
{
    assert(lo <= hi);
    uint64_t span = (uint64_t)hi - (uint64_t)lo;
    if (span == UINT64_MAX) {
        return (int64_t)evr_rng_next(r);
    }
    return (int64_t)((uint64_t)lo + evr_rng_below(r, span + 1));
}

double evr_rng_double(struct evr_rng *r)
{
    return (double)(evr_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}
