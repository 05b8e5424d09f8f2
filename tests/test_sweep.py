"""`ibtui sweep` on the local backend: the grid, point names, bad input, a real run, resume, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ibtui.errors import ConfigError
from ibtui.sweeps.spec import SweepSpec, build_spec, format_value, parse_grid_option, split_values

from sweep_helpers import TINY, TINY_SETTINGS, cli, records_without_timing, status, tree

REPO = Path(__file__).resolve().parents[1]


# -- the grid --------------------------------------------------------------------------------------


def test_grid_options_parse_values_as_toml_and_words_as_text():
    assert parse_grid_option("model.activation=tanh,relu") == ("model.activation", ("tanh", "relu"))
    assert parse_grid_option("train.l2=0,1e-3") == ("train.l2", (0, 0.001))
    assert parse_grid_option("model.hidden=[10,7],[6,4]") == ("model.hidden", ([10, 7], [6, 4]))
    assert split_values("[1,2], 3 ,") == ["[1,2]", "3"]
    assert format_value(0.001) == "0.001" and format_value((6, 4)) == "6-4" and format_value(True) == "true"


def test_points_are_the_product_in_order_named_after_what_differs():
    spec = build_spec(grid=["model.activation=tanh,relu", "train.l2=0,1e-3"], settings={"train.epochs": 5})
    points = spec.points()
    assert [p.name for p in points] == ["activation=tanh,l2=0", "activation=tanh,l2=0.001",
                                        "activation=relu,l2=0", "activation=relu,l2=0.001"]
    last = points[-1].config
    assert (last.model.activation, last.train.l2, last.train.epochs, last.name) == ("relu", 0.001, 5, "activation=relu,l2=0.001")
    assert isinstance(points[0].config.train.l2, float)  # coerced through RunConfig.with_overrides


def test_axes_sharing_a_last_part_keep_their_dotted_names_and_presets_name_themselves():
    spec = SweepSpec(grid=(("data.name", ("tishby",)), ("model.hidden", ((6, 4),))))
    assert spec.points()[0].name == "name=tishby,hidden=6-4"
    spec = SweepSpec(grid=(("data.name", ("tishby",)), ("info.estimators", (("binning",),))))
    assert spec.points()[0].name == "name=tishby,estimators=binning"
    spec = build_spec(grid=["preset=tanh,relu"])
    assert [p.name for p in spec.points()] == ["tanh", "relu"]
    assert spec.points()[1].config.model.activation == "relu"


@pytest.mark.parametrize(
    "grid, message",
    [
        (["model.activaton=tanh"], "unknown setting 'model.activaton'; did you mean 'model.activation'?"),
        (["train.epochs=ten"], "train.epochs must be a whole number, not 'ten'"),
        (["model.activation=tanh,tahn"], "unknown activation 'tahn'"),
        (["train.l2=x"], "train.l2 must be a number"),
        ([], "the grid is empty"),
        (["train.l2="], "the grid axis train.l2 has no values"),
        (["train.l2=0,0.0"], "the same directory name"),
        (["nonsense"], "is not FIELD=V1,V2"),
    ],
)
def test_bad_grids_are_one_sentence_and_write_nothing(tmp_path, monkeypatch, capsys, grid, message):
    out = tmp_path / "sweep"
    args = [arg for option in grid for arg in ("--grid", option)]
    code, _, err = cli(monkeypatch, capsys, "sweep", "--out", str(out), *args)
    assert code == 2
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()


def test_a_spec_file_gives_the_grid_and_the_command_line_adds_to_it(tmp_path):
    spec_file = tmp_path / "s.toml"
    spec_file.write_text('preset = "relu"\nseeds = 2\n[set]\n"train.epochs" = 7\n[grid]\n"train.l2" = [0, 0.01]\n')
    spec = build_spec(spec_file=spec_file, grid=["model.hidden=[6,4],[5]"])
    points = spec.points()
    assert [p.name for p in points] == ["l2=0,hidden=6-4", "l2=0,hidden=5", "l2=0.01,hidden=6-4", "l2=0.01,hidden=5"]
    assert {(p.config.model.activation, p.config.train.seeds, p.config.train.epochs) for p in points} == {("relu", 2, 7)}
    spec_file.write_text('bogus = 1\n[grid]\n"train.l2" = [0]\n')
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        build_spec(spec_file=spec_file)


@pytest.mark.parametrize("kind", ["other files", "a run", "another sweep", "a file"])
def test_a_sweep_dir_holding_something_else_is_refused_untouched(tmp_path, monkeypatch, capsys, kind):
    out = tmp_path / "sweep"
    if kind == "a file":
        out.write_text("hello")
    else:
        out.mkdir()
        if kind == "other files":
            (out / "notes.txt").write_text("mine")
        elif kind == "a run":
            (out / "config.toml").write_text('name = "x"\n')
        else:
            (out / "sweep.toml").write_text('preset = "tanh"\n[grid]\n"train.l2" = [0, 0.5]\n')
    before = tree(out) if out.is_dir() else out.read_bytes()
    code, _, err = cli(monkeypatch, capsys, "sweep", "--out", str(out), "--grid", "model.activation=tanh")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert {"other files": "is not empty and holds no sweep", "a run": "holds a run, not a sweep",
            "another sweep": "holds another sweep", "a file": "is not a directory"}[kind] in err
    assert (tree(out) if out.is_dir() else out.read_bytes()) == before


def test_a_point_dir_with_another_config_is_refused(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    spec = build_spec(grid=["model.activation=tanh"], settings=TINY_SETTINGS)
    from ibtui.sweeps.spec import claim_sweep_dir

    claim_sweep_dir(out, spec)
    (out / "activation=tanh").mkdir()
    (out / "activation=tanh" / "config.toml").write_text(spec.points()[0].config.with_overrides({"train.epochs": 99}).to_toml())
    before = tree(out)
    code, _, err = cli(monkeypatch, capsys, "sweep", "--out", str(out), "--grid", "model.activation=tanh", *TINY)
    assert code == 2 and "holds a run of another configuration" in err
    assert tree(out) == before


# -- real sweeps --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_local_sweep_runs_every_point_then_skips_them_and_reports(tmp_path, monkeypatch, capsys):
    out = tmp_path / "sweep"
    args = ["sweep", "--out", str(out), "--grid", "model.activation=tanh,relu", "--seeds", "2", "--workers", "2", *TINY]
    code, stdout, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert stdout.strip() == str(out)
    for name in ("activation=tanh", "activation=relu"):
        assert status(out / name) == "finished"
        assert (out / name / "info_plane.png").exists()
        assert len(records_without_timing(out / name)) == 7  # epochs 0, 2, ..., 12
    from ibtui.runs.record import load_run

    assert load_run(out / "activation=relu").config.train.seeds == 2
    report = (out / "REPORT.md").read_text()
    assert "| activation=tanh | finished |" in report and "![information planes of every point](grid.png)" in report
    assert (out / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert '"model.activation"' in (out / "sweep.toml").read_text()
    logs = {p.name: p.read_bytes() for p in (out / ".logs").iterdir()}
    snapshots = (out / "activation=tanh" / "snapshots.jsonl").read_bytes()

    code, _, err = cli(monkeypatch, capsys, *args)  # again: every point is finished, nothing runs
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (out / ".logs").iterdir()} == logs
    assert (out / "activation=tanh" / "snapshots.jsonl").read_bytes() == snapshots

    code, stdout, err = cli(monkeypatch, capsys, "report", str(out))
    assert code == 0, err
    assert "I(X;T) verdicts, binning: 2 points, 2 seed(s) each" in stdout and "activation=relu" in stdout


@pytest.mark.slow
def test_ctrl_c_stops_every_point_cleanly_and_the_same_command_resumes(tmp_path):
    # The points start in their own processes at different moments, so by the time the later one
    # has two snapshots the earlier one may have finished (a fast machine did): every point is
    # interrupted or finished, never half-written, and the one still training is interrupted.
    out = tmp_path / "sweep"
    names = ("activation=tanh", "activation=relu")
    args = [sys.executable, "-m", "ibtui.cli", "sweep", "--out", str(out), "--grid", "model.activation=tanh,relu",
            "--workers", "2", "--quiet", *TINY[:-2], "--epochs", "4000", "--set", "info.every=200",
            "--set", "info.checkpoint_every=1"]
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONHASHSEED="0")
    sweep = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 600  # a guard against a hang, not a speed limit
    logs = [out / name / "snapshots.jsonl" for name in names]
    while time.monotonic() < deadline and not all(p.exists() and p.read_bytes().count(b"\n") >= 2 for p in logs):
        time.sleep(0.2)
    sweep.send_signal(signal.SIGINT)
    _, err = sweep.communicate(timeout=600)
    assert sweep.returncode == 130, err.decode()
    assert b"Interrupted; run the same command again" in err
    statuses = {name: status(out / name) for name in names}
    assert set(statuses.values()) <= {"interrupted", "finished"} and "interrupted" in statuses.values(), statuses
    assert not (out / "REPORT.md").exists()

    resumed = subprocess.run(args, env=env, capture_output=True, cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr.decode()
    for name in names:
        assert status(out / name) == "finished"
        if statuses[name] == "interrupted":
            assert b"resuming from epoch" in (out / ".logs" / f"{name}.log").read_bytes()
        epochs = [r["epoch"] for r in records_without_timing(out / name)]
        assert epochs == list(range(0, 4001, 200))
    assert (out / "REPORT.md").exists()


def test_the_matrix_lines_up_layers_by_name_across_depths():
    from ibtui.sweeps.report import PointResult, matrix

    def analysis(names):
        return {"estimators": {"binning": [{"layer": n, "ixt": {"verdict": "compression", "drop_bits": 0.5, "drop_std": 0.1,
                                                                 "n_seeds": 2}} for n in names]}}

    spec = build_spec(grid=["model.hidden=[6,4,3],[6]"])
    deep, shallow = spec.points()
    results = [PointResult(deep, None, analysis(["L1 tanh 6", "L2 tanh 4", "L3 tanh 3", "out softmax 2"])),
               PointResult(shallow, None, analysis(["L1 tanh 6", "out softmax 2"]))]
    layers, rows = matrix(results, "binning")
    assert layers == ["L1", "L2", "L3", "out"]
    assert rows[1] == ["hidden=6", "not run", "C 0.500±0.100", "", "", "C 0.500±0.100"]
