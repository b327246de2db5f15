/*
 * A randomised schema and request generator for cow_state tests: tables of
 * every key kind evr supports (INTEGER PRIMARY KEY, hidden-rowid TEXT and
 * REAL keys, composite WITHOUT ROWID), values of every type, and requests
 * that succeed, fail on constraints, REPLACE other rows, change primary keys
 * and roll themselves back.
 */
#ifndef EVR_TESTS_RANDDB_H
#define EVR_TESTS_RANDDB_H

#include <sqlite3.h>

#include "common/rng.h"
#include "cow_state/cow_state.h"

extern const char *const randdb_schema;

/* Creates path with randdb_schema and `rows` deterministic rows. */
void randdb_create(const char *path, int rows, uint64_t seed);

/*
 * Runs one request on c the way the executor does: BEGIN, 1-4 random
 * statements (failures allowed), then COMMIT or ROLLBACK; a capture error
 * forces ROLLBACK. Returns 1 if it committed.
 */
int randdb_request(struct evr_cow_conn *c, struct evr_rng *rng);

/* Runs one batch of n requests on the sequential connection. */
void randdb_batch(struct evr_cow *cow, uint64_t op, int n,
                  struct evr_rng *rng, evr_h128 *root);

#endif
