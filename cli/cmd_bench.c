/*
 * evr bench: closed-loop load on a running cluster. N clients, one client
 * session each, each with its own request generator of the application
 * (gen_create(app, seed + i)): a client sends its next request as soon as
 * the previous one ends (no think time). After --warmup seconds the
 * measured window of --duration seconds starts; a request counts when its
 * reply arrives inside the window.
 *
 *   ops          replies in the window, whatever their status
 *   errors       replies with a non-zero status (the application's error:
 *                still committed) plus requests that got no reply by the
 *                client deadline (failed)
 *   latency      submit to reply, for every reply in the window, overall
 *                and per request kind (the app's kind()), in a log-bucket
 *                histogram: 64 buckets per power of two above 128 us, so a
 *                percentile is within 1/64 (1.6 %) of the true value;
 *                memory is fixed (HIST_BUCKETS per kind)
 *   batches,     from the replicas' STATUS counters, after the window minus
 *   rollbacks,   before it, over replicas that answered both times:
 *   repairs      rollbacks and repairs summed over replicas (a rollback is
 *                counted by the primary that ordered it, a repair by the
 *                replica repaired, so each once), batches the most batches
 *                one replica applied
 *
 * After the window no new requests start; those in flight get up to
 * DRAIN_MS to end (uncounted), so the cluster is idle when bench exits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "include/evr/client.h"

#define KINDS_MAX 32
#define HIST_SUB 64                    /* buckets per power of two */
#define HIST_LINEAR 128                /* exact below this many us */
#define HIST_EXP_MAX 34                /* up to about 2^40 us (12 days) */
#define HIST_BUCKETS (HIST_LINEAR + HIST_EXP_MAX * HIST_SUB)
#define STATUS_TIMEOUT_MS 2000
#define DRAIN_MS 5000
#define POLL_MS 20
#define NS_PER_S 1000000000ull

/* ------------------------------------------------------------ histogram */

struct hist {
    uint64_t n, max_us;
    double sum_us;
    uint64_t b[HIST_BUCKETS];
};

static uint32_t hist_index(uint64_t us)
{
    if (us < HIST_LINEAR) {
        return (uint32_t)us;
    }
    uint32_t msb = 63u - (uint32_t)__builtin_clzll(us); /* >= 7 */
    uint32_t e = msb - 6;                               /* >= 1 */
    if (e > HIST_EXP_MAX) {
        return HIST_BUCKETS - 1;
    }
    uint64_t m = us >> e; /* 64..127 */
    return HIST_LINEAR + (e - 1) * HIST_SUB + (uint32_t)(m - HIST_SUB);
}

/* The middle of bucket i, in us. */
static double hist_value(uint32_t i)
{
    if (i < HIST_LINEAR) {
        return i;
    }
    uint32_t e = (i - HIST_LINEAR) / HIST_SUB + 1;
    uint64_t m = (i - HIST_LINEAR) % HIST_SUB + HIST_SUB;
    return ((double)m + 0.5) * (double)(1ull << e);
}

static void hist_add(struct hist *h, uint64_t us)
{
    h->b[hist_index(us)]++;
    h->n++;
    h->sum_us += (double)us;
    h->max_us = us > h->max_us ? us : h->max_us;
}

static double hist_ms(const struct hist *h, double q)
{
    if (h->n == 0) {
        return 0;
    }
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    want = want < 1 ? 1 : want;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            return hist_value(i) / 1000.0;
        }
    }
    return (double)h->max_us / 1000.0;
}

/* ------------------------------------------------------------ state */

struct kind {
    const char *name;
    uint64_t errors;
    struct hist lat;
};

struct bench;

struct slot {
    struct bench *b;
    uint32_t i;
    int kind;
    uint64_t start_ns;
};

