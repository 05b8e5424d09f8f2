"""What the screen knows about the current run, built from the event stream alone (no widgets).

The UI timer feeds drained events in; the plots and the status line read the series out. Seeds
are averaged here (Snapshot.mean_mi and the per-seed losses), so every widget plots one series.

Everything is kept incrementally, once per snapshot: per-layer series, running maxima, and which
points to draw. A redraw never walks the whole history: plotext re-renders every point it is
given, so a long run draws at most PLANE_POINTS snapshots on the plane and CURVE_POINTS on each
curve (thinned evenly in log-epoch and epoch respectively; the latest is always drawn).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ibtui.engine.events import Event, Progress, RunFailed, RunFinished, RunStarted, Snapshot


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


PLANE_POINTS = 240  # the most snapshots the information plane draws (per layer), latest included
CURVE_POINTS = 200  # the most points each loss/accuracy curve draws, latest included


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


class Thinning:
    """Which points of a growing series to draw, chosen as they arrive (O(1) per point).

    While the series has at most `limit` points, all of them. Beyond that, the first point of each
    of `limit - 1` bins (bin_of(epoch) in 0..limit-2, non-decreasing in epoch) plus the latest: at
    most `limit` points, and a point once kept stays kept, so older points do not flicker.
    """

    def __init__(self, limit: int, bin_of: Callable[[int], int]) -> None:
        self.limit = max(2, limit)
        self._bin_of = bin_of
        self.count = 0
        self.kept: list[int] = []
        self._last_bin: int | None = None

    def add(self, epoch: int) -> None:
        b = min(self.limit - 2, max(0, self._bin_of(epoch)))
        if b != self._last_bin:
            self.kept.append(self.count)
            self._last_bin = b
        self.count += 1

    def indices(self) -> list[int]:
        """Indices to draw, ascending; the last is always the latest point."""
        if self.count <= self.limit:
            return list(range(self.count))
        if self.kept[-1] == self.count - 1:
            return list(self.kept)
        return [*self.kept, self.count - 1]


def log_bins(total: int, bins: int) -> Callable[[int], int]:
    """Even bins in log(1 + epoch) over 0..total (snapshots are denser early)."""
    scale = (bins - 1) / math.log1p(max(1, total))
    return lambda epoch: int(math.log1p(max(0, epoch)) * scale)


def linear_bins(total: int, bins: int) -> Callable[[int], int]:
    scale = (bins - 1) / max(1, total)
    return lambda epoch: int(max(0, epoch) * scale)


class PlaneSeries:
    """One estimator's seed-mean (I(X;T), I(T;Y)) per layer, snapshot by snapshot."""

    def __init__(self, total_epochs: int, limit: int = PLANE_POINTS) -> None:
        self.epochs: list[int] = []
        self.xs: list[list[float]] = []  # [layer][snapshot]
        self.ys: list[list[float]] = []
        self.thinning = Thinning(limit, log_bins(total_epochs, limit - 1))

    def add(self, epoch: int, means: list[tuple[float, float]]) -> None:
        if not self.xs:
            self.xs = [[] for _ in means]
            self.ys = [[] for _ in means]
        self.epochs.append(epoch)
        for layer, (x, y) in enumerate(means):
            self.xs[layer].append(x)
            self.ys[layer].append(y)
        self.thinning.add(epoch)

    def __len__(self) -> int:
        return len(self.epochs)

    def latest(self) -> list[tuple[float, float]]:
        return [(xs[-1], ys[-1]) for xs, ys in zip(self.xs, self.ys)]

    def older(self) -> tuple[list[int], list[list[float]], list[list[float]]]:
        """The points to draw before the latest (thinned): epochs, xs per layer, ys per layer."""
        index = self.thinning.indices()[:-1]
        return (
            [self.epochs[i] for i in index],
            [[xs[i] for i in index] for xs in self.xs],
            [[ys[i] for i in index] for ys in self.ys],
        )


@dataclass
class Curves:
    """Loss and accuracy against epoch, seed means (all of them, plus what to draw)."""

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    total_epochs: int = 1
    limit: int = CURVE_POINTS
    max_loss: float | None = None  # the largest finite loss so far, train or test
    has_test_loss: bool = False
    has_test_acc: bool = False
    thinning: Thinning | None = None

    def add(self, s: Snapshot) -> None:
        if self.thinning is None:
            self.thinning = Thinning(self.limit, linear_bins(self.total_epochs, self.limit - 1))
        values = (_mean(s.train_loss), _mean(s.test_loss), _mean(s.train_acc), _mean(s.test_acc))
        self.epochs.append(s.epoch)
        for series, value in zip((self.train_loss, self.test_loss, self.train_acc, self.test_acc), values):
            series.append(value)
        for loss in values[:2]:
            if _finite(loss) and (self.max_loss is None or loss > self.max_loss):
                self.max_loss = loss
        self.has_test_loss = self.has_test_loss or values[1] == values[1]
        self.has_test_acc = self.has_test_acc or values[3] == values[3]
        self.thinning.add(s.epoch)

    def drawn(self, name: str) -> list:
        """The thinned points of one series ("epochs", "train_loss", ...) to draw; ends at the latest."""
        series = getattr(self, name)
        if self.thinning is None or self.thinning.count <= self.thinning.limit:
            return series
        return [series[i] for i in self.thinning.indices()]


