/*
 * server — one replica on the network: `evr serve`.
 *
 * One libuv loop thread owns everything: the listening socket, every
 * connection, the protocol core (replication/vr.h) and the host
 * (server/host.h). The host executes a batch synchronously on this thread
 * (as the executor's worker 0) and its worker pool, so network I/O waits
 * while a batch runs; frames that arrive meanwhile are read afterwards.
 *
 * Connections. Replica i listens on addrs[i]. It connects to every other
 * replica and sends its frames to replica j only on its own connection to
 * j; it reads frames from any connection. Clients connect to any replica;
 * a REPLY goes back on the connection the client's request last arrived on
 * (several client ids may share a connection).
 *
 * Input. A connection's bytes are cut into frames; each header is checked
 * as soon as it is complete (evr_frame_peek), the whole frame when its body
 * is (evr_msg_decode, inside the core). A frame with a bad checksum, magic,
 * version, type or cluster id, a body over the limit, or one the core
 * refuses, is dropped with a log line and its connection is closed; nothing
 * of it is applied. STATUS frames are answered here, never by the core.
 *
 * Limits. connections_max open connections (more are accepted and closed
 * at once, counted); a frame body at most body_max; a connection's unsent
 * output at most out_bytes_max (a frame that would pass it is dropped and
 * counted: the protocol retries, a client retries); client routes at most
 * routes_max (when full, the table is cleared and clients are routed again
 * by their next request). Outgoing connections are retried with backoff
 * from 50 ms doubling to 1 s.
 *
 * Modes. eve and agree-execute run the protocol over the replicas in
 * addrs. unreplicated runs one replica alone (addrs[0]): no peers, no
 * verification and no change capture — the ceiling on one machine.
 *
 * Stop. SIGTERM or SIGINT stops cleanly: connections close, uncommitted
 * batches are rolled back, DIR/state.db holds exactly the applied state and
 * DIR/clean-stop records it. A restart after that keeps the file; a
 * restart after kill -9 repopulates and recovers the rest from the peers
 * (host.h).
 */
#ifndef EVR_SERVER_H
#define EVR_SERVER_H

#include <stdint.h>

#include "common/err.h"
#include "verifier/verifier.h"
#include "workloads/app.h"

enum evr_server_mode {
    EVR_SERVER_EVE,
    EVR_SERVER_AGREE_EXECUTE,
    EVR_SERVER_UNREPLICATED
};

/* "eve", "agree-execute", "unreplicated"; parse returns -1 if unknown. */
const char *evr_server_mode_name(enum evr_server_mode m);
int evr_server_mode_parse(const char *s);

enum evr_server_storage {
    EVR_SERVER_STORAGE_DEFAULT,
    EVR_SERVER_STORAGE_MEMORY,
    EVR_SERVER_STORAGE_DISK
};

enum evr_log_level { EVR_LOG_ERROR, EVR_LOG_WARN, EVR_LOG_INFO, EVR_LOG_DEBUG };
int evr_log_level_parse(const char *s); /* -1 if unknown */

struct evr_server_opts {
    uint32_t id;                 /* this replica's index */
    uint32_t replicas;           /* entries of addrs */
    const char *addrs[EVR_REPLICAS_MAX]; /* "host:port" */
    uint64_t cluster_id;
    const char *dir;             /* data directory */
    const struct evr_app *app;   /* opened by the caller; outlives the run */
    const char *app_desc;        /* the app's name and options, recorded in
                                    DIR/replica and checked on restart */
    enum evr_server_mode mode;
    int threads;                 /* 0: automatic (evr_server_opts_default) */
    uint32_t batch_size_max;
    uint32_t batch_delay_ms;
    uint32_t depth_max;
    uint32_t heartbeat_ms;
    uint32_t view_timeout_ms;
    uint32_t verify_timeout_ms;
    uint32_t connections_max;
    size_t out_bytes_max;
    uint32_t routes_max;
    enum evr_log_level log_level;
    /* Where state.db lives while serving: DISK, or MEMORY (written back at
     * a clean stop; after a crash the replica recovers from its peers).
     * DEFAULT: memory when replicated, disk for unreplicated (alone, its
     * file is all it has). */
    enum evr_server_storage storage;
};

/* Defaults for everything but addresses, dir and app: eve, threads 0 (the
 * cores, divided by the replicas when every address is a loopback one — a
 * local cluster shares one machine — at most 16),
 * batches of 128 cut as soon as the pipeline has room (delay 0), depth 8,
 * heartbeat 20 ms, view timeout 1 s, verify timeout 200 ms, 1024
 * connections, 256 MiB of output per connection, 65536 routes, info. */
void evr_server_opts_default(struct evr_server_opts *o);

/*
 * Runs the replica until SIGTERM/SIGINT (returns 0) or a failure (returns
 * the error: a bad option, a port in use, a database that cannot be
 * opened, a host failure that stopped the replica). Logs to stderr.
 */
int evr_server_run(const struct evr_server_opts *o, struct evr_err *err);

#endif
