/*
 * replication/msg — the wire format of every protocol message.
 *
 * A frame is a fixed 64-byte header followed by a body. All integers are
 * little-endian; hashes are 16 bytes (common/hash.h byte form).
 *
 *   offset size  field
 *        0    4  magic 0x31525645 ("EVR1")
 *        4    2  protocol version (EVR_PROTOCOL_VERSION)
 *        6    2  message type (enum evr_msg_type)
 *        8    8  cluster id
 *       16    4  sender: replica index, or EVR_SENDER_CLIENT
 *       20    4  body size in bytes
 *       24    8  view of the sender
 *       32   16  body checksum: XXH3-128 of the body
 *       48   16  header checksum: XXH3-128 of bytes 0..47
 *
 * A frame is accepted only if every field checks: magic, version, a known
 * type, the receiver's cluster id, the body size within the receiver's limit
 * and equal to what follows, both checksums, and a body that decodes exactly
 * (no byte left over, every count and length within bounds). Anything else
 * is dropped whole: nothing of it is applied.
 *
 * Bodies (one line per field, in order):
 *
 *   REQUEST           u64 client, u64 request_no, u32 len, len bytes
 *   REPLY             u64 client, u64 request_no, u64 op, i32 status,
 *                     u32 len, len bytes
 *   PREPARE           u64 op, u32 attempt, u8 flags (bit 0: sequential),
 *                     u64 commit, batch
 *   PREPARE_OK        u64 op, u32 attempt, token
 *   COMMIT            u64 commit, u32 count, count x (u64 op, token,
 *                     u32 holders)
 *   ROLLBACK          u64 op, u32 attempt
 *   GET_DELTA         u64 op, token
 *   DELTA             u64 op, token, u8 ok; if ok: responses, u32 len,
 *                     len bytes (the state delta, the host's format)
 *   START_VIEW_CHANGE (empty)
 *   DO_VIEW_CHANGE    u64 last_normal_view, u64 op, u64 commit, log
 *   START_VIEW        u64 op, u64 commit, log
 *   RECOVERY          u64 nonce
 *   RECOVERY_RESPONSE u64 nonce, u8 has_log; if has_log: u64 op,
 *                     u64 commit, log
 *   GET_STATE         u64 op_from
 *   NEW_STATE         u8 ok, u64 op, u64 commit, log
 *   GET_SNAPSHOT      u64 snap_op (0: the newest), u64 offset
 *   SNAPSHOT_CHUNK    u64 snap_op, token, state root, response digest,
 *                     snapshot hash, u64 total, u64 offset, u32 len,
 *                     len bytes
 *
 *   STATUS            (empty; from a client: the server answers it, the
 *                     protocol core never sees it)
 *   STATUS_REPLY      u32 replica, u32 replicas, u8 primary, u8 status
 *                     (enum evr_vr_status), u8 mode (enum evr_vr_mode),
 *                     u64 view, u64 op, u64 commit, u64 applied, token of
 *                     applied, state root of applied, u32 count (at most
 *                     EVR_STATUS_COUNTERS_MAX), count x u64 counters in
 *                     the order of EVR_STATUS_COUNTERS (a newer server may
 *                     send more; an older client reads what it knows)
 *
 *   batch      i64 timestamp_us, u64 seed, u32 n, n x (u64 client,
 *              u64 request_no, u32 len, len bytes)
 *   responses  u32 n, n x (i32 status, u32 len, len bytes)
 *   log        u32 count, count x entry, ops consecutive and ascending
 *   entry      u64 op, u64 view, u8 committed, token, u32 holders, batch
 *
 * Decoded messages borrow the frame's bytes: batches, logs and responses
 * stay encoded, checked, and are walked with the iterators below.
 */
#ifndef EVR_REPLICATION_MSG_H
#define EVR_REPLICATION_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"

#define EVR_FRAME_MAGIC 0x31525645u
#define EVR_PROTOCOL_VERSION 1
#define EVR_FRAME_HEADER_SIZE 64
#define EVR_SENDER_CLIENT 0xffffffffu
#define EVR_REQUEST_BYTES_MAX (1u << 20)  /* one client request */
#define EVR_MSG_ENTRIES_MAX 65536         /* log entries in one message */
#define EVR_MSG_TOKENS_MAX 1024           /* tokens in one COMMIT */

