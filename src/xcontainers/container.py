"""The typed API of the OCI runtime: one method per lifecycle verb.

``xc-runtime`` (runc's command line) and ``xc`` are thin adapters over
:class:`Runtime`.  Every verb loads the container's state, checks that the
move is legal (:meth:`State.can`), acts, then saves the new state with one
atomic rename.  A failure part-way through create undoes what was made:
processes, cgroups and the state directory; mounts live in the container's
own mount namespace and vanish with its last process.
"""

from __future__ import annotations

import _signal
import _socket
import os
import select
import time

from . import log
from ._record import record, replace
from .errors import ConfigError, ContainerError, InvalidState, SetupError, XcError
from .kernel import NAMESPACE_FLAGS, NAMESPACE_PROC_NAMES, PR
from .spec import load_bundle
from .state import State, Status, Store, process_start_time
from .points import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from .spec import Process, Spec

__all__ = ["Runtime", "CreateOptions", "ExecOptions", "DEFAULT_ROOT"]

DEFAULT_ROOT = "/run/xc-runtime"
_SECCOMP_FLAG_BITS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}


@record
class CreateOptions:
    pid_file: str | None = None
    console_socket: str | None = None
    preserve_fds: int = 0
    no_pivot: bool = False
    no_new_keyring: bool = False


@record
class ExecOptions:
    detach: bool = False
    pid_file: str | None = None
    console_socket: str | None = None
    preserve_fds: int = 0
    no_new_privs: bool = False


# What a foreground run or exec passes on to the container's process.
_FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
              _signal.SIGUSR1, _signal.SIGUSR2)


def _now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def _write_pid_file(path: str, pid: int) -> None:
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _connect_console(path: str) -> _socket.socket:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise ContainerError(f"--console-socket {path}: {e.strerror}") from None
    return s


def _seccomp_program(spec_seccomp: dict[str, Any] | None) -> tuple[bytes | None, int]:
    if not spec_seccomp:
        return None, 0
    from .seccomp import export_bpf

    flags = 0
    for f in spec_seccomp.get("flags") or []:
        flags |= _SECCOMP_FLAG_BITS.get(f, 0)
    return export_bpf(spec_seccomp), flags


def _libos_image_fd(annotations: dict[str, str]) -> int:
    """The X-LibOS image (libos.image_fd), or -1 for a plain container."""
    from . import libos

    return libos.image_fd() if libos.enabled(annotations) else -1


