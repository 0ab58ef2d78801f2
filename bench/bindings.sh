#!/bin/bash
# bench/bindings.sh BUILD_DIR [ROUNDS] [SECONDS]
# dlock's Node and Python bindings against their peers (issue 13), side by
# side on one private redis-server:
#   node uncontended   one client, acquire + release pairs: dlock's Node
#                      binding, node-redlock v5, redis-semaphore's Mutex, the
#                      seed's own design (ioredis + its EVAL scripts), all
#                      timed by bench/peers/driver.js; and the C library
#                      (dlock-bench) in the same rounds, to measure what the
#                      binding adds per pair
#   python uncontended the Python binding (bench/peers/dlock_py.py) against
#                      redis-py's Lock (bench/peers/redis_py.py), and the C
#                      library
#   node contended     8 worker processes on one lock (driver.js): handoffs/s,
#                      least-served worker's share of the mean, wait p99, of
#                      the Node binding (waitForLock), node-redlock at its
#                      defaults, and dlock-bench's C workers
#   memory             bindings/node/bench/many-waits.js: 10,000 concurrent
#                      waitForLock calls in one process, RSS and threads
# Uncontended runs go twice: as scheduled, and with the client and the
# server pinned to one CPU (taskset), where a round trip is a context switch
# instead of a cross-CPU wake-up. For each uncontended run the server's own
# time per pair is read from INFO commandstats (reset before the run), so
# the client's share of a pair can be told from the server's.
# PARTS, ULIBS, PLIBS and CLIBS (environment) narrow a run, e.g.
# PARTS=pinned PLIBS= for the Node libraries on one CPU alone.
# Variants are interleaved (the order rotated each round) for ROUNDS rounds
# (default 5) of SECONDS each (default 3); medians are reported. Markdown goes
# to stdout (and to $OUT if set), then the raw RESULT lines.
# Installs what is missing: python3-redis (apt-get, as root),
# bench/peers/node_modules (npm ci); builds the Node addon and the Python
# venv with the scripts ctest uses (DLOCK_TEST_STEP=build of
# bindings/*/test.sh), so both measure the tree as it is.
# shellcheck disable=SC2046,SC2086 # word lists and command lines are split on purpose
set -eu
usage() { echo "usage: $0 BUILD_DIR [ROUNDS] [SECONDS]" >&2; exit 2; }
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
BUILD=$(cd "$1" && pwd)
ROUNDS=${2:-5}
SECS=${3:-3}
case "$ROUNDS" in '' | *[!0-9]* | 0) usage ;; esac
case "$SECS" in '' | *[!0-9.]*) usage ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
peers=$here/peers
BENCH=$BUILD/bench/dlock-bench
CLI=$BUILD/cli/dlock
PY=/usr/bin/python3 # Debian's: the one that sees python3-redis
VPY=$BUILD/python/venv/bin/python
NODEPKG=$root/bindings/node
ULIBS=${ULIBS:-dlock-node seed node-redlock redis-semaphore dlock-c}
PLIBS=${PLIBS-dlock-py redis-py}
CLIBS=${CLIBS:-dlock-node node-redlock dlock-c}
# PARTS (environment): which of "contended uncontended pinned memory" run
# (default all; the report's tables of the others stay empty).
PARTS=${PARTS:-contended uncontended pinned memory}
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }
for f in "$BENCH" "$CLI"; do [ -x "$f" ] || { echo "no $f: build first" >&2; exit 2; }; done

# --- what the runs need ------------------------------------------------------
if ! "$PY" -c 'import redis' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing python3-redis" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-redis >&2
    else
        echo "missing Debian package: python3-redis (run as root, or apt-get install it)" >&2
        exit 2
    fi
fi
for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "node (18.17+) and npm are needed" >&2; exit 2; }
done
if [ ! -d "$peers/node_modules" ]; then
    echo "installing the node peers (npm ci in $peers)" >&2
    (cd "$peers" && { npm ci --no-audit --no-fund >&2 || npm install --no-audit --no-fund >&2; })
fi
echo "building the Node addon and the Python package (bindings/*/test.sh)" >&2
DLOCK_TEST_STEP=build sh "$NODEPKG/test.sh" "$NODEPKG" "$CLI" >&2
DLOCK_TEST_STEP=build DLOCK_PYTHON=$PY sh "$root/bindings/python/test.sh" "$BUILD/python" "$CLI" >&2
nodever() { node -p "require('$peers/node_modules/$1/package.json').version"; }
V_PY=$("$PY" -c 'import redis; print(redis.__version__)')
V_REDLOCK=$(nodever redlock)
V_SEM=$(nodever redis-semaphore)
V_IOREDIS=$(nodever ioredis)

