/*
 * Schema discovery and validation.
 *
 * A table is described by the PRAGMA introspection functions; tables are
 * kept sorted by name (BINARY), which is the order the state root hashes
 * them in. The rules a strict load enforces are listed in cow_state.h; each
 * refusal names the table and says why the rule exists.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cow_state/internal.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL) {
        memcpy(p, s, n);
    }
    return p;
}

/* "name" with embedded quotes doubled. */
static char *quote_ident(const char *s)
{
    size_t n = strlen(s);
    char *q = malloc(2 * n + 3);
    if (q == NULL) {
        return NULL;
    }
    char *o = q;
    *o++ = '"';
    for (const char *p = s; *p; p++) {
        if (*p == '"') {
            *o++ = '"';
        }
        *o++ = *p;
    }
    *o++ = '"';
    *o = '\0';
    return q;
}

static void table_free(struct evr__table *t)
{
    for (int i = 0; i < t->ncols; i++) {
        free(t->cols[i]);
    }
    free(t->cols);
    free(t->col_cid);
    free(t->pk);
    free(t->name);
    free(t->qname);
    free(t->buckets);
    memset(t, 0, sizeof *t);
}

void evr__schema_finalize_stmts(struct evr__schema *s)
{
    for (int i = 0; i < s->ntables; i++) {
        struct evr__table *t = &s->tables[i];
        sqlite3_finalize(t->st_select);
        sqlite3_finalize(t->st_delete);
        sqlite3_finalize(t->st_insert);
        sqlite3_finalize(t->st_update);
        t->st_select = t->st_delete = t->st_insert = t->st_update = NULL;
    }
}

void evr__schema_free(struct evr__schema *s)
{
    evr__schema_finalize_stmts(s);
    for (int i = 0; i < s->ntables; i++) {
        table_free(&s->tables[i]);
    }
    free(s->tables);
    s->tables = NULL;
    s->ntables = 0;
    if (s->hasher != NULL) {
        evr_hasher_free(s->hasher);
        s->hasher = NULL;
    }
}

struct evr__table *evr__schema_find(struct evr__schema *s, const char *name)
{
    int lo = 0;
    int hi = s->ntables - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(name, s->tables[mid].name);
        if (c == 0) {
            return &s->tables[mid];
        }
        if (c < 0) {
            hi = mid - 1;
        } else {
            lo = mid + 1;
        }
    }
    return NULL;
}

static int prep(sqlite3 *db, const char *sql, sqlite3_stmt **st,
                struct evr_err *err)
{
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, db, rc, "reading the schema");
    }
    return 0;
}

/* Name of the index that implements the PRIMARY KEY, if any. */
static int pk_index_name(sqlite3 *db, const char *table, char **out,
                         struct evr_err *err)
{
    sqlite3_stmt *st;
    *out = NULL;
    int rc = prep(db,
                  "SELECT name FROM pragma_index_list(?1, 'main') "
                  "WHERE origin = 'pk'",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = dup_str((const char *)sqlite3_column_text(st, 0));
        rc = *out ? 0 : evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    sqlite3_finalize(st);
    return rc;
}

/* Every key column of the PRIMARY KEY index must compare bytes (BINARY):
 * with NOCASE, 'a' and 'A' would be one row to SQLite but two to evr. */
static int check_pk_collation(sqlite3 *db, const char *table,
                              const char *index, struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT name, coll FROM pragma_index_xinfo(?1, 'main') "
                  "WHERE key = 1",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, index, -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 0);
        const char *coll = (const char *)sqlite3_column_text(st, 1);
        if (coll != NULL && strcasecmp(coll, "BINARY") != 0) {
            rc = evr_err_set(err, EVR_ESCHEMA,
                             "table '%s': PRIMARY KEY column '%s' uses "
                             "collation %s; evr needs BINARY so that row "
                             "identity is the key's bytes",
                             table, col ? col : "?", coll);
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

struct col_info {
    int cid;
    char *name;
    bool notnull;
    int pk; /* 1-based position in the key, 0 if not a key column */
};

/* Reads stored columns (generated ones refused when strict, else skipped). */
static int load_columns(sqlite3 *db, struct evr__table *t, bool strict,
                        struct col_info **out, int *count,
                        struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT cid, name, \"notnull\", pk, hidden, "
                  "dflt_value IS NOT NULL AND upper(dflt_value) <> 'NULL' "
                  "FROM pragma_table_xinfo(?1, 'main') ORDER BY cid",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, t->name, -1, SQLITE_TRANSIENT);
    struct col_info *cols = NULL;
    int n = 0;
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
        if (sqlite3_column_int(st, 4) != 0) {
            if (strict) {
                rc = evr_err_set(err, EVR_ESCHEMA,
                                 "table '%s': generated column '%s' is not "
                                 "supported (its preupdate values are not "
                                 "stored values)",
                                 t->name, sqlite3_column_text(st, 1));
            }
            continue;
        }
        struct col_info *nc = realloc(cols, (size_t)(n + 1) * sizeof *cols);
        if (nc == NULL) {
            rc = evr_err_set(err, EVR_ENOMEM, "out of memory");
            break;
        }
        cols = nc;
        cols[n].cid = sqlite3_column_int(st, 0);
        cols[n].name = dup_str((const char *)sqlite3_column_text(st, 1));
        cols[n].notnull = sqlite3_column_int(st, 2) != 0;
        cols[n].pk = sqlite3_column_int(st, 3);
        t->has_default = t->has_default || sqlite3_column_int(st, 5) != 0;
        n++;
        if (cols[n - 1].name == NULL) {
            rc = evr_err_set(err, EVR_ENOMEM, "out of memory");
        }
    }
    sqlite3_finalize(st);
    *count = n;
    *out = cols;
    return rc;
}

