"""The container side of create and exec: code that runs in forked children.

``create`` forks twice.  The first child (the *setup* process) joins or
creates the namespaces: a user namespace first (the runtime writes its id
maps), then all the others with one unshare(2).  A new pid namespace holds
only the children of the caller, so the setup process forks once more: that
grandchild is the container's init (pid 1 inside), and the setup process
reports its host pid and exits.

The init then waits until the runtime has put it in the container's cgroup,
unshares the cgroup namespace, builds the filesystem (see :mod:`rootfs`),
sets up its terminal and credentials, reports ``ready`` and blocks opening
the exec fifo for writing.  ``start`` opens the fifo for reading; the init
writes one byte, runs the startContainer hooks, loads seccomp last of all and
executes the program.

Every message between the runtime and its children is one JSON object on a
SOCK_SEQPACKET socketpair.  A child that fails sends ``{"error": ...}`` and
exits; the runtime then undoes everything it made.

Nothing here may import a module lazily once the process has pivoted into
the container's rootfs: the host's Python library is no longer there.
What only some containers need (hooks, a terminal, tmpcopyup mounts) is
imported by :func:`_preload` before the first namespace is entered, and
only for a container that needs it.
"""

from __future__ import annotations

import _signal
import _socket
import os
import struct
import sys

from . import _json as json
from . import credentials, kernel, rootfs
from ._record import field, record
from .errors import SetupError, XcError
from .kernel import CLONE, NAMESPACE_FLAGS, PR
from .libos_abi import XC_ARG_INIT, XC_IMAGE_NAME, XC_LIBOS_FD, XC_STATS_FD, XC_TRACE_FD
from .points import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from .spec import Process, Spec

__all__ = ["InitContext", "ExecContext", "setup_process_main", "exec_setup_main", "send", "recv"]

FIFO_NAME = "exec.fifo"


def send(sock: _socket.socket, **msg: Any) -> None:
    sock.send(json.dumps(msg).encode())


def recv(sock: _socket.socket) -> dict[str, Any]:
    data = sock.recv(1 << 16)
    if not data:
        raise EOFError("peer closed the sync socket")
    msg = json.loads(data)
    if "error" in msg:
        raise SetupError(msg["error"])
    return msg


@record
class InitContext:
    container_id: str
    spec: Spec
    sync: _socket.socket
    state_dir_fd: int
    console_sock: _socket.socket | None = None
    no_pivot: bool = False
    no_new_keyring: bool = False
    preserve_fds: int = 0
    seccomp_bpf: bytes | None = None
    seccomp_flags: int = 0
    cgroup_mounts: list[tuple[str, str, str]] = field(default_factory=list)
    libos_fd: int = -1
    stats_fd: int = -1
    trace_fd: int = -1          # the LibOS's trace file, or -1
    trace_stderr: bool = False  # the trace goes to the container's stderr


@record
class ExecContext:
    process: Process
    sync: _socket.socket
    pidfd: int
    ns_flags: int
    console_sock: _socket.socket | None = None
    preserve_fds: int = 0
    seccomp_bpf: bytes | None = None
    seccomp_flags: int = 0
    no_new_privs: bool = False
    apparmor: str | None = None
    libos_fd: int = -1
    stats_fd: int = -1
    trace_fd: int = -1


def _exception_only(exc: BaseException) -> str:
    """What traceback.format_exception_only() says of *exc* (less the
    source line of a SyntaxError), without importing traceback."""
    t = type(exc)
    name = t.__qualname__ if t.__module__ in ("builtins", "__main__") else f"{t.__module__}.{t.__qualname__}"
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - as traceback does
        text = "<exception str() failed>"
    lines = [f"{name}: {text}" if text else name]
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, (list, tuple)):
        lines += [str(n) for n in notes]
    return "\n".join(lines)


