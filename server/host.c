/* The replica's state machine over cow_state: host.h gives the design. */
#include "server/host.h"

#include <assert.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow_state/cow_state.h"
#include "executor/executor.h"
#include "mixer/mixer.h"
#include "verifier/verifier.h"

/* What a request of the running batch turned out to be. */
enum run_kind {
    RUN_EXEC,   /* executed now: response from the executor */
    RUN_STORED, /* retry of the last executed: the stored reply */
    RUN_STALE,  /* older than the last executed: EVR_ESTATE */
    RUN_SAME    /* retry of a request executed earlier in this batch */
};

struct run_req {
    enum run_kind kind;
    uint32_t ref;      /* RUN_EXEC: executor index; RUN_SAME: batch index */
    int32_t status;    /* RUN_STORED */
    size_t reply_off;  /* RUN_STORED: in stored */
    uint32_t reply_len;
};

/* An executed, unapplied op (ops applied+1 .. applied+nexec). */
struct exec_op {
    uint64_t op;
    evr_h128 root;
};

struct evr_host {
    struct evr_host_opts o;
    char dir[4096];
    char db_path[4200];
    struct evr_cow *cow;
    struct evr_executor *ex;
    struct evr_mixer *mixer;
    sqlite3_stmt *lookup, *upsert;

    uint64_t applied;
    evr_h128 applied_root;
    struct exec_op *execd; /* ring of depth_max */
    uint32_t nexec;

    /* the batch of the last execute, until delivered */
    bool done;
    uint64_t done_op;
    uint32_t done_n;
    evr_h128 done_root;
    uint32_t cap;
    struct run_req *run;
    struct evr_request *reqs;
    struct evr_cset *csets;
    struct evr_vr_response *resp;
    uint64_t *slot_client; /* same-client map of the batch, 2*cap slots */
    uint32_t *slot_index;
    struct evr_buf stored;

    struct evr_err broken; /* a failure that left the state unknown */

    /* The cow commits lag h->applied while a job runs (host_commit only
     * records them): ops cow_applied+1..applied are committed in the cow
     * by apply_cow_commits once no job runs. */
    uint64_t cow_applied;

    /* Execution thread (o.async): the job life cycle, under mu:
     *   JOB_NONE -> JOB_QUEUED (execute, loop thread)
     *            -> JOB_RUNNING -> JOB_DONE (execution thread)
     *            -> JOB_NONE (settle, loop thread: the result is recorded as
     *               an inline execute would have left it).
     * While a job is QUEUED or RUNNING the execution thread is the cow's
     * control thread and the loop thread touches no cow, executor or
     * statement; otherwise the loop thread is. */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    enum { JOB_NONE, JOB_QUEUED, JOB_RUNNING, JOB_DONE } job;
    bool stop;
    bool job_sequential;
    struct evr_vr_batch job_batch;  /* a copy: the log may change meanwhile */
    struct evr_vr_req *job_reqs;
    uint32_t job_reqs_cap;
    struct evr_buf job_data;
    int job_rc;
    struct evr_err job_err;
    evr_h128 job_root;
    struct evr_err failed;          /* a job's failure, until delivered */
};

#define CLIENTS_SCHEMA                                                        \
    "CREATE TABLE evr_clients(client INTEGER PRIMARY KEY, "                 \
    "request_no INTEGER NOT NULL, status INTEGER NOT NULL, "                \
    "reply BLOB NOT NULL)"

/* ------------------------------------------------------------ statements */

static int prepare_stmts(struct evr_host *h, struct evr_err *err)
{
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(h->cow));
    const char *q1 = "SELECT request_no, status, reply FROM evr_clients "
                     "WHERE client = ?1";
    const char *q2 = "INSERT INTO evr_clients VALUES(?1, ?2, ?3, ?4) "
                     "ON CONFLICT(client) DO UPDATE SET request_no = ?2, "
                     "status = ?3, reply = ?4";
    if (sqlite3_prepare_v3(db, q1, -1, SQLITE_PREPARE_PERSISTENT, &h->lookup,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(db, q2, -1, SQLITE_PREPARE_PERSISTENT, &h->upsert,
                           NULL) != SQLITE_OK) {
        return evr_err_set(err, EVR_ESCHEMA, "client table of '%s': %s",
                           h->db_path, sqlite3_errmsg(db));
    }
    return 0;
}

static void finalize_stmts(struct evr_host *h)
{
    sqlite3_finalize(h->lookup);
    sqlite3_finalize(h->upsert);
    h->lookup = h->upsert = NULL;
}

