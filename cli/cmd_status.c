/*
 * evr status: what every replica of a cluster says about itself (STATUS).
 * evr check: whether the replicas' committed states agree.
 *
 * check's rule. Each replica reports its applied op-number and the state
 * root there (the committed digest). Two reachable replicas at the same
 * applied op with different roots: diverged, exit 1 at once. Agreement
 * (exit 0) needs every reachable replica at the same applied op with the
 * same root, and at least a majority (n/2 + 1) of the n replicas reachable.
 * Replicas apply at slightly different moments, so while the applied ops
 * differ check asks again every 50 ms, up to --wait-ms; on an idle cluster
 * they line up within a heartbeat. If the wait runs out first, it says
 * which replicas were where and exits 1: not all could be compared.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/clock.h"
#include "include/evr/client.h"
#include "replication/vr.h"

#define STATUS_TIMEOUT_MS_DEFAULT 2000
#define CHECK_WAIT_MS_DEFAULT 10000
#define CHECK_REPOLL_MS 50

static const char *role(const struct evr_replica_status *s)
{
    if (!s->reachable) {
        return "-";
    }
    if (s->primary) {
        return "primary";
    }
    return s->status == EVR_VR_NORMAL ? "backup" : "-";
}

static const char *status_name(uint8_t st)
{
    return st <= EVR_VR_RECOVERING ? evr_vr_status_name((enum evr_vr_status)st)
                                   : "?";
}

/* ------------------------------------------------------------ status */

static void print_status(struct evr_client *c,
                         const struct evr_replica_status *st)
{
    printf("%-3s %-8s %6s %-12s %10s %10s %10s  %s\n", "id", "role", "view",
           "status", "op", "commit", "applied", "digest");
    for (uint32_t i = 0; i < evr_client_replicas(c); i++) {
        const struct evr_replica_status *s = &st[i];
        if (!s->reachable) {
            printf("%-3u %-8s unreachable (%s)\n", i, "-",
                   evr_client_addr(c, i));
            continue;
        }
        char hex[EVR_H128_HEX_LEN + 1];
        evr_h128_to_hex(s->root, hex);
        printf("%-3u %-8s %6llu %-12s %10llu %10llu %10llu  %s\n",
               s->replica, role(s), (unsigned long long)s->view, status_name(s->status),
               (unsigned long long)s->op, (unsigned long long)s->commit,
               (unsigned long long)s->applied, hex);
    }
}

static void json_replica(struct json *j, struct evr_client *c, uint32_t i,
                         const struct evr_replica_status *s)
{
    char hex[EVR_H128_HEX_LEN + 1];
    json_obj_begin(j, NULL);
    json_u64(j, "id", s->reachable ? s->replica : i);
    json_str(j, "addr", evr_client_addr(c, i));
    json_bool(j, "reachable", s->reachable);
    json_str(j, "role", role(s));
    if (s->reachable) {
        json_str(j, "status", status_name(s->status));
        json_str(j, "mode", cli_mode_name(s->mode));
        json_u64(j, "view", s->view);
        json_u64(j, "op", s->op);
        json_u64(j, "commit", s->commit);
        json_u64(j, "applied", s->applied);
        evr_h128_to_hex(s->root, hex);
        json_str(j, "digest", hex);
        evr_h128_to_hex(s->token, hex);
        json_str(j, "token", hex);
        json_obj_begin(j, "counters");
        for (uint32_t k = 0; k < s->ncounters; k++) {
            json_u64(j, evr_status_counter_name(k), s->counters[k]);
        }
        json_obj_end(j);
    }
    json_obj_end(j);
}

static int write_status_json(struct evr_client *c,
                             const struct evr_replica_status *st,
                             const char *path)
{
    struct json j;
    json_begin(&j);
    json_u64(&j, "replicas", evr_client_replicas(c));
    json_arr_begin(&j, "replica");
    for (uint32_t i = 0; i < evr_client_replicas(c); i++) {
        json_replica(&j, c, i, &st[i]);
    }
    json_arr_end(&j);
    return json_write(&j, "status", path);
}

static void status_help(void)
{
    printf("usage: evr status --cluster LIST [options]\n"
           "\n"
           "Asks every replica for its status and prints one line each: id\n"
           "(the one it reports; list position when unreachable),\n"
           "role (primary, backup, or - when unreachable or changing view),\n"
           "view, status, op-number, commit-number, applied op-number and\n"
           "the committed state digest (state root of the applied op).\n"
           "Exit 0 when every replica answered, 1 otherwise.\n"
           "\n" CLI_CLIENT_HELP
           "  --timeout-ms M       wait this long for answers (%d)\n"
           "  --json FILE          also write everything, counters "
           "included, as JSON\n",
           STATUS_TIMEOUT_MS_DEFAULT);
}

int evr_cmd_status(int argc, char **argv)
{
    struct cli_opt opts[] = {CLI_CLIENT_OPTS, {"timeout-ms", false, NULL},
                             {"json", false, NULL}, {"help", true, NULL}};
    struct cli_args a = {.opts = opts,
                         .nopts = (int)(sizeof opts / sizeof opts[0])};
    int rc = cli_parse("status", argc, argv, &a, false);
    if (rc == 0 && a.npositional != 0) {
        fprintf(stderr, "evr status: unexpected argument '%s'\n",
                a.positional[0]);
        rc = 2;
    }
    if (rc != 0 || cli_get(&a, "help")) {
        if (rc == 0) {
            status_help();
        }
        return rc;
    }
    uint64_t timeout_ms = STATUS_TIMEOUT_MS_DEFAULT;
    rc = cli_u64("status", &a, "timeout-ms", 1, 3600000, &timeout_ms);
    struct evr_client *c = NULL;
    rc = rc ? rc : cli_client_open("status", &a, 1, &c);
    if (rc != 0) {
        return rc;
    }
    struct evr_replica_status st[EVR_CLIENT_REPLICAS_MAX];
    int got = evr_client_status(c, st, (uint32_t)timeout_ms);
    if (got >= 0) {
        print_status(c, st);
    }
    int status = got == (int)evr_client_replicas(c) ? 0 : 1;
    const char *json = cli_get(&a, "json");
    if (got >= 0 && json != NULL && write_status_json(c, st, json) != 0) {
        status = 1;
    }
    evr_client_free(c);
    return status;
}

