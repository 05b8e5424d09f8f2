"""`ibtui sensitivity`: does a run's compression verdict survive the estimator's setting?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, err_console, out_console
from ibtui.errors import ConfigError
from ibtui.export.sensitivity_table import sensitivity_table


def _numbers(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated numbers like 1e-3,1e-2, not {text!r}") from None
    if not values:
        raise ConfigError(f"{option} needs at least one value")
    return values


@app.command()
def sensitivity(
    run_dir: Annotated[Path, typer.Argument(help="A run trained with --save-activations.")],
    noise_variance: Annotated[str, typer.Option("--noise-variance", help="KDE noise variances, comma-separated.")] = "1e-4,1e-3,1e-2,1e-1",
    bin_size: Annotated[str, typer.Option("--bin-size", help="Binning bin sizes, comma-separated.")] = "0.01,0.03,0.07,0.3",
    estimator: Annotated[list[str] | None, typer.Option("--estimator", help="kde_upper, kde_lower, binning (repeatable; default kde_upper and binning).")] = None,
) -> None:
    """Re-estimate a run at every listed setting and say where its verdicts hold: RUN/sensitivity/."""
    from ibtui.export.png import save_figure
    from ibtui.export.sensitivity import sensitivity_figure
    from ibtui.runs import sensitivity as sens

    noises, sizes = _numbers(noise_variance, "--noise-variance"), _numbers(bin_size, "--bin-size")
    names = tuple(estimator) if estimator else ("kde_upper", "binning")
    sens.settings(names, noises, sizes)  # refuse bad names before any work

    def progress(done: int, total: int) -> None:
        if done % 25 == 0 or done == total:
            err_console.print(f"estimated {done}/{total} (snapshot, setting) pairs", highlight=False)

    doc = sens.measure(run_dir, names, noise_variances=noises, bin_sizes=sizes, progress=progress)
    folder = sens.write(run_dir, doc)
    save_figure(sensitivity_figure(doc), folder / "sensitivity.png")
    out_console.print(sensitivity_table(doc))
    for sentence in doc["sentences"]:
        out_console.print(sentence, highlight=False, markup=False)
    out_console.print(str(folder), highlight=False, markup=False)
