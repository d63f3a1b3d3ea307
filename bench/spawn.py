#!/usr/bin/env python3
"""Spawn time: `RUNTIME run` of a /bin/true container, start to exit.

Runs xc-runtime, runc and crun side by side, interleaved (A B C A B C ...),
on the same busybox rootfs and the same config, and prints medians with
min-max and the ratio to runc.  crun refuses this host's hybrid cgroup
layout, so the whole benchmark runs in a private mount namespace without the
cgroup2 mount at /sys/fs/cgroup/unified (DESIGN-NOTES §6); every runtime
sees the same view.

    bench/spawn.py [-n REPS] [--json FILE] [--runtimes xc,runc,crun]

This is a benchmark, not a test: it asserts nothing about the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))


def _runtime_binaries() -> dict[str, str | None]:
    venv = os.path.join(HERE, "..", ".venv", "bin", "xc-runtime")
    return {
        "xc": shutil.which("xc-runtime") or (venv if os.path.exists(venv) else None),
        "xc-nolibos": shutil.which("xc-runtime") or (venv if os.path.exists(venv) else None),
        "runc": shutil.which("runc"),
        "crun": shutil.which("crun"),
    }


def _make_bundle(top: str, annotations: dict[str, str] | None = None, name: str = "bundle") -> str:
    from xcontainers.defaults import default_spec

    bundle = os.path.join(top, name)
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "true"))
    spec = default_spec(["/bin/true"], terminal=False, hostname="bench")
    if annotations:
        spec["annotations"] = annotations
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


def _in_private_mount_ns() -> None:
    """Re-exec inside a mount namespace with no cgroup2 at .../unified."""
    if os.environ.get("XC_BENCH_NS") == "1":
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL, check=False)
        return
    env = dict(os.environ, XC_BENCH_NS="1")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv], env=env)
    sys.exit(r.returncode)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=30)
    ap.add_argument("--runtimes", default="xc,xc-nolibos,runc,crun")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    _in_private_mount_ns()
    bins = _runtime_binaries()
    wanted = a.runtimes.split(",")
    present = {n: bins.get(n) for n in wanted if bins.get(n)}
    missing = [n for n in wanted if not bins.get(n)]
    top = tempfile.mkdtemp(prefix="xc-bench-spawn-")
    samples: dict[str, list[float]] = {n: [] for n in present}
    failures: dict[str, str] = {}
    try:
        plain = _make_bundle(top)
        nolibos = _make_bundle(top, {"org.xcontainers.libos": "off"}, "bundle-nolibos")
        bundles = {name: nolibos if name == "xc-nolibos" else plain for name in present}
        for i in range(a.reps + 2):  # two warm-up rounds, discarded
            for name, binary in present.items():
                if name in failures:
                    continue
                root = os.path.join(top, f"state-{name}")
                cid = f"spawn-{i}"
                t0 = time.perf_counter()
                r = subprocess.run([binary, "--root", root, "run", "--bundle", bundles[name], cid],
                                   stdin=subprocess.DEVNULL, capture_output=True)
                dt = (time.perf_counter() - t0) * 1000
                if r.returncode != 0:
                    failures[name] = r.stderr.decode(errors="replace").strip()[-300:]
                    continue
                if i >= 2:
                    samples[name].append(dt)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    results = {}
    ref = statistics.median(samples["runc"]) if samples.get("runc") else None
    for name, xs in samples.items():
        if name in failures or not xs:
            continue
        med = statistics.median(xs)
        results[name] = {"median_ms": round(med, 2), "min_ms": round(min(xs), 2), "max_ms": round(max(xs), 2),
                         "n": len(xs), "ratio_to_runc": round(med / ref, 2) if ref else None}
    out = {"experiment": "spawn /bin/true start-to-exit", "reps": a.reps, "results": results,
           "missing": missing, "failed": failures,
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "kernel": os.uname().release}
    print(f"{'runtime':<8} {'median ms':>10} {'min-max ms':>16} {'x runc':>7}")
    for name, r in results.items():
        print(f"{name:<8} {r['median_ms']:>10.1f} {r['min_ms']:>7.1f}-{r['max_ms']:<8.1f} {r['ratio_to_runc'] or '-':>7}")
    for name in missing:
        print(f"{name:<8} missing")
    for name, why in failures.items():
        print(f"{name:<8} FAILED: {why}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
