"""The runtime's log, as runc writes it: text or JSON lines to --log.

podman's conmon reads the runtime's log file to explain a failure, so each
error is written there (JSON: ``{"level", "msg", "time"}``) as well as to
stderr.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["configure", "error", "warning", "debug"]

_path: str | None = None
_json = False
_debug = False


def configure(path: str | None, fmt: str = "text", debug: bool = False) -> None:
    global _path, _json, _debug
    _path = path or None
    _json = fmt == "json"
    _debug = debug


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _write(level: str, msg: str) -> None:
    if _path is None:
        return
    if _json:
        import json

        line = json.dumps({"level": level, "msg": msg, "time": _now()})
    else:
        line = f'time="{_now()}" level={level} msg="{msg}"'
    try:
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def error(msg: str) -> None:
    _write("error", msg)
    sys.stderr.write(f"xc-runtime: {msg}\n")


def warning(msg: str) -> None:
    _write("warning", msg)
    sys.stderr.write(f"xc-runtime: warning: {msg}\n")


def debug(msg: str) -> None:
    if _debug:
        _write("debug", msg)
        sys.stderr.write(f"xc-runtime: debug: {msg}\n")
