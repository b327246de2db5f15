/*
 * Batch deltas: the rows one batch wrote, to repair a replica whose own
 * execution of the batch diverged.
 *
 * Format (integers little-endian):
 *
 *   offset size  field
 *   0      8     magic "EVRDELTA"
 *   8      4     version (1)
 *   12     4     entry count E
 *   16     8     op-number of the batch
 *   24     16    base state root (before the batch)
 *   40     16    result state root (after the batch)
 *   56     8     body length L
 *   64     8     XXH3-64 of the body
 *   72     8     XXH3-64 of bytes 0..71
 *   80     L     body
 *
 *   body:  u16 T, then T table names (u16 length, bytes), in name order;
 *          then E entries sorted by (table, key bytes):
 *            u16 table (index into the names), u8 kind (1 put, 2 delete),
 *            u32 key length, key values,
 *            put only: u32 image length, image values
 *
 * Only rows whose final image differs from their pre-batch image appear, so
 * two replicas that made the same changes export identical bytes. Hidden
 * rowids are not carried: applying a put lets SQLite choose one (they are
 * never part of a row's identity or of the digest).
 */
#include <stdlib.h>
#include <string.h>

#include "cow_state/internal.h"

#define DELTA_MAGIC "EVRDELTA"
#define DELTA_VERSION 1
#define DELTA_HEADER_BYTES 80
#define DELTA_PUT 1
#define DELTA_DEL 2

static int table_index(const struct evr_cow *cow, const struct evr__table *t)
{
    return (int)(t - cow->schema.tables);
}

static int cmp_touch(const void *a, const void *b)
{
    const struct evr__touch *x = *(const struct evr__touch *const *)a;
    const struct evr__touch *y = *(const struct evr__touch *const *)b;
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1; /* schema tables are in name order */
    }
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0) {
        return c;
    }
    return x->key_len < y->key_len ? -1 : x->key_len > y->key_len;
}

static int put_header(struct evr_buf *out, size_t at, uint32_t entries,
                      const struct evr__batch *b)
{
    uint8_t *h = out->data + at;
    size_t body_len = out->len - at - DELTA_HEADER_BYTES;
    memcpy(h, DELTA_MAGIC, 8);
    evr_store_u32(h + 8, DELTA_VERSION);
    evr_store_u32(h + 12, entries);
    evr_store_u64(h + 16, b->op);
    evr_h128_to_bytes(b->pre_root, h + 24);
    evr_h128_to_bytes(b->post_root, h + 40);
    evr_store_u64(h + 56, body_len);
    evr_store_u64(h + 64, evr_hash64(h + DELTA_HEADER_BYTES, body_len, 0));
    evr_store_u64(h + 72, evr_hash64(h, 72, 0));
    return 0;
}

static int put_tables(struct evr_cow *cow, struct evr__touch **v, size_t n,
                      int *local, struct evr_buf *out)
{
    int count = 0;
    for (int i = 0; i < cow->schema.ntables; i++) {
        local[i] = -1;
    }
    for (size_t i = 0; i < n; i++) {
        int ti = table_index(cow, v[i]->t);
        if (local[ti] < 0) {
            local[ti] = count++;
        }
    }
    int rc = evr_buf_put_u16(out, (uint16_t)count);
    for (int i = 0; rc == 0 && i < cow->schema.ntables; i++) {
        if (local[i] >= 0) {
            const char *name = cow->schema.tables[i].name;
            size_t len = strlen(name);
            if (len > UINT16_MAX) {
                return EVR_ELIMIT; /* a name the format cannot carry */
            }
            rc = evr_buf_put_u16(out, (uint16_t)len);
            rc = rc ? rc : evr_buf_put(out, name, len);
        }
    }
    return rc;
}

static int put_entry(const struct evr__touch *x, int table,
                     struct evr_buf *out)
{
    int rc = evr_buf_put_u16(out, (uint16_t)table);
    rc = rc ? rc : evr_buf_put_u8(out, x->post_present ? DELTA_PUT : DELTA_DEL);
    rc = rc ? rc : evr_buf_put_u32(out, x->key_len);
    rc = rc ? rc : evr_buf_put(out, x->key, x->key_len);
    if (rc == 0 && x->post_present) {
        rc = evr_buf_put_u32(out, x->post_len);
        rc = rc ? rc : evr_buf_put(out, x->post, x->post_len);
    }
    return rc;
}

