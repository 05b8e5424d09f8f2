"""PNG figures of a run: the information plane, the losses and the gradient signal-to-noise ratio.

Only the Figure API and the Agg canvas are used (never pyplot, never rcParams or other global
state), so figures can be drawn in worker threads while a TUI runs. Each file is written
atomically, so a reader never sees half a PNG.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogFormatterSciNotation,
    MaxNLocator,
    NullFormatter,
    PercentFormatter,
)

from ibtui.config import short_number, what_ran
from ibtui.export.figures import export_figure, export_run  # noqa: F401 (the public entry points)
from ibtui.export.mi_curves import MI_CURVES_FILE, mi_curves_figure
from ibtui.runs.files import write_atomic
from ibtui.runs.record import RunRecord

DPI = 150
INFO_PLANE_FILE = "info_plane.png"
LOSS_FILE = "loss.png"
SNR_FILE = "snr.png"

# Okabe-Ito, ordered so that the weakest colour on white (yellow) comes last.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000", "#F0E442")
TRAIN_COLOR, TEST_COLOR = "#0072B2", "#D55E00"
LAYER_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")
EPOCH_CMAP = "viridis"  # sequential and colour-blind safe: early epochs dark, late ones bright
MAX_LINES = 80  # snapshot paths drawn per panel; more only smear into each other
MAX_MARKERS = 300  # snapshot markers per layer and panel

TITLE_SIZE, PANEL_TITLE_SIZE, LABEL_SIZE, TICK_SIZE, LEGEND_SIZE = 12, 11, 10, 9, 9


# -- public API ------------------------------------------------------------------------------


FORMATS = ("png", "svg", "pdf")


def parse_formats(text: str | None) -> tuple[str, ...]:
    """'png,svg' -> ('png', 'svg'); an unknown format is a one-sentence IbtuiError."""
    from ibtui.errors import IbtuiError, unknown_name

    if not text:
        return ("png",)
    formats = tuple(dict.fromkeys(part.strip().lower().lstrip(".") for part in text.split(",") if part.strip()))
    for name in formats:
        if name not in FORMATS:
            raise IbtuiError(unknown_name("figure format", name, FORMATS))
    return formats or ("png",)


def write_figure(record: RunRecord, name: str, formats: tuple[str, ...]) -> list[Path]:
    """Draw one of the run's FIGURES (by file name) and write it in each of `formats`; the paths
    written (none for a figure the run has no data for). figures.export_run decides where."""
    figure = FIGURES[name](record)
    if figure is None:
        return []
    written = []
    for fmt in formats:
        path = record.path / Path(name).with_suffix(f".{fmt}")
        save_figure(figure, path, format=fmt)
        written.append(path)
    return written


def save_figure(figure: Figure, path: Path, dpi: int = DPI, format: str = "png") -> None:
    """Render with Agg (png) or matplotlib's vector backends (svg, pdf) and replace path atomically.

    A png is printed by the canvas itself, in one draw that lays the figure out first: savefig
    would lay it out inside a whole draw whose pixels it discards, then draw everything (every
    tick label measured and placed) a second time."""
    canvas = FigureCanvasAgg(figure)  # attaches itself as the figure's canvas
    buffer = io.BytesIO()
    if format == "png":
        figure.set_dpi(dpi)
        canvas.print_png(buffer)
    else:
        # A fixed date and no random ids keep vector files byte-identical for identical figures.
        metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}[format]
        figure.savefig(buffer, format=format, dpi=dpi, metadata=metadata)
    write_atomic(Path(path), buffer.getvalue())


def warm_up() -> None:
    """Draw and print a tiny figure with text (figures.prepare): loads the font, and builds
    mathtext's parser (the titles' $\\sigma^2$), which a process's first figure would otherwise pay for."""
    fig = Figure(figsize=(1.0, 1.0), layout="constrained")
    ax = fig.subplots()
    ax.set_title("$\\sigma^2$", fontsize=TITLE_SIZE)
    ax.set_xlabel("epoch", fontsize=LABEL_SIZE)
    FigureCanvasAgg(fig).print_png(io.BytesIO())


