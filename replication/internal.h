/*
 * replication internals shared by the core's files:
 *
 *   replica.c   life cycle, frame dispatch, timers, sending, inspection
 *   log.c       the log ring and log regions in messages
 *   clients.c   the client table
 *   normal.c    requests, batches, PREPARE / PREPARE_OK / COMMIT /
 *               ROLLBACK, execution and application
 *   catchup.c   repair by delta, GET_STATE / NEW_STATE, snapshots
 *   view.c      view change and recovery
 *
 * Log invariants (checked by vr_check):
 *   - entries base..op are present and consecutive (base > op: none);
 *   - applied <= commit <= op, and applied <= executed <= op (an empty
 *     log has base == op + 1);
 *   - every entry in (applied, executed] has executed == true and a token,
 *     every entry above executed has executed == false (except while a
 *     rollback waits for the running execution: rollback_pending);
 *   - an entry with committed == true and op <= commit has ctoken set
 *     unless ctoken_known is false (learnt by GET_STATE later).
 */
#ifndef EVR_REPLICATION_INTERNAL_H
#define EVR_REPLICATION_INTERNAL_H

#include "replication/vr.h"

struct vr_entry {
    uint64_t op;             /* 0: free slot */
    uint64_t view;           /* view it was prepared in */
    uint32_t attempt;        /* current execution order (this view) */
    bool sequential;         /* current attempt runs sequentially */
    bool committed;
    bool ctoken_known;
    evr_h128 ctoken;
    uint32_t holders;
    bool executed;           /* the host holds this op's result */
    uint32_t exec_attempt;   /* attempt the result belongs to */
    evr_h128 token;          /* own token when executed */
    evr_h128 root;           /* state root and response digest behind it */
    evr_h128 resp_digest;
    struct evr_buf batch;    /* encoded batch (msg.h) */
    struct evr_vr_req *req;  /* parsed view into batch */
    uint32_t nreq;
    int64_t timestamp_us;
    uint64_t seed;
    struct evr_buf resp;     /* encoded responses of the result */
    struct evr_votes votes;  /* primary: this attempt's tokens */
    uint64_t attempt_ms;     /* primary: when this attempt began */
    uint64_t sent_ms;        /* primary: last PREPARE sent */
};

struct vr_client {
    uint64_t client;         /* 0: free slot */
    uint64_t request_no;     /* last committed */
    uint64_t pending_no;     /* highest queued or in the log */
    uint64_t op;
    int32_t status;
    struct evr_buf reply;    /* body of the last committed reply */
    uint64_t used;           /* LRU stamp */
};

struct vr_queued {           /* a batch being formed at the primary */
    struct evr_buf reqs;     /* encoded requests */
    uint32_t n;
    uint64_t first_ms;
};

struct vr_dvc {              /* a DO_VIEW_CHANGE kept by the new primary */
    bool have;
    uint8_t *frame;
    size_t len;
    struct evr_msg m;
};

struct evr_vr {
    struct evr_vr_config cfg;
    struct evr_vr_io io;
    struct evr_vr_host host;
    uint32_t f;
    uint64_t now_ms;
    struct evr_err failure;

    /* VR state */
    uint64_t view, last_normal_view;
    bool lnv_pending;  /* joined view late: its log is not view's log yet */
    bool draining;     /* evr_vr_drain: no new batches or ops */
    uint64_t quiet_ms; /* draining: since when quiet (or drain start) */
    enum evr_vr_status status;
    uint64_t op, commit, applied, executed;
    evr_h128 applied_root, applied_resp;

    /* log ring: entry for op at ring[op & (cap - 1)] */
    struct vr_entry *ring;
    uint64_t cap, base;

    /* execution */
    bool executing;
    uint64_t exec_op;
    uint32_t exec_attempt;
    uint64_t rollback_pending;   /* 0 or lowest op to undo on completion */
    struct evr_hasher *hasher;

    /* primary */
    uint32_t attempts;           /* attempts given out in this view */
    struct vr_queued *queue;     /* queue_len formed batches, ring */
    uint32_t queue_cap, queue_head, queue_len, queued_reqs;
    int64_t last_timestamp_us;
    uint64_t commit_sent, heartbeat_ms;

    /* backup */
    uint64_t primary_ms;         /* last word from the primary */
    uint64_t get_state_ms;

    /* view change */
    uint32_t svc_from;
    bool dvc_sent;
    uint64_t vc_ms, vc_sent_ms;
    struct vr_dvc *dvc;          /* one per replica */

    /* recovery */
    uint64_t nonce, recovery_ms;
    struct vr_dvc *rr;           /* RECOVERY_RESPONSEs, one per replica */

    /* repair of op by delta */
    uint64_t repair_op;
    uint32_t repair_tried;       /* holders asked so far (bits) */
    uint64_t repair_ms;

    /* snapshot: receiving */
    bool st_active;
    uint32_t st_source, st_tried;
    uint64_t st_op, st_total, st_ms;
    evr_h128 st_token, st_root, st_resp, st_hash;
    struct evr_buf st_buf;
    /* snapshot: serving (one cached export) */
    uint64_t sv_op;
    evr_h128 sv_root, sv_resp, sv_hash;
    struct evr_buf sv_buf;

    /* client table: open addressing, cap a power of two */
    struct vr_client *clients;
    uint64_t clients_cap, clients_len, clients_clock;

