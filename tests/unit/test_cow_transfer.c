/* Batch deltas and snapshots: round trips, and refusal of bad input that
 * leaves the receiving replica untouched. */
#include "tests/unit/helpers/cm.h"

#include <unistd.h>

#include "cow_state/cow_state.h"
#include "tests/unit/helpers/randdb.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"

struct fixture {
    char *dir;
    char *pa, *pb;
    struct evr_cow *a, *b;
    struct evr_rng rng;
};

/* Two replicas with the same start state. */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = th_mkdtemp();
    f->pa = th_path(f->dir, "a.db");
    f->pb = th_path(f->dir, "b.db");
    uint64_t seed = th_seed(21);
    randdb_create(f->pa, 300, seed);
    th_copy_file(f->pa, f->pb);
    f->a = th_cow_open(f->pa, 1, 0);
    f->b = th_cow_open(f->pb, 1, 0);
    evr_rng_seed(&f->rng, seed + 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    evr_cow_close(f->a);
    evr_cow_close(f->b);
    free(f->pa);
    free(f->pb);
    th_rmdir(f->dir);
    free(f);
    return 0;
}

/* Content without hidden rowids, which deltas do not carry. */
static char *content(const char *path)
{
    char *dir = th_mkdtemp();
    char *copy = th_path(dir, "c.db");
    sqlite3 *src = th_open(path);
    sqlite3 *dst = th_open(copy);
    th_exec(dst, randdb_schema);
    th_exec(dst, "CREATE TABLE keep(x INTEGER PRIMARY KEY)");
    sqlite3_close(dst);
    char *sql = sqlite3_mprintf("ATTACH DATABASE %Q AS c", copy);
    th_exec(src, sql);
    sqlite3_free(sql);
    th_exec(src, "INSERT INTO c.a SELECT * FROM main.a ORDER BY id;"
                 "INSERT INTO c.b SELECT * FROM main.b ORDER BY k;"
                 "INSERT INTO c.c SELECT * FROM main.c;"
                 "INSERT INTO c.d SELECT * FROM main.d ORDER BY k;"
                 "DETACH DATABASE c");
    sqlite3_close(src);
    char *d = th_dump_file(copy);
    free(copy);
    th_rmdir(dir);
    return d;
}

static void test_delta_round_trip(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    for (uint64_t op = 1; op <= 40; op++) {
        evr_h128 ra;
        randdb_batch(f->a, op, 1 + (int)evr_rng_below(&f->rng, 8), &f->rng,
                     &ra);
        th_must(evr_cow_commit(f->a, op, &err), &err);
        /* Exported after commit, from the retained copy. */
        evr_buf_reset(&delta);
        th_must(evr_cow_delta_export(f->a, op, &delta, &err), &err);
        th_must(evr_cow_delta_apply(f->b, op, delta.data, delta.len, &err),
             &err);
        th_must(evr_cow_commit(f->b, op, &err), &err);
        assert_true(evr_h128_eq(evr_cow_digest(f->b), ra));
    }
    evr_h128 full;
    th_must(evr_cow_digest_full(f->b, &full, &err), &err);
    assert_true(evr_h128_eq(full, evr_cow_digest(f->a)));
    char *ca = content(f->pa);
    char *cb = content(f->pb);
    assert_string_equal(ca, cb);
    free(ca);
    free(cb);
    evr_buf_free(&delta);
}

/* Replica b diverges in batch 1 (runs other requests); it rolls back and
 * repairs itself from a's delta, ending on a's state. */
static void test_delta_repairs_divergence(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    struct evr_rng other;
    evr_rng_seed(&other, 999);
    evr_h128 ra, rb;
    randdb_batch(f->a, 1, 6, &f->rng, &ra);
    randdb_batch(f->b, 1, 6, &other, &rb);
    assert_false(evr_h128_eq(ra, rb));
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    th_must(evr_cow_delta_export(f->a, 1, &delta, &err), &err);
    /* Applying onto the diverged state is refused and changes nothing. */
    assert_int_equal(evr_cow_delta_apply(f->b, 2, delta.data, delta.len, &err),
                     EVR_EMISMATCH);
    assert_true(evr_h128_eq(evr_cow_digest(f->b), rb));
    th_must(evr_cow_rollback(f->b, 1, &err), &err);
    th_must(evr_cow_delta_apply(f->b, 1, delta.data, delta.len, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(f->b), ra));
    evr_buf_free(&delta);
}

