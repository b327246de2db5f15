/* The client library (include/evr/client.h) against an in-process fake
 * replica set: three listening sockets on 127.0.0.1, served by one thread
 * that answers STATUS and REQUEST frames the way the server does (only the
 * primary replies, on the connection the request came on; at most once per
 * (client, request_no)) and can be told to go quiet, switch primary, or
 * send garbage. Checked: primary discovery, retry to a new primary with the
 * same request_no, the deadline, a bad frame from a replica (closed,
 * reopened, request resent), several sessions on one connection, STATUS
 * with a replica silent, and the API's refusals. */
#include "tests/unit/helpers/cm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "include/evr/client.h"
#include "replication/msg.h"

#define N 3
#define CL 1
#define CONNS_MAX 64
#define LOG_MAX 4096
#define IN_MAX (1u << 21)
#define FAKE_COUNTERS 3

struct fconn {
    int fd, replica, id;
    uint8_t *in;
    size_t in_len;
};

struct logged {
    int replica, conn;
    uint64_t client, no;
};

struct fake {
    pthread_t thread;
    pthread_mutex_t mu;
    int lfd[N];
    char cluster[128];
    struct fconn conns[CONNS_MAX];
    int nconns, next_id;
    bool stop;
    /* behaviour, under mu */
    uint32_t primary;
    uint64_t view;
    bool mute_requests[N], mute_status[N];
    int garbage[N]; /* send this many garbage frames instead of replies */
    /* what happened, under mu */
    struct logged log[LOG_MAX];
    int nlog;
    int bad_frames;
    uint64_t op;
    uint64_t seen_client[LOG_MAX], seen_no[LOG_MAX], seen_op[LOG_MAX];
    int nseen;
};

static struct fake F;

/* ------------------------------------------------------------ the fake */

/* cmocka's asserts belong to the test thread; the fake just stops. */
static void fake_must(bool ok)
{
    if (!ok) {
        fprintf(stderr, "fake replica: encoding failed\n");
        abort();
    }
}

static void fsend(int fd, const struct evr_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t k = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (k <= 0) {
            return;
        }
        off += (size_t)k;
    }
}

static void put_status(struct evr_buf *b, int r)
{
    struct evr_frame_hdr h = {.type = EVR_MSG_STATUS_REPLY, .cluster = CL,
                              .sender = (uint32_t)r, .view = F.view};
    int rc;
    size_t start = evr_frame_begin(b, &h, &rc);
    evr_buf_put_u32(b, (uint32_t)r);
    evr_buf_put_u32(b, N);
    evr_buf_put_u8(b, F.primary == (uint32_t)r);
    evr_buf_put_u8(b, 0);
    evr_buf_put_u8(b, 0);
    evr_buf_put_u64(b, F.view);
    evr_buf_put_u64(b, F.op);
    evr_buf_put_u64(b, F.op);
    evr_buf_put_u64(b, F.op);
    evr_msg_put_h128(b, (evr_h128){1, 2});
    evr_msg_put_h128(b, (evr_h128){F.op, 7});
    evr_buf_put_u32(b, FAKE_COUNTERS);
    for (int i = 0; i < FAKE_COUNTERS; i++) {
        evr_buf_put_u64(b, 100u * (uint64_t)r + (uint64_t)i);
    }
    fake_must(rc == 0 && evr_frame_end(b, start) == 0);
}

static uint64_t op_for(uint64_t client, uint64_t no)
{
    for (int i = 0; i < F.nseen; i++) {
        if (F.seen_client[i] == client && F.seen_no[i] == no) {
            return F.seen_op[i];
        }
    }
    F.seen_client[F.nseen] = client;
    F.seen_no[F.nseen] = no;
    F.seen_op[F.nseen] = ++F.op;
    return F.seen_op[F.nseen++];
}

static void put_reply(struct evr_buf *b, int r, const struct evr_msg *m)
{
    struct evr_frame_hdr h = {.type = EVR_MSG_REPLY, .cluster = CL,
                              .sender = (uint32_t)r, .view = F.view};
    int rc;
    size_t start = evr_frame_begin(b, &h, &rc);
    evr_buf_put_u64(b, m->u.request.client);
    evr_buf_put_u64(b, m->u.request.request_no);
    evr_buf_put_u64(b, op_for(m->u.request.client, m->u.request.request_no));
    evr_buf_put_u32(b, 0);
    evr_msg_put_bytes32(b, m->u.request.data, m->u.request.len);
    fake_must(rc == 0 && evr_frame_end(b, start) == 0);
}

