/*
 * replication/vr — one replica of Viewstamped Replication fused with
 * execute-verify (brief §1, §3; VR Revisited, Liskov & Cowling 2012).
 *
 * The core is pure: it owns no socket, clock, thread or file. Events come in
 * through evr_vr_receive (a frame), evr_vr_tick (time passes) and
 * evr_vr_executed (the host finished a batch). Actions go out through two
 * tables the embedder provides: struct evr_vr_io (send a frame to a replica
 * or a client, time, randomness, log lines) and struct evr_vr_host (the
 * replica's state machine: execute, roll back, commit, deltas, snapshots).
 * The real server and the deterministic simulator (tests/sim) plug in their
 * own tables, so the same code runs in both.
 *
 * Replica state (VR §4): configuration of n = 2f+1 replicas, replica
 * number, view, status (normal, view-change, recovering), op-number,
 * commit-number, a log of batches, a client table. Added by execute-verify:
 *
 *   applied   ops <= applied are committed in the host (durable, final);
 *             applied <= commit <= op
 *   executed  ops in (applied, executed] ran speculatively in the host, in
 *             order; a token per op. At most depth_max of them.
 *   attempt   per log entry: which execution order of the current view the
 *             entry's votes belong to. ROLLBACK(n, a) gives every entry
 *             >= n attempt a and makes n sequential; PREPARE_OKs of an older
 *             attempt are ignored.
 *
 * Normal case (mode eve): the primary queues requests, cuts a batch (size
 * or delay), stamps it (time, seed) and sends PREPARE to every backup; every
 * replica executes it and the backups answer PREPARE_OK(op, attempt, token).
 * The verifier's rule (verifier.h) over the votes of the lowest uncommitted
 * op decides: COMMIT(T) with f+1 matching tokens (the primary counts), or
 * ROLLBACK when no token can reach f+1 or verify_timeout_ms passed. COMMIT
 * messages carry (op, T, holders) for recent ops; a replica applies op when
 * it executed op and its token equals T; if it differs, it rolls op back,
 * fetches op's delta and responses from a holder (GET_DELTA / DELTA),
 * applies it and checks the token; failing that, state transfer.
 * Replies leave the primary when it applies the op.
 *
 * Mode agree-execute: PREPARE_OK means "logged"; f+1 logged commits the
 * order; every replica then executes committed ops sequentially and applies
 * them at once. No rollback, no repair.
 *
 * View change (VR §4.2), recovery with a nonce (VR §4.3), and catch-up with
 * GET_STATE / NEW_STATE (VR §5.2) follow the paper. DO_VIEW_CHANGE carries
 * the log from the sender's commit back to entries_sent_committed ops,
 * committed entries with their tokens; the new primary takes the log of the
 * largest (last normal view, op), the largest commit, and every committed
 * token any sender reported; everything after applied is rolled back and
 * re-executed in the new view. A replica whose applied state is older than
 * any log it can get fetches a snapshot of a peer's committed state in
 * checksummed chunks (GET_SNAPSHOT / SNAPSHOT_CHUNK), checks it against the
 * committed token, and goes on from there.
 *
 * Client table: at most once per (client, request_no). The host keeps the
 * authoritative table in the replicated state (rules in struct evr_vr_host);
 * the core keeps the last committed reply of each client to answer retries
 * without a batch, and drops requests older than what it has seen.
 *
 * Safety invariants asserted here: an op is applied only with its committed
 * token; applied never decreases and is never rolled back; two COMMITs for
 * the same op carry the same token.
 *
 * Threads: none. Every function is called from one thread; the io and host
 * callbacks run inside the call that triggers them and must not call back
 * into the core, except evr_vr_executed, which the host calls later (never
 * from inside execute).
 */
#ifndef EVR_REPLICATION_VR_H
#define EVR_REPLICATION_VR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "replication/msg.h"
#include "verifier/verifier.h"

enum evr_vr_mode { EVR_VR_EVE, EVR_VR_AGREE_EXECUTE };
enum evr_vr_status {
    EVR_VR_NORMAL,
    EVR_VR_VIEW_CHANGE,
    EVR_VR_RECOVERING
};

const char *evr_vr_mode_name(enum evr_vr_mode m);
const char *evr_vr_status_name(enum evr_vr_status s);

