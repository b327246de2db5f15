/* The key-value application: schema, population, classify, execute. */
#include "workloads/kv/kv.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"

struct kv {
    uint64_t keys;
    uint64_t key_size;
    uint64_t value_size;
    double read_fraction;
    double delete_fraction;
    double scan_fraction;
    uint64_t scan_length;
    bool zipf;
    double theta;
    uint64_t seed;
};

void evr_kv_key(uint64_t index, uint8_t key[EVR_KV_KEY_BYTES])
{
    evr_kv_key_sized(index, EVR_KV_KEY_BYTES, key);
}

void evr_kv_key_sized(uint64_t index, uint32_t size, uint8_t *key)
{
    char text[EVR_KV_KEY_MAX + 2];
    assert(size >= EVR_KV_KEY_MIN && size <= EVR_KV_KEY_MAX);
    int n = snprintf(text, sizeof text, "k%0*llu", (int)size - 1,
                     (unsigned long long)index);
    assert(n == (int)size); /* kv_create checks that keys fit */
    memcpy(key, text, size);
}

/* Whether every index below keys has size - 1 digits or fewer. */
static bool keys_fit(uint64_t keys, uint64_t size)
{
    uint64_t limit = 1;
    for (uint64_t d = 0; d < size - 1 && limit <= keys; d++) {
        limit *= 10;
    }
    return keys <= limit;
}

int evr_kv_encode(struct evr_buf *out, enum evr_kv_op op, const void *key,
                  uint32_t key_len, const void *value, uint32_t value_len,
                  uint16_t count)
{
    if (key_len == 0 || key_len > 255 || value_len > EVR_KV_VALUE_MAX) {
        return EVR_EINVAL;
    }
    int rc = evr_buf_put_u8(out, (uint8_t)op);
    rc = rc ? rc : evr_buf_put_u8(out, (uint8_t)key_len);
    rc = rc ? rc : evr_buf_put(out, key, key_len);
    if (rc == 0 && op == EVR_KV_PUT) {
        rc = evr_buf_put_u32(out, value_len);
        rc = rc ? rc : evr_buf_put(out, value, value_len);
    }
    if (rc == 0 && op == EVR_KV_SCAN) {
        rc = evr_buf_put_u16(out, count);
    }
    return rc;
}

/* ------------------------------------------------------------ options */

static int set_opt(struct kv *kv, const struct evr_app_opt *o,
                   struct evr_err *err)
{
    const char *n = o->name;
    if (strcmp(n, "keys") == 0) {
        return evr_opt_u64(o, 1, 1ULL << 40, &kv->keys, err);
    }
    if (strcmp(n, "key-size") == 0) {
        return evr_opt_u64(o, EVR_KV_KEY_MIN, EVR_KV_KEY_MAX, &kv->key_size,
                           err);
    }
    if (strcmp(n, "value-size") == 0) {
        return evr_opt_u64(o, 0, EVR_KV_VALUE_MAX, &kv->value_size, err);
    }
    if (strcmp(n, "read-fraction") == 0) {
        return evr_opt_double(o, 0, 1, &kv->read_fraction, err);
    }
    if (strcmp(n, "delete-fraction") == 0) {
        return evr_opt_double(o, 0, 1, &kv->delete_fraction, err);
    }
    if (strcmp(n, "scan-fraction") == 0) {
        return evr_opt_double(o, 0, 1, &kv->scan_fraction, err);
    }
    if (strcmp(n, "scan-length") == 0) {
        return evr_opt_u64(o, 1, EVR_KV_SCAN_MAX, &kv->scan_length, err);
    }
    if (strcmp(n, "theta") == 0) {
        return evr_opt_double(o, 0.01, 0.999, &kv->theta, err);
    }
    if (strcmp(n, "seed") == 0) {
        return evr_opt_u64(o, 0, UINT64_MAX, &kv->seed, err);
    }
    if (strcmp(n, "dist") == 0) {
        if (strcmp(o->value, "uniform") != 0 && strcmp(o->value, "zipf") != 0) {
            return evr_err_set(err, EVR_EINVAL,
                               "--dist must be uniform or zipf, not '%s'",
                               o->value);
        }
        kv->zipf = strcmp(o->value, "zipf") == 0;
        return 0;
    }
    return evr_err_set(err, EVR_EINVAL, "the kv app has no option --%s", n);
}

