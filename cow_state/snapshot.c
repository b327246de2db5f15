/*
 * Snapshots: the whole database as a checksummed stream of records, with
 * the state root it must produce.
 *
 * Header (integers little-endian):
 *
 *   offset size  field
 *   0      8     magic "EVRSNAP\0"
 *   8      4     version (1)
 *   12     4     page size of the source database
 *   16     16    state root
 *   32     8     XXH3-64 of bytes 0..31
 *
 * Then records, each:
 *
 *   u8 type, u32 payload length n, payload, u64 XXH3-64(type, length, payload)
 *
 *   type 1 SCHEMA  u8 kind (0 table, 1 index/view/trigger), SQL text
 *   type 2 TABLE   table name: the ROW records that follow belong to it
 *   type 3 ROW     u8 has_rowid, [i64 rowid], row image (internal.h)
 *   type 4 END     u64 rows, u32 tables, u32 schema objects
 *
 * Import rebuilds the database in a temporary file beside the target
 * (tables, rows, then indexes, views and triggers, so that no trigger fires),
 * recomputes its digest by a full scan and swaps it in only if that equals
 * the header's root. Any damage is reported with the record number; the
 * replica's own database is untouched until the swap.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow_state/internal.h"

#define SNAP_MAGIC "EVRSNAP\0"
#define SNAP_VERSION 1
#define SNAP_HEADER_BYTES 40
#define SNAP_RECORD_MAX (512u << 20)

enum { REC_SCHEMA = 1, REC_TABLE, REC_ROW, REC_END };

/* ------------------------------------------------------------ writing */

struct writer {
    FILE *f;
    const char *path;
    struct evr_buf rec;
    uint64_t rows;
    uint32_t tables;
    uint32_t objects;
};

static int write_failed(struct writer *w, struct evr_err *err)
{
    int e = errno;
    return evr_err_set(err, e == ENOSPC ? EVR_ENOSPC : EVR_EIO,
                       "writing snapshot '%s': %s", w->path, strerror(e));
}

/* rec holds 5 placeholder bytes, then the payload. */
static int emit(struct writer *w, uint8_t type, struct evr_err *err)
{
    uint8_t *p = w->rec.data;
    size_t n = w->rec.len - 5;
    p[0] = type;
    evr_store_u32(p + 1, (uint32_t)n);
    uint8_t sum[8];
    evr_store_u64(sum, evr_hash64(p, w->rec.len, 0));
    if (fwrite(p, 1, w->rec.len, w->f) != w->rec.len ||
        fwrite(sum, 1, 8, w->f) != 8) {
        return write_failed(w, err);
    }
    evr_buf_reset(&w->rec);
    return evr_buf_put(&w->rec, "\0\0\0\0\0", 5);
}

static int write_schema(struct writer *w, sqlite3 *db, struct evr_err *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        db,
        "SELECT type = 'table', sql FROM sqlite_schema WHERE sql IS NOT NULL "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "ORDER BY type <> 'table', rowid",
        -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, db, rc, "reading the schema");
    }
    int erc = 0;
    while (erc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sql = (const char *)sqlite3_column_text(st, 1);
        erc = evr_buf_put_u8(&w->rec, sqlite3_column_int(st, 0) ? 0 : 1);
        erc = erc ? erc : evr_buf_put(&w->rec, sql, strlen(sql));
        erc = erc ? erc : emit(w, REC_SCHEMA, err);
        w->objects++;
    }
    if (erc == 0 && rc != SQLITE_DONE) {
        erc = evr__sqlite_err(err, db, rc, "reading the schema");
    }
    sqlite3_finalize(st);
    return erc;
}

