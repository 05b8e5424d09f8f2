"""`ibtui runs` and `ibtui compare` on run directories written through the real RunStore."""

from __future__ import annotations

import json

import pytest

from sweep_helpers import cli
from test_png import PNG_MAGIC, fake_run


@pytest.fixture
def two_runs(tmp_path):
    a = fake_run(tmp_path / "runs" / "a", seeds=2)
    b = fake_run(tmp_path / "runs" / "b", overrides={"model.activation": "relu"}, stop_at=100, status="interrupted")
    return a, b


def test_runs_lists_runs_and_sweeps_with_status_and_verdicts(tmp_path, two_runs, monkeypatch, capsys):
    from ibtui.sweeps.spec import build_spec, claim_sweep_dir

    sweep = tmp_path / "runs" / "grid"
    claim_sweep_dir(sweep, build_spec(grid=["model.activation=tanh,relu"]))
    fake_run(sweep / "activation=tanh")
    (tmp_path / "runs" / "junk").mkdir()
    code, out, err = cli(monkeypatch, capsys, "runs", str(tmp_path / "runs"))
    assert code == 0, err
    lines = out.splitlines()
    row_a = next(line for line in lines if "│ a " in line)
    assert "finished" in row_a and "300" in row_a and "│     2 │" in row_a
    summary = json.loads((two_runs[0] / "summary.json").read_text())
    first = next(iter(summary["analysis"]["estimators"]))
    chars = "".join({"compression": "C", "none": "-", "inconclusive": "?"}[e["ixt"]["verdict"]]
                    for e in summary["analysis"]["estimators"][first])
    assert f"{chars} ({first})" in row_a
    row_b = next(line for line in lines if "│ b " in line)
    assert "interrupted" in row_b and "100/300" in row_b and "relu" in row_b
    assert any("grid/" in line and "1/2 finished" in line for line in lines)
    assert any("activation=relu" in line and "not run" in line for line in lines)
    assert "junk" not in out


def test_runs_of_a_missing_directory_is_one_sentence(tmp_path, monkeypatch, capsys):
    code, _, err = cli(monkeypatch, capsys, "runs", str(tmp_path / "nope"))
    assert code == 2 and "is not a directory" in err and err.count("\n") == 1


def test_compare_writes_a_figure_and_prints_the_verdicts_side_by_side(tmp_path, two_runs, monkeypatch, capsys):
    out = tmp_path / "cmp.png"
    code, stdout, err = cli(monkeypatch, capsys, "compare", *map(str, two_runs), "--out", str(out))
    assert code == 0, err
    assert out.read_bytes()[:8] == PNG_MAGIC
    header = next(line for line in stdout.splitlines() if "layer" in line)
    assert header.index("fake-tanh") < header.rindex("fake-tanh")  # one column per run, in order
    assert sum(line.count("│") >= 3 for line in stdout.splitlines()) >= 6  # a row per layer
    code, _, err = cli(monkeypatch, capsys, "compare", *map(str, two_runs), "--out", str(tmp_path / "cmp.svg"))
    assert code == 0 and (tmp_path / "cmp.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("case, message", [
    ("one", "at least two run directories"),
    ("not a run", "is not a run directory"),
    ("bad suffix", "--out must end in .png, .svg or .pdf"),
    ("no shared estimator", "share no estimator"),
])
def test_compare_bad_input_is_one_sentence_and_writes_nothing(tmp_path, two_runs, monkeypatch, capsys, case, message):
    a, b = map(str, two_runs)
    out = tmp_path / "cmp.png"
    args = {"one": [a], "not a run": [a, str(tmp_path)], "bad suffix": [a, b, "--out", str(tmp_path / "c.jpg")],
            "no shared estimator": [a, str(fake_run(tmp_path / "k", estimators=("kde_lower",)))]}[case]
    if "--out" not in args:
        args += ["--out", str(out)]
    code, _, err = cli(monkeypatch, capsys, "compare", *args)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "c.jpg").exists()
