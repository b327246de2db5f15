/* The server's host over cow_state (server/host.h): the client table rule
 * inside the state, rollback, snapshots taken while batches wait
 * uncommitted, clean stop and restart. Driven through the host table the
 * way the protocol core drives it, with kv requests. */
#include "tests/unit/helpers/cm.h"

#include <unistd.h>

#include "common/buf.h"
#include "cow_state/cow_state.h"
#include "server/host.h"
#include "workloads/kv/kv.h"

#define OK(x) assert_int_equal((x), 0)

struct fx {
    char dir[64];
    struct evr_app app;
    struct evr_host *h;
    struct evr_vr_host t;
    struct evr_vr_applied applied;
    enum evr_host_start start;
    struct evr_buf enc[16];
    struct evr_vr_req req[16];
    uint32_t n;
};

static struct fx F;

/* How the host runs: inline on disk (the default), or as the server runs
 * it — async jobs on its own thread, state.db in memory. */
static bool ASYNC_MEMORY;
static int jobs_done; /* on_done calls (from the execution thread) */
static int jobs_queued;

static void count_done(void *data)
{
    (void)data;
    __atomic_fetch_add(&jobs_done, 1, __ATOMIC_SEQ_CST);
}

static int open_host_rc(struct evr_err *err);

static void open_host(void)
{
    struct evr_err err;
    OK(open_host_rc(&err));
}

/* Replaces DIR/clean-stop with the formatted text. */
static void write_record(const char *fmt, const char *root, const char *resp)
{
    char path[128];
    snprintf(path, sizeof path, "%s/clean-stop", F.dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fprintf(f, fmt, root, resp) > 0);
    assert_int_equal(fclose(f), 0);
}

static int open_host_rc(struct evr_err *err)
{
    /* async + memory with one thread: the server's choice for a local
     * cluster on 2 cores, and cow_state's in-memory rollback journal */
    struct evr_host_opts o = {.dir = F.dir, .app = &F.app,
                              .threads = ASYNC_MEMORY ? 1 : 2,
                              .batch_size_max = 64, .depth_max = 16,
                              .capture = true, .async = ASYNC_MEMORY,
                              .memory = ASYNC_MEMORY,
                              .on_done = count_done};
    int rc = evr_host_open(&o, &F.h, &F.start, &F.applied, err);
    if (rc == 0) {
        F.t = evr_host_table(F.h);
    }
    return rc;
}

static int setup_as(bool async_memory)
{
    ASYNC_MEMORY = async_memory;
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/evr-host-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    struct evr_app_opt opts[] = {{"keys", "10"}, {"value-size", "8"}};
    struct evr_err err;
    OK(evr_app_open("kv", opts, 2, &F.app, &err));
    open_host();
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return setup_as(false);
}

static int setup_async_memory(void **state)
{
    (void)state;
    return setup_as(true);
}

