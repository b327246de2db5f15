/* Each TPC-W interaction's effect on a small hand-built store: pages,
 * ordering and tie-breaks, the 3333-order window of Best Sellers, the stock
 * rule, carts, customers, orders, and refusals. */
#include "tests/unit/helpers/cm.h"

#include "executor/executor.h"
#include "tests/unit/helpers/replica.h"
#include "tests/unit/helpers/th.h"
#include "tests/unit/helpers/tpcw_audit.h"
#include "workloads/tpcw/tpcw.h"

#define NOW_US 1700000000000000LL /* 2023-11-14 22:13:20 UTC */
#define BEST_ORDERS 3400          /* orders in the Best Sellers fixture */

struct fixture {
    char *dir;
    char *path;
    struct evr_app app;
    struct evr_cow *cow;
    struct evr_executor *ex;
    struct tpcw_audit *audit; /* every request's set against its SQL */
    uint64_t op;
    char *page; /* last response, NUL-terminated */
    int status;
};

/* Items 1..6 (subject ARTS except 5 and 6), authors 1..3, two customers,
 * three addresses, two countries; the orders come per test. */
static const char fixture_sql[] =
    "INSERT INTO country VALUES (1, 'United States', 1, 'Dollars'),"
    " (2, 'Canada', 1.46712, 'Dollars');"
    "INSERT INTO author VALUES (1, 'Ann', 'OGOGOGOGOGOGOG', 'A', "
    " '1950-01-01', 'bio'), (2, 'Bob', 'ALALALALALALALsmith', 'B',"
    " '1960-01-01', 'bio'), (3, 'Cy', 'RIRIRIRIRIRIRI', 'C', '1970-01-01',"
    " 'bio');"
    "INSERT INTO item (i_id, i_title, i_a_id, i_pub_date, i_subject,"
    " i_related1, i_related2, i_related3, i_related4, i_related5,"
    " i_thumbnail, i_image, i_srp, i_cost, i_stock) VALUES"
    " (1, 'Zebra BABABABABABAOG tales', 1, '2020-01-01', 'ARTS',"
    "  2, 3, 4, 5, 6, 't1', 'i1', 20, 10, 12),"
    " (2, 'Apple pie', 2, '2021-05-05', 'ARTS', 1, 3, 4, 5, 6, 't2', 'i2',"
    "  40, 20.5, 30),"
    " (3, 'Apple pie', 1, '2021-05-05', 'ARTS', 1, 2, 4, 5, 6, 't3', 'i3',"
    "  30, 15, 10),"
    " (4, 'Mango BABABABABABAOGsong', 3, '2019-03-03', 'ARTS', 1, 2, 3, 5,"
    "  6, 't4', 'i4', 10, 5, 20),"
    " (5, 'Kiwi', 2, '2022-02-02', 'HUMOR', 1, 2, 3, 4, 6, 't5', 'i5', 8, 4,"
    "  15),"
    " (6, 'Lime', 3, '2018-08-08', 'HUMOR', 1, 2, 3, 4, 5, 't6', 'i6', 9,"
    "  4.5, 25);"
    "INSERT INTO address VALUES (1, 's1', 's2', 'city', 'st', '11111', 1),"
    " (2, 'r1', 'r2', 'town', 'pr', '22222', 2),"
    " (3, 'q1', 'q2', 'ville', 'qc', '33333', 2);"
    "INSERT INTO customer (c_id, c_uname, c_passwd, c_fname, c_lname,"
    " c_addr_id, c_discount, c_balance, c_ytd_pmt, c_login, c_expiration)"
    " VALUES (1, 'OG', 'og', 'Olga', 'Green', 1, 0.10, 0, 0,"
    "  '2000-01-01 00:00:00', '2000-01-01 02:00:00'),"
    " (2, 'AL', 'al', 'Al', 'Lee', 2, 0, 0, 0, '2000-01-01 00:00:00',"
    "  '2000-01-01 02:00:00');";

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = th_mkdtemp();
    f->path = th_path(f->dir, "store.db");
    struct evr_app_opt opts[] = {{"items", "1000"}, {"ebs", "1"}};
    struct evr_err err = {0};
    th_must(evr_app_open("tpcw", opts, 2, &f->app, &err), &err);
    sqlite3 *db = th_open(f->path);
    th_must(tpcw_create_tables(db, &err), &err);
    th_exec(db, fixture_sql);
    th_must(tpcw_create_indexes(db, &err), &err);
    th_exec(db, "PRAGMA journal_mode = WAL");
    sqlite3_close(db);
    f->audit = tpcw_audit_new(f->path);
    *state = f;
    return 0;
}

