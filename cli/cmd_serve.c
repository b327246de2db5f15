/* evr serve: one replica on the network (server/server.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cow_state/cow_state.h"
#include "server/server.h"

static void help(void)
{
    printf(
        "usage: evr serve --id I --cluster ADDR0,ADDR1,ADDR2 --data DIR\n"
        "                 [--app kv|tpcw] [--mode eve|agree-execute|"
        "unreplicated]\n"
        "                 [options] [application options]\n"
        "\n"
        "Runs replica I of the cluster whose replicas listen on ADDR0,...\n"
        "(host:port, in replica order; clients connect to any of them).\n"
        "DIR/state.db is the replica's SQLite database; a first start\n"
        "populates it deterministically from the application options, which\n"
        "must be the same on every replica. SIGTERM or SIGINT stops cleanly\n"
        "(state.db then holds the committed state); a restart after kill -9\n"
        "recovers from the other replicas. --mode unreplicated runs one\n"
        "process alone (one address, no protocol between replicas).\n"
        "\n"
        "options (default):\n"
        "  --cluster-id N        id every frame carries (1)\n"
        "  --threads T           execution threads (the cores; shared by\n"
        "                        the replicas when every address is a\n"
        "                        loopback one; at most 16)\n"
        "  --batch-size B        requests per batch at most (128)\n"
        "  --batch-delay-ms D    a lone request waits at most D ms for\n"
        "                        company (0: batches are cut as soon as the\n"
        "                        pipeline has room)\n"
        "  --depth K             batches in flight, uncommitted (8)\n"
        "  --heartbeat-ms M      primary's idle COMMIT interval (20)\n"
        "  --view-timeout-ms M   silence from the primary before a view\n"
        "                        change (1000)\n"
        "  --verify-timeout-ms M votes missing this long: roll back (200)\n"
        "  --connections-max N   open connections at most (1024)\n"
        "  --log-level L         error, warn, info or debug (info)\n"
        "  --storage S           memory: state.db is read into memory at\n"
        "                        start and written back at a clean stop\n"
        "                        (after a crash the replica recovers from\n"
        "                        its peers, as it does on disk); disk:\n"
        "                        SQLite's own files (memory when\n"
        "                        replicated, disk for unreplicated)\n"
        "\n");
    evr_app_print_usage(stdout);
}

static int split_cluster(const char *list, struct evr_server_opts *o,
                         char *copy, size_t n)
{
    snprintf(copy, n, "%s", list);
    o->replicas = 0;
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->replicas == EVR_REPLICAS_MAX) {
            fprintf(stderr, "evr serve: --cluster: at most %d replicas\n",
                    EVR_REPLICAS_MAX);
            return 2;
        }
        o->addrs[o->replicas++] = t;
    }
    if (o->replicas == 0 || o->replicas % 2 == 0) {
        fprintf(stderr, "evr serve: --cluster needs an odd number of "
                        "addresses, not %u\n", o->replicas);
        return 2;
    }
    return 0;
}

static int parse_numbers(const struct cli_args *a, struct evr_server_opts *o)
{
    const char *c = "serve";
    uint64_t v[9] = {o->id, o->cluster_id, (uint64_t)o->threads,
                     o->batch_size_max, o->batch_delay_ms, o->depth_max,
                     o->heartbeat_ms, o->view_timeout_ms,
                     o->verify_timeout_ms};
    uint64_t conns = o->connections_max;
    int rc = cli_u64(c, a, "id", 0, EVR_REPLICAS_MAX - 1, &v[0]);
    rc = rc ? rc : cli_u64(c, a, "cluster-id", 0, UINT64_MAX, &v[1]);
    rc = rc ? rc : cli_u64(c, a, "threads", 1, EVR_COW_WORKERS_MAX, &v[2]);
    rc = rc ? rc : cli_u64(c, a, "batch-size", 1, 65536, &v[3]);
    rc = rc ? rc : cli_u64(c, a, "batch-delay-ms", 0, 10000, &v[4]);
    rc = rc ? rc : cli_u64(c, a, "depth", 1, 1024, &v[5]);
    rc = rc ? rc : cli_u64(c, a, "heartbeat-ms", 1, 60000, &v[6]);
    rc = rc ? rc : cli_u64(c, a, "view-timeout-ms", 2, 600000, &v[7]);
    rc = rc ? rc : cli_u64(c, a, "verify-timeout-ms", 1, 600000, &v[8]);
    rc = rc ? rc : cli_u64(c, a, "connections-max", 4, 65536, &conns);
    o->id = (uint32_t)v[0];
    o->cluster_id = v[1];
    o->threads = (int)v[2];
    o->batch_size_max = (uint32_t)v[3];
    o->batch_delay_ms = (uint32_t)v[4];
    o->depth_max = (uint32_t)v[5];
    o->heartbeat_ms = (uint32_t)v[6];
    o->view_timeout_ms = (uint32_t)v[7];
    o->verify_timeout_ms = (uint32_t)v[8];
    o->connections_max = (uint32_t)conns;
    return rc;
}

static int parse_words(const struct cli_args *a, struct evr_server_opts *o)
{
    const char *mode = cli_get(a, "mode");
    if (mode != NULL) {
        int m = evr_server_mode_parse(mode);
        if (m < 0) {
            fprintf(stderr, "evr serve: --mode must be eve, agree-execute "
                            "or unreplicated, not '%s'\n", mode);
            return 2;
        }
        o->mode = (enum evr_server_mode)m;
    }
    const char *level = cli_get(a, "log-level");
    if (level != NULL) {
        int l = evr_log_level_parse(level);
        if (l < 0) {
            fprintf(stderr, "evr serve: --log-level must be error, warn, "
                            "info or debug, not '%s'\n", level);
            return 2;
        }
        o->log_level = (enum evr_log_level)l;
    }
    const char *storage = cli_get(a, "storage");
    if (storage != NULL && strcmp(storage, "memory") == 0) {
        o->storage = EVR_SERVER_STORAGE_MEMORY;
    } else if (storage != NULL && strcmp(storage, "disk") == 0) {
        o->storage = EVR_SERVER_STORAGE_DISK;
    } else if (storage != NULL) {
        fprintf(stderr, "evr serve: --storage must be memory or disk, not "
                        "'%s'\n", storage);
        return 2;
    }
    o->dir = cli_get(a, "data");
    if (o->dir == NULL || cli_get(a, "cluster") == NULL) {
        fprintf(stderr, "evr serve: --cluster and --data are required "
                        "(evr serve --help)\n");
        return 2;
    }
    return 0;
}

/* "kv keys=1000 value-size=100": what DIR/replica records. */
static void describe_app(const char *name, const struct cli_args *a,
                         char *out, size_t n)
{
    size_t k = (size_t)snprintf(out, n, "%s", name);
    for (int i = 0; i < a->nrest && k < n; i++) {
        k += (size_t)snprintf(out + k, n - k, " %s=%s", a->rest[i].name,
                              a->rest[i].value);
    }
}

