/* The verifier: the commit / wait / rollback rule checked against an
 * independent count over every vote pattern for n = 3 and n = 5 (and random
 * ones up to n = 15), vote bookkeeping, tokens and response digests. */
#include "tests/unit/helpers/cm.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/rng.h"
#include "verifier/verifier.h"

/* Distinct tokens for d >= 1; some pairs share lo, others share hi. */
static evr_h128 tok(uint32_t d)
{
    evr_h128 t = {0x1000u + (d & 1u), d >> 1};
    return t;
}

/* pattern[i]: 0 = replica i has not voted, d > 0 = it voted tok(d).
 * Returns the verdict, after checking it against a histogram of the votes. */
static enum evr_verdict check_pattern(uint32_t n, const uint32_t *pattern,
                                      bool timed_out)
{
    uint32_t quorum = n / 2 + 1;
    uint32_t hist[EVR_REPLICAS_MAX + 1] = {0};
    uint32_t missing = 0;
    struct evr_votes v;
    evr_votes_init(&v, n);
    for (uint32_t i = 0; i < n; i++) {
        if (pattern[i] == 0) {
            missing++;
            continue;
        }
        hist[pattern[i]]++;
        assert_int_equal(evr_votes_add(&v, i, tok(pattern[i])), 0);
    }
    assert_int_equal(evr_votes_count(&v), n - missing);

    uint32_t best = 0, winner = 0, winners = 0;
    for (uint32_t d = 1; d <= n; d++) {
        best = hist[d] > best ? hist[d] : best;
        if (hist[d] >= quorum) {
            winner = d;
            winners++;
        }
    }
    assert_true(winners <= 1);
    enum evr_verdict want = EVR_VERDICT_WAIT;
    if (winner != 0) {
        want = EVR_VERDICT_COMMIT;
    } else if (best + missing < quorum || timed_out) {
        want = EVR_VERDICT_ROLLBACK;
    }

    evr_h128 t = {0xdead, 0xbeef};
    uint32_t holders = 0xffffffffu;
    assert_int_equal(evr_votes_decide(&v, timed_out, &t, &holders), want);
    assert_int_equal(evr_votes_decide(&v, timed_out, NULL, NULL), want);
    if (want == EVR_VERDICT_COMMIT) {
        uint32_t set = 0;
        for (uint32_t i = 0; i < n; i++) {
            set |= pattern[i] == winner ? 1u << i : 0;
        }
        assert_true(evr_h128_eq(t, tok(winner)));
        assert_int_equal(holders, set);
    }
    return want;
}

/* Every assignment of n replicas to {not voted, tok(1) .. tok(n)}. */
static void all_patterns(uint32_t n, uint32_t expect_patterns)
{
    uint32_t total = 1;
    for (uint32_t i = 0; i < n; i++) {
        total *= n + 1;
    }
    assert_int_equal(total, expect_patterns);
    uint32_t seen[3] = {0};
    for (uint32_t code = 0; code < total; code++) {
        uint32_t pattern[EVR_REPLICAS_MAX];
        uint32_t c = code;
        for (uint32_t i = 0; i < n; i++) {
            pattern[i] = c % (n + 1);
            c /= n + 1;
        }
        seen[check_pattern(n, pattern, false)]++;
        seen[check_pattern(n, pattern, true)]++;
    }
    assert_true(seen[EVR_VERDICT_WAIT] > 0);
    assert_true(seen[EVR_VERDICT_COMMIT] > 0);
    assert_true(seen[EVR_VERDICT_ROLLBACK] > 0);
}

static void test_decide_n3(void **state)
{
    (void)state;
    all_patterns(3, 64);
}

static void test_decide_n5(void **state)
{
    (void)state;
    all_patterns(5, 7776);
}

