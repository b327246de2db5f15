/*
 * TPC-W emulated browsers (clause 5): each EB walks the mix's transition
 * matrix from page to page, in user sessions, with negative-exponential
 * think times between its requests. The generator interleaves the EBs by
 * simulated time, so the stream is what the EBs would send together, one
 * request at a time, and is a function of (configuration, seed) only.
 *
 * The EB cannot read the SUT's responses, so what a real browser would learn
 * from a page it predicts instead: the id of a cart it creates and of a
 * customer it registers (the database hands them out in request order), and
 * what its cart page shows (how many lines, and the items it put there
 * itself; a refresh names lines by position on that page, as the Java
 * kit's browser does). The id predictions hold while this
 * generator is the only one sending to the database and its requests run
 * in the order it makes them.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/tpcw/tpcw.h"

/* ------------------------------------------------------------ matrices
 *
 * Clause 5.2.2's transition matrices as cumulative thresholds out of 9999:
 * draw r in 1..9999 and take the first hop whose threshold is >= r. The
 * spec's own tables could not be read; the values and the column order come
 * from the two public kits, which agree except where noted: the UW-Madison
 * Java kit [J] (rbe/EBTPCW1Factory.java, EBTPCW2Factory, EBTPCW3Factory)
 * and OSDL DBT-1 [D] (dbdriver/eu.c). Where they differ we keep the value
 * whose stationary distribution reproduces Table 5.1 (tpcw_mix_percent).
 * Every row ends at 9999, so the search always stops inside its row.
 */
enum {
    ADMC = TPCW_ADMIN_CONFIRM,
    ADMR = TPCW_ADMIN_REQUEST,
    BESS = TPCW_BEST_SELLERS,
    BUYC = TPCW_BUY_CONFIRM,
    BUYR = TPCW_BUY_REQUEST,
    CREG = TPCW_CUSTOMER_REGISTRATION,
    HOME = TPCW_HOME,
    NEWP = TPCW_NEW_PRODUCTS,
    ORDD = TPCW_ORDER_DISPLAY,
    ORDI = TPCW_ORDER_INQUIRY,
    PROD = TPCW_PRODUCT_DETAIL,
    SREQ = TPCW_SEARCH_REQUEST,
    SRES = TPCW_SEARCH_RESULTS,
    SHOP = TPCW_SHOPPING_CART,
};

#define HOPS_MAX 5
#define THRESHOLD_MAX 9999

struct hop {
    uint8_t to;    /* enum tpcw_interaction */
    uint16_t upto; /* cumulative threshold; 0 ends a short row */
};

/* Browsing: [J] = [D] except ORDD -> HOME, 802 in [J] and 69 in [D]. The
 * stationary distribution with 802 matches Table 5.1 to 0.005 percentage
 * points, with 69 only to 0.014, so 802. */
static const struct hop browsing[TPCW_INTERACTIONS][HOPS_MAX] = {
    [ADMC] = {{HOME, 9877}, {SREQ, 9999}},
    [ADMR] = {{ADMC, 8999}, {HOME, 9999}},
    [BESS] = {{HOME, 4607}, {PROD, 5259}, {SREQ, 9942}, {SHOP, 9999}},
    [BUYC] = {{HOME, 342}, {SREQ, 9999}},
    [BUYR] = {{BUYC, 9199}, {HOME, 9595}, {SHOP, 9999}},
    [CREG] = {{BUYR, 9145}, {HOME, 9619}, {SREQ, 9999}},
    [HOME] = {{BESS, 3792}, {NEWP, 7585}, {ORDI, 7688}, {SREQ, 9559},
              {SHOP, 9999}},
    [NEWP] = {{HOME, 299}, {PROD, 9867}, {SREQ, 9941}, {SHOP, 9999}},
    [ORDD] = {{HOME, 802}, {SREQ, 9999}},
    [ORDI] = {{HOME, 523}, {ORDD, 8856}, {SREQ, 9999}},
    [PROD] = {{ADMR, 47}, {HOME, 8346}, {PROD, 9749}, {SREQ, 9890},
              {SHOP, 9999}},
    [SREQ] = {{HOME, 788}, {SRES, 9955}, {SHOP, 9999}},
    [SRES] = {{HOME, 3674}, {PROD, 9868}, {SREQ, 9942}, {SHOP, 9999}},
    [SHOP] = {{CREG, 4099}, {HOME, 8883}, {SHOP, 9999}},
};

