"""The X-LibOS: its data (interface, table, ABI), and its security properties.

The behaviour tests (test_behaviour.py, test_lifecycle.py, test_syscalls.py)
already run every container on the LibOS and compare with runc; here are
the properties that runc does not have: what the program can no longer do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, need_root, snapshot_host

from xcontainers import libos, libos_abi

NEVER_ALLOWED = {
    "ptrace", "mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsmount", "open_tree",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "open_by_handle_at", "unshare", "setns",
    "seccomp",
}


def test_abi_constants_agree_with_the_header():
    h = libos.abi()
    assert int(h["XC_LIBOS_BASE"], 0) == libos_abi.XC_LIBOS_BASE
    assert int(h["XC_LIBOS_FD"]) == libos_abi.XC_LIBOS_FD
    assert int(h["XC_STATS_FD"]) == libos_abi.XC_STATS_FD
    assert int(h["XC_STATS_SIZE"]) == libos_abi.XC_STATS_SIZE
    assert int(h["XC_NR_MAX"]) == libos_abi.XC_NR_MAX
    assert int(h["XC_OWN_CHUNK"].rstrip("UL")) == libos_abi.XC_OWN_CHUNK
    assert h["XC_ARG_INIT"] == libos_abi.XC_ARG_INIT
    assert h["XC_ARG_EXEC"] == libos_abi.XC_ARG_EXEC
    for name, value in h.items():
        if name.startswith(("XC_ABOM_", "XC_PROFILE_", "XC_FLAG_", "XC_TRACE_", "XC_STATS_MAGIC")):
            assert int(value.rstrip("UL"), 0) == getattr(libos_abi, name), name
    names = {int(h[k]): k[len("XC_ABOM_"):].lower().replace("_", "-") for k in h
             if k.startswith("XC_ABOM_") and k not in ("XC_ABOM_VERDICTS", "XC_ABOM_TABLE")}
    assert libos_abi.ABOM_VERDICT_NAMES == tuple(names[i] for i in range(len(names)))


def test_argv_hash_is_the_same_in_c_and_python(tmp_path):
    """The exec request of a container's first program names its argv by xc_argv_hash
    (abi.h), which the Python runtime computes too (libos_abi.argv_hash): one different
    byte and the image would not find its request."""
    src = tmp_path / "h.c"
    src.write_text('#include <stdio.h>\n#include "abi.h"\n'
                   'int main(int argc, char **argv) { printf("%u\\n", xc_argv_hash(argc - 1, argv + 1)); }\n')
    exe = tmp_path / "h"
    subprocess.run(["gcc", "-std=c11", "-I", str(ROOT / "src/libos"), "-o", str(exe), str(src)], check=True)
    for args in (["/bin/sh"], ["/bin/sh", "-c", "echo é; true"], ["a", "", "b" * 300]):
        out = subprocess.run([str(exe), *args], capture_output=True, text=True, check=True).stdout
        assert int(out) == libos_abi.argv_hash(args), args


def test_interface_never_allows_the_dangerous_calls():
    names = {name for _, name, _ in libos.interface()}
    assert not names & NEVER_ALLOWED
    checks = {name: check for _, name, check in libos.interface()}
    assert checks["clone"] == "CLONE" and checks["prctl"] == "PRCTL" and checks["execveat"] == "EXEC_LIBOS"


def test_table_forwards_only_what_the_interface_allows():
    allowed = {nr for nr, _, _ in libos.interface()}
    for nr, name, how, _ in libos.table():
        if how == "FORWARD":
            assert nr in allowed, f"{name} is forwarded but not on the interface"
    numbers = [nr for nr, _, _, _ in libos.table()]
    assert len(numbers) == len(set(numbers))
    assert max(numbers) < libos_abi.XC_NR_MAX


def test_generated_docs_are_current():
    assert (ROOT / "docs/compatibility.md").read_text() == libos.table_markdown()
    assert (ROOT / "docs/interface.md").read_text() == libos.interface_markdown()


# --- in a container ---------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the probe")
    out = tmp_path_factory.mktemp("probe") / "libos_probe"
    subprocess.run(["gcc", "-O1", "-static", "-pthread", "-o", str(out),
                    str(ROOT / "tests/guest/libos_probe.c")], check=True)
    return out


@pytest.fixture(scope="module")
def gate_address() -> int:
    image = ROOT / "src/xcontainers/xc-libos"
    out = subprocess.run(["nm", str(image)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"^([0-9a-f]+) T xc_host_syscall$", out, re.M)
    assert m, "xc_host_syscall not found in the LibOS image"
    return int(m.group(1), 16)


def _run_probe(xc, make_bundle, probe: Path, *args: str) -> str:
    need_root()
    b = make_bundle(["/probe", *args], writable=True)
    shutil.copy2(probe, b.path / "rootfs/probe")
    b.config["hostname"] = "xcprobe"
    b.write()
    r = xc.run(b)
    assert r.rc == 0, r.out + r.err
    return r.out


def test_never_allowed_calls_never_reach_the_host(xc, make_bundle, probe, gate_address):
    out = _run_probe(xc, make_bundle, probe, "never", hex(gate_address))
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    for name in ("ptrace", "mount", "umount2", "pivot_root", "keyctl", "add_key", "bpf", "perf_event_open",
                 "userfaultfd", "io_uring_setup", "kexec_load", "init_module", "delete_module",
                 "open_by_handle_at", "unshare", "setns", "seccomp", "clone-newpid", "execveat-other-fd"):
        m = re.fullmatch(r"program (\w+), gate (\w+)", lines[name])
        assert m, lines[name]
        # From the program the call traps and the LibOS refuses it (or, for an
        # execveat of an empty path, answers as Linux does: ENOENT).
        allowed = ("ENOSYS", "EPERM", "ENOENT") if name == "execveat-other-fd" else ("ENOSYS", "EPERM")
        assert m.group(1) in allowed, f"{name} from the program: {m.group(1)}"
        assert m.group(2) == "EPERM", f"{name} through the gate: {m.group(2)}"
    assert lines["hostname unchanged"] == "yes"


def _libos_symbols() -> dict[str, int]:
    image = ROOT / "src/xcontainers/xc-libos"
    out = subprocess.run(["nm", str(image)], capture_output=True, text=True, check=True).stdout
    return {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}


def _code_end() -> int:
    """The end of the LibOS image's code segment (its first PT_LOAD, page-rounded)."""
    from elftools.elf.elffile import ELFFile

    with open(ROOT / "src/xcontainers/xc-libos", "rb") as f:
        code = next(s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD")
        return (code["p_vaddr"] + code["p_filesz"] + 4095) & ~4095


def test_a_process_has_four_libos_mappings(xc, make_bundle):
    """The image's layout (layout.ld, docs/architecture.md): the code, mapped again shared
    from the read-only image (so that no one can write execveat's empty path in it), the
    sealed state, the writable state, and the statistics segment: 4 mappings per process,
    each copied by a fork; no file-backed data page."""
    syms = _libos_symbols()
    code_end, end = _code_end(), syms["_end"]
    assert syms["__executable_start"] <= syms["xc_exec_path"] < code_end
    b = make_bundle(["/bin/cat", "/proc/self/maps"])
    r = xc.run(b)
    assert r.rc == 0, r.err
    rows = [line.split() for line in r.out.splitlines()]
    libos = [(int(row[0].split("-")[0], 16), int(row[0].split("-")[1], 16), row[1]) for row in rows
             if 0x10000000 <= int(row[0].split("-")[0], 16) < end]
    stats = [row for row in rows if any("xc-stats" in w for w in row)]
    assert [p for _, _, p in libos] == ["r-xs", "r--p", "rw-p"], r.out
    assert libos[0] == (syms["__executable_start"], code_end, "r-xs"), r.out
    assert libos[1][1] == syms["xc_rw_start"], r.out   # the sealed bss: small, then xc_proc
    assert libos[1][1] - libos[1][0] <= 2 * 4096, r.out
    assert len(stats) == 1, r.out


def test_fork_childs_code_lies_in_one_fault_around_window():
    """A fork copies no page-table entry of the LibOS's code (a file mapping without
    private pages), so the child faults on what it runs, and the kernel maps the 16
    pages (64 KB, aligned) around each fault.  The code on the child's way to its exit or
    execve (XC_HOT: the entries, the dispatch, fork, exit, execve, running.c), the gate
    where the clone returns and the constants they read lie in one such window
    (layout.ld): one fault, where the loader's code before them took a second."""
    from elftools.elf.elffile import ELFFile

    with open(ROOT / "src/xcontainers/xc-libos", "rb") as f:
        sections = {s.name: (s["sh_addr"], s["sh_addr"] + s["sh_size"]) for s in ELFFile(f).iter_sections()}
    hot, gate, rodata = sections["xc_hot"], sections["xc_gate"], sections[".rodata"]
    assert hot[0] < hot[1] <= gate[0] < gate[1] <= rodata[0], sections
    assert hot[1] - hot[0] >= 4096, "the hot path is more than a few functions"
    window = 0x10000
    assert hot[0] // window == (rodata[1] - 1) // window, (
        f"xc_hot starts at {hot[0]:#x}, .rodata ends at {rodata[1]:#x}: not one 64 KB window")
    syms = _libos_symbols()
    for name in ("xc_abom_entry", "xc_abom_dispatch", "xc_sigsys_handler", "fork_like", "sys_exit_group",
                 "xc_txt_enter", "xc_txt_leave", "xc_getpid_peek", "exec_image", "xc_abom_fork_end"):
        assert hot[0] <= syms[name] < hot[1], name


