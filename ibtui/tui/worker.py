"""What the app's worker threads do: drive the engine for one run, read its verdicts, export its PNGs.

Each function runs in a thread worker the App owns (see IbtuiApp.train) and reports back only
through `post` (App.post_message, thread-safe) with the messages of ibtui.tui.messages; none of
them touches a widget. The real engine runs in a process of its own that the thread relays
events from (runner.execute_in_process): in the UI's process, drawing took the GIL from the
training loop and cost it 5-25 % of its speed. The events go into the job's EventBuffer, which
the UI drains on a timer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ibtui.config import RunConfig
from ibtui.engine.control import RunControl
from ibtui.errors import IbtuiError
from ibtui.runs.runner import RunOutcome, execute, execute_in_process
from ibtui.tui.buffer import EventBuffer
from ibtui.tui.messages import FiguresExported, RunCouldNotStart, RunEnded, VerdictsReady

# (config, run_dir, run_id) -> (trainer, store), run in the worker thread itself: a fake in tests.
TrainerFactory = Callable[[RunConfig, Path, str], tuple[object, object]]
Exporter = Callable[[Path], list[Path]]
Post = Callable[[object], object]


@dataclass
class TrainingJob:
    """Everything the worker needs; shared with the UI only through thread-safe parts."""

    run_id: str
    config: RunConfig
    run_dir: Path
    control: RunControl = field(default_factory=RunControl)
    buffer: EventBuffer | None = None
    export: bool = True  # cleared when quitting: the app leaves at once, PNGs can come later

    def __post_init__(self) -> None:
        if self.buffer is None:
            self.buffer = EventBuffer(self.run_id)


def read_verdicts(run_dir: Path) -> dict:
    """summary.json's "analysis" (RunStore writes it when a run ends), or computed from the run."""
    from ibtui.runs.analysis import analyse_run
    from ibtui.runs.files import SUMMARY_FILE
    from ibtui.runs.record import load_run

    try:
        analysis = json.loads((Path(run_dir) / SUMMARY_FILE).read_text()).get("analysis")
    except (OSError, ValueError):
        analysis = None
    if not isinstance(analysis, dict) or "error" in analysis or "estimators" not in analysis:
        analysis = analyse_run(load_run(run_dir))
    return analysis


def export_pngs(run_dir: Path) -> list[Path]:
    from ibtui.export.png import export_run

    return export_run(run_dir)


def _sentence(exc: Exception) -> str:
    """An IbtuiError is already one sentence; anything else is a bug, named with its type."""
    return str(exc) if isinstance(exc, IbtuiError) else f"{type(exc).__name__}: {exc}"


def train(job: TrainingJob, trainer_factory: TrainerFactory | None, exporter: Exporter, post: Post) -> None:
    """prepare -> execute -> verdicts -> export; posts RunCouldNotStart or RunEnded, then
    VerdictsReady and FiguresExported (neither when quitting: job.export is then False)."""
    trainer = store = None
    try:
        if trainer_factory is None:
            outcome = execute_in_process(job.config, job.run_dir, job.run_id, [job.buffer.push], job.control)
        else:
            trainer, store = trainer_factory(job.config, job.run_dir, job.run_id)
            outcome = None
    except Exception as exc:  # a refusal (IbtuiError), or a bug: the app must stay usable
        post(RunCouldNotStart(job.run_id, _sentence(exc)))
        return
    if outcome is None:
        try:
            outcome = execute(trainer, store, [job.buffer.push], job.control)
        except Exception as exc:  # execute has marked the store failed
            outcome = RunOutcome(job.run_dir, "failed", 0, 0.0, f"{type(exc).__name__}: {exc}")
    post(RunEnded(job.run_id, job.run_dir, outcome.status, outcome.epoch, outcome.reason))
    if not job.export:  # quitting: leave at once
        return
    if outcome.status in ("finished", "interrupted"):
        verdicts(job.run_id, job.run_dir, post)
    export(job.run_id, job.run_dir, exporter, post)


def verdicts(run_id: str, run_dir: Path, post: Post) -> None:
    try:
        analysis, error = read_verdicts(run_dir), None
    except Exception as exc:  # a run with no snapshots, a bug: say so, keep going
        analysis, error = None, _sentence(exc)
    post(VerdictsReady(run_id, run_dir, analysis, error))


def export(run_id: str, run_dir: Path, exporter: Exporter, post: Post) -> None:
    try:
        paths, error = exporter(run_dir), None
    except Exception as exc:  # an IbtuiError, matplotlib missing, a bug: say so, keep going
        paths, error = [], _sentence(exc)
    post(FiguresExported(run_id, run_dir, paths, error))
