#include "tests/unit/helpers/th.h"

#include "tests/unit/helpers/cm.h"
#include <ftw.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "mixer/mixer.h"

char *th_mkdtemp(void)
{
    const char *base = getenv("TMPDIR");
    char *dir = malloc(4096);
    assert_non_null(dir);
    snprintf(dir, 4096, "%s/evr-test-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
    return dir;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void th_rmdir(char *dir)
{
    if (dir != NULL) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
    }
}

char *th_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

void th_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fail_msg("SQL failed (%d): %s\n  in: %s", rc, msg ? msg : "?", sql);
    }
}

int th_try(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

sqlite3 *th_open(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    assert_int_equal(rc, SQLITE_OK);
    return db;
}

void th_make_db(const char *path, const char *sql)
{
    unlink(path);
    sqlite3 *db = th_open(path);
    th_exec(db, sql);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void put_str(struct evr_buf *b, const char *s)
{
    assert_int_equal(evr_buf_put(b, s, strlen(s)), 0);
}

static char *query_one(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
        out = strdup((const char *)sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
}

/* "SELECT [rowid,] quote(c1) || ',' || ... FROM t ORDER BY pk" */
static char *dump_query(sqlite3 *db, const char *table)
{
    char *q = sqlite3_mprintf(
        "SELECT 'SELECT ' || "
        "  CASE WHEN (SELECT wr FROM pragma_table_list(%Q)) = 0 AND "
        "       EXISTS (SELECT 1 FROM pragma_index_list(%Q) "
        "               WHERE origin = 'pk') "
        "  THEN 'quote(rowid) || '':'' || ' ELSE '' END || "
        "  group_concat('quote(\"' || replace(name, '\"', '\"\"') || '\")',"
        "               ' || '','' || ') || "
        "  ' FROM \"' || replace(%Q, '\"', '\"\"') || '\" ORDER BY ' || "
        "  (SELECT group_concat('\"' || replace(name, '\"', '\"\"') || '\"',"
        "          ',') FROM (SELECT name FROM pragma_table_info(%Q) "
        "          WHERE pk > 0 ORDER BY pk)) "
        "FROM (SELECT name FROM pragma_table_info(%Q) ORDER BY cid)",
        table, table, table, table, table);
    char *sql = query_one(db, q);
    sqlite3_free(q);
    assert_non_null(sql);
    return sql;
}

char *th_dump(sqlite3 *db)
{
    struct evr_buf b;
    evr_buf_init(&b, SIZE_MAX);
    sqlite3_stmt *tables;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT name FROM sqlite_schema WHERE type = "
                           "'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                           -1, &tables, NULL),
        SQLITE_OK);
    while (sqlite3_step(tables) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(tables, 0);
        put_str(&b, "== ");
        put_str(&b, name);
        put_str(&b, "\n");
        char *sql = dump_query(db, name);
        sqlite3_stmt *rows;
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &rows, NULL),
                         SQLITE_OK);
        while (sqlite3_step(rows) == SQLITE_ROW) {
            put_str(&b, (const char *)sqlite3_column_text(rows, 0));
            put_str(&b, "\n");
        }
        sqlite3_finalize(rows);
        free(sql);
    }
    sqlite3_finalize(tables);
    assert_int_equal(evr_buf_put_u8(&b, 0), 0);
    return (char *)b.data;
}

char *th_dump_file(const char *path)
{
    sqlite3 *db = th_open(path);
    char *d = th_dump(db);
    sqlite3_close(db);
    return d;
}

void th_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

unsigned long long th_seed(unsigned long long def)
{
    const char *s = getenv("SEED");
    unsigned long long seed = s ? strtoull(s, NULL, 0) : def;
    static bool printed;
    if (!printed) {
        fprintf(stderr, "# seed %llu (set SEED=... to reproduce)\n", seed);
        printed = true;
    }
    return seed;
}

void th_must(int rc, const struct evr_err *err)
{
    if (rc != 0) {
        fail_msg("%s", err->msg);
    }
}

void th_no_hints(void *app, const uint8_t *req, uint32_t len,
                 struct evr_cset *cs)
{
    (void)app;
    (void)req;
    (void)len;
    evr_cset_clear(cs);
}