static void on_request(struct fconn *k, const struct evr_msg *m,
                       struct evr_buf *out)
{
    if (F.nlog < LOG_MAX) {
        F.log[F.nlog++] = (struct logged){k->replica, k->id,
                                          m->u.request.client,
                                          m->u.request.request_no};
    }
    int r = k->replica;
    if (F.primary != (uint32_t)r || F.mute_requests[r]) {
        return; /* a backup drops it silently */
    }
    if (F.garbage[r] > 0) {
        F.garbage[r]--;
        uint8_t junk[EVR_FRAME_HEADER_SIZE];
        memset(junk, 0xab, sizeof junk);
        evr_buf_put(out, junk, sizeof junk);
        return;
    }
    put_reply(out, r, m);
}

/* Handles k's whole frames; false to close it. */
static bool fake_frames(struct fconn *k)
{
    struct evr_buf out;
    evr_buf_init(&out, IN_MAX);
    size_t off = 0;
    bool ok = true;
    while (ok && k->in_len - off >= EVR_FRAME_HEADER_SIZE) {
        struct evr_frame_hdr h;
        struct evr_msg m;
        ok = evr_frame_peek(k->in + off, CL, IN_MAX, &h, NULL) == 0;
        size_t total = EVR_FRAME_HEADER_SIZE + (ok ? h.body_size : 0);
        if (!ok || k->in_len - off < total) {
            break;
        }
        ok = evr_msg_decode(k->in + off, total, CL, IN_MAX, &m, NULL) == 0 &&
             m.h.sender == EVR_SENDER_CLIENT;
        pthread_mutex_lock(&F.mu);
        if (ok && m.h.type == EVR_MSG_STATUS && !F.mute_status[k->replica]) {
            put_status(&out, k->replica);
        } else if (ok && m.h.type == EVR_MSG_REQUEST) {
            on_request(k, &m, &out);
        }
        F.bad_frames += !ok;
        pthread_mutex_unlock(&F.mu);
        off += total;
    }
    memmove(k->in, k->in + off, k->in_len - off);
    k->in_len -= off;
    fsend(k->fd, &out);
    evr_buf_free(&out);
    return ok;
}

static void fake_close(int i)
{
    close(F.conns[i].fd);
    free(F.conns[i].in);
    F.conns[i] = F.conns[--F.nconns];
}

static void fake_accept(int r)
{
    int fd = accept(F.lfd[r], NULL, NULL);
    if (fd < 0) {
        return;
    }
    if (F.nconns == CONNS_MAX) {
        close(fd);
        return;
    }
    F.conns[F.nconns++] = (struct fconn){.fd = fd, .replica = r,
                                         .id = ++F.next_id,
                                         .in = malloc(IN_MAX)};
}

static void fake_read(int i)
{
    struct fconn *k = &F.conns[i];
    ssize_t n = recv(k->fd, k->in + k->in_len, IN_MAX - k->in_len, 0);
    if (n <= 0) {
        fake_close(i);
        return;
    }
    k->in_len += (size_t)n;
    if (!fake_frames(k)) {
        fake_close(i);
    }
}

static void *fake_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p[N + CONNS_MAX];
        pthread_mutex_lock(&F.mu);
        bool stop = F.stop;
        pthread_mutex_unlock(&F.mu);
        if (stop) {
            break;
        }
        for (int r = 0; r < N; r++) {
            p[r] = (struct pollfd){.fd = F.lfd[r], .events = POLLIN};
        }
        int nc = F.nconns;
        for (int i = 0; i < nc; i++) {
            p[N + i] = (struct pollfd){.fd = F.conns[i].fd, .events = POLLIN};
        }
        if (poll(p, (nfds_t)(N + nc), 10) <= 0) {
            continue;
        }
        for (int i = nc - 1; i >= 0; i--) { /* closing moves the last */
            if (p[N + i].revents != 0) {
                fake_read(i);
            }
        }
        for (int r = 0; r < N; r++) {
            if (p[r].revents & POLLIN) {
                fake_accept(r);
            }
        }
    }
    return NULL;
}

static int fake_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.mu, NULL);
    size_t at = 0;
    for (int r = 0; r < N; r++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof a;
        F.lfd[r] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(F.lfd[r] >= 0);
        assert_int_equal(bind(F.lfd[r], (struct sockaddr *)&a, sizeof a), 0);
        assert_int_equal(listen(F.lfd[r], 16), 0);
        assert_int_equal(getsockname(F.lfd[r], (struct sockaddr *)&a, &len),
                         0);
        at += (size_t)snprintf(F.cluster + at, sizeof F.cluster - at,
                               "%s127.0.0.1:%u", r ? "," : "",
                               ntohs(a.sin_port));
    }
    assert_int_equal(pthread_create(&F.thread, NULL, fake_main, NULL), 0);
    return 0;
}

