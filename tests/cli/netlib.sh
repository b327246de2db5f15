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

# start_three ARGS...: starts replicas 0, 1 and 2 and waits until each
# answers STATUS.
start_three() {
    for i in 0 1 2; do start_replica $i "$@"; done
    for i in 0 1 2; do wait_serving "$(addr_of $i)"; done
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

# writer W [KV_OPTIONS...]: puts its own keys wW-1, wW-2, ... one request at
# a time until $T/stop exists, and records a key in $T/ackedW only once the
# put was acknowledged (exit 0).
writer() {
    w=$1
    shift
    j=0
    while [ ! -e "$T/stop" ]; do
        j=$((j + 1))
        if "$EVR" kv --cluster "$CLUSTER" "$@" put "w$w-$j" "value-$w-$j" \
            >/dev/null 2>>"$T/writer$w.err"; then
            echo "w$w-$j value-$w-$j" >>"$T/acked$w"
        fi
    done
}

# check_acked MIN: at least MIN puts were acknowledged, and every one reads
# back with its value; sets $ACKED to their count.
check_acked() {
    ACKED=$(cat "$T"/acked* | wc -l)
    [ "$ACKED" -gt "$1" ] || fail "only $ACKED puts acknowledged"
    cat "$T"/acked* | while read -r key value; do
        got=$("$EVR" kv --cluster "$CLUSTER" get "$key") ||
            fail "acknowledged key $key is missing"
        [ "$got" = "$value" ] || fail "key $key: '$got', acknowledged '$value'"
    done
}

# same_dumps: the sqlite3 dumps of replicas 0, 1 and 2 are identical.
same_dumps() {
    for i in 0 1 2; do sqlite3 "$T/r$i/state.db" .dump >"$T/dump$i"; done
    cmp -s "$T/dump0" "$T/dump1" || fail "dumps of replicas 0 and 1 differ"
    cmp -s "$T/dump0" "$T/dump2" || fail "dumps of replicas 0 and 2 differ"
}
