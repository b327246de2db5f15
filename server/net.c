/* Connections of the server: net.h gives the design. */
#include "server/net.h"

#include <assert.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK 65536
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 1000

struct peer {
    struct net *net;
    uint32_t index;
    struct sockaddr_storage addr;
    struct net_conn *c;      /* NULL while waiting to reconnect */
    uv_connect_t creq;
    uv_timer_t retry;
    uint32_t backoff_ms;
    bool logged_down;
};

struct route {
    uint64_t client;
    struct net_conn *c;      /* NULL: free slot */
};

struct net {
    uv_loop_t *loop;
    struct net_opts o;
    uv_tcp_t listener;
    uv_prepare_t flusher;
    struct peer peers[16];
    struct net_conn *conns;      /* list of every connection */
    struct net_conn *dirty;      /* connections with output to write */
    uint32_t nconns;
    uint64_t next_id;
    struct route *routes;        /* open addressing, 2 * routes_max */
    uint32_t nroutes;
    bool stopping;
    bool listening;              /* listener initialised */
    uint32_t handles;            /* listener, flusher, timers not closed */
    struct net_stats stats;
};

/* ------------------------------------------------------------ routes */

static size_t route_home(const struct net *n, uint64_t client);

static size_t route_slot(const struct net *n, uint64_t client)
{
    size_t slots = 2 * (size_t)n->o.routes_max;
    size_t s = route_home(n, client);
    while (n->routes[s].c != NULL && n->routes[s].client != client) {
        s = (s + 1) % slots;
    }
    return s;
}

static size_t route_home(const struct net *n, uint64_t client)
{
    return (size_t)((client * 0x9e3779b97f4a7c15ull) %
                    (2 * (size_t)n->o.routes_max));
}

/* Remembers that c carries client's route, to delete it when c closes. */
static void conn_note_route(struct net_conn *c, uint64_t client)
{
    if (c->nrouted == c->routed_cap) {
        uint32_t cap = c->routed_cap ? 2 * c->routed_cap : 4;
        uint64_t *p = realloc(c->routed, cap * sizeof *p);
        if (p == NULL) {
            return; /* the route stays until the table is cleared */
        }
        c->routed = p;
        c->routed_cap = cap;
    }
    c->routed[c->nrouted++] = client;
}

void net_route(struct net *n, uint64_t client, struct net_conn *c)
{
    size_t s = route_slot(n, client);
    if (n->routes[s].c == c) {
        return;
    }
    if (n->routes[s].c == NULL) {
        if (n->nroutes == n->o.routes_max) {
            n->o.log(n->o.data, 1, "client routes full (%u): cleared",
                     n->o.routes_max);
            memset(n->routes, 0, 2 * (size_t)n->o.routes_max *
                                     sizeof *n->routes);
            n->nroutes = 0;
            s = route_slot(n, client);
        }
        n->nroutes++;
    }
    n->routes[s] = (struct route){client, c};
    conn_note_route(c, client);
}

/* Deletes slot s, shifting later entries of its probe run back so that
 * every entry stays reachable from its home slot (no tombstones). */
static void route_delete(struct net *n, size_t s)
{
    size_t slots = 2 * (size_t)n->o.routes_max;
    n->routes[s].c = NULL;
    n->nroutes--;
    for (size_t j = (s + 1) % slots; n->routes[j].c != NULL;
         j = (j + 1) % slots) {
        size_t k = route_home(n, n->routes[j].client);
        bool stays = s <= j ? (s < k && k <= j) : (s < k || k <= j);
        if (!stays) {
            n->routes[s] = n->routes[j];
            n->routes[j].c = NULL;
            s = j;
        }
    }
}

/* Drops the routes that point to c (c is closing). */
static void unroute_conn(struct net *n, struct net_conn *c)
{
    for (uint32_t i = 0; i < c->nrouted; i++) {
        size_t s = route_slot(n, c->routed[i]);
        if (n->routes[s].c == c) {
            route_delete(n, s);
        }
    }
    c->nrouted = 0;
}

