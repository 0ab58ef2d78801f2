#!/bin/sh
# demo.sh - several `dlock run` workers take turns on one lock.
#
#   sh scripts/demo.sh [BUILD_DIR]      (default ./build; `make demo` runs it)
#
# Starts a private redis-server on a free 127.0.0.1 port in a temporary
# directory, runs WORKERS shell loops that each run ROUNDS critical sections
# under `dlock run --ttl 2000 demo-job`, kills one holder (its dlock process
# and its command) with SIGKILL midway so that its lease is not released and
# must expire, then prints who held the lock, checks that the fencing tokens
# rose strictly and that no two critical sections overlapped, and stops the
# server. Exits 0 on success, 1 if an overlap or a non-rising fence was seen,
# 2 on a set-up problem.
set -u

BUILD=${1:-./build}
DLOCK=$BUILD/cli/dlock
WORKERS=4
ROUNDS=3
TTL_MS=2000
HOLD=0.5           # seconds each critical section lasts
KILL_AT_START=5    # kill the holder of the 5th critical section

if [ ! -x "$DLOCK" ]; then
    echo "demo: $DLOCK not found; build first (make build)" >&2
    exit 2
fi
for tool in redis-server redis-cli awk date sort; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "demo: $tool not found (Debian: apt-get install redis-server)" >&2
        exit 2
    fi
done

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/dlock-demo.XXXXXX") || exit 2
SERVER_PID=
WORKER_PIDS=

