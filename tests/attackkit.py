"""Shared machinery of the attack suite, the fuzzer and the trinity runner.

The guest (tests/guest/attacks.c) runs in a real container; these helpers
build bundles for it, run a container under the host's trace
(tests/hosttrace.py), read the guest's "ATTACK/CHECK: RESULT" lines, and
describe the X-LibOS image (its symbols, and every place in its gate where a
`syscall` can run) for the attacks that jump into it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ROOT, Bundle, RuntimeUnderTest
from hosttrace import ContainerCalls, HostTrace, container_calls

IMAGE = ROOT / "src/xcontainers/xc-libos"
DOCKER_PROFILE = Path("/usr/share/containers/seccomp.json")
GUEST = ROOT / "tests/guest/attacks.c"
# Allowed from anywhere by the filter's design (it only restores the caller's own registers).
FILTER_ANYWHERE = {15: "rt_sigreturn"}
# Made by the kernel itself on the program's behalf (a restarted, interrupted call).
KERNEL_MADE = {219: "restart_syscall"}


def build_guest(out: Path) -> Path:
    """The attack guest, a static program."""
    subprocess.run(["gcc", "-O1", "-static", "-Wall", "-I", str(ROOT / "src/libos"), "-o", str(out), str(GUEST)],
                   check=True)
    return out


def interface() -> dict[int, tuple[str, str]]:
    """The exokernel interface as `xc libos interface --json` gives it today: nr -> (name, check)."""
    xc_cli = shutil.which("xc", path=str(ROOT / ".venv/bin")) or "xc"
    r = subprocess.run([xc_cli, "libos", "interface", "--json"], capture_output=True, text=True, check=True)
    doc = json.loads(r.stdout)
    calls = {c["nr"]: (c["name"], c["check"]) for c in doc["calls"]}
    assert len(calls) == doc["size"]
    return calls


def _section(path: Path, name: str) -> tuple[int, bytes]:
    """(address, bytes) of an ELF section, from readelf's table."""
    out = subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"\]\s+{re.escape(name)}\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", out)
    assert m, f"no section {name} in {path}"
    addr, off, size = (int(x, 16) for x in m.groups())
    with open(path, "rb") as f:
        f.seek(off)
        return addr, f.read(size)


def _symbols(path: Path) -> dict[str, int]:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (\w+)$", out, re.M)}


@dataclass
class Libos:
    syms: dict[str, int]
    gate: tuple[int, int]                        # [start, end) of the gate section
    sites: list[tuple[int, str]]                 # every `0f 05` in the gate, with the function holding it

    def syms_file(self) -> str:
        lines = [f"{n} {self.syms[n]:#x}" for n in (
            "xc_host_syscall", "xc_gate_direct", "xc_gate_back", "xc_restorer", "xc_sigsys_handler",
            "xc_proc", "xc_stats", "__executable_start", "_end", "xc_exec_path") if n in self.syms]
        lines += [f"site {at:#x} {kind}" for at, kind in self.sites]
        return "\n".join(lines) + "\n"

    @classmethod
    def of(cls, image: Path) -> "Libos":
        """The LibOS image's symbols and every place in its gate where a `syscall` can run.

        A `syscall` is two bytes, 0f 05, and x86 does not care about instruction
        boundaries: every such pair in the gate section is a place the filter
        lets a call through, whether or not a disassembler lists it."""
        syms = _symbols(image)
        addr, data = _section(image, "xc_gate")
        funcs = sorted((a, n) for n, a in syms.items() if addr <= a < addr + len(data) and not n.startswith("__"))
        direct = syms.get("xc_gate_direct", -1)
        listing = subprocess.run(["objdump", "-d", "-j", "xc_gate", str(image)], capture_output=True, text=True,
                                 check=True).stdout
        decoded = {int(m.group(1), 16) for m in re.finditer(r"^\s+([0-9a-f]+):\s+0f 05\s+syscall", listing, re.M)}
        sites = []
        for off in range(len(data) - 1):
            if data[off:off + 2] != b"\x0f\x05":
                continue
            at = addr + off
            owner = [n for a, n in funcs if a <= at][-1]
            if at not in decoded:
                # inside another instruction: the guest tries it in a child of its own
                sites.append((at, f"unaligned:{owner}"))
            elif owner == "xc_gate_direct" and (at - direct) % 8 == 0:
                # its `jmp *slot(%rip)` (ff 25 disp32) names the slot holding its return address
                jmp = data[off + 2:off + 8]
                assert jmp[:2] == b"\xff\x25", f"direct gate at {at:#x}: {jmp.hex()}"
                slot = at + 8 + int.from_bytes(jmp[2:], "little", signed=True)
                sites.append((at, f"direct:{(at - direct) // 8}:{slot:#x}"))
            else:
                sites.append((at, owner))
        return cls(syms, (addr, addr + len(data)), sites)


def make_bundle(base: Path, rootfs: Path, args: list[str], guest: Path, files: dict[str, bytes | Path] | None = None,
                docker_profile: bool = False) -> Bundle:
    """A bundle with a writable copy of the busybox rootfs, the guest at /attacks and *files*."""
    path = base / "attack-bundles" / f"bundle-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    shutil.copytree(rootfs, path / "rootfs", symlinks=True)
    shutil.copy2(guest, path / "rootfs/attacks")
    for name, content in (files or {}).items():
        dest = path / "rootfs" / name.lstrip("/")
        if isinstance(content, Path):
            shutil.copy2(content, dest)
        else:
            dest.write_bytes(content)
    b = Bundle(path, path / "rootfs", args)
    b.config["root"] = {"path": "rootfs", "readonly": False}
    b.config["hostname"] = "xcattacks"
    if docker_profile:
        from xcontainers.benchharness.runtimes import oci_seccomp

        prof = json.loads(DOCKER_PROFILE.read_text())
        b.config["linux"]["seccomp"] = oci_seccomp(prof, b.process["capabilities"]["bounding"])
    b.write()
    return b


