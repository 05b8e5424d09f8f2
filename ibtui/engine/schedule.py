"""At which epochs to take an information snapshot.

Epoch e means "after e epochs of training"; epoch 0 is the network at initialisation. Every
schedule includes 0 and the last epoch, so the start and the end of a run are always measured.
"""

from __future__ import annotations

import numpy as np

from ibtui.config import InfoConfig


def saxe_epochs(epochs: int) -> list[int]:
    """Saxe et al.'s schedule: every epoch < 20, every 5th < 100, every 20th < 2000, then every 100th."""
    chosen = [e for e in range(epochs + 1) if _saxe_keeps(e)]
    if chosen[-1] != epochs:
        chosen.append(epochs)
    return chosen


def _saxe_keeps(epoch: int) -> bool:
    if epoch < 20:
        return True
    if epoch < 100:
        return epoch % 5 == 0
    if epoch < 2000:
        return epoch % 20 == 0
    return epoch % 100 == 0


def log_epochs(epochs: int, count: int) -> list[int]:
    """About `count` epochs spaced evenly in log(1 + epoch), without repeats."""
    points = np.unique(np.round(np.expm1(np.linspace(0.0, np.log1p(epochs), count))).astype(int))
    return sorted({0, epochs, *points.tolist()})


def every_epochs(epochs: int, step: int) -> list[int]:
    return sorted({*range(0, epochs + 1, step), epochs})


def snapshot_epochs(info: InfoConfig, epochs: int) -> list[int]:
    if info.schedule == "saxe":
        return saxe_epochs(epochs)
    if info.schedule == "log":
        return log_epochs(epochs, info.snapshots)
    return every_epochs(epochs, info.every)
