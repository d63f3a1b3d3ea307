"""Real clients drive the runtime: podman (through conmon) and containerd's ctr.

Differential, like the rest of the suite: every scenario runs first with runc
(the reference), whose result the test checks, then with xc-runtime, which
must give the same result.  The clients call the runtime with the flags they
use in production: conmon passes ``--log``, ``--log-format json``,
``--pid-file``, ``--console-socket``, ``exec --process FILE --detach``;
containerd's shim passes ``--log``, ``--log-format json``, ``--pid-file`` and
uses ``create``/``start``/``delete``.

Each test cleans up what it made (``podman rm -f``, ``ctr task/container
delete``, the containerd it started) and skips, saying why, when a client is
not installed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import termios
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import RUNC, XC_RUNTIME, need_root

pytestmark = [pytest.mark.root, pytest.mark.peers]

TIMEOUT = 120  # seconds per client command: Python start-up makes xc-runtime slower than runc
PODMAN = shutil.which("podman")
CONMON = shutil.which("conmon") or next(
    (p for p in ("/usr/libexec/podman/conmon", "/usr/bin/conmon") if os.path.exists(p)), None)
CTR = shutil.which("ctr")
CONTAINERD = shutil.which("containerd")
# This tree's xc-runtime (conftest.XC_RUNTIME: the native entry point), else
# `$(command -v xc-runtime)`, the symlink `make setup` puts on PATH.
XC_BINARY = XC_RUNTIME or shutil.which("xc-runtime")

# podman 4.3 on this host: no network, and limits root may actually set.
PODMAN_RUN_OPTS = ["--network=none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]


@dataclass
class Out:
    rc: int
    out: str
    err: str


_python_path_wrapper: list[str] = []


def _xc_binary() -> str:
    """XC_BINARY, or with the Python path forced (conftest --xc-path=python),
    a wrapper that sets XC_RUNTIME_NATIVE=0 itself: conmon and containerd's
    shim do not pass their environment on to the runtime."""
    assert XC_BINARY, "xc-runtime is not installed: run `make setup`"
    if os.environ.get("XC_RUNTIME_NATIVE") != "0":
        return XC_BINARY
    if not _python_path_wrapper:
        import atexit
        import tempfile

        d = tempfile.mkdtemp(prefix="xc-python-path-")
        os.chmod(d, 0o755)
        path = os.path.join(d, "xc-runtime")
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\nXC_RUNTIME_NATIVE=0 exec {XC_BINARY} "$@"\n')
        os.chmod(path, 0o755)
        atexit.register(shutil.rmtree, d, True)
        _python_path_wrapper.append(path)
    return _python_path_wrapper[0]


def runtimes() -> list[tuple[str, str]]:
    """(name, binary) pairs, the reference first."""
    need_root()
    if RUNC is None:
        pytest.skip("runc is not installed: it is the reference these tests compare against")
    return [("runc", RUNC), ("xc", _xc_binary())]


def differential(scenario: Callable[[str, str], object]) -> object:
    """Run *scenario(name, binary)* under runc, then xc-runtime; both results must be equal."""
    results = {}
    for name, binary in runtimes():
        results[name] = scenario(name, binary)
    assert results["xc"] == results["runc"], (
        f"runc and xc-runtime disagree\n--- runc\n{results['runc']!r}\n--- xc\n{results['xc']!r}"
    )
    return results["xc"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- podman ------------------------------------------------------------------


def need_podman() -> None:
    if PODMAN is None:
        pytest.skip("podman is not installed (make setup installs Debian's podman)")
    if CONMON is None:
        pytest.skip("conmon is not installed: podman needs it to drive an OCI runtime")


def podman(runtime: str, *args: str, timeout: float = TIMEOUT, check: bool = False) -> Out:
    p = subprocess.run([PODMAN, "--runtime", runtime, *args], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    r = Out(p.returncode, p.stdout, p.stderr)
    if check:
        assert r.rc == 0, f"podman {' '.join(args)} failed ({r.rc}):\n{r.out}\n{r.err}"
    return r


class PodmanContainers:
    """Names handed out to a test; every one is `podman rm -f`-ed afterwards."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def name(self, runtime: str, prefix: str = "xct") -> str:
        n = unique(prefix)
        self.made.append((runtime, n))
        return n

    def cleanup(self) -> None:
        for runtime, n in self.made:
            try:
                podman(runtime, "rm", "-f", "-t", "0", n, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def containers() -> Iterator[PodmanContainers]:
    need_podman()
    c = PodmanContainers()
    try:
        yield c
    finally:
        c.cleanup()


# -- a terminal for the client -------------------------------------------------


class PtySession:
    """A client run on a fresh pty (its controlling terminal), as from a terminal emulator."""

    def __init__(self, cmd: list[str], rows: int = 40, cols: int = 100) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        try:
            self.proc = subprocess.Popen(
                cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0), close_fds=True,
            )
        finally:
            os.close(slave)
        self.buf = b""
        self.eof = False

    def _read(self, wait: float) -> None:
        r, _, _ = select.select([self.master], [], [], wait)
        if not r:
            return
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave end is closed
            data = b""
        if data:
            self.buf += data
        else:
            self.eof = True

    def expect(self, needle: bytes, timeout: float = TIMEOUT, start: int = 0) -> int:
        """Read until *needle* appears after offset *start*; return the offset just past it."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(needle, start)
            if i >= 0:
                return i + len(needle)
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never came; the terminal showed:\n{self.buf!r}")
            self._read(0.2)

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"the client did not exit; the terminal showed:\n{self.buf!r}")
            self._read(0.1)
        while not self.eof:  # whatever is still buffered in the pty
            r, _, _ = select.select([self.master], [], [], 0.2)
            if not r:
                break
            self._read(0)
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        os.close(self.master)


def _text(b: bytes) -> str:
    return b.decode(errors="replace").replace("\r\n", "\n")


# -- 1. podman run: output and exit codes ------------------------------------------


def test_podman_run_echo(containers, busybox_rootfs):
    def scenario(name: str, rt: str) -> tuple[int, str]:
        r = podman(rt, "run", "--rm", "--name", containers.name(rt), *PODMAN_RUN_OPTS,
                   "--rootfs", str(busybox_rootfs), "echo", "hi")
        assert r.rc == 0, f"{name}: podman run failed ({r.rc}):\n{r.err}"
        return r.rc, r.out

    assert differential(scenario) == (0, "hi\n")


@pytest.mark.parametrize("code", [3, 0, 42])
def test_podman_run_exit_code(containers, busybox_rootfs, code):
    def scenario(name: str, rt: str) -> tuple[int, str, bool]:
        r = podman(rt, "run", "--rm", "--name", containers.name(rt), *PODMAN_RUN_OPTS,
                   "--rootfs", str(busybox_rootfs), "sh", "-c", f"echo out; echo err >&2; exit {code}")
        return r.rc, r.out, "err" in r.err

    assert differential(scenario) == (code, "out\n", True)


def test_podman_run_container_view(containers, busybox_rootfs):
    """What the program sees through podman: pid 1, hostname, args, environment, cwd."""
    def scenario(name: str, rt: str) -> tuple[int, str]:
        r = podman(rt, "run", "--rm", "--name", containers.name(rt), *PODMAN_RUN_OPTS,
                   "--hostname", "podhost", "--env", "FOO=bar baz", "--workdir", "/tmp",
                   "--rootfs", str(busybox_rootfs),
                   "sh", "-c", 'echo "pid=$$ host=$(hostname) foo=$FOO cwd=$(pwd) args=$#:$1"', "x", "a b")
        return r.rc, r.out

    assert differential(scenario) == (0, "pid=1 host=podhost foo=bar baz cwd=/tmp args=1:a b\n")


# -- 2. podman run -it: the console socket -------------------------------------------


def test_podman_run_interactive_tty(containers, busybox_rootfs):
    def scenario(name: str, rt: str) -> tuple[int, str, str, str]:
        s = PtySession([PODMAN, "--runtime", rt, "run", "--rm", "-it", "--name", containers.name(rt),
                        *PODMAN_RUN_OPTS, "--rootfs", str(busybox_rootfs), "sh"], rows=40, cols=100)
        try:
            at = s.expect(b"# ")  # ash's prompt: the shell reads the terminal
            s.send(b"echo $((6*7)); tty; stty size; exit 5\r")
            s.expect(b"exit 5", start=at)  # the pty echoes what was typed
            rc = s.wait()
        finally:
            s.close()
        out = _text(s.buf[at:]).splitlines()
        assert "42" in out, f"{name}: no 42 in the session:\n{s.buf!r}"
        i = out.index("42")
        assert rc == 5, f"{name}: podman exited {rc}:\n{s.buf!r}"
        return rc, out[i], out[i + 1], out[i + 2]

    rc, answer, tty, size = differential(scenario)
    assert (rc, answer, tty, size) == (5, "42", "/dev/pts/0", "40 100")


# -- 3. podman run -d, exec, stop, logs, rm ---------------------------------------------


def test_podman_exec_stop_rm(containers, busybox_rootfs):
    def scenario(name: str, rt: str) -> dict[str, object]:
        cname = containers.name(rt)
        got: dict[str, object] = {}
        r = podman(rt, "run", "-d", "--name", cname, "--hostname", "exechost", *PODMAN_RUN_OPTS,
                   "--rootfs", str(busybox_rootfs), "sleep", "1000", check=True)
        cid = r.out.strip()
        assert len(cid) == 64, f"{name}: podman run -d printed {r.out!r}"
        got["running"] = podman(rt, "inspect", "--format", "{{.State.Status}}", cname, check=True).out.strip()
        r = podman(rt, "inspect", "--format", "{{.OCIRuntime}}", cname, check=True)
        got["driven by the runtime under test"] = r.out.strip() == rt

        r = podman(rt, "exec", cid, "cat", "/etc/hostname")
        got["exec hostname"] = (r.rc, r.out.strip())
        r = podman(rt, "exec", cname, "sh", "-c", "echo out; echo oops >&2; exit 4")
        got["exec exit code"] = (r.rc, r.out, r.err.strip())
        r = podman(rt, "exec", "--env", "X=1", "--workdir", "/tmp", "--user", "65534:65534", cname,
                   "sh", "-c", 'echo "x=$X $(pwd) $(id -u):$(id -g)"')
        got["exec options"] = (r.rc, r.out)
        r = podman(rt, "exec", cname, "ps", "-o", "pid,args")
        got["ps sees sleep as pid 1"] = r.rc == 0 and any(
            line.split()[:2] == ["1", "sleep"] for line in r.out.splitlines())
        r = podman(rt, "exec", cname, "nonexistent-program")
        got["exec missing program fails"] = r.rc != 0

        # pid 1 has no SIGTERM handler, so the kernel drops SIGTERM: podman
        # waits out -t 2 and falls back to SIGKILL.
        t0 = time.monotonic()
        r = podman(rt, "stop", "-t", "2", cname)
        elapsed = time.monotonic() - t0
        got["stop"] = (r.rc, r.out.strip() == cname)
        assert elapsed < 60, f"{name}: podman stop -t 2 took {elapsed:.1f}s"
        r = podman(rt, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cname, check=True)
        got["stopped"] = r.out.strip()
        r = podman(rt, "exec", cname, "true")
        got["exec into stopped fails"] = r.rc != 0

        r = podman(rt, "rm", cname)
        got["rm"] = (r.rc, r.out.strip() == cname)
        r = podman(rt, "container", "exists", cname)
        got["exists after rm"] = r.rc
        return got

    got = differential(scenario)
    assert got["running"] == "running"
    assert got["driven by the runtime under test"] is True
    assert got["exec hostname"] == (0, "exechost")
    assert got["exec exit code"] == (4, "out\n", "oops")
    assert got["exec options"] == (0, "x=1 /tmp 65534:65534\n")
    assert got["ps sees sleep as pid 1"] is True
    assert got["exec missing program fails"] is True
    assert got["stop"] == (0, True)
    assert got["stopped"] == "exited 137"
    assert got["exec into stopped fails"] is True
    assert got["rm"] == (0, True)
    assert got["exists after rm"] == 1


def test_podman_exec_tty(containers, busybox_rootfs):
    """`podman exec -it`: conmon passes `exec --tty --console-socket --detach --process FILE`."""
    def scenario(name: str, rt: str) -> tuple[int, str, bool, str]:
        cname = containers.name(rt)
        podman(rt, "run", "-d", "--name", cname, *PODMAN_RUN_OPTS, "--rootfs", str(busybox_rootfs),
               "sleep", "1000", check=True)
        s = PtySession([PODMAN, "--runtime", rt, "exec", "-it", cname, "sh"], rows=30, cols=90)
        try:
            at = s.expect(b"# ")
            s.send(b"echo $((6*7)); tty; stty size; exit 6\r")
            s.expect(b"exit 6", start=at)
            rc = s.wait()
        finally:
            s.close()
        out = _text(s.buf[at:]).splitlines()
        assert "42" in out, f"{name}: no 42 in the session:\n{s.buf!r}"
        i = out.index("42")
        podman(rt, "rm", "-f", "-t", "0", cname, check=True)
        return rc, out[i], out[i + 1].startswith("/dev/pts/"), out[i + 2]

    assert differential(scenario) == (6, "42", True, "30 90")


def test_podman_logs(containers, busybox_rootfs):
    def scenario(name: str, rt: str) -> tuple[str, str, list[str], int]:
        cname = containers.name(rt)
        podman(rt, "run", "-d", "--name", cname, "--log-driver", "k8s-file", *PODMAN_RUN_OPTS,
               "--rootfs", str(busybox_rootfs),
               "sh", "-c", "echo line1; echo to-stderr >&2; printf 'no newline'; exit 7", check=True)
        w = podman(rt, "wait", cname, check=True)
        logs = podman(rt, "logs", cname, check=True)
        podman(rt, "rm", cname, check=True)
        lines = sorted((logs.out + "\n" + logs.err).split())
        return w.out.strip(), logs.out.splitlines()[0], lines, podman(rt, "container", "exists", cname).rc

    code, first, words, exists = differential(scenario)
    assert code == "7"
    assert first == "line1"
    assert words == sorted(["line1", "to-stderr", "no", "newline"])
    assert exists == 1


def test_podman_detached_stop_by_signal_handler(containers, busybox_rootfs):
    """A pid 1 that handles SIGTERM stops at once, with the exit code it chose."""
    def scenario(name: str, rt: str) -> tuple[int, str]:
        cname = containers.name(rt)
        podman(rt, "run", "-d", "--name", cname, *PODMAN_RUN_OPTS, "--rootfs", str(busybox_rootfs),
               "sh", "-c", "trap 'exit 9' TERM; while :; do sleep 0.1; done", check=True)
        t0 = time.monotonic()
        r = podman(rt, "stop", "-t", "30", cname)
        elapsed = time.monotonic() - t0
        assert elapsed < 25, f"{name}: SIGTERM did not reach pid 1 ({elapsed:.1f}s)"
        st = podman(rt, "inspect", "--format", "{{.State.ExitCode}}", cname, check=True).out.strip()
        podman(rt, "rm", cname, check=True)
        return r.rc, st

    assert differential(scenario) == (0, "9")


# -- 4. containerd: ctr run --runc-binary -----------------------------------------------


@dataclass
class Containerd:
    address: str
    namespace: str

    def ctr(self, *args: str, timeout: float = TIMEOUT) -> Out:
        p = subprocess.run([CTR, "--address", self.address, "--namespace", self.namespace, *args],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Out(p.returncode, p.stdout, p.stderr)

    def remove(self, cid: str) -> None:
        """Delete the task (killing it) and the container, whatever state they are in."""
        self.ctr("task", "kill", "--signal", "SIGKILL", cid)
        for _ in range(50):
            if self.ctr("task", "delete", "--force", cid).rc != 0:
                break
            time.sleep(0.1)
        self.ctr("container", "delete", cid)


def _wait_for_socket(path: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"containerd exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"containerd did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    """A containerd of our own: its own root, state, socket; stopped afterwards."""
    need_root()
    if CTR is None or CONTAINERD is None:
        pytest.skip("containerd/ctr is not installed (make setup installs Debian's containerd)")
    if not shutil.which("containerd-shim-runc-v2"):
        pytest.skip("containerd-shim-runc-v2 is not installed: ctr run needs the runc v2 shim")
    d = tmp_path_factory.mktemp("ctd")
    sock = str(d / "containerd.sock")
    (d / "config.toml").write_text(
        "version = 2\n"
        f'root = "{d}/root"\n'
        f'state = "{d}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{sock}"\n'
        f'[ttrpc]\n  address = "{sock}.ttrpc"\n'
        '[debug]\n  address = ""\n'
        '[metrics]\n  address = ""\n'
        f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{d}/opt"\n'
    )
    log = d / "containerd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([CONTAINERD, "--config", str(d / "config.toml")], stdout=logf,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    cd = Containerd(sock, unique("xctest"))
    try:
        _wait_for_socket(sock, proc, log)
        deadline = time.monotonic() + 60
        while cd.ctr("version", timeout=30).rc != 0:
            assert time.monotonic() < deadline, f"containerd does not answer:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield cd
    finally:
        try:
            for cid in cd.ctr("container", "list", "--quiet").out.split():
                cd.remove(cid)
            cd.ctr("namespace", "remove", cd.namespace)
        except (subprocess.TimeoutExpired, OSError):
            pass
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        # The shim leaves the runtime's (empty) state root of our namespace behind.
        try:
            os.rmdir(f"/run/containerd/runc/{cd.namespace}")
        except OSError:
            pass
        # ...and so does it the namespace's parent cgroup, in every hierarchy.
        for hierarchy in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(f"/sys/fs/cgroup/{hierarchy}/{cd.namespace}")
            except OSError:
                pass


CTR_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def ctr_run(cd: Containerd, rt: str, rootfs: Path, cid: str, *argv: str, env: bool = True) -> Out:
    # --rootfs takes no value: the first argument is the rootfs, the second the container id.
    opts = ["--env", CTR_PATH_ENV] if env else []
    try:
        return cd.ctr("run", "--runc-binary", rt, "--rm", *opts, "--rootfs", str(rootfs), cid, *argv)
    finally:
        if cd.ctr("container", "info", cid).rc == 0:
            cd.remove(cid)


def test_ctr_run_echo(containerd, busybox_rootfs):
    def scenario(name: str, rt: str) -> tuple[int, str]:
        r = ctr_run(containerd, rt, busybox_rootfs, unique(f"xct-{name}"), "echo", "hi")
        assert r.rc == 0, f"{name}: ctr run failed ({r.rc}):\n{r.err}"
        return r.rc, r.out

    assert differential(scenario) == (0, "hi\n")


def test_ctr_run_exit_code_and_view(containerd, busybox_rootfs):
    def scenario(name: str, rt: str) -> tuple[int, str]:
        r = ctr_run(containerd, rt, busybox_rootfs, unique(f"xct-{name}"),
                    "sh", "-c", 'echo "pid=$$ cwd=$(pwd) args=$#"; exit 3', "x", "a", "b")
        return r.rc, r.out

    assert differential(scenario) == (3, "pid=1 cwd=/ args=2\n")


def test_ctr_run_without_path(containerd, busybox_rootfs):
    """ctr --rootfs passes no environment: with no PATH, a bare command name is not found."""
    def scenario(name: str, rt: str) -> tuple[bool, bool, str]:
        r = ctr_run(containerd, rt, busybox_rootfs, unique(f"xct-{name}"), "echo", "hi", env=False)
        found = ctr_run(containerd, rt, busybox_rootfs, unique(f"xct-{name}"), "/bin/echo", "hi", env=False)
        return r.rc != 0, "executable file not found" in r.err, found.out

    assert differential(scenario) == (True, True, "hi\n")


def test_ctr_run_detached_kill(containerd, busybox_rootfs):
    """ctr run -d, task exec, task kill: the shim's create/start/exec/kill/delete."""
    def scenario(name: str, rt: str) -> dict[str, object]:
        cid = unique(f"xct-{name}")
        got: dict[str, object] = {}
        try:
            r = containerd.ctr("run", "--runc-binary", rt, "-d", "--env", CTR_PATH_ENV,
                               "--rootfs", str(busybox_rootfs), cid, "sleep", "1000")
            got["run -d"] = r.rc
            # The runc shim's options (protobuf, base64 in JSON) name --runc-binary.
            info = json.loads(containerd.ctr("container", "info", cid).out or "{}")
            opts = (info.get("Runtime") or {}).get("Options") or {}
            got["driven by the runtime under test"] = rt.encode() in base64.b64decode(opts.get("value", ""))
            r = containerd.ctr("task", "ls")
            got["running"] = any(line.split()[0] == cid and line.split()[-1] == "RUNNING"
                                 for line in r.out.splitlines()[1:])
            r = containerd.ctr("task", "exec", "--exec-id", unique("e"), cid, "sh", "-c", "echo in; exit 2")
            got["exec"] = (r.rc, r.out)
            r = containerd.ctr("task", "kill", "--signal", "SIGKILL", cid)
            got["kill"] = r.rc
            deadline = time.monotonic() + 60
            while True:
                r = containerd.ctr("task", "ls")
                st = [line.split()[-1] for line in r.out.splitlines()[1:] if line.split()[0] == cid]
                if st == ["STOPPED"] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            got["stopped"] = st
            r = containerd.ctr("task", "delete", cid)
            got["task delete"] = r.rc
            r = containerd.ctr("container", "delete", cid)
            got["container delete"] = r.rc
        finally:
            if containerd.ctr("container", "info", cid).rc == 0:
                containerd.remove(cid)
        return got

    got = differential(scenario)
    assert got == {"run -d": 0, "driven by the runtime under test": True, "running": True, "exec": (2, "in\n"), "kill": 0, "stopped": ["STOPPED"],
                   "task delete": 0, "container delete": 0}