struct bench {
    const char *app_name, *json;
    uint64_t clients, duration, warmup, seed;
    struct evr_app app;
    struct evr_client *c;
    void **gens;
    struct slot *slots;
    struct evr_buf req;
    bool measuring, stopping, failed_gen;
    struct evr_err err;
    uint64_t in_flight, done_total;
    uint64_t ops, app_errors, failed;
    double seconds;
    struct hist all;
    struct kind kinds[KINDS_MAX];
    int nkinds;
    struct evr_replica_status before[EVR_CLIENT_REPLICAS_MAX];
    struct evr_replica_status after[EVR_CLIENT_REPLICAS_MAX];
    uint64_t batches, rollbacks, repairs;
    const char *mode;
};

static int kind_of(struct bench *b, const char *name)
{
    for (int i = 0; i < b->nkinds; i++) {
        if (strcmp(b->kinds[i].name, name) == 0) {
            return i;
        }
    }
    if (b->nkinds == KINDS_MAX) {
        return KINDS_MAX - 1; /* the last kind collects the rest */
    }
    b->kinds[b->nkinds].name = name;
    return b->nkinds++;
}

/* ------------------------------------------------------------ load */

static void on_done(void *arg, int rc, int32_t status, const uint8_t *body,
                    uint32_t len, uint64_t op);

/* Client i's next request. */
static void next(struct bench *b, uint32_t i)
{
    struct slot *s = &b->slots[i];
    evr_buf_reset(&b->req);
    int rc = b->app.ops->gen_next(b->gens[i], &b->req);
    if (rc == 0) {
        s->kind = kind_of(b, b->app.ops->kind(b->app.impl, b->req.data,
                                              (uint32_t)b->req.len));
        s->start_ns = evr_now_ns();
        rc = evr_client_submit(b->c, i, b->req.data, (uint32_t)b->req.len,
                               on_done, s);
    }
    if (rc != 0) {
        evr_err_set(&b->err, rc, "client %u: next request: %s", i,
                    evr_strerror(rc));
        b->failed_gen = true;
        return;
    }
    b->in_flight++;
}

static void on_done(void *arg, int rc, int32_t status, const uint8_t *body,
                    uint32_t len, uint64_t op)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    b->in_flight--;
    b->done_total++;
    if (b->measuring && rc != 0) {
        b->failed++;
    } else if (b->measuring) {
        uint64_t us = (evr_now_ns() - s->start_ns) / 1000;
        struct kind *k = &b->kinds[s->kind];
        b->ops++;
        hist_add(&b->all, us);
        hist_add(&k->lat, us);
        b->app_errors += status != 0;
        k->errors += status != 0;
    }
    if (!b->stopping && !b->failed_gen) {
        next(b, s->i);
    }
}

static void progress(struct bench *b, uint64_t now, uint64_t t0,
                     uint64_t *last_ns, uint64_t *last_done)
{
    if (now - *last_ns < NS_PER_S) {
        return;
    }
    double rate = (double)(b->done_total - *last_done) * 1e9 /
                  (double)(now - *last_ns);
    fprintf(stderr, "\r  %4llu s %s  %10.0f ops/s  ops %llu  errors %llu  "
            "p50 %.2f ms  p99 %.2f ms   ",
            (unsigned long long)((now - t0) / NS_PER_S),
            b->measuring ? "measure" : "warmup ", rate,
            (unsigned long long)b->ops,
            (unsigned long long)(b->app_errors + b->failed),
            hist_ms(&b->all, 0.5), hist_ms(&b->all, 0.99));
    *last_ns = now;
    *last_done = b->done_total;
}

static void status_into(struct bench *b, struct evr_replica_status *st)
{
    if (evr_client_status(b->c, st, STATUS_TIMEOUT_MS) < 1) {
        fprintf(stderr, "evr bench: no replica answered STATUS (%s)\n",
                evr_client_problem(b->c));
    }
}