static int fake_teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&F.mu);
    F.stop = true;
    pthread_mutex_unlock(&F.mu);
    pthread_join(F.thread, NULL);
    while (F.nconns > 0) {
        fake_close(0);
    }
    for (int r = 0; r < N; r++) {
        close(F.lfd[r]);
    }
    pthread_mutex_destroy(&F.mu);
    return 0;
}

static void set_primary(uint32_t p, uint64_t view)
{
    pthread_mutex_lock(&F.mu);
    F.primary = p;
    F.view = view;
    pthread_mutex_unlock(&F.mu);
}

static void mute_status(bool mute)
{
    pthread_mutex_lock(&F.mu);
    for (int r = 0; r < N; r++) {
        F.mute_status[r] = mute;
    }
    pthread_mutex_unlock(&F.mu);
}

/* Requests of client id seen by replica r (any r when r < 0). */
static int logged(int r, uint64_t client, uint64_t no, int *conn)
{
    int count = 0;
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.nlog; i++) {
        const struct logged *l = &F.log[i];
        if ((r < 0 || l->replica == r) && l->client == client &&
            l->no == no) {
            count++;
            if (conn != NULL) {
                *conn = l->conn;
            }
        }
    }
    pthread_mutex_unlock(&F.mu);
    return count;
}

/* ------------------------------------------------------------ helpers */

static struct evr_client *client(uint32_t sessions, uint32_t try_ms,
                                 uint32_t deadline_ms)
{
    struct evr_client_opts o;
    evr_client_opts_default(&o);
    o.cluster = F.cluster;
    o.sessions = sessions;
    o.try_timeout_ms = try_ms;
    o.deadline_ms = deadline_ms;
    struct evr_client *c = NULL;
    struct evr_err err = {0};
    assert_int_equal(evr_client_new(&o, &c, &err), 0);
    return c;
}

static void wait_primary(struct evr_client *c, uint32_t p)
{
    uint64_t end = evr_now_ns() + 3000000000ull;
    while (evr_client_primary(c) != p && evr_now_ns() < end) {
        assert_true(evr_client_poll(c, 10) >= 0);
    }
    assert_int_equal(evr_client_primary(c), p);
}

/* A blocking call of "msg"; checks the echo. Returns elapsed ms. */
static uint64_t call_ok(struct evr_client *c, uint32_t session,
                        const char *msg)
{
    struct evr_buf resp;
    evr_buf_init(&resp, 1u << 20);
    int32_t status = -1;
    struct evr_err err = {0};
    uint64_t t0 = evr_now_ns();
    int rc = evr_client_call(c, session, msg, (uint32_t)strlen(msg), &resp,
                             &status, &err);
    if (rc != 0) {
        fail_msg("call: %s", err.msg);
    }
    assert_int_equal(status, 0);
    assert_int_equal(resp.len, strlen(msg));
    assert_memory_equal(resp.data, msg, resp.len);
    evr_buf_free(&resp);
    return (evr_now_ns() - t0) / 1000000u;
}

/* ------------------------------------------------------------ tests */

static void test_discovery(void **state)
{
    (void)state;
    set_primary(2, 2);
    struct evr_client *c = client(1, 5000, 10000);
    assert_int_equal(evr_client_replicas(c), N);
    wait_primary(c, 2);
    uint64_t id = evr_client_session_id(c, 0);
    assert_true(id != 0);
    call_ok(c, 0, "hello");
    assert_int_equal(logged(2, id, 1, NULL), 1);
    assert_int_equal(logged(-1, id, 1, NULL), 1); /* straight there */

    struct evr_replica_status st[N];
    assert_int_equal(evr_client_status(c, st, 2000), N);
    for (uint32_t i = 0; i < N; i++) {
        assert_true(st[i].reachable);
        assert_int_equal(st[i].replica, i);
        assert_int_equal(st[i].replicas, N);
        assert_int_equal(st[i].view, 2);
        assert_int_equal(st[i].primary, i == 2);
        assert_int_equal(st[i].applied, 1);
        assert_int_equal(st[i].root.lo, 1);
        assert_int_equal(st[i].ncounters, FAKE_COUNTERS);
        assert_int_equal(st[i].counters[2], 100 * i + 2);
    }
    pthread_mutex_lock(&F.mu);
    assert_int_equal(F.bad_frames, 0);
    pthread_mutex_unlock(&F.mu);
    evr_client_free(c);
}

