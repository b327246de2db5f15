#!/bin/sh
# Finds evr's build dependencies with pkg-config and prints the make
# variables that use them (the Makefile includes the output).
#
# Missing packages are installed with apt-get when running as root;
# otherwise the script prints the exact apt-get line to run and fails.
set -eu

modules="sqlite3 libxxhash cmocka libuv"
packages="pkg-config libsqlite3-dev libxxhash-dev libcmocka-dev libuv1-dev sqlite3"

missing() {
    command -v pkg-config >/dev/null 2>&1 || return 0
    command -v sqlite3 >/dev/null 2>&1 || return 0
    for m in $modules; do
        pkg-config --exists "$m" || return 0
    done
    return 1
}

if missing; then
    line="apt-get install -y --no-install-recommends $packages"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "deps.sh: installing: $packages" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || true
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $packages >&2
    else
        echo "deps.sh: missing build dependencies; as root, run:" >&2
        echo "    apt-get update && $line" >&2
        exit 1
    fi
    if missing; then
        echo "deps.sh: dependencies still missing after apt-get" >&2
        exit 1
    fi
fi

echo "DEPS_CFLAGS := $(pkg-config --cflags $modules)"
echo "DEPS_LIBS := $(pkg-config --libs sqlite3 libxxhash libuv)"
echo "CMOCKA_LIBS := $(pkg-config --libs cmocka)"
