/*
 * The simulator (sim.h). Time is in whole milliseconds. Each millisecond:
 * deliver the frames due, finish the executions due, tick every replica,
 * let clients send and retry, and inject faults. Every delivery, finished
 * execution and tick is one step, and the checker runs after each:
 *
 *   - every op a replica applied holds the same batch and the same
 *     committed token everywhere, and that token is the token of the
 *     sequential reference execution of the committed order;
 *   - every replica's applied state root equals the reference's root at its
 *     applied op (the committed token's state);
 *   - no host ever sees a rollback of an applied op or an out-of-order call
 *     (model.c records any as a violation), and no replica stops;
 *   - every reply a client gets equals the reference's reply for that
 *     request in the committed order;
 *   - after the faults heal, every client finishes all its requests and all
 *     replicas converge (liveness), within a bound.
 */
#include "tests/sim/sim.h"

#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/rng.h"
#include "tests/sim/model.h"

#define N_MAX 7
#define CLIENT_BASE 100u

/* ------------------------------------------------------------ network */

struct frame {
    uint64_t due, seq;
    uint32_t from, to; /* replica index, or CLIENT_BASE + client index */
    uint8_t *p;
    size_t len;
};

struct heap {
    struct frame *a;
    size_t n, cap;
};

static bool before(const struct frame *x, const struct frame *y)
{
    return x->due != y->due ? x->due < y->due : x->seq < y->seq;
}

static void heap_push(struct heap *h, struct frame f)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        h->a = realloc(h->a, h->cap * sizeof *h->a);
        assert(h->a != NULL);
    }
    size_t i = h->n++;
    h->a[i] = f;
    while (i > 0 && before(&h->a[i], &h->a[(i - 1) / 2])) {
        struct frame t = h->a[i];
        h->a[i] = h->a[(i - 1) / 2];
        h->a[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static struct frame heap_pop(struct heap *h)
{
    struct frame top = h->a[0];
    h->a[0] = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && before(&h->a[l], &h->a[m])) {
            m = l;
        }
        if (r < h->n && before(&h->a[r], &h->a[m])) {
            m = r;
        }
        if (m == i) {
            break;
        }
        struct frame t = h->a[i];
        h->a[i] = h->a[m];
        h->a[m] = t;
        i = m;
    }
    return top;
}

/* ------------------------------------------------------------ state */

struct node {
    struct sim *s;
    uint32_t id;
    struct evr_vr *vr;
    struct model model;
    bool up;
    uint64_t restart_at;
    bool exec_scheduled;
    uint64_t exec_due;
    uint64_t checked; /* applied ops checked */
    bool draining;    /* told to stop: stops when drained or at drain_end */
    uint64_t drain_end;
    bool resume;      /* stopped quiet: restarts in resume_view */
    uint64_t resume_view;
    struct evr_vr_stats gone; /* stats of replica instances before crashes */
};

struct client {
    uint64_t id;
    uint64_t next_no, done, total;
    bool waiting;
    uint64_t sent_ms, wake_ms;
    uint32_t target;
    uint8_t req[MODEL_REQ_BYTES];
};

struct ref_reply {
    bool have;
    int32_t status;
    int64_t value;
};

struct sim {
    struct sim_opts o;
    struct evr_rng rng;
    uint64_t now;
    uint32_t n, f;
    enum evr_vr_mode mode;
    struct evr_vr_config cfg;
    struct node node[N_MAX];
    struct heap net;
    uint64_t seq;

    /* faults */
    double drop_rate, dup_rate, corrupt_rate;
    uint32_t delay_min, delay_max;
    bool partitions, crashes, stops;
    bool cluster_stopping; /* a whole-cluster stop drains: no new faults */
    bool blocked[N_MAX][N_MAX];
    uint64_t partition_end, next_partition, next_crash, next_stop;
    uint64_t heal_at, end_at;
    bool healed;

    /* clients */
    struct client *cl;
    uint32_t nclients;
    uint32_t retry_ms, think_max_ms;

    /* the reference: sequential execution of the committed order */
    struct model_state ref;
    uint64_t ref_next;
    struct {
        evr_h128 token, root, batch;
    } *ref_op;
    uint64_t ref_cap;
    struct ref_reply *ref_reply; /* [client][request_no] */
    struct evr_vr_response *resp;
    int64_t *values;
    struct evr_vr_req *reqs;
    uint32_t resp_cap;

    struct sim_totals t;
    bool stop;
    bool bench; /* no checker: measure the protocol alone */
};