static void test_delta_refusals(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    evr_h128 ra;
    randdb_batch(f->a, 1, 8, &f->rng, &ra);
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    th_must(evr_cow_delta_export(f->a, 1, &delta, &err), &err);
    evr_h128 before = evr_cow_digest(f->b);
    /* Every single-byte corruption and every truncation is refused. */
    for (size_t i = 0; i < delta.len; i += 1 + delta.len / 97) {
        delta.data[i] ^= 0x40;
        int rc = evr_cow_delta_apply(f->b, 1, delta.data, delta.len, &err);
        assert_int_equal(rc, EVR_ECORRUPT);
        delta.data[i] ^= 0x40;
    }
    for (size_t n = 0; n < delta.len; n += 1 + delta.len / 31) {
        int rc = evr_cow_delta_apply(f->b, 1, delta.data, n, &err);
        assert_int_equal(rc, EVR_ECORRUPT);
    }
    assert_true(evr_h128_eq(evr_cow_digest(f->b), before));
    assert_int_equal(evr_cow_uncommitted(f->b), 0);
    /* An op that was never executed has no delta. */
    assert_int_equal(evr_cow_delta_export(f->a, 77, &delta, &err),
                     EVR_ENOENT);
    evr_buf_free(&delta);
}

static void test_snapshot_round_trip(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    for (uint64_t op = 1; op <= 20; op++) {
        evr_h128 r;
        randdb_batch(f->a, op, 5, &f->rng, &r);
        th_must(evr_cow_commit(f->a, op, &err), &err);
    }
    char *snap = th_path(f->dir, "a.snap");
    th_must(evr_cow_snapshot_export(f->a, snap, &err), &err);
    th_must(evr_cow_snapshot_import(f->b, snap, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(f->a), evr_cow_digest(f->b)));
    char *da = th_dump_file(f->pa);
    char *db = th_dump_file(f->pb);
    assert_string_equal(da, db); /* hidden rowids included */
    free(da);
    free(db);
    /* b goes on executing on the imported state. */
    evr_h128 r;
    randdb_batch(f->b, 21, 5, &f->rng, &r);
    evr_h128 full;
    th_must(evr_cow_digest_full(f->b, &full, &err), &err);
    assert_true(evr_h128_eq(full, r));
    th_must(evr_cow_rollback(f->b, 21, &err), &err);
    free(snap);
}

static long file_size(const char *path)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fclose(fp);
    return n;
}

