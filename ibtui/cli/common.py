"""What every command shares: the typer app, the consoles, the run options, `fail` and `build_config`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ibtui.errors import IbtuiError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="ibtui: watch the information plane of neural networks, live in the terminal.",
)
# No emoji codes (":x:" in a CSV header is not an emoji) and no markup in what users gave us.
# Piped stderr (a log file, CI) is not wrapped at 80 columns: a progress line stays one line.
err_console = Console(stderr=True, emoji=False) if sys.stderr.isatty() else Console(stderr=True, emoji=False, soft_wrap=True)
# Piped output (a file, CI, `| less`) gets a wide console so tables are not squeezed to 80 columns.
out_console = Console(emoji=False) if sys.stdout.isatty() else Console(width=160, emoji=False)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1  # a run that started and could not go on (a full disk, a diverged loss)
EXIT_INTERRUPTED = 130  # 128 + SIGINT; SIGTERM gives 143 and SIGHUP 129

# -- options shared by `run` and `tui` -----------------------------------------------------------

PresetOpt = Annotated[str, typer.Option("--preset", "-p", help="Preset name (see `ibtui presets`) or a path to a .toml config.")]
EpochsOpt = Annotated[int | None, typer.Option(help="Training epochs.")]
ActivationOpt = Annotated[str | None, typer.Option(help="tanh, relu, sigmoid, softsign, softplus, elu, gelu, linear, hard-tanh.")]
HiddenOpt = Annotated[str | None, typer.Option(help="Hidden layer widths, comma-separated, e.g. 10,7,5,4,3.")]
L2Opt = Annotated[float | None, typer.Option("--l2", help="L2 factor: loss += l2 * sum of squared weights.")]
DropoutOpt = Annotated[float | None, typer.Option(help="Dropout rate after each hidden layer while training.")]
NoiseOpt = Annotated[float | None, typer.Option("--noise-variance", help="KDE noise variance sigma^2.")]
EstimatorOpt = Annotated[list[str] | None, typer.Option("--estimator", help="kde_upper, kde_lower, binning, adaptive, ksg, edge (repeatable).")]
BinSizeOpt = Annotated[float | None, typer.Option(help="Binning: bin size (Saxe: 0.07).")]
SeedOpt = Annotated[int | None, typer.Option(help="Random seed (the first seed of an ensemble).")]
SeedsOpt = Annotated[int | None, typer.Option(help="Number of seeds trained at once as one batched model.")]
LrOpt = Annotated[float | None, typer.Option(help="Learning rate.")]
BatchOpt = Annotated[int | None, typer.Option(help="Minibatch size (0: full batch).")]
DatasetOpt = Annotated[str | None, typer.Option(help="tishby, pokemon, csv, digits, mnist or fashion-mnist.")]
CsvOpt = Annotated[Path | None, typer.Option("--data-csv", help="CSV file: the Kaggle 300k.csv for pokemon, or any CSV for csv.")]
FeaturesOpt = Annotated[str | None, typer.Option(help="csv: feature columns, comma-separated.")]
LabelOpt = Annotated[str | None, typer.Option(help="csv: the label column.")]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu or cuda.")]
SaveActOpt = Annotated[bool | None, typer.Option("--save-activations/--no-save-activations", help="Keep every snapshot's activations for `ibtui estimate`.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="The run directory (default: runs/<preset>-<date-time>).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Your own network: FILE.py:FUNCTION, a factory make_model(input_shape, n_classes) returning an nn.Module.")]
LabelNoiseOpt = Annotated[float | None, typer.Option("--label-noise", help="Fraction of training labels replaced at random (1.0: the random-label control).")]
MeasureOnOpt = Annotated[str | None, typer.Option("--measure-on", help="Samples the information plane is measured on: all, train or test.")]
OptimizerOpt = Annotated[str | None, typer.Option("--optimizer", help="adam or sgd.")]
MomentumOpt = Annotated[float | None, typer.Option("--momentum", help="SGD momentum (torch.optim.SGD's rule).")]
L2ModeOpt = Annotated[str | None, typer.Option("--l2-mode", help="loss (loss += l2 sum W^2) or weight_decay (decoupled, AdamW's rule; --model only).")]
SnapshotsOpt = Annotated[int | None, typer.Option("--snapshots", help="N log-spaced snapshot epochs instead of the preset's schedule.")]
MiSamplesOpt = Annotated[int | None, typer.Option("--mi-samples", help="Measure MI on a stratified subset of at most N samples.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="mnist, fashion-mnist: the folder of the IDX files.")]


def _split_list(text: str | None, convert=str) -> tuple | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):  # "10,,3" is a typo, not [10, 3]
        raise IbtuiError(f"'{text}' has an empty entry; give a comma-separated list of {convert.__name__} values like 10,7,5")
    try:
        return tuple(convert(part) for part in parts)
    except ValueError:
        raise IbtuiError(f"'{text}' is not a comma-separated list of {convert.__name__} values") from None


def build_config(
    preset: str,
    *,
    epochs=None, activation=None, hidden=None, l2=None, dropout=None, noise_variance=None,
    estimator=None, bin_size=None, seed=None, seeds=None, lr=None, batch_size=None, dataset=None,
    data_csv=None, features=None, label=None, device=None, save_activations=None,
    model=None, label_noise=None, measure_on=None, optimizer=None, momentum=None, l2_mode=None, snapshots=None,
    mi_samples=None, data_dir=None,
):  # the options of `ibtui run` and `ibtui tui`, by name
    """A preset with the command line's options on top; validated, so errors come before any work."""
    from ibtui.config import absolute_factory
    from ibtui.runs.presets import load_preset

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
            "model.factory": absolute_factory(model),
            "data.label_noise": label_noise,
            "info.on": measure_on,
            "train.optimizer": optimizer,
            "train.momentum": momentum,
            "train.l2_mode": l2_mode,
            "info.schedule": "log" if snapshots is not None else None,
            "info.snapshots": snapshots,
            "data.mi_samples": mi_samples,
            "data.data_dir": str(Path(data_dir).expanduser().resolve()) if data_dir else None,
        }
    )


def fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    err_console.print(f"ibtui: {message}", style="bold red", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(code)