static void violation(struct sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void violation(struct sim *s, const char *fmt, ...)
{
    s->t.violations++;
    s->stop = true;
    if (s->o.verbose < 1) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(s->o.log, "sim: SEED=%llu violation at %llu ms: ",
            (unsigned long long)s->o.seed, (unsigned long long)s->now);
    vfprintf(s->o.log, fmt, ap);
    fprintf(s->o.log, "\n");
    va_end(ap);
}

/* ------------------------------------------------------------ io */

static void net_send(struct sim *s, uint32_t from, uint32_t to,
                     const void *p, size_t len)
{
    bool replicas = from < s->n && to < s->n;
    if ((replicas && s->blocked[from][to]) ||
        evr_rng_double(&s->rng) < s->drop_rate) {
        s->t.drops++;
        return;
    }
    int copies = evr_rng_double(&s->rng) < s->dup_rate ? 2 : 1;
    for (int c = 0; c < copies; c++) {
        struct frame f = {
            .due = s->now + (uint64_t)evr_rng_range(&s->rng, s->delay_min,
                                                    s->delay_max),
            .seq = s->seq++,
            .from = from,
            .to = to,
            .p = malloc(len),
            .len = len,
        };
        assert(f.p != NULL);
        memcpy(f.p, p, len);
        if (evr_rng_double(&s->rng) < s->corrupt_rate) {
            f.p[evr_rng_below(&s->rng, len)] ^=
                (uint8_t)(1u << evr_rng_below(&s->rng, 8));
            s->t.corruptions++;
        }
        heap_push(&s->net, f);
    }
}

static void io_send(void *data, uint32_t to, const void *frame, size_t len)
{
    struct node *nd = data;
    net_send(nd->s, nd->id, to, frame, len);
}

static void io_reply(void *data, uint64_t client, const void *frame,
                     size_t len)
{
    struct node *nd = data;
    if (client >= 1 && client <= nd->s->nclients) {
        net_send(nd->s, nd->id, CLIENT_BASE + (uint32_t)(client - 1), frame,
                 len);
    }
}

static int64_t io_time_us(void *data)
{
    struct node *nd = data;
    return 1700000000000000LL + (int64_t)nd->s->now * 1000;
}

static uint64_t io_random(void *data)
{
    struct node *nd = data;
    return evr_rng_next(&nd->s->rng);
}

static void io_log(void *data, int level, const char *msg)
{
    struct node *nd = data;
    if (nd->s->o.verbose >= 2 && level <= 2) {
        fprintf(nd->s->o.log, "%6llu ms  %s\n",
                (unsigned long long)nd->s->now, msg);
    }
}

static void start_node(struct sim *s, struct node *nd, bool recovering)
{
    struct evr_vr_io io = {nd, io_send, io_reply, io_time_us, io_random,
                           io_log};
    struct evr_vr_host host = model_host(&nd->model);
    struct evr_vr_config cfg = s->cfg;
    cfg.self = nd->id;
    struct evr_vr_applied a = model_applied(&nd->model);
    if (nd->resume) {
        a.resume = true;
        a.view = nd->resume_view;
        recovering = false;
        nd->resume = false;
        s->t.resumes++;
    }
    struct evr_err err;
    if (evr_vr_new(&cfg, &io, &host, &a, recovering, s->now, &nd->vr,
                   &err) != 0) {
        violation(s, "replica %u does not start: %s", nd->id, err.msg);
        return;
    }
    nd->up = true;
    nd->exec_scheduled = false;
}

static uint32_t down_count(const struct sim *s);

static void add_stats(struct evr_vr_stats *to, const struct evr_vr_stats *x)
{
    to->rollbacks += x->rollbacks;
    to->repairs += x->repairs;
    to->state_transfers += x->state_transfers;
    to->requests += x->requests;
}

static void crash_node(struct sim *s, struct node *nd)
{
    struct evr_vr_stats st;
    evr_vr_stats(nd->vr, &st);
    add_stats(&nd->gone, &st);
    evr_vr_free(nd->vr);
    nd->vr = NULL;
    nd->up = false;
    model_crash(&nd->model);
    nd->draining = false;
    if (s->o.verbose >= 2) {
        fprintf(s->o.log, "%6llu ms  replica %u %s\n",
                (unsigned long long)s->now, nd->id,
                nd->resume ? "stops quiet" : "stops or crashes");
    }
}

/* A stop: drained, the replica keeps what it promised (it resumes);
 * otherwise its end is a crash's. The host keeps its applied state. */
static void stop_node(struct sim *s, struct node *nd)
{
    struct evr_vr_info info;
    evr_vr_info(nd->vr, &info);
    nd->resume = info.drained;
    nd->resume_view = info.view;
    s->t.stops++;
    crash_node(s, nd);
    nd->restart_at = s->now + (s->healed ? 0 : evr_rng_range(&s->rng, 20,
                                                             700));
}

static void drain_node(struct sim *s, struct node *nd)
{
    if (nd->up && !nd->draining) {
        evr_vr_drain(nd->vr);
        nd->draining = true;
        nd->drain_end = s->now + 500;
    }
}

/*
 * Stops come one replica at a time (at most f down, as for crashes) or to
 * the whole cluster at once, which can only come back through resumes: so
 * that one is the operator's stop of a serving cluster — every replica up,
 * no partition — and no partition or crash starts while it drains (drops,
 * duplicates and delays go on). A cluster stopped while it cannot commit
 * (more than f replicas stop unquiet) stays down: that is the limit of
 * resuming without a durable log (docs/REPLICATION.md).
 */
static void stops_tick(struct sim *s)
{
    uint32_t draining = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct node *nd = &s->node[i];
        struct evr_vr_info info;
        if (nd->up && nd->draining) {
            evr_vr_info(nd->vr, &info);
            if (info.drained || s->now >= nd->drain_end) {
                stop_node(s, nd);
            }
        }
        draining += nd->up && nd->draining ? 1 : 0;
    }
    s->cluster_stopping = s->cluster_stopping && draining > 0;
    if (!s->stops || s->now < s->next_stop) {
        return;
    }
    s->next_stop = s->now + (uint64_t)evr_rng_range(&s->rng, 300, 1500);
    if (evr_rng_below(&s->rng, 3) == 0) {
        if (down_count(s) > 0 || s->now < s->partition_end) {
            return;
        }
        for (uint32_t i = 0; i < s->n; i++) {
            drain_node(s, &s->node[i]);
        }
        s->cluster_stopping = true;
        s->t.cluster_stops++;
    } else if (down_count(s) < s->f) {
        drain_node(s, &s->node[evr_rng_below(&s->rng, s->n)]);
    }
}

