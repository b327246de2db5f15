/*
 * Test helpers shared by the cmocka unit tests: temporary directories,
 * databases made from SQL, and a canonical dump to compare database content.
 */
#ifndef EVR_TESTS_TH_H
#define EVR_TESTS_TH_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fresh directory under $TMPDIR (or /tmp), removed by th_rmdir. */
char *th_mkdtemp(void);
void th_rmdir(char *dir); /* recursive; frees dir */

/* dir/name, malloc'd. */
char *th_path(const char *dir, const char *name);

/* Creates (or truncates) a database at path and runs sql in it. */
void th_make_db(const char *path, const char *sql);

/* Runs sql on db; fails the test on error. */
void th_exec(sqlite3 *db, const char *sql);

/* Runs sql on db and returns SQLite's result code. */
int th_try(sqlite3 *db, const char *sql);

/* Opens path read-write (NOMUTEX); fails the test on error. */
sqlite3 *th_open(const char *path);

/*
 * Canonical text of every user table's rows: tables by name, rows by primary
 * key, values through SQL quote(), and hidden rowids included, so two equal
 * dumps mean equal content down to the rowid. Caller frees.
 */
char *th_dump(sqlite3 *db);
char *th_dump_file(const char *path);

/* Copies a file byte for byte. */
void th_copy_file(const char *from, const char *to);

struct evr_err;
/* Fails the test with err's message unless rc is 0. */
void th_must(int rc, const struct evr_err *err);

/* Seed for randomised tests: $SEED if set, else def; printed once. */
unsigned long long th_seed(unsigned long long def);

struct evr_cset;
/* A classify that claims nothing conflicts and nothing writes: wrong hints
 * for any writing request, so writers collide inside SQLite. */
void th_no_hints(void *app, const uint8_t *req, uint32_t len,
                 struct evr_cset *cs);

#endif
