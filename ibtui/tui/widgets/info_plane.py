"""The information plane: I(X;T) against I(T;Y), one marker per layer, colour by epoch.

Axes are fixed to the run's bounds (0..log2 N, 0..H(Y)) so the picture does not jump as points
arrive. Each layer is drawn with its own character (1, 2, ... for hidden layers, o for the
output), every point is coloured by its epoch on a dark-to-bright scale (log epoch, since
snapshots are denser early), and the latest snapshot is drawn on top in a contrasting colour,
joined layer to layer, so the eye finds "now" at once. With several seeds the seed mean is drawn.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.widgets import Static
from textual_plotext import PlotextPlot

from ibtui.engine.events import RunStarted
from ibtui.tui.runstate import PlaneSeries

# A viridis-like ramp: dark violet (early) to bright yellow (late).
RAMP = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
LATEST = (255, 85, 85)
LATEST_LINE = (200, 200, 200)
# Under NO_COLOR Textual turns every colour into its grey of equal luminance: viridis's dark violet
# became grey 233 on a grey 234 background (invisible) and the red latest point a dull grey. So
# there the ramp runs from mid grey to white (brightness still says early or late) and the latest
# points are drawn inverted (a block with the layer's marker cut out), readable in any palette.
MONO_RAMP = ((120, 120, 120), (255, 255, 255))
MONO_LATEST = (255, 255, 255)


def ramp_colour(fraction: float, monochrome: bool = False) -> tuple[int, int, int]:
    ramp = MONO_RAMP if monochrome else RAMP
    fraction = min(1.0, max(0.0, fraction))
    position = fraction * (len(ramp) - 1)
    low = min(int(position), len(ramp) - 2)
    t = position - low
    a, b = ramp[low], ramp[low + 1]
    return tuple(round(a[k] + (b[k] - a[k]) * t) for k in range(3))  # type: ignore[return-value]


def rgb(colour: tuple[int, int, int]) -> str:
    return "rgb({},{},{})".format(*colour)


def epoch_fraction(epoch: int, total: int) -> float:
    return math.log1p(epoch) / math.log1p(total) if total > 0 else 1.0


RAMP_STEPS = 10  # colour bands of the epoch scale: the legend's ten cells, one plotext call each


def epoch_band(epoch: int, total: int) -> int:
    return min(RAMP_STEPS - 1, int(epoch_fraction(epoch, total) * RAMP_STEPS))


def layer_marker(index: int, name: str) -> str:
    if name.startswith("out"):
        return "o"
    return str(index + 1) if index < 9 else chr(ord("a") + index - 9)


class InfoPlanePlot(PlotextPlot):
    """Redrawn by the app only when the run's data changed (RunState.apply says when)."""

    can_focus = True

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Information plane"
        self.border_subtitle = "x: I(X;T)   y: I(T;Y)   bits"
        self._draw_empty()

    def _draw_empty(self, message: str = "set up a run and press s") -> None:
        plt = self.plt
        plt.clear_figure()
        plt.title(message)
        plt.xlim(0, 12)
        plt.ylim(0, 1)
        plt.xfrequency(5)
        plt.yfrequency(5)

    def show_empty(self, message: str) -> None:
        self._draw_empty(message)
        self.refresh()

    def show(self, started: RunStarted, series: PlaneSeries | None, estimator: str, latest_epoch: int | None = None,
             waiting: str = "waiting for the first snapshot…") -> None:
        """Draw one estimator's series: the older points thinned (RunState keeps at most
        PLANE_POINTS of them), the latest on top, highlighted and joined layer to layer."""
        plt = self.plt
        plt.clear_figure()
        total = started.config.train.epochs
        seeds = len(started.seeds)
        if latest_epoch is None:
            latest_epoch = series.epochs[-1] if series else started.start_epoch
        mean = f"mean of {seeds} seeds · " if seeds > 1 else ""
        self.border_title = f"Information plane · {estimator} · {mean}epoch {latest_epoch:,}"
        plt.xlim(0, started.max_ixt)
        plt.ylim(0, started.h_y)
        plt.xfrequency(5)
        plt.yfrequency(5)
        if not series:
            plt.title(waiting)
            self.refresh()
            return
        draw_points(plt, started.layer_names, series, total, self.app.no_color)
        self.refresh()


def draw_points(plt, layer_names, series: PlaneSeries, total_epochs: int, monochrome: bool = False) -> None:
    """The older points by epoch band (RAMP_STEPS colours, oldest first), then the latest on top.

    plotext de-duplicates each call's points through a set, so where one call's points share a
    terminal cell, which one shows depends on Python's hash seed. Each call here holds points of
    one layer marker and one colour (overlaps within it look the same), and calls are made
    oldest band first: later epochs are drawn over earlier ones, the same on every run."""
    epochs, older_xs, older_ys = series.older()
    bands: dict[int, list[int]] = {}
    for index, epoch in enumerate(epochs):
        bands.setdefault(epoch_band(epoch, total_epochs), []).append(index)
    for band in sorted(bands):
        colour = ramp_colour(band / (RAMP_STEPS - 1), monochrome)
        chosen = bands[band]
        for layer, name in enumerate(layer_names):
            plt.scatter([older_xs[layer][i] for i in chosen], [older_ys[layer][i] for i in chosen],
                        marker=layer_marker(layer, name), color=colour)
    last = series.latest()
    lx, ly = [p[0] for p in last], [p[1] for p in last]
    if len(last) > 1:
        plt.plot(lx, ly, marker="braille", color=MONO_LATEST if monochrome else LATEST_LINE)
    for layer, name in enumerate(layer_names):
        plt.scatter([lx[layer]], [ly[layer]], marker=layer_marker(layer, name),
                    color=MONO_LATEST if monochrome else LATEST, style="bold inverted" if monochrome else "bold")


class PlaneLegend(Static):
    """What the colours and markers of the information plane mean."""

    def show(self, started: RunStarted | None) -> None:
        text = Text()
        total = started.config.train.epochs if started else 0
        text.append("epoch ", style="dim")
        text.append("0 ")
        mono = self.app.no_color
        for k in range(RAMP_STEPS):
            text.append("█", style=rgb(ramp_colour(k / (RAMP_STEPS - 1), mono)))
        text.append(f" {total:,}" if started else " end")
        text.append("  latest ", style="dim")
        text.append(" 1 " if mono else "■", style="bold reverse" if mono else "bold " + rgb(LATEST))
        if started:
            text.append("   ")
            for index, name in enumerate(started.layer_names):
                marker = layer_marker(index, name)
                label = name.split()[-1] if not name.startswith("out") else "out"
                text.append(marker, style="bold")
                text.append(f"={label} " if marker != "o" else "=output ", style="dim")
        self.update(text)
