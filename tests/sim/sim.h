/*
 * The deterministic cluster simulator: 2f+1 replicas of replication/vr over
 * the model state machine (model.h), a simulated network, clients, faults,
 * and a checker that runs after every step. One seed fixes everything; the
 * same seed replays the same run exactly.
 */
#ifndef EVR_SIM_SIM_H
#define EVR_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct sim_totals {
    uint64_t seeds, steps, drops, partitions, crashes, divergences,
        view_changes, rollbacks, repairs, state_transfers, violations,
        requests, corruptions;
    uint64_t stops;         /* replicas told to stop (drain, then stop) */
    uint64_t cluster_stops; /* of those, whole-cluster stop events */
    uint64_t resumes;       /* restarts that resumed instead of recovering */
};

struct sim_opts {
    uint64_t seed;
    int verbose;      /* 0 quiet, 1 violations, 2 protocol log */
    FILE *log;
};

/* Runs one seed; adds its counts to t. Returns the number of violations
 * (each printed with the seed to opts->log). */
uint64_t sim_run(const struct sim_opts *opts, struct sim_totals *t);

/* The protocol-cost benchmark: no faults, zero latency, n replicas, batches
 * of batch_size; returns ns of wall time per committed request. */
double sim_bench(uint32_t replicas, uint32_t batch_size, uint32_t clients,
                 uint64_t requests, uint64_t *committed);

#endif
