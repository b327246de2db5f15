/* Memory storage (evr_cow_opts.memory, cow_state/memvfs.c): the file on
 * disk changes only through evr_cow_save, which writes exactly the state
 * the replica holds; a WAL left on disk is read at load; one path is in
 * memory once; snapshot imports swap the image in memory and a refused one
 * changes nothing; a failed save leaves the file alone; and parallel
 * execution over memory equals sequential execution on disk. */
#include "tests/unit/helpers/cm.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow_state/cow_state.h"
#include "executor/batchset.h"
#include "executor/executor.h"
#include "mixer/mixer.h"
#include "tests/unit/helpers/randdb.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"

/* ---------------------------------------------------------------- helpers */

/* Opens path; checkpoint_pages 0 keeps the default. */
static struct evr_cow *open_cow(const char *path, int workers, bool memory,
                                int checkpoint_pages)
{
    struct evr_cow_opts o;
    evr_cow_opts_default(&o, path, workers);
    o.memory = memory;
    o.cache_kib = 2048;
    if (checkpoint_pages > 0) {
        o.checkpoint_pages = checkpoint_pages;
    }
    struct evr_cow *cow = NULL;
    struct evr_err err = {0};
    th_must(evr_cow_open(&o, &cow, &err), &err);
    assert_non_null(cow);
    return cow;
}

struct bytes {
    uint8_t *data;
    size_t len;
};

static struct bytes slurp(const char *path)
{
    struct bytes b = {0};
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        fail_msg("cannot read '%s': %s", path, strerror(errno));
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    assert_true(n >= 0);
    fseek(fp, 0, SEEK_SET);
    b.len = (size_t)n;
    b.data = malloc(b.len + 1);
    assert_non_null(b.data);
    assert_int_equal(fread(b.data, 1, b.len, fp), b.len);
    fclose(fp);
    return b;
}

static bool same_bytes(const char *path, const struct bytes *want)
{
    struct bytes now = slurp(path);
    bool same = now.len == want->len &&
                memcmp(now.data, want->data, now.len) == 0;
    free(now.data);
    return same;
}

