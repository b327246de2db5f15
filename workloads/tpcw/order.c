/*
 * The ordering interactions of TPC-W (clause 2): Shopping Cart, Customer
 * Registration, Buy Request, Buy Confirm, Order Inquiry, Order Display.
 *
 * New ids (carts, customers, addresses, orders) are max(id) + 1 in execution
 * order, read inside the request's transaction: sequential execution assigns
 * the same ids on every replica, and the conflict sets (classify.c) make
 * every two requests that could pick the same id conflict.
 */
#include <ctype.h>
#include <string.h>

#include "workloads/tpcw/internal.h"

/* Runs a one-row, one-integer query (0 if no row). */
static int query_int(sqlite3_stmt *st, int64_t *out)
{
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int next_id(struct evr_ctx *ctx, enum tpcw_stmt s, int64_t *id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, s, &rc);
    return st ? query_int(st, id) : rc;
}

/* ------------------------------------------------------------ the cart */

struct totals {
    double sub_total, tax, ship, total;
    int64_t items; /* sum of quantities */
};

/* Lists the cart's lines into the page and computes its totals with the
 * customer's discount (clause 2.4.3). */
static int cart_lines(struct evr_ctx *ctx, uint32_t sc_id, double discount,
                      struct totals *t, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_CART_LINES, &rc);
    if (st == NULL) {
        return rc;
    }
    memset(t, 0, sizeof *t);
    sqlite3_bind_int64(st, 1, sc_id);
    int erc = 0;
    while (erc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t qty = sqlite3_column_int64(st, 1);
        t->sub_total += sqlite3_column_double(st, 3) * (double)qty;
        t->items += qty;
        erc = tpcw_out(resp, "line=%lld|%lld|",
                       (long long)sqlite3_column_int64(st, 0), (long long)qty);
        erc = erc ? erc : tpcw_out_col(resp, st, 2);
        erc = erc ? erc : tpcw_out(resp, "|%.2f|%.2f|",
                                   sqlite3_column_double(st, 3),
                                   sqlite3_column_double(st, 4));
        erc = erc ? erc : tpcw_out_col(resp, st, 5);
        erc = erc ? erc : evr_buf_put_u8(resp, '\n');
    }
    sqlite3_reset(st);
    if (erc != 0) {
        return erc;
    }
    if (rc != SQLITE_DONE) {
        return rc;
    }
    t->sub_total = tpcw_cents(t->sub_total * (1.0 - discount));
    t->tax = tpcw_cents(t->sub_total * 0.0825);
    t->ship = tpcw_cents(3.00 + 1.00 * (double)t->items);
    t->total = tpcw_cents(t->sub_total + t->tax + t->ship);
    return tpcw_out(resp, "sub_total=%.2f tax=%.2f ship=%.2f total=%.2f\n",
                    t->sub_total, t->tax, t->ship, t->total);
}

/* The customer's discount and address (0 and 0 when unknown). */
static int customer_discount(struct evr_ctx *ctx, uint32_t c_id,
                             double *discount, int64_t *addr_id)
{
    *discount = 0;
    *addr_id = 0;
    if (c_id == 0) {
        return SQLITE_OK;
    }
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_CUST_DISCOUNT, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, c_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *discount = sqlite3_column_double(st, 0);
        *addr_id = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The cart to work on: a new one (sc_id 0), or an existing one. */
static int open_cart(struct evr_ctx *ctx, uint32_t sc_id, const char *now,
                     int64_t *out)
{
    int rc = SQLITE_OK;
    if (sc_id != 0) {
        sqlite3_stmt *st = tpcw_stmt(ctx, S_CART_EXISTS, &rc);
        if (st == NULL) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, sc_id);
        int64_t found = 0;
        rc = query_int(st, &found);
        *out = sc_id;
        return rc ? rc : found ? SQLITE_OK : EVR_EAPP; /* no such cart */
    }
    rc = next_id(ctx, S_CART_NEXT_ID, out);
    sqlite3_stmt *ins = rc ? NULL : tpcw_stmt(ctx, S_CART_INSERT, &rc);
    if (ins == NULL) {
        return rc;
    }
    sqlite3_bind_int64(ins, 1, *out);
    sqlite3_bind_text(ins, 2, now, -1, SQLITE_STATIC);
    return tpcw_exec(ins);
}