static void drain(struct bench *b)
{
    b->stopping = true;
    uint64_t end = evr_now_ns() + (uint64_t)DRAIN_MS * 1000000u;
    while (b->in_flight > 0 && evr_now_ns() < end) {
        evr_client_poll(b->c, POLL_MS);
    }
}

static int run(struct bench *b)
{
    bool tty = isatty(STDERR_FILENO);
    uint64_t t0 = evr_now_ns(), last_ns = t0, last_done = 0, start = 0;
    uint64_t warm_end = t0 + b->warmup * NS_PER_S;
    for (uint32_t i = 0; i < b->clients && !b->failed_gen; i++) {
        next(b, i);
    }
    for (uint64_t now = t0; !b->failed_gen; now = evr_now_ns()) {
        if (!b->measuring && now >= warm_end) {
            status_into(b, b->before);
            b->measuring = true;
            start = evr_now_ns();
        }
        if (b->measuring && now >= start + b->duration * NS_PER_S) {
            break;
        }
        if (evr_client_poll(b->c, POLL_MS) < 0) {
            evr_err_set(&b->err, EVR_EIO, "%s", evr_client_problem(b->c));
            b->failed_gen = true;
        }
        if (tty) {
            progress(b, evr_now_ns(), t0, &last_ns, &last_done);
        }
    }
    b->seconds = (double)(evr_now_ns() - start) / 1e9;
    b->measuring = false;
    if (tty) {
        fprintf(stderr, "\n");
    }
    drain(b);
    status_into(b, b->after);
    return b->failed_gen ? 1 : 0;
}

/* ------------------------------------------------------------ results */

static void counters(struct bench *b)
{
    for (uint32_t i = 0; i < evr_client_replicas(b->c); i++) {
        const struct evr_replica_status *x = &b->before[i], *y = &b->after[i];
        if (y->reachable && b->mode == NULL) {
            b->mode = cli_mode_name(y->mode);
        }
        if (!x->reachable || !y->reachable ||
            y->ncounters <= EVR_STATUS_repairs ||
            x->ncounters <= EVR_STATUS_repairs) {
            continue;
        }
        const uint64_t *u = x->counters, *v = y->counters;
        uint64_t batches = v[EVR_STATUS_batches_applied] -
                           u[EVR_STATUS_batches_applied];
        b->batches = batches > b->batches ? batches : b->batches;
        b->rollbacks += v[EVR_STATUS_rollbacks] - u[EVR_STATUS_rollbacks];
        b->repairs += v[EVR_STATUS_repairs] - u[EVR_STATUS_repairs];
    }
}

static void print_report(const struct bench *b)
{
    printf("bench: app %s, %llu clients, %.1f s measured after %llu s "
           "warmup, cluster mode %s, %u replicas\n",
           b->app_name, (unsigned long long)b->clients, b->seconds,
           (unsigned long long)b->warmup, b->mode ? b->mode : "unknown",
           evr_client_replicas(b->c));
    printf("ops %llu (%.0f ops/s), errors %llu (%llu replies with status "
           "!= 0, %llu requests failed)\n",
           (unsigned long long)b->ops, (double)b->ops / b->seconds,
           (unsigned long long)(b->app_errors + b->failed),
           (unsigned long long)b->app_errors, (unsigned long long)b->failed);
    printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  (mean %.2f, max "
           "%.2f)\n",
           hist_ms(&b->all, 0.5), hist_ms(&b->all, 0.9),
           hist_ms(&b->all, 0.99),
           b->all.n ? b->all.sum_us / 1000.0 / (double)b->all.n : 0.0,
           (double)b->all.max_us / 1000.0);
    printf("  %-22s %10s %8s %9s %9s %9s\n", "kind", "ops", "errors",
           "p50 ms", "p90 ms", "p99 ms");
    for (int i = 0; i < b->nkinds; i++) {
        const struct kind *k = &b->kinds[i];
        printf("  %-22s %10llu %8llu %9.2f %9.2f %9.2f\n", k->name,
               (unsigned long long)k->lat.n, (unsigned long long)k->errors,
               hist_ms(&k->lat, 0.5), hist_ms(&k->lat, 0.9),
               hist_ms(&k->lat, 0.99));
    }
    printf("cluster, during the window: %llu batches (the most one replica "
           "applied), %llu rollbacks, %llu repairs (summed over "
           "replicas)\n",
           (unsigned long long)b->batches, (unsigned long long)b->rollbacks,
           (unsigned long long)b->repairs);
}

