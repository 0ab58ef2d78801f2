"""bench/peers/dlock_py.py - dlock's Python binding (bindings/python) under
dlock-bench's uncontended workload, timed exactly as redis_py.py times
redis-py's Lock, so the two can be set side by side:

  PYTHON dlock_py.py --port P [--seconds D] [--warmup S] [--ttl MS] [--name KEY]

PYTHON is one the binding is installed in (bench/bindings.sh uses the venv
that bindings/python/test.sh makes). Settings (the binding's defaults):
  dlock.Client("redis://127.0.0.1:P")   one client (its own connection)
  client.acquire(name, ttl)              the seed's acquire (one ACQUIRE when
                                         free); ttl = dlock-bench's 10000 ms
  lock.release()                         RELEASE
One client, acquire + release pairs on a free lock after S seconds of
warm-up; pairs/s and p50/p99 pair latency. Last line: RESULT ... in
dlock-bench's format.
"""
import argparse
import time

import dlock


def quantile(sorted_vals, q):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))
    return float(sorted_vals[i])


def uncontended(o):
    c = dlock.Client(f"redis://127.0.0.1:{o.port}")
    lat = []
    t = time.monotonic_ns()
    warm_end = t + int(o.warmup * 1e9)
    end = warm_end + int(o.seconds * 1e9)
    while t < end:
        t0 = t
        c.acquire(o.name, o.ttl).release()
        t = time.monotonic_ns()
        if t0 >= warm_end:
            lat.append(t - t0)
    lat.sort()
    secs = sum(lat) / 1e9
    print("dlock-py %s uncontended: %d pairs" % (dlock.__version__, len(lat)))
    print("RESULT mode=uncontended pairs_per_s=%.1f p50_us=%.1f p99_us=%.1f acq_per_s=0 "
          "handoffs_per_s=0 min_share=0 wait_p99_us=0 cmds_per_acq=-1 violations=0 "
          "workers=1 waiting=dlock-py gave_up=0 errors=0"
          % (len(lat) / secs if secs else 0, quantile(lat, 0.5) / 1000.0,
             quantile(lat, 0.99) / 1000.0))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--ttl", type=int, default=10000)
    p.add_argument("--name", default="bench-peer-dlock-py")
    o = p.parse_args()
    if o.seconds <= 0:
        p.error("--seconds > 0")
    uncontended(o)


if __name__ == "__main__":
    main()
