"""The sensitivity table of a run (RUN/sensitivity/sensitivity.json, written by `ibtui sensitivity`):
the same table and per-layer sentences the command prints, built by the same function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich import box
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def read_sensitivity(run_dir: Path) -> dict[str, Any] | None:
    """The run's sensitivity document, or None when it has none (or an unreadable one)."""
    from ibtui.runs.sensitivity import SENSITIVITY_DIR, SENSITIVITY_FILE

    try:
        doc = json.loads((Path(run_dir) / SENSITIVITY_DIR / SENSITIVITY_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("settings"), list) or "snapshots" not in doc:
        return None
    return doc


class SensitivityScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,t", "close", "close")]

    def __init__(self, doc: dict[str, Any], run_name: str) -> None:
        super().__init__()
        self.doc = doc
        self.run_name = run_name

    def compose(self) -> ComposeResult:
        from ibtui.export.sensitivity_table import sensitivity_table

        with VerticalScroll(id="dialog"):
            yield Static(Text.assemble(("Sensitivity", "bold"), f" · {self.run_name}"), id="sensitivity-title", classes="dialog-title")
            yield Static(sensitivity_table(self.doc, box=box.SIMPLE_HEAD, title_justify="left"), id="sensitivity-table")
            yield Static("\n".join(self.doc.get("sentences", [])), id="sensitivity-sentences", markup=False)
            yield Static("[dim]Each cell: the I(X;T) verdict and its drop from the peak, re-estimated at that "
                         "setting. esc closes.[/dim]", id="sensitivity-note")

    def action_close(self) -> None:
        self.dismiss(None)
