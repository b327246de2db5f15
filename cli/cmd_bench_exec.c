/*
 * evr bench-exec: one replica, no network. Populates a start state,
 * generates batches of the application's mix, and runs them from copies of
 * the same start state:
 *
 *   sequential   batch order, one thread (the agree-execute baseline)
 *   parallel     the mixer's sub-batches on T threads (Eve's execution)
 *   [no-capture] parallel with change capture off: the cost of capture and
 *                digests (benchmark only; a replica always captures)
 *   [rollback]   parallel, then roll back and re-execute sequentially: the
 *                cost of repairing a divergence
 *
 * Each mode runs --repeat times, alternating which goes first; figures are
 * medians. The mixer's plan is conflict-equivalent to batch order, so with
 * correct conflict sets the parallel state digest and every batch token
 * equal the sequential ones; bench-exec checks and reports that.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "executor/batchset.h"
#include "mixer/mixer.h"

#define REPEAT_MAX 50
#define KINDS_MAX 32

enum run_mode { RUN_SEQ, RUN_PAR, RUN_PAR_NOCAPTURE, RUN_ROLLBACK, RUN_MODES };

static const char *const mode_names[RUN_MODES] = {
    "sequential", "parallel", "parallel, no capture",
    "rollback + re-execute"};

struct run {
    double seconds;
    evr_h128 digest;   /* state digest after the last batch */
    evr_h128 chain;    /* hash of every batch token, in order */
    uint64_t subbatches;
    uint64_t failed;
    uint64_t retries;
    double capture_seconds; /* hook + batch end, measured in place */
};

struct bench {
    const char *app_name;
    uint64_t threads, batches, batch_size, seed, repeat;
    const char *json;
    bool keep, capture_cost, rollback_cost;
    enum evr_txn_mode txn_mode;
    struct evr_app app;
    struct evr_batchset set;
    char dir[4096];
    char start[4200];
    char work[4200];
    double populate_seconds;
    long long db_bytes;
    struct run runs[RUN_MODES][REPEAT_MAX];
    int nruns[RUN_MODES];
    /* request kinds ("get", "home"): per request, and totals over the
     * sequential runs */
    int nkinds;
    const char *kind_name[KINDS_MAX];
    uint8_t *kind_of;
    uint64_t kind_count[KINDS_MAX];
    uint64_t kind_ns[KINDS_MAX];
    uint64_t kind_runs[KINDS_MAX];
    uint64_t kind_failed[KINDS_MAX];
};

static void help(void)
{
    printf(
        "usage: evr bench-exec [options] [application options]\n"
        "\n"
        "  --app NAME          application (%s); default kv\n"
        "  --threads T         worker threads for the parallel run (2)\n"
        "  --batches B         batches (500)\n"
        "  --batch-size S      requests per batch (256)\n"
        "  --seed N            seed of population and load (1)\n"
        "  --repeat R          runs of each mode; medians are reported (3)\n"
        "  --capture-cost      also run parallel with change capture off\n"
        "  --rollback-cost     also time rollback + sequential re-execution\n"
        "  --txn MODE          grouped (default: a savepoint per request in a\n"
        "                      shared transaction) or request (one "
        "transaction each)\n"
        "  --json FILE         write the results as JSON\n"
        "  --dir DIR           work directory (default: a new one in "
        "$TMPDIR)\n"
        "  --keep              keep the work directory\n",
        evr_app_names());
    evr_app_print_usage(stdout);
}

/* ------------------------------------------------------------ files */

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = in < 0 || out < 0 ? -1 : 0;
    static char buf[1 << 20];
    while (rc == 0) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n <= 0) {
            rc = n < 0 ? -1 : 0;
            break;
        }
        if (write(out, buf, (size_t)n) != n) {
            rc = -1;
        }
    }
    /* Written back before the timed run starts, so that the kernel's
     * writeback of the copy does not compete with it. */
    if (rc == 0 && out >= 0 && fdatasync(out) != 0) {
        rc = -1;
    }
    if (in >= 0) {
        close(in);
    }
    if (out >= 0 && close(out) != 0) {
        rc = -1;
    }
    return rc;
}

