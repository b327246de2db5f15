/* The client: sessions, primary belief, retries, the public calls
 * (include/evr/client.h gives the rules; conn.c the sockets). */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client/internal.h"
#include "common/clock.h"
#include "common/hash.h"
#include "replication/vr.h"

#define NS_PER_MS 1000000ull
#define STATUS_BODY_MAX 0
#define REQ_HEAD_BYTES 20 /* u64 client, u64 request_no, u32 len */

_Static_assert(EVR_CLIENT_REPLICAS_MAX == EVR_REPLICAS_MAX,
               "client and protocol agree on the largest cluster");

void evr_client_opts_default(struct evr_client_opts *o)
{
    *o = (struct evr_client_opts){.cluster_id = 1, .sessions = 1,
                                  .try_timeout_ms = 1000,
                                  .deadline_ms = 30000,
                                  .body_max = 64u << 20,
                                  .out_bytes_max = 64u << 20};
}

static int check_opts(const struct evr_client_opts *o, struct evr_err *err)
{
    if (o->cluster == NULL || o->cluster[0] == '\0') {
        return evr_err_set(err, EVR_EINVAL, "no cluster addresses");
    }
    if (o->sessions < 1 || o->sessions > EVR_CLIENT_SESSIONS_MAX) {
        return evr_err_set(err, EVR_EINVAL, "sessions must be 1..%d, not %u",
                           EVR_CLIENT_SESSIONS_MAX, o->sessions);
    }
    if (o->try_timeout_ms < 1 || o->try_timeout_ms > 3600000 ||
        o->deadline_ms < 1) {
        return evr_err_set(err, EVR_EINVAL, "try timeout must be "
                           "1..3600000 ms and the deadline at least 1 ms");
    }
    if (o->body_max < 4096 || o->body_max > (1u << 30) ||
        o->out_bytes_max < (2u << 20)) {
        return evr_err_set(err, EVR_EINVAL, "body_max must be 4 KiB..1 GiB "
                           "and out_bytes_max at least 2 MiB");
    }
    return 0;
}

/* ------------------------------------------------------------ sessions */

static int draw_ids(uint64_t *ids, size_t n, struct evr_err *err)
{
    uint8_t *p = (uint8_t *)ids;
    size_t want = n * sizeof *ids, got = 0;
    while (got < want) {
        ssize_t k = getrandom(p + got, want - got, 0);
        if (k < 0 && errno != EINTR) {
            return evr_err_set(err, EVR_EIO, "getrandom: %s",
                               strerror(errno));
        }
        got += k > 0 ? (size_t)k : 0;
    }
    return 0;
}

static uint32_t *slot_for(struct evr_client *c, uint64_t id)
{
    uint32_t i = (uint32_t)evr_hash64(&id, sizeof id, 0) & c->slots_mask;
    while (c->slots[i] != 0 && c->s[c->slots[i] - 1].id != id) {
        i = (i + 1) & c->slots_mask;
    }
    return &c->slots[i];
}

/* Ids non-zero and distinct, each in the id -> session table. */
static int sessions_init(struct evr_client *c, struct evr_err *err)
{
    uint32_t n = c->o.sessions, cap = 16;
    while (cap < 2 * n) {
        cap *= 2;
    }
    c->s = calloc(n, sizeof *c->s);
    c->slots = calloc(cap, sizeof *c->slots);
    uint64_t *ids = calloc(n, sizeof *ids);
    int rc = c->s && c->slots && ids ? 0 : evr_err_set(err, EVR_ENOMEM,
                                                       "out of memory");
    c->slots_mask = cap - 1;
    for (uint32_t i = 0; rc == 0 && i < n; i++) {
        evr_buf_init(&c->s[i].req, EVR_REQUEST_BYTES_MAX);
        uint32_t *slot;
        do {
            rc = draw_ids(&ids[i], 1, err);
            slot = slot_for(c, ids[i]);
        } while (rc == 0 && (ids[i] == 0 || *slot != 0));
        c->s[i].id = ids[i];
        *slot = i + 1;
    }
    free(ids);
    return rc;
}

static struct session *session_of(struct evr_client *c, uint64_t id)
{
    uint32_t at = *slot_for(c, id);
    return at == 0 ? NULL : &c->s[at - 1];
}

