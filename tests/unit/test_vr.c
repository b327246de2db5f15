/* The VR core (replication/vr.h), one replica at a time: hand-built frames
 * from "peer" replicas go in; what comes out is checked: the frames it sends
 * (decoded), the calls it makes on a recording fake host, evr_vr_info and
 * evr_vr_stats. One or more tests per message handler, for n = 3, and n = 5
 * where quorum sizes matter. Every replica starts at T0 ms with applied op
 * 0; replica 0 is view 0's primary. A batch built here for op holds one
 * request of client 100 + op (+ 10 salt); the host answers every request of
 * op with status 0 and the one byte op. */
#include "tests/unit/helpers/cm.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "replication/msg.h"
#include "replication/vr.h"
#include "verifier/verifier.h"

#define T0 1000u
#define ANY 0xfffffffeu
#define ALL_OPS UINT64_MAX
#define SNAP_BYTES 100
#define OK(x) assert_int_equal((x), 0)
#define EQ(a, b) assert_int_equal((a), (b))
#define HEQ(a, b) assert_true(evr_h128_eq((a), (b)))

struct sent {
    uint32_t to; /* a replica, or EVR_SENDER_CLIENT for a reply */
    uint8_t *p;
    size_t len;
};
struct call {
    char kind; /* x execute, r rollback, c commit, e delta export, a delta
                  apply, s snapshot export, i snapshot import */
    uint64_t op;
    bool seq;
};

static struct {
    struct evr_vr *r;
    struct evr_vr_config cfg;
    struct sent sent[512];
    int nsent;
    struct call calls[256];
    int ncalls;
    uint32_t exec_n;  /* requests in the batch executing */
    bool fail_exec;   /* execute fails */
    uint64_t clock, rnd;
    int64_t ts_base; /* added to the timestamps of batches built here */
    evr_h128 delta_root, snap_root;
    uint8_t snap[SNAP_BYTES];
    struct evr_buf fb, bb; /* frame, batch scratch */
    size_t fb_start;
    struct evr_hasher *hasher;
} W;

static evr_h128 R(uint64_t x) { return (evr_h128){x, 0x5eed}; }
static const evr_h128 ZERO = {0, 0};

/* ------------------------------------------------------------ fakes */

static void rec(char kind, uint64_t op, bool seq)
{
    assert_true(W.ncalls < 256);
    W.calls[W.ncalls++] = (struct call){kind, op, seq};
}

static int h_execute(void *d, const struct evr_vr_batch *b, bool seq,
                     struct evr_err *err)
{
    rec('x', b->op, seq);
    W.exec_n = b->n;
    return W.fail_exec ? evr_err_set(err, EVR_EIO, "disk on fire") : 0;
}
static int h_rollback(void *d, uint64_t op, struct evr_err *err)
{
    return rec('r', op, false), 0;
}
static int h_commit(void *d, uint64_t op, struct evr_err *err)
{
    return rec('c', op, false), 0;
}
static int h_delta_export(void *d, uint64_t op, struct evr_buf *out,
                          struct evr_err *err)
{
    return rec('e', op, false), evr_buf_put(out, "delta", 5);
}
static int h_delta_apply(void *d, uint64_t op, const void *p, size_t len,
                         evr_h128 *root, struct evr_err *err)
{
    assert_true(len == 5 && memcmp(p, "delta", 5) == 0);
    *root = W.delta_root;
    return rec('a', op, false), 0;
}
static int h_snap_export(void *d, struct evr_buf *out, evr_h128 *root,
                         struct evr_err *err)
{
    *root = W.snap_root;
    return rec('s', 0, false), evr_buf_put(out, W.snap, SNAP_BYTES);
}
static int h_snap_import(void *d, uint64_t op, const void *p, size_t len,
                         evr_h128 *root, struct evr_err *err)
{
    assert_true(len == SNAP_BYTES && memcmp(p, W.snap, len) == 0);
    *root = W.snap_root;
    return rec('i', op, false), 0;
}

static void keep(uint32_t to, const void *frame, size_t len)
{
    assert_true(W.nsent < 512);
    struct sent *s = &W.sent[W.nsent++];
    *s = (struct sent){to, malloc(len), len};
    assert_non_null(s->p);
    memcpy(s->p, frame, len);
}
static void io_send(void *d, uint32_t to, const void *f, size_t len)
{
    keep(to, f, len);
}
static void io_reply(void *d, uint64_t client, const void *f, size_t len)
{
    keep(EVR_SENDER_CLIENT, f, len);
}
static int64_t io_time(void *d) { return (int64_t)(++W.clock * 1000); }
static uint64_t io_random(void *d) { return W.rnd += 0x100; }

/* ------------------------------------------------------------ set-up */

static int setup(void **state)
{
    memset(&W, 0, sizeof W);
    evr_buf_init(&W.fb, SIZE_MAX);
    evr_buf_init(&W.bb, SIZE_MAX);
    W.hasher = evr_hasher_new(0);
    for (int i = 0; i < SNAP_BYTES; i++) {
        W.snap[i] = (uint8_t)(i * 7 + 3);
    }
    W.snap_root = W.delta_root = R(9);
    return W.hasher != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    evr_vr_free(W.r);
    for (int i = 0; i < W.nsent; i++) {
        free(W.sent[i].p);
    }
    evr_buf_free(&W.fb);
    evr_buf_free(&W.bb);
    evr_hasher_free(W.hasher);
    return 0;
}

static struct evr_vr_config *cfg(uint32_t n, uint32_t self)
{
    struct evr_vr_config *c = &W.cfg;
    evr_vr_config_default(c, n, self);
    c->batch_size_max = 1, c->batch_delay_ms = 5, c->depth_max = 4;
    c->log_retain = 16, c->clients_max = 64, c->chunk_bytes = 64;
    c->heartbeat_ms = 20, c->view_timeout_ms = 200, c->retry_ms = 50;
    c->verify_timeout_ms = 40;
    return c;
}

static void boot_at(const struct evr_vr_applied *a, bool recovering)
{
    struct evr_vr_io io = {NULL, io_send, io_reply, io_time, io_random, NULL};
    struct evr_vr_host host = {NULL,          h_execute,      h_rollback,
                               h_commit,      h_delta_export, h_delta_apply,
                               h_snap_export, h_snap_import};
    struct evr_err err;
    OK(evr_vr_new(&W.cfg, &io, &host, a, recovering, T0, &W.r, &err));
}

static void boot(bool recovering)
{
    struct evr_vr_applied a = {.op = 0, .root = R(0), .resp_digest = ZERO};
    boot_at(&a, recovering);
}

static void start(uint32_t n, uint32_t self)
{
    cfg(n, self);
    boot(false);
}

static struct evr_vr_info info(void)
{
    struct evr_vr_info i;
    evr_vr_info(W.r, &i);
    return i;
}

static struct evr_vr_stats stats(void)
{
    struct evr_vr_stats s;
    evr_vr_stats(W.r, &s);
    return s;
}

/* ------------------------------------------------------------ outputs */

