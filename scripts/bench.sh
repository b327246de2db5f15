#!/bin/sh
# make bench: the execution-core benchmarks of docs/BENCHMARKS.md.
# Results (text and JSON) go to BUILD/bench/; the summary is printed.
#   scripts/bench.sh BUILD_DIR
set -eu
O=${1:-build}
EVR="$O/evr"
R="$O/bench"
mkdir -p "$R"
REPEAT=${REPEAT:-7}
# The 5 % capture-cost figure sits inside this machine's run-to-run noise
# (about +-10 % per pair of runs), so the main measurement uses longer runs
# and more pairs.
MAIN_REPEAT=${MAIN_REPEAT:-15}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

echo "== kv, default mix (95% get / 5% put, 1 KiB values, uniform keys), 2 threads"
"$EVR" bench-exec --app kv --threads 2 --batches 1000 --repeat "$MAIN_REPEAT" \
    --capture-cost --rollback-cost --json "$R/kv-default.json" \
    | tee "$R/kv-default.txt"

echo "== kv, default mix, one transaction per request (for comparison)"
"$EVR" bench-exec --app kv --threads 2 --repeat "$REPEAT" --txn request \
    --json "$R/kv-per-request.json" | tee "$R/kv-per-request.txt"

echo "== kv, zipfian keys (theta 0.99), default mix"
"$EVR" bench-exec --app kv --threads 2 --repeat "$REPEAT" --dist zipf \
    --json "$R/kv-zipf.json" | tee "$R/kv-zipf.txt"

echo "== kv, thread scaling (speedup over sequential)"
for t in $(printf "%s\n" 1 2 4 "$(nproc)" | sort -nu); do
    "$EVR" bench-exec --app kv --threads "$t" --repeat 3 \
        --json "$R/kv-threads-$t.json" > "$R/kv-threads-$t.txt"
    printf '  threads %-3s %s\n' "$t" "$(grep '^speedup' "$R/kv-threads-$t.txt")"
done
echo "results in $R/"