/* ------------------------------------------------------------ reference */

static int grow_scratch(struct sim *s, uint32_t n)
{
    if (n <= s->resp_cap) {
        return 0;
    }
    s->resp = realloc(s->resp, n * sizeof *s->resp);
    s->values = realloc(s->values, n * sizeof *s->values);
    s->reqs = realloc(s->reqs, n * sizeof *s->reqs);
    s->resp_cap = n;
    return s->resp && s->values && s->reqs ? 0 : EVR_ENOMEM;
}

static struct ref_reply *ref_reply_at(struct sim *s, uint64_t client,
                                      uint64_t no)
{
    uint64_t per = s->cl[0].total + 1;
    if (client < 1 || client > s->nclients || no > per - 1) {
        return NULL;
    }
    return &s->ref_reply[(client - 1) * per + no];
}

/* Runs committed op ref_next (batch bytes b) on the reference. */
static void ref_run(struct sim *s, const uint8_t *bytes, size_t len)
{
    struct evr_msg_batch mb;
    if (evr_msg_batch_parse(bytes, len, &mb, NULL) != 0 ||
        grow_scratch(s, mb.n + 1) != 0) {
        violation(s, "committed op %llu has a bad batch",
                  (unsigned long long)s->ref_next);
        return;
    }
    struct evr_msg_iter it;
    struct evr_msg_req q;
    evr_msg_reqs_iter(&mb, &it);
    for (uint32_t i = 0; evr_msg_reqs_next(&it, &q); i++) {
        s->reqs[i] = (struct evr_vr_req){q.client, q.request_no, q.len, q.data};
    }
    struct evr_vr_batch b = {s->ref_next, mb.timestamp_us, mb.seed, mb.n,
                             s->reqs};
    evr_h128 root = model_run_batch(s->nclients, &s->ref, &b, true, NULL,
                                    s->resp, s->values);
    struct evr_hasher *h = evr_hasher_new(0);
    for (uint32_t i = 0; i < mb.n; i++) {
        evr_response_digest_add(h, s->resp[i].status, s->resp[i].data,
                                s->resp[i].len);
        struct ref_reply *rr = ref_reply_at(s, s->reqs[i].client,
                                            s->reqs[i].request_no);
        if (rr != NULL && !rr->have) {
            *rr = (struct ref_reply){true, s->resp[i].status, s->values[i]};
        }
    }
    if (s->ref_next >= s->ref_cap) {
        s->ref_cap = s->ref_cap ? 2 * s->ref_cap : 1024;
        s->ref_op = realloc(s->ref_op, s->ref_cap * sizeof *s->ref_op);
        assert(s->ref_op != NULL);
    }
    s->ref_op[s->ref_next].root = root;
    s->ref_op[s->ref_next].token =
        evr_token(s->ref_next, root, evr_hasher_digest(h));
    s->ref_op[s->ref_next].batch = evr_hash128(bytes, len, 0);
    evr_hasher_free(h);
    s->ref_next++;
}

