"""`xc run` networks on the real kernel: bridge, none, host, published ports.

The containers are run with `xc` (the venv's) on a bridge of the test's own
(``xcnt`` + random hex) with a /24 that no host route uses, and their
states, bundles and images under temporary directories.  nginx is Debian's,
copied with its libraries into a busybox rootfs.  The "outside" world of the
NAT test is a network namespace the test makes, with a server in it: nothing
leaves the machine.

Every test ends by checking that nothing of its containers' networks is
left: attachments in /run/xc-network/state.json, namespace files and their
mounts, veths, nft rules, and the containers' states and bundles.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, build_busybox_rootfs, need_root

from xcontainers import ipam, network  # noqa: E402

# xc as installed: the native entry point (src/xcontainers/xc, which runs what it
# can itself and hands the rest to xc_cli), else the venv's console script.
_XC_NATIVE = ROOT / "src" / "xcontainers" / "xc"
XC = str(_XC_NATIVE) if os.access(_XC_NATIVE, os.X_OK) else str(ROOT / ".venv/bin/xc")
NETDIR = ipam.STATE_DIR
NETNS_DIR = os.path.join(NETDIR, "netns")


# --- unit tests of the pure parts (no root) ---------------------------------------------


@pytest.mark.parametrize("spec,want", [
    ("8080:80", ("", 8080, 80, "tcp")),
    ("127.0.0.1:8080:80/udp", ("127.0.0.1", 8080, 80, "udp")),
    ("0.0.0.0:1:65535/TCP", ("", 1, 65535, "tcp")),
])
def test_parse_port(spec, want):
    m = network.parse_port(spec)
    assert (m.host_ip, m.host_port, m.container_port, m.proto) == want


@pytest.mark.parametrize("spec,words", [
    ("80", "expected [HOSTIP:]HOSTPORT:CONTAINERPORT"),
    ("x:80", "host port 'x'"),
    ("0:80", "host port '0'"),
    ("8080:70000", "container port '70000'"),
    ("8080:80/sctp", "protocol 'sctp'"),
    ("1.2.3:80:80", "'1.2.3' is not an IPv4 address"),
    ("a:b:c:d", "expected"),
])
def test_parse_port_refuses(spec, words):
    with pytest.raises(network.NetworkError) as e:
        network.parse_port(spec)
    assert spec in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("text,words", [
    ("10.88.0.0", "expected an IPv4 network"),
    ("10.88.0.0/33", "expected an IPv4 network"),
    ("10.300.0.0/16", "expected an IPv4 network"),
    ("10.88.0.0/31", "prefix length must be 8..30"),
    ("10.88.1.0/16", "host bits are set (the network is 10.88.0.0/16)"),
    ("127.0.0.0/8", "not a unicast network"),
    ("224.1.0.0/16", "not a unicast network"),
])
def test_parse_subnet_refuses(text, words):
    with pytest.raises(network.NetworkError) as e:
        ipam.parse_subnet(text)
    assert words in str(e.value)


def test_allocate_round_robin_and_full():
    s = ipam.parse_subnet("10.9.8.0/29")  # .1 gateway, .2-.6 containers, .7 broadcast
    assert (s.gateway, s.capacity) == ("10.9.8.1", 5)
    ip = ipam.parse_ipv4
    taken: set[int] = set()
    got = []
    for _ in range(5):
        a = ipam.allocate(s, taken, got[-1] if got else None)
        taken.add(a)
        got.append(a)
    assert got == [ip(f"10.9.8.{i}") for i in range(2, 7)]
    with pytest.raises(network.NetworkError, match="subnet 10.9.8.0/29 is full: all 5"):
        ipam.allocate(s, taken, got[-1])
    taken.discard(ip("10.9.8.3"))
    taken.discard(ip("10.9.8.5"))
    # After .6 the search wraps round to the lowest free address.
    assert ipam.allocate(s, taken, ip("10.9.8.6")) == ip("10.9.8.3")
    assert ipam.allocate(s, taken, ip("10.9.8.3")) == ip("10.9.8.5")


def test_resolv_conf_drops_loopback_servers():
    host = "search example.org\nnameserver 127.0.0.53\nnameserver 192.0.2.53\nnameserver ::1\noptions edns0\n"
    assert network.resolv_conf("bridge", host) == "search example.org\nnameserver 192.0.2.53\noptions edns0\n"
    assert network.resolv_conf("host", host) == host
    only_local = network.resolv_conf("bridge", "nameserver 127.0.0.53\n")
    assert "127.0.0.53" not in only_local and "nameserver 8.8.8.8" in only_local


def _allocate_many(directory: str, n: int) -> None:
    s = ipam.parse_subnet("10.7.0.0/16")
    for i in range(n):
        with ipam.NetworkState(directory) as st:
            a = st.allocate("br", s)
            st.attachments[f"{os.getpid()}-{i}"] = {"bridge": "br", "address": a}
            st.save()


@pytest.mark.parametrize("text", [
    "garbage", "[]", '{"attachments": []}', '{"last": {"xc0": 5}}', '{"bridges": {"xc0": null}}',
    '{"attachments": {"k": "v"}}', '{"attachments": {"k": {"address": 7}}}',
])
def test_a_malformed_network_state_is_refused_as_corrupt(tmp_path, text):
    """Whatever the file holds, opening it is a NetworkError naming it, never a traceback."""
    (tmp_path / "state.json").write_text(text)
    with pytest.raises(ipam.NetworkError, match="is corrupt"):
        with ipam.NetworkState(str(tmp_path)) as st:
            st.allocate("xc0", ipam.parse_subnet("10.88.0.0/16"))


def test_parallel_allocations_never_share_an_address(tmp_path):
    """8 processes x 25 allocations on one state file: the flock keeps them apart."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path), 25)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with ipam.NetworkState(str(tmp_path)) as st:
        addrs = [a["address"] for a in st.attachments.values()]
    assert len(addrs) == 200 and len(set(addrs)) == 200