# What each argument check answers, through the gate and (for calls the LibOS
# forwards) from the program: the filter's answer either way.
CHECKS = {
    "ioctl FIONBIO": "program OK, gate OK",
    "ioctl FIONREAD": "program OK, gate OK",
    "ioctl TCGETS of a pipe": "program ENOTTY, gate ENOTTY",       # allowed; a pipe is no terminal
    "ioctl TIOCSTI": "program ENOTTY, gate ENOTTY",
    "ioctl TIOCSETD": "program ENOTTY, gate ENOTTY",
    "ioctl BLKGETSIZE64": "program ENOTTY, gate ENOTTY",
    "ioctl with a request in the high half": "program OK, gate OK",  # the kernel reads 32 bits
    "fcntl F_GETFL": "program OK, gate OK",
    "fcntl 9999": "program EINVAL, gate EINVAL",
    "socket AF_INET6": "program OK, gate OK",
    "socket AF_NETLINK route": "program OK, gate OK",
    "socket AF_NETLINK netfilter": "program EPROTONOSUPPORT, gate EPROTONOSUPPORT",
    "socket AF_NETLINK generic": "program EPROTONOSUPPORT, gate EPROTONOSUPPORT",
    "socket AF_PACKET": "program EAFNOSUPPORT, gate EAFNOSUPPORT",
    "socket AF_ALG": "program EAFNOSUPPORT, gate EAFNOSUPPORT",
    "socket AF_VSOCK": "program EAFNOSUPPORT, gate EAFNOSUPPORT",
    "socketpair AF_UNIX": "program OK, gate OK",
    "socketpair AF_TIPC": "program EAFNOSUPPORT, gate EAFNOSUPPORT",
    "prctl PR_SET_NAME": "program OK, gate OK",
    "prctl PR_SET_SYSCALL_USER_DISPATCH": "program EINVAL, gate EINVAL",
    "prctl 12345": "program EINVAL, gate EINVAL",
    "prctl PR_SET_MM": "program EPERM, gate EPERM",
    "arch_prctl ARCH_GET_FS": "program OK, gate OK",
    "arch_prctl ARCH_MAP_VDSO_64": "program EINVAL, gate EINVAL",
    "arch_prctl ARCH_SHSTK_ENABLE": "program EINVAL, gate EINVAL",
    "mprotect of the LibOS's code": "gate EPERM",
    "mprotect PROT_NONE of the code's last page": "gate EPERM",
    "mprotect PROT_EXEC of the LibOS's data": "gate EPERM",
    "mprotect PROT_READ of the LibOS's data": "gate OK",           # its own seal
    "mprotect PROT_EXEC just below the LibOS": "gate ENOMEM",      # allowed; nothing mapped there
    "mmap MAP_FIXED over the LibOS": "gate EPERM",
    "munmap of the LibOS": "gate EPERM",
    "munmap across the LibOS's end": "gate EPERM",
    "munmap of 8 GiB below the LibOS": "gate EPERM",
    "munmap above 4 GiB": "gate OK",
    "madvise into the LibOS": "gate EPERM",
    "madvise just below the LibOS": "gate ENOMEM",
    "madvise of 0 bytes in the LibOS": "gate OK",
    "mremap from the LibOS": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, as at start": "gate OK",   # the same pages again
    "mmap of the LibOS's code, shared from its fd, private": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, writable": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, a page shorter": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, another offset": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, another fd": "gate EPERM",
    "mmap of the LibOS's code, shared from its fd, without MAP_POPULATE": "gate EPERM",
    "write through /proc/self/mem into the LibOS's code": "EIO",
    "mremap MREMAP_FIXED onto the LibOS": "gate EPERM",
    "still served": "yes",
}