#define EVR_MSG_TYPES(XX)                                                     \
    XX(REQUEST, 1)                                                            \
    XX(REPLY, 2)                                                              \
    XX(PREPARE, 3)                                                            \
    XX(PREPARE_OK, 4)                                                         \
    XX(COMMIT, 5)                                                             \
    XX(ROLLBACK, 6)                                                           \
    XX(GET_DELTA, 7)                                                          \
    XX(DELTA, 8)                                                              \
    XX(START_VIEW_CHANGE, 9)                                                  \
    XX(DO_VIEW_CHANGE, 10)                                                    \
    XX(START_VIEW, 11)                                                        \
    XX(RECOVERY, 12)                                                          \
    XX(RECOVERY_RESPONSE, 13)                                                 \
    XX(GET_STATE, 14)                                                         \
    XX(NEW_STATE, 15)                                                         \
    XX(GET_SNAPSHOT, 16)                                                      \
    XX(SNAPSHOT_CHUNK, 17)                                                    \
    XX(STATUS, 18)                                                            \
    XX(STATUS_REPLY, 19)

/* Counters a STATUS_REPLY carries, in order. */
#define EVR_STATUS_COUNTERS(XX)                                               \
    XX(requests)                                                              \
    XX(requests_dropped)                                                      \
    XX(batches_prepared)                                                      \
    XX(batches_executed)                                                      \
    XX(batches_applied)                                                       \
    XX(rollbacks)                                                             \
    XX(rollbacks_done)                                                        \
    XX(repairs)                                                               \
    XX(state_transfers)                                                       \
    XX(view_changes)                                                          \
    XX(recoveries)                                                            \
    XX(frames_in)                                                             \
    XX(frames_out)                                                            \
    XX(frames_bad)                                                            \
    XX(replies)                                                               \
    XX(connections)                                                           \
    XX(connections_refused)
#define EVR_STATUS_COUNTERS_MAX 64

enum evr_status_counter {
#define EVR__STATUS_ENUM(name) EVR_STATUS_##name,
    EVR_STATUS_COUNTERS(EVR__STATUS_ENUM)
#undef EVR__STATUS_ENUM
    EVR_STATUS_COUNTER_END
};

const char *evr_status_counter_name(uint32_t i); /* "rollbacks"; "?" */

enum evr_msg_type {
#define EVR__MSG_ENUM(name, value) EVR_MSG_##name = (value),
    EVR_MSG_TYPES(EVR__MSG_ENUM)
#undef EVR__MSG_ENUM
    EVR_MSG_TYPE_END
};

const char *evr_msg_type_name(uint32_t type); /* "PREPARE"; "?" if unknown */

struct evr_frame_hdr {
    uint16_t type;
    uint64_t cluster;
    uint32_t sender;
    uint64_t view;
    uint32_t body_size;
};

/* A batch's requests, walked in order. */
struct evr_msg_req {
    uint64_t client;
    uint64_t request_no;
    uint32_t len;
    const uint8_t *data;
};

struct evr_msg_batch {
    int64_t timestamp_us;
    uint64_t seed;
    uint32_t n;
    const uint8_t *reqs;  /* n encoded requests */
    size_t reqs_len;
    const uint8_t *bytes; /* the whole encoded batch */
    size_t bytes_len;
};

struct evr_msg_entry {
    uint64_t op;
    uint64_t view;
    bool committed;
    evr_h128 token;
    uint32_t holders;
    struct evr_msg_batch batch;
};

struct evr_msg_log {
    uint32_t count;
    const uint8_t *p; /* count encoded entries */
    size_t len;
};

struct evr_msg_responses {
    uint32_t n;
    const uint8_t *p; /* the whole encoded responses, count included */
    size_t len;
};

struct evr_msg_token {
    uint64_t op;
    evr_h128 token;
    uint32_t holders;
};

struct evr_msg {
    struct evr_frame_hdr h;
    union {
        struct {
            uint64_t client, request_no;
            uint32_t len;
            const uint8_t *data;
        } request;
        struct {
            uint64_t client, request_no, op;
            int32_t status;
            uint32_t len;
            const uint8_t *data;
        } reply;
        struct {
            uint64_t op, commit;
            uint32_t attempt;
            bool sequential;
            struct evr_msg_batch batch;
        } prepare;
        struct {
            uint64_t op;
            uint32_t attempt;
            evr_h128 token;
        } prepare_ok;
        struct {
            uint64_t commit;
            uint32_t count;
            const uint8_t *p; /* count encoded tokens */
        } commit;
        struct {
            uint64_t op;
            uint32_t attempt;
        } rollback;
        struct {
            uint64_t op;
            evr_h128 token;
        } get_delta;
        struct {
            uint64_t op;
            evr_h128 token;
            bool ok;
            struct evr_msg_responses resp;
            uint32_t len;
            const uint8_t *data;
        } delta;
        struct {
            uint64_t last_normal_view, op, commit;
            struct evr_msg_log log;
        } do_view_change;
        struct {
            uint64_t op, commit;
            struct evr_msg_log log;
        } start_view;
        struct {
            uint64_t nonce;
        } recovery;
        struct {
            uint64_t nonce, op, commit;
            bool has_log;
            struct evr_msg_log log;
        } recovery_response;
        struct {
            uint64_t op_from;
        } get_state;
        struct {
            bool ok;
            uint64_t op, commit;
            struct evr_msg_log log;
        } new_state;
        struct {
            uint64_t snap_op, offset;
        } get_snapshot;
        struct {
            uint32_t replica, replicas;
            bool primary;
            uint8_t status, mode;
            uint64_t view, op, commit, applied;
            evr_h128 token, root;
            uint32_t count;
            const uint8_t *counters; /* count x u64 */
        } status_reply;
        struct {
            uint64_t snap_op, total, offset;
            evr_h128 token, root, resp_digest, hash;
            uint32_t len;
            const uint8_t *data;
        } snapshot_chunk;
    } u;
};