static struct evr_msg decode(const struct sent *s)
{
    struct evr_msg m;
    OK(evr_msg_decode(s->p, s->len, W.cfg.cluster, W.cfg.body_max, &m,
                      NULL));
    EQ(m.h.sender, W.cfg.self);
    return m;
}

/* Frames of a type sent to `to` (ANY: to anyone). */
static int nsent(int type, uint32_t to)
{
    int k = 0;
    for (int i = 0; i < W.nsent; i++) {
        k += decode(&W.sent[i]).h.type == type &&
             (to == ANY || W.sent[i].to == to);
    }
    return k;
}

/* The last such frame; it must exist. */
static struct evr_msg last(int type, uint32_t to)
{
    for (int i = W.nsent - 1; i >= 0; i--) {
        struct evr_msg m = decode(&W.sent[i]);
        if (m.h.type == type && (to == ANY || W.sent[i].to == to)) {
            return m;
        }
    }
    fail_msg("no %s to %u", evr_msg_type_name((uint32_t)type), to);
    return (struct evr_msg){0};
}

static int ncalls(char kind, uint64_t op)
{
    int k = 0;
    for (int i = 0; i < W.ncalls; i++) {
        k += W.calls[i].kind == kind && (op == ALL_OPS || W.calls[i].op == op);
    }
    return k;
}

static void expect_last_call(char kind, uint64_t op, bool seq)
{
    assert_true(W.ncalls > 0);
    struct call c = W.calls[W.ncalls - 1];
    assert_true(c.kind == kind && c.op == op && c.seq == seq);
}

static evr_h128 resp_digest(uint64_t op, uint32_t n)
{
    uint8_t b = (uint8_t)op;
    evr_hasher_reset(W.hasher, 0);
    for (uint32_t i = 0; i < n; i++) {
        evr_response_digest_add(W.hasher, 0, &b, 1);
    }
    return evr_hasher_digest(W.hasher);
}

/* The token of op reaching root with n requests. */
static evr_h128 tok(uint64_t op, evr_h128 root, uint32_t n)
{
    return evr_token(op, root, resp_digest(op, n));
}

/* The host finishes the running execution, of op, with state root. */
static void done(uint64_t op, evr_h128 root)
{
    assert_true(info().executing && W.ncalls > 0);
    EQ(W.calls[W.ncalls - 1].op, op);
    uint8_t b = (uint8_t)op;
    struct evr_vr_response resp[8];
    assert_true(W.exec_n <= 8);
    for (uint32_t i = 0; i < W.exec_n; i++) {
        resp[i] = (struct evr_vr_response){0, 1, &b};
    }
    evr_vr_executed(W.r, op, root, resp, W.exec_n);
}

/* ------------------------------------------------------------ inputs */

#define P8(v) OK(evr_buf_put_u8(&W.fb, (uint8_t)(v)))
#define P32(v) OK(evr_buf_put_u32(&W.fb, (uint32_t)(v)))
#define P64(v) OK(evr_buf_put_u64(&W.fb, (v)))
#define PH(v) OK(evr_msg_put_h128(&W.fb, (v)))
#define PB(p, n) OK(evr_msg_put_bytes32(&W.fb, (p), (n)))

static void begin_as(int type, uint32_t sender, uint64_t view,
                     uint64_t cluster)
{
    struct evr_frame_hdr h = {(uint16_t)type, cluster, sender, view, 0};
    int rc;
    evr_buf_reset(&W.fb);
    W.fb_start = evr_frame_begin(&W.fb, &h, &rc);
    OK(rc);
}

static void begin(int type, uint32_t sender, uint64_t view)
{
    begin_as(type, sender, view, W.cfg.cluster);
}

static int deliver(void)
{
    struct evr_err err;
    OK(evr_frame_end(&W.fb, W.fb_start));
    return evr_vr_receive(W.r, W.fb.data, W.fb.len, &err);
}

#define SEND() OK(deliver())

static void mkbatch(uint64_t op, uint32_t salt)
{
    evr_buf_reset(&W.bb);
    OK(evr_msg_put_batch_head(&W.bb, W.ts_base + (int64_t)op, 1, 1));
    OK(evr_msg_put_req(&W.bb, 100 + op + 10 * salt, 1, "q", 1));
}

/* Entries first.. of view, the first ncommit committed with t[i]. */
static void put_log(uint64_t first, uint32_t count, uint64_t view,
                    uint32_t salt, uint32_t ncommit, const evr_h128 *t)
{
    P32(count);
    for (uint32_t i = 0; i < count; i++) {
        bool c = i < ncommit;
        mkbatch(first + i, salt);
        OK(evr_msg_put_entry(&W.fb, first + i, view, c, c ? t[i] : ZERO,
                             c ? 3 : 0, W.bb.data, W.bb.len));
    }
}

static void request(uint64_t client, uint64_t no)
{
    begin(EVR_MSG_REQUEST, EVR_SENDER_CLIENT, 0);
    P64(client); P64(no); PB("q", 1);
    SEND();
}

static void prepare(uint32_t from, uint64_t view, uint64_t op,
                    uint32_t attempt)
{
    begin(EVR_MSG_PREPARE, from, view);
    P64(op); P32(attempt); P8(0); P64(0);
    mkbatch(op, 0);
    OK(evr_buf_put(&W.fb, W.bb.data, W.bb.len));
    SEND();
}

static void prepare_ok(uint32_t from, uint64_t view, uint64_t op,
                       uint32_t attempt, evr_h128 t)
{
    begin(EVR_MSG_PREPARE_OK, from, view);
    P64(op); P32(attempt); PH(t);
    SEND();
}

/* COMMIT(c) carrying (op, t, holders), or no token when op == 0. */
static void commit(uint32_t from, uint64_t c, uint64_t op, evr_h128 t,
                   uint32_t holders)
{
    begin(EVR_MSG_COMMIT, from, 0);
    P64(c); P32(op != 0);
    if (op != 0) {
        P64(op); PH(t); P32(holders);
    }
    SEND();
}

static void rollback(uint32_t from, uint64_t op, uint32_t attempt)
{
    begin(EVR_MSG_ROLLBACK, from, 0);
    P64(op); P32(attempt);
    SEND();
}

static void u64_msg(int type, uint32_t from, uint64_t view, uint64_t a)
{
    begin(type, from, view);
    P64(a);
    SEND();
}

/* DELTA of op (its one response and the host's delta), or ok = 0. */
static void delta(uint32_t from, uint64_t op, evr_h128 t, bool ok)
{
    uint8_t b = (uint8_t)op;
    begin(EVR_MSG_DELTA, from, 0);
    P64(op); PH(t); P8(ok);
    if (ok) {
        P32(1); P32(0); PB(&b, 1); PB("delta", 5);
    }
    SEND();
}

/* SNAPSHOT_CHUNK of W.snap as applied op snap_op. */
static void chunk(uint32_t from, uint64_t snap_op, evr_h128 hash,
                  uint64_t offset, uint32_t len)
{
    evr_h128 rd = resp_digest(snap_op, 1);
    begin(EVR_MSG_SNAPSHOT_CHUNK, from, 0);
    P64(snap_op); PH(evr_token(snap_op, W.snap_root, rd));
    PH(W.snap_root); PH(rd); PH(hash);
    P64(SNAP_BYTES); P64(offset); PB(W.snap + offset, len);
    SEND();
}

