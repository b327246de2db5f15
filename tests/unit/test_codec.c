/* The wire codec (replication/msg.h): every message type round-trips field
 * for field; a damaged frame (a flipped bit, a truncation, a wrong header
 * field, a body breaking one of msg.h's rules) is refused whole; random bytes
 * and random mutations of valid frames never crash the decoder, and whatever
 * it accepts walks cleanly with the iterators. */
#include "tests/unit/helpers/cm.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/rng.h"
#include "replication/msg.h"

#define CL 0x5eed0fc1a55e7ull
#define BODY_MAX ((size_t)1 << 24)
#define HDR EVR_FRAME_HEADER_SIZE
#define OK(x) assert_int_equal((x), 0)
#define U8(x) OK(evr_buf_put_u8(b, (uint8_t)(x)))
#define U32(x) OK(evr_buf_put_u32(b, (uint32_t)(x)))
#define U64(x) OK(evr_buf_put_u64(b, (x)))
#define HH(x) OK(evr_msg_put_h128(b, H(x)))
#define BYTES(p, n) OK(evr_msg_put_bytes32(b, (p), (n)))
#define HEQ(h, x) evr_h128_eq((h), H(x))

static uint8_t PAY[64];
static const uint32_t NV[3] = {0, 3, 2}; /* item counts, by variant */
static struct evr_buf FB;                /* one-off frames */
static size_t FS;

static uint64_t X(int t, int v, int k) /* field values, 64 bits wide */
{
    return 0x8000000000000000ull ^ ((uint64_t)t << 32) ^ ((uint64_t)v << 16) ^
           (uint64_t)k;
}

static evr_h128 H(uint64_t x)
{
    evr_h128 h = {x, ~x * 3};
    return h;
}

static bool same_bytes(const uint8_t *d, uint32_t len, const uint8_t *want,
                       uint32_t want_len)
{
    return len == want_len && (len == 0 || memcmp(d, want, len) == 0);
}

/* ------------------------------------------------ walking what decoded */

static void walk_batch(const struct evr_msg_batch *bt)
{
    struct evr_msg_iter it;
    struct evr_msg_req q;
    uint32_t i = 0;
    evr_msg_reqs_iter(bt, &it);
    for (; evr_msg_reqs_next(&it, &q); i++) {
        assert_true(q.len <= EVR_REQUEST_BYTES_MAX);
    }
    assert_true(i == bt->n && it.r.ok && it.r.pos == it.r.len);
}

static void walk_log(const struct evr_msg_log *l)
{
    struct evr_msg_iter it;
    struct evr_msg_entry e;
    uint32_t i = 0;
    uint64_t prev = 0;
    evr_msg_log_iter(l, &it);
    for (; evr_msg_log_next(&it, &e); i++, prev = e.op) {
        assert_true(e.op != 0 && (i == 0 || e.op == prev + 1));
        walk_batch(&e.batch);
    }
    assert_true(i == l->count && it.r.ok && it.r.pos == it.r.len);
}

/* Every iterator of an accepted message walks exactly its count. */
static void walk(const struct evr_msg *m)
{
    struct evr_msg_iter it;
    struct evr_msg_token tk;
    uint32_t i = 0, len;
    int32_t st;
    const uint8_t *d;
    switch (m->h.type) {
    case EVR_MSG_PREPARE:
        walk_batch(&m->u.prepare.batch);
        break;
    case EVR_MSG_COMMIT:
        for (evr_msg_tokens_iter(m, &it); evr_msg_tokens_next(&it, &tk); i++) {
        }
        assert_true(i == m->u.commit.count && it.r.pos == it.r.len);
        break;
    case EVR_MSG_DELTA:
        if (m->u.delta.ok) {
            evr_msg_resp_iter(&m->u.delta.resp, &it);
            for (; evr_msg_resp_next(&it, &st, &d, &len); i++) {
            }
            assert_true(i == m->u.delta.resp.n && it.r.pos == it.r.len);
        }
        break;
    case EVR_MSG_DO_VIEW_CHANGE:
        walk_log(&m->u.do_view_change.log);
        break;
    case EVR_MSG_START_VIEW:
        walk_log(&m->u.start_view.log);
        break;
    case EVR_MSG_RECOVERY_RESPONSE:
        if (m->u.recovery_response.has_log) {
            walk_log(&m->u.recovery_response.log);
        }
        break;
    case EVR_MSG_NEW_STATE:
        walk_log(&m->u.new_state.log);
        break;
    }
}

