/*
 * Generated batches: the requests of an application's load generator cut
 * into batches, classified, ready to execute. Used by bench-exec and by
 * tests; a function of (application options, seed) only.
 *
 * Batch i (0-based) has op i+1, timestamp t0_us + i * 1000 and seed
 * XXH3-64 of (seed, i).
 */
#ifndef EVR_EXECUTOR_BATCHSET_H
#define EVR_EXECUTOR_BATCHSET_H

#include "executor/executor.h"

struct evr_batchset {
    uint32_t nbatches;
    uint32_t batch_size;
    struct evr_batch *batches;
    struct evr_request *reqs;  /* nbatches * batch_size */
    struct evr_cset *csets;    /* likewise */
    struct evr_buf bytes;      /* every request, back to back */
};

int evr_batchset_generate(const struct evr_app *app, uint32_t nbatches,
                          uint32_t batch_size, uint64_t seed, int64_t t0_us,
                          struct evr_batchset *out, struct evr_err *err);
void evr_batchset_free(struct evr_batchset *s);

#endif
