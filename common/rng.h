/*
 * Deterministic pseudo-random numbers.
 *
 * Everything random in evr (population, load generation, the per-request
 * RNG that applications use) comes from an evr_rng seeded explicitly, never
 * from rand() or the clock, so a seed reproduces a run bit for bit.
 *
 * Generator: xoshiro256** (Blackman & Vigna), state expanded from the seed
 * with splitmix64. Not cryptographic.
 */
#ifndef EVR_COMMON_RNG_H
#define EVR_COMMON_RNG_H

#include <stdint.h>

struct evr_rng {
    uint64_t s[4];
};

void evr_rng_seed(struct evr_rng *r, uint64_t seed);

/* Seeds from two words, e.g. (batch seed, request index). */
void evr_rng_seed2(struct evr_rng *r, uint64_t a, uint64_t b);

uint64_t evr_rng_next(struct evr_rng *r);

/* Uniform in [0, n) for n >= 1, without modulo bias. */
uint64_t evr_rng_below(struct evr_rng *r, uint64_t n);

/* Uniform in [lo, hi] (inclusive). Requires lo <= hi. */
int64_t evr_rng_range(struct evr_rng *r, int64_t lo, int64_t hi);

/* Uniform double in [0, 1). */
double evr_rng_double(struct evr_rng *r);

/* One step of splitmix64: a good 64-bit mixer on its own. */
uint64_t evr_splitmix64(uint64_t *state);

#endif