/* Decodes a copy of exactly len bytes (so ASan sees any over-read), walks
 * what it accepts, checks that a refusal says why. */
static int dec(const uint8_t *p, size_t len, uint64_t cluster, size_t max)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    struct evr_msg m;
    struct evr_err err = {0};
    int rc = evr_msg_decode(c, len, cluster, max, &m, &err);
    if (rc == 0) {
        walk(&m);
    } else {
        assert_true(rc == EVR_ECORRUPT || rc == EVR_ELIMIT);
        assert_true(err.code == rc && err.msg[0] != '\0');
    }
    free(c);
    return rc;
}

/* Refills body size, body checksum and header checksum after an edit. */
static void reseal(uint8_t *f, size_t len)
{
    evr_store_u32(f + 20, (uint32_t)(len - HDR));
    evr_h128_to_bytes(evr_hash128(f + HDR, len - HDR, 0), f + 32);
    evr_h128_to_bytes(evr_hash128(f, 48, 0), f + 48);
}

/* ------------------------------------------------------------ building */

static void put_batch(struct evr_buf *b, uint64_t seed, uint32_t n)
{
    OK(evr_msg_put_batch_head(b, -(int64_t)(seed & 0xffffff), seed, n));
    for (uint32_t i = 0; i < n; i++) {
        OK(evr_msg_put_req(b, seed + i, ~seed - i, PAY + i, i * 4));
    }
}

static void check_batch(const struct evr_msg_batch *bt, uint64_t seed,
                        uint32_t n)
{
    struct evr_msg_iter it;
    struct evr_msg_req q;
    struct evr_msg_batch alone;
    uint32_t i = 0;
    assert_true(bt->timestamp_us == -(int64_t)(seed & 0xffffff));
    assert_true(bt->seed == seed && bt->n == n);
    evr_msg_reqs_iter(bt, &it);
    for (; evr_msg_reqs_next(&it, &q); i++) {
        assert_true(q.client == seed + i && q.request_no == ~seed - i);
        assert_true(same_bytes(q.data, q.len, PAY + i, i * 4));
    }
    assert_int_equal(i, n);
    /* the batch's bytes stand alone */
    OK(evr_msg_batch_parse(bt->bytes, bt->bytes_len, &alone, NULL));
    assert_int_equal(alone.n, n);
}

/* A log of entries with ops ops[] (or first, first + 1, ... if ops is
 * NULL); each entry's batch is encoded on its own first. */
static void put_log(struct evr_buf *b, const uint64_t *ops, uint64_t first,
                    uint32_t n)
{
    struct evr_buf eb;
    evr_buf_init(&eb, 1 << 16);
    U32(n);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t op = ops ? ops[i] : first + i;
        evr_buf_reset(&eb);
        put_batch(&eb, op * 3, (uint32_t)(op % 3));
        OK(evr_msg_put_entry(b, op, op ^ 0xff, op % 2 == 1, H(op),
                             (uint32_t)op * 5 + 1, eb.data, eb.len));
    }
    evr_buf_free(&eb);
}

static void check_log(const struct evr_msg_log *l, uint64_t first,
                      uint32_t n)
{
    struct evr_msg_iter it;
    struct evr_msg_entry e;
    uint32_t i = 0;
    assert_int_equal(l->count, n);
    evr_msg_log_iter(l, &it);
    for (; evr_msg_log_next(&it, &e); i++) {
        uint64_t op = first + i;
        assert_true(e.op == op && e.view == (op ^ 0xff) && HEQ(e.token, op));
        assert_true(e.committed == (op % 2 == 1));
        assert_int_equal(e.holders, (uint32_t)op * 5 + 1);
        check_batch(&e.batch, op * 3, (uint32_t)(op % 3));
    }
    assert_int_equal(i, n);
}

