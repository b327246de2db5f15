/*
 * Every SQL statement of the TPC-W interactions, and the helpers that run
 * them. Orderings always end in a unique column, so that a LIMIT never
 * chooses among ties by physical order (docs/TPCW.md, "Tie-breaks").
 */
#include <stdarg.h>
#include <stdio.h>

#include "workloads/tpcw/internal.h"

const char *const tpcw_sql[S_STMTS] = {
    [S_CUST_NAME] = "SELECT c_fname, c_lname FROM customer WHERE c_id = ?1",
    [S_CUST_UNAME] = "SELECT c_uname FROM customer WHERE c_id = ?1",
    [S_CUST_DISCOUNT] =
        "SELECT c_discount, c_addr_id FROM customer WHERE c_id = ?1",
    [S_PROMO_RELATED] =
        "SELECT i_related1, i_related2, i_related3, i_related4, i_related5 "
        "FROM item WHERE i_id = ?1",
    [S_PROMO_THUMBS] = "SELECT i_id, i_thumbnail FROM item "
                       "WHERE i_id IN (?1, ?2, ?3, ?4, ?5) ORDER BY i_id",
    [S_NEW_PRODUCTS] =
        "SELECT i_id, i_title, a_fname, a_lname FROM item "
        "JOIN author ON a_id = i_a_id WHERE i_subject = ?1 "
        "ORDER BY i_pub_date DESC, i_title, i_id LIMIT 50",
    /* The 3333 most recent orders: strictly above max(o_id) - 3333. */
    [S_BEST_SELLERS] =
        /* Aggregate first, join titles and authors only for the 50
         * winners: order_line_item seeks (ol_i_id, ol_o_id > ...) per
         * item of the subject, then 50 item and author lookups. */
        "SELECT i_id, i_title, a_fname, a_lname, s.sold "
        "FROM (SELECT ol_i_id, sum(ol_qty) AS sold FROM order_line "
        "WHERE ol_o_id > (SELECT max(o_id) FROM orders) - 3333 "
        "AND ol_i_id IN (SELECT i_id FROM item WHERE i_subject = ?1) "
        "GROUP BY ol_i_id ORDER BY sold DESC, ol_i_id LIMIT 50) AS s "
        "JOIN item ON i_id = s.ol_i_id JOIN author ON a_id = i_a_id "
        "ORDER BY s.sold DESC, i_id",
    [S_PRODUCT] =
        "SELECT i_id, i_title, a_fname, a_lname, i_pub_date, i_publisher, "
        "i_subject, i_desc, i_image, i_cost, i_srp, i_avail, i_isbn, "
        "i_page, i_backing, i_dimensions, i_thumbnail, i_related1, "
        "i_related2, i_related3, i_related4, i_related5, i_stock "
        "FROM item JOIN author ON a_id = i_a_id WHERE i_id = ?1",
    [S_SEARCH_AUTHOR] =
        "SELECT i_id, i_title, a_fname, a_lname FROM author "
        "JOIN item ON i_a_id = a_id WHERE a_lname >= ?1 AND a_lname < ?2 "
        "ORDER BY i_title, i_id LIMIT 50",
    [S_SEARCH_TITLE] =
        "SELECT i_id, i_title, a_fname, a_lname FROM item "
        "JOIN author ON a_id = i_a_id WHERE instr(i_title, ?1) > 0 "
        "ORDER BY i_title, i_id LIMIT 50",
    [S_SEARCH_SUBJECT] =
        "SELECT i_id, i_title, a_fname, a_lname FROM item "
        "JOIN author ON a_id = i_a_id WHERE i_subject = ?1 "
        "ORDER BY i_title, i_id LIMIT 50",
    [S_CART_EXISTS] = "SELECT 1 FROM shopping_cart WHERE sc_id = ?1",
    [S_CART_NEXT_ID] =
        "SELECT coalesce(max(sc_id), 0) + 1 FROM shopping_cart",
    [S_CART_INSERT] = "INSERT INTO shopping_cart (sc_id, sc_time) "
                      "VALUES (?1, ?2)",
    [S_CART_TIME] = "UPDATE shopping_cart SET sc_time = ?2 WHERE sc_id = ?1",
    [S_ITEM_EXISTS] = "SELECT 1 FROM item WHERE i_id = ?1",
    [S_LINE_ADD] =
        "INSERT INTO shopping_cart_line (scl_sc_id, scl_i_id, scl_qty) "
        "VALUES (?1, ?2, 1) ON CONFLICT (scl_sc_id, scl_i_id) "
        "DO UPDATE SET scl_qty = scl_qty + 1",
    [S_LINE_SET] = "UPDATE shopping_cart_line SET scl_qty = ?3 "
                   "WHERE scl_sc_id = ?1 AND scl_i_id = ?2",
    [S_LINE_DELETE] = "DELETE FROM shopping_cart_line "
                      "WHERE scl_sc_id = ?1 AND scl_i_id = ?2",
    [S_LINE_COUNT] =
        "SELECT count(*) FROM shopping_cart_line WHERE scl_sc_id = ?1",
    /* The cart page's lines, in page order (cart_lines lists them so). */
    [S_LINE_IDS] = "SELECT scl_i_id FROM shopping_cart_line "
                   "WHERE scl_sc_id = ?1 ORDER BY scl_i_id LIMIT ?2",
    [S_RELATED1] = "SELECT i_related1 FROM item WHERE i_id = ?1",
    [S_CART_LINES] =
        "SELECT scl_i_id, scl_qty, i_title, i_cost, i_srp, i_backing "
        "FROM shopping_cart_line JOIN item ON i_id = scl_i_id "
        "WHERE scl_sc_id = ?1 ORDER BY scl_i_id",
    [S_LOGIN] =
        "SELECT c_id, c_passwd, c_fname, c_lname, c_discount, c_addr_id "
        "FROM customer WHERE c_uname = ?1",
    [S_LOGIN_UPDATE] = "UPDATE customer SET c_login = ?2, c_expiration = ?3 "
                       "WHERE c_id = ?1",
    [S_COUNTRY_ID] = "SELECT co_id FROM country WHERE co_name = ?1",
    [S_ADDR_FIND] =
        "SELECT addr_id FROM address WHERE addr_zip = ?5 AND "
        "addr_street1 = ?1 AND addr_street2 = ?2 AND addr_city = ?3 AND "
        "addr_state = ?4 AND addr_co_id = ?6 ORDER BY addr_id LIMIT 1",
    [S_ADDR_NEXT_ID] = "SELECT coalesce(max(addr_id), 0) + 1 FROM address",
    [S_ADDR_INSERT] =
        "INSERT INTO address (addr_id, addr_street1, addr_street2, "
        "addr_city, addr_state, addr_zip, addr_co_id) "
        "VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6)",
    [S_ADDR_SHOW] =
        "SELECT addr_street1, addr_street2, addr_city, addr_state, addr_zip, "
        "co_name, co_id FROM address JOIN country ON co_id = addr_co_id "
        "WHERE addr_id = ?1",
    [S_CUST_NEXT_ID] = "SELECT coalesce(max(c_id), 0) + 1 FROM customer",
    [S_CUST_INSERT] =
        "INSERT INTO customer (c_id, c_uname, c_passwd, c_fname, c_lname, "
        "c_addr_id, c_phone, c_email, c_since, c_last_visit, c_login, "
        "c_expiration, c_discount, c_balance, c_ytd_pmt, c_birthdate, "
        "c_data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, "
        "?12, 0, 0, ?13, ?14)",
    [S_CUST_BUYER] =
        "SELECT c_uname, c_fname, c_lname, c_phone, c_email FROM customer "
        "WHERE c_id = ?1",
    [S_ORDER_NEXT_ID] = "SELECT coalesce(max(o_id), 0) + 1 FROM orders",
    [S_ORDER_INSERT] =
        "INSERT INTO orders (o_id, o_c_id, o_date, o_sub_total, o_tax, "
        "o_total, o_ship_type, o_ship_date, o_bill_addr_id, o_ship_addr_id, "
        "o_status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
        "'PENDING')",
    [S_LINE_TO_ORDER] =
        "INSERT INTO order_line (ol_id, ol_o_id, ol_i_id, ol_qty, "
        "ol_discount, ol_comments) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    /* The stock rule of Buy Confirm (clause 2.7.3). */
    [S_STOCK_UPDATE] =
        "UPDATE item SET i_stock = CASE WHEN i_stock - ?2 < 10 "
        "THEN i_stock - ?2 + 21 ELSE i_stock - ?2 END WHERE i_id = ?1",
    [S_CC_INSERT] =
        "INSERT INTO cc_xacts (cx_o_id, cx_type, cx_num, cx_name, "
        "cx_expire, cx_auth_id, cx_xact_amt, cx_xact_date, cx_co_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [S_CART_CLEAR] = "DELETE FROM shopping_cart_line WHERE scl_sc_id = ?1",
    [S_LAST_ORDER] =
        "SELECT o_id, o_date, o_sub_total, o_tax, o_total, o_ship_type, "
        "o_ship_date, o_status, o_bill_addr_id, o_ship_addr_id "
        "FROM orders WHERE o_c_id = ?1 ORDER BY o_date DESC, o_id DESC "
        "LIMIT 1",
    [S_ORDER_CC] =
        "SELECT cx_type, cx_auth_id FROM cc_xacts WHERE cx_o_id = ?1",
    [S_ORDER_LINES] =
        "SELECT ol_i_id, i_title, i_publisher, i_cost, ol_qty, ol_discount, "
        "ol_comments FROM order_line JOIN item ON i_id = ol_i_id "
        "WHERE ol_o_id = ?1 ORDER BY ol_id",
    [S_ADMIN_UPDATE] =
        "UPDATE item SET i_cost = ?2, i_image = ?3, i_thumbnail = ?4, "
        "i_pub_date = ?5 WHERE i_id = ?1",
    /* Best sellers among the customers who bought the item in the 10000
     * most recent orders (clause 2.16.3.3). */
    [S_ADMIN_RELATED] =
        "SELECT ol_i_id FROM orders JOIN order_line ON ol_o_id = o_id "
        "WHERE ol_i_id <> ?1 AND o_c_id IN ("
        "  SELECT o_c_id FROM order_line JOIN orders ON o_id = ol_o_id "
        "  WHERE ol_i_id = ?1 AND "
        "  o_id > (SELECT max(o_id) FROM orders) - 10000) "
        "GROUP BY ol_i_id ORDER BY sum(ol_qty) DESC, ol_i_id LIMIT 5",
    [S_ADMIN_SET_RELATED] =
        "UPDATE item SET i_related1 = ?2, i_related2 = ?3, i_related3 = ?4, "
        "i_related4 = ?5, i_related5 = ?6 WHERE i_id = ?1",
};

sqlite3_stmt *tpcw_stmt(struct evr_ctx *ctx, enum tpcw_stmt s, int *rc)
{
    sqlite3_stmt *st = evr_ctx_stmt(ctx, (unsigned)s, tpcw_sql[s]);
    if (st == NULL) {
        *rc = SQLITE_ERROR;
        return NULL;
    }
    /* Bindings outlive the request otherwise: SQLITE_STATIC ones point
     * into its bytes and its stack. */
    sqlite3_clear_bindings(st);
    return st;
}

int tpcw_bind_str(sqlite3_stmt *st, int i, struct tpcw_str s)
{
    return sqlite3_bind_text(st, i, s.n ? s.p : "", s.n, SQLITE_STATIC);
}

int tpcw_exec(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

int tpcw_out(struct evr_buf *b, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return EVR_EINVAL;
    }
    return evr_buf_put(b, line, (size_t)n < sizeof line ? (size_t)n
                                                         : sizeof line - 1);
}

int tpcw_out_col(struct evr_buf *b, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    return t ? evr_buf_put(b, t, (size_t)n) : 0;
}
