#!/usr/bin/env python3
"""fork and fork+exec under every runtime, with what they cost: a thin
wrapper over the `xc bench` harness (experiment `fork`; `xc bench
--experiments fork` writes the same into a report).

For each repetition and each runtime in turn (interleaved), one container
runs `syscall_bench fork N` and one `syscall_bench forkexec N`
(bench/syscall_bench.c, static).  Each prints its time per op and the
breakdown: minor page faults per child and in the parent, the page tables
(VmPTE), mappings and fd table (FDSize) of the parent, and those of one
child at rest after the fork or after the exec.  Reported: medians over
the repetitions, min-max, and the ratio to runc's median.

This machine is shared and noisy: compare the ratios of one run, never
absolute times between runs.

    bench/fork.py [-n REPS] [--quick] [--runtimes native,runc,crun,xc-trap,xc]
                  [--target SECONDS] [--json FILE]

An A/B between two builds of xcontainers: name the other build's runtime
as xc@TREE (that tree's native src/xcontainers/xc-runtime, else its .venv/bin/xc-runtime:
picked as this tree's is) or xc@PATH-TO-XC-RUNTIME
(likewise xc-trap@..., xc-nolibos@...), e.g.
    bench/fork.py --runtimes runc,xc@/tmp/base/xc-runtime,xc

A benchmark, not a test: it asserts nothing about the numbers.
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

from xcontainers.benchharness.runtimes import ALL, ALIASES, in_private_mount_ns  # noqa: E402

DEFAULT = ["native", "runc", "crun", "xc-trap", "xc"]


def _cell(c: dict, unit: str) -> str:
    if c["status"] != "ok":
        return c["status"]
    v = c["median"]
    num = f"{v:,.0f}" if unit == "ns/op" or v >= 100 else f"{v:.1f}"
    r = c.get("ratio_to_runc")
    return num + (f" ({r:.2f}x)" if r is not None and unit == "ns/op" else "")


def table(e: dict, rts: list[str]) -> str:
    lines = ["| metric | unit | " + " | ".join(rts) + " |", "|---|---|" + "---:|" * len(rts)]
    for m in e["metrics"]:
        lines.append(f"| {m['name']} | {m['unit']} | " + " | ".join(_cell(m["cells"][r], m["unit"]) for r in rts) + " |")
    bad = [f"- {m['name']} / {r}: {m['cells'][r]['reason']}" for m in e["metrics"] for r in rts
           if m["cells"][r]["status"] != "ok" and m["name"] in ("fork", "fork+exec")]
    return "\n".join(lines + (["", "Not measured:", *bad] if bad else []))


def main() -> None:
    from xcontainers.benchharness.experiments import Ctx, fork
    from xcontainers.benchharness.runtimes import discover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=None, help="repetitions (default 7; 1 with --quick)")
    ap.add_argument("--target", type=float, default=None, help="seconds per run's loop (default 0.3)")
    ap.add_argument("--quick", action="store_true", help="one short repetition")
    ap.add_argument("--runtimes", default=",".join(DEFAULT), help=f"subset of {','.join(ALL)}")
    ap.add_argument("--json", help="write the experiment's result here as JSON")
    a = ap.parse_args()
    rts = [ALIASES.get(x, x) for x in a.runtimes.split(",") if x]
    bad = [x for x in rts if x.partition("@")[0] not in ALL or x == "uml"]
    if bad or (a.reps is not None and a.reps < 1):
        ap.error(f"unknown runtime: {', '.join(bad)}" if bad else "--reps must be >= 1")
    command = " ".join(["bench/fork.py", *sys.argv[1:]])
    if a.json:
        a.json = os.path.abspath(a.json)
    in_private_mount_ns([sys.executable, *sys.argv])  # for crun; returns in the new namespace

    top = tempfile.mkdtemp(prefix="xc-bench-fork-")
    started, load = time.time(), os.getloadavg()[0]
    try:
        found = discover(rts, top)
        e = fork(Ctx(top=top, quick=a.quick, rts=found, reps=a.reps), target=a.target)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"# {command}  ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, kernel {os.uname().release}, "
          f"{e['reps']} reps, {time.time() - started:.0f} s, load average {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end)")
    for name, r in found.items():
        print(f"#   {name:<8} {(r.binary or 'native') + '  ' + r.version if r.available else 'missing: ' + r.reason}")
    print("Medians over the repetitions (times: ratio to runc's median):\n")
    print(table(e, rts))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": command, **e}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
