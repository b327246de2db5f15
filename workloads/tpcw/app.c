/* The TPC-W application table: options, population, requests, load. */
#include <stdlib.h>
#include <string.h>

#include "workloads/tpcw/tpcw.h"

static int set_mix(struct tpcw_config *c, const struct evr_app_opt *o,
                   struct evr_err *err)
{
    for (int m = 0; m < TPCW_MIXES; m++) {
        if (strcmp(o->value, tpcw_mix_names[m]) == 0) {
            c->mix = (enum tpcw_mix)m;
            return 0;
        }
    }
    return evr_err_set(err, EVR_EINVAL,
                       "--mix must be browsing, shopping or ordering, not "
                       "'%s'",
                       o->value);
}

static int set_opt(struct tpcw_config *c, const struct evr_app_opt *o,
                   struct evr_err *err)
{
    const char *n = o->name;
    if (strcmp(n, "items") == 0) {
        int rc = evr_opt_u64(o, 1000, TPCW_ITEMS_MAX, &c->items, err);
        if (rc == 0 && c->items != 1000 && c->items != 10000 &&
            c->items != 100000 && c->items != 1000000) {
            rc = evr_err_set(err, EVR_EINVAL,
                             "--items must be 1000, 10000, 100000 or "
                             "1000000 (the spec's scales), not %s",
                             o->value);
        }
        return rc;
    }
    if (strcmp(n, "ebs") == 0) {
        return evr_opt_u64(o, 1, TPCW_EBS_MAX, &c->ebs, err);
    }
    if (strcmp(n, "seed") == 0) {
        return evr_opt_u64(o, 0, UINT64_MAX, &c->seed, err);
    }
    if (strcmp(n, "now") == 0) {
        uint64_t v;
        int rc = evr_opt_u64(o, 0, 253402300799ULL, &v, err);
        c->now = (int64_t)v;
        return rc;
    }
    if (strcmp(n, "mix") == 0) {
        return set_mix(c, o, err);
    }
    if (strcmp(n, "think") == 0) {
        return evr_opt_double(o, 0, 3600, &c->think_mean_s, err);
    }
    return evr_err_set(err, EVR_EINVAL, "the tpcw app has no option --%s", n);
}

static int tpcw_create(const struct evr_app_opt *opts, int nopts, void **app,
                       struct evr_err *err)
{
    struct tpcw_config *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    *c = (struct tpcw_config){.items = 10000, .ebs = 100, .seed = 1,
                              .now = TPCW_NOW_DEFAULT, .mix = TPCW_BROWSING,
                              .think_mean_s = 7.0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < nopts; i++) {
        rc = set_opt(c, &opts[i], err);
    }
    if (rc != 0) {
        free(c);
        return rc;
    }
    *app = c;
    return 0;
}

static void tpcw_destroy(void *app)
{
    free(app);
}

static int tpcw_app_populate(void *app, sqlite3 *db, struct evr_err *err)
{
    int rc = tpcw_create_tables(db, err);
    rc = rc ? rc : tpcw_populate(app, db, err);
    return rc ? rc : tpcw_create_indexes(db, err);
}

static void tpcw_app_classify(void *app, const uint8_t *req, uint32_t len,
                              struct evr_cset *cs)
{
    (void)app;
    struct tpcw_req q;
    evr_cset_clear(cs);
    if (tpcw_req_decode(req, len, &q)) {
        tpcw_classify(&q, cs);
    }
}

static int tpcw_app_execute(void *app, struct evr_ctx *ctx,
                            const uint8_t *req, uint32_t len,
                            struct evr_buf *resp)
{
    struct tpcw_req q;
    if (!tpcw_req_decode(req, len, &q)) {
        return EVR_EINVAL;
    }
    return tpcw_execute(app, ctx, &q, resp);
}

static int64_t tpcw_start_us(void *app)
{
    const struct tpcw_config *c = app;
    return c->now * 1000000;
}

static const char *tpcw_kind(void *app, const uint8_t *req, uint32_t len)
{
    (void)app;
    if (len == 0 || req[0] >= TPCW_INTERACTIONS) {
        return "invalid";
    }
    return tpcw_interaction_names[req[0]];
}

static int gen_create(void *app, uint64_t seed, void **gen,
                      struct evr_err *err)
{
    return tpcw_gen_create(app, seed, (struct tpcw_gen **)gen, err);
}

static void gen_destroy(void *gen)
{
    tpcw_gen_destroy(gen);
}

static int gen_next(void *gen, struct evr_buf *out)
{
    return tpcw_gen_next(gen, out);
}

const struct evr_app_ops evr_tpcw_app = {
    .name = "tpcw",
    .usage = "  --items N           items: 1000, 10000, 100000 or 1000000 "
             "(10000)\n"
             "  --ebs E             emulated browsers; customers = 2880 x E "
             "(100)\n"
             "  --seed S            seed of the population (1)\n"
             "  --now T             population time, Unix seconds "
             "(1700000000)\n"
             "  --mix M             browsing, shopping or ordering "
             "(browsing)\n"
             "  --think S           mean think time in seconds, 0 for none "
             "(7)\n",
    .create = tpcw_create,
    .destroy = tpcw_destroy,
    .populate = tpcw_app_populate,
    .classify = tpcw_app_classify,
    .execute = tpcw_app_execute,
    .start_us = tpcw_start_us,
    .kind = tpcw_kind,
    .gen_create = gen_create,
    .gen_destroy = gen_destroy,
    .gen_next = gen_next,
};
