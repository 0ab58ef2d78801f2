"""The cross-implementation test (issue 13): the C library, the dlock tool,
the Node binding and the Python binding take turns on ONE lock name against
one real redis-server, all at the same time.

  turns.py --c TURNS_C --cli DLOCK --node-pkg DIR --python VENV_PYTHON
           [--rounds K] [--hold MS] [--deadline SECONDS]

It starts a private redis-server on a free 127.0.0.1 port, then four
participants, each K rounds of: wait for the lock, SET a marker key NX
(fails if anyone else is inside), hold it HOLD ms, DEL it, release:
  c       tests/bindings/turns_c.c (libdlock.so, dlock_wait)
  tool    `dlock run` per round; its command reads $DLOCK_FENCE (turns_py.py)
  node    bindings/node's waitForLock and handle.fence (turns_node.js)
  python  bindings/python's Client.wait and lock.fence (turns_py.py)
A start barrier in Redis lines them up once all are connected. Each writes
one record per round: impl, round, fence, CLOCK_MONOTONIC time once held
(t0) and before the release (t1), and whether the marker was free.

Checked afterwards:
  - every participant exited 0 and recorded all K rounds;
  - no marker was found taken (nobody was inside at the same time);
  - fences are unique and, ordered by t0, strictly rising;
  - no two holding intervals [t0, t1] overlap;
  - the turns interleave: every participant's first turn comes before any
    participant's last turn ends (they ran concurrently, not one by one);
  - the server's fence counter equals the largest fence seen.
Exit 0 if all hold, 1 if not (with the reason), 2 on bad usage. Every wait
has a deadline; on --deadline (default 240 s) the participants' process
groups are killed by PID and the test fails.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from turns_py import Resp  # noqa: E402  (the same small RESP client)

NAME = "turns"
IMPLS = ("c", "tool", "node", "python")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(work):
    """A redis-server on a free port: (Popen, port)."""
    for _ in range(5):
        port = free_port()
        p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", work],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 5
        while time.monotonic() < end and p.poll() is None:
            try:
                if Resp(port)("PING") == "PONG":
                    return p, port
            except OSError:
                time.sleep(0.02)
        p.kill()
        p.wait()
    sys.exit("turns: cannot start redis-server")


def commands(a, url, port, work):
    k, h = str(a.rounds), str(a.hold)
    out = {i: os.path.join(work, f"{i}.rec") for i in IMPLS}
    py = os.path.join(HERE, "turns_py.py")
    return out, {
        "c": [a.c, url, str(port), NAME, k, h, out["c"]],
        "tool": [sys.executable, py, "tool", a.cli, url, str(port), NAME, k, h, out["tool"]],
        "node": ["node", os.path.join(HERE, "turns_node.js"), a.node_pkg, url, str(port), NAME,
                 k, h, out["node"]],
        "python": [a.python, py, "binding", url, str(port), NAME, k, h, out["python"]],
    }


def run_all(cmds, r, work, deadline):
    """Start every participant (each in a process group of its own), open
    the barrier once all joined, wait for them. {impl: exit status}; None
    for one killed at the deadline."""
    procs = {}
    for impl, cmd in cmds.items():
        log = open(os.path.join(work, f"{impl}.log"), "w")
        procs[impl] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        log.close()
    end = time.monotonic() + deadline
    while int(r("GET", "turns:ready") or 0) < len(procs):
        if time.monotonic() > end or any(p.poll() is not None for p in procs.values()):
            break
        time.sleep(0.01)
    r("SET", "turns:go", "1")
    status = {}
    for impl, p in procs.items():
        try:
            status[impl] = p.wait(timeout=max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            status[impl] = None
    for impl, p in procs.items():  # the group of a participant we started, by its PID
        if status[impl] is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    return status


def read_records(out):
    recs = []
    for impl, path in out.items():
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) != 6 or w[0] != impl:
                    raise ValueError(f"{path}: bad record {line!r}")
                recs.append((int(w[3]), int(w[4]), int(w[2]), w[0], int(w[1]), w[5]))
    recs.sort()
    return recs  # (t0, t1, fence, impl, round, marker), by t0


def check(recs, status, rounds, counter):
    """The list of what is wrong (empty: all good)."""
    bad = []
    for impl in IMPLS:
        got = sorted(r[4] for r in recs if r[3] == impl)
        if status.get(impl) != 0:
            bad.append(f"{impl}: exited {status.get(impl)} (None: killed at the deadline)")
        if got != list(range(rounds)):
            bad.append(f"{impl}: recorded rounds {got[:5]}... ({len(got)}), not 0..{rounds - 1}")
    for t0, t1, fence, impl, rnd, marker in recs:
        if marker != "ok":
            bad.append(f"{impl} round {rnd} (fence {fence}): the marker was taken: "
                       f"someone else was inside")
    fences = [r[2] for r in recs]
    if len(set(fences)) != len(fences):
        bad.append("fences are not unique")
    for a, b in zip(recs, recs[1:]):
        if b[2] <= a[2]:
            bad.append(f"fence not rising: {a[3]} #{a[4]} fence {a[2]} then {b[3]} #{b[4]} "
                       f"fence {b[2]}")
        if b[0] <= a[1]:
            bad.append(f"overlap: {a[3]} #{a[4]} held until {a[1]}, {b[3]} #{b[4]} from {b[0]}")
    firsts = [min(r[0] for r in recs if r[3] == i) for i in IMPLS if any(r[3] == i for r in recs)]
    lasts = [max(r[1] for r in recs if r[3] == i) for i in IMPLS if any(r[3] == i for r in recs)]
    if firsts and max(firsts) >= min(lasts):
        bad.append("the participants did not run concurrently (one finished before another began)")
    if fences and counter != max(fences):
        bad.append(f"the server's fence counter is {counter}, the largest fence seen {max(fences)}")
    return bad


def summary(recs):
    seq = "".join({"c": "C", "tool": "T", "node": "N", "python": "P"}[r[3]] for r in recs)
    changes = sum(1 for a, b in zip(recs, recs[1:]) if a[3] != b[3])
    span = (recs[-1][1] - recs[0][0]) / 1e9 if recs else 0
    print(f"turns: {len(recs)} turns in {span:.2f} s, {changes} hand-overs between "
          f"implementations, fences {recs[0][2] if recs else '-'}..{recs[-1][2] if recs else '-'}")
    print(f"turns: order (C c, T tool, N node, P python): {seq}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--c", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--node-pkg", required=True)
    ap.add_argument("--python", required=True)
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--hold", type=int, default=5)
    ap.add_argument("--deadline", type=float, default=240)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="dlock-turns-")
    srv, port = start_redis(work)
    ok = False
    try:
        r = Resp(port)
        out, cmds = commands(a, f"redis://127.0.0.1:{port}", port, work)
        status = run_all(cmds, r, work, a.deadline)
        recs = read_records(out)
        counter = int(r("GET", "dlock:{%s}:fence" % NAME) or 0)
        bad = check(recs, status, a.rounds, counter)
        summary(recs)
        for b in bad[:20]:
            print(f"FAIL: {b}")
        ok = not bad
        if not ok:
            for impl in IMPLS:
                with open(os.path.join(work, f"{impl}.log")) as f:
                    print(f"--- {impl} output:\n{f.read()[-2000:]}")
    finally:
        srv.terminate()
        srv.wait()
        shutil.rmtree(work, ignore_errors=True)
    print("turns: PASS" if ok else "turns: FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