static int write_rows(struct writer *w, sqlite3 *db, struct evr__table *t,
                      struct evr_err *err)
{
    char *sql = sqlite3_mprintf("SELECT %s%s* FROM %s",
                                t->hidden_rowid ? t->rowid_name : "",
                                t->hidden_rowid ? ", " : "", t->qname);
    sqlite3_stmt *st = NULL;
    int rc = sql ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        return evr__sqlite_err(err, db, rc, t->name);
    }
    int erc = evr_buf_put(&w->rec, t->name, strlen(t->name));
    erc = erc ? erc : emit(w, REC_TABLE, err);
    w->tables++;
    int off = t->hidden_rowid ? 1 : 0;
    while (erc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        erc = evr_buf_put_u8(&w->rec, (uint8_t)off);
        if (off) {
            erc = erc ? erc
                      : evr_buf_put_u64(&w->rec,
                                        (uint64_t)sqlite3_column_int64(st, 0));
        }
        for (int i = 0; erc == 0 && i < t->ncols; i++) {
            /* "*" lists exactly the stored columns, in order (no generated
             * columns: the strict schema refuses them). */
            erc = evr__enc_value(&w->rec, sqlite3_column_value(st, off + i));
        }
        erc = erc ? erc : emit(w, REC_ROW, err);
        w->rows++;
    }
    if (erc == 0 && rc != SQLITE_DONE) {
        erc = evr__sqlite_err(err, db, rc, t->name);
    }
    sqlite3_finalize(st);
    return erc;
}

static int write_header(struct writer *w, int page_size, evr_h128 root,
                        struct evr_err *err)
{
    uint8_t h[SNAP_HEADER_BYTES];
    memcpy(h, SNAP_MAGIC, 8);
    evr_store_u32(h + 8, SNAP_VERSION);
    evr_store_u32(h + 12, (uint32_t)page_size);
    evr_h128_to_bytes(root, h + 16);
    evr_store_u64(h + 32, evr_hash64(h, 32, 0));
    if (fwrite(h, 1, sizeof h, w->f) != sizeof h) {
        return write_failed(w, err);
    }
    return 0;
}

static int page_size_of(sqlite3 *db)
{
    sqlite3_stmt *st;
    int size = 4096;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) ==
        SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            size = sqlite3_column_int(st, 0);
        }
        sqlite3_finalize(st);
    }
    return size;
}

static int write_all(struct evr_cow *cow, struct writer *w,
                     struct evr_err *err)
{
    sqlite3 *db = evr__seq(cow)->db;
    int rc = write_header(w, page_size_of(db), evr_cow_digest(cow), err);
    rc = rc ? rc : evr__exec(evr__seq(cow), "BEGIN", err);
    if (rc != 0) {
        return rc;
    }
    rc = write_schema(w, db, err);
    for (int i = 0; rc == 0 && i < cow->schema.ntables; i++) {
        rc = write_rows(w, db, &cow->schema.tables[i], err);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc == 0) {
        rc = evr_buf_put_u64(&w->rec, w->rows);
        rc = rc ? rc : evr_buf_put_u32(&w->rec, w->tables);
        rc = rc ? rc : evr_buf_put_u32(&w->rec, w->objects);
        rc = rc ? rc : emit(w, REC_END, err);
    }
    if (rc == 0 && (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)) {
        rc = write_failed(w, err);
    }
    return rc;
}

static int check_quiet(struct evr_cow *cow, const char *what,
                       struct evr_err *err)
{
    if (cow->ring_count != 0 || cow->executing != NULL) {
        return evr_err_set(err, EVR_ESTATE,
                           "%s needs every batch committed (%d are not)",
                           what, cow->ring_count);
    }
    return 0;
}

int evr_cow_snapshot_export(struct evr_cow *cow, const char *path,
                            struct evr_err *err)
{
    int rc = check_quiet(cow, "snapshot export", err);
    if (rc != 0) {
        return rc;
    }
    char *tmp = sqlite3_mprintf("%s.tmp", path);
    struct writer w = {.path = path};
    evr_buf_init(&w.rec, SNAP_RECORD_MAX);
    w.f = tmp ? fopen(tmp, "wb") : NULL;
    if (w.f == NULL) {
        rc = tmp ? write_failed(&w, err)
                 : evr_err_set(err, EVR_ENOMEM, "out of memory");
    } else {
        struct evr_cow_conn *c = evr__seq(cow);
        c->internal = true;
        rc = evr_buf_put(&w.rec, "\0\0\0\0\0", 5);
        rc = rc ? evr_err_set(err, rc, "out of memory") : 0;
        rc = rc ? rc : write_all(cow, &w, err);
        c->internal = false;
        if (fclose(w.f) != 0 && rc == 0) {
            rc = write_failed(&w, err);
        }
        if (rc == 0 && rename(tmp, path) != 0) {
            rc = write_failed(&w, err);
        }
        if (rc != 0) {
            unlink(tmp);
        }
    }
    evr_buf_free(&w.rec);
    sqlite3_free(tmp);
    return rc;
}

