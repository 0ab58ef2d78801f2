#!/bin/sh
# selftest.sh CC CHECKER - the layer check can fail: a call upward and a
# cycle between two files of one layer, each in a throwaway tree, must be
# refused; a clean tree must pass.
set -u
cc=$1 check=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/up/low" "$d/up/high" "$d/cyc/low" "$d/ok/low" "$d/ok/high"
obj() { printf '%s\n' "$2" > "$d/src.c" && "$cc" -c -o "$1" "$d/src.c" || exit 2; }
obj "$d/up/low/a.o" 'int up(void); int down(void) { return up(); }'
obj "$d/up/high/b.o" 'int up(void) { return 1; }'
obj "$d/cyc/low/x.o" 'int y(int); int x(int n) { return n ? y(n - 1) : 0; }'
obj "$d/cyc/low/y.o" 'int x(int); int y(int n) { return n ? x(n - 1) : 0; }'
obj "$d/ok/low/a.o" 'int down(void) { return 1; }'
obj "$d/ok/high/b.o" 'int down(void); int up(void) { return down(); }'
fail=0
if sh "$check" "$d/up" low high; then echo "selftest: an upward call was not refused"; fail=1; fi
if sh "$check" "$d/cyc" low; then echo "selftest: a cycle was not refused"; fail=1; fi
if ! sh "$check" "$d/ok" low high; then echo "selftest: a clean tree was refused"; fail=1; fi
[ "$fail" = 0 ] && echo "selftest: the layer check refuses an upward call and a cycle"
exit $fail
