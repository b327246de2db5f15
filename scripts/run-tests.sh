#!/bin/sh
# Runs every test of one build directory: the cmocka unit tests, then the
# command-line tests. Prints one line per test and the output of failures;
# exits 1 if any failed.
#   scripts/run-tests.sh BUILD_DIR
set -u
O=${1:-build}
failed=0
total=0
start=$(date +%s)

run() { # name, command...
    name=$1
    shift
    total=$((total + 1))
    t0=$(date +%s)
    if out=$("$@" 2>&1); then
        printf '  ok      %-34s %3ss\n' "$name" $(( $(date +%s) - t0 ))
    else
        printf '  FAILED  %-34s %3ss\n' "$name" $(( $(date +%s) - t0 ))
        printf '%s\n' "$out" | tail -n 40 | sed 's/^/    | /'
        failed=$((failed + 1))
    fi
}

for t in "$O"/tests/test_*; do
    run "$(basename "$t")" "$t"
done
# The deterministic cluster simulation: a failing seed prints SEED=...
run "evr-sim (1000 seeds)" "$O/evr-sim" --seeds 1000 --start 1
for t in tests/cli/test_*.sh; do
    run "$(basename "$t")" env EVR="$O/evr" sh "$t"
done

echo "$total tests, $failed failed, $(( $(date +%s) - start ))s"
[ "$failed" -eq 0 ]
