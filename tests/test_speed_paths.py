"""The run path's start-up and export: estimator processes all started at once, a prestarted pool
lent to the pipeline and kept for the figures, figures drawn in a pool exactly as here."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import BrokenExecutor, Future, ThreadPoolExecutor

import pytest

from ibtui.config import InfoConfig
from ibtui.engine import processes, workers
from ibtui.export.png import FIGURES, export_run
from ibtui.runs.presets import load_preset
from tests.helpers import exit_code
from tests.test_png import fake_run


def test_a_pool_starts_every_process_at_once_and_a_prestarted_one_is_lent_then_kept():
    workers.prestart(2, 1, InfoConfig())
    try:
        pool = workers.prestarted_pool()
        assert pool is not None
        # Spawned pools start a process only when a task finds none idle: the warm-up tasks
        # start both now, not the second when training ends.
        assert len(pool._processes) == 2
        assert workers.estimator_pool(2, 1) is pool  # the pipeline's shape: lent
        assert workers.prestarted_pool() is None  # while lent, not for other work
        workers.release(pool)  # the pipeline's close: kept for its owner
        assert workers.prestarted_pool() is pool
        started = list(pool._processes.values())
        assert pool.submit(workers.warm_up).result(timeout=300) in {p.pid for p in started}
    finally:
        workers.close_prestarted(terminate=True)
    assert workers.prestarted_pool() is None
    for process in started:
        assert exit_code(process) is not None  # a guard against a hang: a loaded box took over 30 s once


def test_a_prestarted_pool_of_another_shape_is_closed_not_lent(monkeypatch):
    closed = []

    class FakePool:
        def __init__(self):
            self.warm_ups = 0

        def submit(self, fn, *args):
            self.warm_ups += fn is workers.warm_up

        def shutdown(self, wait=True, cancel_futures=False):
            closed.append(self)

    made = []
    monkeypatch.setattr(workers, "ProcessPoolExecutor", lambda *a, **k: made.append(FakePool()) or made[-1])
    workers.prestart(2, 1, InfoConfig())
    prestarted = made[0]
    other = workers.estimator_pool(3, 1)
    assert other is not prestarted and closed == [prestarted] and workers.prestarted_pool() is None
    assert (prestarted.warm_ups, other.warm_ups) == (2, 3)  # one per process: each starts one
    workers.release(other)
    assert closed == [prestarted, other]


def test_figures_drawn_in_a_pool_are_the_figures_drawn_here(tmp_path):
    here = fake_run(tmp_path / "here", grad=True)
    there = fake_run(tmp_path / "there", grad=True)
    written_here = export_run(here)
    with ThreadPoolExecutor(2) as pool:
        written_there = export_run(there, pool=pool)
    assert [p.name for p in written_here] == [p.name for p in written_there] == list(FIGURES)
    for a, b in zip(written_here, written_there):
        assert a.read_bytes() == b.read_bytes()


def test_figures_handed_to_a_pool_leave_matplotlib_out_of_this_process(tmp_path):
    from ibtui.export.figures import FIGURE_FILES

    assert tuple(FIGURES) == FIGURE_FILES
    run = fake_run(tmp_path / "run", grad=True)
    # `ibtui run` hands its figures to the estimator processes; its own process, which would
    # import matplotlib while they draw, must not (a pool that only records the tasks here).
    code = (
        "import sys\n"
        "from concurrent.futures import Future\n"
        "from ibtui.export.figures import FIGURE_FILES, export_run\n"
        "class Pool:\n"
        "    def submit(self, fn, run_dir, name, formats):\n"
        "        future = Future(); future.set_result([run_dir / name]); return future\n"
        f"written = export_run({str(run)!r}, pool=Pool())\n"
        "assert [p.name for p in written] == list(FIGURE_FILES), written\n"
        "assert 'matplotlib' not in sys.modules, sorted(m for m in sys.modules if 'matplotlib' in m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def _drawn_by(run, monkeypatch, child_fault=None):
    """Patch figures.export_figure to leave <name>.pid beside each figure (the process that drew
    it) and, in a forked child only, to do `child_fault(name)` first."""
    import os

    from ibtui.export import figures

    real, parent = figures.export_figure, os.getpid()

    def export_figure(run_dir, name, formats=("png",)):
        if child_fault is not None and os.getpid() != parent:
            child_fault(name)
        (run / f"{name}.pid").write_text(str(os.getpid()))
        return real(run_dir, name, formats)

    monkeypatch.setattr(figures, "export_figure", export_figure)
    return lambda: {path.name[:-4]: int(path.read_text()) for path in run.glob("*.pid")}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figures are forked on Linux only")
def test_a_one_process_pool_draws_its_share_of_figures_at_once_in_forked_copies_of_itself(tmp_path, monkeypatch):
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    here = fake_run(tmp_path / "here", grad=True)
    there = fake_run(tmp_path / "there", grad=True)
    written_here = export_run(here)
    drawn_by = _drawn_by(there, monkeypatch)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        written_there = export_run(there, pool=pool, shares=1)
    assert [p.name for p in written_there] == [p.name for p in written_here] == list(FIGURES)
    for a, b in zip(written_here, written_there):
        assert a.read_bytes() == b.read_bytes()
    pids = drawn_by()
    # the pool's process drew the first; a fork of it each of the others; none was drawn here
    assert len(set(pids.values())) == len(FIGURES) and os.getpid() not in pids.values()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="figures are forked on Linux only")
def test_a_forked_figure_that_fails_raises_its_error_and_one_whose_child_died_is_drawn_here(tmp_path, monkeypatch):
    import os

    from ibtui.export.figures import FIGURE_FILES, draw_at_once

    def fault(name):
        if name == "loss.png":
            raise ValueError("no ink for loss.png")
        if name == "mi_curves.png":
            os._exit(3)  # dies before it answers

    run = fake_run(tmp_path / "run", grad=True)
    drawn_by = _drawn_by(run, monkeypatch, fault)
    with pytest.raises(ValueError, match="no ink for loss.png"):
        draw_at_once(run, FIGURE_FILES)
    pids = drawn_by()
    assert "loss.png" not in pids and pids["info_plane.png"] == pids["mi_curves.png"] == os.getpid() != pids["snr.png"]
    for name in ("info_plane.png", "snr.png", "mi_curves.png"):
        assert (run / name).stat().st_size > 0
    assert not _zombies()  # every child was reaped


def _zombies() -> list[str]:
    """This process's children that ended and were never reaped."""
    import os
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        if state == "Z" and int(ppid) == os.getpid():
            found.append(stat.parent.name)
    return found