/* ------------------------------------------------------------ output */

static void mark_dirty(struct net *n, struct net_conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        c->dirty_next = n->dirty;
        n->dirty = c;
    }
}

void net_send(struct net *n, struct net_conn *c, const void *frame,
              size_t len)
{
    if (c == NULL || !c->open || c->closing) {
        return;
    }
    if (evr_buf_put(&c->out, frame, len) != 0) {
        n->stats.out_dropped++;
        return;
    }
    mark_dirty(n, c);
}

void net_send_peer(struct net *n, uint32_t to, const void *frame, size_t len)
{
    assert(to < n->o.replicas);
    assert(to != n->o.self);
    net_send(n, n->peers[to].c, frame, len);
}

void net_reply(struct net *n, uint64_t client, const void *frame, size_t len)
{
    size_t s = route_slot(n, client);
    if (n->routes[s].c == NULL) {
        n->stats.replies_unrouted++;
        return;
    }
    net_send(n, n->routes[s].c, frame, len);
}

static void conn_close(struct net_conn *c);

static void on_write(uv_write_t *req, int status)
{
    struct net_conn *c = req->data;
    c->writing = false;
    evr_buf_reset(&c->wout);
    if (status < 0) {
        c->net->o.log(c->net->o.data, 3, "write to %s: %s", c->name,
                      uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->out.len > 0) {
        mark_dirty(c->net, c);
    }
}

static void flush_conn(struct net_conn *c)
{
    if (c->writing || c->out.len == 0 || !c->open || c->closing) {
        return;
    }
    struct evr_buf t = c->wout;
    c->wout = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init((char *)c->wout.data, (unsigned)c->wout.len);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        evr_buf_reset(&c->wout);
        conn_close(c);
        return;
    }
    c->writing = true;
}

void net_flush(struct net *n)
{
    while (n->dirty != NULL) {
        struct net_conn *c = n->dirty;
        n->dirty = c->dirty_next;
        c->dirty = false;
        flush_conn(c);
    }
}

/* Before the loop blocks: one write per connection with output. */
static void on_prepare(uv_prepare_t *p)
{
    net_flush(p->data);
}

/* ------------------------------------------------------------ connections */

static struct net_conn *conn_new(struct net *n, int peer)
{
    struct net_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return NULL;
    }
    c->net = n;
    c->id = ++n->next_id;
    c->peer = peer;
    evr_buf_init(&c->out, n->o.out_bytes_max);
    evr_buf_init(&c->wout, n->o.out_bytes_max);
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    c->next = n->conns;
    if (n->conns != NULL) {
        n->conns->prev = c;
    }
    n->conns = c;
    n->nconns++;
    return c;
}

static void schedule_reconnect(struct peer *p);

static void on_conn_closed(uv_handle_t *h)
{
    struct net_conn *c = h->data;
    struct net *n = c->net;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        n->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    n->nconns--;
    if (c->dirty) { /* unlink from the dirty list */
        struct net_conn **pp = &n->dirty;
        while (*pp != c) {
            pp = &(*pp)->dirty_next;
        }
        *pp = c->dirty_next;
    }
    if (c->peer >= 0 && n->peers[c->peer].c == c) {
        n->peers[c->peer].c = NULL;
        if (!n->stopping) {
            schedule_reconnect(&n->peers[c->peer]);
        }
    }
    evr_buf_free(&c->out);
    evr_buf_free(&c->wout);
    free(c->routed);
    free(c->in);
    free(c);
}

