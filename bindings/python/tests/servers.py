"""Real redis-server processes for the tests: each on a free loopback port,
in a private directory, stopped by its own PID (never by name).

Server.cmd() speaks just enough RESP to look at what dlock left in Redis
(ZCARD of a wait queue, PTTL of a lock key) without another dependency.
"""
import ctypes
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def _die_with_parent():
    """In the child: SIGKILL it when the test process dies, however it dies
    (PR_SET_PDEATHSIG), so a killed or timed-out run leaves no server."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port():
    """A free 127.0.0.1 port below the kernel's ephemeral range, with room
    for a cluster bus (port + 10000) below it too: an ephemeral port, once
    closed, may become the local port of any outgoing connection of a test
    running alongside, and a server started (or restarted) on it would then
    fail to bind."""
    low, high = 10000, _ephemeral_low() - 10000
    for _ in range(500):
        if high <= low:
            break
        port = random.randrange(low, high)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free 127.0.0.1 port below the ephemeral range")


def wait_until(cond, timeout=5.0, step=0.01):
    """Poll cond() until it is true or timeout seconds pass; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Resp:
    """One connection; not to be shared between threads."""

    def __init__(self, port):
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self._file = self._sock.makefile("rb")

    def cmd(self, *args):
        """Run one command; returns int, str, None, list, or raises RuntimeError."""
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self._sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self._file.readline()
        if not line:
            raise ConnectionResetError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            return self._file.read(n + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"bad reply {line!r}")

    def close(self):
        self._sock.close()


class Server:
    """redis-server on a free loopback port, in a private directory.

    extra: more arguments (e.g. ["--replicaof", "127.0.0.1", "6379"]);
    args(port, dir), if given, makes the whole argument list instead (a
    sentinel: its config file and --sentinel); port, if given, is the one
    port tried (the other sentinels were told it)."""

    def __init__(self, extra=(), args=None, port=None):
        self.dir = tempfile.mkdtemp(prefix="dlock-py-")
        self.proc = None
        self._sock = None
        for _ in range(1 if port else 5):  # a free port may be taken before the server binds it
            self.port = port or free_port()
            argv = args(self.port, self.dir) if args is not None else [
                "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--logfile", os.path.join(self.dir, "redis.log"), *extra]
            self.proc = subprocess.Popen(
                [REDIS_SERVER, *argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent)
            if wait_until(self._ping, timeout=5.0) and self.proc.poll() is None:
                return
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        raise RuntimeError("could not start redis-server")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def _ping(self):
        if self.proc.poll() is not None:
            return True  # exited: let the caller find out
        try:
            return self.cmd("PING") == "PONG"
        except OSError:
            self._sock = None
            return False

    def cmd(self, *args):
        """Run one command on the server (see Resp.cmd). A connection that
        failed (the server closed it: a sentinel promoting a replica kills
        its clients) is made again by the next call."""
        if self._sock is None:
            self._sock = Resp(self.port)
        try:
            return self._sock.cmd(*args)
        except OSError:
            self._sock.close()
            self._sock = None
            raise

    def stop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # our child, by its PID
            self.proc.wait(10)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ServerTest(unittest.TestCase):
    """One redis-server for the class; a fresh database for each test."""
    servers = 1

    @classmethod
    def setUpClass(cls):
        cls.srvs = []
        try:
            for _ in range(cls.servers):
                cls.srvs.append(Server())
        except BaseException:
            for s in cls.srvs:
                s.close()
            raise
        cls.srv = cls.srvs[0]

    @classmethod
    def tearDownClass(cls):
        for s in cls.srvs:
            s.close()

    def setUp(self):
        for s in self.srvs:
            s.cmd("FLUSHALL")

    def key(self, name, suffix=""):
        return f"dlock:{{{name}}}{suffix}"