def info_plane_figure(record: RunRecord) -> Figure:
    """One information-plane panel per estimator: every snapshot's path through the layers."""
    snapshots = record.snapshots
    estimators = record.estimators
    layers = _layer_names(record)
    epochs = np.array([s.epoch for s in snapshots], dtype=float)
    n_seeds = len(snapshots[0].train_loss) if snapshots else 1
    n_panels = max(1, len(estimators))

    fig = Figure(figsize=(6.0 * n_panels + 1.0, 5.6), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    norm, ticks = _epoch_norm(epochs)
    colour_values = epochs + 1 if isinstance(norm, LogNorm) else epochs
    cmap = _cmap()
    lines_at = _decimate(epochs, MAX_LINES)
    markers_at = _decimate(epochs, MAX_MARKERS)

    max_ixt = _summary_float(record, "max_ixt")
    h_y = _summary_float(record, "h_y")
    rings = 0
    for ax, estimator in zip(axes, estimators):
        # (snapshot, seed, layer, [I(X;T), I(T;Y)])
        values = np.array([s.mi[estimator] for s in snapshots], dtype=float)
        mean = _nanmean(values, axis=1)
        x_top = _limit(max_ixt, values[..., 0])
        y_top = _limit(h_y, values[..., 1])

        if n_seeds > 1:  # the individual seeds, faintly, behind the mean
            faint = values[lines_at]
            ax.scatter(
                faint[..., 0].ravel(),
                faint[..., 1].ravel(),
                c=np.repeat(colour_values[lines_at], faint.shape[1] * faint.shape[2]),
                cmap=cmap,
                norm=norm,
                s=5,
                alpha=0.22,
                linewidths=0,
                zorder=1,
                rasterized=True,
            )
        segments = [mean[i] for i in lines_at]
        paths = LineCollection(segments, cmap=cmap, norm=norm, linewidths=0.7, alpha=0.55, zorder=2)
        paths.set_array(colour_values[lines_at])
        ax.add_collection(paths)
        for layer in range(mean.shape[1]):
            ax.scatter(
                mean[markers_at, layer, 0],
                mean[markers_at, layer, 1],
                c=colour_values[markers_at],
                cmap=cmap,
                norm=norm,
                marker=LAYER_MARKERS[layer % len(LAYER_MARKERS)],
                s=30,
                edgecolors=(0, 0, 0, 0.45),
                linewidths=0.35,
                zorder=3,
            )
        rings += _mark_peaks(ax, mean, turning_points(epochs, values))
        _bounds(ax, max_ixt, h_y)
        ax.set_xlim(-0.02 * x_top, 1.04 * x_top)
        ax.set_ylim(-0.02 * y_top, 1.06 * y_top)
        ax.set_title(estimator_title(estimator, record), fontsize=PANEL_TITLE_SIZE)
        ax.set_xlabel("I(X;T)  (bits)", fontsize=LABEL_SIZE)
        ax.set_ylabel("I(T;Y)  (bits)", fontsize=LABEL_SIZE)
        _style(ax)
    if not estimators:
        axes[0].text(0.5, 0.5, "no information-plane estimates recorded", ha="center", va="center", transform=axes[0].transAxes)

    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=list(axes), pad=0.01, aspect=30, fraction=0.03)
    bar.set_label("epoch (log scale)" if isinstance(norm, LogNorm) else "epoch", fontsize=LABEL_SIZE)
    if ticks is not None:
        bar.set_ticks([t + 1 for t in ticks], labels=[f"{t:,}" for t in ticks])
        bar.ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        bar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar.ax.tick_params(labelsize=TICK_SIZE)

    handles = [
        Line2D([], [], marker=LAYER_MARKERS[i % len(LAYER_MARKERS)], linestyle="none", markersize=7,
               markerfacecolor="0.65", markeredgecolor="0.15", markeredgewidth=0.6, label=name)
        for i, name in enumerate(layers)
    ]
    if rings:  # no layer turned: no ring, and no legend entry promising one
        handles.append(
            Line2D([], [], marker="o", linestyle="none", markersize=9, markerfacecolor="none",
                   markeredgecolor=PEAK_COLOR, markeredgewidth=2.0, label=PEAK_LABEL)
        )
    if handles:
        per_row = max(3, int(fig.get_figwidth() / 1.7))  # a one-panel figure wraps its legend
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), per_row), frameon=False,
                   fontsize=LEGEND_SIZE, title="layer (marker); colour = epoch", title_fontsize=LEGEND_SIZE)
    fig.suptitle(_header(record, "Information plane", fig.get_figwidth()), fontsize=TITLE_SIZE)
    return fig


