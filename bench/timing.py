"""Small timing helpers shared by the benchmark sections."""
from __future__ import annotations

import time
from typing import Callable

import numpy as np


def time_call(fn: Callable[[], object], repeats: int = 20, warmup: int = 2) -> dict:
    """Median and p90 wall time of ``fn()`` in ms over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": round(float(np.median(ms)), 3),
            "p90_ms": round(float(np.percentile(ms, 90)), 3), "n": repeats}


def percentiles(values_ms, qs=(50, 95, 99)) -> dict:
    """{"p50": .., "p95": .., ...} of a sequence in ms (NaN when empty)."""
    v = np.asarray(list(values_ms), dtype=np.float64)
    return {f"p{q}": (round(float(np.percentile(v, q)), 1) if v.size else float("nan"))
            for q in qs}
