"""`ibtui run`, `ibtui tui`, `ibtui resume` and the app by default: train, headless or live."""

from __future__ import annotations

import inspect
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import (
    EXIT_FAILED, ActivationOpt, BatchOpt, BinSizeOpt, CsvOpt, DatasetOpt, DeviceOpt, DropoutOpt, EpochsOpt,
    EstimatorOpt, FeaturesOpt, HiddenOpt, L2Opt, LabelOpt, LrOpt, NoiseOpt, OutOpt, PresetOpt, SaveActOpt, SeedOpt,
    SeedsOpt, app, build_config, err_console, fail, out_console,
)
from ibtui.cli.common import (
    DataDirOpt, L2ModeOpt, LabelNoiseOpt, MeasureOnOpt, MiSamplesOpt, ModelOpt, MomentumOpt, OptimizerOpt, SnapshotsOpt,
)


def _export(run_dir: Path) -> list[Path]:
    """The run's figures, drawn side by side in the estimator processes the run prestarted (idle
    now), else here; with the processes, this one never imports matplotlib. The processes are
    ended afterwards, not asked to exit: a graceful exit tears torch down in each and the
    interpreter's exit would wait for them."""
    from ibtui.engine import workers
    from ibtui.export.figures import export_run

    try:
        return export_run(run_dir, pool=workers.prestarted_pool())
    finally:
        workers.close_prestarted(terminate=True)


def _prestart_estimators(config) -> None:
    """Start the estimator processes a CPU run will use now, before this process loads the data
    and trains: forked after this process has imported torch and the estimators and loaded their
    kernels (workers.prestart), so that none of that is done three times on the same cores."""
    import os

    from ibtui.engine import workers
    from ibtui.engine.processes import usable_cores
    from ibtui.engine.schedule import snapshot_epochs

    if config.model.factory or config.train.device not in ("cpu", "auto"):
        return  # own models: layers unknown here; on a GPU the estimates run in line
    if config.train.device == "auto" and Path("/proc/driver/nvidia").exists():
        return
    # torch's own count (what the pipeline reads) is not known before torch is imported; a pool
    # of another shape is closed by the pipeline and it starts its own.
    cores = int(os.environ.get("OMP_NUM_THREADS") or usable_cores())
    if cores < 2:
        return
    layers = len(config.model.hidden) + bool(config.info.measure_output)
    # mi_samples bounds N from above; the pipeline decides on the real N, and a pool it does not
    # take only draws the figures.
    pairs = workers.kde_pairs(config.info, len(snapshot_epochs(config.info, config.train.epochs)), config.train.seeds,
                              layers, config.data.mi_samples)
    if pairs >= workers.PROCESS_MIN_PAIRS:
        workers.prestart(*workers.pool_shape(cores), config.info, fork=True)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopOnSignals:
    """Ctrl-C (SIGINT), SIGTERM (a scheduler, `timeout`, systemd) and SIGHUP (a closed SSH
    session or tmux) all stop a run the same way.

    First signal: control.request_stop(): training stops, the estimates of every snapshot already
    taken are finished and the checkpoint is written at the last kept one. Second:
    request_stop() again, which skips the remaining estimates. Third: abort (KeyboardInterrupt),
    recorded as "interrupted". `exit_code` is 128 + the first signal's number. A signal that was
    ignored when we started (nohup's SIGHUP, a background job's SIGINT) stays ignored.
    """

    def __init__(self, control) -> None:
        self.control = control
        self.previous: dict[int, object] = {}
        self.signum: int | None = None
        self.count = 0

    def __enter__(self):
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is signal.SIG_IGN:
                continue
            self.previous[signum] = previous
            signal.signal(signum, self._handle)
        return self

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def _handle(self, signum, frame):
        self.count += 1
        if self.signum is None:
            self.signum = signum
        if signum == signal.SIGHUP and sys.stderr.isatty():
            _detach_from_terminal()  # the terminal is gone: writing to it would fail the run
        name = signal.Signals(signum).name
        if self.count == 1:
            self.control.request_stop()
            _say(f"\n{name}: stopping; finishing the estimates already taken and saving (Ctrl-C again to skip them)...")
        elif self.count == 2:
            self.control.request_stop()  # the engine's second stop: skip the remaining estimates
            _say(f"\n{name} again: skipping the remaining estimates (once more to abort)...")
        else:
            self._restore()
            raise KeyboardInterrupt

    def _restore(self) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous = {}

    def __exit__(self, *exc):
        self._restore()
        return False


