"""The paper's ABOM table: of the system calls an application makes, the share
that arrive through patched sites (function calls, no trap), measured by the
X-LibOS's own statistics while the application works.

nginx under wrk and redis under redis-benchmark are read live from the
running container (its init's statistics fd); python3, busybox sh and a
static Go program run to completion with the statistics written at exit
(annotation org.xcontainers.libos.stats).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from . import stats
from .experiments import (Ctx, RunFailed, Server, _client, _finish, nginx_argv, redis_argv)
from .runtimes import host_rootfs, write_bundle

ABOM_RUNTIMES = ("xc", "xc-trap")
PY_SCRIPT = """\
import json, os, subprocess, tempfile
d = tempfile.mkdtemp()
for i in range(300):
    p = os.path.join(d, "f%d" % i)
    with open(p, "w") as f:
        json.dump({"i": i}, f)
    with open(p) as f:
        json.load(f)
    os.stat(p); os.getpid()
subprocess.run(["true"])
print("python3 ok")
"""
SH_SCRIPT = ("i=0; while [ $i -lt 300 ]; do echo $i > /tmp/f; read x < /tmp/f; test -e /tmp/f; i=$((i+1)); done; "
             "ls / > /dev/null; cat /tmp/f > /dev/null; echo sh ok")
GO_SCRIPT = """\
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