static size_t begin(struct evr_buf *b, int t, int v)
{
    struct evr_frame_hdr h = {
        .type = (uint16_t)t, .cluster = CL, .view = X(t, v, 0),
        .sender = v == 2 ? EVR_SENDER_CLIENT : (uint32_t)t % 5};
    int rc = -1;
    size_t start = evr_frame_begin(b, &h, &rc);
    OK(rc);
    return start;
}

/* One-off frames: open_frame, append the body, close_frame decodes. */
static struct evr_buf *open_frame(int t)
{
    evr_buf_reset(&FB);
    FS = begin(&FB, t, 0);
    return &FB;
}

static int close_frame(void)
{
    OK(evr_frame_end(&FB, FS));
    return dec(FB.data, FB.len, CL, BODY_MAX);
}

/* COMMIT's tokens and DELTA's responses: written (m NULL) or checked. */
static void tokens(struct evr_buf *b, const struct evr_msg *m, uint64_t op,
                   uint32_t n)
{
    struct evr_msg_iter it;
    struct evr_msg_token tk;
    uint32_t i = 0;
    if (m == NULL) {
        for (; i < n; i++) {
            U64(op + i); HH(op ^ i); U32(i + 7);
        }
        return;
    }
    evr_msg_tokens_iter(m, &it);
    for (; evr_msg_tokens_next(&it, &tk); i++) {
        assert_true(tk.op == op + i && HEQ(tk.token, op ^ i));
        assert_int_equal(tk.holders, i + 7);
    }
    assert_int_equal(i, n);
}

static void responses(struct evr_buf *b, const struct evr_msg_responses *rs,
                      uint32_t n)
{
    struct evr_msg_iter it;
    int32_t st;
    const uint8_t *d;
    uint32_t i = 0, len;
    if (rs == NULL) {
        for (U32(n); i < n; i++) {
            U32((int32_t)i - 1); BYTES(PAY + i, i * 2);
        }
        return;
    }
    assert_int_equal(rs->n, n);
    evr_msg_resp_iter(rs, &it);
    for (; evr_msg_resp_next(&it, &st, &d, &len); i++) {
        assert_int_equal(st, (int32_t)i - 1);
        assert_true(same_bytes(d, len, PAY + i, i * 2));
    }
    assert_true(i == n && it.r.ok && it.r.pos == rs->len);
}

/* The body of type t, variant v, written to b (m NULL) or checked field for
 * field against m (b NULL). Variant 0 has empty batches, logs, token lists
 * and zero-length payloads; variants 1 and 2 have NV[v] items. */
#define F(put, x, fld) (m ? assert_true(m->u.fld == (x)) : put(x))
#define FH(x, fld) (m ? assert_true(HEQ(m->u.fld, x)) : HH(x))
#define FD(p, n, s)                                                          \
    (m ? assert_true(same_bytes(m->u.s.data, m->u.s.len, p, n)) : BYTES(p, n))
#define FBATCH(seed, n, fld)                                                 \
    (m ? check_batch(&m->u.fld, seed, n) : put_batch(b, seed, n))
#define FLOG(first, n, fld)                                                  \
    (m ? check_log(&m->u.fld, first, n) : put_log(b, NULL, first, n))

