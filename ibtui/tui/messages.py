"""Messages the training and export workers post to the app. Each carries the run id it is about,
so a message from a run that is no longer the current one is recognised and dropped."""

from __future__ import annotations

from pathlib import Path

from textual.message import Message


class RunMessage(Message):
    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id


class RunCouldNotStart(RunMessage):
    """prepare_run refused the run (bad CSV, no CUDA, run directory not writable...)."""

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(run_id)
        self.reason = reason


class RunEnded(RunMessage):
    """The engine stopped: status finished | interrupted | failed (reason says why)."""

    def __init__(self, run_id: str, run_dir: Path, status: str, epoch: int, reason: str | None) -> None:
        super().__init__(run_id)
        self.run_dir = run_dir
        self.status = status
        self.epoch = epoch
        self.reason = reason


class FiguresExported(RunMessage):
    """export_run wrote these files (or failed with error)."""

    def __init__(self, run_id: str, run_dir: Path, paths: list[Path], error: str | None = None) -> None:
        super().__init__(run_id)
        self.run_dir = run_dir
        self.paths = paths
        self.error = error


class VerdictsReady(RunMessage):
    """The run's compression verdicts (summary.json's "analysis"), or why there are none."""

    def __init__(self, run_id: str, run_dir: Path, analysis: dict | None, error: str | None = None) -> None:
        super().__init__(run_id)
        self.run_dir = run_dir
        self.analysis = analysis
        self.error = error
