/*
 * cow_state: connections, batch life cycle, digests of whole files.
 *
 * Batch life cycle (per ring slot):
 *
 *   FREE --begin--> EXECUTING --end--> EXECUTED --commit--> FREE
 *                       |                  |
 *                       +----rollback------+------> FREE
 *
 * The ring holds uncommitted batches oldest first; commits take from its
 * head, rollbacks from its tail back to the batch named.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "cow_state/internal.h"

static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup_once(void)
{
    /* Fails harmlessly (SQLITE_MISUSE) if SQLite was already initialized. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
}

void evr_sqlite_setup(void)
{
    pthread_once(&sqlite_once, sqlite_setup_once);
}

int evr__sqlite_err(struct evr_err *err, sqlite3 *db, int rc,
                    const char *what)
{
    int code = EVR_ESQL;
    int primary = rc & 0xff;
    if (primary == SQLITE_FULL) {
        code = EVR_ENOSPC;
    } else if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
        code = EVR_ECORRUPT;
    } else if (primary == SQLITE_NOMEM) {
        code = EVR_ENOMEM;
    } else if (primary == SQLITE_IOERR) {
        code = EVR_EIO;
    } else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
        code = EVR_EBUSY;
    }
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return evr_err_set(err, code, "%s: %s (SQLite code %d)", what, msg, rc);
}

void evr_cow_opts_default(struct evr_cow_opts *o, const char *path,
                          int workers)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    o->workers = workers;
    o->capture = true;
    o->depth_max = 64;
    o->batch_bytes_max = 256u << 20;
    o->delta_retain = 64;
    o->synchronous = 1;
    o->mmap_bytes = 0x7fff0000; /* Debian's SQLITE_MAX_MMAP_SIZE */
    o->cache_kib = 16384;
    o->busy_timeout_ms = 10000;
    o->checkpoint_pages = 1000;
}

const char *evr__cow_vfs(const struct evr_cow *cow)
{
    return cow->opts.memory ? EVR__MEMVFS_NAME : EVR__VFS_NAME;
}

struct evr_cow_conn *evr__seq(struct evr_cow *cow)
{
    return &cow->conns[cow->nconns - 1];
}

/* ------------------------------------------------------------ connections */

/*
 * Writers wait for SQLite's write lock here. SQLite's default handler
 * sleeps whole milliseconds, far longer than one request; this one yields
 * first, then sleeps with a growing but capped delay, and gives up after
 * busy_timeout_ms so that no request waits unboundedly.
 */
static int busy_wait(void *arg, int count)
{
    struct evr_cow_conn *c = arg;
    uint64_t now = evr_now_ns();
    if (count == 0) {
        c->busy_start_ns = now;
    }
    uint64_t limit_ns = (uint64_t)c->cow->opts.busy_timeout_ms * 1000000ULL;
    if (now - c->busy_start_ns > limit_ns) {
        return 0;
    }
    if (count < 64) {
        sched_yield();
        return 1;
    }
    int shift = (count - 64) / 16;
    long ns = 1000L << (shift > 10 ? 10 : shift); /* 1 us .. ~1 ms */
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
    return 1;
}

/*
 * Application statements may read and write rows, nothing else: schema
 * changes, ATTACH, PRAGMAs and temporary objects would escape the digest or
 * outlive the request, and random()/current_* would make sequential
 * execution nondeterministic (docs/DETERMINISM.md).
 */
static int authorize(void *arg, int action, const char *a1, const char *a2,
                     const char *dbname, const char *trigger)
{
    (void)a1;
    (void)dbname;
    (void)trigger;
    struct evr_cow_conn *c = arg;
    if (c->internal) {
        return SQLITE_OK;
    }
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_INSERT:
    case SQLITE_UPDATE:
    case SQLITE_DELETE:
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_FUNCTION:
        if (a2 != NULL &&
            (strcmp(a2, "random") == 0 || strcmp(a2, "randomblob") == 0 ||
             strncmp(a2, "current_", 8) == 0)) {
            return SQLITE_DENY;
        }
        return SQLITE_OK;
    default:
        return SQLITE_DENY;
    }
}

