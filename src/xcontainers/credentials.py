"""The credentials a container process runs with.

Order matters, and follows runc:

1. rlimits, while the process may still raise them;
2. the capability bounding set is cut (needs CAP_SETPCAP, still held);
3. uid/gid/groups change with PR_SET_KEEPCAPS, so the permitted set survives
   the switch away from uid 0 (supplementary groups are left alone where
   the user namespace denies setgroups and none are asked for);
4. the effective, permitted and inheritable sets are set with capset(2), and
   the ambient set raised one capability at a time (each must already be
   permitted and inheritable, and one that is not is skipped, as runc
   does);
5. no_new_privs, if asked for, last of all before seccomp and execve.

A config without a ``capabilities`` object leaves the capabilities alone,
as runc does.
"""

from __future__ import annotations

import os
import resource

from . import kernel
from .errors import SetupError
from .kernel import PR
from .spec import Process

__all__ = ["apply_rlimits", "apply_user_and_caps", "cap_mask", "find_executable", "default_home"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def cap_mask(names: list[str]) -> int:
    mask = 0
    for n in names:
        num = kernel.cap_number(n)
        if num is not None:
            mask |= 1 << num
    return mask


def apply_rlimits(proc: Process) -> None:
    for num, soft, hard, name in proc.rlimits:
        inf = resource.RLIM_INFINITY
        s = inf if soft >= (1 << 64) - 1 else soft
        h = inf if hard >= (1 << 64) - 1 else hard
        try:
            resource.setrlimit(num, (s, h))
        except (OSError, ValueError) as e:
            raise SetupError(f"process.rlimits {name} (soft {soft}, hard {hard}): {e}") from None


def apply_user_and_caps(proc: Process) -> None:
    caps = proc.capabilities if proc.capabilities else None
    last = kernel.last_cap()
    try:
        if caps is not None:
            bounding = cap_mask(caps.get("bounding", []))
            for c in range(last + 1):
                if not bounding & (1 << c):
                    kernel.prctl(PR.CAPBSET_DROP, c)
        kernel.prctl(PR.SET_KEEPCAPS, 1)
        try:
            os.setgroups(proc.additional_gids)
        except PermissionError:
            # A user namespace whose gid_map an unprivileged user wrote
            # denies setgroups: with no groups asked for, keep the one
            # the process has (runc does the same).
            if proc.additional_gids or not _setgroups_denied():
                raise
        os.setresgid(proc.gid, proc.gid, proc.gid)
        os.setresuid(proc.uid, proc.uid, proc.uid)
        kernel.prctl(PR.SET_KEEPCAPS, 0)
        if caps is not None:
            kernel.capset(
                cap_mask(caps.get("effective", [])),
                cap_mask(caps.get("permitted", [])),
                cap_mask(caps.get("inheritable", [])),
            )
            kernel.prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
            for n in caps.get("ambient", []):
                num = kernel.cap_number(n)
                if num is None or num > last:
                    continue
                try:
                    kernel.prctl(PR.CAP_AMBIENT, PR.CAP_AMBIENT_RAISE, num, 0, 0)
                except PermissionError:
                    # Not in the inheritable set: runc skips it the same way.
                    pass
        elif proc.uid != 0:
            # Leaving uid 0 without a capabilities object: the kernel already
            # cleared the effective set; clear the permitted one as well.
            kernel.capset(0, 0, 0)
    except OSError as e:
        raise SetupError(f"process.user / process.capabilities: {e.strerror}") from None


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "deny"
    except OSError:
        return False


def find_executable(name: str, env: list[str], cwd: str) -> str:
    """Resolve argv[0] as execvp would, in the current (container) root."""
    if "/" in name:
        path = name if name.startswith("/") else os.path.join(cwd, name)
        if not os.path.exists(path):
            raise SetupError(f"exec: {name!r}: no such file or directory")
        if os.path.isdir(path) or not os.access(path, os.X_OK):
            raise SetupError(f"exec: {name!r}: permission denied")
        return path
    # As runc (Go's exec.LookPath): no PATH in the process's env searches nowhere.
    search = ""
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":") if search else []:
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise SetupError(f"exec: {name!r}: executable file not found in $PATH")


def default_home(uid: int) -> str:
    """The home directory of *uid* in the container's /etc/passwd, or '/'."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"