static int line_op(struct evr_ctx *ctx, enum tpcw_stmt s, int64_t sc_id,
                   int64_t i_id, int64_t qty)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, s, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sc_id);
    sqlite3_bind_int64(st, 2, i_id);
    if (s == S_LINE_SET) {
        sqlite3_bind_int64(st, 3, qty);
    }
    return tpcw_exec(st);
}

static int item_exists(struct evr_ctx *ctx, int64_t i_id, bool *yes)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_ITEM_EXISTS, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, i_id);
    int64_t v = 0;
    rc = query_int(st, &v);
    *yes = v != 0;
    return rc;
}

/* An emptied cart gets one line: the first related item of a random item
 * (the store's choice, from the request's RNG). */
static int refill(const struct tpcw_config *c, struct evr_ctx *ctx,
                  int64_t sc_id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *count = tpcw_stmt(ctx, S_LINE_COUNT, &rc);
    sqlite3_stmt *rel = tpcw_stmt(ctx, S_RELATED1, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(count, 1, sc_id);
    int64_t n = 0;
    int64_t i_id = 0;
    rc = query_int(count, &n);
    if (rc != SQLITE_OK || n > 0) {
        return rc;
    }
    sqlite3_bind_int64(rel, 1, (sqlite3_int64)(1 + evr_rng_below(&ctx->rng,
                                                                 c->items)));
    rc = query_int(rel, &i_id);
    return rc ? rc : line_op(ctx, S_LINE_ADD, sc_id, i_id, 1);
}

/* The item ids of the cart's first TPCW_CART_PAIRS_MAX lines, in page
 * order. */
static int line_ids(struct evr_ctx *ctx, int64_t sc_id, int64_t *ids,
                    int *n)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_LINE_IDS, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sc_id);
    sqlite3_bind_int(st, 2, TPCW_CART_PAIRS_MAX);
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Sets or removes the lines the pairs name by position on the page the EB
 * saw (ids, n, read before the add); reports how many it applied. */
static int refresh_lines(struct evr_ctx *ctx, const struct tpcw_req *q,
                         int64_t sc_id, const int64_t *ids, int n,
                         struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    int applied = 0;
    for (int i = 0; rc == SQLITE_OK && i < q->npairs; i++) {
        const struct tpcw_pair *p = &q->pairs[i];
        if (p->line > n) {
            continue; /* the page had no such line */
        }
        int64_t i_id = ids[p->line - 1];
        rc = p->qty == 0 ? line_op(ctx, S_LINE_DELETE, sc_id, i_id, 0)
                         : line_op(ctx, S_LINE_SET, sc_id, i_id, p->qty);
        applied++;
    }
    return rc ? rc
              : tpcw_out(resp, "refreshed=%d of %d\n", applied, q->npairs);
}

static int update_lines(struct evr_ctx *ctx, const struct tpcw_req *q,
                        int64_t sc_id, struct evr_buf *resp)
{
    int64_t ids[TPCW_CART_PAIRS_MAX];
    int n = 0;
    int rc = q->npairs > 0 ? line_ids(ctx, sc_id, ids, &n) : SQLITE_OK;
    if (rc == SQLITE_OK && q->add) {
        bool exists = false;
        rc = item_exists(ctx, q->i_id, &exists);
        if (rc == SQLITE_OK && !exists) {
            return EVR_EAPP; /* no such item */
        }
        rc = rc ? rc : line_op(ctx, S_LINE_ADD, sc_id, q->i_id, 1);
    }
    if (rc == SQLITE_OK && q->npairs > 0) {
        rc = refresh_lines(ctx, q, sc_id, ids, n, resp);
    }
    return rc;
}

