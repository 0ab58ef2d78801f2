"""asyncio: the engine driven through its file descriptor by the running
loop, with no thread per wait (none at all), FIFO hand-over, and
cancellation that leaves nothing behind in Redis."""
import asyncio
import os
import threading
import time
import unittest

import dlock
from servers import ServerTest


def os_threads():
    return len(os.listdir("/proc/self/task"))


class Asyncio(ServerTest):
    def setUp(self):
        super().setUp()
        self.c = dlock.Client(self.srv.url)

    def run_loop(self, coro, timeout=30):
        return asyncio.run(asyncio.wait_for(coro, timeout))

    async def until(self, cond, timeout=5.0):
        """Let the loop run until cond() holds (or timeout seconds pass)."""
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            await asyncio.sleep(0.01)
        return cond()

    def test_every_async_call(self):
        async def main():
            lock = await self.c.acquire_async("a", 5000)
            self.assertIsInstance(lock, dlock.Lock)
            self.assertTrue(lock.held)
            self.assertIsNone(await self.c.try_acquire_async("a", 5000))
            h = await self.c.inspect_async("a")
            self.assertEqual((h.locked, h.token, h.fence), (True, lock.token, lock.fence))
            self.assertTrue(await self.c.is_locked_async("a"))
            await lock.extend_async(20000)
            self.assertGreater(self.srv.cmd("PTTL", self.key("a")), 15000)
            await lock.release_async()
            self.assertFalse(lock.held)
            with self.assertRaises(dlock.InvalidLockError):
                await lock.release_async()
            self.assertFalse(await self.c.is_locked_async("a"))
            with self.assertRaises(dlock.InvalidArgument):
                await self.c.acquire_async("", 5000)
            t0 = time.monotonic()
            held = await self.c.acquire_async("a", 5000)
            with self.assertRaises(dlock.Timeout):
                await self.c.wait_async("a", 200, 5000)
            self.assertTrue(0.19 <= time.monotonic() - t0 < 1.5)
            await held.release_async()
        self.run_loop(main())

    def test_200_waiters_on_20_names_fifo_in_one_loop_without_threads(self):
        names = [f"fifo-{i}" for i in range(20)]
        started = {n: [] for n in names}
        entered = {n: [] for n in names}
        fences = {n: [] for n in names}
        inside = {n: 0 for n in names}
        seen = {"py": threading.active_count(), "os": os_threads()}
        before = dict(seen)

        async def worker(i, name):
            started[name].append(i)
            async with self.c.lock(name, ttl=5000, timeout=20000) as lock:
                self.assertEqual(inside[name], 0)
                inside[name] += 1
                entered[name].append(i)
                fences[name].append(lock.fence)
                seen["py"] = max(seen["py"], threading.active_count())
                seen["os"] = max(seen["os"], os_threads())
                await asyncio.sleep(0.002)
                inside[name] -= 1

        async def main():
            await asyncio.gather(*(worker(i, names[i % 20]) for i in range(200)))

        t0 = time.monotonic()
        self.run_loop(main(), timeout=60)
        print(f"\n  200 waits on 20 names: {time.monotonic() - t0:.2f} s, threads "
              f"{before['os']} before, at most {seen['os']} during", end=" ")
        for n in names:
            self.assertEqual(len(entered[n]), 10)
            self.assertEqual(entered[n], started[n])  # FIFO: served in the order they asked
            self.assertEqual(fences[n], sorted(set(fences[n])))
        self.assertEqual(seen, before)  # no thread, Python's or the library's
        for n in names:
            self.assertEqual(self.srv.cmd("EXISTS", self.key(n), self.key(n, ":q")), 0)

    def test_cancelling_a_wait_leaves_the_queue_empty(self):
        holder = dlock.Client(self.srv.url).acquire("c", 10000)

        async def main():
            task = asyncio.ensure_future(self.c.wait_async("c", 10000, 5000))
            self.assertTrue(await self.until(
                lambda: self.srv.cmd("ZCARD", self.key("c", ":q")) == 1))
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertTrue(await self.until(
                lambda: self.srv.cmd("ZCARD", self.key("c", ":q")) == 0))
            self.assertEqual(self.srv.cmd("HLEN", self.key("c", ":qi")), 0)
            holder.release()
            await asyncio.sleep(0.1)
            # Nobody was handed the lock: the cancelled waiter left for good.
            self.assertEqual(self.srv.cmd("EXISTS", self.key("c")), 0)
            self.assertEqual(self.c._aclient._pending, 0)
        self.run_loop(main())

    def test_wait_for_timeout_cancels_the_wait(self):
        holder = dlock.Client(self.srv.url).acquire("wf", 10000)

        async def main():
            t0 = time.monotonic()
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(self.c.wait_async("wf", 10000, 5000), 0.3)
            self.assertLess(time.monotonic() - t0, 1.0)
            self.assertTrue(await self.until(
                lambda: self.srv.cmd("ZCARD", self.key("wf", ":q")) == 0))
            with self.assertRaises(asyncio.TimeoutError):
                async with asyncio.timeout(0.2):
                    async with self.c.lock("wf"):
                        self.fail("entered a held lock")
            self.assertTrue(await self.until(
                lambda: self.srv.cmd("ZCARD", self.key("wf", ":q")) == 0))
        self.run_loop(main())
        holder.release()

    def test_async_with_releases_on_exception_and_on_timeout(self):
        async def main():
            with self.assertRaises(KeyError):
                async with self.c.lock("ex", ttl=5000) as lock:
                    raise KeyError("x")
            self.assertFalse(lock.held)
            self.assertEqual(self.srv.cmd("EXISTS", self.key("ex")), 0)
            held = await self.c.acquire_async("ex", 5000)
            with self.assertRaises(dlock.Timeout):
                async with self.c.lock("ex", timeout=100):
                    self.fail("entered a held lock")
            await held.release_async()
        self.run_loop(main())

    def test_keepalive_and_on_lost_in_the_loop(self):
        async def main():
            loop_thread = threading.get_ident()
            async with self.c.lock("ka", ttl=1000, auto_extend=True) as lock:
                await asyncio.sleep(1.6)
                self.assertTrue(lock.held)
                self.assertGreater(self.srv.cmd("PTTL", self.key("ka")), 0)
            lost = asyncio.Event()
            calls = []

            def on_lost(lk, err):
                calls.append((lk, err, threading.get_ident()))
                lost.set()

            lock = await self.c.acquire_async("ka", 1000)
            lock.keepalive(200, on_lost)
            self.srv.cmd("DEL", self.key("ka"))
            await asyncio.wait_for(lost.wait(), 3)
            self.assertEqual(len(calls), 1)
            self.assertIs(calls[0][0], lock)
            self.assertIsInstance(calls[0][1], dlock.NotHeld)
            self.assertEqual(calls[0][2], loop_thread)
            self.assertFalse(lock.held)
        self.run_loop(main())

    def test_release_async_of_a_blocking_lock_says_what_to_do(self):
        blocking = self.c.acquire("b", 5000)

        async def main():
            with self.assertRaisesRegex(RuntimeError, "blocking API"):
                await blocking.release_async()
        self.run_loop(main())
        blocking.release()

    def test_a_grant_that_meets_a_cancelled_task_is_released(self):
        # The engine grants the lock and completes the future; before the
        # task resumes, it is cancelled (asyncio then throws CancelledError
        # into it although its future holds a Lock). That Lock is released.
        from dlock import _aio
        task = None
        orig = _aio.Driver._done

        def done_then_cancel(drv, fut, kind, status, value, detail):
            orig(drv, fut, kind, status, value, detail)
            task.cancel()

        async def main():
            nonlocal task
            _aio.Driver._done = done_then_cancel
            try:
                task = asyncio.ensure_future(self.c.try_acquire_async("race", 30000))
                with self.assertRaises(asyncio.CancelledError):
                    await task
            finally:
                _aio.Driver._done = orig
            self.assertTrue(await self.until(
                lambda: self.srv.cmd("EXISTS", self.key("race")) == 0, timeout=2))
        self.run_loop(main())

    def test_redlock_async(self):
        srvs = [self.srv]
        from servers import Server
        try:
            srvs += [Server(), Server()]
            url = "redis://" + ",".join(f"127.0.0.1:{s.port}" for s in srvs)
            c = dlock.Client(url)

            async def main():
                fences = []
                for _ in range(3):
                    async with c.lock("rl", ttl=5000, timeout=5000) as lock:
                        fences.append(lock.fence)
                        held_on = sum(s.cmd("EXISTS", self.key("rl")) for s in srvs)
                        self.assertGreaterEqual(held_on, 2)
                self.assertEqual(fences, sorted(set(fences)))
            self.run_loop(main())
        finally:
            for s in srvs[1:]:
                s.close()

    def test_sentinel_and_cluster_discovery_failures_reach_the_loop(self):
        # The async API drives Sentinel and Cluster too: with nothing
        # listening, the discovery fails in the loop, and says why.
        for url, words in (("redis-sentinel://127.0.0.1:1/mymaster", "no master"),
                           ("redis-cluster://127.0.0.1:1", "slot map")):
            c = dlock.Client(url, connect_timeout=300, command_timeout=300)

            async def main():
                with self.assertRaises(dlock.ConnectionError) as cm:
                    await c.try_acquire_async("x", 1000)
                self.assertIn(words, cm.exception.detail)
            self.run_loop(main())

    def test_one_client_in_two_loops_one_after_the_other(self):
        for _ in range(2):
            async def main():
                async with self.c.lock("loops", ttl=5000) as lock:
                    self.assertTrue(lock.held)
            self.run_loop(main())
        self.assertEqual(self.srv.cmd("EXISTS", self.key("loops")), 0)

    def test_the_fd_is_the_engines(self):
        fd = self.c.fd
        self.assertGreaterEqual(fd, 0)
        self.assertEqual(os.readlink(f"/proc/self/fd/{fd}"), "anon_inode:[eventpoll]")


if __name__ == "__main__":
    unittest.main()
