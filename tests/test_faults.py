"""Faults: the runtime killed with SIGKILL at every step, many cycles, many
containers at once -- and nothing is ever left behind.

Every step of xc-runtime that leaves something on the host is a named
point (xcontainers.points.POINTS); ``XC_FAULT=POINT`` makes the process that
reaches it kill itself with SIGKILL there: the runtime process itself, or
the container's setup process, init or exec'd process before its execve.
After each fault, ``delete --force`` (what a client does with a container
it lost track of) must succeed or report that the container does not exist,
and then no state directory, cgroup, process or host mount of the container
may remain.  A container half-created when its runtime died is always
deletable.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import RuntimeUnderTest

pytestmark = pytest.mark.root

# point -> who dies there: the runtime process (P) or a container-side process (C)
RUN_POINTS = {
    "config": "P", "reserved": "P", "cgroup": "P", "namespaces": "C", "joined": "P", "mounts": "C",
    "init": "C", "created": "P", "released": "P", "exec": "C", "started": "P", "exited": "P",
    "killed": "P", "cgroup-removed": "P", "deleted": "P",
}
EXEC_POINTS = {"exec-forked": "P", "exec-joined": "C", "exec-ready": "P", "exec": "C"}
DELETE_POINTS = ["killed", "cgroup-removed", "deleted"]


def _cmd(rt: RuntimeUnderTest, *args: str, fault: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the runtime; its stderr goes through a file, not a pipe: a created
    container's init keeps the runtime's stdio open."""
    env = dict(os.environ)
    env.pop("XC_FAULT", None)
    if fault:
        env["XC_FAULT"] = fault
    with tempfile.TemporaryFile() as err:
        p = subprocess.run([rt.binary, "--root", rt.root, *args], env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, None, err.read().decode(errors="replace"))


def _cgroup_dirs(name: str, prefix: bool = False) -> list[str]:
    """Cgroup directories (down to two levels below a hierarchy) called *name*
    (or, with *prefix*, whose names start with it)."""
    found = []
    for base, dirs, _ in os.walk("/sys/fs/cgroup"):
        if base.count("/") > 6:
            dirs[:] = []
            continue
        found.extend(os.path.join(base, d) for d in dirs if d == name or (prefix and d.startswith(name)))
    return found


