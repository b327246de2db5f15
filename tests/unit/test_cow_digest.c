/* State digest: order independence, incremental == full scan, schema rules,
 * digests of whole files. */
#include "tests/unit/helpers/cm.h"

#include "cow_state/cow_state.h"
#include "tests/unit/helpers/randdb.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"

static evr_h128 full_digest(struct evr_cow *cow)
{
    evr_h128 h;
    struct evr_err err = {0};
    if (evr_cow_digest_full(cow, &h, &err) != 0) {
        fail_msg("digest_full: %s", err.msg);
    }
    return h;
}

/* Runs the given statements as one request per statement, in one batch. */
static evr_h128 run_batch(struct evr_cow *cow, uint64_t op,
                          const char *const *sqls, int n)
{
    struct evr_err err = {0};
    assert_int_equal(evr_cow_batch_begin(cow, op, &err), 0);
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(cow));
    for (int i = 0; i < n; i++) {
        th_exec(db, "BEGIN");
        th_exec(db, sqls[i]);
        th_exec(db, "COMMIT");
    }
    evr_h128 root;
    assert_int_equal(evr_cow_batch_end(cow, &root, &err), 0);
    assert_int_equal(evr_cow_commit(cow, op, &err), 0);
    return root;
}

static void test_order_independent(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *p1 = th_path(dir, "one.db");
    char *p2 = th_path(dir, "two.db");
    th_make_db(p1, randdb_schema);
    th_make_db(p2, randdb_schema);
    const char *const sqls[] = {
        "INSERT INTO a VALUES(1, 10, 1.5, 'x', x'00')",
        "INSERT INTO b VALUES('p', 1, 2.0)",
        "INSERT INTO b VALUES('q', 2, NULL)",
        "INSERT INTO c VALUES(1, 'a', x'01')",
        "INSERT INTO d VALUES(0.5, 7)",
        "UPDATE a SET x = 11 WHERE id = 1",
    };
    /* Commutative requests, in opposite orders and batch splits. */
    const char *const rev[] = {sqls[4], sqls[3], sqls[2], sqls[1], sqls[0]};
    struct evr_cow *one = th_cow_open(p1, 0, 0);
    struct evr_cow *two = th_cow_open(p2, 0, 0);
    assert_true(evr_h128_eq(evr_cow_digest(one), evr_cow_digest(two)));
    run_batch(one, 1, sqls, 5);
    run_batch(two, 1, rev, 2);
    run_batch(two, 2, rev + 2, 3);
    assert_true(evr_h128_eq(evr_cow_digest(one), evr_cow_digest(two)));
    /* The hidden rowids of b differ between the two files; the digest does
     * not look at them. A real difference is seen: */
    run_batch(one, 2, sqls + 5, 1);
    assert_false(evr_h128_eq(evr_cow_digest(one), evr_cow_digest(two)));
    assert_true(evr_h128_eq(evr_cow_digest(one), full_digest(one)));
    assert_true(evr_h128_eq(evr_cow_digest(two), full_digest(two)));
    evr_cow_close(one);
    evr_cow_close(two);
    free(p1);
    free(p2);
    th_rmdir(dir);
}

static void test_incremental_equals_full(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "r.db");
    uint64_t seed = th_seed(1);
    randdb_create(path, 200, seed);
    struct evr_cow *cow = th_cow_open(path, 0, 0);
    struct evr_rng rng;
    evr_rng_seed(&rng, seed + 1);
    for (uint64_t op = 1; op <= 300; op++) {
        evr_h128 root;
        randdb_batch(cow, op, 1 + (int)evr_rng_below(&rng, 12), &rng, &root);
        assert_true(evr_h128_eq(root, evr_cow_digest(cow)));
        if (op % 10 == 0 || op < 20) {
            assert_true(evr_h128_eq(root, full_digest(cow)));
        }
        struct evr_err err = {0};
        assert_int_equal(evr_cow_commit(cow, op, &err), 0);
    }
    evr_h128 incremental = evr_cow_digest(cow);
    evr_cow_close(cow);
    /* And a fresh open, which scans, agrees with what was maintained. */
    evr_h128 file;
    struct evr_err err = {0};
    assert_int_equal(evr_digest_file(path, &file, &err), 0);
    assert_true(evr_h128_eq(file, incremental));
    free(path);
    th_rmdir(dir);
}

static void expect_refused(const char *sql, const char *needle)
{
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "bad.db");
    th_make_db(path, sql);
    struct evr_cow_opts o;
    evr_cow_opts_default(&o, path, 1);
    struct evr_cow *cow = NULL;
    struct evr_err err = {0};
    int rc = evr_cow_open(&o, &cow, &err);
    assert_int_equal(rc, EVR_ESCHEMA);
    assert_null(cow);
    if (strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    }
    free(path);
    th_rmdir(dir);
}

