"""The package on real deployments (issue 13): a Redlock set of three
servers, a Sentinel group (master, replica, three sentinels) and a
3-master Cluster, each started by topology.py. Every one passes the same
LockChecks (acquire/release, try_acquire's None, a wait woken by the
release, extend, rising fences, inspect); then what is particular to it:
a majority when one Redlock server is gone, a Sentinel failover, names on
every Cluster master and a slot migrated under a held lock (ASK, MOVED).
On each, on_lost of a kept-alive lock (blocking and asyncio): not called
while the lock is healthy, called once its key is deleted (on a Redlock
majority, the Sentinel master, the Cluster slot's master); on Redlock also
when two of three servers die, and on Sentinel across a failover whose new
master lacks one of two kept-alive locks (that one is lost, the other
stays held). On a Cluster with a replica per master, CLUSTER FAILOVER
under a kept-alive lock: still held, extended and released on the new
master, then taken again."""
import threading
import time
import unittest

import dlock
from servers import wait_until
from topology import (EPOCH_SHIFT, Cluster, Kept, LockChecks, Redlock, Sentinels,
                      check_lost_async, cmd_calls, replicas_ack, until)


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

    # Lost-lock detection: kept alive (ttl 1500 ms, extended every 500 ms),
    # nothing reported for 2.2 s (four periods, longer than the ttl); then
    # reported once a majority no longer has the lock.
    def test_on_lost_quiet_while_healthy_then_called_when_a_majority_loses_the_key(self):
        c = self.client()
        name = "rl-lost-del"
        key = f"dlock:{{{name}}}"
        kept = Kept(c.acquire(name, 1500))
        kept.stays_held(self, 2.2, lambda: [s.cmd("PTTL", key) for s in self.rl.servers])
        t0 = time.monotonic()
        for s in self.rl.servers[:2]:
            s.cmd("DEL", key)
        took = kept.becomes_lost(self, t0, 3, dlock.NotHeld)
        print(f"\n  lost reported {took * 1000:.0f} ms after the deletes", end=" ")
        # The release still cleans up by token: the third server's copy
        # goes. It returns, as a Redlock release does when any server
        # released (docs/PROTOCOL.md), although the lock was reported lost.
        kept.lock.release()
        self.assertEqual(self.rl.servers[2].cmd("EXISTS", key), 0)

    def test_on_lost_async_when_a_majority_loses_the_key(self):
        key = "dlock:{rl-lost-async}"
        took = check_lost_async(
            self, self.client(), "rl-lost-async",
            lambda: [s.cmd("PTTL", key) for s in self.rl.servers],
            lambda: [s.cmd("DEL", key) for s in self.rl.servers[:2]], dlock.NotHeld)
        print(f"\n  lost reported {took * 1000:.0f} ms after the deletes", end=" ")

    def test_on_lost_when_two_of_three_servers_die(self):
        own = Redlock(3)  # a set of its own: two of its servers die
        self.addCleanup(own.close)
        c = dlock.Client(own.url, connect_timeout=300, command_timeout=300)
        self.addCleanup(c.close)
        key = "dlock:{rl-lost-kill}"
        kept = Kept(c.acquire("rl-lost-kill", 1500))
        kept.stays_held(self, 2.2, lambda: [s.cmd("PTTL", key) for s in own.servers])
        t0 = time.monotonic()
        own.servers[0].stop()  # SIGKILL
        own.servers[1].stop()
        # No extension reaches a majority: lost when the validity ends, at
        # most a ttl after the last renewal.
        took = kept.becomes_lost(self, t0, 4)
        err = kept.calls[0][1]
        print(f"\n  lost reported {took * 1000:.0f} ms after the kills ({err.name}: {err})",
              end=" ")
        self.assertNotIsInstance(err, dlock.NotHeld)  # not found gone: not renewed in time
        self.assertIn("before its lease ran out", str(err))
        with self.assertRaises(dlock.NoQuorum):
            kept.lock.release()

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

    # Lost-lock detection as on Redlock: quiet while healthy, then the key
    # deleted on the master is found gone at the next extension.
    def test_on_lost_quiet_while_healthy_then_called_when_the_master_loses_the_key(self):
        name = "sn-lost-del"
        key = f"dlock:{{{name}}}"
        kept = Kept(self.client().acquire(name, 1500))
        kept.stays_held(self, 2.2, lambda: [self.g.master.cmd("PTTL", key)])
        t0 = time.monotonic()
        self.g.master.cmd("DEL", key)
        took = kept.becomes_lost(self, t0, 3, dlock.NotHeld)
        print(f"\n  lost reported {took * 1000:.0f} ms after the delete", end=" ")
        with self.assertRaises(dlock.NotHeld):
            kept.lock.release()

    def test_on_lost_async_when_the_master_loses_the_key(self):
        key = "dlock:{sn-lost-async}"
        check_lost_async(self, self.client(), "sn-lost-async",
                         lambda: [self.g.master.cmd("PTTL", key)],
                         lambda: self.g.master.cmd("DEL", key), dlock.NotHeld)

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