static void conn_close(struct net_conn *c)
{
    if (c->closing) {
        return;
    }
    c->closing = true;
    c->open = false;
    unroute_conn(c->net, c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* ------------------------------------------------------------ input */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct net_conn *c = h->data;
    if (c->in_cap - c->in_len < READ_CHUNK) {
        size_t cap = c->in_len + READ_CHUNK;
        uint8_t *p = realloc(c->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len,
                       (unsigned)(c->in_cap - c->in_len));
}

/* Handles every whole frame in c->in; false when c must close. */
static bool cut_frames(struct net *n, struct net_conn *c)
{
    size_t off = 0;
    while (c->in_len - off >= EVR_FRAME_HEADER_SIZE && !c->closing) {
        struct evr_frame_hdr h;
        struct evr_err err;
        if (evr_frame_peek(c->in + off, n->o.cluster_id, n->o.body_max, &h,
                           &err) != 0) {
            n->stats.frames_bad++;
            n->o.log(n->o.data, 1, "from %s: %s; closing the connection",
                     c->name, err.msg);
            return false;
        }
        size_t total = EVR_FRAME_HEADER_SIZE + (size_t)h.body_size;
        if (c->in_len - off < total) {
            break;
        }
        if (!n->o.on_frame(n->o.data, c, &h, c->in + off, total)) {
            return false;
        }
        off += total;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return true;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct net_conn *c = s->data;
    struct net *n = c->net;
    if (nread < 0) {
        if (nread != UV_EOF) {
            n->o.log(n->o.data, 3, "read from %s: %s", c->name,
                     uv_strerror((int)nread));
        }
        conn_close(c);
        return;
    }
    c->in_len += (size_t)nread;
    if (!cut_frames(n, c)) {
        conn_close(c);
    }
    n->o.on_read_done(n->o.data);
}

static void conn_opened(struct net_conn *c)
{
    c->open = true;
    uv_tcp_nodelay(&c->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        conn_close(c);
    }
}

static void name_peer(struct net_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char host[48] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, host, sizeof host);
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, host, sizeof host);
            port = ntohs(a->sin_port);
        }
    }
    snprintf(c->name, sizeof c->name, "%s:%d", host, port);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct net *n = server->data;
    if (status < 0) {
        n->o.log(n->o.data, 1, "accept: %s", uv_strerror(status));
        return;
    }
    struct net_conn *c = conn_new(n, -1);
    if (c == NULL) {
        return; /* the kernel keeps it queued; next accept retries */
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    name_peer(c);
    if (n->nconns > n->o.connections_max || n->stopping) {
        n->stats.connections_refused++;
        n->o.log(n->o.data, 1, "connection from %s refused: %u open is the "
                 "limit", c->name, n->o.connections_max);
        conn_close(c);
        return;
    }
    n->stats.connections++;
    conn_opened(c);
}

/* ------------------------------------------------------------ peers */

static void connect_peer(struct peer *p);

static void on_retry(uv_timer_t *t)
{
    connect_peer(t->data);
}

static void schedule_reconnect(struct peer *p)
{
    uv_timer_start(&p->retry, on_retry, p->backoff_ms, 0);
    p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                       : p->backoff_ms * 2;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct peer *p = req->data;
    struct net *n = p->net;
    struct net_conn *c = p->c;
    if (status < 0 || n->stopping) {
        if (!p->logged_down && status < 0) {
            n->o.log(n->o.data, 2, "replica %u (%s) not reachable: %s; "
                     "retrying", p->index, n->o.addrs[p->index],
                     uv_strerror(status));
            p->logged_down = true;
        }
        conn_close(c); /* its close schedules the reconnect */
        return;
    }
    n->o.log(n->o.data, 2, "connected to replica %u (%s)", p->index,
             n->o.addrs[p->index]);
    p->logged_down = false;
    p->backoff_ms = BACKOFF_MIN_MS;
    conn_opened(c);
}

static void connect_peer(struct peer *p)
{
    struct net *n = p->net;
    if (n->stopping || p->c != NULL) {
        return;
    }
    struct net_conn *c = conn_new(n, (int)p->index);
    if (c == NULL) {
        schedule_reconnect(p);
        return;
    }
    snprintf(c->name, sizeof c->name, "replica %u", p->index);
    p->c = c;
    p->creq.data = p;
    int rc = uv_tcp_connect(&p->creq, &c->tcp,
                            (const struct sockaddr *)&p->addr, on_connect);
    if (rc != 0) {
        conn_close(c);
    }
}

