"""Native parts of xcontainers, built by the package's own build.

`xcontainers._sys` is the thin C extension through which the Python runtime
makes the few system calls that the standard library lacks (mount,
pivot_root, unshare, setns, capset, prctl, ...).
"""
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "xcontainers._sys",
            sources=["src/native/sys.c"],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra"],
        )
    ]
)