static void remove_db(const char *path)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[4300];
        snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        unlink(p);
    }
}

/* ------------------------------------------------------------ one run */

struct runner {
    struct evr_cow *cow;
    struct evr_executor *ex;
    struct evr_mixer *mixer;
    struct evr_hasher *chain;
};

static void runner_close(struct runner *r)
{
    evr_mixer_free(r->mixer);
    evr_executor_free(r->ex);
    evr_cow_close(r->cow);
    if (r->chain) {
        evr_hasher_free(r->chain);
    }
}

static int runner_open(struct bench *b, enum run_mode mode, struct runner *r,
                       struct evr_err *err)
{
    memset(r, 0, sizeof *r);
    remove_db(b->work);
    if (copy_file(b->start, b->work) != 0) {
        return evr_err_set(err, EVR_EIO, "copying '%s' to '%s': %s",
                           b->start, b->work, strerror(errno));
    }
    struct evr_cow_opts o;
    /* The calling thread is worker 0: T threads need T - 1 more. */
    int workers = mode == RUN_SEQ ? 0 : (int)b->threads - 1;
    evr_cow_opts_default(&o, b->work, workers);
    o.capture = mode != RUN_PAR_NOCAPTURE;
    int rc = evr_cow_open(&o, &r->cow, err);
    rc = rc ? rc
            : evr_executor_new(r->cow, &b->app, (uint32_t)b->batch_size,
                               &r->ex, err);
    rc = rc ? rc : evr_mixer_new((uint32_t)b->batch_size, &r->mixer, err);
    if (rc == 0) {
        evr_executor_set_txn_mode(r->ex, b->txn_mode);
    }
    if (rc == 0 && (r->chain = evr_hasher_new(0)) == NULL) {
        rc = evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        runner_close(r);
    }
    return rc;
}

/* Adds the sequential run's per-request times to the kinds' totals. */
static void account_kinds(struct bench *b, struct runner *r,
                          const struct evr_batch *batch)
{
    const struct evr_response *resp = evr_executor_responses(r->ex);
    size_t first = (size_t)(batch->req - b->set.reqs);
    for (uint32_t i = 0; i < batch->n; i++) {
        int k = b->kind_of[first + i];
        b->kind_ns[k] += resp[i].exec_ns;
        b->kind_runs[k]++;
        b->kind_failed[k] += resp[i].status != 0;
    }
}

/* Runs batch i; returns the seconds that count for this mode. */
static int run_batch(struct bench *b, struct runner *r, enum run_mode mode,
                     const struct evr_batch *batch, struct run *out,
                     struct evr_err *err)
{
    struct evr_plan plan;
    struct evr_batch_result res;
    uint64_t t0 = evr_now_ns();
    int rc = 0;
    if (mode != RUN_SEQ) {
        rc = evr_mixer_plan(r->mixer, batch->csets, batch->n, &plan, err);
        rc = rc ? rc
                : evr_execute_batch(r->ex, batch, EVR_EXEC_PARALLEL, &plan,
                                    &res, err);
        out->subbatches += plan.nsub;
    } else {
        rc = evr_execute_batch(r->ex, batch, EVR_EXEC_SEQUENTIAL, NULL, &res,
                               err);
        if (rc == 0) {
            account_kinds(b, r, batch);
        }
    }
    if (rc == 0 && mode == RUN_ROLLBACK) {
        /* What counts is the repair: roll back, re-execute sequentially. */
        t0 = evr_now_ns();
        rc = evr_cow_rollback(r->cow, batch->op, err);
        rc = rc ? rc
                : evr_execute_batch(r->ex, batch, EVR_EXEC_SEQUENTIAL, NULL,
                                    &res, err);
    }
    rc = rc ? rc : evr_cow_commit(r->cow, batch->op, err);
    out->seconds += (double)(evr_now_ns() - t0) / 1e9;
    if (rc == 0) {
        evr_hasher_update_h128(r->chain, res.token);
    }
    return rc;
}

