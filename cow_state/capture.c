/*
 * Change capture, batch end and rollback.
 *
 * The preupdate hook runs on whatever connection makes a change, inside its
 * write transaction. SQLite lets one connection write at a time, but that
 * lock is a file lock the compiler and TSan cannot see, so the touch map is
 * also guarded by cow->capture_mu (never contended in practice).
 *
 * Invariants, for the executing batch b and every key k of a table:
 *   - k in b.touch  <=> some statement changed (or tried to) the row with
 *                      key k since batch begin;
 *   - touch(k).pre  == the row with key k at batch begin (absent or image);
 *   - a key not in b.touch has the same row now as at batch begin.
 * So restoring every touched key to its pre image restores the batch-begin
 * state exactly, whatever happened in between (failed statements, ROLLBACKs
 * and REPLACE conflicts included: SQLite fires the hook for the rows REPLACE
 * deletes).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "cow_state/internal.h"

/* ------------------------------------------------------------ touch map */

int evr__batch_init(struct evr__batch *b, size_t bytes_max)
{
    memset(b, 0, sizeof *b);
    b->pre_bytes_max = bytes_max;
    evr_arena_init(&b->arena, bytes_max > SIZE_MAX / 2 ? SIZE_MAX
                                                       : 2 * bytes_max);
    return 0;
}

void evr__batch_free(struct evr__batch *b)
{
    evr_arena_free(&b->arena);
    free(b->touch);
    free(b->slots);
    memset(b, 0, sizeof *b);
}

void evr__batch_clear(struct evr__batch *b)
{
    evr_arena_reset(&b->arena);
    if (b->slots != NULL) {
        memset(b->slots, 0, (b->slots_mask + 1) * sizeof *b->slots);
    }
    b->ntouch = 0;
    b->pre_bytes = 0;
    b->post_bytes = 0;
    b->posts_dropped = false;
    b->rows_changed = 0;
    b->capture_rc = 0;
    b->state = EVR__BATCH_FREE;
}

static int grow_slots(struct evr__batch *b)
{
    size_t cap = b->slots ? 2 * (b->slots_mask + 1) : 1024;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) {
        return EVR_ENOMEM;
    }
    for (size_t i = 0; i < b->ntouch; i++) {
        size_t s = b->touch[i]->key_hash & (cap - 1);
        while (slots[s] != 0) {
            s = (s + 1) & (cap - 1);
        }
        slots[s] = (uint32_t)(i + 1);
    }
    free(b->slots);
    b->slots = slots;
    b->slots_mask = cap - 1;
    return 0;
}

static int grow_touch(struct evr__batch *b)
{
    size_t cap = b->touch_cap ? 2 * b->touch_cap : 256;
    if (cap > UINT32_MAX / 2) {
        return EVR_ELIMIT;
    }
    struct evr__touch **t = realloc(b->touch, cap * sizeof *t);
    if (t == NULL) {
        return EVR_ENOMEM;
    }
    b->touch = t;
    b->touch_cap = cap;
    return 0;
}

struct evr__touch *evr__batch_find(struct evr__batch *b,
                                   const struct evr__table *t,
                                   uint64_t key_hash, const uint8_t *key,
                                   size_t key_len)
{
    if (b->slots == NULL) {
        return NULL;
    }
    for (size_t s = key_hash & b->slots_mask; b->slots[s] != 0;
         s = (s + 1) & b->slots_mask) {
        struct evr__touch *x = b->touch[b->slots[s] - 1];
        if (x->key_hash == key_hash && x->t == t && x->key_len == key_len &&
            memcmp(x->key, key, key_len) == 0) {
            return x;
        }
    }
    return NULL;
}

