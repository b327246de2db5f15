/*
 * The worker pool.
 *
 * Threads and connections. Worker 0 is the thread that calls the executor
 * and uses the cow's sequential connection; workers 1..T-1 are pthreads
 * started at creation (joined at free), worker i using cow worker
 * connection i-1 and nothing else, so a connection never changes threads
 * (they are opened NOMUTEX). T = evr_cow_workers(cow) + 1.
 *
 * Why worker 0 writes on the sequential connection: in WAL mode a
 * connection's page cache survives only its own commits. Every write of a
 * parallel run, every sequential run and every repair (batch end re-reads,
 * rollback, re-execution) goes through this one connection, so its cache
 * stays hot; reader connections refresh once per sub-batch.
 *
 * Dispatch of one sub-batch (the only shared state besides `mu`):
 *
 *   claim      one atomic word: generation (24 bits) | item count (20) |
 *              next item (20). The dispatcher publishes the sub-batch's
 *              readers by storing it (release) after writing `items`; a
 *              worker takes item k by a compare-and-swap of next from k to
 *              k+1 while the generation is the one it woke for. A worker that
 *              wakes late or lingers cannot take an item of another
 *              sub-batch, and the count it compares against is the one in the
 *              same word.
 *   remaining  readers not yet finished.
 *   active     workers that took an item and may still hold a transaction.
 *              Whoever brings either count to 0 signals done_cv under `mu`.
 *              The dispatcher goes on only when both are 0, so `items`, the
 *              claimed responses and every snapshot of the sub-batch are gone
 *              before the next one starts.
 *
 * Ordering: sub-batches run strictly one after another. Inside one: the
 * writers (by their hints) on worker 0 in plan order, committed together,
 * while workers 1..T-1 take readers; then worker 0 takes readers too. A
 * sub-batch with at most one reader runs on worker 0 alone, waking no one,
 * and leaves its transaction open: worker 0 commits when the next shared
 * sub-batch starts, or at the end of the batch.
 * Readers are claimed longest expected first (cost.c), which changes only
 * how busy the threads are, never a result.
 *
 * Locks: `mu` guards generation, stopping and the condition variables; it is
 * never held while a request runs, and no other lock is taken under it.
 * Waits for SQLite's write lock are bounded (txn.c).
 *
 * Requests and their transactions: txn.c.
 */
#include "executor/executor.h"

#include <stdlib.h>
#include <string.h>

#include "executor/internal.h"

#define CLAIM_GEN_SHIFT 40
#define CLAIM_N_SHIFT 20
#define CLAIM_MASK 0xfffffu
#define GEN_MASK 0xffffffu

/* ------------------------------------------------------------ pool */

static bool claim_next(struct evr_executor *ex, uint32_t gen, uint32_t *k)
{
    uint64_t c = atomic_load_explicit(&ex->claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(c >> CLAIM_GEN_SHIFT) != gen) {
            return false;
        }
        uint32_t n = (uint32_t)(c >> CLAIM_N_SHIFT) & CLAIM_MASK;
        uint32_t next = (uint32_t)c & CLAIM_MASK;
        if (next >= n) {
            return false;
        }
        if (atomic_compare_exchange_weak_explicit(&ex->claim, &c, c + 1,
                                                  memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *k = next;
            return true;
        }
    }
}

static void signal_done(struct evr_executor *ex)
{
    pthread_mutex_lock(&ex->mu);
    pthread_cond_signal(&ex->done_cv);
    pthread_mutex_unlock(&ex->mu);
}

