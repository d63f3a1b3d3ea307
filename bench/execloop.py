#!/usr/bin/env python3
"""A shell that runs a dynamically linked program again and again: what a
fork+exec of an ordinary (dynamic) program costs under each runtime.

One container per runtime and repetition (interleaved) runs busybox sh
    i=0; while [ $i -lt N ]; do /usr/bin/true; i=$((i+1)); done
with the host's /usr/bin/true and the libraries ldd names copied into a
busybox rootfs.  Reported per exec: CPU time (user + system of the runtime
and the container, from this process's RUSAGE_CHILDREN: other load on the
machine disturbs it less than the wall time) and, for an xc-runtime, the
traps and the sites the loader rewrote from ABOM's site cache (the LibOS's
statistics).  Medians over the repetitions, and the ratio to runc's.

    bench/execloop.py [-n EXECS] [--reps R] [--runtimes runc,PATH-TO-XC-RUNTIME,...]

(runc is /usr/sbin/runc or the first runc on PATH; any other name is the
path of an xc-runtime.)  A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from conftest import Bundle, build_busybox_rootfs  # noqa: E402

PROGRAM = "/usr/bin/true"


def libraries(prog: str) -> list[str]:
    out = subprocess.run(["ldd", prog], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/"):
                libs.append(p)
                break
    return libs


def rootfs(top: Path) -> Path:
    root = build_busybox_rootfs(top / "rootfs")
    for f in [PROGRAM, *libraries(PROGRAM)]:
        dest = root / f.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(f), dest)
    return root


def once(binary: str, top: Path, root: Path, n: int) -> dict[str, float]:
    stats = top / f"stats-{uuid.uuid4().hex[:8]}.json"
    b = Bundle(top / "bundle", root, ["/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do {PROGRAM}; i=$((i+1)); done"])
    b.config["root"] = {"path": str(root), "readonly": False}
    b.config["annotations"] = {"org.xcontainers.libos.stats": str(stats)}
    b.write()
    cid = f"xc-execloop-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    state = str(top / "state")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([binary, "--root", state, "run", "--bundle", str(top / "bundle"), cid],
                       capture_output=True, text=True, timeout=600)
    t1 = time.monotonic()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([binary, "--root", state, "delete", "--force", cid], capture_output=True)
    if p.returncode != 0:
        raise SystemExit(f"{binary}: exit {p.returncode}: {p.stderr.strip()}")
    res = {"cpu_us": (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / n * 1e6,
           "wall_us": (t1 - t0) / n * 1e6}
    if stats.exists():
        s = json.loads(stats.read_text())
        res["traps"] = s["trapped"] / n
        res["from_cache"] = s.get("sites_from_cache", 0) / n
        stats.unlink()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=300, help="execs per container (default 300)")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    ap.add_argument("--runtimes", default="runc", help="runc and/or paths of xc-runtime binaries")
    a = ap.parse_args()
    names = [x for x in a.runtimes.split(",") if x]
    binaries = {x: (shutil.which("runc") or "/usr/sbin/runc") if x == "runc" else os.path.abspath(x) for x in names}
    top = Path(tempfile.mkdtemp(prefix="xc-bench-execloop-"))
    started, load = time.time(), os.getloadavg()[0]
    try:
        root = rootfs(top)
        runs: dict[str, list[dict[str, float]]] = {x: [] for x in names}
        for _ in range(a.reps):
            for x in names:
                runs[x].append(once(binaries[x], top, root, a.n))
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"# bench/execloop.py {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
          f"{a.reps} reps of {a.n} execs of {PROGRAM}, load average {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end, {time.time() - started:.0f} s)")
    base = statistics.median(r["cpu_us"] for r in runs["runc"]) if "runc" in runs else None
    print("| runtime | CPU us/exec | wall us/exec | traps/exec | sites from the cache/exec |")
    print("|---|---:|---:|---:|---:|")
    for x in names:
        cpu = statistics.median(r["cpu_us"] for r in runs[x])
        wall = statistics.median(r["wall_us"] for r in runs[x])
        ratio = f" ({cpu / base:.2f}x)" if base else ""
        traps = f"{statistics.median(r['traps'] for r in runs[x]):.1f}" if "traps" in runs[x][0] else "-"
        cached = f"{statistics.median(r['from_cache'] for r in runs[x]):.1f}" if "from_cache" in runs[x][0] else "-"
        print(f"| {x} | {cpu:,.0f}{ratio} | {wall:,.0f} | {traps} | {cached} |")


if __name__ == "__main__":
    main()
