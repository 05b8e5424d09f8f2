"""The app's keys: the bindings, which of them apply right now, and what each one does.

A mixin of IbtuiApp (ibtui.tui.app), which owns the state these actions read and change: the
job and run on screen, the form, the estimator shown. The footer dims a key that does nothing
right now (check_action); the app refreshes it when that can change (its `controls` reactive).
"""

from __future__ import annotations

from pathlib import Path

from textual.binding import Binding
from textual.widgets import Select

from ibtui.tui.screens.confirm import ConfirmQuit
from ibtui.tui.screens.help import HelpScreen
from ibtui.tui.screens.presets import PresetPicker
from ibtui.tui.screens.verdicts import VerdictScreen
from ibtui.tui.widgets.info_plane import InfoPlanePlot
from ibtui.tui.widgets.settings import SettingsForm

BINDINGS = [
    Binding("s", "start", "start"),
    Binding("space", "pause", "pause"),
    Binding("c", "cancel", "cancel"),
    Binding("e", "export", "export"),
    Binding("p", "presets", "presets"),
    Binding("m", "estimator", "estimator"),
    Binding("f", "toggle_form", "form"),
    Binding("question_mark", "help", "help", key_display="?"),
    Binding("q", "quit", "quit"),
    Binding("v", "verdicts", "verdicts", show=False),  # listed in the help and the run-ended notice
    Binding("r", "runs", "runs", show=False),  # listed in the help and the command palette
    Binding("t", "sensitivity", "sensitivity", show=False),
    # Keys that move the focus do it before the App hands the next key on: priority bindings run
    # in the App's own key handling, in the order the keys came. As ordinary bindings they ran only
    # after the key had bubbled back up, and the keys typed right after (tmux send-keys, a fast
    # typist) still went to the field being left: "esc s" typed an s instead of starting.
    Binding("tab", "focus_next", show=False, priority=True),
    Binding("shift+tab", "focus_previous", show=False, priority=True),
    Binding("escape", "leave_field", show=False, priority=True),  # only from the form (check_action)
]


class RunActions:
    """check_action and the action_* methods of IbtuiApp."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim footer keys that do nothing right now."""
        if self.follower is not None and action in ("pause", "cancel", "export"):
            return False  # watching: another process owns the run, and the directory is read-only
        if self.read_only and action in ("start", "presets"):
            return False  # `ibtui watch`: the session only watches
        if action == "leave_field":  # elsewhere (a dialog, an open Select) esc is theirs
            focused = self.focused
            return (self.screen is self.screen_stack[0] and focused is not None
                    and any(isinstance(w, SettingsForm) for w in focused.ancestors_with_self)
                    and not any(isinstance(w, Select) for w in focused.ancestors))  # an open Select's list
        if action == "start":  # on an invalid form, s says why instead of doing nothing
            return None if self.running else True
        if action in ("pause", "cancel"):
            return True if self.running else None
        if action == "export":
            return True if self.run_state is not None else None
        if action == "estimator":
            return True if self.run_state is not None and len(self.run_state.estimators) > 1 else None
        return True

    def action_start(self) -> None:
        if self.running:
            self.notify("A run is already training.", severity="warning")
            return
        config = self.validate_form()
        if config is None:
            problems = str(self.query_one("#form-error").render()).strip() or "the settings do not validate"
            self.query_one(SettingsForm).reveal_problems()
            self.notify(f"Nothing started: fix the settings first.\n{problems}", title="Cannot start", severity="error", timeout=8)
            return
        self.start_run(config)

    def action_pause(self) -> None:
        if not self.running or self.run_state.status == "stopping":
            return
        control = self.job.control
        if control.paused:
            control.resume()
            self.run_clock and self.run_clock.resume()
            self.run_state.status = "running"
            self.notify("Resumed.", timeout=2)
        else:
            control.pause()
            self.run_clock and self.run_clock.pause()
            self.run_state.status = "paused"
            self.notify("Paused: training waits at the next step (space resumes).", timeout=3)
        self.show_status()

    def action_cancel(self) -> None:
        if not self.running:
            return
        if self.job.control.stop_requested:  # c again: skip the estimates still to come
            self.job.control.request_stop()
            self.notify("Skipping the remaining estimates.", timeout=3)
            return
        self.job.control.request_stop()
        self.run_state.status = "stopping"
        self.run_clock and self.run_clock.resume()
        self.notify("Cancelling: finishing the estimates already under way, saving a checkpoint, "
                    "then exporting the partial run… (c again skips the estimates)", timeout=4)
        self.show_status()

    def action_export(self) -> None:
        if self.run_state is None:
            self.notify("Nothing to export yet: start a run first.", severity="warning")
            return
        self.notify(f"Exporting PNGs of {self.run_state.run_dir}…", timeout=2)
        self.export_figures(self.run_state.run_id, self.run_state.run_dir)

    def action_presets(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.load_preset(name)

        self.push_screen(PresetPicker(), chosen)

    def action_estimator(self) -> None:
        if self.run_state is None or not self.run_state.estimators:
            return
        names = self.run_state.estimators
        current = names.index(self.estimator) if self.estimator in names else -1
        self.estimator = names[(current + 1) % len(names)]
        self.notify(f"Plotting {self.estimator}.", timeout=2)

    def action_verdicts(self) -> None:
        run = self.run_state
        if run is None or self.verdicts is None:
            why = "they come when a run ends" if run is None or run.active else "the run has none (see the notifications)"
            self.notify(f"No compression verdicts yet: {why}.", severity="warning", timeout=3)
            return
        if isinstance(self.screen, VerdictScreen):
            return
        last = run.snapshots[-1].epoch if run.snapshots else run.epoch
        self.push_screen(VerdictScreen(self.verdicts, f"{run.status} at epoch {last:,}"))

    def action_runs(self) -> None:
        from ibtui.tui.screens.runs import RunsScreen

        def chosen(run_dir: Path | None) -> None:
            if run_dir is not None:
                self.open_run(run_dir)

        if not isinstance(self.screen, RunsScreen):
            self.push_screen(RunsScreen(self._runs_root), chosen)

    def action_sensitivity(self) -> None:
        from ibtui.tui.screens.sensitivity import SensitivityScreen, read_sensitivity

        run = self.run_state
        doc = read_sensitivity(run.run_dir) if run is not None else None
        if doc is None:
            where = "no run on screen" if run is None else f"{run.run_dir} has none (`ibtui sensitivity RUN` writes one)"
            self.notify(f"No sensitivity table: {where}.", severity="warning", timeout=4)
            return
        self.push_screen(SensitivityScreen(doc, str(run.run_dir)))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_toggle_form(self) -> None:
        self.query_one(SettingsForm).toggle_class("-collapsed")

    def action_leave_field(self) -> None:
        self.set_focus(self.query_one(InfoPlanePlot))  # now, not after the keys behind (Widget.focus waits)

    async def action_quit(self) -> None:
        if self._leaving:  # q again while the engine finishes: skip what is left and go
            if self.job is not None:
                self.job.control.request_stop()  # the second request skips the remaining estimates
            self.exit()
            return
        if not self.running:
            self.exit()
            return

        async def answered(yes: bool | None) -> None:
            if yes:
                await self.stop_and_exit()

        self.push_screen(ConfirmQuit(), answered)
