"""`ibtui runs [DIR]`: the runs and sweeps under DIR, one line each, with their verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, out_console


@app.command("runs")
def runs_command(directory: Annotated[Path, typer.Argument(help="Where to look (default: runs/).")] = Path("runs")) -> None:
    """List the runs and sweeps under DIR: name, status, what ran, epochs, seeds, date, verdicts."""
    from rich.table import Table

    from ibtui.sweeps.listing import list_runs

    entries = list_runs(directory)
    table = Table(title=f"Runs under {directory}", title_justify="left")
    for column in ("name", "status", "what ran", "epochs", "seeds", "date", "I(X;T) verdicts per layer"):
        table.add_column(column, no_wrap=column != "what ran", justify="right" if column in ("epochs", "seeds") else "left")
    for entry in entries:
        table.add_row(("  " * entry.depth) + entry.name, entry.status, entry.what, entry.epochs, entry.seeds, entry.date,
                      entry.verdicts, style="bold" if entry.kind == "sweep" else None)
    if not entries:
        out_console.print(f"no runs under {directory}", highlight=False, markup=False)
        return
    out_console.print(table)
    out_console.print("verdicts: C compression, - none, ? inconclusive, . not measured (first estimator; "
                      "a sweep shows points finished of all)", highlight=False)
