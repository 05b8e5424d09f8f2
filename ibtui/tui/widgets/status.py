"""The status bar: a progress bar and one line of facts (epoch, time, speed, device, run folder)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

from ibtui.tui.runstate import RunClock, RunState, format_duration

STATUS_STYLES = {
    "idle": "dim",
    "starting": "bold cyan",
    "running": "bold green",
    "paused": "bold yellow",
    "stopping": "bold yellow",
    "finished": "bold green",
    "interrupted": "bold yellow",
    "failed": "bold red",
}


def status_line(state: RunState | None, clock: RunClock | None) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if state is None:
        text.append("● idle", style=STATUS_STYLES["idle"])
        text.append("  edit the settings, then s to start · ? for help", style="dim")
        return text
    text.append(f"● {state.status}", style=STATUS_STYLES.get(state.status, ""))
    text.append(f"  epoch {state.epoch:,}/{state.total_epochs:,}")
    if clock is not None:
        text.append(f"  elapsed {format_duration(clock.elapsed())}")
        remaining = clock.remaining(state.epoch, state.total_epochs) if state.active else 0.0
        text.append(f"  left {format_duration(remaining)}")
        speed = clock.speed(state.epoch)
        text.append(f"  {speed:,.1f} epochs/s" if speed else "  -- epochs/s")
    if state.train_loss is not None:
        text.append(f"  loss {state.train_loss:.4f}", style="dim")
    return text


def location_line(state: RunState | None) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if state is None:
        return text
    device = state.started.device if state.started else "…"
    text.append("device ", style="dim")
    text.append(device)
    text.append("  run ", style="dim")
    text.append(str(state.run_dir))
    if state.started is not None:
        text.append(f"  · {state.started.dataset}", style="dim")
    return text


class StatusBar(Vertical):
    def compose(self) -> ComposeResult:
        with Horizontal(id="status-top"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Static(id="status-line")
        yield Static(id="location-line")

    def show(self, state: RunState | None, clock: RunClock | None) -> None:
        bar = self.query_one(ProgressBar)
        if state is None:
            bar.update(total=1, progress=0)  # not indeterminate: that one animates with the clock
        else:
            bar.update(total=max(1, state.total_epochs), progress=state.epoch)
        self.query_one("#status-line", Static).update(status_line(state, clock))
        self.query_one("#location-line", Static).update(location_line(state))
