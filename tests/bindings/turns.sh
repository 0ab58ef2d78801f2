#!/bin/sh
# ctest's bindings_turns: the C library, the dlock tool, the Node binding
# and the Python binding take turns on one lock (tests/bindings/turns.py).
#   sh tests/bindings/turns.sh TURNS_C DLOCK_CLI NODE_PKG_DIR PY_WORK_DIR [turns.py options]
# Under ctest the fixtures node_binding_build and python_binding_build have
# built the addon in NODE_PKG_DIR and installed the Python package into
# PY_WORK_DIR/venv. Run by hand, whichever is missing is built here with the
# same scripts (DLOCK_TEST_STEP=build of bindings/*/test.sh). Exit 77
# (skipped) without node/npm or Debian's python3 and its build packages.
set -eu
[ $# -ge 4 ] || { echo "usage: $0 TURNS_C DLOCK_CLI NODE_PKG_DIR PY_WORK_DIR [OPTIONS]" >&2; exit 2; }
turns_c=$1
cli=$2
pkg=$3
work=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=${DLOCK_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || { echo "SKIPPED: $PY not found"; exit 77; }
for tool in node npm; do
    command -v "$tool" >/dev/null 2>&1 || { echo "SKIPPED: $tool not found"; exit 77; }
done

venv_py=$work/venv/bin/python
if ! [ -x "$venv_py" ] || ! (cd / && "$venv_py" -c 'import dlock') 2>/dev/null; then
    echo "the Python package is not installed in $work/venv: installing it"
    DLOCK_TEST_STEP=build sh "$root/bindings/python/test.sh" "$work" "$cli"
fi
if ! node -e 'require(process.argv[1]); require(process.argv[1] + "/node_modules/ioredis")' \
        "$pkg" 2>/dev/null; then
    echo "the Node addon is not built in $pkg: building it"
    DLOCK_TEST_STEP=build sh "$root/bindings/node/test.sh" "$pkg" "$cli"
fi
exec "$PY" "$here/turns.py" --c "$turns_c" --cli "$cli" --node-pkg "$pkg" --python "$venv_py" "$@"
