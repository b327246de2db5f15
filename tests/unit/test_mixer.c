/* The mixer never co-schedules conflicting requests, keeps conflicting
 * requests in batch order, is as parallel as that allows, and is
 * deterministic — over thousands of random conflict sets, wrong ones too. */
#include "tests/unit/helpers/cm.h"

#include "common/rng.h"
#include "mixer/mixer.h"
#include "tests/unit/helpers/th.h"

static void random_cset(struct evr_rng *r, struct evr_cset *cs, int tables,
                        int keys)
{
    evr_cset_clear(cs);
    int n = (int)evr_rng_below(r, 6);
    for (int i = 0; i < n; i++) {
        uint16_t t = (uint16_t)evr_rng_below(r, (uint64_t)tables);
        enum evr_access mode = evr_rng_below(r, 3) ? EVR_READ : EVR_WRITE;
        bool keyed = evr_rng_below(r, 4) != 0;
        evr_cset_add(cs, t, mode, keyed, evr_rng_below(r, (uint64_t)keys));
    }
    /* Rarely: a wrong hint of the kinds the mixer must survive. */
    switch (evr_rng_below(r, 200)) {
    case 0:
        cs->overflow = true;
        break;
    case 1:
        if (cs->n > 0) {
            cs->e[0].table = 60000; /* out of range */
        }
        break;
    case 2:
        if (cs->n > 0) {
            cs->e[0].mode = 77; /* neither read nor write */
        }
        break;
    case 3:
        cs->n = 1000; /* a corrupted count */
        break;
    default:
        break;
    }
}

static void check_plan(const struct evr_cset *cs, uint32_t n,
                       const struct evr_plan *p)
{
    assert_int_equal(p->n, n);
    assert_true(p->nsub <= n);
    assert_true(n == 0 || p->nsub >= 1);
    int32_t *level = malloc((n + 1) * sizeof *level);
    for (uint32_t i = 0; i < n; i++) {
        level[i] = -1;
    }
    assert_int_equal(p->sub_start[0], 0);
    assert_int_equal(p->sub_start[p->nsub], n);
    for (uint32_t s = 0; s < p->nsub; s++) {
        assert_true(p->sub_start[s] < p->sub_start[s + 1]); /* non-empty */
        for (uint32_t k = p->sub_start[s]; k < p->sub_start[s + 1]; k++) {
            uint32_t i = p->order[k];
            assert_true(i < n);
            assert_int_equal(level[i], -1); /* exactly once */
            level[i] = (int32_t)s;
            if (k > p->sub_start[s]) {
                assert_true(p->order[k - 1] < i); /* ascending */
            }
        }
    }
    for (uint32_t j = 0; j < n; j++) {
        assert_true(level[j] >= 0);
        bool justified = level[j] == 0;
        for (uint32_t i = 0; i < j; i++) {
            if (!evr_cset_conflict(&cs[i], &cs[j])) {
                continue;
            }
            /* Conflicting requests: never together, always in order. */
            assert_true(level[i] < level[j]);
            justified = justified || level[i] == level[j] - 1;
        }
        /* As early as possible: something holds j back by exactly one.
         * A barrier is held back by the highest level before it. */
        if (!justified) {
            int32_t top = -1;
            for (uint32_t i = 0; i < j; i++) {
                top = level[i] > top ? level[i] : top;
            }
            assert_int_equal(level[j], top + 1);
        }
    }
    free(level);
}

static void test_random_plans(void **state)
{
    (void)state;
    struct evr_rng r;
    evr_rng_seed(&r, th_seed(3));
    struct evr_mixer *m, *m2;
    struct evr_err err;
    assert_int_equal(evr_mixer_new(512, &m, &err), 0);
    assert_int_equal(evr_mixer_new(512, &m2, &err), 0);
    struct evr_cset *cs = calloc(512, sizeof *cs);
    uint32_t *order = malloc(512 * sizeof *order);
    uint32_t *starts = malloc(513 * sizeof *starts);
    for (int round = 0; round < 3000; round++) {
        uint32_t n = (uint32_t)evr_rng_below(&r, round < 100 ? 4 : 300);
        int tables = 1 + (int)evr_rng_below(&r, 8);
        int keys = 1 + (int)evr_rng_below(&r, 50);
        for (uint32_t i = 0; i < n; i++) {
            random_cset(&r, &cs[i], tables, keys);
        }
        struct evr_plan p, q;
        assert_int_equal(evr_mixer_plan(m, cs, n, &p, &err), 0);
        check_plan(cs, n, &p);
        /* Deterministic: a fresh mixer, or the same one again, agrees. */
        memcpy(order, p.order, n * sizeof *order);
        memcpy(starts, p.sub_start, (p.nsub + 1) * sizeof *starts);
        uint32_t nsub = p.nsub;
        assert_int_equal(evr_mixer_plan(m2, cs, n, &q, &err), 0);
        assert_int_equal(q.nsub, nsub);
        assert_memory_equal(q.order, order, n * sizeof *order);
        assert_memory_equal(q.sub_start, starts, (nsub + 1) * sizeof *starts);
    }
    free(cs);
    free(order);
    free(starts);
    evr_mixer_free(m);
    evr_mixer_free(m2);
}

