"""Network namespaces and links for `xc`'s containers, through netlink.

A container's network namespace is made before the container: a forked
child unshares a new one and bind-mounts ``/proc/self/ns/net`` on a file
(as ``ip netns add`` does), so the namespace outlives every process and
the runtime joins it by path (``linux.namespaces[].path`` in config.json).
The directory holding those files is a shared mount point of its own, so
that unmounting one later also unmounts the copies that mount namespaces
made in the meantime hold (iproute2 does the same with /run/netns).

Inside, the child also sets two per-namespace sysctls Docker sets for its
containers: ``ping_group_range`` (ping without CAP_NET_RAW, through ICMP
datagram sockets) and ``ip_unprivileged_port_start`` (every port may be
bound without CAP_NET_BIND_SERVICE).

Links, addresses and routes are made with pyroute2 (rtnetlink):

* the bridge (``xc0`` by default) holds the subnet's first address, the
  containers' gateway;
* each container gets a veth pair: the host end (``xcv`` + the container's
  address in hex) is enslaved to the bridge in hairpin mode; the other end is created
  straight inside the container's namespace as ``eth0`` (so no name in the
  host's namespace is ever taken by it), with the container's address and
  a default route via the gateway; ``lo`` is brought up.

Deleting the host end of a veth pair deletes both ends at once.  A
namespace is unmounted and its file removed; the kernel frees it when no
process is left in it.
"""

from __future__ import annotations

import errno
import os

from . import kernel
from .ipam import NetworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["create_netns", "remove_netns", "ensure_bridge", "check_subnet_free", "add_veth",
           "configure_container", "delete_link", "link_names", "set_sysctl",
           "bridge_subnet", "flush_conntrack"]

CONTAINER_SYSCTLS = (
    ("net/ipv4/ping_group_range", "0 2147483647"),
    ("net/ipv4/ip_unprivileged_port_start", "0"),
)


def set_sysctl(name: str, value: str) -> None:
    """Write /proc/sys/NAME (in the caller's network namespace for net/*)."""
    try:
        with open(f"/proc/sys/{name}", "w") as f:
            f.write(value)
    except OSError as e:
        raise NetworkError(f"sysctl {name.replace('/', '.')}={value}: {e.strerror}") from None


# -- namespaces ----------------------------------------------------------------


def _share_dir(directory: str) -> None:
    """Make *directory* a shared mount point (bind it on itself first if it is none)."""
    os.makedirs(directory, mode=0o711, exist_ok=True)
    try:
        kernel.mount(None, directory, None, kernel.MS.SHARED | kernel.MS.REC, None)
        return
    except OSError as e:
        if e.errno != errno.EINVAL:  # EINVAL: not a mount point yet
            raise NetworkError(f"making {directory} a shared mount: {e.strerror}") from None
    try:
        kernel.mount(directory, directory, None, kernel.MS.BIND | kernel.MS.REC, None)
        kernel.mount(None, directory, None, kernel.MS.SHARED | kernel.MS.REC, None)
    except OSError as e:
        raise NetworkError(f"making {directory} a shared mount: {e.strerror}") from None


def _is_mountpoint(path: str) -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == path for line in f)
    except OSError:
        return False


def create_netns(path: str) -> None:
    """A new network namespace kept alive by a bind mount on *path*."""
    directory = os.path.dirname(path)
    if not _is_mountpoint(directory):
        _share_dir(directory)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: unshare, bind, set the namespace's sysctls
        os.close(r)
        msg = b""
        try:
            kernel.unshare(kernel.CLONE.NEWNET)
            kernel.loopback_up()  # one ioctl: the none mode needs no netlink (nor pyroute2's import)
            kernel.mount("/proc/self/ns/net", path, None, kernel.MS.BIND, None)
            for name, value in CONTAINER_SYSCTLS:
                set_sysctl(name, value)
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            msg = (str(e) if not isinstance(e, OSError) else (e.strerror or str(e))).encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    try:
        msg = b""
        while chunk := os.read(r, 4096):
            msg += chunk
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    if msg:
        remove_netns(path)
        raise NetworkError(f"network namespace {path}: {msg.decode(errors='replace')}")


