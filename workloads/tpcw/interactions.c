/*
 * The browsing interactions of TPC-W (clause 2) and the dispatcher.
 *
 * Each runs inside the transaction the executor opened and writes a plain
 * text page: one "key=value" or "field|field|..." line per item, so that two
 * replicas' responses differ exactly when the pages would. A request the
 * store cannot serve (an unknown item, a wrong password) is refused with
 * EVR_EAPP: its response is that status, identical on every replica.
 */
#include <string.h>

#include "workloads/tpcw/internal.h"

/* Runs a list query (i_id, i_title, a_fname, a_lname) into the page. */
static int list_items(sqlite3_stmt *st, struct evr_buf *resp)
{
    int rc;
    int n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int erc = tpcw_out(resp, "%lld|", (long long)sqlite3_column_int64(st, 0));
        erc = erc ? erc : tpcw_out_col(resp, st, 1);
        erc = erc ? erc : evr_buf_put_u8(resp, '|');
        erc = erc ? erc : tpcw_out_col(resp, st, 2);
        erc = erc ? erc : evr_buf_put_u8(resp, ' ');
        erc = erc ? erc : tpcw_out_col(resp, st, 3);
        erc = erc ? erc : evr_buf_put_u8(resp, '\n');
        if (erc != 0) {
            sqlite3_reset(st);
            return erc;
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return rc;
    }
    return tpcw_out(resp, "items=%d\n", n);
}

int tpcw_promo(const struct tpcw_config *c, struct evr_ctx *ctx,
               struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *rel = tpcw_stmt(ctx, S_PROMO_RELATED, &rc);
    sqlite3_stmt *thumbs = tpcw_stmt(ctx, S_PROMO_THUMBS, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    /* The random item is chosen by the store (the request's RNG). */
    sqlite3_bind_int64(rel, 1, (sqlite3_int64)(1 + evr_rng_below(&ctx->rng,
                                                                  c->items)));
    rc = sqlite3_step(rel);
    for (int i = 0; i < 5; i++) {
        sqlite3_bind_int64(thumbs, i + 1,
                           rc == SQLITE_ROW ? sqlite3_column_int64(rel, i) : 0);
    }
    sqlite3_reset(rel);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return rc;
    }
    int erc = tpcw_out(resp, "promo=");
    while (erc == 0 && (rc = sqlite3_step(thumbs)) == SQLITE_ROW) {
        erc = tpcw_out(resp, "%lld:", (long long)sqlite3_column_int64(thumbs, 0));
        erc = erc ? erc : tpcw_out_col(resp, thumbs, 1);
        erc = erc ? erc : evr_buf_put_u8(resp, ' ');
    }
    sqlite3_reset(thumbs);
    if (erc != 0) {
        return erc;
    }
    return rc == SQLITE_DONE ? evr_buf_put_u8(resp, '\n') : rc;
}

int tpcw_home(const struct tpcw_config *c, struct evr_ctx *ctx,
              const struct tpcw_req *q, struct evr_buf *resp)
{
    int rc = tpcw_out(resp, "home\n");
    if (rc == 0 && q->c_id != 0) {
        sqlite3_stmt *st = tpcw_stmt(ctx, S_CUST_NAME, &rc);
        if (st == NULL) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, q->c_id);
        int step = sqlite3_step(st);
        if (step == SQLITE_ROW) {
            rc = tpcw_out(resp, "hello=");
            rc = rc ? rc : tpcw_out_col(resp, st, 0);
            rc = rc ? rc : evr_buf_put_u8(resp, ' ');
            rc = rc ? rc : tpcw_out_col(resp, st, 1);
            rc = rc ? rc : evr_buf_put_u8(resp, '\n');
        } else if (step != SQLITE_DONE) {
            rc = step;
        }
        sqlite3_reset(st);
    }
    return rc ? rc : tpcw_promo(c, ctx, resp);
}

static int subject_list(const struct tpcw_config *c, struct evr_ctx *ctx,
                        const struct tpcw_req *q, enum tpcw_stmt s,
                        const char *page, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, s, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_text(st, 1, tpcw_subjects[q->subject], -1, SQLITE_STATIC);
    rc = tpcw_out(resp, "%s subject=%s\n", page, tpcw_subjects[q->subject]);
    rc = rc ? rc : list_items(st, resp);
    return rc ? rc : tpcw_promo(c, ctx, resp);
}

int tpcw_new_products(const struct tpcw_config *c, struct evr_ctx *ctx,
                      const struct tpcw_req *q, struct evr_buf *resp)
{
    return subject_list(c, ctx, q, S_NEW_PRODUCTS, "new_products", resp);
}

int tpcw_best_sellers(const struct tpcw_config *c, struct evr_ctx *ctx,
                      const struct tpcw_req *q, struct evr_buf *resp)
{
    return subject_list(c, ctx, q, S_BEST_SELLERS, "best_sellers", resp);
}

/* Product Detail and Admin Request: every field of the item and author. */
int tpcw_product_detail(struct evr_ctx *ctx, const struct tpcw_req *q,
                        struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_PRODUCT, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->i_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = tpcw_out(resp, "item=");
        int cols = sqlite3_column_count(st);
        for (int i = 0; rc == 0 && i < cols; i++) {
            rc = tpcw_out_col(resp, st, i);
            rc = rc ? rc : evr_buf_put_u8(resp, i + 1 < cols ? '|' : '\n');
        }
    } else {
        rc = step == SQLITE_DONE ? EVR_EAPP : step; /* no such item */
    }
    sqlite3_reset(st);
    return rc;
}

