"""Rootless containers, run by a real unprivileged user: runc first, then xc-runtime.

The fixtures (as root) make sure the users exist (scripts/setup-rootless:
``xctest`` with a range in /etc/subuid and /etc/subgid, ``xcnosub``
without), copy the xcontainers package where the user can read it (the
venv's interpreter may live under /root) and run it with Debian's
/usr/bin/python3, and give each user an $XDG_RUNTIME_DIR and a data
directory of its own.  Every command of a test then runs as that user.

Each behaviour is checked under runc (Debian's runc, rootless) first, then
under xc-runtime with the X-LibOS (the default) and without it; bad input
must fail with a one-line error and leave nothing: no state, no process,
no mount, no cgroup.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, RUNC, build_busybox_rootfs, need_root

pytestmark = pytest.mark.root

from xcontainers.defaults import default_spec, rootless_spec  # noqa: E402

USER = "xctest"
NOSUB = "xcnosub"
PYTHON = "/usr/bin/python3"
NOLIBOS = {"org.xcontainers.libos": "off"}


@dataclass
class User:
    name: str
    uid: int
    gid: int
    run: Path   # its XDG_RUNTIME_DIR
    data: Path  # its XDG_DATA_HOME


@dataclass
class Res:
    rc: int
    out: str
    err: str


class Env:
    """A directory tree the users can read, the launchers, and a rootfs."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.bin = top / "bin"
        self.users: dict[str, User] = {}

    def user(self, name: str) -> User:
        if name not in self.users:
            import pwd

            pw = pwd.getpwnam(name)
            u = User(name, pw.pw_uid, pw.pw_gid, self.top / f"run-{name}", self.top / f"data-{name}")
            for d in (u.run, u.data):
                d.mkdir(mode=0o700)
                os.chown(d, u.uid, u.gid)
            self.users[name] = u
        return self.users[name]

    def as_user(self, user: User, *args: str, timeout: float = 60, detached: bool = False) -> Res:
        """Run *args* as *user*.  *detached*: the command leaves a container
        running, whose processes must not hold our pipes (stdout is
        dropped, stderr read from a file)."""
        env = {"PATH": f"{self.bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": f"/home/{user.name}",
               "XDG_RUNTIME_DIR": str(user.run), "XDG_DATA_HOME": str(user.data), "LANG": "C.UTF-8",
               "USER": user.name, "LOGNAME": user.name}
        kw: dict[str, Any] = dict(user=user.uid, group=user.gid, extra_groups=[], env=env, cwd=str(self.top),
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        if not detached:
            p = subprocess.run(list(args), capture_output=True, text=True, **kw)
            return Res(p.returncode, p.stdout, p.stderr)
        with tempfile.TemporaryFile() as err:
            p = subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=err, **kw)
            err.seek(0)
            return Res(p.returncode, "", err.read().decode())

    def bundle(self, user: User, args: list[str], *, writable: bool = True,
               annotations: dict[str, str] | None = None) -> tuple[Path, dict[str, Any]]:
        """A bundle owned by *user*: a private copy of the rootfs (or the
        shared read-only one), the config `runc spec --rootless` writes."""
        path = self.top / f"bundle-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        cfg = rootless_spec(default_spec(args, terminal=False, hostname="rl-host"), user.uid, user.gid)
        if writable:
            shutil.copytree(self.top / "rootfs", path / "rootfs", symlinks=True)
            cfg["root"] = {"path": "rootfs", "readonly": False}
        else:
            cfg["root"]["path"] = str(self.top / "rootfs")
        if annotations:
            cfg["annotations"] = dict(annotations)
        _chown_tree(path, user.uid, user.gid)
        self.write(path, cfg)
        return path, cfg

    @staticmethod
    def write(path: Path, cfg: dict[str, Any]) -> None:
        (path / "config.json").write_text(json.dumps(cfg, indent=1))


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        os.chown(dirpath, uid, gid)
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, gid, follow_symlinks=False)


def _rmtree(top: Path) -> None:
    # overlayfs leaves its work/work directory mode 000.  os.walk lists
    # symlinks to directories among the directories, and chmod follows
    # them: an image's `lnk -> /etc` would make the host's /etc 0700.
    for dirpath, dirnames, _ in os.walk(top):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            try:
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