int tpcw_shopping_cart(const struct tpcw_config *c, struct evr_ctx *ctx,
                       const struct tpcw_req *q, struct evr_buf *resp)
{
    char now[20];
    tpcw_timestamp(tpcw_now(ctx), now);
    int64_t sc_id = 0;
    int rc = open_cart(ctx, q->sc_id, now, &sc_id);
    rc = rc ? rc : tpcw_out(resp, "shopping_cart cart=%lld\n",
                            (long long)sc_id);
    rc = rc ? rc : update_lines(ctx, q, sc_id, resp);
    rc = rc ? rc : refill(c, ctx, sc_id);
    sqlite3_stmt *touch = rc ? NULL : tpcw_stmt(ctx, S_CART_TIME, &rc);
    if (touch != NULL) {
        sqlite3_bind_int64(touch, 1, sc_id);
        sqlite3_bind_text(touch, 2, now, -1, SQLITE_STATIC);
        rc = tpcw_exec(touch);
    }
    double discount = 0;
    int64_t addr_id = 0;
    struct totals t;
    rc = rc ? rc : customer_discount(ctx, q->c_id, &discount, &addr_id);
    rc = rc ? rc : cart_lines(ctx, (uint32_t)sc_id, discount, &t, resp);
    return rc ? rc : tpcw_promo(c, ctx, resp);
}

/* Customer Registration and Order Inquiry: a form, prefilled with the
 * customer's user name when known. */
int tpcw_customer_name(struct evr_ctx *ctx, const struct tpcw_req *q,
                       const char *page, struct evr_buf *resp)
{
    int rc = tpcw_out(resp, "%s\n", page);
    if (rc != 0 || q->c_id == 0) {
        return rc;
    }
    sqlite3_stmt *st = tpcw_stmt(ctx, S_CUST_UNAME, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, q->c_id);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        rc = tpcw_out(resp, "uname=");
        rc = rc ? rc : tpcw_out_col(resp, st, 0);
        rc = rc ? rc : evr_buf_put_u8(resp, '\n');
    } else if (step != SQLITE_DONE) {
        rc = step;
    }
    sqlite3_reset(st);
    return rc;
}

/* ------------------------------------------------------------ addresses */

struct address {
    struct tpcw_str street1, street2, city, state, zip, country;
};

/* An existing address with exactly these fields, or a new one. */
static int find_or_add_address(struct evr_ctx *ctx, const struct address *a,
                               int64_t *addr_id, int64_t *co_id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *co = tpcw_stmt(ctx, S_COUNTRY_ID, &rc);
    sqlite3_stmt *find = tpcw_stmt(ctx, S_ADDR_FIND, &rc);
    sqlite3_stmt *ins = tpcw_stmt(ctx, S_ADDR_INSERT, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    tpcw_bind_str(co, 1, a->country);
    rc = query_int(co, co_id);
    if (rc == SQLITE_OK && *co_id == 0) {
        return EVR_EAPP; /* no such country */
    }
    const struct tpcw_str *f[5] = {&a->street1, &a->street2, &a->city,
                                   &a->state, &a->zip};
    for (int i = 0; i < 5; i++) {
        tpcw_bind_str(find, i + 1, *f[i]);
        tpcw_bind_str(ins, i + 1, *f[i]);
    }
    sqlite3_bind_int64(find, 6, *co_id);
    rc = rc ? rc : query_int(find, addr_id);
    if (rc != SQLITE_OK || *addr_id != 0) {
        sqlite3_clear_bindings(ins);
        return rc;
    }
    rc = next_id(ctx, S_ADDR_NEXT_ID, addr_id);
    sqlite3_bind_int64(ins, 6, *co_id);
    sqlite3_bind_int64(ins, 7, *addr_id);
    return rc ? rc : tpcw_exec(ins);
}

static int show_address(struct evr_ctx *ctx, const char *label,
                        int64_t addr_id, int64_t *co_id, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_ADDR_SHOW, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, addr_id);
    int step = sqlite3_step(st);
    rc = tpcw_out(resp, "%s=%lld", label, (long long)addr_id);
    for (int i = 0; rc == 0 && step == SQLITE_ROW && i < 6; i++) {
        rc = evr_buf_put_u8(resp, '|');
        rc = rc ? rc : tpcw_out_col(resp, st, i);
    }
    if (co_id != NULL) {
        *co_id = step == SQLITE_ROW ? sqlite3_column_int64(st, 6) : 0;
    }
    sqlite3_reset(st);
    rc = rc ? rc : evr_buf_put_u8(resp, '\n');
    return rc ? rc : step == SQLITE_ROW || step == SQLITE_DONE ? SQLITE_OK
                                                               : step;
}

