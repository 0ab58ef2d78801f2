#!/bin/sh
# docs_readme_c: every ```c block of README.md is a whole program: compile it
# against the built library and run it with DLOCK_URL pointing at a private
# redis-server on a free loopback port (stopped by its PID at the end).
# Usage: readme_c.sh README SOURCE_DIR LIB_DIR
set -eu
readme=$1 src=$2 lib=$3
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
awk -v dir="$tmp" '/^```c$/ {n++; f=sprintf("%s/ex%d.c", dir, n); on=1; next}
    /^```/ {on=0} on {print > f}' "$readme"
ls "$tmp"/ex*.c >/dev/null 2>&1 || { echo "no C example in $readme"; exit 1; }
# A port below the kernel's ephemeral range (which starts at 32768 or
# above): an outgoing connection of a test running alongside can never
# take it before the server binds it.
port=$(python3 -c 'import random, socket
for _ in range(500):
    p = random.randrange(10000, 32000)
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
    print(p)
    break')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    --logfile "$tmp/redis.log" &
pid=$!
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export DLOCK_URL="redis://127.0.0.1:$port"
for f in "$tmp"/ex*.c; do
    cc -std=c11 -Wall -Wextra -Werror -I"$src/include" "$f" -L"$lib" -ldlock \
        -Wl,-rpath,"$lib" -o "${f%.c}"
    echo "== $(basename "$f")"
    timeout 20 "${f%.c}"
done
echo "readme C examples: ok"
