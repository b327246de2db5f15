# Whole-cluster restart: three replicas under KV load get SIGTERM at the
# same moment; each drains and stops (at least f+1 of them quiet), all
# three start again, resume instead of recovering, elect a primary and
# serve; every put a client saw acknowledged reads back, the replicas
# converge, and a second whole-cluster stop, idle this time, is quiet on
# every replica. The sqlite3 dumps of the three databases are identical.
. tests/cli/lib.sh
. tests/cli/netlib.sh
trap 'kill_all; rm -rf "$T"' EXIT

ARGS="--app kv --keys 500 --value-size 64 --log-level info"
cluster_addrs 3

# stop_all: SIGTERM to the three in one call; each must exit 0.
stop_all() {
    kill -TERM "$(cat "$T/r0.pid")" "$(cat "$T/r1.pid")" "$(cat "$T/r2.pid")"
    for i in 0 1 2; do
        wait "$(cat "$T/r$i.pid")" ||
            fail "replica $i exited with $? after SIGTERM: $(tail "$T/r$i.log")"
    done
}

# wait_primary: until some replica says it is primary (at most 20 s).
wait_primary() {
    n=0
    until [ -n "$(primary_id)" ]; do
        n=$((n + 1))
        [ $n -lt 200 ] || fail "no primary after the restart: $(
            "$EVR" status --cluster "$CLUSTER" 2>&1; tail -n 5 "$T"/r*.log)"
        sleep 0.1
    done
}

start_three $ARGS
writers=""
for w in 1 2 3; do
    writer $w --deadline-ms 3000 & # a put caught by the stop gives up
    writers="$writers $!"
done
"$EVR" bench --cluster "$CLUSTER" --app kv --keys 500 --value-size 64 \
    --clients 8 --duration 3 --warmup 0 >"$T/bench.out" 2>&1 &
bench=$!
sleep 1
stop_all # under load
touch "$T/stop"
for p in $writers; do wait "$p"; done
wait "$bench" || true # its clients lost the cluster: only load here
loaded=$(grep -l "quiet, the next start resumes" "$T"/r?.log | wc -l)
[ "$loaded" -ge 2 ] || fail "only $loaded of 3 replicas stopped quiet: $(
    grep -h "stopped cleanly\|in flight" "$T"/r?.log)"

start_three $ARGS
wait_primary
resumed=$(grep -l "resuming in view" "$T"/r?.log | wc -l)
[ "$resumed" -ge 2 ] || fail "only $resumed replicas resumed"
expect 0 "$EVR" kv --cluster "$CLUSTER" put after-restart yes
check_acked 10
expect 0 "$EVR" check --cluster "$CLUSTER" --wait-ms 30000

# Idle: every replica stops quiet, and all three resume.
for i in 0 1 2; do : >"$T/r$i.log"; done
stop_all
quiet=$(grep -l "quiet, the next start resumes" "$T"/r?.log | wc -l)
[ "$quiet" -eq 3 ] || fail "idle stop: only $quiet of 3 quiet"
start_three $ARGS
wait_primary
[ "$(grep -l "resuming in view" "$T"/r?.log | wc -l)" -eq 3 ] ||
    fail "idle stop: not every replica resumed"
OUT=$("$EVR" kv --cluster "$CLUSTER" get after-restart) || fail "get failed"
[ "$OUT" = yes ] || fail "after the second restart: '$OUT'"
expect 0 "$EVR" check --cluster "$CLUSTER" --wait-ms 30000

for i in 0 1 2; do stop_replica $i; done
same_dumps
echo "two whole-cluster restarts (under load: $loaded quiet), $ACKED" \
    "acknowledged puts read back"
