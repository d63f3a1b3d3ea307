"""Control groups: what a container may consume, and the handle to all of its
processes at once.

Linux has two cgroup interfaces, and a host uses one of them (or both):

* **v1** ("legacy") mounts one filesystem per *hierarchy*, each carrying one
  or more controllers (``memory``, ``cpu,cpuacct``, ...) or none at all (a
  *named* hierarchy such as ``name=systemd``).  A process has one cgroup in
  every hierarchy, so a container's cgroup is really a set of directories,
  one per hierarchy, which the runtime creates, joins and removes together.
  Limits are per-controller files (``memory.limit_in_bytes``,
  ``cpu.cfs_quota_us``, ``pids.max``, ``devices.allow``); the freezer is the
  ``freezer`` controller's ``freezer.state`` (THAWED/FREEZING/FROZEN).
  Quirks this module handles: a new ``cpuset`` cgroup starts with empty
  ``cpuset.cpus``/``cpuset.mems`` (unless ``cgroup.clone_children``) and no
  process can join it until they are filled in; ``memory.memsw.*`` (memory
  plus swap) exists only with swap accounting, and its limit may never be
  below ``memory.limit_in_bytes``, so the write order depends on the values.
* **v2** ("unified") is a single tree.  Controllers are switched on per
  subtree: a child gets the files of controller X only if its parent lists
  ``+X`` in ``cgroup.subtree_control``, which is possible only for the
  controllers in the parent's ``cgroup.controllers``.  Processes live only
  in leaves (apart from the root).  The freezer (``cgroup.freeze``, reported
  by ``frozen`` in ``cgroup.events``) and ``cgroup.kill`` are core files that
  work with no controller enabled.  Limits use other files and units:
  ``memory.max``/``memory.swap.max`` (swap *alone*, where OCI and v1 count
  memory+swap), ``cpu.weight`` (1-10000, where v1 shares are 2-262144) and
  ``cpu.max`` ("quota period").  There is no devices controller; device
  access is an eBPF program, which this module does not load (the runtime
  relies on the device nodes it creates and the capabilities it keeps).
* **hybrid** hosts mount the v1 hierarchies for the controllers and a
  cgroup2 tree (usually at ``<root>/unified``) for process tracking only.
  They count as v1 here; the cgroup2 tree is joined like a named hierarchy.

The hierarchies are discovered from ``/proc/self/mountinfo``: every cgroup
mount visible at or below ``root``.  A container's cgroup path (the OCI
``linux.cgroupsPath``) names the same relative directory in each of them.

A rootless runtime may write only where the host delegated a subtree to
its user (on v2, systemd gives each user's session one).  There it works
as runc does: a hierarchy where the cgroup cannot be made is *skipped*
(the container stays in the caller's cgroup there) unless the config named
the cgroup, and a limit that needs a skipped hierarchy is an error that
says so.  Without a cgroupsPath on v2, a rootless container's cgroup goes
below the caller's own cgroup when that one is writable (delegated):
:func:`rootless_default_path`.
"""

from __future__ import annotations

import errno
import os
import time
from _signal import SIGKILL  # signal's constants without its enum machinery

from ._record import record
from .errors import ConfigError, ContainerError, SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator, NoReturn

__all__ = [
    "DEFAULT_ROOT",
    "DEFAULT_PARENT",
    "V2_CONTROLLERS",
    "Hierarchy",
    "Cgroup",
    "detect",
    "resolve_path",
    "hierarchies",
    "shares_to_weight",
    "prime_moves",
    "stop_priming",
    "rootless_default_path",
]

DEFAULT_ROOT = "/sys/fs/cgroup"
# Without linux.cgroupsPath a container gets a cgroup of its own directly
# below the root of every hierarchy ("/<id>"), as runc gives it one below
# the cgroup it was started from: containers never share a parent's CPU
# weight unless their client asks for one.
DEFAULT_PARENT = ""
# What create() switches on along the path of a v2 cgroup, where available.
V2_CONTROLLERS = ("memory", "pids", "cpu", "cpuset", "io")

_UNIFIED = "unified"
# v1 mount options that are not controller names.
_V1_FLAGS = frozenset({"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"})
_POLL = 0.01


# --- hierarchies ----------------------------------------------------------


