"""`ibtui sweep`: a grid of runs, here (K subprocesses) or on Ray, resumable; then its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ibtui.cli.common import EXIT_INTERRUPTED, app, err_console, fail, out_console


class RichSweepDisplay:
    """One overall line (points done of all) and one line per active point (epochs), on stderr.
    Without a terminal: a plain line whenever a point starts or ends."""

    def __init__(self, console: Console, total: int, done: int, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                            TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=console, disable=not self.live)
        self.overall = self.bar.add_task("[bold]sweep", total=total, completed=done, unit="points")
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def point_started(self, name: str, total_epochs: int, resumed: bool) -> None:
        self.tasks[name] = self.bar.add_task(f"  {name}", total=total_epochs, unit="epochs")
        self.message(f"{'resuming' if resumed else 'started'} {name}")

    def point_progress(self, name: str, epoch: int) -> None:
        if name in self.tasks:
            self.bar.update(self.tasks[name], completed=epoch)

    def point_ended(self, name: str, status: str, reason: str | None) -> None:
        if name in self.tasks:
            self.bar.remove_task(self.tasks.pop(name))
        self.bar.advance(self.overall)
        self.message(f"{name}: {status}" + (f" ({reason})" if reason else ""))

    def message(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False)


@app.command()
def sweep(
    out: Annotated[Path, typer.Option("--out", "-o", help="The sweep directory: one run directory per point, sweep.toml, REPORT.md.")],
    grid: Annotated[list[str] | None, typer.Option("--grid", "-g", help="FIELD=V1,V2,... (repeatable): the grid is their product; FIELD is a dotted config field or 'preset'.")] = None,
    preset: Annotated[str | None, typer.Option("--preset", "-p", help="The base preset (or a .toml config); default tanh.")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="A sweep spec file: preset, [set] and [grid] tables (see docs/sweeps.md).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per point, trained as one batched model.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per point.")] = None,
    settings: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE fixed for every point, e.g. info.every=5 (repeatable).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-j", min=1, help="Points at once (default: one per core).")] = None,
    ray: Annotated[bool, typer.Option("--ray", help="Run each point as a Ray task: on the cluster at ADDRESS when one follows (--ray HOST:PORT), else on a local Ray instance.")] = False,
    address: Annotated[str | None, typer.Argument(metavar="[ADDRESS]", help="With --ray: the Ray cluster's HOST:PORT.", show_default=False)] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines.")] = False,
) -> None:
    """Run a grid of configs, one run directory per point; the same command again resumes it."""
    if address is not None and not ray:
        fail(f"unexpected argument '{address}' (a Ray address goes after --ray)")
    from ibtui.sweeps.points import FINISHED, point_state
    from ibtui.sweeps.run import run_sweep
    from ibtui.sweeps.spec import build_spec, is_sweep_dir, parse_settings, read_sweep

    extra = parse_settings(settings)
    extra.update({k: v for k, v in (("train.seeds", seeds), ("train.epochs", epochs)) if v is not None})
    if not grid and spec is None and preset is None and not extra and is_sweep_dir(out):
        the_spec = read_sweep(out)  # `ibtui sweep --out SWEEP` alone resumes the recorded sweep
    else:
        the_spec = build_spec(preset=preset, spec_file=spec, grid=grid, settings=extra)
    points = the_spec.points()  # bad input fails here, before anything is written
    done = sum(point_state(out / p.name) == FINISHED for p in points) if out.is_dir() else 0
    with RichSweepDisplay(err_console, len(points), done, quiet) as display:
        outcome = run_sweep(the_spec, out, workers=workers, ray=ray, address=address, display=display)
    if outcome.report is not None:
        err_console.print(f"wrote {outcome.report}", highlight=False, markup=False)
    out_console.print(str(out), highlight=False, markup=False)
    if outcome.finished:
        return
    if outcome.interrupted:
        err_console.print(f"Interrupted; run the same command again (or: ibtui sweep --out {out}) to resume.",
                          highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = [name for name, status in outcome.results.items() if status == "failed"]
    fail(f"{len(failed)} of {len(points)} points failed ({', '.join(failed)}); their output is in {out}/.logs", code=1)


def print_sweep_report(sweep_dir: Path) -> None:
    """`ibtui report SWEEP`: the verdict matrix per estimator on stdout; REPORT.md and grid.png written."""
    from rich.table import Table

    from ibtui.sweeps.report import QUANTITY_TITLES, estimators_of, load_points, matrix, seeds_of, write_report

    path = write_report(sweep_dir)
    _, results = load_points(sweep_dir)
    styles = {"C": "bold green", "?": "yellow"}
    for estimator in estimators_of(results):
        for quantity in ("ixt", "ity"):
            layers, rows = matrix(results, estimator, quantity)
            table = Table(title=f"{QUANTITY_TITLES[quantity]} verdicts, {estimator}: {len(rows)} points, "
                          f"{seeds_of(results)} seed(s) each", title_justify="left")
            for column in ("point", "status", *layers):
                table.add_column(column, no_wrap=True)
            for row in rows:
                cells = [row[0], row[1], *(f"[{styles[c[0]]}]{c}[/]" if c and c[0] in styles else c for c in row[2:])]
                table.add_row(*cells)
            out_console.print(table)
    out_console.print("C compression, - none, ? inconclusive; drop bits (smoothed peak minus end) ± seed spread; "
                      "the rule: ibtui report on a single run.", highlight=False)
    err_console.print(f"wrote {path}", highlight=False, markup=False)
