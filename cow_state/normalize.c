/*
 * Rows stored before an ALTER TABLE ADD COLUMN ... DEFAULT x.
 *
 * Such a row's record lacks the new column; SELECT reads the default, but
 * SQLite 3.40's sqlite3_preupdate_old() reads NULL. Captured that way, the
 * pre-image would hash differently from the full scan and rollback would
 * write NULL where the default was. So at open, every table with a non-NULL
 * DEFAULT is probed: `UPDATE t SET k = k` runs in a transaction under a hook
 * that compares each old value with the new one (which SQLite builds with the
 * default applied). If some row's old value is NULL where its new one is
 * not, the table holds short records, and the UPDATE is committed: every
 * record is rewritten whole, with the same content. Otherwise it is rolled
 * back. Cost: one pass over each such table at open; none for tables
 * without defaults.
 */
#include <stdlib.h>
#include <string.h>

#include "cow_state/internal.h"

struct probe {
    const struct evr__table *t;
    bool short_records;
};

static void probe_hook(void *arg, sqlite3 *db, int op, const char *zdb,
                       const char *zname, sqlite3_int64 k1, sqlite3_int64 k2)
{
    (void)k1;
    (void)k2;
    struct probe *p = arg;
    if (p->short_records || op != SQLITE_UPDATE || strcmp(zdb, "main") != 0 ||
        strcmp(zname, p->t->name) != 0) {
        return;
    }
    for (int i = 0; i < p->t->ncols; i++) {
        sqlite3_value *o = NULL;
        sqlite3_value *n = NULL;
        if (sqlite3_preupdate_old(db, p->t->col_cid[i], &o) == SQLITE_OK &&
            sqlite3_preupdate_new(db, p->t->col_cid[i], &n) == SQLITE_OK &&
            o != NULL && n != NULL &&
            sqlite3_value_type(o) == SQLITE_NULL &&
            sqlite3_value_type(n) != SQLITE_NULL) {
            p->short_records = true;
            return;
        }
    }
}

static int probe_table(struct evr_cow_conn *c, const struct evr__table *t,
                       struct evr_err *err)
{
    const char *key = t->cols[t->pk[0]];
    char *sql = sqlite3_mprintf("UPDATE %s SET \"%w\" = \"%w\"", t->qname,
                                key, key);
    if (sql == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    struct probe p = {t, false};
    c->internal = true;
    sqlite3_preupdate_hook(c->db, probe_hook, &p);
    int rc = evr__exec(c, "BEGIN IMMEDIATE", err);
    rc = rc ? rc : evr__exec(c, sql, err);
    if (rc == 0 && p.short_records) {
        rc = evr__exec(c, "COMMIT", err);
    } else {
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_preupdate_hook(c->db, NULL, NULL);
    if (c->cow->opts.capture) {
        evr__capture_install(c); /* the probe displaced it */
    }
    c->internal = false;
    sqlite3_free(sql);
    return rc ? evr_err_wrap(err, rc, "table '%s': rewriting short records",
                             t->name)
              : 0;
}

int evr__normalize(struct evr_cow *cow, struct evr_err *err)
{
    struct evr_cow_conn *c = evr__seq(cow);
    int rc = 0;
    /* Triggers must not see the rewrite: it changes no value. */
    evr__set_side_effects(cow, c->db, 0);
    for (int i = 0; rc == 0 && i < cow->schema.ntables; i++) {
        if (cow->schema.tables[i].has_default) {
            rc = probe_table(c, &cow->schema.tables[i], err);
        }
    }
    evr__set_side_effects(cow, c->db, 1);
    return rc;
}