/* ------------------------------------------------------------ reading */

struct reader {
    FILE *f;
    const char *path;
    long size;      /* of the file, to refuse lengths it cannot hold */
    uint64_t index; /* records read so far */
    uint8_t type;
    struct evr_buf rec; /* type, length, payload */
};

static int corrupt(struct reader *r, struct evr_err *err, const char *why)
{
    return evr_err_set(err, EVR_ECORRUPT, "snapshot '%s', record %llu: %s",
                       r->path, (unsigned long long)r->index, why);
}

static int read_header(struct reader *r, uint32_t *page_size, evr_h128 *root,
                       struct evr_err *err)
{
    uint8_t h[SNAP_HEADER_BYTES];
    if (fread(h, 1, sizeof h, r->f) != sizeof h ||
        memcmp(h, SNAP_MAGIC, 8) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "'%s' is not an evr snapshot",
                           r->path);
    }
    if (evr_load_u64(h + 32) != evr_hash64(h, 32, 0)) {
        return evr_err_set(err, EVR_ECORRUPT,
                           "snapshot '%s': header checksum fails", r->path);
    }
    if (evr_load_u32(h + 8) != SNAP_VERSION) {
        return evr_err_set(err, EVR_ECORRUPT,
                           "snapshot '%s': version %u unsupported", r->path,
                           evr_load_u32(h + 8));
    }
    *page_size = evr_load_u32(h + 12);
    if (*page_size < 512 || *page_size > 65536 ||
        (*page_size & (*page_size - 1)) != 0) {
        return evr_err_set(err, EVR_ECORRUPT,
                           "snapshot '%s': bad page size %u", r->path,
                           *page_size);
    }
    *root = evr_h128_from_bytes(h + 16);
    return 0;
}

/* Reads the next record into r->rec; its payload starts at rec.data + 5. */
static int read_record(struct reader *r, struct evr_err *err)
{
    r->index++;
    evr_buf_reset(&r->rec);
    uint8_t head[5];
    if (fread(head, 1, 5, r->f) != 5) {
        return corrupt(r, err, "truncated (no END record)");
    }
    uint32_t n = evr_load_u32(head + 1);
    long at = ftell(r->f);
    if (n > SNAP_RECORD_MAX) {
        return corrupt(r, err, "record length out of range");
    }
    if (at < 0 || (long)n + 8 > r->size - at) {
        return corrupt(r, err, "truncated (the record is longer than what "
                               "is left of the file)");
    }
    if (evr_buf_reserve(&r->rec, 5 + (size_t)n + 8) != 0) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    memcpy(r->rec.data, head, 5);
    uint8_t *payload = r->rec.data + 5;
    if (fread(payload, 1, (size_t)n + 8, r->f) != (size_t)n + 8) {
        return corrupt(r, err, "truncated");
    }
    if (evr_load_u64(payload + n) != evr_hash64(r->rec.data, 5 + n, 0)) {
        return corrupt(r, err, "checksum mismatch");
    }
    r->rec.len = 5 + n;
    r->type = head[0];
    return 0;
}

struct builder {
    struct evr_cow_conn conn; /* on the temporary database */
    struct evr__schema schema;
    bool schema_loaded;
    struct evr__table *table; /* receiving ROW records */
    struct evr_buf deferred;  /* index/view/trigger SQL, NUL-separated */
    uint64_t rows;
    uint32_t tables;
    uint32_t objects;
};

static int main_tables(sqlite3 *db, int *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_schema "
                                "WHERE type = 'table'",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return rc;
    }
    rc = sqlite3_step(st) == SQLITE_ROW ? SQLITE_OK : SQLITE_ERROR;
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

/* One CREATE statement, of the kind the record claims, judged by its
 * effect: a table record adds exactly one table to the main schema, any
 * other adds none. A snapshot is data, and must not be able to run
 * arbitrary SQL on the replica or sneak in an undigested table. */