def _wait_pidfd(pid: int, start: int, timeout: float) -> bool:
    """Wait until process *pid* (with start time *start*) is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if process_start_time(pid) != start:
            return True
        p = select.poll()
        p.register(fd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(fd)


def _reap(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            return -1
        except InterruptedError:
            continue


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


class Runtime:
    """An OCI runtime whose containers' states live under *root*.

    *rootless* (default: when not running as root) makes it work as an
    unprivileged user can: see :mod:`xcontainers.rootless`."""

    def __init__(self, root: str = DEFAULT_ROOT, rootless: bool | None = None) -> None:
        self.store = Store(root)
        self.rootless = os.geteuid() != 0 if rootless is None else rootless
        # The X-LibOS statistics segment of the last container this
        # instance created (for a summary after `run`), or -1.
        self.stats_fd = -1

    # -- create / start / run ----------------------------------------------

    def create(self, cid: str, bundle: str, opts: CreateOptions | None = None,
               *, _foreground: bool = False, _console: _socket.socket | None = None,
               _spec: Spec | None = None) -> State:
        """Set the container up and leave its init waiting for start.

        (run() passes the *_spec* it has already loaded from *bundle*.)"""
        opts = opts or CreateOptions()
        self.store.check_id(cid)
        if os.path.isdir(self.store.dir(cid)):
            raise ContainerError(f"container {cid!r} already exists")
        spec = _spec if _spec is not None else load_bundle(bundle)
        if spec.process is None:
            raise ConfigError("process: the config has no process to run")
        if not spec.has_namespace("mount"):
            raise ConfigError("linux.namespaces: xc-runtime needs a mount namespace")
        if spec.process.terminal and opts.console_socket is None and _console is None:
            raise ConfigError("process.terminal is true: --console-socket is required")
        if spec.process.apparmor_profile:
            raise ConfigError("process.apparmorProfile: AppArmor is not supported on this host")
        if self.rootless:
            from . import rootless

            rootless.check_spec(spec)
        bpf, bpf_flags = _seccomp_program(spec.seccomp)
        from . import libos, profile

        mark("config")

        prof = profile.from_annotations(spec.annotations) if libos.enabled(spec.annotations) else None
        # Load what the steps below need before the first cgroup is made:
        # until then this overlaps the kernel's wait (cgroups.prime_moves).
        from . import cgroups
        from .init import InitContext, recv, send, setup_process_main

        resources = dict(spec.resources)
        if self.rootless:
            # Device access is what the bound host nodes allow (as runc).
            resources.pop("devices", None)
        if resources.get("devices"):
            from .defaults import DEFAULT_DEVICE_RULES

            resources["devices"] = list(resources["devices"]) + DEFAULT_DEVICE_RULES
        cg_path = None
        if self.rootless and not spec.cgroups_path:
            cg_path = cgroups.rootless_default_path(cid)  # below the caller's own, if delegated (v2)
        cg = cgroups.Cgroup.open(cg_path or cgroups.resolve_path(spec.cgroups_path, cid))
        state = State(
            id=cid, bundle=spec.bundle, status=Status.CREATING, created=_now_rfc3339(),
            rootfs=spec.root_path, annotations=spec.annotations, cgroup=cg.to_state(),
            config=spec.raw,
        )
        if self.rootless:
            from .rootless import user_name

            state.owner = user_name()
        self.store.reserve(state)
        mark("reserved")
        init_pid = 0
        setup_pid = 0
        try:
            fifo = os.path.join(self.store.dir(cid), "exec.fifo")
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            dir_fd = os.open(self.store.dir(cid), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            console = _console
            if console is None and opts.console_socket:
                console = _connect_console(opts.console_socket)
            parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            ctx = InitContext(
                container_id=cid, spec=spec, sync=child, state_dir_fd=dir_fd,
                console_sock=console, no_pivot=opts.no_pivot,
                no_new_keyring=opts.no_new_keyring, preserve_fds=opts.preserve_fds,
                seccomp_bpf=bpf, seccomp_flags=bpf_flags, cgroup_mounts=cg.mount_specs(),
                libos_fd=_libos_image_fd(spec.annotations),
            )
            if ctx.libos_fd >= 0 and prof is not None:
                ctx.stats_fd = libos.new_stats_fd(prof)
                self.stats_fd = os.dup(ctx.stats_fd)
                ctx.trace_fd = profile.open_trace(prof)
                ctx.trace_stderr = prof.trace == "stderr"
            # The cgroup comes last before the fork: making it may wait for
            # the primer's grace period (cgroups.prime_moves).
            # Rootless, a hierarchy the user may not write is left out
            # unless the config named the cgroup (as runc does).
            cg.create(skip_denied=self.rootless and not spec.cgroups_path)
            if cg.skipped:
                ctx.cgroup_mounts = cg.mount_specs()
            state.cgroup = cg.to_state()
            self.store.save(state)
            cg.apply(resources)
            mark("cgroup")
            if _foreground:
                from . import kernel

                kernel.prctl(PR.SET_CHILD_SUBREAPER, 1)
            setup_pid = os.fork()
            if setup_pid == 0:
                parent.close()
                setup_process_main(ctx)
            child.close()
            os.close(dir_fd)
            for fd in (ctx.libos_fd, ctx.stats_fd, ctx.trace_fd):
                if fd >= 0:
                    os.close(fd)
            if console is not None and console is not _console:
                console.close()
            while True:
                msg = recv(parent)
                if "userns" in msg:
                    if self.rootless and os.geteuid() != 0:
                        from .rootless import write_id_maps

                        write_id_maps(spec, msg["userns"])
                    else:
                        self._write_id_maps(spec, msg["userns"])
                    send(parent, ok=True)
                elif "init_pid" in msg:
                    init_pid = msg["init_pid"]
                    _reap(setup_pid)
                    setup_pid = 0
                    cg.add(init_pid)
                    if spec.process.oom_score_adj is not None:
                        self._oom_score_adj(init_pid, spec.process.oom_score_adj)
                    state.pid = init_pid
                    state.pid_start = process_start_time(init_pid) or 0
                    self.store.save(state)
                    mark("joined")
                    send(parent, ok=True)
                elif "hooks" in msg:
                    if spec.hooks.get("prestart") or spec.hooks.get("createRuntime"):
                        from .hooks import run_hooks

                        hs = state.hook_state()
                        hs["status"] = "creating"
                        hs["pid"] = init_pid
                        run_hooks("prestart", spec.hooks.get("prestart", []), hs)
                        run_hooks("createRuntime", spec.hooks.get("createRuntime", []), hs)
                    send(parent, ok=True)
                elif "ready" in msg:
                    break
            parent.close()
            cgroups.stop_priming()  # reap the primer that cg.add() stopped
            self.store.transition(state, Status.CREATED)
            if opts.pid_file:
                _write_pid_file(opts.pid_file, init_pid)
            mark("created")
            return state
        except BaseException as e:
            self._undo_create(state, cg, init_pid, setup_pid)
            if isinstance(e, EOFError):
                raise SetupError(f"container {cid!r}: the container's init died during setup") from None
            if isinstance(e, OSError) and not isinstance(e, XcError):
                raise SetupError(f"container {cid!r}: {e.strerror or e}"
                                 + (f": {e.filename}" if e.filename else "")) from None
            raise

    def _undo_create(self, state: State, cg: Any, init_pid: int, setup_pid: int) -> None:
        for pid in (setup_pid, init_pid):
            if pid:
                try:
                    os.kill(pid, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if setup_pid:
            _reap(setup_pid)
        if init_pid:
            _wait_pidfd(init_pid, state.pid_start, 5.0)
            try:
                os.waitpid(init_pid, os.WNOHANG)
            except ChildProcessError:
                pass
        try:
            cg.kill_all(_signal.SIGKILL)
        except (OSError, XcError):
            pass
        try:
            cg.destroy()
        except (OSError, XcError) as e:
            log.warning(f"removing cgroup of {state.id}: {e}")
        self.store.remove(state.id)

    @staticmethod
    def _write_id_maps(spec: Spec, pid: int) -> None:
        for name, maps in (("uid_map", spec.uid_mappings), ("gid_map", spec.gid_mappings)):
            text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
            try:
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(text)
            except OSError as e:
                raise SetupError(f"linux.{name[:3]}Mappings: writing {name}: {e.strerror}") from None

    @staticmethod
    def _oom_score_adj(pid: int, value: int) -> None:
        try:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(value))
        except OSError as e:
            raise SetupError(f"process.oomScoreAdj {value}: {e.strerror}") from None

    def start(self, cid: str) -> None:
        """Let a created container's init execute the program."""
        state = self.store.load(cid)
        st = state.live_status()
        if st != Status.CREATED:
            raise InvalidState(f"cannot start container {cid!r}: it is {st}, not created")
        fifo = os.path.join(self.store.dir(cid), "exec.fifo")
        try:
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            raise InvalidState(f"cannot start container {cid!r}: it was already started") from None
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    data = os.read(fd, 1)
                except BlockingIOError:
                    data = b""
                if data:
                    break
                if not state.process_alive():
                    # It may have written its byte, run the program and
                    # exited between the read above and this check.
                    try:
                        if os.read(fd, 1):
                            break
                    except BlockingIOError:
                        pass
                    raise InvalidState(f"cannot start container {cid!r}: its init exited")
                if time.monotonic() > deadline:
                    raise SetupError(f"container {cid!r}: init did not answer start")
                select.select([fd], [], [], 0.01)
        finally:
            os.close(fd)
            try:
                os.unlink(fifo)
            except FileNotFoundError:
                pass
        mark("released")
        self.store.transition(state, Status.RUNNING)
        mark("started")
        spec_hooks = self._hooks(state)
        if spec_hooks.get("poststart"):
            from .hooks import run_hooks

            try:
                run_hooks("poststart", spec_hooks["poststart"], state.hook_state())
            except XcError as e:
                log.warning(str(e))

    @staticmethod
    def _hooks(state: State) -> dict[str, Any]:
        from .spec import _parse_hooks

        try:
            return _parse_hooks(state.config.get("hooks"))
        except ConfigError:
            return {}

    def _stats_summary(self, annotations: dict[str, str]) -> None:
        """At exit: the LibOS's statistics, as JSON, where the annotation
        org.xcontainers.libos.stats asks (a host path)."""
        from . import libos

        path = annotations.get(libos.ANNOTATION + ".stats")
        if not path or self.stats_fd < 0:
            return
        import json

        try:
            data = libos.read_stats(self.stats_fd)
            with open(path, "w") as f:
                json.dump(data, f, indent=1)
        except XcError as e:
            log.warning(f"annotations.{libos.ANNOTATION}.stats: {e}")
        except OSError as e:
            log.warning(f"annotations.{libos.ANNOTATION}.stats: {path}: {e.strerror}")

    def run(self, cid: str, bundle: str, opts: CreateOptions | None = None, detach: bool = False,
            keep: bool = False, on_created: Callable[[State], None] | None = None) -> int:
        """create + start; in the foreground, wait and return the exit code.
        *on_created* runs between the two (e.g. to give the container a
        network in its namespace); if it fails, the container is deleted."""
        opts = opts or CreateOptions()
        if detach:
            state = self.create(cid, bundle, opts)
            try:
                if on_created is not None:
                    on_created(state)
                self.start(cid)
            except BaseException:
                self.delete(cid, force=True)
                raise
            return 0
        master_sock = None
        console = None
        spec = None
        if opts.console_socket is None:
            spec = load_bundle(bundle)
            if spec.process is not None and spec.process.terminal:
                master_sock, console = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            state = self.create(cid, bundle, opts, _foreground=True, _console=console, _spec=spec)
        finally:
            if console is not None:
                console.close()
        master = -1
        try:
            if master_sock is not None:
                from .console import recv_fd

                master = recv_fd(master_sock)
                master_sock.close()
            if on_created is not None:
                try:
                    on_created(state)
                except BaseException:
                    if keep:  # (otherwise the finally below deletes it)
                        self.delete(cid, force=True)
                    raise
            for sig in _FORWARDED:
                _signal.signal(sig, lambda s, _f, pid=state.pid: _forward(pid, s))
            self.start(cid)
            if master >= 0:
                from .console import Proxy

                code_box: list[int] = []

                def done() -> bool:
                    if not code_box:
                        pid, status = os.waitpid(state.pid, os.WNOHANG)
                        if pid:
                            code_box.append(os.waitstatus_to_exitcode(status))
                    return bool(code_box)

                with Proxy(master) as proxy:
                    proxy.pump(done)
                code = code_box[0] if code_box else _reap(state.pid)
            else:
                code = _reap(state.pid)
            mark("exited")
            self._stats_summary(state.annotations)
            return _exit_code(code)
        finally:
            if master >= 0:
                os.close(master)
            if not keep:
                try:
                    self.delete(cid, force=True)
                except XcError as e:
                    log.warning(str(e))

    # -- inspection ----------------------------------------------------------

    def state(self, cid: str) -> dict[str, Any]:
        return self.store.load(cid).oci()

    def list(self) -> list[dict[str, Any]]:
        out = []
        for cid in self.store.ids():
            try:
                out.append(self.store.load(cid).oci())
            except XcError:
                continue
        return out

    def pids(self, cid: str) -> list[int]:
        state = self.store.load(cid)
        from . import cgroups

        cg = cgroups.Cgroup.from_state(state.cgroup)
        if not cg.dirs:
            return _cgroupless_pids(state)
        return cg.pids()

    # -- signals, pause ------------------------------------------------------

    def kill(self, cid: str, sig: int, all_processes: bool = False) -> None:
        state = self.store.load(cid)
        st = state.live_status()
        if st == Status.STOPPED:
            raise InvalidState(f"container {cid!r} is not running")
        if all_processes:
            from . import cgroups

            cg = cgroups.Cgroup.from_state(state.cgroup)
            if not cg.dirs:
                for pid in _cgroupless_pids(state):
                    _forward(pid, sig)
                return
            cg.kill_all(sig)
            if st == Status.PAUSED and sig == _signal.SIGKILL:
                cg.thaw()
            return
        try:
            fd = os.pidfd_open(state.pid)
        except ProcessLookupError:
            raise InvalidState(f"container {cid!r} is not running") from None
        try:
            if process_start_time(state.pid) != state.pid_start:
                raise InvalidState(f"container {cid!r} is not running")
            _signal.pidfd_send_signal(fd, sig)
        finally:
            os.close(fd)

    def pause(self, cid: str) -> None:
        state = self.store.load(cid)
        self.store.ensure_live(state, Status.RUNNING)
        from . import cgroups

        cg = cgroups.Cgroup.from_state(state.cgroup)
        if not cg.dirs:
            raise ContainerError(f"cannot pause container {cid!r}: it has no cgroup of its own "
                                 f"(rootless, and no cgroup is delegated to the user)")
        cg.freeze()
        self.store.transition(state, Status.PAUSED)

    def resume(self, cid: str) -> None:
        state = self.store.load(cid)
        self.store.ensure_live(state, Status.PAUSED)
        from . import cgroups

        cgroups.Cgroup.from_state(state.cgroup).thaw()
        self.store.transition(state, Status.RUNNING)

    # -- delete ----------------------------------------------------------------

    def delete(self, cid: str, force: bool = False) -> None:
        """Remove a stopped (or created) container; with *force*, kill it first."""
        state = self.store.load(cid)
        st = state.live_status()
        if st in (Status.RUNNING, Status.PAUSED) and not force:
            raise InvalidState(
                f"cannot delete container {cid!r}: it is {st} (stop it first, or use --force)"
            )
        from . import cgroups

        cg = cgroups.Cgroup.from_state(state.cgroup) if state.cgroup else None
        if st != Status.STOPPED:
            try:
                os.kill(state.pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if cg is not None and not cg.dirs and st != Status.STOPPED:
            for pid in _cgroupless_pids(state):
                _forward(pid, _signal.SIGKILL)
        if cg is not None:
            try:
                cg.kill_all(_signal.SIGKILL)
                if st == Status.PAUSED:
                    cg.thaw()
            except (OSError, XcError):
                pass
        if state.pid:
            _wait_pidfd(state.pid, state.pid_start, 10.0)
            try:
                os.waitpid(state.pid, os.WNOHANG)
            except ChildProcessError:
                pass
        mark("killed")
        if cg is not None:
            cg.destroy()
        mark("cgroup-removed")
        was_created = state.status != Status.CREATING
        self.store.remove(cid)
        mark("deleted")
        if was_created:
            hooks = self._hooks(state)
            if hooks.get("poststop"):
                from .hooks import run_hooks

                hs = state.hook_state()
                hs["status"] = "stopped"
                try:
                    run_hooks("poststop", hooks["poststop"], hs)
                except XcError as e:
                    log.warning(str(e))

    # -- exec ----------------------------------------------------------------

    def exec(self, cid: str, process: Process, opts: ExecOptions | None = None) -> int:
        """Run *process* inside a running container; return its exit code unless detached."""
        opts = opts or ExecOptions()
        state = self.store.load(cid)
        st = state.live_status()
        if st != Status.RUNNING:
            raise InvalidState(f"cannot exec in container {cid!r}: it is {st}, not running")
        from . import cgroups
        from .spec import parse

        spec = parse(state.config, state.bundle) if os.path.isdir(state.rootfs) else None
        seccomp = spec.seccomp if spec else None
        bpf, bpf_flags = _seccomp_program(seccomp)
        ns_flags = 0
        for ns_type, flag in NAMESPACE_FLAGS.items():
            name = NAMESPACE_PROC_NAMES[ns_type]
            try:
                if os.stat(f"/proc/{state.pid}/ns/{name}").st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                    ns_flags |= flag
            except OSError:
                continue
        pidfd = os.pidfd_open(state.pid)
        master_sock = console = None
        if process.terminal:
            if opts.console_socket:
                console = _connect_console(opts.console_socket)
            elif opts.detach:
                raise ContainerError("exec --tty --detach needs --console-socket")
            else:
                master_sock, console = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        from .init import ExecContext, exec_setup_main, recv, send

        ctx = ExecContext(
            process=process, sync=child, pidfd=pidfd, ns_flags=ns_flags, console_sock=console,
            preserve_fds=opts.preserve_fds, seccomp_bpf=bpf, seccomp_flags=bpf_flags,
            no_new_privs=opts.no_new_privs, libos_fd=_libos_image_fd(state.annotations),
        )
        if ctx.libos_fd >= 0:
            from . import libos

            from . import profile

            ctx.stats_fd = libos.container_stats_fd(state.pid)
            # The trace fd only where the container's profile has a trace:
            # otherwise XC_TRACE_FD is the container's own to use.
            if profile.from_annotations(state.annotations).trace:
                ctx.trace_fd = libos.container_trace_fd(state.pid)
        if not opts.detach:
            from . import kernel

            kernel.prctl(PR.SET_CHILD_SUBREAPER, 1)
        cg = cgroups.Cgroup.from_state(state.cgroup)
        setup_pid = os.fork()
        if setup_pid == 0:
            parent.close()
            exec_setup_main(ctx)
        mark("exec-forked")
        child.close()
        os.close(pidfd)
        for fd in (ctx.libos_fd, ctx.stats_fd, ctx.trace_fd):
            if fd >= 0:
                os.close(fd)
        if console is not None:
            console.close()
        pid = 0
        try:
            while True:
                msg = recv(parent)
                if "init_pid" in msg:
                    pid = msg["init_pid"]
                    _reap(setup_pid)
                    setup_pid = 0
                    cg.add(pid)
                    send(parent, ok=True)
                elif "ready" in msg:
                    mark("exec-ready")
                    break
        except BaseException as e:
            for p in (setup_pid, pid):
                if p:
                    try:
                        os.kill(p, _signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _reap(p)
            if isinstance(e, EOFError):
                raise SetupError(f"exec in {cid!r}: the process died during setup") from None
            raise
        finally:
            parent.close()
        cgroups.stop_priming()  # reap the primer that cg.add() stopped
        if opts.pid_file:
            _write_pid_file(opts.pid_file, pid)
        if opts.detach:
            return 0
        for sig in _FORWARDED:
            _signal.signal(sig, lambda s, _f, p=pid: _forward(p, s))
        if master_sock is not None:
            from .console import Proxy, recv_fd

            master = recv_fd(master_sock)
            master_sock.close()
            code_box: list[int] = []

            def done() -> bool:
                if not code_box:
                    p, status = os.waitpid(pid, os.WNOHANG)
                    if p:
                        code_box.append(os.waitstatus_to_exitcode(status))
                return bool(code_box)

            try:
                with Proxy(master) as proxy:
                    proxy.pump(done)
            finally:
                os.close(master)
            return _exit_code(code_box[0] if code_box else _reap(pid))
        return _exit_code(_reap(pid))

    def exec_process(self, cid: str, args: list[str], *, env: list[str] | None = None,
                     cwd: str | None = None, user: tuple[int, int] | None = None,
                     additional_gids: list[int] | None = None, tty: bool = False,
                     caps: list[str] | None = None) -> Process:
        """The process to exec: the container's own, with these overrides (as runc exec)."""
        state = self.store.load(cid)
        from .spec import _parse_process

        base = _parse_process(state.config["process"])
        proc = replace(base, args=args, terminal=tty)
        if env:
            names = {e.split("=", 1)[0] for e in env}
            proc.env = [e for e in base.env if e.split("=", 1)[0] not in names] + env
        if cwd:
            proc.cwd = cwd
        if user:
            proc.uid, proc.gid = user
        if additional_gids is not None:
            proc.additional_gids = additional_gids
        if caps:
            proc.capabilities = {k: list(dict.fromkeys(v + caps)) for k, v in base.capabilities.items()
                                 if k != "ambient"} | {"ambient": base.capabilities.get("ambient", [])}
        return proc


def _cgroupless_pids(state: State) -> list[int]:
    """The processes of a container without a cgroup of its own (rootless,
    where none is delegated): every process in its init's pid namespace,
    or, sharing ours, the init and its descendants."""
    if not state.process_alive():
        return []
    try:
        ns = os.stat(f"/proc/{state.pid}/ns/pid").st_ino
        own_ns = ns != os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return [state.pid]
    parents: dict[int, int] = {}
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if own_ns:
                if os.stat(f"/proc/{pid}/ns/pid").st_ino == ns:
                    found.append(pid)
                continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
            parents[pid] = int(data[data.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
    if own_ns:
        return sorted(found)
    tree = {state.pid}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return sorted(tree)


def _forward(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
