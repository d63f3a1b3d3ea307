"""`xc`: the friendly command line.

    xc run [--rm] [-it] [-d] [--name N] [-e K=V] [-m BYTES] [--pids-limit N]
           [--stats] [--trace] [--no-abom] [--libos KEY=VALUE]
           [--network bridge|none|host] [-p [HOSTIP:]HOSTPORT:PORT[/tcp|udp]] [IMAGE] [CMD...]
    xc ps | xc exec ID CMD... | xc stop ID | xc rm [-f] ID
    xc image import FILE [--name REF] | xc image ls | xc image rm REF | xc images
    xc pull [--insecure] [--creds U:P] REF   pull an image from a registry (v2 API)
    xc system prune                 stale container mounts, unused layers, partial downloads
    xc network ls|prune             containers' networks (docs/network.md)
    xc stats ID [--json]            what the X-LibOS of a running container did so far
    xc abom scan|patch ...          the offline ABOM analyzer (xc abom -h)
    xc libos interface|table        the exokernel interface, the system call table
    xc bench ...                    benchmarks (xc bench -h)

IMAGE is an image of the store (``xc image import``, ``xc pull``: the
container's root is an overlay of the image's layers, docs/images.md; a
rootless container mounts it inside its own namespaces), the
built-in ``busybox`` (the default, made from Debian's busybox-static on
first use) or a directory holding a rootfs (both copied into the bundle).
Each container gets a bundle under /var/lib/xcontainers/containers/ID and
is run by the same runtime as ``xc-runtime``, with its state under /run/xc.

Run by an unprivileged user, ``xc`` is rootless (docs/rootless.md): state
under $XDG_RUNTIME_DIR/xc, bundles and images under
~/.local/share/xcontainers, the container in a user namespace, and
``--network slirp4netns`` (the default), ``pasta``, ``none`` or ``host``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from typing import Any

from .errors import XcError
from .points import mark

__all__ = ["main", "new_spec"]

STATE_ROOT = os.environ.get("XC_ROOT", "/run/xc")
BUNDLES = os.environ.get("XC_BUNDLES", "/var/lib/xcontainers/containers")


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().rstrip("b")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise XcError(f"invalid size {text!r} (examples: 64m, 1g, 1048576)") from None


def new_spec(cmd: list[str], terminal: bool, hostname: str) -> dict[str, Any]:
    """The config every `xc run` container starts from, before its flags
    and its image fill it in (runtemplate.py keeps it, filled from the
    image, for the native entry point)."""
    from .defaults import default_spec

    spec: dict[str, Any] = default_spec(cmd or ["sh"], terminal=terminal, hostname=hostname)
    spec["root"]["readonly"] = False
    spec["linux"]["namespaces"].append({"type": "cgroup"})
    return spec


def _bundle(cid: str, a: argparse.Namespace, cmd: list[str]) -> str:
    from . import imagerun

    rec = imagerun.find(a.image)
    bundle = os.path.join(BUNDLES, cid)
    os.makedirs(BUNDLES, exist_ok=True)
    os.mkdir(bundle)
    overlay: dict[str, str] = {}
    try:
        if rec is None:
            from .image import copy_rootfs, image_rootfs

            imagerun.write_marker(bundle, STATE_ROOT, None)
            copy_rootfs(image_rootfs(a.image), os.path.join(bundle, "rootfs"))
        elif os.geteuid() == 0:
            from . import runtemplate

            rootfs: Any = imagerun.mount_rootfs(rec, bundle, STATE_ROOT, volatile=a.rm)
            mark("mounted")
            runtemplate.write_if_missing(rec, rootfs, a.image)
        else:  # mounted by the container's init, in its own namespaces
            overlay, rootfs = imagerun.rootless_overlay(rec, bundle, STATE_ROOT)
        spec = new_spec(cmd, a.tty, a.hostname or cid[:12])
        res = spec["linux"]["resources"]
        if a.memory:
            res["memory"] = {"limit": _parse_size(a.memory)}
        if a.pids_limit:
            res["pids"] = {"limit": a.pids_limit}
        if os.geteuid() == 0:
            spec["linux"]["cgroupsPath"] = f"/xc/{cid}"
        else:
            _rootless_bundle(spec, bundle, a)
        spec["annotations"] = {**overlay, **_libos_annotations(a)}
        if rec is None:
            spec["process"]["env"] += a.env
            if a.entrypoint is not None:
                spec["process"]["args"] = ([a.entrypoint] if a.entrypoint else []) + cmd
        else:
            from .imagestore import ImageStore

            for w in imagerun.apply_config(spec, ImageStore().config(rec), rootfs, cmd=cmd, env=a.env,
                                           entrypoint=a.entrypoint, image=a.image):
                sys.stderr.write(f"xc: {w}\n")
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(spec, f, indent=2)
    except BaseException:
        imagerun.remove_bundle(bundle)
        raise
    return bundle


def _rootless_defaults(cmd: str) -> None:
    """Not root: state under $XDG_RUNTIME_DIR/xc, bundles and images under
    ~/.local/share/xcontainers (each unless its variable names another)."""
    global STATE_ROOT, BUNDLES
    from . import rootless

    if "XC_ROOT" not in os.environ and cmd in ("run", "ps", "exec", "stop", "rm", "stats"):
        STATE_ROOT = rootless.runtime_dir("xc", "name a state directory in XC_ROOT")
    if "XC_BUNDLES" not in os.environ:
        BUNDLES = rootless.data_dir("containers")
    os.environ.setdefault("XC_IMAGES", rootless.data_dir("images"))  # read by .image
    os.environ.setdefault("XC_STORAGE", rootless.data_dir("storage"))  # read by .imagestore


def _rootless_bundle(spec: dict[str, Any], bundle: str, a: argparse.Namespace) -> None:
    """The config of a rootless container (see rootless.py): container root
    is the user; with a range in /etc/subuid and /etc/subgid, the ids from 1
    up map onto it (as podman does); its network as --network asks."""
    from . import rootless, rootless_net
    from .defaults import rootless_spec

    rootless_spec(spec)
    lx = spec["linux"]
    lx["uidMappings"], lx["gidMappings"] = rootless.container_id_maps()
    rootless_net.configure_bundle(spec, bundle, a.net)


def _libos_annotations(a: argparse.Namespace) -> dict[str, str]:
    """The LibOS profile the flags ask for, as the annotations xc-runtime reads
    (xcontainers/profile.py documents them)."""
    from .profile import ANNOTATION

    ann: dict[str, str] = {}
    if a.no_libos:
        ann[ANNOTATION] = "off"
    if a.no_abom:
        ann[ANNOTATION + ".abom"] = "off"
    if a.trace:
        ann[ANNOTATION + ".trace"] = "stderr"
    for kv in a.libos:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise XcError(f"--libos {kv!r}: expected KEY=VALUE (e.g. syscalls=ptrace=refuse:EPERM)")
        ann[ANNOTATION + "." + k] = v
    return ann


def _remove_bundle(cid: str) -> None:
    from .imagerun import remove_bundle

    remove_bundle(os.path.join(BUNDLES, cid))


def _gc() -> None:
    """Remove what containers whose `xc` was killed left: stale bundles and
    their overlay mounts (xcontainers/imagerun.py), networks of containers
    that no longer exist (xcontainers/network.py)."""
    from .imagerun import gc
    from .network import collect_garbage

    gc(BUNDLES)
    if os.geteuid() == 0:  # rootless networks end with their container (rootless_net.py)
        collect_garbage()


def _is_image(name: str) -> bool:
    from .imagerun import find

    if find(name) is not None:
        return True
    from .image import BUILTIN, IMAGES_DIR

    if name == BUILTIN or os.path.isdir(name) or os.path.isdir(os.path.join(IMAGES_DIR, name)):
        return True
    if ("/" in name or ":" in name) and not name.startswith(("/", ".")):
        raise XcError(f"image {name!r} not found (xc image ls; xc image import FILE; xc pull {name})")
    return False


def _release_network(cid: str) -> None:
    """Remove the container's network (a warning, not an error, if that fails).
    Rootless containers' networks end with them (rootless_net.py)."""
    from . import network

    if os.geteuid() != 0:
        return

    try:
        network.detach(cid, STATE_ROOT)
    except XcError as e:
        sys.stderr.write(f"xc: warning: {e}\n")


