"""What the screen knows about the current run, built from the event stream alone (no widgets).

The UI timer feeds drained events in; the plots and the status line read the series out. Seeds
are averaged here (Snapshot.mean_mi and the per-seed losses), so every widget plots one series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ibtui.core.events import Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


@dataclass
class Curves:
    """Loss and accuracy against epoch, seed means."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)

    def add(self, s: Snapshot) -> None:
        self.epochs.append(s.epoch)
        self.train_loss.append(_mean(s.train_loss))
        self.test_loss.append(_mean(s.test_loss))
        self.train_acc.append(_mean(s.train_acc))
        self.test_acc.append(_mean(s.test_acc))


@dataclass
class RunState:
    """One run as the screen sees it: started -> snapshots/progress -> ended."""

    run_id: str
    run_dir: Path
    total_epochs: int
    started: RunStarted | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    curves: Curves = field(default_factory=Curves)
    epoch: int = 0
    train_loss: float | None = None
    status: str = "starting"  # starting | running | paused | stopping | finished | interrupted | failed
    reason: str | None = None
    version: int = 0  # bumped whenever the plotted data change, so plots redraw only then

    @property
    def estimators(self) -> tuple[str, ...]:
        if self.started is not None:
            return tuple(self.started.config.info.estimators)
        return ()

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "paused", "stopping")

    def apply(self, event: Event) -> None:
        if getattr(event, "run_id", self.run_id) != self.run_id:
            return  # a stale event from an earlier run
        if isinstance(event, RunStarted):
            self.started = event
            self.epoch = event.start_epoch
            if self.status == "starting":
                self.status = "running"
            self.version += 1
        elif isinstance(event, Snapshot):
            self.snapshots.append(event)
            self.curves.add(event)
            self.epoch = max(self.epoch, event.epoch)
            self.train_loss = _mean(event.train_loss)
            self.version += 1
        elif isinstance(event, Progress):
            self.epoch = max(self.epoch, event.epoch)
            self.train_loss = event.train_loss
        elif isinstance(event, RunFinished):
            self.epoch = event.epoch
            self.status = event.status
        elif isinstance(event, RunFailed):
            self.epoch = event.epoch
            self.status = "failed"
            self.reason = event.reason


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class RunClock:
    """Elapsed running time (pauses excluded) and speed, from an injectable clock."""

    def __init__(self, now) -> None:
        self._now = now
        self.started_at: float | None = None
        self.paused_at: float | None = None
        self.paused_total = 0.0
        self.stopped_at: float | None = None
        self.first_epoch = 0

    def start(self, first_epoch: int = 0) -> None:
        self.started_at = self._now()
        self.first_epoch = first_epoch

    def pause(self) -> None:
        if self.paused_at is None:
            self.paused_at = self._now()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.paused_total += self._now() - self.paused_at
            self.paused_at = None

    def stop(self) -> None:
        if self.stopped_at is None:
            self.resume()
            self.stopped_at = self._now()

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        end = self.stopped_at if self.stopped_at is not None else (self.paused_at if self.paused_at is not None else self._now())
        return max(0.0, end - self.started_at - self.paused_total)

    def speed(self, epoch: int) -> float | None:
        elapsed = self.elapsed()
        done = epoch - self.first_epoch
        if elapsed <= 0 or done <= 0:
            return None
        return done / elapsed

    def remaining(self, epoch: int, total: int) -> float | None:
        speed = self.speed(epoch)
        if speed is None:
            return None
        return max(0, total - epoch) / speed
