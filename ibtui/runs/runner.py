"""Wires one run together: the engine's events go to the run store and then to every listener.

This is the only place that iterates the engine, for `ibtui run`, `ibtui resume` and the TUI alike,
so every consumer sees the same stream and every run directory has the same format.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ibtui.config import RunConfig
from ibtui.errors import IbtuiError
from ibtui.engine.processes import die_with_parent, last_line, spawn_context
from ibtui.engine.events import Checkpoint, Event, RunFailed, RunFinished, Snapshot
from ibtui.runs.files import check_new_run_dir
from ibtui.runs.store import RunStore
from ibtui.engine.control import RunControl
from ibtui.engine.trainer import Trainer

Listener = Callable[[Event], None]


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str  # finished | interrupted | failed
    epoch: int
    elapsed_s: float
    reason: str | None = None


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
    """A free root/<name>-<date-time>[-N] path, not made yet (so a run refused before it starts
    leaves nothing). Two processes asking in the same second may get the same path; the writer
    lock then refuses the second one. prepare_run(config, None, root=...) claims the directory
    atomically instead, and is what `ibtui run` without --out uses."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{config.name}-{stamp}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = Path(root) / f"{config.name}-{stamp}-{suffix}"
    return path


def with_absolute_paths(config: RunConfig) -> RunConfig:
    """The data file as an absolute path, so config.toml still works from another directory."""
    if config.data.csv:
        return replace(config, data=replace(config.data, csv=str(Path(config.data.csv).expanduser().resolve())))
    return config


def prepare_run(config: RunConfig, run_dir: str | Path | None = None, run_id: str | None = None, root: str | Path = "runs") -> tuple[Trainer, RunStore]:
    """Everything that can fail on bad input, in the order that writes nothing before it is checked.

    Without run_dir the run goes to a new root/<name>-<date-time> directory, made only once the
    data and device are known to work.
    """
    config = with_absolute_paths(config)
    if run_dir is not None:
        check_new_run_dir(Path(run_dir))  # before loading the data: a taken --out is the cheaper refusal
    trainer = Trainer(config, run_id=run_id)
    store = RunStore.create(run_dir, config) if run_dir is not None else RunStore.claim_default(root, config)
    return trainer, store


def prepare_resume(run_dir: str | Path, run_id: str | None = None) -> tuple[Trainer, RunStore]:
    """Check that the run can go on (data, device, checkpoint) before touching its files."""
    store, state = RunStore.reopen(run_dir)
    try:
        trainer = Trainer(store.config, run_id=run_id or store.summary.get("run_id"))
        if state is not None:
            trainer.load_checkpoint(state)
        store.discard_after_checkpoint()
    except BaseException:
        store.close()  # releases the lock: a refused resume leaves the run as it was
        raise
    return trainer, store


