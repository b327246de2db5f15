# Bad input on a replica's port (the one replicas and clients use):
# truncated frames, bad checksums, wrong cluster ids, oversized sizes and
# random bytes, under load. Every bad connection is closed, the cluster
# keeps serving and stays converged.
. tests/cli/lib.sh
. tests/cli/netlib.sh
trap 'kill_all; rm -rf "$T"' EXIT

cluster_addrs 3
for i in 0 1 2; do start_replica $i --app kv --keys 200; done
for i in 0 1 2; do wait_serving "$(addr_of $i)"; done
"$EVR" bench --cluster "$CLUSTER" --app kv --keys 200 --clients 4 \
    --duration 4 --warmup 0 >"$T/bench.out" 2>&1 &
bench=$!
for i in 0 1; do
    expect 0 "$NET_TOOLS/evr-badinput" "$(addr_of $i)" --rounds 16 --seed $i
done
wait "$bench" || fail "bench under bad input failed: $(cat "$T/bench.out")"
expect 0 "$EVR" kv --cluster "$CLUSTER" put after-bad-input yes
expect 0 "$EVR" kv --cluster "$CLUSTER" get after-bad-input
[ "$OUT" = yes ] || fail "read back '$OUT'"
expect 0 "$EVR" check --cluster "$CLUSTER" --wait-ms 20000
grep -q "closing the connection" "$T/r0.log" || fail "no refusal logged"
for i in 0 1 2; do stop_replica $i; done
