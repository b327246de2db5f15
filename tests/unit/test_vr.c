/* The VR core (replication/vr.h) driven one replica at a time: hand-built
 * frames from "peer" replicas go in, the frames it sends and the calls it
 * makes on a recording fake host come out, one or more tests per message
 * handler, n = 3 (n = 5 where quorum sizes matter). */
#include "tests/unit/helpers/cm.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "replication/msg.h"
#include "replication/vr.h"
#include "verifier/verifier.h"

#define T0 1000u
#define ANY 0xfffffffeu
#define ANY_OP UINT64_MAX
#define SENT_MAX 512
#define CALLS_MAX 256
#define SNAP_BYTES 100

struct sent {
    uint32_t to; /* replica, or EVR_SENDER_CLIENT for a reply */
    uint8_t *p;
    size_t len;
};
struct call {
    char kind; /* x execute, r rollback, c commit, e/a delta export/apply,
                  s/i snapshot export/import */
    uint64_t op;
    bool seq;
};

static struct {
    struct evr_vr *r;
    struct evr_vr_config cfg;
    struct sent sent[SENT_MAX];
    int nsent;
    struct call calls[CALLS_MAX];
    int ncalls;
    uint32_t exec_n;
    uint64_t clock, rnd;
    evr_h128 delta_root, snap_root;
    uint8_t snap[SNAP_BYTES];
    struct evr_buf fb, bb; /* frame and batch scratch */
    size_t fb_start;
    struct evr_hasher *hasher;
} W;

static evr_h128 R(uint64_t x) { return (evr_h128){x, 0x5eed}; }

/* ------------------------------------------------------------ fakes */

static void rec(char kind, uint64_t op, bool seq)
{
    assert_true(W.ncalls < CALLS_MAX);
    W.calls[W.ncalls++] = (struct call){kind, op, seq};
}

static int h_execute(void *d, const struct evr_vr_batch *b, bool seq,
                     struct evr_err *err)
{
    rec('x', b->op, seq);
    W.exec_n = b->n;
    return 0;
}
static int h_rollback(void *d, uint64_t op, struct evr_err *err)
{
    rec('r', op, false);
    return 0;
}
static int h_commit(void *d, uint64_t op, struct evr_err *err)
{
    rec('c', op, false);
    return 0;
}
static int h_delta_export(void *d, uint64_t op, struct evr_buf *out,
                          struct evr_err *err)
{
    rec('e', op, false);
    return evr_buf_put(out, "delta", 5);
}
static int h_delta_apply(void *d, uint64_t op, const void *p, size_t len,
                         evr_h128 *root, struct evr_err *err)
{
    rec('a', op, false);
    *root = W.delta_root;
    return 0;
}
static int h_snap_export(void *d, struct evr_buf *out, evr_h128 *root,
                         struct evr_err *err)
{
    rec('s', 0, false);
    *root = W.snap_root;
    return evr_buf_put(out, W.snap, SNAP_BYTES);
}
static int h_snap_import(void *d, uint64_t op, const void *p, size_t len,
                         evr_h128 *root, struct evr_err *err)
{
    rec('i', op, false);
    assert_int_equal(len, SNAP_BYTES);
    assert_memory_equal(p, W.snap, SNAP_BYTES);
    *root = W.snap_root;
    return 0;
}

static void keep(uint32_t to, const void *frame, size_t len)
{
    assert_true(W.nsent < SENT_MAX);
    struct sent *s = &W.sent[W.nsent++];
    s->to = to;
    s->p = malloc(len);
    assert_non_null(s->p);
    memcpy(s->p, frame, len);
    s->len = len;
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
    W.snap_root = R(9);
    W.delta_root = R(9);
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
    evr_vr_config_default(&W.cfg, n, self);
    W.cfg.batch_size_max = 1;
    W.cfg.batch_delay_ms = 5;
    W.cfg.depth_max = 4;
    W.cfg.log_retain = 16;
    W.cfg.clients_max = 64;
    W.cfg.chunk_bytes = 64;
    W.cfg.heartbeat_ms = 20;
    W.cfg.view_timeout_ms = 200;
    W.cfg.verify_timeout_ms = 40;
    W.cfg.retry_ms = 50;
    return &W.cfg;
}

static void boot(bool recovering)
{
    struct evr_vr_io io = {NULL, io_send, io_reply, io_time, io_random, NULL};
    struct evr_vr_host host = {NULL,           h_execute,     h_rollback,
                               h_commit,       h_delta_export, h_delta_apply,
                               h_snap_export,  h_snap_import};
    struct evr_vr_applied a = {0, R(0), {0, 0}};
    struct evr_err err;
    assert_int_equal(evr_vr_new(&W.cfg, &io, &host, &a, recovering, T0,
                                &W.r, &err), 0);
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
    struct evr_err err;
    assert_int_equal(evr_msg_decode(s->p, s->len, W.cfg.cluster,
                                    W.cfg.body_max, &m, &err), 0);
    assert_int_equal(m.h.sender, W.cfg.self);
    return m;
}

/* Frames of type sent to `to` (ANY: anyone); replies go to
 * EVR_SENDER_CLIENT. */
static int nsent(int type, uint32_t to)
{
    int k = 0;
    for (int i = 0; i < W.nsent; i++) {
        struct evr_msg m = decode(&W.sent[i]);
        k += m.h.type == type && (to == ANY || W.sent[i].to == to);
    }
    return k;
}

/* The last such frame (it must exist). */
static struct evr_msg last(int type, uint32_t to)
{
    for (int i = W.nsent - 1; i >= 0; i--) {
        struct evr_msg m = decode(&W.sent[i]);
        if (m.h.type == type && (to == ANY || W.sent[i].to == to)) {
            return m;
        }
    }
    fail_msg("no %s to %u sent", evr_msg_type_name((uint32_t)type), to);
    return (struct evr_msg){0};
}

