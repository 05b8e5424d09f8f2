"""`ibtui presets`: the preset files as a table."""

from __future__ import annotations

from ibtui.cli.common import app, out_console


@app.command()
def presets() -> None:
    """List the presets: name, dataset, network, activation, L2, epochs, estimators."""
    from rich.table import Table

    from ibtui.runs.presets import load_preset, preset_paths

    table = Table(title="ibtui presets", title_justify="left")
    for column in ("name", "dataset", "hidden", "activation", "L2", "epochs", "batch", "estimators"):
        table.add_column(column, no_wrap=column != "estimators")
    for name in preset_paths():
        c = load_preset(name)
        net = "-".join(str(w) for w in c.model.hidden)
        activation = c.model.activation
        if c.model.factory:  # the user's module: its file and function, not the MLP's fields
            net, activation = f"model {c.model.factory_label}", "-"
        table.add_row(
            name, c.data.name, net, activation, f"{c.train.l2:g}", f"{c.train.epochs:,}",
            str(c.train.batch_size or "full"), ", ".join(c.info.estimators),
        )
    out_console.print(table)
