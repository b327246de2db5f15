/*
 * cow_state — the SQLite state of one replica.
 *
 * One database file in WAL mode, opened as `workers` worker connections
 * (one per executor thread, SQLITE_OPEN_NOMUTEX) plus one sequential
 * connection that also serves repair work (rollback, delta apply, digest
 * re-reads, snapshots). Every connection carries a preupdate hook that
 * captures row changes for the batch being executed.
 *
 * Batches. Requests only ever change the database inside a batch:
 *
 *     evr_cow_batch_begin(op)      capture on; op > every earlier op
 *     ... requests run on the connections, each one SQLite transaction ...
 *     evr_cow_batch_end()          re-read touched rows, update the digest
 *     evr_cow_commit(op)           oldest first; its delta is kept
 *  or evr_cow_rollback(op)         restores the state before op; later
 *                                  batches are rolled back too
 *
 * Several executed batches may wait uncommitted (pipelining), up to
 * opts.depth_max. Only one batch executes at a time.
 *
 * Row identity is the declared PRIMARY KEY (docs/DIGEST.md). A schema that
 * cannot give every row a stable identity is refused at open (EVR_ESCHEMA):
 * a table without PRIMARY KEY, a nullable PRIMARY KEY column, a PRIMARY KEY
 * with a non-BINARY collation, AUTOINCREMENT (sqlite_sequence escapes the
 * preupdate hook), virtual tables, generated columns.
 *
 * State digest (docs/DIGEST.md): XXH3-128 row hashes summed mod 2^128 into
 * EVR_DIGEST_BUCKETS buckets per table by primary key, a table root over
 * the buckets, a state root over the table roots. Maintained incrementally;
 * evr_cow_digest_full() recomputes it by a full scan and must always agree.
 *
 * Threads: every evr_cow_* function is called from one control thread. Worker
 * threads only use their connection's sqlite3 handle (and the hook runs on
 * them), between batch_begin and batch_end.
 *
 * Errors: functions return 0 or a negative EVR_E* code and describe the
 * failure in *err (which may be NULL). A failed call changes nothing unless
 * its comment says otherwise.
 */
#ifndef EVR_COW_STATE_H
#define EVR_COW_STATE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"

#define EVR_DIGEST_BUCKETS 1024   /* per table; a power of two */
#define EVR_COW_WORKERS_MAX 256
#define EVR_COW_DEPTH_MAX 1024    /* uncommitted batches */
#define EVR_COW_STMT_SLOTS 64     /* application statement slots per conn */

struct evr_cow_opts {
    const char *path;        /* database file; must exist and hold a schema */
    int workers;             /* worker connections, 0..EVR_COW_WORKERS_MAX */
    bool capture;            /* false: no hook, no digest (benchmarks only) */
    int depth_max;           /* uncommitted batches allowed, 1.. */
    size_t batch_bytes_max;  /* captured pre-images per batch (final
                                images may take as much again) */
    int delta_retain;        /* committed deltas kept for export, 0.. */
    int synchronous;         /* PRAGMA synchronous: 0 off, 1 normal, 2 full */
    int64_t mmap_bytes;      /* PRAGMA mmap_size */
    int cache_kib;           /* PRAGMA cache_size = -cache_kib per conn */
    int busy_timeout_ms;     /* how long a writer waits for the write lock */
    int checkpoint_pages;    /* WAL size that wakes the checkpointer */
    bool memory;             /* hold the database in memory: read from path
                                at open, written back only by
                                evr_cow_save (cow_state/memvfs.c) */
};

/* Defaults: capture on, depth 64, 256 MiB per batch, 64 deltas kept,
 * synchronous NORMAL, mmap of up to 2 GiB, 16 MiB cache per connection,
 * 10 s busy timeout, checkpoints from 1000 WAL pages on (in the background:
 * cow_state/checkpoint.c), on disk (memory false). */
void evr_cow_opts_default(struct evr_cow_opts *o, const char *path,
                          int workers);

struct evr_cow;
struct evr_cow_conn;

/*
 * Opens the database, switches it to WAL, validates the schema, computes the
 * digest by a full scan and opens the connections. On failure *out is NULL
 * and nothing is left open.
 */
int evr_cow_open(const struct evr_cow_opts *opts, struct evr_cow **out,
                 struct evr_err *err);

/* Closes every connection (checkpointing the WAL). Uncommitted batches stay
 * in the file as they are: callers roll back first if they must not. With
 * opts.memory, whatever was not saved (evr_cow_save) is gone. */
void evr_cow_close(struct evr_cow *cow);

/*
 * Puts the database as it stands (uncommitted batches included) in its
 * file, durably: the WAL is checkpointed and truncated, then with
 * opts.memory the image is written to a temporary file, synced and renamed
 * over path (stale -wal/-shm files beside it removed, the directory
 * synced); without, the file is synced. Not while a batch executes. On
 * failure (a full disk, say) the file on disk is the one from before.
 */
int evr_cow_save(struct evr_cow *cow, struct evr_err *err);

int evr_cow_workers(const struct evr_cow *cow);
bool evr_cow_capturing(const struct evr_cow *cow);

/* Connection handles live as long as the cow (until close or a snapshot
 * import, which reopens them). i in [0, workers). */
struct evr_cow_conn *evr_cow_worker(struct evr_cow *cow, int i);
struct evr_cow_conn *evr_cow_seq(struct evr_cow *cow);
sqlite3 *evr_cow_conn_db(struct evr_cow_conn *c);

/*
 * Returns and clears the capture error of this connection: non-zero when the
 * hook could not record a pre-image (EVR_ELIMIT, EVR_ENOMEM) or saw a write to
 * a table it does not know. The executor checks it before COMMIT and rolls the
 * request's transaction back instead, so that no uncaptured change commits.
 */
