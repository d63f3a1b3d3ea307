"""Address management for `xc`'s bridge networks, and the record of what
every container's network is made of.

One JSON file (``STATE_DIR/state.json``) holds an *attachment* per
container that has a network of its own: the network namespace's bind
mount, the host end of its veth pair, its address and its published ports.
The file is read and replaced whole (write a temporary file, rename it)
while holding an exclusive ``flock`` on ``STATE_DIR/lock``, so two ``xc
run`` started at once never hand out one address twice, and a process
killed while holding the lock releases it with its last file descriptor.

An attachment is written *before* the first kernel object it names is
made and removed only *after* the last one is gone: whatever moment a
process dies at, the file names everything that may exist, and the
garbage collector (:func:`xcontainers.network.collect_garbage`) can undo
it exactly.

Addresses are handed out round-robin from the address after the last one
given on that bridge (as podman's netavark does), so an address just freed
is not reused at once while peers may still hold it in their ARP caches or
conntrack tables.  The first host address of a subnet is the bridge's own
(the containers' gateway); the network and broadcast addresses are never
given.  The file lives on /run: like the namespaces and links it
describes, it means nothing after a reboot.
"""

from __future__ import annotations

import os

from . import _json as json
from .errors import XcError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["Subnet", "parse_subnet", "allocate", "NetworkState", "STATE_DIR", "NetworkError"]

STATE_DIR = "/run/xc-network"


class NetworkError(XcError):
    """A network request that cannot be honoured (bad input or exhausted)."""


def _ip_to_int(text: str) -> int | None:
    parts = text.split(".")
    if len(parts) != 4:
        return None
    n = 0
    for p in parts:
        if not p.isdigit() or len(p) > 3 or (len(p) > 1 and p[0] == "0") or int(p) > 255:
            return None
        n = n << 8 | int(p)
    return n


