"""Tests of xcontainers.cgroups against the host's real cgroups (as root).

Every test cgroup is /xc-test-<random> in each hierarchy; the `cg` fixture
kills what the test started, removes what is left and asserts that nothing
remains.  The v1 tests skip on a pure cgroup v2 host; the v2 test runs in a
private mount namespace with a cgroup2 filesystem mounted on /sys/fs/cgroup.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from typing import Iterator

import pytest

from xcontainers import cgroups
from xcontainers.cgroups import Cgroup, detect, hierarchies, resolve_path, shares_to_weight
from xcontainers.errors import ConfigError, SetupError

ROOT = "/sys/fs/cgroup"
SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir(ROOT), reason="needs root and cgroups"),
]

HOST_V1 = os.path.isdir(ROOT) and not os.path.exists(os.path.join(ROOT, "cgroup.controllers"))
needs_v1 = pytest.mark.skipif(not HOST_V1, reason="cgroup v1 (legacy or hybrid) host only")


# --- helpers --------------------------------------------------------------


def _cgroup_mounts() -> set[str]:
    """Mount points of cgroup filesystems at or below ROOT, read directly."""
    found = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mp, fstype = left.split()[4], right.split()[0]
            if fstype in ("cgroup", "cgroup2") and (mp == ROOT or mp.startswith(ROOT + "/")):
                found.add(mp)
    return found


def _leftovers(path: str) -> list[str]:
    """Directories named path that still exist in any cgroup hierarchy."""
    return [d for mp in sorted(_cgroup_mounts()) if os.path.lexists(d := os.path.join(mp, path.lstrip("/")))]


def _force_remove(path: str) -> None:
    """Independent of the module under test: rmdir the tree bottom-up."""
    for d in _leftovers(path):
        for dirpath, _dirs, _files in os.walk(d, topdown=False):
            for _ in range(100):
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split(":", 1)[1].strip()
    return ""


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


class Env:
    """A fresh test cgroup path plus the processes a test started."""

    def __init__(self) -> None:
        self.path = f"/xc-test-{secrets.token_hex(4)}"
        self.procs: list[subprocess.Popen] = []

    def spawn(self, *argv: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen(list(argv) or ["sleep", "1000"], **kw)
        self.procs.append(p)
        return p

    def cgroup(self, sub: str = "") -> Cgroup:
        return Cgroup.open(self.path + sub)


@pytest.fixture
def cg() -> Iterator[Env]:
    env = Env()
    try:
        yield env
    finally:
        for p in env.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        _force_remove(env.path)
        assert _leftovers(env.path) == []


# --- detection and paths --------------------------------------------------


def test_detect_matches_the_host() -> None:
    assert detect() == ("v1" if HOST_V1 else "v2")


def test_hierarchies_come_from_mountinfo() -> None:
    assert {h.mountpoint for h in hierarchies(ROOT)} == _cgroup_mounts()


@pytest.mark.parametrize(
    "mountpoint, options, controllers, mount_options",
    [
        ("/sys/fs/cgroup/cpu,cpuacct", "rw,cpu,cpuacct", ("cpu", "cpuacct"), "cpu,cpuacct"),
        ("/sys/fs/cgroup/systemd", "rw,xattr,name=systemd", (), "none,name=systemd"),
        ("/sys/fs/cgroup/cpuset", "rw,cpuset,clone_children", ("cpuset",), "cpuset"),
        ("/sys/fs/cgroup/x", "rw,release_agent=/bin/true,name=x,pids", ("pids",), "pids,name=x"),
    ],
)
def test_v1_mount_options(mountpoint: str, options: str, controllers: tuple, mount_options: str) -> None:
    h = cgroups._v1_hierarchy(mountpoint, options)
    assert (h.name, h.controllers, h.options) == (os.path.basename(mountpoint), controllers, mount_options)


@needs_v1
def test_open_names_every_hierarchy(cg: Env) -> None:
    c = cg.cgroup()
    assert c.version == "v1"
    assert c.path == cg.path
    for h in hierarchies(ROOT):
        assert c.dirs[h.name] == h.mountpoint + cg.path
    if os.path.ismount(f"{ROOT}/memory"):
        assert c.dirs["memory"] == f"{ROOT}/memory{cg.path}"
    if os.path.ismount(f"{ROOT}/unified"):
        assert c.dirs["unified"] == f"{ROOT}/unified{cg.path}"


@pytest.mark.parametrize(
    "given, expected",
    [
        (None, "/abc"),
        ("", "/abc"),
        ("/a/b", "/a/b"),
        ("/a//b/./c/", "/a/b/c"),
        ("a/b", "/a/b"),
        ("machine.slice:libpod:abc123", "/machine.slice/libpod-abc123.scope"),
        ("system.slice:docker:f00", "/system.slice/docker-f00.scope"),
        (":cri-containerd:f00", "/system.slice/cri-containerd-f00.scope"),
        ("user.slice::f00", "/user.slice/f00.scope"),
    ],
)
def test_resolve_path(given: str | None, expected: str) -> None:
    assert resolve_path(given, "abc") == expected


@pytest.mark.parametrize("given", ["/a/../b", "../x", "a/..", "machine.slice:..:x", "/", "notaslice:p:n"])
def test_resolve_path_rejects(given: str) -> None:
    with pytest.raises(ConfigError, match="linux.cgroupsPath"):
        resolve_path(given, "abc")


@pytest.mark.parametrize("cid", ["..", ".", "a/b", ""])
def test_resolve_path_rejects_bad_ids(cid: str) -> None:
    with pytest.raises(ConfigError):
        resolve_path(None, cid)


def test_open_rejects_relative_and_dotdot() -> None:
    for bad in ("relative", "/a/../b", "/"):
        with pytest.raises(ConfigError):
            Cgroup.open(bad)


def test_shares_to_weight_matches_runc() -> None:
    assert shares_to_weight(0) == 0
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(1) == 1  # clamped like the kernel does for shares


# --- lifecycle on the host (v1 / hybrid) ----------------------------------


@needs_v1
def test_create_add_pids_and_memory_limit(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    for d in c.dirs.values():
        assert os.path.isdir(d)
    p = cg.spawn()
    c.add(p.pid)
    assert c.pids() == [p.pid]
    with open(f"/proc/{p.pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert all(line.endswith(":" + cg.path) for line in lines), lines

    c.apply({"memory": {"limit": 64 << 20, "reservation": 32 << 20}})
    mem = c.dirs["memory"]
    assert int(_read(f"{mem}/memory.limit_in_bytes")) == 64 << 20
    assert int(_read(f"{mem}/memory.soft_limit_in_bytes")) == 32 << 20
    if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes"):
        c.apply({"memory": {"limit": 128 << 20, "swap": 256 << 20}})  # both grow: memsw first
        assert int(_read(f"{mem}/memory.memsw.limit_in_bytes")) == 256 << 20
        c.apply({"memory": {"limit": 32 << 20, "swap": 48 << 20}})  # both shrink: memory first
        assert int(_read(f"{mem}/memory.memsw.limit_in_bytes")) == 48 << 20
        assert int(_read(f"{mem}/memory.limit_in_bytes")) == 32 << 20
    c.apply({"memory": {"limit": -1}})
    assert int(_read(f"{mem}/memory.limit_in_bytes")) > 1 << 60

    stats = c.stats()
    assert stats["pids"]["current"] == 1
    assert "usage" in stats["memory"] and "cpu" in stats

    p.kill()
    p.wait()
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_apply_cpu_pids_devices(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    cpus = _read(f"{ROOT}/cpuset/cpuset.cpus").split(",")[0].split("-")[0]
    c.apply(
        {
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": cpus},
            "pids": {"limit": 7},
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": True, "type": "c", "major": 136, "access": "rw"},
            ],
        }
    )
    assert _read(f"{c.dirs['cpu']}/cpu.shares") == "512"
    assert _read(f"{c.dirs['cpu']}/cpu.cfs_quota_us") == "50000"
    assert _read(f"{c.dirs['cpu']}/cpu.cfs_period_us") == "100000"
    assert _read(f"{c.dirs['cpuset']}/cpuset.cpus") == cpus
    assert _read(f"{c.dirs['pids']}/pids.max") == "7"
    assert _read(f"{c.dirs['devices']}/devices.list").splitlines() == ["c 1:3 rwm", "c 136:* rw"]
    c.apply({"pids": {"limit": 0}, "cpu": {"quota": -1}})
    assert _read(f"{c.dirs['pids']}/pids.max") == "max"
    assert _read(f"{c.dirs['cpu']}/cpu.cfs_quota_us") == "-1"
    c.destroy()
    assert _leftovers(cg.path) == []


FORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.stdin.readline()              # wait until we are in the cgroup
    kids, err = [], None
    for _ in range(64):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.errno
            break
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids.append(pid)
    for k in kids:
        os.kill(k, signal.SIGKILL)
        os.waitpid(k, 0)
    print(len(kids), err, flush=True)
    """
)


