# evr populate and bench-exec with the TPC-W application: a deterministic
# store with the spec's row counts, the three mixes agree in parallel and
# sequentially, the JSON names every interaction, bad options are refused.
. tests/cli/lib.sh

expect 0 "$EVR" populate --app tpcw --items 1000 --ebs 1 --out "$T/one.db"
contains "digest"
d1=$(echo "$OUT" | sed 's/.*digest //')
expect 0 "$EVR" populate --app tpcw --items 1000 --ebs 1 --out "$T/two.db"
[ "$(echo "$OUT" | sed 's/.*digest //')" = "$d1" ] || fail "not deterministic"
expect 0 "$EVR" digest "$T/one.db"
[ "$OUT" = "$d1" ] || fail "populate printed $d1, digest says $OUT"
count() { sqlite3 "$T/one.db" "SELECT count(*) FROM $1"; }
[ "$(count item)" = 1000 ] || fail "items: $(count item)"
[ "$(count author)" = 250 ] || fail "authors: $(count author)"
[ "$(count country)" = 92 ] || fail "countries: $(count country)"
[ "$(count customer)" = 2880 ] || fail "customers: $(count customer)"
[ "$(count address)" = 5760 ] || fail "addresses: $(count address)"
[ "$(count orders)" = 2592 ] || fail "orders: $(count orders)"
[ "$(count cc_xacts)" = 2592 ] || fail "cc_xacts: $(count cc_xacts)"
expect 0 "$EVR" populate --app tpcw --items 1000 --ebs 1 --seed 2 \
    --out "$T/three.db"
[ "$(echo "$OUT" | sed 's/.*digest //')" != "$d1" ] || fail "seed ignored"

for mix in browsing shopping ordering; do
    expect 0 "$EVR" bench-exec --app tpcw --mix "$mix" --items 1000 --ebs 2 \
        --batches 8 --batch-size 64 --threads 2 --repeat 1 \
        --json "$T/$mix.json"
    contains "state digests equal: yes; batch tokens equal: yes"
    for key in '"app": "tpcw"' '"interactions": {' '"digests_equal": true' \
        '"tokens_equal": true' '"interaction_mean_us": {'; do
        grep -qF "$key" "$T/$mix.json" || fail "$mix JSON lacks $key"
    done
done
# Over the three runs every one of the 14 interactions was named.
for name in home new_products best_sellers product_detail search_request \
    search_results shopping_cart customer_registration buy_request \
    buy_confirm order_inquiry order_display admin_request admin_confirm; do
    cat "$T"/*.json | grep -qF "\"$name\": " || fail "no $name in the JSON"
done

expect 2 "$EVR" populate --app tpcw --items 5000 --out "$T/x.db"
contains "--items must be 1000, 10000, 100000 or 1000000"
expect 2 "$EVR" bench-exec --app tpcw --mix buying
contains "--mix must be browsing, shopping or ordering"
expect 2 "$EVR" bench-exec --app tpcw --ebs 0
contains "--ebs"
[ ! -e "$T/x.db" ] || fail "a refused populate left a file"
expect 0 "$EVR" populate --help
contains "tpcw options:"
