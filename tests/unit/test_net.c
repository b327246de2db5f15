/* The server's connections (server/net.h): client routes survive other
 * connections closing (deletion from the open-addressing table keeps every
 * other route reachable), routes of a closed connection are gone, and a
 * connection that sends a bad header is closed. A real libuv loop on
 * loopback, clients as plain sockets. */
#include "tests/unit/helpers/cm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/rng.h"
#include "server/net.h"

#define CONNS 24
#define CLIENTS 600 /* routes_max 1024: long probe runs in 2048 slots */

static uv_loop_t loop;
static struct net *net;
static struct net_conn *seen[CONNS]; /* by the index each socket sends */
static int fds[CONNS];
static char addr[64];

static bool on_frame(void *data, struct net_conn *c,
                     const struct evr_frame_hdr *h, const uint8_t *frame,
                     size_t len)
{
    (void)data;
    (void)frame;
    (void)len;
    assert_true(h->view < CONNS);
    seen[h->view] = c;
    return true;
}

static void on_read_done(void *data)
{
    (void)data;
}

static void on_log(void *data, int level, const char *fmt, ...)
{
    (void)data;
    (void)level;
    (void)fmt;
}

static void spin(int ms)
{
    for (int i = 0; i < ms; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

static int dial(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* A STATUS frame whose view field says which socket sent it. */
static void hello(int fd, uint64_t index)
{
    struct evr_buf b;
    evr_buf_init(&b, 1024);
    struct evr_frame_hdr h = {.type = EVR_MSG_STATUS, .cluster = 1,
                              .sender = EVR_SENDER_CLIENT, .view = index};
    int rc;
    size_t start = evr_frame_begin(&b, &h, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(evr_frame_end(&b, start), 0);
    assert_int_equal(write(fd, b.data, b.len), (ssize_t)b.len);
    evr_buf_free(&b);
}

/* Bytes waiting on fd (reads them all). */
static size_t drain(int fd)
{
    uint8_t buf[65536];
    size_t total = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k <= 0) {
            return total;
        }
        total += (size_t)k;
    }
}

static void start(void)
{
    int probe = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(probe, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(probe, (struct sockaddr *)&a, &len), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    close(probe);
    const char *addrs[1] = {addr};
    struct net_opts o = {.cluster_id = 1, .body_max = 1u << 20,
                         .connections_max = 64, .out_bytes_max = 1u << 20,
                         .routes_max = 1024, .self = 0, .replicas = 1,
                         .addrs = addrs, .on_frame = on_frame,
                         .on_read_done = on_read_done, .log = on_log};
    uv_loop_init(&loop);
    struct evr_err err;
    assert_int_equal(net_start(&loop, &o, &net, &err), 0);
    for (uint64_t i = 0; i < CONNS; i++) {
        fds[i] = dial();
        hello(fds[i], i);
    }
    spin(200);
    for (int i = 0; i < CONNS; i++) {
        assert_non_null(seen[i]);
    }
}

static void stop(void)
{
    for (int i = 0; i < CONNS; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    net_stop(net);
    uv_run(&loop, UV_RUN_DEFAULT);
    net_free(net);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_routes_survive_closes(void **state)
{
    (void)state;
    start();
    struct evr_rng rng;
    evr_rng_seed(&rng, 7);
    static uint64_t client[CLIENTS];
    static int owner[CLIENTS];
    for (int k = 0; k < CLIENTS; k++) {
        /* k * 2048 + 1 all hash to one home slot of the 2048: one probe
         * run of 600 entries, wrapping around the table */
        client[k] = (uint64_t)k * 2048 + 1;
        owner[k] = (int)evr_rng_below(&rng, CONNS);
        net_route(net, client[k], seen[owner[k]]);
    }
    /* close every third connection; the server notices and drops them */
    for (int i = 0; i < CONNS; i += 3) {
        close(fds[i]);
        fds[i] = -1;
    }
    spin(200);
    assert_int_equal(net_open_count(net), CONNS - CONNS / 3);
    uint8_t frame[16] = {0};
    size_t want[CONNS] = {0};
    for (int k = 0; k < CLIENTS; k++) {
        net_reply(net, client[k], frame, sizeof frame);
        if (fds[owner[k]] >= 0) {
            want[owner[k]] += sizeof frame;
        }
    }
    struct net_stats st;
    net_stats(net, &st);
    spin(200);
    for (int i = 0; i < CONNS; i++) {
        if (fds[i] >= 0) {
            assert_int_equal(drain(fds[i]), want[i]);
        }
    }
    /* the closed connections' routes are gone, the others all found */
    size_t lost = 0;
    for (int k = 0; k < CLIENTS; k++) {
        lost += fds[owner[k]] < 0;
    }
    assert_int_equal(st.replies_unrouted, lost);
    stop();
}

static void test_bad_header_closes(void **state)
{
    (void)state;
    start();
    uint8_t junk[64];
    memset(junk, 0xab, sizeof junk);
    assert_int_equal(write(fds[1], junk, sizeof junk), 64);
    spin(200);
    assert_int_equal(net_open_count(net), CONNS - 1);
    struct pollfd p = {.fd = fds[1], .events = POLLIN};
    assert_int_equal(poll(&p, 1, 1000), 1);
    char c;
    assert_int_equal(read(fds[1], &c, 1), 0); /* EOF: closed by the server */
    struct net_stats st;
    net_stats(net, &st);
    assert_int_equal(st.frames_bad, 1);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_survive_closes),
        cmocka_unit_test(test_bad_header_closes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