static void open_store(struct fixture *f)
{
    f->cow = th_cow_open(f->path, 0, 0);
    struct evr_err err = {0};
    th_must(evr_executor_new(f->cow, &f->app, 16, &f->ex, &err), &err);
    tpcw_audit_attach(f->audit, evr_cow_conn_db(evr_cow_seq(f->cow)));
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    evr_executor_free(f->ex);
    evr_cow_close(f->cow);
    tpcw_audit_free(f->audit);
    evr_app_close(&f->app);
    free(f->page);
    free(f->path);
    th_rmdir(f->dir);
    free(f);
    return 0;
}

/* Runs one request as a batch of its own and keeps its page and status. */
static void run(struct fixture *f, const struct tpcw_req *q)
{
    if (f->cow == NULL) {
        open_store(f);
    }
    struct evr_buf b;
    evr_buf_init(&b, SIZE_MAX);
    assert_int_equal(tpcw_req_encode(q, &b), 0);
    struct evr_request r = {b.data, (uint32_t)b.len};
    struct evr_cset cs;
    f->app.ops->classify(f->app.impl, b.data, (uint32_t)b.len, &cs);
    f->op++;
    struct evr_batch batch = {.op = f->op, .timestamp_us = NOW_US,
                              .seed = f->op, .n = 1, .req = &r, .csets = &cs};
    struct evr_batch_result res;
    struct evr_err err = {0};
    tpcw_audit_begin(f->audit);
    th_must(evr_execute_batch(f->ex, &batch, EVR_EXEC_SEQUENTIAL, NULL, &res,
                              &err),
            &err);
    tpcw_audit_check(f->audit, &cs, tpcw_interaction_names[q->kind]);
    th_must(evr_cow_commit(f->cow, f->op, &err), &err);
    const struct evr_response *resp = evr_executor_responses(f->ex);
    free(f->page);
    f->page = calloc(1, resp[0].body.len + 1);
    memcpy(f->page, resp[0].body.data, resp[0].body.len);
    f->status = resp[0].status;
    evr_buf_free(&b);
}

static void page_has(struct fixture *f, const char *text)
{
    if (strstr(f->page, text) == NULL) {
        fail_msg("page lacks '%s':\n%s", text, f->page);
    }
}

/* A one-value query on the store, through a connection of the test's. */
static char *value(struct fixture *f, const char *sql)
{
    sqlite3 *db = th_open(f->path);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    char *out = NULL;
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(st, 0);
        out = strdup(t ? (const char *)t : "NULL");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out ? out : strdup("(no row)");
}

static void expect_sql(struct fixture *f, const char *sql, const char *want)
{
    char *got = value(f, sql);
    if (strcmp(got, want) != 0) {
        fail_msg("%s\n  gave '%s', expected '%s'", sql, got, want);
    }
    free(got);
}

static struct tpcw_req req(enum tpcw_interaction kind)
{
    struct tpcw_req q;
    memset(&q, 0, sizeof q);
    q.kind = kind;
    return q;
}

/* ------------------------------------------------------------ browsing */

static void test_home_and_forms(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_HOME);
    q.c_id = 1;
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "hello=Olga Green\n");
    page_has(f, "promo=");
    q = req(TPCW_CUSTOMER_REGISTRATION);
    q.c_id = 2;
    run(f, &q);
    page_has(f, "uname=AL\n");
    q = req(TPCW_ORDER_INQUIRY);
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "order_inquiry\n");
}

static void test_new_products_order(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_NEW_PRODUCTS);
    q.subject = 0; /* ARTS */
    run(f, &q);
    /* Newest first; equal dates by title, equal titles by id. */
    const char *want = "2|Apple pie|Bob ALALALALALALALsmith\n"
                       "3|Apple pie|Ann OGOGOGOGOGOGOG\n"
                       "1|Zebra BABABABABABAOG tales|Ann OGOGOGOGOGOGOG\n"
                       "4|Mango BABABABABABAOGsong|Cy RIRIRIRIRIRIRI\n"
                       "items=4\n";
    page_has(f, want);
}