struct evr_vr_config {
    uint64_t cluster;          /* id carried by every frame */
    uint32_t replicas;         /* n = 2f+1, odd, 1..EVR_REPLICAS_MAX */
    uint32_t self;             /* this replica's index */
    enum evr_vr_mode mode;
    uint32_t batch_size_max;   /* requests per batch, 1..65536 */
    uint32_t batch_delay_ms;   /* oldest queued request waits at most this */
    uint32_t queue_max;        /* queued requests; more are dropped */
    uint32_t depth_max;        /* uncommitted batches executing ahead */
    uint32_t log_retain;       /* applied entries kept for peers behind */
    uint32_t clients_max;      /* client table entries (LRU beyond) */
    size_t body_max;           /* largest frame body accepted or sent */
    size_t chunk_bytes;        /* snapshot chunk size */
    uint32_t heartbeat_ms;     /* primary: COMMIT when idle this long */
    uint32_t view_timeout_ms;  /* backup: no word from primary → new view */
    uint32_t verify_timeout_ms;/* primary: attempt pending → ROLLBACK */
    uint32_t retry_ms;         /* resend PREPARE, GET_*, RECOVERY, SVC */
};

/* Defaults: eve, batches of 128 after at most 1 ms, queue 65536, depth 8,
 * 256 entries retained, 65536 clients, 64 MiB bodies, 1 MiB chunks,
 * heartbeat 20 ms, view timeout 200 ms, verify timeout 100 ms, retry 50 ms. */
void evr_vr_config_default(struct evr_vr_config *c, uint32_t replicas,
                           uint32_t self);

/* Checks every field and their relations (EVR_EINVAL naming the field). */
int evr_vr_config_check(const struct evr_vr_config *c, struct evr_err *err);

/* Side effects other than the state machine. */
struct evr_vr_io {
    void *data;
    /* Best effort: a frame may be lost; the core retries. The frame is
     * borrowed for the call. */
    void (*send)(void *data, uint32_t to, const void *frame, size_t len);
    void (*reply)(void *data, uint64_t client, const void *frame, size_t len);
    int64_t (*time_us)(void *data);   /* wall time for batch timestamps */
    uint64_t (*random)(void *data);   /* batch seeds, nonces */
    /* A line for the operator (level 0 error, 1 warning, 2 info, 3 debug);
     * may be NULL. */
    void (*log)(void *data, int level, const char *msg);
};

/* One request of a batch, as the host sees it (borrowed). */
struct evr_vr_req {
    uint64_t client;
    uint64_t request_no;
    uint32_t len;
    const uint8_t *data;
};

struct evr_vr_batch {
    uint64_t op;
    int64_t timestamp_us;
    uint64_t seed;
    uint32_t n;
    const struct evr_vr_req *req;
};

struct evr_vr_response {
    int32_t status;
    uint32_t len;
    const uint8_t *data;
};

/*
 * The replica's state machine. Ops are applied in order, executed in order,
 * at most one executing at a time.
 *
 * Client table rule (every host): for each request in batch order, with
 * last = the table's request_no for its client (0 if none): request_no <=
 * last is not executed; its response is the stored reply when equal, else
 * status EVR_ESTATE with no body. Otherwise it executes and the table
 * records (request_no, response). The table is part of the state, so it is
 * digested, rolled back, transferred and repaired with it.
 *
 * Every function returns 0 or a negative EVR_E* code with err filled; the
 * core treats a failure as fatal for this replica (it stops: evr_vr_failed).
 */
struct evr_vr_host {
    void *data;
    /* Starts executing b (sequentially, or in parallel by its conflict
     * sets) on top of the executed state; reports with evr_vr_executed. */
    int (*execute)(void *data, const struct evr_vr_batch *b, bool sequential,
                   struct evr_err *err);
    /* Restores the state before op (applied < op <= executed; not while
     * executing). */
    int (*rollback)(void *data, uint64_t op, struct evr_err *err);
    /* Makes op (the oldest executed) committed and durable. */
    int (*commit)(void *data, uint64_t op, struct evr_err *err);
    /* Appends op's delta (executed or recently applied) to out; EVR_ENOENT
     * when it is gone. */
    int (*delta_export)(void *data, uint64_t op, struct evr_buf *out,
                        struct evr_err *err);
    /* Applies a delta as executed op (op == executed + 1), checking its base
     * and result; *root gets the resulting state root. */
    int (*delta_apply)(void *data, uint64_t op, const void *p, size_t len,
                       evr_h128 *root, struct evr_err *err);
    /* Appends the applied state to out; *root its state root. */
    int (*snapshot_export)(void *data, struct evr_buf *out, evr_h128 *root,
                           struct evr_err *err);
    /* Replaces the state (nothing executed beyond applied) with a snapshot
     * of applied op `op`; checks it and gives its root. */
    int (*snapshot_import)(void *data, uint64_t op, const void *p, size_t len,
                           evr_h128 *root, struct evr_err *err);
};

