/* Rollback: exactness after random batches, failed statements, stacked
 * batches, unfinished batches, capture limits and a full disk. */
#include "tests/unit/helpers/cm.h"

#include <signal.h>
#include <sys/resource.h>

#include "cow_state/cow_state.h"
#include "tests/unit/helpers/randdb.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"

/* Dumps through a connection of its own: the cow's connections refuse
 * PRAGMAs (application code must not use them). */
static const char *g_path;

struct fixture {
    char *dir;
    char *path;
    struct evr_cow *cow;
    struct evr_rng rng;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = th_mkdtemp();
    f->path = th_path(f->dir, "state.db");
    uint64_t seed = th_seed(11);
    randdb_create(f->path, 300, seed);
    f->cow = th_cow_open(f->path, 2, 256u << 20);
    g_path = f->path;
    evr_rng_seed(&f->rng, seed + 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    evr_cow_close(f->cow);
    free(f->path);
    th_rmdir(f->dir);
    free(f);
    return 0;
}


static char *dump(struct evr_cow *cow)
{
    (void)cow;
    return th_dump_file(g_path);
}

static void assert_same_state(struct evr_cow *cow, const char *want_dump,
                              evr_h128 want_root)
{
    char *now = dump(cow);
    assert_string_equal(now, want_dump);
    free(now);
    assert_true(evr_h128_eq(evr_cow_digest(cow), want_root));
    evr_h128 full;
    struct evr_err err = {0};
    th_must(evr_cow_digest_full(cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, want_root));
}

/* Ends batch op on a single-batch cow, checks the incremental root against
 * a full scan, rolls the batch back and checks the digest is root0 again.
 * Returns the batch's root. */
static evr_h128 end_and_roll_back(struct evr_cow *cow, uint64_t op,
                                  evr_h128 root0)
{
    struct evr_err err = {0};
    evr_h128 root, full;
    th_must(evr_cow_batch_end(cow, &root, &err), &err);
    th_must(evr_cow_digest_full(cow, &full, &err), &err);
    assert_true(evr_h128_eq(root, full));
    th_must(evr_cow_rollback(cow, op, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(cow), root0));
    return root;
}

/* Closes cow and fails unless the file's content is `before` again;
 * returns the content (caller frees). */
static char *close_and_compare(struct evr_cow *cow, const char *path,
                               const char *before)
{
    evr_cow_close(cow);
    char *after = th_dump_file(path);
    assert_string_equal(before, after);
    return after;
}

static void test_rollback_exact(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    for (uint64_t op = 1; op <= 120; op++) {
        char *before = dump(f->cow);
        evr_h128 root0 = evr_cow_digest(f->cow);
        evr_h128 root1;
        randdb_batch(f->cow, op, 1 + (int)evr_rng_below(&f->rng, 10), &f->rng,
                     &root1);
        th_must(evr_cow_rollback(f->cow, op, &err), &err);
        assert_same_state(f->cow, before, root0);
        /* Re-execute the same op number, and keep it this time. */
        randdb_batch(f->cow, op, 3, &f->rng, &root1);
        th_must(evr_cow_commit(f->cow, op, &err), &err);
        free(before);
    }
}

static void test_rollback_after_failed_statements(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(f->cow));
    th_exec(db, "BEGIN; DELETE FROM b; COMMIT");
    /* That write was outside any batch: the cow must refuse to go on. */
    assert_int_equal(evr_cow_batch_begin(f->cow, 1, &err), EVR_ESTATE);
    assert_non_null(strstr(err.msg, "'b'"));
    evr_cow_close(f->cow);
    f->cow = th_cow_open(f->path, 2, 256u << 20);

    char *before = dump(f->cow);
    evr_h128 root0 = evr_cow_digest(f->cow);
    th_must(evr_cow_batch_begin(f->cow, 1, &err), &err);
    th_exec(db = evr_cow_conn_db(evr_cow_seq(f->cow)),
            "BEGIN; INSERT INTO b VALUES('u', 1, 0), ('w', 5, 0); COMMIT");
    /* A unique violation after a successful row change in the same
     * statement: SQLite undoes the statement and fires no hook for it. */
    assert_int_not_equal(th_try(db, "BEGIN; UPDATE b SET v = 7;"), SQLITE_OK);
    th_exec(db, "COMMIT");
    th_exec(db, "BEGIN; UPDATE a SET x = 99; ROLLBACK");
    th_exec(db, "BEGIN; SAVEPOINT s; DELETE FROM c; ROLLBACK TO s; "
                "DELETE FROM d; COMMIT");
    evr_h128 root1;
    th_must(evr_cow_batch_end(f->cow, &root1, &err), &err);
    evr_h128 full;
    th_must(evr_cow_digest_full(f->cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, root1));
    th_must(evr_cow_rollback(f->cow, 1, &err), &err);
    assert_same_state(f->cow, before, root0);
    free(before);
}

