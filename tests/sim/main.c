/*
 * evr-sim: runs the deterministic simulator.
 *
 *   evr-sim [--seeds N] [--start S]   seeds S..S+N-1 (default 100 from 1)
 *   SEED=S evr-sim                    one seed, with the protocol's log
 *   evr-sim --bench [--batch B]       protocol cost per request
 *
 * Ends with one summary line; exits 1 when any seed saw a violation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static int usage(void)
{
    fprintf(stderr, "usage: evr-sim [--seeds N] [--start S] [-v]\n"
                    "       SEED=S evr-sim\n"
                    "       evr-sim --bench [--batch B] [--replicas N]\n");
    return 2;
}

static int bench(int argc, char **argv)
{
    uint32_t batch = 128, replicas = 3;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--batch") == 0) {
            batch = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--replicas") == 0) {
            replicas = (uint32_t)strtoul(argv[i + 1], NULL, 10);
        } else {
            return usage();
        }
    }
    uint64_t done;
    double ns = sim_bench(replicas, batch, batch * 4, 400000, &done);
    printf("sim bench: replicas=%u batch=%u requests=%llu "
           "protocol_us_per_request=%.3f\n", replicas, batch,
           (unsigned long long)done, ns / 1000.0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        return bench(argc, argv);
    }
    uint64_t seeds = 100, start = 1;
    int verbose = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            seeds = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--start") == 0 && i + 1 < argc) {
            start = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "-v") == 0) {
            verbose = 2;
        } else {
            return usage();
        }
    }
    const char *one = getenv("SEED");
    if (one != NULL && *one != '\0') {
        start = strtoull(one, NULL, 10);
        seeds = 1;
        verbose = 2;
    }
    struct sim_totals t = {0};
    for (uint64_t i = 0; i < seeds; i++) {
        struct sim_opts o = {start + i, verbose, stderr};
        sim_run(&o, &t);
    }
    printf("sim: seeds=%llu steps=%llu drops=%llu partitions=%llu "
           "crashes=%llu stops=%llu cluster_stops=%llu resumes=%llu "
           "divergences=%llu view_changes=%llu rollbacks=%llu "
           "repairs=%llu state_transfers=%llu violations=%llu\n",
           (unsigned long long)t.seeds, (unsigned long long)t.steps,
           (unsigned long long)t.drops, (unsigned long long)t.partitions,
           (unsigned long long)t.crashes, (unsigned long long)t.stops,
           (unsigned long long)t.cluster_stops, (unsigned long long)t.resumes,
           (unsigned long long)t.divergences,
           (unsigned long long)t.view_changes,
           (unsigned long long)t.rollbacks, (unsigned long long)t.repairs,
           (unsigned long long)t.state_transfers,
           (unsigned long long)t.violations);
    return t.violations > 0 ? 1 : 0;
}
