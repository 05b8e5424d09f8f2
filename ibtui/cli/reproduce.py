"""`ibtui reproduce`: a paper's presets as a sweep, its claims judged, REPORT.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import EXIT_INTERRUPTED, app, err_console, fail, out_console


@app.command()
def reproduce(
    paper: Annotated[str, typer.Argument(help="saxe (tanh vs relu) or pokemon (the four Dong & Hisham presets).")],
    seeds: Annotated[int | None, typer.Option(help="Seeds per run, trained as one batched model (saxe: 5).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per run (default: the presets').")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for the runs and REPORT.md (default: runs/reproduce-<paper>-<date-time>); the same --out again resumes it.")] = None,
    data_csv: Annotated[Path | None, typer.Option("--data-csv", help="pokemon: your copy of the Kaggle 300k.csv (default: the synthetic stand-in).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", hidden=True, help="KEY=VALUE config override, e.g. info.every=5.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Presets run at once (default: one per core).")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run each preset as a Ray task: on the cluster at ADDRESS when one follows (--ray HOST:PORT), else on a local Ray instance.")] = False,
    address: Annotated[str | None, typer.Argument(metavar="[ADDRESS]", help="With --ray: the Ray cluster's HOST:PORT.", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run a paper's presets as a sweep, judge its claims from the compression verdicts, and write DIR/REPORT.md."""
    if address is not None and not ray:
        fail(f"unexpected argument '{address}' (a Ray address goes after --ray)")
    import time as _time

    from ibtui.cli.sweep import RichSweepDisplay
    from ibtui.runs.reproduce import PAPERS, paper_spec, parse_overrides
    from ibtui.sweeps.report import write_report
    from ibtui.sweeps.run import run_sweep

    target = out or Path("runs") / f"reproduce-{paper}-{_time.strftime('%Y%m%d-%H%M%S')}"
    settings = parse_overrides(overrides)
    if data_csv:
        settings["data.csv"] = str(data_csv)
    spec = paper_spec(paper, seeds, epochs, settings)
    with RichSweepDisplay(err_console, len(PAPERS[paper]["presets"]), 0, quiet) as display:
        outcome = run_sweep(spec, target, workers=workers, ray=ray, address=address,
                            display=display)
    report = outcome.report or write_report(target)
    out_console.print(str(report), highlight=False, markup=False)
    if outcome.interrupted:
        err_console.print(f"Interrupted; run the same command again to resume into {target}.", highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = [name for name, status in outcome.results.items() if status == "failed"]
    if failed:
        fail(f"{', '.join(failed)} failed; their output is in {target}/.logs", code=1)
