"""The package on real deployments (issue 13): a Redlock set of three
servers, a Sentinel group (master, replica, three sentinels) and a
3-master Cluster, each started by topology.py. Every one passes the same
LockChecks (acquire/release, try_acquire's None, a wait woken by the
release, extend, rising fences, inspect); then what is particular to it:
a majority when one Redlock server is gone, a Sentinel failover, names on
every Cluster master and a slot migrated under a held lock (ASK, MOVED)."""
import threading
import time
import unittest

import dlock
from topology import (EPOCH_SHIFT, Cluster, LockChecks, Redlock, Sentinels, cmd_calls,
                      replicas_ack, until)


class RedlockSet(LockChecks, unittest.TestCase):
    # A queued Redlock waiter re-attempts every 250 ms at most
    # (SLICE_REDLOCK_MS), and that slice is also what a missed wake-up costs
    # (acquire_shared.c: a master's wake-up sent before the others are free
    # is only a hint): most hand-overs come well before it, none much after.
    PREFIX = "rl"
    WAKE_MAX_S = 0.6

    @classmethod
    def setUpClass(cls):
        cls.rl = Redlock(3)
        cls.url = cls.rl.url

    @classmethod
    def tearDownClass(cls):
        cls.rl.close()

    def test_zz_on_every_server_and_a_majority_without_one(self):
        # zz: runs last in the class, it kills a server.
        c = self.client(connect_timeout=300, command_timeout=300)
        name = "rl-quorum"
        key = f"dlock:{{{name}}}"
        lock = c.acquire(name, 5000)
        # The acquire returns once a majority granted it; the third may lag.
        until(lambda: sum(s.cmd("EXISTS", key) for s in self.rl.servers) == 3, 3,
              "the lock on all three servers")
        lock.release()
        self.assertEqual(sum(s.cmd("EXISTS", key) for s in self.rl.servers), 0)
        self.rl.servers[2].stop()
        lock2 = c.acquire(name, 5000)
        self.assertGreater(lock2.fence, lock.fence)
        self.assertIsNone(c.try_acquire(name, 1000))
        lock2.release()


class SentinelGroup(LockChecks, unittest.TestCase):
    PREFIX = "sn"

    @classmethod
    def setUpClass(cls):
        cls.g = Sentinels(3)
        cls.url = cls.g.url

    @classmethod
    def tearDownClass(cls):
        cls.g.close()

    def test_the_lock_lives_on_the_master(self):
        lock = self.client().acquire("sn-where", 5000)
        self.assertEqual(self.g.master.cmd("HGET", "dlock:{sn-where}", "t"), lock.token)
        lock.release()

    def test_zz_failover_then_a_higher_fence(self):
        # zz: runs last in the class, it kills the master.
        old = self.client(connect_timeout=300, command_timeout=500)
        name = "sn-failover"
        lock = old.acquire(name, 5000)
        before = lock.fence
        lock.release()
        self.assertLess(before, 1 << EPOCH_SHIFT)  # no failover yet: the plain counter
        replicas_ack(self.g.master, 1, 5)  # the counter reached the replica
        self.g.master.stop()  # SIGKILL
        self.g.wait_master(self.g.replica, 20)
        epoch = self.g.config_epoch(0)
        self.assertGreaterEqual(epoch, 1)
        # The client that knew the old master follows the sentinels.
        lock2 = old.acquire(name, 5000)
        self.assertGreater(lock2.fence, before)
        self.assertGreaterEqual(lock2.fence, epoch << EPOCH_SHIFT)
        self.assertEqual(self.g.replica.cmd("HGET", f"dlock:{{{name}}}", "t"), lock2.token)
        fresh = self.client()
        self.assertIsNone(fresh.try_acquire(name, 5000))
        lock2.release()
        lock3 = fresh.acquire(name, 5000)
        self.assertGreater(lock3.fence, lock2.fence)
        lock3.release()