static int conn_pragmas(struct evr_cow_conn *c, const struct evr_cow_opts *o,
                        struct evr_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = %d; PRAGMA mmap_size = %lld; "
             "PRAGMA cache_size = %d; PRAGMA foreign_keys = OFF",
             o->synchronous, o->memory ? 0LL : (long long)o->mmap_bytes,
             -o->cache_kib);
    return evr__exec(c, sql, err);
}

/*
 * The journal mode: WAL, so that worker connections read while the writer
 * writes. In memory with no workers the sequential connection is the only
 * one, and a rollback journal in memory does less per commit than a WAL
 * (pages are written in place once, no frame checksums, no checkpoint
 * copies, no WAL lookups on reads).
 */
static const char *journal_mode(const struct evr_cow *cow)
{
    return cow->opts.memory && cow->opts.workers == 0 ? "memory" : "wal";
}

static int set_journal_mode(struct evr_cow_conn *c, struct evr_err *err)
{
    const char *want = journal_mode(c->cow);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA journal_mode = %s", want);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, c->db, rc, "setting the journal mode");
    }
    int step = sqlite3_step(st);
    const char *mode = step == SQLITE_ROW
                           ? (const char *)sqlite3_column_text(st, 0)
                           : NULL;
    int erc = 0;
    if (step != SQLITE_ROW) {
        erc = evr__sqlite_err(err, c->db, step, "setting the journal mode");
    } else if (mode == NULL || strcmp(mode, want) != 0) {
        erc = evr_err_set(err, EVR_ESQL, "'%s' cannot use journal mode %s "
                          "(got %s)", c->cow->path, want,
                          mode ? mode : "nothing");
    }
    sqlite3_finalize(st);
    return erc;
}

static int conn_open(struct evr_cow *cow, int index, struct evr_err *err)
{
    struct evr_cow_conn *c = &cow->conns[index];
    memset(c, 0, sizeof *c);
    c->cow = cow;
    c->index = index;
    c->internal = true;
    evr_buf_init(&c->scratch, SIZE_MAX);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    int rc = cow->opts.memory ? evr__memvfs_setup() : evr__vfs_setup();
    if (rc != SQLITE_OK) {
        return evr_err_set(err, EVR_ESQL, "registering the evr VFS: %s",
                           sqlite3_errstr(rc));
    }
    rc = sqlite3_open_v2(cow->path, &c->db, flags, evr__cow_vfs(cow));
    if (rc != SQLITE_OK) {
        evr__sqlite_err(err, c->db, rc, cow->path);
        sqlite3_close(c->db);
        c->db = NULL;
        return err ? err->code : EVR_ESQL;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_handler(c->db, busy_wait, c);
    int erc = index == cow->nconns - 1 ? set_journal_mode(c, err) : 0;
    erc = erc ? erc : conn_pragmas(c, &cow->opts, err);
    if (erc != 0) {
        return erc;
    }
    sqlite3_set_authorizer(c->db, authorize, c);
    if (cow->opts.capture) {
        evr__capture_install(c);
    }
    evr__ckpt_install(cow, c->db);
    return 0;
}

static void conn_close(struct evr_cow_conn *c)
{
    for (int i = 0; i < EVR_COW_STMT_SLOTS; i++) {
        sqlite3_finalize(c->stmts[i]);
        c->stmts[i] = NULL;
    }
    if (c->db != NULL) {
        sqlite3_close(c->db);
        c->db = NULL;
    }
    evr_buf_free(&c->scratch);
}

void evr__cow_close_conns(struct evr_cow *cow)
{
    evr__ckpt_stop(cow);
    if (cow->conns == NULL) {
        return;
    }
    evr__schema_finalize_stmts(&cow->schema);
    sqlite3_finalize(cow->st_begin);
    sqlite3_finalize(cow->st_commit);
    cow->st_begin = cow->st_commit = NULL;
    for (int i = 0; i < cow->nconns; i++) {
        cow->stats.hook_calls += cow->conns[i].hook_calls;
        cow->stats.hook_ns += cow->conns[i].hook_ns;
        cow->conns[i].hook_calls = cow->conns[i].hook_ns = 0;
    }
    /* The sequential connection last: closing the last connection
     * checkpoints the WAL into the database file. */
    for (int i = 0; i < cow->nconns; i++) {
        conn_close(&cow->conns[i]);
    }
}

static int check_file(const char *path, struct evr_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return evr_err_set(err, errno == ENOENT ? EVR_ENOENT : EVR_EIO,
                           "cannot open '%s': %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return evr_err_set(err, EVR_EINVAL, "'%s' is not a regular file",
                           path);
    }
    return 0;
}