/* Extends the reference with ops some replica holds as committed. */
static void ref_extend(struct sim *s)
{
    for (bool more = true; more && !s->stop;) {
        more = false;
        for (uint32_t i = 0; i < s->n && !s->stop; i++) {
            const uint8_t *b;
            size_t len;
            bool committed;
            evr_h128 t;
            struct node *nd = &s->node[i];
            if (nd->up && evr_vr_entry(nd->vr, s->ref_next, &b, &len,
                                       &committed, &t) && committed) {
                struct evr_vr_info info;
                evr_vr_info(nd->vr, &info);
                if (s->ref_next <= info.commit) {
                    ref_run(s, b, len);
                    more = true;
                }
            }
        }
    }
}

/* A replica applies op: the first to do so extends the reference. */
static void on_commit(void *data, uint64_t op)
{
    struct node *nd = data;
    struct sim *s = nd->s;
    const uint8_t *b;
    size_t len;
    bool committed;
    evr_h128 t;
    if (op == s->ref_next && !s->bench &&
        evr_vr_entry(nd->vr, op, &b, &len, &committed, &t)) {
        ref_run(s, b, len);
    }
}

/* ------------------------------------------------------------ checker */

static void check_node(struct sim *s, struct node *nd)
{
    struct evr_err err;
    if (evr_vr_failed(nd->vr, &err) != 0) {
        violation(s, "replica %u stopped: %s", nd->id, err.msg);
        return;
    }
    if (nd->model.violation[0] != '\0') {
        violation(s, "%s", nd->model.violation);
        return;
    }
    struct evr_vr_info info;
    evr_vr_info(nd->vr, &info);
    if (info.applied == nd->checked) {
        return;
    }
    if (info.applied < nd->checked) {
        violation(s, "replica %u applied went back from %llu to %llu",
                  nd->id, (unsigned long long)nd->checked,
                  (unsigned long long)info.applied);
        return;
    }
    if (info.applied >= s->ref_next) {
        violation(s, "replica %u applied op %llu that no log holds as "
                  "committed", nd->id, (unsigned long long)info.applied);
        return;
    }
    for (uint64_t op = nd->checked + 1; op <= info.applied; op++) {
        const uint8_t *b;
        size_t len;
        bool committed;
        evr_h128 t;
        if (!evr_vr_entry(nd->vr, op, &b, &len, &committed, &t)) {
            continue; /* came with a snapshot */
        }
        if (!evr_h128_eq(evr_hash128(b, len, 0), s->ref_op[op].batch)) {
            violation(s, "replica %u applied another batch at op %llu",
                      nd->id, (unsigned long long)op);
            return;
        }
        if (!committed || !evr_h128_eq(t, s->ref_op[op].token)) {
            violation(s, "replica %u applied op %llu with a token other "
                      "than the sequential reference's", nd->id,
                      (unsigned long long)op);
            return;
        }
    }
    if (nd->model.applied != info.applied ||
        !evr_h128_eq(nd->model.applied_root, s->ref_op[info.applied].root)) {
        violation(s, "replica %u state at op %llu differs from the "
                  "reference", nd->id, (unsigned long long)info.applied);
        return;
    }
    nd->checked = info.applied;
}

static void check(struct sim *s)
{
    s->t.steps++;
    if (s->bench) {
        return;
    }
    ref_extend(s);
    for (uint32_t i = 0; i < s->n && !s->stop; i++) {
        if (s->node[i].up) {
            check_node(s, &s->node[i]);
        }
    }
}

/* ------------------------------------------------------------ clients */

static void client_send(struct sim *s, struct client *c, uint32_t to)
{
    struct evr_buf b;
    evr_buf_init(&b, 1024);
    struct evr_frame_hdr h = {EVR_MSG_REQUEST, s->cfg.cluster,
                              EVR_SENDER_CLIENT, 0, 0};
    int rc;
    size_t start = evr_frame_begin(&b, &h, &rc);
    /* a REQUEST body is a batch's request encoding (msg.h) */
    rc = rc ? rc : evr_msg_put_req(&b, c->id, c->next_no, c->req,
                                   MODEL_REQ_BYTES);
    rc = rc ? rc : evr_frame_end(&b, start);
    assert(rc == 0);
    net_send(s, CLIENT_BASE + (uint32_t)(c->id - 1), to, b.data, b.len);
    evr_buf_free(&b);
}

static void client_new_request(struct sim *s, struct client *c)
{
    static const enum model_kind kinds[] = {MODEL_PUT, MODEL_PUT, MODEL_GET,
                                            MODEL_GET, MODEL_ADD, MODEL_ADD,
                                            MODEL_RACY};
    enum model_kind k = kinds[evr_rng_below(&s->rng, 7)];
    model_encode_req(c->req, k, (uint8_t)evr_rng_below(&s->rng, MODEL_KEYS),
                     evr_rng_range(&s->rng, -1000, 1000));
    c->next_no++;
    c->waiting = true;
    c->sent_ms = s->now;
    client_send(s, c, c->target);
}

