"""mi_curves.png: I(X;T) and I(T;Y) against epoch (log x) per layer, one row of panels per
estimator, the seed mean with a band of +-1 standard deviation: when compression starts.

The x axis is the other figures' (png._epoch_axis): a log scale of epoch + 1 whose ticks name the
epochs, so epoch 0 (the untrained network) has its own place, left of epoch 1, and every
snapshot its own x. Drawing epoch 0 at 1 on a log axis of the epoch itself would put it on top
of epoch 1 and show the change over the first epoch as a vertical jump."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

MI_CURVES_FILE = "mi_curves.png"


def mi_curves_figure(record) -> Figure | None:
    snapshots = [s for s in record.snapshots if s.mi]
    if not snapshots:
        return None
    from ibtui.export.png import _epoch_axis  # png imports this module: imported when drawn

    names = list(snapshots[0].mi)
    epochs = np.array([s.epoch for s in snapshots], dtype=float)
    figure = Figure(figsize=(10.0, 3.0 * len(names)), layout="constrained")
    axes = figure.subplots(len(names), 2, squeeze=False)
    for row, name in enumerate(names):
        values = np.array([s.mi[name] for s in snapshots], dtype=float)  # (snapshots, seeds, layers, 2)
        n_layers = values.shape[2]
        layer_names = record.layer_names if len(record.layer_names) == n_layers else [f"layer {i + 1}" for i in range(n_layers)]
        for q, title in enumerate(("I(X;T)", "I(T;Y)")):
            ax = axes[row][q]
            for layer in range(n_layers):
                mean = values[:, :, layer, q].mean(axis=1)
                line, = ax.plot(epochs + 1, mean, lw=1.2, label=layer_names[layer])
                if values.shape[1] > 1:
                    sd = values[:, :, layer, q].std(axis=1)
                    ax.fill_between(epochs + 1, mean - sd, mean + sd, color=line.get_color(), alpha=0.2, lw=0)
            # plain tick labels (log axes default to mathtext, whose parser is not thread-safe)
            _epoch_axis(ax, epochs)
            ax.set_title(f"{name}: {title} (bits)", fontsize=9)
    axes[0][1].legend(fontsize=7, loc="best")
    seeds = values.shape[1]
    figure.suptitle(f"{record.config.name}: seed mean" + (f" with +-1 sd band over {seeds} seeds" if seeds > 1 else " (1 seed)"), fontsize=10)
    return figure
