/*
 * The key-value application: one table of BLOB keys and values, in the
 * shape of dqlite-benchmark's kvwrite/kvreadwrite (32-byte keys, ~1 KiB
 * values).
 *
 *   CREATE TABLE kv(k BLOB PRIMARY KEY NOT NULL, v BLOB NOT NULL)
 *     WITHOUT ROWID;          -- page size 8192, so 1 KiB rows stay inline
 *
 * Request (little-endian):
 *
 *   offset size  field
 *   0      1     op: 1 get, 2 put, 3 delete, 4 scan
 *   1      1     key length n (1..255)
 *   2      n     key
 *   put:   u32 value length m (<= EVR_KV_VALUE_MAX), m value bytes
 *   scan:  u16 count c (1..EVR_KV_SCAN_MAX): the c first keys >= key
 *
 * Response: get: u8 found, then the value; put: empty; delete: u8 existed;
 * scan: u16 rows, then per row u8 key length, key, u32 value length, value.
 *
 * Conflict sets: get reads its key, put and delete write theirs, scan reads
 * the whole table (a range is not a key). Keys are hashed to 64 bits: a
 * collision can only add a conflict.
 *
 * Options: keys (100000), key-size (32 bytes, 8..255: "k" and key-size - 1
 * zero-padded digits; keys must fit), value-size (1024), read-fraction
 * (0.95), and delete-fraction / scan-fraction (0) taken from the writes'
 * share, scan-length (10), dist (uniform | zipf), theta (0.99), seed (1).
 */
#ifndef EVR_WORKLOADS_KV_H
#define EVR_WORKLOADS_KV_H

#include <stdint.h>

#include "workloads/app.h"

#define EVR_KV_KEY_BYTES 32 /* default key size */
#define EVR_KV_KEY_MIN 8
#define EVR_KV_KEY_MAX 255
#define EVR_KV_VALUE_MAX (1u << 20)
#define EVR_KV_SCAN_MAX 1000
#define EVR_KV_TABLE 0 /* conflict-set table id of kv */

enum evr_kv_op { EVR_KV_GET = 1, EVR_KV_PUT, EVR_KV_DEL, EVR_KV_SCAN };

extern const struct evr_app_ops evr_kv_app;

/* The key of row `index` of the start state: "k" and 31 zero-padded decimal
 * digits, so keys sort like their indices. */
void evr_kv_key(uint64_t index, uint8_t key[EVR_KV_KEY_BYTES]);
/* The same at key-size `size` (EVR_KV_KEY_MIN..EVR_KV_KEY_MAX): "k" and
 * size - 1 digits; index must have no more digits than that. */
void evr_kv_key_sized(uint64_t index, uint32_t size, uint8_t *key);

/* Appends a request. value is used by put, count by scan. */
int evr_kv_encode(struct evr_buf *out, enum evr_kv_op op, const void *key,
                  uint32_t key_len, const void *value, uint32_t value_len,
                  uint16_t count);

/* The generator's key choice, exposed for tests: an index in [0, keys). */
struct evr_kv_zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
    uint64_t scramble; /* multiplier coprime with n */
};
void evr_kv_zipf_init(struct evr_kv_zipf *z, uint64_t n, double theta);
uint64_t evr_kv_zipf_next(const struct evr_kv_zipf *z, struct evr_rng *r);

#endif