static int sql_exec(sqlite3 *db, const char *sql, struct evr_err *err)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return evr_err_set(err, EVR_ESQL, "%s: %s", sql, sqlite3_errmsg(db));
    }
    return 0;
}

/* ------------------------------------------------------------ the batch */

static int grow(struct evr_host *h, uint32_t n, struct evr_err *err)
{
    if (n <= h->cap) {
        return 0;
    }
    if (n > EVR_BATCH_SIZE_MAX) {
        return evr_err_set(err, EVR_ELIMIT, "batch of %u requests", n);
    }
    struct run_req *run = realloc(h->run, n * sizeof *run);
    if (run != NULL) {
        h->run = run;
    }
    struct evr_request *reqs = realloc(h->reqs, n * sizeof *reqs);
    if (reqs != NULL) {
        h->reqs = reqs;
    }
    struct evr_cset *cs = realloc(h->csets, n * sizeof *cs);
    if (cs != NULL) {
        h->csets = cs;
    }
    struct evr_vr_response *resp = realloc(h->resp, n * sizeof *resp);
    if (resp != NULL) {
        h->resp = resp;
    }
    uint64_t *sc = realloc(h->slot_client, 2 * (size_t)n * sizeof *sc);
    if (sc != NULL) {
        h->slot_client = sc;
    }
    uint32_t *si = realloc(h->slot_index, 2 * (size_t)n * sizeof *si);
    if (si != NULL) {
        h->slot_index = si;
    }
    if (!run || !reqs || !cs || !resp || !sc || !si) {
        return evr_err_set(err, EVR_ENOMEM, "batch of %u requests", n);
    }
    h->cap = n;
    return 0;
}

/* Index of the latest request of `client` earlier in the batch, or
 * UINT32_MAX; records i as the latest. Open addressing over 2n slots. */
static uint32_t same_client(struct evr_host *h, uint32_t n, uint64_t client,
                            uint32_t i)
{
    size_t slots = 2 * (size_t)n;
    size_t s = (size_t)((client * 0x9e3779b97f4a7c15ull) % slots);
    while (h->slot_index[s] != UINT32_MAX && h->slot_client[s] != client) {
        s = (s + 1) % slots;
    }
    uint32_t prev = h->slot_index[s];
    h->slot_client[s] = client;
    h->slot_index[s] = i;
    return prev;
}

/* Sorts request i into the client table rule's cases (host.h). */
static int classify_req(struct evr_host *h, const struct evr_vr_batch *b,
                        uint32_t i, uint32_t *nexec, struct evr_err *err)
{
    const struct evr_vr_req *q = &b->req[i];
    struct run_req *r = &h->run[i];
    uint32_t prev = same_client(h, b->n, q->client, i);
    if (prev != UINT32_MAX) {
        uint64_t last = b->req[prev].request_no;
        if (q->request_no > last) {
            goto exec;
        }
        r->kind = q->request_no == last ? RUN_SAME : RUN_STALE;
        r->ref = prev;
        return 0;
    }
    sqlite3_bind_int64(h->lookup, 1, (int64_t)q->client);
    int rc = sqlite3_step(h->lookup);
    if (rc == SQLITE_ROW) {
        uint64_t last = (uint64_t)sqlite3_column_int64(h->lookup, 0);
        if (q->request_no <= last) {
            r->kind = q->request_no == last ? RUN_STORED : RUN_STALE;
            r->status = sqlite3_column_int(h->lookup, 1);
            r->reply_len = (uint32_t)sqlite3_column_bytes(h->lookup, 2);
            r->reply_off = h->stored.len;
            const void *p = sqlite3_column_blob(h->lookup, 2);
            rc = evr_buf_put(&h->stored, p, r->reply_len);
            sqlite3_reset(h->lookup);
            return rc == 0 ? 0
                           : evr_err_set(err, rc, "stored reply of %u bytes",
                                         r->reply_len);
        }
    } else if (rc != SQLITE_DONE) {
        sqlite3_reset(h->lookup);
        return evr_err_set(err, EVR_ESQL, "client table lookup: %s",
                           sqlite3_errstr(rc));
    }
    sqlite3_reset(h->lookup);
exec:
    r->kind = RUN_EXEC;
    r->ref = *nexec;
    h->reqs[*nexec] = (struct evr_request){q->data, q->len};
    h->o.app->ops->classify(h->o.app->impl, q->data, q->len,
                            &h->csets[*nexec]);
    (*nexec)++;
    return 0;
}

