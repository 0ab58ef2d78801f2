#!/bin/bash
# bench/lua-cost.sh FILE.lua...
# What a piece of Lua costs the SERVER, counted (not timed): a private
# redis-server runs under callgrind; each file is loaded, then called N
# times (default 3000) with EVALSHA by redis-benchmark (one connection, one
# call at a time), with the KEYS and ARGV an uncontended ACQUIRE gets (4
# keys, 7 arguments; ARGS in the environment replaces them, e.g.
# ARGS="1 k tok 30000" for 1 key and 2 arguments). Prints, per file, its
# first reply and the server's instructions per call. The difference
# between two files is what their difference costs: compare a script with
# the same script cut short, or with "return 1" (the fixed cost of an
# EVALSHA and its reply). The data is flushed before each file; every call
# after the first runs on what the first left.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 FILE.lua..." >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is needed" >&2; exit 2; }
N=${N:-3000}
ARGS=${ARGS:-"4 d{n} d{n}:fence d{n}:q d{n}:qi 0123456789abcdef0123456789abcdef 30000 host:1234:abcdef 1 0 3602000 1764480000000"}
here=$(dirname "$0")
. "$here/lib.sh"

trap bench_cleanup EXIT
start_callgrind_redis

# shellcheck disable=SC2086 # ARGS is a word list
for f in "$@"; do
    sha=$(redis-cli -p "$port" -x script load <"$f")
    redis-cli -p "$port" flushall >/dev/null
    callgrind_control -z "$vpid" >/dev/null 2>&1
    redis-benchmark -p "$port" -c 1 -n "$N" EVALSHA "$sha" $ARGS >/dev/null 2>&1
    rm -f "$dir"/cg.out.*
    callgrind_control -d "$vpid" >/dev/null 2>&1
    ir=$(sed -n 's/^summary: //p' "$dir"/cg.out.* | head -1)
    first=$(redis-cli -p "$port" flushall >/dev/null && redis-cli -p "$port" evalsha "$sha" $ARGS | head -1)
    printf '%s\t%s\t%d\n' "$f" "$first" $((ir / N))
done
