"""The runs screen (r): the `ibtui runs` list in the app, replaying a run, overlaying up to four
runs on one plane, a running sweep's progress, and a run's sensitivity table (t).

Run directories are written by the real RunStore from hand-made events (test_png.fake_run), so no
training is needed; every assertion is on app state, screens, widgets or counts."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

sys.path.insert(0, str(Path(__file__).parent))

from test_png import _fake_snapshot, fake_run  # noqa: E402
from tui_fakes import FakeEngine, FakeExporter, FrozenClock, rendered  # noqa: E402

from ibtui.engine.events import RunFinished, RunStarted  # noqa: E402
from ibtui.engine.schedule import saxe_epochs  # noqa: E402
from ibtui.runs.presets import load_preset  # noqa: E402
from ibtui.runs.store import RunStore  # noqa: E402
from ibtui.sweeps.listing import list_runs  # noqa: E402
from ibtui.sweeps.spec import build_spec, claim_sweep_dir  # noqa: E402
from ibtui.tui.app import IbtuiApp  # noqa: E402
from ibtui.tui.screens.overlay import OverlayScreen  # noqa: E402
from ibtui.tui.screens.runs import RunsScreen  # noqa: E402
from ibtui.tui.screens.sensitivity import SensitivityScreen  # noqa: E402
from ibtui.tui.sweep_progress import sweep_progress  # noqa: E402
from ibtui.tui.widgets.overlay_plane import RUN_COLOURS, OverlayLegend, OverlayPlot  # noqa: E402

GUARD_S = 60.0  # only guards against a hang; nothing asserts on time
STARTED = "2026-11-30T12:00:00"
LAYERS = ("L1 tanh 10", "L2 tanh 7", "L3 tanh 5", "L4 tanh 4", "L5 tanh 3", "out softmax 2")


def async_test(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return asyncio.run(function(*args, **kwargs))

    return wrapper


async def wait_for(pilot, condition, timeout: float = GUARD_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


def fix_date(run_dir: Path, **changes) -> None:
    """RunStore stamps the wall clock; snapshots need the same date every time."""
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    summary.update(started=STARTED, **changes)
    path.write_text(json.dumps(summary))


def point_run(path: Path, config, *, done: int | None = None, squeeze: float = 1.0) -> None:
    """A sweep point written through RunStore: finished (done=None) or still running at `done`."""
    epochs = config.train.epochs
    store = RunStore.create(path, config)
    schedule = saxe_epochs(epochs)
    store.handle(RunStarted(run_id="p", config=config, layer_names=LAYERS, layer_widths=(10, 7, 5, 4, 3, 2), seeds=(0,),
                            n_mi_samples=4096, h_y=0.999, schedule=tuple(schedule), start_epoch=0, device="cpu",
                            dataset="tishby", synthetic=False))
    import numpy as np

    rng = np.random.default_rng(1)
    for epoch in schedule:
        if done is not None and epoch > done:
            break
        snapshot = _fake_snapshot(epoch, epochs, 1, tuple(config.info.estimators), False, False, rng)
        if squeeze != 1.0:  # another run's paths: I(X;T) scaled, so overlaid runs do not coincide
            mi = {k: [[[x * squeeze, y] for x, y in seed] for seed in v] for k, v in snapshot.mi.items()}
            snapshot = dataclasses.replace(snapshot, mi=mi)
        store.handle(snapshot)
    if done is None:
        store.handle(RunFinished("p", "finished", epochs, 1.0))
    else:
        store.close()
    fix_date(path)


def fake_config():
    from ibtui.config import RunConfig

    return RunConfig().with_overrides({"name": "fake-tanh", "train.epochs": 300, "info.estimators": ["kde_upper", "binning"]})


def runs_folder(root: Path, *, runs: int = 3, sweep: bool = True) -> Path:
    """root/runs: `runs` finished runs and, with sweep, a 2 x 2 sweep: 1 point done, 1 running, 2 to do."""
    folder = root / "runs"
    config = fake_config()
    for k in range(runs):  # run-1 is fake_run's; the others squeeze I(X;T) a little more each
        if k == 0:
            fix_date(fake_run(folder / "run-1", epochs=300, estimators=("kde_upper", "binning")))
        else:
            point_run(folder / f"run-{k + 1}", config, squeeze=1.0 - 0.12 * k)
    if sweep:
        spec = build_spec(grid=["model.activation=tanh,relu", "train.l2=0,1e-3"], settings={"train.epochs": 300})
        out = folder / "act-l2"
        claim_sweep_dir(out, spec)
        points = spec.points()
        point_run(out / points[0].name, points[0].config)
        point_run(out / points[1].name, points[1].config, done=40)
    return folder


def make_app(folder: Path) -> IbtuiApp:
    return IbtuiApp(config=load_preset("tanh").with_overrides({"train.epochs": 40}), trainer_factory=FakeEngine(),
                    exporter=FakeExporter(), runs_root=folder, clock=FrozenClock())


def notices(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


def row_of(screen: RunsScreen, name: str) -> int:
    return next(i for i, e in enumerate(screen.entries) if e.name.strip() == name)


async def open_runs(pilot) -> RunsScreen:
    from textual.widgets import DataTable

    await pilot.press("r")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen) and pilot.app.screen.query(DataTable))
    return pilot.app.screen


async def go_to(pilot, screen: RunsScreen, name: str) -> None:
    from textual.widgets import DataTable

    screen.query_one(DataTable).move_cursor(row=row_of(screen, name))
    await pilot.pause()


# -- the list and the sweep's progress ---------------------------------------------------------------


@async_test
async def test_runs_screen_lists_what_ibtui_runs_lists(tmp_path):
    from textual.widgets import DataTable

    folder = runs_folder(tmp_path)
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Runs", "Sensitivity"} <= set(commands)  # the command palette offers both
        commands["Runs"].callback()
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        screen = await open_runs(pilot)
        expected = list_runs(folder)
        table = screen.query_one(DataTable)
        assert table.row_count == len(expected) == 3 + 1 + 4  # three runs, the sweep and its 4 points
        for row, entry in enumerate(expected):
            cells = [str(c) for c in table.get_row_at(row)]
            assert cells[1].strip() == entry.name
            assert cells[2:] == [entry.status, entry.epochs, entry.seeds, entry.verdicts, entry.date, entry.what]
        assert any(e.verdicts.startswith(("C", "-", "?")) for e in expected if e.name == "run-1")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))


def test_sweep_progress_counts_done_running_and_to_do(tmp_path):
    folder = runs_folder(tmp_path, runs=0)
    progress = sweep_progress(folder / "act-l2")
    assert (progress.done, progress.running, progress.todo) == (1, 1, 2)
    assert "1 done · 1 running · 2 to do (of 4)" in progress.line()
    assert progress.active == (("activation=tanh,l2=0.001", 40, 300),)  # its last snapshot: epoch 40
    assert "activation=tanh,l2=0.001: epoch 40/300" in progress.line()
    # a point that was stopped is to do again (the sweep resumes it)
    fix_date(next(p for p in (folder / "act-l2").iterdir() if (p / "summary.json").exists() and
                  json.loads((p / "summary.json").read_text())["status"] == "running"), status="interrupted")
    progress = sweep_progress(folder / "act-l2")
    assert (progress.done, progress.running, progress.todo) == (1, 0, 3)


@async_test
async def test_a_running_sweep_moves_on_the_runs_screen(tmp_path):
    folder = runs_folder(tmp_path, runs=1)
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_runs(pilot)
        line = str(screen.query_one("#runs-progress").render())
        assert "act-l2/" in line and "1 done · 1 running · 2 to do (of 4)" in line
        spec_points = build_spec(grid=["model.activation=tanh,relu", "train.l2=0,1e-3"], settings={"train.epochs": 300}).points()
        point_run(folder / "act-l2" / spec_points[2].name, spec_points[2].config)  # another point finishes
        screen.reload()  # what the screen's timer does every REFRESH_S
        await pilot.pause()
        assert "2 done · 1 running · 1 to do (of 4)" in str(screen.query_one("#runs-progress").render())
        assert [e.status for e in screen.entries if e.depth == 1].count("finished") == 2


# -- replay ----------------------------------------------------------------------------------------------


@async_test
async def test_enter_replays_a_finished_run_read_only(tmp_path):
    folder = runs_folder(tmp_path, runs=2, sweep=False)
    before = {p: p.read_bytes() for p in (folder / "run-2").rglob("*") if p.is_file()}
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_runs(pilot)
        await go_to(pilot, screen, "run-2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        assert app.follower is not None and app.follower.path == folder / "run-2"
        await wait_for(pilot, lambda: app.run_state.status == "finished" and app.verdicts is not None)
        assert len(app.run_state.snapshots) == len(saxe_epochs(300))
        assert app.run_state.plane["kde_upper"] and len(app.run_state.plane["kde_upper"]) == len(saxe_epochs(300))
        assert app.check_action("export", ()) is False and app.check_action("cancel", ()) is False
        assert app.check_action("start", ()) is True  # a replay leaves s free for a run of one's own
        await wait_for(pilot, lambda: app.form_config is not None and app.form_config.train.epochs == 300)
        assert app.form_config.name == "fake-tanh"  # the form holds the replayed run's config: s runs it again
    after = {p: p.read_bytes() for p in (folder / "run-2").rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing locked into the run


@async_test
async def test_a_sweep_row_or_a_point_not_run_is_neither_replayed_nor_selected(tmp_path):
    folder = runs_folder(tmp_path, runs=0)
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_runs(pilot)
        await go_to(pilot, screen, "act-l2/")
        await pilot.press("space", "enter")
        assert isinstance(app.screen, RunsScreen) and screen.selected == {}
        assert any("is a sweep" in n for n in notices(app))
        not_run = next(e for e in screen.entries if e.status == "not run")
        await go_to(pilot, screen, not_run.name)
        await pilot.press("space", "enter")
        assert isinstance(app.screen, RunsScreen) and screen.selected == {}
        assert app.follower is None


# -- selection and overlay ----------------------------------------------------------------------------------


@async_test
async def test_up_to_four_runs_keep_their_colours_and_the_fifth_is_refused(tmp_path):
    folder = runs_folder(tmp_path, runs=6, sweep=False)
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_runs(pilot)
        for k in (1, 2, 3, 4):
            await go_to(pilot, screen, f"run-{k}")
            await pilot.press("space")
        slots = {Path(key).name: slot for key, slot in screen.selected.items()}
        assert slots == {"run-1": 0, "run-2": 1, "run-3": 2, "run-4": 3}
        await go_to(pilot, screen, "run-5")
        await pilot.press("space")  # the fifth
        assert len(screen.selected) == 4 and "run-5" not in {Path(k).name for k in screen.selected}
        assert sum("At most 4 runs" in n for n in notices(app)) == 1
        # unselect run-2: the others keep their colours; run-5 takes the free one
        await go_to(pilot, screen, "run-2")
        await pilot.press("space")
        await go_to(pilot, screen, "run-5")
        await pilot.press("space")
        slots = {Path(key).name: slot for key, slot in screen.selected.items()}
        assert slots == {"run-1": 0, "run-3": 2, "run-4": 3, "run-5": 1}
        screen.reload()  # the timer's re-read keeps the selection
        assert {Path(key).name: slot for key, slot in screen.selected.items()} == slots

        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, OverlayScreen))
        overlay = app.screen
        plot = overlay.query_one(OverlayPlot)
        assert plot.drawn == [("run-1", 6), ("run-5", 6), ("run-3", 6), ("run-4", 6)]  # by colour slot
        assert [r.colour for r in overlay.runs] == list(RUN_COLOURS)
        legend = overlay.query_one(OverlayLegend).render()
        assert [legend.plain.index(name) for name in ("run-1", "run-5", "run-3", "run-4")] == sorted(
            legend.plain.index(name) for name in ("run-1", "run-5", "run-3", "run-4"))
        spans = {legend.plain[s.start:s.end]: str(s.style) for s in legend.spans}
        assert "rgb(86,180,233)" in spans["run-5"]  # the legend says the colour run-5 is drawn in
        assert overlay.estimator == "kde_upper"
        await pilot.press("m")
        assert overlay.estimator == "binning" and "binning" in plot.border_title
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))


@async_test
async def test_overlay_needs_a_selection(tmp_path):
    folder = runs_folder(tmp_path, runs=1, sweep=False)
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_runs(pilot)
        await pilot.press("o")
        assert isinstance(app.screen, RunsScreen)
        assert any("Select runs with space" in n for n in notices(app))


# -- sensitivity ------------------------------------------------------------------------------------------


def sensitivity_doc(run_dir: Path) -> dict:
    def layer(name, verdict, drop):
        return {"layer": name, "ixt": {"verdict": verdict, "peak_epoch": 100, "peak_bits": 10.0, "end_bits": 10.0 - drop,
                                      "drop_bits": drop, "drop_fraction": drop / 10.0},
                "ity": {"verdict": "none", "peak_epoch": 300, "peak_bits": 0.9, "end_bits": 0.9, "drop_bits": 0.0, "drop_fraction": 0.0}}

    settings = []
    for value, drops in ((1e-3, (0.0, 2.5)), (1e-1, (0.1, 3.1))):
        settings.append({"estimator": "kde_upper", "parameter": "noise_variance", "value": value,
                         "layers": [layer("L4 tanh 4", "none" if drops[0] < 0.5 else "compression", drops[0]),
                                    layer("L5 tanh 3", "compression", drops[1])]})
    doc = {"run": str(run_dir), "snapshots": 31, "seeds": 1, "settings": settings}
    from ibtui.runs.sensitivity import sentences

    doc["sentences"] = sentences(doc)
    (run_dir / "sensitivity").mkdir()
    (run_dir / "sensitivity" / "sensitivity.json").write_text(json.dumps(doc))
    return doc


@async_test
async def test_the_sensitivity_table_of_a_run_that_has_one(tmp_path):
    from rich import box
    from textual.widgets import Static

    from ibtui.export.sensitivity_table import sensitivity_table

    folder = runs_folder(tmp_path, runs=2, sweep=False)
    doc = sensitivity_doc(folder / "run-1")
    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("t")  # nothing on screen yet
        assert not isinstance(app.screen, SensitivityScreen)
        assert any("No sensitivity table" in n for n in notices(app))
        screen = await open_runs(pilot)
        await go_to(pilot, screen, "run-2")
        await pilot.press("t")
        assert isinstance(app.screen, RunsScreen)
        assert any("run-2 has no sensitivity table" in n for n in notices(app))
        await go_to(pilot, screen, "run-1")
        await pilot.press("enter")  # replay it; t on the main screen shows its table
        await wait_for(pilot, lambda: app.run_state is not None and app.run_state.status == "finished")
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, SensitivityScreen))
        shown = app.screen.query_one("#sensitivity-table", Static).content
        same = sensitivity_table(doc, box=box.SIMPLE_HEAD, title_justify="left")
        assert rendered(shown, 118) == rendered(same, 118)
        text = rendered(shown, 118)
        assert "none 0%" in text and "compression 31%" in text and "noise_variance 0.1" in text
        sentences = str(app.screen.query_one("#sensitivity-sentences", Static).render())
        assert "L5 tanh 3 compresses under kde_upper at every sigma^2." in sentences
        assert "L4 tanh 4 compresses at no setting." in sentences
        # from the verdicts dialog too
        from ibtui.tui.screens.verdicts import VerdictScreen

        await pilot.press("escape")
        await wait_for(pilot, lambda: app.verdicts is not None and not isinstance(app.screen, SensitivityScreen))
        await pilot.press("v")
        await wait_for(pilot, lambda: isinstance(app.screen, VerdictScreen))
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, SensitivityScreen))


# -- snapshots ------------------------------------------------------------------------------------------------


def _snapshot_app(tmp_path: Path, monkeypatch) -> IbtuiApp:
    runs_folder(tmp_path, runs=3)
    monkeypatch.chdir(tmp_path)  # "Runs under runs" in the title, whatever the temporary folder
    return make_app(Path("runs"))


async def _select_two(pilot) -> None:
    screen = await open_runs(pilot)
    for name in ("run-1", "run-3"):
        await go_to(pilot, screen, name)
        await pilot.press("space")
    await go_to(pilot, screen, "run-2")
    await pilot.pause(0.2)


def test_snapshot_runs_screen(snap_compare, tmp_path, monkeypatch):
    assert snap_compare(_snapshot_app(tmp_path, monkeypatch), terminal_size=(120, 36), run_before=_select_two)


def test_snapshot_runs_screen_at_80x24(snap_compare, tmp_path, monkeypatch):
    assert snap_compare(_snapshot_app(tmp_path, monkeypatch), terminal_size=(80, 24), run_before=_select_two)


def test_snapshot_overlay_at_80x24(snap_compare, tmp_path, monkeypatch):
    async def overlay(pilot):
        await _select_two(pilot)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, OverlayScreen))
        await pilot.pause(0.2)

    assert snap_compare(_snapshot_app(tmp_path, monkeypatch), terminal_size=(80, 24), run_before=overlay)


@async_test
async def test_no_replay_while_a_run_trains(tmp_path):
    folder = runs_folder(tmp_path, runs=1, sweep=False)
    app = IbtuiApp(config=load_preset("tanh").with_overrides({"train.epochs": 400}), trainer_factory=FakeEngine(step_delay=0.05),
                   exporter=FakeExporter(), runs_root=tmp_path / "elsewhere", clock=FrozenClock())
    app._runs_root = folder
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.running)
        screen = await open_runs(pilot)
        await go_to(pilot, screen, "run-1")
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, RunsScreen))
        assert app.follower is None and app.running
        assert any("A run is training" in n for n in notices(app))
        await pilot.press("c")
        await wait_for(pilot, lambda: not app.running)