static void body(struct evr_buf *b, const struct evr_msg *m, int t, int v)
{
    uint32_t n = NV[v];
    uint64_t x1 = X(t, v, 1), x2 = X(t, v, 2), x3 = X(t, v, 3);
    switch (t) {
    case EVR_MSG_REQUEST:
        F(U64, x1, request.client); F(U64, x2, request.request_no);
        FD(PAY, n * 5, request);
        break;
    case EVR_MSG_REPLY:
        F(U64, x1, reply.client); F(U64, x2, reply.request_no);
        F(U64, x3, reply.op); F(U32, -7 - v, reply.status);
        FD(PAY + 1, n * 5, reply);
        break;
    case EVR_MSG_PREPARE:
        F(U64, x1, prepare.op); F(U32, (uint32_t)x2, prepare.attempt);
        F(U8, v & 1, prepare.sequential); F(U64, x3, prepare.commit);
        FBATCH(x1, n, prepare.batch);
        break;
    case EVR_MSG_PREPARE_OK:
        F(U64, x1, prepare_ok.op); F(U32, (uint32_t)x2, prepare_ok.attempt);
        FH(x3, prepare_ok.token);
        break;
    case EVR_MSG_COMMIT:
        F(U64, x1, commit.commit); F(U32, n, commit.count);
        tokens(b, m, x2, n);
        break;
    case EVR_MSG_ROLLBACK:
        F(U64, x1, rollback.op); F(U32, (uint32_t)x2, rollback.attempt);
        break;
    case EVR_MSG_GET_DELTA:
        F(U64, x1, get_delta.op); FH(x2, get_delta.token);
        break;
    case EVR_MSG_DELTA:
        F(U64, x1, delta.op); FH(x2, delta.token); F(U8, v != 0, delta.ok);
        if (v != 0) {
            responses(b, m ? &m->u.delta.resp : NULL, n);
            FD(PAY, v == 1 ? 9 : 0, delta);
        }
        break;
    case EVR_MSG_DO_VIEW_CHANGE:
        F(U64, x1, do_view_change.last_normal_view);
        F(U64, x2, do_view_change.op); F(U64, x3, do_view_change.commit);
        FLOG(x3, n, do_view_change.log);
        break;
    case EVR_MSG_START_VIEW:
        F(U64, x1, start_view.op); F(U64, x2, start_view.commit);
        FLOG(x1, n, start_view.log);
        break;
    case EVR_MSG_RECOVERY:
        F(U64, x1, recovery.nonce);
        break;
    case EVR_MSG_RECOVERY_RESPONSE:
        F(U64, x1, recovery_response.nonce);
        F(U8, v != 0, recovery_response.has_log);
        if (v != 0) {
            F(U64, x2, recovery_response.op);
            F(U64, x3, recovery_response.commit);
            FLOG(x2, n, recovery_response.log);
        }
        break;
    case EVR_MSG_GET_STATE:
        F(U64, x1, get_state.op_from);
        break;
    case EVR_MSG_NEW_STATE:
        F(U8, v & 1, new_state.ok); F(U64, x1, new_state.op);
        F(U64, x2, new_state.commit); FLOG(x1, n, new_state.log);
        break;
    case EVR_MSG_GET_SNAPSHOT:
        F(U64, x1, get_snapshot.snap_op); F(U64, x2, get_snapshot.offset);
        break;
    case EVR_MSG_SNAPSHOT_CHUNK: /* offset + len == total exactly */
        F(U64, x1, snapshot_chunk.snap_op); FH(x1, snapshot_chunk.token);
        FH(x2, snapshot_chunk.root); FH(x3, snapshot_chunk.resp_digest);
        FH(x1 ^ x2, snapshot_chunk.hash);
        F(U64, 100 + n * 5, snapshot_chunk.total);
        F(U64, 100, snapshot_chunk.offset);
        FD(PAY, n * 5, snapshot_chunk);
        break;
    case EVR_MSG_STATUS:
        break;
    case EVR_MSG_STATUS_REPLY:
        F(U32, (uint32_t)x1, status_reply.replica);
        F(U32, (uint32_t)x2, status_reply.replicas);
        F(U8, v & 1, status_reply.primary); F(U8, v, status_reply.status);
        F(U8, v + 1, status_reply.mode); F(U64, x1, status_reply.view);
        F(U64, x2, status_reply.op); F(U64, x3, status_reply.commit);
        F(U64, x1 ^ x3, status_reply.applied);
        FH(x1, status_reply.token); FH(x2, status_reply.root);
        F(U32, n, status_reply.count);
        for (uint32_t i = 0; i < n; i++) {
            if (m != NULL) {
                assert_true(evr_load_u64(m->u.status_reply.counters + 8 * i) ==
                            x3 + i);
            } else {
                U64(x3 + i);
            }
        }
        break;
    }
}

