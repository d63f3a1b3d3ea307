"""Differential system call tests: Linux semantics natively, under runc, under xc-runtime.

tests/guest/xcguest.c is one multi-call C program (like crun's tests/init.c).
`xcguest CASE` runs one case and prints a transcript that holds only facts
that must be equal wherever the program runs (no pids, addresses, timings,
paths or filesystem details).  A session fixture builds it twice (static and
dynamic, glibc, -O1, pthreads); each case then runs

  1. natively on the host, in a temporary cwd: it must pass (exit 0);
  2. under runc, and
  3. under xc-runtime, each in a container with a writable copy of the busybox
     rootfs plus /xc/xcguest-{static,dynamic}, the host's /lib, /lib64 and
     /usr/lib bind-mounted read-only (for the dynamic flavour), a tmpfs /tmp
     as cwd, and no network namespace (the host's loopback serves the TCP/UDP
     cases):

runc and xc-runtime must give the native exit code and stdout byte for byte.
xc-runtime runs twice: as configured by default (`xc`: on the X-LibOS once
it is enabled by default) and with the LibOS turned off by the annotation
`org.xcontainers.libos: off` (`xc-nolibos`).  This is what proves the LibOS
keeps Linux semantics (signal frames, vfork, clone stacks, execve, ...).

A failure under `native` is a broken case; under `runc` (native passed) a
container difference the transcript should not print; under `xc-nolibos`
(runc passed) a runtime bug; under `xc` only, a LibOS bug.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from conftest import Bundle, Result, RuntimeUnderTest

pytestmark = pytest.mark.root

GUEST_SRC = Path(__file__).resolve().parent / "guest" / "xcguest.c"

CASES = [
    "fork_tree", "exec_sh", "exec_self", "threads", "vfork_exec", "clone_raw", "exit_codes",
    "ids", "uname_ids", "parent_death", "fork_state", "clocks",
    "sig_info", "sig_mask", "sigaltstack", "sig_sync", "sigchld", "eintr", "sig_nested",
    "sigsuspend", "signalfd", "thread_signals",
    "file_io", "dirs", "fd_ops", "pipes", "unix_sockets", "tcp", "udp", "epoll", "poll_select",
    "mmap", "mmap_fork", "futex", "errnos", "efault", "tid", "translated", "composed", "proc_self", "raw_sites",
    "code_protection", "proc_cmdline",
    # each of these holds one fact the X-LibOS knowingly differs on (below),
    # kept apart so that the cases above stay strict
    "vfork_shared_memory", "sigsys_app", "app_seccomp",
]

CFLAGS = ["-std=gnu11", "-O1", "-Wall", "-pthread"]
FLAVOURS = {"static": ["-static"], "dynamic": []}

# The same environment natively as in the container (the default spec's).
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM": "xterm"}

# Host library directories the dynamic flavour needs inside the container.
HOST_LIBS = ["/lib", "/lib64", "/usr/lib"]

# Where the X-LibOS knowingly differs from Linux today, and why (see
# docs/architecture.md).  strict: a case that starts passing must leave the list.
LIBOS_KNOWN_DIFFERENCES = {
    "vfork_shared_memory": "vfork is served as clone(CLONE_VFORK) without shared memory: a child "
                           "sharing the stack would overwrite the parent's trap frame (pitfall 7)",
    "app_seccomp": "the exokernel interface never lets the program change seccomp "
                   "(PR_SET_SECCOMP and seccomp(2) are refused); running the program's own "
                   "filter inside the LibOS is future work",
    "sigsys_app": "SIGSYS belongs to the LibOS: a program that blocks it reads back a mask "
                  "without it, and a raised SIGSYS is not delivered to the program",
}

# Capabilities a case needs in the container on top of the default ones (the
# case itself then sets exactly the ones it tests with, natively as well).
CASE_CAPABILITIES = {
    "translated": ["CAP_SETUID", "CAP_SETGID"],
}

# Runtimes a case runs under, after native: (fixture, annotations).
RUNTIMES = {
    "runc": ("runc", {}),
    "xc-nolibos": ("xc", {"org.xcontainers.libos": "off"}),
    "xc": ("xc", {}),
    "xc-trap": ("xc", {"org.xcontainers.libos.abom": "off"}),
}

TIMEOUT = 60  # per run, container start included; each case has a 2 s watchdog (exit 99)


@pytest.fixture(scope="session")
def guest_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """xcguest built static and dynamic into a session temp dir."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed: cannot build tests/guest/xcguest.c (make setup installs it)")
    out = tmp_path_factory.mktemp("guest-build")
    bins: dict[str, Path] = {}
    for flavour, extra in FLAVOURS.items():
        dest = out / f"xcguest-{flavour}"
        p = subprocess.run([gcc, *CFLAGS, *extra, "-o", str(dest), str(GUEST_SRC)],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            if flavour == "static" and "cannot find -lc" in p.stderr:
                pytest.skip("static glibc (libc.a from libc6-dev) is not installed")
            pytest.fail(f"building the {flavour} xcguest failed:\n{p.stderr}")
        bins[flavour] = dest
    return bins


@pytest.fixture(scope="session")
def guest_rootfs(busybox_rootfs: Path, guest_binaries: dict[str, Path],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writable copy of the busybox rootfs with the binaries in /xc/."""
    rootfs = tmp_path_factory.mktemp("guest-image") / "rootfs"
    shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
    (rootfs / "xc").mkdir()
    for path in guest_binaries.values():
        shutil.copy2(path, rootfs / "xc" / path.name)
    return rootfs


@pytest.fixture
def guest_bundle(tmp_path: Path, guest_rootfs: Path) -> Callable[..., Bundle]:
    """make_bundle-style factory for bundles that run xcguest."""
    n = [0]

    def make(args: list[str], annotations: dict[str, str] | None = None,
             capabilities: list[str] | None = None) -> Bundle:
        n[0] += 1
        b = Bundle(tmp_path / f"bundle{n[0]}", guest_rootfs, args)
        for caps in b.process["capabilities"].values():
            caps.extend(c for c in capabilities or [] if c not in caps)
        if annotations:
            b.config.setdefault("annotations", {}).update(annotations)
        b.config["root"] = {"path": str(guest_rootfs), "readonly": False}
        # No network namespace: a new one has lo down, and bringing it up
        # needs CAP_NET_ADMIN; the host's loopback serves 127.0.0.1.
        b.linux["namespaces"] = [ns for ns in b.linux["namespaces"] if ns["type"] != "network"]
        b.config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                   "options": ["nosuid", "nodev", "mode=1777", "size=262144k"]})
        for lib in HOST_LIBS:
            if os.path.exists(lib):
                b.config["mounts"].append({"destination": lib, "type": "bind", "source": lib,
                                           "options": ["rbind", "ro"]})
        b.process["cwd"] = "/tmp"
        b.process["env"] = [f"{k}={v}" for k, v in ENV.items()]
        # The default capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE) are
        # enough: the cases run as root on files they own, in /tmp, and bind
        # only ephemeral ports on 127.0.0.1.
        b.write()
        return b

    return make


def run_native(binary: Path, case: str) -> Result:
    with tempfile.TemporaryDirectory(prefix="xcguest-native-") as cwd:
        p = subprocess.run([str(binary), case], cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=TIMEOUT)
    return Result(p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="session")
def native_results(guest_binaries: dict[str, Path]) -> Callable[[str, str], Result]:
    """The native reference result of each (flavour, case), run once."""
    cache: dict[tuple[str, str], Result] = {}

    def get(flavour: str, case: str) -> Result:
        if (flavour, case) not in cache:
            cache[(flavour, case)] = run_native(guest_binaries[flavour], case)
        return cache[(flavour, case)]

    return get


def _describe(label: str, r: Result) -> str:
    return f"--- {label}: rc={r.rc}\n{r.out}--- {label} stderr:\n{r.err}"


def test_case_list_matches_the_program(guest_binaries: dict[str, Path]) -> None:
    for flavour, path in guest_binaries.items():
        p = subprocess.run([str(path), "--list"], capture_output=True, text=True, timeout=TIMEOUT, check=True)
        assert p.stdout.split() == CASES, f"{flavour}: CASES in {__file__} and xcguest --list disagree"


@pytest.mark.parametrize("where", ["native", *RUNTIMES])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_syscall_case(flavour: str, case: str, where: str, request: pytest.FixtureRequest,
                      native_results: Callable[[str, str], Result]) -> None:
    ref = native_results(flavour, case)
    if where == "native":
        assert ref.rc == 0 and ref.out.startswith(f"== {case}\n"), (
            "the case fails natively (a broken test, not a runtime bug)\n" + _describe("native", ref))
        return
    if ref.rc != 0:
        pytest.fail("no reference: the case fails natively\n" + _describe("native", ref))
    if where in ("xc", "xc-trap") and case in LIBOS_KNOWN_DIFFERENCES:
        request.applymarker(pytest.mark.xfail(reason=LIBOS_KNOWN_DIFFERENCES[case], strict=True))
    fixture, annotations = RUNTIMES[where]
    rt: RuntimeUnderTest = request.getfixturevalue(fixture)
    guest_bundle: Callable[..., Bundle] = request.getfixturevalue("guest_bundle")
    bundle = guest_bundle([f"/xc/xcguest-{flavour}", case], annotations, CASE_CAPABILITIES.get(case))
    got = rt.run(bundle, timeout=TIMEOUT)
    if (got.rc, got.out) != (ref.rc, ref.out):
        diff = "".join(difflib.unified_diff(ref.out.splitlines(True), got.out.splitlines(True),
                                            "native", where))
        pytest.fail(f"{where} differs from native (rc {got.rc} vs {ref.rc})\n{diff}\n"
                    + _describe(where, got) + "\n" + _describe("native", ref))
