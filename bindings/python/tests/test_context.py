"""`with client.lock(...)`: acquire on enter, release on exit (also when the
block raises), keepalive with auto_extend, and on_lost."""
import threading
import time
import unittest

import dlock
from servers import ServerTest, wait_until


class ContextManager(ServerTest):
    def setUp(self):
        super().setUp()
        self.c = dlock.Client(self.srv.url)

    def test_with_acquires_and_releases(self):
        with self.c.lock("cm", ttl=5000) as lock:
            self.assertTrue(lock.held)
            self.assertEqual(self.srv.cmd("HGET", self.key("cm"), "t"), lock.token)
        self.assertFalse(lock.held)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("cm")), 0)

    def test_with_releases_when_the_block_raises(self):
        with self.assertRaises(ZeroDivisionError):
            with self.c.lock("boom", ttl=5000) as lock:
                1 / 0
        self.assertFalse(lock.held)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("boom")), 0)

    def test_with_timeout_raises_and_leaves_no_queue_entry(self):
        held = dlock.Client(self.srv.url).acquire("tmo", 10000)
        with self.assertRaises(dlock.Timeout):
            with self.c.lock("tmo", ttl=5000, timeout=200):
                self.fail("entered a held lock")
        self.assertEqual(self.srv.cmd("ZCARD", self.key("tmo", ":q")), 0)
        held.release()

    def test_the_context_can_be_entered_again_after_exit(self):
        ctx = self.c.lock("again", ttl=5000)
        with ctx as first:
            with self.assertRaises(RuntimeError):
                ctx.__enter__()
        with ctx as second:
            self.assertGreater(second.fence, first.fence)

    def test_auto_extend_keeps_the_lease_past_its_ttl(self):
        with self.c.lock("long", ttl=1000, auto_extend=True) as lock:
            time.sleep(1.6)
            self.assertTrue(lock.held)
            self.assertGreater(self.srv.cmd("PTTL", self.key("long")), 0)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("long")), 0)

    def test_on_lost_fires_when_the_key_is_deleted(self):
        lost = []
        ev = threading.Event()

        def on_lost(lock, err):
            lost.append((lock, err, threading.current_thread().name))
            ev.set()

        with self.assertRaises(dlock.NotHeld):  # the release at exit finds it gone
            with self.c.lock("lose", ttl=1000, interval=200, on_lost=on_lost) as lock:
                self.srv.cmd("DEL", self.key("lose"))
                self.assertTrue(ev.wait(3))
                self.assertFalse(lock.held)
        got, err, thread = lost[0]
        self.assertIs(got, lock)
        self.assertIsInstance(err, dlock.NotHeld)
        self.assertIn("lose", str(err))
        self.assertEqual(thread, "dlock-on-lost")
        self.assertEqual(len(lost), 1)

    def test_a_release_failure_is_a_note_on_the_blocks_error(self):
        with self.assertRaises(KeyError) as cm:
            with self.c.lock("noted", ttl=5000):
                self.srv.cmd("DEL", self.key("noted"))
                raise KeyError("mine")
        self.assertTrue(any("releasing 'noted' failed" in n for n in cm.exception.__notes__))

    def test_a_lock_is_its_own_context_manager(self):
        with self.c.acquire("self", 5000) as lock:
            self.assertTrue(lock.held)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("self")), 0)

    def test_a_dropped_lock_stops_its_keepalive(self):
        lock = self.c.acquire("dropped", 600)
        lock.keepalive(100)
        del lock
        self.assertTrue(wait_until(lambda: self.srv.cmd("EXISTS", self.key("dropped")) == 0,
                                   timeout=3))


if __name__ == "__main__":
    unittest.main()
