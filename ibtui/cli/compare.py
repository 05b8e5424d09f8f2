"""`ibtui compare RUN_A RUN_B ...`: planes on shared axes, losses and verdicts side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, out_console


@app.command()
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(help="Two or more run directories (up to 8).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The figure to write (.png, .svg or .pdf).")] = Path("compare.png"),
) -> None:
    """Compare runs: information planes on shared axes with a stable colour per run, loss curves, verdicts."""
    from rich.table import Table

    from ibtui.errors import IbtuiError, StoreError
    from ibtui.export.compare import MAX_RUNS, compare_figure, verdict_table
    from ibtui.export.grid import common_estimator
    from ibtui.export.png import PALETTE, save_figure
    from ibtui.runs.analysis import analyse_run
    from ibtui.runs.record import load_run

    if len(run_dirs) < 2:
        raise IbtuiError("compare needs at least two run directories")
    if len(run_dirs) > MAX_RUNS:
        raise IbtuiError(f"compare takes at most {MAX_RUNS} runs (one colour each), not {len(run_dirs)}")
    if out.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise IbtuiError(f"--out must end in .png, .svg or .pdf, not '{out.name}'")
    records = [load_run(path) for path in run_dirs]
    for record in records:
        if not record.snapshots:
            raise StoreError(f"{record.path} has no snapshots yet, so there is nothing to compare")
    analyses = [analyse_run(r) if len(r.snapshots) >= 3 else {} for r in records]
    estimator = common_estimator(records)
    if estimator is None:
        raise IbtuiError("these runs share no estimator, so their planes cannot be put on the same axes")
    header, rows = verdict_table(records, analyses, estimator)
    table = Table(title=f"I(X;T) verdicts ({estimator}): C compression, - none, ? inconclusive; drop bits ± seed spread",
                  title_justify="left")
    for i, column in enumerate(header):
        table.add_column(column, style=None if i == 0 else f"bold {PALETTE[(i - 1) % len(PALETTE)]}", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    out_console.print(table)
    save_figure(compare_figure(records, analyses), out, format=out.suffix.lower().lstrip("."))
    out_console.print(str(out), highlight=False, markup=False)
