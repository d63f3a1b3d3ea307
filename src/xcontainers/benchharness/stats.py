"""Pure statistics for the benchmark harness (no I/O, no third-party code).

A *cell* is what one runtime gave for one metric: ``{"status": "ok", "median":
..., "min": ..., "max": ..., "n": ..., "samples": [...]}``, or ``{"status":
"missing" | "failed", "reason": ...}``.  A missing or failed cell never carries
a number.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

__all__ = ["median", "min_max", "ratio", "percentile", "summarize", "failed", "missing",
           "add_ratios", "REFERENCE"]

REFERENCE = "runc"


def median(xs: Iterable[float]) -> float:
    v = sorted(float(x) for x in xs)
    if not v:
        raise ValueError("median of no samples")
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else (v[mid - 1] + v[mid]) / 2


def min_max(xs: Iterable[float]) -> tuple[float, float]:
    v = [float(x) for x in xs]
    if not v:
        raise ValueError("min-max of no samples")
    return min(v), max(v)


def percentile(xs: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear interpolation between closest ranks."""
    v = sorted(float(x) for x in xs)
    if not v:
        raise ValueError("percentile of no samples")
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    k = (len(v) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def ratio(value: float | None, ref: float | None) -> float | None:
    """value / ref, or None when either is missing or ref is zero."""
    if value is None or ref is None or ref == 0:
        return None
    return value / ref


def summarize(samples: Sequence[float], **extra: Any) -> dict[str, Any]:
    """An ok cell from the samples (an empty list is a failure, not a zero)."""
    if not samples:
        return failed("no samples", **extra)
    lo, hi = min_max(samples)
    return {"status": "ok", "median": median(samples), "min": lo, "max": hi, "n": len(samples),
            "samples": [float(x) for x in samples], **extra}


def failed(reason: str, **extra: Any) -> dict[str, Any]:
    return {"status": "failed", "reason": str(reason), **extra}


def missing(reason: str) -> dict[str, Any]:
    return {"status": "missing", "reason": str(reason)}


def add_ratios(cells: dict[str, dict[str, Any]], ref: str = REFERENCE) -> dict[str, dict[str, Any]]:
    """Set ``ratio_to_runc`` on every ok cell (None when the reference has no number)."""
    r = cells.get(ref, {})
    ref_med = r.get("median") if r.get("status") == "ok" else None
    for cell in cells.values():
        if cell.get("status") == "ok":
            cell["ratio_to_runc"] = ratio(cell["median"], ref_med)
    return cells
