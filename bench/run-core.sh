#!/bin/bash
# bench/run-core.sh BUILD_DIR [ROUNDS] [SECONDS] [BASELINE_BUILD_DIR]
# The core figures of docs/BENCHMARKS.md, measured in one run: the variants
# are interleaved (A B C A B C ...) on the same private servers and medians
# are reported, so the ratios hold on a noisy shared machine.
# With BASELINE_BUILD_DIR (e.g. a build of the parent commit), every variant
# that runs the library also runs with the baseline's dlock-bench next to
# its own (A A@base B B@base ... in odd rounds, A@base A ... in even ones,
# so that a drifting machine load favours neither), and the report adds the
# baseline's table and the new/baseline ratios: before and after in the
# same run. ONLY (environment) restricts the run to the variants it names,
# e.g. ONLY="push-1 push-8" for more rounds of the contended ones alone.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-5}
SECS=${3:-3}
BASE=${4:-}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }
[ -z "$BASE" ] || [ -x "$BASE/bench/dlock-bench" ] || { echo "no $BASE/bench/dlock-bench" >&2; exit 2; }

start_redis P1
for i in 1 2 3 4 5; do start_redis "R$i"; done
REDLOCK5="redis://127.0.0.1:$R1,127.0.0.1:$R2,127.0.0.1:$R3,127.0.0.1:$R4,127.0.0.1:$R5"
REDLOCK3="redis://127.0.0.1:$R1,127.0.0.1:$R2,127.0.0.1:$R3"
out=$(mktemp)

# label bench args...: one run, its RESULT line stored under label.
run1() {
    local label=$1 b=$2 line
    shift 2
    case " ${ONLY:-${label%@base}} " in *" ${label%@base} "*) ;; *) return 0 ;; esac
    line=$(${PIN:-} "$b" "$@" --seconds "$SECS" 2>/dev/null | grep '^RESULT') || line="RESULT failed"
    echo "$label $line" >> "$out"
}
# label args...: the variant with this build, then with the baseline's.
run() {
    local label=$1
    shift
    if [ -n "$BASE" ] && [ $((r % 2)) = 0 ]; then
        run1 "$label@base" "$BASE/bench/dlock-bench" "$@"
        run1 "$label" "$BENCH" "$@"
    else
        run1 "$label" "$BENCH" "$@"
        [ -z "$BASE" ] || run1 "$label@base" "$BASE/bench/dlock-bench" "$@"
    fi
}
# raw minimal scripts: the same program whatever the library does.
run_raw() { local label=$1; shift; run1 "$label" "$BENCH" "$@"; }

