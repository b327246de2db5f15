/* One replica on the network: server.h gives the design. */
#include "server/server.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common/rng.h"
#include "replication/vr.h"
#include "server/host.h"
#include "server/net.h"

#define TICK_MS 1
/* A loop iteration this long (a batch, a snapshot, the machine) is worth a
 * warning: backups start a view change after view_timeout_ms of it. */
#define STALL_WARN_NS (100 * 1000000ull)
/* SIGTERM waits at most this long for the ops in flight to settle, so that
 * the stop is quiet and the next start resumes instead of recovering. */
#define DRAIN_MS 2000
#define STATUS_BODY_MAX 0 /* a STATUS frame has no body */
#define BODY_MAX ((size_t)64 << 20)

struct server {
    const struct evr_server_opts *o;
    uv_loop_t loop;
    uv_timer_t ticker;
    uv_signal_t sigterm, sigint;
    uv_async_t done;   /* the host's execution thread finished a job;
                          unref'd, closed after the host */
    struct net *net;
    struct evr_host *host;
    struct evr_vr *vr;
    struct evr_rng rng;
    struct evr_buf status_out;
    bool stopping;
    bool draining;     /* a signal came: stop once quiet or at drain_end */
    uint64_t drain_end_ms;
    int threads;       /* o->threads, or the automatic choice */
    uint64_t last_tick_ns;
    struct evr_err failure;
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *evr_server_mode_name(enum evr_server_mode m)
{
    switch (m) {
    case EVR_SERVER_EVE:
        return "eve";
    case EVR_SERVER_AGREE_EXECUTE:
        return "agree-execute";
    case EVR_SERVER_UNREPLICATED:
        return "unreplicated";
    }
    return "?";
}

int evr_server_mode_parse(const char *s)
{
    for (int m = EVR_SERVER_EVE; m <= EVR_SERVER_UNREPLICATED; m++) {
        if (strcmp(s, evr_server_mode_name((enum evr_server_mode)m)) == 0) {
            return m;
        }
    }
    return -1;
}

int evr_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

void evr_server_opts_default(struct evr_server_opts *o)
{
    *o = (struct evr_server_opts){
        .cluster_id = 1,
        .mode = EVR_SERVER_EVE,
        .threads = 0,
        .batch_size_max = 128,
        .batch_delay_ms = 0,
        .depth_max = 8,
        .heartbeat_ms = 20,
        .view_timeout_ms = 1000,
        .verify_timeout_ms = 200,
        .connections_max = 1024,
        .out_bytes_max = 256u << 20,
        .routes_max = 65536,
        .log_level = EVR_LOG_INFO,
    };
}

/* ------------------------------------------------------------ logging */

static void vlogf(struct server *s, int level, const char *fmt, va_list ap)
{
    if (level > (int)s->o->log_level) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char msg[700];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ evr[%u] %s: %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, s->o->id,
            level_names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

static void slog(void *data, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlogf(data, level, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ core io */

static void io_send(void *data, uint32_t to, const void *frame, size_t len)
{
    struct server *s = data;
    net_send_peer(s->net, to, frame, len);
}

static void io_reply(void *data, uint64_t client, const void *frame,
                     size_t len)
{
    struct server *s = data;
    net_reply(s->net, client, frame, len);
}

static int64_t io_time_us(void *data)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t io_random(void *data)
{
    struct server *s = data;
    return evr_rng_next(&s->rng);
}

static void io_log(void *data, int level, const char *msg)
{
    slog(data, level, "%s", msg);
}

/* ------------------------------------------------------------ events */

static void stop(struct server *s);

/* While draining: stops once the replica is quiet, or when time is up. */
static void check_drained(struct server *s)
{
    struct evr_vr_info info;
    evr_vr_info(s->vr, &info);
    if (info.drained) {
        stop(s);
    } else if (uv_now(&s->loop) >= s->drain_end_ms) {
        slog(s, EVR_LOG_WARN, "ops still in flight after %d ms (op %llu, "
             "applied %llu, %s): stopping anyway; the next start recovers "
             "from the other replicas", DRAIN_MS,
             (unsigned long long)info.op, (unsigned long long)info.applied,
             evr_vr_status_name(info.status));
        stop(s);
    }
}

/* Delivers finished executions and notices a failed core. */
static void pump(struct server *s)
{
    struct evr_err err;
    int rc;
    while ((rc = evr_host_deliver(s->host, s->vr, &err)) > 0) {
    }
    if (s->failure.code == 0 && (rc < 0 || evr_vr_failed(s->vr, &err) != 0)) {
        s->failure = err;
        slog(s, EVR_LOG_ERROR, "replica stopped: %s", err.msg);
        stop(s);
    }
    if (s->draining && !s->stopping) {
        check_drained(s);
    }
}

static void tick(struct server *s)
{
    if (s->stopping || s->vr == NULL) {
        return;
    }
    evr_vr_tick(s->vr, uv_now(&s->loop));
    pump(s);
}

static void on_tick(uv_timer_t *t)
{
    struct server *s = t->data;
    uint64_t now = uv_hrtime();
    if (s->last_tick_ns != 0 && now - s->last_tick_ns > STALL_WARN_NS) {
        slog(s, EVR_LOG_WARN, "loop stalled %.1f ms",
             (now - s->last_tick_ns) / 1e6);
    }
    s->last_tick_ns = now;
    tick(s);
}

static void on_read_done(void *data)
{
    tick(data);
}

static int put_status(struct server *s, struct evr_buf *b)
{
    struct evr_vr_info info;
    struct evr_vr_stats st;
    struct net_stats ns;
    evr_vr_info(s->vr, &info);
    evr_vr_stats(s->vr, &st);
    net_stats(s->net, &ns);
    uint64_t c[EVR_STATUS_COUNTER_END] = {
        st.requests, st.requests_dropped, st.batches_prepared,
        st.batches_executed, st.batches_applied, st.rollbacks,
        st.rollbacks_done, st.repairs, st.state_transfers, st.view_changes,
        st.recoveries, st.frames_in, st.frames_out,
        st.frames_bad + ns.frames_bad, st.replies, ns.connections,
        ns.connections_refused};
    struct evr_frame_hdr h = {.type = EVR_MSG_STATUS_REPLY,
                              .cluster = s->o->cluster_id,
                              .sender = s->o->id, .view = info.view};
    int rc;
    size_t start = evr_frame_begin(b, &h, &rc);
    rc = rc ? rc : evr_buf_put_u32(b, s->o->id);
    rc = rc ? rc : evr_buf_put_u32(b, s->o->replicas);
    rc = rc ? rc : evr_buf_put_u8(b, info.primary);
    rc = rc ? rc : evr_buf_put_u8(b, (uint8_t)info.status);
    rc = rc ? rc : evr_buf_put_u8(b, (uint8_t)s->o->mode);
    uint64_t v[4] = {info.view, info.op, info.commit, info.applied};
    for (int i = 0; rc == 0 && i < 4; i++) {
        rc = evr_buf_put_u64(b, v[i]);
    }
    rc = rc ? rc : evr_msg_put_h128(b, info.applied_token);
    rc = rc ? rc : evr_msg_put_h128(b, info.applied_root);
    rc = rc ? rc : evr_buf_put_u32(b, EVR_STATUS_COUNTER_END);
    for (int i = 0; rc == 0 && i < EVR_STATUS_COUNTER_END; i++) {
        rc = evr_buf_put_u64(b, c[i]);
    }
    return rc ? rc : evr_frame_end(b, start);
}

static bool answer_status(struct server *s, struct net_conn *c,
                          const uint8_t *frame, size_t len)
{
    struct evr_msg m;
    struct evr_err err;
    if (evr_msg_decode(frame, len, s->o->cluster_id, STATUS_BODY_MAX, &m,
                       &err) != 0) {
        slog(s, EVR_LOG_WARN, "from %s: %s; closing the connection",
             c->name, err.msg);
        return false;
    }
    evr_buf_reset(&s->status_out);
    if (put_status(s, &s->status_out) == 0) {
        net_send(s->net, c, s->status_out.data, s->status_out.len);
    }
    return true;
}

static bool on_frame(void *data, struct net_conn *c,
                     const struct evr_frame_hdr *h, const uint8_t *frame,
                     size_t len)
{
    struct server *s = data;
    if (s->stopping || s->vr == NULL) {
        return true;
    }
    if (h->type == EVR_MSG_STATUS) {
        return answer_status(s, c, frame, len);
    }
    /* Routed before the core sees it: a retry of a committed request is
     * answered from the client table inside evr_vr_receive. A bad frame
     * closes c below, which drops c's routes again. */
    if (h->type == EVR_MSG_REQUEST && h->body_size >= 8) {
        net_route(s->net, evr_load_u64(frame + EVR_FRAME_HEADER_SIZE), c);
    }
    struct evr_err err;
    if (evr_vr_receive(s->vr, frame, len, &err) != 0) {
        slog(s, EVR_LOG_WARN, "from %s: %s; closing the connection",
             c->name, err.msg);
        pump(s);
        return false;
    }
    pump(s);
    return true;
}

/* ------------------------------------------------------------ stop */

static void on_closed(uv_handle_t *h)
{
}

static void stop(struct server *s)
{
    if (s->stopping) {
        return;
    }
    s->stopping = true;
    net_stop(s->net);
    uv_close((uv_handle_t *)&s->ticker, on_closed);
    uv_close((uv_handle_t *)&s->sigterm, on_closed);
    uv_close((uv_handle_t *)&s->sigint, on_closed);
}

/* The first signal drains (evr_vr_drain), a second one stops at once. */
static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    if (s->draining || s->vr == NULL) {
        slog(s, EVR_LOG_INFO, "%s: stopping", strsignal(signum));
        stop(s);
        return;
    }
    slog(s, EVR_LOG_INFO, "%s: stopping once the ops in flight settle (at "
         "most %d ms; a second signal stops at once)", strsignal(signum),
         DRAIN_MS);
    s->draining = true;
    s->drain_end_ms = uv_now(&s->loop) + DRAIN_MS;
    evr_vr_drain(s->vr);
    check_drained(s);
}

/* ------------------------------------------------------------ identity */

/* DIR/replica records who this directory belongs to; a restart with other
 * options is refused. Returns whether it existed (a restart). */
static int check_identity(struct server *s, bool *restart,
                          struct evr_err *err)
{
    const struct evr_server_opts *o = s->o;
    char path[4200], want[1024], have[1024] = "";
    snprintf(path, sizeof path, "%s/replica", o->dir);
    snprintf(want, sizeof want, "evr-replica 1 cluster %llu replicas %u "
             "id %u mode %s app %s\n", (unsigned long long)o->cluster_id,
             o->replicas, o->id, evr_server_mode_name(o->mode), o->app_desc);
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        return evr_err_set(err, EVR_EIO, "data directory '%s': %s", o->dir,
                           strerror(errno));
    }
    FILE *f = fopen(path, "r");
    *restart = f != NULL;
    if (f != NULL) {
        size_t k = fread(have, 1, sizeof have - 1, f);
        have[k] = '\0';
        fclose(f);
        if (strcmp(have, want) != 0) {
            return evr_err_set(err, EVR_EINVAL, "%s belongs to another "
                               "replica or configuration:\n  it says: %s"
                               "  this is: %s(use another --data, or remove "
                               "it)", o->dir, have, want);
        }
        return 0;
    }
    f = fopen(path, "w");
    if (f == NULL || fputs(want, f) == EOF || fclose(f) != 0) {
        return evr_err_set(err, EVR_EIO, "%s: %s", path, strerror(errno));
    }
    return 0;
}

/* ------------------------------------------------------------ run */

static int vr_config(const struct evr_server_opts *o,
                     struct evr_vr_config *cfg, struct evr_err *err)
{
    evr_vr_config_default(cfg, o->replicas, o->id);
    cfg->cluster = o->cluster_id;
    cfg->mode = o->mode == EVR_SERVER_AGREE_EXECUTE ? EVR_VR_AGREE_EXECUTE
                                                    : EVR_VR_EVE;
    cfg->batch_size_max = o->batch_size_max;
    cfg->batch_delay_ms = o->batch_delay_ms;
    cfg->depth_max = o->depth_max;
    cfg->heartbeat_ms = o->heartbeat_ms;
    cfg->view_timeout_ms = o->view_timeout_ms;
    cfg->verify_timeout_ms = o->verify_timeout_ms;
    if (o->mode == EVR_SERVER_UNREPLICATED && o->replicas != 1) {
        return evr_err_set(err, EVR_EINVAL, "unreplicated mode takes one "
                           "address, not %u", o->replicas);
    }
    return evr_vr_config_check(cfg, err);
}

/* Execution thread: wakes the loop, which delivers the result. */
static void job_done(void *data)
{
    struct server *s = data;
    uv_async_send(&s->done);
}

static void on_job_done(uv_async_t *a)
{
    struct server *s = a->data;
    if (s->vr != NULL && !s->stopping) {
        pump(s);
    }
}

/* Checks the options and opens the host; *recovering says how the core
 * must start. */
static int open_host(struct server *s, struct evr_vr_config *cfg,
                     struct evr_vr_applied *applied, bool *recovering,
                     struct evr_err *err)
{
    const struct evr_server_opts *o = s->o;
    bool restart = false;
    int rc = vr_config(o, cfg, err);
    rc = rc ? rc : check_identity(s, &restart, err);
    struct evr_host_opts ho = {
        .dir = o->dir, .app = o->app, .threads = s->threads,
        .batch_size_max = o->batch_size_max,
        .depth_max = 4 * o->depth_max + 16,
        .capture = o->mode != EVR_SERVER_UNREPLICATED,
        .keep_unclean = o->mode == EVR_SERVER_UNREPLICATED,
        .memory = o->storage == EVR_SERVER_STORAGE_MEMORY ||
                  (o->storage == EVR_SERVER_STORAGE_DEFAULT &&
                   o->mode != EVR_SERVER_UNREPLICATED),
        .async = true, .on_done = job_done, .done_data = s};
    enum evr_host_start start;
    rc = rc ? rc : evr_host_open(&ho, &s->host, &start, applied, err);
    if (rc != 0) {
        return rc;
    }
    static const char *const how[] = {
        "populated", "kept from a clean stop", "repopulated (no clean stop)",
        "kept (no clean stop; a replica alone keeps what it committed)"};
    char root[33];
    evr_h128_to_hex(applied->root, root);
    if (o->mode == EVR_SERVER_UNREPLICATED) {
        applied->resume = false; /* alone, it always starts normal */
        applied->view = 0;
    }
    *recovering = restart && o->mode != EVR_SERVER_UNREPLICATED &&
                  !applied->resume;
    char resumed[64] = "";
    if (applied->resume) {
        snprintf(resumed, sizeof resumed, "; resuming in view %llu",
                 (unsigned long long)applied->view);
    }
    slog(s, EVR_LOG_INFO, "%s: %s, applied op %llu, state %s%s%s",
         evr_host_db_path(s->host), how[start],
         (unsigned long long)applied->op, root,
         *recovering ? "; recovering from the other replicas" : "", resumed);
    return 0;
}

static int start_core(struct server *s, const struct evr_vr_config *cfg,
                      const struct evr_vr_applied *applied, bool recovering,
                      struct evr_err *err)
{
    struct evr_vr_io io = {.data = s, .send = io_send, .reply = io_reply,
                           .time_us = io_time_us, .random = io_random,
                           .log = io_log};
    struct evr_vr_host host = evr_host_table(s->host);
    return evr_vr_new(cfg, &io, &host, applied, recovering,
                      uv_now(&s->loop), &s->vr, err);
}

static int start_loop(struct server *s, struct evr_err *err)
{
    const struct evr_server_opts *o = s->o;
    struct net_opts no = {
        .cluster_id = o->cluster_id, .body_max = BODY_MAX,
        .connections_max = o->connections_max,
        .out_bytes_max = o->out_bytes_max, .routes_max = o->routes_max,
        .self = o->id, .replicas = o->replicas, .addrs = o->addrs,
        .data = s, .on_frame = on_frame, .on_read_done = on_read_done,
        .log = slog};
    int rc = net_start(&s->loop, &no, &s->net, err);
    uv_timer_init(&s->loop, &s->ticker);
    s->ticker.data = s;
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    if (rc != 0) {
        return rc;
    }
    uv_timer_start(&s->ticker, on_tick, TICK_MS, TICK_MS);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    slog(s, EVR_LOG_INFO, "replica %u of %u listening on %s (%s, app %s, "
         "%d threads)", o->id, o->replicas, o->addrs[o->id],
         evr_server_mode_name(o->mode), o->app_desc, s->threads);
    return 0;
}

static bool is_loopback(const char *addr)
{
    return strncmp(addr, "127.", 4) == 0 ||
           strncmp(addr, "localhost:", 10) == 0 ||
           strncmp(addr, "[::1]:", 6) == 0;
}

/* Threads by default: the cores, shared with the other replicas when every
 * address is on this machine (a local cluster), at most 16. */
static int auto_threads(const struct evr_server_opts *o)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t here = 1;
    for (uint32_t i = 0; i < o->replicas; i++) {
        if (!is_loopback(o->addrs[i])) {
            here = 1;
            break;
        }
        here = o->replicas;
    }
    long t = cores > 0 ? cores / (long)here : 1;
    return t < 1 ? 1 : t > 16 ? 16 : (int)t;
}

int evr_server_run(const struct evr_server_opts *o, struct evr_err *err)
{
    assert(o->replicas >= 1);
    assert(o->id < o->replicas);
    struct server *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return evr_err_set(err, EVR_ENOMEM, "server");
    }
    s->o = o;
    s->threads = o->threads > 0 ? o->threads : auto_threads(o);
    signal(SIGPIPE, SIG_IGN);
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) {
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    }
    evr_rng_seed(&s->rng, seed);
    evr_buf_init(&s->status_out, 1u << 16);
    uv_loop_init(&s->loop);
    uv_async_init(&s->loop, &s->done, on_job_done);
    s->done.data = s;
    uv_unref((uv_handle_t *)&s->done);
    struct evr_vr_config cfg;
    struct evr_vr_applied applied;
    bool recovering;
    int rc = open_host(s, &cfg, &applied, &recovering, err);
    if (rc == 0) {
        /* the network first: the core sends from evr_vr_new on */
        rc = start_loop(s, err);
        rc = rc ? rc : start_core(s, &cfg, &applied, recovering, err);
        if (rc != 0) {
            stop(s);
        }
        uv_run(&s->loop, UV_RUN_DEFAULT);
    }
    if (rc == 0 && s->failure.code != 0) {
        rc = evr_err_set(err, s->failure.code, "%s", s->failure.msg);
    }
    struct evr_vr_info info = {0};
    if (s->vr != NULL) {
        evr_vr_info(s->vr, &info);
    }
    bool clean = rc == 0 && s->vr != NULL;
    bool resume = info.quiet && o->mode != EVR_SERVER_UNREPLICATED;
    struct evr_vr_applied stopped = {
        .op = info.applied, .root = info.applied_root,
        .resp_digest = info.applied_resp, .resume = resume,
        .view = resume ? info.view : 0};
    struct evr_err cerr;
    if (evr_host_close(s->host, clean ? &stopped : NULL, &cerr)) {
        slog(s, EVR_LOG_ERROR, "closing the state: %s", cerr.msg);
        clean = false;
    }
    if (clean && o->mode != EVR_SERVER_UNREPLICATED) {
        slog(s, EVR_LOG_INFO, "stopped cleanly at applied op %llu, view "
             "%llu: %s", (unsigned long long)info.applied,
             (unsigned long long)info.view,
             resume ? "quiet, the next start resumes"
                    : "ops were in flight, the next start recovers from "
                      "the other replicas");
    } else if (clean) {
        slog(s, EVR_LOG_INFO, "stopped cleanly at applied op %llu",
             (unsigned long long)info.applied);
    }
    evr_vr_free(s->vr);
    net_free(s->net);
    uv_close((uv_handle_t *)&s->done, on_closed); /* the thread is gone */
    uv_run(&s->loop, UV_RUN_NOWAIT);
    uv_loop_close(&s->loop);
    evr_buf_free(&s->status_out);
    free(s);
    return rc;
}
