"""Resolving a path inside a container's rootfs without leaving it.

A mount destination such as ``/etc/resolv.conf`` is looked up inside the
rootfs, where any component may be a symlink.  Following it with the host's
resolver would let ``/etc -> /../../host/etc`` point outside the rootfs, so
symlinks are resolved here against the rootfs as if it were ``/``: an
absolute link restarts at the rootfs, ``..`` stops at the rootfs.  The result
is a host path that is always under the rootfs.  (Races with a rootfs that
changes concurrently are out of scope: the rootfs is not shared with a
running container while it is being set up.)
"""

from __future__ import annotations

import errno
import os

__all__ = ["secure_join"]

_MAX_LINKS = 255


def secure_join(root: str, unsafe: str) -> str:
    """The host path of *unsafe* resolved inside *root*, never above it."""
    root = os.path.abspath(root)
    parts = [p for p in unsafe.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        try:
            target = os.readlink(candidate)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT, errno.ENOTDIR):
                resolved.append(part)
                continue
            raise
        links += 1
        if links > _MAX_LINKS:
            raise OSError(errno.ELOOP, "too many levels of symbolic links", unsafe)
        if target.startswith("/"):
            resolved = []
        parts = [p for p in target.split("/") if p not in ("", ".")] + parts
    return os.path.join(root, *resolved)
