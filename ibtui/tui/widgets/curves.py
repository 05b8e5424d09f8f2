"""Loss and accuracy against epoch (seed means), train and test, drawn live."""

from __future__ import annotations

from textual_plotext import PlotextPlot

from ibtui.tui.runstate import Curves
from ibtui.tui.widgets import _plotext_fix  # noqa: F401  (deterministic overlaps)

TRAIN = (97, 175, 239)
TEST = (229, 152, 75)


class CurvesPlot(PlotextPlot):
    """kind "loss" (cross-entropy, y from 0) or "accuracy" (y in 0..1)."""

    def __init__(self, kind: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind
        self.border_title = kind
        self.show(None, 1)

    def show(self, curves: Curves | None, total_epochs: int) -> None:
        plt = self.plt
        plt.clear_figure()
        plt.xlim(0, max(1, total_epochs))
        plt.xfrequency(3)
        plt.yfrequency(3)
        if self.kind == "accuracy":
            plt.ylim(0, 1)
        if curves is None or not curves.epochs:
            if self.kind == "loss":
                plt.ylim(0, 1)
            self.refresh()
            return
        if self.kind == "loss":
            train, test = curves.train_loss, curves.test_loss
            finite = [v for v in (*train, *test) if v == v]
            plt.ylim(0, max(finite) * 1.05 if finite and max(finite) > 0 else 1)
        else:
            train, test = curves.train_acc, curves.test_acc
        marker = "dot"  # block glyphs ("hd") render too wide in SVG screenshots
        plt.plot(curves.epochs, train, marker=marker, color=TRAIN, label="train")
        if any(v == v for v in test):
            plt.plot(curves.epochs, test, marker=marker, color=TEST, label="test")
        self.border_title = f"{self.kind}  train {train[-1]:.3f} · test {test[-1]:.3f}"
        self.refresh()