/* Author tokens are prefixes: s <= a_lname < s + 0xFF, a byte UTF-8 text
 * never holds, so the range is exactly the names that start with s and an
 * index serves it. */
static int search_author(sqlite3_stmt *st, struct tpcw_str s)
{
    char hi[TPCW_STR_MAX + 1];
    memcpy(hi, s.p, s.n);
    hi[s.n] = (char)0xff;
    tpcw_bind_str(st, 1, s);
    return sqlite3_bind_text(st, 2, hi, s.n + 1, SQLITE_TRANSIENT);
}

int tpcw_search_results(const struct tpcw_config *c, struct evr_ctx *ctx,
                        const struct tpcw_req *q, struct evr_buf *resp)
{
    static const enum tpcw_stmt which[3] = {S_SEARCH_AUTHOR, S_SEARCH_TITLE,
                                            S_SEARCH_SUBJECT};
    static const char *const names[3] = {"author", "title", "subject"};
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, which[q->search_type], &rc);
    if (st == NULL) {
        return rc;
    }
    if (q->search_type == 0) {
        rc = search_author(st, q->search);
    } else {
        rc = tpcw_bind_str(st, 1, q->search);
    }
    rc = rc ? rc : tpcw_out(resp, "search_results %s=%.*s\n", names[q->search_type],
                  (int)q->search.n, q->search.p);
    rc = rc ? rc : list_items(st, resp);
    return rc ? rc : tpcw_promo(c, ctx, resp);
}

/* Admin Confirm's five related items: the recent best sellers among the
 * item's buyers, padded with the following item ids when there are fewer
 * than five (never the item itself, never twice). */
static int admin_related(const struct tpcw_config *c, struct evr_ctx *ctx,
                         uint32_t i_id, int64_t related[5])
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_ADMIN_RELATED, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, i_id);
    int n = 0;
    while (n < 5 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        related[n++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return rc;
    }
    for (uint64_t next = i_id, tries = 0; n < 5 && tries < c->items;
         tries++) {
        next = next % c->items + 1;
        bool taken = next == i_id;
        for (int k = 0; k < n; k++) {
            taken = taken || related[k] == (int64_t)next;
        }
        if (!taken) {
            related[n++] = (int64_t)next;
        }
    }
    return SQLITE_OK;
}

int tpcw_admin_confirm(const struct tpcw_config *c, struct evr_ctx *ctx,
                       const struct tpcw_req *q, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *up = tpcw_stmt(ctx, S_ADMIN_UPDATE, &rc);
    sqlite3_stmt *set = tpcw_stmt(ctx, S_ADMIN_SET_RELATED, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    char today[11];
    tpcw_date(tpcw_now(ctx), today);
    sqlite3_bind_int64(up, 1, q->i_id);
    sqlite3_bind_double(up, 2, q->cost_cents / 100.0);
    tpcw_bind_str(up, 3, q->image);
    tpcw_bind_str(up, 4, q->thumbnail);
    sqlite3_bind_text(up, 5, today, 10, SQLITE_STATIC);
    rc = tpcw_exec(up);
    if (rc == SQLITE_OK && sqlite3_changes(ctx->db) == 0) {
        return EVR_EAPP; /* no such item */
    }
    int64_t related[5];
    rc = rc ? rc : admin_related(c, ctx, q->i_id, related);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(set, 1, q->i_id);
    for (int k = 0; k < 5; k++) {
        sqlite3_bind_int64(set, k + 2, related[k]);
    }
    rc = tpcw_exec(set);
    rc = rc ? rc : tpcw_out(resp, "admin_confirm\n");
    return rc ? rc : tpcw_product_detail(ctx, q, resp);
}

int tpcw_execute(const struct tpcw_config *c, struct evr_ctx *ctx,
                 const struct tpcw_req *q, struct evr_buf *resp)
{
    switch (q->kind) {
    case TPCW_HOME:
        return tpcw_home(c, ctx, q, resp);
    case TPCW_NEW_PRODUCTS:
        return tpcw_new_products(c, ctx, q, resp);
    case TPCW_BEST_SELLERS:
        return tpcw_best_sellers(c, ctx, q, resp);
    case TPCW_PRODUCT_DETAIL:
    case TPCW_ADMIN_REQUEST:
        return tpcw_product_detail(ctx, q, resp);
    case TPCW_SEARCH_REQUEST: {
        int rc = tpcw_out(resp, "search_request\n");
        return rc ? rc : tpcw_promo(c, ctx, resp);
    }
    case TPCW_SEARCH_RESULTS:
        return tpcw_search_results(c, ctx, q, resp);
    case TPCW_SHOPPING_CART:
        return tpcw_shopping_cart(c, ctx, q, resp);
    case TPCW_CUSTOMER_REGISTRATION:
        return tpcw_customer_name(ctx, q, "customer_registration", resp);
    case TPCW_ORDER_INQUIRY:
        return tpcw_customer_name(ctx, q, "order_inquiry", resp);
    case TPCW_BUY_REQUEST:
        return tpcw_buy_request(ctx, q, resp);
    case TPCW_BUY_CONFIRM:
        return tpcw_buy_confirm(ctx, q, resp);
    case TPCW_ORDER_DISPLAY:
        return tpcw_order_display(ctx, q, resp);
    case TPCW_ADMIN_CONFIRM:
        return tpcw_admin_confirm(c, ctx, q, resp);
    default:
        return EVR_EINVAL;
    }
}
