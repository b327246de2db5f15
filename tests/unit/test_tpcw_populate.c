/* TPC-W population: cardinalities, DigSyl, the value rules of clause 4.7
 * and determinism, on a 1,000-item / 10-EB database made once per run. */
#include "tests/unit/helpers/cm.h"

#include <math.h>
#include <stdbool.h>
#include <strings.h>
#include <unistd.h>

#include "cow_state/cow_state.h"
#include "tests/unit/helpers/th.h"
#include "workloads/tpcw/tpcw.h"

#define ITEMS 1000
#define EBS 10
#define CUSTOMERS (TPCW_CUSTOMERS_PER_EB * EBS)
#define ORDERS (CUSTOMERS * 9 / 10)
#define TOKEN_LEN 14

struct fixture {
    char *dir;
    char *path;
    sqlite3 *db;
};

/* Populates dir/name with the test's scale and the given seed. */
static char *populate(const char *dir, const char *name, const char *seed)
{
    const struct evr_app_opt opts[] = {
        {"items", "1000"}, {"ebs", "10"}, {"seed", seed}};
    struct evr_app app;
    struct evr_err err = {0};
    th_must(evr_app_open("tpcw", opts, 3, &app, &err), &err);
    char *path = th_path(dir, name);
    th_must(evr_app_populate_file(&app, path, &err), &err);
    evr_app_close(&app);
    return path;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = th_mkdtemp();
    f->path = populate(f->dir, "a.db", "7");
    f->db = th_open(f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sqlite3_close(f->db);
    free(f->path);
    th_rmdir(f->dir);
    free(f);
    return 0;
}

static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    return st;
}

/* The single integer a query returns. */
static int64_t q_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = prepare(db, sql);
    if (sqlite3_step(st) != SQLITE_ROW) {
        fail_msg("%s: no row (%s)", sql, sqlite3_errmsg(db));
    }
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void expect_count(sqlite3 *db, const char *table, int64_t n)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    int64_t got = q_int(db, sql);
    if (got != n) {
        fail_msg("%s has %lld rows, not %lld", table, (long long)got,
                 (long long)n);
    }
}

/* The id whose DigSyl(id, 7) starts at s, or 0. */
static uint64_t token_at(const char *s)
{
    return strlen(s) >= TOKEN_LEN ? tpcw_undigsyl(s, TOKEN_LEN) : 0;
}

/* ------------------------------------------------------------ counts */

static void test_counts(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    expect_count(db, "country", 92);
    expect_count(db, "author", ITEMS / 4);
    expect_count(db, "item", ITEMS);
    expect_count(db, "customer", CUSTOMERS);
    expect_count(db, "address", 2 * CUSTOMERS);
    expect_count(db, "orders", ORDERS);
    expect_count(db, "cc_xacts", ORDERS);
    expect_count(db, "shopping_cart", 0);
    expect_count(db, "shopping_cart_line", 0);
    int64_t lines = q_int(db, "SELECT count(*) FROM order_line");
    assert_in_range(lines, ORDERS, 5 * ORDERS);
    assert_int_equal(q_int(db, "SELECT sum((SELECT count(*) FROM order_line"
                               " WHERE ol_o_id = o_id)) FROM orders"),
                     lines);
    /* Every order has lines 1..n, 1 <= n <= 5 (the key makes them
     * distinct), and no line lacks its order. */
    assert_int_equal(q_int(db, "SELECT count(*) FROM orders LEFT JOIN"
                               " (SELECT ol_o_id, count(*) AS n, min(ol_id)"
                               " AS lo, max(ol_id) AS hi FROM order_line"
                               " GROUP BY ol_o_id) ON ol_o_id = o_id"
                               " WHERE n IS NULL OR n > 5 OR lo <> 1"
                               " OR hi <> n"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM order_line WHERE"
                               " ol_o_id NOT IN (SELECT o_id FROM orders)"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM cc_xacts WHERE cx_o_id"
                               " NOT IN (SELECT o_id FROM orders)"),
                     0);
}

/* ------------------------------------------------------------ DigSyl */

static void expect_digsyl(uint64_t d, int n, const char *want)
{
    char out[41];
    tpcw_digsyl(d, n, out);
    if (strcmp(out, want) != 0) {
        fail_msg("DigSyl(%llu, %d) = %s, not %s", (unsigned long long)d, n,
                 out, want);
    }
}