class SentinelFailoverLost(unittest.TestCase):
    """Two locks kept alive across a failover (a group of its own): the one
    the new master has stays held and is extended there; the one it lacks
    (deleted on the replica, made writable for a moment, before the master
    is killed) is reported lost with NotHeld."""

    @classmethod
    def setUpClass(cls):
        cls.g = Sentinels(3)

    @classmethod
    def tearDownClass(cls):
        cls.g.close()

    def test_the_lock_the_new_master_lacks_is_lost_the_other_stays(self):
        g = self.g
        c = dlock.Client(g.url, connect_timeout=300, command_timeout=500)
        self.addCleanup(c.close)
        # Extended every 300 ms; the ttl (15 s) outlasts the failover, so the
        # only way to lose a lock is to find it missing on the new master.
        keep = Kept(c.acquire("sn-fo-keep", 15000), 300)
        gone = Kept(c.acquire("sn-fo-gone", 15000), 300)
        replicas_ack(g.master, 1, 5)  # both locks reached the replica
        # The master's extensions are PEXPIREs: they do not bring it back.
        g.replica.cmd("CONFIG", "SET", "replica-read-only", "no")
        self.assertEqual(g.replica.cmd("DEL", "dlock:{sn-fo-gone}"), 1)
        g.replica.cmd("CONFIG", "SET", "replica-read-only", "yes")
        t0 = time.monotonic()
        g.master.stop()  # SIGKILL
        g.wait_master(g.replica, 20)
        promoted = time.monotonic() - t0
        took = gone.becomes_lost(self, t0, promoted + 5, dlock.NotHeld)
        print(f"\n  promoted {promoted:.1f} s after the kill, the lock it lacks lost after "
              f"{took:.1f} s", end=" ")
        with self.assertRaises(dlock.NotHeld):
            gone.lock.release()
        # The other one is extended on the new master, never reported lost.
        self.assertEqual(g.replica.cmd("HGET", "dlock:{sn-fo-keep}", "t"), keep.lock.token)
        p0 = g.replica.cmd("PTTL", "dlock:{sn-fo-keep}")
        until(lambda: g.replica.cmd("PTTL", "dlock:{sn-fo-keep}") > p0, 3,
              "an extension on the new master")
        self.assertEqual(keep.calls, [])
        self.assertTrue(keep.lock.held)
        keep.lock.release()
        self.assertEqual(g.replica.cmd("EXISTS", "dlock:{sn-fo-keep}"), 0)
        # The lost name is free on the new master: the same client takes it.
        again = c.acquire("sn-fo-gone", 5000)
        self.assertGreater(again.fence, gone.lock.fence)
        again.release()


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

    # Lost-lock detection as on Redlock: quiet while healthy, then the key
    # deleted on its slot's master is found gone at the next extension.
    def test_on_lost_quiet_while_healthy_then_called_when_its_master_loses_the_key(self):
        name = self.k.name_on(2, "cl-lost")
        key = f"dlock:{{{name}}}"
        kept = Kept(self.client().acquire(name, 1500))
        kept.stays_held(self, 2.2, lambda: [self.k.nodes[2].cmd("PTTL", key)])
        t0 = time.monotonic()
        self.assertEqual(self.k.nodes[2].cmd("DEL", key), 1)
        took = kept.becomes_lost(self, t0, 3, dlock.NotHeld)
        print(f"\n  lost reported {took * 1000:.0f} ms after the delete", end=" ")
        with self.assertRaises(dlock.NotHeld):
            kept.lock.release()

    def test_on_lost_async_when_its_master_loses_the_key(self):
        name = self.k.name_on(1, "cl-lost-async")
        key = f"dlock:{{{name}}}"
        check_lost_async(self, self.client(), name, lambda: [self.k.nodes[1].cmd("PTTL", key)],
                         lambda: self.k.nodes[1].cmd("DEL", key), dlock.NotHeld)


