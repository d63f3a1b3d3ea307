"""trinity in an X-Container for 15 seconds (bench/trinity.py; `make trinity` runs 60).

As root in the container with its usual isolation, trinity's children call
random system calls with random arguments.  Asserted: they reached the host
only with calls of the exokernel interface (the host's tracepoint, with a
kernel-side filter for calls off the interface, which cannot overflow), a
second X-Container answers before and after, the runtime still works, and
nothing of the run is left on the host.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

from conftest import ROOT, need_root

import hosttrace


def _runner():
    spec = importlib.util.spec_from_file_location("trinity_runner", ROOT / "bench/trinity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trinity_in_an_x_container(tmp_path):
    need_root()
    if shutil.which("trinity") is None:
        pytest.skip("trinity is not installed (Debian package trinity, in the Makefile's APT_PKGS)")
    why = hosttrace.available()
    if why:
        pytest.skip(why)
    runner = _runner()
    r = runner.run(seconds=int(os.environ.get("XC_TRINITY_SECONDS", "15")), runtime="xc", work=tmp_path)
    print("\n" + runner.summary(r))
    assert r["trinity"]["ran"] and r["trinity"]["ran"] > 1000, r["trinity"]
    h = r["host_calls"]
    assert h["off_interface"] == [] and h["off_interface_dropped"] == 0, h
    assert h["off_interface_in_full_trace"] == [], h
    assert h["distinct"] > 50
    assert r["sentinel_before"] and r["sentinel_after"]
    assert r["runtime_works"]
    assert r["leftovers"] == {"mounts": [], "cgroups": [], "processes": []}
    assert not r.get("killed")
