"""Writing a run's figures: here, or side by side in idle processes.

The drawing is in png.py (and mi_curves.py); this module only decides where each figure is drawn,
and imports matplotlib only where one is drawn here. At the end of `ibtui run` the estimator
processes draw every figure, so the run's own process never imports matplotlib (about a second of
CPU that would compete with the drawing for the same cores); ibtui.Recorder hands them to its
estimator process too, after `prepare` has imported matplotlib there while it idled.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor, Executor
from pathlib import Path

from ibtui.runs.record import load_run

# Every figure of a run, by file name, in the order they are written (png.FIGURES draws them).
FIGURE_FILES = ("info_plane.png", "loss.png", "snr.png", "mi_curves.png")


def export_run(run_dir: str | Path, formats: tuple[str, ...] = ("png",), pool: Executor | None = None) -> list[Path]:
    """Write the figures of a run directory into it, in each of `formats` (png, svg, pdf: vector
    formats for papers); the paths written (none without snapshots). With `pool` (idle estimator
    processes at the end of a run) the figures are drawn there side by side, one task each;
    those a broken or shut-down pool leaves undone are drawn here. A figure that fails raises
    its error, wherever it was drawn."""
    record = load_run(run_dir)
    if not record.snapshots:
        return []
    done: dict[str, list[Path]] = {}
    if pool is not None:
        futures = {}
        try:
            for name in FIGURE_FILES:
                futures[name] = pool.submit(export_figure, record.path, name, formats)
        except RuntimeError:  # BrokenExecutor, or a pool already shut down
            pass  # the rest are drawn here below
        failed: Exception | None = None
        for name, future in futures.items():  # every one awaited, so none is still writing after
            try:
                done[name] = future.result()
            except BrokenExecutor:
                pass
            except Exception as error:  # noqa: BLE001 - raised below, once all have ended
                failed = failed or error
        if failed is not None:
            raise failed
    written = []
    for name in FIGURE_FILES:
        if name not in done:
            from ibtui.export import png

            done[name] = png.write_figure(record, name, formats)
        written += done[name]
    return written


def prepare() -> None:
    """A pool task for an idle process that will draw figures later: import matplotlib and the
    drawing code, and draw one small figure, so that the imports, the font and the first text
    layout are paid for before the figures are wanted."""
    from ibtui.export import png

    png.warm_up()


def export_figure(run_dir: str | Path, name: str, formats: tuple[str, ...] = ("png",)) -> list[Path]:
    """Write one of the run's figures (by file name) in each of `formats`; the paths written."""
    from ibtui.export import png

    return png.write_figure(load_run(run_dir), name, formats)
