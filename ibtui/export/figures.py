"""Writing a run's figures: here, or side by side in idle processes.

The drawing is in png.py (and mi_curves.py); this module only decides where each figure is drawn,
and imports matplotlib only where one is drawn here. At the end of `ibtui run` the estimator
processes draw every figure, so the run's own process never imports matplotlib (about a second of
CPU that would compete with the drawing for the same cores); ibtui.Recorder hands them to its
estimator process too, after `prepare` has imported matplotlib there while it idled. That is one
process on cores the user's loop has just left idle, so there the figures are dealt into
`shares` and each share is drawn at once by forked copies of its process (`draw_at_once`), which
start with matplotlib imported and warm: the figures take as long as the slowest, not the sum.
"""

from __future__ import annotations

import os
import pickle
import sys
from concurrent.futures import BrokenExecutor, Executor
from pathlib import Path

from ibtui.runs.record import load_run

# Every figure of a run, by file name, in the order they are written (png.FIGURES draws them).
FIGURE_FILES = ("info_plane.png", "loss.png", "snr.png", "mi_curves.png")


def export_run(run_dir: str | Path, formats: tuple[str, ...] = ("png",), pool: Executor | None = None,
               shares: int | None = None) -> list[Path]:
    """Write the figures of a run directory into it, in each of `formats` (png, svg, pdf: vector
    formats for papers); the paths written (none without snapshots). With `pool` (idle estimator
    processes at the end of a run) the figures are drawn there side by side, one task each, or,
    with `shares` (a process pool of fewer processes than figures, on idle cores), dealt into
    that many `draw_at_once` tasks; those a broken or shut-down pool leaves undone are drawn
    here. A figure that fails raises its error, wherever it was drawn."""
    record = load_run(run_dir)
    if not record.snapshots:
        return []
    done: dict[str, list[Path]] = {}
    if pool is not None:
        if shares:
            tasks = [(draw_at_once, FIGURE_FILES[i::shares]) for i in range(min(shares, len(FIGURE_FILES)))]
        else:
            tasks = [(export_figure, name) for name in FIGURE_FILES]
        futures = []
        try:
            for task, names in tasks:
                futures.append((task, names, pool.submit(task, record.path, names, formats)))
        except RuntimeError:  # BrokenExecutor, or a pool already shut down
            pass  # the rest are drawn here below
        failed: Exception | None = None
        for task, names, future in futures:  # every one awaited, so none is still writing after
            try:
                done.update(future.result() if task is draw_at_once else {names: future.result()})
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


def draw_at_once(run_dir: str | Path, names: tuple[str, ...], formats: tuple[str, ...] = ("png",)) -> dict[str, list[Path]]:
    """A pool task: draw the figures `names` at the same time, the first here and each other one
    in a forked copy of this process; {name: paths written}.

    For an estimator process that has drawn `prepare` and has idle cores beside it: a fork
    starts with matplotlib imported and its fonts loaded, in milliseconds, where a new process
    would spend a second importing. Safe because the children draw with Agg only (no torch, no
    OpenMP or numba threads, which do not survive a fork) and end with os._exit. Each child
    sends back its paths, or its error, through a pipe; a figure whose child died without a
    word is drawn here. Serial where os.fork is missing or unsafe (not Linux)."""
    if not sys.platform.startswith("linux") or len(names) < 2:
        return {name: export_figure(run_dir, name, formats) for name in names}
    children, here = [], [names[0]]
    for name in names[1:]:
        try:
            children.append((name, *_fork_figure(run_dir, name, formats)))
        except OSError:  # no process to be had (EAGAIN, ENOMEM): drawn here
            here.append(name)
    done: dict[str, list[Path]] = {}
    failed: BaseException | None = None
    try:
        for name in here:
            done[name] = export_figure(run_dir, name, formats)
    except Exception as error:  # noqa: BLE001 - raised below, once every child is reaped
        failed = error
    for name, pid, reading in children:
        with os.fdopen(reading, "rb") as pipe:
            message = pipe.read()
        os.waitpid(pid, 0)
        try:
            ok, result = pickle.loads(message)
        except Exception:  # noqa: BLE001 - the child died before it answered: draw it here
            try:
                ok, result = True, export_figure(run_dir, name, formats)
            except Exception as error:  # noqa: BLE001 - raised below, once every child is reaped
                ok, result = False, error
        if ok:
            done[name] = result
        else:
            failed = failed or result
    if failed is not None:
        raise failed
    return {name: done[name] for name in names}


def _fork_figure(run_dir: str | Path, name: str, formats: tuple[str, ...]) -> tuple[int, int]:
    """Fork a child that draws one figure and writes (True, paths) or (False, error), pickled,
    to a pipe; (its pid, the pipe's reading end)."""
    reading, writing = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(reading)
        os.close(writing)
        raise
    if pid:
        os.close(writing)
        return pid, reading
    try:  # the child: never returns
        os.close(reading)
        try:
            message = pickle.dumps((True, export_figure(run_dir, name, formats)))
        except BaseException as error:  # noqa: BLE001 - sent to the parent, which raises it
            try:
                message = pickle.dumps((False, error))
            except Exception:  # noqa: BLE001 - an error that does not pickle: its words
                message = pickle.dumps((False, RuntimeError(f"{type(error).__name__}: {error}")))
        with os.fdopen(writing, "wb") as pipe:
            pipe.write(message)
    finally:
        os._exit(0)