def cmd_run(a: argparse.Namespace) -> int:
    from . import network
    from .container import Runtime

    _gc()
    rt = Runtime(STATE_ROOT)
    cid = a.name or uuid.uuid4().hex[:12]
    rt.store.check_id(cid)
    net, on_created = _network_request(a)  # bad input fails before anything is made
    if os.path.exists(os.path.join(BUNDLES, cid)):
        raise XcError(f"container {cid!r} already exists (xc rm {cid})")
    cmd = list(a.command)
    if not _is_image(a.image):
        # `xc run CMD...`: the built-in image is implied.
        cmd = [a.image] + cmd
        a.image = "busybox"
    bundle = _bundle(cid, a, cmd)
    if net is not None:
        try:
            network.attach(cid, STATE_ROOT, net, bundle, a.hostname or cid[:12])
        except BaseException:
            _remove_bundle(cid)
            raise
    mark("configured")
    detached = False
    try:
        if a.detach:
            rt.run(cid, bundle, detach=True, on_created=on_created)
            detached = True
            print(cid)
            return 0
        code = rt.run(cid, bundle, keep=not a.rm, on_created=on_created)
        if a.stats and rt.stats_fd >= 0:
            from .libos import format_stats, read_stats

            try:
                sys.stderr.write(format_stats(read_stats(rt.stats_fd)) + "\n")
            except XcError as e:
                sys.stderr.write(f"xc: warning: {e}\n")
        return code
    finally:
        if not detached:  # the container has stopped (or never started): its network goes
            if net is not None:
                _release_network(cid)
            if a.rm or a.detach:
                _remove_bundle(cid)