/* Writes the client rows of the executed requests (inside the batch). */
static int write_clients(struct evr_host *h, const struct evr_vr_batch *b,
                         struct evr_err *err)
{
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(h->cow));
    const struct evr_response *er = evr_executor_responses(h->ex);
    int rc = sql_exec(db, "BEGIN", err);
    for (uint32_t i = 0; rc == 0 && i < b->n; i++) {
        if (h->run[i].kind != RUN_EXEC) {
            continue;
        }
        /* A read-only request leaves no row: running it again is harmless
         * (a retry reads the state as of the retry), and reads stay reads
         * instead of writing their results into the state. */
        if (!evr_cset_writes(&h->csets[h->run[i].ref])) {
            continue;
        }
        const struct evr_response *x = &er[h->run[i].ref];
        sqlite3_bind_int64(h->upsert, 1, (int64_t)b->req[i].client);
        sqlite3_bind_int64(h->upsert, 2, (int64_t)b->req[i].request_no);
        sqlite3_bind_int(h->upsert, 3, x->status);
        sqlite3_bind_blob(h->upsert, 4,
                          x->body.data ? (void *)x->body.data : (void *)"",
                          (int)x->body.len, SQLITE_STATIC);
        int src = sqlite3_step(h->upsert);
        sqlite3_reset(h->upsert);
        if (src != SQLITE_DONE) {
            rc = evr_err_set(err, EVR_ESQL, "client table write: %s",
                             sqlite3_errmsg(db));
        }
    }
    if (rc == 0) {
        return sql_exec(db, "COMMIT", err);
    }
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Responses of the whole batch in batch order (the core digests them). */
static void collect_responses(struct evr_host *h, uint32_t n)
{
    const struct evr_response *er = evr_executor_responses(h->ex);
    for (uint32_t i = 0; i < n; i++) {
        const struct run_req *r = &h->run[i];
        struct evr_vr_response *o = &h->resp[i];
        switch (r->kind) {
        case RUN_EXEC:
            o->status = er[r->ref].status;
            o->len = (uint32_t)er[r->ref].body.len;
            o->data = er[r->ref].body.data;
            break;
        case RUN_STORED:
            o->status = r->status;
            o->len = r->reply_len;
            o->data = h->stored.data + r->reply_off;
            break;
        case RUN_SAME:
            assert(r->ref < i);
            *o = h->resp[r->ref];
            break;
        case RUN_STALE:
            *o = (struct evr_vr_response){EVR_ESTATE, 0, NULL};
            break;
        }
    }
}

static int run_batch(struct evr_host *h, const struct evr_vr_batch *b,
                     bool sequential, uint32_t nexec, evr_h128 *root,
                     struct evr_err *err)
{
    struct evr_batch eb = {.op = b->op, .timestamp_us = b->timestamp_us,
                           .seed = b->seed, .n = nexec, .req = h->reqs,
                           .csets = h->csets};
    int rc = evr_cow_batch_begin(h->cow, b->op, err);
    if (rc != 0) {
        return rc;
    }
    if (nexec > 0 && sequential) {
        rc = evr_executor_run_sequential(h->ex, &eb, NULL, err);
    } else if (nexec > 0) {
        struct evr_plan plan;
        rc = evr_mixer_plan(h->mixer, h->csets, nexec, &plan, err);
        rc = rc ? rc : evr_executor_run_parallel(h->ex, &eb, &plan, err);
    }
    rc = rc ? rc : write_clients(h, b, err);
    rc = rc ? rc : evr_cow_batch_end(h->cow, root, err);
    if (rc != 0 && evr_cow_capturing(h->cow)) {
        struct evr_err rb;
        if (evr_cow_rollback(h->cow, b->op, &rb) != 0) {
            evr_err_set(&h->broken, rb.code, "op %" PRIu64 ": rolling back "
                        "after a failure: %s", b->op, rb.msg);
        }
    }
    return rc;
}

/* Everything execute does to the state: on the loop thread (inline) or on
 * the execution thread (a job). */
static int run_job(struct evr_host *h, const struct evr_vr_batch *b,
                   bool sequential, evr_h128 *root, struct evr_err *err)
{
    int rc = grow(h, b->n > 0 ? b->n : 1, err);
    if (rc != 0) {
        return rc;
    }
    evr_buf_reset(&h->stored);
    memset(h->slot_index, 0xff, 2 * (size_t)b->n * sizeof *h->slot_index);
    uint32_t nexec = 0;
    /* One read transaction for every lookup (each would take and drop the
     * WAL's shared-memory locks on its own). */
    sqlite3 *db = evr_cow_conn_db(evr_cow_seq(h->cow));
    rc = sql_exec(db, "BEGIN", err);
    for (uint32_t i = 0; rc == 0 && i < b->n; i++) {
        rc = classify_req(h, b, i, &nexec, err);
    }
    if (!sqlite3_get_autocommit(db)) {
        int crc = sql_exec(db, "COMMIT", err);
        rc = rc ? rc : crc;
    }
    rc = rc ? rc : run_batch(h, b, sequential, nexec, root, err);
    if (rc == 0) {
        collect_responses(h, b->n);
    }
    return rc;
}