def test_interface_argument_checks(xc, make_bundle, probe, gate_address):
    """The filter's argument checks (src/libos/interface.def), through the gate the program can
    jump into and from the program's own code; the LibOS still serves afterwards."""
    syms = _libos_symbols()
    # the code segment, then the data (bss)
    lo, code_end, end = syms["__executable_start"], _code_end(), syms["_end"]
    up = lambda x: (x + 4095) & ~4095  # noqa: E731
    out = _run_probe(xc, make_bundle, probe, "checks", hex(gate_address), hex(lo), hex(code_end), hex(up(end)))
    got = dict(line.split(": ", 1) for line in out.splitlines())
    assert got == CHECKS


def test_program_cannot_remove_the_filter(xc, make_bundle, probe):
    out = _run_probe(xc, make_bundle, probe, "filter")
    assert "prctl(PR_SET_SECCOMP, STRICT): EPERM" in out
    assert re.search(r"seccomp\(SET_MODE_STRICT\): (ENOSYS|EPERM)", out)
    assert "prctl(PR_SET_MM): EPERM" in out
    assert "prctl(PR_GET_SECCOMP): 2" in out
    assert "still served: yes" in out


def test_program_cannot_take_or_block_sigsys(xc, make_bundle, probe):
    out = _run_probe(xc, make_bundle, probe, "sigsys")
    assert "sigaction(SIGSYS): OK" in out
    assert "reads back the program's handler: yes" in out
    assert "served after blocking: yes" in out
    assert "program handler ran: no" in out


def test_program_cannot_change_the_libos_region(xc, make_bundle, probe):
    image = ROOT / "src/xcontainers/xc-libos"
    syms = subprocess.run(["nm", str(image)], capture_output=True, text=True, check=True).stdout
    state = int(re.search(r"^([0-9a-f]+) [bB] xc_proc$", syms, re.M).group(1), 16)
    out = _run_probe(xc, make_bundle, probe, "region", hex(state))
    for check in ("mprotect RWX", "munmap", "mmap MAP_FIXED", "mremap onto it"):
        assert f"{check}: EPERM" in out, out
    assert "store into the LibOS's state: SIGSEGV" in out
    assert "store into the LibOS's code: SIGSEGV" in out
    assert "still served: yes" in out


def test_program_cannot_close_the_libos_fds(xc, make_bundle, probe):
    out = _run_probe(xc, make_bundle, probe, "fds")
    for check in ("close(libos fd)", "close(stats fd)", "dup2(0, libos fd)", "dup3(0, libos fd)"):
        assert f"{check}: EBADF" in out, out
    assert "exec after close_range: OK" in out


def _image_mapping(pid: int) -> dict[str, int]:
    """The smaps fields of the LibOS image's code mapping of process *pid*."""
    out: dict[str, int] = {}
    inside = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                inside = head[-1] == "/xc-libos" and "x" in head[1]
            elif inside and line.endswith("kB\n"):
                out[head[0].rstrip(":")] = int(head[1])
    return out


def test_containers_share_one_read_only_image(xc, make_bundle):
    """Every container executes the same file (one copy of the image's pages in memory, shared),
    on a read-only mount no process can write through: /proc/PID/fd/127, /proc/PID/exe."""
    import errno

    need_root()
    cids = [f"share-{os.getpid()}-{k}" for k in range(2)]
    try:
        for cid in cids:
            xc.detached("run", "--detach", "--bundle", str(make_bundle(["sleep", "60"]).path), cid)
        pids = [xc.state(cid)["pid"] for cid in cids]
        st = [os.stat(f"/proc/{pid}/fd/{libos_abi.XC_LIBOS_FD}") for pid in pids]
        assert (st[0].st_dev, st[0].st_ino) == (st[1].st_dev, st[1].st_ino)
        assert (st[0].st_dev, st[0].st_ino) == (os.stat(f"/proc/{pids[0]}/exe").st_dev, st[0].st_ino)
        for pid in pids:
            assert os.readlink(f"/proc/{pid}/fd/{libos_abi.XC_LIBOS_FD}") == "/xc-libos"
            for path in (f"/proc/{pid}/fd/{libos_abi.XC_LIBOS_FD}", f"/proc/{pid}/exe"):
                for flags in (os.O_WRONLY, os.O_RDWR | os.O_TRUNC):
                    with pytest.raises(OSError) as e:
                        os.close(os.open(path, flags))  # as host root, every capability
                    assert e.value.errno in (errno.EROFS, errno.ETXTBSY), (path, e.value)
            m = _image_mapping(pid)
            # (dirty while a fresh copy is not yet written back: shared either way)
            assert m["Rss"] > 0 and m["Shared_Clean"] + m["Shared_Dirty"] == m["Rss"], m
            assert m["Private_Clean"] == m["Private_Dirty"] == m["Anonymous"] == 0, m
    finally:
        for cid in cids:
            xc.cmd("delete", "--force", cid)