/* Opens the sequential connection (which sets WAL mode), loads and checks
 * the schema and the digest, then opens the workers. */
int evr__cow_open_conns(struct evr_cow *cow, struct evr_err *err)
{
    int rc = check_file(cow->path, err);
    if (rc != 0) {
        return rc;
    }
    cow->nconns = cow->opts.workers + 1;
    rc = conn_open(cow, cow->nconns - 1, err);
    if (rc == 0) {
        rc = evr__schema_load(evr__seq(cow)->db, true, &cow->schema, err);
        if (rc != 0) {
            evr_err_wrap(err, rc, "'%s'", cow->path);
        }
    }
    if (rc == 0) {
        rc = evr__normalize(cow, err);
    }
    if (rc == 0) {
        rc = evr__digest_scan(evr__seq(cow)->db, &cow->schema, err);
    }
    for (int i = 0; rc == 0 && i < cow->opts.workers; i++) {
        rc = conn_open(cow, i, err);
    }
    if (rc == 0) {
        rc = evr__ckpt_start(cow, err);
    }
    if (rc == 0) {
        for (int i = 0; i < cow->nconns; i++) {
            cow->conns[i].internal = false;
        }
        cow->open_root = evr__digest_root(&cow->schema);
    }
    return rc;
}

static int check_opts(const struct evr_cow_opts *o, struct evr_err *err)
{
    if (o->path == NULL) {
        return evr_err_set(err, EVR_EINVAL, "no database path given");
    }
    if (o->workers < 0 || o->workers > EVR_COW_WORKERS_MAX) {
        return evr_err_set(err, EVR_EINVAL, "workers must be 0..%d, not %d",
                           EVR_COW_WORKERS_MAX, o->workers);
    }
    if (o->depth_max < 1 || o->depth_max > EVR_COW_DEPTH_MAX) {
        return evr_err_set(err, EVR_EINVAL, "depth_max must be 1..%d, not %d",
                           EVR_COW_DEPTH_MAX, o->depth_max);
    }
    if (o->delta_retain < 0 || o->delta_retain > 1 << 20) {
        return evr_err_set(err, EVR_EINVAL, "delta_retain out of range: %d",
                           o->delta_retain);
    }
    if (o->synchronous < 0 || o->synchronous > 3 || o->cache_kib < 0 ||
        o->mmap_bytes < 0 || o->busy_timeout_ms < 0 ||
        o->checkpoint_pages < 1) {
        return evr_err_set(err, EVR_EINVAL, "bad SQLite tuning options");
    }
    return 0;
}

