"""The X-LibOS as seen from the runtime: its image, its interface, its table.

The LibOS image (``xcontainers/xc-libos``, built from src/libos/ by the
package's build) is a static executable linked at a fixed address below
2 GiB.  A container process runs on it by executing the image instead of the
program: ``xc-libos --xc-init PATH ARGV0 ARGS...``.  The image installs its
SIGSYS handler and the seccomp filter that is the exokernel interface, then
loads the program; every later execve of the program re-executes the image
from the fd XC_LIBOS_FD, which the runtime leaves open on the image
(image_fd(): one read-only file shared by every container, so its pages are
in memory once; the container never sees a host path).

The interface (host calls allowed from the LibOS's gate) and the syscall
table (what the LibOS does with each call) are data in src/libos/*.def;
this module parses them for ``xc libos`` and the docs.
"""

from __future__ import annotations

import os

from .errors import ContainerError

__all__ = ["image_path", "abi", "interface", "table", "image_fd", "sealed_image_fd", "enabled", "ANNOTATION",
           "SHARED_DIR"]

ANNOTATION = "org.xcontainers.libos"
_PKG = os.path.dirname(os.path.abspath(__file__))
_SRC = os.path.normpath(os.path.join(_PKG, "..", "libos"))


def image_path() -> str:
    """Where the built LibOS image is."""
    p = os.path.join(_PKG, "xc-libos")
    if not os.path.exists(p):
        from .errors import SetupError

        raise SetupError(f"the X-LibOS image is not built ({p}): run `make setup`")
    return p


def _def_file(name: str) -> str:
    for d in (_SRC, os.path.join(_PKG, "libos")):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(name)


def abi() -> dict[str, str]:
    """The #define constants of src/libos/abi.h."""
    import re

    out = {}
    with open(_def_file("abi.h")) as f:
        for line in f:
            m = re.match(r"#define (XC_\w+) (.+)$", line.strip())
            if m:
                out[m.group(1)] = m.group(2).split("/*")[0].strip().strip('"')
    return out


def interface() -> list[tuple[int, str, str]]:
    """(number, name, argument check) of every host call the interface allows."""
    import re

    out = []
    with open(_def_file("interface.def")) as f:
        for line in f:
            m = re.match(r"XC_HOST\((\d+), (\w+), (\w+)\)", line)
            if m:
                out.append((int(m.group(1)), m.group(2), m.group(3)))
    return sorted(out)


def table() -> list[tuple[int, str, str, str]]:
    """(number, name, how, note) of every system call the LibOS serves."""
    import re

    out = []
    with open(_def_file("syscalls.def")) as f:
        for line in f:
            m = re.match(r'XC_SYSCALL\((\d+), (\w+), (\w+), "(.*)"\)', line)
            if m:
                out.append((int(m.group(1)), m.group(2), m.group(3), m.group(4).replace('\\"', '"')))
    return sorted(out)


def enabled(annotations: dict[str, str]) -> bool:
    """Containers run on the LibOS unless the annotation turns it off."""
    v = annotations.get(ANNOTATION, "on").lower()
    if v not in ("on", "off", "true", "false", "1", "0"):
        from .errors import ConfigError

        raise ConfigError(f"annotations.{ANNOTATION}: {v!r} must be on or off")
    return v in ("on", "true", "1")


# Where the shared, read-only copies of the image live (one per image version).
SHARED_DIR = "/run/xcontainers/libos"
SHARED_NAME = "xc-libos"  # what /proc/PID/maps and /proc/PID/exe show inside the container
SHARED_KEEP = 4           # image versions kept there


def image_fd() -> int:
    """The LibOS image for a container process: a read-only fd on one file
    that every container shares, so the image's pages are in memory once,
    not once per container (as a memfd copy per container would be).

    The file is a copy of the installed image, made once per version under
    SHARED_DIR (never written again: rebuilding the installed image makes a
    new copy, and running containers keep theirs).  Each container gets it
    through a detached, read-only bind mount of the copy's directory
    (open_tree(2), mount_setattr(2)): no namespace holds that mount, nothing
    is left mounted on the host, and no process -- a container's root with
    every capability included -- can open the file for writing through
    /proc/PID/fd/XC_LIBOS_FD or /proc/PID/exe (EROFS; ETXTBSY while it is
    executed), truncate it or map it shared and writable.  Inside the
    container its path is /xc-libos.  Where that cannot be done (no
    CAP_SYS_ADMIN, an old kernel, /run not writable) the container gets a
    sealed memfd of its own (sealed_image_fd)."""
    try:
        return _shared_image_fd()
    except OSError:
        return sealed_image_fd()