def _stack(pid: int) -> tuple[int, bytes, int]:
    """The [stack] mapping of process *pid*: its start, its contents, its Rss in KB."""
    with open(f"/proc/{pid}/smaps") as f:
        text = f.read()
    m = re.search(r"^([0-9a-f]+)-([0-9a-f]+) .*\[stack\]\n(?:.*\n)*?Rss:\s+(\d+) kB", text, re.M)
    assert m, text
    lo, hi = int(m.group(1), 16), int(m.group(2), 16)
    with open(f"/proc/{pid}/mem", "rb") as f:
        f.seek(lo)
        return lo, f.read(hi - lo), int(m.group(3))


def _argv_vectors(lo: int, mem: bytes, args: list[bytes]) -> list[int]:
    """Where the words [argv pointers to *args*..., NULL] lie in the stack (*mem* at *lo*),
    found from the program's initial stack: argc, then those pointers."""
    import struct

    words = struct.unpack(f"<{len(mem) // 8}Q", mem)

    def string(p: int) -> bytes:
        return mem[p - lo:mem.index(b"\0", p - lo)] if lo <= p < lo + len(mem) else b""

    for i in range(len(words) - len(args) - 1):
        if words[i] == len(args) and words[i + 1 + len(args)] == 0 and \
                [string(p) for p in words[i + 1:i + 1 + len(args)]] == args:
            tail = words[i + 1:i + 2 + len(args)]
            return [lo + 8 * j for j in range(len(words) - len(tail)) if words[j:j + len(tail)] == tail]
    raise AssertionError(f"no initial stack with argv {args} found")


def test_loader_keeps_little_above_the_programs_stack(xc, make_bundle, busybox_rootfs):
    """The loader builds the program's initial stack just below the kernel's (its scratch, the
    first page of each file, lies below, where the program's stack grows over it): the program's
    argv vector lies a little below the kernel's one (whose tail, after xc_main slid the strings,
    is the same pointers), and an idle busybox sleep's stack has few more pages than natively."""
    need_root()
    cid = f"stack-{os.getpid()}"
    xc.detached("run", "--detach", "--bundle", str(make_bundle(["sleep", "60"]).path), cid)
    try:
        lo, mem, rss = _stack(xc.state(cid)["pid"])
    finally:
        xc.cmd("delete", "--force", cid)
    prog, kernel = _argv_vectors(lo, mem, [b"sleep", b"60"])
    # The loader's frames between them: xc_main's, and xc_load_and_run's `#!` lines (1 KB),
    # argv and initial stack; 7.5 KB before 2026-12-06, when each file's first page lay there.
    assert 0 < kernel - prog <= 3072, kernel - prog
    native = []
    for _ in range(3):
        p = subprocess.Popen([str(busybox_rootfs / "bin/busybox"), "sleep", "60"], env={"PATH": "/bin"})
        try:
            time.sleep(0.2)
            native.append(_stack(p.pid)[2])
        finally:
            p.kill()
            p.wait()
    # The trap frames of the program's first calls (about 3.5 KB of xsave and context each,
    # below the program's stack pointer) and the frames above: at most 3 pages more.
    assert rss <= max(native) + 12, (rss, native)


def test_image_copies_per_version_and_fallback(tmp_path, monkeypatch):
    """One shared copy per image version: a rebuilt image gets a new one, and the oldest go
    (an fd on them stays good); where no shared copy can be made, a sealed memfd of its own."""
    import fcntl

    need_root()
    src = tmp_path / "xc-libos"
    shutil.copy2(libos.image_path(), src)
    monkeypatch.setattr(libos, "image_path", lambda: str(src))
    monkeypatch.setattr(libos, "SHARED_DIR", str(tmp_path / "shared"))
    fd1 = libos.image_fd()
    fd2 = libos.image_fd()
    try:
        versions = os.listdir(tmp_path / "shared")
        assert len(versions) == 1 and os.readlink(f"/proc/self/fd/{fd1}") == "/xc-libos"
        assert os.fstat(fd1).st_ino == os.fstat(fd2).st_ino != os.stat(src).st_ino
        assert os.pread(fd1, 4, 0) == b"\x7fELF"
        for k in range(libos.SHARED_KEEP + 1):  # rebuilt images
            os.utime(src, ns=(k + 1, k + 1))
            fd3 = libos.image_fd()
            assert os.fstat(fd3).st_ino != os.fstat(fd1).st_ino
            os.close(fd3)
        now = os.listdir(tmp_path / "shared")
        assert len(now) == libos.SHARED_KEEP and versions[0] not in now  # the oldest went
        assert os.pread(fd1, 4, 0) == b"\x7fELF"  # and its fd still reads
    finally:
        os.close(fd1)
        os.close(fd2)
    (tmp_path / "not-a-dir").write_text("")
    monkeypatch.setattr(libos, "SHARED_DIR", str(tmp_path / "not-a-dir" / "shared"))
    fd = libos.image_fd()
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:xc-libos")
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE
    finally:
        os.close(fd)


def test_libos_off_annotation_gives_a_plain_container(xc, make_bundle):
    need_root()
    b = make_bundle(["sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"])
    b.process["noNewPrivileges"] = False
    b.config["annotations"] = {"org.xcontainers.libos": "off"}
    b.write()
    r = xc.run(b)
    assert r.out.split() == ["NoNewPrivs:", "0", "Seccomp:", "0"]
    b.config["annotations"] = {}
    b.write()
    r = xc.run(b)
    assert r.out.split() == ["NoNewPrivs:", "1", "Seccomp:", "2"]


