/*
 * View change (VR §4.2) and recovery (VR §4.3).
 *
 * A backup that hears nothing from its primary for view_timeout_ms moves to
 * view v+1 and sends START_VIEW_CHANGE; a replica with f of them (its own
 * aside) sends DO_VIEW_CHANGE with its log to the new primary, which waits
 * for f+1 (its own included), takes the log of the largest (last normal
 * view, op), the largest commit and every committed token reported, and
 * sends START_VIEW. Everyone drops its speculative state (everything after
 * applied) and executes the new view's log again.
 *
 * A restarted replica lost its protocol state (not its applied state): it
 * sends RECOVERY with a fresh nonce and waits for f+1 answers carrying it,
 * one from the primary of the latest view among them, whose log it takes.
 */
#include <assert.h>
#include <stdlib.h>

#include "replication/internal.h"

void vr_dvc_clear(struct vr_dvc *d, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        free(d[i].frame);
        memset(&d[i], 0, sizeof d[i]);
    }
}

/* Keeps a copy of a checked frame, decoded again over the copy. */
static void keep_frame(struct evr_vr *r, struct vr_dvc *d, const void *frame,
                       size_t len)
{
    free(d->frame);
    memset(d, 0, sizeof *d);
    d->frame = malloc(len);
    if (d->frame == NULL) {
        return; /* as if lost: the sender retries */
    }
    memcpy(d->frame, frame, len);
    d->len = len;
    d->have = evr_msg_decode(d->frame, len, r->cfg.cluster, r->cfg.body_max,
                             &d->m, NULL) == 0;
}

/* Takes a log from the new view's primary (or a DO_VIEW_CHANGE): all
 * speculative state goes; entries after applied come from log. */
static void drop_working_set(struct evr_vr *r)
{
    if (r->executed > r->applied || r->executing) {
        vr_undo_from(r, r->applied + 1);
    }
    r->repair_op = 0;
    vr_truncate_after(r, r->applied);
    r->commit = r->applied;
}

/* A log that does not reach down to us (its sender's entries were all
 * applied and trimmed): we know op exists and nothing of it. */
static void set_empty_log(struct evr_vr *r, uint64_t op)
{
    while (r->base <= r->op) {
        vr_entry_free(&r->ring[r->base & (r->cap - 1)]);
        r->base++;
    }
    r->op = op;
    r->base = op + 1;
}

static void settle_commit(struct evr_vr *r, uint64_t op, uint64_t commit)
{
    if (r->op < op && r->op <= r->applied) {
        set_empty_log(r, op);
    }
    /* Ops up to commit are committed even where no token came with them
     * (or no entry: a gap above applied); such tokens and entries are
     * fetched (GET_STATE) before the op is applied. Every log a replica
     * sends starts at or below its commit + 1, so the entries above commit
     * are all here. */
    uint64_t c = commit < r->op ? commit : r->op;
    for (uint64_t o = r->commit + 1; o <= c; o++) {
        struct vr_entry *e = vr_entry(r, o);
        if (e != NULL) {
            e->committed = true;
        }
    }
    if (c > r->commit) {
        r->commit = c;
    }
    assert(r->commit + 1 >= r->base);
}

static void adopt_log(struct evr_vr *r, const struct evr_msg_log *log,
                      uint64_t op, uint64_t commit)
{
    drop_working_set(r);
    int rc = vr_merge_log(r, log);
    if (rc != 0) {
        vr_log(r, 1, "new view's log only partly taken: %s",
               evr_strerror(rc));
    }
    settle_commit(r, op, commit);
}

void vr_log_in_view(struct evr_vr *r)
{
    if (r->lnv_pending) {
        r->lnv_pending = false;
        r->last_normal_view = r->view;
    }
}