# The single server's PID, to pin it next to the client for the "pinned"
# variants: on a small VM a loopback round trip costs a context switch when
# client and server share a CPU, and a cross-CPU wake-up (about 3x slower)
# when they do not; pinning both to CPU 0 measures the client, not the
# scheduler.
P1_PID=$(redis-cli -p "$P1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
pin_server() { taskset -p -c "$1" "$P1_PID" >/dev/null; }

for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    pin_server 0
    PIN="taskset -c 0" run_raw raw-pinned     --mode raw --port "$P1"
    PIN="taskset -c 0" run raw-dlock-pinned   --mode raw --raw-script dlock --port "$P1"
    PIN="taskset -c 0" run uncontended-pinned --mode uncontended --port "$P1"
    pin_server 0-$(( $(nproc) - 1 ))
    run_raw raw      --mode raw --port "$P1"
    run raw-dlock    --mode raw --raw-script dlock --port "$P1"
    run uncontended  --mode uncontended --port "$P1"
    run single-nofence --mode uncontended --port "$P1" --no-fence
    run redlock3     --mode uncontended --url "$REDLOCK3"
    run redlock3-nofence --mode uncontended --url "$REDLOCK3" --no-fence
    run redlock5     --mode uncontended --url "$REDLOCK5"
    run redlock5-nofence --mode uncontended --url "$REDLOCK5" --no-fence
    run push-1       --mode contended --workers 1 --port "$P1"
    run push-8       --mode contended --workers 8 --port "$P1"
    run poll-8       --mode contended --workers 8 --port "$P1" --waiting poll
done

VARIANTS="raw raw-dlock uncontended raw-pinned raw-dlock-pinned uncontended-pinned single-nofence
    redlock3 redlock3-nofence redlock5 redlock5-nofence push-1 push-8 poll-8"
med() { grep "^$1 " "$out" | field "$2" | median; }
table() { # suffix ("" or "@base")
    printf '| variant | pairs/s | p50 µs | p99 µs | acq/s | handoffs/s | min share | wait p99 µs | cmds/acq | violations |\n'
    printf '|---|---|---|---|---|---|---|---|---|---|\n'
    for v in $VARIANTS; do
        case "$1:$v" in @base:raw | @base:raw-pinned) continue ;; esac
        w=$v$1
        grep -q "^$w " "$out" || continue
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$w" \
            "$(med "$w" pairs_per_s)" "$(med "$w" p50_us)" "$(med "$w" p99_us)" "$(med "$w" acq_per_s)" \
            "$(med "$w" handoffs_per_s)" "$(med "$w" min_share)" "$(med "$w" wait_p99_us)" \
            "$(med "$w" cmds_per_acq)" "$(grep "^$w " "$out" | field violations | sort -g | tail -1)"
    done
}
ratios() { # suffix
    s=$1
    awk -v rounds="$ROUNDS" -v tag="${s:-this build}" \
        -v c="$(med raw pairs_per_s)" -v cp="$(med raw-pinned pairs_per_s)" \
        -v u="$(med uncontended$s pairs_per_s)" -v cd="$(med raw-dlock$s pairs_per_s)" \
        -v up="$(med uncontended-pinned$s pairs_per_s)" -v cdp="$(med raw-dlock-pinned$s pairs_per_s)" \
        -v sp="$(med uncontended$s pairs_per_s)" -v s50="$(med uncontended$s p50_us)" \
        -v n50="$(med single-nofence$s p50_us)" \
        -v r3="$(med redlock3$s pairs_per_s)" -v r3_50="$(med redlock3$s p50_us)" \
        -v r3n50="$(med redlock3-nofence$s p50_us)" \
        -v r5="$(med redlock5$s pairs_per_s)" -v r5_50="$(med redlock5$s p50_us)" \
        -v r5n50="$(med redlock5-nofence$s p50_us)" \
        -v h8="$(med push-8$s handoffs_per_s)" -v a1="$(med push-1$s acq_per_s)" \
        -v p8="$(med poll-8$s handoffs_per_s)" \
        -v cp50="$(med raw-pinned p50_us)" -v up50="$(med uncontended-pinned$s p50_us)" \
        -v cdp50="$(med raw-dlock-pinned$s p50_us)" '
    function q(a, b) { return b > 0 ? a / b : 0 }
    BEGIN {
    printf "\nratios, %s (medians of %s rounds; 0: not measured):\n", tag, rounds;
    printf "- uncontended / raw minimal ceiling: %.1f %%\n", 100*q(u, c);
    printf "- uncontended / raw with dlock scripts: %.1f %%\n", 100*q(u, cd);
    printf "- pinned to one CPU: uncontended / raw minimal: %.1f %%, / raw dlock scripts: %.1f %%\n", 100*q(up, cp), 100*q(up, cdp);
    printf "- the same by p50 latency (raw p50 / uncontended p50): %.1f %%, %.1f %%\n", 100*q(cp50, up50), 100*q(cdp50, up50);
    printf "- Redlock-3: %.0f pairs/s (%.2fx single), p50 %.2fx single (fencing on), %.2fx (off)\n", r3, q(r3, sp), q(r3_50, s50), q(r3n50, n50);
    printf "- Redlock-5: %.0f pairs/s (%.2fx single), p50 %.2fx single (fencing on), %.2fx (off)\n", r5, q(r5, sp), q(r5_50, s50), q(r5n50, n50);
    printf "- push-8 handoffs/s / push-1 acq/s: %.1f %%\n", 100*q(h8, a1);
    printf "- push-8 handoffs/s / poll-8 handoffs/s: %.0fx\n", q(h8, p8);
}'
}
table ""
ratios ""
if [ -n "$BASE" ]; then
    echo
    echo "baseline ($BASE), same run:"
    echo
    table "@base"
    ratios "@base"
    echo
    echo "this build / baseline (medians; > 1: this build is higher):"
    for m in "uncontended-pinned pairs_per_s" "uncontended-pinned p50_us" "raw-dlock-pinned p50_us" \
        "uncontended pairs_per_s" "redlock3 pairs_per_s" \
        "redlock3 p50_us" "redlock5 pairs_per_s" "redlock5 p50_us" "push-8 handoffs_per_s" \
        "push-8 min_share" "push-8 wait_p99_us" "push-1 acq_per_s" "poll-8 acq_per_s"; do
        set -- $m
        awk -v v="$1" -v f="$2" -v a="$(med "$1" "$2")" -v b="$(med "$1@base" "$2")" \
            'BEGIN { if (b > 0) printf "- %s %s: %.3f (%s vs %s)\n", v, f, a / b, a, b }'
    done
fi
echo
echo "raw RESULT lines:"
cat "$out"
rm -f "$out"