def _network_request(a: argparse.Namespace) -> tuple[Any, Any]:
    """Check --network/-p before anything is made.  As root: the request
    for network.attach() (bridge, none, host); rootless: None and the
    function that gives the created container its network (rootless_net.py)."""
    from . import network

    a.net = None
    if os.geteuid() == 0:
        return network.request(a.network or "bridge", a.publish), None
    from . import rootless_net

    a.net = rootless_net.request(a.network or "slirp4netns", [network.parse_port(p) for p in a.publish])

    def attach(state: Any) -> None:
        rootless_net.attach(a.net, state.pid, state.bundle)

    return None, attach


def cmd_ps(a: argparse.Namespace) -> int:
    from .container import Runtime

    _gc()
    items = Runtime(STATE_ROOT).list()
    print(f"{'ID':<14}{'PID':<8}{'STATUS':<10}{'CREATED'}")
    for s in items:
        print(f"{s['id']:<14}{s['pid']:<8}{s['status']:<10}{s['created']}")
    return 0


def cmd_exec(a: argparse.Namespace) -> int:
    from .container import ExecOptions, Runtime

    rt = Runtime(STATE_ROOT)
    proc = rt.exec_process(a.id, a.command, tty=a.tty, env=a.env)
    return rt.exec(a.id, proc, ExecOptions())


def cmd_stop(a: argparse.Namespace) -> int:
    import signal
    import time

    from .container import Runtime
    from .state import Status

    rt = Runtime(STATE_ROOT)
    rt.kill(a.id, signal.SIGTERM)
    deadline = time.monotonic() + a.time
    while time.monotonic() < deadline:
        if rt.store.load(a.id).live_status() == Status.STOPPED:
            return 0
        time.sleep(0.05)
    rt.kill(a.id, signal.SIGKILL, all_processes=True)
    return 0


def cmd_rm(a: argparse.Namespace) -> int:
    from .container import Runtime
    from .errors import NotFound
    from .imagerun import remove_stale

    try:
        Runtime(STATE_ROOT).delete(a.id, force=a.force)
    except NotFound:
        # Its `xc` may have died before the container was made: the bundle
        # (and its overlay mount, its network) are all that is left.
        _release_network(a.id)
        if remove_stale(BUNDLES, a.id):
            return 0
        raise
    _release_network(a.id)
    _remove_bundle(a.id)
    _gc()
    return 0