def test_statistics_count_what_the_libos_served(tmp_path):
    """xc run --stats: the shared segment counts calls of every process."""
    need_root()
    env = dict(os.environ, XC_BUNDLES=str(tmp_path / "bundles"), XC_ROOT=str(tmp_path / "state"))
    xc_cli = shutil.which("xc", path=str(ROOT / ".venv/bin"))
    r = subprocess.run([xc_cli, "run", "--rm", "--stats", "busybox", "sh", "-c", "ls / > /dev/null; exec sh -c true"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    m = re.search(r"X-LibOS: (\d+) system calls served in the LibOS by (\d+) program start\(s\) \((\d+) via execve\)",
                  r.stderr)
    assert m, r.stderr
    total, starts, execs = map(int, m.groups())
    assert total > 20 and starts >= 2 and execs >= 1


# --- ABOM -------------------------------------------------------------------------------


def test_abom_rewrites_sites_and_keeps_their_meaning(xc, make_bundle, probe):
    out = _run_probe(xc, make_bundle, probe, "abom")
    assert "getpid through a patchable site: ok" in out
    assert "site rewritten: yes" in out, out
    assert "mov that did not run: ok" in out          # imm != trapped number: left alone
    assert "red zone kept: yes" in out                # pitfall 1
    assert "registers and flags kept: yes" in out     # pitfall 6
    # clone: rewritten, a fork through it returns as a call, a thread through it still traps
    assert "fork through a clone site: ok" in out and "clone site rewritten: yes" in out, out
    assert "thread through a rewritten clone site: ok" in out, out


def _probe_runs(xc, make_bundle, probe: Path, tmp_path: Path, name: str, script: str) -> dict:
    """Run *script* under sh in a container holding the probe at /probe; its statistics."""
    b = make_bundle(["/bin/sh", "-c", script], writable=True)
    shutil.copy2(probe, b.path / "rootfs/probe")
    b.config["annotations"] = {"org.xcontainers.libos.stats": str(tmp_path / f"{name}.json")}
    b.write()
    r = xc.run(b)
    assert r.rc == 0, r.out + r.err
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_abom_site_cache_rewrites_known_sites_at_load(xc, make_bundle, probe, tmp_path):
    """ABOM's site cache (sitecache.c): a site the probe's start-up trapped at in two processes
    is decided once and recorded; every later exec of the same file has it rewritten by the
    loader (no trap there), and a file changed since (here: its mtime) is not rewritten from
    the stale entries."""
    need_root()
    runs = "; ".join(["/probe start-only"] * 6)
    same = _probe_runs(xc, make_bundle, probe, tmp_path, "same", runs + "; true")
    # Runs 1 and 2 trap and teach; runs 3 to 6 start with the recorded sites rewritten.
    per_run = same["sites_from_cache"] // 4
    assert per_run >= 3 and same["sites_from_cache"] == 4 * per_run, same
    # glibc's set_tid_address and rseq at start are mov32 sites, its prlimit64 and readlink
    # jump sites (the entry keeps the padding slot ABOM took), its arch_prctl and
    # set_robust_list apart sites (the mov a few instructions before the syscall, no padding
    # near: the entry keeps where the mov is): they trapped in runs 1 and 2 only (and in the
    # shell's own start; set_robust_list also in the shell's first fork child, whose _Fork site
    # its parent rewrites before it forks again).
    for name in ("set_tid_address", "rseq", "prlimit64", "readlink", "arch_prctl", "set_robust_list"):
        limit = 4 if name == "set_robust_list" else 3
        assert same["traps"].get(name, 0) <= limit, (name, same["traps"], same.get("sites_by"))
    assert same["sites_by"].get("apart", 0) >= 2, same["sites_by"]
    stale = _probe_runs(xc, make_bundle, probe, tmp_path, "stale",
                        "/probe start-only; /probe start-only; /probe start-only; touch /probe; "
                        "/probe start-only; /probe start-only; true")
    # Only run 3 was rewritten: the touched file is another file for the cache (runs 4 and 5
    # trap and learn again), so its entries were not used.
    assert stale["sites_from_cache"] == per_run, (stale, same)
    assert stale["traps"].get("set_tid_address", 0) >= 4, stale["traps"]


def _text_pieces(smaps: str, path: str) -> list[tuple[int, int, int]]:
    """(start, end, Anonymous bytes) of each executable mapping of *path* in *smaps*."""
    pieces, cur = [], None
    for line in smaps.splitlines():
        f = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            cur = [lo, hi, 0] if "x" in f[1] and f[-1] == path else None
            if cur is not None:
                pieces.append(cur)
        elif cur is not None and f[0] == "Anonymous:":
            cur[2] = int(f[1]) * 1024
    return [tuple(p) for p in pieces]


def test_abom_rewrites_leave_the_rest_of_the_text_a_file_mapping(xc, make_bundle):
    """A rewritten site's page is a private copy; written in place, it would make every fork
    copy the page-table entries of the whole text.  ABOM puts its rewritten pages in aligned
    chunks of their own (abom.c, text_replace), and a process whose loader rewrote sites in
    place (the site cache) has the chunks without a rewrite mapped again before its first fork
    (clean_text): the text stays named by its file at every address, and only those
    chunks hold private pages.  Checked in a shell that ran loops (its sites rewritten by
    traps) and in a shell started after them (its sites rewritten by its loader) once it
    forked."""
    need_root()
    chunk = libos_abi.XC_OWN_CHUNK
    script = ("i=0; while [ $i -lt 30 ]; do i=$((i+1)); /bin/cat /proc/self/stat > /dev/null; done; "
              "/bin/cat /proc/$$/smaps; echo ===; exec /bin/sh -c '/bin/true | /bin/true; /bin/cat /proc/$$/smaps; true'")
    r = xc.run(make_bundle(["/bin/sh", "-c", script]))
    assert r.rc == 0, r.err
    for smaps in r.out.split("===\n"):
        pieces = _text_pieces(smaps, "/bin/busybox")
        assert pieces, smaps[:2000]
        lo, hi = min(p[0] for p in pieces), max(p[1] for p in pieces)
        assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:])), pieces   # one text, no hole
        private = [p for p in pieces if p[2]]
        assert private, pieces                                                 # sites were rewritten
        for a, b, _ in private:
            assert (a % chunk == 0 or a == lo) and (b % chunk == 0 or b == hi), (hex(a), hex(b), pieces)
        clean = sum(b - a for a, b, anon in pieces if not anon)
        assert clean >= (hi - lo) // 2, (r.out.split("===\n").index(smaps), pieces)


