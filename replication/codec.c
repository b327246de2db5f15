/* The frame and body codec: msg.h gives the format. */
#include "replication/msg.h"

#include <assert.h>

const char *evr_msg_type_name(uint32_t type)
{
    switch (type) {
#define EVR__MSG_NAME(name, value)                                            \
    case value:                                                               \
        return #name;
        EVR_MSG_TYPES(EVR__MSG_NAME)
#undef EVR__MSG_NAME
    }
    return "?";
}

const char *evr_status_counter_name(uint32_t i)
{
    static const char *const names[] = {
#define EVR__STATUS_NAME(name) #name,
        EVR_STATUS_COUNTERS(EVR__STATUS_NAME)
#undef EVR__STATUS_NAME
    };
    return i < EVR_STATUS_COUNTER_END ? names[i] : "?";
}

/* ------------------------------------------------------------ encoding */

size_t evr_frame_begin(struct evr_buf *b, const struct evr_frame_hdr *h,
                       int *rc)
{
    size_t start = b->len;
    uint8_t hdr[EVR_FRAME_HEADER_SIZE] = {0};
    evr_store_u32(hdr, EVR_FRAME_MAGIC);
    hdr[4] = EVR_PROTOCOL_VERSION & 0xff;
    hdr[5] = EVR_PROTOCOL_VERSION >> 8;
    hdr[6] = (uint8_t)(h->type & 0xff);
    hdr[7] = (uint8_t)(h->type >> 8);
    evr_store_u64(hdr + 8, h->cluster);
    evr_store_u32(hdr + 16, h->sender);
    evr_store_u64(hdr + 24, h->view);
    *rc = evr_buf_put(b, hdr, sizeof hdr);
    return start;
}

int evr_frame_end(struct evr_buf *b, size_t start)
{
    assert(start + EVR_FRAME_HEADER_SIZE <= b->len);
    uint8_t *hdr = b->data + start;
    size_t body = b->len - start - EVR_FRAME_HEADER_SIZE;
    if (body > UINT32_MAX) {
        return EVR_ELIMIT;
    }
    evr_store_u32(hdr + 20, (uint32_t)body);
    evr_h128_to_bytes(evr_hash128(hdr + EVR_FRAME_HEADER_SIZE, body, 0),
                      hdr + 32);
    evr_h128_to_bytes(evr_hash128(hdr, 48, 0), hdr + 48);
    return 0;
}

int evr_msg_put_h128(struct evr_buf *b, evr_h128 h)
{
    uint8_t x[16];
    evr_h128_to_bytes(h, x);
    return evr_buf_put(b, x, sizeof x);
}

int evr_msg_put_bytes32(struct evr_buf *b, const void *p, uint32_t len)
{
    int rc = evr_buf_put_u32(b, len);
    return rc != 0 ? rc : evr_buf_put(b, p, len);
}

int evr_msg_put_batch_head(struct evr_buf *b, int64_t timestamp_us,
                           uint64_t seed, uint32_t n)
{
    uint8_t x[20];
    evr_store_u64(x, (uint64_t)timestamp_us);
    evr_store_u64(x + 8, seed);
    evr_store_u32(x + 16, n);
    return evr_buf_put(b, x, sizeof x);
}

int evr_msg_put_req(struct evr_buf *b, uint64_t client, uint64_t request_no,
                    const void *p, uint32_t len)
{
    uint8_t x[20];
    evr_store_u64(x, client);
    evr_store_u64(x + 8, request_no);
    evr_store_u32(x + 16, len);
    int rc = evr_buf_put(b, x, sizeof x);
    return rc != 0 ? rc : evr_buf_put(b, p, len);
}

int evr_msg_put_entry(struct evr_buf *b, uint64_t op, uint64_t view,
                      bool committed, evr_h128 token, uint32_t holders,
                      const void *batch_bytes, size_t batch_len)
{
    uint8_t x[8 + 8 + 1 + 16 + 4];
    evr_store_u64(x, op);
    evr_store_u64(x + 8, view);
    x[16] = committed ? 1 : 0;
    evr_h128_to_bytes(token, x + 17);
    evr_store_u32(x + 33, holders);
    int rc = evr_buf_put(b, x, sizeof x);
    return rc != 0 ? rc : evr_buf_put(b, batch_bytes, batch_len);
}

