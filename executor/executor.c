/*
 * The worker pool.
 *
 * Threads. Worker 0 is the thread that calls the executor; workers 1..T-1
 * are pthreads started at creation and joined at free. Worker i uses only
 * cow worker connection i, so a connection never changes threads (they are
 * opened NOMUTEX). Sequential runs use the cow's sequential connection on
 * the calling thread.
 *
 * Dispatch of one sub-batch (the only shared state besides `mu`):
 *
 *   claim      one atomic word: generation (24 bits) | item count (20) |
 *              next item (20). The dispatcher publishes a sub-batch by
 *              storing it (release) after writing `items`; a worker takes
 *              item k by a compare-and-swap of next from k to k+1 while the
 *              generation is the one it woke for. A worker that wakes late
 *              or lingers cannot take an item of another sub-batch, and the
 *              count it compares against is the one in the same word.
 *   remaining  items not yet finished; the worker that finishes the last one
 *              signals done_cv under `mu`. The dispatcher publishes the next
 *              sub-batch only after remaining reached 0, so `items` and the
 *              responses of claimed items are stable while in use.
 *
 * Ordering: sub-batches run strictly one after another; inside one, any
 * order. A sub-batch of one request runs on worker 0 without waking anyone.
 *
 * Locks: `mu` guards generation, stopping and the condition variables; it is
 * never held while a request runs, and no other lock is taken under it.
 * SQLite's write lock is taken inside requests only, and waits for it are
 * bounded (cow_state's busy handler; EVR_EXEC_ATTEMPTS_MAX retries).
 *
 * Request life cycle (one attempt):
 *
 *   BEGIN [IMMEDIATE] -> execute -> capture ok? -> COMMIT      -> done
 *                           |            | no        | fails
 *                           +-- error ---+-----------+-> ROLLBACK
 *   busy (SQLITE_BUSY / SQLITE_LOCKED) -> retry with BEGIN IMMEDIATE;
 *   any other error -> done, status = the error, response body empty.
 */
#include "executor/executor.h"

#include <assert.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Statement slots the executor keeps on each connection, above the
 * application's. */
enum {
    SLOT_BEGIN = EVR_COW_STMT_SLOTS - 1,
    SLOT_BEGIN_IMMEDIATE = EVR_COW_STMT_SLOTS - 2,
    SLOT_COMMIT = EVR_COW_STMT_SLOTS - 3,
    SLOT_ROLLBACK = EVR_COW_STMT_SLOTS - 4,
};

#define CLAIM_GEN_SHIFT 40
#define CLAIM_N_SHIFT 20
#define CLAIM_MASK 0xfffffu
#define GEN_MASK 0xffffffu

struct worker {
    struct evr_executor *ex;
    int id;
    pthread_t thread;
    struct evr_cow_conn *conn;
    uint64_t retries;
    uint64_t failed;
};

struct evr_executor {
    struct evr_cow *cow;
    const struct evr_app *app;
    int nthreads;
    struct worker *workers;
    uint32_t n_max;
    struct evr_response *resp;
    struct evr_hasher *hasher;
    evr_h128 resp_digest;
    struct evr_exec_stats stats;

    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    pthread_cond_t done_cv;
    uint32_t generation; /* under mu */
    bool stopping;       /* under mu */

    const struct evr_batch *batch; /* of the published sub-batch */
    const uint32_t *items;
    _Atomic uint64_t claim;
    _Atomic uint32_t remaining;
};

/* ------------------------------------------------------------ requests */

static bool is_busy(int rc)
{
    return rc > 0 && ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED);
}