static int kv_create(const struct evr_app_opt *opts, int nopts, void **app,
                     struct evr_err *err)
{
    struct kv *kv = calloc(1, sizeof *kv);
    if (kv == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    *kv = (struct kv){.keys = 100000, .key_size = EVR_KV_KEY_BYTES,
                      .value_size = 1024,
                      .read_fraction = 0.95, .scan_length = 10,
                      .theta = 0.99, .seed = 1};
    int rc = 0;
    for (int i = 0; rc == 0 && i < nopts; i++) {
        rc = set_opt(kv, &opts[i], err);
    }
    if (rc == 0 &&
        kv->read_fraction + kv->delete_fraction + kv->scan_fraction > 1.0) {
        rc = evr_err_set(err, EVR_EINVAL,
                         "read, delete and scan fractions add up to more "
                         "than 1");
    }
    if (rc == 0 && !keys_fit(kv->keys, kv->key_size)) {
        rc = evr_err_set(err, EVR_EINVAL,
                         "%llu keys do not fit in keys of %llu bytes "
                         "(\"k\" and %llu digits)",
                         (unsigned long long)kv->keys,
                         (unsigned long long)kv->key_size,
                         (unsigned long long)kv->key_size - 1);
    }
    if (rc != 0) {
        free(kv);
        return rc;
    }
    *app = kv;
    return 0;
}

static void kv_destroy(void *app)
{
    free(app);
}

/* ------------------------------------------------------------ population */

/* Value bytes of row `index`: a function of (seed, index) only. */
static void fill_value(uint64_t seed, uint64_t index, uint8_t *v, size_t n)
{
    struct evr_rng r;
    evr_rng_seed2(&r, seed, index);
    for (size_t i = 0; i < n; i += 8) {
        uint64_t x = evr_rng_next(&r);
        size_t m = n - i < 8 ? n - i : 8;
        memcpy(v + i, &x, m);
    }
}

static int kv_populate(void *app, sqlite3 *db, struct evr_err *err)
{
    struct kv *kv = app;
    int rc = sqlite3_exec(db,
                          "PRAGMA page_size = 8192;"
                          "CREATE TABLE kv(k BLOB PRIMARY KEY NOT NULL, "
                          "v BLOB NOT NULL) WITHOUT ROWID;"
                          "BEGIN",
                          NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(db, "INSERT INTO kv(k, v) VALUES(?1, ?2)", -1,
                                &st, NULL);
    }
    uint8_t *v = malloc(kv->value_size + 8);
    if (v == NULL) {
        rc = SQLITE_NOMEM;
    }
    for (uint64_t i = 0; rc == SQLITE_OK && i < kv->keys; i++) {
        uint8_t key[EVR_KV_KEY_MAX];
        evr_kv_key_sized(i, (uint32_t)kv->key_size, key);
        fill_value(kv->seed, i, v, kv->value_size);
        sqlite3_bind_blob(st, 1, key, (int)kv->key_size, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, v, (int)kv->value_size, SQLITE_STATIC);
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        sqlite3_reset(st);
    }
    free(v);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        return evr_err_set(err, EVR_ESQL, "populating kv: %s",
                           sqlite3_errmsg(db));
    }
    return 0;
}

/* ------------------------------------------------------------ requests */

struct kv_req {
    int op;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
    uint16_t count;
};

static bool parse(const uint8_t *p, uint32_t len, struct kv_req *q)
{
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    q->op = evr_get_u8(&r);
    q->key_len = evr_get_u8(&r);
    q->key = evr_get_bytes(&r, q->key_len);
    q->value = NULL;
    q->value_len = 0;
    q->count = 0;
    if (q->op == EVR_KV_PUT) {
        q->value_len = evr_get_u32(&r);
        q->value = q->value_len <= EVR_KV_VALUE_MAX
                       ? evr_get_bytes(&r, q->value_len)
                       : NULL;
        r.ok = r.ok && q->value != NULL;
    } else if (q->op == EVR_KV_SCAN) {
        q->count = evr_get_u16(&r);
        r.ok = r.ok && q->count >= 1 && q->count <= EVR_KV_SCAN_MAX;
    }
    return r.ok && evr_reader_left(&r) == 0 && q->key_len > 0 &&
           q->op >= EVR_KV_GET && q->op <= EVR_KV_SCAN;
}