def test_abom_trampolines_of_a_low_program_follow_the_libos(xc, make_bundle):
    """A static program below 2 GiB (busybox) has its trampolines right after the LibOS's
    image, not in a page of their own near its code: the page shares the image's page-table
    page and pages added there make one mapping (two mappings and a page table fewer to copy
    at each fork).  Checked in a shell whose loops had sites rewritten by traps and in one
    whose loader rewrote them (the site cache)."""
    need_root()
    script = ("i=0; while [ $i -lt 30 ]; do i=$((i+1)); /bin/cat /proc/self/stat > /dev/null; done; "
              "/bin/cat /proc/$$/maps; echo ===; exec /bin/sh -c '/bin/true | /bin/true; /bin/cat /proc/$$/maps; true'")
    r = xc.run(make_bundle(["/bin/sh", "-c", script]))
    assert r.rc == 0, r.err
    for maps in r.out.split("===\n"):
        rows = [ln.split() for ln in maps.splitlines() if ln.strip()]
        spans = [tuple(int(x, 16) for x in row[0].split("-")) + (row[1], row[5] if len(row) > 5 else "")
                 for row in rows]
        libos = [i for i, sp in enumerate(spans) if sp[3].endswith("xc-libos")]
        assert libos, maps
        rwx = [sp for sp in spans if sp[2] == "rwxp"]
        assert len(rwx) == 1, maps                       # one mapping of trampoline pages
        # ... right after the LibOS's image: its code, the sealed and writable state
        image_end = spans[libos[-1] + 2][1]
        assert rwx[0][0] == image_end and rwx[0][3] == "", (hex(image_end), maps)


def test_abom_off_leaves_sites_alone(xc, make_bundle, probe):
    need_root()
    b = make_bundle(["/probe", "abom"], writable=True)
    shutil.copy2(probe, b.path / "rootfs/probe")
    b.config["annotations"] = {"org.xcontainers.libos.abom": "off"}
    b.write()
    r = xc.run(b)
    assert r.rc == 0 and "site rewritten: no" in r.out, r.out + r.err


def test_abom_threads_hammering_sites_being_patched(xc, make_bundle, probe):
    """100 fresh processes, each with 32 threads x 10 rounds on the same and different sites
    (mov32, mov64, jump, movs and a jump site across two cache lines, a live red zone) while they are patched."""
    out = _run_probe(xc, make_bundle, probe, "abom-stress", "100")
    assert "100 processes x 32 threads on sites being patched: 0 wrong" in out, out


def test_proc_self_exe_by_each_name_of_the_program_as_under_runc(xc, runc, make_bundle, probe):
    """An execve of the caller's own file passes the caller's path on to the new image
    (no readlink of its own) only while that is the file's one name on its mount, the
    file did not change and the path still leads to it: a second (hard) link, the exec
    by that link, a rename, a renamed directory, another mount each give the name the
    kernel gives, as under runc."""
    need_root()
    outs = {}
    for name, rt in (("runc", runc), ("xc", xc)):
        b = make_bundle(["/d/probe", "exe-names", "/again/d/probe"], writable=True)
        (b.path / "rootfs/d").mkdir()
        shutil.copy2(probe, b.path / "rootfs/d/probe")
        (b.path / "rootfs/again").mkdir()
        b.config["mounts"].append({"destination": "/again", "type": "bind", "source": str(b.path / "rootfs"),
                                   "options": ["bind", "ro"]})
        b.write()
        r = rt.run(b)
        assert r.rc == 0, r.out + r.err
        outs[name] = r.out
    assert outs["xc"] == outs["runc"], outs
    lines = dict(line.split(": ", 1) for line in outs["runc"].splitlines())
    assert lines["by the second link"] == "/d/probe-hardlink" and lines["renamed"] == "/d/probe-renamed"
    assert lines["itself again"] == lines["by a symlink"] == lines["renamed back"] == "/d/probe"
    assert lines["through another mount"] == "/again/d/probe"
    assert lines["its directory renamed"] == "/d-renamed/probe"


def test_exec_request_naming_an_unreadable_fd_loads_the_path(xc, make_bundle, probe, gate_address):
    """The exec request (in the container's segment, writable from the gate) may name the
    program's open file; one naming a closed fd, a pipe or the segment's own fd is not
    read as the program: the new image opens the path and runs."""
    out = _run_probe(xc, make_bundle, probe, "forged-fd", hex(gate_address))
    assert out.splitlines() == ["a closed fd: /probe", "a pipe: /probe", "the statistics fd: /probe"], out


def test_abom_direct_gates_keep_the_calls_meaning(xc, runc, make_bundle, probe):
    """Sites of calls the LibOS only forwards (write; read and getpid through one
    JUMP site; openat unless its path starts "/pro" or "/dev") go straight to a
    direct gate: same results as under runc, the registers and flags kept, the
    LibOS's own fds still EBADF, /proc/self/exe still the program, and a path
    whose first four bytes cannot be read still answered as Linux does; an
    openat of the running program's file for writing still ETXTBSY (running.c)."""
    lines = {}
    for name, rt in (("runc", runc), ("xc", xc)):
        out = _run_probe(rt, make_bundle, probe, "abom-direct")
        lines[name] = dict(line.split(": ", 1) for line in out.splitlines())
    forms = {"direct write form", "jump site form", "openat form"}
    assert {k: v for k, v in lines["xc"].items() if k not in forms} == \
        {k: v.replace("(unpatched)", "(8d 8f)") for k, v in lines["runc"].items() if k not in forms}
    assert lines["runc"]["direct write"] == "ok" and lines["runc"]["jump site other numbers"] == "ok"
    assert lines["xc"]["direct registers and flags kept"] == "yes (8d 8f)"
    assert lines["xc"]["direct libos fds"] == "EBADF EBADF"
    assert lines["xc"]["jump site other numbers"] == "ok"
    # the trampolines begin with the fd check (mov32 write) and the number check (JUMP)
    assert lines["xc"]["direct write form"] == "8d 8f"
    assert lines["xc"]["jump site form"] == "8d 88"
    assert lines["xc"]["openat form"] == "8d 8f"
    assert lines["xc"]["openat /proc/self/exe is the program"] == "yes"
    assert lines["xc"]["openat of a short path at a page's end"] == "ENOENT"
    assert lines["xc"]["openat of an unmapped path"] == "EFAULT"
    # the running program's own file: write access or O_TRUNC leave the direct path (ETXTBSY)
    assert lines["runc"]["openat of the running program O_WRONLY"] == "ETXTBSY ETXTBSY ETXTBSY"
    assert lines["runc"]["openat of the running program O_RDONLY|O_TRUNC"] == "ETXTBSY ETXTBSY ETXTBSY"
    assert lines["runc"]["openat of the running program O_RDONLY"] == "OK OK OK"
    assert lines["runc"]["openat of the running program for writing, from a child"] == "ETXTBSY"