/* Appends the frame of type t, variant v to b. */
static size_t build(struct evr_buf *b, int t, int v)
{
    size_t start = begin(b, t, v);
    body(b, NULL, t, v);
    OK(evr_frame_end(b, start));
    return start;
}

/* ------------------------------------------------------------ tests */

/* Every type, 3 variants each, back to back in one buffer. */
static void test_round_trip(void **state)
{
    (void)state;
    struct evr_buf b;
    size_t starts[3 * EVR_MSG_TYPE_END + 1], k = 0;
    evr_buf_init(&b, 1 << 20);
    for (int t = 1; t < EVR_MSG_TYPE_END; t++) {
        for (int v = 0; v < 3; v++) {
            starts[k++] = build(&b, t, v);
        }
    }
    starts[k] = b.len;
    k = 0;
    for (int t = 1; t < EVR_MSG_TYPE_END; t++) {
        for (int v = 0; v < 3; v++, k++) {
            size_t len = starts[k + 1] - starts[k];
            uint8_t *f = malloc(len); /* exact size: ASan sees over-reads */
            memcpy(f, b.data + starts[k], len);
            struct evr_msg m;
            OK(evr_msg_decode(f, len, CL, BODY_MAX, &m, NULL));
            assert_true(m.h.type == t && m.h.cluster == CL);
            assert_true(m.h.view == X(t, v, 0) && m.h.body_size == len - HDR);
            assert_int_equal(m.h.sender,
                             v == 2 ? EVR_SENDER_CLIENT : (uint32_t)t % 5);
            body(NULL, &m, t, v);
            walk(&m);
            free(f);
        }
    }
    evr_buf_free(&b);
}

/* Every damage to one valid frame is refused. */
static void damage(int t, int v)
{
    struct evr_buf b;
    evr_buf_init(&b, 1 << 20);
    build(&b, t, v);
    size_t len = b.len, body = len - HDR;
    uint8_t *f = malloc(len + 1);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(f, b.data, len);
        f[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(dec(f, len, CL, BODY_MAX), 0);
    }
    for (size_t l = len; l-- > 0;) {
        assert_int_not_equal(dec(b.data, l, CL, BODY_MAX), 0);
    }
    memcpy(f, b.data, len);
    f[len] = 0;
    assert_int_not_equal(dec(f, len + 1, CL, BODY_MAX), 0);
    assert_int_equal(dec(b.data, len, CL ^ 1, BODY_MAX), EVR_ECORRUPT);
    assert_int_equal(dec(b.data, len, CL ^ (1ull << 63), BODY_MAX),
                     EVR_ECORRUPT);
    assert_int_equal(dec(b.data, len, CL, body), 0);
    if (body > 0) {
        assert_int_equal(dec(b.data, len, CL, body - 1), EVR_ELIMIT);
        assert_int_equal(dec(b.data, len, CL, 0), EVR_ELIMIT);
    }
    reseal(f, len); /* reseal is faithful: nothing edited, nothing changed */
    assert_memory_equal(f, b.data, len);
    /* resealed header edits: unknown types, magic, version */
    const uint16_t types[] = {0, EVR_MSG_TYPE_END, 0xffff};
    for (size_t i = 0; i < 3 + 6; i++) {
        memcpy(f, b.data, len);
        if (i < 3) {
            evr_store_u32(f + 4, EVR_PROTOCOL_VERSION | (uint32_t)types[i] << 16);
        } else {
            f[i - 3] ^= 0x10; /* bytes 0..5 */
        }
        reseal(f, len);
        assert_int_equal(dec(f, len, CL, BODY_MAX), EVR_ECORRUPT);
    }
    free(f);
    evr_buf_free(&b);
}

static void test_damage(void **state)
{
    (void)state;
    damage(EVR_MSG_PREPARE, 1);        /* a 3-request batch */
    damage(EVR_MSG_DO_VIEW_CHANGE, 2); /* a 2-entry log */
    damage(EVR_MSG_DELTA, 1);
    damage(EVR_MSG_COMMIT, 1);
    damage(EVR_MSG_SNAPSHOT_CHUNK, 2);
    damage(EVR_MSG_RECOVERY, 0);
    damage(EVR_MSG_START_VIEW_CHANGE, 0); /* empty body */
}