static int cow_alloc(struct evr_cow *cow, struct evr_err *err)
{
    const struct evr_cow_opts *o = &cow->opts;
    cow->conns = calloc((size_t)o->workers + 1, sizeof *cow->conns);
    cow->ring = calloc((size_t)o->depth_max, sizeof *cow->ring);
    cow->deltas = calloc((size_t)o->delta_retain + 1, sizeof *cow->deltas);
    if (!cow->conns || !cow->ring || !cow->deltas) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    for (int i = 0; i < o->depth_max; i++) {
        evr__batch_init(&cow->ring[i], o->batch_bytes_max);
    }
    for (int i = 0; i < o->delta_retain; i++) {
        evr__batch_init(&cow->deltas[i].batch, o->batch_bytes_max);
    }
    return 0;
}

int evr_cow_open(const struct evr_cow_opts *opts, struct evr_cow **out,
                 struct evr_err *err)
{
    *out = NULL;
    int rc = check_opts(opts, err);
    if (rc != 0) {
        return rc;
    }
    evr_sqlite_setup();
    if (opts->capture &&
        !sqlite3_compileoption_used("ENABLE_PREUPDATE_HOOK")) {
        return evr_err_set(err, EVR_ESQL,
                           "this SQLite (%s) was built without "
                           "SQLITE_ENABLE_PREUPDATE_HOOK, which change "
                           "capture needs (Debian's libsqlite3-0 has it)",
                           sqlite3_libversion());
    }
    struct evr_cow *cow = calloc(1, sizeof *cow);
    if (cow == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    cow->opts = *opts;
    cow->path = strdup(opts->path);
    cow->opts.path = cow->path;
    pthread_mutex_init(&cow->capture_mu, NULL);
    evr__ckpt_init(cow);
    rc = cow->path ? cow_alloc(cow, err)
                   : evr_err_set(err, EVR_ENOMEM, "out of memory");
    if (rc == 0 && opts->memory) {
        rc = check_file(cow->path, err);
        rc = rc ? rc : evr__mem_load(cow->path, err);
        cow->loaded = rc == 0;
    }
    if (rc == 0) {
        rc = evr__cow_open_conns(cow, err);
    }
    if (rc != 0) {
        evr_cow_close(cow);
        return rc;
    }
    *out = cow;
    return 0;
}

void evr_cow_close(struct evr_cow *cow)
{
    if (cow == NULL) {
        return;
    }
    evr__cow_close_conns(cow);
    if (cow->loaded) {
        evr__mem_drop(cow->path);
    }
    evr__schema_free(&cow->schema);
    for (int i = 0; cow->ring && i < cow->opts.depth_max; i++) {
        evr__batch_free(&cow->ring[i]);
    }
    for (int i = 0; cow->deltas && i < cow->opts.delta_retain; i++) {
        evr__batch_free(&cow->deltas[i].batch);
    }
    free(cow->ring);
    free(cow->deltas);
    free(cow->conns);
    pthread_mutex_destroy(&cow->capture_mu);
    evr__ckpt_destroy(cow);
    free(cow->path);
    free(cow);
}

static int sync_path(const char *path, struct evr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return evr_err_set(err, EVR_EIO, "syncing '%s': %s", path,
                           strerror(e));
    }
    close(fd);
    return 0;
}

int evr_cow_save(struct evr_cow *cow, struct evr_err *err)
{
    if (cow->executing != NULL) {
        return evr_err_set(err, EVR_ESTATE, "saving while a batch executes");
    }
    /* The checkpointer would hold the checkpoint lock against this one. */
    evr__ckpt_stop(cow);
    sqlite3 *db = evr__seq(cow)->db;
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                       NULL, NULL);
    int erc = rc == SQLITE_OK
                  ? 0
                  : evr__sqlite_err(err, db, rc, "checkpointing to save");
    if (erc == 0) {
        erc = cow->loaded ? evr__mem_save(cow->path, err)
                          : sync_path(cow->path, err);
    }
    struct evr_err again = {0};
    if (evr__ckpt_start(cow, &again) != 0 && erc == 0) {
        erc = evr_err_set(err, again.code, "%s", again.msg);
    }
    return erc;
}