int evr__batch_add(struct evr__batch *b, struct evr__table *t,
                   uint64_t key_hash, const uint8_t *key, size_t key_len,
                   const uint8_t *pre, size_t pre_len, int64_t pre_rowid)
{
    assert(evr__batch_find(b, t, key_hash, key, key_len) == NULL);
    int rc = 0;
    if (b->slots == NULL || 2 * (b->ntouch + 1) > b->slots_mask + 1) {
        rc = grow_slots(b);
    }
    if (rc == 0 && b->ntouch == b->touch_cap) {
        rc = grow_touch(b);
    }
    if (rc != 0) {
        return rc;
    }
    /* One allocation: a touch is recorded whole or not at all. */
    size_t extra = key_len + (pre ? pre_len : 0);
    if (b->pre_bytes + sizeof(struct evr__touch) + extra > b->pre_bytes_max) {
        return EVR_ELIMIT;
    }
    struct evr__touch *x = evr_arena_alloc(&b->arena, sizeof *x + extra);
    if (x == NULL) {
        return b->arena.limit_hit ? EVR_ELIMIT : EVR_ENOMEM;
    }
    b->pre_bytes += sizeof *x + extra;
    memset(x, 0, sizeof *x);
    x->t = t;
    x->key_hash = key_hash;
    x->key = (uint8_t *)(x + 1);
    x->key_len = (uint32_t)key_len;
    memcpy(x->key, key, key_len);
    if (pre != NULL) {
        x->pre = x->key + key_len;
        x->pre_len = (uint32_t)pre_len;
        memcpy(x->pre, pre, pre_len);
        x->pre_rowid = pre_rowid;
        x->pre_hash = evr__row_hash(t, x->pre, x->pre_len);
    }
    size_t s = key_hash & b->slots_mask;
    while (b->slots[s] != 0) {
        s = (s + 1) & b->slots_mask;
    }
    b->touch[b->ntouch++] = x;
    b->slots[s] = (uint32_t)b->ntouch;
    return 0;
}

/* ------------------------------------------------------------ the hook */

typedef int (*preupdate_value_fn)(sqlite3 *, int, sqlite3_value **);

/* Encodes columns pos[0..n-1] (key values, canonical) or, with pos NULL,
 * every column (an image). */