PEAK_COLOR = "#009E73"  # the "green dots" of Shwartz-Ziv & Tishby: where fitting turns into compression


PEAK_LABEL = "I(X;T) peak (turning point)"


def turning_points(epochs: np.ndarray, values: np.ndarray) -> list[int | None]:
    """Per layer, the snapshot index of its I(X;T) turning point, or None where it has none.

    `values` is (snapshots, seeds, layers, 2). A layer turns only where ibtui.runs.analysis judges
    its I(X;T) a compression (the smoothed peak falls to the end by more than the rule's threshold
    and its noise) and the peak comes strictly before the last snapshot: a layer that only rises
    peaks at its end, and a ring there would call the end of training a turning point. The index is
    the snapshot nearest analyse_curve's peak epoch (the median of the seeds' peak epochs)."""
    from ibtui.runs.analysis import analyse_curve

    out: list[int | None] = []
    for layer in range(values.shape[2]):
        curve = analyse_curve(epochs, values[:, :, layer, 0].T)
        peak = curve.get("peak_epoch")
        if curve["verdict"] != "compression" or peak is None or not epochs.size or peak >= epochs[-1]:
            out.append(None)
            continue
        out.append(int(np.argmin(np.abs(epochs - peak))))
    return out


def _mark_peaks(ax, mean: np.ndarray, points: list[int | None]) -> int:
    """A ring at each layer's turning point (see turning_points) on its seed-mean path; how many."""
    drawn = 0
    for layer, at in enumerate(points):
        if at is None:
            continue
        ax.scatter([mean[at, layer, 0]], [mean[at, layer, 1]], s=130, marker=LAYER_MARKERS[layer % len(LAYER_MARKERS)],
                   facecolors="none", edgecolors=PEAK_COLOR, linewidths=2.0, zorder=4, label=PEAK_LABEL)
        drawn += 1
    return drawn


