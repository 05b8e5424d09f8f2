"""`ibtui run`, `ibtui tui`, `ibtui resume` and the app by default: train, headless or live."""

from __future__ import annotations

import inspect
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import (
    EXIT_INTERRUPTED, ActivationOpt, BatchOpt, BinSizeOpt, CsvOpt, DatasetOpt, DeviceOpt, DropoutOpt, EpochsOpt,
    EstimatorOpt, FeaturesOpt, HiddenOpt, L2Opt, LabelOpt, LrOpt, NoiseOpt, OutOpt, PresetOpt, SaveActOpt, SeedOpt,
    SeedsOpt, app, build_config, err_console, fail, out_console,
)
from ibtui.cli.common import (
    DataDirOpt, L2ModeOpt, LabelNoiseOpt, MeasureOnOpt, MiSamplesOpt, ModelOpt, MomentumOpt, OptimizerOpt, SnapshotsOpt,
)


def _export(run_dir: Path) -> list[Path]:
    from ibtui.export.png import export_run

    return export_run(run_dir)


class StopOnSigint:
    """First Ctrl-C: ask the engine to stop at the next step and save; a second one aborts."""

    def __init__(self, control) -> None:
        self.control = control
        self.previous = None

    def __enter__(self):
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.control.stop_requested:
            signal.signal(signal.SIGINT, self.previous)
            raise KeyboardInterrupt
        self.control.request_stop()
        err_console.print("\nStopping at the next step and saving (Ctrl-C again to abort)...")

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)
        return False


def _run_headless(trainer, store, quiet: bool = False) -> None:
    """Drive a prepared run with a progress bar, export its PNGs, and exit as the outcome says."""
    from ibtui.runs.runner import execute
    from ibtui.engine.control import RunControl
    from ibtui.cli.progress import ConsoleProgress

    control = RunControl()
    with StopOnSigint(control), ConsoleProgress(err_console, quiet=quiet) as progress:
        outcome = execute(trainer, store, [progress.handle], control)
    figures = _export(outcome.run_dir)
    for figure in figures:
        err_console.print(f"wrote {figure}", highlight=False, markup=False)
    if outcome.status == "interrupted":
        err_console.print(f"Interrupted at epoch {outcome.epoch}; continue with: ibtui resume {outcome.run_dir}", highlight=False, markup=False)
        out_console.print(str(outcome.run_dir), highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    if outcome.status == "failed":
        out_console.print(str(outcome.run_dir), highlight=False, markup=False)
        fail(f"the run failed: {outcome.reason} (everything measured so far is in {outcome.run_dir})")
    out_console.print(str(outcome.run_dir), highlight=False, markup=False)


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
    from ibtui.runs.runner import default_run_dir, prepare_run  # imports torch: after the options are checked

    trainer, store = prepare_run(config, out or default_run_dir(config))
    _run_headless(trainer, store, quiet)


def tui(**options) -> None:
    """Open the interactive app with the form filled from a preset and these options."""
    out = options.pop("out")
    _launch_tui(build_config(**options), out)


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

    IbtuiApp(config=config, out=out).run()


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """With no command: the interactive app on the default preset."""
    if ctx.invoked_subcommand is None:
        from ibtui.runs.presets import load_preset

        _launch_tui(load_preset("tanh"), None)


