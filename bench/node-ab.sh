#!/bin/bash
# bench/node-ab.sh OTHER_TREE [ROUNDS] [SECONDS]
# The Node binding before and after a change, next to the seed's design, on
# one CPU: this tree's bench/peers/dlock-node.js, OTHER_TREE's (a checkout
# of another commit whose bindings/node addon is built and whose
# bench/peers/node_modules is installed: copy this tree's), and
# bench/peers/seed.js, in turn (A B C A B C ...), uncontended, client and a
# private redis-server both on the first CPU of this shell. Prints each
# run's RESULT line, then the medians of pairs/s and p50 per variant.
set -eu
OTHER=${1:?usage: bench/node-ab.sh OTHER_TREE [ROUNDS] [SECONDS]}
ROUNDS=${2:-5}
SECS=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
trap bench_cleanup EXIT
for f in "$here/peers/dlock-node.js" "$OTHER/bench/peers/dlock-node.js"; do
    [ -f "$f" ] || { echo "no $f" >&2; exit 2; }
done
start_redis P
SPID=$(redis-cli -p "$P" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
CPU=$(taskset -c -p $$ | sed 's/.*: //; s/[-,].*//')
taskset -a -p -c "$CPU" "$SPID" >/dev/null
out=$(mktemp)
for r in $(seq 1 "$ROUNDS"); do
    for v in this other seed; do
        case $v in
        this) f=$here/peers/dlock-node.js ;;
        other) f=$OTHER/bench/peers/dlock-node.js ;;
        seed) f=$here/peers/seed.js ;;
        esac
        line=$(taskset -c "$CPU" node "$f" --mode uncontended --port "$P" --seconds "$SECS" 2>/dev/null |
            grep '^RESULT') || line="RESULT failed"
        echo "$v $line" | tee -a "$out"
    done
done
echo "medians over $ROUNDS rounds of ${SECS} s (variant pairs/s p50_us):"
med() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
for v in this other seed; do
    rows=$(grep "^$v " "$out" | sed -n 's/.*pairs_per_s=\([0-9.]*\).*p50_us=\([0-9.]*\).*/\1 \2/p')
    echo "$v $(echo "$rows" | cut -d' ' -f1 | med) $(echo "$rows" | cut -d' ' -f2 | med)"
done
rm -f "$out"