int evr__delta_encode(struct evr_cow *cow, struct evr__batch *b,
                      struct evr_buf *out, struct evr_err *err)
{
    if (b->state != EVR__BATCH_EXECUTED) {
        return evr_err_set(err, EVR_ESTATE, "batch %llu is not finalized",
                           (unsigned long long)b->op);
    }
    if (b->posts_dropped) {
        return evr_err_set(err, EVR_ENOENT,
                           "the delta of batch %llu was not kept: its final "
                           "images exceed the batch memory limit",
                           (unsigned long long)b->op);
    }
    struct evr__touch **v = malloc((b->rows_changed + 1) * sizeof *v);
    int *local = malloc(((size_t)cow->schema.ntables + 1) * sizeof *local);
    int rc = v && local ? 0 : EVR_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; rc == 0 && i < b->ntouch; i++) {
        if (b->touch[i]->changed) {
            v[n++] = b->touch[i];
        }
    }
    size_t at = out->len;
    if (rc == 0) {
        qsort(v, n, sizeof *v, cmp_touch);
        rc = evr_buf_reserve(out, DELTA_HEADER_BYTES);
    }
    if (rc == 0) {
        out->len += DELTA_HEADER_BYTES;
        rc = put_tables(cow, v, n, local, out);
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put_entry(v[i], local[table_index(cow, v[i]->t)], out);
    }
    if (rc == 0) {
        put_header(out, at, (uint32_t)n, b);
    } else {
        out->len = at;
        evr_err_set(err, rc, "encoding the delta of batch %llu: %s",
                    (unsigned long long)b->op, evr_strerror(rc));
    }
    free(v);
    free(local);
    return rc;
}

int evr_cow_delta_export(struct evr_cow *cow, uint64_t op, struct evr_buf *out,
                         struct evr_err *err)
{
    for (int i = 0; i < cow->ring_count; i++) {
        struct evr__batch *b = evr__ring_at(cow, i);
        if (b->op == op) {
            return evr__delta_encode(cow, b, out, err);
        }
    }
    if (cow->opts.delta_retain > 0) {
        struct evr__delta_slot *d = &cow->deltas[op % cow->opts.delta_retain];
        if (d->batch.state == EVR__BATCH_EXECUTED && d->batch.op == op) {
            return evr__delta_encode(cow, &d->batch, out, err);
        }
    }
    return evr_err_set(err, EVR_ENOENT,
                       "the delta of batch %llu is not retained",
                       (unsigned long long)op);
}

/* ------------------------------------------------------------ apply */

struct delta_entry {
    struct evr__table *t;
    int kind;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *img;
    uint32_t img_len;
};

struct delta {
    uint64_t op;
    evr_h128 base;
    evr_h128 result;
    uint32_t n;
    struct delta_entry *e;
};

static int parse_header(const uint8_t *p, size_t len, struct delta *d,
                        struct evr_reader *body, struct evr_err *err)
{
    if (len < DELTA_HEADER_BYTES || memcmp(p, DELTA_MAGIC, 8) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "not an evr delta");
    }
    if (evr_load_u64(p + 72) != evr_hash64(p, 72, 0)) {
        return evr_err_set(err, EVR_ECORRUPT, "delta header checksum fails");
    }
    if (evr_load_u32(p + 8) != DELTA_VERSION) {
        return evr_err_set(err, EVR_ECORRUPT, "delta version %u unsupported",
                           evr_load_u32(p + 8));
    }
    uint64_t body_len = evr_load_u64(p + 56);
    if (body_len != len - DELTA_HEADER_BYTES) {
        return evr_err_set(err, EVR_ECORRUPT,
                           "delta body is %zu bytes, header says %llu",
                           len - DELTA_HEADER_BYTES,
                           (unsigned long long)body_len);
    }
    if (evr_load_u64(p + 64) !=
        evr_hash64(p + DELTA_HEADER_BYTES, body_len, 0)) {
        return evr_err_set(err, EVR_ECORRUPT, "delta body checksum fails");
    }
    d->n = evr_load_u32(p + 12);
    d->op = evr_load_u64(p + 16);
    d->base = evr_h128_from_bytes(p + 24);
    d->result = evr_h128_from_bytes(p + 40);
    evr_reader_init(body, p + DELTA_HEADER_BYTES, body_len);
    return 0;
}

static int parse_tables(struct evr_cow *cow, struct evr_reader *r,
                        struct evr__table ***out, int *count,
                        struct evr_err *err)
{
    *count = evr_get_u16(r);
    struct evr__table **tables = calloc((size_t)*count + 1, sizeof *tables);
    *out = tables;
    if (tables == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < *count; i++) {
        uint16_t n = evr_get_u16(r);
        const uint8_t *name = evr_get_bytes(r, n);
        if (name == NULL) {
            return evr_err_set(err, EVR_ECORRUPT, "delta table list");
        }
        char *buf = malloc((size_t)n + 1);
        if (buf == NULL) {
            return evr_err_set(err, EVR_ENOMEM, "out of memory");
        }
        memcpy(buf, name, n);
        buf[n] = '\0';
        tables[i] = evr__schema_find(&cow->schema, buf);
        int rc = tables[i] ? 0
                           : evr_err_set(err, EVR_ESCHEMA,
                                         "delta names table '%.200s', which "
                                         "this database does not have",
                                         buf);
        free(buf);
        if (rc != 0) {
            return rc;
        }
    }
    return r->ok ? 0 : evr_err_set(err, EVR_ECORRUPT, "delta table list");
}

