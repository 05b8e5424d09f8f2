"""Estimator processes: the information plane of many snapshots estimated on several cores.

Two processes of one torch thread each estimate twice as many snapshots as one. The thresholds
below were measured on the torch KDE path, whose ~45 torch calls per stripe hand the GIL over at
every call, so two threads in one process managed only 1.35x (DEVELOPERS.md, "Where the KDE's
time goes"); the compiled CPU kernel holds the GIL once per call and two threads do ~1.6x, so the
thresholds may now be conservative (not re-measured). A process costs ~1.5 s to start (it imports
torch) and ~250 MB, so they are for big jobs: the training engine's SnapshotPipeline and
`ibtui estimate`. Both fall back to estimating here when a process cannot start.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from ibtui import estimators
from ibtui.config import InfoConfig

# KDE pair terms (sum over snapshots, seeds and layers of N^2; ~3 s of work on one core) from
# which estimator processes pay for their start-up.
PROCESS_MIN_PAIRS = 5e9
MAX_PROCESSES = 4  # each imports torch (~250 MB)


def kde_pairs(info: InfoConfig, snapshots: int, seeds: int, layers: int, n: int) -> float:
    """The pair terms a job's KDE estimates add up to (0 without KDE): its estimation workload."""
    if not any(name.startswith("kde") for name in info.estimators):
        return 0.0
    return float(snapshots) * seeds * layers * n * n


def start_estimator_process(threads: int) -> None:
    """Runs first in each estimator process: Ctrl-C is the parent's to handle (it stops and drops
    what is in flight)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def timed_estimate(layers, labels, info: InfoConfig, inputs=None) -> tuple[dict, float]:
    """estimators.estimate_info_plane and the seconds it took (`inputs`: the MI samples' X)."""
    started = time.perf_counter()
    return estimators.estimate_info_plane(layers, labels, info, inputs), time.perf_counter() - started


def estimator_pool(processes: int, threads: int = 1) -> ProcessPoolExecutor:
    context = multiprocessing.get_context("spawn")  # fork is unsafe under OpenMP and threads
    return ProcessPoolExecutor(processes, mp_context=context, initializer=start_estimator_process, initargs=(threads,))
