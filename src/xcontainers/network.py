"""Networks for `xc run`: ``--network bridge|none|host`` and ``-p`` ports.

The OCI way: ``xc`` makes the container's network namespace *before* the
container, configures it, and writes its path into the bundle's
config.json (``linux.namespaces: [{"type": "network", "path": ...}]``);
the runtime only joins it.  ``--network host`` drops the network namespace
from the config (the container shares the host's); ``none`` leaves a new
network namespace in the config, which the runtime makes with the
container (only ``lo``, up; the two sysctls below set through
``linux.sysctl``): nothing is made or recorded on the host, nothing can be
left behind; ``bridge`` (the default) makes a named namespace and adds a
veth pair to the bridge, an address from the bridge's subnet, a default
route, masquerade for what leaves the host, and DNAT rules for each
published port.  Every container also gets /etc/resolv.conf, /etc/hosts
and /etc/hostname, bind-mounted from files in its bundle.

What each container's network is made of is recorded (see :mod:`ipam`)
before it is made; :func:`detach` undoes one container's,
:func:`collect_garbage` every one whose container is gone (no state, or
stopped) and whose ``xc`` process is gone too.  ``xc run``, ``xc rm`` and
``xc ps`` collect garbage first, so a network left by an ``xc`` killed
with SIGKILL at any step is freed by the next of them, or by ``xc network
prune``.

Configuration (environment): ``XC_BRIDGE`` (default ``xc0``) and
``XC_SUBNET`` (default ``10.88.0.0/16``).  See docs/network.md.
"""

from __future__ import annotations

import os

from . import _json as json
from ._record import field, record
from .ipam import STATE_DIR, NetworkError, NetworkState, parse_ipv4, parse_subnet

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MODES", "PortMapping", "NetworkRequest", "parse_port", "request", "attach", "detach",
           "collect_garbage", "prune", "attachments", "NetworkError", "DEFAULT_BRIDGE", "DEFAULT_SUBNET"]

MODES = ("bridge", "none", "host")
DEFAULT_BRIDGE = "xc0"
DEFAULT_SUBNET = "10.88.0.0/16"
DEFAULT_ROOT = "/run/xc"
NETNS_DIR = os.path.join(STATE_DIR, "netns")
_FALLBACK_DNS = ("8.8.8.8", "8.8.4.4")
NEW_NETNS = "new"  # _edit_config: a network namespace the runtime makes  # what Docker uses when the host has only loopback servers


@record
class PortMapping:
    host_port: int
    container_port: int
    proto: str = "tcp"
    host_ip: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "proto": self.proto}

    def __str__(self) -> str:
        where = f"{self.host_ip}:" if self.host_ip else ""
        return f"{where}{self.host_port}:{self.container_port}/{self.proto}"


@record
class NetworkRequest:
    mode: str = "bridge"
    ports: list[PortMapping] = field(default_factory=list)
    bridge: str = DEFAULT_BRIDGE
    subnet: str = DEFAULT_SUBNET


