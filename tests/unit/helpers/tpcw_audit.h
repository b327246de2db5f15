/*
 * Checks TPC-W conflict sets against the SQL that requests really run.
 *
 * Every statement of workloads/tpcw/sql.c is prepared once under an
 * authorizer that lists what it reads and writes, as conflict resources
 * (a table, or item's i_stock column as TPCW_T_ITEM_STOCK). A trace on the
 * executing connection records which statements a request stepped; the
 * check then requires its conflict set to name each resource those
 * statements touch, with a write entry for each write. Keys are not
 * checked: a keyed entry counts for its resource.
 */
#ifndef EVR_TESTS_TPCW_AUDIT_H
#define EVR_TESTS_TPCW_AUDIT_H

#include <sqlite3.h>

#include "mixer/mixer.h"

struct tpcw_audit;

/* Analyses the statements against the schema of the database at path. */
struct tpcw_audit *tpcw_audit_new(const char *path);
void tpcw_audit_free(struct tpcw_audit *a);

/* Records the statements stepped on db from now on (db must outlive the
 * audit or be closed first). */
void tpcw_audit_attach(struct tpcw_audit *a, sqlite3 *db);

/* Forgets the statements recorded so far. */
void tpcw_audit_begin(struct tpcw_audit *a);

/* Fails the test unless cs covers what the statements recorded since
 * tpcw_audit_begin touch; `what` names the request in the message.
 * Returns how many statements it checked. */
int tpcw_audit_check(const struct tpcw_audit *a, const struct evr_cset *cs,
                     const char *what);

#endif
