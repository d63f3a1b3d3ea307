"""Rootless containers: what changes when the runtime is not root.

An unprivileged user can make every namespace a container needs, but only
from inside a *user namespace* of its own: the kernel lets the creator of a
user namespace hold all capabilities in it (and in the namespaces made
after it), never over what the parent namespace owns.  So a rootless
container always has a new user namespace, and everything else follows
from who owns what:

* **Id maps.**  A process in the parent namespace writes the new
  namespace's ``uid_map``/``gid_map`` once.  Without privilege the kernel
  accepts exactly one line mapping the writer's own effective id, and for
  ``gid_map`` only after ``setgroups`` was set to ``deny`` (otherwise the
  user could drop a group that denies it access).  Anything more, e.g. the
  65536 ids a distribution gives each user in ``/etc/subuid`` and
  ``/etc/subgid``, goes through the set-uid helpers ``newuidmap`` and
  ``newgidmap`` (Debian's ``uidmap``), which check the ranges against those
  files.  This module checks them first too, so that a missing range is a
  one-line error before anything is made.
* **Mounts.**  The mount namespace belongs to the user namespace, so bind
  mounts, tmpfs, proc (with a pid namespace of its own), devpts, mqueue
  (with its own ipc namespace), overlayfs (Linux 5.11+) and FUSE may be
  mounted.  sysfs needs a network namespace owned by the user namespace:
  without one it is bound from the host instead (see :mod:`rootfs`).
  Device nodes cannot be made (mknod of a device is refused in a user
  namespace): the host's nodes are bound.  Mount flags the host locked
  (nosuid, nodev, noexec, ro, atime) must be kept on every remount.
* **cgroups** belong to the host's root unless delegated (cgroup v2 with
  systemd gives each user's session a subtree it owns).  Where the
  hierarchy is not writable and no limit was asked, the container simply
  has no cgroup of its own (as with runc); a limit that cannot be set is an
  error (see :mod:`cgroups`).
* **Networking.**  A new network namespace has only a loopback device; an
  unprivileged user cannot add a veth pair to the host.  User-mode network
  stacks (slirp4netns, pasta) give it a tap device backed by the user's own
  sockets: see :mod:`rootless_net`.

The runtime is rootless when it does not run as root (``--rootless auto``),
or when told so (``--rootless true``).
"""

from __future__ import annotations

import os

from .errors import ConfigError, SetupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .spec import IdMapping, Spec

__all__ = [
    "is_rootless",
    "user_name",
    "runtime_dir",
    "data_dir",
    "check_spec",
    "helper_exists",
    "write_id_maps",
    "subid_ranges",
    "SUBUID",
    "SUBGID",
    "container_id_maps",
    "run_in_userns",
    "in_own_userns",
]

SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"


def is_rootless(flag: str | None = "auto") -> bool:
    """Whether the runtime works rootless: ``--rootless true|false|auto``
    (auto: when not running as root)."""
    if flag in ("true", "1", "t", "True", "TRUE"):
        return True
    if flag in ("false", "0", "f", "False", "FALSE"):
        return False
    return os.geteuid() != 0


def runtime_dir(name: str, other: str = "give the state directory with --root") -> str:
    """``$XDG_RUNTIME_DIR/<name>`` (a per-user tmpfs the login manager
    makes, as runc uses), or ``/run/user/<uid>/<name>`` when the variable is
    unset but that directory is the user's."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if not base:
        guess = f"/run/user/{os.geteuid()}"
        try:
            if os.stat(guess).st_uid == os.geteuid():
                base = guess
        except OSError:
            pass
    if not base:
        raise ConfigError(
            f"XDG_RUNTIME_DIR is not set: a rootless runtime keeps its state there (set it, or {other})"
        )
    return os.path.join(base, name)


def data_dir(*parts: str) -> str:
    """``$XDG_DATA_HOME/xcontainers/...`` (default ``~/.local/share``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "xcontainers", *parts)


# --- subordinate ids ----------------------------------------------------------


def user_name(uid: int | None = None) -> str:
    """The login name of *uid* (default: the caller), or the number."""
    import pwd

    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def subid_ranges(path: str, uid: int, name: str | None = None) -> list[tuple[int, int]]:
    """The (start, count) ranges *path* (/etc/subuid or /etc/subgid) gives
    the user *uid* (lines name it by login name or by number)."""
    name = name if name is not None else user_name(uid)
    out = []
    try:
        with open(path) as f:
            for line in f:
                owner, _, rest = line.strip().partition(":")
                start, _, count = rest.partition(":")
                if owner in (name, str(uid)) and start.isdigit() and count.isdigit():
                    out.append((int(start), int(count)))
    except FileNotFoundError:
        pass
    return out


def _covered(start: int, size: int, ranges: list[tuple[int, int]]) -> bool:
    """Whether [start, start+size) lies inside the union of *ranges*."""
    end = start + size
    for s, n in sorted(ranges):
        if s <= start < s + n:
            start = s + n
            if start >= end:
                return True
    return start >= end