def test_a_broken_pool_leaves_the_figures_to_this_process(tmp_path):
    class BrokenPool:
        def submit(self, *args, **kwargs):
            raise BrokenExecutor("no processes here")

    run = fake_run(tmp_path / "run")
    assert [p.name for p in export_run(run, pool=BrokenPool())] == [p.name for p in export_run(run)]


def test_figures_a_pool_finished_before_it_broke_are_not_drawn_again(tmp_path, monkeypatch):
    import ibtui.export.png as png

    class HalfPool:  # draws the first figure, then breaks as a pool whose process died does
        def __init__(self):
            self.broken = False

        def submit(self, fn, *args):
            if self.broken:
                raise BrokenExecutor("a process died")
            self.broken = True
            future = Future()
            future.set_result(fn(*args))
            return future

    run = fake_run(tmp_path / "run", grad=True)
    here = []
    real = png.write_figure
    monkeypatch.setattr(png, "write_figure", lambda record, name, formats: here.append(name) or real(record, name, formats))
    written = export_run(run, pool=HalfPool())
    first, *rest = FIGURES
    assert here == [first] + rest  # the pool's task ran write_figure for the first one, once
    assert [p.name for p in written] == list(FIGURES)


def test_spawned_children_do_not_see_the_main_module_and_it_is_restored():
    main = sys.modules["__main__"]
    before = (getattr(main, "__file__", None), getattr(main, "__spec__", None))
    with processes._main_hidden():
        assert not hasattr(main, "__file__") and main.__spec__ is None
    assert (getattr(main, "__file__", None), getattr(main, "__spec__", None)) == before


@pytest.mark.parametrize(("overrides", "expected"), [
    ({}, True),  # the tanh preset: 212 snapshots x 6 layers x 4,096^2 pair terms
    ({"data.mi_samples": 200, "train.epochs": 50}, False),  # too little KDE work for processes
    ({"info.estimators": ["binning"]}, False),
    ({"train.device": "cuda"}, False),
])
def test_ibtui_run_prestarts_the_estimator_processes_only_for_a_run_that_will_use_them(monkeypatch, overrides, expected):
    import os
    from pathlib import Path

    from ibtui.cli import train

    config = load_preset("tanh").with_overrides(overrides) if overrides else load_preset("tanh")
    calls = []
    monkeypatch.setattr(workers, "prestart", lambda *args, **options: calls.append((args, options)))
    monkeypatch.setattr(Path, "exists", lambda self: False)  # no GPU driver here
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    train._prestart_estimators(config)
    assert bool(calls) == expected
    if expected:
        args, options = calls[0]
        assert args[:2] == workers.pool_shape(2) and options == {"fork": True}


def test_the_exit_skips_its_collections_but_runs_every_handler_and_flushes():
    # gc.freeze registered once, as an atexit handler; handlers registered before and after it
    # still run (the earlier one after it: it sees the objects frozen), stdout still flushed.
    code = (
        "import atexit, gc, sys\n"
        "from ibtui.engine.processes import skip_exit_collection\n"
        "atexit.register(lambda: print('before:', gc.get_freeze_count() > 0))\n"
        "count = atexit._ncallbacks()\n"
        "skip_exit_collection(); skip_exit_collection()\n"
        "assert atexit._ncallbacks() == count + 1, atexit._ncallbacks()\n"
        "atexit.register(lambda: print('after:', gc.get_freeze_count() > 0))\n"
        "sys.stdout.write('unflushed ')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["unflushed", "after:", "False", "before:", "True"]
