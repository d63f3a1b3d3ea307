"""The LibOS's instruction-length decoder (src/libos/decode.c) against capstone.

ABOM rewrites a site only if the site's bytes are instruction starts on a walk
from the function's first byte; that walk is only as good as the decoder.  This
builds decode.c as a host library and decodes every function (from .eh_frame)
of real binaries with both; every length must agree.  (A pure-logic test: no
container needed.)"""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

capstone = pytest.importorskip("capstone", reason="capstone is needed (make setup installs the abom extra)")
pytest.importorskip("elftools", reason="pyelftools is needed (make setup installs the abom extra)")

BINARIES = ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/sbin/nginx", "/bin/busybox",
            "/usr/lib/x86_64-linux-gnu/libcrypto.so.3"]


@pytest.fixture(scope="module")
def decoder(tmp_path_factory) -> ctypes.CDLL:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build decode.c for the host")
    so = tmp_path_factory.mktemp("decode") / "libdecode.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-I", str(ROOT / "src/libos"), "-o", str(so),
                    str(ROOT / "src/libos/decode.c")], check=True)
    lib = ctypes.CDLL(str(so))
    lib.xc_insn_len.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return lib


@pytest.mark.parametrize("path", BINARIES)
def test_decoder_agrees_with_capstone(decoder, path):
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed (make setup installs it)")
    import io

    from elftools.elf.elffile import ELFFile

    from xcontainers.abom import _functions, _Image

    data = Path(path).read_bytes()
    elf = ELFFile(io.BytesIO(data))
    img = _Image(elf, data)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    source, funcs = _functions(elf)
    assert source == "eh_frame" and len(funcs) > 500
    n, bad = 0, []
    for lo, hi in funcs:
        code = img.read(lo, hi - lo)
        for ins in md.disasm(code, lo):
            rest = code[ins.address - lo:]
            n += 1
            got = decoder.xc_insn_len(rest, len(rest))
            if got != ins.size:
                bad.append(f"{ins.address:#x} {ins.mnemonic} {bytes(ins.bytes).hex()}: {got} vs {ins.size}")
                break  # the rest of this function would be misaligned for capstone too
    assert n > 100_000, n
    assert not bad, "\n".join(bad[:20])


RAX = {"rax", "eax", "ax", "al", "ah"}


@pytest.mark.parametrize("path", BINARIES[:3])
def test_movable_instructions_are_what_capstone_says(decoder, path):
    """ABOM's APART rewrite runs the instructions between a `mov $nr,%eax` and its
    syscall in a trampoline: xc_insn_movable (decode.c) must accept only instructions
    that do the same anywhere and leave rax alone.  On every instruction of real
    binaries: the C and Python lists agree, and capstone confirms each one accepted
    has no rip-relative operand, is no branch, call, return or interrupt, and
    writes none of rax's registers (implicitly or not)."""
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed (make setup installs it)")
    import io

    from capstone import x86
    from elftools.elf.elffile import ELFFile

    from xcontainers.abom import _functions, _Image, _movable

    decoder.xc_insn_movable.argtypes = [ctypes.c_char_p, ctypes.c_int]
    data = Path(path).read_bytes()
    elf = ELFFile(io.BytesIO(data))
    img = _Image(elf, data)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.detail = True
    flow = {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET, capstone.CS_GRP_INT,
            capstone.CS_GRP_IRET, capstone.CS_GRP_PRIVILEGE, capstone.CS_GRP_BRANCH_RELATIVE}
    n = accepted = 0
    bad: list[str] = []
    for lo, hi in _functions(elf)[1]:
        for ins in md.disasm(img.read(lo, hi - lo), lo):
            b = bytes(ins.bytes)
            n += 1
            c = bool(decoder.xc_insn_movable(b, len(b)))
            if c != _movable(b):
                bad.append(f"{ins.address:#x} {ins.mnemonic} {ins.op_str} {b.hex()}: C {c}, Python {not c}")
                continue
            if not c:
                continue
            accepted += 1
            _, written = ins.regs_access()
            rip = any(op.type == x86.X86_OP_MEM and op.mem.base == x86.X86_REG_RIP for op in ins.operands)
            if rip or any(g in flow for g in ins.groups) or RAX & {ins.reg_name(r) for r in written}:
                bad.append(f"{ins.address:#x} {ins.mnemonic} {ins.op_str} {b.hex()}: accepted")
    assert n > 50_000 and accepted > 10_000, (n, accepted)
    assert not bad, "\n".join(bad[:20])
