/* Canonical value encoding (format in internal.h). */
#include <string.h>

#include "cow_state/internal.h"

int evr__enc_value(struct evr_buf *b, sqlite3_value *v)
{
    int rc;
    switch (sqlite3_value_type(v)) {
    case SQLITE_INTEGER:
        rc = evr_buf_put_u8(b, EVR_VAL_INT);
        return rc ? rc : evr_buf_put_u64(b, (uint64_t)sqlite3_value_int64(v));
    case SQLITE_FLOAT: {
        double d = sqlite3_value_double(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        rc = evr_buf_put_u8(b, EVR_VAL_REAL);
        return rc ? rc : evr_buf_put_u64(b, bits);
    }
    case SQLITE_TEXT:
    case SQLITE_BLOB: {
        bool text = sqlite3_value_type(v) == SQLITE_TEXT;
        /* value_text must come before value_bytes (SQLite's rule). */
        const void *p = text ? (const void *)sqlite3_value_text(v)
                             : sqlite3_value_blob(v);
        int n = sqlite3_value_bytes(v);
        if (n > 0 && p == NULL) {
            return EVR_ENOMEM;
        }
        if ((uint32_t)n > EVR_VALUE_BYTES_MAX) {
            return EVR_ELIMIT;
        }
        rc = evr_buf_reserve(b, 5 + (size_t)n);
        if (rc != 0) {
            return rc;
        }
        evr_buf_put_u8(b, text ? EVR_VAL_TEXT : EVR_VAL_BLOB);
        evr_buf_put_u32(b, (uint32_t)n);
        return evr_buf_put(b, p, (size_t)n);
    }
    default:
        return evr_buf_put_u8(b, EVR_VAL_NULL);
    }
}

int evr__enc_key_value(struct evr_buf *b, sqlite3_value *v)
{
    if (sqlite3_value_type(v) == SQLITE_FLOAT) {
        double d = sqlite3_value_double(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
            (double)(int64_t)d == d) {
            int rc = evr_buf_put_u8(b, EVR_VAL_INT);
            return rc ? rc : evr_buf_put_u64(b, (uint64_t)(int64_t)d);
        }
    }
    return evr__enc_value(b, v);
}

/* Reads one value; returns its tag or -1 when malformed. */
static int get_value(struct evr_reader *r, uint64_t *word,
                     const uint8_t **bytes, uint32_t *n)
{
    int tag = evr_get_u8(r);
    switch (tag) {
    case EVR_VAL_NULL:
        break;
    case EVR_VAL_INT:
    case EVR_VAL_REAL:
        *word = evr_get_u64(r);
        break;
    case EVR_VAL_TEXT:
    case EVR_VAL_BLOB:
        *n = evr_get_u32(r);
        if (*n > EVR_VALUE_BYTES_MAX) {
            return -1;
        }
        *bytes = evr_get_bytes(r, *n);
        break;
    default:
        return -1;
    }
    return r->ok ? tag : -1;
}

bool evr__values_valid(const uint8_t *p, size_t len, int n)
{
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    for (int i = 0; i < n; i++) {
        uint64_t w;
        const uint8_t *bytes;
        uint32_t blen;
        if (get_value(&r, &w, &bytes, &blen) < 0) {
            return false;
        }
    }
    return evr_reader_left(&r) == 0;
}

int evr__bind_value(sqlite3_stmt *st, int param, struct evr_reader *r)
{
    uint64_t w = 0;
    const uint8_t *bytes = NULL;
    uint32_t len = 0;
    int tag = get_value(r, &w, &bytes, &len);
    if (bytes == NULL) {
        bytes = (const uint8_t *)""; /* a NULL pointer would bind NULL */
    }
    int rc;
    switch (tag) {
    case EVR_VAL_NULL:
        rc = sqlite3_bind_null(st, param);
        break;
    case EVR_VAL_INT:
        rc = sqlite3_bind_int64(st, param, (sqlite3_int64)w);
        break;
    case EVR_VAL_REAL: {
        double d;
        memcpy(&d, &w, sizeof d);
        rc = sqlite3_bind_double(st, param, d);
        break;
    }
    case EVR_VAL_TEXT:
        rc = sqlite3_bind_text(st, param, (const char *)bytes, (int)len,
                               SQLITE_STATIC);
        break;
    case EVR_VAL_BLOB:
        rc = sqlite3_bind_blob(st, param, bytes, (int)len, SQLITE_STATIC);
        break;
    default:
        return EVR_ECORRUPT;
    }
    return rc == SQLITE_OK ? 0 : EVR_ESQL;
}

int evr__skip_value(struct evr_reader *r)
{
    uint64_t w;
    const uint8_t *bytes;
    uint32_t len;
    return get_value(r, &w, &bytes, &len) < 0 ? EVR_ECORRUPT : 0;
}

int evr__bind_values(sqlite3_stmt *st, int first, struct evr_reader *r, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = evr__bind_value(st, first + i, r);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}