/* ------------------------------------------------------------ decoding */

static evr_h128 get_h128(struct evr_reader *r)
{
    const uint8_t *p = evr_get_bytes(r, 16);
    evr_h128 zero = {0, 0};
    return p != NULL ? evr_h128_from_bytes(p) : zero;
}

static bool get_flag(struct evr_reader *r)
{
    uint8_t v = evr_get_u8(r);
    if (v > 1) {
        r->ok = false;
    }
    return v == 1;
}

/* u32 len, len bytes, len <= max */
static const uint8_t *get_sized(struct evr_reader *r, uint32_t max,
                                uint32_t *len)
{
    *len = evr_get_u32(r);
    if (*len > max) {
        r->ok = false;
        *len = 0;
        return NULL;
    }
    return evr_get_bytes(r, *len);
}

static void get_batch(struct evr_reader *r, struct evr_msg_batch *b)
{
    size_t start = r->pos;
    b->timestamp_us = (int64_t)evr_get_u64(r);
    b->seed = evr_get_u64(r);
    b->n = evr_get_u32(r);
    size_t reqs = r->pos;
    for (uint32_t i = 0; r->ok && i < b->n; i++) {
        uint32_t len;
        evr_get_bytes(r, 16);
        get_sized(r, EVR_REQUEST_BYTES_MAX, &len);
    }
    b->reqs = r->p + reqs;
    b->reqs_len = r->ok ? r->pos - reqs : 0;
    b->bytes = r->p + start;
    b->bytes_len = r->ok ? r->pos - start : 0;
}

static void get_entry(struct evr_reader *r, struct evr_msg_entry *e)
{
    e->op = evr_get_u64(r);
    e->view = evr_get_u64(r);
    e->committed = get_flag(r);
    e->token = get_h128(r);
    e->holders = evr_get_u32(r);
    get_batch(r, &e->batch);
}

/* The entries must be consecutive ops, ascending. */
static void get_log(struct evr_reader *r, struct evr_msg_log *l)
{
    l->count = evr_get_u32(r);
    if (l->count > EVR_MSG_ENTRIES_MAX) {
        r->ok = false;
        return;
    }
    size_t start = r->pos;
    uint64_t prev = 0;
    for (uint32_t i = 0; r->ok && i < l->count; i++) {
        struct evr_msg_entry e;
        get_entry(r, &e);
        if (e.op == 0 || (i > 0 && e.op != prev + 1)) {
            r->ok = false;
        }
        prev = e.op;
    }
    l->p = r->p + start;
    l->len = r->pos - start;
}

static void get_responses(struct evr_reader *r, struct evr_msg_responses *o)
{
    size_t start = r->pos;
    o->n = evr_get_u32(r);
    for (uint32_t i = 0; r->ok && i < o->n; i++) {
        uint32_t len;
        evr_get_u32(r);
        get_sized(r, UINT32_MAX, &len);
    }
    o->p = r->p + start;
    o->len = r->pos - start;
}

static void get_tokens(struct evr_reader *r, struct evr_msg *m)
{
    m->u.commit.commit = evr_get_u64(r);
    m->u.commit.count = evr_get_u32(r);
    if (m->u.commit.count > EVR_MSG_TOKENS_MAX) {
        r->ok = false;
        return;
    }
    m->u.commit.p = r->p + r->pos;
    evr_get_bytes(r, (size_t)m->u.commit.count * (8 + 16 + 4));
}

static void decode_client(struct evr_reader *r, struct evr_msg *m)
{
    if (m->h.type == EVR_MSG_REQUEST) {
        m->u.request.client = evr_get_u64(r);
        m->u.request.request_no = evr_get_u64(r);
        m->u.request.data =
            get_sized(r, EVR_REQUEST_BYTES_MAX, &m->u.request.len);
        return;
    }
    m->u.reply.client = evr_get_u64(r);
    m->u.reply.request_no = evr_get_u64(r);
    m->u.reply.op = evr_get_u64(r);
    m->u.reply.status = (int32_t)evr_get_u32(r);
    m->u.reply.data = get_sized(r, UINT32_MAX, &m->u.reply.len);
}

