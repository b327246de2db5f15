/* Client connections: internal.h gives the life cycle, client.h the rules. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/internal.h"

/* ------------------------------------------------------------ setup */

static int split_addr(const char *addr, char *host, size_t host_n,
                      char *port, size_t port_n)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0') {
        return -1;
    }
    const char *h = addr;
    size_t hn = (size_t)(colon - addr);
    if (h[0] == '[') { /* [v6]:port */
        if (hn < 3 || h[hn - 1] != ']') {
            return -1;
        }
        h++;
        hn -= 2;
    }
    if (hn >= host_n || strlen(colon + 1) >= port_n) {
        return -1;
    }
    memcpy(host, h, hn);
    host[hn] = '\0';
    snprintf(port, port_n, "%s", colon + 1);
    return strspn(port, "0123456789") == strlen(port) ? 0 : -1;
}

static int resolve(struct conn *k, const char *addr, struct evr_err *err)
{
    char host[EVR_CLIENT_ADDR_MAX + 1], port[16];
    if (split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        return evr_err_set(err, EVR_EINVAL, "address '%s' is not host:port",
                           addr);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0 || res == NULL) {
        return evr_err_set(err, EVR_EINVAL, "address '%s': %s", addr,
                           gai_strerror(gai));
    }
    memcpy(&k->addr, res->ai_addr, res->ai_addrlen);
    k->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int conn_init(struct conn *k, uint32_t index, const char *addr,
              size_t out_bytes_max, size_t body_max, struct evr_err *err)
{
    memset(k, 0, sizeof *k);
    k->index = index;
    k->fd = -1;
    k->state = CONN_DOWN;
    k->backoff_ms = CONN_BACKOFF_MIN_MS;
    k->in_max = body_max + EVR_FRAME_HEADER_SIZE;
    evr_buf_init(&k->out, out_bytes_max);
    if (strlen(addr) > EVR_CLIENT_ADDR_MAX) {
        return evr_err_set(err, EVR_EINVAL, "address '%.40s...' is longer "
                           "than %d bytes", addr, EVR_CLIENT_ADDR_MAX);
    }
    snprintf(k->name, sizeof k->name, "%s", addr);
    return resolve(k, addr, err);
}

void conn_free(struct conn *k)
{
    if (k->fd >= 0) {
        close(k->fd);
        k->fd = -1;
    }
    evr_buf_free(&k->out);
    free(k->in);
    k->in = NULL;
}

/* ------------------------------------------------------------ state */

static void set_problem(struct evr_client *c, const struct conn *k,
                        const char *why)
{
    snprintf(c->problem, sizeof c->problem, "replica %u (%s): %s", k->index,
             k->name, why);
}

void conn_close(struct evr_client *c, struct conn *k, uint64_t now_ns,
                const char *why)
{
    assert(k->fd >= 0);
    set_problem(c, k, why);
    close(k->fd);
    k->fd = -1;
    if (k->state == CONN_OPEN) {
        c->stats.disconnects++;
    }
    k->state = CONN_DOWN;
    k->retry_ns = now_ns + (uint64_t)k->backoff_ms * 1000000u;
    k->backoff_ms = k->backoff_ms * 2 > CONN_BACKOFF_MAX_MS
                        ? CONN_BACKOFF_MAX_MS
                        : k->backoff_ms * 2;
    evr_buf_reset(&k->out);
    k->out_off = 0;
    k->in_len = 0;
}

static void opened(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    k->state = CONN_OPEN;
    k->want_status = true; /* learn its view */
    c->stats.connects++;
    client_on_open(c, k, now_ns);
}

void conn_start(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    assert(k->state == CONN_DOWN && k->fd < 0);
    k->gen++;
    k->fd = socket(k->addr.ss_family,
                   SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (k->fd < 0) {
        k->retry_ns = now_ns + (uint64_t)CONN_BACKOFF_MAX_MS * 1000000u;
        set_problem(c, k, strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->state = CONN_CONNECTING;
    if (connect(k->fd, (struct sockaddr *)&k->addr, k->addr_len) == 0) {
        opened(c, k, now_ns);
    } else if (errno != EINPROGRESS) {
        conn_close(c, k, now_ns, strerror(errno));
    }
}

/* ------------------------------------------------------------ output */

int conn_frame(struct evr_client *c, struct conn *k, uint16_t type,
               const void *head, size_t head_len, const void *data,
               size_t data_len)
{
    if (k->state == CONN_DOWN) {
        return EVR_ESTATE;
    }
    if (k->out_off > 0) { /* keep the limit for unsent bytes */
        memmove(k->out.data, k->out.data + k->out_off,
                k->out.len - k->out_off);
        k->out.len -= k->out_off;
        k->out_off = 0;
    }
    size_t mark = k->out.len;
    struct evr_frame_hdr h = {.type = type, .cluster = c->o.cluster_id,
                              .sender = EVR_SENDER_CLIENT};
    int rc;
    size_t start = evr_frame_begin(&k->out, &h, &rc);
    rc = rc ? rc : evr_buf_put(&k->out, head, head_len);
    rc = rc ? rc : evr_buf_put(&k->out, data, data_len);
    rc = rc ? rc : evr_frame_end(&k->out, start);
    if (rc != 0) {
        k->out.len = mark;
        c->stats.frames_dropped++;
    }
    assert(k->out.len >= mark);
    return rc;
}

void conn_flush(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    if (k->state != CONN_OPEN || k->out_off == k->out.len) {
        return;
    }
    ssize_t n = send(k->fd, k->out.data + k->out_off,
                     k->out.len - k->out_off, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(c, k, now_ns, strerror(errno));
        return;
    }
    k->out_off += n > 0 ? (size_t)n : 0;
    if (k->out_off == k->out.len) {
        evr_buf_reset(&k->out);
        k->out_off = 0;
    }
}

bool conn_pollfd(const struct conn *k, struct pollfd *p)
{
    if (k->fd < 0) {
        return false;
    }
    p->fd = k->fd;
    p->revents = 0;
    p->events = POLLIN;
    if (k->state == CONN_CONNECTING || k->out_off < k->out.len) {
        p->events |= POLLOUT;
    }
    return true;
}

/* ------------------------------------------------------------ input */

/* Room for `need` bytes in all; false past in_max. */
static bool in_room(struct conn *k, size_t need)
{
    if (need <= k->in_cap) {
        return true;
    }
    if (need > k->in_max) {
        return false;
    }
    size_t cap = k->in_cap ? k->in_cap : CONN_READ_BYTES;
    while (cap < need) {
        cap *= 2;
    }
    cap = cap > k->in_max ? k->in_max : cap;
    uint8_t *p = realloc(k->in, cap);
    if (p == NULL) {
        return false;
    }
    k->in = p;
    k->in_cap = cap;
    return true;
}

/* Cuts and handles every whole frame; closes k at a bad one. */
static void cut_frames(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    size_t off = 0;
    struct evr_err err;
    while (k->in_len - off >= EVR_FRAME_HEADER_SIZE) {
        struct evr_frame_hdr h;
        const uint8_t *p = k->in + off;
        size_t body_max = k->in_max - EVR_FRAME_HEADER_SIZE;
        int rc = evr_frame_peek(p, c->o.cluster_id, body_max, &h, &err);
        size_t total = rc ? 0 : EVR_FRAME_HEADER_SIZE + (size_t)h.body_size;
        if (rc == 0 && k->in_len - off < total) {
            break; /* the rest is still coming (total <= in_max) */
        }
        struct evr_msg m;
        rc = rc ? rc : evr_msg_decode(p, total, c->o.cluster_id, body_max,
                                      &m, &err);
        if (rc != 0) {
            c->stats.frames_bad++;
            conn_close(c, k, now_ns, err.msg);
            return;
        }
        c->stats.frames_in++;
        k->backoff_ms = CONN_BACKOFF_MIN_MS;
        client_on_frame(c, k, &m, now_ns);
        off += total;
    }
    memmove(k->in, k->in + off, k->in_len - off);
    k->in_len -= off;
}

static void conn_read(struct evr_client *c, struct conn *k, uint64_t now_ns)
{
    size_t want = k->in_len + CONN_READ_BYTES;
    if (!in_room(k, want > k->in_max ? k->in_max : want) ||
        k->in_len == k->in_cap) {
        conn_close(c, k, now_ns, "out of memory for input");
        return;
    }
    ssize_t n = recv(k->fd, k->in + k->in_len, k->in_cap - k->in_len, 0);
    if (n == 0) {
        conn_close(c, k, now_ns, "closed by the replica");
        return;
    }
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close(c, k, now_ns, strerror(errno));
        }
        return;
    }
    k->in_len += (size_t)n;
    cut_frames(c, k, now_ns);
}

static void connect_done(struct evr_client *c, struct conn *k,
                         uint64_t now_ns)
{
    int e = 0;
    socklen_t len = sizeof e;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0) {
        e = errno;
    }
    if (e != 0) {
        conn_close(c, k, now_ns, strerror(e));
        return;
    }
    opened(c, k, now_ns);
}

void conn_events(struct evr_client *c, struct conn *k, short revents,
                 uint64_t now_ns)
{
    assert(k->fd >= 0);
    if (k->state == CONN_CONNECTING) {
        if (revents & (POLLOUT | POLLERR | POLLHUP)) {
            connect_done(c, k, now_ns);
        }
        return;
    }
    if (revents & (POLLIN | POLLERR | POLLHUP)) {
        conn_read(c, k, now_ns);
    }
}
