#!/usr/bin/env python3
"""N idle containers held at once: memory per container, up to N=1000.

A thin wrapper over the `xc bench` harness (experiments.idle_many, which
the `memory` experiment runs at N=10 and 100).  For each N, each runtime in
turn starts N containers running busybox `sleep 3600` (detached, one cgroup
each, no network), waits, then reports:

    PSS per container       the PSS (/proc/PID/smaps_rollup) of every process
                            of the N containers (and any new process running
                            the runtime's binary), summed, divided by N
    MemAvailable per cont.  the drop of /proc/meminfo's MemAvailable while
                            they run, divided by N (kernel memory too:
                            namespaces, page tables, cgroups; anything else
                            the machine did meanwhile shows up here as well)
    start s                 seconds to start the N, one after another

then deletes them (8 at a time).  Before starting, it prints what could
limit N on this host (pids, open files, memory).

    bench/idle.py [--n 1,10,100,1000] [--runtimes runc,crun,xc] [--json FILE]

A benchmark, not a test: it asserts nothing about the numbers.  N=1000
takes a few minutes per runtime.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from xcontainers.benchharness.runtimes import ALL, ALIASES, in_private_mount_ns  # noqa: E402


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "?"


def limits() -> list[str]:
    """What bounds the number of containers here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with open("/proc/meminfo") as f:
        mem = {ln.split(":")[0]: ln.split()[1] for ln in f}
    return [f"pid_max {_read('/proc/sys/kernel/pid_max')}, threads-max {_read('/proc/sys/kernel/threads-max')}",
            f"open files of this process {soft} (hard {hard}); file-max {_read('/proc/sys/fs/file-max')}",
            f"user.max_net_namespaces {_read('/proc/sys/user/max_net_namespaces')}, "
            f"user.max_mnt_namespaces {_read('/proc/sys/user/max_mnt_namespaces')}, "
            f"user.max_pid_namespaces {_read('/proc/sys/user/max_pid_namespaces')}",
            f"MemAvailable {int(mem.get('MemAvailable', 0)) // 1024} MB"]


def main() -> None:
    from xcontainers.benchharness.experiments import Ctx, idle_many
    from xcontainers.benchharness.runtimes import RunFailed, discover

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="1,10,100,1000", help="numbers of containers, comma-separated")
    ap.add_argument("--runtimes", default="runc,crun,xc", help=f"subset of {','.join(ALL)} (or xc@TREE)")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds to wait before measuring")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    try:
        ns = [int(x) for x in a.n.split(",") if x]
    except ValueError:
        ap.error(f"--n: {a.n!r} is not a list of numbers")
    rts = [ALIASES.get(x, x) for x in a.runtimes.split(",") if x]
    bad = [x for x in rts if x.partition("@")[0] not in ALL or x == "uml"]
    if bad or not ns or min(ns) < 1:
        ap.error(f"unknown runtime: {', '.join(bad)}" if bad else "--n must be numbers >= 1")
    command = " ".join(["bench/idle.py", *sys.argv[1:]])
    if a.json:
        a.json = os.path.abspath(a.json)
    in_private_mount_ns([sys.executable, *sys.argv])  # for crun; returns in the new namespace

    print(f"# {command}  ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, kernel {os.uname().release})")
    for line in limits():
        print(f"#   {line}")
    top = tempfile.mkdtemp(prefix="xc-bench-idle-")
    res: dict[str, dict[str, dict]] = {}
    try:
        found = discover(rts, top)
        ctx = Ctx(top=top, quick=False, rts=found)
        rootfs = ctx.bb_rootfs()
        for n in ns:
            for rt in found.values():
                if not rt.available:
                    res.setdefault(str(n), {})[rt.name] = {"missing": rt.reason}
                    continue
                try:
                    r = idle_many(ctx, rt, rootfs, n, a.settle, log=ctx.log)
                except (RunFailed, OSError) as e:
                    r = {"failed": str(e)}
                res.setdefault(str(n), {})[rt.name] = r
                ctx.log(f"idle: N={n} {rt.name}: {r}")
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print("\n| N | runtime | PSS per container MB | MemAvailable drop per container MB | start s |")
    print("|---:|---|---:|---:|---:|")
    for n, by in res.items():
        for name, r in by.items():
            if "pss_mb" in r:
                print(f"| {n} | {name} | {r['pss_mb']:.3f} | {r['avail_mb']:.3f} | {r['start_s']:.1f} |")
            else:
                print(f"| {n} | {name} | {r.get('failed') or 'missing: ' + r.get('missing', '')} | - | - |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"command": command, "limits": limits(), "results": res}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
