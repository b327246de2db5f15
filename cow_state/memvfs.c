/*
 * The "evr-mem" VFS: a replica's database held in process memory
 * (evr_cow_opts.memory).
 *
 * Why. Under load a replica spent about a third of its CPU in the kernel on
 * the file I/O of SQLite's WAL mode: pwrite of every WAL frame at commit,
 * pread of WAL pages by readers, pread and pwrite again by checkpoints, and
 * fcntl locks at every transaction (docs/BENCHMARKS.md). A replica does not
 * need any of it while it runs: a file left without a clean stop is never
 * trusted (the server repopulates it and recovers from its peers), so the
 * file only has to be right after a clean stop. Here every file of the
 * database — the database itself, its WAL, its wal-index (shm), journals
 * and temporary files — is a buffer in memory, and the database reaches
 * the disk only through evr__mem_save.
 *
 * Names. A file is found by the full pathname SQLite gives xOpen (the
 * unix VFS's xFullPathname, so "x.db" and "./x.db" are one file). The
 * database itself must have been loaded (evr__mem_load) before SQLite opens
 * it: it is pinned, and lives until evr__mem_drop whether or not any
 * connection has it open. The WAL and journals are made on demand and
 * removed by xDelete; an unnamed file (a temporary) lives while it is open.
 *
 * Locks. Every connection of a database is in this process, so the
 * rollback-journal locks (SHARED, RESERVED, PENDING, EXCLUSIVE) and the
 * eight wal-index locks are plain counters and owners, with the same rules
 * as the unix VFS's in-process locks; a lock that would conflict returns
 * SQLITE_BUSY at once (SQLite's busy handler waits).
 *
 * Threads and lock order. The registry, every file's lock state and its
 * shm regions are guarded by one mutex (reg_mu). A file's bytes are guarded
 * by its own rwlock (readers copy out concurrently; a write may move the
 * buffer). Lock order: reg_mu, then a file's rwlock. shm regions
 * never move once allocated: SQLite reads and writes them directly, with
 * its own barriers (xShmBarrier), as it does a shared mapping.
 *
 * Limits. A file grows up to EVR__MEM_FILE_MAX bytes; past that, or when
 * memory runs out, a write fails with SQLITE_FULL (the request or batch
 * fails; nothing is half-written). The wal-index has at most
 * MEM_SHM_REGIONS_MAX regions.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow_state/internal.h"

#define MEM_SHM_REGIONS_MAX 4096 /* x 32 KiB: a WAL of ~16M frames */
#define MEM_GROW_MIN (64u << 10)

struct mem_handle;

struct mem_file {
    char *name;              /* NULL for an unnamed temporary */
    struct mem_file *next;   /* registry list */
    int handles;             /* open sqlite3_file handles */
    bool pinned;             /* a loaded database: lives until drop */
    bool registered;         /* findable by name (not deleted) */

    pthread_rwlock_t data_mu;
    uint8_t *data;
    size_t size;
    size_t cap;

    /* Rollback-journal locks (reg_mu). Invariant: writer is the only
     * handle above SHARED; shared counts the handles at SHARED or above. */
    int shared;
    struct mem_handle *writer;

    /* wal-index (reg_mu): regions, their users and the eight locks. */
    void *shm[MEM_SHM_REGIONS_MAX];
    int shm_regions;
    int shm_users;
    uint16_t shm_shared[SQLITE_SHM_NLOCK];
    struct mem_handle *shm_excl[SQLITE_SHM_NLOCK];
};

struct mem_handle {
    sqlite3_file base;
    struct mem_file *f;
    int lock;                /* SQLITE_LOCK_* this handle holds */
    uint16_t shm_shared_mask;
    uint16_t shm_excl_mask;
    bool shm_mapped;
    bool delete_on_close;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem_file *registry;
static sqlite3_vfs mem_vfs;
static sqlite3_vfs *real_vfs;

/* --------------------------------------------------------------- registry */

static struct mem_file *find_locked(const char *name)
{
    for (struct mem_file *f = registry; f != NULL; f = f->next) {
        if (strcmp(f->name, name) == 0) {
            return f;
        }
    }
    return NULL;
}

static struct mem_file *file_new(const char *name)
{
    struct mem_file *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return NULL;
    }
    if (name != NULL && (f->name = strdup(name)) == NULL) {
        free(f);
        return NULL;
    }
    pthread_rwlock_init(&f->data_mu, NULL);
    return f;
}