StopOnSigint = StopOnSignals  # the old name, for callers outside the CLI


def _detach_from_terminal() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    os.close(devnull)


def _say(text: str) -> None:
    try:
        err_console.print(text, highlight=False, markup=False)
    except OSError:  # a closed terminal must not turn a stop into a crash
        pass


class _SkipFiguresOnSignal:
    """While the figures of a saved run are drawn, a stop signal (a late third Ctrl-C, a
    scheduler's SIGTERM) skips them instead of killing the process; after them, until the
    process exits, stop signals are ignored. The exit code stays 128 + the first signal's
    number, and nothing of the run is lost."""

    def __init__(self, stops: StopOnSignals) -> None:
        self.stops = stops
        self.previous: dict[int, object] = {}

    def _handle(self, signum, frame):
        self.stops.signum = self.stops.signum or signum
        raise KeyboardInterrupt

    def __enter__(self):
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        # The command ends next and nothing is left to stop. SIG_IGN, not a Python handler:
        # Python puts its own handlers back to the default (death by the signal) while the
        # interpreter shuts down, and a late signal would then end the process with -signum.
        for signum in self.previous:
            signal.signal(signum, signal.SIG_IGN)
        return False


def _run_headless(trainer, store, quiet: bool = False) -> None:
    """Drive a prepared run with a progress bar, export its PNGs, and exit as the outcome says."""
    from ibtui.runs.runner import describe_os_error, execute
    from ibtui.engine.control import RunControl
    from ibtui.cli.progress import ConsoleProgress

    control = RunControl()
    run_dir = store.path
    note = trainer.workload_note()
    if note:
        err_console.print(f"ibtui: {note}", highlight=False, markup=False, soft_wrap=True)
    stops = StopOnSignals(control)
    try:
        with stops, ConsoleProgress(err_console, quiet=quiet) as progress:
            outcome = execute(trainer, store, [progress.handle], control)
    except KeyboardInterrupt:
        _say(f"Aborted; continue with: ibtui resume {run_dir}")
        raise typer.Exit(stops.exit_code) from None
    except OSError as exc:
        status = "recorded" if store.status_recorded else "not recorded: the disk took no more"
        fail(
            f"the run stopped: {describe_os_error(exc)}; what was written is in {run_dir} "
            f"(status {status}); free space and continue with 'ibtui resume {run_dir}'",
            EXIT_FAILED,
        )
    try:
        with _SkipFiguresOnSignal(stops):  # the run is saved: a signal now only skips the figures
            figures = _export(outcome.run_dir)
    except KeyboardInterrupt:
        figures = []
        _say(f"figures skipped; 'ibtui export {outcome.run_dir}' writes them later")
    except OSError as exc:
        figures = []
        _say(f"ibtui: could not write the figures: {describe_os_error(exc)}; 'ibtui export {outcome.run_dir}' writes them later")
    for figure in figures:
        _say(f"wrote {figure}")
    if outcome.status == "interrupted":
        resume_from = store.summary.get("checkpoint_epoch", 0)
        _say(
            f"Stopped with training at epoch {outcome.epoch}; a resume continues from epoch {resume_from:,} "
            f"(the last checkpoint): ibtui resume {outcome.run_dir}"
        )
        _print_out(str(outcome.run_dir))
        raise typer.Exit(stops.exit_code)
    if outcome.status == "failed":
        _print_out(str(outcome.run_dir))
        fail(f"the run failed: {outcome.reason} (everything measured so far is in {outcome.run_dir})", EXIT_FAILED)
    _print_out(str(outcome.run_dir))


