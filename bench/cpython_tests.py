#!/usr/bin/env python3
"""CPython's own test suite in containers: runc vs xc-runtime (with and without the X-LibOS).

Runs `/usr/bin/python3 -m test -v --timeout 300 MODULE` (Debian's
libpython3.11-testsuite) for each module, one container per (module,
runtime), all on the same bundle:

  - the rootfs holds only mount points: the host's /usr and /etc are
    bind-mounted read-only, /bin /lib /lib64 /sbin are the host's symlinks
    into /usr (or read-only bind mounts on a host without merged /usr);
  - tmpfs on /tmp (the cwd and HOME), /run and /var/tmp;
  - no network namespace (the host's loopback serves the socket tests);
  - process.terminal false, stdin /dev/null, RLIMIT_NOFILE 4096;
  - capabilities: runc's default spec (AUDIT_WRITE, KILL, NET_BIND_SERVICE)
    plus the rest of Docker's default set, which the tests expect of root
    (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, MKNOD, NET_RAW, SETGID, SETUID,
    SETFCAP, SETPCAP, SYS_CHROOT).

Runtimes (names as in tests/test_syscalls.py):
  runc         Debian's runc: the reference
  xc-nolibos   xc-runtime with the annotation org.xcontainers.libos=off
  xc           xc-runtime on the X-LibOS (annotation on)

Each run's verbose output is parsed into per-test outcomes (ok, FAIL,
ERROR, skipped, expected failure, unexpected success; a test that never
reported is "missing") and every test whose outcome differs from the first
runtime's (runc) is listed, with its cause when KNOWN_DIFFERENCES has one.
--confirm re-runs each differing test alone under every runtime, to tell a
reproducible difference from a flaky one.

    bench/cpython_tests.py [--modules test_os,test_select ...] [--runtimes runc,xc-nolibos,xc]
                           [--json FILE] [--logs DIR] [--confirm]

Exit status: 0 when every difference has a known cause, 1 when one has
not, 2 when it cannot run.  Needs root, runc, xc-runtime and
libpython3.11-testsuite.  This is an
evaluation, not a test: tests/test_cpython_suite.py is the pytest that runs a
fast subset of it.  Results: docs/cpython-tests.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))

PYTHON = "/usr/bin/python3"
TESTSUITE = "/usr/lib/python3.11/test"
TESTSUITE_PACKAGE = "libpython3.11-testsuite"

MODULES = [
    "test_os", "test_subprocess", "test_signal", "test_threading", "test_socket", "test_select",
    "test_selectors", "test_mmap", "test_posix", "test_time", "test_fcntl", "test_pty",
]

LIBOS_ANNOTATION = "org.xcontainers.libos"

# name -> (which binary, annotations)
RUNTIMES: dict[str, tuple[str, dict[str, str]]] = {
    "runc": ("runc", {}),
    "xc-nolibos": ("xc-runtime", {LIBOS_ANNOTATION: "off"}),
    "xc": ("xc-runtime", {LIBOS_ANNOTATION: "on"}),
}

TEST_TIMEOUT = 300      # regrtest --timeout: one test longer than this dumps its traceback and exits
RUN_TIMEOUT = 3600      # one container (one module), start to exit

CAPS = sorted([
    # runc's default spec
    "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE",
    # what the tests expect of root (Docker's default set)
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_SYS_CHROOT",
])

# Tests whose outcome on the X-LibOS differs from runc's, each with its cause.
# Empty since 2026-11-28: the 15 differences first found (the LibOS's own fds
# visible to fstat and friends, fexecve of a close-on-exec fd, the sched_*
# setters, fadvise64, clock_settime, sethostname, pidfd_open and
# pidfd_send_signal) were fixed in the LibOS; docs/cpython-tests.md keeps the
# record.  A new difference must be added here with its cause.
KNOWN_DIFFERENCES: dict[str, str] = {}

STATUS_RE = re.compile(r"(ok|FAIL|ERROR|skipped .*|expected failure|unexpected success)$")
DESC_RE = re.compile(r"^(?P<sub>  )?(?P<name>\w+) \((?P<id>[A-Za-z_][\w.]*)\)(?P<extra>.*)$")
SUMMARY_RE = re.compile(r"^(?P<kind>FAIL|ERROR|UNEXPECTED SUCCESS): (?P<name>\w+) \((?P<id>[A-Za-z_][\w.]*)\)")
RAN_RE = re.compile(r"^Ran (\d+) tests? in ")
RESULT_RE = re.compile(r"^(?:== )?Tests? result: (.+?)(?: ==)?$")

PASS, FAIL, ERROR, SKIP, XFAIL, XPASS, MISSING = "ok", "FAIL", "ERROR", "skipped", "xfail", "xpass", "missing"
PASSING = {PASS, XFAIL}
FAILING = {FAIL, ERROR, XPASS}


# --------------------------------------------------------------------------- parsing

def _status(s: str) -> str:
    s = s.strip()
    if s == "ok":
        return PASS
    if s.startswith("skipped"):
        return SKIP
    if s == "expected failure":
        return XFAIL
    if s == "unexpected success":
        return XPASS
    return s  # FAIL, ERROR


_RANK = {MISSING: 0, PASS: 1, SKIP: 1, XFAIL: 1, XPASS: 2, FAIL: 3, ERROR: 4}


def parse_output(text: str) -> dict[str, str]:
    """{unittest id: outcome} from the output of `python3 -m test -v`.

    A test prints `name (id) ... STATUS`, or `name (id)\\nfirst docstring line
    ... STATUS` when it has a docstring; output it prints itself can stand
    between ` ... ` and STATUS.  A failing subtest prints an indented line of
    its own (`  name (id) (params) ... FAIL`) and makes the test fail; the
    FAIL:/ERROR: headers of the closing summary are read too (a failure in
    setUpClass or a module that cannot be imported shows only there).
    """
    out: dict[str, str] = {}

    def record(tid: str, status: str, sub: bool) -> None:
        st = _status(status)
        if sub and st not in FAILING:
            return  # a skipped subtest: the test itself reports
        prev = out.get(tid)
        if prev is None or _RANK[st] > _RANK.get(prev, 0) or (not sub and prev == MISSING):
            out[tid] = st

    lines = text.splitlines()
    pending: tuple[str, bool] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = DESC_RE.match(line)
        if m and (" ... " in line or line.endswith(" ...")
                  or (i + 1 < len(lines) and " ... " in lines[i + 1] and not DESC_RE.match(lines[i + 1]))):
            tid, sub = m.group("id"), bool(m.group("sub"))
            if " ... " in line or line.endswith(" ..."):
                after = line.split(" ... ", 1)[1] if " ... " in line else ""
            else:  # docstring line
                i += 1
                after = lines[i].split(" ... ", 1)[1]
            if not sub:
                out.setdefault(tid, MISSING)
            sm = STATUS_RE.search(after)
            if sm and (sm.start() == 0 or after[sm.start() - 1] in " \t"):
                record(tid, sm.group(1), sub)
                pending = None
            else:
                pending = (tid, sub)
            i += 1
            continue
        if pending is not None:
            s = line.strip()
            if STATUS_RE.fullmatch(s):
                record(pending[0], s, pending[1])
                pending = None
        sm = SUMMARY_RE.match(line)
        if sm:
            kind = {"UNEXPECTED SUCCESS": XPASS}.get(sm.group("kind"), sm.group("kind"))
            if sm.group("name") in ("setUpClass", "tearDownClass", "setUpModule", "tearDownModule"):
                out[f"{sm.group('name')} ({sm.group('id')})"] = kind
            elif _RANK[kind] > _RANK.get(out.get(sm.group("id"), MISSING), 0):
                out[sm.group("id")] = kind
        i += 1
    return out


def failure_text(text: str, tid: str) -> str:
    """The FAIL:/ERROR: section of the closing summary about test *tid* (empty if none)."""
    out, keep = [], False
    for line in text.splitlines():
        m = SUMMARY_RE.match(line)
        if m or line.startswith(("=" * 70, "Ran ")):
            keep = bool(m and m.group("id") == tid)
            if line.startswith("=" * 70):
                continue
        if keep:
            out.append(line)
    return "\n".join(out).strip()


def module_result(text: str, rc: int | None) -> str:
    """regrtest's verdict for the run (SUCCESS, FAILURE, ...), or what stopped it."""
    if rc is None:
        return "TIMEOUT (runner)"
    res = None
    for line in text.splitlines():
        m = RESULT_RE.match(line.strip())
        if m:
            res = m.group(1)
    if res is None:
        return f"no result (rc {rc})"
    return res