static void test_decide_random_large(void **state)
{
    (void)state;
    struct evr_rng r;
    evr_rng_seed(&r, 0x766572696679ULL);
    for (uint32_t n = 7; n <= EVR_REPLICAS_MAX; n += 2) {
        for (int k = 0; k < 3000; k++) {
            uint32_t tokens = 1 + (uint32_t)evr_rng_below(&r, 3);
            uint32_t pattern[EVR_REPLICAS_MAX];
            for (uint32_t i = 0; i < n; i++) {
                pattern[i] = (uint32_t)evr_rng_below(&r, tokens + 1);
            }
            check_pattern(n, pattern, evr_rng_below(&r, 2) != 0);
        }
    }
}

static void test_votes_add(void **state)
{
    (void)state;
    struct evr_votes v, before;
    evr_votes_init(&v, 3);
    assert_int_equal(evr_votes_count(&v), 0);
    assert_int_equal(evr_votes_add(&v, 0, tok(1)), 0);
    assert_int_equal(evr_votes_count(&v), 1);

    before = v;
    assert_int_equal(evr_votes_add(&v, 0, tok(1)), 0);
    assert_memory_equal(&v, &before, sizeof v);
    assert_int_equal(evr_votes_add(&v, 0, tok(2)), EVR_ESTATE);
    assert_int_equal(evr_votes_add(&v, 0, tok(3)), EVR_ESTATE); /* same lo */
    assert_memory_equal(&v, &before, sizeof v);
    assert_int_equal(evr_votes_add(&v, 3, tok(1)), EVR_EINVAL);
    assert_int_equal(evr_votes_add(&v, 31, tok(1)), EVR_EINVAL);
    assert_int_equal(evr_votes_add(&v, 32, tok(1)), EVR_EINVAL);
    assert_int_equal(evr_votes_add(&v, UINT32_MAX, tok(1)), EVR_EINVAL);
    assert_memory_equal(&v, &before, sizeof v);

    assert_int_equal(evr_votes_add(&v, 2, tok(2)), 0);
    assert_int_equal(evr_votes_count(&v), 2);
    assert_int_equal(evr_votes_decide(&v, false, NULL, NULL),
                     EVR_VERDICT_WAIT);
    assert_int_equal(evr_votes_add(&v, 1, tok(1)), 0);
    evr_h128 t;
    uint32_t holders;
    assert_int_equal(evr_votes_decide(&v, false, &t, &holders),
                     EVR_VERDICT_COMMIT);
    assert_true(evr_h128_eq(t, tok(1)));
    assert_int_equal(holders, 0x3);
}

static void test_single_replica(void **state)
{
    (void)state;
    struct evr_votes v;
    evr_votes_init(&v, 1);
    assert_int_equal(evr_votes_decide(&v, false, NULL, NULL),
                     EVR_VERDICT_WAIT);
    assert_int_equal(evr_votes_decide(&v, true, NULL, NULL),
                     EVR_VERDICT_ROLLBACK);
    assert_int_equal(evr_votes_add(&v, 1, tok(1)), EVR_EINVAL);
    assert_int_equal(evr_votes_add(&v, 0, tok(5)), 0);
    for (int timed_out = 0; timed_out <= 1; timed_out++) {
        evr_h128 t = {0, 0};
        uint32_t holders = 0;
        assert_int_equal(evr_votes_decide(&v, timed_out, &t, &holders),
                         EVR_VERDICT_COMMIT);
        assert_true(evr_h128_eq(t, tok(5)));
        assert_int_equal(holders, 0x1);
    }
}

static void test_token(void **state)
{
    (void)state;
    evr_h128 root = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};
    evr_h128 resp = {0x1111, 0x2222};
    evr_h128 base = evr_token(7, root, resp);
    assert_true(evr_h128_eq(base, evr_token(7, root, resp)));
    assert_false(evr_h128_eq(base, evr_token(8, root, resp)));
    assert_false(evr_h128_eq(base, evr_token(7 | 1ULL << 63, root, resp)));
    evr_h128 root_lo = {root.lo ^ 1, root.hi};
    evr_h128 root_hi = {root.lo, root.hi ^ 1ULL << 63};
    assert_false(evr_h128_eq(base, evr_token(7, root_lo, resp)));
    assert_false(evr_h128_eq(base, evr_token(7, root_hi, resp)));
    evr_h128 resp_lo = {resp.lo ^ 1, resp.hi};
    evr_h128 resp_hi = {resp.lo, resp.hi ^ 1ULL << 63};
    assert_false(evr_h128_eq(base, evr_token(7, root, resp_lo)));
    assert_false(evr_h128_eq(base, evr_token(7, root, resp_hi)));
    assert_false(evr_h128_eq(base, evr_token(7, resp, root)));
}

