"""The processes ibtui starts itself (estimator workers, the app's engine): how they wait on
OpenMP, that they die with their parent, and how ibtui's own process ends.

OpenMP policy. libgomp reads OMP_WAIT_POLICY once, when torch loads it. Threads that spin while
waiting make torch's and numba's parallel regions 10-100x slower whenever another busy process
shares the cores; a sleeping (PASSIVE) waiter costs a wake-up per parallel region instead, which
is why the compiled step runs many steps in one region. A library import must not change the
host program's threading, so the policy is set only where ibtui owns the process: the CLI's
entry point (set_openmp_policy) and the environment of the processes started through
spawn_context(). A setting the user made wins.

Parent death. A child that outlives its parent (SIGKILL, the OOM killer) holds hundreds of MB for
nothing. die_with_parent, run first in the child: on Linux prctl(PR_SET_PDEATHSIG) has the
kernel send a signal when the parent exits -- strictly, when the parent THREAD that started the
child exits, so ibtui starts its children from the thread that owns them for their whole life --
and everywhere a watchdog thread polls os.getppid(), which changes when the parent dies.

Exit. An interpreter that imported torch, numba and matplotlib spends about a second of CPU
after its last atexit handler, most of it in the garbage collections that finalize its modules,
walking every object those imports made; memory the operating system takes back anyway.
skip_exit_collection, where ibtui owns the process (its CLI commands), freezes the objects alive
at that point (gc.freeze) so those collections pass them by.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.context import BaseContext, SpawnContext, SpawnProcess
from pathlib import Path

POLICY_VARIABLE = "OMP_WAIT_POLICY"
POLICY = "PASSIVE"
WATCH_INTERVAL_S = 0.5
_PR_SET_PDEATHSIG = 1
_environment_lock = threading.Lock()


def set_openmp_policy(environ=os.environ) -> None:
    """OMP_WAIT_POLICY=PASSIVE unless set; effective only before torch is imported."""
    environ.setdefault(POLICY_VARIABLE, POLICY)


@contextlib.contextmanager
def _child_environment():
    """os.environ with the policy while a child is started (spawn execs with the parent's
    environment), then as it was."""
    with _environment_lock:
        added = POLICY_VARIABLE not in os.environ
        if added:
            os.environ[POLICY_VARIABLE] = POLICY
        try:
            yield
        finally:
            if added:
                os.environ.pop(POLICY_VARIABLE, None)


@contextlib.contextmanager
def _main_hidden():
    """__main__ without __file__ and __spec__ while a child is started: what multiprocessing
    reads to re-import the parent's main module in a spawned child. ibtui's children run ibtui
    functions and need nothing from it; re-importing it costs the `ibtui` script's whole CLI
    (typer, rich, every command module) in each child, and runs an unguarded user script again."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    missing = object()
    saved = {key: getattr(main, key, missing) for key in ("__file__", "__spec__")}
    try:
        if saved["__file__"] is not missing:
            del main.__file__
        main.__spec__ = None
        yield
    finally:
        for key, value in saved.items():
            if value is not missing:
                setattr(main, key, value)
            elif hasattr(main, key):
                delattr(main, key)


class _ChildProcess(SpawnProcess):
    def start(self) -> None:
        with _child_environment():
            super().start()


class _LeanChildProcess(_ChildProcess):
    def start(self) -> None:
        with _main_hidden():
            super().start()


class _ChildContext(SpawnContext):
    Process = _ChildProcess


class _LeanChildContext(SpawnContext):
    Process = _LeanChildProcess


def spawn_context(lean: bool = False) -> SpawnContext:
    """multiprocessing's spawn context (fork is unsafe under OpenMP and threads) whose processes
    start with the OpenMP policy in their environment; `lean`: without re-importing the parent's
    __main__ (for children whose work is all in ibtui's modules: the estimator processes)."""
    return _LeanChildContext() if lean else _ChildContext()


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one, else the count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fork_context() -> BaseContext | None:
    """multiprocessing's fork context where forking this process is safe now, else None.

    A forked child starts with everything the parent imported and loaded (torch, numba, the
    compiled kernels), where a spawned one imports it all again: about 3.5 s of CPU each for an
    estimator process. It is safe only on Linux (macOS frameworks are not fork-safe), from a
    process with no thread but the calling one (a fork copies only that thread, so a lock another
    thread held would stay held in the child forever) and without a CUDA context (a child cannot
    use its parent's). One condition the caller must promise, because it cannot be checked: GNU
    OpenMP's worker threads do not survive a fork, so a child whose parent has run an OpenMP
    parallel region must never run one itself (its first would wait for them forever). Either the
    parent has run none yet (importing torch and numba and running tiny tensors, under torch's
    grain size, starts none: `ibtui run` forks before training), or the children keep to one
    torch thread, under which torch runs no parallel region, and to single-threaded kernels (the
    recorder's processes, forked from a user's process that may have trained already)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return None
    import multiprocessing

    return multiprocessing.get_context("fork")


def die_with_parent(parent_pid: int, on_orphan: Callable[[], None] | None = None, grace_s: float = 0.0) -> None:
    """End this process when `parent_pid` (its parent) dies.

    Without on_orphan: at once (SIGKILL from the kernel on Linux, os._exit from the watchdog
    elsewhere). With on_orphan: the watchdog calls it (a graceful stop, say) and ends the process
    grace_s seconds later if it is still running."""
    if on_orphan is None and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still works
    if os.getppid() != parent_pid:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid, on_orphan, grace_s), name="ibtui-parent-watch", daemon=True).start()


def _watch(parent_pid: int, on_orphan: Callable[[], None] | None, grace_s: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    if on_orphan is not None:
        on_orphan()
        time.sleep(grace_s)
    os._exit(1)


_exit_collection_skipped = False


def skip_exit_collection() -> None:
    """From now on, this process's exit leaves the objects alive at its end to the operating
    system instead of collecting them (gc.freeze() as an atexit handler; idempotent).

    Every atexit handler still runs (multiprocessing's joins the children and runs its
    finalizers, whatever their order), and the interpreter still flushes stdout and stderr. What
    the exit no longer does is run __del__ of objects in reference cycles that are alive at the
    end, which Python does not promise anyway: a caller closes its files before it returns (the
    run store does, and writes atomically). For processes ibtui owns, not for a library's host."""
    global _exit_collection_skipped
    if not _exit_collection_skipped:
        atexit.register(gc.freeze)
        _exit_collection_skipped = True


def last_line(log: Path | int) -> str:
    """The last non-blank line of a process's log, a path or an open descriptor (read from its
    start): what it said before it died (\"\" if none)."""
    try:
        if isinstance(log, int):
            os.lseek(log, 0, os.SEEK_SET)
            with open(log, "rb", closefd=False) as file:
                text = file.read().decode(errors="replace")
        else:
            text = log.read_text(errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
