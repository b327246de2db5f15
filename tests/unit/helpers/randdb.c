#include "tests/unit/helpers/randdb.h"

#include "tests/unit/helpers/cm.h"
#include <stdio.h>
#include <string.h>

#include "tests/unit/helpers/th.h"

const char *const randdb_schema =
    "CREATE TABLE a(id INTEGER PRIMARY KEY, x INT, y REAL, z TEXT, w BLOB);"
    "CREATE TABLE b(k TEXT PRIMARY KEY NOT NULL, v INT UNIQUE, r REAL);"
    "CREATE TABLE c(k1 INT, k2 TEXT, v BLOB, PRIMARY KEY(k1, k2))"
    "  WITHOUT ROWID;"
    "CREATE TABLE d(k REAL PRIMARY KEY NOT NULL, n INT);"
    "CREATE INDEX a_x ON a(x);";

/* A random SQL literal of any type; REAL columns get integral values too,
 * which SQLite stores as integers on disk (a classic digest trap). */
static void literal(struct evr_rng *r, char *out, size_t n)
{
    switch (evr_rng_below(r, 6)) {
    case 0:
        snprintf(out, n, "NULL");
        break;
    case 1:
        snprintf(out, n, "%lld", (long long)evr_rng_range(r, -50, 50));
        break;
    case 2:
        snprintf(out, n, "%.1f", (double)evr_rng_range(r, -20, 20));
        break;
    case 3:
        snprintf(out, n, "%.6f", evr_rng_double(r) * 100);
        break;
    case 4:
        snprintf(out, n, "'t%llu'", (unsigned long long)evr_rng_below(r, 40));
        break;
    default:
        snprintf(out, n, "x'%02x%02x'", (unsigned)evr_rng_below(r, 256),
                 (unsigned)evr_rng_below(r, 256));
        break;
    }
}

static void statement(struct evr_rng *r, char *sql, size_t n)
{
    char v1[32], v2[32];
    literal(r, v1, sizeof v1);
    literal(r, v2, sizeof v2);
    long long k = (long long)evr_rng_below(r, 60);
    long long k2 = (long long)evr_rng_below(r, 60);
    switch (evr_rng_below(r, 14)) {
    case 0:
        snprintf(sql, n, "INSERT INTO a VALUES(%lld, %s, %s, %s, %s)", k, v1,
                 v2, v1, v2);
        break;
    case 1:
        snprintf(sql, n, "INSERT OR REPLACE INTO a VALUES(%lld, %s, %lld, "
                 "NULL, %s)", k, v1, k2, v2);
        break;
    case 2:
        snprintf(sql, n, "UPDATE a SET x = coalesce(x, 0) + 1, y = %s "
                 "WHERE id BETWEEN %lld AND %lld", v1, k, k + 3);
        break;
    case 3:
        snprintf(sql, n, "UPDATE a SET id = %lld WHERE id = %lld", k2 + 60, k);
        break;
    case 4:
        snprintf(sql, n, "DELETE FROM a WHERE id = %lld", k);
        break;
    case 5:
        snprintf(sql, n, "INSERT INTO b VALUES('k%lld', %lld, %s)", k, k2, v1);
        break;
    case 6:
        snprintf(sql, n, "UPDATE OR REPLACE b SET v = %lld WHERE k = 'k%lld'",
                 k2, k);
        break;
    case 7:
        snprintf(sql, n, "INSERT OR REPLACE INTO b VALUES('k%lld', %lld, %s)",
                 k, k2, v2);
        break;
    case 8:
        snprintf(sql, n, "UPDATE b SET k = 'k%lld' WHERE k = 'k%lld'", k2, k);
        break;
    case 9:
        snprintf(sql, n, "INSERT OR REPLACE INTO c VALUES(%lld, 't%lld', %s)",
                 k % 7, k2 % 9, v1);
        break;
    case 10:
        snprintf(sql, n, "DELETE FROM c WHERE k1 = %lld", k % 7);
        break;
    case 11:
        snprintf(sql, n, "UPDATE c SET k2 = 't%lld' WHERE k1 = %lld",
                 k2 % 9, k % 7);
        break;
    case 12:
        snprintf(sql, n, "INSERT OR REPLACE INTO d VALUES(%lld.5, %s)", k % 9,
                 v1);
        break;
    default:
        snprintf(sql, n, "UPDATE d SET k = k + 1 WHERE n IS NOT NULL AND "
                 "k < %lld", k % 9);
        break;
    }
}

int randdb_request(struct evr_cow_conn *c, struct evr_rng *rng)
{
    sqlite3 *db = evr_cow_conn_db(c);
    th_exec(db, "BEGIN");
    int n = 1 + (int)evr_rng_below(rng, 4);
    for (int i = 0; i < n; i++) {
        char sql[256];
        statement(rng, sql, sizeof sql);
        /* Constraint failures are part of the test: SQLite undoes the
         * statement without telling the hook. */
        th_try(db, sql);
    }
    bool commit = evr_rng_below(rng, 5) != 0;
    if (evr_cow_conn_take_capture_error(c) != 0) {
        commit = false;
    }
    th_exec(db, commit ? "COMMIT" : "ROLLBACK");
    return commit;
}

void randdb_batch(struct evr_cow *cow, uint64_t op, int n,
                  struct evr_rng *rng, evr_h128 *root)
{
    struct evr_err err = {0};
    assert_int_equal(evr_cow_batch_begin(cow, op, &err), 0);
    for (int i = 0; i < n; i++) {
        randdb_request(evr_cow_seq(cow), rng);
    }
    int rc = evr_cow_batch_end(cow, root, &err);
    if (rc != 0) {
        fail_msg("batch_end: %s", err.msg);
    }
}

void randdb_create(const char *path, int rows, uint64_t seed)
{
    th_make_db(path, randdb_schema);
    sqlite3 *db = th_open(path);
    struct evr_rng rng;
    evr_rng_seed(&rng, seed);
    th_exec(db, "BEGIN");
    for (int i = 0; i < rows; i++) {
        char sql[256];
        statement(&rng, sql, sizeof sql);
        th_try(db, sql);
    }
    th_exec(db, "COMMIT");
    sqlite3_close(db);
}
