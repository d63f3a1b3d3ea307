"""The benchmark harness itself (`xc bench`): statistics on known inputs, a
missing runtime shown as missing, a failing one as failed (never as a number),
and a quick run whose report is well formed.  Asserts nothing about how fast
any runtime is."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from xcontainers.benchharness import report, stats
from xcontainers.benchharness.experiments import (FORK_METRICS, OPS, SPAWN_PHASES, Ctx, parse_redis_csv,
                                                  parse_syscall_result, parse_wrk, spawn)
from xcontainers.benchharness.runtimes import Runtime, discover

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- statistics -----------------------------------------------------------------------


def test_median_min_max_percentile():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([7]) == 7
    assert stats.min_max([5, -1, 3]) == (-1, 5)
    assert stats.percentile([1, 2, 3, 4, 5], 50) == 3
    assert stats.percentile([1, 2, 3, 4, 5], 0) == 1
    assert stats.percentile([1, 2, 3, 4, 5], 100) == 5
    assert stats.percentile([10, 20], 25) == pytest.approx(12.5)
    with pytest.raises(ValueError):
        stats.median([])
    with pytest.raises(ValueError):
        stats.min_max([])


def test_ratio_and_cells():
    assert stats.ratio(30, 10) == 3
    assert stats.ratio(None, 10) is None
    assert stats.ratio(5, None) is None
    assert stats.ratio(5, 0) is None
    cells = {"runc": stats.summarize([10, 30, 20]), "xc": stats.summarize([45, 15, 30, 60]),
             "crun": stats.failed("boom"), "runsc": stats.missing("not installed")}
    stats.add_ratios(cells)
    assert cells["runc"]["median"] == 20 and cells["runc"]["ratio_to_runc"] == 1
    assert (cells["xc"]["min"], cells["xc"]["max"], cells["xc"]["n"]) == (15, 60, 4)
    assert cells["xc"]["median"] == 37.5 and cells["xc"]["ratio_to_runc"] == pytest.approx(1.875)
    for name in ("crun", "runsc"):  # no number on a failed or missing cell
        assert not {"median", "min", "max", "ratio_to_runc"} & set(cells[name])
    assert stats.summarize([])["status"] == "failed"
    # no runc: ratios are None, never a made-up number
    only = stats.add_ratios({"xc": stats.summarize([1.0])})
    assert only["xc"]["ratio_to_runc"] is None


def test_parsers():
    wrk = """Running 2s test @ http://127.0.0.1:1/index.html
  Latency Distribution
     50%  312.00us
     75%  400.00us
     90%  1.20ms
     99%    2.50ms
  4000 requests in 2.00s, 1.00MB read
