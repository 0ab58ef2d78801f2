#!/usr/bin/python3
"""bench/peers/redis_py.py - redis-py's Lock under the dlock-bench workloads.

  /usr/bin/python3 redis_py.py --mode contended|uncontended --port P
                   [--workers W] [--seconds D] [--warmup S] [--ttl MS] [--name KEY]

Peer settings (the library's defaults, except the lease):
  redis.Redis(host='127.0.0.1', port=P)   one client (one connection) per worker
  r.lock(name, timeout=ttl/1000)           lease = dlock-bench's default 10 s; the
                                           default timeout=None (no lease) is not a lock
                                           that survives a crashed holder
  lock.acquire()                           blocking=True, sleep=0.1 s, blocking_timeout=None
                                           (polls SET NX PX every 100 ms, never gives up)
  lock.release()                           EVALSHA compare-and-delete

Workload (the same as dlock-bench):
  contended    W forked workers, one lock, non-atomic GET/SET increment of a
               counter under it, release, repeat for D seconds from a common
               start; acquisition timestamps (CLOCK_MONOTONIC) of all workers
               are merged to count handoffs (acquisitions by a different worker
               than the previous one); violations = critical sections - counter.
  uncontended  one client, acquire + release pairs on a free lock, after S
               seconds of warm-up; pairs/s and p50/p99 pair latency.
Uses Debian's python3-redis (run with /usr/bin/python3). Last line: RESULT ...
in dlock-bench's format, plus gave_up= (acquires that returned without the lock).
"""
import argparse
import json
import os
import sys
import time

import redis

HOST = "127.0.0.1"


def now_ns():
    return time.monotonic_ns()


def sleep_until(t_ns):
    while True:
        d = t_ns - now_ns()
        if d <= 0:
            return
        time.sleep(d / 1e9)


def quantile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))
    return float(sorted_vals[i])


def critical_section(r, key):
    v = r.get(key)
    r.set(key, int(v or 0) + 1)


def worker(o, ready_w, go_r, out_w):
    r = redis.Redis(host=HOST, port=o.port)
    ttl_s = o.ttl / 1000.0
    key = "bench-peer:{%s}:counter" % o.name
    # Warm-up: connect and load the release script.
    lk = r.lock(o.name, timeout=ttl_s)
    lk.acquire()
    lk.release()
    os.write(ready_w, b"R")
    os.close(ready_w)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(go_r, 64)
        if not chunk:
            os._exit(1)
        buf += chunk
    start, end = (int(x) for x in buf.split())
    sleep_until(start)
    res = {"log": [], "waits": [], "acq_window": 0, "acq_total": 0, "cs_ok": 0,
           "gave_up": 0, "errors": 0}
    t = now_ns()
    while t < end:
        lk = r.lock(o.name, timeout=ttl_s)
        t0 = t
        if not lk.acquire():
            res["gave_up"] += 1
            t = now_ns()
            continue
        t1 = now_ns()
        try:
            critical_section(r, key)
            res["cs_ok"] += 1
        except redis.RedisError:
            res["errors"] += 1
        try:
            lk.release()
        except redis.RedisError:
            res["errors"] += 1
        res["acq_total"] += 1
        if t1 < end:
            res["acq_window"] += 1
        res["log"].append(t1)
        res["waits"].append(t1 - t0)
        t = now_ns()
    data = json.dumps(res).encode()
    while data:
        n = os.write(out_w, data)
        data = data[n:]
    os._exit(0)