static void enter_normal(struct evr_vr *r)
{
    r->status = EVR_VR_NORMAL;
    r->lnv_pending = false;
    r->last_normal_view = r->view;
    r->primary_ms = r->now_ms;
    r->heartbeat_ms = r->now_ms;
    r->attempts = 0;
    vr_drop_queue(r);
    vr_dvc_clear(r->dvc, r->cfg.replicas);
    for (uint64_t op = r->commit + 1; op <= r->op; op++) {
        struct vr_entry *e = vr_entry(r, op);
        vr_reset_votes(r, e, 0);
        e->sequential = false;
    }
    /* Batch time never goes back, whoever's clock stamped the log. */
    for (uint64_t op = r->base; op <= r->op; op++) {
        int64_t ts = vr_entry(r, op)->timestamp_us;
        if (ts > r->last_timestamp_us) {
            r->last_timestamp_us = ts;
        }
    }
    vr_log(r, 2, "normal as %s, op %llu commit %llu applied %llu",
           vr_is_primary(r) ? "primary" : "backup", (unsigned long long)r->op,
           (unsigned long long)r->commit, (unsigned long long)r->applied);
}

/* ------------------------------------------------------------ messages */

static size_t put_view_log(struct evr_vr *r, enum evr_msg_type type,
                           int *rc)
{
    size_t start = vr_begin(r, type, rc);
    if (*rc == 0 && type == EVR_MSG_DO_VIEW_CHANGE) {
        *rc = evr_buf_put_u64(&r->out, r->last_normal_view);
    }
    if (*rc == 0) {
        *rc = evr_buf_put_u64(&r->out, r->op);
    }
    if (*rc == 0) {
        *rc = evr_buf_put_u64(&r->out, r->commit);
    }
    if (*rc == 0) {
        *rc = vr_put_log(r, vr_log_from(r), r->op);
    }
    return start;
}

static void send_start_view(struct evr_vr *r, int to)
{
    int rc;
    size_t start = put_view_log(r, EVR_MSG_START_VIEW, &rc);
    if (to < 0) {
        vr_send_all(r, start, rc);
    } else {
        vr_send_to(r, (uint32_t)to, start, rc);
    }
}

static void check_dvc(struct evr_vr *r);

static void send_dvc(struct evr_vr *r)
{
    int rc;
    size_t start = put_view_log(r, EVR_MSG_DO_VIEW_CHANGE, &rc);
    uint32_t primary = vr_primary_of(r, r->view);
    r->dvc_sent = true;
    if (primary != r->cfg.self) {
        vr_send_to(r, primary, start, rc);
        return;
    }
    if (rc == 0 && evr_frame_end(&r->out, start) == 0) {
        keep_frame(r, &r->dvc[r->cfg.self], r->out.data + start,
                   r->out.len - start);
        check_dvc(r);
    }
}

static void check_svc(struct evr_vr *r)
{
    uint32_t others = r->svc_from & ~(1u << r->cfg.self);
    if (!r->dvc_sent && (uint32_t)__builtin_popcount(others) >= r->f) {
        send_dvc(r);
    }
}

void vr_start_view_change(struct evr_vr *r, uint64_t view)
{
    assert(view > r->view);
    if (r->status == EVR_VR_NORMAL && !r->lnv_pending) {
        r->last_normal_view = r->view;
    }
    r->lnv_pending = false;
    vr_log(r, 2, "view change to view %llu", (unsigned long long)view);
    r->view = view;
    r->status = EVR_VR_VIEW_CHANGE;
    r->svc_from = 1u << r->cfg.self;
    r->dvc_sent = false;
    r->vc_ms = r->vc_sent_ms = r->now_ms;
    vr_dvc_clear(r->dvc, r->cfg.replicas);
    vr_drop_queue(r);
    int rc;
    size_t start = vr_begin(r, EVR_MSG_START_VIEW_CHANGE, &rc);
    vr_send_all(r, start, rc);
    check_svc(r);
}

void vr_on_start_view_change(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status == EVR_VR_RECOVERING || m->h.view < r->view) {
        return;
    }
    if (m->h.view > r->view) {
        vr_start_view_change(r, m->h.view);
    }
    if (r->status == EVR_VR_VIEW_CHANGE) {
        r->svc_from |= 1u << m->h.sender;
        check_svc(r);
    } else if (vr_is_primary(r)) {
        send_start_view(r, (int)m->h.sender); /* it missed START_VIEW */
    }
}

