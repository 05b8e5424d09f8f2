"""grid.png of a sweep: small multiples of every point's information plane, on shared axes.

One panel per point (the mean over seeds of each layer's path, coloured by epoch as in
info_plane.png), all with the same x and y limits so the eye compares like with like. The first
estimator that every point measured is drawn; the panel title names the point.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ibtui.export.png import (
    LAYER_MARKERS, PANEL_TITLE_SIZE, TITLE_SIZE, _cmap, _decimate, _epoch_norm, _limit, _nanmean, _style,
    _summary_float, estimator_title,
)
from ibtui.runs.record import RunRecord

MAX_COLUMNS = 4


def common_estimator(records: list[RunRecord]) -> str | None:
    for name in records[0].estimators:
        if all(name in r.estimators for r in records):
            return name
    return None


def grid_figure(records: list[RunRecord], title: str = "Information planes", columns: int | None = None) -> Figure | None:
    """The small multiples of `records` (each with snapshots); None when there is nothing to draw."""
    records = [r for r in records if r.snapshots]
    if not records:
        return None
    estimator = common_estimator(records)
    if estimator is None:
        return None
    n = len(records)
    cols = columns or min(MAX_COLUMNS, n if n <= 3 else math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    all_epochs = np.concatenate([[s.epoch for s in r.snapshots] for r in records]).astype(float)
    norm, _ = _epoch_norm(all_epochs)
    cmap = _cmap()
    means = []
    x_top = y_top = 0.0
    for record in records:
        values = np.array([s.mi[estimator] for s in record.snapshots], dtype=float)
        means.append(_nanmean(values, axis=1))
        x_top = max(x_top, _limit(_summary_float(record, "max_ixt"), values[..., 0]))
        y_top = max(y_top, _limit(_summary_float(record, "h_y"), values[..., 1]))
    fig = Figure(figsize=(3.4 * cols + 0.8, 3.1 * rows + 0.9), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for index, (record, mean) in enumerate(zip(records, means)):
        ax = axes[index // cols][index % cols]
        epochs = np.array([s.epoch for s in record.snapshots], dtype=float)
        colour = epochs + 1 if isinstance(norm, LogNorm) else epochs
        lines_at = _decimate(epochs, 60)
        paths = LineCollection([mean[i] for i in lines_at], cmap=cmap, norm=norm, linewidths=0.6, alpha=0.5)
        paths.set_array(colour[lines_at])
        ax.add_collection(paths)
        marks = _decimate(epochs, 150)
        for layer in range(mean.shape[1]):
            ax.scatter(mean[marks, layer, 0], mean[marks, layer, 1], c=colour[marks], cmap=cmap, norm=norm, s=12,
                       marker=LAYER_MARKERS[layer % len(LAYER_MARKERS)], linewidths=0, zorder=3)
        seeds = len(record.snapshots[0].train_loss)
        ax.set_title(f"{record.summary.get('name') or record.config.name}" + (f" ({seeds} seeds)" if seeds > 1 else ""),
                     fontsize=PANEL_TITLE_SIZE - 1)
        ax.set_xlim(-0.02 * x_top, 1.04 * x_top)
        ax.set_ylim(-0.02 * y_top, 1.06 * y_top)
        _style(ax)
        if index % cols == 0:
            ax.set_ylabel("I(T;Y) (bits)")
        if index // cols == rows - 1 or index + cols >= n:
            ax.set_xlabel("I(X;T) (bits)")
            ax.xaxis.set_tick_params(labelbottom=True)
    for index in range(n, rows * cols):
        axes[index // cols][index % cols].set_visible(False)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes.ravel().tolist(), pad=0.01, aspect=35, fraction=0.03)
    bar.set_label("epoch (log scale)" if isinstance(norm, LogNorm) else "epoch")
    fig.suptitle(f"{title}\n{estimator_title(estimator, records[0])}; markers: layers (first = circle)", fontsize=TITLE_SIZE)
    return fig
