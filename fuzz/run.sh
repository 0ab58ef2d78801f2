#!/bin/sh
# run.sh BUILD_DIR SECONDS - fuzz every built fuzz target for SECONDS each.
#
# Finds the fuzz_X executables under BUILD_DIR (configure with -DDLOCK_FUZZ=ON
# and clang), runs each on a fresh copy of fuzz/corpus/X/ (the seeds in the
# tree are never modified) with fuzz/fuzz_X.dict when it exists, and keeps
# any crashing input as BUILD_DIR/fuzz-artifacts/X-crash-... Prints one
# summary line per target. Exits 1 if any target crashed or failed to run,
# 2 on bad usage or when no target was found.
set -u

usage() {
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
}

[ $# -eq 2 ] || usage
build_dir=$1
seconds=$2
case $seconds in
'' | *[!0-9]*) usage ;;
esac
[ -d "$build_dir" ] || { echo "run.sh: no such build directory: $build_dir" >&2; exit 2; }

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
artifacts=$(cd "$build_dir" && pwd)/fuzz-artifacts
mkdir -p "$artifacts"
work=$(mktemp -d "${TMPDIR:-/tmp}/dlock-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

targets=$(find "$build_dir" -type f -name 'fuzz_*' -perm -u+x ! -name '*.*' | sort)
[ -n "$targets" ] || { echo "run.sh: no fuzz_* executables under $build_dir" >&2; exit 2; }

status=0
for bin in $targets; do
    name=$(basename "$bin")
    short=${name#fuzz_}
    corpus=$work/$short
    mkdir -p "$corpus"
    if [ -d "$fuzz_dir/corpus/$short" ]; then
        cp -R "$fuzz_dir/corpus/$short/." "$corpus/"
    fi
    set -- -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$short-"
    if [ -f "$fuzz_dir/$name.dict" ]; then
        set -- "$@" -dict="$fuzz_dir/$name.dict"
    fi
    log=$work/$name.log
    echo "== $name: ${seconds}s on a copy of corpus/$short"
    "$bin" "$@" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "   ok: ${execs:-?} execs, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) files"
    else
        status=1
        echo "   FAILED (exit $rc); log tail:"
        tail -n 40 "$log" | sed 's/^/   | /'
        echo "   crashing inputs (if any): $artifacts/$short-*"
    fi
done
exit $status
