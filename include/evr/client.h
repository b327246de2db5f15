/*
 * evr client: sends requests to an evr cluster (server/server.h) over TCP
 * in the wire format of replication/msg.h, finds the primary, retries, and
 * reports each request's outcome once.
 *
 * Model. A client holds one connection to every replica of the cluster and
 * a fixed set of sessions. A session is one logical client of the service:
 * a random non-zero 64-bit client id (getrandom) and a request counter that
 * starts at 1 and grows by one per request. A session has at most one
 * request in flight; every session shares the same connections.
 *
 * Primary. Every replica answers STATUS. The client believes the replica
 * that last said it is primary (and normal) with the highest view; when
 * none has, replica (highest view seen) mod n; before any answer, replica
 * 0. A REPLY from replica i in view v counts as i saying it is primary in
 * v. When the belief changes, every request in flight elsewhere is resent
 * to the new primary at once (and its retries start afresh from there).
 *
 * Retries. A request goes to the believed primary. If no reply comes
 * within try_timeout_ms, the client asks every replica for STATUS (at most
 * once per try_timeout_ms / 2) and resends the same (client id,
 * request_no) — the server answers a retry of a committed request with the
 * stored reply (at most once) — to the believed primary on the first
 * timeout and then round-robin from it (primary + k - 1 on the k-th), so a
 * wrong belief cannot stall a request. A request also goes again, at once,
 * when the connection it was queued on is reopened. It fails with
 * EVR_ETIMEDOUT only once deadline_ms has passed since submission; such a
 * request may still commit later. The session then moves on to the next
 * request number (the server accepts any number above the last it saw).
 *
 * Connections are non-blocking and driven by evr_client_poll. A connection
 * that fails, is closed by the replica, or delivers a frame that does not
 * check (msg.h rules) is closed and reopened after a backoff: 50 ms,
 * doubling per failure up to 1 s, back to 50 ms once a good frame arrives.
 * Frames queued for a connection between two poll() system calls are
 * written with one send(). Replicas are known by their position in the
 * list: one that says it has another index is believed all the same
 * (evr_client_problem notes it), so a single address reaches any replica.
 *
 * Limits (what happens at each):
 *   sessions             1..EVR_CLIENT_SESSIONS_MAX (new fails EVR_EINVAL)
 *   replicas             1..EVR_CLIENT_REPLICAS_MAX addresses
 *   request              at most EVR_REQUEST_BYTES_MAX bytes (submit fails
 *                        EVR_ELIMIT)
 *   reply body           at most opts.body_max bytes: a larger frame is a
 *                        bad frame (connection closed and reopened); a
 *                        connection's input buffer grows to body_max + 64
 *   unsent output        at most opts.out_bytes_max bytes per connection:
 *                        a frame that would pass it is dropped and counted
 *                        (stats.frames_dropped); its request is resent at
 *                        the next try timeout
 *
 * Threads: none inside. A client is used from one thread at a time.
 * Callbacks run inside evr_client_poll (and the blocking helpers, which
 * poll); a callback may submit (the finished session included) but must
 * not call evr_client_poll, evr_client_call, evr_client_status or
 * evr_client_free — they return EVR_ESTATE there (free asserts).
 */
#ifndef EVR_INCLUDE_CLIENT_H
#define EVR_INCLUDE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "replication/msg.h"

#define EVR_CLIENT_SESSIONS_MAX 4096
#define EVR_CLIENT_REPLICAS_MAX 15 /* EVR_REPLICAS_MAX */
#define EVR_CLIENT_ADDR_MAX 255     /* bytes of one "host:port" */

struct evr_client_opts {
    const char *cluster;     /* "host:port,host:port,..." in replica order;
                                host: IPv4, [IPv6] or a name (resolved once,
                                by evr_client_new); borrowed for the call */
    uint64_t cluster_id;     /* every frame carries it (1) */
    uint32_t sessions;       /* 1..EVR_CLIENT_SESSIONS_MAX (1) */
    uint32_t try_timeout_ms; /* wait for a reply before a retry, 1..3600000
                                (1000) */
    uint32_t deadline_ms;    /* a request fails after this, >= 1 (30000) */
    uint32_t body_max;       /* largest reply body accepted, 4 KiB..1 GiB
                                (64 MiB, the server's own limit) */
    uint32_t out_bytes_max;  /* unsent output per connection, >= 2 MiB
                                (64 MiB) */
};

void evr_client_opts_default(struct evr_client_opts *o);

struct evr_client;

/*
 * Parses and resolves the addresses, draws the session ids, and starts
 * connecting to every replica (nothing blocks but name resolution). 0, or
 * EVR_EINVAL (bad option or address, named in err), EVR_ENOMEM, EVR_EIO
 * (no randomness). *out is owned by the caller: evr_client_free.
 */