def _own_only(maps: list[IdMapping], own: int) -> bool:
    """The one mapping the kernel lets an unprivileged user write itself."""
    return len(maps) == 1 and maps[0].host_id == own and maps[0].size == 1


def _check_maps(maps: list[IdMapping], own: int, kind: str) -> None:
    """Every host id of *maps* is the caller's own or in its subordinate
    range; otherwise a ConfigError naming the user and the file."""
    if _own_only(maps, own):
        return
    path, field, helper = ((SUBUID, "linux.uidMappings", "newuidmap") if kind == "uid"
                           else (SUBGID, "linux.gidMappings", "newgidmap"))
    name = user_name(os.geteuid())
    ranges = [(own, 1), *subid_ranges(path, os.geteuid(), name)]
    for m in maps:
        if not _covered(m.host_id, m.size, ranges):
            have = ", ".join(f"{s}-{s + n - 1}" for s, n in ranges[1:])
            last = m.host_id + m.size - 1
            raise ConfigError(
                f"{field}: host {kind}s {m.host_id}-{last} are not delegated to user {name}: "
                + (f"its ranges in {path} are {have}" if have else f"{path} has no range for {name}")
            )
    if not _which(helper):
        raise ConfigError(f"{field}: mapping more than your own {kind} needs {helper} (Debian package uidmap)")


def _which(name: str) -> str | None:
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin", *os.environ.get("PATH", "").split(":")):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def helper_exists(field: str) -> bool:
    """Whether newuidmap (for "uidMappings") or newgidmap is installed."""
    return _which("newuidmap" if field.startswith("uid") else "newgidmap") is not None


def _mapped(value: int, maps: list[IdMapping]) -> bool:
    return any(m.container_id <= value < m.container_id + m.size for m in maps)


def check_spec(spec: Spec) -> None:
    """Refuse, before anything is made, a config an unprivileged user cannot run."""
    if os.geteuid() == 0:
        return  # --rootless true as root: the kernel will say what it refuses
    user = spec.namespace("user")
    if user is None:
        raise ConfigError(
            "linux.namespaces: a rootless container needs a user namespace "
            "(xc-runtime spec --rootless writes such a config)"
        )
    if user.path is not None:
        return  # joining a namespace someone made: its maps are already written
    _check_maps(spec.uid_mappings, os.geteuid(), "uid")
    _check_maps(spec.gid_mappings, os.getegid(), "gid")
    proc = spec.process
    if proc is not None:
        if not _mapped(proc.uid, spec.uid_mappings):
            raise ConfigError(f"process.user.uid: {proc.uid} is not mapped by linux.uidMappings")
        if proc.additional_gids and _own_only(spec.gid_mappings, os.getegid()):
            raise ConfigError(
                "process.user.additionalGids: a rootless container with only your own gid mapped "
                "cannot set supplementary groups (setgroups is denied); map a range from /etc/subgid"
            )
        for what, gid in [("gid", proc.gid), *(("additionalGids", g) for g in proc.additional_gids)]:
            if not _mapped(gid, spec.gid_mappings):
                raise ConfigError(f"process.user.{what}: {gid} is not mapped by linux.gidMappings")
    for i, m in enumerate(spec.mounts):
        for o in m.options:
            key, eq, value = o.partition("=")
            if eq and key in ("uid", "gid") and value.isdigit():
                maps = spec.uid_mappings if key == "uid" else spec.gid_mappings
                if not _mapped(int(value), maps):
                    raise ConfigError(
                        f"mounts[{i}] ({m.destination}): option {o}: {key} {value} is not mapped "
                        f"in the container's user namespace"
                    )


def write_id_maps(spec: Spec, pid: int) -> None:
    """Write the id maps of the user namespace of process *pid* (a child
    just after unshare(CLONE_NEWUSER)), as an unprivileged user can."""
    for kind, maps, own in (("uid", spec.uid_mappings, os.geteuid()), ("gid", spec.gid_mappings, os.getegid())):
        field = f"linux.{kind}Mappings"
        if _own_only(maps, own):
            try:
                if kind == "gid":
                    with open(f"/proc/{pid}/setgroups", "w") as f:
                        f.write("deny")
                with open(f"/proc/{pid}/{kind}_map", "w") as f:
                    f.write(f"{maps[0].container_id} {own} 1\n")
            except OSError as e:
                raise SetupError(f"{field}: writing {kind}_map: {e.strerror}") from None
            continue
        import subprocess

        helper = "newuidmap" if kind == "uid" else "newgidmap"
        args = [_which(helper) or helper, str(pid)]
        for m in maps:
            args += [str(m.container_id), str(m.host_id), str(m.size)]
        try:
            p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        except OSError as e:
            raise SetupError(f"{field}: running {helper}: {e.strerror}") from None
        if p.returncode != 0:
            why = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
            raise SetupError(f"{field}: {helper} failed: {why}")


