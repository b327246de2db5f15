/* The simulator's state machine (model.h). */
#include "tests/sim/model.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"

struct model_snap {
    uint64_t op;
    struct model_state s;
    evr_h128 base_root; /* root before op */
    evr_h128 root;      /* root after op */
    evr_h128 resp;      /* response digest of op (for kept ops) */
};

int model_state_alloc(struct model_state *s, uint32_t clients)
{
    memset(s->v, 0, sizeof s->v);
    s->c = calloc(clients ? clients : 1, sizeof *s->c);
    return s->c != NULL ? 0 : EVR_ENOMEM;
}

void model_state_copy(uint32_t clients, struct model_state *dst,
                      const struct model_state *src)
{
    memcpy(dst->v, src->v, sizeof dst->v);
    memcpy(dst->c, src->c, clients * sizeof *dst->c);
}

void model_state_free(struct model_state *s)
{
    free(s->c);
    s->c = NULL;
}

evr_h128 model_root(uint32_t clients, const struct model_state *s)
{
    evr_h128 root = {0, 0};
    for (uint32_t k = 0; k < MODEL_KEYS; k++) {
        uint64_t row[2] = {k, (uint64_t)s->v[k]};
        root = evr_h128_add(root, evr_hash128(row, sizeof row, 1));
    }
    for (uint32_t i = 0; i < clients; i++) {
        if (s->c[i].request_no == 0) {
            continue;
        }
        uint64_t row[4] = {i + 1, s->c[i].request_no,
                           (uint64_t)(uint32_t)s->c[i].status,
                           (uint64_t)s->c[i].value};
        root = evr_h128_add(root, evr_hash128(row, sizeof row, 2));
    }
    return root;
}

void model_encode_req(uint8_t out[MODEL_REQ_BYTES], enum model_kind kind,
                      uint8_t key, int64_t arg)
{
    out[0] = (uint8_t)kind;
    out[1] = key;
    evr_store_u64(out + 2, (uint64_t)arg);
}

static int32_t run_one(struct model_state *s, const struct evr_vr_req *q,
                       bool sequential, struct model *racy, int64_t *value)
{
    if (q->len != MODEL_REQ_BYTES || q->data[0] >= MODEL_KINDS ||
        q->data[1] >= MODEL_KEYS) {
        *value = 0;
        return EVR_EINVAL;
    }
    int64_t *v = &s->v[q->data[1]];
    int64_t arg = (int64_t)evr_load_u64(q->data + 2);
    switch ((enum model_kind)q->data[0]) {
    case MODEL_PUT:
        *value = *v;
        *v = arg;
        break;
    case MODEL_GET:
        *value = *v;
        break;
    case MODEL_ADD:
        *v += arg;
        *value = *v;
        break;
    case MODEL_RACY:
        if (!sequential && racy != NULL &&
            evr_rng_double(&racy->rng) < racy->racy_rate) {
            *v += 2 + (int64_t)((racy->replica + 1) << 20) +
                  (int64_t)evr_rng_below(&racy->rng, 1u << 19);
            racy->divergences++;
        } else {
            *v += 1;
        }
        *value = *v;
        break;
    case MODEL_KINDS:
        break;
    }
    return 0;
}

evr_h128 model_run_batch(uint32_t clients, struct model_state *s,
                         const struct evr_vr_batch *b, bool sequential,
                         struct model *racy, struct evr_vr_response *resp,
                         int64_t *values)
{
    for (uint32_t i = 0; i < b->n; i++) {
        const struct evr_vr_req *q = &b->req[i];
        struct model_client_row *row =
            q->client >= 1 && q->client <= clients ? &s->c[q->client - 1]
                                                   : NULL;
        int32_t status;
        if (row != NULL && q->request_no <= row->request_no) {
            bool same = q->request_no == row->request_no;
            status = same ? row->status : EVR_ESTATE;
            values[i] = same ? row->value : 0;
        } else {
            status = run_one(s, q, sequential, racy, &values[i]);
            if (row != NULL) {
                *row = (struct model_client_row){q->request_no, status,
                                                 values[i]};
            }
        }
        resp[i].status = status;
        resp[i].len = status == EVR_ESTATE ? 0 : 8;
        resp[i].data = (const uint8_t *)&values[i];
    }
    return model_root(clients, s);
}

/* ------------------------------------------------------------ host */

static void set_violation(struct model *m, const char *what, uint64_t op)
{
    if (m->violation[0] == '\0') {
        snprintf(m->violation, sizeof m->violation,
                 "replica %u host: %s (op %llu, applied %llu)", m->replica,
                 what, (unsigned long long)op,
                 (unsigned long long)m->applied);
    }
}

static const struct model_state *top_state(const struct model *m)
{
    return m->depth > 0 ? &m->stack[m->depth - 1].s : &m->applied_state;
}

static evr_h128 top_root(const struct model *m)
{
    return m->depth > 0 ? m->stack[m->depth - 1].root : m->applied_root;
}