static int ncalls(char kind, uint64_t op)
{
    int k = 0;
    for (int i = 0; i < W.ncalls; i++) {
        k += W.calls[i].kind == kind && (op == ANY_OP || W.calls[i].op == op);
    }
    return k;
}

static struct call last_call(void)
{
    assert_true(W.ncalls > 0);
    return W.calls[W.ncalls - 1];
}

/* Every response of op: status 0, one byte (op). */
static evr_h128 resp_digest(uint64_t op, uint32_t n)
{
    uint8_t b = (uint8_t)op;
    evr_hasher_reset(W.hasher, 0);
    for (uint32_t i = 0; i < n; i++) {
        evr_response_digest_add(W.hasher, 0, &b, 1);
    }
    return evr_hasher_digest(W.hasher);
}

static evr_h128 tok(uint64_t op, evr_h128 root, uint32_t n)
{
    return evr_token(op, root, resp_digest(op, n));
}

/* The host finishes the running execution of op with state root. */
static void done(uint64_t op, evr_h128 root)
{
    struct call c = last_call();
    assert_int_equal(c.kind, 'x');
    assert_int_equal(c.op, op);
    assert_true(info().executing);
    uint8_t b = (uint8_t)op;
    struct evr_vr_response resp[8];
    assert_true(W.exec_n <= 8);
    for (uint32_t i = 0; i < W.exec_n; i++) {
        resp[i] = (struct evr_vr_response){0, 1, &b};
    }
    evr_vr_executed(W.r, op, root, resp, W.exec_n);
}

/* ------------------------------------------------------------ inputs */

#define P8(v) assert_int_equal(evr_buf_put_u8(&W.fb, (v)), 0)
#define P32(v) assert_int_equal(evr_buf_put_u32(&W.fb, (v)), 0)
#define P64(v) assert_int_equal(evr_buf_put_u64(&W.fb, (v)), 0)
#define PH(v) assert_int_equal(evr_msg_put_h128(&W.fb, (v)), 0)

static void begin(int type, uint32_t sender, uint64_t view)
{
    struct evr_frame_hdr h = {(uint16_t)type, W.cfg.cluster, sender, view, 0};
    int rc;
    evr_buf_reset(&W.fb);
    W.fb_start = evr_frame_begin(&W.fb, &h, &rc);
    assert_int_equal(rc, 0);
}

static int deliver(void)
{
    struct evr_err err;
    assert_int_equal(evr_frame_end(&W.fb, W.fb_start), 0);
    return evr_vr_receive(W.r, W.fb.data, W.fb.len, &err);
}

#define DELIVER() assert_int_equal(deliver(), 0)

/* The batch of op: one request of client 100 + op + 10 salt. */
static void mkbatch(struct evr_buf *b, uint64_t op, uint32_t salt)
{
    evr_buf_reset(b);
    assert_int_equal(evr_msg_put_batch_head(b, (int64_t)op, 1, 1), 0);
    assert_int_equal(evr_msg_put_req(b, 100 + op + 10 * salt, 1, "q", 1), 0);
}

/* Entries first..first+count-1 of view, the first ncommit committed. */
static void put_log(uint64_t first, uint32_t count, uint64_t view,
                    uint32_t salt, uint32_t ncommit, const evr_h128 *t)
{
    P32(count);
    for (uint32_t i = 0; i < count; i++) {
        bool c = i < ncommit;
        mkbatch(&W.bb, first + i, salt);
        assert_int_equal(evr_msg_put_entry(&W.fb, first + i, view, c,
                                           c ? t[i] : (evr_h128){0, 0},
                                           c ? 3 : 0, W.bb.data, W.bb.len),
                         0);
    }
}

static void request(uint64_t client, uint64_t no)
{
    begin(EVR_MSG_REQUEST, EVR_SENDER_CLIENT, 0);
    P64(client);
    P64(no);
    assert_int_equal(evr_msg_put_bytes32(&W.fb, "q", 1), 0);
    DELIVER();
}

static void prepare(uint32_t from, uint64_t view, uint64_t op,
                    uint32_t attempt, bool seq, uint64_t commit)
{
    begin(EVR_MSG_PREPARE, from, view);
    P64(op);
    P32(attempt);
    P8(seq ? 1 : 0);
    P64(commit);
    mkbatch(&W.bb, op, 0);
    assert_int_equal(evr_buf_put(&W.fb, W.bb.data, W.bb.len), 0);
    DELIVER();
}

static void prepare_ok(uint32_t from, uint64_t view, uint64_t op,
                       uint32_t attempt, evr_h128 t)
{
    begin(EVR_MSG_PREPARE_OK, from, view);
    P64(op);
    P32(attempt);
    PH(t);
    DELIVER();
}

/* COMMIT(commit) with one token (op, t, holders), or none when op == 0. */
static void commit(uint32_t from, uint64_t view, uint64_t c, uint64_t op,
                   evr_h128 t, uint32_t holders)
{
    begin(EVR_MSG_COMMIT, from, view);
    P64(c);
    P32(op != 0 ? 1 : 0);
    if (op != 0) {
        P64(op);
        PH(t);
        P32(holders);
    }
    DELIVER();
}

static void u64_msg(int type, uint32_t from, uint64_t view, uint64_t a)
{
    begin(type, from, view);
    P64(a);
    DELIVER();
}

/* DELTA for op with one response (status 0, byte op), or ok = 0. */
static void delta(uint32_t from, uint64_t op, evr_h128 t, bool ok)
{
    begin(EVR_MSG_DELTA, from, 0);
    P64(op);
    PH(t);
    P8(ok ? 1 : 0);
    if (ok) {
        uint8_t b = (uint8_t)op;
        P32(1);
        P32(0);
        assert_int_equal(evr_msg_put_bytes32(&W.fb, &b, 1), 0);
        assert_int_equal(evr_msg_put_bytes32(&W.fb, "delta", 5), 0);
    }
    DELIVER();
}