Requests/sec:   2000.50
Transfer/sec:    512.00KB
"""
    assert parse_wrk(wrk) == {"req_s": 2000.5, "p50_ms": pytest.approx(0.312), "p99_ms": 2.5}
    csv = ('"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",'
           '"max_latency_ms"\n"SET","50000.00","0.300","0.100","0.250","0.500","0.900","3.000"\n')
    assert parse_redis_csv(csv) == {"SET": {"req_s": 50000.0, "p50_ms": 0.25, "p99_ms": 0.9}}
    out = ('noise {"op":"fork","n":9,"ns_per_op":1.5}\n'
           '{"op":"fork","n":10,"ns_per_op":98000.0,"minflt_child":7.0,"fdsize":64}\ntrailing\n')
    assert parse_syscall_result(out, "fork", 10) == {"op": "fork", "n": 10, "ns_per_op": 98000.0,
                                                     "minflt_child": 7.0, "fdsize": 64}
    assert parse_syscall_result(out, "fork", 11) is None


# --- missing and failing runtimes ------------------------------------------------------


def test_missing_runtime_is_reported_missing(tmp_path, monkeypatch):
    from xcontainers.benchharness import runtimes

    monkeypatch.setattr(runtimes, "PATH", str(tmp_path))  # nothing is installed there
    rts = discover(["runc", "runsc"], str(tmp_path))
    for name in ("runc", "runsc"):
        assert rts[name].status == "missing" and "not installed" in rts[name].reason
    with pytest.raises(ValueError):
        discover(["no-such-runtime"], str(tmp_path))


def _need_root_busybox():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed (make setup installs it)")


def test_failing_and_missing_runtimes_in_an_experiment(tmp_path):
    """A runtime whose every run fails is 'failed' with its reason; one not installed is 'missing'."""
    _need_root_busybox()
    broken = Runtime("runc", "oci", "/bin/false", version="broken", root=str(tmp_path / "state"))
    gone = Runtime("crun", "oci", status="missing", reason="not installed: crun")
    ctx = Ctx(top=str(tmp_path), quick=True, rts={"runc": broken, "crun": gone}, reps=1, log=lambda m: None)
    e = spawn(ctx)
    cells = e["metrics"][0]["cells"]
    assert cells["runc"]["status"] == "failed" and "exit status 1" in cells["runc"]["reason"]
    assert cells["crun"] == {"status": "missing", "reason": "not installed: crun"}
    for c in cells.values():
        assert "median" not in c
    res = {"command": "test", "date": "d", "duration_s": 1.0, "quick": True,
           "machine": {"cpu": "c", "nproc": 1, "mem_total_mb": 1, "kernel": "k",
                       "loadavg_start": [0, 0, 0], "loadavg_end": [0, 0, 0]},
           "runtimes": {"runc": broken.describe(), "crun": gone.describe()}, "experiments": {"spawn": e}}
    md = report.markdown(res, {})
    assert "| /bin/true | ms | failed | missing |" in md
    assert "/bin/true / runc failed: " in md and "- crun: not installed: crun" in md


# --- a real quick run -------------------------------------------------------------------------


# The metric names each quick experiment must report (the full run adds memcached and larger N).
QUICK_METRICS = {
    "syscalls": OPS,
    "fork": [name for specs in FORK_METRICS.values() for _key, name, _unit in specs],
    "spawn": ["/bin/true"] + [f"phase: {label}" for _, label, _ in SPAWN_PHASES],
    "apps": ["nginx req/s", "nginx p50", "nginx p99"]
            + [f"redis {op} {k}" for op in ("SET", "GET") for k in ("req/s", "p50", "p99")],
    "memory": ["idle PSS", "N=10 PSS per container", "N=10 MemAvailable drop per container"],
    "scalability": [f"N={n} {label}" for label in ("total req/s", "total PSS", "start time") for n in (1, 10)],
    "abom": [f"{app}: {what}" for app in ("nginx (wrk)", "redis (redis-benchmark)", "python3 script",
                                          "busybox sh script", "static Go program")
             for what in ("patched share", "answered in the LibOS", "sites patched")],
}


def test_quick_run_report_is_well_formed(tmp_path):
    """What CI runs (`make test`): the whole `xc bench --quick --runtimes runc,xc`, every
    experiment (about 25 s on a 2-vCPU machine, 108 s with all eight runtimes; the timeout
    leaves room for a loaded one), then every section of the report is checked: results.json parses with the expected
    experiments, metrics and runtimes, every cell is ok / failed / missing (a number only
    when ok), report.md has one table per experiment, every chart is a PNG.  It never
    checks how fast anything is."""
    _need_root_busybox()
    pytest.importorskip("matplotlib", reason="charts need matplotlib (make setup installs the bench extra)")
    out = tmp_path / "results"
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "src"))
    p = subprocess.run([sys.executable, "-c", "from xcontainers.xc_cli import main; main()", "bench", "--quick",
                        "--runtimes", "runc,xc", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    for key in ("command", "date", "duration_s", "quick", "machine", "runtimes", "experiments", "charts"):
        assert key in res, key
    assert res["quick"] is True and "--quick" in res["command"]
    for key in ("cpu", "nproc", "mem_total_mb", "kernel", "loadavg_start", "loadavg_end"):
        assert key in res["machine"], key
    assert list(res["runtimes"]) == ["runc", "xc"]
    for d in res["runtimes"].values():
        assert d["status"] == "available" and d["version"], d
    assert list(res["experiments"]) == list(QUICK_METRICS)
    for ename, e in res["experiments"].items():
        assert "error" not in e, (ename, e.get("error"), e.get("traceback"))
        assert e["title"] and e["duration_s"] >= 0
        assert [m["name"] for m in e["metrics"]] == QUICK_METRICS[ename], ename
        for m in e["metrics"]:
            assert m["unit"] and isinstance(m["higher_is_better"], bool)
            assert set(m["cells"]) == {"runc", "xc"}, (ename, m["name"])
            for c in m["cells"].values():
                assert c["status"] in ("ok", "failed", "missing"), c
                if c["status"] == "ok":
                    assert c["min"] <= c["median"] <= c["max"] and c["n"] == len(c["samples"]) >= 1
                    assert "ratio_to_runc" in c
                else:
                    assert c["reason"] and "median" not in c
            if m["cells"]["runc"]["status"] == "ok":
                assert m["cells"]["runc"]["ratio_to_runc"] == 1
    md = (out / "report.md").read_text()
    assert md.startswith("# xc bench results") and "- Command: `xc bench --quick" in md
    sections = md.split("\n## ")[1:]
    assert [s.splitlines()[0].split(":", 1)[0] for s in sections] == ["Runtimes", *QUICK_METRICS]
    for sec in sections[1:]:
        ename = sec.splitlines()[0].split(":", 1)[0]
        assert sec.count("| metric | unit | runc | xc |") == 1, ename
        for name in QUICK_METRICS[ename]:
            assert f"\n| {name} | " in sec, (ename, name)
        assert f"![{ename}]({ename}.png)" in sec
    assert set(res["charts"]) == set(QUICK_METRICS)
    for ename, name in res["charts"].items():
        assert name == f"{ename}.png"
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