static void test_search_results(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_SEARCH_RESULTS);
    q.search_type = 1; /* title: substring, also spliced onto a word */
    q.search = tpcw_str_of("BABABABABABAOG");
    run(f, &q);
    page_has(f, "4|Mango BABABABABABAOGsong|Cy RIRIRIRIRIRIRI\n"
                "1|Zebra BABABABABABAOG tales|Ann OGOGOGOGOGOGOG\n"
                "items=2\n");
    q.search_type = 0; /* author: last-name prefix */
    q.search = tpcw_str_of("ALALALALALALAL");
    run(f, &q);
    page_has(f, "2|Apple pie|Bob ALALALALALALALsmith\n"
                "5|Kiwi|Bob ALALALALALALALsmith\n"
                "items=2\n");
    q.search_type = 2; /* subject */
    q.search = tpcw_str_of("HUMOR");
    run(f, &q);
    page_has(f, "5|Kiwi|Bob ALALALALALALALsmith\n6|Lime|Cy RIRIRIRIRIRIRI\n"
                "items=2\n");
}

static void test_product_detail(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_PRODUCT_DETAIL);
    q.i_id = 5;
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "item=5|Kiwi|Bob|ALALALALALALALsmith|2022-02-02|");
    q.i_id = 99999; /* no such item: refused, identically everywhere */
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    assert_int_equal(strlen(f->page), 0);
}

/* Orders 1..3400, one line each; item 5 sold 1000 in order 67 (the
 * 3334th newest, outside the window); item 6 sold 5 in order 68 (the
 * 3333rd, inside); items 1 and 2 tie at 7 in newer orders. */
static void add_best_seller_orders(struct fixture *f)
{
    sqlite3 *db = th_open(f->path);
    th_exec(db, "BEGIN;"
                "WITH RECURSIVE n(o) AS (SELECT 1 UNION ALL SELECT o + 1 FROM"
                " n WHERE o < 3400) INSERT INTO orders (o_id, o_c_id, o_date)"
                " SELECT o, 1, '2023-10-01 00:00:00' FROM n;"
                "WITH RECURSIVE n(o) AS (SELECT 1 UNION ALL SELECT o + 1 FROM"
                " n WHERE o < 3400) INSERT INTO order_line SELECT 1, o, 3, 1,"
                " 0, 'c' FROM n;"
                "UPDATE order_line SET ol_i_id = 5, ol_qty = 1000"
                " WHERE ol_o_id = 67;"
                "UPDATE order_line SET ol_i_id = 6, ol_qty = 5"
                " WHERE ol_o_id = 68;"
                "UPDATE order_line SET ol_i_id = 2, ol_qty = 7"
                " WHERE ol_o_id = 3000;"
                "UPDATE order_line SET ol_i_id = 1, ol_qty = 7"
                " WHERE ol_o_id = 3001;"
                "COMMIT");
    sqlite3_close(db);
}

static void test_best_sellers_window(void **state)
{
    struct fixture *f = *state;
    add_best_seller_orders(f);
    struct tpcw_req q = req(TPCW_BEST_SELLERS);
    q.subject = 9; /* HUMOR: item 6 only; item 5 is one order too old */
    run(f, &q);
    page_has(f, "best_sellers subject=HUMOR\n6|Lime|Cy RIRIRIRIRIRIRI\n"
                "items=1\n");
    q.subject = 0; /* ARTS: item 3 in 3330 orders, then 1 and 2 tied */
    run(f, &q);
    page_has(f, "3|Apple pie|Ann OGOGOGOGOGOGOG\n"
                "1|Zebra BABABABABABAOG tales|Ann OGOGOGOGOGOGOG\n"
                "2|Apple pie|Bob ALALALALALALALsmith\nitems=3\n");
    /* One more order moves the window past order 68. */
    sqlite3 *db = th_open(f->path);
    th_exec(db, "INSERT INTO orders (o_id, o_c_id) VALUES (3401, 1)");
    sqlite3_close(db);
    evr_executor_free(f->ex);
    evr_cow_close(f->cow);
    f->cow = NULL;
    q.subject = 9;
    run(f, &q);
    page_has(f, "best_sellers subject=HUMOR\nitems=0\n");
}

