"""The interactive app: set up a run, start it, watch the information plane move.

Threads: each run has one thread worker owned by the App (group "training"); it never touches
widgets. It runs the same prepare_run/execute pipeline as `ibtui run` in a process of its own
(runner.execute_in_process: in-process, the UI thread's drawing took the GIL from the training
loop) and pushes the events it relays into an EventBuffer; a UI timer drains the buffer a few
times per second and redraws, so drawing never slows training. Workers report back with messages
carrying the run id; stale ones are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header

from ibtui.config import RunConfig
from ibtui.engine.control import RunControl
from ibtui.engine.events import RunStarted
from ibtui.errors import ConfigError, IbtuiError
from ibtui.runs.runner import RunOutcome, default_run_dir, execute, execute_in_process
from ibtui.tui.buffer import EventBuffer
from ibtui.tui.commands import PresetCommands
from ibtui.tui.follow import RunFollower
from ibtui.tui.messages import FiguresExported, RunCouldNotStart, RunEnded, VerdictsReady
from ibtui.tui.runstate import RunClock, RunState
from ibtui.tui.screens.confirm import ConfirmQuit
from ibtui.tui.screens.help import HelpScreen
from ibtui.tui.screens.presets import PresetPicker
from ibtui.tui.screens.verdicts import VerdictScreen, verdict_counts_line
from ibtui.tui.widgets.curves import CurvesPlot
from ibtui.tui.widgets.info_plane import InfoPlanePlot, PlaneLegend
from ibtui.tui.widgets.settings import SettingsForm
from ibtui.tui.widgets.status import StatusBar, warming_up

# (config, run_dir, run_id) -> (trainer, store), run in the worker thread itself: a fake in tests.
TrainerFactory = Callable[[RunConfig, Path, str], tuple[object, object]]
Exporter = Callable[[Path], list[Path]]

WIDE_COLUMNS = 100  # narrower terminals fold the form away while a run trains
DRAIN_INTERVAL_S = 0.2  # how often the UI takes events from the worker (5 per second)
# While a run trains, the information plane is redrawn (when new snapshots came) at most every
# PLANE_INTERVAL_S and the loss/accuracy curves at most every CURVES_INTERVAL_S; the status line
# is updated every tick. On two cores every millisecond of UI Python is taken from training (the
# GIL), and plotext re-renders the whole plot each time. The run's end always draws everything.
PLANE_INTERVAL_S = 0.45
CURVES_INTERVAL_S = 0.95
# Progress alone (epoch, elapsed, speed) refreshes the status bar at most this often: even that
# costs a few per cent of training speed at 5 per second.
STATUS_INTERVAL_S = 0.45


def read_verdicts(run_dir: Path) -> dict:
    """summary.json's "analysis" (RunStore writes it when a run ends), or computed from the run."""
    import json

    from ibtui.runs.analysis import analyse_run
    from ibtui.runs.files import SUMMARY_FILE
    from ibtui.runs.record import load_run

    try:
        analysis = json.loads((Path(run_dir) / SUMMARY_FILE).read_text()).get("analysis")
    except (OSError, ValueError):
        analysis = None
    if not isinstance(analysis, dict) or "error" in analysis or "estimators" not in analysis:
        analysis = analyse_run(load_run(run_dir))
    return analysis


def export_pngs(run_dir: Path) -> list[Path]:
    from ibtui.export.png import export_run

    return export_run(run_dir)


@dataclass
class TrainingJob:
    """Everything the worker needs; shared with the UI only through thread-safe parts."""

    run_id: str
    config: RunConfig
    run_dir: Path
    control: RunControl = field(default_factory=RunControl)
    buffer: EventBuffer | None = None
    export: bool = True  # cleared when quitting: the app leaves at once, PNGs can come later

    def __post_init__(self) -> None:
        if self.buffer is None:
            self.buffer = EventBuffer(self.run_id)