int evr_cow_conn_take_capture_error(struct evr_cow_conn *c);

/*
 * Prepared-statement cache for application code: returns the statement in
 * `slot` (0..EVR_COW_STMT_SLOTS-1), preparing `sql` the first time. The
 * statement is owned by the connection; callers reset it after use. NULL on
 * error (message in err).
 */
sqlite3_stmt *evr_cow_conn_stmt(struct evr_cow_conn *c, unsigned slot,
                                const char *sql, struct evr_err *err);

/* --- batches --- */

int evr_cow_batch_begin(struct evr_cow *cow, uint64_t op, struct evr_err *err);

/* Finalizes the executing batch; *state_root (may be NULL) gets the new
 * state root. With capture off it returns the digest at open. */
int evr_cow_batch_end(struct evr_cow *cow, evr_h128 *state_root,
                      struct evr_err *err);

/*
 * Optional, during a batch: re-reads now the final images of the rows the
 * sequential connection alone has changed so far, so that batch end only
 * re-reads what changes after. The executor calls it once the writers of a
 * sub-batch have committed, while the reader threads work, to take that
 * work off the end of the batch. Needs no transaction open on the
 * sequential connection. A failure changes nothing batch end relies on.
 */
int evr_cow_batch_refresh(struct evr_cow *cow, struct evr_err *err);

/* Commits the oldest uncommitted batch, which must be op. */
int evr_cow_commit(struct evr_cow *cow, uint64_t op, struct evr_err *err);

/*
 * Restores the database and the digest to the state before batch op, which
 * must be uncommitted (executing or executed); every later batch is rolled
 * back first. Needs capture on.
 */
int evr_cow_rollback(struct evr_cow *cow, uint64_t op, struct evr_err *err);

/* Op of the newest batch begun (executed or not), 0 if none since open. */
uint64_t evr_cow_last_op(const struct evr_cow *cow);
/* Number of uncommitted batches (including an executing one). */
int evr_cow_uncommitted(const struct evr_cow *cow);

/* Totals since open: what capture costs, measured where it happens. */
struct evr_cow_stats {
    uint64_t batches;      /* finalized */
    uint64_t rows_touched; /* distinct keys the hook saw, per batch, summed */
    uint64_t rows_changed; /* keys whose final image differed */
    uint64_t hook_calls;
    uint64_t hook_ns;      /* time inside the preupdate hook, all threads */
    uint64_t end_ns;       /* batch end: re-reads and digest updates */
    uint64_t refresh_ns;   /* early re-reads (evr_cow_batch_refresh) */
    uint64_t rollbacks;    /* batches rolled back */
    uint64_t rollback_ns;
};
void evr_cow_stats(const struct evr_cow *cow, struct evr_cow_stats *out);

/* Background checkpoints run so far; returns 0 or the last SQLite error a
 * checkpoint met (busy excepted). */
int evr_cow_checkpoint_status(struct evr_cow *cow, uint64_t *runs);

/* --- digests --- */

/* Incremental state root (after the last finalized batch). */
evr_h128 evr_cow_digest(const struct evr_cow *cow);

/* Recomputes the state root by scanning every table (no batch executing). */
int evr_cow_digest_full(struct evr_cow *cow, evr_h128 *out,
                        struct evr_err *err);

/* --- deltas (cow_state/delta.c) --- */

/*
 * Appends to out the delta of batch op: its final row images and deletions,
 * sorted, with the state roots before and after it (format: delta.c). Works
 * for a finalized uncommitted batch and for a committed one still retained.
 */
int evr_cow_delta_export(struct evr_cow *cow, uint64_t op, struct evr_buf *out,
                         struct evr_err *err);

/*
 * Applies a delta as batch op: the current state root must equal the delta's
 * base root (else EVR_EMISMATCH, nothing changed), and after applying it must
 * equal the delta's result root (else rolled back, EVR_EMISMATCH). On success
 * the batch is finalized and uncommitted: commit or roll it back as usual.
 */
int evr_cow_delta_apply(struct evr_cow *cow, uint64_t op, const void *delta,
                        size_t len, struct evr_err *err);

/* --- snapshots (cow_state/snapshot.c) --- */

/*
 * Writes the whole database (schema, rows, state root) to path, atomically
 * (temporary file, fsync, rename). Needs no uncommitted batch.
 */
int evr_cow_snapshot_export(struct evr_cow *cow, const char *path,
                            struct evr_err *err);

/*
 * Replaces the database with the snapshot at path: rebuilds it in a temporary
 * file beside the database, recomputes its digest and refuses it unless it
 * equals the snapshot's (EVR_EMISMATCH) or if any record is damaged
 * (EVR_ECORRUPT); only then swaps files and reopens every connection. Needs
 * no uncommitted batch. Connection handles and cached statements from before
 * are invalid afterwards.
 */
int evr_cow_snapshot_import(struct evr_cow *cow, const char *path,
                            struct evr_err *err);

/* --- whole files, no cow needed --- */

/*
 * Full-scan state root of the database file at path, opened read-only.
 * Needs only that every table declares a PRIMARY KEY (EVR_ESCHEMA naming the
 * table otherwise); EVR_ENOENT for a missing file, EVR_ECORRUPT for a file
 * that is not a database.
 */
int evr_digest_file(const char *path, evr_h128 *out, struct evr_err *err);

/* One-time process setup of SQLite (no memory statistics, which would
 * serialise every allocation on a global mutex). Idempotent. */
void evr_sqlite_setup(void);

#endif