static void test_shapes(void **state)
{
    (void)state;
    struct evr_mixer *m;
    struct evr_err err;
    assert_int_equal(evr_mixer_new(64, &m, &err), 0);
    struct evr_cset cs[64];
    struct evr_plan p;
    /* Independent keyed writes: one sub-batch. */
    for (int i = 0; i < 64; i++) {
        evr_cset_clear(&cs[i]);
        evr_cset_write_key(&cs[i], 0, (uint64_t)i);
    }
    assert_int_equal(evr_mixer_plan(m, cs, 64, &p, &err), 0);
    assert_int_equal(p.nsub, 1);
    assert_true(evr_plan_mean_width(&p) == 64.0);
    /* The same key: a chain. */
    for (int i = 0; i < 64; i++) {
        cs[i].e[0].key = 5;
    }
    assert_int_equal(evr_mixer_plan(m, cs, 64, &p, &err), 0);
    assert_int_equal(p.nsub, 64);
    /* Reads of a key between writes of it: w r r w r -> 0 1 1 2 3 */
    enum evr_access modes[] = {EVR_WRITE, EVR_READ, EVR_READ, EVR_WRITE,
                               EVR_READ};
    for (int i = 0; i < 5; i++) {
        evr_cset_clear(&cs[i]);
        evr_cset_add(&cs[i], 1, modes[i], true, 9);
    }
    assert_int_equal(evr_mixer_plan(m, cs, 5, &p, &err), 0);
    assert_int_equal(p.nsub, 4);
    uint32_t want_order[] = {0, 1, 2, 3, 4};
    uint32_t want_start[] = {0, 1, 3, 4, 5};
    assert_memory_equal(p.order, want_order, sizeof want_order);
    assert_memory_equal(p.sub_start, want_start, sizeof want_start);
    /* A whole-table read waits for keyed writes; other tables do not. */
    evr_cset_clear(&cs[0]);
    evr_cset_write_key(&cs[0], 2, 1);
    evr_cset_clear(&cs[1]);
    evr_cset_read_table(&cs[1], 2);
    evr_cset_clear(&cs[2]);
    evr_cset_write_table(&cs[2], 3);
    assert_int_equal(evr_mixer_plan(m, cs, 3, &p, &err), 0);
    assert_int_equal(p.nsub, 2);
    /* Empty batch, empty sets. */
    assert_int_equal(evr_mixer_plan(m, cs, 0, &p, &err), 0);
    assert_int_equal(p.nsub, 0);
    evr_cset_clear(&cs[0]);
    evr_cset_clear(&cs[1]);
    assert_int_equal(evr_mixer_plan(m, cs, 2, &p, &err), 0);
    assert_int_equal(p.nsub, 1);
    /* Over the limit. */
    struct evr_cset *big = calloc(65, sizeof *big);
    assert_int_equal(evr_mixer_plan(m, big, 65, &p, &err), EVR_ELIMIT);
    free(big);
    evr_mixer_free(m);
    assert_int_equal(evr_mixer_new(0, &m, &err), EVR_EINVAL);
}

static void test_overflowing_set(void **state)
{
    (void)state;
    struct evr_cset cs;
    evr_cset_clear(&cs);
    for (int i = 0; i < EVR_CSET_ENTRIES_MAX + 5; i++) {
        evr_cset_read_key(&cs, 0, (uint64_t)i);
    }
    assert_true(cs.overflow);
    assert_int_equal(cs.n, EVR_CSET_ENTRIES_MAX);
    assert_true(evr_cset_writes(&cs)); /* treated as writing everything */
    struct evr_cset other;
    evr_cset_clear(&other);
    evr_cset_read_table(&other, 9);
    assert_true(evr_cset_conflict(&cs, &other));
}

/* Many distinct keys force the key table to grow during one plan. */
static void test_many_keys(void **state)
{
    (void)state;
    uint32_t n = 4096;
    struct evr_mixer *m;
    struct evr_err err;
    assert_int_equal(evr_mixer_new(n, &m, &err), 0);
    struct evr_cset *cs = calloc(n, sizeof *cs);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < 8; k++) {
            evr_cset_write_key(&cs[i], (uint16_t)(k % 3), i * 8 + k);
        }
    }
    evr_cset_clear(&cs[n - 1]);
    evr_cset_read_key(&cs[n - 1], 0, 3); /* written by request 0 */
    struct evr_plan p;
    assert_int_equal(evr_mixer_plan(m, cs, n, &p, &err), 0);
    assert_int_equal(p.nsub, 2);
    assert_int_equal(p.sub_start[1], n - 1);
    free(cs);
    evr_mixer_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_plans),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_overflowing_set),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
