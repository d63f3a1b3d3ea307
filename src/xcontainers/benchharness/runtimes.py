"""Runtimes the harness compares, found on this host, and how each one runs
a bundle (one-shot or detached) or a guest init script.

    native      the program run directly on the host
    runc, crun  `RUNTIME --root DIR run ...`
    runsc       gVisor (ptrace platform), `--network=none` or `--network=host`
    uml         User-Mode Linux (Debian's user-mode-linux), the guest's root a
                host directory (hostfs), an init script as its init
    xc-nolibos  xc-runtime with the annotation org.xcontainers.libos=off
    xc-trap     the X-LibOS with ABOM off (org.xcontainers.libos.abom=off):
                every system call traps
    xc          xc-runtime as it comes: the X-LibOS with ABOM

A runtime that is not installed is *missing* (with why); a run that does not
succeed raises RunFailed with the reason, which the experiments report as
*failed*, never as a number.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ALL", "Runtime", "RunFailed", "discover", "in_private_mount_ns", "busybox_rootfs",
           "host_rootfs", "write_bundle", "pss_kb", "descendants"]

ALL = ["native", "runc", "runc-seccomp", "crun", "runsc", "uml", "xc-nolibos", "xc-trap", "xc"]
ALIASES = {"xc-off": "xc-nolibos", "xc-abom": "xc", "docker": "runc-seccomp"}
# What Docker and podman add to runc: their default seccomp profile (Debian's containers-common).
DOCKER_SECCOMP = "/usr/share/containers/seccomp.json"
LIBOS = "org.xcontainers.libos"
HOST_DIRS = ("usr", "lib", "lib64", "bin", "sbin", "etc")
UML_ARGS = ["mem=128M", "root=/dev/root", "rootfstype=hostfs", "rw", "init=/init.sh", "quiet"]
_REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RunFailed(Exception):
    """A run that did not give a result; str() is the reason."""


@dataclass
class Completed:
    rc: int
    out: str
    err: str
    seconds: float
    t0: float = 0.0


@dataclass
class Runtime:
    name: str
    kind: str                     # native | oci | uml | none
    binary: str | None = None
    status: str = "available"     # available | missing
    reason: str = ""
    version: str = ""
    root: str = ""                # --root state directory (oci)
    annotations: dict[str, str] = field(default_factory=dict)
    seccomp: dict[str, Any] | None = None   # a Docker-format profile to put in every config
    _count: int = 0

    @property
    def available(self) -> bool:
        return self.status == "available"

    @property
    def slug(self) -> str:
        """The name as a file name (xc@/some/tree is another build's xc)."""
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)

    def describe(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "binary": self.binary,
                "version": self.version, "kind": self.kind}

    # --- OCI ---------------------------------------------------------------------
    def new_id(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}-{os.getpid()}-{self._count}"

    def oci(self, *args: str, net: str = "none") -> list[str]:
        assert self.kind == "oci" and self.binary
        g = [self.binary, "--root", self.root]
        if self.name == "runsc":
            g.append(f"--network={net}")
        return g + list(args)

    def run(self, bundle: str, cid: str, timeout: float = 180, net: str = "none",
            env: dict[str, str] | None = None) -> Completed:
        """`run` in the foreground; stdout is a pipe (runsc writes oddly to a regular file).
        ``seconds`` counts from just before the runtime is started (``t0``, perf_counter)."""
        t0 = time.perf_counter()
        try:
            r = subprocess.run(self.oci("run", "--bundle", bundle, cid, net=net), stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            self.delete(cid)
            raise RunFailed(f"timed out after {timeout:.0f} s") from None
        dt = time.perf_counter() - t0
        c = Completed(r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace"), dt, t0)
        if r.returncode != 0:
            self.delete(cid)
            raise RunFailed(f"exit status {r.returncode}: {(c.err.strip() or c.out.strip() or '(no output)')[-400:]}")
        return c

    def start(self, bundle: str, cid: str, log: str, net: str = "host", timeout: float = 120) -> int:
        """`run --detach`; the container's init pid."""
        with open(log, "ab") as f:
            try:
                r = subprocess.run(self.oci("run", "--detach", "--bundle", bundle, cid, net=net),
                                   stdin=subprocess.DEVNULL, stdout=f, stderr=f, timeout=timeout)
            except subprocess.TimeoutExpired:
                self.delete(cid)
                raise RunFailed(f"run --detach timed out after {timeout:.0f} s") from None
        if r.returncode != 0:
            self.delete(cid)
            raise RunFailed(f"run --detach: exit status {r.returncode}: {_tail(log)}")
        st = subprocess.run(self.oci("state", cid, net=net), capture_output=True, text=True, timeout=60)
        try:
            return int(json.loads(st.stdout)["pid"])
        except (ValueError, KeyError, TypeError):
            self.delete(cid)
            raise RunFailed(f"state after run --detach: {st.stderr.strip()[-300:]}") from None

    def delete(self, cid: str) -> None:
        try:
            subprocess.run(self.oci("delete", "--force", cid), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            pass

    # --- User-Mode Linux ------------------------------------------------------
    def uml_cmd(self, rootfs: str) -> list[str]:
        assert self.kind == "uml" and self.binary
        return [self.binary, *UML_ARGS, f"rootflags={rootfs}"]

    def boot(self, rootfs: str, init_script: str, timeout: float = 300) -> Completed:
        """Boot UML with *init_script* as /init.sh (which must power off); its console output."""
        write_init(rootfs, init_script)
        t0 = time.perf_counter()
        p = subprocess.Popen(self.uml_cmd(rootfs), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, cwd=rootfs, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(p)
            raise RunFailed(f"UML guest did not power off within {timeout:.0f} s") from None
        dt = time.perf_counter() - t0
        text = out.decode(errors="replace").replace("\r", "")
        if p.returncode != 0:
            raise RunFailed(f"linux.uml exit status {p.returncode}: {text.strip()[-400:]}")
        return Completed(p.returncode, text, "", dt)


def write_init(rootfs: str, script: str) -> None:
    path = os.path.join(rootfs, "init.sh")
    with open(path, "w") as f:
        f.write(script)
    os.chmod(path, 0o755)


def _kill_group(p: subprocess.Popen) -> None:
    """Kill a process group this harness started itself (start_new_session=True)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()


def _tail(path: str, n: int = 400) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read().strip()[-n:] or "(no output)"
    except OSError:
        return "(no log)"


def _version(binary: str, args: tuple[str, ...] = ("--version",)) -> str:
    try:
        r = subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        lines = (r.stdout or r.stderr).strip().splitlines()
        return lines[0] if lines else "?"
    except (OSError, subprocess.SubprocessError) as e:
        return f"? ({e})"


def _tree_runtime(tree: str) -> str:
    """A tree's xc-runtime, picked the same way for this tree and another
    (an A/B measures like with like): the package's native entry point
    (src/xcontainers/xc-runtime), else the tree's venv's console script."""
    own = os.path.join(tree, "src", "xcontainers", "xc-runtime")
    return own if os.access(own, os.X_OK) else os.path.join(tree, ".venv", "bin", "xc-runtime")


def _xc_runtime() -> str | None:
    """The tree's own xc-runtime, as the tests pick it (a bench run measures
    the code it sits in, not whatever PATH installs): the package's native
    entry point beside it, else the tree's venv's console script, else PATH."""
    own = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "xc-runtime")
    if os.access(own, os.X_OK):
        return own
    venv = os.path.join(_REPO, ".venv", "bin", "xc-runtime")
    return venv if os.path.exists(venv) else shutil.which("xc-runtime", path=PATH)


def discover(names: list[str], state_dir: str) -> dict[str, Runtime]:
    """The runtimes asked for, each available or missing with why."""
    out: dict[str, Runtime] = {}
    for name in names:
        name = ALIASES.get(name, name)
        kind, _, other = name.partition("@")
        if kind not in ALL or (other and not kind.startswith("xc")):
            raise ValueError(f"unknown runtime {name!r} (known: {', '.join(ALL)}; "
                             "xc, xc-trap and xc-nolibos also as NAME@TREE or NAME@XC_RUNTIME, another build)")
        if other:
            # An A/B between builds: another tree's xc-runtime (as _xc_runtime picks this tree's),
            # or an xc-runtime given by path.
            b = _tree_runtime(other) if os.path.isdir(other) else other
            if not os.access(b, os.X_OK):
                rt = Runtime(name, "oci", status="missing", reason=f"not an executable xc-runtime: {b}")
            else:
                rt = Runtime(name, "oci", b, version=_version(b), root=os.path.join(state_dir, f"state-{len(out)}"),
                             annotations={"xc-nolibos": {LIBOS: "off"}, "xc-trap": {LIBOS + ".abom": "off"}}.get(kind, {}))
            out[name] = rt
            continue
        if name == "native":
            rt = Runtime(name, "native", version=f"Linux {os.uname().release}")
        elif name == "uml":
            b = shutil.which("linux.uml", path=PATH)
            rt = Runtime(name, "uml", b) if b else Runtime(
                name, "uml", status="missing", reason="linux.uml not installed (Debian package user-mode-linux)")
            if b:
                rt.version = _uml_version()
        elif name == "runc-seccomp":
            b = shutil.which("runc", path=PATH)
            if not b or not os.path.exists(DOCKER_SECCOMP):
                rt = Runtime(name, "oci", status="missing",
                             reason="not installed: runc, or Docker's default seccomp profile " + DOCKER_SECCOMP
                                    + " (Debian package golang-github-containers-common)")
            else:
                with open(DOCKER_SECCOMP) as f:
                    prof = json.load(f)
                rt = Runtime(name, "oci", b, version=_version(b) + " + " + DOCKER_SECCOMP,
                             root=os.path.join(state_dir, f"state-{name}"), seccomp=prof)
        else:
            b = _xc_runtime() if name.startswith("xc") else shutil.which(name, path=PATH)
            if not b:
                what = "xc-runtime (make setup)" if name.startswith("xc") else f"{name} (Debian package {name})"
                rt = Runtime(name, "oci", status="missing", reason=f"not installed: {what}")
            else:
                rt = Runtime(name, "oci", b, version=_version(b),
                             root=os.path.join(state_dir, f"state-{name}"),
                             annotations={"xc-nolibos": {LIBOS: "off"},
                                          "xc-trap": {LIBOS + ".abom": "off"}}.get(name, {}))
        out[name] = rt
    return out


def oci_seccomp(profile: dict[str, Any], caps: list[str]) -> dict[str, Any]:
    """A Docker-format seccomp profile as OCI's linux.seccomp, resolved as Docker
    and podman resolve it for an amd64 container with these capabilities."""
    def applies(rule: dict[str, Any]) -> bool:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            return False
        if exc.get("arches") and "amd64" in exc["arches"]:
            return False
        if inc.get("caps") and not set(inc["caps"]) <= set(caps):
            return False
        if exc.get("caps") and set(exc["caps"]) & set(caps):
            return False
        return True

    out: dict[str, Any] = {"defaultAction": profile["defaultAction"],
                           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"], "syscalls": []}
    if "defaultErrnoRet" in profile:
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    for rule in profile.get("syscalls", []):
        if not applies(rule):
            continue
        r = {"names": rule["names"], "action": rule["action"]}
        if rule.get("args"):
            r["args"] = rule["args"]
        if "errnoRet" in rule:
            r["errnoRet"] = rule["errnoRet"]
        out["syscalls"].append(r)
    return out


def _uml_version() -> str:
    try:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "user-mode-linux"], capture_output=True,
                           text=True, timeout=10)
        return f"user-mode-linux {r.stdout.strip()}" if r.returncode == 0 else "user-mode-linux"
    except (OSError, subprocess.SubprocessError):
        return "user-mode-linux"


# --- the mount namespace ------------------------------------------------------------


def in_private_mount_ns(argv: list[str]) -> None:
    """Re-exec *argv* in a private mount namespace without /sys/fs/cgroup/unified.

    crun refuses this host's hybrid cgroup layout; without the cgroup2 mount it
    runs (DESIGN-NOTES §6).  Every runtime sees the same view.  Returns in the
    new namespace; the parent exits with the child's status.
    """
    if os.environ.get("XC_BENCH_NS") == "1":
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], stderr=subprocess.DEVNULL, check=False)
        return
    env = dict(os.environ, XC_BENCH_NS="1")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", *argv], env=env)
    sys.exit(r.returncode)


# --- rootfs and bundles -----------------------------------------------------------------


def busybox_rootfs(path: str, links: tuple[str, ...] = ("sh", "true", "sleep")) -> str:
    """busybox-static alone (plus whatever the caller adds)."""
    os.makedirs(os.path.join(path, "bin"))
    for d in ("proc", "sys", "dev", "tmp"):
        os.makedirs(os.path.join(path, d))
    shutil.copy2("/bin/busybox", os.path.join(path, "bin", "busybox"))
    for name in links:
        os.symlink("busybox", os.path.join(path, "bin", name))
    return path


def host_rootfs(path: str) -> str:
    """Mount points for the host's /usr, /lib, ... (bind-mounted read-only by the bundle)."""
    for d in HOST_DIRS:
        if os.path.islink("/" + d):
            os.makedirs(os.path.dirname(os.path.join(path, d)), exist_ok=True)
            os.symlink(os.readlink("/" + d), os.path.join(path, d))
        elif os.path.isdir("/" + d):
            os.makedirs(os.path.join(path, d), exist_ok=True)
    for d in ("proc", "sys", "dev", "tmp", "run", "var"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    for d in ("tmp", "run", "var"):
        os.chmod(os.path.join(path, d), 0o1777)
    return path


def write_bundle(bundle: str, rootfs: str, args: list[str], rt: Runtime, *, hostnet: bool = False,
                 host_dirs: bool = False, binds: list[str] = (), caps: list[str] = (),
                 own_cgroup: bool = True) -> str:
    from ..defaults import default_spec

    os.makedirs(bundle, exist_ok=True)
    spec = default_spec(args, terminal=False, hostname="bench")
    spec["root"]["path"] = rootfs
    # The same kind of cgroup for every runtime: one of its own below the root.
    # Left out, each runtime picks its own default (runc: the container's id
    # below runc's own cgroup; xc-runtime: /<id>; before 2026-12,
    # /xc-runtime/<id>, where containers nested under one parent shared that
    # parent's CPU weight against the clients).
    # (own_cgroup=False keeps each runtime's default, for bench/ab.py --runtime-cgroups.)
    # The harness's pid in the name: two harnesses running at once (other work on the
    # machine) once shared /xcbench-sb-xc, and one's delete killed the other's container.
    if own_cgroup:
        spec["linux"]["cgroupsPath"] = f"/xcbench-{os.getpid()}-" + os.path.basename(os.path.normpath(bundle))
    if hostnet:
        spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    if host_dirs:
        for d in HOST_DIRS:
            if os.path.isdir("/" + d) and not os.path.islink("/" + d):
                spec["mounts"].append({"destination": "/" + d, "type": "bind", "source": "/" + d,
                                       "options": ["rbind", "ro"]})
        for d in ("tmp", "run", "var"):
            spec["mounts"].append({"destination": "/" + d, "type": "tmpfs", "source": "tmpfs",
                                   "options": ["nosuid", "nodev", "mode=1777"]})
    for src in binds:  # the same path inside as outside
        spec["mounts"].append({"destination": src, "type": "bind", "source": src, "options": ["rbind", "ro"]})
    for c in caps:
        for v in spec["process"]["capabilities"].values():
            v.append(c)
    if rt.annotations:
        spec["annotations"] = dict(rt.annotations)
    if rt.seccomp is not None:
        spec["linux"]["seccomp"] = oci_seccomp(rt.seccomp, spec["process"]["capabilities"]["bounding"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f)
    return bundle


# --- memory -----------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            ppid = int(s[s.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def descendants(pids: list[int]) -> set[int]:
    """*pids* and every process below them."""
    kids = _children()
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo += kids.get(p, [])
    return seen


def pids_with_exe(binary: str) -> set[int]:
    real = os.path.realpath(binary)
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.path.realpath(f"/proc/{d}/exe") == real:
                    out.add(int(d))
            except OSError:
                pass
    return out


def pss_kb(pids: set[int]) -> int:
    """PSS summed over the processes (kB), from /proc/PID/smaps_rollup."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total
