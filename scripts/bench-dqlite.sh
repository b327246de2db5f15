#!/bin/bash
# Benchmark the peer system dqlite (Debian package go-dqlite, binary
# dqlite-benchmark) with its "kvreadwrite" workload on a 3-node loopback
# cluster, once per worker count, for comparison with evr.
#
#   scripts/bench-dqlite.sh [--workers "4 16 64"] [--duration 20] [--out DIR]
#
# Prints one line per worker count and writes DIR/dqlite-W.json
# (default DIR: build/bench-dqlite).  Set KEEP_RAW=1 to also copy the raw
# results folder and the node logs to DIR/dqlite-W.raw/.
#
# How the cluster is started (as found with dqlite-benchmark --help and by
# experiment, go-dqlite 1.11.5):
#   node 1 (leader, self-elects, runs the load):
#     dqlite-benchmark --db 127.0.0.1:P --driver
#         --cluster 127.0.0.1:P,127.0.0.1:P+1,127.0.0.1:P+2
#         --dir D1 --workload kvreadwrite --workers W --duration S
#   nodes 2 and 3:
#     dqlite-benchmark --db 127.0.0.1:P+i --join 127.0.0.1:P --dir Di
# The driver waits (up to --cluster-timeout s) until all --cluster nodes are
# online, runs the workload for --duration s, writes its results and exits
# ("Benchmark done. Results available here: D1/127.0.0.1:P/results").
# The joining nodes never exit by themselves ("Send signal to abort or when
# done."); they stop on SIGTERM.  Each node keeps its data in DIR/<address>/.
#
# Results folder (driver only): for each worker i two files,
#   i-exec-<unix time>   the worker's write statements (Exec: writes of a
#                        key/value),
#   i-query-<unix time>  the worker's read queries (Query: reads of a key).
# In kvreadwrite every worker issues both kinds, roughly half each (the
# exec and query files of a worker hold about equal n + n_err).
# Each file is text:
#   n <successful operations>
#   n_err <failed operations>
#   avg [ms] / max [ms] / min [ms] <latency of the successful ones>
#   measurements [timestamp in ns] [ms]
#   <ns timestamp> <latency ms>            one line per successful op
#   errors
#   <ns timestamp> <error message>         one line per failed op
# Write errors are almost all "database is locked" (SQLite busy),
# plus a few "context deadline exceeded" when the run's deadline cuts off an
# op in flight.
#
# Duration: the tool reports no measured duration, so "seconds" (the
# denominator of every per-second figure) is the measured span between the
# earliest and the latest op timestamp (success or error) in all result
# files; it is within a few ms of the configured --duration.  If the files
# hold no timestamps, the configured duration is used ("seconds_source" in
# the JSON says which; "throughput_ops_configured_s" divides by the configured
# duration instead, and a warning goes to stderr when the two differ by >10%:
# seen once each at 1.50 s and 5.52 s in ~40 short test runs).
set -eu

WORKERS="4 16 64"
DURATION=20
OUT=build/bench-dqlite
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKERS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

if ! command -v dqlite-benchmark >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "== installing go-dqlite (provides dqlite-benchmark)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y go-dqlite >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y go-dqlite >/dev/null; }
    else
        echo "dqlite-benchmark not found; install it with:" >&2
        echo "  sudo apt-get install -y go-dqlite" >&2
        exit 1
    fi
fi

mkdir -p "$OUT"
PIDS=""
TMP=""

