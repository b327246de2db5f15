/* Executor internals shared by executor.c (pool) and txn.c (requests). */
#ifndef EVR_EXECUTOR_INTERNAL_H
#define EVR_EXECUTOR_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "executor/executor.h"

/* Statement slots the executor keeps on each connection, above the
 * application's (EVR_APP_STMT_SLOTS). */
_Static_assert(EVR_APP_STMT_SLOTS <= EVR_COW_STMT_SLOTS - 7,
               "application and executor statement slots overlap");
enum {
    SLOT_BEGIN = EVR_COW_STMT_SLOTS - 1,
    SLOT_BEGIN_IMMEDIATE = EVR_COW_STMT_SLOTS - 2,
    SLOT_COMMIT = EVR_COW_STMT_SLOTS - 3,
    SLOT_ROLLBACK = EVR_COW_STMT_SLOTS - 4,
    SLOT_SAVEPOINT = EVR_COW_STMT_SLOTS - 5,
    SLOT_RELEASE = EVR_COW_STMT_SLOTS - 6,
    SLOT_ROLLBACK_TO = EVR_COW_STMT_SLOTS - 7,
};

struct worker {
    struct evr_executor *ex;
    int id;
    pthread_t thread;
    struct evr_cow_conn *conn;
    bool writer;       /* worker 0: runs every writer, on the sequential
                          connection */
    bool in_txn;       /* a transaction is open on conn */
    uint32_t *pending; /* requests whose writes the open transaction holds */
    uint32_t npending;
    uint64_t retries;
    uint64_t failed;
};

/* Expected request times by kind, for the claim order (cost.c). */
#define EVR_COST_KINDS_MAX 64
struct evr__cost {
    const char *kind[EVR_COST_KINDS_MAX];
    uint64_t mean_ns[EVR_COST_KINDS_MAX];
    uint32_t n;
    void *scratch; /* evr__cost_scratch_size(n_max) bytes */
    uint8_t *slot; /* n_max: kind slot of each request of the batch */
};

struct evr_executor {
    struct evr_cow *cow;
    const struct evr_app *app;
    int nthreads;
    int started;       /* workers[1..started-1] have threads to join */
    struct worker *workers;
    uint32_t n_max;
    enum evr_txn_mode txn_mode;
    struct evr_response *resp;
    struct evr_hasher *hasher;
    evr_h128 resp_digest;
    struct evr_exec_stats stats;
    struct evr__cost cost; /* worker 0 only */

    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    uint32_t generation; /* under mu */
    bool stopping;       /* under mu */

    const struct evr_batch *batch; /* of the published sub-batch */
    const uint32_t *items;
    uint32_t *writers;             /* scratch: a sub-batch's writers */
    uint32_t *readers;             /* and readers */
    _Atomic uint64_t claim;
    _Atomic uint32_t remaining; /* items not finished */
    _Atomic uint32_t active;    /* workers that may hold a transaction */
};

/* Looks up the kind of each of batch b's requests (once per batch). */
void evr__cost_kinds(struct evr_executor *ex, const struct evr_batch *b);
/* Folds the measured times of batch b's requests into the averages. */
void evr__cost_learn(struct evr_executor *ex, const struct evr_batch *b);
/* Reorders items[0..n-1] (requests of the batch evr__cost_kinds saw last)
 * longest expected first (ties: as given). */
void evr__cost_order(struct evr_executor *ex, uint32_t *items, uint32_t n);
size_t evr__cost_scratch_size(uint32_t n_max);

bool evr__hinted_writer(const struct evr_batch *b, uint32_t idx);

/* Runs request idx of batch b on w's connection (txn.c). */
void evr__run_request(struct evr_executor *ex, const struct evr_batch *b,
                      uint32_t idx, struct worker *w);

/* Commits w's open transaction; if that fails, every request whose writes
 * it held fails with the error. */
void evr__end_txn(struct evr_executor *ex, struct worker *w);

#endif
