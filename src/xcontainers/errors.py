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

__all__ = [
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
    """Base of every error xcontainers reports."""


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