    struct evr_buf out;          /* frame scratch */
    struct evr_vr_stats stats;
};

static inline uint32_t vr_primary_of(const struct evr_vr *r, uint64_t view)
{
    return (uint32_t)(view % r->cfg.replicas);
}
static inline bool vr_is_primary(const struct evr_vr *r)
{
    return vr_primary_of(r, r->view) == r->cfg.self;
}

/* replica.c */
void vr_fail(struct evr_vr *r, const struct evr_err *err, const char *what);
void vr_log(struct evr_vr *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t vr_begin(struct evr_vr *r, enum evr_msg_type type, int *rc);
void vr_send_to(struct evr_vr *r, uint32_t to, size_t start, int rc);
void vr_send_all(struct evr_vr *r, size_t start, int rc);
void vr_send_mask(struct evr_vr *r, uint32_t to, size_t start, int rc);
void vr_check(const struct evr_vr *r);

/* log.c */
struct vr_entry *vr_entry(struct evr_vr *r, uint64_t op); /* NULL if absent */
struct vr_entry *vr_append(struct evr_vr *r, uint64_t op, uint64_t view,
                           const void *batch, size_t len);
void vr_truncate_after(struct evr_vr *r, uint64_t op);
void vr_trim(struct evr_vr *r);
bool vr_log_room(const struct evr_vr *r, uint64_t op);
int vr_put_log(struct evr_vr *r, uint64_t from, uint64_t to);
uint64_t vr_log_from(const struct evr_vr *r);
void vr_entry_free(struct vr_entry *e);
void vr_set_committed(struct evr_vr *r, struct vr_entry *e, evr_h128 token,
                      uint32_t holders);
int vr_merge_log(struct evr_vr *r, const struct evr_msg_log *log);
void vr_advance_commit(struct evr_vr *r);
bool vr_same_batch(const struct vr_entry *e, const struct evr_msg_batch *b);
/* The entries of a checked log, decoded into a malloc'd array (count of
 * them; the caller frees it); NULL when out of memory. */
struct evr_msg_entry *vr_log_entries(const struct evr_msg_log *log);

/* clients.c */
int vr_clients_init(struct evr_vr *r);
void vr_clients_free(struct evr_vr *r);
struct vr_client *vr_client_get(struct evr_vr *r, uint64_t client,
                                bool create);
/* The entry for a new request: found, or made by pushing out only a client
 * with nothing in flight; NULL when every entry has a request in flight
 * (the request is dropped and the client retries). */
struct vr_client *vr_client_admit(struct evr_vr *r, uint64_t client);
void vr_clients_rebuild_pending(struct evr_vr *r);

/* normal.c */
void vr_on_request(struct evr_vr *r, const struct evr_msg *m);
void vr_on_prepare(struct evr_vr *r, const struct evr_msg *m);
void vr_on_prepare_ok(struct evr_vr *r, const struct evr_msg *m);
void vr_on_commit(struct evr_vr *r, const struct evr_msg *m);
void vr_on_rollback(struct evr_vr *r, const struct evr_msg *m);
void vr_primary_tick(struct evr_vr *r);
void vr_progress(struct evr_vr *r);
void vr_undo_from(struct evr_vr *r, uint64_t op);
void vr_send_prepare_ok(struct evr_vr *r, const struct vr_entry *e);
void vr_queue_free(struct evr_vr *r);
void vr_drop_queue(struct evr_vr *r);
int vr_queue_init(struct evr_vr *r);
void vr_decide(struct evr_vr *r);
void vr_reset_votes(struct evr_vr *r, struct vr_entry *e, uint32_t attempt);
void vr_commit_agree(struct evr_vr *r, uint64_t commit);

/* catchup.c */
void vr_on_get_delta(struct evr_vr *r, const struct evr_msg *m);
void vr_on_delta(struct evr_vr *r, const struct evr_msg *m);
void vr_on_get_state(struct evr_vr *r, const struct evr_msg *m);
void vr_on_new_state(struct evr_vr *r, const struct evr_msg *m);
void vr_on_get_snapshot(struct evr_vr *r, const struct evr_msg *m);
void vr_on_snapshot_chunk(struct evr_vr *r, const struct evr_msg *m);
void vr_start_repair(struct evr_vr *r, uint64_t op);
void vr_start_snapshot(struct evr_vr *r, uint32_t source);
void vr_request_state(struct evr_vr *r, uint32_t to);
void vr_catchup_tick(struct evr_vr *r);

/* view.c */
void vr_on_start_view_change(struct evr_vr *r, const struct evr_msg *m);
void vr_on_do_view_change(struct evr_vr *r, const struct evr_msg *m,
                          const void *frame, size_t len);
void vr_on_start_view(struct evr_vr *r, const struct evr_msg *m);
void vr_on_recovery(struct evr_vr *r, const struct evr_msg *m);
void vr_on_recovery_response(struct evr_vr *r, const struct evr_msg *m,
                             const void *frame, size_t len);
void vr_start_view_change(struct evr_vr *r, uint64_t view);
void vr_view_tick(struct evr_vr *r);
void vr_join_view(struct evr_vr *r, uint64_t view);
void vr_start_recovery(struct evr_vr *r);
void vr_dvc_clear(struct vr_dvc *d, uint32_t n);
void vr_log_in_view(struct evr_vr *r);

#endif