def _print_out(text: str) -> None:
    try:
        out_console.print(text, highlight=False, markup=False)
    except OSError:
        pass


@app.command()
def run(
    preset: PresetOpt = "tanh",
    epochs: EpochsOpt = None,
    activation: ActivationOpt = None,
    hidden: HiddenOpt = None,
    l2: L2Opt = None,
    dropout: DropoutOpt = None,
    noise_variance: NoiseOpt = None,
    estimator: EstimatorOpt = None,
    bin_size: BinSizeOpt = None,
    seed: SeedOpt = None,
    seeds: SeedsOpt = None,
    lr: LrOpt = None,
    batch_size: BatchOpt = None,
    dataset: DatasetOpt = None,
    data_csv: CsvOpt = None,
    features: FeaturesOpt = None,
    label: LabelOpt = None,
    device: DeviceOpt = None,
    save_activations: SaveActOpt = None,
    out: OutOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    model: ModelOpt = None,
    label_noise: LabelNoiseOpt = None,
    measure_on: MeasureOnOpt = None,
    optimizer: OptimizerOpt = None,
    momentum: MomentumOpt = None,
    l2_mode: L2ModeOpt = None,
    snapshots: SnapshotsOpt = None,
    mi_samples: MiSamplesOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Train headless with a live progress bar; write the run directory and its PNGs."""
    options = {k: v for k, v in locals().items() if k not in ("out", "quiet")}
    config = build_config(**options)
    if out is not None:
        from ibtui.runs.files import check_new_run_dir

        check_new_run_dir(out)  # a taken --out is refused before any process starts
    from ibtui.engine import workers

    _prestart_estimators(config)
    try:
        from ibtui.runs.runner import prepare_run  # imports torch: after the options are checked

        trainer, store = prepare_run(config, out)  # no --out: a new runs/<name>-<date-time>
        _run_headless(trainer, store, quiet)
    finally:
        # Whatever ended the command (a refusal, a failure, an abort), the processes end now:
        # a graceful exit tears torch down in each, and the interpreter's exit would wait.
        workers.close_prestarted(terminate=True)


def tui(**options) -> None:
    """Open the interactive app with the form filled from a preset and these options."""
    out = options.pop("out")
    config = build_config(**options)
    if out is not None:  # refused as `ibtui run` refuses it, before the app takes the terminal
        from ibtui.runs.files import check_new_run_dir

        check_new_run_dir(out)
    _launch_tui(config, out)


# `ibtui tui` takes exactly the options of `ibtui run` (but --quiet): one list, kept in one place.
_run_signature = inspect.signature(run, eval_str=True)
tui.__signature__ = _run_signature.replace(
    parameters=[p for name, p in _run_signature.parameters.items() if name != "quiet"]
)
app.command()(tui)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="A run directory left by an interrupted run.")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Continue an interrupted run from its last checkpoint to its configured epoch count."""
    from ibtui.runs.runner import prepare_resume

    trainer, store = prepare_resume(run_dir)
    _run_headless(trainer, store, quiet)


def _launch_tui(config, out: Path | None) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the interactive app needs a terminal; without one use 'ibtui run' (see 'ibtui run --help')")
    from ibtui.tui.app import IbtuiApp

    app = IbtuiApp(config=config, out=out)
    app.run()
    if app.return_code:  # 128 + signum after SIGTERM or SIGHUP, as `ibtui run` exits
        raise typer.Exit(app.return_code)


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """With no command: the interactive app on the default preset."""
    if ctx.invoked_subcommand is None:
        from ibtui.runs.presets import load_preset

        _launch_tui(load_preset("tanh"), None)


