#!/bin/bash
# bench/profile.sh BUILD_DIR [SERVERS]: what one acquire+release pair costs
# the client, as counted (not timed), so the figures repeat on a noisy
# machine:
#   heap allocations per pair (valgrind's totals for N and 2N pairs),
#   instructions per pair (callgrind), system calls per pair (strace -c).
# SERVERS (default 1): with 3 or 5, the pairs run on a Redlock set of that
# many private servers.
set -eu
BUILD=${1:-build}
PAIRS=$BUILD/bench/dlock-pairs
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$PAIRS" ] || { echo "no $PAIRS: build first (make)" >&2; exit 2; }
for tool in valgrind strace; do
    command -v $tool >/dev/null || apt-get install -y -qq $tool >/dev/null
done
NSRV=${2:-1}
hosts=""
for _ in $(seq 1 "$NSRV"); do
    start_redis P
    hosts=${hosts:+$hosts,}127.0.0.1:$P
done
URL=redis://$hosts
echo "url: $URL"

allocs() { valgrind "$PAIRS" "$URL" "$1" 2>&1 | sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' | tr -d ,; }
a1=$(allocs 1000); a2=$(allocs 2000)
echo "heap allocations: $a1 for 1000 pairs, $a2 for 2000: $(awk -v a="$a1" -v b="$a2" 'BEGIN {printf "%.2f", (b - a) / 1000}') per pair"

cg=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$cg" "$PAIRS" "$URL" 20000 >/dev/null 2>&1
ir=$(callgrind_annotate "$cg" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "instructions: $ir for 20000 pairs: $(( ir / 20000 )) per pair (client process, all libraries)"
echo "top functions:"
callgrind_annotate "$cg" 2>/dev/null | grep -E '^ *[0-9,]+ \(' | head -8 | sed 's/^/  /'
rm -f "$cg"

st=$(mktemp)
strace -c -o "$st" "$PAIRS" "$URL" 2000
echo "system calls for 2000 pairs:"
awk '$NF ~ /^(sendto|write|poll|epoll_wait|read|recvfrom|getrandom)$/ {printf "  %-10s %s (%.2f per pair)\n", $NF, $4, $4/2000}' "$st"
rm -f "$st"