def _die(sync: _socket.socket, exc: BaseException) -> NoReturn:
    if isinstance(exc, XcError):
        msg = str(exc)
    elif isinstance(exc, OSError):
        msg = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
    else:
        msg = _exception_only(exc)
        if _debug():
            import traceback  # preloaded (see _preload)

            msg += "\n" + traceback.format_exc()
    try:
        send(sync, error=msg)
    except OSError:
        pass
    os._exit(1)


def _namespace_flags(spec: Spec) -> tuple[int, list[tuple[str, str]]]:
    """(flags to unshare, [(type, path) to join]) for the container's namespaces."""
    flags = 0
    joins = []
    for ns in spec.namespaces:
        if ns.path:
            joins.append((ns.type, ns.path))
        else:
            flags |= NAMESPACE_FLAGS[ns.type]
    return flags, joins


def _join(joins: list[tuple[str, str]]) -> None:
    # A user namespace must be joined first: it decides what the others allow.
    joins = sorted(joins, key=lambda j: j[0] != "user")
    for typ, path in joins:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SetupError(f"namespace {typ} path {path}: {e.strerror}") from None
        try:
            kernel.setns(fd, NAMESPACE_FLAGS[typ])
        except OSError as e:
            raise SetupError(f"joining {typ} namespace {path}: {e.strerror}") from None
        finally:
            os.close(fd)


def _debug() -> bool:
    return bool(os.environ.get("XC_DEBUG"))


def _preload(spec: Spec | None, terminal: bool) -> None:
    """Import now what later steps need: once in a user namespace or the
    container's rootfs, the host's Python library may be out of reach.
    Only what this container will use is imported (each import costs)."""
    if _debug():
        import traceback  # noqa: F401 - _die
    if terminal:
        from . import console  # noqa: F401 - _setup_terminal
    if spec is None:
        return
    if spec.hooks.get("createContainer") or spec.hooks.get("startContainer"):
        import subprocess  # noqa: F401 - run by run_hooks

        from . import hooks  # noqa: F401
    if rootfs.OVERLAY in spec.annotations and spec.annotations.get(rootfs.OVERLAY + ".driver") != "kernel":
        import subprocess  # noqa: F401,F811 - rootfs._fuse_overlay
    if any("tmpcopyup" in m.options for m in spec.mounts):
        import shutil  # noqa: F401 - rootfs._tmpcopyup
        import tempfile  # noqa: F401


# Whether this runtime runs as root on the host (taken before any user
# namespace makes every process root in its own).
_ROOT_ON_HOST = os.geteuid() == 0


def _hide_from_the_container() -> None:
    """Not dumpable until the execve: the processes that enter the
    container run the host's Python, and its /proc/PID/exe (like its other
    /proc/PID links) must stay out of reach of the container's processes,
    or one of them could hold the host's interpreter open and overwrite it
    once no Python runs it (CVE-2019-5736 in runc).  A non-dumpable
    process's /proc/PID files belong to root and need CAP_SYS_PTRACE to
    follow; execve of the LibOS image (or the program) makes the process
    dumpable again.  (Set after the user namespace's id maps are written:
    the runtime writes them through /proc/PID.)  A rootless runtime skips
    it: its containers can write nothing of the host that their user could
    not, and its network helpers (slirp4netns, pasta), running as that user,
    must open the init's /proc/PID/ns files."""
    if _ROOT_ON_HOST:
        kernel.prctl(PR.SET_DUMPABLE, 0)


def setup_process_main(ctx: InitContext) -> NoReturn:
    """The first child of create: namespaces, then fork the init."""
    try:
        spec = ctx.spec
        _preload(spec, spec.process is not None and spec.process.terminal)
        flags, joins = _namespace_flags(spec)
        _join(joins)
        if flags & CLONE.NEWUSER:
            kernel.unshare(CLONE.NEWUSER)
            send(ctx.sync, userns=os.getpid())
            recv(ctx.sync)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        _hide_from_the_container()
        rest = flags & ~(CLONE.NEWUSER | CLONE.NEWCGROUP)
        if rest:
            kernel.unshare(rest)
            if rest & CLONE.NEWNET:
                kernel.loopback_up()  # as runc does: a new network namespace has lo up
        mark("namespaces")
        pid = os.fork()
        if pid == 0:
            _init_main(ctx)
        send(ctx.sync, init_pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - reported to the runtime
        _die(ctx.sync, e)


def _prepare_exec_env(proc: Process) -> tuple[str, list[str]]:
    env = list(proc.env)
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + credentials.default_home(proc.uid))
    return credentials.find_executable(proc.args[0], env, proc.cwd), env