int evr_client_new(const struct evr_client_opts *o, struct evr_client **out,
                   struct evr_err *err);

/* Closes every connection. Requests in flight are abandoned without their
 * callbacks. NULL is allowed. */
void evr_client_free(struct evr_client *c);

/*
 * How a request ended. rc 0: it committed; status is the application's
 * (0 success, non-zero the app's error — still committed), body its
 * response (borrowed for the call), op the batch it committed in. rc
 * EVR_ETIMEDOUT: no reply by the deadline (status 0, no body, op 0).
 */
typedef void (*evr_client_done_fn)(void *arg, int rc, int32_t status,
                                   const uint8_t *body, uint32_t len,
                                   uint64_t op);

/*
 * Starts a request on a session (0..sessions-1): req is copied; done fires
 * exactly once from a later evr_client_poll (never from this call). 0, or
 * EVR_EINVAL (no such session, done NULL), EVR_EBUSY (a request of this
 * session is in flight), EVR_ELIMIT (len over EVR_REQUEST_BYTES_MAX),
 * EVR_ENOMEM. The frame leaves at the next poll.
 */
int evr_client_submit(struct evr_client *c, uint32_t session,
                      const void *req, uint32_t len, evr_client_done_fn done,
                      void *arg);

/*
 * Drives I/O and timers: writes queued frames, waits up to timeout_ms (less
 * when a timer or reconnect is due earlier; 0 does not wait) for input,
 * handles it, fires callbacks. Returns how many requests ended (callbacks
 * fired), or EVR_ESTATE from a callback, EVR_EIO if poll() itself failed.
 */
int evr_client_poll(struct evr_client *c, uint32_t timeout_ms);

/*
 * Blocking: submits req on session and polls until it ends. rc 0: resp
 * (reset first; may be NULL) holds the response and *status (may be NULL)
 * the application's status. EVR_ETIMEDOUT with a message naming the
 * replica it last went to; the submit errors; EVR_ESTATE from a callback.
 */
int evr_client_call(struct evr_client *c, uint32_t session, const void *req,
                    uint32_t len, struct evr_buf *resp, int32_t *status,
                    struct evr_err *err);

/* What one replica said in its last STATUS_REPLY (msg.h). */
struct evr_replica_status {
    bool reachable;    /* answered during this evr_client_status call */
    uint32_t replica;  /* its index, as it says */
    uint32_t replicas; /* cluster size, as it says */
    bool primary;
    uint8_t status;    /* enum evr_vr_status: normal, view change, ... */
    uint8_t mode;      /* the server's mode (evr_server_mode_name) */
    uint64_t view, op, commit, applied;
    evr_h128 token; /* of the applied op */
    evr_h128 root;  /* state root of the applied op: the committed digest */
    uint32_t ncounters;
    uint64_t counters[EVR_STATUS_COUNTERS_MAX]; /* EVR_STATUS_COUNTERS order */
};

/*
 * Asks every replica for STATUS and polls until all answered or timeout_ms
 * passed; out[i] (evr_client_replicas(c) entries) gets replica i's answer,
 * reachable false (and the rest zero) when none came. Requests in flight
 * progress meanwhile. Returns how many answered, or EVR_ESTATE / EVR_EIO.
 */
int evr_client_status(struct evr_client *c, struct evr_replica_status *out,
                      uint32_t timeout_ms);

uint32_t evr_client_replicas(const struct evr_client *c);
/* The "host:port" of replica i as given (borrowed from c). */
const char *evr_client_addr(const struct evr_client *c, uint32_t i);
/* The replica believed primary now. */
uint32_t evr_client_primary(const struct evr_client *c);
/* The client id of a session. */
uint64_t evr_client_session_id(const struct evr_client *c, uint32_t session);
/* The last connection problem (a refused connect, a bad frame), "" if none;
 * borrowed until the next poll. */
const char *evr_client_problem(const struct evr_client *c);

struct evr_client_stats {
    uint64_t submitted;      /* requests started */
    uint64_t completed;      /* ended with a reply */
    uint64_t timed_out;      /* ended with EVR_ETIMEDOUT */
    uint64_t resends;        /* frames of a request after its first */
    uint64_t replies_stale;  /* replies to no request in flight */
    uint64_t status_asked;   /* STATUS rounds */
    uint64_t frames_in;      /* good frames received */
    uint64_t frames_bad;     /* frames that closed their connection */
    uint64_t frames_dropped; /* over a connection's output limit */
    uint64_t connects;       /* connections opened */
    uint64_t disconnects;    /* connections lost or closed */
};

void evr_client_stats(const struct evr_client *c, struct evr_client_stats *out);

#endif
