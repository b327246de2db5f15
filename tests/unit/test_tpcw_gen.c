/* The TPC-W emulated browsers: well-formed requests, Table 5.1's mixes,
 * sessions, think times, the ids they predict, the order they act in, and
 * streams that a seed reproduces. No database: the generator runs alone. */
#include "tests/unit/helpers/cm.h"

#include <math.h>
#include <stdbool.h>

#include "common/buf.h"
#include "common/err.h"
#include "tests/unit/helpers/th.h"
#include "workloads/tpcw/tpcw.h"

/* Test-only view of the last request, defined in gen.c. */
void tpcw_gen_probe(const struct tpcw_gen *g, uint32_t *eb,
                    bool *session_start, double *think_s);

#define BUF_MAX (1u << 20)

static struct tpcw_config config(enum tpcw_mix mix, uint64_t ebs,
                                 double think_s)
{
    return (struct tpcw_config){.items = 10000, .ebs = ebs, .seed = 1,
                                .now = TPCW_NOW_DEFAULT, .mix = mix,
                                .think_mean_s = think_s};
}

static struct tpcw_gen *make_gen(const struct tpcw_config *c, uint64_t seed)
{
    struct tpcw_gen *g = NULL;
    struct evr_err err;
    th_must(tpcw_gen_create(c, seed, &g, &err), &err);
    assert_non_null(g);
    return g;
}

/* One request into b (emptied first), decoded into q. */
static void next_req(struct tpcw_gen *g, struct evr_buf *b,
                     struct tpcw_req *q)
{
    evr_buf_reset(b);
    assert_int_equal(tpcw_gen_next(g, b), 0);
    assert_true(tpcw_req_decode(b->data, (uint32_t)b->len, q));
}

/* One step of a run, with what the probe says about it. */
struct step {
    struct tpcw_req q;
    uint32_t eb;
    bool session_start;
    double think_s;
};

static void next_step(struct tpcw_gen *g, struct evr_buf *b, struct step *s)
{
    next_req(g, b, &s->q);
    tpcw_gen_probe(g, &s->eb, &s->session_start, &s->think_s);
}

/* ------------------------------------------------------------ codec */

static void check_str(struct tpcw_str s, int lo, int hi)
{
    assert_in_range(s.n, lo, hi);
}

/* Inputs within the ranges clause 3 gives them. */
static void check_inputs(const struct tpcw_config *c, const struct tpcw_req *q)
{
    switch (q->kind) {
    case TPCW_PRODUCT_DETAIL:
    case TPCW_ADMIN_REQUEST:
    case TPCW_ADMIN_CONFIRM:
        assert_in_range(q->i_id, 1, c->items);
        break;
    case TPCW_SEARCH_RESULTS:
        check_str(q->search, 3, 15);
        assert_true(q->search_type == 2 || q->search.n == 14);
        break;
    case TPCW_SHOPPING_CART:
        assert_true(q->add == 0 || q->npairs == 0);
        assert_true(q->add == 0 || (q->i_id >= 1 && q->i_id <= c->items));
        for (int i = 0; i < q->npairs; i++) {
            assert_in_range(q->pairs[i].qty, 0, 10);
        }
        break;
    case TPCW_BUY_REQUEST:
        if (!q->returning) {
            check_str(q->fname, 8, 15);
            check_str(q->street1, 15, 40);
            check_str(q->zip, 5, 10);
            check_str(q->phone, 9, 16);
            check_str(q->birthdate, 10, 10);
            check_str(q->data, 100, 500);
        }
        break;
    case TPCW_BUY_CONFIRM:
        check_str(q->cc_number, 16, 16);
        check_str(q->cc_expiry, 10, 10);
        break;
    default:
        break;
    }
}

static void round_trips(enum tpcw_mix mix, int n)
{
    struct tpcw_config c = config(mix, 20, 7.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7));
    struct evr_buf a, b;
    evr_buf_init(&a, BUF_MAX);
    evr_buf_init(&b, BUF_MAX);
    for (int i = 0; i < n; i++) {
        struct tpcw_req q;
        next_req(g, &a, &q);
        check_inputs(&c, &q);
        evr_buf_reset(&b);
        assert_int_equal(tpcw_req_encode(&q, &b), 0);
        assert_int_equal(b.len, a.len);
        assert_memory_equal(b.data, a.data, a.len);
    }
    evr_buf_free(&a);
    evr_buf_free(&b);
    tpcw_gen_destroy(g);
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int m = 0; m < TPCW_MIXES; m++) {
        round_trips((enum tpcw_mix)m, 60000);
    }
}