def test_netlink_in_a_namespace_and_pyroute2_imported_in_parts(tmp_path):
    """links.py makes a namespace's rtnetlink socket by joining it for the
    socket() call only, and imports pyroute2's modules without its package
    __init__: the thread is back in its namespace afterwards, the socket sees
    the namespace's links, and a later ``import pyroute2`` is the whole
    library with the same classes."""
    need_root()
    ns = str(tmp_path / "d" / "ns")  # (create_netns makes d a shared mount of its own: undone below)
    code = ("import os, sys\n"
            "from xcontainers import links\n"
            f"links.create_netns({ns!r})\n"
            "try:\n"
            "    home = os.readlink('/proc/thread-self/ns/net')\n"
            f"    with links._ipr({ns!r}) as ipr:\n"
            "        inside = sorted(ln.get('ifname') for ln in ipr.get_links())\n"
            "    assert os.readlink('/proc/thread-self/ns/net') == home\n"
            "    assert 'pyroute2' not in sys.modules and 'pyroute2.ipdb' not in sys.modules\n"
            "    assert 'lo' in links.link_names()\n"
            "    cls = sys.modules['pyroute2.iproute.linux'].IPRoute\n"
            "    import pyroute2\n"
            "    assert pyroute2.IPRoute is cls and pyroute2.Conntrack\n"
            "    print(inside)\n"
            "finally:\n"
            f"    links.remove_netns({ns!r})\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    subprocess.run(["umount", "-l", str(tmp_path / "d")], check=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "['lo']"
    assert not os.path.exists(ns)


# --- the test network -----------------------------------------------------------------


def _host_routes() -> list[tuple[int, int]]:
    out = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"],
                                    capture_output=True, text=True, check=True).stdout)
    routes = []
    for r in out:
        dst = r.get("dst", "")
        if dst in ("default", ""):
            continue
        addr, _, plen = dst.partition("/")
        n = ipam.parse_ipv4(addr)
        if n is not None:
            routes.append((n, int(plen or 32)))
    return routes


