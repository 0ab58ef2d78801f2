#!/bin/sh
# Install the Debian packages dlock needs, if missing.
#   sh scripts/install-deps.sh          build: make, make install
#   sh scripts/install-deps.sh demo     build + redis-server: make demo
#   sh scripts/install-deps.sh test     build + what make test needs
# Build (also enough for plain cmake):
#   libhiredis-dev   the Redis protocol (hiredis: formatting and reply parsing)
#   libssl-dev       TLS (rediss://) with OpenSSL 3: Debian's hiredis 0.14 has none
#   cmake make gcc pkg-config   the build
#   redis-server     only for make demo and the tests (a private server each)
# Test only:
#   redis-tools      redis-cli, to create a Redis Cluster in the tests
#   clang libclang-rt-14-dev    libFuzzer targets and a second compiler
#   faketime         clock-shift fault tests
#   jq               the man page's --json example (run by tests/docs)
#   libuv1-dev libevent-dev   the event-loop adapter tests (tests/engine)
#   openssl          the tool that makes the TLS tests' certificates
#   python3-dev      Python.h: the Python package is a C extension (bindings/python)
#   python3-venv     the venv its test installs it into (Debian's python refuses
#                    pip outside one), with pip
#   python3-setuptools python3-wheel   its build backend, used offline
#                    (pip --no-build-isolation); no pytest: the tests use unittest
#   nodejs npm       the Node.js binding's test (bindings/node): npm installs
#                    its npm dependencies and runs its tests; Debian's npm
#                    pulls in node-gyp and libnode-dev, whose headers in
#                    /usr/include/node let the addon build offline. Only when
#                    node or npm is missing: a node already installed (e.g.
#                    NodeSource's, which ships npm and the headers itself) is
#                    kept, since Debian's npm would conflict with it.
#   g++              node-gyp's build of the addon (C++; gyp needs python3)
# As root it runs apt-get; otherwise it prints the line to run.
set -eu
want="libhiredis-dev libssl-dev cmake make gcc pkg-config"
case "${1:-build}" in
build) ;;
demo) want="$want redis-server" ;;
test)
    want="$want redis-server redis-tools clang libclang-rt-14-dev faketime jq libuv1-dev libevent-dev openssl"
    want="$want python3-dev python3-venv python3-setuptools python3-wheel g++"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        want="$want nodejs npm"
    fi
    ;;
*) echo "usage: install-deps.sh [build|demo|test]" >&2; exit 2 ;;
esac
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "not Debian: install the equivalents of: $want (see README, Install)" >&2
    exit 0
fi
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "dlock needs these Debian packages:$missing" >&2
    echo "run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
# Keep package scripts from starting a system redis-server on port 6379.
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
exit 0