func main() {
	dir, _ := os.MkdirTemp("", "g")
	var wg sync.WaitGroup
	total := 0
	var mu sync.Mutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				p := filepath.Join(dir, fmt.Sprintf("f%d-%d", g, i))
				os.WriteFile(p, []byte("hello"), 0o644)
				b, _ := os.ReadFile(p)
				st, _ := os.Stat(p)
				mu.Lock()
				total += len(b) + int(st.Size())
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	fmt.Println("go ok", total)
}
"""


def _share(st: dict[str, Any]) -> tuple[float, float]:
    total = st["total"]
    if not total:
        return 0.0, 0.0
    return 100.0 * st["by_path"]["patched"] / total, 100.0 * st["patched_served"] / total


def _live_stats(pid: int) -> dict[str, Any]:
    from ..libos import container_stats_fd, read_stats

    fd = container_stats_fd(pid)
    if fd < 0:
        raise RunFailed("no X-LibOS statistics in the container")
    try:
        return read_stats(fd)
    finally:
        os.close(fd)


def _go_binary(ctx: Ctx) -> str:
    out = os.path.join(ctx.top, "abom-go", "prog")
    if not os.path.exists(out):
        go = shutil.which("go")
        if go is None:
            raise RunFailed("go is not installed")
        d = os.path.dirname(out)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write("module abomcov\n\ngo 1.18\n")
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(GO_SCRIPT)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
        env.update(CGO_ENABLED="0", GOPROXY="off", GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
                   GOCACHE=os.path.join(d, "cache"), GOPATH=os.path.join(d, "gopath"), HOME=d)
        r = subprocess.run([go, "build", "-o", out, "."], cwd=d, env=env, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RunFailed(f"go build: {r.stderr.strip()[-300:]}")
    return out


def _run_once(ctx: Ctx, rt, app: str) -> dict[str, Any]:
    """python3 / sh / go to completion on *rt*; the statistics it left."""
    path = os.path.join(ctx.top, f"abom-stats-{app}-{rt.slug}.json")
    binds: list[str] = []
    if app == "busybox sh":
        rootfs, args = ctx.bb_rootfs(), ["/bin/sh", "-c", SH_SCRIPT]
    else:
        rootfs = ctx.__dict__.get("_host_rootfs") or host_rootfs(os.path.join(ctx.top, "host-rootfs"))
        ctx.__dict__["_host_rootfs"] = rootfs
        if app == "python3":
            script = os.path.join(ctx.top, "abom-py", "script.py")
            os.makedirs(os.path.dirname(script), exist_ok=True)
            with open(script, "w") as f:
                f.write(PY_SCRIPT)
            args, binds = ["/usr/bin/python3", script], [os.path.dirname(script)]
        else:
            prog = _go_binary(ctx)
            args, binds = [prog], [os.path.dirname(prog)]
    bundle = write_bundle(os.path.join(ctx.top, f"b-abom-{app.replace(' ', '-')}-{rt.slug}"), rootfs, args, rt,
                          host_dirs=app != "busybox sh", binds=binds)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    spec.setdefault("annotations", {})["org.xcontainers.libos.stats"] = path
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    c = rt.run(bundle, rt.new_id("abom"))
    if " ok" not in c.out:
        raise RunFailed(f"unexpected output: {c.out.strip()[-200:]!r}")
    with open(path) as f:
        return json.load(f)


def _serve(ctx: Ctx, rt, app: str) -> dict[str, Any]:
    """nginx under wrk, redis under redis-benchmark, on *rt*; the statistics read live."""
    dur = 2 if ctx.quick else 5
    argv = nginx_argv(ctx) if app == "nginx" else redis_argv
    srv = Server(ctx, rt, os.path.join(ctx.top, "app"), argv, f"abom-{app}").start()
    try:
        if app == "nginx":
            _client(["wrk", "-t1", "-c16", f"-d{dur}s", f"http://127.0.0.1:{srv.port}/index.html"], dur + 60)
        else:
            _client(["redis-benchmark", "-h", "127.0.0.1", "-p", str(srv.port), "-c", "16",
                     "-n", "10000" if ctx.quick else "50000", "-t", "set,get", "-q"], 300)
        return _live_stats(srv.pid)
    finally:
        srv.stop()


APPS = {"nginx (wrk)": ("nginx", _serve), "redis (redis-benchmark)": ("redis", _serve),
        "python3 script": ("python3", _run_once), "busybox sh script": ("busybox sh", _run_once),
        "static Go program": ("go", _run_once)}


def abom(ctx: Ctx) -> dict[str, Any]:
    avail = [r for r in ctx.avail if r.name in ABOM_RUNTIMES]
    metrics: list[dict] = []
    notes = ["Share of all system calls the application made (trapped + patched) that came through patched "
             "sites, and the share the LibOS answered itself; counted by the X-LibOS's statistics segment. "
             "Only xcontainers' LibOS modes have these counters.",
             "nginx: 1 worker under wrk -t1 -c16; redis under redis-benchmark -c 16 -t set,get; python3: a script "
             "writing, reading and stat-ing 300 JSON files and running `true`; busybox sh: a 300-iteration "
             "loop of echo/read/test; Go (CGO_ENABLED=0): 4 goroutines writing, reading and stat-ing 200 "
             "files each."]
    detail: dict[str, dict[str, Any]] = {}
    for label, (app, fn) in APPS.items():
        cells_share = ctx.missing_cells({r.name for r in avail})
        cells_served = dict(cells_share)
        cells_sites = dict(cells_share)
        for rt in avail:
            try:
                st = fn(ctx, rt, app)
            except (RunFailed, OSError) as e:
                for c in (cells_share, cells_served, cells_sites):
                    c[rt.name] = stats.failed(str(e))
                continue
            share, served = _share(st)
            cells_share[rt.name] = stats.summarize([share], total_calls=st["total"])
            cells_served[rt.name] = stats.summarize([served])
            cells_sites[rt.name] = stats.summarize([st["sites_patched"]], refused=st["sites_refused"],
                                                   verdicts=st["sites_by"])
            if rt.name == "xc":
                top_traps = dict(list(sorted(st["traps"].items(), key=lambda kv: -kv[1]))[:6])
                detail[label] = {"total": st["total"], "patched": st["by_path"]["patched"],
                                 "verdicts": st["sites_by"], "most trapped": top_traps}
            ctx.log(f"abom: {label} on {rt.name}: {share:.1f}% patched of {st['total']} calls")
        metrics.append({"name": f"{label}: patched share", "unit": "%", "higher_is_better": True,
                        "cells": cells_share})
        metrics.append({"name": f"{label}: answered in the LibOS", "unit": "%", "higher_is_better": True,
                        "cells": cells_served})
        metrics.append({"name": f"{label}: sites patched", "unit": "sites", "higher_is_better": True,
                        "cells": cells_sites})
    for label, d in detail.items():
        notes.append(f"{label} on xc: {d['patched']} of {d['total']} calls patched; site verdicts "
                     f"{d['verdicts']}; most trapped {d['most trapped']}")
    return {"title": "ABOM: system calls that became function calls", "unit": "%", "higher_is_better": True,
            "reps": 1, "notes": notes, "metrics": _finish(metrics), "no_ratio": True}
