"""Benchmark of `ibtui sensitivity`: where the work of re-estimating a run at 4 x 4 settings goes.

Run as `python -m benchmarks.bench_sensitivity [RUN] [--files K]` from the repository root. RUN is
a run trained with --save-activations (default: synthetic tanh-preset snapshots, 6 layers of
widths 10, 7, 5, 4, 3, 2 on N = 4096 samples, 2 classes). K of its snapshot files (spread over
the run) are estimated in this process, one torch thread, exactly as an estimator process does
(runs.sensitivity.file_estimates: 4 KDE noise variances and 4 binning bin sizes per file); the
compiled KDE kernel's own time (triangle_sums) is summed beside the total. Both are scaled to
the full tanh preset's 212 snapshots over 2 estimator processes: the kernel's share is the lower
bound that only a faster kernel can lower. Target (issue 15): the whole command under 2 minutes
on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ibtui.config import InfoConfig
from ibtui.estimators import _kde_cpu
from ibtui.runs import sensitivity as sens

WIDTHS = (10, 7, 5, 4, 3, 2)
N = 4096
SNAPSHOTS = 212  # the tanh preset's Saxe schedule over 10,000 epochs
PROCESSES = 2


def _synthetic(folder: Path, count: int) -> tuple[list[Path], np.ndarray, InfoConfig]:
    """`count` snapshot files of tanh-like float16 activations, saved as --save-activations does."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, 12))
    paths = []
    for k in range(count):
        layers, h = {}, x
        for i, width in enumerate(WIDTHS):
            h = np.tanh(h @ rng.normal(scale=(1 + k) / np.sqrt(h.shape[1]), size=(h.shape[1], width)))
            layers[f"layer{i}"] = h[None].astype(np.float16)
        paths.append(folder / f"epoch_{k:07d}.npz")
        np.savez(paths[-1], **layers)
    return paths, (x[:, 0] > 0).astype(np.int64), InfoConfig()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--files", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is None:
            paths, labels, info = _synthetic(Path(tmp), args.files)
        else:
            from ibtui.runs.reestimate import activation_files, mi_labels
            from ibtui.runs.record import load_run

            record = load_run(args.run)
            every = [p for _, p in activation_files(args.run)]
            paths = every[:: max(1, len(every) // args.files)][: args.files]
            labels, info = mi_labels(record.config), record.config.info
        infos = [replace(info, estimators=("kde_upper",), n_bins=None, noise_variance=v) for v in sens.NOISE_VARIANCES]
        infos += [replace(info, estimators=("binning",), n_bins=None, bin_size=v) for v in sens.BIN_SIZES]
        sens.file_estimates(paths[0], labels, infos)  # numba's cache loaded, as in a warm process
        kernel = [0.0]
        real = _kde_cpu.triangle_sums

        def timed(*a):
            started = time.thread_time()
            real(*a)
            kernel[0] += time.thread_time() - started

        _kde_cpu.triangle_sums = timed
        try:
            started, wall = time.process_time(), time.perf_counter()
            for path in paths:
                sens.file_estimates(path, labels, infos)
            cpu, wall = time.process_time() - started, time.perf_counter() - wall
        finally:
            _kde_cpu.triangle_sums = real
    per_file, kernel_per_file = cpu / len(paths), kernel[0] / len(paths)
    scale = SNAPSHOTS / PROCESSES
    print(f"{len(paths)} files x {len(infos)} settings, one thread: {cpu:.2f} s CPU ({wall:.2f} s wall), "
          f"of which the KDE kernel {kernel[0]:.2f} s ({100 * kernel[0] / cpu:.0f} %)")
    print(f"per file: {1000 * per_file:.0f} ms, kernel {1000 * kernel_per_file:.0f} ms, the rest {1000 * (per_file - kernel_per_file):.0f} ms")
    print(f"{SNAPSHOTS} snapshots over {PROCESSES} processes: {per_file * scale:.1f} s of estimating, "
          f"the kernel alone {kernel_per_file * scale:.1f} s (lower bound); target: the command in < 120 s")


if __name__ == "__main__":
    main()
