"""xcontainers: a secure container runtime implementing the X-Containers
architecture (ASPLOS 2019) on an ordinary Linux host.

The public, typed API lives in :mod:`xcontainers.container`; the command
lines (`xc-runtime`, `xc`) are thin adapters over it.
"""

__version__ = "0.1.0"
OCI_VERSION = "1.0.2"

__all__ = ["__version__", "OCI_VERSION"]