/* ------------------------------------------------------------ ordering */

static void test_shopping_cart(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_SHOPPING_CART);
    q.add = 1;
    q.i_id = 4;
    run(f, &q); /* a new cart: id max + 1 = 1 */
    assert_int_equal(f->status, 0);
    page_has(f, "shopping_cart cart=1\nline=4|1|Mango");
    q.sc_id = 1;
    run(f, &q); /* the same item again: quantity 2 */
    page_has(f, "line=4|2|");
    q.add = 1;
    q.i_id = 2;
    q.npairs = 1;
    q.pairs[0] = (struct tpcw_pair){1, 5}; /* line 1 of the page: item 4 */
    run(f, &q);
    page_has(f, "refreshed=1 of 1\n");
    page_has(f, "line=2|1|Apple pie|20.50|40.00|\nline=4|5|");
    page_has(f, "sub_total=45.50 tax=3.75 ship=9.00 total=58.25\n");
    /* With the customer's 10 % discount. */
    q = req(TPCW_SHOPPING_CART);
    q.sc_id = 1;
    q.c_id = 1;
    run(f, &q);
    page_has(f, "sub_total=40.95 tax=3.38 ship=9.00 total=53.33\n");
    /* Quantity 0 removes lines; an emptied cart gets one related item. */
    q.npairs = 2;
    q.pairs[0] = (struct tpcw_pair){1, 0};
    q.pairs[1] = (struct tpcw_pair){2, 0};
    run(f, &q);
    page_has(f, "refreshed=2 of 2\n");
    expect_sql(f, "SELECT count(*) FROM shopping_cart_line", "1");
    expect_sql(f, "SELECT scl_qty FROM shopping_cart_line", "1");
    expect_sql(f, "SELECT count(*) FROM shopping_cart_line WHERE scl_i_id"
                  " IN (2, 4)",
               "0");
    /* A position the page did not have is ignored. */
    q.pairs[0] = (struct tpcw_pair){1, 3};
    q.pairs[1] = (struct tpcw_pair){5, 9};
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "refreshed=1 of 2\n");
    expect_sql(f, "SELECT group_concat(scl_qty) FROM shopping_cart_line",
               "3");
    expect_sql(f, "SELECT sc_time FROM shopping_cart WHERE sc_id = 1",
                 "2023-11-14 22:13:20");
    /* Unknown carts and items are refused and change nothing. */
    q = req(TPCW_SHOPPING_CART);
    q.sc_id = 77;
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    q.sc_id = 1;
    q.add = 1;
    q.i_id = 5000;
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    expect_sql(f, "SELECT count(*) FROM shopping_cart_line", "1");
}

static void test_buy_request(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_BUY_REQUEST);
    q.returning = 1;
    q.uname = tpcw_str_of("OG");
    q.passwd = tpcw_str_of("wrong");
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    expect_sql(f, "SELECT c_login FROM customer WHERE c_id = 1",
                 "2000-01-01 00:00:00");
    q.passwd = tpcw_str_of("og");
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "customer=1|Olga Green\naddress=1|s1|s2|city|st|11111|"
                "United States\n");
    expect_sql(f, "SELECT c_login || ' ' || c_expiration FROM customer "
                    "WHERE c_id = 1",
                 "2023-11-14 22:13:20 2023-11-15 00:13:20");
    /* A new customer at an address the store knows: id 3, DigSyl name,
     * the address reused. */
    q = req(TPCW_BUY_REQUEST);
    q.fname = tpcw_str_of("New");
    q.lname = tpcw_str_of("Buyer");
    q.street1 = tpcw_str_of("r1");
    q.street2 = tpcw_str_of("r2");
    q.city = tpcw_str_of("town");
    q.state = tpcw_str_of("pr");
    q.zip = tpcw_str_of("22222");
    q.country = tpcw_str_of("Canada");
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "customer=3|RI|ri\naddress=2|");
    expect_sql(f, "SELECT c_uname || c_passwd || c_addr_id || c_since "
                    "FROM customer WHERE c_id = 3",
                 "RIri22023-11-14");
    /* At a new address: address 4. In an unknown country: refused. */
    q.zip = tpcw_str_of("99999");
    run(f, &q);
    page_has(f, "customer=4|RE|re\naddress=4|");
    q.country = tpcw_str_of("Atlantis");
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    expect_sql(f, "SELECT count(*) FROM customer", "4");
}