class IbtuiApp(App):
    # The estimator the plane shows (m cycles); its watcher redraws the plane.
    estimator: reactive[str | None] = reactive(None, init=False)

    CSS_PATH = "app.tcss"
    TITLE = "ibtui"
    SUB_TITLE = "the information plane, live"
    COMMANDS = App.COMMANDS | {PresetCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
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
        Binding("escape", "leave_field", show=False),
    ]

    def __init__(
        self,
        config: RunConfig | None = None,
        out: Path | str | None = None,
        *,
        trainer_factory: TrainerFactory | None = None,
        exporter: Exporter | None = None,
        runs_root: Path | str | None = None,
        clock: Callable[[], float] = time.monotonic,
        watch: RunFollower | None = None,
    ) -> None:
        super().__init__()
        # Watching (ibtui watch RUN): the app shows a run another process writes; it starts,
        # pauses, cancels and exports nothing, and reads only the run directory.
        self.follower = watch
        self._cli_watch = watch is not None  # `ibtui watch`: the whole session is read-only
        self._watch_ended = False
        if watch is not None:
            config = watch.config
            self.sub_title = f"watching {watch.path}"
        if config is None:
            from ibtui.runs.presets import load_preset

            config = load_preset("tanh")
        self.base_config = config  # the preset (or the CLI's config) the form's values go on top of
        self.form_config: RunConfig | None = config  # the form's config when it validates
        self._out = Path(out) if out is not None else None
        self._runs_root = Path(runs_root) if runs_root is not None else (self._out.parent if self._out else Path("runs"))
        # None: the real engine, in its own process (see train); tests pass a fake that runs here.
        self._trainer_factory = trainer_factory
        if trainer_factory is None and watch is None:
            # Spawning starts multiprocessing's resource tracker once, passing it sys.stderr's
            # file descriptor; while the app runs, Textual's stand-in stderr has none (-1), which
            # fails the spawn ("bad value(s) in fds_to_keep"). Start it now, with the real one.
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        self._exporter = exporter or export_pngs
        self._now = clock
        self.job: TrainingJob | None = None
        self.run_state: RunState | None = None  # the run on screen (the current or the last one)
        self.run_clock: RunClock | None = None
        self.verdicts: dict | None = None  # the analysis of the run on screen, once it has ended
        self._drawn_version = -1
        self._drawn_at = float("-inf")  # time.monotonic() of the last plane redraw
        self._curves_version = -1
        self._curves_at = float("-inf")
        self._status_at = float("-inf")
        self._legend_for: RunStarted | None = None
        self._bindings_key: tuple | None = None
        self._leaving = False  # quitting: waiting for the engine to stop
        self._exit_code = 0  # 128 + the signal number after SIGTERM or SIGHUP, as `ibtui run` exits

    # -- layout -----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(icon="◉")
        with Horizontal(id="main"):
            yield SettingsForm(self.base_config, id="settings")
            with Vertical(id="plots"):
                with Vertical(id="plane-box"):
                    yield InfoPlanePlot(id="plane")
                    yield PlaneLegend(id="legend")
                with Horizontal(id="curves"):
                    yield CurvesPlot("loss", id="loss")
                    yield CurvesPlot("accuracy", id="accuracy")
        yield StatusBar(id="status")
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        self.query_one(PlaneLegend).show(None)
        if self.follower is not None:
            self._begin_watching(self.follower)
        self.query_one(StatusBar).show(self.run_state, None)
        self.set_interval(DRAIN_INTERVAL_S, self.drain_events)
        self.query_one(InfoPlanePlot).focus()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):  # a scheduler's stop, a closed SSH session
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop_on_signal, signum)

    def stop_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP: stop as a confirmed quit does (the engine finishes the estimates
        already taken and saves a checkpoint), then exit with 128 + signum; a second signal
        skips those estimates and leaves at once."""
        self._exit_code = self._exit_code or 128 + signum
        if self._leaving or not self.running:
            if self.job is not None:
                self.job.control.request_stop()
            self.exit(return_code=self._exit_code)
            return
        self.call_next(self.stop_and_exit)

    def _begin_watching(self, follower: RunFollower) -> None:
        """Show the run `follower` reads (live or finished): `ibtui watch`, or a replay from r."""
        run_dir = follower.path
        self.follower = follower
        self._watch_ended = False
        self.job = None
        self.run_clock = None
        self.verdicts = None
        self._drawn_version = self._curves_version = -1
        self._legend_for = None
        self.base_config = follower.config
        self.run_state = RunState(run_id="", run_dir=run_dir, total_epochs=follower.config.train.epochs)
        self.run_state.status = "watching"
        self.query_one(SettingsForm).set_locked(self._cli_watch)  # a replay leaves s free for a run of one's own
        if self.size.width < WIDE_COLUMNS:
            self.query_one(SettingsForm).add_class("-collapsed")
        self.query_one(InfoPlanePlot).show_empty(f"waiting for {run_dir.name} to start…")
        self.query_one("#loss", CurvesPlot).show(None, follower.config.train.epochs)
        self.query_one("#accuracy", CurvesPlot).show(None, follower.config.train.epochs)
        self.query_one(PlaneLegend).show(None)
        self.call_after_refresh(self.drain_events)

    def open_run(self, run_dir: Path) -> bool:
        """Replay (or follow, if it is still being written) a run directory, read-only."""
        if self.running:
            self.notify("A run is training; open another once it ends.", severity="warning", timeout=4)
            return False
        try:
            follower = RunFollower(run_dir)
        except IbtuiError as exc:
            self.notify(str(exc), title="Cannot open", severity="error", timeout=8)
            return False
        self._begin_watching(follower)
        self.query_one(SettingsForm).fill(follower.config)  # s then starts this run's config again
        self.call_after_refresh(self.validate_form)
        self.sub_title = f"replaying {follower.path}"
        self._show_status()
        self._refresh_controls()
        self.refresh_bindings()
        return True

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

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Runs", f"List the runs and sweeps under {self._runs_root}: replay, overlay, sweep progress", self.action_runs)
        yield SystemCommand("Sensitivity", "The sensitivity table of the run on screen (ibtui sensitivity)", self.action_sensitivity)
        yield SystemCommand("Presets", "Choose a preset to load into the form", self.action_presets)
        yield SystemCommand("Export PNGs", "Write info_plane.png and loss.png of the run on screen", self.action_export)

    # -- state helpers ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.job is not None and self.run_state is not None and self.run_state.active

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Dim footer keys that do nothing right now."""
        if self.follower is not None and action in ("pause", "cancel", "export"):
            return False  # watching: another process owns the run, and the directory is read-only
        if self._cli_watch and action in ("start", "presets"):
            return False  # `ibtui watch`: the session only watches
        if action == "start":  # on an invalid form, s says why instead of doing nothing
            return None if self.running else True
        if action in ("pause", "cancel"):
            return True if self.running else None
        if action == "export":
            return True if self.run_state is not None else None
        if action == "estimator":
            return True if self.run_state is not None and len(self.run_state.estimators) > 1 else None
        return True

    def _refresh_controls(self) -> None:
        form = self.query_one(SettingsForm)
        form.set_startable(not self.running and self.form_config is not None)
        # The footer recomposes on refresh_bindings: only when what check_action says changed.
        key = (self.running, self.form_config is None, self.run_state is None, self.follower is None,
               len(self.run_state.estimators) if self.run_state else 0)
        if key != self._bindings_key:
            self._bindings_key = key
            self.refresh_bindings()

    # -- the form ---------------------------------------------------------------------------------

    @on(SettingsForm.Changed)
    def _form_changed(self) -> None:
        self.validate_form()

    @on(SettingsForm.StartPressed)
    def _form_start(self) -> None:
        self.action_start()

    @on(SettingsForm.PresetChosen)
    def _form_preset(self, message: SettingsForm.PresetChosen) -> None:
        self.load_preset(message.name)

    def validate_form(self) -> RunConfig | None:
        form = self.query_one(SettingsForm)
        problems = form.errors()
        config = None
        if not problems:
            try:
                base = replace(self.base_config, data=replace(self.base_config.data, **form.data_fields()))
                config = base.with_overrides(form.overrides())
            except ConfigError as exc:
                problems = [str(exc)]
        self.form_config = config
        form.show_error("\n".join(f"✗ {p}" for p in problems))
        self._refresh_controls()
        return config

    def load_preset(self, name: str) -> None:
        from ibtui.runs.presets import load_preset

        if self.running:
            self.notify("A run is training; presets can be loaded once it ends.", severity="warning")
            return
        try:
            config = load_preset(name)
        except IbtuiError as exc:
            self.notify(str(exc), title="Preset", severity="error")
            return
        self.base_config = config
        self.query_one(SettingsForm).fill(config)
        self.call_after_refresh(self.validate_form)
        self.notify(f"Loaded preset {name}.", timeout=2)

    # -- actions ----------------------------------------------------------------------------------

    def action_leave_field(self) -> None:
        self.query_one(InfoPlanePlot).focus()

    def action_start(self) -> None:
        if self.running:
            self.notify("A run is already training.", severity="warning")
            return
        config = self.validate_form()
        if config is None:
            problems = str(self.query_one("#form-error").render()).strip() or "the settings do not validate"
            self.query_one(SettingsForm).remove_class("-collapsed")
            self.notify(f"Nothing started: fix the settings first.\n{problems}", title="Cannot start", severity="error", timeout=8)
            return
        if self.follower is not None:  # a replay opened from the runs screen: s starts a run of one's own
            self.follower = None
            self.sub_title = IbtuiApp.SUB_TITLE
        run_id = uuid.uuid4().hex[:8]
        control = RunControl(shared=self._trainer_factory is None)
        job = TrainingJob(run_id=run_id, config=config, run_dir=self._next_run_dir(config), control=control)
        self.job = job
        self.run_state = RunState(run_id=run_id, run_dir=job.run_dir, total_epochs=config.train.epochs)
        self.run_clock = RunClock(self._now)
        self.estimator = config.info.estimators[0]
        self.verdicts = None
        self._drawn_version = self._curves_version = -1
        form = self.query_one(SettingsForm)
        form.set_locked(True)
        if self.size.width < WIDE_COLUMNS:  # the plots need the whole width of a narrow terminal
            form.add_class("-collapsed")
        self.query_one(InfoPlanePlot).show_empty("preparing the run…")
        self.query_one("#loss", CurvesPlot).show(None, config.train.epochs)
        self.query_one("#accuracy", CurvesPlot).show(None, config.train.epochs)
        self._refresh_controls()
        self._show_status()
        self.train(job)

    def action_pause(self) -> None:
        if not self.running or self.job is None or self.run_state is None or self.run_state.status == "stopping":
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
        self._show_status()

    def action_cancel(self) -> None:
        if not self.running or self.job is None or self.run_state is None:
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
        self._show_status()

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

    def watch_estimator(self) -> None:
        self._drawn_version = -1  # the same data, another series: draw now
        self._redraw()

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

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

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

    async def stop_and_exit(self) -> None:
        """Ask the engine to stop (it keeps what was measured and saves a checkpoint); the app
        leaves when the worker says the run ended (on_run_ended). q again leaves at once."""
        job = self.job
        if job is None or not any(w.is_running for w in self.workers if w.group == "training"):
            self.exit(return_code=self._exit_code)
            return
        job.export = False
        job.control.request_stop()
        self._leaving = True
        if self.run_state is not None and self.run_state.active:
            self.run_state.status = "stopping"
            self._show_status()
        self.notify("Stopping: keeping what was measured, saving a checkpoint… (q again leaves at once)", timeout=30)

    def on_unmount(self) -> None:
        # However the app ends, never leave the training thread running (the process would wait).
        if self.job is not None:
            self.job.export = False
            self.job.control.request_stop()

    # -- the workers ------------------------------------------------------------------------------

    def _next_run_dir(self, config: RunConfig) -> Path:
        out = self._out
        if out is not None and (not out.exists() or (out.is_dir() and not any(out.iterdir()))):
            return out
        return default_run_dir(config, self._runs_root)

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def train(self, job: TrainingJob) -> None:
        """prepare -> execute -> export, in a thread; reports with messages, never touches widgets.

        The real engine runs in a process of its own that this thread relays events from: in this
        thread, drawing took the GIL from the training loop and cost it 5-25 % of its speed."""
        try:
            if self._trainer_factory is None:
                outcome = execute_in_process(job.config, job.run_dir, job.run_id, [job.buffer.push], job.control)
            else:
                trainer, store = self._trainer_factory(job.config, job.run_dir, job.run_id)
                outcome = None
        except IbtuiError as exc:
            self.post_message(RunCouldNotStart(job.run_id, str(exc)))
            return
        except Exception as exc:  # a bug, but the app must stay usable
            self.post_message(RunCouldNotStart(job.run_id, f"{type(exc).__name__}: {exc}"))
            return
        if outcome is None:
            try:
                outcome = execute(trainer, store, [job.buffer.push], job.control)
            except Exception as exc:  # execute has marked the store failed
                outcome = RunOutcome(job.run_dir, "failed", 0, 0.0, f"{type(exc).__name__}: {exc}")
        status, epoch, reason = outcome.status, outcome.epoch, outcome.reason
        self.post_message(RunEnded(job.run_id, job.run_dir, status, epoch, reason))
        if not job.export:  # quitting: leave at once
            return
        if status in ("finished", "interrupted"):
            self._verdicts(job.run_id, job.run_dir)
        self._export(job.run_id, job.run_dir)

    def _verdicts(self, run_id: str, run_dir: Path) -> None:
        try:
            analysis, error = read_verdicts(run_dir), None
        except Exception as exc:  # a run with no snapshots, a bug: say so, keep going
            analysis, error = None, f"{type(exc).__name__}: {exc}" if not isinstance(exc, IbtuiError) else str(exc)
        self.post_message(VerdictsReady(run_id, run_dir, analysis, error))

    @work(thread=True, group="export", exit_on_error=False)
    def export_figures(self, run_id: str, run_dir: Path) -> None:
        self._export(run_id, run_dir)

    def _export(self, run_id: str, run_dir: Path) -> None:
        try:
            paths = self._exporter(run_dir)
            error = None
        except Exception as exc:  # an IbtuiError, matplotlib missing, a bug: say so, keep going
            paths, error = [], f"{type(exc).__name__}: {exc}" if not isinstance(exc, IbtuiError) else str(exc)
        self.post_message(FiguresExported(run_id, run_dir, paths, error))

    # -- messages from the workers ----------------------------------------------------------------

    def _is_current(self, run_id: str) -> bool:
        return self.run_state is not None and self.run_state.run_id == run_id

    def on_run_could_not_start(self, message: RunCouldNotStart) -> None:
        if not self._is_current(message.run_id):
            return
        self.run_state.status = "failed"
        self.run_state.reason = message.reason
        self.run_clock and self.run_clock.stop()
        self.notify(message.reason, title="The run could not start", severity="error", timeout=10)
        self.query_one(InfoPlanePlot).show_empty("the run could not start (see the message)")
        self._run_over()

    def on_run_ended(self, message: RunEnded) -> None:
        if not self._is_current(message.run_id):
            return
        if self._leaving:
            self.exit(return_code=self._exit_code)
            return
        self.drain_events()  # the last events (RunFinished, the final snapshot) come first
        run = self.run_state
        run.status = message.status
        run.epoch = message.epoch or run.epoch
        run.reason = message.reason or run.reason
        self.run_clock and self.run_clock.stop()
        self._announce_end(message.status, message.epoch, message.reason, message.run_dir)
        self._run_over()

    def _announce_end(self, status: str, epoch: int, reason: str | None, run_dir: Path) -> None:
        if status == "failed":
            self.notify(f"{reason}\nWhat was measured is in {run_dir}", title="The run failed", severity="error", timeout=15)
        elif status == "interrupted":
            self.notify(f"Stopped at epoch {epoch:,}; continue with: ibtui resume {run_dir}", title="Run stopped", timeout=8)
        else:
            self.notify(f"Finished {epoch:,} epochs.", title="Run finished", timeout=5)

    def on_verdicts_ready(self, message: VerdictsReady) -> None:
        if not self._is_current(message.run_id):
            return
        if message.analysis is None or not message.analysis.get("estimators"):
            self.notify(message.error or "no information-plane estimates", title="No compression verdicts", severity="warning", timeout=8)
            return
        self.verdicts = message.analysis
        estimator = self.estimator if self.estimator in message.analysis["estimators"] else next(iter(message.analysis["estimators"]))
        self.notify(f"{estimator}: {verdict_counts_line(message.analysis, estimator)}.\nPress v for the table.",
                    title="Compression verdicts", timeout=12)

    def on_figures_exported(self, message: FiguresExported) -> None:
        if message.error:
            self.notify(message.error, title="Export failed", severity="error", timeout=10)
            return
        names = ", ".join(p.name for p in message.paths) or "no figures"
        self.notify(f"{names}\nin {message.run_dir}", title="PNGs written", timeout=10)

    def action_toggle_form(self) -> None:
        self.query_one(SettingsForm).toggle_class("-collapsed")

    def _run_over(self) -> None:
        self.query_one(SettingsForm).set_locked(False)
        self._redraw()
        self._show_status()
        self.validate_form()

    # -- drawing ----------------------------------------------------------------------------------

    def drain_events(self) -> None:
        """The UI timer: take what the worker produced (or, watching, what the run directory
        gained) since the last tick and redraw."""
        job, run = self.job, self.run_state
        if run is None:
            return
        if self.follower is not None:
            events, progress = self._follow(run), None
        elif job is None:
            return
        else:
            drained = job.buffer.drain()
            events, progress = drained.events, drained.progress
        for event in events:
            if isinstance(event, RunStarted) and event.run_id == run.run_id and self.run_clock is not None:
                self.run_clock.start(event.start_epoch)
            run.apply(event)
        if progress is not None:
            run.apply(progress)
        if self.run_clock is not None and run.started is not None and run.epoch > run.started.start_epoch:
            if not self.run_clock.measuring:
                self._drawn_version = -1  # the plane's "compiling kernels" title goes
            self.run_clock.progressed(run.epoch)
        if run.version != self._drawn_version or run.version != self._curves_version:  # new, or held back
            self._redraw(throttle=True)
        if events or (progress is not None and not run.active) or (
            run.active and time.monotonic() - self._status_at >= STATUS_INTERVAL_S
        ):
            self._show_status()
        if self.follower is not None and self.follower.ended and run.active is False and not self._watch_ended:
            self._watch_ended = True
            self._redraw()
            self._announce_end(run.status, run.epoch, run.reason, run.run_dir)
            self.read_watched_verdicts(run.run_id, run.run_dir)

    def _follow(self, run: RunState) -> list:
        """Watching: the run directory's news as events (a torn last line waits for the next tick)."""
        try:
            events = self.follower.poll()
        except IbtuiError as exc:
            self.follower.ended = True
            self.notify(str(exc), title="Stopped watching", severity="error", timeout=15)
            return []
        for event in events:
            if isinstance(event, RunStarted):
                run.run_id = event.run_id  # the writer's id: RunState drops events of other runs
        return events

    @work(thread=True, group="verdicts", exit_on_error=False)
    def read_watched_verdicts(self, run_id: str, run_dir: Path) -> None:
        self._verdicts(run_id, run_dir)

    def _redraw(self, throttle: bool = False) -> None:
        """Redraw the plots if the data changed; with throttle, at most every PLANE_INTERVAL_S
        and CURVES_INTERVAL_S (what is held back is drawn by a later tick)."""
        run = self.run_state
        if run is None or run.started is None:
            return
        now = time.monotonic()
        if run.version != self._curves_version and (not throttle or now - self._curves_at >= CURVES_INTERVAL_S):
            self._curves_at, self._curves_version = now, run.version
            self.query_one("#loss", CurvesPlot).show(run.curves, run.total_epochs)
            self.query_one("#accuracy", CurvesPlot).show(run.curves, run.total_epochs)
        if run.version == self._drawn_version or (throttle and now - self._drawn_at < PLANE_INTERVAL_S):
            return
        self._drawn_at = now
        self._drawn_version = run.version
        if self.estimator not in run.estimators:
            self.set_reactive(IbtuiApp.estimator, run.estimators[0])  # drawn just below
        latest_epoch = run.snapshots[-1].epoch if run.snapshots else None
        waiting = "waiting for the first snapshot…"
        if run.warming_up:
            waiting = warming_up(run) + "…"
        self.query_one(InfoPlanePlot).show(run.started, run.plane.get(self.estimator), self.estimator, latest_epoch, waiting)
        if run.started is not self._legend_for:  # a layout pass: only when the run changes
            self._legend_for = run.started
            self.query_one(PlaneLegend).show(run.started)
        self._refresh_controls()

    def _show_status(self) -> None:
        self._status_at = time.monotonic()
        self.query_one(StatusBar).show(self.run_state, self.run_clock)
