"""The host's own view of a container: which system calls really reached it.

Seccomp runs before the `raw_syscalls:sys_enter` tracepoint (kernel/entry:
ptrace, then seccomp, then the tracepoint), so a call the filter refuses
(ERRNO, TRAP, KILL) never shows up there: every sys_enter event of a
container process is a call the host kernel went on to execute.  That makes
the tracepoint an oracle for the exokernel interface that owes nothing to
the LibOS's own bookkeeping.

A trace lives in an ftrace instance of its own (/sys/kernel/tracing/
instances/<name>), so it disturbs no other user of tracefs.  It follows a
set of host pids and, with the `event-fork` option, every task they create
(threads included).  Besides sys_enter it records sched_process_fork
(parent -> child) and task_rename (a process naming itself with
PR_SET_NAME), which the guests use to say which attack a process runs;
both carry their names in the event, so nothing depends on the kernel's
cache of task names.  The ring buffer does not overwrite: when it fills,
the per-CPU `stats` say how many events were dropped, and :meth:`collect`
reports them rather than hand back a silently partial view.

A container's first process is the runtime's own code until it executes the
program (runc) or the X-LibOS (xc); the LibOS makes a few calls before its
filter is in force (its handlers, no_new_privs, the seccomp(2) call that
loads the filter).  :func:`container_calls` therefore cuts each trace at
the first process's filter (xc: its seccomp(SECCOMP_SET_MODE_FILTER)
event; runc: its execve of the program) and counts from there.

Used by tests/test_attacks.py and bench/trinity.py; needs root.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

TRACEFS = Path("/sys/kernel/tracing")
NR_SECCOMP = 317
NR_EXECVE = 59
SECCOMP_SET_MODE_FILTER = 1

# `   comm-pid   [cpu] flags   ts: event: payload`; the comm may hold spaces and dashes.
_LINE = re.compile(r"^\s*(?P<comm>.*?)-(?P<pid>\d+)\s+\[(?P<cpu>\d+)\]\s+\S+\s+(?P<ts>[\d.]+): (?P<event>\w+): (?P<rest>.*)$")
_ENTER = re.compile(r"NR (-?\d+) \(([0-9a-f]+), ([0-9a-f]+), ([0-9a-f]+), ([0-9a-f]+), ([0-9a-f]+), ([0-9a-f]+)\)")
_FORK = re.compile(r"comm=(.*) pid=(\d+) child_comm=(.*) child_pid=(\d+)")
_RENAME = re.compile(r"pid=(\d+) oldcomm=(.*) newcomm=(.*) oom_score_adj=")


def available() -> str | None:
    """None if tracing can be used here, else why not."""
    if os.geteuid() != 0:
        return "tracing the host's system calls needs root"
    try:
        mount_tracefs()
    except OSError as e:
        return f"tracefs cannot be mounted: {e}"
    if not (TRACEFS / "events/raw_syscalls/sys_enter").is_dir():
        return "the kernel has no raw_syscalls:sys_enter tracepoint (CONFIG_FTRACE_SYSCALLS)"
    return None


def mount_tracefs() -> None:
    if (TRACEFS / "instances").is_dir():
        return
    r = subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACEFS)], capture_output=True, text=True)
    if r.returncode != 0 and not (TRACEFS / "instances").is_dir():
        raise OSError(r.stderr.strip() or "mount -t tracefs failed")


@dataclass
class Event:
    ts: float
    pid: int
    cpu: int
    kind: str                  # "enter", "fork", "rename"
    nr: int = -1               # enter: the system call number
    args: tuple[int, ...] = ()
    child: int = 0             # fork: the child's pid
    name: str = ""             # rename: the new name; fork: the child's name


@dataclass
class Trace:
    events: list[Event]
    dropped: int               # events the ring buffer could not take (0: the view is complete)
    entries: int               # events the buffer held


class HostTrace:
    """An ftrace instance recording sys_enter, forks and renames of some pids and their descendants.

    with HostTrace("attacks-xyz") as t:
        t.follow([init_pid]); ...; trace = t.collect()
    """

    def __init__(self, name: str, buffer_kb: int = 65536, syscall_filter: str | None = None) -> None:
        mount_tracefs()
        self.dir = TRACEFS / "instances" / name
        self.buffer_kb = buffer_kb
        self.syscall_filter = syscall_filter

    def _w(self, rel: str, value: str) -> None:
        with open(self.dir / rel, "w") as f:
            f.write(value)

    def __enter__(self) -> "HostTrace":
        if self.dir.exists():
            self.dir.rmdir()
        self.dir.mkdir()
        try:
            self._w("tracing_on", "0")
            self._w("buffer_size_kb", str(self.buffer_kb))
            self._w("options/overwrite", "0")
            self._w("options/event-fork", "1")
            if self.syscall_filter:
                self._w("events/raw_syscalls/sys_enter/filter", self.syscall_filter)
            for ev in ("raw_syscalls/sys_enter", "sched/sched_process_fork", "task/task_rename"):
                self._w(f"events/{ev}/enable", "1")
        except BaseException:
            self.close()
            raise
        return self

    def follow(self, pids: Iterable[int]) -> None:
        """Start recording these host pids (and, from now on, whatever they create)."""
        self._w("set_event_pid", " ".join(str(p) for p in pids))
        self._w("tracing_on", "1")

    def stop(self) -> None:
        self._w("tracing_on", "0")

    def collect(self) -> Trace:
        self.stop()
        dropped = entries = 0
        for stats in (self.dir / "per_cpu").glob("cpu*/stats"):
            for line in stats.read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() in ("overrun", "dropped events"):
                    dropped += int(value.split()[0])
                elif key.strip() == "entries":
                    entries += int(value.split()[0])
        events = []
        with open(self.dir / "trace", errors="replace") as f:
            for line in f:
                ev = parse_line(line)
                if ev is not None:
                    events.append(ev)
        events.sort(key=lambda e: e.ts)
        return Trace(events, dropped, entries)

    def close(self) -> None:
        if not self.dir.exists():
            return
        try:
            self._w("tracing_on", "0")
            for ev in ("raw_syscalls/sys_enter", "sched/sched_process_fork", "task/task_rename"):
                self._w(f"events/{ev}/enable", "0")
        except OSError:
            pass
        for _ in range(50):
            try:
                self.dir.rmdir()
                return
            except OSError:
                import time

                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_line(line: str) -> Event | None:
    m = _LINE.match(line)
    if not m:
        return None
    ts, pid, cpu, kind, rest = float(m["ts"]), int(m["pid"]), int(m["cpu"]), m["event"], m["rest"]
    if kind == "sys_enter":
        e = _ENTER.match(rest)
        if not e:
            return None
        return Event(ts, pid, cpu, "enter", nr=int(e.group(1)), args=tuple(int(x, 16) for x in e.groups()[1:]))
    if kind == "sched_process_fork":
        f = _FORK.match(rest)
        return Event(ts, pid, cpu, "fork", child=int(f.group(4)), name=f.group(3)) if f else None
    if kind == "task_rename":
        r = _RENAME.match(rest)
        return Event(ts, int(r.group(1)), cpu, "rename", name=r.group(3)) if r else None
    return None


@dataclass
class ContainerCalls:
    """What a container's processes made the host run, after the first process's filter."""
    cut: float                                  # the timestamp counting starts after
    counts: Counter = field(default_factory=Counter)            # nr -> calls, all processes
    by_pid: dict[int, Counter] = field(default_factory=dict)    # pid -> (nr -> calls)
    parent: dict[int, int] = field(default_factory=dict)        # child pid -> parent pid
    names: dict[int, str] = field(default_factory=dict)         # pid -> the last name it gave itself
    events: list[Event] = field(default_factory=list)

    def numbers(self) -> set[int]:
        return set(self.counts)

    def group(self, pid: int) -> set[int]:
        """pid and every process it created, transitively."""
        out, todo = {pid}, [pid]
        children: dict[int, list[int]] = {}
        for c, p in self.parent.items():
            children.setdefault(p, []).append(c)
        while todo:
            for c in children.get(todo.pop(), []):
                if c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    def named(self, prefix: str) -> dict[str, set[int]]:
        """name -> the pids (with their descendants) of processes that renamed themselves prefix+name."""
        out: dict[str, set[int]] = {}
        for pid, name in self.names.items():
            if name.startswith(prefix):
                out.setdefault(name[len(prefix):], set()).update(self.group(pid))
        return out

    def calls_of(self, pids: set[int]) -> Counter:
        c: Counter = Counter()
        for p in pids:
            c.update(self.by_pid.get(p, {}))
        return c


def container_calls(trace: Trace, first_pid: int, cut: str = "seccomp") -> ContainerCalls:
    """The calls after *first_pid* entered its confinement.

    cut="seccomp": after its seccomp(SECCOMP_SET_MODE_FILTER) (the X-LibOS's
    filter; for an xc container without the LibOS or with an OCI profile, the
    runtime's); cut="exec": after its execve (runc: the program's start); the
    last such event of the first process before any other process appears.
    """
    cut_ts = None
    for e in trace.events:
        if e.kind == "fork" and e.pid == first_pid:
            break
        if e.kind != "enter" or e.pid != first_pid:
            continue
        if cut == "seccomp" and e.nr == NR_SECCOMP and e.args[0] == SECCOMP_SET_MODE_FILTER:
            cut_ts = e.ts
        elif cut == "exec" and e.nr == NR_EXECVE:
            cut_ts = e.ts
    if cut_ts is None:
        raise AssertionError(f"the trace has no {cut} event of the container's first process {first_pid}")
    out = ContainerCalls(cut_ts)
    for e in trace.events:
        if e.kind == "fork":
            out.parent[e.child] = e.pid
            out.names.setdefault(e.child, e.name)
        elif e.kind == "rename":
            out.names[e.pid] = e.name
        elif e.kind == "enter" and e.ts > cut_ts:
            out.counts[e.nr] += 1
            out.by_pid.setdefault(e.pid, Counter())[e.nr] += 1
            out.events.append(e)
    return out


_NAMES: dict[int, str] | None = None


def syscall_names() -> dict[int, str]:
    """x86-64 system call numbers -> names, from the kernel headers (asm/unistd_64.h)."""
    global _NAMES
    if _NAMES is None:
        _NAMES = {}
        for hdr in ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h"):
            if os.path.exists(hdr):
                for m in re.finditer(r"^#define __NR_(\w+) (\d+)$", Path(hdr).read_text(), re.M):
                    _NAMES[int(m.group(2))] = m.group(1)
                break
        # newer than Debian 12's headers, present on the kernels we run
        for nr, name in ((451, "cachestat"), (452, "fchmodat2"), (453, "map_shadow_stack"), (454, "futex_wake"),
                         (455, "futex_wait"), (456, "futex_requeue"), (457, "statmount"), (458, "listmount"),
                         (459, "lsm_get_self_attr"), (460, "lsm_set_self_attr"), (461, "lsm_list_modules"),
                         (462, "mseal"), (463, "setxattrat"), (464, "getxattrat"), (465, "listxattrat"),
                         (466, "removexattrat"), (467, "open_tree_attr")):
            _NAMES.setdefault(nr, name)
    return _NAMES


def name_of(nr: int) -> str:
    return syscall_names().get(nr, f"nr{nr}")


def names_of(nrs: Iterable[int]) -> str:
    return " ".join(sorted(name_of(n) for n in nrs)) or "-"