/* Shopping: [D]'s values. [J] has BUYR -> HOME 6546 (no visible effect) and
 * SHOP -> HOME 9992, a typo: it drifts Shopping Cart to 11.15 % while 9552
 * reproduces Table 5.1. */
static const struct hop shopping[TPCW_INTERACTIONS][HOPS_MAX] = {
    [ADMC] = {{HOME, 9952}, {SREQ, 9999}},
    [ADMR] = {{ADMC, 8999}, {HOME, 9999}},
    [BESS] = {{HOME, 167}, {PROD, 472}, {SREQ, 9927}, {SHOP, 9999}},
    [BUYC] = {{HOME, 84}, {SREQ, 9999}},
    [BUYR] = {{BUYC, 4614}, {HOME, 6545}, {SHOP, 9999}},
    [CREG] = {{BUYR, 8666}, {HOME, 8760}, {SREQ, 9999}},
    [HOME] = {{BESS, 3124}, {NEWP, 6249}, {ORDI, 6718}, {SREQ, 7026},
              {SHOP, 9999}},
    [NEWP] = {{HOME, 156}, {PROD, 9735}, {SREQ, 9784}, {SHOP, 9999}},
    [ORDD] = {{HOME, 69}, {SREQ, 9999}},
    [ORDI] = {{HOME, 72}, {ORDD, 8872}, {SREQ, 9999}},
    [PROD] = {{ADMR, 58}, {HOME, 832}, {PROD, 1288}, {SREQ, 8603},
              {SHOP, 9999}},
    [SREQ] = {{HOME, 635}, {SRES, 9135}, {SHOP, 9999}},
    [SRES] = {{HOME, 2657}, {PROD, 9294}, {SREQ, 9304}, {SHOP, 9999}},
    [SHOP] = {{CREG, 2585}, {HOME, 9552}, {SHOP, 9999}},
};

/* Ordering: [J]'s values. [D] has BUYR -> HOME 9452 (no visible effect) and
 * PROD -> SREQ 8341, a typo: it gives Buy Confirm 8.88 % instead of 10.18 %,
 * while 6341 reproduces Table 5.1. */
static const struct hop ordering[TPCW_INTERACTIONS][HOPS_MAX] = {
    [ADMC] = {{HOME, 8348}, {SREQ, 9999}},
    [ADMR] = {{ADMC, 8999}, {HOME, 9999}},
    [BESS] = {{HOME, 1}, {PROD, 333}, {SREQ, 9998}, {SHOP, 9999}},
    [BUYC] = {{HOME, 2}, {SREQ, 9999}},
    [BUYR] = {{BUYC, 7999}, {HOME, 9453}, {SHOP, 9999}},
    [CREG] = {{BUYR, 9899}, {HOME, 9901}, {SREQ, 9999}},
    [HOME] = {{BESS, 499}, {NEWP, 999}, {ORDI, 1269}, {SREQ, 1295},
              {SHOP, 9999}},
    [NEWP] = {{HOME, 504}, {PROD, 9942}, {SREQ, 9976}, {SHOP, 9999}},
    [ORDD] = {{HOME, 9939}, {SREQ, 9999}},
    [ORDI] = {{HOME, 1168}, {ORDD, 9968}, {SREQ, 9999}},
    [PROD] = {{ADMR, 99}, {HOME, 3750}, {PROD, 5621}, {SREQ, 6341},
              {SHOP, 9999}},
    [SREQ] = {{HOME, 815}, {SRES, 9815}, {SHOP, 9999}},
    [SRES] = {{HOME, 486}, {PROD, 7817}, {SREQ, 9998}, {SHOP, 9999}},
    [SHOP] = {{CREG, 9499}, {HOME, 9918}, {SHOP, 9999}},
};

static const struct hop (*const matrices[TPCW_MIXES])[HOPS_MAX] = {
    browsing, shopping, ordering};

/* ------------------------------------------------------------ state */