@record(frozen=True)
class Hierarchy:
    """One mounted cgroup filesystem.

    ``options`` is what a new mount of the same hierarchy needs: the
    controllers, or ``none,name=X`` for a named one; "" for cgroup2.
    """

    name: str
    mountpoint: str
    fstype: str  # "cgroup" (v1) or "cgroup2"
    controllers: tuple[str, ...]
    options: str

    @property
    def is_v2(self) -> bool:
        return self.fstype == "cgroup2"


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for a space, ...)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mountinfo(path: str = "/proc/self/mountinfo") -> Iterator[tuple[str, str, str, str]]:
    """Yield (major:minor, mount point, fstype, super options) per mount."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, sep, right = line.partition(" - ")
            if not sep:
                continue
            fields, tail = left.split(), right.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            yield fields[2], _unescape(fields[4]), tail[0], tail[2]


def _visible(devno: str, mountpoint: str) -> bool:
    """Whether the mount with this major:minor is the one seen at mountpoint
    (and not hidden by a later mount over it or over a parent directory)."""
    try:
        major, minor = (int(x) for x in devno.split(":"))
        return os.stat(mountpoint).st_dev == os.makedev(major, minor)
    except (OSError, ValueError):
        return False


def _v1_hierarchy(mountpoint: str, options: str) -> Hierarchy:
    controllers, named = [], []
    for opt in options.split(","):
        if opt.startswith("name="):
            named.append(opt)
        elif opt and "=" not in opt and opt not in _V1_FLAGS:
            controllers.append(opt)
    mount_opts = ",".join(controllers + named) if controllers else ",".join(["none"] + named)
    return Hierarchy(os.path.basename(mountpoint), mountpoint, "cgroup", tuple(controllers), mount_opts)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def hierarchies(root: str = DEFAULT_ROOT, mountinfo: str = "/proc/self/mountinfo") -> list[Hierarchy]:
    """The cgroup filesystems visible at or below ``root``, in mount order.

    A cgroup2 mount exactly at ``root`` is named "unified", like the hybrid
    layout's ``<root>/unified``.
    """
    root = os.path.normpath(root)
    found: dict[str, tuple[str, str, str]] = {}
    for devno, mp, fstype, opts in _mountinfo(mountinfo):
        if fstype in ("cgroup", "cgroup2") and _under(mp, root):
            found.pop(mp, None)  # a later mount at the same place is on top
            found[mp] = (devno, fstype, opts)
    out: list[Hierarchy] = []
    for mp, (devno, fstype, opts) in found.items():
        if not _visible(devno, mp):
            continue
        if fstype == "cgroup2":
            name = _UNIFIED if mp == root else os.path.basename(mp)
            out.append(Hierarchy(name, mp, "cgroup2", (), ""))
        else:
            out.append(_v1_hierarchy(mp, opts))
    return out


def detect(root: str = DEFAULT_ROOT) -> str:
    """"v2" when ``root`` itself is a cgroup2 mount (unified), otherwise "v1"
    (legacy or hybrid)."""
    root = os.path.normpath(root)
    return _version(root, hierarchies(root))


def _version(root: str, found: list[Hierarchy]) -> str:
    """detect() on what hierarchies(root) found."""
    if any(h.is_v2 and h.mountpoint == root for h in found):
        return "v2"
    if any(not h.is_v2 for h in found):
        return "v1"
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "v2"
    raise SetupError(f"{root}: no cgroup filesystem is mounted there")


# --- paths ----------------------------------------------------------------


def _check_components(path: str, what: str) -> None:
    for part in path.split("/"):
        if part == "..":
            raise ConfigError(f"{what}: {path!r} must not contain '..'")


def _systemd_path(value: str) -> str:
    """"slice:prefix:name" -> "/<slice>/<prefix>-<name>.scope"."""
    slice_, prefix, name = value.split(":")
    if ".." in (slice_, prefix, name):
        raise ConfigError(f"linux.cgroupsPath: {value!r} must not contain '..'")
    slice_ = slice_ or "system.slice"
    if not slice_.endswith(".slice") or "/" in slice_:
        raise ConfigError(f"linux.cgroupsPath: {value!r}: the systemd slice must be a name ending in '.slice'")
    if not name or "/" in name or "/" in prefix:
        raise ConfigError(f"linux.cgroupsPath: {value!r}: expected 'slice:prefix:name'")
    if name.endswith(".slice"):
        unit = name
    else:
        unit = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    return f"/{slice_}/{unit}"


def resolve_path(cgroups_path: str | None, container_id: str) -> str:
    """The container's cgroup as an absolute path within every hierarchy.

    ``None`` gives "/<id>"; an absolute path is used as given; a
    relative one is taken from the hierarchy root; the systemd driver's
    "slice:prefix:name" becomes "/<slice>/<prefix>-<name>.scope".
    """
    if not cgroups_path:
        if container_id in ("", ".", "..") or "/" in container_id:
            raise ConfigError(f"container id {container_id!r} cannot name a cgroup")
        path = f"{DEFAULT_PARENT}/{container_id}"
    elif not cgroups_path.startswith("/") and cgroups_path.count(":") == 2:
        _check_components(cgroups_path, "linux.cgroupsPath")
        path = _systemd_path(cgroups_path)
    else:
        _check_components(cgroups_path, "linux.cgroupsPath")
        path = "/" + cgroups_path.lstrip("/")
    path = os.path.normpath(path)
    if path == "/":
        raise ConfigError("linux.cgroupsPath: must name a cgroup below the root, not the root itself")
    return path


# --- file access ----------------------------------------------------------


class _Denied(SetupError):
    """The kernel refused to make a cgroup for lack of permission."""


def rootless_default_path(container_id: str, root: str = DEFAULT_ROOT) -> str | None:
    """On a cgroup v2 host, "<the caller's cgroup>/xc-runtime-<id>" when the
    caller may create cgroups there and move processes (a delegated
    subtree); None otherwise."""
    root = os.path.normpath(root)
    if not os.path.exists(os.path.join(root, "cgroup.controllers")):
        return None
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="surrogateescape") as f:
            own = next((line[3:].strip() for line in f if line.startswith("0::")), None)
    except OSError:
        return None
    if not own or own == "/":
        return None
    d = os.path.join(root, own.lstrip("/"))
    if not (os.access(d, os.W_OK | os.X_OK) and os.access(os.path.join(d, "cgroup.procs"), os.W_OK)):
        return None
    return os.path.normpath(f"{own}/xc-runtime-{container_id}")


def _read(path: str) -> str:
    with open(path, encoding="ascii") as f:
        return f.read().strip()


def _read_int(path: str) -> int | None:
    try:
        text = _read(path)
    except OSError:
        return None
    return None if text == "max" else int(text)


def _write(path: str, value: str) -> None:
    """One write(2) of value; a kernel refusal becomes a SetupError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise SetupError(f"{path}: cannot write {value!r}: {e.strerror or e}") from None


