"""`ibtui estimate`: the information plane again from saved activations, with other settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import BinSizeOpt, EstimatorOpt, NoiseOpt, app, err_console, out_console


@app.command()
def estimate(
    run_dir: Annotated[Path, typer.Argument(help="A run trained with --save-activations.")],
    estimator: EstimatorOpt = None,
    bin_size: BinSizeOpt = None,
    n_bins: Annotated[int | None, typer.Option(help="Binning: this many equal bins on the data's range.")] = None,
    noise_variance: NoiseOpt = None,
    adaptive_bins: Annotated[int | None, typer.Option(help="Adaptive binning: number of bins.")] = None,
    adaptive_low: Annotated[float | None, typer.Option(help="Adaptive binning: the fixed lowest edge (default: -1.000001 for layers with negative values, else 0).")] = None,
    ksg_k: Annotated[int | None, typer.Option("--ksg-k", help="KSG: neighbours k (1 to 1000; Kraskov et al.: 3).")] = None,
    label: Annotated[str | None, typer.Option(help="Name of the RUN/estimates/<label> folder (default: from the settings).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing estimate with the same label.")] = False,
) -> None:
    """Re-estimate the information plane from saved activations, without training: RUN/estimates/<label>/."""
    from ibtui.runs.reestimate import changed_config, reestimate
    from ibtui.runs.record import load_run
    from ibtui.export.png import INFO_PLANE_FILE, info_plane_figure, save_figure

    record = load_run(run_dir)
    config = changed_config(record.config, estimators=estimator, noise_variance=noise_variance, bin_size=bin_size,
                            n_bins=n_bins, adaptive_bins=adaptive_bins, adaptive_low=adaptive_low, ksg_k=ksg_k)
    progress = lambda done, total: err_console.print(f"estimated {done}/{total} snapshots", highlight=False) if done % 20 == 0 or done == total else None  # noqa: E731
    out = reestimate(run_dir, config, label, overwrite=overwrite, progress=progress)
    save_figure(info_plane_figure(load_run(out)), out / INFO_PLANE_FILE)
    out_console.print(str(out), highlight=False, markup=False)