static int exec_schema(struct builder *b, struct reader *r, const char *sql,
                       bool table, struct evr_err *err)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int before = 0;
    int after = 0;
    int rc = main_tables(b->conn.db, &before);
    rc = rc ? rc : sqlite3_prepare_v2(b->conn.db, sql, -1, &st, &tail);
    bool ok = rc == SQLITE_OK && st != NULL && tail != NULL &&
              tail[strspn(tail, " \t\r\n;")] == '\0' &&
              strncmp(sql, "CREATE ", 7) == 0;
    int erc = 0;
    if (!ok) {
        erc = corrupt(r, err, "schema record is not one CREATE statement");
    } else if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
        erc = evr__sqlite_err(err, b->conn.db, rc, sql);
    } else if (main_tables(b->conn.db, &after) != SQLITE_OK ||
               after - before != (table ? 1 : 0)) {
        erc = corrupt(r, err, table ? "a table record did not create one "
                                      "table"
                                    : "an index, view or trigger record "
                                      "created a table");
    }
    sqlite3_finalize(st);
    return erc;
}

static int on_schema(struct builder *b, struct reader *r, struct evr_err *err)
{
    const uint8_t *p = r->rec.data + 5;
    size_t n = r->rec.len - 5;
    if (b->schema_loaded || n < 2 || p[0] > 1) {
        return corrupt(r, err, "misplaced or malformed schema record");
    }
    b->objects++;
    if (evr_buf_put(&b->deferred, p + 1, n - 1) != 0 ||
        evr_buf_put_u8(&b->deferred, 0) != 0) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    if (p[0] == 1) {
        return 0; /* index, view or trigger: created after the rows */
    }
    /* A table: create it now, from the copy just made NUL-terminated. */
    const char *sql = (const char *)b->deferred.data + b->deferred.len - n;
    int rc = exec_schema(b, r, sql, true, err);
    b->deferred.len -= n;
    return rc;
}

static int load_schema(struct builder *b, struct evr_err *err)
{
    if (b->schema_loaded) {
        return 0;
    }
    b->schema_loaded = true;
    int rc = evr__schema_load(b->conn.db, true, &b->schema, err);
    return rc ? evr_err_wrap(err, rc, "snapshot schema") : 0;
}

static int on_table(struct builder *b, struct reader *r, struct evr_err *err)
{
    int rc = load_schema(b, err);
    if (rc != 0) {
        return rc;
    }
    char name[1024];
    size_t n = r->rec.len - 5;
    if (n == 0 || n >= sizeof name) {
        return corrupt(r, err, "bad table name");
    }
    memcpy(name, r->rec.data + 5, n);
    name[n] = '\0';
    b->table = evr__schema_find(&b->schema, name);
    b->tables++;
    return b->table ? 0 : corrupt(r, err, "rows for an unknown table");
}

static int on_row(struct builder *b, struct reader *r, struct evr_err *err)
{
    struct evr_reader rd;
    evr_reader_init(&rd, r->rec.data + 5, r->rec.len - 5);
    bool has_rowid = evr_get_u8(&rd) != 0;
    int64_t rowid = has_rowid ? (int64_t)evr_get_u64(&rd) : 0;
    const uint8_t *img = rd.p + rd.pos;
    size_t len = evr_reader_left(&rd);
    if (b->table == NULL || !rd.ok || has_rowid != b->table->hidden_rowid ||
        !evr__values_valid(img, len, b->table->ncols)) {
        return corrupt(r, err, "malformed row");
    }
    b->rows++;
    return evr__insert_row(&b->conn, b->table, img, len,
                           has_rowid ? &rowid : NULL, err);
}

static int on_end(struct builder *b, struct reader *r, struct evr_err *err)
{
    struct evr_reader rd;
    evr_reader_init(&rd, r->rec.data + 5, r->rec.len - 5);
    uint64_t rows = evr_get_u64(&rd);
    uint32_t tables = evr_get_u32(&rd);
    uint32_t objects = evr_get_u32(&rd);
    if (!rd.ok || rows != b->rows || tables != b->tables ||
        objects != b->objects) {
        return corrupt(r, err, "END record does not match the records");
    }
    if (fgetc(r->f) != EOF) {
        return corrupt(r, err, "bytes after the END record");
    }
    return 0;
}

static int read_body(struct builder *b, struct reader *r, struct evr_err *err)
{
    for (;;) {
        int rc = read_record(r, err);
        if (rc != 0) {
            return rc;
        }
        switch (r->type) {
        case REC_SCHEMA:
            rc = on_schema(b, r, err);
            break;
        case REC_TABLE:
            rc = on_table(b, r, err);
            break;
        case REC_ROW:
            rc = on_row(b, r, err);
            break;
        case REC_END:
            return on_end(b, r, err);
        default:
            rc = corrupt(r, err, "unknown record type");
        }
        if (rc != 0) {
            return rc;
        }
    }
}