/* A failed step (no room in out) changes nothing: the stream goes on as if
 * the step had not been tried. */
static void test_failed_step(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_ORDERING, 5, 7.0);
    struct tpcw_gen *g = make_gen(&c, 3);
    struct tpcw_gen *h = make_gen(&c, 3);
    struct evr_buf a, b, tiny;
    evr_buf_init(&a, BUF_MAX);
    evr_buf_init(&b, BUF_MAX);
    evr_buf_init(&tiny, 8); /* less than any request's 9-byte header */
    for (int i = 0; i < 5000; i++) {
        evr_buf_reset(&a);
        evr_buf_reset(&b);
        evr_buf_reset(&tiny);
        assert_int_equal(tpcw_gen_next(g, &a), 0);
        assert_int_equal(tpcw_gen_next(h, &tiny), EVR_ELIMIT);
        assert_int_equal(tiny.len, 0);
        assert_int_equal(tpcw_gen_next(h, &b), 0);
        assert_int_equal(b.len, a.len);
        assert_memory_equal(b.data, a.data, a.len);
    }
    evr_buf_free(&a);
    evr_buf_free(&b);
    evr_buf_free(&tiny);
    tpcw_gen_destroy(g);
    tpcw_gen_destroy(h);
}

/* ------------------------------------------------------------ mixes */

static void print_mix(enum tpcw_mix mix, const uint64_t *count, uint64_t n)
{
    print_message("%-22s %9s %9s   (%s mix, %llu requests)\n", "interaction",
                  "observed", "table", tpcw_mix_names[mix],
                  (unsigned long long)n);
    for (int k = 0; k < TPCW_INTERACTIONS; k++) {
        print_message("%-22s %8.3f%% %8.2f%%\n", tpcw_interaction_names[k],
                      100.0 * (double)count[k] / (double)n,
                      tpcw_mix_percent[mix][k]);
    }
}

/* Each share within 5 binomial standard deviations plus 0.1 percentage
 * point of Table 5.1 (the margin absorbs the correlation of consecutive
 * pages and the table's rounding). */
static bool mix_matches(enum tpcw_mix mix, const uint64_t *count, uint64_t n)
{
    bool ok = true;
    for (int k = 0; k < TPCW_INTERACTIONS; k++) {
        double want = tpcw_mix_percent[mix][k] / 100.0;
        double got = (double)count[k] / (double)n;
        double sd = sqrt(want * (1 - want) / (double)n);
        ok = ok && fabs(got - want) <= 5 * sd + 0.001;
    }
    return ok;
}

static void check_mix(enum tpcw_mix mix)
{
    const uint64_t n = 400000;
    struct tpcw_config c = config(mix, 50, 7.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7) + (uint64_t)mix);
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    uint64_t count[TPCW_INTERACTIONS] = {0};
    for (uint64_t i = 0; i < n; i++) {
        assert_int_equal(tpcw_gen_next(g, &b), 0);
        count[b.data[0]]++;
        evr_buf_reset(&b);
    }
    bool ok = mix_matches(mix, count, n);
    if (!ok || getenv("TPCW_GEN_TABLE") != NULL) {
        print_mix(mix, count, n);
    }
    assert_true(ok);
    evr_buf_free(&b);
    tpcw_gen_destroy(g);
}

static void test_mixes(void **state)
{
    (void)state;
    for (int m = 0; m < TPCW_MIXES; m++) {
        check_mix((enum tpcw_mix)m);
    }
}

/* ------------------------------------------------------------ sessions */

/* Within a session the customer stays the same, except that an unknown one
 * becomes the next new customer id when it registers (Buy Request). */
struct customer_model {
    uint64_t customers;
    uint64_t registered;
    uint64_t c_id[64]; /* what each EB's next request must carry */
};