def cmd_network(a: argparse.Namespace) -> int:
    from . import network

    if a.what == "prune":
        out = network.prune()
        for what, names in out.items():
            for n in names:
                print(f"removed {what[:-1] if what != 'netns' else what}: {n}")
        return 0
    atts = network.attachments()
    if a.json:
        print(json.dumps(atts, indent=2))
        return 0
    print(f"{'CONTAINER':<16}{'MODE':<8}{'BRIDGE':<8}{'ADDRESS':<16}{'PORTS'}")
    for att in atts.values():
        ports = ", ".join(f"{p['host_ip'] + ':' if p['host_ip'] else ''}{p['host_port']}->"
                          f"{p['container_port']}/{p['proto']}" for p in att.get("ports") or [])
        print(f"{att['id']:<16}{att['mode']:<8}{att.get('bridge', '-'):<8}{att.get('address', '-'):<16}{ports}")
    return 0


def cmd_libos(a: argparse.Namespace) -> int:
    from . import libos

    if a.what == "interface":
        items = libos.interface()
        if a.json:
            print(json.dumps({"size": len(items), "calls": [
                {"nr": nr, "name": name, "check": check} for nr, name, check in items]}, indent=2))
        elif a.markdown:
            sys.stdout.write(libos.interface_markdown())
        else:
            print(f"exokernel interface: {len(items)} host system calls, allowed only from the LibOS gate")
            for nr, name, check in items:
                print(f"{nr:>4}  {name:<20} {'' if check == 'ANY' else check}")
        return 0
    if a.json:
        print(json.dumps([{"nr": nr, "name": name, "how": how, "note": note}
                          for nr, name, how, note in libos.table()], indent=2))
    elif a.markdown:
        sys.stdout.write(libos.table_markdown())
    else:
        for nr, name, how, note in libos.table():
            print(f"{nr:>4}  {name:<24} {how:<10} {note}")
    return 0


def cmd_stats(a: argparse.Namespace) -> int:
    from . import libos
    from .container import Runtime
    from .state import Status

    st = Runtime(STATE_ROOT).store.load(a.id)
    fd = libos.container_stats_fd(st.pid) if st.live_status() != Status.STOPPED else -1
    if fd < 0:
        raise XcError(f"container {a.id!r}: no X-LibOS statistics (not running, or running without the LibOS)")
    try:
        data = libos.read_stats(fd)
    finally:
        os.close(fd)
    print(json.dumps(data, indent=2) if a.json else libos.format_stats(data, top=a.top))
    return 0


def cmd_abom(a: argparse.Namespace) -> int:
    from .abom import cmd_abom as abom

    return abom(a)