/* The largest (last normal view, op) among the kept DO_VIEW_CHANGEs. */
static uint32_t best_dvc(const struct evr_vr *r, uint64_t *commit_max)
{
    const struct vr_dvc *best = NULL;
    uint32_t at = 0;
    *commit_max = 0;
    for (uint32_t i = 0; i < r->cfg.replicas; i++) {
        const struct vr_dvc *d = &r->dvc[i];
        if (!d->have) {
            continue;
        }
        const __typeof__(d->m.u.do_view_change) *v = &d->m.u.do_view_change;
        if (v->commit > *commit_max) {
            *commit_max = v->commit;
        }
        if (best == NULL ||
            v->last_normal_view > best->m.u.do_view_change.last_normal_view ||
            (v->last_normal_view == best->m.u.do_view_change.last_normal_view &&
             v->op > best->m.u.do_view_change.op)) {
            best = d;
            at = i;
        }
    }
    return at;
}

/* The entries of every kept DO_VIEW_CHANGE, decoded once for lookup. */
struct dvc_logs {
    struct evr_msg_entry *e[EVR_REPLICAS_MAX];
    uint64_t first[EVR_REPLICAS_MAX];
    uint32_t count[EVR_REPLICAS_MAX];
};

static int dvc_logs_load(const struct evr_vr *r, struct dvc_logs *l)
{
    memset(l, 0, sizeof *l);
    for (uint32_t i = 0; i < r->cfg.replicas; i++) {
        const struct evr_msg_log *log = &r->dvc[i].m.u.do_view_change.log;
        if (!r->dvc[i].have || log->count == 0) {
            continue;
        }
        l->e[i] = vr_log_entries(log);
        if (l->e[i] == NULL) {
            return EVR_ENOMEM;
        }
        l->count[i] = log->count;
        l->first[i] = l->e[i][0].op;
    }
    return 0;
}

static void dvc_logs_free(struct dvc_logs *l)
{
    for (uint32_t i = 0; i < EVR_REPLICAS_MAX; i++) {
        free(l->e[i]);
    }
}

static const struct evr_msg_entry *dvc_at(const struct dvc_logs *l,
                                          uint32_t i, uint64_t op)
{
    if (l->e[i] == NULL || op < l->first[i] ||
        op - l->first[i] >= l->count[i]) {
        return NULL;
    }
    return &l->e[i][op - l->first[i]];
}

/* Op's entry in the new view: the best log's, else any committed one (VR:
 * a committed op is the same in every log that holds it). */
static const struct evr_msg_entry *source(const struct evr_vr *r,
                                          const struct dvc_logs *l,
                                          uint32_t best, uint64_t op)
{
    const struct evr_msg_entry *m = dvc_at(l, best, op);
    for (uint32_t i = 0; m == NULL && i < r->cfg.replicas; i++) {
        const struct evr_msg_entry *c = dvc_at(l, i, op);
        m = c != NULL && c->committed ? c : NULL;
    }
    return m;
}

/* The new primary's log: ops down from the best op as far as some log
 * holds them, then every committed token reported for them. */
static void adopt_dvcs(struct evr_vr *r, uint32_t best, uint64_t commit_max)
{
    struct dvc_logs l;
    uint64_t top = r->dvc[best].m.u.do_view_change.op;
    drop_working_set(r);
    if (dvc_logs_load(r, &l) == 0) {
        uint64_t low = top + 1;
        while (low - 1 > r->applied && source(r, &l, best, low - 1) != NULL) {
            low--;
        }
        for (uint64_t op = low; op <= top && r->failure.code == 0; op++) {
            const struct evr_msg_entry *m = source(r, &l, best, op);
            struct vr_entry *e = vr_append(r, op, m->view, m->batch.bytes,
                                           m->batch.bytes_len);
            if (e == NULL) {
                break;
            }
            for (uint32_t i = 0; i < r->cfg.replicas; i++) {
                const struct evr_msg_entry *c = dvc_at(&l, i, op);
                if (c != NULL && c->committed &&
                    vr_same_batch(e, &c->batch)) {
                    vr_set_committed(r, e, c->token, c->holders);
                }
            }
        }
    }
    dvc_logs_free(&l);
    settle_commit(r, top, commit_max);
}