static void get_snapshot(uint32_t from, uint64_t snap_op, uint64_t offset)
{
    begin(EVR_MSG_GET_SNAPSHOT, from, 0);
    P64(snap_op); P64(offset);
    SEND();
}

/* The primary (replica 0, view 0) commits op 1 of client 7 with replica 1. */
static evr_h128 primary_commits_op1(void)
{
    request(7, 1);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    EQ(info().applied, 1);
    return t;
}

/* ------------------------------------------------------------ REQUEST */

static void test_request_batch_by_size(void **state)
{
    cfg(3, 0)->batch_size_max = 2;
    boot(false);
    request(7, 1);
    request(7, 1); /* a duplicate while queued */
    assert_true(W.nsent == 0 && stats().requests_dropped == 1);
    request(8, 1);
    assert_true(nsent(EVR_MSG_PREPARE, 1) == 1 &&
                nsent(EVR_MSG_PREPARE, 2) == 1);
    struct evr_msg m = last(EVR_MSG_PREPARE, 2);
    assert_true(m.h.view == 0 && m.u.prepare.op == 1);
    assert_true(m.u.prepare.attempt == 0 && !m.u.prepare.sequential);
    EQ(m.u.prepare.batch.n, 2);
    struct evr_msg_iter it;
    struct evr_msg_req q;
    evr_msg_reqs_iter(&m.u.prepare.batch, &it);
    assert_true(evr_msg_reqs_next(&it, &q) && q.client == 7);
    assert_true(evr_msg_reqs_next(&it, &q) && q.client == 8);
    assert_true(q.request_no == 1 && !evr_msg_reqs_next(&it, &q));
    expect_last_call('x', 1, false); /* eve: the primary executes too */
    EQ(W.exec_n, 2);
    request(7, 1); /* a duplicate while in flight */
    struct evr_vr_stats s = stats();
    assert_true(s.requests_dropped == 2 && s.requests == 2);
    assert_true(s.batches_prepared == 1 && info().op == 1);
}

static void test_request_batch_by_delay(void **state)
{
    cfg(3, 0)->batch_size_max = 8;
    boot(false);
    request(7, 1);
    request(8, 4);
    evr_vr_tick(W.r, T0 + 4);
    EQ(W.nsent, 0);
    evr_vr_tick(W.r, T0 + 5);
    EQ(nsent(EVR_MSG_PREPARE, ANY), 2);
    EQ(last(EVR_MSG_PREPARE, 1).u.prepare.batch.n, 2);
    expect_last_call('x', 1, false);
}

static void test_request_queue_and_depth_limits(void **state)
{
    cfg(3, 0)->depth_max = 2;
    W.cfg.queue_max = 2;
    boot(false);
    for (uint64_t c = 1; c <= 6; c++) {
        request(c, 1);
    }
    EQ(nsent(EVR_MSG_PREPARE, 1), 2); /* ops 1, 2; then 2 queued */
    assert_true(stats().requests == 4 && stats().requests_dropped == 2);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, tok(1, R(1), 1));
    EQ(info().commit, 1);
    evr_vr_tick(W.r, T0 + 1);
    EQ(nsent(EVR_MSG_PREPARE, 1), 3);
    EQ(last(EVR_MSG_PREPARE, 1).u.prepare.op, 3);
}

/* More clients than clients_max: a client with a request in flight keeps
 * its entry, so its retries stay out of the queue (simulator seed 4616). */
static void test_request_table_full_of_clients_in_flight(void **state)
{
    cfg(3, 0);
    W.cfg.clients_max = 2;
    boot(false);
    request(7, 1);
    request(8, 1);
    EQ(info().op, 2);
    request(9, 1); /* both entries in flight: dropped, 9 retries later */
    request(7, 1); /* a retry of a request in flight: not queued again */
    request(8, 1);
    evr_vr_tick(W.r, T0 + 10);
    EQ(info().op, 2);
    EQ(stats().requests_dropped, 3);
    EQ(stats().requests, 2);
}

static void test_request_retry_gets_cached_reply(void **state)
{
    start(3, 0);
    primary_commits_op1();
    EQ(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 1);
    request(7, 1);
    EQ(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 2);
    struct evr_msg m = last(EVR_MSG_REPLY, EVR_SENDER_CLIENT);
    assert_true(m.u.reply.client == 7 && m.u.reply.request_no == 1);
    assert_true(m.u.reply.op == 1 && m.u.reply.status == 0);
    assert_true(m.u.reply.len == 1 && m.u.reply.data[0] == 1);
    assert_true(stats().batches_prepared == 1 &&
                nsent(EVR_MSG_PREPARE, ANY) == 2);
}

/* ------------------------------------------------------------ PREPARE_OK */

static uint32_t commit_holders(const struct evr_msg *m, uint64_t op,
                               evr_h128 t)
{
    struct evr_msg_iter it;
    struct evr_msg_token k;
    evr_msg_tokens_iter(m, &it);
    while (evr_msg_tokens_next(&it, &k)) {
        if (k.op == op) {
            HEQ(k.token, t);
            return k.holders;
        }
    }
    fail_msg("op %llu not in COMMIT", (unsigned long long)op);
    return 0;
}

static void test_prepare_ok_quorum_commits(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    assert_true(nsent(EVR_MSG_COMMIT, ANY) == 0 && info().commit == 0);
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    assert_true(nsent(EVR_MSG_COMMIT, 1) == 1 &&
                nsent(EVR_MSG_COMMIT, 2) == 1);
    struct evr_msg m = last(EVR_MSG_COMMIT, 2);
    assert_true(m.u.commit.commit == 1 && m.u.commit.count == 1);
    EQ(commit_holders(&m, 1, t), 0x3);
    EQ(ncalls('c', 1), 1);
    m = last(EVR_MSG_REPLY, EVR_SENDER_CLIENT);
    assert_true(m.u.reply.client == 7 && m.u.reply.status == 0);
    assert_true(m.u.reply.len == 1 && m.u.reply.data[0] == 1);
    struct evr_vr_info i = info();
    assert_true(i.commit == 1 && i.applied == 1);
    HEQ(i.applied_token, t);
    assert_true(stats().replies == 1 && stats().batches_applied == 1);
}

static void test_prepare_ok_quorum_n5(void **state)
{
    start(5, 0);
    request(7, 1);
    EQ(nsent(EVR_MSG_PREPARE, ANY), 4);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    prepare_ok(2, 0, 1, 0, tok(1, R(2), 1));
    EQ(info().commit, 0); /* 2 of the 3 needed */
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    prepare_ok(4, 0, 1, 0, t);
    EQ(info().commit, 1);
    struct evr_msg m = last(EVR_MSG_COMMIT, 3);
    EQ(commit_holders(&m, 1, t), 0x13);
}

