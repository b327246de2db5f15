/*
 * The simulator's replicated state machine: a small key-value store with the
 * client table inside its state, behind the struct evr_vr_host interface.
 *
 * Requests (10 bytes): u8 kind, u8 key, i64 argument. Responses: status 0
 * and the i64 value the request saw or made; status EVR_EINVAL for a request
 * it cannot parse.
 *
 *   PUT k a   v[k] = a, answers the old value
 *   GET k     answers v[k]
 *   ADD k a   v[k] += a, answers the new value
 *   RACY k    v[k] += 1, answers the new value. Executed in parallel, it
 *             misbehaves at the model's racy rate: it adds a value peculiar
 *             to this replica and this moment, the way a request whose
 *             result depends on which worker ran it would. Sequentially it
 *             never does.
 *
 * The state digest sums a hash per key and per client row (order-free, like
 * cow_state's). Every executed op keeps a copy of the state after it, so
 * rollback, deltas (the state after op, with the root before) and snapshots
 * are exact. Only the applied state survives a crash (model_crash).
 */
#ifndef EVR_SIM_MODEL_H
#define EVR_SIM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/rng.h"
#include "replication/vr.h"

#define MODEL_KEYS 8
#define MODEL_REQ_BYTES 10

enum model_kind { MODEL_PUT, MODEL_GET, MODEL_ADD, MODEL_RACY, MODEL_KINDS };

struct model_client_row {
    uint64_t request_no;
    int32_t status;
    int64_t value;
};

struct model_state {
    int64_t v[MODEL_KEYS];
    struct model_client_row *c; /* clients rows, client id i+1 at c[i] */
};

struct model_snap; /* an op's saved state */

struct model {
    uint32_t replica;
    uint32_t clients;
    double racy_rate;
    struct evr_rng rng;
    uint64_t divergences;      /* misbehaving RACY executions */
    char violation[256];       /* first protocol misuse seen, or "" */
    /* called as each op is applied, before the call returns (the simulator
     * learns the committed order there even if the log is trimmed soon) */
    void (*on_commit)(void *data, uint64_t op);
    void *on_commit_data;

    /* applied (durable) */
    uint64_t applied;
    struct model_state applied_state;
    evr_h128 applied_root, applied_resp;

    /* executed, not applied: stack[0..depth-1] for ops applied+1.. */
    struct model_snap *stack;
    uint32_t depth, depth_max;
    /* recently applied ops, for delta export */
    struct model_snap *kept;
    uint32_t kept_max;

    /* the execution in flight, reported by model_finish */
    bool running;
    uint64_t run_op;
    evr_h128 run_root;
    uint32_t run_n;
    struct evr_vr_response *run_resp;
    int64_t *run_values;
    uint32_t run_cap;
};

int model_init(struct model *m, uint32_t replica, uint32_t clients,
               double racy_rate, uint64_t seed, uint32_t depth_max);
void model_free(struct model *m);

/* The host table over m. */
struct evr_vr_host model_host(struct model *m);

/* Loses everything not applied (a crash); the applied state stays. */
void model_crash(struct model *m);

/* Reports the execution in flight to r (the simulator calls it later). */
void model_finish(struct model *m, struct evr_vr *r);

/* The applied state as evr_vr_new wants it. */
struct evr_vr_applied model_applied(const struct model *m);

/* --- the sequential reference --- */

/* Executes a batch (msg.h encoding) sequentially on s; responses to resp
 * (n entries, values in values). Returns the new root. */
evr_h128 model_run_batch(uint32_t clients, struct model_state *s,
                         const struct evr_vr_batch *b, bool sequential,
                         struct model *racy, struct evr_vr_response *resp,
                         int64_t *values);
evr_h128 model_root(uint32_t clients, const struct model_state *s);
int model_state_alloc(struct model_state *s, uint32_t clients);
void model_state_copy(uint32_t clients, struct model_state *dst,
                      const struct model_state *src);
void model_state_free(struct model_state *s);
void model_encode_req(uint8_t out[MODEL_REQ_BYTES], enum model_kind kind,
                      uint8_t key, int64_t arg);

#endif
