#!/usr/bin/env python3
"""trinity, the kernel's system call fuzzer, inside an X-Container.

    bench/trinity.py [--seconds 60] [--runtimes xc[,runc-seccomp]] [--seed N] [--json OUT]

trinity (Debian's package, 2023.01) runs as root in the container, with the
container's usual isolation (a pid, mount, network, ipc and uts namespace,
Docker's three default capabilities, no_new_privs, and for xc the X-LibOS
and its filter).  It forks children that call random system calls with
random arguments, on files from /proc, /sys and /dev, pipes, memfds,
eventfds, timerfds and the like (its socket fds are left out: trinity
2023.01 crashes building its socket cache on this kernel, under runc too).
Only the 64-bit table is fuzzed: an i386 call (`int 0x80`) kills the calling
process under the X-LibOS's filter by design, and trinity's main loop then
stalls waiting for its children.

Before, during and after the run:
  * the host's raw_syscalls:sys_enter tracepoint records every call the
    container's processes made the host run (tests/hosttrace.py); each must be
    on the exokernel interface (`xc libos interface`), and none of the calls
    the interface never allows may appear;
  * a second X-Container answers `exec` before and after;
  * after `delete`, no process, mount or cgroup of the run is left.
It reports how many calls trinity made (its own count), which calls the
LibOS served and how (its statistics segment, org.xcontainers.libos.stats),
which numbers trinity found answered ENOSYS (the LibOS does not serve them),
and the distinct host calls the tracepoint saw.

trinity waits 10 seconds before it starts when it runs as root; --seconds
counts from the end of that wait.  `--runtimes runc-seccomp` runs the same
under runc with containers-common's profile for comparison (on this host
trinity 2023.01 does not start its children there: docs/security.md).  The test of CI (tests/test_trinity.py)
runs 15 seconds; `make trinity` runs 60.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

COUNTDOWN = 10      # trinity's wait before it starts, as root
SETUP = 5           # its file, fd and child set-up (under a second here), with room


def trinity_args(seconds: int, seed: int) -> list[str]:
    return ["/usr/bin/timeout", "-s", "INT", str(COUNTDOWN + SETUP + seconds), "/usr/bin/trinity",
            "--dangerous", "-q", "-C", "2", "-l", "off", "--stats", "-a", "64", "--disable-fds=sockets",
            "-s", str(seed)]


def write_bundle(bundle: Path, rootfs: Path, args: list[str], annotations: dict[str, str],
                 seccomp: dict[str, Any] | None = None) -> Path:
    from xcontainers.benchharness.runtimes import HOST_DIRS
    from xcontainers.defaults import default_spec

    bundle.mkdir(parents=True, exist_ok=True)
    spec = default_spec(args, terminal=False, hostname="trinity")
    spec["root"] = {"path": str(rootfs), "readonly": True}
    spec["process"]["cwd"] = "/tmp"
    for d in HOST_DIRS:
        if os.path.isdir("/" + d) and not os.path.islink("/" + d):
            spec["mounts"].append({"destination": "/" + d, "type": "bind", "source": "/" + d,
                                   "options": ["rbind", "ro", "nosuid", "nodev"]})
    for d in ("tmp", "run", "var"):
        spec["mounts"].append({"destination": "/" + d, "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=1777", "size=262144k"]})
    spec["linux"]["cgroupsPath"] = "/" + bundle.name
    spec["annotations"] = annotations
    if seccomp is not None:
        spec["linux"]["seccomp"] = seccomp
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))
    return bundle


def parse_trinity(out: str) -> dict[str, Any]:
    """trinity's own account: how many calls, and per call its errno counts (--stats)."""
    ran = re.search(r"Ran (\d+) syscalls\. Successes: (\d+)\s+Failures: (\d+)", out)
    # trinity prints its own label and the number it called; labels can be off (2023.01 calls 317,
    # seccomp, as "getrandom"): name the numbers as the kernel does
    from hosttrace import name_of

    enosys = sorted({name_of(int(n)) for n in re.findall(r"\] \S+? \((\d+)\) returned ENOSYS, marking as inactive",
                                                        out)})
    per_call: dict[str, int] = {}
    for m in re.finditer(r"^(\w+),?: \(attempted:(\d+)\. success:(\d+)\. failures:(\d+)\.", out, re.M):
        per_call[m.group(1)] = int(m.group(2))
    return {"ran": int(ran.group(1)) if ran else None, "successes": int(ran.group(2)) if ran else None,
            "failures": int(ran.group(3)) if ran else None, "enosys": enosys, "attempted": per_call}


def leftovers(tag: str) -> dict[str, list[str]]:
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if tag in line]
    cgroups = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        cgroups += [os.path.join(dirpath, d) for d in dirnames if tag in d]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"trinity" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                procs.append(pid)
        except OSError:
            pass
    return {"mounts": mounts, "cgroups": cgroups, "processes": procs}