def remove_netns(path: str) -> bool:
    """Unmount and remove a namespace file; False if there was none."""
    try:
        kernel.umount2(path, kernel.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise NetworkError(f"unmounting network namespace {path}: {e.strerror}") from None
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


# -- links -----------------------------------------------------------------------


def _pyroute2(name: str) -> Any:
    """pyroute2's module *name*, without pyroute2/__init__.py where the
    package is not imported yet: that file imports every part of the
    library (IPDB, NDB, conntrack, wireless, plan9, ...), 100-150 ms here
    before the first netlink message.  The package's module is put back
    afterwards, so a later ``import pyroute2`` runs its __init__ as usual."""
    import importlib
    import sys

    if "pyroute2" in sys.modules:
        return importlib.import_module(name)
    import importlib.util

    spec = importlib.util.find_spec("pyroute2")
    if spec is None:
        raise NetworkError("pyroute2 is not installed (make setup)")
    stub = importlib.util.module_from_spec(spec)
    sys.modules["pyroute2"] = stub
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get("pyroute2") is stub:
            del sys.modules["pyroute2"]


def _netlink_socket_in(netns: str) -> int:
    """An rtnetlink socket made inside the network namespace *netns* (a
    namespace file): this thread joins it for the socket() call and goes
    back.  (pyroute2's ``IPRoute(netns=...)`` forks a child to do it, which
    first runs ``ldconfig -p`` to find libc: ~30 ms here.)"""
    import socket

    from . import kernel

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise NetworkError(f"network namespace {netns}: {e.strerror}") from None
        try:
            kernel.setns(fd, kernel.CLONE.NEWNET)
        finally:
            os.close(fd)
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                                 socket.NETLINK_ROUTE).detach()
        finally:
            kernel.setns(home, kernel.CLONE.NEWNET)
    finally:
        os.close(home)


def _ipr(netns: str | None = None) -> Any:
    IPRoute = _pyroute2("pyroute2.iproute.linux").IPRoute

    if netns is None:
        return IPRoute()
    return IPRoute(fileno=_netlink_socket_in(netns))


def _nl_errno(e: BaseException) -> int | None:
    return getattr(e, "code", None)


def _nl_fail(what: str, e: BaseException) -> NetworkError:
    code = _nl_errno(e)
    reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(e)
    return NetworkError(f"{what}: {reason}")


def link_names(prefix: str = "") -> list[str]:
    with _ipr() as ipr:
        names = [ln.get("ifname") for ln in ipr.get_links()]
    return [n for n in names if n and n.startswith(prefix)]


def _addresses(ipr: Any, index: int) -> list[tuple[str, int]]:
    import socket

    return [(a.get("address"), a["prefixlen"]) for a in ipr.get_addr(family=socket.AF_INET, index=index)]


def bridge_subnet(name: str) -> tuple[str, int] | None:
    """(address, prefixlen) of bridge *name*'s first IPv4 address, or None if no such bridge."""
    with _ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return None
        addrs = _addresses(ipr, idx[0])
    return addrs[0] if addrs else ("", 0)


def check_subnet_free(subnet: Any, bridge: str) -> None:
    """Refuse a subnet that overlaps a route or an address of the host not on *bridge*."""
    import socket

    from .ipam import parse_ipv4

    with _ipr() as ipr:
        own = set(ipr.link_lookup(ifname=bridge))
        names = {ln["index"]: ln.get("ifname") for ln in ipr.get_links()}
        for r in ipr.get_routes(family=socket.AF_INET):
            if r.get("table") not in (254, None) or r["dst_len"] == 0:
                continue
            oif = r.get("oif")
            if oif in own:
                continue
            dst = parse_ipv4(r.get("dst") or "")
            if dst is not None and subnet.overlaps(dst, r["dst_len"]):
                raise NetworkError(f"subnet {subnet} overlaps the host's route {r.get('dst')}/{r['dst_len']}"
                                   f" dev {names.get(oif, oif)}: choose another with XC_SUBNET")
        for a in ipr.get_addr(family=socket.AF_INET):
            if a["index"] in own:
                continue
            n = parse_ipv4(a.get("address") or "")
            if n is not None and subnet.contains(n):
                raise NetworkError(f"subnet {subnet} holds the host's address {a.get('address')} "
                                   f"on {names.get(a['index'], a['index'])}: choose another with XC_SUBNET")