def contended(o):
    W = o.workers
    r = redis.Redis(host=HOST, port=o.port)
    key = "bench-peer:{%s}:counter" % o.name
    r.delete(key)
    ready_r, ready_w = os.pipe()
    kids = []  # (pid, go_w, out_r)
    for i in range(W):
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(ready_r)
                os.close(go_w)
                os.close(out_r)
                worker(o, ready_w, go_r, out_w)
            finally:
                os._exit(1)
        os.close(go_r)
        os.close(out_w)
        kids.append((pid, go_w, out_r))
    os.close(ready_w)
    got = 0
    while got < W:
        b = os.read(ready_r, 64)
        if not b:
            sys.exit("redis_py: a worker failed during set-up")
        got += len(b)
    start = now_ns() + 20_000_000
    end = start + int(o.seconds * 1e9)
    for _, go_w, _ in kids:
        os.write(go_w, b"%d %d\n" % (start, end))
        os.close(go_w)
    results = []
    for pid, _, out_r in kids:
        chunks = []
        while True:
            c = os.read(out_r, 1 << 16)
            if not c:
                break
            chunks.append(c)
        os.close(out_r)
        _, st = os.waitpid(pid, 0)
        if st != 0 or not chunks:
            sys.exit("redis_py: worker %d failed" % pid)
        results.append(json.loads(b"".join(chunks)))
    actual = int(r.get(key) or 0)

    merged = sorted((t, wid) for wid, res in enumerate(results) for t in res["log"])
    handoffs = sum(1 for i in range(1, len(merged))
                   if merged[i][1] != merged[i - 1][1] and start <= merged[i][0] < end)
    waits = sorted(w for res in results for w in res["waits"])
    secs = (end - start) / 1e9
    acq_window = sum(res["acq_window"] for res in results)
    shares = [res["acq_window"] for res in results]
    mean = acq_window / W
    cs_ok = sum(res["cs_ok"] for res in results)
    gave_up = sum(res["gave_up"] for res in results)
    errors = sum(res["errors"] for res in results)
    print("redis-py %s contended: %d worker(s), %.1f s, shares %s, gave up %d, errors %d"
          % (redis.__version__, W, secs, shares, gave_up, errors))
    print("RESULT mode=contended pairs_per_s=0 p50_us=0 p99_us=0 acq_per_s=%.1f "
          "handoffs_per_s=%.1f min_share=%.3f wait_p99_us=%.1f cmds_per_acq=-1 "
          "violations=%d workers=%d waiting=redis-py gave_up=%d errors=%d"
          % (acq_window / secs, handoffs / secs, (min(shares) / mean) if mean else 0,
             quantile(waits, 0.99) / 1000.0, cs_ok - actual, W, gave_up, errors))


def uncontended(o):
    r = redis.Redis(host=HOST, port=o.port)
    ttl_s = o.ttl / 1000.0
    r.delete(o.name)
    lat = []
    t = now_ns()
    warm_end = t + int(o.warmup * 1e9)
    end = warm_end + int(o.seconds * 1e9)
    while t < end:
        t0 = t
        lk = r.lock(o.name, timeout=ttl_s)
        lk.acquire()
        lk.release()
        t = now_ns()
        if t0 >= warm_end:
            lat.append(t - t0)
    lat.sort()
    secs = sum(lat) / 1e9
    print("redis-py %s uncontended: %d pairs" % (redis.__version__, len(lat)))
    print("RESULT mode=uncontended pairs_per_s=%.1f p50_us=%.1f p99_us=%.1f acq_per_s=0 "
          "handoffs_per_s=0 min_share=0 wait_p99_us=0 cmds_per_acq=-1 violations=0 "
          "workers=1 waiting=redis-py gave_up=0 errors=0"
          % (len(lat) / secs if secs else 0, quantile(lat, 0.5) / 1000.0,
             quantile(lat, 0.99) / 1000.0))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", choices=["contended", "uncontended"], required=True)
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--ttl", type=int, default=10000)
    p.add_argument("--name", default="bench-peer-redis-py")
    o = p.parse_args()
    if o.workers < 1 or o.seconds <= 0:
        p.error("--workers >= 1 and --seconds > 0")
    contended(o) if o.mode == "contended" else uncontended(o)


if __name__ == "__main__":
    main()
