# The client commands against a real 3-replica loopback cluster (evr serve):
# kv put/get/del, status, check, a short bench with its JSON, a request
# that outlives its primary (kill -9), and the commands' refusals.
. tests/cli/lib.sh

PIDS=""
trap 'kill_started; rm -rf "$T"' EXIT

APP="--app kv --keys 1000 --value-size 64"

kill_started() {
    for p in $PIDS; do kill -9 "$p" 2>/dev/null || true; done
}

# start BASE: replicas on BASE..BASE+2; 0 once all three answer STATUS,
# 1 if one of them exits first (its port was taken) or after about 60 s.
start() {
    CL=127.0.0.1:$1,127.0.0.1:$(($1 + 1)),127.0.0.1:$(($1 + 2))
    PIDS=""
    for i in 0 1 2; do
        # shellcheck disable=SC2086
        "$EVR" serve --id $i --cluster "$CL" --data "$T/r$1-$i" $APP \
            --log-level warn 2>"$T/log$1-$i" &
        PIDS="$PIDS $!"
    done
    for _ in $(seq 1 100); do
        if "$EVR" status --cluster "$CL" --timeout-ms 500 >/dev/null 2>&1
        then
            return 0
        fi
        for p in $PIDS; do
            kill -0 "$p" 2>/dev/null || { kill_started; return 1; }
        done
        sleep 0.1
    done
    kill_started
    return 1
}

# Ports from the process id, below the kernel's ephemeral range (32768 and
# up, where outgoing connections take theirs); elsewhere if taken.
base=$((10000 + $$ * 7 % 20000))
start $base || start $((base + 101)) || start $((base + 211)) ||
    start $((base + 307)) || fail "no cluster came up: $(cat "$T"/log*)"

expect 0 "$EVR" kv --cluster "$CL" put hello world
expect 0 "$EVR" kv --cluster "$CL" get hello
[ "$OUT" = world ] || fail "get printed '$OUT'"
expect 1 "$EVR" kv --cluster "$CL" get nothing
contains "no such key"
expect 0 "$EVR" kv --cluster "$CL" del hello
expect 1 "$EVR" kv --cluster "$CL" del hello
contains "nothing deleted"
expect 0 "$EVR" kv --cluster "$CL" get k0000000000000000000000000000007

expect 0 "$EVR" status --cluster "$CL" --json "$T/s.json"
contains "primary"
[ "$(printf '%s\n' "$OUT" | grep -c ' normal ')" -eq 3 ] ||
    fail "not three normal replicas: $OUT"
grep -qF '"batches_applied"' "$T/s.json" || fail "status JSON: $(cat "$T/s.json")"

expect 0 "$EVR" bench --cluster "$CL" $APP --clients 4 --duration 1 \
    --read-fraction 0.5 --json "$T/b.json"
contains "latency ms: p50"
for key in '"ops"' '"errors": 0' '"throughput_ops"' '"latency_ms": {' \
    '"p99"' '"rollbacks"' '"repairs"' '"batches"' '"kinds": {' '"get": {' \
    '"put": {' '"mode": "eve"' '"clients": 4'; do
    grep -qF "$key" "$T/b.json" || fail "bench JSON lacks $key: $(cat "$T/b.json")"
done

expect 0 "$EVR" check --cluster "$CL"
contains "3 of 3 replicas agree at applied op"

# The primary dies; the next request finds the new one.
primary=$("$EVR" status --cluster "$CL" | awk '$2 == "primary" { print $1 }')
[ -n "$primary" ] || fail "no primary"
kill -9 "$(echo $PIDS | cut -d' ' -f$((primary + 1)))"
expect 0 "$EVR" kv --cluster "$CL" --try-timeout-ms 200 put after failover
expect 0 "$EVR" kv --cluster "$CL" get after
[ "$OUT" = failover ] || fail "get after failover printed '$OUT'"
expect 1 "$EVR" status --cluster "$CL" --timeout-ms 300
contains "unreachable"
expect 0 "$EVR" check --cluster "$CL"
contains "2 of 3 replicas agree"

# Refusals.
expect 2 "$EVR" kv get x
contains "--cluster"
expect 2 "$EVR" kv --cluster "$CL" frobnicate x
expect 2 "$EVR" kv --cluster "127.0.0.1" get x
contains "host:port"
expect 2 "$EVR" bench --cluster "$CL" --clients 0
expect 2 "$EVR" bench --cluster "$CL" --app nope
expect 2 "$EVR" check --cluster "$CL" extra
expect 1 "$EVR" kv --cluster 127.0.0.1:1 --deadline-ms 300 get x
contains "no reply within 300 ms"
expect 0 "$EVR" bench --help
contains "--clients"

# --key-size: keys of that many bytes; 32 is today's database.
expect 0 "$EVR" populate --app kv --keys 100 --key-size 8 --out "$T/k8.db"
[ "$(sqlite3 "$T/k8.db" 'SELECT min(length(k)) || max(length(k)) FROM kv')" \
    = 88 ] || fail "keys are not 8 bytes"
expect 0 "$EVR" populate --app kv --keys 100 --key-size 32 --out "$T/k32.db"
expect 0 "$EVR" populate --app kv --keys 100 --out "$T/kd.db"
[ "$("$EVR" digest "$T/k32.db")" = "$("$EVR" digest "$T/kd.db")" ] ||
    fail "--key-size 32 changed the database"
expect 2 "$EVR" populate --app kv --keys 100000000 --key-size 8 --out "$T/x.db"
contains "do not fit"
