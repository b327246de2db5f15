/*
 * Running one request: transactions, savepoints, retries.
 *
 * Grouped mode (the default). A request is an SQLite SAVEPOINT — a nested
 * transaction: atomic, and rolled back alone when it fails — inside a
 * transaction its connection shares with the requests before it:
 *
 *   - the writer connection (worker 0 in a parallel run, the sequential
 *     connection otherwise) keeps one transaction open across requests and
 *     commits at the end of the sub-batch (parallel) or batch (sequential):
 *     group commit, one WAL append and one lock round per group;
 *   - a reader connection keeps one read transaction across the read-only
 *     requests of a sub-batch: one snapshot, in which nothing a correctly
 *     hinted reader reads can change.
 *
 * Request isolation holds because inside a sub-batch no two requests
 * conflict and only the writer connection writes; a request that writes
 * against its hint, on a reader connection, is committed on its own at once,
 * so no transaction of a reader connection ever holds two requests' writes.
 * If a group's COMMIT fails (a full disk), every request of the group fails
 * with that error.
 *
 * Per-request mode: every request is one transaction of its own (BEGIN
 * IMMEDIATE for writers), for comparison.
 *
 * Life cycle of one attempt (grouped):
 *
 *   open txn (BEGIN, or BEGIN IMMEDIATE for a writer) if none is open
 *   [SAVEPOINT] -> execute -> capture ok? -> [RELEASE]   -> done (txn open)
 *                     | error / capture failure
 *                     +-> [ROLLBACK TO + RELEASE] or ROLLBACK -> done
 *   end of sub-batch or batch: COMMIT (failure fails the group's requests)
 *
 * Busy: a request that loses SQLITE_BUSY/SQLITE_LOCKED (only possible with
 * wrong hints or foreign connections) is rolled back and retried, ending its
 * connection's transaction first and then holding the write lock from its
 * start (BEGIN IMMEDIATE), at most EVR_EXEC_ATTEMPTS_MAX times with a
 * growing pause; then it fails with EVR_EBUSY. Waits for the lock itself are
 * bounded by cow_state's busy handler.
 */
#include <sched.h>
#include <time.h>

#include "common/clock.h"
#include "executor/internal.h"

static bool is_busy(int rc)
{
    return rc > 0 &&
           ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED);
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

bool evr__hinted_writer(const struct evr_batch *b, uint32_t idx)
{
    return b->csets == NULL || evr_cset_writes(&b->csets[idx]);
}

static bool txn_writes(struct worker *w)
{
    return sqlite3_txn_state(evr_cow_conn_db(w->conn), "main") ==
           SQLITE_TXN_WRITE;
}

static void fail_request(struct evr_executor *ex, struct worker *w,
                         uint32_t idx, int rc)
{
    struct evr_response *r = &ex->resp[idx];
    if (r->status == 0) {
        w->failed++;
    }
    r->status = rc;
    evr_buf_reset(&r->body); /* an error's response is its status */
}

static void rollback_txn(struct worker *w)
{
    if (!sqlite3_get_autocommit(evr_cow_conn_db(w->conn))) {
        step_stmt(w->conn, SLOT_ROLLBACK, "ROLLBACK");
    }
    w->in_txn = false;
}

/* Every request whose writes the lost transaction held fails with rc. */
static void fail_pending(struct evr_executor *ex, struct worker *w, int rc)
{
    for (uint32_t i = 0; i < w->npending; i++) {
        fail_request(ex, w, w->pending[i], rc);
    }
    w->npending = 0;
    w->in_txn = false;
}

void evr__end_txn(struct evr_executor *ex, struct worker *w)
{
    int rc = SQLITE_OK;
    if (!sqlite3_get_autocommit(evr_cow_conn_db(w->conn))) {
        rc = step_stmt(w->conn, SLOT_COMMIT, "COMMIT");
    } else if (w->in_txn && w->npending > 0) {
        rc = SQLITE_ABORT; /* SQLite already rolled it back */
    }
    if (rc != SQLITE_OK) {
        rollback_txn(w);
        fail_pending(ex, w, rc);
    }
    w->npending = 0;
    w->in_txn = false;
}

/* Opens the transaction this request needs, if it is not open already. */
static int open_txn(struct evr_executor *ex, struct worker *w, bool writes)
{
    if (w->in_txn && sqlite3_get_autocommit(evr_cow_conn_db(w->conn))) {
        fail_pending(ex, w, SQLITE_ABORT); /* SQLite rolled it back */
    }
    if (ex->txn_mode == EVR_TXN_PER_REQUEST) {
        evr__end_txn(ex, w);
    } else if (writes && w->in_txn && !txn_writes(w)) {
        evr__end_txn(ex, w); /* a read snapshot cannot safely turn writer */
    }
    if (w->in_txn) {
        return SQLITE_OK;
    }
    int rc = writes ? step_stmt(w->conn, SLOT_BEGIN_IMMEDIATE,
                                "BEGIN IMMEDIATE")
                    : step_stmt(w->conn, SLOT_BEGIN, "BEGIN");
    w->in_txn = rc == SQLITE_OK;
    return rc;
}