static void chunk(uint32_t from, uint64_t snap_op, evr_h128 hash,
                  uint64_t offset, uint32_t len)
{
    evr_h128 rd = resp_digest(snap_op, 1);
    begin(EVR_MSG_SNAPSHOT_CHUNK, from, 0);
    P64(snap_op);
    PH(evr_token(snap_op, W.snap_root, rd));
    PH(W.snap_root);
    PH(rd);
    PH(hash);
    P64(SNAP_BYTES);
    P64(offset);
    assert_int_equal(evr_msg_put_bytes32(&W.fb, W.snap + offset, len), 0);
    DELIVER();
}

static void assert_h128_eq(evr_h128 a, evr_h128 b)
{
    assert_true(evr_h128_eq(a, b));
}

/* The primary (replica 0, view 0) commits op 1 of client 7 with replica 1. */
static evr_h128 primary_commits_op1(void)
{
    request(7, 1);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    assert_int_equal(info().applied, 1);
    return t;
}

/* ------------------------------------------------------------ REQUEST */

static void test_request_batch_by_size(void **state)
{
    cfg(3, 0)->batch_size_max = 2;
    boot(false);
    request(7, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 0);
    request(7, 1); /* a duplicate while queued */
    assert_int_equal(stats().requests_dropped, 1);
    request(8, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, 1), 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, 2), 1);
    struct evr_msg m = last(EVR_MSG_PREPARE, 2);
    assert_int_equal(m.h.view, 0);
    assert_int_equal(m.u.prepare.op, 1);
    assert_int_equal(m.u.prepare.attempt, 0);
    assert_false(m.u.prepare.sequential);
    assert_int_equal(m.u.prepare.batch.n, 2);
    struct evr_msg_iter it;
    struct evr_msg_req q;
    evr_msg_reqs_iter(&m.u.prepare.batch, &it);
    assert_true(evr_msg_reqs_next(&it, &q));
    assert_int_equal(q.client, 7);
    assert_int_equal(q.request_no, 1);
    assert_true(evr_msg_reqs_next(&it, &q));
    assert_int_equal(q.client, 8);
    assert_false(evr_msg_reqs_next(&it, &q));
    /* the primary executes it at once (eve) */
    assert_int_equal(ncalls('x', 1), 1);
    assert_false(last_call().seq);
    assert_int_equal(W.exec_n, 2);
    request(7, 1); /* a duplicate while in flight */
    struct evr_vr_stats s = stats();
    assert_int_equal(s.requests_dropped, 2);
    assert_int_equal(s.requests, 2);
    assert_int_equal(s.batches_prepared, 1);
    assert_int_equal(info().op, 1);
}

static void test_request_batch_by_delay(void **state)
{
    cfg(3, 0)->batch_size_max = 8;
    boot(false);
    request(7, 1);
    request(8, 4);
    evr_vr_tick(W.r, T0 + 4);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 0);
    evr_vr_tick(W.r, T0 + 5);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 2);
    assert_int_equal(last(EVR_MSG_PREPARE, 1).u.prepare.batch.n, 2);
    assert_int_equal(ncalls('x', 1), 1);
}

static void test_request_at_backup_dropped(void **state)
{
    start(3, 1);
    request(7, 1);
    assert_int_equal(stats().requests_dropped, 1);
    assert_int_equal(W.nsent, 0);
    assert_int_equal(W.ncalls, 0);
    assert_int_equal(info().op, 0);
}

static void test_request_retry_gets_cached_reply(void **state)
{
    start(3, 0);
    primary_commits_op1();
    assert_int_equal(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 1);
    request(7, 1);
    assert_int_equal(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 2);
    struct evr_msg m = last(EVR_MSG_REPLY, EVR_SENDER_CLIENT);
    assert_int_equal(m.u.reply.client, 7);
    assert_int_equal(m.u.reply.request_no, 1);
    assert_int_equal(m.u.reply.op, 1);
    assert_int_equal(m.u.reply.len, 1);
    assert_int_equal(m.u.reply.data[0], 1);
    assert_int_equal(stats().batches_prepared, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 2);
}

/* ------------------------------------------------------------ PREPARE_OK */

static void test_prepare_ok_quorum_commits(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    assert_int_equal(nsent(EVR_MSG_COMMIT, ANY), 0);
    assert_int_equal(info().commit, 0);
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    assert_int_equal(nsent(EVR_MSG_COMMIT, 1), 1);
    assert_int_equal(nsent(EVR_MSG_COMMIT, 2), 1);
    struct evr_msg m = last(EVR_MSG_COMMIT, 2);
    assert_int_equal(m.u.commit.commit, 1);
    assert_int_equal(m.u.commit.count, 1);
    struct evr_msg_iter it;
    struct evr_msg_token k;
    evr_msg_tokens_iter(&m, &it);
    assert_true(evr_msg_tokens_next(&it, &k));
    assert_int_equal(k.op, 1);
    assert_h128_eq(k.token, t);
    assert_int_equal(k.holders, 0x3);
    assert_int_equal(ncalls('c', 1), 1);
    m = last(EVR_MSG_REPLY, EVR_SENDER_CLIENT);
    assert_int_equal(m.u.reply.client, 7);
    assert_int_equal(m.u.reply.status, 0);
    assert_int_equal(m.u.reply.data[0], 1);
    struct evr_vr_info i = info();
    assert_int_equal(i.commit, 1);
    assert_int_equal(i.applied, 1);
    assert_h128_eq(i.applied_token, t);
    assert_int_equal(stats().replies, 1);
}

static void test_prepare_ok_quorum_n5(void **state)
{
    start(5, 0);
    request(7, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 4);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, t);
    prepare_ok(2, 0, 1, 0, tok(1, R(2), 1));
    assert_int_equal(info().commit, 0); /* 2 of 3 */
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    prepare_ok(4, 0, 1, 0, t);
    assert_int_equal(info().commit, 1);
    struct evr_msg m = last(EVR_MSG_COMMIT, 3);
    struct evr_msg_iter it;
    struct evr_msg_token k;
    evr_msg_tokens_iter(&m, &it);
    assert_true(evr_msg_tokens_next(&it, &k));
    assert_int_equal(k.holders, 0x13);
}