/* ------------------------------------------------------------ buy request */

struct customer {
    int64_t c_id;
    double discount;
    int64_t addr_id;
};

/* Runs S_LOGIN for q's user name: true when the row exists and its
 * c_passwd (column 1) equals q's password. *step gets the step's result; the
 * caller reads the row's other columns, then resets st. */
static bool password_ok(sqlite3_stmt *st, const struct tpcw_req *q,
                        int *step)
{
    tpcw_bind_str(st, 1, q->uname);
    *step = sqlite3_step(st);
    return *step == SQLITE_ROW &&
           (size_t)sqlite3_column_bytes(st, 1) == q->passwd.n &&
           memcmp(sqlite3_column_text(st, 1), q->passwd.p, q->passwd.n) == 0;
}

/* A returning customer: check the password, refresh the login. */
static int login(struct evr_ctx *ctx, const struct tpcw_req *q,
                 struct customer *cu, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_LOGIN, &rc);
    sqlite3_stmt *up = tpcw_stmt(ctx, S_LOGIN_UPDATE, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    int step = SQLITE_DONE;
    bool ok = password_ok(st, q, &step);
    if (ok) {
        cu->c_id = sqlite3_column_int64(st, 0);
        cu->discount = sqlite3_column_double(st, 4);
        cu->addr_id = sqlite3_column_int64(st, 5);
        rc = tpcw_out(resp, "customer=%lld|", (long long)cu->c_id);
        rc = rc ? rc : tpcw_out_col(resp, st, 2);
        rc = rc ? rc : evr_buf_put_u8(resp, ' ');
        rc = rc ? rc : tpcw_out_col(resp, st, 3);
        rc = rc ? rc : evr_buf_put_u8(resp, '\n');
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return step;
    }
    if (!ok) {
        return EVR_EAPP; /* unknown user or wrong password */
    }
    char login_ts[20], expiry[20];
    tpcw_timestamp(tpcw_now(ctx), login_ts);
    tpcw_timestamp(tpcw_now(ctx) + 2 * 3600, expiry);
    sqlite3_bind_int64(up, 1, cu->c_id);
    sqlite3_bind_text(up, 2, login_ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(up, 3, expiry, -1, SQLITE_TRANSIENT);
    return rc ? rc : tpcw_exec(up);
}

static void bind_new_customer(sqlite3_stmt *st, const struct tpcw_req *q,
                              const struct customer *cu, const char *uname,
                              const char *passwd, const char *const dates[3])
{
    sqlite3_bind_int64(st, 1, cu->c_id);
    sqlite3_bind_text(st, 2, uname, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, passwd, -1, SQLITE_TRANSIENT);
    tpcw_bind_str(st, 4, q->fname);
    tpcw_bind_str(st, 5, q->lname);
    sqlite3_bind_int64(st, 6, cu->addr_id);
    tpcw_bind_str(st, 7, q->phone);
    tpcw_bind_str(st, 8, q->email);
    sqlite3_bind_text(st, 9, dates[0], -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, dates[1], -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 11, dates[2], -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 12, cu->discount);
    tpcw_bind_str(st, 13, q->birthdate);
    tpcw_bind_str(st, 14, q->data);
}

/* A new customer (clause 2.6.3): address found or added, id max + 1, user
 * name DigSyl(c_id), discount drawn by the store. */
static int register_customer(struct evr_ctx *ctx, const struct tpcw_req *q,
                             struct customer *cu, struct evr_buf *resp)
{
    struct address a = {q->street1, q->street2, q->city,
                        q->state,   q->zip,     q->country};
    int64_t co_id = 0;
    int rc = find_or_add_address(ctx, &a, &cu->addr_id, &co_id);
    rc = rc ? rc : next_id(ctx, S_CUST_NEXT_ID, &cu->c_id);
    sqlite3_stmt *st = rc ? NULL : tpcw_stmt(ctx, S_CUST_INSERT, &rc);
    if (st == NULL) {
        return rc;
    }
    char uname[48], passwd[48], today[11], login_ts[20], expiry[20];
    tpcw_digsyl((uint64_t)cu->c_id, 0, uname);
    for (size_t i = 0; i <= strlen(uname); i++) {
        passwd[i] = (char)tolower((unsigned char)uname[i]);
    }
    tpcw_date(tpcw_now(ctx), today);
    tpcw_timestamp(tpcw_now(ctx), login_ts);
    tpcw_timestamp(tpcw_now(ctx) + 2 * 3600, expiry);
    cu->discount = (double)evr_rng_below(&ctx->rng, 51) / 100.0;
    const char *const dates[3] = {today, login_ts, expiry};
    bind_new_customer(st, q, cu, uname, passwd, dates);
    rc = tpcw_exec(st);
    return rc ? rc : tpcw_out(resp, "customer=%lld|%s|%s\n",
                              (long long)cu->c_id, uname, passwd);
}

int tpcw_buy_request(struct evr_ctx *ctx, const struct tpcw_req *q,
                     struct evr_buf *resp)
{
    struct customer cu = {0, 0, 0};
    int rc = tpcw_out(resp, "buy_request\n");
    if (rc == 0) {
        rc = q->returning ? login(ctx, q, &cu, resp)
                          : register_customer(ctx, q, &cu, resp);
    }
    rc = rc ? rc : show_address(ctx, "address", cu.addr_id, NULL, resp);
    struct totals t;
    return rc ? rc : cart_lines(ctx, q->sc_id, cu.discount, &t, resp);
}

/* ------------------------------------------------------------ buy confirm */

static int insert_order(struct evr_ctx *ctx, const struct tpcw_req *q,
                        const struct customer *cu, int64_t ship_addr,
                        const struct totals *t, int64_t *o_id)
{
    int rc = next_id(ctx, S_ORDER_NEXT_ID, o_id);
    sqlite3_stmt *st = rc ? NULL : tpcw_stmt(ctx, S_ORDER_INSERT, &rc);
    if (st == NULL) {
        return rc;
    }
    char now[20], ship[20];
    tpcw_timestamp(tpcw_now(ctx), now);
    tpcw_timestamp(tpcw_now(ctx) +
                       (int64_t)(1 + evr_rng_below(&ctx->rng, 7)) * TPCW_DAY,
                   ship);
    sqlite3_bind_int64(st, 1, *o_id);
    sqlite3_bind_int64(st, 2, cu->c_id);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 4, t->sub_total);
    sqlite3_bind_double(st, 5, t->tax);
    sqlite3_bind_double(st, 6, t->total);
    tpcw_bind_str(st, 7, q->shipping);
    sqlite3_bind_text(st, 8, ship, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, cu->addr_id);
    sqlite3_bind_int64(st, 10, ship_addr);
    return tpcw_exec(st);
}