int evr_cow_workers(const struct evr_cow *cow)
{
    return cow->opts.workers;
}

bool evr_cow_capturing(const struct evr_cow *cow)
{
    return cow->opts.capture;
}

struct evr_cow_conn *evr_cow_worker(struct evr_cow *cow, int i)
{
    assert(i >= 0);
    assert(i < cow->opts.workers);
    return &cow->conns[i];
}

struct evr_cow_conn *evr_cow_seq(struct evr_cow *cow)
{
    return evr__seq(cow);
}

sqlite3 *evr_cow_conn_db(struct evr_cow_conn *c)
{
    return c->db;
}

int evr_cow_conn_take_capture_error(struct evr_cow_conn *c)
{
    /* No lock: capture_rc is written by the hook on this connection's
     * thread, which is the thread that takes it. */
    int rc = c->capture_rc;
    c->capture_rc = 0;
    return rc;
}

sqlite3_stmt *evr_cow_conn_stmt(struct evr_cow_conn *c, unsigned slot,
                                const char *sql, struct evr_err *err)
{
    if (slot >= EVR_COW_STMT_SLOTS) {
        evr_err_set(err, EVR_EINVAL, "statement slot %u out of range", slot);
        return NULL;
    }
    sqlite3_stmt *st = c->stmts[slot];
    if (st != NULL) {
        assert(strcmp(sqlite3_sql(st), sql) == 0);
        return st;
    }
    int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                                &c->stmts[slot], NULL);
    if (rc != SQLITE_OK) {
        evr__sqlite_err(err, c->db, rc, sql);
        return NULL;
    }
    return c->stmts[slot];
}

/* ------------------------------------------------------------ batches */

int evr_cow_batch_begin(struct evr_cow *cow, uint64_t op, struct evr_err *err)
{
    if (cow->executing != NULL) {
        return evr_err_set(err, EVR_ESTATE,
                           "batch %llu begins while batch %llu executes",
                           (unsigned long long)op,
                           (unsigned long long)cow->executing->op);
    }
    if (op <= cow->last_op) {
        return evr_err_set(err, EVR_EINVAL,
                           "batch %llu begins after batch %llu: ops must grow",
                           (unsigned long long)op,
                           (unsigned long long)cow->last_op);
    }
    if (cow->stray_write) {
        return evr_err_set(err, EVR_ESTATE,
                           "table '%s' was changed outside any batch; the "
                           "digest no longer describes the database",
                           cow->stray_table);
    }
    if (cow->ring_count > 0 &&
        evr__ring_at(cow, cow->ring_count - 1)->state != EVR__BATCH_EXECUTED) {
        return evr_err_set(err, EVR_ESTATE,
                           "batch %llu did not end; roll it back first",
                           (unsigned long long)evr__ring_at(
                               cow, cow->ring_count - 1)->op);
    }
    uint64_t prev_last_op = cow->last_op;
    cow->last_op = op;
    if (!cow->opts.capture) {
        return 0;
    }
    if (cow->ring_count == cow->opts.depth_max) {
        return evr_err_set(err, EVR_ELIMIT,
                           "%d batches are uncommitted (depth_max)",
                           cow->ring_count);
    }
    struct evr__batch *b = evr__ring_at(cow, cow->ring_count);
    evr__batch_clear(b);
    b->op = op;
    b->prev_last_op = prev_last_op;
    b->pre_root = evr__digest_root(&cow->schema);
    b->state = EVR__BATCH_EXECUTING;
    cow->ring_count++;
    pthread_mutex_lock(&cow->capture_mu);
    cow->executing = b;
    pthread_mutex_unlock(&cow->capture_mu);
    return 0;
}

/* A connection whose capture failed must have rolled its transaction back
 * (and taken the error) before the batch ends. */