static void shm_free_locked(struct mem_file *f)
{
    for (int i = 0; i < f->shm_regions; i++) {
        free(f->shm[i]);
        f->shm[i] = NULL;
    }
    f->shm_regions = 0;
}

static void file_free(struct mem_file *f)
{
    assert(f->handles == 0);
    assert(!f->registered);
    shm_free_locked(f);
    pthread_rwlock_destroy(&f->data_mu);
    free(f->data);
    free(f->name);
    free(f);
}

static void unregister_locked(struct mem_file *f)
{
    for (struct mem_file **p = &registry; *p != NULL; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    f->registered = false;
    f->next = NULL;
}

static void register_locked(struct mem_file *f)
{
    assert(f->name != NULL);
    f->next = registry;
    registry = f;
    f->registered = true;
}

/* Frees f if nothing holds or names it any more. */
static void release_locked(struct mem_file *f)
{
    if (f->handles == 0 && !f->registered) {
        file_free(f);
    }
}

/* ------------------------------------------------------------------ bytes */

/* Makes room for `need` bytes; the caller holds data_mu for writing. */
static int reserve(struct mem_file *f, size_t need)
{
    if (need <= f->cap) {
        return SQLITE_OK;
    }
    if (need > EVR__MEM_FILE_MAX) {
        return SQLITE_FULL;
    }
    size_t cap = f->cap < MEM_GROW_MIN ? MEM_GROW_MIN : f->cap;
    while (cap < need) {
        cap = cap > EVR__MEM_FILE_MAX / 2 ? EVR__MEM_FILE_MAX : 2 * cap;
    }
    uint8_t *p = realloc(f->data, cap);
    if (p == NULL) {
        return SQLITE_FULL;
    }
    f->data = p;
    f->cap = cap;
    return SQLITE_OK;
}

static int mem_read(sqlite3_file *file, void *p, int n, sqlite3_int64 off)
{
    struct mem_file *f = ((struct mem_handle *)file)->f;
    assert(n >= 0);
    assert(off >= 0);
    pthread_rwlock_rdlock(&f->data_mu);
    size_t have = (size_t)off < f->size ? f->size - (size_t)off : 0;
    size_t got = have < (size_t)n ? have : (size_t)n;
    if (got > 0) {
        memcpy(p, f->data + off, got);
    }
    pthread_rwlock_unlock(&f->data_mu);
    if (got < (size_t)n) {
        memset((uint8_t *)p + got, 0, (size_t)n - got); /* SQLite asks it */
        return SQLITE_IOERR_SHORT_READ;
    }
    return SQLITE_OK;
}

static int mem_write(sqlite3_file *file, const void *p, int n,
                     sqlite3_int64 off)
{
    struct mem_file *f = ((struct mem_handle *)file)->f;
    assert(n >= 0);
    assert(off >= 0);
    size_t end = (size_t)off + (size_t)n;
    pthread_rwlock_wrlock(&f->data_mu);
    int rc = reserve(f, end);
    if (rc == SQLITE_OK) {
        if ((size_t)off > f->size) {
            memset(f->data + f->size, 0, (size_t)off - f->size);
        }
        memcpy(f->data + off, p, (size_t)n);
        if (end > f->size) {
            f->size = end;
        }
    }
    pthread_rwlock_unlock(&f->data_mu);
    return rc;
}

static int mem_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct mem_file *f = ((struct mem_handle *)file)->f;
    assert(size >= 0);
    pthread_rwlock_wrlock(&f->data_mu);
    int rc = reserve(f, (size_t)size);
    if (rc == SQLITE_OK && (size_t)size > f->size) {
        memset(f->data + f->size, 0, (size_t)size - f->size);
    }
    if (rc == SQLITE_OK) {
        f->size = (size_t)size;
    }
    pthread_rwlock_unlock(&f->data_mu);
    return rc == SQLITE_OK ? SQLITE_OK : SQLITE_IOERR_TRUNCATE;
}

static int mem_sync(sqlite3_file *file, int flags)
{
    (void)file;
    (void)flags;
    return SQLITE_OK; /* durability is evr__mem_save's */
}