/* Copies the cart's lines into the order and takes them out of stock. */
static int order_lines(struct evr_ctx *ctx, const struct tpcw_req *q,
                       const struct customer *cu, int64_t o_id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *lines = tpcw_stmt(ctx, S_CART_LINES, &rc);
    sqlite3_stmt *ins = tpcw_stmt(ctx, S_LINE_TO_ORDER, &rc);
    sqlite3_stmt *stock = tpcw_stmt(ctx, S_STOCK_UPDATE, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(lines, 1, q->sc_id);
    int ol_id = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(lines)) == SQLITE_ROW) {
        int64_t i_id = sqlite3_column_int64(lines, 0);
        int64_t qty = sqlite3_column_int64(lines, 1);
        char comments[101];
        tpcw_astring(&ctx->rng, 20, 100, comments);
        sqlite3_bind_int(ins, 1, ++ol_id);
        sqlite3_bind_int64(ins, 2, o_id);
        sqlite3_bind_int64(ins, 3, i_id);
        sqlite3_bind_int64(ins, 4, qty);
        sqlite3_bind_double(ins, 5, cu->discount);
        sqlite3_bind_text(ins, 6, comments, -1, SQLITE_TRANSIENT);
        rc = tpcw_exec(ins);
        sqlite3_bind_int64(stock, 1, i_id);
        sqlite3_bind_int64(stock, 2, qty);
        rc = rc ? rc : tpcw_exec(stock);
    }
    sqlite3_reset(lines);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int insert_payment(struct evr_ctx *ctx, const struct tpcw_req *q,
                          int64_t o_id, double total, int64_t co_id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_CC_INSERT, &rc);
    if (st == NULL) {
        return rc;
    }
    char auth[16], now[20];
    tpcw_astring(&ctx->rng, 15, 15, auth); /* the payment gateway's answer */
    tpcw_timestamp(tpcw_now(ctx), now);
    sqlite3_bind_int64(st, 1, o_id);
    tpcw_bind_str(st, 2, q->cc_type);
    tpcw_bind_str(st, 3, q->cc_number);
    tpcw_bind_str(st, 4, q->cc_name);
    tpcw_bind_str(st, 5, q->cc_expiry);
    sqlite3_bind_text(st, 6, auth, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(st, 7, total);
    sqlite3_bind_text(st, 8, now, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 9, co_id);
    return tpcw_exec(st);
}