static void test_failover_same_request_no(void **state)
{
    (void)state;
    set_primary(0, 0);
    struct evr_client *c = client(1, 200, 10000);
    wait_primary(c, 0);
    uint64_t id = evr_client_session_id(c, 0);
    call_ok(c, 0, "one");
    /* The primary changes; the old one drops what it gets. The client
     * does not know until a try times out and it asks STATUS: first every
     * STATUS it sent on connecting is answered (or dropped), so that no
     * answer from after the change can arrive early. */
    mute_status(true);
    uint64_t quiet = evr_now_ns() + 300000000ull;
    while (evr_now_ns() < quiet) {
        assert_true(evr_client_poll(c, 10) >= 0);
    }
    pthread_mutex_lock(&F.mu);
    F.mute_requests[0] = true;
    pthread_mutex_unlock(&F.mu);
    set_primary(1, 1);
    mute_status(false);
    uint64_t ms = call_ok(c, 0, "two");
    assert_true(ms >= 200);
    assert_true(ms < 3000);
    assert_true(logged(0, id, 2, NULL) >= 1); /* first to the old one */
    assert_true(logged(1, id, 2, NULL) >= 1); /* then the same number */
    assert_int_equal(logged(-1, id, 3, NULL), 0);
    assert_int_equal(evr_client_primary(c), 1);
    struct evr_client_stats s;
    evr_client_stats(c, &s);
    assert_true(s.resends >= 1);
    assert_int_equal(s.completed, 2);
    evr_client_free(c);
}

static void test_deadline(void **state)
{
    (void)state;
    set_primary(0, 0);
    pthread_mutex_lock(&F.mu);
    for (int r = 0; r < N; r++) {
        F.mute_requests[r] = true;
    }
    pthread_mutex_unlock(&F.mu);
    struct evr_client *c = client(1, 50, 400);
    uint64_t id = evr_client_session_id(c, 0);
    struct evr_err err = {0};
    uint64_t t0 = evr_now_ns();
    int rc = evr_client_call(c, 0, "x", 1, NULL, NULL, &err);
    uint64_t ms = (evr_now_ns() - t0) / 1000000u;
    assert_int_equal(rc, EVR_ETIMEDOUT);
    assert_non_null(strstr(err.msg, "no reply within 400 ms"));
    assert_true(ms >= 400 && ms < 2000);
    /* Retried with the same number, round-robin over the replicas. */
    int where = 0;
    for (int r = 0; r < N; r++) {
        where += logged(r, id, 1, NULL) > 0;
    }
    assert_int_equal(where, N);
    struct evr_client_stats s;
    evr_client_stats(c, &s);
    assert_int_equal(s.timed_out, 1);
    assert_true(s.resends >= 3);
    /* The session goes on with the next number. */
    pthread_mutex_lock(&F.mu);
    F.mute_requests[0] = false;
    pthread_mutex_unlock(&F.mu);
    call_ok(c, 0, "after");
    assert_int_equal(logged(0, id, 2, NULL), 1);
    evr_client_free(c);
}

static void test_bad_frame_reconnects(void **state)
{
    (void)state;
    set_primary(0, 0);
    struct evr_client *c = client(1, 5000, 10000);
    wait_primary(c, 0);
    uint64_t id = evr_client_session_id(c, 0);
    pthread_mutex_lock(&F.mu);
    F.garbage[0] = 1;
    pthread_mutex_unlock(&F.mu);
    /* Garbage instead of the reply: the client closes, reconnects after
     * its backoff and resends on the new connection, well before the
     * 5 s try timeout. */
    uint64_t ms = call_ok(c, 0, "retry me");
    assert_true(ms < 2000);
    assert_int_equal(logged(0, id, 1, NULL), 2);
    struct evr_client_stats s;
    evr_client_stats(c, &s);
    assert_int_equal(s.frames_bad, 1);
    assert_int_equal(s.disconnects, 1);
    assert_true(s.connects >= N + 1);
    assert_non_null(strstr(evr_client_problem(c), "replica 0"));
    call_ok(c, 0, "and again");
    evr_client_free(c);
}

struct done_rec {
    int calls, rc;
    char body[32];
    uint64_t op;
    struct evr_client *c;
};

static void on_done(void *arg, int rc, int32_t status, const uint8_t *body,
                    uint32_t len, uint64_t op)
{
    struct done_rec *d = arg;
    d->calls++;
    d->rc = rc;
    d->op = op;
    assert_int_equal(status, 0);
    assert_true(len < sizeof d->body);
    memcpy(d->body, body, len);
    d->body[len] = '\0';
    /* no re-entry from a callback */
    assert_int_equal(evr_client_poll(d->c, 0), EVR_ESTATE);
    assert_int_equal(evr_client_call(d->c, 0, "x", 1, NULL, NULL, NULL),
                     EVR_ESTATE);
}