#define US_PER_S 1000000.0
/* Clause 6.2: user session minimum duration, mean 15 min, capped at 4x. */
#define USMD_MEAN_S 900.0
#define USMD_MAX_S 3600.0
/* Think time is capped at 10x its mean (clause 5.3.1.1). */
#define THINK_CAP_FACTOR 10.0
/* Without think time the EBs still need an order and session clocks. */
#define NOMINAL_STEP_US 1000000
#define THINK_MEAN_MAX_S 1e6 /* keeps 10x the mean in int64 microseconds */
#define KNOWN_CUSTOMER_P 0.8
#define ADDRESS_GIVEN_P 0.05
#define NAME_MAX_LEN 15
/* Before an EB's first request: its first page is Home, no matrix draw. */
#define PAGE_NONE TPCW_INTERACTIONS

/* What an EB's cart page shows, as far as the EB can predict it: `lines`
 * lines, of which it knows the items ids[0..n-1] (ascending, so position i
 * on the page is ids[i] when n == lines). The other lines are items the
 * store added to an emptied cart. Invariant: n <= lines <=
 * TPCW_CART_PAIRS_MAX. ids grows on demand (most EBs never hold more than a
 * few). */
struct known_cart {
    uint32_t *ids;
    uint8_t n;
    uint8_t cap;
    uint8_t lines;
};

struct eb {
    struct evr_rng rng;
    int64_t clock_us;       /* simulated time of its next request */
    int64_t session_end_us; /* start + USMD: past it, Home starts anew */
    uint32_t c_id;          /* 0: unknown customer */
    uint32_t sc_id;         /* 0: no cart yet */
    uint32_t last_item;     /* of the last Product Detail (0: none) */
    struct known_cart cart;
    uint8_t page;           /* the page it is on; PAGE_NONE at first */
    bool named;             /* fname/lname: the customer it registered */
    char fname[NAME_MAX_LEN + 1];
    char lname[NAME_MAX_LEN + 1];
};

/* Strings of the request being built: tpcw_req borrows them until
 * tpcw_req_encode has copied them. */
struct scratch {
    char fname[NAME_MAX_LEN + 1], lname[NAME_MAX_LEN + 1];
    char street1[41], street2[41], city[31], state[21], zip[11];
    char phone[17], email[48], birthdate[11], data[501];
    char cc_number[17], cc_name[2 * NAME_MAX_LEN + 2], cc_expiry[11];
    char uname[41], passwd[41];
    char search[41];
    char image[64], thumbnail[64];
};

struct tpcw_gen {
    struct tpcw_config c;
    const struct hop (*matrix)[HOPS_MAX];
    uint64_t customers;
    uint64_t a_customer;
    uint64_t a_item;
    struct eb *ebs;
    uint32_t *heap; /* EB indices, a min-heap on (clock_us, index) */
    uint32_t neb;
    uint32_t carts;         /* carts created so far: the last id used */
    uint32_t new_customers; /* customers registered so far */
    struct scratch s;
    /* The last request, for tests (tpcw_gen_probe). */
    uint32_t last_eb;
    bool last_session_start;
    int64_t last_think_us;
};

/* ------------------------------------------------------------ heap */

static bool eb_before(const struct tpcw_gen *g, uint32_t a, uint32_t b)
{
    int64_t ca = g->ebs[a].clock_us;
    int64_t cb = g->ebs[b].clock_us;
    return ca < cb || (ca == cb && a < b);
}