def ran_count(text: str) -> int | None:
    """unittest's own count of the tests it ran ("Ran N tests in ..."), summed over its runs."""
    ns = [int(m.group(1)) for m in map(RAN_RE.match, text.splitlines()) if m]
    return sum(ns) if ns else None


def counts(outcomes: dict[str, str]) -> dict[str, int]:
    c = {"pass": 0, "fail": 0, "skip": 0, "missing": 0}
    for st in outcomes.values():
        if st in PASSING:
            c["pass"] += 1
        elif st in FAILING:
            c["fail"] += 1
        elif st == SKIP:
            c["skip"] += 1
        else:
            c["missing"] += 1
    c["total"] = len(outcomes)
    return c


# --------------------------------------------------------------------------- containers

def runtime_binary(kind: str) -> str | None:
    if kind == "runc":
        return shutil.which("runc")
    own = os.path.join(ROOT, "src", "xcontainers", "xc-runtime")  # this tree's native entry point
    if os.access(own, os.X_OK):
        return own
    venv = os.path.join(ROOT, ".venv", "bin", "xc-runtime")  # else the tree's venv, as the tests pick it
    return venv if os.path.exists(venv) else shutil.which("xc-runtime")


def missing_prerequisites(runtimes: list[str]) -> list[str]:
    """Why this cannot run here (empty when it can)."""
    why = []
    if os.geteuid() != 0:
        why.append("needs root (containers use namespaces, mounts and cgroups)")
    if not os.path.exists(PYTHON):
        why.append(f"{PYTHON} is missing")
    if not os.path.isfile(os.path.join(TESTSUITE, "test_os.py")):
        why.append(f"{TESTSUITE} is missing: apt-get install {TESTSUITE_PACKAGE}")
    for rt in runtimes:
        if rt not in RUNTIMES:
            why.append(f"unknown runtime {rt!r} (known: {', '.join(RUNTIMES)})")
        elif runtime_binary(RUNTIMES[rt][0]) is None:
            why.append(f"{RUNTIMES[rt][0]} is not installed")
    return why


