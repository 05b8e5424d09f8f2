"""`ibtui report`: a run's compression verdicts per layer and estimator, and its gradient-SNR transition."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ibtui.cli.common import app, out_console


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A run directory (or RUN/estimates/<label>).")]) -> None:
    """Compression verdicts per layer and estimator, their spread over seeds, and the gradient SNR transition."""
    from rich.table import Table

    from ibtui.runs.analysis import VERDICT_COLUMNS, analyse_run, verdict_rows
    from ibtui.config import what_ran
    from ibtui.errors import StoreError
    from ibtui.runs.record import load_run
    from ibtui.sweeps.spec import is_sweep_dir

    if is_sweep_dir(run_dir):  # a sweep: its verdict matrix and SWEEP/REPORT.md (ibtui.sweeps.report)
        from ibtui.cli.sweep import print_sweep_report

        return print_sweep_report(run_dir)
    record = load_run(run_dir)
    if not record.snapshots:
        raise StoreError(f"{run_dir} has no snapshots yet, so there is nothing to report")
    analysis = analyse_run(record)
    seeds = analysis.get("seeds", 1)
    ran = ", ".join(what_ran(record.config, str(record.summary.get("name") or record.config.name)))
    table = Table(title=f"Compression verdicts: {escape(ran)}, {seeds} seed(s), "
                  f"{len(record.snapshots)} snapshots to epoch {record.snapshots[-1].epoch:,}", title_justify="left")
    for column in VERDICT_COLUMNS:
        table.add_column(column, no_wrap=True, justify="left" if column in ("layer", "estimator") else "right")
    styles = {"compression": "bold green", "inconclusive": "yellow"}
    for cells in verdict_rows(analysis):
        for verdict_at in (5, 9):
            style = styles.get(cells[verdict_at])
            cells[verdict_at] = f"[{style}]{cells[verdict_at]}[/]" if style else cells[verdict_at]
        table.add_row(*cells)
    out_console.print(table)
    if seeds > 1:
        out_console.print("drop bits: mean ± std over seeds of each seed's smoothed peak minus smoothed end.", highlight=False)
    if analysis["snr"]:
        snr = Table(title="Gradient SNR: drift -> diffusion (smoothed |mean| / |std| first falls below 1)", title_justify="left")
        for column in ("layer", "transition epoch", "per seed"):
            snr.add_column(column, no_wrap=column != "per seed")
        for entry in analysis["snr"]:
            epoch = f"{entry['epoch']:,}" if entry["epoch"] is not None else f"none: {entry.get('reason', '')}"
            snr.add_row(entry["layer"], epoch, ", ".join("-" if e is None else f"{e:,}" for e in entry["epochs"]))
        out_console.print(snr)
    out_console.print(f"Rule: {analysis['rule']['text']} (k = {analysis['rule']['k']:g}; "
                      f"threshold max({analysis['rule']['min_drop_bits']:g} bits, "
                      f"{100 * analysis['rule']['min_drop_fraction']:g} % of the peak)).", highlight=False, soft_wrap=True)
