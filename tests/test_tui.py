"""The TUI, driven with Textual's pilot: the form, a run's life (start, pause, cancel, export,
quit), presets, errors, snapshots of the main screens, and one run through the real engine."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

sys.path.insert(0, str(Path(__file__).parent))

from textual.widgets import Button, Input, Select  # noqa: E402
from tui_fakes import FakeEngine, FakeExporter, FrozenClock, rendered  # noqa: E402

from ibtui.runs.presets import load_preset  # noqa: E402
from ibtui.tui.app import IbtuiApp  # noqa: E402
from ibtui.tui.buffer import EventBuffer  # noqa: E402
from ibtui.tui.screens.confirm import ConfirmQuit  # noqa: E402
from ibtui.tui.screens.presets import PresetPicker, preset_summary  # noqa: E402
from ibtui.tui.widgets.info_plane import InfoPlanePlot  # noqa: E402

SIZE = (120, 36)
# wait_for's timeouts only guard against a hang (a failing test must end); nothing asserts on how
# long anything took. The real engine compiles its kernels on a first run: minutes on a busy box.
GUARD_S = 60.0
REAL_ENGINE_GUARD_S = 600.0


def async_test(function):
    """Run an async test body with asyncio.run (no pytest-asyncio needed); fixtures pass through."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return asyncio.run(function(*args, **kwargs))

    return wrapper


def make_app(tmp_path: Path, *, epochs: int = 40, engine: FakeEngine | None = None, **overrides) -> IbtuiApp:
    config = load_preset("tanh").with_overrides({"train.epochs": epochs, **overrides})
    return IbtuiApp(
        config=config,
        trainer_factory=engine or FakeEngine(),
        exporter=FakeExporter(),
        runs_root=tmp_path / "runs",
        clock=FrozenClock(),
    )


async def wait_for(pilot, condition, timeout: float = GUARD_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.05)


async def set_input(pilot, ident: str, value: str) -> None:
    pilot.app.query_one(f"#{ident}", Input).value = value
    await pilot.pause()


def start_button(app) -> Button:
    return app.query_one("#start", Button)


def form_error(app) -> str:
    return str(app.query_one("#form-error").render())


