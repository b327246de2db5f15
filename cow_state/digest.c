/*
 * The state digest (docs/DIGEST.md).
 *
 *   row hash     XXH3-128(image, seed = table seed)
 *   key hash     XXH3-64(key, seed = table seed); its top 10 bits pick the
 *                bucket, so a row never changes bucket when updated
 *   bucket       sum of its rows' hashes mod 2^128
 *   table root   XXH3-128(bucket[0] .. bucket[1023] as 16-byte LE each,
 *                seed = table seed)
 *   state root   XXH3-128 over, for each table in name order:
 *                u32 LE name length, name bytes, 16-byte table root;
 *                seed = EVR_STATE_SEED
 *
 * Sums commute, so the digest depends on the set of rows only, never on the
 * order they were written; and a batch updates it by touching only the
 * buckets of the rows it changed.
 */
#include <string.h>

#include "common/buf.h"
#include "cow_state/internal.h"

#define EVR_STATE_SEED 0x6576722d73746174ULL /* "evr-stat" */

evr_h128 evr__row_hash(const struct evr__table *t, const uint8_t *img,
                       size_t len)
{
    return evr_hash128(img, len, t->seed);
}

uint64_t evr__key_hash(const struct evr__table *t, const uint8_t *key,
                       size_t len)
{
    return evr_hash64(key, len, t->seed);
}

static evr_h128 table_root(const struct evr__table *t)
{
#if EVR_LITTLE_ENDIAN
    /* {lo, hi} in memory is already the 16-byte little-endian form. */
    _Static_assert(sizeof(evr_h128) == 16, "evr_h128 is two words");
    return evr_hash128(t->buckets, EVR_DIGEST_BUCKETS * sizeof(evr_h128),
                       t->seed);
#else
    uint8_t bytes[EVR_DIGEST_BUCKETS * 16];
    for (int i = 0; i < EVR_DIGEST_BUCKETS; i++) {
        evr_h128_to_bytes(t->buckets[i], bytes + 16 * i);
    }
    return evr_hash128(bytes, sizeof bytes, t->seed);
#endif
}

evr_h128 evr__digest_root(struct evr__schema *s)
{
    evr_hasher_reset(s->hasher, EVR_STATE_SEED);
    for (int i = 0; i < s->ntables; i++) {
        struct evr__table *t = &s->tables[i];
        if (t->root_dirty) {
            t->root = table_root(t);
            t->root_dirty = false;
        }
        size_t n = strlen(t->name);
        uint8_t len[4];
        evr_store_u32(len, (uint32_t)n);
        evr_hasher_update(s->hasher, len, sizeof len);
        evr_hasher_update(s->hasher, t->name, n);
        evr_hasher_update_h128(s->hasher, t->root);
    }
    return evr_hasher_digest(s->hasher);
}

static int scan_sql(const struct evr__table *t, struct evr_buf *sql)
{
    int rc = evr_buf_put(sql, "SELECT ", 7);
    rc = rc ? rc : evr__append_cols(sql, t, false);
    if (rc == 0) {
        rc = evr_buf_put(sql, " FROM ", 6);
    }
    if (rc == 0) {
        rc = evr_buf_put(sql, t->qname, strlen(t->qname) + 1);
    }
    return rc;
}

static int scan_table(sqlite3 *db, struct evr__table *t, struct evr_err *err)
{
    struct evr_buf sql, img, key;
    evr_buf_init(&sql, 1 << 20);
    evr_buf_init(&img, SIZE_MAX);
    evr_buf_init(&key, SIZE_MAX);
    sqlite3_stmt *st = NULL;
    int rc = scan_sql(t, &sql);
    if (rc != 0) {
        evr_err_set(err, rc, "table '%s': building the scan", t->name);
    } else {
        int src = sqlite3_prepare_v2(db, (const char *)sql.data, -1, &st, 0);
        if (src != SQLITE_OK) {
            rc = evr__sqlite_err(err, db, src, "preparing a digest scan");
        }
    }
    memset(t->buckets, 0, EVR_DIGEST_BUCKETS * sizeof *t->buckets);
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE) {
            break;
        }
        if (step != SQLITE_ROW) {
            rc = evr__sqlite_err(err, db, step, t->name);
            break;
        }
        evr_buf_reset(&img);
        evr_buf_reset(&key);
        for (int i = 0; rc == 0 && i < t->ncols; i++) {
            rc = evr__enc_value(&img, sqlite3_column_value(st, i));
        }
        for (int i = 0; rc == 0 && i < t->npk; i++) {
            rc = evr__enc_key_value(&key, sqlite3_column_value(st, t->pk[i]));
        }
        if (rc != 0) {
            evr_err_set(err, rc, "table '%s': encoding a row: %s", t->name,
                        evr_strerror(rc));
            break;
        }
        uint32_t b = evr__bucket_of(evr__key_hash(t, key.data, key.len));
        t->buckets[b] = evr_h128_add(t->buckets[b],
                                     evr__row_hash(t, img.data, img.len));
    }
    t->root_dirty = true;
    sqlite3_finalize(st);
    evr_buf_free(&sql);
    evr_buf_free(&img);
    evr_buf_free(&key);
    return rc;
}

int evr__digest_scan(sqlite3 *db, struct evr__schema *s, struct evr_err *err)
{
    /* One read transaction: every table is seen at the same instant. */
    int rc = sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, db, rc, "starting a digest scan");
    }
    int erc = 0;
    for (int i = 0; erc == 0 && i < s->ntables; i++) {
        erc = scan_table(db, &s->tables[i], err);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    return erc;
}