/* Only the top's clock ever grows, so sifting it down restores the heap. */
static void heap_sift_down(struct tpcw_gen *g)
{
    uint32_t *h = g->heap;
    uint32_t n = g->neb;
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1;
        if (l >= n) {
            return;
        }
        uint32_t m = l;
        if (l + 1 < n && eb_before(g, h[l + 1], h[l])) {
            m = l + 1;
        }
        if (!eb_before(g, h[m], h[i])) {
            return;
        }
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* ------------------------------------------------------------ random */

/* -ln(r) * mean with r in (0, 1], capped: the spec's truncated negative
 * exponential, in microseconds. */
static int64_t exp_us(struct evr_rng *r, double mean_s, double cap_s)
{
    double u = 1.0 - evr_rng_double(r);
    double t = -log(u) * mean_s;
    if (t > cap_s) {
        t = cap_s;
    }
    return llround(t * US_PER_S);
}

static int64_t think_us(const struct tpcw_gen *g, struct evr_rng *r)
{
    double mean = g->c.think_mean_s;
    if (mean == 0) {
        return NOMINAL_STEP_US;
    }
    return exp_us(r, mean, THINK_CAP_FACTOR * mean);
}

static uint32_t random_item(const struct tpcw_gen *g, struct evr_rng *r)
{
    return (uint32_t)(1 + evr_rng_below(r, g->c.items));
}

static uint32_t nurand_customer(const struct tpcw_gen *g, struct evr_rng *r)
{
    return (uint32_t)tpcw_nurand(r, g->a_customer, 1, g->customers);
}

/* A date between 1880-01-01 and the population's now (customer birthdates
 * are drawn from the same range in population). */
static void random_birthdate(const struct tpcw_gen *g, struct evr_rng *r,
                             char out[11])
{
    int64_t lo = tpcw_days_from_civil(1880, 1, 1);
    int64_t hi = g->c.now > lo ? g->c.now : lo;
    tpcw_date(evr_rng_range(r, lo, hi), out);
}

/* ------------------------------------------------------------ sessions */

static void start_session(struct tpcw_gen *g, struct eb *b)
{
    b->c_id = evr_rng_double(&b->rng) < KNOWN_CUSTOMER_P
                  ? nurand_customer(g, &b->rng)
                  : 0;
    b->sc_id = 0;
    b->cart.n = 0;
    b->cart.lines = 0;
    b->last_item = 0;
    b->named = false;
    b->session_end_us =
        b->clock_us + exp_us(&b->rng, USMD_MEAN_S, USMD_MAX_S);
}

static enum tpcw_interaction matrix_step(const struct tpcw_gen *g,
                                         struct eb *b)
{
    uint16_t r = (uint16_t)(1 + evr_rng_below(&b->rng, THRESHOLD_MAX));
    const struct hop *h = g->matrix[b->page];
    while (h->upto < r) {
        h++;
    }
    return (enum tpcw_interaction)h->to;
}

/* The EB's next page; a new session starts at the first request and at a
 * move into Home once the session's minimum duration has passed. */
static enum tpcw_interaction next_page(struct tpcw_gen *g, struct eb *b,
                                       bool *session_start)
{
    enum tpcw_interaction to =
        b->page == PAGE_NONE ? TPCW_HOME : matrix_step(g, b);
    *session_start = b->page == PAGE_NONE ||
                     (to == TPCW_HOME && b->clock_us >= b->session_end_us);
    if (*session_start) {
        start_session(g, b);
    }
    return to;
}

/* ------------------------------------------------------------ inputs */

static void pick_search(struct tpcw_gen *g, struct eb *b, struct tpcw_req *q)
{
    struct evr_rng *r = &b->rng;
    q->search_type = (uint8_t)evr_rng_below(r, 3);
    if (q->search_type == 2) {
        q->search = tpcw_str_of(tpcw_subjects[evr_rng_below(r, TPCW_SUBJECTS)]);
        return;
    }
    /* Author last names carry tokens of 1..items/10, titles of
     * 1..items/5 (population's mk_author and mk_title). */
    uint64_t hi = q->search_type == 0 ? g->c.items / 10 : g->c.items / 5;
    tpcw_digsyl(tpcw_nurand(r, g->a_item, 1, hi), 7, g->s.search);
    q->search = tpcw_str_of(g->s.search);
}

/* A refresh sends one pair per chosen line of the page: a single line
 * gets a new quantity 1..10; with more, a random non-empty subset of the
 * lines gets 0..10 each (clause 2.4.5.1 as both kits read it). */
static void pick_refresh(struct eb *b, struct tpcw_req *q)
{
    struct evr_rng *r = &b->rng;
    uint32_t n = b->cart.lines;
    if (n == 1) {
        q->pairs[0] = (struct tpcw_pair){1, (uint16_t)evr_rng_range(r, 1, 10)};
        q->npairs = 1;
        return;
    }
    if (n == 0) {
        return;
    }
    /* Selection sampling: a uniform k-subset, kept in cart order. */
    uint32_t k = (uint32_t)evr_rng_range(r, 1, n);
    uint32_t chosen = 0;
    for (uint32_t i = 0; i < n && chosen < k; i++) {
        if (evr_rng_below(r, n - i) < k - chosen) {
            q->pairs[chosen++] = (struct tpcw_pair){
                (uint16_t)(i + 1), (uint16_t)evr_rng_range(r, 0, 10)};
        }
    }
    q->npairs = (uint8_t)chosen;
}

static void pick_cart(struct tpcw_gen *g, struct eb *b,
                      enum tpcw_interaction from, struct tpcw_req *q)
{
    if (from == TPCW_PRODUCT_DETAIL) {
        q->add = 1;
        q->i_id = b->last_item ? b->last_item : random_item(g, &b->rng);
    } else if (from == TPCW_SHOPPING_CART) {
        pick_refresh(b, q);
    }
}

static void pick_name(struct evr_rng *r, struct scratch *s)
{
    tpcw_astring(r, 8, NAME_MAX_LEN, s->fname);
    tpcw_astring(r, 8, NAME_MAX_LEN, s->lname);
}

/* Street, city, state, zip and country, as in population (clause 4.7). */
static void pick_address(struct evr_rng *r, struct scratch *s,
                         struct tpcw_req *q)
{
    tpcw_astring(r, 15, 40, s->street1);
    tpcw_astring(r, 15, 40, s->street2);
    tpcw_astring(r, 4, 30, s->city);
    tpcw_astring(r, 2, 20, s->state);
    tpcw_astring(r, 5, 10, s->zip);
    q->street1 = tpcw_str_of(s->street1);
    q->street2 = tpcw_str_of(s->street2);
    q->city = tpcw_str_of(s->city);
    q->state = tpcw_str_of(s->state);
    q->zip = tpcw_str_of(s->zip);
    q->country =
        tpcw_str_of(tpcw_countries[evr_rng_below(r, TPCW_COUNTRIES)].name);
}

static void pick_new_customer(struct tpcw_gen *g, struct evr_rng *r,
                              struct tpcw_req *q)
{
    struct scratch *s = &g->s;
    pick_name(r, s);
    q->fname = tpcw_str_of(s->fname);
    q->lname = tpcw_str_of(s->lname);
    pick_address(r, s, q);
    tpcw_nstring(r, 9, 16, s->phone);
    q->phone = tpcw_str_of(s->phone);
    char user[16], domain[10];
    tpcw_astring(r, 4, 15, user);
    tpcw_astring(r, 2, 9, domain);
    snprintf(s->email, sizeof s->email, "%s@%s.com", user, domain);
    q->email = tpcw_str_of(s->email);
    random_birthdate(g, r, s->birthdate);
    q->birthdate = tpcw_str_of(s->birthdate);
    tpcw_astring(r, 100, 500, s->data);
    q->data = tpcw_str_of(s->data);
}

/* uname = DigSyl(c_id, 0), passwd = its lower case (clause 4.7). */
static void put_login(struct tpcw_gen *g, uint32_t c_id, struct tpcw_req *q)
{
    struct scratch *s = &g->s;
    tpcw_digsyl(c_id, 0, s->uname);
    size_t i = 0;
    for (; s->uname[i] != '\0'; i++) {
        s->passwd[i] = (char)tolower((unsigned char)s->uname[i]);
    }
    s->passwd[i] = '\0';
    q->uname = tpcw_str_of(s->uname);
    q->passwd = tpcw_str_of(s->passwd);
}

static void pick_buy_request(struct tpcw_gen *g, struct eb *b,
                             struct tpcw_req *q)
{
    q->returning = b->c_id != 0;
    if (q->returning) {
        put_login(g, b->c_id, q);
    } else {
        pick_new_customer(g, &b->rng, q);
    }
}

/* The card holder: the customer this EB registered, whose names it knows;
 * otherwise (a returning customer's names are on pages it cannot read)
 * random ones. */
static void pick_cc_name(struct tpcw_gen *g, struct eb *b)
{
    struct scratch *s = &g->s;
    if (!b->named) {
        pick_name(&b->rng, s);
    }
    snprintf(s->cc_name, sizeof s->cc_name, "%s %s",
             b->named ? b->fname : s->fname, b->named ? b->lname : s->lname);
}

static void pick_buy_confirm(struct tpcw_gen *g, struct eb *b,
                             struct tpcw_req *q)
{
    struct evr_rng *r = &b->rng;
    struct scratch *s = &g->s;
    q->cc_type = tpcw_str_of(tpcw_cc_types[evr_rng_below(r, 5)]);
    tpcw_nstring(r, 16, 16, s->cc_number);
    q->cc_number = tpcw_str_of(s->cc_number);
    pick_cc_name(g, b);
    q->cc_name = tpcw_str_of(s->cc_name);
    tpcw_date(g->c.now + evr_rng_range(r, 1, 730) * TPCW_DAY, s->cc_expiry);
    q->cc_expiry = tpcw_str_of(s->cc_expiry);
    q->shipping = tpcw_str_of(tpcw_ship_types[evr_rng_below(r, 6)]);
    q->has_address = evr_rng_double(r) < ADDRESS_GIVEN_P;
    if (q->has_address) {
        pick_address(r, s, q);
    }
}

static void pick_admin_confirm(struct tpcw_gen *g, struct eb *b,
                               struct tpcw_req *q)
{
    struct evr_rng *r = &b->rng;
    q->i_id = b->last_item ? b->last_item : random_item(g, r);
    q->cost_cents = (uint32_t)evr_rng_range(r, 100, 999999);
    /* Another item's pictures, named as population names them. */
    uint32_t n = random_item(g, r);
    snprintf(g->s.image, sizeof g->s.image, "img%u/image_%u.gif", n % 100,
             n);
    snprintf(g->s.thumbnail, sizeof g->s.thumbnail, "img%u/thumb_%u.gif",
             n % 100, n);
    q->image = tpcw_str_of(g->s.image);
    q->thumbnail = tpcw_str_of(g->s.thumbnail);
}

/* Fills q's inputs for the move from `from` to q->kind; may set the EB's
 * last item (Product Detail, Admin Request without one). */
static void pick_inputs(struct tpcw_gen *g, struct eb *b,
                        enum tpcw_interaction from, struct tpcw_req *q)
{
    struct evr_rng *r = &b->rng;
    switch (q->kind) {
    case TPCW_NEW_PRODUCTS:
    case TPCW_BEST_SELLERS:
        q->subject = (uint8_t)evr_rng_below(r, TPCW_SUBJECTS);
        break;
    case TPCW_PRODUCT_DETAIL:
        /* The EB cannot see the previous page's item list, so it picks
         * from all items, uniformly as it would from the list. */
        b->last_item = random_item(g, r);
        q->i_id = b->last_item;
        break;
    case TPCW_SEARCH_RESULTS:
        pick_search(g, b, q);
        break;
    case TPCW_SHOPPING_CART:
        pick_cart(g, b, from, q);
        break;
    case TPCW_BUY_REQUEST:
        pick_buy_request(g, b, q);
        break;
    case TPCW_BUY_CONFIRM:
        pick_buy_confirm(g, b, q);
        break;
    case TPCW_ORDER_DISPLAY:
        /* Looking up an order does not make the customer known ([D]). */
        put_login(g, b->c_id ? b->c_id : nurand_customer(g, r), q);
        break;
    case TPCW_ADMIN_REQUEST:
        if (b->last_item == 0) {
            b->last_item = random_item(g, r);
        }
        q->i_id = b->last_item;
        break;
    case TPCW_ADMIN_CONFIRM:
        pick_admin_confirm(g, b, q);
        break;
    default: /* Home, Search Request, Customer Registration, Order Inquiry */
        break;
    }
}

/* ------------------------------------------------------------ after */

static bool creates_cart(const struct tpcw_req *q)
{
    return q->kind == TPCW_SHOPPING_CART && q->sc_id == 0;
}

static bool registers(const struct tpcw_req *q)
{
    return q->kind == TPCW_BUY_REQUEST && !q->returning;
}

/* Ids the database hands out must fit the requests' u32 fields. */
static int check_ids(const struct tpcw_gen *g, const struct tpcw_req *q)
{
    if (creates_cart(q) && g->carts == UINT32_MAX) {
        return EVR_ELIMIT;
    }
    if (registers(q) && g->customers + g->new_customers >= UINT32_MAX) {
        return EVR_ELIMIT;
    }
    return 0;
}

static bool cart_knows(const struct known_cart *k, uint32_t i_id)
{
    for (uint32_t i = 0; i < k->n; i++) {
        if (k->ids[i] == i_id) {
            return true;
        }
    }
    return false;
}

/* Room for one more known item, made before a step that may add one so
 * that the step itself cannot fail half-way. A full cart stays full: the
 * EB then forgets newer items, which only makes its refreshes smaller. */
static int cart_room(struct known_cart *k)
{
    if (k->n < k->cap || k->cap >= TPCW_CART_PAIRS_MAX) {
        return 0;
    }
    uint32_t cap = k->cap ? 2u * k->cap : 4u;
    if (cap > TPCW_CART_PAIRS_MAX) {
        cap = TPCW_CART_PAIRS_MAX;
    }
    uint32_t *ids = realloc(k->ids, cap * sizeof *ids);
    if (ids == NULL) {
        return EVR_ENOMEM;
    }
    k->ids = ids;
    k->cap = (uint8_t)cap;
    return 0;
}

/* An added item is a new line unless the EB knows it is there already
 * (an item the store added unseen counts as new: one line too many, which
 * the store ignores if a refresh names it). A full known list forgets the
 * item but still counts its line. */
static void cart_add(struct known_cart *k, uint32_t i_id)
{
    if (cart_knows(k, i_id) || k->lines >= TPCW_CART_PAIRS_MAX) {
        return;
    }
    k->lines++;
    if (k->n == k->cap) {
        return;
    }
    uint32_t at = k->n;
    while (at > 0 && k->ids[at - 1] > i_id) {
        k->ids[at] = k->ids[at - 1];
        at--;
    }
    k->ids[at] = i_id;
    k->n++;
}

/* Lines refreshed to quantity 0 are gone. Positions name known items only
 * when the EB knows every line; otherwise it cannot tell which of its items
 * went and forgets them all (its later adds may then count a line twice). */
static void cart_drop_removed(struct known_cart *k, const struct tpcw_req *q)
{
    bool all_known = k->n == k->lines;
    uint8_t keep[TPCW_CART_PAIRS_MAX];
    memset(keep, 1, sizeof keep);
    uint32_t removed = 0;
    for (int p = 0; p < q->npairs; p++) {
        uint16_t line = q->pairs[p].line;
        if (q->pairs[p].qty == 0 && line <= k->lines && keep[line - 1]) {
            keep[line - 1] = 0;
            removed++;
        }
    }
    if (!all_known) {
        k->n = removed > 0 ? 0 : k->n;
    } else {
        uint32_t w = 0;
        for (uint32_t i = 0; i < k->n; i++) {
            if (keep[i]) {
                k->ids[w++] = k->ids[i];
            }
        }
        k->n = (uint8_t)w;
    }
    k->lines = (uint8_t)(k->lines - removed);
}

/* What the EB learns from the response to q, predicted. */
static void learn(struct tpcw_gen *g, struct eb *b, const struct tpcw_req *q)
{
    if (q->kind == TPCW_SHOPPING_CART) {
        /* Positions name lines of the page shown, before any add (this
         * EB never sends an add and a refresh together); an emptied cart
         * gets one line from the store. */
        cart_drop_removed(&b->cart, q);
        if (q->add) {
            cart_add(&b->cart, q->i_id);
        }
        if (b->cart.lines == 0) {
            b->cart.lines = 1;
        }
    }
    if (creates_cart(q)) {
        b->sc_id = ++g->carts;
    }
    if (registers(q)) {
        b->c_id = (uint32_t)(g->customers + ++g->new_customers);
        memcpy(b->fname, g->s.fname, sizeof b->fname);
        memcpy(b->lname, g->s.lname, sizeof b->lname);
        b->named = true;
    }
    if (q->kind == TPCW_BUY_CONFIRM) {
        b->sc_id = 0; /* the order emptied the cart; the next is new */
        b->cart.n = 0;
        b->cart.lines = 0;
    }
}

/* ------------------------------------------------------------ interface */

/* Test-only view of the last request (declared again by the unit test):
 * which EB sent it, whether it started a session, and the think time that
 * followed it. */
void tpcw_gen_probe(const struct tpcw_gen *g, uint32_t *eb,
                    bool *session_start, double *think_s);

void tpcw_gen_probe(const struct tpcw_gen *g, uint32_t *eb,
                    bool *session_start, double *think_s)
{
    *eb = g->last_eb;
    *session_start = g->last_session_start;
    *think_s = (double)g->last_think_us / US_PER_S;
}

static int check_config(const struct tpcw_config *c, struct evr_err *err)
{
    if (c->ebs == 0 || c->ebs > TPCW_EBS_MAX) {
        return evr_err_set(err, EVR_EINVAL,
                           "tpcw: ebs must be 1..%d, not %llu", TPCW_EBS_MAX,
                           (unsigned long long)c->ebs);
    }
    if (c->items < 1000 || c->items > TPCW_ITEMS_MAX) {
        return evr_err_set(err, EVR_EINVAL,
                           "tpcw: items must be 1000..%d, not %llu",
                           TPCW_ITEMS_MAX, (unsigned long long)c->items);
    }
    if (!(c->think_mean_s >= 0 && c->think_mean_s <= THINK_MEAN_MAX_S)) {
        return evr_err_set(err, EVR_EINVAL,
                           "tpcw: think time mean must be 0..%g s, not %g",
                           THINK_MEAN_MAX_S, c->think_mean_s);
    }
    if ((unsigned)c->mix >= TPCW_MIXES) {
        return evr_err_set(err, EVR_EINVAL, "tpcw: unknown mix %d",
                           (int)c->mix);
    }
    return 0;
}

int tpcw_gen_create(const struct tpcw_config *c, uint64_t seed,
                    struct tpcw_gen **out, struct evr_err *err)
{
    *out = NULL;
    int rc = check_config(c, err);
    if (rc != 0) {
        return rc;
    }
    struct tpcw_gen *g = calloc(1, sizeof *g);
    if (g != NULL) {
        g->ebs = calloc(c->ebs, sizeof *g->ebs);
        g->heap = calloc(c->ebs, sizeof *g->heap);
    }
    if (g == NULL || g->ebs == NULL || g->heap == NULL) {
        tpcw_gen_destroy(g);
        return evr_err_set(err, EVR_ENOMEM,
                           "tpcw: out of memory for %llu emulated browsers",
                           (unsigned long long)c->ebs);
    }
    g->c = *c;
    g->matrix = matrices[c->mix];
    g->customers = tpcw_customers(c);
    g->a_customer = tpcw_nurand_a_customer(g->customers);
    g->a_item = tpcw_nurand_a_item(c->items);
    g->neb = (uint32_t)c->ebs;
    /* All EBs start at time 0: equal clocks, so index order is a heap. */
    for (uint32_t i = 0; i < g->neb; i++) {
        evr_rng_seed2(&g->ebs[i].rng, seed, i);
        g->ebs[i].page = PAGE_NONE;
        g->heap[i] = i;
    }
    *out = g;
    return 0;
}

void tpcw_gen_destroy(struct tpcw_gen *g)
{
    if (g == NULL) {
        return;
    }
    for (uint32_t i = 0; g->ebs != NULL && i < g->neb; i++) {
        free(g->ebs[i].cart.ids);
    }
    free(g->ebs);
    free(g->heap);
    free(g);
}

/*
 * The EB with the earliest clock sends its next request. The step is built
 * on a copy of the EB and committed only once the request is in out, so a
 * failure (a full buffer) leaves the generator as it was.
 */
int tpcw_gen_next(struct tpcw_gen *g, struct evr_buf *out)
{
    uint32_t e = g->heap[0];
    struct eb *b = &g->ebs[e];
    if (b->page == TPCW_PRODUCT_DETAIL) { /* it may add to its cart */
        int rc = cart_room(&b->cart);
        if (rc != 0) {
            return rc;
        }
    }
    struct eb next = *b;
    bool session_start;
    enum tpcw_interaction from = (enum tpcw_interaction)next.page;
    struct tpcw_req q = {.kind = next_page(g, &next, &session_start)};
    q.c_id = next.c_id;
    q.sc_id = next.sc_id;
    pick_inputs(g, &next, from, &q);
    size_t mark = out->len;
    int rc = check_ids(g, &q);
    rc = rc ? rc : tpcw_req_encode(&q, out);
    if (rc != 0) {
        out->len = mark;
        return rc;
    }
    learn(g, &next, &q);
    next.page = (uint8_t)q.kind;
    int64_t tt = think_us(g, &next.rng);
    next.clock_us += tt;
    *b = next;
    heap_sift_down(g);
    g->last_eb = e;
    g->last_session_start = session_start;
    g->last_think_us = tt;
    return 0;
}