/* Records an executed batch for delivery. */
static void record_done(struct evr_host *h, uint64_t op, uint32_t n,
                        evr_h128 root)
{
    assert(h->nexec < h->o.depth_max);
    h->execd[h->nexec++] = (struct exec_op){op, root};
    h->done = true;
    h->done_op = op;
    h->done_n = n;
    h->done_root = root;
}

static int apply_cow_commits(struct evr_host *h, struct evr_err *err)
{
    while (h->cow_applied < h->applied) {
        int rc = evr_cow_commit(h->cow, h->cow_applied + 1, err);
        if (rc != 0) {
            evr_err_set(&h->broken, rc, "committing op %" PRIu64 ": %s",
                        h->cow_applied + 1, err ? err->msg : "");
            return rc;
        }
        h->cow_applied++;
    }
    return 0;
}

/*
 * Loop thread. Waits for a queued or running job, records its result as
 * an inline execute would have, and brings the cow's commits up to
 * h->applied. Afterwards the loop thread owns the cow again.
 */
static int settle(struct evr_host *h, struct evr_err *err)
{
    bool finished = false;
    if (h->thread_started) {
        pthread_mutex_lock(&h->mu);
        while (h->job == JOB_QUEUED || h->job == JOB_RUNNING) {
            pthread_cond_wait(&h->cv, &h->mu);
        }
        finished = h->job == JOB_DONE;
        h->job = JOB_NONE;
        pthread_mutex_unlock(&h->mu);
    }
    if (finished && h->job_rc == 0) {
        record_done(h, h->job_batch.op, h->job_batch.n, h->job_root);
    } else if (finished) {
        h->failed = h->job_err;
    }
    if (h->broken.code != 0) {
        return evr_err_set(err, h->broken.code, "%s", h->broken.msg);
    }
    return apply_cow_commits(h, err);
}

static bool job_active(struct evr_host *h)
{
    if (!h->thread_started) {
        return false;
    }
    pthread_mutex_lock(&h->mu);
    bool active = h->job == JOB_QUEUED || h->job == JOB_RUNNING;
    pthread_mutex_unlock(&h->mu);
    return active;
}

