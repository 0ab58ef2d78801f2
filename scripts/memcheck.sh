#!/bin/sh
# make memcheck: valgrind memcheck over the integration tests (every forked
# worker checked too). Fails on any invalid access or definite/indirect leak.
# Usage: scripts/memcheck.sh BUILD_DIR
set -u
BUILD=${1:-build}
fail=0; n=0
for t in "$BUILD"/tests/integration/test_*; do
    [ -x "$t" ] || continue
    n=$((n + 1))
    log=$(mktemp)
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
        --errors-for-leak-kinds=definite,indirect --error-exitcode=99 "$t" >"$log" 2>&1
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok   $(basename "$t")"
    else
        fail=$((fail + 1))
        echo "FAIL $(basename "$t") (exit $rc)"
        grep -E "Invalid|definitely|indirectly|uninitialised|TH_|failed" "$log" | head -20 | sed 's/^/     /'
    fi
    rm -f "$log"
done
echo "memcheck: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
