"""The sensitivity table of a run (RUN/sensitivity/sensitivity.json) as a Rich table.

One builder for the two places that show it: `ibtui sensitivity` prints it, the app's sensitivity
screen (t) displays it. Rich only (a dependency of typer); no textual, no matplotlib.
"""

from __future__ import annotations


def sensitivity_table(doc: dict, **table_options):
    """A row per (estimator, setting), a column per layer, each cell the I(X;T) verdict and its
    drop from the peak in %; table_options go to rich.table.Table (box, title_justify...)."""
    from rich.table import Table

    table = Table(title=f"I(X;T) verdicts by setting ({doc['snapshots']} snapshots, {doc['seeds']} seeds)", **table_options)
    table.add_column("estimator")
    table.add_column("setting")
    for entry in doc["settings"][0]["layers"] if doc["settings"] else []:
        table.add_column(entry["layer"], justify="right")
    for s in doc["settings"]:
        cells = [f"{e['ixt']['verdict']} {100 * (e['ixt']['drop_fraction'] or 0):.0f}%" for e in s["layers"]]
        table.add_row(s["estimator"], f"{s['parameter']} {s['value']:g}", *cells)
    return table