static int fill_columns(struct evr__table *t, struct col_info *cols, int n,
                        struct evr_err *err)
{
    t->ncols = n;
    t->cols = calloc((size_t)t->ncols + 1, sizeof *t->cols);
    t->col_cid = calloc((size_t)t->ncols + 1, sizeof *t->col_cid);
    t->pk = calloc((size_t)t->ncols + 1, sizeof *t->pk);
    if (!t->cols || !t->col_cid || !t->pk) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    t->npk = 0;
    for (int i = 0; i < t->ncols; i++) {
        t->cols[i] = cols[i].name;
        cols[i].name = NULL;
        t->col_cid[i] = cols[i].cid;
        if (cols[i].pk > 0) {
            if (cols[i].pk > t->ncols) {
                return evr_err_set(err, EVR_ESCHEMA,
                                   "table '%s': bad PRIMARY KEY position",
                                   t->name);
            }
            t->pk[cols[i].pk - 1] = i;
            t->npk++;
        }
    }
    return 0;
}

static bool has_col(const struct evr__table *t, const char *name)
{
    for (int i = 0; i < t->ncols; i++) {
        if (strcasecmp(t->cols[i], name) == 0) {
            return true;
        }
    }
    return false;
}

/* Whether some UNIQUE index other than the PRIMARY KEY's exists. */
static int other_unique(sqlite3 *db, const char *table, bool *out,
                        struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT count(*) FROM pragma_index_list(?1, 'main') "
                  "WHERE \"unique\" AND origin <> 'pk'",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT);
    *out = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    return 0;
}

static int check_key(sqlite3 *db, struct evr__table *t, bool without_rowid,
                     struct col_info *cols, bool strict, struct evr_err *err)
{
    if (t->npk == 0) {
        return evr_err_set(err, EVR_ESCHEMA,
                           "table '%s' has no PRIMARY KEY; evr identifies "
                           "rows by primary key, never by SQLite's hidden "
                           "rowid (rowids follow insertion order)",
                           t->name);
    }
    char *pk_index = NULL;
    int rc = pk_index_name(db, t->name, &pk_index, err);
    if (rc != 0) {
        return rc;
    }
    /* A rowid table with no PRIMARY KEY index has an INTEGER PRIMARY KEY
     * that is the rowid itself; otherwise the rowid is hidden. */
    t->hidden_rowid = !without_rowid && pk_index != NULL;
    if (strict && pk_index != NULL) {
        rc = check_pk_collation(db, t->name, pk_index, err);
    }
    free(pk_index);
    for (int i = 0; rc == 0 && strict && t->hidden_rowid && i < t->ncols;
         i++) {
        if (cols[i].pk > 0 && !cols[i].notnull) {
            rc = evr_err_set(err, EVR_ESCHEMA,
                             "table '%s': PRIMARY KEY column '%s' must be "
                             "declared NOT NULL (SQLite lets rowid tables "
                             "hold several rows with a NULL key)",
                             t->name, t->cols[i]);
        }
    }
    if (rc == 0 && t->hidden_rowid) {
        static const char *const names[] = {"rowid", "_rowid_", "oid"};
        for (int i = 0; i < 3 && t->rowid_name == NULL; i++) {
            if (!has_col(t, names[i])) {
                t->rowid_name = names[i];
            }
        }
        if (t->rowid_name == NULL && strict) {
            rc = evr_err_set(err, EVR_ESCHEMA,
                             "table '%s': columns named rowid, _rowid_ and "
                             "oid hide the rowid that rollback restores",
                             t->name);
        }
    }
    return rc;
}

