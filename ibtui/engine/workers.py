"""Estimator processes: the information plane of many snapshots estimated on several cores.

Processes rather than threads because a thread beside training fights it for the GIL; each
process imports torch (about 1.5 s and 250 MB), so they are for big jobs only: the snapshot
pipeline (pipeline.py) and `ibtui estimate` use them from PROCESS_MIN_PAIRS KDE pair terms on,
and fall back to a thread when a process cannot start. The workers ignore Ctrl-C (the parent
stops them) and die with their parent (processes.py). How the thresholds were measured:
docs/performance.md.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from ibtui import estimators
from ibtui.config import InfoConfig
from ibtui.engine.processes import die_with_parent, spawn_context

# KDE pair terms (sum over snapshots, seeds and layers of N^2; ~3 s of work on one core) from
# which estimator processes pay for their start-up.
PROCESS_MIN_PAIRS = 5e9
MAX_PROCESSES = 4  # each imports torch (~250 MB)


def kde_pairs(info: InfoConfig, snapshots: int, seeds: int, layers: int, n: int) -> float:
    """The pair terms a job's KDE estimates add up to (0 without KDE): its estimation workload."""
    if not any(name.startswith("kde") for name in info.estimators):
        return 0.0
    return float(snapshots) * seeds * layers * n * n


# The compiled KDE kernel's throughput on a 2-core CPU (docs/performance.md: a 6-layer N = 4,096
# snapshot, 1e8 pair terms, in about 35 ms): a yardstick for telling users how big a run is.
KDE_PAIRS_PER_SECOND = 3e9
HUGE_WORK_S = 3600.0  # above this much estimating, a run says how big it is before it starts


def workload_note(info: InfoConfig, snapshots: int, seeds: int, layers: int, n: int) -> str | None:
    """One sentence on a run whose KDE estimates alone take over an hour at the yardstick rate
    (feasible but huge: the user should know before the hours go by), else None."""
    pairs = kde_pairs(info, snapshots, seeds, layers, n)
    seconds = pairs / KDE_PAIRS_PER_SECOND
    if seconds < HUGE_WORK_S:
        return None
    return (f"this run estimates {snapshots:,} snapshots x {layers} layers x {seeds} seed(s) on {n:,} samples: "
            f"{pairs:.1e} pairwise KDE terms, about {seconds / 3600:.1f} hours of estimating on a 2-core CPU "
            f"(fewer with --snapshots, --mi-samples or more cores); Ctrl-C stops it keeping what was measured")


def start_estimator_process(threads: int, parent_pid: int | None = None) -> None:
    """Runs first in each estimator process: Ctrl-C is the parent's to handle, the process dies
    with the parent, and torch uses `threads` threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    torch.set_num_threads(threads)


def timed_estimate(layers, labels, info: InfoConfig, inputs=None) -> tuple[dict, float]:
    """estimators.estimate_info_plane and the seconds it took (`inputs`: the MI samples' X)."""
    started = time.perf_counter()
    return estimators.estimate_info_plane(layers, labels, info, inputs), time.perf_counter() - started


def estimator_pool(processes: int, threads: int = 1) -> ProcessPoolExecutor:
    """A pool of `processes` estimator processes of `threads` torch threads each."""
    return ProcessPoolExecutor(processes, mp_context=spawn_context(), initializer=start_estimator_process,
                               initargs=(threads, os.getpid()))