/* ------------------------------------------------------------ new, free */

static int split_cluster(struct evr_client *c, const char *list,
                         struct evr_err *err)
{
    const char *p = list;
    int rc = 0;
    while (rc == 0 && *p != '\0') {
        size_t len = strcspn(p, ",");
        char addr[EVR_CLIENT_ADDR_MAX + 1];
        if (c->n == EVR_CLIENT_REPLICAS_MAX || len == 0 ||
            len > EVR_CLIENT_ADDR_MAX) {
            return evr_err_set(err, EVR_EINVAL, "cluster list '%.80s': "
                               "1..%d addresses of at most %d bytes",
                               list, EVR_CLIENT_REPLICAS_MAX,
                               EVR_CLIENT_ADDR_MAX);
        }
        memcpy(addr, p, len);
        addr[len] = '\0';
        rc = conn_init(&c->conns[c->n], c->n, addr, c->o.out_bytes_max,
                       c->o.body_max, err);
        c->n++; /* initialised, so freed, even on failure */
        p += len + (p[len] == ',');
    }
    return rc;
}

int evr_client_new(const struct evr_client_opts *o, struct evr_client **out,
                   struct evr_err *err)
{
    *out = NULL;
    int rc = check_opts(o, err);
    if (rc != 0) {
        return rc;
    }
    struct evr_client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    c->o = *o;
    c->o.cluster = NULL; /* borrowed for the call only */
    c->next_scan_ns = UINT64_MAX;
    rc = split_cluster(c, o->cluster, err);
    rc = rc ? rc : sessions_init(c, err);
    if (rc != 0) {
        evr_client_free(c);
        return rc;
    }
    uint64_t now = evr_now_ns();
    for (uint32_t i = 0; i < c->n; i++) {
        conn_start(c, &c->conns[i], now);
    }
    *out = c;
    return 0;
}

void evr_client_free(struct evr_client *c)
{
    if (c == NULL) {
        return;
    }
    assert(!c->in_poll);
    for (uint32_t i = 0; i < c->n; i++) {
        conn_free(&c->conns[i]);
    }
    for (uint32_t i = 0; c->s != NULL && i < c->o.sessions; i++) {
        evr_buf_free(&c->s[i].req);
    }
    free(c->s);
    free(c->slots);
    free(c);
}

/* ------------------------------------------------------------ sending */

static void send_request(struct evr_client *c, struct session *s, uint32_t to,
                         uint64_t now)
{
    assert(s->busy && to < c->n);
    struct conn *k = &c->conns[to];
    uint8_t head[REQ_HEAD_BYTES];
    evr_store_u64(head, s->id);
    evr_store_u64(head + 8, s->request_no);
    evr_store_u32(head + 16, (uint32_t)s->req.len);
    s->target = to;
    s->sent_gen = k->gen;
    s->try_ns = now + (uint64_t)c->o.try_timeout_ms * NS_PER_MS;
    conn_frame(c, k, EVR_MSG_REQUEST, head, sizeof head, s->req.data,
               s->req.len);
    uint64_t due = s->try_ns < s->deadline_ns ? s->try_ns : s->deadline_ns;
    c->next_scan_ns = due < c->next_scan_ns ? due : c->next_scan_ns;
}

/* Every replica gets a STATUS once open; at most once per half try. */
static void ask_status(struct evr_client *c, uint64_t now, bool force)
{
    uint64_t gap = (uint64_t)c->o.try_timeout_ms * NS_PER_MS / 2;
    if (!force && c->status_asked_once && now - c->status_asked_ns < gap) {
        return;
    }
    c->status_asked_once = true;
    c->status_asked_ns = now;
    c->stats.status_asked++;
    for (uint32_t i = 0; i < c->n; i++) {
        c->conns[i].want_status = true;
    }
}

/* A new primary: requests elsewhere go there, and their next timeout
 * starts the retry order afresh from it. */
static void redirect(struct evr_client *c, uint64_t now)
{
    for (uint32_t i = 0; i < c->o.sessions; i++) {
        struct session *s = &c->s[i];
        if (s->busy && s->target != c->primary) {
            c->stats.resends++;
            s->timeouts = 0;
            send_request(c, s, c->primary, now);
        }
    }
}