static void test_digsyl(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    expect_digsyl(4, 0, "RE");
    expect_digsyl(100, 0, "OGBABA");
    expect_digsyl(100, 5, "BABAOGBABA");
    expect_digsyl(1972, 0, "OGNGULAL");
    expect_digsyl(1972, 6, "BABAOGNGULAL");
    expect_digsyl(1, 0, "OG");
    expect_digsyl(2880, 0, "ALININBA");
    expect_digsyl(123, 7, "BABABABAOGALRI");
    for (uint64_t d = 1; d < 100000; d += 7) {
        char s[41];
        tpcw_digsyl(d, 0, s);
        assert_int_equal(tpcw_undigsyl(s, strlen(s)), d);
    }
    assert_int_equal(tpcw_undigsyl("OGX", 3), 0);
    assert_int_equal(tpcw_undigsyl("OGXX", 4), 0);

    sqlite3_stmt *st =
        prepare(db, "SELECT c_id, c_uname, c_passwd FROM customer ORDER BY"
                    " c_id");
    int64_t n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t c = (uint64_t)sqlite3_column_int64(st, 0);
        const char *uname = (const char *)sqlite3_column_text(st, 1);
        const char *passwd = (const char *)sqlite3_column_text(st, 2);
        char want[41];
        tpcw_digsyl(c, 0, want);
        assert_string_equal(uname, want);
        assert_int_equal(strlen(passwd), strlen(uname));
        assert_int_equal(strncasecmp(passwd, uname, strlen(uname)), 0);
        if (c == 1) {
            assert_string_equal(uname, "OG");
            assert_string_equal(passwd, "og");
        }
        n++;
    }
    sqlite3_finalize(st);
    assert_int_equal(n, CUSTOMERS);
}

/* ------------------------------------------------------------ items */

static void test_item_numbers(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    assert_int_equal(q_int(db, "SELECT count(*) FROM item WHERE i_stock"
                               " NOT BETWEEN 10 AND 30"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM item WHERE i_cost >"
                               " i_srp OR i_cost < i_srp / 2 - 0.01"
                               " OR i_srp NOT BETWEEN 1 AND 9999.99"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM item WHERE i_a_id NOT"
                               " BETWEEN 1 AND 250 OR (i_id <= 250 AND"
                               " i_a_id <> i_id)"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM item WHERE i_avail <="
                               " i_pub_date OR i_pub_date < '1930-01-01'"
                               " OR i_pub_date > '2023-11-14'"),
                     0);
    sqlite3_stmt *st =
        prepare(db, "SELECT i_related1, i_related2, i_related3, i_related4,"
                    " i_related5 FROM item");
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int k = 0; k < 5; k++) {
            int64_t r = sqlite3_column_int64(st, k);
            assert_in_range(r, 1, ITEMS);
            for (int j = 0; j < k; j++) {
                assert_int_not_equal(r, sqlite3_column_int64(st, j));
            }
        }
    }
    sqlite3_finalize(st);
}

static void test_item_subjects(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    sqlite3_stmt *st = prepare(db, "SELECT DISTINCT i_subject FROM item");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *s = (const char *)sqlite3_column_text(st, 0);
        bool known = false;
        for (int k = 0; k < TPCW_SUBJECTS; k++) {
            known = known || strcmp(s, tpcw_subjects[k]) == 0;
        }
        if (!known) {
            fail_msg("unknown subject '%s'", s);
        }
        n++;
    }
    sqlite3_finalize(st);
    /* 1,000 uniform draws miss one of 24 with probability ~1e-17. */
    assert_int_equal(n, TPCW_SUBJECTS);
}

/* The first in-range search token in a title (0 if none); titles of the
 * first fifth of the items must carry their own. */
static uint64_t title_token(const char *title, uint64_t i)
{
    char own[41];
    tpcw_digsyl(i, 7, own);
    if (i <= ITEMS / 5) {
        return strstr(title, own) != NULL ? i : 0;
    }
    for (const char *s = title; *s != '\0'; s++) {
        uint64_t d = token_at(s);
        if (d >= 1 && d <= ITEMS / 5) {
            return d;
        }
    }
    return 0;
}

static void test_item_titles(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    sqlite3_stmt *st = prepare(db, "SELECT i_id, i_title FROM item");
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t i = (uint64_t)sqlite3_column_int64(st, 0);
        const char *title = (const char *)sqlite3_column_text(st, 1);
        assert_in_range(strlen(title), TOKEN_LEN, 60);
        if (title_token(title, i) == 0) {
            fail_msg("title of item %llu lacks its token: '%s'",
                     (unsigned long long)i, title);
        }
    }
    sqlite3_finalize(st);
}

static void test_author_names(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    sqlite3_stmt *st = prepare(db, "SELECT a_id, a_lname FROM author");
    int suffixed = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        uint64_t a = (uint64_t)sqlite3_column_int64(st, 0);
        const char *lname = (const char *)sqlite3_column_text(st, 1);
        uint64_t d = token_at(lname);
        assert_in_range(d, 1, ITEMS / 10);
        if (a <= ITEMS / 10) {
            assert_int_equal(d, a);
        }
        assert_in_range(strlen(lname), TOKEN_LEN, 20);
        suffixed += strlen(lname) > TOKEN_LEN;
    }
    sqlite3_finalize(st);
    /* A quarter of 250 names carry a suffix. */
    assert_in_range(suffixed, 30, 100);
}

/* ------------------------------------------------------------ orders */

/* An order's stored amounts and what its lines add up to. */
/* Clause 4.7.1: o_sub_total in [10.00, 9999.99], tax 8.25 % of it, total =
 * sub-total + tax + $3.00 + $1.00 per order line; 1..5 lines. */
