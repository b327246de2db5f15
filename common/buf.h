/*
 * Growable byte buffers and bounds-checked readers.
 *
 * All multi-byte integers evr writes (deltas, snapshots, requests, responses)
 * are little-endian, whatever the host. A buffer has a size limit fixed at
 * init; growing past it fails with EVR_ELIMIT instead of eating memory.
 *
 * Ownership: an evr_buf owns `data` (malloc'd); evr_buf_free releases it.
 * An evr_reader borrows the bytes it reads and never frees them.
 */
#ifndef EVR_COMMON_BUF_H
#define EVR_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct evr_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t len_max; /* growing beyond this fails with EVR_ELIMIT */
};

void evr_buf_init(struct evr_buf *b, size_t len_max);
void evr_buf_free(struct evr_buf *b);
void evr_buf_reset(struct evr_buf *b); /* len = 0, keeps capacity */

/* Ensures room for `extra` more bytes. 0, EVR_ENOMEM or EVR_ELIMIT. */
int evr_buf_reserve(struct evr_buf *b, size_t extra);

int evr_buf_put(struct evr_buf *b, const void *p, size_t n);
int evr_buf_put_u8(struct evr_buf *b, uint8_t v);
int evr_buf_put_u16(struct evr_buf *b, uint16_t v);
int evr_buf_put_u32(struct evr_buf *b, uint32_t v);
int evr_buf_put_u64(struct evr_buf *b, uint64_t v);

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EVR_LITTLE_ENDIAN 1
#else
#define EVR_LITTLE_ENDIAN 0
#endif

static inline void evr_store_u32(uint8_t *p, uint32_t v)
{
#if EVR_LITTLE_ENDIAN
    memcpy(p, &v, 4);
#else
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
#endif
}

static inline void evr_store_u64(uint8_t *p, uint64_t v)
{
#if EVR_LITTLE_ENDIAN
    memcpy(p, &v, 8);
#else
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
#endif
}

static inline uint16_t evr_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t evr_load_u32(const uint8_t *p)
{
#if EVR_LITTLE_ENDIAN
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
#else
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
#endif
}

static inline uint64_t evr_load_u64(const uint8_t *p)
{
#if EVR_LITTLE_ENDIAN
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
#endif
}

/*
 * A reader over borrowed bytes. Every get checks bounds; after the first
 * failure `ok` stays false and gets return zeroes, so a decoder can read a
 * whole structure and check `ok` once.
 */
struct evr_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
    bool ok;
};

static inline void evr_reader_init(struct evr_reader *r, const void *p,
                                   size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->ok = true;
}

static inline size_t evr_reader_left(const struct evr_reader *r)
{
    return r->len - r->pos;
}

/* Returns a pointer to the next n bytes and advances, or NULL (ok=false). */
const uint8_t *evr_get_bytes(struct evr_reader *r, size_t n);
uint8_t evr_get_u8(struct evr_reader *r);
uint16_t evr_get_u16(struct evr_reader *r);
uint32_t evr_get_u32(struct evr_reader *r);
uint64_t evr_get_u64(struct evr_reader *r);

#endif
