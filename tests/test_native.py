"""xc-runtime's native path (src/native/runtime/) against its Python runtime.

The entry point does run/create/start/state/kill/delete itself for configs
it fully supports and hands everything else to the Python runtime; with
``--debug`` it says which ("native path: VERB ID" or "python path: WHY").
These tests check that decision for typical configs, that a container made
by one path is handled by the other (same state.json, cgroup record and
exec.fifo protocol), that both paths leave the same state and print the same
`state`, and that bad input gives the same one-line error on both and leaves
nothing behind.  Everything else is the rest of the suite, run on the native
path by default and on the Python path with ``--xc-path=python``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import XC_RUNTIME, Bundle, RuntimeUnderTest, need_root, snapshot_host

pytestmark = pytest.mark.root

NATIVE = Path(XC_RUNTIME or "").name == "xc-runtime" and Path(XC_RUNTIME or "").parent.name == "xcontainers"


@pytest.fixture
def xr(tmp_path: Path) -> "Paths":
    need_root()
    if not NATIVE:
        pytest.skip("the native entry point is not built (src/xcontainers/xc-runtime)")
    return Paths(str(tmp_path / "state"))


class Paths:
    """The one entry point, driven on either path (XC_RUNTIME_NATIVE)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def cmd(self, *args: str, path: str = "native", timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ)
        env.pop("XC_RUNTIME_NATIVE", None)
        if path == "python":
            env["XC_RUNTIME_NATIVE"] = "0"
        return subprocess.run([XC_RUNTIME, "--root", self.root, "--debug", *args], capture_output=True, text=True,
                              timeout=timeout, env=env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def detached(self, *args: str, path: str = "native", check: bool = True) -> str:
        """A command that may leave a container behind (its stdio must not be
        our pipes); its stderr."""
        import tempfile

        env = dict(os.environ)
        env.pop("XC_RUNTIME_NATIVE", None)
        if path == "python":
            env["XC_RUNTIME_NATIVE"] = "0"
        with tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([XC_RUNTIME, "--root", self.root, "--debug", *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, env=env, timeout=60)
            err.seek(0)
            text = err.read()
        assert p.returncode == 0 or not check, text
        return text

    def state_file(self, cid: str) -> dict[str, Any]:
        return json.loads(Path(self.root, cid, "state.json").read_text())


def handled(err: str) -> str:
    """Which path took the command, from its --debug lines."""
    if "debug: native path:" in err and "debug: python path:" not in err:
        return "native"
    if "debug: python path:" in err:
        return "python"
    return "?"


# --- which path handles what ----------------------------------------------------------


def _plain(b: Bundle) -> None:
    pass


def _hooks(b: Bundle) -> None:
    b.config["hooks"] = {"prestart": [{"path": "/bin/true"}]}


def _terminal(b: Bundle) -> None:
    b.process["terminal"] = True


def _userns(b: Bundle) -> None:
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.linux["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]


def _seccomp(b: Bundle) -> None:
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW"}


def _tmpcopyup(b: Bundle) -> None:
    b.config["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]})


def _profile(b: Bundle) -> None:
    b.config["annotations"] = {"org.xcontainers.libos.syscalls": "getpid=forward"}


def _unknown_field(b: Bundle) -> None:
    b.process["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 4}


def _libos_off(b: Bundle) -> None:
    b.config["annotations"] = {"org.xcontainers.libos": "off"}


def _abom_off(b: Bundle) -> None:
    b.config["annotations"] = {"org.xcontainers.libos.abom": "off"}


def _limits(b: Bundle) -> None:
    b.linux["resources"].update(pids={"limit": 50}, memory={"limit": 64 << 20, "swap": 64 << 20},
                                cpu={"shares": 512, "quota": 50000, "period": 100000})


def _blkio(b: Bundle) -> None:
    b.linux["resources"]["blockIO"] = {"weight": 100}


@pytest.mark.parametrize("edit, want", [
    (_plain, "native"),
    (_libos_off, "native"),
    (_abom_off, "native"),
    (_limits, "native"),
    (_hooks, "python"),
    (_terminal, "python"),
    (_userns, "python"),
    (_seccomp, "python"),
    (_tmpcopyup, "python"),
    (_profile, "python"),
    (_unknown_field, "python"),
    (_blkio, "python"),
], ids=lambda v: v.__name__.strip("_") if callable(v) else v)
def test_which_path_creates(xr: Paths, make_bundle, edit, want: str) -> None:
    b = make_bundle(["true"])
    edit(b)
    b.write()
    cid = f"native-which-{want}"
    err = xr.detached("create", "--bundle", str(b.path), cid, check=False)
    try:
        assert handled(err) == want, err
    finally:
        xr.cmd("delete", "--force", cid)
    assert not os.path.exists(os.path.join(xr.root, cid))


def test_joining_a_namespace(xr: Paths, make_bundle) -> None:
    """A network namespace given by path: joined by a setup process, natively."""
    holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    try:
        path = f"/proc/{holder.pid}/ns/net"
        for _ in range(100):
            if os.path.exists(path) and os.stat(path).st_ino != os.stat("/proc/self/ns/net").st_ino:
                break
            time.sleep(0.01)
        want = os.stat(path).st_ino
        b = make_bundle(["sh", "-c", "stat -L -c %i /proc/self/ns/net"])
        b.linux["namespaces"] = [n if n["type"] != "network" else {"type": "network", "path": path}
                                 for n in b.linux["namespaces"]]
        b.write()
        for p in ("native", "python"):
            r = xr.cmd("run", "--bundle", str(b.path), f"native-join-{p}", path=p)
            assert (r.returncode, r.stdout) == (0, f"{want}\n"), r.stderr
            assert handled(r.stderr) == p, r.stderr
    finally:
        holder.kill()
        holder.wait()


def test_commands_it_does_not_implement_go_to_python(xr: Paths) -> None:
    for args in (["list"], ["--help"], ["features"], ["spec", "--bundle", "/nonexistent"],
                 ["--root=x", "--bogus", "state", "x"], ["state", "--bogus", "x"]):
        r = xr.cmd(*args)
        assert handled(r.stderr) == "python", (args, r.stderr)
    r = xr.cmd("state", "native-nope")
    assert handled(r.stderr) == "python" and "does not exist" in r.stderr


def test_xc_runtime_native_0_forces_python(xr: Paths, make_bundle) -> None:
    b = make_bundle(["true"])
    r = xr.cmd("run", "--bundle", str(b.path), "native-forced", path="python")
    assert r.returncode == 0, r.stderr
    assert "python path: XC_RUNTIME_NATIVE=0" in r.stderr


# --- one state, two paths -------------------------------------------------------------------


@pytest.mark.parametrize("maker, user", [("native", "python"), ("python", "native")])
def test_cross_path_lifecycle(xr: Paths, make_bundle, maker: str, user: str) -> None:
    """A container made by one path, driven through its life by the other."""
    b = make_bundle(["sleep", "1000"])
    cid = f"native-cross-{maker}"
    pidfile = b.path / "pid"
    err = xr.detached("create", "--bundle", str(b.path), "--pid-file", str(pidfile), cid, path=maker)
    assert handled(err) == maker, err
    try:
        st = json.loads(xr.cmd("state", cid, path=user).stdout)
        assert st["status"] == "created" and st["pid"] == int(pidfile.read_text())
        r = xr.cmd("start", cid, path=user)
        assert r.returncode == 0 and handled(r.stderr) == user, r.stderr
        assert json.loads(xr.cmd("state", cid, path=maker).stdout)["status"] == "running"
        assert Path(f"/proc/{st['pid']}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        # what only Python does, on a natively made container, and back
        r = xr.cmd("exec", cid, "sh", "-c", "echo in-$(hostname)", path=user)
        assert (r.returncode, r.stdout) == (0, "in-xctest\n"), r.stderr
        assert json.loads(xr.cmd("ps", "--format", "json", cid).stdout) == [st["pid"]]
        assert xr.cmd("pause", cid).returncode == 0
        assert json.loads(xr.cmd("state", cid, path=maker).stdout)["status"] == "paused"
        assert xr.cmd("resume", cid).returncode == 0
        r = xr.cmd("kill", cid, "KILL", path=user)
        assert r.returncode == 0 and handled(r.stderr) == user, r.stderr
        for _ in range(100):
            if json.loads(xr.cmd("state", cid, path=maker).stdout)["status"] == "stopped":
                break
            time.sleep(0.05)
        r = xr.cmd("delete", cid, path=user)
        assert r.returncode == 0 and handled(r.stderr) == user, r.stderr
        assert not os.path.exists(os.path.join(xr.root, cid))
    finally:
        xr.cmd("delete", "--force", cid)


def test_both_paths_write_the_same_state(xr: Paths, make_bundle) -> None:
    b = make_bundle(["sleep", "1000"])
    b.config["annotations"] = {"org.example": "é ünïcode \u2603 \U0001f600", "org.xcontainers.libos.abom": "off"}
    b.process["env"].append('QUOTE="\\back\\slash"')
    b.linux["resources"]["pids"] = {"limit": 30}
    b.write()
    states, outs, parents = {}, {}, {}
    try:
        for path in ("native", "python"):
            cid = f"native-same-{path}"
            err = xr.detached("create", "--bundle", str(b.path), cid, path=path)
            assert handled(err) == path, err
            states[path] = xr.state_file(cid)
            outs[path] = xr.cmd("state", cid, path=path).stdout
            status = Path(f"/proc/{states[path]['pid']}/status").read_text()
            parents[path] = re.search(r"^PPid:\s*(\d+)", status, re.M).group(1)
        # the init's parent: not the runtime (gone), the same subreaper as under Python
        assert parents["native"] == parents["python"], parents
        n, p = states["native"], states["python"]
        assert list(n) == list(p)
        for k in ("bundle", "status", "rootfs", "annotations", "config", "owner"):
            assert n[k] == p[k], k
        assert n["cgroup"]["path"] == "/native-same-native" and p["cgroup"]["path"] == "/native-same-python"
        assert json.loads(json.dumps(n["cgroup"]).replace("native-same-native", "X")) == \
            json.loads(json.dumps(p["cgroup"]).replace("native-same-python", "X"))
        # `state` as both print it: the same bytes but for id, pid and time
        norm = [re.sub(r'("created": |"pid": )\S+', r"\1X", o).replace("native-same-native", "I")
                .replace("native-same-python", "I") for o in (outs["native"], outs["python"])]
        assert norm[0] == norm[1]
        assert "\\u00e9" in outs["native"] and "\\ud83d\\ude00" in outs["native"]
    finally:
        for path in ("native", "python"):
            xr.cmd("delete", "--force", f"native-same-{path}")


# --- the run command ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["native", "python"])
def test_foreground_run_forwards_signals(xr: Paths, make_bundle, path: str) -> None:
    b = make_bundle(["sh", "-c", "trap 'echo got-term; exit 7' TERM; echo up; while :; do sleep 0.05; done"])
    env = dict(os.environ)
    env.pop("XC_RUNTIME_NATIVE", None)
    if path == "python":
        env["XC_RUNTIME_NATIVE"] = "0"
    p = subprocess.Popen([XC_RUNTIME, "--root", xr.root, "run", "--bundle", str(b.path), f"native-sig-{path}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env)
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == "up\n"
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        assert (p.returncode, out) == (7, "got-term\n"), err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        xr.cmd("delete", "--force", f"native-sig-{path}")
    assert not os.path.exists(os.path.join(xr.root, f"native-sig-{path}"))


def test_run_keep_preserve_fds_and_pid_file(xr: Paths, make_bundle, tmp_path: Path) -> None:
    b = make_bundle(["sh", "-c", "cat <&3"])
    src = tmp_path / "fd3"
    src.write_text("through fd 3\n")
    pidfile = tmp_path / "pid"
    script = (f'exec 3<{src}; exec {XC_RUNTIME} --root {xr.root} --debug run --keep --preserve-fds 1 '
              f'--pid-file {pidfile} --bundle {b.path} native-keep')
    env = {k: v for k, v in os.environ.items() if k != "XC_RUNTIME_NATIVE"}
    p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=60, env=env)
    try:
        assert (p.returncode, p.stdout) == (0, "through fd 3\n"), p.stderr
        assert handled(p.stderr) == "native", p.stderr
        assert pidfile.read_text().isdigit()
        st = json.loads(xr.cmd("state", "native-keep").stdout)  # --keep: still there, stopped
        assert st["status"] == "stopped" and st["pid"] == 0
    finally:
        r = xr.cmd("delete", "native-keep")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(os.path.join(xr.root, "native-keep"))


@pytest.mark.parametrize("path", ["native", "python"])
def test_preserve_fds_into_the_libos_fds_is_refused(xr: Paths, make_bundle, path: str) -> None:
    """--preserve-fds that would pass fds the X-LibOS keeps (XC_TRACE_FD..XC_LIBOS_FD): a clear
    error from either path, not a program whose passed fd was silently replaced; nothing left."""
    from xcontainers.libos_abi import XC_LIBOS_FD, XC_TRACE_FD

    b = make_bundle(["true"])
    env = {k: v for k, v in os.environ.items() if k != "XC_RUNTIME_NATIVE"}
    if path == "python":
        env["XC_RUNTIME_NATIVE"] = "0"
    n = XC_TRACE_FD - 2   # fds 3 .. XC_TRACE_FD
    p = subprocess.run([XC_RUNTIME, "--root", xr.root, "run", "--preserve-fds", str(n), "--bundle", str(b.path),
                        f"native-pfd-{path}"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                       timeout=60, env=env)
    assert p.returncode != 0
    assert f"--preserve-fds {n} passes fds up to {XC_TRACE_FD}, but fds {XC_TRACE_FD}-{XC_LIBOS_FD} are the " \
           "X-LibOS's" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(xr.root, f"native-pfd-{path}"))   # a failed run removes itself
    ok = subprocess.run([XC_RUNTIME, "--root", xr.root, "run", "--preserve-fds", str(n - 1), "--bundle", str(b.path),
                         f"native-pfd2-{path}"], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                        timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr


# --- bad input: the same error on both paths, nothing left ------------------------------------


def _bad(kind: str, b: Bundle) -> None:
    if kind == "json":
        (b.path / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
        return
    if kind == "type":
        b.process["args"] = "true"
    elif kind == "rootfs":
        b.config["root"]["path"] = str(b.path / "no-such-rootfs")
    elif kind == "mount":
        b.config["mounts"].append({"destination": "/data", "type": "bind", "source": "/no/such/dir",
                                   "options": ["bind"]})
    elif kind == "exe":
        b.process["args"] = ["no-such-program"]
    elif kind == "cwd-file":
        b.process["cwd"] = "/bin/busybox"
    elif kind == "sysctl":
        b.linux["sysctl"] = {"kernel.no_such_sysctl": "1"}
    elif kind == "rlimit":
        b.process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1 << 30, "hard": 1 << 30}]
    b.write()


@pytest.mark.parametrize("kind", ["json", "type", "rootfs", "mount", "exe", "cwd-file", "sysctl", "rlimit"])
def test_bad_input_same_error_nothing_left(xr: Paths, make_bundle, kind: str) -> None:
    b = make_bundle(["true"])
    _bad(kind, b)
    errors = {}
    for path in ("native", "python"):
        before = snapshot_host()
        cid = f"native-bad-{kind}"
        r = xr.cmd("run", "--bundle", str(b.path), cid, path=path)
        errors[path] = [line for line in r.stderr.splitlines() if "debug:" not in line]
        assert r.returncode != 0, r.stderr
        time.sleep(0.1)
        after = snapshot_host()
        # (mounts of other tests running meanwhile do not count: only those at the bundle or rootfs)
        ours = (str(b.path), str(b.config["root"]["path"]))
        assert [m for m in after["mounts"] if m.startswith(ours)] == \
            [m for m in before["mounts"] if m.startswith(ours)]
        assert [c for c in set(after["cgroups"]) - set(before["cgroups"]) if cid in c] == []
        assert not os.path.exists(os.path.join(xr.root, cid))
    assert errors["native"] == errors["python"] and len(errors["native"]) == 1, errors
    if kind in ("mount", "exe", "cwd-file", "sysctl", "rlimit"):
        # found in the container's init: undone, then done again by Python, which reports
        assert "python path: create failed natively, undone" in r_native_err(xr, b, kind)


def r_native_err(xr: Paths, b: Bundle, kind: str) -> str:
    return xr.cmd("run", "--bundle", str(b.path), f"native-bad-{kind}").stderr


def test_bad_and_duplicate_ids(xr: Paths, make_bundle) -> None:
    b = make_bundle(["sleep", "100"])
    for path in ("native", "python"):
        r = xr.cmd("create", "--bundle", str(b.path), "-bad id", path=path)
        assert r.returncode != 0
    errs = [xr.cmd("create", "--bundle", str(b.path), "../x", path=p).stderr.splitlines()[-1] for p in ("native", "python")]
    assert errs[0] == errs[1] and "invalid container id" in errs[0]
    xr.detached("create", "--bundle", str(b.path), "native-dup")
    try:
        for path in ("native", "python"):
            r = xr.cmd("create", "--bundle", str(b.path), "native-dup", path=path)
            assert r.returncode != 0 and "already exists" in r.stderr, r.stderr
        assert json.loads(xr.cmd("state", "native-dup").stdout)["status"] == "created"
    finally:
        xr.cmd("delete", "--force", "native-dup")


# --- shared constants -------------------------------------------------------------------------


def test_native_libos_constants_match_python() -> None:
    from xcontainers import libos_abi

    header = (Path(__file__).resolve().parent.parent / "src/native/runtime/libos.h").read_text()
    m = re.search(r'#define XC_IMAGE_NAME "([^"]+)"', header)
    assert m and m.group(1) == libos_abi.XC_IMAGE_NAME
    # everything else comes from src/libos/abi.h itself
    init_c = (Path(__file__).resolve().parent.parent / "src/native/runtime/init.c").read_text()
    assert '#include "abi.h"' in init_c and "XC_LIBOS_FD" in init_c and "XC_STATS_FD" in init_c
    assert not re.search(r"\bdup2\([^)]*\b12[567]\b", init_c)   # no fd number of its own


def test_state_of_a_python_state_it_cannot_read_goes_to_python(xr: Paths, make_bundle) -> None:
    """A state.json with a field the native path does not know: Python reads it."""
    b = make_bundle(["true"])
    xr.detached("create", "--bundle", str(b.path), "native-oddstate")
    try:
        p = Path(xr.root, "native-oddstate", "state.json")
        d = json.loads(p.read_text())
        d["config"]["x-float"] = 1.5
        p.write_text(json.dumps(d))
        r = xr.cmd("state", "native-oddstate")
        assert r.returncode == 0 and handled(r.stderr) == "python", r.stderr
        assert json.loads(r.stdout)["status"] == "created"
    finally:
        xr.cmd("delete", "--force", "native-oddstate")
