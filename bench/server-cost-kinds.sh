#!/bin/bash
# bench/server-cost-kinds.sh BUILD_DIR [SECONDS] [BASELINE_BUILD_DIR]
# What one uncontended acquire+release pair of each kind of lock costs the
# SERVER, counted (not timed), next to the mutex's: the method of
# server-cost.sh (a private redis-server under callgrind; each kind's
# `dlock-bench --mode uncontended --kind K` runs pairs on it for SECONDS,
# default 3, and the server's instructions over that run are divided by the
# pairs it ran, its warm-up cut to one pair). Then the same counted as a
# difference, which leaves out the connection's set-up and the scripts'
# first load (those weigh on the first figure by how many pairs the run
# managed): the server's instructions and the Redis commands the scripts
# run inside (INFO commandstats) over 2500 pairs of dlock-pairs minus those
# over 500, per pair. Kinds (KINDS=... to choose): mutex, sem (3 permits),
# rw-shared, rw-exclusive, multi (2 names of one hash slot). With
# BASELINE_BUILD_DIR every kind runs again with that build ("(base)"), for
# before/after figures. Each ratio is the kind's figure over the mutex's of
# the same build and method. Each pair also does the server's network work (a read and a
# write per command), the same for every kind except multi-lock's extra keys.
set -eu
BUILD=${1:-build}
SECS=${2:-3}
BASE=${3:-}
here=$(dirname "$0")
. "$here/lib.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
for b in "$BUILD" $BASE; do
    [ -x "$b/bench/dlock-bench" ] && [ -x "$b/bench/dlock-pairs" ] ||
        { echo "no $b/bench/dlock-bench or dlock-pairs" >&2; exit 2; }
done

trap bench_cleanup EXIT
start_callgrind_redis

# build kind: "instructions_per_pair pairs" for one kind.
insns() {
    callgrind_control -z "$vpid" >/dev/null 2>&1
    n=$("$1/bench/dlock-bench" --mode uncontended --kind "$2" --port "$port" --seconds "$SECS" \
        --warmup 0 2>/dev/null | sed -n 's/.*: \([0-9]*\) pairs in .*/\1/p')
    rm -f "$dir"/cg.out.*
    callgrind_control -d "$vpid" >/dev/null 2>&1
    ir=$(sed -n 's/^summary: //p' "$dir"/cg.out.* | head -1)
    awk -v ir="$ir" -v n="${n:-0}" 'BEGIN { if (n > 0) printf "%.0f %d\n", ir / (n + 1), n; else print "0 0" }'
}
# build kind: "instructions_per_pair commands_per_pair" counted as a
# difference: the server's instructions (and the commands the scripts ran,
# INFO commandstats) over 2500 dlock-pairs pairs minus those over 500, per
# pair, so that connecting and loading the scripts cancel out.
one() { # build kind pairs: "instructions commands" over one dlock-pairs run
    callgrind_control -z "$vpid" >/dev/null 2>&1
    redis-cli -p "$port" config resetstat >/dev/null
    "$1/bench/dlock-pairs" "redis://127.0.0.1:$port" "$3" "$2"
    c=$(redis-cli -p "$port" info commandstats | tr -d '\r' | grep '^cmdstat_' |
        grep -v -E 'cmdstat_(evalsha|eval|script.*|config.*|info):' |
        sed -n 's/^cmdstat_[^:]*:calls=\([0-9]*\),.*/\1/p' | awk '{s += $1} END {print s + 0}')
    rm -f "$dir"/cg.out.*
    callgrind_control -d "$vpid" >/dev/null 2>&1
    echo "$(sed -n 's/^summary: //p' "$dir"/cg.out.* | head -1) $c"
}
diffed() {
    read -r i1 c1 < <(one "$1" "$2" 500)
    read -r i2 c2 < <(one "$1" "$2" 2500)
    awk -v a="$i1" -v b="$i2" -v c="$c1" -v d="$c2" 'BEGIN {printf "%.0f %.1f\n", (b - a) / 2000, (d - c) / 2000}'
}

KINDS=${KINDS:-mutex sem rw-shared rw-exclusive multi}
echo "| build | kind | pairs | server instructions per pair | ÷ mutex | counted as a difference (dlock-pairs) | ÷ mutex | Redis commands in the scripts per pair |"
echo "|---|---|---|---|---|---|---|---|"
for b in "$BUILD" $BASE; do
    label=$BUILD
    [ "$b" = "$BUILD" ] || label="$b (base)"
    mu=""; md=""
    for k in $KINDS; do
        read -r ir n < <(insns "$b" "$k")
        read -r d cmds < <(diffed "$b" "$k")
        [ -n "$mu" ] || mu=$ir
        [ -n "$md" ] || md=$d
        printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$k" "$n" "$ir" \
            "$(awk -v a="$ir" -v m="$mu" 'BEGIN { if (m > 0) printf "%.2f", a / m; else print "-" }')" \
            "$d" "$(awk -v a="$d" -v m="$md" 'BEGIN { if (m > 0) printf "%.2f", a / m; else print "-" }')" \
            "$cmds"
    done
done