static void fill_cart(struct fixture *f)
{
    sqlite3 *db = th_open(f->path);
    th_exec(db, "INSERT OR IGNORE INTO shopping_cart VALUES (1, '2023-11-14');"
                "INSERT INTO shopping_cart_line VALUES (1, 1, 5), (1, 2, 5),"
                " (1, 3, 1);");
    sqlite3_close(db);
}

static struct tpcw_req buy_confirm(void)
{
    struct tpcw_req q = req(TPCW_BUY_CONFIRM);
    q.c_id = 1;
    q.sc_id = 1;
    q.cc_type = tpcw_str_of("VISA");
    q.cc_number = tpcw_str_of("1234567812345678");
    q.cc_name = tpcw_str_of("Olga Green");
    q.cc_expiry = tpcw_str_of("2025-01-01");
    q.shipping = tpcw_str_of("AIR");
    return q;
}

/* Buy Confirm: the order, its lines and payment, the stock rule (stock - qty
 * below 10 adds 21), the emptied cart. */
static void test_buy_confirm_and_stock(void **state)
{
    struct fixture *f = *state;
    fill_cart(f);
    struct tpcw_req q = buy_confirm();
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "order=1\n");
    /* 5 x 10 + 5 x 20.5 + 15 = 167.50, less 10 %: 150.75; tax 12.44;
     * shipping 3 + 11 = 14.00; total 177.19. */
    page_has(f, "sub_total=150.75 tax=12.44 ship=14.00 total=177.19\n");
    expect_sql(f, "SELECT o_c_id || o_status || o_total || o_bill_addr_id "
                    "|| o_ship_addr_id FROM orders WHERE o_id = 1",
                 "1PENDING177.1911");
    expect_sql(f, "SELECT group_concat(ol_id || ':' || ol_i_id || 'x' || "
                    "ol_qty, ' ') FROM order_line WHERE ol_o_id = 1",
                 "1:1x5 2:2x5 3:3x1");
    expect_sql(f, "SELECT cx_xact_amt || cx_type || cx_co_id FROM cc_xacts "
                    "WHERE cx_o_id = 1",
                 "177.19VISA1");
    /* Stock: 12 - 5 = 7 < 10, so 28; 30 - 5 = 25; 10 - 1 = 9 < 10, so 30. */
    expect_sql(f, "SELECT group_concat(i_stock, ' ') FROM item "
                    "WHERE i_id <= 3",
                 "28 25 30");
    expect_sql(f, "SELECT count(*) FROM shopping_cart_line", "0");
    /* The empty cart cannot be bought again; nothing changes. */
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
    expect_sql(f, "SELECT count(*) FROM orders", "1");
    /* Shipping elsewhere: a new address, its country on the payment. */
    fill_cart(f);
    q.has_address = 1;
    q.street1 = tpcw_str_of("x1");
    q.street2 = tpcw_str_of("x2");
    q.city = tpcw_str_of("c");
    q.state = tpcw_str_of("s");
    q.zip = tpcw_str_of("z");
    q.country = tpcw_str_of("Canada");
    run(f, &q);
    assert_int_equal(f->status, 0);
    expect_sql(f, "SELECT o_ship_addr_id || cx_co_id FROM orders "
                    "JOIN cc_xacts ON cx_o_id = o_id WHERE o_id = 2",
                 "42");
}

