"""Attacks on an X-Container's isolation, judged by what the host itself saw.

The claim (docs/security.md): a program in an X-Container reaches the host
kernel only through the X-LibOS's gate, and only with the calls of the
exokernel interface (`xc libos interface`).  The guest tests/guest/attacks.c
runs each attack in a real container; the oracle is the host's
`raw_syscalls:sys_enter` tracepoint (tests/hosttrace.py), which only sees
calls the seccomp filter let through.  For every attack the test asserts
what the program got back (EPERM, ENOSYS, EBADF, killed ...) and that every
call that reached the host is on the interface, and none of the calls it
never allows did.

The same guest runs under runc with Docker's default seccomp profile
(/usr/share/containers/seccomp.json) where that comparison means something:
what runc + the profile lets through against what xc lets through.  A line
per attack of what reached the host is printed at the end of the module.

Attacks that succeed against xc are real findings (docs/security.md,
"Findings"): their tests are strict xfails naming the cause, so that they
turn into failures the day the cause is fixed and the xfail should go.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, XC_RUNTIME, Bundle, RuntimeUnderTest, build_busybox_rootfs, need_root

import attackkit
import hosttrace
from attackkit import (DOCKER_PROFILE, IMAGE, Detached, Libos, Outcome, Sentinel, allowed_on_host, build_guest,
                       make_bundle, no_leftovers, traced_run)
from hosttrace import names_of
from xcontainers.libos_abi import XC_LIBOS_FD, XC_STATS_FD, XC_TRACE_FD


# Calls no container should ever get to run on the host.  (The guest's list,
# tests/guest/attacks.c `never[]`, holds the same names with harmless arguments.)
NEVER = (
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsmount", "fspick",
    "mount_setattr", "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl",
    "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "open_by_handle_at", "unshare", "setns", "seccomp", "reboot", "swapon", "swapoff",
    "acct", "syslog", "quotactl", "chroot", "iopl", "ioperm", "adjtimex", "fanotify_init", "memfd_secret",
    "mseal", "modify_ldt", "clone3", "execve",
)


def _nr(name: str) -> int:
    for nr, n in hosttrace.syscall_names().items():
        if n == name:
            return nr
    raise KeyError(name)


NEVER_NRS = {_nr(n): n for n in NEVER}


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tracing() -> None:
    need_root()
    why = hosttrace.available()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="module")
def interface() -> dict[int, tuple[str, str]]:
    """The exokernel interface, as `xc libos interface --json` gives it today."""
    return attackkit.interface()


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the attack guest")
    return build_guest(tmp_path_factory.mktemp("attacks") / "attacks")


@pytest.fixture(scope="module")
def libos_image() -> Libos:
    return Libos.of(IMAGE)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory, libos_image: Libos) -> Path:
    """A program that is not the LibOS, linked with its `syscall`s inside the gate's address range."""
    out = tmp_path_factory.mktemp("foreign") / "foreign"
    start = libos_image.gate[0] + 0x100
    subprocess.run(["gcc", "-nostdlib", "-static", "-no-pie", f"-Wl,--section-start=.text={start:#x}",
                    "-o", str(out), str(ROOT / "tests/guest/foreign.S")], check=True)
    return out


@pytest.fixture(scope="module")
def state_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RuntimeUnderTest]:
    need_root()
    assert XC_RUNTIME, "xc-runtime is not installed: run make setup"
    out = {"xc": RuntimeUnderTest("xc", XC_RUNTIME, str(tmp_path_factory.mktemp("xc-root")))}
    runc = shutil.which("runc")
    if runc:
        out["runc"] = RuntimeUnderTest("runc", runc, str(tmp_path_factory.mktemp("runc-root")))
    return out


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("attack-image") / "rootfs")


# --- the runs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sentinel(state_roots: dict[str, RuntimeUnderTest], rootfs: Path, guest: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Another X-Container running next to the attacks; it must answer before and after."""
    with Sentinel(state_roots["xc"], rootfs, guest, tmp_path_factory.mktemp("sentinel")) as s:
        yield s.answers


