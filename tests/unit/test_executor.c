/* The executor: sequential determinism, parallel == sequential in mixer
 * order (and in batch order), wrong hints, request contexts, response
 * digests, request failures. */
#include "tests/unit/helpers/cm.h"

#include "executor/batchset.h"
#include "executor/executor.h"
#include "executor/internal.h"
#include "mixer/mixer.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"
#include "workloads/kv/kv.h"

static void kv_app(struct evr_app *app, const char *reads)
{
    /* A small key space; what is not a read is mostly puts, with deletes
     * and scans mixed in. */
    double r = atof(reads);
    char del[32], scan[32];
    snprintf(del, sizeof del, "%.4f", (1 - r) * 0.2);
    snprintf(scan, sizeof scan, "%.4f", (1 - r) * 0.1);
    struct evr_app_opt opts[] = {
        {"keys", "500"},          {"value-size", "100"},
        {"read-fraction", reads}, {"delete-fraction", del},
        {"scan-fraction", scan},  {"scan-length", "5"},
    };
    struct evr_err err = {0};
    th_must(evr_app_open("kv", opts, 6, app, &err), &err);
}

static char *populate(const char *dir, const char *name,
                      const struct evr_app *app)
{
    char *path = th_path(dir, name);
    struct evr_err err = {0};
    th_must(evr_app_populate_file(app, path, &err), &err);
    return path;
}

static void test_sequential_deterministic(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, "0.5");
    char *p1 = populate(dir, "one.db", &app);
    char *p2 = populate(dir, "two.db", &app);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, 30, 64, th_seed(5), 1000, &set, &err),
         &err);
    struct th_replica a, b;
    th_replica_open(&a, p1, &app, 1, 256u << 20);
    th_replica_open(&b, p2, &app, 1, 256u << 20);
    assert_true(evr_h128_eq(evr_cow_digest(a.cow), evr_cow_digest(b.cow)));
    for (uint32_t i = 0; i < set.nbatches; i++) {
        struct evr_batch_result ra, rb;
        th_must(evr_execute_batch(a.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                               NULL, &ra, &err),
             &err);
        th_must(evr_execute_batch(b.ex, &set.batches[i], EVR_EXEC_SEQUENTIAL,
                               NULL, &rb, &err),
             &err);
        assert_true(evr_h128_eq(ra.token, rb.token));
        th_must(evr_cow_commit(a.cow, set.batches[i].op, &err), &err);
        th_must(evr_cow_commit(b.cow, set.batches[i].op, &err), &err);
    }
    struct evr_exec_stats st;
    evr_executor_stats(a.ex, &st);
    assert_int_equal(st.requests, 30 * 64);
    th_replica_close(&a);
    th_replica_close(&b);
    char *d1 = th_dump_file(p1);
    char *d2 = th_dump_file(p2);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(p1);
    free(p2);
    th_rmdir(dir);
}

/* Parallel with the mixer's plan == sequential in mixer order == sequential
 * in batch order: tokens agree batch by batch. */
static void run_parallel_vs_sequential(const char *mix, int threads)
{
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, mix);
    char *pp = populate(dir, "par.db", &app);
    char *pm = populate(dir, "mix.db", &app);
    char *ps = populate(dir, "seq.db", &app);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&app, 40, 128, th_seed(6), 0, &set, &err),
         &err);
    struct th_replica par, mixo, seq;
    th_replica_open(&par, pp, &app, threads, 256u << 20);
    th_replica_open(&mixo, pm, &app, 1, 256u << 20);
    th_replica_open(&seq, ps, &app, 1, 256u << 20);
    struct evr_mixer *m;
    th_must(evr_mixer_new(1024, &m, &err), &err);
    uint64_t subs = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(m, b->csets, b->n, &plan, &err), &err);
        subs += plan.nsub;
        struct evr_batch_result rp, rs;
        th_must(evr_execute_batch(par.ex, b, EVR_EXEC_PARALLEL, &plan, &rp, &err),
             &err);
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
    /* The mix did run in parallel: sub-batches were wider than one. */
    assert_true(subs < (uint64_t)set.nbatches * 128 / 2);
    evr_h128 full;
    th_must(evr_cow_digest_full(par.cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, evr_cow_digest(par.cow)));
    evr_mixer_free(m);
    th_replica_close(&par);
    th_replica_close(&mixo);
    th_replica_close(&seq);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(pp);
    free(pm);
    free(ps);
    th_rmdir(dir);
}