static void test_prepare_ok_mismatch_rolls_back(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    prepare_ok(1, 0, 1, 0, tok(1, R(2), 1));
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 0); /* 2 may still agree */
    prepare_ok(2, 0, 1, 0, tok(1, R(3), 1));
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, 1), 1);
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, 2), 1);
    struct evr_msg m = last(EVR_MSG_ROLLBACK, 1);
    assert_int_equal(m.u.rollback.op, 1);
    assert_int_equal(m.u.rollback.attempt, 1);
    assert_int_equal(ncalls('r', 1), 1);
    struct call c = last_call();
    assert_int_equal(c.kind, 'x');
    assert_int_equal(c.op, 1);
    assert_true(c.seq);
    assert_int_equal(stats().rollbacks, 1);
    assert_int_equal(stats().rollbacks_done, 1);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, t); /* the old attempt: ignored */
    assert_int_equal(info().commit, 0);
    prepare_ok(1, 0, 1, 1, t);
    assert_int_equal(info().commit, 1);
    assert_int_equal(ncalls('c', 1), 1);
}

static void test_prepare_ok_mismatch_n5(void **state)
{
    start(5, 0);
    request(7, 1);
    done(1, R(1));
    prepare_ok(1, 0, 1, 0, tok(1, R(2), 1));
    prepare_ok(2, 0, 1, 0, tok(1, R(3), 1));
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    /* best 1 + 1 missing < 3: no token can win any more */
    prepare_ok(3, 0, 1, 0, tok(1, R(4), 1));
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 4);
}

static void test_verify_timeout_rolls_back(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    evr_vr_tick(W.r, T0 + 39);
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 0);
    evr_vr_tick(W.r, T0 + 40);
    assert_int_equal(nsent(EVR_MSG_ROLLBACK, ANY), 2);
    assert_int_equal(last(EVR_MSG_ROLLBACK, 2).u.rollback.attempt, 1);
    assert_int_equal(ncalls('r', 1), 1);
    assert_true(last_call().seq);
    /* and PREPARE goes out again, for the new attempt, after retry_ms */
    evr_vr_tick(W.r, T0 + 50);
    struct evr_msg m = last(EVR_MSG_PREPARE, 1);
    assert_int_equal(m.u.prepare.attempt, 1);
    assert_true(m.u.prepare.sequential);
}

static void test_heartbeat(void **state)
{
    start(3, 0);
    evr_vr_tick(W.r, T0 + 19);
    assert_int_equal(W.nsent, 0);
    evr_vr_tick(W.r, T0 + 20);
    assert_int_equal(nsent(EVR_MSG_COMMIT, ANY), 2);
    struct evr_msg m = last(EVR_MSG_COMMIT, 1);
    assert_int_equal(m.u.commit.commit, 0);
    assert_int_equal(m.u.commit.count, 0);
}

/* ------------------------------------------------------------ backups */

static void test_backup_prepare_executes_and_votes(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0, false, 0);
    assert_int_equal(info().op, 1);
    assert_int_equal(ncalls('x', 1), 1);
    assert_false(last_call().seq);
    assert_int_equal(nsent(EVR_MSG_PREPARE_OK, ANY), 0);
    done(1, R(1));
    assert_int_equal(nsent(EVR_MSG_PREPARE_OK, 0), 1);
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    assert_int_equal(m.u.prepare_ok.op, 1);
    assert_int_equal(m.u.prepare_ok.attempt, 0);
    evr_h128 t = tok(1, R(1), 1);
    assert_h128_eq(m.u.prepare_ok.token, t);
    prepare(0, 0, 1, 0, false, 0); /* a resend: answered again */
    assert_int_equal(nsent(EVR_MSG_PREPARE_OK, 0), 2);
    assert_int_equal(ncalls('x', 1), 1);
    commit(0, 0, 1, 1, t, 0x3);
    assert_int_equal(ncalls('c', 1), 1);
    assert_int_equal(info().applied, 1);
    assert_int_equal(nsent(EVR_MSG_REPLY, ANY), 0); /* backups never reply */
}

static void test_backup_prepare_gap_gets_state(void **state)
{
    start(3, 1);
    prepare(0, 0, 3, 0, false, 0);
    assert_int_equal(info().op, 0);
    assert_int_equal(W.ncalls, 0);
    assert_int_equal(nsent(EVR_MSG_GET_STATE, 0), 1);
    assert_int_equal(last(EVR_MSG_GET_STATE, 0).u.get_state.op_from, 1);
}

static void test_backup_prepare_old_view_ignored(void **state)
{
    start(3, 1);
    evr_vr_tick(W.r, T0 + 200); /* to view 1 */
    assert_int_equal(info().view, 1);
    prepare(0, 0, 1, 0, false, 0);
    assert_int_equal(info().op, 0);
    assert_int_equal(W.ncalls, 0);
    assert_int_equal(nsent(EVR_MSG_PREPARE_OK, ANY), 0);
}

static void test_backup_prepare_not_from_primary_ignored(void **state)
{
    start(3, 1);
    prepare(2, 0, 1, 0, false, 0);
    assert_int_equal(info().op, 0);
    assert_int_equal(W.ncalls, 0);
}

static void test_backup_rollback(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0, false, 0);
    done(1, R(5));
    begin(EVR_MSG_ROLLBACK, 0, 0); /* op 1, attempt 1 */
    P64(1);
    P32(1);
    DELIVER();
    assert_int_equal(ncalls('r', 1), 1);
    assert_int_equal(last_call().kind, 'x');
    assert_true(last_call().seq);
    done(1, R(1));
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    assert_int_equal(m.u.prepare_ok.attempt, 1);
    assert_h128_eq(m.u.prepare_ok.token, tok(1, R(1), 1));
}

/* ------------------------------------------------------------ COMMIT repair */

/* Replica 1 executed op 1 to R(5); the committed token is R(9)'s, held by
 * replicas 0 and 2. */