def _port_number(text: str, spec: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise NetworkError(f"-p {spec}: {what} {text!r} is not a port number (1-65535)")
    return int(text)


def parse_port(spec: str) -> PortMapping:
    """``[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp]`` as Docker writes it."""
    body, slash, proto = spec.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in ("tcp", "udp"):
        raise NetworkError(f"-p {spec}: protocol {proto!r} is not tcp or udp")
    parts = body.split(":")
    if len(parts) == 2:
        host_ip, (hp, cp) = "", parts
    elif len(parts) == 3:
        host_ip, hp, cp = parts
        if parse_ipv4(host_ip) is None:
            raise NetworkError(f"-p {spec}: {host_ip!r} is not an IPv4 address")
        if host_ip == "0.0.0.0":
            host_ip = ""
    else:
        raise NetworkError(f"-p {spec}: expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp], e.g. 8080:80")
    return PortMapping(_port_number(hp, spec, "host port"), _port_number(cp, spec, "container port"),
                       proto, host_ip)


def request(mode: str, ports: list[str]) -> NetworkRequest:
    """Check what `xc run --network MODE -p ...` asks, before anything is made."""
    if mode not in MODES:
        raise NetworkError(f"--network {mode!r}: unknown mode (use bridge, none or host)")
    if mode != "host" and os.geteuid() != 0:
        raise NetworkError(f"--network {mode} needs root (xc makes the namespace, links and rules): "
                           "use --network host")
    maps = [parse_port(p) for p in ports]
    if maps and mode != "bridge":
        raise NetworkError(f"-p {maps[0]}: published ports need --network bridge (not {mode})")
    seen: dict[tuple[int, str], PortMapping] = {}
    for m in maps:
        k = (m.host_port, m.proto)
        if k in seen and (not m.host_ip or not seen[k].host_ip or m.host_ip == seen[k].host_ip):
            raise NetworkError(f"-p {m}: host port {m.host_port}/{m.proto} is published twice")
        seen[k] = m
    req = NetworkRequest(mode, maps)
    if mode == "bridge":
        req.bridge = os.environ.get("XC_BRIDGE") or DEFAULT_BRIDGE
        if not 1 <= len(req.bridge) <= 15 or "/" in req.bridge or req.bridge in (".", ".."):
            raise NetworkError(f"XC_BRIDGE={req.bridge!r}: not a valid interface name (1-15 characters)")
        req.subnet = str(parse_subnet(os.environ.get("XC_SUBNET") or DEFAULT_SUBNET))
    return req


# -- names ------------------------------------------------------------------------


def _key(root: str, cid: str) -> str:
    """The attachment's name: the container id, qualified by its state root
    unless that is the default one."""
    import zlib

    root = os.path.abspath(root)
    key = cid if root == DEFAULT_ROOT else f"{cid}@{zlib.crc32(root.encode()):08x}"
    if len(key) > 200:
        key = f"{key[:180]}~{zlib.crc32(key.encode()):08x}"
    return key


def _tag(key: str) -> str:
    """The comment that marks a container's nft rules (at most 128 bytes)."""
    import zlib

    return f"xc:{key}" if len(key) <= 100 else f"xc:{key[:80]}~{zlib.crc32(key.encode()):08x}"


def _veth_name(address: str) -> str:
    n = parse_ipv4(address)
    assert n is not None
    return f"xcv{n:08x}"


# -- DNS files ----------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def resolv_conf(mode: str, host_text: str | None = None) -> str:
    """The container's resolv.conf: the host's, less loopback nameservers
    (which mean the host itself, unreachable from a namespace of its own)."""
    text = _read("/etc/resolv.conf") if host_text is None else host_text
    if mode == "host":
        return text
    out, servers = [], 0
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "nameserver" and len(words) > 1:
            addr = words[1]
            if addr.startswith("127.") or addr == "::1":
                continue
            servers += 1
        out.append(line)
    if servers == 0:
        out += [f"nameserver {a}" for a in _FALLBACK_DNS]
    return "\n".join(out) + "\n"


def hosts_file(mode: str, hostname: str, address: str | None) -> str:
    if mode == "host":
        text = _read("/etc/hosts")
        return text if text.endswith("\n") or not text else text + "\n"
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if address:
        lines.append(f"{address}\t{hostname}")
    else:
        lines[0] += f" {hostname}"
    return "\n".join(lines) + "\n"


def _write_dns_files(bundle: str, mode: str, hostname: str, address: str | None,
                     gateway: str | None) -> list[dict[str, Any]]:
    files = {"resolv.conf": resolv_conf(mode), "hosts": hosts_file(mode, hostname, address),
             "hostname": hostname + "\n"}
    if gateway:
        files["hosts"] += f"{gateway}\thost.containers.internal\n"
    mounts = []
    for name, text in files.items():
        path = os.path.join(bundle, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o644)
        mounts.append({"destination": f"/etc/{name}", "type": "bind", "source": path,
                       "options": ["bind", "rw"]})
    return mounts


def _edit_config(bundle: str, netns: str | None, mounts: list[dict[str, Any]]) -> None:
    """Point config.json's network namespace at *netns* (None: the host's;
    NEW_NETNS: a new one the runtime makes, with the container sysctls) and
    add *mounts*."""
    path = os.path.join(bundle, "config.json")
    with open(path, "rb") as f:
        spec = json.loads(f.read())
    linux = spec.setdefault("linux", {})
    nss = [n for n in linux.get("namespaces") or [] if n.get("type") != "network"]
    if netns == NEW_NETNS:
        from .links import CONTAINER_SYSCTLS

        nss.append({"type": "network"})
        linux["sysctl"] = {**(linux.get("sysctl") or {}),
                           **{k.replace("/", "."): v for k, v in CONTAINER_SYSCTLS}}
    elif netns is not None:
        nss.append({"type": "network", "path": netns})
    linux["namespaces"] = nss
    dests = {m["destination"] for m in mounts}
    spec["mounts"] = [m for m in spec.get("mounts") or [] if m.get("destination") not in dests] + mounts
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(spec))
    os.rename(tmp, path)


# -- attach / detach ----------------------------------------------------------------------


def _owner() -> list[int]:
    from .state import process_start_time

    pid = os.getpid()
    return [pid, process_start_time(pid) or 0]