static void test_parallel_equals_sequential(void **state)
{
    (void)state;
    run_parallel_vs_sequential("0.95", 2);
    run_parallel_vs_sequential("0.5", 4);
    run_parallel_vs_sequential("0.0", 3);
}

/* Half-wrong hints: puts on keys with an odd first hash bit claim to be
 * reads. Hinted writers run on worker 0 (and its early re-reads run while
 * readers work), unhinted ones write from reader connections at the same
 * time. */
static void half_hints(void *app, const uint8_t *req, uint32_t len,
                       struct evr_cset *cs)
{
    evr_kv_app.classify(app, req, len, cs);
    if (cs->n == 1 && cs->e[0].mode == EVR_WRITE && (cs->e[0].key & 1)) {
        cs->e[0].mode = EVR_READ;
    }
}

static void run_wrong_hints(void (*classify)(void *, const uint8_t *,
                                             uint32_t, struct evr_cset *),
                            enum evr_txn_mode mode, bool expect_one_sub);

/* Hints that say nothing conflicts and nothing writes (th_no_hints), and
 * half-wrong ones: writers collide inside SQLite. Nothing hangs or
 * crashes, every batch ends, the captured digest stays exact, and rollback
 * still restores. */
static void test_wrong_hints(void **state)
{
    (void)state;
    run_wrong_hints(th_no_hints, EVR_TXN_GROUPED, true);
    run_wrong_hints(th_no_hints, EVR_TXN_PER_REQUEST, true);
    run_wrong_hints(half_hints, EVR_TXN_GROUPED, false);
    run_wrong_hints(half_hints, EVR_TXN_PER_REQUEST, false);
}

static void run_wrong_hints(void (*classify)(void *, const uint8_t *,
                                             uint32_t, struct evr_cset *),
                            enum evr_txn_mode mode, bool expect_one_sub)
{
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, "0.2");
    struct evr_app_ops lying = *app.ops;
    lying.classify = classify;
    struct evr_app liar = {&lying, app.impl};
    char *path = populate(dir, "liar.db", &app);
    struct evr_batchset set;
    struct evr_err err = {0};
    th_must(evr_batchset_generate(&liar, 20, 200, th_seed(7), 0, &set, &err),
         &err);
    struct th_replica r;
    th_replica_open(&r, path, &liar, 4, 256u << 20);
    evr_executor_set_txn_mode(r.ex, mode);
    struct evr_mixer *m;
    th_must(evr_mixer_new(1024, &m, &err), &err);
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(m, b->csets, b->n, &plan, &err), &err);
        if (expect_one_sub) {
            assert_int_equal(plan.nsub, 1); /* everything at once */
        }
        evr_h128 before = evr_cow_digest(r.cow);
        struct evr_batch_result res;
        th_must(evr_execute_batch(r.ex, b, EVR_EXEC_PARALLEL, &plan, &res, &err),
             &err);
        evr_h128 full;
        th_must(evr_cow_digest_full(r.cow, &full, &err), &err);
        assert_true(evr_h128_eq(full, res.state_root));
        if (i % 4 == 3) {
            th_must(evr_cow_rollback(r.cow, b->op, &err), &err);
            assert_true(evr_h128_eq(evr_cow_digest(r.cow), before));
            th_must(evr_cow_digest_full(r.cow, &full, &err), &err);
            assert_true(evr_h128_eq(full, before));
            th_must(evr_execute_batch(r.ex, b, EVR_EXEC_SEQUENTIAL, NULL, &res,
                                   &err),
                 &err);
        }
        th_must(evr_cow_commit(r.cow, b->op, &err), &err);
    }
    const struct evr_response *resp = evr_executor_responses(r.ex);
    for (uint32_t i = 0; i < 200; i++) {
        assert_int_equal(resp[i].status, 0); /* busy writers were retried */
    }
    evr_mixer_free(m);
    th_replica_close(&r);
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

/* A tiny application that answers with its context. */
static int ctx_execute(void *app, struct evr_ctx *ctx, const uint8_t *req,
                       uint32_t len, struct evr_buf *resp)
{
    (void)app;
    (void)req;
    (void)len;
    int rc = evr_buf_put_u64(resp, (uint64_t)ctx->timestamp_us);
    rc = rc ? rc : evr_buf_put_u64(resp, evr_rng_next(&ctx->rng));
    rc = rc ? rc : evr_buf_put_u64(resp, ctx->op);
    return rc ? rc : evr_buf_put_u32(resp, ctx->index);
}

