/*
 * server/net — connections of the server (server.h gives the rules): frame
 * cutting on input, coalesced output, outgoing peer connections with
 * reconnect, client routes. Internal to server/.
 *
 * Life cycle of a connection:
 *
 *   accepted or connecting -> open -> closing (uv_close) -> freed
 *
 * Output is appended to `out` at any time while open; at the end of each
 * loop iteration (a uv_prepare handle) every connection with output and no
 * write in flight swaps `out` into `wout` and writes it in one uv_write.
 */
#ifndef EVR_SERVER_NET_H
#define EVR_SERVER_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "replication/msg.h"

struct net;

struct net_conn {
    uv_tcp_t tcp; /* first: the handle's data points back here */
    struct net *net;
    uint64_t id;
    int peer;            /* index of the replica this connects to, or -1 */
    bool open, closing, writing, dirty;
    char name[64];       /* "127.0.0.1:4000" for logs */
    uint8_t *in;
    size_t in_len, in_cap;
    struct evr_buf out, wout;
    uv_write_t wreq;
    uint64_t *routed;    /* client ids routed here (to delete at close) */
    uint32_t nrouted, routed_cap;
    struct net_conn *prev, *next;       /* all connections */
    struct net_conn *dirty_next;
};

/* What the server does with a checked frame; returns false to close the
 * connection (the callee logged why). */
typedef bool (*net_frame_cb)(void *data, struct net_conn *c,
                             const struct evr_frame_hdr *h,
                             const uint8_t *frame, size_t len);
typedef void (*net_log_cb)(void *data, int level, const char *fmt, ...);
/* After the frames of one read were handled. */
typedef void (*net_read_done_cb)(void *data);

struct net_opts {
    uint64_t cluster_id;
    size_t body_max;
    uint32_t connections_max;
    size_t out_bytes_max;
    uint32_t routes_max;
    uint32_t self;               /* replica index */
    uint32_t replicas;
    const char *const *addrs;
    void *data;
    net_frame_cb on_frame;
    net_read_done_cb on_read_done;
    net_log_cb log;
};

struct net_stats {
    uint64_t connections;        /* accepted */
    uint64_t connections_refused;
    uint64_t frames_bad;         /* header refused here */
    uint64_t out_dropped;        /* frames over a connection's limit */
    uint64_t replies_unrouted;
};

/* Binds addrs[self] and starts connecting to the others. */
int net_start(uv_loop_t *loop, const struct net_opts *o, struct net **out,
              struct evr_err *err);
/* Closes every connection and handle; the loop must run to finish. */
void net_stop(struct net *n);
/* Frees what net_stop left once the loop has no more handles of it. */
void net_free(struct net *n);

/* Appends a frame to replica `to`'s connection (dropped if not open). */
void net_send_peer(struct net *n, uint32_t to, const void *frame, size_t len);
/* Appends a frame to connection c. */
void net_send(struct net *n, struct net_conn *c, const void *frame,
              size_t len);
/* Writes the output of every connection now (uv_write tries the socket at
 * once) instead of at the end of the loop iteration. */
void net_flush(struct net *n);

/* Routes client's replies to c from now on. */
void net_route(struct net *n, uint64_t client, struct net_conn *c);
/* Appends a frame to the connection routed for client. */
void net_reply(struct net *n, uint64_t client, const void *frame, size_t len);

void net_stats(const struct net *n, struct net_stats *out);
/* Open connections now. */
uint32_t net_open_count(const struct net *n);

/* Parses "host:port" (IPv4, [IPv6] or a name). */
int net_parse_addr(const char *s, struct sockaddr_storage *out,
                   struct evr_err *err);

#endif