def _check_host_port(m: PortMapping) -> None:
    """Refuse a host port a program of the host already holds."""
    import socket

    kind = socket.SOCK_STREAM if m.proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((m.host_ip or "0.0.0.0", m.host_port))
    except OSError as e:
        import errno

        if e.errno == errno.EADDRINUSE:
            raise NetworkError(f"-p {m}: host port {m.host_port}/{m.proto} is already in use") from None
        if e.errno == errno.EADDRNOTAVAIL:
            raise NetworkError(f"-p {m}: {m.host_ip} is not an address of this host") from None
        raise NetworkError(f"-p {m}: {e.strerror}") from None
    finally:
        s.close()


def _check_published(st: NetworkState, ports: list[PortMapping]) -> None:
    for m in ports:
        for key, att in st.attachments.items():
            for p in att.get("ports") or []:
                if p["host_port"] == m.host_port and p["proto"] == m.proto and (
                        not m.host_ip or not p["host_ip"] or m.host_ip == p["host_ip"]):
                    raise NetworkError(f"-p {m}: host port {m.host_port}/{m.proto} is already "
                                       f"published by container {att.get('id', key)}")
        _check_host_port(m)


def attach(cid: str, root: str, req: NetworkRequest, bundle: str, hostname: str) -> dict[str, Any] | None:
    """Make the container's network and edit its bundle to use it; return
    the attachment (None for the host's network).  On failure nothing made
    here is left."""
    if req.mode in ("host", "none"):
        # none: a network namespace of the container's own, made by the
        # runtime with the container (lo up); nothing on the host to record.
        _edit_config(bundle, None if req.mode == "host" else NEW_NETNS,
                     _write_dns_files(bundle, req.mode, hostname, None, None))
        return None
    key = _key(root, cid)
    att: dict[str, Any] = {"id": cid, "root": os.path.abspath(root), "mode": req.mode,
                           "owner": _owner(), "netns": os.path.join(NETNS_DIR, key)}
    with NetworkState() as st:
        last = dict(st.last)
        if key in st.attachments:
            raise NetworkError(f"container {cid!r} already has a network (xc rm {cid}, or xc network prune)")
        if req.mode == "bridge":
            _check_published(st, req.ports)
            subnet = parse_subnet(req.subnet)
            if req.bridge not in st.bridges and not _is_bridge(req.bridge):
                st.bridges[req.bridge] = str(subnet)  # we make it: recorded before
            att.update(bridge=req.bridge, subnet=str(subnet), gateway=subnet.gateway,
                       prefixlen=subnet.prefixlen, address=st.allocate(req.bridge, subnet),
                       ports=[p.to_dict() for p in req.ports], tag=_tag(key))
            att["veth"] = _veth_name(att["address"])
        st.attachments[key] = att  # recorded before anything is made
        st.save()
        try:
            _make(att)
        except BaseException:
            _unmake(att, strict=False)
            del st.attachments[key]
            st.last = last
            if att.get("bridge") and not _is_bridge(att["bridge"]):
                st.bridges.pop(att["bridge"], None)
            st.save()
            raise
    try:
        mounts = _write_dns_files(bundle, req.mode, hostname, att.get("address"), att.get("gateway"))
        _edit_config(bundle, att["netns"], mounts)
    except BaseException:
        detach(cid, root)
        raise
    return att


def _ensure_bridge(att: dict[str, Any]) -> None:
    """The bridge, its host sysctls and its masquerade rules, made if missing."""
    from . import links, nft

    bridge = att["bridge"]
    if links.bridge_subnet(bridge) is None:
        links.check_subnet_free(parse_subnet(att["subnet"]), bridge)
    created = links.ensure_bridge(bridge, att["gateway"], att["prefixlen"])
    links.set_sysctl(f"net/ipv4/conf/{bridge}/route_localnet", "1")
    if _read("/proc/sys/net/ipv4/ip_forward").strip() != "1":
        links.set_sysctl("net/ipv4/ip_forward", "1")
    tag = f"xc-bridge:{bridge}"
    old = nft.tagged_rules("xc-bridge:").get(tag, [])
    if created or not old:  # a new bridge's rules replace any a previous one of that name left
        nft.apply(nft.ensure_table() + nft.delete_rules(old) + nft.bridge_rules(bridge, att["subnet"]))


def _make(att: dict[str, Any]) -> None:
    from . import links

    if att["mode"] == "bridge":
        _ensure_bridge(att)
    links.create_netns(att["netns"])  # lo is up in it
    if att["mode"] == "none":
        return
    links.add_veth(att["veth"], att["netns"], att["bridge"])
    links.configure_container(att["netns"], att["address"], att["prefixlen"], att["gateway"])
    if att["ports"]:
        from . import nft

        nft.apply(nft.ensure_table() + nft.port_rules(att["tag"], att["ports"], att["address"]))


