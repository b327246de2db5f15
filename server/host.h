/*
 * server/host — the replica's state machine behind struct evr_vr_host: an
 * application's SQLite database in cow_state, run by the executor and the
 * mixer, with the client table inside the replicated state.
 *
 * Client table. The database holds, beside the application's tables,
 *
 *     evr_clients(client INTEGER PRIMARY KEY,   -- client id (u64 as i64)
 *                 request_no INTEGER NOT NULL,  -- last executed
 *                 status INTEGER NOT NULL,      -- its response
 *                 reply BLOB NOT NULL)
 *
 * written inside each batch on the sequential connection, after the
 * application's requests ran, so it is captured, digested, rolled back,
 * exported in deltas and snapshots like every other row. Per request, in
 * batch order (vr.h's client table rule): request_no <= the row's is not
 * executed — its response is the stored reply when equal, else status
 * EVR_ESTATE and no body; anything newer executes and replaces the row.
 * A read-only request (its conflict set writes nothing) leaves no row: a
 * retry of it executes again (harmless: it changes nothing; its reply is
 * as of the retry), so reads do not write into the state.
 * The table grows by one row per client id ever seen; it is not trimmed
 * (a limit to lift with a deterministic, batch-stamped expiry).
 *
 * Execution. Inline (o.async false): execute() runs the whole batch on the
 * calling thread (the executor's worker 0) and its pool, and leaves the
 * result for evr_host_deliver(), which the caller invokes once the core's
 * call returned (the core forbids evr_vr_executed from inside execute).
 * Async (o.async, the server): execute() copies the batch and hands it to
 * the host's execution thread, so that the loop goes on receiving votes
 * and requests and sending replies while it runs; the thread calls
 * o.on_done, and evr_host_deliver() on the loop thread then reports it.
 * While a job runs, host calls that need the state (rollback, deltas,
 * snapshots, close) first wait for it; commit only records the op and the
 * cow catches up when the job is over (it just drops pre-images).
 *
 * Snapshots of the applied state while batches wait uncommitted: their
 * deltas are exported, they are rolled back, the file is written, and the
 * deltas are applied again — exact, since a delta carries the final images
 * and checks its base and result roots.
 *
 * Threads: every evr_host_* function and every call through the table
 * runs on one thread (the server's loop thread); the execution thread
 * (async) and the executor's pool only run jobs.
 */
#ifndef EVR_SERVER_HOST_H
#define EVR_SERVER_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/hash.h"
#include "replication/vr.h"
#include "workloads/app.h"

#define EVR_HOST_DEPTH_MAX 1024 /* executed, unapplied ops tracked */

struct evr_host_opts {
    const char *dir;          /* data directory; state.db lives there */
    const struct evr_app *app;/* borrowed; outlives the host */
    int threads;              /* executor threads, 1..EVR_COW_WORKERS_MAX */
    uint32_t batch_size_max;
    uint32_t depth_max;       /* uncommitted batches (the core's depth) */
    bool capture;             /* false only for a replica alone (no
                                 verification, no rollback) */
    /* Called as a batch starts executing, so that the PREPARE for it leaves
     * before the batch blocks the loop (backups execute meanwhile). */
    void (*before_execute)(void *data);
    void *before_data;
    bool keep_unclean;        /* keep a file left without a clean stop (a
                                 replica alone: what it holds is all that
                                 was ever committed) */
    bool async;               /* execute on the host's own thread */
    void (*on_done)(void *data); /* async: a job finished (called from
                                    the execution thread) */
    void *done_data;
    bool memory;              /* state.db held in memory while serving,
                                 written back at a clean stop
                                 (evr_cow_opts.memory) */
};

struct evr_host;

/* How the host found its directory (evr_host_open). */
enum evr_host_start {
    EVR_HOST_NEW,       /* populated now: a first start */
    EVR_HOST_CLEAN,     /* state of a clean stop, applied op known */
    EVR_HOST_RESET,     /* restart without a clean stop: repopulated */
    EVR_HOST_KEPT       /* restart without a clean stop, file kept
                           (keep_unclean); ops count from 0 again */
};

/*
 * Opens (or creates) DIR/state.db. A database left by a clean stop
 * (DIR/clean-stop names its applied op, root and response digest) is kept;
 * one without that record may hold speculative batches and is replaced by
 * the populated start state (the replica recovers the rest from its
 * peers). The record is removed once read, so a later crash is not taken
 * for a clean stop.
 */
int evr_host_open(const struct evr_host_opts *o, struct evr_host **out,
                  enum evr_host_start *start, struct evr_vr_applied *applied,
                  struct evr_err *err);

/* Rolls back what is not applied and closes; with stop (from the core:
 * stop->op the applied op, stop->resp_digest its response digest, and
 * resume and view as evr_vr_applied says) it also writes DIR/clean-stop so
 * that the next start keeps the file, and evr_host_open hands resume and
 * view back. Closes even when a step fails (then returns it: the next
 * start repopulates). NULL h is ignored. */
int evr_host_close(struct evr_host *h, const struct evr_vr_applied *stop,
                   struct evr_err *err);

/* The table for evr_vr_new. */
struct evr_vr_host evr_host_table(struct evr_host *h);

/* Reports a finished execution to r; false if none waits. */
/* Reports a finished execution to r: 1, or 0 if none waits, or a negative
 * code when the execution failed (the replica must stop; err says why). */
int evr_host_deliver(struct evr_host *h, struct evr_vr *r,
                     struct evr_err *err);

/* Waits until no job runs (async); 0, or the job's failure. For tests. */
int evr_host_wait(struct evr_host *h, struct evr_err *err);

/* The finished execution itself (what deliver reports), for tests; resp
 * is borrowed until the next execute. */
struct evr_host_result {
    uint64_t op;
    evr_h128 root;
    const struct evr_vr_response *resp;
    uint32_t n;
};
bool evr_host_take(struct evr_host *h, struct evr_host_result *out);

/* State root after the newest applied op. */
evr_h128 evr_host_applied_root(const struct evr_host *h);

/* Path of the database file (for logs). */
const char *evr_host_db_path(const struct evr_host *h);

#endif