/* Keeps or undoes the request just run, inside its savepoint. */
static int close_savepoint(struct evr_executor *ex, struct worker *w,
                           uint32_t idx, int rc)
{
    sqlite3 *db = evr_cow_conn_db(w->conn);
    if (rc == SQLITE_OK) {
        rc = step_stmt(w->conn, SLOT_RELEASE, "RELEASE evr_request");
    }
    if (rc == SQLITE_OK) {
        if (txn_writes(w)) {
            w->pending[w->npending++] = idx;
        }
        return rc;
    }
    if (!sqlite3_get_autocommit(db)) {
        step_stmt(w->conn, SLOT_ROLLBACK_TO, "ROLLBACK TO evr_request");
        step_stmt(w->conn, SLOT_RELEASE, "RELEASE evr_request");
    }
    if (sqlite3_get_autocommit(db)) {
        /* Some errors (a full disk, out of memory, I/O) make SQLite roll the
         * whole transaction back: the requests before this one lost their
         * writes too. */
        fail_pending(ex, w, rc);
    } else if (is_busy(rc)) {
        evr__end_txn(ex, w); /* the retry starts a transaction afresh */
    }
    return rc;
}

/* Keeps or undoes a request run without a savepoint: it shares only a read
 * transaction, or it is alone in its transaction. */
static int close_plain(struct evr_executor *ex, struct worker *w, uint32_t idx,
                       int rc)
{
    if (rc != SQLITE_OK) {
        rollback_txn(w);
        return rc;
    }
    if (txn_writes(w) || ex->txn_mode == EVR_TXN_PER_REQUEST) {
        w->pending[w->npending++] = idx;
        evr__end_txn(ex, w);
        return ex->resp[idx].status != 0 ? ex->resp[idx].status : SQLITE_OK;
    }
    return SQLITE_OK;
}

static int attempt(struct evr_executor *ex, struct worker *w,
                   struct evr_ctx *ctx, const struct evr_request *req,
                   struct evr_buf *body, bool writes)
{
    int rc = open_txn(ex, w, writes);
    if (rc != SQLITE_OK) {
        return rc;
    }
    /* Only the writer connection groups writes; on a reader connection a
     * request that writes (a retry, a wrong hint) is committed at once by
     * close_plain. */
    bool savepoint = ex->txn_mode == EVR_TXN_GROUPED && w->writer;
    if (savepoint) {
        rc = step_stmt(w->conn, SLOT_SAVEPOINT, "SAVEPOINT evr_request");
        if (rc != SQLITE_OK) {
            return rc;
        }
    }
    rc = ex->app->ops->execute(ex->app->impl, ctx, req->data, req->len, body);
    /* A change the hook could not capture must not commit. */
    int cap = evr_cow_conn_take_capture_error(w->conn);
    if (rc == SQLITE_OK && cap != 0) {
        rc = cap;
    }
    return savepoint ? close_savepoint(ex, w, ctx->index, rc)
                     : close_plain(ex, w, ctx->index, rc);
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

void evr__run_request(struct evr_executor *ex, const struct evr_batch *b,
                      uint32_t idx, struct worker *w)
{
    struct evr_response *r = &ex->resp[idx];
    uint64_t t0 = evr_now_ns();
    struct evr_ctx ctx = {
        .conn = w->conn,
        .db = evr_cow_conn_db(w->conn),
        .op = b->op,
        .index = idx,
        .worker = w->id,
        .timestamp_us = b->timestamp_us,
    };
    bool writes = evr__hinted_writer(b, idx);
    int rc = SQLITE_BUSY;
    r->status = 0;
    for (int tries = 0; tries < EVR_EXEC_ATTEMPTS_MAX && is_busy(rc);
         tries++) {
        if (tries > 0) {
            w->retries++;
            backoff(tries);
        }
        evr_buf_reset(&r->body);
        evr_rng_seed2(&ctx.rng, b->seed, idx);
        /* A retry holds the write lock from its start. */
        rc = attempt(ex, w, &ctx, &b->req[idx], &r->body, writes || tries > 0);
    }
    if (is_busy(rc)) {
        rc = EVR_EBUSY;
    }
    if (rc != SQLITE_OK) {
        fail_request(ex, w, idx, rc);
    }
    r->exec_ns = evr_now_ns() - t0;
}