def _shared_image_fd() -> int:
    from .kernel import MOUNT_ATTR, OPEN_TREE, mount_setattr, open_tree

    src = image_path()
    st = os.stat(src)
    version = f"{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"
    d = os.path.join(SHARED_DIR, version)
    if not os.path.exists(os.path.join(d, SHARED_NAME)):
        _install_shared_copy(src, d, st.st_size)
    tree = open_tree(d, OPEN_TREE.CLONE | OPEN_TREE.CLOEXEC)
    try:
        mount_setattr(tree, MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NODEV, MOUNT_ATTR.NOEXEC)
        fd = os.open(SHARED_NAME, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=tree)
    finally:
        os.close(tree)
    if os.fstat(fd).st_size != st.st_size:
        os.close(fd)
        raise OSError(f"{d}/{SHARED_NAME}: not a copy of {src}")
    return fd


def _install_shared_copy(src: str, d: str, size: int) -> None:
    """Copy the image into *d* (atomically: a complete file or none), and
    remove the copies of all but the SHARED_KEEP newest other versions
    (running containers keep theirs open; two builds used in turn, as in an
    A/B benchmark, keep theirs)."""
    import shutil
    import tempfile

    os.makedirs(SHARED_DIR, mode=0o700, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".new-", dir=SHARED_DIR)
    try:
        shutil.copyfile(src, os.path.join(tmp, SHARED_NAME))
        if os.stat(os.path.join(tmp, SHARED_NAME)).st_size != size:
            raise OSError(f"{src} changed while it was copied")
        os.chmod(os.path.join(tmp, SHARED_NAME), 0o555)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, d)  # (another runtime may have made it meanwhile: then keep that one)
        except OSError:
            if not os.path.exists(os.path.join(d, SHARED_NAME)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    others = []
    for old in os.listdir(SHARED_DIR):
        if old != os.path.basename(d) and not old.startswith(".new-"):
            try:
                others.append((os.stat(os.path.join(SHARED_DIR, old)).st_mtime, old))
            except OSError:
                pass
    for _, old in sorted(others, reverse=True)[SHARED_KEEP - 1:]:
        shutil.rmtree(os.path.join(SHARED_DIR, old), ignore_errors=True)


def sealed_image_fd() -> int:
    """A sealed, read-only memfd holding a copy of the LibOS image (one per
    container: the fallback of image_fd)."""
    import fcntl

    with open(image_path(), "rb") as f:
        data = f.read()
    fd = os.memfd_create("xc-libos", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


HOW = ("forwarded", "translated", "special", "emulated", "refused")


def new_stats_fd(prof: "Profile | None" = None) -> int:
    """A fresh statistics segment (struct xc_stats) in a memfd, carrying the
    container's LibOS profile."""
    from .libos_abi import XC_STATS_SIZE
    from .profile import Profile, write

    fd = os.memfd_create("xc-stats", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, XC_STATS_SIZE)
        write(prof or Profile(), fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _init_fd(init_pid: int, fd: int) -> int:
    """The open file on *fd* of a container's init, or -1.

    What sits on that fd is the container's choice (it may close the
    LibOS's file and put anything there), so it is never reopened by path
    (/proc/PID/fd/N, as host root, outside the container's cgroup: a device
    its cgroup denies, a FIFO that blocks): pidfd_getfd hands over the very
    open file the container already has, which gives nobody more than the
    container had."""
    from . import kernel

    try:
        pidfd = kernel.pidfd_open(init_pid)
    except OSError:
        return -1
    try:
        return kernel.pidfd_getfd(pidfd, fd)
    except OSError:
        return -1
    finally:
        os.close(pidfd)


def container_trace_fd(init_pid: int) -> int:
    """The trace of a running container (its init's XC_TRACE_FD), or -1."""
    from .libos_abi import XC_TRACE_FD

    return _init_fd(init_pid, XC_TRACE_FD)


def container_stats_fd(init_pid: int) -> int:
    """The statistics segment of a running container (its init's
    XC_STATS_FD), or -1 if what is there is not a segment: a regular file
    (the LibOS's memfd) of the segment's size at least."""
    import stat

    from .libos_abi import XC_STATS_FD, XC_STATS_SIZE

    fd = _init_fd(init_pid, XC_STATS_FD)
    if fd < 0:
        return -1
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_size >= XC_STATS_SIZE:
            return fd
    except OSError:
        pass
    os.close(fd)
    return -1


def read_stats(fd: int) -> dict[str, object]:
    """Decode a statistics segment: processes, execs, calls by path and by
    name, and ABOM's verdicts on the sites it looked at."""
    import struct

    from . import libos_abi as abi

    head = abi.STATS_HEAD_WORDS
    size = 8 * (head + 2 * abi.XC_NR_MAX)
    try:
        data = os.pread(fd, size, 0)
    except OSError as e:
        raise ContainerError(f"X-LibOS statistics: {e.strerror}") from None
    if len(data) != size:
        raise ContainerError("X-LibOS statistics: the segment is cut short")
    words = struct.unpack(f"<{head + 2 * abi.XC_NR_MAX}Q", data)
    # The segment is the container's to write: everything in it is checked
    # as untrusted input (a wrong magic, absurd counts) before it is shown.
    if words[0] != abi.XC_STATS_MAGIC:
        raise ContainerError("X-LibOS statistics: not a statistics segment (the container overwrote it?)")
    # Sites the loader rewrote from ABOM's site cache (sitecache.c), after the profile.
    tail = os.pread(fd, 8, abi.STATS_SITES_FROM_CACHE_OFFSET)
    from_cache = struct.unpack("<Q", tail)[0] if len(tail) == 8 else 0
    rows = {nr: (name, how) for nr, name, how, _ in table()}
    traps = words[head:head + abi.XC_NR_MAX]
    patched = words[head + abi.XC_NR_MAX:head + 2 * abi.XC_NR_MAX]
    calls = {rows.get(nr, (f"syscall_{nr}",))[0]: t + p for nr, (t, p) in enumerate(zip(traps, patched)) if t + p}
    by_path = dict(zip(HOW, words[4:9]))
    by_path["patched"] = sum(patched)  # (the trampolines count per number only: one store less)
    # Patched calls split by whether the LibOS answered them or the host did.
    served = sum(p for nr, p in enumerate(patched) if p and rows.get(nr, ("", ""))[1] == "EMULATE")
    sites_by = words[abi.STATS_SITES_BY:abi.STATS_SITES_BY + abi.XC_ABOM_VERDICTS]
    return {
        "processes": words[2],
        "execs": words[3],
        "by_path": by_path,
        "total": sum(words[4:9]) + by_path["patched"],
        "trapped": sum(words[4:9]),
        "patched_served": served,
        "patched_forwarded": by_path["patched"] - served,
        "sites_patched": words[10],
        "sites_refused": words[11],
        "sites_by": {name: n for name, n in zip(abi.ABOM_VERDICT_NAMES, sites_by) if n},
        "sites_from_cache": from_cache,
        "calls": dict(sorted(calls.items(), key=lambda kv: -kv[1])),
        "traps": {rows.get(nr, (f"syscall_{nr}",))[0]: t for nr, t in enumerate(traps) if t},
    }


def format_stats(st: dict[str, object], top: int = 8) -> str:
    """A short human summary of read_stats()."""
    by_path = st["by_path"]
    calls = st["calls"]
    assert isinstance(by_path, dict) and isinstance(calls, dict)
    lines = [
        f"X-LibOS: {st['total']} system calls served in the LibOS by {st['processes']} "
        f"program start(s) ({st['execs']} via execve)",
        "  by path: " + ", ".join(f"{k} {v}" for k, v in by_path.items())
        + f" (ABOM: {st['sites_patched']} sites patched, {st['sites_refused']} left alone)",
        "  ABOM sites: " + (", ".join(f"{k} {v}" for k, v in st["sites_by"].items()) or "none"),
        "  most frequent: " + ", ".join(f"{k} {v}" for k, v in list(calls.items())[:top]),
    ]
    return "\n".join(lines)


def table_markdown() -> str:
    """docs/compatibility.md: generated from src/libos/syscalls.def."""
    rows = table()
    counts: dict[str, int] = {}
    for _, _, how, _ in rows:
        counts[how] = counts.get(how, 0) + 1
    out = [
        "# X-LibOS compatibility table",
        "",
        "Generated from `src/libos/syscalls.def` by `xc libos table --markdown`; do not edit.",
        "",
        f"{len(rows)} system calls are served: "
        + ", ".join(f"{n} {how.lower()}" for how, n in sorted(counts.items()))
        + ". Any other number fails with ENOSYS.",
        "",
        "- FORWARD: passed to the host as itself, through the exokernel interface.",
        "- TRANSLATE: served through other host calls (so the interface stays small).",
        "- SPECIAL: the LibOS's own handling (process model, signals, its own fds and memory).",
        "- EMULATE: answered in the LibOS without the host.",
        "",
        "| nr | system call | how | note |",
        "|---:|---|---|---|",
    ]
    out += [f"| {nr} | {name} | {how.lower()} | {note} |" for nr, name, how, note in rows]
    return "\n".join(out) + "\n"


def interface_markdown() -> str:
    """docs/interface.md: generated from src/libos/interface.def."""
    from .libos_abi import XC_LIBOS_FD, XC_STATS_FD
    rows = interface()
    fds = f"{XC_STATS_FD}, {XC_LIBOS_FD}"
    checks = {
        "CLONE": "no namespace flags (EPERM)",
        "PRCTL": "the process's own attributes; never PR_SET_SECCOMP or PR_SET_MM (EPERM), "
                 "PR_SET_SYSCALL_USER_DISPATCH or an unlisted option (EINVAL)",
        "EXEC_LIBOS": f"only the LibOS image (fd {XC_LIBOS_FD}, the LibOS's own empty path)",
        "CLOSE": f"never the LibOS's fds {fds} (EPERM)",
        "DUP3": f"never onto the LibOS's fds {fds} (EPERM)",
        "CLOSE_RANGE": f"never over the LibOS's fds {fds} (EPERM)",
        "ARCH_PRCTL": "fs/gs bases, CPUID faulting, AMX permission, tagging and shadow-stack queries "
                      "(else EINVAL)",
        "IOCTL": "terminal, socket, pipe and file requests; never TIOCSTI, TIOCLINUX, TIOCCONS, "
                 "TIOCSETD or device requests (ENOTTY)",
        "FCNTL": "the commands Linux 6.18 knows (else EINVAL)",
        "SOCKET": "AF_UNIX, AF_INET, AF_INET6; AF_NETLINK route, sock_diag, audit, uevent "
                  "(else EAFNOSUPPORT, EPROTONOSUPPORT)",
        "MMAP": "MAP_FIXED never over the LibOS image (EPERM), but the LibOS's own remap of its code "
                "(shared, populated, from its fd, every argument fixed)",
        "MPROTECT": "never on the LibOS's code, never PROT_EXEC on the rest of its image (EPERM)",
        "NOT_LIBOS": "never on the LibOS image (EPERM)",
        "MREMAP": "neither from nor onto the LibOS image (EPERM)",
    }
    out = [
        "# The exokernel interface",
        "",
        "Generated from `src/libos/interface.def` by `xc libos interface --markdown`; do not edit.",
        "",
        f"**{len(rows)} host system calls**, each allowed only from the LibOS's gate "
        "(the `xc_gate` section of the LibOS image); `rt_sigreturn` is allowed from anywhere. "
        "Every other system call from anywhere fails with EPERM and never runs on the host; "
        "a system call from the program traps into the LibOS.",
        "",
        "| nr | host call | argument check |",
        "|---:|---|---|",
    ]
    out += [f"| {nr} | {name} | {checks.get(check, '')} |" for nr, name, check in rows]
    out += ["", "## The argument checks, and why", "",
            "From the header of `src/libos/interface.def` (the filter is `src/libos/filter.c`):", "", "```"]
    out += _check_notes()
    out += ["```"]
    return "\n".join(out) + "\n"


def _check_notes() -> list[str]:
    """The header comment of interface.def, from the first check to the end."""
    with open(_def_file("interface.def")) as f:
        head = f.read().split("*/", 1)[0]
    lines = [line[3:] if line.startswith(" * ") else line.lstrip(" *") for line in head.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ANY "))
    end = next(i for i, line in enumerate(lines) if "xcontainers/libos.py parses" in line)
    return [line.rstrip() for line in lines[start:end]]
