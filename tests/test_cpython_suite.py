"""CPython's own tests, a fast subset, under runc and under xc-runtime on the X-LibOS.

Each module of MODULES runs as `/usr/bin/python3 -m test -v --timeout 300
MODULE` (Debian's libpython3.11-testsuite) in one container under runc (the
reference) and one under xc-runtime with the LibOS, on the same bundle
(bench/cpython_tests.py builds it: the host's /usr and /etc read-only, tmpfs
/tmp, no network namespace).  Every test must end the same way under both
(ok or expected failure / skipped / failed): in particular the set of
passing tests is the same, except the tests in KNOWN_DIFFERENCES, each with
its cause.  The list is strict: a known difference that is gone (the LibOS
was fixed) fails too, so that it leaves the list.

The full evaluation (twelve modules, three runtimes, a few minutes) is
`bench/cpython_tests.py`; its results are in docs/cpython-tests.md.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from conftest import ROOT, need_root

pytestmark = [pytest.mark.root, pytest.mark.peers]

_spec = importlib.util.spec_from_file_location("cpython_tests", ROOT / "bench" / "cpython_tests.py")
assert _spec and _spec.loader
ct = importlib.util.module_from_spec(_spec)
sys.modules["cpython_tests"] = ct
_spec.loader.exec_module(ct)

# About 25 s per runtime on this machine (test_selectors is most of it); the
# slow ones (test_signal, test_subprocess, test_socket, test_threading) are
# left to the bench.
MODULES = ["test_fcntl", "test_select", "test_selectors", "test_posix", "test_os", "test_time",
           "test_mmap", "test_pty"]

REFERENCE, LIBOS = "runc", "xc"

# The tests of MODULES whose outcome under the X-LibOS differs from runc's,
# and why (the bench's list, which covers every module; see
# docs/cpython-tests.md for the reproductions and the proposed fixes).
KNOWN_DIFFERENCES: dict[str, str] = {
    tid: cause for tid, cause in ct.KNOWN_DIFFERENCES.items() if tid.split(".")[1] in MODULES
}

RUN_TIMEOUT = 600  # one module in one container


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory):
    need_root()
    if not os.path.isfile(os.path.join(ct.TESTSUITE, "test_os.py")):
        pytest.skip(f"{ct.TESTSUITE_PACKAGE} is not installed ({ct.TESTSUITE} is missing; "
                    "make setup installs it)")
    if not os.path.exists(ct.PYTHON):
        pytest.skip(f"{ct.PYTHON} (Debian's python3.11) is missing")
    if ct.runtime_binary("runc") is None:
        pytest.skip("runc is not installed (make setup installs Debian's runc)")
    assert ct.runtime_binary("xc-runtime"), "xc-runtime is not installed: run make setup"
    work = tmp_path_factory.mktemp("cpython-suite")
    return ct.Runner(str(work), str(work / "logs"))


def _class(outcome: str) -> str:
    if outcome in ct.PASSING:
        return "pass"
    if outcome in ct.FAILING:
        return "fail"
    return outcome  # skipped, missing


def test_known_differences_name_real_tests():
    """Every known difference is a test of one of the modules, with a cause."""
    for tid, cause in ct.KNOWN_DIFFERENCES.items():
        parts = tid.split(".")
        assert parts[0] == "test" and parts[1] in ct.MODULES and len(parts) == 4, tid
        assert parts[3].startswith("test"), tid
        assert len(cause) > 20, f"{tid}: give the cause"


def test_parser_reads_verbose_output():
    text = "\n".join([
        "test_a (test.test_x.C.test_a) ... ok",
        "test_b (test.test_x.C.test_b)",
        "The docstring's first line. ... FAIL",
        "test_c (test.test_x.C.test_c) ... printed by the test",
        "more output",
        "skipped 'no reason'",
        "test_d (test.test_x.C.test_d) ... ",
        "  test_d (test.test_x.C.test_d) (i=1) ... ERROR",
        "test_e (test.test_x.C.test_e) ... expected failure",
        "test_f (test.test_x.C.test_f) ... ",
        "=" * 70,
        "ERROR: setUpClass (test.test_x.D)",
        "-" * 70,
        "Ran 6 tests in 0.1s",
    ])
    got = ct.parse_output(text)
    assert got == {
        "test.test_x.C.test_a": "ok", "test.test_x.C.test_b": "FAIL", "test.test_x.C.test_c": "skipped",
        "test.test_x.C.test_d": "ERROR", "test.test_x.C.test_e": "xfail", "test.test_x.C.test_f": "missing",
        "setUpClass (test.test_x.D)": "ERROR",
    }
    assert ct.ran_count(text) == 6


@pytest.mark.parametrize("module", MODULES)
def test_same_outcomes_as_runc(runner, module: str) -> None:
    ref = runner.run_module(module, REFERENCE, timeout=RUN_TIMEOUT)
    got = runner.run_module(module, LIBOS, timeout=RUN_TIMEOUT)
    for r in (ref, got):
        c = ct.counts(r.outcomes)
        assert r.ran and c["total"] == r.ran and not c["missing"], (
            f"{r.runtime}: {module} did not run to the end ({r.result}, rc {r.rc}; "
            f"{c['total']} tests parsed, {c['missing']} without an outcome, unittest ran {r.ran}); log: {r.log}")
    assert ref.rc == 0 and ref.result == "SUCCESS", (
        f"{module} fails under runc itself ({ref.result}): not a LibOS difference; log: {ref.log}")

    ids = sorted(set(ref.outcomes) | set(got.outcomes))
    differ = {t for t in ids
              if _class(ref.outcomes.get(t, ct.MISSING)) != _class(got.outcomes.get(t, ct.MISSING))}
    passing_ref = {t for t, s in ref.outcomes.items() if s in ct.PASSING}
    passing_got = {t for t, s in got.outcomes.items() if s in ct.PASSING}
    known = {t for t in KNOWN_DIFFERENCES if t.split(".")[1] == module}

    with open(got.log, encoding="utf-8", errors="replace") as f:
        got_text = f.read()
    unexpected = sorted(differ - known)
    msgs = []
    for t in unexpected:
        msgs.append(f"{t}: runc={ref.outcomes.get(t, ct.MISSING)} xc={got.outcomes.get(t, ct.MISSING)}\n"
                    + ct.failure_text(got_text, t))
    assert not unexpected and (passing_ref ^ passing_got) <= known, (
        f"{len(unexpected)} test(s) of {module} end differently under the X-LibOS than under runc "
        f"(logs: {ref.log}, {got.log}):\n" + "\n".join(msgs))
    gone = sorted(known - differ)
    assert not gone, ("known differences that no longer differ (the LibOS was fixed?): remove them "
                      "from KNOWN_DIFFERENCES in bench/cpython_tests.py: " + ", ".join(gone))
