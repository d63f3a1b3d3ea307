"""Images for `xc`: the built-in busybox image and plain rootfs directories.

The built-in image needs no network: it is made on first use from Debian's
busybox-static (``/bin/busybox``), one static binary plus a symlink per
applet, with the few files a shell expects (/etc/passwd, /etc/group,
/etc/hostname, /tmp).  Each container gets its own copy of the image's
rootfs (about 2 MB), so containers never write into the image or each other.
"""

from __future__ import annotations

import os
import shutil

from .errors import XcError

__all__ = ["IMAGES_DIR", "BUILTIN", "ensure_image", "image_rootfs", "copy_rootfs"]

IMAGES_DIR = os.environ.get("XC_IMAGES", "/var/lib/xcontainers/images")
BUILTIN = "busybox"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"


def _busybox() -> str:
    import subprocess  # (only when the built-in image is made: an import costs every `xc run`)

    for p in BUSYBOX_CANDIDATES:
        if os.path.isfile(p):
            out = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout \
                if shutil.which("file") else "statically linked"
            if "statically linked" in out or "static-pie" in out:
                return p
    raise XcError("the built-in image needs Debian's busybox-static (apt-get install busybox-static)")


def _build_busybox(dest: str) -> None:
    import subprocess
    import tempfile

    bb = _busybox()
    tmp = tempfile.mkdtemp(prefix=".busybox-", dir=os.path.dirname(dest))
    try:
        root = os.path.join(tmp, "rootfs")
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp",
                  "root", "run", "var/tmp"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        os.chmod(os.path.join(root, "tmp"), 0o1777)
        shutil.copy2(bb, os.path.join(root, "bin/busybox"))
        applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout
        for path in applets.split():
            link = os.path.join(root, path)
            if path == "bin/busybox" or os.path.lexists(link):
                continue
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink("/bin/busybox", link)
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hostname", "xc\n"),
                           ("hosts", "127.0.0.1 localhost\n::1 localhost\n")):
            with open(os.path.join(root, "etc", name), "w") as f:
                f.write(text)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_image(name: str = BUILTIN) -> str:
    """The image's directory, building the built-in image on first use."""
    if os.path.isdir(name) and os.path.isabs(name):
        return name
    d = os.path.join(IMAGES_DIR, name)
    if os.path.isdir(os.path.join(d, "rootfs")):
        return d
    if name != BUILTIN:
        raise XcError(f"image {name!r} not found (built-in: {BUILTIN}; or give a rootfs directory)")
    os.makedirs(IMAGES_DIR, exist_ok=True)
    _build_busybox(d)
    return d


def image_rootfs(name: str = BUILTIN) -> str:
    """The rootfs directory of *name*: an image name, or a directory holding a rootfs."""
    if os.path.isabs(name) or name.startswith("."):
        path = os.path.abspath(name)
        if os.path.isdir(os.path.join(path, "rootfs")):
            return os.path.join(path, "rootfs")
        if os.path.isdir(path):
            return path
        raise XcError(f"image {name!r}: no such directory")
    return os.path.join(ensure_image(name), "rootfs")


def copy_rootfs(src: str, dest: str) -> None:
    """A private, writable copy of an image's rootfs."""
    shutil.copytree(src, dest, symlinks=True)