static void drain(struct evr_executor *ex, struct worker *w, uint32_t gen)
{
    uint32_t k;
    bool joined = false;
    while (claim_next(ex, gen, &k)) {
        if (!joined) {
            atomic_fetch_add_explicit(&ex->active, 1, memory_order_acq_rel);
            joined = true;
        }
        evr__run_request(ex, ex->batch, ex->items[k], w);
        if (atomic_fetch_sub_explicit(&ex->remaining, 1,
                                      memory_order_acq_rel) == 1) {
            signal_done(ex);
        }
    }
    if (joined) {
        /* The next sub-batch may read what this one wrote: no snapshot of
         * this one may outlive it. */
        evr__end_txn(ex, w);
        if (atomic_fetch_sub_explicit(&ex->active, 1, memory_order_acq_rel) ==
            1) {
            signal_done(ex);
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct evr_executor *ex = w->ex;
    uint32_t seen = 0;
    pthread_mutex_lock(&ex->mu);
    for (;;) {
        while (ex->generation == seen && !ex->stopping) {
            pthread_cond_wait(&ex->work_cv, &ex->mu);
        }
        if (ex->stopping) {
            break;
        }
        seen = ex->generation;
        pthread_mutex_unlock(&ex->mu);
        drain(ex, w, seen);
        pthread_mutex_lock(&ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
    return NULL;
}

/* Publishes readers[0..n-1] to every worker; worker 0 runs the writers
 * first and commits them while the others read, then reads too. Returns
 * when every reader is done and no worker holds a transaction. */
static void run_shared(struct evr_executor *ex, const struct evr_batch *b,
                       const uint32_t *writers, uint32_t nw,
                       const uint32_t *readers, uint32_t n)
{
    struct worker *w0 = &ex->workers[0];
    /* What solo sub-batches before this one wrote must be visible to the
     * readers about to start on other connections. */
    bool wrote = w0->in_txn;
    evr__end_txn(ex, w0);
    ex->batch = b;
    ex->items = readers;
    atomic_store_explicit(&ex->remaining, n, memory_order_relaxed);
    pthread_mutex_lock(&ex->mu);
    uint32_t gen = ex->generation = (ex->generation + 1) & GEN_MASK;
    atomic_store_explicit(&ex->claim,
                          ((uint64_t)gen << CLAIM_GEN_SHIFT) |
                              ((uint64_t)n << CLAIM_N_SHIFT),
                          memory_order_release);
    pthread_cond_broadcast(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
    for (uint32_t i = 0; i < nw; i++) {
        evr__run_request(ex, b, writers[i], w0);
    }
    /* Commit now, while the other workers read: the WAL append overlaps
     * their work instead of ending the sub-batch; and so does re-reading
     * the rows just written, which batch end would otherwise do alone. A
     * failed refresh only leaves that work to batch end. */
    evr__end_txn(ex, w0);
    if (nw > 0 || wrote) {
        (void)evr_cow_batch_refresh(ex->cow, NULL);
    }
    drain(ex, w0, gen);
    pthread_mutex_lock(&ex->mu);
    while (atomic_load_explicit(&ex->remaining, memory_order_acquire) != 0 ||
           atomic_load_explicit(&ex->active, memory_order_acquire) != 0) {
        pthread_cond_wait(&ex->done_cv, &ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
}

static void run_subbatch(struct evr_executor *ex, const struct evr_batch *b,
                         const uint32_t *items, uint32_t n)
{
    struct worker *w0 = &ex->workers[0];
    uint32_t nw = 0;
    uint32_t nr = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (evr__hinted_writer(b, items[i])) {
            ex->writers[nw++] = items[i];
        } else {
            ex->readers[nr++] = items[i];
        }
    }
    if (nr <= 1 || ex->nthreads == 1) {
        /* Solo: no other connection reads before the next shared
         * sub-batch or batch end, so the transaction stays open and a run
         * of solo sub-batches costs one commit, as sequential runs do. */
        for (uint32_t i = 0; i < n; i++) {
            evr__run_request(ex, b, items[i], w0);
        }
        return;
    }
    evr__cost_order(ex, ex->readers, nr);
    run_shared(ex, b, ex->writers, nw, ex->readers, nr);
}

/* ------------------------------------------------------------ life cycle */

static int alloc_executor(struct evr_executor *ex, struct evr_err *err)
{
    ex->workers = calloc((size_t)ex->nthreads, sizeof *ex->workers);
    ex->resp = calloc(ex->n_max, sizeof *ex->resp);
    ex->writers = calloc(ex->n_max, sizeof *ex->writers);
    ex->readers = calloc(ex->n_max, sizeof *ex->readers);
    ex->hasher = evr_hasher_new(0);
    ex->cost.scratch = malloc(evr__cost_scratch_size(ex->n_max));
    ex->cost.slot = malloc(ex->n_max);
    if (!ex->workers || !ex->resp || !ex->writers || !ex->readers ||
        !ex->hasher || !ex->cost.scratch || !ex->cost.slot) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < ex->n_max; i++) {
        evr_buf_init(&ex->resp[i].body, EVR_RESPONSE_BYTES_MAX);
    }
    for (int i = 0; i < ex->nthreads; i++) {
        struct worker *w = &ex->workers[i];
        w->ex = ex;
        w->id = i;
        w->writer = i == 0;
        w->conn = i == 0 ? evr_cow_seq(ex->cow) : evr_cow_worker(ex->cow, i - 1);
        w->pending = calloc(ex->n_max, sizeof *w->pending);
        if (w->pending == NULL) {
            return evr_err_set(err, EVR_ENOMEM, "out of memory");
        }
    }
    return 0;
}

static int start_threads(struct evr_executor *ex, struct evr_err *err)
{
    for (int i = 1; i < ex->nthreads; i++) {
        int rc = pthread_create(&ex->workers[i].thread, NULL, worker_main,
                                &ex->workers[i]);
        if (rc != 0) {
            ex->started = i; /* free joins the ones that started */
            return evr_err_set(err, EVR_ENOMEM,
                               "starting worker thread %d: error %d", i, rc);
        }
    }
    ex->started = ex->nthreads;
    return 0;
}

int evr_executor_new(struct evr_cow *cow, const struct evr_app *app,
                     uint32_t batch_size_max, struct evr_executor **out,
                     struct evr_err *err)
{
    *out = NULL;
    if (batch_size_max == 0 || batch_size_max > EVR_BATCH_SIZE_MAX) {
        return evr_err_set(err, EVR_EINVAL, "batch size limit %u out of range",
                           batch_size_max);
    }
    struct evr_executor *ex = calloc(1, sizeof *ex);
    if (ex == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    ex->cow = cow;
    ex->app = app;
    ex->nthreads = evr_cow_workers(cow) + 1;
    ex->n_max = batch_size_max;
    ex->txn_mode = EVR_TXN_GROUPED;
    ex->started = 1;
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->work_cv, NULL);
    pthread_cond_init(&ex->done_cv, NULL);
    int rc = alloc_executor(ex, err);
    rc = rc ? rc : start_threads(ex, err);
    if (rc != 0) {
        evr_executor_free(ex);
        return rc;
    }
    *out = ex;
    return 0;
}

void evr_executor_free(struct evr_executor *ex)
{
    if (ex == NULL) {
        return;
    }
    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    pthread_cond_broadcast(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
    for (int i = 1; ex->workers && i < ex->started; i++) {
        pthread_join(ex->workers[i].thread, NULL);
    }
    for (uint32_t i = 0; ex->resp && i < ex->n_max; i++) {
        evr_buf_free(&ex->resp[i].body);
    }
    for (int i = 0; ex->workers && i < ex->nthreads; i++) {
        free(ex->workers[i].pending);
    }
    if (ex->hasher) {
        evr_hasher_free(ex->hasher);
    }
    free(ex->resp);
    free(ex->writers);
    free(ex->readers);
    free(ex->cost.scratch);
    free(ex->cost.slot);
    free(ex->workers);
    pthread_cond_destroy(&ex->work_cv);
    pthread_cond_destroy(&ex->done_cv);
    pthread_mutex_destroy(&ex->mu);
    free(ex);
}

int evr_executor_threads(const struct evr_executor *ex)
{
    return ex->nthreads;
}

void evr_executor_set_txn_mode(struct evr_executor *ex,
                               enum evr_txn_mode mode)
{
    ex->txn_mode = mode;
}

/* ------------------------------------------------------------ runs */

static void digest_responses(struct evr_executor *ex, uint32_t n)
{
    evr_hasher_reset(ex->hasher, 0);
    for (uint32_t i = 0; i < n; i++) {
        evr_response_digest_add(ex->hasher, ex->resp[i].status,
                                ex->resp[i].body.data,
                                (uint32_t)ex->resp[i].body.len);
    }
    ex->resp_digest = evr_hasher_digest(ex->hasher);
}

static void collect_stats(struct evr_executor *ex, const struct evr_batch *b,
                          uint32_t nsub)
{
    uint32_t n = b->n;
    evr__cost_learn(ex, b);
    ex->stats.requests += n;
    ex->stats.subbatches += nsub;
    for (int i = 0; i < ex->nthreads; i++) {
        struct worker *w = &ex->workers[i];
        ex->stats.retries += w->retries;
        ex->stats.failed += w->failed;
        w->retries = 0;
        w->failed = 0;
    }
}

static int check_batch(struct evr_executor *ex, const struct evr_batch *b,
                       struct evr_err *err)
{
    if (b->n > ex->n_max) {
        return evr_err_set(err, EVR_ELIMIT,
                           "batch %llu has %u requests; the executor takes "
                           "at most %u",
                           (unsigned long long)b->op, b->n, ex->n_max);
    }
    return 0;
}

int evr_executor_run_parallel(struct evr_executor *ex,
                              const struct evr_batch *b,
                              const struct evr_plan *plan,
                              struct evr_err *err)
{
    int rc = check_batch(ex, b, err);
    if (rc != 0) {
        return rc;
    }
    if (plan->n != b->n) {
        return evr_err_set(err, EVR_EINVAL,
                           "plan for %u requests, batch of %u", plan->n, b->n);
    }
    evr__cost_kinds(ex, b);
    for (uint32_t s = 0; s < plan->nsub; s++) {
        uint32_t from = plan->sub_start[s];
        run_subbatch(ex, b, plan->order + from, plan->sub_start[s + 1] - from);
    }
    evr__end_txn(ex, &ex->workers[0]);
    digest_responses(ex, b->n);
    collect_stats(ex, b, plan->nsub);
    return 0;
}

int evr_executor_run_sequential(struct evr_executor *ex,
                                const struct evr_batch *b,
                                const uint32_t *order, struct evr_err *err)
{
    int rc = check_batch(ex, b, err);
    for (uint32_t i = 0; rc == 0 && order != NULL && i < b->n; i++) {
        if (order[i] >= b->n) {
            rc = evr_err_set(err, EVR_EINVAL, "order names request %u of %u",
                             order[i], b->n);
        }
    }
    if (rc != 0) {
        return rc;
    }
    evr__cost_kinds(ex, b);
    struct worker *w0 = &ex->workers[0];
    for (uint32_t i = 0; i < b->n; i++) {
        evr__run_request(ex, b, order ? order[i] : i, w0);
    }
    evr__end_txn(ex, w0);
    digest_responses(ex, b->n);
    collect_stats(ex, b, 1);
    return 0;
}

const struct evr_response *evr_executor_responses(
    const struct evr_executor *ex)
{
    return ex->resp;
}

evr_h128 evr_executor_response_digest(const struct evr_executor *ex)
{
    return ex->resp_digest;
}

void evr_executor_stats(const struct evr_executor *ex,
                        struct evr_exec_stats *out)
{
    *out = ex->stats;
}

int evr_execute_batch(struct evr_executor *ex, const struct evr_batch *b,
                      enum evr_exec_mode mode, const struct evr_plan *plan,
                      struct evr_batch_result *res, struct evr_err *err)
{
    int rc = evr_cow_batch_begin(ex->cow, b->op, err);
    if (rc != 0) {
        return rc;
    }
    if (mode == EVR_EXEC_PARALLEL) {
        rc = evr_executor_run_parallel(ex, b, plan, err);
        res->nsub = plan->nsub;
    } else {
        rc = evr_executor_run_sequential(ex, b, NULL, err);
        res->nsub = 1;
    }
    rc = rc ? rc : evr_cow_batch_end(ex->cow, &res->state_root, err);
    if (rc != 0) {
        struct evr_err rb = {0};
        if (evr_cow_capturing(ex->cow) &&
            evr_cow_rollback(ex->cow, b->op, &rb) != 0) {
            evr_err_wrap(err, rc, "rolling back after a failure failed (%s)",
                         rb.msg);
        }
        return rc;
    }
    res->response_digest = ex->resp_digest;
    res->token = evr_token(b->op, res->state_root, res->response_digest);
    return 0;
}