static void test_schema_rules(void **state)
{
    (void)state;
    expect_refused("CREATE TABLE ok(k INTEGER PRIMARY KEY);"
                   "CREATE TABLE nokey(a INT, b TEXT);",
                   "'nokey' has no PRIMARY KEY");
    expect_refused("CREATE TABLE n(k TEXT PRIMARY KEY, v INT);",
                   "must be declared NOT NULL");
    expect_refused("CREATE TABLE s(k INTEGER PRIMARY KEY AUTOINCREMENT);",
                   "AUTOINCREMENT");
    expect_refused("CREATE TABLE ci(k TEXT COLLATE NOCASE PRIMARY KEY "
                   "NOT NULL);",
                   "collation NOCASE");
    expect_refused("CREATE TABLE g(k INTEGER PRIMARY KEY, a INT, "
                   "b INT GENERATED ALWAYS AS (a + 1));",
                   "generated column 'b'");
    expect_refused("CREATE VIRTUAL TABLE f USING fts5(body);", "'f'");
}

static void test_digest_file(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "f.db");
    evr_h128 h;
    struct evr_err err = {0};
    assert_int_equal(evr_digest_file(path, &h, &err), EVR_ENOENT);
    assert_non_null(strstr(err.msg, "f.db"));

    FILE *f = fopen(path, "wb");
    fputs("this is not a database, just some text that is long enough to "
          "fill a header of one hundred bytes or so................",
          f);
    fclose(f);
    assert_int_equal(evr_digest_file(path, &h, &err), EVR_ECORRUPT);

    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v);"
                     "CREATE TABLE loose(a, b);");
    assert_int_equal(evr_digest_file(path, &h, &err), EVR_ESCHEMA);
    assert_non_null(strstr(err.msg, "'loose'"));

    /* The non-strict rules of digest: a nullable key is fine here. */
    th_make_db(path, "CREATE TABLE t(k TEXT PRIMARY KEY, v);"
                     "INSERT INTO t VALUES('a', 1), ('b', 2);");
    evr_h128 h1, h2;
    assert_int_equal(evr_digest_file(path, &h1, &err), 0);
    th_make_db(path, "CREATE TABLE t(k TEXT PRIMARY KEY, v);"
                     "INSERT INTO t VALUES('b', 2), ('a', 1);");
    assert_int_equal(evr_digest_file(path, &h2, &err), 0);
    assert_true(evr_h128_eq(h1, h2));
    th_make_db(path, "CREATE TABLE t(k TEXT PRIMARY KEY, v);"
                     "INSERT INTO t VALUES('b', 2), ('a', 2);");
    assert_int_equal(evr_digest_file(path, &h2, &err), 0);
    assert_false(evr_h128_eq(h1, h2));
    free(path);
    th_rmdir(dir);
}

static void test_hex_round_trip(void **state)
{
    (void)state;
    evr_h128 h = evr_hash128("abc", 3, 7);
    char hex[EVR_H128_HEX_LEN + 1];
    evr_h128_to_hex(h, hex);
    assert_int_equal(strlen(hex), 32);
    evr_h128 back;
    assert_true(evr_h128_from_hex(hex, &back));
    assert_true(evr_h128_eq(h, back));
    assert_false(evr_h128_from_hex("12", &back));
    /* Sums wrap modulo 2^128 and subtract back exactly. */
    evr_h128 max = {UINT64_MAX, UINT64_MAX};
    evr_h128 one = {1, 0};
    assert_true(evr_h128_is_zero(evr_h128_add(max, one)));
    assert_true(evr_h128_eq(evr_h128_sub(evr_h128_add(h, max), max), h));
}

/* Regression: on INTEGER PRIMARY KEY tables every touched row counted as
 * changed (the rowid was compared as if hidden), so deltas carried
 * unchanged rows. */
static void test_unchanged_rows_not_changed(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "u.db");
    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v INT);"
                     "INSERT INTO t VALUES(1, 1), (2, 2);");
    struct evr_cow *cow = th_cow_open(path, 0, 0);
    struct evr_err err = {0};
    evr_h128 root0 = evr_cow_digest(cow);
    evr_h128 r = run_batch(cow, 1, (const char *const[]){"UPDATE t SET v = v"},
                           1);
    assert_true(evr_h128_eq(r, root0));
    struct evr_cow_stats st;
    evr_cow_stats(cow, &st);
    assert_int_equal(st.rows_touched, 2);
    assert_int_equal(st.rows_changed, 0);
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    if (evr_cow_delta_export(cow, 1, &delta, &err) != 0) {
        fail_msg("%s", err.msg);
    }
    assert_int_equal(evr_load_u32(delta.data + 12), 0); /* no entries */
    evr_buf_free(&delta);
    evr_cow_close(cow);
    free(path);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_incremental_equals_full),
        cmocka_unit_test(test_schema_rules),
        cmocka_unit_test(test_digest_file),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_unchanged_rows_not_changed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