/* ------------------------------------------------------------ check */

/* 1: diverged (printed); 0: agreement (printed); -1: not yet. */
static int compare(struct evr_client *c, const struct evr_replica_status *st)
{
    uint32_t n = evr_client_replicas(c), reachable = 0, same = 0;
    const struct evr_replica_status *ref = NULL;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = i + 1; st[i].reachable && k < n; k++) {
            if (st[k].reachable && st[k].applied == st[i].applied &&
                !evr_h128_eq(st[k].root, st[i].root)) {
                char x[EVR_H128_HEX_LEN + 1], y[EVR_H128_HEX_LEN + 1];
                evr_h128_to_hex(st[i].root, x);
                evr_h128_to_hex(st[k].root, y);
                printf("check: DIVERGED: at applied op %llu replica %u has "
                       "%s, replica %u has %s\n",
                       (unsigned long long)st[i].applied, i, x, k, y);
                return 1;
            }
        }
        if (st[i].reachable) {
            reachable++;
            ref = ref ? ref : &st[i];
            same += st[i].applied == ref->applied;
        }
    }
    if (ref != NULL && same == reachable && reachable >= n / 2 + 1) {
        char hex[EVR_H128_HEX_LEN + 1];
        evr_h128_to_hex(ref->root, hex);
        printf("check: %u of %u replicas agree at applied op %llu: digest "
               "%s%s\n", reachable, n, (unsigned long long)ref->applied, hex,
               reachable < n ? " (the others unreachable)" : "");
        return 0;
    }
    return -1;
}

/* The replicas' positions when the wait ran out. */
static void explain(struct evr_client *c, const struct evr_replica_status *st,
                    uint64_t wait_ms)
{
    uint32_t n = evr_client_replicas(c);
    printf("check: not compared: after %llu ms", (unsigned long long)wait_ms);
    for (uint32_t i = 0; i < n; i++) {
        if (st[i].reachable) {
            printf("%s replica %u at applied op %llu", i ? "," : "", i,
                   (unsigned long long)st[i].applied);
        } else {
            printf("%s replica %u unreachable", i ? "," : "", i);
        }
    }
    printf(" (agreement needs a majority of %u, all reachable ones at one "
           "applied op)\n", n / 2 + 1);
}

static int check_loop(struct evr_client *c, uint64_t wait_ms)
{
    struct evr_replica_status st[EVR_CLIENT_REPLICAS_MAX];
    uint64_t end = evr_now_ns() + wait_ms * 1000000ull;
    for (;;) {
        uint64_t now = evr_now_ns();
        uint64_t left_ms = now < end ? (end - now) / 1000000ull : 0;
        uint32_t t = left_ms < STATUS_TIMEOUT_MS_DEFAULT
                         ? (uint32_t)left_ms + 1
                         : STATUS_TIMEOUT_MS_DEFAULT;
        if (evr_client_status(c, st, t) < 0) {
            fprintf(stderr, "evr check: %s\n", evr_client_problem(c));
            return 1;
        }
        int rc = compare(c, st);
        if (rc >= 0) {
            return rc;
        }
        if (evr_now_ns() >= end) {
            explain(c, st, wait_ms);
            return 1;
        }
        evr_client_poll(c, CHECK_REPOLL_MS);
    }
}

static void check_help(void)
{
    printf("usage: evr check --cluster LIST [options]\n"
           "\n"
           "Compares the committed state digests of the replicas: exit 1 if\n"
           "two replicas at the same applied op-number have different\n"
           "digests. Exit 0 when every reachable replica is at the same\n"
           "applied op with the same digest and a majority is reachable;\n"
           "replicas at different applied ops are asked again every %d ms\n"
           "until they line up (an idle cluster) or the wait runs out (then\n"
           "exit 1, saying where each was). Prints one line.\n"
           "\n" CLI_CLIENT_HELP
           "  --wait-ms M          how long to wait for the replicas to line "
           "up (%d)\n",
           CHECK_REPOLL_MS, CHECK_WAIT_MS_DEFAULT);
}

int evr_cmd_check(int argc, char **argv)
{
    struct cli_opt opts[] = {CLI_CLIENT_OPTS, {"wait-ms", false, NULL},
                             {"help", true, NULL}};
    struct cli_args a = {.opts = opts,
                         .nopts = (int)(sizeof opts / sizeof opts[0])};
    int rc = cli_parse("check", argc, argv, &a, false);
    if (rc == 0 && a.npositional != 0) {
        fprintf(stderr, "evr check: unexpected argument '%s'\n",
                a.positional[0]);
        rc = 2;
    }
    if (rc != 0 || cli_get(&a, "help")) {
        if (rc == 0) {
            check_help();
        }
        return rc;
    }
    uint64_t wait_ms = CHECK_WAIT_MS_DEFAULT;
    rc = cli_u64("check", &a, "wait-ms", 0, 86400000, &wait_ms);
    struct evr_client *c = NULL;
    rc = rc ? rc : cli_client_open("check", &a, 1, &c);
    if (rc != 0) {
        return rc;
    }
    rc = check_loop(c, wait_ms);
    evr_client_free(c);
    return rc;
}
