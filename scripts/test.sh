#!/bin/sh
# make test: every test group, plain and under ASan+UBSan, then a short fuzz
# run of each target; ends with one "N passed, N failed" line.
# Usage: scripts/test.sh BUILD ASAN_BUILD FUZZ_BUILD JOBS FUZZ_SECONDS
set -u
BUILD=${1:-build} ASAN=${2:-build-asan} FUZZ=${3:-build-fuzz} JOBS=${4:-2} FUZZ_SECONDS=${5:-5}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0

run_ctest() { # dir, label-exclude
    (cd "$1" && ctest -j"$JOBS" --output-on-failure --timeout 300 -LE "$2") 2>&1 | tee -a "$log"
    # the verdict is read from the summary lines below
}

echo "== tests (RelWithDebInfo)"
run_ctest "$BUILD" "soak" || fail=1

echo "== tests under AddressSanitizer + UBSan"
if cmake -S . -B "$ASAN" -DCMAKE_BUILD_TYPE=Debug -DDLOCK_SANITIZE=ON -DDLOCK_BENCH=OFF >/dev/null &&
    cmake --build "$ASAN" -j"$JOBS" >/dev/null; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest "$ASAN" "soak|nosan" || fail=1
else
    echo "ASan build failed"; fail=1
fi

echo "== fuzz targets, ${FUZZ_SECONDS}s each"
if command -v clang >/dev/null 2>&1; then
    if CC=clang cmake -S . -B "$FUZZ" -DDLOCK_FUZZ=ON -DDLOCK_TESTS=OFF -DDLOCK_BENCH=OFF >/dev/null &&
        cmake --build "$FUZZ" -j"$JOBS" >/dev/null; then
        sh fuzz/run.sh "$FUZZ" "$FUZZ_SECONDS" 2>&1 | tee -a "$log" || fail=1
    else
        echo "fuzz build failed"; fail=1
    fi
else
    echo "clang not found: fuzz targets skipped"
fi

# ctest prints "N% tests passed, F tests failed out of T"; fuzz/run.sh "ok:"/"CRASH".
total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
fz_ok=$(grep -c '^ *ok:' "$log")
fz_bad=$(grep -c '^ *FAILED (exit' "$log")
passed=$((total - failed + fz_ok))
failed=$((failed + fz_bad))
[ "$failed" -gt 0 ] && fail=1
[ "$total" -gt 0 ] || { echo "no test ran"; fail=1; }
echo "make test: $passed passed, $failed failed"
exit $fail
