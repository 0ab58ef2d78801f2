"""Run the Python package's tests: python3 tests/run.py [unittest args].

A watchdog ends a hung run after DLOCK_TEST_TIMEOUT seconds (default 240)
with every thread's traceback; the redis-servers the tests started die
with this process (servers.py)."""
import faulthandler
import os
import sys
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
faulthandler.dump_traceback_later(int(os.environ.get("DLOCK_TEST_TIMEOUT", "240")), exit=True)
argv = sys.argv[1:] or ["discover", "-s", here, "-t", here, "-v"]
unittest.main(module=None, argv=["run.py"] + argv)