/* The primary rule of client.h; a change sends requests after it. */
static void believe(struct evr_client *c, uint64_t now)
{
    int best = -1;
    uint64_t best_view = 0, max_view = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        const struct seen *v = &c->seen[i];
        if (!v->known) {
            continue;
        }
        max_view = v->view > max_view ? v->view : max_view;
        if (v->primary && v->normal && (best < 0 || v->view > best_view)) {
            best = (int)i;
            best_view = v->view;
        }
    }
    uint32_t p = best >= 0 ? (uint32_t)best : (uint32_t)(max_view % c->n);
    if (p != c->primary) {
        c->primary = p;
        redirect(c, now);
    }
}

/* ------------------------------------------------------------ ending */

static void finish(struct evr_client *c, struct session *s, int rc,
                   int32_t status, const uint8_t *body, uint32_t len,
                   uint64_t op)
{
    assert(s->busy && s->done != NULL);
    evr_client_done_fn done = s->done;
    void *arg = s->arg;
    s->busy = false;
    s->done = NULL;
    c->ended++;
    if (rc == 0) {
        c->stats.completed++;
    } else {
        c->stats.timed_out++;
    }
    done(arg, rc, status, body, len, op);
}

static void retry(struct evr_client *c, struct session *s, uint64_t now)
{
    s->timeouts++;
    c->stats.resends++;
    ask_status(c, now, false);
    uint32_t to = (uint32_t)((c->primary + s->timeouts - 1) % c->n);
    send_request(c, s, to, now);
}

/* Resends and failures that are due; then when the next one is. */
static void scan(struct evr_client *c, uint64_t now)
{
    if (now < c->next_scan_ns) {
        return;
    }
    c->next_scan_ns = UINT64_MAX;
    for (uint32_t i = 0; i < c->o.sessions; i++) {
        struct session *s = &c->s[i];
        if (s->busy && now >= s->deadline_ns) {
            finish(c, s, EVR_ETIMEDOUT, 0, NULL, 0, 0);
        } else if (s->busy && now >= s->try_ns) {
            retry(c, s, now);
        } else if (s->busy) {
            uint64_t due = s->try_ns < s->deadline_ns ? s->try_ns
                                                      : s->deadline_ns;
            c->next_scan_ns = due < c->next_scan_ns ? due : c->next_scan_ns;
        }
    }
}

/* ------------------------------------------------------------ input */

void client_on_open(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    for (uint32_t i = 0; i < c->o.sessions; i++) {
        struct session *s = &c->s[i];
        if (s->busy && s->target == k->index && s->sent_gen != k->gen) {
            c->stats.resends++;
            send_request(c, s, k->index, now_ns);
        }
    }
}

static void on_status_reply(struct evr_client *c, const struct conn *k,
                            const struct evr_msg *m)
{
    struct seen *v = &c->seen[k->index];
    struct evr_replica_status *st = &v->st;
    memset(st, 0, sizeof *st);
    st->replica = m->u.status_reply.replica;
    st->replicas = m->u.status_reply.replicas;
    st->primary = m->u.status_reply.primary;
    st->status = m->u.status_reply.status;
    st->mode = m->u.status_reply.mode;
    st->view = m->u.status_reply.view;
    st->op = m->u.status_reply.op;
    st->commit = m->u.status_reply.commit;
    st->applied = m->u.status_reply.applied;
    st->token = m->u.status_reply.token;
    st->root = m->u.status_reply.root;
    uint32_t n = m->u.status_reply.count;
    st->ncounters = n < EVR_STATUS_COUNTERS_MAX ? n : EVR_STATUS_COUNTERS_MAX;
    for (uint32_t i = 0; i < st->ncounters; i++) {
        st->counters[i] = evr_load_u64(m->u.status_reply.counters + 8 * i);
    }
    v->known = true;
    v->answers++;
    v->primary = st->primary;
    v->normal = st->status == EVR_VR_NORMAL;
    v->view = st->view;
    if (st->replica != k->index) { /* believed by position all the same */
        snprintf(c->problem, sizeof c->problem, "the replica at %s says it "
                 "is replica %u of %u, not %u: is the cluster list in "
                 "replica order?", k->name, st->replica, st->replicas,
                 k->index);
    }
}

