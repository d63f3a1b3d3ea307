"""Lifecycle, state, bad input and leaks: runc first, then xc-runtime."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from conftest import RuntimeUnderTest, snapshot_host

pytestmark = pytest.mark.root


def _wait_status(rt: RuntimeUnderTest, cid: str, want: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rt.state(cid)["status"] == want:
            return
        time.sleep(0.02)
    assert rt.state(cid)["status"] == want


def test_lifecycle_and_state_json(rt, make_bundle):
    b = make_bundle(["sleep", "1000"])
    b.config["annotations"] = {"org.example.key": "value"}
    b.write()
    cid = f"life-{rt.name}"
    pidfile = b.path / "pid"
    rt.detached("create", "--bundle", str(b.path), "--pid-file", str(pidfile), cid)
    try:
        st = rt.state(cid)
        assert st["status"] == "created"
        assert st["id"] == cid
        assert st["bundle"] == str(b.path)
        assert st["annotations"] == {"org.example.key": "value"}
        assert st["pid"] == int(pidfile.read_text())
        assert set(st) >= {"ociVersion", "id", "pid", "status", "bundle", "created", "owner", "rootfs"}
        # The init is waiting, not yet running the program.
        assert Path(f"/proc/{st['pid']}/cmdline").read_bytes().split(b"\0")[0] != b"sleep"
        r = rt.cmd("delete", cid)  # allowed on a created container? runc: yes.
        assert r.rc == 0, r.err
        assert rt.cmd("state", cid).rc != 0
        rt.detached("create", "--bundle", str(b.path), cid)
        rt.cmd("start", cid, check=True)
        _wait_status(rt, cid, "running")
        st = rt.state(cid)
        assert Path(f"/proc/{st['pid']}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
        # Lifecycle errors.
        assert rt.cmd("start", cid).rc != 0
        r = rt.cmd("delete", cid)
        assert r.rc != 0 and "running" in (r.err + r.out).lower()
        listed = json.loads(rt.cmd("list", "--format", "json", check=True).out)
        assert [c["id"] for c in listed] == [cid]
        assert cid in rt.cmd("list", check=True).out
        rt.cmd("pause", cid, check=True)
        assert rt.state(cid)["status"] == "paused"
        state_line = Path(f"/proc/{st['pid']}/status").read_text()
        assert "State:\tD" in state_line or "State:\tS" in state_line
        rt.cmd("resume", cid, check=True)
        assert rt.state(cid)["status"] == "running"
        ps = json.loads(rt.cmd("ps", "--format", "json", cid, check=True).out)
        assert ps == [st["pid"]]
        rt.cmd("kill", cid, "KILL", check=True)
        _wait_status(rt, cid, "stopped")
        r = rt.cmd("kill", cid, "KILL")
        assert r.rc != 0 and "not running" in r.err
        rt.cmd("delete", cid, check=True)
        assert rt.cmd("state", cid).rc != 0
    finally:
        rt.cmd("delete", "--force", cid)


def test_exec_into_running_container(rt, make_bundle):
    b = make_bundle(["sleep", "1000"])
    cid = f"exec-{rt.name}"
    rt.detached("run", "--detach", "--bundle", str(b.path), cid)
    try:
        r = rt.cmd("exec", cid, "sh", "-c", "echo $$ $(hostname); cat /proc/1/cmdline | tr '\\0' ' '")
        assert r.rc == 0, r.err
        pid, host = r.out.split()[:2]
        assert host == "xctest" and pid != "1"
        assert "sleep 1000" in r.out
        r = rt.cmd("exec", "--env", "X=1", "--cwd", "/tmp", "--user", "65534:65534", cid,
                   "sh", "-c", "echo $X $(pwd) $(id -u); exit 4")
        assert (r.rc, r.out.strip()) == (4, "1 /tmp 65534")
        proc = dict(b.process, args=["sh", "-c", "echo from-process-file"])
        pf = b.path / "process.json"
        pf.write_text(json.dumps(proc))
        r = rt.cmd("exec", "--process", str(pf), cid)
        assert (r.rc, r.out) == (0, "from-process-file\n")
        assert rt.cmd("exec", cid, "/does/not/exist").rc != 0
    finally:
        rt.cmd("delete", "--force", cid)


def _console_receiver(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    return s


def test_terminal_over_console_socket(rt, make_bundle):
    b = make_bundle(["sh", "-c", "tty; echo $((6*7)); stty size"])
    b.process["terminal"] = True
    b.process["consoleSize"] = {"height": 33, "width": 101}
    b.write()
    cid = f"tty-{rt.name}"
    sock_path = b.path / "console.sock"
    srv = _console_receiver(sock_path)
    try:
        rt.detached("create", "--bundle", str(b.path), "--console-socket", str(sock_path), cid)
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        assert fds, "no pty master received"
        master = fds[0]
        assert stat.S_ISCHR(os.fstat(master).st_mode)
        rt.cmd("start", cid, check=True)
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b"101" not in out:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.close(master)
        text = out.decode()
        assert "/dev/pts/0" in text
        assert "42" in text
        assert "33 101" in text
    finally:
        srv.close()
        rt.cmd("delete", "--force", cid)


def test_hooks_run_in_order_with_state(rt, make_bundle, tmp_path):
    log = tmp_path / f"hooks-{rt.name}.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\nread state\necho \"$1 $state\" >> {log}\n")
    hook.chmod(0o755)
    b = make_bundle(["true"])
    b.config["hooks"] = {
        kind: [{"path": str(hook), "args": ["hook.sh", kind]}]
        for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    b.write()
    cid = f"hooks-{rt.name}"
    r = rt.run(b, cid)
    assert r.rc == 0, r.err
    lines = log.read_text().splitlines()
    kinds = [line.split(" ", 1)[0] for line in lines]
    assert kinds == ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]
    first = json.loads(lines[0].split(" ", 1)[1])
    assert first["id"] == cid and first["bundle"] == str(b.path) and first["pid"] > 0


# --- bad input: a clear error, a non-zero exit, nothing left behind -----------


def _assert_clean(rt: RuntimeUnderTest, before: dict, cid: str, prefix: str | None = None) -> None:
    """Nothing of container *cid* (or of any id starting with *prefix*) is
    left: no mount on the host, no cgroup, no process, no state.  Cgroups are
    matched by the container's name, so containers of other tests running at
    the same time do not count."""
    time.sleep(0.1)
    after = snapshot_host()
    assert sorted(set(after["mounts"]) - set(before["mounts"])) == []
    name = prefix or cid
    new_cgroups = sorted(set(after["cgroups"]) - set(before["cgroups"]))
    assert [c for c in new_cgroups if os.path.basename(c).startswith(name)] == []
    assert after["busybox_procs"] <= before["busybox_procs"]
    assert not os.path.exists(os.path.join(rt.root, cid))


def _fails_cleanly(rt: RuntimeUnderTest, bundle, cid: str, *words: str) -> str:
    before = snapshot_host()
    r = rt.cmd("create", "--bundle", str(bundle.path), cid)
    rt_err = r.err + r.out
    if r.rc == 0:
        rt.cmd("delete", "--force", cid)
    assert r.rc != 0, f"{rt.name} accepted a bad bundle"
    if rt.name == "xc":
        for w in words:
            assert w in rt_err, f"error does not mention {w!r}: {rt_err}"
    _assert_clean(rt, before, cid)
    return rt_err


def test_malformed_config(rt, make_bundle):
    b = make_bundle(["true"])
    (b.path / "config.json").write_text('{"ociVersion": "1.0.2", "process": ')
    _fails_cleanly(rt, b, f"bad-json-{rt.name}", "config.json", "JSON")


def test_wrong_field_type(rt, make_bundle):
    b = make_bundle(["true"])
    b.process["args"] = "true"
    b.write()
    _fails_cleanly(rt, b, f"bad-args-{rt.name}", "process.args")


def test_missing_rootfs(rt, make_bundle):
    b = make_bundle(["true"])
    b.config["root"]["path"] = str(b.path / "no-such-rootfs")
    b.write()
    _fails_cleanly(rt, b, f"no-root-{rt.name}", "root.path", "no-such-rootfs")


def test_unknown_namespace(rt, make_bundle):
    b = make_bundle(["true"])
    b.linux["namespaces"].append({"type": "galaxy"})
    b.write()
    _fails_cleanly(rt, b, f"bad-ns-{rt.name}", "linux.namespaces", "galaxy")


def test_failing_hook(rt, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    _fails_cleanly(rt, b, f"bad-hook-{rt.name}", "createRuntime", "/bin/false")


def test_failing_mount(rt, make_bundle):
    b = make_bundle(["true"])
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": "/no/such/dir",
                               "options": ["bind"]})
    b.write()
    _fails_cleanly(rt, b, f"bad-mount-{rt.name}", "/data")


def test_missing_executable(rt, make_bundle):
    b = make_bundle(["no-such-program"])
    _fails_cleanly(rt, b, f"no-exe-{rt.name}", "no-such-program")


def test_duplicate_id(rt, make_bundle):
    b = make_bundle(["sleep", "100"])
    cid = f"dup-{rt.name}"
    rt.detached("create", "--bundle", str(b.path), cid)
    try:
        r = rt.cmd("create", "--bundle", str(b.path), cid)
        assert r.rc != 0
        if rt.name == "xc":
            assert "already exists" in r.err
        assert rt.state(cid)["status"] == "created"
    finally:
        rt.cmd("delete", "--force", cid)


def test_symlink_cannot_escape_rootfs(rt, make_bundle, tmp_path):
    """A rootfs symlink pointing outside: the mount lands inside the rootfs."""
    outside = tmp_path / f"outside-{rt.name}"
    outside.mkdir()
    b = make_bundle(["sh", "-c", "ls /evil/data"], writable=True)
    rootfs = b.path / "rootfs"
    (rootfs / "evil").symlink_to(f"../../../../../../../..{outside}")
    src = tmp_path / f"src-{rt.name}"
    src.mkdir()
    (src / "marker").write_text("x")
    b.config["mounts"].append({"destination": "/evil/data", "type": "bind", "source": str(src),
                               "options": ["bind"]})
    b.write()
    before = snapshot_host()
    cid = f"escape-{rt.name}"
    r = rt.run(b, cid)
    assert r.rc == 0, r.err
    assert "marker" in r.out
    assert list(outside.iterdir()) == [], "the mount point was created outside the rootfs"
    assert (rootfs / str(outside).lstrip("/") / "data").is_dir()
    _assert_clean(rt, before, cid)


def test_kill_stopped_container(rt, make_bundle):
    b = make_bundle(["true"])
    cid = f"killstopped-{rt.name}"
    rt.detached("run", "--detach", "--bundle", str(b.path), cid)
    try:
        _wait_status(rt, cid, "stopped")
        r = rt.cmd("kill", cid, "TERM")
        assert r.rc != 0
        if rt.name == "xc":
            assert "not running" in r.err
    finally:
        rt.cmd("delete", "--force", cid)


def test_unknown_container(rt):
    for args in (["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"]):
        r = rt.cmd(*args)
        assert r.rc != 0, args
        if rt.name == "xc":
            assert "does not exist" in r.err


def test_runc_flags_we_do_not_support_are_refused(xc):
    r = xc.cmd("checkpoint", "x")
    assert r.rc != 0 and "not supported" in r.err
    r = xc.cmd("exec", "--apparmor", "p", "x", "true")
    assert r.rc != 0 and "not supported" in r.err


# --- leaks -------------------------------------------------------------------------


def test_run_with_terminal_proxies_the_callers_tty(rt, make_bundle):
    """`run` of a terminal container without --console-socket: the runtime
    itself holds the pty master and copies the caller's terminal (script(1)
    gives the runtime a terminal)."""
    import shlex
    import subprocess

    b = make_bundle(["sh"])
    b.process["terminal"] = True
    b.write()
    cid = f"ttyrun-{rt.name}"
    cmd = f"{rt.binary} --root {rt.root} run --bundle {b.path} {cid}"
    try:
        p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input="echo $((6*7))\nexit 3\n",
                           capture_output=True, text=True, timeout=60)
    finally:
        rt.cmd("delete", "--force", cid)
    assert "42" in p.stdout, shlex.quote(p.stdout)
    assert p.returncode == 3