static void clients_tick(struct sim *s)
{
    for (uint32_t i = 0; i < s->nclients; i++) {
        struct client *c = &s->cl[i];
        if (!c->waiting && c->done < c->total && s->now >= c->wake_ms) {
            client_new_request(s, c);
        } else if (c->waiting && s->now - c->sent_ms >= s->retry_ms) {
            c->sent_ms = s->now;
            for (uint32_t r = 0; r < s->n; r++) {
                client_send(s, c, r);
            }
        }
    }
}

static void client_receive(struct sim *s, struct client *c,
                           const struct frame *f)
{
    struct evr_msg m;
    if (evr_msg_decode(f->p, f->len, s->cfg.cluster, 1u << 20, &m, NULL) !=
            0 ||
        m.h.type != EVR_MSG_REPLY || m.u.reply.client != c->id) {
        return;
    }
    ref_extend(s);
    struct ref_reply any = {true, m.u.reply.status, 0};
    struct ref_reply *rr = s->bench ? &any
                                    : ref_reply_at(s, c->id,
                                                   m.u.reply.request_no);
    if (rr == NULL || !rr->have) {
        violation(s, "client %llu got a reply to request %llu, which no "
                  "committed op executed", (unsigned long long)c->id,
                  (unsigned long long)m.u.reply.request_no);
        return;
    }
    int64_t v = m.u.reply.len == 8 ? (int64_t)evr_load_u64(m.u.reply.data) : 0;
    if (!s->bench && (rr->status != m.u.reply.status ||
                      (rr->status == 0 && rr->value != v))) {
        violation(s, "client %llu request %llu: reply (%d, %lld) differs "
                  "from the reference (%d, %lld)", (unsigned long long)c->id,
                  (unsigned long long)m.u.reply.request_no, m.u.reply.status,
                  (long long)v, rr->status, (long long)rr->value);
        return;
    }
    c->target = m.h.sender;
    if (c->waiting && m.u.reply.request_no == c->next_no) {
        c->waiting = false;
        c->done++;
        s->t.requests++;
        c->wake_ms = s->now + evr_rng_below(&s->rng, s->think_max_ms + 1);
    }
}

/* ------------------------------------------------------------ faults */

/* Down: crashed, or restarted and not yet recovered (VR counts a
 * recovering replica as failed until it is back in normal status), or
 * about to stop. */
static uint32_t down_count(const struct sim *s)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        struct evr_vr_info info;
        if (s->node[i].up) {
            evr_vr_info(s->node[i].vr, &info);
        }
        d += !s->node[i].up || info.status == EVR_VR_RECOVERING ||
                     s->node[i].draining
                 ? 1
                 : 0;
    }
    return d;
}

static void new_partition(struct sim *s)
{
    memset(s->blocked, 0, sizeof s->blocked);
    uint32_t kind = (uint32_t)evr_rng_below(&s->rng, 3);
    uint32_t a = (uint32_t)evr_rng_below(&s->rng, s->n);
    for (uint32_t i = 0; i < s->n; i++) {
        for (uint32_t j = 0; j < s->n; j++) {
            if (kind == 0) { /* a alone, both ways */
                s->blocked[i][j] = (i == a) != (j == a);
            } else if (kind == 1) { /* a cannot send */
                s->blocked[i][j] = i == a && j != a;
            } else { /* a random cut, each direction on its own */
                s->blocked[i][j] = i != j && evr_rng_double(&s->rng) < 0.4;
            }
        }
    }
    s->partition_end = s->now + (uint64_t)evr_rng_range(&s->rng, 30, 600);
    s->t.partitions++;
}

static void faults_tick(struct sim *s)
{
    if (s->partitions && s->now >= s->next_partition &&
        !s->cluster_stopping) {
        new_partition(s);
        s->next_partition = s->partition_end +
                            (uint64_t)evr_rng_range(&s->rng, 50, 800);
    }
    if (s->now >= s->partition_end) {
        memset(s->blocked, 0, sizeof s->blocked);
    }
    for (uint32_t i = 0; i < s->n; i++) {
        struct node *nd = &s->node[i];
        if (!nd->up && s->now >= nd->restart_at) {
            start_node(s, nd, true);
        }
    }
    stops_tick(s);
    if (s->crashes && s->now >= s->next_crash && !s->cluster_stopping) {
        s->next_crash = s->now + (uint64_t)evr_rng_range(&s->rng, 100, 900);
        uint32_t victim = (uint32_t)evr_rng_below(&s->rng, s->n);
        if (s->node[victim].up && down_count(s) < s->f) {
            s->t.crashes++;
            crash_node(s, &s->node[victim]);
            s->node[victim].restart_at =
                s->now + (uint64_t)evr_rng_range(&s->rng, 20, 700);
        }
    }
}

