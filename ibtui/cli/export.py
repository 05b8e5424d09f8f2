"""`ibtui export`: a run directory's figures, written again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ibtui.cli.common import app, out_console
from ibtui.cli.train import _export


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    formats: Annotated[str | None, typer.Option("--format", help="Figure formats, comma-separated: png, svg, pdf (default png).")] = None,
    movie: Annotated[bool, typer.Option("--movie", help="Also write info_plane.gif (and .mp4 when ffmpeg is installed).")] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Also write snapshots.csv: epoch, seed, estimator, layer, I(X;T), I(T;Y).")] = False,
) -> None:
    """Write (again) the figures of a run directory; optionally a movie of its plane and a flat CSV."""
    from ibtui.errors import StoreError
    from ibtui.runs.files import check_writable
    from ibtui.runs.record import load_run

    record = load_run(run_dir)  # a clear error for a directory that is not a run
    if not record.snapshots:
        raise StoreError(f"{run_dir} has no snapshots yet, so there is nothing to draw")
    check_writable(record.path)  # a read-only run: one sentence before any figure is drawn
    if formats is None:
        figures = _export(run_dir)
    else:
        from ibtui.export.png import export_run, parse_formats

        figures = export_run(run_dir, parse_formats(formats))
    if movie:
        from ibtui.export.movie import write_movie

        figures += write_movie(run_dir)
    if csv:
        from ibtui.export.table import snapshots_csv

        figures.append(snapshots_csv(run_dir))
    for figure in figures:
        out_console.print(str(figure), highlight=False, markup=False)
