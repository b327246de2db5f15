#!/bin/sh
# evr against its peer dqlite (docs/BENCHMARKS.md), same machine, one right
# after the other for each worker count W:
#   dqlite: scripts/bench-dqlite.sh (3 nodes on loopback, kvreadwrite, W
#           workers: 32-byte keys, 1 KiB values, about half reads)
#   evr:    a 3-replica eve cluster on loopback (kv app, 10,000 keys of 32
#           bytes, 1 KiB values) and evr bench with W clients, half reads
# Prints a table of successful ops/s, errors and the ratio, and writes
# OUT/peer-W.json (evr) beside OUT/dqlite-W.json; then the commit latency of
# an idle evr cluster (1 client, KV puts: OUT/latency-idle.json).
# With --repeat N (N >= 1, at most 9) each W runs N dqlite/evr pairs, one
# right after the other; the table gives each side's median, the ratio of
# the medians, the lowest pairwise ratio, and the errors summed over the
# runs, then one line per pair; the JSON files kept are those of the last
# pair.
#   scripts/bench-peer.sh [BUILD_DIR] [--workers "4 16 64"] [--duration 20]
#                         [--repeat 1]
set -eu
O=${1:-build}
[ $# -gt 0 ] && shift
WORKERS="4 16 64"
DURATION=20
REPEAT=1
while [ $# -gt 0 ]; do
    case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) echo "bench-peer.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$REPEAT" in
[1-9]) ;;
*) echo "bench-peer.sh: --repeat takes 1 to 9, not '$REPEAT'" >&2; exit 2 ;;
esac
OUT=$O/bench
mkdir -p "$OUT"
EVR=$O/evr
T=$(mktemp -d "${TMPDIR:-/tmp}/evr-peer-XXXXXX")
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null || true; done; rm -rf "$T"' EXIT

evr_run() { # W [READ_FRACTION] [JSON_NAME]
    C=$("$O/tests/evr-ports" 3 | sed 's/^/127.0.0.1:/' | paste -sd, -)
    PIDS=""
    for i in 0 1 2; do
        "$EVR" serve --id $i --cluster "$C" --data "$T/w$1-r$i" --app kv \
            --keys 10000 --key-size 32 --value-size 1024 \
            2>"$T/w$1-r$i.log" &
        PIDS="$PIDS $!"
    done
    "$EVR" bench --cluster "$C" --app kv --keys 10000 --key-size 32 \
        --value-size 1024 --read-fraction "${2:-0.5}" --clients "$1" \
        --duration "$DURATION" --warmup 2 --json "$OUT/${3:-peer-$1}.json" \
        >"$T/w$1-bench.out" 2>&1 || cat "$T/w$1-bench.out" >&2
    "$EVR" check --cluster "$C" --wait-ms 20000 >/dev/null ||
        echo "bench-peer.sh: evr replicas did not converge (W=$1)" >&2
    for p in $PIDS; do kill -TERM "$p"; done
    for p in $PIDS; do wait "$p" || true; done
    PIDS=""
}

num() { # FILE KEY: the first number after "KEY":
    sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p" "$1" | head -n 1
}

median() { # numbers on stdin, one per line
    sort -g | awk '{ v[NR] = $1 } END {
        print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

printf '%-4s %14s %10s %14s %10s %8s %8s\n' W dqlite-ok/s dq-errors evr-ok/s \
    evr-errors ratio min
for W in $WORKERS; do
    : >"$T/pairs"
    r=0
    while [ "$r" -lt "$REPEAT" ]; do
        r=$((r + 1))
        scripts/bench-dqlite.sh --workers "$W" --duration "$DURATION" \
            --out "$OUT" >"$T/dq$W.out" 2>&1 || cat "$T/dq$W.out" >&2
        evr_run "$W"
        echo "$(num "$OUT/dqlite-$W.json" throughput_ops)" \
            "$(num "$OUT/dqlite-$W.json" errors)" \
            "$(num "$OUT/peer-$W.json" throughput_ops)" \
            "$(num "$OUT/peer-$W.json" errors)" >>"$T/pairs"
    done
    dq=$(awk '{ print $1 }' "$T/pairs" | median)
    ev=$(awk '{ print $3 }' "$T/pairs" | median)
    printf '%-4s %14.0f %10.0f %14.0f %10.0f %7.1fx %7.1fx\n' "$W" "$dq" \
        "$(awk '{ s += $2 } END { print s }' "$T/pairs")" "$ev" \
        "$(awk '{ s += $4 } END { print s }' "$T/pairs")" \
        "$(awk -v a="$ev" -v b="$dq" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
        "$(awk '{ q = $1 > 0 ? $3 / $1 : 0; if (NR == 1 || q < m) m = q }
            END { print m }' "$T/pairs")"
    if [ "$REPEAT" -gt 1 ]; then
        awk '{ printf "     run %d: dqlite %.0f, evr %.0f, %.1fx\n", NR, $1,
            $3, ($1 > 0 ? $3 / $1 : 0) }' "$T/pairs"
    fi
done

# Commit latency on an idle cluster: one client, puts only.
evr_run 1 0 latency-idle
echo "idle cluster, 1 client, KV put: p50 $(num "$OUT/latency-idle.json" p50) ms," \
    "p99 $(num "$OUT/latency-idle.json" p99) ms"