static void test_prepare_ok_mismatch_rolls_back(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, tok(1, R(2), 1));
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 0); /* replica 2 may still agree */
    prepare_ok(2, 0, 1, 0, tok(1, R(3), 1));
    assert_true(nsent(EVR_MSG_ROLLBACK, 1) == 1 &&
                nsent(EVR_MSG_ROLLBACK, 2) == 1);
    struct evr_msg m = last(EVR_MSG_ROLLBACK, 1);
    assert_true(m.u.rollback.op == 1 && m.u.rollback.attempt == 1);
    EQ(ncalls('r', 1), 1);
    expect_last_call('x', 1, true);
    assert_true(stats().rollbacks == 1 && stats().rollbacks_done == 1);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, t); /* the old attempt: ignored */
    EQ(info().commit, 0);
    prepare_ok(1, 0, 1, 1, t);
    assert_true(info().commit == 1 && ncalls('c', 1) == 1);
}

static void test_prepare_ok_mismatch_n5(void **state)
{
    start(5, 0);
    request(7, 1);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, tok(1, R(2), 1));
    prepare_ok(2, 0, 1, 0, tok(1, R(3), 1));
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    prepare_ok(3, 0, 1, 0, tok(1, R(4), 1)); /* now 1 + 1 missing < 3 */
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 4);
}

static void test_verify_timeout_rolls_back(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, tok(1, R(2), 1));
    evr_vr_tick(W.r, T0 + 39);
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    evr_vr_tick(W.r, T0 + 40);
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 2);
    EQ(last(EVR_MSG_ROLLBACK, 2).u.rollback.attempt, 1);
    EQ(ncalls('r', 1), 1);
    expect_last_call('x', 1, true);
    evr_vr_tick(W.r, T0 + 50); /* PREPARE again, for the new attempt */
    struct evr_msg m = last(EVR_MSG_PREPARE, 1);
    assert_true(m.u.prepare.attempt == 1 && m.u.prepare.sequential);
}

static void test_verify_timeout_while_executing(void **state)
{
    start(3, 0);
    request(7, 1);
    evr_vr_tick(W.r, T0 + 40);
    EQ(nsent(EVR_MSG_ROLLBACK, ANY), 2);
    EQ(ncalls('r', ALL_OPS), 0); /* not under the running execution */
    done(1, R(1));
    EQ(ncalls('r', 1), 1);
    expect_last_call('x', 1, true);
}

static void test_prepare_resent_to_silent_backups(void **state)
{
    cfg(3, 0)->verify_timeout_ms = 1000;
    boot(false);
    request(7, 1);
    prepare_ok(1, 0, 1, 0, tok(1, R(1), 1));
    evr_vr_tick(W.r, T0 + 50);
    assert_true(nsent(EVR_MSG_PREPARE, 1) == 1 &&
                nsent(EVR_MSG_PREPARE, 2) == 2);
}

static void test_backups_commit_primary_repairs(void **state)
{
    start(3, 0);
    request(7, 1);
    evr_h128 t = tok(1, R(9), 1);
    prepare_ok(1, 0, 1, 0, t);
    prepare_ok(2, 0, 1, 0, t);
    EQ(info().commit, 1); /* the primary's own vote is not needed */
    struct evr_msg m = last(EVR_MSG_COMMIT, 1);
    EQ(commit_holders(&m, 1, t), 0x6);
    done(1, R(5)); /* the primary diverged */
    assert_true(ncalls('r', 1) == 1 && nsent(EVR_MSG_REPLY, ANY) == 0);
    m = last(EVR_MSG_GET_DELTA, 1);
    EQ(m.u.get_delta.op, 1);
    HEQ(m.u.get_delta.token, t);
    delta(1, 1, t, true);
    EQ(ncalls('c', 1), 1);
    m = last(EVR_MSG_REPLY, EVR_SENDER_CLIENT);
    assert_true(m.u.reply.op == 1 && m.u.reply.data[0] == 1);
}

static void test_heartbeat(void **state)
{
    start(3, 0);
    evr_vr_tick(W.r, T0 + 19);
    EQ(W.nsent, 0);
    evr_vr_tick(W.r, T0 + 20);
    EQ(nsent(EVR_MSG_COMMIT, ANY), 2);
    struct evr_msg m = last(EVR_MSG_COMMIT, 1);
    assert_true(m.u.commit.commit == 0 && m.u.commit.count == 0);
}

/* ------------------------------------------------------------ backups */

static void test_backup_prepare_executes_and_votes(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    EQ(info().op, 1);
    expect_last_call('x', 1, false);
    EQ(nsent(EVR_MSG_PREPARE_OK, ANY), 0);
    done(1, R(1));
    EQ(nsent(EVR_MSG_PREPARE_OK, 0), 1);
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    assert_true(m.u.prepare_ok.op == 1 && m.u.prepare_ok.attempt == 0);
    evr_h128 t = tok(1, R(1), 1);
    HEQ(m.u.prepare_ok.token, t);
    prepare(0, 0, 1, 0); /* a resend: answered again, not executed again */
    assert_true(nsent(EVR_MSG_PREPARE_OK, 0) == 2 && ncalls('x', 1) == 1);
    commit(0, 1, 1, t, 0x3);
    assert_true(ncalls('c', 1) == 1 && info().applied == 1);
    EQ(nsent(EVR_MSG_REPLY, ANY), 0); /* backups never reply */
}

static void test_backup_drops_requests_and_foreign_prepares(void **state)
{
    start(3, 1);
    request(7, 1);
    EQ(stats().requests_dropped, 1);
    prepare(2, 0, 1, 0); /* replica 2 is not view 0's primary */
    evr_vr_tick(W.r, T0 + 200); /* to view 1 */
    EQ(info().view, 1);
    prepare(0, 0, 1, 0); /* an older view */
    assert_true(info().op == 0 && W.ncalls == 0);
    EQ(nsent(EVR_MSG_PREPARE_OK, ANY), 0);
}

static void test_backup_gap_gets_state(void **state)
{
    start(3, 1);
    prepare(0, 0, 3, 0);
    assert_true(info().op == 0 && W.ncalls == 0);
    EQ(nsent(EVR_MSG_GET_STATE, 0), 1);
    EQ(last(EVR_MSG_GET_STATE, 0).u.get_state.op_from, 1);
    commit(0, 2, 0, ZERO, 0); /* beyond the log: asks too, once a retry */
    EQ(nsent(EVR_MSG_GET_STATE, 0), 1);
    evr_vr_tick(W.r, T0 + 50);
    commit(0, 2, 0, ZERO, 0);
    EQ(nsent(EVR_MSG_GET_STATE, 0), 2);
}

static void test_backup_rollback(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    done(1, R(5));
    rollback(0, 1, 1);
    EQ(ncalls('r', 1), 1);
    expect_last_call('x', 1, true);
    done(1, R(1));
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    EQ(m.u.prepare_ok.attempt, 1);
    HEQ(m.u.prepare_ok.token, tok(1, R(1), 1));
    rollback(0, 1, 1); /* the same attempt again: nothing */
    EQ(ncalls('r', 1), 1);
}