static void heal(struct sim *s)
{
    s->healed = true;
    s->partitions = s->crashes = s->stops = false;
    s->drop_rate = s->dup_rate = s->corrupt_rate = 0;
    memset(s->blocked, 0, sizeof s->blocked);
    s->partition_end = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (!s->node[i].up) {
            s->node[i].restart_at = s->now;
        }
    }
}

/* All clients done and every replica normal at the same applied op. */
static bool settled(struct sim *s)
{
    for (uint32_t i = 0; i < s->nclients; i++) {
        if (s->cl[i].done < s->cl[i].total) {
            return false;
        }
    }
    struct evr_vr_info first;
    for (uint32_t i = 0; i < s->n; i++) {
        struct evr_vr_info info;
        if (!s->node[i].up) {
            return false;
        }
        evr_vr_info(s->node[i].vr, &info);
        if (i == 0) {
            first = info;
        }
        if (info.status != EVR_VR_NORMAL || info.view != first.view ||
            info.applied != first.applied || info.applied != info.commit) {
            return false;
        }
    }
    return true;
}

/* What every replica and client is doing (for a failed liveness check). */
static void dump(struct sim *s)
{
    if (s->o.verbose < 1) {
        return;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        struct evr_vr_info in;
        if (!s->node[i].up) {
            fprintf(s->o.log, "  replica %u down\n", i);
            continue;
        }
        evr_vr_info(s->node[i].vr, &in);
        fprintf(s->o.log, "  replica %u: view %llu %s%s op %llu commit %llu "
                "applied %llu executed %llu%s\n", i,
                (unsigned long long)in.view, evr_vr_status_name(in.status),
                in.primary ? " primary" : "", (unsigned long long)in.op,
                (unsigned long long)in.commit,
                (unsigned long long)in.applied,
                (unsigned long long)in.executed,
                in.executing ? " executing" : "");
    }
    for (uint32_t i = 0; i < s->nclients; i++) {
        fprintf(s->o.log, "  client %llu: %llu of %llu done, request %llu%s\n",
                (unsigned long long)s->cl[i].id,
                (unsigned long long)s->cl[i].done,
                (unsigned long long)s->cl[i].total,
                (unsigned long long)s->cl[i].next_no,
                s->cl[i].waiting ? " waiting" : "");
    }
}

/* ------------------------------------------------------------ the loop */

static void deliver(struct sim *s, struct frame *f)
{
    if (f->to >= CLIENT_BASE) {
        client_receive(s, &s->cl[f->to - CLIENT_BASE], f);
    } else if (s->node[f->to].up) {
        evr_vr_receive(s->node[f->to].vr, f->p, f->len, NULL);
    }
    free(f->p);
}

static void schedule_executions(struct sim *s, uint32_t exec_max_ms)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct node *nd = &s->node[i];
        if (nd->up && nd->model.running && !nd->exec_scheduled) {
            nd->exec_scheduled = true;
            nd->exec_due = s->now + evr_rng_below(&s->rng, exec_max_ms + 1);
        }
    }
}

static void step_ms(struct sim *s, uint32_t exec_max_ms)
{
    while (s->net.n > 0 && s->net.a[0].due <= s->now && !s->stop) {
        struct frame f = heap_pop(&s->net);
        deliver(s, &f);
        schedule_executions(s, exec_max_ms);
        check(s);
    }
    for (uint32_t i = 0; i < s->n && !s->stop; i++) {
        struct node *nd = &s->node[i];
        if (nd->up && nd->exec_scheduled && nd->exec_due <= s->now) {
            nd->exec_scheduled = false;
            model_finish(&nd->model, nd->vr);
            schedule_executions(s, exec_max_ms);
            check(s);
        }
    }
    for (uint32_t i = 0; i < s->n && !s->stop; i++) {
        if (s->node[i].up) {
            evr_vr_tick(s->node[i].vr, s->now);
            schedule_executions(s, exec_max_ms);
            check(s);
        }
    }
}

static double pick(struct evr_rng *r, const double *v, size_t n)
{
    return v[evr_rng_below(r, n)];
}

