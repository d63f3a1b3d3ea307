"""A container's X-LibOS profile ("kernel customization").

It comes from OCI annotations, or from a JSON file named by one, and is
written into the container's statistics segment (struct xc_stats in
src/libos/abi.h) before the container starts; every process's LibOS reads
it from there.

    org.xcontainers.libos           on | off      the LibOS at all
    org.xcontainers.libos.abom      on | off      patch system call sites (ABOM)
    org.xcontainers.libos.trace     stderr | /host/path
                                    a line per system call and per ABOM verdict
    org.xcontainers.libos.syscalls  NAME=ACTION[,NAME=ACTION...]
                                    ACTION: serve | forward | refuse[:ERRNO] | trace,
                                    joined with '+' (e.g. openat=trace, ptrace=refuse:EPERM)
    org.xcontainers.libos.uname.release, org.xcontainers.libos.uname.version
                                    the kernel identity uname(2) reports
    org.xcontainers.libos.profile   /host/path.json with the same settings:
        {"abom": "on", "trace": "stderr", "syscalls": {"getpid": "forward"},
         "uname": {"release": "5.10.0-xc", "version": "#1 SMP"}}

Annotations override the file.  The profile customizes; it is not the
security boundary (the seccomp filter is): the program can write its own
process's copy of the segment.
"""
from __future__ import annotations

import errno
import os
import struct
from . import libos_abi as abi
from ._record import field, record
from .errors import ConfigError

ANNOTATION = "org.xcontainers.libos"
_NEVER_REFUSED = {"rt_sigreturn", "exit", "exit_group"}
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


@record
class Profile:
    abom: bool = True
    trace: str | None = None
    calls: dict[int, int] = field(default_factory=dict)  # nr -> XC_PROFILE_* | errno << 8
    uname_release: str = ""
    uname_version: str = ""


def _switch(key: str, v: object) -> bool:
    s = str(v).lower()
    if s not in _SWITCH:
        raise ConfigError(f"{key}: {v!r} must be on or off")
    return _SWITCH[s]


def _errno(key: str, text: str) -> int:
    if text.isdigit():
        n = int(text)
    else:
        n = getattr(errno, text.upper(), 0) if text.upper().startswith("E") else 0
    if not 0 < n < 256:
        raise ConfigError(f"{key}: {text!r} is not an errno (a name like EPERM or a number 1-255)")
    return n


def _action(key: str, name: str, text: str) -> tuple[int, int]:
    from .libos import interface, table

    rows = {n: (nr, how) for nr, n, how, _ in table()}
    if name not in rows:
        raise ConfigError(f"{key}: {name!r} is not a system call the X-LibOS serves")
    nr, how = rows[name]
    word = 0
    for part in text.split("+"):
        verb, _, arg = part.strip().partition(":")
        if verb == "serve":
            continue
        if verb == "trace":
            word |= abi.XC_PROFILE_TRACE
        elif verb == "forward":
            if how in ("TRANSLATE", "SPECIAL"):
                raise ConfigError(f"{key}: {name} is served by the LibOS's own handling; "
                                  "it can be refused or traced, not forwarded")
            if how == "EMULATE" and name not in {n for _, n, _ in interface()}:
                raise ConfigError(f"{key}: {name} cannot be forwarded: the exokernel interface "
                                  "does not have it")
            word = (word & ~0xff) | abi.XC_PROFILE_FORWARD | (word & abi.XC_PROFILE_TRACE)
        elif verb == "refuse":
            if name in _NEVER_REFUSED:
                raise ConfigError(f"{key}: {name} cannot be refused")
            word = (word & abi.XC_PROFILE_TRACE) | abi.XC_PROFILE_REFUSE | _errno(key, arg or "EPERM") << 8
        else:
            raise ConfigError(f"{key}: {part!r}: the action must be serve, forward, refuse[:ERRNO] or trace")
    return nr, word


