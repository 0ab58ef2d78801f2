"""The Python examples of the READMEs run, against a private server.

Every ```python block of README.md (repository root) and of
bindings/python/README.md runs as a script with DLOCK_URL pointing at the
test's redis-server, unless the line before it is
`<!-- notest: REASON -->`."""
import os
import re
import subprocess
import sys
import unittest

from servers import ServerTest

HERE = os.path.dirname(os.path.abspath(__file__))
READMES = [os.path.join(HERE, "..", "README.md"), os.path.join(HERE, "..", "..", "..", "README.md")]


def python_blocks(path):
    """(line, code) of each ```python block not marked notest."""
    blocks, lines = [], open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            start, code = i + 1, []
            notest = i > 0 and re.match(r"<!-- notest: .+ -->", lines[i - 1].strip())
            i += 1
            while lines[i].strip() != "```":
                code.append(lines[i])
                i += 1
            if not notest:
                blocks.append((start, "\n".join(code) + "\n"))
        i += 1
    return blocks


class Readme(ServerTest):
    def test_python_examples_run(self):
        ran = 0
        for path in READMES:
            if not os.path.exists(path):
                continue
            for line, code in python_blocks(path):
                with self.subTest(readme=os.path.relpath(path, HERE), line=line):
                    env = dict(os.environ, DLOCK_URL=self.srv.url)
                    r = subprocess.run([sys.executable, "-c", code], env=env, timeout=60,
                                       capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, f"{path}:{line}\n{r.stdout}{r.stderr}")
                    ran += 1
        self.assertGreater(ran, 0)


if __name__ == "__main__":
    unittest.main()
