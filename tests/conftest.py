"""Shared fixtures: a busybox rootfs, OCI bundles, and the runtimes under test.

Integration tests run real containers as root.  Each behaviour test runs the
same bundle under runc first (the reference) and then under xc-runtime, and
compares what the container observed: differential testing.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from xcontainers.defaults import default_spec  # noqa: E402

# xc-runtime's entry point in this tree: the native program the package's
# build links (src/xcontainers/xc-runtime), which hands what it does not do
# itself to the Python runtime; else the venv's console script (Python only).
_NATIVE = ROOT / "src" / "xcontainers" / "xc-runtime"
XC_RUNTIME = (str(_NATIVE) if os.access(_NATIVE, os.X_OK) else None) or \
    shutil.which("xc-runtime", path=str(ROOT / ".venv/bin")) or shutil.which("xc-runtime")
RUNC = shutil.which("runc")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--xc-path", choices=("native", "python"),
        default="python" if os.environ.get("XC_RUNTIME_NATIVE") == "0" else "native",
        help="native: xc-runtime as it comes (the native path, the Python runtime for the rest); "
             "python: every command through the Python runtime (XC_RUNTIME_NATIVE=0 for every "
             "xc-runtime the tests start, clients included)")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--xc-path") == "python":
        os.environ["XC_RUNTIME_NATIVE"] = "0"
    else:
        os.environ.pop("XC_RUNTIME_NATIVE", None)


def pytest_report_header(config: pytest.Config) -> str:
    return f"xc-runtime: {XC_RUNTIME} ({config.getoption('--xc-path')} path)"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: containers use namespaces, mounts and cgroups")


@dataclass
class Result:
    rc: int
    out: str
    err: str


@dataclass
class RuntimeUnderTest:
    name: str
    binary: str
    root: str

    def cmd(self, *args: str, timeout: float = 60, input: str | None = None, check: bool = False) -> Result:
        p = subprocess.run(
            [self.binary, "--root", self.root, *args],
            capture_output=True, text=True, timeout=timeout, input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        r = Result(p.returncode, p.stdout, p.stderr)
        if check and r.rc != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed ({r.rc}): {r.err}")
        return r

    def detached(self, *args: str, timeout: float = 60) -> None:
        """A command that leaves a container running: its stdio must not be our pipes."""
        import tempfile

        with tempfile.TemporaryFile() as err:
            p = subprocess.run([self.binary, "--root", self.root, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
            if p.returncode != 0:
                err.seek(0)
                raise AssertionError(f"{self.name} {' '.join(args)} failed ({p.returncode}): {err.read().decode()}")

    def run(self, bundle: "Bundle", cid: str | None = None, timeout: float = 60) -> Result:
        cid = cid or f"t-{uuid.uuid4().hex[:10]}"
        try:
            return self.cmd("run", "--bundle", str(bundle.path), cid, timeout=timeout)
        finally:
            self.cmd("delete", "--force", cid)

    def state(self, cid: str) -> dict[str, Any]:
        r = self.cmd("state", cid, check=True)
        return json.loads(r.out)


class Bundle:
    """An OCI bundle in a temporary directory; `config` is edited before use."""

    def __init__(self, path: Path, rootfs: Path, args: list[str]) -> None:
        self.path = path
        self.config: dict[str, Any] = default_spec(args, terminal=False, hostname="xctest")
        self.config["root"]["path"] = str(rootfs)
        self.path.mkdir(parents=True, exist_ok=True)
        self.write()

    def write(self) -> "Bundle":
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    @property
    def process(self) -> dict[str, Any]:
        return self.config["process"]

    @property
    def linux(self) -> dict[str, Any]:
        return self.config["linux"]


def build_busybox_rootfs(dest: Path) -> Path:
    bb = "/bin/busybox"
    if not os.path.exists(bb):
        pytest.skip("busybox-static is not installed (make setup installs it)")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(bb, dest / "bin/busybox")
    applets = subprocess.run([bb, "--list-full"], capture_output=True, text=True, check=True).stdout.split()
    for a in applets:
        link = dest / a
        if not link.exists() and a != "bin/busybox":
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
    (dest / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    (dest / "etc/group").write_text("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    os.chmod(dest / "tmp", 0o1777)
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("image") / "rootfs")


@pytest.fixture
def make_bundle(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Any]:
    n = [0]

    def make(args: list[str], writable: bool = False) -> Bundle:
        n[0] += 1
        path = tmp_path / f"bundle{n[0]}"
        rootfs = busybox_rootfs
        if writable:
            rootfs = path / "rootfs"
            shutil.copytree(busybox_rootfs, rootfs, symlinks=True)
        b = Bundle(path, rootfs, args)
        if writable:
            b.config["root"] = {"path": "rootfs", "readonly": False}
            b.write()
        return b

    yield make


def _runtime(name: str, tmp_path_factory: pytest.TempPathFactory) -> RuntimeUnderTest:
    need_root()
    if name == "runc":
        if RUNC is None:
            pytest.skip("runc is not installed (make setup installs Debian's runc)")
        return RuntimeUnderTest("runc", RUNC, str(tmp_path_factory.mktemp("runc-root")))
    assert XC_RUNTIME, "xc-runtime is not installed: run make setup"
    return RuntimeUnderTest("xc", XC_RUNTIME, str(tmp_path_factory.mktemp("xc-root")))


@pytest.fixture(scope="session")
def runc(tmp_path_factory: pytest.TempPathFactory) -> RuntimeUnderTest:
    return _runtime("runc", tmp_path_factory)


@pytest.fixture(scope="session")
def xc(tmp_path_factory: pytest.TempPathFactory) -> RuntimeUnderTest:
    return _runtime("xc", tmp_path_factory)


@pytest.fixture(params=["runc", "xc"])
def rt(request: pytest.FixtureRequest) -> RuntimeUnderTest:
    """Each runtime in turn: runc (the reference) first, then xc-runtime."""
    return request.getfixturevalue(request.param)


def differential(runc: RuntimeUnderTest, xc: RuntimeUnderTest, bundle: Bundle, timeout: float = 60) -> Result:
    """Run *bundle* under runc, then xc-runtime; both must agree; return the result."""
    ref = runc.run(bundle, timeout=timeout)
    got = xc.run(bundle, timeout=timeout)
    assert (got.rc, got.out) == (ref.rc, ref.out), (
        f"runc and xc-runtime disagree\n--- runc rc={ref.rc}\n{ref.out}\n{ref.err}"
        f"\n--- xc rc={got.rc}\n{got.out}\n{got.err}"
    )
    return got


_OTHER_CLIENTS = ("libpod", "/containers/", "containerd", "conmon", "machine.slice")


def snapshot_host() -> dict[str, Any]:
    """What a container could leak on the host: mounts, cgroups, processes.

    Mounts and cgroups that podman or containerd (driven by other tests)
    make are left out, so the snapshot is about what the runtime did.
    """
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split()[4] for line in f)
    mounts = [m for m in mounts if not any(o in m for o in _OTHER_CLIENTS)]
    cgroups = []
    for base in ("/sys/fs/cgroup",):
        for dirpath, dirnames, _ in os.walk(base):
            if dirpath.count("/") > 8:
                continue
            cgroups.extend(os.path.join(dirpath, d) for d in dirnames)
    cgroups = [c for c in cgroups if not any(o in c for o in _OTHER_CLIENTS)]
    procs = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                procs.append(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace"))
            except OSError:
                pass
    return {"mounts": mounts, "cgroups": sorted(cgroups),
            "busybox_procs": sum(p.endswith("busybox") or p in ("sleep", "sh") for p in procs)}


def deep(d: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(d)
