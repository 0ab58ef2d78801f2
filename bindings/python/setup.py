"""Build the dlock extension: libdlock's C sources compiled into it.

The extension carries its own copy of libdlock (the sources under ../../src,
one include directory per layer), so `pip install ./bindings/python` needs
only a C compiler, Python's headers (python3-dev), hiredis (libhiredis-dev)
and OpenSSL (libssl-dev, for libdlock's TLS transport): no installed
libdlock, no network. The copy is built with
-fvisibility=hidden and without DLOCK_BUILDING, so it exports nothing but
PyInit__dlock and cannot clash with a libdlock.so loaded into the same
process.

DLOCK_SOURCE_DIR: the repository root, if this directory was moved out of
it. DLOCK_PY_BUILD_DIR: where setuptools writes its build tree (default
./build), so a test can build without writing into the source tree.
"""
import copy
import glob
import os
import shlex
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("DLOCK_SOURCE_DIR") or os.path.normpath(os.path.join(HERE, "..", ".."))
# Bottom to top, as in the top-level CMakeLists.txt.
LAYERS = ["base", "net", "topo", "quorum", "proto", "lock", "api"]


def library_sources():
    if not os.path.exists(os.path.join(ROOT, "include", "dlock.h")):
        raise SystemExit(
            f"dlock: libdlock's sources are not at {ROOT}: build from the dlock repository "
            "(bindings/python) or set DLOCK_SOURCE_DIR to its root")
    sources = []
    for layer in LAYERS:
        # Absolute paths: setuptools puts each object under the build tree
        # by its path, and a relative "../../src" would escape it.
        sources += sorted(glob.glob(os.path.join(ROOT, "src", layer, "*.c")))
    return sources


def version():
    """The library's version, from the one place it lives (include/dlock.h)."""
    parts = {}
    with open(os.path.join(ROOT, "include", "dlock.h"), encoding="utf-8") as f:
        for line in f:
            w = line.split()
            if len(w) == 3 and w[0] == "#define" and w[1].startswith("DLOCK_VERSION_") \
                    and w[1][14:] in ("MAJOR", "MINOR", "PATCH"):
                parts[w[1][14:]] = w[2]
    return f"{parts['MAJOR']}.{parts['MINOR']}.{parts['PATCH']}"


def hiredis_flags():
    """hiredis's and OpenSSL's flags (TLS: libdlock's transport) from
    pkg-config, or Debian's defaults without it."""
    try:
        out = subprocess.run(["pkg-config", "--cflags", "--libs", "hiredis", "openssl"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return [], ["hiredis", "ssl", "crypto"]
    words = shlex.split(out)
    libs = [w[2:] for w in words if w.startswith("-l")]
    return [w for w in words if not w.startswith("-l")], libs


class BuildExt(build_ext):
    """Adds libdlock's sources at build time: setup() arguments must be
    paths inside this directory, and the library lives two levels up."""

    def build_extension(self, ext):
        # A copy: the egg-info step, which runs after this, reads ext.sources.
        ext = copy.copy(ext)
        ext.sources = ext.sources + library_sources()
        ext.depends = ext.depends + glob.glob(os.path.join(ROOT, "include", "**", "*.h"),
                                              recursive=True) \
            + glob.glob(os.path.join(ROOT, "src", "*", "*.h"))
        super().build_extension(ext)


library_sources()  # fail early, with the reason, outside the repository
cflags, libs = hiredis_flags()
ext = Extension(
    "dlock._dlock",
    sources=[os.path.join("src", "dlock", f)
             for f in ("_dlock_module.c", "_dlock_client.c", "_dlock_lock.c")],
    include_dirs=[os.path.join(ROOT, "include")]
    + [os.path.join(ROOT, "src", layer) for layer in LAYERS],
    define_macros=[("_GNU_SOURCE", None)],
    libraries=libs + ["pthread"],
    # -Wno-format-truncation: the library's error details are cut to fit
    # their buffers on purpose (as in CMakeLists.txt).
    extra_compile_args=["-std=c11", "-fvisibility=hidden", "-Wall", "-Wextra",
                        "-Wno-format-truncation"] + cflags,
    depends=[os.path.join("src", "dlock", "_dlock.h")],
)

options = {}
build_dir = os.environ.get("DLOCK_PY_BUILD_DIR")
if build_dir:
    options = {"build": {"build_base": build_dir}, "egg_info": {"egg_base": build_dir}}

setup(version=version(), ext_modules=[ext], cmdclass={"build_ext": BuildExt}, options=options)
