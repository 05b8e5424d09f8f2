"""`ibtui reproduce`: a paper's presets, its claims judged, REPORT.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, err_console, out_console


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

    from ibtui.cli.progress import ConsoleProgress
    from ibtui.runs.reproduce import parse_overrides, run_paper

    target = out or Path("runs") / f"reproduce-{paper}-{_time.strftime('%Y%m%d-%H%M%S')}"

    settings = parse_overrides(overrides)
    if data_csv:
        settings["data.csv"] = str(data_csv)
    report_path = run_paper(paper, target, seeds=seeds, epochs=epochs, overrides=settings,
                            progress=lambda: ConsoleProgress(err_console, quiet=quiet), log=lambda text: err_console.print(text, highlight=False))
    out_console.print(str(report_path), highlight=False, markup=False)


