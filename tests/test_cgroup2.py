"""xc-runtime on a pure cgroup v2 host.

This host is hybrid (v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified).  In a private mount namespace the cgroup2 hierarchy
is bound over /sys/fs/cgroup, which is what a v2-only host looks like to the
runtime.  The hierarchy has no memory/pids controllers here (they belong to
v1), so limits must be refused with a clear error.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import XC_RUNTIME, need_root

pytestmark = pytest.mark.root


def _in_v2(script: str) -> subprocess.CompletedProcess[str]:
    need_root()
    if not os.path.ismount("/sys/fs/cgroup/unified"):
        pytest.skip("no cgroup2 mount at /sys/fs/cgroup/unified on this host")
    wrapped = f"mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup && {script}"
    return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", wrapped],
                          capture_output=True, text=True, timeout=120)


def test_container_runs_on_cgroup2(make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup | grep -c cgroup.procs"])
    b.linux["namespaces"].append({"type": "cgroup"})
    b.write()
    root = tmp_path / "state"
    r = _in_v2(f"{XC_RUNTIME} --root {root} run --bundle {b.path} v2c; echo rc=$?; "
               f"ls /sys/fs/cgroup/xc-runtime 2>/dev/null | grep -c v2c")
    assert "0::/\n" in r.stdout, r.stdout + r.stderr
    assert "rc=0" in r.stdout
    assert r.stdout.strip().endswith("0"), "the container's cgroup was left behind"


def test_limit_without_controller_is_refused(make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.linux["resources"]["pids"] = {"limit": 10}
    b.write()
    root = tmp_path / "state"
    r = _in_v2(f"{XC_RUNTIME} --root {root} run --bundle {b.path} v2l; echo rc=$?; ls {root} | wc -l; "
               f"ls /sys/fs/cgroup/xc-runtime 2>/dev/null | grep -c v2l")
    assert "linux.resources.pids.limit" in r.stderr
    lines = r.stdout.split()
    assert lines[0] == "rc=1" and lines[1] == "0" and lines[2] == "0", r.stdout + r.stderr