def free_subnet(first: int, prefixlen: int = 24, avoid: tuple[str, ...] = ()) -> str:
    """A random 10.FIRST.x.0/prefixlen that overlaps no route of the host."""
    routes = _host_routes() + [(ipam.parse_subnet(a).network, ipam.parse_subnet(a).prefixlen) for a in avoid]
    step = 1 << (32 - prefixlen)
    for _ in range(200):
        n = (10 << 24) | (first << 16) | (random.randrange(0, 65536 // step) * step)
        s = ipam.Subnet(n, prefixlen)
        if not any(s.overlaps(rn, rp) for rn, rp in routes):
            return str(s)
    pytest.skip(f"no free 10.{first}.0.0/16 subnet on this host")


class Env:
    """`xc` with the test's state directories, bridge and subnet."""

    def __init__(self, tmp: Path) -> None:
        self.root = str(tmp / "state")
        self.bundles = tmp / "bundles"
        self.bridge = f"xcnt{uuid.uuid4().hex[:6]}"
        self.subnet = free_subnet(213)
        self.subnets = [self.subnet]
        self.bridges = [self.bridge]
        self.gateway = ipam.parse_subnet(self.subnet).gateway
        self.env = dict(os.environ, XC_ROOT=self.root, XC_BUNDLES=str(self.bundles),
                        XC_IMAGES=str(tmp / "images"), XC_STORAGE=str(tmp / "storage"), XC_BRIDGE=self.bridge,
                        XC_SUBNET=self.subnet)
        self.suffix = network._key(self.root, "x")[1:]  # "@crc32 of the root"

    def xc(self, *args: str, timeout: float = 60, env: dict[str, str] | None = None,
           check: bool = False) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([XC, *args], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=dict(self.env, **(env or {})))
        if check:
            assert p.returncode == 0, f"xc {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
        return p

    def detached(self, *args: str, env: dict[str, str] | None = None) -> str:
        """`xc run -d ARGS`; its output goes to a file (a pipe would outlive xc)."""
        log = Path(self.root).parent / f"run-{uuid.uuid4().hex[:6]}.log"
        with open(log, "w") as f:
            p = subprocess.run([XC, "run", "-d", *args], stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               env=dict(self.env, **(env or {})), timeout=60)
        text = log.read_text()
        assert p.returncode == 0, f"xc run -d {' '.join(args)} failed ({p.returncode}):\n{text}"
        return text.split()[0]

    def attachment(self, cid: str) -> dict[str, Any]:
        atts = _state().get("attachments", {})
        return atts[network._key(self.root, cid)]

    def leftovers(self) -> dict[str, Any]:
        """What of this test's containers' networks (and containers) is still there."""
        atts = [k for k, a in _state().get("attachments", {}).items() if a.get("root") == self.root]
        files = sorted(n for n in os.listdir(NETNS_DIR) if n.endswith(self.suffix)) \
            if os.path.isdir(NETNS_DIR) else []
        with open("/proc/self/mountinfo") as f:
            mounts = [ln.split()[4] for ln in f if NETNS_DIR in ln.split()[4] and self.suffix in ln.split()[4]]
        subnets = [ipam.parse_subnet(s) for s in self.subnets]
        links = []
        for name in _link_names():
            if name.startswith("xcv") and len(name) == 11:
                n = int(name[3:], 16)
                if any(s.contains(n) for s in subnets):
                    links.append(name)
        rules = sorted(c for c in _nft_comments() if c.startswith("xc:") and c.endswith(self.suffix))
        return {"attachments": atts, "netns": files, "mounts": mounts, "veths": links, "rules": rules,
                "states": sorted(os.listdir(self.root)) if os.path.isdir(self.root) else [],
                "bundles": sorted(os.listdir(self.bundles)) if self.bundles.is_dir() else []}

    def assert_clean(self) -> None:
        left = self.leftovers()
        assert not any(left.values()), f"left behind: {left}"

    def rm_all(self) -> None:
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self.xc("rm", "-f", cid)


def _state() -> dict[str, Any]:
    try:
        return json.loads(Path(NETDIR, "state.json").read_text())
    except FileNotFoundError:
        return {}


def _link_names() -> list[str]:
    out = json.loads(subprocess.run(["ip", "-j", "link"], capture_output=True, text=True, check=True).stdout)
    return [ln["ifname"] for ln in out]


def _nft_rules() -> list[str]:
    p = subprocess.run(["nft", "list", "table", "ip", "xcontainers"], capture_output=True, text=True)
    return [ln.strip() for ln in p.stdout.splitlines() if "comment" in ln] if p.returncode == 0 else []


def _nft_comments() -> list[str]:
    p = subprocess.run(["nft", "-j", "list", "table", "ip", "xcontainers"], capture_output=True, text=True)
    if p.returncode != 0:
        return []
    return [i["rule"].get("comment", "") for i in json.loads(p.stdout)["nftables"] if "rule" in i]


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    need_root()
    if shutil.which("nft") is None:
        pytest.skip("nft is not installed (make setup installs nftables)")
    e = Env(tmp_path_factory.mktemp("net"))
    yield e
    e.rm_all()
    p = e.xc("network", "prune")
    links = _link_names()
    assert not [b for b in e.bridges if b in links], f"prune left a test bridge:\n{p.stdout}{p.stderr}"
    assert not [c for c in _nft_comments() if any(c == f"xc-bridge:{b}" for b in e.bridges)]


@pytest.fixture
def clean(net: Env) -> Iterator[Env]:
    """The network, checked to hold nothing of the test's containers at the end."""
    yield net
    left = net.leftovers()
    net.rm_all()
    assert not any(left.values()), f"left behind: {left}"


def http_get(host: str, port: int, path: str = "/", timeout: float = 5) -> tuple[int, bytes]:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_http(host: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            http_get(host, port, timeout=1)
            return
        except (OSError, IndexError, ValueError):
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing answers HTTP on {host}:{port}") from None
            time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


HTTPD = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"
NC_GET = 'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {addr} {port} | tail -n 1'


# --- bridge -------------------------------------------------------------------------------


def test_bridge_gives_eth0_route_and_dns_files(clean):
    net = clean
    r = net.xc("run", "--rm", "--hostname", "web1", "busybox", "sh", "-c",
               "ip -o -4 addr; echo ---; ip route; echo ---; ip -o link; echo ---; cat /etc/resolv.conf;"
               " echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; hostname", check=True)
    addrs, routes, links, resolv, hosts, rest = r.stdout.split("---\n")
    m = re.search(r"eth0\s+inet (\d+\.\d+\.\d+\.\d+)/(\d+)", addrs)
    assert m, addrs
    addr, plen = m.group(1), int(m.group(2))
    s = ipam.parse_subnet(net.subnet)
    assert s.contains(ipam.parse_ipv4(addr)) and plen == s.prefixlen and addr != net.gateway
    assert f"default via {net.gateway} dev eth0" in routes
    assert re.search(r"lo: <LOOPBACK,UP", links) and re.search(r"eth0@\S+: <[^>]*\bUP\b", links), links
    assert len(links.strip().splitlines()) == 2, links
    assert resolv == network.resolv_conf("bridge")
    assert not re.search(r"^nameserver (127\.|::1)", resolv, re.M)
    assert f"{addr}\tweb1" in hosts and "127.0.0.1\tlocalhost" in hosts
    assert f"{net.gateway}\thost.containers.internal" in hosts
    assert rest == "web1\nweb1\n"
    # The host's side: the bridge holds the gateway address, forwarding is on.
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", net.bridge], capture_output=True, text=True,
                         check=True).stdout
    assert [(a["local"], a["prefixlen"]) for a in json.loads(out)[0]["addr_info"]] == [(net.gateway, s.prefixlen)]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "1"


def test_two_containers_reach_each_other(clean):
    net = clean
    a = net.detached("--name", f"a-{uuid.uuid4().hex[:8]}", "--hostname", "alpha", "busybox", "sh", "-c", HTTPD)
    b = net.detached("--name", f"b-{uuid.uuid4().hex[:8]}", "--hostname", "beta", "busybox", "sh", "-c", HTTPD)
    addr_a, addr_b = net.attachment(a)["address"], net.attachment(b)["address"]
    assert addr_a != addr_b
    wait_http(addr_a, 80)
    wait_http(addr_b, 80)
    r1 = net.xc("exec", a, "sh", "-c", NC_GET.format(addr=addr_b, port=80), check=True)
    r2 = net.xc("exec", b, "sh", "-c", NC_GET.format(addr=addr_a, port=80), check=True)
    assert (r1.stdout, r2.stdout) == ("hello-from-beta\n", "hello-from-alpha\n")
    # A third, short-lived container reaches both.
    r3 = net.xc("run", "--rm", "busybox", "sh", "-c",
                NC_GET.format(addr=addr_a, port=80) + "; " + NC_GET.format(addr=addr_b, port=80), check=True)
    assert r3.stdout == "hello-from-alpha\nhello-from-beta\n"
    veths = [net.attachment(c)["veth"] for c in (a, b)]
    assert all(v in _link_names() for v in veths)
    for c in (a, b):
        net.xc("rm", "-f", c, check=True)
    assert not [v for v in veths if v in _link_names()]


def test_parallel_runs_get_distinct_addresses(clean):
    net = clean
    names = [f"par{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    logs = [Path(net.root).parent / f"{n}.log" for n in names]
    procs = []
    for n, log in zip(names, logs, strict=True):
        with open(log, "w") as f:  # not a pipe: the detached container keeps its stderr
            procs.append(subprocess.Popen([XC, "run", "-d", "--name", n, "busybox", "sleep", "1000"],
                                          env=net.env, stdin=subprocess.DEVNULL, stdout=f, stderr=f))
    for p, log in zip(procs, logs, strict=True):
        assert p.wait(timeout=120) == 0, log.read_text()
    addrs = [net.attachment(n)["address"] for n in names]
    assert len(set(addrs)) == 4, addrs
    for n in names:
        net.xc("rm", "-f", n, check=True)


def test_outbound_nat_to_an_outside_namespace(clean):
    """A server in a namespace of the test's own (the "outside"), reached from
    the container through the host: it sees the host's address, not the
    container's (masquerade)."""
    net = clean
    tag = uuid.uuid4().hex[:6]
    ns, host_if = f"xcnt-out-{tag}", f"xcnto{tag}"
    outside = ipam.parse_subnet(free_subnet(214, 30, avoid=(net.subnet,)))
    host_ip, out_ip = outside.gateway, ipam._int_to_ip(outside.network + 2)
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)  # noqa: E731
    sh("ip", "netns", "add", ns)
    server = None
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", f"{out_ip}/30", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        port = 7777
        code = ("import socket\n"
                "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                f"s.bind(('{out_ip}', {port})); s.listen(); print('ready', flush=True)\n"
                "for _ in range(3):\n"
                "    c, peer = s.accept(); c.sendall(f'peer {peer[0]}\\n'.encode()); c.close()\n")
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", code],
                                  stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline() == "ready\n"
        r = net.xc("run", "--rm", "busybox", "sh", "-c", f"nc -w 5 {out_ip} {port}; ip -o -4 addr show eth0")
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"peer {host_ip}\n"), r.stdout  # masqueraded to the host's address
        assert ipam.parse_subnet(net.subnet).contains(ipam.parse_ipv4(r.stdout.split()[5].split("/")[0]))
        # --network none has no way out.
        r = net.xc("run", "--rm", "--network", "none", "busybox", "nc", "-w", "2", out_ip, str(port))
        assert r.returncode != 0 and "peer" not in r.stdout
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


# --- none, host -----------------------------------------------------------------------------


def test_none_has_only_loopback_up(clean):
    net = clean
    r = net.xc("run", "--rm", "--network", "none", "busybox", "sh", "-c",
               "ip -o link; echo ---; ip -o addr; echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts",
               check=True)
    links, addrs, resolv, hosts = r.stdout.split("---\n")
    assert len(links.strip().splitlines()) == 1 and re.search(r"^1: lo: <LOOPBACK,UP,LOWER_UP>", links), links
    assert "127.0.0.1/8" in addrs and "eth0" not in addrs
    assert resolv == network.resolv_conf("none")
    assert "127.0.0.1\tlocalhost" in hosts


def test_host_sees_the_hosts_links(clean):
    net = clean
    r = net.xc("run", "--rm", "--network", "host", "busybox", "sh", "-c",
               "cat /proc/net/dev; echo ---; cat /etc/resolv.conf; echo ---; readlink /proc/self/ns/net",
               check=True)
    devs, resolv, ns = r.stdout.split("---\n")
    inside = {ln.split(":")[0].strip() for ln in devs.splitlines()[2:]}
    host = {ln.split(":")[0].strip() for ln in Path("/proc/net/dev").read_text().splitlines()[2:]}
    default_dev = json.loads(subprocess.run(["ip", "-j", "route", "show", "default"], capture_output=True,
                                            text=True).stdout or "[]")
    must = {"lo"} | {d["dev"] for d in default_dev}
    # (Other containers' veths come and go meanwhile: only stable links are compared.)
    assert must <= inside and must <= host, (inside, host)
    assert resolv == Path("/etc/resolv.conf").read_text()
    assert ns.strip() == os.readlink("/proc/self/ns/net")


# --- published ports: nginx, differential -------------------------------------------------------

NGINX_CONF = """
user root root;
daemon off;
master_process off;
pid /tmp/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path /tmp/cb; proxy_temp_path /tmp/pt; fastcgi_temp_path /tmp/ft;
    uwsgi_temp_path /tmp/ut; scgi_temp_path /tmp/st;
    server { listen 80; root /www; }
}
"""


@pytest.fixture(scope="module")
def nginx_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """busybox-static plus Debian's nginx and the libraries it links."""
    need_root()
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin")
    if nginx is None:
        pytest.skip("nginx is not installed (make setup installs it)")
    img = tmp_path_factory.mktemp("nginx-image")
    root = build_busybox_rootfs(img / "rootfs")
    libs = re.findall(r"(/\S+) \(0x", subprocess.run(["ldd", nginx], capture_output=True, text=True,
                                                       check=True).stdout)
    for path in [nginx, *libs]:
        dest = root / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)
    (root / "etc/nginx").mkdir(parents=True, exist_ok=True)
    shutil.copy2("/etc/nginx/mime.types", root / "etc/nginx/mime.types")
    (root / "etc/nginx/xc.conf").write_text(NGINX_CONF)
    (root / "www").mkdir()
    (root / "www/index.html").write_text("<h1>nginx in an X-Container</h1>\n")
    (root / "www/big.bin").write_bytes(random.Random(3).randbytes(1 << 20))
    return img


