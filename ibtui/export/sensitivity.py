"""sensitivity.png: layers by estimator settings, colour = I(X;T) drop in %, each cell marked with
its verdict (C compression, - none, ? inconclusive). Reads RUN/sensitivity/sensitivity.json's document."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

MARKS = {"compression": "C", "none": "-", "inconclusive": "?"}


def sensitivity_figure(doc: dict[str, Any]) -> Figure:
    rows = doc["settings"]
    layers = [e["layer"] for e in rows[0]["layers"]] if rows else []
    drops = np.array([[100.0 * (s["layers"][i]["ixt"]["drop_fraction"] or 0.0) for s in rows] for i in range(len(layers))])
    figure = Figure(figsize=(1.2 + 0.75 * max(1, len(rows)), 1.4 + 0.45 * max(1, len(layers))))
    ax = figure.add_subplot()
    image = ax.imshow(drops if drops.size else np.zeros((1, 1)), cmap="viridis", aspect="auto", vmin=0.0)
    for i in range(len(layers)):
        for j, s in enumerate(rows):
            verdict = s["layers"][i]["ixt"]["verdict"]
            ax.text(j, i, f"{MARKS.get(verdict, '?')}\n{drops[i, j]:.0f}%", ha="center", va="center", fontsize=7,
                    color="white" if drops[i, j] < 0.6 * max(1.0, float(drops.max())) else "black")
    short = {"kde_upper": "KDE up", "kde_lower": "KDE low", "binning": "bin"}
    ax.set_xticks(range(len(rows)), [f"{short.get(s['estimator'], s['estimator'])}\n{s['value']:g}" for s in rows], fontsize=7)
    ax.set_yticks(range(len(layers)), layers, fontsize=8)
    ax.set_title("I(X;T) drop after its peak (%) and verdict (C compression, - none, ? inconclusive)", fontsize=8)
    figure.colorbar(image, ax=ax, label="I(X;T) drop, % of peak")
    figure.tight_layout()
    return figure
