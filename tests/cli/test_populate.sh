# evr populate: a deterministic start state, and its refusals.
. tests/cli/lib.sh

expect 0 "$EVR" populate --app kv --keys 500 --value-size 64 --out "$T/one.db"
contains "digest"
d1=$(echo "$OUT" | sed 's/.*digest //')
expect 0 "$EVR" populate --app kv --keys 500 --value-size 64 --out "$T/two.db"
d2=$(echo "$OUT" | sed 's/.*digest //')
[ "$d1" = "$d2" ] || fail "same options, different databases: $d1 $d2"
expect 0 "$EVR" digest "$T/one.db"
[ "$OUT" = "$d1" ] || fail "populate printed $d1, digest says $OUT"
[ "$(sqlite3 "$T/one.db" 'SELECT count(*) FROM kv')" = 500 ] || fail "row count"
[ "$(sqlite3 "$T/one.db" 'PRAGMA journal_mode')" = wal ] || fail "not WAL"

expect 0 "$EVR" populate --app kv --keys 500 --value-size 64 --seed 2 --out "$T/three.db"
[ "$(echo "$OUT" | sed 's/.*digest //')" != "$d1" ] || fail "seed ignored"

expect 1 "$EVR" populate --app kv --keys 10 --out "$T/one.db"
contains "exists"
expect 2 "$EVR" populate --app kv --keys ten --out "$T/x.db"
contains "--keys must be an integer"
expect 2 "$EVR" populate --app kv --colour blue --out "$T/x.db"
contains "no option --colour"
expect 2 "$EVR" populate --app nope --out "$T/x.db"
contains "unknown application 'nope'"
expect 2 "$EVR" populate --app kv
[ ! -e "$T/x.db" ] || fail "a refused populate left a file"
