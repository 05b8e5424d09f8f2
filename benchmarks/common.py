"""Shared pieces of the benchmarks: timing, one row per figure, and the printed table."""

from __future__ import annotations

import statistics
import time


def time_ms(fn, repeats: int, warmup: int = 1) -> list[float]:
    """Wall-clock milliseconds of fn() over repeats, after warm-up calls (allocations, thread pool)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def row(name: str, times: list[float], ref: list[float] | None = None, note: str = "") -> dict:
    """A figure: median, min and max of times, and the reference's median when there is one."""
    return {
        "name": name,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "ref_median_ms": statistics.median(ref) if ref else None,
        "note": note,
    }


def format_table(rows: list[dict]) -> str:
    lines = [f"{'benchmark':46} {'median':>9} {'min':>9} {'max':>9} {'ref':>9}  note", f"{'':46} {'(ms)':>9}"]
    for r in rows:
        ref = f"{r['ref_median_ms']:9.1f}" if r["ref_median_ms"] is not None else f"{'-':>9}"
        lines.append(f"{r['name']:46} {r['median_ms']:9.2f} {r['min_ms']:9.2f} {r['max_ms']:9.2f} {ref}  {r['note']}")
    return "\n".join(lines)