def loss_figure(record: RunRecord) -> Figure:
    """Cross-entropy loss and accuracy, train and test, against epoch; a min..max band over seeds."""
    snapshots = record.snapshots
    epochs = np.array([s.epoch for s in snapshots], dtype=float)
    fig = Figure(figsize=(12.0, 4.8), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    for ax, metric, label in ((loss_ax, "loss", "cross-entropy loss (nats)"), (acc_ax, "acc", "accuracy")):
        for split, colour, style in (("train", TRAIN_COLOR, "-"), ("test", TEST_COLOR, "--")):
            values = np.array([getattr(s, f"{split}_{metric}") for s in snapshots], dtype=float)
            if not np.isfinite(values).any():
                ax.plot([], [], " ", label=f"{split}: none (no {split} set)")
                continue
            _mean_band(ax, epochs + 1, values, colour, style, split)
        _epoch_axis(ax, epochs)
        ax.set_ylabel(label, fontsize=LABEL_SIZE)
        ax.legend(fontsize=LEGEND_SIZE, frameon=False)
        _style(ax)
    loss_ax.set_ylim(bottom=0)
    loss_ax.set_title("Loss (the L2 term is not included)" if record.config.train.l2 > 0 else "Loss",
                      fontsize=PANEL_TITLE_SIZE)
    acc_ax.set_title("Accuracy", fontsize=PANEL_TITLE_SIZE)
    acc_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    acc_ax.set_ylim(top=1.01)
    fig.suptitle(_header(record, "Training", fig.get_figwidth()), fontsize=TITLE_SIZE)
    return fig


def snr_figure(record: RunRecord) -> Figure | None:
    """Per layer, the norms of the mean gradient and of its batch-to-batch std, and their ratio."""
    measured = [s for s in record.snapshots if s.grad]
    if not measured:
        return None
    epochs = np.array([s.epoch for s in measured], dtype=float)
    means = np.array([s.grad["mean"] for s in measured], dtype=float)  # (snapshot, seed, layer)
    stds = np.array([s.grad["std"] for s in measured], dtype=float)
    ratio = np.divide(means, stds, out=np.full_like(means, np.nan), where=stds > 0)
    n_layers = means.shape[2]
    layers = _layer_names(record, n_layers)
    colours = _layer_colours(n_layers)

    fig = Figure(figsize=(12.0, 5.2), layout="constrained")
    norm_ax, snr_ax = fig.subplots(1, 2)
    x = epochs + 1
    mean_of_means, mean_of_stds, mean_ratio = (_nanmean(a, axis=1) for a in (means, stds, ratio))
    for layer in range(n_layers):
        norm_ax.plot(x, mean_of_means[:, layer], color=colours[layer], lw=1.4)
        norm_ax.plot(x, mean_of_stds[:, layer], color=colours[layer], lw=1.2, ls="--")
        snr_ax.plot(x, mean_ratio[:, layer], color=colours[layer], lw=1.4)
    for ax in (norm_ax, snr_ax):
        ax.set_yscale("log")
        # the labels log axes give (10^-2; 2x10^-1 on a short one), as plain text, not mathtext
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False))
        _epoch_axis(ax, epochs)
        _style(ax)
    snr_ax.axhline(1.0, color="0.45", lw=0.8, ls=":", zorder=0)
    norm_ax.set_ylabel("gradient norm", fontsize=LABEL_SIZE)
    norm_ax.set_title("Mean (solid) and std (dashed) of the weight gradients", fontsize=PANEL_TITLE_SIZE)
    norm_ax.legend(
        handles=[Line2D([], [], color="0.2", lw=1.4, label="‖mean‖ over the epoch's minibatches"),
                 Line2D([], [], color="0.2", lw=1.2, ls="--", label="‖std‖ over the epoch's minibatches")],
        fontsize=LEGEND_SIZE, frameon=False, loc="best",
    )
    snr_ax.set_ylabel("SNR = ‖mean‖ / ‖std‖", fontsize=LABEL_SIZE)
    snr_ax.set_title("Signal-to-noise ratio (dotted: SNR = 1)", fontsize=PANEL_TITLE_SIZE)
    handles = [Line2D([], [], color=colours[i], lw=2.0, label=name) for i, name in enumerate(layers)]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(n_layers, 8), frameon=False, fontsize=LEGEND_SIZE)
    fig.suptitle(_header(record, "Gradient signal and noise", fig.get_figwidth()), fontsize=TITLE_SIZE)
    return fig


def estimator_title(estimator: str, record: RunRecord) -> str:
    """A panel title that says which estimator, with the setting that decides its scale."""
    info = record.config.info
    if estimator in ("kde_upper", "kde_lower"):
        bound = "upper" if estimator == "kde_upper" else "lower"
        return f"KDE {bound} bound, $\\sigma^2$ = {short_number(info.noise_variance)}"
    if estimator == "binning":
        if info.n_bins is not None:
            if info.bin_range is not None:
                low, high = info.bin_range
                return f"Binning, {info.n_bins} bins on [{short_number(low)}, {short_number(high)}]"
            return f"Binning, {info.n_bins} bins on the data's range"
        return f"Binning, bin size {short_number(info.bin_size)}"
    if estimator == "adaptive":
        return f"Adaptive binning, {info.adaptive_bins} bins"
    return estimator


# -- pieces ------------------------------------------------------------------------------------


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


