/* Conflict sets against the SQL they must cover (tpcw_audit.h). */
#include "tests/unit/helpers/tpcw_audit.h"

#include "tests/unit/helpers/cm.h"
#include "tests/unit/helpers/th.h"
#include "workloads/tpcw/internal.h"

#define ACCESS_MAX 64

struct access {
    uint16_t resource;
    uint8_t write;
};

struct tpcw_audit {
    struct access acc[S_STMTS][ACCESS_MAX];
    int nacc[S_STMTS];
    bool used[S_STMTS];
    int analysing; /* the statement being prepared */
};

static const char *const table_names[] = {
    [TPCW_T_COUNTRY] = "country",
    [TPCW_T_AUTHOR] = "author",
    [TPCW_T_ITEM] = "item",
    [TPCW_T_CUSTOMER] = "customer",
    [TPCW_T_ADDRESS] = "address",
    [TPCW_T_ORDERS] = "orders",
    [TPCW_T_ORDER_LINE] = "order_line",
    [TPCW_T_CC_XACTS] = "cc_xacts",
    [TPCW_T_SHOPPING_CART] = "shopping_cart",
    [TPCW_T_SHOPPING_CART_LINE] = "shopping_cart_line",
};

static int resource_of(const char *table, const char *column)
{
    if (strcmp(table, "item") == 0 && column != NULL &&
        strcmp(column, "i_stock") == 0) {
        return TPCW_T_ITEM_STOCK;
    }
    for (size_t t = 0; t < sizeof table_names / sizeof table_names[0]; t++) {
        if (table_names[t] != NULL && strcmp(table, table_names[t]) == 0) {
            return (int)t;
        }
    }
    return -1; /* sqlite_master and the like */
}

static void note(struct tpcw_audit *a, int resource, bool write)
{
    int s = a->analysing;
    for (int i = 0; i < a->nacc[s]; i++) {
        struct access *x = &a->acc[s][i];
        if (x->resource == resource) {
            x->write |= write;
            return;
        }
    }
    assert_true(a->nacc[s] < ACCESS_MAX);
    a->acc[s][a->nacc[s]++] = (struct access){(uint16_t)resource, write};
}

static int authorize(void *arg, int action, const char *p1, const char *p2,
                     const char *db, const char *trigger)
{
    (void)db;
    (void)trigger;
    struct tpcw_audit *a = arg;
    bool write = action == SQLITE_INSERT || action == SQLITE_UPDATE ||
                 action == SQLITE_DELETE;
    if ((write || action == SQLITE_READ) && p1 != NULL) {
        int r = resource_of(p1, action == SQLITE_INSERT ||
                                        action == SQLITE_DELETE
                                    ? NULL
                                    : p2);
        if (r >= 0) {
            note(a, r, write);
        }
        /* A whole row inserted or deleted: its stock too. */
        if (r == TPCW_T_ITEM && (action == SQLITE_INSERT ||
                                 action == SQLITE_DELETE)) {
            note(a, TPCW_T_ITEM_STOCK, true);
        }
    }
    return SQLITE_OK;
}

struct tpcw_audit *tpcw_audit_new(const char *path)
{
    struct tpcw_audit *a = calloc(1, sizeof *a);
    assert_non_null(a);
    sqlite3 *db = th_open(path);
    sqlite3_set_authorizer(db, authorize, a);
    for (int s = 0; s < S_STMTS; s++) {
        a->analysing = s;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(db, tpcw_sql[s], -1, &st, NULL);
        if (rc != SQLITE_OK) {
            fail_msg("statement %d: %s", s, sqlite3_errmsg(db));
        }
        sqlite3_finalize(st);
        assert_true(a->nacc[s] > 0);
    }
    sqlite3_close(db);
    return a;
}

void tpcw_audit_free(struct tpcw_audit *a)
{
    free(a);
}

static int traced(unsigned type, void *arg, void *p, void *x)
{
    (void)type;
    (void)x;
    struct tpcw_audit *a = arg;
    const char *sql = sqlite3_sql(p);
    for (int s = 0; sql != NULL && s < S_STMTS; s++) {
        if (strcmp(sql, tpcw_sql[s]) == 0) {
            a->used[s] = true;
            break;
        }
    }
    return 0;
}

void tpcw_audit_attach(struct tpcw_audit *a, sqlite3 *db)
{
    assert_int_equal(sqlite3_trace_v2(db, SQLITE_TRACE_STMT, traced, a),
                     SQLITE_OK);
}

void tpcw_audit_begin(struct tpcw_audit *a)
{
    memset(a->used, 0, sizeof a->used);
}

static bool covers(const struct evr_cset *cs, const struct access *x)
{
    for (uint32_t i = 0; i < cs->n; i++) {
        if (cs->e[i].table == x->resource &&
            (!x->write || cs->e[i].mode == EVR_WRITE)) {
            return true;
        }
    }
    return false;
}

int tpcw_audit_check(const struct tpcw_audit *a, const struct evr_cset *cs,
                     const char *what)
{
    int checked = 0;
    for (int s = 0; s < S_STMTS; s++) {
        if (!a->used[s]) {
            continue;
        }
        checked++;
        for (int i = 0; i < a->nacc[s]; i++) {
            const struct access *x = &a->acc[s][i];
            if (!cs->overflow && !covers(cs, x)) {
                fail_msg("%s: statement %d %s resource %u, which its "
                         "conflict set does not %s:\n  %s",
                         what, s, x->write ? "writes" : "reads", x->resource,
                         x->write ? "write" : "name", tpcw_sql[s]);
            }
        }
    }
    return checked;
}
