/*
 * The TPC-W application (TPC Benchmark W, version 1.8): an online bookstore's
 * database, its 14 web interactions as requests, and emulated browsers.
 *
 * Files:
 *   tpcw.h        this interface: configuration, interactions, requests
 *   schema.c      tables and indexes (docs/TPCW.md explains each choice)
 *   util.c        the spec's generators: a-string, n-string, DigSyl, NURand,
 *                 dates; the fixed value lists (countries, subjects, ...)
 *   request.c     the request codec
 *   populate.c    deterministic population (clause 4.7)
 *   interactions.c  the 14 interactions (clause 2)
 *   classify.c    their conflict sets
 *   gen.c         emulated browsers: sessions, the mixes' transition
 *                 matrices (clause 5.2), think time
 *   app.c         the evr_app_ops table and options
 *
 * Time: population's "current" moment is the `now` option (seconds since
 * 1970, UTC); interactions use the batch timestamp (ctx->timestamp_us).
 * Dates are stored as 'YYYY-MM-DD', timestamps as 'YYYY-MM-DD HH:MM:SS'.
 * Money is stored as REAL dollars rounded to cents.
 */
#ifndef EVR_WORKLOADS_TPCW_H
#define EVR_WORKLOADS_TPCW_H

#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/rng.h"
#include "workloads/app.h"

extern const struct evr_app_ops evr_tpcw_app;

/* ------------------------------------------------------------ scale */

#define TPCW_COUNTRIES 92
#define TPCW_SUBJECTS 24
#define TPCW_CUSTOMERS_PER_EB 2880
#define TPCW_EBS_MAX 100000
#define TPCW_ITEMS_MAX 10000000
#define TPCW_NOW_DEFAULT 1700000000 /* 2023-11-14 22:13:20 UTC */

enum tpcw_mix { TPCW_BROWSING, TPCW_SHOPPING, TPCW_ORDERING, TPCW_MIXES };

struct tpcw_config {
    uint64_t items;   /* 1000, 10000, 100000 or 1000000 */
    uint64_t ebs;     /* emulated browsers: customers = 2880 x ebs */
    uint64_t seed;    /* population and load */
    int64_t now;      /* population's "current" time, seconds since 1970 */
    enum tpcw_mix mix;
    double think_mean_s; /* negative exponential, capped at 10x the mean;
                            0: no think time (throughput runs) */
};

/* Cardinalities of clause 4.7. */
static inline uint64_t tpcw_customers(const struct tpcw_config *c)
{
    return TPCW_CUSTOMERS_PER_EB * c->ebs;
}
static inline uint64_t tpcw_addresses(const struct tpcw_config *c)
{
    return 2 * tpcw_customers(c);
}
static inline uint64_t tpcw_orders(const struct tpcw_config *c)
{
    return tpcw_customers(c) * 9 / 10;
}
static inline uint64_t tpcw_authors(const struct tpcw_config *c)
{
    return c->items / 4;
}

/* ------------------------------------------------------------ interactions */

enum tpcw_interaction {
    TPCW_HOME,
    TPCW_NEW_PRODUCTS,
    TPCW_BEST_SELLERS,
    TPCW_PRODUCT_DETAIL,
    TPCW_SEARCH_REQUEST,
    TPCW_SEARCH_RESULTS,
    TPCW_SHOPPING_CART,
    TPCW_CUSTOMER_REGISTRATION,
    TPCW_BUY_REQUEST,
    TPCW_BUY_CONFIRM,
    TPCW_ORDER_INQUIRY,
    TPCW_ORDER_DISPLAY,
    TPCW_ADMIN_REQUEST,
    TPCW_ADMIN_CONFIRM,
    TPCW_INTERACTIONS
};

/* "home", "new_products", ... as bench-exec's JSON names them. */
extern const char *const tpcw_interaction_names[TPCW_INTERACTIONS];

/* Table 5.1: percentage of each interaction in each mix. */
extern const double tpcw_mix_percent[TPCW_MIXES][TPCW_INTERACTIONS];
extern const char *const tpcw_mix_names[TPCW_MIXES]; /* "browsing", ... */

