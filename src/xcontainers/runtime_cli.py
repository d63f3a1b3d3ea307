"""`xc-runtime`: the OCI runtime with runc's command line.

A thin adapter: parse runc's flags, call :class:`xcontainers.container.Runtime`,
print what runc prints, exit as runc exits.  A runc flag we accept but do not
implement fails with a message naming it; unknown flags are refused by the
parser.

Every container operation starts a new interpreter, so this module imports
only what the command at hand needs: the parser is written out here rather
than built with :mod:`argparse` (which alone costs more than a whole
``start``).  It accepts what argparse did: ``--flag value``,
``--flag=value``, short flags (``-b DIR``, ``-bDIR``, ``-b=DIR``, clusters
such as ``-td``), unambiguous prefixes of long flags, ``--`` to end the
flags, and, as runc does, Go-style long flags with one dash (``-root DIR``)
and ``--bool-flag=true|false``.
"""

from __future__ import annotations

import _signal
import os
import sys

from . import OCI_VERSION, __version__
from .errors import ConfigError, XcError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn, TextIO

    from .container import Runtime
    from .spec import Process

__all__ = ["main", "build_parser", "parse_signal", "Parser", "Args", "UsageError"]

PROG = "xc-runtime"


def parse_signal(text: str) -> int:
    """A signal number from ``9``, ``KILL`` or ``SIGKILL`` (any case)."""
    t = text.strip().upper()
    if t.isdigit():
        n = int(t)
        if 0 < n < _signal.NSIG:
            return n
        raise XcError(f"invalid signal {text!r}")
    if not t.startswith("SIG"):
        t = "SIG" + t
    # The names signal.Signals has: _signal's SIG* constants, not SIG_DFL & co.
    number = getattr(_signal, t, None) if not t.startswith("SIG_") else None
    if not isinstance(number, int):
        raise XcError(f"invalid signal {text!r}")
    return number


def _unsupported(flag: str) -> NoReturn:
    raise XcError(f"{flag} is not supported by xc-runtime")


# --- the command line -------------------------------------------------------

_FLAG, _STR, _INT, _LIST, _INT_LIST, _HELP = "flag", "str", "int", "list", "int-list", "help"
_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


class UsageError(Exception):
    """A command line the parser refuses; *scope* names the command, if any."""

    def __init__(self, message: str, scope: _Scope) -> None:
        super().__init__(message)
        self.scope = scope


class Args:
    """The parsed command line: one attribute per flag and argument."""

    command: str | None

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    if TYPE_CHECKING:  # the attributes depend on the command

        def __getattr__(self, name: str) -> Any: ...

    def __repr__(self) -> str:
        return "Args(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


class _Opt:
    """One flag: its spellings, where its value goes, and how to read it."""

    __slots__ = ("names", "dest", "kind", "default", "choices", "metavar", "help")

    def __init__(self, names: str, kind: str = _FLAG, help: str = "", *, default: Any = None,
                 choices: tuple[str, ...] | None = None, metavar: str = "") -> None:
        self.names = tuple(names.split())
        self.dest = self.names[-1].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = False if kind == _FLAG and default is None else default
        self.choices = choices
        self.metavar = metavar or ("{" + ",".join(choices) + "}" if choices else self.dest.upper())
        self.help = help

    @property
    def takes_value(self) -> bool:
        return self.kind not in (_FLAG, _HELP)

    @property
    def label(self) -> str:
        return "/".join(self.names)


