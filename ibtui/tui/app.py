"""The interactive app: set up a run, start it, watch the information plane move.

State, in Textual's idiom. A run's worker thread (ibtui.tui.worker) pushes engine events into an
EventBuffer and reports its end with dataclass messages carrying the run id (stale ones are
dropped). A polling timer drains the buffer (or, watching, the run directory) into the RunState
and marks what changed as stale through reactive flags (`plane_stale`, `curves_stale`); one
interval timer per plot draws it when it is stale. That is the redraw throttle: plotext
re-renders a whole plot each time, and on two cores every millisecond of UI Python is taken
from training, so the plane is drawn at most every PLANE_INTERVAL_S and the curves every
CURVES_INTERVAL_S; the run's end draws everything at once. What the footer's keys can do is
the reactive `controls` (a frozen snapshot, computed from the state): the footer is refreshed
only when it changes. The keys and their actions are in ibtui.tui.actions; styles in app.tcss.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.reactive import reactive, var
from textual.screen import Screen
from textual.widgets import Footer, Header

from ibtui.config import RunConfig
from ibtui.engine.control import RunControl
from ibtui.engine.events import RunStarted
from ibtui.errors import ConfigError, IbtuiError
from ibtui.runs.runner import default_run_dir
from ibtui.tui import worker
from ibtui.tui.actions import BINDINGS, RunActions
from ibtui.tui.commands import PresetCommands
from ibtui.tui.follow import RunFollower
from ibtui.tui.messages import FiguresExported, RunCouldNotStart, RunEnded, VerdictsReady
from ibtui.tui.runstate import RunClock, RunState
from ibtui.tui.screens.verdicts import verdict_counts_line
from ibtui.tui.widgets.curves import CurvesPlot
from ibtui.tui.widgets.info_plane import InfoPlanePlot, PlaneLegend
from ibtui.tui.widgets.settings import SettingsForm
from ibtui.tui.widgets.status import StatusBar, warming_up
from ibtui.tui.worker import Exporter, TrainerFactory, TrainingJob, export_pngs

WIDE_COLUMNS = 100  # narrower terminals fold the form away while a run trains
DRAIN_INTERVAL_S = 0.2  # how often the UI takes events from the worker (5 per second)
PLANE_INTERVAL_S = 0.45  # the information plane is drawn at most this often while a run trains
CURVES_INTERVAL_S = 0.95  # and the loss and accuracy curves at most this often
# The status line (elapsed time, speed) ticks this often: even that costs a few per cent of
# training speed at 5 per second.
STATUS_INTERVAL_S = 0.45


@dataclass(frozen=True)
class Controls:
    """What the keys can do right now (see RunActions.check_action)."""

    running: bool = False
    startable: bool = False
    has_run: bool = False
    watching: bool = False
    estimators: int = 0


class IbtuiApp(RunActions, App):
    CSS_PATH = "app.tcss"
    TITLE = "ibtui"
    SUB_TITLE = "the information plane, live"
    COMMANDS = App.COMMANDS | {PresetCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE_COLUMNS, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]
    BINDINGS = BINDINGS

    estimator: reactive[str | None] = reactive(None, init=False)  # the series the plane shows (m cycles)
    run_state: var[RunState | None] = var(None, init=False)  # the run on screen (current or last)
    form_config: var[RunConfig | None] = var(None, init=False)  # the form's config when it validates
    plane_stale = var(False, init=False)
    curves_stale = var(False, init=False)
    legend_for: var[RunStarted | None] = var(None, init=False)  # the run the layer key describes
    controls: var[Controls] = var(Controls(), init=False, bindings=True)

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
        self.read_only = watch is not None  # `ibtui watch`: the whole session is read-only
        self._watch_ended = False
        if watch is not None:
            config = watch.config
            self.sub_title = f"watching {watch.path}"
        if config is None:
            from ibtui.runs.presets import load_preset

            config = load_preset("tanh")
        self.base_config = config  # the preset (or the CLI's config) the form's values go on top of
        self.set_reactive(IbtuiApp.form_config, config)
        self._out = Path(out) if out is not None else None
        self._runs_root = Path(runs_root) if runs_root is not None else (self._out.parent if self._out else Path("runs"))
        # None: the real engine, in its own process (see worker.train); tests pass a fake that runs here.
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
        self.run_clock: RunClock | None = None
        self.verdicts: dict | None = None  # the analysis of the run on screen, once it has ended
        self._leaving = False  # quitting: waiting for the engine to stop
        self._exit_code = 0  # 128 + the signal number after SIGTERM or SIGHUP, as `ibtui run` exits

    # -- layout and start-up ----------------------------------------------------------------------

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
        self.show_status()
        for interval, callback in ((DRAIN_INTERVAL_S, self.drain_events), (PLANE_INTERVAL_S, self.draw_plane),
                                   (CURVES_INTERVAL_S, self.draw_curves), (STATUS_INTERVAL_S, self._tick_status)):
            self.set_interval(interval, partial(self._tick, callback))
        self.query_one(InfoPlanePlot).focus()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):  # a scheduler's stop, a closed SSH session
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.stop_on_signal, signum)

    @staticmethod
    def _tick(callback: Callable[[], None]) -> None:
        try:
            callback()
        except NoMatches:  # the app is closing (a quit mid-run) and its widgets are gone
            pass

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Runs", f"List the runs and sweeps under {self._runs_root}: replay, overlay, sweep progress", self.action_runs)
        yield SystemCommand("Sensitivity", "The sensitivity table of the run on screen (ibtui sensitivity)", self.action_sensitivity)
        yield SystemCommand("Presets", "Choose a preset to load into the form", self.action_presets)
        yield SystemCommand("Export PNGs", "Write info_plane.png and loss.png of the run on screen", self.action_export)

    # -- state ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.job is not None and self.run_state is not None and self.run_state.active

    def compute_controls(self) -> Controls:
        run = self.run_state
        return Controls(self.running, self.form_config is not None, run is not None, self.follower is not None,
                        len(run.estimators) if run is not None else 0)

    def watch_controls(self, controls: Controls) -> None:
        self.query_one(SettingsForm).set_startable(controls.startable and not controls.running)

    def watch_estimator(self) -> None:
        self.plane_stale = True  # the same data, another series: draw now
        self.draw_plane()

    def watch_legend_for(self, started: RunStarted | None) -> None:
        self.query_one(PlaneLegend).show(started)  # a layout pass: only when the run changes

    def _show_run(self, run: RunState, job: TrainingJob | None, clock: RunClock | None) -> None:
        """Put a new run on screen (one started here, or one watched)."""
        self.job, self.run_clock, self.verdicts = job, clock, None
        self.legend_for = None
        self.run_state = run
        self.plane_stale = self.curves_stale = True

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
                config = form.config(self.base_config)
            except ConfigError as exc:
                problems = [str(exc)]
        self.form_config = config
        form.show_error("\n".join(f"✗ {p}" for p in problems))
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

    # -- starting, watching, stopping -------------------------------------------------------------

    def start_run(self, config: RunConfig) -> None:
        if self.follower is not None:  # a replay opened from the runs screen: s starts a run of one's own
            self.follower = None
            self.sub_title = IbtuiApp.SUB_TITLE
        run_id = uuid.uuid4().hex[:8]
        control = RunControl(shared=self._trainer_factory is None)
        job = TrainingJob(run_id=run_id, config=config, run_dir=self._next_run_dir(config), control=control)
        self._show_run(RunState(run_id=run_id, run_dir=job.run_dir, total_epochs=config.train.epochs), job, RunClock(self._now))
        self.estimator = config.info.estimators[0]
        form = self.query_one(SettingsForm)
        form.set_locked(True)
        if self.size.width < WIDE_COLUMNS:  # the plots need the whole width of a narrow terminal
            form.add_class("-collapsed")
        self.query_one(InfoPlanePlot).show_empty("preparing the run…")
        self.query_one("#loss", CurvesPlot).show(None, config.train.epochs)
        self.query_one("#accuracy", CurvesPlot).show(None, config.train.epochs)
        self.show_status()
        self.train(job)

    def _next_run_dir(self, config: RunConfig) -> Path:
        out = self._out
        if out is not None and (not out.exists() or (out.is_dir() and not any(out.iterdir()))):
            return out
        return default_run_dir(config, self._runs_root)

    def _begin_watching(self, follower: RunFollower) -> None:
        """Show the run `follower` reads (live or finished): `ibtui watch`, or a replay from r."""
        self.follower = follower
        self._watch_ended = False
        self.base_config = follower.config
        run = RunState(run_id="", run_dir=follower.path, total_epochs=follower.config.train.epochs)
        run.status = "watching"
        self._show_run(run, None, None)
        form = self.query_one(SettingsForm)
        form.set_locked(self.read_only)  # a replay leaves s free for a run of one's own
        if self.size.width < WIDE_COLUMNS:
            form.add_class("-collapsed")
        self.query_one(InfoPlanePlot).show_empty(f"waiting for {follower.path.name} to start…")
        self.query_one("#loss", CurvesPlot).show(None, follower.config.train.epochs)
        self.query_one("#accuracy", CurvesPlot).show(None, follower.config.train.epochs)
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
        self.show_status()
        return True

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
            self.show_status()
        self.notify("Stopping: keeping what was measured, saving a checkpoint… (q again leaves at once)", timeout=30)

    def on_unmount(self) -> None:
        # However the app ends, never leave the training thread running (the process would wait).
        if self.job is not None:
            self.job.export = False
            self.job.control.request_stop()

    # -- the workers and their messages -----------------------------------------------------------

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def train(self, job: TrainingJob) -> None:
        worker.train(job, self._trainer_factory, self._exporter, self.post_message)

    @work(thread=True, group="export", exit_on_error=False)
    def export_figures(self, run_id: str, run_dir: Path) -> None:
        worker.export(run_id, run_dir, self._exporter, self.post_message)

    @work(thread=True, group="verdicts", exit_on_error=False)
    def read_watched_verdicts(self, run_id: str, run_dir: Path) -> None:
        worker.verdicts(run_id, run_dir, self.post_message)

    def _is_current(self, run_id: str) -> bool:
        """Whether a worker's message is for the run on screen and there is still a screen to show
        it on: Textual stops the app running before it removes the widgets, and a message (or the
        polling timer's last tick) in between once raised NoMatches in a widget already gone."""
        return self.is_running and self.run_state is not None and self.run_state.run_id == run_id

    @on(RunCouldNotStart)
    def _could_not_start(self, message: RunCouldNotStart) -> None:
        if not self._is_current(message.run_id):
            return
        self.run_state.status = "failed"
        self.run_state.reason = message.reason
        self.run_clock and self.run_clock.stop()
        self.notify(message.reason, title="The run could not start", severity="error", timeout=10)
        self.query_one(InfoPlanePlot).show_empty("the run could not start (see the message)")
        self._run_over()

    @on(RunEnded)
    def _run_ended(self, message: RunEnded) -> None:
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

    @on(VerdictsReady)
    def _verdicts_ready(self, message: VerdictsReady) -> None:
        if not self._is_current(message.run_id):
            return
        if message.analysis is None or not message.analysis.get("estimators"):
            self.notify(message.error or "no information-plane estimates", title="No compression verdicts", severity="warning", timeout=8)
            return
        self.verdicts = message.analysis
        estimator = self.estimator if self.estimator in message.analysis["estimators"] else next(iter(message.analysis["estimators"]))
        self.notify(f"{estimator}: {verdict_counts_line(message.analysis, estimator)}.\nPress v for the table.",
                    title="Compression verdicts", timeout=12)

    @on(FiguresExported)
    def _figures_exported(self, message: FiguresExported) -> None:
        if message.error:
            self.notify(message.error, title="Export failed", severity="error", timeout=10)
            return
        names = ", ".join(p.name for p in message.paths) or "no figures"
        self.notify(f"{names}\nin {message.run_dir}", title="PNGs written", timeout=10)

    def _run_over(self) -> None:
        self.query_one(SettingsForm).set_locked(False)
        self.mutate_reactive(IbtuiApp.run_state)  # no longer active: the keys change
        self.refresh_bindings()  # and the footer shows it even when the last drain already did
        self.draw_plane()
        self.draw_curves()
        self.show_status()
        self.validate_form()

    # -- polling and drawing ----------------------------------------------------------------------

    def drain_events(self) -> None:
        """The polling timer: apply what the worker produced (or, watching, what the run directory
        gained) since the last tick, and mark what it changed as stale."""
        job, run = self.job, self.run_state
        if not self.is_running or run is None or (job is None and self.follower is None):
            return
        if self.follower is not None:
            events, progress = self._follow(run), None
        else:
            drained = job.buffer.drain()
            events, progress = drained.events, drained.progress
        for event in events:
            if isinstance(event, RunStarted) and event.run_id == run.run_id and self.run_clock is not None:
                self.run_clock.start(event.start_epoch)
            if run.apply(event):
                self.plane_stale = self.curves_stale = True
        if progress is not None:
            run.apply(progress)
        if self.run_clock is not None and run.started is not None and run.epoch > run.started.start_epoch:
            if not self.run_clock.measuring:
                self.plane_stale = True  # the plane's "compiling kernels" title goes
            self.run_clock.progressed(run.epoch)
        if events:
            self.legend_for = run.started
            self.mutate_reactive(IbtuiApp.run_state)  # a run started or ended: the keys change
        if events or (progress is not None and not run.active):
            self.show_status()
        if self.follower is not None and self.follower.ended and not run.active and not self._watch_ended:
            self._watch_ended = True
            self.draw_plane()
            self.draw_curves()
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

    def draw_plane(self) -> None:
        """The plane timer (and the run's end): draw the information plane if it is stale."""
        run = self.run_state
        if not self.plane_stale or run is None or run.started is None:
            return
        self.plane_stale = False
        if self.estimator not in run.estimators:
            self.set_reactive(IbtuiApp.estimator, run.estimators[0])  # drawn just below
        latest_epoch = run.snapshots[-1].epoch if run.snapshots else None
        waiting = warming_up(run) + "…" if run.warming_up else "waiting for the first snapshot…"
        self.query_one(InfoPlanePlot).show(run.started, run.plane.get(self.estimator), self.estimator, latest_epoch, waiting)

    def draw_curves(self) -> None:
        """The curves timer (and the run's end): draw the loss and accuracy if they are stale."""
        run = self.run_state
        if not self.curves_stale or run is None or run.started is None:
            return
        self.curves_stale = False
        self.query_one("#loss", CurvesPlot).show(run.curves, run.total_epochs)
        self.query_one("#accuracy", CurvesPlot).show(run.curves, run.total_epochs)

    def _tick_status(self) -> None:
        if self.run_state is not None and self.run_state.active:
            self.show_status()  # elapsed time and speed move on their own

    def show_status(self) -> None:
        self.query_one(StatusBar).show(self.run_state, self.run_clock)
