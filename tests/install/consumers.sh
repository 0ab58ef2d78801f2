#!/bin/sh
# consumers.sh BUILD_DIR SOURCE_DIR CC - install the build into a temporary
# prefix (as `make install` does) and build consumer.c against it the ways
# the README shows: pkg-config with the shared library, pkg-config
# --static with libdlock.a, and CMake's find_package with dlock::dlock and
# dlock::dlock_static. Each program must link and run.
set -u
build=$1 src=$2 cc=$3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
step() { # what, command...
    what=$1
    shift
    if "$@" >"$tmp/log" 2>&1; then
        echo "ok: $what"
    else
        echo "FAILED: $what"
        sed 's/^/  /' "$tmp/log"
        fail=1
    fi
}

step "cmake --install" cmake --install "$build" --prefix "$tmp/prefix"
lib=$(ls -d "$tmp/prefix"/lib* | head -1)
export PKG_CONFIG_PATH="$lib/pkgconfig"
step "pkg-config finds dlock" pkg-config --exists dlock

# Shared, as the README's first example.
step "shared link (pkg-config)" sh -c "$cc '$here/consumer.c' \$(pkg-config --cflags --libs dlock) \
    -Wl,-rpath,'$lib' -o '$tmp/shared'"
step "shared program runs" "$tmp/shared"
# Static: the archive by name (-l would pick the .so), the rest from --static.
step "static link (pkg-config --static)" sh -c "$cc '$here/consumer.c' \
    \$(pkg-config --cflags dlock) \$(pkg-config --static --libs dlock | sed 's/-ldlock\\b/-l:libdlock.a/') \
    -o '$tmp/static'"
step "static program runs" "$tmp/static"
step "static program has no libdlock.so" sh -c "! ldd '$tmp/static' | grep -q libdlock"

# CMake, both targets.
mkdir -p "$tmp/cm"
cat >"$tmp/cm/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(consumer C)
find_package(dlock REQUIRED)
add_executable(shared $here/consumer.c)
target_link_libraries(shared PRIVATE dlock::dlock)
add_executable(static $here/consumer.c)
target_link_libraries(static PRIVATE dlock::dlock_static)
CMAKE
step "cmake find_package(dlock)" cmake -S "$tmp/cm" -B "$tmp/cm/b" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$tmp/prefix"
step "cmake build" cmake --build "$tmp/cm/b"
step "cmake dlock::dlock runs" "$tmp/cm/b/shared"
step "cmake dlock::dlock_static runs" "$tmp/cm/b/static"
exit $fail