static int grow_run(struct model *m, uint32_t n)
{
    if (n <= m->run_cap) {
        return 0;
    }
    free(m->run_resp);
    free(m->run_values);
    m->run_resp = calloc(n, sizeof *m->run_resp);
    m->run_values = calloc(n, sizeof *m->run_values);
    m->run_cap = n;
    return m->run_resp && m->run_values ? 0 : EVR_ENOMEM;
}

static int h_execute(void *data, const struct evr_vr_batch *b, bool sequential,
                     struct evr_err *err)
{
    struct model *m = data;
    if (m->running || b->op != m->applied + m->depth + 1 ||
        m->depth == m->depth_max) {
        set_violation(m, "execute out of order", b->op);
        return evr_err_set(err, EVR_ESTATE, "execute op %llu out of order",
                           (unsigned long long)b->op);
    }
    if (grow_run(m, b->n) != 0) {
        return evr_err_set(err, EVR_ENOMEM, "responses");
    }
    struct model_snap *s = &m->stack[m->depth];
    s->base_root = top_root(m);
    model_state_copy(m->clients, &s->s, top_state(m));
    s->root = model_run_batch(m->clients, &s->s, b, sequential, m,
                              m->run_resp, m->run_values);
    s->op = b->op;
    m->depth++;
    m->running = true;
    m->run_op = b->op;
    m->run_root = s->root;
    m->run_n = b->n;
    return 0;
}

void model_finish(struct model *m, struct evr_vr *r)
{
    assert(m->running);
    m->running = false;
    evr_vr_executed(r, m->run_op, m->run_root, m->run_resp, m->run_n);
}

static int h_rollback(void *data, uint64_t op, struct evr_err *err)
{
    struct model *m = data;
    if (op <= m->applied || op > m->applied + m->depth || m->running) {
        set_violation(m, "rollback of an applied or unknown op", op);
        return evr_err_set(err, EVR_ESTATE, "rollback of op %llu",
                           (unsigned long long)op);
    }
    m->depth = (uint32_t)(op - m->applied - 1);
    return 0;
}

static void keep(struct model *m, const struct model_snap *s, evr_h128 resp)
{
    struct model_snap *k = &m->kept[s->op % m->kept_max];
    k->op = s->op;
    k->base_root = s->base_root;
    k->root = s->root;
    k->resp = resp;
    model_state_copy(m->clients, &k->s, &s->s);
}

static int h_commit(void *data, uint64_t op, struct evr_err *err)
{
    struct model *m = data;
    if (m->depth == 0 || m->stack[0].op != op ||
        (m->running && m->depth == 1)) {
        set_violation(m, "commit of an op not executed", op);
        return evr_err_set(err, EVR_ESTATE, "commit of op %llu",
                           (unsigned long long)op);
    }
    struct model_snap first = m->stack[0];
    keep(m, &first, (evr_h128){0, 0});
    model_state_copy(m->clients, &m->applied_state, &first.s);
    m->applied = op;
    m->applied_root = first.root;
    memmove(&m->stack[0], &m->stack[1], (m->depth - 1) * sizeof *m->stack);
    m->stack[m->depth - 1] = first; /* recycle its state buffer */
    m->depth--;
    if (m->on_commit != NULL) {
        m->on_commit(m->on_commit_data, op);
    }
    return 0;
}

static size_t state_bytes(const struct model *m)
{
    return 16 + MODEL_KEYS * 8 + (size_t)m->clients * 20;
}

static int put_state(const struct model *m, struct evr_buf *out,
                     evr_h128 base, const struct model_state *s)
{
    uint8_t x[16];
    evr_h128_to_bytes(base, x);
    int rc = evr_buf_put(out, x, sizeof x);
    for (uint32_t k = 0; rc == 0 && k < MODEL_KEYS; k++) {
        rc = evr_buf_put_u64(out, (uint64_t)s->v[k]);
    }
    for (uint32_t i = 0; rc == 0 && i < m->clients; i++) {
        rc = evr_buf_put_u64(out, s->c[i].request_no);
        rc = rc ? rc : evr_buf_put_u32(out, (uint32_t)s->c[i].status);
        rc = rc ? rc : evr_buf_put_u64(out, (uint64_t)s->c[i].value);
    }
    return rc;
}

static int get_state(const struct model *m, const void *p, size_t len,
                     evr_h128 *base, struct model_state *s)
{
    if (len != state_bytes(m)) {
        return EVR_ECORRUPT;
    }
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    *base = evr_h128_from_bytes(evr_get_bytes(&r, 16));
    for (uint32_t k = 0; k < MODEL_KEYS; k++) {
        s->v[k] = (int64_t)evr_get_u64(&r);
    }
    for (uint32_t i = 0; i < m->clients; i++) {
        s->c[i].request_no = evr_get_u64(&r);
        s->c[i].status = (int32_t)evr_get_u32(&r);
        s->c[i].value = (int64_t)evr_get_u64(&r);
    }
    return r.ok ? 0 : EVR_ECORRUPT;
}