static int clear_cart(struct evr_ctx *ctx, uint32_t sc_id)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_CART_CLEAR, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sc_id);
    return tpcw_exec(st);
}

int tpcw_buy_confirm(struct evr_ctx *ctx, const struct tpcw_req *q,
                     struct evr_buf *resp)
{
    struct customer cu = {q->c_id, 0, 0};
    int rc = customer_discount(ctx, q->c_id, &cu.discount, &cu.addr_id);
    if (rc == SQLITE_OK && cu.addr_id == 0) {
        return EVR_EAPP; /* no such customer */
    }
    struct totals t;
    rc = rc ? rc : tpcw_out(resp, "buy_confirm\n");
    rc = rc ? rc : cart_lines(ctx, q->sc_id, cu.discount, &t, resp);
    if (rc == SQLITE_OK && t.items == 0) {
        return EVR_EAPP; /* nothing to buy */
    }
    int64_t ship_addr = cu.addr_id;
    int64_t co_id = 0;
    if (rc == SQLITE_OK && q->has_address) {
        struct address a = {q->street1, q->street2, q->city,
                            q->state,   q->zip,     q->country};
        rc = find_or_add_address(ctx, &a, &ship_addr, &co_id);
    }
    rc = rc ? rc : show_address(ctx, "ship_to", ship_addr, &co_id, resp);
    int64_t o_id = 0;
    rc = rc ? rc : insert_order(ctx, q, &cu, ship_addr, &t, &o_id);
    rc = rc ? rc : order_lines(ctx, q, &cu, o_id);
    rc = rc ? rc : insert_payment(ctx, q, o_id, t.total, co_id);
    rc = rc ? rc : clear_cart(ctx, q->sc_id);
    return rc ? rc : tpcw_out(resp, "order=%lld\n", (long long)o_id);
}

/* ------------------------------------------------------------ order display */