static void test_stacked(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    char *dumps[6];
    evr_h128 roots[6];
    for (int i = 0; i < 6; i++) {
        dumps[i] = dump(f->cow);
        roots[i] = evr_cow_digest(f->cow);
        evr_h128 r;
        randdb_batch(f->cow, (uint64_t)i + 1, 6, &f->rng, &r);
    }
    assert_int_equal(evr_cow_uncommitted(f->cow), 6);
    /* Commit the first two, roll back from the fifth, then from the third:
     * every rollback lands exactly on its pre-batch state. */
    th_must(evr_cow_commit(f->cow, 1, &err), &err);
    th_must(evr_cow_commit(f->cow, 2, &err), &err);
    assert_int_equal(evr_cow_rollback(f->cow, 1, &err), EVR_ESTATE);
    th_must(evr_cow_rollback(f->cow, 5, &err), &err);
    assert_same_state(f->cow, dumps[4], roots[4]);
    assert_int_equal(evr_cow_uncommitted(f->cow), 2);
    th_must(evr_cow_rollback(f->cow, 3, &err), &err);
    assert_same_state(f->cow, dumps[2], roots[2]);
    assert_int_equal(evr_cow_uncommitted(f->cow), 0);
    /* An executing batch (never ended) rolls back too. */
    th_must(evr_cow_batch_begin(f->cow, 3, &err), &err);
    for (int i = 0; i < 5; i++) {
        randdb_request(evr_cow_seq(f->cow), &f->rng);
    }
    th_must(evr_cow_rollback(f->cow, 3, &err), &err);
    assert_same_state(f->cow, dumps[2], roots[2]);
    for (int i = 0; i < 6; i++) {
        free(dumps[i]);
    }
}

static void test_commit_order_enforced(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    evr_h128 r;
    randdb_batch(f->cow, 5, 2, &f->rng, &r);
    randdb_batch(f->cow, 6, 2, &f->rng, &r);
    assert_int_equal(evr_cow_commit(f->cow, 6, &err), EVR_ESTATE);
    assert_int_equal(evr_cow_batch_begin(f->cow, 6, &err), EVR_EINVAL);
    th_must(evr_cow_commit(f->cow, 5, &err), &err);
    th_must(evr_cow_commit(f->cow, 6, &err), &err);
    assert_int_equal(evr_cow_commit(f->cow, 7, &err), EVR_ESTATE);
}

/* A batch whose pre-images exceed the limit: the failing request is rolled
 * back by its own transaction, and the batch still rolls back exactly. */
static void test_capture_limit(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    /* Make the pre-images large: 20 KB per row of a. */
    th_must(evr_cow_batch_begin(f->cow, 1, &err), &err);
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(f->cow));
    th_exec(db, "BEGIN; UPDATE a SET w = zeroblob(20000); COMMIT");
    th_must(evr_cow_batch_end(f->cow, NULL, &err), &err);
    th_must(evr_cow_commit(f->cow, 1, &err), &err);
    evr_cow_close(f->cow);
    f->cow = th_cow_open(f->path, 2, 64 * 1024);

    char *before = dump(f->cow);
    evr_h128 root0 = evr_cow_digest(f->cow);
    struct evr_cow_conn *c = evr_cow_seq(f->cow);
    db = evr_cow_conn_db(c);
    th_must(evr_cow_batch_begin(f->cow, 2, &err), &err);
    th_exec(db, "BEGIN; UPDATE b SET r = -1 WHERE k = "
                "(SELECT min(k) FROM b)");
    assert_int_equal(evr_cow_conn_take_capture_error(c), 0);
    th_exec(db, "COMMIT");
    th_exec(db, "BEGIN; INSERT INTO b VALUES('big', 12345, 1); "
                "UPDATE a SET x = -2");
    assert_int_equal(evr_cow_conn_take_capture_error(c), EVR_ELIMIT);
    th_exec(db, "ROLLBACK");
    evr_h128 root1;
    th_must(evr_cow_batch_end(f->cow, &root1, &err), &err);
    evr_h128 full;
    th_must(evr_cow_digest_full(f->cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, root1));
    th_must(evr_cow_rollback(f->cow, 2, &err), &err);
    assert_same_state(f->cow, before, root0);
    free(before);
}

/* The disk fills (simulated with a file size limit): the request fails,
 * nothing is half-applied, and rollback still restores the state. */
