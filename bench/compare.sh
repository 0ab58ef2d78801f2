#!/bin/bash
# bench/compare.sh BUILD_DIR [ROUNDS] [SECONDS]
# dlock against its peers, side by side: redis-py's Lock, node-redlock v5
# and redis-semaphore's Mutex (both on ioredis), with their default blocking
# acquire settings (each peer's file in bench/peers/ documents them), and
# dlock's own seed design (--waiting poll). One private redis-server (three
# more for redlock3); every variant runs the dlock-bench workloads:
#   contended    W worker processes (1, 2, 4, 8, 16), one lock, a non-atomic
#                GET/SET increment under it; acquisitions/s, handoffs/s (an
#                acquisition by a different worker than the previous one),
#                least-served worker's share of the mean, wait p99,
#                violations (lost updates), acquires that gave up
#   uncontended  one client, acquire+release pairs/s and p50/p99 latency, as
#                scheduled and again with the client and the server pinned to
#                one CPU (taskset), where a round trip is a context switch
#   redlock3     the uncontended pairs over a Redlock set of 3 servers: dlock
#                (fencing on, its default) and node-redlock (no fencing), as
#                scheduled and with the client and the 3 servers on one CPU
# PARTS (environment, default "contended uncontended redlock3") picks the
# parts to run, e.g. PARTS=redlock3 bench/compare.sh build. BASE (environment,
# a build directory, e.g. of the parent commit) adds that build's dlock to
# the redlock3 part as "dlock-base": before and after in the same run.
# Variants are interleaved (A B C D E A B C D E ..., the order rotated each
# round) for ROUNDS rounds (default 5) of SECONDS each (default 3); medians
# are reported. Markdown goes to stdout (and to $OUT if set), the raw RESULT
# lines follow; the chart (handoffs/s, log scale, against workers) goes to
# $CHART (default docs/compare-chart.png).
# Installs what is missing: python3-redis and gnuplot-nox (apt-get, as root),
# bench/peers/node_modules (npm ci, from package-lock.json).
# shellcheck disable=SC2015,SC2046,SC2086 # word lists and command lines are split on purpose
set -eu
usage() { echo "usage: $0 BUILD_DIR [ROUNDS] [SECONDS]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 3 ] || usage
BUILD=$1
ROUNDS=${2:-5}
SECS=${3:-3}
case "$ROUNDS" in '' | *[!0-9]* | 0) usage ;; esac
case "$SECS" in '' | *[!0-9.]*) usage ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
peers=$here/peers
BENCH=$BUILD/bench/dlock-bench
PY=/usr/bin/python3 # Debian's: the one that sees python3-redis
CHART=${CHART:-$root/docs/compare-chart.png}
WORKERS="1 2 4 8 16"
LIBS="dlock-push dlock-poll redis-py node-redlock redis-semaphore"
ULIBS="dlock redis-py node-redlock redis-semaphore"
RLIBS="dlock node-redlock${BASE:+ dlock-base}"
PARTS_DEFAULT="contended uncontended redlock3"
PARTS=${PARTS:-$PARTS_DEFAULT}
part() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
[ -x "$BENCH" ] || { echo "no $BENCH: build first" >&2; exit 2; }
[ -z "${BASE:-}" ] || [ -x "$BASE/bench/dlock-bench" ] || { echo "no $BASE/bench/dlock-bench" >&2; exit 2; }

# --- peers -------------------------------------------------------------------
missing=""
if part contended || part uncontended; then # redis-py runs in these
    [ -x "$PY" ] && "$PY" -c 'import redis' 2>/dev/null || missing="$missing python3-redis"
fi
if part contended; then # the chart
    command -v gnuplot >/dev/null 2>&1 || missing="$missing gnuplot-nox"
fi
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing$missing" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2
    else
        echo "missing Debian packages:$missing (run as root, or apt-get install them)" >&2
        exit 2
    fi
fi
command -v node >/dev/null 2>&1 || { echo "node (20+) and npm are needed" >&2; exit 2; }
if [ ! -d "$peers/node_modules" ]; then
    echo "installing the node peers (npm ci in $peers)" >&2
    (cd "$peers" && { npm ci --no-audit --no-fund >&2 || npm install --no-audit --no-fund >&2; })
