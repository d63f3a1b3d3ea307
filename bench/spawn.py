#!/usr/bin/env python3
"""Spawn time: `RUNTIME run` of a /bin/true container, start to exit.

A thin wrapper over the `xc bench` harness (xcontainers.benchharness: the
experiment is `spawn`): xc-runtime, runc and crun side by side, interleaved
(A B C A B C ...), on the same busybox rootfs and the same config; medians
with min-max and the ratio to runc.  crun refuses this host's hybrid cgroup
layout, so the whole benchmark runs in a private mount namespace without the
cgroup2 mount at /sys/fs/cgroup/unified (DESIGN-NOTES §6); every runtime
sees the same view.

    bench/spawn.py [-n REPS] [--json FILE] [--runtimes xc,runc,crun]

(`xc bench --experiments spawn` runs the same with every runtime and writes a
report.)  This is a benchmark, not a test: it asserts nothing about the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from xcontainers.benchharness.runtimes import in_private_mount_ns  # noqa: E402


def _in_private_mount_ns() -> None:
    """Re-exec this script inside a mount namespace with no cgroup2 at .../unified."""
    in_private_mount_ns([sys.executable, *sys.argv])


def main() -> None:
    from xcontainers.benchharness.experiments import Ctx, spawn
    from xcontainers.benchharness.runtimes import discover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=30)
    ap.add_argument("--runtimes", default="xc,xc-nolibos,runc,crun")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    if a.json:
        a.json = os.path.abspath(a.json)
    _in_private_mount_ns()
    top = tempfile.mkdtemp(prefix="xc-bench-spawn-")
    try:
        from xcontainers.benchharness.runtimes import ALIASES, ALL

        names = [x for x in a.runtimes.split(",") if x]
        unknown = [x for x in names if ALIASES.get(x, x) not in ALL]
        rts = discover([x for x in names if x not in unknown], top)
        ctx = Ctx(top=top, quick=False, rts=rts, reps=a.reps)
        e = spawn(ctx)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    cells = e["metrics"][0]["cells"]
    results = {n: {"median_ms": round(c["median"], 2), "min_ms": round(c["min"], 2), "max_ms": round(c["max"], 2),
                   "n": c["n"], "ratio_to_runc": None if c.get("ratio_to_runc") is None else round(c["ratio_to_runc"], 2)}
               for n, c in cells.items() if c["status"] == "ok"}
    missing = [n for n, c in cells.items() if c["status"] == "missing"] + unknown
    failures = {n: c["reason"] for n, c in cells.items() if c["status"] == "failed"}
    out = {"experiment": "spawn /bin/true start-to-exit", "reps": a.reps, "results": results,
           "missing": missing, "failed": failures,
           "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "kernel": os.uname().release}
    print(f"{'runtime':<10} {'median ms':>10} {'min-max ms':>16} {'x runc':>7}")
    for name, r in results.items():
        print(f"{name:<10} {r['median_ms']:>10.1f} {r['min_ms']:>7.1f}-{r['max_ms']:<8.1f} {r['ratio_to_runc'] or '-':>7}")
    for name in missing:
        print(f"{name:<10} missing")
    for name, why in failures.items():
        print(f"{name:<10} FAILED: {why}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