static void test_backup_rollback_while_executing(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    done(1, R(1));
    prepare(0, 0, 2, 0);
    expect_last_call('x', 2, false);
    rollback(0, 1, 1);
    EQ(ncalls('r', ALL_OPS), 0);
    done(2, R(2));
    EQ(ncalls('r', 1), 1);
    expect_last_call('x', 1, true);
    EQ(nsent(EVR_MSG_PREPARE_OK, 0), 1); /* none for the undone op 2 */
}

/* ------------------------------------------------------------ repair */

/* Replica 1 executed op 1 to R(5); the committed token is R(9)'s, held by
 * replicas 0 and 2. */
static evr_h128 diverge(void)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    done(1, R(5));
    evr_h128 tc = tok(1, R(9), 1);
    commit(0, 1, 1, tc, 0x5);
    assert_true(ncalls('r', 1) == 1 && ncalls('c', ALL_OPS) == 0);
    struct evr_msg m = last(EVR_MSG_GET_DELTA, 0);
    EQ(m.u.get_delta.op, 1);
    HEQ(m.u.get_delta.token, tc);
    return tc;
}

static void test_commit_mismatch_repairs_by_delta(void **state)
{
    evr_h128 tc = diverge();
    delta(0, 1, tc, true);
    assert_true(ncalls('a', 1) == 1 && ncalls('c', 1) == 1);
    assert_true(stats().repairs == 1 && info().applied == 1);
    HEQ(info().applied_token, tc);
}

static void test_delta_with_wrong_result_asks_next_holder(void **state)
{
    evr_h128 tc = diverge();
    W.delta_root = R(6); /* applies, but misses the token */
    delta(0, 1, tc, true);
    assert_true(ncalls('a', 1) == 1 && ncalls('c', ALL_OPS) == 0);
    EQ(nsent(EVR_MSG_GET_DELTA, 2), 1);
    W.delta_root = R(9);
    delta(2, 1, tc, true);
    EQ(ncalls('c', 1), 1);
}

static void expect_get_snapshot(uint32_t to, uint64_t snap_op, uint64_t off)
{
    struct evr_msg m = last(EVR_MSG_GET_SNAPSHOT, to);
    assert_true(m.u.get_snapshot.snap_op == snap_op);
    EQ(m.u.get_snapshot.offset, off);
}

static void test_repair_rounds_then_snapshot(void **state)
{
    evr_h128 tc = diverge();
    for (int i = 0; i < 6; i++) { /* REPAIR_ROUNDS_MAX (3) x 2 holders */
        EQ(nsent(EVR_MSG_GET_SNAPSHOT, ANY), 0);
        delta(i % 2 == 0 ? 0 : 2, 1, tc, false);
    }
    assert_true(nsent(EVR_MSG_GET_DELTA, 0) == 3 &&
                nsent(EVR_MSG_GET_DELTA, 2) == 3);
    EQ(nsent(EVR_MSG_GET_SNAPSHOT, 0), 1);
    expect_get_snapshot(0, 0, 0);
    /* a snapshot whose hash does not check is fetched again */
    evr_h128 bad = evr_hash128("other", 5, 0);
    chunk(0, 1, bad, 0, 64);
    expect_get_snapshot(0, 1, 64);
    chunk(0, 1, bad, 64, SNAP_BYTES - 64);
    EQ(ncalls('i', ALL_OPS), 0);
    expect_get_snapshot(0, 0, 0);
    evr_h128 good = evr_hash128(W.snap, SNAP_BYTES, 0);
    chunk(0, 1, good, 0, 64);
    chunk(2, 1, good, 64, SNAP_BYTES - 64); /* not the source: ignored */
    EQ(ncalls('i', ALL_OPS), 0);
    chunk(0, 1, good, 64, SNAP_BYTES - 64);
    assert_true(ncalls('i', 1) == 1 && stats().state_transfers == 1);
    struct evr_vr_info i = info();
    assert_true(i.applied == 1 && i.executed == 1 && i.commit == 1);
    HEQ(i.applied_token, tc);
}

static void test_get_delta_served(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    begin(EVR_MSG_GET_DELTA, 2, 0);
    P64(1); PH(tok(1, R(1), 1));
    SEND();
    struct evr_msg m = last(EVR_MSG_DELTA, 2);
    assert_true(m.u.delta.ok && m.u.delta.op == 1 && m.u.delta.resp.n == 1);
    assert_true(m.u.delta.len == 5 && !memcmp(m.u.delta.data, "delta", 5));
    EQ(ncalls('e', 1), 1);
    begin(EVR_MSG_GET_DELTA, 2, 0); /* a token we do not hold */
    P64(1); PH(tok(1, R(2), 1));
    SEND();
    assert_false(last(EVR_MSG_DELTA, 2).u.delta.ok);
    EQ(ncalls('e', 1), 1);
}

/* ------------------------------------------------------------ catch-up */

static void test_get_state_served(void **state)
{
    start(3, 0);
    request(7, 1);
    u64_msg(EVR_MSG_GET_STATE, 2, 0, 1);
    struct evr_msg m = last(EVR_MSG_NEW_STATE, 2);
    assert_true(m.u.new_state.ok && m.u.new_state.op == 1);
    assert_true(m.u.new_state.commit == 0 && m.u.new_state.log.count == 1);
    struct evr_msg_iter it;
    struct evr_msg_entry e;
    evr_msg_log_iter(&m.u.new_state.log, &it);
    assert_true(evr_msg_log_next(&it, &e));
    assert_true(e.op == 1 && !e.committed && e.batch.n == 1);
    u64_msg(EVR_MSG_GET_STATE, 2, 1, 1); /* another view: ignored */
    EQ(nsent(EVR_MSG_NEW_STATE, ANY), 1);
}

static void new_state(uint32_t from, uint64_t view, bool ok, uint64_t op,
                      uint64_t first, uint32_t count, const evr_h128 *t)
{
    begin(EVR_MSG_NEW_STATE, from, view);
    P8(ok); P64(op); P64(op);
    put_log(first, count, 0, 0, count, t);
    SEND();
}

static void test_new_state_catches_up(void **state)
{
    start(3, 2);
    evr_h128 t[2] = {tok(1, R(1), 1), tok(2, R(2), 1)};
    new_state(0, 0, true, 2, 1, 2, t);
    assert_true(info().op == 2 && info().commit == 2);
    done(1, R(1));
    EQ(ncalls('c', 1), 1);
    done(2, R(2));
    assert_true(ncalls('c', 2) == 1 && info().applied == 2);
    EQ(nsent(EVR_MSG_GET_STATE, ANY), 0);
}

static void test_new_state_not_ok_starts_snapshot(void **state)
{
    start(3, 2);
    new_state(1, 0, false, 40, 1, 0, NULL);
    expect_get_snapshot(1, 0, 0);
}

