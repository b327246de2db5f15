/*
 * verifier — tokens, and the commit / wait / rollback decision over them.
 *
 * A replica that executed batch op reports a token that binds the batch's
 * op-number, the state it reached and the responses it produced:
 *
 *   response digest = XXH3-128 over, for i = 0..n-1 in batch order:
 *                     u32 status, u32 length, bytes          (LE)
 *   token(op)       = XXH3-128(u64 op, state root, response digest)
 *
 * Decision rule (brief §1), for n = 2f+1 replicas and one attempt of one
 * batch, with the votes received so far (at most one per replica):
 *
 *   COMMIT(T)  some token T has at least f+1 votes. At most one token can:
 *              two sets of f+1 out of 2f+1 replicas share a replica, and a
 *              replica votes once.
 *   ROLLBACK   no token can reach f+1 any more: the best count plus the
 *              replicas that have not voted is below f+1; or the attempt
 *              timed out without a commit.
 *   WAIT       otherwise.
 *
 * COMMIT wins over a timeout: a quorum that exists is never thrown away.
 * The holders of T (a bit per replica) are the replicas a diverged replica
 * may fetch T's batch delta from.
 */
#ifndef EVR_VERIFIER_H
#define EVR_VERIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define EVR_REPLICAS_MAX 15 /* 2f+1 with f <= 7; holders fit in 16 bits */

evr_h128 evr_token(uint64_t op, evr_h128 state_root, evr_h128 responses);

/* Streaming response digest: reset, add each response in batch order, take
 * the digest. The hasher is the caller's. */
void evr_response_digest_add(struct evr_hasher *h, int32_t status,
                             const void *body, uint32_t len);

enum evr_verdict { EVR_VERDICT_WAIT, EVR_VERDICT_COMMIT, EVR_VERDICT_ROLLBACK };

const char *evr_verdict_name(enum evr_verdict v);

/* The votes of one attempt of one batch. Plain data: copy, zero, compare. */
struct evr_votes {
    uint32_t replicas;                  /* n = 2f+1, 1..EVR_REPLICAS_MAX */
    uint32_t voted;                     /* bit i: replica i voted */
    evr_h128 token[EVR_REPLICAS_MAX];   /* valid where voted */
};

/* replicas must be odd and in 1..EVR_REPLICAS_MAX. */
void evr_votes_init(struct evr_votes *v, uint32_t replicas);

/*
 * Records replica's vote. A repeated vote with the same token is a no-op
 * (returns 0: messages are duplicated); a vote with a different token from a
 * replica that already voted is refused (EVR_ESTATE: a replica votes once
 * per attempt); a replica out of range is EVR_EINVAL.
 */
int evr_votes_add(struct evr_votes *v, uint32_t replica, evr_h128 token);

uint32_t evr_votes_count(const struct evr_votes *v);

/* The rule above. On COMMIT, *token and *holders (may be NULL) get the
 * committed token and the bit set of the replicas that reported it. */
enum evr_verdict evr_votes_decide(const struct evr_votes *v, bool timed_out,
                                  evr_h128 *token, uint32_t *holders);

#endif