stop_nodes() {
    local p t
    [ -n "$PIDS" ] || return 0
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for t in 1 2 3 4 5 6 7 8 9 10; do
        alive=""
        for p in $PIDS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
        [ -n "$alive" ] || break
        sleep 0.5
    done
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    PIDS=""
}
cleanup() {
    stop_nodes
    [ -n "$TMP" ] && rm -rf "$TMP"
    TMP=""
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

# Node ports are taken below the ephemeral range (32768-60999 here) and must
# have no socket in any state: a run leaves thousands of client connections
# in TIME-WAIT (3,000-14,000 seen per run), and a node port that is busy that
# way fails to bind ("create node: failed to set bind address ...: 1"); the
# driver then only gives up after --cluster-timeout.  A failed start is
# detected (a joiner exits early) and retried on new ports, up to 3 times.
port_free() {   # no TCP socket in any state (LISTEN, TIME-WAIT, ...) uses port $1
    if command -v ss >/dev/null 2>&1; then
        [ -z "$(ss -Htan "( sport = :$1 or dport = :$1 )" 2>/dev/null)" ]
    else
        ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
    fi
}
pick_base() {   # three consecutive free ports in 12000-31999, start derived from $$
    local b=$((12000 + ($$ * 37 + $1 * 211 + $2 * 997) % 20000 / 3 * 3)) i
    for i in $(seq 1 300); do
        if port_free "$b" && port_free $((b + 1)) && port_free $((b + 2)); then
            echo "$b"; return 0
        fi
        b=$((b + 3)); [ "$b" -lt 31997 ] || b=12000
    done
    echo "no free ports found" >&2; return 1
}

# One 3-node run: $1 workers, $2 attempt number.  Leaves the driver's results
# in $TMP/n1/<addr>/results and sets RES, WALL.  Returns 1 if the cluster did
# not form or the driver failed (node logs are printed).
run_once() {
    local W=$1 B A1 A2 A3 T0 T1 rc p
    rm -rf "$TMP"/n*
    B=$(pick_base "$W" "$2") || return 1
    A1=127.0.0.1:$B A2=127.0.0.1:$((B + 1)) A3=127.0.0.1:$((B + 2))
    T0=$(date +%s.%N)
    dqlite-benchmark --db "$A1" --driver --cluster "$A1,$A2,$A3" \
        --cluster-timeout "${CLUSTER_TIMEOUT:-30}" \
        --dir "$TMP/n1" --workload kvreadwrite --workers "$W" --duration "$DURATION" \
        >"$TMP/n1.log" 2>&1 &
    DRIVER=$!; PIDS="$DRIVER"
    sleep 0.3
    dqlite-benchmark --db "$A2" --join "$A1" --dir "$TMP/n2" >"$TMP/n2.log" 2>&1 &
    PIDS="$PIDS $!"
    dqlite-benchmark --db "$A3" --join "$A1" --dir "$TMP/n3" >"$TMP/n3.log" 2>&1 &
    PIDS="$PIDS $!"
    # The joiners run until signalled; one that exits early failed to start,
    # and the driver would only wait for it until --cluster-timeout.
    rc=0
    while kill -0 "$DRIVER" 2>/dev/null; do
        for p in $PIDS; do
            [ "$p" = "$DRIVER" ] && continue
            kill -0 "$p" 2>/dev/null || { rc=99; break 2; }
        done
        sleep 0.2
    done
    [ "$rc" = 99 ] || { wait "$DRIVER" || rc=$?; }
    T1=$(date +%s.%N)
    stop_nodes
    WALL=$(echo "$T1 - $T0" | bc)
    RES="$TMP/n1/$A1/results"
    if [ "$rc" != 0 ] || ! ls "$RES"/*-exec-* >/dev/null 2>&1; then
        echo "W=$W attempt $2: run failed (rc $rc, ports $B-$((B + 2))); node logs:" >&2
        for p in "$TMP"/n*.log; do echo "--- ${p##*/}: $(head -1 "$p")" >&2; done
        return 1
    fi
}

echo "== dqlite $(dpkg-query -W -f='${Version}' go-dqlite 2>/dev/null || echo '?'), 3 nodes on 127.0.0.1, workload kvreadwrite, ${DURATION}s per run, $(nproc) cores"
printf '%-8s %10s %12s %10s %10s %10s %10s %8s\n' workers ok_ops/s reads_ok/s writes_ok/s read_err write_err seconds wall_s