static int check_conns_clean(struct evr_cow *cow, struct evr_err *err)
{
    for (int i = 0; i < cow->nconns; i++) {
        if (cow->conns[i].capture_rc != 0) {
            return evr_err_set(err, EVR_ESTATE,
                               "connection %d: change capture failed (%s) "
                               "and its transaction was not rolled back",
                               i, evr_strerror(cow->conns[i].capture_rc));
        }
        if (!sqlite3_get_autocommit(cow->conns[i].db)) {
            return evr_err_set(err, EVR_ESTATE,
                               "connection %d still has a transaction open "
                               "at batch end",
                               i);
        }
    }
    return 0;
}

/* Ends capture for the executing batch, if every connection is clean. */
static int stop_capture(struct evr_cow *cow, struct evr_err *err)
{
    pthread_mutex_lock(&cow->capture_mu);
    int rc = check_conns_clean(cow, err);
    if (rc == 0) {
        cow->executing = NULL;
    }
    pthread_mutex_unlock(&cow->capture_mu);
    return rc;
}

int evr_cow_batch_end(struct evr_cow *cow, evr_h128 *state_root,
                      struct evr_err *err)
{
    if (!cow->opts.capture) {
        if (state_root != NULL) {
            *state_root = cow->open_root;
        }
        return 0;
    }
    struct evr__batch *b = cow->executing;
    if (b == NULL) {
        return evr_err_set(err, EVR_ESTATE, "no batch is executing");
    }
    int rc = stop_capture(cow, err);
    uint64_t t0 = evr_now_ns();
    if (rc == 0) {
        rc = evr__batch_finalize(cow, b, err);
    }
    if (rc != 0) {
        return evr_err_wrap(err, rc, "ending batch %llu",
                            (unsigned long long)b->op);
    }
    cow->stats.batches++;
    cow->stats.rows_touched += b->ntouch;
    cow->stats.rows_changed += b->rows_changed;
    cow->stats.end_ns += evr_now_ns() - t0;
    if (state_root != NULL) {
        *state_root = b->post_root;
    }
    return 0;
}

/* Keeps committed batch b for delta export by swapping it with the oldest
 * retained one, whose memory b's ring slot reuses. */
static void retain_delta(struct evr_cow *cow, struct evr__batch *b)
{
    if (cow->opts.delta_retain == 0) {
        return;
    }
    struct evr__delta_slot *d = &cow->deltas[b->op % cow->opts.delta_retain];
    struct evr__batch old = d->batch;
    d->batch = *b;
    *b = old;
}

int evr_cow_commit(struct evr_cow *cow, uint64_t op, struct evr_err *err)
{
    if (!cow->opts.capture) {
        return 0;
    }
    if (cow->ring_count == 0) {
        return evr_err_set(err, EVR_ESTATE,
                           "commit of batch %llu: nothing is uncommitted",
                           (unsigned long long)op);
    }
    struct evr__batch *b = evr__ring_at(cow, 0);
    if (b->op != op || b->state != EVR__BATCH_EXECUTED) {
        return evr_err_set(err, EVR_ESTATE,
                           "commit of batch %llu: the oldest uncommitted "
                           "batch is %llu (%s)",
                           (unsigned long long)op, (unsigned long long)b->op,
                           b->state == EVR__BATCH_EXECUTED ? "executed"
                                                           : "executing");
    }
    retain_delta(cow, b);
    evr__batch_clear(b);
    cow->ring_head = (cow->ring_head + 1) % cow->opts.depth_max;
    cow->ring_count--;
    return 0;
}

static int find_uncommitted(struct evr_cow *cow, uint64_t op)
{
    for (int i = 0; i < cow->ring_count; i++) {
        if (evr__ring_at(cow, i)->op == op) {
            return i;
        }
    }
    return -1;
}