def test_uname_answer_follows_sethostname(xc, make_bundle, probe):
    """uname is answered in the LibOS after its first call; a sethostname by any
    process of the container makes every LibOS ask the host again."""
    need_root()
    b = make_bundle(["/probe", "uts"], writable=True)
    shutil.copy2(probe, b.path / "rootfs/probe")
    b.config["hostname"] = "xcprobe"
    for v in b.process["capabilities"].values():
        v.append("CAP_SYS_ADMIN")
    b.write()
    r = xc.run(b)
    assert r.rc == 0, r.out + r.err
    assert r.out.splitlines() == ["before: xcprobe", "after: xcprobe-renamed", "other process after: xcprobe-renamed"]


def test_abom_leaves_b8_inside_a_longer_instruction(xc, make_bundle, probe):
    """Pitfall 2: the bytes b8 27 00 00 00 before a syscall are the tail of a movabs."""
    out = _run_probe(xc, make_bundle, probe, "abom")
    assert "b8 inside a longer instruction kept: yes" in out


ABOM_CASES = ("not-boundary", "imm-mismatch", "no-gap", "jump", "mov32", "mov64", "no-function", "split-mov",
              "cache-line", "jump-split", "apart", "apart-entered")
# The cases rewritten behind a placeholder (their bytes span two cache lines), and the cases
# whose verdict is not their name, with their verdicts.
SPLIT = {"split-mov": "mov32", "cache-line": "mov32", "jump-split": "jump", "apart-entered": "apart"}


def test_abom_verdict_for_each_case(xc, make_bundle, probe, tmp_path):
    """One hand-made site per verdict (tests/guest/libos_probe.c, probe_abom_cases), and one per
    placeholder kind for sites across two cache lines (SPLIT: `0f 05` for a mov, `f4` for a mov
    and for a jump site, each given its rewrite's verdict): the LibOS's trace gives each the
    verdict expected, the results stay right, and the offline scan agrees (but for
    imm-mismatch, which only the trapped number shows)."""
    from xcontainers.abom import scan_file

    need_root()
    trace = tmp_path / "trace"
    b = make_bundle(["/probe", "abom-cases"], writable=True)
    shutil.copy2(probe, b.path / "rootfs/probe")
    b.config["annotations"] = {"org.xcontainers.libos.trace": str(trace)}
    b.write()
    r = xc.run(b)
    assert r.rc == 0, r.out + r.err
    for case in ABOM_CASES:
        assert f"case {case}: ok" in r.out, r.out
    syms = subprocess.run(["nm", str(probe)], capture_output=True, text=True, check=True).stdout
    addr = {m.group(2).replace("_", "-"): int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+) T case_(\w+)_sys$", syms, re.M)}
    online = {int(v, 16): verdict for v, verdict in
              re.findall(r"^abom /probe (0x[0-9a-f]+) nr=\d+ (\S+)$", trace.read_text(), re.M)}
    offline = {s.vaddr: s for s in scan_file(str(probe)).sites}
    for case in ABOM_CASES:
        verdict = SPLIT.get(case, case)
        assert online.get(addr[case]) == verdict, (case, online.get(addr[case]))
        want = "mov32" if case == "imm-mismatch" else verdict
        assert offline[addr[case]].verdict == want, (case, offline[addr[case]])
    assert offline[addr["imm-mismatch"]].entered_by_jump


def test_abom_profile_and_trace(xc, make_bundle, tmp_path):
    """org.xcontainers.libos.syscalls refuses (mkdir fails with the errno asked for, and its trace
    line shows it) and traces; a getpid forwarded to the host still answers right (which path
    answered is not visible from inside); uname reports the profile's kernel."""
    need_root()
    trace = tmp_path / "trace"
    b = make_bundle(["/bin/sh", "-c", "mkdir /tmp/d; echo mkdir=$?; uname -r; uname -v; echo pid=$$"],
                    writable=True)
    b.config["annotations"] = {
        "org.xcontainers.libos.syscalls": "mkdir=refuse:EACCES+trace,getpid=forward",
        "org.xcontainers.libos.uname.release": "5.10.0-xc",
        "org.xcontainers.libos.uname.version": "#1 xcontainers",
        "org.xcontainers.libos.trace": str(trace),
    }
    b.write()
    r = xc.run(b)
    assert r.rc == 0, r.err
    assert "mkdir: can't create directory '/tmp/d': Permission denied" in r.err, r.err
    assert r.out.splitlines() == ["mkdir=1", "5.10.0-xc", "#1 xcontainers", "pid=1"], r.out
    text = trace.read_text()
    assert re.search(r'^\[\d+\] mkdir\("/tmp/d", 0x1ff, .*\) = -13', text, re.M), text
    assert re.search(r"^abom \S+ 0x[0-9a-f]+ nr=\d+ (mov32|jump)$", text, re.M), text