static void kv_classify(void *app, const uint8_t *req, uint32_t len,
                        struct evr_cset *cs)
{
    (void)app;
    struct kv_req q;
    evr_cset_clear(cs);
    if (!parse(req, len, &q)) {
        return;
    }
    uint64_t key = evr_hash64(q.key, q.key_len, 0);
    switch (q.op) {
    case EVR_KV_GET:
        evr_cset_read_key(cs, EVR_KV_TABLE, key);
        break;
    case EVR_KV_PUT:
    case EVR_KV_DEL:
        evr_cset_write_key(cs, EVR_KV_TABLE, key);
        break;
    default:
        evr_cset_read_table(cs, EVR_KV_TABLE);
        break;
    }
}

enum { ST_GET, ST_PUT, ST_DEL, ST_SCAN };

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int do_get(struct evr_ctx *ctx, const struct kv_req *q,
                  struct evr_buf *resp)
{
    sqlite3_stmt *st =
        evr_ctx_stmt(ctx, ST_GET, "SELECT v FROM kv WHERE k = ?1");
    if (st == NULL) {
        return SQLITE_ERROR;
    }
    sqlite3_bind_blob(st, 1, q->key, (int)q->key_len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int erc = 0;
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        erc = evr_buf_put_u8(resp, 1);
        erc = erc ? erc : evr_buf_put(resp, v, (size_t)n);
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        erc = evr_buf_put_u8(resp, 0);
        rc = SQLITE_OK;
    }
    sqlite3_reset(st);
    return erc ? erc : rc;
}

static int do_put(struct evr_ctx *ctx, const struct kv_req *q)
{
    sqlite3_stmt *st = evr_ctx_stmt(
        ctx, ST_PUT,
        "INSERT INTO kv(k, v) VALUES(?1, ?2) "
        "ON CONFLICT(k) DO UPDATE SET v = excluded.v");
    if (st == NULL) {
        return SQLITE_ERROR;
    }
    sqlite3_bind_blob(st, 1, q->key, (int)q->key_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, q->value_len ? (const void *)q->value : "",
                      (int)q->value_len, SQLITE_STATIC);
    return step_done(st);
}

static int do_del(struct evr_ctx *ctx, const struct kv_req *q,
                  struct evr_buf *resp)
{
    sqlite3_stmt *st = evr_ctx_stmt(ctx, ST_DEL, "DELETE FROM kv WHERE k = ?1");
    if (st == NULL) {
        return SQLITE_ERROR;
    }
    sqlite3_bind_blob(st, 1, q->key, (int)q->key_len, SQLITE_STATIC);
    int rc = step_done(st);
    if (rc == SQLITE_OK) {
        rc = evr_buf_put_u8(resp, sqlite3_changes(ctx->db) > 0);
    }
    return rc;
}

