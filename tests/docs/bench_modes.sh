#!/bin/sh
# bench_modes.sh - dlock-bench's help, its dispatch and the README agree on
# the modes.
#   sh bench_modes.sh PATH_TO_DLOCK_BENCH SOURCE_DIR
# The modes the program dispatches on are read from its table in
# bench/options.c (lines `{M_..., "name", ...}`); each must
#   - be accepted by --mode (a missing server is then the complaint, not the mode),
#   - appear in the usage line (`--mode a|b|c`) and as an entry under "Modes:",
#   - appear in the README's `dlock-bench --mode a|b|c` line,
# and those two lists must name no mode the program lacks.
set -u
bench=$1 src=$2
fail=0
bad() { echo "bench_modes: $*" >&2; fail=1; }

modes=$(sed -n 's/^ *{M_[A-Z_]*, *"\([a-z]*\)".*/\1/p' "$src/bench/options.c")
[ -n "$modes" ] || { echo "bench_modes: no mode table found in bench/options.c" >&2; exit 1; }
help=$("$bench" --help) || bad "--help failed"
usage_list=$(printf '%s\n' "$help" | sed -n 's/^usage: dlock-bench --mode \([a-z|]*\).*/\1/p' | tr '|' ' ')
modes_section=$(printf '%s\n' "$help" | sed -n '/^Modes:/,/^$/p' | sed -n 's/^  \([a-z]\{1,\}\) .*/\1/p')
readme_list=$(sed -n 's/.*`dlock-bench --mode \([a-z|]*\).*/\1/p' "$src/README.md" | head -1 | tr '|' ' ')
[ -n "$readme_list" ] || bad "README.md has no \`dlock-bench --mode a|b|...\` line"

has() { # word list
    for w in $2; do [ "$w" = "$1" ] && return 0; done
    return 1
}
for m in $modes; do
    err=$("$bench" --mode "$m" 2>&1 >/dev/null)
    case $err in *"--mode: expected"*) bad "--mode $m is refused: $err" ;; esac
    has "$m" "$usage_list" || bad "mode $m missing from the usage line: --mode $usage_list"
    has "$m" "$modes_section" || bad "mode $m has no entry under Modes: in --help"
    has "$m" "$readme_list" || bad "mode $m missing from README's dlock-bench line: $readme_list"
done
for m in $usage_list $modes_section $readme_list; do
    has "$m" "$modes" || bad "mode $m is documented but not in the program's table"
done
[ "$fail" = 0 ] && echo "bench_modes: ok ($(echo $modes))"
exit $fail