class _Scope:
    """The flags and arguments of the runtime itself or of one command.

    *positionals* are (name, kind) with kind "one" (required), "opt"
    (optional, default in *defaults*) or "rest" (every argument left, flags
    included, as argparse's REMAINDER)."""

    def __init__(self, name: str, help: str, opts: list[_Opt],
                 positionals: tuple[tuple[str, str], ...] = (), defaults: dict[str, Any] | None = None) -> None:
        self.name = name
        self.help = help
        self.opts = [_Opt("-h --help", _HELP, "show this help and exit"), *opts]
        self.positionals = positionals
        self.defaults = defaults or {}
        self.by_name = {n: o for o in self.opts for n in o.names}
        self.commands: dict[str, _Scope] = {}  # the runtime's own scope: its commands

    @property
    def prog(self) -> str:
        return f"{PROG} {self.name}" if self.name else PROG

    def initial(self) -> dict[str, Any]:
        values = {o.dest: list(o.default) if isinstance(o.default, list) else o.default
                  for o in self.opts if o.kind != _HELP}
        for name, kind in self.positionals:
            values[name] = [] if kind == "rest" else self.defaults.get(name)
        return values

    # -- recognising flags --

    def lookup(self, tok: str) -> tuple[_Opt, str | None, str] | None:
        """(flag, value given with it, rest of a short-flag cluster) for a
        token that names a flag here; None for an argument; UsageError for
        an unknown or ambiguous flag."""
        if len(tok) < 2 or tok[0] != "-" or tok == "--":
            return None
        name, eq, value = tok.partition("=")
        val = value if eq else None
        if tok.startswith("--"):
            opt = self.by_name.get(name) or self._abbrev(name)
            if opt is not None:
                return opt, val, ""
        else:
            long = self.by_name.get("-" + name)
            if long is not None and len(name) > 2:  # Go style: -root DIR
                return long, val, ""
            short = self.by_name.get(tok[:2])
            if short is not None:
                if tok[2:3] == "=":
                    return short, tok[3:], ""
                if short.takes_value:
                    return short, tok[2:] or None, ""
                return short, None, tok[2:]
            if _is_number(tok):
                return None
        if " " in tok:
            return None  # argparse takes "-a b" for an argument
        raise UsageError(f"unknown flag: {tok}", self)

    def _abbrev(self, name: str) -> _Opt | None:
        hits = sorted({n for n in self.by_name if n.startswith("--") and n.startswith(name)})
        if len(hits) > 1:
            raise UsageError(f"ambiguous flag: {name} could match {', '.join(hits)}", self)
        return self.by_name[hits[0]] if hits else None

    def is_flag(self, tok: str) -> bool:
        """Whether *tok* would be read as a flag (so cannot be a flag's value)."""
        if tok == "--":
            return True
        try:
            return self.lookup(tok) is not None
        except UsageError:
            return True

    # -- reading values --

    def store(self, values: dict[str, Any], opt: _Opt, raw: str | None) -> None:
        if opt.kind == _HELP:
            if raw is not None:
                raise UsageError(f"flag {opt.label} takes no value", self)
            sys.stdout.write(self.format_help())
            sys.exit(0)
        if opt.kind == _FLAG:
            if raw is None or raw in _TRUE:
                values[opt.dest] = True
            elif raw in _FALSE:
                values[opt.dest] = False
            else:
                raise UsageError(f"flag {opt.label}: {raw!r} is not a boolean", self)
            return
        assert raw is not None
        value: Any = raw
        if opt.kind in (_INT, _INT_LIST):
            try:
                value = int(raw)
            except ValueError:
                raise UsageError(f"flag {opt.label}: {raw!r} is not an integer", self) from None
        if opt.choices and value not in opt.choices:
            raise UsageError(f"flag {opt.label}: invalid value {raw!r} (choose from {', '.join(opt.choices)})", self)
        if opt.kind in (_LIST, _INT_LIST):
            if values[opt.dest] is None:
                values[opt.dest] = []
            values[opt.dest].append(value)
        else:
            values[opt.dest] = value

    def take_flag(self, argv: list[str], i: int, values: dict[str, Any]) -> int:
        """Read the flag(s) at argv[i]; return the index after them."""
        found = self.lookup(argv[i])
        assert found is not None
        opt, raw, cluster = found
        while True:
            if opt.takes_value and raw is None:
                if i + 1 >= len(argv) or self.is_flag(argv[i + 1]):
                    raise UsageError(f"flag {opt.label} needs a value", self)
                i += 1
                raw = argv[i]
            self.store(values, opt, raw)
            if not cluster:
                return i + 1
            # -tdu0: after a flag without a value comes another short flag;
            # one that takes a value takes the rest of the cluster, if any.
            nxt = self.by_name.get("-" + cluster[0])
            if nxt is None:
                raise UsageError(f"unknown flag: -{cluster[0]} (in {argv[i]})", self)
            opt = nxt
            if opt.takes_value:
                raw, cluster = cluster[1:] or None, ""
            else:
                raw, cluster = None, cluster[1:]

    # -- help --

    def usage(self) -> str:
        args = []
        for name, kind in self.positionals:
            label = name.upper().replace("_", "-")
            args.append(label if kind == "one" else f"[{label}]" if kind == "opt" else f"[{label}...]")
        if not self.name:
            return f"usage: {PROG} [global flags] COMMAND [flags] [arguments...]\n"
        return f"usage: {self.prog} [flags]{''.join(' ' + a for a in args)}\n"

    def format_help(self) -> str:
        out = [self.usage(), "\n", self.help, "\n"]
        if self.commands:
            out.append("\ncommands:\n")
            out += [f"  {c.name:<12}{c.help}\n" for c in self.commands.values()]
        out.append("\nglobal flags:\n" if not self.name else "\nflags:\n")
        for o in self.opts:
            spell = ", ".join(o.names) + (f" {o.metavar}" if o.takes_value else "")
            default = f" (default {o.default!r})" if o.takes_value and o.default not in (None, []) else ""
            out.append(f"  {spell:<30}{o.help}{default}\n")
        return "".join(out)


