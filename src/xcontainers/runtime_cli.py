"""`xc-runtime`: the OCI runtime with runc's command line.

A thin adapter: parse runc's flags, call :class:`xcontainers.container.Runtime`,
print what runc prints, exit as runc exits.  A runc flag we accept but do not
implement fails with a message naming it; unknown flags are refused by the
parser.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any, NoReturn

from . import OCI_VERSION, __version__, log
from .errors import ConfigError, XcError

__all__ = ["main", "build_parser", "parse_signal"]


def parse_signal(text: str) -> int:
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < signal.NSIG:
            return n
        raise XcError(f"invalid signal {text!r}")
    if not t.startswith("SIG"):
        t = "SIG" + t
    try:
        return int(signal.Signals[t])
    except KeyError:
        raise XcError(f"invalid signal {text!r}") from None


def _unsupported(flag: str) -> NoReturn:
    raise XcError(f"{flag} is not supported by xc-runtime")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xc-runtime", description="xcontainers OCI runtime (runc-compatible)")
    p.add_argument("--root", default=os.environ.get("XC_RUNTIME_ROOT", "/run/xc-runtime"))
    p.add_argument("--log", default=None)
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--debug", action="store_true")
    p.add_argument("--systemd-cgroup", action="store_true", help="accepted; cgroups are managed directly")
    p.add_argument("--rootless", default="auto")
    p.add_argument("--criu", default=None)
    p.add_argument("-v", "--version", action="store_true")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_)

    def create_flags(c: argparse.ArgumentParser) -> None:
        c.add_argument("-b", "--bundle", default=".")
        c.add_argument("--pid-file")
        c.add_argument("--console-socket")
        c.add_argument("--preserve-fds", type=int, default=0)
        c.add_argument("--no-pivot", action="store_true")
        c.add_argument("--no-new-keyring", action="store_true")
        c.add_argument("id")

    create_flags(cmd("create", "create a container"))
    r = cmd("run", "create and start a container")
    create_flags(r)
    r.add_argument("-d", "--detach", action="store_true")
    r.add_argument("--keep", action="store_true", help="do not delete the container after it exits")
    cmd("start", "start a created container").add_argument("id")
    st = cmd("state", "print the state of a container")
    st.add_argument("id")
    k = cmd("kill", "send a signal to a container's init")
    k.add_argument("-a", "--all", action="store_true")
    k.add_argument("id")
    k.add_argument("signal", nargs="?", default="SIGTERM")
    d = cmd("delete", "delete a container")
    d.add_argument("-f", "--force", action="store_true")
    d.add_argument("id")
    ls = cmd("list", "list containers")
    ls.add_argument("-f", "--format", choices=("table", "json"), default="table")
    ls.add_argument("-q", "--quiet", action="store_true")
    e = cmd("exec", "run a process in a running container")
    e.add_argument("-p", "--process")
    e.add_argument("-t", "--tty", action="store_true")
    e.add_argument("-d", "--detach", action="store_true")
    e.add_argument("--pid-file")
    e.add_argument("-e", "--env", action="append", default=[])
    e.add_argument("--cwd")
    e.add_argument("-u", "--user")
    e.add_argument("-g", "--additional-gids", action="append", type=int)
    e.add_argument("-c", "--cap", action="append", default=[])
    e.add_argument("--console-socket")
    e.add_argument("--preserve-fds", type=int, default=0)
    e.add_argument("--no-new-privs", action="store_true")
    e.add_argument("--apparmor")
    e.add_argument("--process-label")
    e.add_argument("--cgroup")
    e.add_argument("--ignore-paused", action="store_true")
    e.add_argument("id")
    e.add_argument("args", nargs=argparse.REMAINDER)
    ps = cmd("ps", "list the processes of a container")
    ps.add_argument("-f", "--format", choices=("table", "json"), default="table")
    ps.add_argument("id")
    ps.add_argument("ps_args", nargs=argparse.REMAINDER)
    cmd("pause", "freeze every process of a container").add_argument("id")
    cmd("resume", "thaw a paused container").add_argument("id")
    sp = cmd("spec", "write a default config.json")
    sp.add_argument("-b", "--bundle", default=".")
    sp.add_argument("--rootless", action="store_true")
    cmd("features", "print what this runtime supports, as JSON")
    for name in ("checkpoint", "restore", "update", "events"):
        u = cmd(name, "not supported by xc-runtime")
        u.add_argument("rest", nargs=argparse.REMAINDER)
    return p


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _list_table(items: list[dict[str, Any]]) -> None:
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in items:
        rows.append((s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]))
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        sys.stdout.write("   ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")


def _user(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    try:
        return int(uid), int(gid or 0)
    except ValueError:
        raise XcError(f"--user {text!r}: must be UID[:GID] in numbers") from None


def _exec_process(rt: Any, a: argparse.Namespace) -> Any:
    from .spec import _parse_process

    if a.apparmor or a.process_label:
        _unsupported("--apparmor/--process-label")
    if a.cgroup:
        _unsupported("--cgroup")
    if a.process:
        try:
            with open(a.process) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--process {a.process}: {e}") from None
        proc = _parse_process(doc)
        if a.tty:
            proc.terminal = True
        return proc
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    if not args:
        raise XcError("exec: give a command, or --process FILE")
    return rt.exec_process(
        a.id, args, env=a.env, cwd=a.cwd, user=_user(a.user) if a.user else None,
        additional_gids=a.additional_gids, tty=a.tty, caps=a.cap,
    )


def _ps(rt: Any, a: argparse.Namespace) -> int:
    pids = rt.pids(a.id)
    if a.format == "json":
        _print_json(pids)
        return 0
    import subprocess

    ps_args = a.ps_args or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=False).stdout
    lines = out.splitlines()
    if not lines:
        return 1
    header = lines[0].split()
    try:
        col = header.index("PID")
    except ValueError:
        raise XcError("ps: the output of ps has no PID column") from None
    sys.stdout.write(lines[0] + "\n")
    want = set(pids)
    for line in lines[1:]:
        fields = line.split(None, col + 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in want:
            sys.stdout.write(line + "\n")
    return 0


def dispatch(a: argparse.Namespace) -> int:
    from .container import CreateOptions, ExecOptions, Runtime

    if a.rootless not in ("auto", "false") and a.rootless:
        _unsupported("--rootless")
    rt = Runtime(a.root)
    c = a.command
    if c in ("create", "run"):
        opts = CreateOptions(pid_file=a.pid_file, console_socket=a.console_socket,
                             preserve_fds=a.preserve_fds, no_pivot=a.no_pivot,
                             no_new_keyring=a.no_new_keyring)
        if c == "create":
            rt.create(a.id, a.bundle, opts)
            return 0
        return rt.run(a.id, a.bundle, opts, detach=a.detach, keep=a.keep)
    if c == "start":
        rt.start(a.id)
        return 0
    if c == "state":
        _print_json(rt.state(a.id))
        return 0
    if c == "kill":
        rt.kill(a.id, parse_signal(a.signal), all_processes=a.all)
        return 0
    if c == "delete":
        rt.delete(a.id, force=a.force)
        return 0
    if c == "list":
        items = rt.list()
        if a.quiet:
            for s in items:
                sys.stdout.write(s["id"] + "\n")
        elif a.format == "json":
            sys.stdout.write(json.dumps(items) + "\n")
        else:
            _list_table(items)
        return 0
    if c == "exec":
        proc = _exec_process(rt, a)
        eo = ExecOptions(detach=a.detach, pid_file=a.pid_file, console_socket=a.console_socket,
                         preserve_fds=a.preserve_fds, no_new_privs=a.no_new_privs)
        return rt.exec(a.id, proc, eo)
    if c == "ps":
        return _ps(rt, a)
    if c == "pause":
        rt.pause(a.id)
        return 0
    if c == "resume":
        rt.resume(a.id)
        return 0
    if c == "spec":
        from .defaults import write_spec

        if a.rootless:
            _unsupported("spec --rootless")
        write_spec(a.bundle)
        return 0
    if c == "features":
        from .defaults import features

        _print_json(features())
        return 0
    _unsupported(f"the {c!r} command")


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    a = parser.parse_args(argv)
    log.configure(a.log, a.log_format, a.debug)
    if a.version:
        sys.stdout.write(f"xc-runtime version {__version__}\nspec: {OCI_VERSION}\n")
        sys.exit(0)
    if not a.command:
        parser.print_help()
        sys.exit(0)
    try:
        code = dispatch(a)
    except XcError as e:
        log.error(str(e))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except OSError as e:
        log.error(f"{a.command}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        code = 1
    sys.stdout.flush()
    sys.exit(code)