def _chdir(cwd: str) -> None:
    """Change into the process's cwd, which must lie inside the container's
    root: a path like /proc/self/fd/N names whatever this process holds on
    fd N, and a host directory there would start the program outside its
    root (CVE-2024-21626 in runc).  Beside holding no host directory open
    at this point, the result is checked: the kernel reports a cwd outside
    the root as "(unreachable)...", which getcwd() refuses."""
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
    except OSError:
        pass
    try:
        os.chdir(cwd)
    except OSError as e:
        raise SetupError(f"process.cwd {cwd!r}: {e.strerror}") from None
    try:
        inside = os.getcwd().startswith("/")
    except OSError:
        inside = False
    if not inside:
        raise SetupError(f"process.cwd {cwd!r}: leads outside the container's root")


def _setup_terminal(sock: _socket.socket, proc: Process, in_container_root: bool) -> None:
    from . import console  # preloaded (see _preload)

    master, slave = os.openpty()
    name = os.ttyname(slave)
    if proc.console_size:
        console.set_winsize(master, *proc.console_size)
    if in_container_root:
        rootfs.console_mount(name)
    console.send_fd(sock, master, name)
    os.close(master)
    sock.close()
    console.make_controlling(slave)
    if slave > 2:
        os.close(slave)


def _mark_fds_cloexec(keep_below: int) -> None:
    """Close-on-exec for every fd from *keep_below* up (runc does the same),
    except the LibOS image's."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= keep_below and fd not in (XC_LIBOS_FD, XC_STATS_FD, XC_TRACE_FD):
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
    for fd in range(3, keep_below):
        try:
            os.set_inheritable(fd, True)
        except OSError:
            pass


def _reset_signals() -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a program must start with defaults.
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT, _signal.SIGTERM, _signal.SIGCHLD):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def _drop_privileges(proc: Process, nnp: bool, bpf: bytes | None, bpf_flags: int) -> bytes | None:
    """Change credentials; return the seccomp program still to load, if any.

    Loading a filter needs no_new_privs or CAP_SYS_ADMIN.  Without
    no_new_privs the filter goes in now, while CAP_SYS_ADMIN is held (so the
    few calls left before execve must pass it, as under runc); with it, the
    filter is loaded last, right before execve.
    """
    if bpf is not None and not nnp:
        try:
            kernel.seccomp_load_bpf(bpf, bpf_flags)
        except OSError as e:
            raise SetupError(f"linux.seccomp: loading the filter: {e.strerror}") from None
        bpf = None
    credentials.apply_user_and_caps(proc)
    if nnp:
        kernel.prctl(PR.SET_NO_NEW_PRIVS, 1)
    return bpf


def _keep_libos_fds(image_fd: int, stats_fd: int, trace_fd: int = -1, trace_stderr: bool = False,
                    preserve_fds: int = 0) -> None:
    """Put the LibOS image on XC_LIBOS_FD, the statistics segment on
    XC_STATS_FD and the trace on XC_TRACE_FD, inheritable, before rlimits apply."""
    if image_fd >= 0 and 3 + preserve_fds > XC_TRACE_FD:
        raise SetupError(f"X-LibOS: --preserve-fds {preserve_fds} passes fds up to {2 + preserve_fds}, "
                         f"but fds {XC_TRACE_FD}-{XC_LIBOS_FD} are the X-LibOS's")
    if trace_stderr:
        trace_fd = os.dup(2)
    for fd, target, what in ((image_fd, XC_LIBOS_FD, "image"), (stats_fd, XC_STATS_FD, "statistics"),
                             (trace_fd, XC_TRACE_FD, "trace")):
        if fd < 0:
            continue
        try:
            os.dup2(fd, target, inheritable=True)
        except OSError as e:
            raise SetupError(f"X-LibOS: keeping the {what} on fd {target}: {e.strerror}") from None
        os.close(fd)


def _libos_argv(path: str, args: list[str]) -> list[str]:
    """The LibOS image's argv for the first program: the program's own, with
    its path in an exec request in the statistics segment (abi.h, struct
    xc_exec_req), so that /proc/PID/cmdline is the program's; where the path
    does not fit, the path ahead of it in argv."""
    from . import libos_abi as abi
    raw = os.fsencode(path)
    if args and len(raw) < abi.XC_EXEC_REQ_PATH:
        req = struct.pack(f"<qIIII{abi.XC_EXEC_REQ_PATH}s{abi.XC_EXEC_REQ_EXE}s", os.getpid(), abi.XC_REQ_INIT, 0,
                          abi.argv_hash(args), 0, raw, b"")
        try:
            if os.pwrite(XC_STATS_FD, req, abi.STATS_EXEC_REQ_OFFSET) == len(req):
                return list(args)
        except OSError:
            pass
    return [XC_IMAGE_NAME, XC_ARG_INIT, path, *args]


def _exec(path: str, args: list[str], env: list[str], bpf: bytes | None, bpf_flags: int,
          libos: bool = False) -> NoReturn:
    _reset_signals()
    envd = dict(e.split("=", 1) for e in env)
    if bpf is not None:
        try:
            kernel.seccomp_load_bpf(bpf, bpf_flags)
        except OSError as e:
            sys.stderr.write(f"xc-runtime: loading seccomp filter: {e.strerror}\n")
            os._exit(127)
    mark("exec")
    try:
        if libos:
            # The program starts on the X-LibOS: execute its image, which loads the program.
            os.execve(XC_LIBOS_FD, _libos_argv(path, args), envd)
        os.execve(path, args, envd)
    except OSError as e:
        sys.stderr.write(f"xc-runtime: exec {args[0]}: {e.strerror}\n")
        os._exit(127 if e.errno == 2 else 126)


def _init_main(ctx: InitContext) -> NoReturn:
    """The container's init (pid 1 in a new pid namespace)."""
    spec = ctx.spec
    proc = spec.process
    assert proc is not None
    try:
        kernel.prctl(PR.SET_PDEATHSIG, 0)
        # Of the host's state directory only exec.fifo is needed, and not a
        # directory: from here on no fd of ours names a host directory.
        fifo_fd = os.open(FIFO_NAME, os.O_PATH | os.O_CLOEXEC, dir_fd=ctx.state_dir_fd)
        os.close(ctx.state_dir_fd)
        recv(ctx.sync)  # the runtime has put us into the cgroup
        os.setsid()
        if spec.namespace("cgroup") is not None and spec.namespace("cgroup").path is None:  # type: ignore[union-attr]
            kernel.unshare(CLONE.NEWCGROUP)
        if not ctx.no_new_keyring:
            try:
                kernel.join_session_keyring(None)
            except OSError:
                pass  # keyrings may be disabled; runc ignores ENOSYS too
        rootfs.prepare(spec, ctx.cgroup_mounts)
        mark("mounts")
        send(ctx.sync, hooks="createRuntime")
        recv(ctx.sync)
        if spec.hooks.get("createContainer"):
            from .hooks import run_hooks  # preloaded

            run_hooks("createContainer", spec.hooks["createContainer"], _hook_state(ctx))
        rootfs.pivot(spec, ctx.no_pivot)
        rootfs.finish(spec)
        if spec.hostname:
            kernel.sethostname(spec.hostname)
        if spec.domainname:
            kernel.setdomainname(spec.domainname)
        if proc.terminal:
            if ctx.console_sock is None:
                raise SetupError("process.terminal needs a console socket (--console-socket)")
            _setup_terminal(ctx.console_sock, proc, True)
        _chdir(proc.cwd)
        path, env = _prepare_exec_env(proc)
        if proc.umask is not None:
            os.umask(proc.umask)
        _keep_libos_fds(ctx.libos_fd, ctx.stats_fd, ctx.trace_fd, ctx.trace_stderr, ctx.preserve_fds)
        credentials.apply_rlimits(proc)
        if not os.path.exists(f"/proc/self/fd/{fifo_fd}"):
            raise SetupError("the container has no /proc: the init reaches exec.fifo through /proc/self/fd")
        bpf = _drop_privileges(proc, proc.no_new_privileges, ctx.seccomp_bpf, ctx.seccomp_flags)
        _mark_fds_cloexec(3 + ctx.preserve_fds)
        mark("init")
        send(ctx.sync, ready=True)
        ctx.sync.close()
    except BaseException as e:  # noqa: BLE001
        _die(ctx.sync, e)
    # Wait for `start`: opening a fifo for writing blocks until a reader
    # comes.  The O_PATH fd is reopened through /proc, as runc does.
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        os.close(fifo_fd)
    except OSError as e:
        sys.stderr.write(f"xc-runtime: waiting for start: {e.strerror}\n")
        os._exit(1)
    if spec.hooks.get("startContainer"):
        from .hooks import run_hooks  # preloaded

        try:
            run_hooks("startContainer", spec.hooks["startContainer"], _hook_state(ctx))
        except XcError as e:
            sys.stderr.write(f"xc-runtime: {e}\n")
            os._exit(1)
    _exec(path, proc.args, env, bpf, ctx.seccomp_flags, libos=ctx.libos_fd >= 0)


