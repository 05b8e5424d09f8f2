"""The status bar: a progress bar and one line of facts (epoch, time, speed, device, run folder)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from ibtui.engine.kernel_cache import waiting_message
from ibtui.tui.runstate import RunClock, RunState, format_duration

STATUS_STYLES = {
    "idle": "dim",
    "watching": "bold cyan",
    "starting": "bold cyan",
    "running": "bold green",
    "paused": "bold yellow",
    "stopping": "bold yellow",
    "finished": "bold green",
    "interrupted": "bold yellow",
    "failed": "bold red",
}


def warming_up(state: RunState) -> str:
    """What a run does before its first epoch: preparing the data, then (on the CPU, where the
    training step and the KDE are numba kernels compiled on a first run and cached) compiling."""
    if state.started is None:
        return "preparing the run…"
    return waiting_message(short=True) if state.started.device == "cpu" else "starting…"


def status_line(state: RunState | None, clock: RunClock | None, width: int | None = None) -> Text:
    """One row of facts; where `width` cells cannot hold them all, the least needed go first
    (the speed, then the loss, then the elapsed time), so the row never ends in an ellipsis."""
    parts: list[tuple[str, str, int]] = []  # (text, style, drop order: 0 never, higher first)
    if state is None:
        parts.append(("● idle", STATUS_STYLES["idle"], 0))
        parts.append(("  set up a run, then s to start · ? for help", "dim", 0))
        return _fit(parts, width)
    parts.append((f"● {state.status}", STATUS_STYLES.get(state.status, ""), 0))
    parts.append((f"  epoch {state.epoch:,}/{state.total_epochs:,}", "", 0))
    # Estimates run behind training; once it is done, say how many are still to come.
    waiting = len(state.started.schedule) - len(state.snapshots) if state.started is not None else 0
    estimating = state.active and state.epoch >= state.total_epochs and waiting > 0
    if clock is not None:
        parts.append((f"  elapsed {format_duration(clock.elapsed())}", "", 1))
        if state.status == "stopping" and state.pending:
            parts.append((f"  finishing {state.pending} estimate{'s' if state.pending > 1 else ''} · c again to skip", "", 0))
        elif state.warming_up and state.status != "stopping":
            parts.append((f"  {warming_up(state)}", "italic", 0))
        elif estimating:
            parts.append((f"  estimating {waiting} snapshot{'s' if waiting > 1 else ''}", "", 0))
        else:
            left = clock.remaining(state.epoch, state.total_epochs) if state.active else None
            if left is not None:  # blank until the speed means something (see RunClock)
                parts.append((f"  left {format_duration(left)}", "", 0))
            speed = clock.speed(state.epoch)
            if speed:
                parts.append((f"  {speed:,.1f} epochs/s", "", 3))
    if state.train_loss is not None:
        parts.append((f"  loss {state.train_loss:.4f}", "dim", 2))
    return _fit(parts, width)


def _fit(parts: list[tuple[str, str, int]], width: int | None) -> Text:
    if width:
        for order in (3, 2, 1):
            if sum(len(t) for t, _, _ in parts) <= width:
                break
            parts = [p for p in parts if p[2] != order]
    text = Text(no_wrap=True, overflow="ellipsis")
    for part, style, _ in parts:
        text.append(part, style=style)
    return text


def location_line(state: RunState | None, width: int | None = None) -> Text:
    """Where the run trains and is written; where `width` cells cannot hold it all, the dataset's
    description goes, and a long run path keeps its end."""
    if state is None:
        return Text(no_wrap=True, overflow="ellipsis")
    parts = [("device ", "dim", 0), (state.started.device if state.started else "…", "", 0), ("  run ", "dim", 0)]
    path = str(state.run_dir)
    room = width - sum(len(t) for t, _, _ in parts) if width else len(path)
    if len(path) > room > 1:  # the end of a long path names the run: keep it
        path = "…" + path[len(path) - room + 1:]
    parts.append((path, "", 0))
    if state.started is not None:
        parts.append((f"  · {state.started.dataset}", "dim", 1))
    return _fit(parts, width)


class StatusBar(Vertical):
    """Updated every UI tick, so kept cheap: a line is repainted only when its text changed, and
    never with a layout pass (each line is one no-wrap row: its size cannot change)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: dict[str, Text] = {}
        self._progress: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="status-top"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static(id="status-line")
        yield Static(id="location-line")

    def _set_line(self, ident: str, text: Text) -> None:
        if self._shown.get(ident) != text:
            self._shown[ident] = text
            self.query_one(f"#{ident}", Static).update(text, layout=False)

    def show(self, state: RunState | None, clock: RunClock | None) -> None:
        # not indeterminate when idle: that one animates with the clock
        progress = (1, 0) if state is None else (max(1, state.total_epochs), state.epoch)
        if progress != self._progress:
            self._progress = progress
            self.query_one(ProgressBar).update(total=progress[0], progress=progress[1])
        line = self.query_one("#status-line", Static)
        self._set_line("status-line", status_line(state, clock, line.content_size.width or None))
        where = self.query_one("#location-line", Static)
        self._set_line("location-line", location_line(state, where.content_size.width or None))
