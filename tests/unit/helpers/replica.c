/* Replicas for executor tests (replica.h). */
#include "tests/unit/helpers/replica.h"

#include "tests/unit/helpers/th.h"

struct evr_cow *th_cow_open(const char *path, int workers,
                            size_t batch_bytes_max)
{
    struct evr_cow_opts o;
    evr_cow_opts_default(&o, path, workers);
    if (batch_bytes_max != 0) {
        o.batch_bytes_max = batch_bytes_max;
    }
    struct evr_cow *cow = NULL;
    struct evr_err err = {0};
    th_must(evr_cow_open(&o, &cow, &err), &err);
    return cow;
}

void th_replica_open(struct th_replica *r, const char *path,
                     const struct evr_app *app, int threads,
                     size_t batch_bytes_max)
{
    r->cow = th_cow_open(path, threads - 1, batch_bytes_max); /* + caller */
    struct evr_err err = {0};
    th_must(evr_executor_new(r->cow, app, 1024, &r->ex, &err), &err);
}

void th_replica_close(struct th_replica *r)
{
    evr_executor_free(r->ex);
    evr_cow_close(r->cow);
}

evr_h128 th_run_in_plan_order(struct th_replica *r, const struct evr_batch *b,
                              const struct evr_plan *plan)
{
    struct evr_err err = {0};
    th_must(evr_cow_batch_begin(r->cow, b->op, &err), &err);
    th_must(evr_executor_run_sequential(r->ex, b, plan->order, &err), &err);
    evr_h128 root;
    th_must(evr_cow_batch_end(r->cow, &root, &err), &err);
    return evr_token(b->op, root, evr_executor_response_digest(r->ex));
}
