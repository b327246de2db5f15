/*
 * cow_state internals shared by its .c files. Nothing outside cow_state/
 * includes this header.
 */
#ifndef EVR_COW_INTERNAL_H
#define EVR_COW_INTERNAL_H

#include <pthread.h>

#include "common/arena.h"
#include "cow_state/cow_state.h"

/* ------------------------------------------------------------------ values
 *
 * Canonical encoding of SQLite values (row images, primary keys, deltas,
 * snapshots). One value:
 *
 *   offset size  field
 *   0      1     tag: 0 NULL, 1 INTEGER, 2 REAL, 3 TEXT, 4 BLOB
 *   1      8     INTEGER: int64 little-endian; REAL: IEEE-754 bits, LE
 *   1      4     TEXT/BLOB: length n, little-endian
 *   5      n     TEXT (UTF-8, no NUL) / BLOB bytes
 *
 * A row image is the values of the table's stored columns in declaration
 * order; a key is the values of its PRIMARY KEY columns in key order, with
 * integral REALs as INTEGERs (evr__enc_key_value). The
 * encoding is a function of the values alone, so equal rows encode to equal
 * bytes on every replica, and the row hash is XXH3-128 of the image seeded
 * with the table's seed.
 */
enum { EVR_VAL_NULL = 0, EVR_VAL_INT, EVR_VAL_REAL, EVR_VAL_TEXT, EVR_VAL_BLOB };

#define EVR_VALUE_BYTES_MAX (64u * 1024 * 1024)

int evr__enc_value(struct evr_buf *b, sqlite3_value *v);

/*
 * Encoding of a key value: as evr__enc_value, except that a REAL with an
 * integral value is encoded as that INTEGER. SQLite compares 1 and 1.0 as
 * equal, so in a column that stores both unconverted (BLOB affinity) they are
 * one key; their canonical key bytes must be one too. (Row images keep the
 * stored value as it is.)
 */
int evr__enc_key_value(struct evr_buf *b, sqlite3_value *v);

/* Decodes n values from r and binds them to parameters first..first+n-1.
 * EVR_ECORRUPT on malformed bytes, EVR_ESQL if binding fails. */
int evr__bind_values(sqlite3_stmt *st, int first, struct evr_reader *r, int n);

/* Binds (or skips) the next value of r. */
int evr__bind_value(sqlite3_stmt *st, int param, struct evr_reader *r);
int evr__skip_value(struct evr_reader *r);

/* Checks that r holds exactly n well-formed values. */
bool evr__values_valid(const uint8_t *p, size_t len, int n);

/* ------------------------------------------------------------------ schema */

struct evr__table {
    char *name;
    char *qname;       /* "name", quoted for SQL */
    uint64_t seed;     /* XXH3-64 of the name: the table's id in hashes */
    int ncols;         /* stored columns */
    char **cols;       /* their names */
    int *col_cid;      /* their index in the table (preupdate index) */
    int npk;
    int *pk;           /* positions in cols[], in key order */
    bool hidden_rowid; /* rowid table whose key is not the rowid */
    bool has_default;  /* some column has a non-NULL DEFAULT */
    bool in_place;     /* rollback may UPDATE rows in place: there are
                          non-key columns and no UNIQUE index but the key */
    const char *rowid_name; /* a name that reaches the rowid, if hidden */

    /* digest */
    evr_h128 *buckets; /* EVR_DIGEST_BUCKETS sums */
    evr_h128 root;
    bool root_dirty;

    /* statements on the sequential connection, prepared lazily */
    sqlite3_stmt *st_select; /* image [, rowid] by key */
    sqlite3_stmt *st_delete; /* by key */
    sqlite3_stmt *st_insert; /* image [, rowid] */
    sqlite3_stmt *st_update; /* non-key columns by key */
};

struct evr__schema {
    struct evr__table *tables; /* sorted by name */
    int ntables;
    int triggers;              /* CREATE TRIGGERs in the schema */
    struct evr_hasher *hasher; /* for the state root */
};

/* strict: the rules of cow_state.h; !strict: only "has a PRIMARY KEY". */
int evr__schema_load(sqlite3 *db, bool strict, struct evr__schema *s,
                     struct evr_err *err);
void evr__schema_free(struct evr__schema *s);
struct evr__table *evr__schema_find(struct evr__schema *s, const char *name);
void evr__schema_finalize_stmts(struct evr__schema *s);

/* ------------------------------------------------------------------ digest */

/* Bucket of a key hash (the key hash is XXH3-64 of the key, table-seeded). */
static inline uint32_t evr__bucket_of(uint64_t key_hash)
{
    return (uint32_t)(key_hash >> 54) & (EVR_DIGEST_BUCKETS - 1);
}

evr_h128 evr__row_hash(const struct evr__table *t, const uint8_t *img,
                       size_t len);
uint64_t evr__key_hash(const struct evr__table *t, const uint8_t *key,
                       size_t len);

/* Zeroes every bucket, then adds every row of every table. */
int evr__digest_scan(sqlite3 *db, struct evr__schema *s, struct evr_err *err);