class Parser:
    """runc's command line: global flags, a command, its flags and arguments."""

    def __init__(self, top: _Scope, commands: list[_Scope]) -> None:
        self.top = top
        self.commands = top.commands = {c.name: c for c in commands}

    def format_help(self) -> str:
        return self.top.format_help()

    def print_help(self, file: TextIO | None = None) -> None:
        (file or sys.stdout).write(self.format_help())

    def parse_args(self, argv: list[str] | None = None) -> Args:
        """Parse *argv* (default sys.argv[1:]); print help and exit 0 for
        -h/--help; raise UsageError for a command line we refuse."""
        argv = sys.argv[1:] if argv is None else list(argv)
        top = self.top
        values = top.initial()
        values["command"] = None
        i = 0
        while i < len(argv) and top.is_flag(argv[i]) and argv[i] != "--":
            i = top.take_flag(argv, i, values)
        if i == len(argv):
            return Args(values)
        cmd = self.commands.get(argv[i])
        if cmd is None:
            raise UsageError(f"unknown command {argv[i]!r} (commands: {', '.join(self.commands)})", top)
        values["command"] = cmd.name
        values.update(self._parse_command(cmd, argv, i + 1))
        return Args(values)

    @staticmethod
    def _parse_command(cmd: _Scope, argv: list[str], i: int) -> dict[str, Any]:
        values = cmd.initial()
        pos = cmd.positionals
        n = 0  # positionals filled
        dashdash = False
        while i < len(argv):
            tok = argv[i]
            if n < len(pos) and pos[n][1] == "rest":
                if n > 0:
                    # Everything after the id, flags included; a "--" right
                    # after the id only ends the flags (as with argparse).
                    if tok == "--" and not dashdash:
                        i += 1
                    values[pos[n][0]] = argv[i:]
                    n += 1
                    break
                if dashdash or tok == "--" or not cmd.is_flag(tok):
                    values[pos[n][0]] = argv[i:]
                    n += 1
                    break
            if not dashdash and tok == "--":
                dashdash = True
                i += 1
                continue
            if not dashdash and cmd.is_flag(tok):
                i = cmd.take_flag(argv, i, values)
                continue
            if n == len(pos):
                raise UsageError(f"unexpected argument {tok!r}", cmd)
            values[pos[n][0]] = tok
            n += 1
            i += 1
        missing = [name for name, kind in pos[n:] if kind == "one"]
        if missing:
            raise UsageError(f"missing argument: {' '.join(m.upper() for m in missing)}", cmd)
        return values