def ensure_bridge(name: str, gateway: str, prefixlen: int) -> bool:
    """Make bridge *name* with *gateway*/prefixlen and bring it up; False if it was there."""
    with _ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if idx:
            link = ipr.get_links(idx[0])[0]
            kind = link.get(("IFLA_LINKINFO", "IFLA_INFO_KIND"))
            if kind != "bridge":
                raise NetworkError(f"{name} exists and is not a bridge ({kind or 'a device'}): "
                                   "choose another name with XC_BRIDGE")
            have = _addresses(ipr, idx[0])
            if (gateway, prefixlen) not in have:
                got = ", ".join(f"{a}/{p}" for a, p in have) or "no address"
                raise NetworkError(f"bridge {name} has {got}, not {gateway}/{prefixlen}: remove it "
                                   "(xc network prune) or set XC_SUBNET to match")
            ipr.link("set", index=idx[0], state="up")
            return False
        try:
            ipr.link("add", ifname=name, kind="bridge")
            i = ipr.link_lookup(ifname=name)[0]
            ipr.addr("add", index=i, address=gateway, prefixlen=prefixlen)
            ipr.link("set", index=i, state="up")
        except Exception as e:  # noqa: BLE001 - pyroute2's NetlinkError and others
            for i in ipr.link_lookup(ifname=name):
                ipr.link("del", index=i)
            raise _nl_fail(f"creating bridge {name}", e) from None
    return True


def add_veth(host_name: str, netns: str, bridge: str) -> None:
    """A veth pair: *host_name* on *bridge*, its peer ``eth0`` inside *netns*."""
    with _ipr() as ipr:
        br = ipr.link_lookup(ifname=bridge)
        if not br:
            raise NetworkError(f"bridge {bridge} vanished")
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr.link("add", ifname=host_name, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
        except Exception as e:  # noqa: BLE001
            raise _nl_fail(f"creating veth {host_name}", e) from None
        finally:
            os.close(fd)
        try:
            i = ipr.link_lookup(ifname=host_name)[0]
            ipr.link("set", index=i, master=br[0])
            # Hairpin: a frame may leave by the port it came in on (a container
            # reaching its own published port through the host, with
            # br_netfilter loaded, is sent back out of its own port).
            ipr.brport("set", index=i, mode=1)
            ipr.link("set", index=i, state="up")
        except Exception as e:  # noqa: BLE001
            raise _nl_fail(f"attaching {host_name} to {bridge}", e) from None


def configure_container(netns: str, address: str, prefixlen: int, gateway: str) -> None:
    """Inside *netns*: lo up, eth0 up with *address*, default route via *gateway*."""
    with _ipr(netns) as ns:
        try:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            eth0 = ns.link_lookup(ifname="eth0")[0]
            ns.addr("add", index=eth0, address=address, prefixlen=prefixlen)
            ns.link("set", index=eth0, state="up")
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)
        except Exception as e:  # noqa: BLE001
            raise _nl_fail(f"configuring eth0 ({address}/{prefixlen}) in {netns}", e) from None


def delete_link(name: str) -> bool:
    """Delete link *name*; False if there was none."""
    with _ipr() as ipr:
        idx = ipr.link_lookup(ifname=name)
        if not idx:
            return False
        try:
            ipr.link("del", index=idx[0])
        except Exception as e:  # noqa: BLE001
            if _nl_errno(e) == errno.ENODEV:
                return False
            raise _nl_fail(f"deleting link {name}", e) from None
    return True


def flush_conntrack(address: str) -> int:
    """Forget the kernel's connection tracking entries of a container's
    *address* (connections it opened, and those DNATed to it); return how
    many.  Without this, a UDP flow to a published port that keeps sending
    stays bound to the old address after the container is gone, and would
    miss a new container publishing the same port.  Best effort: an entry
    that expires meanwhile, or a kernel without conntrack's netlink, is no
    reason to keep the container's network."""
    try:
        Conntrack = _pyroute2("pyroute2.conntrack").Conntrack
        NFCTAttrTuple = _pyroute2("pyroute2.netlink.nfnetlink.nfctsocket").NFCTAttrTuple

        with Conntrack() as ct:
            entries = list(ct.dump_entries(tuple_orig=NFCTAttrTuple(saddr=address)))
            entries += list(ct.dump_entries(tuple_reply=NFCTAttrTuple(saddr=address)))
            n = 0
            for e in entries:
                try:
                    ct.delete(e)
                    n += 1
                except Exception:  # noqa: BLE001 - gone meanwhile
                    pass
            return n
    except Exception:  # noqa: BLE001 - see above
        return 0
