#!/bin/bash
# bench/run-kinds.sh BUILD_DIR [ROUNDS] [SECONDS] [MULTI_SECONDS]
# The figures of docs/BENCHMARKS.md "Lock kinds (issue 11)", in one run on
# one private server, the variants interleaved (A B C A B C ...) and
# medians reported, so the ratios hold on a noisy shared machine:
#   - uncontended try-acquire + release of each kind, as scheduled and with
#     client and server pinned to CPU 0 (see run-core.sh), against the
#     mutex's in the same round;
#   - 8 workers on a 3-permit semaphore (per-worker shares);
#   - 7 readers and 1 writer (the writer's wait p99 against a reader's hold);
#   - then once, 8 workers on overlapping multi-locks for MULTI_SECONDS
#     (default 60): stalls and the longest time nobody acquired;
#   - and what a pair costs, counted rather than timed (dlock-pairs): the
#     client's instructions (callgrind, when valgrind is there), the
#     server's script time (INFO commandstats) and the commands the scripts
#     run.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-5}
SECS=${3:-3}
MULTI_SECS=${4:-60}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }

start_redis P1
out=$(mktemp)
P1_PID=$(redis-cli -p "$P1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')

errs=$(mktemp)
# A run that prints no RESULT is recorded with its figures as "fail", so
# that every round keeps one line per variant (the per-round ratios pair
# them by position), and the last line of its stderr is listed at the end.
record() { # label, output, stderr file
    line=$(echo "$2" | grep '^RESULT') ||
        { line="RESULT failed pairs_per_s=fail p50_us=fail p99_us=fail"
          echo "$1: $(tail -1 "$3")" >> "$errs"; }
    echo "$1 $line" >> "$out"
}
run() { # label, args...
    label=$1; shift
    o=$("$BENCH" "$@" 2>"$errs.1") || true
    record "$label" "$o" "$errs.1"
}
pinned() { # label, args...
    label=$1; shift
    taskset -p -c 0 "$P1_PID" >/dev/null
    o=$(taskset -c 0 "$BENCH" "$@" 2>"$errs.1") || true
    taskset -p -c 0-$(( $(nproc) - 1 )) "$P1_PID" >/dev/null
    record "$label" "$o" "$errs.1"
}

KINDS="mutex sem rw-shared rw-exclusive multi"
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    for k in $KINDS; do
        run "u-$k" --mode uncontended --kind "$k" --port "$P1" --seconds "$SECS" --name "u-$k"
        pinned "p-$k" --mode uncontended --kind "$k" --port "$P1" --seconds "$SECS" --name "p-$k"
    done
    run sem-8x3 --mode semaphore --workers 8 --permits 3 --port "$P1" --seconds "$SECS"
    run rw-7r1w --mode rwlock --readers 7 --writers 1 --port "$P1" --seconds "$SECS"
done
echo "multilock, $MULTI_SECS s" >&2
run multi-8 --mode multilock --workers 8 --names 6 --set 3 --port "$P1" --seconds "$MULTI_SECS"

med() { grep "^$1 " "$out" | field "$2" | grep -v '^fail$' | median; }
worst() { grep "^$1 " "$out" | field "$2" | grep -v '^fail$' | sort -g | tail -1; }

echo "### Uncontended try-acquire + release (medians of $ROUNDS rounds, ${SECS} s each)"
echo
printf '| kind | pairs/s | p50 µs | p99 µs | pinned pairs/s | pinned p50 µs | cost ÷ mutex | pinned cost ÷ mutex |\n'
printf '|---|---|---|---|---|---|---|---|\n'
mu=$(med u-mutex pairs_per_s); mp=$(med p-mutex pairs_per_s)
for k in $KINDS; do
    u=$(med "u-$k" pairs_per_s); p=$(med "p-$k" pairs_per_s)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$k" "$u" "$(med "u-$k" p50_us)" \
        "$(med "u-$k" p99_us)" "$p" "$(med "p-$k" p50_us)" \
        "$(awk -v a="$mu" -v b="$u" 'BEGIN {printf "%.2f", a / b}')" \
        "$(awk -v a="$mp" -v b="$p" 'BEGIN {printf "%.2f", a / b}')"
done
echo
echo "cost ÷ mutex: the mutex's pairs/s over the kind's (time per pair, relative);"
echo "per round, the same ratio's median:"
ratio() { # prefix, kind: median over rounds of the mutex's pairs/s over the kind's
    paste <(grep "^$1-mutex " "$out" | field pairs_per_s) <(grep "^$1-$2 " "$out" | field pairs_per_s) |
        awk '$1 != "fail" && $2 != "fail" {print $1 / $2}' | median
}
p50r() { # prefix, kind: the kind's p50 over the mutex's, each round ("fail": a run failed)
    paste <(grep "^$1-mutex " "$out" | field p50_us) <(grep "^$1-$2 " "$out" | field p50_us) |
        awk '{ if ($1 == "fail" || $2 == "fail") print "fail"; else printf "%.2f\n", $2 / $1 }' |
        tr '\n' ' '
}
for k in $KINDS; do
    printf -- '- %s: as scheduled %.2f, pinned %.2f\n' "$k" "$(ratio u "$k")" "$(ratio p "$k")"
done
echo
echo "p50 ÷ the mutex's p50, per round (pinned, then as scheduled), and the median:"
for k in $KINDS; do
    printf -- '- %s: pinned %s(median %.2f); as scheduled %s(median %.2f)\n' "$k" \
        "$(p50r p "$k")" "$(p50r p "$k" | tr ' ' '\n' | grep . | grep -v fail | median)" \
        "$(p50r u "$k")" "$(p50r u "$k" | tr ' ' '\n' | grep . | grep -v fail | median)"
done
echo
echo "### Fairness"
echo
printf '| variant | acquisitions/s | min share | wait p50 µs | wait p99 µs | most holders | violations |\n'
printf '|---|---|---|---|---|---|---|\n'
printf '| semaphore, 8 workers, 3 permits, hold 1 ms | %s | %s (worst %s) | %s | %s | %s | %s |\n' \
    "$(med sem-8x3 acq_per_s)" "$(med sem-8x3 min_share)" \
    "$(grep '^sem-8x3 ' "$out" | field min_share | sort -g | head -1)" \
    "$(med sem-8x3 wait_p50_us)" "$(med sem-8x3 wait_p99_us)" "$(worst sem-8x3 max_holders)" \
    "$(worst sem-8x3 violations)"
echo
printf '| variant | writer acq/s | reader acq/s | writer wait p50 µs | writer wait p99 µs | p99 ÷ reader hold | reader min share | violations |\n'
printf '|---|---|---|---|---|---|---|---|\n'
printf '| rw, 7 readers (hold 5 ms), 1 writer (hold 0.5 ms) | %s | %s | %s | %s | %s (worst %s) | %s | %s |\n' \
    "$(med rw-7r1w writer_acq_per_s)" "$(med rw-7r1w reader_acq_per_s)" \
    "$(med rw-7r1w writer_wait_p50_us)" "$(med rw-7r1w writer_wait_p99_us)" \
    "$(med rw-7r1w writer_p99_per_hold)" "$(worst rw-7r1w writer_p99_per_hold)" \
    "$(med rw-7r1w reader_min_share)" "$(worst rw-7r1w violations)"
echo
echo "### Multi-locks, 8 workers, random 3 of 6 names, hold 1 ms, $MULTI_SECS s"
echo
grep '^multi-8 ' "$out" | sed 's/^multi-8 //'
echo
echo "### What a pair costs, counted (dlock-pairs)"
echo
PAIRS=$BUILD/bench/dlock-pairs
URL=redis://127.0.0.1:$P1
insns() { # kind: client instructions per pair (the difference of 5000 and 10000 pairs)
    command -v valgrind >/dev/null || { echo "-"; return; }
    a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PAIRS" "$URL" 5000 "$1" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$PAIRS" "$URL" 10000 "$1" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
    echo $(( (b - a) / 5000 ))
}
printf '| kind | client instructions per pair | server µs per pair (scripts) | Redis commands run inside the scripts per pair |\n'
printf '|---|---|---|---|\n'
for k in $KINDS; do
    redis-cli -p "$P1" config resetstat >/dev/null
    "$PAIRS" "$URL" 20000 "$k"
    stats=$(redis-cli -p "$P1" info commandstats | tr -d '\r')
    us=$(echo "$stats" | sed -n 's/^cmdstat_evalsha:calls=[0-9]*,usec=\([0-9]*\),.*/\1/p')
    inner=$(echo "$stats" | grep '^cmdstat_' | grep -v -E 'cmdstat_(evalsha|eval|config.*|info):' |
        sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s}')
    printf '| %s | %s | %s | %s |\n' "$k" "$(insns "$k")" \
        "$(awk -v u="$us" 'BEGIN {printf "%.1f", u / 20000}')" \
        "$(awk -v n="$inner" 'BEGIN {printf "%.1f", n / 20000}')"
done
echo
echo "raw RESULT lines:"
cat "$out"
if [ -s "$errs" ]; then
    echo
    echo "runs that printed no RESULT (the last line of their stderr):"
    cat "$errs"
fi
rm -f "$out" "$errs" "$errs.1"