class PlainLogFormatter(LogFormatterSciNotation):
    """Matplotlib's log-axis labels (the same ticks labelled, the same numbers) written in plain
    text with Unicode superscripts: "10⁻²", "2×10⁻¹". Mathtext would build and run its parser
    for each label, the largest cost of drawing a figure with log axes."""

    def __call__(self, x, pos=None) -> str:
        return plain_math(super().__call__(x, pos))


def plain_math(text: str) -> str:
    r"""A label of matplotlib's log formatters in plain text: "$\mathdefault{10^{-2}}$" -> "10⁻²"."""
    if not (text.startswith("$") and text.endswith("$")):
        return text
    body = text[1:-1].replace(r"\mathdefault", "").replace(r"\times", "×")
    body = re.sub(r"\^\{?([-0-9]+)\}?", lambda m: m.group(1).translate(_SUPERSCRIPT), body)
    return body.replace("{", "").replace("}", "")


def _header(record: RunRecord, what: str, width_inches: float) -> str:
    """What ran (name, network, L2, seeds, how it ended) and on which data, wrapped to the figure."""
    config, summary = record.config, record.summary
    name, *network = what_ran(config, summary.get("name") or config.name)
    first = [f"{what}: {name}", *network]
    seeds = list(summary.get("seeds") or range(config.train.seed, config.train.seed + config.train.seeds))
    if len(seeds) == 1:
        first.append(f"seed {seeds[0]}")
    else:
        contiguous = seeds == list(range(seeds[0], seeds[0] + len(seeds)))
        listed = f"{seeds[0]}-{seeds[-1]}" if contiguous else ", ".join(str(s) for s in seeds)
        first.append(f"mean of {len(seeds)} seeds ({listed})")
    first.append(_status(record))
    dataset = summary.get("dataset") or config.data.name
    if summary.get("synthetic") and "SYNTHETIC" not in dataset:
        dataset = f"SYNTHETIC DATA: {dataset}"
    # About 9 characters of the title font per inch; parts are never split mid-way.
    max_chars = int(width_inches * 72 / (TITLE_SIZE * 0.6))
    lines, line = [], ""
    for part in first:
        candidate = f"{line}  ·  {part}" if line else part
        if line and len(candidate) > max_chars:
            lines.append(line)
            candidate = part
        line = candidate
    lines.append(line)
    return "\n".join([*lines, dataset])


def _status(record: RunRecord) -> str:
    summary = record.summary
    epoch = int(summary.get("epoch", record.snapshots[-1].epoch if record.snapshots else 0))
    total = int(summary.get("epochs", record.config.train.epochs))
    status = summary.get("status", "unknown")
    if status == "finished":
        return f"{epoch:,} epochs"
    if status == "interrupted":
        return f"interrupted at epoch {epoch:,} of {total:,}"
    if status == "failed":
        return f"FAILED at epoch {epoch:,} of {total:,}"
    return f"{status}, epoch {epoch:,} of {total:,}"


def _layer_names(record: RunRecord, count: int | None = None) -> list[str]:
    if count is None:
        first = record.snapshots[0] if record.snapshots else None
        if first is not None and first.mi:
            count = len(next(iter(first.mi.values()))[0])
        else:
            count = len(record.layer_names)
    names = record.layer_names
    if len(names) == count:
        return names
    return [f"layer {i + 1}" for i in range(count)]


def _layer_colours(count: int) -> list:
    if count <= len(PALETTE):
        return list(PALETTE[:count])
    return [_cmap()(v) for v in np.linspace(0.0, 0.9, count)]


def _cmap():
    from matplotlib import colormaps

    return colormaps[EPOCH_CMAP]


def _epoch_norm(epochs: np.ndarray) -> tuple[Normalize, list[int] | None]:
    """A log norm on epoch + 1 (with ticks at round epochs) when the epochs span decades."""
    low, high = float(epochs.min()), float(epochs.max())
    if (high + 1) / (low + 1) >= 50:
        ticks = [t for t in _round_epochs(high) if low <= t <= high]
        return LogNorm(vmin=low + 1, vmax=high + 1), ticks
    if high <= low:
        high = low + 1
    return Normalize(vmin=low, vmax=high), None


