/*
 * The "evr" VFS: SQLite's default (unix) VFS with one behaviour changed, for
 * the connections of a replica's database.
 *
 * Why. In WAL mode a connection that starts a read transaction after another
 * connection committed resets its page cache and, with memory-mapped I/O,
 * unmaps the whole database mapping (xUnfetch(0, NULL)), in case the file
 * changed size. With several worker connections and a writer, every reader
 * would unmap and then page-fault its way back in once per snapshot — the
 * cost that made parallel execution slower than sequential in
 * docs/BENCHMARKS.md. The mapping is MAP_SHARED, so content written by any
 * connection (checkpoints) is visible through it at once; only a change of
 * size needs a new mapping. So xUnfetch(0, NULL) is forwarded only when the
 * file size differs from the last time it was; otherwise the mapping stays.
 *
 * Everything else is forwarded unchanged. The wrapper file holds the unix
 * file right after itself (szOsFile = ours + theirs).
 *
 * Precondition: no other process shrinks the database while a replica has
 * it open (evr never vacuums; another process writing a replica's database
 * would break its digest anyway).
 */
#include <pthread.h>
#include <string.h>

#include "cow_state/internal.h"

struct vfile {
    sqlite3_file base;
    sqlite3_int64 mapped_size; /* file size at the last real unmap; -1 */
    sqlite3_file *real;
};

static sqlite3_vfs evr_vfs;
static sqlite3_vfs *real_vfs;

#define REAL(f) (((struct vfile *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

static int vf_close(sqlite3_file *f)
{
    return RM(f)->xClose(REAL(f));
}

static int vf_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return RM(f)->xRead(REAL(f), p, n, off);
}

static int vf_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return RM(f)->xWrite(REAL(f), p, n, off);
}

static int vf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return RM(f)->xTruncate(REAL(f), size);
}

static int vf_sync(sqlite3_file *f, int flags)
{
    return RM(f)->xSync(REAL(f), flags);
}

static int vf_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return RM(f)->xFileSize(REAL(f), size);
}

static int vf_lock(sqlite3_file *f, int lock)
{
    return RM(f)->xLock(REAL(f), lock);
}

static int vf_unlock(sqlite3_file *f, int lock)
{
    return RM(f)->xUnlock(REAL(f), lock);
}

static int vf_check_reserved(sqlite3_file *f, int *out)
{
    return RM(f)->xCheckReservedLock(REAL(f), out);
}

static int vf_file_control(sqlite3_file *f, int op, void *arg)
{
    return RM(f)->xFileControl(REAL(f), op, arg);
}

static int vf_sector_size(sqlite3_file *f)
{
    return RM(f)->xSectorSize(REAL(f));
}

static int vf_device_characteristics(sqlite3_file *f)
{
    return RM(f)->xDeviceCharacteristics(REAL(f));
}

static int vf_shm_map(sqlite3_file *f, int region, int size, int extend,
                      void volatile **pp)
{
    return RM(f)->xShmMap(REAL(f), region, size, extend, pp);
}

static int vf_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
    return RM(f)->xShmLock(REAL(f), offset, n, flags);
}

static void vf_shm_barrier(sqlite3_file *f)
{
    RM(f)->xShmBarrier(REAL(f));
}

static int vf_shm_unmap(sqlite3_file *f, int delete_flag)
{
    return RM(f)->xShmUnmap(REAL(f), delete_flag);
}

static int vf_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
    return RM(f)->xFetch(REAL(f), off, n, pp);
}

static int vf_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
    struct vfile *v = (struct vfile *)f;
    if (p == NULL) {
        sqlite3_int64 size = -1;
        if (RM(f)->xFileSize(REAL(f), &size) == SQLITE_OK &&
            size == v->mapped_size) {
            return SQLITE_OK; /* same size: the mapping is still right */
        }
        v->mapped_size = size;
    }
    return RM(f)->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods vfile_methods = {
    3,
    vf_close,
    vf_read,
    vf_write,
    vf_truncate,
    vf_sync,
    vf_file_size,
    vf_lock,
    vf_unlock,
    vf_check_reserved,
    vf_file_control,
    vf_sector_size,
    vf_device_characteristics,
    vf_shm_map,
    vf_shm_lock,
    vf_shm_barrier,
    vf_shm_unmap,
    vf_fetch,
    vf_unfetch,
};

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                    int flags, int *out_flags)
{
    (void)vfs;
    struct vfile *v = (struct vfile *)f;
    v->real = (sqlite3_file *)(v + 1);
    v->mapped_size = -1;
    int rc = real_vfs->xOpen(real_vfs, name, v->real, flags, out_flags);
    /* Wrap only files whose methods have the mmap calls we forward. */
    if (rc == SQLITE_OK && v->real->pMethods != NULL &&
        v->real->pMethods->iVersion >= 3) {
        v->base.pMethods = &vfile_methods;
    } else if (rc == SQLITE_OK && v->real->pMethods != NULL) {
        v->real->pMethods->xClose(v->real);
        v->base.pMethods = NULL;
        rc = SQLITE_CANTOPEN;
    } else {
        v->base.pMethods = NULL;
    }
    return rc;
}

static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static int vfs_rc = SQLITE_ERROR;

static void vfs_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (real_vfs == NULL) {
        return;
    }
    evr_vfs = *real_vfs;
    evr_vfs.zName = EVR__VFS_NAME;
    evr_vfs.szOsFile = (int)sizeof(struct vfile) + real_vfs->szOsFile;
    evr_vfs.pNext = NULL;
    evr_vfs.xOpen = vfs_open;
    vfs_rc = sqlite3_vfs_register(&evr_vfs, 0);
}

int evr__vfs_setup(void)
{
    pthread_once(&vfs_once, vfs_register);
    return vfs_rc;
}