/* Regression (liveness): a replica more than 64 ops behind that adopts a
 * log (START_VIEW here; RECOVERY_RESPONSE alike) gets entries from
 * commit - 63 on only, leaving a gap above applied; the NEW_STATE that
 * answers its GET_STATE must fill the gap (it used to be dropped, so the
 * replica asked forever until the primary trimmed the ops). */
static void test_adopted_log_gap_is_filled(void **state)
{
    start(3, 2);
    evr_h128 t[71];
    for (uint64_t op = 1; op <= 70; op++) {
        t[op] = tok(op, R(op), 1);
    }
    begin(EVR_MSG_START_VIEW, 1, 1); /* as vr_log_from writes it */
    P64(70); P64(70);
    put_log(7, 64, 0, 0, 64, t + 7);
    SEND();
    assert_true(info().commit == 70 && info().applied == 0);
    EQ(last(EVR_MSG_GET_STATE, 1).u.get_state.op_from, 1);
    new_state(1, 1, true, 70, 1, 70, t + 1); /* the primary still has 1.. */
    EQ(ncalls('x', 1), 1);
}

static void test_get_snapshot_served(void **state)
{
    start(3, 0);
    get_snapshot(1, 0, 0); /* nothing applied: nothing to give */
    EQ(nsent(EVR_MSG_SNAPSHOT_CHUNK, ANY), 0);
    primary_commits_op1();
    get_snapshot(1, 0, 0);
    struct evr_msg m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    const __typeof__(m.u.snapshot_chunk) *c = &m.u.snapshot_chunk;
    evr_h128 rd = resp_digest(1, 1);
    assert_true(c->snap_op == 1 && c->total == SNAP_BYTES);
    assert_true(c->offset == 0 && c->len == 64);
    assert_memory_equal(c->data, W.snap, 64);
    HEQ(c->root, W.snap_root);
    HEQ(c->resp_digest, rd);
    HEQ(c->token, evr_token(1, W.snap_root, rd));
    HEQ(c->hash, evr_hash128(W.snap, SNAP_BYTES, 0));
    get_snapshot(1, 1, 64);
    m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    assert_true(c->offset == 64 && c->len == SNAP_BYTES - 64);
    assert_memory_equal(c->data, W.snap + 64, SNAP_BYTES - 64);
    EQ(ncalls('s', ALL_OPS), 1); /* one export, kept */
    /* applied moves on: a peer part-way through op 1's snapshot still gets
     * it (re-exporting restarted every transfer under load); a new
     * transfer gets a fresh export */
    request(8, 1);
    done(2, R(2));
    prepare_ok(1, 0, 2, 0, tok(2, R(2), 1));
    EQ(info().applied, 2);
    get_snapshot(1, 1, 64);
    m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    assert_true(c->snap_op == 1 && c->offset == 64);
    EQ(ncalls('s', ALL_OPS), 1);
    get_snapshot(1, 0, 0);
    m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    assert_true(c->snap_op == 2 && c->offset == 0);
    EQ(ncalls('s', ALL_OPS), 2);
}

/* ------------------------------------------------------------ view change */

static void svc(uint32_t from, uint64_t view)
{
    begin(EVR_MSG_START_VIEW_CHANGE, from, view);
    SEND();
}

/* DO_VIEW_CHANGE with ops 1..op, all uncommitted, of view lnv. */
static void dvc(uint32_t from, uint64_t view, uint64_t lnv, uint64_t op,
                uint32_t salt)
{
    begin(EVR_MSG_DO_VIEW_CHANGE, from, view);
    P64(lnv); P64(op); P64(0);
    put_log(1, (uint32_t)op, lnv, salt, 0, NULL);
    SEND();
}

static void test_view_change_backup_sends_dvc(void **state)
{
    start(3, 2);
    prepare(0, 0, 1, 0);
    done(1, R(1));
    evr_vr_tick(W.r, T0 + 199);
    EQ(nsent(EVR_MSG_START_VIEW_CHANGE, ANY), 0);
    evr_vr_tick(W.r, T0 + 200);
    assert_true(nsent(EVR_MSG_START_VIEW_CHANGE, 0) == 1 &&
                nsent(EVR_MSG_START_VIEW_CHANGE, 1) == 1);
    EQ(last(EVR_MSG_START_VIEW_CHANGE, 0).h.view, 1);
    assert_true(info().view == 1 && info().status == EVR_VR_VIEW_CHANGE);
    EQ(nsent(EVR_MSG_DO_VIEW_CHANGE, ANY), 0);
    svc(1, 1);
    EQ(nsent(EVR_MSG_DO_VIEW_CHANGE, ANY), 1);
    struct evr_msg m = last(EVR_MSG_DO_VIEW_CHANGE, 1);
    const __typeof__(m.u.do_view_change) *d = &m.u.do_view_change;
    assert_true(m.h.view == 1 && d->last_normal_view == 0);
    assert_true(d->op == 1 && d->commit == 0 && d->log.count == 1);
}

static void test_view_change_needs_f_svcs_n5(void **state)
{
    start(5, 3);
    evr_vr_tick(W.r, T0 + 200);
    svc(2, 1);
    EQ(nsent(EVR_MSG_DO_VIEW_CHANGE, ANY), 0);
    svc(4, 1);
    EQ(nsent(EVR_MSG_DO_VIEW_CHANGE, 1), 1);
}

static void test_view_change_new_primary(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    done(1, R(1));
    evr_vr_tick(W.r, T0 + 200);
    svc(2, 1);
    EQ(nsent(EVR_MSG_START_VIEW, ANY), 0); /* its own DVC only */
    dvc(2, 1, 0, 2, 0);                    /* replica 2 has ops 1..2 */
    struct evr_vr_info i = info();
    assert_true(i.view == 1 && i.status == EVR_VR_NORMAL && i.primary);
    assert_true(i.op == 2 && stats().view_changes == 1);
    assert_true(nsent(EVR_MSG_START_VIEW, 0) == 1 &&
                nsent(EVR_MSG_START_VIEW, 2) == 1);
    struct evr_msg m = last(EVR_MSG_START_VIEW, 2);
    assert_true(m.h.view == 1 && m.u.start_view.op == 2);
    EQ(m.u.start_view.log.count, 2);
    EQ(ncalls('r', 1), 1); /* speculative state is redone in the new view */
    expect_last_call('x', 1, false);
    svc(0, 1); /* a replica that missed START_VIEW gets it again */
    EQ(nsent(EVR_MSG_START_VIEW, 0), 2);
    done(1, R(1));
    prepare_ok(2, 1, 1, 0, tok(1, R(1), 1));
    EQ(info().commit, 1);
    EQ(last(EVR_MSG_COMMIT, 0).h.view, 1);
}

