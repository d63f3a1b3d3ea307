"""The kernel boundary: every system call the runtime makes that the standard
library does not already wrap goes through this module.

Linux containers are nothing but ordinary processes that the kernel sees
through different *views*: namespaces (what the process can name: pids,
mounts, hostnames, network devices, users), cgroups (what it may consume)
and credentials (capabilities, uid/gid, no_new_privs, seccomp).  A runtime
assembles those views with a handful of calls:

* ``unshare(2)`` moves the caller into new namespaces.  A new *pid*
  namespace applies only to the caller's children, so the container's pid 1
  is always a child forked after the unshare.
* ``setns(2)`` joins an existing namespace; with a pidfd it joins several
  namespaces of a process at once.
* ``mount(2)``/``umount2(2)``/``pivot_root(2)`` build the container's
  filesystem tree inside its private mount namespace.  Nothing mounted there
  is visible to the host once the root is made a slave or private mount, and
  every such mount disappears with the namespace's last process.
* ``capset(2)`` and ``prctl(2)`` shape the credentials the program runs with.

The C side (``xcontainers._sys``) raises ``OSError`` on every failure; this
module adds names and constants so callers never deal with raw numbers.
"""

from __future__ import annotations

import os

from . import _sys

__all__ = [
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "open_tree",
    "mount_setattr",
    "OPEN_TREE",
    "MOUNT_ATTR",
    "setns",
    "sethostname",
    "setdomainname",
    "prctl",
    "capget",
    "capset",
    "join_session_keyring",
    "seccomp_load_bpf",
    "loopback_up",
    "MS",
    "CLONE",
    "NAMESPACE_FLAGS",
    "NAMESPACE_PROC_NAMES",
    "PR",
    "MNT_DETACH",
    "CAPABILITIES",
    "cap_number",
    "last_cap",
]

mount = _sys.mount
umount2 = _sys.umount2
pivot_root = _sys.pivot_root
unshare = _sys.unshare
open_tree = _sys.open_tree          # (path, flags) -> O_PATH fd; OPEN_TREE.CLONE: a detached bind mount
mount_setattr = _sys.mount_setattr  # (fd, attr_set, attr_clr): MOUNT_ATTR.* of that mount
setns = _sys.setns
sethostname = _sys.sethostname
setdomainname = _sys.setdomainname
prctl = _sys.prctl
capget = _sys.capget
capset = _sys.capset
join_session_keyring = _sys.join_session_keyring
seccomp_load_bpf = _sys.seccomp_load_bpf
loopback_up = _sys.loopback_up

MNT_DETACH = 2


class MS:
    """mount(2) flags."""

    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    SYNCHRONOUS = 16
    REMOUNT = 32
    MANDLOCK = 64
    DIRSYNC = 128
    NOSYMFOLLOW = 256
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    MOVE = 8192
    REC = 16384
    SILENT = 32768
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


class OPEN_TREE:
    """open_tree(2) flags."""

    CLONE = 1
    CLOEXEC = 0o2000000


class MOUNT_ATTR:
    """mount_setattr(2) attributes."""

    RDONLY = 0x1
    NOSUID = 0x2
    NODEV = 0x4
    NOEXEC = 0x8


class CLONE:
    """Namespace flags of clone(2)/unshare(2)/setns(2)."""

    NEWNS = 0x00020000
    NEWCGROUP = 0x02000000
    NEWUTS = 0x04000000
    NEWIPC = 0x08000000
    NEWUSER = 0x10000000
    NEWPID = 0x20000000
    NEWNET = 0x40000000
    NEWTIME = 0x00000080


# OCI namespace type -> clone flag, and -> the name under /proc/PID/ns.
NAMESPACE_FLAGS: dict[str, int] = {
    "pid": CLONE.NEWPID,
    "network": CLONE.NEWNET,
    "mount": CLONE.NEWNS,
    "ipc": CLONE.NEWIPC,
    "uts": CLONE.NEWUTS,
    "user": CLONE.NEWUSER,
    "cgroup": CLONE.NEWCGROUP,
    "time": CLONE.NEWTIME,
}
NAMESPACE_PROC_NAMES: dict[str, str] = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


class PR:
    """prctl(2) options."""

    SET_PDEATHSIG = 1
    SET_DUMPABLE = 4
    SET_KEEPCAPS = 8
    SET_NAME = 15
    CAPBSET_READ = 23
    CAPBSET_DROP = 24
    SET_CHILD_SUBREAPER = 36
    SET_NO_NEW_PRIVS = 38
    GET_NO_NEW_PRIVS = 39
    CAP_AMBIENT = 47
    CAP_AMBIENT_RAISE = 2
    CAP_AMBIENT_CLEAR_ALL = 4


# Capability names in number order (linux/capability.h).
CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
_CAP_INDEX = {name: i for i, name in enumerate(CAPABILITIES)}


def cap_number(name: str) -> int | None:
    """The number of capability *name* (``CAP_`` prefix optional), or None."""
    n = name.upper()
    if not n.startswith("CAP_"):
        n = "CAP_" + n
    return _CAP_INDEX.get(n)


def last_cap() -> int:
    """The highest capability number this kernel knows."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPABILITIES) - 1


def pidfd_open(pid: int) -> int:
    """A pidfd for *pid* (raises ProcessLookupError if it is gone)."""
    return os.pidfd_open(pid)


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A close-on-exec duplicate of the open file on *target_fd* of the
    process behind *pidfd*: the same open file, never a reopen of its path."""
    return _sys.pidfd_getfd(pidfd, target_fd)