static int write_json(const struct bench *b)
{
    struct json j;
    struct evr_client_stats cs;
    evr_client_stats(b->c, &cs);
    json_begin(&j);
    /* top-level keys first: evr cluster reads the first "ops", "p50"... */
    json_num(&j, "ops", (double)b->ops);
    json_num(&j, "errors", (double)(b->app_errors + b->failed));
    json_num(&j, "app_errors", (double)b->app_errors);
    json_num(&j, "failed", (double)b->failed);
    json_num(&j, "seconds", b->seconds);
    json_num(&j, "throughput_ops", (double)b->ops / b->seconds);
    json_obj_begin(&j, "latency_ms");
    json_num(&j, "p50", hist_ms(&b->all, 0.5));
    json_num(&j, "p90", hist_ms(&b->all, 0.9));
    json_num(&j, "p99", hist_ms(&b->all, 0.99));
    json_num(&j, "max", (double)b->all.max_us / 1000.0);
    json_obj_end(&j);
    json_u64(&j, "rollbacks", b->rollbacks);
    json_u64(&j, "repairs", b->repairs);
    json_u64(&j, "batches", b->batches);
    json_str(&j, "app", b->app_name);
    json_u64(&j, "clients", b->clients);
    json_u64(&j, "duration", b->duration);
    json_u64(&j, "warmup", b->warmup);
    json_u64(&j, "seed", b->seed);
    json_str(&j, "mode", b->mode ? b->mode : "unknown");
    json_u64(&j, "replicas", evr_client_replicas(b->c));
    json_u64(&j, "client_resends", cs.resends);
    json_u64(&j, "client_disconnects", cs.disconnects);
    json_obj_begin(&j, "kinds");
    for (int i = 0; i < b->nkinds; i++) {
        const struct kind *k = &b->kinds[i];
        json_obj_begin(&j, k->name);
        json_u64(&j, "ops", k->lat.n);
        json_u64(&j, "errors", k->errors);
        json_num(&j, "p50", hist_ms(&k->lat, 0.5));
        json_num(&j, "p90", hist_ms(&k->lat, 0.9));
        json_num(&j, "p99", hist_ms(&k->lat, 0.99));
        json_obj_end(&j);
    }
    json_obj_end(&j);
    return json_write(&j, "bench", b->json);
}

/* ------------------------------------------------------------ setup */

static void help(void)
{
    printf("usage: evr bench --cluster LIST [options] [application "
           "options]\n"
           "\n"
           "Closed-loop load: N clients (one session each, no think time)\n"
           "send the application's mix to the cluster for --duration\n"
           "seconds after --warmup; prints ops, errors, throughput, latency\n"
           "percentiles overall and per request kind, and the cluster's\n"
           "batches, rollbacks and repairs in the window (STATUS counters:\n"
           "rollbacks and repairs summed over replicas, batches the most one\n"
           "replica applied). errors: replies with a non-zero status plus\n"
           "requests that got no reply by the deadline. Application\n"
           "options must be the replicas' own (they shape the load).\n"
           "\n" CLI_CLIENT_HELP
           "  --app NAME           application (%s); default kv\n"
           "  --clients N          closed-loop clients, 1..%d (16)\n"
           "  --duration S         measured seconds (10)\n"
           "  --warmup S           seconds before measuring (0)\n"
           "  --seed S             client i's generator is seeded S + i (1)\n"
           "  --json FILE          write the results as JSON\n",
           evr_app_names(), EVR_CLIENT_SESSIONS_MAX);
    evr_app_print_usage(stdout);
}