static int create_deferred(struct builder *b, struct reader *r,
                           struct evr_err *err)
{
    size_t at = 0;
    while (at < b->deferred.len) {
        const char *sql = (const char *)b->deferred.data + at;
        int rc = exec_schema(b, r, sql, false, err);
        if (rc != 0) {
            return rc;
        }
        at += strlen(sql) + 1;
    }
    return 0;
}

static void remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    for (int i = 0; i < 4; i++) {
        char *p = sqlite3_mprintf("%s%s", path, suffix[i]);
        if (p != NULL) {
            unlink(p);
            sqlite3_free(p);
        }
    }
}

static int build(struct builder *b, struct reader *r, uint32_t page_size,
                 evr_h128 root, struct evr_err *err)
{
    char sql[128];
    snprintf(sql, sizeof sql,
             "PRAGMA page_size = %u; PRAGMA journal_mode = OFF; "
             "PRAGMA synchronous = OFF; BEGIN",
             page_size);
    int rc = evr__exec(&b->conn, sql, err);
    rc = rc ? rc : read_body(b, r, err);
    rc = rc ? rc : create_deferred(b, r, err);
    rc = rc ? rc : evr__exec(&b->conn, "COMMIT", err);
    if (rc == 0) {
        /* Judge the finished schema, not the one the rows arrived in. */
        evr__schema_free(&b->schema);
        b->schema_loaded = false;
        rc = load_schema(b, err);
    }
    rc = rc ? rc : evr__digest_scan(b->conn.db, &b->schema, err);
    if (rc == 0 && !evr_h128_eq(evr__digest_root(&b->schema), root)) {
        char want[EVR_H128_HEX_LEN + 1], got[EVR_H128_HEX_LEN + 1];
        evr_h128_to_hex(root, want);
        evr_h128_to_hex(evr__digest_root(&b->schema), got);
        rc = evr_err_set(err, EVR_EMISMATCH,
                         "snapshot '%s' claims state %s but its rows give "
                         "%s; refused",
                         r->path, want, got);
    }
    rc = rc ? rc
            : evr__exec(&b->conn,
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL",
                        err);
    return rc;
}

/* Builds the database of the snapshot at r into tmp. */
static int build_file(struct reader *r, const char *tmp, evr_h128 *root_out,
                      struct evr_err *err)
{
    uint32_t page_size = 0;
    evr_h128 root = {0, 0};
    int rc = read_header(r, &page_size, &root, err);
    *root_out = root;
    if (rc != 0) {
        return rc;
    }
    struct builder b;
    memset(&b, 0, sizeof b);
    b.conn.internal = true;
    evr_buf_init(&b.deferred, SIZE_MAX);
    int src = sqlite3_open_v2(tmp, &b.conn.db,
                              SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                              NULL);
    if (src != SQLITE_OK) {
        rc = evr__sqlite_err(err, b.conn.db, src, tmp);
    } else {
        rc = build(&b, r, page_size, root, err);
    }
    evr__schema_free(&b.schema);
    evr_buf_free(&b.deferred);
    if (sqlite3_close(b.conn.db) != SQLITE_OK && rc == 0) {
        rc = evr_err_set(err, EVR_EIO, "closing '%s'", tmp);
    }
    return rc;
}

/* Closes the replica's connections (a clean close leaves no WAL), then
 * removes any stale -wal/-shm so that nothing is replayed onto a new file. */
static void close_for_swap(struct evr_cow *cow)
{
    evr__cow_close_conns(cow);
    evr__schema_free(&cow->schema);
    static const char *const suffix[] = {"-wal", "-shm"};
    for (int i = 0; i < 2; i++) {
        char *p = sqlite3_mprintf("%s%s", cow->path, suffix[i]);
        if (p != NULL) {
            unlink(p);
            sqlite3_free(p);
        }
    }
}

/* Reopens the connections on what is now the database and checks that it
 * holds the snapshot's state. */
