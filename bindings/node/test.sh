#!/bin/sh
# ctest's node_binding: build and test bindings/node.
#   sh bindings/node/test.sh PKG_DIR DLOCK_CLI
# 1. node and npm must exist (exit 77, skipped, with a message if not).
# 2. npm ci (from the registry, exact versions of package-lock.json) when
#    node_modules is missing or older than the lock file; --ignore-scripts
#    because step 3 builds the addon itself.
# 3. node scripts/build.js: node-gyp rebuild against local Node headers
#    (no download), niced: the machines running this have two CPUs.
# 4. npm test, with DLOCK_CLI for the interop test.
# DLOCK_TEST_STEP=build does steps 1-3 only, =test steps 1 and 4 only
# (ctest: node_binding_build, a fixture that node_binding and bindings_turns
# require, builds the addon once for both); unset, all four.
set -eu
pkg=$1
cli=$2
step=${DLOCK_TEST_STEP:-all}
case "$step" in build | test | all) ;; *) echo "DLOCK_TEST_STEP: build, test or all" >&2; exit 2 ;; esac
for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIPPED: $tool not found; sh scripts/install-deps.sh test installs nodejs and npm"
        exit 77
    fi
done
cd "$pkg"
echo "node $(node --version), npm $(npm --version)"
build() {
    installed=node_modules/.package-lock.json
    if [ ! -f "$installed" ] || [ package-lock.json -nt "$installed" ]; then
        echo "installing npm dependencies (npm ci)"
        npm ci --ignore-scripts --no-audit --no-fund
    fi
    JOBS=${JOBS:-2} nice -n 10 node scripts/build.js >build.log 2>&1 || {
        tail -40 build.log
        echo "addon build failed (log: $pkg/build.log)"
        exit 1
    }
    grep -E "warning:|error:|^dlock:" build.log || true # the nodedir used, and any warning
}
[ "$step" = test ] || build
[ "$step" = build ] || DLOCK_CLI=$cli npm test
