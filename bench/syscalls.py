#!/usr/bin/env python3
"""System call micro-benchmark: the X-LibOS trap path against its peers.

A thin wrapper over the `xc bench` harness (xcontainers.benchharness: the
experiment is `syscalls`; `xc bench --experiments syscalls` adds uml and
writes a report).

Builds bench/syscall_bench.c (gcc -O2 -static) into a busybox rootfs and runs
each op of it under every runtime, side by side and interleaved (for each
repetition, for each op: native, runc, crun, runsc, xc-off, xc):

    native   the binary run directly on the host
    runc     runc run
    crun     crun run
    runsc    gVisor, ptrace platform (runsc --network=none run)
    xc-off   xc-runtime run, annotation org.xcontainers.libos=off
    xc       xc-runtime run on the X-LibOS (the default)

Every run is one container running `syscall_bench OP N`, which times its own
loop with clock_gettime (vDSO) and prints ns per op; container start-up is
not in the number.  A first round (discarded) warms up and calibrates N per
op and runtime so that one run's loop takes about --target seconds; the
repetitions that follow use that N.  Reported: the median over the
repetitions with min-max, and the ratio to runc's median for the same op.
A runtime that is not installed is reported as missing; a run that fails as
failed with its reason, never as a number.

Like bench/spawn.py, everything runs in a private mount namespace without the
cgroup2 mount at /sys/fs/cgroup/unified, so crun accepts the host's cgroup
layout (DESIGN-NOTES §6); every runtime sees the same view.

    bench/syscalls.py [-n REPS] [--quick] [--runtimes native,runc,...,xc@/other/tree]
                      [--ops getppid,...] [--target SECONDS] [--json FILE]

An A/B between builds: --runtimes runc,xc@OTHER_TREE,xc (OTHER_TREE's
xc-runtime, its native entry point where it has one, against this tree's).

This is a benchmark, not a test: it asserts nothing about the numbers.
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

from xcontainers.benchharness.experiments import EXTRA_OPS, OPS  # noqa: E402
from xcontainers.benchharness.runtimes import in_private_mount_ns  # noqa: E402

RUNTIMES = ["native", "runc", "runc-seccomp", "crun", "runsc", "xc-off", "xc-nolibos", "xc-trap", "xc"]
HARNESS_NAME = {"xc-off": "xc-nolibos"}


def _fmt_ns(x: float) -> str:
    return f"{x:,.0f}"


def _tables(results: dict, ops: list[str], rts: list[str]) -> str:
    def cell(d: dict) -> str:
        if d["status"] == "ok":
            ratio = f" ({d['ratio_to_runc']:.2f}x)" if d.get("ratio_to_runc") is not None else ""
            return _fmt_ns(d["median_ns"]) + ratio
        return d["status"]

    lines = ["Median ns per op (ratio to runc's median):", ""]
    lines.append("| op | " + " | ".join(rts) + " |")
    lines.append("|---|" + "---:|" * len(rts))
    for op in ops:
        lines.append(f"| {op} | " + " | ".join(cell(results[op][rt]) for rt in rts) + " |")
    lines += ["", "Detail (N iterations per run, median and min-max over the repetitions):", ""]
    lines.append("| op | runtime | N | median ns | min-max ns | x runc |")
    lines.append("|---|---|---:|---:|---:|---:|")
    notes = []
    for op in ops:
        for rt in rts:
            d = results[op][rt]
            if d["status"] == "ok":
                ratio = f"{d['ratio_to_runc']:.2f}" if d.get("ratio_to_runc") is not None else "-"
                lines.append(f"| {op} | {rt} | {d['n']:,} | {_fmt_ns(d['median_ns'])} | "
                             f"{_fmt_ns(d['min_ns'])}-{_fmt_ns(d['max_ns'])} | {ratio} |")
            elif d["status"] == "missing":
                lines.append(f"| {op} | {rt} | - | missing | - | - |")
            else:
                lines.append(f"| {op} | {rt} | {d['n']:,} | failed | - | - |")
                notes.append(f"- {op} / {rt} failed: {d['reason']}")
    if notes:
        lines += ["", "Failures:", ""] + notes
    return "\n".join(lines)


def _convert(cell: dict) -> dict:
    """A harness cell in this script's JSON shape (ns)."""
    if cell["status"] == "ok":
        d = {"status": "ok", "n": cell.get("n_iter"), "median_ns": round(cell["median"], 1),
             "min_ns": round(cell["min"], 1), "max_ns": round(cell["max"], 1), "samples_ns": cell["samples"]}
        r = cell.get("ratio_to_runc")
        d["ratio_to_runc"] = None if r is None else round(r, 2)
        return d
    if cell["status"] == "missing":
        return {"status": "missing", "reason": cell["reason"]}
    return {"status": "failed", "reason": cell["reason"], "n": cell.get("n_iter") or 0}


