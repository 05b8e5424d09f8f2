"""`ibtui export`: a run directory's figures, written again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, out_console
from ibtui.cli.train import _export


@app.command()
def export(run_dir: Annotated[Path, typer.Argument(help="A run directory.")]) -> None:
    """Write (again) the PNG figures of a run directory."""
    from ibtui.errors import StoreError
    from ibtui.runs.store import check_writable, load_run

    record = load_run(run_dir)  # a clear error for a directory that is not a run
    if not record.snapshots:
        raise StoreError(f"{run_dir} has no snapshots yet, so there is nothing to draw")
    check_writable(record.path)  # a read-only run: one sentence before any figure is drawn
    for figure in _export(run_dir):
        out_console.print(str(figure), highlight=False, markup=False)
