"""Named points of a runtime command: where its time goes, and where it may die.

Every step of create, start, run, exec and delete that leaves something on
the host (a state file, a cgroup, a process, a mount namespace) is followed
by a call of :func:`mark` with the step's name, in the runtime process and
in the container's setup processes alike.  Two environment variables use
them:

``XC_TIMING=/path``
    append one line ``POINT MONOTONIC_NS`` per point passed to that file.
    CLOCK_MONOTONIC is the clock of Python's time.perf_counter(), so a
    caller that notes perf_counter() before it starts the runtime can turn
    the marks into a breakdown (`xc bench spawn` does).
``XC_FAULT=POINT``
    the process that reaches POINT kills itself with SIGKILL there (the
    container's init, immune to its own SIGKILL, _exits with 137): the
    fault tests (tests/test_faults.py) kill the runtime, or a container's
    setup process, at every point and check that ``delete --force`` still
    leaves nothing behind.

The points, in the order a ``run`` passes them (P: the runtime process;
S: the setup process; I: the container's init; E: an exec'd process's
setup; X: the ``xc`` process, which is also P for `xc run`; R: the child
that removes a bundle after the native `xc run --rm`), are listed in
POINTS.  Without either variable mark() costs one
comparison.
"""

from __future__ import annotations

import os
import time

__all__ = ["mark", "POINTS"]

POINTS: dict[str, str] = {
    "interpreter": "P: Python is up, main() begins",
    "imports": "P: arguments parsed, the runtime's modules loaded",
    "config": "P: config.json read and checked",
    "reserved": "P: the state directory made (status creating)",
    "cgroup": "P: the cgroup made and its limits set",
    "namespaces": "S: the namespaces made, before the init is forked",
    "joined": "P: the init's pid known, the init moved into the cgroup, state saved",
    "mounts": "I: the rootfs's mounts made",
    "init": "I: pivot_root, credentials, rlimits done; before it reports ready",
    "created": "P: create done (status created)",
    "released": "P: start: the init released through exec.fifo, status not yet running",
    "exec": "I: just before the init's execve",
    "started": "P: status running",
    "exited": "P: run: the program's exit reaped",
    "exec-forked": "P: exec: the setup process forked",
    "exec-joined": "E: exec: in the container's namespaces, before the process is forked",
    "exec-ready": "P: exec: the process moved into the cgroup and ready",
    "killed": "P: delete: the container's processes killed",
    "cgroup-removed": "P: delete: the cgroup removed, the state not yet",
    "deleted": "P: delete done",
    "end": "P: the command's last step, before the exit",
    # `xc run` of a stored image (X: the `xc` process), around the runtime's own points
    "mounted": "X: xc run: the bundle, its marker and the overlay root made",
    "configured": "X: xc run: config.json and the network's files written, the container not yet created",
    "unmounted": "X: xc run --rm (or xc rm): the bundle's overlay unmounted, the bundle not yet removed",
    "removing": "R: native xc run --rm: the remover child, the bundle moved to the trash, not yet removed",
}

_fd = -1
_fault = ""
_checked = False


def _setup() -> None:
    global _fd, _fault, _checked
    _checked = True
    path = os.environ.get("XC_TIMING")
    if path:
        try:
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            _fd = -1
    _fault = os.environ.get("XC_FAULT", "")


def mark(point: str) -> None:
    """This process has passed *point* (a key of POINTS)."""
    if not _checked:
        _setup()
    if _fd >= 0:
        try:
            os.write(_fd, f"{point} {time.monotonic_ns()}\n".encode())
        except OSError:
            pass
    if point == _fault:
        os.kill(os.getpid(), 9)
        # Still here: the container's init, pid 1 of its pid namespace, which
        # a signal from inside the namespace cannot kill.  Die as abruptly.
        os._exit(128 + 9)
