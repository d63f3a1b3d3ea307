"""The exception tree of xcontainers.

    XcError                      every error the runtime reports to a user
    ├── ConfigError              config.json is malformed or asks for what we lack
    ├── ContainerError           a lifecycle request that cannot be honoured
    │   ├── NotFound             no container with that id
    │   ├── AlreadyExists        the id is taken
    │   └── InvalidState         e.g. `start` on a running container
    ├── HookError                a hook failed or timed out
    └── SetupError               the kernel refused a step of container setup

Every message names what was wrong (the field, the id, the path).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "quoted",
    "field_name",
    "shown",
    "XcError",
    "ConfigError",
    "ContainerError",
    "NotFound",
    "AlreadyExists",
    "InvalidState",
    "HookError",
    "SetupError",
]


class XcError(Exception):
    """Base of every error xcontainers reports.  Its text is one line of at
    most MESSAGE_MAX characters whatever went into it (a 5,000-character name
    from a fuzzed archive, a newline in a key): words longer than 120
    characters keep their start and end, and the rest is cut."""

    def __str__(self) -> str:
        return bounded(super().__str__())


MESSAGE_MAX = 500


def bounded(msg: str) -> str:
    """*msg* as one line of at most MESSAGE_MAX characters (unchanged if it is one)."""
    if len(msg) <= MESSAGE_MAX and "\n" not in msg:
        return msg
    words = msg.replace("\n", "\\n").split(" ")
    msg = " ".join(w if len(w) <= 120 else w[:80] + "..." + w[-20:] for w in words)
    return msg if len(msg) <= MESSAGE_MAX else msg[:MESSAGE_MAX - 3] + "..."


class ConfigError(XcError):
    """config.json is malformed, or asks for a feature we do not support."""


class ContainerError(XcError):
    """A lifecycle request that cannot be honoured."""


class NotFound(ContainerError):
    """No container with that id."""


class AlreadyExists(ContainerError):
    """A container with that id already exists."""


class InvalidState(ContainerError):
    """The container is not in a state that allows the request."""


class HookError(XcError):
    """An OCI hook failed, or ran past its timeout."""


class SetupError(XcError):
    """The kernel refused a step of container setup."""


# What the user gave, as it appears in a message: one short printable line,
# so a refusal stays one line of at most a few hundred characters whatever
# the input (a 5,000-character key, a NaN, a deep nesting).

def quoted(v: Any, limit: int = 60) -> str:
    """A value the config gave, for an error message: its repr, at most *limit* characters."""
    r = repr(v)
    return r if len(r) <= limit else r[:limit - 4] + "...'"


def field_name(k: str) -> str:
    """A key the config gave, as a field name in an error message: one short printable line."""
    return k if len(k) <= 60 and k.isprintable() else quoted(k)


def shown(v: Any) -> str:
    """A value for an error message: its JSON, short (NaN and deep nesting included)."""
    try:
        return json.dumps(v)[:60]
    except (TypeError, ValueError, RecursionError):
        return repr(v)[:60]
