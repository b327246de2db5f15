/*
 * The application interface: what a replicated service gives evr.
 *
 * An application is a table of functions (struct evr_app_ops) and an
 * instance (its configuration). The mixer sees only what classify returns;
 * the executor only calls execute; populate builds the start state. Requests
 * and responses are opaque bytes the application defines.
 *
 * Determinism (docs/DETERMINISM.md): execute must depend only on the
 * request, the database as seen through ctx->db, ctx->timestamp_us and
 * ctx->rng. No clock, no rand(), no state kept between requests. populate
 * must depend only on the instance's options (seed included).
 *
 * Lifetimes: the instance owns its options; requests and responses passed to
 * the ops are borrowed for the duration of the call.
 */
#ifndef EVR_WORKLOADS_APP_H
#define EVR_WORKLOADS_APP_H

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/rng.h"
#include "mixer/mixer.h"

struct evr_cow_conn;

/* Everything a request may use while it executes. */
struct evr_ctx {
    struct evr_cow_conn *conn; /* for evr_ctx_stmt */
    sqlite3 *db;               /* inside a transaction the executor opened */
    uint64_t op;               /* batch op-number */
    uint32_t index;            /* position in the batch */
    int worker;                /* worker running it: never let it leak into
                                  results (racy demo apps do, on purpose) */
    int64_t timestamp_us;      /* the batch's time, fixed by the primary */
    struct evr_rng rng;        /* seeded from (batch seed, index) */
};

/* Statement slots an application may use with evr_ctx_stmt; the executor
 * keeps its own above them. */
#define EVR_APP_STMT_SLOTS 56

/* A cached prepared statement of this connection (see cow_state.h), slot in
 * 0..EVR_APP_STMT_SLOTS-1; the caller resets it after use. NULL on error. */
sqlite3_stmt *evr_ctx_stmt(struct evr_ctx *ctx, unsigned slot,
                           const char *sql);

/* Options given to an application: "name=value" pairs from the command line
 * (--keys 1000 becomes keys=1000). */
struct evr_app_opt {
    const char *name;
    const char *value;
};

struct evr_app_ops {
    const char *name;
    /* Help text of the options create accepts: lines of "  --opt V  what
     * (default)", each ending in a newline. */
    const char *usage;

    /* Parses options into a new instance; unknown options are errors. */
    int (*create)(const struct evr_app_opt *opts, int nopts, void **app,
                  struct evr_err *err);
    void (*destroy)(void *app);

    /* Creates the schema and the deterministic start state in db (empty). */
    int (*populate)(void *app, sqlite3 *db, struct evr_err *err);

    /* Conflict set of a request. A request it cannot parse gets an empty set
     * (execute will refuse it). */
    void (*classify)(void *app, const uint8_t *req, uint32_t len,
                     struct evr_cset *cs);

    /*
     * Executes one request inside a transaction and appends its response to
     * resp. Returns SQLITE_OK; an SQLite result code (the executor rolls the
     * transaction back; SQLITE_BUSY and SQLITE_LOCKED make it retry); or a
     * negative EVR_E* code for a request it refuses.
     */
    int (*execute)(void *app, struct evr_ctx *ctx, const uint8_t *req,
                   uint32_t len, struct evr_buf *resp);

    /* The moment the start state describes, in µs since 1970: batches of
     * its load are stamped from then on. NULL: EVR_APP_START_US_DEFAULT. */
    int64_t (*start_us)(void *app);

    /* Short name of a request's kind, for statistics ("get", "home"). */
    const char *(*kind)(void *app, const uint8_t *req, uint32_t len);

    /* --- load generation (client side) --- */

    /* A generator of requests with the instance's mix, seeded. */
    int (*gen_create)(void *app, uint64_t seed, void **gen,
                      struct evr_err *err);
    void (*gen_destroy)(void *gen);
    /* Appends the next request to out. */
    int (*gen_next)(void *gen, struct evr_buf *out);
};

struct evr_app {
    const struct evr_app_ops *ops;
    void *impl;
};

/* 2023-11-14 22:13:20 UTC. */
#define EVR_APP_START_US_DEFAULT 1700000000000000LL

/* app's start_us, or the default. */
int64_t evr_app_start_us(const struct evr_app *app);

/* The registered applications, by name ("kv"). */
const struct evr_app_ops *evr_app_find(const char *name);

/* Comma-separated names of all applications, for help texts. */
const char *evr_app_names(void);

/* Prints every application's options (its usage text under its name). */
void evr_app_print_usage(FILE *out);

int evr_app_open(const char *name, const struct evr_app_opt *opts, int nopts,
                 struct evr_app *app, struct evr_err *err);
void evr_app_close(struct evr_app *app);

/*
 * Creates the database file at path (which must not exist) with the
 * application's schema and start state, in WAL mode, ready for cow_state.
 */
int evr_app_populate_file(const struct evr_app *app, const char *path,
                          struct evr_err *err);

/* Option helpers for create functions: parse value or fail naming the
 * option. */
int evr_opt_u64(const struct evr_app_opt *o, uint64_t lo, uint64_t hi,
                uint64_t *out, struct evr_err *err);
int evr_opt_double(const struct evr_app_opt *o, double lo, double hi,
                   double *out, struct evr_err *err);

#endif