def _processes_of(cid: str, rootfs: str) -> list[str]:
    """Processes of the runtime for *cid* (its id is in their command line)
    or of the container (their root is its rootfs)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            root = os.readlink(f"/proc/{pid}/root")
        except OSError:
            continue
        if os.fsencode(cid) in cmdline or root == rootfs or root.startswith(rootfs + "/"):
            out.append(f"{pid} {b' '.join(cmdline).decode(errors='replace')} (root {root})")
    return out


def _host_mounts(rootfs: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if rootfs in line.split()[4]]


def _assert_nothing_left(rt: RuntimeUnderTest, cid: str, rootfs: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        left = {
            "state": os.path.exists(os.path.join(rt.root, cid)),
            "cgroups": _cgroup_dirs(cid),
            "processes": _processes_of(cid, rootfs),
            "mounts": _host_mounts(rootfs),
        }
        if not any(left.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # a killed process may take a moment to be reaped
    assert not any(left.values()), f"left behind by {cid}: {left}"


def _force_delete(rt: RuntimeUnderTest, cid: str) -> None:
    r = _cmd(rt, "delete", "--force", cid)
    assert r.returncode == 0 or "does not exist" in r.stderr, f"delete --force {cid}: {r.stderr}"


@pytest.fixture
def fault_bundle(make_bundle):
    """A bundle with its own rootfs (so the container's processes can be told
    by their root) and limits (so the cgroup has files to write)."""
    def make(args: list[str]):
        b = make_bundle(args, writable=True)
        b.linux["resources"]["pids"] = {"limit": 32}
        b.linux["resources"]["memory"] = {"limit": 64 << 20}
        b.write()
        return b, str((b.path / "rootfs").resolve())
    return make


@pytest.mark.parametrize("point", list(RUN_POINTS))
def test_run_killed_at_each_point_leaves_nothing(xc, fault_bundle, point):
    b, rootfs = fault_bundle(["true"])
    cid = f"fault-run-{point}-{uuid.uuid4().hex[:6]}"
    r = _cmd(xc, "run", "--bundle", str(b.path), cid, fault=point)
    if RUN_POINTS[point] == "P":
        assert r.returncode == -9, f"the runtime was to die at {point}: rc {r.returncode}, {r.stderr}"
    else:
        # A container-side process died: the runtime reports it and cleans up
        # (before start), or returns the init's death by SIGKILL (at exec).
        assert r.returncode == (137 if point == "exec" else 1), (r.returncode, r.stderr)
    _force_delete(xc, cid)
    _assert_nothing_left(xc, cid, rootfs)


@pytest.mark.parametrize("point", ["released", "started"])
def test_start_killed_leaves_a_deletable_container(xc, fault_bundle, point):
    b, rootfs = fault_bundle(["sleep", "30"])
    cid = f"fault-start-{point}-{uuid.uuid4().hex[:6]}"
    assert _cmd(xc, "create", "--bundle", str(b.path), cid).returncode == 0
    r = _cmd(xc, "start", cid, fault=point)
    assert r.returncode == -9, r.stderr
    _force_delete(xc, cid)
    _assert_nothing_left(xc, cid, rootfs)


@pytest.mark.parametrize("point", list(EXEC_POINTS))
def test_exec_killed_at_each_point_leaves_nothing(xc, fault_bundle, point):
    b, rootfs = fault_bundle(["sleep", "30"])
    cid = f"fault-exec-{point}-{uuid.uuid4().hex[:6]}"
    assert _cmd(xc, "run", "--detach", "--bundle", str(b.path), cid).returncode == 0
    try:
        r = _cmd(xc, "exec", cid, "sleep", "20", fault=point)
        if EXEC_POINTS[point] == "P":
            assert r.returncode == -9, r.stderr
        else:
            assert r.returncode != 0, r.stderr
        # The container itself is unharmed by a failed exec.
        state = _cmd(xc, "state", cid)
        assert state.returncode == 0
    finally:
        _force_delete(xc, cid)
    _assert_nothing_left(xc, cid, rootfs)


@pytest.mark.parametrize("point", DELETE_POINTS)
def test_delete_killed_then_deleted_again(xc, fault_bundle, point):
    b, rootfs = fault_bundle(["sleep", "30"])
    cid = f"fault-delete-{point}-{uuid.uuid4().hex[:6]}"
    assert _cmd(xc, "run", "--detach", "--bundle", str(b.path), cid).returncode == 0
    r = _cmd(xc, "delete", "--force", cid, fault=point)
    assert r.returncode == -9, r.stderr
    _force_delete(xc, cid)
    _assert_nothing_left(xc, cid, rootfs)


CYCLES = int(os.environ.get("XC_FAULT_CYCLES", "1000"))


def test_create_start_delete_cycles_leave_nothing(xc, fault_bundle):
    """CYCLES (1000; XC_FAULT_CYCLES sets it) create/start/delete cycles of
    one bundle: afterwards no state, cgroup, process or mount of any of them."""
    b, rootfs = fault_bundle(["true"])
    prefix = f"cyc{uuid.uuid4().hex[:4]}"
    for i in range(CYCLES):
        cid = f"{prefix}-{i}"
        r = _cmd(xc, "create", "--bundle", str(b.path), cid)
        assert r.returncode == 0, f"cycle {i}: create: {r.stderr}"
        r = _cmd(xc, "start", cid)
        assert r.returncode == 0, f"cycle {i}: start: {r.stderr}"
        r = _cmd(xc, "delete", "--force", cid)
        assert r.returncode == 0, f"cycle {i}: delete: {r.stderr}"
    assert [n for n in os.listdir(xc.root) if n.startswith(prefix)] == []
    assert _cgroup_dirs(prefix, prefix=True) == []
    assert _processes_of(prefix, rootfs) == [] and _host_mounts(rootfs) == []


def test_podman_fifty_containers_at_once_leave_nothing(busybox_rootfs, tmp_path):
    """50 containers started in parallel by podman on xc-runtime, then removed:
    no cgroup, process or state of any of them remains."""
    from test_clients import PODMAN_RUN_OPTS, XC_BINARY, need_podman, podman

    need_podman()
    names = [f"xcp50-{uuid.uuid4().hex[:8]}" for _ in range(50)]
    rootfs = str(busybox_rootfs)

    def start(n: str) -> str:
        r = podman(XC_BINARY, "run", "-d", "--name", n, *PODMAN_RUN_OPTS, "--rootfs", rootfs, "sleep", "60")
        assert r.rc == 0, f"podman run {n}: {r.err}"
        return r.out.strip()

    ids: list[str] = []
    try:
        with ThreadPoolExecutor(max_workers=10) as pool:
            ids = list(pool.map(start, names))
        running = podman(XC_BINARY, "ps", "-q", "--no-trunc", "--filter", "name=xcp50-", check=True).out.split()
        assert sorted(running) == sorted(ids)
    finally:
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda n: podman(XC_BINARY, "rm", "-f", "-t", "0", n), names))
    assert podman(XC_BINARY, "ps", "-a", "-q", "--filter", "name=xcp50-", check=True).out.split() == []
    # podman names each container's cgroup libpod-<its id> (cgroupfs manager)
    # and xc-runtime keeps its state under <root>/<id>: none of them may remain.
    leaked_cgroups = [c for i in ids for c in _cgroup_dirs(f"libpod-{i}")]
    assert leaked_cgroups == []
    states = [os.path.join(d, i) for d in ("/run/xc-runtime", "/run/runc") for i in ids]
    assert [s for s in states if os.path.exists(s)] == []
    leaked = [pid for pid in os.listdir("/proc") if pid.isdigit() and _root_is(pid, rootfs)]
    assert leaked == [], f"processes still running in the 50 containers' rootfs: {leaked}"


def _root_is(pid: str, rootfs: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/root") == rootfs
    except OSError:
        return False