/* Conflict-set resource ids: the tables, except that item's i_stock column
 * is a resource of its own (TPCW_T_ITEM_STOCK, keyed by i_id) and
 * TPCW_T_ITEM covers item's other columns. Only the product page (Product
 * Detail, Admin Request, and Admin Confirm, which ends with it) reads
 * i_stock and only Buy Confirm writes it, so the stock updates
 * of a purchase need not order every page that lists items. */
enum tpcw_table {
    TPCW_T_COUNTRY,
    TPCW_T_AUTHOR,
    TPCW_T_ITEM,
    TPCW_T_CUSTOMER,
    TPCW_T_ADDRESS,
    TPCW_T_ORDERS,
    TPCW_T_ORDER_LINE,
    TPCW_T_CC_XACTS,
    TPCW_T_SHOPPING_CART,
    TPCW_T_SHOPPING_CART_LINE,
    TPCW_T_ITEM_STOCK,
};

/* ------------------------------------------------------------ requests
 *
 * Every request (little-endian):
 *
 *   u8 interaction, u32 c_id (0: unknown customer), u32 sc_id (0: no cart)
 *
 * then, by interaction (str = u16 length + bytes):
 *
 *   NEW_PRODUCTS, BEST_SELLERS      u8 subject (0..23)
 *   PRODUCT_DETAIL, ADMIN_REQUEST   u32 i_id
 *   SEARCH_RESULTS                  u8 type (0 author, 1 title, 2 subject),
 *                                   str search string
 *   SHOPPING_CART                   u8 add (0/1), u32 i_id to add,
 *                                   u8 n, n x (u16 line, u16 qty)
 *   BUY_REQUEST                     u8 returning (1: uname, passwd follow;
 *                                   0: fname, lname, street1, street2, city,
 *                                   state, zip, country, phone, email,
 *                                   birthdate, data follow), all str
 *   BUY_CONFIRM                     str cc_type, cc_number, cc_name,
 *                                   cc_expiry, shipping; u8 has_address, and
 *                                   if 1: str street1, street2, city, state,
 *                                   zip, country
 *   ORDER_DISPLAY                   str uname, passwd
 *   ADMIN_CONFIRM                   u32 i_id, u32 cost in cents, str image,
 *                                   str thumbnail
 *   HOME, SEARCH_REQUEST, CUSTOMER_REGISTRATION, ORDER_INQUIRY: nothing
 *
 * A SHOPPING_CART with sc_id 0 creates a cart (its id: max(sc_id) + 1).
 * Its pairs refresh the page the EB saw last: `line` is a 1-based position
 * among the cart's lines in page order (scl_i_id ascending), as the Java
 * kit's browser sends the quantities of the page's form in order. Positions
 * are resolved before the add; a position past the last line is ignored.
 */
#define TPCW_STR_MAX 512
#define TPCW_CART_PAIRS_MAX 100

struct tpcw_str {
    const char *p; /* not NUL-terminated; borrowed from the request */
    uint16_t n;
};

struct tpcw_pair {
    uint16_t line; /* 1..TPCW_CART_PAIRS_MAX */
    uint16_t qty;  /* 0 removes the line */
};

struct tpcw_req {
    enum tpcw_interaction kind;
    uint32_t c_id;
    uint32_t sc_id;
    uint8_t subject;
    uint32_t i_id;
    uint8_t search_type;
    struct tpcw_str search;
    uint8_t add;
    uint8_t npairs;
    struct tpcw_pair pairs[TPCW_CART_PAIRS_MAX];
    uint8_t returning;
    /* buy request: uname, passwd, or the new customer's fields */
    struct tpcw_str uname, passwd;
    struct tpcw_str fname, lname, street1, street2, city, state, zip, country,
        phone, email, birthdate, data;
    /* buy confirm */
    struct tpcw_str cc_type, cc_number, cc_name, cc_expiry, shipping;
    uint8_t has_address;
    /* admin confirm */
    uint32_t cost_cents;
    struct tpcw_str image, thumbnail;
};

