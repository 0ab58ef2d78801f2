#!/bin/bash
# bench/sentinel-watch.sh BUILD_DIR [ROUNDS] [SECONDS]
# What the sentinel watch (+switch-master, docs/FAILOVER.md) costs an
# uncontended Sentinel client: a private master (pinned to CPU 0), its
# replica and one sentinel (CPU 1), then ROUNDS interleaved runs of
# dlock-bench --mode uncontended on CPU 0 with the URL's default
# (sentinel_watch=on) and with sentinel_watch=off; prints each run and
# the medians (docs/BENCHMARKS.md, "The sentinel watch's cost").
set -eu
BUILD=${1:-build}
ROUNDS=${2:-7}
SECS=${3:-2}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }

start_redis M
start_redis R --replicaof 127.0.0.1 "$M"
free_port S
sdir=$(mktemp -d /tmp/dlock-bench-XXXXXX)
BENCH_DIRS="$BENCH_DIRS $sdir"
printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 1\n' \
    "$S" "$sdir" "$M" > "$sdir/sentinel.conf"
redis-server "$sdir/sentinel.conf" --sentinel --daemonize no --logfile "$sdir/s.log" &
BENCH_PIDS="$BENCH_PIDS $!"
for _ in $(seq 1 50); do
    redis-cli -p "$S" sentinel get-master-addr-by-name mymaster 2>/dev/null | grep -q "$M" && break
    sleep 0.1
done
pid_of() { redis-cli -p "$1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p'; }
taskset -p -c 0 "$(pid_of "$M")" >/dev/null
taskset -p -c 1 "$(pid_of "$R")" >/dev/null
taskset -p -c 1 "$(pid_of "$S")" >/dev/null

out=$(mktemp)
URL="redis-sentinel://127.0.0.1:$S/mymaster"
for r in $(seq 1 "$ROUNDS"); do
    for v in on off; do
        u=$URL
        [ "$v" = off ] && u="$URL?sentinel_watch=off"
        line=$(taskset -c 0 "$BENCH" --mode uncontended --url "$u" --seconds "$SECS" 2>/dev/null |
               grep '^RESULT') || line="RESULT failed"
        echo "round $r $v $(echo "$line" | field pairs_per_s) pairs/s"
        echo "$v $(echo "$line" | field pairs_per_s)" >> "$out"
    done
done
median() { grep "^$1 " "$out" | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
on=$(median on)
off=$(median off)
echo "median pairs/s: sentinel_watch=on $on, off $off, on/off $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')"
rm -f "$out"