def _apply(p: Profile, settings: dict[str, object], where: str) -> None:
    if "abom" in settings:
        p.abom = _switch(f"{where}abom", settings["abom"])
    if "trace" in settings and settings["trace"] not in (None, "", "off"):
        t = str(settings["trace"])
        if t != "stderr" and not os.path.isabs(t):
            raise ConfigError(f"{where}trace: {t!r} must be stderr or an absolute path on the host")
        p.trace = t
    calls = settings.get("syscalls")
    if isinstance(calls, str):
        items = [c.partition("=")[::2] for c in calls.split(",") if c.strip()]
    elif isinstance(calls, dict):
        items = list(calls.items())
    elif calls is None:
        items = []
    else:
        raise ConfigError(f"{where}syscalls: must be NAME=ACTION,... or an object")
    for name, action in items:
        if not str(action).strip():
            raise ConfigError(f"{where}syscalls: {name!r} has no action")
        nr, word = _action(f"{where}syscalls", str(name).strip(), str(action).strip())
        p.calls[nr] = word
    uname = settings.get("uname") or {}
    if not isinstance(uname, dict):
        raise ConfigError(f"{where}uname: must be an object")
    for k in ("release", "version"):
        if k in uname:
            v = str(uname[k])
            if len(v.encode()) > 64:
                raise ConfigError(f"{where}uname.{k}: at most 64 bytes")
            setattr(p, f"uname_{k}", v)


def from_annotations(annotations: dict[str, str]) -> Profile:
    """The profile the annotations (and the file they may name) ask for."""
    p = Profile()
    path = annotations.get(ANNOTATION + ".profile")
    if path:
        import json

        key = f"annotations.{ANNOTATION}.profile"
        try:
            with open(path) as f:
                data = json.load(f)
        except OSError as e:
            raise ConfigError(f"{key}: {path}: {e.strerror}") from None
        except ValueError as e:
            raise ConfigError(f"{key}: {path}: not JSON: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{key}: {path}: must hold a JSON object")
        unknown = set(data) - {"abom", "trace", "syscalls", "uname"}
        if unknown:
            raise ConfigError(f"{key}: {path}: unknown setting(s) {', '.join(sorted(unknown))}")
        _apply(p, data, f"{path}: ")
    settings: dict[str, object] = {}
    for k in ("abom", "trace", "syscalls"):
        if ANNOTATION + "." + k in annotations:
            settings[k] = annotations[ANNOTATION + "." + k]
    uname = {k: annotations[ANNOTATION + ".uname." + k] for k in ("release", "version")
             if ANNOTATION + ".uname." + k in annotations}
    if uname:
        settings["uname"] = uname
    _apply(p, settings, f"annotations.{ANNOTATION}.")
    return p


def write(p: Profile, fd: int) -> None:
    """Write the profile into a fresh statistics segment."""
    words = [0] * abi.XC_NR_MAX
    for nr, w in p.calls.items():
        words[nr] = w
    flags = ((abi.XC_FLAG_ABOM if p.abom else 0) | (abi.XC_FLAG_TRACE if p.trace else 0) |
             (abi.XC_FLAG_PROFILE if any(words) else 0))
    os.pwrite(fd, struct.pack("<QQ", abi.XC_STATS_MAGIC, flags), 0)
    # (what is zero stays a hole: the fresh segment reads zeros, and an untouched page costs nothing)
    if any(words):
        os.pwrite(fd, struct.pack(f"<{abi.XC_NR_MAX}H", *words), abi.STATS_PROFILE_OFFSET)
    for value, offset in ((p.uname_release, abi.STATS_UNAME_RELEASE_OFFSET),
                          (p.uname_version, abi.STATS_UNAME_VERSION_OFFSET)):
        if value:
            os.pwrite(fd, value.encode().ljust(65, b"\0"), offset)


def open_trace(p: Profile) -> int:
    """The trace file on the host, opened for appending; -1 for stderr or none."""
    if not p.trace or p.trace == "stderr":
        return -1
    try:
        return os.open(p.trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigError(f"annotations.{ANNOTATION}.trace: {p.trace}: {e.strerror}") from None
