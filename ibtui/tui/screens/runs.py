"""The runs screen (r): every run and sweep under the runs folder, as `ibtui runs` lists them.

The rows are ibtui.sweeps.listing.list_runs's entries (name, status, what ran, epochs, seeds,
date, the I(X;T) verdict of each layer). enter replays the highlighted run in the app (read-only,
as `ibtui watch`); space selects up to MAX_OVERLAY runs, each given a colour it keeps while
selected; o overlays the selected runs on one information plane; t shows the highlighted run's
sensitivity table when it has one. Under the table, every sweep's progress (points done,
running, to do). The list is read again every REFRESH_S, so a running sweep moves on screen.
Nothing here writes or locks anything.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from ibtui.errors import IbtuiError
from ibtui.sweeps.listing import Entry, list_runs
from ibtui.tui.sweep_progress import SweepProgress, sweep_progress
from ibtui.tui.widgets.info_plane import rgb
from ibtui.tui.widgets.overlay_plane import MAX_OVERLAY, RUN_COLOURS, load_overlay_run

REFRESH_S = 2.0
# `ibtui runs`'s columns, with "what ran" (the widest) last: at 80 columns the verdicts stay in view.
COLUMNS = ("", "name", "status", "epochs", "seeds", "I(X;T) per layer", "date", "what ran")
SLOT_NAMES = "ABCD"


def _key(entry: Entry) -> str:
    return str(entry.path) if entry.path is not None else entry.name


class RunsScreen(ModalScreen[Path | None]):
    """Dismissed with the run directory to replay, or None."""

    BINDINGS = [
        Binding("escape,q,r", "close", "close"),
        Binding("space", "select", "select"),
        Binding("o", "overlay", "overlay"),
        Binding("t", "sensitivity", "sensitivity"),
        Binding("enter", "open", "replay", show=False),
    ]

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self.entries: list[Entry] = []
        self.selected: dict[str, int] = {}  # run key -> colour slot, kept while selected
        self.progress: list[SweepProgress] = []
        self._shown: tuple | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(id="runs-title", classes="dialog-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=False)
            yield Static(id="runs-progress")
            yield Static(
                Text("enter replay · space select (up to 4) · o overlay · t sensitivity · esc close", style="dim"),
                id="runs-keys",
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column or "sel")
        self.reload()
        table.focus()
        self.set_interval(REFRESH_S, self.reload)

    # -- the list ---------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the folder again; redraw only what changed (a running sweep, a new run)."""
        try:
            entries = list_runs(self.root) if self.root.is_dir() else []
        except IbtuiError as exc:
            entries = []
            self.notify(str(exc), severity="error", timeout=5)
        progress = []
        for entry in entries:
            if entry.kind == "sweep" and entry.path is not None and entry.status != "unreadable":
                try:
                    progress.append(sweep_progress(entry.path, entry.name))
                except IbtuiError:
                    continue
        shown = (tuple((e.kind, e.name, e.depth, e.status, e.what, e.epochs, e.seeds, e.date, e.verdicts) for e in entries),
                 tuple(progress), tuple(sorted(self.selected.items())))
        if shown == self._shown:
            return
        self._shown = shown
        self.entries, self.progress = entries, progress
        known = {_key(e) for e in entries if e.kind == "run"}
        self.selected = {k: v for k, v in self.selected.items() if k in known}
        self._draw()

    def _draw(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for index, e in enumerate(self.entries):
            slot = self.selected.get(_key(e))
            mark = Text(f"{SLOT_NAMES[slot]}━", style="bold " + rgb(RUN_COLOURS[slot])) if slot is not None else Text("  ")
            style = "bold" if e.kind == "sweep" else ""
            table.add_row(mark, Text(("  " * e.depth) + e.name, style=style), e.status,
                          Text(e.epochs, justify="right"), Text(e.seeds, justify="right"), e.verdicts, e.date, e.what,
                          key=str(index))
        if self.entries:
            table.move_cursor(row=min(max(row, 0), len(self.entries) - 1))
        count = sum(e.kind == "run" and e.status != "not run" for e in self.entries)
        title = Text.assemble(("Runs", "bold"), f" under {self.root} · {count} run{'s' * (count != 1)}",
                              (f" · {len(self.selected)} of {MAX_OVERLAY} selected" if self.selected else "", "dim"))
        self.query_one("#runs-title", Static).update(title)
        lines = [p.line() for p in self.progress]
        if not self.entries:
            lines = [f"no runs under {self.root} yet: start one with s, or `ibtui run`"]
        self.query_one("#runs-progress", Static).update(Text("\n".join(lines)))

    # -- actions ----------------------------------------------------------------------------------

    def highlighted(self) -> Entry | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row < 0 or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row]

    def _run_or_say_why(self, what: str) -> Entry | None:
        entry = self.highlighted()
        if entry is None:
            return None
        if entry.kind == "sweep":
            self.notify(f"{entry.name} is a sweep; {what} one of its points (the rows under it).", severity="warning", timeout=4)
            return None
        if entry.status in ("not run", "unreadable", "created"):
            self.notify(f"{entry.name} has nothing to show ({entry.status}).", severity="warning", timeout=4)
            return None
        return entry

    def action_select(self) -> None:
        entry = self._run_or_say_why("select")
        if entry is None:
            return
        key = _key(entry)
        if key in self.selected:
            del self.selected[key]
        elif len(self.selected) >= MAX_OVERLAY:
            self.notify(f"At most {MAX_OVERLAY} runs overlay on one plane; unselect one first (space).",
                        title="Not selected", severity="warning", timeout=4)
            return
        else:  # the first free colour: a selected run keeps its colour whatever else changes
            self.selected[key] = min(set(range(MAX_OVERLAY)) - set(self.selected.values()))
        self._shown = None
        self.reload()

    def action_overlay(self) -> None:
        from ibtui.tui.screens.overlay import OverlayScreen

        if not self.selected:
            self.notify("Select runs with space first (up to 4).", severity="warning", timeout=3)
            return
        by_key = {_key(e): e for e in self.entries}
        runs = []
        for key, slot in sorted(self.selected.items(), key=lambda item: item[1]):
            entry = by_key[key]
            try:
                runs.append(load_overlay_run(entry.path, entry.name.strip(), slot))
            except IbtuiError as exc:
                self.notify(str(exc), severity="error", timeout=6)
                return
        self.app.push_screen(OverlayScreen(runs))

    def action_sensitivity(self) -> None:
        from ibtui.tui.screens.sensitivity import SensitivityScreen, read_sensitivity

        entry = self._run_or_say_why("choose")
        if entry is None:
            return
        doc = read_sensitivity(entry.path)
        if doc is None:
            self.notify(f"{entry.name} has no sensitivity table (`ibtui sensitivity RUN` writes one).", severity="warning", timeout=4)
            return
        self.app.push_screen(SensitivityScreen(doc, entry.name.strip()))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        entry = self._run_or_say_why("replay")
        if entry is not None:
            self.dismiss(entry.path)

    def action_close(self) -> None:
        self.dismiss(None)
