"""The experiments.  Each one runs on every available runtime, interleaved
(for each repetition, for each runtime: A B C A B C ...), on the same rootfs
and binaries, and returns

    {"title": ..., "unit": ..., "higher_is_better": bool, "notes": [...],
     "metrics": [{"name": ..., "unit": ..., "higher_is_better": ..., "cells": {runtime: cell}}]}

where a cell is ok (median, min, max, samples, ratio to runc), failed (with the
reason) or missing (with the reason); see stats.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from . import stats
from .runtimes import (RunFailed, Runtime, busybox_rootfs, descendants, host_rootfs, pids_with_exe, pss_kb,
                       write_bundle, write_init, _kill_group, _tail)

__all__ = ["EXPERIMENTS", "Ctx", "OPS", "EXTRA_OPS", "syscalls", "fork", "spawn", "apps", "memory", "scalability"]

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SYSCALL_SOURCE = os.path.join(REPO, "bench", "syscall_bench.c")
GUEST_BIN = "/bin/syscall_bench"
OPS = ["getppid", "getpid", "trapsite", "gettid", "getrandom", "uname", "write1", "read1", "openclose", "stat", "pipe", "fork", "forkexec"]
# Not run by default: the calls the exokernel interface translates (bench/syscalls.py --ops).
EXTRA_OPS = ["fstat", "pread1", "readv1", "epollwait0", "unixdgram", "rawclock", "openwrite"]
# Rough ns per op in a plain container, only to size the calibration round.
EST_NS = {"getppid": 1000, "getpid": 1000, "trapsite": 1000, "gettid": 1000, "getrandom": 1000, "uname": 1500,
          "write1": 1000, "read1": 1000, "openclose": 3000,
          "stat": 2000, "pipe": 10000, "fork": 150_000, "forkexec": 600_000,
          "fstat": 1000, "pread1": 1000, "readv1": 1000, "epollwait0": 1000, "unixdgram": 3000, "rawclock": 1000,
          "openwrite": 3000}
EST_FACTOR = {"native": 1, "runc": 1, "runc-seccomp": 1, "crun": 1, "xc-nolibos": 1, "xc": 6, "runsc": 40, "uml": 40}
N_MIN, N_MAX = 5, 5_000_000


@dataclass
class Ctx:
    top: str                     # scratch directory, removed afterwards
    quick: bool
    rts: dict[str, Runtime]      # every runtime asked for, available or not
    reps: int | None = None      # overrides the default repetitions
    log: Callable[[str], None] = field(default=lambda m: print(m, file=sys.stderr, flush=True))
    _bb: str | None = None

    @property
    def avail(self) -> list[Runtime]:
        return [r for r in self.rts.values() if r.available]

    def missing_cells(self, only: set[str] | None = None, why: dict[str, str] | None = None) -> dict[str, dict]:
        out = {}
        for r in self.rts.values():
            if not r.available:
                out[r.name] = stats.missing(r.reason)
            elif only is not None and r.name not in only:
                out[r.name] = stats.missing((why or {}).get(r.name, "not supported by this experiment"))
        return out

    def bb_rootfs(self) -> str:
        """busybox-static plus the syscall benchmark (static), for every runtime."""
        if self._bb is None:
            root = busybox_rootfs(os.path.join(self.top, "bb-rootfs"))
            out = os.path.join(root, GUEST_BIN.lstrip("/"))
            r = subprocess.run(["gcc", "-O2", "-static", "-o", out, SYSCALL_SOURCE], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"gcc failed: {r.stderr.strip()[-500:]}")
            self._bb = root
        return self._bb


def _finish(metrics: list[dict]) -> list[dict]:
    for m in metrics:
        stats.add_ratios(m["cells"])
    return metrics


def _nice(n: float) -> int:
    """n rounded to two significant digits, within [N_MIN, N_MAX]."""
    n = max(N_MIN, min(N_MAX, int(n)))
    digits = len(str(n))
    if digits > 2:
        q = 10 ** (digits - 2)
        n = round(n / q) * q
    return max(N_MIN, min(N_MAX, n))


# --- syscalls ---------------------------------------------------------------------------------


def parse_syscall_result(out: str, op: str, n: int) -> dict[str, Any] | None:
    """The last result line of `syscall_bench OP N` in *out*, as a dict."""
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        i = line.find("{")
        if i < 0:
            continue
        try:
            d = json.loads(line[i:])
        except ValueError:
            continue
        if d.get("op") == op and d.get("n") == n and isinstance(d.get("ns_per_op"), (int, float)):
            return d
    return None


def parse_syscall_line(out: str, op: str, n: int) -> float | None:
    d = parse_syscall_result(out, op, n)
    return None if d is None else float(d["ns_per_op"])


class SyscallRunner:
    """One run of `syscall_bench OP N` on a runtime: ns per op, or RunFailed."""

    def __init__(self, ctx: Ctx):
        self.ctx, self.rootfs = ctx, ctx.bb_rootfs()

    def run(self, rt: Runtime, op: str, n: int, timeout: float = 180) -> float:
        return float(self.result(rt, op, n, timeout)["ns_per_op"])

    def result(self, rt: Runtime, op: str, n: int, timeout: float = 180) -> dict[str, Any]:
        """The whole result line (fork and forkexec carry their breakdown)."""
        if rt.kind == "native":
            try:
                r = subprocess.run([os.path.join(self.rootfs, GUEST_BIN.lstrip("/")), op, str(n)],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise RunFailed(f"timed out after {timeout:.0f} s (n={n})") from None
            if r.returncode != 0:
                raise RunFailed(f"exit status {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
            out = r.stdout
        else:
            bundle = write_bundle(os.path.join(self.ctx.top, f"sb-{rt.slug}"), self.rootfs,
                                  [GUEST_BIN, op, str(n)], rt)
            out = rt.run(bundle, rt.new_id(f"sb-{op}"), timeout=timeout).out
        d = parse_syscall_result(out, op, n)
        if d is None:
            raise RunFailed(f"no result line in the output: {out.strip()[-300:]!r}")
        return d

    def uml_batch(self, rt: Runtime, plan: dict[str, int]) -> dict[str, float | str]:
        """One UML boot running every op of *plan*: op -> ns, or op -> why it failed."""
        lines = ["#!/bin/sh", "/bin/busybox mount -t proc proc /proc"]
        for op, n in plan.items():
            lines.append(f"{GUEST_BIN} {op} {n} || echo XCFAIL {op} $?")
        lines.append("/bin/busybox poweroff -f")
        try:
            c = rt.boot(self.rootfs, "\n".join(lines) + "\n", timeout=600)
        except RunFailed as e:
            return {op: str(e) for op in plan}
        res: dict[str, float | str] = {}
        for op, n in plan.items():
            ns = parse_syscall_line(c.out, op, n)
            res[op] = ns if ns is not None else f"no result line in the guest's console: {c.out.strip()[-300:]!r}"
        return res


def syscalls(ctx: Ctx, ops: list[str] | None = None, target: float | None = None) -> dict[str, Any]:
    ops = ops or OPS
    reps = ctx.reps or (1 if ctx.quick else 5)
    target = target or (0.1 if ctx.quick else 0.4)
    runner = SyscallRunner(ctx)
    avail = ctx.avail
    n_of: dict[tuple[str, str], int] = {}
    samples: dict[tuple[str, str], list[float]] = {(op, r.name): [] for op in ops for r in avail}
    failed: dict[tuple[str, str], str] = {}
    t0 = time.time()
    for rnd in range(reps + 1):  # round 0: warm-up and calibration, discarded
        uml_res: dict[str, dict] = {}
        for op in ops:
            for rt in avail:
                key = (op, rt.name)
                if key in failed:
                    continue
                n = n_of.get(key) or _nice(target / 4 * 1e9 / (EST_NS[op] * EST_FACTOR.get(rt.name, 1)))
                if rt.kind == "uml":
                    if rt.name not in uml_res:
                        plan = {o: n_of.get((o, rt.name)) or _nice(target / 4 * 1e9 / (EST_NS[o] * EST_FACTOR["uml"]))
                                for o in ops if (o, rt.name) not in failed}
                        uml_res[rt.name] = runner.uml_batch(rt, plan)
                    v = uml_res[rt.name].get(op, "not run")
                    ns, why = (v, None) if isinstance(v, float) else (None, v)
                else:
                    try:
                        ns, why = runner.run(rt, op, n), None
                    except RunFailed as e:
                        ns, why = None, str(e)
                if ns is None:
                    failed[key] = f"({'calibration run' if rnd == 0 else f'repetition {rnd}'}, n={n}) {why}"
                elif rnd == 0:
                    n_of[key] = _nice(target * 1e9 / ns)
                else:
                    samples[key].append(ns)
        ctx.log(f"syscalls: round {rnd}/{reps} done ({time.time() - t0:.0f} s)")
    metrics = []
    for op in ops:
        cells = ctx.missing_cells()
        for rt in avail:
            key = (op, rt.name)
            cells[rt.name] = (stats.failed(failed[key], n_iter=n_of.get(key)) if key in failed
                              else stats.summarize(samples[key], n_iter=n_of.get(key)))
        metrics.append({"name": op, "unit": "ns/op", "higher_is_better": False, "cells": cells})
    return {"title": "System call micro-benchmarks (bench/syscall_bench.c, ns per op inside the container)",
            "unit": "ns/op", "higher_is_better": False, "reps": reps, "target_s": target,
            "notes": ["Each run times its own loop with clock_gettime (vDSO): container start-up is not in the "
                      "numbers. A discarded first round sizes N so one run takes about the target time.",
                      "uml: one boot per round runs every op (guest init script); the guest's clock."],
            "metrics": _finish(metrics)}


# --- fork -------------------------------------------------------------------------------------


# (key in syscall_bench's line, metric name, unit): what a fork and a fork+exec cost, and why.
FORK_METRICS = {
    "fork": [("ns_per_op", "fork", "ns/op"), ("cpu_ns_per_op", "fork: CPU time", "ns/op"),
             ("minflt_child", "fork: minor faults per child", "faults"),
             ("minflt_self", "fork: minor faults in the parent per fork", "faults"),
             ("child_pte_kb", "fork: child's page tables at rest (VmPTE)", "kB"),
             ("child_minflt", "fork: child's minor faults at rest", "faults"),
             ("pte_kb", "parent's page tables (VmPTE)", "kB"), ("maps", "parent's mappings", "mappings"),
             ("fdsize", "parent's fd table (FDSize)", "fds")],
    "forkexec": [("ns_per_op", "fork+exec", "ns/op"), ("cpu_ns_per_op", "fork+exec: CPU time", "ns/op"),
                 ("minflt_child", "fork+exec: minor faults per child (both images)", "faults"),
                 ("child_pte_kb", "exec: new image's page tables at rest (VmPTE)", "kB"),
                 ("child_maps", "exec: new image's mappings", "mappings"),
                 ("child_minflt", "exec: new image's minor faults at rest (fork's too)", "faults")],
}


def fork(ctx: Ctx, target: float | None = None) -> dict[str, Any]:
    """fork and fork+exec, with what they cost in page faults, page tables,
    mappings and fd table: the process model's price, side by side."""
    reps = ctx.reps or (1 if ctx.quick else 7)
    target = target or (0.1 if ctx.quick else 0.3)
    runner = SyscallRunner(ctx)
    avail = [r for r in ctx.avail if r.kind in ("native", "oci")]
    n_of: dict[tuple[str, str], int] = {}
    samples: dict[tuple[str, str, str], list[float]] = {}
    failed: dict[tuple[str, str], str] = {}
    t0 = time.time()
    for rnd in range(reps + 1):  # round 0: warm-up and calibration, discarded
        for op in FORK_METRICS:
            for rt in avail:
                key = (op, rt.name)
                if key in failed:
                    continue
                n = n_of.get(key) or _nice(target / 4 * 1e9 / (EST_NS[op] * EST_FACTOR.get(rt.name, 1)))
                try:
                    d = runner.result(rt, op, n)
                except RunFailed as e:
                    failed[key] = f"({'calibration run' if rnd == 0 else f'repetition {rnd}'}, n={n}) {e}"
                    continue
                if rnd == 0:
                    n_of[key] = _nice(target * 1e9 / float(d["ns_per_op"]))
                    continue
                for k, _name, _unit in FORK_METRICS[op]:
                    if isinstance(d.get(k), (int, float)) and d[k] >= 0:
                        samples.setdefault((op, k, rt.name), []).append(float(d[k]))
        ctx.log(f"fork: round {rnd}/{reps} done ({time.time() - t0:.0f} s)")
    metrics = []
    for op, specs in FORK_METRICS.items():
        for k, name, unit in specs:
            cells = ctx.missing_cells({r.name for r in avail}, {"uml": "not an OCI runtime: no process to look at"})
            for rt in avail:
                cells[rt.name] = (stats.failed(failed[(op, rt.name)], n_iter=n_of.get((op, rt.name)))
                                  if (op, rt.name) in failed
                                  else stats.summarize(samples.get((op, k, rt.name), []), n_iter=n_of.get((op, rt.name))))
            metrics.append({"name": name, "unit": unit, "higher_is_better": False, "cells": cells})
    return {"title": "fork and fork+exec: time, page faults, page tables, mappings, fd table",
            "unit": "mixed", "higher_is_better": False, "reps": reps, "target_s": target,
            "notes": ["bench/syscall_bench.c `fork` (fork, _exit in the child, waitpid) and `forkexec` (fork, "
                      "execve of the same static binary, which exits at once, waitpid), interleaved across runtimes; "
                      "a discarded first round sizes N so one run takes about the target time.",
                      "CPU time: user and system time of the parent and its children over the timed loop, per "
                      "op (getrusage), which other load on the machine disturbs less than the time. "
                      "Minor faults per op from getrusage over the timed loop (RUSAGE_CHILDREN: for fork+exec "
                      "both images of the child). After the loop one child is looked at from the parent while it "
                      "waits: right after its fork (blocked in a read), or after it executed the benchmark again "
                      "(blocked likewise): its VmPTE, mappings and minor faults so far (/proc/PID/status, maps, stat).",
                      "The parent's own VmPTE, mappings and FDSize are read after the loop."],
            "metrics": _finish(metrics)}