/* build(t, v) with n bytes at body offset off, which must hold was, set
 * to val (little-endian), and extra zero bytes appended; resealed, decoded. */
struct edit {
    int t, v;
    size_t off;
    int n;
    uint64_t was, val;
    int rc;
};

static int edit(const struct edit *e, size_t extra)
{
    evr_buf_reset(&FB);
    build(&FB, e->t, e->v);
    size_t len = FB.len + extra;
    uint8_t *f = calloc(1, len);
    memcpy(f, FB.data, FB.len);
    uint64_t was = 0;
    for (int i = 0; i < e->n; i++) {
        uint8_t *p = f + HDR + e->off + i;
        was |= (uint64_t)*p << (8 * i);
        *p = (uint8_t)(e->val >> (8 * i));
    }
    assert_true(was == e->was);
    reseal(f, len);
    int rc = dec(f, len, CL, BODY_MAX);
    free(f);
    return rc;
}

/* Body rules, with the checksums right (frames resealed or built so). */
static void test_body_rules(void **state)
{
    (void)state;
    enum { P = EVR_MSG_PREPARE, DVC = EVR_MSG_DO_VIEW_CHANGE, E = EVR_ECORRUPT,
           DELTA = EVR_MSG_DELTA, RR = EVR_MSG_RECOVERY_RESPONSE };
    const struct edit edits[] = {
        /* PREPARE v1: the batch count (3) at 37, the flag at 12 */
        {P, 1, 37, 4, 3, 4, E}, {P, 1, 37, 4, 3, 2, E},
        {P, 1, 37, 4, 3, UINT32_MAX, E}, {P, 1, 37, 4, 3, 0, E},
        {P, 1, 12, 1, 1, 0, 0}, {P, 1, 12, 1, 1, 2, E}, {P, 1, 12, 1, 1, 255, E},
        /* other flags: entry committed, DELTA ok, has_log, NEW_STATE ok */
        {DVC, 2, 44, 1, 1, 2, E}, {DVC, 2, 44, 1, 1, 0, 0},
        {DELTA, 1, 24, 1, 1, 2, E}, {DELTA, 0, 24, 1, 0, 1, E},
        {RR, 1, 8, 1, 1, 2, E}, {RR, 0, 8, 1, 0, 1, E},
        {EVR_MSG_NEW_STATE, 1, 0, 1, 1, 2, E},
        /* an entry op of 0; counts off by one: tokens, log entries */
        {DVC, 1, 28, 8, X(DVC, 1, 3), 0, E},
        {EVR_MSG_COMMIT, 1, 8, 4, 3, 4, E}, {EVR_MSG_COMMIT, 1, 8, 4, 3, 2, E},
        {DVC, 0, 24, 4, 0, 1, E}, {DVC, 2, 24, 4, 2, 1, E},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        assert_int_equal(edit(&edits[i], 0), edits[i].rc);
    }
    /* trailing bytes after every valid body */
    for (int t = 1; t < EVR_MSG_TYPE_END; t++) {
        for (int v = 0; v < 3; v++) {
            const struct edit none = {t, v, 0, 0, 0, 0, 0};
            assert_int_equal(edit(&none, 0), 0);
            assert_int_equal(edit(&none, 1), E);
            assert_int_equal(edit(&none, 8), E);
        }
    }
    /* the limits, every byte present: at the limit ok, one over refused */
    uint8_t *big = calloc(1, EVR_REQUEST_BYTES_MAX + 1);
    uint64_t *ops = malloc((EVR_MSG_ENTRIES_MAX + 1) * sizeof *ops);
    for (uint32_t i = 0; i <= EVR_MSG_ENTRIES_MAX; i++) {
        ops[i] = 1 + i;
    }
    for (uint32_t over = 0; over < 2; over++) {
        struct evr_buf *b = open_frame(EVR_MSG_REQUEST);
        U64(1); U64(2); BYTES(big, EVR_REQUEST_BYTES_MAX + over);
        assert_int_equal(close_frame(), over ? E : 0);
        b = open_frame(P);
        U64(1); U32(2); U8(0); U64(3);
        OK(evr_msg_put_batch_head(b, 4, 5, 1));
        OK(evr_msg_put_req(b, 6, 7, big, EVR_REQUEST_BYTES_MAX + over));
        assert_int_equal(close_frame(), over ? E : 0);
        b = open_frame(EVR_MSG_COMMIT);
        U64(1); U32(EVR_MSG_TOKENS_MAX + over);
        for (uint32_t i = 0; i < EVR_MSG_TOKENS_MAX + over; i++) {
            U64(i); HH(i); U32(i);
        }
        assert_int_equal(close_frame(), over ? E : 0);
        b = open_frame(EVR_MSG_START_VIEW);
        U64(1); U64(2); put_log(b, ops, 0, EVR_MSG_ENTRIES_MAX + over);
        assert_int_equal(close_frame(), over ? E : 0);
    }
    free(ops);
    free(big);
    /* log ops: consecutive, ascending, never 0 */
    const struct {
        uint64_t ops[3];
        uint32_t n;
        int rc;
    } logs[] = {{{5, 6, 7}, 3, 0},  {{5, 7}, 2, E}, {{6, 5}, 2, E},
                {{5, 5}, 2, E},     {{0}, 1, E},    {{0, 1}, 2, E},
                {{UINT64_MAX}, 1, 0}, {{UINT64_MAX, 0}, 2, E}};
    for (size_t i = 0; i < sizeof logs / sizeof logs[0]; i++) {
        struct evr_buf *b = open_frame(DVC);
        U64(1); U64(2); U64(3); put_log(b, logs[i].ops, 0, logs[i].n);
        assert_int_equal(close_frame(), logs[i].rc);
    }
    /* SNAPSHOT_CHUNK: offset + len <= total, without overflow */
    const struct {
        uint64_t total, offset;
        uint32_t len;
        int rc;
    } chunks[] = {{10, 5, 5, 0},      {10, 10, 0, 0},   {0, 0, 0, 0},
                  {10, 6, 5, E},      {10, 11, 0, E},   {0, 0, 1, E},
                  {UINT64_MAX, UINT64_MAX - 5, 5, 0},
                  {UINT64_MAX, UINT64_MAX - 2, 5, E},
                  {3, UINT64_MAX - 1, 5, E}};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct evr_buf *b = open_frame(EVR_MSG_SNAPSHOT_CHUNK);
        U64(1); HH(2); HH(3); HH(4); HH(5);
        U64(chunks[i].total); U64(chunks[i].offset); BYTES(PAY, chunks[i].len);
        assert_int_equal(close_frame(), chunks[i].rc);
    }
}