static void decode_normal(struct evr_reader *r, struct evr_msg *m)
{
    switch (m->h.type) {
    case EVR_MSG_PREPARE:
        m->u.prepare.op = evr_get_u64(r);
        m->u.prepare.attempt = evr_get_u32(r);
        m->u.prepare.sequential = get_flag(r);
        m->u.prepare.commit = evr_get_u64(r);
        get_batch(r, &m->u.prepare.batch);
        break;
    case EVR_MSG_PREPARE_OK:
        m->u.prepare_ok.op = evr_get_u64(r);
        m->u.prepare_ok.attempt = evr_get_u32(r);
        m->u.prepare_ok.token = get_h128(r);
        break;
    case EVR_MSG_COMMIT:
        get_tokens(r, m);
        break;
    case EVR_MSG_ROLLBACK:
        m->u.rollback.op = evr_get_u64(r);
        m->u.rollback.attempt = evr_get_u32(r);
        break;
    case EVR_MSG_GET_DELTA:
        m->u.get_delta.op = evr_get_u64(r);
        m->u.get_delta.token = get_h128(r);
        break;
    case EVR_MSG_DELTA:
        m->u.delta.op = evr_get_u64(r);
        m->u.delta.token = get_h128(r);
        m->u.delta.ok = get_flag(r);
        if (m->u.delta.ok) {
            get_responses(r, &m->u.delta.resp);
            m->u.delta.data = get_sized(r, UINT32_MAX, &m->u.delta.len);
        }
        break;
    }
}

static void decode_view(struct evr_reader *r, struct evr_msg *m)
{
    switch (m->h.type) {
    case EVR_MSG_START_VIEW_CHANGE:
        break;
    case EVR_MSG_DO_VIEW_CHANGE:
        m->u.do_view_change.last_normal_view = evr_get_u64(r);
        m->u.do_view_change.op = evr_get_u64(r);
        m->u.do_view_change.commit = evr_get_u64(r);
        get_log(r, &m->u.do_view_change.log);
        break;
    case EVR_MSG_START_VIEW:
        m->u.start_view.op = evr_get_u64(r);
        m->u.start_view.commit = evr_get_u64(r);
        get_log(r, &m->u.start_view.log);
        break;
    case EVR_MSG_RECOVERY:
        m->u.recovery.nonce = evr_get_u64(r);
        break;
    case EVR_MSG_RECOVERY_RESPONSE:
        m->u.recovery_response.nonce = evr_get_u64(r);
        m->u.recovery_response.has_log = get_flag(r);
        if (m->u.recovery_response.has_log) {
            m->u.recovery_response.op = evr_get_u64(r);
            m->u.recovery_response.commit = evr_get_u64(r);
            get_log(r, &m->u.recovery_response.log);
        }
        break;
    }
}

static void decode_status_reply(struct evr_reader *r, struct evr_msg *m)
{
    m->u.status_reply.replica = evr_get_u32(r);
    m->u.status_reply.replicas = evr_get_u32(r);
    m->u.status_reply.primary = get_flag(r);
    m->u.status_reply.status = evr_get_u8(r);
    m->u.status_reply.mode = evr_get_u8(r);
    m->u.status_reply.view = evr_get_u64(r);
    m->u.status_reply.op = evr_get_u64(r);
    m->u.status_reply.commit = evr_get_u64(r);
    m->u.status_reply.applied = evr_get_u64(r);
    m->u.status_reply.token = get_h128(r);
    m->u.status_reply.root = get_h128(r);
    m->u.status_reply.count = evr_get_u32(r);
    if (m->u.status_reply.count > EVR_STATUS_COUNTERS_MAX) {
        r->ok = false;
        return;
    }
    m->u.status_reply.counters = r->p + r->pos;
    evr_get_bytes(r, (size_t)m->u.status_reply.count * 8);
}

