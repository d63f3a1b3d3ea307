"""Writes a run's results: results.json, report.md and one PNG chart per
experiment (matplotlib, Agg): bars normalized to runc's median, like the
paper's figures; a missing or failed runtime gets no bar, only a label."""

from __future__ import annotations

import json
import os
from typing import Any

from .stats import REFERENCE

__all__ = ["write", "markdown", "chart", "fmt"]


def fmt(x: float) -> str:
    if x is None:
        return "-"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(c: dict[str, Any]) -> str:
    if c["status"] == "ok":
        r = c.get("ratio_to_runc")
        return fmt(c["median"]) + (f" ({r:.2f}x)" if r is not None else "")
    return c["status"]


def markdown(res: dict[str, Any], charts: dict[str, str]) -> str:
    m = res["machine"]
    rts = list(res["runtimes"])
    L = [f"# xc bench results", "",
         f"- Command: `{res['command']}`",
         f"- Date: {res['date']}; took {res['duration_s']:.0f} s; mode: {'quick' if res['quick'] else 'full'}",
         f"- Machine: {m['cpu']}, nproc {m['nproc']}, {m['mem_total_mb']:,} MB RAM, kernel {m['kernel']}; "
         f"load average {m['loadavg_start'][0]:.2f} at the start, {m['loadavg_end'][0]:.2f} at the end",
         "", "## Runtimes", "", "| runtime | status | version or reason |", "|---|---|---|"]
    for name, d in res["runtimes"].items():
        L.append(f"| {name} | {d['status']} | {d['version'] if d['status'] == 'available' else d['reason']} |")
    for ename, e in res["experiments"].items():
        L += ["", f"## {ename}: {e.get('title', '')}", ""]
        if "error" in e:
            L += [f"The experiment failed: {e['error']}"]
            continue
        L += [f"Median (ratio to {REFERENCE}'s median); unit per row:", "",
              "| metric | unit | " + " | ".join(rts) + " |", "|---|---|" + "---:|" * len(rts)]
        for mt in e["metrics"]:
            L.append(f"| {mt['name']} | {mt['unit']}{' (higher is better)' if mt['higher_is_better'] else ''} | "
                     + " | ".join(_cell(mt["cells"].get(r, {"status": "missing"})) for r in rts) + " |")
        L += ["", "Detail (median and min-max over the repetitions):", "",
              "| metric | runtime | median | min-max | n | x runc |", "|---|---|---:|---:|---:|---:|"]
        notes = []
        for mt in e["metrics"]:
            for r in rts:
                c = mt["cells"].get(r, {"status": "missing", "reason": "not run"})
                if c["status"] == "ok":
                    ratio = c.get("ratio_to_runc")
                    L.append(f"| {mt['name']} | {r} | {fmt(c['median'])} | {fmt(c['min'])}-{fmt(c['max'])} | "
                             f"{c['n']} | {'-' if ratio is None else f'{ratio:.2f}'} |")
                else:
                    L.append(f"| {mt['name']} | {r} | {c['status']} | - | - | - |")
                    if c["status"] == "failed":
                        notes.append(f"- {mt['name']} / {r} failed: {c['reason']}")
        missing = sorted({f"- {r}: {mt['cells'][r].get('reason', '')}" for mt in e["metrics"] for r in rts
                          if mt["cells"].get(r, {}).get("status") == "missing"})
        if notes:
            L += ["", "Failures:", ""] + notes
        if missing:
            L += ["", "Missing:", ""] + missing
        if e.get("notes"):
            L += ["", "Notes:", ""] + [f"- {n}" for n in e["notes"]]
        if ename in charts:
            L += ["", f"![{ename}]({charts[ename]})"]
    return "\n".join(L) + "\n"


def chart(e: dict[str, Any], rts: list[str], path: str, title: str) -> str | None:
    """A grouped bar chart of ratio to runc (log scale if the ratios span > 20x); the file name or None."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    metrics = e["metrics"]
    if not metrics:
        return None
    width = 0.8 / max(1, len(rts))
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.25 * len(metrics) * max(1, len(rts)) + 3)), 4.5))
    ratios = [c.get("ratio_to_runc") for mt in metrics for c in mt["cells"].values()
              if c.get("status") == "ok" and c.get("ratio_to_runc")]
    log = bool(ratios) and max(ratios) / max(min(ratios), 1e-9) > 20
    base = 1e-2 if log else 0
    for i, r in enumerate(rts):
        xs, ys, labels = [], [], []
        for j, mt in enumerate(metrics):
            c = mt["cells"].get(r, {"status": "missing"})
            x = j + (i - (len(rts) - 1) / 2) * width
            if c["status"] == "ok" and c.get("ratio_to_runc") is not None:
                xs.append(x)
                ys.append(c["ratio_to_runc"])
            else:
                labels.append((x, "n/a" if c["status"] == "ok" else c["status"]))
        bars = ax.bar(xs, ys, width, label=r)
        color = bars.patches[0].get_facecolor() if bars.patches else None
        for x, text in labels:
            ax.text(x, 1.0 if log else 0.02, text, rotation=90, ha="center", va="bottom", fontsize=6, color=color)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=base)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([mt["name"] for mt in metrics], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"median / {REFERENCE}'s median")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=min(len(rts), 4))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.basename(path)


def write(res: dict[str, Any], out_dir: str) -> dict[str, str]:
    """results.json, report.md and the charts into *out_dir*; their paths."""
    os.makedirs(out_dir, exist_ok=True)
    rts = list(res["runtimes"])
    charts: dict[str, str] = {}
    for ename, e in res["experiments"].items():
        if "metrics" in e:
            c = chart(e, rts, os.path.join(out_dir, f"{ename}.png"), f"{ename}: {e.get('title', '')}"[:90])
            if c:
                charts[ename] = c
    res["charts"] = charts
    paths = {"json": os.path.join(out_dir, "results.json"), "markdown": os.path.join(out_dir, "report.md")}
    with open(paths["json"], "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    with open(paths["markdown"], "w") as f:
        f.write(markdown(res, charts))
    paths.update({k: os.path.join(out_dir, v) for k, v in charts.items()})
    return paths