def _int_to_ip(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def parse_ipv4(text: str) -> int | None:
    """The 32-bit value of a dotted-quad IPv4 address, or None if malformed."""
    return _ip_to_int(text)


class Subnet:
    """An IPv4 subnet: ``network/prefixlen``; the first host is the gateway."""

    __slots__ = ("network", "prefixlen")

    def __init__(self, network: int, prefixlen: int) -> None:
        self.network = network
        self.prefixlen = prefixlen

    def __str__(self) -> str:
        return f"{_int_to_ip(self.network)}/{self.prefixlen}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subnet) and (self.network, self.prefixlen) == (other.network, other.prefixlen)

    @property
    def size(self) -> int:
        return 1 << (32 - self.prefixlen)

    @property
    def gateway(self) -> str:
        return _int_to_ip(self.network + 1)

    @property
    def first(self) -> int:
        """The first address handed to a container."""
        return self.network + 2

    @property
    def last(self) -> int:
        """The last one (the broadcast address is never given)."""
        return self.network + self.size - 2

    @property
    def capacity(self) -> int:
        return self.last - self.first + 1

    def contains(self, addr: int) -> bool:
        return self.network <= addr < self.network + self.size

    def overlaps(self, network: int, prefixlen: int) -> bool:
        """Whether *network/prefixlen* shares an address with this subnet."""
        p = min(self.prefixlen, prefixlen)
        mask = (0xFFFFFFFF << (32 - p)) & 0xFFFFFFFF if p else 0
        return (self.network & mask) == (network & mask)


def parse_subnet(text: str) -> Subnet:
    """A subnet from ``A.B.C.D/N``, refusing what no bridge can use."""
    addr, sep, plen = text.partition("/")
    n = _ip_to_int(addr)
    if not sep or n is None or not plen.isdigit() or not 0 <= int(plen) <= 32:
        raise NetworkError(f"subnet {text!r}: expected an IPv4 network like 10.88.0.0/16")
    prefixlen = int(plen)
    if prefixlen < 8 or prefixlen > 30:
        raise NetworkError(f"subnet {text!r}: the prefix length must be 8..30 "
                           "(a /30 holds the gateway and one container)")
    mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF
    if n & ~mask & 0xFFFFFFFF:
        raise NetworkError(f"subnet {text!r}: host bits are set (the network is {_int_to_ip(n & mask)}/{prefixlen})")
    first = n >> 24
    if first in (0, 127) or first >= 224 or (n >> 16) == (169 << 8 | 254):
        raise NetworkError(f"subnet {text!r}: not a unicast network a bridge can route "
                           "(loopback, link-local, multicast and reserved ranges are refused)")
    return Subnet(n, prefixlen)


def allocate(subnet: Subnet, taken: set[int], after: int | None = None) -> int:
    """The next free container address of *subnet* after *after* (wrapping
    round); raises NetworkError when every address is taken."""
    cap = subnet.capacity
    start = subnet.first
    if after is not None and subnet.first <= after <= subnet.last:
        start = after + 1 if after < subnet.last else subnet.first
    for i in range(cap):
        a = subnet.first + (start - subnet.first + i) % cap
        if a not in taken:
            return a
    raise NetworkError(f"subnet {subnet} is full: all {cap} container addresses are in use "
                       "(remove containers, or choose a larger subnet with XC_SUBNET)")


class NetworkState:
    """The attachments file, open under its lock (a context manager).

        with NetworkState() as st:
            st.attachments[key] = {...}
            st.save()
    """

    def __init__(self, directory: str = STATE_DIR) -> None:
        self.dir = directory
        self.attachments: dict[str, dict[str, Any]] = {}
        self.last: dict[str, str] = {}  # bridge -> last address given
        self.bridges: dict[str, str] = {}  # bridge -> subnet, of the bridges we (may) have made
        self._other: dict[str, Any] = {}
        self._lock_fd = -1

    @property
    def path(self) -> str:
        return os.path.join(self.dir, "state.json")

    def __enter__(self) -> NetworkState:
        import fcntl

        os.makedirs(self.dir, mode=0o711, exist_ok=True)
        fd = os.open(os.path.join(self.dir, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._lock_fd = fd
        try:
            self._load()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            return
        except ValueError:
            data = None
        # The shape every reader relies on (a hand-edited or foreign file is refused, not half-read).
        if not (isinstance(data, dict) and all(isinstance(data.get(k, {}), (dict, type(None)))
                                               for k in ("attachments", "last", "bridges"))
                and all(isinstance(a, dict) and isinstance(a.get("address", ""), str)
                        for a in (data.get("attachments") or {}).values())
                and all(isinstance(v, str) for k in ("last", "bridges") for v in (data.get(k) or {}).values())):
            raise NetworkError(f"network state {self.path} is corrupt (remove it, then run xc network prune)")
        self._other = {k: v for k, v in data.items() if k not in ("attachments", "last", "bridges")}
        self.attachments = dict(data.get("attachments") or {})
        self.last = dict(data.get("last") or {})
        self.bridges = dict(data.get("bridges") or {})

    def save(self) -> None:
        assert self._lock_fd >= 0, "save() outside the lock"
        tmp = self.path + ".tmp"
        # Keys this version does not know are kept for the one that wrote them.
        data = json.dumps({**self._other, "attachments": self.attachments, "last": self.last,
                           "bridges": self.bridges}).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.rename(tmp, self.path)

    def taken(self, bridge: str) -> set[int]:
        """The addresses of *bridge* held by attachments."""
        out = set()
        for att in self.attachments.values():
            if att.get("bridge") == bridge and att.get("address"):
                n = _ip_to_int(att["address"])
                if n is not None:
                    out.add(n)
        return out

    def allocate(self, bridge: str, subnet: Subnet) -> str:
        """A free address of *bridge*'s subnet (recorded as the last given)."""
        last = self.last.get(bridge)
        a = allocate(subnet, self.taken(bridge), _ip_to_int(last) if last else None)
        self.last[bridge] = _int_to_ip(a)
        return _int_to_ip(a)