static void assert_file_is(const char *path, const struct bytes *want)
{
    if (!same_bytes(path, want)) {
        fail_msg("'%s' changed on disk", path);
    }
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool exists_suffixed(const char *path, const char *suffix)
{
    char p[4096];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    return exists(p);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

static void assert_no_wal_files(const char *path)
{
    if (exists_suffixed(path, "-wal") || exists_suffixed(path, "-shm")) {
        fail_msg("'%s' has a -wal or -shm on disk", path);
    }
}

static void assert_digest_is(struct evr_cow *cow, evr_h128 want)
{
    struct evr_err err = {0};
    evr_h128 full;
    th_must(evr_cow_digest_full(cow, &full, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(cow), want));
    assert_true(evr_h128_eq(full, want));
}

/* State root of path as a fresh file-mode cow computes it at open. */
static evr_h128 file_cow_digest(const char *path)
{
    struct evr_cow *c = open_cow(path, 0, false, 0);
    evr_h128 d = evr_cow_digest(c);
    evr_cow_close(c);
    return d;
}

/* A batch of n randdb requests, alternating between the sequential and
 * the first worker connection when the cow has workers. */
static evr_h128 mixed_batch(struct evr_cow *cow, uint64_t op, int n,
                            struct evr_rng *rng)
{
    struct evr_err err = {0};
    th_must(evr_cow_batch_begin(cow, op, &err), &err);
    for (int i = 0; i < n; i++) {
        struct evr_cow_conn *c = evr_cow_workers(cow) > 0 && (i & 1)
                                     ? evr_cow_worker(cow, 0)
                                     : evr_cow_seq(cow);
        randdb_request(c, rng);
    }
    evr_h128 root;
    th_must(evr_cow_batch_end(cow, &root, &err), &err);
    return root;
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_integrity_ok(const char *path)
{
    sqlite3 *db = th_open(path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
                                        &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void assert_same_dump(const char *pa, const char *pb)
{
    char *da = th_dump_file(pa);
    char *db = th_dump_file(pb);
    assert_string_equal(da, db);
    free(da);
    free(db);
}

/* ------------------------------------------------------ 1: save round trip */

/*
 * A memory cow and a file-mode reference run the same batches (the memory
 * one on both of its connections when it has a worker): their roots agree
 * batch by batch, the memory cow's file does not change on disk until
 * evr_cow_save, and what save writes is the reference's content, down to
 * the hidden rowids, with the digest the memory cow had.
 */
static void run_save_round_trip(int workers, int checkpoint_pages)
{
    char *dir = th_mkdtemp();
    char *pm = th_path(dir, "mem.db");
    char *pr = th_path(dir, "ref.db");
    char *tmp = th_path(dir, "mem.db.evr-save");
    uint64_t seed = th_seed(31);
    randdb_create(pm, 300, seed);
    th_copy_file(pm, pr);
    struct bytes before = slurp(pm);

    struct evr_cow *m = open_cow(pm, workers, true, checkpoint_pages);
    struct evr_cow *r = open_cow(pr, 0, false, 0);
    assert_true(evr_h128_eq(evr_cow_digest(m), evr_cow_digest(r)));
    assert_file_is(pm, &before);
    struct evr_err err = {0};
    struct evr_rng rm, rr;
    evr_rng_seed(&rm, seed + 7);
    evr_rng_seed(&rr, seed + 7);
    const uint64_t last = 40;
    evr_h128 root = {0, 0};
    for (uint64_t op = 1; op <= last; op++) {
        root = mixed_batch(m, op, 8, &rm);
        evr_h128 want = mixed_batch(r, op, 8, &rr);
        assert_true(evr_h128_eq(root, want));
        if (op == last) {
            break; /* left uncommitted: save writes it too */
        }
        if (op % 9 == 0) {
            th_must(evr_cow_rollback(m, op, &err), &err);
            th_must(evr_cow_rollback(r, op, &err), &err);
            assert_true(evr_h128_eq(evr_cow_digest(m), evr_cow_digest(r)));
        } else {
            th_must(evr_cow_commit(m, op, &err), &err);
            th_must(evr_cow_commit(r, op, &err), &err);
        }
        if (op % 8 == 0) {
            assert_file_is(pm, &before);
            assert_no_wal_files(pm);
        }
    }
    assert_int_equal(evr_cow_uncommitted(m), 1);
    assert_digest_is(m, root);
    assert_file_is(pm, &before);
    assert_no_wal_files(pm);

    /* Stale files beside it (another program's) must not survive a save:
     * SQLite would replay a -wal onto the new file. */
    char *wal = th_path(dir, "mem.db-wal");
    char *shm = th_path(dir, "mem.db-shm");
    write_file(wal, "not a WAL, but not empty either");
    write_file(shm, "not a wal-index");
    evr_h128 dm = evr_cow_digest(m);
    th_must(evr_cow_save(m, &err), &err);
    assert_false(exists(wal));
    assert_false(exists(shm));
    assert_false(exists(tmp));
    assert_false(same_bytes(pm, &before));
    /* The cow goes on after a save; what follows is not saved. */
    th_must(evr_cow_commit(m, last, &err), &err);
    mixed_batch(m, last + 1, 8, &rm);
    th_must(evr_cow_commit(m, last + 1, &err), &err);
    struct bytes saved = slurp(pm);
    evr_cow_close(m);
    evr_cow_close(r);
    assert_file_is(pm, &saved);
    assert_no_wal_files(pm);

    /* Plain SQLite (default VFS) reads the reference's rows from it. */
    assert_integrity_ok(pm);
    assert_same_dump(pm, pr);
    assert_true(evr_h128_eq(file_cow_digest(pm), dm));

    free(saved.data);
    free(wal);
    free(shm);
    free(before.data);
    free(pm);
    free(pr);
    free(tmp);
    th_rmdir(dir);
}

static void test_save_round_trip(void **state)
{
    (void)state;
    run_save_round_trip(0, 0); /* in-memory rollback journal */
    run_save_round_trip(1, 0); /* WAL in memory, checkpointed by save */
    run_save_round_trip(2, 2); /* WAL checkpointed by committing conns */
}

/* ------------------------------------------------- 2: close without a save */

/* Committed batches, then an uncommitted one, then close: the file keeps
 * its old bytes, and the next memory open of the same path starts from
 * them (nothing of the closed cow's image or WAL is left in memory). */
static void test_close_without_save(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *p = th_path(dir, "m.db");
    uint64_t seed = th_seed(31);
    randdb_create(p, 200, seed);
    evr_h128 d0 = file_cow_digest(p); /* (switches the file to WAL) */
    struct bytes before = slurp(p);
    struct evr_err err = {0};
    struct evr_rng rng;
    evr_rng_seed(&rng, seed + 3);
    for (int round = 0; round < 2; round++) {
        struct evr_cow *m = open_cow(p, round, true, 2);
        assert_digest_is(m, d0);
        evr_h128 root = d0;
        for (uint64_t op = 1; op <= 12; op++) {
            root = mixed_batch(m, op, 8, &rng);
            if (op < 12) {
                th_must(evr_cow_commit(m, op, &err), &err);
            }
        }
        assert_false(evr_h128_eq(root, d0));
        assert_digest_is(m, root);
        evr_cow_close(m);
        assert_file_is(p, &before);
        assert_no_wal_files(p);
    }
    struct evr_cow *m = open_cow(p, 1, true, 0);
    assert_digest_is(m, d0);
    evr_cow_close(m);
    assert_file_is(p, &before);
    free(before.data);
    free(p);
    th_rmdir(dir);
}

/* -------------------------------------------------- 3: a stale WAL on disk */

/*
 * A file-mode run that stopped without checkpointing leaves commits in the
 * -wal beside the file only. Copies of the file and of its -wal taken while
 * the writer is still open are exactly that. A memory cow opened on the
 * copy must see the commits, and save must not lose them.
 */
static void test_stale_wal_at_load(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *live = th_path(dir, "live.db");
    char *live_wal = th_path(dir, "live.db-wal");
    char *keep = th_path(dir, "keep.bin");
    char *keep_wal = th_path(dir, "keep-wal.bin");
    char *p = th_path(dir, "stale.db");
    char *p_wal = th_path(dir, "stale.db-wal");
    sqlite3 *db = th_open(live);
    th_exec(db, "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;"
                "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT NOT NULL);"
                "INSERT INTO t VALUES(1, 'in the file');"
                "PRAGMA wal_checkpoint(TRUNCATE);"
                "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 "
                "  FROM n WHERE i < 500) "
                "INSERT INTO t SELECT i, printf('row %d', i) FROM n;"
                "UPDATE t SET v = 'changed in the WAL' WHERE k = 1;"
                "DELETE FROM t WHERE k % 50 = 0;");
    th_copy_file(live, keep);
    th_copy_file(live_wal, keep_wal);
    assert_int_equal(sqlite3_close(db), SQLITE_OK); /* checkpoints live */
    struct stat st;
    assert_int_equal(stat(keep_wal, &st), 0);
    assert_true(st.st_size > 0);
    /* The copied file alone has only the first row. */
    th_copy_file(keep, p);
    sqlite3 *alone = th_open(p);
    assert_int_equal(query_int(alone, "SELECT count(*) FROM t"), 1);
    assert_int_equal(sqlite3_close(alone), SQLITE_OK);
    struct evr_err err = {0};
    evr_h128 want;
    th_must(evr_digest_file(live, &want, &err), &err);

    for (int workers = 0; workers < 2; workers++) {
        th_copy_file(keep, p);
        th_copy_file(keep_wal, p_wal);
        struct evr_cow *m = open_cow(p, workers, true, 0);
        sqlite3 *mdb = evr_cow_conn_db(evr_cow_seq(m));
        int64_t rows = query_int(mdb, "SELECT count(*) FROM t");
        if (rows != 490) {
            fail_msg("a memory cow on a file with a -wal beside it sees %lld "
                     "rows, not 490: the WAL was not folded in at load",
                     (long long)rows);
        }
        assert_int_equal(query_int(mdb, "SELECT count(*) FROM t WHERE "
                                        "v = 'changed in the WAL'"),
                         1);
        assert_digest_is(m, want);
        th_must(evr_cow_save(m, &err), &err);
        evr_cow_close(m);
        /* What the WAL held is in the saved file, and no -wal is left to
         * be replayed onto it. */
        assert_no_wal_files(p);
        evr_h128 got;
        th_must(evr_digest_file(p, &got, &err), &err);
        assert_true(evr_h128_eq(got, want));
        sqlite3 *s = th_open(p);
        assert_int_equal(query_int(s, "SELECT count(*) FROM t"), 490);
        assert_int_equal(sqlite3_close(s), SQLITE_OK);
    }
    free(live);
    free(live_wal);
    free(keep);
    free(keep_wal);
    free(p);
    free(p_wal);
    th_rmdir(dir);
}

/* --------------------------------------------- 4: one path, one memory cow */

static void expect_open_fails(const char *path, int workers, int code,
                              const char *needle)
{
    struct evr_cow_opts o;
    evr_cow_opts_default(&o, path, workers);
    o.memory = true;
    static char sentinel;
    struct evr_cow *cow = (struct evr_cow *)(void *)&sentinel; /* -> NULL */
    struct evr_err err = {0};
    int rc = evr_cow_open(&o, &cow, &err);
    if (rc != code) {
        fail_msg("opening '%s' in memory: %s (%d), wanted %s", path,
                 rc ? err.msg : "success", rc, evr_errname(code));
    }
    assert_null(cow);
    assert_int_equal(err.code, code);
    if (strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    }
}

/* A second memory cow on a path already in memory is refused with EBUSY,
 * under any spelling of the path, and the first goes on; after close the
 * path can be opened again. Failed opens leave nothing in memory. */
static void test_one_memory_cow_per_path(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *p = th_path(dir, "m.db");
    char *dotted = th_path(dir, "./m.db");
    char *dotdot = th_path(dir, "x/../m.db");
    char *x = th_path(dir, "x");
    assert_int_equal(mkdir(x, 0755), 0);
    uint64_t seed = th_seed(31);
    randdb_create(p, 100, seed);
    struct bytes before = slurp(p);
    struct evr_cow *m = open_cow(p, 1, true, 0);
    expect_open_fails(p, 1, EVR_EBUSY, "already open in memory");
    expect_open_fails(p, 0, EVR_EBUSY, "m.db");
    expect_open_fails(dotted, 1, EVR_EBUSY, "already open in memory");
    expect_open_fails(dotdot, 1, EVR_EBUSY, "already open in memory");
    /* The first is untouched and goes on. */
    struct evr_err err = {0};
    struct evr_rng rng;
    evr_rng_seed(&rng, seed + 1);
    evr_h128 root = mixed_batch(m, 1, 10, &rng);
    assert_digest_is(m, root);
    th_must(evr_cow_commit(m, 1, &err), &err);
    evr_cow_close(m);
    assert_file_is(p, &before);
    m = open_cow(dotted, 0, true, 0);
    evr_cow_close(m);

    /* A refused schema or a missing file: refused every time, never
     * "already open" (the failed open dropped what it had loaded). */
    char *loose = th_path(dir, "loose.db");
    th_make_db(loose, "CREATE TABLE loose(a, b)");
    expect_open_fails(loose, 1, EVR_ESCHEMA, "loose");
    expect_open_fails(loose, 1, EVR_ESCHEMA, "loose");
    char *missing = th_path(dir, "missing.db");
    expect_open_fails(missing, 0, EVR_ENOENT, "missing.db");
    expect_open_fails(missing, 0, EVR_ENOENT, "missing.db");
    assert_false(exists(missing));

    free(before.data);
    free(loose);
    free(missing);
    free(x);
    free(p);
    free(dotted);
    free(dotdot);
    th_rmdir(dir);
}

/* ------------------------------------------ 5: snapshot import into memory */

static void flip_byte(const char *path, long at)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, at, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x10, fp);
    assert_int_equal(fclose(fp), 0);
}

/* b (memory) imports a's (disk) snapshot: a's digest, the file on disk
 * untouched, and b then follows a batch for batch. A damaged snapshot is
 * refused and b stays as it was, working; save writes a's content. */
static void run_snapshot_import(int workers)
{
    char *dir = th_mkdtemp();
    char *pa = th_path(dir, "a.db");
    char *pb = th_path(dir, "b.db");
    char *snap = th_path(dir, "a.snap");
    char *import_tmp = th_path(dir, "b.db.import");
    uint64_t seed = th_seed(31);
    randdb_create(pa, 300, seed);
    th_copy_file(pa, pb);
    struct bytes before = slurp(pb);
    struct evr_cow *a = open_cow(pa, 1, false, 0);
    struct evr_cow *b = open_cow(pb, workers, true, 0);
    struct evr_err err = {0};
    struct evr_rng ra, rb;
    evr_rng_seed(&ra, seed + 11);
    evr_rng_seed(&rb, seed + 12);
    for (uint64_t op = 1; op <= 15; op++) {
        mixed_batch(a, op, 6, &ra);
        th_must(evr_cow_commit(a, op, &err), &err);
    }
    for (uint64_t op = 1; op <= 4; op++) {
        mixed_batch(b, op, 6, &rb);
        th_must(evr_cow_commit(b, op, &err), &err);
    }
    assert_false(evr_h128_eq(evr_cow_digest(a), evr_cow_digest(b)));

    th_must(evr_cow_snapshot_export(a, snap, &err), &err);
    th_must(evr_cow_snapshot_import(b, snap, &err), &err);
    assert_digest_is(b, evr_cow_digest(a));
    assert_file_is(pb, &before);
    assert_no_wal_files(pb);
    assert_false(exists(import_tmp));

    /* Both run the same batch from the same state: the same root. */
    evr_rng_seed(&ra, seed + 13);
    evr_rng_seed(&rb, seed + 13);
    evr_h128 r1 = mixed_batch(a, 16, 8, &ra);
    assert_true(evr_h128_eq(mixed_batch(b, 16, 8, &rb), r1));
    th_must(evr_cow_commit(a, 16, &err), &err);
    th_must(evr_cow_commit(b, 16, &err), &err);

    /* Damaged snapshots: refused, b unchanged and still working. */
    th_must(evr_cow_snapshot_export(a, snap, &err), &err);
    struct stat st;
    assert_int_equal(stat(snap, &st), 0);
    long n = (long)st.st_size;
    const long at[] = {3, n / 3, n / 2, n - 5};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        flip_byte(snap, at[i]);
        int rc = evr_cow_snapshot_import(b, snap, &err);
        assert_int_equal(rc, EVR_ECORRUPT);
        assert_true(err.msg[0] != '\0');
        assert_digest_is(b, r1);
        flip_byte(snap, at[i]);
    }
    assert_int_equal(truncate(snap, n - 9), 0);
    assert_int_equal(evr_cow_snapshot_import(b, snap, &err), EVR_ECORRUPT);
    assert_digest_is(b, r1);
    assert_false(exists(import_tmp));
    assert_file_is(pb, &before);

    evr_h128 r2 = mixed_batch(a, 17, 8, &ra);
    assert_true(evr_h128_eq(mixed_batch(b, 17, 8, &rb), r2));
    assert_digest_is(b, r2);
    th_must(evr_cow_commit(a, 17, &err), &err);
    th_must(evr_cow_commit(b, 17, &err), &err);

    /* Intact again: a second import over an imported image works too. */
    th_must(evr_cow_snapshot_export(a, snap, &err), &err);
    th_must(evr_cow_snapshot_import(b, snap, &err), &err);
    assert_digest_is(b, r2);

    th_must(evr_cow_save(b, &err), &err);
    evr_cow_close(a);
    evr_cow_close(b);
    assert_integrity_ok(pb);
    assert_same_dump(pa, pb); /* hidden rowids included */
    assert_true(evr_h128_eq(file_cow_digest(pb), r2));
    free(before.data);
    free(pa);
    free(pb);
    free(snap);
    free(import_tmp);
    th_rmdir(dir);
}

static void test_snapshot_import_into_memory(void **state)
{
    (void)state;
    run_snapshot_import(1); /* WAL in memory */
    run_snapshot_import(0); /* in-memory rollback journal */
}

/* ------------------------------------------------------- 6: a failed save */

/* Makes creating files in dir fail: read-only, or, where that does not
 * stop us (root), a directory where save's temporary file would go.
 * Returns the blocking directory to remove, or NULL for the chmod. */
static char *block_save(const char *dir, const char *db)
{
    assert_int_equal(chmod(dir, 0555), 0);
    char *probe = th_path(dir, "probe");
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        free(probe);
        return NULL;
    }
    close(fd);
    assert_int_equal(unlink(probe), 0);
    free(probe);
    assert_int_equal(chmod(dir, 0755), 0);
    size_t n = strlen(db) + 16;
    char *blocker = malloc(n);
    assert_non_null(blocker);
    snprintf(blocker, n, "%s.evr-save", db);
    assert_int_equal(mkdir(blocker, 0755), 0);
    return blocker;
}

static void unblock_save(const char *dir, char *blocker)
{
    if (blocker == NULL) {
        assert_int_equal(chmod(dir, 0755), 0);
    } else {
        assert_int_equal(rmdir(blocker), 0);
        free(blocker);
    }
}

/* Save while a batch executes is refused; a save the file system refuses
 * returns an error naming the file and leaves the file on disk as it was;
 * the cow goes on, and a later save writes its state. */
static void test_save_failure(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *sub = th_path(dir, "sub");
    assert_int_equal(mkdir(sub, 0755), 0);
    char *p = th_path(sub, "m.db");
    uint64_t seed = th_seed(31);
    randdb_create(p, 200, seed);
    struct bytes before = slurp(p);
    struct evr_err err = {0};
    struct evr_rng rng;
    evr_rng_seed(&rng, seed + 5);
    for (int workers = 0; workers < 2; workers++) {
        struct evr_cow *m = open_cow(p, workers, true, 0);
        uint64_t op = 1;
        for (; op <= 6; op++) {
            mixed_batch(m, op, 8, &rng);
            th_must(evr_cow_commit(m, op, &err), &err);
        }
        /* Not while a batch executes. */
        th_must(evr_cow_batch_begin(m, op, &err), &err);
        assert_int_equal(evr_cow_save(m, &err), EVR_ESTATE);
        th_must(evr_cow_batch_end(m, NULL, &err), &err);
        th_must(evr_cow_commit(m, op, &err), &err);
        op++;
        evr_h128 d = evr_cow_digest(m);
        assert_file_is(p, &before);

        char *blocker = block_save(sub, p);
        memset(&err, 0, sizeof err);
        int rc = evr_cow_save(m, &err);
        assert_true(rc < 0);
        assert_int_equal(err.code, rc);
        if (strstr(err.msg, "m.db") == NULL) {
            fail_msg("message '%s' does not name the file", err.msg);
        }
        assert_file_is(p, &before);
        assert_no_wal_files(p);
        assert_digest_is(m, d);

        /* Still usable: a batch, a rollback, a batch. */
        evr_h128 r = mixed_batch(m, op, 8, &rng);
        assert_digest_is(m, r);
        th_must(evr_cow_rollback(m, op, &err), &err);
        assert_digest_is(m, d);
        r = mixed_batch(m, op + 1, 8, &rng);
        th_must(evr_cow_commit(m, op + 1, &err), &err);
        assert_digest_is(m, r);
        assert_int_equal(evr_cow_save(m, &err), rc); /* fails again */
        assert_file_is(p, &before);

        unblock_save(sub, blocker);
        th_must(evr_cow_save(m, &err), &err);
        evr_cow_close(m);
        assert_integrity_ok(p);
        assert_true(evr_h128_eq(file_cow_digest(p), r));
        free(before.data);
        before = slurp(p);
    }
    free(before.data);
    free(p);
    free(sub);
    th_rmdir(dir);
}

/* ----------------------------------------- 7: parallel execution in memory */

static void kv_app(struct evr_app *app)
{
    struct evr_app_opt opts[] = {
        {"keys", "400"},           {"value-size", "200"},
        {"read-fraction", "0.5"},  {"delete-fraction", "0.1"},
        {"scan-fraction", "0.05"}, {"scan-length", "5"},
    };
    struct evr_err err = {0};
    th_must(evr_app_open("kv", opts, 6, app, &err), &err);
}

/* The kv application over a memory cow with two worker connections (three
 * executor threads), small checkpoints so that the writer checkpoints the
 * in-memory WAL while readers read it, and a rollback now and then: every
 * batch's token equals the one of the same batch run sequentially on a
 * file-mode cow, and the saved file equals the reference file. */
static void test_parallel_in_memory(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app);
    char *pm = th_path(dir, "mem.db");
    char *pf = th_path(dir, "file.db");
    struct evr_err err = {0};
    th_must(evr_app_populate_file(&app, pm, &err), &err);
    th_must(evr_app_populate_file(&app, pf, &err), &err);
    struct bytes before = slurp(pm);
    enum { BATCHES = 50, SIZE = 32 };
    struct evr_batchset set;
    th_must(evr_batchset_generate(&app, BATCHES, SIZE, th_seed(31), 0, &set,
                                  &err),
            &err);
    struct th_replica mem, ref;
    mem.cow = open_cow(pm, 2, true, 8);
    th_must(evr_executor_new(mem.cow, &app, SIZE, &mem.ex, &err), &err);
    assert_int_equal(evr_executor_threads(mem.ex), 3);
    th_replica_open(&ref, pf, &app, 1, 0);
    assert_true(evr_h128_eq(evr_cow_digest(mem.cow), evr_cow_digest(ref.cow)));
    struct evr_mixer *mx;
    th_must(evr_mixer_new(SIZE, &mx, &err), &err);
    uint64_t subs = 0;
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(mx, b->csets, b->n, &plan, &err), &err);
        /* Per request, every writer commits (and checkpoints) while the
         * readers of its sub-batch still read; grouped, once at its end. */
        evr_executor_set_txn_mode(mem.ex, i % 2 ? EVR_TXN_PER_REQUEST
                                                : EVR_TXN_GROUPED);
        struct evr_batch_result rm, rf;
        th_must(evr_execute_batch(mem.ex, b, EVR_EXEC_PARALLEL, &plan, &rm,
                                  &err),
                &err);
        subs += rm.nsub;
        if (i % 10 == 4) { /* roll back and run again */
            evr_h128 prev = evr_cow_digest(mem.cow);
            th_must(evr_cow_rollback(mem.cow, b->op, &err), &err);
            assert_false(evr_h128_eq(evr_cow_digest(mem.cow), prev));
            th_must(evr_execute_batch(mem.ex, b, EVR_EXEC_PARALLEL, &plan,
                                      &rm, &err),
                    &err);
            assert_true(evr_h128_eq(evr_cow_digest(mem.cow), prev));
        }
        th_must(evr_execute_batch(ref.ex, b, EVR_EXEC_SEQUENTIAL, NULL, &rf,
                                  &err),
                &err);
        assert_true(evr_h128_eq(rm.token, rf.token));
        const struct evr_response *resp = evr_executor_responses(mem.ex);
        for (uint32_t k = 0; k < b->n; k++) {
            assert_int_equal(resp[k].status, 0);
        }
        th_must(evr_cow_commit(mem.cow, b->op, &err), &err);
        th_must(evr_cow_commit(ref.cow, b->op, &err), &err);
    }
    /* It did run in parallel: sub-batches wider than one request. */
    assert_true(subs < (uint64_t)BATCHES * SIZE / 2);
    assert_digest_is(mem.cow, evr_cow_digest(ref.cow));
    assert_file_is(pm, &before);
    assert_no_wal_files(pm);
    evr_h128 dm = evr_cow_digest(mem.cow);
    th_must(evr_cow_save(mem.cow, &err), &err);
    evr_mixer_free(mx);
    th_replica_close(&mem);
    th_replica_close(&ref);
    assert_same_dump(pm, pf);
    assert_true(evr_h128_eq(file_cow_digest(pm), dm));
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(before.data);
    free(pm);
    free(pf);
    th_rmdir(dir);
}

