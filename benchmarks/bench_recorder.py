"""The recorder's overhead: a small CNN's training loop on the 8x8 digits, with and without it.

    python -m benchmarks.bench_recorder [--epochs E] [--probe N] [--repeats R] [--threads T] [--no-png]

The same loop (the CNN of examples/own_model.py, Adam, batch 128, all 1,797 digits) runs plain
and inside ``ibtui.Recorder`` at its defaults (Saxe's schedule over E epochs, every Linear/Conv
and activation, kde_upper and binning, the figures at close), alternating plain and recorded
R times in one process after one untimed warm-up epoch (the first ``torch.optim.Adam`` imports
torch._dynamo, seconds that belong to neither). Torch keeps its own thread count unless
``--threads`` is given, as in a user's script.

What counts: the recorded wall time runs from ``Recorder(...)`` to the end of the ``with``
block, so it includes starting the estimator process, every ``epoch_end``, the wait at the end
for the estimates still running and drawing the figures: all of it the user waits for. The
overhead is that over the plain loop of the same repeat. Printed beside it: where the recorder's
time went (``Recorder.timings``: probe passes in the loop, waiting at the end, figures) and the
estimates' own work in seconds, which on 2 cores bounds the overhead from below: one core trains,
the other estimates, so the wall is at least the estimating time plus the last snapshot's.
CPU seconds (this process, and the estimator process once ended, which also imports matplotlib
while it idles and draws the figures at close) are printed too: under load the wall times swing,
the work does not. The target (issue 16) is an overhead of at most 10 %.
"""

from __future__ import annotations

import argparse
import resource
import shutil
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


def run(epochs: int, probe: int, repeats: int, png: bool) -> list[dict[str, float]]:
    import ibtui

    x, y = digits()
    px, py = x[:probe], y[:probe]
    train(make_model(), x, y, 1)  # warm-up, untimed
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    try:
        for r in range(repeats):
            cpu = time.process_time()
            plain, _ = train(make_model(), x, y, epochs)
            plain_cpu = time.process_time() - cpu
            model = make_model()
            cpu, children = time.process_time(), _children_cpu()
            started = time.perf_counter()
            with ibtui.Recorder(model, inputs=px, labels=py, out=folder / f"run{r}", epochs=epochs, png=png) as rec:
                loop, waited = train(model, x, y, epochs, rec)
            total = time.perf_counter() - started
            rows.append({"plain": plain, "recorded": total, "loop": loop, "epoch_end": waited,
                         "plain_cpu": plain_cpu, "main_cpu": time.process_time() - cpu,
                         "process_cpu": _children_cpu() - children, "snapshots": len(rec.schedule), **rec.timings})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _children_cpu() -> float:
    """CPU seconds of this process's ended children (the estimator process, once shut down)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--probe", type=int, default=1797, help="probe samples (all 1,797 digits by default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the loop (torch's default if absent)")
    parser.add_argument("--no-png", action="store_true", help="skip the figures at close")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.epochs, args.probe, args.repeats, not args.no_png)
    print(f"small CNN on digits, {args.epochs} epochs, probe {args.probe:,} samples, {rows[0]['snapshots']} snapshots "
          f"(Saxe), torch {torch.get_num_threads()} thread(s), figures {'off' if args.no_png else 'on'}")
    for i, f in enumerate(rows, 1):
        print(f"repeat {i}: plain {f['plain']:6.2f} s | recorded {f['recorded']:6.2f} s, overhead "
              f"{f['recorded'] / f['plain'] - 1:+.0%} (target <= +10%) = loop {f['loop']:.2f} s "
              f"(in epoch_end {f['epoch_end']:.2f} s, of it probe passes {f['probing']:.2f} s) "
              f"+ waiting for estimates at the end {f['draining']:.2f} s + figures {f['figures']:.2f} s "
              f"+ the rest {f['recorded'] - f['loop'] - f['draining'] - f['figures']:.2f} s")
        print(f"          estimates' own work {f['estimating']:.2f} s = {f['estimating'] / f['plain']:.0%} of the plain "
              f"loop ({f['estimating'] / f['snapshots']:.3f} s per snapshot); CPU seconds: plain loop "
              f"{f['plain_cpu']:.2f}, recorded: this process {f['main_cpu']:.2f} + estimator process {f['process_cpu']:.2f}")


if __name__ == "__main__":
    main()