def execute(trainer: Trainer, store: RunStore, listeners: Iterable[Listener] = (), control: RunControl | None = None) -> RunOutcome:
    """Run to the end (or a stop), feeding the store first so listeners only see what is saved.

    The store is closed (its lock released) when this returns or raises. An exception is
    recorded in summary.json when the disk allows: KeyboardInterrupt (an abort) as
    "interrupted", anything else as "failed"; the run stays resumable from its last checkpoint.
    """
    listeners = list(listeners)
    outcome = RunOutcome(store.path, "failed", 0, 0.0, "the run ended without a final event")
    try:
        for event in trainer.run(control):
            store.handle(event)
            for listener in listeners:
                listener(event)
            if isinstance(event, RunFinished):
                # The store has the last word: a "finished" run with snapshots missing is failed.
                status = store.summary.get("status", event.status)
                outcome = RunOutcome(store.path, status, event.epoch, event.elapsed_s, store.summary.get("reason"))
            elif isinstance(event, RunFailed):
                outcome = RunOutcome(store.path, "failed", event.epoch, event.elapsed_s, event.reason)
    except KeyboardInterrupt:
        store.mark_failed("aborted before the pending estimates were done", status="interrupted")
        raise
    except OSError as exc:
        store.mark_failed(describe_os_error(exc))
        raise
    except BaseException as exc:
        store.mark_failed(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        store.close()
    return outcome


def describe_os_error(exc: OSError) -> str:
    """'cannot write /r/summary.json: No space left on device' (one clause, no traceback)."""
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot write{where}: {exc.strerror or exc}"


# -- the engine in its own process ------------------------------------------------------------


def execute_in_process(
    config: RunConfig, run_dir: str | Path, run_id: str | None, listeners: Iterable[Listener], control: RunControl
) -> RunOutcome:
    """prepare_run + execute in a spawned process, relaying the events to `listeners` here.

    For an interactive front end: its drawing would otherwise take the GIL from the training loop
    (numpy hands it over at every call, and a busy UI thread keeps it up to 5 ms each time), which
    cost 5-25 % of the training speed. `control` must be RunControl(shared=True). A run that
    cannot start raises IbtuiError with the reason; a crash of the process is a failed outcome.
    The listeners see every event except checkpoint states and saved activations (the child's
    store writes those).
    """
    context = spawn_context()  # spawn, with ibtui's OpenMP policy in the child's environment
    events = context.Queue()
    # The child's output (and its estimator process's) goes to a log, not to a terminal that a
    # front end like Textual owns; a crash's last lines become the failure's reason.
    # The child opens it by name and unlinks it; this process reads it through its own
    # descriptor, so no name is left in the temp folder even when this process is SIGKILLed.
    handle, name = tempfile.mkstemp(prefix="ibtui-engine-", suffix=".log")
    log = Path(name)
    # Not a daemon: it may start the estimator process of its own. It stops when this process dies.
    process = context.Process(
        target=_execute_in_child, args=(config, str(run_dir), run_id, control, events, str(log)), name="ibtui-engine"
    )
    process.start()
    listeners = list(listeners)
    try:
        while True:
            try:
                kind, payload = events.get(timeout=0.2)
            except queue.Empty:
                if process.is_alive():
                    continue
                try:  # it may have put its last words just before it ended
                    kind, payload = events.get(timeout=0.5)
                except queue.Empty:
                    reason = f"the engine process ended unexpectedly (exit code {process.exitcode})"
                    last_words = last_line(handle)
                    return RunOutcome(Path(run_dir), "failed", 0, 0.0, f"{reason}: {last_words}" if last_words else reason)
            if kind == "event":
                for listener in listeners:
                    listener(payload)
            elif kind == "outcome":
                return payload
            elif kind == "could not start":
                raise IbtuiError(payload)
    finally:
        control.request_stop()  # a no-op after the outcome; otherwise the child must not go on alone
        process.join(timeout=10)
        if process.is_alive():
            process.terminate()
        os.close(handle)
        log.unlink(missing_ok=True)  # a child that died before it got to it


def _execute_in_child(config: RunConfig, run_dir: str, run_id: str | None, control: RunControl, events, log: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops us
    with open(log, "ab", buffering=0) as sink:  # file descriptors, so C code and children follow
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
    with contextlib.suppress(OSError):  # the parent reads it through its descriptor
        Path(log).unlink()
    parent = multiprocessing.parent_process()
    if parent is not None:  # an orphan stops, keeping what was measured, and ends within seconds
        die_with_parent(parent.pid, on_orphan=control.abort, grace_s=10.0)
    try:
        trainer, store = prepare_run(config, run_dir, run_id)
    except IbtuiError as exc:
        events.put(("could not start", str(exc)))
        return
    except Exception as exc:  # a bug, but the front end must hear of it
        events.put(("could not start", f"{type(exc).__name__}: {exc}"))
        return
    try:
        outcome = execute(trainer, store, [lambda event: events.put(("event", _for_listeners(event)))], control)
    except Exception as exc:  # execute has marked the store failed
        outcome = RunOutcome(Path(run_dir), "failed", 0, 0.0, f"{type(exc).__name__}: {exc}")
    events.put(("outcome", outcome))
    events.close()
    events.join_thread()  # everything is in the pipe before the process ends


def _for_listeners(event: Event) -> Event:
    if isinstance(event, Checkpoint):
        return replace(event, state={})
    if isinstance(event, Snapshot) and event.activations is not None:
        return replace(event, activations=None)
    return event
