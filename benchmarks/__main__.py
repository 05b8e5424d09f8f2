"""Every benchmark, one table: `python -m benchmarks [--quick]` from the repository root.

Each figure is the median (min, max) of several repeats and, where the issue asks for it, the
same work done in the same process by a plain reference implementation, so the ratio holds on a
noisy machine. Timings are never part of the test suite.
"""

from __future__ import annotations

import sys

import torch

from benchmarks import bench_kde_wide, bench_mi, bench_train
from benchmarks.common import format_table


def main() -> None:
    quick = "--quick" in sys.argv
    rows = bench_mi.run(quick) + bench_kde_wide.run(quick) + bench_train.run(quick)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu{' (quick)' if quick else ''}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