/* Everything a seed decides before the run. */
static int setup(struct sim *s, const struct sim_opts *o)
{
    static const double drops[] = {0, 0, 0.01, 0.05, 0.15};
    static const double dups[] = {0, 0.02, 0.1};
    static const double racy[] = {0, 0.02, 0.1, 0.3};
    memset(s, 0, sizeof *s);
    s->o = *o;
    evr_rng_seed(&s->rng, o->seed);
    s->n = evr_rng_below(&s->rng, 4) == 0 ? 5 : 3;
    s->f = s->n / 2;
    s->mode = evr_rng_below(&s->rng, 5) == 0 ? EVR_VR_AGREE_EXECUTE
                                             : EVR_VR_EVE;
    s->drop_rate = pick(&s->rng, drops, 5);
    s->dup_rate = pick(&s->rng, dups, 3);
    s->corrupt_rate = evr_rng_below(&s->rng, 2) ? 0.002 : 0;
    s->delay_min = (uint32_t)evr_rng_below(&s->rng, 2);
    s->delay_max = s->delay_min + (uint32_t)evr_rng_range(&s->rng, 0, 15);
    s->partitions = evr_rng_below(&s->rng, 3) != 0;
    s->crashes = evr_rng_below(&s->rng, 3) != 0;
    s->next_partition = (uint64_t)evr_rng_range(&s->rng, 50, 500);
    s->next_crash = (uint64_t)evr_rng_range(&s->rng, 50, 500);
    s->heal_at = (uint64_t)evr_rng_range(&s->rng, 800, 2500);
    s->end_at = s->heal_at + 20000;
    s->nclients = (uint32_t)evr_rng_range(&s->rng, 1, 6);
    s->retry_ms = (uint32_t)evr_rng_range(&s->rng, 60, 300);
    s->think_max_ms = (uint32_t)evr_rng_below(&s->rng, 6);
    double racy_rate = s->mode == EVR_VR_EVE ? pick(&s->rng, racy, 4) : 0.3;
    uint64_t per_client = (uint64_t)evr_rng_range(&s->rng, 5, 40);
    s->stops = evr_rng_below(&s->rng, 2) != 0;
    s->next_stop = (uint64_t)evr_rng_range(&s->rng, 100, 800);

    evr_vr_config_default(&s->cfg, s->n, 0);
    s->cfg.mode = s->mode;
    s->cfg.batch_size_max = (uint32_t)evr_rng_range(&s->rng, 1, 8);
    s->cfg.batch_delay_ms = (uint32_t)evr_rng_below(&s->rng, 3);
    s->cfg.depth_max = (uint32_t)evr_rng_range(&s->rng, 1, 6);
    s->cfg.log_retain = (uint32_t)evr_rng_range(&s->rng, 2, 40);
    s->cfg.chunk_bytes = 64;
    s->cfg.clients_max = (uint32_t)evr_rng_range(&s->rng, 2, 16); /* LRU */
    s->cfg.heartbeat_ms = 10;
    s->cfg.view_timeout_ms = (uint32_t)evr_rng_range(&s->rng, 60, 200);
    s->cfg.verify_timeout_ms = (uint32_t)evr_rng_range(&s->rng, 20, 100);
    s->cfg.retry_ms = (uint32_t)evr_rng_range(&s->rng, 15, 50);

    s->cl = calloc(s->nclients, sizeof *s->cl);
    s->ref_reply = calloc(s->nclients * (per_client + 1), sizeof *s->ref_reply);
    if (s->cl == NULL || s->ref_reply == NULL ||
        model_state_alloc(&s->ref, s->nclients) != 0) {
        return EVR_ENOMEM;
    }
    for (uint32_t i = 0; i < s->nclients; i++) {
        s->cl[i] = (struct client){.id = i + 1, .total = per_client};
    }
    s->ref_next = 1;
    s->ref_cap = 1024;
    s->ref_op = calloc(s->ref_cap, sizeof *s->ref_op);
    s->ref_op[0].root = model_root(s->nclients, &s->ref);
    for (uint32_t i = 0; i < s->n; i++) {
        struct node *nd = &s->node[i];
        nd->s = s;
        nd->id = i;
        if (model_init(&nd->model, i, s->nclients, racy_rate,
                       evr_rng_next(&s->rng), s->cfg.depth_max + 1) != 0) {
            return EVR_ENOMEM;
        }
        nd->model.on_commit = on_commit;
        nd->model.on_commit_data = nd;
        start_node(s, nd, false);
    }
    return 0;
}

static void teardown(struct sim *s)
{
    for (uint32_t i = 0; i < s->n; i++) {
        struct node *nd = &s->node[i];
        if (nd->up) {
            struct evr_vr_stats st;
            evr_vr_stats(nd->vr, &st);
            add_stats(&nd->gone, &st);
            evr_vr_free(nd->vr);
        }
        s->t.rollbacks += nd->gone.rollbacks;
        s->t.repairs += nd->gone.repairs;
        s->t.state_transfers += nd->gone.state_transfers;
        s->t.divergences += nd->model.divergences;
        model_free(&nd->model);
    }
    while (s->net.n > 0) {
        free(heap_pop(&s->net).p);
    }
    free(s->net.a);
    free(s->cl);
    free(s->ref_reply);
    free(s->ref_op);
    free(s->resp);
    free(s->values);
    free(s->reqs);
    model_state_free(&s->ref);
}