# --- spawn ------------------------------------------------------------------------------------


UML_TRUE = "#!/bin/sh\n/bin/true\n/bin/busybox poweroff -f\n"


def spawn(ctx: Ctx) -> dict[str, Any]:
    reps = ctx.reps or (5 if ctx.quick else 30)
    warm = 1 if ctx.quick else 2
    uml_reps = min(reps, 3 if ctx.quick else 10)
    rootfs = ctx.bb_rootfs()
    avail = ctx.avail
    bundles = {rt.name: write_bundle(os.path.join(ctx.top, f"spawn-{rt.slug}"), rootfs, ["/bin/true"], rt)
               for rt in avail if rt.kind == "oci"}
    samples: dict[str, list[float]] = {rt.name: [] for rt in avail}
    failed: dict[str, str] = {}
    for i in range(reps + warm):
        for rt in avail:
            if rt.name in failed or (rt.kind == "uml" and i >= uml_reps + warm):
                continue
            try:
                if rt.kind == "native":
                    t = time.perf_counter()
                    r = subprocess.run([os.path.join(rootfs, "bin", "true")], stdin=subprocess.DEVNULL)
                    dt = time.perf_counter() - t
                    if r.returncode:
                        raise RunFailed(f"exit status {r.returncode}")
                elif rt.kind == "uml":
                    dt = rt.boot(rootfs, UML_TRUE, timeout=120).seconds
                else:
                    dt = rt.run(bundles[rt.name], rt.new_id("spawn"), timeout=120).seconds
            except RunFailed as e:
                failed[rt.name] = f"(run {i + 1}) {e}"
                continue
            if i >= warm:
                samples[rt.name].append(dt * 1000)
    cells = ctx.missing_cells()
    for rt in avail:
        cells[rt.name] = stats.failed(failed[rt.name]) if rt.name in failed else stats.summarize(samples[rt.name])
    breakdown = _spawn_breakdown(ctx, bundles, max(3, reps // 2))
    return {"title": "Spawn time: /bin/true start to exit (ms)", "unit": "ms", "higher_is_better": False,
            "reps": reps, "notes": [f"{warm} warm-up round(s) discarded; uml (a full boot and power-off of the "
                                    f"guest, init running /bin/true) {uml_reps} repetitions.",
                                    "native: fork+exec of busybox true from Python.",
                                    "The phase rows (xc-runtime only, from its XC_TIMING marks, separate runs "
                                    "after the timed ones): " + "; ".join(f"{n}: {d}" for n, _, d in SPAWN_PHASES)],
            "metrics": _finish([{"name": "/bin/true", "unit": "ms", "higher_is_better": False, "cells": cells},
                                *breakdown])}


# xc-runtime's marks (xcontainers.points) in the order a `run` passes them;
# each phase is the time from the previous mark (the first: from the moment
# the runtime was started) to its own.
SPAWN_PHASES = [
    ("interpreter", "interpreter", "Python's start-up until the runtime's main()"),
    ("imports", "imports", "arguments and the runtime's modules"),
    ("config", "config", "config.json read and checked"),
    ("reserved", "state", "the state directory and its first state.json"),
    ("cgroup", "cgroup", "LibOS image and statistics fds, the cgroup made and its limits set"),
    ("namespaces", "namespaces", "the setup process forked, namespaces made"),
    ("joined", "cgroup move", "the init forked and moved into the cgroup, state saved"),
    ("mounts", "mounts", "the rootfs's mounts"),
    ("init", "init", "pivot_root, hostname, credentials, rlimits, no_new_privs"),
    ("created", "created", "the runtime's side of create: hooks, state saved"),
    ("exec", "start", "start: the init released through exec.fifo, up to its execve"),
    ("exited", "program", "the LibOS loaded, the program run and reaped"),
    ("killed", "delete: kill", "delete: the container's processes killed and waited for"),
    ("cgroup-removed", "delete: cgroup", "delete: the cgroup removed"),
    ("deleted", "delete: state", "delete: the state removed"),
    ("end", "end", "the runtime's last step"),
    ("", "exit", "from the last mark until the runtime's exit is seen"),
]


def _spawn_breakdown(ctx: Ctx, bundles: dict[str, str], reps: int) -> list[dict[str, Any]]:
    """Per-phase medians of `xc-runtime run` from its XC_TIMING marks."""
    xcs = [rt for rt in ctx.avail if rt.kind == "oci" and rt.name.startswith("xc")]
    per: dict[str, dict[str, list[float]]] = {rt.name: {label: [] for _, label, _ in SPAWN_PHASES} for rt in xcs}
    failed: dict[str, str] = {}
    marks_file = os.path.join(ctx.top, "spawn-marks")
    for _ in range(reps):
        for rt in xcs:
            if rt.name in failed:
                continue
            try:
                os.unlink(marks_file)
            except FileNotFoundError:
                pass
            try:
                c = rt.run(bundles[rt.name], rt.new_id("phases"), timeout=120,
                           env={**os.environ, "XC_TIMING": marks_file})
                with open(marks_file) as f:
                    marks = {name: int(t) / 1e9 for name, t in (line.split() for line in f)}
            except (RunFailed, OSError, ValueError) as e:
                failed[rt.name] = f"phase marks: {e}"
                continue
            prev = c.t0
            for name, label, _ in SPAWN_PHASES:
                t = marks.get(name, c.t0 + c.seconds) if name else c.t0 + c.seconds
                if name and name not in marks:
                    failed[rt.name] = f"no {name!r} mark"
                    break
                per[rt.name][label].append((t - prev) * 1000)
                prev = t
    metrics = []
    for _, label, _ in SPAWN_PHASES:
        cells = {name: stats.missing("no phase marks (only xc-runtime writes them)") for name in ctx.rts}
        for rt in xcs:
            cells[rt.name] = stats.failed(failed[rt.name]) if rt.name in failed else stats.summarize(per[rt.name][label])
        metrics.append({"name": f"phase: {label}", "unit": "ms", "higher_is_better": False, "cells": cells})
    return metrics


# --- servers ------------------------------------------------------------------------------------


NGINX_CONF = """
user root root;
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/cb; proxy_temp_path {tmp}/pt; fastcgi_temp_path {tmp}/ft;
    uwsgi_temp_path {tmp}/ut; scgi_temp_path {tmp}/st;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
"""
SERVER_CAPS = ["CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE"]
UML_NO_NET = "UML guest has no network device here (needs a TAP or slirp set-up): no loopback server to measure"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, alive: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not alive():
            raise RunFailed(f"the server exited before listening on 127.0.0.1:{port}")
        time.sleep(0.05)
    raise RunFailed(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


class Server:
    """One server process tree on 127.0.0.1:port, natively or in a container."""

    def __init__(self, ctx: Ctx, rt: Runtime, app: str, argv_of: Callable[[str, int], list[str]], tag: str,
                 own_cgroup: bool = True):
        self.ctx, self.rt, self.app, self.tag, self.own_cgroup = ctx, rt, app, tag, own_cgroup
        self.port = free_port()
        self.cid: str | None = None
        self.proc: subprocess.Popen | None = None
        self.pid = 0
        self.log = os.path.join(ctx.top, f"{tag}-{rt.slug}-{self.port}.log")
        if rt.kind == "native":
            # unique: a port can come back later in the run (a fixed name made native fail at N=100)
            tmp = tempfile.mkdtemp(prefix=f"native-tmp-{self.port}-", dir=ctx.top)
            self.argv = argv_of(tmp, self.port)
        else:
            self.argv = argv_of("/tmp", self.port)

    def start(self) -> "Server":
        if self.rt.kind == "native":
            with open(self.log, "ab") as f:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                             start_new_session=True)
            self.pid = self.proc.pid
            alive = lambda: self.proc.poll() is None  # noqa: E731
        else:
            rootfs = self.ctx.__dict__.setdefault("_host_rootfs", None) or host_rootfs(os.path.join(self.ctx.top, "host-rootfs"))
            self.ctx.__dict__["_host_rootfs"] = rootfs
            bundle = write_bundle(os.path.join(self.ctx.top, f"b-{self.tag}-{self.rt.slug}-{self.port}"), rootfs,
                                  self.argv, self.rt, hostnet=True, host_dirs=True, binds=[self.app],
                                  caps=SERVER_CAPS, own_cgroup=self.own_cgroup)
            self.cid = self.rt.new_id(self.tag)
            self.pid = self.rt.start(bundle, self.cid, self.log, net="host")
            alive = lambda: _alive(self.pid)  # noqa: E731
        try:
            wait_port(self.port, alive)
        except RunFailed as e:
            self.stop()
            raise RunFailed(f"{e}; server log: {_tail(self.log)}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc)
            self.proc = None
        if self.cid is not None:
            self.rt.delete(self.cid)
            self.cid = None


def _app_dir(ctx: Ctx) -> str:
    app = os.path.join(ctx.top, "app")
    if not os.path.isdir(app):
        os.makedirs(os.path.join(app, "www"))
        with open(os.path.join(app, "www", "index.html"), "w") as f:
            f.write("<html><head><title>xc bench</title></head><body>" + "<p>xcontainers</p>" * 30 + "</body></html>\n")
    return app


def nginx_argv(ctx: Ctx) -> Callable[[str, int], list[str]]:
    app = _app_dir(ctx)
    nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin") or "/usr/sbin/nginx"

    def argv(tmp: str, port: int) -> list[str]:
        conf = os.path.join(app, f"nginx-{port}.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, www=os.path.join(app, "www")))
        return [nginx, "-e", "stderr", "-p", tmp + "/", "-c", conf]
    return argv


def redis_argv(tmp: str, port: int) -> list[str]:
    return [shutil.which("redis-server") or "/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--save", "", "--appendonly", "no", "--dir", tmp, "--protected-mode", "no"]


def memcached_argv(tmp: str, port: int) -> list[str]:
    return [shutil.which("memcached") or "/usr/bin/memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(port),
            "-U", "0", "-t", "1", "-m", "64"]


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """req/s and latency p50/p99 (ms) from `wrk --latency`."""
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise RunFailed(f"unexpected wrk output: {out.strip()[-300:]!r}")
    errs = re.search(r"Non-2xx or 3xx responses:\s*(\d+)|Socket errors:.*", out)
    if errs and errs.group(1):
        raise RunFailed(f"wrk: {errs.group(0).strip()}")
    return {"req_s": float(rps.group(1)), "p50_ms": _ms(p50.group(1)), "p99_ms": _ms(p99.group(1))}


def parse_redis_csv(out: str) -> dict[str, dict[str, float]]:
    res = {}
    for line in out.splitlines():
        f = [x.strip('"') for x in line.strip().split(",")]
        if len(f) >= 8 and f[0] in ("SET", "GET"):
            try:
                res[f[0]] = {"req_s": float(f[1]), "p50_ms": float(f[4]), "p99_ms": float(f[6])}
            except ValueError:
                continue
    if not res:
        raise RunFailed(f"unexpected redis-benchmark output: {out.strip()[-300:]!r}")
    return res


def parse_memcaslap(out: str) -> dict[str, float]:
    m = re.findall(r"TPS:\s*(\d+)", out)
    if not m:
        raise RunFailed(f"unexpected memcaslap output: {out.strip()[-300:]!r}")
    return {"req_s": float(m[-1])}


def _client(argv: list[str], timeout: float) -> str:
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RunFailed(f"{os.path.basename(argv[0])} timed out after {timeout:.0f} s") from None
    if r.returncode != 0:
        raise RunFailed(f"{os.path.basename(argv[0])} exit status {r.returncode}: {(r.stderr or r.stdout).strip()[-300:]}")
    return r.stdout


def apps(ctx: Ctx) -> dict[str, Any]:
    # Many short interleaved repetitions rather than a few long ones: this
    # machine's throughput drifts by +-10% over minutes, for every runtime alike.
    reps = ctx.reps or (1 if ctx.quick else 7)
    dur = 2 if ctx.quick else 4
    nreq = 20000 if ctx.quick else 50000
    which = ["nginx", "redis"] if ctx.quick else ["nginx", "redis", "memcached"]
    tools = {"nginx": ("nginx", "wrk"), "redis": ("redis-server", "redis-benchmark"),
             "memcached": ("memcached", "memcaslap")}
    # metric name -> (app, key, unit, higher_is_better)
    specs = {"nginx": [("nginx req/s", "req_s", "req/s", True), ("nginx p50", "p50_ms", "ms", False),
                       ("nginx p99", "p99_ms", "ms", False)],
             "redis": [(f"redis {op} {k}", (op, key), u, h) for op in ("SET", "GET")
                       for k, key, u, h in (("req/s", "req_s", "req/s", True), ("p50", "p50_ms", "ms", False),
                                            ("p99", "p99_ms", "ms", False))],
             "memcached": [("memcached TPS", "req_s", "ops/s", True)]}
    avail = [r for r in ctx.avail if r.kind in ("native", "oci")]
    metrics: list[dict] = []
    notes = [f"Servers on 127.0.0.1 (containers without a network namespace), clients on the host; "
             f"{reps} repetition(s), interleaved across runtimes with every runtime's server up at once.",
             f"nginx (1 worker): wrk -t1 -c16 -d{dur}s --latency; redis: redis-benchmark -c 16 -n {nreq} -t set,get "
             f"--csv; memcached (1 thread): memcaslap -T 1 -c 16 -t {dur}s (TPS only: it reports no percentiles)."]
    for app in which:
        missing_tool = [t for t in tools[app] if not shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin")]
        samples: dict[tuple[str, str], list[float]] = {}
        failed: dict[str, str] = {}
        servers: dict[str, Server] = {}
        if not missing_tool:
            argv = nginx_argv(ctx) if app == "nginx" else (redis_argv if app == "redis" else memcached_argv)
            for rt in avail:
                try:
                    servers[rt.name] = Server(ctx, rt, _app_dir(ctx), argv, app).start()
                except RunFailed as e:
                    failed[rt.name] = f"start: {e}"
            try:
                for i in range(reps):
                    for rt in avail:
                        if rt.name in failed:
                            continue
                        port = servers[rt.name].port
                        try:
                            if app == "nginx":
                                res = parse_wrk(_client(["wrk", "-t1", "-c16", f"-d{dur}s", "--latency",
                                                         f"http://127.0.0.1:{port}/index.html"], dur + 60))
                            elif app == "redis":
                                res = parse_redis_csv(_client(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port),
                                                               "-c", "16", "-n", str(nreq), "-t", "set,get", "--csv"],
                                                              300))
                            else:
                                res = parse_memcaslap(_client(["memcaslap", "-s", f"127.0.0.1:{port}", "-T", "1",
                                                               "-c", "16", "-t", f"{dur}s"], dur + 60))
                        except RunFailed as e:
                            failed[rt.name] = f"(repetition {i + 1}) {e}"
                            continue
                        for name, key, _u, _h in specs[app]:
                            v = res[key[0]][key[1]] if isinstance(key, tuple) else res[key]
                            samples.setdefault((name, rt.name), []).append(v)
                    ctx.log(f"apps: {app} repetition {i + 1}/{reps} done")
            finally:
                for s in servers.values():
                    s.stop()
        for name, _key, unit, hib in specs[app]:
            cells = ctx.missing_cells({r.name for r in avail}, {"uml": UML_NO_NET})
            for rt in avail:
                if missing_tool:
                    cells[rt.name] = stats.missing(f"not installed: {', '.join(missing_tool)}")
                elif rt.name in failed:
                    cells[rt.name] = stats.failed(failed[rt.name])
                else:
                    cells[rt.name] = stats.summarize(samples.get((name, rt.name), []))
            metrics.append({"name": name, "unit": unit, "higher_is_better": hib, "cells": cells})
    return {"title": "Application throughput and latency (loopback)", "unit": "mixed", "higher_is_better": True,
            "reps": reps, "notes": notes, "metrics": _finish(metrics)}


# --- memory -------------------------------------------------------------------------------------


UML_IDLE = "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\necho XCREADY\nexec /bin/busybox sleep 3600\n"


def _launch_pss(ctx: Ctx, rt: Runtime, rootfs: str, settle: float) -> float:
    """MB of PSS left running, idle, by one launch of `sleep 3600` (then stopped)."""
    if rt.kind == "native":
        p = subprocess.Popen([os.path.join(rootfs, "bin", "sleep"), "3600"], start_new_session=True)
        try:
            time.sleep(settle)
            return pss_kb(descendants([p.pid])) / 1024
        finally:
            _kill_group(p)
    if rt.kind == "uml":
        write_init(rootfs, UML_IDLE)
        p = subprocess.Popen(rt.uml_cmd(rootfs), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=rootfs, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            seen = b""
            os.set_blocking(p.stdout.fileno(), False)
            while b"XCREADY" not in seen:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise RunFailed(f"UML guest not ready: {seen.decode(errors='replace')[-300:]!r}")
                seen += p.stdout.read() or b""
                time.sleep(0.05)
            time.sleep(settle)
            return pss_kb(descendants([p.pid])) / 1024
        finally:
            _kill_group(p)
    bundle = write_bundle(os.path.join(ctx.top, f"mem-{rt.slug}"), rootfs, ["/bin/sleep", "3600"], rt)
    before = set(int(d) for d in os.listdir("/proc") if d.isdigit())
    cid = rt.new_id("mem")
    try:
        pid = rt.start(bundle, cid, os.path.join(ctx.top, f"mem-{rt.slug}.log"), net="none")
        time.sleep(settle)
        pids = descendants([pid]) | (pids_with_exe(rt.binary) - before)
        return pss_kb(pids) / 1024
    finally:
        rt.delete(cid)


def _kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def idle_many(ctx: Ctx, rt: Runtime, rootfs: str, n: int, settle: float,
              log: Callable[[str], None] | None = None) -> dict[str, float]:
    """N idle containers (busybox `sleep 3600`) at once: PSS per container
    (MB: their processes and any new process running the runtime's binary),
    the drop of MemAvailable per container (MB: kernel memory too, and
    whatever else the machine did meanwhile) and the seconds to start them.
    Each container has a cgroup of its own; all are stopped afterwards."""
    before = set(int(d) for d in os.listdir("/proc") if d.isdigit())
    avail0 = _mem_available_mb()
    started: list[tuple[str, int]] = []
    t0 = time.perf_counter()
    try:
        if rt.kind == "native":
            procs = [subprocess.Popen([os.path.join(rootfs, "bin", "sleep"), "3600"], start_new_session=True)
                     for _ in range(n)]
            started = [("", p.pid) for p in procs]
        else:
            for k in range(n):
                bundle = write_bundle(os.path.join(ctx.top, f"idle-{rt.slug}-{k}"), rootfs, ["/bin/sleep", "3600"], rt)
                cid = rt.new_id("idle")
                try:
                    started.append((cid, rt.start(bundle, cid, os.path.join(ctx.top, f"idle-{rt.slug}.log"), net="none")))
                except RunFailed as e:
                    raise RunFailed(f"container {k + 1} of {n}: {e}") from None
                if log and (k + 1) % 100 == 0:
                    log(f"idle: {rt.name} {k + 1}/{n} started ({time.perf_counter() - t0:.0f} s)")
        start_s = time.perf_counter() - t0
        time.sleep(settle)
        pids = descendants([pid for _, pid in started])
        if rt.kind == "oci" and rt.binary:
            pids |= pids_with_exe(rt.binary) - before
        return {"pss_mb": pss_kb(pids) / 1024 / n, "avail_mb": (avail0 - _mem_available_mb()) / n,
                "start_s": start_s}
    finally:
        if rt.kind == "native":
            _kill_pids([pid for _, pid in started])
        else:
            _stop_ids(rt, [cid for cid, _ in started])


def _stop_ids(rt: Runtime, cids: list[str]) -> None:
    """Delete containers in parallel (8 at a time): stopping is not measured."""
    if len(cids) <= 1:
        for c in cids:
            rt.delete(c)
        return
    with ThreadPoolExecutor(max_workers=min(8, len(cids))) as pool:
        list(pool.map(rt.delete, cids))


def memory(ctx: Ctx, ns: list[int] | None = None) -> dict[str, Any]:
    reps = ctx.reps or (1 if ctx.quick else 3)
    settle = 0.5 if ctx.quick else 1.0
    ns = ns or ([10] if ctx.quick else [10, 100])
    rootfs = ctx.bb_rootfs()
    samples: dict[str, list[float]] = {rt.name: [] for rt in ctx.avail}
    failed: dict[str, str] = {}
    for _ in range(reps):
        for rt in ctx.avail:
            if rt.name in failed:
                continue
            try:
                samples[rt.name].append(_launch_pss(ctx, rt, rootfs, settle))
            except RunFailed as e:
                failed[rt.name] = str(e)
    cells = ctx.missing_cells()
    for rt in ctx.avail:
        cells[rt.name] = stats.failed(failed[rt.name]) if rt.name in failed else stats.summarize(samples[rt.name])
    metrics = [{"name": "idle PSS", "unit": "MB", "higher_is_better": False, "cells": cells}]
    # N at once: what one more container costs once the shared pages are shared
    many = [r for r in ctx.avail if r.kind in ("native", "oci")]
    res: dict[tuple[int, str], dict[str, Any]] = {}
    for n in ns:
        for rt in many:
            try:
                res[(n, rt.name)] = idle_many(ctx, rt, rootfs, n, settle)
            except (RunFailed, OSError) as e:
                res[(n, rt.name)] = {"fail": f"N={n}: {e}"}
            ctx.log(f"memory: N={n} {rt.name} done")
    for n in ns:
        for key, label in (("pss_mb", "PSS per container"), ("avail_mb", "MemAvailable drop per container")):
            cells = ctx.missing_cells({r.name for r in many}, {"uml": "one guest per container: see idle PSS"})
            for rt in many:
                r = res[(n, rt.name)]
                cells[rt.name] = stats.failed(r["fail"]) if "fail" in r else stats.summarize([r[key]])
            metrics.append({"name": f"N={n} {label}", "unit": "MB", "higher_is_better": False, "cells": cells})
    return {"title": "Memory footprint: PSS of idle containers (MB)", "unit": "MB", "higher_is_better": False,
            "reps": reps, "ns": ns,
            "notes": ["idle PSS: one container running busybox `sleep 3600`, started detached; after "
                      f"{settle} s the PSS (/proc/PID/smaps_rollup) of what the launch left running is summed: "
                      "the container's processes and their descendants plus any new process running the runtime's "
                      "binary (runsc's sandbox and gofer). native: the sleep process alone; uml: the linux.uml "
                      "process tree (128 MB guest). One container has every page it maps to itself, shared ones "
                      "too (the busybox binary, the LibOS image).",
                      "N=...: N such containers at once (one repetition), the same PSS summed over all of them, "
                      "divided by N: what each costs once the pages they can share are shared. MemAvailable drop: "
                      "/proc/meminfo before and after starting them, divided by N (kernel memory too: namespaces, "
                      "page tables, cgroups; other activity on the machine shows up there as well)."],
            "metrics": _finish(metrics)}


# --- scalability --------------------------------------------------------------------------------


def _http_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _mem_available_mb() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _stop_all(servers: list["Server"]) -> None:
    """Stop the servers in parallel (runsc's `delete` takes ~1-2 s each: serially, 400 take 10+ minutes)."""
    if len(servers) <= 1:
        for s in servers:
            s.stop()
        return
    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        list(pool.map(lambda s: s.stop(), servers))


# Variants of a runtime scalability leaves out, to keep the full run under 30 minutes:
# one configuration per runtime is what N containers compare.
SCALABILITY_VARIANTS = {
    "runc-seccomp": "a variant of runc (its seccomp profile); scalability runs one configuration per runtime",
    "xc-nolibos": "a variant of xc (LibOS off); scalability runs one configuration per runtime",
    "xc-trap": "a variant of xc (ABOM off); scalability runs one configuration per runtime",
}


def scalability(ctx: Ctx, ns: list[int] | None = None, budget_s: float | None = None) -> dict[str, Any]:
    ns = ns or ([1, 10] if ctx.quick else [1, 10, 50, 100, 200, 400])
    dur = 2 if ctx.quick else 5
    clients = 4 if ctx.quick else 8
    # per runtime and N: start + measure + stop, projected from the previous N (keeps the full run < 30 min)
    budget_s = budget_s or (60 if ctx.quick else 300)
    avail = [r for r in ctx.avail if r.kind in ("native", "oci") and r.name not in SCALABILITY_VARIANTS]
    argv = nginx_argv(ctx)
    res: dict[tuple[int, str], dict[str, Any]] = {}
    stopped: dict[str, str] = {}
    per_container_mb: dict[str, float] = {}
    per_container_s: dict[str, float] = {}
    n_prev: dict[str, int] = {}
    for n in ns:
        for rt in avail:
            if rt.name in stopped:
                res[(n, rt.name)] = {"fail": f"not attempted: {stopped[rt.name]}"}
                continue
            need = per_container_mb.get(rt.name, 10) * n
            if need > _mem_available_mb() * 0.5:
                why = f"not attempted at N={n}: would need ~{need:.0f} MB, over half of MemAvailable"
                res[(n, rt.name)] = {"fail": why}
                stopped[rt.name] = why
                continue
            est = per_container_s.get(rt.name, 0) * n
            if est > budget_s:
                why = (f"not attempted at N={n}: would take ~{est:.0f} s to start and stop "
                       f"(from N={n_prev[rt.name]}), over the {budget_s:.0f} s budget")
                res[(n, rt.name)] = {"fail": why}
                stopped[rt.name] = why
                continue
            t_all = time.perf_counter()
            servers: list[Server] = []
            before = set(int(d) for d in os.listdir("/proc") if d.isdigit())
            t0 = time.perf_counter()
            try:
                for k in range(n):
                    s = Server(ctx, rt, _app_dir(ctx), argv, "scale")
                    try:
                        servers.append(s.start())
                    except RunFailed as e:
                        raise RunFailed(f"container {k + 1} of {n}: {e}") from None
                start_s = time.perf_counter() - t0
                bad = [s.port for s in servers if not _http_ok(s.port)]
                if bad:
                    raise RunFailed(f"{len(bad)} of {n} containers did not answer HTTP")
                pids = descendants([s.pid for s in servers])
                if rt.kind == "oci":
                    pids |= pids_with_exe(rt.binary) - before
                mb = pss_kb(pids) / 1024
                per_container_mb[rt.name] = mb / n
                m = min(n, clients)
                procs = [subprocess.Popen(["wrk", "-t1", "-c4", f"-d{dur}s", "--latency",
                                           f"http://127.0.0.1:{servers[(j * n) // m].port}/index.html"],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True) for j in range(m)]
                total = 0.0
                outs = [p.communicate(timeout=dur + 60)[0] for p in procs]
                for p, out in zip(procs, outs):
                    if p.returncode != 0:
                        raise RunFailed(f"wrk exit status {p.returncode}: {out.strip()[-200:]}")
                    total += parse_wrk(out)["req_s"]
                res[(n, rt.name)] = {"req_s": total, "pss_mb": mb, "start_s": start_s}
            except (RunFailed, OSError, subprocess.SubprocessError) as e:
                res[(n, rt.name)] = {"fail": f"N={n}: {e}"}
                stopped[rt.name] = f"failed at N={n}"
            finally:
                _stop_all(servers)
            took = time.perf_counter() - t_all
            per_container_s[rt.name] = (took - (0 if "fail" in res[(n, rt.name)] else dur)) / n
            n_prev[rt.name] = n
            ctx.log(f"scalability: N={n} {rt.name} {'failed' if 'fail' in res[(n, rt.name)] else 'done'} "
                    f"({took:.0f} s)")
    metrics = []
    for key, unit, hib, label in (("req_s", "req/s", True, "total req/s"), ("pss_mb", "MB", False, "total PSS"),
                                  ("start_s", "s", False, "start time")):
        for n in ns:
            cells = ctx.missing_cells({r.name for r in avail}, {"uml": UML_NO_NET, **SCALABILITY_VARIANTS})
            for rt in avail:
                r = res[(n, rt.name)]
                cells[rt.name] = stats.failed(r["fail"]) if "fail" in r else stats.summarize([r[key]])
            metrics.append({"name": f"N={n} {label}", "unit": unit, "higher_is_better": hib, "cells": cells})
    return {"title": "Scalability: N containers each serving nginx", "unit": "mixed", "higher_is_better": True,
            "reps": 1, "ns": ns, "stopped": stopped, "budget_s": budget_s,
            "notes": [f"For each N (interleaved across runtimes) N nginx containers (1 worker each, host network, "
                      f"127.0.0.1) are started one after another; each must answer HTTP; total req/s is the sum of "
                      f"min(N, {clients}) concurrent `wrk -t1 -c4 -d{dur}s` clients, each on a different container; "
                      "total PSS covers every container's processes; start time is starting all N. "
                      "A runtime that fails at some N is not run at larger N, nor at an N whose start and stop, "
                      f"projected from the previous N, would take over {budget_s:.0f} s (or whose memory, projected "
                      "the same way, would need over half of MemAvailable). Containers are stopped in parallel "
                      "(8 at a time); that is not measured."],
            "metrics": _finish(metrics)}


def abom(ctx: Ctx) -> dict[str, Any]:
    """The share of system calls that became function calls (abomcov.py)."""
    from .abomcov import abom as run

    return run(ctx)


EXPERIMENTS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "syscalls": syscalls, "fork": fork, "spawn": spawn, "apps": apps, "memory": memory, "scalability": scalability,
    "abom": abom}