static int step_stmt(struct evr_cow_conn *c, unsigned slot, const char *sql)
{
    sqlite3_stmt *st = evr_cow_conn_stmt(c, slot, sql, NULL);
    if (st == NULL) {
        return SQLITE_ERROR;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int attempt(struct evr_executor *ex, struct evr_ctx *ctx,
                   const struct evr_request *req, struct evr_buf *body,
                   bool immediate)
{
    struct evr_cow_conn *c = ctx->conn;
    int rc = immediate ? step_stmt(c, SLOT_BEGIN_IMMEDIATE, "BEGIN IMMEDIATE")
                       : step_stmt(c, SLOT_BEGIN, "BEGIN");
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = ex->app->ops->execute(ex->app->impl, ctx, req->data, req->len, body);
    /* A change the hook could not capture must not commit. */
    int cap = evr_cow_conn_take_capture_error(c);
    if (rc == SQLITE_OK && cap != 0) {
        rc = cap;
    }
    if (rc == SQLITE_OK) {
        rc = step_stmt(c, SLOT_COMMIT, "COMMIT");
    }
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(ctx->db)) {
        step_stmt(c, SLOT_ROLLBACK, "ROLLBACK");
    }
    return rc;
}

static void backoff(int tries)
{
    if (tries < 4) {
        sched_yield();
        return;
    }
    int shift = tries - 4 > 10 ? 10 : tries - 4;
    struct timespec ts = {0, 1000L << shift}; /* 1 us .. 1 ms */
    nanosleep(&ts, NULL);
}

/* Runs request idx of the current batch on connection c. */
static void run_request(struct evr_executor *ex, const struct evr_batch *b,
                        uint32_t idx, struct evr_cow_conn *c, int worker_id,
                        struct worker *stats)
{
    struct evr_response *r = &ex->resp[idx];
    struct evr_ctx ctx = {
        .conn = c,
        .db = evr_cow_conn_db(c),
        .op = b->op,
        .index = idx,
        .worker = worker_id,
        .timestamp_us = b->timestamp_us,
    };
    bool writes = b->csets == NULL || evr_cset_writes(&b->csets[idx]);
    int rc = SQLITE_BUSY;
    for (int tries = 0; tries < EVR_EXEC_ATTEMPTS_MAX && is_busy(rc);
         tries++) {
        if (tries > 0) {
            stats->retries++;
            backoff(tries);
        }
        evr_buf_reset(&r->body);
        evr_rng_seed2(&ctx.rng, b->seed, idx);
        rc = attempt(ex, &ctx, &b->req[idx], &r->body, writes || tries > 0);
    }
    if (is_busy(rc)) {
        rc = EVR_EBUSY;
    }
    r->status = rc;
    if (rc != SQLITE_OK) {
        evr_buf_reset(&r->body); /* an error's response is its status */
        stats->failed++;
    }
}

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

static void drain(struct evr_executor *ex, struct worker *w, uint32_t gen)
{
    uint32_t k;
    while (claim_next(ex, gen, &k)) {
        run_request(ex, ex->batch, ex->items[k], w->conn, w->id, w);
        if (atomic_fetch_sub_explicit(&ex->remaining, 1,
                                      memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&ex->mu);
            pthread_cond_signal(&ex->done_cv);
            pthread_mutex_unlock(&ex->mu);
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

static void run_subbatch(struct evr_executor *ex, const struct evr_batch *b,
                         const uint32_t *items, uint32_t n)
{
    struct worker *w0 = &ex->workers[0];
    if (n == 1 || ex->nthreads == 1) {
        for (uint32_t i = 0; i < n; i++) {
            run_request(ex, b, items[i], w0->conn, 0, w0);
        }
        return;
    }
    ex->batch = b;
    ex->items = items;
    atomic_store_explicit(&ex->remaining, n, memory_order_relaxed);
    pthread_mutex_lock(&ex->mu);
    uint32_t gen = ex->generation = (ex->generation + 1) & GEN_MASK;
    atomic_store_explicit(&ex->claim,
                          ((uint64_t)gen << CLAIM_GEN_SHIFT) |
                              ((uint64_t)n << CLAIM_N_SHIFT),
                          memory_order_release);
    pthread_cond_broadcast(&ex->work_cv);
    pthread_mutex_unlock(&ex->mu);
    drain(ex, w0, gen);
    pthread_mutex_lock(&ex->mu);
    while (atomic_load_explicit(&ex->remaining, memory_order_acquire) != 0) {
        pthread_cond_wait(&ex->done_cv, &ex->mu);
    }
    pthread_mutex_unlock(&ex->mu);
}

/* ------------------------------------------------------------ life cycle */

static int alloc_executor(struct evr_executor *ex, struct evr_err *err)
{
    ex->workers = calloc((size_t)ex->nthreads, sizeof *ex->workers);
    ex->resp = calloc(ex->n_max, sizeof *ex->resp);
    ex->hasher = evr_hasher_new(0);
    if (!ex->workers || !ex->resp || !ex->hasher) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < ex->n_max; i++) {
        evr_buf_init(&ex->resp[i].body, EVR_RESPONSE_BYTES_MAX);
    }
    for (int i = 0; i < ex->nthreads; i++) {
        ex->workers[i].ex = ex;
        ex->workers[i].id = i;
        ex->workers[i].conn = evr_cow_worker(ex->cow, i);
    }
    return 0;
}

static int start_threads(struct evr_executor *ex, struct evr_err *err)
{
    for (int i = 1; i < ex->nthreads; i++) {
        int rc = pthread_create(&ex->workers[i].thread, NULL, worker_main,
                                &ex->workers[i]);
        if (rc != 0) {
            ex->nthreads = i; /* free joins the ones that started */
            return evr_err_set(err, EVR_ENOMEM,
                               "starting worker thread %d: error %d", i, rc);
        }
    }
    return 0;
}

int evr_executor_new(struct evr_cow *cow, const struct evr_app *app,
                     uint32_t batch_size_max, struct evr_executor **out,
                     struct evr_err *err)
{
    *out = NULL;
    if (evr_cow_workers(cow) < 1) {
        return evr_err_set(err, EVR_EINVAL,
                           "the executor needs at least one worker "
                           "connection");
    }
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
    ex->nthreads = evr_cow_workers(cow);
    ex->n_max = batch_size_max;
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
    for (int i = 1; ex->workers && i < ex->nthreads; i++) {
        pthread_join(ex->workers[i].thread, NULL);
    }
    for (uint32_t i = 0; ex->resp && i < ex->n_max; i++) {
        evr_buf_free(&ex->resp[i].body);
    }
    if (ex->hasher) {
        evr_hasher_free(ex->hasher);
    }
    free(ex->resp);
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

/* ------------------------------------------------------------ runs */

static void digest_responses(struct evr_executor *ex, uint32_t n)
{
    evr_hasher_reset(ex->hasher, 0);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t head[8];
        evr_store_u32(head, (uint32_t)ex->resp[i].status);
        evr_store_u32(head + 4, (uint32_t)ex->resp[i].body.len);
        evr_hasher_update(ex->hasher, head, sizeof head);
        evr_hasher_update(ex->hasher, ex->resp[i].body.data,
                          ex->resp[i].body.len);
    }
    ex->resp_digest = evr_hasher_digest(ex->hasher);
}

static void collect_stats(struct evr_executor *ex, uint32_t n, uint32_t nsub)
{
    ex->stats.requests += n;
    ex->stats.subbatches += nsub;
    for (int i = 0; i < ex->nthreads; i++) {
        ex->stats.retries += ex->workers[i].retries;
        ex->stats.failed += ex->workers[i].failed;
        ex->workers[i].retries = 0;
        ex->workers[i].failed = 0;
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
    for (uint32_t s = 0; s < plan->nsub; s++) {
        uint32_t from = plan->sub_start[s];
        run_subbatch(ex, b, plan->order + from, plan->sub_start[s + 1] - from);
    }
    digest_responses(ex, b->n);
    collect_stats(ex, b->n, plan->nsub);
    return 0;
}

int evr_executor_run_sequential(struct evr_executor *ex,
                                const struct evr_batch *b,
                                const uint32_t *order, struct evr_err *err)
{
    int rc = check_batch(ex, b, err);
    if (rc != 0) {
        return rc;
    }
    struct evr_cow_conn *seq = evr_cow_seq(ex->cow);
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t idx = order ? order[i] : i;
        if (idx >= b->n) {
            return evr_err_set(err, EVR_EINVAL, "order names request %u of %u",
                               idx, b->n);
        }
        run_request(ex, b, idx, seq, 0, &ex->workers[0]);
    }
    digest_responses(ex, b->n);
    collect_stats(ex, b->n, 1);
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

evr_h128 evr_token(uint64_t op, evr_h128 state_root, evr_h128 responses)
{
    uint8_t in[40];
    evr_store_u64(in, op);
    evr_h128_to_bytes(state_root, in + 8);
    evr_h128_to_bytes(responses, in + 24);
    return evr_hash128(in, sizeof in, 0x65767220746f6b6eULL); /* "evr tokn" */
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
