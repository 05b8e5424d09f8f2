"""Up to four runs on one information plane: a colour per run, a legend, shared axes.

Each run draws every layer's seed-mean path (I(X;T), I(T;Y)) through its snapshots as a line in
the run's colour, and its last snapshot with the layer markers of the main plane (1, 2, ...,
o for the output), so where each run ended reads at a glance, as W&B's terminal viewer overlays
metric curves. A run keeps its colour for as long as it stays selected (RunsScreen assigns the
slots), so the same run is the same colour on the plane and in the legend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ibtui.tui.widgets.info_plane import layer_marker, rgb

# Okabe-Ito colours (distinct for the common colour-vision deficiencies), one per overlay slot.
RUN_COLOURS = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (204, 121, 167))
MAX_OVERLAY = len(RUN_COLOURS)
PATH_POINTS = 120  # the most snapshots drawn per layer path (evenly thinned; the last always kept)


@dataclass
class OverlayRun:
    """One run's seed-mean paths, per estimator: {estimator: [layer][(ixt, ity) per snapshot]}."""

    name: str
    path: Path
    slot: int
    layer_names: list[str]
    epochs: list[int]
    paths: dict[str, list[list[tuple[float, float]]]]
    max_ixt: float
    h_y: float

    @property
    def colour(self) -> tuple[int, int, int]:
        return RUN_COLOURS[self.slot]


def load_overlay_run(path: Path, name: str, slot: int) -> OverlayRun:
    """Read a run directory (read-only); a StoreError when it is not one."""
    from ibtui.runs.record import load_run

    record = load_run(path)
    paths: dict[str, list[list[tuple[float, float]]]] = {}
    for estimator in record.estimators:
        means = [s.mean_mi(estimator) for s in record.snapshots if estimator in s.mi]
        layers = len(means[0]) if means else 0
        paths[estimator] = [[m[layer] for m in means] for layer in range(layers)]
    summary = record.summary
    n = summary.get("n_mi_samples")
    max_ixt = float(summary.get("max_ixt") or (math.log2(n) if n else 0.0))
    h_y = float(summary.get("h_y") or 1.0)
    names = record.layer_names or [f"layer {i + 1}" for i in range(max((len(p) for p in paths.values()), default=0))]
    return OverlayRun(name, Path(path), slot, names, [s.epoch for s in record.snapshots], paths, max_ixt, h_y)


def common_estimators(runs: list[OverlayRun]) -> list[str]:
    """The estimators every run measured, in the first run's order."""
    if not runs:
        return []
    return [e for e in runs[0].paths if all(e in r.paths and r.paths[e] for r in runs)]


def thin(points: list[tuple[float, float]], limit: int = PATH_POINTS) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return points
    step = (len(points) - 1) / (limit - 1)
    return [points[round(i * step)] for i in range(limit)]


class OverlayPlot(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_subtitle = "x: I(X;T)   y: I(T;Y)   bits"
        self.drawn: list[tuple[str, int]] = []  # (run name, layers drawn): what the last show() put on

    def show(self, runs: list[OverlayRun], estimator: str | None) -> None:
        plt = self.plt
        plt.clear_figure()
        self.drawn = []
        self.border_title = f"Information plane · {len(runs)} runs · {estimator or 'no estimator in common'}"
        plt.xlim(0, max((r.max_ixt for r in runs), default=12) or 12)
        plt.ylim(0, max((r.h_y for r in runs), default=1) or 1)
        plt.xfrequency(5)
        plt.yfrequency(5)
        if estimator is None:
            plt.title("these runs share no estimator")
            self.refresh()
            return
        for run in runs:  # paths first, every run's end points on top
            for layer_path in run.paths[estimator]:
                points = thin(layer_path)
                if len(points) > 1:
                    plt.plot([p[0] for p in points], [p[1] for p in points], marker="braille", color=run.colour)
        for run in runs:
            layers = run.paths[estimator]
            for layer, layer_path in enumerate(layers):
                if layer_path:
                    name = run.layer_names[layer] if layer < len(run.layer_names) else ""
                    plt.scatter([layer_path[-1][0]], [layer_path[-1][1]], marker=layer_marker(layer, name),
                                color=run.colour, style="bold")
            self.drawn.append((run.name, len(layers)))
        self.refresh()


class OverlayLegend(Static):
    """━━ name (last epoch) per run, in its colour; then what the markers mean."""

    def show(self, runs: list[OverlayRun]) -> None:
        text = Text()
        for run in runs:
            text.append("━━ ", style="bold " + rgb(run.colour))
            text.append(run.name, style=rgb(run.colour))
            text.append(f" ({run.epochs[-1]:,})  " if run.epochs else " (no snapshots)  ", style="dim")
        text.append("\nlines: each layer's path · 1 2 … o: where each layer ended", style="dim")
        self.update(text)