@needs_v1
def test_pids_limit_stops_forks(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    p = cg.spawn(sys.executable, "-c", FORKER, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    c.add(p.pid)
    c.apply({"pids": {"limit": 5}})
    out, _ = p.communicate("go\n", timeout=30)
    forked, err = out.split()
    assert int(forked) == 4  # the forker itself is the fifth task
    assert err == "11"  # EAGAIN
    events = dict(line.split() for line in _read(f"{c.dirs['pids']}/pids.events").splitlines())
    assert int(events["max"]) >= 1
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_freeze_and_thaw(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    p = cg.spawn()
    c.add(p.pid)
    assert not c.is_frozen()
    c.freeze()
    assert c.is_frozen()
    assert _read(f"{c.dirs['freezer']}/freezer.state") == "FROZEN"
    assert _state(p.pid).startswith("D")  # v1 frozen tasks show as D
    c.thaw()
    assert not c.is_frozen()
    assert _read(f"{c.dirs['freezer']}/freezer.state") == "THAWED"
    # A thawed sleeper is briefly runnable (R) before it sleeps again (S); never D.
    deadline = time.monotonic() + 5
    while _state(p.pid).startswith("R") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(p.pid).startswith("S")
    p.kill()
    p.wait()
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_kill_all(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    procs = [cg.spawn(), cg.spawn()]
    for p in procs:
        c.add(p.pid)
    c.kill_all(signal.SIGTERM)
    assert [p.wait(timeout=10) for p in procs] == [-signal.SIGTERM] * 2
    assert not c.is_frozen()  # the freeze around the signals is undone
    p = cg.spawn()
    c.add(p.pid)
    c.kill_all(signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_destroy_waits_for_a_dying_process(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    p = cg.spawn()
    c.add(p.pid)
    os.kill(p.pid, signal.SIGKILL)  # no wait: the process may still be exiting
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_destroy_gives_up_on_a_live_process(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    p = cg.spawn()
    c.add(p.pid)
    with pytest.raises(SetupError, match=cg.path):
        c.destroy(timeout=0.3)
    p.kill()
    p.wait()
    c.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_destroy_removes_only_what_it_created(cg: Env) -> None:
    parent = cg.cgroup()
    parent.create()
    child = cg.cgroup("/mid/leaf")
    child.create()
    sub = os.path.join(child.dirs["memory"], "inner")  # a cgroup the container made itself
    os.mkdir(sub)
    child.destroy()
    for name, d in parent.dirs.items():
        assert os.path.isdir(d), name  # existed before child.create()
        assert not os.path.exists(os.path.join(d, "mid")), name
    parent.destroy()
    assert _leftovers(cg.path) == []


@needs_v1
def test_state_round_trip(cg: Env) -> None:
    c = cg.cgroup("/a")
    c.create()
    state = json.loads(json.dumps(c.to_state()))
    c2 = Cgroup.from_state(state)
    assert (c2.version, c2.path, c2.dirs) == (c.version, c.path, c.dirs)
    assert c2.mount_specs() == c.mount_specs()
    c2.destroy()  # also removes the parent create() made
    assert _leftovers(cg.path) == []


@needs_v1
def test_state_saved_before_create_still_cleans_up(cg: Env) -> None:
    c = cg.cgroup("/a/b")
    early = c.to_state()  # what a runtime records before create()
    c.create()
    Cgroup.from_state(early).destroy()
    assert _leftovers(cg.path) == []


# --- errors ---------------------------------------------------------------


@needs_v1
def test_missing_controller_is_a_config_error(cg: Env) -> None:
    c = cg.cgroup()
    state = c.to_state()
    state["hierarchies"] = [h for h in state["hierarchies"] if "memory" not in h["controllers"]]
    no_mem = Cgroup.from_state(state)
    with pytest.raises(ConfigError, match=r"linux\.resources\.memory\.limit: .*memory cgroup controller"):
        no_mem.apply({"memory": {"limit": 64 << 20}})
    with pytest.raises(ConfigError, match=r"linux\.resources\.unified: .*cgroup v2"):
        c.apply({"unified": {"memory.high": "1G"}})
    if not any("net_cls" in h.controllers for h in hierarchies(ROOT)):
        with pytest.raises(ConfigError, match=r"linux\.resources\.network\.classID: .*net_cls"):
            c.apply({"network": {"classID": 1}})
    assert _leftovers(cg.path) == []  # nothing was created on the way


@needs_v1
def test_kernel_refusal_is_a_setup_error(cg: Env) -> None:
    c = cg.cgroup()
    c.create()
    with pytest.raises(SetupError, match="cpuset.cpus"):
        c.apply({"cpu": {"cpus": "100000"}})
    c.destroy()


# --- mounting inside a container ------------------------------------------


@needs_v1
def test_mount_specs_are_mountable(cg: Env, tmp_path) -> None:
    c = cg.cgroup()
    c.create()
    specs = c.mount_specs()
    assert {name for name, _, _ in specs} == set(c.dirs)
    by_name = {name: (d, opts) for name, d, opts in specs}
    if "systemd" in by_name:
        assert by_name["systemd"][1] == "none,name=systemd"
    if "memory" in by_name:
        assert by_name["memory"] == (c.dirs["memory"], "memory")
    lines = []
    for name, host_dir, opts in specs:
        target = tmp_path / (name or "v2")
        target.mkdir()
        kind = "-t cgroup2" if opts == "" else f"-t cgroup -o {opts}"
        lines.append(f"mount {kind} cgroup {target} && test -f {target}{cg.path}/cgroup.procs")
    script = "set -e\n" + "\n".join(lines)
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script]
    r = subprocess.run(argv, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    c.destroy()
    assert _leftovers(cg.path) == []


# --- cgroup v2 ------------------------------------------------------------


V2_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from xcontainers import cgroups
    from xcontainers.errors import ConfigError

    path = sys.argv[1]
    out = {"detect": cgroups.detect()}
    c = cgroups.Cgroup.open(path)
    out["dirs"] = c.dirs
    out["root_controllers"] = open("/sys/fs/cgroup/cgroup.controllers").read().split()
    c.create()
    p = subprocess.Popen(["sleep", "1000"])
    try:
        c.add(p.pid)
        out["pid"], out["pids"] = p.pid, c.pids()
        c.freeze()
        out["frozen"] = c.is_frozen()
        out["events_frozen"] = "frozen 1" in open(os.path.join(c.dirs["unified"], "cgroup.events")).read()
        c.thaw()
        out["thawed"] = not c.is_frozen()
        for key, res in [("memory", {"memory": {"limit": 64 << 20}}), ("pids", {"pids": {"limit": 10}}),
                         ("unified", {"unified": {"memory.max": "64M"}})]:
            try:
                c.apply(res)
                out["err_" + key] = None
            except ConfigError as e:
                out["err_" + key] = str(e)
        c.apply({"devices": [{"allow": False, "access": "rwm"}]})  # eBPF on v2: ignored
        out["stats"] = c.stats()
        out["mount_specs"] = c.mount_specs()
        c.kill_all(9)
        out["status"] = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        c.destroy()
    out["left"] = os.path.exists("/sys/fs/cgroup/" + path.strip("/").split("/")[0])
    print(json.dumps(out))
    """
)


def test_cgroup_v2_in_a_private_mount_namespace(cg: Env) -> None:
    name = cg.path + "/ctr"
    shell = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" -c "$1" "$2"'
    r = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", shell, sys.executable, V2_SCRIPT, name],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["detect"] == "v2"
    assert out["dirs"] == {"unified": f"/sys/fs/cgroup{name}"}
    assert out["pids"] == [out["pid"]]
    assert out["frozen"] and out["events_frozen"] and out["thawed"]
    assert out["status"] == -9
    assert out["mount_specs"] == [["", f"/sys/fs/cgroup{name}", ""]]
    assert out["left"] is False
    if "memory" not in out["root_controllers"]:  # this host: no controller in its v2 tree
        assert out["err_memory"] is not None
        field, message = out["err_memory"].split(": ", 1)
        assert field == "linux.resources.memory.limit" and "memory" in message
        assert "not enabled" in out["err_memory"]
        assert out["err_unified"] is not None and "memory.max" in out["err_unified"]
    if "pids" not in out["root_controllers"]:
        assert out["err_pids"] is not None and "linux.resources.pids.limit" in out["err_pids"]
    assert "cpu" in out["stats"]
    # the namespace is gone; its cgroup2 tree is the host's: nothing may be left there
    assert _leftovers(cg.path) == []


def test_module_surface() -> None:
    for name in ("detect", "resolve_path", "Cgroup"):
        assert name in cgroups.__all__
    assert cgroups.__doc__ and "v1" in cgroups.__doc__ and "v2" in cgroups.__doc__
