/*
 * TPC-W's tables (clause 1.4) with the spec's lower-case names, and the
 * secondary indexes its interactions need (docs/TPCW.md lists the query each
 * serves). Every table is INTEGER PRIMARY KEY or WITHOUT ROWID, so no row
 * has a hidden rowid and every scan order is a key order.
 */
#include "workloads/tpcw/tpcw.h"

static const char tables_sql[] =
    "CREATE TABLE country ("
    "  co_id INTEGER PRIMARY KEY, co_name TEXT NOT NULL,"
    "  co_exchange REAL NOT NULL, co_currency TEXT NOT NULL);"
    "CREATE TABLE author ("
    "  a_id INTEGER PRIMARY KEY, a_fname TEXT, a_lname TEXT, a_mname TEXT,"
    "  a_dob TEXT, a_bio TEXT);"
    "CREATE TABLE item ("
    "  i_id INTEGER PRIMARY KEY, i_title TEXT, i_a_id INTEGER,"
    "  i_pub_date TEXT, i_publisher TEXT, i_subject TEXT, i_desc TEXT,"
    "  i_related1 INTEGER, i_related2 INTEGER, i_related3 INTEGER,"
    "  i_related4 INTEGER, i_related5 INTEGER, i_thumbnail TEXT,"
    "  i_image TEXT, i_srp REAL, i_cost REAL, i_avail TEXT,"
    "  i_stock INTEGER, i_isbn TEXT, i_page INTEGER, i_backing TEXT,"
    "  i_dimensions TEXT);"
    "CREATE TABLE customer ("
    "  c_id INTEGER PRIMARY KEY, c_uname TEXT NOT NULL, c_passwd TEXT,"
    "  c_fname TEXT, c_lname TEXT, c_addr_id INTEGER, c_phone TEXT,"
    "  c_email TEXT, c_since TEXT, c_last_visit TEXT, c_login TEXT,"
    "  c_expiration TEXT, c_discount REAL, c_balance REAL, c_ytd_pmt REAL,"
    "  c_birthdate TEXT, c_data TEXT);"
    "CREATE TABLE address ("
    "  addr_id INTEGER PRIMARY KEY, addr_street1 TEXT, addr_street2 TEXT,"
    "  addr_city TEXT, addr_state TEXT, addr_zip TEXT, addr_co_id INTEGER);"
    "CREATE TABLE orders ("
    "  o_id INTEGER PRIMARY KEY, o_c_id INTEGER, o_date TEXT,"
    "  o_sub_total REAL, o_tax REAL, o_total REAL, o_ship_type TEXT,"
    "  o_ship_date TEXT, o_bill_addr_id INTEGER, o_ship_addr_id INTEGER,"
    "  o_status TEXT);"
    "CREATE TABLE order_line ("
    "  ol_id INTEGER NOT NULL, ol_o_id INTEGER NOT NULL, ol_i_id INTEGER,"
    "  ol_qty INTEGER, ol_discount REAL, ol_comments TEXT,"
    "  PRIMARY KEY (ol_o_id, ol_id)) WITHOUT ROWID;"
    "CREATE TABLE cc_xacts ("
    "  cx_o_id INTEGER PRIMARY KEY, cx_type TEXT, cx_num TEXT, cx_name TEXT,"
    "  cx_expire TEXT, cx_auth_id TEXT, cx_xact_amt REAL,"
    "  cx_xact_date TEXT, cx_co_id INTEGER);"
    "CREATE TABLE shopping_cart ("
    "  sc_id INTEGER PRIMARY KEY, sc_time TEXT);"
    "CREATE TABLE shopping_cart_line ("
    "  scl_sc_id INTEGER NOT NULL, scl_i_id INTEGER NOT NULL,"
    "  scl_qty INTEGER, PRIMARY KEY (scl_sc_id, scl_i_id)) WITHOUT ROWID;";

static const char indexes_sql[] =
    /* Search Results by author: a_lname prefix range. */
    "CREATE INDEX author_lname ON author (a_lname);"
    /* New Products: a subject's items newest first, title, id. */
    "CREATE INDEX item_subject_pub ON item "
    "  (i_subject, i_pub_date DESC, i_title, i_id);"
    /* Search Results by subject: a subject's items by title. */
    "CREATE INDEX item_subject_title ON item (i_subject, i_title, i_id);"
    /* Search Results by title: the substring test scans this index, not
     * the table (titles are a tenth of an item row). */
    "CREATE INDEX item_title ON item (i_title, i_id, i_a_id);"
    /* Search Results by author: an author's items. */
    "CREATE INDEX item_author ON item (i_a_id);"
    /* Buy Request / Order Display: a customer by user name. */
    "CREATE UNIQUE INDEX customer_uname ON customer (c_uname);"
    /* Buy Request / Buy Confirm: an existing address with the same fields. */
    "CREATE INDEX address_zip ON address "
    "  (addr_zip, addr_street1, addr_street2, addr_city, addr_state,"
    "   addr_co_id);"
    /* Buy Request / Buy Confirm: a country by name. */
    "CREATE UNIQUE INDEX country_name ON country (co_name);"
    /* Order Display: a customer's latest order; Admin Confirm: the
     * customers of recent orders. */
    "CREATE INDEX orders_customer ON orders (o_c_id, o_date, o_id);"
    /* Admin Confirm: the orders that contain an item. */
    "CREATE INDEX order_line_item ON order_line (ol_i_id);";

static int run(sqlite3 *db, const char *sql, const char *what,
               struct evr_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        evr_err_set(err, EVR_ESQL, "creating the TPC-W %s: %s", what,
                    msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return EVR_ESQL;
    }
    return 0;
}

int tpcw_create_tables(sqlite3 *db, struct evr_err *err)
{
    return run(db, tables_sql, "tables", err);
}

int tpcw_create_indexes(sqlite3 *db, struct evr_err *err)
{
    return run(db, indexes_sql, "indexes", err);
}