static void check_customer(struct customer_model *m, const struct step *s)
{
    const struct tpcw_req *q = &s->q;
    if (s->session_start) {
        assert_int_equal(q->kind, TPCW_HOME);
        assert_true(q->c_id <= m->customers);
    } else {
        assert_int_equal(q->c_id, m->c_id[s->eb]);
    }
    m->c_id[s->eb] = q->c_id;
    if (q->kind == TPCW_BUY_REQUEST && !q->returning) {
        assert_int_equal(q->c_id, 0);
        m->c_id[s->eb] = m->customers + ++m->registered;
    }
}

static void test_sessions(void **state)
{
    (void)state;
    /* Ordering: many registrations. 50 EBs for ~1000 sessions. */
    struct tpcw_config c = config(TPCW_ORDERING, 50, 7.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7));
    struct customer_model m = {.customers = tpcw_customers(&c)};
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    uint64_t sessions = 0;
    for (int i = 0; i < 200000; i++) {
        struct step s;
        next_step(g, &b, &s);
        check_customer(&m, &s);
        sessions += s.session_start;
    }
    assert_true(sessions > 500);
    assert_true(m.registered > 100);
    tpcw_gen_destroy(g);
    evr_buf_free(&b);
}

/* With a long think time every step outlasts much of the 15-minute USMD,
 * so sessions are short and many: a tight check of the 80 % known. */
static void test_known_customers(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_BROWSING, 50, 600.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7));
    struct customer_model m = {.customers = tpcw_customers(&c)};
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    uint64_t sessions = 0, known = 0;
    for (int i = 0; i < 200000; i++) {
        struct step s;
        next_step(g, &b, &s);
        check_customer(&m, &s);
        sessions += s.session_start;
        known += s.session_start && s.q.c_id != 0;
    }
    double p = (double)known / (double)sessions;
    double sd = sqrt(0.8 * 0.2 / (double)sessions);
    print_message("# %llu sessions, %.4f known\n",
                  (unsigned long long)sessions, p);
    assert_true(sessions > 20000);
    assert_true(fabs(p - 0.8) <= 5 * sd);
    tpcw_gen_destroy(g);
    evr_buf_free(&b);
}

/* ------------------------------------------------------------ time */

/* The EB that acts is the one with the earliest clock (ties: lowest index),
 * and its clock then moves on by the think time. */
static int64_t think_us(const struct step *s)
{
    return llround(s->think_s * 1e6); /* the generator counts microseconds */
}

static void check_order(int64_t *clock, uint32_t n, const struct step *s)
{
    for (uint32_t e = 0; e < n; e++) {
        assert_true(clock[e] > clock[s->eb] ||
                    (clock[e] == clock[s->eb] && e >= s->eb));
    }
    clock[s->eb] += think_us(s);
}

static void test_think_time(void **state)
{
    (void)state;
    const uint32_t ebs = 50;
    const int n = 300000;
    struct tpcw_config c = config(TPCW_SHOPPING, ebs, 7.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7));
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    int64_t clock[50] = {0};
    double sum = 0, max = 0;
    for (int i = 0; i < n; i++) {
        struct step s;
        next_step(g, &b, &s);
        check_order(clock, ebs, &s);
        assert_true(s.think_s >= 0);
        sum += s.think_s;
        max = s.think_s > max ? s.think_s : max;
    }
    double mean = sum / n;
    print_message("# think time: mean %.4f s, max %.3f s\n", mean, max);
    assert_true(fabs(mean - 7.0) <= 0.02 * 7.0);
    assert_true(max <= 70.0);
    assert_true(max > 50.0); /* the tail is there, if capped */
    tpcw_gen_destroy(g);
    evr_buf_free(&b);
}

/* Without think time the EBs step a nominal second each: round robin. */
static void test_no_think_time(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_BROWSING, 7, 0.0);
    struct tpcw_gen *g = make_gen(&c, 1);
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    for (int i = 0; i < 7000; i++) {
        struct step s;
        next_step(g, &b, &s);
        assert_int_equal(s.eb, (uint32_t)(i % 7));
        assert_true(s.think_s == 1.0);
    }
    tpcw_gen_destroy(g);
    evr_buf_free(&b);
}

/* ------------------------------------------------------------ ids */

/* Carts are created in request order with ids 1, 2, 3, ...; the EB then
 * sends its id until a Buy Confirm or a new session, and only an EB with a
 * cart confirms a purchase. */
