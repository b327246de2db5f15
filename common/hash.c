#include "common/hash.h"

#include <assert.h>
#include <stdio.h>
#include <xxhash.h>

#include "common/buf.h"

evr_h128 evr_hash128(const void *p, size_t n, uint64_t seed)
{
    XXH128_hash_t x = XXH3_128bits_withSeed(p, n, seed);
    evr_h128 h = {x.low64, x.high64};
    return h;
}

uint64_t evr_hash64(const void *p, size_t n, uint64_t seed)
{
    return XXH3_64bits_withSeed(p, n, seed);
}

void evr_h128_to_bytes(evr_h128 h, uint8_t out[16])
{
    evr_store_u64(out, h.lo);
    evr_store_u64(out + 8, h.hi);
}

evr_h128 evr_h128_from_bytes(const uint8_t in[16])
{
    evr_h128 h = {evr_load_u64(in), evr_load_u64(in + 8)};
    return h;
}

void evr_h128_to_hex(evr_h128 h, char out[EVR_H128_HEX_LEN + 1])
{
    snprintf(out, EVR_H128_HEX_LEN + 1, "%016llx%016llx",
             (unsigned long long)h.hi, (unsigned long long)h.lo);
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool evr_h128_from_hex(const char *s, evr_h128 *out)
{
    uint64_t words[2] = {0, 0};
    for (int i = 0; i < EVR_H128_HEX_LEN; i++) {
        int v = hex_value(s[i]);
        if (v < 0) {
            return false;
        }
        words[i / 16] = (words[i / 16] << 4) | (uint64_t)v;
    }
    if (s[EVR_H128_HEX_LEN] != '\0') {
        return false;
    }
    out->hi = words[0];
    out->lo = words[1];
    return true;
}

/*
 * struct evr_hasher is never defined: a pointer to it is an XXH3_state_t
 * pointer under an evr name, so headers need not include xxhash.h.
 */
struct evr_hasher *evr_hasher_new(uint64_t seed)
{
    XXH3_state_t *s = XXH3_createState();
    if (s == NULL) {
        return NULL;
    }
    struct evr_hasher *h = (struct evr_hasher *)s;
    evr_hasher_reset(h, seed);
    return h;
}

void evr_hasher_free(struct evr_hasher *h)
{
    XXH3_freeState((XXH3_state_t *)h);
}

void evr_hasher_reset(struct evr_hasher *h, uint64_t seed)
{
    XXH_errorcode rc = XXH3_128bits_reset_withSeed((XXH3_state_t *)h, seed);
    assert(rc == XXH_OK);
    (void)rc;
}

void evr_hasher_update(struct evr_hasher *h, const void *p, size_t n)
{
    XXH_errorcode rc = XXH3_128bits_update((XXH3_state_t *)h, p, n);
    assert(rc == XXH_OK);
    (void)rc;
}

void evr_hasher_update_u64(struct evr_hasher *h, uint64_t v)
{
    uint8_t b[8];
    evr_store_u64(b, v);
    evr_hasher_update(h, b, sizeof b);
}

void evr_hasher_update_h128(struct evr_hasher *h, evr_h128 v)
{
    uint8_t b[16];
    evr_h128_to_bytes(v, b);
    evr_hasher_update(h, b, sizeof b);
}

evr_h128 evr_hasher_digest(const struct evr_hasher *h)
{
    XXH128_hash_t x = XXH3_128bits_digest((const XXH3_state_t *)h);
    evr_h128 r = {x.low64, x.high64};
    return r;
}