def base_spec() -> dict[str, Any]:
    """runc's default spec (xcontainers.defaults.default_spec) for the test runs."""
    sys.path.insert(0, os.path.join(ROOT, "src"))
    from xcontainers.defaults import default_spec

    spec = default_spec([PYTHON], terminal=False, hostname="cpython-tests")
    proc = spec["process"]
    proc["cwd"] = "/tmp"
    proc["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                   "TERM=xterm", "HOME=/tmp"]
    proc["capabilities"] = {k: list(CAPS) for k in ("bounding", "effective", "permitted", "ambient")}
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}]
    # No network namespace: a new one has lo down; the host's loopback serves the socket tests.
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
    return spec


def make_bundle(path: str) -> str:
    """The bundle every run shares: a rootfs of mount points and symlinks."""
    rootfs = os.path.join(path, "rootfs")
    os.makedirs(rootfs, exist_ok=True)
    spec = base_spec()
    for d in ("proc", "sys", "dev", "tmp", "run", "var/tmp"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    for d in ("usr", "etc", "bin", "sbin", "lib", "lib64"):
        host = "/" + d
        if not os.path.lexists(host):
            continue
        inside = os.path.join(rootfs, d)
        if os.path.islink(host):  # merged /usr: /bin -> usr/bin
            if not os.path.lexists(inside):
                os.symlink(os.readlink(host), inside)
            continue
        os.makedirs(inside, exist_ok=True)
        spec["mounts"].append({"destination": host, "type": "bind", "source": host,
                               "options": ["rbind", "ro", "nosuid", "nodev"]})
    for d in ("/tmp", "/run", "/var/tmp"):
        spec["mounts"].append({"destination": d, "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=1777"]})
    with open(os.path.join(path, "base.json"), "w") as f:
        json.dump(spec, f, indent=1)
    return path


def write_config(bundle: str, args: list[str], annotations: dict[str, str]) -> None:
    with open(os.path.join(bundle, "base.json")) as f:
        spec = json.load(f)
    spec["process"]["args"] = args
    if annotations:
        spec.setdefault("annotations", {}).update(annotations)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(spec, f, indent=1)


@dataclass
class Run:
    module: str
    runtime: str
    rc: int | None
    seconds: float
    result: str
    outcomes: dict[str, str] = field(default_factory=dict)
    log: str = ""
    ran: int | None = None  # unittest's "Ran N tests": the parsed outcomes should number as many