def main() -> None:
    from xcontainers.benchharness.experiments import Ctx, syscalls
    from xcontainers.benchharness.runtimes import discover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds one run's loop should take (default 0.4; 0.1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a fast pass: 1 repetition, short runs")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"subset of {','.join(RUNTIMES)}")
    ap.add_argument("--ops", default=",".join(OPS),
                    help=f"subset of {','.join(OPS)} (default), or of {','.join(EXTRA_OPS)}")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    reps = a.reps if a.reps is not None else (1 if a.quick else 5)
    target = a.target if a.target is not None else (0.1 if a.quick else 0.4)
    rts = [x for x in a.runtimes.split(",") if x]
    ops = [x for x in a.ops.split(",") if x]
    # xc, xc-trap and xc-nolibos also as NAME@TREE: another tree's build, side by side (an A/B)
    bad = [x for x in rts if x.partition("@")[0] not in RUNTIMES or ("@" in x and not x.startswith("xc"))]
    bad += [x for x in ops if x not in OPS + EXTRA_OPS]
    if bad or reps < 1 or target <= 0:
        ap.error(f"unknown runtime or op: {', '.join(bad)}" if bad else "--reps and --target must be > 0")
    command = " ".join(["bench/syscalls.py", *sys.argv[1:]])
    if a.json:
        a.json = os.path.abspath(a.json)
    in_private_mount_ns([sys.executable, *sys.argv])  # re-executes this script in a new mount namespace

    top = tempfile.mkdtemp(prefix="xc-bench-syscalls-")
    started = time.time()
    load_start = os.getloadavg()
    try:
        found = discover([HARNESS_NAME.get(r, r) for r in rts], top)
        ctx = Ctx(top=top, quick=a.quick, rts=found, reps=reps)
        e = syscalls(ctx, ops=ops, target=target)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    results = {m["name"]: {rt: _convert(m["cells"][HARNESS_NAME.get(rt, rt)]) for rt in rts} for m in e["metrics"]}
    info = {rt: found[HARNESS_NAME.get(rt, rt)] for rt in rts}
    out = {
        "experiment": "system call micro-benchmark (bench/syscall_bench.c), ns per op inside the container",
        "command": command, "reps": reps, "target_s": target,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "kernel": os.uname().release, "nproc": os.cpu_count(),
        "duration_s": round(time.time() - started, 1),
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "runtimes": {rt: {"binary": None if r.kind == "native" else r.binary,
                          "version": "-" if r.kind == "native" else r.version,
                          "status": "ok" if r.available else "missing"} for rt, r in info.items()},
        "ops": ops, "results": results,
    }
    print(f"# {command}  ({out['date']}, nproc {out['nproc']}, kernel {out['kernel']}, {reps} reps, "
          f"{out['duration_s']:.0f} s, load average {out['loadavg_start'][0]:.2f} at start, {out['loadavg_end'][0]:.2f} at end)")
    for rt, r in info.items():
        print(f"#   {rt:<7} {(r.binary or 'native') + '  ' + r.version if r.available else 'missing'}")
    print(_tables(results, ops, rts))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
