"""The runs selected on the runs screen, overlaid on one information plane (m: estimator)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen

from ibtui.tui.widgets.overlay_plane import OverlayLegend, OverlayPlot, OverlayRun, common_estimators


class OverlayScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,o", "close", "close"),
        Binding("m", "estimator", "estimator"),
    ]

    def __init__(self, runs: list[OverlayRun]) -> None:
        super().__init__()
        self.runs = runs
        self.estimators = common_estimators(runs)
        self.estimator = self.estimators[0] if self.estimators else None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield OverlayPlot(id="overlay-plane")
            yield OverlayLegend(id="overlay-legend")

    def on_mount(self) -> None:
        self.query_one(OverlayLegend).show(self.runs)
        self.query_one(OverlayPlot).show(self.runs, self.estimator)

    def action_estimator(self) -> None:
        if len(self.estimators) < 2:
            return
        self.estimator = self.estimators[(self.estimators.index(self.estimator) + 1) % len(self.estimators)]
        self.query_one(OverlayPlot).show(self.runs, self.estimator)

    def action_close(self) -> None:
        self.dismiss(None)