static int encode_cols(sqlite3 *db, preupdate_value_fn get,
                       const struct evr__table *t, const int *pos, int n,
                       struct evr_buf *out)
{
    for (int i = 0; i < n; i++) {
        int col = pos ? pos[i] : i;
        sqlite3_value *v = NULL;
        if (get(db, t->col_cid[col], &v) != SQLITE_OK || v == NULL) {
            return EVR_ESQL;
        }
        int rc = pos ? evr__enc_key_value(out, v) : evr__enc_value(out, v);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Records the key of the old (use_old) or new row; on its first touch also
 * its pre image: the old row itself, or "absent" for a new key. */
static int capture_key(struct evr_cow_conn *c, struct evr__batch *b,
                       struct evr__table *t, bool use_old, int64_t rowid)
{
    preupdate_value_fn get = use_old ? sqlite3_preupdate_old
                                     : sqlite3_preupdate_new;
    struct evr_buf *s = &c->scratch;
    evr_buf_reset(s);
    int rc = encode_cols(c->db, get, t, t->pk, t->npk, s);
    if (rc != 0) {
        return rc;
    }
    size_t key_len = s->len;
    uint64_t kh = evr__key_hash(t, s->data, key_len);
    struct evr__touch *x = evr__batch_find(b, t, kh, s->data, key_len);
    if (!use_old) {
        /* A value too large to re-read at batch end fails its request now
         * rather than the batch later. */
        for (int i = 0; i < t->ncols; i++) {
            sqlite3_value *v = NULL;
            if (sqlite3_preupdate_new(c->db, t->col_cid[i], &v) == SQLITE_OK &&
                v != NULL &&
                (uint32_t)sqlite3_value_bytes(v) > EVR_VALUE_BYTES_MAX) {
                return EVR_ELIMIT;
            }
        }
    }
    if (x == NULL && !use_old) {
        /* First touch through a new row: no row had this key. */
        rc = evr__batch_add(b, t, kh, s->data, key_len, NULL, 0, 0);
    } else if (x == NULL) {
        rc = encode_cols(c->db, sqlite3_preupdate_old, t, NULL, t->ncols, s);
        if (rc == 0) {
            rc = evr__batch_add(b, t, kh, s->data, key_len,
                                s->data + key_len, s->len - key_len, rowid);
        }
    }
    if (rc != 0) {
        return rc;
    }
    x = x ? x : b->touch[b->ntouch - 1];
    x->last_seq = ++c->cow->hook_seq;
    x->foreign = x->foreign || c != evr__seq(c->cow);
    return 0;
}

static void on_preupdate(void *arg, sqlite3 *db, int op, const char *zdb,
                         const char *zname, sqlite3_int64 key1,
                         sqlite3_int64 key2)
{
    struct evr_cow_conn *c = arg;
    assert(c->db == db);
    /* After a failure on this connection, its open transaction is doomed
     * (the executor rolls it back): a later "first touch" in it could see a
     * row this very transaction already changed, so record nothing more. */
    if (c->capture_off || c->capture_rc != 0 || strcmp(zdb, "main") != 0) {
        return;
    }
    struct evr_cow *cow = c->cow;
    uint64_t t0 = evr_now_ns();
    pthread_mutex_lock(&cow->capture_mu);
    struct evr__batch *b = cow->executing;
    int rc = 0;
    if (b == NULL) {
        if (!cow->stray_write) {
            cow->stray_write = true;
            snprintf(cow->stray_table, sizeof cow->stray_table, "%s", zname);
        }
    } else {
        struct evr__table *t = evr__schema_find(&cow->schema, zname);
        if (t == NULL) {
            rc = EVR_ESCHEMA;
        }
        /* Only a hidden rowid is remembered: an INTEGER PRIMARY KEY's
         * rowid is already a column of the image. */
        if (!t->hidden_rowid) {
            key1 = key2 = 0;
        }
        if (rc == 0 && (op == SQLITE_DELETE || op == SQLITE_UPDATE)) {
            rc = capture_key(c, b, t, true, key1);
        }
        if (rc == 0 && (op == SQLITE_INSERT || op == SQLITE_UPDATE)) {
            rc = capture_key(c, b, t, false, key2);
        }
        if (rc != 0) {
            b->capture_rc = b->capture_rc ? b->capture_rc : rc;
            c->capture_rc = rc;
        }
    }
    pthread_mutex_unlock(&cow->capture_mu);
    c->hook_calls++;
    c->hook_ns += evr_now_ns() - t0;
}

void evr__capture_install(struct evr_cow_conn *c)
{
    sqlite3_preupdate_hook(c->db, on_preupdate, c);
}

/* ------------------------------------------------------------ batch end */

static bool same_image(const struct evr__touch *x)
{
    if (x->pre == NULL || !x->post_present) {
        return x->pre == NULL && !x->post_present;
    }
    if (x->post == x->pre) {
        return x->pre_rowid == x->post_rowid;
    }
    /* A dropped final image differs (it was not the pre image). */
    return x->post != NULL && x->pre_len == x->post_len &&
           x->pre_rowid == x->post_rowid &&
           memcmp(x->pre, x->post, x->pre_len) == 0;
}

/* Re-reads touch x's row into its post fields. */
static int read_post(struct evr_cow_conn *c, struct evr__batch *b,
                     struct evr__touch *x, struct evr_buf *img,
                     struct evr_err *err)
{
    bool found = false;
    int rc = evr__read_row(c, x->t, x->key, x->key_len, img, &x->post_rowid,
                           &found, err);
    x->post = NULL;
    x->post_len = 0;
    x->post_present = false;
    x->post_hash = (evr_h128){0, 0};
    if (rc != 0 || !found) {
        return rc;
    }
    x->post_present = true;
    if (x->pre != NULL && x->pre_len == img->len &&
        memcmp(x->pre, img->data, img->len) == 0) {
        /* Touched but unchanged (failed or undone statements): share the
         * pre image instead of holding a second copy. */
        x->post = x->pre;
        x->post_len = x->pre_len;
        x->post_hash = x->pre_hash;
        return 0;
    }
    x->post_hash = evr__row_hash(x->t, img->data, img->len);
    /* Final images serve only deltas. A key re-read again (early re-reads,
     * then batch end) reuses its copy when it fits; new copies come out of
     * their own budget, so they can never starve pre-image capture. When
     * that budget is spent, keep the hashes (the digest needs them) and let
     * the batch's delta go. */
    if (x->post_own != NULL && x->post_cap >= img->len) {
        memcpy(x->post_own, img->data, img->len);
    } else if (!b->posts_dropped &&
               b->post_bytes + img->len <= b->pre_bytes_max) {
        x->post_own = evr_arena_dup(&b->arena, img->data, img->len);
        x->post_cap = x->post_own ? (uint32_t)img->len : 0;
        b->post_bytes += x->post_cap;
    } else {
        x->post_own = NULL;
        x->post_cap = 0;
    }
    x->post = x->post_own;
    x->post_len = (uint32_t)img->len;
    if (x->post == NULL) {
        b->posts_dropped = true;
    }
    return 0;
}

/*
 * A touch's post image is current if it was read after the key's last
 * change and every change was made on the sequential connection (whose own
 * committed changes it sees). Changes made on other connections — only
 * possible with wrong hints — are always re-read at batch end, when no
 * other connection runs.
 */
static bool post_current(const struct evr__touch *x)
{
    return !x->foreign && x->read_seq != 0 && x->last_seq <= x->read_seq;
}

/* Re-reads, in one read transaction on the sequential connection, every
 * touch that is not current; with `own_only`, only those the sequential
 * connection alone changed. seq: the hook sequence the reads are as of. */
static int read_posts(struct evr_cow *cow, struct evr__batch *b, bool own_only,
                      uint64_t seq, struct evr_err *err)
{
    struct evr_cow_conn *c = evr__seq(cow);
    struct evr_buf img;
    evr_buf_init(&img, SIZE_MAX);
    int rc = evr__seq_txn(cow, true, err);
    for (size_t i = 0; rc == 0 && i < b->ntouch; i++) {
        struct evr__touch *x = b->touch[i];
        if (post_current(x) || (own_only && x->foreign) || x->last_seq > seq) {
            continue;
        }
        rc = read_post(c, b, x, &img, err);
        x->read_seq = rc == 0 ? seq : 0; /* a failed read is no read */
    }
    if (rc == 0) {
        rc = evr__seq_txn(cow, false, err);
    } else {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    evr_buf_free(&img);
    return rc;
}

int evr_cow_batch_refresh(struct evr_cow *cow, struct evr_err *err)
{
    struct evr__batch *b = cow->executing;
    if (b == NULL || !cow->opts.capture) {
        return 0;
    }
    if (!sqlite3_get_autocommit(evr__seq(cow)->db)) {
        return evr_err_set(err, EVR_ESTATE,
                           "refresh with a transaction open on the "
                           "sequential connection");
    }
    uint64_t t0 = evr_now_ns();
    /* Held throughout: the hook may add touches (wrong hints) meanwhile. */
    pthread_mutex_lock(&cow->capture_mu);
    int rc = read_posts(cow, b, true, cow->hook_seq, err);
    pthread_mutex_unlock(&cow->capture_mu);
    cow->stats.refresh_ns += evr_now_ns() - t0;
    return rc;
}

int evr__batch_finalize(struct evr_cow *cow, struct evr__batch *b,
                        struct evr_err *err)
{
    assert(b->state == EVR__BATCH_EXECUTING);
    int rc = read_posts(cow, b, false, cow->hook_seq, err);
    if (rc != 0) {
        return rc;
    }
    b->rows_changed = 0;
    for (size_t i = 0; i < b->ntouch; i++) {
        struct evr__touch *x = b->touch[i];
        x->changed = !same_image(x);
        if (!x->changed) {
            continue;
        }
        b->rows_changed++;
        struct evr__table *t = x->t;
        uint32_t k = evr__bucket_of(x->key_hash);
        evr_h128 d = evr_h128_sub(x->post_hash, x->pre_hash);
        t->buckets[k] = evr_h128_add(t->buckets[k], d);
        t->root_dirty = true;
    }
    b->post_root = evr__digest_root(&cow->schema);
    b->state = EVR__BATCH_EXECUTED;
    return 0;
}

/* ------------------------------------------------------------ rollback */

/*
 * Triggers must not run while rows are put back: they would change rows
 * outside the touched set. (Foreign-key actions cannot run: replica
 * connections keep foreign_keys OFF.) Switching triggers off or on expires
 * every prepared statement of the connection, so it is done only when the
 * schema has triggers.
 */
void evr__set_side_effects(struct evr_cow *cow, sqlite3 *db, int on)
{
    if (cow->schema.triggers > 0) {
        int out;
        sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, on, &out);
    }
}

/* A row that existed before and after the batch, with the same hidden
 * rowid, in a table whose only unique index is the key: its pre image can
 * be written over it in place, with no clash possible whatever the order. */
/* Whether two images store byte-identical key values (1 and 1.0 are one key
 * but not one stored value: an in-place update could not restore that). */
static bool same_stored_key(const struct evr__table *t, const uint8_t *a,
                            uint32_t alen, const uint8_t *b, uint32_t blen)
{
    struct evr_reader ra, rb;
    evr_reader_init(&ra, a, alen);
    evr_reader_init(&rb, b, blen);
    for (int i = 0; i < t->ncols; i++) {
        size_t a0 = ra.pos;
        size_t b0 = rb.pos;
        if (evr__skip_value(&ra) != 0 || evr__skip_value(&rb) != 0) {
            return false;
        }
        if (evr__is_key_col(t, i) &&
            (ra.pos - a0 != rb.pos - b0 ||
             memcmp(a + a0, b + b0, ra.pos - a0) != 0)) {
            return false;
        }
    }
    return true;
}

/* A row that existed before and after the batch, with the same hidden rowid
 * and the same stored key, in a table whose only unique index is the key:
 * its pre image can be written over it in place, with no clash possible
 * whatever the order. */
static bool restore_in_place(const struct evr__touch *x, bool finalized)
{
    return finalized && x->t->in_place && x->pre != NULL && x->post != NULL &&
           x->pre_rowid == x->post_rowid &&
           same_stored_key(x->t, x->pre, x->pre_len, x->post, x->post_len);
}

static int restore_pre_images(struct evr_cow_conn *c, struct evr__batch *b,
                              bool all, struct evr_err *err)
{
    int rc = evr__exec(c, "BEGIN IMMEDIATE", err);
    /* Rows updated in place first; of the others, delete every touched key,
     * then insert the pre images: the batch-begin state had no key clash,
     * so no insert can clash. */
    for (size_t i = 0; rc == 0 && i < b->ntouch; i++) {
        struct evr__touch *x = b->touch[i];
        if (!all && !x->changed) {
            continue;
        }
        rc = restore_in_place(x, !all)
                 ? evr__update_row(c, x->t, x->pre, x->pre_len, err)
                 : evr__delete_row(c, x->t, x->key, x->key_len, err);
    }
    for (size_t i = 0; rc == 0 && i < b->ntouch; i++) {
        struct evr__touch *x = b->touch[i];
        if ((all || x->changed) && x->pre != NULL &&
            !restore_in_place(x, !all)) {
            rc = evr__insert_row(c, x->t, x->pre, x->pre_len, &x->pre_rowid,
                                 err);
        }
    }
    if (rc == 0) {
        rc = evr__exec(c, "COMMIT", err);
    }
    if (rc != 0) {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int evr__batch_undo(struct evr_cow *cow, struct evr__batch *b,
                    struct evr_err *err)
{
    assert(b->state != EVR__BATCH_FREE);
    struct evr_cow_conn *c = evr__seq(cow);
    bool finalized = b->state == EVR__BATCH_EXECUTED;
    c->capture_off = true;
    evr__set_side_effects(cow, c->db, 0);
    int rc = restore_pre_images(c, b, !finalized, err);
    evr__set_side_effects(cow, c->db, 1);
    c->capture_off = false;
    if (rc != 0) {
        return evr_err_wrap(err, rc, "rolling back batch %llu",
                            (unsigned long long)b->op);
    }
    if (!finalized) {
        return 0; /* the digest never saw this batch */
    }
    for (size_t i = 0; i < b->ntouch; i++) {
        struct evr__touch *x = b->touch[i];
        if (x->changed) {
            uint32_t k = evr__bucket_of(x->key_hash);
            evr_h128 d = evr_h128_sub(x->post_hash, x->pre_hash);
            x->t->buckets[k] = evr_h128_sub(x->t->buckets[k], d);
            x->t->root_dirty = true;
        }
    }
    evr_h128 root = evr__digest_root(&cow->schema);
    if (!evr_h128_eq(root, b->pre_root)) {
        return evr_err_set(err, EVR_EMISMATCH,
                           "rolling back batch %llu: digest does not return "
                           "to its pre-batch value",
                           (unsigned long long)b->op);
    }
    return 0;
}
