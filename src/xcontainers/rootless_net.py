"""Networks for rootless containers: a user-mode network stack per container.

An unprivileged user cannot give a network namespace a real interface: a
veth pair or a bridge port needs CAP_NET_ADMIN in the *host's* network
namespace.  What it can do is open a tap device inside the container's
namespace (its user namespace owns that one) and serve the tap's packets
from a process outside, which turns the container's TCP and UDP flows into
ordinary sockets of the user on the host.  Two Debian packages do this:

* **slirp4netns** (``--network slirp4netns``, the default): the container
  gets ``tap0`` with 10.0.2.100/24, its gateway 10.0.2.2 and a DNS
  forwarder at 10.0.2.3.  Started with ``--disable-host-loopback`` (the
  container cannot reach the host's 127.0.0.1 services, as with podman),
  ``--enable-sandbox`` and ``--enable-seccomp``.  Published ports are
  added through its API socket (``add_hostfwd``).
* **pasta** (``--network pasta``, from passt): the container's interface
  copies the host's address and routes; ports are forwarded with its
  ``-t``/``-u`` options; ``--no-map-gw`` keeps the host's loopback out of
  reach as above.

``none`` gives the container a namespace of its own with only ``lo`` (up);
``host`` shares the host's network namespace (no isolation, no helper).

The helper must live exactly as long as the container.  It is started
after the container is created (it needs the init's namespaces) and before
it starts, and a small *keeper* process, forked from ``xc``, holds pidfds
of the container's init and of the helper: when the init exits it stops
the helper.  So a detached container's network outlives ``xc``, and
nothing is left when the container ends, whoever ends it.

/dev/net/tun must be usable by the user (mode 0666, as Debian's udev
rules make it).
"""

from __future__ import annotations

import os

from ._record import field, record
from .errors import SetupError, XcError
from .network import PortMapping as Port

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MODES", "Request", "request", "configure_bundle", "attach"]

MODES = ("slirp4netns", "pasta", "none", "host")
_SLIRP_DNS = "10.0.2.3"
_READY_TIMEOUT = 10.0
# What the keeper ignores (it must outlive the xc that forked it).
_IGNORED = (1, 2, 3, 13, 15)  # SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM


@record
class Request:
    mode: str = "slirp4netns"
    ports: list[Port] = field(default_factory=list)


def request(mode: str, ports: list[Port]) -> Request:
    """Check what a rootless `xc run --network MODE -p ...` asks, before
    anything is made.  "bridge" (the root default) means slirp4netns here."""
    if mode == "bridge":
        mode = "slirp4netns"
    if mode not in MODES:
        raise XcError(f"--network {mode!r}: rootless, the modes are {', '.join(MODES)}")
    if ports and mode not in ("slirp4netns", "pasta"):
        raise XcError(f"-p: published ports need --network slirp4netns or pasta (not {mode})")
    if mode in ("slirp4netns", "pasta"):
        binary = "slirp4netns" if mode == "slirp4netns" else "pasta"
        if _which(binary) is None:
            pkg = "slirp4netns" if mode == "slirp4netns" else "passt"
            raise XcError(f"--network {mode}: {binary} is not installed (Debian package {pkg})")
        if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
            raise XcError(f"--network {mode}: /dev/net/tun is not usable by this user "
                          f"(it needs mode 0666, as Debian's udev rules set it)")
    return Request(mode, list(ports))


def _which(name: str) -> str | None:
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":") + ["/usr/bin", "/bin"]:
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def configure_bundle(spec: dict[str, Any], bundle: str, req: Request) -> None:
    """Edit the container's config for *req*: its own network namespace
    (or none for host), and an /etc/resolv.conf that works there."""
    lx = spec.setdefault("linux", {})
    nss = [ns for ns in lx.get("namespaces", []) if ns["type"] != "network"]
    if req.mode != "host":
        nss.append({"type": "network"})
    lx["namespaces"] = nss
    if req.mode == "none":
        return
    if req.mode == "slirp4netns":
        text = f"nameserver {_SLIRP_DNS}\n"
    else:
        text = _host_resolv_conf()
    path = os.path.join(bundle, "resolv.conf")
    with open(path, "w") as f:
        f.write(text)
    spec.setdefault("mounts", []).append(
        {"destination": "/etc/resolv.conf", "type": "bind", "source": path, "options": ["rbind", "ro"]})


def _host_resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            return f.read()
    except OSError:
        return ""


# --- the helpers ------------------------------------------------------------------


def attach(req: Request, init_pid: int, workdir: str) -> None:
    """Give the container whose init is *init_pid* (created, not yet
    started) its network, served by a helper under a keeper that stops it
    when the init exits.  *workdir* is a private directory for the helper's
    socket, pid file and log.  Returns once the network is up."""
    if req.mode not in ("slirp4netns", "pasta"):
        return
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            if os.fork() == 0:  # the keeper, orphaned at once: no one need reap it
                _keeper_main(req, init_pid, workdir, w)
        finally:
            os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    chunks = []
    while True:
        data = os.read(r, 4096)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    answer = b"".join(chunks).decode(errors="replace")
    if answer != "ok":
        raise SetupError(answer or f"--network {req.mode}: the network helper died")


