"""Real deployments for the topology tests (test_topology.py), built as
tests/topology/topo.c builds them for the C tests: every process a
redis-server on a free loopback port in a private directory, stopped by its
own PID (servers.Server). Plus LockChecks, the tests every deployment must
pass, and Kept / check_lost_async, what the lost-lock tests share."""
import asyncio
import os
import secrets
import subprocess
import threading
import time

import dlock
from servers import Server, free_port, wait_until

MASTER_NAME = "mymaster"
EPOCH_SHIFT = 40  # the fence's failover epoch starts at this bit (docs/FAILOVER.md)


def until(cond, timeout, what):
    """Poll cond() until true; AssertionError naming `what` after timeout s."""
    v = wait_until(cond, timeout=timeout)
    if not v:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
    return v


def woken_waiter(a, b, name, held):
    """b waits for name (10 s, ttl 5 s) behind a's held lock, which is
    released once b is queued. Returns what the waiter got ({"lock"} or
    {"err"}, and "at": when it returned, time.monotonic()) and when the
    release began."""
    got = {}

    def waiter():
        try:
            got["lock"] = b.wait(name, 10000, 5000)
        except dlock.DlockError as e:
            got["err"] = e
        got["at"] = time.monotonic()
    t = threading.Thread(target=waiter)
    t.start()
    until(lambda: a.inspect(name).waiters >= 1, 5, "the waiter queued")
    t0 = time.monotonic()
    held.release()
    t.join(15)
    assert not t.is_alive(), "the waiter did not return"
    return got, t0


def field(flat, name):
    """Field `name` of a flat [field, value, ...] reply."""
    for i in range(0, len(flat) - 1, 2):
        if flat[i] == name:
            return flat[i + 1]
    return None


def replicas_ack(master, n, timeout):
    """Until n replicas acknowledge master's writes (WAIT counts the
    acknowledgements of this connection's writes)."""
    def acked():
        master.cmd("SET", "topo-sync", "1")
        return master.cmd("WAIT", n, 200) >= n
    until(acked, timeout, f"{n} replica(s) acknowledging writes")


def _close_all(servers):
    for s in servers:
        s.close()


class Redlock:
    """n independent masters; url names them all."""

    def __init__(self, n=3):
        self.servers = []
        try:
            for _ in range(n):
                self.servers.append(Server())
        except BaseException:
            self.close()
            raise
        self.url = "redis://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def close(self):
        _close_all(self.servers)


class Sentinels:
    """A master, one replica in sync, and nsent sentinels that know both and
    each other up front (as a sentinel would have rewritten its own config:
    no waiting for hello messages); down-after 1 s and failover-timeout 3 s
    as the C tests use."""

    def __init__(self, nsent=3):
        self.sentinels = []
        self.master = self.replica = None
        try:
            repl = ["--repl-diskless-sync-delay", "0"]  # no 5 s wait for more replicas
            self.master = Server(repl)
            self.replica = Server(repl + ["--replicaof", "127.0.0.1", str(self.master.port)])
            until(lambda: "master_link_status:up" in self.replica.cmd("INFO", "replication"),
                  10, "the replica in sync")
            replicas_ack(self.master, 1, 10)
            self._start_sentinels(nsent)
            self.url = "redis-sentinel://" + ",".join(
                f"127.0.0.1:{s.port}" for s in self.sentinels) + "/" + MASTER_NAME

            def known():
                for s in self.sentinels:
                    m = s.cmd("SENTINEL", "master", MASTER_NAME)
                    if int(field(m, "num-slaves")) < 1 or \
                            int(field(m, "num-other-sentinels")) != nsent - 1:
                        return False
                return True
            until(known, 20, "the sentinels discovering each other")
        except BaseException:
            self.close()
            raise

    def _start_sentinels(self, n):
        for _ in range(3):
            ports = [free_port() for _ in range(n)]
            ids = [secrets.token_hex(20) for _ in range(n)]

            def args(i):
                def make(port, d):
                    conf = os.path.join(d, "sentinel.conf")
                    lines = [f"port {port}", "bind 127.0.0.1", "daemonize no", f'dir "{d}"',
                             f"logfile \"{os.path.join(d, 'sentinel.log')}\"",
                             f"sentinel myid {ids[i]}", "sentinel resolve-hostnames no",
                             f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2",
                             f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                             f"sentinel failover-timeout {MASTER_NAME} 3000",
                             f"sentinel parallel-syncs {MASTER_NAME} 1",
                             f"sentinel known-replica {MASTER_NAME} 127.0.0.1 {self.replica.port}"]
                    lines += [f"sentinel known-sentinel {MASTER_NAME} 127.0.0.1 {ports[j]} {ids[j]}"
                              for j in range(n) if j != i]
                    with open(conf, "w") as f:
                        f.write("\n".join(lines) + "\n")
                    return [conf, "--sentinel"]
                return make
            started = []
            try:
                for i in range(n):
                    started.append(Server(args=args(i), port=ports[i]))
                self.sentinels = started
                return
            except RuntimeError:
                _close_all(started)  # a port was taken: new ports
        raise RuntimeError("could not start the sentinels")

    def master_port(self, i):
        """The master's port as sentinel i names it (-1 if none)."""
        try:
            a = self.sentinels[i].cmd("SENTINEL", "get-master-addr-by-name", MASTER_NAME)
        except OSError:
            return -1
        return int(a[1]) if a else -1

    def config_epoch(self, i):
        return int(field(self.sentinels[i].cmd("SENTINEL", "master", MASTER_NAME), "config-epoch"))

    def wait_master(self, server, timeout):
        """Until every sentinel names server the master and it says ROLE master."""
        def named():
            if not all(self.master_port(i) == server.port for i in range(len(self.sentinels))):
                return False
            try:
                return server.cmd("ROLE")[0] == "master"
            except OSError:
                return False  # killed by the promotion: the next try reconnects
        until(named, timeout, f"the sentinels naming 127.0.0.1:{server.port} master")

    def close(self):
        _close_all(self.sentinels + [s for s in (self.replica, self.master) if s is not None])


