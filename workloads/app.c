/* Application registry, options and population files. */
#include "workloads/app.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cow_state/cow_state.h"
#include "workloads/kv/kv.h"
#include "workloads/tpcw/tpcw.h"

static const struct evr_app_ops *const registry[] = {
    &evr_kv_app,
    &evr_tpcw_app,
};

#define NAPPS (sizeof registry / sizeof registry[0])

const struct evr_app_ops *evr_app_find(const char *name)
{
    for (size_t i = 0; i < NAPPS; i++) {
        if (strcmp(registry[i]->name, name) == 0) {
            return registry[i];
        }
    }
    return NULL;
}

const char *evr_app_names(void)
{
    static char names[256];
    if (names[0] == '\0') {
        for (size_t i = 0; i < NAPPS; i++) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "",
                     registry[i]->name);
        }
    }
    return names;
}

int64_t evr_app_start_us(const struct evr_app *app)
{
    return app->ops->start_us != NULL ? app->ops->start_us(app->impl)
                                      : EVR_APP_START_US_DEFAULT;
}

void evr_app_print_usage(FILE *out)
{
    for (size_t i = 0; i < NAPPS; i++) {
        fprintf(out, "\n%s options:\n%s", registry[i]->name,
                registry[i]->usage);
    }
}

int evr_app_open(const char *name, const struct evr_app_opt *opts, int nopts,
                 struct evr_app *app, struct evr_err *err)
{
    app->ops = evr_app_find(name);
    app->impl = NULL;
    if (app->ops == NULL) {
        return evr_err_set(err, EVR_EINVAL,
                           "unknown application '%s' (known: %s)", name,
                           evr_app_names());
    }
    return app->ops->create(opts, nopts, &app->impl, err);
}

void evr_app_close(struct evr_app *app)
{
    if (app->ops != NULL && app->impl != NULL) {
        app->ops->destroy(app->impl);
    }
    app->impl = NULL;
}

sqlite3_stmt *evr_ctx_stmt(struct evr_ctx *ctx, unsigned slot,
                           const char *sql)
{
    if (slot >= EVR_APP_STMT_SLOTS) {
        return NULL;
    }
    return evr_cow_conn_stmt(ctx->conn, slot, sql, NULL);
}

static int populate_into(const struct evr_app *app, const char *tmp,
                         struct evr_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(tmp, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                 SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        evr_err_set(err, EVR_ESQL, "creating '%s': %s", tmp,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return err ? err->code : EVR_ESQL;
    }
    int erc = app->ops->populate(app->impl, db, err);
    if (erc == 0) {
        rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            erc = evr_err_set(err, EVR_ESQL, "'%s': %s", tmp,
                              sqlite3_errmsg(db));
        }
    }
    if (sqlite3_close(db) != SQLITE_OK && erc == 0) {
        erc = evr_err_set(err, EVR_EIO, "closing '%s'", tmp);
    }
    return erc;
}

int evr_app_populate_file(const struct evr_app *app, const char *path,
                          struct evr_err *err)
{
    evr_sqlite_setup();
    struct stat st;
    if (stat(path, &st) == 0) {
        return evr_err_set(err, EVR_EINVAL,
                           "'%s' exists; evr does not overwrite databases",
                           path);
    }
    char *tmp = sqlite3_mprintf("%s.populating", path);
    if (tmp == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "out of memory");
    }
    unlink(tmp);
    int rc = populate_into(app, tmp, err);
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = evr_err_set(err, EVR_EIO, "renaming '%s' to '%s': %s", tmp,
                         path, strerror(errno));
    }
    if (rc != 0) {
        unlink(tmp);
    }
    sqlite3_free(tmp);
    return rc;
}

int evr_opt_u64(const struct evr_app_opt *o, uint64_t lo, uint64_t hi,
                uint64_t *out, struct evr_err *err)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(o->value, &end, 10);
    if (errno != 0 || end == o->value || *end != '\0' || o->value[0] == '-' ||
        v < lo || v > hi) {
        return evr_err_set(err, EVR_EINVAL,
                           "--%s must be an integer in %llu..%llu, not '%s'",
                           o->name, (unsigned long long)lo,
                           (unsigned long long)hi, o->value);
    }
    *out = v;
    return 0;
}

int evr_opt_double(const struct evr_app_opt *o, double lo, double hi,
                   double *out, struct evr_err *err)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(o->value, &end);
    if (errno != 0 || end == o->value || *end != '\0' || isnan(v) || v < lo ||
        v > hi) {
        return evr_err_set(err, EVR_EINVAL,
                           "--%s must be a number in %g..%g, not '%s'",
                           o->name, lo, hi, o->value);
    }
    *out = v;
    return 0;
}