static void test_context(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, "1.0");
    struct evr_app_ops ops = *app.ops;
    ops.execute = ctx_execute;
    struct evr_app ctxapp = {&ops, app.impl};
    char *path = populate(dir, "ctx.db", &app);
    struct th_replica r;
    th_replica_open(&r, path, &ctxapp, 2, 256u << 20);
    uint8_t req[1] = {0};
    struct evr_request reqs[8];
    struct evr_cset cs[8];
    for (int i = 0; i < 8; i++) {
        reqs[i] = (struct evr_request){req, 1};
        evr_cset_clear(&cs[i]);
    }
    struct evr_batch b = {.op = 9, .timestamp_us = 123456, .seed = 77,
                          .n = 8, .req = reqs, .csets = cs};
    struct evr_mixer *m;
    struct evr_err err = {0};
    th_must(evr_mixer_new(64, &m, &err), &err);
    struct evr_plan plan;
    th_must(evr_mixer_plan(m, cs, 8, &plan, &err), &err);
    struct evr_batch_result rp, rs;
    th_must(evr_execute_batch(r.ex, &b, EVR_EXEC_PARALLEL, &plan, &rp, &err),
         &err);
    uint8_t par[8][28];
    const struct evr_response *resp = evr_executor_responses(r.ex);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(resp[i].body.len, 28);
        memcpy(par[i], resp[i].body.data, 28);
        assert_int_equal(evr_load_u64(par[i]), 123456);
        assert_int_equal(evr_load_u64(par[i] + 16), 9);
        assert_int_equal(evr_load_u32(par[i] + 24), (uint32_t)i);
        struct evr_rng want;
        evr_rng_seed2(&want, 77, (uint64_t)i);
        assert_int_equal(evr_load_u64(par[i] + 8), evr_rng_next(&want));
    }
    th_must(evr_cow_rollback(r.cow, 9, &err), &err);
    /* Sequential in reverse order: the same responses, the same digest. */
    uint32_t rev[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    th_must(evr_cow_batch_begin(r.cow, 9, &err), &err);
    th_must(evr_executor_run_sequential(r.ex, &b, rev, &err), &err);
    th_must(evr_cow_batch_end(r.cow, NULL, &err), &err);
    for (int i = 0; i < 8; i++) {
        assert_memory_equal(resp[i].body.data, par[i], 28);
    }
    assert_true(evr_h128_eq(evr_executor_response_digest(r.ex),
                            rp.response_digest));
    th_must(evr_cow_rollback(r.cow, 9, &err), &err);
    th_must(evr_execute_batch(r.ex, &b, EVR_EXEC_SEQUENTIAL, NULL, &rs, &err),
         &err);
    assert_true(evr_h128_eq(rs.token, rp.token));
    /* A different timestamp is a different token. */
    th_must(evr_cow_rollback(r.cow, 9, &err), &err);
    b.timestamp_us++;
    th_must(evr_execute_batch(r.ex, &b, EVR_EXEC_SEQUENTIAL, NULL, &rs, &err),
         &err);
    assert_false(evr_h128_eq(rs.token, rp.token));
    evr_mixer_free(m);
    th_replica_close(&r);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

/* Bad requests and capture failures are request errors, not batch errors:
 * status set, body empty, nothing of theirs committed. */
static void test_request_failures(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, "1.0");
    char *path = populate(dir, "f.db", &app);
    struct th_replica r;
    th_replica_open(&r, path, &app, 2, 64 * 1024);
    struct evr_buf bytes;
    evr_buf_init(&bytes, SIZE_MAX);
    uint8_t key[EVR_KV_KEY_BYTES];
    uint8_t big[4000] = {0};
    enum { PUTS = 300 };
    size_t off[PUTS + 2];
    for (int i = 0; i < PUTS; i++) {
        off[i] = bytes.len;
        evr_kv_key((uint64_t)i, key);
        evr_kv_encode(&bytes, EVR_KV_PUT, key, sizeof key, big, sizeof big, 0);
    }
    off[PUTS] = bytes.len;
    evr_buf_put(&bytes, "\x09garbage", 8);
    off[PUTS + 1] = bytes.len;
    struct evr_request reqs[PUTS + 1];
    struct evr_cset cs[PUTS + 1];
    for (int i = 0; i < PUTS + 1; i++) {
        reqs[i] = (struct evr_request){bytes.data + off[i],
                                       (uint32_t)(off[i + 1] - off[i])};
        app.ops->classify(app.impl, reqs[i].data, reqs[i].len, &cs[i]);
    }
    struct evr_batch b = {.op = 1, .seed = 1, .n = PUTS + 1, .req = reqs,
                          .csets = cs};
    evr_h128 before = evr_cow_digest(r.cow);
    struct evr_batch_result res;
    struct evr_err err = {0};
    th_must(evr_execute_batch(r.ex, &b, EVR_EXEC_SEQUENTIAL, NULL, &res, &err),
         &err);
    const struct evr_response *resp = evr_executor_responses(r.ex);
    assert_int_equal(resp[PUTS].status, EVR_EINVAL);
    assert_int_equal(resp[PUTS].body.len, 0);
    int ok = 0, limited = 0;
    for (int i = 0; i < PUTS; i++) {
        ok += resp[i].status == 0;
        limited += resp[i].status == EVR_ELIMIT;
    }
    assert_true(ok > 0);
    assert_true(limited > 0); /* 64 KiB of pre-images ran out */
    assert_int_equal(ok + limited, PUTS);
    /* The final images (4 KB each) did not fit either: the digest is still
     * exact, but this batch has no delta to give. */
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    assert_int_equal(evr_cow_delta_export(r.cow, 1, &delta, &err), EVR_ENOENT);
    assert_non_null(strstr(err.msg, "memory limit"));
    evr_buf_free(&delta);
    evr_h128 full;
    th_must(evr_cow_digest_full(r.cow, &full, &err), &err);
    assert_true(evr_h128_eq(full, res.state_root));
    th_must(evr_cow_rollback(r.cow, 1, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(r.cow), before));
    evr_buf_free(&bytes);
    th_replica_close(&r);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

/* Claim order inside a sub-batch: kinds measured slower go first, ties
 * and kinds never measured keep the plan's order (unmeasured last). */
static void test_claim_order(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app, "0.5");
    char *path = populate(dir, "order.db", &app);
    struct th_replica r;
    th_replica_open(&r, path, &app, 2, 256u << 20);
    struct evr_buf bytes;
    evr_buf_init(&bytes, SIZE_MAX);
    uint8_t key[EVR_KV_KEY_BYTES];
    const enum evr_kv_op ops[] = {EVR_KV_GET, EVR_KV_PUT, EVR_KV_GET,
                                  EVR_KV_DEL, EVR_KV_PUT, EVR_KV_GET};
    enum { N = 6 };
    size_t off[N + 1];
    for (int i = 0; i < N; i++) {
        off[i] = bytes.len;
        evr_kv_key((uint64_t)i, key);
        evr_kv_encode(&bytes, ops[i], key, sizeof key, key, 8, 0);
    }
    off[N] = bytes.len;
    struct evr_request reqs[N];
    for (int i = 0; i < N; i++) {
        reqs[i] = (struct evr_request){bytes.data + off[i],
                                       (uint32_t)(off[i + 1] - off[i])};
    }
    /* Learn from a batch without the delete: puts 50 us, gets 5 us. */
    struct evr_batch learn = {.op = 1, .n = 3, .req = reqs};
    r.ex->resp[0].exec_ns = 5000;
    r.ex->resp[1].exec_ns = 50000;
    r.ex->resp[2].exec_ns = 5000;
    evr__cost_kinds(r.ex, &learn);
    evr__cost_learn(r.ex, &learn);
    struct evr_batch b = {.op = 2, .n = N, .req = reqs};
    uint32_t items[N] = {5, 4, 3, 2, 1, 0};
    evr__cost_kinds(r.ex, &b);
    evr__cost_order(r.ex, items, N);
    const uint32_t want[N] = {4, 1, 5, 2, 0, 3};
    assert_memory_equal(items, want, sizeof want);
    evr_buf_free(&bytes);
    th_replica_close(&r);
    evr_app_close(&app);
    free(path);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_deterministic),
        cmocka_unit_test(test_parallel_equals_sequential),
        cmocka_unit_test(test_wrong_hints),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_request_failures),
        cmocka_unit_test(test_claim_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