class Cluster:
    """n masters with `replicas` replicas each (as tt_cluster_start_replicated
    does): `redis-cli --cluster create`, then until every node says
    cluster_state:ok, maps every slot and knows every replica as one
    (gossip: until then the masters refuse a replica's failover their
    vote), and every master's replicas acknowledge its writes."""

    def __init__(self, n=3, replicas=0):
        self.nodes = []
        try:
            for _ in range(n * (1 + replicas)):
                self.nodes.append(Server(["--cluster-enabled", "yes", "--cluster-config-file",
                                          "nodes.conf", "--cluster-node-timeout", "2000",
                                          "--repl-diskless-sync-delay", "0"]))
            subprocess.run(["redis-cli", "--cluster", "create",
                            *[f"127.0.0.1:{s.port}" for s in self.nodes],
                            "--cluster-replicas", str(replicas), "--cluster-yes"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30, check=True)
            self.url = "redis-cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.nodes)

            def ok():
                for s in self.nodes:
                    if "cluster_state:ok" not in s.cmd("CLUSTER", "INFO"):
                        return False
                    if sum(hi - lo + 1 for lo, hi, *_ in s.cmd("CLUSTER", "SLOTS")) != 16384:
                        return False
                    flags = [line.split()[2].split(",")
                             for line in s.cmd("CLUSTER", "NODES").splitlines() if line]
                    if sum("slave" in f or "replica" in f for f in flags) != n * replicas:
                        return False
                return True
            until(ok, 20, "the cluster ok on every node")
            for i, s in enumerate(self.nodes):
                mine = [r for r in s.cmd("CLUSTER", "SLOTS") if r[2][1] == s.port]
                if replicas and mine:  # a master: a key in its own slots, then WAIT
                    key = next(f"{{s{t}}}topo-sync" for t in range(100000)
                               if mine[0][0] <= self.slot_of(f"{{s{t}}}topo-sync") <= mine[0][1])

                    def acked(s=s, key=key):
                        s.cmd("SET", key, "1")
                        return s.cmd("WAIT", replicas, 200) >= replicas
                    until(acked, 10, f"the replicas of node {i} acknowledging writes")
        except BaseException:
            self.close()
            raise

    def replica_of(self, i):
        """Index of a replica of node i whose link to it is up, or -1."""
        for j, s in enumerate(self.nodes):
            info = s.cmd("INFO", "replication")
            if f"master_port:{self.nodes[i].port}\r" in info and "master_link_status:up" in info:
                return j
        return -1

    def slot_of(self, key):
        return self.nodes[0].cmd("CLUSTER", "KEYSLOT", key)

    def owner_of(self, slot, ask=0):
        """Index of the node serving slot, by node ask's CLUSTER SLOTS."""
        for lo, hi, master, *_ in self.nodes[ask].cmd("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return [s.port for s in self.nodes].index(master[1])
        return -1

    def name_on(self, want, tag):
        """A lock name whose keys live on node want."""
        for i in range(10000):
            name = f"{tag}-{i}"
            if self.owner_of(self.slot_of(f"dlock:{{{name}}}")) == want:
                return name
        raise AssertionError(f"no name on node {want}")

    def close(self):
        _close_all(self.nodes)


def cmd_calls(server, cmd):
    """Calls of cmd on server, from INFO commandstats (0 if none)."""
    for line in server.cmd("INFO", "commandstats").splitlines():
        if line.startswith(f"cmdstat_{cmd}:calls="):
            return int(line.split("=", 1)[1].split(",", 1)[0])
    return 0


class Kept:
    """lock kept alive (every interval ms, 0: ttl/3) with its on_lost calls
    recorded as (lock, error, time.monotonic()); `lost` is set at the first."""

    def __init__(self, lock, interval=0):
        self.lock = lock
        self.calls = []
        self.lost = threading.Event()
        lock.keepalive(interval, self._on_lost)

    def _on_lost(self, lock, err):
        self.calls.append((lock, err, time.monotonic()))
        self.lost.set()

    def stays_held(self, test, seconds, leases):
        """Healthy: over `seconds` (more than the ttl: several keepalive
        periods) on_lost is not called and the lock stays held; then each of
        leases() (the lease left on a server, PTTL) must be positive, which
        after more than a ttl shows the renewals arrived."""
        time.sleep(seconds)  # watching for a loss that must not come
        test.assertEqual(self.calls, [], "on_lost called on a healthy lock")
        test.assertTrue(self.lock.held)
        for pttl in leases():
            test.assertGreater(pttl, 0, f"the lease on a server after {seconds} s kept alive")

    def becomes_lost(self, test, t0, timeout, cls=None):
        """on_lost is called once within timeout s of t0 (time.monotonic())
        with this lock and a DlockError (of cls, when given); the lock then
        is not held. Returns how long it took."""
        test.assertTrue(self.lost.wait(timeout - (time.monotonic() - t0)),
                        f"on_lost not called within {timeout} s")
        lock, err, at = self.calls[0]
        test.assertIs(lock, self.lock)
        test.assertIsInstance(err, cls or dlock.DlockError)
        test.assertIn(lock.name, str(err))
        test.assertFalse(self.lock.held)
        time.sleep(0.05)  # room for a second call, which must not come
        test.assertEqual(len(self.calls), 1)
        return at - t0


def check_lost_async(test, client, name, leases, lose, cls=None):
    """The asyncio flavour of Kept: a lock from acquire_async kept alive by
    the engine (ttl 1500 ms, every 500 ms) must not be reported lost over
    2.2 s, and leases() must then all be positive; after lose() on_lost
    must run once, in the loop, within 3 s, with a DlockError (of cls, when
    given), and the lock not be held. Returns the lock (released or not: the
    caller decides) and how long it took. Closes client at the end (the
    async client is bound to this loop)."""
    async def main():
        calls = []
        lost = asyncio.Event()
        loop_thread = threading.get_ident()

        def on_lost(lk, err):
            calls.append((lk, err, time.monotonic(), threading.get_ident()))
            lost.set()
        lock = await client.acquire_async(name, 1500)
        lock.keepalive(0, on_lost)
        await asyncio.sleep(2.2)  # watching for a loss that must not come
        test.assertEqual(calls, [], "on_lost called on a healthy lock")
        test.assertTrue(lock.held)
        for pttl in leases():
            test.assertGreater(pttl, 0)
        t0 = time.monotonic()
        lose()
        await asyncio.wait_for(lost.wait(), 3)
        lk, err, at, thread = calls[0]
        test.assertIs(lk, lock)
        test.assertIsInstance(err, cls or dlock.DlockError)
        test.assertEqual(thread, loop_thread)
        test.assertFalse(lock.held)
        await asyncio.sleep(0.05)  # room for a second call, which must not come
        test.assertEqual(len(calls), 1)
        client.close()
        return at - t0
    return asyncio.run(asyncio.wait_for(main(), 20))


class LockChecks:
    """The tests every deployment must pass; mix into a TestCase whose class
    sets `url`. A waiter must get the lock within WAKE_S of the release
    beginning in most of three rounds (the wake-up: without it a queued
    waiter re-attempts only after its slice, 250 ms on Redlock, 2 s else)
    and within WAKE_MAX_S in every round."""
    WAKE_S = 0.1
    WAKE_MAX_S = 0.5
    PREFIX = "t"

    def client(self, **options):
        c = dlock.Client(self.url, owner_label=f"{self.PREFIX}-test", **options)
        self.addCleanup(c.close)
        return c

    def name(self, what):
        return f"{self.PREFIX}-{what}"

    def test_acquire_and_release(self):
        c = self.client()
        lock = c.acquire(self.name("ar"), 5000)
        self.assertTrue(lock.held)
        self.assertRegex(lock.token, r"^[0-9a-f]{32}$")
        self.assertGreater(lock.fence, 0)
        self.assertTrue(c.is_locked(self.name("ar")))
        lock.release()
        self.assertFalse(lock.held)
        self.assertFalse(c.is_locked(self.name("ar")))
        with self.assertRaises(dlock.NotHeld):
            lock.release()

    def test_try_acquire_on_a_held_lock_is_none(self):
        a, b = self.client(), self.client()
        held = a.acquire(self.name("try"), 5000)
        self.assertIsNone(b.try_acquire(self.name("try"), 5000))
        held.release()
        lock = b.try_acquire(self.name("try"), 5000)
        self.assertIsNotNone(lock)
        self.assertGreater(lock.fence, held.fence)
        lock.release()

    def test_wait_is_woken_by_the_release(self):
        # The lease (20 s) and the wait (10 s) are long: only the hand-over
        # can end the wait soon after the release.
        a, b = self.client(), self.client()
        name = self.name("wait")
        took = []
        for rnd in range(3):
            held = a.acquire(name, 20000)
            got, t0 = woken_waiter(a, b, name, held)
            self.assertNotIn("err", got)
            took.append(got["at"] - t0)
            print(f"\n  round {rnd}: woken {took[-1] * 1000:.1f} ms after the release began",
                  end=" ")
            self.assertLess(took[-1], self.WAKE_MAX_S)
            self.assertGreater(got["lock"].fence, held.fence)
            got["lock"].release()
        self.assertLess(sorted(took)[1], self.WAKE_S, took)

    def test_async_api_wait_woken_by_release(self):
        # The async API has a C client of its own, driven by the loop
        # (discovery included): the same hand-over through it.
        a, b = self.client(), self.client()
        name = self.name("async")

        async def main():
            held = await a.acquire_async(name, 20000)
            w = asyncio.ensure_future(b.wait_async(name, 10000, 5000))
            while (await a.inspect_async(name)).waiters < 1:
                await asyncio.sleep(0.01)
            t0 = time.monotonic()
            await held.release_async()
            lock = await w
            took = time.monotonic() - t0
            self.assertLess(took, self.WAKE_MAX_S)
            self.assertGreater(lock.fence, held.fence)
            self.assertIsNone(await a.try_acquire_async(name, 1000))
            await lock.extend_async(8000)
            self.assertTrue(6000 < (await a.inspect_async(name)).pttl_ms <= 8000)
            await lock.release_async()
            self.assertFalse(await a.is_locked_async(name))
            a.close()
            b.close()
        asyncio.run(asyncio.wait_for(main(), 20))

    def test_extend_sets_the_remaining_lease(self):
        c = self.client()
        lock = c.acquire(self.name("ext"), 1500)
        lock.extend(20000)
        pttl = c.inspect(self.name("ext")).pttl_ms
        self.assertTrue(15000 < pttl <= 20000, pttl)
        lock.release()
        with self.assertRaises(dlock.NotHeld):
            lock.extend(1000)

    def test_fences_rise_strictly_across_acquisitions_and_clients(self):
        cs = [self.client(), self.client()]
        fences = []
        for i in range(6):
            lock = cs[i % 2].acquire(self.name("fence"), 5000)
            fences.append(lock.fence)
            lock.release()
        for prev, f in zip(fences, fences[1:]):
            self.assertGreater(f, prev, fences)

    def test_inspect_shows_the_holder_then_a_free_lock(self):
        c = self.client()
        name = self.name("insp")
        lock = c.acquire(name, 8000)
        h = c.inspect(name)
        self.assertTrue(h.locked)
        self.assertEqual(h.token, lock.token)
        self.assertEqual(h.fence, lock.fence)
        self.assertEqual(h.label, f"{self.PREFIX}-test")
        self.assertEqual(h.pid, os.getpid())
        self.assertTrue(6000 < h.pttl_ms <= 8000, h.pttl_ms)
        self.assertEqual(h.waiters, 0)
        lock.release()
        f = c.inspect(name)
        self.assertFalse(f.locked)
        self.assertEqual(f.pttl_ms, -1)
        self.assertEqual(f.fence, lock.fence)  # the last one issued


__all__ = ["Redlock", "Sentinels", "Cluster", "Kept", "check_lost_async", "LockChecks",
           "replicas_ack", "cmd_calls", "until", "EPOCH_SHIFT"]