@pytest.mark.parametrize("libos", ["off", "on"])
def test_nginx_on_a_published_port(clean, nginx_image, libos):
    """nginx serves on -p PORT:80 from 127.0.0.1:PORT, the bridge's address and
    the container's own; the same with and without the X-LibOS."""
    net = clean
    port = free_port()
    cid = f"ngx-{libos}-{uuid.uuid4().hex[:8]}"
    flags = ["--no-libos"] if libos == "off" else []
    net.detached("--name", cid, "-p", f"{port}:80", *flags, str(nginx_image), "nginx", "-c", "/etc/nginx/xc.conf")
    att = net.attachment(cid)
    assert att["ports"] == [{"host_ip": "", "host_port": port, "container_port": 80, "proto": "tcp"}]
    rules = [c for c in _nft_comments() if c == att["tag"]]
    assert len(rules) == 2, rules  # prerouting and output
    pid = _wait_running(net, cid)
    seccomp = re.search(r"^Seccomp:\s*(\d)", Path(f"/proc/{pid}/status").read_text(), re.M).group(1)
    assert seccomp == ("2" if libos == "on" else "0")
    wait_http("127.0.0.1", port)
    seen = {}
    for host, p in (("127.0.0.1", port), (net.gateway, port), (att["address"], 80)):
        code, body = http_get(host, p, "/index.html")
        seen[host] = (code, body.decode())
    assert set(seen.values()) == {(200, "<h1>nginx in an X-Container</h1>\n")}, seen
    code, body = http_get("127.0.0.1", port, "/big.bin")
    assert code == 200 and body == random.Random(3).randbytes(1 << 20)
    assert http_get("127.0.0.1", port, "/missing")[0] == 404
    # From another container, through the host's published port (hairpin DNAT).
    r = net.xc("run", "--rm", "busybox", "sh", "-c",
               f'printf "GET /index.html HTTP/1.0\\r\\n\\r\\n" | nc -w 5 {net.gateway} {port} | tail -n 1',
               check=True)
    assert r.stdout == "<h1>nginx in an X-Container</h1>\n"
    net.xc("stop", "-t", "5", cid, check=True)
    net.xc("rm", cid, check=True)
    with pytest.raises(OSError):
        http_get("127.0.0.1", port, timeout=1)


