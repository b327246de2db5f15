/*
 * The checkpointer: copies WAL frames back into the database file from a
 * thread and connection of its own, so that executing requests never wait
 * for a checkpoint's writes and fsyncs.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses the
 * threshold, on the executing thread; with 8 KiB pages and a 1000-page
 * threshold that stalled a batch every few dozen batches for several
 * milliseconds (docs/BENCHMARKS.md). Here every connection's WAL hook reports
 * the WAL size after each commit; at checkpoint_pages or more it wakes the
 * checkpointer, which runs a PASSIVE checkpoint (it never blocks readers or
 * the writer). If the WAL still reaches 16 times the threshold — the
 * checkpointer cannot keep up — the committing connection checkpoints
 * itself, so the WAL stays bounded.
 *
 * Threads: the checkpointer thread only touches its own connection and the
 * fields under `mu`. Lock order: `mu` is never held while SQLite runs.
 * Life cycle: mu and cv live as long as the cow (the WAL hook may fire from
 * the first connection on); the thread and its connection are started after
 * the others open and stopped before they close (also around a snapshot
 * import).
 */
#include <string.h>

#include "cow_state/internal.h"

#define FORCE_FACTOR 16

static void *checkpointer_main(void *arg)
{
    struct evr__ckpt *k = arg;
    pthread_mutex_lock(&k->mu);
    for (;;) {
        while (!k->wanted && !k->stop) {
            pthread_cond_wait(&k->cv, &k->mu);
        }
        if (k->stop) {
            break;
        }
        k->wanted = false;
        pthread_mutex_unlock(&k->mu);
        int rc = sqlite3_wal_checkpoint_v2(k->db, "main",
                                           SQLITE_CHECKPOINT_PASSIVE, NULL,
                                           NULL);
        pthread_mutex_lock(&k->mu);
        k->runs++;
        if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
            k->last_rc = rc; /* reported by evr_cow_checkpoint_status */
        }
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static int wal_hook(void *arg, sqlite3 *db, const char *zdb, int pages)
{
    struct evr_cow *cow = arg;
    struct evr__ckpt *k = &cow->ckpt;
    int threshold = cow->opts.checkpoint_pages;
    if (pages < threshold) {
        return SQLITE_OK;
    }
    if (cow->opts.memory || pages >= FORCE_FACTOR * threshold) {
        /* Backpressure: the checkpointer is behind; do one here. */
        sqlite3_wal_checkpoint_v2(db, zdb, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                  NULL);
        return SQLITE_OK;
    }
    pthread_mutex_lock(&k->mu);
    k->wanted = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    return SQLITE_OK;
}

void evr__ckpt_install(struct evr_cow *cow, sqlite3 *db)
{
    sqlite3_wal_hook(db, wal_hook, cow);
}

void evr__ckpt_init(struct evr_cow *cow)
{
    struct evr__ckpt *k = &cow->ckpt;
    memset(k, 0, sizeof *k);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    k->initialized = true;
}

void evr__ckpt_destroy(struct evr_cow *cow)
{
    struct evr__ckpt *k = &cow->ckpt;
    if (k->initialized) {
        pthread_cond_destroy(&k->cv);
        pthread_mutex_destroy(&k->mu);
        k->initialized = false;
    }
}

int evr__ckpt_start(struct evr_cow *cow, struct evr_err *err)
{
    struct evr__ckpt *k = &cow->ckpt;
    k->stop = false;
    if (cow->opts.memory) {
        return 0; /* memory: the committing connection checkpoints */
    }
    int rc = sqlite3_open_v2(cow->path, &k->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                             evr__cow_vfs(cow));
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, k->db, rc, "opening the checkpointer");
    }
    /* The checkpointer's own commits (none) must not re-enter the hook, and
     * its waits for locks are SQLite's, bounded by this timeout. */
    sqlite3_busy_timeout(k->db, cow->opts.busy_timeout_ms);
    if (pthread_create(&k->thread, NULL, checkpointer_main, k) != 0) {
        return evr_err_set(err, EVR_ENOMEM, "starting the checkpointer");
    }
    k->running = true;
    return 0;
}

void evr__ckpt_stop(struct evr_cow *cow)
{
    struct evr__ckpt *k = &cow->ckpt;
    if (!k->initialized) {
        return;
    }
    if (k->running) {
        pthread_mutex_lock(&k->mu);
        k->stop = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
        k->running = false;
    }
    sqlite3_close(k->db);
    k->db = NULL;
}

int evr_cow_checkpoint_status(struct evr_cow *cow, uint64_t *runs)
{
    struct evr__ckpt *k = &cow->ckpt;
    if (!k->initialized) {
        *runs = 0;
        return 0;
    }
    pthread_mutex_lock(&k->mu);
    *runs = k->runs;
    int rc = k->last_rc;
    pthread_mutex_unlock(&k->mu);
    return rc;
}