struct evr_vr_stats {
    uint64_t requests;          /* accepted into batches (primary) */
    uint64_t requests_dropped;  /* queue full, stale, not primary */
    uint64_t batches_prepared;
    uint64_t batches_executed;
    uint64_t batches_applied;
    uint64_t rollbacks;         /* ROLLBACKs ordered (primary) */
    uint64_t rollbacks_done;    /* host rollbacks performed */
    uint64_t repairs;           /* deltas applied after a token mismatch */
    uint64_t state_transfers;   /* snapshots installed */
    uint64_t view_changes;      /* views this replica became normal in */
    uint64_t recoveries;
    uint64_t frames_in, frames_out, frames_bad;
    uint64_t replies;
};

struct evr_vr;

/* The host's applied state when the replica starts: op 0 with the
 * populated state's root and a zero response digest for a new cluster. */
struct evr_vr_applied {
    uint64_t op;
    evr_h128 root;        /* state root after op */
    evr_h128 resp_digest; /* response digest of op */
    /* Set only from a stop at which evr_vr_info said `quiet`, with that
     * info's view: everything the replica ever promised (votes, view
     * changes) is in its applied state, so it may resume in `view` as if
     * it had only been cut off, instead of recovering. */
    bool resume;
    uint64_t view;
};

/*
 * A replica whose host is at `applied`. recovering: false for the first
 * start of a new cluster (view 0, normal) and for a resume (applied->resume:
 * normal in applied->view, or a view change to the next view if it was that
 * view's primary, whose numbering of attempts is lost); true after any other
 * restart (VR recovery). cfg, io and host are copied; io->data and
 * host->data must outlive the replica.
 */
int evr_vr_new(const struct evr_vr_config *cfg, const struct evr_vr_io *io,
               const struct evr_vr_host *host,
               const struct evr_vr_applied *applied, bool recovering,
               uint64_t now_ms, struct evr_vr **out, struct evr_err *err);
void evr_vr_free(struct evr_vr *r);

/* The replica is stopping: as primary it cuts no more batches, as backup
 * it takes no new op from PREPAREs, so that ops in flight can commit and
 * the replica become quiet (evr_vr_info) for a resumable stop. Requests
 * still arrive and are dropped at the stop; clients retry. Irreversible. */
void evr_vr_drain(struct evr_vr *r);

/* A frame from a replica or a client. Bad frames are counted and dropped;
 * returns 0 or the reason (for the embedder's log). */
int evr_vr_receive(struct evr_vr *r, const void *frame, size_t len,
                   struct evr_err *err);

/* Time passes: timers fire, batches are cut. */
void evr_vr_tick(struct evr_vr *r, uint64_t now_ms);

/* The host finished executing op: state root and responses in batch order
 * (borrowed for the call). */
void evr_vr_executed(struct evr_vr *r, uint64_t op, evr_h128 state_root,
                     const struct evr_vr_response *resp, uint32_t n);

/* 0, or the host error that stopped this replica. */
int evr_vr_failed(const struct evr_vr *r, struct evr_err *err);

/* --- inspection (status lines, tests) --- */

struct evr_vr_info {
    uint64_t view;
    enum evr_vr_status status;
    bool primary;
    uint64_t op, commit, applied, executed;
    evr_h128 applied_token;
    evr_h128 applied_root, applied_resp; /* what the token binds */
    bool executing;
    /* Normal, with no op past applied (none prepared, voted for, executing
     * or being repaired) and the log its view's own: a stop now loses no
     * promise, and the replica may resume (evr_vr_applied.resume). */
    bool quiet;
    /* Draining (evr_vr_drain) and done: quiet, and as primary quiet for
     * over two heartbeats, so its COMMITs of the last ops had their
     * chances to reach the backups (who stay unquiet until they apply). */
    bool drained;
};
void evr_vr_info(const struct evr_vr *r, struct evr_vr_info *out);
void evr_vr_stats(const struct evr_vr *r, struct evr_vr_stats *out);

/* The log entry for op, if held: its batch (encoded, msg.h format) and, when
 * committed, its token. Borrowed until the next call into the core. */
bool evr_vr_entry(const struct evr_vr *r, uint64_t op, const uint8_t **batch,
                  size_t *batch_len, bool *committed, evr_h128 *token);

#endif