static int mem_file_size(sqlite3_file *file, sqlite3_int64 *out)
{
    struct mem_file *f = ((struct mem_handle *)file)->f;
    pthread_rwlock_rdlock(&f->data_mu);
    *out = (sqlite3_int64)f->size;
    pthread_rwlock_unlock(&f->data_mu);
    return SQLITE_OK;
}

/* ------------------------------------------------- rollback-journal locks */

static int lock_locked(struct mem_handle *h, int want)
{
    struct mem_file *f = h->f;
    if (h->lock >= want) {
        return SQLITE_OK;
    }
    if (want == SQLITE_LOCK_SHARED) {
        if (f->writer != NULL && f->writer->lock >= SQLITE_LOCK_PENDING) {
            return SQLITE_BUSY;
        }
        f->shared++;
        h->lock = SQLITE_LOCK_SHARED;
        return SQLITE_OK;
    }
    assert(h->lock >= SQLITE_LOCK_SHARED); /* SQLite's order */
    if (f->writer != NULL && f->writer != h) {
        return SQLITE_BUSY;
    }
    f->writer = h;
    if (want == SQLITE_LOCK_RESERVED) {
        h->lock = SQLITE_LOCK_RESERVED;
        return SQLITE_OK;
    }
    /* EXCLUSIVE: hold PENDING (no new readers) until the others leave. */
    h->lock = SQLITE_LOCK_PENDING;
    if (f->shared > 1) {
        return SQLITE_BUSY;
    }
    h->lock = SQLITE_LOCK_EXCLUSIVE;
    return SQLITE_OK;
}

