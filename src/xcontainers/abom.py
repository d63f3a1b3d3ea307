"""ABOM offline: every system call site of ELF files, and what online ABOM
(src/libos/abom.c) would do with it; and pre-patching binaries on disk.

    xc abom scan FILE|DIR|IMAGE [--json] [--sites]
    xc abom patch IN OUT [--sites]

The rules are the LibOS's, applied with an independent decoder (capstone)
to the file instead of the mapped image: the function around a site comes
from .eh_frame (or .symtab when there is none); it is decoded from its first
byte; a `mov $nr,%eax; syscall` (mov32) or `mov $nr,%rax; syscall` (mov64)
whose mov is a whole instruction is patched in place; any other site is
patched through padding no control flow reaches (jump), or else, where a
`mov $nr,%eax` comes a few movable instructions before the syscall, through
a trampoline that runs them (apart); everything else is refused with the
LibOS's reason.  A test compares this with the verdicts the
LibOS traces while running the same binaries.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field

from .errors import XcError

# Calls whose handlers need the trap frame: never patched (abom.c: patchable(),
# abi.h: XC_ABOM_NEEDS_FRAME).
SPECIAL = {14: "rt_sigprocmask", 15: "rt_sigreturn", 34: "pause", 131: "sigaltstack", 435: "clone3"}
# ... and clone, which online ABOM patches with a trampoline that sends a clone with
# a new stack to the trap path: never pre-patched (its table stub is ud2).
NOT_PREPATCHED = {**SPECIAL, 56: "clone"}
PATCHED = ("mov32", "mov64", "jump", "apart")


@dataclass
class Site:
    vaddr: int
    verdict: str                 # one of libos_abi.ABOM_VERDICT_NAMES
    nr: int | None = None        # the immediate of a mov form, when there is one
    function: int | None = None  # the start of the function around it
    entered_by_jump: bool = False  # a direct branch lands on the syscall itself


@dataclass
class FileReport:
    path: str
    sites: list[Site] = field(default_factory=list)
    error: str | None = None     # not an x86-64 ELF file, or unreadable

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sites:
            out[s.verdict] = out.get(s.verdict, 0) + 1
        return dict(sorted(out.items()))


def _need_tools():
    try:
        import capstone  # noqa: F401
        import elftools  # noqa: F401
    except ImportError as e:
        raise XcError(f"xc abom needs capstone and pyelftools ({e.name} is missing): "
                      "pip install capstone pyelftools, or make setup") from None


# --- byte-level rules, as decode.c has them ---------------------------------

def _is_padding(b: bytes) -> bool:
    i = 0
    while i < len(b) - 1 and b[i] in (0x66, 0x2E):
        i += 1
    if i == len(b) - 1 and b[i] in (0x90, 0xCC):
        return True
    return i + 1 < len(b) and b[i] == 0x0F and b[i + 1] == 0x1F


def _branch_target(b: bytes, at: int) -> int | None:
    i = 0
    while i < len(b) and b[i] in (0x66, 0x2E, 0x3E, 0xF2, 0xF3):
        i += 1
    if i >= len(b):
        return None
    op = b[i]
    if 0x70 <= op <= 0x7F or op == 0xEB or 0xE0 <= op <= 0xE3:
        rel = int.from_bytes(b[-1:], "little", signed=True)
    elif op in (0xE8, 0xE9) or (op == 0x0F and i + 1 < len(b) and b[i + 1] & 0xF0 == 0x80):
        rel = int.from_bytes(b[-4:], "little", signed=True)
    else:
        return None
    return at + len(b) + rel


def _skip(b: bytes, prefixes: tuple[int, ...], rex: bool) -> int:
    i = 0
    while i < len(b) and (b[i] in prefixes or (rex and b[i] & 0xF0 == 0x40)):
        i += 1
    return i


def _ends_flow(b: bytes) -> bool:
    i = _skip(b, (0xF2, 0xF3, 0x3E, 0x2E), True)
    if i >= len(b):
        return False
    op = b[i]
    if op in (0xC3, 0xC2, 0xE9, 0xEB, 0xF4):
        return True
    if op == 0x0F and i + 1 < len(b) and b[i + 1] == 0x0B:
        return True
    return op == 0xFF and i + 1 < len(b) and (b[i + 1] >> 3) & 7 in (4, 5)


def _indirect_jmp(b: bytes) -> bool:
    i = _skip(b, (0xF2, 0xF3, 0x3E, 0x2E), True)
    return i + 1 < len(b) and b[i] == 0xFF and (b[i + 1] >> 3) & 7 in (4, 5)


# Two-byte opcodes (0f xx) that write an xmm or mm register or memory, never a
# general register (decode.c: xc_insn_movable).
_SSE_NO_GPR = {0x1F, *range(0x10, 0x18), 0x28, 0x29, 0x2E, 0x2F, *range(0x54, 0x70), 0x7F, 0xD6, 0xD4, 0xDB,
               0xDF, 0xEB, 0xEF, *range(0xF8, 0xFF)}


def _movable(b: bytes) -> bool:
    """Whether the instruction *b* does the same wherever it runs and leaves rax
    alone: what an APART rewrite copies into its trampoline (decode.c:
    xc_insn_movable, the same list)."""
    i, n, rex, sse = 0, len(b), 0, False
    while i < n and b[i] in (0x66, 0x64, 0x65, 0xF2, 0xF3):
        sse |= b[i] in (0xF2, 0xF3)
        i += 1
    if i < n and b[i] & 0xF0 == 0x40:
        rex = b[i]
        i += 1
    if i >= n:
        return False
    op = b[i]
    i += 1
    group = None
    if op == 0x0F:
        if i >= n:
            return False
        op2 = b[i]
        i += 1
        if op2 in _SSE_NO_GPR:
            kind = "none"
        elif sse:
            return False
        elif op2 in (0xB6, 0xB7, 0xBE, 0xBF, 0xAF) or 0x40 <= op2 <= 0x4F:
            kind = "reg"
        elif 0x90 <= op2 <= 0x9F:
            kind = "mem"
        else:
            return False
    elif sse:
        return False
    elif 0xB8 <= op <= 0xBF:
        return ((op & 7) | (rex & 1) << 3) != 0
    elif 0x50 <= op <= 0x57:
        return i == n
    elif 0x58 <= op <= 0x5F:
        return i == n and ((op & 7) | (rex & 1) << 3) != 0
    elif op == 0x90:
        return i == n and not rex & 1
    elif op in (0x89, 0x01, 0x09, 0x21, 0x29, 0x31, 0xC1, 0xD1, 0xD3):
        kind = "rm"
    elif op in (0x8B, 0x03, 0x0B, 0x23, 0x2B, 0x33, 0x8D, 0x63):
        kind = "reg"
    elif op in (0x39, 0x3B, 0x85, 0x38, 0x3A, 0x84):
        kind = "none"
    elif op == 0x88:
        kind = "mem"
    elif op in (0xC7, 0xC6, 0x81, 0x83, 0xF7, 0xFF):
        group, kind = op, "rm"
    else:
        return False
    if i >= n:
        return False
    mod, reg, rm = b[i] >> 6, (b[i] >> 3) & 7, b[i] & 7
    if (mod == 0 and rm == 5) or (op == 0x8D and mod == 3):
        return False
    if group in (0xC7, 0xC6) and (reg != 0 or (group == 0xC6 and mod == 3)):
        return False
    if group in (0x81, 0x83) and reg == 7:
        kind = "none"
    if group == 0xF7:
        if reg == 0:
            kind = "none"
        elif reg not in (2, 3):
            return False
    if group == 0xFF and reg > 1:
        return False
    if kind == "mem":
        return mod != 3
    if kind == "rm" and mod == 3:
        return (rm | (rex & 1) << 3) != 0
    if kind == "reg":
        return (reg | (rex & 4) << 1) != 0
    return True


APART_MAX = 40  # abom.c: bytes from an APART site's mov to its syscall


def _apart_mov(w: "_Walk", sys_at: int) -> tuple[int, int] | None:
    """An APART site's mov (abom.c: apart_mov): the nearest `b8 imm32` before the
    syscall with only movable instructions between; (its address, imm32) or None."""
    k = next((j for j, (a, _) in enumerate(w.insns) if a == sys_at), None)
    while k:
        k -= 1
        a, b = w.insns[k]
        if sys_at - a > APART_MAX:
            return None
        if len(b) == 5 and b[0] == 0xB8:
            return (a, int.from_bytes(b[1:], "little")) if sys_at - a > 5 else None
        if not _movable(b):
            return None
    return None


# --- the file ----------------------------------------------------------------

class _Image:
    """The loaded bytes of an ELF file by virtual address (its PT_LOAD segments)."""

    def __init__(self, elf, data: bytes):
        self.segs = [(p["p_vaddr"], p["p_vaddr"] + p["p_filesz"], p["p_offset"])
                     for p in elf.iter_segments() if p["p_type"] == "PT_LOAD"]
        self.exec = [(p["p_vaddr"], p["p_vaddr"] + p["p_filesz"])
                     for p in elf.iter_segments() if p["p_type"] == "PT_LOAD" and p["p_flags"] & 1]
        self.data = data

    def read(self, vaddr: int, n: int) -> bytes:
        for lo, hi, off in self.segs:
            if lo <= vaddr < hi:
                n = min(n, hi - vaddr)
                return self.data[off + vaddr - lo: off + vaddr - lo + n]
        return b""

    def segment_of(self, vaddr: int) -> tuple[int, int] | None:
        for lo, hi in self.exec:
            if lo <= vaddr < hi:
                return lo, hi
        return None


def _functions(elf) -> tuple[str, list[tuple[int, int]]]:
    """(source, sorted [start, end) of every function) from .eh_frame, else .symtab."""
    eh = elf.get_section_by_name(".eh_frame")
    if eh is not None and eh["sh_addr"]:
        from elftools.dwarf.callframe import FDE

        out = []
        try:
            entries = elf.get_dwarf_info().EH_CFI_entries()
        except Exception as e:  # noqa: BLE001 - a malformed .eh_frame is a refusal, not a crash
            raise ValueError(f".eh_frame: {e}") from None
        for e in entries:
            if isinstance(e, FDE) and e.header["address_range"]:
                lo = e.header["initial_location"]
                out.append((lo, lo + e.header["address_range"]))
        return "eh_frame", sorted(out)
    sym = elf.get_section_by_name(".symtab")
    if sym is not None:
        out = [(s["st_value"], s["st_value"] + s["st_size"]) for s in sym.iter_symbols()
               if s["st_info"]["type"] == "STT_FUNC" and s["st_size"]]
        return "symtab", sorted(set(out))
    return "none", []


@dataclass
class _Walk:
    insns: list[tuple[int, bytes]]
    targets: set[int]
    n_targets: int  # branches with a target; the LibOS keeps at most 256
    indirect: bool
    pads: list[tuple[int, int, bool]]  # start, end, inside the function


def _walk(img: _Image, md, start: int, end: int, nxt: int | None) -> _Walk | None:
    code = img.read(start, end - start)
    if len(code) != end - start:
        return None
    insns: list[tuple[int, bytes]] = []
    pos = 0
    for ins in md.disasm(code, start):
        if ins.address != start + pos:
            return None
        insns.append((ins.address, bytes(ins.bytes)))
        pos += ins.size
    if pos != len(code):
        return None
    w = _Walk(insns, set(), 0, False, [])
    pad_start, after_end = None, False
    for a, b in insns:
        t = _branch_target(b, a)
        if t is not None:
            w.targets.add(t)
            w.n_targets += 1
        w.indirect |= _indirect_jmp(b)
        if _is_padding(b) and after_end:
            pad_start = a if pad_start is None else pad_start
        else:
            if pad_start is not None and a - pad_start >= 5:
                w.pads.append((pad_start, a, True))
            pad_start = None
            after_end = _ends_flow(b)
    if pad_start is not None and end - pad_start >= 5:
        w.pads.append((pad_start, end, True))
    if nxt is not None and end < nxt <= end + 256 and nxt - end >= 5:
        tail = img.read(end, nxt - end)
        pos, ok = 0, len(tail) == nxt - end
        for ins in md.disasm(tail, end) if ok else ():
            if not _is_padding(bytes(ins.bytes)):
                break
            pos += ins.size
        if ok and pos == len(tail):
            w.pads.append((end, nxt, False))
    return w


class _Pads:
    """Padding slots handed out as the LibOS does: five bytes at a time, from the start."""

    def __init__(self) -> None:
        self.next: dict[int, int] = {}

    def take(self, w: _Walk, site: int) -> bool:
        for start, end, inside in w.pads:
            if start not in self.next:
                if inside and (w.indirect or w.n_targets > 256 or any(start <= t < end for t in w.targets)):
                    continue
            slot = self.next.get(start, start)
            if slot + 5 > end or not -128 <= slot - (site + 2) <= 127:
                continue
            self.next[start] = slot + 5
            return True
        return False


def scan_file(path: str) -> FileReport:
    """Every syscall site of one ELF file with online ABOM's verdict on it."""
    _need_tools()
    import capstone
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    rep = FileReport(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        import io

        elf = ELFFile(io.BytesIO(data))
        if elf["e_machine"] != "EM_X86_64":
            rep.error = f"not x86-64 ({elf['e_machine']})"
            return rep
        source, funcs = _functions(elf)
    except (OSError, ELFError, ValueError) as e:
        rep.error = str(e.strerror if isinstance(e, OSError) else e)
        return rep
    img = _Image(elf, data)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    starts = sorted({lo for lo, _ in funcs})
    pads = _Pads()
    seen: set[int] = set()
    import bisect

    for lo, hi in funcs:
        seg = img.segment_of(lo)
        if seg is None or hi > seg[1]:
            continue
        k = bisect.bisect_left(starts, hi)
        nxt = starts[k] if k < len(starts) else None
        if nxt is not None and nxt > seg[1]:
            nxt = None
        w = _walk(img, md, lo, hi, nxt)
        if w is None:
            code = img.read(lo, hi - lo)
            for i in range(len(code) - 1):
                if code[i:i + 2] == b"\x0f\x05" and lo + i not in seen:
                    seen.add(lo + i)
                    rep.sites.append(Site(lo + i, "undecodable", function=lo))
            continue
        starts_in = {a for a, _ in w.insns}
        for a, b in w.insns:
            if b != b"\x0f\x05" or a in seen:
                continue
            seen.add(a)
            rep.sites.append(_decide(img, w, pads, starts_in, a, lo))
    # Syscall bytes in executable segments outside every known function.
    covered = [(lo, hi) for lo, hi in funcs]
    for seg_lo, seg_hi in img.exec:
        code = img.read(seg_lo, seg_hi - seg_lo)
        i = code.find(b"\x0f\x05")
        while i >= 0:
            a = seg_lo + i
            k = bisect.bisect_right(covered, (a, float("inf"))) - 1
            inside = k >= 0 and covered[k][0] <= a < covered[k][1]
            if not inside and a not in seen:
                seen.add(a)
                rep.sites.append(Site(a, "no-function"))
            i = code.find(b"\x0f\x05", i + 1)
    rep.sites.sort(key=lambda s: s.vaddr)
    _ = source
    return rep


def _decide(img: _Image, w: _Walk, pads: _Pads, starts: set[int], sys_at: int, fn: int) -> Site:
    before = img.read(sys_at - 7, 7) if sys_at - 7 >= fn - 7 else b""
    mov32 = len(before) == 7 and before[2] == 0xB8
    mov64 = len(before) == 7 and before[0:3] == b"\x48\xc7\xc0"
    site = Site(sys_at, "no-gap", function=fn, entered_by_jump=sys_at in w.targets)
    why = "no-gap"
    if mov32 or mov64:
        mov = sys_at - (5 if mov32 else 7)
        site.nr = int.from_bytes(before[3:7], "little")
        if site.nr in SPECIAL:
            site.verdict = "special"
            return site
        if mov not in starts:
            why = "not-boundary"
        else:
            # (across two cache lines the LibOS rewrites it behind a placeholder)
            site.verdict = "mov32" if mov32 else "mov64"
            return site
    if pads.take(w, sys_at):
        site.verdict = "jump"
        return site
    apart = _apart_mov(w, sys_at)
    if apart is not None:
        site.nr = apart[1]
        site.verdict = "special" if site.nr in SPECIAL else "apart"
    else:
        site.verdict = why
    return site


def _elf_files(target: str) -> list[str]:
    from .image import IMAGES_DIR

    if not os.path.exists(target) and os.path.isdir(os.path.join(IMAGES_DIR, target, "rootfs")):
        target = os.path.join(IMAGES_DIR, target, "rootfs")
    if os.path.isfile(target):
        return [target]
    if not os.path.isdir(target):
        raise XcError(f"{target}: no such file, directory or image")
    out = []
    for root, dirs, files in os.walk(target):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(root, n)
            if os.path.islink(p) or not os.path.isfile(p):
                continue
            try:
                with open(p, "rb") as f:
                    if f.read(4) == b"\x7fELF":
                        out.append(p)
            except OSError:
                continue
    return out


def scan(target: str) -> list[FileReport]:
    """scan_file() for a file, every ELF file under a directory, or an image's rootfs."""
    return [scan_file(p) for p in _elf_files(target)]


# --- pre-patching -------------------------------------------------------------------

@dataclass
class Patched:
    path: str
    out: str
    sites: list[Site] = field(default_factory=list)          # rewritten on disk
    refused: list[tuple[Site, str]] = field(default_factory=list)  # and why not


def _frame_reason(md, img: _Image, lo: int, hi: int) -> str | None:
    """Why a call at a site of this function could corrupt live data below
    the stack pointer (the call pushes its return address there); None if
    the function never uses memory below its stack pointer."""
    from capstone import x86

    sub_rsp = neg_rbp = 0
    for ins in md.disasm(img.read(lo, hi - lo), lo):
        for op in ins.operands:
            if op.type == x86.X86_OP_MEM:
                if op.mem.base in (x86.X86_REG_RSP, x86.X86_REG_ESP) and op.mem.disp < 0:
                    return "the function uses memory below its stack pointer (the red zone)"
                if op.mem.base in (x86.X86_REG_RBP, x86.X86_REG_EBP) and op.mem.disp < 0:
                    neg_rbp = max(neg_rbp, -op.mem.disp)
        if (ins.mnemonic == "sub" and len(ins.operands) == 2 and ins.operands[0].type == x86.X86_OP_REG
                and ins.operands[0].reg == x86.X86_REG_RSP and ins.operands[1].type == x86.X86_OP_IMM):
            sub_rsp = max(sub_rsp, ins.operands[1].imm)
    if neg_rbp > sub_rsp:
        return "locals below rbp may lie below the stack pointer (the red zone)"
    return None


def _call_bytes(nr: int) -> bytes:
    from .libos_abi import XC_ABOM_TABLE

    return b"\xff\x14\x25" + (XC_ABOM_TABLE + 8 * nr).to_bytes(4, "little")  # call *abs32


def patch_file(path: str, out: str) -> Patched:
    """Rewrite what can be proven safe ahead of time, into *out*:

        b8 NN NN NN NN 0f 05         ->  ff 14 25 TT TT TT TT   call *(XC_ABOM_TABLE + 8*nr)
        48 c7 c0 NN NN NN NN 0f 05   ->  ff 14 25 TT TT TT TT   eb f7 (jmp back to the call)

    The LibOS maps the table in every process, so the file's pages stay as
    they are on disk and shared between containers.  A pre-patched binary
    runs only on the X-LibOS.  A site is left alone, with the reason, when
    online ABOM would not patch it as a mov, when its number is one the
    LibOS keeps on the trap path, when a jump (or a jump table) may enter
    it past its start, or when the call's return address could land on live
    data below the stack pointer."""
    _need_tools()
    import capstone
    from elftools.elf.elffile import ELFFile

    from .libos_abi import XC_NR_MAX

    rep = scan_file(path)
    if rep.error:
        raise XcError(f"{path}: {rep.error}")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    import io

    elf = ELFFile(io.BytesIO(bytes(data)))
    img = _Image(elf, bytes(data))
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    res = Patched(path, out)
    funcs = dict(_functions(elf)[1])
    frame_cache: dict[int, str | None] = {}
    for site in rep.sites:
        if site.verdict not in ("mov32", "mov64"):
            res.refused.append((site, f"online ABOM's verdict is {site.verdict}: not a mov site it patches"))
            continue
        if site.nr is None or not 0 <= site.nr < XC_NR_MAX or site.nr in NOT_PREPATCHED:
            res.refused.append((site, "the LibOS keeps this call on the trap path"))
            continue
        n = 5 if site.verdict == "mov32" else 7
        mov = site.vaddr - n
        lo, hi = site.function, funcs.get(site.function, 0)
        w = _walk(img, md, lo, hi, None) if lo is not None else None
        if w is None:
            res.refused.append((site, "the function does not decode"))
            continue
        if w.indirect:
            res.refused.append((site, "the function has an indirect jump: a jump table might enter the site"))
            continue
        if any(mov < t <= site.vaddr + 1 for t in w.targets):
            res.refused.append((site, "a jump enters the site past its first byte"))
            continue
        if lo not in frame_cache:
            frame_cache[lo] = _frame_reason(md, img, lo, hi)
        if frame_cache[lo]:
            res.refused.append((site, frame_cache[lo]))
            continue
        new = _call_bytes(site.nr) + (b"\xeb\xf7" if n == 7 else b"")
        off = _file_offset(img, mov)
        data[off:off + len(new)] = new
        res.sites.append(site)
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
    try:
        _verify(path, tmp, res)
    except XcError:
        os.unlink(tmp)
        raise
    os.replace(tmp, out)
    return res


def _file_offset(img: _Image, vaddr: int) -> int:
    for lo, hi, off in img.segs:
        if lo <= vaddr < hi:
            return off + vaddr - lo
    raise XcError(f"{vaddr:#x} is in no segment of the file")


def _verify(path: str, out: str, res: Patched) -> None:
    """The verification pass: the new file differs from the old exactly at the
    rewritten sites, each decodes as the call (and jump) intended, and it
    still scans."""
    import capstone
    from elftools.elf.elffile import ELFFile

    from .libos_abi import XC_ABOM_TABLE

    with open(path, "rb") as f:
        old = f.read()
    with open(out, "rb") as f:
        new = f.read()
    import io

    img = _Image(ELFFile(io.BytesIO(new)), new)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    allowed: set[int] = set()
    for s in res.sites:
        n = 5 if s.verdict == "mov32" else 7
        mov = s.vaddr - n
        off = _file_offset(img, mov)
        allowed.update(range(off, off + n + 2))
        insns = list(md.disasm(new[off:off + n + 2], mov))
        want = f"qword ptr [{XC_ABOM_TABLE + 8 * s.nr:#x}]"
        ok = insns and insns[0].mnemonic == "call" and insns[0].op_str == want and insns[0].size == 7
        if n == 7:
            ok = ok and len(insns) == 2 and insns[1].mnemonic == "jmp" and int(insns[1].op_str, 16) == mov
        if not ok:
            raise XcError(f"verification: the site at {s.vaddr:#x} does not decode as the call intended")
    if len(old) != len(new) or any(old[i] != new[i] for i in range(len(old)) if i not in allowed):
        raise XcError("verification: bytes outside the rewritten sites changed")
    rep = scan_file(out)
    if rep.error:
        raise XcError(f"verification: the result does not scan: {rep.error}")
    left = {x.vaddr for x in rep.sites}
    if any(s.vaddr in left for s in res.sites):
        raise XcError("verification: a rewritten site still holds a syscall")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="abom_cmd", metavar="scan|patch", required=True)
    s = sub.add_parser("scan", help="every syscall site and what online ABOM would do with it")
    s.add_argument("target", help="an ELF file, a directory, or an image name")
    s.add_argument("--json", action="store_true")
    s.add_argument("--sites", action="store_true", help="list every site, not only the summaries")
    pp = sub.add_parser("patch", help="pre-patch an ELF file's mov sites into calls (runs only on the X-LibOS)")
    pp.add_argument("input")
    pp.add_argument("output")
    pp.add_argument("--sites", action="store_true", help="list every site and why it was or was not patched")


