"""Benchmarks of the training engine against the obvious PyTorch version, in the same process.

    python -m benchmarks.bench_train [--quick]

Figures (2 threads available; ibtui trains on one and estimates on all):
- training the tanh preset, ms per epoch without snapshots, over >= 1,000 epochs (target 1.5 ms);
  the reference is nn.Sequential + torch.optim.Adam + CrossEntropyLoss over randperm minibatches;
- 10 seeds as one batched model versus 1 seed (target: at most 3x the wall-clock, MI excluded),
  and both on the torch step (CUDA's backend, and the CPU's fallback where numba cannot load);
- the full tanh preset end to end: training, 212 snapshots of KDE upper + binning, the run
  store and the PNGs (target 20 s); --quick runs 1,000 epochs of it instead.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

from benchmarks.common import format_table, row
from ibtui.data import load_dataset
from ibtui.runs.presets import load_preset
from ibtui.runs.runner import execute, prepare_run
from ibtui.engine import trainer as train
from ibtui.engine.model import stacked_mlp
from ibtui.engine.trainer import Trainer

NO_SNAPSHOTS = {"info.schedule": "every", "info.every": 10**9, "info.grad_snr": False, "info.estimators": ("binning",)}


def reference_training(epochs: int, seed: int = 0) -> None:
    """The way one would write it: nn.Sequential, torch.optim.Adam, a randperm loop, no DataLoader."""
    torch.manual_seed(seed)
    data = load_dataset("tishby")
    x = torch.as_tensor(data.x[data.train_idx])
    y = torch.as_tensor(data.y[data.train_idx])
    widths = (12, 10, 7, 5, 4, 3, 2)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-4)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 256):
            idx = order[start : start + 256]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()


def reference_in_plain_process(epochs: int, repeats: int) -> list[float]:
    """ms per epoch of reference_training, run as a plain PyTorch script would run: in a process
    without ibtui's OpenMP policy, so OpenMP keeps its default (spinning) wait policy. Here
    (benchmarks/__init__.py sets ibtui's PASSIVE policy, as the CLI does) the reference's
    two-thread torch ops would wake a sleeping thread every time."""
    code = (
        "import torch, time, sys\n"  # first: libgomp reads OMP_WAIT_POLICY when torch loads it
        "torch.set_num_threads(2)\n"
        "from benchmarks.bench_train import reference_training\n"
        f"for _ in range({repeats}):\n"
        "    t0 = time.perf_counter()\n"
        f"    reference_training({epochs})\n"
        f"    print((time.perf_counter() - t0) / {epochs} * 1e3)\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                            cwd=Path(__file__).resolve().parent.parent)
    return [float(line) for line in result.stdout.split()]


def ibtui_training(epochs: int, seeds: int = 1, backend: str = "auto") -> float:
    """Seconds per epoch of the engine's loop alone (snapshot at epoch 0 and the end excluded)."""
    config = load_preset("tanh").with_overrides({**NO_SNAPSHOTS, "train.epochs": epochs, "train.seeds": seeds})
    with mock.patch.object(train, "stacked_mlp", functools.partial(stacked_mlp, backend=backend)):
        trainer = Trainer(config)
    first = last = None
    for event in trainer.run():
        kind = type(event).__name__
        if kind == "Snapshot" and event.epoch == 0:
            first = time.perf_counter()
        elif kind == "Progress" and event.epoch == epochs:
            last = time.perf_counter()
    return (last - first) / epochs


def end_to_end(epochs: int | None) -> float:
    from ibtui.export.png import export_run

    config = load_preset("tanh")
    if epochs:
        config = config.with_overrides({"train.epochs": epochs})
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        trainer, store = prepare_run(config, Path(root) / "run")
        execute(trainer, store)
        export_run(Path(root) / "run")
        return time.perf_counter() - t0


def run(quick: bool) -> list[dict]:
    torch.set_num_threads(2)
    epochs = 1000 if quick else 2000
    repeats = 3
    ours = [ibtui_training(epochs) * 1e3 for _ in range(repeats)]
    ref_epochs = max(100, epochs // 10)
    ref = reference_in_plain_process(ref_epochs, repeats)
    rows = [row(f"train tanh preset, per epoch ({epochs} epochs)", ours, ref,
                f"target 1.5 ms; reference (nn.Sequential + torch Adam) {min(ref) / min(ours):.1f}x slower")]

    for backend in ("auto", "torch"):
        one, ten = [], []
        for _ in range(repeats):  # interleaved, so a busy spell of the machine hits both alike
            one.append(ibtui_training(epochs // 2, seeds=1, backend=backend) * 1e3)
            ten.append(ibtui_training(epochs // 2, seeds=10, backend=backend) * 1e3)
        label = "" if backend == "auto" else ", torch step"
        rows.append(row(f"train 10 seeds batched, per epoch{label}", ten, None,
                        f"{min(ten) / min(one):.2f}x one seed ({min(one):.2f} ms)" + ("; target <= 3x" if not label else "")))

    e2e_epochs = 1000 if quick else None
    seconds = end_to_end(e2e_epochs)
    label = f"{e2e_epochs:,} epochs" if e2e_epochs else "full 10,000 epochs"
    rows.append(row(f"tanh preset end to end ({label})", [seconds * 1e3], None,
                    "training + 212 snapshots (KDE upper, binning) + store + PNGs; target 20 s for the full preset"
                    if not e2e_epochs else "training + snapshots + store + PNGs; one run"))
    return rows


if __name__ == "__main__":
    print(format_table(run(quick="--quick" in sys.argv)))