/* ------------------------------------------------------------ start, stop */

int net_parse_addr(const char *s, struct sockaddr_storage *out,
                   struct evr_err *err)
{
    const char *colon = strrchr(s, ':');
    char host[256];
    if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof host) {
        return evr_err_set(err, EVR_EINVAL, "address '%s': want host:port",
                           s);
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || port < 1 || port > 65535) {
        return evr_err_set(err, EVR_EINVAL, "address '%s': bad port", s);
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    memset(out, 0, sizeof *out);
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ||
        uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) {
        return 0;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        return evr_err_set(err, EVR_EINVAL, "address '%s': unknown host", s);
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
    freeaddrinfo(res);
    return 0;
}

static int listen_self(struct net *n, struct evr_err *err)
{
    struct sockaddr_storage a;
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    n->handles++;
    n->listening = true;
    int rc = net_parse_addr(n->o.addrs[n->o.self], &a, err);
    if (rc != 0) {
        return rc;
    }
    int urc = uv_tcp_bind(&n->listener, (const struct sockaddr *)&a, 0);
    urc = urc ? urc : uv_listen((uv_stream_t *)&n->listener, 128,
                                on_connection);
    if (urc != 0) {
        return evr_err_set(err, EVR_EIO, "listening on %s: %s",
                           n->o.addrs[n->o.self], uv_strerror(urc));
    }
    return 0;
}

int net_start(uv_loop_t *loop, const struct net_opts *o, struct net **out,
              struct evr_err *err)
{
    assert(o->replicas <= 16);
    assert(o->self < o->replicas);
    struct net *n = calloc(1, sizeof *n);
    if (n == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "net");
    }
    n->loop = loop;
    n->o = *o;
    n->routes = calloc(2 * (size_t)o->routes_max, sizeof *n->routes);
    if (n->routes == NULL) {
        free(n);
        return evr_err_set(err, EVR_ENOMEM, "client routes");
    }
    *out = n;
    uv_prepare_init(loop, &n->flusher);
    n->flusher.data = n;
    n->handles++;
    uv_prepare_start(&n->flusher, on_prepare);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < o->replicas; i++) {
        struct peer *p = &n->peers[i];
        *p = (struct peer){.net = n, .index = i,
                           .backoff_ms = BACKOFF_MIN_MS};
        if (i != o->self) {
            uv_timer_init(loop, &p->retry);
            p->retry.data = p;
            n->handles++;
            rc = net_parse_addr(o->addrs[i], &p->addr, err);
        }
    }
    rc = rc ? rc : listen_self(n, err);
    for (uint32_t i = 0; rc == 0 && i < o->replicas; i++) {
        if (i != o->self) {
            connect_peer(&n->peers[i]);
        }
    }
    return rc;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct net *n = h->data;
    n->handles--;
}

void net_stop(struct net *n)
{
    if (n == NULL || n->stopping) {
        return;
    }
    n->stopping = true;
    for (struct net_conn *c = n->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    if (n->listening) {
        uv_close((uv_handle_t *)&n->listener, on_handle_closed);
    }
    uv_close((uv_handle_t *)&n->flusher, on_handle_closed);
    for (uint32_t i = 0; i < n->o.replicas; i++) {
        if (i != n->o.self && n->peers[i].retry.loop != NULL) {
            n->peers[i].retry.data = n;
            uv_close((uv_handle_t *)&n->peers[i].retry, on_handle_closed);
        }
    }
}

void net_free(struct net *n)
{
    if (n == NULL) {
        return;
    }
    assert(n->conns == NULL);
    free(n->routes);
    free(n);
}

void net_stats(const struct net *n, struct net_stats *out)
{
    *out = n->stats;
}

uint32_t net_open_count(const struct net *n)
{
    return n->nconns;
}