# --- run ---------------------------------------------------------------------
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
raw=$(mktemp /tmp/dlock-bindings-XXXXXX)
errlog=$raw.err
trap 'bench_cleanup; rm -f "$raw" "$errlog"' EXIT
start_redis P
SPID=${BENCH_PIDS##* }                               # the server's pid (lib.sh)
MASK=$(taskset -p $$ | sed 's/.*: //')               # our CPUs, the server's too
CPU=$(taskset -c -p $$ | sed 's/.*: //; s/[-,].*//') # the first of them
URL=redis://127.0.0.1:$P

cmd() { # lib mode [workers]: the command line of one run
    case "$1" in
    dlock-c) echo "$BENCH --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    dlock-node) echo "node $peers/dlock-node.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    seed) echo "node $peers/seed.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    node-redlock) echo "node $peers/redlock.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    redis-semaphore) echo "node $peers/semaphore.js --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    dlock-py) echo "$VPY $peers/dlock_py.py --port $P --seconds $SECS" ;;
    redis-py) echo "$PY $peers/redis_py.py --mode $2 --workers ${3:-1} --port $P --seconds $SECS" ;;
    esac
}
# The server's time per pair (µs) from INFO commandstats since the last
# reset: the scripts' time includes the commands they call, which are
# counted again on their own lines, so only what the client sent counts:
# EVALSHA (dlock's and node-redlock's acquire and release; the release of
# redis-semaphore and redis-py), EVAL (the seed's two scripts), SET
# (the acquire of redis-semaphore and redis-py). Pairs: EVAL/EVALSHA calls
# divided by how many each pair sends.
server_us() { # lib
    case "$1" in
    seed) cmds="eval" per=2 ;;
    redis-semaphore | redis-py) cmds="evalsha set" per=1 ;;
    *) cmds="evalsha" per=2 ;;
    esac
    redis-cli -p "$P" info commandstats | tr -d '\r' | awk -F'[:,=]' -v cmds="$cmds" -v per="$per" '
        BEGIN { n = split(cmds, c, " "); for (i = 1; i <= n; i++) want["cmdstat_" c[i]] = 1 }
        ($1 in want) { usec += $5; if ($1 != "cmdstat_set") calls += $3 }
        END { if (calls > 0) printf "%.1f", usec / (calls / per); else printf "0" }'
}
run() { # label workers lib mode
    [ "$4" = uncontended ] && redis-cli -p "$P" config resetstat >/dev/null
    line=$(timeout $((${SECS%.*} + 90)) ${PIN:-} $(cmd "$3" "$4" "$2") 2>>"$errlog" | grep '^RESULT ') ||
        { line="FAILED"; echo "$1 $2: failed: $(cmd "$3" "$4" "$2")" >&2; }
    [ "$4" = uncontended ] && [ "$line" != FAILED ] && line="$line server_us=$(server_us "$3")"
    echo "$1 $2 $line" >> "$raw"
}
# many-waits.js prints two lines; they become one RESULT line.
memory() {
    out=$(timeout 300 node --expose-gc "$NODEPKG/bench/many-waits.js" "$URL" 10000 100 2>>"$errlog") ||
        { echo "many-waits failed" >&2; return 0; }
    echo "$out" >&2
    echo "$out" | awk '
        /waits pending/ { match($0, /RSS [0-9.]+ -> [0-9.]+ MB/); split(substr($0, RSTART, RLENGTH), r, " ")
                          match($0, /threads [0-9]+ -> [0-9]+/); split(substr($0, RSTART, RLENGTH), t, " ")
                          rss0 = r[2]; rss1 = r[4]; th0 = t[2]; th1 = t[4] }
        /all [0-9]+ granted/ { match($0, /in [0-9]+ ms/); split(substr($0, RSTART, RLENGTH), m, " "); ms = m[2]
                               done = $2 }
        END { printf "mem 1 RESULT rss0_mb=%s rss1_mb=%s threads0=%s threads1=%s granted=%s ms=%s\n",
                     rss0, rss1, th0, th1, done, ms }' >> "$raw"
}
rotate() { # n words...: the words rotated left by n
    n=$1; shift; set -- "$@"; k=$(( n % $# ))
    while [ "$k" -gt 0 ]; do x=$1; shift; set -- "$@" "$x"; k=$((k - 1)); done
    echo "$@"
}

t_start=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS ($(( $(date +%s) - t_start )) s so far)" >&2
    if has contended; then
        for lib in $(rotate $((r - 1)) $CLIBS); do run "c-$lib" 8 "$lib" contended; done
    fi
    if has uncontended; then
        for lib in $(rotate $((r - 1)) $ULIBS $PLIBS); do run "u-$lib" 1 "$lib" uncontended; done
    fi
    if has pinned; then
        taskset -a -p -c "$CPU" "$SPID" >/dev/null
        for lib in $(rotate $((r - 1)) $ULIBS $PLIBS); do PIN="taskset -c $CPU" run "p-$lib" 1 "$lib" uncontended; done
        taskset -a -p "$MASK" "$SPID" >/dev/null
    fi
    if has memory; then memory; fi
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------
med() { grep "^$1 $2 RESULT " "$raw" | field "$3" | median; }
range() { grep "^$1 $2 RESULT " "$raw" | field "$3" | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{ print ($1 == $2 ? $1 : $1 "–" $2) }'; }
range0() { grep "^$1 $2 RESULT " "$raw" | field "$3" | awk '{ printf "%.0f\n", $1 }' | sort -g | sed -n '1p;$p' | paste -sd' ' | awk '{ print ($1 == $2 ? $1 : $1 "–" $2) }'; }
nok() { grep -c "^$1 $2 RESULT " "$raw" || true; }
f0() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
f1() { awk -v x="$1" 'BEGIN { printf "%.1f", x }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "–" }'; }
us_pair() { awk -v x="$1" 'BEGIN { if (x > 0) printf "%.1f", 1e6 / x; else printf "–" }'; }

utable() { # libs...
    echo "| library | placement | pairs/s | (range) | p50 µs | p99 µs | µs/pair | server µs/pair | client µs/pair | runs |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for u in u p; do
        [ $u = u ] && where="as scheduled" || where="one CPU"
        for lib in "$@"; do
            ps=$(med "$u-$lib" 1 pairs_per_s); sv=$(med "$u-$lib" 1 server_us)
            echo "| $lib | $where | $(f0 "$ps") | $(range0 "$u-$lib" 1 pairs_per_s)" \
                "| $(med "$u-$lib" 1 p50_us) | $(med "$u-$lib" 1 p99_us)" \
                "| $(us_pair "$ps") | $sv | $(awk -v p="$ps" -v s="$sv" 'BEGIN { if (p > 0) printf "%.1f", 1e6 / p - s }')" \
                "| $(nok "$u-$lib" 1)/$ROUNDS |"
        done
    done
}

report() {
    echo "## Bindings against their peers (issue 13)"
    echo
    echo "Command: \`bench/bindings.sh $BUILD $ROUNDS $SECS\` — medians of $ROUNDS interleaved rounds," \
        "$SECS s per run, one private redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')" \
        "on 127.0.0.1."
    echo "Machine: $(nproc) CPU(s), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
        "Linux $(uname -r), node $(node --version), $("$VPY" --version 2>&1);" \
        "dlock $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?');" \
        "load average $LOAD0 at the start, $LOAD1 at the end ($(( $(date +%s) - t_start )) s)."
    echo "Peers: node-redlock $V_REDLOCK and redis-semaphore $V_SEM on ioredis $V_IOREDIS," \
        "the seed's design on ioredis $V_IOREDIS (bench/peers/seed.js), redis-py $V_PY (Debian python3-redis);" \
        "default settings (each peer's file in bench/peers/ lists them)."
    echo
    echo "### Node, uncontended: one client, acquire + release pairs"
    echo
    utable $ULIBS
    echo
    echo "µs/pair = 1e6 / pairs/s; server µs/pair from INFO commandstats; client µs/pair = the rest" \
        "(the client's work, the kernel's and the wake-ups). dlock-c is dlock-bench (the C library's" \
        "blocking dlock_try_acquire + dlock_release), the others run under bench/peers/driver.js."
    echo
    echo "### Python, uncontended"
    echo
    utable $PLIBS dlock-c
    echo
    echo "### Node, contended: 8 worker processes, one lock, GET/SET increment under it"
    echo
    echo "| library | acq/s | handoffs/s | min share | wait p99 ms | violations (max) | gave up (median) | runs |"
    echo "|---|---|---|---|---|---|---|---|"
    for lib in $CLIBS; do
        [ "$lib" = dlock-c ] && g="–" || g=$(med "c-$lib" 8 gave_up)
        echo "| $lib | $(f0 "$(med "c-$lib" 8 acq_per_s)") | $(f1 "$(med "c-$lib" 8 handoffs_per_s)")" \
            "| $(med "c-$lib" 8 min_share) | $(awk -v x="$(med "c-$lib" 8 wait_p99_us)" 'BEGIN { printf "%.2f", x / 1000 }')" \
            "| $(grep "^c-$lib 8 RESULT " "$raw" | field violations | sort -g | tail -1) | $g | $(nok "c-$lib" 8)/$ROUNDS |"
    done
    echo
    echo "### Node, memory: 10,000 concurrent waitForLock calls in one process"
    echo
    echo "| RSS before MB | RSS while waiting MB | added per wait KB | threads before → while waiting | granted | all handed over in ms | runs |"
    echo "|---|---|---|---|---|---|---|"
    r0=$(med mem 1 rss0_mb); r1=$(med mem 1 rss1_mb)
    echo "| $r0 | $r1 ($(range mem 1 rss1_mb)) | $(awk -v a="$r0" -v b="$r1" 'BEGIN { printf "%.1f", (b - a) * 1048576 / 10000 / 1024 }')" \
        "| $(range mem 1 threads0) → $(range mem 1 threads1) | $(range mem 1 granted) | $(med mem 1 ms) ($(range mem 1 ms)) | $(nok mem 1)/$ROUNDS |"
    echo
    echo "### Ratios (medians) and the targets of issue 13"
    echo
    for u in u p; do
        [ $u = u ] && where="as scheduled" || where="one CPU"
        a=$(med "$u-dlock-node" 1 pairs_per_s)
        best=""; bv=0
        for lib in seed node-redlock redis-semaphore; do
            b=$(med "$u-$lib" 1 pairs_per_s)
            echo "- Node uncontended ($where): dlock-node / $lib = $(ratio "$a" "$b")×"
            if awk -v b="$b" -v v="$bv" 'BEGIN { exit !(b > v) }'; then best=$lib; bv=$b; fi
        done
        awk -v a="$a" -v b="$bv" -v l="$best" -v w="$where" 'BEGIN {
            printf "- target \"first among the Node libraries\" (%s): %s\n", w,
                (a > b ? "met" : "MISSED (first: " l ")") }'
        c=$(med "$u-dlock-c" 1 pairs_per_s)
        awk -v a="$a" -v c="$c" -v w="$where" 'BEGIN { if (a > 0 && c > 0)
            printf "- binding overhead (%s): dlock-node / dlock-c = %.2f×, %.1f µs per pair on top of the C library\n",
                w, a / c, 1e6 / a - 1e6 / c }'
        p=$(med "$u-dlock-py" 1 pairs_per_s); q=$(med "$u-redis-py" 1 pairs_per_s)
        awk -v p="$p" -v q="$q" -v c="$c" -v w="$where" 'BEGIN { if (p > 0 && q > 0)
            printf "- Python uncontended (%s): dlock-py / redis-py = %.2f× (target: ahead: %s); dlock-py / dlock-c = %.2f×, %.1f µs per pair on top of the C library\n",
                w, p / q, (p > q ? "met" : "MISSED"), p / c, 1e6 / p - 1e6 / c }'
    done
    h=$(med c-dlock-node 8 handoffs_per_s); hr=$(med c-node-redlock 8 handoffs_per_s)
    awk -v a="$h" -v b="$hr" 'BEGIN { if (b > 0)
        printf "- Node contended, 8 workers: handoffs/s dlock-node / node-redlock = %.0f× (target ≥ 10×: %s)\n",
            a / b, (a / b >= 10 ? "met" : "MISSED");
        else printf "- Node contended, 8 workers: node-redlock made no handoff (dlock-node %.1f/s)\n", a }'
    echo "- fairness, 8 workers: min share dlock-node $(med c-dlock-node 8 min_share), dlock-c" \
        "$(med c-dlock-c 8 min_share), node-redlock $(med c-node-redlock 8 min_share)"
}

if [ -n "${OUT:-}" ]; then report | tee "$OUT"; else report; fi
echo
echo "raw RESULT lines (label workers RESULT ...):"
cat "$raw"
if [ -s "$errlog" ]; then
    echo
    echo "stderr of the runs (last 40 lines):"
    tail -40 "$errlog"
fi