static uint64_t max_view(const struct sim *s)
{
    uint64_t v = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->node[i].up) {
            struct evr_vr_info info;
            evr_vr_info(s->node[i].vr, &info);
            v = info.view > v ? info.view : v;
        }
    }
    return v;
}

uint64_t sim_run(const struct sim_opts *o, struct sim_totals *t)
{
    struct sim *s = calloc(1, sizeof *s);
    assert(s != NULL);
    if (setup(s, o) != 0) {
        violation(s, "setup failed (out of memory)");
    }
    if (o->verbose >= 2) {
        fprintf(o->log, "sim: seed %llu: %u replicas, %s, %u clients, drop "
                "%.2f dup %.2f delay %u..%u ms, partitions %d crashes %d "
                "stops %d, heal at %llu ms\n", (unsigned long long)o->seed,
                s->n, evr_vr_mode_name(s->mode), s->nclients, s->drop_rate,
                s->dup_rate, s->delay_min, s->delay_max, s->partitions,
                s->crashes, s->stops, (unsigned long long)s->heal_at);
    }
    while (!s->stop) {
        step_ms(s, 3);
        if (s->stop) {
            break;
        }
        clients_tick(s);
        faults_tick(s);
        if (!s->healed && s->now >= s->heal_at) {
            heal(s);
        }
        if (s->healed && settled(s)) {
            break;
        }
        if (s->now >= s->end_at) {
            dump(s);
            violation(s, "no progress: clients or replicas did not finish "
                      "within %llu ms of healing",
                      (unsigned long long)(s->end_at - s->heal_at));
        }
        s->now++;
    }
    s->t.view_changes += max_view(s);
    s->t.seeds++;
    uint64_t v = s->t.violations;
    teardown(s);
    t->seeds += s->t.seeds;
    t->steps += s->t.steps;
    t->drops += s->t.drops;
    t->partitions += s->t.partitions;
    t->crashes += s->t.crashes;
    t->stops += s->t.stops;
    t->cluster_stops += s->t.cluster_stops;
    t->resumes += s->t.resumes;
    t->divergences += s->t.divergences;
    t->view_changes += s->t.view_changes;
    t->rollbacks += s->t.rollbacks;
    t->repairs += s->t.repairs;
    t->state_transfers += s->t.state_transfers;
    t->violations += s->t.violations;
    t->requests += s->t.requests;
    t->corruptions += s->t.corruptions;
    free(s);
    return v;
}

double sim_bench(uint32_t replicas, uint32_t batch_size, uint32_t clients,
                 uint64_t requests, uint64_t *committed)
{
    struct sim *s = calloc(1, sizeof *s);
    assert(s != NULL);
    s->bench = true;
    s->o = (struct sim_opts){1, 1, stderr};
    evr_rng_seed(&s->rng, 1);
    s->n = replicas;
    s->f = replicas / 2;
    s->mode = EVR_VR_EVE;
    s->nclients = clients;
    s->retry_ms = 100000;
    s->heal_at = s->end_at = UINT64_MAX;
    evr_vr_config_default(&s->cfg, replicas, 0);
    s->cfg.batch_size_max = batch_size;
    s->cfg.batch_delay_ms = 1000; /* batches are cut full */
    s->cfg.queue_max = clients > batch_size ? clients : batch_size;
    s->cfg.clients_max = clients;
    s->cl = calloc(clients, sizeof *s->cl);
    uint64_t per = requests / clients + 1;
    s->ref_reply = calloc(1, sizeof *s->ref_reply);
    model_state_alloc(&s->ref, clients);
    s->ref_op = calloc(1, sizeof *s->ref_op);
    for (uint32_t i = 0; i < clients; i++) {
        s->cl[i] = (struct client){.id = i + 1, .total = per};
    }
    for (uint32_t i = 0; i < replicas; i++) {
        s->node[i].s = s;
        s->node[i].id = i;
        model_init(&s->node[i].model, i, clients, 0, i, s->cfg.depth_max + 1);
        start_node(s, &s->node[i], false);
    }
    uint64_t t0 = evr_now_ns();
    while (s->t.requests < requests && !s->stop) {
        clients_tick(s);
        step_ms(s, 0);
        s->now++;
    }
    uint64_t ns = evr_now_ns() - t0;
    *committed = s->t.requests;
    teardown(s);
    free(s);
    return *committed ? (double)ns / (double)*committed : 0;
}
