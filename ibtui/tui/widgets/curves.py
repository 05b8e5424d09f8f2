"""Loss and accuracy against epoch (seed means), train and test, drawn live.

Train and test get their own marker and colour, and train is drawn last: where the two share a
terminal cell (they often do, the plot is a few rows high) the train point shows, and wherever
they part both are visible. The legend is on the border (with the latest values), not
inside the plot, where it would hide the first points: the kind on top, the legend below. The y axis gets round ticks.
"""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

from ibtui.tui.runstate import Curves

TRAIN = (97, 175, 239)
TEST = (229, 152, 75)
TRAIN_MARKER = "•"
TEST_MARKER = "x"  # ASCII: "×" falls back to a wider glyph in SVG screenshots, and a row of them drifts


def _hex(colour: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*colour)


def nice_ticks(top: float, count: int = 3) -> tuple[float, list[float]]:
    """A round axis top >= top and ticks 0, step, ..., top with about `count` ticks.

    0.79 -> (0.8, [0, 0.4, 0.8]); 0.2 -> (0.2, [0, 0.1, 0.2]); 2.3 -> (3, [0, 1.5, 3])... the step
    is 1, 2, 2.5 or 5 times a power of ten.
    """
    if not top > 0 or not math.isfinite(top):
        top = 1.0
    rough = top / max(1, count - 1)
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough * (1 - 1e-9))
    steps = math.ceil(top / step - 1e-9)
    return steps * step, [round(k * step, 10) for k in range(steps + 1)]


def tick_label(value: float, ticks: list[float]) -> str:
    """The fewest decimals that tell every tick apart: 0, 0.4, 0.8 or 0, 0.25, 0.5."""
    for decimals in range(4):
        labels = [f"{t:.{decimals}f}" for t in ticks]
        if len(set(labels)) == len(labels) and all(abs(float(s) - t) < 1e-9 for s, t in zip(labels, ticks)):
            return f"{value:.{decimals}f}"
    return f"{value:g}"


class CurvesPlot(PlotextPlot):
    """kind "loss" (cross-entropy, y from 0) or "accuracy" (y in 0..1)."""

    def __init__(self, kind: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.border_title = kind
        self.show(None, 1)

    def _y_axis(self, top: float) -> None:
        top, ticks = nice_ticks(top)
        self.plt.ylim(0, top)
        self.plt.yticks(ticks, [tick_label(t, ticks) for t in ticks])

    def show(self, curves: Curves | None, total_epochs: int) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xlim(0, max(1, total_epochs))
        plt.xfrequency(3)
        if curves is None or not curves.epochs:
            self._y_axis(1.0)
            self.border_subtitle = ""
            self.refresh()
            return
        if self.kind == "loss":  # running maxima and flags from Curves: nothing walks the history
            train_name, test_name, has_test = "train_loss", "test_loss", curves.has_test_loss
            self._y_axis(curves.max_loss if curves.max_loss is not None else 1.0)
        else:
            train_name, test_name, has_test = "train_acc", "test_acc", curves.has_test_acc
            self._y_axis(1.0)
        epochs = curves.drawn("epochs")  # at most CURVE_POINTS, the latest included
        if has_test:  # first, so that train is drawn over it where they share a cell
            plt.plot(epochs, curves.drawn(test_name), marker=TEST_MARKER, color=TEST)
        plt.plot(epochs, curves.drawn(train_name), marker=TRAIN_MARKER, color=TRAIN)
        train, test = getattr(curves, train_name), getattr(curves, test_name)
        legend = f"[{_hex(TRAIN)}]{TRAIN_MARKER} train {train[-1]:.3f}[/]"
        if has_test:
            legend += f" [{_hex(TEST)}]{TEST_MARKER} test {test[-1]:.3f}[/]"
        self.border_subtitle = legend
        self.refresh()