class ClusterFailover(unittest.TestCase):
    """CLUSTER FAILOVER under a kept-alive lock (3 masters with a replica
    each): the lock is not reported lost, is extended and released on the
    new master (MOVED from the demoted one), and taken again."""

    @classmethod
    def setUpClass(cls):
        t0 = time.monotonic()
        cls.k = Cluster(3, 1)
        print(f"\n  3 masters + 3 replicas up in {time.monotonic() - t0:.1f} s", end=" ")

    @classmethod
    def tearDownClass(cls):
        cls.k.close()

    def test_a_kept_alive_lock_rides_a_manual_failover_out(self):
        k = self.k
        c = dlock.Client(k.url, connect_timeout=300, command_timeout=500)
        other = dlock.Client(k.url)
        self.addCleanup(c.close)
        self.addCleanup(other.close)
        m = 0
        name = k.name_on(m, "cl-fo")
        key = f"dlock:{{{name}}}"
        slot = k.slot_of(key)
        kept = Kept(c.acquire(name, 15000), 300)

        def acked():  # WAIT counts this connection's writes: one in the lock's slot
            k.nodes[m].cmd("SET", f"dlock:{{{name}}}:sync", "1")
            return k.nodes[m].cmd("WAIT", 1, 200) >= 1
        until(acked, 5, "the replica acknowledging the lock")
        until(lambda: k.replica_of(m) >= 0, 5, f"a replica of node {m} in sync")
        r = k.replica_of(m)
        # The replica takes over once it caught up; asked again if the
        # failover timed out (for want of votes).
        t0 = time.monotonic()
        for _ in range(3):
            k.nodes[r].cmd("CLUSTER", "FAILOVER")
            if wait_until(lambda: k.owner_of(slot, r) == r and k.owner_of(slot, m) == r, 7):
                break
        else:
            self.fail(f"CLUSTER FAILOVER of node {m} to node {r} did not finish")
        print(f"\n  node {r} serves slot {slot} {(time.monotonic() - t0) * 1000:.0f} ms after "
              "CLUSTER FAILOVER", end=" ")
        self.assertEqual(k.nodes[r].cmd("HGET", key, "t"), kept.lock.token)
        p0 = k.nodes[r].cmd("PTTL", key)
        until(lambda: k.nodes[r].cmd("PTTL", key) > p0, 3, "an extension on the new master")
        self.assertEqual(kept.calls, [])
        self.assertTrue(kept.lock.held)
        self.assertIsNone(other.try_acquire(name, 5000))
        kept.lock.release()
        self.assertEqual(k.nodes[r].cmd("EXISTS", key), 0)
        again = c.acquire(name, 5000)
        self.assertGreater(again.fence, kept.lock.fence)
        self.assertEqual(k.nodes[r].cmd("HGET", key, "t"), again.token)
        again.release()


if __name__ == "__main__":
    unittest.main()
