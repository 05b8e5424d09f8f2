"""The command line: the TUI by default; run, resume, presets, export and the science commands.

Headless commands never import textual (the TUI is imported lazily), so `ibtui run` starts fast,
and every bad input becomes one sentence on stderr with exit code 2.
"""

from __future__ import annotations

import inspect
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ibtui.core.errors import IbtuiError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="ibtui: watch the information plane of neural networks, live in the terminal.",
)
# No emoji codes (":x:" in a CSV header is not an emoji) and no markup in what users gave us.
err_console = Console(stderr=True, emoji=False)
# Piped output (a file, CI, `| less`) gets a wide console so tables are not squeezed to 80 columns.
out_console = Console(emoji=False) if sys.stdout.isatty() else Console(width=160, emoji=False)

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# -- options shared by `run` and `tui` -----------------------------------------------------------

PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Preset name (see `ibtui presets`) or a path to a .toml config.")]
EpochsOpt = Annotated[int | None, typer.Option(help="Training epochs.")]
ActivationOpt = Annotated[str | None, typer.Option(help="tanh, relu, sigmoid, softsign, softplus, elu, gelu, linear, hard-tanh.")]
HiddenOpt = Annotated[str | None, typer.Option(help="Hidden layer widths, comma-separated, e.g. 10,7,5,4,3.")]
L2Opt = Annotated[float | None, typer.Option("--l2", help="L2 factor: loss += l2 * sum of squared weights.")]
DropoutOpt = Annotated[float | None, typer.Option(help="Dropout rate after each hidden layer while training.")]
NoiseOpt = Annotated[float | None, typer.Option("--noise-variance", help="KDE noise variance sigma^2.")]
EstimatorOpt = Annotated[list[str] | None, typer.Option("--estimator", help="kde_upper, kde_lower, binning, adaptive (repeatable).")]
BinSizeOpt = Annotated[float | None, typer.Option(help="Binning: bin size (Saxe: 0.07).")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (the first seed of an ensemble).")]
SeedsOpt = Annotated[int | None, typer.Option(help="Number of seeds trained at once as one batched model.")]
LrOpt = Annotated[float | None, typer.Option(help="Learning rate.")]
BatchOpt = Annotated[int | None, typer.Option(help="Minibatch size (0: full batch).")]
DatasetOpt = Annotated[str | None, typer.Option(help="tishby, pokemon or csv.")]
CsvOpt = Annotated[Path | None, typer.Option("--data-csv", help="CSV file: the Kaggle 300k.csv for pokemon, or any CSV for csv.")]
FeaturesOpt = Annotated[str | None, typer.Option(help="csv: feature columns, comma-separated.")]
LabelOpt = Annotated[str | None, typer.Option(help="csv: the label column.")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu or cuda.")]
SaveActOpt = Annotated[bool | None, typer.Option("--save-activations/--no-save-activations", help="Keep every snapshot's activations for `ibtui estimate`.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="The run directory (default: runs/<preset>-<date-time>).")]


def _split_list(text: str | None, convert=str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(convert(part.strip()) for part in text.split(",") if part.strip())
    except ValueError:
        raise IbtuiError(f"'{text}' is not a comma-separated list of {convert.__name__} values") from None


def build_config(
    preset: str,
    *,
    epochs=None, activation=None, hidden=None, l2=None, dropout=None, noise_variance=None,
    estimator=None, bin_size=None, seed=None, seeds=None, lr=None, batch_size=None, dataset=None,
    data_csv=None, features=None, label=None, device=None, save_activations=None,
):  # the options of `ibtui run` and `ibtui tui`, by name
    """A preset with the command line's options on top; validated, so errors come before any work."""
    from ibtui.core.presets import load_preset

    config = load_preset(preset)
    return config.with_overrides(
        {
            "train.epochs": epochs,
            "model.activation": activation,
            "model.hidden": _split_list(hidden, int),
            "train.l2": l2,
            "model.dropout": dropout,
            "info.noise_variance": noise_variance,
            "info.estimators": tuple(estimator) if estimator else None,
            "info.bin_size": bin_size,
            "train.seed": seed,
            "train.seeds": seeds,
            "train.lr": lr,
            "train.batch_size": batch_size,
            "data.name": dataset,
            "data.csv": str(data_csv) if data_csv else None,
            "data.features": _split_list(features),
            "data.label": label,
            "train.device": device,
            "info.save_activations": save_activations,
        }
    )


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    err_console.print(f"ibtui: {message}", style="bold red", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


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
    from ibtui.core.runner import execute
    from ibtui.core.train import RunControl
    from ibtui.progress import ConsoleProgress

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


def _export(run_dir: Path) -> list[Path]:
    from ibtui.export.png import export_run

    return export_run(run_dir)


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
) -> None:
    """Train headless with a live progress bar; write the run directory and its PNGs."""
    options = {k: v for k, v in locals().items() if k not in ("out", "quiet")}
    config = build_config(**options)
    from ibtui.core.runner import default_run_dir, prepare_run  # imports torch: after the options are checked

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
    from ibtui.core.runner import prepare_resume

    trainer, store = prepare_resume(run_dir)
    _run_headless(trainer, store, quiet)


@app.command()
def presets() -> None:
    """List the presets: name, dataset, network, activation, L2, epochs, estimators."""
    from rich.table import Table

    from ibtui.core.presets import load_preset, preset_paths

    table = Table(title="ibtui presets", title_justify="left")
    for column in ("name", "dataset", "hidden", "activation", "L2", "epochs", "batch", "estimators"):
        table.add_column(column, no_wrap=column != "estimators")
    for name in preset_paths():
        c = load_preset(name)
        net = "-".join(str(w) for w in c.model.hidden)
        table.add_row(
            name, c.data.name, net, c.model.activation, f"{c.train.l2:g}", f"{c.train.epochs:,}",
            str(c.train.batch_size or "full"), ", ".join(c.info.estimators),
        )
    out_console.print(table)


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write (again) the PNG figures of a run directory."""
    from ibtui.core.store import load_run

    load_run(run_dir)  # a clear error for a directory that is not a run
    for figure in _export(run_dir):
        out_console.print(str(figure), highlight=False, markup=False)


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory (or RUN/estimates/<label>).")]) -> None:
    """Compression verdicts per layer and estimator, their spread over seeds, and the gradient SNR transition."""
    from rich.table import Table

    from ibtui.core.analysis import VERDICT_COLUMNS, analyse_run, verdict_rows
    from ibtui.core.config import what_ran
    from ibtui.core.errors import StoreError
    from ibtui.core.store import load_run

    record = load_run(run_dir)
    if not record.snapshots:
        raise StoreError(f"{run_dir} has no snapshots yet, so there is nothing to report")
    analysis = analyse_run(record)
    seeds = analysis.get("seeds", 1)
    ran = ", ".join(what_ran(record.config, str(record.summary.get("name") or record.config.name)))
    table = Table(title=f"Compression verdicts: {escape(ran)}, {seeds} seed(s), "
                  f"{len(record.snapshots)} snapshots to epoch {record.snapshots[-1].epoch:,}", title_justify="left")
    for column in VERDICT_COLUMNS:
        table.add_column(column, no_wrap=True, justify="left" if column in ("layer", "estimator") else "right")
    styles = {"compression": "bold green", "inconclusive": "yellow"}
    for cells in verdict_rows(analysis):
        for verdict_at in (5, 9):
            style = styles.get(cells[verdict_at])
            cells[verdict_at] = f"[{style}]{cells[verdict_at]}[/]" if style else cells[verdict_at]
        table.add_row(*cells)
    out_console.print(table)
    if seeds > 1:
        out_console.print("drop bits: mean ± std over seeds of each seed's smoothed peak minus smoothed end.", highlight=False)
    if analysis["snr"]:
        snr = Table(title="Gradient SNR: drift -> diffusion (smoothed |mean| / |std| first falls below 1)", title_justify="left")
        for column in ("layer", "transition epoch", "per seed"):
            snr.add_column(column, no_wrap=column != "per seed")
        for entry in analysis["snr"]:
            epoch = f"{entry['epoch']:,}" if entry["epoch"] is not None else f"none: {entry.get('reason', '')}"
            snr.add_row(entry["layer"], epoch, ", ".join("-" if e is None else f"{e:,}" for e in entry["epochs"]))
        out_console.print(snr)
    out_console.print(f"Rule: {analysis['rule']['text']} (k = {analysis['rule']['k']:g}; "
                      f"threshold max({analysis['rule']['min_drop_bits']:g} bits, "
                      f"{100 * analysis['rule']['min_drop_fraction']:g} % of the peak)).", highlight=False, soft_wrap=True)


@app.command()
def estimate(
    run_dir: Annotated[Path, typer.Argument(help="A run trained with --save-activations.")],
    estimator: EstimatorOpt = None,
    bin_size: BinSizeOpt = None,
    n_bins: Annotated[int | None, typer.Option(help="Binning: this many equal bins on the data's range.")] = None,
    noise_variance: NoiseOpt = None,
    adaptive_bins: Annotated[int | None, typer.Option(help="Adaptive binning: number of bins.")] = None,
    label: Annotated[str | None, typer.Option(help="Name of the RUN/estimates/<label> folder (default: from the settings).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing estimate with the same label.")] = False,
) -> None:
    """Re-estimate the information plane from saved activations, without training: RUN/estimates/<label>/."""
    from ibtui.core.reestimate import changed_config, reestimate
    from ibtui.core.store import load_run
    from ibtui.export.png import INFO_PLANE_FILE, info_plane_figure, save_figure

    record = load_run(run_dir)
    config = changed_config(record.config, estimators=estimator, noise_variance=noise_variance, bin_size=bin_size,
                            n_bins=n_bins, adaptive_bins=adaptive_bins)
    progress = lambda done, total: err_console.print(f"estimated {done}/{total} snapshots", highlight=False) if done % 20 == 0 or done == total else None  # noqa: E731
    out = reestimate(run_dir, config, label, overwrite=overwrite, progress=progress)
    save_figure(info_plane_figure(load_run(out)), out / INFO_PLANE_FILE)
    out_console.print(str(out), highlight=False, markup=False)


@app.command()
def reproduce(
    paper: Annotated[str, typer.Argument(help="saxe (tanh vs relu) or pokemon (the four Dong & Hisham presets).")],
    seeds: Annotated[int | None, typer.Option(help="Seeds per run, trained as one batched model (saxe: 5).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (default: the presets').")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the runs and REPORT.md (default: runs/reproduce-<paper>-<date-time>).")] = None,
    data_csv: Annotated[Path | None, typer.Option("--data-csv", help="pokemon: your copy of the Kaggle 300k.csv (default: the synthetic stand-in).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", hidden=True, help="KEY=VALUE config override, e.g. info.every=5.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a paper's presets, judge its claims from the compression verdicts, and write DIR/REPORT.md."""
    import time as _time

    from ibtui.progress import ConsoleProgress
    from ibtui.reproduce import parse_overrides, run_paper

    target = out or Path("runs") / f"reproduce-{paper}-{_time.strftime('%Y%m%d-%H%M%S')}"

    settings = parse_overrides(overrides)
    if data_csv:
        settings["data.csv"] = str(data_csv)
    report_path = run_paper(paper, target, seeds=seeds, epochs=epochs, overrides=settings,
                            progress=lambda: ConsoleProgress(err_console, quiet=quiet), log=lambda text: err_console.print(text, highlight=False))
    out_console.print(str(report_path), highlight=False, markup=False)


def _launch_tui(config, out: Path | None) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("the interactive app needs a terminal; without one use 'ibtui run' (see 'ibtui run --help')")
    from ibtui.tui.app import IbtuiApp

    IbtuiApp(config=config, out=out).run()


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """With no command: the interactive app on the default preset."""
    if ctx.invoked_subcommand is None:
        from ibtui.core.presets import load_preset

        _launch_tui(load_preset("tanh"), None)


def main() -> None:
    """Console entry point: IbtuiError becomes one sentence and exit 2, never a traceback."""
    try:
        app()
    except IbtuiError as exc:
        err_console.print(f"ibtui: {exc}", style="bold red", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        err_console.print("ibtui: aborted")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