static void test_view_change_picks_latest_normal_view_n5(void **state)
{
    start(5, 2);
    dvc(3, 2, 0, 3, 0); /* the longer log, of an older view */
    EQ(info().status, EVR_VR_VIEW_CHANGE);
    EQ(nsent(EVR_MSG_START_VIEW, ANY), 0);
    dvc(4, 2, 1, 2, 1); /* normal in view 1 */
    struct evr_vr_info i = info();
    assert_true(i.primary && i.view == 2 && i.op == 2);
    EQ(nsent(EVR_MSG_START_VIEW, ANY), 4);
    struct evr_msg m = last(EVR_MSG_START_VIEW, 0);
    EQ(m.u.start_view.op, 2);
    struct evr_msg_iter it, ri;
    struct evr_msg_entry e;
    struct evr_msg_req q;
    evr_msg_log_iter(&m.u.start_view.log, &it);
    for (uint64_t op = 1; op <= 2; op++) {
        assert_true(evr_msg_log_next(&it, &e) && e.op == op && e.view == 1);
        evr_msg_reqs_iter(&e.batch, &ri);
        assert_true(evr_msg_reqs_next(&ri, &q) && q.client == 110 + op);
    }
    assert_false(evr_msg_log_next(&it, &e));
}

/* Regression: batch timestamps stay monotonic across a view change even
 * when the new primary's clock is behind the old one's (a new primary used
 * to compare only with its own last stamp, not with the adopted log's). */
static void test_timestamps_monotonic_across_views(void **state)
{
    start(3, 1);
    W.ts_base = 1000000000000; /* the old primary's clock was ahead */
    dvc(2, 1, 0, 2, 0);
    assert_true(info().primary && info().op == 2);
    request(7, 1);
    const uint8_t *p;
    size_t len;
    bool committed;
    evr_h128 t;
    struct evr_msg_batch b;
    assert_true(evr_vr_entry(W.r, 3, &p, &len, &committed, &t));
    OK(evr_msg_batch_parse(p, len, &b, NULL));
    assert_true(b.timestamp_us > W.ts_base + 2);
}

static void start_view(uint32_t from, uint64_t view, const evr_h128 *t1)
{
    begin(EVR_MSG_START_VIEW, from, view);
    P64(2); P64(1);
    put_log(1, 2, 0, 0, 1, t1);
    SEND();
}

static void test_start_view_at_backup(void **state)
{
    start(3, 2);
    evr_h128 t1 = tok(1, R(1), 1);
    start_view(0, 1, &t1); /* not view 1's primary: ignored */
    EQ(info().view, 0);
    start_view(1, 1, &t1);
    struct evr_vr_info i = info();
    assert_true(i.view == 1 && i.status == EVR_VR_NORMAL && !i.primary);
    assert_true(i.op == 2 && i.commit == 1);
    done(1, R(1));
    EQ(ncalls('c', 1), 1);
    EQ(last(EVR_MSG_PREPARE_OK, 1).u.prepare_ok.op, 1);
    done(2, R(2));
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 1);
    assert_true(m.h.view == 1 && m.u.prepare_ok.op == 2);
    HEQ(m.u.prepare_ok.token, tok(2, R(2), 1));
}

static void test_deposed_primary_joins_later_view(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    prepare(1, 1, 1, 0); /* view 1's primary: a view it missed */
    struct evr_vr_info i = info();
    assert_true(i.view == 1 && !i.primary && i.status == EVR_VR_NORMAL);
    assert_true(ncalls('r', 1) == 1 && nsent(EVR_MSG_GET_STATE, 1) == 1);
    request(8, 1); /* no longer the primary */
    EQ(stats().requests_dropped, 1);
}

/* ------------------------------------------------------------ recovery */

static void recovery_response(uint32_t from, uint64_t view, uint64_t nonce,
                              bool has_log)
{
    begin(EVR_MSG_RECOVERY_RESPONSE, from, view);
    P64(nonce); P8(has_log);
    if (has_log) {
        P64(1); P64(0);
        put_log(1, 1, 0, 0, 0, NULL);
    }
    SEND();
}

static void test_recovery(void **state)
{
    cfg(3, 1);
    boot(true);
    EQ(info().status, EVR_VR_RECOVERING);
    assert_true(nsent(EVR_MSG_RECOVERY, 0) == 1 &&
                nsent(EVR_MSG_RECOVERY, 2) == 1);
    uint64_t nonce = last(EVR_MSG_RECOVERY, 2).u.recovery.nonce;
    assert_int_not_equal(nonce, 0);
    evr_vr_tick(W.r, T0 + 50); /* retried, same nonce */
    EQ(nsent(EVR_MSG_RECOVERY, 0), 2);
    EQ(last(EVR_MSG_RECOVERY, 0).u.recovery.nonce, nonce);
    prepare(0, 0, 1, 0); /* not while recovering */
    EQ(info().op, 0);
    recovery_response(0, 3, nonce + 2, true); /* wrong nonce */
    recovery_response(2, 3, nonce, false);
    EQ(info().status, EVR_VR_RECOVERING);
    recovery_response(0, 3, nonce, true);
    struct evr_vr_info i = info();
    assert_true(i.status == EVR_VR_NORMAL && i.view == 3 && !i.primary);
    EQ(i.op, 1);
    expect_last_call('x', 1, false);
    assert_true(stats().recoveries == 1 && stats().view_changes == 0);
}

static void test_recovery_served(void **state)
{
    start(3, 0);
    request(7, 1);
    u64_msg(EVR_MSG_RECOVERY, 1, 0, 77);
    struct evr_msg m = last(EVR_MSG_RECOVERY_RESPONSE, 1);
    const __typeof__(m.u.recovery_response) *rr = &m.u.recovery_response;
    assert_true(rr->nonce == 77 && rr->has_log && rr->op == 1);
    EQ(rr->log.count, 1);
}

/* ------------------------------------------------------------ stopping */

static void test_drain_backup_takes_no_new_op(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0);
    done(1, R(1));
    evr_vr_drain(W.r);
    assert_false(info().quiet); /* voted for op 1, not applied */
    prepare(0, 0, 2, 0);        /* a new op: not taken, no vote */
    assert_true(info().op == 1 && ncalls('x', 2) == 0);
    EQ(nsent(EVR_MSG_PREPARE_OK, 0), 1);
    prepare(0, 0, 1, 0); /* an op it holds: still answered */
    EQ(nsent(EVR_MSG_PREPARE_OK, 0), 2);
    commit(0, 1, 1, tok(1, R(1), 1), 0x3);
    struct evr_vr_info i = info();
    assert_true(i.applied == 1 && i.quiet && i.drained);
}

static void test_drain_primary_cuts_nothing_and_lingers(void **state)
{
    start(3, 0);
    request(7, 1);
    evr_vr_drain(W.r);
    assert_false(info().drained); /* op 1 in flight */
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, tok(1, R(1), 1));
    assert_true(info().applied == 1 && info().quiet);
    int prepares = nsent(EVR_MSG_PREPARE, ANY);
    request(8, 1); /* queued, never cut */
    evr_vr_tick(W.r, T0 + 10);
    EQ(nsent(EVR_MSG_PREPARE, ANY), prepares);
    assert_true(info().op == 1 && !info().drained);
    evr_vr_tick(W.r, T0 + 41); /* two heartbeats of COMMITs: done */
    assert_true(info().quiet && info().drained);
}

