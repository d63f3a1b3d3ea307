"""OCI hooks: programs the runtime runs at fixed points of the lifecycle.

Each hook gets the container's state as JSON on its stdin, its own ``args``
(``args[0]`` is argv[0], as in execve) and ``env`` (nothing inherited), and
an optional timeout in seconds.  A hook that exits non-zero or times out
fails the step it belongs to: create for prestart, createRuntime,
createContainer and startContainer; poststart and poststop failures are
reported but do not undo the container (as runc does).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import HookError
from .spec import Hook

__all__ = ["run_hooks"]


def run_hooks(kind: str, hooks: list[Hook], state: dict[str, Any]) -> None:
    """Run each hook of *kind* in order; raise HookError on the first failure."""
    if not hooks:
        return
    import subprocess

    payload = json.dumps(state).encode()
    for i, h in enumerate(hooks):
        argv = h.args or [h.path]
        try:
            proc = subprocess.run(
                argv,
                executable=h.path,
                input=payload,
                env=dict(e.split("=", 1) for e in h.env),
                capture_output=True,
                timeout=h.timeout,
                close_fds=True,
            )
        except subprocess.TimeoutExpired:
            raise HookError(f"{kind} hook #{i} ({h.path}) timed out after {h.timeout}s") from None
        except OSError as e:
            raise HookError(f"{kind} hook #{i} ({h.path}): {e.strerror}") from None
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            how = (
                f"exit status {proc.returncode}"
                if proc.returncode > 0
                else f"signal {-proc.returncode}"
            )
            raise HookError(f"{kind} hook #{i} ({h.path}) failed with {how}" + (f": {err}" if err else ""))

