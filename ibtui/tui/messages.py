"""Messages the training, export and verdict workers post to the app (dataclass messages).

Each carries the run id it is about, so a message from a run that is no longer the one on screen
is recognised and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual.message import Message


@dataclass
class RunMessage(Message):
    run_id: str


@dataclass
class RunCouldNotStart(RunMessage):
    """prepare_run refused the run (bad CSV, no CUDA, run directory not writable...)."""

    reason: str


@dataclass
class RunEnded(RunMessage):
    """The engine stopped: status finished | interrupted | failed (reason says why)."""

    run_dir: Path
    status: str
    epoch: int
    reason: str | None


@dataclass
class FiguresExported(RunMessage):
    """export_run wrote these files (or failed with error)."""

    run_dir: Path
    paths: list[Path] = field(default_factory=list)
    error: str | None = None


@dataclass
class VerdictsReady(RunMessage):
    """The run's compression verdicts (summary.json's "analysis"), or why there are none."""

    run_dir: Path
    analysis: dict | None = None
    error: str | None = None
