"""A sweep against the same runs started by hand two at a time: `python -m benchmarks.bench_sweep`.

The issue's target: the four pokemon presets x 5 seeds as `ibtui sweep` within 10 % of the wall
clock of `ibtui run` started by hand two at a time (each pair waited for before the next), and
with `--ray` on a local instance within 15 %. Full length (25,000 epochs) takes minutes per
run on 2 cores, so the default is --epochs 2000 (a couple of minutes in all); pass --epochs
25000 for the full figure. The by-hand runs get OMP_NUM_THREADS = cores // 2, as the sweep's
points do, so both sides share the cores the same way. Ray's figure includes starting the local
instance (a few seconds), which a user pays too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRESETS = ("pokemon-relu", "pokemon-tanh", "pokemon-relu-l2", "pokemon-tanh-l2")


def _env(threads: int | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED="0")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def by_hand(root: Path, epochs: int, seeds: int) -> float:
    """`ibtui run` per preset, two at a time, each pair finished before the next starts."""
    threads = max(1, (os.cpu_count() or 2) // 2)
    start = time.perf_counter()
    for i in range(0, len(PRESETS), 2):
        pair = [subprocess.Popen([sys.executable, "-m", "ibtui.cli", "run", "--preset", p, "--epochs", str(epochs),
                                  "--seeds", str(seeds), "--out", str(root / p), "--quiet"],
                                 env=_env(threads), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for p in PRESETS[i:i + 2]]
        for process in pair:
            if process.wait() != 0:
                raise SystemExit(f"ibtui run failed (exit {process.returncode})")
    return time.perf_counter() - start


def sweep(root: Path, epochs: int, seeds: int, ray: bool = False) -> float:
    args = [sys.executable, "-m", "ibtui.cli", "sweep", "--out", str(root), "--grid", "preset=" + ",".join(PRESETS),
            "--epochs", str(epochs), "--seeds", str(seeds), "--workers", "2", "--quiet"]
    if ray:
        args.append("--ray")
    start = time.perf_counter()
    result = subprocess.run(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if result.returncode != 0:
        raise SystemExit(f"ibtui sweep failed: {result.stderr.decode()[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ibtui-bench-sweep-"))
    try:
        hand = by_hand(root / "hand", args.epochs, args.seeds)
        local = sweep(root / "sweep", args.epochs, args.seeds)
        rows = [("by hand, two at a time", hand), ("ibtui sweep --workers 2", local)]
        try:
            import ray  # noqa: F401

            has_ray = not args.no_ray
        except ImportError:
            has_ray = False
        if has_ray:
            rows.append(("ibtui sweep --ray (local instance)", sweep(root / "ray", args.epochs, args.seeds, ray=True)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"4 pokemon presets x {args.seeds} seeds, {args.epochs:,} epochs each, {os.cpu_count()} cores")
    for name, seconds in rows:
        print(f"{name:38} {seconds:8.1f} s  {100 * (seconds / hand - 1):+6.1f} % vs by hand")


if __name__ == "__main__":
    main()
