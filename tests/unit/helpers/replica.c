/* Replicas for executor tests (replica.h). */
#include "tests/unit/helpers/replica.h"

#include "tests/unit/helpers/th.h"

void th_replica_open(struct th_replica *r, const char *path,
                     const struct evr_app *app, int threads,
                     size_t batch_bytes_max)
{
    struct evr_cow_opts o;
    evr_cow_opts_default(&o, path, threads - 1); /* + the caller's */
    if (batch_bytes_max != 0) {
        o.batch_bytes_max = batch_bytes_max;
    }
    struct evr_err err = {0};
    th_must(evr_cow_open(&o, &r->cow, &err), &err);
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