def _set(path: str, value: int | str) -> None:
    _write(path, str(value))


def _procs(directory: str) -> list[int]:
    """The pids in cgroup.procs of directory and every cgroup below it."""
    out: set[int] = set()
    for dirpath, _dirs, _files in os.walk(directory):
        try:
            text = _read(os.path.join(dirpath, "cgroup.procs"))
        except OSError:
            continue
        out.update(int(x) for x in text.split())
    return sorted(out)


def shares_to_weight(shares: int) -> int:
    """runc's map from v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000)."""
    if shares == 0:
        return 0
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def _device_rule(d: dict[str, Any]) -> str:
    def num(v: Any) -> str:
        return "*" if v is None or v == -1 else str(v)

    return f"{d.get('type') or 'a'} {num(d.get('major'))}:{num(d.get('minor'))} {d.get('access') or 'rwm'}"


def _unset(v: Any) -> bool:
    return v is None or v == 0


def _limit(v: int, unlimited: str) -> str:
    return unlimited if v == -1 else str(v)


# --- the cgroup -----------------------------------------------------------


class Cgroup:
    """A container's cgroup: the same relative path in every hierarchy."""

    def __init__(self, version: str, path: str, root: str, hier: list[Hierarchy], created: list[str] | None = None):
        self.version = version
        self.path = path
        self.root = root
        self._hier = {h.name: h for h in hier}
        self.dirs: dict[str, str] = {h.name: self._join(h.mountpoint) for h in hier}
        # Directories create() made (None: create() has not run yet).
        self._created: list[str] | None = None if created is None else list(created)
        # Hierarchies create(skip_denied=True) left out: name -> (hierarchy, why).
        self.skipped: dict[str, tuple[Hierarchy, str]] = {}

    def __repr__(self) -> str:
        return f"Cgroup({self.version}, {self.path!r})"

    def _join(self, mountpoint: str) -> str:
        return os.path.join(mountpoint, self.path.lstrip("/"))

    @classmethod
    def open(cls, path: str, root: str = DEFAULT_ROOT) -> "Cgroup":
        """The cgroup at ``path`` (as from resolve_path) on this host."""
        if not path.startswith("/") or os.path.normpath(path) == "/":
            raise ConfigError(f"linux.cgroupsPath: {path!r} must be an absolute path below the root")
        _check_components(path, "linux.cgroupsPath")
        root = os.path.normpath(root)
        found = hierarchies(root)
        version = _version(root, found)
        if version == "v2":
            found = [h for h in found if h.is_v2 and h.mountpoint == root]
        return cls(version, os.path.normpath(path), root, found)

    # -- state --

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready record for the container's state file.

        Taken before create(), "created" lists the directories that do not
        exist yet, i.e. those create() is about to make, so that a record
        saved early still lets destroy() remove them."""
        return {
            "version": self.version,
            "path": self.path,
            "root": self.root,
            "hierarchies": [
                {"name": h.name, "mountpoint": h.mountpoint, "fstype": h.fstype,
                 "controllers": list(h.controllers), "options": h.options}
                for h in self._hier.values()
            ],
            "created": list(self._created) if self._created is not None else self._missing(),
        }

    def _missing(self) -> list[str]:
        return [child for h in self._hier.values() for _, child in self._levels(h) if not os.path.isdir(child)]

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "Cgroup":
        """Rebuild the handle that to_state() recorded."""
        try:
            hier = [
                Hierarchy(h["name"], h["mountpoint"], h["fstype"], tuple(h["controllers"]), h["options"])
                for h in d["hierarchies"]
            ]
            return cls(d["version"], d["path"], d["root"], hier, list(d.get("created") or []))
        except (KeyError, TypeError) as e:
            raise ContainerError(f"container state: the cgroup record is malformed ({e})") from None

    # -- lookup --

    def _v1(self, controller: str) -> Hierarchy | None:
        for h in self._hier.values():
            if not h.is_v2 and controller in h.controllers:
                return h
        return None

    def _unified(self) -> Hierarchy | None:
        return next((h for h in self._hier.values() if h.is_v2), None)

    def _v2_enabled(self) -> set[str]:
        h = self._unified()
        try:
            return set(_read(os.path.join(self.dirs[h.name], "cgroup.controllers")).split()) if h else set()
        except OSError:
            return set()

    def _skipped_error(self, field: str, name: str) -> SetupError:
        h, why = self.skipped[name]
        return SetupError(
            f"{field}: cannot be set: the container has no cgroup of its own in {h.mountpoint} ({why}); "
            f"rootless, limits need a cgroup delegated to the user"
        )

    def _dir(self, controller: str, field: str) -> str:
        """The directory whose files carry controller; ConfigError naming
        the field when the host cannot provide it."""
        if self.version == "v1":
            h = self._v1(controller)
            if h is None:
                for name, (sk, _) in self.skipped.items():
                    if controller in sk.controllers:
                        raise self._skipped_error(field, name)
                have = ", ".join(sorted({c for x in self._hier.values() for c in x.controllers})) or "none"
                raise ConfigError(
                    f"{field}: needs the {controller} cgroup controller, which is not mounted on this host "
                    f"(cgroup v1 controllers: {have})"
                )
            return self.dirs[h.name]
        v2 = "io" if controller == "blkio" else controller
        if _UNIFIED in self.skipped:
            raise self._skipped_error(field, _UNIFIED)
        enabled = self._v2_enabled()
        if v2 not in enabled:
            raise ConfigError(
                f"{field}: needs the {v2} cgroup controller, which is not enabled for {self.dirs.get(_UNIFIED)} "
                f"(cgroup v2 controllers there: {', '.join(sorted(enabled)) or 'none'})"
            )
        return self.dirs[_UNIFIED]

    # -- create --

    def create(self, skip_denied: bool = False) -> None:
        """mkdir -p the cgroup in every hierarchy.  With *skip_denied* (a
        rootless runtime), a hierarchy where the kernel refuses for lack of
        permission is left out and noted in ``skipped``."""
        if self._created is None:
            self._created = []
        for h in list(self._hier.values()):
            try:
                if h.is_v2:
                    self._create_v2(h)
                else:
                    self._create_v1(h)
            except _Denied as e:
                if not skip_denied:
                    raise
                self._skip(h, str(e))

    def _skip(self, h: Hierarchy, why: str) -> None:
        mine = [d for d in self._created or [] if _under(d, h.mountpoint)]
        for d in sorted(mine, key=lambda p: p.count("/"), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
            self._created.remove(d)  # type: ignore[union-attr]
        del self._hier[h.name]
        del self.dirs[h.name]
        self.skipped[h.name] = (h, why)

    def _levels(self, h: Hierarchy) -> Iterator[tuple[str, str]]:
        """(parent, child) directories from the mount point down to the leaf."""
        parent = h.mountpoint
        for part in self.path.strip("/").split("/"):
            child = os.path.join(parent, part)
            yield parent, child
            parent = child

    def _mkdir(self, d: str) -> None:
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            return
        except OSError as e:
            err = _Denied if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS) else SetupError
            raise err(f"{d}: cannot create cgroup: {e.strerror}") from None
        if self._created is not None and d not in self._created:
            self._created.append(d)

    def _create_v1(self, h: Hierarchy) -> None:
        for parent, child in self._levels(h):
            self._mkdir(child)
            if "cpuset" in h.controllers:
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not _read(os.path.join(child, name)):
                        _write(os.path.join(child, name), _read(os.path.join(parent, name)))

    def _create_v2(self, h: Hierarchy) -> None:
        for parent, child in self._levels(h):
            self._enable_v2(parent)
            self._mkdir(child)

    @staticmethod
    def _enable_v2(d: str) -> None:
        """Switch on V2_CONTROLLERS for d's children, as far as d has them.
        A refusal (e.g. EBUSY: d holds processes) leaves that controller off;
        apply() then reports it as missing for any limit that needs it."""
        try:
            have = set(_read(os.path.join(d, "cgroup.controllers")).split())
            on = set(_read(os.path.join(d, "cgroup.subtree_control")).split())
        except OSError as e:
            raise SetupError(f"{d}: cannot read the cgroup's controllers: {e.strerror}") from None
        for c in V2_CONTROLLERS:
            if c in have and c not in on:
                try:
                    _write(os.path.join(d, "cgroup.subtree_control"), f"+{c}")
                except SetupError:
                    pass

    # -- apply --

    def apply(self, resources: dict[str, Any]) -> None:
        """Write the OCI linux.resources object into the cgroup."""
        r = resources or {}
        steps: list[tuple[str, Callable[[Any], None]]] = [
            ("cpu", self._apply_cpu),
            ("memory", self._apply_memory),
            ("pids", self._apply_pids),
            ("devices", self._apply_devices),
            ("blockIO", self._apply_blkio),
            ("hugepageLimits", self._apply_hugetlb),
            ("network", self._apply_network),
            ("rdma", self._apply_rdma),
            ("unified", self._apply_unified),
        ]
        for key, fn in steps:
            if r.get(key):
                fn(r[key])

    def _apply_memory(self, m: dict[str, Any]) -> None:
        limit, swap, reservation = m.get("limit"), m.get("swap"), m.get("reservation")
        f = "linux.resources.memory."
        if self.version == "v1":
            self._memory_v1(m, f)
            return
        if not _unset(limit):
            _set(os.path.join(self._dir("memory", f + "limit"), "memory.max"), _limit(limit, "max"))
        if not _unset(swap):
            d = self._dir("memory", f + "swap")
            if os.path.exists(os.path.join(d, "memory.swap.max")):
                _set(os.path.join(d, "memory.swap.max"), self._swap_v2(limit, swap))
        if not _unset(reservation):
            _set(os.path.join(self._dir("memory", f + "reservation"), "memory.low"), _limit(reservation, "max"))

    @staticmethod
    def _swap_v2(limit: int | None, swap: int) -> str:
        """OCI swap counts memory+swap; v2 memory.swap.max is swap alone."""
        if swap == -1:
            return "max"
        if _unset(limit) or limit == -1:
            raise ConfigError("linux.resources.memory.swap: cannot limit swap without a memory limit on cgroup v2")
        if swap < limit:
            raise ConfigError(f"linux.resources.memory.swap: {swap} is below the memory limit {limit}")
        return str(swap - limit)

    def _memory_v1(self, m: dict[str, Any], f: str) -> None:
        limit, swap = m.get("limit"), m.get("swap")
        if limit == -1 and _unset(swap):
            swap = -1  # lifting the limit lifts memory+swap too, as runc does
        if not _unset(limit):
            self._limits_v1(self._dir("memory", f + "limit"), limit, swap)
        elif not _unset(swap):
            self._limits_v1(self._dir("memory", f + "swap"), None, swap)
        if not _unset(m.get("reservation")):
            _set(os.path.join(self._dir("memory", f + "reservation"), "memory.soft_limit_in_bytes"), m["reservation"])
        if m.get("swappiness") is not None and m["swappiness"] >= 0:
            _set(os.path.join(self._dir("memory", f + "swappiness"), "memory.swappiness"), m["swappiness"])
        if m.get("disableOOMKiller"):
            _set(os.path.join(self._dir("memory", f + "disableOOMKiller"), "memory.oom_control"), 1)

    @staticmethod
    def _limits_v1(d: str, limit: int | None, swap: int | None) -> None:
        """memory.limit_in_bytes and memory.memsw.limit_in_bytes (the latter
        only with swap accounting).  memsw may never be below the memory
        limit, so whichever of the two grows is written first."""
        lim_file = os.path.join(d, "memory.limit_in_bytes")
        sw_file = os.path.join(d, "memory.memsw.limit_in_bytes")
        if swap is None or swap == 0 or not os.path.exists(sw_file):
            if limit is not None:
                _set(lim_file, limit)
            return
        current = _read_int(lim_file) or 0
        if swap == -1 or current < swap:
            _set(sw_file, swap)
            if limit is not None:
                _set(lim_file, limit)
        else:
            if limit is not None:
                _set(lim_file, limit)
            _set(sw_file, swap)

    def _apply_cpu(self, c: dict[str, Any]) -> None:
        f = "linux.resources.cpu."
        for key in ("cpus", "mems"):
            if c.get(key):
                _write(os.path.join(self._dir("cpuset", f + key), f"cpuset.{key}"), c[key])
        if self.version == "v1":
            self._cpu_v1(c, f)
        else:
            self._cpu_v2(c, f)

    def _cpu_v1(self, c: dict[str, Any], f: str) -> None:
        if not _unset(c.get("shares")):
            _set(os.path.join(self._dir("cpu", f + "shares"), "cpu.shares"), c["shares"])
        period, quota = c.get("period"), c.get("quota")
        if not _unset(period):
            d = self._dir("cpu", f + "period")
            try:
                _set(os.path.join(d, "cpu.cfs_period_us"), period)
            except SetupError:
                if _unset(quota):
                    raise
                # the old quota does not fit the new period: quota first
                _set(os.path.join(d, "cpu.cfs_quota_us"), quota)
                _set(os.path.join(d, "cpu.cfs_period_us"), period)
        if not _unset(quota):
            _set(os.path.join(self._dir("cpu", f + "quota"), "cpu.cfs_quota_us"), quota)
        if not _unset(c.get("burst")):
            _set(os.path.join(self._dir("cpu", f + "burst"), "cpu.cfs_burst_us"), c["burst"])
        if not _unset(c.get("realtimePeriod")):
            _set(os.path.join(self._dir("cpu", f + "realtimePeriod"), "cpu.rt_period_us"), c["realtimePeriod"])
        if not _unset(c.get("realtimeRuntime")):
            _set(os.path.join(self._dir("cpu", f + "realtimeRuntime"), "cpu.rt_runtime_us"), c["realtimeRuntime"])

    def _cpu_v2(self, c: dict[str, Any], f: str) -> None:
        if not _unset(c.get("shares")):
            _set(os.path.join(self._dir("cpu", f + "shares"), "cpu.weight"), shares_to_weight(c["shares"]))
        period, quota = c.get("period"), c.get("quota")
        if not _unset(quota) or not _unset(period):
            d = self._dir("cpu", f + ("quota" if not _unset(quota) else "period"))
            value = str(quota) if quota is not None and quota > 0 else "max"
            _write(os.path.join(d, "cpu.max"), value if _unset(period) else f"{value} {period}")
        if not _unset(c.get("burst")):
            _set(os.path.join(self._dir("cpu", f + "burst"), "cpu.max.burst"), c["burst"])
        for key in ("realtimePeriod", "realtimeRuntime"):
            if not _unset(c.get(key)):
                raise ConfigError(f"{f}{key}: real-time cpu limits do not exist in cgroup v2")

    def _apply_pids(self, p: dict[str, Any]) -> None:
        limit = p.get("limit")
        if limit is not None:
            d = self._dir("pids", "linux.resources.pids.limit")
            _write(os.path.join(d, "pids.max"), "max" if limit in (0, -1) else str(limit))

    def _apply_devices(self, rules: list[dict[str, Any]]) -> None:
        if self.version == "v2":
            return  # an eBPF program on v2; see the module docstring
        d = self._dir("devices", "linux.resources.devices")
        _write(os.path.join(d, "devices.deny"), "a")
        for rule in rules:
            _write(os.path.join(d, "devices.allow" if rule.get("allow") else "devices.deny"), _device_rule(rule))

    def _apply_blkio(self, b: dict[str, Any]) -> None:
        f = "linux.resources.blockIO."
        if not _unset(b.get("weight")):
            self._blkio_weight(b["weight"], f + "weight")
        v1 = self.version == "v1"
        throttles = {
            "throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
            "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
            "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
            "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops"),
        }
        for key, (v1_file, v2_key) in throttles.items():
            for dev in b.get(key) or []:
                d = self._dir("blkio", f + key)
                rate = dev.get("rate", 0)
                if v1:
                    _write(os.path.join(d, v1_file), f"{dev['major']}:{dev['minor']} {rate}")
                else:
                    _write(os.path.join(d, "io.max"), f"{dev['major']}:{dev['minor']} {v2_key}={rate or 'max'}")

    def _blkio_weight(self, weight: int, field: str) -> None:
        d = self._dir("blkio", field)
        if self.version == "v1":
            names: tuple[tuple[str, int], ...] = (("blkio.weight", weight), ("blkio.bfq.weight", weight))
        else:  # io.weight is 1..10000 where blkio.weight is 10..1000
            names = (("io.bfq.weight", weight), ("io.weight", 1 + (weight - 10) * 9999 // 990))
        for name, value in names:
            if os.path.exists(os.path.join(d, name)):
                _set(os.path.join(d, name), value)
                return
        raise ConfigError(f"{field}: {d} has no {' or '.join(n for n, _ in names)} (no proportional I/O scheduler)")

    def _apply_hugetlb(self, limits: list[dict[str, Any]]) -> None:
        for i, h in enumerate(limits):
            field = f"linux.resources.hugepageLimits[{i}]"
            d = self._dir("hugetlb", field)
            size = str(h.get("pageSize", ""))
            name = f"hugetlb.{size}.limit_in_bytes" if self.version == "v1" else f"hugetlb.{size}.max"
            if not os.path.exists(os.path.join(d, name)):
                raise ConfigError(f"{field}.pageSize: {size!r} is not a huge page size of this host")
            _set(os.path.join(d, name), h.get("limit", 0))

    def _apply_network(self, n: dict[str, Any]) -> None:
        f = "linux.resources.network."
        if self.version == "v2":
            raise ConfigError(f"{f[:-1]}: net_cls/net_prio do not exist in cgroup v2")
        if n.get("classID") is not None:
            _set(os.path.join(self._dir("net_cls", f + "classID"), "net_cls.classid"), n["classID"])
        for p in n.get("priorities") or []:
            d = self._dir("net_prio", f + "priorities")
            _write(os.path.join(d, "net_prio.ifpriomap"), f"{p['name']} {p['priority']}")

    def _apply_rdma(self, r: dict[str, Any]) -> None:
        keys = (("hca_handle", "hcaHandles"), ("hca_object", "hcaObjects"))
        for dev, lim in r.items():
            parts = [f"{k}={lim[v]}" for k, v in keys if lim.get(v) is not None]
            if parts:
                d = self._dir("rdma", f"linux.resources.rdma.{dev}")
                _write(os.path.join(d, "rdma.max"), f"{dev} {' '.join(parts)}")

    def _apply_unified(self, u: dict[str, str]) -> None:
        if self.version != "v2":
            raise ConfigError("linux.resources.unified: needs a cgroup v2 host; this one uses cgroup v1")
        if _UNIFIED in self.skipped:
            raise self._skipped_error("linux.resources.unified", _UNIFIED)
        d = self.dirs[_UNIFIED]
        for key, value in u.items():
            if "/" in key or key.startswith("."):
                raise ConfigError(f"linux.resources.unified.{key}: not a cgroup file name")
            path = os.path.join(d, key)
            if not os.path.exists(path):
                ctl = key.split(".", 1)[0]
                raise ConfigError(
                    f"linux.resources.unified.{key}: {path} does not exist "
                    f"(is the {ctl} controller enabled? here: {', '.join(sorted(self._v2_enabled())) or 'none'})"
                )
            _write(path, value)

    # -- processes --

    def add(self, pid: int) -> None:
        """Move pid (all its threads) into the cgroup in every hierarchy
        (and stop the primer, see prime_moves(): its work is done)."""
        try:
            for d in self.dirs.values():
                _set(os.path.join(d, "cgroup.procs"), pid)
        finally:
            stop_priming(reap=False)

    def _procs_dir(self) -> str | None:
        """Every process is in every hierarchy; prefer pids, then freezer,
        then the cgroup2 tree, then whatever exists."""

        def rank(h: Hierarchy) -> int:
            return 0 if "pids" in h.controllers else 1 if "freezer" in h.controllers else 2 if h.is_v2 else 3

        for h in sorted(self._hier.values(), key=rank):
            if os.path.isdir(self.dirs[h.name]):
                return self.dirs[h.name]
        return None

    def pids(self) -> list[int]:
        """Every process in the cgroup, including its sub-cgroups."""
        d = self._procs_dir()
        return _procs(d) if d else []

    # -- freezer --

    def _freezer(self) -> tuple[str, str]:
        """("v1", freezer dir) or ("v2", unified dir)."""
        h = self._v1("freezer") if self.version == "v1" else None
        if h is not None:
            return "v1", self.dirs[h.name]
        u = self._unified()
        if u is not None and os.path.exists(os.path.join(self.dirs[u.name], "cgroup.freeze")):
            return "v2", self.dirs[u.name]
        raise SetupError(f"cgroup {self.path}: no freezer (no v1 freezer hierarchy and no cgroup v2 cgroup.freeze)")

    def freeze(self, timeout: float = 10.0) -> None:
        """Stop every process in the cgroup; returns once they all are."""
        self._set_frozen(True, timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        """Let the cgroup's processes run again."""
        self._set_frozen(False, timeout)

    def _set_frozen(self, frozen: bool, timeout: float) -> None:
        kind, d = self._freezer()
        if kind == "v1":
            f, want = os.path.join(d, "freezer.state"), "FROZEN" if frozen else "THAWED"
        else:
            f, want = os.path.join(d, "cgroup.freeze"), "1" if frozen else "0"
        deadline = time.monotonic() + timeout
        delay = _POLL
        while True:
            # v1 FREEZING can stall on a task that forks meanwhile: repeat the write.
            _write(f, want)
            if self._frozen_state(kind, d) == frozen:
                return
            if time.monotonic() > deadline:
                if frozen:
                    _write(f, "THAWED" if kind == "v1" else "0")
                raise SetupError(f"{f}: the cgroup did not become {want} within {timeout}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    @staticmethod
    def _frozen_state(kind: str, d: str) -> bool | None:
        """True frozen, False thawed, None in between (v1 FREEZING)."""
        if kind == "v1":
            state = _read(os.path.join(d, "freezer.state"))
            return {"FROZEN": True, "THAWED": False}.get(state)
        for line in _read(os.path.join(d, "cgroup.events")).splitlines():
            key, _, value = line.partition(" ")
            if key == "frozen":
                return value == "1"
        return None

    def is_frozen(self) -> bool:
        try:
            kind, d = self._freezer()
            return self._frozen_state(kind, d) is True
        except (SetupError, OSError):
            return False

    # -- signals --

    def kill_all(self, sig: int) -> None:
        """Send sig to every process in the cgroup.

        SIGKILL goes through cgroup.kill where the kernel has it (atomic
        against forks; any process listed only in v1 hierarchies is then
        signalled too).  Otherwise the cgroup is frozen while the signals are
        sent, so that no new process escapes, and thawed again unless it was
        frozen already."""
        if sig == SIGKILL and self._cgroup_kill():
            _signal(self.pids(), sig)
            return
        froze = False
        if not self.is_frozen():
            try:
                self.freeze(timeout=2.0)
                froze = True
            except SetupError:
                pass  # no freezer, or a task that will not freeze: signal anyway
        try:
            _signal(self.pids(), sig)
        finally:
            if froze:
                self.thaw()

    def _cgroup_kill(self) -> bool:
        u = self._unified()
        kill_file = os.path.join(self.dirs[u.name], "cgroup.kill") if u else ""
        if not kill_file or not os.path.exists(kill_file):
            return False
        _write(kill_file, "1")
        return True

    # -- destroy --

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the cgroup (and its sub-cgroups) from every hierarchy, then
        the ancestors create() made, if empty.  rmdir is retried while the
        kernel says EBUSY (exiting processes still count)."""
        deadline = time.monotonic() + timeout
        failed: list[str] = []
        for d in self.dirs.values():
            failed += _remove_tree(d, deadline)
        if failed:
            raise SetupError(f"cannot remove cgroup(s) {', '.join(failed)}: still busy after {timeout}s")
        for d in sorted(self._created or [], key=lambda p: p.count("/"), reverse=True):
            if d not in self.dirs.values():
                try:
                    os.rmdir(d)
                except OSError:
                    pass  # not empty: other cgroups live there now; ENOENT: gone
        self._created = []

    # -- stats --

    def stats(self) -> dict[str, Any]:
        """A runc-events-like subset: cpu usage (ns), memory usage and limit,
        pids current and limit; what the host does not report is left out."""
        out: dict[str, Any] = {}
        v1 = self.version == "v1"
        cpu_ns = self._cpu_usage_ns(v1)
        if cpu_ns is not None:
            out["cpu"] = {"usage": {"total": cpu_ns}}
        mem = self._stat_pair("memory", "memory.usage_in_bytes" if v1 else "memory.current",
                              "memory.limit_in_bytes" if v1 else "memory.max")
        if mem:
            out["memory"] = {"usage": {"usage": mem[0], "limit": mem[1]}}
        pids = self._stat_pair("pids", "pids.current", "pids.max")
        if pids:
            out["pids"] = {"current": pids[0], "limit": pids[1] or 0}
        return out

    def _stat_dir(self, controller: str) -> str | None:
        try:
            return self._dir(controller, "stats")
        except ConfigError:
            return None

    def _stat_pair(self, controller: str, cur: str, lim: str) -> tuple[int, int | None] | None:
        d = self._stat_dir(controller)
        if d is None:
            return None
        value = _read_int(os.path.join(d, cur))
        return None if value is None else (value, _read_int(os.path.join(d, lim)))

    def _cpu_usage_ns(self, v1: bool) -> int | None:
        if v1:
            d = self._stat_dir("cpuacct")
            return _read_int(os.path.join(d, "cpuacct.usage")) if d else None
        try:
            for line in _read(os.path.join(self.dirs[_UNIFIED], "cpu.stat")).splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) * 1000
        except OSError:
            pass
        return None

    # -- mounting inside the container --

    def mount_specs(self) -> list[tuple[str, str, str]]:
        """(name under the container's cgroup mount point, host directory of
        this cgroup, options for a real cgroup mount).  Options "" mean a
        cgroup2 mount; on v2 the one entry has the name "" (the mount point
        itself)."""
        if self.skipped:
            return self._mount_specs_rootless()
        if self.version == "v2":
            return [("", self.dirs[_UNIFIED], "")]
        return [(h.name, self.dirs[h.name], h.options) for h in self._hier.values()]

    def _mount_specs_rootless(self) -> list[tuple[str, str, str]]:
        """mount_specs() where hierarchies were skipped: there the container
        sees the cgroup it stays in, the caller's own (as with runc)."""
        own: dict[frozenset[str], str] = {}
        try:
            with open("/proc/self/cgroup", encoding="utf-8", errors="surrogateescape") as f:
                for line in f:
                    _, ctrls, path = line.rstrip("\n").split(":", 2)
                    own[frozenset(ctrls.split(",")) if ctrls else frozenset()] = path
        except OSError:
            pass
        out = []
        for h in [*self._hier.values(), *(sk for sk, _ in self.skipped.values())]:
            if h.name in self.dirs:
                hostdir = self.dirs[h.name]
            else:
                key = frozenset(h.controllers or h.options.split(",")[1:]) if not h.is_v2 else frozenset()
                hostdir = os.path.join(h.mountpoint, own.get(key, "/").lstrip("/"))
            out.append(("" if self.version == "v2" else h.name, hostdir, "" if h.is_v2 else h.options))
        return out


# --- the first move -------------------------------------------------------

_PRIMER_INTERVAL = 0.001  # s between the primer's moves
_PRIMER_LIFETIME = 2.0  # s; it is normally stopped after some 20 ms
_primer_pid = 0


def prime_moves(root: str = DEFAULT_ROOT) -> None:
    """Make the first cgroup move of this process cheap: call it as
    early as possible in a command that will call :meth:`Cgroup.add`.

    A write to ``cgroup.procs`` takes a global lock (the kernel's
    cgroup_threadgroup_rwsem) for writing, and the first such write after a
    quiet spell waits for an RCU grace period before it can (5 to 25 ms on
    a 2-CPU VM, more than all the rest of ``create``).  Writes that
    follow within about a grace period of the previous one do not wait.  So
    this forks a *primer*, a child that moves itself into the cgroup it is
    already in (a move that changes nothing) at once and then every
    millisecond: the grace period goes by while the runtime loads its modules
    and the config, and the runtime's own move of the container's init is
    cheap.  :meth:`Cgroup.add` stops the primer; it also dies with the
    runtime, and after _PRIMER_LIFETIME at most.  Where no cgroup file can be
    found, nothing is started.
    """
    stop_priming()
    procs = _own_procs_file(os.path.normpath(root))
    if procs is None:
        return
    parent = os.getpid()
    try:
        pid = os.fork()
    except OSError:
        return
    if pid == 0:
        _primer_main(procs, parent)
    global _primer_pid
    _primer_pid = pid


def stop_priming(reap: bool = True) -> None:
    """Stop the primer of prime_moves(), if one runs, and reap it (or leave
    that to a later call, so as not to wait for it to exit now)."""
    global _primer_pid
    pid = _primer_pid
    if not pid:
        return
    try:
        os.kill(pid, SIGKILL)
    except ProcessLookupError:
        pass
    if reap:
        _primer_pid = 0
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _own_procs_file(root: str) -> str | None:
    """The cgroup.procs file of this process's cgroup in one of the
    hierarchies under *root*, found from /proc/self/cgroup and the usual
    mount layout (a wrong guess would only move the primer elsewhere)."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        # v1: <root>/<controllers> (name=systemd: <root>/systemd); v2: <root>
        # itself, or <root>/unified beside v1 hierarchies (hybrid).
        subdirs = (ctrls.removeprefix("name="),) if ctrls else ("", _UNIFIED)
        for sub in subdirs:
            procs = os.path.join(root, sub, path.lstrip("/"), "cgroup.procs")
            if os.path.exists(procs):
                return procs
    return None


def _primer_main(procs: str, parent: int) -> NoReturn:
    """The primer: move this process into *procs* until killed."""
    try:
        from . import kernel

        kernel.prctl(kernel.PR.SET_PDEATHSIG, SIGKILL)
        if os.getppid() != parent:
            os._exit(0)  # the runtime is already gone
        me = str(os.getpid()).encode()
        fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
        # Hold none of the runtime's files (a caller may wait for EOF on them).
        os.closerange(0, fd)
        os.closerange(fd + 1, 1 << 20)
        end = time.monotonic() + _PRIMER_LIFETIME
        while time.monotonic() < end:
            os.write(fd, me)
            time.sleep(_PRIMER_INTERVAL)
    except BaseException:  # noqa: BLE001 - a primer that cannot move just stops
        pass
    finally:
        os._exit(0)


def _signal(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _remove_tree(d: str, deadline: float) -> list[str]:
    """rmdir d and the cgroups below it, deepest first; the dirs left."""
    left: list[str] = []
    for dirpath, _dirs, _files in os.walk(d, topdown=False):
        if not _rmdir_retry(dirpath, deadline):
            left.append(dirpath)
    return left


def _rmdir_retry(d: str, deadline: float) -> bool:
    delay = _POLL
    while True:
        try:
            os.rmdir(d)
            return True
        except FileNotFoundError:
            return True
        except OSError as e:
            if e.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
