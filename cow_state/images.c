/*
 * Reading and writing whole row images by primary key, on the sequential
 * connection. These are the only statements cow_state itself runs against
 * application tables: batch end re-reads touched rows, rollback and delta
 * apply delete touched keys and insert images.
 */
#include <string.h>

#include "cow_state/internal.h"

/* Appends `"c1" = ?k AND ...` over the key columns, parameters from
 * first. */
static int append_key_where(struct evr_buf *sql, const struct evr__table *t,
                            int first)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->npk; i++) {
        char *q = sqlite3_mprintf("%s\"%w\" = ?%d", i ? " AND " : " WHERE ",
                                  t->cols[t->pk[i]], first + i);
        if (q == NULL) {
            return EVR_ENOMEM;
        }
        rc = evr_buf_put(sql, q, strlen(q));
        sqlite3_free(q);
    }
    return rc;
}

int evr__append_cols(struct evr_buf *sql, const struct evr__table *t,
                     bool rowid)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->ncols; i++) {
        char *q = sqlite3_mprintf("%s\"%w\"", i ? ", " : "", t->cols[i]);
        if (q == NULL) {
            return EVR_ENOMEM;
        }
        rc = evr_buf_put(sql, q, strlen(q));
        sqlite3_free(q);
    }
    if (rc == 0 && rowid && t->hidden_rowid) {
        rc = evr_buf_put(sql, ", ", 2);
        if (rc == 0) {
            rc = evr_buf_put(sql, t->rowid_name, strlen(t->rowid_name));
        }
    }
    return rc;
}

static int append_str(struct evr_buf *sql, const char *s)
{
    return evr_buf_put(sql, s, strlen(s));
}

enum stmt_kind { ST_SELECT, ST_DELETE, ST_INSERT, ST_UPDATE };

static int build_sql(const struct evr__table *t, enum stmt_kind kind,
                     struct evr_buf *sql)
{
    int rc;
    switch (kind) {
    case ST_SELECT:
        rc = append_str(sql, "SELECT ");
        rc = rc ? rc : evr__append_cols(sql, t, true);
        rc = rc ? rc : append_str(sql, " FROM ");
        rc = rc ? rc : append_str(sql, t->qname);
        return rc ? rc : append_key_where(sql, t, 1);
    case ST_DELETE:
        rc = append_str(sql, "DELETE FROM ");
        rc = rc ? rc : append_str(sql, t->qname);
        return rc ? rc : append_key_where(sql, t, 1);
    case ST_UPDATE: {
        rc = append_str(sql, "UPDATE ");
        rc = rc ? rc : append_str(sql, t->qname);
        int n = 0;
        for (int i = 0; rc == 0 && i < t->ncols; i++) {
            if (evr__is_key_col(t, i)) {
                continue;
            }
            n++;
            char *q = sqlite3_mprintf("%s\"%w\" = ?%d", n > 1 ? ", " : " SET ",
                                      t->cols[i], n);
            rc = q ? evr_buf_put(sql, q, strlen(q)) : EVR_ENOMEM;
            sqlite3_free(q);
        }
        return rc ? rc : append_key_where(sql, t, n + 1);
    }
    case ST_INSERT:
        rc = append_str(sql, "INSERT INTO ");
        rc = rc ? rc : append_str(sql, t->qname);
        rc = rc ? rc : append_str(sql, "(");
        rc = rc ? rc : evr__append_cols(sql, t, true);
        rc = rc ? rc : append_str(sql, ") VALUES (");
        int n = t->ncols + (t->hidden_rowid ? 1 : 0);
        for (int i = 0; rc == 0 && i < n; i++) {
            rc = append_str(sql, i ? ", ?" : "?");
        }
        return rc ? rc : append_str(sql, ")");
    }
    return EVR_EINVAL;
}

static sqlite3_stmt *table_stmt(struct evr_cow_conn *c, struct evr__table *t,
                                enum stmt_kind kind, struct evr_err *err)
{
    sqlite3_stmt **slot = kind == ST_SELECT   ? &t->st_select
                          : kind == ST_DELETE ? &t->st_delete
                          : kind == ST_UPDATE ? &t->st_update
                                              : &t->st_insert;
    if (*slot != NULL) {
        return *slot;
    }
    struct evr_buf sql;
    evr_buf_init(&sql, 1 << 20);
    int rc = build_sql(t, kind, &sql);
    rc = rc ? rc : evr_buf_put_u8(&sql, 0);
    if (rc != 0) {
        evr_err_set(err, rc, "table '%s': building a statement", t->name);
    } else {
        int src = sqlite3_prepare_v3(c->db, (const char *)sql.data, -1,
                                     SQLITE_PREPARE_PERSISTENT, slot, NULL);
        if (src != SQLITE_OK) {
            evr__sqlite_err(err, c->db, src, t->name);
        }
    }
    evr_buf_free(&sql);
    return *slot;
}

