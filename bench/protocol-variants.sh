#!/bin/bash
# bench/protocol-variants.sh BUILD_DIR
# What a new protocol (docs/BENCHMARKS.md, "What a new protocol would buy")
# would save the server per uncontended pair, priced before deciding
# against it: each variant is one Lua file that runs ACQUIRE's uncontended
# path (this build's script, checks and fence included) and then
# RELEASE's no-queue path, so every call meets a free lock; bench/lua-cost.sh
# counts the server's instructions per call. Variants:
#   today    the hash holder, HGET + ZCARD checks, RELEASE's HGET, DEL, ZCARD
#   exists   EXISTS KEYS[1] KEYS[3] for ACQUIRE's two checks
#   string   and the holder as a string value (SET ... PX: no HSET + PEXPIRE)
#   noflag   and no ZCARD in RELEASE (as if a "queued" flag rode in the value)
# The edits are made on this build's script text: if the scripts change,
# the script stops with "the script changed" rather than price something else.
set -eu
BUILD=${1:-build}
SCRIPTS=$BUILD/bench/dlock-scripts
here=$(dirname "$0")
[ -x "$SCRIPTS" ] || { echo "no $SCRIPTS: build first (make)" >&2; exit 2; }
dir=$(mktemp -d /tmp/dlock-variants-XXXXXX)
trap 'rm -rf "$dir"' EXIT
"$SCRIPTS" --source acquire > "$dir/acquire.lua"
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
a = open(f"{d}/acquire.lua").read().rstrip()
def need(cond):
    if not cond:
        sys.exit("protocol-variants.sh: the script changed; update the edits")
need(a.endswith("return f"))
body = a[: -len("return f")]
release = ("if redis.call('HGET', KEYS[1], 't') ~= ARGV[1] then return 0 end\n"
           "redis.call('DEL', KEYS[1])\n"
           "if redis.call('ZCARD', KEYS[3]) == 0 then return f end\nreturn 1\n")
checks = "local t = redis.call('HGET', KEYS[1], 't')\nlocal h\nif t or redis.call('ZCARD', KEYS[3]) > 0 then\n"
need(checks in body)
exists = body.replace(checks, "local t\nlocal h\nif redis.call('EXISTS', KEYS[1], KEYS[3]) > 0 then\n"
                      "t = redis.call('HGET', KEYS[1], 't')\n")
hold = "redis.call('HSET', KEYS[1], 't', tk, 'f', f, 'o', meta, 'a', at)\nredis.call('PEXPIRE', KEYS[1], ttl)\n"
need(hold in body)
string = exists.replace("t = redis.call('HGET', KEYS[1], 't')\n", "t = redis.call('GET', KEYS[1])\n")
string = string.replace(hold, "redis.call('SET', KEYS[1], tk .. f .. ' ' .. at .. ' ' .. meta, 'PX', ttl)\n")
srelease = ("local v = redis.call('GET', KEYS[1])\n"
            "if not v or string.sub(v, 1, 32) ~= ARGV[1] then return 0 end\n"
            "redis.call('DEL', KEYS[1])\n")
files = {
    "today": body + release,
    "exists": exists + release,
    "string": string + srelease + "if redis.call('ZCARD', KEYS[3]) == 0 then return f end\nreturn 1\n",
    "noflag": string + srelease + "return f\n",
}
for name, text in files.items():
    open(f"{d}/{name}.lua", "w").write(text)
PY
bash "$here/lua-cost.sh" "$dir/today.lua" "$dir/exists.lua" "$dir/string.lua" "$dir/noflag.lua"
