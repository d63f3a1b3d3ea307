"""Container state on disk and the lifecycle it follows.

Each container owns one directory ``ROOT/ID`` holding ``state.json``.  The
file is only ever replaced whole (write a temporary file, then rename it over
the old one), so a reader sees either the old or the new state, and a runtime
killed at any step leaves a file that ``delete`` can still act on.  As runc
does, the file is not fsync'ed: the states live on a tmpfs (``/run``) in
normal use, and none of them means anything after a crash of the host.  The
directory is made first, with status ``creating``; a container stuck there
(its runtime died) is reported as ``stopped`` and cleaned up by ``delete``.

The saved status is what the runtime last decided; the live status also
looks at the kernel: a container whose init process is gone is ``stopped``
whatever the file says (the pid is checked together with its start time, so
a recycled pid is not mistaken for the container).

    creating -> created -> running <-> paused
        \\          \\         \\          \\
         +----------+---------+----------+--> stopped
"""

from __future__ import annotations

import os

from . import _json as json
from ._record import field, fields, record
from .errors import AlreadyExists, ContainerError, InvalidState, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Status", "State", "Store", "process_start_time", "ID_PATTERN"]


class _IdRule:
    """Which container ids are valid: ``pattern``, checked by hand (the re
    module is too slow to import for one check)."""

    pattern = r"^[A-Za-z0-9][A-Za-z0-9_+.-]{0,1023}$"
    _FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
    _REST = _FIRST | frozenset("_+.-")

    def match(self, cid: str) -> bool:
        """Whether the whole of *cid* matches ``pattern``."""
        return 0 < len(cid) <= 1024 and cid[0] in self._FIRST and self._REST.issuperset(cid)


ID_PATTERN = _IdRule()


class Status:
    """The statuses of a container, as the strings ``runc state`` prints."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


_TRANSITIONS: dict[str, frozenset[str]] = {
    Status.CREATING: frozenset({Status.CREATED, Status.STOPPED}),
    Status.CREATED: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.RUNNING: frozenset({Status.PAUSED, Status.STOPPED}),
    Status.PAUSED: frozenset({Status.RUNNING, Status.STOPPED}),
    Status.STOPPED: frozenset(),
}


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    rest = data[data.rindex(b")") + 2 :].split()
    if rest[0] == b"Z" or rest[0] == b"X":
        return None
    return int(rest[19])


@record
class State:
    id: str
    bundle: str
    status: str = Status.CREATING  # one of the Status constants
    pid: int = 0
    pid_start: int = 0
    created: str = ""
    rootfs: str = ""
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    owner: str = "root"

    def can(self, to: str) -> bool:
        return to in _TRANSITIONS[self.status]

    def process_alive(self) -> bool:
        """Whether the container's init process still runs (zombies do not)."""
        if self.pid <= 0:
            return False
        return process_start_time(self.pid) == self.pid_start

    def live_status(self) -> str:
        """The saved status corrected by what the kernel shows now."""
        if self.status in (Status.CREATING, Status.STOPPED):
            return Status.STOPPED
        if not self.process_alive():
            return Status.STOPPED
        return self.status

    def oci(self) -> dict[str, Any]:
        """The state as the OCI runtime spec defines it (``runc state``)."""
        st = self.live_status()
        return {
            "ociVersion": self.config.get("ociVersion", "1.0.2"),
            "id": self.id,
            "pid": self.pid if st != Status.STOPPED else 0,
            "status": st,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
            "annotations": self.annotations,
        }

    def hook_state(self) -> dict[str, Any]:
        """What a hook reads on its stdin: the spec's state without our extras."""
        d = self.oci()
        return {k: d[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations")}


class Store:
    """The directory of container states (``--root``)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def dir(self, cid: str) -> str:
        return os.path.join(self.root, cid)

    @staticmethod
    def check_id(cid: str) -> None:
        if not ID_PATTERN.match(cid):
            raise ContainerError(
                f"invalid container id {cid!r}: use letters, digits and _ + . - (not first)"
            )

    def reserve(self, state: State) -> None:
        """Make the container's directory, refusing an id in use."""
        self.check_id(state.id)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        try:
            os.mkdir(self.dir(state.id), 0o711)
        except FileExistsError:
            raise AlreadyExists(f"container {state.id!r} already exists") from None
        self.save(state)

    def save(self, state: State) -> None:
        d = self.dir(state.id)
        tmp = os.path.join(d, ".state.json.tmp")
        data = json.dumps({name: getattr(state, name) for name in fields(state)}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.rename(tmp, os.path.join(d, "state.json"))

    def transition(self, state: State, to: str) -> None:
        """Move *state* to *to*, refusing illegal moves, then save."""
        if not state.can(to):
            raise InvalidState(
                f"container {state.id!r} is {state.live_status()}: cannot become {to}"
            )
        state.status = to
        self.save(state)

    def load(self, cid: str) -> State:
        self.check_id(cid)
        path = os.path.join(self.dir(cid), "state.json")
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            if os.path.isdir(self.dir(cid)):
                # The runtime died between mkdir and the first save.
                return State(id=cid, bundle="", status=Status.CREATING)
            raise NotFound(f"container {cid!r} does not exist") from None
        except ValueError:
            raise ContainerError(f"state of container {cid!r} is corrupt: {path}") from None
        if data.get("status") not in _TRANSITIONS:
            raise ContainerError(f"state of container {cid!r} is corrupt: {path}: unknown status")
        return State(**data)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if ID_PATTERN.match(n) and os.path.isdir(self.dir(n)))

    def remove(self, cid: str) -> None:
        d = self.dir(cid)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        for n in names:
            try:
                os.unlink(os.path.join(d, n))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass

    def ensure_live(self, state: State, *allowed: str) -> str:
        st = state.live_status()
        if st not in allowed:
            raise InvalidState(f"container {state.id!r} is {st}, not {' or '.join(allowed)}")
        return st
