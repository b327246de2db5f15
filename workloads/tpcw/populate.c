/*
 * TPC-W population (clause 4.7): the start state of the bookstore, a
 * function of (items, ebs, seed, now) only.
 *
 * Each table draws from its own generator, seeded from (seed, table id), so
 * that a change to how one table is generated leaves the rows of the others
 * as they were. Rows are inserted in key order through one prepared
 * statement per table, inside one transaction, with every string generated
 * into stack buffers bound as SQLITE_STATIC: nothing is allocated per row.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/tpcw/tpcw.h"

/* Search tokens are DigSyl(d, 7): 7 syllables of 2 letters. */
#define TOKEN_SYLLABLES 7
#define TOKEN_LEN (2 * TOKEN_SYLLABLES)
#define DIGSYL_BUF 41 /* what tpcw_digsyl may write */
#define TITLE_MAX 60
#define TITLE_BUF 128 /* base text overshoot + the token + a space */
#define TITLE_INSERT_MAX 44 /* the token starts within the first 45 chars */

struct pop {
    const struct tpcw_config *c;
    sqlite3 *db;
    const char *table; /* the table whose insert failed, for the message */
};

/* One table's insert statement and random stream. */
struct tab {
    sqlite3_stmt *st;
    struct evr_rng r;
};

/* ------------------------------------------------------------ plumbing */

static int tab_open(struct pop *p, struct tab *t, enum tpcw_table id,
                    const char *name, const char *sql)
{
    evr_rng_seed2(&t->r, p->c->seed, (uint64_t)id);
    int rc = sqlite3_prepare_v2(p->db, sql, -1, &t->st, NULL);
    if (rc != SQLITE_OK) {
        p->table = name;
    }
    return rc;
}

static void tab_close(struct tab *t)
{
    sqlite3_finalize(t->st);
    t->st = NULL;
}

/* Steps the bound statement and readies it for the next row. */
static int insert(struct pop *p, struct tab *t, const char *name)
{
    int rc = sqlite3_step(t->st);
    sqlite3_reset(t->st);
    if (rc != SQLITE_DONE) {
        p->table = name;
        return rc;
    }
    return SQLITE_OK;
}

/* The buffers outlive the step that reads them, so SQLite need not copy. */
static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static void bind_int(sqlite3_stmt *st, int i, int64_t v)
{
    sqlite3_bind_int64(st, i, v);
}

static void bind_astring(sqlite3_stmt *st, int i, struct evr_rng *r, int lo,
                         int hi, char *buf)
{
    tpcw_astring(r, lo, hi, buf);
    bind_text(st, i, buf);
}

static int64_t random_id(struct evr_rng *r, uint64_t n)
{
    return (int64_t)(1 + evr_rng_below(r, n));
}

/* Money drawn as whole cents, as the spec's random[x.xx..y.yy] means. */
static double random_cents(struct evr_rng *r, int64_t lo, int64_t hi)
{
    return (double)evr_rng_range(r, lo, hi) / 100.0;
}

/* Midnight of a uniformly random day in [from, to] (seconds since 1970;
 * from is a midnight, to is any moment of its day). */
static int64_t random_day(struct evr_rng *r, int64_t from, int64_t to)
{
    int64_t last = to / TPCW_DAY - (to % TPCW_DAY < 0);
    return evr_rng_range(r, from / TPCW_DAY, last) * TPCW_DAY;
}

static const char *pick(struct evr_rng *r, const char *const *list, size_t n)
{
    return list[evr_rng_below(r, n)];
}

/* A search token: DigSyl(d, 7) of d itself for the first `own` ids (so each
 * is found at least once), else of a random one of them. */
static void search_token(struct evr_rng *r, uint64_t d, uint64_t own,
                         char out[DIGSYL_BUF])
{
    uint64_t v = d <= own ? d : (uint64_t)random_id(r, own);
    tpcw_digsyl(v, TOKEN_SYLLABLES, out);
}

/* ------------------------------------------------------------ country */

