/* TPC-W on the execution core: sequential execution is deterministic, and
 * with the application's conflict sets parallel execution in the mixer's
 * plan == sequential in mixer order == sequential in batch order, batch by
 * batch, for the three mixes. A small store (1K items, 2 EBs) makes the
 * sessions collide often on carts, customers, items and orders. */
#include "tests/unit/helpers/cm.h"

#include "executor/batchset.h"
#include "executor/executor.h"
#include "mixer/mixer.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"
#include "tests/unit/helpers/tpcw_audit.h"

#define BATCHES 24
#define BATCH_SIZE 96

static void tpcw_app_ebs(struct evr_app *app, const char *mix,
                         const char *ebs)
{
    const struct evr_app_opt opts[] = {
        {"items", "1000"}, {"ebs", ebs}, {"mix", mix}, {"think", "0"}};
    struct evr_err err = {0};
    th_must(evr_app_open("tpcw", opts, 4, app, &err), &err);
}

static void tpcw_app(struct evr_app *app, const char *mix)
{
    tpcw_app_ebs(app, mix, "2");
}

/* Populates "start.db" once and copies it to each name. */
static void populate_copies(const char *dir, const struct evr_app *app,
                            char **paths, const char *const *names, int n)
{
    char *start = th_path(dir, "start.db");
    struct evr_err err = {0};
    th_must(evr_app_populate_file(app, start, &err), &err);
    for (int i = 0; i < n; i++) {
        paths[i] = th_path(dir, names[i]);
        th_copy_file(start, paths[i]);
    }
    free(start);
}

/* Requests that succeeded: a run in which everything failed would make
 * equal tokens meaningless. */
static void count_ok(const struct evr_executor *ex, uint32_t n, uint32_t *ok)
{
    const struct evr_response *resp = evr_executor_responses(ex);
    for (uint32_t i = 0; i < n; i++) {
        *ok += resp[i].status == 0;
    }
}

/* Cart refreshes name lines by their position on the page the EB last saw
 * (predicted: the generator cannot read pages). The store reports how many
 * of a refresh's positions existed: nearly all must. */
struct refresh_count {
    unsigned sent, applied, refreshes;
};

static void count_refreshes(const struct evr_executor *ex, uint32_t n,
                            struct refresh_count *c)
{
    const struct evr_response *resp = evr_executor_responses(ex);
    for (uint32_t i = 0; i < n; i++) {
        const char *tag = "refreshed=";
        const char *at = memmem(resp[i].body.data, resp[i].body.len, tag,
                                strlen(tag));
        unsigned applied, sent;
        if (at != NULL && sscanf(at, "refreshed=%u of %u", &applied,
                                 &sent) == 2) {
            c->applied += applied;
            c->sent += sent;
            c->refreshes++;
        }
    }
}

static void run_sequential_deterministic(const char *mix)
{
    char *dir = th_mkdtemp();
    struct evr_app app;
    tpcw_app(&app, mix);
    char *paths[2];
    const char *const names[] = {"one.db", "two.db"};
    populate_copies(dir, &app, paths, names, 2);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, BATCHES, BATCH_SIZE, th_seed(11),
                                  evr_app_start_us(&app), &set, &err),
            &err);
    struct th_replica a, b;
    th_replica_open(&a, paths[0], &app, 1, 0);
    th_replica_open(&b, paths[1], &app, 1, 0);
    uint32_t ok = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        struct evr_batch_result ra, rb;
        th_must(evr_execute_batch(a.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &ra, &err),
                &err);
        th_must(evr_execute_batch(b.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &rb, &err),
                &err);
        assert_true(evr_h128_eq(ra.token, rb.token));
        count_ok(a.ex, set.batches[i].n, &ok);
        th_must(evr_cow_commit(a.cow, set.batches[i].op, &err), &err);
        th_must(evr_cow_commit(b.cow, set.batches[i].op, &err), &err);
    }
    assert_true(ok > set.nbatches * BATCH_SIZE * 9 / 10);
    th_replica_close(&a);
    th_replica_close(&b);
    char *d1 = th_dump_file(paths[0]);
    char *d2 = th_dump_file(paths[1]);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(paths[0]);
    free(paths[1]);
    th_rmdir(dir);
}

