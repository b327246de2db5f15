/*
 * Zipfian key choice (Gray et al., "Quickly generating billion-record
 * synthetic databases", SIGMOD 1994, as YCSB uses it), with ranks scrambled
 * by a multiplier coprime with n so that hot keys are spread over the key
 * space instead of clustering at its start.
 */
#include <math.h>

#include "workloads/kv/kv.h"

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b != 0) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void evr_kv_zipf_init(struct evr_kv_zipf *z, uint64_t n, double theta)
{
    z->n = n;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    double zetan = 0;
    for (uint64_t i = 1; i <= n; i++) {
        zetan += 1.0 / pow((double)i, theta);
    }
    double zeta2 = 1.0 + 1.0 / pow(2.0, theta);
    z->zetan = zetan;
    z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) /
             (1.0 - zeta2 / zetan);
    z->half_pow_theta = 1.0 + pow(0.5, theta);
    uint64_t m = 0x9e3779b97f4a7c15ULL % (n ? n : 1);
    while (n > 1 && (m == 0 || gcd(m, n) != 1)) {
        m++;
    }
    z->scramble = n > 1 ? m : 0;
}

uint64_t evr_kv_zipf_next(const struct evr_kv_zipf *z, struct evr_rng *r)
{
    if (z->n <= 1) {
        return 0;
    }
    double u = evr_rng_double(r);
    double uz = u * z->zetan;
    uint64_t rank;
    if (uz < 1.0) {
        rank = 0;
    } else if (uz < z->half_pow_theta) {
        rank = 1;
    } else {
        rank = (uint64_t)((double)z->n *
                          pow(z->eta * u - z->eta + 1.0, z->alpha));
    }
    if (rank >= z->n) {
        rank = z->n - 1;
    }
    /* rank * m mod n is a permutation of [0, n) because gcd(m, n) = 1. */
    return (uint64_t)(((unsigned __int128)rank * z->scramble) % z->n);
}