int evr_cmd_serve(int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"id", false, NULL},           {"cluster", false, NULL},
        {"cluster-id", false, NULL},   {"data", false, NULL},
        {"app", false, NULL},          {"mode", false, NULL},
        {"threads", false, NULL},      {"batch-size", false, NULL},
        {"batch-delay-ms", false, NULL}, {"depth", false, NULL},
        {"heartbeat-ms", false, NULL}, {"view-timeout-ms", false, NULL},
        {"verify-timeout-ms", false, NULL},
        {"connections-max", false, NULL}, {"log-level", false, NULL},
        {"storage", false, NULL},         {"help", true, NULL},
    };
    static struct cli_args a;
    a.opts = opts;
    a.nopts = (int)(sizeof opts / sizeof opts[0]);
    int rc = cli_parse("serve", argc, argv, &a, true);
    if (rc != 0) {
        return rc;
    }
    if (cli_get(&a, "help")) {
        help();
        return 0;
    }
    if (a.npositional != 0) {
        fprintf(stderr, "evr serve: unexpected argument '%s'\n",
                a.positional[0]);
        return 2;
    }
    struct evr_server_opts o;
    evr_server_opts_default(&o);
    static char addrs[4096], desc[1024];
    rc = parse_numbers(&a, &o);
    rc = rc ? rc : parse_words(&a, &o);
    rc = rc ? rc : split_cluster(cli_get(&a, "cluster"), &o, addrs,
                                 sizeof addrs);
    if (rc == 0 && o.id >= o.replicas) {
        fprintf(stderr, "evr serve: --id %u, but --cluster names %u "
                        "replicas\n", o.id, o.replicas);
        rc = 2;
    }
    if (rc != 0) {
        return rc;
    }
    const char *app_name = cli_get(&a, "app") ? cli_get(&a, "app") : "kv";
    describe_app(app_name, &a, desc, sizeof desc);
    o.app_desc = desc;
    struct evr_app app;
    struct evr_err err = {0};
    if (evr_app_open(app_name, a.rest, a.nrest, &app, &err) != 0) {
        fprintf(stderr, "evr serve: %s\n", err.msg);
        return 2;
    }
    o.app = &app;
    rc = evr_server_run(&o, &err);
    if (rc != 0) {
        fprintf(stderr, "evr serve: %s\n", err.msg);
    }
    evr_app_close(&app);
    return rc == 0 ? 0 : 1;
}
