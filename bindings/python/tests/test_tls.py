"""TLS through the package: rediss://, rediss-sentinel:// and
rediss-cluster://, against deployments built as tests/tls/tls_env.c builds
them for the C tests, with the certificates of the repository's
tests/tls/mkcerts.sh: one redis-server with a TLS port, a TLS master with a
sentinel that talks TLS to it and to clients, and three masters with
--tls-cluster yes joined by CLUSTER MEET. Every server keeps a plain port
for the test's own checks (servers.Server.cmd)."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import dlock
from servers import Server, free_port
from topology import until, woken_waiter

MKCERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests",
                       "tls", "mkcerts.sh")


def tls_server(certs, extra=lambda tls_port: []):
    """A redis-server with a TLS port next to its plain one (server.crt, the
    test CA, no client certificates asked for), plus extra(tls_port).
    Returns (server, tls_port); a TLS port taken meanwhile is tried again
    with another."""
    for _ in range(3):
        tls_port = free_port()
        try:
            return Server(["--tls-port", str(tls_port),
                           "--tls-cert-file", os.path.join(certs, "server.crt"),
                           "--tls-key-file", os.path.join(certs, "server.key"),
                           "--tls-ca-cert-file", os.path.join(certs, "ca.crt"),
                           "--tls-auth-clients", "no", *extra(tls_port)]), tls_port
        except RuntimeError:
            pass
    raise RuntimeError("could not start a TLS redis-server")


@unittest.skipUnless(os.path.exists(MKCERTS) and shutil.which("openssl"),
                     "needs tests/tls/mkcerts.sh (the repository) and the openssl tool")
class Tls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = tempfile.mkdtemp(prefix="dlock-py-tls-")
        subprocess.run(["sh", MKCERTS, cls.certs], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                       check=True)
        cls.ca = "tls_ca=" + os.path.join(cls.certs, "ca.crt")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, ignore_errors=True)

    def started(self, server):
        self.addCleanup(server.close)
        return server

    def hand_over(self, url, name, server):
        """A holder, a waiter queued behind it and woken by its release (the
        wake-up subscription over TLS too); server (a plain connection) must
        hold the lock."""
        a = dlock.Client(url, connect_timeout=1000, command_timeout=1000)
        b = dlock.Client(url, connect_timeout=1000, command_timeout=1000)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        key = f"dlock:{{{name}}}"
        held = a.acquire(name, 20000)
        self.assertEqual(server.cmd("HGET", key, "t"), held.token)
        self.assertIsNone(b.try_acquire(name, 5000))
        got, t0 = woken_waiter(a, b, name, held)
        self.assertIn("lock", got, got)
        # Woken by the hand-over: far below the 2 s slice a queued waiter
        # sleeps without it.
        self.assertLess(got["at"] - t0, 1.0)
        self.assertGreater(got["lock"].fence, held.fence)
        self.assertEqual(server.cmd("HGET", key, "t"), got["lock"].token)
        got["lock"].release()
        self.assertEqual(server.cmd("EXISTS", key), 0)

    def test_rediss_one_server(self):
        srv, port = tls_server(self.certs)
        self.started(srv)
        self.hand_over(f"rediss://127.0.0.1:{port}?{self.ca}", "tls-one", srv)
        # A CA that did not sign the server: refused, not a hang.
        c = dlock.Client(f"rediss://127.0.0.1:{port}?tls_ca="
                         + os.path.join(self.certs, "other-ca.crt"), connect_timeout=1000)
        self.addCleanup(c.close)
        t0 = time.monotonic()
        with self.assertRaises(dlock.DlockError) as cm:
            c.try_acquire("tls-one", 1000)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertRegex(str(cm.exception), "(?i)certificate|verif")

    def test_rediss_sentinel(self):
        # A TLS master and one sentinel (quorum 1) that monitors it over
        # TLS (tls-replication yes) and serves clients on a TLS port too,
        # as te_sentinel_start does.
        master, master_tls = tls_server(self.certs)
        self.started(master)
        c = self.certs
        for _ in range(3):
            tls_port = free_port()

            def make(port, d):
                conf = os.path.join(d, "sentinel.conf")
                with open(conf, "w") as f:
                    f.write("\n".join([
                        f"port {port}", "bind 127.0.0.1", "daemonize no", f'dir "{d}"',
                        f"logfile \"{os.path.join(d, 'sentinel.log')}\"",
                        f"tls-port {tls_port}",
                        f"tls-cert-file {os.path.join(c, 'server.crt')}",
                        f"tls-key-file {os.path.join(c, 'server.key')}",
                        f"tls-ca-cert-file {os.path.join(c, 'ca.crt')}",
                        "tls-auth-clients no", "tls-replication yes",
                        "sentinel resolve-hostnames no",
                        f"sentinel monitor mymaster 127.0.0.1 {master_tls} 1",
                        "sentinel down-after-milliseconds mymaster 2000", ""]))
                return [conf, "--sentinel"]
            try:
                sentinel = self.started(Server(args=make, port=free_port()))
                break
            except RuntimeError:
                pass  # a port was taken: new ports
        else:
            self.fail("could not start the TLS sentinel")

        def sees_master():
            m = sentinel.cmd("SENTINEL", "master", "mymaster")
            f = dict(zip(m[::2], m[1::2]))
            return f.get("role-reported") == "master" and f.get("flags") == "master"
        until(sees_master, 10, "the sentinel seeing the master over TLS")
        self.hand_over(f"rediss-sentinel://127.0.0.1:{tls_port}/mymaster?{self.ca}", "tls-sn",
                       master)

    def test_rediss_cluster(self):
        # Three masters with --tls-cluster yes (the bus is TLS too), slots
        # split evenly with CLUSTER ADDSLOTSRANGE and joined with CLUSTER
        # MEET over the plain ports, as te_cluster_start does.
        n = 3
        nodes, tls, bus = [], [], []
        for i in range(n):
            bus.append(free_port())
            s, t = tls_server(self.certs, lambda _, b=bus[i]: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000", "--tls-cluster", "yes",
                "--cluster-port", str(b)])
            nodes.append(self.started(s))
            tls.append(t)
            s.cmd("CLUSTER", "ADDSLOTSRANGE", 16384 * i // n, 16384 * (i + 1) // n - 1)
        for i in range(1, n):
            nodes[0].cmd("CLUSTER", "MEET", "127.0.0.1", tls[i], bus[i])

        def ok():
            for s in nodes:
                info = s.cmd("CLUSTER", "INFO")
                if "cluster_state:ok" not in info or f"cluster_known_nodes:{n}\r" not in info:
                    return False
            return True
        until(ok, 20, "the TLS cluster ok on every node")
        url = "rediss-cluster://" + ",".join(f"127.0.0.1:{p}" for p in tls) + "?" + self.ca

        def owner(name):
            # Over a plain connection CLUSTER SLOTS names the plain ports.
            slot = nodes[0].cmd("CLUSTER", "KEYSLOT", f"dlock:{{{name}}}")
            for lo, hi, master, *_ in nodes[0].cmd("CLUSTER", "SLOTS"):
                if lo <= slot <= hi:
                    return [s.port for s in nodes].index(master[1])
            return -1
        for want in range(n):
            name = next(f"tls-cl-{want}-{i}" for i in range(10000)
                        if owner(f"tls-cl-{want}-{i}") == want)
            self.hand_over(url, name, nodes[want])


if __name__ == "__main__":
    unittest.main()