class Runner:
    """Runs commands in containers on one bundle, one at a time."""

    def __init__(self, workdir: str, logdir: str) -> None:
        self.workdir = workdir
        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        self.bundle = make_bundle(os.path.join(workdir, "bundle"))
        self.roots = {}
        for kind in ("runc", "xc-runtime"):
            r = os.path.join(workdir, f"state-{kind}")
            os.makedirs(r, exist_ok=True)
            os.chmod(r, 0o711)
            self.roots[kind] = r

    def run(self, runtime: str, args: list[str], label: str, timeout: float = RUN_TIMEOUT) -> tuple[int | None, float, str, str]:
        """(rc or None on timeout, seconds, stdout, log path prefix)."""
        kind, annotations = RUNTIMES[runtime]
        binary = runtime_binary(kind)
        assert binary, kind
        root = self.roots[kind]
        write_config(self.bundle, args, annotations)
        cid = f"cpy-{runtime}-{uuid.uuid4().hex[:8]}"
        prefix = os.path.join(self.logdir, f"{label}.{runtime}")
        t0 = time.monotonic()
        rc: int | None
        with open(prefix + ".out", "wb") as out, open(prefix + ".err", "wb") as err:
            p = subprocess.Popen([binary, "--root", root, "run", "--bundle", self.bundle, cid],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                rc = None
                subprocess.run([binary, "--root", root, "kill", cid, "KILL"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            finally:
                subprocess.run([binary, "--root", root, "delete", "--force", cid],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        secs = time.monotonic() - t0
        with open(prefix + ".out", encoding="utf-8", errors="replace") as f:
            text = f.read()
        return rc, secs, text, prefix

    def run_module(self, module: str, runtime: str, match: list[str] | None = None,
                   label: str | None = None, test_timeout: int = TEST_TIMEOUT,
                   timeout: float = RUN_TIMEOUT) -> Run:
        """`python3 -m test -v --timeout T [-m PATTERN...] MODULE` in a container, parsed."""
        args = [PYTHON, "-m", "test", "-v", "--timeout", str(test_timeout)]
        for m in match or []:
            args += ["-m", m]
        args.append(module)
        rc, secs, text, prefix = self.run(runtime, args, label or module, timeout=timeout)
        return Run(module, runtime, rc, round(secs, 1), module_result(text, rc), parse_output(text),
                   prefix + ".out", ran_count(text))


# --------------------------------------------------------------------------- comparison

def differences(runs: dict[str, dict[str, Run]], ref: str) -> list[dict[str, Any]]:
    """Tests whose outcome differs from the reference runtime's, in any other runtime."""
    diffs = []
    for module, by_rt in runs.items():
        if ref not in by_rt:
            continue
        ids = sorted(set().union(*(r.outcomes for r in by_rt.values())))
        for tid in ids:
            got = {rt: r.outcomes.get(tid, MISSING) for rt, r in by_rt.items()}
            base = got[ref]
            if any(_same_class(v) != _same_class(base) for v in got.values()):
                # a known cause is the LibOS's: only when the LibOS alone differs
                libos_only = all(_same_class(v) == _same_class(base) for rt, v in got.items() if rt != "xc")
                diffs.append({"module": module, "test": tid, "outcomes": got,
                              "known": KNOWN_DIFFERENCES.get(tid) if libos_only else None})
    return diffs


def _same_class(st: str) -> str:
    """Outcomes compared: ok and expected failure both pass."""
    return PASS if st in PASSING else st


def confirm(runner: Runner, diffs: list[dict[str, Any]], runtimes: list[str]) -> None:
    """Re-run each differing test alone under every runtime; mark it reproducible or flaky."""
    for d in diffs:
        tid = d["test"]
        if tid.startswith(("setUpClass", "tearDownClass", "setUpModule", "tearDownModule")):
            continue
        again = {}
        for rt in runtimes:
            r = runner.run_module(d["module"], rt, match=[tid], label=f"confirm.{tid}")
            again[rt] = r.outcomes.get(tid, MISSING)
        d["alone"] = again
        d["reproducible"] = all(_same_class(again[rt]) == _same_class(d["outcomes"][rt]) for rt in runtimes)


# --------------------------------------------------------------------------- report

def report(runs: dict[str, dict[str, Run]], diffs: list[dict[str, Any]], runtimes: list[str]) -> str:
    """The side-by-side counts, each run's verdict, and the differing tests."""
    lines = []
    w = max([len(m) for m in runs] + [6])
    cw = 25  # "pass fail skip  time" per runtime
    lines.append(f"{'':<{w}}  " + "  ".join(f"{rt:^{cw}}" for rt in runtimes))
    lines.append(f"{'module':<{w}}  " + "  ".join(f"{'pass':>5} {'fail':>4} {'skip':>4} {'time':>7} " for _ in runtimes))
    tot = {rt: {"pass": 0, "fail": 0, "skip": 0, "missing": 0, "total": 0, "seconds": 0.0} for rt in runtimes}
    notes = []
    for module, by_rt in runs.items():
        cells = []
        for rt in runtimes:
            r = by_rt.get(rt)
            if r is None:
                cells.append(f"{'-':^{cw}}")
                continue
            c = counts(r.outcomes)
            for k in ("pass", "fail", "skip", "missing", "total"):
                tot[rt][k] += c[k]
            tot[rt]["seconds"] += r.seconds
            flag = " "
            if c["missing"] or (r.ran is not None and r.ran != c["total"]) or r.ran is None:
                flag = "!"
                notes.append(f"! {module} under {rt}: {c['total']} tests parsed, unittest ran {r.ran}, "
                             f"{c['missing']} without an outcome ({r.result})")
            cells.append(f"{c['pass']:>5} {c['fail']:>4} {c['skip']:>4} {r.seconds:>6.1f}s{flag}")
        lines.append(f"{module:<{w}}  " + "  ".join(cells))
    lines.append(f"{'total':<{w}}  " + "  ".join(
        f"{tot[rt]['pass']:>5} {tot[rt]['fail']:>4} {tot[rt]['skip']:>4} {tot[rt]['seconds']:>6.0f}s " for rt in runtimes))
    lines.extend(notes)
    lines.append("")
    for module, by_rt in runs.items():
        res = ", ".join(f"{rt}: {by_rt[rt].result} (rc {by_rt[rt].rc})" for rt in runtimes if rt in by_rt)
        lines.append(f"{module}: {res}")
    lines.append("")
    lines.append(f"{len(diffs)} test(s) differ from {runtimes[0]}:")
    for d in diffs:
        o = "  ".join(f"{rt}={d['outcomes'].get(rt, '-')}" for rt in runtimes)
        extra = ""
        if "reproducible" in d:
            extra = " [reproduced alone]" if d["reproducible"] else \
                " [alone: " + " ".join(f"{k}={v}" for k, v in d["alone"].items()) + "]"
        lines.append(f"  {d['test']}: {o}{extra}")
        lines.append(f"      cause: {d['known'] or 'unknown (not in KNOWN_DIFFERENCES)'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modules", default=",".join(MODULES),
                    help="comma-separated test modules (default: %(default)s)")
    ap.add_argument("--runtimes", default=",".join(RUNTIMES),
                    help="comma-separated; the first is the reference (default: %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="write runs, outcomes and differences as JSON")
    ap.add_argument("--logs", metavar="DIR", help="keep each run's stdout/stderr here (default: a temp dir)")
    ap.add_argument("--confirm", action="store_true", help="re-run each differing test alone under every runtime")
    ap.add_argument("--test-timeout", type=int, default=TEST_TIMEOUT, help="regrtest --timeout (s)")
    args = ap.parse_args(argv)
    modules = [m for m in args.modules.split(",") if m]
    runtimes = [r for r in args.runtimes.split(",") if r]
    why = missing_prerequisites(runtimes)
    if why:
        print("cannot run: " + "; ".join(why), file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    work = tempfile.mkdtemp(prefix="cpython-tests-")
    logdir = args.logs or os.path.join(work, "logs")
    runner = Runner(work, logdir)
    runs: dict[str, dict[str, Run]] = {}
    try:
        for module in modules:
            runs[module] = {}
            for rt in runtimes:
                r = runner.run_module(module, rt, test_timeout=args.test_timeout)
                runs[module][rt] = r
                c = counts(r.outcomes)
                print(f"{module:<16} {rt:<11} {r.result:<22} pass {c['pass']:>4} fail {c['fail']:>3} "
                      f"skip {c['skip']:>3} {r.seconds:>7.1f}s", flush=True)
        diffs = differences(runs, runtimes[0])
        if args.confirm and diffs:
            confirm(runner, diffs, runtimes)
    finally:
        if args.logs:
            shutil.rmtree(work, ignore_errors=True)
        else:  # keep the logs only
            print(f"logs: {logdir}", file=sys.stderr)
            for d in os.listdir(work):
                if d != "logs":
                    shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    print()
    print(report(runs, diffs, runtimes))
    if args.json:
        doc = {
            "date": started.isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.argv[0], ROOT) if sys.argv else "bench/cpython_tests.py",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "python": subprocess.run([PYTHON, "-c", "import sys; print(sys.version.split()[0])"],
                                     capture_output=True, text=True).stdout.strip(),
            "kernel": os.uname().release,
            "runtimes": runtimes,
            "runs": {m: {rt: {**asdict(r), "counts": counts(r.outcomes)} for rt, r in by.items()}
                     for m, by in runs.items()},
            "differences": diffs,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 1 if any(not d["known"] for d in diffs) else 0


if __name__ == "__main__":
    sys.exit(main())
