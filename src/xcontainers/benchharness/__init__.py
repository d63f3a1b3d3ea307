"""`xc bench`: every experiment on every available runtime, interleaved, with
medians, min-max and ratios to runc, written as JSON, markdown and PNG charts.

    stats.py        pure statistics
    runtimes.py     runtime discovery and adapters (missing / failed)
    experiments.py  syscalls, fork, spawn, apps, memory, scalability
    report.py       results.json, report.md, charts
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

# `xc` imports this module for its parser: the rest is imported when a bench runs.

__all__ = ["add_arguments", "main", "run"]

DEFAULT_RUNTIMES = ["native", "runc", "runc-seccomp", "crun", "runsc", "uml", "xc-nolibos", "xc-trap", "xc"]
DEFAULT_EXPERIMENTS = ["syscalls", "fork", "spawn", "apps", "memory", "scalability", "abom"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="a short pass (under 2 minutes)")
    p.add_argument("--runtimes", default=",".join(DEFAULT_RUNTIMES),
                   help=f"comma-separated subset of {','.join(DEFAULT_RUNTIMES)}")
    p.add_argument("--experiments", default=",".join(DEFAULT_EXPERIMENTS),
                   help=f"comma-separated subset of {','.join(DEFAULT_EXPERIMENTS)}")
    p.add_argument("--reps", type=int, help="repetitions (overrides each experiment's default)")
    p.add_argument("-o", "--out", help="results folder (default ./xc-bench-results/DATE)")


def _machine() -> dict[str, Any]:
    import platform

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except OSError:
        mem = 0
    return {"cpu": cpu, "nproc": os.cpu_count(), "mem_total_mb": mem, "kernel": os.uname().release,
            "hostname": platform.node(), "python": platform.python_version()}


def run(a: argparse.Namespace, command: str) -> dict[str, str]:
    import shutil
    import tempfile
    import traceback

    from . import report
    from .experiments import EXPERIMENTS, Ctx
    from .runtimes import discover

    rnames = [x for x in a.runtimes.split(",") if x]
    enames = [x for x in a.experiments.split(",") if x]
    bad = [x for x in enames if x not in EXPERIMENTS]
    if bad:
        raise SystemExit(f"xc bench: unknown experiment(s) {', '.join(bad)} (known: {', '.join(EXPERIMENTS)})")
    out_dir = os.path.abspath(a.out or os.path.join("xc-bench-results", time.strftime("%Y%m%d-%H%M%S")))
    top = tempfile.mkdtemp(prefix="xc-bench-")
    started = time.time()
    machine = _machine()
    machine["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    try:
        try:
            rts = discover(rnames, top)
        except ValueError as e:
            raise SystemExit(f"xc bench: {e}") from None
        ctx = Ctx(top=top, quick=a.quick, rts=rts, reps=a.reps)
        results: dict[str, Any] = {}
        for en in enames:
            t = time.time()
            ctx.log(f"xc bench: {en} ...")
            try:
                results[en] = EXPERIMENTS[en](ctx)
            except Exception as e:  # the harness reports it and goes on with the next experiment
                results[en] = {"title": en, "error": f"{type(e).__name__}: {e}",
                               "traceback": traceback.format_exc()[-2000:]}
            results[en]["duration_s"] = round(time.time() - t, 1)
            ctx.log(f"xc bench: {en} done in {time.time() - t:.0f} s")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    machine["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    res = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "duration_s": round(time.time() - started, 1), "quick": a.quick, "machine": machine,
           "runtimes": {n: r.describe() for n, r in rts.items()}, "experiments": results}
    paths = report.write(res, out_dir)
    print(f"xc bench: results in {out_dir}", file=sys.stderr)
    return paths


def main(argv: list[str] | None = None) -> int:
    """`python -m xcontainers.benchharness ARGS` (what `xc bench` re-executes in its mount namespace)."""
    p = argparse.ArgumentParser(prog="xc bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    a = p.parse_args(argv)
    return cmd_bench(a)


def _argv(a: argparse.Namespace) -> list[str]:
    """The options of *a* as a command line (without --out)."""
    out = ["--quick"] if a.quick else []
    out += ["--runtimes", a.runtimes, "--experiments", a.experiments]
    if a.reps:
        out += ["--reps", str(a.reps)]
    return out


def cmd_bench(a: argparse.Namespace) -> int:
    """Re-executes itself in a private mount namespace (for crun), then runs."""
    from .runtimes import in_private_mount_ns

    if os.geteuid() != 0:
        sys.stderr.write("xc bench: needs root (containers)\n")
        return 1
    a.out = os.path.abspath(a.out or os.path.join("xc-bench-results", time.strftime("%Y%m%d-%H%M%S")))
    # exits in the parent; returns in the new namespace
    in_private_mount_ns([sys.executable, "-m", "xcontainers.benchharness", *_argv(a), "--out", a.out])
    paths = run(a, "xc bench " + " ".join(_argv(a)))
    print(paths["markdown"])
    return 0