fi
nodever() { node -p "require('$peers/node_modules/$1/package.json').version"; }
V_PY=$("$PY" -c 'import redis; print(redis.__version__)' 2>/dev/null || echo '(not used)')
V_REDLOCK=$(nodever redlock)
V_SEM=$(nodever redis-semaphore)
V_IOREDIS=$(nodever ioredis)

# --- run ---------------------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
raw=$(mktemp /tmp/dlock-compare-XXXXXX)
errlog=$raw.err
trap 'bench_cleanup; rm -f "$raw" "$errlog"' EXIT
start_redis P
SPID=${BENCH_PIDS##* }                               # the server's pid (lib.sh)
R3PIDS=""
if part redlock3; then # with P: the Redlock set
    start_redis P2; R3PIDS=${BENCH_PIDS##* }
    start_redis P3; R3PIDS="$SPID $R3PIDS ${BENCH_PIDS##* }"
fi
MASK=$(taskset -p $$ | sed 's/.*: //')               # our CPUs, the server's too
CPU=$(taskset -c -p $$ | sed 's/.*: //; s/[-,].*//') # the first of them

cmd() { # lib mode [workers]: the command line of one run
    case "$1" in
    dlock-push) echo "$BENCH --mode $2 --workers ${3:-1} --port $P --seconds $SECS --waiting push" ;;
    dlock-poll) echo "$BENCH --mode $2 --workers ${3:-1} --port $P --seconds $SECS --waiting poll" ;;
    dlock) echo "$BENCH --mode $2 --port $P --seconds $SECS" ;;
    redis-py) echo "$PY $peers/redis_py.py --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    node-redlock) echo "node $peers/redlock.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    redis-semaphore) echo "node $peers/semaphore.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    dlock-r3) echo "$BENCH --mode $2 --url redis://127.0.0.1:$P,127.0.0.1:$P2,127.0.0.1:$P3 --seconds $SECS" ;;
    dlock-base-r3) echo "$BASE/bench/dlock-bench --mode $2 --url redis://127.0.0.1:$P,127.0.0.1:$P2,127.0.0.1:$P3 --seconds $SECS" ;;
    node-redlock-r3) echo "node $peers/redlock.js --mode $2 --port $P --ports $P,$P2,$P3 --seconds $SECS" ;;
    esac
}
run() { # label workers lib mode
    line=$(timeout $((${SECS%.*} + 90)) ${PIN:-} $(cmd "$3" "$4" "$2") 2>>"$errlog" | grep '^RESULT ') ||
        { line="FAILED"; echo "$1 $2: failed: $(cmd "$3" "$4" "$2")" >&2; }
    echo "$1 $2 $line" >> "$raw"
}
rotate() { # n words...: the words rotated left by n
    n=$1; shift; set -- "$@"; k=$(( n % $# ))
    while [ "$k" -gt 0 ]; do x=$1; shift; set -- "$@" "$x"; k=$((k - 1)); done
    echo "$@"
}

t_start=$(date +%s)
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS ($(( $(date +%s) - t_start )) s so far)" >&2
    if part contended; then
        for w in $WORKERS; do
            for lib in $(rotate $((r - 1)) $LIBS); do run "$lib" "$w" "$lib" contended; done
        done
    fi
    if part uncontended; then
        for lib in $(rotate $((r - 1)) $ULIBS); do run "u-$lib" 1 "$lib" uncontended; done
        # The same with the client and the server on one CPU: on loopback the
        # pair is two round trips, and whether each is a context switch or a
        # wake-up across CPUs (several times slower on a VM) otherwise depends
        # on where the scheduler happens to put the client.
        taskset -a -p -c "$CPU" "$SPID" >/dev/null
        for lib in $(rotate $((r - 1)) $ULIBS); do PIN="taskset -c $CPU" run "p-$lib" 1 "$lib" uncontended; done
        taskset -a -p "$MASK" "$SPID" >/dev/null
    fi
    if part redlock3; then
        for lib in $(rotate $((r - 1)) $RLIBS); do run "r3-$lib" 1 "$lib-r3" uncontended; done
        for pid in $R3PIDS; do taskset -a -p -c "$CPU" "$pid" >/dev/null; done
        for lib in $(rotate $((r - 1)) $RLIBS); do PIN="taskset -c $CPU" run "q3-$lib" 1 "$lib-r3" uncontended; done
        for pid in $R3PIDS; do taskset -a -p "$MASK" "$pid" >/dev/null; done
    fi
done

# --- report ------------------------------------------------------------------
med() { grep "^$1 $2 RESULT " "$raw" | field "$3" | median; }
vmax() { grep "^$1 $2 RESULT " "$raw" | field "$3" | sort -g | tail -1; }
nok() { grep -c "^$1 $2 RESULT " "$raw" || true; }
f1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }

# as-scheduled-prefix pinned-prefix pinned-placement libs: a table of
# uncontended pairs, each library as scheduled and pinned.
pairs_table() {
    echo "| library | placement | pairs/s | p50 µs | p99 µs | runs |"
    echo "|---|---|---|---|---|---|"
    for u in "$1" "$2"; do
        [ "$u" = "$1" ] && where="as scheduled" || where=$3
        for lib in $4; do
            echo "| $lib | $where | $(f0 "$(med "$u-$lib" 1 pairs_per_s)") | $(med "$u-$lib" 1 p50_us)" \
                "| $(med "$u-$lib" 1 p99_us) | $(nok "$u-$lib" 1)/$ROUNDS |"
        done
    done
    echo
}

report() {
    echo "## dlock against its peers"
    echo
    pfx=""
    [ "$PARTS" = "$PARTS_DEFAULT" ] || pfx="PARTS='$PARTS' "
    [ -z "${BASE:-}" ] || pfx="${pfx}BASE=$BASE "
    echo "Command: \`${pfx}bench/compare.sh $BUILD $ROUNDS $SECS\` — medians of $ROUNDS interleaved rounds," \
        "$SECS s each, private redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
        "processes on 127.0.0.1 (one; three more for Redlock-3)."
    echo "Machine: $(nproc) CPU(s), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
        "Linux $(uname -r); dlock $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?')."
    echo "Peers: redis-py $V_PY (Debian python3-redis), node-redlock $V_REDLOCK and" \
        "redis-semaphore $V_SEM on ioredis $V_IOREDIS, node $(node --version); default blocking-acquire settings."
    echo
    if part contended; then
        echo "### Contended: W workers, one lock, GET/SET increment under it"
        echo
        echo "| workers | library | acq/s | handoffs/s | min share | wait p99 ms | violations (max) | gave up (median) | runs |"
        echo "|---|---|---|---|---|---|---|---|---|"
        for w in $WORKERS; do
            for lib in $LIBS; do
                n=$(nok "$lib" "$w")
                if [ "$n" = 0 ]; then
                    echo "| $w | $lib | failed | | | | | | 0/$ROUNDS |"
                    continue
                fi
                case "$lib" in dlock-*) g="–" ;; *) g=$(med "$lib" "$w" gave_up) ;; esac
                echo "| $w | $lib | $(f0 "$(med "$lib" "$w" acq_per_s)") | $(f1 "$(med "$lib" "$w" handoffs_per_s)")" \
                    "| $(med "$lib" "$w" min_share) | $(awk -v x="$(med "$lib" "$w" wait_p99_us)" 'BEGIN { printf "%.2f", x / 1000 }')" \
                    "| $(vmax "$lib" "$w" violations) | $g | $n/$ROUNDS |"
            done
        done
        echo
        echo "### Handoffs/s (medians) by worker count"
        echo
        printf '| library |'; for w in $WORKERS; do printf ' %s |' "$w"; done; echo
        printf '|---|'; for w in $WORKERS; do printf -- '---|'; done; echo
        for lib in $LIBS; do
            printf '| %s |' "$lib"
            for w in $WORKERS; do printf ' %s |' "$(f1 "$(med "$lib" "$w" handoffs_per_s)")"; done
            echo
        done
        echo
    fi
    if part uncontended; then
        echo "### Uncontended: one client, acquire + release pairs"
        echo
        pairs_table u p "client and server on CPU $CPU" "$ULIBS"
    fi
    if part redlock3; then
        echo "### Redlock-3: one client, acquire + release pairs over 3 servers"
        echo
        pairs_table r3 q3 "client and servers on CPU $CPU" "$RLIBS"
        echo "dlock with fencing on (its default); node-redlock has no fencing."
        echo
    fi
    echo "### Ratios (medians)"
    echo
    if part contended; then
        h8=$(med dlock-push 8 handoffs_per_s)
        a1=$(med dlock-push 1 acq_per_s)
        for lib in dlock-poll redis-py node-redlock redis-semaphore; do
            awk -v a="$h8" -v b="$(med "$lib" 8 handoffs_per_s)" -v l="$lib" 'BEGIN {
                if (b > 0) printf "- 8 workers, handoffs/s: dlock-push / %s = %.0f× (%s)\n", l, a / b,
                    (a / b >= 10 ? "target ≥ 10×: met" : "target ≥ 10×: MISSED");
                else printf "- 8 workers, handoffs/s: dlock-push %.1f / %s 0 (no handoffs at all)\n", a, l }'
        done
        awk -v a="$h8" -v b="$a1" 'BEGIN { if (b > 0)
            printf "- dlock-push 8-worker handoffs/s / its 1-worker acq/s (serial ceiling) = %.0f %%\n", 100 * a / b }'
    fi
    if part uncontended; then
        for u in u p; do
            [ $u = u ] && where="as scheduled" || where="one CPU"
            a=$(med "$u-dlock" 1 pairs_per_s)
            for lib in redis-py node-redlock redis-semaphore; do
                awk -v a="$a" -v b="$(med "$u-$lib" 1 pairs_per_s)" -v l="$lib" -v w="$where" 'BEGIN {
                    if (b > 0) printf "- uncontended pairs/s (%s): dlock / %s = %.2f×\n", w, l, a / b }'
            done
        done
    fi
    if part redlock3; then
        for u in r3 q3; do
            [ $u = r3 ] && where="as scheduled" || where="one CPU"
            for d in dlock ${BASE:+dlock-base}; do
                awk -v a="$(med $u-$d 1 pairs_per_s)" -v b="$(med $u-node-redlock 1 pairs_per_s)" -v d=$d -v w="$where" 'BEGIN {
                    if (b > 0) printf "- Redlock-3 uncontended pairs/s (%s): %s / node-redlock = %.2f× (target ≥ 0.9×: %s)\n",
                        w, d, a / b, (a / b >= 0.9 ? "met" : "MISSED") }'
            done
        done
    fi
}

