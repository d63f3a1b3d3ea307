"""Native parts of xcontainers, built by the package's own build.

* `xcontainers._sys`: the thin C extension through which the Python runtime
  makes the few system calls the standard library lacks.
* `xcontainers/xc-libos`: the X-LibOS image, a freestanding static
  executable (C11 and assembly, no libc) linked at XC_LIBOS_BASE, built from
  src/libos/ with gcc.
* `xcontainers/xc-runtime`: xc-runtime's entry point, a small C11 program
  (src/native/runtime/) that does the common commands natively and hands
  the rest to the Python runtime, run by the interpreter this build runs
  under (or $XC_PYTHON).
* `xcontainers/xc`: xc's entry point (src/native/xc/ on the runtime's
  code): `xc run` of a stored image natively, the rest to xc_cli.
"""
import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

LIBOS_SOURCES = ["gate.S", "loader.c", "libos.c", "abom.c", "decode.c", "filter.c", "util.c", "vdso.c",
                 "running.c", "sitecache.c"]
LIBOS_CFLAGS = [
    "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration",
    "-ffreestanding", "-nostdlib", "-static", "-fno-pie", "-no-pie",
    "-fno-stack-protector", "-fcf-protection=none", "-mgeneral-regs-only",
    "-fno-asynchronous-unwind-tables", "-fno-builtin",
    "-Wl,-Ttext-segment=0x10000000", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
    # One mapping for the headers, code and constants (fewer mappings: cheaper fork and exit)
    "-Wl,-z,noseparate-code",
]
RUNTIME_SOURCES = ["main.c", "fallback.c", "util.c", "json.c", "state.c", "cgroup.c", "spec.c",
                   "lifecycle.c", "rootfs.c", "init.c", "libos.c", "create.c"]
XC_SOURCES = ["main.c", "image.c", "bundle.c", "run.c", "net.c", "netlink.c", "stats.c"]
RUNTIME_CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"]


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _link(cmd: list, out: str) -> None:
    """Link *cmd* (writing out.tmp) statically where libc.a is there (no
    dynamic loader to run at every container operation: ~0.2 ms here), else
    dynamically; then rename it over *out*, which may be running."""
    print(" ".join(cmd + ["-static"]))
    if subprocess.run(cmd + ["-static"]).returncode != 0:
        print(" ".join(cmd))
        subprocess.run(cmd, check=True)
    os.replace(out + ".tmp", out)


class BuildWithLibOS(build_ext):
    """build_ext that also links the LibOS image and the runtime's entry
    point next to the package."""

    def run(self) -> None:
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        src = os.path.join(here, "src", "libos")
        if self.inplace:
            out_dir = os.path.join(here, "src", "xcontainers")
        else:
            out_dir = os.path.join(self.build_lib, "xcontainers")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, "xc-libos")
        cmd = ["gcc", *LIBOS_CFLAGS, "-Wl,-T," + os.path.join(src, "layout.ld"), "-I", src, "-o", out,
               *[os.path.join(src, s) for s in LIBOS_SOURCES]]
        print(" ".join(cmd))
        subprocess.run(cmd, check=True)
        # The runtime's entry point may be running (it is what xc-runtime on
        # PATH points at): link beside it, then rename over it.
        rsrc = os.path.join(here, "src", "native", "runtime")
        python = os.environ.get("XC_PYTHON") or sys.executable
        out = os.path.join(out_dir, "xc-runtime")
        cmd = ["gcc", *RUNTIME_CFLAGS, "-I", src, f"-DXC_PYTHON={_c_string(python)}", "-o", out + ".tmp",
               *[os.path.join(rsrc, s) for s in RUNTIME_SOURCES]]
        _link(cmd, out)
        # xc's entry point (src/native/xc/): `xc run` of a stored image
        # natively, on the runtime's own code; the rest goes to xc_cli.
        xsrc = os.path.join(here, "src", "native", "xc")
        out = os.path.join(out_dir, "xc")
        cmd = ["gcc", *RUNTIME_CFLAGS, "-I", src, f"-DXC_PYTHON={_c_string(python)}", "-o", out + ".tmp",
               *[os.path.join(rsrc, s) for s in RUNTIME_SOURCES if s != "main.c"],
               *[os.path.join(xsrc, s) for s in XC_SOURCES]]
        _link(cmd, out)


setup(
    ext_modules=[
        Extension(
            "xcontainers._sys",
            sources=["src/native/sys.c"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
        )
    ],
    cmdclass={"build_ext": BuildWithLibOS},
)
