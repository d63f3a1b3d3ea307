#!/usr/bin/env python3
"""System call micro-benchmark: the X-LibOS trap path against its peers.

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

    bench/syscalls.py [-n REPS] [--quick] [--runtimes native,runc,...]
                      [--ops getppid,...] [--target SECONDS] [--json FILE]

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
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from spawn import _in_private_mount_ns  # noqa: E402  (same namespace set-up as the spawn benchmark)

SOURCE = os.path.join(HERE, "syscall_bench.c")
GUEST_BIN = "/bin/syscall_bench"

OPS = ["getppid", "getpid", "write1", "read1", "openclose", "stat", "pipe", "fork", "forkexec"]
RUNTIMES = ["native", "runc", "crun", "runsc", "xc-off", "xc"]

# Rough ns per op on a plain container here, only to size the calibration
# round (the measured value sizes the real runs), and how much slower a
# runtime is expected to be: the LibOS traps every call (~3-5 us), runsc's
# ptrace platform pays ~26 us per call and more per process.
EST_NS = {"getppid": 1000, "getpid": 1000, "write1": 1000, "read1": 1000, "openclose": 3000,
          "stat": 2000, "pipe": 10000, "fork": 150_000, "forkexec": 600_000}
EST_FACTOR = {"native": 1, "runc": 1, "crun": 1, "xc-off": 1, "xc": 6, "runsc": 40}
N_MIN, N_MAX = 5, 5_000_000
RUN_TIMEOUT_S = 180


def _runtime_binaries() -> dict[str, str | None]:
    venv = os.path.join(HERE, "..", ".venv", "bin", "xc-runtime")
    xc = shutil.which("xc-runtime") or (venv if os.path.exists(venv) else None)
    return {"native": "native", "runc": shutil.which("runc"), "crun": shutil.which("crun"),
            "runsc": shutil.which("runsc"), "xc-off": xc, "xc": xc}


def _version(binary: str) -> str:
    try:
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        lines = (r.stdout or r.stderr).strip().splitlines()
        return lines[0] if lines else "?"
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"


def _nice(n: float) -> int:
    """n rounded to two significant digits, within [N_MIN, N_MAX]."""
    n = max(N_MIN, min(N_MAX, int(n)))
    digits = len(str(n))
    if digits > 2:
        q = 10 ** (digits - 2)
        n = round(n / q) * q
    return max(N_MIN, min(N_MAX, n))


def _build(top: str) -> str:
    """The rootfs: busybox plus the benchmark program."""
    rootfs = os.path.join(top, "rootfs")
    os.makedirs(os.path.join(rootfs, "bin"))
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(rootfs, d))
    shutil.copy2("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    os.symlink("busybox", os.path.join(rootfs, "bin", "sh"))
    out = os.path.join(rootfs, GUEST_BIN.lstrip("/"))
    r = subprocess.run(["gcc", "-O2", "-static", "-o", out, SOURCE], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"gcc failed: {r.stderr.strip()[-500:]}")
    return rootfs


def _write_config(bundle: str, rootfs: str, args: list[str], libos_off: bool) -> None:
    from xcontainers.defaults import default_spec

    spec = default_spec(args, terminal=False, hostname="bench")
    spec["root"]["path"] = rootfs
    if libos_off:
        spec["annotations"] = {"org.xcontainers.libos": "off"}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)


class Runner:
    def __init__(self, top: str, rootfs: str, bins: dict[str, str]):
        self.top, self.rootfs, self.bins = top, rootfs, bins
        self.count = 0

    def command(self, rt: str, op: str, n: int) -> tuple[list[str], str | None]:
        """The command for one run, and the container id (None: no container)."""
        args = [GUEST_BIN, op, str(n)]
        if rt == "native":
            return [os.path.join(self.rootfs, GUEST_BIN.lstrip("/")), op, str(n)], None
        bundle = os.path.join(self.top, f"bundle-{rt}")
        os.makedirs(bundle, exist_ok=True)
        _write_config(bundle, self.rootfs, args, libos_off=(rt == "xc-off"))
        self.count += 1
        cid = f"sb-{op}-{self.count}"
        root = os.path.join(self.top, f"state-{rt}")
        glob = [self.bins[rt], "--root", root]
        if rt == "runsc":
            glob += ["--network=none"]
        return glob + ["run", "--bundle", bundle, cid], cid

    def cleanup(self, rt: str, cid: str) -> None:
        root = os.path.join(self.top, f"state-{rt}")
        subprocess.run([self.bins[rt], "--root", root, "delete", "-f", cid],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)

    def run(self, rt: str, op: str, n: int) -> tuple[float | None, str | None]:
        """ns per op, or None and why it failed."""
        cmd, cid = self.command(rt, op, n)
        try:
            # stdout is a pipe: runsc writes oddly to a regular file (DESIGN-NOTES §6).
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            if cid:
                self.cleanup(rt, cid)
            return None, f"timed out after {RUN_TIMEOUT_S} s (n={n})"
        out = r.stdout.decode(errors="replace")
        err = r.stderr.decode(errors="replace").strip()
        if r.returncode != 0:
            if cid:
                self.cleanup(rt, cid)
            why = err or out.strip() or "(no output)"
            return None, f"exit status {r.returncode}: {why[-400:]}"
        for line in reversed(out.strip().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if d.get("op") == op and d.get("n") == n and isinstance(d.get("ns_per_op"), (int, float)):
                    return float(d["ns_per_op"]), None
        return None, f"no result line in the output: {(out.strip() or err)[-400:]!r}"


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=None, help="repetitions (default 5; 1 with --quick)")
    ap.add_argument("--target", type=float, default=None,
                    help="seconds one run's loop should take (default 0.4; 0.1 with --quick)")
    ap.add_argument("--quick", action="store_true", help="a fast pass: 1 repetition, short runs")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES), help=f"subset of {','.join(RUNTIMES)}")
    ap.add_argument("--ops", default=",".join(OPS), help=f"subset of {','.join(OPS)}")
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    reps = a.reps if a.reps is not None else (1 if a.quick else 5)
    target = a.target if a.target is not None else (0.1 if a.quick else 0.4)
    rts = [x for x in a.runtimes.split(",") if x]
    ops = [x for x in a.ops.split(",") if x]
    bad = [x for x in rts if x not in RUNTIMES] + [x for x in ops if x not in OPS]
    if bad or reps < 1 or target <= 0:
        ap.error(f"unknown runtime or op: {', '.join(bad)}" if bad else "--reps and --target must be > 0")
    command = " ".join(["bench/syscalls.py", *sys.argv[1:]])
    if a.json:
        a.json = os.path.abspath(a.json)
    _in_private_mount_ns()  # re-executes this script in a new mount namespace

    found = _runtime_binaries()
    bins = {rt: found[rt] for rt in rts if found.get(rt)}
    missing = [rt for rt in rts if not found.get(rt)]
    versions = {rt: ("-" if rt == "native" else _version(b)) for rt, b in bins.items()}
    results: dict[str, dict[str, dict]] = {op: {} for op in ops}
    for op in ops:
        for rt in missing:
            results[op][rt] = {"status": "missing"}

    top = tempfile.mkdtemp(prefix="xc-bench-syscalls-")
    started = time.time()
    load_start = os.getloadavg()
    try:
        rootfs = _build(top)
        runner = Runner(top, rootfs, bins)
        n_of: dict[tuple[str, str], int] = {}
        calib: dict[tuple[str, str], dict] = {}
        samples: dict[tuple[str, str], list[float]] = {(op, rt): [] for op in ops for rt in bins}
        failed: dict[tuple[str, str], str] = {}
        # Round 0: warm-up and calibration, discarded.
        for op in ops:
            for rt in bins:
                n0 = _nice(target / 4 * 1e9 / (EST_NS[op] * EST_FACTOR[rt]))
                ns, why = runner.run(rt, op, n0)
                calib[(op, rt)] = {"n": n0, "ns_per_op": ns}
                if ns is None:
                    failed[(op, rt)] = f"(calibration run) {why}"
                    n_of[(op, rt)] = n0
                else:
                    n_of[(op, rt)] = _nice(target * 1e9 / ns)
        for i in range(reps):
            for op in ops:
                for rt in bins:
                    if (op, rt) in failed:
                        continue
                    ns, why = runner.run(rt, op, n_of[(op, rt)])
                    if ns is None:
                        failed[(op, rt)] = f"(repetition {i + 1}) {why}"
                    else:
                        samples[(op, rt)].append(ns)
            print(f"repetition {i + 1}/{reps} done ({time.time() - started:.0f} s)", file=sys.stderr)
    finally:
        shutil.rmtree(top, ignore_errors=True)

    for op in ops:
        for rt in bins:
            xs = samples[(op, rt)]
            if (op, rt) in failed:
                results[op][rt] = {"status": "failed", "reason": failed[(op, rt)], "n": n_of[(op, rt)],
                                   "samples_before_failure": xs}
            else:
                results[op][rt] = {"status": "ok", "n": n_of[(op, rt)], "median_ns": round(statistics.median(xs), 1),
                                   "min_ns": round(min(xs), 1), "max_ns": round(max(xs), 1),
                                   "samples_ns": xs}
            results[op][rt]["calibration_run"] = calib.get((op, rt))
        ref = results[op].get("runc", {})
        for rt in bins:
            d = results[op][rt]
            if d["status"] == "ok":
                d["ratio_to_runc"] = round(d["median_ns"] / ref["median_ns"], 2) if ref.get("status") == "ok" else None

    out = {
        "experiment": "system call micro-benchmark (bench/syscall_bench.c), ns per op inside the container",
        "command": command, "reps": reps, "target_s": target,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "kernel": os.uname().release, "nproc": os.cpu_count(),
        "duration_s": round(time.time() - started, 1),
        # Other work on the machine skews everything: the load averages say how busy it was.
        "loadavg_start": [round(x, 2) for x in load_start], "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "runtimes": {rt: {"binary": bins.get(rt), "version": versions.get(rt), "status": "ok" if rt in bins else "missing"}
                     for rt in rts},
        "ops": ops, "results": results,
    }
    print(f"# {command}  ({out['date']}, nproc {out['nproc']}, kernel {out['kernel']}, {reps} reps, "
          f"{out['duration_s']:.0f} s, load average {out['loadavg_start'][0]:.2f} at start, {out['loadavg_end'][0]:.2f} at end)")
    for rt in rts:
        print(f"#   {rt:<7} {bins[rt] + '  ' + versions[rt] if rt in bins else 'missing'}")
    print(_tables(results, ops, rts))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