static void test_full_disk(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    char *before = dump(f->cow);
    evr_h128 root0 = evr_cow_digest(f->cow);
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(f->cow));
    th_must(evr_cow_batch_begin(f->cow, 1, &err), &err);
    th_exec(db, "BEGIN; UPDATE a SET x = 7; COMMIT");

    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    setrlimit(RLIMIT_FSIZE, &lim);
    int rc = th_try(db, "BEGIN; INSERT INTO c SELECT id, 'fill', "
                        "zeroblob(100000) FROM a; COMMIT");
    char *snap = th_path(f->dir, "snap");
    int src = evr_cow_snapshot_export(f->cow, snap, &err);
    setrlimit(RLIMIT_FSIZE, &old);

    assert_int_not_equal(rc, SQLITE_OK);
    th_try(db, "ROLLBACK");
    assert_int_equal(src, EVR_ESTATE); /* a batch is still uncommitted */
    evr_h128 root1;
    th_must(evr_cow_batch_end(f->cow, &root1, &err), &err);
    th_must(evr_cow_rollback(f->cow, 1, &err), &err);
    assert_same_state(f->cow, before, root0);
    free(snap);
    free(before);
}

/* Regression: rows stored before ALTER TABLE ADD COLUMN ... DEFAULT lack
 * the column; SQLite 3.40's preupdate hook reads NULL for it where SELECT
 * reads the default. Before normalize.c, the incremental digest drifted
 * from the full scan and rollback wrote NULL over the default. */
static void test_altered_table(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "alt.db");
    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v INT);"
                     "INSERT INTO t VALUES(1, 1), (2, 2);"
                     "ALTER TABLE t ADD COLUMN c INT DEFAULT 5;"
                     "ALTER TABLE t ADD COLUMN d TEXT DEFAULT 'x';");
    char *before = th_dump_file(path);
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    evr_h128 root0 = evr_cow_digest(cow);
    th_must(evr_cow_batch_begin(cow, 1, &err), &err);
    th_exec(evr_cow_conn_db(evr_cow_seq(cow)),
            "BEGIN; UPDATE t SET v = 10 WHERE k = 1; DELETE FROM t WHERE k = 2;"
            "COMMIT");
    end_and_roll_back(cow, 1, root0);
    /* 1,1,5,'x' and 2,2,5,'x' again */
    char *after = close_and_compare(cow, path, before);
    assert_non_null(strstr(after, "1,1,5,'x'"));
    free(before);
    free(after);
    free(path);
    th_rmdir(dir);
}

/* Triggers fire during execution (their changes are captured like any
 * other) but must not fire while rollback puts rows back. */
static void test_triggers(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "trg.db");
    th_make_db(path,
               "CREATE TABLE t(k INTEGER PRIMARY KEY, v INT);"
               "CREATE TABLE log(id INTEGER PRIMARY KEY, k INT, what TEXT);"
               "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN "
               "  INSERT INTO log(k, what) VALUES(new.k, 'ins'); END;"
               "CREATE TRIGGER t_del AFTER DELETE ON t BEGIN "
               "  INSERT INTO log(k, what) VALUES(old.k, 'del'); END;"
               "INSERT INTO t VALUES(1, 1), (2, 2);");
    char *before = th_dump_file(path);
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    evr_h128 root0 = evr_cow_digest(cow);
    for (uint64_t op = 1; op <= 3; op++) {
        th_must(evr_cow_batch_begin(cow, op, &err), &err);
        th_exec(evr_cow_conn_db(evr_cow_seq(cow)),
                "BEGIN; INSERT INTO t VALUES(3, 3); DELETE FROM t WHERE k = 1;"
                "UPDATE t SET v = 20 WHERE k = 2; COMMIT");
        end_and_roll_back(cow, op, root0);
        char *after = th_dump_file(path);
        assert_string_equal(before, after); /* log unchanged too */
        free(after);
    }
    evr_cow_close(cow);
    free(before);
    free(path);
    th_rmdir(dir);
}

static int deny_reads(void *arg, int action, const char *a1, const char *a2,
                      const char *db, const char *trigger)
{
    (void)arg;
    (void)a2;
    (void)db;
    (void)trigger;
    return action == SQLITE_READ && a1 && strcmp(a1, "t") == 0 ? SQLITE_DENY
                                                                : SQLITE_OK;
}

/* Regression: a failed early re-read marked its touch as read, so batch end
 * skipped it: the digest drifted and rollback left the row in place. */
static void test_refresh_failure(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "r.db");
    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v INT);"
                     "INSERT INTO t VALUES(1, 1);");
    char *before = th_dump_file(path);
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    evr_h128 root0 = evr_cow_digest(cow);
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(cow));
    th_must(evr_cow_batch_begin(cow, 1, &err), &err);
    th_exec(db, "BEGIN; INSERT INTO t VALUES(2, 2); UPDATE t SET v = 5 "
                "WHERE k = 1; COMMIT");
    /* The re-read statement is prepared on first use: deny it once. */
    sqlite3_set_authorizer(db, deny_reads, NULL);
    assert_int_not_equal(evr_cow_batch_refresh(cow, &err), 0);
    sqlite3_set_authorizer(db, NULL, NULL);
    end_and_roll_back(cow, 1, root0);
    char *after = close_and_compare(cow, path, before);
    free(before);
    free(after);
    free(path);
    th_rmdir(dir);
}