class SentinelFailoverWait(unittest.TestCase):
    """A wait queued on the master when it is killed: once it re-queued on
    the promoted replica, the holder's release there must wake it (its
    subscription went with the old master), not leave it to its 2 s
    slice. A group of its own: SentinelGroup's has no replica left."""

    @classmethod
    def setUpClass(cls):
        cls.g = Sentinels(3)

    @classmethod
    def tearDownClass(cls):
        cls.g.close()

    def hand_over(self, held, t, got):
        t0 = time.monotonic()
        held.release()
        t.join(15)
        self.assertFalse(t.is_alive())
        self.assertIn("lock", got, got)
        return got["lock"], got["at"] - t0

    def queued_wait(self, waiter, name):
        got = {}

        def wait():
            try:
                got["lock"] = waiter.wait(name, 30000, 5000)
            except dlock.DlockError as e:
                got["err"] = e
            got["at"] = time.monotonic()
        t = threading.Thread(target=wait)
        t.start()
        return t, got

    def test_a_wait_rides_the_failover_out_woken_by_the_release(self):
        g = self.g
        holder = dlock.Client(g.url, connect_timeout=300, command_timeout=500)
        waiter = dlock.Client(g.url, connect_timeout=300, command_timeout=500)
        name = "sn-ride"
        held = holder.acquire(name, 15000)
        t, got = self.queued_wait(waiter, name)
        until(lambda: holder.inspect(name).waiters >= 1, 5, "the waiter queued")
        replicas_ack(g.master, 1, 5)  # the lock and the queue reached the replica
        g.master.stop()  # SIGKILL
        g.wait_master(g.replica, 20)
        epoch = g.config_epoch(0)
        # The waiter's wake-up subscription went with the old master: its
        # next attempt must make it again on the new one (the channel is
        # <prefix>wake:<engine id>, docs/PROTOCOL.md), so that the
        # holder's release there wakes it.
        until(lambda: g.replica.cmd("PUBSUB", "CHANNELS", "dlock:wake:*"), 10,
              "the waiter's wake-up subscription on the new master")
        lock, took = self.hand_over(held, t, got)
        print(f"\n  across the failover: woken {took * 1000:.1f} ms after the release began",
              end=" ")
        self.assertGreater(lock.fence, held.fence)
        self.assertGreaterEqual(lock.fence, epoch << EPOCH_SHIFT)
        self.assertLess(took, LockChecks.WAKE_MAX_S)
        lock.release()
        # And the next wait of the same clients, on the new master.
        held = holder.acquire(name, 15000)
        t, got = self.queued_wait(waiter, name)
        until(lambda: holder.inspect(name).waiters >= 1, 5, "the waiter queued")
        lock, took = self.hand_over(held, t, got)
        self.assertLess(took, LockChecks.WAKE_MAX_S)
        lock.release()


class ClusterOfThree(LockChecks, unittest.TestCase):
    PREFIX = "cl"

    @classmethod
    def setUpClass(cls):
        cls.k = Cluster(3)
        cls.url = cls.k.url

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_names_on_every_master(self):
        c = self.client()
        names = [self.k.name_on(i, "cl-spread") for i in range(3)]
        locks = [c.acquire(n, 5000) for n in names]
        for i, (n, lock) in enumerate(zip(names, locks)):
            self.assertEqual(self.k.nodes[i].cmd("HGET", f"dlock:{{{n}}}", "t"), lock.token)
            self.assertEqual(c.inspect(n).token, lock.token)
        for lock in locks:
            lock.release()
        for i, n in enumerate(names):
            self.assertEqual(self.k.nodes[i].cmd("EXISTS", f"dlock:{{{n}}}"), 0)

    def test_slot_migrated_under_a_held_lock_ask_then_moved(self):
        c, wc = self.client(), self.client()
        nodes = self.k.nodes
        src, dst = 0, 1
        name = self.k.name_on(src, "cl-move")
        slot = self.k.slot_of(f"dlock:{{{name}}}")
        ids = [s.cmd("CLUSTER", "MYID") for s in nodes]
        # Both clients' slot maps say src serves the slot. A waiter queues,
        # so that every key of the lock exists (a migrating slot's keys
        # split between two nodes make a multi-key script meet TRYAGAIN).
        lock = c.acquire(name, 20000)
        got = {}
        t = threading.Thread(target=lambda: got.setdefault("lock", wc.wait(name, 15000, 5000)))
        t.start()
        until(lambda: c.inspect(name).waiters >= 1, 5, "the waiter queued")

        nodes[dst].cmd("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[src])
        nodes[src].cmd("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[dst])
        keys = nodes[src].cmd("CLUSTER", "GETKEYSINSLOT", slot, 100)
        self.assertGreaterEqual(len(keys), 2, keys)
        nodes[src].cmd("MIGRATE", "127.0.0.1", nodes[dst].port, "", 0, 5000, "KEYS", *keys)
        self.assertEqual(nodes[src].cmd("CLUSTER", "COUNTKEYSINSLOT", slot), 0)

        # src has none of the slot's keys: it answers ASK, and the release
        # reaches dst with ASKING, handing the lock to the waiter there.
        asking0 = cmd_calls(nodes[dst], "asking")
        lock.release()
        self.assertGreater(cmd_calls(nodes[dst], "asking"), asking0)
        t.join(10)
        self.assertFalse(t.is_alive())
        handed = got["lock"]
        self.assertGreater(handed.fence, lock.fence)

        # Finish the move on every master; the clients still map the slot
        # to src, which now answers MOVED.
        nodes[dst].cmd("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
        for i in (src, 2):
            nodes[i].cmd("CLUSTER", "SETSLOT", slot, "NODE", ids[dst])
        handed.release()
        lock2 = c.acquire(name, 5000)
        self.assertGreater(lock2.fence, handed.fence)
        self.assertEqual(nodes[dst].cmd("HGET", f"dlock:{{{name}}}", "t"), lock2.token)
        self.assertEqual(nodes[src].cmd("CLUSTER", "COUNTKEYSINSLOT", slot), 0)
        lock2.release()


if __name__ == "__main__":
    unittest.main()
