"""The recorder's overhead: a small CNN's training loop on the 8x8 digits, with and without it.

    python -m benchmarks.bench_recorder [--epochs E] [--probe N] [--repeats R]

The same loop (the CNN of examples/own_model.py, Adam, batch 128, one torch thread as on a
2-core box where the other core estimates) runs plain and inside ``ibtui.Recorder`` at the
default schedule (Saxe's over E epochs) and default layers, each from the same seed. Printed
side by side: the wall time of each, the recorder's share of it split into what the loop waited
in ``epoch_end`` (probe forward passes, copies, a full estimate queue) and the wait at the end
for the estimates still running (the drain); the figures are drawn separately (``png=False``
here, their cost printed on its own line). The target (issue 16) is an overhead of at most 10 %.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10),
    )


def digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0, torch.tensor(d.target)


def train(model, x, y, epochs: int, rec=None) -> tuple[float, float]:
    """(seconds of the loop, seconds spent inside rec.epoch_end)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    in_recorder = 0.0
    started = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(128):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if rec is not None:
            t = time.perf_counter()
            rec.epoch_end(epoch, train_loss=loss.item())
            in_recorder += time.perf_counter() - t
    return time.perf_counter() - started, in_recorder


def run(epochs: int, probe: int, repeats: int) -> dict[str, list[float]]:
    import ibtui

    x, y = digits()
    px, py = x[:probe], y[:probe]
    figures: dict[str, list[float]] = {k: [] for k in ("plain", "recorded", "epoch_end", "drain", "png", "snapshots")}
    folder = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    try:
        for r in range(repeats):
            plain, _ = train(make_model(), x, y, epochs)
            out = folder / f"run{r}"
            model = make_model()
            started = time.perf_counter()
            rec = ibtui.Recorder(model, inputs=px, labels=py, out=out, epochs=epochs, png=False)
            with rec:
                _, waited = train(model, x, y, epochs, rec)
                drain_from = time.perf_counter()
            total = time.perf_counter() - started
            figures["plain"].append(plain)
            figures["recorded"].append(total)
            figures["epoch_end"].append(waited)
            figures["drain"].append(time.perf_counter() - drain_from)
            figures["snapshots"].append(len(rec.schedule))
            t = time.perf_counter()
            from ibtui.export.png import export_run

            export_run(out)
            figures["png"].append(time.perf_counter() - t)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--probe", type=int, default=1797, help="probe samples (all 1,797 digits by default)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    f = run(args.epochs, args.probe, args.repeats)
    med = {k: statistics.median(v) for k, v in f.items()}
    overhead = med["recorded"] / med["plain"] - 1
    print(f"small CNN on digits, {args.epochs} epochs, probe {args.probe:,} samples, "
          f"{int(med['snapshots'])} snapshots (Saxe), torch 1 thread, median of {args.repeats}")
    print(f"{'plain loop':28} {med['plain']:8.2f} s")
    print(f"{'loop with the recorder':28} {med['recorded']:8.2f} s   overhead {overhead:+.1%} (target <= +10%)")
    print(f"{'  of which in epoch_end':28} {med['epoch_end']:8.2f} s")
    print(f"{'  of which the final drain':28} {med['drain']:8.2f} s")
    print(f"{'figures at close (PNG)':28} {med['png']:8.2f} s   (not in the overhead above)")


if __name__ == "__main__":
    main()