static int parse(struct bench *b, int argc, char **argv, struct cli_args *a)
{
    int rc = cli_parse("bench", argc, argv, a, true);
    if (rc == 0 && a->npositional != 0) {
        fprintf(stderr, "evr bench: unexpected argument '%s'\n",
                a->positional[0]);
        rc = 2;
    }
    if (rc != 0) {
        return rc;
    }
    if (cli_get(a, "help")) {
        help();
        return -1;
    }
    b->app_name = cli_get(a, "app") ? cli_get(a, "app") : "kv";
    b->json = cli_get(a, "json");
    b->clients = 16;
    b->duration = 10;
    b->seed = 1;
    rc = cli_u64("bench", a, "clients", 1, EVR_CLIENT_SESSIONS_MAX,
                 &b->clients);
    rc = rc ? rc : cli_u64("bench", a, "duration", 1, 86400, &b->duration);
    rc = rc ? rc : cli_u64("bench", a, "warmup", 0, 3600, &b->warmup);
    rc = rc ? rc : cli_u64("bench", a, "seed", 0, UINT64_MAX, &b->seed);
    if (rc == 0 &&
        evr_app_open(b->app_name, a->rest, a->nrest, &b->app, &b->err) != 0) {
        fprintf(stderr, "evr bench: %s\n", b->err.msg);
        rc = 2;
    }
    return rc;
}

static int prepare(struct bench *b)
{
    b->gens = calloc(b->clients, sizeof *b->gens);
    b->slots = calloc(b->clients, sizeof *b->slots);
    if (b->gens == NULL || b->slots == NULL) {
        return evr_err_set(&b->err, EVR_ENOMEM, "out of memory");
    }
    evr_buf_init(&b->req, EVR_REQUEST_BYTES_MAX);
    for (uint32_t i = 0; i < b->clients; i++) {
        b->slots[i] = (struct slot){.b = b, .i = i};
        int rc = b->app.ops->gen_create(b->app.impl, b->seed + i,
                                        &b->gens[i], &b->err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void cleanup(struct bench *b)
{
    for (uint32_t i = 0; b->gens != NULL && i < b->clients; i++) {
        if (b->gens[i] != NULL) {
            b->app.ops->gen_destroy(b->gens[i]);
        }
    }
    free(b->gens);
    free(b->slots);
    evr_buf_free(&b->req);
    evr_client_free(b->c);
    evr_app_close(&b->app);
}

int evr_cmd_bench(int argc, char **argv)
{
    static struct bench b;
    static struct cli_args a;
    struct cli_opt opts[] = {
        CLI_CLIENT_OPTS,          {"app", false, NULL},
        {"clients", false, NULL}, {"duration", false, NULL},
        {"warmup", false, NULL},  {"seed", false, NULL},
        {"json", false, NULL},    {"help", true, NULL},
    };
    memset(&b, 0, sizeof b);
    a.opts = opts;
    a.nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = parse(&b, argc, argv, &a);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    rc = cli_client_open("bench", &a, (uint32_t)b.clients, &b.c);
    if (rc != 0) {
        evr_app_close(&b.app);
        return rc;
    }
    int status = prepare(&b) != 0 || run(&b) != 0 ? 1 : 0;
    if (status != 0) {
        fprintf(stderr, "evr bench: %s\n", b.err.msg);
    } else {
        counters(&b);
        print_report(&b);
        if (b.ops == 0) {
            fprintf(stderr, "evr bench: no request completed in the window "
                            "(%s)\n", evr_client_problem(b.c));
            status = 1;
        }
        if (b.json != NULL && write_json(&b) != 0) {
            status = 1;
        }
    }
    cleanup(&b);
    return status;
}
