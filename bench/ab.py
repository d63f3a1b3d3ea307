#!/usr/bin/env python3
"""A/B of one server application between runtimes: the servers up side by
side, the client run against each in turn, repetition after repetition.

    bench/ab.py nginx --runtimes runc,xc --reps 10 [--conns 16] [--dur 3]
    bench/ab.py redis --runtimes runc,runc-seccomp,xc --reps 8
    bench/ab.py nginx --containers 10 --conns 4 --reps 3 [--runtime-cgroups]

Prints one line per run (req/s, p50, p99 and, for nginx, the server's CPU
time per request from /proc, user and system), then the medians and their
ratios to the first runtime's.  With --containers N (nginx), N servers per
runtime and min(N, 8) clients at once, one per server spread over them: the
total req/s, the clients' median p50 and p99.  Every container gets a cgroup
of its own below the root, as in `xc bench`; --runtime-cgroups leaves each
runtime's default instead (xc-runtime: /<id>, as runc's below its own cgroup).  A measurement, not a test; the `xc bench`
apps experiment is the full version (every runtime, memcached, a report).
Run as root from the repository root (.venv/bin/python bench/ab.py ...).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))

from xcontainers.benchharness.experiments import (Ctx, Server, _app_dir, _client,  # noqa: E402
                                                  nginx_argv, parse_redis_csv, parse_wrk, redis_argv)
from xcontainers.benchharness.runtimes import descendants, discover  # noqa: E402


def cpu_ticks(pids: set[int]) -> tuple[int, int]:
    user = system = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def run_once(app: str, srvs: list[Server], conns: int, dur: int) -> dict[str, dict[str, float]]:
    if app == "nginx":
        pids = descendants([s.pid for s in srvs])
        u0, s0 = cpu_ticks(pids)
        m = min(len(srvs), 8)
        clients = [subprocess.Popen(["wrk", "-t1", f"-c{conns}", f"-d{dur}s", "--latency",
                                     f"http://127.0.0.1:{srvs[(j * len(srvs)) // m].port}/index.html"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True) for j in range(m)]
        outs = [c.communicate(timeout=dur + 60)[0] for c in clients]
        u1, s1 = cpu_ticks(pids)
        each = [parse_wrk(out) for out in outs]
        r = {"req_s": sum(e["req_s"] for e in each),
             "p50_ms": statistics.median(e["p50_ms"] for e in each),
             "p99_ms": statistics.median(e["p99_ms"] for e in each)}
        n = r["req_s"] * dur
        tck = os.sysconf("SC_CLK_TCK")
        r["user_us"] = 1e6 * (u1 - u0) / tck / n
        r["sys_us"] = 1e6 * (s1 - s0) / tck / n
        return {"GET /": r}
    srv = srvs[0]
    out = _client(["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-c", str(conns),
                   "-n", "50000", "-t", "set,get", "--csv"], 300)
    return parse_redis_csv(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("app", choices=["nginx", "redis"])
    ap.add_argument("--runtimes", default="runc,xc")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--dur", type=int, default=3, help="seconds per nginx run")
    ap.add_argument("--containers", type=int, default=1, help="nginx servers per runtime")
    ap.add_argument("--runtime-cgroups", action="store_true",
                    help="each runtime's default cgroup instead of one of its own per container")
    a = ap.parse_args()
    if a.containers < 1 or (a.containers > 1 and a.app != "nginx"):
        raise SystemExit("ab: --containers takes a number >= 1, and more than 1 only for nginx")
    names = [x for x in a.runtimes.split(",") if x]
    top = tempfile.mkdtemp(prefix="xc-ab-")
    servers: dict[str, list[Server]] = {}
    runs: dict[str, list[dict[str, dict[str, float]]]] = {n: [] for n in names}
    try:
        try:
            rts = discover(names, top)
        except ValueError as e:
            raise SystemExit(f"ab: {e}") from None
        missing = [n for n in names if not rts[n].available]
        if missing:
            raise SystemExit(f"ab: not available: {', '.join(f'{n} ({rts[n].reason})' for n in missing)}")
        ctx = Ctx(top=top, quick=True, rts=rts)
        app_dir = _app_dir(ctx)  # the page nginx serves
        argv = nginx_argv(ctx) if a.app == "nginx" else redis_argv
        for n in names:
            servers[n] = []
            for _ in range(a.containers):
                servers[n].append(Server(ctx, rts[n], app_dir, argv, "ab", own_cgroup=not a.runtime_cgroups).start())
        for i in range(a.reps):
            for n in names:
                res = run_once(a.app, servers[n], a.conns, a.dur)
                runs[n].append(res)
                print(f"{i + 1:3d} {n:14s} " + "  ".join(
                    f"{op} {r['req_s']:9,.0f} req/s p50 {r['p50_ms']:.3f} p99 {r['p99_ms']:.3f}"
                    + (f" cpu {r['user_us']:.2f}+{r['sys_us']:.2f} us/req" if "user_us" in r else "")
                    for op, r in res.items()), flush=True)
    finally:
        for group in servers.values():
            for s in group:
                s.stop()
        shutil.rmtree(top, ignore_errors=True)
    base = names[0]
    for op in runs[base][0]:
        print(f"\n{op}: median over {a.reps} (ratio to {base})")
        ref = {k: statistics.median(r[op][k] for r in runs[base]) for k in ("req_s", "p99_ms")}
        for n in names:
            med = {k: statistics.median(r[op][k] for r in runs[n]) for k in ("req_s", "p50_ms", "p99_ms")}
            print(f"  {n:14s} {med['req_s']:9,.0f} req/s ({med['req_s'] / ref['req_s']:.2f}x)  "
                  f"p50 {med['p50_ms']:.3f}  p99 {med['p99_ms']:.3f} ({med['p99_ms'] / ref['p99_ms']:.2f}x)")


if __name__ == "__main__":
    main()