static void *exec_main(void *arg)
{
    struct evr_host *h = arg;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        while (h->job != JOB_QUEUED && !h->stop) {
            pthread_cond_wait(&h->cv, &h->mu);
        }
        if (h->stop) {
            break;
        }
        h->job = JOB_RUNNING;
        pthread_mutex_unlock(&h->mu);
        h->job_rc = run_job(h, &h->job_batch, h->job_sequential,
                            &h->job_root, &h->job_err);
        pthread_mutex_lock(&h->mu);
        h->job = JOB_DONE;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        h->o.on_done(h->o.done_data); /* the loop delivers */
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* Copies b (its requests live in the core's log, which a view change may
 * rewrite while the job runs) and queues it. */
static int queue_job(struct evr_host *h, const struct evr_vr_batch *b,
                     bool sequential, struct evr_err *err)
{
    if (b->n > h->job_reqs_cap) {
        struct evr_vr_req *q = realloc(h->job_reqs, b->n * sizeof *q);
        if (q == NULL) {
            return evr_err_set(err, EVR_ENOMEM, "batch of %u requests",
                               b->n);
        }
        h->job_reqs = q;
        h->job_reqs_cap = b->n;
    }
    evr_buf_reset(&h->job_data);
    for (uint32_t i = 0; i < b->n; i++) {
        if (evr_buf_put(&h->job_data, b->req[i].data, b->req[i].len) != 0) {
            return evr_err_set(err, EVR_ENOMEM, "batch copy");
        }
    }
    size_t at = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        h->job_reqs[i] = b->req[i];
        h->job_reqs[i].data = h->job_data.data + at;
        at += b->req[i].len;
    }
    h->job_batch = *b;
    h->job_batch.req = h->job_reqs;
    h->job_sequential = sequential;
    pthread_mutex_lock(&h->mu);
    assert(h->job == JOB_NONE);
    h->job = JOB_QUEUED;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static int host_execute(void *data, const struct evr_vr_batch *b,
                        bool sequential, struct evr_err *err)
{
    struct evr_host *h = data;
    assert(!h->done);
    assert(h->nexec < h->o.depth_max);
    int rc = settle(h, err);
    if (rc != 0) {
        return rc;
    }
    if (h->o.before_execute != NULL) {
        h->o.before_execute(h->o.before_data);
    }
    if (h->thread_started) {
        return queue_job(h, b, sequential, err);
    }
    evr_h128 root;
    rc = run_job(h, b, sequential, &root, err);
    if (rc == 0) {
        record_done(h, b->op, b->n, root);
    }
    return rc;
}

bool evr_host_take(struct evr_host *h, struct evr_host_result *out)
{
    if (h->thread_started && !h->done) {
        pthread_mutex_lock(&h->mu);
        bool finished = h->job == JOB_DONE;
        pthread_mutex_unlock(&h->mu);
        struct evr_err ignored;
        if (finished) {
            settle(h, &ignored); /* a failure stays in h->failed/broken */
        }
    }
    if (!h->done) {
        return false;
    }
    h->done = false;
    *out = (struct evr_host_result){h->done_op, h->done_root, h->resp,
                                    h->done_n};
    return true;
}

int evr_host_wait(struct evr_host *h, struct evr_err *err)
{
    int rc = settle(h, err);
    if (rc == 0 && h->failed.code != 0) {
        rc = evr_err_set(err, h->failed.code, "%s", h->failed.msg);
    }
    return rc;
}

int evr_host_deliver(struct evr_host *h, struct evr_vr *r,
                     struct evr_err *err)
{
    struct evr_host_result res;
    bool got = evr_host_take(h, &res);
    if (h->failed.code != 0) {
        return evr_err_set(err, h->failed.code, "executing: %s",
                           h->failed.msg);
    }
    if (!got) {
        return 0;
    }
    evr_vr_executed(r, res.op, res.root, res.resp, res.n);
    return 1;
}

/* ------------------------------------------------------------ commit */

static int host_commit(void *data, uint64_t op, struct evr_err *err)
{
    struct evr_host *h = data;
    assert(h->nexec > 0);
    assert(h->execd[0].op == op);
    if (h->broken.code != 0) {
        return evr_err_set(err, h->broken.code, "%s", h->broken.msg);
    }
    h->applied = op;
    h->applied_root = h->execd[0].root;
    memmove(h->execd, h->execd + 1, (h->nexec - 1) * sizeof *h->execd);
    h->nexec--;
    /* While a job runs the cow is its thread's: the commit waits (it only
     * lets the cow forget op's pre-images). */
    return job_active(h) ? 0 : apply_cow_commits(h, err);
}

static int host_rollback(void *data, uint64_t op, struct evr_err *err)
{
    struct evr_host *h = data;
    assert(op > h->applied);
    assert(!h->done);
    int rc = settle(h, err);
    if (rc != 0) {
        return rc;
    }
    rc = evr_cow_rollback(h->cow, op, err);
    if (rc != 0) {
        return rc;
    }
    while (h->nexec > 0 && h->execd[h->nexec - 1].op >= op) {
        h->nexec--;
    }
    return 0;
}

static int host_delta_export(void *data, uint64_t op, struct evr_buf *out,
                             struct evr_err *err)
{
    struct evr_host *h = data;
    int rc = settle(h, err);
    return rc ? rc : evr_cow_delta_export(h->cow, op, out, err);
}

static int host_delta_apply(void *data, uint64_t op, const void *p,
                            size_t len, evr_h128 *root, struct evr_err *err)
{
    struct evr_host *h = data;
    int rc = settle(h, err);
    assert(h->nexec < h->o.depth_max);
    rc = rc ? rc : evr_cow_delta_apply(h->cow, op, p, len, err);
    if (rc != 0) {
        return rc;
    }
    *root = evr_cow_digest(h->cow);
    h->execd[h->nexec++] = (struct exec_op){op, *root};
    return 0;
}

/* ------------------------------------------------------------ snapshots */

static int read_whole(const char *path, struct evr_buf *out,
                      struct evr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            rc = evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
        } else if (k > 0) {
            rc = evr_buf_put(out, chunk, (size_t)k);
            if (rc != 0) {
                evr_err_set(err, rc, "%s: snapshot too large", path);
            }
        }
        if (k <= 0 || rc != 0) {
            break;
        }
    }
    close(fd);
    return rc;
}

/* Writes p to path; with sync, also to the disk (the clean-stop record).
 * A received snapshot needs no sync: it is read back at once, and a crash
 * before it is installed leaves a replica that recovers anyway. */