static void flip_byte(const char *path, long at)
{
    FILE *fp = fopen(path, "r+b");
    fseek(fp, at, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void expect_import_refused(struct fixture *f, const char *snap,
                                  int code, const char *needle)
{
    struct evr_err err = {0};
    evr_h128 before = evr_cow_digest(f->b);
    char *dump_before = th_dump_file(f->pb);
    assert_int_equal(evr_cow_snapshot_import(f->b, snap, &err), code);
    if (needle != NULL && strstr(err.msg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
    }
    assert_true(evr_h128_eq(evr_cow_digest(f->b), before));
    char *dump_after = th_dump_file(f->pb);
    assert_string_equal(dump_before, dump_after);
    free(dump_before);
    free(dump_after);
}

static void test_snapshot_refusals(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    evr_h128 r;
    randdb_batch(f->a, 1, 5, &f->rng, &r);
    char *snap = th_path(f->dir, "a.snap");
    assert_int_equal(evr_cow_snapshot_export(f->a, snap, &err), EVR_ESTATE);
    th_must(evr_cow_commit(f->a, 1, &err), &err);
    th_must(evr_cow_snapshot_export(f->a, snap, &err), &err);

    char *missing = th_path(f->dir, "nope.snap");
    expect_import_refused(f, missing, EVR_ENOENT, "nope.snap");

    /* Damage anywhere is caught by a checksum. */
    long n = file_size(snap);
    for (long at = 0; at < n; at += 1 + n / 50) {
        flip_byte(snap, at);
        expect_import_refused(f, snap, EVR_ECORRUPT, NULL);
        flip_byte(snap, at);
    }
    /* A record claiming more bytes than the file has is refused before
     * anything is allocated for it. */
    {
        char *tiny = th_path(f->dir, "tiny.snap");
        FILE *in = fopen(snap, "rb");
        uint8_t h[45];
        assert_int_equal(fread(h, 1, 45, in), 45);
        fclose(in);
        h[40] = 1;
        evr_store_u32(h + 41, 500u << 20);
        FILE *out = fopen(tiny, "wb");
        fwrite(h, 1, 45, out);
        fclose(out);
        expect_import_refused(f, tiny, EVR_ECORRUPT, "truncated");
        free(tiny);
    }
    /* Truncation is caught by the missing END record. */
    assert_int_equal(truncate(snap, n - 9), 0);
    expect_import_refused(f, snap, EVR_ECORRUPT, "truncated");

    /* Intact records but a claimed digest that the rows do not give: the
     * header checksum is recomputed, so only the digest check can refuse. */
    th_must(evr_cow_snapshot_export(f->a, snap, &err), &err);
    FILE *fp = fopen(snap, "r+b");
    uint8_t h[40];
    assert_int_equal(fread(h, 1, 40, fp), 40);
    h[16] ^= 0xff;
    evr_store_u64(h + 32, evr_hash64(h, 32, 0));
    fseek(fp, 0, SEEK_SET);
    fwrite(h, 1, 40, fp);
    fclose(fp);
    expect_import_refused(f, snap, EVR_EMISMATCH, "refused");

    /* And the export of an unwritable path fails with the path named. */
    char *bad = th_path(f->dir, "no/such/dir/x.snap");
    assert_int_equal(evr_cow_snapshot_export(f->a, bad, &err), EVR_EIO);
    assert_non_null(strstr(err.msg, "x.snap"));
    free(bad);
    free(missing);
    free(snap);
}

/* Regression: a table name of 1024 bytes or more crashed the delta parser
 * (a fixed buffer left the table NULL). */
static void test_delta_long_table_name(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *pa = th_path(dir, "a.db");
    char *pb = th_path(dir, "b.db");
    char name[1101];
    memset(name, 'n', 1100);
    name[1100] = '\0';
    char *sql = sqlite3_mprintf("CREATE TABLE \"%w\"(k INTEGER PRIMARY KEY, "
                                "v TEXT)",
                                name);
    th_make_db(pa, sql);
    th_copy_file(pa, pb);
    struct evr_cow *a = th_cow_open(pa, 1, 0);
    struct evr_cow *b = th_cow_open(pb, 1, 0);
    struct evr_err err = {0};
    th_must(evr_cow_batch_begin(a, 1, &err), &err);
    char *ins = sqlite3_mprintf("BEGIN; INSERT INTO \"%w\" VALUES(1, 'x'); "
                                "COMMIT",
                                name);
    th_exec(evr_cow_conn_db(evr_cow_seq(a)), ins);
    th_must(evr_cow_batch_end(a, NULL, &err), &err);
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    th_must(evr_cow_delta_export(a, 1, &delta, &err), &err);
    th_must(evr_cow_delta_apply(b, 1, delta.data, delta.len, &err), &err);
    assert_true(evr_h128_eq(evr_cow_digest(a), evr_cow_digest(b)));
    evr_buf_free(&delta);
    sqlite3_free(sql);
    sqlite3_free(ins);
    evr_cow_close(a);
    evr_cow_close(b);
    free(pa);
    free(pb);
    th_rmdir(dir);
}

/* Rewrites a snapshot with one more schema record (kind, sql) before the
 * others, fixing the END record's count and every checksum touched. */
static void add_schema_record(const char *path, uint8_t kind, const char *sql)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *in = malloc((size_t)n);
    assert_int_equal(fread(in, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    struct evr_buf out;
    evr_buf_init(&out, SIZE_MAX);
    evr_buf_put(&out, in, 40); /* header */
    size_t len = strlen(sql);
    size_t at = out.len;
    evr_buf_put_u8(&out, 1);
    evr_buf_put_u32(&out, (uint32_t)len + 1);
    evr_buf_put_u8(&out, kind);
    evr_buf_put(&out, sql, len);
    evr_buf_put_u64(&out, evr_hash64(out.data + at, out.len - at, 0));
    for (long pos = 40; pos < n;) {
        uint32_t plen = evr_load_u32(in + pos + 1);
        size_t rec = 5 + plen + 8;
        size_t start = out.len;
        evr_buf_put(&out, in + pos, rec);
        if (in[pos] == 4) { /* END: one more schema object */
            uint8_t *p = out.data + start + 5;
            evr_store_u32(p + 12, evr_load_u32(p + 12) + 1);
            evr_store_u64(p + plen, evr_hash64(out.data + start, 5 + plen, 0));
        }
        pos += (long)rec;
    }
    f = fopen(path, "wb");
    assert_int_equal(fwrite(out.data, 1, out.len, f), out.len);
    fclose(f);
    evr_buf_free(&out);
    free(in);
}

/* Regression: a schema record could claim to be an index and create a
 * table (undigested), or create a table evr refuses after the swap,
 * leaving the replica without a database. Each is refused before any
 * change, and the replica goes on. */
static void test_snapshot_schema_records(void **state)
{
    struct fixture *f = *state;
    struct evr_err err = {0};
    char *snap = th_path(f->dir, "a.snap");
    const struct {
        uint8_t kind;
        const char *sql;
        int code;
    } cases[] = {
        {1, "CREATE  TABLE extra(k INTEGER PRIMARY KEY)", EVR_ECORRUPT},
        {1, "CREATE TABLE extra2(k INTEGER PRIMARY KEY)", EVR_ECORRUPT},
        {0, "CREATE  TABLE loose(a, b)", EVR_ESCHEMA},
        {0, "CREATE VIRTUAL TABLE v USING fts5(x)", EVR_ECORRUPT},
        {0, "CREATE TEMP TABLE tt(k INTEGER PRIMARY KEY)", EVR_ECORRUPT},
        {0, "CREATE TABLE z(k INTEGER PRIMARY KEY); DROP TABLE a",
         EVR_ECORRUPT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        th_must(evr_cow_snapshot_export(f->a, snap, &err), &err);
        add_schema_record(snap, cases[i].kind, cases[i].sql);
        expect_import_refused(f, snap, cases[i].code, NULL);
    }
    /* Untouched and still working. */
    evr_h128 r;
    randdb_batch(f->b, 1, 5, &f->rng, &r);
    evr_h128 full;
    th_must(evr_cow_digest_full(f->b, &full, &err), &err);
    assert_true(evr_h128_eq(full, r));
    free(snap);
}

/* Regression: a delta whose pre-images exceed the batch memory committed
 * uncaptured changes and left the cow unable to begin another batch. */
static void test_delta_apply_over_capture_limit(void **state)
{
    (void)state;
    char *dir = th_mkdtemp();
    char *pa = th_path(dir, "a.db");
    char *pb = th_path(dir, "b.db");
    th_make_db(pa, "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB);"
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
                   "FROM n WHERE i < 20) INSERT INTO t SELECT i, "
                   "zeroblob(1000) FROM n;");
    th_copy_file(pa, pb);
    struct evr_cow *a = th_cow_open(pa, 1, 0);
    struct evr_cow *b = th_cow_open(pb, 1, 8192);
    struct evr_err err = {0};
    th_must(evr_cow_batch_begin(a, 1, &err), &err);
    th_exec(evr_cow_conn_db(evr_cow_seq(a)), "BEGIN; DELETE FROM t; COMMIT");
    th_must(evr_cow_batch_end(a, NULL, &err), &err);
    struct evr_buf delta;
    evr_buf_init(&delta, SIZE_MAX);
    th_must(evr_cow_delta_export(a, 1, &delta, &err), &err);
    evr_h128 before = evr_cow_digest(b);
    assert_int_equal(evr_cow_delta_apply(b, 1, delta.data, delta.len, &err),
                     EVR_ELIMIT);
    assert_true(evr_h128_eq(evr_cow_digest(b), before));
    evr_h128 full;
    th_must(evr_cow_digest_full(b, &full, &err), &err);
    assert_true(evr_h128_eq(full, before));
    th_must(evr_cow_batch_begin(b, 1, &err), &err); /* not wedged */
    th_must(evr_cow_batch_end(b, NULL, &err), &err);
    evr_buf_free(&delta);
    evr_cow_close(a);
    evr_cow_close(b);
    free(pa);
    free(pb);
    th_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delta_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delta_repairs_divergence, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delta_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_refusals, setup,
                                        teardown),
        cmocka_unit_test(test_delta_long_table_name),
        cmocka_unit_test_setup_teardown(test_snapshot_schema_records, setup,
                                        teardown),
        cmocka_unit_test(test_delta_apply_over_capture_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
