#!/bin/bash
# bench/kinds-pinned.sh BUILD_DIR [ROUNDS] [SECONDS]
# Each kind's uncontended try-acquire + release next to the mutex's, with
# the client and a private redis-server pinned to one CPU (as the pinned
# rows of bench/run-kinds.sh, without that script's unpinned, fairness and
# counted parts): ROUNDS interleaved rounds (default 9) of SECONDS each
# (default 2) of `dlock-bench --mode uncontended --kind K`. Prints, per
# kind, the medians over the rounds of the kind's p50 ÷ the mutex's p50 and
# of the mutex's pairs/s ÷ the kind's (each ratio taken within one round),
# each round's p50 ratio, and the RESULT lines.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-9}
SECS=${3:-2}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first" >&2; exit 2; }
start_redis P
SPID=${BENCH_PIDS##* } # the server's pid (lib.sh)
taskset -a -p -c 0 "$SPID" >/dev/null
KINDS="mutex sem rw-shared rw-exclusive multi"
out=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    for k in $KINDS; do
        line=$(taskset -c 0 "$BENCH" --mode uncontended --kind "$k" --port "$P" --seconds "$SECS" \
            --warmup 0.3 --name "kp-$k" 2>/dev/null | grep '^RESULT') || line="RESULT failed"
        echo "$r $k $line" >> "$out"
    done
done
echo "| kind | p50 ÷ mutex (median) | mutex pairs/s ÷ kind's (median) | p50 ÷ mutex, per round |"
echo "|---|---|---|---|"
for k in $KINDS; do
    awk -v k="$k" '
        function val(s, f,   m) { m = s; if (!sub(".*" f "=", "", m)) return -1; sub(" .*", "", m); return m + 0 }
        function median(a, n,   i, j, t) {
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
        { p[$1, $2] = val($0, "p50_us"); q[$1, $2] = val($0, "pairs_per_s"); if ($1 > rounds) rounds = $1 }
        END {
            n = 0; per = ""
            for (r = 1; r <= rounds; r++) {
                if (p[r, k] <= 0 || p[r, "mutex"] <= 0 || q[r, k] <= 0) continue
                n++; a[n] = p[r, k] / p[r, "mutex"]; b[n] = q[r, "mutex"] / q[r, k]
                per = per sprintf(" %.2f", a[n])
            }
            if (n == 0) { printf "| %s | failed | | |\n", k; exit }
            printf "| %s | %.3f | %.3f |%s |\n", k, median(a, n), median(b, n), per }' "$out"
done
echo
echo "raw RESULT lines:"
cat "$out"
rm -f "$out"
