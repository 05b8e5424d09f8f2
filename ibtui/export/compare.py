"""compare.png: several runs side by side: their planes on shared axes, their losses, their verdicts.

Each run keeps one colour everywhere (the Okabe-Ito palette, in the order given), so the plane,
the loss curves and the verdict table read together. The plane draws, per run and layer, the
path of the seed-mean point over the snapshots (thin line) and its last position (marker of
the layer); the estimator is the first one every run measured.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ibtui.export.grid import common_estimator
from ibtui.export.png import (
    LABEL_SIZE, LAYER_MARKERS, PALETTE, PANEL_TITLE_SIZE, TITLE_SIZE, _epoch_axis, _limit, _nanmean, _style,
    _summary_float, estimator_title,
)
from ibtui.runs.record import RunRecord

MAX_RUNS = len(PALETTE)


def run_label(record: RunRecord) -> str:
    return str(record.summary.get("name") or record.config.name or record.path.name)


def verdict_table(records: list[RunRecord], analyses: list[dict], estimator: str) -> tuple[list[str], list[list[str]]]:
    """(column headers, rows): one row per layer, one I(X;T) verdict cell per run."""
    from ibtui.sweeps.report import cell

    # Rows by layer name ("L3", "out"), not index: runs of different depths line up at the output.
    by_run = [{str(e["layer"]).split(" ")[0]: e for e in a.get("estimators", {}).get(estimator, [])} for a in analyses]
    layers: list[str] = []
    for labels in by_run:
        layers += [name for name in labels if name not in layers]
    layers.sort(key=lambda name: name.startswith("out"))  # stable: hidden layers in order, outputs last
    rows = [[layer, *(cell(labels[layer]["ixt"]) if layer in labels else "" for labels in by_run)] for layer in layers]
    return ["layer", *(run_label(r) for r in records)], rows


def compare_figure(records: list[RunRecord], analyses: list[dict]) -> Figure:
    estimator = common_estimator(records)
    fig = Figure(figsize=(15.5, 5.6), layout="constrained")
    plane, loss, table_ax = fig.subplots(1, 3, width_ratios=[1.15, 1.0, 0.9])
    x_top = y_top = 0.0
    for index, record in enumerate(records):
        colour = PALETTE[index % len(PALETTE)]
        epochs = np.array([s.epoch for s in record.snapshots], dtype=float)
        if estimator is not None:
            values = np.array([s.mi[estimator] for s in record.snapshots], dtype=float)
            mean = _nanmean(values, axis=1)  # (snapshot, layer, 2)
            x_top = max(x_top, _limit(_summary_float(record, "max_ixt"), values[..., 0]))
            y_top = max(y_top, _limit(_summary_float(record, "h_y"), values[..., 1]))
            for layer in range(mean.shape[1]):
                plane.plot(mean[:, layer, 0], mean[:, layer, 1], color=colour, lw=0.9, alpha=0.6)
                plane.scatter([mean[-1, layer, 0]], [mean[-1, layer, 1]], color=colour, s=42, zorder=3,
                              marker=LAYER_MARKERS[layer % len(LAYER_MARKERS)], edgecolors="black", linewidths=0.4)
        train = _nanmean(np.array([s.train_loss for s in record.snapshots], dtype=float), axis=1)
        test = _nanmean(np.array([s.test_loss for s in record.snapshots], dtype=float), axis=1)
        loss.plot(epochs + 1, train, color=colour, lw=1.5)
        loss.plot(epochs + 1, test, color=colour, lw=1.2, ls="--")
    if estimator is not None:
        plane.set_xlim(-0.02 * x_top, 1.04 * x_top)
        plane.set_ylim(-0.02 * y_top, 1.06 * y_top)
        plane.set_title(f"Information plane: {estimator_title(estimator, records[0])}\n"
                        "lines: each layer's path; markers: where it ended", fontsize=PANEL_TITLE_SIZE)
    plane.set_xlabel("I(X;T)  (bits)", fontsize=LABEL_SIZE)
    plane.set_ylabel("I(T;Y)  (bits)", fontsize=LABEL_SIZE)
    _style(plane)
    all_epochs = np.concatenate([[s.epoch for s in r.snapshots] for r in records]).astype(float)
    _epoch_axis(loss, all_epochs)
    loss.set_ylabel("cross-entropy (mean over seeds)", fontsize=LABEL_SIZE)
    loss.set_title("Loss: train (solid), test (dashed)", fontsize=PANEL_TITLE_SIZE)
    _style(loss)
    table_ax.axis("off")
    if estimator is not None:
        header, rows = verdict_table(records, analyses, estimator)
        if rows:
            height = min(1.0, 0.075 * (len(rows) + 1))
            table = table_ax.table(cellText=rows, colLabels=header, cellLoc="center", bbox=[0.0, 1.0 - height, 1.0, height])
            table.auto_set_font_size(False)
            table.set_fontsize(8)
            for col in range(1, len(header)):
                table[0, col].get_text().set_color(PALETTE[(col - 1) % len(PALETTE)])
                table[0, col].get_text().set_fontweight("bold")
        table_ax.set_title(f"I(X;T) verdicts, {estimator}\nC compression, - none, ? inconclusive;\n"
                           "drop in bits ± spread over seeds", fontsize=PANEL_TITLE_SIZE - 1)
    handles = [Line2D([], [], color=PALETTE[i % len(PALETTE)], lw=2.5, label=run_label(r)) for i, r in enumerate(records)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), frameon=False, fontsize=LABEL_SIZE)
    fig.suptitle("Comparison of " + ", ".join(run_label(r) for r in records), fontsize=TITLE_SIZE)
    return fig