static int h_delta_export(void *data, uint64_t op, struct evr_buf *out,
                          struct evr_err *err)
{
    struct model *m = data;
    const struct model_snap *s = NULL;
    if (op > m->applied && op <= m->applied + m->depth &&
        !(m->running && op == m->applied + m->depth)) {
        s = &m->stack[op - m->applied - 1];
    } else if (op <= m->applied && m->kept[op % m->kept_max].op == op) {
        s = &m->kept[op % m->kept_max];
    }
    if (s == NULL) {
        return evr_err_set(err, EVR_ENOENT, "delta of op %llu is gone",
                           (unsigned long long)op);
    }
    return put_state(m, out, s->base_root, &s->s);
}

static int h_delta_apply(void *data, uint64_t op, const void *p, size_t len,
                         evr_h128 *root, struct evr_err *err)
{
    struct model *m = data;
    if (m->running || op != m->applied + m->depth + 1 ||
        m->depth == m->depth_max) {
        set_violation(m, "delta applied out of order", op);
        return evr_err_set(err, EVR_ESTATE, "delta of op %llu",
                           (unsigned long long)op);
    }
    struct model_snap *s = &m->stack[m->depth];
    evr_h128 base;
    if (get_state(m, p, len, &base, &s->s) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "delta of op %llu",
                           (unsigned long long)op);
    }
    if (!evr_h128_eq(base, top_root(m))) {
        return evr_err_set(err, EVR_EMISMATCH, "delta of op %llu: base",
                           (unsigned long long)op);
    }
    s->op = op;
    s->base_root = base;
    s->root = model_root(m->clients, &s->s);
    m->depth++;
    *root = s->root;
    return 0;
}

static int h_snapshot_export(void *data, struct evr_buf *out, evr_h128 *root,
                             struct evr_err *err)
{
    struct model *m = data;
    *root = m->applied_root;
    return put_state(m, out, m->applied_root, &m->applied_state);
}

static int h_snapshot_import(void *data, uint64_t op, const void *p,
                             size_t len, evr_h128 *root, struct evr_err *err)
{
    struct model *m = data;
    if (m->running || m->depth != 0 || op <= m->applied) {
        set_violation(m, "snapshot import over executed ops", op);
        return evr_err_set(err, EVR_ESTATE, "snapshot import");
    }
    evr_h128 base;
    struct model_state s;
    if (model_state_alloc(&s, m->clients) != 0) {
        return evr_err_set(err, EVR_ENOMEM, "snapshot");
    }
    if (get_state(m, p, len, &base, &s) != 0) {
        model_state_free(&s);
        return evr_err_set(err, EVR_ECORRUPT, "snapshot of op %llu",
                           (unsigned long long)op);
    }
    model_state_copy(m->clients, &m->applied_state, &s);
    model_state_free(&s);
    m->applied = op;
    m->applied_root = model_root(m->clients, &m->applied_state);
    *root = m->applied_root;
    return 0;
}

struct evr_vr_host model_host(struct model *m)
{
    return (struct evr_vr_host){
        .data = m,
        .execute = h_execute,
        .rollback = h_rollback,
        .commit = h_commit,
        .delta_export = h_delta_export,
        .delta_apply = h_delta_apply,
        .snapshot_export = h_snapshot_export,
        .snapshot_import = h_snapshot_import,
    };
}

/* ------------------------------------------------------------ life cycle */

int model_init(struct model *m, uint32_t replica, uint32_t clients,
               double racy_rate, uint64_t seed, uint32_t depth_max)
{
    memset(m, 0, sizeof *m);
    m->replica = replica;
    m->clients = clients;
    m->racy_rate = racy_rate;
    evr_rng_seed2(&m->rng, seed, replica);
    m->depth_max = depth_max;
    m->kept_max = 64;
    m->stack = calloc(depth_max, sizeof *m->stack);
    m->kept = calloc(m->kept_max, sizeof *m->kept);
    int rc = m->stack && m->kept ? 0 : EVR_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < depth_max; i++) {
        rc = model_state_alloc(&m->stack[i].s, clients);
    }
    for (uint32_t i = 0; rc == 0 && i < m->kept_max; i++) {
        rc = model_state_alloc(&m->kept[i].s, clients);
    }
    if (rc == 0) {
        rc = model_state_alloc(&m->applied_state, clients);
    }
    m->applied_root = model_root(clients, &m->applied_state);
    return rc;
}

void model_free(struct model *m)
{
    for (uint32_t i = 0; m->stack != NULL && i < m->depth_max; i++) {
        model_state_free(&m->stack[i].s);
    }
    for (uint32_t i = 0; m->kept != NULL && i < m->kept_max; i++) {
        model_state_free(&m->kept[i].s);
    }
    model_state_free(&m->applied_state);
    free(m->stack);
    free(m->kept);
    free(m->run_resp);
    free(m->run_values);
}

void model_crash(struct model *m)
{
    m->depth = 0;
    m->running = false;
    for (uint32_t i = 0; i < m->kept_max; i++) {
        m->kept[i].op = 0;
    }
}

struct evr_vr_applied model_applied(const struct model *m)
{
    return (struct evr_vr_applied){.op = m->applied,
                                   .root = m->applied_root,
                                   .resp_digest = m->applied_resp};
}
