"""Where a runtime command's time goes: phase marks for `xc bench spawn`.

With ``XC_TIMING=/path`` in its environment, xc-runtime appends one line
``PHASE MONOTONIC_NS`` per phase it passes (the runtime process and the
container's setup processes alike, in the order they happen) to that file.
CLOCK_MONOTONIC is the clock of Python's time.perf_counter(), so a caller
that notes perf_counter() before it starts the runtime can turn the marks
into a breakdown (benchharness.experiments.spawn does).  Without the
variable, mark() is one comparison.
"""

from __future__ import annotations

import os
import time

__all__ = ["mark"]

_fd = -1
_checked = False


def mark(phase: str) -> None:
    """Note that *phase* ends now (a no-op unless XC_TIMING is set)."""
    global _fd, _checked
    if not _checked:
        _checked = True
        path = os.environ.get("XC_TIMING")
        if path:
            try:
                _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                _fd = -1
    if _fd >= 0:
        try:
            os.write(_fd, f"{phase} {time.monotonic_ns()}\n".encode())
        except OSError:
            pass