@dataclass
class Outcome:
    rc: int
    out: str
    err: str
    calls: ContainerCalls
    results: dict[str, dict[str, str]] = field(default_factory=dict)   # attack -> check -> result
    status: dict[str, str] = field(default_factory=dict)               # attack -> "exit 0" / "killed SIGx"

    def __post_init__(self) -> None:
        for line in self.out.splitlines():
            m = re.match(r"^([\w.-]+)/(\S+): (.*)$", line)
            if m:
                self.results.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
                continue
            m = re.match(r"^([\w-]+): (exit \d+|killed \w+)$", line)
            if m:
                self.status[m.group(1)] = m.group(2)

    def host_calls(self, attack: str) -> Counter:
        """The calls the processes of *attack* (named a:ATTACK) made the host run."""
        groups = self.calls.named("a:")
        assert attack in groups, f"the trace has no process named a:{attack} ({sorted(groups)})"
        return self.calls.calls_of(groups[attack])


def traced_run(rt: RuntimeUnderTest, bundle: Bundle, cut: str, timeout: float = 120,
               during: Any = None) -> Outcome:
    """create, follow the container's first process with a trace, start, wait, delete.

    *during(cid, log_path)*, if given, runs while the container does."""
    cid = f"attacks-{uuid.uuid4().hex[:10]}"
    log = Path(tempfile.mkstemp(prefix="attacks-", suffix=".log")[1])
    err = Path(str(log) + ".err")
    try:
        with open(log, "w") as out, open(err, "w") as errf:
            p = subprocess.run([rt.binary, "--root", rt.root, "create", "--bundle", str(bundle.path), cid],
                               stdin=subprocess.DEVNULL, stdout=out, stderr=errf, timeout=60)
        assert p.returncode == 0, f"{rt.name} create failed: {err.read_text()}"
        pid = rt.state(cid)["pid"]
        with HostTrace(f"xc-attacks-{cid}") as trace:
            trace.follow([pid])
            rt.cmd("start", cid, check=True)
            if during is not None:
                during(cid, log)
            deadline = time.monotonic() + timeout
            while rt.state(cid)["status"] != "stopped":
                assert time.monotonic() < deadline, f"{rt.name}: the attacks did not finish in {timeout} s"
                time.sleep(0.05)
            t = trace.collect()
        assert t.dropped == 0, f"the trace lost {t.dropped} events: make the buffer larger"
        calls = container_calls(t, pid, cut)
        return Outcome(0, log.read_text(errors="replace"), err.read_text(errors="replace"), calls)
    finally:
        rt.cmd("delete", "--force", cid)
        log.unlink(missing_ok=True)
        err.unlink(missing_ok=True)


def allowed_on_host(interface: dict[int, tuple[str, str]]) -> set[int]:
    return set(interface) | set(FILTER_ANYWHERE) | set(KERNEL_MADE)


def no_leftovers(wait: float = 3.0) -> dict[str, list[str]]:
    """leftovers(), given a moment for what is still being torn down (exiting processes,
    cgroups removed after them): what is there after *wait* seconds is a leak."""
    deadline = time.monotonic() + wait
    while True:
        got = leftovers()
        if not any(got.values()) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def leftovers() -> dict[str, list[str]]:
    """What the attack containers could leave on the host: mounts below our bundles,
    cgroups named after our containers, processes of the guest.  (Other people's
    containers on this machine come and go: look only for ours.)"""
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if "/attack-bundles" in line.split()[4]]
    cgroups = []
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        cgroups += [os.path.join(dirpath, d) for d in dirnames if d.startswith("attacks-")]
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if cmd == b"/attacks":
            procs.append(pid)
    return {"mounts": mounts, "cgroups": cgroups, "processes": procs}


class Detached:
    """A container started with `run --detach`, its output in a log file."""

    def __init__(self, rt: RuntimeUnderTest, bundle: Bundle) -> None:
        self.rt, self.bundle = rt, bundle
        self.cid = f"attacks-{uuid.uuid4().hex[:10]}"
        self.log = bundle.path / "container.log"

    def __enter__(self) -> "Detached":
        with open(self.log, "w") as f:
            p = subprocess.run([self.rt.binary, "--root", self.rt.root, "run", "--detach", "--bundle",
                                str(self.bundle.path), self.cid], stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               timeout=60)
        assert p.returncode == 0, self.log.read_text()
        return self

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"{self.rt.name}: no {text!r} in {self.log.read_text()!r}"
            time.sleep(0.05)
        return self.log.read_text()

    def exec(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run([self.rt.binary, "--root", self.rt.root, "exec", self.cid, *args],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def __exit__(self, *exc: object) -> None:
        self.rt.cmd("delete", "--force", self.cid)


class Sentinel:
    """Another X-Container running next to an attack: `answers()` before and after."""

    def __init__(self, rt: RuntimeUnderTest, rootfs: Path, guest: Path, base: Path) -> None:
        self.rt = rt
        self.bundle = make_bundle(base, rootfs, ["sh", "-c", "while :; do sleep 1; done"], guest)
        self.cid = f"sentinel-{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> "Sentinel":
        self.rt.detached("run", "--detach", "--bundle", str(self.bundle.path), self.cid)
        assert self.answers(), "the sentinel container does not answer"
        return self

    def answers(self) -> bool:
        r = self.rt.cmd("exec", self.cid, "/bin/echo", "alive", timeout=60)
        return r.rc == 0 and r.out == "alive\n"

    def __exit__(self, *exc: object) -> None:
        self.rt.cmd("delete", "--force", self.cid)
