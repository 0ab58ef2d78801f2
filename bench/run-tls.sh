#!/bin/bash
# bench/run-tls.sh BUILD_DIR [ROUNDS] [SECONDS]
# TLS next to plain TCP, in one interleaved run (docs/BENCHMARKS.md, "TLS"):
# uncontended dlock_try_acquire + dlock_release pairs against the SAME
# redis-server over its plain port and over its TLS port, unpinned and with
# client and server pinned to CPU 0, and a Redlock set of three servers
# (plain and TLS). Certificates come from tests/tls/mkcerts.sh (EC P-256,
# TLS 1.3 with Redis 7's defaults). Medians are reported.
set -eu
BUILD=${1:-build}
ROUNDS=${2:-5}
SECS=${3:-3}
BENCH=$BUILD/bench/dlock-bench
here=$(dirname "$0")
. "$here/lib.sh"
trap bench_cleanup EXIT
[ -x "$BENCH" ] || { echo "no $BENCH: build first (make)" >&2; exit 2; }

certs=$(mktemp -d /tmp/dlock-bench-certs-XXXXXX)
BENCH_DIRS="$BENCH_DIRS $certs"
sh "$here/../tests/tls/mkcerts.sh" "$certs" >/dev/null
tls_args() { # TLS_PORT
    echo --tls-port "$1" --tls-cert-file "$certs/server.crt" --tls-key-file "$certs/server.key" \
        --tls-ca-cert-file "$certs/ca.crt" --tls-auth-clients no
}
for i in 1 2 3; do
    free_port "T$i"
    eval "tp=\$T$i"
    # shellcheck disable=SC2046
    start_redis "P$i" $(tls_args "$tp")
done
CA="tls_ca=$certs/ca.crt"
PLAIN3="redis://127.0.0.1:$P1,127.0.0.1:$P2,127.0.0.1:$P3"
TLS3="rediss://127.0.0.1:$T1,127.0.0.1:$T2,127.0.0.1:$T3?$CA"
out=$(mktemp)

errs=$(mktemp)
# Runs the bench (under the given prefix command) and records its RESULT
# line, or "RESULT failed" and the first lines of its stderr.
bench_line() { # label, prefix..., --, args...
    label=$1; shift
    pre=()
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    line=$("${pre[@]}" "$BENCH" "$@" --seconds "$SECS" 2>"$errs.1" | grep '^RESULT') ||
        { line="RESULT failed"; sed "s/^/$label: /" "$errs.1" | head -3 >> "$errs"; }
    echo "$label $line" >> "$out"
}
run() { bench_line "$1" env -- "${@:2}"; }
P1_PID=$(redis-cli -p "$P1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p')
pinned() { # label, args... (client and server 1 on CPU 0, as in run-core.sh)
    taskset -p -c 0 "$P1_PID" >/dev/null
    bench_line "$1" taskset -c 0 -- "${@:2}"
    taskset -p -c 0-$(( $(nproc) - 1 )) "$P1_PID" >/dev/null
}

for r in $(seq 1 "$ROUNDS"); do
    echo "round $r/$ROUNDS" >&2
    run plain          --mode uncontended --port "$P1"
    run tls            --mode uncontended --url "rediss://127.0.0.1:$T1?$CA"
    pinned plain-pinned --mode uncontended --port "$P1"
    pinned tls-pinned   --mode uncontended --url "rediss://127.0.0.1:$T1?$CA"
    # Server 1 is in the Redlock set too: another lock name, so that a pair
    # cut short there cannot leave a lease the single-server runs meet.
    run redlock3       --mode uncontended --url "$PLAIN3" --name bench-redlock
    run redlock3-tls   --mode uncontended --url "$TLS3" --name bench-redlock
done

med() { grep "^$1 " "$out" | field "$2" | median; }
printf '| variant | pairs/s | p50 µs | p99 µs |\n|---|---|---|---|\n'
for v in plain tls plain-pinned tls-pinned redlock3 redlock3-tls; do
    printf '| %s | %s | %s | %s |\n' "$v" "$(med $v pairs_per_s)" "$(med $v p50_us)" "$(med $v p99_us)"
done
awk -v rounds="$ROUNDS" -v p="$(med plain pairs_per_s)" -v t="$(med tls pairs_per_s)" \
    -v pp="$(med plain-pinned pairs_per_s)" -v tp="$(med tls-pinned pairs_per_s)" \
    -v rp="$(med redlock3 pairs_per_s)" -v rt="$(med redlock3-tls pairs_per_s)" \
    -v p50="$(med plain p50_us)" -v t50="$(med tls p50_us)" 'BEGIN {
    printf "\nratios (medians of %s rounds):\n", rounds;
    printf "- TLS / plain pairs/s, one server: %.1f %% (p50 %+.1f us)\n", 100*t/p, t50-p50;
    printf "- pinned to one CPU: %.1f %%\n", 100*tp/pp;
    printf "- Redlock-3: %.1f %%\n", 100*rt/rp;
}'
if [ -s "$errs" ]; then echo; echo "failed runs:"; cat "$errs"; fi
echo
echo "raw RESULT lines:"
cat "$out"
rm -f "$out" "$errs" "$errs.1"
