#!/bin/bash
# bench/pipelined.sh BUILD_DIR [ROUNDS] [SECONDS]
# The non-blocking API against the blocking one and against the server's
# own ceiling for the same two scripts, interleaved on one private server:
#   blocking     dlock-bench --mode uncontended (one pair at a time)
#   pipe-N       dlock-bench --mode pipelined --inflight N (N pairs in flight)
#   srv-acquire  redis-benchmark -P 64 running dlock's ACQUIRE script on
#                fresh keys (the free-lock path: INCR, HSET, PEXPIRE)
#   srv-release  redis-benchmark -P 64 running dlock's RELEASE script on keys
#                that are not held (its cheapest path: one HGET)
# The ceiling in pairs/s is 1 / (1/acquire + 1/release): the server doing
# nothing but those two scripts, pipelined, with its cheapest release path,
# so the ratio is if anything understated. Medians of ROUNDS rounds.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-5}
SECS=${3:-3}
BENCH=$BUILD/bench/dlock-bench
SCRIPTS=$BUILD/bench/dlock-scripts
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] && [ -x "$SCRIPTS" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found (redis-tools)" >&2; exit 2; }

start_redis P
# Loaded from stdin (-x), byte for byte: "$(...)" would drop the source's
# last newline, and the digest would no longer be the library's (EVALSHA
# then failed with NOSCRIPT, and srv-* counted 0).
ASHA=$("$SCRIPTS" --sha acquire)
RSHA=$("$SCRIPTS" --sha release)
"$SCRIPTS" --source acquire | redis-cli -p "$P" -x SCRIPT LOAD >/dev/null
"$SCRIPTS" --source release | redis-cli -p "$P" -x SCRIPT LOAD >/dev/null
TOK=0123456789abcdef0123456789abcdef
N=$(( SECS * 150000 ))
out=$(mktemp)

run() { # label, args...
    label=$1; shift
    line=$("$BENCH" "$@" --port "$P" --seconds "$SECS" --warmup 0.5 2>/dev/null | grep '^RESULT') ||
        line="RESULT failed"
    echo "$label $(echo "$line" | field pairs_per_s)" >> "$out"
}

srv() { # label, sha, script args...
    label=$1; sha=$2; shift 2
    k='dlock:{b__rand_int__}'
    rps=$(redis-benchmark -p "$P" -P 64 -n "$N" -r 100000000 -q \
        EVALSHA "$sha" 4 "$k" "$k:fence" "$k:q" "$k:qi" "$@" 2>/dev/null |
        sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    echo "$label ${rps:-0}" >> "$out"
    redis-cli -p "$P" FLUSHALL >/dev/null
}

for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    run blocking --mode uncontended
    for n in 1 16 64 256; do run "pipe-$n" --mode pipelined --inflight "$n"; done
    # fencing 1, no enqueue, wait_ms 1 (the scripts refuse 0), acquired_ms 0
    srv srv-acquire "$ASHA" "$TOK" 10000 "h	1	l" 1 0 1 0
    srv srv-release "$RSHA" "$TOK"
done

med() { awk -v l="$1" '$1 == l {print $2}' "$out" | median; }
printf '| variant | pairs/s (or scripts/s) |\n|---|---|\n'
for l in blocking pipe-1 pipe-16 pipe-64 pipe-256 srv-acquire srv-release; do
    printf '| %s | %s |\n' "$l" "$(med "$l")"
done
A=$(med srv-acquire) R=$(med srv-release) B=$(med blocking)
awk -v a="$A" -v r="$R" -v b="$B" -v p16="$(med pipe-16)" -v p64="$(med pipe-64)" \
    -v p256="$(med pipe-256)" 'BEGIN {
    ceil = (a > 0 && r > 0) ? 1 / (1 / a + 1 / r) : 0
    best = p16; if (p64 > best) best = p64; if (p256 > best) best = p256
    printf "\nserver ceiling for the two scripts: %.0f pairs/s\n", ceil
    printf "pipelined (best of 16/64/256 in flight) / blocking: %.2fx\n", (b > 0 ? best / b : 0)
    printf "pipelined / server ceiling: %.1f %%\n", (ceil > 0 ? 100 * best / ceil : 0)
}'
rm -f "$out"