static void check_cart(uint32_t *sc_id, uint32_t *carts, const struct step *s)
{
    const struct tpcw_req *q = &s->q;
    if (s->session_start) {
        sc_id[s->eb] = 0;
    }
    assert_int_equal(q->sc_id, sc_id[s->eb]);
    if (q->kind == TPCW_SHOPPING_CART && q->sc_id == 0) {
        sc_id[s->eb] = ++*carts;
    }
    if (q->kind == TPCW_BUY_CONFIRM) {
        assert_true(q->sc_id != 0);
        sc_id[s->eb] = 0;
    }
}

static void test_predicted_ids(void **state)
{
    (void)state;
    for (int m = TPCW_SHOPPING; m <= TPCW_ORDERING; m++) {
        struct tpcw_config c = config((enum tpcw_mix)m, 40, 7.0);
        struct tpcw_gen *g = make_gen(&c, th_seed(7));
        struct evr_buf b;
        evr_buf_init(&b, BUF_MAX);
        uint32_t sc_id[40] = {0};
        uint32_t carts = 0;
        uint64_t confirms = 0;
        for (int i = 0; i < 150000; i++) {
            struct step s;
            next_step(g, &b, &s);
            check_cart(sc_id, &carts, &s);
            confirms += s.q.kind == TPCW_BUY_CONFIRM;
        }
        assert_true(carts > 1000);
        assert_true(confirms > 500);
        tpcw_gen_destroy(g);
        evr_buf_free(&b);
    }
}

/* ------------------------------------------------------------ inputs */

/* What one EB has shown the test: its page and last item. */
struct eb_model {
    enum tpcw_interaction page;
    uint32_t item;
};

/* A refresh comes from a cart page, which always shows a line: it names at
 * least one line, by position, each once (ascending), with a quantity
 * 0..10. That the positions exist in the store is test_tpcw_exec's check. */
static void check_refresh(const struct tpcw_req *q)
{
    assert_true(q->npairs >= 1);
    for (int i = 0; i < q->npairs; i++) {
        assert_in_range(q->pairs[i].line, 1, TPCW_CART_PAIRS_MAX);
        assert_true(i == 0 || q->pairs[i].line > q->pairs[i - 1].line);
        assert_in_range(q->pairs[i].qty, 0, 10);
    }
}

static void check_cart_inputs(struct eb_model *m, const struct tpcw_req *q)
{
    if (m->page == TPCW_PRODUCT_DETAIL) {
        assert_int_equal(q->add, 1);
        assert_int_equal(q->i_id, m->item);
    } else if (m->page == TPCW_SHOPPING_CART) {
        assert_int_equal(q->add, 0);
        check_refresh(q);
    } else {
        assert_int_equal(q->add, 0);
        assert_int_equal(q->npairs, 0);
    }
}

/* Inputs that follow from the EB's earlier pages (clause 3, section 5's
 * "how the EB picks inputs"). */
static void check_eb_inputs(struct eb_model *m, const struct step *s)
{
    const struct tpcw_req *q = &s->q;
    if (s->session_start) {
        m->item = 0;
    }
    switch (q->kind) {
    case TPCW_PRODUCT_DETAIL:
        m->item = q->i_id;
        break;
    case TPCW_ADMIN_REQUEST:
        assert_int_equal(m->page, TPCW_PRODUCT_DETAIL);
        assert_int_equal(q->i_id, m->item);
        break;
    case TPCW_ADMIN_CONFIRM:
        assert_int_equal(q->i_id, m->item);
        break;
    case TPCW_SHOPPING_CART:
        check_cart_inputs(m, q);
        break;
    default:
        break;
    }
    m->page = q->kind;
}