static int show_lines(struct evr_ctx *ctx, int64_t o_id, struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_ORDER_LINES, &rc);
    if (st == NULL) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, o_id);
    int erc = 0;
    while (erc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        erc = tpcw_out(resp, "line=");
        for (int i = 0; erc == 0 && i < 7; i++) {
            erc = tpcw_out_col(resp, st, i);
            erc = erc ? erc : evr_buf_put_u8(resp, i < 6 ? '|' : '\n');
        }
    }
    sqlite3_reset(st);
    return erc ? erc : rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The newest order (latest o_date, then highest o_id) with its payment,
 * addresses and lines. */
static int show_last_order(struct evr_ctx *ctx, int64_t c_id,
                           struct evr_buf *resp)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = tpcw_stmt(ctx, S_LAST_ORDER, &rc);
    sqlite3_stmt *cc = tpcw_stmt(ctx, S_ORDER_CC, &rc);
    if (rc != SQLITE_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, c_id);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        sqlite3_reset(st);
        return step == SQLITE_DONE ? tpcw_out(resp, "order=none\n") : step;
    }
    int64_t o_id = sqlite3_column_int64(st, 0);
    int64_t bill = sqlite3_column_int64(st, 8);
    int64_t ship = sqlite3_column_int64(st, 9);
    rc = tpcw_out(resp, "order=");
    for (int i = 0; rc == 0 && i < 8; i++) {
        rc = tpcw_out_col(resp, st, i);
        rc = rc ? rc : evr_buf_put_u8(resp, i < 7 ? '|' : '\n');
    }
    sqlite3_reset(st);
    sqlite3_bind_int64(cc, 1, o_id);
    step = rc ? SQLITE_DONE : sqlite3_step(cc);
    if (step == SQLITE_ROW) {
        rc = tpcw_out(resp, "payment=");
        rc = rc ? rc : tpcw_out_col(resp, cc, 0);
        rc = rc ? rc : evr_buf_put_u8(resp, '|');
        rc = rc ? rc : tpcw_out_col(resp, cc, 1);
        rc = rc ? rc : evr_buf_put_u8(resp, '\n');
    } else if (step != SQLITE_DONE) {
        rc = step; /* an error, not a missing payment */
    }
    sqlite3_reset(cc);
    rc = rc ? rc : show_address(ctx, "bill_to", bill, NULL, resp);
    rc = rc ? rc : show_address(ctx, "ship_to", ship, NULL, resp);
    return rc ? rc : show_lines(ctx, o_id, resp);
}

int tpcw_order_display(struct evr_ctx *ctx, const struct tpcw_req *q,
                       struct evr_buf *resp)
{
    struct customer cu = {0, 0, 0};
    int rc = tpcw_out(resp, "order_display\n");
    sqlite3_stmt *st = rc ? NULL : tpcw_stmt(ctx, S_LOGIN, &rc);
    if (st == NULL) {
        return rc;
    }
    int step = SQLITE_DONE;
    bool ok = password_ok(st, q, &step);
    if (ok) {
        cu.c_id = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        return step;
    }
    if (!ok) {
        return EVR_EAPP; /* unknown user or wrong password */
    }
    sqlite3_stmt *who = tpcw_stmt(ctx, S_CUST_BUYER, &rc);
    if (who == NULL) {
        return rc;
    }
    sqlite3_bind_int64(who, 1, cu.c_id);
    if ((step = sqlite3_step(who)) == SQLITE_ROW) {
        rc = tpcw_out(resp, "customer=%lld", (long long)cu.c_id);
        for (int i = 0; rc == 0 && i < 5; i++) {
            rc = evr_buf_put_u8(resp, '|');
            rc = rc ? rc : tpcw_out_col(resp, who, i);
        }
        rc = rc ? rc : evr_buf_put_u8(resp, '\n');
    } else if (step != SQLITE_DONE) {
        rc = step;
    }
    sqlite3_reset(who);
    return rc ? rc : show_last_order(ctx, cu.c_id, resp);
}