def run(seconds: int = 60, runtime: str = "xc", seed: int = 3, work: Path | None = None,
        log=print) -> dict[str, Any]:
    """One trinity run in a container of *runtime* (xc, or runc-seccomp for comparison)."""
    import attackkit
    import hosttrace
    from conftest import XC_RUNTIME, RuntimeUnderTest
    from xcontainers.benchharness.runtimes import host_rootfs

    if shutil.which("trinity") is None:
        raise SystemExit("trinity is not installed (Debian package trinity; make setup installs it)")
    why = hosttrace.available()
    if why:
        raise SystemExit(why)
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="xc-trinity-")) if own else work
    tag = f"trinity-{uuid.uuid4().hex[:8]}"
    try:
        rootfs = host_rootfs(str(work / "rootfs"))
        interface = attackkit.interface()
        allowed = attackkit.allowed_on_host(interface)
        if runtime == "xc":
            rt = RuntimeUnderTest("xc", XC_RUNTIME or "xc-runtime", str(work / "xc-state"))
            cut, seccomp = "seccomp", None
        else:
            from xcontainers.benchharness.runtimes import oci_seccomp

            rt = RuntimeUnderTest("runc", shutil.which("runc") or "runc", str(work / "runc-state"))
            cut = "exec"
            seccomp = oci_seccomp(json.loads(attackkit.DOCKER_PROFILE.read_text()),
                                  ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
        bundle = write_bundle(work / f"{tag}-fuzz", Path(rootfs), trinity_args(seconds, seed), {}, seccomp)
        stats: dict[str, Any] = {}
        xc = RuntimeUnderTest("xc", XC_RUNTIME or "xc-runtime", str(work / "xc-state"))
        sentinel_bundle = write_bundle(work / f"{tag}-sentinel", Path(rootfs), ["/usr/bin/sleep", "infinity"], {})
        sentinel = f"{tag}-sentinel"
        xc.detached("run", "--detach", "--bundle", str(sentinel_bundle), sentinel)

        def answers() -> bool:
            r = xc.cmd("exec", sentinel, "/usr/bin/echo", "alive", timeout=60)
            return r.rc == 0 and r.out == "alive\n"

        result: dict[str, Any] = {"runtime": runtime if runtime == "xc" else "runc+docker-profile",
                                  "seconds": seconds, "seed": seed, "sentinel_before": answers()}
        cid = f"{tag}-fuzz"
        out_path, err_path = work / "trinity.out", work / "trinity.err"
        t0 = time.monotonic()
        try:
            with open(out_path, "w") as o, open(err_path, "w") as e:
                p = subprocess.run([rt.binary, "--root", rt.root, "create", "--bundle", str(bundle), cid],
                                   stdin=subprocess.DEVNULL, stdout=o, stderr=e, timeout=60)
            if p.returncode != 0:
                raise SystemExit(f"{rt.name} create failed: {err_path.read_text()}")
            pid = rt.state(cid)["pid"]
            with HostTraceFull(f"xc-{tag}", allowed) as (full, off):
                full.follow([pid])
                off.follow([pid])
                rt.cmd("start", cid, check=True)
                deadline = time.monotonic() + COUNTDOWN + SETUP + seconds + 60
                while rt.state(cid)["status"] != "stopped":
                    if time.monotonic() > deadline:
                        rt.cmd("kill", cid, "KILL")
                        result["killed"] = "trinity did not stop in time: killed"
                        break
                    if runtime == "xc":
                        stats = read_libos_stats(pid) or stats
                    time.sleep(0.5)
                t_full, t_off = full.collect(), off.collect()
        finally:
            rt.cmd("delete", "--force", cid)
        result["elapsed"] = round(time.monotonic() - t0, 1)
        out = out_path.read_text(errors="replace")
        result["trinity"] = parse_trinity(out)
        calls = hosttrace.container_calls(t_full, pid, cut)
        violations = hosttrace.container_calls(t_off, pid, cut)
        result["host_calls"] = {
            "events": sum(calls.counts.values()), "dropped": t_full.dropped,
            "distinct": len(calls.counts), "names": sorted(hosttrace.name_of(n) for n in calls.counts),
            "off_interface": sorted(hosttrace.name_of(n) for n in violations.counts),
            "off_interface_events": sum(violations.counts.values()), "off_interface_dropped": t_off.dropped,
            "off_interface_in_full_trace": sorted(hosttrace.name_of(n) for n in calls.numbers() - allowed),
        }
        if runtime == "xc":
            st = stats
            result["libos"] = {k: st.get(k) for k in ("total", "trapped", "by_path", "sites_patched",
                                                       "sites_refused")}
            result["libos"]["calls"] = len(st.get("calls", {}))
            # the container was given no profile: entries here were written by the program itself
            # (the segment is mapped writable into every process; profile.py says so)
            changed = st.get("profile_changed", {})
            result["libos"]["profile_entries_written_by_the_program"] = len(changed)
            result["libos"]["profile_written_sample"] = {hosttrace.name_of(n): hex(w)
                                                         for n, w in list(changed.items())[:8]}
            result["libos"]["top"] = dict(list(st.get("calls", {}).items())[:12])
        result["sentinel_after"] = answers()
        xc.cmd("delete", "--force", sentinel)
        result["leftovers"] = leftovers(tag)
        result["runtime_works"] = xc.cmd("list").rc == 0
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def read_libos_stats(pid: int) -> dict[str, Any] | None:
    """The container's LibOS statistics so far, through its init's statistics fd (XC_STATS_FD, read only)."""
    from xcontainers.libos import read_stats
    from xcontainers.libos_abi import XC_STATS_FD

    try:
        fd = os.open(f"/proc/{pid}/fd/{XC_STATS_FD}", os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = read_stats(fd)
        import struct

        from xcontainers.libos_abi import STATS_PROFILE_OFFSET, XC_NR_MAX

        words = struct.unpack(f"<{XC_NR_MAX}H", os.pread(fd, 2 * XC_NR_MAX, STATS_PROFILE_OFFSET))
        st["profile_changed"] = {nr: w for nr, w in enumerate(words) if w}  # the run's profile is empty
        return st
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


class HostTraceFull:
    """Two traces of the same processes: every call (for the distinct set; a large buffer),
    and only the calls off the interface (a kernel-side filter: never overflows)."""

    def __init__(self, name: str, allowed: set[int]) -> None:
        from hosttrace import HostTrace

        expr = " && ".join(f"id != {n}" for n in sorted(allowed))
        self.full = HostTrace(name + "-all", buffer_kb=131072)
        self.off = HostTrace(name + "-off", buffer_kb=8192, syscall_filter=expr)

    def __enter__(self) -> tuple[Any, Any]:
        self.full.__enter__()
        try:
            self.off.__enter__()
        except BaseException:
            self.full.close()
            raise
        return self.full, self.off

    def __exit__(self, *exc: object) -> None:
        self.off.close()
        self.full.close()


def summary(r: dict[str, Any]) -> str:
    t, h = r["trinity"], r["host_calls"]
    lines = [
        f"{r['runtime']}: trinity ran {t['ran']} system calls in {r['seconds']} s "
        f"(successes {t['successes']}, failures {t['failures']}); elapsed {r['elapsed']} s in all",
        f"  host calls (sys_enter): {h['events']} events, {h['distinct']} distinct"
        + (f", {h['dropped']} dropped by the buffer" if h["dropped"] else "")
        + f"; off the interface: {', '.join(sorted(set(h['off_interface']) | set(h['off_interface_in_full_trace']))) or 'none'}",
        f"  numbers trinity found answered ENOSYS (not served by the LibOS, or not in the kernel): "
        f"{len(t['enosys'])}: {' '.join(t['enosys'])}",
    ]
    if "libos" in r:
        lib = r["libos"]
        lines.append(f"  the LibOS served {lib['total']} calls of {lib['calls']} kinds "
                     f"(by path {lib['by_path']}; ABOM patched {lib['sites_patched']} sites)")
        lines.append(f"  profile entries the program itself wrote into the shared segment: "
                     f"{lib['profile_entries_written_by_the_program']} {lib['profile_written_sample']}")
    lines.append(f"  second container answered before/after: {r['sentinel_before']}/{r['sentinel_after']}; "
                 f"left behind: {r['leftovers']}; runtime works: {r['runtime_works']}")
    if r.get("killed"):
        lines.append("  " + r["killed"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=60, help="fuzzing time after trinity's start-up (default 60)")
    ap.add_argument("--runtimes", default="xc", help="xc and/or runc-seccomp, comma-separated (default xc)")
    ap.add_argument("--seed", type=int, default=3, help="trinity's random seed (default 3)")
    ap.add_argument("--json", help="write the results as JSON here")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        ap.error("needs root (containers, tracefs)")
    results = []
    bad = False
    for rt in a.runtimes.split(","):
        if rt not in ("xc", "runc-seccomp"):
            ap.error(f"unknown runtime {rt!r}: xc or runc-seccomp")
        r = run(a.seconds, "xc" if rt == "xc" else "runc", a.seed)
        results.append(r)
        print(summary(r), flush=True)
        if rt == "xc":
            bad |= bool(r["host_calls"]["off_interface"] or r["host_calls"]["off_interface_in_full_trace"]) or \
                not r["sentinel_after"] or \
                any(r["leftovers"].values()) or not r["runtime_works"]
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