static evr_h128 diverge(void)
{
    cfg(3, 1);
    boot(false);
    prepare(0, 0, 1, 0, false, 0);
    done(1, R(5));
    evr_h128 tc = tok(1, R(9), 1);
    commit(0, 0, 1, 1, tc, 0x5);
    assert_int_equal(ncalls('r', 1), 1);
    assert_int_equal(ncalls('c', ANY_OP), 0);
    struct evr_msg m = last(EVR_MSG_GET_DELTA, 0);
    assert_int_equal(m.u.get_delta.op, 1);
    assert_h128_eq(m.u.get_delta.token, tc);
    return tc;
}

static void test_commit_mismatch_repairs_by_delta(void **state)
{
    evr_h128 tc = diverge();
    delta(0, 1, tc, true);
    assert_int_equal(ncalls('a', 1), 1);
    assert_int_equal(ncalls('c', 1), 1);
    assert_int_equal(stats().repairs, 1);
    struct evr_vr_info i = info();
    assert_int_equal(i.applied, 1);
    assert_h128_eq(i.applied_token, tc);
}

static void test_delta_with_wrong_result_asks_next_holder(void **state)
{
    evr_h128 tc = diverge();
    W.delta_root = R(6); /* applies, but does not give the token */
    delta(0, 1, tc, true);
    assert_int_equal(ncalls('a', 1), 1);
    assert_int_equal(ncalls('c', ANY_OP), 0);
    assert_int_equal(nsent(EVR_MSG_GET_DELTA, 2), 1);
    W.delta_root = R(9);
    delta(2, 1, tc, true);
    assert_int_equal(ncalls('c', 1), 1);
}

static void test_repair_rounds_then_snapshot(void **state)
{
    evr_h128 tc = diverge();
    for (int i = 0; i < 6; i++) { /* REPAIR_ROUNDS_MAX (3) x 2 holders */
        assert_int_equal(nsent(EVR_MSG_GET_SNAPSHOT, ANY), 0);
        delta(i % 2 == 0 ? 0 : 2, 1, tc, false);
    }
    assert_int_equal(nsent(EVR_MSG_GET_DELTA, 0), 3);
    assert_int_equal(nsent(EVR_MSG_GET_DELTA, 2), 3);
    assert_int_equal(nsent(EVR_MSG_GET_SNAPSHOT, 0), 1);
    struct evr_msg m = last(EVR_MSG_GET_SNAPSHOT, 0);
    assert_int_equal(m.u.get_snapshot.snap_op, 0);
    assert_int_equal(m.u.get_snapshot.offset, 0);

    /* a snapshot whose hash does not check is fetched again */
    evr_h128 bad = evr_hash128("other", 5, 0);
    chunk(0, 1, bad, 0, 64);
    m = last(EVR_MSG_GET_SNAPSHOT, 0);
    assert_int_equal(m.u.get_snapshot.snap_op, 1);
    assert_int_equal(m.u.get_snapshot.offset, 64);
    chunk(0, 1, bad, 64, SNAP_BYTES - 64);
    assert_int_equal(ncalls('i', ANY_OP), 0);
    m = last(EVR_MSG_GET_SNAPSHOT, 0);
    assert_int_equal(m.u.get_snapshot.snap_op, 0);
    assert_int_equal(m.u.get_snapshot.offset, 0);

    evr_h128 good = evr_hash128(W.snap, SNAP_BYTES, 0);
    chunk(0, 1, good, 0, 64);
    chunk(0, 1, good, 64, SNAP_BYTES - 64);
    assert_int_equal(ncalls('i', 1), 1);
    assert_int_equal(stats().state_transfers, 1);
    struct evr_vr_info i = info();
    assert_int_equal(i.applied, 1);
    assert_int_equal(i.executed, 1);
    assert_h128_eq(i.applied_token, tc);
}

/* ------------------------------------------------------------ GET_DELTA */

static void test_get_delta_served(void **state)
{
    start(3, 0);
    request(7, 1);
    done(1, R(1));
    evr_h128 t = tok(1, R(1), 1);
    begin(EVR_MSG_GET_DELTA, 2, 0);
    P64(1);
    PH(t);
    DELIVER();
    struct evr_msg m = last(EVR_MSG_DELTA, 2);
    assert_true(m.u.delta.ok);
    assert_int_equal(m.u.delta.op, 1);
    assert_int_equal(m.u.delta.resp.n, 1);
    assert_int_equal(m.u.delta.len, 5);
    assert_memory_equal(m.u.delta.data, "delta", 5);
    assert_int_equal(ncalls('e', 1), 1);
    begin(EVR_MSG_GET_DELTA, 2, 0); /* a token we do not hold */
    P64(1);
    PH(tok(1, R(2), 1));
    DELIVER();
    assert_false(last(EVR_MSG_DELTA, 2).u.delta.ok);
    assert_int_equal(ncalls('e', 1), 1);
}

/* ------------------------------------------------------------ GET_STATE */

static void test_get_state_served(void **state)
{
    start(3, 0);
    request(7, 1);
    u64_msg(EVR_MSG_GET_STATE, 2, 0, 1);
    struct evr_msg m = last(EVR_MSG_NEW_STATE, 2);
    assert_true(m.u.new_state.ok);
    assert_int_equal(m.u.new_state.op, 1);
    assert_int_equal(m.u.new_state.commit, 0);
    assert_int_equal(m.u.new_state.log.count, 1);
    struct evr_msg_iter it;
    struct evr_msg_entry e;
    evr_msg_log_iter(&m.u.new_state.log, &it);
    assert_true(evr_msg_log_next(&it, &e));
    assert_int_equal(e.op, 1);
    assert_false(e.committed);
    assert_int_equal(e.batch.n, 1);
    u64_msg(EVR_MSG_GET_STATE, 2, 1, 1); /* another view: ignored */
    assert_int_equal(nsent(EVR_MSG_NEW_STATE, ANY), 1);
}

