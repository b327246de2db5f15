/* Request transactions: a failing request is undone alone inside a group,
 * a group whose COMMIT fails fails all its requests and changes nothing,
 * and both transaction modes agree with each other. */
#include "tests/unit/helpers/cm.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "executor/executor.h"
#include "mixer/mixer.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"

/* Requests: u8 op, u32 key, u32 value size. op 1 writes the row and then
 * fails; op 2 writes it; op 3 reads it. */
enum { OP_WRITE_FAIL = 1, OP_WRITE, OP_READ };

static int t_populate(void *app, sqlite3 *db, struct evr_err *err)
{
    (void)app;
    (void)err;
    return sqlite3_exec(db,
                        "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
                        "INSERT INTO t VALUES(1000, x'00')",
                        NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : EVR_ESQL;
}

static void t_classify(void *app, const uint8_t *req, uint32_t len,
                       struct evr_cset *cs)
{
    (void)app;
    (void)len;
    evr_cset_clear(cs);
    evr_cset_add(cs, 0, req[0] == OP_READ ? EVR_READ : EVR_WRITE, true,
                 evr_load_u32(req + 1));
}

static int t_execute(void *app, struct evr_ctx *ctx, const uint8_t *req,
                     uint32_t len, struct evr_buf *resp)
{
    (void)app;
    (void)len;
    uint32_t key = evr_load_u32(req + 1);
    uint32_t size = evr_load_u32(req + 5);
    sqlite3_stmt *st;
    if (req[0] == OP_READ) {
        st = evr_ctx_stmt(ctx, 0, "SELECT length(v) FROM t WHERE k = ?1");
        sqlite3_bind_int64(st, 1, key);
        int rc = sqlite3_step(st);
        evr_buf_put_u32(resp, rc == SQLITE_ROW ? (uint32_t)sqlite3_column_int(st, 0)
                                               : 0xffffffffu);
        sqlite3_reset(st);
        return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    st = evr_ctx_stmt(ctx, 1, "INSERT OR REPLACE INTO t VALUES(?1, "
                              "zeroblob(?2))");
    sqlite3_bind_int64(st, 1, key);
    sqlite3_bind_int64(st, 2, size);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return rc;
    }
    return req[0] == OP_WRITE_FAIL ? SQLITE_CONSTRAINT : SQLITE_OK;
}

static const struct evr_app_ops t_ops = {
    .name = "txn-test",
    .populate = t_populate,
    .classify = t_classify,
    .execute = t_execute,
};

struct fixture {
    char *dir;
    char *path;
    struct evr_app app;
    struct evr_cow *cow;
    struct evr_executor *ex;
    struct evr_mixer *mixer;
    uint8_t reqs[64][9];
    struct evr_request req[64];
    struct evr_cset cs[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = th_mkdtemp();
    f->path = th_path(f->dir, "t.db");
    f->app = (struct evr_app){&t_ops, NULL};
    struct evr_err err = {0};
    th_must(evr_app_populate_file(&f->app, f->path, &err), &err);
    f->cow = th_cow_open(f->path, 2, 0);
    th_must(evr_executor_new(f->cow, &f->app, 64, &f->ex, &err), &err);
    th_must(evr_mixer_new(64, &f->mixer, &err), &err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    evr_mixer_free(f->mixer);
    evr_executor_free(f->ex);
    evr_cow_close(f->cow);
    free(f->path);
    th_rmdir(f->dir);
    free(f);
    return 0;
}

static struct evr_batch make_batch(struct fixture *f, uint64_t op,
                                   const uint8_t *ops, uint32_t n,
                                   uint32_t size)
{
    for (uint32_t i = 0; i < n; i++) {
        f->reqs[i][0] = ops[i];
        evr_store_u32(f->reqs[i] + 1, i + 1);
        evr_store_u32(f->reqs[i] + 5, size);
        f->req[i] = (struct evr_request){f->reqs[i], 9};
        t_classify(NULL, f->reqs[i], 9, &f->cs[i]);
    }
    return (struct evr_batch){.op = op, .seed = op, .n = n, .req = f->req,
                              .csets = f->cs};
}

static int row_exists(struct fixture *f, uint32_t key)
{
    sqlite3 *db = th_open(f->path);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM t WHERE k = ?1", -1, &st,
                       NULL);
    sqlite3_bind_int64(st, 1, key);
    sqlite3_step(st);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void check_digest(struct fixture *f, evr_h128 root)
{
    evr_h128 full;
    struct evr_err err = {0};
    th_must(evr_cow_digest_full(f->cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, root));
}

/* In every mode, the failing request leaves nothing and the others stay. */
static void test_failed_request_undone_alone(void **state)
{
    struct fixture *f = *state;
    const uint8_t ops[] = {OP_WRITE, OP_WRITE_FAIL, OP_WRITE, OP_READ,
                           OP_WRITE_FAIL, OP_WRITE};
    struct evr_err err = {0};
    evr_h128 tokens[4];
    for (int mode = 0; mode < 4; mode++) {
        evr_executor_set_txn_mode(f->ex, mode % 2 ? EVR_TXN_PER_REQUEST
                                                  : EVR_TXN_GROUPED);
        struct evr_batch b = make_batch(f, 1, ops, 6, 10);
        struct evr_plan plan;
        th_must(evr_mixer_plan(f->mixer, f->cs, 6, &plan, &err), &err);
        struct evr_batch_result res;
        th_must(evr_execute_batch(f->ex, &b, mode < 2 ? EVR_EXEC_SEQUENTIAL
                                                   : EVR_EXEC_PARALLEL,
                               &plan, &res, &err),
             &err);
        const struct evr_response *r = evr_executor_responses(f->ex);
        int want[] = {0, SQLITE_CONSTRAINT, 0, 0, SQLITE_CONSTRAINT, 0};
        for (int i = 0; i < 6; i++) {
            assert_int_equal(r[i].status, want[i]);
        }
        assert_int_equal(evr_load_u32(r[3].body.data), 0xffffffffu);
        assert_int_equal(row_exists(f, 1), 1);
        assert_int_equal(row_exists(f, 2), 0);
        assert_int_equal(row_exists(f, 3), 1);
        assert_int_equal(row_exists(f, 5), 0);
        check_digest(f, res.state_root);
        tokens[mode] = res.token;
        th_must(evr_cow_rollback(f->cow, 1, &err), &err);
    }
    for (int mode = 1; mode < 4; mode++) {
        assert_true(evr_h128_eq(tokens[mode], tokens[0]));
    }
}

/* The disk fills while a group commits: every request of the group fails
 * with the error, nothing of theirs is in the database, and the batch
 * still ends with an exact digest and rolls back exactly. */
static void test_group_commit_fails(void **state)
{
    struct fixture *f = *state;
    uint8_t ops[40];
    for (int i = 0; i < 40; i++) {
        ops[i] = OP_WRITE;
    }
    struct evr_err err = {0};
    evr_h128 before = evr_cow_digest(f->cow);
    struct evr_batch b = make_batch(f, 1, ops, 40, 16384);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 64 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    struct evr_batch_result res;
    int rc = evr_execute_batch(f->ex, &b, EVR_EXEC_SEQUENTIAL, NULL, &res,
                               &err);
    setrlimit(RLIMIT_FSIZE, &old);
    th_must(rc, &err);
    const struct evr_response *r = evr_executor_responses(f->ex);
    for (int i = 0; i < 40; i++) {
        assert_int_not_equal(r[i].status, 0);
        assert_int_equal(r[i].body.len, 0);
        assert_int_equal(row_exists(f, (uint32_t)i + 1), 0);
    }
    assert_true(evr_h128_eq(res.state_root, before));
    check_digest(f, res.state_root);
    th_must(evr_cow_rollback(f->cow, 1, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(f->cow), before));
    /* With room again, the same batch goes through. */
    th_must(evr_execute_batch(f->ex, &b, EVR_EXEC_SEQUENTIAL, NULL, &res, &err),
         &err);
    assert_int_equal(row_exists(f, 40), 1);
    check_digest(f, res.state_root);
}

/* Regression: a full disk in the middle of a group makes SQLite roll the
 * whole transaction back; the requests before it in the group were
 * reported committed although their rows were gone. Whatever fails, a
 * request's status must say whether its row is there. */
static void test_group_lost_mid_way(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(f->cow));
    sqlite3_set_authorizer(db, NULL, NULL); /* the test's own PRAGMA */
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, NULL);
    sqlite3_step(st);
    int pages = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %d", pages + 12);
    th_exec(db, sql);
    uint8_t ops[40];
    for (int i = 0; i < 40; i++) {
        ops[i] = OP_WRITE;
    }
    struct evr_err err = {0};
    evr_h128 before = evr_cow_digest(f->cow);
    for (int mode = 0; mode < 2; mode++) {
        struct evr_batch b = make_batch(f, 1, ops, 40, 3000);
        struct evr_plan plan;
        th_must(evr_mixer_plan(f->mixer, f->cs, 40, &plan, &err), &err);
        struct evr_batch_result res;
        th_must(evr_execute_batch(f->ex, &b,
                                  mode ? EVR_EXEC_PARALLEL
                                       : EVR_EXEC_SEQUENTIAL,
                                  &plan, &res, &err),
                &err);
        const struct evr_response *r = evr_executor_responses(f->ex);
        int ok = 0;
        for (int i = 0; i < 40; i++) {
            int there = row_exists(f, (uint32_t)i + 1);
            assert_int_equal(r[i].status == 0, there);
            ok += there;
        }
        assert_true(ok > 0);
        assert_true(ok < 40);
        check_digest(f, res.state_root);
        th_must(evr_cow_rollback(f->cow, 1, &err), &err);
        assert_true(evr_h128_eq(evr_cow_digest(f->cow), before));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failed_request_undone_alone,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_lost_mid_way, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