static int pop_country(struct pop *p)
{
    struct tab t;
    int rc = tab_open(p, &t, TPCW_T_COUNTRY, "country",
                      "INSERT INTO country (co_id, co_name, co_exchange,"
                      " co_currency) VALUES (?1, ?2, ?3, ?4)");
    for (int i = 0; rc == SQLITE_OK && i < TPCW_COUNTRIES; i++) {
        bind_int(t.st, 1, i + 1);
        bind_text(t.st, 2, tpcw_countries[i].name);
        sqlite3_bind_double(t.st, 3, tpcw_countries[i].exchange);
        bind_text(t.st, 4, tpcw_countries[i].currency);
        rc = insert(p, &t, "country");
    }
    tab_close(&t);
    return rc;
}

/* ------------------------------------------------------------ author */

/* A_LNAME: the search token, in a quarter of the names with a short
 * a-string after it; the token is always the prefix (at most 20 chars). */
static void author_lname(struct evr_rng *r, uint64_t a, uint64_t own,
                         char out[DIGSYL_BUF])
{
    search_token(r, a, own, out);
    if (evr_rng_below(r, 4) == 0) {
        tpcw_astring(r, 1, 6, out + TOKEN_LEN);
    }
}

static int author_row(struct pop *p, struct tab *t, uint64_t a)
{
    char fname[21], lname[DIGSYL_BUF], mname[21], dob[11], bio[501];
    bind_int(t->st, 1, (int64_t)a);
    bind_astring(t->st, 2, &t->r, 3, 20, fname);
    author_lname(&t->r, a, p->c->items / 10, lname);
    bind_text(t->st, 3, lname);
    bind_astring(t->st, 4, &t->r, 1, 20, mname);
    tpcw_date(random_day(&t->r, tpcw_days_from_civil(1800, 1, 1),
                         tpcw_days_from_civil(1990, 12, 31)),
              dob);
    bind_text(t->st, 5, dob);
    bind_astring(t->st, 6, &t->r, 125, 500, bio);
    return insert(p, t, "author");
}