cleanup() {
    for p in $WORKER_PIDS; do
        kill "$p" 2>/dev/null
    done
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

now() { date +%s.%N; }

# ---- a private redis-server on a free loopback port ------------------------
PORT=
attempt=0
while [ $attempt -lt 20 ]; do
    attempt=$((attempt + 1))
    port=$(awk -v s="$$$attempt" 'BEGIN { srand(s); print 20000 + int(rand() * 30000) }')
    if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
        continue # something answers there already
    fi
    redis-server --port "$port" --bind 127.0.0.1 --dir "$TMPD" --save "" \
        --appendonly no --daemonize no --logfile "$TMPD/redis.log" &
    SERVER_PID=$!
    i=0
    while [ $i -lt 50 ] && kill -0 "$SERVER_PID" 2>/dev/null; do
        # Answering, and it is our process (not one that grabbed the port).
        if redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null |
            grep -q "^process_id:$SERVER_PID"; then
            PORT=$port
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    [ -n "$PORT" ] && break
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
done
if [ -z "$PORT" ]; then
    echo "demo: could not start redis-server on a free port; log:" >&2
    tail -5 "$TMPD/redis.log" >&2 2>/dev/null
    exit 2
fi
DLOCK_URL=redis://127.0.0.1:$PORT
export DLOCK_URL DLOCK TMPD HOLD TTL_MS ROUNDS

echo "demo: redis-server pid $SERVER_PID on 127.0.0.1:$PORT (data in $TMPD)"
echo "demo: $WORKERS workers, $ROUNDS turns each:" \
    "dlock run --ttl $TTL_MS demo-job -- <critical section of ${HOLD}s>"

# ---- the workers ------------------------------------------------------------
# The critical section records its pid (the leader of its own process group,
# as dlock runs it) and dlock's pid, then start and end times with the fence.
CRIT='echo "$$ $PPID $1 $DLOCK_FENCE" > "$TMPD/holder.tmp" && mv "$TMPD/holder.tmp" "$TMPD/holder"
echo "start $1 $DLOCK_FENCE $(date +%s.%N)" >> "$TMPD/log"
sleep "$HOLD"
echo "end $1 $DLOCK_FENCE $(date +%s.%N)" >> "$TMPD/log"'
export CRIT

T0=$(now)
w=1
while [ $w -le $WORKERS ]; do
    sh -c '
        r=1
        while [ $r -le $ROUNDS ]; do
            "$DLOCK" run --ttl "$TTL_MS" --label "worker $1" demo-job -- sh -c "$CRIT" crit "$1"
            rc=$?
            [ $rc -ne 0 ] && echo "exit $1 $rc $(date +%s.%N)" >> "$TMPD/log"
            r=$((r + 1))
        done' worker "$w" 2> "$TMPD/worker$w.err" &
    WORKER_PIDS="$WORKER_PIDS $!"
    w=$((w + 1))
done

# ---- kill one holder midway -------------------------------------------------
deadline=$(($(date +%s) + 30))
killed=
while [ "$(date +%s)" -lt $deadline ]; do
    starts=$(grep -c '^start' "$TMPD/log" 2>/dev/null || true)
    if [ "${starts:-0}" -ge $KILL_AT_START ] && [ -f "$TMPD/holder" ]; then
        read -r cpid dpid kw kfence < "$TMPD/holder"
        if grep -q "^end $kw $kfence " "$TMPD/log"; then
            sleep 0.05 # that turn just ended; catch the next holder
            continue
        fi
        # dlock first (so it cannot release), then the command's group.
        kill -s KILL "$dpid" 2>/dev/null
        if ! kill -s KILL -- "-$cpid" 2>/dev/null; then
            echo "demo: could not kill process group $cpid" >&2
        fi
        echo "killed $kw $kfence $(now)" >> "$TMPD/log"
        killed=$kw
        echo "demo: worker $kw holds fence $kfence: SIGKILL to its dlock (pid $dpid)" \
            "and its command (process group $cpid); now the lease must expire by itself"
        break
    fi
    sleep 0.05
done
[ -z "$killed" ] && echo "demo: never saw a holder to kill" >&2

for p in $WORKER_PIDS; do
    wait "$p"
done
WORKER_PIDS=

echo
"$DLOCK" status demo-job
echo

# ---- summary ------------------------------------------------------------------
# Lines of $TMPD/log, sorted by time (4th field):
#   start W FENCE T | end W FENCE T | killed W FENCE T | exit W STATUS T
sort -k4 -g "$TMPD/log" > "$TMPD/sorted"
awk -v t0="$T0" -v ttl="$TTL_MS" -v hold="$HOLD" '
    function rel(t) { return t - t0 }
    BEGIN {
        overlap = 0; nonrising = 0; last_fence = 0; turns = 0
        printf "%5s  %-8s  %7s  %7s\n", "fence", "holder", "start", "end"
    }
    $1 == "start" {
        if (inside && !dead) {
            printf "OVERLAP: worker %s entered while worker %s held fence %s\n", $2, cur_w, cur_f
            overlap = 1
        }
        if ($3 + 0 <= last_fence) {
            printf "FENCE NOT RISING: %s after %s\n", $3, last_fence
            nonrising = 1
        }
        note = ""
        if (dead) {
            takeover = $4 - kill_t
            note = sprintf("<- took over %.2f s after the kill", takeover)
        }
        inside = 1; dead = 0; cur_w = $2; cur_f = $3; start_t = $4; last_fence = $3 + 0
        turns++; per[$2]++
        next
    }
    $1 == "end" {
        if (!inside || $3 != cur_f) {
            printf "OVERLAP: fence %s ended outside its turn\n", $3
            overlap = 1
        }
        printf "%5s  worker %-1s  %6.2fs  %6.2fs  %s\n", $3, $2, rel(start_t), rel($4), note
        inside = 0; note = ""
        next
    }
    $1 == "killed" {
        printf "%5s  worker %-1s  %6.2fs  %7s  killed (SIGKILL) at %.2fs while holding\n",
            $3, $2, rel(start_t), "-", rel($4)
        dead = 1; kill_t = $4; killed = 1
        next
    }
    END {
        printf "\nturns per worker:"
        for (w = 1; w in per; w++) printf "%s worker %d: %d", (w > 1 ? "," : ""), w, per[w]
        printf "\n"
        if (killed)
            printf "after the kill the lock stayed taken for %.2f s: the lease (ttl %.1f s, " \
                "kept alive every %.2f s) ran out, no one released it\n",
                takeover, ttl / 1000, ttl / 3000
        printf "fences strictly rising: %s; overlapping critical sections: %s\n",
            nonrising ? "NO" : "yes", overlap ? "SEEN" : "none"
        exit (overlap || nonrising || !killed)
    }' "$TMPD/sorted"
status=$?

# Unexpected dlock failures (the killed one exits 137).
if grep '^exit' "$TMPD/log" | grep -v "^exit ${killed:-x} 137 " | grep -q .; then
    echo "demo: some dlock runs failed:" >&2
    grep '^exit' "$TMPD/log" >&2
    cat "$TMPD"/worker*.err >&2
    status=1
fi

kill "$SERVER_PID" 2>/dev/null
wait "$SERVER_PID" 2>/dev/null
SERVER_PID=
if [ $status -eq 0 ]; then
    echo "demo: ok - one holder at a time, rising fences; the killed holder's lease" \
        "expired and the next worker took over"
else
    echo "demo: FAILED" >&2
fi
exit $status
