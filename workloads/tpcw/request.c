/* The TPC-W request codec (format in tpcw.h). */
#include <string.h>

#include "workloads/tpcw/tpcw.h"

static int put_str(struct evr_buf *b, struct tpcw_str s)
{
    if (s.n > TPCW_STR_MAX) {
        return EVR_EINVAL;
    }
    int rc = evr_buf_put_u16(b, s.n);
    return rc ? rc : evr_buf_put(b, s.p, s.n);
}

static int put_strs(struct evr_buf *b, const struct tpcw_str *const *v,
                    int n)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = put_str(b, *v[i]);
    }
    return rc;
}

static int encode_cart(const struct tpcw_req *q, struct evr_buf *out)
{
    if (q->npairs > TPCW_CART_PAIRS_MAX) {
        return EVR_EINVAL;
    }
    int rc = evr_buf_put_u8(out, q->add);
    rc = rc ? rc : evr_buf_put_u32(out, q->i_id);
    rc = rc ? rc : evr_buf_put_u8(out, q->npairs);
    for (int i = 0; rc == 0 && i < q->npairs; i++) {
        rc = evr_buf_put_u16(out, q->pairs[i].line);
        rc = rc ? rc : evr_buf_put_u16(out, q->pairs[i].qty);
    }
    return rc;
}

static int encode_buy_request(const struct tpcw_req *q, struct evr_buf *out)
{
    int rc = evr_buf_put_u8(out, q->returning ? 1 : 0);
    if (rc != 0) {
        return rc;
    }
    if (q->returning) {
        const struct tpcw_str *v[] = {&q->uname, &q->passwd};
        return put_strs(out, v, 2);
    }
    const struct tpcw_str *v[] = {&q->fname,   &q->lname,  &q->street1,
                                  &q->street2, &q->city,   &q->state,
                                  &q->zip,     &q->country, &q->phone,
                                  &q->email,   &q->birthdate, &q->data};
    return put_strs(out, v, 12);
}

static int encode_buy_confirm(const struct tpcw_req *q, struct evr_buf *out)
{
    const struct tpcw_str *cc[] = {&q->cc_type, &q->cc_number, &q->cc_name,
                                   &q->cc_expiry, &q->shipping};
    int rc = put_strs(out, cc, 5);
    rc = rc ? rc : evr_buf_put_u8(out, q->has_address ? 1 : 0);
    if (rc == 0 && q->has_address) {
        const struct tpcw_str *a[] = {&q->street1, &q->street2, &q->city,
                                      &q->state,   &q->zip,     &q->country};
        rc = put_strs(out, a, 6);
    }
    return rc;
}

int tpcw_req_encode(const struct tpcw_req *q, struct evr_buf *out)
{
    int rc = evr_buf_put_u8(out, (uint8_t)q->kind);
    rc = rc ? rc : evr_buf_put_u32(out, q->c_id);
    rc = rc ? rc : evr_buf_put_u32(out, q->sc_id);
    if (rc != 0) {
        return rc;
    }
    switch (q->kind) {
    case TPCW_NEW_PRODUCTS:
    case TPCW_BEST_SELLERS:
        return evr_buf_put_u8(out, q->subject);
    case TPCW_PRODUCT_DETAIL:
    case TPCW_ADMIN_REQUEST:
        return evr_buf_put_u32(out, q->i_id);
    case TPCW_SEARCH_RESULTS:
        rc = evr_buf_put_u8(out, q->search_type);
        return rc ? rc : put_str(out, q->search);
    case TPCW_SHOPPING_CART:
        return encode_cart(q, out);
    case TPCW_BUY_REQUEST:
        return encode_buy_request(q, out);
    case TPCW_BUY_CONFIRM:
        return encode_buy_confirm(q, out);
    case TPCW_ORDER_DISPLAY: {
        const struct tpcw_str *v[] = {&q->uname, &q->passwd};
        return put_strs(out, v, 2);
    }
    case TPCW_ADMIN_CONFIRM: {
        rc = evr_buf_put_u32(out, q->i_id);
        rc = rc ? rc : evr_buf_put_u32(out, q->cost_cents);
        const struct tpcw_str *v[] = {&q->image, &q->thumbnail};
        return rc ? rc : put_strs(out, v, 2);
    }
    case TPCW_HOME:
    case TPCW_SEARCH_REQUEST:
    case TPCW_CUSTOMER_REGISTRATION:
    case TPCW_ORDER_INQUIRY:
        return 0;
    default:
        return EVR_EINVAL;
    }
}

