/* Helpers shared by the TPC-W interaction files. */
#ifndef EVR_WORKLOADS_TPCW_INTERNAL_H
#define EVR_WORKLOADS_TPCW_INTERNAL_H

#include "workloads/tpcw/tpcw.h"

/* Statement slots (evr_ctx_stmt); their SQL is in sql.c. */
enum tpcw_stmt {
    S_CUST_NAME,
    S_CUST_UNAME,
    S_CUST_DISCOUNT,
    S_PROMO_RELATED,
    S_PROMO_THUMBS,
    S_NEW_PRODUCTS,
    S_BEST_SELLERS,
    S_PRODUCT,
    S_SEARCH_AUTHOR,
    S_SEARCH_TITLE,
    S_SEARCH_SUBJECT,
    S_CART_EXISTS,
    S_CART_NEXT_ID,
    S_CART_INSERT,
    S_CART_TIME,
    S_ITEM_EXISTS,
    S_LINE_ADD,
    S_LINE_SET,
    S_LINE_DELETE,
    S_LINE_COUNT,
    S_LINE_IDS,
    S_RELATED1,
    S_CART_LINES,
    S_LOGIN,
    S_LOGIN_UPDATE,
    S_COUNTRY_ID,
    S_ADDR_FIND,
    S_ADDR_NEXT_ID,
    S_ADDR_INSERT,
    S_ADDR_SHOW,
    S_CUST_NEXT_ID,
    S_CUST_INSERT,
    S_CUST_BUYER,
    S_ORDER_NEXT_ID,
    S_ORDER_INSERT,
    S_LINE_TO_ORDER,
    S_STOCK_UPDATE,
    S_CC_INSERT,
    S_CART_CLEAR,
    S_LAST_ORDER,
    S_ORDER_CC,
    S_ORDER_LINES,
    S_ADMIN_UPDATE,
    S_ADMIN_RELATED,
    S_ADMIN_SET_RELATED,
    S_STMTS
};

extern const char *const tpcw_sql[S_STMTS];

/* The statement of a slot with its bindings cleared; NULL (with rc) on
 * error. Every user resets it before returning (a statement left stepping
 * would pin its snapshot), so it is also reset. */
sqlite3_stmt *tpcw_stmt(struct evr_ctx *ctx, enum tpcw_stmt s, int *rc);

/* Binds a request string (not NUL-terminated) as text, without copying:
 * the request must outlive the statement's use. */
int tpcw_bind_str(sqlite3_stmt *st, int i, struct tpcw_str s);

/* Steps a statement that returns no rows, then resets it. */
int tpcw_exec(sqlite3_stmt *st);

/* Appends printf-formatted text to a response. */
int tpcw_out(struct evr_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends a column of the current row as text ("" for NULL). */
int tpcw_out_col(struct evr_buf *b, sqlite3_stmt *st, int col);

/* The batch's time, in seconds since 1970. */
static inline int64_t tpcw_now(const struct evr_ctx *ctx)
{
    return ctx->timestamp_us / 1000000;
}

/* Promotional processing: five related items of a random item. */
int tpcw_promo(const struct tpcw_config *c, struct evr_ctx *ctx,
               struct evr_buf *resp);

/* Browsing interactions (browse.c) and ordering ones (order.c). */
int tpcw_home(const struct tpcw_config *c, struct evr_ctx *ctx,
              const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_new_products(const struct tpcw_config *c, struct evr_ctx *ctx,
                      const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_best_sellers(const struct tpcw_config *c, struct evr_ctx *ctx,
                      const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_product_detail(struct evr_ctx *ctx, const struct tpcw_req *q,
                        struct evr_buf *resp);
int tpcw_search_results(const struct tpcw_config *c, struct evr_ctx *ctx,
                        const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_admin_confirm(const struct tpcw_config *c, struct evr_ctx *ctx,
                       const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_shopping_cart(const struct tpcw_config *c, struct evr_ctx *ctx,
                       const struct tpcw_req *q, struct evr_buf *resp);
int tpcw_customer_name(struct evr_ctx *ctx, const struct tpcw_req *q,
                       const char *page, struct evr_buf *resp);
int tpcw_buy_request(struct evr_ctx *ctx, const struct tpcw_req *q,
                     struct evr_buf *resp);
int tpcw_buy_confirm(struct evr_ctx *ctx, const struct tpcw_req *q,
                     struct evr_buf *resp);
int tpcw_order_display(struct evr_ctx *ctx, const struct tpcw_req *q,
                       struct evr_buf *resp);

#endif