# --- the ids of a rootless `xc` container, and work done with them -------------------


def container_id_maps(uid: int | None = None, gid: int | None = None
                      ) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    """The id maps `xc` gives a rootless container, in config.json's form:
    container root is the user; with a range in /etc/subuid *and*
    /etc/subgid (and newuidmap/newgidmap installed), container ids 1 up to
    65536 map onto the start of the user's largest range, as podman does.
    The user's image store is unpacked with the same maps (imagestore.py)."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    out: dict[str, list[dict[str, int]]] = {}
    for key, path, own in (("uidMappings", SUBUID, uid), ("gidMappings", SUBGID, gid)):
        maps = [{"containerID": 0, "hostID": own, "size": 1}]
        ranges = subid_ranges(path, uid)
        if ranges and helper_exists(key):
            start, count = max(ranges, key=lambda r: r[1])
            maps.append({"containerID": 1, "hostID": start, "size": min(count, 65536)})
        out[key] = maps
    if len(out["uidMappings"]) != len(out["gidMappings"]):  # a range of one kind only: own ids only
        return out["uidMappings"][:1], out["gidMappings"][:1]
    return out["uidMappings"], out["gidMappings"]


_in_userns = False


def in_own_userns() -> bool:
    """Whether this process is the child :func:`run_in_userns` made."""
    return _in_userns


class _Maps:
    """What write_id_maps reads of a Spec."""

    def __init__(self, uid_maps: list[dict[str, int]], gid_maps: list[dict[str, int]]) -> None:
        from .spec import IdMapping

        self.uid_mappings = [IdMapping(m["containerID"], m["hostID"], m["size"]) for m in uid_maps]
        self.gid_mappings = [IdMapping(m["containerID"], m["hostID"], m["size"]) for m in gid_maps]


def run_in_userns(uid_maps: list[dict[str, int]], gid_maps: list[dict[str, int]],
                  fn: Any, *args: Any, **kw: Any) -> Any:
    """``fn(*args, **kw)`` in a forked child that lives in a new user
    namespace with these id maps (container id 0 is the caller), and its
    result (pickled back), or the exception it raised.

    This is how an unprivileged user owns files as several ids, as
    ``podman unshare`` does: in the namespace the child holds every
    capability over the ids the maps name, so it may chown a file to any
    of them (on disk: the subordinate id the map names), make directories
    it cannot enter on the host, and remove them again.  The child dies
    with its parent (PR_SET_PDEATHSIG), so an `xc` killed by SIGKILL leaves
    no worker behind: only what the work left on disk, which the store
    collects later."""
    import pickle
    import signal
    import sys

    from . import kernel
    from .errors import XcError

    sys.stdout.flush()
    sys.stderr.flush()
    sync_r, sync_w = os.pipe()  # child -> parent: "u", it has its user namespace
    go_r, go_w = os.pipe()  # parent -> child: "g", its id maps are written
    res_r, res_w = os.pipe()  # child -> parent: the pickled outcome
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        global _in_userns
        code = 0
        try:
            os.close(sync_r)
            os.close(go_w)
            os.close(res_r)
            try:
                kernel.prctl(kernel.PR.SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() != parent:
                    os._exit(1)
                kernel.unshare(kernel.CLONE.NEWUSER)
            except OSError as e:
                raise SetupError(f"cannot make a user namespace: {e.strerror}") from None
            os.write(sync_w, b"u")
            os.close(sync_w)
            if os.read(go_r, 1) != b"g":
                os._exit(1)
            _in_userns = True
            try:
                outcome: tuple[str, Any] = ("ok", fn(*args, **kw))
            except (XcError, OSError) as e:
                outcome = ("err", e)
        except BaseException as e:  # noqa: BLE001 - reported to the parent, one line
            outcome = ("err", XcError(f"{type(e).__name__}: {e}"))
            code = 1
        try:
            try:
                data = pickle.dumps(outcome)
            except Exception:  # noqa: BLE001 - an exception that does not pickle
                data = pickle.dumps(("err", XcError(str(outcome[1]))))
            view = memoryview(data)
            while view:
                view = view[os.write(res_w, view):]
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    os.close(sync_w)
    os.close(go_r)
    os.close(res_w)
    try:
        try:
            if os.read(sync_r, 1) == b"u":
                write_id_maps(_Maps(uid_maps, gid_maps), pid)  # type: ignore[arg-type]
                os.write(go_w, b"g")
        except BaseException:
            os.kill(pid, signal.SIGKILL)
            raise
        finally:
            os.close(sync_r)
            os.close(go_w)
        chunks = []
        while True:
            data = os.read(res_r, 1 << 16)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(res_r)
        _, status = os.waitpid(pid, 0)
    if not chunks:
        why = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
               else f"exit status {os.waitstatus_to_exitcode(status)}")
        raise XcError(f"the worker in the user namespace died ({why})")
    kind, value = pickle.loads(b"".join(chunks))
    if kind == "err":
        raise value
    return value