static void test_new_state_catches_up(void **state)
{
    start(3, 2);
    evr_h128 t[2] = {tok(1, R(1), 1), tok(2, R(2), 1)};
    begin(EVR_MSG_NEW_STATE, 0, 0);
    P8(1);
    P64(2);
    P64(2);
    put_log(1, 2, 0, 0, 2, t);
    DELIVER();
    struct evr_vr_info i = info();
    assert_int_equal(i.op, 2);
    assert_int_equal(i.commit, 2);
    done(1, R(1));
    assert_int_equal(ncalls('c', 1), 1);
    done(2, R(2));
    assert_int_equal(ncalls('c', 2), 1);
    assert_int_equal(info().applied, 2);
    assert_int_equal(nsent(EVR_MSG_GET_STATE, ANY), 0);
}

static void test_new_state_not_ok_starts_snapshot(void **state)
{
    start(3, 2);
    begin(EVR_MSG_NEW_STATE, 1, 0);
    P8(0);
    P64(40);
    P64(40);
    P32(0);
    DELIVER();
    struct evr_msg m = last(EVR_MSG_GET_SNAPSHOT, 1);
    assert_int_equal(m.u.get_snapshot.snap_op, 0);
    assert_int_equal(m.u.get_snapshot.offset, 0);
}

/* ------------------------------------------------------------ GET_SNAPSHOT */

static void get_snapshot(uint32_t from, uint64_t snap_op, uint64_t offset)
{
    begin(EVR_MSG_GET_SNAPSHOT, from, 0);
    P64(snap_op);
    P64(offset);
    DELIVER();
}

static void test_get_snapshot_served(void **state)
{
    start(3, 0);
    get_snapshot(1, 0, 0); /* nothing applied: nothing to give */
    assert_int_equal(nsent(EVR_MSG_SNAPSHOT_CHUNK, ANY), 0);
    primary_commits_op1();
    get_snapshot(1, 0, 0);
    struct evr_msg m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    evr_h128 rd = resp_digest(1, 1);
    assert_int_equal(m.u.snapshot_chunk.snap_op, 1);
    assert_int_equal(m.u.snapshot_chunk.total, SNAP_BYTES);
    assert_int_equal(m.u.snapshot_chunk.offset, 0);
    assert_int_equal(m.u.snapshot_chunk.len, 64);
    assert_memory_equal(m.u.snapshot_chunk.data, W.snap, 64);
    assert_h128_eq(m.u.snapshot_chunk.root, W.snap_root);
    assert_h128_eq(m.u.snapshot_chunk.resp_digest, rd);
    assert_h128_eq(m.u.snapshot_chunk.token, evr_token(1, W.snap_root, rd));
    assert_h128_eq(m.u.snapshot_chunk.hash,
                   evr_hash128(W.snap, SNAP_BYTES, 0));
    get_snapshot(1, 1, 64);
    m = last(EVR_MSG_SNAPSHOT_CHUNK, 1);
    assert_int_equal(m.u.snapshot_chunk.offset, 64);
    assert_int_equal(m.u.snapshot_chunk.len, SNAP_BYTES - 64);
    assert_memory_equal(m.u.snapshot_chunk.data, W.snap + 64,
                        SNAP_BYTES - 64);
    assert_int_equal(ncalls('s', ANY_OP), 1); /* one export, cached */
}

/* ------------------------------------------------------------ view change */

static void svc(uint32_t from, uint64_t view)
{
    begin(EVR_MSG_START_VIEW_CHANGE, from, view);
    DELIVER();
}

static void dvc(uint32_t from, uint64_t view, uint64_t lnv, uint64_t op,
                uint32_t salt)
{
    begin(EVR_MSG_DO_VIEW_CHANGE, from, view);
    P64(lnv);
    P64(op);
    P64(0);
    put_log(1, (uint32_t)op, lnv, salt, 0, NULL);
    DELIVER();
}

static void test_view_change_backup_sends_dvc(void **state)
{
    start(3, 2);
    prepare(0, 0, 1, 0, false, 0);
    done(1, R(1));
    evr_vr_tick(W.r, T0 + 199);
    assert_int_equal(nsent(EVR_MSG_START_VIEW_CHANGE, ANY), 0);
    evr_vr_tick(W.r, T0 + 200);
    assert_int_equal(nsent(EVR_MSG_START_VIEW_CHANGE, 0), 1);
    assert_int_equal(nsent(EVR_MSG_START_VIEW_CHANGE, 1), 1);
    assert_int_equal(last(EVR_MSG_START_VIEW_CHANGE, 0).h.view, 1);
    struct evr_vr_info i = info();
    assert_int_equal(i.view, 1);
    assert_int_equal(i.status, EVR_VR_VIEW_CHANGE);
    assert_int_equal(nsent(EVR_MSG_DO_VIEW_CHANGE, ANY), 0);
    svc(1, 1);
    assert_int_equal(nsent(EVR_MSG_DO_VIEW_CHANGE, ANY), 1);
    struct evr_msg m = last(EVR_MSG_DO_VIEW_CHANGE, 1);
    assert_int_equal(m.h.view, 1);
    assert_int_equal(m.u.do_view_change.last_normal_view, 0);
    assert_int_equal(m.u.do_view_change.op, 1);
    assert_int_equal(m.u.do_view_change.commit, 0);
    assert_int_equal(m.u.do_view_change.log.count, 1);
}

