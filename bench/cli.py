#!/usr/bin/env python3
"""xc's commands on its native entry point and on Python, side by side.

Each row runs the same command with `xc` as installed (the native program,
src/native/xc/) and with XC_NATIVE=0 (the Python command line), the two in
turn, the order swapped every repetition, on a store, state root and
bundles directory of its own and a busybox image imported into it:

    run-host     xc run --rm --network host IMAGE /bin/true
    run-bridge   xc run --rm IMAGE /bin/true (the default bridge network)
    run-port     xc run --rm -p PORT:80 IMAGE /bin/true
    rm-host      xc rm -f of a running container (--network host)
    rm-bridge    the same on the bridge
    ps           xc ps, with 3 containers
    stop         xc stop of a container that exits on SIGTERM

A Python run first makes the bridge (XC_BRIDGE/XC_SUBNET as set, else xc0
and 10.88.0.0/16); every native command is checked to have taken the
native path.  0.2 s between commands, so that a network's remover is done
before the next one starts.

    bench/cli.py [-n REPS] [--json FILE]

A benchmark, not a test: it asserts nothing about the numbers.  Needs root
and podman (make setup).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from images import XC, _busybox_rootfs, _podman  # noqa: E402


def _port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--reps", type=int, default=10)
    ap.add_argument("--json", help="write the results here as JSON")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root")
    top = tempfile.mkdtemp(prefix="xc-bench-cli-")
    env = {**os.environ, "XC_STORAGE": f"{top}/storage", "XC_BUNDLES": f"{top}/bundles", "XC_ROOT": f"{top}/state"}
    paths = {"native": {**env, "XC_DEBUG": "1"}, "python": {**env, "XC_NATIVE": "0"}}

    def xc(*args: str, e: dict[str, str] = env) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([XC, *args], env=e, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(f"xc {' '.join(args)} failed: {p.stderr[-500:]}")
        if e is paths["native"] and "xc: debug: python path" in p.stderr:
            raise SystemExit(f"xc {' '.join(args)} did not take the native path: {p.stderr}")
        return p

    def detached(*args: str) -> str:
        with tempfile.TemporaryFile("w+") as f:  # (not a pipe: the container holds it)
            subprocess.run([XC, "run", "-d", *args], env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                           check=True)
            f.seek(0)
            return f.read().split()[-1]

    results: dict[str, dict[str, object]] = {}
    try:
        rootfs = os.path.join(top, "rootfs")
        _busybox_rootfs(rootfs)
        subprocess.run(["tar", "-C", rootfs, "-cf", f"{top}/rootfs.tar", "."], check=True)
        _podman(top, "import", f"{top}/rootfs.tar", "bench/bb:1")
        _podman(top, "save", "--format", "docker-archive", "-o", f"{top}/bb.tar", "bench/bb:1")
        xc("image", "import", f"{top}/bb.tar")
        xc("run", "--rm", "bench/bb:1", "true", e=paths["python"])  # the bridge, if missing
        image = "bench/bb:1"
        port = _port()
        times: dict[str, dict[str, list[float]]] = {}

        def timed(row: str, path: str, args: list[str]) -> None:
            t = time.perf_counter()
            xc(*args, e=paths[path])
            times.setdefault(row, {}).setdefault(path, []).append((time.perf_counter() - t) * 1000)
            time.sleep(0.2)

        others = [detached("--network", "none", image, "sleep", "1000") for _ in range(3)]
        for i in range(a.reps):
            for path in (("native", "python") if i % 2 == 0 else ("python", "native")):
                timed("run-host", path, ["run", "--rm", "--network", "host", image, "/bin/true"])
                timed("run-bridge", path, ["run", "--rm", image, "/bin/true"])
                timed("run-port", path, ["run", "--rm", "-p", f"{port}:80", image, "/bin/true"])
                for row, net in (("rm-host", "host"), ("rm-bridge", "bridge")):
                    cid = detached("--network", net, image, "sleep", "1000")
                    time.sleep(0.2)
                    timed(row, path, ["rm", "-f", cid])
                timed("ps", path, ["ps"])
                cid = detached("--network", "none", image, "sh", "-c", 'trap "exit 0" TERM; while :; do sleep 0.1; done')
                time.sleep(0.3)  # (the trap set)
                timed("stop", path, ["stop", cid])
                xc("rm", cid)
        for c in others:
            xc("rm", "-f", c)
        for row, by in times.items():
            results[row] = {p: {"median_ms": statistics.median(v), "min_ms": min(v), "max_ms": max(v), "n": len(v)}
                            for p, v in by.items()}
            n, py = results[row]["native"], results[row]["python"]
            print(f"{row:<11} native {n['median_ms']:7.1f} ms ({n['min_ms']:.1f}-{n['max_ms']:.1f})"  # type: ignore[index]
                  f"   python {py['median_ms']:7.1f} ms ({py['min_ms']:.1f}-{py['max_ms']:.1f})")  # type: ignore[index]
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"command": " ".join(sys.argv), "rows": results}, f, indent=2)
    finally:
        subprocess.run([XC, "ps"], env=env, capture_output=True)  # (collects what a failure left)
        if os.path.isdir(f"{top}/state"):
            for cid in os.listdir(f"{top}/state"):
                subprocess.run([XC, "rm", "-f", cid], env=env, capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()