static int reopen_swapped(struct evr_cow *cow, evr_h128 root,
                          struct evr_err *err)
{
    for (int i = 0; i < cow->opts.delta_retain; i++) {
        evr__batch_clear(&cow->deltas[i].batch); /* its tables are gone */
    }
    struct evr_err open_err = {0};
    if (evr__cow_open_conns(cow, &open_err) != 0) {
        return evr_err_set(err, open_err.code, "opening the imported "
                           "database: %s", open_err.msg);
    }
    if (!evr_h128_eq(evr_cow_digest(cow), root)) {
        return evr_err_set(err, EVR_EMISMATCH,
                           "the imported database reopened with another "
                           "digest");
    }
    return 0;
}

static void reopen_old(struct evr_cow *cow, int rc, struct evr_err *err)
{
    struct evr_err again = {0};
    if (evr__cow_open_conns(cow, &again) != 0) {
        evr_err_wrap(err, rc, "and reopening the old database failed "
                     "too (%s)", again.msg);
    }
}

/*
 * Puts the built file in place of the replica's database. The old file is
 * kept (as path.old) until the new one has been reopened and its digest
 * found equal to the snapshot's; otherwise the old one comes back.
 */
static int swap_in_file(struct evr_cow *cow, const char *tmp, evr_h128 root,
                        struct evr_err *err)
{
    char *old = sqlite3_mprintf("%s.old", cow->path);
    if (old == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    close_for_swap(cow);
    int rc = 0;
    if (rename(cow->path, old) != 0 || rename(tmp, cow->path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "replacing '%s': %s", cow->path,
                         strerror(errno));
    }
    rc = rc ? rc : reopen_swapped(cow, root, err);
    if (rc != 0) {
        close_for_swap(cow);
        struct stat st;
        if (stat(old, &st) == 0) {
            rename(old, cow->path);
        }
        reopen_old(cow, rc, err);
    } else {
        unlink(old);
    }
    sqlite3_free(old);
    return rc;
}

/* The same in memory: the old bytes are kept until the new ones check. */
static int swap_in_memory(struct evr_cow *cow, const char *tmp,
                          evr_h128 root, struct evr_err *err)
{
    struct evr__mem_image img = {0};
    int rc = evr__mem_read_file(tmp, &img, err);
    if (rc != 0) {
        return rc;
    }
    evr__cow_close_conns(cow);
    evr__schema_free(&cow->schema);
    rc = evr__mem_swap(cow->path, &img, err); /* img: the old bytes */
    bool swapped = rc == 0;
    rc = rc ? rc : reopen_swapped(cow, root, err);
    if (rc != 0) {
        evr__cow_close_conns(cow);
        evr__schema_free(&cow->schema);
        if (swapped) {
            evr__mem_swap(cow->path, &img, NULL);
        }
        reopen_old(cow, rc, err);
    }
    evr__mem_image_free(&img);
    return rc;
}

static int swap_in(struct evr_cow *cow, const char *tmp, evr_h128 root,
                   struct evr_err *err)
{
    return cow->loaded ? swap_in_memory(cow, tmp, root, err)
                       : swap_in_file(cow, tmp, root, err);
}

int evr_cow_snapshot_import(struct evr_cow *cow, const char *path,
                            struct evr_err *err)
{
    int rc = check_quiet(cow, "snapshot import", err);
    if (rc != 0) {
        return rc;
    }
    struct reader r = {.path = path};
    evr_h128 root = {0, 0};
    r.f = fopen(path, "rb");
    if (r.f == NULL) {
        return evr_err_set(err, errno == ENOENT ? EVR_ENOENT : EVR_EIO,
                           "cannot open snapshot '%s': %s", path,
                           strerror(errno));
    }
    evr_buf_init(&r.rec, SIZE_MAX);
    struct stat fst;
    r.size = fstat(fileno(r.f), &fst) == 0 ? (long)fst.st_size : 0;
    char *tmp = sqlite3_mprintf("%s.import", cow->path);
    if (tmp == NULL) {
        rc = evr_err_set(err, EVR_ENOMEM, "out of memory");
    } else {
        remove_db(tmp);
        rc = build_file(&r, tmp, &root, err);
    }
    fclose(r.f);
    evr_buf_free(&r.rec);
    if (rc == 0) {
        rc = swap_in(cow, tmp, root, err);
    }
    if (tmp != NULL) {
        remove_db(tmp);
    }
    sqlite3_free(tmp);
    return rc;
}