static void test_eb_inputs(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_SHOPPING, 30, 7.0);
    struct tpcw_gen *g = make_gen(&c, th_seed(7));
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    struct eb_model *m = calloc(30, sizeof *m);
    assert_non_null(m);
    uint64_t refreshes = 0, removals = 0;
    for (int i = 0; i < 400000; i++) {
        struct step s;
        next_step(g, &b, &s);
        check_eb_inputs(&m[s.eb], &s);
        refreshes += s.q.kind == TPCW_SHOPPING_CART && s.q.npairs > 0;
        for (int p = 0; s.q.kind == TPCW_SHOPPING_CART && p < s.q.npairs;
             p++) {
            removals += s.q.pairs[p].qty == 0;
        }
    }
    print_message("# %llu refreshes, %llu removing\n",
                  (unsigned long long)refreshes, (unsigned long long)removals);
    assert_true(refreshes > 800);
    assert_true(removals > 60);
    free(m);
    tpcw_gen_destroy(g);
    evr_buf_free(&b);
}

/* ------------------------------------------------------------ seeds */

static bool same_stream(const struct tpcw_config *c, uint64_t s1,
                        uint64_t s2, int n)
{
    struct tpcw_gen *g = make_gen(c, s1);
    struct tpcw_gen *h = make_gen(c, s2);
    struct evr_buf a, b;
    evr_buf_init(&a, BUF_MAX);
    evr_buf_init(&b, BUF_MAX);
    bool same = true;
    for (int i = 0; same && i < n; i++) {
        evr_buf_reset(&a);
        evr_buf_reset(&b);
        assert_int_equal(tpcw_gen_next(g, &a), 0);
        assert_int_equal(tpcw_gen_next(h, &b), 0);
        same = a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    }
    evr_buf_free(&a);
    evr_buf_free(&b);
    tpcw_gen_destroy(g);
    tpcw_gen_destroy(h);
    return same;
}

static void test_determinism(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_ORDERING, 30, 7.0);
    assert_true(same_stream(&c, 42, 42, 50000));
    assert_false(same_stream(&c, 42, 43, 1000));
}

/* ------------------------------------------------------------ create */

static void test_create_errors(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_BROWSING, 0, 7.0);
    int dummy;
    struct tpcw_gen *g = (void *)&dummy; /* must be cleared */
    struct evr_err err;
    assert_int_equal(tpcw_gen_create(&c, 1, &g, &err), EVR_EINVAL);
    assert_null(g);
    c = config(TPCW_BROWSING, 1, 7.0);
    c.items = 999;
    assert_int_equal(tpcw_gen_create(&c, 1, &g, &err), EVR_EINVAL);
    assert_null(g);
    c = config(TPCW_BROWSING, 1, -1.0);
    assert_int_equal(tpcw_gen_create(&c, 1, &g, &err), EVR_EINVAL);
    c = config(TPCW_BROWSING, 1, 7.0);
    c.mix = TPCW_MIXES;
    assert_int_equal(tpcw_gen_create(&c, 1, &g, &err), EVR_EINVAL);
    tpcw_gen_destroy(NULL);
}

/* The largest scale: every EB opens with Home, in index order (all clocks
 * start at 0), then the heap keeps handing out the earliest. */
static void test_many_ebs(void **state)
{
    (void)state;
    struct tpcw_config c = config(TPCW_SHOPPING, TPCW_EBS_MAX, 7.0);
    struct tpcw_gen *g = make_gen(&c, 5);
    struct evr_buf b;
    evr_buf_init(&b, BUF_MAX);
    int64_t *clock = calloc(TPCW_EBS_MAX, sizeof *clock);
    assert_non_null(clock);
    for (uint32_t i = 0; i < TPCW_EBS_MAX; i++) {
        struct step s;
        next_step(g, &b, &s);
        assert_int_equal(s.eb, i);
        assert_true(s.session_start);
        assert_int_equal(s.q.kind, TPCW_HOME);
        clock[s.eb] += think_us(&s);
    }
    int64_t last = 0;
    for (int i = 0; i < 100000; i++) {
        struct step s;
        next_step(g, &b, &s);
        assert_true(clock[s.eb] >= last); /* time never goes back */
        last = clock[s.eb];
        clock[s.eb] += think_us(&s);
    }
    free(clock);
    evr_buf_free(&b);
    tpcw_gen_destroy(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_failed_step),
        cmocka_unit_test(test_mixes),
        cmocka_unit_test(test_sessions),
        cmocka_unit_test(test_known_customers),
        cmocka_unit_test(test_think_time),
        cmocka_unit_test(test_no_think_time),
        cmocka_unit_test(test_predicted_ids),
        cmocka_unit_test(test_eb_inputs),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_many_ebs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