static int write_whole(const char *path, const void *p, size_t len,
                       bool sync, struct evr_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t k = write(fd, b, len);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0) {
            int e = errno;
            close(fd);
            return evr_err_set(err, e == ENOSPC ? EVR_ENOSPC : EVR_EIO,
                               "%s: %s", path, strerror(e));
        }
        b += k;
        len -= (size_t)k;
    }
    if ((sync && fsync(fd) != 0) || close(fd) != 0) {
        return evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    return 0;
}

/* Puts back the executed ops whose deltas are in d (after a rollback). */
static int reapply(struct evr_host *h, struct evr_buf *d, uint32_t n,
                   struct evr_err *err)
{
    for (uint32_t k = 0; k < n; k++) {
        int rc = evr_cow_delta_apply(h->cow, h->execd[k].op, d[k].data,
                                     d[k].len, err);
        if (rc == 0 &&
            !evr_h128_eq(evr_cow_digest(h->cow), h->execd[k].root)) {
            rc = evr_err_set(err, EVR_EMISMATCH, "op %" PRIu64 " differs "
                             "after re-applying its delta", h->execd[k].op);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int export_applied(struct evr_host *h, struct evr_buf *out,
                          evr_h128 *root, struct evr_err *err)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/snapshot.out", h->dir);
    int rc = evr_cow_snapshot_export(h->cow, path, err);
    *root = evr_cow_digest(h->cow);
    rc = rc ? rc : read_whole(path, out, err);
    unlink(path);
    return rc;
}

static int host_snapshot_export(void *data, struct evr_buf *out,
                                evr_h128 *root, struct evr_err *err)
{
    struct evr_host *h = data;
    int rc = settle(h, err); /* a result may then wait for delivery */
    if (rc != 0) {
        return rc;
    }
    uint32_t n = h->nexec;
    struct evr_buf *d = calloc(n ? n : 1, sizeof *d);
    if (d == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "snapshot deltas");
    }
    for (uint32_t k = 0; k < n; k++) {
        evr_buf_init(&d[k], SIZE_MAX);
        rc = rc ? rc : evr_cow_delta_export(h->cow, h->execd[k].op, &d[k], err);
    }
    if (rc == 0 && n > 0) {
        rc = evr_cow_rollback(h->cow, h->applied + 1, err);
        if (rc != 0) {
            evr_err_set(&h->broken, rc, "snapshot: %s", err->msg);
        }
    }
    bool rolled = rc == 0 && n > 0;
    rc = rc ? rc : export_applied(h, out, root, err);
    if (rolled) {
        struct evr_err e2;
        if (reapply(h, d, n, &e2) != 0) {
            evr_err_set(&h->broken, e2.code, "snapshot: re-applying "
                        "executed ops: %s", e2.msg);
            rc = rc ? rc : evr_err_set(err, e2.code, "%s", e2.msg);
        }
    }
    for (uint32_t k = 0; k < n; k++) {
        evr_buf_free(&d[k]);
    }
    free(d);
    return rc;
}

static int reopen_executor(struct evr_host *h, struct evr_err *err)
{
    int rc = evr_executor_new(h->cow, h->o.app, h->o.batch_size_max, &h->ex,
                              err);
    return rc ? rc : prepare_stmts(h, err);
}

static int host_snapshot_import(void *data, uint64_t op, const void *p,
                                size_t len, evr_h128 *root,
                                struct evr_err *err)
{
    struct evr_host *h = data;
    assert(!h->done);
    int rc = settle(h, err);
    if (rc != 0) {
        return rc;
    }
    assert(h->nexec == 0);
    char path[4300];
    snprintf(path, sizeof path, "%s/snapshot.in", h->dir);
    rc = write_whole(path, p, len, false, err);
    if (rc != 0) {
        return rc;
    }
    finalize_stmts(h);
    evr_executor_free(h->ex);
    h->ex = NULL;
    rc = evr_cow_snapshot_import(h->cow, path, err);
    unlink(path);
    struct evr_err e2;
    if (reopen_executor(h, &e2) != 0) {
        evr_err_set(&h->broken, e2.code, "after a snapshot: %s", e2.msg);
        return rc ? rc : evr_err_set(err, e2.code, "%s", e2.msg);
    }
    if (rc != 0) {
        return rc;
    }
    *root = evr_cow_digest(h->cow);
    h->applied = op;
    h->cow_applied = op;
    h->applied_root = *root;
    return 0;
}

struct evr_vr_host evr_host_table(struct evr_host *h)
{
    return (struct evr_vr_host){
        .data = h,
        .execute = host_execute,
        .rollback = host_rollback,
        .commit = host_commit,
        .delta_export = host_delta_export,
        .delta_apply = host_delta_apply,
        .snapshot_export = host_snapshot_export,
        .snapshot_import = host_snapshot_import,
    };
}

evr_h128 evr_host_applied_root(const struct evr_host *h)
{
    return h->applied_root;
}

const char *evr_host_db_path(const struct evr_host *h)
{
    return h->db_path;
}

/* ------------------------------------------------------------ open, close */

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void path_in(const struct evr_host *h, const char *name, char *out,
                    size_t n)
{
    snprintf(out, n, "%s/%s", h->dir, name);
}

/*
 * DIR/clean-stop, one text line after the version line:
 *   "evr-clean-stop 2\n<op> <root hex> <resp hex> <view> <resume 0|1>\n"
 * Version 1 (no view, no resume) is still read, as resume 0.
 */
static int read_clean_stop(const char *path, struct evr_vr_applied *a,
                           struct evr_err *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    char root[40], resp[40];
    unsigned long long op, view = 0;
    unsigned version = 0, resume = 0;
    int k = fscanf(f, "evr-clean-stop %u %llu %36s %36s %llu %u", &version,
                   &op, root, resp, &view, &resume);
    fclose(f);
    bool ok = (version == 1 && k == 4) || (version == 2 && k == 6);
    if (!ok || resume > 1 || !evr_h128_from_hex(root, &a->root) ||
        !evr_h128_from_hex(resp, &a->resp_digest)) {
        return evr_err_set(err, EVR_ECORRUPT, "%s: not a clean-stop record",
                           path);
    }
    a->op = op;
    a->resume = resume == 1;
    a->view = a->resume ? view : 0;
    return 0;
}

static int write_clean_stop(const struct evr_host *h,
                            const struct evr_vr_applied *stop,
                            struct evr_err *err)
{
    char path[4300], tmp[4400], text[200], root_hex[33], resp_hex[33];
    path_in(h, "clean-stop", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    evr_h128_to_hex(h->applied_root, root_hex);
    evr_h128_to_hex(stop->resp_digest, resp_hex);
    int n = snprintf(text, sizeof text,
                     "evr-clean-stop 2\n%llu %s %s %llu %d\n",
                     (unsigned long long)h->applied, root_hex, resp_hex,
                     (unsigned long long)stop->view, stop->resume ? 1 : 0);
    int rc = write_whole(tmp, text, (size_t)n, true, err);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    return rc;
}

/* Creates state.db: the application's start state and the client table. */
static int populate(struct evr_host *h, struct evr_err *err)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.new", h->db_path);
    unlink(tmp);
    int rc = evr_app_populate_file(h->o.app, tmp, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(tmp, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = evr_err_set(err, EVR_ESQL, "%s: %s", tmp, sqlite3_errmsg(db));
    }
    rc = rc ? rc : sql_exec(db, CLIENTS_SCHEMA, err);
    rc = rc ? rc : sql_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", err);
    sqlite3_close(db);
    if (rc == 0 && rename(tmp, h->db_path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "%s: %s", h->db_path, strerror(errno));
    }
    return rc;
}

static void remove_db(const struct evr_host *h)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s%s", h->db_path, suffix[i]);
        unlink(p);
    }
}