static struct tpcw_str get_str(struct evr_reader *r)
{
    uint16_t n = evr_get_u16(r);
    if (n > TPCW_STR_MAX) {
        r->ok = false;
    }
    const uint8_t *p = r->ok ? evr_get_bytes(r, n) : NULL;
    return (struct tpcw_str){p ? (const char *)p : "", p ? n : 0};
}

static void get_strs(struct evr_reader *r, struct tpcw_str *const *v, int n)
{
    for (int i = 0; i < n; i++) {
        *v[i] = get_str(r);
    }
}

static void decode_body(struct evr_reader *r, struct tpcw_req *q)
{
    switch (q->kind) {
    case TPCW_NEW_PRODUCTS:
    case TPCW_BEST_SELLERS:
        q->subject = evr_get_u8(r);
        r->ok = r->ok && q->subject < TPCW_SUBJECTS;
        break;
    case TPCW_PRODUCT_DETAIL:
    case TPCW_ADMIN_REQUEST:
        q->i_id = evr_get_u32(r);
        break;
    case TPCW_SEARCH_RESULTS:
        q->search_type = evr_get_u8(r);
        q->search = get_str(r);
        r->ok = r->ok && q->search_type < 3;
        break;
    case TPCW_SHOPPING_CART:
        q->add = evr_get_u8(r);
        q->i_id = evr_get_u32(r);
        q->npairs = evr_get_u8(r);
        r->ok = r->ok && q->npairs <= TPCW_CART_PAIRS_MAX;
        for (int i = 0; r->ok && i < q->npairs; i++) {
            q->pairs[i].line = evr_get_u16(r);
            q->pairs[i].qty = evr_get_u16(r);
            r->ok = r->ok && q->pairs[i].line >= 1 &&
                    q->pairs[i].line <= TPCW_CART_PAIRS_MAX;
        }
        break;
    case TPCW_BUY_REQUEST: {
        q->returning = evr_get_u8(r);
        if (q->returning) {
            struct tpcw_str *const v[] = {&q->uname, &q->passwd};
            get_strs(r, v, 2);
        } else {
            struct tpcw_str *const v[] = {
                &q->fname, &q->lname,   &q->street1, &q->street2,
                &q->city,  &q->state,   &q->zip,     &q->country,
                &q->phone, &q->email,   &q->birthdate, &q->data};
            get_strs(r, v, 12);
        }
        break;
    }
    case TPCW_BUY_CONFIRM: {
        struct tpcw_str *const cc[] = {&q->cc_type, &q->cc_number,
                                       &q->cc_name, &q->cc_expiry,
                                       &q->shipping};
        get_strs(r, cc, 5);
        q->has_address = evr_get_u8(r);
        if (q->has_address) {
            struct tpcw_str *const a[] = {&q->street1, &q->street2, &q->city,
                                          &q->state,   &q->zip,     &q->country};
            get_strs(r, a, 6);
        }
        break;
    }
    case TPCW_ORDER_DISPLAY: {
        struct tpcw_str *const v[] = {&q->uname, &q->passwd};
        get_strs(r, v, 2);
        break;
    }
    case TPCW_ADMIN_CONFIRM: {
        q->i_id = evr_get_u32(r);
        q->cost_cents = evr_get_u32(r);
        struct tpcw_str *const v[] = {&q->image, &q->thumbnail};
        get_strs(r, v, 2);
        break;
    }
    default:
        break;
    }
}

bool tpcw_req_decode(const uint8_t *p, uint32_t len, struct tpcw_req *q)
{
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    memset(q, 0, sizeof *q);
    uint8_t kind = evr_get_u8(&r);
    q->kind = (enum tpcw_interaction)kind;
    q->c_id = evr_get_u32(&r);
    q->sc_id = evr_get_u32(&r);
    if (!r.ok || kind >= TPCW_INTERACTIONS) {
        return false;
    }
    decode_body(&r, q);
    return r.ok && evr_reader_left(&r) == 0;
}
