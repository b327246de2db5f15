/*
 * client internals, shared by client.c (sessions, primary, retries, the
 * public calls) and conn.c (sockets, buffers, frame cutting). Not part of
 * the public interface (include/evr/client.h gives the rules).
 *
 * Life cycle of a connection:
 *
 *   down --(retry time)--> connecting --(connect done)--> open
 *     ^                         |                           |
 *     +----- failure, EOF, bad frame: closed, backoff ------+
 *
 * gen counts connect attempts; a request queued on attempt g is known to be
 * lost when attempt g + 1 opens (its frames die with a closed socket).
 */
#ifndef EVR_CLIENT_INTERNAL_H
#define EVR_CLIENT_INTERNAL_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/buf.h"
#include "common/err.h"
#include "include/evr/client.h"
#include "replication/msg.h"

#define CONN_BACKOFF_MIN_MS 50
#define CONN_BACKOFF_MAX_MS 1000
#define CONN_READ_BYTES 65536 /* free input space offered to one recv */

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_OPEN };

struct conn {
    uint32_t index; /* the replica */
    int fd;         /* -1 while down */
    enum conn_state state;
    uint64_t gen;   /* connect attempts so far */
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char name[EVR_CLIENT_ADDR_MAX + 1];
    uint64_t retry_ns; /* down: when to try again */
    uint32_t backoff_ms;
    bool want_status;  /* send STATUS once open */
    struct evr_buf out; /* queued frames; [out_off, len) not yet sent */
    size_t out_off;
    uint8_t *in;        /* received bytes, [0, in_len) not yet cut */
    size_t in_len, in_cap, in_max;
};

struct session {
    uint64_t id;
    uint64_t request_no; /* of the request in flight, or the last one */
    bool busy;
    struct evr_buf req;  /* the request in flight */
    evr_client_done_fn done;
    void *arg;
    uint64_t deadline_ns, try_ns; /* fail / resend at */
    uint32_t target;              /* replica it last went to */
    uint32_t timeouts;
    uint64_t sent_gen;            /* target's gen when it went */
};

/* What a replica said: st from its last STATUS_REPLY; the claim (what
 * the primary belief uses) from that or from a REPLY, whichever is later. */
struct seen {
    uint64_t answers; /* STATUS_REPLYs so far */
    bool known;       /* said anything (a STATUS_REPLY or a REPLY) */
    bool primary;     /* the claim: primary, normal, in view */
    bool normal;
    uint64_t view;
    struct evr_replica_status st;
};

struct evr_client {
    struct evr_client_opts o;
    uint32_t n;
    struct conn conns[EVR_CLIENT_REPLICAS_MAX];
    struct seen seen[EVR_CLIENT_REPLICAS_MAX];
    struct pollfd pfd[EVR_CLIENT_REPLICAS_MAX];
    uint32_t primary;
    struct session *s;
    uint32_t *slots; /* client id -> session index + 1, open addressing */
    uint32_t slots_mask;
    uint64_t next_scan_ns;  /* no session timer is due before this */
    uint64_t status_asked_ns;
    bool status_asked_once;
    bool in_poll;           /* inside poll: callbacks may be running */
    int ended;              /* callbacks fired in this poll */
    char problem[EVR_ERR_MSG_MAX];
    struct evr_client_stats stats;
};

/* --- conn.c --- */

/* Resolves "host:port" into k (down, due at once). */
int conn_init(struct conn *k, uint32_t index, const char *addr,
              size_t out_bytes_max, size_t body_max, struct evr_err *err);
void conn_free(struct conn *k);
/* Starts a connect attempt (k down). */
void conn_start(struct evr_client *c, struct conn *k, uint64_t now_ns);
/* Closes k and schedules the next attempt; why goes to c->problem. */
void conn_close(struct evr_client *c, struct conn *k, uint64_t now_ns,
                const char *why);
/* Queues one frame (type, then body = head + data). 0; EVR_ESTATE when k
 * is down (nothing queued); EVR_ELIMIT over the output limit (nothing
 * queued). */
int conn_frame(struct evr_client *c, struct conn *k, uint16_t type,
               const void *head, size_t head_len, const void *data,
               size_t data_len);
/* One send() of what is queued, if open. */
void conn_flush(struct evr_client *c, struct conn *k, uint64_t now_ns);
/* Fills p for poll(); false when k has no socket. */
bool conn_pollfd(const struct conn *k, struct pollfd *p);
/* Handles what poll() said about k. */
void conn_events(struct evr_client *c, struct conn *k, short revents,
                 uint64_t now_ns);

/* --- client.c, called by conn.c --- */

/* k has just opened. */
void client_on_open(struct evr_client *c, struct conn *k, uint64_t now_ns);
/* A checked frame from replica k->index (borrowed for the call). */
void client_on_frame(struct evr_client *c, struct conn *k,
                     const struct evr_msg *m, uint64_t now_ns);

#endif