@dataclass
class RunState:
    """One run as the screen sees it: started -> snapshots/progress -> ended."""

    run_id: str
    run_dir: Path
    total_epochs: int
    started: RunStarted | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    curves: Curves = field(default_factory=Curves)
    plane: dict[str, PlaneSeries] = field(default_factory=dict)  # per estimator
    epoch: int = 0
    train_loss: float | None = None
    status: str = "starting"  # (watching) starting | running | paused | stopping | finished | interrupted | failed
    reason: str | None = None
    pending: int = 0  # stopping: estimates the engine still finishes (events.Stopping)

    def __post_init__(self) -> None:
        self.curves.total_epochs = self.total_epochs

    @property
    def estimators(self) -> tuple[str, ...]:
        if self.started is not None:
            return tuple(self.started.config.info.estimators)
        return ()

    @property
    def active(self) -> bool:
        return self.status in ("watching", "starting", "running", "paused", "stopping")

    @property
    def warming_up(self) -> bool:
        """Active and no epoch trained yet: preparing the data, or compiling a first run's kernels."""
        return self.active and (self.started is None or self.epoch <= self.started.start_epoch)

    def apply(self, event: Event) -> bool:
        """Take one event in; True when it changed what the plots draw (so they are stale)."""
        if getattr(event, "run_id", self.run_id) != self.run_id:
            return False  # a stale event from an earlier run
        if isinstance(event, RunStarted):
            self.started = event
            self.epoch = event.start_epoch
            if self.status in ("starting", "watching"):
                self.status = "running"
            return True
        elif isinstance(event, Snapshot):
            self.snapshots.append(event)
            self.curves.add(event)
            for estimator in event.mi:
                series = self.plane.get(estimator)
                if series is None:
                    series = self.plane[estimator] = PlaneSeries(self.total_epochs)
                series.add(event.epoch, event.mean_mi(estimator))
            if event.epoch >= self.epoch:  # estimates arrive behind training: keep the newer loss
                self.train_loss = _mean(event.train_loss)
            self.epoch = max(self.epoch, event.epoch)
            return True
        elif isinstance(event, Progress):
            self.epoch = max(self.epoch, event.epoch)
            self.train_loss = event.train_loss
        elif isinstance(event, RunFinished):
            self.epoch = event.epoch
            self.status = event.status
        elif type(event).__name__ == "Stopping":  # engine/events.py's, once the engine yields it
            self.status = "stopping"
            self.pending = int(getattr(event, "pending", 0))
        elif isinstance(event, RunFailed):
            self.epoch = event.epoch
            self.status = "failed"
            self.reason = event.reason
        return False


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


MIN_SPEED_S = 2.0  # training time measured before a speed (and so a time left) is shown


class RunClock:
    """Elapsed wall time of a run, and its training speed, from an injectable clock.

    elapsed() is wall time since the run started: pauses and a first run's kernel compilation
    included, what a watch on the wall says. speed() counts training only: from the first epoch
    reported (so the 20-45 s compilation of a first run does not make the time left read an hour),
    pauses excluded, and None until MIN_SPEED_S of training were measured (a blank beats a guess).
    """

    def __init__(self, now) -> None:
        self._now = now
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._base: tuple[float, int] | None = None  # (time, epoch) of the first reported epoch
        self._paused_at: float | None = None
        self._paused_total = 0.0  # paused time since _base

    def start(self, first_epoch: int = 0) -> None:
        self.started_at = self._now()

    def progressed(self, epoch: int) -> None:
        """An epoch was reported; the first one starts the speed measurement."""
        if self._base is None:
            self._base = (self._now(), epoch)

    @property
    def measuring(self) -> bool:
        """True once training has reported an epoch (before that: preparing or compiling)."""
        return self._base is not None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = self._now()

    def resume(self) -> None:
        if self._paused_at is not None:
            if self._base is not None:
                self._paused_total += self._now() - max(self._paused_at, self._base[0])
            self._paused_at = None

    def stop(self) -> None:
        if self.stopped_at is None:
            self.resume()
            self.stopped_at = self._now()

    def _end(self) -> float:
        return self.stopped_at if self.stopped_at is not None else self._now()

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, self._end() - self.started_at)

    def speed(self, epoch: int) -> float | None:
        if self._base is None:
            return None
        end = self._paused_at if self._paused_at is not None else self._end()
        training = end - self._base[0] - self._paused_total
        done = epoch - self._base[1]
        if training < MIN_SPEED_S or done <= 0:
            return None
        return done / training

    def remaining(self, epoch: int, total: int) -> float | None:
        speed = self.speed(epoch)
        if speed is None:
            return None
        return max(0, total - epoch) / speed