def build_parser() -> Parser:
    """The parser of xc-runtime's command line (runc's commands and flags)."""
    top = _Scope("", "xcontainers OCI runtime (runc-compatible)", [
        _Opt("--root", _STR, "directory of the containers' states (default /run/xc-runtime, "
             "rootless $XDG_RUNTIME_DIR/xc-runtime)", default=os.environ.get("XC_RUNTIME_ROOT"), metavar="DIR"),
        _Opt("--log", _STR, "also write errors to this file", metavar="FILE"),
        _Opt("--log-format", _STR, "format of the --log file", default="text", choices=("text", "json")),
        _Opt("--debug", help="write debug messages"),
        _Opt("--systemd-cgroup", help="accepted; cgroups are managed directly"),
        _Opt("--rootless", _STR, "rootless mode: true, false or auto (when not root)", default="auto",
             metavar="VALUE"),
        _Opt("--criu", _STR, "accepted; checkpoint/restore is not supported", metavar="PATH"),
        _Opt("-v --version", help="print the version and exit"),
    ])

    def create_flags() -> list[_Opt]:
        return [
            _Opt("-b --bundle", _STR, "the bundle directory", default=".", metavar="DIR"),
            _Opt("--pid-file", _STR, "write the container's pid to this file", metavar="FILE"),
            _Opt("--console-socket", _STR, "AF_UNIX socket that receives the pty master", metavar="PATH"),
            _Opt("--preserve-fds", _INT, "pass this many fds beyond stdio to the container", default=0,
                 metavar="N"),
            _Opt("--no-pivot", help="use chroot instead of pivot_root"),
            _Opt("--no-new-keyring", help="keep the caller's session keyring"),
        ]

    one = (("id", "one"),)
    fmt = _Opt("-f --format", _STR, "output format", default="table", choices=("table", "json"))
    commands = [
        _Scope("create", "create a container", create_flags(), one),
        _Scope("run", "create and start a container", [
            *create_flags(),
            _Opt("-d --detach", help="do not wait for the container to exit"),
            _Opt("--keep", help="do not delete the container after it exits"),
        ], one),
        _Scope("start", "start a created container", [], one),
        _Scope("state", "print the state of a container", [], one),
        _Scope("kill", "send a signal to a container's init", [
            _Opt("-a --all", help="signal every process of the container"),
        ], (("id", "one"), ("signal", "opt")), {"signal": "SIGTERM"}),
        _Scope("delete", "delete a container", [_Opt("-f --force", help="kill the container first")], one),
        _Scope("list", "list containers", [fmt, _Opt("-q --quiet", help="print the ids only")]),
        _Scope("exec", "run a process in a running container", [
            _Opt("-p --process", _STR, "the process as an OCI process.json", metavar="FILE"),
            _Opt("-t --tty", help="allocate a pseudo-terminal"),
            _Opt("-d --detach", help="do not wait for the process to exit"),
            _Opt("--pid-file", _STR, "write the process's pid to this file", metavar="FILE"),
            _Opt("-e --env", _LIST, "set an environment variable", default=[], metavar="NAME=VALUE"),
            _Opt("--cwd", _STR, "working directory in the container", metavar="DIR"),
            _Opt("-u --user", _STR, "user to run as", metavar="UID[:GID]"),
            _Opt("-g --additional-gids", _INT_LIST, "an additional group", metavar="GID"),
            _Opt("-c --cap", _LIST, "add a capability", default=[], metavar="CAP"),
            _Opt("--console-socket", _STR, "AF_UNIX socket that receives the pty master", metavar="PATH"),
            _Opt("--preserve-fds", _INT, "pass this many fds beyond stdio", default=0, metavar="N"),
            _Opt("--no-new-privs", help="set no_new_privs for the process"),
            _Opt("--apparmor", _STR, "not supported", metavar="PROFILE"),
            _Opt("--process-label", _STR, "not supported", metavar="LABEL"),
            _Opt("--cgroup", _STR, "not supported", metavar="PATH"),
            _Opt("--ignore-paused", help="accepted"),
        ], (("id", "one"), ("args", "rest"))),
        _Scope("ps", "list the processes of a container", [fmt], (("id", "one"), ("ps_args", "rest"))),
        _Scope("pause", "freeze every process of a container", [], one),
        _Scope("resume", "thaw a paused container", [], one),
        _Scope("spec", "write a default config.json", [
            _Opt("-b --bundle", _STR, "the bundle directory", default=".", metavar="DIR"),
            _Opt("--rootless", help="a config for an unprivileged user (as runc spec --rootless)"),
        ]),
        _Scope("features", "print what this runtime supports, as JSON", []),
        *(_Scope(name, "not supported by xc-runtime", [], (("rest", "rest"),))
          for name in ("checkpoint", "restore", "update", "events")),
    ]
    return Parser(top, commands)