static int do_scan(struct evr_ctx *ctx, const struct kv_req *q,
                   struct evr_buf *resp)
{
    sqlite3_stmt *st = evr_ctx_stmt(
        ctx, ST_SCAN, "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2");
    if (st == NULL) {
        return SQLITE_ERROR;
    }
    sqlite3_bind_blob(st, 1, q->key, (int)q->key_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, q->count);
    size_t at = resp->len;
    int erc = evr_buf_put_u16(resp, 0);
    uint16_t rows = 0;
    int rc = SQLITE_DONE;
    while (erc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int kn = sqlite3_column_bytes(st, 0);
        const void *k = sqlite3_column_blob(st, 0);
        int vn = sqlite3_column_bytes(st, 1);
        const void *v = sqlite3_column_blob(st, 1);
        erc = evr_buf_put_u8(resp, (uint8_t)kn);
        erc = erc ? erc : evr_buf_put(resp, k, (size_t)kn);
        erc = erc ? erc : evr_buf_put_u32(resp, (uint32_t)vn);
        erc = erc ? erc : evr_buf_put(resp, v, (size_t)vn);
        rows++;
    }
    sqlite3_reset(st);
    if (erc != 0) {
        return erc;
    }
    resp->data[at] = (uint8_t)rows;
    resp->data[at + 1] = (uint8_t)(rows >> 8);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int kv_execute(void *app, struct evr_ctx *ctx, const uint8_t *req,
                      uint32_t len, struct evr_buf *resp)
{
    (void)app;
    struct kv_req q;
    if (!parse(req, len, &q)) {
        return EVR_EINVAL;
    }
    switch (q.op) {
    case EVR_KV_GET:
        return do_get(ctx, &q, resp);
    case EVR_KV_PUT:
        return do_put(ctx, &q);
    case EVR_KV_DEL:
        return do_del(ctx, &q, resp);
    default:
        return do_scan(ctx, &q, resp);
    }
}

static const char *kv_kind(void *app, const uint8_t *req, uint32_t len)
{
    (void)app;
    struct kv_req q;
    if (!parse(req, len, &q)) {
        return "invalid";
    }
    static const char *const names[] = {"", "get", "put", "delete", "scan"};
    return names[q.op];
}

/* ------------------------------------------------------------ generator */

struct kv_gen {
    const struct kv *kv;
    struct evr_rng rng;
    struct evr_kv_zipf zipf;
    uint8_t *value;
};

static int kv_gen_create(void *app, uint64_t seed, void **gen,
                         struct evr_err *err)
{
    struct kv *kv = app;
    struct kv_gen *g = calloc(1, sizeof *g);
    uint8_t *value = malloc(kv->value_size + 8);
    if (g == NULL || value == NULL) {
        free(g);
        free(value);
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    g->kv = kv;
    g->value = value;
    evr_rng_seed(&g->rng, seed);
    if (kv->zipf) {
        evr_kv_zipf_init(&g->zipf, kv->keys, kv->theta);
    }
    *gen = g;
    return 0;
}

static void kv_gen_destroy(void *gen)
{
    struct kv_gen *g = gen;
    if (g != NULL) {
        free(g->value);
        free(g);
    }
}

static int kv_gen_next(void *gen, struct evr_buf *out)
{
    struct kv_gen *g = gen;
    const struct kv *kv = g->kv;
    uint64_t index = kv->zipf ? evr_kv_zipf_next(&g->zipf, &g->rng)
                              : evr_rng_below(&g->rng, kv->keys);
    uint8_t key[EVR_KV_KEY_MAX];
    uint32_t ks = (uint32_t)kv->key_size;
    evr_kv_key_sized(index, ks, key);
    double x = evr_rng_double(&g->rng);
    if (x < kv->read_fraction) {
        return evr_kv_encode(out, EVR_KV_GET, key, ks, NULL, 0, 0);
    }
    x -= kv->read_fraction;
    if (x < kv->scan_fraction) {
        return evr_kv_encode(out, EVR_KV_SCAN, key, ks, NULL, 0,
                             (uint16_t)kv->scan_length);
    }
    x -= kv->scan_fraction;
    if (x < kv->delete_fraction) {
        return evr_kv_encode(out, EVR_KV_DEL, key, ks, NULL, 0, 0);
    }
    fill_value(evr_rng_next(&g->rng), index, g->value, kv->value_size);
    return evr_kv_encode(out, EVR_KV_PUT, key, ks, g->value,
                         (uint32_t)kv->value_size, 0);
}

const struct evr_app_ops evr_kv_app = {
    .name = "kv",
    .usage = "  --keys N            rows in the table (100000)\n"
             "  --key-size B        bytes per key, 8..255: \"k\" and B - 1 "
             "digits (32)\n"
             "  --value-size B      bytes per value (1024)\n"
             "  --seed S            seed of the values (1)\n"
             "  --read-fraction F   share of gets (0.95)\n"
             "  --delete-fraction F share of deletes (0)\n"
             "  --scan-fraction F   share of scans (0)\n"
             "  --scan-length N     rows per scan (10)\n"
             "  --dist D            key distribution, uniform or zipf "
             "(uniform)\n"
             "  --theta X           zipf skew (0.99)\n",
    .create = kv_create,
    .destroy = kv_destroy,
    .populate = kv_populate,
    .classify = kv_classify,
    .execute = kv_execute,
    .kind = kv_kind,
    .gen_create = kv_gen_create,
    .gen_destroy = kv_gen_destroy,
    .gen_next = kv_gen_next,
};
