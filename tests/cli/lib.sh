# Helpers for command-line tests. Each test script sources this, uses $EVR
# (the binary under test) and $T (a fresh directory, removed at exit).
set -eu
: "${EVR:?set EVR to the evr binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/evr-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# expect STATUS COMMAND...: runs the command, stores stdout+stderr in $OUT
# and fails unless it exits with STATUS.
expect() {
    want=$1
    shift
    set +e
    OUT=$("$@" 2>&1)
    got=$?
    set -e
    [ "$got" -eq "$want" ] || fail "exit $got, wanted $want: $*
$OUT"
}

# contains TEXT: fails unless $OUT contains TEXT.
contains() {
    case "$OUT" in
    *"$1"*) ;;
    *) fail "output lacks '$1':
$OUT" ;;
    esac
}
