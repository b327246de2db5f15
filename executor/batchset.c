#include "executor/batchset.h"

#include <stdlib.h>
#include <string.h>

#define BATCHSET_BYTES_MAX (8ULL << 30)

static int generate_requests(const struct evr_app *app, uint64_t seed,
                             struct evr_batchset *s, uint32_t total,
                             size_t *offsets, struct evr_err *err)
{
    void *gen = NULL;
    int rc = app->ops->gen_create(app->impl, seed, &gen, err);
    for (uint32_t i = 0; rc == 0 && i < total; i++) {
        offsets[i] = s->bytes.len;
        rc = app->ops->gen_next(gen, &s->bytes);
        if (rc != 0) {
            evr_err_set(err, rc, "generating request %u: %s", i,
                        evr_strerror(rc));
        }
    }
    offsets[total] = s->bytes.len;
    if (gen != NULL) {
        app->ops->gen_destroy(gen);
    }
    return rc;
}

int evr_batchset_generate(const struct evr_app *app, uint32_t nbatches,
                          uint32_t batch_size, uint64_t seed, int64_t t0_us,
                          struct evr_batchset *s, struct evr_err *err)
{
    memset(s, 0, sizeof *s);
    evr_buf_init(&s->bytes, BATCHSET_BYTES_MAX);
    if (nbatches == 0 || batch_size == 0 || batch_size > EVR_BATCH_SIZE_MAX ||
        (uint64_t)nbatches * batch_size > (1u << 28)) {
        return evr_err_set(err, EVR_EINVAL,
                           "%u batches of %u requests: out of range",
                           nbatches, batch_size);
    }
    uint32_t total = nbatches * batch_size;
    s->nbatches = nbatches;
    s->batch_size = batch_size;
    s->batches = calloc(nbatches, sizeof *s->batches);
    s->reqs = calloc(total, sizeof *s->reqs);
    s->csets = calloc(total, sizeof *s->csets);
    size_t *offsets = calloc((size_t)total + 1, sizeof *offsets);
    int rc = s->batches && s->reqs && s->csets && offsets
                 ? generate_requests(app, seed, s, total, offsets, err)
                 : evr_err_set(err, EVR_ENOMEM, "out of memory");
    for (uint32_t i = 0; rc == 0 && i < total; i++) {
        s->reqs[i].data = s->bytes.data + offsets[i];
        s->reqs[i].len = (uint32_t)(offsets[i + 1] - offsets[i]);
        app->ops->classify(app->impl, s->reqs[i].data, s->reqs[i].len,
                           &s->csets[i]);
    }
    for (uint32_t b = 0; rc == 0 && b < nbatches; b++) {
        uint64_t in[2] = {seed, b};
        s->batches[b] = (struct evr_batch){
            .op = b + 1,
            .timestamp_us = t0_us + (int64_t)b * 1000,
            .seed = evr_hash64(in, sizeof in, 0),
            .n = batch_size,
            .req = s->reqs + (size_t)b * batch_size,
            .csets = s->csets + (size_t)b * batch_size,
        };
    }
    free(offsets);
    if (rc != 0) {
        evr_batchset_free(s);
    }
    return rc;
}

void evr_batchset_free(struct evr_batchset *s)
{
    free(s->batches);
    free(s->reqs);
    free(s->csets);
    evr_buf_free(&s->bytes);
    memset(s, 0, sizeof *s);
}