static void check_dvc(struct evr_vr *r)
{
    uint32_t have = 0;
    for (uint32_t i = 0; i < r->cfg.replicas; i++) {
        have += r->dvc[i].have ? 1 : 0;
    }
    if (have < r->f + 1 || !r->dvc[r->cfg.self].have) {
        return;
    }
    uint64_t commit_max;
    uint32_t best = best_dvc(r, &commit_max);
    adopt_dvcs(r, best, commit_max);
    enter_normal(r);
    r->stats.view_changes++;
    vr_clients_rebuild_pending(r);
    for (uint64_t op = r->commit + 1;
         op <= r->op && r->cfg.mode == EVR_VR_AGREE_EXECUTE; op++) {
        evr_h128 zero = {0, 0};
        evr_votes_add(&vr_entry(r, op)->votes, r->cfg.self, zero);
    }
    send_start_view(r, -1);
    vr_decide(r);
}

void vr_on_do_view_change(struct evr_vr *r, const struct evr_msg *m,
                          const void *frame, size_t len)
{
    if (r->status == EVR_VR_RECOVERING || m->h.view < r->view ||
        vr_primary_of(r, m->h.view) != r->cfg.self) {
        return;
    }
    if (m->h.view > r->view) {
        vr_start_view_change(r, m->h.view);
    }
    if (r->status == EVR_VR_NORMAL) {
        send_start_view(r, (int)m->h.sender);
        return;
    }
    r->svc_from |= 1u << m->h.sender; /* a DVC implies its SVC */
    keep_frame(r, &r->dvc[m->h.sender], frame, len);
    check_svc(r);
    check_dvc(r);
}

static void after_adopt(struct evr_vr *r)
{
    if (r->cfg.mode != EVR_VR_AGREE_EXECUTE) {
        return;
    }
    for (uint64_t op = r->commit + 1; op <= r->op; op++) {
        vr_send_prepare_ok(r, vr_entry(r, op));
    }
}

void vr_on_start_view(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status == EVR_VR_RECOVERING || m->h.view < r->view ||
        (m->h.view == r->view && r->status == EVR_VR_NORMAL) ||
        m->h.sender != vr_primary_of(r, m->h.view)) {
        return;
    }
    r->view = m->h.view;
    adopt_log(r, &m->u.start_view.log, m->u.start_view.op,
              m->u.start_view.commit);
    enter_normal(r);
    r->stats.view_changes++;
    after_adopt(r);
}

void vr_join_view(struct evr_vr *r, uint64_t view)
{
    vr_log(r, 2, "joining view %llu late", (unsigned long long)view);
    if (r->executed > r->applied || r->executing) {
        vr_undo_from(r, r->applied + 1);
    }
    r->repair_op = 0;
    vr_truncate_after(r, r->commit);
    uint64_t lnv = r->last_normal_view;
    r->view = view;
    enter_normal(r);
    r->stats.view_changes++;
    /* Our log is the committed prefix, not view's log: a DO_VIEW_CHANGE
     * claiming `view` now could win with it and lose ops in view's log
     * (VR's choice trusts the last normal view), and a vote from us would
     * count toward commits our DO_VIEW_CHANGE could not vouch for. So no
     * votes, and the old last normal view, until a NEW_STATE from view's
     * primary brings its whole log (vr_log_in_view). */
    r->last_normal_view = lnv;
    r->lnv_pending = true;
    r->get_state_ms = 0;
    vr_request_state(r, vr_primary_of(r, view));
}