static int run_once(struct bench *b, enum run_mode mode, struct run *out,
                    struct evr_err *err)
{
    struct runner r;
    memset(out, 0, sizeof *out);
    int rc = runner_open(b, mode, &r, err);
    for (uint32_t i = 0; rc == 0 && i < b->set.nbatches; i++) {
        rc = run_batch(b, &r, mode, &b->set.batches[i], out, err);
        if (rc != 0) {
            evr_err_wrap(err, rc, "%s run, batch %u", mode_names[mode], i + 1);
        }
    }
    if (rc == 0) {
        struct evr_exec_stats st;
        evr_executor_stats(r.ex, &st);
        out->failed = st.failed;
        out->retries = st.retries;
        struct evr_cow_stats cs;
        evr_cow_stats(r.cow, &cs);
        out->capture_seconds =
            (double)(cs.hook_ns + cs.end_ns + cs.refresh_ns) / 1e9;
        out->digest = evr_cow_digest(r.cow);
        out->chain = evr_hasher_digest(r.chain);
        runner_close(&r);
    }
    remove_db(b->work);
    return rc;
}

/* ------------------------------------------------------------ figures */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_seconds(const struct bench *b, enum run_mode m)
{
    double v[REPEAT_MAX];
    int n = b->nruns[m];
    for (int i = 0; i < n; i++) {
        v[i] = b->runs[m][i].seconds;
    }
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Every captured run ends in the sequential state with the same tokens. */
/* Median over rounds of seconds(num) / seconds(den), each ratio taken
 * within one round: paired, so slow phases of the machine cancel out. */
static double median_ratio(const struct bench *b, enum run_mode num,
                           enum run_mode den)
{
    double v[REPEAT_MAX];
    int n = b->nruns[num] < b->nruns[den] ? b->nruns[num] : b->nruns[den];
    for (int i = 0; i < n; i++) {
        v[i] = b->runs[num][i].seconds / b->runs[den][i].seconds;
    }
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median over parallel runs of the time spent capturing, as a fraction. */
static double capture_in_place(const struct bench *b)
{
    double v[REPEAT_MAX];
    int n = b->nruns[RUN_PAR];
    for (int i = 0; i < n; i++) {
        v[i] = b->runs[RUN_PAR][i].capture_seconds / b->runs[RUN_PAR][i].seconds;
    }
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static bool all_equal(const struct bench *b, bool tokens)
{
    const struct run *ref = &b->runs[RUN_SEQ][0];
    for (int m = 0; m < RUN_MODES; m++) {
        if (m == RUN_PAR_NOCAPTURE) {
            continue;
        }
        for (int i = 0; i < b->nruns[m]; i++) {
            const struct run *x = &b->runs[m][i];
            if (!evr_h128_eq(tokens ? x->chain : x->digest,
                             tokens ? ref->chain : ref->digest)) {
                return false;
            }
        }
    }
    return true;
}

static uint64_t requests(const struct bench *b)
{
    return b->batches * b->batch_size;
}

static void print_row(const struct bench *b, enum run_mode m)
{
    if (b->nruns[m] == 0) {
        return;
    }
    double s = median_seconds(b, m);
    char name[64];
    snprintf(name, sizeof name, "%s%s", mode_names[m],
             m == RUN_SEQ ? "" : "");
    const struct run *r0 = &b->runs[m][0];
    if (m == RUN_SEQ) {
        printf("  %-24s %9.3f %12.0f %10s %8s\n", name, s,
               (double)requests(b) / s, "1", "-");
    } else {
        double subs = (double)r0->subbatches / (double)b->batches;
        printf("  %-24s %9.3f %12.0f %10.2f %8.1f\n", name, s,
               (double)requests(b) / s, subs, (double)b->batch_size / subs);
    }
}

static void print_report(const struct bench *b)
{
    char cpu[256];
    cli_cpu_model(cpu, sizeof cpu);
    printf("bench-exec: app %s, %llu batches x %llu requests, %llu threads, "
           "%s transactions, seed %llu, median of %llu runs\n",
           b->app_name, (unsigned long long)b->batches,
           (unsigned long long)b->batch_size, (unsigned long long)b->threads,
           b->txn_mode == EVR_TXN_GROUPED ? "grouped" : "per-request",
           (unsigned long long)b->seed, (unsigned long long)b->repeat);
    printf("machine: %d cores, %s; start state %.1f MB, populated in %.2f s\n",
           cli_nproc(), cpu, (double)b->db_bytes / 1e6, b->populate_seconds);
    printf("  %-24s %9s %12s %10s %8s\n", "mode", "seconds", "requests/s",
           "sub/batch", "width");
    for (int m = 0; m < RUN_MODES; m++) {
        print_row(b, (enum run_mode)m);
    }
    printf("speedup (parallel over sequential, median of paired runs): "
           "%.2fx\n", 1.0 / median_ratio(b, RUN_PAR, RUN_SEQ));
    printf("state digests equal: %s; batch tokens equal: %s "
           "(the mixer's order is conflict-equivalent to batch order)\n",
           all_equal(b, false) ? "yes" : "NO", all_equal(b, true) ? "yes"
                                                                  : "NO");
    if (b->nruns[RUN_PAR_NOCAPTURE] > 0) {
        printf("capture + digest cost: %.1f%% of parallel time (capture off "
               "vs on); %.1f%% measured in place (hook + re-reads + batch "
               "end, on any thread)\n",
               100.0 * (1.0 - median_ratio(b, RUN_PAR_NOCAPTURE, RUN_PAR)),
               100.0 * capture_in_place(b));
    }
    if (b->nruns[RUN_ROLLBACK] > 0) {
        printf("rollback + sequential re-execution: %.2fx plain sequential\n",
               median_ratio(b, RUN_ROLLBACK, RUN_SEQ));
    }
    if (b->nkinds > 1) {
        printf("per request kind (sequential runs): count, mean execution "
               "time, refused or failed\n");
        for (int i = 0; i < b->nkinds; i++) {
            double us = b->kind_runs[i] ? (double)b->kind_ns[i] / 1e3 /
                                              (double)b->kind_runs[i]
                                        : 0;
            printf("  %-24s %9llu %10.1f us %8llu\n", b->kind_name[i],
                   (unsigned long long)b->kind_count[i], us,
                   (unsigned long long)(b->nruns[RUN_SEQ]
                                            ? b->kind_failed[i] /
                                                  (uint64_t)b->nruns[RUN_SEQ]
                                            : 0));
        }
    }
    uint64_t failed = b->runs[RUN_SEQ][0].failed;
    if (failed > 0) {
        printf("note: %llu requests failed in the sequential run (their "
               "status is part of the token)\n",
               (unsigned long long)failed);
    }
}

static void json_run_list(struct json *j, const struct bench *b,
                          enum run_mode m)
{
    json_arr_begin(j, "runs_seconds");
    for (int i = 0; i < b->nruns[m]; i++) {
        json_arr_num(j, b->runs[m][i].seconds);
    }
    json_arr_end(j);
}

static void json_kinds(struct json *j, const struct bench *b)
{
    json_obj_begin(j, "interactions");
    for (int i = 0; i < b->nkinds; i++) {
        json_u64(j, b->kind_name[i], b->kind_count[i]);
    }
    json_obj_end(j);
    json_obj_begin(j, "interaction_mean_us");
    for (int i = 0; i < b->nkinds; i++) {
        json_num(j, b->kind_name[i],
                 b->kind_runs[i] ? (double)b->kind_ns[i] / 1e3 /
                                       (double)b->kind_runs[i]
                                 : 0.0);
    }
    json_obj_end(j);
    json_obj_begin(j, "interaction_failed");
    for (int i = 0; i < b->nkinds; i++) {
        json_u64(j, b->kind_name[i],
                 b->nruns[RUN_SEQ] ? b->kind_failed[i] /
                                         (uint64_t)b->nruns[RUN_SEQ]
                                   : 0);
    }
    json_obj_end(j);
}

static int write_json(const struct bench *b)
{
    struct json j;
    char cpu[256], hex[EVR_H128_HEX_LEN + 1];
    double seq = median_seconds(b, RUN_SEQ);
    double par = median_seconds(b, RUN_PAR);
    const struct run *p0 = &b->runs[RUN_PAR][0];
    json_begin(&j);
    json_str(&j, "app", b->app_name);
    json_u64(&j, "threads", b->threads);
    json_u64(&j, "requests", requests(b));
    json_u64(&j, "batches", b->batches);
    json_u64(&j, "batch_size", b->batch_size);
    json_u64(&j, "seed", b->seed);
    json_u64(&j, "repeat", b->repeat);
    json_str(&j, "txn", b->txn_mode == EVR_TXN_GROUPED ? "grouped"
                                                       : "request");
    json_obj_begin(&j, "machine");
    cli_cpu_model(cpu, sizeof cpu);
    json_u64(&j, "nproc", (uint64_t)cli_nproc());
    json_str(&j, "cpu", cpu);
    json_obj_end(&j);
    json_obj_begin(&j, "populate");
    json_num(&j, "seconds", b->populate_seconds);
    json_num(&j, "bytes", (double)b->db_bytes);
    json_obj_end(&j);
    json_obj_begin(&j, "sequential");
    json_num(&j, "seconds", seq);
    json_num(&j, "throughput_rps", (double)requests(b) / seq);
    json_run_list(&j, b, RUN_SEQ);
    json_obj_end(&j);
    json_obj_begin(&j, "parallel");
    json_num(&j, "seconds", par);
    json_num(&j, "throughput_rps", (double)requests(b) / par);
    json_num(&j, "subbatches_mean", (double)p0->subbatches / b->batches);
    json_num(&j, "width_mean",
             (double)requests(b) / (double)p0->subbatches);
    json_u64(&j, "busy_retries", p0->retries);
    json_run_list(&j, b, RUN_PAR);
    json_obj_end(&j);
    json_num(&j, "speedup", 1.0 / median_ratio(b, RUN_PAR, RUN_SEQ));
    json_num(&j, "speedup_of_medians", seq / par);
    evr_h128_to_hex(b->runs[RUN_SEQ][0].digest, hex);
    json_str(&j, "digest_sequential", hex);
    evr_h128_to_hex(p0->digest, hex);
    json_str(&j, "digest_parallel", hex);
    json_bool(&j, "digests_equal", all_equal(b, false));
    json_bool(&j, "tokens_equal", all_equal(b, true));
    json_u64(&j, "failed_requests", b->runs[RUN_SEQ][0].failed);
    if (b->nruns[RUN_PAR_NOCAPTURE] > 0) {
        double off = median_seconds(b, RUN_PAR_NOCAPTURE);
        json_obj_begin(&j, "capture_cost");
        json_num(&j, "parallel_no_capture_seconds", off);
        json_num(&j, "fraction_of_parallel",
                 1.0 - median_ratio(b, RUN_PAR_NOCAPTURE, RUN_PAR));
        json_num(&j, "fraction_measured_in_place", capture_in_place(b));
        json_run_list(&j, b, RUN_PAR_NOCAPTURE);
        json_obj_end(&j);
    }
    if (b->nruns[RUN_ROLLBACK] > 0) {
        double rb = median_seconds(b, RUN_ROLLBACK);
        json_obj_begin(&j, "rollback_cost");
        json_num(&j, "rollback_reexecute_seconds", rb);
        json_num(&j, "ratio_to_sequential",
                 median_ratio(b, RUN_ROLLBACK, RUN_SEQ));
        json_run_list(&j, b, RUN_ROLLBACK);
        json_obj_end(&j);
    }
    json_kinds(&j, b);
    return json_write(&j, "bench-exec", b->json);
}

/* ------------------------------------------------------------ setup */

static int parse(struct bench *b, int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"app", false, NULL},       {"threads", false, NULL},
        {"batches", false, NULL},   {"batch-size", false, NULL},
        {"seed", false, NULL},      {"repeat", false, NULL},
        {"json", false, NULL},      {"dir", false, NULL},
        {"keep", true, NULL},       {"capture-cost", true, NULL},
        {"rollback-cost", true, NULL}, {"help", true, NULL},
        {"txn", false, NULL},
    };
    static struct cli_args a;
    a.opts = opts;
    a.nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("bench-exec", argc, argv, &a, true);
    if (rc != 0) {
        return rc;
    }
    if (cli_get(&a, "help")) {
        help();
        return -1;
    }
    if (a.npositional != 0) {
        fprintf(stderr, "evr bench-exec: unexpected argument '%s'\n",
                a.positional[0]);
        return 2;
    }
    b->app_name = cli_get(&a, "app") ? cli_get(&a, "app") : "kv";
    b->threads = 2;
    b->batches = 500;
    b->batch_size = 256;
    b->seed = 1;
    b->repeat = 3;
    rc = cli_u64("bench-exec", &a, "threads", 1, EVR_COW_WORKERS_MAX,
                 &b->threads);
    rc = rc ? rc : cli_u64("bench-exec", &a, "batches", 1, 1000000, &b->batches);
    rc = rc ? rc
            : cli_u64("bench-exec", &a, "batch-size", 1, EVR_BATCH_SIZE_MAX,
                      &b->batch_size);
    rc = rc ? rc : cli_u64("bench-exec", &a, "seed", 0, UINT64_MAX, &b->seed);
    rc = rc ? rc : cli_u64("bench-exec", &a, "repeat", 1, REPEAT_MAX, &b->repeat);
    if (rc != 0) {
        return rc;
    }
    b->json = cli_get(&a, "json");
    b->keep = cli_get(&a, "keep") != NULL;
    b->capture_cost = cli_get(&a, "capture-cost") != NULL;
    b->rollback_cost = cli_get(&a, "rollback-cost") != NULL;
    const char *txn = cli_get(&a, "txn");
    if (txn != NULL && strcmp(txn, "grouped") != 0 &&
        strcmp(txn, "request") != 0) {
        fprintf(stderr, "evr bench-exec: --txn must be grouped or request, "
                        "not '%s'\n", txn);
        return 2;
    }
    b->txn_mode = txn != NULL && strcmp(txn, "request") == 0
                      ? EVR_TXN_PER_REQUEST
                      : EVR_TXN_GROUPED;
    const char *dir = cli_get(&a, "dir");
    if (dir != NULL) {
        snprintf(b->dir, sizeof b->dir, "%s", dir);
    }
    struct evr_err err = {0};
    /* The population follows --seed unless the app's own seed is given. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)b->seed);
    bool has_seed = false;
    for (int i = 0; i < a.nrest; i++) {
        has_seed = has_seed || strcmp(a.rest[i].name, "seed") == 0;
    }
    if (!has_seed && a.nrest < 64) {
        a.rest[a.nrest++] = (struct evr_app_opt){"seed", seed};
    }
    if (evr_app_open(b->app_name, a.rest, a.nrest, &b->app, &err) != 0) {
        fprintf(stderr, "evr bench-exec: %s\n", err.msg);
        return 2;
    }
    return 0;
}

static int prepare(struct bench *b, struct evr_err *err)
{
    if (b->dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(b->dir, sizeof b->dir, "%s/evr-bench-XXXXXX",
                 tmp ? tmp : "/tmp");
        if (mkdtemp(b->dir) == NULL) {
            return evr_err_set(err, EVR_EIO, "creating '%s': %s", b->dir,
                               strerror(errno));
        }
    } else if (mkdir(b->dir, 0755) != 0 && errno != EEXIST) {
        return evr_err_set(err, EVR_EIO, "creating '%s': %s", b->dir,
                           strerror(errno));
    }
    snprintf(b->start, sizeof b->start, "%s/start.db", b->dir);
    snprintf(b->work, sizeof b->work, "%s/run.db", b->dir);
    remove_db(b->start);
    uint64_t t0 = evr_now_ns();
    int rc = evr_app_populate_file(&b->app, b->start, err);
    b->populate_seconds = (double)(evr_now_ns() - t0) / 1e9;
    struct stat st;
    b->db_bytes = rc == 0 && stat(b->start, &st) == 0 ? st.st_size : 0;
    return rc ? rc
              : evr_batchset_generate(&b->app, (uint32_t)b->batches,
                                      (uint32_t)b->batch_size, b->seed,
                                      evr_app_start_us(&b->app), &b->set,
                                      err);
}

/* Names every request's kind once, for counts and per-kind times. */
static int classify_kinds(struct bench *b, struct evr_err *err)
{
    size_t total = (size_t)b->set.nbatches * b->set.batch_size;
    b->kind_of = calloc(total + 1, 1);
    if (b->kind_of == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < total; i++) {
        const struct evr_request *r = &b->set.reqs[i];
        const char *k = b->app.ops->kind(b->app.impl, r->data, r->len);
        int at = 0;
        while (at < b->nkinds && strcmp(b->kind_name[at], k) != 0) {
            at++;
        }
        if (at == b->nkinds) {
            if (b->nkinds == KINDS_MAX) {
                return evr_err_set(err, EVR_ELIMIT, "more than %d request "
                                   "kinds", KINDS_MAX);
            }
            b->kind_name[b->nkinds++] = k;
        }
        b->kind_of[i] = (uint8_t)at;
        b->kind_count[at]++;
    }
    return 0;
}

static int run_all(struct bench *b, struct evr_err *err)
{
    enum run_mode order[RUN_MODES];
    int n = 0;
    order[n++] = RUN_SEQ;
    order[n++] = RUN_PAR;
    if (b->capture_cost) {
        order[n++] = RUN_PAR_NOCAPTURE;
    }
    if (b->rollback_cost) {
        order[n++] = RUN_ROLLBACK;
    }
    for (uint64_t r = 0; r < b->repeat; r++) {
        for (int k = 0; k < n; k++) {
            /* Rotate the order each round so no mode always runs first. */
            enum run_mode m = order[(k + r) % (uint64_t)n];
            int rc = run_once(b, m, &b->runs[m][b->nruns[m]], err);
            if (rc != 0) {
                return rc;
            }
            b->nruns[m]++;
        }
    }
    return 0;
}

int evr_cmd_bench_exec(int argc, char **argv)
{
    static struct bench b;
    memset(&b, 0, sizeof b);
    int rc = parse(&b, argc, argv);
    if (rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    struct evr_err err = {0};
    rc = prepare(&b, &err);
    rc = rc ? rc : classify_kinds(&b, &err);
    rc = rc ? rc : run_all(&b, &err);
    if (rc == 0) {
        print_report(&b);
    } else {
        fprintf(stderr, "evr bench-exec: %s\n", err.msg);
    }
    int status = rc == 0 ? 0 : 1;
    if (rc == 0 && b.json != NULL) {
        status = write_json(&b);
    }
    if (rc == 0 && !(all_equal(&b, false) && all_equal(&b, true))) {
        fprintf(stderr, "evr bench-exec: parallel and sequential execution "
                        "disagree: the application's conflict sets are "
                        "wrong\n");
        status = 1;
    }
    evr_batchset_free(&b.set);
    free(b.kind_of);
    evr_app_close(&b.app);
    if (!b.keep && b.dir[0] != '\0') {
        remove_db(b.start);
        remove_db(b.work);
        rmdir(b.dir);
    }
    return status;
}
