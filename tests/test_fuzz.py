"""The fuzzers of tests/fuzz.py, bounded for CI.

Each Python target runs a fixed, reproducible set of Hypothesis inputs
(XC_FUZZ_EXAMPLES each, default 100) after replaying its corpus; the ELF
loader target executes the corpus's recipes and 150 random ones (a fixed
seed) in one X-Container under the host's trace, next to a second
container, and the same files under runc for comparison.  The long runs:
`python -m tests.fuzz --minutes 30` (`make fuzz`).
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from conftest import XC_RUNTIME, RuntimeUnderTest, build_busybox_rootfs, need_root

import attackkit
import fuzz
import hosttrace

EXAMPLES = int(os.environ.get("XC_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def targets() -> dict[str, Any]:
    pytest.importorskip("hypothesis", reason="hypothesis is in the test extra (pip install -e '.[test]')")
    return fuzz.hypothesis_tests(EXAMPLES)


@pytest.mark.parametrize("target", ["spec", "seccomp", "profile", "image"])
def test_corpus_inputs_keep_the_rules(target):
    """Every input in tests/fuzz_corpus/TARGET (seeds, and what earlier runs found) is
    accepted or refused with a one-line ConfigError naming the field."""
    if target == "image" and fuzz.image_target() is None:
        pytest.skip("the image importer (xcontainers.archive) is not in this tree")
    assert fuzz.corpus(target), f"tests/fuzz_corpus/{target} is empty"
    assert fuzz.replay(target) == []


@pytest.mark.parametrize("name", ["spec", "spec-bytes", "seccomp", "profile"])
def test_fuzz_python_target(name, targets):
    """config.json (structure and bytes), linux.seccomp compiled by libseccomp, the LibOS
    annotations: never a traceback, every refusal one line naming what was wrong."""
    try:
        targets[name]()
    except fuzz.Finding as e:
        path = fuzz.save_finding(fuzz.TARGET_OF[name], fuzz.LAST.get(name) if name != "spec-bytes"
                                 else {"bytes": fuzz.LAST[name].hex()}, str(e)[:2000])
        raise AssertionError(f"{e}\n(saved to {path}: fix the cause; the corpus keeps the input)") from None


def test_fuzz_image_importer(targets):
    """docker-archive and OCI archives around hostile layers (names with .. or absolute, symlinks
    and hard links out, devices, setuid files, whiteouts, 300-byte names), with their JSON mutated
    and their bytes flipped or cut: an image or a one-line error, and never a write outside the
    store."""
    if "image" not in targets:
        pytest.skip("the image importer (xcontainers.archive) is not in this tree")
    try:
        targets["image"]()
    except fuzz.Finding as e:
        raise AssertionError(str(e)) from None
    assert fuzz.KNOWN_SEEN == {}, f"importer tracebacks: {fuzz.KNOWN_SEEN}"


@pytest.mark.parametrize("case", ["docker-entry-null", "docker-entry-list", "oci-layer-null", "name-300-bytes"])
def test_image_importer_refuses_with_one_line(case):
    if fuzz.image_target() is None:
        pytest.skip("the image importer (xcontainers.archive) is not in this tree")
    base = fuzz.layer_tar([("bin", "dir", "", 0o755, 0)])
    archive = {
        "docker-entry-null": lambda: fuzz.image_archive("docker", base, manifest_edit=lambda m: [None]),
        "docker-entry-list": lambda: fuzz.image_archive("docker", base, manifest_edit=lambda m: [m]),
        "oci-layer-null": lambda: fuzz.image_archive("oci", base, manifest_edit=lambda m: {**m, "layers": [None]}),
        "name-300-bytes": lambda: fuzz.image_archive("oci", fuzz.layer_tar([("a" * 300, "file", "", 0o644, 3)])),
    }[case]()
    fuzz.check_image(archive, known_ok=False)


# --- the ELF loader ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def elf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    need_root()
    why = hosttrace.available()
    if why:
        pytest.skip(why)
    if shutil.which("gcc") is None:
        pytest.skip("gcc builds the seeds and the driver")
    work = tmp_path_factory.mktemp("elf-fuzz")
    seeds = fuzz.build_elf_seeds(work / "seeds")
    return {
        "work": work,
        "rootfs": build_busybox_rootfs(work / "image"),
        "guest": attackkit.build_guest(work / "attacks"),
        "seeds": seeds,
        "batch": fuzz.elf_batch(seeds, 150, random.Random(20261130)),
        "xc": RuntimeUnderTest("xc", XC_RUNTIME or "xc-runtime", str(work / "xc-state")),
    }


@pytest.fixture(scope="module")
def elf_xc(elf_env) -> Any:
    with attackkit.Sentinel(elf_env["xc"], elf_env["rootfs"], elf_env["guest"], elf_env["work"] / "s") as s:
        out = fuzz.run_elf_batch(elf_env["xc"], elf_env["batch"], elf_env["seeds"], elf_env["rootfs"],
                                 elf_env["guest"], elf_env["work"] / "xc", traced=True, cut="seccomp")
        out.sentinel_after = s.answers()
    return out


def test_elf_loader_refuses_or_the_process_ends(elf_xc, elf_env):
    """Every mutated ELF file and `#!` script is refused (by the LibOS before the exec commits,
    or by its loader: exit 127 with a message) or its process runs and ends; the container's
    driver finishes, a second container keeps answering, and only interface calls reached the host."""
    got = elf_xc.results.get("elf", {})
    assert "exec-each: done" in elf_xc.out, elf_xc.out[-2000:] + elf_xc.err[-2000:]
    assert len(got) == len(elf_env["batch"]), sorted({n for n, _ in elf_env["batch"]} - set(got))
    classes = Counter(fuzz.outcome_class(v) for v in got.values())
    assert set(classes) <= {"refused", "refused-by-loader", "ran", "died", "timeout"}, classes
    assert classes["refused-by-loader"] > 0 and classes["ran"] > 0, classes
    allowed = attackkit.allowed_on_host(attackkit.interface())
    off = elf_xc.calls.numbers() - allowed
    assert not off, "off the interface: " + hosttrace.names_of(off)
    assert elf_xc.sentinel_after, "the second container stopped answering"
    assert attackkit.no_leftovers() == {"mounts": [], "cgroups": [], "processes": []}
    # the loader's refusals say why, on the program's stderr
    assert "xc-libos: cannot load the program" in elf_xc.err


def test_elf_loader_refuses_programs_over_the_libos(elf_xc):
    got = elf_xc.results["elf"]
    for case in ("code-over-the-libos-gate", "code-over-the-libos-base", "data-over-the-libos-state",
                 "bss-over-the-abom-table", "shebang-libos-image-fd"):
        assert got[case] in ("exit 127",) or got[case].startswith("execve "), (case, got[case])


def test_elf_loader_against_linux(elf_env, elf_xc):
    """The same files under runc (the kernel's binfmt_elf): recorded side by side; the cases
    Linux refuses that the LibOS ran are listed (laxer checks, docs/security.md)."""
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed")
    runc = RuntimeUnderTest("runc", shutil.which("runc"), str(elf_env["work"] / "runc-state"))
    ref = fuzz.run_elf_batch(runc, elf_env["batch"], elf_env["seeds"], elf_env["rootfs"], elf_env["guest"],
                             elf_env["work"] / "runc", traced=False, cut="exec")
    linux, xc = ref.results.get("elf", {}), elf_xc.results["elf"]
    assert "exec-each: done" in ref.out
    lax = sorted(n for n in xc if fuzz.outcome_class(xc[n]) == "ran" and linux.get(n, "").startswith("execve "))
    strict = sorted(n for n in xc if fuzz.outcome_class(xc[n]).startswith("refused")
                    and fuzz.outcome_class(linux.get(n, "")) in ("ran",))
    summary = (f"linux {dict(Counter(fuzz.outcome_class(v) for v in linux.values()))}; "
               f"xc {dict(Counter(fuzz.outcome_class(v) for v in xc.values()))}; "
               f"xc ran what Linux refused: {' '.join(lax) or '-'}; "
               f"xc refused what Linux ran: {' '.join(strict) or '-'}")
    report = os.environ.get("XC_FUZZ_REPORT")
    if report:
        Path(report).write_text(summary + "\n")
    print(summary)
    assert len(linux) == len(xc)
    # `#!/proc/self/exe` runs the calling program, as Linux's execve opens the interpreter
    # before the new image replaces the old (finding 8: the LibOS loaded itself over itself)
    assert xc["shebang-proc-self-exe"] == linux["shebang-proc-self-exe"]
