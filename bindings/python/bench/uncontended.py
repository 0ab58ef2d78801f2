"""Uncontended acquire+release pairs/s from Python, in one process against
one server: dlock's blocking API, dlock's asyncio API (one and 16 concurrent
tasks), and redis-py's Lock (Debian: python3-redis) when it is installed.
Rounds are interleaved so that a slow moment of the machine hits all alike;
the median of the rounds is printed.

    python3 bench/uncontended.py --port 6379 [--seconds 1] [--rounds 5]
"""
import argparse
import asyncio
import statistics
import time

import dlock


def run_for(seconds, fn):
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        fn(n)
        n += 1
    return n / seconds


def dlock_blocking(url, seconds):
    c = dlock.Client(url)

    def pair(i):
        c.acquire("bench-py", 10000).release()
    return run_for(seconds, pair)


def dlock_async(url, seconds, tasks):
    async def main():
        c = dlock.Client(url)
        count = [0]
        end = time.monotonic() + seconds

        async def worker(k):
            while time.monotonic() < end:
                lock = await c.acquire_async(f"bench-py-a{k}", 10000)
                await lock.release_async()
                count[0] += 1
        await asyncio.gather(*(worker(k) for k in range(tasks)))
        return count[0] / seconds
    return asyncio.run(main())


def redis_py(port, seconds):
    import redis
    r = redis.Redis(host="127.0.0.1", port=port)

    def pair(i):
        lk = r.lock("bench-py-redis", timeout=10)
        lk.acquire(blocking=False)
        lk.release()
    return run_for(seconds, pair)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    url = f"redis://127.0.0.1:{a.port}"
    modes = {"dlock blocking": lambda: dlock_blocking(url, a.seconds),
             "dlock asyncio, 1 task": lambda: dlock_async(url, a.seconds, 1),
             "dlock asyncio, 16 tasks": lambda: dlock_async(url, a.seconds, 16)}
    try:
        import redis  # noqa: F401
        modes["redis-py Lock"] = lambda: redis_py(a.port, a.seconds)
    except ImportError:
        print("redis-py not installed (Debian: python3-redis): skipped")
    got = {m: [] for m in modes}
    for _ in range(a.rounds):
        for m, fn in modes.items():
            got[m].append(fn())
    base = statistics.median(got["redis-py Lock"]) if "redis-py Lock" in got else None
    for m, v in got.items():
        med = statistics.median(v)
        rel = f"  {med / base:.2f}x redis-py" if base else ""
        print(f"{m:26s} {med:9.0f} pairs/s{rel}")


if __name__ == "__main__":
    main()