int evr_cow_rollback(struct evr_cow *cow, uint64_t op, struct evr_err *err)
{
    if (!cow->opts.capture) {
        return evr_err_set(err, EVR_ESTATE, "rollback needs change capture");
    }
    int first = find_uncommitted(cow, op);
    if (first < 0) {
        return evr_err_set(err, EVR_ESTATE,
                           "rollback of batch %llu: it is not uncommitted",
                           (unsigned long long)op);
    }
    int rc = stop_capture(cow, err);
    uint64_t t0 = evr_now_ns();
    uint64_t prev_last_op = evr__ring_at(cow, first)->prev_last_op;
    while (rc == 0 && cow->ring_count > first) {
        struct evr__batch *b = evr__ring_at(cow, cow->ring_count - 1);
        rc = evr__batch_undo(cow, b, err);
        if (rc == 0) {
            evr__batch_clear(b);
            cow->ring_count--;
        }
    }
    if (rc == 0) {
        /* Ops may be reused after a rollback (re-execution of batch op). */
        cow->last_op = prev_last_op;
        cow->stats.rollbacks++;
        cow->stats.rollback_ns += evr_now_ns() - t0;
    }
    return rc;
}

uint64_t evr_cow_last_op(const struct evr_cow *cow)
{
    return cow->last_op;
}

int evr_cow_uncommitted(const struct evr_cow *cow)
{
    return cow->ring_count;
}

void evr_cow_stats(const struct evr_cow *cow, struct evr_cow_stats *out)
{
    *out = cow->stats;
    for (int i = 0; i < cow->nconns; i++) {
        out->hook_calls += cow->conns[i].hook_calls;
        out->hook_ns += cow->conns[i].hook_ns;
    }
}

/* ------------------------------------------------------------ digests */

evr_h128 evr_cow_digest(const struct evr_cow *cow)
{
    if (!cow->opts.capture) {
        return cow->open_root;
    }
    /* Table roots are recomputed lazily; the schema is logically const. */
    return evr__digest_root((struct evr__schema *)&cow->schema);
}

static int scan_into_copy(sqlite3 *db, const struct evr__schema *src,
                          evr_h128 *out, struct evr_err *err)
{
    struct evr__schema s;
    int rc = evr__schema_load(db, false, &s, err);
    if (rc != 0) {
        return rc;
    }
    if (src != NULL && s.ntables != src->ntables) {
        rc = evr_err_set(err, EVR_ESCHEMA, "the schema changed under evr");
    }
    if (rc == 0) {
        rc = evr__digest_scan(db, &s, err);
    }
    if (rc == 0) {
        *out = evr__digest_root(&s);
    }
    evr__schema_free(&s);
    return rc;
}

int evr_cow_digest_full(struct evr_cow *cow, evr_h128 *out,
                        struct evr_err *err)
{
    if (cow->executing != NULL) {
        return evr_err_set(err, EVR_ESTATE,
                           "full digest while batch %llu executes",
                           (unsigned long long)cow->executing->op);
    }
    struct evr_cow_conn *c = evr__seq(cow);
    c->internal = true;
    int rc = scan_into_copy(c->db, &cow->schema, out, err);
    c->internal = false;
    return rc;
}

int evr_digest_file(const char *path, evr_h128 *out, struct evr_err *err)
{
    evr_sqlite_setup();
    int rc = check_file(path, err);
    if (rc != 0) {
        return rc;
    }
    sqlite3 *db = NULL;
    int src = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    if (src == SQLITE_OK) {
        /* Reading the schema is the first access that checks the header. */
        src = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL,
                           NULL, NULL);
    }
    if (src != SQLITE_OK) {
        rc = evr__sqlite_err(err, db, src, path);
        if ((src & 0xff) == SQLITE_NOTADB) {
            rc = evr_err_set(err, EVR_ECORRUPT,
                             "'%s' is not an SQLite database", path);
        }
    } else {
        rc = scan_into_copy(db, NULL, out, err);
        if (rc != 0) {
            evr_err_wrap(err, rc, "'%s'", path);
        }
    }
    sqlite3_close(db);
    return rc;
}