UDP_RECV = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void) {            /* prints the first datagram to port 5353, and who sent it */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(5353)}, from;
    socklen_t len = sizeof from;
    char buf[256];
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
    puts("bound"); fflush(stdout);
    ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
    if (n < 0) { perror("recvfrom"); return 1; }
    buf[n] = 0;
    printf("got %s from %s\n", buf, inet_ntoa(from.sin_addr));
    return 0;
}
"""


@pytest.fixture(scope="module")
def udp_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root()
    cc = shutil.which("musl-gcc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (make setup installs musl-tools and gcc)")
    img = tmp_path_factory.mktemp("udp-image")
    root = build_busybox_rootfs(img / "rootfs")
    (img / "udprecv.c").write_text(UDP_RECV)
    subprocess.run([cc, "-static", "-O2", "-o", str(root / "udprecv"), str(img / "udprecv.c")], check=True)
    return img


def test_udp_port_on_a_host_address(clean, udp_image):
    """-p 127.0.0.1:PORT:5353/udp: a datagram to 127.0.0.1:PORT reaches the
    container's port 5353 (from the bridge's address: loopback is masqueraded)."""
    net = clean
    port = free_port()
    cid = f"udp-{uuid.uuid4().hex[:8]}"
    p = subprocess.Popen([XC, "run", "--rm", "--name", cid, "-p", f"127.0.0.1:{port}:5353/udp",
                          str(udp_image), "/udprecv"], env=net.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "bound\n", p.stderr.read()
        att = net.attachment(cid)
        assert att["ports"] == [{"host_ip": "127.0.0.1", "host_port": port, "container_port": 5353,
                                 "proto": "udp"}]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"ping", ("127.0.0.1", port))
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert out == f"got ping from {net.gateway}\n"
    # The flow's conntrack entry (DNATed to the container) went with it: a
    # client still sending would not be held to the gone address.
    assert not _conntrack_of(att["address"])


def _conntrack_of(address: str) -> list[Any]:
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    with Conntrack() as ct:
        return list(ct.dump_entries(tuple_reply=NFCTAttrTuple(saddr=address))) + \
            list(ct.dump_entries(tuple_orig=NFCTAttrTuple(saddr=address)))


# --- teardown, garbage, kill -9 --------------------------------------------------------------------


def test_foreground_run_without_rm_frees_the_network(clean):
    net = clean
    cid = f"fg-{uuid.uuid4().hex[:8]}"
    r = net.xc("run", "--name", cid, "-p", f"{free_port()}:80", "busybox", "true", check=True)
    assert r.returncode == 0
    left = net.leftovers()
    assert left["states"] == [cid] and left["bundles"] == [cid]  # the stopped container stays
    assert not (left["attachments"] or left["netns"] or left["veths"] or left["rules"]), left
    net.xc("rm", cid, check=True)


def _wait_running(net: Env, cid: str, timeout: float = 30) -> int:
    """The pid of the container's init once its state says running."""
    path = Path(net.root, cid, "state.json")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            st = json.loads(path.read_text())
        except (OSError, ValueError):
            st = {}
        if st.get("status") == "running" and st.get("pid"):
            return int(st["pid"])
        time.sleep(0.05)
    raise AssertionError(f"{cid} never ran")


