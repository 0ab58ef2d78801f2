#!/bin/bash
# bench/server-cost.sh BUILD_DIR [SECONDS] [BASELINE_BUILD_DIR]
# What one acquire+release pair costs the SERVER, as counted (not timed), so
# the figures repeat on a noisy machine: a private redis-server runs under
# callgrind; each variant's client runs pairs on it for SECONDS (default 3;
# the server is ~50x slower under callgrind), and the server's instructions
# from the client's start to its end are divided by the pairs it ran (its
# warm-up cut to one pair). Variants:
#   raw          two raw hiredis EVALSHA round trips, minimal scripts (SET NX
#                PX + compare-and-delete): the ceiling of issue 9
#   raw-dlock    the same round trips with the library's scripts (4 KEYS,
#                fencing and owner metadata on)
#   uncontended  dlock_try_acquire + dlock_release through the library
# With BASELINE_BUILD_DIR the library's variants run again with that build
# ("@base"), for before/after figures. Each pair also does the server's
# network work (a read and a write per command): that part is the same for
# every variant, so differences are the scripts'.
set -eu
BUILD=${1:-build}
SECS=${2:-3}
BASE=${3:-}
here=$(dirname "$0")
. "$here/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
[ -x "$BUILD/bench/dlock-bench" ] || { echo "no $BUILD/bench/dlock-bench" >&2; exit 2; }
[ -z "$BASE" ] || [ -x "$BASE/bench/dlock-bench" ] || { echo "no $BASE/bench/dlock-bench" >&2; exit 2; }

trap bench_cleanup EXIT
start_callgrind_redis

# label bench args...: the server's instructions per pair for one variant.
measure() {
    label=$1; bench=$2; shift 2
    callgrind_control -z "$vpid" >/dev/null 2>&1
    n=$("$bench" "$@" --port "$port" --seconds "$SECS" --warmup 0 2>/dev/null |
        sed -n 's/.*: \([0-9]*\) pairs in .*/\1/p')
    rm -f "$dir"/cg.out.*
    callgrind_control -d "$vpid" >/dev/null 2>&1
    ir=$(sed -n 's/^summary: //p' "$dir"/cg.out.* | head -1)
    awk -v l="$label" -v ir="$ir" -v n="$n" 'BEGIN {
        if (n > 0) printf "| %s | %d | %.0f |\n", l, n, ir / (n + 1); else printf "| %s | failed | |\n", l }'
}

echo "| variant | pairs | server instructions per pair |"
echo "|---|---|---|"
B=$BUILD/bench/dlock-bench
measure raw "$B" --mode raw
measure raw-dlock "$B" --mode raw --raw-script dlock
measure uncontended "$B" --mode uncontended
measure uncontended-nofence "$B" --mode uncontended --no-fence
if [ -n "$BASE" ]; then
    measure raw-dlock@base "$BASE/bench/dlock-bench" --mode raw --raw-script dlock
    measure uncontended@base "$BASE/bench/dlock-bench" --mode uncontended
    measure uncontended-nofence@base "$BASE/bench/dlock-bench" --mode uncontended --no-fence
fi