if [ -n "${OUT:-}" ]; then report | tee "$OUT"; else report; fi

# --- chart -------------------------------------------------------------------
if part contended; then
dat=$raw.dat
{
    echo "# workers $LIBS"
    for w in $WORKERS; do
        printf '%s' "$w"
        for lib in $LIBS; do
            v=$(med "$lib" "$w" handoffs_per_s)
            awk -v v="$v" 'BEGIN { if (v > 0) printf " %s", v; else printf " NaN" }'
        done
        echo
    done
} > "$dat"
ceil=$(med dlock-push 1 acq_per_s)
mkdir -p "$(dirname "$CHART")"
gnuplot <<EOF 2>>"$errlog" || echo "gnuplot failed: see the chart step" >&2
set terminal pngcairo size 1000,560 font "DejaVu Sans,11"
set output "$CHART"
set title "Contended lock on one key: handoffs/s against worker processes\n(medians of $ROUNDS interleaved runs of $SECS s; one redis-server on loopback, $(nproc) CPUs)"
set xlabel "worker processes (1 worker: no handoffs by definition; a missing point: no handoff at all)"
set ylabel "handoffs/s (log scale)"
set logscale x 2
set logscale y 10
set xrange [1.7:19]
set xtics ("2" 2, "4" 4, "8" 8, "16" 16)
set yrange [0.5:*]
set format y "10^{%L}"
set grid ytics mytics xtics lc rgb "#dddddd"
set key outside right center box spacing 1.3
set style data linespoints
plot "$dat" using 1:2 title "dlock (push)" lw 3 pt 7 ps 1.3 lc rgb "#1b7837", \
     "" using 1:3 title "dlock seed (poll)" lw 2 pt 5 dt 2 lc rgb "#7fbf7b", \
     "" using 1:4 title "redis-py $V_PY" lw 2 pt 9 lc rgb "#2166ac", \
     "" using 1:5 title "node-redlock $V_REDLOCK" lw 2 pt 11 lc rgb "#b2182b", \
     "" using 1:6 title "redis-semaphore $V_SEM" lw 2 pt 13 lc rgb "#e08214", \
     $ceil title "dlock, 1 worker: acquisitions/s" with lines dt 3 lw 1.5 lc rgb "#555555"
EOF
rm -f "$dat"
[ -s "$CHART" ] && echo "chart: $CHART" >&2
fi

echo
echo "raw RESULT lines (label workers RESULT ...):"
cat "$raw"
if [ -s "$errlog" ]; then
    echo
    echo "stderr of the runs (last 40 lines):"
    tail -40 "$errlog"
fi
