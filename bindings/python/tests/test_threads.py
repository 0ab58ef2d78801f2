"""Blocking calls and Python threads: the GIL is released while a call
blocks, one Client is shared safely (a C client per thread), and the
context manager keeps mutual exclusion between threads."""
import threading
import time
import unittest

import dlock
from servers import Resp, ServerTest, wait_until


def spin(seconds):
    """Pure-Python work: how many loop turns fit in `seconds`."""
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        n += 1
    return n


class Threads(ServerTest):
    def setUp(self):
        super().setUp()
        self.c = dlock.Client(self.srv.url)

    def test_gil_is_released_while_wait_blocks(self):
        holder = dlock.Client(self.srv.url).acquire("gil", 10000)
        baseline = spin(0.3)
        result = {}

        def blocked():
            try:
                self.c.wait("gil", 2000, 1000)
            except dlock.Timeout as e:
                result["err"] = e

        t = threading.Thread(target=blocked)
        t.start()
        wait_until(lambda: self.srv.cmd("ZCARD", self.key("gil", ":q")) == 1)
        during = spin(0.3)
        still_blocked = t.is_alive()
        t.join(5)
        holder.release()
        self.assertTrue(still_blocked)
        self.assertIsInstance(result.get("err"), dlock.Timeout)
        # Holding the GIL in wait() would stop this thread dead (next to no
        # turns); a loaded machine may slow it, not by 4x.
        print(f"\n  spin turns in 0.3 s: {baseline} alone, {during} while another thread "
              "waits in wait()", end=" ")
        self.assertGreater(during, baseline * 0.25, (during, baseline))

    def test_one_client_shared_by_threads_does_not_serialise_them(self):
        # Thread A waits for a lock that thread B holds and releases: on one
        # shared C client B's release would queue behind A's wait.
        b_has_it = threading.Event()
        release_now = threading.Event()
        times = {}

        def b():
            lock = self.c.acquire("x", 10000)
            b_has_it.set()
            release_now.wait(5)
            times["released"] = time.monotonic()
            lock.release()

        tb = threading.Thread(target=b)
        tb.start()
        b_has_it.wait(5)

        def a():
            lock = self.c.wait("x", 5000, 5000)
            times["got"] = time.monotonic()
            lock.release()

        ta = threading.Thread(target=a)
        ta.start()
        wait_until(lambda: self.srv.cmd("ZCARD", self.key("x", ":q")) == 1)
        release_now.set()
        ta.join(10)
        tb.join(10)
        self.assertLess(times["got"] - times["released"], 0.5)

    def test_mutual_exclusion_between_threads(self):
        inside, worst, errors = [0], [0], []
        mu = threading.Lock()

        def worker():
            r = Resp(self.srv.port)  # a connection of this thread's own
            try:
                for _ in range(25):
                    with self.c.lock("counter", ttl=5000, timeout=20000):
                        with mu:
                            inside[0] += 1
                            worst[0] = max(worst[0], inside[0])
                        v = int(r.cmd("GET", "n") or 0)  # not atomic: the lock makes it so
                        r.cmd("SET", "n", v + 1)
                        with mu:
                            inside[0] -= 1
            except Exception as e:  # reported below
                errors.append(e)
            finally:
                r.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(worst[0], 1)
        self.assertEqual(self.srv.cmd("GET", "n"), "100")

    def test_a_lock_can_be_released_from_another_thread(self):
        got = []
        t = threading.Thread(target=lambda: got.append(self.c.acquire("hand", 5000)))
        t.start()
        t.join(5)
        got[0].release()
        self.assertEqual(self.srv.cmd("EXISTS", self.key("hand")), 0)


if __name__ == "__main__":
    unittest.main()