static void test_sequential_deterministic(void **state)
{
    (void)state;
    run_sequential_deterministic("browsing");
    run_sequential_deterministic("ordering");
}

static void run_parallel_vs_sequential(const char *mix, int threads)
{
    char *dir = th_mkdtemp();
    struct evr_app app;
    tpcw_app(&app, mix);
    char *paths[3];
    const char *const names[] = {"par.db", "mix.db", "seq.db"};
    populate_copies(dir, &app, paths, names, 3);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, BATCHES, BATCH_SIZE, th_seed(12),
                                  evr_app_start_us(&app), &set, &err),
            &err);
    struct th_replica par, mixo, seq;
    th_replica_open(&par, paths[0], &app, threads, 0);
    th_replica_open(&mixo, paths[1], &app, 1, 0);
    th_replica_open(&seq, paths[2], &app, 1, 0);
    struct evr_mixer *m;
    th_must(evr_mixer_new(1024, &m, &err), &err);
    uint64_t subs = 0;
    uint32_t ok = 0;
    struct refresh_count rc = {0, 0, 0};
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(m, b->csets, b->n, &plan, &err), &err);
        subs += plan.nsub;
        struct evr_batch_result rp, rs;
        th_must(evr_execute_batch(par.ex, b, EVR_EXEC_PARALLEL, &plan, &rp,
                                  &err),
                &err);
        count_ok(par.ex, b->n, &ok);
        count_refreshes(par.ex, b->n, &rc);
        evr_h128 tm = th_run_in_plan_order(&mixo, b, &plan);
        th_must(evr_execute_batch(seq.ex, b, EVR_EXEC_SEQUENTIAL, NULL, &rs,
                                  &err),
                &err);
        assert_true(evr_h128_eq(rp.token, tm));
        assert_true(evr_h128_eq(rp.token, rs.token));
        th_must(evr_cow_commit(par.cow, b->op, &err), &err);
        th_must(evr_cow_commit(mixo.cow, b->op, &err), &err);
        th_must(evr_cow_commit(seq.cow, b->op, &err), &err);
    }
    /* The batches did run in parallel, and did real work. */
    assert_true(subs < (uint64_t)set.nbatches * BATCH_SIZE / 2);
    assert_true(ok > set.nbatches * BATCH_SIZE * 9 / 10);
    print_message("# %s: %u refreshes, %u of %u positions existed\n", mix,
                  rc.refreshes, rc.applied, rc.sent);
    assert_true(rc.refreshes >= 5);
    assert_true(rc.applied * 100 >= rc.sent * 95);
    evr_h128 full;
    th_must(evr_cow_digest_full(par.cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, evr_cow_digest(par.cow)));
    evr_mixer_free(m);
    th_replica_close(&par);
    th_replica_close(&mixo);
    th_replica_close(&seq);
    evr_batchset_free(&set);
    evr_app_close(&app);
    for (int i = 0; i < 3; i++) {
        free(paths[i]);
    }
    th_rmdir(dir);
}

static void test_parallel_equals_sequential(void **state)
{
    (void)state;
    run_parallel_vs_sequential("browsing", 2);
    run_parallel_vs_sequential("shopping", 3);
    run_parallel_vs_sequential("ordering", 4);
}

/* Over a long shopping run, the cart positions the EBs predict exist in
 * the store: the generator's picture of each cart page is right. */
static void test_refresh_positions(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    tpcw_app_ebs(&app, "shopping", "10");
    char *path;
    const char *const names[] = {"carts.db"};
    populate_copies(dir, &app, &path, names, 1);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, 80, 128, th_seed(13), evr_app_start_us(&app), &set,
                                  &err),
            &err);
    struct th_replica r;
    th_replica_open(&r, path, &app, 1, 0);
    struct refresh_count c = {0, 0, 0};
    for (uint32_t i = 0; i < set.nbatches; i++) {
        struct evr_batch_result res;
        th_must(evr_execute_batch(r.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &res, &err),
                &err);
        count_refreshes(r.ex, set.batches[i].n, &c);
        th_must(evr_cow_commit(r.cow, set.batches[i].op, &err), &err);
    }
    print_message("# %u refreshes, %u of %u positions existed\n",
                  c.refreshes, c.applied, c.sent);
    assert_true(c.refreshes >= 30); /* SHOP -> SHOP is 4.5 % of carts */
    assert_true(c.applied * 100 >= c.sent * 98);
    th_replica_close(&r);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