/* Finds or makes state.db (host.h) and says which start this is. */
static int prepare_db(struct evr_host *h, enum evr_host_start *start,
                      struct evr_vr_applied *a, struct evr_err *err)
{
    char marker[4300];
    path_in(h, "clean-stop", marker, sizeof marker);
    *a = (struct evr_vr_applied){0};
    if (exists(h->db_path) && exists(marker)) {
        *start = EVR_HOST_CLEAN;
        return read_clean_stop(marker, a, err);
    }
    *start = exists(h->db_path) ? EVR_HOST_RESET : EVR_HOST_NEW;
    if (*start == EVR_HOST_RESET && h->o.keep_unclean) {
        *start = EVR_HOST_KEPT;
        return 0;
    }
    remove_db(h);
    return populate(h, err);
}

static int open_state(struct evr_host *h, struct evr_err *err)
{
    struct evr_cow_opts co;
    evr_cow_opts_default(&co, h->db_path, h->o.threads - 1);
    co.capture = h->o.capture;
    co.depth_max = (int)h->o.depth_max;
    /* No fsync: a file left without a clean stop is never trusted (it is
     * repopulated and the replica recovers from its peers), and a clean
     * stop syncs the file before writing its record. fsyncs in the
     * checkpoints stalled the loop for 100-300 ms on this VM. */
    co.synchronous = 0;
    /* Under write load the WAL outgrew 16 x 1000 pages between restarts,
     * and the forced checkpoint then ran on the loop thread. */
    co.checkpoint_pages = 250;
    co.memory = h->o.memory;
    if (co.memory) {
        /* In memory a checkpoint is a copy, done by the committing
         * connection; a longer WAL means fewer copies of hot pages. */
        co.checkpoint_pages = 1000;
    }
    int rc = evr_cow_open(&co, &h->cow, err);
    rc = rc ? rc : evr_mixer_new(h->o.batch_size_max, &h->mixer, err);
    return rc ? rc : reopen_executor(h, err);
}