/* Regression: in a BLOB-affinity key column SQLite stores 1 and 1.0 as
 * different values but one key; they were two identities to evr, and
 * rollback emptied the table. */
static void test_numeric_key_in_blob_column(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "k.db");
    th_make_db(path, "CREATE TABLE t(k PRIMARY KEY NOT NULL, v);"
                     "INSERT INTO t VALUES(1, 'a'), (2.5, 'b'), ('x', 'c');");
    char *before = th_dump_file(path);
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    evr_h128 root0 = evr_cow_digest(cow);
    th_must(evr_cow_batch_begin(cow, 1, &err), &err);
    th_exec(evr_cow_conn_db(evr_cow_seq(cow)),
            "BEGIN; UPDATE t SET k = 1.0 WHERE k = 1;"
            "UPDATE t SET v = 'z' WHERE k = 2.5; COMMIT");
    evr_h128 root1 = end_and_roll_back(cow, 1, root0);
    assert_false(evr_h128_eq(root1, root0)); /* 1.0 is not 1 */
    char *after = close_and_compare(cow, path, before);
    free(before);
    free(after);
    free(path);
    th_rmdir(dir);
}

/* Regression: early re-reads of a hot key copied its final image again each
 * time, eating the memory meant for pre-images. */
static void test_refresh_budget(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "b.db");
    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
                     "INSERT INTO t VALUES(1, zeroblob(100000)),"
                     "(2, zeroblob(150000));");
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(cow));
    struct evr_cow_conn *c = evr_cow_seq(cow);
    th_must(evr_cow_batch_begin(cow, 1, &err), &err);
    for (int i = 0; i < 30; i++) {
        char sql[128];
        snprintf(sql, sizeof sql,
                 "BEGIN; UPDATE t SET v = zeroblob(%d) WHERE k = 1; COMMIT",
                 100000 + i);
        th_exec(db, sql);
        th_must(evr_cow_batch_refresh(cow, &err), &err);
    }
    th_exec(db, "BEGIN; UPDATE t SET v = x'01' WHERE k = 2");
    assert_int_equal(evr_cow_conn_take_capture_error(c), 0);
    th_exec(db, "COMMIT");
    evr_h128 root1, full;
    th_must(evr_cow_batch_end(cow, &root1, &err), &err);
    th_must(evr_cow_digest_full(cow, &full, &err), &err);
    assert_true(evr_h128_eq(root1, full));
    th_must(evr_cow_rollback(cow, 1, &err), &err);
    evr_cow_close(cow);
    free(path);
    th_rmdir(dir);
}

/* A batch whose end failed must be rolled back before another begins, and
 * a rollback restores the op counter to what it was. */
static void test_failed_end_and_ops(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *path = th_path(dir, "e.db");
    th_make_db(path, "CREATE TABLE t(k INTEGER PRIMARY KEY, v INT);"
                     "INSERT INTO t VALUES(1, 1);");
    struct evr_cow *cow = th_cow_open(path, 2, 1u << 20);
    struct evr_err err = {0};
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(cow));
    th_must(evr_cow_batch_begin(cow, 5, &err), &err);
    th_exec(db, "BEGIN; UPDATE t SET v = 2; COMMIT");
    sqlite3_set_authorizer(db, deny_reads, NULL);
    assert_int_not_equal(evr_cow_batch_end(cow, NULL, &err), 0);
    sqlite3_set_authorizer(db, NULL, NULL);
    assert_int_equal(evr_cow_batch_begin(cow, 6, &err), EVR_ESTATE);
    assert_non_null(strstr(err.msg, "did not end"));
    th_must(evr_cow_rollback(cow, 5, &err), &err);
    assert_int_equal(evr_cow_last_op(cow), 0);
    th_must(evr_cow_batch_begin(cow, 9, &err), &err);
    th_must(evr_cow_batch_end(cow, NULL, &err), &err);
    th_must(evr_cow_rollback(cow, 9, &err), &err);
    assert_int_equal(evr_cow_last_op(cow), 0);
    evr_cow_close(cow);
    free(path);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollback_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_after_failed_statements,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_stacked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_order_enforced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_capture_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
        cmocka_unit_test(test_altered_table),
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_refresh_failure),
        cmocka_unit_test(test_numeric_key_in_blob_column),
        cmocka_unit_test(test_refresh_budget),
        cmocka_unit_test(test_failed_end_and_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
