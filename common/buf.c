#include "common/buf.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void evr_buf_init(struct evr_buf *b, size_t len_max)
{
    assert(b != NULL);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->len_max = len_max;
}

void evr_buf_free(struct evr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void evr_buf_reset(struct evr_buf *b)
{
    b->len = 0;
}

int evr_buf_reserve(struct evr_buf *b, size_t extra)
{
    assert(b->len <= b->cap);
    if (extra > b->len_max || b->len > b->len_max - extra) {
        return EVR_ELIMIT;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return 0;
    }
    size_t cap = b->cap < 64 ? 64 : b->cap;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > b->len_max) {
        cap = b->len_max;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return EVR_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int evr_buf_put(struct evr_buf *b, const void *p, size_t n)
{
    int rc = evr_buf_reserve(b, n);
    if (rc != 0) {
        return rc;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}

int evr_buf_put_u8(struct evr_buf *b, uint8_t v)
{
    return evr_buf_put(b, &v, 1);
}

int evr_buf_put_u16(struct evr_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return evr_buf_put(b, x, 2);
}

int evr_buf_put_u32(struct evr_buf *b, uint32_t v)
{
    uint8_t x[4];
    evr_store_u32(x, v);
    return evr_buf_put(b, x, 4);
}

int evr_buf_put_u64(struct evr_buf *b, uint64_t v)
{
    uint8_t x[8];
    evr_store_u64(x, v);
    return evr_buf_put(b, x, 8);
}

const uint8_t *evr_get_bytes(struct evr_reader *r, size_t n)
{
    if (!r->ok || n > r->len - r->pos) {
        r->ok = false;
        return NULL;
    }
    const uint8_t *p = r->p + r->pos;
    r->pos += n;
    return p;
}

uint8_t evr_get_u8(struct evr_reader *r)
{
    const uint8_t *p = evr_get_bytes(r, 1);
    return p ? p[0] : 0;
}

uint16_t evr_get_u16(struct evr_reader *r)
{
    const uint8_t *p = evr_get_bytes(r, 2);
    return p ? evr_load_u16(p) : 0;
}

uint32_t evr_get_u32(struct evr_reader *r)
{
    const uint8_t *p = evr_get_bytes(r, 4);
    return p ? evr_load_u32(p) : 0;
}

uint64_t evr_get_u64(struct evr_reader *r)
{
    const uint8_t *p = evr_get_bytes(r, 8);
    return p ? evr_load_u64(p) : 0;
}
