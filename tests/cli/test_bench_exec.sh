# evr bench-exec on a small kv load: runs, agrees, writes its JSON.
. tests/cli/lib.sh

expect 0 "$EVR" bench-exec --app kv --keys 2000 --value-size 128 \
    --batches 20 --batch-size 64 --threads 2 --repeat 1 \
    --capture-cost --rollback-cost --json "$T/r.json" --dir "$T/work"
contains "state digests equal: yes; batch tokens equal: yes"
contains "speedup"
contains "rollback + sequential re-execution"
for key in '"app": "kv"' '"threads": 2' '"requests": 1280' '"sequential": {' \
    '"parallel": {' '"throughput_rps"' '"subbatches_mean"' '"speedup"' \
    '"digest_sequential"' '"digest_parallel"' '"digests_equal": true' \
    '"tokens_equal": true' '"capture_cost"' '"rollback_cost"' \
    '"interactions": {' '"get"' '"put"'; do
    grep -qF "$key" "$T/r.json" || fail "JSON lacks $key: $(cat "$T/r.json")"
done
seq=$(sed 's/.*"digest_sequential": "\([0-9a-f]*\)".*/\1/' "$T/r.json")
par=$(sed 's/.*"digest_parallel": "\([0-9a-f]*\)".*/\1/' "$T/r.json")
[ "$seq" = "$par" ] || fail "digests differ: $seq $par"
[ ! -e "$T/work/start.db" ] || fail "work files left behind"

# A zipfian, write-heavy mix with deletes and scans agrees too.
expect 0 "$EVR" bench-exec --keys 500 --value-size 32 --batches 10 \
    --batch-size 128 --threads 3 --repeat 1 --read-fraction 0.3 \
    --delete-fraction 0.1 --scan-fraction 0.1 --dist zipf
contains "state digests equal: yes; batch tokens equal: yes"

expect 2 "$EVR" bench-exec --threads 0
contains "--threads must be"
expect 2 "$EVR" bench-exec --read-fraction 2
contains "--read-fraction"
expect 2 "$EVR" bench-exec --app nope
expect 2 "$EVR" bench-exec --batches
contains "needs a value"
expect 0 "$EVR" bench-exec --help
contains "--capture-cost"