struct resp {
    int32_t status;
    const char *body;
    uint32_t len;
};

static evr_h128 digest(struct evr_hasher *h, const struct resp *r, size_t n)
{
    evr_hasher_reset(h, 0);
    for (size_t i = 0; i < n; i++) {
        evr_response_digest_add(h, r[i].status, r[i].body, r[i].len);
    }
    return evr_hasher_digest(h);
}

static void differ(struct evr_hasher *h, const struct resp *a, size_t na,
                   const struct resp *b, size_t nb)
{
    assert_false(evr_h128_eq(digest(h, a, na), digest(h, b, nb)));
}

static void put_u32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(x >> (8 * i));
    }
}

static void test_response_digest(void **state)
{
    (void)state;
    struct evr_hasher *h = evr_hasher_new(0);
    assert_non_null(h);
    const struct resp xy[] = {{0, "x", 1}, {0, "y", 1}};
    const struct resp yx[] = {{0, "y", 1}, {0, "x", 1}};
    assert_true(evr_h128_eq(digest(h, xy, 2), digest(h, xy, 2)));
    differ(h, xy, 2, yx, 2);

    const struct resp s0[] = {{0, "x", 1}}, s1[] = {{1, "x", 1}};
    const struct resp sneg[] = {{-1, "x", 1}}, body[] = {{0, "z", 1}};
    differ(h, s0, 1, s1, 1);
    differ(h, s0, 1, sneg, 1);
    differ(h, s0, 1, body, 1);

    const struct resp e0[] = {{0, NULL, 0}}, e1[] = {{1, "", 0}};
    differ(h, e0, 1, e1, 1);
    differ(h, e0, 1, e0, 0);
    const struct resp ab_c[] = {{0, "ab", 2}, {0, "c", 1}};
    const struct resp a_bc[] = {{0, "a", 1}, {0, "bc", 2}};
    differ(h, ab_c, 2, a_bc, 2);

    const struct resp ax[] = {{0, "ax", 1}}, ay[] = {{0, "ay", 1}};
    assert_true(evr_h128_eq(digest(h, ax, 1), digest(h, ay, 1)));

    /* The documented form: u32 status, u32 length, bytes, little-endian. */
    const struct resp doc[] = {{7, "abc", 3}, {-2, "", 0}};
    uint8_t bytes[8 + 3 + 8];
    put_u32(bytes, 7);
    put_u32(bytes + 4, 3);
    memcpy(bytes + 8, "abc", 3);
    put_u32(bytes + 11, (uint32_t)-2);
    put_u32(bytes + 15, 0);
    assert_true(evr_h128_eq(digest(h, doc, 2),
                            evr_hash128(bytes, sizeof bytes, 0)));
    evr_hasher_free(h);
}

static void test_verdict_name(void **state)
{
    (void)state;
    assert_string_equal(evr_verdict_name(EVR_VERDICT_WAIT), "wait");
    assert_string_equal(evr_verdict_name(EVR_VERDICT_COMMIT), "commit");
    assert_string_equal(evr_verdict_name(EVR_VERDICT_ROLLBACK), "rollback");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decide_n3),
        cmocka_unit_test(test_decide_n5),
        cmocka_unit_test(test_decide_random_large),
        cmocka_unit_test(test_votes_add),
        cmocka_unit_test(test_single_replica),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_response_digest),
        cmocka_unit_test(test_verdict_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