static int parse_entry(struct evr_reader *r, struct evr__table **tables,
                       int ntables, struct delta_entry *e)
{
    uint16_t ti = evr_get_u16(r);
    e->kind = evr_get_u8(r);
    e->key_len = evr_get_u32(r);
    e->key = evr_get_bytes(r, e->key_len);
    e->img = NULL;
    e->img_len = 0;
    if (e->kind == DELTA_PUT) {
        e->img_len = evr_get_u32(r);
        e->img = evr_get_bytes(r, e->img_len);
    }
    if (!r->ok || ti >= ntables ||
        (e->kind != DELTA_PUT && e->kind != DELTA_DEL)) {
        return EVR_ECORRUPT;
    }
    e->t = tables[ti];
    if (!evr__values_valid(e->key, e->key_len, e->t->npk)) {
        return EVR_ECORRUPT;
    }
    if (e->img && !evr__values_valid(e->img, e->img_len, e->t->ncols)) {
        return EVR_ECORRUPT;
    }
    return 0;
}

static int parse_delta(struct evr_cow *cow, const uint8_t *p, size_t len,
                       struct delta *d, struct evr_err *err)
{
    struct evr_reader r;
    int rc = parse_header(p, len, d, &r, err);
    if (rc != 0) {
        return rc;
    }
    /* Every entry takes at least 7 bytes: bound n before allocating. */
    if (d->n > len / 7) {
        return evr_err_set(err, EVR_ECORRUPT, "delta entry count too large");
    }
    d->e = calloc((size_t)d->n + 1, sizeof *d->e);
    if (d->e == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    struct evr__table **tables = NULL;
    int ntables = 0;
    rc = parse_tables(cow, &r, &tables, &ntables, err);
    for (uint32_t i = 0; rc == 0 && i < d->n; i++) {
        if (parse_entry(&r, tables, ntables, &d->e[i]) != 0) {
            rc = evr_err_set(err, EVR_ECORRUPT, "delta entry %u is malformed",
                             i);
        }
    }
    if (rc == 0 && evr_reader_left(&r) != 0) {
        rc = evr_err_set(err, EVR_ECORRUPT, "delta has trailing bytes");
    }
    free(tables);
    return rc;
}

static int write_entries(struct evr_cow *cow, const struct delta *d,
                         struct evr_err *err)
{
    struct evr_cow_conn *c = evr__seq(cow);
    c->internal = true;
    evr__set_side_effects(cow, c->db, 0);
    int rc = evr__exec(c, "BEGIN IMMEDIATE", err);
    for (uint32_t i = 0; rc == 0 && i < d->n; i++) {
        rc = evr__delete_row(c, d->e[i].t, d->e[i].key, d->e[i].key_len, err);
    }
    for (uint32_t i = 0; rc == 0 && i < d->n; i++) {
        if (d->e[i].kind == DELTA_PUT) {
            rc = evr__insert_row(c, d->e[i].t, d->e[i].img, d->e[i].img_len,
                                 NULL, err);
        }
    }
    /* As for any request: what the hook could not capture must not commit. */
    int cap = evr_cow_conn_take_capture_error(c);
    if (rc == 0 && cap != 0) {
        rc = evr_err_set(err, cap, "delta of batch %llu: change capture "
                         "failed (%s)",
                         (unsigned long long)d->op, evr_strerror(cap));
    }
    rc = rc ? rc : evr__exec(c, "COMMIT", err);
    if (rc != 0) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    evr__set_side_effects(cow, c->db, 1);
    c->internal = false;
    return rc;
}

static int apply_parsed(struct evr_cow *cow, uint64_t op,
                        const struct delta *d, struct evr_err *err)
{
    char want[EVR_H128_HEX_LEN + 1], have[EVR_H128_HEX_LEN + 1];
    evr_h128 now = evr_cow_digest(cow);
    if (!evr_h128_eq(now, d->base)) {
        evr_h128_to_hex(d->base, want);
        evr_h128_to_hex(now, have);
        return evr_err_set(err, EVR_EMISMATCH,
                           "delta of batch %llu applies to state %s, but "
                           "this state is %s",
                           (unsigned long long)d->op, want, have);
    }
    int rc = evr_cow_batch_begin(cow, op, err);
    if (rc != 0) {
        return rc;
    }
    rc = write_entries(cow, d, err);
    evr_h128 got;
    rc = rc ? rc : evr_cow_batch_end(cow, &got, err);
    if (rc == 0 && !evr_h128_eq(got, d->result)) {
        evr_h128_to_hex(d->result, want);
        evr_h128_to_hex(got, have);
        rc = evr_err_set(err, EVR_EMISMATCH,
                         "delta of batch %llu should give state %s but "
                         "gave %s",
                         (unsigned long long)d->op, want, have);
    }
    if (rc != 0) {
        struct evr_err ignored;
        evr_cow_rollback(cow, op, &ignored);
    }
    return rc;
}

int evr_cow_delta_apply(struct evr_cow *cow, uint64_t op, const void *delta,
                        size_t len, struct evr_err *err)
{
    if (!cow->opts.capture) {
        return evr_err_set(err, EVR_ESTATE, "delta apply needs capture");
    }
    struct delta d = {0};
    int rc = parse_delta(cow, delta, len, &d, err);
    if (rc == 0) {
        rc = apply_parsed(cow, op, &d, err);
    }
    free(d.e);
    return rc;
}
