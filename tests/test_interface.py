"""The exokernel interface's size and documentation: a guard against growth.

The interface (src/libos/interface.def) is the list of host system calls the
LibOS's gate may make; it is the container's attack surface on the host, so
its size is a number we keep: INTERFACE_MAX is what it allows today.  A
change that needs a new host call must serve another one through the
remaining calls, or raise INTERFACE_MAX on purpose and say why in
docs/architecture.md ("The exokernel interface").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

from conftest import ROOT

from xcontainers import libos

INTERFACE_MAX = 142

CHECKS = {"ANY", "CLONE", "PRCTL", "EXEC_LIBOS", "ARCH_PRCTL", "IOCTL", "FCNTL", "SOCKET", "MMAP", "MPROTECT",
          "NOT_LIBOS", "MREMAP", "CLOSE", "DUP3", "CLOSE_RANGE"}


def _xc(*args: str) -> str:
    xc = shutil.which("xc", path=str(ROOT / ".venv/bin")) or shutil.which("xc")
    assert xc, "the xc command is not installed (pip install -e .)"
    return subprocess.run([xc, *args], capture_output=True, text=True, check=True, timeout=60).stdout


def test_interface_does_not_grow():
    data = json.loads(_xc("libos", "interface", "--json"))
    numbers = [c["nr"] for c in data["calls"]]
    assert data["size"] == len(numbers) == len(set(numbers))
    assert data["size"] <= INTERFACE_MAX, (
        f"the exokernel interface grew to {data['size']} host calls (INTERFACE_MAX {INTERFACE_MAX}): "
        "serve the new call through the others, or raise INTERFACE_MAX and say why in docs/architecture.md")


def test_interface_count_is_printed():
    first = _xc("libos", "interface").splitlines()[0]
    assert first == f"exokernel interface: {len(libos.interface())} host system calls, allowed only from the LibOS gate"


def test_every_check_is_known_and_documented():
    """Each argument check a line names is one the filter knows, documented (why) in the
    interface.def header and in docs/interface.md."""
    used = {check for _, _, check in libos.interface()}
    assert used <= CHECKS
    head = (ROOT / "src/libos/interface.def").read_text().split("*/", 1)[0]
    filter_c = (ROOT / "src/libos/filter.c").read_text()
    enum = re.search(r"enum check \{([^}]*)\}", filter_c).group(1)
    assert {w for w in re.findall(r"\w+", enum) if w != "N_CHECKS"} == CHECKS
    doc = libos.interface_markdown()
    for check in CHECKS - {"ANY"}:
        assert re.search(rf"^ \*   {check}\s", head, re.M), f"{check} is not explained in interface.def"
    for _, name, check in libos.interface():
        if check != "ANY":
            row = next(line for line in doc.splitlines() if f"| {name} |" in line)
            assert not row.endswith("|  |"), f"{name}: its check {check} has no description in docs/interface.md"


def test_translated_calls_reach_only_the_interface():
    """A call the LibOS serves through other host calls names them in its note, and those are
    on the interface (or are the LibOS's own answers)."""
    allowed = {name for _, name, _ in libos.interface()}
    for nr, name, how, note in libos.table():
        if how == "FORWARD":
            assert name in allowed, name
        if how == "TRANSLATE":
            assert note, f"{name} is translated but its note does not say into what"


def test_the_libos_asks_the_host_only_for_calls_on_the_interface():
    """Every host call the LibOS's C code names (H0..H6(__NR_x, ...)) is on the interface:
    one that left it is refused by the filter at run time (EPERM) without a word, and the
    feature built on it silently takes its slow path (getppid's cache asked the host for
    gettid after gettid left the interface, and every getppid went to the host). The
    filter's own installation (seccomp, before the filter exists) is the one exception."""
    on = {name for _, name, _ in libos.interface()}
    off = []
    for src in sorted((ROOT / "src/libos").glob("*.c")):
        for name in re.findall(r"\bH[0-6]\(\s*__NR_(\w+)", src.read_text()):
            if name not in on and (src.name, name) != ("filter.c", "seccomp"):
                off.append(f"{src.name}: {name}")
    assert off == [], off