static void test_fuzz_random(void **state)
{
    (void)state;
    struct evr_rng r;
    uint8_t f[300];
    int accepted = 0;
    evr_rng_seed(&r, 0xc0dec);
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)evr_rng_below(&r, 301);
        for (size_t j = 0; j < len; j++) {
            f[j] = (uint8_t)evr_rng_next(&r);
        }
        /* odd rounds: a plausible sealed header, so random bodies get parsed */
        if (i % 2 == 1 && len >= HDR) {
            evr_store_u32(f, EVR_FRAME_MAGIC);
            evr_store_u32(f + 4, EVR_PROTOCOL_VERSION |
                          (uint32_t)(1 + evr_rng_below(&r, 17)) << 16);
            evr_store_u64(f + 8, CL);
            reseal(f, len);
        }
        accepted += dec(f, len, CL, BODY_MAX) == 0;
    }
    print_message("random: %d of 20000 accepted\n", accepted);
}

static void test_fuzz_mutate(void **state)
{
    (void)state;
    static const uint8_t small[] = {0, 1, 2, 3, 0xff};
    struct evr_rng r;
    int accepted = 0;
    evr_rng_seed(&r, 0x5eed);
    for (int i = 0; i < 20000; i++) {
        evr_buf_reset(&FB);
        build(&FB, 1 + (int)evr_rng_below(&r, 17), (int)evr_rng_below(&r, 3));
        size_t len = FB.len, cut = 0, add = 0;
        switch (evr_rng_below(&r, 8)) { /* now and then resize the body */
        case 0:
            cut = (size_t)evr_rng_below(&r, len - HDR + 1);
            break;
        case 1:
            add = 1 + (size_t)evr_rng_below(&r, 8);
            break;
        }
        len = len - cut + add;
        uint8_t *f = calloc(1, len);
        memcpy(f, FB.data, len - add);
        for (int j = (int)evr_rng_below(&r, 4); j >= 0; j--) {
            /* mostly the body; sometimes the header (type confusion) */
            size_t lo = evr_rng_below(&r, 4) == 0 ? 0 : HDR;
            if (len > lo) {
                size_t at = lo + (size_t)evr_rng_below(&r, len - lo);
                f[at] = evr_rng_below(&r, 2) ? (uint8_t)evr_rng_next(&r)
                                             : small[evr_rng_below(&r, 5)];
            }
        }
        reseal(f, len);
        accepted += dec(f, len, CL, BODY_MAX) == 0;
        free(f);
    }
    print_message("mutations: %d of 20000 accepted\n", accepted);
    assert_true(accepted > 1000); /* the body parser really was exercised */
}

