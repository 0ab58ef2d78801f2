#!/bin/sh
# symbols.sh ARCHIVE SHARED - the installed libdlock.a defines no global
# symbol outside the dlock_ / DLOCK namespace (its internal functions were
# made local), and exports the same symbols as libdlock.so.
set -u
ar=$1 so=$2
fail=0
pub=$(mktemp) dyn=$(mktemp)
trap 'rm -f "$pub" "$dyn"' EXIT
# Defined globals: nm -g --defined-only lists "ADDR TYPE NAME" (and a
# "file.o:" header per member).
nm -g --defined-only "$ar" | awk 'NF == 3 {print $3}' | sort -u >"$pub"
[ -s "$pub" ] || { echo "symbols: no defined symbol in $ar"; exit 1; }
bad=$(grep -v -E '^(dlock_|DLOCK)' "$pub")
if [ -n "$bad" ]; then
    echo "symbols: $ar defines global symbols outside dlock_*:"
    echo "$bad" | sed 's/^/  /'
    fail=1
fi
nm -D --defined-only "$so" | awk 'NF == 3 {print $3}' | grep -E '^(dlock_|DLOCK)' | sort -u >"$dyn"
if ! cmp -s "$pub" "$dyn"; then
    echo "symbols: libdlock.a and libdlock.so export different dlock_* symbols:"
    diff "$pub" "$dyn" | sed 's/^/  /'
    fail=1
fi
[ $fail = 0 ] && echo "symbols: $(wc -l <"$pub") global symbols, all dlock_*, as libdlock.so"
exit $fail
