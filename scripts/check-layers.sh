#!/bin/sh
# check-layers.sh OBJ_ROOT LAYER... - the library's calls go one way.
#
# OBJ_ROOT holds one folder per layer (OBJ_ROOT/<layer>/*.o), layers named
# bottom to top. Fails (exit 1) when an object file references a symbol
# defined in a layer above its own, or when the files' references form a
# cycle (a file that, through others, calls back into itself). Reads only
# the symbol tables (nm); prints each offending reference.
set -u
root=$1
shift
[ -d "$root" ] || { echo "check-layers: no such folder: $root" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rank=0
for layer in "$@"; do
    for o in "$root/$layer"/*.o; do
        [ -f "$o" ] || continue
        f=$layer/$(basename "$o" .o)
        nm -g --defined-only "$o" | awk -v f="$f" -v r="$rank" 'NF == 3 {print $3, f, r}' >> "$tmp/defs"
        nm -u "$o" | awk -v f="$f" -v r="$rank" '{print $NF, f, r}' >> "$tmp/uses"
    done
    rank=$((rank + 1))
done
[ -s "$tmp/defs" ] || { echo "check-layers: no object files under $root" >&2; exit 2; }
touch "$tmp/uses"
# Join each use with its definition: "user user_rank sym definer def_rank".
awk 'NR == FNR {def[$1] = $2 " " $3; next}
     ($1 in def) {split(def[$1], d, " "); print $2, $3, $1, d[1], d[2]}' \
    "$tmp/defs" "$tmp/uses" > "$tmp/edges"
bad=0
if awk '$5 > $2 {printf "layer violation: %s calls %s, defined in %s (a layer above)\n", $1, $3, $4; n++}
        END {exit n > 0}' "$tmp/edges"; then :; else bad=1; fi
# Cycles between files: tsort reports a loop on its input of edges.
awk '$1 != $4 {print $4, $1}' "$tmp/edges" | sort -u > "$tmp/pairs"
if ! tsort "$tmp/pairs" > /dev/null 2> "$tmp/tsort"; then
    echo "file cycle:"
    sed 's/^tsort: /  /' "$tmp/tsort"
    bad=1
fi
if [ "$bad" = 0 ]; then
    echo "layers ok: $(wc -l < "$tmp/pairs") file dependencies, all downward, no cycles"
fi
exit $bad