/* Recomputes dirty table roots and returns the state root. */
evr_h128 evr__digest_root(struct evr__schema *s);

/* ------------------------------------------------------------------ batches */

/*
 * One touched key of a batch. pre/post are images (NULL: no row with this
 * key). pre is captured by the hook at the key's first touch in the batch;
 * post is re-read at batch end. Hashes of absent images are zero.
 */
struct evr__touch {
    struct evr__table *t;
    uint64_t key_hash;
    uint8_t *key;
    uint32_t key_len;
    uint32_t pre_len;
    uint8_t *pre;
    int64_t pre_rowid;
    evr_h128 pre_hash;
    uint8_t *post;     /* NULL if absent, or if dropped (batch->posts_dropped);
                          else pre (unchanged) or post_own */
    uint8_t *post_own; /* this touch's copy of a final image, reused */
    uint32_t post_cap;
    uint32_t post_len;
    bool post_present; /* a row has this key at batch end */
    int64_t post_rowid;
    evr_h128 post_hash;
    uint64_t last_seq; /* hook sequence of the key's last change */
    uint64_t read_seq; /* hook sequence the post image is as of; 0: none */
    bool foreign;      /* changed on a connection other than the sequential */
    bool changed;      /* post differs from pre (set at batch end) */
};

enum evr__batch_state { EVR__BATCH_FREE, EVR__BATCH_EXECUTING,
                        EVR__BATCH_EXECUTED };

struct evr__batch {
    enum evr__batch_state state;
    uint64_t op;
    uint64_t prev_last_op;      /* cow->last_op before this batch began */
    struct evr_arena arena;     /* touches, keys, images */
    size_t pre_bytes;           /* of touches and pre images */
    size_t post_bytes;          /* of final-image copies, at most as much */
    size_t pre_bytes_max;       /* the arena holds twice this: final
                                   images get the other half */
    struct evr__touch **touch;  /* in first-touch order */
    size_t ntouch;
    size_t touch_cap;
    uint32_t *slots;            /* open addressing: touch index + 1 */
    size_t slots_mask;
    evr_h128 pre_root;
    evr_h128 post_root;
    uint64_t rows_changed;
    bool posts_dropped;         /* final images did not fit: hashes only,
                                   no delta */
    int capture_rc;             /* first capture failure, sticky */
};

int evr__batch_init(struct evr__batch *b, size_t bytes_max);
void evr__batch_free(struct evr__batch *b);
void evr__batch_clear(struct evr__batch *b);

struct evr__touch *evr__batch_find(struct evr__batch *b,
                                   const struct evr__table *t,
                                   uint64_t key_hash, const uint8_t *key,
                                   size_t key_len);

/* Adds a touch for a key not yet in b, with its pre image (pre NULL: no row
 * had the key). Nothing is recorded on failure (EVR_ENOMEM, EVR_ELIMIT). */
int evr__batch_add(struct evr__batch *b, struct evr__table *t,
                   uint64_t key_hash, const uint8_t *key, size_t key_len,
                   const uint8_t *pre, size_t pre_len, int64_t pre_rowid);

/* ------------------------------------------------------------------ cow */

struct evr_cow_conn {
    struct evr_cow *cow;
    sqlite3 *db;
    int index;             /* worker index; workers for the sequential conn */
    bool internal;         /* cow's own statements: authorizer allows all */
    bool capture_off;      /* cow's own writes (rollback): hook ignores */
    int capture_rc;        /* hook failure since last take; only this
                              connection's thread touches it while a batch
                              executes */
    uint64_t busy_start_ns;/* when the current wait for the lock began */
    uint64_t hook_calls;   /* written by this connection's thread only */
    uint64_t hook_ns;
    struct evr_buf scratch;/* hook encoding buffer */
    sqlite3_stmt *stmts[EVR_COW_STMT_SLOTS];
};

/* A committed batch kept whole for delta export: committing swaps the ring
 * slot's batch in here (no copy), and export encodes it on demand. */
struct evr__delta_slot {
    struct evr__batch batch; /* state EXECUTED, or FREE when empty */
};

struct evr__ckpt {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;      /* the checkpointer's own connection */
    bool initialized; /* mu, cv valid */
    bool running;     /* thread started */
    bool wanted;      /* under mu */
    bool stop;        /* under mu */
    uint64_t runs;    /* under mu */
    int last_rc;      /* under mu: last failure other than busy */
};

struct evr_cow {
    struct evr_cow_opts opts;
    char *path;
    struct evr__schema schema;
    struct evr_cow_conn *conns; /* workers + 1; the last is sequential */
    int nconns;

    pthread_mutex_t capture_mu; /* guards `executing` and batch touch maps */
    struct evr__batch *executing;
    uint64_t hook_seq;          /* hook calls that changed a touch */
    bool stray_write;           /* a change outside any batch */
    char stray_table[128];

    struct evr__batch *ring;    /* depth_max uncommitted batches */
    int ring_head;              /* oldest uncommitted */
    int ring_count;
    uint64_t last_op;
    struct evr_cow_stats stats; /* hook counters live in the conns */

