"""The PNG exporter: files, formats, edge cases, and that the core stays free of matplotlib.

Run directories are written by the real RunStore from hand-made events, so no training is needed.
`fake_run` draws plausible information-plane paths (fitting, then compression in the deep layers)
and is also handy for looking at the figures by eye.
"""

from __future__ import annotations

import math
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ibtui.config import RunConfig
from ibtui.engine.events import RunFinished, RunStarted, Snapshot
from ibtui.engine.schedule import saxe_epochs
from ibtui.runs.record import load_run
from ibtui.runs.store import RunStore
from ibtui.export.png import (
    INFO_PLANE_FILE,
    LOSS_FILE,
    SNR_FILE,
    _header,
    estimator_title,
    export_run,
    info_plane_figure,
    loss_figure,
    snr_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LAYERS = ("L1 tanh 10", "L2 tanh 7", "L3 tanh 5", "L4 tanh 4", "L5 tanh 3", "out softmax 2")
N_MI = 4096
H_Y = 0.999


def fake_run(
    path: Path,
    *,
    epochs: int = 300,
    seeds: int = 1,
    estimators: tuple[str, ...] = ("kde_upper", "binning"),
    grad: bool = False,
    nan_test: bool = False,
    status: str = "finished",
    stop_at: int | None = None,
    snapshots: bool = True,
    overrides: dict | None = None,
    synthetic: bool = False,
) -> Path:
    """A run directory written through RunStore, with Tishby-like information-plane paths."""
    config = RunConfig().with_overrides(
        {"name": "fake-tanh", "train.epochs": epochs, "train.seeds": seeds, "info.estimators": list(estimators),
         **(overrides or {})}
    )
    schedule = saxe_epochs(epochs)
    store = RunStore.create(path, config)
    store.handle(
        RunStarted(
            run_id="test", config=config, layer_names=LAYERS, layer_widths=(10, 7, 5, 4, 3, 2),
            seeds=tuple(range(seeds)), n_mi_samples=N_MI, h_y=H_Y, schedule=tuple(schedule), start_epoch=0,
            device="cpu", dataset="Pokemon Go sightings (synthetic stand-in)" if synthetic else "tishby: 4096 12-bit patterns",
            synthetic=synthetic,
        )
    )
    rng = np.random.default_rng(0)
    last = stop_at if stop_at is not None else epochs
    if snapshots:
        for epoch in schedule:
            if epoch > last:
                break
            store.handle(_fake_snapshot(epoch, epochs, seeds, estimators, grad, nan_test, rng))
    store.handle(RunFinished("test", status, last, 1.0))
    return path


def _fake_snapshot(epoch, epochs, seeds, estimators, grad, nan_test, rng) -> Snapshot:
    t = math.log1p(epoch) / math.log1p(epochs)  # training progress on a log scale, 0..1
    start_ixt = np.array([11.9, 11.4, 10.2, 8.6, 6.4, 2.6])
    start_ity = np.array([0.99, 0.93, 0.80, 0.62, 0.40, 0.12]) * H_Y
    compression = np.array([0.05, 0.4, 1.3, 2.2, 3.0, 1.2])
    fit = 1 / (1 + math.exp(-(t - 0.35) * 12))
    squeeze = max(0.0, t - 0.45) / 0.55
    mi = {}
    for k, name in enumerate(estimators):
        scale = 1.0 - 0.12 * k  # the estimators disagree a little, as they do
        per_seed = []
        for _ in range(seeds):
            ixt = np.minimum(12, (start_ixt + (12 - start_ixt) * 0.25 * fit - compression * squeeze) * scale)
            ixt = ixt + rng.normal(0, 0.08, 6)
            ity = start_ity + (H_Y * 0.985 - start_ity) * fit + rng.normal(0, 0.01, 6)
            per_seed.append([[float(a), float(min(b, H_Y))] for a, b in zip(ixt, ity)])
        mi[name] = per_seed
    u = 1 / (1 + math.exp(-(t - 0.4) * 10))
    train_loss = [0.69 - 0.67 * u + rng.normal(0, 0.003) for _ in range(seeds)]
    test_loss = [0.69 - 0.55 * u + 0.08 * squeeze + rng.normal(0, 0.01) for _ in range(seeds)]
    train_acc = [min(1.0, 0.52 + 0.48 * u + rng.normal(0, 0.004)) for _ in range(seeds)]
    test_acc = [min(1.0, 0.50 + 0.41 * u + rng.normal(0, 0.01)) for _ in range(seeds)]
    if nan_test:
        test_loss = test_acc = [float("nan")] * seeds
    gradients = None
    if grad and epoch > 0:  # the trainer measures gradients while training, so not at epoch 0
        layer_scale = np.array([0.3, 0.5, 0.8, 1.0, 1.2, 2.0])
        mean = 0.2 * layer_scale * math.exp(-6 * t) + 0.002
        std = 0.03 * layer_scale * (1 + 0.3 * t)
        gradients = {
            "mean": [(mean * rng.uniform(0.9, 1.1, 6)).tolist() for _ in range(seeds)],
            "std": [(std * rng.uniform(0.9, 1.1, 6)).tolist() for _ in range(seeds)],
        }
    return Snapshot(
        run_id="test", epoch=epoch, elapsed_s=0.1 * epoch, train_loss=train_loss, test_loss=test_loss,
        train_acc=train_acc, test_acc=test_acc, mi=mi, grad=gradients,
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_png(path: Path, min_kb: int = 20) -> tuple[int, int]:
    assert path.is_file(), f"{path.name} was not written"
    assert path.stat().st_size > min_kb * 1024, f"{path.name} is suspiciously small"
    width, height = png_size(path)
    assert 600 <= width <= 5000 and 400 <= height <= 2000
    return width, height


def test_single_seed_two_estimators(tmp_path):
    run = fake_run(tmp_path / "run")
    written = export_run(run)
    assert written == [run / INFO_PLANE_FILE, run / LOSS_FILE, run / "mi_curves.png"]  # no gradients, no SNR figure
    width, height = assert_png(run / INFO_PLANE_FILE)
    assert width == 13 * 150 and height == 840  # two 6-inch panels and a colour bar at 150 dpi
    assert_png(run / LOSS_FILE)
    assert not (run / SNR_FILE).exists()


def test_three_seeds_with_gradients(tmp_path):
    run = fake_run(tmp_path / "run", seeds=3, grad=True, estimators=("kde_upper", "kde_lower", "adaptive"))
    written = export_run(run)
    assert [p.name for p in written] == [INFO_PLANE_FILE, LOSS_FILE, SNR_FILE, "mi_curves.png"]
    width, _ = assert_png(run / INFO_PLANE_FILE)
    assert width == 19 * 150
    for path in written:
        assert_png(path)
    assert "mean of 3 seeds (0-2)" in _header(load_run(run), "x", 13.0)


def test_nan_test_values(tmp_path):
    run = fake_run(tmp_path / "run", nan_test=True)
    written = export_run(run)
    assert len(written) == 3  # info plane, loss, mi curves
    assert_png(run / LOSS_FILE)
    legend = [t.get_text() for t in loss_figure(load_run(run)).axes[0].get_legend().get_texts()]
    assert "test: none (no test set)" in legend


def test_gradients_single_seed(tmp_path):
    figure = snr_figure(load_run(fake_run(tmp_path / "run", epochs=40, grad=True)))
    assert figure is not None and len(figure.axes) == 2
    assert len(figure.axes[0].get_lines()) == 2 * len(LAYERS)  # a mean and a std line per layer


def test_no_gradients_means_no_snr_figure(tmp_path):
    assert snr_figure(load_run(fake_run(tmp_path / "run"))) is None


def test_zero_snapshots_writes_nothing(tmp_path):
    run = fake_run(tmp_path / "run", snapshots=False, status="interrupted", stop_at=0)
    assert export_run(run) == []
    assert not list(run.glob("*.png"))


def test_export_is_idempotent_and_atomic(tmp_path):
    run = fake_run(tmp_path / "run", epochs=40, estimators=("kde_upper",))
    first = export_run(run)
    contents = {p: p.read_bytes() for p in first}
    second = export_run(run)
    assert second == first
    assert {p: p.read_bytes() for p in second} == contents
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_interrupted_run_says_so(tmp_path):
    run = fake_run(tmp_path / "run", epochs=3000, stop_at=1234, status="interrupted", synthetic=True)
    record = load_run(run)
    header = _header(record, "Information plane", 13.0)
    assert "interrupted at epoch 1,234 of 3,000" in header
    assert "SYNTHETIC" in header
    figure = info_plane_figure(record)
    assert "interrupted at epoch 1,234" in figure.get_suptitle()


def test_l2_and_failed_status_in_title(tmp_path):
    run = fake_run(tmp_path / "run", status="failed", stop_at=40, overrides={"train.l2": 0.001})
    header = _header(load_run(run), "Training", 12.0)
    assert "L2 1e-3" in header and "FAILED at epoch 40" in header


@pytest.mark.parametrize(
    ("estimator", "overrides", "title"),
    [
        ("kde_upper", {}, "KDE upper bound, $\\sigma^2$ = 1e-3"),
        ("kde_lower", {"info.noise_variance": 0.01}, "KDE lower bound, $\\sigma^2$ = 0.01"),
        ("binning", {}, "Binning, bin size 0.07"),
        ("binning", {"info.n_bins": 30, "info.bin_range": [-1, 1]}, "Binning, 30 bins on [-1, 1]"),
        ("binning", {"info.n_bins": 30}, "Binning, 30 bins on the data's range"),
        ("adaptive", {}, "Adaptive binning, 30 bins"),
    ],
)
def test_estimator_titles(tmp_path, estimator, overrides, title):
    run = fake_run(tmp_path / "run", epochs=5, estimators=(estimator,), overrides=overrides)
    assert estimator_title(estimator, load_run(run)) == title


def test_many_snapshots_are_decimated(tmp_path):
    run = fake_run(tmp_path / "run", epochs=20_000, estimators=("kde_upper",))
    record = load_run(run)
    assert len(record.snapshots) > 250
    ax = info_plane_figure(record).axes[0]
    lines = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert len(lines) == 1 and len(lines[0].get_segments()) <= 80


def test_export_in_threads(tmp_path):
    runs = [fake_run(tmp_path / f"run{i}", epochs=30, estimators=("binning",)) for i in range(2)]
    results, errors = {}, []

    def work(run):
        try:
            results[run] = export_run(run)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for run in runs:
        assert [p.name for p in results[run]] == [INFO_PLANE_FILE, LOSS_FILE, "mi_curves.png"]


def test_core_does_not_import_matplotlib():
    code = (
        "import importlib, pkgutil, sys\n"
        "import ibtui, ibtui.config, ibtui.errors\n"
        "for package in ('engine', 'estimators', 'data', 'runs'):\n"
        "    pkg = importlib.import_module('ibtui.' + package)\n"
        "    for module in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(f'ibtui.{package}.{module.name}')\n"
        "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules if 'matplotlib' in m)\n"
        "import ibtui.export.png\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _rings(figure) -> list:
    from ibtui.export.png import PEAK_LABEL

    return [c for ax in figure.axes for c in ax.collections if c.get_label() == PEAK_LABEL]


def _legend_labels(figure) -> list[str]:
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def test_turning_point_only_where_a_layer_peaks_and_really_drops():
    from ibtui.export.png import turning_points

    epochs = np.arange(40, dtype=float)
    rises = np.linspace(1.0, 5.0, 40)  # only rises: its peak is its last snapshot
    turns = np.concatenate([np.linspace(1.0, 6.0, 20), np.linspace(6.0, 3.0, 20)])  # peak at 19, drops 3 bits
    wiggle = 4.0 + 0.001 * np.sin(epochs)  # a maximum before the end, but no real drop
    values = np.zeros((40, 2, 3, 2))
    for layer, curve in enumerate((rises, turns, wiggle)):
        values[:, 0, layer, 0] = curve
        values[:, 1, layer, 0] = curve + 0.01
    points = turning_points(epochs, values)
    assert points[0] is None and points[2] is None
    assert points[1] is not None and 15 <= points[1] <= 22


def test_png_rings_only_turning_layers_and_drops_the_legend_entry_without_any(tmp_path):
    from ibtui.export.png import PEAK_LABEL

    record = load_run(fake_run(tmp_path / "turns", estimators=("kde_upper",)))
    figure = info_plane_figure(record)
    from ibtui.runs.analysis import analyse_run

    verdicts = [e["ixt"]["verdict"] for e in analyse_run(record)["estimators"]["kde_upper"]]
    assert len(_rings(figure)) == verdicts.count("compression") > 0
    assert PEAK_LABEL in _legend_labels(figure)

    # The same run cut before compression starts: every layer only rises, so no ring at all.
    early = load_run(fake_run(tmp_path / "rises", epochs=300, stop_at=12, status="interrupted", estimators=("kde_upper",)))
    figure = info_plane_figure(early)
    assert _rings(figure) == []
    assert PEAK_LABEL not in _legend_labels(figure)


def test_mi_curves_give_epoch_0_its_own_place_left_of_epoch_1(tmp_path):
    # On a log axis of the epoch, epoch 0 drawn at 1 lay on top of epoch 1: every curve began
    # with a vertical jump. The axis is the other figures' log of epoch + 1, its ticks named.
    from ibtui.export.mi_curves import mi_curves_figure

    record = load_run(fake_run(tmp_path / "run", epochs=300))
    epochs = [s.epoch for s in record.snapshots]
    assert epochs[:2] == [0, 1]
    figure = mi_curves_figure(record)
    for ax in figure.axes:
        assert ax.get_xscale() == "log"
        for line in ax.get_lines():
            np.testing.assert_array_equal(line.get_xdata(), np.array(epochs, dtype=float) + 1)
        left, _ = ax.get_xlim()
        assert left < 1  # epoch 0, at x = 1, is inside the axes
        ticks = dict(zip(ax.get_xticks(), (t.get_text() for t in ax.get_xticklabels())))
        assert ticks[1.0] == "0" and ticks[11.0] == "10" and ticks[101.0] == "100"


def test_snr_log_axes_label_the_same_ticks_in_plain_text(tmp_path):
    # matplotlib's log labels ("10^-2", "2x10^-1" on a short axis) without mathtext's parser
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogFormatterSciNotation

    from ibtui.export.png import PlainLogFormatter, plain_math

    assert PlainLogFormatter()(0.01) == "10⁻²" and PlainLogFormatter()(10.0) == "10¹"
    assert plain_math(r"$\mathdefault{2\times10^{-1}}$") == "2×10⁻¹"
    short = Figure()
    ax = short.subplots()
    ax.set_yscale("log")
    ax.set_ylim(0.15, 0.9)  # under a decade: matplotlib labels the minor ticks
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
    FigureCanvasAgg(short).draw()
    reference = LogFormatterSciNotation(labelOnlyBase=False)
    reference.set_axis(ax.yaxis)
    reference.set_locs(ax.yaxis.get_minorticklocs())
    labels = [t.get_text() for t in ax.yaxis.get_minorticklabels()]
    assert "2×10⁻¹" in labels and labels == [plain_math(reference(v)) for v in ax.yaxis.get_minorticklocs()]
    figure = snr_figure(load_run(fake_run(tmp_path / "run", epochs=300, grad=True)))
    FigureCanvasAgg(figure).draw()
    texts = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True)]
    assert any(t.startswith("10") for t in texts) and not any("$" in t for t in texts)