for W in $WORKERS; do
    TMP=$(mktemp -d /tmp/bench-dqlite.XXXXXX)
    ok=0
    for attempt in 1 2 3; do
        if run_once "$W" "$attempt"; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || { echo "W=$W: giving up after 3 attempts" >&2; exit 1; }
    # One pass over all result files: sums of n / n_err per kind, error
    # messages by kind, and the earliest/latest op timestamp.
    # Timestamps are ~1.8e18 ns, beyond a double's exact range; only the
    # seconds part is needed, so split off the last 9 digits.
    # shellcheck disable=SC2016
    JSON=$(awk -v W="$W" -v D="$DURATION" -v WALL="$WALL" '
        FNR == 1 {
            kind = (FILENAME ~ /-exec-[0-9]+$/) ? "w" : "r"; files[kind]++
            sect = "head"
        }
        sect == "head" && $1 == "n"     { ok[kind] += $2 }
        sect == "head" && $1 == "n_err" { err[kind] += $2 }
        $1 == "measurements" { sect = "meas"; next }
        $1 == "errors" && NF == 1 { sect = "err"; next }
        (sect == "meas" || sect == "err") && $1 ~ /^[0-9]+$/ && length($1) > 9 {
            t = substr($1, 1, length($1) - 9) + ("0." substr($1, length($1) - 8))
            if (first == "" || t < first) first = t
            if (last == "" || t > last) last = t
            if (sect == "err") {
                m = $0; sub(/^[0-9]+ /, "", m)
                if (m ~ /database is locked/) lock[kind]++
                else if (m ~ /deadline exceeded/) dl[kind]++
                else other[kind]++
            }
        }
        END {
            if (first != "" && last > first) { s = last - first; src = "measured" }
            else { s = D; src = "configured" }
            okn = ok["r"] + ok["w"]; errn = err["r"] + err["w"]
            printf "{\"system\":\"dqlite\",\"workload\":\"kvreadwrite\",\"nodes\":3,"
            printf "\"workers\":%d,\"seconds\":%.3f,\"seconds_source\":\"%s\",", W, s, src
            printf "\"configured_seconds\":%d,\"wall_seconds\":%.2f,", D, WALL
            printf "\"ok_ops\":%d,\"errors\":%d,\"throughput_ops\":%.1f,", okn, errn, okn / s
            printf "\"reads_ok\":%d,\"writes_ok\":%d,", ok["r"], ok["w"]
            printf "\"read_errors\":%d,\"write_errors\":%d,", err["r"], err["w"]
            printf "\"reads_ok_per_s\":%.1f,\"writes_ok_per_s\":%.1f,", ok["r"] / s, ok["w"] / s
            printf "\"write_errors_locked\":%d,\"write_errors_deadline\":%d,\"write_errors_other\":%d,", lock["w"], dl["w"], other["w"]
            printf "\"read_errors_locked\":%d,\"read_errors_deadline\":%d,\"read_errors_other\":%d,", lock["r"], dl["r"], other["r"]
            printf "\"throughput_ops_configured_s\":%.1f,", okn / D
            printf "\"result_files\":{\"exec\":%d,\"query\":%d}}\n", files["w"], files["r"]
            if (s < 0.9 * D || s > 1.1 * D)
                printf "warning: W=%d measured span %.2f s differs from the configured %d s by over 10%%\n", W, s, D > "/dev/stderr"
        }' "$RES"/*-exec-* "$RES"/*-query-*)
    echo "$JSON" >"$OUT/dqlite-$W.json"
    if [ "${KEEP_RAW:-0}" = 1 ]; then
        rm -rf "$OUT/dqlite-$W.raw"; mkdir -p "$OUT/dqlite-$W.raw"
        cp -r "$RES" "$TMP"/n*.log "$OUT/dqlite-$W.raw/"
    fi
    echo "$JSON" | awk -F'[,:{}]' '{
        for (i = 2; i < NF; i++) { k = $i; gsub(/"/, "", k); v[k] = $(i + 1) }
        printf "%-8s %10.0f %12.0f %10.0f %10d %10d %10.2f %8.1f\n", v["workers"], v["throughput_ops"],
            v["reads_ok_per_s"], v["writes_ok_per_s"], v["read_errors"], v["write_errors"], v["seconds"], v["wall_seconds"]
    }'
    rm -rf "$TMP"; TMP=""
done
echo "== JSON in $OUT/dqlite-W.json"
