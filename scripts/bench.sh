#!/bin/sh
# make bench: the execution-core and TPC-W benchmarks of docs/BENCHMARKS.md.
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
echo "== tpcw, population of 10K items / 100 EBs"
rm -f "$R/tpcw-10k-100.db"
"$EVR" populate --app tpcw --items 10000 --ebs 100 --out "$R/tpcw-10k-100.db" \
    | tee "$R/tpcw-populate.txt"
rm -f "$R/tpcw-10k-100.db" "$R/tpcw-10k-100.db-wal" "$R/tpcw-10k-100.db-shm"

TPCW="--app tpcw --items 10000 --ebs 100"
echo "== tpcw, browsing mix, 10K items / 100 EBs, 2 threads"
"$EVR" bench-exec $TPCW --mix browsing --threads 2 --batches 200 \
    --batch-size 128 --repeat "$REPEAT" --json "$R/tpcw-browsing.json" \
    | tee "$R/tpcw-browsing.txt"

echo "== tpcw, shopping and ordering mixes, 2 threads"
for mix in shopping ordering; do
    "$EVR" bench-exec $TPCW --mix "$mix" --threads 2 --batches 200 \
        --batch-size 128 --repeat 3 --json "$R/tpcw-$mix.json" \
        > "$R/tpcw-$mix.txt"
    printf '  %-9s %s\n' "$mix" "$(grep '^speedup' "$R/tpcw-$mix.txt")"
done

echo "== tpcw, browsing: mixer width by batch size (25600 requests each)"
for s in 32 128 512; do
    "$EVR" bench-exec $TPCW --mix browsing --threads 2 \
        --batches $((25600 / s)) --batch-size "$s" --repeat 3 \
        --json "$R/tpcw-batch-$s.json" > "$R/tpcw-batch-$s.txt"
    printf '  batch %-4s %s; %s\n' "$s" \
        "$(grep '^  parallel' "$R/tpcw-batch-$s.txt" |
            awk '{print "sub-batches/batch " $4 ", mean width " $5}')" \
        "$(grep '^speedup' "$R/tpcw-batch-$s.txt")"
done

echo "== tpcw, browsing, thread scaling (speedup over sequential)"
for t in $(printf "%s\n" 1 2 4 8 16 "$(nproc)" | sort -nu); do
    [ "$t" -le $(( $(nproc) * 2 )) ] || continue
    "$EVR" bench-exec $TPCW --mix browsing --threads "$t" --batches 100 \
        --batch-size 256 --repeat 3 --json "$R/tpcw-threads-$t.json" \
        > "$R/tpcw-threads-$t.txt"
    printf '  threads %-3s %s\n' "$t" "$(grep '^speedup' "$R/tpcw-threads-$t.txt")"
done
echo "results in $R/"