int tpcw_req_encode(const struct tpcw_req *q, struct evr_buf *out);

/* Decodes borrowing from p; false if malformed (anything left over, a
 * length beyond TPCW_STR_MAX or the bytes, an unknown interaction). */
bool tpcw_req_decode(const uint8_t *p, uint32_t len, struct tpcw_req *q);

static inline struct tpcw_str tpcw_str_of(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    return (struct tpcw_str){s, (uint16_t)n};
}

/* ------------------------------------------------------------ generators
 * (util.c: clause 4.6's definitions, deterministic from the rng) */

/* Random alphanumeric string of length lo..hi into out (NUL-terminated;
 * out holds hi + 1). Returns the length. */
int tpcw_astring(struct evr_rng *r, int lo, int hi, char *out);
/* Random digit string of length lo..hi. */
int tpcw_nstring(struct evr_rng *r, int lo, int hi, char *out);

/* DigSyl(d, n): digits of d as syllables BA OG AL RI RE SE AT UL IN NG,
 * left-padded with BA to n syllables (n = 0: no padding; a d with more than
 * n digits keeps its low n). out holds 2 * max(n, 20) + 1. */
void tpcw_digsyl(uint64_t d, int n, char *out);

/* Inverse of DigSyl(d, 0) for customer user names; 0 if not one. */
uint64_t tpcw_undigsyl(const char *s, size_t n);

/* NURand(A, x, y) = ((random[0..A] | random[x..y]) % (y - x + 1)) + x */
uint64_t tpcw_nurand(struct evr_rng *r, uint64_t a, uint64_t x, uint64_t y);

/* The A of NURand for customer ids (by the number of customers) and for
 * the item-based search tokens (by the number of items). */
uint64_t tpcw_nurand_a_customer(uint64_t customers);
uint64_t tpcw_nurand_a_item(uint64_t items);

/* Formats seconds since 1970 (UTC) as 'YYYY-MM-DD' (11 bytes) or
 * 'YYYY-MM-DD HH:MM:SS' (20 bytes). */
void tpcw_date(int64_t t, char out[11]);
void tpcw_timestamp(int64_t t, char out[20]);
/* Seconds since 1970 of a civil date (UTC). */
int64_t tpcw_days_from_civil(int y, int m, int d);

#define TPCW_DAY 86400

struct tpcw_country {
    const char *name;
    double exchange;
    const char *currency;
};
extern const struct tpcw_country tpcw_countries[TPCW_COUNTRIES];
extern const char *const tpcw_subjects[TPCW_SUBJECTS];
extern const char *const tpcw_backings[5];
extern const char *const tpcw_ship_types[6];
extern const char *const tpcw_order_statuses[4];
extern const char *const tpcw_cc_types[5];

/* Money: rounds dollars to cents. */
double tpcw_cents(double dollars);

/* ------------------------------------------------------------ pieces */

/* Creates every table (schema.c), then, after population, every secondary
 * index; docs/TPCW.md says which query needs which. */
int tpcw_create_tables(sqlite3 *db, struct evr_err *err);
int tpcw_create_indexes(sqlite3 *db, struct evr_err *err);

/* Fills the empty tables of tpcw_create_tables (populate.c), in one
 * transaction; deterministic for a configuration. */
int tpcw_populate(const struct tpcw_config *c, sqlite3 *db,
                  struct evr_err *err);

/* The conflict set of a decoded request (classify.c). */
void tpcw_classify(const struct tpcw_req *q, struct evr_cset *cs);

/* Executes a decoded request (interactions.c). */
int tpcw_execute(const struct tpcw_config *c, struct evr_ctx *ctx,
                 const struct tpcw_req *q, struct evr_buf *resp);

/* Emulated browsers (gen.c). */
struct tpcw_gen;
int tpcw_gen_create(const struct tpcw_config *c, uint64_t seed,
                    struct tpcw_gen **out, struct evr_err *err);
void tpcw_gen_destroy(struct tpcw_gen *g);
/* Appends the next request of the next emulated browser to act. */
int tpcw_gen_next(struct tpcw_gen *g, struct evr_buf *out);

#endif
