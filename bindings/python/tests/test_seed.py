"""The seed's tested behaviours (reference/seed-distributed-lock.md), for
the Python package: acquire with retries and backoff, tryAcquire's None,
waitForLock's deadline, isLocked, and the handle's release, extend, held
and info, with LockAcquisitionError and InvalidLockError; plus what dlock
adds to them (fences, tokens checked by the server, owner metadata)."""
import os
import re
import socket
import threading
import time
import unittest

import dlock
from servers import ServerTest, wait_until


class SeedBehaviour(ServerTest):
    def setUp(self):
        super().setUp()
        self.c = dlock.Client(self.srv.url)
        self.other = dlock.Client(self.srv.url)

    def test_acquire_returns_a_held_handle(self):
        lock = self.c.acquire("job", 5000)
        self.assertIsInstance(lock, dlock.Lock)
        self.assertRegex(lock.token, r"^[0-9a-f]{32}$")
        self.assertTrue(lock.held)
        self.assertGreaterEqual(lock.fence, 1)
        self.assertEqual(lock.name, "job")
        self.assertEqual(self.srv.cmd("HGET", self.key("job"), "t"), lock.token)
        self.assertTrue(4000 < self.srv.cmd("PTTL", self.key("job")) <= 5000)
        lock.release()

    def test_acquire_retries_with_backoff_then_raises(self):
        held = self.other.acquire("busy", 10000)
        c = dlock.Client(self.srv.url, retry_count=3, retry_delay=20, retry_max_delay=40,
                         retry_jitter=0)
        t0 = time.monotonic()
        with self.assertRaises(dlock.LockBusy) as cm:
            c.acquire("busy", 1000)
        took = time.monotonic() - t0
        self.assertIsInstance(cm.exception, dlock.LockAcquisitionError)
        self.assertEqual(cm.exception.status, dlock._dlock.EBUSY)
        self.assertEqual(cm.exception.name, "DLOCK_EBUSY")
        self.assertIn("busy", cm.exception.detail)
        self.assertGreaterEqual(took, 0.095)  # 20 + 40 + 40 ms of backoff
        self.assertLess(took, 3.0)
        held.release()

    def test_acquire_retries_until_an_expired_lock_is_free(self):
        first = self.other.acquire("expiring", 300)  # never released
        lock = self.c.acquire("expiring", 1000)
        self.assertGreater(lock.fence, first.fence)
        lock.release()

    def test_try_acquire_is_none_when_held(self):
        held = self.other.acquire("t", 5000)
        self.assertIsNone(self.c.try_acquire("t", 5000))
        held.release()
        lock = self.c.try_acquire("t", 5000)
        self.assertIsNotNone(lock)
        lock.release()

    def test_wait_raises_timeout_at_its_deadline(self):
        held = self.other.acquire("w", 10000)
        t0 = time.monotonic()
        with self.assertRaises(dlock.Timeout) as cm:
            self.c.wait("w", 300, 5000)
        took = time.monotonic() - t0
        self.assertIsInstance(cm.exception, dlock.LockAcquisitionError)
        self.assertIsInstance(cm.exception, TimeoutError)
        self.assertTrue(0.29 <= took < 1.5, took)
        self.assertEqual(self.srv.cmd("ZCARD", self.key("w", ":q")), 0)
        held.release()

    def test_wait_is_woken_by_the_release(self):
        held = self.other.acquire("wake", 10000)
        got = {}

        def waiter():
            lock = self.c.wait("wake", 5000, 5000)
            got["at"] = time.monotonic()
            got["lock"] = lock

        t = threading.Thread(target=waiter)
        t.start()
        wait_until(lambda: self.srv.cmd("ZCARD", self.key("wake", ":q")) == 1)
        released = time.monotonic()
        held.release()
        t.join(5)
        self.assertIn("lock", got)
        self.assertLess(got["at"] - released, 0.5)  # not a poll: the slice is 2 s
        self.assertEqual(got["lock"].fence, held.fence + 1)
        got["lock"].release()

    def test_is_locked(self):
        self.assertFalse(self.c.is_locked("l"))
        lock = self.other.acquire("l", 5000)
        self.assertTrue(self.c.is_locked("l"))
        lock.release()
        self.assertFalse(self.c.is_locked("l"))

    def test_release_then_release_again_raises_invalid_lock_error(self):
        lock = self.c.acquire("r", 5000)
        lock.release()
        self.assertFalse(lock.held)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("r")), 0)
        with self.assertRaises(dlock.InvalidLockError) as cm:
            lock.release()
        self.assertIsInstance(cm.exception, dlock.NotHeld)

    def test_release_of_a_lock_taken_by_another_changes_nothing(self):
        lock = self.c.acquire("taken", 200)
        time.sleep(0.3)
        other = self.other.acquire("taken", 5000)
        with self.assertRaises(dlock.InvalidLockError):
            lock.release()
        self.assertEqual(self.srv.cmd("HGET", self.key("taken"), "t"), other.token)
        other.release()

    def test_extend(self):
        lock = self.c.acquire("e", 1000)
        before = lock.expires_at
        lock.extend(5000)
        self.assertGreater(self.srv.cmd("PTTL", self.key("e")), 4000)
        self.assertGreater(lock.expires_at, before + 3000)
        for bad in (0, -5, dlock.TTL_MAX + 1):
            with self.assertRaises(dlock.InvalidArgument):
                lock.extend(bad)
        with self.assertRaises(TypeError):
            lock.extend(1.5)  # milliseconds are integers
        lock.release()

    def test_extend_after_expiry_raises_and_marks_not_held(self):
        lock = self.c.acquire("gone", 200)
        time.sleep(0.3)
        with self.assertRaises(dlock.InvalidLockError):
            lock.extend(1000)
        self.assertFalse(lock.held)

    def test_held_is_local_and_ends_with_the_lease(self):
        lock = self.c.acquire("h", 300)
        self.assertTrue(lock.held)
        time.sleep(0.35)
        self.assertFalse(lock.held)

    def test_info(self):
        t0 = int(time.time() * 1000)
        lock = self.c.acquire("info", 4000)
        info = lock.info
        self.assertEqual(info.name, "info")
        self.assertEqual(info.token, lock.token)
        self.assertEqual(info.fence, lock.fence)
        self.assertTrue(info.held)
        self.assertTrue(t0 - 50 <= info.acquired_at <= t0 + 1000)
        self.assertTrue(3800 <= info.expires_at - info.acquired_at <= 4000)
        lock.release()
        self.assertFalse(lock.info.held)

    def test_tokens_differ_and_fences_rise(self):
        tokens, fences = set(), []
        for _ in range(20):
            lock = self.c.acquire("seq", 5000)
            tokens.add(lock.token)
            fences.append(lock.fence)
            lock.release()
        self.assertEqual(len(tokens), 20)
        self.assertEqual(fences, sorted(set(fences)))

    def test_only_the_token_releases(self):
        lock = self.c.acquire("own", 5000)
        with self.assertRaises(dlock.NotHeld):
            self.other.release_token("own", "0" * 32)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("own")), 1)
        self.other.release_token("own", lock.token)
        self.assertEqual(self.srv.cmd("EXISTS", self.key("own")), 0)

    def test_lock_expires_without_release(self):
        self.c.acquire("dead", 200)  # the holder "dies": never released
        lock = wait_until(lambda: self.other.try_acquire("dead", 1000), timeout=2)
        self.assertIsNotNone(lock)
        lock.release()

    def test_bad_input_raises_invalid_argument(self):
        for name in ("", "a\0b", "x" * (dlock.NAME_MAX + 1)):
            with self.assertRaises(dlock.InvalidArgument):
                self.c.try_acquire(name, 1000)
        for ttl in (0, -1, dlock.TTL_MAX + 1):
            with self.assertRaises(dlock.InvalidArgument):
                self.c.try_acquire("x", ttl)
        with self.assertRaises(ValueError):  # InvalidArgument is a ValueError
            self.c.wait("x", -1, 1000)
        with self.assertRaises(TypeError):
            self.c.try_acquire(5, 1000)
        with self.assertRaises(dlock.InvalidArgument):
            dlock.Client("ftp://nowhere")
        lock = self.c.try_acquire(b"bytes-\xff", 1000)  # any bytes but NUL
        self.assertEqual(lock.name, b"bytes-\xff")
        lock.release()

    def test_inspect_names_the_holder(self):
        c = dlock.Client(self.srv.url, owner_label="nightly")
        lock = c.acquire("who", 5000)
        h = self.other.inspect("who")
        self.assertTrue(h.locked)
        self.assertEqual(h.token, lock.token)
        self.assertEqual(h.fence, lock.fence)
        self.assertEqual(h.pid, os.getpid())
        self.assertEqual(h.host, socket.gethostname())
        self.assertEqual(h.label, "nightly")
        self.assertTrue(0 < h.pttl_ms <= 5000)
        lock.release()
        h = self.other.inspect("who")
        self.assertFalse(h.locked)
        self.assertEqual(h.pttl_ms, -1)
        self.assertEqual(h.fence, lock.fence)  # the last one issued

    def test_unreachable_server_raises_connection_error(self):
        c = dlock.Client("redis://127.0.0.1:1", connect_timeout=200)
        with self.assertRaises(dlock.ConnectionError) as cm:
            c.is_locked("x")
        self.assertIsInstance(cm.exception, ConnectionError)  # the builtin too
        self.assertTrue(re.search("127.0.0.1:1", str(cm.exception)))

    def test_the_status_table_is_the_c_table(self):
        for status, cls in dlock.errors.items():
            self.assertTrue(issubclass(cls, dlock.DlockError))
            e = dlock._dlock.error(status, "")
            self.assertIs(type(e), cls)
            self.assertEqual(str(e), dlock._dlock.strerror(status))


if __name__ == "__main__":
    unittest.main()