/*
 * Checks a whole frame (header and body, the rules above) and decodes it
 * into m, which then borrows p. cluster: the receiver's cluster id;
 * body_max: its size limit. Returns 0 or EVR_ECORRUPT / EVR_ELIMIT with the
 * reason in err.
 */
int evr_msg_decode(const void *p, size_t len, uint64_t cluster,
                   size_t body_max, struct evr_msg *m, struct evr_err *err);

/*
 * Checks the header alone (its first EVR_FRAME_HEADER_SIZE bytes): checksum,
 * magic, version, known type, cluster, body size within body_max — so that
 * a stream reader can refuse a frame before buffering its body. The body is
 * checked by evr_msg_decode once it is all there.
 */
int evr_frame_peek(const void *frame, uint64_t cluster, size_t body_max,
                   struct evr_frame_hdr *h, struct evr_err *err);

/*
 * Encoding: evr_frame_begin appends a header to b (sizes and checksums to be
 * filled), the caller appends the body with evr_buf_put_* and the
 * evr_msg_put_* helpers, and evr_frame_end fills the header in. start is the
 * offset evr_frame_begin returned, so several frames may share a buffer.
 */
size_t evr_frame_begin(struct evr_buf *b, const struct evr_frame_hdr *h,
                       int *rc);
int evr_frame_end(struct evr_buf *b, size_t start);

/* Body pieces. Each returns 0 or the buffer's error (EVR_ELIMIT/ENOMEM). */
int evr_msg_put_h128(struct evr_buf *b, evr_h128 h);
int evr_msg_put_bytes32(struct evr_buf *b, const void *p, uint32_t len);
/* batch header; then evr_msg_put_req n times */
int evr_msg_put_batch_head(struct evr_buf *b, int64_t timestamp_us,
                           uint64_t seed, uint32_t n);
int evr_msg_put_req(struct evr_buf *b, uint64_t client, uint64_t request_no,
                    const void *p, uint32_t len);
/* entry; batch_bytes is an encoded batch */
int evr_msg_put_entry(struct evr_buf *b, uint64_t op, uint64_t view,
                      bool committed, evr_h128 token, uint32_t holders,
                      const void *batch_bytes, size_t batch_len);

/* Checks an encoded batch standing alone (all of p, nothing left over). */
int evr_msg_batch_parse(const void *p, size_t len,
                        struct evr_msg_batch *out, struct evr_err *err);

/* Iterators over checked regions; return false at the end. */
struct evr_msg_iter {
    struct evr_reader r;
    uint32_t left;
};
void evr_msg_reqs_iter(const struct evr_msg_batch *b, struct evr_msg_iter *it);
bool evr_msg_reqs_next(struct evr_msg_iter *it, struct evr_msg_req *out);
void evr_msg_log_iter(const struct evr_msg_log *l, struct evr_msg_iter *it);
bool evr_msg_log_next(struct evr_msg_iter *it, struct evr_msg_entry *out);
void evr_msg_tokens_iter(const struct evr_msg *commit, struct evr_msg_iter *it);
bool evr_msg_tokens_next(struct evr_msg_iter *it, struct evr_msg_token *out);
void evr_msg_resp_iter(const struct evr_msg_responses *r,
                       struct evr_msg_iter *it);
bool evr_msg_resp_next(struct evr_msg_iter *it, int32_t *status,
                       const uint8_t **data, uint32_t *len);

/* Checks an encoded responses region standing alone. */
int evr_msg_responses_parse(const void *p, size_t len,
                            struct evr_msg_responses *out,
                            struct evr_err *err);

#endif