static void decode_state(struct evr_reader *r, struct evr_msg *m)
{
    switch (m->h.type) {
    case EVR_MSG_GET_STATE:
        m->u.get_state.op_from = evr_get_u64(r);
        break;
    case EVR_MSG_NEW_STATE:
        m->u.new_state.ok = get_flag(r);
        m->u.new_state.op = evr_get_u64(r);
        m->u.new_state.commit = evr_get_u64(r);
        get_log(r, &m->u.new_state.log);
        break;
    case EVR_MSG_GET_SNAPSHOT:
        m->u.get_snapshot.snap_op = evr_get_u64(r);
        m->u.get_snapshot.offset = evr_get_u64(r);
        break;
    case EVR_MSG_STATUS:
        break;
    case EVR_MSG_STATUS_REPLY:
        decode_status_reply(r, m);
        break;
    case EVR_MSG_SNAPSHOT_CHUNK:
        m->u.snapshot_chunk.snap_op = evr_get_u64(r);
        m->u.snapshot_chunk.token = get_h128(r);
        m->u.snapshot_chunk.root = get_h128(r);
        m->u.snapshot_chunk.resp_digest = get_h128(r);
        m->u.snapshot_chunk.hash = get_h128(r);
        m->u.snapshot_chunk.total = evr_get_u64(r);
        m->u.snapshot_chunk.offset = evr_get_u64(r);
        m->u.snapshot_chunk.data =
            get_sized(r, UINT32_MAX, &m->u.snapshot_chunk.len);
        if (m->u.snapshot_chunk.offset > m->u.snapshot_chunk.total ||
            m->u.snapshot_chunk.len >
                m->u.snapshot_chunk.total - m->u.snapshot_chunk.offset) {
            r->ok = false;
        }
        break;
    }
}

int evr_frame_peek(const void *frame, uint64_t cluster, size_t body_max,
                   struct evr_frame_hdr *h, struct evr_err *err)
{
    const uint8_t *p = frame;
    if (!evr_h128_eq(evr_hash128(p, 48, 0), evr_h128_from_bytes(p + 48))) {
        return evr_err_set(err, EVR_ECORRUPT, "bad header checksum");
    }
    if (evr_load_u32(p) != EVR_FRAME_MAGIC ||
        evr_load_u16(p + 4) != EVR_PROTOCOL_VERSION) {
        return evr_err_set(err, EVR_ECORRUPT, "bad magic or version %u",
                           evr_load_u16(p + 4));
    }
    h->type = evr_load_u16(p + 6);
    h->cluster = evr_load_u64(p + 8);
    h->sender = evr_load_u32(p + 16);
    h->body_size = evr_load_u32(p + 20);
    h->view = evr_load_u64(p + 24);
    if (h->type == 0 || h->type >= EVR_MSG_TYPE_END) {
        return evr_err_set(err, EVR_ECORRUPT, "unknown message type %u",
                           h->type);
    }
    if (h->cluster != cluster) {
        return evr_err_set(err, EVR_ECORRUPT, "%s from cluster %llx, not "
                           "%llx", evr_msg_type_name(h->type),
                           (unsigned long long)h->cluster,
                           (unsigned long long)cluster);
    }
    if (h->body_size > body_max) {
        return evr_err_set(err, EVR_ELIMIT, "%s body of %u bytes exceeds "
                           "the limit of %zu", evr_msg_type_name(h->type),
                           h->body_size, body_max);
    }
    return 0;
}

static int check_header(const uint8_t *p, size_t len, uint64_t cluster,
                        size_t body_max, struct evr_frame_hdr *h,
                        struct evr_err *err)
{
    if (len < EVR_FRAME_HEADER_SIZE) {
        return evr_err_set(err, EVR_ECORRUPT, "frame of %zu bytes is shorter "
                           "than its header", len);
    }
    int rc = evr_frame_peek(p, cluster, body_max, h, err);
    if (rc != 0) {
        return rc;
    }
    if (h->body_size != len - EVR_FRAME_HEADER_SIZE) {
        return evr_err_set(err, EVR_ECORRUPT, "%s says %u body bytes, "
                           "%zu came", evr_msg_type_name(h->type),
                           h->body_size, len - EVR_FRAME_HEADER_SIZE);
    }
    return 0;
}