static void test_sessions_share_connection(void **state)
{
    (void)state;
    enum { S = 8 };
    set_primary(0, 0);
    struct evr_client *c = client(S, 5000, 10000);
    wait_primary(c, 0);
    struct done_rec d[S];
    char msg[S][32];
    memset(d, 0, sizeof d);
    for (int round = 1; round <= 2; round++) {
        for (int i = 0; i < S; i++) {
            d[i].c = c;
            snprintf(msg[i], sizeof msg[i], "r%d s%d", round, i);
            assert_int_equal(evr_client_submit(c, (uint32_t)i, msg[i],
                                               (uint32_t)strlen(msg[i]),
                                               on_done, &d[i]),
                             0);
        }
        assert_int_equal(evr_client_submit(c, 0, "busy", 4, on_done, &d[0]),
                         EVR_EBUSY);
        int ended = 0;
        uint64_t end = evr_now_ns() + 3000000000ull;
        while (ended < S && evr_now_ns() < end) {
            int k = evr_client_poll(c, 50);
            assert_true(k >= 0);
            ended += k;
        }
        assert_int_equal(ended, S);
        for (int i = 0; i < S; i++) {
            assert_int_equal(d[i].calls, round);
            assert_int_equal(d[i].rc, 0);
            assert_string_equal(d[i].body, msg[i]);
        }
    }
    /* Distinct ids, every request on one connection to replica 0. */
    int conn0 = -1;
    for (int i = 0; i < S; i++) {
        uint64_t id = evr_client_session_id(c, (uint32_t)i);
        for (int k = 0; k < i; k++) {
            assert_true(evr_client_session_id(c, (uint32_t)k) != id);
        }
        int conn = -2;
        assert_int_equal(logged(0, id, 2, &conn), 1);
        conn0 = conn0 == -1 ? conn : conn0;
        assert_int_equal(conn, conn0);
    }
    evr_client_free(c);
}

static void test_status_silent_replica(void **state)
{
    (void)state;
    set_primary(1, 4);
    pthread_mutex_lock(&F.mu);
    F.mute_status[2] = true;
    pthread_mutex_unlock(&F.mu);
    struct evr_client *c = client(1, 1000, 10000);
    struct evr_replica_status st[N];
    uint64_t t0 = evr_now_ns();
    assert_int_equal(evr_client_status(c, st, 300), 2);
    assert_true((evr_now_ns() - t0) / 1000000u >= 300);
    assert_true(st[0].reachable && st[1].reachable && !st[2].reachable);
    assert_true(st[1].primary && !st[0].primary);
    assert_int_equal(st[2].view, 0);
    assert_int_equal(evr_client_primary(c), 1);
    evr_client_free(c);
}

static void test_refusals(void **state)
{
    (void)state;
    struct evr_client_opts o;
    struct evr_client *c = NULL;
    struct evr_err err = {0};
    evr_client_opts_default(&o);
    o.cluster = F.cluster;
    o.sessions = 0;
    assert_int_equal(evr_client_new(&o, &c, &err), EVR_EINVAL);
    o.sessions = EVR_CLIENT_SESSIONS_MAX + 1;
    assert_int_equal(evr_client_new(&o, &c, &err), EVR_EINVAL);
    o.sessions = 1;
    o.cluster = "127.0.0.1";
    assert_int_equal(evr_client_new(&o, &c, &err), EVR_EINVAL);
    assert_non_null(strstr(err.msg, "host:port"));
    o.cluster = "127.0.0.1:1,,127.0.0.1:2";
    assert_int_equal(evr_client_new(&o, &c, &err), EVR_EINVAL);
    assert_null(c);
    c = client(2, 1000, 1000);
    static uint8_t big[EVR_REQUEST_BYTES_MAX + 1];
    struct done_rec d = {.c = c};
    assert_int_equal(evr_client_submit(c, 2, "x", 1, on_done, &d),
                     EVR_EINVAL);
    assert_int_equal(evr_client_submit(c, 0, "x", 1, NULL, NULL), EVR_EINVAL);
    assert_int_equal(evr_client_submit(c, 1, big, sizeof big, on_done, &d),
                     EVR_ELIMIT);
    evr_client_free(c);
    evr_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_discovery, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_failover_same_request_no,
                                        fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_deadline, fake_setup,
                                        fake_teardown),
        cmocka_unit_test_setup_teardown(test_bad_frame_reconnects,
                                        fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_sessions_share_connection,
                                        fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_status_silent_replica,
                                        fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, fake_setup,
                                        fake_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
