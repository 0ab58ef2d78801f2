# bench/lib.sh - shared by the bench scripts: private redis-servers on free
# loopback ports, stopped by PID on exit. Source it; needs redis-server and
# redis-cli.
BENCH_PIDS=""
BENCH_DIRS=""

bench_cleanup() {
    for p in $BENCH_PIDS; do kill "$p" 2>/dev/null; done
    for p in $BENCH_PIDS; do wait "$p" 2>/dev/null; done
    for d in $BENCH_DIRS; do rm -rf "$d"; done
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_callgrind_redis: a private redis-server under callgrind (for the
# counted benches: server-cost.sh, server-cost-kinds.sh, lua-cost.sh). Sets
# port, vpid (valgrind's pid: callgrind_control -z / -d it) and dir (its
# directory; callgrind's dumps are $dir/cg.out.*); both go on exit with
# bench_cleanup. Exits 1 if none starts.
start_callgrind_redis() {
    dir=$(mktemp -d /tmp/dlock-cost-XXXXXX)
    BENCH_DIRS="$BENCH_DIRS $dir"
    vpid=""
    for _try in $(seq 1 50); do
        port=$(( 20000 + ($$ * 13 + _try * 101) % 30000 ))
        port_free "$port" || continue
        valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" \
            redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
            --daemonize no --logfile "$dir/redis.log" >"$dir/valgrind.log" 2>&1 &
        vpid=$!
        for _w in $(seq 1 100); do
            redis-cli -p "$port" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        kill "$vpid" 2>/dev/null || true
        vpid=""
    done
    [ -n "$vpid" ] || { echo "cannot start redis-server under callgrind" >&2; exit 1; }
    BENCH_PIDS="$BENCH_PIDS $vpid"
}

# start_redis VAR [ARGS...]: start a private server (with extra
# redis-server ARGS), store its port in VAR.
start_redis() {
    _var=$1
    shift
    _dir=$(mktemp -d /tmp/dlock-bench-XXXXXX)
    BENCH_DIRS="$BENCH_DIRS $_dir"
    _p=$(( 20000 + ($$ * 7 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000 ))
    for _try in $(seq 1 200); do
        _p=$(( _p + 1 ))
        port_free "$_p" || continue
        redis-server --port "$_p" --bind 127.0.0.1 --dir "$_dir" --save '' --appendonly no \
            --daemonize no --logfile "$_dir/redis.log" "$@" &
        _pid=$!
        for _w in $(seq 1 50); do
            redis-cli -p "$_p" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        if redis-cli -p "$_p" ping >/dev/null 2>&1 && kill -0 "$_pid" 2>/dev/null; then
            BENCH_PIDS="$BENCH_PIDS $_pid"
            eval "$_var=$_p"
            return 0
        fi
        kill "$_pid" 2>/dev/null || true # it may have exited (port taken meanwhile)
    done
    echo "cannot start redis-server" >&2
    return 1
}

# free_port VAR: a loopback port nobody listens on now, in VAR.
free_port() {
    _p=$(( 20000 + ($$ * 13 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000 ))
    while ! port_free "$_p"; do _p=$(( _p + 1 )); done
    eval "$1=$_p"
}

# field NAME < RESULT-line: print the value of NAME=...
field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# median of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print 0; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
