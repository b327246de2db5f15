/*
 * evr-badinput — sends malformed input to a replica's port and checks that
 * the replica refuses it the way server.h says: the connection is closed
 * and the replica keeps serving.
 *
 *   evr-badinput ADDR [--cluster-id N] [--seed S] [--rounds R]
 *
 * Cases, each on a fresh connection: a truncated frame then EOF, a bad
 * header checksum, a bad body checksum, a wrong cluster id, an unknown
 * type, a body size over the limit, a REQUEST whose body does not decode,
 * a replica message claiming an unknown sender, and R rounds of random
 * bytes. For every case but the truncated one the server must close the
 * connection within 5 s; after every case a STATUS on a new connection must
 * be answered. Exit 0 when all held, 1 otherwise (each failure printed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/rng.h"
#include "replication/msg.h"

#define WAIT_MS 5000

static struct sockaddr_in addr;
static uint64_t cluster = 1;
static int failures;

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf(stderr, "evr-badinput: connect: %s\n", strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k <= 0) {
            return -1; /* the server may close before we finish: fine */
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* True when the peer closes the connection within WAIT_MS (bytes it sends
 * before closing are skipped). */
static int closed_by_peer(int fd)
{
    char junk[4096];
    for (int waited = 0; waited < WAIT_MS; waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        ssize_t k = recv(fd, junk, sizeof junk, 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
            return 1;
        }
    }
    return 0;
}

static void frame(struct evr_buf *b, uint16_t type, uint64_t cl,
                  uint32_t sender, const void *body, uint32_t len)
{
    struct evr_frame_hdr h = {.type = type, .cluster = cl, .sender = sender};
    int rc;
    size_t start = evr_frame_begin(b, &h, &rc);
    rc = rc ? rc : evr_buf_put(b, body, len);
    rc = rc ? rc : evr_frame_end(b, start);
    if (rc != 0) {
        fprintf(stderr, "evr-badinput: encoding failed\n");
        exit(2);
    }
}

/* A STATUS on a new connection gets a STATUS_REPLY. */
static int status_ok(void)
{
    int fd = dial();
    if (fd < 0) {
        return 0;
    }
    struct evr_buf b;
    evr_buf_init(&b, 1u << 20);
    frame(&b, EVR_MSG_STATUS, cluster, EVR_SENDER_CLIENT, NULL, 0);
    int ok = send_all(fd, b.data, b.len) == 0;
    uint8_t in[65536];
    size_t got = 0;
    for (int waited = 0; ok && waited < WAIT_MS; waited += 100) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        ssize_t k = recv(fd, in + got, sizeof in - got, 0);
        if (k <= 0) {
            break;
        }
        got += (size_t)k;
        struct evr_msg m;
        struct evr_err err;
        if (got >= EVR_FRAME_HEADER_SIZE &&
            got == EVR_FRAME_HEADER_SIZE + evr_load_u32(in + 20)) {
            ok = evr_msg_decode(in, got, cluster, 1u << 20, &m, &err) == 0 &&
                 m.h.type == EVR_MSG_STATUS_REPLY;
            evr_buf_free(&b);
            close(fd);
            return ok;
        }
    }
    evr_buf_free(&b);
    close(fd);
    return 0;
}

static void expect(const char *what, const void *p, size_t n, int must_close)
{
    int fd = dial();
    if (fd < 0) {
        failures++;
        return;
    }
    send_all(fd, p, n);
    if (!must_close) {
        shutdown(fd, SHUT_WR);
    }
    if (must_close && !closed_by_peer(fd)) {
        printf("FAIL %s: connection not closed\n", what);
        failures++;
    }
    close(fd);
    if (!status_ok()) {
        printf("FAIL %s: no STATUS answer afterwards\n", what);
        failures++;
        return;
    }
    printf("ok   %s\n", what);
}

static void cases(uint64_t seed, int rounds)
{
    struct evr_buf b;
    evr_buf_init(&b, 1u << 24);
    uint8_t req[20] = {0};
    evr_store_u64(req, 42);
    evr_store_u64(req + 8, 1);
    evr_store_u32(req + 16, 1000); /* says 1000 bytes, has none */
    frame(&b, EVR_MSG_REQUEST, cluster, EVR_SENDER_CLIENT, req, 20);
    expect("truncated frame", b.data, b.len / 2, 0);
    expect("malformed REQUEST body", b.data, b.len, 1);
    evr_buf_reset(&b);
    frame(&b, EVR_MSG_STATUS, cluster, EVR_SENDER_CLIENT, NULL, 0);
    b.data[50] ^= 1;
    expect("bad header checksum", b.data, b.len, 1);
    evr_buf_reset(&b);
    frame(&b, EVR_MSG_REQUEST, cluster, EVR_SENDER_CLIENT, req, 20);
    b.data[EVR_FRAME_HEADER_SIZE + 3] ^= 1;
    expect("bad body checksum", b.data, b.len, 1);
    evr_buf_reset(&b);
    frame(&b, EVR_MSG_STATUS, cluster + 1, EVR_SENDER_CLIENT, NULL, 0);
    expect("wrong cluster id", b.data, b.len, 1);
    evr_buf_reset(&b);
    frame(&b, 999, cluster, EVR_SENDER_CLIENT, NULL, 0);
    expect("unknown message type", b.data, b.len, 1);
    evr_buf_reset(&b);
    frame(&b, EVR_MSG_REQUEST, cluster, EVR_SENDER_CLIENT, req, 20);
    evr_store_u32(b.data + 20, 0x7fffffff); /* size over any limit */
    evr_h128_to_bytes(evr_hash128(b.data, 48, 0), b.data + 48);
    expect("oversized body size", b.data, b.len, 1);
    evr_buf_reset(&b);
    uint8_t ok_body[12] = {0};
    frame(&b, EVR_MSG_PREPARE_OK, cluster, 9, ok_body, sizeof ok_body);
    expect("message from an unknown replica", b.data, b.len, 1);
    struct evr_rng rng;
    evr_rng_seed(&rng, seed);
    for (int r = 0; r < rounds; r++) {
        uint8_t junk[512];
        size_t n = 64 + evr_rng_below(&rng, sizeof junk - 64);
        for (size_t i = 0; i < n; i++) {
            junk[i] = (uint8_t)evr_rng_next(&rng);
        }
        char what[64];
        snprintf(what, sizeof what, "random bytes #%d (%zu)", r + 1, n);
        expect(what, junk, n, 1);
    }
    evr_buf_free(&b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: evr-badinput HOST:PORT [--cluster-id N] "
                        "[--seed S] [--rounds R]\n");
        return 2;
    }
    uint64_t seed = 1;
    int rounds = 8;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--cluster-id") == 0) {
            cluster = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0) {
            seed = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        }
    }
    char host[64];
    const char *colon = strrchr(argv[1], ':');
    if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof host) {
        fprintf(stderr, "evr-badinput: want HOST:PORT\n");
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "evr-badinput: %s is not an IPv4 address\n", host);
        return 2;
    }
    if (!status_ok()) {
        fprintf(stderr, "evr-badinput: %s does not answer STATUS\n",
                argv[1]);
        return 1;
    }
    cases(seed, rounds);
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
