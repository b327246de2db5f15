# evr digest FILE: the full-scan state digest, and its refusals.
. tests/cli/lib.sh

sqlite3 "$T/a.db" "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);
                   CREATE TABLE u(a TEXT, b INT, PRIMARY KEY(a, b)) WITHOUT ROWID;
                   INSERT INTO t VALUES(1, 'x'), (2, 'y');
                   INSERT INTO u VALUES('p', 1), ('q', 2);"
sqlite3 "$T/b.db" "CREATE TABLE u(a TEXT, b INT, PRIMARY KEY(a, b)) WITHOUT ROWID;
                   CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);
                   INSERT INTO u VALUES('q', 2), ('p', 1);
                   INSERT INTO t VALUES(2, 'y'), (1, 'x');"
expect 0 "$EVR" digest "$T/a.db"
a=$OUT
echo "$a" | grep -Eq '^[0-9a-f]{32}$' || fail "not 32 hex digits: $a"
expect 0 "$EVR" digest "$T/b.db"
[ "$OUT" = "$a" ] || fail "same rows, other order: $OUT != $a"

sqlite3 "$T/b.db" "UPDATE t SET v = 'z' WHERE k = 2"
expect 0 "$EVR" digest "$T/b.db"
[ "$OUT" != "$a" ] || fail "a changed row did not change the digest"

expect 1 "$EVR" digest "$T/missing.db"
contains "missing.db"
sqlite3 "$T/c.db" "CREATE TABLE ok(k INTEGER PRIMARY KEY); CREATE TABLE loose(a, b);"
expect 1 "$EVR" digest "$T/c.db"
contains "'loose' has no PRIMARY KEY"
printf 'not a database at all, but some words to fill the header %s\n' \
    "................................................" > "$T/d.db"
expect 1 "$EVR" digest "$T/d.db"
contains "not an SQLite database"
expect 2 "$EVR" digest
expect 2 "$EVR" digest "$T/a.db" "$T/b.db"
expect 0 "$EVR" digest --help
contains "usage: evr digest FILE"