int evr_msg_decode(const void *p, size_t len, uint64_t cluster,
                   size_t body_max, struct evr_msg *m, struct evr_err *err)
{
    const uint8_t *b = p;
    memset(m, 0, sizeof *m);
    int rc = check_header(b, len, cluster, body_max, &m->h, err);
    if (rc != 0) {
        return rc;
    }
    const uint8_t *body = b + EVR_FRAME_HEADER_SIZE;
    if (!evr_h128_eq(evr_hash128(body, m->h.body_size, 0),
                     evr_h128_from_bytes(b + 32))) {
        return evr_err_set(err, EVR_ECORRUPT, "%s: bad body checksum",
                           evr_msg_type_name(m->h.type));
    }
    struct evr_reader r;
    evr_reader_init(&r, body, m->h.body_size);
    if (m->h.type <= EVR_MSG_REPLY) {
        decode_client(&r, m);
    } else if (m->h.type <= EVR_MSG_DELTA) {
        decode_normal(&r, m);
    } else if (m->h.type <= EVR_MSG_RECOVERY_RESPONSE) {
        decode_view(&r, m);
    } else {
        decode_state(&r, m);
    }
    if (!r.ok || evr_reader_left(&r) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "%s: malformed body of %u "
                           "bytes", evr_msg_type_name(m->h.type),
                           m->h.body_size);
    }
    return 0;
}

int evr_msg_batch_parse(const void *p, size_t len,
                        struct evr_msg_batch *out, struct evr_err *err)
{
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    get_batch(&r, out);
    if (!r.ok || evr_reader_left(&r) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "malformed batch of %zu bytes",
                           len);
    }
    return 0;
}

int evr_msg_responses_parse(const void *p, size_t len,
                            struct evr_msg_responses *out,
                            struct evr_err *err)
{
    struct evr_reader r;
    evr_reader_init(&r, p, len);
    get_responses(&r, out);
    if (!r.ok || evr_reader_left(&r) != 0) {
        return evr_err_set(err, EVR_ECORRUPT, "malformed responses of %zu "
                           "bytes", len);
    }
    return 0;
}

/* ------------------------------------------------------------ iterators */

void evr_msg_reqs_iter(const struct evr_msg_batch *b, struct evr_msg_iter *it)
{
    evr_reader_init(&it->r, b->reqs, b->reqs_len);
    it->left = b->n;
}

bool evr_msg_reqs_next(struct evr_msg_iter *it, struct evr_msg_req *out)
{
    if (it->left == 0) {
        return false;
    }
    it->left--;
    out->client = evr_get_u64(&it->r);
    out->request_no = evr_get_u64(&it->r);
    out->data = get_sized(&it->r, EVR_REQUEST_BYTES_MAX, &out->len);
    assert(it->r.ok);
    return it->r.ok;
}

void evr_msg_log_iter(const struct evr_msg_log *l, struct evr_msg_iter *it)
{
    evr_reader_init(&it->r, l->p, l->len);
    it->left = l->count;
}

bool evr_msg_log_next(struct evr_msg_iter *it, struct evr_msg_entry *out)
{
    if (it->left == 0) {
        return false;
    }
    it->left--;
    get_entry(&it->r, out);
    assert(it->r.ok);
    return it->r.ok;
}

void evr_msg_tokens_iter(const struct evr_msg *commit, struct evr_msg_iter *it)
{
    evr_reader_init(&it->r, commit->u.commit.p,
                    (size_t)commit->u.commit.count * (8 + 16 + 4));
    it->left = commit->u.commit.count;
}

bool evr_msg_tokens_next(struct evr_msg_iter *it, struct evr_msg_token *out)
{
    if (it->left == 0) {
        return false;
    }
    it->left--;
    out->op = evr_get_u64(&it->r);
    out->token = get_h128(&it->r);
    out->holders = evr_get_u32(&it->r);
    return it->r.ok;
}

void evr_msg_resp_iter(const struct evr_msg_responses *r,
                       struct evr_msg_iter *it)
{
    evr_reader_init(&it->r, r->p, r->len);
    evr_get_u32(&it->r);
    it->left = r->n;
}

bool evr_msg_resp_next(struct evr_msg_iter *it, int32_t *status,
                       const uint8_t **data, uint32_t *len)
{
    if (it->left == 0) {
        return false;
    }
    it->left--;
    *status = (int32_t)evr_get_u32(&it->r);
    *data = get_sized(&it->r, UINT32_MAX, len);
    assert(it->r.ok);
    return it->r.ok;
}