static void test_order_display(void **state)
{
    struct fixture *f = *state;
    struct tpcw_req q = req(TPCW_ORDER_DISPLAY);
    q.uname = tpcw_str_of("AL");
    q.passwd = tpcw_str_of("al");
    run(f, &q);
    assert_int_equal(f->status, 0);
    page_has(f, "customer=2|AL|Al|Lee");
    page_has(f, "order=none\n");
    /* Two orders on one date: the higher id is the newest. */
    sqlite3 *db = th_open(f->path);
    th_exec(db, "INSERT INTO orders (o_id, o_c_id, o_date, o_total,"
                " o_bill_addr_id, o_ship_addr_id) VALUES"
                " (5, 2, '2023-11-01 10:00:00', 1, 2, 3),"
                " (9, 2, '2023-11-01 10:00:00', 2, 2, 3),"
                " (7, 2, '2023-10-01 10:00:00', 3, 2, 3);"
                "INSERT INTO cc_xacts (cx_o_id, cx_type, cx_auth_id) VALUES"
                " (9, 'AMEX', 'AUTH');"
                "INSERT INTO order_line VALUES (1, 9, 6, 3, 0, 'hi');");
    sqlite3_close(db);
    run(f, &q);
    page_has(f, "order=9|2023-11-01 10:00:00|");
    page_has(f, "payment=AMEX|AUTH\nbill_to=2|r1|");
    page_has(f, "ship_to=3|q1|");
    page_has(f, "line=6|Lime|");
    q.passwd = tpcw_str_of("AL"); /* passwords are lower case */
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
}

/* Admin Confirm: new cost, images and date; related items from the recent
 * orders of the item's buyers, padded with the next ids. */
static void test_admin_confirm(void **state)
{
    struct fixture *f = *state;
    sqlite3 *db = th_open(f->path);
    th_exec(db, "INSERT INTO orders (o_id, o_c_id) VALUES (1, 1), (2, 1),"
                " (3, 2), (4, 2);"
                "INSERT INTO order_line VALUES (1, 1, 6, 1, 0, ''),"
                " (2, 1, 3, 4, 0, ''), (1, 2, 2, 9, 0, ''),"
                " (1, 3, 6, 1, 0, ''), (2, 3, 3, 2, 0, ''),"
                " (1, 4, 5, 1, 0, '');");
    sqlite3_close(db);
    struct tpcw_req q = req(TPCW_ADMIN_CONFIRM);
    q.i_id = 6;
    q.cost_cents = 1234;
    q.image = tpcw_str_of("img6/new.gif");
    q.thumbnail = tpcw_str_of("img6/newt.gif");
    run(f, &q);
    assert_int_equal(f->status, 0);
    expect_sql(f, "SELECT i_cost || i_image || i_thumbnail || i_pub_date "
                    "FROM item WHERE i_id = 6",
                 "12.34img6/new.gifimg6/newt.gif2023-11-14");
    /* Buyers of 6: customers 1 and 2. Their other items: 2 (9), 3 (6),
     * 5 (1); then padding 7, 8. */
    expect_sql(f, "SELECT i_related1 || ',' || i_related2 || ',' || "
                    "i_related3 || ',' || i_related4 || ',' || i_related5 "
                    "FROM item WHERE i_id = 6",
                 "2,3,5,7,8");
    q.i_id = 4242;
    run(f, &q);
    assert_int_equal(f->status, EVR_EAPP);
}

/* The request codec refuses what it cannot read. */
static void test_codec(void **state)
{
    (void)state;
    struct tpcw_req q = req(TPCW_SEARCH_RESULTS), back;
    q.search = tpcw_str_of("ABC");
    q.search_type = 2;
    struct evr_buf b;
    evr_buf_init(&b, SIZE_MAX);
    assert_int_equal(tpcw_req_encode(&q, &b), 0);
    assert_true(tpcw_req_decode(b.data, (uint32_t)b.len, &back));
    assert_int_equal(back.search.n, 3);
    for (size_t n = 0; n < b.len; n++) {
        assert_false(tpcw_req_decode(b.data, (uint32_t)n, &back));
    }
    b.data[9] = 3; /* search type out of range */
    assert_false(tpcw_req_decode(b.data, (uint32_t)b.len, &back));
    b.data[0] = TPCW_INTERACTIONS; /* unknown interaction */
    assert_false(tpcw_req_decode(b.data, (uint32_t)b.len, &back));
    evr_buf_free(&b);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_home_and_forms),   T(test_new_products_order),
        T(test_search_results),   T(test_product_detail),
        T(test_best_sellers_window), T(test_shopping_cart),
        T(test_buy_request),      T(test_buy_confirm_and_stock),
        T(test_order_display),    T(test_admin_confirm),
        cmocka_unit_test(test_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