/* A standalone batch (resp false) or responses region (resp true) */
static int parse(const uint8_t *p, size_t len, bool resp, uint32_t n)
{
    uint8_t *c = malloc(len ? len : 1);
    memcpy(c, p, len);
    struct evr_msg_batch bt;
    struct evr_msg_responses rs;
    struct evr_err err = {0};
    int rc = resp ? evr_msg_responses_parse(c, len, &rs, &err)
                  : evr_msg_batch_parse(c, len, &bt, &err);
    assert_true(rc == 0 || err.code == EVR_ECORRUPT);
    if (rc == 0 && resp) {
        responses(NULL, &rs, n);
    } else if (rc == 0) {
        check_batch(&bt, 77 + n, n);
        assert_true(bt.bytes_len == len && bt.reqs_len == len - 20);
    }
    free(c);
    return rc;
}

static void test_parse_alone(void **state)
{
    (void)state;
    struct evr_buf buf, *b = &buf;
    evr_buf_init(b, 1 << 16);
    for (uint32_t n = 0; n < 4; n++) {
        for (int resp = 0; resp < 2; resp++) {
            evr_buf_reset(b);
            if (resp) {
                responses(b, NULL, n);
            } else {
                put_batch(b, 77 + n, n);
            }
            OK(parse(b->data, b->len, resp, n));
            for (size_t l = b->len; l-- > 0;) {
                assert_int_equal(parse(b->data, l, resp, n), EVR_ECORRUPT);
            }
            U8(0);
            assert_int_equal(parse(b->data, b->len, resp, n), EVR_ECORRUPT);
        }
    }
    evr_buf_free(b);
}

static void test_type_name(void **state)
{
    (void)state;
    assert_string_equal(evr_msg_type_name(EVR_MSG_PREPARE), "PREPARE");
    assert_string_equal(evr_msg_type_name(EVR_MSG_SNAPSHOT_CHUNK),
                        "SNAPSHOT_CHUNK");
    for (uint32_t t = 1; t < EVR_MSG_TYPE_END; t++) {
        assert_string_not_equal(evr_msg_type_name(t), "?");
    }
    assert_string_equal(evr_msg_type_name(0), "?");
    assert_string_equal(evr_msg_type_name(EVR_MSG_TYPE_END), "?");
    assert_string_equal(evr_msg_type_name(0x10003), "?");
}

int main(void)
{
    for (size_t i = 0; i < sizeof PAY; i++) {
        PAY[i] = (uint8_t)(i * 37 + 11);
    }
    evr_buf_init(&FB, BODY_MAX);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_damage),
        cmocka_unit_test(test_body_rules),
        cmocka_unit_test(test_fuzz_random),
        cmocka_unit_test(test_fuzz_mutate),
        cmocka_unit_test(test_parse_alone),
        cmocka_unit_test(test_type_name),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    evr_buf_free(&FB);
    return rc;
}