static void on_reply(struct evr_client *c, struct conn *k,
                     const struct evr_msg *m, uint64_t now_ns)
{
    struct seen *v = &c->seen[k->index];
    if (!v->known || v->view <= m->h.view) { /* it leads this view */
        v->view = m->h.view;
        v->primary = true;
        v->normal = true;
        v->known = true;
        believe(c, now_ns);
    }
    struct session *s = session_of(c, m->u.reply.client);
    if (s == NULL || !s->busy || s->request_no != m->u.reply.request_no) {
        c->stats.replies_stale++;
        return;
    }
    finish(c, s, 0, m->u.reply.status, m->u.reply.data, m->u.reply.len,
           m->u.reply.op);
}

void client_on_frame(struct evr_client *c, struct conn *k,
                     const struct evr_msg *m, uint64_t now_ns)
{
    assert(k->index < c->n);
    if (m->h.type == EVR_MSG_REPLY) {
        on_reply(c, k, m, now_ns);
    } else if (m->h.type == EVR_MSG_STATUS_REPLY) {
        on_status_reply(c, k, m);
        believe(c, now_ns);
    }
    /* anything else checked but not for clients: ignored */
}

/* ------------------------------------------------------------ polling */

static void service(struct evr_client *c, uint64_t now)
{
    scan(c, now);
    for (uint32_t i = 0; i < c->n; i++) {
        struct conn *k = &c->conns[i];
        if (k->state == CONN_DOWN && now >= k->retry_ns) {
            conn_start(c, k, now);
        }
        if (k->state == CONN_OPEN && k->want_status) {
            k->want_status = false;
            conn_frame(c, k, EVR_MSG_STATUS, NULL, 0, NULL, 0);
        }
    }
}

/* Milliseconds until the next timer or reconnect, at most cap. */
static int wait_ms(const struct evr_client *c, uint64_t now, uint32_t cap)
{
    uint64_t next = c->next_scan_ns;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->conns[i].state == CONN_DOWN && c->conns[i].retry_ns < next) {
            next = c->conns[i].retry_ns;
        }
    }
    uint64_t ms = next <= now ? 0 : (next - now + NS_PER_MS - 1) / NS_PER_MS;
    return (int)(ms < cap ? ms : cap);
}

int evr_client_poll(struct evr_client *c, uint32_t timeout_ms)
{
    if (c->in_poll) {
        return EVR_ESTATE;
    }
    c->in_poll = true;
    c->ended = 0;
    uint64_t now = evr_now_ns();
    service(c, now);
    int nfds = 0;
    uint32_t which[EVR_CLIENT_REPLICAS_MAX];
    for (uint32_t i = 0; i < c->n; i++) {
        conn_flush(c, &c->conns[i], now);
        if (conn_pollfd(&c->conns[i], &c->pfd[nfds])) {
            which[nfds++] = i;
        }
    }
    int rc = poll(c->pfd, (nfds_t)nfds, wait_ms(c, now, timeout_ms));
    int poll_errno = errno;
    now = evr_now_ns();
    for (int i = 0; rc > 0 && i < nfds; i++) {
        struct conn *k = &c->conns[which[i]];
        if (c->pfd[i].revents != 0 && k->fd == c->pfd[i].fd) {
            conn_events(c, k, c->pfd[i].revents, now);
        }
    }
    service(c, evr_now_ns());
    c->in_poll = false;
    if (rc < 0 && poll_errno != EINTR) {
        snprintf(c->problem, sizeof c->problem, "poll: %s",
                 strerror(poll_errno));
        return EVR_EIO;
    }
    return c->ended;
}

/* ------------------------------------------------------------ submit */

int evr_client_submit(struct evr_client *c, uint32_t session,
                      const void *req, uint32_t len, evr_client_done_fn done,
                      void *arg)
{
    if (session >= c->o.sessions || done == NULL) {
        return EVR_EINVAL;
    }
    struct session *s = &c->s[session];
    if (s->busy) {
        return EVR_EBUSY;
    }
    if (len > EVR_REQUEST_BYTES_MAX) {
        return EVR_ELIMIT;
    }
    evr_buf_reset(&s->req);
    int rc = evr_buf_put(&s->req, req, len);
    if (rc != 0) {
        return rc;
    }
    uint64_t now = evr_now_ns();
    s->request_no++;
    s->busy = true;
    s->done = done;
    s->arg = arg;
    s->timeouts = 0;
    s->deadline_ns = now + (uint64_t)c->o.deadline_ms * NS_PER_MS;
    c->stats.submitted++;
    send_request(c, s, c->primary, now);
    return 0;
}