static int load_table(sqlite3 *db, struct evr__table *t, bool without_rowid,
                      bool strict, struct evr_err *err)
{
    t->qname = quote_ident(t->name);
    t->seed = evr_hash64(t->name, strlen(t->name), 0);
    t->buckets = calloc(EVR_DIGEST_BUCKETS, sizeof *t->buckets);
    t->root_dirty = true;
    if (t->qname == NULL || t->buckets == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    struct col_info *cols = NULL;
    int n = 0;
    int rc = load_columns(db, t, strict, &cols, &n, err);
    if (rc == 0) {
        rc = fill_columns(t, cols, n, err);
    }
    if (rc == 0) {
        rc = check_key(db, t, without_rowid, cols, strict, err);
    }
    bool unique = true;
    if (rc == 0) {
        rc = other_unique(db, t->name, &unique, err);
    }
    t->in_place = rc == 0 && !unique && t->ncols > t->npk;
    for (int i = 0; i < n; i++) {
        free(cols[i].name);
    }
    free(cols);
    return rc;
}

static int check_autoincrement(sqlite3 *db, struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT name FROM sqlite_schema WHERE type = 'table' AND "
                  "sql LIKE '%AUTOINCREMENT%' AND EXISTS (SELECT 1 FROM "
                  "sqlite_schema WHERE name = 'sqlite_sequence') "
                  "ORDER BY name",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        rc = evr_err_set(err, EVR_ESCHEMA,
                         "table '%s' uses AUTOINCREMENT: its counter lives in "
                         "sqlite_sequence, which the preupdate hook does not "
                         "see, so rollback could not restore it; use INTEGER "
                         "PRIMARY KEY without AUTOINCREMENT",
                         sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return rc;
}

static int count_triggers(sqlite3 *db, int *out, struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = prep(db,
                  "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'",
                  &st, err);
    if (rc != 0) {
        return rc;
    }
    *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

static int add_table(struct evr__schema *s, const char *name,
                     struct evr_err *err)
{
    struct evr__table *nt =
        realloc(s->tables, (size_t)(s->ntables + 1) * sizeof *nt);
    if (nt == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    s->tables = nt;
    struct evr__table *t = &s->tables[s->ntables++];
    memset(t, 0, sizeof *t);
    t->name = dup_str(name);
    return t->name ? 0 : evr_err_set(err, EVR_ENOMEM, "out of memory");
}

int evr__schema_load(sqlite3 *db, bool strict, struct evr__schema *s,
                     struct evr_err *err)
{
    memset(s, 0, sizeof *s);
    s->hasher = evr_hasher_new(0);
    if (s->hasher == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    int rc = strict ? check_autoincrement(db, err) : 0;
    sqlite3_stmt *st = NULL;
    if (rc == 0) {
        rc = prep(db,
                  "SELECT name, type, wr FROM pragma_table_list "
                  "WHERE schema = 'main' AND name NOT LIKE 'sqlite\\_%' "
                  "ESCAPE '\\' AND type IN ('table', 'virtual', 'shadow') "
                  "ORDER BY name",
                  &st, err);
    }
    while (rc == 0) {
        int step = sqlite3_step(st);
        if (step == SQLITE_DONE) {
            break;
        }
        if (step != SQLITE_ROW) {
            rc = evr__sqlite_err(err, db, step, "listing tables");
            break;
        }
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *type = (const char *)sqlite3_column_text(st, 1);
        bool without_rowid = sqlite3_column_int(st, 2) != 0;
        if (strcmp(type, "table") != 0) {
            if (strict) {
                rc = evr_err_set(err, EVR_ESCHEMA,
                                 "table '%s' is a %s table, which evr does "
                                 "not replicate",
                                 name, type);
            }
            if (strcmp(type, "virtual") == 0) {
                continue; /* its rows live in its shadow tables */
            }
            if (rc != 0) {
                break;
            }
        }
        rc = add_table(s, name, err);
        if (rc == 0) {
            rc = load_table(db, &s->tables[s->ntables - 1], without_rowid,
                            strict, err);
        }
    }
    sqlite3_finalize(st);
    if (rc == 0) {
        rc = count_triggers(db, &s->triggers, err);
    }
    if (rc != 0) {
        evr__schema_free(s);
    }
    return rc;
}
