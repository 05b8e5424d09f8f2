"""Asks before quitting while a run trains: y stops the run and quits, anything else stays."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "yes, stop and quit"),
        Binding("n,escape,q", "answer(False)", "no, keep training"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static("[b]A run is training.[/b]", classes="dialog-title")
            yield Static(
                "Stop it and quit? What was measured so far is kept\n"
                "(the run can be continued later with `ibtui resume`).\n\n"
                "[b]y[/b] stop and quit    [b]n[/b] / [b]esc[/b] keep training"
            )

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
