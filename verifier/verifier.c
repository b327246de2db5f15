/* Tokens and the quorum rule: verifier.h states both. */
#include "verifier/verifier.h"

#include <assert.h>

#include "common/buf.h"
#include "common/err.h"

evr_h128 evr_token(uint64_t op, evr_h128 state_root, evr_h128 responses)
{
    uint8_t in[40];
    evr_store_u64(in, op);
    evr_h128_to_bytes(state_root, in + 8);
    evr_h128_to_bytes(responses, in + 24);
    return evr_hash128(in, sizeof in, 0x65767220746f6b6eULL); /* "evr tokn" */
}

void evr_response_digest_add(struct evr_hasher *h, int32_t status,
                             const void *body, uint32_t len)
{
    uint8_t head[8];
    evr_store_u32(head, (uint32_t)status);
    evr_store_u32(head + 4, len);
    evr_hasher_update(h, head, sizeof head);
    evr_hasher_update(h, body, len);
}

const char *evr_verdict_name(enum evr_verdict v)
{
    switch (v) {
    case EVR_VERDICT_WAIT:
        return "wait";
    case EVR_VERDICT_COMMIT:
        return "commit";
    case EVR_VERDICT_ROLLBACK:
        return "rollback";
    }
    return "?";
}

void evr_votes_init(struct evr_votes *v, uint32_t replicas)
{
    assert(replicas >= 1);
    assert(replicas <= EVR_REPLICAS_MAX);
    assert(replicas % 2 == 1);
    memset(v, 0, sizeof *v);
    v->replicas = replicas;
}

int evr_votes_add(struct evr_votes *v, uint32_t replica, evr_h128 token)
{
    if (replica >= v->replicas) {
        return EVR_EINVAL;
    }
    uint32_t bit = 1u << replica;
    if (v->voted & bit) {
        return evr_h128_eq(v->token[replica], token) ? 0 : EVR_ESTATE;
    }
    v->voted |= bit;
    v->token[replica] = token;
    return 0;
}

uint32_t evr_votes_count(const struct evr_votes *v)
{
    return (uint32_t)__builtin_popcount(v->voted);
}

/* Bit set of the voters that reported the same token as replica i. */
static uint32_t same_as(const struct evr_votes *v, uint32_t i)
{
    uint32_t set = 0;
    for (uint32_t j = 0; j < v->replicas; j++) {
        if ((v->voted & (1u << j)) && evr_h128_eq(v->token[j], v->token[i])) {
            set |= 1u << j;
        }
    }
    return set;
}

enum evr_verdict evr_votes_decide(const struct evr_votes *v, bool timed_out,
                                  evr_h128 *token, uint32_t *holders)
{
    assert(v->replicas >= 1);
    assert((v->voted >> v->replicas) == 0);
    uint32_t quorum = v->replicas / 2 + 1;
    uint32_t best = 0;
    for (uint32_t i = 0; i < v->replicas; i++) {
        if (!(v->voted & (1u << i))) {
            continue;
        }
        uint32_t set = same_as(v, i);
        uint32_t count = (uint32_t)__builtin_popcount(set);
        if (count >= quorum) {
            if (token != NULL) {
                *token = v->token[i];
            }
            if (holders != NULL) {
                *holders = set;
            }
            return EVR_VERDICT_COMMIT;
        }
        best = count > best ? count : best;
    }
    uint32_t missing = v->replicas - evr_votes_count(v);
    if (best + missing < quorum || timed_out) {
        return EVR_VERDICT_ROLLBACK;
    }
    return EVR_VERDICT_WAIT;
}
