"""Wires one run together: the engine's events go to the run store and then to every listener.

This is the only place that iterates the engine, for `ibtui run`, `ibtui resume` and the TUI alike,
so every consumer sees the same stream and every run directory has the same format.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from ibtui.core.config import RunConfig
from ibtui.core.events import Event, RunFailed, RunFinished
from ibtui.core.store import RunStore
from ibtui.core.train import RunControl, Trainer

Listener = Callable[[Event], None]


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    status: str  # finished | interrupted | failed
    epoch: int
    elapsed_s: float
    reason: str | None = None


def default_run_dir(config: RunConfig, root: str | Path = "runs") -> Path:
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


def prepare_run(config: RunConfig, run_dir: str | Path, run_id: str | None = None) -> tuple[Trainer, RunStore]:
    """Everything that can fail on bad input, in the order that writes nothing before it is checked."""
    config = with_absolute_paths(config)
    trainer = Trainer(config, run_id=run_id)
    store = RunStore.create(run_dir, config)
    return trainer, store


def prepare_resume(run_dir: str | Path, run_id: str | None = None) -> tuple[Trainer, RunStore]:
    """Check that the run can go on (data, device, checkpoint) before touching its files."""
    store, state = RunStore.reopen(run_dir)
    trainer = Trainer(store.config, run_id=run_id or store.summary.get("run_id"))
    if state is not None:
        trainer.load_checkpoint(state)
    store.discard_after_checkpoint()
    return trainer, store


def execute(trainer: Trainer, store: RunStore, listeners: Iterable[Listener] = (), control: RunControl | None = None) -> RunOutcome:
    """Run to the end (or a stop), feeding the store first so listeners only see what is saved."""
    listeners = list(listeners)
    outcome = RunOutcome(store.path, "failed", 0, 0.0, "the run ended without a final event")
    try:
        for event in trainer.run(control):
            store.handle(event)
            for listener in listeners:
                listener(event)
            if isinstance(event, RunFinished):
                outcome = RunOutcome(store.path, event.status, event.epoch, event.elapsed_s)
            elif isinstance(event, RunFailed):
                outcome = RunOutcome(store.path, "failed", event.epoch, event.elapsed_s, event.reason)
    except BaseException as exc:
        store.mark_failed(f"{type(exc).__name__}: {exc}")
        raise
    return outcome
