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

/* 2023-11-14 22:13:20 UTC, the population's "now": the batches run just
 * after it, so Buy Confirm's dates and the 60-day order window line up. */
#define T0_US 1700000000000000LL
#define BATCHES 24
#define BATCH_SIZE 96

static void tpcw_app(struct evr_app *app, const char *mix)
{
    const struct evr_app_opt opts[] = {
        {"items", "1000"}, {"ebs", "2"}, {"mix", mix}, {"think", "0"}};
    struct evr_err err = {0};
    th_must(evr_app_open("tpcw", opts, 4, app, &err), &err);
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

/* Requests that succeeded, and those the store refused: a run in which
 * everything failed would make equal tokens meaningless. */
static void count_statuses(const struct evr_executor *ex, uint32_t n,
                           uint32_t *ok, uint32_t *refused)
{
    const struct evr_response *resp = evr_executor_responses(ex);
    for (uint32_t i = 0; i < n; i++) {
        *ok += resp[i].status == 0;
        *refused += resp[i].status == EVR_EAPP;
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
                                  T0_US, &set, &err),
            &err);
    struct th_replica a, b;
    th_replica_open(&a, paths[0], &app, 1, 0);
    th_replica_open(&b, paths[1], &app, 1, 0);
    uint32_t ok = 0, refused = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        struct evr_batch_result ra, rb;
        th_must(evr_execute_batch(a.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &ra, &err),
                &err);
        th_must(evr_execute_batch(b.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                                  NULL, &rb, &err),
                &err);
        assert_true(evr_h128_eq(ra.token, rb.token));
        count_statuses(a.ex, set.batches[i].n, &ok, &refused);
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
                                  T0_US, &set, &err),
            &err);
    struct th_replica par, mixo, seq;
    th_replica_open(&par, paths[0], &app, threads, 0);
    th_replica_open(&mixo, paths[1], &app, 1, 0);
    th_replica_open(&seq, paths[2], &app, 1, 0);
    struct evr_mixer *m;
    th_must(evr_mixer_new(1024, &m, &err), &err);
    uint64_t subs = 0;
    uint32_t ok = 0, refused = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(m, b->csets, b->n, &plan, &err), &err);
        subs += plan.nsub;
        struct evr_batch_result rp, rs;
        th_must(evr_execute_batch(par.ex, b, EVR_EXEC_PARALLEL, &plan, &rp,
                                  &err),
                &err);
        count_statuses(par.ex, b->n, &ok, &refused);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_deterministic),
        cmocka_unit_test(test_parallel_equals_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
