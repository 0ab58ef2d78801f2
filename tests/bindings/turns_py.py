"""Participants of the cross-implementation test (tests/bindings/turns.py)
written in Python:

  turns_py.py binding URL PORT NAME ROUNDS HOLD_MS OUT
      the Python binding: ROUNDS times client.wait(NAME), hold, release
  turns_py.py tool CLI URL PORT NAME ROUNDS HOLD_MS OUT
      the dlock tool: ROUNDS times `dlock run -w 60 NAME -- turns_py.py held ...`
  turns_py.py held PORT IMPL ROUND HOLD_MS OUT
      the command under `dlock run`: the fence comes from $DLOCK_FENCE

Every round appends one record to OUT:

  <impl> <round> <fence> <t0_ns> <t1_ns> <marker>

t0 once the lock is held, t1 before it is released, both CLOCK_MONOTONIC
(time.monotonic_ns, the clock the C and Node participants read); marker is
"ok" if SET turns:holder NX succeeded (nobody else inside), else "taken".
binding and tool first join the start barrier (INCR turns:ready, then wait
for turns:go). The marker and barrier go through the small RESP client
below, so that this file needs nothing but the standard library (and, for
`binding`, the dlock package).
"""
import os
import socket
import subprocess
import sys
import time


class Resp:
    """Just enough of a Redis client: commands as RESP arrays, replies that
    are not arrays."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))
        line = self.f.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2].decode()
        return rest.decode()


def barrier(r):
    r("INCR", "turns:ready")
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if r("EXISTS", "turns:go"):
            return
        time.sleep(0.002)
    raise TimeoutError("no start signal within 60 s")


def hold(r, impl, rnd, hold_ms):
    """Inside the lock: (t0, t1, marker) as described above."""
    t0 = time.monotonic_ns()
    mine = r("SET", "turns:holder", f"{impl} {rnd}", "NX") == "OK"
    time.sleep(hold_ms / 1000)
    if mine:
        r("DEL", "turns:holder")
    return t0, time.monotonic_ns(), "ok" if mine else "taken"


def binding(url, port, name, rounds, hold_ms, out):
    import dlock
    r = Resp(port)
    client = dlock.Client(url, owner_label="turns-python")
    barrier(r)
    with open(out, "w", buffering=1) as f:
        for i in range(rounds):
            lock = client.wait(name, 60000, 10000)
            t0, t1, marker = hold(r, "python", i, hold_ms)
            lock.release()
            f.write(f"python {i} {lock.fence} {t0} {t1} {marker}\n")


def tool(cli, url, port, name, rounds, hold_ms, out):
    barrier(Resp(port))
    open(out, "w").close()
    for i in range(rounds):
        cmd = [cli, "--url", url, "run", "-w", "60", "-l", "turns-tool", name, "--",
               sys.executable, os.path.abspath(__file__), "held", str(port), "tool", str(i),
               str(hold_ms), out]
        rc = subprocess.run(cmd, timeout=120).returncode
        if rc != 0:
            sys.exit(f"turns_py tool: round {i}: dlock run exited {rc}")


def held(port, impl, rnd, hold_ms, out):
    fence = os.environ["DLOCK_FENCE"]
    t0, t1, marker = hold(Resp(port), impl, rnd, hold_ms)
    with open(out, "a") as f:
        f.write(f"{impl} {rnd} {fence} {t0} {t1} {marker}\n")


def main(argv):
    usage = __doc__.split("\n\n")[1]
    try:
        if argv[0] == "binding" and len(argv) == 7:
            binding(argv[1], int(argv[2]), argv[3], int(argv[4]), int(argv[5]), argv[6])
        elif argv[0] == "tool" and len(argv) == 8:
            tool(argv[1], argv[2], int(argv[3]), argv[4], int(argv[5]), int(argv[6]), argv[7])
        elif argv[0] == "held" and len(argv) == 6:
            held(int(argv[1]), argv[2], int(argv[3]), int(argv[4]), argv[5])
        else:
            sys.exit("usage:\n" + usage)
    except IndexError:
        sys.exit("usage:\n" + usage)


if __name__ == "__main__":
    main(sys.argv[1:])
