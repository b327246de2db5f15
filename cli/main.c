/* evr: execute-verify replication of SQLite services. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cow_state/cow_state.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: evr <command> [options]\n"
            "\n"
            "commands:\n"
            "  cluster      run a local cluster per mode, load it, compare\n"
            "  serve        run one replica of a cluster (or one alone)\n"
            "  kv           put, get or delete one key on a kv cluster\n"
            "  status       what every replica of a cluster says about "
            "itself\n"
            "  check        whether the replicas' committed digests agree\n"
            "  bench        closed-loop load on a cluster: throughput, "
            "latency\n"
            "  bench-exec   execute generated batches sequentially and in "
            "parallel on one\n"
            "               replica, compare digests, report the speedup\n"
            "  populate     write an application's start database to a file\n"
            "  digest       print the state digest of an SQLite database "
            "file\n"
            "  version      print the version\n"
            "\n"
            "Run 'evr <command> --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("evr %s (SQLite %s)\n", EVR_VERSION, sqlite3_libversion());
        return 0;
    }
    evr_sqlite_setup();
    if (strcmp(cmd, "digest") == 0) {
        return evr_cmd_digest(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "populate") == 0) {
        return evr_cmd_populate(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "cluster") == 0) {
        return evr_cmd_cluster(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "serve") == 0) {
        return evr_cmd_serve(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "kv") == 0) {
        return evr_cmd_kv(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "status") == 0) {
        return evr_cmd_status(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "check") == 0) {
        return evr_cmd_check(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "bench") == 0) {
        return evr_cmd_bench(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "bench-exec") == 0) {
        return evr_cmd_bench_exec(argc - 2, argv + 2);
    }
    fprintf(stderr, "evr: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