def _hook_state(ctx: InitContext) -> dict[str, Any]:
    return {
        "ociVersion": ctx.spec.oci_version,
        "id": ctx.container_id,
        "status": "creating",
        "pid": os.getpid(),
        "bundle": ctx.spec.bundle,
        "annotations": ctx.spec.annotations,
    }


def exec_setup_main(ctx: ExecContext) -> NoReturn:
    """The first child of exec: join the container's namespaces, fork the process."""
    try:
        _preload(None, ctx.process.terminal)
        _hide_from_the_container()
        try:
            kernel.setns(ctx.pidfd, ctx.ns_flags)
        except OSError as e:
            raise SetupError(f"joining the container's namespaces: {e.strerror}") from None
        mark("exec-joined")
        pid = os.fork()
        if pid == 0:
            _exec_main(ctx)
        send(ctx.sync, init_pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        _die(ctx.sync, e)


def _exec_main(ctx: ExecContext) -> NoReturn:
    proc = ctx.process
    try:
        recv(ctx.sync)  # in the cgroup now
        os.setsid()
        if proc.terminal:
            if ctx.console_sock is None:
                raise SetupError("--tty needs a console socket (--console-socket)")
            _setup_terminal(ctx.console_sock, proc, False)
        _chdir(proc.cwd)
        path, env = _prepare_exec_env(proc)
        if proc.umask is not None:
            os.umask(proc.umask)
        _keep_libos_fds(ctx.libos_fd, ctx.stats_fd, ctx.trace_fd, preserve_fds=ctx.preserve_fds)
        credentials.apply_rlimits(proc)
        nnp = ctx.no_new_privs or proc.no_new_privileges
        bpf = _drop_privileges(proc, nnp, ctx.seccomp_bpf, ctx.seccomp_flags)
        _mark_fds_cloexec(3 + ctx.preserve_fds)
        send(ctx.sync, ready=True)
        ctx.sync.close()
    except BaseException as e:  # noqa: BLE001
        _die(ctx.sync, e)
    _exec(path, proc.args, env, bpf, ctx.seccomp_flags, libos=ctx.libos_fd >= 0)
