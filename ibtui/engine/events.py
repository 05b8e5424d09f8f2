"""The events of a run: the one stream every consumer reads.

The engine (train.py) yields them; the run store, the headless progress display, the TUI and
the PNG exporter consume them. Per-seed values are lists indexed by seed (length 1 for a single
run), so one format serves single runs and ensembles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ibtui.config import RunConfig

# Fields that depend on the clock; everything else in snapshots.jsonl is reproducible.
TIMING_FIELDS = ("elapsed_s",)


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    config: RunConfig
    layer_names: tuple[str, ...]  # the measured layers, e.g. "L1 tanh 10", ..., "out softmax 2"
    layer_widths: tuple[int, ...]
    seeds: tuple[int, ...]
    n_mi_samples: int  # N of the MI estimates: I(X;T) <= log2 N
    h_y: float  # H(Y) of the MI sample set, in bits: I(T;Y) <= H(Y)
    schedule: tuple[int, ...]  # the snapshot epochs
    start_epoch: int  # > 0 when resumed
    device: str
    dataset: str  # the dataset's one-line description
    synthetic: bool

    @property
    def max_ixt(self) -> float:
        import math

        return math.log2(self.n_mi_samples)


@dataclass(frozen=True)
class Progress:
    """Sent a few times per second between snapshots, for progress bars."""

    run_id: str
    epoch: int
    total_epochs: int
    train_loss: float  # mean over seeds of the last minibatch losses
    elapsed_s: float


@dataclass(frozen=True)
class Snapshot:
    run_id: str
    epoch: int
    elapsed_s: float
    train_loss: list[float]  # per seed; cross-entropy only (the L2 term is not included)
    test_loss: list[float]
    train_acc: list[float]
    test_acc: list[float]
    mi: dict[str, list[list[list[float]]]]  # estimator -> seed -> layer -> [I(X;T), I(T;Y)] in bits
    grad: dict[str, list[list[float]]] | None = None  # "mean"/"std" -> seed -> layer: gradient norms
    # With info.save_activations: per layer, (seeds, N, width) float16 arrays; never in the JSONL.
    activations: list[Any] | None = field(default=None, repr=False, compare=False)

    def to_record(self) -> dict[str, Any]:
        record = {k: v for k, v in self.__dict__.items() if k not in ("run_id", "activations")}
        if record["grad"] is None:
            del record["grad"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any], run_id: str = "") -> Snapshot:
        return cls(run_id=run_id, grad=record.get("grad"), **{k: v for k, v in record.items() if k != "grad"})

    def mean_mi(self, estimator: str) -> list[tuple[float, float]]:
        """Per layer, the mean over seeds of (I(X;T), I(T;Y))."""
        per_seed = self.mi[estimator]
        n = len(per_seed)
        return [
            (sum(s[layer][0] for s in per_seed) / n, sum(s[layer][1] for s in per_seed) / n)
            for layer in range(len(per_seed[0]))
        ]


@dataclass(frozen=True)
class Checkpoint:
    """The full training state at a step boundary; the store writes it atomically."""

    run_id: str
    epoch: int  # completed epochs
    state: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Stopping:
    """A stop was asked: training has stopped and `pending` snapshot estimates are still to come."""

    pending: int


@dataclass(frozen=True)
class RunFinished:
    run_id: str
    status: str  # "finished" | "interrupted"
    epoch: int
    elapsed_s: float


@dataclass(frozen=True)
class RunFailed:
    run_id: str
    reason: str
    epoch: int
    elapsed_s: float


Event = RunStarted | Progress | Snapshot | Checkpoint | Stopping | RunFinished | RunFailed