def cmd_patch(a: argparse.Namespace) -> int:
    if os.path.realpath(a.input) == os.path.realpath(a.output):
        raise XcError("xc abom patch: write to a new file (OUT must differ from IN)")
    res = patch_file(a.input, a.output)
    why: dict[str, int] = {}
    for _, r in res.refused:
        why[r] = why.get(r, 0) + 1
    total = len(res.sites) + len(res.refused)
    print(f"{a.output}: {len(res.sites)} of {total} sites pre-patched (verified); runs only on the X-LibOS")
    for r, k in sorted(why.items(), key=lambda kv: -kv[1]):
        print(f"  left {k}: {r}")
    if a.sites:
        for s in res.sites:
            print(f"  {s.vaddr:#x} nr={s.nr} {s.verdict}: pre-patched")
        for s, r in res.refused:
            print(f"  {s.vaddr:#x} {s.verdict}: {r}")
    return 0


def cmd_abom(a: argparse.Namespace) -> int:
    if a.abom_cmd == "patch":
        return cmd_patch(a)
    reports = scan(a.target)
    if a.json:
        json.dump([{"path": r.path, "error": r.error, "summary": r.summary(),
                    "sites": [asdict(s) for s in r.sites] if a.sites else None} for r in reports],
                  sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    total: dict[str, int] = {}
    for r in reports:
        if r.error:
            print(f"{r.path}: {r.error}")
            continue
        if not r.sites:
            if len(reports) == 1:
                print(f"{r.path}: no system call sites (its calls go through a library)")
            continue
        summ = r.summary()
        for k, v in summ.items():
            total[k] = total.get(k, 0) + v
        n = len(r.sites)
        ok = sum(v for k, v in summ.items() if k in PATCHED)
        print(f"{r.path}: {n} sites, {ok} patchable ({100 * ok // n}%): "
              + ", ".join(f"{k} {v}" for k, v in summ.items()))
        if a.sites:
            for s in r.sites:
                nr = f" nr={s.nr}" if s.nr is not None else ""
                print(f"  {s.vaddr:#x} {s.verdict}{nr}")
    if len(reports) > 1:
        n = sum(total.values())
        ok = sum(v for k, v in total.items() if k in PATCHED)
        print(f"total: {len([r for r in reports if r.sites])} files with sites, {n} sites, {ok} patchable"
              + (f" ({100 * ok // n}%)" if n else "") + ": " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    return 0
