"""Estimator processes: the information plane of many snapshots estimated on several cores.

Processes rather than threads because a thread beside training fights it for the GIL; a spawned
process imports torch (about 2.5 s of CPU and 250 MB), so they are for big jobs only: the snapshot
pipeline (pipeline.py) and `ibtui estimate` use them from PROCESS_MIN_PAIRS KDE pair terms on,
and fall back to a thread when a process cannot start. The workers ignore Ctrl-C (the parent
stops them) and die with their parent (processes.py). How the thresholds were measured:
docs/performance.md.

A pool starts every process at once (ProcessPoolExecutor under spawn starts one only when a task
finds none idle, which left the second process to start when training ended, its imports on the
critical path), each warming up (imports, compiled kernels from the cache) before its first task.
`prestart` starts a pool for the next estimator_pool of the same shape to take; its owner may
keep it for more work (the figures) until `close_prestarted`. The CLI's run prestarts with
fork=True: it imports the estimators and warms up once, then forks the processes, which start
with everything loaded (a spawned process imports it all again, about 3.5 s of CPU). This module
imports torch lazily: the CLI reads it before deciding to.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from multiprocessing.context import BaseContext

from ibtui.config import InfoConfig
from ibtui.engine.processes import die_with_parent, fork_context, spawn_context

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
    with the parent, and torch uses `threads` threads. A forked process also drops the handlers
    it inherited for SIGTERM and SIGHUP: they are the parent's, and terminate() must end it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    import torch

    torch.set_num_threads(threads)


def timed_estimate(layers, labels, info: InfoConfig, inputs=None) -> tuple[dict, float]:
    """estimators.estimate_info_plane and the seconds it took (`inputs`: the MI samples' X)."""
    from ibtui import estimators

    started = time.perf_counter()
    return estimators.estimate_info_plane(layers, labels, info, inputs), time.perf_counter() - started


def warm_up(info: InfoConfig | None = None) -> int:
    """A new process's first task: import the estimators and, with `info`, estimate a tiny
    snapshot so that the compiled kernels it uses are loaded from numba's cache before a real
    one comes. Returns the process id."""
    from ibtui import estimators
    from ibtui.errors import IbtuiError

    if info is not None:
        import numpy as np

        layer = np.random.default_rng(0).normal(size=(1, 16, 2)).astype(np.float32)
        try:
            estimators.estimate_info_plane([layer], np.arange(16) % 2, info)
        except IbtuiError:
            pass  # a setting the real estimate will refuse with its own message
    return os.getpid()


def pool_shape(cores: int) -> tuple[int, int]:
    """(processes, torch threads each) of the estimator pool on `cores` cores."""
    processes = min(MAX_PROCESSES, cores)
    return processes, max(1, (cores - 1) // processes)


_prestarted: dict = {}  # "pool", "shape", "lent", "info"


def estimator_pool(processes: int, threads: int = 1, info: InfoConfig | None = None,
                   context: BaseContext | None = None) -> ProcessPoolExecutor:
    """A pool of `processes` estimator processes of `threads` torch threads each, every process
    started now and warming up (warm_up(info)), spawned unless `context` says otherwise. The
    prestarted pool when it has this shape (it is then lent: release() keeps it for its owner);
    otherwise a prestarted one is closed."""
    pool = _prestarted.get("pool")
    if pool is not None and not _prestarted.get("lent"):
        if _prestarted["shape"] == (processes, threads) and not getattr(pool, "_broken", False):
            _prestarted["lent"] = True
            return pool
        close_prestarted()
    pool = ProcessPoolExecutor(processes, mp_context=context or spawn_context(lean=True), initializer=start_estimator_process,
                               initargs=(threads, os.getpid()))
    try:
        for _ in range(processes):  # each submit that finds no idle process starts one
            pool.submit(warm_up, info)
    except BrokenExecutor:
        pass  # the caller's own submit finds the pool broken and falls back
    return pool


def prestart(processes: int, threads: int, info: InfoConfig, fork: bool = False) -> None:
    """Start an estimator pool now, for the next estimator_pool(processes, threads) to take.

    `fork`, for a process ibtui owns that has run no OpenMP region yet (processes.fork_context):
    the estimators are imported and warmed up here, then the processes are forked with them
    loaded, instead of each importing them again; spawned as usual where a fork is not safe."""
    close_prestarted()
    context = fork_context() if fork else None
    if context is not None:
        warm_up(info)
    _prestarted.update(pool=None, shape=(processes, threads), lent=False)
    _prestarted["pool"] = estimator_pool(processes, threads, info, context)


def end_pool(pool: ProcessPoolExecutor, terminate: bool, wait: bool = False) -> None:
    """Shut `pool` down, cancelling the tasks not started; `terminate` also ends its processes
    now (the tasks in flight are dropped); `wait` returns once its manager thread is done.

    The shutdown comes before the terminate: its wake-up makes the manager thread drop every
    cancelled future before it can see a process gone. In the other order a process that dies
    first sends it to terminate_broken, which in CPython 3.11 sets an exception on each pending
    future, cancelled ones included, and raises InvalidStateError in that thread."""
    if not terminate:
        pool.shutdown(wait=wait, cancel_futures=True)
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets both
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    if wait and manager is not None:
        manager.join()


def release(pool: ProcessPoolExecutor, terminate: bool = False) -> None:
    """The end of a borrower's use of `pool`: shut down unless it is the prestarted pool, which
    stays for its owner; `terminate` ends the processes at once (tasks dropped), either way."""
    if pool is _prestarted.get("pool") and not terminate and not getattr(pool, "_broken", False):
        _prestarted["lent"] = False
        return
    end_pool(pool, terminate)
    if pool is _prestarted.get("pool"):
        _prestarted.clear()


def prestarted_pool() -> ProcessPoolExecutor | None:
    """The prestarted pool while it is alive and not lent (for more work), else None."""
    pool = _prestarted.get("pool")
    if pool is None or _prestarted.get("lent") or getattr(pool, "_broken", False):
        return None
    return pool


def close_prestarted(terminate: bool = False) -> None:
    """Shut the prestarted pool down (`terminate`: its processes at once, even mid-task)."""
    pool = _prestarted.pop("pool", None)
    _prestarted.clear()
    if pool is not None:
        end_pool(pool, terminate)