/* ------------------------------------------------------------ recovery */

static void send_recovery(struct evr_vr *r)
{
    r->recovery_ms = r->now_ms;
    int rc;
    size_t start = vr_begin(r, EVR_MSG_RECOVERY, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, r->nonce);
    }
    vr_send_all(r, start, rc);
}

void vr_start_recovery(struct evr_vr *r)
{
    r->stats.recoveries++;
    if (r->cfg.replicas == 1) {
        return; /* alone, the applied state is all there is */
    }
    r->status = EVR_VR_RECOVERING;
    r->nonce = r->io.random(r->io.data) | 1;
    vr_dvc_clear(r->rr, r->cfg.replicas);
    send_recovery(r);
}

void vr_on_recovery(struct evr_vr *r, const struct evr_msg *m)
{
    if (r->status != EVR_VR_NORMAL) {
        return;
    }
    bool primary = vr_is_primary(r);
    int rc;
    size_t start = vr_begin(r, EVR_MSG_RECOVERY_RESPONSE, &rc);
    if (rc == 0) {
        rc = evr_buf_put_u64(&r->out, m->u.recovery.nonce);
    }
    if (rc == 0) {
        rc = evr_buf_put_u8(&r->out, primary ? 1 : 0);
    }
    if (rc == 0 && primary) {
        rc = evr_buf_put_u64(&r->out, r->op);
        if (rc == 0) {
            rc = evr_buf_put_u64(&r->out, r->commit);
        }
        if (rc == 0) {
            rc = vr_put_log(r, vr_log_from(r), r->op);
        }
    }
    vr_send_to(r, m->h.sender, start, rc);
}

void vr_on_recovery_response(struct evr_vr *r, const struct evr_msg *m,
                             const void *frame, size_t len)
{
    if (r->status != EVR_VR_RECOVERING ||
        m->u.recovery_response.nonce != r->nonce) {
        return;
    }
    keep_frame(r, &r->rr[m->h.sender], frame, len);
    uint32_t have = 0;
    uint64_t view = 0;
    for (uint32_t i = 0; i < r->cfg.replicas; i++) {
        if (r->rr[i].have) {
            have++;
            view = r->rr[i].m.h.view > view ? r->rr[i].m.h.view : view;
        }
    }
    const struct vr_dvc *p = &r->rr[vr_primary_of(r, view)];
    if (have < r->f + 1 || !p->have || p->m.h.view != view ||
        !p->m.u.recovery_response.has_log) {
        return;
    }
    r->view = view;
    adopt_log(r, &p->m.u.recovery_response.log, p->m.u.recovery_response.op,
              p->m.u.recovery_response.commit);
    vr_dvc_clear(r->rr, r->cfg.replicas);
    enter_normal(r); /* counted as a recovery, in vr_start_recovery */
    after_adopt(r);
}

void vr_view_tick(struct evr_vr *r)
{
    switch (r->status) {
    case EVR_VR_NORMAL:
        if (!vr_is_primary(r) &&
            r->now_ms - r->primary_ms >= r->cfg.view_timeout_ms) {
            vr_start_view_change(r, r->view + 1);
        }
        break;
    case EVR_VR_VIEW_CHANGE:
        if (r->now_ms - r->vc_ms >= r->cfg.view_timeout_ms) {
            vr_start_view_change(r, r->view + 1);
        } else if (r->now_ms - r->vc_sent_ms >= r->cfg.retry_ms) {
            r->vc_sent_ms = r->now_ms;
            int rc;
            size_t start = vr_begin(r, EVR_MSG_START_VIEW_CHANGE, &rc);
            vr_send_all(r, start, rc);
            if (r->dvc_sent && vr_primary_of(r, r->view) != r->cfg.self) {
                send_dvc(r);
            }
        }
        break;
    case EVR_VR_RECOVERING:
        if (r->now_ms - r->recovery_ms >= r->cfg.retry_ms) {
            send_recovery(r); /* answers so far stay: same nonce */
        }
        break;
    }
}