def summary_analysis(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["analysis"]


def run_finished(app) -> bool:
    return app.run_state is not None and not app.run_state.active


# -- the form --------------------------------------------------------------------------------------


@async_test
async def test_form_is_filled_from_the_config(tmp_path):
    app = make_app(tmp_path, epochs=123, **{"train.l2": 0.001, "train.seeds": 3})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        q = lambda ident: app.query_one(f"#{ident}", Input).value  # noqa: E731
        assert q("epochs") == "123"
        assert q("hidden") == "10,7,5,4,3"
        assert q("noise") == "0.001"
        assert q("estimators") == "kde_upper, binning"
        assert q("seeds") == "3"
        assert q("l2") == "0.001" and q("dropout") == "0"
        assert app.query_one("#activation", Select).value == "tanh"
        assert not start_button(app).disabled
        assert app.form_config is not None and app.form_config.train.epochs == 123


@async_test
async def test_form_edits_produce_the_config(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.query_one("#activation", Select).value = "relu"
        await set_input(pilot, "dropout", "0.2")
        await set_input(pilot, "epochs", "77")
        await set_input(pilot, "noise", "0.01")
        await set_input(pilot, "estimators", "kde_lower")
        await set_input(pilot, "lr", "1e-3")
        await set_input(pilot, "batch", "0")
        await set_input(pilot, "seed", "5")
        await set_input(pilot, "seeds", "2")
        await set_input(pilot, "hidden", "8,4")
        await pilot.pause()
        c = app.form_config
        assert c is not None, form_error(app)
        assert (c.model.activation, c.model.dropout, c.train.l2) == ("relu", 0.2, 0.0)
        await set_input(pilot, "l2", "1e-4")  # L2 and dropout together: neither is dropped
        c = app.form_config
        assert c is not None and (c.model.dropout, c.train.l2) == (0.2, 1e-4)
        assert (c.train.epochs, c.info.noise_variance, c.info.estimators) == (77, 0.01, ("kde_lower",))
        assert (c.train.lr, c.train.batch_size, c.train.seed, c.train.seeds) == (1e-3, 0, 5, 2)
        assert c.model.hidden == (8, 4)
        assert c.name == "tanh"  # the preset's other settings stay underneath


INVALID_INPUTS = [
    ("epochs", "0", "epochs: must be a whole number >= 1"),
    ("epochs", "ten", "epochs: must be a whole number >= 1"),
    ("noise", "-1", "noise σ²: must be a number > 0"),
    ("estimators", "kde_upper, kde", "estimators: must name estimators"),
    ("hidden", "10,,x", "hidden: must be widths"),
    ("lr", "0", "learn rate: must be a number > 0"),
    ("seeds", "0", "seed × n: must be a whole number >= 1"),
]


@async_test
async def test_invalid_input_disables_start_and_says_why(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for ident, value, message in INVALID_INPUTS:
            good = app.query_one(f"#{ident}", Input).value
            await set_input(pilot, ident, value)
            assert start_button(app).disabled, ident
            assert message in form_error(app)
            assert app.query_one(f"#{ident}", Input).has_class("-invalid")
            await pilot.press("s")  # the key starts nothing while the form is invalid, and says why
            await pilot.pause()
            assert app.run_state is None
            notice = list(app._notifications)[-1]
            assert notice.title == "Cannot start" and message in notice.message
            app.clear_notifications()
            await set_input(pilot, ident, good)
            assert not start_button(app).disabled and form_error(app) == ""
        # The dropout rate must be below 1; an L2 factor need not be.
        await set_input(pilot, "dropout", "1.5")
        assert start_button(app).disabled and "dropout must be a rate in [0, 1)" in form_error(app)
        await set_input(pilot, "dropout", "")  # empty is none
        await set_input(pilot, "l2", "1.5")
        assert not start_button(app).disabled
        assert (app.form_config.train.l2, app.form_config.model.dropout) == (1.5, 0.0)
        await set_input(pilot, "l2", "-1")
        assert start_button(app).disabled and "L2 must be a number >= 0" in form_error(app)


def key_burst(app, keys: list[str]) -> None:
    """Hand the app a burst of keys at once, as a terminal does under tmux send-keys or a fast
    typist on a slow link (pilot.press waits for each key to be handled before the next)."""
    from textual import events

    for key in keys:
        app._driver.send_message(events.Key(key, key if len(key) == 1 else None))


@async_test
async def test_a_burst_of_keys_is_applied_in_order(tmp_path):
    """End, six backspaces and "2000" at once: Textual runs Input's bound keys (backspace) only
    after they bubble back to the App, so the digits overtook them and the field read "" or "12"."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for ident, keys, expected in (
            ("epochs", ["end", *["backspace"] * 6, *"2000"], "2000"),
            ("estimators", ["end", *["backspace"] * 7, *"kde_lower"], "kde_upper, kde_lower"),
            ("hidden", ["home", "delete", "delete", *"12", "end", "left", "backspace", "9"], "12,7,5,493"),
        ):
            field = app.query_one(f"#{ident}", Input)
            field.focus()
            await pilot.pause()
            key_burst(app, keys)
            for _ in range(50):  # every key is handled within a few idle passes; wrong stays wrong
                await pilot.pause()
                if field.value == expected:
                    break
            assert field.value == expected, ident


ADVANCED_TYPED = {  # what is typed into the "more" fold, and the `ibtui run` options it means
    "momentum": ("0.9", {"momentum": 0.9}),
    "label-noise": ("0.25", {"label_noise": 0.25}),
    "snapshots": ("50", {"snapshots": 50}),
    "mi-samples": ("500", {"mi_samples": 500}),
    "l2": ("1e-4", {"l2": 1e-4}),
}


async def type_fast(pilot, app, ident: str, text: str) -> None:
    """Clear the field and type text as one burst of keys (see key_burst); wait until it is in."""
    field = app.query_one(f"#{ident}", Input)
    field.focus()
    await pilot.pause()
    key_burst(app, ["end", "ctrl+u", *text])
    for _ in range(50):
        await pilot.pause()
        if field.value == text:
            break
    assert field.value == text, ident


@async_test
async def test_the_more_fold_makes_the_config_the_cli_makes(tmp_path):
    """Model file, optimizer, momentum, L2 mode, label noise, MI set, snapshots, MI samples and
    the IDX folder, typed fast at 80x24: the config s would start is `ibtui run`'s for the same
    options (build_config), and a model file that is not there is one sentence under the form."""
    from ibtui.cli.common import build_config

    model_file = tmp_path / "net.py"
    model_file.write_text("def make_model(input_shape, n_classes):\n    raise NotImplementedError\n")
    engine = FakeEngine()
    app = make_app(tmp_path, engine=engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one("#advanced").collapsed = False
        await pilot.pause()
        await type_fast(pilot, app, "model", "nowhere/net.py:make_model")
        assert app.form_config is None and start_button(app).disabled
        missing = (Path.cwd() / "nowhere" / "net.py").resolve()
        assert form_error(app) == f"✗ the model file {missing} does not exist"
        await pilot.press("escape", "s")  # s from the plane: nothing starts, and the notice says why
        await pilot.pause()
        assert app.run_state is None
        notice = list(app._notifications)[-1]
        assert notice.title == "Cannot start" and f"the model file {missing} does not exist" in notice.message
        await type_fast(pilot, app, "model", f"{model_file}:make_model")
        for select, value in (("optimizer", "sgd"), ("l2-mode", "weight_decay"), ("measure-on", "test")):
            app.query_one(f"#{select}", Select).value = value
            await pilot.pause()
        options = {"model": f"{model_file}:make_model", "optimizer": "sgd", "l2_mode": "weight_decay", "measure_on": "test"}
        for ident, (text, option) in ADVANCED_TYPED.items():
            await type_fast(pilot, app, ident, text)
            options.update(option)
        await pilot.pause()
        expected = build_config("tanh", epochs=40, **options)
        assert app.form_config == expected, form_error(app)
        assert expected.info.schedule == "log" and expected.model.factory == f"{model_file.resolve()}:make_model"
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: engine.configs)
        assert engine.configs[0] == expected  # the config the engine was given
        await wait_for(pilot, lambda: run_finished(app))
        # The IDX folder: a row of its own, shown for mnist and fashion-mnist only.
        assert not app.query_one("#data-dir-row").display
        app.query_one("#dataset", Select).value = "mnist"
        await pilot.pause()
        assert app.query_one("#data-dir-row").display
        await type_fast(pilot, app, "data-dir", str(tmp_path / "idx"))
        assert app.form_config == build_config("tanh", epochs=40, dataset="mnist", data_dir=tmp_path / "idx", **options)
        await type_fast(pilot, app, "momentum", "x")  # a field's own check: red, and one line why
        assert app.query_one("#momentum", Input).has_class("-invalid")
        assert "momentum must be a number" in form_error(app)
        await type_fast(pilot, app, "momentum", "0.9")
        app.query_one("#optimizer", Select).value = "adam"  # a combination: config.validate's sentence
        await pilot.pause()
        assert "train.momentum applies to SGD" in form_error(app) and start_button(app).disabled


@async_test
async def test_a_burst_across_fields_with_tab_lands_each_value_in_its_field(tmp_path):
    """Several fields typed in a row as one burst (tmux send-keys): the keys after a Tab go to the
    next field, not to the one being left (Tab was a screen binding, run after the keys behind it)."""
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.query_one("#l2", Input).focus()
        await pilot.pause()
        key_burst(app, ["end", "ctrl+u", *"1e-4", "tab", "end", "ctrl+u", "0", "tab", "end", *["backspace"] * 6, *"2000",
                        "tab", "end", "ctrl+u", *"0.01", "shift+tab", "end", "backspace", "5"])
        expected = {"l2": "1e-4", "dropout": "0", "epochs": "2005", "noise": "0.01"}
        values = lambda: {ident: app.query_one(f"#{ident}", Input).value for ident in expected}  # noqa: E731
        # The fields take the keys first; the form's config follows on the form's Changed message.
        landed = lambda: app.form_config is not None and (app.form_config.train.epochs, app.form_config.train.l2) == (2005, 1e-4)  # noqa: E731
        for _ in range(200):
            await pilot.pause()
            if values() == expected and landed():
                break
        assert values() == expected
        assert landed(), app.form_config
        key_burst(app, ["escape", "s"])  # esc leaves the field before the s comes: s starts the run
        for _ in range(50):
            await pilot.pause()
            if app.run_state is not None:
                break
        assert app.run_state is not None, (app.focused, values(), [n.message for n in app._notifications])
        assert values() == expected


@async_test
async def test_config_error_from_with_overrides_is_shown(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.query_one("#dataset", Select).value = "csv"  # the csv dataset needs a file
        await pilot.pause()
        await pilot.pause()
        assert start_button(app).disabled
        assert "csv dataset needs data.csv" in form_error(app)
        app.query_one("#dataset", Select).value = "tishby"
        await pilot.pause()
        await pilot.pause()
        assert not start_button(app).disabled
        assert form_error(app) == ""


@async_test
async def test_csv_fields_follow_the_dataset_and_reach_the_config(tmp_path):
    app = make_app(tmp_path, **{"train.l2": 0.001, "model.dropout": 0.1})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        shown = lambda: tuple(app.query_one(f"#{row}-row").display for row in ("csv", "label", "features"))  # noqa: E731
        assert shown() == (False, False, False)  # tishby reads no file
        assert (app.form_config.train.l2, app.form_config.model.dropout) == (0.001, 0.1)  # both kept
        app.query_one("#dataset", Select).value = "csv"
        await pilot.pause()
        assert shown() == (True, True, True)
        await set_input(pilot, "csv", "data/iris.csv")
        assert start_button(app).disabled  # no label column yet
        await set_input(pilot, "label", "species")
        await set_input(pilot, "features", "sepal_length, petal_width")
        d = app.form_config.data
        assert (d.name, d.csv, d.label, d.features) == ("csv", "data/iris.csv", "species", ("sepal_length", "petal_width"))
        await set_input(pilot, "features", "")
        assert app.form_config.data.features is None  # every numeric column
        app.query_one("#dataset", Select).value = "pokemon"
        await pilot.pause()
        await pilot.pause()
        assert shown() == (True, False, False)
        d = app.form_config.data
        assert (d.name, d.csv, d.label, d.features) == ("pokemon", "data/iris.csv", None, None)
        await set_input(pilot, "csv", "")
        assert app.form_config.data.csv is None  # the synthetic stand-in
        app.query_one("#dataset", Select).value = "tishby"
        await pilot.pause()
        await pilot.pause()
        assert shown() == (False, False, False) and app.form_config.data.csv is None


@async_test
async def test_preset_picker_fills_every_field(tmp_path):
    app = make_app(tmp_path, epochs=5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, PresetPicker)
        options = app.screen.query_one("#preset-list")
        index = [o.id for o in options.options].index("pokemon-relu-l2")
        options.highlighted = index
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        expected = load_preset("pokemon-relu-l2")
        assert app.base_config == expected
        assert app.query_one("#dataset", Select).value == "pokemon"
        assert app.query_one("#activation", Select).value == expected.model.activation
        assert app.query_one("#epochs", Input).value == str(expected.train.epochs)
        assert app.query_one("#hidden", Input).value == ",".join(map(str, expected.model.hidden))
        assert float(app.query_one("#l2", Input).value) == expected.train.l2
        assert app.query_one("#csv-row").display and not app.query_one("#label-row").display
        assert app.form_config == expected


def test_the_picker_names_a_presets_model_file_not_the_unused_mlp_widths():
    cnn = preset_summary("digits-cnn").plain
    assert "digits · model digits_cnn.py:make_model · 300 epochs" in cnn
    assert "10-7-5-4-3" not in cnn and "tanh" not in cnn.split("\n")[0]
    assert "tishby · 10-7-5-4-3 tanh · 10,000 epochs" in preset_summary("tanh").plain


@async_test
async def test_preset_select_in_the_form_and_command_palette(tmp_path):
    app = make_app(tmp_path, epochs=5)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.query_one("#preset", Select).value = "relu"
        await pilot.pause()
        await pilot.pause()
        assert app.query_one("#activation", Select).value == "relu"
        assert app.form_config == load_preset("relu")
        # The palette lists the presets as commands.
        from ibtui.tui.commands import PresetCommands

        provider = PresetCommands(app.screen)
        titles = [title for title, _, _ in provider._commands()]
        assert "preset: tishby" in titles
        app.load_preset("tishby")
        await pilot.pause()
        assert app.query_one("#epochs", Input).value == str(load_preset("tishby").train.epochs)


# -- a run's life ----------------------------------------------------------------------------------


@async_test
async def test_start_runs_to_the_end_and_exports(tmp_path):
    engine = FakeEngine()
    app = make_app(tmp_path, epochs=40, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app) and app._exporter.calls)
        await pilot.pause(0.3)
        run = app.run_state
        assert run.status == "finished" and run.epoch == 40
        assert [s.epoch for s in run.snapshots][:3] == [0, 1, 2] and run.snapshots[-1].epoch == 40
        assert engine.configs[0] == app.form_config
        run_dir = run.run_dir
        assert run_dir.parent == tmp_path / "runs"
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "finished"
        assert len((run_dir / "snapshots.jsonl").read_text().splitlines()) == len(run.snapshots)
        assert app._exporter.calls == [run_dir]
        assert any("PNGs written" in (n.title or "") for n in app._notifications)
        assert not start_button(app).disabled  # ready for the next run
        assert app.query_one("#epochs", Input).disabled is False


@async_test
async def test_pause_really_pauses_and_resumes(tmp_path):
    engine = FakeEngine(step_delay=0.01)
    app = make_app(tmp_path, epochs=200, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: engine.trainers and app.run_state.epoch > 2)
        await pilot.press("space")
        trainer = engine.trainers[0]
        await wait_for(pilot, trainer.saw_pause.is_set)  # the engine reached its pause point
        assert app.run_state.status == "paused"
        assert app.job.control.paused
        steps = trainer.steps
        await wait_for(pilot, lambda: app.run_state.epoch == trainer.last_epoch)  # the screen caught up
        for _ in range(20):  # UI passes while paused: the engine takes no step, the screen stays put
            await pilot.pause()
        assert trainer.steps == steps and app.run_state.epoch == trainer.last_epoch
        await pilot.press("space")
        assert not app.job.control.paused
        await wait_for(pilot, lambda: trainer.steps > steps and app.run_state.epoch > trainer.last_epoch - 5)
        await pilot.press("c")
        await wait_for(pilot, lambda: run_finished(app))


@async_test
async def test_cancel_keeps_the_partial_run_and_exports_it(tmp_path):
    engine = FakeEngine(step_delay=0.01)
    app = make_app(tmp_path, epochs=500, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state is not None and app.run_state.epoch >= 5)
        await pilot.press("c")
        await wait_for(pilot, lambda: run_finished(app) and app._exporter.calls)
        run = app.run_state
        assert run.status == "interrupted" and 5 <= run.epoch < 500
        assert engine.trainers[0].stopped.is_set()
        summary = json.loads((run.run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted"
        assert (run.run_dir / "info_plane.png").exists()
        assert any("ibtui resume" in n.message for n in app._notifications)
        # A cancelled run gets its verdicts too (on what was measured).
        await wait_for(pilot, lambda: app.verdicts is not None)
        assert app.verdicts == summary_analysis(run.run_dir)
        assert any(n.title == "Compression verdicts" for n in app._notifications)


@async_test
async def test_export_now_during_a_run(tmp_path):
    engine = FakeEngine(step_delay=0.01)
    app = make_app(tmp_path, epochs=500, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")  # nothing to export yet: a warning, no call
        await pilot.pause()
        assert app._exporter.calls == []
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state.snapshots)
        await pilot.press("e")
        await wait_for(pilot, lambda: app._exporter.calls)
        assert app._exporter.calls == [app.run_state.run_dir]
        assert app.run_state.active  # exporting does not stop training
        await pilot.press("c")
        await wait_for(pilot, lambda: run_finished(app))


@async_test
async def test_quit_during_a_run_asks_and_stops_the_worker(tmp_path):
    engine = FakeEngine(step_delay=0.01)
    app = make_app(tmp_path, epochs=100_000, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state.epoch > 2)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmQuit)
        await pilot.press("n")  # no: keep training
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmQuit) and app.run_state.active
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        trainer = engine.trainers[0]
        # The app leaves when the engine has stopped (it saw the stop at a step), not after a timer.
        await wait_for(pilot, lambda: not app.is_running)
        assert trainer.stopped.is_set() and not trainer.finished.is_set()
    worker_threads = [w for w in app.workers if w.group == "training" and w.is_running]
    assert worker_threads == []
    summary = json.loads((app.run_state.run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"


@async_test
async def test_sigterm_and_sighup_stop_the_run_as_a_quit_does_and_set_the_exit_code(tmp_path):
    """A scheduler's SIGTERM or a closed SSH session's SIGHUP: the run stops cleanly (interrupted,
    what was measured kept) and the app leaves with 128 + the signal number."""
    import signal

    for signum in (signal.SIGTERM, signal.SIGHUP):
        engine = FakeEngine(step_delay=0.01)
        app = make_app(tmp_path / signum.name, epochs=100_000, engine=engine)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("s")
            await wait_for(pilot, lambda: app.run_state.epoch > 2)
            app.stop_on_signal(signum)  # what the loop's signal handler calls
            await wait_for(pilot, lambda: not app.is_running)
            assert engine.trainers[0].stopped.is_set() and not engine.trainers[0].finished.is_set()
        assert app.return_code == 128 + signum
        summary = json.loads((app.run_state.run_dir / "summary.json").read_text())
        assert summary["status"] == "interrupted"


@async_test
async def test_quit_when_idle_needs_no_confirmation(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


@async_test
async def test_failed_run_and_refused_run_are_notified_and_the_app_stays_usable(tmp_path):
    engine = FakeEngine(fail_at=3)
    app = make_app(tmp_path, epochs=50, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        await pilot.pause()
        assert app.run_state.status == "failed"
        assert any("loss became [nan]" in n.message and n.severity == "error" for n in app._notifications)
        # prepare_run refusing (a CSV that cannot be read) is a notification too.
        engine.fail_at = None
        engine.prepare_error = "cannot read /nope.csv: no such file"
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app) and app.run_state.reason and "nope" in app.run_state.reason)
        assert any("nope.csv" in n.message for n in app._notifications)
        # ... and a third run works.
        engine.prepare_error = None
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        assert app.run_state.status == "finished"


@async_test
async def test_cuda_asked_for_where_there_is_none(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    config = load_preset("tanh").with_overrides({"train.epochs": 2, "train.device": "cuda"})
    app = IbtuiApp(config=config, runs_root=tmp_path / "runs", exporter=FakeExporter(), clock=FrozenClock())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        assert any("CUDA" in n.message for n in app._notifications)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@async_test
async def test_estimator_switch_and_seed_means(tmp_path):
    app = make_app(tmp_path, epochs=20, **{"train.seeds": 3})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        await pilot.pause(0.3)
        plane = app.query_one(InfoPlanePlot)
        assert app.estimator == "kde_upper"
        assert "mean of 3 seeds" in plane.border_title
        await pilot.press("m")
        await pilot.pause()
        assert app.estimator == "binning"
        assert "binning" in plane.border_title
        await pilot.press("m")
        assert app.estimator == "kde_upper"


@async_test
async def test_curves_show_train_and_test_with_round_ticks(tmp_path):
    from ibtui.tui.widgets.curves import TEST_MARKER, TRAIN_MARKER, CurvesPlot

    app = make_app(tmp_path, epochs=60)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        drawn: dict[str, list[str]] = {"loss": [], "accuracy": []}
        for kind in drawn:
            plot = app.query_one(f"#{kind}", CurvesPlot)
            original = plot.plt.plot
            plot.plt.plot = lambda *a, _kind=kind, _original=original, **k: (drawn[_kind].append(k["marker"]), _original(*a, **k))[1]
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        await pilot.pause(0.3)
        for kind in drawn:
            plot = app.query_one(f"#{kind}", CurvesPlot)
            # Every redraw plots test first, then train on top, each with its own marker.
            assert drawn[kind] and drawn[kind][-2:] == [TEST_MARKER, TRAIN_MARKER]
            assert all(pair == (TEST_MARKER, TRAIN_MARKER) for pair in zip(drawn[kind][::2], drawn[kind][1::2]))
            text = str(plot.render())
            assert TRAIN_MARKER in text and TEST_MARKER in text  # both series visible
            assert "train" in plot.border_subtitle and "test" in plot.border_subtitle
            labels = {line.split("┤")[0].strip() for line in text.splitlines() if "┤" in line}
            assert labels == {"0.0", "0.5", "1.0"}, labels  # round ticks (the loss peaks at 0.85 here)


@async_test
async def test_verdicts_when_a_run_ends(tmp_path):
    from ibtui.tui.screens.verdicts import VerdictScreen

    app = make_app(tmp_path, epochs=120, **{"train.seeds": 3})
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("v")  # nothing yet: a warning, no screen
        await pilot.pause()
        assert not isinstance(app.screen, VerdictScreen)
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app) and app.verdicts is not None)
        analysis = summary_analysis(app.run_state.run_dir)
        assert app.verdicts == analysis  # read from summary.json, as RunStore wrote it
        kde = analysis["estimators"]["kde_upper"]
        verdicts = [entry["ixt"]["verdict"] for entry in kde]
        assert verdicts.count("compression") >= 1 and "none" in verdicts  # the fake compresses deep layers
        notice = next(n for n in app._notifications if n.title == "Compression verdicts")
        hidden = [entry["ixt"]["verdict"] for entry in kde if not entry["layer"].startswith("out")]
        assert len(hidden) == 5  # the softmax output is not counted among the layers that compress
        assert f"kde_upper: {hidden.count('compression')} of 5 hidden layers compress" in notice.message
        assert "press v" in notice.message.lower()
        await pilot.press("v")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, VerdictScreen)
        title = rendered(screen.query_one("#verdict-title").content)
        assert "kde_upper" in title and "3 seeds" in title and "finished at epoch 120" in title
        table = rendered(screen.query_one("#verdict-table").content)
        assert "drop bits ± sd" in table
        for entry in kde:
            c = entry["ixt"]
            row = next(line for line in table.splitlines() if line.startswith(entry["layer"] + " "))
            assert c["verdict"] in row
            assert f"{c['drop_bits']:.3f} ± {c['drop_std']:.3f}" in row
            assert f"{100 * c['drop_fraction']:.1f}" in row and f"{c['peak_epoch']:,}" in row
        # The table fits the 80-column screen: its widest line is inside the dialog.
        dialog = screen.query_one("#dialog")
        assert max(len(line.rstrip()) for line in table.splitlines()) <= dialog.content_region.width
        assert dialog.region.bottom <= 24
        # m switches the estimator here as on the main screen; esc closes.
        await pilot.press("m")
        await pilot.pause()
        assert app.estimator == "binning" and "binning" in rendered(screen.query_one("#verdict-title").content)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, VerdictScreen)


def test_verdict_line_counts_hidden_layers_only():
    from ibtui.tui.screens.verdicts import verdict_counts_line

    entry = lambda layer, verdict: {"layer": layer, "ixt": {"verdict": verdict}}  # noqa: E731
    analysis = {"estimators": {"kde_upper": [
        entry("L1 tanh 10", "none"), entry("L2 tanh 7", "compression"), entry("L3 tanh 5", "inconclusive"),
        entry("out softmax 2", "compression"),
    ]}}
    assert verdict_counts_line(analysis, "kde_upper") == "1 of 3 hidden layers compress, 1 none, 1 inconclusive"


def test_verdicts_are_computed_when_summary_has_none(tmp_path):
    from ibtui.tui.worker import read_verdicts

    engine = FakeEngine()
    config = load_preset("tanh").with_overrides({"train.epochs": 30})
    from ibtui.runs.runner import execute

    trainer, store = engine(config, tmp_path / "run", "r1")
    execute(trainer, store, [], None)
    summary_path = tmp_path / "run" / "summary.json"
    summary = json.loads(summary_path.read_text())
    stored = summary.pop("analysis")
    summary_path.write_text(json.dumps(summary))
    assert read_verdicts(tmp_path / "run") == json.loads(json.dumps(stored))


def test_event_buffer_keeps_only_the_latest_progress():
    from ibtui.engine.events import Progress, RunFinished

    buffer = EventBuffer("r1")
    for epoch in range(1, 6):
        buffer.push(Progress("r1", epoch, 10, 0.5, 0.0))
    buffer.push(RunFinished("r1", "finished", 10, 1.0))
    drained = buffer.drain()
    assert drained.progress.epoch == 5
    assert [type(e).__name__ for e in drained.events] == ["RunFinished"]
    assert not buffer.drain()


@async_test
async def test_stale_messages_from_an_old_run_or_after_shutdown_are_dropped(tmp_path):
    from ibtui.tui.messages import RunEnded

    app = make_app(tmp_path, epochs=20)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        status = app.run_state.status
        app.post_message(RunEnded("not-this-run", tmp_path, "failed", 1, "old news"))
        await pilot.pause()
        assert app.run_state.status == status
        assert not any("old news" in n.message for n in app._notifications)
    # Textual stops the app running, then removes the widgets, then stops its message loop: a
    # worker's RunEnded or the polling timer's tick in between once raised NoMatches at teardown.
    assert not app.is_running and not app.query("SettingsForm")
    app._run_ended(RunEnded(app.run_state.run_id, tmp_path, "finished", 20, None))
    app.drain_events()


# -- snapshots -------------------------------------------------------------------------------------


def _snapshot_app(tmp_path: Path) -> IbtuiApp:
    app = make_app(tmp_path, epochs=300)
    app._runs_root = Path("runs")  # the run directory shown in the status line must not vary
    app._next_run_dir = lambda config: Path("runs/tanh-snapshot")  # type: ignore[method-assign]
    return app


async def _run_to_end_and_settle(pilot):
    """Start a run and wait until everything its end produces has landed (the run's end, the
    figures, the verdicts and their three notifications), then clear the notifications: a toast
    posted after the clear would otherwise cover the snapshot, depending on which came first."""
    await pilot.press("s")
    ends = {"Run finished", "PNGs written", "Compression verdicts"}
    await wait_for(pilot, lambda: run_finished(pilot.app) and pilot.app._exporter.calls and pilot.app.verdicts is not None
                   and ends <= {n.title for n in pilot.app._notifications})
    pilot.app.clear_notifications()
    await pilot.pause(0.3)


def test_snapshot_settings(snap_compare, tmp_path):
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=SIZE)


def test_snapshot_finished_run(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert snap_compare(_snapshot_app(tmp_path), terminal_size=SIZE, run_before=_run_to_end_and_settle)


def test_snapshot_finished_run_at_80x24(snap_compare, tmp_path, monkeypatch):
    """80x24 is a first-class size: the header, the plane's title and full layer key, and loss and
    accuracy plots with room for their points; the form folds away while a run trains (f)."""
    monkeypatch.chdir(tmp_path)

    assert snap_compare(_snapshot_app(tmp_path), terminal_size=(80, 24), run_before=_run_to_end_and_settle)


def test_form_folds_away_at_80_columns_and_f_brings_it_back(tmp_path):
    async def body():
        app = make_app(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            form = app.query_one("#settings")
            estimators = app.query_one("#estimators", Input)
            assert form.display and estimators.content_region.width >= len("kde_upper, binning")
            await pilot.press("s")
            await wait_for(pilot, lambda: run_finished(app))
            assert not form.display  # the plots took the room
            plane = app.query_one(InfoPlanePlot)
            assert plane.region.width == 80 and app.query_one("Header").display
            await pilot.press("f")
            await pilot.pause()
            assert form.display

    asyncio.run(body())


def test_snapshot_small_terminal_with_invalid_input(snap_compare, tmp_path):
    async def break_form(pilot):
        pilot.app.query_one("#epochs", Input).value = "0"
        await pilot.pause()

    assert snap_compare(_snapshot_app(tmp_path), terminal_size=(80, 24), run_before=break_form)


def test_snapshot_verdicts_at_80x24(snap_compare, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    async def run_and_open_verdicts(pilot):
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(pilot.app) and pilot.app.verdicts is not None and pilot.app._exporter.calls)
        pilot.app.clear_notifications()
        await pilot.press("v")
        await pilot.pause(0.3)

    assert snap_compare(_snapshot_app(tmp_path), terminal_size=(80, 24), run_before=run_and_open_verdicts)


def test_snapshot_help(snap_compare, tmp_path):
    assert snap_compare(_snapshot_app(tmp_path), terminal_size=SIZE, press=["question_mark"])


# -- the real engine -------------------------------------------------------------------------------


@async_test
async def test_real_engine_run_through_the_app(tmp_path):
    config = load_preset("tanh").with_overrides(
        {"train.epochs": 5, "info.estimators": ("binning",), "model.hidden": (4, 3), "train.device": "cpu"}
    )
    out = tmp_path / "run"
    app = IbtuiApp(config=config, out=out)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app), timeout=REAL_ENGINE_GUARD_S)
        await wait_for(pilot, lambda: any("PNGs written" in (n.title or "") for n in app._notifications), timeout=REAL_ENGINE_GUARD_S)
        run = app.run_state
        assert run.status == "finished", run.reason
        assert run.run_dir == out
        assert [s.epoch for s in run.snapshots] == [0, 1, 2, 3, 4, 5]
        assert run.started.layer_names == ("L1 tanh 4", "L2 tanh 3", "out softmax 2")
        plane = app.query_one(InfoPlanePlot)
        assert "epoch 5" in plane.border_title
        for snapshot in run.snapshots:
            for ixt, ity in snapshot.mean_mi("binning"):
                assert 0 <= ixt <= run.started.max_ixt + 1e-9 and 0 <= ity <= run.started.h_y + 1e-9
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert (out / "config.toml").exists()
    assert len((out / "snapshots.jsonl").read_text().splitlines()) == 6
    assert (out / "info_plane.png").stat().st_size > 1000
    assert (out / "loss.png").stat().st_size > 1000


@async_test
async def test_real_engine_pauses_and_quits_from_its_own_process(tmp_path):
    """The real engine trains in a process of its own: pause must hold it there, and quitting
    must stop it and leave an interrupted run with a checkpoint and no engine process behind."""
    import multiprocessing

    config = load_preset("tanh").with_overrides(
        {"train.epochs": 1_000_000, "info.estimators": ("binning",), "model.hidden": (4, 3), "train.device": "cpu"}
    )
    out = tmp_path / "run"
    app = IbtuiApp(config=config, out=out, exporter=FakeExporter())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await wait_for(pilot, lambda: app.run_state.epoch > 20, timeout=REAL_ENGINE_GUARD_S)
        await pilot.press("space")
        # Events already on their way may still arrive: wait until the epoch holds still...
        seen = -1
        while app.run_state.epoch != seen:
            seen = app.run_state.epoch
            for _ in range(10):
                await pilot.pause(0.05)
        for _ in range(10):  # ... then it must stay there while paused
            await pilot.pause(0.05)
        assert app.run_state.epoch == seen and app.run_state.status == "paused"
        await pilot.press("space")
        await wait_for(pilot, lambda: app.run_state.epoch > seen, timeout=REAL_ENGINE_GUARD_S)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.is_running, timeout=REAL_ENGINE_GUARD_S)
    assert not any(w.is_running for w in app.workers if w.group == "training")
    assert [p for p in multiprocessing.active_children() if p.name == "ibtui-engine"] == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert (out / "checkpoint.pt").exists()


# -- what the plots draw (thinning) ----------------------------------------------------------------


def test_thinning_bounds_the_points_and_always_keeps_the_latest():
    from ibtui.tui.runstate import PlaneSeries, Thinning, linear_bins, log_bins

    few = Thinning(10, linear_bins(100, 9))
    for epoch in range(7):
        few.add(epoch)
    assert few.indices() == list(range(7))  # few points: all of them, as before

    series = PlaneSeries(total_epochs=100_000, limit=50)
    kept_before: set[int] = set()
    for epoch in range(0, 100_001, 7):  # 14,286 snapshots
        series.add(epoch, [(epoch * 1e-5, 0.5), (0.1, epoch * 1e-5)])
        index = series.thinning.indices()
        assert len(index) <= 50 and index[-1] == len(series) - 1  # bounded, ends at the latest
        if len(series) % 997 == 0:
            older = set(index[:-1])
            assert kept_before <= older | {len(series) - 1}  # kept points stay kept: no flicker
            kept_before = older
    epochs, xs, ys = series.older()
    assert len(epochs) <= 49 and epochs == sorted(epochs) and epochs[0] == 0
    assert len(xs) == len(ys) == 2 and len(xs[0]) == len(epochs)
    assert series.latest() == [(series.epochs[-1] * 1e-5, 0.5), (0.1, series.epochs[-1] * 1e-5)]
    # Even in log-epoch: the early decades are not crowded out by the late ones.
    assert sum(e < 1000 for e in epochs) >= 10 and sum(e >= 10_000 for e in epochs) >= 8  # a fifth of log1p(1e5)
    assert 0 == log_bins(100_000, 49)(0) <= log_bins(100_000, 49)(100_000) <= 48


def test_curves_keep_running_maxima_and_draw_a_bounded_thinned_series():
    from types import SimpleNamespace

    from ibtui.tui.runstate import Curves

    curves = Curves(total_epochs=10_000, limit=100)
    for epoch in range(10_001):
        loss = 2.0 if epoch == 5 else 1.0 / (1 + epoch)
        curves.add(SimpleNamespace(epoch=epoch, train_loss=[loss], test_loss=[float("nan")], train_acc=[0.5], test_acc=[float("nan")]))
    assert curves.max_loss == 2.0 and not curves.has_test_loss and not curves.has_test_acc
    drawn = curves.drawn("epochs")
    assert len(drawn) <= 100 and drawn[-1] == 10_000 and drawn == sorted(drawn)
    assert len(curves.drawn("train_loss")) == len(drawn) and curves.drawn("train_loss")[-1] == curves.train_loss[-1]


def test_status_says_how_many_estimates_are_still_to_come_once_training_is_done(tmp_path):
    """Estimates run behind training: at the last epoch the line says what is left to estimate
    instead of a time left of 00:00, and a late snapshot does not bring back an older loss."""
    from ibtui.engine.events import Progress, RunStarted, Snapshot
    from ibtui.tui.runstate import RunClock, RunState
    from ibtui.tui.widgets.status import status_line

    engine = FakeEngine()
    config = load_preset("tanh").with_overrides({"train.epochs": 40})
    trainer, _ = engine(config, tmp_path / "run", "r1")
    events = list(trainer.run())
    started = next(e for e in events if isinstance(e, RunStarted))
    snapshots = [e for e in events if isinstance(e, Snapshot)]
    state = RunState(run_id=started.run_id, run_dir=tmp_path / "run", total_epochs=40)
    state.apply(started)
    state.apply(snapshots[0])
    state.apply(Progress(started.run_id, 40, 40, 0.125, 3.0))
    state.apply(snapshots[1])
    waiting = len(started.schedule) - 2
    line = status_line(state, RunClock(FrozenClock())).plain
    assert f"estimating {waiting} snapshots" in line and "left" not in line
    assert state.train_loss == 0.125


def test_status_says_compiling_until_the_first_epoch_then_wall_time_and_a_meaningful_eta(tmp_path):
    """A first run compiles its kernels for 20-45 s before epoch 1: the line says so (not an ETA
    of an hour computed from that silence); elapsed is wall time, the speed counts training only."""
    from ibtui.engine.events import Progress, RunStarted
    from ibtui.tui.runstate import RunClock, RunState
    from ibtui.engine.kernel_cache import waiting_message
    from ibtui.tui.widgets.status import status_line

    COMPILING = waiting_message(short=True)  # or 'loading the compiled kernels' once cached

    config = load_preset("tanh").with_overrides({"train.epochs": 1000})
    trainer, _ = FakeEngine()(config, tmp_path / "run", "r1")
    started = next(iter(trainer.run()))
    assert isinstance(started, RunStarted) and started.device == "cpu"
    clock = FrozenClock()
    run_clock = RunClock(clock)
    state = RunState(run_id="r1", run_dir=tmp_path / "run", total_epochs=1000)
    line = lambda: status_line(state, run_clock).plain  # noqa: E731
    assert "preparing the run" in line()
    state.apply(started)
    run_clock.start(0)
    clock.now += 30  # compiling
    assert COMPILING in line() and "left" not in line() and "epochs/s" not in line()
    state.apply(Progress("r1", 10, 1000, 0.6, 30.0))
    run_clock.progressed(10)
    clock.now += 1  # one second of training: too little to say how long is left
    state.apply(Progress("r1", 30, 1000, 0.6, 31.0))
    assert COMPILING not in line() and "left" not in line() and "elapsed 00:31" in line()
    clock.now += 4  # 5 s of training from epoch 10 to 110: 20 epochs/s, 890 epochs left
    state.apply(Progress("r1", 110, 1000, 0.6, 35.0))
    assert "elapsed 00:35" in line() and "20.0 epochs/s" in line() and "left 00:44" in line()
    run_clock.pause()
    clock.now += 100  # paused: elapsed is wall time, the speed does not fall
    assert "elapsed 02:15" in line() and "20.0 epochs/s" in line()
    run_clock.resume()
    assert "20.0 epochs/s" in line()


def test_status_lines_fit_an_80_column_terminal_by_dropping_the_least_needed_facts(tmp_path):
    """At 80 columns the status line has 62 cells and the location line 78: the speed, then the
    loss, then the elapsed time give way (and the dataset's description), never the epoch or the
    time left, and no line ends in an ellipsis."""
    from ibtui.engine.events import Progress
    from ibtui.tui.runstate import RunClock, RunState
    from ibtui.engine.kernel_cache import waiting_message
    from ibtui.tui.widgets.status import location_line, status_line

    COMPILING = waiting_message(short=True)

    config = load_preset("tanh").with_overrides({"train.epochs": 100_000})
    trainer, _ = FakeEngine()(config, tmp_path / "run", "r1")
    clock = FrozenClock()
    run_clock = RunClock(clock)
    state = RunState(run_id="r1", run_dir=tmp_path / "run", total_epochs=100_000)
    assert len(status_line(None, None, 62).plain) <= 62
    state.apply(next(iter(trainer.run())))
    run_clock.start(0)
    clock.now += 30
    assert status_line(state, run_clock, 62).plain.endswith(COMPILING)
    state.apply(Progress("r1", 10, 100_000, 0.6931, 30.0))
    run_clock.progressed(10)
    clock.now += 5
    state.apply(Progress("r1", 12_010, 100_000, 0.6931, 35.0))
    wide = status_line(state, run_clock).plain
    assert "epochs/s" in wide and "loss 0.6931" in wide and "elapsed 00:35" in wide and len(wide) > 62
    narrow = status_line(state, run_clock, 62).plain
    assert len(narrow) <= 62 and "epoch 12,010/100,000" in narrow and "left 00:37" in narrow
    assert "epochs/s" not in narrow
    where = location_line(state, 78).plain
    assert len(where) <= 78 and where.endswith("/run") and "…" in where  # pytest's long tmp path
    assert state.started.dataset in location_line(state).plain


def _luminance(colour) -> float:
    r, g, b = colour
    return 0.299 * r + 0.587 * g + 0.114 * b


@async_test
async def test_no_color_keeps_every_epoch_and_the_latest_point_readable(tmp_path, monkeypatch):
    """Under NO_COLOR Textual greys every colour by luminance: the early epochs and the colour
    bar's first cell must stay well above the dark background, and the latest point must stand
    out by more than a grey (it is drawn inverted)."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tmp_path, epochs=60)
    assert app.no_color
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        plane = app.query_one(InfoPlanePlot)
        calls: list[dict] = []
        original = plane.plt.scatter
        plane.plt.scatter = lambda *a, **k: (calls.append(k), original(*a, **k))[1]
        await pilot.press("s")
        await wait_for(pilot, lambda: run_finished(app))
        await pilot.pause(0.3)
        older = [call["color"] for call in calls if "bold" not in call.get("style", "")]
        latest = [call for call in calls if "bold" in call.get("style", "")]
        assert older and latest
        assert min(_luminance(c) for c in older) >= 100  # was 30 (viridis's dark violet)
        assert all("inverted" in call.get("style", "") for call in latest)
        legend = app.query_one("#legend")
        cells = [span.style for span in legend.content.spans if "rgb(" in str(span.style)]
        first = tuple(int(v) for v in str(cells[0]).split("rgb(")[1].split(")")[0].split(","))
        assert _luminance(first) >= 100


# -- ibtui watch -----------------------------------------------------------------------------------


def _write_run(run_dir: Path, config, *, pace: float = 0.0, hold_after: int | None = None, gate=None) -> None:
    """A writer in another thread's shoes: the fake engine's events through a real RunStore, one
    snapshot every `pace` seconds (the watcher has no connection to it but the directory)."""
    from tui_fakes import FakeTrainer

    from ibtui.engine.events import Progress
    from ibtui.runs.store import RunStore

    store = RunStore.create(run_dir, config)
    written = 0
    for event in FakeTrainer(config, "writer-1").run():
        if isinstance(event, Progress):
            continue
        store.handle(event)
        if type(event).__name__ == "Snapshot":
            written += 1
            if written == hold_after:
                gate.wait()  # until the watcher has shown these: the test checks it follows live
            time.sleep(pace)
    store.close()


def _tree(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def test_follower_reads_only_new_bytes_and_holds_back_a_torn_line(tmp_path):
    from ibtui.engine.events import RunFinished, RunStarted, Snapshot
    from ibtui.tui.follow import RunFollower

    config = load_preset("tanh").with_overrides({"train.epochs": 30})
    run_dir = tmp_path / "run"
    _write_run(run_dir, config)
    log = run_dir / "snapshots.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    summary = (run_dir / "summary.json").read_bytes()
    # Replay it as if it were being written: the summary as at the start, then the log in pieces.
    started_summary = json.loads(summary)
    started_summary.update(status="running")
    (run_dir / "summary.json").write_text(json.dumps(started_summary))
    log.write_bytes(lines[0] + lines[1][:20])  # the second line torn mid-write
    follower = RunFollower(run_dir)
    events = follower.poll()
    assert [type(e) for e in events] == [RunStarted, Snapshot] and events[1].epoch == 0
    assert follower.poll() == []  # nothing new: the torn line waits
    with open(log, "ab") as f:
        f.write(lines[1][20:] + b"".join(lines[2:]))
    events = follower.poll()
    assert [e.epoch for e in events] == [json.loads(line)["epoch"] for line in lines[1:]]
    (run_dir / "summary.json").write_bytes(summary)  # the writer finished
    events = follower.poll()
    assert len(events) == 1 and isinstance(events[0], RunFinished) and events[0].status == "finished"
    assert follower.poll() == [] and follower.snapshots_read == len(lines)


@pytest.mark.parametrize("make", ["missing", "no_config"])
def test_watch_refuses_what_is_not_a_run_directory(tmp_path, make):
    from typer.testing import CliRunner

    from ibtui.cli import app as cli_app
    from ibtui.errors import StoreError
    from ibtui.tui.follow import RunFollower

    target = tmp_path / "nope"
    if make == "no_config":
        target.mkdir()
    with pytest.raises(StoreError, match="is not a run directory"):
        RunFollower(target)
    result = CliRunner().invoke(cli_app, ["watch", str(target)])
    assert isinstance(result.exception, StoreError)  # main() turns it into one sentence, exit 2


@async_test
async def test_watch_follows_a_run_being_written_and_never_writes(tmp_path):
    import threading

    from ibtui.tui.follow import RunFollower

    config = load_preset("tanh").with_overrides({"train.epochs": 40})
    run_dir = tmp_path / "run"
    gate = threading.Event()
    writer = threading.Thread(target=_write_run, args=(run_dir, config),
                              kwargs={"pace": 0.05, "hold_after": 5, "gate": gate}, daemon=True)
    writer.start()
    while not (run_dir / "config.toml").exists():
        await asyncio.sleep(0.01)
    app = IbtuiApp(watch=RunFollower(run_dir), exporter=FakeExporter())
    async with app.run_test(size=SIZE) as pilot:
        # Live: the first five snapshots show while the writer is still at work...
        await wait_for(pilot, lambda: app.run_state.started is not None and len(app.run_state.snapshots) == 5)
        assert app.run_state.status == "running" and app.verdicts is None
        gate.set()  # ... then the rest, one every 50 ms, and the end
        await wait_for(pilot, lambda: app.run_state.status == "finished" and app.verdicts is not None)
        writer.join()
        written = len((run_dir / "snapshots.jsonl").read_text().splitlines())
        run = app.run_state
        assert len(run.snapshots) == written == len(run.started.schedule)
        assert [s.epoch for s in run.snapshots] == list(run.started.schedule)
        assert app.verdicts == summary_analysis(run_dir)
        assert "epoch 40" in app.query_one(InfoPlanePlot).border_title
        before = _tree(run_dir)
        for key in ("s", "c", "e", "space"):  # nothing that starts, stops or writes works here
            await pilot.press(key)
        await pilot.pause()
        assert app._exporter.calls == [] and app.job is None
    assert _tree(run_dir) == before  # the watcher wrote nothing, not even a lock file


PLANE_SCRIPT = """
import sys
import plotext as plt
from ibtui.tui.runstate import PlaneSeries
from ibtui.tui.widgets.info_plane import draw_points

series = PlaneSeries(total_epochs=2000, limit=240)
for epoch in range(0, 2001, 5):  # many points per terminal cell, several layers crossing
    f = epoch / 2000
    series.add(epoch, [(6 + 3 * f, 0.5 + 0.4 * f), (6 + 3 * (1 - f), 0.5 + 0.4 * f), (7.5, 0.7)])
plt.plotsize(40, 12)
plt.xlim(0, 12)
plt.ylim(0, 1)
draw_points(plt, ("L1 tanh 4", "L2 tanh 3", "out softmax 2"), series, 2000)
sys.stdout.write(plt.build())
"""


def test_the_plane_draws_overlapping_points_the_same_under_any_hash_seed():
    """plotext de-duplicates a call's points through a set: which of two points in one cell shows
    used to follow Python's hash seed (ibtui patched plotext's private no_duplicates for it).
    draw_points makes each call one marker and one colour, oldest first: the same picture always."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[1]
    pictures = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", PLANE_SCRIPT], env=env, capture_output=True, text=True, check=True)
        assert "\x1b[" in done.stdout  # coloured cells were drawn
        pictures.add(done.stdout)
    assert len(pictures) == 1


def test_status_says_how_many_estimates_a_stop_still_finishes(tmp_path):
    """A stop keeps every snapshot whose activations were taken: while the engine finishes their
    estimates it yields Stopping(pending), and the line says so and how to skip them."""
    from dataclasses import dataclass

    from ibtui.engine.events import RunStarted
    from ibtui.tui.runstate import RunClock, RunState
    from ibtui.tui.widgets.status import status_line

    @dataclass
    class Stopping:  # the engine's events.Stopping (interface 2), by name
        run_id: str
        pending: int

    config = load_preset("tanh").with_overrides({"train.epochs": 100})
    trainer, _ = FakeEngine()(config, tmp_path / "run", "r1")
    started = next(iter(trainer.run()))
    assert isinstance(started, RunStarted)
    state = RunState(run_id="r1", run_dir=tmp_path / "run", total_epochs=100)
    state.apply(started)
    state.apply(Stopping("r1", 3))
    line = status_line(state, RunClock(FrozenClock())).plain
    assert state.status == "stopping" and "finishing 3 estimates · c again to skip" in line
    state.apply(Stopping("other-run", 9))  # another run's: ignored
    assert state.pending == 3