def _epoch_axis(ax, epochs: np.ndarray) -> None:
    """A log x axis of epoch + 1 (so epoch 0 fits) whose ticks name the epochs themselves."""
    ax.set_xscale("log")
    high = max(float(epochs.max()), 1.0)
    ticks = _round_epochs(high)
    ax.xaxis.set_major_locator(FixedLocator([t + 1 for t in ticks]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{round(v - 1):,}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(max(float(epochs.min()) + 1, 1.0) / 1.15, (float(epochs.max()) + 1) * 1.15)
    ax.set_xlabel("epoch  (log scale of epoch + 1)", fontsize=LABEL_SIZE)


def _round_epochs(high: float) -> list[int]:
    """0 and the powers of ten up to high; 1 only on short runs, where it does not crowd 0."""
    powers = [10**k for k in range(0, int(math.log10(max(high, 1.0))) + 1)]
    if high >= 1000:
        powers = powers[1:]
    return [0, *powers]


def _mean_band(ax, x: np.ndarray, values: np.ndarray, colour: str, style: str, label: str) -> None:
    """The mean over seeds as a line; with several seeds, their min..max as a band."""
    mean = _nanmean(values, axis=1)
    n_seeds = values.shape[1]
    ax.plot(x, mean, color=colour, ls=style, lw=1.6, label=label if n_seeds == 1 else f"{label} (mean, min-max band)")
    if n_seeds > 1:
        finite = np.isfinite(values)
        low = np.where(finite, values, np.inf).min(axis=1)
        high = np.where(finite, values, -np.inf).max(axis=1)
        ok = np.isfinite(low) & np.isfinite(high)
        ax.fill_between(x, np.where(ok, low, np.nan), np.where(ok, high, np.nan), color=colour, alpha=0.18, lw=0)


def _bounds(ax, max_ixt: float | None, h_y: float | None) -> None:
    """Dotted lines at the ceilings log2 N and H(Y), labelled small."""
    if max_ixt is not None:
        ax.axvline(max_ixt, color="0.55", lw=0.8, ls=":", zorder=0)
        ax.annotate(f"log$_2$N = {max_ixt:.3g}", (max_ixt, 0), xytext=(-3, 3), textcoords="offset points",
                    rotation=90, ha="right", va="bottom", fontsize=7.5, color="0.4")
    if h_y is not None:
        ax.axhline(h_y, color="0.55", lw=0.8, ls=":", zorder=0)
        ax.annotate(f"H(Y) = {h_y:.3g}", (0, h_y), xytext=(3, 3), textcoords="offset points",
                    ha="left", va="bottom", fontsize=7.5, color="0.4")


def _style(ax) -> None:
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, color="0.88", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _decimate(epochs: np.ndarray, limit: int) -> np.ndarray:
    """At most about `limit` snapshot indices, evenly spread in log(epoch + 1), first and last kept."""
    n = len(epochs)
    if n <= limit:
        return np.arange(n)
    position = np.log1p(np.maximum(epochs, 0))
    targets = np.linspace(position[0], position[-1], limit)
    return np.unique(np.round(np.interp(targets, position, np.arange(n))).astype(int))


def _nanmean(values: np.ndarray, axis: int) -> np.ndarray:
    """Mean of the finite values; NaN where there are none (without numpy's global warnings)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=axis)
    total = np.where(finite, values, 0.0).sum(axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def _limit(ceiling: float | None, values: np.ndarray) -> float:
    """The axis top: the theoretical ceiling, or the data where an estimator overshoots it."""
    finite = values[np.isfinite(values)]
    data_top = float(finite.max()) if finite.size else 0.0
    top = max(ceiling or 0.0, data_top)
    return top if top > 0 else 1.0


def _summary_float(record: RunRecord, key: str) -> float | None:
    value = record.summary.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


# Every figure of a run, by file name, in the order they are written (figures.FIGURE_FILES).
FIGURES = {INFO_PLANE_FILE: info_plane_figure, LOSS_FILE: loss_figure, SNR_FILE: snr_figure, MI_CURVES_FILE: mi_curves_figure}
