# Three replicas on loopback under KV load from several clients; kill -9 the
# primary mid-run; a new primary takes over, the old one restarts and
# recovers; at the end every replica reports the same committed digest, the
# sqlite3 dumps of the three databases are identical, and every put a
# client saw acknowledged reads back.
. tests/cli/lib.sh
. tests/cli/netlib.sh
trap 'kill_all; rm -rf "$T"' EXIT

APP="--app kv --keys 500 --value-size 64"
OPTS="--view-timeout-ms 400 --log-level info"
cluster_addrs 3
start_three $APP $OPTS

writers=""
for w in 1 2 3; do
    writer $w &
    writers="$writers $!"
done
"$EVR" bench --cluster "$CLUSTER" --app kv --keys 500 --value-size 64 \
    --clients 8 --duration 9 --warmup 0 --json "$T/bench.json" \
    >"$T/bench.out" 2>&1 &
bench=$!

sleep 3
old=$(primary_id)
[ -n "$old" ] || fail "no primary before the kill"
kill -9 "$(cat "$T/r$old.pid")"
wait "$(cat "$T/r$old.pid")" 2>/dev/null || true
sleep 2
new=$(primary_id)
[ -n "$new" ] && [ "$new" != "$old" ] || fail "no new primary after killing $old (got '$new')"
start_replica "$old" $APP $OPTS
sleep 3
touch "$T/stop"
wait "$bench" || fail "bench failed: $(cat "$T/bench.out")"
for p in $writers; do wait "$p"; done

expect 0 "$EVR" check --cluster "$CLUSTER" --wait-ms 30000
grep -q "recovering\|repopulated" "$T/r$old.log" ||
    fail "replica $old did not say it recovered: $(tail "$T/r$old.log")"
check_acked 20

for i in 0 1 2; do stop_replica $i; done
same_dumps
echo "killed primary $old, new primary $new, $ACKED acknowledged puts read back"
