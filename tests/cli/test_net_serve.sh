# evr serve: option refusals, a replica alone (unreplicated), clean stop
# and restart, sqlite3 reading the stopped database, a directory of another
# configuration, a port in use.
. tests/cli/lib.sh
. tests/cli/netlib.sh
trap 'kill_all; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT

expect 2 "$EVR" serve
contains "--cluster and --data are required"
expect 2 "$EVR" serve --cluster 127.0.0.1:1,127.0.0.1:2 --data "$T/x"
contains "odd number"
expect 2 "$EVR" serve --cluster 127.0.0.1:1 --id 3 --data "$T/x"
contains "--id 3"
expect 2 "$EVR" serve --cluster 127.0.0.1:1 --data "$T/x" --mode fast
contains "--mode must be"
expect 2 "$EVR" serve --cluster 127.0.0.1:1 --data "$T/x" --keys ten
contains "--keys"
expect 1 "$EVR" serve --cluster 127.0.0.1:1,127.0.0.1:2,127.0.0.1:3 \
    --data "$T/x" --mode unreplicated
contains "unreplicated mode takes one address"

cluster_addrs 1
start_replica 0 --app kv --keys 100 --mode unreplicated
wait_serving "$CLUSTER"
expect 0 "$EVR" kv --cluster "$CLUSTER" put colour blue
expect 0 "$EVR" kv --cluster "$CLUSTER" get colour
[ "$OUT" = blue ] || fail "get colour: '$OUT'"
expect 1 "$EVR" kv --cluster "$CLUSTER" get no-such-key

# A second server on the same port fails and says why.
expect 1 "$EVR" serve --cluster "$CLUSTER" --data "$T/other" --app kv \
    --keys 100 --mode unreplicated
contains "listening on"

stop_replica 0
grep -q "stopped cleanly" "$T/r0.log" || fail "no clean stop: $(cat "$T/r0.log")"
[ "$(sqlite3 "$T/r0/state.db" "SELECT CAST(v AS TEXT) FROM kv WHERE k = CAST('colour' AS BLOB)")" = blue ] ||
    fail "sqlite3 does not read the stopped database"
[ "$(sqlite3 "$T/r0/state.db" 'SELECT count(*) FROM evr_clients')" -ge 1 ] ||
    fail "no client table rows"

start_replica 0 --app kv --keys 100 --mode unreplicated
wait_serving "$CLUSTER"
grep -q "kept from a clean stop" "$T/r0.log" || fail "restart repopulated"
expect 0 "$EVR" kv --cluster "$CLUSTER" get colour
[ "$OUT" = blue ] || fail "after restart: '$OUT'"
expect 0 "$EVR" kv --cluster "$CLUSTER" del colour
expect 1 "$EVR" kv --cluster "$CLUSTER" get colour
stop_replica 0

expect 1 "$EVR" serve --cluster "$CLUSTER" --data "$T/r0" --app kv --keys 200 \
    --mode unreplicated
contains "belongs to another replica or configuration"
