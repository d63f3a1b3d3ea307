"""Defaults: the config `xc-runtime spec` writes, the devices every container
may use, and the `features` document."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from . import OCI_VERSION
from .errors import XcError

__all__ = ["default_spec", "rootless_spec", "write_spec", "features", "DEFAULT_DEVICE_RULES"]

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# Device cgroup rules every container gets after the config's own (as runc).
DEFAULT_DEVICE_RULES: list[dict[str, Any]] = [
    {"allow": True, "type": "c", "access": "m"},
    {"allow": True, "type": "b", "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
]

MASKED_PATHS = [
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(args: list[str] | None = None, terminal: bool = True, hostname: str = "xc") -> dict[str, Any]:
    """A config.json like `runc spec` writes (busybox-friendly)."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args or ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def rootless_spec(spec: dict[str, Any], uid: int | None = None, gid: int | None = None) -> dict[str, Any]:
    """*spec* made runnable by an unprivileged user, as `runc spec --rootless`
    makes it: a user namespace mapping container root to *uid*/*gid* (the
    caller's by default), no network namespace (an unprivileged user cannot
    give it an interface), /sys bound from the host (a fresh sysfs needs a
    network namespace of the user namespace's own), no ``gid=`` mount
    options (only the one gid is mapped) and no cgroup limits.  Changed in
    place and returned."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    old = spec.get("linux", {})
    lx = spec["linux"] = {
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
        **{k: v for k, v in old.items() if k not in ("uidMappings", "gidMappings", "resources")},
    }
    lx["namespaces"] = [ns for ns in lx.get("namespaces", []) if ns["type"] not in ("network", "user")]
    lx["namespaces"].append({"type": "user"})
    for m in spec.get("mounts", []):
        if m.get("options"):
            m["options"] = [o for o in m["options"] if not o.startswith("gid=")]
        if m.get("type") == "sysfs":
            m.update(type="none", source="/sys", options=["rbind", *m.get("options", [])])
    return spec


def write_spec(bundle: str, rootless: bool = False) -> None:
    import json

    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise XcError(f"File {path} exists. Remove it first")
    spec = default_spec()
    if rootless:
        rootless_spec(spec)
    with open(path, "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")


def features() -> dict[str, Any]:
    """What this runtime supports, in the shape of `runc features`."""
    from .rootfs import _FLAG_OPTIONS, _PROPAGATION
    from .seccomp import FEATURES as SECCOMP

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted(set(_FLAG_OPTIONS) | set(_PROPAGATION) | {"tmpcopyup"}),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": list(__import__("xcontainers.kernel", fromlist=["CAPABILITIES"]).CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": SECCOMP,
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.xcontainers.version": __import__("xcontainers").__version__,
        },
    }