@pytest.fixture(scope="module")
def xc_run(tracing: None, state_roots: dict[str, RuntimeUnderTest], rootfs: Path, guest: Path, foreign: Path,
           libos_image: Libos, tmp_path_factory: pytest.TempPathFactory, sentinel: Any) -> Outcome:
    b = make_bundle(tmp_path_factory.mktemp("xc-attacks"), rootfs, ["/attacks", "run"], guest,
                    {"attack-syms": libos_image.syms_file().encode(), "foreign": foreign})
    return traced_run(state_roots["xc"], b, cut="seccomp")


@pytest.fixture(scope="module")
def runc_run(tracing: None, state_roots: dict[str, RuntimeUnderTest], rootfs: Path, guest: Path, foreign: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    if "runc" not in state_roots or not DOCKER_PROFILE.exists():
        pytest.skip("runc or Docker's default seccomp profile (containers-common) is not installed")
    b = make_bundle(tmp_path_factory.mktemp("runc-attacks"), rootfs, ["/attacks", "run"], guest,
                    {"foreign": foreign}, docker_profile=True)
    return traced_run(state_roots["runc"], b, cut="exec")


REPORT: dict[str, dict[str, str]] = {}


def record(attack: str, runtime: str, calls: Counter, interface: dict[int, tuple[str, str]]) -> None:
    """One summary line per attack and runtime: what reached the host."""
    never = sorted(n for n in calls if n in NEVER_NRS)
    off = sorted(n for n in calls if n not in allowed_on_host(interface))
    line = f"{sum(calls.values())} calls, {len(calls)} distinct"
    if off:
        line += f"; beyond xc's interface: {names_of(off)} ({len(never)} of them on the never-allowed list)"
    REPORT.setdefault(attack, {})[runtime] = line


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not REPORT:
        return
    tr = request.config.pluginmanager.getplugin("terminalreporter")
    lines = ["", "what reached the host, per attack (the host's sys_enter tracepoint):"]
    for attack, by in sorted(REPORT.items()):
        for rt, line in sorted(by.items()):
            lines.append(f"  {attack:<14} {rt:<18} {line}")
    out = os.environ.get("XC_ATTACK_REPORT")
    if out:
        Path(out).write_text(json.dumps(REPORT, indent=1) + "\n")
    cap = request.config.pluginmanager.getplugin("capturemanager")
    if tr is not None and cap is not None:
        with cap.global_and_fixture_disabled():
            for line in lines:
                tr.write_line(line)


def assert_confined(outcome: Outcome, attack: str, interface: dict[int, tuple[str, str]]) -> Counter:
    calls = outcome.host_calls(attack)
    record(attack, "xc", calls, interface)
    never = {n for n in calls if n in NEVER_NRS}
    assert not never, f"{attack}: never-allowed calls reached the host: {names_of(never)}"
    off = {n for n in calls if n not in allowed_on_host(interface)}
    assert not off, f"{attack}: calls off the interface reached the host: {names_of(off)}"
    assert outcome.status.get(attack) == "exit 0", (attack, outcome.status.get(attack), outcome.err[-2000:])
    return calls


def runc_record(runc_run: Outcome, attack: str, interface: dict[int, tuple[str, str]]) -> Counter:
    calls = runc_run.host_calls(attack)
    record(attack, "runc+docker-profile", calls, interface)
    return calls


# --- the whole container ----------------------------------------------------------------


def test_the_container_reached_the_host_only_through_the_interface(xc_run: Outcome, interface):
    """Every call any process of the attacked container made the host run is on the
    interface (or is rt_sigreturn / restart_syscall), none of the never-allowed ones."""
    assert "main: done" in xc_run.out, xc_run.out[-3000:] + xc_run.err[-3000:]
    got = xc_run.calls.numbers()
    assert got, "the trace saw no calls at all"
    off = got - allowed_on_host(interface)
    assert not off, "off the interface: " + names_of(off)
    assert not got & set(NEVER_NRS), "never-allowed: " + names_of(got & set(NEVER_NRS))
    assert not set(NEVER_NRS) & set(interface), "the interface itself now allows: " + \
        names_of(set(NEVER_NRS) & set(interface))
    record("(all)", "xc", xc_run.calls.counts, interface)


def test_the_other_container_and_the_host_are_unharmed(xc_run: Outcome, sentinel):
    """The sentinel container still answers; the attacked container left nothing behind."""
    assert sentinel(), "the sentinel container stopped answering after the attacks"
    assert no_leftovers() == {"mounts": [], "cgroups": [], "processes": []}


# --- 1. never-allowed calls ---------------------------------------------------------------


def test_never_allowed_calls_from_the_program(xc_run: Outcome, interface):
    got = xc_run.results["never-app"]
    assert set(got) == set(NEVER)
    # execve is the LibOS's to serve (by re-executing its image); the path does not exist
    assert got.pop("execve") == "ENOENT"
    bad = {k: v for k, v in got.items() if v not in ("ENOSYS", "EPERM")}
    assert not bad, f"the LibOS answered a never-allowed call with something else: {bad}"
    assert_confined(xc_run, "never-app", interface)


def test_never_allowed_calls_through_the_gate(xc_run: Outcome, interface):
    got = xc_run.results["never-gate"]
    assert set(got) == set(NEVER)
    bad = {k: v for k, v in got.items() if v != "EPERM"}
    assert not bad, f"the filter answered a never-allowed call from the gate with something else: {bad}"
    assert_confined(xc_run, "never-gate", interface)


def test_never_allowed_calls_under_runc_with_dockers_profile(runc_run: Outcome, interface):
    """The differential: what Docker's default profile lets a container run on the host."""
    got = runc_run.results["never-app"]
    calls = runc_record(runc_run, "never-app", interface)
    reached = {NEVER_NRS[n] for n in calls if n in NEVER_NRS}
    # what the guest's own answers say got past the profile (EPERM from the profile is
    # indistinguishable from EPERM from a capability check: the trace tells them apart)
    assert reached, "Docker's profile is expected to let some of these through (ptrace, process_vm_*, ...)"
    assert set(got) == set(NEVER)


def test_every_syscall_in_the_gate_refuses_forbidden_numbers(xc_run: Outcome, libos_image: Libos, interface):
    """Every 0f 05 in the gate section, entered with mount, ptrace, unshare, bpf, execve and
    init_module: EPERM from each (the direct gates' return slots pointed back at the guest)."""
    got = xc_run.results["gate-every"]
    direct = sum(1 for _, k in libos_image.sites if k.startswith("direct:"))
    assert got["direct-count"] == f"{6 * direct} calls through {direct} direct gates, {6 * direct} EPERM"
    assert "direct" not in got, got.get("direct")
    others = [(at, k) for at, k in libos_image.sites if not k.startswith("direct:")]
    for key, value in got.items():
        if key in ("direct-count",):
            continue
        if key.startswith("unaligned:"):
            # 0f 05 inside another instruction: the bytes before it may change the registers (any
            # answer of an allowed call) and those after may kill the process; the host's view decides
            continue
        assert value.endswith(("EPERM", "0 (rax cleared after the call)")), (key, value)
    tried = {key.rsplit(".", 1)[0] for key in got if "@" in key}
    assert tried == {f"{k}@{at:#x}" for at, k in others}, (sorted(tried), others)
    assert_confined(xc_run, "gate-every", interface)



# --- 2. other calling conventions, numbers and arguments -------------------------------------


def test_other_abis_and_numbers_are_killed_or_refused(xc_run: Outcome, interface):
    """x32 numbers and the i386 `int 0x80` entry kill the process (the filter's first check);
    a number with bits above 32 is the number below them to the kernel: mount from the gate
    is still EPERM, from the program the LibOS does not know it (ENOSYS)."""
    got = xc_run.results["abi"]
    for k in ("x32-getpid-app", "x32-mount-app", "i386-getpid-int80", "i386-mount-int80", "x32-mount-gate"):
        assert got[k] == "killed SIGSYS", (k, got[k])
    assert got["nr-high-bits-mount-app"] == "ENOSYS"
    assert got["nr-high-bits-mount-gate"] == "EPERM"
    assert_confined(xc_run, "abi", interface)


def test_other_abis_under_runc_with_dockers_profile(runc_run: Outcome, interface):
    got = runc_run.results["abi"]
    calls = runc_record(runc_run, "abi", interface)
    # the profile lists the i386 and x32 architectures: int 0x80 runs i386 getpid on the host
    assert got["i386-getpid-int80"] == "OK"
    # and a number with high bits set is run as the number below them (mount: ENOENT from the kernel)
    assert got["nr-high-bits-mount-app"] == "ENOENT"
    assert _nr("mount") in calls


def test_syscall_minus_one_gets_enosys(xc_run: Outcome):
    assert xc_run.results["abi"]["nr-minus-1-app"] == "ENOSYS"


def test_argument_checks_hold_from_the_gate(xc_run: Outcome, interface):
    """clone with namespace flags (also with junk in the upper half), prctl(PR_SET_SECCOMP,
    PR_SET_MM), execveat of another fd, a filter of the program's own: EPERM from the gate."""
    got = xc_run.results["args"]
    for k, v in got.items():
        if k == "prctl-seccomp-mode":
            assert v == "2", "the process is not in seccomp filter mode"
        else:
            assert v == "EPERM", (k, v)
    assert_confined(xc_run, "args", interface)


def test_user_namespaces_under_runc_with_dockers_profile(runc_run: Outcome, interface):
    """The differential: containers-common's profile lets clone(CLONE_NEWUSER) through."""
    runc_record(runc_run, "args", interface)
    assert runc_run.results["args"]["clone-newuser-app"] == "OK"


# --- 3. the LibOS's memory -----------------------------------------------------------------

IMAGE_TARGETS = ("code", "state", "gate-back")
LIBOS_REFUSES = ("mprotect-rw", "mprotect-rwx", "mprotect-none", "munmap", "mremap-away", "mremap-onto",
                 "mmap-fixed")


def test_program_cannot_remap_or_reprotect_the_libos_image(xc_run: Outcome, interface):
    got = xc_run.results["region-app"]
    for t in IMAGE_TARGETS:
        for op in LIBOS_REFUSES:
            assert got[f"{t}.{op}"] == "EPERM, then served", (t, op, got[f"{t}.{op}"])
        assert got[f"{t}.pkey_mprotect"] == "ENOSYS, then served"
    assert got["code.store"] == got["state.store"] == "killed SIGSEGV"
    # the direct gates' return slots are writable by design (ABOM writes them while the program runs)
    assert got["gate-back.store"] == "stored, then served"
    assert_confined(xc_run, "region-app", interface)


def test_program_cannot_reset_the_libos_pages(xc_run: Outcome):
    got = xc_run.results["region-app"]
    assert [got[f"{t}.madvise-dontneed"] for t in IMAGE_TARGETS] == ["EPERM, then served"] * 3


def test_program_cannot_change_the_abom_entry_table(xc_run: Outcome):
    got = xc_run.results["region-app"]
    assert got["entry-table.mprotect-rw"].startswith("EPERM") and got["entry-table.munmap"].startswith("EPERM")


def test_region_through_the_gate_reaches_only_the_interface(xc_run: Outcome, interface):
    """Through the gate the program can unseal the LibOS's state (the design: the boundary
    is the interface, not the LibOS's memory, which runs at the program's privilege), not
    change its code; whatever it then does, only interface calls reach the host."""
    got = xc_run.results["region-gate"]
    # the LibOS's code stays as it is even from the gate: mprotect's argument check refuses
    # it (and the code is a shared mapping of the read-only image, which nothing can write)
    assert got["code.mprotect-rwx"] == "EPERM, then served"
    assert got["code.store-after-mprotect"] == "mprotect EPERM"
    assert got["code.pkey_mprotect"] == "EPERM, then served"    # not on the interface
    assert_confined(xc_run, "region-gate", interface)


# --- 4. the LibOS's fds and an exec of something else ----------------------------------------


# The LibOS image as a container's process sees it: the copy every container
# shares, on a detached read-only mount (libos.image_fd), or where that
# cannot be made a sealed memfd of the container's own.
LIBOS_IMAGE_NAMES = ("/xc-libos", "/memfd:xc-libos (deleted)")


def test_program_cannot_close_or_replace_the_libos_fds(xc_run: Outcome, interface):
    got = xc_run.results["libos-fds"]
    for fd, names in ((XC_LIBOS_FD, LIBOS_IMAGE_NAMES), (XC_STATS_FD, ("/memfd:xc-stats (deleted)",))):
        for op in ("close", "dup2", "dup3"):
            assert got[f"{op}-{fd}-app"] in [f"EBADF, now {n}" for n in names], (op, fd, got[f"{op}-{fd}-app"])
    assert got["close_range-3-max-app"] in [f"OK, now {n}" for n in LIBOS_IMAGE_NAMES]
    for k in ("mmap-libos-fd-app", "write-stats-fd-app", "fchdir-libos-fd-app"):
        assert got[k] == "EBADF", (k, got[k])
    assert got["openat-dev-fd-libos-app"] == got["openat-proc-fd-stats-app"] == "ENOENT"
    # XC_TRACE_FD is the LibOS's only while the trace is on
    assert got[f"dup2-{XC_TRACE_FD}-app"] == "OK, now /dev/null"
    # through the gate they can today (the LibOS's fds are the program's own resources;
    # finding 4 asks the filter to refuse it: then EPERM)
    assert got[f"close-{XC_LIBOS_FD}-gate"] in ("OK, now ENOENT", *[f"EPERM, now {n}" for n in LIBOS_IMAGE_NAMES])
    assert_confined(xc_run, "libos-fds", interface)


def test_exec_through_the_gate_runs_only_the_libos_image(xc_run: Outcome):
    got = xc_run.results["exec-foreign"]
    assert "foreign-program" not in got
    assert got["execveat-libos-fd-absolute-path-gate"] == "EPERM"
    assert got["execveat-libos-fd-after-dup3-gate"] in ("EPERM", "dup3 EPERM")
    # the LibOS's empty path rewritten through /proc/self/mem: the code is a shared mapping
    # that was never writable, so the kernel refuses the forced write
    assert got["execveat-forged-path-gate"] == "pwrite EIO"
    # the image fd made close-on-exec: the next image refuses to start without it (exit 127)
    assert got["execve-after-fioclex-libos-fd-gate"] == got["execve-after-setfd-cloexec-libos-fd-gate"] == "exit 127"
    assert got["close_range-over-libos-fds-gate"] == "EPERM"


def test_exec_of_a_foreign_program_stays_on_the_interface(xc_run: Outcome, interface):
    """Whatever the foreign program ran, it was under the container's filter."""
    got = xc_run.results["exec-foreign"]
    assert got["execve-after-dup2-app"] == "dup2 EBADF"
    assert_confined(xc_run, "exec-foreign", interface)


# --- 5. forged frames and signals -----------------------------------------------------------


def test_forged_sigreturn_frames(xc_run: Outcome, interface):
    """rt_sigreturn (allowed from anywhere) with a crafted frame: into the gate's syscall with
    mount or ptrace (EPERM), into 32-bit mode for int 0x80 (killed), into the LibOS's SIGSYS
    handler with a trap that never happened (the LibOS's own answers: ENOSYS, EPERM)."""
    got = xc_run.results["sigreturn"]
    assert got["compat-mode-i386-getpid"] == "killed SIGSYS"
    assert got["frame-into-gate-mount"] == got["frame-into-gate-ptrace"] == "EPERM"
    assert got["frame-into-handler-ptrace"] == got["frame-into-handler-mount"] == "ENOSYS"
    assert got["call-handler-mount"] == "ENOSYS"
    assert got["call-handler-clone-newuser"] == "EPERM"
    assert got["call-handler-getpid"] == "OK (the pid)"
    assert_confined(xc_run, "sigreturn", interface)


def test_forged_sigreturn_under_runc(runc_run: Outcome, interface):
    runc_record(runc_run, "sigreturn", interface)
    assert runc_run.results["sigreturn"]["compat-mode-i386-getpid"] == "OK"


def test_forged_signals_at_the_libos_handlers(xc_run: Outcome, interface):
    """SIGSYS sent by kill/tgkill is the LibOS's (the program's handler never runs, the process
    lives); a SIGSYS forged with rt_sigqueueinfo as a seccomp trap (si_code SYS_SECCOMP) makes
    the LibOS serve the number in rax at delivery (0, read, the return of the sending call)
    with the program's own registers: nothing it could not call itself."""
    got = xc_run.results["signals"]
    assert got["kill-sigsys"] == got["kill-sigsys-with-handler"] == "survived (served), program handler not run"
    assert got["tgkill-sigsys"] == "survived (served)"
    assert got["kill-sigsegv"] == "killed SIGSEGV"
    assert got["kill-sigsegv-with-handler"] == "survived (served), program handler ran"
    assert got["queue-sigsegv-maperr-with-handler"] == "survived (served), program handler ran"
    for k in ("queue-sigsys-seccomp-at-gate", "queue-sigsys-seccomp-unmapped", "queue-sigsys-seccomp-in-libos",
              "queue-sigsys-seccomp-through-gate"):
        assert got[k] in ("rt_sigqueueinfo EBADF", "rt_sigqueueinfo EFAULT", "rt_sigqueueinfo EINVAL",
                          "rt_sigqueueinfo EPERM") or got[k].startswith("survived"), \
            (k, got[k])
    assert_confined(xc_run, "signals", interface)


def test_forged_fault_signal_kills_as_on_linux(xc_run: Outcome, runc_run: Outcome):
    for k in ("queue-sigsegv-maperr", "queue-sigbus-adrerr"):
        assert xc_run.results["signals"][k] == runc_run.results["signals"][k], k


def test_signals_under_runc(runc_run: Outcome, interface):
    runc_record(runc_run, "signals", interface)
    assert runc_run.results["signals"]["kill-sigsys"] == "killed SIGSYS"


# --- 6. ptrace, another process's memory, the host's processes --------------------------------


def test_ptrace_and_process_vm_never_reach_the_host(xc_run: Outcome, interface):
    got = xc_run.results["ptrace"]
    for k in ("attach-sibling-app", "seize-sibling-app", "process_vm_readv-sibling-app",
              "process_vm_writev-sibling-app"):
        assert got[k] == "ENOSYS", (k, got[k])
    assert got["attach-sibling-gate"] == got["process_vm_writev-sibling-gate"] == "EPERM"
    assert got["attached"] == "0"
    # the pid namespace: the container sees its own processes only
    assert int(got["processes-visible"]) <= 4
    assert_confined(xc_run, "ptrace", interface)


def test_ptrace_under_runc_with_dockers_profile(runc_run: Outcome, interface):
    got = runc_run.results["ptrace"]
    calls = runc_record(runc_run, "ptrace", interface)
    assert got["attach-sibling-app"] == "OK" and got["process_vm_writev-sibling-app"] == "OK"
    assert _nr("ptrace") in calls and _nr("process_vm_writev") in calls


# --- 7. /proc/self/exe (CVE-2019-5736) --------------------------------------------------------


def test_proc_self_exe_cannot_overwrite_the_libos_image(xc_run: Outcome, interface):
    """The kernel's /proc/self/exe of a container process is the LibOS image: the shared copy
    on a read-only mount (mode 0555: EACCES without CAP_DAC_OVERRIDE, EROFS with it), or a
    sealed memfd of the container's own, executing (ETXTBSY), sealed against writes."""
    got = xc_run.results["proc-exe"]
    assert got["open-self-exe-wronly-gate"] in ("ETXTBSY", "EACCES", "EROFS")
    assert got["self-exe-gate-is"] in LIBOS_IMAGE_NAMES
    # Read-only fd (EBADF) or write-sealed memfd (EPERM): either way not written.
    assert got["write-self-exe-image-gate"] in ("EBADF", "EPERM")
    assert got["write-image-fd-gate"] in ("EPERM", "EBADF")    # F_SEAL_WRITE: EPERM
    assert got["ftruncate-image-gate"] in ("EPERM", "EINVAL")
    assert got["open-pid1-exe-wronly-app"] in ("ETXTBSY", "EACCES", "EROFS")
    assert got["reexec-runs"] == "/attacks" and got["reexec-proc-self-exe"] == "exit 0"
    assert_confined(xc_run, "proc-exe", interface)


def test_running_program_is_write_protected_as_on_linux(xc_run: Outcome, runc_run: Outcome):
    for k in ("open-self-exe-wronly-app", "reopen-opath-self-exe-wronly-app"):
        assert xc_run.results["proc-exe"][k] == runc_run.results["proc-exe"][k] == "ETXTBSY", k


# --- 8. leaked fds and working directory (CVE-2024-21626) ---------------------------------------


def test_no_host_fd_or_directory_leaks_into_the_container(xc_run: Outcome, interface):
    got = xc_run.results["leaks"]
    for when in ("start", "after-exec"):
        assert got[f"{when}-fds"].endswith(" 0 beyond stdio outside the container"), got[f"{when}-fds"]
        assert got[f"{when}-cwd"] == "/ (inside)"
        assert got[f"{when}-root"] == "/"
    assert_confined(xc_run, "leaks", interface)


def test_runc_records(runc_run: Outcome, interface):
    """The remaining differential lines of the summary."""
    for attack in ("proc-exe", "leaks", "libos-fds"):
        runc_record(runc_run, attack, interface)
    assert runc_run.results["leaks"]["start-cwd"] == "/ (inside)"


# --- the runtime's side: what the host does for a container ----------------------------------


@pytest.fixture
def special(state_roots, rootfs, guest, libos_image, tmp_path):
    """make(runtime, args, **files) -> a bundle for one of the attacks below."""
    def make(runtime: str, args: list[str], files: dict[str, bytes | Path] | None = None) -> Bundle:
        if runtime not in state_roots:
            pytest.skip(f"{runtime} is not installed")
        extra = dict(files or {})
        if runtime == "xc":
            extra["attack-syms"] = libos_image.syms_file().encode()
        return make_bundle(tmp_path, rootfs, args, guest, extra)
    return make




@pytest.mark.parametrize("runtime", ["runc", "xc"])
def test_process_cwd_cannot_be_a_host_directory(runtime, special, state_roots):
    """CVE-2024-21626: process.cwd "/proc/self/fd/N" names whatever the runtime holds on fd N
    when it changes directory.  Each N from 3 to 9 is refused or lands inside the container."""
    rt = state_roots[runtime]
    escapes = []
    for n in range(3, 10):
        b = special(runtime, ["/attacks", "cwd"])
        b.process["cwd"] = f"/proc/self/fd/{n}"
        b.write()
        r = rt.run(b, cid=f"attacks-{uuid.uuid4().hex[:10]}")
        if r.rc == 0 and ("OUTSIDE" in r.out or "getcwd" in r.out):
            escapes.append(f"fd {n}: " + " | ".join(line for line in r.out.splitlines() if "cwd" in line))
        elif r.rc != 0:
            assert "Traceback" not in r.err and r.err.strip(), (n, r.err)
    assert not escapes, "\n".join(escapes)


def test_exec_cwd_cannot_be_a_host_directory(special, state_roots):
    """The same for `exec --cwd /proc/self/fd/N` (CVE-2024-21626's exec variant)."""
    b = special("xc", ["sleep", "60"])
    with Detached(state_roots["xc"], b) as c:
        for n in range(3, 15):
            r = subprocess.run([c.rt.binary, "--root", c.rt.root, "exec", "--cwd", f"/proc/self/fd/{n}", c.cid,
                                "/attacks", "cwd"], capture_output=True, text=True, timeout=30,
                               stdin=subprocess.DEVNULL)
            assert not (r.returncode == 0 and ("OUTSIDE" in r.stdout or "getcwd" in r.stdout)), (n, r.stdout)
            assert "Traceback" not in r.stderr




@pytest.mark.parametrize("runtime", ["runc", "xc"])
def test_exec_exposes_no_host_file_to_the_container(runtime, special, state_roots):
    """While the host runs `exec` (up to 30 times), a process in the container looks at every
    other process's /proc/PID/{exe,cwd,root}: none may lead outside the container."""
    b = special(runtime, ["/attacks", "watch", "120"])
    with Detached(state_roots[runtime], b) as c:
        c.wait_for("watch: ready")
        for n in range(1, 31):  # until the watcher sees something outside, or 30 execs
            r = c.exec("/bin/true")
            assert r.returncode == 0, r.stderr
            time.sleep(0.05)
            if "watch/foreign:" in c.log.read_text():
                break
        log = c.log.read_text()
    foreign = sorted(set(re.findall(r"^watch/foreign: pid \d+ (.*)$", log, re.M)))
    REPORT.setdefault("exec-window", {})[runtime] = (f"{n} execs; " + (foreign[0] if foreign else
                                                                       "nothing outside the container"))
    assert not foreign, "\n".join(foreign)




@pytest.fixture
def planted(special, tmp_path):
    """A bundle whose rootfs has a device node the container's cgroup denies (/dev/kmsg's 1:11) and a FIFO."""
    def make(fd: int, path: str) -> Bundle:
        b = special("xc", ["/attacks", "plant-fd", str(fd), path, "60"])
        os.mknod(b.path / "rootfs/tmp/kmsg", 0o600 | 0o020000, os.makedev(1, 11))
        os.mkfifo(b.path / "rootfs/tmp/fifo")
        return b
    return make


@pytest.mark.parametrize("fd", [XC_TRACE_FD, XC_STATS_FD])
def test_exec_does_not_open_devices_the_container_chose(fd, planted, state_roots):
    with Detached(state_roots["xc"], planted(fd, "/tmp/kmsg")) as c:
        out = c.wait_for("plant: ready")
        # XC_STATS_FD is planted through the gate, which the filter's DUP3 check now refuses (finding 4)
        assert f"-> {fd}: OK" in out or (fd == XC_STATS_FD and f"-> {fd}: EPERM" in out), out
        r = c.exec("/attacks", "open", "/tmp/kmsg")
        assert r.stdout.strip() == "open//tmp/kmsg: EPERM", r.stdout + r.stderr   # the device cgroup
        r = c.exec("/attacks", "show-fd", str(fd))
        REPORT.setdefault("exec-planted-fd", {})[f"xc fd {fd}"] = r.stdout.strip()
        assert "char device 1:11" not in r.stdout, r.stdout


def test_exec_does_not_hang_on_a_fifo_the_container_chose(planted, state_roots):
    with Detached(state_roots["xc"], planted(XC_TRACE_FD, "/tmp/fifo")) as c:
        c.wait_for("plant: ready")
        try:
            r = c.exec("/bin/true", timeout=8)
        except subprocess.TimeoutExpired:
            REPORT.setdefault("exec-planted-fd", {})["xc fifo"] = "exec hung (killed after 8 s)"
            raise AssertionError(f"xc-runtime exec hung opening the FIFO the container put on fd {XC_TRACE_FD}") from None
        assert r.returncode == 0, r.stderr




def test_forged_statistics_do_not_break_run(special, state_roots, tmp_path):
    b = special("xc", ["/attacks", "forge-stats", "0"])
    b.config["annotations"] = {"org.xcontainers.libos.stats": str(tmp_path / "stats.json")}
    b.write()
    r = state_roots["xc"].run(b, cid=f"attacks-{uuid.uuid4().hex[:10]}")
    assert "forge-stats/segment:" in r.out
    assert "Traceback" not in r.err and r.rc == 0, r.err[-1500:]


def test_forged_statistics_do_not_break_xc_stats(special, state_roots):
    xc = state_roots["xc"]
    b = special("xc", ["/attacks", "forge-stats", "30"])
    with Detached(xc, b) as c:
        c.wait_for("forge-stats: ready")
        xc_cli = shutil.which("xc", path=str(ROOT / ".venv/bin")) or "xc"
        r = subprocess.run([xc_cli, "stats", c.cid], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, XC_ROOT=xc.root))
    assert "Traceback" not in r.stderr, r.stderr[-1500:]


