"""What a sweep shows: the verdict matrix (points x layers, per estimator) and SWEEP/REPORT.md.

Each point's verdicts come from ibtui.runs.analysis.analyse_run (the rule is documented there);
this module only arranges them. A cell reads `C 0.412±0.051`: the verdict (C compression,
- none, ? inconclusive) and the mean drop in bits (smoothed peak minus smoothed end) with its
spread over seeds. A sweep made by `ibtui reproduce` also gets the paper's claims judged
(ibtui.runs.reproduce.render_report).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ibtui.runs.analysis import analyse_run
from ibtui.runs.files import write_atomic
from ibtui.runs.record import RunRecord, load_run
from ibtui.sweeps.spec import Point, read_sweep

REPORT_FILE = "REPORT.md"
GRID_FILE = "grid.png"
SYMBOLS = {"compression": "C", "none": "-", "inconclusive": "?"}
QUANTITY_TITLES = {"ixt": "I(X;T)", "ity": "I(T;Y)"}


@dataclass
class PointResult:
    point: Point
    record: RunRecord | None
    analysis: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if self.record is None:
            return "not run"
        return str(self.record.summary.get("status", "unknown"))


def load_points(sweep_dir: str | Path) -> tuple[Any, list[PointResult]]:
    """The sweep's spec and every point's record and analysis (None where the point has not run)."""
    sweep_dir = Path(sweep_dir)
    spec = read_sweep(sweep_dir)
    results = []
    for point in spec.points():
        run_dir = sweep_dir / point.name
        if not (run_dir / "config.toml").exists():
            results.append(PointResult(point, None))
            continue
        record = load_run(run_dir)
        analysis = analyse_run(record) if len(record.snapshots) >= 3 else {}
        results.append(PointResult(point, record, analysis))
    return spec, results


def cell(entry: dict[str, Any]) -> str:
    """One verdict as `C 0.412±0.051` (the spread only with several seeds)."""
    symbol = SYMBOLS.get(entry["verdict"], "?")
    if "drop_bits" not in entry:
        return symbol
    spread = f"±{entry['drop_std']:.3f}" if entry.get("n_seeds", 1) > 1 else ""
    return f"{symbol} {entry['drop_bits']:.3f}{spread}"


def matrix(results: list[PointResult], estimator: str, quantity: str = "ixt") -> tuple[list[str], list[list[str]]]:
    """(layer names, rows): one row per point, [name, status, cell per layer]."""
    # Columns by layer name ("L3", "out"), not index, so points of different depths line up.
    by_point = [{str(e["layer"]).split(" ")[0]: e for e in r.analysis.get("estimators", {}).get(estimator, [])}
                for r in results]
    layers: list[str] = []
    for labels in by_point:
        layers += [name for name in labels if name not in layers]
    layers.sort(key=lambda name: name.startswith("out"))  # stable: hidden layers in order, outputs last
    rows = [[r.point.name, r.status, *(cell(labels[layer][quantity]) if layer in labels else "" for layer in layers)]
            for r, labels in zip(results, by_point)]
    return layers, rows


def estimators_of(results: list[PointResult]) -> list[str]:
    names: list[str] = []
    for result in results:
        for name in result.analysis.get("estimators", {}):
            if name not in names:
                names.append(name)
    return names


def seeds_of(results: list[PointResult]) -> int:
    return max((r.analysis.get("seeds", 1) for r in results if r.analysis), default=1)


def render_markdown(sweep_dir: Path, spec, results: list[PointResult], grid_written: bool) -> str:
    axes = ", ".join(f"{axis} = {', '.join(map(str, values))}" for axis, values in spec.grid)
    fixed = ", ".join(f"{k} = {v}" for k, v in spec.settings) or "none"
    lines = [f"# Sweep: {sweep_dir.name}", "",
             f"Base preset: {spec.preset}. Grid: {axes}. Fixed settings: {fixed}. "
             f"{len(results)} points, {seeds_of(results)} seed(s) each, trained as one batched model per point.", ""]
    if grid_written:
        lines += [f"![information planes of every point]({GRID_FILE})", ""]
    lines += ["Cells: verdict (C compression, - none, ? inconclusive) and the mean drop in bits "
              "(smoothed peak minus smoothed end) ± its standard deviation over seeds; the rule is in "
              "ibtui/runs/analysis.py.", ""]
    for estimator in estimators_of(results):
        for quantity in ("ixt", "ity"):
            layers, rows = matrix(results, estimator, quantity)
            lines += [f"## {QUANTITY_TITLES[quantity]}, {estimator}", "",
                      "| point | status | " + " | ".join(layers) + " |", "|---|---|" + "---|" * len(layers)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
    missing = [r.point.name for r in results if r.record is None]
    if missing:
        lines += [f"Not run yet: {', '.join(missing)}.", ""]
    return "\n".join(lines)


def write_report(sweep_dir: str | Path) -> Path:
    """Write SWEEP/grid.png and SWEEP/REPORT.md (with the paper's claims for a reproduction)."""
    sweep_dir = Path(sweep_dir)
    spec, results = load_points(sweep_dir)
    from ibtui.export.grid import grid_figure
    from ibtui.export.png import save_figure

    figure = grid_figure([r.record for r in results if r.record is not None and r.record.snapshots],
                         title=f"Sweep {sweep_dir.name}: information planes on shared axes")
    grid_written = figure is not None
    if figure is not None:
        save_figure(figure, sweep_dir / GRID_FILE)
    text = render_markdown(sweep_dir, spec, results, grid_written)
    if spec.paper:
        text = paper_report(spec.paper, sweep_dir, results) + "\n\n---\n\n" + text
    path = sweep_dir / REPORT_FILE
    write_atomic(path, text.encode())
    return path


def paper_report(paper: str, sweep_dir: Path, results: list[PointResult]) -> str:
    """The claims of `ibtui reproduce`, judged from this sweep's points (named after the presets)."""
    from ibtui.runs.reproduce import PresetRun, render_report

    runs = [PresetRun(r.point.name, r.record.path, r.record.config, r.status,
                      float(r.record.summary.get("elapsed_s") or 0.0), r.analysis)
            for r in results if r.record is not None]
    return render_report(paper, runs, sweep_dir)