static int pop_author(struct pop *p)
{
    struct tab t;
    int rc = tab_open(p, &t, TPCW_T_AUTHOR, "author",
                      "INSERT INTO author (a_id, a_fname, a_lname, a_mname,"
                      " a_dob, a_bio) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    uint64_t n = tpcw_authors(p->c);
    for (uint64_t a = 1; rc == SQLITE_OK && a <= n; a++) {
        rc = author_row(p, &t, a);
    }
    tab_close(&t);
    return rc;
}

/* ------------------------------------------------------------ item title */

/* Ordinary words for the titles' base text, in place of the spec's grammar
 * generator: searches match the DigSyl tokens, never these (lower case, so
 * no run of them spells a token). Every word has at most 12 letters. */
static const char *const title_words[] = {
    "the",      "a",        "of",       "and",      "in",       "on",
    "for",      "with",     "from",     "under",    "over",     "after",
    "before",   "between",  "without",  "beyond",   "across",   "among",
    "house",    "garden",   "river",    "mountain", "city",     "window",
    "road",     "forest",   "ocean",    "island",   "winter",   "summer",
    "morning",  "evening",  "night",    "story",    "history",  "letter",
    "journey",  "kingdom",  "village",  "station",  "bridge",   "harbor",
    "shadow",   "light",    "fire",     "water",    "stone",    "silver",
    "golden",   "quiet",    "last",     "first",    "little",   "great",
    "lost",     "hidden",   "secret",   "ancient",  "modern",   "simple",
    "practical", "complete", "small",   "long",     "dark",     "bright",
    "green",    "blue",     "red",      "white",    "old",      "new",
    "young",    "wild",     "gentle",   "strange",  "brave",    "happy",
    "friend",   "teacher",  "doctor",   "sailor",   "farmer",   "king",
    "queen",    "child",    "mother",   "father",   "brother",  "sister",
    "guide",    "art",      "music",    "science",  "cooking",  "travel",
    "language", "world",    "year",     "heart",
};
#define TITLE_WORDS (sizeof title_words / sizeof title_words[0])

/* Words separated by single spaces until a random length of 14..60 is
 * reached, the last word dropped if it ran past 60. */
static size_t title_base(struct evr_rng *r, char out[TITLE_BUF])
{
    size_t target = (size_t)evr_rng_range(r, 14, TITLE_MAX);
    size_t len = 0;
    size_t before = 0;
    while (len < target) {
        const char *w = pick(r, title_words, TITLE_WORDS);
        size_t n = strlen(w);
        before = len;
        if (len > 0) {
            out[len++] = ' ';
        }
        memcpy(out + len, w, n);
        len += n;
    }
    /* Words are short, so what is left after a drop is still >= 14. */
    len = len > TITLE_MAX ? before : len;
    out[len] = '\0';
    return len;
}

/* Cuts whole words from the end until the title fits, never the token
 * (which ends at `keep`); a word the token was spliced onto is cut short
 * instead, which keeps the token since keep <= 44 + 14. */
static void title_fit(char *t, size_t len, size_t keep)
{
    while (len > TITLE_MAX) {
        size_t s = len;
        while (s > keep && t[s - 1] != ' ') {
            s--;
        }
        len = s > keep ? s - 1 : TITLE_MAX;
    }
    t[len] = '\0';
}

/* The token goes in at the start of a word among the first 45 characters:
 * as a word of its own (75 %) or glued to the front of the next word. */
static void title_embed(struct evr_rng *r, const char *token, char *t,
                        size_t len)
{
    size_t pos = (size_t)evr_rng_range(
        r, 0, len < TITLE_INSERT_MAX ? (int64_t)len : TITLE_INSERT_MAX);
    while (pos > 0 && t[pos - 1] != ' ') {
        pos--;
    }
    bool whole = evr_rng_below(r, 4) != 0;
    size_t add = TOKEN_LEN + (whole ? 1 : 0);
    memmove(t + pos + add, t + pos, len - pos + 1);
    memcpy(t + pos, token, TOKEN_LEN);
    if (whole) {
        t[pos + TOKEN_LEN] = ' ';
    }
    title_fit(t, len + add, pos + TOKEN_LEN);
}

static void item_title(struct evr_rng *r, uint64_t i, uint64_t items,
                       char out[TITLE_BUF])
{
    size_t len = title_base(r, out);
    char token[DIGSYL_BUF];
    search_token(r, i, items / 5, token);
    title_embed(r, token, out, len);
}

/* ------------------------------------------------------------ item */

struct item_bufs {
    char title[TITLE_BUF];
    char pub_date[11];
    char publisher[61];
    char desc[501];
    char thumbnail[48];
    char image[48];
    char avail[11];
    char isbn[14];
    char dimensions[64];
};

/* Five distinct related items; i itself may be one of them. */
static void item_related(struct pop *p, struct tab *t)
{
    int64_t rel[5];
    for (int k = 0; k < 5; k++) {
        bool dup;
        do {
            rel[k] = random_id(&t->r, p->c->items);
            dup = false;
            for (int j = 0; j < k; j++) {
                dup = dup || rel[j] == rel[k];
            }
        } while (dup);
        bind_int(t->st, 8 + k, rel[k]);
    }
}

/* Title, author, publication, subject, description: ?1..?7. */
static void item_about(struct pop *p, struct tab *t, uint64_t i,
                       struct item_bufs *b, int64_t *pub)
{
    uint64_t authors = tpcw_authors(p->c);
    bind_int(t->st, 1, (int64_t)i);
    item_title(&t->r, i, p->c->items, b->title);
    bind_text(t->st, 2, b->title);
    bind_int(t->st, 3, i <= authors ? (int64_t)i : random_id(&t->r, authors));
    *pub = random_day(&t->r, tpcw_days_from_civil(1930, 1, 1), p->c->now);
    tpcw_date(*pub, b->pub_date);
    bind_text(t->st, 4, b->pub_date);
    bind_astring(t->st, 5, &t->r, 14, 60, b->publisher);
    bind_text(t->st, 6, pick(&t->r, tpcw_subjects, TPCW_SUBJECTS));
    bind_astring(t->st, 7, &t->r, 100, 500, b->desc);
}

/* Images, prices, availability and stock: ?13..?18. */
static void item_offer(struct tab *t, uint64_t i,
                       struct item_bufs *b, int64_t pub)
{
    unsigned long long id = (unsigned long long)i;
    snprintf(b->thumbnail, sizeof b->thumbnail, "img%llu/thumb_%llu.gif",
             id % 100, id);
    snprintf(b->image, sizeof b->image, "img%llu/image_%llu.gif", id % 100,
             id);
    bind_text(t->st, 13, b->thumbnail);
    bind_text(t->st, 14, b->image);
    double srp = random_cents(&t->r, 100, 999999);
    double off = (double)evr_rng_range(&t->r, 0, 50) / 100.0;
    sqlite3_bind_double(t->st, 15, srp);
    sqlite3_bind_double(t->st, 16, tpcw_cents(srp * (1.0 - off)));
    tpcw_date(pub + evr_rng_range(&t->r, 1, 30) * TPCW_DAY, b->avail);
    bind_text(t->st, 17, b->avail);
    bind_int(t->st, 18, evr_rng_range(&t->r, 10, 30));
}

/* ISBN, pages, backing, dimensions: ?19..?22. */
static void item_physical(struct tab *t, struct item_bufs *b)
{
    bind_astring(t->st, 19, &t->r, 13, 13, b->isbn);
    bind_int(t->st, 20, evr_rng_range(&t->r, 20, 9999));
    bind_text(t->st, 21, pick(&t->r, tpcw_backings, 5));
    unsigned d[3];
    for (int k = 0; k < 3; k++) {
        d[k] = (unsigned)evr_rng_range(&t->r, 1, 9999);
    }
    snprintf(b->dimensions, sizeof b->dimensions, "%u.%02ux%u.%02ux%u.%02u",
             d[0] / 100, d[0] % 100, d[1] / 100, d[1] % 100, d[2] / 100,
             d[2] % 100);
    bind_text(t->st, 22, b->dimensions);
}

static int item_row(struct pop *p, struct tab *t, uint64_t i)
{
    struct item_bufs b;
    int64_t pub;
    item_about(p, t, i, &b, &pub);
    item_related(p, t);
    item_offer(t, i, &b, pub);
    item_physical(t, &b);
    return insert(p, t, "item");
}

static int pop_item(struct pop *p)
{
    struct tab t;
    int rc = tab_open(
        p, &t, TPCW_T_ITEM, "item",
        "INSERT INTO item (i_id, i_title, i_a_id, i_pub_date, i_publisher,"
        " i_subject, i_desc, i_related1, i_related2, i_related3, i_related4,"
        " i_related5, i_thumbnail, i_image, i_srp, i_cost, i_avail, i_stock,"
        " i_isbn, i_page, i_backing, i_dimensions) VALUES (?1, ?2, ?3, ?4,"
        " ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,"
        " ?19, ?20, ?21, ?22)");
    for (uint64_t i = 1; rc == SQLITE_OK && i <= p->c->items; i++) {
        rc = item_row(p, &t, i);
    }
    tab_close(&t);
    return rc;
}

/* ------------------------------------------------------------ customer */

struct customer_bufs {
    char uname[DIGSYL_BUF];
    char passwd[DIGSYL_BUF];
    char fname[16];
    char lname[16];
    char phone[17];
    char email[DIGSYL_BUF + 16];
    char since[11];
    char last_visit[11];
    char login[20];
    char expiration[20];
    char birthdate[11];
    char data[501];
};

/* User name DigSyl(c), its lower case as password, names: ?1..?5. */
static void customer_login(struct tab *t, uint64_t c,
                           struct customer_bufs *b)
{
    bind_int(t->st, 1, (int64_t)c);
    tpcw_digsyl(c, 0, b->uname);
    size_t n = strlen(b->uname);
    for (size_t k = 0; k <= n; k++) {
        char ch = b->uname[k];
        b->passwd[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    bind_text(t->st, 2, b->uname);
    bind_text(t->st, 3, b->passwd);
    bind_astring(t->st, 4, &t->r, 8, 15, b->fname);
    bind_astring(t->st, 5, &t->r, 8, 15, b->lname);
}

/* Address, phone, e-mail: ?6..?8. */
static void customer_contact(struct pop *p, struct tab *t,
                             struct customer_bufs *b)
{
    bind_int(t->st, 6, random_id(&t->r, tpcw_addresses(p->c)));
    tpcw_nstring(&t->r, 9, 16, b->phone);
    bind_text(t->st, 7, b->phone);
    size_t n = strlen(b->uname);
    memcpy(b->email, b->uname, n);
    b->email[n] = '@';
    int host = tpcw_astring(&t->r, 2, 9, b->email + n + 1);
    memcpy(b->email + n + 1 + host, ".com", 5);
    bind_text(t->st, 8, b->email);
}

/* Since, last visit, login, expiration: ?9..?12. */
static void customer_visits(struct pop *p, struct tab *t,
                            struct customer_bufs *b)
{
    int64_t now = p->c->now;
    int64_t since = now - evr_rng_range(&t->r, 1, 730) * TPCW_DAY;
    int64_t last = since + evr_rng_range(&t->r, 0, 60) * TPCW_DAY;
    tpcw_date(since, b->since);
    tpcw_date(last < now ? last : now, b->last_visit);
    tpcw_timestamp(now, b->login);
    tpcw_timestamp(now + 2 * 3600, b->expiration);
    bind_text(t->st, 9, b->since);
    bind_text(t->st, 10, b->last_visit);
    bind_text(t->st, 11, b->login);
    bind_text(t->st, 12, b->expiration);
}

/* Discount, balance, payments, birth date, data: ?13..?17. */
static void customer_account(struct pop *p, struct tab *t,
                             struct customer_bufs *b)
{
    sqlite3_bind_double(t->st, 13, random_cents(&t->r, 0, 50));
    sqlite3_bind_double(t->st, 14, 0.0);
    sqlite3_bind_double(t->st, 15, random_cents(&t->r, 0, 99999));
    tpcw_date(random_day(&t->r, tpcw_days_from_civil(1880, 1, 1), p->c->now),
              b->birthdate);
    bind_text(t->st, 16, b->birthdate);
    bind_astring(t->st, 17, &t->r, 100, 500, b->data);
}

static int customer_row(struct pop *p, struct tab *t, uint64_t c)
{
    struct customer_bufs b;
    customer_login(t, c, &b);
    customer_contact(p, t, &b);
    customer_visits(p, t, &b);
    customer_account(p, t, &b);
    return insert(p, t, "customer");
}

static int pop_customer(struct pop *p)
{
    struct tab t;
    int rc = tab_open(
        p, &t, TPCW_T_CUSTOMER, "customer",
        "INSERT INTO customer (c_id, c_uname, c_passwd, c_fname, c_lname,"
        " c_addr_id, c_phone, c_email, c_since, c_last_visit, c_login,"
        " c_expiration, c_discount, c_balance, c_ytd_pmt, c_birthdate,"
        " c_data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,"
        " ?12, ?13, ?14, ?15, ?16, ?17)");
    uint64_t n = tpcw_customers(p->c);
    for (uint64_t c = 1; rc == SQLITE_OK && c <= n; c++) {
        rc = customer_row(p, &t, c);
    }
    tab_close(&t);
    return rc;
}

/* ------------------------------------------------------------ address */

static int address_row(struct pop *p, struct tab *t, uint64_t a)
{
    char street1[41], street2[41], city[31], state[21], zip[11];
    bind_int(t->st, 1, (int64_t)a);
    bind_astring(t->st, 2, &t->r, 15, 40, street1);
    bind_astring(t->st, 3, &t->r, 15, 40, street2);
    bind_astring(t->st, 4, &t->r, 4, 30, city);
    bind_astring(t->st, 5, &t->r, 2, 20, state);
    bind_astring(t->st, 6, &t->r, 5, 10, zip);
    bind_int(t->st, 7, random_id(&t->r, TPCW_COUNTRIES));
    return insert(p, t, "address");
}

static int pop_address(struct pop *p)
{
    struct tab t;
    int rc = tab_open(p, &t, TPCW_T_ADDRESS, "address",
                      "INSERT INTO address (addr_id, addr_street1,"
                      " addr_street2, addr_city, addr_state, addr_zip,"
                      " addr_co_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    uint64_t n = tpcw_addresses(p->c);
    for (uint64_t a = 1; rc == SQLITE_OK && a <= n; a++) {
        rc = address_row(p, &t, a);
    }
    tab_close(&t);
    return rc;
}

/* ------------------------------------------------------------ orders */

/* Orders, their lines and their card transactions are made together (a
 * total needs its lines, a transaction its order), each from its own
 * stream. */
struct order_tabs {
    struct tab orders;
    struct tab lines;
    struct tab xacts;
};

/* What the order row needs from its lines. */
struct order_sum {
    int64_t lines;
};

static int order_line_row(struct pop *p, struct tab *t, uint64_t o,
                          int64_t ol, struct order_sum *sum)
{
    char comments[101];
    int64_t item = random_id(&t->r, p->c->items);
    int64_t qty = evr_rng_range(&t->r, 1, 300);
    double discount = random_cents(&t->r, 0, 3);
    bind_int(t->st, 1, ol);
    bind_int(t->st, 2, (int64_t)o);
    bind_int(t->st, 3, item);
    bind_int(t->st, 4, qty);
    sqlite3_bind_double(t->st, 5, discount);
    bind_astring(t->st, 6, &t->r, 20, 100, comments);
    sum->lines++;
    return insert(p, t, "order_line");
}

static int order_lines(struct pop *p, struct tab *t, uint64_t o,
                       struct order_sum *sum)
{
    int64_t n = evr_rng_range(&t->r, 1, 5);
    int rc = SQLITE_OK;
    for (int64_t ol = 1; rc == SQLITE_OK && ol <= n; ol++) {
        rc = order_line_row(p, t, o, ol, sum);
    }
    return rc;
}

/* Clause 4.7.1: sub-total random in [10.00, 9999.99] (not the lines' sum:
 * with quantities up to 300 that would be millions), tax 8.25 %, total
 * with $3.00 per order and $1.00 per order line, as the Java kit does:
 * ?4..?6; returns the total. */
static double order_amounts(struct tab *t, const struct order_sum *sum)
{
    double sub = random_cents(&t->r, 1000, 999999);
    double tax = tpcw_cents(sub * 0.0825);
    double total = tpcw_cents(sub + tax + 3.00 + 1.00 * (double)sum->lines);
    sqlite3_bind_double(t->st, 4, sub);
    sqlite3_bind_double(t->st, 5, tax);
    sqlite3_bind_double(t->st, 6, total);
    return total;
}

static int orders_row(struct pop *p, struct tab *t, uint64_t o, int64_t date,
                      const char *date_text, double *total,
                      const struct order_sum *sum)
{
    uint64_t addresses = tpcw_addresses(p->c);
    char ship_date[20];
    bind_int(t->st, 1, (int64_t)o);
    bind_int(t->st, 2, random_id(&t->r, tpcw_customers(p->c)));
    bind_text(t->st, 3, date_text);
    *total = order_amounts(t, sum);
    bind_text(t->st, 7, pick(&t->r, tpcw_ship_types, 6));
    tpcw_timestamp(date + evr_rng_range(&t->r, 0, 7) * TPCW_DAY, ship_date);
    bind_text(t->st, 8, ship_date);
    bind_int(t->st, 9, random_id(&t->r, addresses));
    bind_int(t->st, 10, random_id(&t->r, addresses));
    bind_text(t->st, 11, pick(&t->r, tpcw_order_statuses, 4));
    return insert(p, t, "orders");
}

static int cc_xacts_row(struct pop *p, struct tab *t, uint64_t o,
                        double total, const char *date_text)
{
    char num[17], name[31], expire[11], auth[16];
    bind_int(t->st, 1, (int64_t)o);
    bind_text(t->st, 2, pick(&t->r, tpcw_cc_types, 5));
    tpcw_nstring(&t->r, 16, 16, num);
    bind_text(t->st, 3, num);
    bind_astring(t->st, 4, &t->r, 14, 30, name);
    tpcw_date(p->c->now + evr_rng_range(&t->r, 10, 730) * TPCW_DAY, expire);
    bind_text(t->st, 5, expire);
    bind_astring(t->st, 6, &t->r, 15, 15, auth);
    sqlite3_bind_double(t->st, 7, total);
    bind_text(t->st, 8, date_text);
    bind_int(t->st, 9, random_id(&t->r, TPCW_COUNTRIES));
    return insert(p, t, "cc_xacts");
}

static int order_row(struct pop *p, struct order_tabs *g, uint64_t o)
{
    /* The date comes first: the order's stream fixes it whatever the
     * lines drew. */
    int64_t date = p->c->now - evr_rng_range(&g->orders.r, TPCW_DAY,
                                             60 * TPCW_DAY);
    char date_text[20];
    tpcw_timestamp(date, date_text);
    struct order_sum sum = {0};
    double total = 0.0;
    int rc = order_lines(p, &g->lines, o, &sum);
    if (rc == SQLITE_OK) {
        rc = orders_row(p, &g->orders, o, date, date_text, &total, &sum);
    }
    if (rc == SQLITE_OK) {
        rc = cc_xacts_row(p, &g->xacts, o, total, date_text);
    }
    return rc;
}

static int order_tabs_open(struct pop *p, struct order_tabs *g)
{
    int rc = tab_open(
        p, &g->orders, TPCW_T_ORDERS, "orders",
        "INSERT INTO orders (o_id, o_c_id, o_date, o_sub_total, o_tax,"
        " o_total, o_ship_type, o_ship_date, o_bill_addr_id,"
        " o_ship_addr_id, o_status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
        " ?9, ?10, ?11)");
    if (rc == SQLITE_OK) {
        rc = tab_open(p, &g->lines, TPCW_T_ORDER_LINE, "order_line",
                      "INSERT INTO order_line (ol_id, ol_o_id, ol_i_id,"
                      " ol_qty, ol_discount, ol_comments) VALUES (?1, ?2,"
                      " ?3, ?4, ?5, ?6)");
    }
    if (rc == SQLITE_OK) {
        rc = tab_open(p, &g->xacts, TPCW_T_CC_XACTS, "cc_xacts",
                      "INSERT INTO cc_xacts (cx_o_id, cx_type, cx_num,"
                      " cx_name, cx_expire, cx_auth_id, cx_xact_amt,"
                      " cx_xact_date, cx_co_id) VALUES (?1, ?2, ?3, ?4, ?5,"
                      " ?6, ?7, ?8, ?9)");
    }
    return rc;
}

static int pop_orders(struct pop *p)
{
    struct order_tabs g = {{NULL, {{0}}}, {NULL, {{0}}}, {NULL, {{0}}}};
    int rc = order_tabs_open(p, &g);
    uint64_t n = tpcw_orders(p->c);
    for (uint64_t o = 1; rc == SQLITE_OK && o <= n; o++) {
        rc = order_row(p, &g, o);
    }
    tab_close(&g.orders);
    tab_close(&g.lines);
    tab_close(&g.xacts);
    return rc;
}

/* ------------------------------------------------------------ all */

/* Every table draws from its own stream, so the order only has to be
 * fixed. The shopping cart tables start empty. */
static int (*const steps[])(struct pop *) = {
    pop_country, pop_author, pop_item, pop_customer, pop_address, pop_orders,
};

static int run_steps(struct pop *p)
{
    p->table = "the transaction";
    int rc = sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL);
    for (size_t s = 0; rc == SQLITE_OK && s < sizeof steps / sizeof steps[0];
         s++) {
        rc = steps[s](p);
    }
    if (rc == SQLITE_OK) {
        p->table = "the transaction (commit)";
        rc = sqlite3_exec(p->db, "COMMIT", NULL, NULL, NULL);
    }
    return rc;
}

int tpcw_populate(const struct tpcw_config *c, sqlite3 *db,
                  struct evr_err *err)
{
    struct pop p = {.c = c, .db = db};
    int rc = run_steps(&p);
    if (rc != SQLITE_OK) {
        /* The message first: ROLLBACK replaces SQLite's. */
        evr_err_set(err, EVR_ESQL, "populating %s: %s", p.table,
                    sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc == SQLITE_OK ? 0 : EVR_ESQL;
}