@pytest.mark.parametrize("runtime", ["runc", "xc"])
def test_no_input_injected_into_the_callers_terminal(runtime, special, state_roots):
    """A container whose stdin is the caller's terminal (process.terminal false) cannot push
    input into it: TIOCSTI needs the tty to be the caller's controlling terminal, which the
    runtime's setsid took away, and TIOCSCTTY cannot steal it from the caller's session."""
    rt = state_roots[runtime]
    master, slave = os.openpty()
    holder = os.fork()
    if holder == 0:  # the caller's session, whose controlling terminal the pty is
        os.setsid()
        os.open(os.ttyname(slave), os.O_RDWR)
        time.sleep(60)
        os._exit(0)
    try:
        time.sleep(0.2)
        b = special(runtime, ["/attacks", "tiocsti"])
        cid = f"attacks-{uuid.uuid4().hex[:10]}"
        try:
            p = subprocess.run([rt.binary, "--root", rt.root, "run", "--bundle", str(b.path), cid], stdin=slave,
                               capture_output=True, text=True, timeout=60)
        finally:
            rt.cmd("delete", "--force", cid)
        REPORT.setdefault("tty-inject", {})[runtime] = " ".join(p.stdout.split("\n")).strip()
        assert p.returncode == 0, p.stderr
        assert "tiocsti/stdin: OK" not in p.stdout
        os.set_blocking(master, False)
        try:
            echoed = os.read(master, 100)
        except BlockingIOError:
            echoed = b""
        assert b"xc-injected" not in echoed
    finally:
        os.kill(holder, 9)
        os.waitpid(holder, 0)
        os.close(master)
        os.close(slave)
