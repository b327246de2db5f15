# Helpers for tests that run replicas on loopback. Source after lib.sh.
# Uses $NET_TOOLS (the directory of evr-ports and evr-badinput).
: "${NET_TOOLS:=$(dirname "$EVR")/tests}"
PIDS=""

# cluster_addrs N: sets $CLUSTER to N free loopback addresses.
cluster_addrs() {
    CLUSTER=$("$NET_TOOLS/evr-ports" "$1" | sed 's/^/127.0.0.1:/' |
        paste -sd, -)
}

# addr_of I: the address of replica I in $CLUSTER.
addr_of() {
    echo "$CLUSTER" | cut -d, -f$(($1 + 1))
}

# start_replica I ARGS...: starts replica I (data in $T/rI, log in
# $T/rI.log); its pid goes to $T/rI.pid.
start_replica() {
    i=$1
    shift
    "$EVR" serve --id "$i" --cluster "$CLUSTER" --data "$T/r$i" "$@" \
        2>>"$T/r$i.log" &
    echo $! >"$T/r$i.pid"
    PIDS="$PIDS $!"
}

# stop_replica I: SIGTERM, and waits; fails if it does not exit cleanly.
stop_replica() {
    pid=$(cat "$T/r$1.pid")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || fail "replica $1 exited with $? after SIGTERM:
$(tail -n 20 "$T/r$1.log")"
}

# kill_all: no replica outlives the test.
kill_all() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
}

# wait_serving ADDR: until the replica answers STATUS (at most 20 s).
wait_serving() {
    n=0
    until "$EVR" status --cluster "$1" >/dev/null 2>&1; do
        n=$((n + 1))
        [ $n -lt 200 ] || fail "replica at $1 never answered"
        sleep 0.1
    done
}

# primary_id: the id of the replica that says it is primary.
primary_id() {
    "$EVR" status --cluster "$CLUSTER" 2>/dev/null |
        awk '$2 == "primary" { print $1; exit }'
}
