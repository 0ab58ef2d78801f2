#!/usr/bin/env python3
"""cited_files.py - every file a comment or a document cites exists.

    python3 cited_files.py SOURCE_DIR

A comment that cites a file that does not exist is a bug (a file renamed
or split, its old name left behind). Two kinds of citation are checked, in
the sources, scripts, build files and documents of the tree (not in
node_modules, build directories or .git):
  - a path under one of the tree's top folders ("src/net/conn.c",
    "docs/PROTOCOL.md"): it must exist from the top, or from the citing
    file's folder or its binding's folder (bindings/node, bindings/python);
  - a bare C file name in a C file, a build file, a script or a document
    ("conn.c", "engine.h", "PROTOCOL.md"; not on an #include line, nor in a document's
    code block, where it names the reader's own file): some file of the
    tree must have that name, unless it is a header of a library or system
    (EXTERNAL).
A placeholder ("tests/unit/test_NAME.c") is not a citation.
Prints each missing file with the citing file and line; exits 1 if any.
"""
import os
import re
import sys

TOP = ("src", "tests", "docs", "bench", "cli", "include", "man", "bindings",
       "fuzz", "scripts", "cmake", ".ci")
SKIP_DIRS = {".git", "node_modules", "__pycache__", "venv", ".venv"}
# Headers of hiredis, OpenSSL, libuv, libevent, Node, CPython and libc that
# comments name without a folder.
EXTERNAL = {"hiredis.h", "async.h", "read.h", "sds.h", "napi.h", "node_api.h",
            "uv.h", "event.h", "ssl.h", "pthread.h", "netdb.h", "poll.h",
            "errno.h", "signal.h", "string.h", "stdio.h", "stdlib.h", "unistd.h"}
EXTS = r"(?:c|h|md|sh|py|pyi|js|mjs|ts|lua\.h|gyp|txt|json|1)"
PATH_RE = re.compile(r"(?<![\w./$-])((?:%s)/[\w./-]*?\.%s)(?![\w/])" % (
    "|".join(re.escape(t) for t in TOP), EXTS))
BARE_RE = re.compile(r"(?<![\w./$<-])([a-z][a-z0-9_]{2,}\.[ch]|[A-Z][A-Z0-9_]+\.md)(?![\w/.(])")
PLACEHOLDER_RE = re.compile(r"_[A-Z]+\.")
BARE_IN = (".c", ".h", ".md", ".sh", ".txt", ".1", ".cmake")


def tree_files(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith("build")]
        for f in files:
            yield os.path.relpath(os.path.join(d, f), root)


def checked(rel):
    name = os.path.basename(rel)
    return (name.endswith(BARE_IN + (".py", ".pyi", ".js", ".mjs", ".ts")) or
            name in ("Makefile", "CMakeLists.txt", "run"))


def package_dir(rel):
    parts = rel.split(os.sep)
    return os.path.join(*parts[:2]) if parts[0] == "bindings" and len(parts) > 2 else ""


def main():
    root = sys.argv[1]
    files = sorted(tree_files(root))
    names = {os.path.basename(f) for f in files}
    missing = 0
    for rel in files:
        if not checked(rel):
            continue
        try:
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
                lines = fh.read().split("\n")
        except OSError:
            continue
        bare = rel.endswith(BARE_IN) or os.path.basename(rel) in ("Makefile", "CMakeLists.txt")
        bases = [root, os.path.join(root, os.path.dirname(rel)),
                 os.path.join(root, package_dir(rel))]
        fenced = False
        for no, line in enumerate(lines, 1):
            if rel.endswith(".md") and line.lstrip().startswith("```"):
                fenced = not fenced
            for m in PATH_RE.finditer(line):
                ref = m.group(1).rstrip(".")
                if PLACEHOLDER_RE.search(ref):
                    continue
                if not any(os.path.exists(os.path.join(b, ref)) for b in bases):
                    print("%s:%d: cites %s, which does not exist" % (rel, no, ref))
                    missing += 1
            if not bare or fenced or line.lstrip().startswith("#include"):
                continue
            for m in BARE_RE.finditer(line):
                ref = m.group(1)
                if ref not in names and ref not in EXTERNAL:
                    print("%s:%d: cites %s, which no file of the tree is" % (rel, no, ref))
                    missing += 1
    if missing:
        print("cited_files: %d citation(s) of missing files" % missing)
        return 1
    print("cited_files: every cited file exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