static int mem_lock(sqlite3_file *file, int want)
{
    pthread_mutex_lock(&reg_mu);
    int rc = lock_locked((struct mem_handle *)file, want);
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static void unlock_locked(struct mem_handle *h, int to)
{
    struct mem_file *f = h->f;
    assert(to == SQLITE_LOCK_SHARED || to == SQLITE_LOCK_NONE);
    if (h->lock <= to) {
        return;
    }
    if (h->lock > SQLITE_LOCK_SHARED) {
        assert(f->writer == h);
        f->writer = NULL;
        h->lock = SQLITE_LOCK_SHARED;
    }
    if (to == SQLITE_LOCK_NONE) {
        assert(f->shared > 0);
        f->shared--;
        h->lock = SQLITE_LOCK_NONE;
    }
}

static int mem_unlock(sqlite3_file *file, int to)
{
    pthread_mutex_lock(&reg_mu);
    unlock_locked((struct mem_handle *)file, to);
    pthread_mutex_unlock(&reg_mu);
    return SQLITE_OK;
}

static int mem_check_reserved(sqlite3_file *file, int *out)
{
    pthread_mutex_lock(&reg_mu);
    *out = ((struct mem_handle *)file)->f->writer != NULL;
    pthread_mutex_unlock(&reg_mu);
    return SQLITE_OK;
}

static int mem_file_control(sqlite3_file *file, int op, void *arg)
{
    (void)file;
    if (op == SQLITE_FCNTL_VFSNAME) {
        *(char **)arg = sqlite3_mprintf("%s", EVR__MEMVFS_NAME);
        return SQLITE_OK;
    }
    return SQLITE_NOTFOUND;
}

static int mem_sector_size(sqlite3_file *file)
{
    (void)file;
    return 4096;
}

static int mem_device_characteristics(sqlite3_file *file)
{
    (void)file;
    return SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL |
           SQLITE_IOCAP_POWERSAFE_OVERWRITE |
           SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN;
}

/* -------------------------------------------------------------- wal-index */

static int mem_shm_map(sqlite3_file *file, int region, int size, int extend,
                       void volatile **pp)
{
    struct mem_handle *h = (struct mem_handle *)file;
    struct mem_file *f = h->f;
    assert(region >= 0);
    assert(size > 0);
    *pp = NULL;
    if (region >= MEM_SHM_REGIONS_MAX) {
        return SQLITE_IOERR_SHMSIZE;
    }
    int rc = SQLITE_OK;
    pthread_mutex_lock(&reg_mu);
    if (!h->shm_mapped) {
        h->shm_mapped = true;
        f->shm_users++;
    }
    while (extend && f->shm_regions <= region) {
        void *p = calloc(1, (size_t)size);
        if (p == NULL) {
            rc = SQLITE_IOERR_SHMMAP;
            break;
        }
        f->shm[f->shm_regions++] = p;
    }
    if (rc == SQLITE_OK && region < f->shm_regions) {
        *pp = f->shm[region];
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static void shm_unlock_locked(struct mem_handle *h, uint16_t mask, bool excl)
{
    struct mem_file *f = h->f;
    for (int i = 0; i < SQLITE_SHM_NLOCK; i++) {
        uint16_t bit = (uint16_t)(1u << i);
        if (!(mask & bit)) {
            continue;
        }
        if (excl && (h->shm_excl_mask & bit)) {
            assert(f->shm_excl[i] == h);
            f->shm_excl[i] = NULL;
            h->shm_excl_mask &= (uint16_t)~bit;
        }
        if (!excl && (h->shm_shared_mask & bit)) {
            assert(f->shm_shared[i] > 0);
            f->shm_shared[i]--;
            h->shm_shared_mask &= (uint16_t)~bit;
        }
    }
}

static int shm_lock_excl_locked(struct mem_handle *h, int off, int n)
{
    struct mem_file *f = h->f;
    for (int i = off; i < off + n; i++) {
        int own = (h->shm_shared_mask >> i) & 1;
        if ((f->shm_excl[i] != NULL && f->shm_excl[i] != h) ||
            f->shm_shared[i] - own > 0) {
            return SQLITE_BUSY;
        }
    }
    for (int i = off; i < off + n; i++) {
        f->shm_excl[i] = h;
        h->shm_excl_mask |= (uint16_t)(1u << i);
    }
    return SQLITE_OK;
}

static int mem_shm_lock(sqlite3_file *file, int off, int n, int flags)
{
    struct mem_handle *h = (struct mem_handle *)file;
    struct mem_file *f = h->f;
    assert(off >= 0 && n >= 1);
    assert(off + n <= SQLITE_SHM_NLOCK);
    uint16_t mask = (uint16_t)(((1u << n) - 1) << off);
    int rc = SQLITE_OK;
    pthread_mutex_lock(&reg_mu);
    if (flags & SQLITE_SHM_UNLOCK) {
        shm_unlock_locked(h, mask, (flags & SQLITE_SHM_EXCLUSIVE) != 0);
    } else if (flags & SQLITE_SHM_SHARED) {
        assert(n == 1);
        if (!(h->shm_shared_mask & mask)) {
            if (f->shm_excl[off] != NULL && f->shm_excl[off] != h) {
                rc = SQLITE_BUSY;
            } else {
                f->shm_shared[off]++;
                h->shm_shared_mask |= mask;
            }
        }
    } else {
        rc = shm_lock_excl_locked(h, off, n);
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static void mem_shm_barrier(sqlite3_file *file)
{
    (void)file;
    /* A lock and unlock is a full barrier (the unix VFS does the same). */
    pthread_mutex_lock(&reg_mu);
    pthread_mutex_unlock(&reg_mu);
}

static void shm_detach_locked(struct mem_handle *h)
{
    struct mem_file *f = h->f;
    shm_unlock_locked(h, 0xff, true);
    shm_unlock_locked(h, 0xff, false);
    if (!h->shm_mapped) {
        return;
    }
    h->shm_mapped = false;
    assert(f->shm_users > 0);
    f->shm_users--;
    /* A wal-index nobody maps is rebuilt from the WAL by the next opener
     * (SQLite's recovery), as a fresh -shm file would be. */
    if (f->shm_users == 0) {
        shm_free_locked(f);
    }
}

static int mem_shm_unmap(sqlite3_file *file, int delete_flag)
{
    (void)delete_flag; /* unmapped by all is deleted anyway */
    pthread_mutex_lock(&reg_mu);
    shm_detach_locked((struct mem_handle *)file);
    pthread_mutex_unlock(&reg_mu);
    return SQLITE_OK;
}

/* ------------------------------------------------------- open and close */

static int mem_close(sqlite3_file *file)
{
    struct mem_handle *h = (struct mem_handle *)file;
    struct mem_file *f = h->f;
    pthread_mutex_lock(&reg_mu);
    shm_detach_locked(h);
    unlock_locked(h, SQLITE_LOCK_NONE);
    assert(f->handles > 0);
    f->handles--;
    if (h->delete_on_close && f->registered && f->handles == 0 &&
        !f->pinned) {
        unregister_locked(f);
    }
    release_locked(f);
    pthread_mutex_unlock(&reg_mu);
    h->f = NULL;
    return SQLITE_OK;
}

static const sqlite3_io_methods mem_methods = {
    2, /* no xFetch: pages are copied out of the buffer, which may move */
    mem_close,
    mem_read,
    mem_write,
    mem_truncate,
    mem_sync,
    mem_file_size,
    mem_lock,
    mem_unlock,
    mem_check_reserved,
    mem_file_control,
    mem_sector_size,
    mem_device_characteristics,
    mem_shm_map,
    mem_shm_lock,
    mem_shm_barrier,
    mem_shm_unmap,
    NULL,
    NULL,
};

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file,
                    int flags, int *out_flags)
{
    (void)vfs;
    struct mem_handle *h = (struct mem_handle *)file;
    memset(h, 0, sizeof *h);
    pthread_mutex_lock(&reg_mu);
    struct mem_file *f = name ? find_locked(name) : NULL;
    int rc = SQLITE_OK;
    if (f == NULL && (flags & SQLITE_OPEN_MAIN_DB)) {
        rc = SQLITE_CANTOPEN; /* a database must be loaded first */
    } else if (f == NULL && !(flags & SQLITE_OPEN_CREATE)) {
        rc = SQLITE_CANTOPEN;
    } else if (f == NULL) {
        f = file_new(name);
        rc = f == NULL ? SQLITE_NOMEM : SQLITE_OK;
        if (f != NULL && name != NULL) {
            register_locked(f);
        }
    }
    if (rc == SQLITE_OK) {
        f->handles++;
        h->f = f;
        h->delete_on_close = (flags & SQLITE_OPEN_DELETEONCLOSE) != 0;
        h->base.pMethods = &mem_methods;
        if (out_flags != NULL) {
            *out_flags = flags;
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    (void)sync_dir;
    pthread_mutex_lock(&reg_mu);
    struct mem_file *f = find_locked(name);
    int rc = SQLITE_OK;
    if (f == NULL) {
        rc = SQLITE_IOERR_DELETE_NOENT;
    } else if (f->pinned) {
        rc = SQLITE_IOERR_DELETE; /* the database goes only by drop */
    } else {
        unregister_locked(f);
        release_locked(f);
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags,
                      int *out)
{
    (void)vfs;
    pthread_mutex_lock(&reg_mu); /* then data_mu: the lock order */
    struct mem_file *f = find_locked(name);
    *out = 0;
    if (f != NULL) {
        /* Like unix: an empty file does not "exist" (a WAL being reset). */
        pthread_rwlock_rdlock(&f->data_mu);
        *out = flags != SQLITE_ACCESS_EXISTS || f->size > 0;
        pthread_rwlock_unlock(&f->data_mu);
    }
    pthread_mutex_unlock(&reg_mu);
    return SQLITE_OK;
}

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;

static void vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL) {
        return;
    }
    mem_vfs = *real_vfs; /* names, randomness, sleep and time from unix */
    mem_vfs.iVersion = real_vfs->iVersion < 2 ? real_vfs->iVersion : 2;
    mem_vfs.zName = EVR__MEMVFS_NAME;
    mem_vfs.szOsFile = (int)sizeof(struct mem_handle);
    mem_vfs.pNext = NULL;
    mem_vfs.pAppData = NULL;
    mem_vfs.xOpen = vfs_open;
    mem_vfs.xDelete = vfs_delete;
    mem_vfs.xAccess = vfs_access;
    mem_vfs.xDlOpen = NULL;
    mem_vfs.xDlError = NULL;
    mem_vfs.xDlSym = NULL;
    mem_vfs.xDlClose = NULL;
    vfs_rc = sqlite3_vfs_register(&mem_vfs, 0);
}

int evr__memvfs_setup(void)
{
    pthread_once(&vfs_once, vfs_register);
    return vfs_rc;
}

/* ------------------------------------------------------- load, save, drop */

static int full_name(const char *path, char *out, size_t cap,
                     struct evr_err *err)
{
    if (evr__memvfs_setup() != SQLITE_OK) {
        return evr_err_set(err, EVR_ESQL, "registering the memory VFS");
    }
    if (real_vfs->xFullPathname(real_vfs, path, (int)cap, out) !=
        SQLITE_OK) {
        return evr_err_set(err, EVR_EINVAL, "'%s': cannot make a full path",
                           path);
    }
    return 0;
}

/* Reads the whole file at path into a fresh buffer. */
static int read_whole(const char *path, uint8_t **data, size_t *size,
                      struct evr_err *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        return evr_err_set(err, e == ENOENT ? EVR_ENOENT : EVR_EIO,
                           "cannot read '%s': %s", path, strerror(e));
    }
    if ((uint64_t)st.st_size > EVR__MEM_FILE_MAX) {
        close(fd);
        return evr_err_set(err, EVR_ELIMIT, "'%s' is larger than the memory "
                           "storage limit (%llu bytes)", path,
                           (unsigned long long)EVR__MEM_FILE_MAX);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *p = malloc(n > 0 ? n : 1);
    size_t at = 0;
    while (p != NULL && at < n) {
        ssize_t got = read(fd, p + at, n - at);
        if (got <= 0) {
            break;
        }
        at += (size_t)got;
    }
    int e = errno;
    close(fd);
    if (p == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "'%s': %zu bytes", path, n);
    }
    if (at != n) {
        free(p);
        return evr_err_set(err, EVR_EIO, "reading '%s': %s", path,
                           at < n ? strerror(e) : "size changed");
    }
    *data = p;
    *size = n;
    return 0;
}

/* A WAL left beside the file on disk (a crash of a file-mode run) holds
 * commits the file lacks: fold it in with the unix VFS first. */
static int settle_disk_wal(const char *path, struct evr_err *err)
{
    char wal[EVR__MEM_NAME_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", path);
    struct stat st;
    if (stat(wal, &st) != 0 || st.st_size == 0) {
        return 0;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
    /* SQLite opens the WAL lazily: without a first read the checkpoint
     * below would see no WAL and the commits in it would be lost. */
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, "SELECT 1 FROM sqlite_schema LIMIT 1", NULL,
                          NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
                                       NULL, NULL);
    }
    int erc = rc == SQLITE_OK
                  ? 0
                  : evr__sqlite_err(err, db, rc, "folding in the WAL");
    if (sqlite3_close(db) != SQLITE_OK && erc == 0) {
        erc = evr_err_set(err, EVR_EIO, "closing '%s'", path);
    }
    return erc;
}

/* Finds the loaded database path; NULL if none is. */
static struct mem_file *find_loaded(const char *path)
{
    char name[EVR__MEM_NAME_MAX];
    if (full_name(path, name, sizeof name, NULL) != 0) {
        return NULL;
    }
    pthread_mutex_lock(&reg_mu);
    struct mem_file *f = find_locked(name);
    pthread_mutex_unlock(&reg_mu);
    return f != NULL && f->pinned ? f : NULL;
}

int evr__mem_load(const char *path, struct evr_err *err)
{
    char name[EVR__MEM_NAME_MAX];
    int rc = full_name(path, name, sizeof name, err);
    /* Checked before touching the disk: folding a WAL into a file that is
     * open in memory would change it under its owner. */
    if (rc == 0 && find_loaded(path) != NULL) {
        rc = evr_err_set(err, EVR_EBUSY, "'%s' is already open in memory",
                         path);
    }
    rc = rc ? rc : settle_disk_wal(path, err);
    uint8_t *data = NULL;
    size_t size = 0;
    rc = rc ? rc : read_whole(path, &data, &size, err);
    if (rc != 0) {
        return rc;
    }
    pthread_mutex_lock(&reg_mu);
    struct mem_file *f = find_locked(name);
    if (f != NULL) {
        rc = evr_err_set(err, EVR_EBUSY, "'%s' is already open in memory",
                         path);
    } else if ((f = file_new(name)) == NULL) {
        rc = evr_err_set(err, EVR_ENOMEM, "out of memory");
    } else {
        f->data = data;
        f->size = f->cap = size;
        f->pinned = true;
        register_locked(f);
        data = NULL;
    }
    pthread_mutex_unlock(&reg_mu);
    free(data);
    return rc;
}

/* Forgets the in-memory WAL of the database `name` (no handle may be
 * open): what it held belongs to the image being replaced or dropped. */
static void drop_wal_locked(const char *name)
{
    char wal[EVR__MEM_NAME_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", name);
    struct mem_file *w = find_locked(wal);
    if (w != NULL) {
        unregister_locked(w);
        release_locked(w);
    }
}

int evr__mem_read_file(const char *path, struct evr__mem_image *out,
                       struct evr_err *err)
{
    return read_whole(path, &out->data, &out->size, err);
}

void evr__mem_image_free(struct evr__mem_image *img)
{
    free(img->data);
    img->data = NULL;
    img->size = 0;
}

int evr__mem_swap(const char *path, struct evr__mem_image *img,
                  struct evr_err *err)
{
    struct mem_file *f = find_loaded(path);
    if (f == NULL) {
        return evr_err_set(err, EVR_EINVAL, "'%s' is not in memory", path);
    }
    pthread_mutex_lock(&reg_mu);
    if (f->handles != 0) {
        pthread_mutex_unlock(&reg_mu);
        return evr_err_set(err, EVR_EBUSY, "'%s' is still open", path);
    }
    drop_wal_locked(f->name);
    pthread_rwlock_wrlock(&f->data_mu);
    struct evr__mem_image old = {f->data, f->size};
    f->data = img->data;
    f->size = f->cap = img->size;
    *img = old;
    pthread_rwlock_unlock(&f->data_mu);
    pthread_mutex_unlock(&reg_mu);
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int sync_dir_of(const char *path)
{
    char dir[EVR__MEM_NAME_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else {
        slash[slash == dir ? 1 : 0] = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes f's bytes to tmp (synced); the caller renames it into place. */
static int write_image(struct mem_file *f, const char *tmp,
                       struct evr_err *err)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return evr_err_set(err, EVR_EIO, "cannot create '%s': %s", tmp,
                           strerror(errno));
    }
    pthread_rwlock_rdlock(&f->data_mu);
    int w = write_all(fd, f->data, f->size);
    pthread_rwlock_unlock(&f->data_mu);
    int e = errno;
    if (w == 0 && fsync(fd) != 0) {
        w = -1;
        e = errno;
    }
    if (close(fd) != 0 && w == 0) {
        w = -1;
        e = errno;
    }
    if (w != 0) {
        unlink(tmp);
        return evr_err_set(err, e == ENOSPC ? EVR_ENOSPC : EVR_EIO,
                           "writing '%s': %s", tmp, strerror(e));
    }
    return 0;
}

int evr__mem_save(const char *path, struct evr_err *err)
{
    struct mem_file *f = find_loaded(path);
    if (f == NULL) {
        return evr_err_set(err, EVR_EINVAL, "'%s' is not in memory", path);
    }
    char tmp[EVR__MEM_NAME_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.evr-save", path);
    int rc = write_image(f, tmp, err);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "replacing '%s': %s", path,
                         strerror(errno));
        unlink(tmp);
    }
    /* A -wal or -shm on disk belongs to an older file: the sqlite3 shell
     * would replay it onto this one. */
    static const char *const suffix[] = {"-wal", "-shm"};
    for (int i = 0; rc == 0 && i < 2; i++) {
        char p[EVR__MEM_NAME_MAX + 8];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            rc = evr_err_set(err, EVR_EIO, "removing '%s': %s", p,
                             strerror(errno));
        }
    }
    if (rc == 0 && sync_dir_of(path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "syncing the directory of '%s': %s",
                         path, strerror(errno));
    }
    return rc;
}

void evr__mem_drop(const char *path)
{
    char name[EVR__MEM_NAME_MAX];
    if (full_name(path, name, sizeof name, NULL) != 0) {
        return;
    }
    pthread_mutex_lock(&reg_mu);
    struct mem_file *f = find_locked(name);
    if (f != NULL && f->pinned) {
        assert(f->handles == 0);
        f->pinned = false;
        unregister_locked(f);
        release_locked(f);
    }
    drop_wal_locked(name);
    pthread_mutex_unlock(&reg_mu);
}

size_t evr__mem_size(const char *path)
{
    struct mem_file *f = find_loaded(path);
    if (f == NULL) {
        return 0;
    }
    pthread_rwlock_rdlock(&f->data_mu);
    size_t n = f->size;
    pthread_rwlock_unlock(&f->data_mu);
    return n;
}