@contextlib.contextmanager
def rootless_env(prefix: str, tools: tuple[str, ...] = ()) -> Iterator[Env]:
    """A directory the test users can read, holding a copy of the package and
    launchers for xc and xc-runtime run by Debian's python3; skips (naming
    why) where the users, uidmap's tools or *tools* are missing."""
    need_root()
    subprocess.run([str(ROOT / "scripts/setup-rootless")], check=True)
    for tool in ("newuidmap", "newgidmap", *tools):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make setup installs it)")
    if not os.path.exists(PYTHON):
        pytest.skip(f"{PYTHON} is missing: the user runs xcontainers with Debian's python3")
    ver = subprocess.run([PYTHON, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                         text=True).stdout.strip()
    if ver != str(sys.version_info[:2]):
        pytest.skip(f"{PYTHON} is Python {ver}, the C extension was built for {sys.version_info[:2]}")
    top = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(top, 0o755)
    try:
        lib = top / "lib"
        shutil.copytree(ROOT / "src/xcontainers", lib / "xcontainers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        e = Env(top)
        e.bin.mkdir()
        for name, module in (("xc-runtime", "runtime_cli"), ("xc", "xc_cli")):
            launcher = e.bin / name
            launcher.write_text(f"#!{PYTHON} -I\nimport sys\nsys.path.insert(0, {str(lib)!r})\n"
                                f"from xcontainers.{module} import main\nmain()\n")
            launcher.chmod(0o755)
        e.lib = lib  # type: ignore[attr-defined]
        yield e
    finally:
        _rmtree(top)


@pytest.fixture(scope="session")
def env() -> Iterator[Env]:
    with rootless_env("xc-rootless-") as e:
        top = e.top
        _TOP[:] = [str(top)]
        build_busybox_rootfs(top / "rootfs")
        u = e.user(USER)
        _chown_tree(top / "rootfs", u.uid, u.gid)
        yield e


@pytest.fixture(scope="session")
def user(env: Env) -> User:
    return env.user(USER)


def _runtime_cmd(env: Env, user: User, name: str) -> list[str]:
    if name == "runc":
        if RUNC is None:
            pytest.skip("runc is not installed")
        return [RUNC, "--root", str(user.run / "runc")]
    return [str(env.bin / "xc-runtime")]  # the default root: $XDG_RUNTIME_DIR/xc-runtime


def _run(env: Env, user: User, name: str, bundle: Path, cid: str | None = None) -> Res:
    cid = cid or f"rootless-{uuid.uuid4().hex[:8]}"
    cmd = _runtime_cmd(env, user, name)
    try:
        return env.as_user(user, *cmd, "run", "--bundle", str(bundle), cid)
    finally:
        env.as_user(user, *cmd, "delete", "--force", cid)


def _user_processes(uid: int) -> list[str]:
    """Live (not zombie) processes of *uid*, as "pid comm"."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{pid}")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if st.st_uid == uid and stat[stat.rindex(")") + 2] not in "ZX":
            out.append(f"{pid} {stat[stat.index('(') + 1:stat.rindex(')')]}")
    return out


def _wait_no_processes(uid: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = _user_processes(uid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


_TOP: list[str] = []  # the Env's directory, where every rootfs and bundle of these tests lives


def _mounts() -> list[str]:
    """The host's mounts at or below the tests' directory (other engineers'
    containers come and go elsewhere on this machine)."""
    with open("/proc/self/mountinfo") as f:
        return sorted(m for m in (line.split()[4] for line in f) if any(m.startswith(t) for t in _TOP))


# --- xc-runtime spec --rootless ------------------------------------------------------


def test_spec_rootless_is_runcs(env, user):
    docs = {}
    for name in ("runc", "xc"):
        d = env.top / f"spec-{name}-{uuid.uuid4().hex[:6]}"
        d.mkdir()
        os.chown(d, user.uid, user.gid)
        cmd = _runtime_cmd(env, user, name)
        r = env.as_user(user, *cmd, "spec", "--rootless", "--bundle", str(d))
        assert r.rc == 0, r.err
        docs[name] = json.loads((d / "config.json").read_text())
    for doc in docs.values():
        doc.pop("ociVersion")
        doc.pop("hostname")
    assert docs["xc"] == docs["runc"]
    lx = docs["xc"]["linux"]
    assert lx["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert {"type": "network"} not in lx["namespaces"] and {"type": "user"} in lx["namespaces"]


# --- run: runc first, then xc-runtime with and without the LibOS -----------------------

_PROBE = ("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; hostname; echo written > /tmp/w; "
          "ls -n /tmp/w | cut -c1-20; grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; "
          "grep -c ' /sys ' /proc/self/mountinfo; exit 3")


def test_run_differential(env, user):
    results = {}
    for name, ann in (("runc", None), ("xc", None), ("xc-nolibos", NOLIBOS)):
        bundle, _ = env.bundle(user, ["sh", "-c", _PROBE], annotations=ann)
        r = _run(env, user, "runc" if name == "runc" else "xc", bundle)
        results[name] = r
        assert r.rc == 3, f"{name}: {r.err}"
        w = bundle / "rootfs/tmp/w"
        assert (w.stat().st_uid, w.stat().st_gid) == (user.uid, user.gid), name
        assert w.read_text() == "written\n"
    ref = results["runc"].out
    lines = ref.split("\n")
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(user.uid), "1"]
    assert lines[4] == "rl-host"
    for name in ("xc", "xc-nolibos"):
        assert results[name].out == ref, f"runc and {name} disagree:\n{ref}\n---\n{results[name].out}"
    assert not _wait_no_processes(user.uid)


def test_subuid_range_differential(env, user):
    """0 is the user; 1-65536 its range in /etc/subuid: newuidmap writes the maps."""
    from xcontainers.rootless import subid_ranges

    start, _ = subid_ranges("/etc/subuid", user.uid, user.name)[0]
    gstart, _ = subid_ranges("/etc/subgid", user.uid, user.name)[0]
    outs = {}
    for name, ann in (("runc", None), ("xc", None), ("xc-nolibos", NOLIBOS)):
        bundle, cfg = env.bundle(user, ["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; "
                                                    "touch /tmp/f; chown 1000:2000 /tmp/f; ls -n /tmp/f | cut -c1-30; "
                                                    "id"], annotations=ann)
        lx = cfg["linux"]
        lx["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                             {"containerID": 1, "hostID": start, "size": 65536}]
        lx["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1},
                             {"containerID": 1, "hostID": gstart, "size": 65536}]
        cfg["process"]["capabilities"] = {k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}
        env.write(bundle, cfg)
        r = _run(env, user, "runc" if name == "runc" else "xc", bundle)
        assert r.rc == 0, f"{name}: {r.err}"
        f = bundle / "rootfs/tmp/f"
        assert (f.stat().st_uid, f.stat().st_gid) == (start + 999, gstart + 1999), name
        outs[name] = r.out
    assert outs["runc"].split()[:6] == ["0", str(user.uid), "1", "1", str(start), "65536"]
    assert outs["xc"] == outs["runc"] and outs["xc-nolibos"] == outs["runc"]
    # Supplementary groups: runc refuses any in a rootless container; with a
    # gid range written by newgidmap (setgroups allowed) xc-runtime sets
    # them, as crun does; with only the user's own gid it refuses them.
    bundle, cfg = env.bundle(user, ["id", "-G"], writable=False)
    cfg["process"]["user"]["additionalGids"] = [5]
    env.write(bundle, cfg)
    r = _run(env, user, "xc", bundle)
    assert r.rc == 1 and "process.user.additionalGids" in r.err and "/etc/subgid" in r.err, r.err
    cfg["linux"]["gidMappings"].append({"containerID": 1, "hostID": gstart, "size": 65536})
    env.write(bundle, cfg)
    r = _run(env, user, "xc", bundle)
    assert (r.rc, r.out) == (0, "0 5\n"), r.err


def test_lifecycle(env, user):
    xc = [str(env.bin / "xc-runtime")]
    bundle, _ = env.bundle(user, ["sleep", "1000"], writable=False)
    cid = f"rootless-life-{uuid.uuid4().hex[:6]}"
    try:
        r = env.as_user(user, *xc, "create", "--bundle", str(bundle), cid, detached=True)
        assert r.rc == 0, r.err
        assert (user.run / "xc-runtime" / cid).is_dir(), "the state is under $XDG_RUNTIME_DIR/xc-runtime"
        st = json.loads(env.as_user(user, *xc, "state", cid).out)
        assert (st["status"], st["owner"]) == ("created", USER)
        assert env.as_user(user, *xc, "start", cid).rc == 0
        r = env.as_user(user, *xc, "exec", "--detach", cid, "sleep", "999", detached=True)
        assert r.rc == 0, r.err
        pids = json.loads(env.as_user(user, *xc, "ps", "--format", "json", cid).out)
        assert len(pids) == 2 and st["pid"] in pids
        r = env.as_user(user, *xc, "exec", cid, "sh", "-c", "id -u; ps -o comm | sort | uniq -c | grep sleep")
        assert r.rc == 0 and r.out.split()[:3] == ["0", "2", "sleep"], r.out + r.err
        r = env.as_user(user, *xc, "pause", cid)
        assert r.rc == 1 and "no cgroup of its own" in r.err and r.err.count("\n") == 1, r.err
        assert env.as_user(user, *xc, "kill", "--all", cid, "KILL").rc == 0
        deadline = time.monotonic() + 10
        while json.loads(env.as_user(user, *xc, "state", cid).out)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert env.as_user(user, *xc, "delete", cid).rc == 0
        assert not (user.run / "xc-runtime" / cid).exists()
        assert not _wait_no_processes(user.uid)
    finally:
        env.as_user(user, *xc, "delete", "--force", cid)


# --- refused, and nothing left behind ----------------------------------------------------


def _leaves_nothing(env: Env, u: User, before_mounts: list[str]) -> None:
    states = u.run / "xc-runtime"
    assert not states.exists() or not any(states.iterdir()), list(states.iterdir())
    assert not _wait_no_processes(u.uid)
    assert _mounts() == before_mounts


def test_missing_subuid_range(env):
    """A user without a range in /etc/subuid: one line naming the user and
    the file, and no state directory, process or mount left."""
    u = env.user(NOSUB)
    bundle, cfg = env.bundle(u, ["true"], writable=False)
    cfg["linux"]["uidMappings"].append({"containerID": 1, "hostID": 100000, "size": 65536})
    cfg["linux"]["gidMappings"].append({"containerID": 1, "hostID": 100000, "size": 65536})
    env.write(bundle, cfg)
    ref = _run(env, u, "runc", bundle)
    assert ref.rc != 0  # runc fails too (newuidmap refuses)
    before = _mounts()
    r = env.as_user(u, str(env.bin / "xc-runtime"), "run", "--bundle", str(bundle), "rootless-nosub")
    assert r.rc == 1
    assert r.err.count("\n") == 1, r.err
    assert NOSUB in r.err and "/etc/subuid" in r.err and "linux.uidMappings" in r.err, r.err
    assert not (u.run / "xc-runtime" / "rootless-nosub").exists()
    _leaves_nothing(env, u, before)


def test_unmapped_process_user_refused(env, user):
    bundle, cfg = env.bundle(user, ["true"], writable=False)
    cfg["process"]["user"]["uid"] = 1000
    env.write(bundle, cfg)
    before = _mounts()
    r = _run(env, user, "xc", bundle)
    assert r.rc == 1 and "process.user.uid: 1000 is not mapped" in r.err, r.err
    _leaves_nothing(env, user, before)


@pytest.mark.parametrize("limit", ["memory", "pids"])
def test_limits_without_delegation_refused(env, user, limit):
    """No cgroup is delegated to the user on this host: a limit is an error
    that says so (runc fails too), and no cgroup, state or process is left."""
    bundle, cfg = env.bundle(user, ["true"], writable=False)
    cfg["linux"]["resources"] = {"memory": {"limit": 64 << 20}} if limit == "memory" else {"pids": {"limit": 10}}
    env.write(bundle, cfg)
    ref = _run(env, user, "runc", bundle)
    assert ref.rc != 0, "runc set a limit rootless: this host delegates cgroups; the test needs updating"
    before = _mounts()
    cid = f"rootless-lim-{limit}"
    r = env.as_user(user, str(env.bin / "xc-runtime"), "run", "--bundle", str(bundle), cid)
    assert r.rc == 1 and f"linux.resources.{limit}.limit" in r.err and "cgroup" in r.err, r.err
    assert r.err.count("\n") == 1, r.err
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", f"/sys/fs/cgroup/{limit}"):
        assert not os.path.exists(f"{base}/xc-runtime/{cid}")
    _leaves_nothing(env, user, before)


# --- what a user namespace cannot mount ----------------------------------------------


def test_sysfs_without_netns_bound_from_host(env, user):
    """A read-only sysfs in a user namespace without a network namespace of
    its own: bound from the host, as crun does (Debian's runc 1.1 refuses)."""
    for ann in (None, NOLIBOS):
        bundle, cfg = env.bundle(user, ["sh", "-c", "awk '$5 == \"/sys\"' /proc/self/mountinfo; "
                                                    "touch /sys/x 2>&1 | grep -c Read-only"],
                                 writable=False, annotations=ann)
        for m in cfg["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])
        env.write(bundle, cfg)
        r = _run(env, user, "xc", bundle)
        assert r.rc == 0, r.err
        line, ro = r.out.splitlines()
        opts, fstype = line.split()[5], line.split(" - ")[1].split()[0]
        assert fstype == "sysfs" and opts.startswith("ro,") and ro == "1", r.out


def test_devices_are_bound(env, user):
    bundle, _ = env.bundle(user, ["sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c; "
                                              "ls -l /dev/null | cut -c1"], writable=False)
    outs = {name: _run(env, user, name, bundle) for name in ("runc", "xc")}
    assert outs["runc"].rc == 0 and outs["runc"].out.split() == ["4", "c"]
    assert (outs["xc"].rc, outs["xc"].out) == (outs["runc"].rc, outs["runc"].out), outs["xc"].err


# --- an overlay root made in the container's user namespace ---------------------------


@pytest.mark.parametrize("driver", ["kernel", "fuse"])
def test_overlay_rootfs(env, user, driver):
    if driver == "fuse" and shutil.which("fuse-overlayfs") is None:
        pytest.skip("fuse-overlayfs is not installed (make setup installs it)")
    if driver == "fuse" and not os.access("/dev/fuse", os.F_OK):
        pytest.skip("no /dev/fuse on this host")
    lower = env.top / "rootfs"
    bundle, cfg = env.bundle(
        user, ["sh", "-c", "awk '$5 == \"/\"' /proc/self/mountinfo | sed 's/.* - //' | cut -d' ' -f1; "
                           "echo new > /new; rm /etc/passwd; ls /etc; cat /new"], writable=False)
    for d in ("rootfs", "upper", "work"):
        (bundle / d).mkdir()
        os.chown(bundle / d, user.uid, user.gid)
    cfg["root"] = {"path": "rootfs", "readonly": False}
    cfg["annotations"] = {"org.xcontainers.rootfs.overlay": f"lowerdir={lower},upperdir=upper,workdir=work",
                          "org.xcontainers.rootfs.overlay.driver": driver}
    env.write(bundle, cfg)
    before = _mounts()
    r = _run(env, user, "xc", bundle)
    assert r.rc == 0, r.err
    fstype, *rest = r.out.split()
    assert fstype == ("overlay" if driver == "kernel" else "fuse.fuse-overlayfs")
    assert rest == ["group", "new"]
    assert (bundle / "upper/new").read_text() == "new\n"
    assert (lower / "etc/passwd").exists(), "the lower layer was written"
    assert not any((bundle / "rootfs").iterdir())
    _leaves_nothing(env, user, before)


# --- xc run ------------------------------------------------------------------------------


def test_xc_run(env, user):
    xc = str(env.bin / "xc")
    r = env.as_user(user, xc, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
                    "id -u; cat /proc/self/uid_map; ip -o link | cut -d' ' -f2,3; exit 7")
    assert r.rc == 7, r.err
    lines = r.out.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(user.uid), "1"]
    assert lines[2].split()[0] == "1", "the user's range in /etc/subuid maps container ids 1 and up"
    assert lines[3] == "lo: <LOOPBACK,UP,LOWER_UP>"
    assert (user.data / "xcontainers/images/busybox/rootfs/bin/busybox").exists()
    assert not any((user.data / "xcontainers/containers").iterdir())
    assert not any((user.run / "xc").iterdir())
    r = env.as_user(user, xc, "run", "--rm", "--no-libos", "busybox", "sh", "-c", "echo $((6 * 7))")
    assert (r.rc, r.out) == (0, "42\n"), r.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("mode", ["slirp4netns", "pasta"])
def test_xc_run_network(env, user, mode):
    """A port published from a rootless container's own network namespace:
    the host connects to 127.0.0.1:PORT, the container answers."""
    if shutil.which(mode) is None:
        pytest.skip(f"{mode} is not installed (make setup installs it)")
    xc = str(env.bin / "xc")
    name = f"rl-net-{mode[:5]}-{uuid.uuid4().hex[:6]}"
    port = _free_port()
    r = env.as_user(user, xc, "run", "-d", "--name", name, "--network", mode, "-p", f"{port}:80", "busybox",
                    "sh", "-c", "echo hello-$(hostname) | nc -l -p 80", detached=True)
    try:
        assert r.rc == 0, r.err
        data = b""
        deadline = time.monotonic() + 10
        while not data and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                    data = s.recv(100)
            except OSError:
                time.sleep(0.1)
        assert data == f"hello-{name[:12]}\n".encode()
    finally:
        env.as_user(user, xc, "rm", "-f", name)
    helpers = [p for p in _wait_no_processes(user.uid) if mode[:5] in p or "passt" in p]
    assert not helpers, f"{mode} outlived its container: {helpers}"
    assert not any((user.run / "xc").iterdir())


def test_xc_run_bad_network_mode(env, user):
    r = env.as_user(user, str(env.bin / "xc"), "run", "--rm", "--network", "bridgeX", "busybox", "true")
    assert r.rc == 1 and "--network 'bridgeX'" in r.err and r.err.count("\n") == 1, r.err
    assert not any((user.data / "xcontainers/containers").iterdir())


# --- a delegated cgroup v2 subtree -------------------------------------------------------

_DELEGATED = r'''
import json, os, subprocess, sys
top, cg, uid, gid, runtime, bundle, run, data = sys.argv[1:]
uid, gid = int(uid), int(gid)
env = {"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": run, "XDG_DATA_HOME": data, "HOME": "/"}
out = {}
# Not delegated: the user's session is in a cgroup of root's.
p = subprocess.run([runtime, "run", "--bundle", bundle, "deleg-none"], user=uid, group=gid, extra_groups=[],
                   env=env, capture_output=True, text=True, timeout=60)
out["deleg-none"] = [p.returncode, p.stdout, p.stderr]
os.mkdir(cg)
for f in ("", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"):
    os.chown(os.path.join(cg, f), uid, gid)
# The user's session lives in the delegated cgroup, as under systemd.
with open(os.path.join(cg, "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
for cid in ("deleg-a", "deleg-b"):
    p = subprocess.run([runtime, "run", "--bundle", bundle + ("-limit" if cid == "deleg-b" else ""), cid],
                       user=uid, group=gid, extra_groups=[], env=env, capture_output=True,
                       text=True, timeout=60)
    out[cid] = [p.returncode, p.stdout, p.stderr]
out["left"] = sorted(os.listdir(cg))
print(json.dumps(out))
'''


def test_delegated_cgroup_v2(env, user):
    """On a cgroup v2 host (the hybrid host's cgroup2 tree bound over
    /sys/fs/cgroup, in a private mount namespace): without delegation the
    container runs in the caller's cgroup; for a user whose session lives in
    a cgroup delegated to it, the container gets a cgroup of its own below
    it, removed at delete."""
    if not os.path.ismount("/sys/fs/cgroup/unified"):
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified on this host")
    bundle, cfg = env.bundle(user, ["cat", "/proc/self/cgroup"], writable=False)
    limited = Path(str(bundle) + "-limit")
    limited.mkdir()
    cfg["linux"]["resources"] = {"pids": {"limit": 10}}
    env.write(limited, cfg)
    _chown_tree(limited, user.uid, user.gid)
    name = f"xc-deleg-{uuid.uuid4().hex[:6]}"
    script = env.top / "delegated.py"
    script.write_text(_DELEGATED)
    try:
        p = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             "mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && exec \"$@\"", "sh", PYTHON, str(script),
             str(env.top), f"/sys/fs/cgroup/{name}", str(user.uid), str(user.gid), str(env.bin / "xc-runtime"),
             str(bundle), str(user.run), str(user.data)],
            capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        rc, text, err = out["deleg-none"]
        assert rc == 0 and "0::/" in text.splitlines(), err  # no cgroup of its own, no error
        rc, text, err = out["deleg-a"]
        assert rc == 0, err
        assert f"0::/{name}/xc-runtime-deleg-a" in text.splitlines(), text
        rc, _, err = out["deleg-b"]
        # This host's cgroup2 tree carries no controllers: the limit is refused, clearly.
        assert rc == 1 and "linux.resources.pids.limit" in err, err
        assert not [d for d in out["left"] if d.startswith("xc-runtime-")], out["left"]
    finally:
        d = f"/sys/fs/cgroup/unified/{name}"
        if os.path.isdir(d):
            for sub in os.listdir(d):
                if os.path.isdir(os.path.join(d, sub)):
                    os.rmdir(os.path.join(d, sub))
            os.rmdir(d)