def _keeper_main(req: Request, init_pid: int, workdir: str, report: int) -> None:
    """Start the helper, report "ok" (or the error) on *report*, then wait
    for the container's init to exit and stop the helper."""
    import _signal

    helper = 0
    try:
        os.setsid()
        for sig in _IGNORED:
            _signal.signal(sig, _signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.closerange(3, report)
        os.closerange(report + 1, 1 << 20)
        init_fd = os.pidfd_open(init_pid)
        log = os.path.join(workdir, f"{req.mode}.log")
        start = _start_slirp if req.mode == "slirp4netns" else _start_pasta
        helper = start(req, init_pid, workdir, log)
        helper_fd = os.pidfd_open(helper)
    except BaseException as e:  # noqa: BLE001 - reported to xc
        if helper:
            _stop(helper)
        msg = str(e) if isinstance(e, XcError) else f"--network {req.mode}: {e}"
        os.write(report, msg.encode())
        return
    os.write(report, b"ok")
    os.close(report)
    import select

    p = select.poll()
    p.register(init_fd, select.POLLIN)
    p.register(helper_fd, select.POLLIN)
    while not p.poll(-1):
        pass
    _stop(helper)


def _stop(pid: int) -> None:
    """SIGTERM our child helper, SIGKILL if it lingers; reap it.  (Its pid
    cannot be reused before we reap it.)"""
    import _signal
    import time

    for sig, grace in ((_signal.SIGTERM, 2.0), (_signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if os.waitpid(pid, os.WNOHANG)[0]:
                return
            time.sleep(0.01)


def _spawn(args: list[str], log: str, keep: tuple[int, ...] = ()) -> int:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                import _signal

                for sig in _IGNORED:  # ignored dispositions would survive the exec
                    _signal.signal(sig, _signal.SIG_DFL)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                for k in keep:
                    os.set_inheritable(k, True)
                os.execv(args[0], args)
            finally:
                os._exit(127)
        return pid
    finally:
        os.close(fd)


def _fail(req: Request, what: str, log: str) -> SetupError:
    try:
        with open(log, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip() and "syslog" not in ln]
    except OSError:
        lines = []
    return SetupError(f"--network {req.mode}: {what}" + (f": {lines[-1]}" if lines else ""))


def _exited(pid: int) -> bool:
    done, _ = os.waitpid(pid, os.WNOHANG)
    return done != 0


def _start_slirp(req: Request, init_pid: int, workdir: str, log: str) -> int:
    api = None
    if req.ports:  # a short path (sun_path holds 108 bytes), removed once the ports are set
        import tempfile

        api = os.path.join(tempfile.mkdtemp(prefix="xc-slirp-"), "api.sock")
    try:
        ready_r, ready_w = os.pipe()
        args = [_which("slirp4netns") or "/usr/bin/slirp4netns", "--configure", "--mtu=65520",
                "--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", f"--ready-fd={ready_w}"]
        if api:
            args.append(f"--api-socket={api}")
        args += [str(init_pid), "tap0"]
        pid = _spawn(args, log, (ready_w,))
        os.close(ready_w)
        try:
            ok = _wait_readable(ready_r, _READY_TIMEOUT) and os.read(ready_r, 1) == b"1"
        finally:
            os.close(ready_r)
        try:
            if not ok:
                raise _fail(req, "the network did not come up", log)
            for port in req.ports:
                _slirp_hostfwd(api, port)  # type: ignore[arg-type]
        except BaseException:
            _stop(pid)
            raise
        return pid
    finally:
        if api:  # only needed to add the ports; slirp4netns serves on without it
            for remove, path in ((os.unlink, api), (os.rmdir, os.path.dirname(api))):
                try:
                    remove(path)
                except OSError:
                    pass


def _slirp_hostfwd(api: str, port: Port) -> None:
    import _socket
    import json

    msg = {"execute": "add_hostfwd", "arguments": {
        "proto": port.proto, "host_addr": port.host_ip or "0.0.0.0",
        "host_port": port.host_port, "guest_port": port.container_port}}
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.settimeout(_READY_TIMEOUT)
        s.connect(api)
        s.sendall(json.dumps(msg).encode())
        s.shutdown(_socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError as e:
        raise SetupError(f"-p {_port_text(port)}: slirp4netns API: {e.strerror or e}") from None
    finally:
        s.close()
    try:
        reply = json.loads(data or b"{}")
    except ValueError:
        reply = {"error": {"desc": data.decode(errors="replace")}}
    if "error" in reply:
        desc = reply["error"].get("desc") if isinstance(reply["error"], dict) else reply["error"]
        raise SetupError(f"-p {_port_text(port)}: slirp4netns refused it: {desc}")


def _port_text(p: Port) -> str:
    return f"{p.host_ip + ':' if p.host_ip else ''}{p.host_port}:{p.container_port}/{p.proto}"


def _start_pasta(req: Request, init_pid: int, workdir: str, log: str) -> int:
    import time

    pidfile = os.path.join(workdir, "pasta.pid")
    spec = {proto: ",".join(f"{p.host_ip + '/' if p.host_ip else ''}{p.host_port}:{p.container_port}"
                            for p in req.ports if p.proto == proto) or "none" for proto in ("tcp", "udp")}
    args = [_which("pasta") or "/usr/bin/pasta", "--config-net", "--foreground", "--quiet", "--no-map-gw",
            "--pid", pidfile, "-t", spec["tcp"], "-u", spec["udp"], "-T", "none", "-U", "none", str(init_pid)]
    pid = _spawn(args, log)
    # pasta writes its pid file once the namespace is configured.
    deadline = time.monotonic() + _READY_TIMEOUT
    while not os.path.exists(pidfile):
        if _exited(pid):
            raise _fail(req, "the network did not come up", log)
        if time.monotonic() > deadline:
            _stop(pid)
            raise _fail(req, "the network did not come up in time", log)
        time.sleep(0.005)
    return pid


def _wait_readable(fd: int, timeout: float) -> bool:
    import select

    p = select.poll()
    p.register(fd, select.POLLIN | select.POLLHUP)
    return bool(p.poll(int(timeout * 1000)))
