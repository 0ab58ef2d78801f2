#!/bin/bash
# bench/run-core.sh BUILD_DIR [ROUNDS] [SECONDS]
# The core figures of docs/BENCHMARKS.md, measured in one run: the variants
# are interleaved (A B C A B C ...) on the same private servers and medians
# are reported, so the ratios hold on a noisy shared machine.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-5}
SECS=${3:-3}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }

start_redis P1
for i in 1 2 3 4 5; do start_redis "R$i"; done
REDLOCK5="redis://127.0.0.1:$R1,127.0.0.1:$R2,127.0.0.1:$R3,127.0.0.1:$R4,127.0.0.1:$R5"
out=$(mktemp)

run() { # label, args...
    label=$1; shift
    line=$("$BENCH" "$@" --seconds "$SECS" 2>/dev/null | grep '^RESULT') || line="RESULT failed"
    echo "$label $line" >> "$out"
}

# The single server's PID, to pin it next to the client for the "pinned"
# variants: on a small VM a loopback round trip costs a context switch when
# client and server share a CPU, and a cross-CPU wake-up (about 3x slower)
# when they do not; pinning both to CPU 0 measures the client, not the
# scheduler.
P1_PID=$(redis-cli -p "$P1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
pinned() { # label, args...
    label=$1; shift
    taskset -p -c 0 "$P1_PID" >/dev/null
    line=$(taskset -c 0 "$BENCH" "$@" --seconds "$SECS" 2>/dev/null | grep '^RESULT') || line="RESULT failed"
    taskset -p -c 0-$(( $(nproc) - 1 )) "$P1_PID" >/dev/null
    echo "$label $line" >> "$out"
}

for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    pinned raw-pinned          --mode raw --port "$P1"
    pinned raw-dlock-pinned    --mode raw --raw-script dlock --port "$P1"
    pinned uncontended-pinned  --mode uncontended --port "$P1"
    run raw          --mode raw --port "$P1"
    run raw-dlock    --mode raw --raw-script dlock --port "$P1"
    run uncontended  --mode uncontended --port "$P1"
    run single-nofence --mode uncontended --port "$P1" --no-fence
    run redlock5     --mode uncontended --url "$REDLOCK5"
    run redlock5-nofence --mode uncontended --url "$REDLOCK5" --no-fence
    run push-1       --mode contended --workers 1 --port "$P1"
    run push-8       --mode contended --workers 8 --port "$P1"
    run poll-8       --mode contended --workers 8 --port "$P1" --waiting poll
done

med() { grep "^$1 " "$out" | field "$2" | median; }
printf '| variant | pairs/s | p50 µs | p99 µs | acq/s | handoffs/s | min share | wait p99 µs | cmds/acq | violations |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
for v in raw raw-dlock uncontended raw-pinned raw-dlock-pinned uncontended-pinned single-nofence \
    redlock5 redlock5-nofence push-1 push-8 poll-8; do
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$v" \
        "$(med $v pairs_per_s)" "$(med $v p50_us)" "$(med $v p99_us)" "$(med $v acq_per_s)" \
        "$(med $v handoffs_per_s)" "$(med $v min_share)" "$(med $v wait_p99_us)" \
        "$(med $v cmds_per_acq)" "$(grep "^$v " "$out" | field violations | sort -g | tail -1)"
done
u=$(med uncontended pairs_per_s); c=$(med raw pairs_per_s); cd_=$(med raw-dlock pairs_per_s)
up=$(med uncontended-pinned pairs_per_s); cp=$(med raw-pinned pairs_per_s)
cdp=$(med raw-dlock-pinned pairs_per_s)
s50=$(med uncontended p50_us); r50=$(med redlock5 p50_us)
n50=$(med single-nofence p50_us); rn50=$(med redlock5-nofence p50_us)
h8=$(med push-8 handoffs_per_s); a1=$(med push-1 acq_per_s); p8=$(med poll-8 handoffs_per_s)
awk -v rounds="$ROUNDS" -v up="$up" -v cp="$cp" -v cdp="$cdp" -v u="$u" -v c="$c" -v cd="$cd_" -v s="$s50" -v r="$r50" -v n="$n50" -v rn="$rn50" \
    -v h8="$h8" -v a1="$a1" -v p8="$p8" 'BEGIN {
    printf "\nratios (medians of %s rounds):\n", rounds;
    printf "- uncontended / raw minimal ceiling: %.1f %%\n", 100*u/c;
    printf "- uncontended / raw with dlock scripts: %.1f %%\n", 100*u/cd;
    printf "- pinned to one CPU: uncontended / raw minimal: %.1f %%, / raw dlock scripts: %.1f %%\n", 100*up/cp, 100*up/cdp;
    printf "- Redlock-5 p50 / single p50 (fencing on): %.2fx\n", r/s;
    printf "- Redlock-5 p50 / single p50 (fencing off): %.2fx\n", rn/n;
    printf "- push-8 handoffs/s / push-1 acq/s: %.1f %%\n", 100*h8/a1;
    printf "- push-8 handoffs/s / poll-8 handoffs/s: %.0fx\n", (p8 > 0 ? h8/p8 : 0);
}'
echo
echo "raw RESULT lines:"
cat "$out"
rm -f "$out"