/* Hints that claim nothing conflicts and nothing writes: writers run on
 * every worker connection at once and collide on the memory VFS's locks.
 * Every request still succeeds (busy ones are retried) and the captured
 * digest stays exact. */
static void test_parallel_collisions_in_memory(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    struct evr_app app;
    kv_app(&app);
    struct evr_app_ops lying = *app.ops;
    lying.classify = th_no_hints;
    struct evr_app liar = {&lying, app.impl};
    char *pm = th_path(dir, "mem.db");
    struct evr_err err = {0};
    th_must(evr_app_populate_file(&app, pm, &err), &err);
    enum { BATCHES = 12, SIZE = 32 };
    struct evr_batchset set;
    th_must(evr_batchset_generate(&liar, BATCHES, SIZE, th_seed(31), 0, &set,
                                  &err),
            &err);
    struct th_replica mem;
    mem.cow = open_cow(pm, 2, true, 4);
    th_must(evr_executor_new(mem.cow, &liar, SIZE, &mem.ex, &err), &err);
    struct evr_mixer *mx;
    th_must(evr_mixer_new(SIZE, &mx, &err), &err);
    for (uint32_t i = 0; i < set.nbatches; i++) {
        const struct evr_batch *b = &set.batches[i];
        struct evr_plan plan;
        th_must(evr_mixer_plan(mx, b->csets, b->n, &plan, &err), &err);
        assert_int_equal(plan.nsub, 1);
        evr_h128 before = evr_cow_digest(mem.cow);
        struct evr_batch_result res;
        th_must(evr_execute_batch(mem.ex, b, EVR_EXEC_PARALLEL, &plan, &res,
                                  &err),
                &err);
        const struct evr_response *resp = evr_executor_responses(mem.ex);
        for (uint32_t k = 0; k < b->n; k++) {
            assert_int_equal(resp[k].status, 0);
        }
        assert_digest_is(mem.cow, res.state_root);
        if (i % 3 == 2) {
            th_must(evr_cow_rollback(mem.cow, b->op, &err), &err);
            assert_digest_is(mem.cow, before);
            th_must(evr_execute_batch(mem.ex, b, EVR_EXEC_SEQUENTIAL, NULL,
                                      &res, &err),
                    &err);
        }
        th_must(evr_cow_commit(mem.cow, b->op, &err), &err);
    }
    evr_h128 d = evr_cow_digest(mem.cow);
    th_must(evr_cow_save(mem.cow, &err), &err);
    evr_mixer_free(mx);
    th_replica_close(&mem);
    assert_true(evr_h128_eq(file_cow_digest(pm), d));
    evr_batchset_free(&set);
    evr_app_close(&app);
    free(pm);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_round_trip),
        cmocka_unit_test(test_close_without_save),
        cmocka_unit_test(test_stale_wal_at_load),
        cmocka_unit_test(test_one_memory_cow_per_path),
        cmocka_unit_test(test_snapshot_import_into_memory),
        cmocka_unit_test(test_save_failure),
        cmocka_unit_test(test_parallel_in_memory),
        cmocka_unit_test(test_parallel_collisions_in_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
