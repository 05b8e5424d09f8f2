"""info_plane.gif (and .mp4 with ffmpeg): the information plane growing snapshot by snapshot.

Drawn with matplotlib.animation.FuncAnimation on a Figure (no pyplot) and written by
PillowWriter (GIF, always available with matplotlib's Pillow dependency) and FFMpegWriter when
an ffmpeg binary is on PATH. Frame k shows every snapshot up to k: each layer's seed-mean path,
coloured by epoch, the current snapshot's points larger and joined across layers. Long runs are
thinned to at most MAX_FRAMES snapshots, evenly in log(epoch + 1) as the PNGs are. The axes are
fixed from the first frame to the last (the theoretical ceilings log2 N and H(Y), or the data),
so motion on screen is motion in the plane.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.animation import FFMpegWriter, FuncAnimation, PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ibtui.errors import IbtuiError
from ibtui.export.png import (
    LABEL_SIZE, LAYER_MARKERS, PANEL_TITLE_SIZE, _bounds, _cmap, _decimate, _epoch_norm, _header, _limit, _nanmean,
    _style, _summary_float, estimator_title,
)
from ibtui.runs.files import FILE_MODE
from ibtui.runs.record import RunRecord, load_run

GIF_FILE = "info_plane.gif"
MP4_FILE = "info_plane.mp4"
MAX_FRAMES = 120
FPS = 12
HOLD_FRAMES = FPS  # the last frame stays a second before the loop starts again


def movie_frames(epochs: np.ndarray, limit: int = MAX_FRAMES) -> np.ndarray:
    """The snapshot indices that become frames (first and last always)."""
    return _decimate(epochs, limit)


def movie_animation(record: RunRecord, estimator: str | None = None, limit: int = MAX_FRAMES) -> tuple[Figure, FuncAnimation, int]:
    """(figure, animation, number of distinct frames) for the run's first (or the given) estimator."""
    if not record.snapshots:
        raise IbtuiError(f"{record.path} has no snapshots yet, so there is no movie to make")
    estimator = estimator or record.estimators[0]
    values = np.array([s.mi[estimator] for s in record.snapshots], dtype=float)
    mean = _nanmean(values, axis=1)  # (snapshot, layer, 2)
    epochs = np.array([s.epoch for s in record.snapshots], dtype=float)
    frames = movie_frames(epochs, limit)
    norm, _ = _epoch_norm(epochs)
    colour = epochs + 1 if isinstance(norm, LogNorm) else epochs
    rgba = _cmap()(norm(colour))
    fig = Figure(figsize=(7.0, 5.6), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    max_ixt, h_y = _summary_float(record, "max_ixt"), _summary_float(record, "h_y")
    x_top, y_top = _limit(max_ixt, values[..., 0]), _limit(h_y, values[..., 1])
    ax.set_xlim(-0.02 * x_top, 1.04 * x_top)
    ax.set_ylim(-0.02 * y_top, 1.06 * y_top)
    _bounds(ax, max_ixt, h_y)
    ax.set_xlabel("I(X;T)  (bits)", fontsize=LABEL_SIZE)
    ax.set_ylabel("I(T;Y)  (bits)", fontsize=LABEL_SIZE)
    _style(ax)
    fig.suptitle(_header(record, "Information plane", fig.get_figwidth()), fontsize=PANEL_TITLE_SIZE)
    n_layers = mean.shape[1]
    trails = [ax.scatter(np.empty(0), np.empty(0), s=16, marker=LAYER_MARKERS[i % len(LAYER_MARKERS)], linewidths=0)
              for i in range(n_layers)]
    current = [ax.scatter([], [], s=70, marker=LAYER_MARKERS[i % len(LAYER_MARKERS)], color="black", zorder=4)
               for i in range(n_layers)]
    (joint,) = ax.plot([], [], color="black", lw=1.0, zorder=3)
    label = ax.text(0.93, 0.04, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=LABEL_SIZE)
    sequence = list(frames) + [frames[-1]] * HOLD_FRAMES

    def draw(index: int):
        upto = frames[frames <= index]
        for layer in range(n_layers):
            trails[layer].set_offsets(mean[upto, layer, :])
            trails[layer].set_facecolor(rgba[upto])
            current[layer].set_offsets(mean[index, layer, :][None, :])
        joint.set_data(mean[index, :, 0], mean[index, :, 1])
        label.set_text(f"{estimator_title(estimator, record)}\nepoch {int(epochs[index]):,}")
        return [*trails, *current, joint, label]

    animation = FuncAnimation(fig, draw, frames=sequence, blit=False, cache_frame_data=False)
    return fig, animation, len(frames)


def write_movie(run_dir: str | Path, estimator: str | None = None, limit: int = MAX_FRAMES) -> list[Path]:
    """Write RUN/info_plane.gif (and .mp4 when ffmpeg is available), atomically; the paths written."""
    record = load_run(run_dir)
    if estimator is not None and estimator not in record.estimators:
        raise IbtuiError(f"{record.path} has no {estimator} estimates (it has {', '.join(record.estimators)})")
    written = []
    writers = [(GIF_FILE, PillowWriter(fps=FPS))]
    if FFMpegWriter.isAvailable():
        writers.append((MP4_FILE, FFMpegWriter(fps=FPS, bitrate=1800)))
    for name, writer in writers:
        _, animation, _ = movie_animation(record, estimator, limit)
        target = record.path / name
        handle, tmp = tempfile.mkstemp(dir=record.path, prefix=f".{name}.", suffix=Path(name).suffix)
        os.close(handle)
        try:
            animation.save(tmp, writer=writer, dpi=100)
            os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600 files
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written