/* Batches are stamped from the store's --now on: orders bought in them are
 * dated after every populated one. */
static void test_batches_follow_now(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    const struct evr_app_opt opts[] = {{"items", "1000"},
                                       {"ebs", "1"},
                                       {"mix", "ordering"},
                                       {"now", "1800000000"}};
    struct evr_app app;
    struct evr_err err = {0};
    th_must(evr_app_open("tpcw", opts, 4, &app, &err), &err);
    assert_true(evr_app_start_us(&app) == 1800000000000000LL);
    char *path;
    const char *const names[] = {"now.db"};
    populate_copies(dir, &app, &path, names, 1);
    struct evr_batchset set;
    th_must(evr_batchset_generate(&app, 20, 128, th_seed(14),
                                  evr_app_start_us(&app), &set, &err),
            &err);
    struct th_replica r;
    th_replica_open(&r, path, &app, 1, 0);
    for (uint32_t i = 0; i < set.nbatches; i++) {
        struct evr_batch_result res;
        th_must(evr_execute_batch(r.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &res, &err),
                &err);
        th_must(evr_cow_commit(r.cow, set.batches[i].op, &err), &err);
    }
    th_replica_close(&r);
    sqlite3 *db = th_open(path);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT count(*), sum(o_date >= '2027-01-15 08:00:00')"
                           " FROM orders WHERE o_id > 2592",
                           -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int bought = sqlite3_column_int(st, 0);
    assert_true(bought > 0);
    assert_int_equal(sqlite3_column_int(st, 1), bought);
    sqlite3_finalize(st);
    sqlite3_close(db);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

/* Every generated request, run alone, steps only statements whose tables
 * (and stock column) its conflict set names: the sets hold for the inputs
 * the emulated browsers make, not only for the hand-made ones of
 * test_tpcw_interactions. */
static void run_audit(const char *mix)
{
    char *dir = th_mkdtemp();
    struct evr_app app;
    tpcw_app(&app, mix);
    char *path;
    const char *const names[] = {"audit.db"};
    populate_copies(dir, &app, &path, names, 1);
    struct tpcw_audit *audit = tpcw_audit_new(path);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, 12, 128, th_seed(15),
                                  evr_app_start_us(&app), &set, &err),
            &err);
    struct th_replica r;
    th_replica_open(&r, path, &app, 1, 0);
    tpcw_audit_attach(audit, evr_cow_conn_db(evr_cow_seq(r.cow)));
    uint64_t op = 0;
    int checked = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        for (uint32_t k = 0; k < b->n; k++) {
            struct evr_batch one = {.op = ++op,
                                    .timestamp_us = b->timestamp_us,
                                    .seed = b->seed + k,
                                    .n = 1,
                                    .req = &b->req[k],
                                    .csets = &b->csets[k]};
            struct evr_batch_result res;
            tpcw_audit_begin(audit);
            th_must(evr_execute_batch(r.ex, &one, EVR_EXEC_SEQUENTIAL, NULL,
                                      &res, &err),
                    &err);
            checked += tpcw_audit_check(
                audit, &b->csets[k],
                app.ops->kind(app.impl, b->req[k].data, b->req[k].len));
            th_must(evr_cow_commit(r.cow, one.op, &err), &err);
        }
    }
    assert_true(checked > (int)(set.nbatches * 128));
    th_replica_close(&r);
    tpcw_audit_free(audit);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

static void test_sets_cover_statements(void **state)
{
    (void)state;
    run_audit("browsing");
    run_audit("shopping");
    run_audit("ordering");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_deterministic),
        cmocka_unit_test(test_parallel_equals_sequential),
        cmocka_unit_test(test_refresh_positions),
        cmocka_unit_test(test_sets_cover_statements),
        cmocka_unit_test(test_batches_follow_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