static int bind_key(sqlite3_stmt *st, struct evr__table *t,
                    const uint8_t *key, size_t key_len, struct evr_err *err)
{
    struct evr_reader r;
    evr_reader_init(&r, key, key_len);
    int rc = evr__bind_values(st, 1, &r, t->npk);
    if (rc == 0 && evr_reader_left(&r) != 0) {
        rc = EVR_ECORRUPT;
    }
    if (rc != 0) {
        return evr_err_set(err, rc, "table '%s': malformed key", t->name);
    }
    return 0;
}

int evr__read_row(struct evr_cow_conn *c, struct evr__table *t,
                  const uint8_t *key, size_t key_len, struct evr_buf *img,
                  int64_t *rowid, bool *found, struct evr_err *err)
{
    sqlite3_stmt *st = table_stmt(c, t, ST_SELECT, err);
    if (st == NULL) {
        return err ? err->code : EVR_ESQL;
    }
    int rc = bind_key(st, t, key, key_len, err);
    *found = false;
    *rowid = 0;
    evr_buf_reset(img);
    int step = rc == 0 ? sqlite3_step(st) : SQLITE_DONE;
    if (step == SQLITE_ROW) {
        *found = true;
        for (int i = 0; rc == 0 && i < t->ncols; i++) {
            rc = evr__enc_value(img, sqlite3_column_value(st, i));
        }
        if (t->hidden_rowid) {
            *rowid = sqlite3_column_int64(st, t->ncols);
        }
        if (rc != 0) {
            evr_err_set(err, rc, "table '%s': encoding a row", t->name);
        }
    } else if (step != SQLITE_DONE) {
        rc = evr__sqlite_err(err, c->db, step, t->name);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

/* Runs a bound write statement (unless rc says binding failed) and resets
 * it. */
static int step_write(struct evr_cow_conn *c, struct evr__table *t,
                      sqlite3_stmt *st, int rc, struct evr_err *err)
{
    if (rc == 0) {
        int step = sqlite3_step(st);
        if (step != SQLITE_DONE) {
            rc = evr__sqlite_err(err, c->db, step, t->name);
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

int evr__delete_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *key, size_t key_len, struct evr_err *err)
{
    sqlite3_stmt *st = table_stmt(c, t, ST_DELETE, err);
    if (st == NULL) {
        return err ? err->code : EVR_ESQL;
    }
    return step_write(c, t, st, bind_key(st, t, key, key_len, err), err);
}

int evr__insert_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *img, size_t img_len, const int64_t *rowid,
                    struct evr_err *err)
{
    sqlite3_stmt *st = table_stmt(c, t, ST_INSERT, err);
    if (st == NULL) {
        return err ? err->code : EVR_ESQL;
    }
    struct evr_reader r;
    evr_reader_init(&r, img, img_len);
    int rc = evr__bind_values(st, 1, &r, t->ncols);
    if (rc == 0 && evr_reader_left(&r) != 0) {
        rc = EVR_ECORRUPT;
    }
    if (rc != 0) {
        evr_err_set(err, rc, "table '%s': malformed row image", t->name);
    }
    if (rc == 0 && t->hidden_rowid && rowid != NULL) {
        sqlite3_bind_int64(st, t->ncols + 1, *rowid);
    }
    return step_write(c, t, st, rc, err);
}

int evr__update_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *img, size_t img_len, struct evr_err *err)
{
    sqlite3_stmt *st = table_stmt(c, t, ST_UPDATE, err);
    if (st == NULL) {
        return err ? err->code : EVR_ESQL;
    }
    /* Non-key values to ?1..?m in column order, key values to ?m+1... */
    struct evr_reader r;
    evr_reader_init(&r, img, img_len);
    int m = t->ncols - t->npk;
    int param = 1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->ncols; i++) {
        if (evr__is_key_col(t, i)) {
            struct evr_reader at = r;
            rc = evr__skip_value(&r);
            for (int k = 0; rc == 0 && k < t->npk; k++) {
                if (t->pk[k] == i) {
                    rc = evr__bind_value(st, m + 1 + k, &at);
                }
            }
        } else {
            rc = evr__bind_value(st, param++, &r);
        }
    }
    if (rc == 0 && evr_reader_left(&r) != 0) {
        rc = EVR_ECORRUPT;
    }
    if (rc != 0) {
        evr_err_set(err, rc, "table '%s': malformed row image", t->name);
    }
    return step_write(c, t, st, rc, err);
}

int evr__exec(struct evr_cow_conn *c, const char *sql, struct evr_err *err)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, c->db, rc, sql);
    }
    return 0;
}

int evr__seq_txn(struct evr_cow *cow, bool begin, struct evr_err *err)
{
    struct evr_cow_conn *c = evr__seq(cow);
    sqlite3_stmt **slot = begin ? &cow->st_begin : &cow->st_commit;
    const char *sql = begin ? "BEGIN" : "COMMIT";
    if (*slot == NULL) {
        int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                    slot, NULL);
        if (rc != SQLITE_OK) {
            return evr__sqlite_err(err, c->db, rc, sql);
        }
    }
    int rc = sqlite3_step(*slot);
    sqlite3_reset(*slot);
    if (rc != SQLITE_DONE) {
        return evr__sqlite_err(err, c->db, rc, sql);
    }
    return 0;
}