static void test_order_totals(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    sqlite3_stmt *st = prepare(
        db, "SELECT o_id, o_sub_total, o_tax, o_total, count(ol_id)"
            " FROM orders JOIN order_line ON ol_o_id = o_id GROUP BY o_id"
            " ORDER BY o_id");
    int n = 0;
    double sub_min = 1e9, sub_max = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        long long id = sqlite3_column_int64(st, 0);
        double sub = sqlite3_column_double(st, 1);
        double tax = sqlite3_column_double(st, 2);
        double total = sqlite3_column_double(st, 3);
        int64_t lines = sqlite3_column_int64(st, 4);
        double want = tpcw_cents(sub + tpcw_cents(sub * 0.0825) + 3.00 +
                                 (double)lines);
        if (fabs(tax - tpcw_cents(sub * 0.0825)) > 0.001 ||
            fabs(total - want) > 0.001 || lines < 1 || lines > 5) {
            fail_msg("order %lld: sub-total %.2f tax %.2f total %.2f with %lld"
                     " lines; expected total %.2f",
                     id, sub, tax, total, (long long)lines, want);
        }
        sub_min = sub < sub_min ? sub : sub_min;
        sub_max = sub > sub_max ? sub : sub_max;
        n++;
    }
    sqlite3_finalize(st);
    assert_int_equal(n, ORDERS);
    assert_true(sub_min >= 10.00);
    assert_true(sub_max <= 9999.99);
    assert_true(sub_max - sub_min > 9000); /* spread over the range */
}

static void test_order_dates(void **state)
{
    sqlite3 *db = ((struct fixture *)*state)->db;
    /* o_date = now - 1..60 days, to the second. */
    char lo[20], hi[20], sql[256];
    tpcw_timestamp(TPCW_NOW_DEFAULT - 60 * TPCW_DAY, lo);
    tpcw_timestamp(TPCW_NOW_DEFAULT - TPCW_DAY, hi);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM orders WHERE o_date NOT BETWEEN '%s' AND"
             " '%s' OR o_ship_date < o_date",
             lo, hi);
    assert_int_equal(q_int(db, sql), 0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM orders JOIN cc_xacts"
                               " ON cx_o_id = o_id WHERE cx_xact_amt IS NOT"
                               " o_total OR cx_xact_date IS NOT o_date"),
                     0);
    assert_int_equal(q_int(db, "SELECT count(*) FROM cc_xacts WHERE"
                               " length(cx_num) <> 16 OR length(cx_auth_id)"
                               " <> 15 OR cx_co_id NOT BETWEEN 1 AND 92"),
                     0);
}

/* ------------------------------------------------------------ errors */

/* A row already in `table` makes population fail there, naming it, and
 * leaves nothing of its own behind. */
static void expect_conflict(const char *dir, const char *table,
                            const char *row_sql)
{
    char *path = th_path(dir, "conflict.db");
    sqlite3 *db = th_open(path);
    struct evr_err err = {0};
    th_must(tpcw_create_tables(db, &err), &err);
    th_exec(db, row_sql);
    const struct tpcw_config c = {.items = 1000, .ebs = 1, .seed = 1,
                                  .now = TPCW_NOW_DEFAULT};
    assert_int_equal(tpcw_populate(&c, db, &err), EVR_ESQL);
    char want[64];
    snprintf(want, sizeof want, "populating %s: ", table);
    if (strstr(err.msg, want) == NULL || strstr(err.msg, "UNIQUE") == NULL) {
        fail_msg("message '%s' lacks '%s' and UNIQUE", err.msg, want);
    }
    assert_int_equal(sqlite3_get_autocommit(db), 1);
    assert_int_equal(q_int(db, "SELECT (SELECT count(*) FROM country) +"
                               " (SELECT count(*) FROM item) +"
                               " (SELECT count(*) FROM orders) +"
                               " (SELECT count(*) FROM order_line)"),
                     1);
    sqlite3_close(db);
    unlink(path);
    free(path);
}

static void test_errors(void **state)
{
    struct fixture *f = *state;
    expect_conflict(f->dir, "country",
                    "INSERT INTO country VALUES (5, 'x', 1, 'y')");
    expect_conflict(f->dir, "order_line",
                    "INSERT INTO order_line (ol_id, ol_o_id) VALUES (1, 1)");
}

/* ------------------------------------------------------------ determinism */

static evr_h128 digest(const char *path)
{
    evr_h128 h;
    struct evr_err err = {0};
    th_must(evr_digest_file(path, &h, &err), &err);
    return h;
}

static void test_determinism(void **state)
{
    struct fixture *f = *state;
    char *same = populate(f->dir, "same.db", "7");
    char *other = populate(f->dir, "other.db", "8");
    evr_h128 h = digest(f->path);
    assert_true(evr_h128_eq(h, digest(same)));
    assert_false(evr_h128_eq(h, digest(other)));
    free(same);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_digsyl),
        cmocka_unit_test(test_item_numbers),
        cmocka_unit_test(test_item_subjects),
        cmocka_unit_test(test_item_titles),
        cmocka_unit_test(test_author_names),
        cmocka_unit_test(test_order_totals),
        cmocka_unit_test(test_order_dates),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
