/*
 * executor — runs batches of requests on a replica's cow_state.
 *
 * Parallel: the sub-batches of a mixer plan run one after another; the
 * requests of a sub-batch run concurrently on the worker pool, each on its
 * worker's own connection: the writers (by their hints) on worker 0, the
 * readers on all workers. Each request is atomic on its own (its own SQLite
 * transaction, or a savepoint inside a group: evr_executor_set_txn_mode).
 * Sequential: a whole batch on the calling thread and the sequential
 * connection, in batch order (or any given order).
 *
 * Either way every request gets the same context: the batch's timestamp and
 * an RNG seeded from (batch seed, request index), reseeded when the request
 * is retried, so a request's effects do not depend on which thread ran it
 * or how often.
 *
 * Responses are kept per request index; the response digest hashes them in
 * batch order whatever order they finished in, and the token binds it to
 * the state root (both formulas: verifier/verifier.h).
 *
 * Errors of a request (the application refusing it, a constraint, a full
 * disk) are its response — status non-zero, transaction rolled back — not
 * errors of the batch. Batch-level errors are returned.
 */
#ifndef EVR_EXECUTOR_H
#define EVR_EXECUTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/hash.h"
#include "cow_state/cow_state.h"
#include "mixer/mixer.h"
#include "verifier/verifier.h"
#include "workloads/app.h"

#define EVR_RESPONSE_BYTES_MAX (16u << 20)
#define EVR_EXEC_ATTEMPTS_MAX 64 /* tries of one request lost to SQLITE_BUSY */

struct evr_request {
    const uint8_t *data;
    uint32_t len;
};

/* A batch as the primary fixed it. Requests are borrowed. */
struct evr_batch {
    uint64_t op;
    int64_t timestamp_us;
    uint64_t seed;
    uint32_t n;
    const struct evr_request *req;
    const struct evr_cset *csets; /* optional: tells writers from readers */
};

struct evr_response {
    int32_t status;       /* 0, an SQLite code, or a negative EVR_E* code */
    struct evr_buf body;
    uint64_t exec_ns;     /* time the request took, retries included (not
                             part of any digest) */
};

struct evr_exec_stats {
    uint64_t requests;
    uint64_t failed;      /* status != 0 */
    uint64_t retries;     /* attempts lost to SQLITE_BUSY */
    uint64_t subbatches;
};

struct evr_executor;

/*
 * An executor of evr_cow_workers(cow) + 1 threads: the calling thread is
 * worker 0 and runs on the cow's sequential connection (all writes go
 * there: executor.c says why); each other worker has a thread and a worker
 * connection. cow and app must outlive it.
 */
int evr_executor_new(struct evr_cow *cow, const struct evr_app *app,
                     uint32_t batch_size_max, struct evr_executor **out,
                     struct evr_err *err);
void evr_executor_free(struct evr_executor *ex);

int evr_executor_threads(const struct evr_executor *ex);

/*
 * Transactions (executor/txn.c). Grouped, the default: every request is a
 * SAVEPOINT (a nested transaction, atomic on its own) inside a transaction
 * its connection shares with the requests before it in the sub-batch
 * (parallel) or batch (sequential) — group commit for the writer, one
 * snapshot for each reader. Per-request: every request is one transaction.
 */
enum evr_txn_mode { EVR_TXN_GROUPED, EVR_TXN_PER_REQUEST };
void evr_executor_set_txn_mode(struct evr_executor *ex,
                               enum evr_txn_mode mode);

/* Runs a plan's sub-batches. The batch must be begun on the cow. */
int evr_executor_run_parallel(struct evr_executor *ex,
                              const struct evr_batch *b,
                              const struct evr_plan *plan,
                              struct evr_err *err);

/* Runs the batch on the calling thread and the sequential connection: in
 * batch order when order is NULL, else order[0..n-1]. */
int evr_executor_run_sequential(struct evr_executor *ex,
                                const struct evr_batch *b,
                                const uint32_t *order, struct evr_err *err);

/* Responses of the last run, by request index; valid until the next run. */
const struct evr_response *evr_executor_responses(
    const struct evr_executor *ex);

/* Digest of the last run's responses, in batch order. */
evr_h128 evr_executor_response_digest(const struct evr_executor *ex);

/* Totals since the executor was made. */
void evr_executor_stats(const struct evr_executor *ex,
                        struct evr_exec_stats *out);

/* --- one whole batch: begin, run, end, token --- */

enum evr_exec_mode { EVR_EXEC_SEQUENTIAL, EVR_EXEC_PARALLEL };

struct evr_batch_result {
    evr_h128 state_root;
    evr_h128 response_digest;
    evr_h128 token;
    uint32_t nsub;     /* sub-batches (1 for sequential) */
};

/*
 * Begins batch b->op on the cow, runs it (parallel: with plan), ends it and
 * computes its token. On a batch-level failure the batch is rolled back.
 */
int evr_execute_batch(struct evr_executor *ex, const struct evr_batch *b,
                      enum evr_exec_mode mode, const struct evr_plan *plan,
                      struct evr_batch_result *res, struct evr_err *err);

#endif