static int teardown(void **state)
{
    (void)state;
    evr_host_close(F.h, NULL, NULL); /* joins the execution thread */
    assert_int_equal(__atomic_load_n(&jobs_done, __ATOMIC_SEQ_CST),
                     jobs_queued);
    jobs_done = jobs_queued = 0;
    evr_app_close(&F.app);
    for (uint32_t i = 0; i < 16; i++) {
        evr_buf_free(&F.enc[i]);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Appends a request of `client` numbered `no` to the batch being built. */
static void add(uint64_t client, uint64_t no, enum evr_kv_op op,
                const char *key, const char *value)
{
    struct evr_buf *b = &F.enc[F.n];
    evr_buf_free(b);
    evr_buf_init(b, 1u << 20);
    OK(evr_kv_encode(b, op, key, (uint32_t)strlen(key), value,
                     value ? (uint32_t)strlen(value) : 0, 0));
    F.req[F.n] = (struct evr_vr_req){client, no, (uint32_t)b->len, b->data};
    F.n++;
}

/* Executes the built batch as op; res gets its result. */
static void run(uint64_t op, bool sequential, struct evr_host_result *res)
{
    struct evr_vr_batch b = {.op = op, .timestamp_us = 1700000000000000LL,
                             .seed = op, .n = F.n, .req = F.req};
    struct evr_err err;
    OK(F.t.execute(F.t.data, &b, sequential, &err));
    jobs_queued += ASYNC_MEMORY;
    if (ASYNC_MEMORY) {
        OK(evr_host_wait(F.h, &err));
    }
    assert_true(evr_host_take(F.h, res));
    assert_int_equal(res->op, op);
    assert_int_equal(res->n, F.n);
    F.n = 0;
}

/* A get's response: "1" + value, or "0" when the key is missing. */
static void check_get(const struct evr_vr_response *r, const char *v)
{
    assert_int_equal(r->status, 0);
    if (v == NULL) {
        assert_true(r->len == 1 && r->data[0] == 0);
        return;
    }
    assert_int_equal(r->len, 1 + strlen(v));
    assert_int_equal(r->data[0], 1);
    assert_memory_equal(r->data + 1, v, strlen(v));
}

static void test_client_table_rule(void **state)
{
    (void)state;
    struct evr_host_result r;
    struct evr_err err;
    assert_int_equal(F.start, EVR_HOST_NEW);
    add(1, 1, EVR_KV_PUT, "a", "one");
    add(2, 1, EVR_KV_GET, "a", NULL);
    add(1, 1, EVR_KV_PUT, "a", "IGNORED"); /* retry inside the batch */
    add(3, 5, EVR_KV_PUT, "b", "five");
    add(3, 3, EVR_KV_PUT, "b", "three");   /* older than 5: stale */
    run(1, false, &r);
    assert_int_equal(r.resp[0].status, 0);
    check_get(&r.resp[1], "one");
    assert_int_equal(r.resp[2].status, r.resp[0].status);
    assert_int_equal(r.resp[2].len, r.resp[0].len);
    assert_int_equal(r.resp[4].status, EVR_ESTATE);
    OK(F.t.commit(F.t.data, 1, &err));

    /* a retry of a committed put is answered, not executed again; a read
     * is executed again and sees the state of now */
    add(1, 1, EVR_KV_PUT, "a", "AGAIN");
    add(4, 1, EVR_KV_PUT, "a", "two");
    run(2, true, &r);
    assert_int_equal(r.resp[0].status, 0);
    OK(F.t.commit(F.t.data, 2, &err));
    add(2, 1, EVR_KV_GET, "a", NULL);
    add(5, 1, EVR_KV_GET, "b", NULL);
    run(3, false, &r);
    check_get(&r.resp[0], "two");
    check_get(&r.resp[1], "five");
    OK(F.t.commit(F.t.data, 3, &err));
    assert_true(evr_h128_eq(evr_host_applied_root(F.h), r.root));
}

static void test_rollback_and_snapshot_under_load(void **state)
{
    (void)state;
    struct evr_host_result r1, r2, r3;
    struct evr_err err;
    evr_h128 start = evr_host_applied_root(F.h);
    add(1, 1, EVR_KV_PUT, "x", "1");
    run(1, false, &r1);
    OK(F.t.commit(F.t.data, 1, &err));
    add(1, 2, EVR_KV_PUT, "x", "2");
    run(2, false, &r2);
    add(1, 3, EVR_KV_PUT, "y", "3");
    run(3, false, &r3);
    assert_false(evr_h128_eq(r1.root, start));

    /* ops 2 and 3 wait uncommitted: the snapshot is of op 1 */
    struct evr_buf snap;
    evr_buf_init(&snap, SIZE_MAX);
    evr_h128 root;
    OK(F.t.snapshot_export(F.t.data, &snap, &root, &err));
    assert_true(evr_h128_eq(root, r1.root));
    assert_true(snap.len > 0);
    /* ...and they are still there, exactly */
    OK(F.t.commit(F.t.data, 2, &err));
    assert_true(evr_h128_eq(evr_host_applied_root(F.h), r2.root));
    OK(F.t.rollback(F.t.data, 3, &err));
    add(1, 3, EVR_KV_PUT, "y", "3");
    run(3, true, &r3);
    OK(F.t.commit(F.t.data, 3, &err));

    /* a replica that lost its state (no clean stop: repopulated) installs
     * the snapshot of op 1, digest checked */
    OK(evr_host_close(F.h, NULL, &err));
    open_host();
    assert_int_equal(F.start, EVR_HOST_RESET);
    OK(F.t.snapshot_import(F.t.data, 1, snap.data, snap.len, &root, &err));
    assert_true(evr_h128_eq(root, r1.root));
    assert_true(evr_h128_eq(evr_host_applied_root(F.h), r1.root));
    add(9, 1, EVR_KV_GET, "x", NULL);
    run(2, false, &r2);
    check_get(&r2.resp[0], "1");
    evr_buf_free(&snap);
}

static void test_clean_stop_and_crash(void **state)
{
    (void)state;
    struct evr_host_result r;
    struct evr_err err;
    evr_h128 populated = evr_host_applied_root(F.h);
    add(1, 1, EVR_KV_PUT, "k", "v");
    run(1, false, &r);
    OK(F.t.commit(F.t.data, 1, &err));
    add(1, 2, EVR_KV_PUT, "k", "uncommitted");
    run(2, false, &r);
    evr_h128 resp = {7, 7};
    struct evr_vr_applied stop = {.op = 1, .resp_digest = resp};
    OK(evr_host_close(F.h, &stop, &err));
    open_host();
    assert_int_equal(F.start, EVR_HOST_CLEAN);
    assert_int_equal(F.applied.op, 1);
    assert_true(evr_h128_eq(F.applied.resp_digest, resp));
    assert_false(F.applied.resume);
    add(2, 1, EVR_KV_GET, "k", NULL);
    run(2, false, &r);
    check_get(&r.resp[0], "v"); /* op 2 was rolled back at the stop */

    /* a quiet stop: the record hands back the view to resume in */
    stop.resume = true;
    stop.view = 5;
    OK(evr_host_close(F.h, &stop, &err));
    open_host();
    assert_int_equal(F.start, EVR_HOST_CLEAN);
    assert_int_equal(F.applied.op, 1);
    assert_true(F.applied.resume);
    assert_int_equal(F.applied.view, 5);

    /* a version-1 record (no view) is read as no resume */
    OK(evr_host_close(F.h, &stop, &err));
    char root_hex[33], resp_hex[33];
    evr_h128_to_hex(F.applied.root, root_hex);
    evr_h128_to_hex(resp, resp_hex);
    write_record("evr-clean-stop 1\n1 %s %s\n", root_hex, resp_hex);
    open_host();
    assert_int_equal(F.start, EVR_HOST_CLEAN);
    assert_false(F.applied.resume);
    assert_int_equal(F.applied.view, 0);

    /* a damaged record is refused, not taken for some other stop */
    OK(evr_host_close(F.h, &stop, &err));
    write_record("evr-clean-stop 2\n1 %s %s 5 7\n", root_hex, resp_hex);
    assert_int_equal(open_host_rc(&err), EVR_ECORRUPT);
    assert_non_null(strstr(err.msg, "not a clean-stop record"));
    write_record("evr-clean-stop 2\n1 %s %s 5 1\n", root_hex, resp_hex);
    open_host();
    assert_true(F.applied.resume);

    /* no clean stop: the file is not trusted */
    OK(evr_host_close(F.h, NULL, &err));
    open_host();
    assert_int_equal(F.start, EVR_HOST_RESET);
    assert_int_equal(F.applied.op, 0);
    assert_true(evr_h128_eq(F.applied.root, populated));
}

/* Async: what the core may do while a job runs — commit the op before
 * it, export a snapshot, deliver — leaves the same state as inline. */
static void test_calls_while_a_job_runs(void **state)
{
    (void)state;
    struct evr_host_result r1, r2;
    struct evr_err err;
    add(1, 1, EVR_KV_PUT, "p", "1");
    run(1, false, &r1);
    add(1, 2, EVR_KV_PUT, "p", "2");
    add(2, 1, EVR_KV_GET, "p", NULL);
    struct evr_vr_batch b = {.op = 2, .timestamp_us = 1700000000000000LL,
                             .seed = 2, .n = F.n, .req = F.req};
    OK(F.t.execute(F.t.data, &b, false, &err));
    jobs_queued++;
    F.n = 0;
    /* the batch was copied: the caller's requests may change at once */
    memset(F.enc[0].data, 0xee, F.enc[0].len);
    OK(F.t.commit(F.t.data, 1, &err)); /* recorded; the cow follows */
    struct evr_buf snap;
    evr_buf_init(&snap, SIZE_MAX);
    evr_h128 root;
    OK(F.t.snapshot_export(F.t.data, &snap, &root, &err)); /* waits */
    assert_true(evr_h128_eq(root, r1.root));
    assert_true(evr_host_take(F.h, &r2));
    assert_int_equal(r2.op, 2);
    check_get(&r2.resp[1], "2");
    OK(F.t.commit(F.t.data, 2, &err));
    assert_true(evr_h128_eq(evr_host_applied_root(F.h), r2.root));
    assert_false(evr_host_take(F.h, &r2)); /* delivered once */
    struct evr_vr_applied stop = {.op = 2, .resp_digest = {2, 2}};
    OK(evr_host_close(F.h, &stop, &err));
    open_host();
    assert_int_equal(F.start, EVR_HOST_CLEAN);
    assert_int_equal(F.applied.op, 2);
    assert_true(evr_h128_eq(F.applied.root, r2.root));
    evr_buf_free(&snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_client_table_rule, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_snapshot_under_load,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_clean_stop_and_crash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_table_rule,
                                        setup_async_memory, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_and_snapshot_under_load,
                                        setup_async_memory, teardown),
        cmocka_unit_test_setup_teardown(test_clean_stop_and_crash,
                                        setup_async_memory, teardown),
        cmocka_unit_test_setup_teardown(test_calls_while_a_job_runs,
                                        setup_async_memory, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