    struct evr__delta_slot *deltas; /* delta_retain, by op % delta_retain */
    sqlite3_stmt *st_begin;         /* on the sequential connection */
    sqlite3_stmt *st_commit;

    evr_h128 open_root;
    struct evr__ckpt ckpt;
    bool loaded;                /* opts.memory: the database is in memory */
};

static inline bool evr__is_key_col(const struct evr__table *t, int col)
{
    for (int k = 0; k < t->npk; k++) {
        if (t->pk[k] == col) {
            return true;
        }
    }
    return false;
}

static inline struct evr__batch *evr__ring_at(struct evr_cow *cow, int i)
{
    return &cow->ring[(cow->ring_head + i) % cow->opts.depth_max];
}

/* capture.c */
void evr__capture_install(struct evr_cow_conn *c);
int evr__batch_finalize(struct evr_cow *cow, struct evr__batch *b,
                        struct evr_err *err);
int evr__batch_undo(struct evr_cow *cow, struct evr__batch *b,
                    struct evr_err *err);
/* Turns triggers off (0) or on (1) for db, if the schema has any. */
void evr__set_side_effects(struct evr_cow *cow, sqlite3 *db, int on);

/* images.c: statements and image I/O on the sequential connection */
int evr__read_row(struct evr_cow_conn *c, struct evr__table *t,
                  const uint8_t *key, size_t key_len, struct evr_buf *img,
                  int64_t *rowid, bool *found, struct evr_err *err);
int evr__delete_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *key, size_t key_len, struct evr_err *err);
int evr__insert_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *img, size_t img_len, const int64_t *rowid,
                    struct evr_err *err);
/* Sets the non-key columns of the row with img's key to img's values. */
int evr__update_row(struct evr_cow_conn *c, struct evr__table *t,
                    const uint8_t *img, size_t img_len, struct evr_err *err);
int evr__exec(struct evr_cow_conn *c, const char *sql, struct evr_err *err);
/* Appends "c1", "c2", ... [, rowid] (the rowid only if hidden and asked). */
int evr__append_cols(struct evr_buf *sql, const struct evr__table *t,
                     bool rowid);
/* BEGIN (begin) or COMMIT on the sequential connection, prepared once. */
int evr__seq_txn(struct evr_cow *cow, bool begin, struct evr_err *err);

/* delta.c: encodes batch b's delta (must be finalized) into out */
int evr__delta_encode(struct evr_cow *cow, struct evr__batch *b,
                      struct evr_buf *out, struct evr_err *err);

/* vfs.c: the VFS of replica connections (keeps mmaps across snapshots) */
#define EVR__VFS_NAME "evr-unix"
int evr__vfs_setup(void);

/* memvfs.c: databases held in memory (evr_cow_opts.memory). load, replace,
 * save and drop are called from the cow's control thread; the database
 * must not be open in SQLite during load, replace and drop. */
#define EVR__MEMVFS_NAME "evr-mem"
#define EVR__MEM_FILE_MAX ((size_t)1 << 40)
#define EVR__MEM_NAME_MAX 4352
int evr__memvfs_setup(void);
/* Reads the file at path (folding in a WAL left beside it) into memory,
 * where the memory VFS finds it by path until drop. */
int evr__mem_load(const char *path, struct evr_err *err);
struct evr__mem_image {
    uint8_t *data;
    size_t size;
};
int evr__mem_read_file(const char *path, struct evr__mem_image *out,
                       struct evr_err *err);
void evr__mem_image_free(struct evr__mem_image *img);
/* Exchanges the loaded database's bytes with img's; its in-memory WAL is
 * forgotten (it belonged to the old bytes). */
int evr__mem_swap(const char *path, struct evr__mem_image *img,
                  struct evr_err *err);
/* Writes the loaded bytes to path: a synced temporary file renamed over
 * it, stale -wal/-shm files removed, the directory synced. Callers
 * checkpoint first, so that the bytes hold every commit. */
int evr__mem_save(const char *path, struct evr_err *err);
void evr__mem_drop(const char *path);
size_t evr__mem_size(const char *path); /* 0 if not loaded */

/* normalize.c: rewrites rows stored before an ALTER TABLE ADD COLUMN */
int evr__normalize(struct evr_cow *cow, struct evr_err *err);

/* checkpoint.c: the background checkpointer */
void evr__ckpt_init(struct evr_cow *cow);
void evr__ckpt_destroy(struct evr_cow *cow);
void evr__ckpt_install(struct evr_cow *cow, sqlite3 *db);
int evr__ckpt_start(struct evr_cow *cow, struct evr_err *err);
void evr__ckpt_stop(struct evr_cow *cow);

/* cow_state.c */
const char *evr__cow_vfs(const struct evr_cow *cow);
int evr__cow_open_conns(struct evr_cow *cow, struct evr_err *err);
void evr__cow_close_conns(struct evr_cow *cow);
int evr__sqlite_err(struct evr_err *err, sqlite3 *db, int rc,
                    const char *what);
struct evr_cow_conn *evr__seq(struct evr_cow *cow);

#endif