struct call {
    bool done;
    int rc, copy_rc;
    int32_t status;
    struct evr_buf *resp;
};

static void call_done(void *arg, int rc, int32_t status, const uint8_t *body,
                      uint32_t len, uint64_t op)
{
    struct call *k = arg;
    k->done = true;
    k->rc = rc;
    k->status = status;
    if (rc == 0 && k->resp != NULL) {
        evr_buf_reset(k->resp);
        k->copy_rc = evr_buf_put(k->resp, body, len);
    }
}

int evr_client_call(struct evr_client *c, uint32_t session, const void *req,
                    uint32_t len, struct evr_buf *resp, int32_t *status,
                    struct evr_err *err)
{
    if (c->in_poll) {
        return evr_err_set(err, EVR_ESTATE, "evr_client_call from a "
                           "callback");
    }
    struct call k = {.resp = resp};
    int rc = evr_client_submit(c, session, req, len, call_done, &k);
    if (rc != 0) {
        return evr_err_set(err, rc, "request of %u bytes on session %u: %s",
                           len, session, evr_strerror(rc));
    }
    while (!k.done && rc >= 0) {
        rc = evr_client_poll(c, 1000);
    }
    if (rc < 0) {
        return evr_err_set(err, rc, "%s", c->problem);
    }
    if (k.rc != 0) {
        const struct session *s = &c->s[session];
        return evr_err_set(err, k.rc, "no reply within %u ms (request %llu "
                           "last sent to replica %u, %s)%s%s",
                           c->o.deadline_ms,
                           (unsigned long long)s->request_no, s->target,
                           c->conns[s->target].name,
                           c->problem[0] ? "; last problem: " : "",
                           c->problem);
    }
    if (status != NULL) {
        *status = k.status;
    }
    return k.copy_rc ? evr_err_set(err, k.copy_rc, "response of %zu bytes "
                                   "does not fit", resp ? resp->len_max : 0)
                     : 0;
}

/* ------------------------------------------------------------ status */

static bool all_answered(const struct evr_client *c, const uint64_t *before)
{
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->seen[i].answers == before[i]) {
            return false;
        }
    }
    return true;
}

int evr_client_status(struct evr_client *c, struct evr_replica_status *out,
                      uint32_t timeout_ms)
{
    if (c->in_poll) {
        return EVR_ESTATE;
    }
    uint64_t before[EVR_CLIENT_REPLICAS_MAX];
    uint64_t now = evr_now_ns();
    uint64_t end = now + (uint64_t)timeout_ms * NS_PER_MS;
    for (uint32_t i = 0; i < c->n; i++) {
        before[i] = c->seen[i].answers;
        if (c->conns[i].state == CONN_DOWN) {
            c->conns[i].retry_ns = now; /* try at once */
        }
    }
    ask_status(c, now, true);
    while (!all_answered(c, before) && now < end) {
        int rc = evr_client_poll(c, (uint32_t)((end - now + NS_PER_MS - 1) /
                                               NS_PER_MS));
        if (rc < 0) {
            return rc;
        }
        now = evr_now_ns();
    }
    int answered = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        bool fresh = c->seen[i].answers != before[i];
        memset(&out[i], 0, sizeof out[i]);
        if (fresh) {
            out[i] = c->seen[i].st;
            answered++;
        }
        out[i].reachable = fresh;
    }
    return answered;
}

/* ------------------------------------------------------------ accessors */

uint32_t evr_client_replicas(const struct evr_client *c)
{
    return c->n;
}

const char *evr_client_addr(const struct evr_client *c, uint32_t i)
{
    assert(i < c->n);
    return c->conns[i].name;
}

uint32_t evr_client_primary(const struct evr_client *c)
{
    return c->primary;
}

uint64_t evr_client_session_id(const struct evr_client *c, uint32_t session)
{
    assert(session < c->o.sessions);
    return c->s[session].id;
}

const char *evr_client_problem(const struct evr_client *c)
{
    return c->problem;
}

void evr_client_stats(const struct evr_client *c, struct evr_client_stats *out)
{
    *out = c->stats;
}
