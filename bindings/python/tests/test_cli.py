"""Python and the dlock tool on the same names: the same keys, tokens,
queue and fences (built from this repository; DLOCK_CLI names it)."""
import asyncio
import json
import os
import subprocess
import unittest

import dlock
from servers import ServerTest

CLI = os.environ.get("DLOCK_CLI")


@unittest.skipUnless(CLI and os.access(CLI, os.X_OK), "DLOCK_CLI (the dlock tool) not given")
class WithTheTool(ServerTest):
    def setUp(self):
        super().setUp()
        self.c = dlock.Client(self.srv.url)

    def tool(self, *args):
        return subprocess.run([CLI, "--url", self.srv.url, *args], capture_output=True,
                              text=True, timeout=30)

    def test_a_lock_held_by_the_tool_blocks_python(self):
        r = self.tool("acquire", "--ttl", "60000", "shared")
        self.assertEqual(r.returncode, 0, r.stderr)
        token, fence = r.stdout.split()
        self.assertIsNone(self.c.try_acquire("shared", 5000))
        with self.assertRaises(dlock.Timeout):
            self.c.wait("shared", 300, 5000)
        h = self.c.inspect("shared")
        self.assertEqual((h.token, h.fence), (token, int(fence)))

        async def main():
            waiter = asyncio.ensure_future(self.c.wait_async("shared", 10000, 5000))
            while self.srv.cmd("ZCARD", self.key("shared", ":q")) != 1:
                await asyncio.sleep(0.01)
            r = await asyncio.create_subprocess_exec(CLI, "--url", self.srv.url, "release",
                                                     "shared", token)
            self.assertEqual(await r.wait(), 0)
            lock = await waiter  # handed over by the tool's release (FIFO queue)
            self.assertEqual(lock.fence, int(fence) + 1)
            await lock.release_async()
        asyncio.run(asyncio.wait_for(main(), 30))

    def test_a_lock_held_by_python_blocks_the_tool(self):
        lock = self.c.acquire("py", 30000)
        r = self.tool("acquire", "-n", "py")
        self.assertEqual(r.returncode, 1, r.stderr)
        r = self.tool("status", "--json", "py")
        st = json.loads(r.stdout)
        self.assertEqual((st["locked"], st["token"], st["fence"], st["pid"]),
                         (True, lock.token, lock.fence, os.getpid()))
        lock.release()
        r = self.tool("acquire", "-n", "py")
        self.assertEqual(r.returncode, 0, r.stderr)
        token, fence = r.stdout.split()
        self.assertEqual(int(fence), lock.fence + 1)
        self.c.release_token("py", token)  # a token from the tool, released by Python
        self.assertFalse(self.c.is_locked("py"))


if __name__ == "__main__":
    unittest.main()
