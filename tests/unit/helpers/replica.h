/*
 * A replica for executor tests: a cow_state database and an executor of
 * `threads` threads on it (the caller's thread is worker 0).
 */
#ifndef EVR_TESTS_REPLICA_H
#define EVR_TESTS_REPLICA_H

#include <stddef.h>

#include "executor/executor.h"
#include "mixer/mixer.h"

struct th_replica {
    struct evr_cow *cow;
    struct evr_executor *ex;
};

/* Opens the cow_state of path with `workers` worker connections; fails
 * the test on error. batch_bytes_max 0 keeps cow_state's default. */
struct evr_cow *th_cow_open(const char *path, int workers,
                            size_t batch_bytes_max);

/* Opens path (populated already); fails the test on error. batch_bytes_max
 * 0 keeps cow_state's default. app must outlive the replica. */
void th_replica_open(struct th_replica *r, const char *path,
                     const struct evr_app *app, int threads,
                     size_t batch_bytes_max);
void th_replica_close(struct th_replica *r);

/* Runs batch b sequentially in plan's order as one cow batch; returns its
 * token (the batch stays uncommitted). */
evr_h128 th_run_in_plan_order(struct th_replica *r, const struct evr_batch *b,
                              const struct evr_plan *plan);

#endif