def _is_number(tok: str) -> bool:
    """Whether *tok* is a negative number ("-5", "-.5", "-1.5"), which
    argparse takes for an argument, not a flag."""
    whole, dot, frac = tok[1:].partition(".")
    if dot:
        return (whole == "" or whole.isdecimal()) and frac.isdecimal()
    return whole.isdecimal()


# --- the commands -------------------------------------------------------------


def _print_json(obj: Any) -> None:
    import json

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


def _exec_process(rt: Runtime, a: Args) -> Process:
    from .spec import _parse_process

    if a.apparmor or a.process_label:
        _unsupported("--apparmor/--process-label")
    if a.cgroup:
        _unsupported("--cgroup")
    if a.process:
        import json

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


def _ps(rt: Runtime, a: Args) -> int:
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
    want: set[int] = set(pids)
    for line in lines[1:]:
        fields = line.split(None, col + 1)
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in want:
            sys.stdout.write(line + "\n")
    return 0


def dispatch(a: Args) -> int:
    """Run the parsed command; return the exit code."""
    if a.command == "spec":  # its own --rootless flag hides the global one
        return _dispatch(a)
    if a.rootless not in ("auto", *_TRUE, *_FALSE):
        raise XcError(f"--rootless {a.rootless!r}: must be true, false or auto")
    # (Rootless, moves into cgroups are rare: no primer for them.)
    if a.command not in ("create", "run", "exec") or (a.rootless == "auto" and os.geteuid() != 0):
        return _dispatch(a)
    # These move a process into a cgroup: start paying the kernel's price for
    # that now, while the rest of the runtime loads (see cgroups.prime_moves).
    from . import cgroups

    cgroups.prime_moves()
    try:
        return _dispatch(a)
    finally:
        cgroups.stop_priming()


def _dispatch(a: Args) -> int:
    from .container import CreateOptions, ExecOptions, Runtime
    from .points import mark

    mark("imports")
    c = a.command
    if c == "spec":
        from .defaults import write_spec

        write_spec(a.bundle, rootless=a.rootless)
        return 0
    rootless = os.geteuid() != 0 if a.rootless == "auto" else a.rootless in _TRUE
    root = a.root
    if not root:
        if os.geteuid() == 0:
            root = "/run/xc-runtime"
        else:
            from .rootless import runtime_dir

            root = runtime_dir("xc-runtime")
    rt = Runtime(root, rootless=rootless)
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
            import json

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
    if c == "features":
        from .defaults import features

        _print_json(features())
        return 0
    _unsupported(f"the {c!r} command")


def _configure_log(a: Args) -> None:
    """Set up --log/--debug.  The log module (and json with it) is imported
    only when there is something to set, or to reset after an earlier main()."""
    if a.log or a.debug or "xcontainers.log" in sys.modules:
        from . import log

        log.configure(a.log, a.log_format, a.debug)


def _error(msg: str) -> None:
    from . import log

    log.error(msg)


def main(argv: list[str] | None = None) -> NoReturn:
    """Run xc-runtime with *argv* (default sys.argv[1:]) and exit."""
    from .points import mark

    mark("interpreter")
    parser = build_parser()
    try:
        a = parser.parse_args(argv)
    except UsageError as e:
        sys.stderr.write(f"{e.scope.usage()}{e.scope.prog}: error: {e}\n"
                         f"Run '{e.scope.prog} --help' for usage.\n")
        sys.exit(2)
    _configure_log(a)
    if a.version:
        sys.stdout.write(f"xc-runtime version {__version__}\nspec: {OCI_VERSION}\n")
        sys.exit(0)
    if not a.command:
        parser.print_help()
        sys.exit(0)
    try:
        code = dispatch(a)
    except XcError as e:
        _error(str(e))
        code = 1
    except KeyboardInterrupt:
        code = 130
    except OSError as e:
        _error(f"{a.command}: {e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        code = 1
    mark("end")
    _exit(code)


def _exit(code: int) -> NoReturn:
    """Exit without the interpreter's teardown (freeing every object and
    module costs a short command several milliseconds): flush what Python
    buffers, then leave.  Nothing of the runtime's needs atexit or
    finalizers: files it writes are closed (and renamed into place) before
    this point."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 1
    os._exit(code)
