"""Fast stand-ins for the engine and the PNG exporter, for the TUI tests.

FakeTrainer yields hand-made events with the engine's types and honours RunControl exactly as
the engine does (pause waits, stop ends with status "interrupted"); it runs through a real
RunStore via the real execute(), so the run directory is the ordinary one.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from ibtui.config import RunConfig
from ibtui.engine.control import RunControl
from ibtui.engine.events import Progress, RunFailed, RunFinished, RunStarted, Snapshot
from ibtui.engine.schedule import snapshot_epochs
from ibtui.errors import DataError
from ibtui.runs.store import RunStore

N_SAMPLES = 4096
H_Y = 0.9992


def fake_mi(epoch: int, total: int, layer: int, n_layers: int, seed: int = 0) -> tuple[float, float]:
    """A fitting-then-compression path, deeper layers lower and further left.

    I(X;T) rises for the first fifth of training, then the deeper layers compress (more so for
    later seeds, so an ensemble has a spread); the first layer stays put, and the second wobbles
    by more than it drifts, so `analyse_run` finds compression, none and inconclusive verdicts.
    """
    f = epoch / max(1, total)
    depth = layer / max(1, n_layers - 1)
    late = max(0.0, f - 0.2) / 0.8
    squeeze = 0.0 if layer < 2 else 0.35 * depth * (1 + 0.1 * seed)
    ixt = math.log2(N_SAMPLES) * (0.95 - 0.55 * depth) * (0.85 + 0.15 * min(1.0, f / 0.2)) * (1 - squeeze * late * late)
    if layer == 1:
        ixt += 0.25 * math.sin(1.3 * epoch + seed) + 0.12 * late
    ity = H_Y * (0.15 + 0.8 * (1 - math.exp(-6 * f))) * (1 - 0.1 * depth)
    return round(ixt, 6), round(ity, 6)


class FakeTrainer:
    def __init__(self, config: RunConfig, run_id: str, *, step_delay: float = 0.0, fail_at: int | None = None):
        self.config = config
        self.run_id = run_id
        self.step_delay = step_delay
        self.fail_at = fail_at
        self.saw_pause = threading.Event()
        self.stopped = threading.Event()
        self.finished = threading.Event()
        self.steps = 0  # epochs trained: a test reads it to see that nothing trains while paused
        self.last_epoch = 0  # the last epoch a Progress event was yielded for
        hidden = config.model.hidden
        self.layer_names = (*(f"L{i + 1} {config.model.activation} {w}" for i, w in enumerate(hidden)), "out softmax 2")
        self.layer_widths = (*hidden, 2)

    def _snapshot(self, epoch: int) -> Snapshot:
        total = self.config.train.epochs
        seeds = self.config.train.seeds
        n = len(self.layer_names)
        per_seed = [[list(fake_mi(epoch, total, layer, n, seed)) for layer in range(n)] for seed in range(seeds)]
        f = epoch / max(1, total)
        loss = round(0.69 * math.exp(-3 * f) + 0.05, 6)
        acc = round(0.5 + 0.45 * (1 - math.exp(-4 * f)), 6)
        return Snapshot(
            run_id=self.run_id, epoch=epoch, elapsed_s=0.0,
            train_loss=[loss] * seeds, test_loss=[round(loss * 1.15, 6)] * seeds,
            train_acc=[acc] * seeds, test_acc=[round(acc * 0.95, 6)] * seeds,
            mi={name: per_seed for name in self.config.info.estimators},
        )

    def run(self, control: RunControl | None = None):
        control = control or RunControl()
        config = self.config
        total = config.train.epochs
        schedule = snapshot_epochs(config.info, total)
        yield RunStarted(
            run_id=self.run_id, config=config, layer_names=self.layer_names, layer_widths=self.layer_widths,
            seeds=tuple(range(config.train.seed, config.train.seed + config.train.seeds)),
            n_mi_samples=N_SAMPLES, h_y=H_Y, schedule=tuple(schedule), start_epoch=0, device="cpu",
            dataset="fake 12-bit task", synthetic=True,
        )
        yield self._snapshot(0)
        wanted = set(schedule)
        for epoch in range(1, total + 1):
            if control.paused:
                self.saw_pause.set()
                control.wait_while_paused()
            if control.stop_requested:
                self.stopped.set()
                yield RunFinished(self.run_id, "interrupted", epoch - 1, 0.0)
                return
            if self.step_delay:
                time.sleep(self.step_delay)
            if self.fail_at == epoch:
                yield RunFailed(self.run_id, f"the loss became [nan] at epoch {epoch}; try a smaller learning rate", epoch, 0.0)
                return
            self.steps += 1
            self.last_epoch = epoch
            yield Progress(self.run_id, epoch, total, 0.5, 0.0)
            if epoch in wanted:
                yield self._snapshot(epoch)
        self.finished.set()
        yield RunFinished(self.run_id, "finished", total, 0.0)


class FakeEngine:
    """The app's trainer_factory: builds FakeTrainers on real run stores and remembers them."""

    def __init__(self, *, step_delay: float = 0.0, fail_at: int | None = None, prepare_error: str | None = None):
        self.step_delay = step_delay
        self.fail_at = fail_at
        self.prepare_error = prepare_error
        self.trainers: list[FakeTrainer] = []
        self.configs: list[RunConfig] = []

    def __call__(self, config: RunConfig, run_dir: Path, run_id: str):
        self.configs.append(config)
        if self.prepare_error:
            raise DataError(self.prepare_error)
        trainer = FakeTrainer(config, run_id, step_delay=self.step_delay, fail_at=self.fail_at)
        self.trainers.append(trainer)
        return trainer, RunStore.create(run_dir, config)


class FakeExporter:
    """Writes two placeholder PNG files where export_run would, and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[Path] = []

    def __call__(self, run_dir: Path) -> list[Path]:
        self.calls.append(Path(run_dir))
        paths = [Path(run_dir) / "info_plane.png", Path(run_dir) / "loss.png"]
        for path in paths:
            path.write_bytes(b"\x89PNG fake")
        return paths


class FrozenClock:
    """A clock that only moves when told, so no snapshot depends on wall time."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def rendered(renderable, width: int = 100) -> str:
    """A rich renderable as plain text at `width` columns."""
    from rich.console import Console

    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