int evr_host_open(const struct evr_host_opts *o, struct evr_host **out,
                  enum evr_host_start *start, struct evr_vr_applied *applied,
                  struct evr_err *err)
{
    assert(o->threads >= 1);
    assert(o->depth_max >= 1 && o->depth_max <= EVR_HOST_DEPTH_MAX);
    *out = NULL;
    evr_sqlite_setup();
    struct evr_host *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "host");
    }
    h->o = *o;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    evr_buf_init(&h->job_data, SIZE_MAX);
    snprintf(h->dir, sizeof h->dir, "%s", o->dir);
    snprintf(h->db_path, sizeof h->db_path, "%s/state.db", o->dir);
    evr_buf_init(&h->stored, (size_t)EVR_BATCH_SIZE_MAX * 16u << 20);
    h->execd = calloc(o->depth_max, sizeof *h->execd);
    int rc = h->execd ? 0 : evr_err_set(err, EVR_ENOMEM, "host");
    if (rc == 0 && mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        rc = evr_err_set(err, EVR_EIO, "data directory '%s': %s", o->dir,
                         strerror(errno));
    }
    rc = rc ? rc : prepare_db(h, start, applied, err);
    rc = rc ? rc : open_state(h, err);
    if (rc == 0 && *start != EVR_HOST_CLEAN) {
        applied->root = evr_cow_digest(h->cow);
    }
    if (rc == 0 && !evr_h128_eq(applied->root, evr_cow_digest(h->cow))) {
        rc = evr_err_set(err, EVR_EMISMATCH, "%s does not match its "
                         "clean-stop record (changed since?); remove the "
                         "directory to rejoin from the other replicas",
                         h->db_path);
    }
    if (rc == 0 && *start == EVR_HOST_CLEAN) {
        char marker[4300];
        path_in(h, "clean-stop", marker, sizeof marker);
        if (unlink(marker) != 0) {
            rc = evr_err_set(err, EVR_EIO, "%s: %s", marker, strerror(errno));
        }
    }
    if (rc != 0) {
        evr_host_close(h, NULL, NULL);
        return rc;
    }
    h->applied = applied->op;
    h->cow_applied = applied->op;
    h->applied_root = applied->root;
    if (o->async) {
        assert(o->on_done != NULL);
        if (pthread_create(&h->thread, NULL, exec_main, h) != 0) {
            evr_host_close(h, NULL, NULL);
            return evr_err_set(err, EVR_ENOMEM, "starting the execution "
                               "thread");
        }
        h->thread_started = true;
    }
    *out = h;
    return 0;
}

static void stop_thread(struct evr_host *h)
{
    if (!h->thread_started) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->thread, NULL);
    h->thread_started = false;
}

int evr_host_close(struct evr_host *h, const struct evr_vr_applied *stop,
                   struct evr_err *err)
{
    if (h == NULL) {
        return 0;
    }
    assert(stop == NULL || stop->op == h->applied);
    assert(stop == NULL || stop->resume || stop->view == 0);
    int rc = h->cow != NULL ? settle(h, err) : 0;
    stop_thread(h);
    if (rc == 0 && h->cow != NULL && evr_cow_uncommitted(h->cow) > 0 &&
        evr_cow_capturing(h->cow)) {
        rc = evr_cow_rollback(h->cow, h->applied + 1, err);
    }
    if (rc == 0 && h->cow != NULL && !evr_cow_capturing(h->cow)) {
        /* no capture, no incremental digest: the record needs a scan */
        rc = evr_cow_digest_full(h->cow, &h->applied_root, err);
    }
    bool record = rc == 0 && h->cow != NULL && stop != NULL;
    if (record) {
        rc = evr_cow_save(h->cow, err); /* synced: the record may follow */
        record = rc == 0;
    }
    finalize_stmts(h);
    evr_executor_free(h->ex);
    evr_mixer_free(h->mixer);
    evr_cow_close(h->cow);
    rc = record ? write_clean_stop(h, stop, err) : rc;
    evr_buf_free(&h->stored);
    free(h->execd);
    free(h->run);
    free(h->reqs);
    free(h->csets);
    free(h->resp);
    free(h->slot_client);
    free(h->slot_index);
    free(h->job_reqs);
    evr_buf_free(&h->job_data);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    return rc;
}