/* Replica self of 3 resumes at op 5 in view 3 (whose primary is 0). */
static void resume_in_view3(uint32_t self)
{
    cfg(3, self);
    struct evr_vr_applied a = {.op = 5, .root = R(5), .resp_digest = ZERO,
                               .resume = true, .view = 3};
    boot_at(&a, false);
}

static void test_resume_as_backup(void **state)
{
    resume_in_view3(1);
    struct evr_vr_info i = info();
    assert_true(i.status == EVR_VR_NORMAL && i.view == 3 && !i.primary);
    assert_true(i.op == 5 && i.applied == 5 && i.quiet);
    EQ(W.nsent, 0); /* a backup that was only cut off: it says nothing */
    prepare(0, 3, 6, 0); /* view 3's primary goes on */
    EQ(info().op, 6);
    expect_last_call('x', 6, false);
}

static void test_resume_as_primary_changes_view(void **state)
{
    resume_in_view3(0);
    struct evr_vr_info i = info();
    assert_true(i.status == EVR_VR_VIEW_CHANGE && i.view == 4);
    assert_true(nsent(EVR_MSG_START_VIEW_CHANGE, 1) == 1 &&
                nsent(EVR_MSG_START_VIEW_CHANGE, 2) == 1);
    EQ(stats().recoveries, 0);
}

/* ------------------------------------------------------------ failures */

static void test_bad_frames(void **state)
{
    start(3, 0);
    request(7, 1);
    int sent = W.nsent, calls = W.ncalls;
    uint64_t cl = W.cfg.cluster;
    struct {
        uint32_t sender;
        int flip; /* byte to damage, or -1 */
        uint64_t cluster;
    } bad[] = {
        {1, EVR_FRAME_HEADER_SIZE + 2, cl}, /* body damaged */
        {1, 3, cl},                         /* header damaged */
        {0, -1, cl},                        /* from itself */
        {EVR_SENDER_CLIENT, -1, cl},        /* a client, not a REQUEST */
        {7, -1, cl},                        /* no such replica */
        {1, -1, cl + 1},                    /* another cluster */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        begin_as(EVR_MSG_PREPARE_OK, bad[k].sender, 0, bad[k].cluster);
        P64(1); P32(0); PH(tok(1, R(1), 1));
        OK(evr_frame_end(&W.fb, W.fb_start));
        if (bad[k].flip >= 0) {
            W.fb.data[bad[k].flip] ^= 0x40;
        }
        struct evr_err err;
        assert_int_not_equal(evr_vr_receive(W.r, W.fb.data, W.fb.len, &err),
                             0);
        EQ(stats().frames_bad, k + 1);
    }
    begin(EVR_MSG_REQUEST, 1, 0); /* a REQUEST from a replica */
    P64(8); P64(1); PB("q", 1);
    assert_int_not_equal(deliver(), 0);
    done(1, R(1));
    struct evr_vr_stats s = stats();
    assert_true(s.frames_bad == 7 && s.frames_in == 1 && s.requests == 1);
    assert_true(W.nsent == sent && W.ncalls == calls);
    EQ(info().commit, 0); /* no vote got through */
}

static void test_host_failure_stops_replica(void **state)
{
    start(3, 1);
    W.fail_exec = true;
    prepare(0, 0, 1, 0);
    struct evr_err err;
    EQ(evr_vr_failed(W.r, &err), EVR_EIO);
    assert_non_null(strstr(err.msg, "disk on fire"));
    int sent = W.nsent;
    begin(EVR_MSG_PREPARE_OK, 0, 0);
    P64(1); P32(0); PH(ZERO);
    EQ(deliver(), EVR_ESTATE);
    evr_vr_tick(W.r, T0 + 1000);
    assert_true(W.nsent == sent && W.ncalls == 1);
}

/* ---------------------------------------------------------- agree-execute */

static void test_agree_execute_primary(void **state)
{
    cfg(3, 0)->mode = EVR_VR_AGREE_EXECUTE;
    boot(false);
    request(7, 1);
    EQ(nsent(EVR_MSG_PREPARE, ANY), 2);
    EQ(W.ncalls, 0); /* nothing runs before the order commits */
    prepare_ok(1, 0, 1, 0, ZERO);
    assert_true(info().commit == 1 && nsent(EVR_MSG_COMMIT, ANY) == 2);
    expect_last_call('x', 1, true);
    done(1, R(1));
    assert_true(ncalls('c', 1) == 1 && info().applied == 1);
    EQ(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 1);
}

static void test_agree_execute_backup(void **state)
{
    cfg(3, 1)->mode = EVR_VR_AGREE_EXECUTE;
    boot(false);
    prepare(0, 0, 1, 0);
    EQ(W.ncalls, 0);
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    EQ(m.u.prepare_ok.op, 1);
    assert_true(evr_h128_is_zero(m.u.prepare_ok.token));
    commit(0, 1, 0, ZERO, 0);
    expect_last_call('x', 1, true);
    done(1, R(1));
    assert_true(ncalls('c', 1) == 1 && info().applied == 1);
    EQ(nsent(EVR_MSG_PREPARE_OK, 0), 1); /* no vote on the result */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_batch_by_size),
        T(test_request_batch_by_delay),
        T(test_request_queue_and_depth_limits),
        T(test_request_table_full_of_clients_in_flight),
        T(test_request_retry_gets_cached_reply),
        T(test_prepare_ok_quorum_commits),
        T(test_prepare_ok_quorum_n5),
        T(test_prepare_ok_mismatch_rolls_back),
        T(test_prepare_ok_mismatch_n5),
        T(test_verify_timeout_rolls_back),
        T(test_verify_timeout_while_executing),
        T(test_prepare_resent_to_silent_backups),
        T(test_backups_commit_primary_repairs),
        T(test_heartbeat),
        T(test_backup_prepare_executes_and_votes),
        T(test_backup_drops_requests_and_foreign_prepares),
        T(test_backup_gap_gets_state),
        T(test_backup_rollback),
        T(test_backup_rollback_while_executing),
        T(test_commit_mismatch_repairs_by_delta),
        T(test_delta_with_wrong_result_asks_next_holder),
        T(test_repair_rounds_then_snapshot),
        T(test_get_delta_served),
        T(test_get_state_served),
        T(test_new_state_catches_up),
        T(test_new_state_not_ok_starts_snapshot),
        T(test_adopted_log_gap_is_filled),
        T(test_get_snapshot_served),
        T(test_view_change_backup_sends_dvc),
        T(test_view_change_needs_f_svcs_n5),
        T(test_view_change_new_primary),
        T(test_view_change_picks_latest_normal_view_n5),
        T(test_timestamps_monotonic_across_views),
        T(test_start_view_at_backup),
        T(test_deposed_primary_joins_later_view),
        T(test_recovery),
        T(test_recovery_served),
        T(test_drain_backup_takes_no_new_op),
        T(test_drain_primary_cuts_nothing_and_lingers),
        T(test_resume_as_backup),
        T(test_resume_as_primary_changes_view),
        T(test_bad_frames),
        T(test_host_failure_stops_replica),
        T(test_agree_execute_primary),
        T(test_agree_execute_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