def cmd_bench(a: argparse.Namespace) -> int:
    from .benchharness import cmd_bench as bench

    return bench(a)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; the arguments of `abom` and `bench` only when
    *command* is one of them (or None): their modules take longer to import
    than the rest of a short `xc run`."""
    p = argparse.ArgumentParser(prog="xc", description="xcontainers: run X-Containers")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    r = sub.add_parser("run", help="run a command in a new container")
    r.add_argument("--rm", action="store_true", help="remove the container when it exits")
    r.add_argument("-i", "--interactive", action="store_true")
    r.add_argument("-t", "--tty", action="store_true")
    r.add_argument("-d", "--detach", action="store_true")
    r.add_argument("--name")
    r.add_argument("--hostname")
    r.add_argument("-e", "--env", action="append", default=[])
    r.add_argument("-m", "--memory")
    r.add_argument("--pids-limit", type=int)
    r.add_argument("--stats", action="store_true", help="print what the X-LibOS did when the container exits")
    r.add_argument("--no-libos", action="store_true", help="a plain container, without the X-LibOS")
    r.add_argument("--no-abom", action="store_true", help="the X-LibOS without ABOM: every call traps")
    r.add_argument("--trace", action="store_true",
                   help="the X-LibOS writes a line per system call and per ABOM verdict to stderr")
    r.add_argument("--libos", action="append", default=[], metavar="KEY=VALUE",
                   help="a LibOS profile setting (annotation org.xcontainers.libos.KEY), e.g. "
                        "syscalls=ptrace=refuse:EPERM or uname.release=5.10.0")
    r.add_argument("--entrypoint", help="the program to run instead of the image's Entrypoint "
                   "(\"\" for none); the image's Cmd is then dropped")
    r.add_argument("--network", metavar="MODE",
                   help="as root: bridge (the default: an address on the xc0 bridge, NAT out), none "
                        "(only lo) or host (the host's network); rootless: slirp4netns (the default), "
                        "pasta, none or host")
    r.add_argument("-p", "--publish", action="append", default=[], metavar="[HOSTIP:]HOSTPORT:PORT[/PROTO]",
                   help="publish a container port on the host (bridge, slirp4netns or pasta; repeatable)")
    r.add_argument("image", nargs="?", default="busybox")
    r.add_argument("command", nargs=argparse.REMAINDER)
    r.set_defaults(fn=cmd_run)
    sub.add_parser("ps", help="list containers").set_defaults(fn=cmd_ps)
    e = sub.add_parser("exec", help="run a command in a running container")
    e.add_argument("-t", "--tty", action="store_true")
    e.add_argument("-i", "--interactive", action="store_true")
    e.add_argument("-e", "--env", action="append", default=[])
    e.add_argument("id")
    e.add_argument("command", nargs=argparse.REMAINDER)
    e.set_defaults(fn=cmd_exec)
    s = sub.add_parser("stop", help="stop a container (SIGTERM, then SIGKILL)")
    s.add_argument("-t", "--time", type=float, default=10.0)
    s.add_argument("id")
    s.set_defaults(fn=cmd_stop)
    rm = sub.add_parser("rm", help="remove a container")
    rm.add_argument("-f", "--force", action="store_true")
    rm.add_argument("id")
    rm.set_defaults(fn=cmd_rm)
    from .image_cli import add_commands as image_commands
    image_commands(sub)
    nw = sub.add_parser("network", help="containers' networks: list them, or prune what no container uses")
    nw.add_argument("what", choices=("ls", "prune"))
    nw.add_argument("--json", action="store_true")
    nw.set_defaults(fn=cmd_network)
    st = sub.add_parser("stats", help="what the X-LibOS of a running container did so far")
    st.add_argument("id")
    st.add_argument("--json", action="store_true")
    st.add_argument("--top", type=int, default=8, help="how many of the most frequent calls to name")
    st.set_defaults(fn=cmd_stats)
    ab = sub.add_parser("abom", help="the offline ABOM analyzer: scan and pre-patch binaries")
    if command in (None, "abom"):
        from .abom import add_arguments as abom_arguments

        abom_arguments(ab)
    ab.set_defaults(fn=cmd_abom)
    lo = sub.add_parser("libos", help="the X-LibOS: its host interface and its system call table")
    lo.add_argument("what", choices=("interface", "table"))
    lo.add_argument("--json", action="store_true")
    lo.add_argument("--markdown", action="store_true")
    lo.set_defaults(fn=cmd_libos)
    b = sub.add_parser("bench", help="benchmarks: every experiment on every runtime, into a results folder")
    if command in (None, "bench"):
        from .benchharness import add_arguments as bench_arguments

        bench_arguments(b)
    b.set_defaults(fn=cmd_bench)
    return p


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    p = build_parser(next((x for x in args if not x.startswith("-")), ""))
    a = p.parse_args(args)
    if not getattr(a, "fn", None):
        p.print_help()
        sys.exit(0)
    try:
        if os.geteuid() != 0:
            _rootless_defaults(a.cmd)
        code = a.fn(a)
    except XcError as e:
        sys.stderr.write(f"xc: {e}\n")
        code = 1
    except OSError as e:
        sys.stderr.write(f"xc: {e.strerror or e}" + (f": {e.filename}" if e.filename else "") + "\n")
        code = 1
    sys.exit(code)
