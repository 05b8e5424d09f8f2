"""The compression verdicts of the run on screen, one row per layer, for the plotted estimator.

The analysis is the one RunStore writes into summary.json when a run ends (ibtui.runs.analysis;
`ibtui report` prints the same numbers, with I(T;Y) too). Only I(X;T) is shown here: whether
a layer compressed, i.e. whether I(X;T) fell from its peak by more than its noise explains.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ibtui.runs.analysis import verdict_counts

VERDICT_STYLES = {"compression": "bold green", "none": "dim", "inconclusive": "yellow"}


def hidden_layers(entries: list[dict[str, Any]]) -> list[int]:
    """Indices of the hidden layers: every measured layer but the network's output ("out ...").

    The softmax output is not a representation the network can compress in Tishby's sense: it is
    pulled towards the labels by the loss, so it does not count among "layers that compress"."""
    return [i for i, entry in enumerate(entries) if not str(entry.get("layer", "")).startswith("out")]


def verdict_counts_line(analysis: dict[str, Any], estimator: str) -> str:
    """'2 of 5 hidden layers compress, 2 none, 1 inconclusive' for one estimator."""
    entries = analysis.get("estimators", {}).get(estimator, [])
    hidden = hidden_layers(entries)
    counts = verdict_counts(analysis, estimator, layers=hidden)
    what = "hidden layers" if len(hidden) < len(entries) else "layers"
    line = f"{counts['compression']} of {len(hidden)} {what} compress"
    rest = [f"{counts[v]} {v}" for v in ("none", "inconclusive") if counts[v]]
    return ", ".join([line, *rest])


def verdict_table(analysis: dict[str, Any], estimator: str) -> Table:
    """layer | I(X;T) peak epoch | drop bits (± std over seeds) | drop % | verdict."""
    seeds = int(analysis.get("seeds", 1) or 1)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, expand=False)
    table.add_column("layer", no_wrap=True)
    table.add_column("peak epoch", justify="right", no_wrap=True)
    table.add_column("drop bits" + (" ± sd" if seeds > 1 else ""), justify="right", no_wrap=True)
    table.add_column("drop %", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for entry in analysis.get("estimators", {}).get(estimator, []):
        c = entry["ixt"]
        verdict = Text(c["verdict"], style=VERDICT_STYLES.get(c["verdict"], ""))
        if "drop_bits" not in c:  # too few snapshots to smooth
            table.add_row(entry["layer"], "-", "-", "-", verdict + Text(f" ({c.get('reason', '')})", style="dim"))
            continue
        drop = f"{c['drop_bits']:.3f}" + (f" ± {c['drop_std']:.3f}" if seeds > 1 else "")
        table.add_row(entry["layer"], f"{c['peak_epoch']:,}", drop, f"{100 * c['drop_fraction']:.1f}", verdict)
    return table


class VerdictScreen(ModalScreen[None]):
    """Opened with v (after a run ended) or from the notification's hint; m switches estimator."""

    BINDINGS = [
        Binding("escape,q,v", "close", "close"),
        Binding("m", "estimator", "estimator"),
        Binding("t", "sensitivity", "sensitivity"),  # the run's sensitivity table, when it has one
    ]

    def __init__(self, analysis: dict[str, Any], title: str) -> None:
        super().__init__()
        self.analysis = analysis
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(id="verdict-title", classes="dialog-title")
            yield Static(id="verdict-table")
            yield Static(
                "[dim]I(X;T): smoothed peak minus smoothed end, per seed. compression: the drop is at "
                "least max(0.02 bits, 2 % of the peak) and 3 standard errors above the noise; none: "
                "confidently below that; inconclusive: too noisy to tell. "
                "Keys: m estimator, esc close. `ibtui report` adds I(T;Y).[/dim]",
                id="verdict-note",
            )

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        estimator = self._estimator()
        seeds = int(self.analysis.get("seeds", 1) or 1)
        title = Text.assemble(
            ("Compression verdicts", "bold"), f" · {estimator}",
            f" · {seeds} seeds" if seeds > 1 else "", (f"  {self.title_text}", "dim"),
        )
        self.query_one("#verdict-title", Static).update(title)
        self.query_one("#verdict-table", Static).update(verdict_table(self.analysis, estimator))

    def _estimator(self) -> str:
        names = list(self.analysis.get("estimators", {}))
        plotted = getattr(self.app, "estimator", None)
        return plotted if plotted in names else (names[0] if names else "-")

    def action_estimator(self) -> None:
        self.app.action_estimator()  # type: ignore[attr-defined]
        self.show()

    def action_sensitivity(self) -> None:
        self.app.action_sensitivity()  # type: ignore[attr-defined]

    def action_close(self) -> None:
        self.dismiss(None)
