"""The recorder's overhead: a user's training loop on the 8x8 digits, with and without it.

    python -m benchmarks.bench_recorder [--model cnn|mlp] [--epochs E] [--probe N] [--repeats R]
                                        [--threads T] [--no-png]

The loop (``--model cnn``: the CNN of examples/own_model.py; ``mlp``: Saxe's MNIST widths,
784-1024-20-20-20-10 with ReLU, on the digits upsampled to 28x28, the size of an MNIST model's
work per sample), Adam, batch 128, all 1,797 digits, runs plain and inside ``ibtui.Recorder``
at its defaults (Saxe's schedule over E epochs, every Linear/Conv and activation, kde_upper and
binning, the figures at close), alternating R times in one process after one untimed warm-up
epoch (the first ``torch.optim.Adam`` imports torch._dynamo, seconds that belong to neither).

The user's process, not ibtui's. ``import ibtui`` changes nothing in the host process, so a
user's script runs with OpenMP's wait policy as its environment sets it, usually unset; ibtui's
own commands set PASSIVE (engine/processes.py), which makes torch's two threads 2.5x slower on
this CNN. Run as ``python -m benchmarks...`` (whose package sets ibtui's policy), this module
starts itself again as a plain script with the environment the user gave.

The plain loop runs at torch's thread count (``--threads`` or torch's default, as a user's
script) and, where that is more than one, again on one thread, the count ``torch_threads="auto"``
gives the loop while the estimator process works on 2 cores: two references, the loop as written
and the fastest plain loop. The recorded wall time runs from ``Recorder(...)`` to the end of the
``with`` block, so it includes starting the estimator process, every ``epoch_end``, the wait at
the end for the estimates still running and drawing the figures: all of it the user waits for.
Printed beside it: where the recorder's time went (``Recorder.timings``) and the estimates' own
work, which bounds the overhead from below: on 2 cores the wall is at least (loop + probe
passes + estimates + figures) / 2. CPU seconds of this process and of the estimator process are
printed too: under load the wall times swing, the work does not. The target (issue 16) is an
overhead of at most 10 %.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn


def make_model(kind: str = "cnn") -> nn.Module:
    torch.manual_seed(0)
    if kind == "mlp":
        widths = (784, 1024, 20, 20, 20)
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(20, 10))
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10),
    )


def digits(kind: str = "cnn") -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    if kind == "mlp":
        x = nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    return x, torch.tensor(d.target)


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


def run(kind: str, epochs: int, probe: int, repeats: int, png: bool) -> list[dict[str, float]]:
    import ibtui

    x, y = digits(kind)
    px, py = x[:probe], y[:probe]
    threads = torch.get_num_threads()
    train(make_model(kind), x, y, 1)  # warm-up, untimed
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="bench-recorder-"))
    try:
        for r in range(repeats):
            plain = {}
            for count in dict.fromkeys((threads, 1)):
                torch.set_num_threads(count)
                cpu = time.process_time()
                plain[count] = (train(make_model(kind), x, y, epochs)[0], time.process_time() - cpu)
            torch.set_num_threads(threads)
            model = make_model(kind)
            cpu, children = time.process_time(), _children_cpu()
            started = time.perf_counter()
            with ibtui.Recorder(model, inputs=px, labels=py, out=folder / f"run{r}", epochs=epochs, png=png) as rec:
                loop, waited = train(model, x, y, epochs, rec)
            total = time.perf_counter() - started
            rows.append({"plain": plain, "recorded": total, "loop": loop, "epoch_end": waited,
                         "main_cpu": time.process_time() - cpu, "process_cpu": _children_cpu() - children,
                         "snapshots": len(rec.schedule), **rec.timings})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _children_cpu() -> float:
    """CPU seconds of this process's ended children (the estimator process, once shut down)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _as_the_users_process() -> None:
    """Run again as a plain script when this process carries ibtui's OpenMP policy rather than
    the user's (see the module docstring); returns only in a process that does not."""
    from benchmarks import USER_POLICY
    from ibtui.engine.processes import POLICY_VARIABLE

    if os.environ.get(POLICY_VARIABLE) == USER_POLICY:
        return
    env = dict(os.environ)
    env.pop(POLICY_VARIABLE, None)
    if USER_POLICY is not None:
        env[POLICY_VARIABLE] = USER_POLICY
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    raise SystemExit(subprocess.call([sys.executable, __file__, *sys.argv[1:]], env=env))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("cnn", "mlp"), default="cnn")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--probe", type=int, default=1797, help="probe samples (all 1,797 digits by default)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads of the loop (torch's default if absent)")
    parser.add_argument("--no-png", action="store_true", help="skip the figures at close")
    args = parser.parse_args()
    if __package__:
        _as_the_users_process()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = run(args.model, args.epochs, args.probe, args.repeats, not args.no_png)
    threads = torch.get_num_threads()
    print(f"{args.model} on digits, {args.epochs} epochs, probe {args.probe:,} samples, {rows[0]['snapshots']} snapshots "
          f"(Saxe), torch {threads} thread(s), figures {'off' if args.no_png else 'on'}, "
          f"OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    for i, f in enumerate(rows, 1):
        plain = f["plain"]
        written, fastest = plain[threads][0], min(p[0] for p in plain.values())
        refs = " | ".join(f"plain, {n} thread(s) {p[0]:6.2f} s ({p[1]:.2f} CPU s)" for n, p in plain.items())
        print(f"repeat {i}: {refs} | recorded {f['recorded']:6.2f} s")
        print(f"          overhead {f['recorded'] / written - 1:+.0%} on the loop as written, "
              f"{f['recorded'] / fastest - 1:+.0%} on the fastest plain loop (target <= +10%)")
        print(f"          = loop {f['loop']:.2f} s (in epoch_end {f['epoch_end']:.2f} s, of it probe passes {f['probing']:.2f} s) "
              f"+ waiting for estimates at the end {f['draining']:.2f} s + figures {f['figures']:.2f} s "
              f"+ the rest {f['recorded'] - f['loop'] - f['draining'] - f['figures']:.2f} s")
        print(f"          estimates' own work {f['estimating']:.2f} s ({f['estimating'] / f['snapshots']:.3f} s per snapshot); "
              f"CPU seconds recorded: this process {f['main_cpu']:.2f} + estimator process {f['process_cpu']:.2f}")


if __name__ == "__main__":
    main()
