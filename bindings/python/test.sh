#!/bin/sh
# bindings/python/test.sh WORK_DIR [DLOCK_CLI] - the Python package's test,
# as `make test` runs it (ctest python_binding): a venv from Debian's
# /usr/bin/python3 (not whatever python3 is first on PATH), an offline
# `pip install` of this directory into it, then the unittest suite
# (tests/run.py) against redis-servers the tests start themselves.
#
# Needs the Debian packages scripts/install-deps.sh test installs:
# python3-dev (Python.h), python3-venv (venv + its pip), python3-setuptools
# and python3-wheel (the build backend, seen through
# --system-site-packages), libhiredis-dev, gcc, redis-server.
# Exits 77 (ctest: skipped) when the Python ones are missing.
#
# DLOCK_TEST_STEP=build stops after the install into WORK_DIR/venv, =test
# runs the suite on what is installed there (ctest: python_binding_build, a
# fixture that python_binding and bindings_turns require, installs it once
# for both); unset, both.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: test.sh WORK_DIR [DLOCK_CLI]}
cli=${2:-}
PY=${DLOCK_PYTHON:-/usr/bin/python3}
step=${DLOCK_TEST_STEP:-all}
case "$step" in build | test | all) ;; *) echo "DLOCK_TEST_STEP: build, test or all" >&2; exit 2 ;; esac

[ -x "$PY" ] || { echo "skipped: $PY not found"; exit 77; }
if ! "$PY" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
    echo "skipped: Python.h not found (install python3-dev)"; exit 77
fi
for m in ensurepip setuptools wheel; do
    "$PY" -c "import $m" 2>/dev/null || { echo "skipped: python module $m missing (install python3-venv python3-setuptools python3-wheel)"; exit 77; }
done

mkdir -p "$work"
venv=$work/venv
if [ "$step" != test ]; then
    [ -x "$venv/bin/python" ] || "$PY" -m venv --system-site-packages "$venv"
    # --no-build-isolation: build with Debian's setuptools instead of fetching
    # one; --no-index: never reach for the network. The build tree stays in
    # WORK_DIR (setup.py's DLOCK_PY_BUILD_DIR), out of the source tree.
    DLOCK_PY_BUILD_DIR=$work/build nice -n 10 "$venv/bin/python" -m pip install --quiet \
        --no-build-isolation --no-index --no-deps --disable-pip-version-check --force-reinstall \
        "$here"
fi
[ "$step" != build ] || exit 0
cd "$work" # import the installed package, not the source directory
DLOCK_CLI=$cli exec "$venv/bin/python" "$here/tests/run.py"