def _unmake(att: dict[str, Any], strict: bool = True) -> None:
    """Remove what *att* names, in the reverse order; with *strict*, a
    failure is raised (and the attachment kept for a later try)."""
    from . import links, nft

    errors = []
    steps: list[tuple[str, Any]] = []
    if att.get("ports"):
        steps.append(("nft rules", lambda: nft.delete_tagged([att["tag"]])))
    if att.get("veth"):
        steps.append(("veth", lambda: links.delete_link(att["veth"])))
    if att.get("address"):
        steps.append(("conntrack", lambda: links.flush_conntrack(att["address"])))
    steps.append(("netns", lambda: links.remove_netns(att["netns"])))
    for what, step in steps:
        try:
            step()
        except Exception as e:  # noqa: BLE001 - every step is tried
            errors.append(f"{what}: {e}")
    if errors and strict:
        raise NetworkError(f"removing the network of {att.get('id')}: " + "; ".join(errors))


def detach(cid: str, root: str) -> bool:
    """Remove container *cid*'s network, if it has one; False if none."""
    key = _key(root, cid)
    with NetworkState() as st:
        att = st.attachments.get(key)
        if att is None:
            return False
        _unmake(att)
        del st.attachments[key]
        st.save()
    return True


# -- garbage --------------------------------------------------------------------------------


def _alive(att: dict[str, Any]) -> bool:
    """Whether the attachment's owner (the `xc` making it) or its container lives."""
    from .errors import XcError
    from .state import Status, Store, process_start_time

    owner = att.get("owner") or [0, 0]
    if owner[0] and process_start_time(owner[0]) == owner[1]:
        return True
    try:
        st = Store(att["root"]).load(att["id"])
    except XcError:
        return False
    return st.live_status() != Status.STOPPED


def collect_garbage() -> list[str]:
    """Remove the network of every container that is gone or stopped and
    whose `xc` is gone too; return the ids freed."""
    try:
        with open(os.path.join(STATE_DIR, "state.json"), "rb") as f:
            data = json.loads(f.read())
        if not any(not _alive(a) for a in (data.get("attachments") or {}).values()):
            return []  # the usual case: nothing to take the lock for
    except (OSError, ValueError):
        return []
    freed = []
    with NetworkState() as st:
        for key, att in list(st.attachments.items()):
            if _alive(att):
                continue
            try:
                _unmake(att)
            except NetworkError as e:
                import sys

                sys.stderr.write(f"xc: warning: {e}\n")
                continue
            del st.attachments[key]
            freed.append(att.get("id", key))
        st.save()
    return freed


def _is_bridge(name: str) -> bool:
    return os.path.isdir(f"/sys/class/net/{name}/bridge")


def attachments() -> dict[str, dict[str, Any]]:
    with NetworkState() as st:
        return dict(st.attachments)


def prune() -> dict[str, list[str]]:
    """Garbage, then what no record names: namespace files, ``xcv*`` links,
    tagged rules; and the rules of bridges no container uses, and those
    bridges if this module made them."""
    from . import links, nft

    freed = collect_garbage()
    out: dict[str, list[str]] = {"containers": freed, "netns": [], "links": [], "rules": [], "bridges": []}
    with NetworkState() as st:
        atts = st.attachments.values()
        used_ns = {a["netns"] for a in atts}
        used_veth = {a.get("veth") for a in atts}
        used_tags = {a.get("tag") for a in atts}
        used_bridges = {a.get("bridge") for a in atts if a.get("bridge")}
        # Links before namespaces: a namespace going takes its veth ends with it.
        for name in links.link_names("xcv"):
            if len(name) == 11 and name not in used_veth and links.delete_link(name):
                out["links"].append(name)
        if os.path.isdir(NETNS_DIR):
            for name in os.listdir(NETNS_DIR):
                p = os.path.join(NETNS_DIR, name)
                if p not in used_ns and links.remove_netns(p):
                    out["netns"].append(p)
        tags = nft.tagged_rules()
        stale = [t for t in tags if t.startswith("xc:") and t not in used_tags]
        bridges = {t[len("xc-bridge:"):] for t in tags if t.startswith("xc-bridge:")} | set(st.bridges)
        unused = sorted(b for b in bridges if b not in used_bridges)
        stale += [f"xc-bridge:{b}" for b in unused if f"xc-bridge:{b}" in tags]
        if stale:
            nft.delete_tagged(stale)
            out["rules"] = stale
        for b in unused:
            # Only a bridge we made goes (one we found and used keeps living).
            if b in st.bridges and _is_bridge(b) and links.delete_link(b):
                out["bridges"].append(b)
            st.last.pop(b, None)
            st.bridges.pop(b, None)
        if not used_bridges and not nft.tagged_rules():
            nft.delete_table()
        st.save()
    return out