@pytest.mark.parametrize("value, error", [
    ("nosuchcall=forward", "'nosuchcall' is not a system call the X-LibOS serves"),
    ("getpid=refuse:EWHAT", "'EWHAT' is not an errno"),
    ("execve=forward", "execve is served by the LibOS's own handling"),
    ("getuid=forward", "getuid cannot be forwarded: the exokernel interface does not have it"),
    ("exit_group=refuse", "exit_group cannot be refused"),
    ("getpid=sometimes", "the action must be serve, forward, refuse[:ERRNO] or trace"),
])
def test_bad_libos_profile_is_refused_cleanly(xc, make_bundle, value, error):
    need_root()
    before = snapshot_host()
    b = make_bundle(["/bin/true"])
    b.config["annotations"] = {"org.xcontainers.libos.syscalls": value}
    b.write()
    cid = f"badprof-{uuid.uuid4().hex[:8]}"
    r = xc.run(b, cid)
    assert r.rc != 0 and error in r.err, r.err
    after = snapshot_host()
    # What this container could have left (others' containers come and go meanwhile).
    assert sorted(set(after["mounts"]) - set(before["mounts"])) == []
    assert [c for c in after["cgroups"] if os.path.basename(c) == cid] == []
    assert not os.path.exists(os.path.join(xc.root, cid))


# --- offline ABOM ---------------------------------------------------------------------------


SCRIPT = "ls / | head -3; echo $((6 * 7)); i=0; while [ $i -lt 50 ]; do i=$((i+1)); done; echo $i; cat /etc/hostname"


def test_abom_patch_prepatched_busybox_runs_the_same(xc, make_bundle, tmp_path):
    """`xc abom patch` rewrites busybox's mov sites into calls through the LibOS's table (verified
    as it writes); the pre-patched binary gives the same output on the LibOS, its calls arrive
    patched without online patching, and off the LibOS it cannot run (it says so)."""
    from xcontainers.abom import patch_file

    need_root()
    out = tmp_path / "busybox.patched"
    res = patch_file("/bin/busybox", str(out))
    assert len(res.sites) > 150 and all(s.verdict in ("mov32", "mov64") for s in res.sites)
    assert all(reason for _, reason in res.refused)
    runs = {}
    for name, binary in (("plain", "/bin/busybox"), ("patched", str(out))):
        b = make_bundle(["/bin/sh", "-c", SCRIPT], writable=True)
        shutil.copy2(binary, b.path / "rootfs/bin/busybox")
        (b.path / "rootfs/etc/hostname").write_text("xc\n")
        b.config["annotations"] = {"org.xcontainers.libos.stats": str(tmp_path / f"{name}.json")}
        b.write()
        r = xc.run(b)
        assert r.rc == 0, r.err
        runs[name] = (r.out, json.loads((tmp_path / f"{name}.json").read_text()))
    assert runs["patched"][0] == runs["plain"][0] == "bin\ndev\netc\n42\n50\nxc\n"
    plain, patched = runs["plain"][1], runs["patched"][1]
    assert patched["sites_by"].get("mov32", 0) < plain["sites_by"]["mov32"] // 4, (plain, patched)
    assert patched["by_path"]["patched"] > plain["by_path"]["patched"]


def test_abom_patch_refuses_what_it_cannot_use(tmp_path):
    from xcontainers.abom import patch_file
    from xcontainers.errors import XcError

    text = tmp_path / "not-elf"
    text.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(XcError, match="not-elf"):
        patch_file(str(text), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    r = subprocess.run([shutil.which("xc", path=str(ROOT / ".venv/bin")), "abom", "patch", "/bin/busybox",
                        "/bin/busybox"], capture_output=True, text=True)
    assert r.returncode == 1 and "OUT must differ from IN" in r.stderr


def test_xc_stats_of_a_running_container_and_xc_run_trace(tmp_path):
    """`xc stats ID` reads a running container's segment; `xc run --trace` prints the LibOS's log."""
    need_root()
    env = dict(os.environ, XC_BUNDLES=str(tmp_path / "bundles"), XC_ROOT=str(tmp_path / "state"))
    xc_cli = shutil.which("xc", path=str(ROOT / ".venv/bin"))
    name = f"stats-{os.getpid()}"
    log = tmp_path / "run.log"
    with open(log, "w") as f:  # not pipes: the detached container keeps its stdio
        r = subprocess.run([xc_cli, "run", "-d", "--name", name, "busybox", "sh", "-c",
                            "ls / > /dev/null; echo ready > /tmp/ready; exec sleep 60"],
                           stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env, timeout=60)
    try:
        assert r.returncode == 0, log.read_text()
        rootfs = tmp_path / "bundles" / name / "rootfs"
        for _ in range(200):
            if (rootfs / "tmp/ready").exists():
                break
            time.sleep(0.05)
        r = subprocess.run([xc_cli, "stats", name, "--json"], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["processes"] >= 2 and st["total"] > 20 and st["calls"].get("newfstatat", 0) > 0, st
        assert sum(st["sites_by"].values()) == st["sites_patched"] + st["sites_refused"] > 0, st
        r = subprocess.run([xc_cli, "stats", name], capture_output=True, text=True, env=env, timeout=30)
        assert r.returncode == 0 and r.stdout.startswith("X-LibOS: ") and "ABOM sites: " in r.stdout, r.stdout
    finally:
        subprocess.run([xc_cli, "rm", "-f", name], capture_output=True, env=env, timeout=60)
    r = subprocess.run([xc_cli, "stats", name], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and name in r.stderr
    r = subprocess.run([xc_cli, "run", "--rm", "--trace", "busybox", "cat", "/etc/hostname"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r'^\[1\] openat\(0xffffff9c, "/etc/hostname", 0x0\) = 3', r.stderr, re.M), r.stderr
    # ABOM's verdicts too, for sites that trap often enough to be looked at (a loop)
    r = subprocess.run([xc_cli, "run", "--rm", "--trace", "busybox", "sh", "-c",
                        "for i in 1 2 3 4 5 6 7 8; do echo $i > /dev/null; done"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^abom /bin/busybox 0x[0-9a-f]+ nr=\d+ (mov32|jump)$", r.stderr, re.M), r.stderr
