/*
 * Conflict sets of the TPC-W interactions. docs/TPCW.md explains, for each,
 * why the set covers every row the interaction may read or write.
 *
 * Resources are the tables, with item's i_stock column apart (tpcw.h).
 * Keys are ids (customer c_id, item i_id, cart sc_id), used only where the
 * request names the row before it runs. Anything found through the database
 * (a cart's items, a customer's address, the newest orders) is covered by a
 * whole-table entry, and so is every insert whose id is max(id) + 1: it reads
 * the whole table to find the id.
 */
#include "workloads/tpcw/tpcw.h"

#define R(t) evr_cset_read_table(cs, TPCW_T_##t)
#define W(t) evr_cset_write_table(cs, TPCW_T_##t)
#define RK(t, k) evr_cset_read_key(cs, TPCW_T_##t, (k))
#define WK(t, k) evr_cset_write_key(cs, TPCW_T_##t, (k))

/* A customer named by id, or by user name (DigSyl(c_id) decodes back). */
static void read_customer(struct evr_cset *cs, uint64_t c_id)
{
    if (c_id != 0) {
        RK(CUSTOMER, c_id);
    } else {
        R(CUSTOMER);
    }
}

/* Shopping Cart: a new cart's id is max(sc_id) + 1. */
static void classify_cart(const struct tpcw_req *q, struct evr_cset *cs)
{
    if (q->sc_id == 0) {
        W(SHOPPING_CART);
        W(SHOPPING_CART_LINE);
    } else {
        WK(SHOPPING_CART, q->sc_id);
        WK(SHOPPING_CART_LINE, q->sc_id);
    }
    R(ITEM); /* titles and costs of its lines; the random related item */
    if (q->c_id != 0) {
        RK(CUSTOMER, q->c_id); /* the discount of the subtotal */
    }
}

static void classify_buy_request(const struct tpcw_req *q,
                                 struct evr_cset *cs)
{
    if (q->returning) {
        uint64_t c_id = tpcw_undigsyl(q->uname.p, q->uname.n);
        if (c_id != 0) {
            WK(CUSTOMER, c_id); /* c_login, c_expiration */
        } else {
            W(CUSTOMER);
        }
        R(ADDRESS);
    } else {
        W(CUSTOMER); /* new c_id = max + 1 */
        W(ADDRESS);  /* an existing match, or a new addr_id = max + 1 */
    }
    R(COUNTRY);
    RK(SHOPPING_CART, q->sc_id);
    RK(SHOPPING_CART_LINE, q->sc_id);
    R(ITEM);
}

static void classify_buy_confirm(const struct tpcw_req *q,
                                 struct evr_cset *cs)
{
    RK(CUSTOMER, q->c_id);
    RK(SHOPPING_CART, q->sc_id);
    WK(SHOPPING_CART_LINE, q->sc_id); /* the cart is emptied */
    W(ORDERS);                        /* o_id = max + 1 */
    W(ORDER_LINE);
    W(CC_XACTS);
    R(ITEM);       /* titles and costs of the cart's lines */
    W(ITEM_STOCK); /* of the cart's items, unknown before reading it */
    if (q->has_address) {
        W(ADDRESS);
    } else {
        R(ADDRESS);
    }
    R(COUNTRY);
}

static void classify_order_display(const struct tpcw_req *q,
                                   struct evr_cset *cs)
{
    read_customer(cs, tpcw_undigsyl(q->uname.p, q->uname.n));
    R(ORDERS); /* the customer's newest order */
    R(ORDER_LINE);
    R(CC_XACTS);
    R(ADDRESS);
    R(COUNTRY);
    R(ITEM);
}

void tpcw_classify(const struct tpcw_req *q, struct evr_cset *cs)
{
    evr_cset_clear(cs);
    switch (q->kind) {
    case TPCW_HOME:
        if (q->c_id != 0) {
            RK(CUSTOMER, q->c_id);
        }
        R(ITEM); /* promotional items */
        break;
    case TPCW_NEW_PRODUCTS:
    case TPCW_SEARCH_RESULTS:
        R(ITEM);
        R(AUTHOR);
        break;
    case TPCW_BEST_SELLERS:
        R(ORDERS);
        R(ORDER_LINE);
        R(ITEM);
        R(AUTHOR);
        break;
    case TPCW_PRODUCT_DETAIL:
    case TPCW_ADMIN_REQUEST:
        RK(ITEM, q->i_id);
        RK(ITEM_STOCK, q->i_id);
        R(AUTHOR);
        break;
    case TPCW_SEARCH_REQUEST:
        R(ITEM);
        break;
    case TPCW_SHOPPING_CART:
        classify_cart(q, cs);
        break;
    case TPCW_CUSTOMER_REGISTRATION:
    case TPCW_ORDER_INQUIRY:
        if (q->c_id != 0) {
            RK(CUSTOMER, q->c_id);
        }
        break;
    case TPCW_BUY_REQUEST:
        classify_buy_request(q, cs);
        break;
    case TPCW_BUY_CONFIRM:
        classify_buy_confirm(q, cs);
        break;
    case TPCW_ORDER_DISPLAY:
        classify_order_display(q, cs);
        break;
    case TPCW_ADMIN_CONFIRM:
        WK(ITEM, q->i_id);
        RK(ITEM_STOCK, q->i_id); /* the product page it ends with */
        R(AUTHOR);
        R(ORDERS); /* related items from recent orders */
        R(ORDER_LINE);
        break;
    default:
        break;
    }
}