def test_kill_9_of_xc_run_then_rm(clean):
    """kill -9 of a foreground `xc run`: the container runs on with its
    network (gc leaves it alone); `xc rm -f` then removes both."""
    net = clean
    cid = f"k9-{uuid.uuid4().hex[:8]}"
    port = free_port()
    p = subprocess.Popen([XC, "run", "--name", cid, "-p", f"{port}:80", "busybox", "sh", "-c", HTTPD],
                         env=net.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_running(net, cid)
        wait_http("127.0.0.1", port)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    net.xc("ps", check=True)  # collects garbage: the container still runs, so its network stays
    att = net.attachment(cid)
    assert att["veth"] in _link_names()
    assert http_get("127.0.0.1", port, "/index.html")[0] == 200
    net.xc("rm", "-f", cid, check=True)
    net.assert_clean()


def test_kill_9_then_the_container_stops_then_gc(clean):
    """kill -9 of `xc run`, then the container stops: the next `xc ps` frees
    its network although the stopped container is still listed."""
    net = clean
    cid = f"k9s-{uuid.uuid4().hex[:8]}"
    p = subprocess.Popen([XC, "run", "--name", cid, "-p", f"{free_port()}:80", "busybox", "sleep", "1000"],
                         env=net.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        pid = _wait_running(net, cid)
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    os.kill(pid, signal.SIGKILL)  # the container's init (sleep) dies
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"{cid} " in net.xc("ps", check=True).stdout  # still listed (stopped)
    left = net.leftovers()
    assert left["states"] == [cid] and not (left["attachments"] or left["netns"] or left["mounts"]
                                             or left["veths"] or left["rules"]), left
    net.xc("rm", cid, check=True)


def test_kill_9_during_setup(clean):
    """kill -9 of `xc run` as soon as its attachment is recorded (while the
    namespace, veth and rules are being made): gc removes whatever was made."""
    net = clean
    for i in range(3):
        cid = f"k9set{i}-{uuid.uuid4().hex[:6]}"
        key = network._key(net.root, cid)
        p = subprocess.Popen([XC, "run", "--name", cid, "-p", f"{free_port()}:80", "busybox", "sleep", "1000"],
                             env=net.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and p.poll() is None:
                if f'"{key}"' in (Path(NETDIR, "state.json").read_text()
                                  if os.path.exists(Path(NETDIR, "state.json")) else ""):
                    break
                time.sleep(0.001 * i)
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()
        net.xc("rm", "-f", cid)  # the container may or may not exist by now
        net.xc("ps", check=True)
        shutil.rmtree(net.bundles / cid, ignore_errors=True)  # xc's bundle (not the network's)
        net.assert_clean()


def test_network_prune_removes_orphans(clean):
    """What no attachment names (a namespace file, a veth, a rule) goes with prune."""
    net = clean
    cid = f"orph-{uuid.uuid4().hex[:8]}"
    net.detached("--name", cid, "-p", f"{free_port()}:80", "busybox", "sleep", "1000")
    att = net.attachment(cid)
    # Forget the attachment behind xc's back, as if the state file were lost.
    from xcontainers.ipam import NetworkState

    with NetworkState() as st:
        del st.attachments[network._key(net.root, cid)]
        st.save()
    net.xc("rm", "-f", cid, check=True)
    assert att["veth"] in _link_names() and os.path.exists(att["netns"])
    out = net.xc("network", "prune", check=True).stdout
    assert f"removed link: {att['veth']}" in out and f"removed netns: {att['netns']}" in out
    assert f"removed rule: {att['tag']}" in out
    net.assert_clean()


# --- bad input ------------------------------------------------------------------------------------


def _one_line_error(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xc: "), p.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_port_taken_on_the_host(clean):
    net = clean
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        _one_line_error(net.xc("run", "--rm", "-p", f"{port}:80", "busybox", "true"),
                        f"host port {port}/tcp is already in use")
        _one_line_error(net.xc("run", "--name", "taken", "-p", f"{port}:80", "busybox", "true"), str(port))
    net.assert_clean()


def test_port_published_by_another_container(clean):
    net = clean
    port = free_port()
    first = net.detached("--name", f"pub-{uuid.uuid4().hex[:6]}", "-p", f"{port}:80", "busybox", "sleep", "1000")
    _one_line_error(net.xc("run", "--rm", "-p", f"{port}:81", "busybox", "true"),
                    f"host port {port}/tcp is already published by container {first}")
    # The same number over udp is another port.
    net.xc("run", "--rm", "-p", f"{port}:81/udp", "busybox", "true", check=True)
    net.xc("rm", "-f", first, check=True)


@pytest.mark.parametrize("args,words", [
    (["-p", "80"], ["-p 80: expected [HOSTIP:]HOSTPORT:CONTAINERPORT"]),
    (["-p", "http:80"], ["-p http:80", "'http'"]),
    (["-p", "8080:80/sctp"], ["protocol 'sctp'"]),
    (["-p", "8080:80", "-p", "8080:81"], ["host port 8080/tcp is published twice"]),
    (["--network", "overlay"], ["--network 'overlay': unknown mode"]),
    (["--network", "none", "-p", "8080:80"], ["published ports need --network bridge"]),
    (["-p", "203.0.113.254:8080:80"], ["203.0.113.254 is not an address of this host"]),
])
def test_bad_network_arguments(clean, args, words):
    net = clean
    _one_line_error(net.xc("run", "--rm", *args, "busybox", "true"), *words)
    net.assert_clean()


def test_bad_subnets(clean):
    net = clean
    other = f"xcnu{uuid.uuid4().hex[:6]}"
    cases = [
        ({"XC_SUBNET": "10.0.0.0/33"}, ["expected an IPv4 network"]),
        ({"XC_SUBNET": "10.1.2.3/16"}, ["host bits are set"]),
        ({"XC_BRIDGE": "x" * 16}, ["not a valid interface name"]),
        # The test bridge's own subnet, asked for another bridge: a host route has it.
        ({"XC_BRIDGE": other, "XC_SUBNET": net.subnet}, [f"overlaps the host's route {net.subnet} dev"]),
        # The test bridge with another subnet.
        ({"XC_SUBNET": free_subnet(215)}, [f"bridge {net.bridge} has {net.gateway}/"]),
    ]
    net.xc("run", "--rm", "busybox", "true", check=True)  # the test bridge exists
    for env, words in cases:
        _one_line_error(net.xc("run", "--rm", "busybox", "true", env=env), *words)
        assert other not in _link_names()
    net.assert_clean()


def test_exhausted_subnet(clean):
    net = clean
    bridge = f"xcnx{uuid.uuid4().hex[:6]}"
    subnet = free_subnet(216, 30, avoid=(net.subnet,))  # the gateway and one container
    net.subnets.append(subnet)
    net.bridges.append(bridge)
    env = {"XC_BRIDGE": bridge, "XC_SUBNET": subnet}
    first = net.detached("--name", f"full-{uuid.uuid4().hex[:6]}", "busybox", "sleep", "1000", env=env)
    _one_line_error(net.xc("run", "--rm", "busybox", "true", env=env), f"subnet {subnet} is full")
    net.xc("rm", "-f", first, check=True)
    net.xc("run", "--rm", "busybox", "true", env=env, check=True)  # free again
    net.assert_clean()


def test_a_bridge_xc_did_not_make_survives_prune(clean):
    """XC_BRIDGE may name an existing bridge holding the subnet's gateway:
    containers use it, and prune takes only the rules xc added to it."""
    net = clean
    bridge = f"xcnf{uuid.uuid4().hex[:6]}"
    subnet = free_subnet(217, 28, avoid=(net.subnet,))
    gw = ipam.parse_subnet(subnet).gateway
    net.subnets.append(subnet)
    sh = lambda *a: subprocess.run(a, check=True, capture_output=True, text=True)  # noqa: E731
    sh("ip", "link", "add", bridge, "type", "bridge")
    try:
        sh("ip", "addr", "add", f"{gw}/28", "dev", bridge)
        sh("ip", "link", "set", bridge, "up")
        r = net.xc("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0",
                   env={"XC_BRIDGE": bridge, "XC_SUBNET": subnet}, check=True)
        assert f"inet {ipam._int_to_ip(ipam.parse_subnet(subnet).network + 2)}/28" in r.stdout
        assert f"xc-bridge:{bridge}" in _nft_comments()
        out = net.xc("network", "prune", check=True).stdout
        assert f"removed rule: xc-bridge:{bridge}" in out and f"removed bridge: {bridge}" not in out
        assert bridge in _link_names() and f"xc-bridge:{bridge}" not in _nft_comments()
    finally:
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    net.assert_clean()


# --- the native path: xc's C entry point on a bridge Python made ready ---------------------

NATIVE_PROBE = ("ip -o -4 addr show eth0 | awk '{print $4}'; echo ---; ip route; echo ---; ip -o link | cut -d: -f2 | cut -d@ -f1;"
                " echo ---; cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname;"
                " cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start")


@pytest.fixture(scope="module")
def stored(net: Env, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A stored image (the native path runs only those) in the test's store,
    and the test bridge made ready by a Python run."""
    from imagelib import podman_images

    out = podman_images(tmp_path_factory.mktemp("netimg"))
    net.xc("image", "import", str(out["docker"]), check=True)
    net.xc("run", "--rm", "busybox", "true", check=True)  # (the built-in image: Python makes the bridge)
    return "xctest/bb:1"


def _path_run(net: Env, path: str, *args: str, check: bool = True, env: dict[str, str] | None = None,
              force: bool = True) -> subprocess.CompletedProcess[str]:
    """`xc ARGS` on the given path (native, or python: XC_NATIVE=0 unless not
    *force*d), checked to have taken it."""
    e = {"XC_DEBUG": "1", **({"XC_NATIVE": "0"} if path == "python" and force else {}), **(env or {})}
    p = net.xc(*args, env=e)
    # (a native run undone half-way says so, then hands the command to Python)
    took = "python" if re.search(r"^xc: debug: python path: ", p.stderr, re.M) else "native"
    assert took == path, f"xc {' '.join(args)} took the {took} path: {p.stderr}"
    if check:
        assert p.returncode == 0, f"xc {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p


def _wait_clean(net: Env, timeout: float = 15) -> None:
    """What the containers' networks left, once their removers are done: nothing."""
    deadline = time.monotonic() + timeout
    while any(net.leftovers().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    net.assert_clean()


def test_native_bridge_gives_what_python_gives(clean, stored):
    """A container on the bridge, natively and on Python: the same address
    and route, links, DNS files and sysctls (the address aside), and after
    it nothing of its network."""
    seen = {}
    for path in ("native", "python"):
        cid = f"nb-{path[:3]}-{uuid.uuid4().hex[:6]}"
        p = _path_run(net := clean, path, "run", "--rm", "--name", cid, stored, "sh", "-c", NATIVE_PROBE)
        addr = p.stdout.split("/")[0]
        s = ipam.parse_subnet(net.subnet)
        assert s.contains(ipam.parse_ipv4(addr)) and addr != net.gateway, p.stdout
        seen[path] = p.stdout.replace(addr, "ADDR").replace(cid[:12], "CID")
        _wait_clean(net)
    assert seen["native"] == seen["python"]
    assert f"default via {clean.gateway} dev eth0" in seen["native"]
    assert "ADDR\tCID\n" in seen["native"] and "0\t2147483647\n0\n" in seen["native"]


def test_native_bridge_bundle_is_pythons_and_the_network_goes_with_the_container(clean, stored):
    """Kept containers: config.json and the DNS files as Python writes them
    (but for the id and the address); the network is gone once the
    container has exited, the container stays until `xc rm`."""
    net = clean
    files = {}
    for path in ("native", "python"):
        cid = f"nk-{path[:3]}-{uuid.uuid4().hex[:6]}"
        _path_run(net, path, "run", "--name", cid, "-e", "X=1", stored, "true")
        b = net.bundles / cid
        addr = re.search(r"^(\S+)\t" + cid[:12], (b / "hosts").read_text(), re.M).group(1)
        files[path] = {n: (b / n).read_text().replace(cid, "CID").replace(cid[:12], "CID").replace(addr, "ADDR")
                       for n in ("config.json", "hosts", "hostname", "resolv.conf")}
        deadline = time.monotonic() + 15
        while net.leftovers()["attachments"] and time.monotonic() < deadline:
            time.sleep(0.05)
        left = net.leftovers()
        assert left["states"] == [cid] and left["bundles"] == [cid], left
        assert not (left["attachments"] or left["netns"] or left["mounts"] or left["veths"]), left
        net.xc("rm", cid, check=True)
    assert files["native"] == files["python"]
    spec = json.loads(files["native"]["config.json"])
    assert {"type": "network", "path": os.path.join(NETNS_DIR, "CID" + net.suffix)} in spec["linux"]["namespaces"]
    net.assert_clean()


def test_native_bridge_containers_reach_each_other(clean, stored):
    """A detached native container serves HTTP on its address; another
    native one fetches from it; `xc rm -f` (Python) removes the first's network."""
    net = clean
    a = f"nh-{uuid.uuid4().hex[:6]}"
    log = Path(net.root).parent / f"{a}.log"
    with open(log, "w") as f:  # (not a pipe: the container would hold it open)
        subprocess.run([XC, "run", "-d", "--name", a, stored, "sh", "-c", HTTPD], stdin=subprocess.DEVNULL,
                       stdout=f, stderr=f, env=dict(net.env, XC_DEBUG="1"), timeout=60, check=True)
    assert f"xc: debug: native path: run {a}" in log.read_text()
    addr = net.attachment(a)["address"]
    assert net.attachment(a)["veth"] in _link_names()
    wait_http(addr, 80)
    r = _path_run(net, "native", "run", "--rm", stored, "wget", "-q", "-O", "-", f"http://{addr}/index.html")
    assert r.stdout == f"hello-from-{a}\n"
    net.xc("rm", "-f", a, check=True)
    _wait_clean(net)


def test_native_bridge_falls_back_where_python_must_act(clean, stored, net):
    """Settings Python refuses, and a bridge not made yet, go to Python
    (which words the error, or makes the bridge; the next run is native)."""
    for env, why in (({"XC_SUBNET": "10.88.0.0/33"}, "XC_SUBNET"), ({"XC_BRIDGE": "x" * 16}, "XC_BRIDGE")):
        p = _path_run(net, "python", "run", "--rm", stored, "true", env=env, check=False, force=False)
        assert p.returncode == 1 and f"python path: --network bridge: {why}" in p.stderr, p.stderr
    bridge = f"xcnn{uuid.uuid4().hex[:6]}"
    subnet = free_subnet(219, 28, avoid=(net.subnet,))
    net.bridges.append(bridge)
    net.subnets.append(subnet)
    env = {"XC_BRIDGE": bridge, "XC_SUBNET": subnet}
    p = _path_run(net, "python", "run", "--rm", stored, "true", env=env, force=False)
    assert f"bridge {bridge} not made yet" in p.stderr
    _path_run(net, "native", "run", "--rm", stored, "true", env=env)
    _wait_clean(net)


def test_native_bridge_forgets_the_containers_connections(clean, stored):
    """The connection-tracking entries of a native container's address (a
    UDP flow it opened) are gone with its network."""
    net = clean
    cid = f"nct-{uuid.uuid4().hex[:6]}"
    p = subprocess.Popen([XC, "run", "--rm", "--name", cid, stored, "sh", "-c",
                          f"nslookup -timeout=1 x.example {net.gateway} >/dev/null 2>&1; sleep 2"], env=dict(net.env, XC_DEBUG="1"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        addr = None
        while time.monotonic() < deadline and not (addr and _conntrack_of(addr)):
            addr = _state().get("attachments", {}).get(network._key(net.root, cid), {}).get("address", addr)
            time.sleep(0.05)
        assert addr and _conntrack_of(addr), "the container's flow was never tracked"
    finally:
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0 and f"native path: run {cid}" in err, err
    _wait_clean(net)
    assert _conntrack_of(addr) == []


def test_native_published_ports(clean, stored):
    """-p natively: the same attachment and rules as Python's, the port
    reached from the host, the rules gone with the container (`xc rm -f`,
    Python's; and a foreground run's, by the network's remover)."""
    net = clean
    port = free_port()
    got = {}
    for path in ("native", "python"):
        cid = f"np-{path[:3]}-{uuid.uuid4().hex[:6]}"
        log = Path(net.root).parent / f"{cid}.log"
        with open(log, "w") as f:  # (not a pipe: the container would hold it open)
            subprocess.run([XC, "run", "-d", "--name", cid, "-p", f"{port}:80", "-p", f"127.0.0.1:{port + 1}:80/udp",
                            stored, "sh", "-c", HTTPD], stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=60,
                           env=dict(net.env, XC_DEBUG="1", **({"XC_NATIVE": "0"} if path == "python" else {})))
        text = log.read_text()
        assert (f"xc: debug: native path: run {cid}" in text) == (path == "native"), text
        att = net.attachment(cid)
        wait_http("127.0.0.1", port)
        assert http_get("127.0.0.1", port, "/index.html") == (200, f"hello-from-{cid[:12]}\n".encode())
        key = network._key(net.root, cid)
        rules = [r for r in _nft_rules() if r.endswith(f'comment "xc:{key}"')]
        got[path] = ({k: v for k, v in att.items() if k not in ("id", "owner", "netns", "address", "tag", "veth")},
                     att["tag"] == f"xc:{key}",
                     sorted(r.replace(att["address"], "ADDR").replace(key, "KEY") for r in rules))
        net.xc("rm", "-f", cid, check=True)
        _wait_clean(net)
    assert got["native"] == got["python"]
    assert len(got["native"][2]) == 4 and got["native"][1], got
    cid = f"npf-{uuid.uuid4().hex[:6]}"
    _path_run(net, "native", "run", "--rm", "--name", cid, "-p", f"{port}:80", stored, "true")
    _wait_clean(net)


def test_native_published_port_refusals_go_to_python(clean, stored):
    """A port a host program holds, one another container publishes, a
    malformed one: the native path leaves them to Python, which refuses."""
    net = clean
    port = free_port()
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))
        s.listen()
        p = _path_run(net, "python", "run", "--rm", "-p", f"{port}:80", stored, "true", check=False, force=False)
        assert p.returncode == 1 and "already in use" in p.stderr, p.stderr
    a = net.detached("--name", f"npr-{uuid.uuid4().hex[:6]}", "-p", f"{port}:80", stored, "sleep", "100")
    p = _path_run(net, "python", "run", "--rm", "-p", f"{port}:80", stored, "true", check=False, force=False)
    assert p.returncode == 1 and "already published" in p.stderr, p.stderr
    net.xc("rm", "-f", a, check=True)
    p = _path_run(net, "python", "run", "--rm", "-p", "80:80/sctp", stored, "true", check=False, force=False)
    assert p.returncode == 1 and "sctp" in p.stderr, p.stderr
    _wait_clean(net)


@pytest.mark.parametrize("point", ["configured", "exited", "network-removing"])
def test_native_bridge_kill_9_leaves_nothing(clean, stored, point):
    """kill -9 of `xc` once the network is made, after the container
    exited, and of the network's remover: `xc rm -f` and the next command's
    collection leave nothing."""
    net = clean
    cid = f"nk9-{uuid.uuid4().hex[:6]}"
    p = net.xc("run", "--rm", "--name", cid, "-p", f"{free_port()}:80", stored, "true", env={"XC_FAULT": point})
    assert p.returncode == (0 if point == "network-removing" else -9), p.stderr
    time.sleep(0.2)
    net.xc("rm", "-f", cid)
    net.xc("ps", check=True)
    shutil.rmtree(net.bundles / cid, ignore_errors=True)  # (a bundle killed before its remover: test_fastrun's)
    _wait_clean(net)