static void test_view_change_new_primary(void **state)
{
    start(3, 1);
    prepare(0, 0, 1, 0, false, 0);
    done(1, R(1));
    evr_vr_tick(W.r, T0 + 200);
    svc(2, 1);
    assert_int_equal(nsent(EVR_MSG_START_VIEW, ANY), 0); /* f+1 DVCs */
    dvc(2, 1, 0, 2, 0); /* replica 2 has ops 1..2 */
    struct evr_vr_info i = info();
    assert_int_equal(i.view, 1);
    assert_int_equal(i.status, EVR_VR_NORMAL);
    assert_true(i.primary);
    assert_int_equal(i.op, 2);
    assert_int_equal(nsent(EVR_MSG_START_VIEW, 0), 1);
    assert_int_equal(nsent(EVR_MSG_START_VIEW, 2), 1);
    struct evr_msg m = last(EVR_MSG_START_VIEW, 2);
    assert_int_equal(m.h.view, 1);
    assert_int_equal(m.u.start_view.op, 2);
    assert_int_equal(m.u.start_view.log.count, 2);
    /* speculative state is redone in the new view */
    assert_int_equal(ncalls('r', 1), 1);
    assert_int_equal(last_call().kind, 'x');
    assert_int_equal(last_call().op, 1);
    assert_int_equal(stats().view_changes, 1);
    done(1, R(1));
    prepare_ok(2, 1, 1, 0, tok(1, R(1), 1));
    assert_int_equal(info().commit, 1);
    assert_int_equal(last(EVR_MSG_COMMIT, 0).h.view, 1);
}

static void test_view_change_picks_latest_normal_view_n5(void **state)
{
    start(5, 2);
    dvc(3, 2, 0, 3, 0); /* the longer log, of an older view */
    assert_int_equal(info().status, EVR_VR_VIEW_CHANGE);
    assert_int_equal(nsent(EVR_MSG_START_VIEW, ANY), 0);
    dvc(4, 2, 1, 2, 1); /* normal in view 1 */
    struct evr_vr_info i = info();
    assert_true(i.primary);
    assert_int_equal(i.view, 2);
    assert_int_equal(i.op, 2);
    assert_int_equal(nsent(EVR_MSG_START_VIEW, ANY), 4);
    struct evr_msg m = last(EVR_MSG_START_VIEW, 0);
    assert_int_equal(m.u.start_view.op, 2);
    struct evr_msg_iter it;
    struct evr_msg_entry e;
    struct evr_msg_req q;
    evr_msg_log_iter(&m.u.start_view.log, &it);
    for (uint64_t op = 1; op <= 2; op++) {
        assert_true(evr_msg_log_next(&it, &e));
        assert_int_equal(e.op, op);
        assert_int_equal(e.view, 1);
        struct evr_msg_iter ri;
        evr_msg_reqs_iter(&e.batch, &ri);
        assert_true(evr_msg_reqs_next(&ri, &q));
        assert_int_equal(q.client, 110 + op);
    }
    assert_false(evr_msg_log_next(&it, &e));
}

static void test_start_view_at_backup(void **state)
{
    start(3, 2);
    evr_h128 t1 = tok(1, R(1), 1);
    begin(EVR_MSG_START_VIEW, 0, 1); /* not view 1's primary: ignored */
    P64(2);
    P64(1);
    put_log(1, 2, 0, 0, 1, &t1);
    DELIVER();
    assert_int_equal(info().view, 0);
    begin(EVR_MSG_START_VIEW, 1, 1);
    P64(2);
    P64(1);
    put_log(1, 2, 0, 0, 1, &t1);
    DELIVER();
    struct evr_vr_info i = info();
    assert_int_equal(i.view, 1);
    assert_int_equal(i.status, EVR_VR_NORMAL);
    assert_false(i.primary);
    assert_int_equal(i.op, 2);
    assert_int_equal(i.commit, 1);
    done(1, R(1));
    assert_int_equal(ncalls('c', 1), 1);
    assert_int_equal(last(EVR_MSG_PREPARE_OK, 1).u.prepare_ok.op, 1);
    done(2, R(2));
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 1);
    assert_int_equal(m.h.view, 1);
    assert_int_equal(m.u.prepare_ok.op, 2);
    assert_h128_eq(m.u.prepare_ok.token, tok(2, R(2), 1));
}

/* ------------------------------------------------------------ RECOVERY */

static void recovery_response(uint32_t from, uint64_t view, uint64_t nonce,
                              bool has_log)
{
    begin(EVR_MSG_RECOVERY_RESPONSE, from, view);
    P64(nonce);
    P8(has_log ? 1 : 0);
    if (has_log) {
        P64(1);
        P64(0);
        put_log(1, 1, 0, 0, 0, NULL);
    }
    DELIVER();
}

static void test_recovery(void **state)
{
    cfg(3, 1);
    boot(true);
    assert_int_equal(info().status, EVR_VR_RECOVERING);
    assert_int_equal(nsent(EVR_MSG_RECOVERY, 0), 1);
    assert_int_equal(nsent(EVR_MSG_RECOVERY, 2), 1);
    uint64_t nonce = last(EVR_MSG_RECOVERY, 2).u.recovery.nonce;
    assert_int_not_equal(nonce, 0);
    prepare(0, 0, 1, 0, false, 0); /* not while recovering */
    assert_int_equal(info().op, 0);
    recovery_response(0, 3, nonce + 2, true); /* wrong nonce */
    assert_int_equal(info().status, EVR_VR_RECOVERING);
    recovery_response(2, 3, nonce, false);
    assert_int_equal(info().status, EVR_VR_RECOVERING);
    recovery_response(0, 3, nonce, true);
    struct evr_vr_info i = info();
    assert_int_equal(i.status, EVR_VR_NORMAL);
    assert_int_equal(i.view, 3);
    assert_int_equal(i.op, 1);
    assert_false(i.primary);
    assert_int_equal(last_call().op, 1);
    assert_int_equal(last_call().kind, 'x');
    assert_int_equal(stats().recoveries, 1);
    assert_int_equal(stats().view_changes, 0);
}

static void test_recovery_retried(void **state)
{
    cfg(3, 1);
    boot(true);
    uint64_t nonce = last(EVR_MSG_RECOVERY, 0).u.recovery.nonce;
    evr_vr_tick(W.r, T0 + 50);
    assert_int_equal(nsent(EVR_MSG_RECOVERY, 0), 2);
    assert_int_equal(last(EVR_MSG_RECOVERY, 0).u.recovery.nonce, nonce);
}

static void test_recovery_served(void **state)
{
    start(3, 0);
    request(7, 1);
    u64_msg(EVR_MSG_RECOVERY, 1, 0, 77);
    struct evr_msg m = last(EVR_MSG_RECOVERY_RESPONSE, 1);
    assert_int_equal(m.u.recovery_response.nonce, 77);
    assert_true(m.u.recovery_response.has_log);
    assert_int_equal(m.u.recovery_response.op, 1);
    assert_int_equal(m.u.recovery_response.log.count, 1);
}

/* ------------------------------------------------------------ bad frames */

static void test_bad_frames(void **state)
{
    start(3, 0);
    request(7, 1);
    int sent = W.nsent, calls = W.ncalls;
    evr_h128 t = tok(1, R(1), 1);
    struct {
        uint32_t sender;
        int flip; /* byte to damage, or -1 */
        uint64_t cluster;
    } bad[] = {
        {1, EVR_FRAME_HEADER_SIZE + 2, W.cfg.cluster}, /* body damaged */
        {1, 3, W.cfg.cluster},                         /* header damaged */
        {0, -1, W.cfg.cluster},                        /* from self */
        {EVR_SENDER_CLIENT, -1, W.cfg.cluster},        /* non-REQUEST */
        {7, -1, W.cfg.cluster},                        /* no such replica */
        {1, -1, W.cfg.cluster + 1},                    /* other cluster */
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        struct evr_frame_hdr h = {EVR_MSG_PREPARE_OK, bad[k].cluster,
                                  bad[k].sender, 0, 0};
        int rc;
        evr_buf_reset(&W.fb);
        W.fb_start = evr_frame_begin(&W.fb, &h, &rc);
        P64(1);
        P32(0);
        PH(t);
        assert_int_equal(evr_frame_end(&W.fb, W.fb_start), 0);
        if (bad[k].flip >= 0) {
            W.fb.data[bad[k].flip] ^= 0x40;
        }
        struct evr_err err;
        assert_int_not_equal(evr_vr_receive(W.r, W.fb.data, W.fb.len, &err),
                             0);
        assert_int_equal(stats().frames_bad, k + 1);
    }
    begin(EVR_MSG_REQUEST, 1, 0); /* a REQUEST from a replica */
    P64(8);
    P64(1);
    assert_int_equal(evr_msg_put_bytes32(&W.fb, "q", 1), 0);
    assert_int_not_equal(deliver(), 0);
    done(1, R(1));
    struct evr_vr_stats s = stats();
    assert_int_equal(s.frames_bad, 7);
    assert_int_equal(s.frames_in, 1);
    assert_int_equal(s.requests, 1);
    assert_int_equal(W.nsent, sent);
    assert_int_equal(W.ncalls, calls);
    assert_int_equal(info().commit, 0); /* no vote got through */
}

/* ------------------------------------------------------------ agree-execute */

static void test_agree_execute_primary(void **state)
{
    cfg(3, 0)->mode = EVR_VR_AGREE_EXECUTE;
    boot(false);
    request(7, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE, ANY), 2);
    assert_int_equal(W.ncalls, 0); /* nothing runs before COMMIT */
    prepare_ok(1, 0, 1, 0, (evr_h128){0, 0});
    assert_int_equal(info().commit, 1);
    assert_int_equal(nsent(EVR_MSG_COMMIT, ANY), 2);
    assert_int_equal(last_call().kind, 'x');
    assert_true(last_call().seq);
    done(1, R(1));
    assert_int_equal(ncalls('c', 1), 1);
    assert_int_equal(nsent(EVR_MSG_REPLY, EVR_SENDER_CLIENT), 1);
    assert_int_equal(info().applied, 1);
}

static void test_agree_execute_backup(void **state)
{
    cfg(3, 1)->mode = EVR_VR_AGREE_EXECUTE;
    boot(false);
    prepare(0, 0, 1, 0, false, 0);
    assert_int_equal(W.ncalls, 0);
    struct evr_msg m = last(EVR_MSG_PREPARE_OK, 0);
    assert_int_equal(m.u.prepare_ok.op, 1);
    assert_true(evr_h128_is_zero(m.u.prepare_ok.token));
    commit(0, 0, 1, 0, (evr_h128){0, 0}, 0);
    assert_int_equal(ncalls('x', 1), 1);
    assert_true(last_call().seq);
    done(1, R(1));
    assert_int_equal(ncalls('c', 1), 1);
    assert_int_equal(info().applied, 1);
    assert_int_equal(nsent(EVR_MSG_PREPARE_OK, 0), 1); /* no second vote */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_batch_by_size),
        T(test_request_batch_by_delay),
        T(test_request_at_backup_dropped),
        T(test_request_retry_gets_cached_reply),
        T(test_prepare_ok_quorum_commits),
        T(test_prepare_ok_quorum_n5),
        T(test_prepare_ok_mismatch_rolls_back),
        T(test_prepare_ok_mismatch_n5),
        T(test_verify_timeout_rolls_back),
        T(test_heartbeat),
        T(test_backup_prepare_executes_and_votes),
        T(test_backup_prepare_gap_gets_state),
        T(test_backup_prepare_old_view_ignored),
        T(test_backup_prepare_not_from_primary_ignored),
        T(test_backup_rollback),
        T(test_commit_mismatch_repairs_by_delta),
        T(test_delta_with_wrong_result_asks_next_holder),
        T(test_repair_rounds_then_snapshot),
        T(test_get_delta_served),
        T(test_get_state_served),
        T(test_new_state_catches_up),
        T(test_new_state_not_ok_starts_snapshot),
        T(test_get_snapshot_served),
        T(test_view_change_backup_sends_dvc),
        T(test_view_change_new_primary),
        T(test_view_change_picks_latest_normal_view_n5),
        T(test_start_view_at_backup),
        T(test_recovery),
        T(test_recovery_retried),
        T(test_recovery_served),
        T(test_bad_frames),
        T(test_agree_execute_primary),
        T(test_agree_execute_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
